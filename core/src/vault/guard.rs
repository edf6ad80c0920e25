//! What an app connection may cost the vault. Any site the user visits
//! can embed the vault's frame and open connections to the one engine
//! every app shares, before the user has allowed it anything; so each
//! connection is held to rules that cost a well-behaved app nothing:
//!
//! - **The handshake first**: the first message is one `hello`; anything
//!   else before it, or a second `hello`, refuses and closes the
//!   connection (`rpc.not_connected`).
//! - **Before consent, a trickle**: an origin the user has not allowed
//!   may send [`CHATTER_BURST`] messages at once and
//!   [`CHATTER_PER_SECOND`] a second after that (its heartbeat needs one
//!   every five seconds); more closes the connection (`rpc.rate_limited`).
//! - **Few undecodable messages**: [`STRIKE_BURST`] at once and one per
//!   [`STRIKE_EVERY_MS`] after that; more closes the connection. A message
//!   over the size limit, or a frame over the message cap, closes it at
//!   once (after its typed answer): the SDK never sends one.
//! - **Connections per origin**: at most [`MAX_CONNS_PER_ORIGIN`] per
//!   origin and [`MAX_UNGRANTED_CONNS`] for all origins without consent
//!   together. A new connection over a cap closes the one of that group
//!   heard from least recently (a tab that went away without a word — only
//!   Chromium tells a port's close — rather than the one just opened).
//! - **Live queries per origin**: [`MAX_SUBSCRIPTIONS_PER_ORIGIN`] over all
//!   its connections (each connection also has `rpc::MAX_SUBSCRIPTIONS`).
//! - **Idle connections expire**: one not heard from for [`IDLE_TIMEOUT`]
//!   is closed (an app's heartbeat pings every few seconds; browsers slow
//!   a hidden tab's timers to once a minute at most). A host whose ports
//!   always tell their close turns this off
//!   (`VaultConfig::app_idle_timeout`).
//!
//! Spaces are read for a connection only after its handshake and only
//! when its origin is granted them (`Vault::needs`), so nothing here has
//! to guard storage. The host guards what it must before a message
//! reaches the vault: the size of a port message, and how many messages
//! one frame may carry (`rpc::MAX_FRAME_MESSAGES`).

use super::apps::ConnKind;
use super::machine::{ConnId, Millis, Output};
use super::Vault;
use crate::rpc::{codes, ClientMessage, Consent, RpcError, Undecodable, VaultMessage};

/// Most connections one origin may hold open.
pub const MAX_CONNS_PER_ORIGIN: usize = 64;
/// Most connections of origins the user has not allowed, all together.
pub const MAX_UNGRANTED_CONNS: usize = 128;
/// Most live queries the connections of one origin hold together.
pub const MAX_SUBSCRIPTIONS_PER_ORIGIN: usize = 1_024;
/// A connection not heard from for this long is closed.
pub const IDLE_TIMEOUT: Millis = 180_000;
/// Messages an origin without consent may send at once.
pub const CHATTER_BURST: u64 = 32;
/// … and per second after that.
pub const CHATTER_PER_SECOND: u64 = 4;
/// Undecodable messages a connection may send at once.
pub const STRIKE_BURST: u64 = 16;
/// … and one per this many milliseconds after that.
pub const STRIKE_EVERY_MS: u64 = 4_000;
/// How often idle connections are looked for.
const SWEEP_EVERY: Millis = 30_000;

/// A token bucket: `take` succeeds while tokens are left; they come back
/// at a steady rate up to the bucket's size. Counted in thousandths of a
/// token, in integers (the engine decides nothing with floats).
#[derive(Clone, Copy, Debug)]
pub(super) struct Meter {
    /// Thousandths of a token; `None` until first used (a full bucket).
    milli: Option<u64>,
    at: Millis,
}

impl Meter {
    pub fn full(now: Millis) -> Self {
        Meter {
            milli: None,
            at: now,
        }
    }

    /// Takes one token from a bucket of `burst` that gets one back every
    /// `every_ms` milliseconds.
    fn take(&mut self, now: Millis, burst: u64, every_ms: u64) -> bool {
        let cap = burst * 1_000;
        let elapsed = now.saturating_sub(self.at);
        let refill = elapsed.saturating_mul(1_000) / every_ms.max(1);
        let level = self
            .milli
            .map_or(cap, |m| m.saturating_add(refill))
            .min(cap);
        self.at = self.at.max(now);
        if level >= 1_000 {
            self.milli = Some(level - 1_000);
            true
        } else {
            self.milli = Some(level);
            false
        }
    }
}

impl Vault {
    /// A new app connection: its origin's caps hold, closing the least
    /// recently heard connection of a group that is full.
    pub(super) fn admit_app(&mut self, conn: ConnId, origin: &str) {
        let mine = self.apps.app_conns_of(origin);
        if mine.len() > MAX_CONNS_PER_ORIGIN {
            self.evict_quietest(&mine, conn, "this site has the most connections to the vault it may have open; the oldest was closed");
        }
        if self.grants.consent_of(origin) != Consent::Granted {
            let ungranted: Vec<ConnId> = self
                .apps
                .conns
                .iter()
                .filter(|(_, c)| match &c.kind {
                    ConnKind::App { origin } => self.grants.consent_of(origin) != Consent::Granted,
                    ConnKind::Admin => false,
                })
                .map(|(id, _)| *id)
                .collect();
            if ungranted.len() > MAX_UNGRANTED_CONNS {
                self.evict_quietest(&ungranted, conn, "too many sites without the user's consent are connected to the vault; the oldest connection was closed");
            }
        }
    }

