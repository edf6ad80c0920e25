//! Invitations end to end between vaults on the simulator's signaling
//! server: a host invites, a guest answers with the code, types the
//! 6-digit code the host's vault shows, is admitted with the invitation's
//! role, and both sync the space — nobody links them or copies an export.
//! And every way it must not work: wrong codes (counted durably, across
//! connections and restarts), expiry, cancelling, a second guest, a relay
//! that tampers with the messages.

use echo_core::rpc::{
    AdminRequest, AdminResponse, InvitationInfo, InvitationState, Role, RpcError,
};
use echo_sim::scenario::{admin, allow, create_space, identity_of, note, notes, write};
use echo_sim::Sim;

const QUIET: u64 = 500;
const LIMIT: u64 = 120_000;

fn invitation(response: Result<AdminResponse, RpcError>) -> InvitationInfo {
    match response {
        Ok(AdminResponse::Invitation { invitation }) => *invitation,
        other => panic!("{other:?}"),
    }
}

/// Node `n`'s view of invitation `id`.
fn info(sim: &mut Sim, n: usize, id: &str) -> InvitationInfo {
    match admin(sim, n, AdminRequest::ListInvitations {}) {
        Ok(AdminResponse::Invitations { invitations }) => invitations
            .into_iter()
            .find(|i| i.invitation == id)
            .unwrap_or_else(|| panic!("node {n} has no invitation {id}")),
        other => panic!("{other:?}"),
    }
}

fn create(sim: &mut Sim, n: usize, space: &str, role: Option<Role>) -> InvitationInfo {
    create_with(sim, n, space, role, None, None)
}

fn create_with(
    sim: &mut Sim,
    n: usize,
    space: &str,
    role: Option<Role>,
    ttl_minutes: Option<u32>,
    multi_use: Option<bool>,
) -> InvitationInfo {
    invitation(admin(
        sim,
        n,
        AdminRequest::CreateInvitation {
            space: space.into(),
            role,
            ttl_minutes,
            multi_use,
        },
    ))
}

fn members(sim: &mut Sim, n: usize, space: &str) -> Vec<echo_core::rpc::Member> {
    match admin(
        sim,
        n,
        AdminRequest::ListMembers {
            space: space.into(),
        },
    ) {
        Ok(AdminResponse::Members { members }) => members,
        other => panic!("members.list answered {other:?}"),
    }
}

fn accept(sim: &mut Sim, n: usize, code: &str) -> InvitationInfo {
    let i = invitation(admin(
        sim,
        n,
        AdminRequest::AcceptInvitation { code: code.into() },
    ));
    sim.run_for(10);
    i
}

fn enter(sim: &mut Sim, n: usize, id: &str, code: &str) {
    admin(
        sim,
        n,
        AdminRequest::EnterAuthCode {
            invitation: id.into(),
            code: code.into(),
        },
    )
    .unwrap_or_else(|e| panic!("entering the code: {e:?}"));
    sim.run_for(10);
}

/// A code that is not `right`.
fn wrong(right: &str, k: u32) -> String {
    let n: u32 = right.parse().expect("six digits");
    format!("{:06}", (n + 1 + k) % 1_000_000)
}

/// A host (node 0) with a space and a note in it, on signaling.
fn host_with_space(sim: &mut Sim) -> (String, echo_core::vault::ConnId) {
    let app = allow(sim, 0, vec![]);
    let space = create_space(sim, 0, app);
    write(sim, 0, app, note(&space, "from the host"));
    sim.enable_signaling();
    sim.run_for(10);
    (space, app)
}

