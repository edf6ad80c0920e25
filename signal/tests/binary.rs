//! The `echo-signal` binary itself: start, wait on `/healthz`, stop with
//! SIGTERM; and its start-up errors.

#![cfg(unix)]

mod common;

use common::{fixture, get};
use hyper::StatusCode;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_echo-signal");

/// Reads the child's stderr on a thread; returns the lines as they come.
fn stderr_lines(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The address in a start-up line `... site on http://...:PORT (ADDR) from DIR`.
fn listening(line: &str, site: &str) -> Option<SocketAddr> {
    let rest = line.strip_prefix(&format!("echo-signal: {site} site on "))?;
    let addr = rest.split_once('(')?.1.split_once(')')?.0;
    addr.parse().ok()
}

/// Waits until `/healthz` answers 200, as a start-up script would.
async fn wait_healthy(addr: SocketAddr, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("echo-signal exited early: {status}");
        }
        if tokio::net::TcpStream::connect(addr).await.is_ok()
            && get(addr, "/healthz").await.status == StatusCode::OK
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "echo-signal did not become healthy"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn serves_until_sigterm() {
    let dirs = fixture();
    let mut child = Command::new(BIN)
        .arg("--vault-dir")
        .arg(dirs.path().join("vault"))
        .arg("--vault-addr")
        .arg("127.0.0.1:0")
        .arg("--app-dir")
        .arg(dirs.path().join("app"))
        .arg("--app-addr")
        .arg("127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Port 0: the server prints where it listens.
    let lines = stderr_lines(&mut child);
    let mut seen = Vec::new();
    let (mut vault, mut app) = (None, None);
    while vault.is_none() || app.is_none() {
        let line = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("start-up lines");
        vault = vault.or(listening(&line, "vault"));
        app = app.or(listening(&line, "app"));
        seen.push(line);
    }
    let (vault, app) = (vault.unwrap(), app.unwrap());
    wait_healthy(vault, &mut child).await;
    wait_healthy(app, &mut child).await;

    let r = get(vault, "/vault.html").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r
        .header("content-security-policy")
        .ends_with("frame-ancestors *"));
    // The default opener page is /consent.html.
    assert_eq!(
        get(vault, "/consent.html")
            .await
            .header("cross-origin-opener-policy"),
        ""
    );
    let r = get(app, "/").await;
    assert!(r.header("content-security-policy").contains(&format!(
        "frame-src http://vault.localhost:{}; ",
        vault.port()
    )));

    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "echo-signal did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    seen.extend(lines.iter());
    let stderr = seen.join("\n");
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        stderr.contains("vault site on http://vault.localhost:"),
        "{stderr}"
    );
    assert!(stderr.contains("stopped"), "{stderr}");
    assert!(tokio::net::TcpStream::connect(vault).await.is_err());
}

#[test]
fn missing_directory_is_an_error() {
    let output = Command::new(BIN)
        .args([
            "--vault-dir",
            "/nonexistent/echo-signal-test",
            "--vault-addr",
            "127.0.0.1:0",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("vault directory /nonexistent/echo-signal-test"),
        "{stderr}"
    );
}

#[test]
fn taken_port_is_an_error() {
    let dirs = fixture();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = Command::new(BIN)
        .arg("--app-dir")
        .arg(dirs.path().join("app"))
        .args(["--app-addr", &addr])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr} for the app site")),
        "{stderr}"
    );
}

#[test]
fn nothing_to_serve_is_an_error() {
    let output = Command::new(BIN).stdin(Stdio::null()).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("nothing to serve"));
}
