//! One WebSocket: its task reads requests, writes what the hub queued for
//! it, pings, and closes it on a limit.

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

/// Close codes: 1009 message too big, 1008 policy, 1007 bad data,
/// 1001 going away (idle, slow).
fn close_code(error: &SignalError) -> u16 {
    match error {
        SignalError::FrameTooLarge { .. } => 1009,
        SignalError::BadFrame(_) => 1007,
        SignalError::RateLimited { .. } => 1008,
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

/// Serves one socket until it closes; it is unregistered at the end.
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
    let ended: Option<SignalError> = loop {
        let idle_left = limits.idle_timeout.saturating_sub(heard.elapsed());
        tokio::select! {
            out = queue.recv() => match out {
                Some(Outbound::Text(text)) => {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break None;
                    }
                }
                // The hub dropped this socket: it could not keep up.
                None => break Some(SignalError::SlowConsumer),
            },
            frame = stream.next() => {
                let Some(frame) = frame else { break None };
                let frame = match frame {
                    Ok(frame) => frame,
                    Err(e) => {
                        let text = e.to_string();
                        break Some(if text.contains("too long") || text.contains("too big") || text.contains("Space limit") {
                            SignalError::FrameTooLarge { limit: limits.frame_bytes }
                        } else {
                            SignalError::BadFrame(text)
                        });
                    }
                };
                heard = Instant::now();
                match frame {
                    Message::Text(text) => {
                        if text.len() > limits.frame_bytes {
                            break Some(SignalError::FrameTooLarge { limit: limits.frame_bytes });
                        }
                        if !bucket.take(Instant::now()) {
                            strikes += 1;
                            let error = SignalError::RateLimited { per_second: limits.messages_per_second };
                            if strikes >= limits.rate_strikes {
                                break Some(error);
                            }
                            hub.tell(peer, &error_message(&error, None));
                            continue;
                        }
                        strikes = 0;
                        let result = match serde_json::from_str::<ClientMessage>(&text) {
                            Ok(message) => rendezvous.request(peer, message).await,
                            Err(e) => Err(SignalError::BadFrame(e.to_string())),
                        };
                        if let Err(error) = result {
                            if matches!(error, SignalError::BadFrame(_)) {
                                break Some(error);
                            }
                            let topic = serde_json::from_str::<ClientMessage>(&text).ok().and_then(|m| match m {
                                ClientMessage::Join { topic } | ClientMessage::Leave { topic } | ClientMessage::Send { topic, .. } => Topic::parse(&topic),
                            });
                            hub.tell(peer, &error_message(&error, topic.as_ref()));
                        }
                    }
                    Message::Binary(_) => break Some(SignalError::BadFrame("binary frames are not signaling messages".into())),
                    Message::Close(_) => break None,
                    Message::Ping(_) | Message::Pong(_) => {}
                }
            }
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break None;
                }
            }
            _ = tokio::time::sleep(idle_left) => {
                break Some(SignalError::IdleTimeout { seconds: limits.idle_timeout.as_secs() });
            }
        }
    };
    rendezvous.closed(peer).await;
    if let Some(error) = ended {
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: close_code(&error),
                reason: Utf8Bytes::from(error.code()),
            })))
            .await;
    }
    let _ = sink.close().await;
}

/// The client's address, for the per-address limit.
pub fn client_ip(addr: std::net::SocketAddr) -> IpAddr {
    addr.ip()
}