#[test]
fn a_guest_joins_with_the_code_and_both_sync_the_space() {
    let mut sim = Sim::new(31, 3);
    let (space, host_app) = host_with_space(&mut sim);
    let host_view = create(&mut sim, 0, &space, None);
    assert_eq!(host_view.state, InvitationState::Waiting);
    assert_eq!(host_view.role, Role::Editor, "editor is the default");
    assert!(
        host_view.auth_code.is_none(),
        "no code before a guest comes"
    );
    let code = host_view.code.clone().expect("the host shares a code");
    let id = host_view.invitation.clone();

    let guest_view = accept(&mut sim, 1, &code);
    assert_eq!(guest_view.invitation, id);
    assert_eq!(info(&mut sim, 1, &id).state, InvitationState::ReadyForCode);
    let host_view = info(&mut sim, 0, &id);
    assert_eq!(host_view.state, InvitationState::ReadyForCode);
    let auth = host_view.auth_code.expect("the host shows the code");
    assert_eq!(auth.len(), 6);

    enter(&mut sim, 1, &id, &auth);
    let guest_view = info(&mut sim, 1, &id);
    assert_eq!(guest_view.state, InvitationState::Success, "{guest_view:?}");
    assert_eq!(guest_view.space.as_deref(), Some(space.as_str()));
    assert_eq!(
        guest_view.peer_identity,
        Some(identity_of(&mut sim, 0)),
        "the guest knows who admitted it"
    );
    let host_view = info(&mut sim, 0, &id);
    assert_eq!(host_view.state, InvitationState::Success);
    let guest_identity = identity_of(&mut sim, 1);
    assert_eq!(host_view.admitted, vec![guest_identity.clone()]);
    // The member list shows the guest with the invitation's role.
    let members = members(&mut sim, 0, &space);
    assert!(members
        .iter()
        .any(|m| m.identity == guest_identity && m.role == Role::Editor));

    // Both sides find each other on the space's topic and sync, both ways.
    assert!(sim.settle(QUIET, LIMIT));
    let guest_app = allow(&mut sim, 1, vec![space.clone()]);
    write(&mut sim, 1, guest_app, note(&space, "from the guest"));
    assert!(sim.settle(QUIET, LIMIT));
    let on_host = notes(&mut sim, 0, host_app, &space);
    assert_eq!(on_host.len(), 2);
    assert_eq!(notes(&mut sim, 1, guest_app, &space), on_host);

    // Single use: a third vault with the same code is refused.
    accept(&mut sim, 2, &code);
    let third = info(&mut sim, 2, &id);
    assert_eq!(third.state, InvitationState::Failed);
    assert_eq!(
        third.error.as_ref().map(|e| e.code.as_str()),
        Some("invite.used")
    );
}

#[test]
fn three_wrong_codes_end_the_invitation_even_across_connections_and_restarts() {
    let mut sim = Sim::new(32, 3);
    let (space, _) = host_with_space(&mut sim);
    let host_view = create(&mut sim, 0, &space, Some(Role::Reader));
    let code = host_view.code.expect("code");
    let id = host_view.invitation;

    // First guest: one wrong code, then it gives up (a new connection).
    accept(&mut sim, 1, &code);
    let auth = info(&mut sim, 0, &id).auth_code.expect("code shown");
    enter(&mut sim, 1, &id, &wrong(&auth, 0));
    let g = info(&mut sim, 1, &id);
    assert_eq!(g.state, InvitationState::ReadyForCode, "it may try again");
    assert_eq!(g.attempts_left, 2);
    assert_eq!(
        g.error.as_ref().map(|e| e.code.as_str()),
        Some("invite.wrong_code")
    );
    assert_eq!(info(&mut sim, 0, &id).attempts_left, 2);

    // The host's vault restarts: the count is stored.
    sim.restart(0);
    sim.run_for(QUIET);
    assert_eq!(info(&mut sim, 0, &id).attempts_left, 2);
    assert_eq!(
        info(&mut sim, 1, &id).state,
        InvitationState::Failed,
        "the host went away under the guest"
    );

    // Second try from the same vault, a new connection: one more wrong.
    accept(&mut sim, 1, &code);
    let auth = info(&mut sim, 0, &id)
        .auth_code
        .expect("a new code is shown");
    enter(&mut sim, 1, &id, &wrong(&auth, 1));
    assert_eq!(info(&mut sim, 1, &id).attempts_left, 1);
    // Third wrong code, same connection: the invitation ends, both sides.
    enter(&mut sim, 1, &id, &wrong(&auth, 2));
    let g = info(&mut sim, 1, &id);
    assert_eq!(g.state, InvitationState::Failed);
    assert_eq!(
        g.error.as_ref().map(|e| e.code.as_str()),
        Some("invite.too_many_attempts")
    );
    let h = info(&mut sim, 0, &id);
    assert_eq!(h.state, InvitationState::Failed);
    assert_eq!(h.attempts_left, 0);
    assert!(h.admitted.is_empty());

    // A fourth attempt, from another vault on a new connection, is refused
    // before any code is asked for.
    accept(&mut sim, 2, &code);
    let g = info(&mut sim, 2, &id);
    assert_eq!(g.state, InvitationState::Failed);
    assert_eq!(
        g.error.as_ref().map(|e| e.code.as_str()),
        Some("invite.too_many_attempts")
    );
    // Nobody was admitted.
    let Ok(AdminResponse::Members { members }) =
        admin(&mut sim, 0, AdminRequest::ListMembers { space })
    else {
        panic!()
    };
    assert_eq!(members.len(), 1, "{members:?}");
}

