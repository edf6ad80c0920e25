//! Vaults replicating a space over the simulated network, through the
//! vault machine: first sync, live edits, offline edits merged on
//! reconnect, restarts, crashes around storage writes.

use echo_core::data::SpaceId;
use echo_core::rpc::{AdminRequest, AdminResponse, Request, Response, Role, WireFields, WireValue};
use echo_core::vault::{ConnId, VaultEvent};
use echo_sim::scenario::{allow, note, notes, share, synced, write};
use echo_sim::Sim;

#[test]
fn two_vaults_share_a_space_and_edit_it_live() {
    let mut sim = Sim::new(1, 2);
    let s = share(&mut sim, &[0, 1], Role::Editor);
    for i in 0..20 {
        write(
            &mut sim,
            0,
            s.apps[0],
            note(&s.space, &format!("before {i}")),
        );
    }
    sim.link(0, 1).unwrap();
    assert!(sim.settle(200, 60_000));
    assert!(
        synced(&sim, 0) && synced(&sim, 1),
        "{:?}",
        sim.nodes[0].events
    );
    let a = notes(&mut sim, 0, s.apps[0], &s.space);
    assert_eq!(a.len(), 20);
    assert_eq!(notes(&mut sim, 1, s.apps[1], &s.space), a);
    // Live: an edit on either side appears on the other.
    write(&mut sim, 1, s.apps[1], note(&s.space, "from b"));
    assert!(sim.settle(200, 60_000));
    assert_eq!(notes(&mut sim, 0, s.apps[0], &s.space).len(), 21);
    write(&mut sim, 0, s.apps[0], note(&s.space, "from a"));
    assert!(sim.settle(200, 60_000));
    let a = notes(&mut sim, 0, s.apps[0], &s.space);
    assert_eq!(a.len(), 22);
    assert_eq!(notes(&mut sim, 1, s.apps[1], &s.space), a);
    // The joined member's app sees the space with its role.
    let now = sim.now;
    let Response::Spaces { spaces } = sim.nodes[1]
        .call(now, s.apps[1], Request::ListSpaces {})
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(spaces[0].role, Role::Editor);
}

#[test]
fn offline_edits_merge_when_the_peers_meet_again() {
    let mut sim = Sim::new(2, 2);
    let s = share(&mut sim, &[0, 1], Role::Editor);
    let Response::Written { created } = write(&mut sim, 0, s.apps[0], note(&s.space, "shared"))
    else {
        panic!()
    };
    let shared = created[0].clone();
    let link = sim.link(0, 1).unwrap();
    assert!(sim.settle(200, 60_000));
    sim.cut(link);
    // Apart: both edit the same text and fields, create and delete.
    for (n, text, title) in [(0, "alpha ", "from a"), (1, "beta ", "from b")] {
        write(
            &mut sim,
            n,
            s.apps[n],
            Request::SpliceText {
                space: s.space.clone(),
                id: shared.clone(),
                field: "body".into(),
                pos: 0,
                delete: 0,
                insert: text.into(),
                context: None,
            },
        );
        let mut set = WireFields::new();
        set.insert("title".into(), WireValue::String(title.into()));
        write(
            &mut sim,
            n,
            s.apps[n],
            Request::UpdateObject {
                space: s.space.clone(),
                id: shared.clone(),
                set,
                remove: vec![],
            },
        );
        for i in 0..5 {
            write(
                &mut sim,
                n,
                s.apps[n],
                note(&s.space, &format!("{title} {i}")),
            );
        }
    }
    write(
        &mut sim,
        1,
        s.apps[1],
        Request::DeleteObject {
            space: s.space.clone(),
            id: shared.clone(),
        },
    );
    sim.link(0, 1).unwrap();
    assert!(sim.settle(200, 60_000));
    let a = notes(&mut sim, 0, s.apps[0], &s.space);
    let b = notes(&mut sim, 1, s.apps[1], &s.space);
    assert_eq!(a, b);
    assert_eq!(a.len(), 11);
    let merged = a.iter().find(|o| o.id == shared).unwrap();
    assert!(merged.deleted);
    let Some(WireValue::Text(body)) = merged.fields.get("body") else {
        panic!()
    };
    assert!(body.contains("alpha") && body.contains("beta"), "{body}");
}

