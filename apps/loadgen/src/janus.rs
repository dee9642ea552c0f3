//! `voice-janus`: `voice-forward`'s rooms through Janus's VideoRoom plugin,
//! for a side-by-side comparison with Hearth's SFU.
//!
//! The load generator starts Janus itself (Debian's `janus`, 1.1.x) from
//! the configuration in `scripts/janus/` (only the HTTP transport and the
//! VideoRoom plugin), pinned to CPU 0 under `--pin`, and drives it over the
//! Janus API (`POST /janus...`, events by long-polling `GET
//! /janus/<session>`). Everything is measured as `voice-forward` measures
//! it (`voice_common`): `--channels` rooms of `--members` webrtc-rs
//! participants joining one after another, each publishing Opus at 50
//! packets/s with its send time in the payload, the same warm-up and
//! window, Janus's CPU time and RSS from /proc.
//!
//! Each participant is what a browser on Janus is: one Janus session with
//! two VideoRoom handles and so **two peer connections**: a publisher
//! (`joinandconfigure` with the offer, Janus answers) and one multistream
//! subscriber (`join` as subscriber with the room's feeds, later
//! `subscribe` for each new one; Janus offers, the client answers with
//! `start`). Hearth carries both directions on one connection. The join
//! time runs from the `joinandconfigure` request (Hearth: `voice_join`) to
//! the first remote packet.
//!
//! Janus (libnice) never gathers ICE candidates on a loopback interface,
//! and ties each socket to its interface (`IP_UNICAST_IF`), so it cannot
//! send to 127.0.0.1 either. So the load generator puts two loopback
//! addresses on a veth interface of its own (`hjanus0`, created if missing
//! and deleted afterwards): Janus gathers on 127.0.0.2 only
//! (`ice_enforce_list`), the clients bind 127.0.0.3. Packets between
//! addresses of this machine are delivered over the loopback device: media
//! still never leaves the machine.

use std::collections::HashSet;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hearth_voice::peer;
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use webrtc::peer_connection::PeerConnection;

use crate::Args;
use crate::report::Outcome;
use crate::voice_common::{self, Mic, Receiver, Run, Tally};

/// Janus's own interface and the veth's other end (up, so that the first
/// is running).
const IFACE: &str = "hjanus0";
const IFACE_PEER: &str = "hjanus1";
/// On `IFACE`: Janus's address (as in scripts/janus/janus.jcfg) and the
/// clients'.
const JANUS_ADDR: &str = "127.0.0.2/32";
const CLIENT_ADDR: &str = "127.0.0.3/32";
const CLIENT_BIND: &str = "127.0.0.3:0";
/// Rooms are numbered from here.
const FIRST_ROOM: u64 = 1000;