#[test]
fn an_expired_invitation_is_refused_and_a_cancelled_one_ends_both_sides() {
    let mut sim = Sim::new(33, 3);
    let (space, _) = host_with_space(&mut sim);
    let short = create_with(&mut sim, 0, &space, None, Some(1), None);
    sim.run_for(61_000);
    assert_eq!(
        info(&mut sim, 0, &short.invitation).state,
        InvitationState::Expired
    );
    // The host still listens a while after the expiry: a guest is told at once.
    accept(&mut sim, 1, short.code.as_deref().expect("code"));
    sim.run_for(1_000);
    let g = info(&mut sim, 1, &short.invitation);
    assert_eq!(g.state, InvitationState::Expired, "{g:?}");
    // Long after, nobody answers: the guest says so after its step timeout.
    sim.run_for(echo_core::vault::EXPIRED_REFUSAL);
    let late = sim.nodes.len() - 1;
    accept(&mut sim, late, short.code.as_deref().expect("code"));
    sim.run_for(1_000);
    assert_ne!(
        info(&mut sim, late, &short.invitation).state,
        InvitationState::Expired,
        "no host to say it"
    );
    sim.run_for(31_000);
    let g = info(&mut sim, late, &short.invitation);
    assert_eq!(g.state, InvitationState::Expired, "{g:?}");

    // Cancelled while the guest is about to type the code.
    let open = create(&mut sim, 0, &space, None);
    accept(&mut sim, 2, open.code.as_deref().expect("code"));
    assert_eq!(
        info(&mut sim, 2, &open.invitation).state,
        InvitationState::ReadyForCode
    );
    admin(
        &mut sim,
        0,
        AdminRequest::CancelInvitation {
            invitation: open.invitation.clone(),
        },
    )
    .expect("cancel");
    sim.run_for(10);
    assert_eq!(
        info(&mut sim, 0, &open.invitation).state,
        InvitationState::Cancelled
    );
    assert_eq!(
        info(&mut sim, 2, &open.invitation).state,
        InvitationState::Cancelled
    );
    let late = admin(
        &mut sim,
        2,
        AdminRequest::EnterAuthCode {
            invitation: open.invitation.clone(),
            code: "123456".into(),
        },
    );
    assert!(late.is_err(), "no code is taken once it ended: {late:?}");
}

