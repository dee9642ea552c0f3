//! The gateway's WebSocket (RFC 6455, server side): the upgrade, reading
//! with tungstenite, writing with our own frames.
//!
//! Why not tungstenite both ways: it copies every outgoing frame into a
//! per-socket buffer that keeps, for the connection's life, the capacity
//! of the largest batch it ever wrote (READY, a burst of presence): on
//! 15,000 idle connections of distinct accounts that buffer was the
//! largest single cost per connection. Server frames are simple (no mask),
//! so the writer here sends each dispatch straight from the bytes every
//! recipient shares (the event's encoded tail), behind a small head of its
//! own (the frame header and `{"op":"dispatch","s":N,`), with vectored
//! writes: one system call for a batch, no copy of the payload, and no
//! buffer left behind.
//!
//! Reading stays tungstenite's (masks, fragments, UTF-8, size limits, the
//! close handshake). Its writes (automatic pongs, close replies) go
//! nowhere: the connection answers pings and closes with this writer,
//! which owns the socket's write side.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::http::error::ApiError;

/// The upgraded connection as the gateway uses it.
pub type Io = TokioIo<Upgraded>;

/// Frames up to 1 MiB reach the gateway's own check, which answers 1009
/// for anything over 64 KiB; beyond that tungstenite refuses the frame.
const MAX_INBOUND: usize = 1024 * 1024;
/// Clients send small frames: a small read buffer (tungstenite's default
/// is 128 KiB) grows only for a frame that needs it.
const READ_BUFFER: usize = 512;
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
pub fn accept(req: &mut Request) -> Result<(Response, OnUpgrade), Response> {
    let h = req.headers();
    let bad = |field: &str, why: &str| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", why)
            .details(json!({ "field": field }))
            .into_response()
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

/// Reads of the socket, for tungstenite; its writes are dropped (see the
/// module's comment). Holding the socket here lets the writer reach it
/// through [`WebSocketStream::get_mut`] between reads.
pub struct Inbound<S>(S);

impl<S: AsyncRead + Unpin> AsyncRead for Inbound<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: Unpin> AsyncWrite for Inbound<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A server-side WebSocket: tungstenite reads, [`Socket`]'s methods write.
pub struct Socket<S = Io> {
    ws: WebSocketStream<Inbound<S>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Socket<S> {
    pub async fn new(io: S) -> Socket<S> {
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(0)
            .max_message_size(Some(MAX_INBOUND))
            .max_frame_size(Some(MAX_INBOUND));
        Socket {
            ws: WebSocketStream::from_raw_socket(Inbound(io), Role::Server, Some(config)).await,
        }
    }

    /// The next message from the client (cancel-safe: a partly read frame
    /// stays in the reader).
    pub async fn next(&mut self) -> Option<Result<Message, tungstenite::Error>> {
        self.ws.next().await
    }

    fn io(&mut self) -> &mut S {
        &mut self.ws.get_mut().0
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
        let io = self.io();
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
            write_all_vectored(self.io(), &mut slices).await?;
        }
        self.io().flush().await
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
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    async fn pair() -> (
        Socket<tokio::io::DuplexStream>,
        WebSocketStream<tokio::io::DuplexStream>,
    ) {
        let (a, b) = tokio::io::duplex(1 << 20);
        let server = Socket::new(a).await;
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
        assert!(matches!(server.next().await, Some(Ok(Message::Text(t))) if t == "hello"));
        client
            .send(Message::Ping(b"p1".to_vec().into()))
            .await
            .unwrap();
        let Some(Ok(Message::Ping(p))) = server.next().await else {
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
        assert!(matches!(server.next().await, Some(Err(_))));
        drop(server);
        let _ = sending.await;
    }
}
