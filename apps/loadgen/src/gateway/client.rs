//! Gateway clients speaking the contract's protocol: dial, identify,
//! resume, and opening many connections at once. Connections come from
//! 127.0.0.1-250 (one source address has only ~28k ephemeral ports, and
//! spreading mimics many hosts).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpSocket;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

pub type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Every text frame a connection receives, with the connection's index.
pub type OnFrame = Arc<dyn Fn(usize, &str) + Send + Sync>;

/// Longest wait for a connection to be identified (or resumed).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// The source address of connection `i`: 127.0.0.<1 + i % 250>.
pub fn source(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 1 + (i % 250) as u8)
}

/// TCP from connection `i`'s source address, the WebSocket upgrade, and hello.
pub async fn dial(addr: SocketAddr, i: usize) -> Result<Ws, String> {
    dial_with(addr, i, None).await
}

/// [`dial`], with this receive buffer (a reader on a slow link).
pub async fn dial_with(addr: SocketAddr, i: usize, recv_buffer: Option<u32>) -> Result<Ws, String> {
    let local = source(i);
    let sock = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    sock.bind(SocketAddr::from((local, 0)))
        .map_err(|e| format!("bind {local}: {e}"))?;
    if let Some(bytes) = recv_buffer {
        let _ = sock.set_recv_buffer_size(bytes);
    }
    let stream = sock.connect(addr).await.map_err(|e| e.to_string())?;
    // Dispatches are small and latency is what we measure.
    let _ = stream.set_nodelay(true);
    let url = format!("ws://{addr}/api/v1/gateway");
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .map_err(|e| e.to_string())?;
    ws.next()
        .await
        .ok_or("closed before hello")?
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

pub async fn send_json(ws: &mut Ws, v: Value) -> Result<(), String> {
    ws.send(Message::Text(v.to_string().into()))
        .await
        .map_err(|e| e.to_string())
}

/// The string value of `"key":"..."` in a frame (no escapes in the ones we read).
pub fn field<'a>(frame: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":\"");
    let start = frame.find(&pat)? + pat.len();
    frame[start..].split('"').next()
}

/// A dispatch's sequence number. The server writes `s` right after `op`, so
/// the first `"s":` is the frame's own.
pub fn seq_of(frame: &str) -> Option<u64> {
    let start = frame.find("\"s\":")? + 4;
    let digits = frame[start..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    frame[start..start + digits].parse().ok()
}

/// Identifies and waits for READY; returns the session id.
pub async fn identify(ws: &mut Ws, token: &str) -> Result<String, String> {
    send_json(ws, json!({"op": "identify", "d": {"token": token}})).await?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"READY\"") => {
                return Ok(field(&t, "session_id").unwrap_or_default().to_string());
            }
            Some(Ok(_)) => continue,
            other => return Err(format!("no READY: {other:?}")),
        }
    }
}

pub enum Resumed {
    Resumed,
    /// `invalid_session`: the client must identify again.
    Invalid,
}

/// Resumes after `s`; every replayed dispatch before RESUMED goes to `on_frame`.
pub async fn resume(
    ws: &mut Ws,
    token: &str,
    session_id: &str,
    s: u64,
    on_frame: &mut (dyn FnMut(&str) + Send),
) -> Result<Resumed, String> {
    send_json(
        ws,
        json!({"op": "resume", "d": {"token": token, "session_id": session_id, "s": s}}),
    )
    .await?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                if t.contains("\"RESUMED\"") {
                    on_frame(&t);
                    return Ok(Resumed::Resumed);
                }
                if t.contains("\"invalid_session\"") {
                    return Ok(Resumed::Invalid);
                }
                on_frame(&t);
            }
            Some(Ok(_)) => continue,
            other => return Err(format!("no RESUMED: {other:?}")),
        }
    }
}

/// Dials and identifies, within [`CONNECT_TIMEOUT`].
pub async fn connect(addr: SocketAddr, i: usize, token: &str) -> Result<(Ws, String), String> {
    tokio::time::timeout(CONNECT_TIMEOUT, async {
        let mut ws = dial(addr, i).await?;
        let session = identify(&mut ws, token).await?;
        Ok((ws, session))
    })
    .await
    .map_err(|_| "timed out before READY".to_string())?
}