#[test]
fn one_guest_at_a_time_and_a_guest_that_goes_silent_frees_the_invitation() {
    let mut sim = Sim::new(34, 3);
    let (space, _) = host_with_space(&mut sim);
    let open = create(&mut sim, 0, &space, None);
    let code = open.code.expect("code");
    accept(&mut sim, 1, &code);
    accept(&mut sim, 2, &code);
    let second = info(&mut sim, 2, &open.invitation);
    assert_eq!(second.state, InvitationState::Failed);
    assert_eq!(
        second.error.as_ref().map(|e| e.code.as_str()),
        Some("invite.busy")
    );
    // The first guest never types: after the code-entry time the host
    // drops it, and the second guest gets its turn.
    sim.run_for(5 * 60_000 + 1_000);
    assert_eq!(
        info(&mut sim, 0, &open.invitation).state,
        InvitationState::Waiting
    );
    accept(&mut sim, 2, &code);
    let auth = info(&mut sim, 0, &open.invitation)
        .auth_code
        .expect("code for the second guest");
    enter(&mut sim, 2, &open.invitation, &auth);
    assert_eq!(
        info(&mut sim, 2, &open.invitation).state,
        InvitationState::Success
    );
}

#[test]
fn a_relay_that_tampers_with_the_messages_admits_nobody() {
    let mut sim = Sim::new(35, 2);
    let (space, _) = host_with_space(&mut sim);
    let open = create(&mut sim, 0, &space, None);
    // The signaling server flips one bit of everything after the hello.
    let mut seen = 0;
    sim.tamper_signal = Some(Box::new(move |_, _, data: &mut Vec<u8>| {
        seen += 1;
        if seen > 1 {
            if let Some(last) = data.last_mut() {
                *last ^= 1;
            }
        }
        true
    }));
    accept(&mut sim, 1, open.code.as_deref().expect("code"));
    sim.run_for(31_000);
    let g = info(&mut sim, 1, &open.invitation);
    assert_eq!(g.state, InvitationState::Failed, "{g:?}");
    assert_eq!(
        g.error.as_ref().map(|e| e.code.as_str()),
        Some("invite.host_mismatch"),
        "the host's signed answer no longer verifies"
    );
    let h = info(&mut sim, 0, &open.invitation);
    assert!(h.admitted.is_empty());
    let Ok(AdminResponse::Members { members }) =
        admin(&mut sim, 0, AdminRequest::ListMembers { space })
    else {
        panic!()
    };
    assert_eq!(members.len(), 1);
}

#[test]
fn only_a_manager_invites_and_bad_input_gets_clear_errors() {
    let mut sim = Sim::new(36, 2);
    let (space, _) = host_with_space(&mut sim);
    let e = admin(
        &mut sim,
        0,
        AdminRequest::CreateInvitation {
            space: space.clone(),
            role: Some(Role::Owner),
            ttl_minutes: None,
            multi_use: None,
        },
    )
    .unwrap_err();
    assert_eq!(e.code, "rpc.bad_request");
    let e = admin(
        &mut sim,
        0,
        AdminRequest::CreateInvitation {
            space: space.clone(),
            role: None,
            ttl_minutes: Some(0),
            multi_use: None,
        },
    )
    .unwrap_err();
    assert_eq!(e.code, "rpc.bad_request");
    let e = admin(
        &mut sim,
        1,
        AdminRequest::AcceptInvitation {
            code: "echo-invite-zzz".into(),
        },
    )
    .unwrap_err();
    assert_eq!(e.code, "invite.bad_code");
    let open = create(&mut sim, 0, &space, None);
    let own = admin(
        &mut sim,
        0,
        AdminRequest::AcceptInvitation {
            code: open.code.clone().expect("code"),
        },
    )
    .unwrap_err();
    assert_eq!(own.code, "rpc.bad_request");
    accept(&mut sim, 1, open.code.as_deref().expect("code"));
    let e = admin(
        &mut sim,
        1,
        AdminRequest::EnterAuthCode {
            invitation: open.invitation.clone(),
            code: "12 34".into(),
        },
    )
    .unwrap_err();
    assert_eq!(e.code, "invite.bad_auth_code");

    // A member demoted to reader cannot invite in turn.
    let auth = info(&mut sim, 0, &open.invitation).auth_code.expect("code");
    enter(&mut sim, 1, &open.invitation, &auth);
    assert_eq!(
        info(&mut sim, 1, &open.invitation).state,
        InvitationState::Success
    );
    let guest = identity_of(&mut sim, 1);
    admin(
        &mut sim,
        0,
        AdminRequest::SetRole {
            space: space.clone(),
            identity: guest,
            role: Role::Reader,
        },
    )
    .expect("demote");
    assert!(sim.settle(QUIET, LIMIT));
    let e = admin(
        &mut sim,
        1,
        AdminRequest::CreateInvitation {
            space,
            role: Some(Role::Reader),
            ttl_minutes: None,
            multi_use: None,
        },
    )
    .unwrap_err();
    assert_eq!(e.code, "rpc.not_authorized");
}

