//! The gateway's WebSocket (RFC 6455, server side): the upgrade, reading
//! (frames parsed in `inbound.rs`) and writing with our own frames.
//!
//! Why not a WebSocket library: a general one keeps a read buffer and a
//! write buffer per socket for the connection's life, each grown to the
//! largest frame or batch it has seen (READY, a burst of presence); on
//! 15,000 idle connections of distinct accounts those were the largest
//! costs per connection. Server frames are simple (no mask), so the writer
//! here sends each dispatch straight from the bytes every recipient shares
//! (the event's encoded tail), behind a small head of its own (the frame
//! header and `{"op":"dispatch","s":N,`), with vectored writes: one system
//! call for a batch, no copy of the payload, and no buffer left behind.
//! The reader reads into a buffer on the stack and keeps only the bytes of
//! a frame that has not fully arrived, so an idle connection holds none.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_tungstenite::tungstenite;

use super::inbound::{FrameError, Frames, Incoming};
use crate::http::error::ApiError;

/// The upgraded connection as the gateway uses it.
pub type Io = TokioIo<Upgraded>;

/// Frames up to 1 MiB reach the gateway's own check, which answers 1009
/// for anything over 64 KiB; beyond that the reader refuses the frame from
/// its header.
const MAX_INBOUND: usize = 1024 * 1024;
/// Bytes read from the socket at a time, into a buffer on the stack.
const READ_CHUNK: usize = 4096;
/// At most this many frames in one vectored write (two slices each; Linux
/// takes at most 1,024 slices a call).
const FRAMES_PER_WRITE: usize = 256;

/// A write the client takes nothing of for this long fails: the reader is
/// gone or hopelessly behind, and holding its connection (and the frames
/// of the write) forever would let stalled clients pile up. The session
/// stays resumable. (Without it a stalled socket would also keep its task
/// from noticing a missed heartbeat or a close.)
pub const STALL: Duration = Duration::from_secs(10);

/// One dispatch to send: its sequence and the encoded `"t":..,"d":..}`
/// part shared by every recipient.
pub struct Dispatch {
    pub seq: u64,
    pub tail: Arc<str>,
}

/// Checks the upgrade request and answers it: the 101 response and the
/// connection to come. A request that is not a WebSocket upgrade answers
/// 400 `invalid_request` naming the header at fault.
pub fn accept(req: &mut Request) -> Result<(Response, OnUpgrade), Box<Response>> {
    let h = req.headers();
    let bad = |field: &str, why: &str| {
        Box::new(
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", why)
                .details(json!({ "field": field }))
                .into_response(),
        )
    };
    if !has_token(h, header::CONNECTION, "upgrade") {
        return Err(bad("connection", "not a WebSocket upgrade (Connection)"));
    }
    if !has_token(h, header::UPGRADE, "websocket") {
        return Err(bad("upgrade", "not a WebSocket upgrade (Upgrade)"));
    }
    if h.get(header::SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes()) != Some(b"13") {
        return Err(bad("sec-websocket-version", "WebSocket version 13 only"));
    }
    let Some(key) = h.get(header::SEC_WEBSOCKET_KEY) else {
        return Err(bad("sec-websocket-key", "Sec-WebSocket-Key is missing"));
    };
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let Some(on) = req.extensions_mut().remove::<OnUpgrade>() else {
        // HTTP/2 without extended CONNECT, or a connection hyper cannot
        // hand over.
        return Err(bad("connection", "this connection cannot be upgraded"));
    };
    let mut res = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let rh = res.headers_mut();
    rh.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    rh.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        rh.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    Ok((res, on))
}

