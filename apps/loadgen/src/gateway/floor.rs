//! `gw-floor`: what the kernel alone costs for gw-rising's fan-out, with no
//! server at all.
//!
//! gw-rising's one-core figures are bounded by the system calls of writing
//! to 10,000 sockets: on loopback each write also runs the receiver's TCP
//! input and wakes its reader, on the writer's core. To know how much of a
//! delivery is the gateway and how much is that floor, a bare writer
//! process (this binary again, as `gw-floor-writer`) accepts the same number
//! of connections from the same source addresses and, at each step's rate,
//! writes one WebSocket text frame of a MESSAGE_CREATE's size to every
//! socket in turn: a blocking vectored write per socket (head and shared
//! tail, as the gateway writes), no tasks, no sessions, no locks. The load
//! generator reads them as it reads the gateway's and reports the same
//! latency, plus the writer's CPU per write, measured from its thread's
//! scheduler statistics.
//!
//! Two processes because one process may hold at most 20,000 files here,
//! and both ends of 10,000 connections are 20,000.

use std::io::{BufRead, IoSlice, Write};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpSocket;

use super::client::source;
use super::probe::{Probe, WARMUP};
use crate::Args;
use crate::report::Outcome;

/// A MESSAGE_CREATE frame's payload size on the gateway (a short message
/// with its author, as gw-rising sends: ~480 bytes on the wire).
const PAYLOAD_BYTES: usize = 470;

/// The load generator's side: starts the writer, connects, runs the steps.
pub async fn floor(args: &Args) -> Result<Vec<Outcome>, String> {
    let n = args.connections;
    let probe = Arc::new(Probe::new(1 + args.steps.len()));
    // The writer stamps frames in the probe's clock: the probe's epoch as
    // wall-clock microseconds (both processes read the same clock).
    let epoch_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_micros()
        .saturating_sub(u128::from(probe.now_us())) as u64;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = if args.pin {
        let mut c = tokio::process::Command::new("taskset");
        c.args(["-c", "0"]).arg(&exe);
        c
    } else {
        tokio::process::Command::new(&exe)
    };
    cmd.args([
        "--scenario",
        "gw-floor-writer",
        "--connections",
        &n.to_string(),
        "--floor-epoch-us",
        &epoch_us.to_string(),
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("starting the writer: {e}"))?;
    if args.pin {
        crate::server::pin_self();
    }
    let mut w = Writer {
        stdin: child.stdin.take().ok_or("no writer stdin")?,
        stdout: BufReader::new(child.stdout.take().ok_or("no writer stdout")?).lines(),
    };
    let port: u16 = w
        .line()
        .await?
        .strip_prefix("port ")
        .and_then(|p| p.parse().ok())
        .ok_or("the writer did not say its port")?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));

    let started = Instant::now();
    let readers: Vec<_> = futures::stream::iter(0..n)
        .map(|i| {
            let probe = probe.clone();
            async move {
                let sock = TcpSocket::new_v4().map_err(|e| e.to_string())?;
                sock.bind(std::net::SocketAddr::from((source(i), 0)))
                    .map_err(|e| e.to_string())?;
                let stream = sock.connect(addr).await.map_err(|e| e.to_string())?;
                let _ = stream.set_nodelay(true);
                Ok::<_, String>(tokio::spawn(read_frames(stream, probe)))
            }
        })
        // Fewer at once than the writer's listen backlog (128): a
        // connection that overflows it is lost on the writer's side.
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    if w.line().await? != "ready" {
        return Err("the writer did not accept every connection".into());
    }
    eprintln!(
        "gw-floor: {n} connections in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let first = args.steps.first().copied().unwrap_or(10);
    w.step(WARMUP, first, args.warmup as f64).await?;
    probe.settle(Duration::from_secs(10)).await;
    let mut rows = Vec::new();
    for (k, &rate) in args.steps.iter().enumerate() {
        let own_before = crate::voice_common::cpu_seconds(std::process::id());
        let start_us = probe.now_us();
        let (writes, writer_cpu) = w.step(k + 1, rate, args.step_secs as f64).await?;
        probe.settle(Duration::from_secs(15)).await;
        let delivered = probe.delivered(k + 1);
        let seconds = probe.seconds_since(k + 1, start_us, args.step_secs as f64);
        let loadgen_cores = match (
            own_before,
            crate::voice_common::cpu_seconds(std::process::id()),
        ) {
            (Some(b), Some(a)) if seconds > 0.0 => (a - b) / seconds,
            _ => f64::NAN,
        };
        let writer_cores = writer_cpu / seconds.max(f64::EPSILON);
        let us_per_write = writer_cpu * 1e6 / writes.max(1) as f64;
        rows.push(Outcome {
            name: format!("gw-floor {rate}/s"),
            requests: delivered,
            errors: writes.saturating_sub(delivered),
            seconds,
            latency_us: probe.histogram(k + 1),
            server_rss_kib: None,
            notes: format!(
                "step {}: {rate} frames/s to each of {n} sockets for {} s = {} writes/s offered, one {PAYLOAD_BYTES}-byte frame per write, by a bare blocking writer; writer {us_per_write:.2} µs of CPU per write, busy {writer_cores:.2} cores; load generator {loadgen_cores:.2}",
                k + 1,
                args.step_secs,
                rate * n as u64
            ),
            extra: json!({ "step": k + 1, "rate": rate, "writes": writes, "offered_per_second": rate * n as u64, "writer_cpu_seconds": writer_cpu, "writer_us_per_write": us_per_write, "writer_cores": writer_cores, "loadgen_cores": loadgen_cores }),
        });
    }
    drop(w);
    let _ = child.wait().await;
    for r in readers {
        r.abort();
    }
    Ok(rows)
}