/// A running Janus.
struct Janus {
    /// `http://127.0.0.1:<port>/janus`.
    base: String,
    pid: u32,
    version: String,
    child: Child,
    /// The configuration and the log.
    dir: tempfile::TempDir,
    made_iface: bool,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Makes sure `hjanus0` is up with both addresses; true if it was made here.
async fn interface() -> Result<bool, String> {
    let sys = format!("/sys/class/net/{IFACE}");
    let made = !Path::new(&sys).exists();
    if made {
        ip(&["link", "add", IFACE, "type", "veth", "peer", "name", IFACE_PEER]).map_err(|e| {
            format!("{e} (Janus needs a non-loopback interface holding loopback addresses; this needs root)")
        })?;
    }
    let up = async {
        ip(&["addr", "replace", JANUS_ADDR, "dev", IFACE])?;
        ip(&["addr", "replace", CLIENT_ADDR, "dev", IFACE])?;
        ip(&["link", "set", IFACE_PEER, "up"])?;
        ip(&["link", "set", IFACE, "up"])?;
        // Janus skips interfaces that are not running yet.
        let start = Instant::now();
        while std::fs::read_to_string(format!("{sys}/operstate"))
            .unwrap_or_default()
            .trim()
            != "up"
        {
            if start.elapsed() > Duration::from_secs(5) {
                return Err(format!("{IFACE} did not come up"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    };
    if let Err(e) = up.await {
        if made {
            let _ = ip(&["link", "del", IFACE]);
        }
        return Err(e);
    }
    Ok(made)
}

impl Janus {
    async fn start(args: &Args) -> Result<Janus, String> {
        let made_iface = interface().await?;
        match Janus::spawn(args, made_iface).await {
            Ok(j) => Ok(j),
            Err(e) => {
                if made_iface {
                    let _ = ip(&["link", "del", IFACE]);
                }
                Err(e)
            }
        }
    }

    async fn spawn(args: &Args, made_iface: bool) -> Result<Janus, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        // The committed configuration, with a free port for the HTTP API.
        let files = std::fs::read_dir(&args.janus_config)
            .map_err(|e| format!("{}: {e}", args.janus_config.display()))?;
        for f in files.flatten() {
            let name = f.file_name();
            if !name.to_string_lossy().ends_with(".jcfg") {
                continue;
            }
            let mut text = std::fs::read_to_string(f.path()).map_err(|e| e.to_string())?;
            if name == "janus.transport.http.jcfg" {
                text = text.replace("port = 8088", &format!("port = {port}"));
            }
            std::fs::write(dir.path().join(&name), text).map_err(|e| e.to_string())?;
        }
        let log = std::fs::File::create(dir.path().join("janus.log")).map_err(|e| e.to_string())?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = if args.pin {
            let mut c = Command::new("taskset");
            c.args(["-c", "0"]).arg(&args.janus_bin);
            c
        } else {
            Command::new(&args.janus_bin)
        };
        cmd.arg("-F")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|e| {
            format!(
                "starting {}: {e} (Debian: apt-get install -y janus)",
                args.janus_bin.display()
            )
        })?;
        let pid = child.id().unwrap_or(0);
        let mut janus = Janus {
            base: format!("http://127.0.0.1:{port}/janus"),
            pid,
            version: String::new(),
            child,
            dir,
            made_iface,
        };
        let http = reqwest::Client::new();
        let start = Instant::now();
        loop {
            if let Ok(r) = http.get(format!("{}/info", janus.base)).send().await
                && let Ok(info) = r.json::<Value>().await
            {
                janus.version = info["version_string"].as_str().unwrap_or("?").to_string();
                break;
            }
            if let Ok(Some(st)) = janus.child.try_wait() {
                return Err(format!("janus exited ({st}):\n{}", janus.log_tail(20)));
            }
            if start.elapsed() > Duration::from_secs(30) {
                return Err(format!(
                    "janus did not answer in 30 s:\n{}",
                    janus.log_tail(20)
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if args.pin {
            crate::server::pin_self();
        }
        Ok(janus)
    }

    fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("janus.log")).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Janus's warnings and errors of the run (its log level is 3), less
    /// the startup's notes about disabled plugins and the one every
    /// publisher gives (webrtc-rs lists its host candidate for RTCP's
    /// component 2 too, which rtcp-mux makes moot).
    fn complaints(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir.path().join("janus.log")).unwrap_or_default();
        log.lines()
            .filter(|l| l.contains("[ERR]") || l.contains("[WARN]"))
            .filter(|l| !l.contains("has been disabled"))
            .filter(|l| !l.contains("Failed to add some remote candidates (added 1, expected 2)"))
            .map(str::to_string)
            .collect()
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
        if self.made_iface
            && let Err(e) = ip(&["link", "del", IFACE])
        {
            eprintln!("{e}");
        }
    }
}

/// The Janus API over HTTP.
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    /// One request; a Janus-level error (not a plugin's) is an `Err`.
    async fn call(&self, path: &str, mut body: Value) -> Result<Value, String> {
        body["transaction"] = json!(format!("{:016x}", rand::random::<u64>()));
        let url = if path.is_empty() {
            self.base.clone()
        } else {
            format!("{}/{path}", self.base)
        };
        let v = crate::scenarios::json_of(self.http.post(url).json(&body)).await?;
        if v["janus"] == "error" {
            return Err(format!("janus {}: {}", body["janus"], v["error"]));
        }
        Ok(v)
    }

    async fn session(&self) -> Result<u64, String> {
        let v = self.call("", json!({"janus": "create"})).await?;
        v["data"]["id"]
            .as_u64()
            .ok_or_else(|| format!("no session in {v}"))
    }

    async fn attach(&self, session: u64) -> Result<u64, String> {
        let v = self
            .call(
                &session.to_string(),
                json!({"janus": "attach", "plugin": "janus.plugin.videoroom"}),
            )
            .await?;
        v["data"]["id"]
            .as_u64()
            .ok_or_else(|| format!("no handle in {v}"))
    }

    /// A VideoRoom request: the synchronous answer (`success` with the
    /// plugin's data, or an `ack` when the result comes as an event).
    async fn message(
        &self,
        session: u64,
        handle: u64,
        body: Value,
        jsep: Option<Value>,
    ) -> Result<Value, String> {
        let mut m = json!({"janus": "message", "body": body});
        if let Some(j) = jsep {
            m["jsep"] = j;
        }
        self.call(&format!("{session}/{handle}"), m).await
    }

    async fn keepalive(&self, session: u64) -> Result<(), String> {
        self.call(&session.to_string(), json!({"janus": "keepalive"}))
            .await
            .map(|_| ())
    }

    /// The session's next events (a long poll: at most 30 s, then a
    /// `keepalive` stands in for events).
    async fn events(&self, session: u64) -> Result<Vec<Value>, String> {
        let v =
            crate::scenarios::json_of(self.http.get(format!("{}/{session}?maxev=16", self.base)))
                .await?;
        Ok(match v {
            Value::Array(evs) => evs,
            one => vec![one],
        })
    }
}

/// One room per benchmark room, opus only, as many publishers as members.
async fn create_rooms(api: &Api, rooms: usize, members: usize) -> Result<Vec<u64>, String> {
    let session = api.session().await?;
    let handle = api.attach(session).await?;
    let mut ids = Vec::new();
    for r in 0..rooms {
        let room = FIRST_ROOM + r as u64;
        let v = api
            .message(
                session,
                handle,
                json!({
                    "request": "create",
                    "room": room,
                    "description": format!("room {r}"),
                    "is_private": true,
                    "publishers": members,
                    "audiocodec": "opus",
                    "videocodec": "vp8",
                    "audiolevel_event": false,
                    "record": false,
                }),
                None,
            )
            .await?;
        let data = &v["plugindata"]["data"];
        if data["videoroom"] != "created" {
            return Err(format!("creating room {room}: {data}"));
        }
        ids.push(room);
    }
    Ok(ids)
}

/// One participant: its two peer connections and its tasks.
struct Participant {
    pcs: [Arc<dyn PeerConnection>; 2],
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn participant(
    api: &Arc<Api>,
    i: usize,
    room: u64,
    tally: Arc<Tally>,
    someone_speaks: bool,
) -> Result<Participant, String> {
    // The session and handles stand where Hearth's gateway connection does.
    let session = api.session().await?;
    let publisher = api.attach(session).await?;
    let subscriber = api.attach(session).await?;
    let joined_at = Arc::new(AtomicU64::new(0));
    let receiver = Receiver::new(tally.clone(), joined_at.clone(), someone_speaks);
    let pc = peer::client_on(receiver.clone(), CLIENT_BIND).await?;
    let sub = peer::client_on(receiver, CLIENT_BIND).await?;
    let mut mic = Mic::add(&pc, i).await?;
    joined_at.store(tally.now_us(), Ordering::Relaxed);
    let sdp = voice_common::offer_sdp(&pc).await?;
    let ack = api
        .message(
            session,
            publisher,
            json!({
                "request": "joinandconfigure",
                "ptype": "publisher",
                "room": room,
                "display": format!("p{i}"),
            }),
            Some(json!({"type": "offer", "sdp": sdp})),
        )
        .await?;
    if ack["janus"] != "ack" {
        return Err(format!("joinandconfigure: {ack}"));
    }
    let mic_task = tokio::spawn(async move {
        let mut every = Mic::clock();
        loop {
            every.tick().await;
            mic.tick(&tally).await;
        }
    });
    let keepalive = {
        let api = api.clone();
        tokio::spawn(async move {
            // Janus drops a session after 60 s without a request; the long
            // poll counts as one too, this is belt and braces.
            let mut beat = tokio::time::interval(Duration::from_secs(20));
            beat.tick().await;
            loop {
                beat.tick().await;
                if let Err(e) = api.keepalive(session).await {
                    eprintln!("janus participant {i}: keepalive: {e}");
                }
            }
        })
    };
    let signals = tokio::spawn(signalling(
        api.clone(),
        i,
        Session {
            id: session,
            publisher,
            subscriber,
            room,
        },
        pc.clone(),
        sub.clone(),
    ));
    Ok(Participant {
        pcs: [pc, sub],
        tasks: vec![mic_task, keepalive, signals],
    })
}

#[derive(Clone, Copy)]
struct Session {
    id: u64,
    publisher: u64,
    subscriber: u64,
    room: u64,
}

/// A participant's events: the answer to its publication, the room's
/// publishers (each subscribed to once), and the subscriber's offers
/// (answered with `start`).
async fn signalling(
    api: Arc<Api>,
    i: usize,
    s: Session,
    pc: Arc<dyn PeerConnection>,
    sub: Arc<dyn PeerConnection>,
) {
    let mut feeds = HashSet::new();
    let mut subscribed = false;
    loop {
        let events = match api.events(s.id).await {
            Ok(evs) => evs,
            Err(e) => {
                eprintln!("janus participant {i}: events: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for ev in events {
            match ev["janus"].as_str() {
                Some("event") => {}
                Some("hangup") | Some("detached") => {
                    eprintln!("janus participant {i}: {ev}");
                    continue;
                }
                // keepalive, ack, webrtcup, media, slowlink...
                _ => continue,
            }
            let data = &ev["plugindata"]["data"];
            if data.get("error_code").is_some() {
                eprintln!("janus participant {i}: {data}");
                continue;
            }
            let jsep = &ev["jsep"];
            let sdp = jsep["sdp"].as_str().unwrap_or_default().to_string();
            let sender = ev["sender"].as_u64();
            if sender == Some(s.publisher) {
                if jsep["type"] == "answer"
                    && let Err(e) = peer::accept(&pc, sdp).await
                {
                    eprintln!("janus participant {i}: publisher answer: {e}");
                }
                let new: Vec<Value> = data["publishers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p["id"].as_u64())
                    .filter(|id| feeds.insert(*id))
                    .map(|id| json!({"feed": id}))
                    .collect();
                if new.is_empty() {
                    continue;
                }
                // The first feeds open the subscription, later ones are
                // added to it (Janus holds an update back while an offer
                // is unanswered and then offers everything at once).
                let body = if subscribed {
                    json!({"request": "subscribe", "streams": new})
                } else {
                    json!({"request": "join", "ptype": "subscriber", "room": s.room, "streams": new})
                };
                subscribed = true;
                if let Err(e) = api.message(s.id, s.subscriber, body, None).await {
                    eprintln!("janus participant {i}: subscribing: {e}");
                }
            } else if sender == Some(s.subscriber) && jsep["type"] == "offer" {
                let answer = match answer_gathered(&sub, sdp).await {
                    Ok(a) => a,
                    Err(e) => {
                        eprintln!("janus participant {i}: subscriber offer: {e}");
                        continue;
                    }
                };
                if let Err(e) = api
                    .message(
                        s.id,
                        s.subscriber,
                        json!({"request": "start"}),
                        Some(json!({"type": "answer", "sdp": answer})),
                    )
                    .await
                {
                    eprintln!("janus participant {i}: start: {e}");
                }
            }
        }
    }
}

/// Answers an offer, with the local candidates in the answer (the first
/// answer of a new connection; no trickling).
async fn answer_gathered(pc: &Arc<dyn PeerConnection>, offer: String) -> Result<String, String> {
    let mut sdp = peer::answer(pc, offer).await?;
    for _ in 0..100 {
        if sdp.contains("a=candidate") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        sdp = pc.local_description().await.ok_or("no local answer")?.sdp;
    }
    Ok(sdp)
}

pub async fn forward(args: &Args) -> Result<Vec<Outcome>, String> {
    let janus = Janus::start(args).await?;
    let out = run(args, &janus).await;
    let complaints = janus.complaints();
    if !complaints.is_empty() {
        eprintln!(
            "janus logged {} warnings or errors; the last ones:",
            complaints.len()
        );
        for l in &complaints[complaints.len().saturating_sub(10)..] {
            eprintln!("  {l}");
        }
    }
    janus.stop().await;
    out
}

async fn run(args: &Args, janus: &Janus) -> Result<Vec<Outcome>, String> {
    let api = Arc::new(Api {
        http: crate::scenarios::client(),
        base: janus.base.clone(),
    });
    let (rooms, members) = (args.channels.max(1), args.members(99).clamp(2, 99));
    let room_ids = create_rooms(&api, rooms, members).await?;
    let tally = Tally::new();
    let rss_before = crate::server::rss_kib(janus.pid);
    let mut all = Vec::new();
    for i in 0..rooms * members {
        // Rooms fill round-robin: the first `rooms` joins are alone.
        all.push(participant(&api, i, room_ids[i % rooms], tally.clone(), i >= rooms).await?);
    }
    let window = voice_common::measure(args, &tally, janus.pid, None).await;
    let rss_after = crate::server::rss_kib(janus.pid);
    let participants = all.len();
    // Everyone stops signalling before anyone hangs up, so nobody answers
    // the offers Janus makes as publishers leave.
    for t in all.iter().flat_map(|p| &p.tasks) {
        t.abort();
    }
    for pc in all.iter().flat_map(|p| &p.pcs) {
        let _ = pc.close().await;
    }
    Ok(vec![voice_common::outcome(
        &tally,
        Run {
            scenario: "voice-janus",
            rooms,
            members,
            participants,
            offered_per_sec: voice_common::speakers_offer(participants, members),
            window,
            rss_before,
            rss_after,
            about: json!({
                "server": "janus",
                "server_version": janus.version,
                "peer_connections_per_participant": 2,
            }),
        },
    )])
}
