//! `hearth-loadgen`: starts a real `hearth` process on a backend of your
//! choice, drives its HTTP API, and reports throughput, latency percentiles
//! (HDR histogram) and the server's RSS, as a table and as JSON.
//!
//! Scenarios (issue targets in parentheses):
//! - `sends`: N concurrent senders posting messages in a closed loop (3,000/s, p99 < 30 ms).
//! - `history`: 50-message pages at random cursors in a channel seeded with
//!   1,000,000 messages (p99 < 5 ms).

mod gateway;
mod report;
mod scenarios;
mod server;

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
    /// Concurrent history readers.
    #[arg(long, default_value_t = 16)]
    pub readers: usize,
    /// Messages seeded into the history channel.
    #[arg(long, default_value_t = 1_000_000)]
    pub history_size: usize,
    /// Gateway connections for the gw-* scenarios.
    #[arg(long, default_value_t = 15_000)]
    pub connections: usize,
    /// Messages per second sent in gw-fanout.
    #[arg(long, default_value_t = 20)]
    pub rate: u64,
    /// Pin the server to CPU 0 and this process to CPU 1 (needs `taskset`).
    #[arg(long)]
    pub pin: bool,
    /// Also write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Postgres server to create the benchmark database on.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub postgres_admin_url: String,
}

impl Args {
    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.duration)
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if !args.server_bin.exists() {
        eprintln!(
            "no server binary at {}: cargo build --release --bin hearth",
            args.server_bin.display()
        );
        std::process::exit(2);
    }
    let server = match server::Server::start(&args).await {
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
        if args.scenario == Scenario::GwIdle {
            results.push(gateway::idle(&args, &server).await?);
        }
        if args.scenario == Scenario::GwFanout {
            results.push(gateway::fanout(&args, &server).await?);
        }
        Ok::<(), String>(())
    };
    let outcome = run.await;
    server.stop().await;
    if let Err(e) = outcome {
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
    report::print(&args, &results);
    if let Some(path) = &args.json
        && let Err(e) = std::fs::write(path, report::json(&args, &results))
    {
        eprintln!("writing {}: {e}", path.display());
        std::process::exit(1);
    }
}
