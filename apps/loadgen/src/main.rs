//! `hearth-loadgen`: starts a real `hearth` process on a backend of your
//! choice, drives its HTTP API, and reports throughput, latency percentiles
//! (HDR histogram) and the server's RSS, as a table and as JSON.
//!
//! Scenarios (issue targets in parentheses):
//! - `sends`: N concurrent senders posting messages in a closed loop (3,000/s, p99 < 30 ms).
//! - `history`: 50-message pages at random cursors in a channel seeded with
//!   1,000,000 messages (p99 < 5 ms).
//! - `audit-lag`: audited moderation actions at --rate a second, and how
//!   long each takes to reach the audit log (issue 12).
//! - `media-pipeline`, `media-serve`: the image pipeline and file serving; see `media.rs`.
//! - `voice-forward`, `voice-janus`: audio rooms of real WebRTC clients
//!   through Hearth's SFU, and the same through Janus's VideoRoom (which
//!   the load generator starts itself) for comparison; see `voice.rs`,
//!   `janus.rs`.
//! - `voice-video`: one video room with simulcast (Opus and a three-layer
//!   VP8 camera per participant, spotlight and thumbnails); see `video.rs`.
//! - `gw-*`: the gateway; see `gateway/mod.rs`. `--nodes 2` starts a
//!   two-node cluster (Postgres, NATS, Redis) for gw-fanout and gw-e2e.
//!
//! Gateway runs need one file descriptor per connection in this process and
//! in the server (which inherits our limit): `ulimit -n 20000` for 10,000.

mod audit;
mod gateway;
mod janus;
mod media;
mod notify;
mod report;
mod scenarios;
mod search;
mod server;
mod str0m_sfu;
mod video;
mod voice;
mod voice_common;
mod voice_direct;
mod voice_str0m;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    Sqlite,
    Postgres,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    Sends,
    History,
    /// Both HTTP scenarios.
    All,
    /// Idle identified gateway connections: server RSS per connection.
    GwIdle,
    /// Gateway fan-out: deliveries/s and send-to-receive latency.
    GwFanout,
    /// Many channels, each with its own members (one community per channel).
    GwChannels,
    /// One big channel, send rate rising through --steps: where latency breaks.
    GwRising,
    /// End to end: REST POST → store → bus → socket at --rate msg/s.
    GwE2e,
    /// Reconnect storm: every connection dropped at once, all resume.
    GwStorm,
    /// READY for a user in --communities communities of --members members.
    GwReady,
    /// Message latency while one user joins/leaves in a loop and another
    /// creates group DMs (the server's per-user rate limits on).
    GwAbuse,
    /// Moderation under load: --rate audited actions a second from --users
    /// moderators, and how long until each is in the audit log.
    AuditLag,
    /// Rolling restart: --connections clients through the balancer at
    /// --external while --rate msg/s are sent and every node is restarted
    /// (scripts/rolling-restart.sh): lost, repeated, out of order, resume time.
    GwRolling,
    /// Overload: --connections readers of one channel while --rate msg/s
    /// (meant as twice the sustainable rate) are sent for --duration s, and
    /// --slow percent of them stall for --pause s: live, late (resume or
    /// REST) and never-delivered messages, waiting for the backlog to drain.
    GwOverload,
    /// Notifications: @everyone in a community of --members distinct
    /// accounts with mixed settings, --online of them connected and
    /// --push-subscriptions browsers: time until all are stored, announced
    /// and pushes queued (needs scripts/push.sh).
    NotifyFanout,
    /// The kernel's floor under gw-rising: a bare writer process (no
    /// server) writes one MESSAGE_CREATE-sized frame to each of
    /// --connections sockets at each of --steps rates: latency and the
    /// writer's CPU per write.
    GwFloor,
    /// gw-floor's writer (started by gw-floor).
    #[value(hide = true)]
    GwFloorWriter,
    /// Voice: --channels audio rooms of --members speakers (distinct
    /// accounts, real WebRTC clients): packets forwarded per server core,
    /// added latency, join time, RSS per participant.
    VoiceForward,
    /// voice-forward's rooms through Janus's VideoRoom plugin instead of
    /// Hearth (Debian's `janus`, started here with scripts/janus/; no
    /// hearth server): the same figures, for a side-by-side comparison.
    VoiceJanus,
    /// voice-forward's rooms through a minimal forwarder on str0m (this
    /// binary as voice-str0m-server; no hearth server): the same figures,
    /// to weigh another Rust WebRTC stack against webrtc-rs.
    VoiceStr0m,
    /// voice-str0m's forwarder (started by voice-str0m).
    #[value(hide = true)]
    VoiceStr0mServer,
    /// voice-forward's clients connected directly, no server (each member
    /// to each other over a one-way connection): the clients' own latency,
    /// the baseline for what an SFU adds (compare at --members 2).
    VoiceDirect,
    /// Voice: one video room of --members participants (default 8), each
    /// publishing Opus and a simulcast VP8 camera (q/h/f), two showing
    /// someone in spotlight and everyone showing the rest as thumbnails:
    /// packets forwarded per server core, latency, packets per layer.
    VoiceVideo,
    /// Search freshness: --rate msg/s from --users senders over --channels
    /// channels while probes measure send → found by search.
    SearchFresh,
    /// The image pipeline: --images 12 MP photos and PNG screenshots, at
    /// once and one by one: previews/s and upload → MESSAGE_UPDATE.
    MediaPipeline,
    /// File serving: --users members reading a hot thumbnail, then 1 MiB
    /// ranges of a 100 MiB file.
    MediaServe,
}

