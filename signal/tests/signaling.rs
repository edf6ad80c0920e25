//! The signaling rendezvous over real WebSockets: topics, presence,
//! messages, and every limit with its typed error. Each test runs a server
//! in-process on an ephemeral port.

mod common;

use common::ws::{closed, connect_as, connect_with, next, send, Ws};
use common::{fixture, TempDir};
use echo_signal::rendezvous::Limits;
use echo_signal::{Config, Server, SiteConfig, SiteKind};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const T1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const T2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

struct Running {
    addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dirs: TempDir,
}

async fn start(limits: Limits) -> Running {
    let dirs = fixture();
    let config = Config {
        vault: Some(SiteConfig {
            dir: dirs.path().join("vault"),
            addr: "127.0.0.1:0".parse().unwrap(),
        }),
        vault_origin: Some("http://vault.localhost:8600".into()),
        signal_limits: limits,
        ..Config::default()
    };
    let server = Server::bind(config).await.unwrap();
    let addr = server.local_addr(SiteKind::Vault).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    Running {
        addr,
        _stop: stop,
        _dirs: dirs,
    }
}

/// A socket of a vault page and its peer id (after `welcome`).
async fn connect(addr: SocketAddr) -> (Ws, String) {
    connect_as(addr, Some("http://vault.localhost:8600")).await
}

#[tokio::test]
async fn peers_meet_on_a_topic_and_hear_who_comes_and_goes() {
    let s = start(Limits::default()).await;
    let (mut a, pa) = connect(s.addr).await;
    let (mut b, pb) = connect(s.addr).await;
    send(&mut a, json!({"t": "join", "topic": T1})).await;
    assert_eq!(
        next(&mut a).await,
        json!({"t": "peers", "topic": T1, "peers": []})
    );
    send(&mut b, json!({"t": "join", "topic": T1})).await;
    assert_eq!(
        next(&mut b).await,
        json!({"t": "peers", "topic": T1, "peers": [pa]})
    );
    assert_eq!(
        next(&mut a).await,
        json!({"t": "joined", "topic": T1, "peer": pb})
    );
    // A message goes to exactly its addressee.
    send(
        &mut b,
        json!({"t": "send", "topic": T1, "to": pa, "data": "hello"}),
    )
    .await;
    assert_eq!(
        next(&mut a).await,
        json!({"t": "message", "topic": T1, "from": pb, "data": "hello"})
    );
    // Leaving tells the others; a closed socket leaves every topic.
    send(&mut b, json!({"t": "leave", "topic": T1})).await;
    assert_eq!(
        next(&mut a).await,
        json!({"t": "left", "topic": T1, "peer": pb})
    );
    send(&mut b, json!({"t": "join", "topic": T1})).await;
    assert_eq!(next(&mut b).await["t"], "peers");
    assert_eq!(next(&mut a).await["t"], "joined");
    b.close(None).await.unwrap();
    assert_eq!(
        next(&mut a).await,
        json!({"t": "left", "topic": T1, "peer": pb})
    );
}

#[tokio::test]
async fn sends_need_both_ends_on_the_topic() {
    let s = start(Limits::default()).await;
    let (mut a, _pa) = connect(s.addr).await;
    let (mut b, pb) = connect(s.addr).await;
    send(&mut b, json!({"t": "join", "topic": T2})).await;
    next(&mut b).await;
    // A is not on T2.
    send(
        &mut a,
        json!({"t": "send", "topic": T2, "to": pb, "data": "x"}),
    )
    .await;
    let e = next(&mut a).await;
    assert_eq!(e["code"], "signal.not_on_topic", "{e}");
    // B is not on T1.
    send(&mut a, json!({"t": "join", "topic": T1})).await;
    next(&mut a).await;
    send(
        &mut a,
        json!({"t": "send", "topic": T1, "to": pb, "data": "x"}),
    )
    .await;
    let e = next(&mut a).await;
    assert_eq!(e["code"], "signal.no_such_peer");
    assert_eq!(e["topic"], T1);
    assert!(e["message"].as_str().unwrap().contains("not on the topic"));
}

#[tokio::test]
async fn a_bad_frame_closes_that_socket_only() {
    let s = start(Limits::default()).await;
    let (mut a, pa) = connect(s.addr).await;
    let (mut b, pb) = connect(s.addr).await;
    for ws in [&mut a, &mut b] {
        send(ws, json!({"t": "join", "topic": T1})).await;
        next(ws).await;
    }
    next(&mut a).await; // joined b
    b.send(Message::Text("{not json".into())).await.unwrap();
    let (code, reason) = closed(&mut b).await;
    assert_eq!((code, reason.as_str()), (1003, "signal.bad_frame"));
    assert_eq!(
        next(&mut a).await,
        json!({"t": "left", "topic": T1, "peer": pb})
    );
    // A still works.
    let (mut c, _) = connect(s.addr).await;
    send(&mut c, json!({"t": "join", "topic": T1})).await;
    assert_eq!(next(&mut c).await["peers"], json!([pa]));
    // A malformed topic is a bad frame too.
    send(&mut c, json!({"t": "join", "topic": "XYZ"})).await;
    assert_eq!(closed(&mut c).await.1, "signal.bad_frame");
}

