//! What a hostile site embedding the vault's frame can make the engine
//! do (`core/src/vault/guard.rs`): it must shake hands first, it gets a
//! trickle of messages before the user allows it, undecodable messages
//! and idle connections end the connection, connections and live queries
//! are capped per origin — and a granted app next to it keeps working.

use echo_core::rpc::{
    ClientMessage, Request, Response, RpcError, Undecodable, VaultMessage, WireFilter, WireQuery,
};
use echo_core::vault::{
    ConnId, Input, CHATTER_BURST, IDLE_TIMEOUT, MAX_CONNS_PER_ORIGIN, MAX_SUBSCRIPTIONS_PER_ORIGIN,
    MAX_UNGRANTED_CONNS, STRIKE_BURST,
};
use echo_sim::Node;

const APP: &str = "https://app.example";
const EVIL: &str = "https://evil.example";
const T: u64 = 1_700_000_000_000;

fn node() -> Node {
    Node::new("vault", 11, T)
}

/// A connection attached without its handshake.
fn attach(n: &mut Node, now: u64, conn: u64, origin: &str) -> ConnId {
    let conn = ConnId(conn);
    n.input(
        now,
        Input::AppConnected {
            conn,
            origin: origin.into(),
        },
    );
    conn
}

fn message(n: &mut Node, now: u64, conn: ConnId, message: Result<ClientMessage, Undecodable>) {
    n.input(now, Input::AppMessage { conn, message });
}

fn refusal(n: &Node, conn: ConnId) -> Option<String> {
    n.app.get(&conn)?.iter().find_map(|m| match m {
        VaultMessage::Refused { error } => Some(error.code.clone()),
        _ => None,
    })
}

fn subscribe(space: &str) -> Request {
    Request::Subscribe {
        space: space.into(),
        query: WireQuery {
            filter: WireFilter::Type("task".into()),
            order: Vec::new(),
            limit: None,
            offset: 0,
            include_deleted: false,
        },
        resolve: false,
    }
}

#[test]
fn a_connection_must_say_hello_first_and_only_once() {
    let mut n = node();
    n.allow(T, APP, vec![]);
    let app = n.connect_app(T, APP);
    let space = n.create_space(T, app);
    n.restart(T);
    // A request before hello, naming a granted space: refused, closed,
    // and nothing is read for it.
    n.auto_io = false;
    let early = attach(&mut n, T, 900, APP);
    message(
        &mut n,
        T,
        early,
        Ok(ClientMessage::Request {
            id: 1,
            method: Request::SpaceProperties {
                space: space.clone(),
            },
        }),
    );
    assert_eq!(refusal(&n, early).as_deref(), Some("rpc.not_connected"));
    assert!(n.closed.contains(&early));
    assert!(
        n.reads
            .iter()
            .all(|(_, prefix)| !prefix.starts_with("space/")),
        "a space was read for a connection without a handshake: {:?}",
        n.reads
    );
    n.auto_io = true;
    n.complete_io(T);
    // A second hello on a welcomed connection ends it too.
    let twice = n.connect_app(T, APP);
    message(
        &mut n,
        T,
        twice,
        Ok(ClientMessage::Hello {
            versions: vec![1],
            client: "again".into(),
            durability: None,
        }),
    );
    assert_eq!(refusal(&n, twice).as_deref(), Some("rpc.not_connected"));
    assert!(n.closed.contains(&twice));
    // A proper one is untouched.
    let good = n.connect_app(T, APP);
    assert_eq!(
        n.call(T, good, Request::Ping {}).unwrap(),
        Response::Done {}
    );
}

#[test]
fn an_origin_without_consent_gets_a_trickle_and_a_granted_app_keeps_working() {
    let mut n = node();
    n.allow(T, APP, vec![]);
    let app = n.connect_app(T, APP);
    let evil = n.connect_app(T, EVIL);
    // hello took one token of the burst.
    for _ in 1..CHATTER_BURST {
        n.send(T, evil, Request::Ping {});
    }
    assert!(!n.closed.contains(&evil), "closed within its burst");
    n.send(T, evil, Request::Ping {});
    assert_eq!(refusal(&n, evil).as_deref(), Some("rpc.rate_limited"));
    assert!(n.closed.contains(&evil));
    // A granted app is not metered.
    for _ in 0..(CHATTER_BURST * 4) {
        n.send(T, app, Request::Ping {});
    }
    assert!(!n.closed.contains(&app));
    // A slow heartbeat without consent lasts: a ping every second for a minute.
    let patient = n.connect_app(T, EVIL);
    for s in 1..=60 {
        let id = n.send(T + s * 1_000, patient, Request::Ping {});
        assert!(n.answer(patient, id).is_some());
    }
    assert!(!n.closed.contains(&patient));
}

