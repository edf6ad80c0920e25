//! Peers over TCP: each connection is one peer link, secured with Noise.
//!
//! ```text
//! dialer (initiator)                              listener (responder)
//! TCP connect ──────────────────────────────────► accept
//! [len u16][Noise NN message 1: e] ─────────────►
//!            ◄───────────────── [len u16][Noise NN message 2: e, ee]
//!   both: binding = ChannelBinding::derive("noise-nn-handshake-hash", h)
//!   host: LinkEvent::Up { link, binding } → Input::PeerConnected
//! [len u16][Noise transport message] ◄─────────► … (the vault's bytes)
//! ```
//!
//! The handshake is `Noise_NN_25519_ChaChaPoly_BLAKE2s` with the prologue
//! [`PROLOGUE`]: anonymous on both sides. That is enough because the vault
//! authenticates devices itself, signing over the channel binding: both
//! ends of one Noise session share the handshake hash `h`, the two halves
//! of a man in the middle do not, so a relayed proof does not verify.
//!
//! After the handshake every frame is a length (`u16`, big-endian) and a
//! Noise transport message of at most 65,535 bytes; the vault's
//! [`PeerSend`](echo_core::vault::Output::PeerSend) bytes are cut into
//! plaintext pieces of at most [`MAX_PLAINTEXT`]. Each direction counts
//! its messages from 0 as the nonce, so a frame dropped, repeated or
//! reordered fails to decrypt and ends the link.
//!
//! A connection runs as one task with two halves: the reader (frames in →
//! plaintext → the vault's loop, waiting when that loop is behind) and the
//! writer (the vault's bytes → frames out). The writer ends when the vault
//! closes the link (after writing what came before: then a TCP shutdown)
//! or forgets it; the reader then reads on, discarding, until the peer
//! closes too or [`LINGER`] passes, so the peer reads our last bytes before
//! the socket is dropped.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use echo_core::peer::ChannelBinding;
use echo_core::vault::LinkId;
use snow::{HandshakeState, StatelessTransportState};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinSet;

use crate::NodeEvent;

/// The Noise protocol of every link.
pub const NOISE_PARAMS: &str = "Noise_NN_25519_ChaChaPoly_BLAKE2s";
/// Mixed into the handshake: both ends must speak this framing.
pub const PROLOGUE: &[u8] = b"echo-peer-tcp/1";
/// The `kind` of the links' [`ChannelBinding`]s.
pub const BINDING_KIND: &str = "noise-nn-handshake-hash";
/// The longest Noise message (the protocol's limit).
pub const MAX_MESSAGE: usize = 65_535;
const TAG_LEN: usize = 16;
/// The most plaintext in one transport message.
pub const MAX_PLAINTEXT: usize = MAX_MESSAGE - TAG_LEN;
/// How long connecting plus the handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing link waits for the peer to close its side.
pub const LINGER: Duration = Duration::from_secs(5);
/// Bytes of frames gathered before they are written.
const WRITE_BATCH: usize = 1 << 20;

