//! The signaling benchmark (`make bench`; issue: "sockets held at once,
//! messages/s relayed, memory per socket, one node vs two nodes through
//! Redis"). Prints numbers; asserts nothing.
//!
//! ```text
//! cargo build --release -p echo-signal
//! cargo run --release -p echo-signal --example bench -- [--sockets 10000] [--pairs 200] [--messages 1000]
//! ```
//!
//! Spawns `target/release/echo-signal` as a child (its RSS is read from
//! /proc), raises this process's open-file limit (the child inherits it),
//! and talks to it over loopback WebSockets: (1) N sockets held at once,
//! each on a topic of its own, with the server's memory per socket; (2)
//! messages relayed per second between pairs of sockets on one node (each
//! pair on a topic, senders and receivers concurrent, the per-socket rate
//! limit lifted); (3) the same with the sender on node 1 and the receiver
//! on node 2 through Redis. Clients, servers and Redis share the machine's
//! CPUs. The two-node rows start a
//! `redis-server` of their own on a unix socket; without one installed they
//! say so and are skipped.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Args {
    sockets: usize,
    pairs: usize,
    messages: usize,
}

fn args() -> Args {
    let mut out = Args {
        sockets: 10_000,
        pairs: 200,
        messages: 1000,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let value = pair.get(1).and_then(|v| v.parse().ok());
        match (pair[0].as_str(), value) {
            ("--sockets", Some(v)) => out.sockets = v,
            ("--pairs", Some(v)) => out.pairs = v,
            ("--messages", Some(v)) => out.messages = v,
            _ => {
                eprintln!("usage: bench [--sockets N] [--pairs N] [--messages N]");
                std::process::exit(2);
            }
        }
    }
    out
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Raises RLIMIT_NOFILE to its hard limit (or 1,048,576).
fn raise_files() -> u64 {
    #[repr(C)]
    struct Rlimit {
        cur: u64,
        max: u64,
    }
    extern "C" {
        fn getrlimit(resource: i32, rlim: *mut Rlimit) -> i32;
        fn setrlimit(resource: i32, rlim: *const Rlimit) -> i32;
    }
    const RLIMIT_NOFILE: i32 = 7;
    let mut r = Rlimit { cur: 0, max: 0 };
    // SAFETY: plain libc calls with a valid pointer to a repr(C) struct.
    unsafe {
        if getrlimit(RLIMIT_NOFILE, &mut r) == 0 {
            r.cur = r.max.min(1 << 20);
            setrlimit(RLIMIT_NOFILE, &r);
            getrlimit(RLIMIT_NOFILE, &mut r);
        }
    }
    r.cur
}

struct ServerProc {
    child: Child,
    addr: SocketAddr,
    _dir: PathBuf,
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn spawn_server(tag: &str, redis: Option<&str>) -> ServerProc {
    let dir = std::env::temp_dir().join(format!("echo-signal-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("index.html"), "bench");
    let bin = root().join("target/release/echo-signal");
    let mut cmd = Command::new(&bin);
    cmd.arg("--vault-dir")
        .arg(&dir)
        // All clients come from 127.0.0.1, and the relay rows measure the
        // server, not the per-socket rate limit (50/s by default).
        .args([
            "--vault-addr",
            "127.0.0.1:0",
            "--signal-max-sockets-per-address",
            "1000000",
            "--signal-messages-per-second",
            "1000000",
            "--signal-burst",
            "1000000",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(url) = redis {
        cmd.args(["--redis", url]);
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| {
        panic!(
            "cannot start {} ({e}): cargo build --release -p echo-signal",
            bin.display()
        )
    });
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("echo-signal printed its address")
            .expect("a line");
        if let Some(start) = line.find("(127.0.0.1:") {
            let rest = &line[start + 1..];
            let end = rest.find(')').expect(")");
            break rest[..end].parse().expect("an address");
        }
    };
    // Keep draining its stderr (Redis messages) so it never blocks.
    std::thread::spawn(move || for _ in lines {});
    ServerProc {
        child,
        addr,
        _dir: dir,
    }
}

/// `GET /signal/status` of a server (plain HTTP/1.0 over a std socket).
fn server_status(addr: SocketAddr) -> Value {
    use std::io::{Read, Write};
    let mut text = String::new();
    if let Ok(mut s) = std::net::TcpStream::connect(addr) {
        let _ = s.write_all(b"GET /signal/status HTTP/1.0\r\nHost: localhost\r\n\r\n");
        let _ = s.read_to_string(&mut text);
    }
    text.split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok())
        .unwrap_or(Value::Null)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

async fn connect(addr: SocketAddr) -> (Ws, String) {
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/signal"), None, true)
            .await
            .expect("connects");
    let welcome = next(&mut ws).await;
    (ws, welcome["peer"].as_str().unwrap_or_default().to_owned())
}

async fn next(ws: &mut Ws) -> Value {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap_or(Value::Null),
            Some(Ok(_)) => continue,
            other => panic!("socket ended: {other:?}"),
        }
    }
}

async fn send(ws: &mut Ws, v: &Value) {
    ws.send(Message::Text(v.to_string().into()))
        .await
        .expect("send");
}

fn topic(i: usize) -> String {
    format!("{:064x}", i as u128 * 0x9e37_79b9_7f4a_7c15 + 1)
}

/// Holds `n` sockets, each on a topic of its own; returns (seconds, server KiB before, after).
async fn hold(server: &ServerProc, n: usize) -> (f64, u64, u64, Vec<Ws>) {
    let before = rss_kib(server.child.id());
    let started = Instant::now();
    let mut sockets = Vec::with_capacity(n);
    let batch = 200;
    let mut i = 0;
    while i < n {
        let end = (i + batch).min(n);
        let opened = futures_util::future::join_all((i..end).map(|k| async move {
            let (mut ws, _) = connect(server.addr).await;
            send(&mut ws, &json!({"t": "join", "topic": topic(k)})).await;
            let _ = next(&mut ws).await;
            ws
        }))
        .await;
        sockets.extend(opened);
        i = end;
    }
    let secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = rss_kib(server.child.id());
    (secs, before, after, sockets)
}

/// `pairs` pairs, a on `n1` and b on `n2`; each a sends `messages` to its b.
/// Returns messages relayed per second.
async fn relay(n1: SocketAddr, n2: SocketAddr, pairs: usize, messages: usize) -> f64 {
    let mut tasks = Vec::new();
    let mut ready = Vec::new();
    for p in 0..pairs {
        let t = topic(1_000_000 + p);
        let (mut a, _pa) = connect(n1).await;
        let (mut b, pb) = connect(n2).await;
        send(&mut a, &json!({"t": "join", "topic": t})).await;
        let _ = next(&mut a).await;
        send(&mut b, &json!({"t": "join", "topic": t})).await;
        let _ = next(&mut b).await;
        // A hears B joined (through Redis for two nodes).
        loop {
            if next(&mut a).await["t"] == "joined" {
                break;
            }
        }
        ready.push((a, b, t, pb));
    }
    let started = Instant::now();
    for (mut a, mut b, t, pb) in ready {
        let receiver = tokio::spawn(async move {
            let mut got = 0;
            while got < messages {
                if next(&mut b).await["t"] == "message" {
                    got += 1;
                }
            }
        });
        let sender = tokio::spawn(async move {
            let msg = json!({"t": "send", "topic": t, "to": pb, "data": "x".repeat(200)});
            for _ in 0..messages {
                send(&mut a, &msg).await;
            }
            a
        });
        tasks.push((sender, receiver));
    }
    for (sender, receiver) in tasks {
        let _ = sender.await;
        let _ = receiver.await;
    }
    (pairs * messages) as f64 / started.elapsed().as_secs_f64()
}

/// A relay run, or "did not finish" after two minutes (never a hang).
async fn timed(run: impl std::future::Future<Output = f64>) -> String {
    match tokio::time::timeout(Duration::from_secs(120), run).await {
        Ok(rate) => format!("{rate:.0}"),
        Err(_) => "did not finish in 120 s".into(),
    }
}

struct RedisProc(Child, PathBuf);

impl Drop for RedisProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn start_redis() -> Option<(RedisProc, String)> {
    let dir = std::env::temp_dir().join(format!("echo-signal-bench-redis-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let socket = dir.join("redis.sock");
    let child = Command::new("redis-server")
        .args(["--port", "0", "--unixsocket"])
        .arg(&socket)
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let proc = RedisProc(child, dir);
    for _ in 0..200 {
        if socket.exists() {
            return Some((proc, format!("redis+unix://{}", socket.display())));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn row(metric: &str, value: String, unit: &str, note: &str) {
    println!("signal   {metric:<48} {value:>12}  {unit:<8} {note}");
}

#[tokio::main]
async fn main() {
    let a = args();
    let files = raise_files();
    println!("== signal (echo-signal on loopback; open-file limit {files})");
    println!(
        "section  {:<48} {:>12}  {:<8} note",
        "metric", "value", "unit"
    );

    let one = spawn_server("one", None);
    let (secs, before, after, sockets) = hold(&one, a.sockets).await;
    let held = server_status(one.addr)["sockets"].as_u64().unwrap_or(0);
    row(
        "sockets held at once, one node",
        held.to_string(),
        "sockets",
        &format!("each joined to a topic of its own; opened in {secs:.1} s"),
    );
    row(
        "server memory per socket",
        format!(
            "{:.1}",
            (after.saturating_sub(before)) as f64 / sockets.len().max(1) as f64
        ),
        "KiB",
        &format!(
            "server RSS {:.1} → {:.1} MiB",
            before as f64 / 1024.0,
            after as f64 / 1024.0
        ),
    );
    drop(sockets);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rate = relay(one.addr, one.addr, a.pairs, a.messages).await;
    row(
        "messages relayed, one node",
        format!("{rate:.0}"),
        "msg/s",
        &format!("{} pairs × {} messages of 200 B", a.pairs, a.messages),
    );
    drop(one);

    match start_redis() {
        None => println!("signal   two nodes through Redis: skipped — redis-server is not installed (scripts/setup.sh installs it)"),
        Some((_redis, url)) => {
            let n1 = spawn_server("n1", Some(&url));
            let n2 = spawn_server("n2", Some(&url));
            tokio::time::sleep(Duration::from_millis(500)).await;
            let rate = timed(relay(n1.addr, n2.addr, a.pairs, a.messages)).await;
            row("messages relayed, two nodes through Redis", rate, "msg/s", &format!("sender on node 1, receiver on node 2; {} pairs × {}", a.pairs, a.messages));
        }
    }
}