#[test]
fn repeated_undecodable_messages_end_the_connection() {
    let mut n = node();
    n.allow(T, APP, vec![]);
    let app = n.connect_app(T, APP);
    let bad = || {
        Err(Undecodable {
            id: None,
            error: RpcError::bad_request("not JSON"),
        })
    };
    for _ in 0..STRIKE_BURST {
        message(&mut n, T, app, bad());
    }
    assert!(!n.closed.contains(&app), "closed within its allowance");
    let rejected = n.app[&app]
        .iter()
        .filter(|m| matches!(m, VaultMessage::Rejected { .. }))
        .count();
    assert_eq!(
        rejected as u64, STRIKE_BURST,
        "each bad message is answered"
    );
    message(&mut n, T, app, bad());
    assert_eq!(refusal(&n, app).as_deref(), Some("rpc.rate_limited"));
    assert!(n.closed.contains(&app));
    // Spread out, they are tolerated: an app with an occasional bug stays.
    let slow = n.connect_app(T, APP);
    for k in 1..=40u64 {
        message(&mut n, T + k * 4_000, slow, bad());
    }
    assert!(!n.closed.contains(&slow));
}

#[test]
fn a_message_over_the_limits_is_answered_then_ends_the_connection() {
    let mut n = node();
    n.allow(T, APP, vec![]);
    let app = n.connect_app(T, APP);
    message(
        &mut n,
        T,
        app,
        Err(Undecodable {
            id: Some(7),
            error: RpcError::too_large("the message (bytes)", 5 << 20, 4 << 20),
        }),
    );
    assert!(matches!(n.answer(app, 7), Some(Err(e)) if e.code == "rpc.too_large"));
    assert_eq!(refusal(&n, app).as_deref(), Some("rpc.too_large"));
    assert!(n.closed.contains(&app));
}

#[test]
fn connections_are_capped_per_origin_closing_the_quietest() {
    let mut n = node();
    n.allow(T, APP, vec![]);
    let first = n.connect_app(T, APP);
    let mut conns = vec![first];
    for k in 1..MAX_CONNS_PER_ORIGIN as u64 {
        conns.push(n.connect_app(T + k, APP));
    }
    // The first one stays busy: the quietest is the second.
    n.call(T + 1_000, first, Request::Ping {}).unwrap();
    assert!(n.closed.is_empty());
    let newest = n.connect_app(T + 2_000, APP);
    assert_eq!(refusal(&n, conns[1]).as_deref(), Some("rpc.rate_limited"));
    assert!(n.closed.contains(&conns[1]));
    assert_eq!(n.closed.len(), 1);
    n.call(T + 2_000, newest, Request::Ping {}).unwrap();
    n.call(T + 2_000, first, Request::Ping {}).unwrap();

    // Origins without consent share one cap: another origin's flood of
    // connections never closes a granted app's.
    let mut m = node();
    m.allow(T, APP, vec![]);
    let app = m.connect_app(T, APP);
    for k in 0..(MAX_UNGRANTED_CONNS as u64 + 50) {
        let origin = format!("https://evil{}.example", k % 200);
        m.connect_app(T + k, &origin);
    }
    assert_eq!(m.closed.len(), 50);
    assert!(!m.closed.contains(&app));
    assert_eq!(
        m.call(T + 500, app, Request::Ping {}).unwrap(),
        Response::Done {}
    );
}