/// Why a link failed.
#[derive(Debug, thiserror::Error)]
pub enum TcpError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("noise: {0}")]
    Noise(#[from] snow::Error),
    #[error("the handshake took longer than {HANDSHAKE_TIMEOUT:?}")]
    HandshakeTimeout,
    #[error("the peer broke the framing: {0}")]
    Protocol(&'static str),
}

/// What a connection tells the vault's loop.
#[derive(Debug)]
pub(crate) enum LinkEvent {
    /// The handshake is done: send the link's bytes to `out`.
    Up {
        link: LinkId,
        binding: ChannelBinding,
        peer: SocketAddr,
        initiator: bool,
        out: mpsc::UnboundedSender<LinkOut>,
    },
    Bytes {
        link: LinkId,
        bytes: Vec<u8>,
    },
    /// The connection is gone (the peer closed it, it failed, or the
    /// vault closed it and it finished closing).
    Down {
        link: LinkId,
        error: Option<String>,
    },
}

/// What the vault's loop tells a connection.
#[derive(Debug)]
pub(crate) enum LinkOut {
    Send(Vec<u8>),
    /// Send what came before, then shut the connection down.
    Close,
}

/// The network side of one vault: where connections report, the link ids,
/// and every listener and connection task (ended together by
/// [`shutdown`](Self::shutdown)).
#[derive(Clone)]
pub(crate) struct Net {
    pub to_vault: mpsc::Sender<LinkEvent>,
    pub events: broadcast::Sender<NodeEvent>,
    next_link: Arc<AtomicU64>,
    /// `None` once shut down: nothing more is started.
    tasks: Arc<Mutex<Option<JoinSet<()>>>>,
}

impl Net {
    pub fn new(to_vault: mpsc::Sender<LinkEvent>, events: broadcast::Sender<NodeEvent>) -> Self {
        Net {
            to_vault,
            events,
            next_link: Arc::new(AtomicU64::new(0)),
            tasks: Arc::new(Mutex::new(Some(JoinSet::new()))),
        }
    }

    fn link_id(&self) -> LinkId {
        LinkId(self.next_link.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// Runs `task` until it ends or the node shuts down (not at all if it
    /// has).
    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(set) = tasks.as_mut() {
            // Forget the tasks that ended.
            while set.try_join_next().is_some() {}
            set.spawn(task);
        }
    }

    /// Stops every listener and connection (their sockets close).
    pub async fn shutdown(&self) {
        let set = self.tasks.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut set) = set {
            set.abort_all();
            while set.join_next().await.is_some() {}
        }
    }

    /// Like [`shutdown`](Self::shutdown), without waiting (tasks are
    /// aborted; their sockets close as they are dropped).
    pub fn abort(&self) {
        drop(self.tasks.lock().unwrap_or_else(|p| p.into_inner()).take());
    }

    /// Accepts connections on `addr` until the node stops; each becomes a
    /// link once its handshake completes. Returns the address bound.
    pub async fn listen(&self, addr: SocketAddr) -> Result<SocketAddr, TcpError> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let net = self.clone();
        self.spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of descriptors and the like: tell, pause, go on.
                        let _ = net.events.send(NodeEvent::ConnectFailed {
                            peer: local,
                            error: format!("accept: {e}"),
                        });
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let conn = net.clone();
                net.spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(stream, false)).await {
                        Ok(Ok(secured)) => conn.run(secured, peer, false).await,
                        Ok(Err(e)) => conn.failed(peer, &e),
                        Err(_) => conn.failed(peer, &TcpError::HandshakeTimeout),
                    }
                });
            }
        });
        Ok(local)
    }

    /// Connects to `addr` and completes the handshake; the link then runs
    /// on its own.
    pub async fn dial(&self, addr: SocketAddr) -> Result<LinkId, TcpError> {
        let secured = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
            let stream = TcpStream::connect(addr).await?;
            handshake(stream, true).await
        })
        .await
        .map_err(|_| TcpError::HandshakeTimeout)??;
        let link = self.link_id();
        let net = self.clone();
        self.spawn(async move { net.run_link(link, secured, addr, true).await });
        Ok(link)
    }

    fn failed(&self, peer: SocketAddr, error: &TcpError) {
        let _ = self.events.send(NodeEvent::ConnectFailed {
            peer,
            error: error.to_string(),
        });
    }

    async fn run(&self, secured: Secured, peer: SocketAddr, initiator: bool) {
        let link = self.link_id();
        self.run_link(link, secured, peer, initiator).await;
    }

    /// One link's life after the handshake: announced to the vault, then
    /// reader and writer until both end, then `Down`.
    async fn run_link(&self, link: LinkId, secured: Secured, peer: SocketAddr, initiator: bool) {
        let Secured {
            stream,
            transport,
            binding,
        } = secured;
        let (out, out_rx) = mpsc::unbounded_channel();
        let up = LinkEvent::Up {
            link,
            binding,
            peer,
            initiator,
            out,
        };
        if self.to_vault.send(up).await.is_err() {
            return; // the vault stopped
        }
        let (read, write) = stream.into_split();
        let (closing, closed) = oneshot::channel();
        // The writer ends when the vault closes or forgets the link, or on
        // an error; it then tells the reader, which lingers and ends.
        let writer = async {
            let result = write_loop(write, &transport, out_rx).await;
            let _ = closing.send(result.err().map(|e| e.to_string()));
        };
        // The reader ends when the peer closes, on an error, or after the
        // writer; `Down` makes the vault forget the link (which ends the
        // writer, once it wrote what was queued).
        let reader = async {
            let error = read_loop(read, &transport, link, &self.to_vault, closed).await;
            let _ = self.to_vault.send(LinkEvent::Down { link, error }).await;
        };
        tokio::pin!(reader, writer);
        tokio::select! {
            () = &mut reader => {
                // A peer that stopped reading does not keep us forever.
                let _ = tokio::time::timeout(LINGER, &mut writer).await;
            }
            () = &mut writer => reader.await,
        }
    }
}

