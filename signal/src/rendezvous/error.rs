//! Why a signaling request failed or a socket closed: each with a stable
//! code (`signal.*`), sent in an `error` message or as the close reason,
//! and a sentence a person can act on.

/// A signaling error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    /// Fatal (1009).
    #[error("a frame was longer than {limit} bytes; send smaller messages")]
    FrameTooLarge { limit: usize },
    /// Fatal (1003): not JSON, not a message, a bad topic or peer id, a
    /// binary frame; or the WebSocket itself was broken (1002).
    #[error("a frame that is not a signaling message ({0}); see signal/PROTOCOL.md")]
    BadFrame(String),
    #[error("message data is longer than {limit} bytes; send less per message")]
    DataTooLarge { limit: usize },
    #[error("this socket is on {limit} topics already; leave one first")]
    TooManyTopics { limit: usize },
    /// The message was dropped; fatal (1008) when it keeps happening.
    #[error("more than {per_second} messages a second; this one was dropped, slow down")]
    RateLimited { per_second: u32 },
    #[error("join the topic before sending on it")]
    NotOnTopic,
    #[error("that peer is not on the topic (it left, or never joined)")]
    NoSuchPeer,
    /// The peer is on another node and this node has lost Redis.
    #[error(
        "that peer is on another signaling node, which cannot be reached now; try again shortly"
    )]
    Unreachable,
    /// Fatal (1001).
    #[error("nothing heard for {seconds} s (no frame, no pong); connect again")]
    IdleTimeout { seconds: u64 },
    /// Fatal (1008): the socket's queue filled up.
    #[error("this socket did not read its messages fast enough; connect again")]
    SlowConsumer,
    /// Before the upgrade (HTTP 429).
    #[error("too many sockets from this address (at most {limit}); close some first")]
    TooManySockets { limit: usize },
    /// Before the upgrade (HTTP 403).
    #[error("pages of {0} may not use this signaling server (see --signal-origins)")]
    OriginRefused(String),
}

impl SignalError {
    /// The stable code: `error` messages' `code`, close frames' reason.
    pub fn code(&self) -> &'static str {
        match self {
            SignalError::FrameTooLarge { .. } => "signal.frame_too_large",
            SignalError::BadFrame(_) => "signal.bad_frame",
            SignalError::DataTooLarge { .. } => "signal.data_too_large",
            SignalError::TooManyTopics { .. } => "signal.too_many_topics",
            SignalError::RateLimited { .. } => "signal.rate_limited",
            SignalError::NotOnTopic => "signal.not_on_topic",
            SignalError::NoSuchPeer => "signal.no_such_peer",
            SignalError::Unreachable => "signal.unreachable",
            SignalError::IdleTimeout { .. } => "signal.idle_timeout",
            SignalError::SlowConsumer => "signal.slow_consumer",
            SignalError::TooManySockets { .. } => "signal.too_many_sockets",
            SignalError::OriginRefused(_) => "signal.origin_refused",
        }
    }
}
