//! `echo-signal`: ECHO's one server binary.
//!
//! It serves the static files of two sites from two directories on two
//! listeners — the **vault** origin (the shell page apps embed, the consent
//! popup, the manage page, the engine's worker and wasm) and an **app** site
//! (the demo app) — each with its own security headers, MIME types and
//! caching rules; and, on the vault's listener, the **signaling
//! rendezvous**: `GET /signal`, a WebSocket where vaults join opaque
//! topics, hear who comes and goes, and pass one another small messages,
//! within typed limits. Several nodes share topics through Redis pub/sub
//! (`--redis`); without it one node needs nothing else. So self-hosting a
//! vault is this one binary.
//!
//! - [`policy`]: headers, MIME types, the content-hash caching rule;
//! - [`files`]: the static file handler (path checks, `ETag`, index pages);
//! - [`rendezvous`]: signaling (wire format in `signal/PROTOCOL.md`);
//! - [`server`]: configuration, binding, routers, graceful shutdown.

pub mod files;
pub mod policy;
pub mod rendezvous;
pub mod server;

pub use policy::SiteKind;
pub use server::{Config, Error, Server, SiteConfig};
