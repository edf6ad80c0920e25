//! Listeners, routers and shutdown.
//!
//! [`Server::bind`] checks the directories and binds every listener before
//! anything is served, so a missing directory or a taken port is an error
//! at start-up, never a half-running server. [`Server::run`] serves until the
//! shutdown future resolves, then drains connections for at most
//! [`DRAIN_TIMEOUT`].
//!
//! Each site's [`router`] is `/healthz` + the static files as the fallback,
//! under a layer that adds the site's headers to every response. On the
//! vault's listener the signaling rendezvous (`/signal`,
//! `/signal/status`) is merged in before it; the static files never
//! shadow it.

use crate::files::{self, Site};
use crate::policy::{Policy, SiteKind};
use crate::rendezvous::{self, Hub, Rendezvous};
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// After shutdown is asked for, connections still open this long are dropped.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// One site to serve: a directory on an address.
#[derive(Clone, Debug)]
pub struct SiteConfig {
    /// The directory whose files are served.
    pub dir: PathBuf,
    /// Where to listen (port 0: any free port).
    pub addr: SocketAddr,
}

/// What to serve.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// The vault site, if served.
    pub vault: Option<SiteConfig>,
    /// The app site, if served.
    pub app: Option<SiteConfig>,
    /// The vault's public origin, which the app site may frame. Default:
    /// `http://vault.localhost:PORT` with the vault listener's port, when
    /// the vault site is served here.
    pub vault_origin: Option<String>,
    /// Who may embed the vault (`frame-ancestors`); empty means `*`.
    pub frame_ancestors: Vec<String>,
    /// Vault pages (request paths such as `/consent.html`) served without
    /// COOP, because they are popups that must keep their opener.
    pub opener_pages: Vec<String>,
    /// Vault pages (request paths) other sites may embed besides the shell
    /// `/vault.html` — the benchmark's floor pages; none in a deployment.
    pub extra_framable_pages: Vec<String>,
    /// Limits of the signaling rendezvous on the vault's listener.
    pub signal_limits: crate::rendezvous::Limits,
    /// Page origins besides the vault's own that may use signaling.
    pub signal_origins: Vec<String>,
    /// Redis to share topics with other nodes through (`redis://…`,
    /// `redis+unix:///path`); none: this node alone.
    pub redis: Option<String>,
    /// The tampering test mode of the relay (`rendezvous::tamper`): for the
    /// end-to-end tests only.
    pub signal_test_tamper: bool,
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Neither site was asked for.
    #[error("nothing to serve: give --vault-dir and/or --app-dir")]
    NothingToServe,
    /// A site's directory is missing or unreadable.
    #[error("{site} directory {dir}: {source}")]
    Dir {
        /// Which site.
        site: &'static str,
        /// The directory as given.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A site's directory exists but is not a directory.
    #[error("{site} directory {dir}: not a directory")]
    NotADir {
        /// Which site.
        site: &'static str,
        /// The directory as given.
        dir: PathBuf,
    },
    /// A CSP source given on the command line would break the policy.
    #[error("invalid CSP source {0:?}: use an origin such as https://app.example, or *")]
    BadSource(String),
    /// An opener page is not a path.
    #[error("invalid opener page {0:?}: use a path such as /consent.html")]
    BadOpenerPage(String),
    /// A framable page is not a path.
    #[error("invalid framable page {0:?}: use a path such as /floor.html")]
    BadFramablePage(String),
    /// The Redis URL is not one.
    #[error("invalid --redis URL: {0}")]
    Redis(String),
    /// A port could not be bound (taken, or not allowed).
    #[error("cannot listen on {addr} for the {site} site: {source}")]
    Bind {
        /// Which site.
        site: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("serving the {site} site failed: {source}")]
    Serve {
        /// Which site.
        site: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

struct Bound {
    site: Arc<Site>,
    listener: TcpListener,
    addr: SocketAddr,
}

/// Sites whose directories were checked and whose listeners are bound.
pub struct Server {
    bound: Vec<Bound>,
    rendezvous: Arc<Rendezvous>,
}

impl Server {
    /// Checks the directories and the options, binds the listeners.
    pub async fn bind(config: Config) -> Result<Server, Error> {
        if config.vault.is_none() && config.app.is_none() {
            return Err(Error::NothingToServe);
        }
        for source in config.frame_ancestors.iter().chain(&config.vault_origin) {
            if !crate::policy::valid_source(source) {
                return Err(Error::BadSource(source.clone()));
            }
        }
        for page in &config.opener_pages {
            if !page.starts_with('/') || files::decode_path(page).is_none() {
                return Err(Error::BadOpenerPage(page.clone()));
            }
        }
        for page in &config.extra_framable_pages {
            if !page.starts_with('/') || files::decode_path(page).is_none() {
                return Err(Error::BadFramablePage(page.clone()));
            }
        }
        let mut roots = Vec::new();
        for (kind, site) in [
            (SiteKind::Vault, &config.vault),
            (SiteKind::App, &config.app),
        ] {
            if let Some(site) = site {
                roots.push((kind, site.addr, canonical_dir(kind, &site.dir).await?));
            }
        }
        let mut listeners = Vec::new();
        for (kind, addr, root) in roots {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| Error::Bind {
                    site: kind.name(),
                    addr,
                    source,
                })?;
            let local = listener.local_addr().map_err(|source| Error::Bind {
                site: kind.name(),
                addr,
                source,
            })?;
            listeners.push((kind, listener, local, root));
        }
        let vault_port = listeners
            .iter()
            .find(|l| l.0 == SiteKind::Vault)
            .map(|l| l.2.port());
        let vault_origin = config
            .vault_origin
            .clone()
            .or_else(|| vault_port.map(|port| format!("http://vault.localhost:{port}")));
        let opener_pages: HashSet<String> = config.opener_pages.iter().cloned().collect();
        let bound = listeners
            .into_iter()
            .map(|(kind, listener, addr, root)| {
                let policy = match kind {
                    SiteKind::Vault => Policy::vault(
                        &config.frame_ancestors,
                        opener_pages.clone(),
                        &config.extra_framable_pages,
                    ),
                    SiteKind::App => Policy::app(vault_origin.as_deref()),
                };
                Bound {
                    site: Arc::new(Site { root, policy }),
                    listener,
                    addr,
                }
            })
            .collect();
        let mut origins = config.signal_origins.clone();
        origins.extend(vault_origin);
        let rendezvous = Rendezvous::new(
            config.signal_limits.clone(),
            origins,
            config.redis.as_deref(),
        )
        .map_err(|e| Error::Redis(e.to_string()))?;
        let mut rendezvous = rendezvous;
        if config.signal_test_tamper {
            rendezvous.tamper = Some(Default::default());
        }
        let rendezvous = Arc::new(rendezvous);
        Ok(Server { bound, rendezvous })
    }

    /// The signaling hub (for status and tests).
    pub fn hub(&self) -> Arc<Hub> {
        self.rendezvous.hub.clone()
    }

    /// The address a site listens on (with the real port when 0 was asked).
    pub fn local_addr(&self, kind: SiteKind) -> Option<SocketAddr> {
        self.bound
            .iter()
            .find(|b| b.site.policy.kind == kind)
            .map(|b| b.addr)
    }

    /// The served sites: kind, address and canonical directory.
    pub fn sites(&self) -> impl Iterator<Item = (SiteKind, SocketAddr, &std::path::Path)> {
        self.bound
            .iter()
            .map(|b| (b.site.policy.kind, b.addr, b.site.root.as_path()))
    }

    /// Serves every site until `shutdown` resolves, then lets open requests
    /// finish for at most [`DRAIN_TIMEOUT`].
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        for bound in self.bound {
            let name = bound.site.policy.kind.name();
            let kind = bound.site.policy.kind;
            let mut app = router(bound.site);
            if kind == SiteKind::Vault {
                app = rendezvous::routes(self.rendezvous.clone()).merge(app);
            }
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            let mut stop = stop_rx.clone();
            tasks.spawn(async move {
                let stopped = async move {
                    let _ = stop.wait_for(|s| *s).await;
                };
                // No Nagle: signaling is small messages one way at a time
                // (a 101 then `welcome` would otherwise wait for an ACK).
                let listener = bound.listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
                    .map_err(|source| Error::Serve { site: name, source })
            });
        }
        // The Redis bridge runs until the server stops (aborted with it).
        let bridge = self
            .rendezvous
            .bridge
            .clone()
            .map(|bridge| tokio::spawn(bridge.run()));
        let _abort_bridge = AbortOnDrop(bridge);
        let mut stop_rx = stop_rx;
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let drained = async {
            while let Some(joined) = tasks.join_next().await {
                if let Ok(Err(error)) = joined {
                    return Err(error);
                }
            }
            Ok(())
        };
        tokio::pin!(drained);
        tokio::select! {
            result = &mut drained => return result,
            _ = stop_rx.wait_for(|s| *s) => {}
        }
        match tokio::time::timeout(DRAIN_TIMEOUT, drained).await {
            Ok(result) => result,
            Err(_) => Ok(()), // connections still open are dropped with the tasks
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

async fn canonical_dir(kind: SiteKind, dir: &std::path::Path) -> Result<PathBuf, Error> {
    let canonical = tokio::fs::canonicalize(dir)
        .await
        .map_err(|source| Error::Dir {
            site: kind.name(),
            dir: dir.to_path_buf(),
            source,
        })?;
    if !tokio::fs::metadata(&canonical)
        .await
        .is_ok_and(|m| m.is_dir())
    {
        return Err(Error::NotADir {
            site: kind.name(),
            dir: dir.to_path_buf(),
        });
    }
    Ok(canonical)
}

/// A site's router: `/healthz`, then its files; its headers on every response.
pub fn router(site: Arc<Site>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .fallback(files::serve)
        .layer(axum::middleware::map_response_with_state(
            site.clone(),
            site_headers,
        ))
        .with_state(site)
}

async fn healthz() -> Response {
    let mut response = "ok\n".into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The headers every response of a site carries.
async fn site_headers(State(site): State<Arc<Site>>, mut response: Response) -> Response {
    let policy = &site.policy;
    let headers = response.headers_mut();
    // A page may have set its own (files.rs: vault pages no site may frame).
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy.csp.clone());
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    if let Some(frame_options) = &policy.frame_options {
        if !headers.contains_key(header::X_FRAME_OPTIONS) {
            headers.insert(header::X_FRAME_OPTIONS, frame_options.clone());
        }
    }
    response
}