    fn evict_quietest(&mut self, group: &[ConnId], keep: ConnId, why: &str) {
        let quietest = group
            .iter()
            .filter(|c| **c != keep)
            .min_by_key(|c| (self.apps.get(**c).map_or(0, |c| c.last_heard), c.0));
        if let Some(conn) = quietest.copied() {
            self.shut(conn, RpcError::new(codes::RATE_LIMITED, why));
        }
    }

    /// Screens an app message before it is queued: `false` when the
    /// connection broke a rule and was closed (the message is dropped).
    pub(super) fn screen(
        &mut self,
        conn: ConnId,
        message: &Result<ClientMessage, Undecodable>,
    ) -> bool {
        let now = self.now;
        let Some(c) = self.apps.get_mut(conn) else {
            return false;
        };
        let ConnKind::App { origin } = &c.kind else {
            return true;
        };
        c.last_heard = now;
        let consented = self.grants.consent_of(origin) == Consent::Granted;
        let is_hello = matches!(message, Ok(ClientMessage::Hello { .. }));
        let broken = if !c.hello_seen && !is_hello {
            Some(RpcError::new(
                codes::NOT_CONNECTED,
                "the first message on a connection must be hello; this connection is closed",
            ))
        } else if matches!(message, Err(u) if u.error.code == codes::TOO_LARGE) {
            // Over the size limit (or a frame over the message cap): no
            // app of ours sends one (the SDK refuses first).
            Some(RpcError::new(
                codes::TOO_LARGE,
                "a message over the vault's limits; this connection is closed",
            ))
        } else if c.hello_seen && is_hello {
            Some(RpcError::new(
                codes::NOT_CONNECTED,
                "hello was sent twice on one connection; this connection is closed",
            ))
        } else if message.is_err() && !c.strikes.take(now, STRIKE_BURST, STRIKE_EVERY_MS) {
            Some(RpcError::new(
                codes::RATE_LIMITED,
                format!("more than {STRIKE_BURST} messages the vault could not decode; this connection is closed"),
            ))
        } else if !consented
            && !c
                .chatter
                .take(now, CHATTER_BURST, 1_000 / CHATTER_PER_SECOND)
        {
            Some(RpcError::new(
                codes::RATE_LIMITED,
                format!("an app the user has not allowed may send {CHATTER_PER_SECOND} messages a second; this connection is closed"),
            ))
        } else {
            None
        };
        c.hello_seen |= is_hello;
        match broken {
            Some(error) => {
                // An oversized call still gets its typed answer first.
                if let Err(u) = message {
                    if u.error.code == codes::TOO_LARGE {
                        self.send(conn, u.clone().into_message());
                    }
                }
                self.shut(conn, error);
                false
            }
            None => true,
        }
    }

    /// Ends an app connection with a reason: `refused`, then close.
    pub(super) fn shut(&mut self, conn: ConnId, error: RpcError) {
        self.send(conn, VaultMessage::Refused { error });
        self.outputs.push_back(Output::Close { conn });
        self.disconnect(conn);
    }

    /// Closes app connections idle for longer than the configured
    /// timeout ([`IDLE_TIMEOUT`] by default).
    pub(super) fn sweep_idle(&mut self) {
        let Some(timeout) = self.config.app_idle_timeout else {
            return;
        };
        if self.now < self.next_sweep {
            return;
        }
        self.next_sweep = self.now + SWEEP_EVERY;
        let idle: Vec<ConnId> = self
            .apps
            .conns
            .iter()
            .filter(|(_, c)| matches!(c.kind, ConnKind::App { .. }))
            .filter(|(_, c)| self.now.saturating_sub(c.last_heard) >= timeout)
            .map(|(id, _)| *id)
            .collect();
        for conn in idle {
            self.shut(
                conn,
                RpcError::new(
                    codes::DISCONNECTED,
                    format!(
                        "nothing was heard on this connection for {} s; it is closed (reconnect to go on)",
                        timeout / 1_000
                    ),
                ),
            );
        }
    }

    /// When idle connections are next looked for (while any app is
    /// connected).
    pub(super) fn sweep_timeout(&self) -> Option<Millis> {
        (self.config.app_idle_timeout.is_some() && self.apps.app_count() > 0)
            .then_some(self.next_sweep)
    }

    /// Whether the connection has had its `hello` (the host accepts only a
    /// small first message from a connection that has not).
    pub fn app_greeted(&self, conn: ConnId) -> bool {
        self.apps.get(conn).is_some_and(|c| c.hello_seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_meter_allows_its_burst_then_its_rate() {
        let mut m = Meter::full(0);
        for _ in 0..4 {
            assert!(m.take(0, 4, 1_000));
        }
        assert!(!m.take(0, 4, 1_000));
        // One token back a second.
        assert!(!m.take(999, 4, 1_000));
        assert!(m.take(1_000, 4, 1_000));
        assert!(!m.take(1_000, 4, 1_000));
        // Never more than the burst, however long it rested.
        let later = 1_000_000;
        for _ in 0..4 {
            assert!(m.take(later, 4, 1_000));
        }
        assert!(!m.take(later, 4, 1_000));
        // Time going backwards gives nothing back.
        assert!(!m.take(5, 4, 1_000));
    }
}
