//! The server in-process on ephemeral ports, asked over real HTTP.

mod common;

use common::{fixture, get, raw, raw_status, request, TempDir, SECRET};
use echo_signal::{Config, Error, Server, SiteConfig, SiteKind};
use hyper::{Method, StatusCode};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::oneshot;

struct Running {
    vault: SocketAddr,
    app: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), Error>>,
    _dirs: TempDir,
}

impl Running {
    async fn stop(mut self) -> Result<(), Error> {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .expect("stops in time")
            .unwrap()
    }
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn start_with(configure: impl FnOnce(&mut Config)) -> Running {
    let dirs = fixture();
    let mut config = Config {
        vault: Some(SiteConfig {
            dir: dirs.path().join("vault"),
            addr: any_port(),
        }),
        app: Some(SiteConfig {
            dir: dirs.path().join("app"),
            addr: any_port(),
        }),
        opener_pages: vec!["/consent.html".into()],
        ..Config::default()
    };
    configure(&mut config);
    let server = Server::bind(config).await.unwrap();
    let vault = server.local_addr(SiteKind::Vault).unwrap();
    let app = server.local_addr(SiteKind::App).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    Running {
        vault,
        app,
        stop: Some(stop),
        task,
        _dirs: dirs,
    }
}

async fn start() -> Running {
    start_with(|_| {}).await
}

const VAULT_CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; connect-src 'self' ws: wss:; frame-ancestors *";
/// The vault's pages other than the shell: no site may frame them.
const VAULT_PAGE_CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; connect-src 'self' ws: wss:; frame-ancestors 'none'";

fn app_csp(vault_port: u16) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; connect-src 'self'; frame-src http://vault.localhost:{vault_port}; \
         frame-ancestors 'self'"
    )
}

/// The headers every response of the site carries, whatever its status.
fn assert_site_headers(reply: &common::Reply, csp: &str, frame_options: &str) {
    assert_eq!(reply.header("content-security-policy"), csp);
    assert_eq!(reply.header("x-content-type-options"), "nosniff");
    assert_eq!(reply.header("referrer-policy"), "no-referrer");
    assert_eq!(reply.header("cross-origin-resource-policy"), "same-origin");
    assert_eq!(reply.header("x-frame-options"), frame_options);
}