#[test]
fn a_restart_resumes_from_storage_and_a_reconnect_costs_what_changed() {
    let mut sim = Sim::new(3, 2);
    let s = share(&mut sim, &[0, 1], Role::Editor);
    for i in 0..200 {
        write(&mut sim, 0, s.apps[0], note(&s.space, &format!("n{i}")));
    }
    sim.link(0, 1).unwrap();
    assert!(sim.settle(200, 60_000));
    // Both restart (their links with them), each edits a little.
    sim.restart(0);
    sim.restart(1);
    let apps: Vec<ConnId> = (0..2)
        .map(|n| allow(&mut sim, n, vec![s.space.clone()]))
        .collect();
    write(&mut sim, 0, apps[0], note(&s.space, "after a"));
    write(&mut sim, 1, apps[1], note(&s.space, "after b"));
    let sent_before = sim.bytes_sent;
    sim.link(0, 1).unwrap();
    // Count what crosses the link until both agree.
    let end = sim.now + 60_000;
    while sim.now < end {
        if !sim.step(end) {
            break;
        }
        if !sim.in_flight() && sim.now > 0 {
            let a = notes(&mut sim, 0, apps[0], &s.space).len();
            let b = notes(&mut sim, 1, apps[1], &s.space).len();
            if a == 202 && b == 202 {
                break;
            }
        }
    }
    assert_eq!(notes(&mut sim, 0, apps[0], &s.space).len(), 202);
    assert_eq!(
        notes(&mut sim, 0, apps[0], &s.space),
        notes(&mut sim, 1, apps[1], &s.space)
    );
    // The persisted baseline keeps it small: far from the 200 notes again.
    let bytes = sim.bytes_sent - sent_before;
    eprintln!("reconnect bytes {bytes}");
    assert!(bytes < 40_000, "{bytes} bytes to reconnect");
}

#[test]
fn a_write_lost_in_a_crash_never_reaches_a_peer_and_its_number_is_safe_to_reuse() {
    let mut sim = Sim::new(4, 2);
    let s = share(&mut sim, &[0, 1], Role::Editor);
    sim.link(0, 1).unwrap();
    assert!(sim.settle(200, 60_000));
    // Node 0 writes; the flush is in flight when the process dies.
    sim.nodes[0].auto_io = false;
    let now = sim.now;
    let lost = sim.nodes[0].send(now, s.apps[0], note(&s.space, "lost"));
    assert!(
        sim.nodes[0].answer(s.apps[0], lost).is_none(),
        "not acknowledged"
    );
    sim.run_for(1_000);
    sim.crash(0);
    sim.nodes[0].auto_io = true;
    sim.restart(0);
    // Nothing of it went out: the peer has only what was durable.
    let app1 = s.apps[1];
    assert_eq!(notes(&mut sim, 1, app1, &s.space).len(), 0);
    // The next write reuses the lost change's sequence number — harmless,
    // since no peer ever saw the lost change.
    let app0 = allow(&mut sim, 0, vec![s.space.clone()]);
    write(&mut sim, 0, app0, note(&s.space, "kept"));
    sim.link(0, 1).unwrap();
    assert!(sim.settle(200, 60_000));
    let b = notes(&mut sim, 1, app1, &s.space);
    assert_eq!(b.len(), 1);
    assert_eq!(notes(&mut sim, 0, app0, &s.space), b);
    let sid: SpaceId = s.space.parse().unwrap();
    for n in 0..2 {
        assert!(sim.nodes[n]
            .vault()
            .replica_of(&sid)
            .unwrap()
            .equivocations()
            .is_empty());
    }
}

#[test]
fn a_write_stored_just_before_a_crash_is_kept_and_synced_after_the_restart() {
    let mut sim = Sim::new(5, 2);
    let s = share(&mut sim, &[0, 1], Role::Editor);
    sim.nodes[0].auto_io = false;
    let now = sim.now;
    sim.nodes[0].send(
        now,
        s.apps[0],
        note(&s.space, "durable, never acknowledged"),
    );
    assert_eq!(sim.nodes[0].writes.len(), 1);
    sim.crash_after_write(0);
    sim.nodes[0].auto_io = true;
    sim.restart(0);
    let app0 = allow(&mut sim, 0, vec![s.space.clone()]);
    assert_eq!(notes(&mut sim, 0, app0, &s.space).len(), 1);
    sim.link(0, 1).unwrap();
    assert!(sim.settle(200, 60_000));
    assert_eq!(notes(&mut sim, 1, s.apps[1], &s.space).len(), 1);
}