#[tokio::test]
async fn an_oversized_frame_closes_with_1009() {
    let s = start(Limits {
        frame_bytes: 4096,
        ..Limits::default()
    })
    .await;
    let (mut a, pa) = connect(s.addr).await;
    let (mut b, _) = connect(s.addr).await;
    for ws in [&mut a, &mut b] {
        send(ws, json!({"t": "join", "topic": T1})).await;
        next(ws).await;
    }
    send(
        &mut a,
        json!({"t": "send", "topic": T1, "to": pa, "data": "x".repeat(10_000)}),
    )
    .await;
    let (code, reason) = closed(&mut a).await;
    assert_eq!((code, reason.as_str()), (1009, "signal.frame_too_large"));
    assert_eq!(
        next(&mut b).await,
        json!({"t": "left", "topic": T1, "peer": pa})
    );
}

#[tokio::test]
async fn a_binary_frame_closes_with_1003() {
    let s = start(Limits::default()).await;
    let (mut a, _) = connect(s.addr).await;
    a.send(Message::Binary(vec![1, 2, 3].into())).await.unwrap();
    assert_eq!(closed(&mut a).await, (1003, "signal.bad_frame".into()));
}

#[tokio::test]
async fn a_message_reaches_its_addressee_only() {
    let s = start(Limits::default()).await;
    let (mut a, pa) = connect(s.addr).await;
    let (mut b, pb) = connect(s.addr).await;
    let (mut c, pc) = connect(s.addr).await;
    for ws in [&mut a, &mut b, &mut c] {
        send(ws, json!({"t": "join", "topic": T1})).await;
        next(ws).await;
    }
    next(&mut a).await; // joined b
    next(&mut a).await; // joined c
    next(&mut b).await; // joined c
    send(
        &mut b,
        json!({"t": "send", "topic": T1, "to": pa, "data": "for a"}),
    )
    .await;
    assert_eq!(
        next(&mut a).await,
        json!({"t": "message", "topic": T1, "from": pb, "data": "for a"})
    );
    // C got nothing in between: the next thing it reads is this.
    send(
        &mut a,
        json!({"t": "send", "topic": T1, "to": pc, "data": "for c"}),
    )
    .await;
    assert_eq!(next(&mut c).await["data"], "for c");
}

