//! `echo-signal`: serve a vault site and an app site.
//!
//! ```text
//! echo-signal --vault-dir shell/dist --vault-addr 127.0.0.1:8600 \
//!             --app-dir demo-app/dist --app-addr 127.0.0.1:8601 \
//!             [--redis redis+unix:///run/redis/redis.sock]
//! ```
//!
//! then open http://app.localhost:8601 (which embeds http://vault.localhost:8600).
//! Exits 0 after SIGINT/SIGTERM, 1 when it cannot start (missing directory,
//! taken port), 2 on bad arguments.

use clap::Parser;
use echo_signal::{Config, Server, SiteConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// ECHO's server: serves a vault origin's files and an app's files, each
/// with its own security headers, and the signaling rendezvous
/// (`/signal`, a WebSocket) on the vault's listener. `GET /healthz`
/// answers 200 on both.
#[derive(Parser, Debug)]
#[command(name = "echo-signal", version)]
struct Args {
    /// Directory of the vault site (e.g. shell/dist).
    #[arg(long, value_name = "DIR")]
    vault_dir: Option<PathBuf>,
    /// Address of the vault site.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8600")]
    vault_addr: SocketAddr,
    /// Directory of the app site (e.g. demo-app/dist).
    #[arg(long, value_name = "DIR")]
    app_dir: Option<PathBuf>,
    /// Address of the app site.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8601")]
    app_addr: SocketAddr,
    /// Public origin of the vault, which the app site may frame
    /// [default: http://vault.localhost:<vault port>].
    #[arg(long, value_name = "URL")]
    vault_origin: Option<String>,
    /// Origins allowed to embed the vault (CSP frame-ancestors), space- or
    /// comma-separated; repeatable [default: *, any app: the vault asks the
    /// user before it serves an origin].
    #[arg(long, value_name = "ORIGINS", value_delimiter = ',')]
    frame_ancestors: Vec<String>,
    /// A vault page opened as a popup by an app (or the vault's iframe),
    /// served without COOP so that it keeps its opener; repeatable.
    #[arg(long, value_name = "PATH", default_values_t = ["/consent.html".to_string(), "/invite.html".to_string(), "/window.html".to_string()])]
    opener_page: Vec<String>,
    /// A vault page other sites may embed besides the shell /vault.html
    /// (the benchmark's floor pages); repeatable [default: none].
    #[arg(long, value_name = "PATH")]
    framable_page: Vec<String>,
    /// Page origins besides the vault's that may use the signaling
    /// rendezvous (`/signal`), comma-separated; clients without an Origin
    /// (native peers) always may.
    #[arg(long, value_name = "ORIGINS", value_delimiter = ',')]
    signal_origins: Vec<String>,
    /// Share signaling topics with other echo-signal nodes through this
    /// Redis (redis://host:port, redis+unix:///path/to/socket).
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// TEST ONLY: make the relay the attacker. `POST /signal/test/tamper`
    /// (`on`/`off`) then switches changing the DTLS fingerprint in the
    /// WebRTC descriptions it relays. Never use it in a deployment.
    #[arg(long)]
    signal_test_tamper: bool,
    /// Sockets one client address may hold open on `/signal`.
    #[arg(long, value_name = "N", default_value_t = 256)]
    signal_max_sockets_per_address: usize,
    /// Longest signaling frame, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    signal_max_frame_bytes: usize,
    /// Longest `data` of one signaling message, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 32 * 1024)]
    signal_max_data_bytes: usize,
    /// Topics one socket may be on at once.
    #[arg(long, value_name = "N", default_value_t = 64)]
    signal_max_topics: usize,
    /// Messages a socket may send per second, sustained.
    #[arg(long, value_name = "N", default_value_t = 50)]
    signal_messages_per_second: u32,
    /// Messages a socket may send in a burst.
    #[arg(long, value_name = "N", default_value_t = 200)]
    signal_burst: u32,
    /// Seconds between pings.
    #[arg(long, value_name = "SECONDS", default_value_t = 20)]
    signal_heartbeat: u64,
    /// Seconds without a frame or pong before a socket is closed.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    signal_idle_timeout: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let frame_ancestors = args
        .frame_ancestors
        .iter()
        .flat_map(|list| list.split_whitespace())
        .map(str::to_string)
        .collect();
    let config = Config {
        vault: args.vault_dir.map(|dir| SiteConfig {
            dir,
            addr: args.vault_addr,
        }),
        app: args.app_dir.map(|dir| SiteConfig {
            dir,
            addr: args.app_addr,
        }),
        vault_origin: args.vault_origin,
        frame_ancestors,
        opener_pages: args.opener_page,
        extra_framable_pages: args.framable_page,
        signal_limits: echo_signal::rendezvous::Limits {
            sockets_per_address: args.signal_max_sockets_per_address,
            frame_bytes: args.signal_max_frame_bytes,
            data_bytes: args.signal_max_data_bytes,
            topics: args.signal_max_topics,
            messages_per_second: args.signal_messages_per_second,
            burst: args.signal_burst,
            heartbeat: std::time::Duration::from_secs(args.signal_heartbeat.max(1)),
            idle_timeout: std::time::Duration::from_secs(args.signal_idle_timeout.max(1)),
            ..Default::default()
        },
        signal_origins: args.signal_origins,
        redis: args.redis,
        signal_test_tamper: args.signal_test_tamper,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("echo-signal: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("echo-signal: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<(), echo_signal::Error> {
    let server = Server::bind(config).await?;
    for (kind, addr, dir) in server.sites() {
        eprintln!(
            "echo-signal: {} site on http://{}.localhost:{} ({addr}) from {}",
            kind.name(),
            kind.name(),
            addr.port(),
            dir.display()
        );
    }
    server.run(shutdown_signal()).await?;
    eprintln!("echo-signal: stopped");
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
    eprintln!("echo-signal: shutting down");
}
