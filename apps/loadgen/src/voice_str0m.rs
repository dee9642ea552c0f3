//! `voice-str0m`: `voice-forward`'s rooms through the minimal str0m
//! forwarder of [`crate::str0m_sfu`] (this binary again, as
//! `voice-str0m-server`, pinned to CPU 0 under `--pin`), measured exactly
//! as Hearth and Janus are (`voice_common`): the same webrtc-rs clients,
//! Opus at 50 packets/s with the send time in the payload, the same
//! warm-up, window, CPU time and RSS from /proc.
//!
//! Each participant has one peer connection, as with Hearth: its
//! microphone and one recvonly audio m-line for each other member of its
//! room, offered at once (the forwarder never renegotiates). The join time
//! runs from the offer being made to the first remote packet.
//!
//! `--str0m-batch` makes the forwarder send each round with `sendmmsg`.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hearth_voice::peer;
use parking_lot::Mutex;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::oneshot;
use webrtc::peer_connection::PeerConnection;

use crate::Args;
use crate::report::Outcome;
use crate::voice_common::{self, Mic, Receiver, Run, Tally};

/// The forwarder process and its signalling pipe.
struct Forwarder {
    child: Child,
    pid: u32,
    stdin: tokio::sync::Mutex<ChildStdin>,
    pending: Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>,
}

impl Forwarder {
    async fn start(args: &Args) -> Result<Forwarder, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut cmd = if args.pin {
            let mut c = Command::new("taskset");
            c.args(["-c", "0"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.args(["--scenario", "voice-str0m-server"]);
        if args.str0m_batch {
            cmd.arg("--str0m-batch");
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting the str0m forwarder: {e}"))?;
        let pid = child.id().unwrap_or(0);
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = lines
            .next_line()
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the str0m forwarder exited")?;
        if !ready.starts_with("ready ") {
            return Err(format!("the str0m forwarder said {ready:?}"));
        }
        let pending: Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>> = Arc::default();
        let answers = pending.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let waiter = v["id"].as_u64().and_then(|id| answers.lock().remove(&id));
                if let Some(w) = waiter {
                    let _ = w.send(v);
                }
            }
        });
        if args.pin {
            crate::server::pin_self();
        }
        Ok(Forwarder {
            child,
            pid,
            stdin: tokio::sync::Mutex::new(stdin),
            pending,
        })
    }

    async fn join(&self, id: u64, room: u64, offer: String) -> Result<String, String> {
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(id, tx);
        let line = format!("{}\n", json!({"id": id, "room": room, "offer": offer}));
        self.stdin
            .lock()
            .await
            .write_all(line.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let reply = rx.await.map_err(|_| "the str0m forwarder exited")?;
        match reply["answer"].as_str() {
            Some(a) => Ok(a.to_string()),
            None => Err(format!("join refused: {}", reply["error"])),
        }
    }
}

struct Participant {
    pc: Arc<dyn PeerConnection>,
    task: tokio::task::JoinHandle<()>,
}

async fn participant(
    fwd: &Forwarder,
    i: usize,
    room: u64,
    members: usize,
    tally: Arc<Tally>,
    someone_speaks: bool,
) -> Result<Participant, String> {
    let joined_at = Arc::new(AtomicU64::new(0));
    let receiver = Receiver::new(tally.clone(), joined_at.clone(), someone_speaks);
    let pc = peer::client(receiver).await?;
    let mut mic = Mic::add(&pc, i).await?;
    for _ in 1..members {
        peer::add_recvonly(&pc, RtpCodecKind::Audio).await?;
    }
    joined_at.store(tally.now_us(), Ordering::Relaxed);
    let offer = voice_common::offer_sdp(&pc).await?;
    let answer = fwd.join(i as u64, room, offer).await?;
    peer::accept(&pc, answer).await?;
    let task = tokio::spawn(async move {
        let mut every = Mic::clock();
        loop {
            every.tick().await;
            mic.tick(&tally).await;
        }
    });
    Ok(Participant { pc, task })
}

pub async fn forward(args: &Args) -> Result<Vec<Outcome>, String> {
    let mut fwd = Forwarder::start(args).await?;
    let out = run(args, &fwd).await;
    let _ = fwd.child.kill().await;
    out
}

async fn run(args: &Args, fwd: &Forwarder) -> Result<Vec<Outcome>, String> {
    let (rooms, members) = (args.channels.max(1), args.members(99).clamp(2, 99));
    let tally = Tally::new();
    let rss_before = crate::server::rss_kib(fwd.pid);
    let mut all = Vec::new();
    for i in 0..rooms * members {
        // Rooms fill round-robin, as in voice-forward and voice-janus.
        let room = (i % rooms) as u64;
        all.push(participant(fwd, i, room, members, tally.clone(), i >= rooms).await?);
    }
    let window = voice_common::measure(args, &tally, fwd.pid, None).await;
    let rss_after = crate::server::rss_kib(fwd.pid);
    let participants = all.len();
    for p in &all {
        p.task.abort();
    }
    for p in &all {
        let _ = p.pc.close().await;
    }
    Ok(vec![voice_common::outcome(
        &tally,
        Run {
            scenario: "voice-str0m",
            rooms,
            members,
            participants,
            offered_per_sec: voice_common::speakers_offer(participants, members),
            window,
            rss_before,
            rss_after,
            about: json!({
                "server": "str0m-probe",
                "str0m_version": "0.23.1",
                "sendmmsg": args.str0m_batch,
                "peer_connections_per_participant": 1,
            }),
        },
    )])
}
