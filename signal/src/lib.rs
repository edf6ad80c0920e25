//! `echo-signal`: ECHO's one server binary.
//!
//! Today it serves the static files of two sites from two directories on two
//! listeners — the **vault** origin (the shell page apps embed, the consent
//! popup, the manage page, the engine's worker and wasm) and an **app** site
//! (the demo app) — each with its own security headers, MIME types and
//! caching rules. So self-hosting a vault is this one binary.
//!
//! The vault site's listener also serves the signaling rendezvous
//! ([`rendezvous`]: `GET /signal`, a WebSocket where vaults join opaque
//! topics and pass one another small messages, with size, rate and socket
//! limits), so self-hosting stays one binary.
//!
//! - [`policy`]: headers, MIME types, the content-hash caching rule;
//! - [`files`]: the static file handler (path checks, `ETag`, index pages);
//! - [`server`]: configuration, binding, routers, graceful shutdown.

pub mod files;
pub mod policy;
pub mod rendezvous;
pub mod server;

pub use policy::SiteKind;
pub use server::{Config, Error, Server, SiteConfig};