#[tokio::test]
async fn vault_pages_have_the_vault_headers() {
    let s = start().await;
    for path in ["/", "/index.html", "/vault.html", "/sub/"] {
        let r = get(s.vault, path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        // Only the shell may be framed by other sites.
        if path == "/vault.html" {
            assert_site_headers(&r, VAULT_CSP, "");
        } else {
            assert_site_headers(&r, VAULT_PAGE_CSP, "DENY");
        }
        assert_eq!(
            r.header("cross-origin-opener-policy"),
            "same-origin-allow-popups",
            "{path}"
        );
        assert_eq!(r.header("content-type"), "text/html; charset=utf-8");
        assert_eq!(r.header("cache-control"), "no-cache");
        assert!(r.header("etag").starts_with('"'), "{path}");
    }
    assert!(get(s.vault, "/vault.html")
        .await
        .text()
        .contains("vault shell"));
    assert!(get(s.vault, "/").await.text().contains("vault manage"));
    // The consent popup keeps its opener: no COOP.
    let r = get(s.vault, "/consent.html").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_site_headers(&r, VAULT_PAGE_CSP, "DENY");
    assert_eq!(r.header("cross-origin-opener-policy"), "");
    // COOP is for documents only.
    let r = get(s.vault, "/app.js").await;
    assert_site_headers(&r, VAULT_CSP, "");
    assert_eq!(r.header("cross-origin-opener-policy"), "");
    s.stop().await.unwrap();
}

#[tokio::test]
async fn app_pages_have_the_app_headers() {
    let s = start().await;
    let csp = app_csp(s.vault.port());
    for path in ["/", "/app.js", "/healthz", "/missing"] {
        let r = get(s.app, path).await;
        assert_site_headers(&r, &csp, "SAMEORIGIN");
        assert_eq!(r.header("cross-origin-opener-policy"), "", "{path}");
    }
    let r = get(s.app, "/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("<title>app</title>"));
    // The two sites serve their own directories.
    assert_eq!(
        get(s.app, "/vault.html").await.status,
        StatusCode::NOT_FOUND
    );
    s.stop().await.unwrap();
}

#[tokio::test]
async fn configured_frame_ancestors_and_vault_origin() {
    let s = start_with(|c| {
        c.frame_ancestors = vec!["https://a.example".into(), "https://b.example:8443".into()];
        c.vault_origin = Some("https://vault.example".into());
    })
    .await;
    let r = get(s.vault, "/vault.html").await;
    assert!(r
        .header("content-security-policy")
        .ends_with("; frame-ancestors https://a.example https://b.example:8443"));
    let r = get(s.app, "/").await;
    assert!(r
        .header("content-security-policy")
        .contains("; frame-src https://vault.example; "));
    s.stop().await.unwrap();
}

#[tokio::test]
async fn errors_and_health_carry_the_site_headers() {
    let s = start().await;
    for (path, method, status) in [
        ("/healthz", Method::GET, StatusCode::OK),
        ("/missing.js", Method::GET, StatusCode::NOT_FOUND),
        ("/", Method::POST, StatusCode::METHOD_NOT_ALLOWED),
        ("/healthz", Method::POST, StatusCode::METHOD_NOT_ALLOWED),
    ] {
        let r = request(s.vault, method.clone(), path, &[]).await;
        assert_eq!(r.status, status, "{method} {path}");
        assert_site_headers(&r, VAULT_CSP, "");
    }
    s.stop().await.unwrap();
}

#[tokio::test]
async fn mime_types() {
    let s = start().await;
    for (path, mime) in [
        ("/index.html", "text/html; charset=utf-8"),
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/worker.mjs", "text/javascript; charset=utf-8"),
        ("/echo_vault_bg.wasm", "application/wasm"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/data.json", "application/json"),
        ("/icon.svg", "image/svg+xml"),
        ("/icon.png", "image/png"),
        ("/favicon.ico", "image/x-icon"),
        ("/manifest.webmanifest", "application/manifest+json"),
        ("/blob.bin", "application/octet-stream"),
        ("/.well-known/security.txt", "text/plain; charset=utf-8"),
    ] {
        let r = get(s.vault, path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.header("content-type"), mime, "{path}");
    }
    s.stop().await.unwrap();
}

#[tokio::test]
async fn caching_by_name() {
    let s = start().await;
    for (path, cache) in [
        ("/app.3f2a9c1d.js", "public, max-age=31536000, immutable"),
        (
            "/echo_vault_bg.0a1b2c3d.wasm",
            "public, max-age=31536000, immutable",
        ),
        ("/app.js", "no-cache"),
        ("/echo_vault_bg.wasm", "no-cache"),
        ("/sw.js", "no-cache"),
        ("/index.html", "no-cache"),
        ("/", "no-cache"),
        ("/manifest.webmanifest", "no-cache"),
    ] {
        let r = get(s.vault, path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.header("cache-control"), cache, "{path}");
    }
    for path in ["/healthz", "/missing"] {
        assert_eq!(
            get(s.vault, path).await.header("cache-control"),
            "no-store",
            "{path}"
        );
    }
    s.stop().await.unwrap();
}

#[tokio::test]
async fn etag_and_if_none_match() {
    let s = start().await;
    for path in ["/app.js", "/", "/app.3f2a9c1d.js"] {
        let first = get(s.vault, path).await;
        let etag = first.header("etag").to_string();
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
        for tag in [
            etag.clone(),
            format!("W/{etag}"),
            format!("\"nope\", {etag}"),
            "*".into(),
        ] {
            let r = request(s.vault, Method::GET, path, &[("if-none-match", &tag)]).await;
            assert_eq!(r.status, StatusCode::NOT_MODIFIED, "{path} {tag}");
            assert!(r.body.is_empty());
            assert_eq!(r.header("etag"), etag);
            assert_eq!(r.header("cache-control"), first.header("cache-control"));
            if path == "/" {
                assert_site_headers(&r, VAULT_PAGE_CSP, "DENY");
            } else {
                assert_site_headers(&r, VAULT_CSP, "");
            }
        }
        let r = request(
            s.vault,
            Method::GET,
            path,
            &[("if-none-match", "\"other\"")],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body, first.body);
    }
    // A page's 304 keeps its COOP.
    let etag = get(s.vault, "/vault.html").await.header("etag").to_string();
    let r = request(
        s.vault,
        Method::GET,
        "/vault.html",
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    assert_eq!(
        r.header("cross-origin-opener-policy"),
        "same-origin-allow-popups"
    );
    s.stop().await.unwrap();
}

#[tokio::test]
async fn head_sends_headers_without_body() {
    let s = start().await;
    let full = get(s.vault, "/app.js").await;
    let r = request(s.vault, Method::HEAD, "/app.js", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-length"), full.body.len().to_string());
    assert_eq!(r.header("content-type"), "text/javascript; charset=utf-8");
    assert_eq!(r.header("etag"), full.header("etag"));
    assert_eq!(
        request(s.vault, Method::HEAD, "/healthz", &[]).await.status,
        StatusCode::OK
    );
    s.stop().await.unwrap();
}

#[tokio::test]
async fn traversal_is_refused() {
    let s = start().await;
    for target in [
        "/../outside/secret.txt",
        "/../../outside/secret.txt",
        "/sub/../../outside/secret.txt",
        "/%2e%2e/outside/secret.txt",
        "/%2E%2E/outside/secret.txt",
        "/.%2e/outside/secret.txt",
        "/%2e%2e%2foutside%2fsecret.txt",
        "/..%2foutside%2fsecret.txt",
        "/..%5coutside%5csecret.txt",
        "/sub/%2e%2e/%2e%2e/outside/secret.txt",
        "/%252e%252e/outside/secret.txt",
        "//../outside/secret.txt",
        "/link-out.txt",
        "/dir-out/secret.txt",
        "/.secret",
        "/%2esecret",
        "/index.html%00.js",
    ] {
        let response = raw(s.vault, &format!("GET {target} HTTP/1.1")).await;
        assert_eq!(raw_status(&response), 404, "{target}: {response}");
        assert!(!response.contains(SECRET), "{target}");
        assert!(response.contains("content-security-policy"), "{target}");
    }
    // A request line in absolute form is checked the same way.
    let response = raw(
        s.vault,
        "GET http://vault.localhost/../outside/secret.txt HTTP/1.1",
    )
    .await;
    assert!(matches!(raw_status(&response), 400 | 404), "{response}");
    assert!(!response.contains(SECRET));
    // A symlink that stays inside the root is served.
    let r = get(s.vault, "/link-in.js").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "export const plain = 1;");
    s.stop().await.unwrap();
}

#[tokio::test]
async fn directories_and_missing_files() {
    let s = start().await;
    let r = get(s.vault, "/sub").await;
    assert_eq!(r.status, StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(r.header("location"), "/sub/");
    let r = get(s.vault, "//sub?x=1").await;
    assert_eq!(
        r.header("location"),
        "/sub/?x=1",
        "never a scheme-relative //host"
    );
    assert!(get(s.vault, "/sub/")
        .await
        .text()
        .contains("<title>sub</title>"));
    for path in [
        "/empty/",
        "/empty",
        "/missing",
        "/missing/",
        "/app.js/",
        "/sub/nope.html",
    ] {
        let r = get(s.vault, path).await;
        if path == "/empty" {
            assert_eq!(r.status, StatusCode::TEMPORARY_REDIRECT);
            continue;
        }
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!r.text().contains("file.txt"), "no listing");
    }
    s.stop().await.unwrap();
}

#[tokio::test]
async fn only_get_and_head() {
    let s = start().await;
    for method in [
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
    ] {
        for path in ["/", "/app.js", "/missing"] {
            let r = request(s.vault, method.clone(), path, &[]).await;
            assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert_eq!(r.header("allow"), "GET, HEAD");
        }
    }
    s.stop().await.unwrap();
}

#[tokio::test]
async fn healthz_on_both_sites() {
    let s = start().await;
    for addr in [s.vault, s.app] {
        let r = get(addr, "/healthz").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.text(), "ok\n");
    }
    s.stop().await.unwrap();
}

#[tokio::test]
async fn stops_on_shutdown() {
    let s = start().await;
    let vault = s.vault;
    // An idle keep-alive connection does not hold the shutdown up.
    let idle = tokio::net::TcpStream::connect(vault).await.unwrap();
    s.stop().await.unwrap();
    drop(idle);
    assert!(tokio::net::TcpStream::connect(vault).await.is_err());
}

#[tokio::test]
async fn start_up_errors() {
    let dirs = fixture();
    let site = |dir: &str, addr: SocketAddr| {
        Some(SiteConfig {
            dir: dirs.path().join(dir),
            addr,
        })
    };
    let bind = |config: Config| async move { Server::bind(config).await.err().expect("an error") };

    let error = bind(Config::default()).await;
    assert!(matches!(error, Error::NothingToServe), "{error}");

    let error = bind(Config {
        vault: site("no-such-dir", any_port()),
        ..Config::default()
    })
    .await;
    assert!(matches!(error, Error::Dir { site: "vault", .. }), "{error}");
    assert!(error.to_string().contains("no-such-dir"), "{error}");

    let error = bind(Config {
        app: site("vault/app.js", any_port()),
        ..Config::default()
    })
    .await;
    assert!(
        matches!(error, Error::NotADir { site: "app", .. }),
        "{error}"
    );

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let error = bind(Config {
        vault: site("vault", any_port()),
        app: site("app", taken.local_addr().unwrap()),
        ..Config::default()
    })
    .await;
    assert!(matches!(error, Error::Bind { site: "app", .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains(&taken.local_addr().unwrap().to_string()),
        "{error}"
    );

    let error = bind(Config {
        vault: site("vault", any_port()),
        frame_ancestors: vec!["https://a.example; script-src *".into()],
        ..Config::default()
    })
    .await;
    assert!(matches!(error, Error::BadSource(_)), "{error}");

    let error = bind(Config {
        vault: site("vault", any_port()),
        opener_pages: vec!["consent.html".into()],
        ..Config::default()
    })
    .await;
    assert!(matches!(error, Error::BadOpenerPage(_)), "{error}");

    let error = bind(Config {
        vault: site("vault", any_port()),
        extra_framable_pages: vec!["floor.html".into()],
        ..Config::default()
    })
    .await;
    assert!(matches!(error, Error::BadFramablePage(_)), "{error}");
}
