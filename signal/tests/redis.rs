//! Two signaling nodes sharing topics through a real `redis-server` (a unix
//! socket in a temp dir, no TCP port): peers on different nodes meet and
//! exchange messages; a node that loses Redis says so, keeps serving its
//! own sockets, and recovers when Redis is back.

mod common;

use common::ws::{connect_as, next, send, Ws};
use common::{fixture, TempDir};
use echo_signal::rendezvous::Limits;
use echo_signal::{Config, Server, SiteConfig, SiteKind};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const T: &str = "abababababababababababababababababababababababababababababababab";

/// A redis-server of our own on a unix socket; killed on drop.
struct Redis {
    child: Child,
}

impl Redis {
    fn start(dir: &Path) -> Redis {
        let socket = dir.join("redis.sock");
        let mut child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}): install Debian's redis-server (scripts/setup.sh does)")
            });
        for _ in 0..100 {
            if socket.exists() {
                return Redis { child };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server did not open {}", socket.display());
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Node {
    addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dirs: TempDir,
}

async fn node(redis_url: &str) -> Node {
    let dirs = fixture();
    let config = Config {
        vault: Some(SiteConfig {
            dir: dirs.path().join("vault"),
            addr: "127.0.0.1:0".parse().unwrap(),
        }),
        redis: Some(redis_url.to_owned()),
        signal_limits: Limits::default(),
        ..Config::default()
    };
    let server = Server::bind(config).await.unwrap();
    let addr = server.local_addr(SiteKind::Vault).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    Node {
        addr,
        _stop: stop,
        _dirs: dirs,
    }
}

async fn redis_state(addr: SocketAddr) -> String {
    let reply = common::get(addr, "/signal/status").await;
    let v: Value = serde_json::from_slice(&reply.body).unwrap();
    v["redis"].as_str().unwrap().to_owned()
}

async fn wait_state(addr: SocketAddr, want: &str) {
    for _ in 0..200 {
        if redis_state(addr).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "node {addr} never reported redis {want} (last {})",
        redis_state(addr).await
    );
}

/// A native client's socket (no Origin) and its peer id.
async fn connect(addr: SocketAddr) -> (Ws, String) {
    connect_as(addr, None).await
}

/// Peers on `n1` and `n2` meet on topic T and pass a message each way.
async fn meet(n1: SocketAddr, n2: SocketAddr) -> (Ws, String, Ws, String) {
    let (mut a, pa) = connect(n1).await;
    let (mut b, pb) = connect(n2).await;
    send(&mut a, json!({"t": "join", "topic": T})).await;
    assert_eq!(next(&mut a).await["peers"], json!([]));
    send(&mut b, json!({"t": "join", "topic": T})).await;
    assert_eq!(
        next(&mut b).await["peers"],
        json!([pa]),
        "B on node 2 hears of A on node 1"
    );
    assert_eq!(
        next(&mut a).await,
        json!({"t": "joined", "topic": T, "peer": pb})
    );
    send(
        &mut b,
        json!({"t": "send", "topic": T, "to": pa, "data": "offer"}),
    )
    .await;
    assert_eq!(
        next(&mut a).await,
        json!({"t": "message", "topic": T, "from": pb, "data": "offer"})
    );
    send(
        &mut a,
        json!({"t": "send", "topic": T, "to": pb, "data": "answer"}),
    )
    .await;
    assert_eq!(
        next(&mut b).await,
        json!({"t": "message", "topic": T, "from": pa, "data": "answer"})
    );
    (a, pa, b, pb)
}

/// Reads until a message matching `want` (returned); every message read
/// on the way must pass `allowed`.
async fn until(
    ws: &mut Ws,
    want: impl Fn(&Value) -> bool,
    allowed: impl Fn(&Value) -> bool,
) -> Value {
    loop {
        let v = next(ws).await;
        if want(&v) {
            return v;
        }
        assert!(allowed(&v), "unexpected {v}");
    }
}

async fn status(addr: SocketAddr) -> Value {
    serde_json::from_slice(&common::get(addr, "/signal/status").await.body).unwrap()
}

#[tokio::test]
async fn peers_on_two_nodes_meet_through_redis_and_the_nodes_survive_losing_it() {
    const V: &str = "5656565656565656565656565656565656565656565656565656565656565656";
    let dir = TempDir::new("redis");
    let url = format!("redis+unix://{}", dir.path().join("redis.sock").display());
    let redis = Redis::start(dir.path());
    let n1 = node(&url).await;
    let n2 = node(&url).await;
    wait_state(n1.addr, "connected").await;
    wait_state(n2.addr, "connected").await;
    let (s1, s2) = (status(n1.addr).await, status(n2.addr).await);
    assert_ne!(s1["node"], s2["node"], "each node has its own id");

    let (mut a, pa, mut b, pb) = meet(n1.addr, n2.addr).await;
    // Presence crosses nodes: A leaves and comes back.
    send(&mut a, json!({"t": "leave", "topic": T})).await;
    assert_eq!(
        next(&mut b).await,
        json!({"t": "left", "topic": T, "peer": pa})
    );
    send(&mut a, json!({"t": "join", "topic": T})).await;
    assert_eq!(next(&mut a).await["t"], "peers");
    assert_eq!(
        next(&mut b).await,
        json!({"t": "joined", "topic": T, "peer": pa})
    );
    // A closed socket leaves on every node; a send to it: no_such_peer.
    drop(b);
    assert_eq!(
        next(&mut a).await,
        json!({"t": "left", "topic": T, "peer": pb})
    );
    send(
        &mut a,
        json!({"t": "send", "topic": T, "to": pb, "data": "x"}),
    )
    .await;
    assert_eq!(next(&mut a).await["code"], "signal.no_such_peer");
    let (mut b, pb) = connect(n2.addr).await;
    send(&mut b, json!({"t": "join", "topic": T})).await;
    assert_eq!(next(&mut b).await["peers"], json!([pa]));
    assert_eq!(
        next(&mut a).await,
        json!({"t": "joined", "topic": T, "peer": pb})
    );

    // Redis goes away: both nodes say so and keep serving their own sockets.
    redis.stop();
    wait_state(n1.addr, "lost").await;
    wait_state(n2.addr, "lost").await;
    send(
        &mut a,
        json!({"t": "send", "topic": T, "to": pb, "data": "x"}),
    )
    .await;
    assert_eq!(next(&mut a).await["code"], "signal.unreachable");
    let (mut c, pc) = connect(n1.addr).await;
    send(&mut c, json!({"t": "join", "topic": T})).await;
    let peers = next(&mut c).await;
    assert_eq!(peers["t"], "peers");
    assert!(
        peers["peers"].as_array().unwrap().contains(&json!(pa)),
        "{peers}"
    );
    assert_eq!(
        next(&mut a).await,
        json!({"t": "joined", "topic": T, "peer": pc})
    );
    send(
        &mut c,
        json!({"t": "send", "topic": T, "to": pa, "data": "local"}),
    )
    .await;
    assert_eq!(
        next(&mut a).await["data"],
        "local",
        "a lone node still relays"
    );
    // Two peers join V during the outage, D on node 2 first, then E on node 1.
    let (mut d, pd) = connect(n2.addr).await;
    send(&mut d, json!({"t": "join", "topic": V})).await;
    assert_eq!(next(&mut d).await["peers"], json!([]));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (mut e, pe) = connect(n1.addr).await;
    send(&mut e, json!({"t": "join", "topic": V})).await;
    assert_eq!(next(&mut e).await["peers"], json!([]));

    // Redis is back (same socket, empty): the nodes say so and catch up.
    let _redis = Redis::start(dir.path());
    wait_state(n1.addr, "connected").await;
    wait_state(n2.addr, "connected").await;
    // B hears of C (new to node 2) — and no duplicate of A, whom it knew.
    let no_news_of_a = |v: &Value| {
        v["peer"] != json!(pa)
            && v["peers"]
                .as_array()
                .is_none_or(|p| !p.contains(&json!(pa)))
    };
    until(
        &mut b,
        |v| *v == json!({"t": "joined", "topic": T, "peer": pc}),
        no_news_of_a,
    )
    .await;
    send(
        &mut a,
        json!({"t": "send", "topic": T, "to": pb, "data": "after"}),
    )
    .await;
    let got = until(&mut b, |v| v["t"] == "message", no_news_of_a).await;
    assert_eq!(
        got,
        json!({"t": "message", "topic": T, "from": pa, "data": "after"})
    );
    // D was on V first: E is told it as a peer to dial, D that E joined.
    assert_eq!(
        next(&mut e).await,
        json!({"t": "peers", "topic": V, "peers": [pd]})
    );
    assert_eq!(
        next(&mut d).await,
        json!({"t": "joined", "topic": V, "peer": pe})
    );
    send(
        &mut e,
        json!({"t": "send", "topic": V, "to": pd, "data": "offer"}),
    )
    .await;
    assert_eq!(next(&mut d).await["from"], json!(pe));
    // And new peers on different nodes meet as before.
    let (_a, _b) = meet_fresh(n1.addr, n2.addr).await;
}

/// Like [`meet`] on a topic nobody used before the outage.
async fn meet_fresh(n1: SocketAddr, n2: SocketAddr) -> (Ws, Ws) {
    const U: &str = "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd";
    let (mut a, pa) = connect(n1).await;
    let (mut b, pb) = connect(n2).await;
    send(&mut a, json!({"t": "join", "topic": U})).await;
    next(&mut a).await;
    send(&mut b, json!({"t": "join", "topic": U})).await;
    assert_eq!(next(&mut b).await["peers"], json!([pa]));
    assert_eq!(next(&mut a).await["peer"], json!(pb));
    send(
        &mut a,
        json!({"t": "send", "topic": U, "to": pb, "data": "again"}),
    )
    .await;
    assert_eq!(next(&mut b).await["data"], "again");
    (a, b)
}