#[derive(Parser, Debug, Clone)]
#[command(about = "Load generator for Hearth's HTTP API")]
pub struct Args {
    /// Storage backend for the server under test.
    #[arg(long, value_enum, default_value = "sqlite")]
    pub backend: BackendArg,
    #[arg(long, value_enum, default_value = "all")]
    pub scenario: Scenario,
    /// The hearth binary (build it with --release for real figures).
    #[arg(long, default_value = "/var/tmp/hearth-target/release/hearth")]
    pub server_bin: PathBuf,
    /// Seconds of measurement per scenario (after a warm-up).
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// Concurrent senders.
    #[arg(long, default_value_t = 64)]
    pub senders: usize,
    /// sends: automod rules installed on the senders' community first (60%
    /// keyword lists of 180 words, 40% regex rules of 5 patterns, all
    /// blocking; the messages sent match none), to compare with 0.
    #[arg(long, default_value_t = 0)]
    pub automod_rules: usize,
    /// sends: every Nth message of a sender mentions another sender (0:
    /// none), so the notification service has work behind the log.
    #[arg(long, default_value_t = 0)]
    pub mention_every: u64,
    /// notify-fanout: members with an identified gateway session.
    #[arg(long, default_value_t = 1_000)]
    pub online: usize,
    /// notify-fanout: offline members with a browser at the push sink.
    #[arg(long, default_value_t = 1_000)]
    pub push_subscriptions: usize,
    /// Concurrent history readers.
    #[arg(long, default_value_t = 16)]
    pub readers: usize,
    /// Messages seeded into the history channel.
    #[arg(long, default_value_t = 1_000_000)]
    pub history_size: usize,
    /// Gateway connections for the gw-* scenarios.
    #[arg(long, default_value_t = 15_000)]
    pub connections: usize,
    /// Messages per second sent in gw-fanout, gw-channels and gw-e2e.
    #[arg(long, default_value_t = 20)]
    pub rate: u64,
    /// Channels for gw-channels, gw-e2e and gw-rolling (each in its own community;
    /// gw-rolling spreads its clients and messages over them).
    #[arg(long, default_value_t = 100)]
    pub channels: usize,
    /// Accounts the gateway connections are spread over [default: one per
    /// connection in gw-channels, gw-e2e and gw-idle, 100 in gw-rising and gw-storm,
    /// one per ten connections in gw-fanout; gw-fanout and gw-rising never put more
    /// than the server's 16 sessions on one account].
    #[arg(long)]
    pub users: Option<usize>,
    /// gw-rising: messages per second at each step.
    #[arg(long, value_delimiter = ',', default_value = "10,20,40,80")]
    pub steps: Vec<u64>,
    /// gw-rising: seconds per step.
    #[arg(long, default_value_t = 5)]
    pub step_secs: u64,
    /// gw-storm: clients reconnect at random moments within this many seconds.
    #[arg(long, default_value_t = 5.0)]
    pub storm_window: f64,
    /// gw-storm: messages per second sent throughout (to check none is lost).
    #[arg(long, default_value_t = 1)]
    pub storm_rate: u64,
    /// The server's gateway_resume_secs [default: the server's, 120].
    #[arg(long)]
    pub resume_secs: Option<u64>,
    /// gw-ready: communities the user is in; gw-idle: communities the
    /// accounts are spread over.
    #[arg(long, default_value_t = 100)]
    pub communities: usize,
    /// gw-ready: members of each community (the user included);
    /// notify-fanout: members of the community; voice-*: participants per
    /// room (2 to 99) [default: 10,000; voice-forward and voice-janus 99,
    /// voice-video 8].
    #[arg(long)]
    pub members: Option<usize>,
    /// media-pipeline: images of each kind per phase.
    #[arg(long, default_value_t = 20)]
    pub images: usize,
    /// gw-ready: identifies (and member pages) measured one after another.
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// The server's gateway_max_sessions_per_user [default: the server's
    /// 16, raised to what the layout needs when connections share fewer
    /// accounts than connections / 16].
    #[arg(long)]
    pub max_sessions_per_user: Option<usize>,
    /// gw-abuse: connections each abuser holds.
    #[arg(long, default_value_t = 16)]
    pub abuser_sessions: usize,
    /// Server processes (2+: a cluster over Postgres, NATS and Redis).
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,
    /// How many nodes (the first ones) keep a search index; the rest run with
    /// `HEARTH_SEARCH_ENABLED=false`, as nodes outside the search role do
    /// (docs/operations.md) [default: every node].
    #[arg(long)]
    pub search_nodes: Option<usize>,
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Pin the server (every node) to CPU 0 and this process to CPU 1 (needs `taskset`).
    #[arg(long)]
    pub pin: bool,
    /// gw-floor-writer: the reader's clock epoch in wall-clock µs.
    #[arg(long, default_value_t = 0, hide = true)]
    pub floor_epoch_us: u64,
    /// Also write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// gw-overload: percent of the readers that stall once.
    #[arg(long, default_value_t = 5)]
    pub slow: usize,
    /// gw-overload: seconds a stalling reader stops reading.
    #[arg(long, default_value_t = 10)]
    pub pause: u64,
    /// Drive a server (or a cluster's load balancer) already running at
    /// this base URL, e.g. http://127.0.0.1:8090, instead of starting one
    /// (gw-rolling). Its rate limits must be off or high enough.
    #[arg(long)]
    pub external: Option<String>,
    /// voice-janus: the Janus binary (Debian: apt-get install -y janus).
    #[arg(long, default_value = "janus")]
    pub janus_bin: PathBuf,
    /// voice-janus: the folder of Janus configuration files (copied to a
    /// temporary folder with a free HTTP port).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/janus"))]
    pub janus_config: PathBuf,
    /// voice-str0m: the forwarder sends each round's datagrams with one
    /// sendmmsg instead of one sendto each.
    #[arg(long)]
    pub str0m_batch: bool,
    /// Postgres server to create the benchmark database on.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub postgres_admin_url: String,
}

