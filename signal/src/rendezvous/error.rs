//! Why a signaling request failed or a socket closed: each with a stable
//! code (`signal.*`), sent in an `error` message or as the close reason.

/// A signaling error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    #[error("a frame longer than {limit} bytes")]
    FrameTooLarge { limit: usize },
    #[error("a frame that is not a signaling message ({0})")]
    BadFrame(String),
    #[error("message data longer than {limit} bytes")]
    DataTooLarge { limit: usize },
    #[error("this socket is on {limit} topics already; leave one first")]
    TooManyTopics { limit: usize },
    #[error("more than {per_second} messages a second; this one was dropped")]
    RateLimited { per_second: u32 },
    #[error("join the topic before sending on it")]
    NotOnTopic,
    #[error("that peer is not on the topic (it left, or never joined)")]
    NoSuchPeer,
    #[error("no message for {seconds} s")]
    IdleTimeout { seconds: u64 },
    #[error("this socket could not keep up with its messages")]
    SlowConsumer,
    #[error("too many sockets from this address ({limit})")]
    TooManySockets { limit: usize },
    #[error("pages of {0} may not use this signaling server")]
    OriginRefused(String),
}

impl SignalError {
    pub fn code(&self) -> &'static str {
        match self {
            SignalError::FrameTooLarge { .. } => "signal.frame_too_large",
            SignalError::BadFrame(_) => "signal.bad_frame",
            SignalError::DataTooLarge { .. } => "signal.data_too_large",
            SignalError::TooManyTopics { .. } => "signal.too_many_topics",
            SignalError::RateLimited { .. } => "signal.rate_limited",
            SignalError::NotOnTopic => "signal.not_on_topic",
            SignalError::NoSuchPeer => "signal.no_such_peer",
            SignalError::IdleTimeout { .. } => "signal.idle_timeout",
            SignalError::SlowConsumer => "signal.slow_consumer",
            SignalError::TooManySockets { .. } => "signal.too_many_sockets",
            SignalError::OriginRefused(_) => "signal.origin_refused",
        }
    }
}
