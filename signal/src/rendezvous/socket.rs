//! One WebSocket's task: it reads requests, writes what the hub queued for
//! it, pings every `heartbeat`, and closes the socket on a fatal error
//! (a close frame whose reason is the error's code), after `idle_timeout`
//! without a frame or a pong, or when a write to it waits that long.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use super::error::SignalError;
use super::hub::Outbound;
use super::limits::Bucket;
use super::protocol::{ClientMessage, PeerId, ServerMessage, Topic};
use super::Rendezvous;

/// How long the close frame may take to go out before the socket is
/// simply dropped.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The close code of a fatal error: 1009 message too big, 1008 policy,
/// 1003 data this endpoint does not take, 1002 a broken WebSocket,
/// 1001 going away (idle).
fn close_code(error: &SignalError, broken: bool) -> u16 {
    match error {
        SignalError::FrameTooLarge { .. } => 1009,
        SignalError::BadFrame(_) if broken => 1002,
        SignalError::BadFrame(_) => 1003,
        SignalError::RateLimited { .. } | SignalError::SlowConsumer => 1008,
        _ => 1001,
    }
}

fn error_message(error: &SignalError, topic: Option<&Topic>) -> ServerMessage {
    ServerMessage::Error {
        code: error.code(),
        message: error.to_string(),
        topic: topic.map(ToString::to_string),
    }
}

/// Frames up to this many times `frame_bytes` are read whole and refused
/// (1009, with the reason); longer ones are cut off while being read, and
/// the unread rest may reset the connection before the close frame is
/// read.
pub const READ_SLACK: usize = 4;

/// A read error of the WebSocket: a frame over `READ_SLACK` times the limit,
/// or a broken WebSocket (not one by the protocol, not UTF-8 text, …).
fn read_error(error: axum::Error, limit: usize) -> SignalError {
    use tungstenite::error::{CapacityError, Error};
    match error.into_inner().downcast::<Error>() {
        Ok(e) => match *e {
            Error::Capacity(CapacityError::MessageTooLong { .. }) => {
                SignalError::FrameTooLarge { limit }
            }
            other => SignalError::BadFrame(other.to_string()),
        },
        Err(other) => SignalError::BadFrame(other.to_string()),
    }
}

/// Serves one socket until it closes; it leaves its topics at the end.
pub async fn serve(
    socket: WebSocket,
    rendezvous: Arc<Rendezvous>,
    peer: PeerId,
    mut queue: mpsc::Receiver<Outbound>,
) {
    let hub = rendezvous.hub.clone();
    let (mut sink, mut stream) = socket.split();
    let limits = hub.limits.clone();
    hub.tell(
        peer,
        &ServerMessage::Welcome {
            peer: peer.to_string(),
            limits: limits.welcome(),
        },
    );
    let mut bucket = Bucket::new(limits.messages_per_second, limits.burst);
    let mut strikes = 0u32;
    let mut heard = Instant::now();
    let mut ping = tokio::time::interval(limits.heartbeat);
    ping.tick().await;
    // Why the socket ends (None: the client closed it or went away), and
    // whether the WebSocket itself broke.
    let (ended, broken): (Option<SignalError>, bool) = loop {
        let idle_left = limits.idle_timeout.saturating_sub(heard.elapsed());
        tokio::select! {
            out = queue.recv() => match out {
                // A client that does not read for `idle_timeout` is as
                // good as gone: its write does not wait longer.
                Some(text) => match tokio::time::timeout(limits.idle_timeout, sink.send(Message::Text(text))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break (None, false),
                    Err(_) => break (Some(SignalError::SlowConsumer), false),
                },
                // The hub cut this socket's queue: it could not keep up.
                None => break (Some(SignalError::SlowConsumer), false),
            },
            frame = stream.next() => {
                let frame = match frame {
                    None => break (None, false),
                    Some(Ok(frame)) => frame,
                    Some(Err(e)) => {
                        let error = read_error(e, limits.frame_bytes);
                        let broken = matches!(error, SignalError::BadFrame(_));
                        break (Some(error), broken);
                    }
                };
                heard = Instant::now();
                let text = match frame {
                    Message::Text(text) if text.len() > limits.frame_bytes => {
                        break (Some(SignalError::FrameTooLarge { limit: limits.frame_bytes }), false);
                    }
                    Message::Text(text) => text,
                    Message::Binary(_) => break (Some(SignalError::BadFrame("a binary frame; signaling messages are JSON text".into())), false),
                    Message::Close(_) => break (None, false),
                    Message::Ping(_) | Message::Pong(_) => continue,
                };
                if !bucket.take(Instant::now()) {
                    strikes += 1;
                    let error = SignalError::RateLimited { per_second: limits.messages_per_second };
                    if strikes >= limits.rate_strikes {
                        break (Some(error), false);
                    }
                    hub.tell(peer, &error_message(&error, None));
                    continue;
                }
                strikes = 0;
                let message = match serde_json::from_str::<ClientMessage>(&text) {
                    Ok(message) => message,
                    Err(e) => break (Some(SignalError::BadFrame(e.to_string())), false),
                };
                let Some(topic) = Topic::parse(message.topic()) else {
                    break (Some(SignalError::BadFrame("a topic is 64 lower-case hex digits".into())), false);
                };
                match rendezvous.request(peer, topic, message).await {
                    Ok(()) => {}
                    Err(error @ SignalError::BadFrame(_)) => break (Some(error), false),
                    Err(error) => hub.tell(peer, &error_message(&error, Some(&topic))),
                }
            }
            _ = ping.tick() => {
                match tokio::time::timeout(limits.idle_timeout, sink.send(Message::Ping(Default::default()))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break (None, false),
                    Err(_) => break (Some(SignalError::SlowConsumer), false),
                }
            }
            _ = tokio::time::sleep(idle_left) => {
                break (Some(SignalError::IdleTimeout { seconds: limits.idle_timeout.as_secs() }), false);
            }
        }
    };
    rendezvous.closed(peer).await;
    let goodbye = async {
        if let Some(error) = ended {
            let _ = sink
                .send(Message::Close(Some(CloseFrame {
                    code: close_code(&error, broken),
                    reason: Utf8Bytes::from(error.code()),
                })))
                .await;
        }
        let _ = sink.close().await;
        // The closing handshake: read until the client's close (or EOF), so
        // that what it still sent does not reset the connection before our
        // close frame is read.
        while let Some(Ok(frame)) = stream.next().await {
            if matches!(frame, Message::Close(_)) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, goodbye).await;
}

/// The client's address, for the per-address limit.
pub fn client_ip(addr: std::net::SocketAddr) -> IpAddr {
    addr.ip()
}