impl Args {
    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.duration)
    }

    /// `--members`, or the scenario's default.
    pub fn members(&self, default: usize) -> usize {
        self.members.unwrap_or(default)
    }
}

/// Every gateway connection is a descriptor here and one in the server,
/// which inherits this process's limit. Raising it needs `unsafe` (setrlimit)
/// or a new dependency, so ask the shell instead.
fn check_open_files(args: &Args) -> Result<(), String> {
    let gateway = !matches!(
        args.scenario,
        Scenario::Sends
            | Scenario::History
            | Scenario::All
            | Scenario::AuditLag
            | Scenario::MediaPipeline
            | Scenario::MediaServe
            | Scenario::VoiceJanus
            | Scenario::VoiceStr0m
            | Scenario::VoiceStr0mServer
            | Scenario::VoiceDirect
    );
    if !gateway {
        return Ok(());
    }
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<usize>().ok());
    let need = if args.scenario == Scenario::GwReady {
        1_000
    } else if args.scenario == Scenario::NotifyFanout {
        args.online + 1_000
    } else {
        args.connections + 1_000
    };
    match soft {
        Some(s) if s < need => Err(format!(
            "{} connections need about {need} open files, the limit is {s}: run `ulimit -n {}` first",
            args.connections,
            need.max(20_000)
        )),
        _ => Ok(()),
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if args.scenario == Scenario::GwFloorWriter {
        if let Err(e) = gateway::floor_writer(&args) {
            eprintln!("gw-floor-writer: {e}");
            std::process::exit(1);
        }
        return;
    }
    if args.scenario == Scenario::VoiceStr0mServer {
        if let Err(e) = str0m_sfu::serve(args.str0m_batch) {
            eprintln!("voice-str0m-server: {e}");
            std::process::exit(1);
        }
        return;
    }
    if matches!(
        args.scenario,
        Scenario::GwFloor | Scenario::VoiceJanus | Scenario::VoiceStr0m | Scenario::VoiceDirect
    ) {
        // No hearth server at all: gw-floor's bare writer, Janus, str0m's forwarder, or
        // clients talking directly.
        if let Err(e) = check_open_files(&args) {
            eprintln!("{e}");
            std::process::exit(2);
        }
        let results = match args.scenario {
            Scenario::GwFloor => gateway::floor(&args).await,
            Scenario::VoiceStr0m => voice_str0m::forward(&args).await,
            Scenario::VoiceDirect => voice_direct::direct(&args).await,
            _ => janus::forward(&args).await,
        };
        match results {
            Ok(results) => finish(&args, &results),
            Err(e) => {
                eprintln!("loadgen: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    if args.external.is_none() && !args.server_bin.exists() {
        eprintln!(
            "no server binary at {}: cargo build --release --bin hearth",
            args.server_bin.display()
        );
        std::process::exit(2);
    }
    if let Err(e) = check_open_files(&args) {
        eprintln!("{e}");
        std::process::exit(2);
    }
    let started = match &args.external {
        Some(url) => Ok(server::Server::external(url)),
        None => server::Server::start(&args).await,
    };
    let server = match started {
        Ok(s) => s,
        Err(e) => {
            eprintln!("starting the server: {e}");
            std::process::exit(1);
        }
    };
    let mut results = Vec::new();
    let run = async {
        if matches!(args.scenario, Scenario::Sends | Scenario::All) {
            results.push(scenarios::sends(&args, &server).await?);
        }
        if matches!(args.scenario, Scenario::History | Scenario::All) {
            results.push(scenarios::history(&args, &server).await?);
        }
        match args.scenario {
            Scenario::GwIdle => results.extend(gateway::idle(&args, &server).await?),
            Scenario::GwFanout => results.extend(gateway::fanout(&args, &server).await?),
            Scenario::GwChannels => results.extend(gateway::channels(&args, &server).await?),
            Scenario::GwRising => results.extend(gateway::rising(&args, &server).await?),
            Scenario::GwE2e => results.extend(gateway::e2e(&args, &server).await?),
            Scenario::GwStorm => results.extend(gateway::storm(&args, &server).await?),
            Scenario::GwReady => results.extend(gateway::ready(&args, &server).await?),
            Scenario::GwAbuse => results.extend(gateway::abuse(&args, &server).await?),
            Scenario::GwRolling => results.extend(gateway::rolling(&args, &server).await?),
            Scenario::GwOverload => results.extend(gateway::overload(&args, &server).await?),
            Scenario::VoiceForward => results.extend(voice::forward(&args, &server).await?),
            Scenario::VoiceVideo => results.extend(video::video(&args, &server).await?),
            Scenario::AuditLag => results.extend(audit::lag(&args, &server).await?),
            Scenario::NotifyFanout => results.extend(notify::fanout(&args, &server).await?),
            Scenario::SearchFresh => results.extend(search::fresh(&args, &server).await?),
            Scenario::MediaPipeline => results.extend(media::pipeline(&args, &server).await?),
            Scenario::MediaServe => results.extend(media::serve(&args, &server).await?),
            // VoiceJanus ran before any hearth server started.
            Scenario::Sends
            | Scenario::History
            | Scenario::All
            | Scenario::VoiceJanus
            | Scenario::VoiceStr0m
            | Scenario::VoiceStr0mServer
            | Scenario::VoiceDirect
            | Scenario::GwFloor
            | Scenario::GwFloorWriter => {}
        }
        Ok::<(), String>(())
    };
    let outcome = run.await;
    server.stop().await;
    if let Err(e) = outcome {
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
    finish(&args, &results);
}

/// Prints the results, and writes them to `--json` if asked.
fn finish(args: &Args, results: &[report::Outcome]) {
    report::print(args, results);
    if let Some(path) = &args.json
        && let Err(e) = std::fs::write(path, report::json(args, results))
    {
        eprintln!("writing {}: {e}", path.display());
        std::process::exit(1);
    }
}