/// A TCP stream after its Noise handshake.
pub(crate) struct Secured {
    stream: TcpStream,
    transport: StatelessTransportState,
    binding: ChannelBinding,
}

/// Runs the Noise NN handshake over `stream`, as its initiator or responder.
pub(crate) async fn handshake(mut stream: TcpStream, initiator: bool) -> Result<Secured, TcpError> {
    stream.set_nodelay(true)?;
    let params = NOISE_PARAMS
        .parse()
        .map_err(|_| TcpError::Protocol("unknown noise parameters"))?;
    let builder = snow::Builder::new(params).prologue(PROLOGUE)?;
    let mut hs = if initiator {
        builder.build_initiator()?
    } else {
        builder.build_responder()?
    };
    let mut message = vec![0u8; MAX_MESSAGE];
    let mut payload = vec![0u8; MAX_MESSAGE];
    // NN: → e, ← e, ee.
    if initiator {
        send_handshake(&mut stream, &mut hs, &mut message).await?;
        receive_handshake(&mut stream, &mut hs, &mut message, &mut payload).await?;
    } else {
        receive_handshake(&mut stream, &mut hs, &mut message, &mut payload).await?;
        send_handshake(&mut stream, &mut hs, &mut message).await?;
    }
    if !hs.is_handshake_finished() {
        return Err(TcpError::Protocol("the handshake did not finish"));
    }
    let binding = ChannelBinding::derive(BINDING_KIND, hs.get_handshake_hash());
    let transport = hs.into_stateless_transport_mode()?;
    Ok(Secured {
        stream,
        transport,
        binding,
    })
}

async fn send_handshake(
    stream: &mut TcpStream,
    hs: &mut HandshakeState,
    message: &mut [u8],
) -> Result<(), TcpError> {
    let n = hs.write_message(&[], message)?;
    let mut frame = Vec::with_capacity(2 + n);
    push_frame(&mut frame, &message[..n])?;
    stream.write_all(&frame).await?;
    Ok(())
}

async fn receive_handshake(
    stream: &mut TcpStream,
    hs: &mut HandshakeState,
    message: &mut [u8],
    payload: &mut [u8],
) -> Result<(), TcpError> {
    let Some(len) = read_frame(stream, message).await? else {
        return Err(TcpError::Protocol("closed during the handshake"));
    };
    let n = hs.read_message(&message[..len], payload)?;
    if n != 0 {
        return Err(TcpError::Protocol("a handshake message carried a payload"));
    }
    Ok(())
}