/// The writer process's pipes.
struct Writer {
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Writer {
    async fn line(&mut self) -> Result<String, String> {
        self.stdout
            .next_line()
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "the writer exited".to_string())
    }

    /// Runs one step; returns the writes made and the writer's CPU seconds.
    async fn step(&mut self, bucket: usize, rate: u64, secs: f64) -> Result<(u64, f64), String> {
        self.stdin
            .write_all(format!("step {bucket} {rate} {secs}\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let done = self.line().await?;
        let mut f = done.split_whitespace().skip(1).map(str::parse::<u64>);
        match (f.next(), f.next()) {
            (Some(Ok(writes)), Some(Ok(cpu_ns))) => Ok((writes, cpu_ns as f64 / 1e9)),
            _ => Err(format!("the writer said {done:?}")),
        }
    }
}

/// Reads frames off one socket and records each stamp.
async fn read_frames(mut stream: tokio::net::TcpStream, probe: Arc<Probe>) {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut at = 0;
        while let Some((start, end)) = frame_at(&buf[at..]) {
            if let Ok(text) = std::str::from_utf8(&buf[at + start..at + end])
                && let Some(st) = Probe::parse(text)
            {
                probe.record(st.bucket, st.sent_us);
            }
            at += end;
        }
        buf.drain(..at);
    }
}

/// The payload's range in the first whole unmasked frame of `b`, and where
/// the frame ends.
fn frame_at(b: &[u8]) -> Option<(usize, usize)> {
    let len7 = usize::from(*b.get(1)? & 0x7f);
    let (head, len) = match len7 {
        126 => (4, usize::from(u16::from_be_bytes([*b.get(2)?, *b.get(3)?]))),
        127 => return None, // never written here
        n => (2, n),
    };
    (b.len() >= head + len).then_some((head, head + len))
}

/// The writer process (`--scenario gw-floor-writer`): prints `port P`,
/// accepts `--connections`, prints `ready`, then for each `step B RATE
/// SECS` line writes RATE frames a second to every socket for SECS seconds
/// (stamped for bucket B) and prints `done WRITES CPU_NS`.
pub fn writer(args: &Args) -> Result<(), String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let mut out = std::io::stdout();
    let say = |out: &mut std::io::Stdout, line: String| {
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    say(&mut out, format!("port {port}"));
    let mut socks = Vec::with_capacity(args.connections);
    while socks.len() < args.connections {
        let (s, _) = listener.accept().map_err(|e| e.to_string())?;
        let _ = s.set_nodelay(true);
        socks.push(s);
    }
    say(&mut out, "ready".into());
    let epoch = UNIX_EPOCH + Duration::from_micros(args.floor_epoch_us);
    let mut seq = 0u64;
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| e.to_string())?;
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(bucket), Some(rate), Some(secs)) = (
            f.get(1).and_then(|v| v.parse::<usize>().ok()),
            f.get(2).and_then(|v| v.parse::<u64>().ok()),
            f.get(3).and_then(|v| v.parse::<f64>().ok()),
        ) else {
            return Err(format!("not a step: {line:?}"));
        };
        let cpu_before = thread_cpu_ns();
        let start = Instant::now();
        let start_us = SystemTime::now()
            .duration_since(epoch)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        let messages = (rate as f64 * secs).round() as u64;
        let mut writes = 0u64;
        for m in 0..messages {
            // Open loop: a message due while the last one is still being
            // written goes out right after it.
            let due = start + Duration::from_secs_f64(m as f64 / rate.max(1) as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            seq += 1;
            // Stamped with when it was due, not when the writer got to
            // it: a writer that falls behind shows as latency, as a server
            // that falls behind does in gw-rising.
            let sent_us = start_us + m * 1_000_000 / rate.max(1);
            let (head, tail) = frame(seq, sent_us, bucket);
            for s in &mut socks {
                write_all(s, &head, &tail).map_err(|e| e.to_string())?;
                writes += 1;
            }
        }
        say(
            &mut out,
            format!(
                "done {writes} {}",
                thread_cpu_ns().saturating_sub(cpu_before)
            ),
        );
    }
    Ok(())
}

