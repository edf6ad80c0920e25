//! The simulator host: ECHO vaults driven in one process, deterministic
//! from a seed.
//!
//! - [`Node`]: one vault on a [`MemoryStore`](echo_core::store::MemoryStore)
//!   — the host loop every test and benchmark of the vault uses: hand it
//!   inputs, carry out its outputs (storage at once or held for the test
//!   to complete, fail or lose in a crash; seals with a native cipher),
//!   collect what it sends apps, pages and peers.
//! - [`Sim`]: nodes linked by a simulated network — ordered, reliable
//!   links with seeded delays (so messages on different links overtake
//!   each other), cut and restored links, partitions, node crashes and
//!   restarts from their stores — and a clock that jumps to the next
//!   event. A run is a function of its seed: a failing seed replays
//!   exactly. A link may end at the test itself, which then plays a
//!   hostile peer.
//! - [`scenario`]: spaces set up through the RPC as people set them up
//!   (create, admit, export, join, grant an app).
//!
//! In the manner of str0m's `netem` and quinn-proto's test `Pair`: the
//! engine is sans-IO, so all of this is plain data moving between state
//! machines.

mod net;
mod node;
pub mod scenario;

pub use net::{LinkSlot, NetConfig, Sim, Traffic};
pub use node::{Node, SignalRequest};