#[tokio::test]
async fn welcome_tells_the_limits() {
    let s = start(Limits {
        topics: 7,
        ..Limits::default()
    })
    .await;
    let mut ws = connect_with(s.addr, None).await.unwrap();
    let welcome = next(&mut ws).await;
    let peer = welcome["peer"].as_str().unwrap();
    assert!(
        peer.len() == 16
            && peer
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(welcome["limits"]["topics"], 7);
    assert_eq!(welcome["limits"]["frame_bytes"], 65536);
    assert_eq!(welcome["limits"]["messages_per_second"], 50);
    assert_eq!(welcome["limits"]["idle_timeout_ms"], 60_000);
}

#[tokio::test]
async fn pongs_keep_a_socket_alive_and_silence_ends_it() {
    let s = start(Limits {
        heartbeat: Duration::from_millis(100),
        idle_timeout: Duration::from_millis(500),
        ..Limits::default()
    })
    .await;
    let (mut a, _) = connect(s.addr).await;
    // Reading answers the server's pings (tungstenite sends the pongs).
    let mut pings = 0;
    let until = tokio::time::Instant::now() + Duration::from_millis(1500);
    while let Ok(frame) = tokio::time::timeout_at(until, a.next()).await {
        match frame {
            Some(Ok(Message::Ping(_))) => pings += 1,
            other => panic!("the socket should stay open: {other:?}"),
        }
    }
    assert!(pings >= 5, "{pings} pings in 1.5 s at a 100 ms heartbeat");
    // Not reading: no pongs go out; the server closes it for idleness.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(closed(&mut a).await, (1001, "signal.idle_timeout".into()));
}

#[tokio::test]
async fn a_socket_that_does_not_read_is_dropped_and_its_peers_hear_it_left() {
    let s = start(Limits {
        queue: 4,
        messages_per_second: 10_000,
        burst: 10_000,
        idle_timeout: Duration::from_millis(800),
        heartbeat: Duration::from_secs(30),
        ..Limits::default()
    })
    .await;
    let (mut r, pr) = connect(s.addr).await;
    send(&mut r, json!({"t": "join", "topic": T1})).await;
    next(&mut r).await;
    let (mut w, _) = connect(s.addr).await;
    send(&mut w, json!({"t": "join", "topic": T1})).await;
    next(&mut w).await;
    // R stops reading; W keeps writing to it (well beyond socket buffers).
    let data = "x".repeat(30_000);
    let mut heard = None;
    for _ in 0..1000 {
        send(
            &mut w,
            json!({"t": "send", "topic": T1, "to": pr, "data": data}),
        )
        .await;
        if let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout(Duration::from_millis(1), w.next()).await
        {
            heard = Some(serde_json::from_str::<Value>(&t).unwrap());
            break;
        }
    }
    let heard = match heard {
        Some(v) => v,
        None => next(&mut w).await,
    };
    assert!(
        heard == json!({"t": "left", "topic": T1, "peer": pr})
            || heard["code"] == "signal.no_such_peer",
        "{heard}"
    );
    drop(r);
}

#[tokio::test]
async fn oversized_data_and_too_many_topics_get_typed_errors() {
    let s = start(Limits {
        topics: 1,
        data_bytes: 10,
        ..Limits::default()
    })
    .await;
    let (mut a, pa) = connect(s.addr).await;
    send(&mut a, json!({"t": "join", "topic": T1})).await;
    next(&mut a).await;
    send(&mut a, json!({"t": "join", "topic": T2})).await;
    let e = next(&mut a).await;
    assert_eq!(e["code"], "signal.too_many_topics");
    send(
        &mut a,
        json!({"t": "send", "topic": T1, "to": pa, "data": "more than ten bytes"}),
    )
    .await;
    assert_eq!(next(&mut a).await["code"], "signal.data_too_large");
}

#[tokio::test]
async fn a_flood_is_rate_limited_then_closed() {
    let s = start(Limits {
        messages_per_second: 5,
        burst: 5,
        rate_strikes: 20,
        ..Limits::default()
    })
    .await;
    let (mut a, _) = connect(s.addr).await;
    for _ in 0..40 {
        send(&mut a, json!({"t": "join", "topic": T1})).await;
    }
    let mut limited = 0;
    let (code, reason) = loop {
        match tokio::time::timeout(Duration::from_secs(5), a.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["code"] == "signal.rate_limited" {
                    limited += 1;
                }
            }
            Some(Ok(Message::Close(Some(f)))) => break (u16::from(f.code), f.reason.to_string()),
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    };
    assert!(
        limited >= 10,
        "{limited} rate_limited errors before the close"
    );
    assert_eq!((code, reason.as_str()), (1008, "signal.rate_limited"));
}

#[tokio::test]
async fn sockets_per_address_origins_and_silence_are_limited() {
    let s = start(Limits {
        sockets_per_address: 2,
        idle_timeout: Duration::from_millis(600),
        heartbeat: Duration::from_secs(30),
        ..Limits::default()
    })
    .await;
    let (mut a, _) = connect(s.addr).await;
    let (_b, _) = connect(s.addr).await;
    match connect_with(s.addr, None).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            let body = String::from_utf8(response.body().clone().unwrap_or_default()).unwrap();
            assert!(body.contains("signal.too_many_sockets"), "{body}");
        }
        other => panic!("a third socket from one address: {:?}", other.map(|_| ())),
    }
    // A closed socket frees its place.
    drop(_b);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let b = connect_with(s.addr, None).await.expect("a place again");
    drop(b);
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A page of another origin is refused (a native client sends none).
    match connect_with(s.addr, Some("http://evil.localhost:9999")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403);
            let body = String::from_utf8(response.body().clone().unwrap_or_default()).unwrap();
            assert!(body.contains("signal.origin_refused"), "{body}");
        }
        other => panic!("another origin: {:?}", other.map(|_| ())),
    }
    // Silence: closed for idleness.
    let (code, reason) = closed(&mut a).await;
    assert_eq!((code, reason.as_str()), (1001, "signal.idle_timeout"));
}

#[tokio::test]
async fn the_status_counts_sockets_and_topics() {
    let s = start(Limits::default()).await;
    let (mut a, _) = connect(s.addr).await;
    send(&mut a, json!({"t": "join", "topic": T1})).await;
    next(&mut a).await;
    let reply = common::get(s.addr, "/signal/status").await;
    assert_eq!(reply.status, 200);
    let v: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(v["sockets"], 1);
    assert_eq!(v["topics"], 1);
    assert_eq!(v["redis"], "off");
    let node = v["node"].as_str().unwrap();
    assert_eq!(node.len(), 16);
}

#[tokio::test]
async fn origins_listed_with_signal_origins_may_connect() {
    let dirs = fixture();
    let config = Config {
        vault: Some(SiteConfig {
            dir: dirs.path().join("vault"),
            addr: "127.0.0.1:0".parse().unwrap(),
        }),
        vault_origin: Some("https://vault.example".into()),
        signal_origins: vec!["https://app.example".into()],
        ..Config::default()
    };
    let server = Server::bind(config).await.unwrap();
    let addr = server.local_addr(SiteKind::Vault).unwrap();
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    for origin in ["https://vault.example", "https://app.example"] {
        let mut ws = connect_with(addr, Some(origin)).await.expect(origin);
        assert_eq!(next(&mut ws).await["t"], "welcome");
    }
    assert!(connect_with(addr, Some("https://other.example"))
        .await
        .is_err());
}
