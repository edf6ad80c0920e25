//! Test helpers: fixture directories and a minimal HTTP/1.1 client (hyper's
//! client connection for well-formed requests, a raw socket for request
//! lines no client library would send).

#![allow(dead_code)]

pub mod ws;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("echo-signal-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub const SECRET: &str = "SECRET-OUTSIDE-THE-ROOT";

/// `TMP/vault`, `TMP/app` and `TMP/outside/secret.txt` (beside the roots, the
/// target of traversal attempts).
pub fn fixture() -> TempDir {
    let tmp = TempDir::new("fixture");
    let root = tmp.path();
    let write = |rel: &str, body: &str| {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    };
    write("outside/secret.txt", SECRET);
    for (name, body) in [
        ("index.html", "<!doctype html><title>vault manage</title>"),
        ("vault.html", "<!doctype html><title>vault shell</title>"),
        ("consent.html", "<!doctype html><title>consent</title>"),
        ("app.3f2a9c1d.js", "export const hashed = 1;"),
        ("app.js", "export const plain = 1;"),
        ("sw.js", "self.addEventListener('fetch', () => {});"),
        ("worker.mjs", "export {};"),
        ("echo_vault_bg.0a1b2c3d.wasm", "\0asm\x01\0\0\0"),
        ("echo_vault_bg.wasm", "\0asm\x01\0\0\0"),
        ("style.css", "body{}"),
        ("data.json", "{}"),
        ("icon.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>"),
        ("icon.png", "png"),
        ("favicon.ico", "ico"),
        ("manifest.webmanifest", "{}"),
        ("blob.bin", "bin"),
        ("sub/index.html", "<!doctype html><title>sub</title>"),
        ("empty/file.txt", "in a directory without index.html"),
        (".secret", "dotfile"),
        (".well-known/security.txt", "Contact: nobody"),
    ] {
        write(&format!("vault/{name}"), body);
    }
    write("app/index.html", "<!doctype html><title>app</title>");
    write("app/app.js", "console.log('app');");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(
            root.join("outside/secret.txt"),
            root.join("vault/link-out.txt"),
        )
        .unwrap();
        std::os::unix::fs::symlink(root.join("outside"), root.join("vault/dir-out")).unwrap();
        std::os::unix::fs::symlink(root.join("vault/app.js"), root.join("vault/link-in.js"))
            .unwrap();
    }
    tmp
}

/// A response: status, headers, body.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// A header's value as text ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request over a fresh connection.
pub async fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "vault.localhost");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = tokio::time::timeout(
        Duration::from_secs(10),
        sender.send_request(builder.body(Empty::<Bytes>::new()).unwrap()),
    )
    .await
    .expect("response in time")
    .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body,
    }
}

pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, Method::GET, path, &[]).await
}

/// Sends `request_line` as typed (no normalization by any library) and
/// returns the whole raw response.
pub async fn raw(addr: SocketAddr, request_line: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("{request_line}\r\nHost: vault.localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .expect("response in time")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// The status code of a raw response.
pub fn raw_status(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}