/// One MESSAGE_CREATE-sized text frame in two parts, as the gateway writes
/// it: the frame header with `{"op":"dispatch","s":N,`, and the tail every
/// recipient shares.
fn frame(seq: u64, sent_us: u64, bucket: usize) -> (Vec<u8>, Vec<u8>) {
    let prefix = format!("{{\"op\":\"dispatch\",\"s\":{seq},");
    let mut tail = format!(
        "\"t\":\"MESSAGE_CREATE\",\"d\":{{\"id\":\"{seq}\",\"channel_id\":\"1\",\"content\":\"lg:{sent_us}:{bucket}:0\",\"pad\":\""
    );
    let fill = PAYLOAD_BYTES.saturating_sub(prefix.len() + tail.len() + 3);
    tail.push_str(&"x".repeat(fill));
    tail.push_str("\"}}");
    let len = prefix.len() + tail.len();
    let mut head = vec![0x81u8];
    if len < 126 {
        head.push(len as u8);
    } else {
        head.push(126);
        head.extend_from_slice(&(len as u16).to_be_bytes());
    }
    head.extend_from_slice(prefix.as_bytes());
    (head, tail.into_bytes())
}

fn write_all(s: &mut std::net::TcpStream, head: &[u8], tail: &[u8]) -> std::io::Result<()> {
    let n = s.write_vectored(&[IoSlice::new(head), IoSlice::new(tail)])?;
    if n < head.len() {
        s.write_all(&head[n..])?;
        s.write_all(tail)
    } else {
        s.write_all(&tail[n - head.len()..])
    }
}

/// CPU time of the calling thread so far, in ns (the first field of its
/// schedstat).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_frame_reads_back_with_its_stamp() {
        let (head, tail) = frame(7, 123_456, 2);
        let wire = [head, tail].concat();
        assert_eq!(wire.len(), PAYLOAD_BYTES + 4);
        let (start, end) = frame_at(&wire).expect("a whole frame");
        assert_eq!(end, wire.len());
        let text = std::str::from_utf8(&wire[start..end]).expect("UTF-8");
        let v: serde_json::Value = serde_json::from_str(text).expect("JSON");
        assert_eq!(v["s"], 7);
        let st = Probe::parse(text).expect("a stamp");
        assert_eq!((st.sent_us, st.bucket), (123_456, 2));
        assert_eq!(frame_at(&wire[..wire.len() - 1]), None, "not whole yet");
    }
}