#[test]
fn a_stranger_is_offered_nothing_and_learns_nothing() {
    let mut sim = Sim::new(6, 3);
    let s = share(&mut sim, &[0, 1], Role::Editor);
    write(&mut sim, 0, s.apps[0], note(&s.space, "private"));
    // Node 2 holds a space of its own, and is a member of nothing here.
    let app2 = allow(&mut sim, 2, vec![]);
    let now = sim.now;
    sim.nodes[2]
        .call(
            now,
            app2,
            Request::CreateSpace {
                properties: WireFields::new(),
            },
        )
        .unwrap();
    sim.link(0, 2).unwrap();
    assert!(sim.settle(200, 60_000));
    for n in [0, 2] {
        assert!(
            sim.nodes[n]
                .events
                .iter()
                .any(|e| matches!(e, VaultEvent::PeerAuthenticated { .. })),
            "they did authenticate"
        );
        assert!(
            !synced(&sim, n),
            "no space was synced: {:?}",
            sim.nodes[n].events
        );
    }
    let admin = sim.nodes[2].connect_admin(now);
    let Ok(AdminResponse::Spaces { spaces }) =
        sim.nodes[2].admin_call(now, admin, AdminRequest::ListSpaces {})
    else {
        panic!()
    };
    assert_eq!(spaces.len(), 1, "only its own");
}

#[test]
fn writes_travel_through_a_peer_in_between_signed_by_their_author() {
    // A line: 0 — 1 — 2. Nodes 0 and 2 never meet.
    let mut sim = Sim::new(7, 3);
    let s = share(&mut sim, &[0, 1, 2], Role::Editor);
    for i in 0..10 {
        write(
            &mut sim,
            0,
            s.apps[0],
            note(&s.space, &format!("from 0 #{i}")),
        );
    }
    write(&mut sim, 2, s.apps[2], note(&s.space, "from 2"));
    sim.link(0, 1).unwrap();
    sim.link(1, 2).unwrap();
    assert!(sim.settle(200, 60_000));
    let all = notes(&mut sim, 0, s.apps[0], &s.space);
    assert_eq!(all.len(), 11);
    assert_eq!(notes(&mut sim, 2, s.apps[2], &s.space), all);
    // Live: an edit at one end reaches the other through the middle.
    write(&mut sim, 2, s.apps[2], note(&s.space, "live from 2"));
    assert!(sim.settle(200, 60_000));
    assert_eq!(notes(&mut sim, 0, s.apps[0], &s.space).len(), 12);
    // What 2 holds of 0's writes is signed by 0's device, not by the relay.
    let sid: SpaceId = s.space.parse().unwrap();
    let device0 = sim.nodes[0]
        .vault()
        .replica_of(&sid)
        .unwrap()
        .device()
        .public_key();
    let held = sim.nodes[2].vault_mut().wire_bundles(&sid).unwrap();
    let signers: std::collections::BTreeSet<_> = held.iter().map(|b| b.header.signer).collect();
    assert!(signers.contains(&device0), "{signers:?}");
    assert!(signers.len() == 2, "only 0's and 2's own: {signers:?}");
}