#[test]
fn live_queries_are_capped_per_origin_and_named_per_connection() {
    let mut n = node();
    n.allow(T, APP, vec![]);
    let app = n.connect_app(T, APP);
    let space = n.create_space(T, app);
    let other = n.connect_app(T, APP);
    // Ids count per connection: each connection's first live query is 1.
    for conn in [app, other] {
        let Response::Subscribed { subscription, .. } = n.call(T, conn, subscribe(&space)).unwrap()
        else {
            panic!()
        };
        assert_eq!(subscription, 1);
    }
    let mut conns = vec![app, other];
    while conns.len() * echo_core::rpc::MAX_SUBSCRIPTIONS <= MAX_SUBSCRIPTIONS_PER_ORIGIN {
        conns.push(n.connect_app(T, APP));
    }
    let mut open = 2;
    let mut refused = 0;
    for &conn in &conns {
        let have = if conn == app || conn == other { 1 } else { 0 };
        for _ in have..echo_core::rpc::MAX_SUBSCRIPTIONS {
            match n.call(T, conn, subscribe(&space)) {
                Ok(_) => open += 1,
                Err(e) => {
                    assert_eq!(e.code, "rpc.too_many_subscriptions");
                    refused += 1;
                }
            }
        }
    }
    assert_eq!(open, MAX_SUBSCRIPTIONS_PER_ORIGIN);
    assert!(refused > 0);
    // Unsubscribing one makes room for one; another connection's id is
    // not this connection's to end.
    assert_eq!(
        n.call(T, other, Request::Unsubscribe { subscription: 1 })
            .unwrap(),
        Response::Done {}
    );
    assert_eq!(
        n.call(T, other, Request::Unsubscribe { subscription: 1 })
            .unwrap_err()
            .code,
        "rpc.no_such_subscription"
    );
    n.call(T, other, subscribe(&space)).unwrap();
    assert!(n.call(T, other, subscribe(&space)).is_err());
    // Another origin has its own allowance.
    n.allow(T, "https://other.example", vec![space.clone()]);
    let third = n.connect_app(T, "https://other.example");
    n.call(T, third, subscribe(&space)).unwrap();
}

#[test]
fn idle_connections_expire_and_live_ones_stay() {
    let mut n = node();
    n.allow(T, APP, vec![]);
    let quiet = n.connect_app(T, APP);
    n.silence(quiet);
    let busy = n.connect_app(T, APP);
    n.silence(busy);
    let mut now = T;
    while now < T + IDLE_TIMEOUT + 60_000 {
        now += 5_000;
        n.call(now, busy, Request::Ping {}).unwrap();
        let at = n.vault().poll_timeout().expect("a sweep is scheduled");
        if at <= now {
            n.input(now, Input::Timeout);
        }
    }
    assert!(n.closed.contains(&quiet), "the idle connection was kept");
    assert_eq!(refusal(&n, quiet).as_deref(), Some("rpc.disconnected"));
    assert!(!n.closed.contains(&busy));
    // The simulated SDK's heartbeat keeps a connection open however long
    // nothing else happens.
    let pinging = n.connect_app(now, APP);
    let later = now + 10 * IDLE_TIMEOUT;
    while now < later {
        now += 60_000;
        n.input(now, Input::Timeout);
    }
    assert!(!n.closed.contains(&pinging));
    assert_eq!(
        n.call(now, pinging, Request::Ping {}).unwrap(),
        Response::Done {}
    );
}

#[test]
fn each_origin_gets_its_own_pseudonym_for_the_user_and_never_a_key() {
    let mut n = node();
    n.allow(T, APP, vec![]);
    n.allow(T, EVIL, vec![]);
    let user = |n: &mut Node, now: u64, origin: &str| {
        let conn = n.connect_app(now, origin);
        match n.call(now, conn, Request::IdentityInfo {}).unwrap() {
            Response::Identity(id) => id,
            other => panic!("{other:?}"),
        }
    };
    let app = user(&mut n, T, APP);
    let evil = user(&mut n, T, EVIL);
    assert_ne!(app.user, evil.user);
    assert_eq!(app.user.len(), 26);
    let admin = n.connect_admin(T);
    let echo_core::rpc::AdminResponse::Status { identity, .. } = n
        .admin_call(T, admin, echo_core::rpc::AdminRequest::Status {})
        .unwrap()
    else {
        panic!()
    };
    for seen in [&app.user, &evil.user] {
        assert!(!identity.identity_key.contains(seen.as_str()));
        assert!(!identity.device_key.contains(seen.as_str()));
    }
    // The same for the same origin, after a restart too.
    n.restart(T + 1);
    assert_eq!(user(&mut n, T + 1, APP), app);
}