#[test]
fn a_multi_use_invitation_admits_one_guest_after_another_until_cancelled() {
    let mut sim = Sim::new(36, 4);
    let (space, _) = host_with_space(&mut sim);
    let made = create_with(&mut sim, 0, &space, Some(Role::Reader), None, Some(true));
    assert!(made.multi_use);
    let code = made.code.clone().expect("code");
    let id = made.invitation.clone();
    for guest in [1, 2] {
        accept(&mut sim, guest, &code);
        let auth = info(&mut sim, 0, &id)
            .auth_code
            .expect("the host shows a code per guest");
        enter(&mut sim, guest, &id, &auth);
        let g = info(&mut sim, guest, &id);
        assert_eq!(g.state, InvitationState::Success, "guest {guest}: {g:?}");
        let host = info(&mut sim, 0, &id);
        assert_eq!(
            host.state,
            InvitationState::Waiting,
            "still open for the next guest: {host:?}"
        );
        assert_eq!(host.admitted.len(), guest, "{host:?}");
    }
    let members = members(&mut sim, 0, &space);
    assert_eq!(
        members.iter().filter(|m| m.role == Role::Reader).count(),
        2,
        "{members:?}"
    );
    // Cancelled: the next one is refused.
    admin(
        &mut sim,
        0,
        AdminRequest::CancelInvitation {
            invitation: id.clone(),
        },
    )
    .expect("cancel");
    accept(&mut sim, 3, &code);
    let late = info(&mut sim, 3, &id);
    assert_eq!(late.state, InvitationState::Cancelled, "{late:?}");
    assert_eq!(
        late.error.as_ref().map(|e| e.code.as_str()),
        Some("invite.cancelled")
    );
}

#[test]
fn ended_invitations_are_kept_only_up_to_a_bound_on_both_sides() {
    let mut sim = Sim::new(37, 2);
    let (space, _) = host_with_space(&mut sim);
    let mut last = String::new();
    for _ in 0..55 {
        let made = create(&mut sim, 0, &space, None);
        admin(
            &mut sim,
            0,
            AdminRequest::CancelInvitation {
                invitation: made.invitation.clone(),
            },
        )
        .expect("cancel");
        accept(&mut sim, 1, made.code.as_deref().expect("code"));
        assert_eq!(
            info(&mut sim, 1, &made.invitation).state,
            InvitationState::Cancelled
        );
        last = made.invitation;
    }
    let listed = |sim: &mut Sim, n: usize| match admin(sim, n, AdminRequest::ListInvitations {}) {
        Ok(AdminResponse::Invitations { invitations }) => invitations,
        other => panic!("{other:?}"),
    };
    for n in [0, 1] {
        let all = listed(&mut sim, n);
        assert_eq!(all.len(), 50, "node {n} keeps the last 50 ended");
        assert!(
            all.iter().any(|i| i.invitation == last),
            "node {n} keeps the newest"
        );
    }
}