/// Whether a comma-separated header holds `token` (case-insensitive).
fn has_token(h: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    h.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// A server-side WebSocket.
pub struct Socket<S = Io> {
    io: S,
    frames: Frames,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Socket<S> {
    pub fn new(io: S) -> Socket<S> {
        Socket {
            io,
            frames: Frames::new(MAX_INBOUND),
        }
    }

    /// The next message from the client; `None` once the client is gone
    /// (end of stream or a read error). Cancel-safe: bytes read stay in the
    /// reader until their frame is whole.
    pub async fn next(&mut self) -> Option<Result<Incoming, FrameError>> {
        loop {
            match self.frames.message() {
                Ok(Some(m)) => return Some(Ok(m)),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
            let (io, frames) = (&mut self.io, &mut self.frames);
            let read = std::future::poll_fn(|cx| {
                // On the stack of this poll only: a connection waiting for
                // its client holds no buffer. Left uninitialised: this is
                // polled on every wake of the connection's loop (each batch
                // of dispatches), where zeroing 4 KiB would be wasted.
                let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
                let mut rb = ReadBuf::uninit(&mut chunk);
                match Pin::new(&mut *io).poll_read(cx, &mut rb) {
                    Poll::Ready(Ok(())) => {
                        frames.feed(rb.filled());
                        Poll::Ready(Ok(rb.filled().len()))
                    }
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await;
            match read {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// One text frame.
    pub async fn text(&mut self, text: &str) -> io::Result<()> {
        self.control(OP_TEXT, text.as_bytes()).await
    }

    /// Answers a ping.
    pub async fn pong(&mut self, payload: &[u8]) -> io::Result<()> {
        self.control(OP_PONG, payload).await
    }

    /// A close frame with `code` and `reason` (cut to the 123 bytes a
    /// control frame leaves, at a character boundary).
    pub async fn close(&mut self, code: u16, reason: &str) -> io::Result<()> {
        let mut cut = reason.len().min(123);
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut body = Vec::with_capacity(2 + cut);
        body.extend_from_slice(&code.to_be_bytes());
        body.extend_from_slice(&reason.as_bytes()[..cut]);
        self.control(OP_CLOSE, &body).await
    }

    async fn control(&mut self, op: u8, payload: &[u8]) -> io::Result<()> {
        let mut head = Vec::with_capacity(10);
        frame_header(&mut head, op, payload.len());
        let io = &mut self.io;
        write_all_vectored(io, &mut [IoSlice::new(&head), IoSlice::new(payload)]).await?;
        io.flush().await
    }

    /// Dispatches, in order, in as few writes as the socket takes; nothing
    /// of them is copied but their heads.
    pub async fn dispatches(&mut self, frames: &[Dispatch]) -> io::Result<()> {
        for batch in frames.chunks(FRAMES_PER_WRITE) {
            let mut heads = Vec::with_capacity(batch.len() * 40);
            let mut ends = Vec::with_capacity(batch.len());
            let mut prefix = Vec::with_capacity(32);
            for f in batch {
                prefix.clear();
                super::protocol::dispatch_head(&mut prefix, f.seq);
                frame_header(&mut heads, OP_TEXT, prefix.len() + f.tail.len());
                heads.extend_from_slice(&prefix);
                ends.push(heads.len());
            }
            let mut slices = Vec::with_capacity(batch.len() * 2);
            let mut start = 0;
            for (f, &end) in batch.iter().zip(&ends) {
                slices.push(IoSlice::new(&heads[start..end]));
                slices.push(IoSlice::new(f.tail.as_bytes()));
                start = end;
            }
            write_all_vectored(&mut self.io, &mut slices).await?;
        }
        self.io.flush().await
    }
}

const OP_TEXT: u8 = 0x1;
const OP_CLOSE: u8 = 0x8;
const OP_PONG: u8 = 0xA;

/// A final, unmasked frame's header (server frames are never masked).
fn frame_header(out: &mut Vec<u8>, op: u8, len: usize) {
    out.push(0x80 | op);
    if len < 126 {
        out.push(len as u8);
    } else if len <= u16::MAX as usize {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// Writes every slice, in as few calls as the socket allows, failing if
/// the socket takes nothing for [`STALL`]. A socket
/// without vectored writes gets one copied buffer instead of one call per
/// slice.
async fn write_all_vectored<S: AsyncWrite + Unpin>(
    io: &mut S,
    mut slices: &mut [IoSlice<'_>],
) -> io::Result<()> {
    if !io.is_write_vectored() {
        let all: Vec<u8> = slices.iter().flat_map(|s| s.iter().copied()).collect();
        return tokio::time::timeout(STALL, io.write_all(&all))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?;
    }
    while !slices.is_empty() {
        let n = tokio::time::timeout(STALL, io.write_vectored(slices))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};

    async fn pair() -> (
        Socket<tokio::io::DuplexStream>,
        WebSocketStream<tokio::io::DuplexStream>,
    ) {
        let (a, b) = tokio::io::duplex(1 << 20);
        let server = Socket::new(a);
        let client = WebSocketStream::from_raw_socket(b, Role::Client, None).await;
        (server, client)
    }

    async fn text_of(c: &mut WebSocketStream<tokio::io::DuplexStream>) -> String {
        match c.next().await {
            Some(Ok(Message::Text(t))) => t.to_string(),
            other => panic!("expected text, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn dispatches_of_every_length_class_arrive_whole_and_in_order() {
        let (mut server, mut client) = pair().await;
        // Payloads under 126 bytes, up to 64 KiB and beyond: each header form.
        let sizes = [1usize, 100, 125, 126, 4_000, 65_535, 70_000];
        let frames: Vec<Dispatch> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| Dispatch {
                seq: i as u64 + 1,
                tail: Arc::from(format!("\"t\":\"X\",\"d\":\"{}\"}}", "a".repeat(n))),
            })
            .collect();
        server.dispatches(&frames).await.unwrap();
        for (i, &n) in sizes.iter().enumerate() {
            let v: serde_json::Value = serde_json::from_str(&text_of(&mut client).await).unwrap();
            assert_eq!(v["op"], "dispatch");
            assert_eq!(v["s"], i as u64 + 1);
            assert_eq!(v["d"].as_str().unwrap().len(), n);
        }
    }

    #[tokio::test]
    async fn more_frames_than_one_write_takes() {
        let (mut server, mut client) = pair().await;
        let tail: Arc<str> = Arc::from("\"t\":\"X\",\"d\":{}}");
        let frames: Vec<Dispatch> = (1..=1000)
            .map(|seq| Dispatch {
                seq,
                tail: tail.clone(),
            })
            .collect();
        let reader = tokio::spawn(async move {
            let mut seqs = Vec::new();
            for _ in 0..1000 {
                let v: serde_json::Value =
                    serde_json::from_str(&text_of(&mut client).await).unwrap();
                seqs.push(v["s"].as_u64().unwrap());
            }
            seqs
        });
        server.dispatches(&frames).await.unwrap();
        assert_eq!(reader.await.unwrap(), (1..=1000).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn reads_masked_client_frames_and_answers_pings_and_closes() {
        let (mut server, mut client) = pair().await;
        client.send(Message::text("hello")).await.unwrap();
        assert_eq!(
            server.next().await,
            Some(Ok(Incoming::Text("hello".into())))
        );
        client
            .send(Message::Ping(b"p1".to_vec().into()))
            .await
            .unwrap();
        let Some(Ok(Incoming::Ping(p))) = server.next().await else {
            panic!("a ping reaches the connection");
        };
        server.pong(&p).await.unwrap();
        assert!(matches!(client.next().await, Some(Ok(Message::Pong(p))) if &p[..] == b"p1"));
        server.text("plain").await.unwrap();
        assert_eq!(text_of(&mut client).await, "plain");
        // A long reason is cut at a character boundary, never mid-character.
        server.close(4008, &"é".repeat(100)).await.unwrap();
        match client.next().await {
            Some(Ok(Message::Close(Some(CloseFrame { code, reason })))) => {
                assert_eq!(code, CloseCode::from(4008));
                assert_eq!(reason.len(), 122);
            }
            other => panic!("expected close, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn refuses_frames_over_the_limit() {
        let (mut server, mut client) = pair().await;
        let big = "x".repeat(MAX_INBOUND + 1);
        // Sent beside: the frame does not fit the pipe until it is read.
        let sending = tokio::spawn(async move {
            let _ = client.send(Message::text(big)).await;
            client
        });
        assert_eq!(server.next().await, Some(Err(FrameError::TooBig)));
        drop(server);
        let _ = sending.await;
    }

    #[tokio::test]
    async fn a_message_split_over_many_reads_and_a_read_cancelled_halfway() {
        let (a, mut client) = tokio::io::duplex(1 << 20);
        let mut server = Socket::new(a);
        let body = "ü".repeat(20_000); // 40,000 bytes: ten reads of the stack buffer
        let wire = super::super::inbound::tests::frame(true, 0x1, body.as_bytes());
        client.write_all(&wire[..25_000]).await.unwrap();
        // A read given up on halfway (as `select!` does when a dispatch is
        // due) loses nothing of what it read.
        let cut = tokio::time::timeout(Duration::from_millis(50), server.next()).await;
        assert!(cut.is_err(), "the frame is not whole yet");
        client.write_all(&wire[25_000..]).await.unwrap();
        assert_eq!(server.next().await, Some(Ok(Incoming::Text(body))));
        client
            .write_all(&super::super::inbound::tests::frame(
                true,
                0x8,
                &[0x03, 0xE8],
            ))
            .await
            .unwrap();
        assert_eq!(server.next().await, Some(Ok(Incoming::Close)));
        drop(client);
        assert_eq!(server.next().await, None, "the client is gone");
    }
}