/// Where connection `i` goes and as whom.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub token: String,
}

/// Connections opened by [`open_many`].
pub struct Opened {
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
    pub took: Duration,
    /// Connections the server closed since (e.g. 4000 "too slow to read").
    pub closed: Arc<AtomicU64>,
}

impl Opened {
    pub fn closed(&self) -> u64 {
        self.closed.load(Ordering::Relaxed)
    }

    /// Drops every connection (no close handshake, like a lost network).
    pub fn drop_all(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

/// Opens one connection per target, 200 at a time; each then heartbeats
/// and hands every text frame to `on_frame`.
pub async fn open_many(targets: Vec<Target>, on_frame: OnFrame) -> Result<Opened, String> {
    let n = targets.len();
    let start = Instant::now();
    let opened = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let failures = Arc::new(AtomicU64::new(0));
    let closed = Arc::new(AtomicU64::new(0));
    let sem = Arc::new(tokio::sync::Semaphore::new(200));
    let mut setup = Vec::new();
    for (i, target) in targets.into_iter().enumerate() {
        let (opened, failures, closed, sem, on_frame) = (
            opened.clone(),
            failures.clone(),
            closed.clone(),
            sem.clone(),
            on_frame.clone(),
        );
        setup.push(tokio::spawn(async move {
            let Ok(_permit) = sem.acquire().await else {
                return;
            };
            match connect(target.addr, i, &target.token).await {
                Ok((ws, _)) => {
                    let task = tokio::spawn(async move {
                        pump(ws, i, on_frame).await;
                        closed.fetch_add(1, Ordering::Relaxed);
                    });
                    opened.lock().await.push(task);
                }
                Err(e) => {
                    if failures.fetch_add(1, Ordering::Relaxed) < 3 {
                        eprintln!("connection {i}: {e}");
                    }
                }
            }
        }));
    }
    for s in setup {
        let _ = s.await;
    }
    let took = start.elapsed();
    let f = failures.load(Ordering::Relaxed);
    if f > 0 {
        return Err(format!("{f} of {n} connections failed"));
    }
    let tasks = std::mem::take(&mut *opened.lock().await);
    Ok(Opened {
        tasks,
        took,
        closed,
    })
}

/// Reads frames until the server closes, heartbeating every 20 s (the
/// server's interval is 30 s) with the last sequence seen, as the contract
/// asks of clients (and as lets the server forget what was acknowledged).
async fn pump(ws: Ws, i: usize, on_frame: OnFrame) {
    let last = AtomicU64::new(0);
    read_loop(
        ws,
        || {
            format!(
                r#"{{"op":"heartbeat","d":{{"s":{}}}}}"#,
                last.load(Ordering::Relaxed)
            )
        },
        |t| {
            if let Some(s) = seq_of(t) {
                last.store(s, Ordering::Relaxed);
            }
            on_frame(i, t)
        },
    )
    .await;
}

/// Reads text frames into `on_text` until the server closes, sending
/// `heartbeat()` every 20 s (the server's interval is 30 s).
pub async fn read_loop(ws: Ws, heartbeat: impl Fn() -> String, mut on_text: impl FnMut(&str)) {
    let (mut tx, mut rx) = ws.split();
    let mut beat = tokio::time::interval(Duration::from_secs(20));
    beat.tick().await;
    loop {
        tokio::select! {
            _ = beat.tick() => {
                if tx.send(Message::Text(heartbeat().into())).await.is_err() { return; }
            }
            m = rx.next() => match m {
                Some(Ok(Message::Text(t))) => on_text(t.as_str()),
                Some(Ok(_)) => {}
                _ => return,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sequence_and_fields() {
        let ready =
            r#"{"op":"dispatch","s":1,"t":"READY","d":{"session_id":"abc123","user":{"id":"5"}}}"#;
        assert_eq!(seq_of(ready), Some(1));
        assert_eq!(field(ready, "session_id"), Some("abc123"));
        assert_eq!(seq_of(r#"{"op":"heartbeat_ack","d":{}}"#), None);
        assert_eq!(source(0), Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(source(250), Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(source(249), Ipv4Addr::new(127, 0, 0, 250));
    }
}
