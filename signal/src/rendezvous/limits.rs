//! The limits every socket lives within, and the token bucket that paces
//! its messages.

use std::time::{Duration, Instant};

use super::protocol::WelcomeLimits;

/// Limits per socket and per client address.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Longest frame read (longer: the socket closes, `signal.frame_too_large`).
    pub frame_bytes: usize,
    /// Longest `data` of one `send`.
    pub data_bytes: usize,
    /// Topics one socket may be on at once.
    pub topics: usize,
    /// Messages per second a socket may send (sustained) …
    pub messages_per_second: u32,
    /// … and in a burst.
    pub burst: u32,
    /// Messages over the rate in a row before the socket is closed.
    pub rate_strikes: u32,
    /// Sockets open at once from one client address.
    pub sockets_per_address: usize,
    /// A ping goes out this often.
    pub heartbeat: Duration,
    /// A socket silent this long (no frame, no pong) is closed.
    pub idle_timeout: Duration,
    /// Messages queued for a socket before it counts as too slow.
    pub queue: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            frame_bytes: 64 * 1024,
            data_bytes: 32 * 1024,
            topics: 64,
            messages_per_second: 50,
            burst: 200,
            rate_strikes: 100,
            sockets_per_address: 256,
            heartbeat: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            queue: 1024,
        }
    }
}

impl Limits {
    /// What a client is told of these limits.
    pub fn welcome(&self) -> WelcomeLimits {
        WelcomeLimits {
            frame_bytes: self.frame_bytes,
            data_bytes: self.data_bytes,
            topics: self.topics,
            messages_per_second: self.messages_per_second,
            burst: self.burst,
            heartbeat_ms: self.heartbeat.as_millis() as u64,
            idle_timeout_ms: self.idle_timeout.as_millis() as u64,
        }
    }
}

/// A token bucket: `rate` tokens a second, at most `burst`.
#[derive(Debug)]
pub struct Bucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn new(rate: u32, burst: u32) -> Self {
        Bucket {
            tokens: f64::from(burst),
            rate: f64::from(rate),
            burst: f64::from(burst),
            at: Instant::now(),
        }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let start = Instant::now();
        let mut b = Bucket::new(10, 5);
        assert!((0..5).all(|_| b.take(start)));
        assert!(!b.take(start));
        assert!(b.take(start + Duration::from_millis(100)));
        assert!(!b.take(start + Duration::from_millis(100)));
    }
}