#[test]
fn two_people_typing_in_one_text_at_once_each_keep_their_place() {
    // B's app typed at the end of the text as it saw it ("2 litres"), while
    // A's words at the start reached B's vault first: with the characters
    // before its caret as context, B's splice lands after "2 litres";
    // without, at the stale position.
    let mut sim = Sim::new(5, 2);
    let s = share(&mut sim, &[0, 1], Role::Editor);
    let Response::Written { created } = write(&mut sim, 0, s.apps[0], note(&s.space, "2 litres"))
    else {
        panic!()
    };
    let id = created[0].clone();
    sim.link(0, 1).unwrap();
    assert!(sim.settle(200, 60_000));
    let splice = |pos: u32, insert: &str, context: Option<&str>| Request::SpliceText {
        space: s.space.clone(),
        id: id.clone(),
        field: "body".into(),
        pos,
        delete: 0,
        insert: insert.into(),
        context: context.map(Into::into),
    };
    let body = |sim: &mut Sim, n: usize| {
        let now = sim.now;
        match sim.nodes[n].call(
            now,
            s.apps[n],
            Request::ReadText {
                space: s.space.clone(),
                id: id.clone(),
                field: "body".into(),
                at: None,
            },
        ) {
            Ok(Response::Text { text }) => text,
            other => panic!("{other:?}"),
        }
    };
    write(&mut sim, 0, s.apps[0], splice(0, "Organic, ", Some("")));
    assert!(sim.settle(200, 60_000));
    write(
        &mut sim,
        1,
        s.apps[1],
        splice(8, ", from the farm", Some("2 litres")),
    );
    assert!(sim.settle(200, 60_000));
    for n in [0, 1] {
        assert_eq!(
            body(&mut sim, n),
            "Organic, 2 litres, from the farm",
            "node {n}"
        );
    }
    // The control: the same stale position without context.
    write(&mut sim, 0, s.apps[0], splice(0, ">", None));
    assert!(sim.settle(200, 60_000));
    write(&mut sim, 1, s.apps[1], splice(32, "!", None));
    assert!(sim.settle(200, 60_000));
    assert_eq!(body(&mut sim, 1), ">Organic, 2 litres, from the far!m");
    // A context longer than the vault takes is a clear error.
    let now = sim.now;
    let long = "x".repeat(65);
    let refused = sim.nodes[1].call(now, s.apps[1], splice(0, "?", Some(&long)));
    let error = refused.expect_err("a 65-character context is refused");
    assert_eq!(error.code, "rpc.bad_request");
    assert_eq!(
        error
            .details
            .as_ref()
            .and_then(|d| d.get("field"))
            .map(String::as_str),
        Some("context")
    );
}

#[test]
fn a_space_property_nested_at_the_limit_reaches_every_member() {
    // A property nested right at `MAX_VALUE_DEPTH`, which the vault takes
    // from an app, was once read back one level deeper from a document:
    // a member already syncing silently never showed it, and a member
    // joining later was refused the space's snapshot (`sync.bad_snapshot`).
    let mut deep = WireValue::Int(echo_core::rpc::WireInt(7));
    for _ in 0..echo_core::data::MAX_VALUE_DEPTH {
        deep = WireValue::Map([("k".to_owned(), deep)].into());
    }
    let mut sim = Sim::new(5, 3);
    let s = share(&mut sim, &[0, 1], Role::Editor);
    sim.link(0, 1).unwrap();
    assert!(sim.settle(200, 60_000));
    let set = Request::SetSpaceProperty {
        space: s.space.clone(),
        name: "deep".into(),
        value: deep.clone(),
    };
    write(&mut sim, 0, s.apps[0], set);
    write(&mut sim, 0, s.apps[0], note(&s.space, "after"));
    assert!(sim.settle(200, 60_000));
    // A third member joins now: its first sync is a snapshot.
    echo_sim::scenario::join(&mut sim, 0, 2, &s.space, Role::Reader);
    let third = allow(&mut sim, 2, vec![s.space.clone()]);
    sim.link(0, 2).unwrap();
    assert!(sim.settle(200, 60_000));
    for (n, app) in [(1, s.apps[1]), (2, third)] {
        let stopped: Vec<_> = sim.nodes[n]
            .events
            .iter()
            .filter(|e| matches!(e, VaultEvent::SyncStopped { .. }))
            .collect();
        assert!(stopped.is_empty(), "node {n}: {stopped:?}");
        let now = sim.now;
        let request = Request::SpaceProperties {
            space: s.space.clone(),
        };
        match sim.nodes[n].call(now, app, request) {
            Ok(Response::Properties { properties }) => {
                assert_eq!(properties.get("deep"), Some(&deep), "node {n}")
            }
            other => panic!("node {n}: {other:?}"),
        }
        assert_eq!(notes(&mut sim, n, app, &s.space).len(), 1, "node {n}");
    }
}