/// Appends a length-prefixed frame.
fn push_frame(out: &mut Vec<u8>, message: &[u8]) -> Result<(), TcpError> {
    let len = u16::try_from(message.len()).map_err(|_| TcpError::Protocol("frame too long"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(message);
    Ok(())
}

/// Reads one frame into `buf`: its length, or `None` at a clean end of
/// the stream (between frames).
async fn read_frame(
    r: &mut (impl AsyncRead + Unpin),
    buf: &mut [u8],
) -> Result<Option<usize>, TcpError> {
    let mut len = [0u8; 2];
    match r.read(&mut len[..1]).await? {
        0 => return Ok(None),
        _ => r.read_exact(&mut len[1..]).await?,
    };
    let len = usize::from(u16::from_be_bytes(len));
    let frame = buf
        .get_mut(..len)
        .ok_or(TcpError::Protocol("frame too long"))?;
    r.read_exact(frame).await?;
    Ok(Some(len))
}

/// Frames in, plaintext to the vault, until the peer closes, a frame is
/// bad, or the writer ended (`closed`; then the rest is read and dropped
/// for up to [`LINGER`]). Returns the error that ended the link, if any.
async fn read_loop(
    read: tokio::net::tcp::OwnedReadHalf,
    transport: &StatelessTransportState,
    link: LinkId,
    to_vault: &mpsc::Sender<LinkEvent>,
    mut closed: oneshot::Receiver<Option<String>>,
) -> Option<String> {
    let mut r = BufReader::with_capacity(2 + MAX_MESSAGE, read);
    let mut frame = vec![0u8; MAX_MESSAGE];
    let mut plain = vec![0u8; MAX_MESSAGE];
    let mut nonce: u64 = 0;
    loop {
        let got = tokio::select! {
            biased;
            writer = &mut closed => {
                linger(&mut r).await;
                return writer.ok().flatten();
            }
            got = read_frame(&mut r, &mut frame) => got,
        };
        let len = match got {
            Ok(Some(len)) => len,
            Ok(None) => return None,
            Err(e) => return Some(e.to_string()),
        };
        let n = match transport.read_message(nonce, &frame[..len], &mut plain) {
            Ok(n) => n,
            Err(e) => return Some(TcpError::from(e).to_string()),
        };
        nonce += 1;
        if n > 0 {
            let bytes = plain[..n].to_vec();
            if to_vault
                .send(LinkEvent::Bytes { link, bytes })
                .await
                .is_err()
            {
                return None; // the vault stopped
            }
        }
    }
}

/// Reads and drops until the peer closes or [`LINGER`] passes.
async fn linger(r: &mut (impl AsyncRead + Unpin)) {
    let mut sink = vec![0u8; 16 * 1024];
    let _ = tokio::time::timeout(LINGER, async {
        while let Ok(n) = r.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// The vault's bytes out as frames, until it closes or forgets the link.
async fn write_loop(
    mut write: impl AsyncWrite + Unpin,
    transport: &StatelessTransportState,
    mut from_vault: mpsc::UnboundedReceiver<LinkOut>,
) -> Result<(), TcpError> {
    let mut nonce: u64 = 0;
    let mut message = vec![0u8; MAX_MESSAGE];
    let mut out = Vec::new();
    while let Some(first) = from_vault.recv().await {
        // Everything queued goes out in one write.
        let mut next = Some(first);
        let mut close = false;
        while let Some(item) = next.take() {
            match item {
                LinkOut::Send(bytes) => {
                    for piece in bytes.chunks(MAX_PLAINTEXT) {
                        let n = transport.write_message(nonce, piece, &mut message)?;
                        nonce += 1;
                        push_frame(&mut out, &message[..n])?;
                    }
                }
                LinkOut::Close => {
                    close = true;
                    break;
                }
            }
            if out.len() < WRITE_BATCH {
                next = from_vault.try_recv().ok();
            }
        }
        write.write_all(&out).await?;
        out.clear();
        if close {
            break;
        }
    }
    write.shutdown().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both ends of one handshake share a binding; two handshakes (the two
    /// halves a man in the middle would run) do not.
    #[tokio::test]
    async fn both_ends_share_the_binding_and_frames_round_trip() -> Result<(), TcpError> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let accept = tokio::spawn(async move {
            let (stream, _) = listener.accept().await?;
            handshake(stream, false).await
        });
        let a = handshake(TcpStream::connect(addr).await?, true).await?;
        let b = accept.await.map_err(|_| TcpError::Protocol("join"))??;
        assert_eq!(a.binding, b.binding);

        // Bytes longer than one message arrive whole, in order.
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let (tx, rx) = mpsc::unbounded_channel();
        tx.send(LinkOut::Send(big.clone()))
            .map_err(|_| TcpError::Protocol("send"))?;
        tx.send(LinkOut::Close)
            .map_err(|_| TcpError::Protocol("send"))?;
        let (_a_read, a_write) = a.stream.into_split();
        let (b_read, _b_write) = b.stream.into_split();
        let (to_vault, mut vault) = mpsc::channel(16);
        let (_closing, closed) = oneshot::channel();
        let writer = write_loop(a_write, &a.transport, rx);
        let reader = read_loop(b_read, &b.transport, LinkId(1), &to_vault, closed);
        let (w, r) = tokio::join!(writer, reader);
        w?;
        assert_eq!(r, None, "a clean end");
        let mut got = Vec::new();
        while let Ok(LinkEvent::Bytes { bytes, .. }) = vault.try_recv() {
            got.extend(bytes);
        }
        assert_eq!(got, big);

        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let accept = tokio::spawn(async move {
            let (stream, _) = listener.accept().await?;
            handshake(stream, false).await
        });
        let c = handshake(TcpStream::connect(addr).await?, true).await?;
        let d = accept.await.map_err(|_| TcpError::Protocol("join"))??;
        assert_eq!(c.binding, d.binding);
        assert_ne!(a.binding, c.binding);
        Ok(())
    }
}
