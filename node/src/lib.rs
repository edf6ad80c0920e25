//! `echo-node`: the native host of the vault.
//!
//! The engine ([`echo_core`]) is sans-IO: its vault is one state machine
//! that asks for storage reads and writes, key sealing and bytes to peers,
//! and is handed their results, the time and what peers and apps send.
//! This crate runs that machine in a native process:
//!
//! | what the vault needs | here |
//! |---|---|
//! | storage | [`echo_store_file::FileStore`] in `dir/vault.redb` (durable when `apply` returns) |
//! | key sealing | [`ChaChaKeyWrap`](echo_core::identity::ChaChaKeyWrap) with a 32-byte key in `dir/wrap.key` (mode 0600, made once from OS randomness: [`keyfile`]) |
//! | randomness | `VaultConfig::new(EngineRng::from_os()?.bytes())` at every start |
//! | time | milliseconds since the Unix epoch, handed with every input; `Timeout` at [`Vault::poll_timeout`](echo_core::vault::Vault::poll_timeout) |
//! | peers | TCP connections secured with Noise NN; the handshake hash is the link's channel binding ([`tcp`]) |
//! | apps | in-process ports ([`AppPort`], [`AdminPort`]): channel pairs, as a shell's `MessagePort`s |
//!
//! # The loop
//!
//! ```text
//!  AppPort / AdminPort ──commands──┐
//!  TCP link tasks ─────link events─┼──► vault task: handle_input(now, …) × up to BATCH
//!  poll_timeout() deadline ────────┘         │
//!                                            ▼ drain poll_output():
//!      Read/Write ── FileStore, inline ──► ReadDone / WriteDone
//!      Seal/Unseal ─ ChaChaKeyWrap ──────► Sealed / Unsealed
//!      App/Admin/Close ──► the port's channel
//!      PeerSend/PeerClose ──► the link's writer (Noise frames on TCP)
//!      Event ──► NodeEvent subscribers
//! ```
//!
//! One task owns the [`Vault`](echo_core::vault::Vault), the store and the
//! key ([`host`]); each TCP connection is a task of its own with a reader
//! and a writer half ([`tcp`]). Inputs that arrive together are handed
//! over before outputs are drained, so the vault stores their writes in one
//! flush (its group commit). Storage runs inline on the vault's task, as
//! the simulator's does: the loop is one sequence either way, since the
//! vault has one write in flight at a time.
//!
//! ```no_run
//! # async fn demo() -> Result<(), echo_node::NodeError> {
//! use echo_node::NativeVault;
//! let a = NativeVault::start("/tmp/a").await?;
//! let b = NativeVault::start("/tmp/b").await?;
//! let addr = a.listen("127.0.0.1:0".parse().expect("an address")).await?;
//! b.dial(addr).await?;
//! # Ok(()) }
//! ```

pub mod host;
pub mod keyfile;
pub mod tcp;

pub use host::{now_ms, AdminPort, AppPort, NativeVault, NodeError, NodeEvent};
