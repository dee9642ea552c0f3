//! The server under test: one or more real `hearth` processes with fresh
//! data directories, on a fresh SQLite file (one node) or a fresh Postgres
//! database (shared by every node), rate limits off.
//!
//! With `--nodes 2` or more the nodes form a cluster the way a deployment
//! does: one Postgres database, NATS for the event bus and Redis for shared
//! state, plus one JWT secret so a token issued by node A works on node B.
//! Each run uses its own NATS subject root (and so its own Redis key prefix),
//! so runs never see each other's events.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::{Args, BackendArg};

/// One `hearth` process.
pub struct Node {
    pub base: String,
    pub pid: u32,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Node {
    /// Resident memory of the process, in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid)
    }

    /// The socket address the gateway clients connect to.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.base
            .trim_start_matches("http://")
            .parse()
            .unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 8080)))
    }
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `--pin`: this process (every thread) on CPU 1, the server under test
/// having been started on CPU 0.
pub fn pin_self() {
    // -a: every thread. The runtime's workers already exist, and a
    // plain `taskset -p` would move only the main thread.
    let me = std::process::id().to_string();
    let _ = std::process::Command::new("taskset")
        .args(["-a", "-pc", "1", &me])
        .output();
}

pub struct Server {
    /// Node A's base URL: where the HTTP scenarios and all setup go.
    pub base: String,
    pub backend: hearth_store::Backend,
    pub nodes: Vec<Node>,
    pg: Option<(String, String)>,
    /// Holds the SQLite file of a single node.
    _db_dir: tempfile::TempDir,
}

impl Server {
    /// A server (or a cluster's balancer) someone else runs at `base`.
    pub fn external(base: &str) -> Server {
        Server {
            base: base.trim_end_matches('/').to_string(),
            backend: hearth_store::Backend::Postgres(String::new()),
            nodes: Vec::new(),
            pg: None,
            _db_dir: tempfile::tempdir().unwrap_or_else(|e| panic!("a temp dir: {e}")),
        }
    }

    pub async fn start(args: &Args) -> Result<Server, String> {
        let nodes = args.nodes.max(1);
        if nodes > 1 && args.backend != BackendArg::Postgres {
            return Err(
                "--nodes 2 or more needs --backend postgres (nodes share one database)".into(),
            );
        }
        let db_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut pg = None;
        let backend = match args.backend {
            BackendArg::Sqlite => hearth_store::Backend::Sqlite(db_dir.path().join("hearth.db")),
            BackendArg::Postgres => {
                let name = format!("hearth_bench_{}", std::process::id());
                let url = hearth_store::testing::create_database(&args.postgres_admin_url, &name)
                    .await
                    .map_err(|e| e.to_string())?;
                pg = Some((args.postgres_admin_url.clone(), name));
                hearth_store::Backend::Postgres(url)
            }
        };
        // Shared by every node, so tokens verify everywhere; throwaway per run.
        let jwt = format!(
            "{:032x}{:032x}",
            rand::random::<u128>(),
            rand::random::<u128>()
        );
        let root = format!("bench_{}", std::process::id());
        let mut server = Server {
            base: String::new(),
            backend,
            nodes: Vec::new(),
            pg,
            _db_dir: db_dir,
        };
        for n in 0..nodes {
            // Started one after the other: each applies migrations (a no-op
            // after the first) and leases its node id before the next starts.
            let search = args.search_nodes.is_none_or(|k| n < k);
            match server
                .spawn_node(args, nodes > 1, search, &jwt, &root)
                .await
            {
                Ok(node) => server.nodes.push(node),
                Err(e) => {
                    server.stop().await;
                    return Err(format!("node {n}: {e}"));
                }
            }
        }
        server.base = server.nodes[0].base.clone();
        if args.pin {
            pin_self();
        }
        Ok(server)
    }

    async fn spawn_node(
        &self,
        args: &Args,
        cluster: bool,
        search: bool,
        jwt: &str,
        root: &str,
    ) -> Result<Node, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        // SQLite lives in the data directory, where `seed` finds it too.
        let data_dir = match &self.backend {
            hearth_store::Backend::Sqlite(path) => path.parent(),
            hearth_store::Backend::Postgres(_) => None,
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        // Settings that have no environment variable go in a config file; an
        // explicit --config also keeps a stray ./hearth.toml out of the run.
        let mut toml = format!("nats_subject_root = \"{root}\"\n");
        if let Some(s) = args.resume_secs {
            toml.push_str(&format!("gateway_resume_secs = {s}\n"));
        }
        // Scenarios that share few accounts among many connections (100
        // accounts for 10,000 connections) need more than the shipped 16
        // sessions per user.
        let users = args.users.or(match args.scenario {
            crate::Scenario::GwRising | crate::Scenario::GwStorm => Some(100),
            _ => None,
        });
        let per_user = users.map_or(1, |u| args.connections.div_ceil(u.max(1)));
        let cap = args.max_sessions_per_user.unwrap_or(per_user.max(16));
        if cap != 16 {
            toml.push_str(&format!("gateway_max_sessions_per_user = {cap}\n"));
        }
        let config = dir.path().join("hearth.toml");
        std::fs::write(&config, toml).map_err(|e| e.to_string())?;
        let mut cmd = if args.pin {
            // With several nodes they all share CPU 0: the load generator
            // keeps CPU 1 to itself.
            let mut c = Command::new("taskset");
            c.args(["-c", "0"]).arg(&args.server_bin);
            c
        } else {
            Command::new(&args.server_bin)
        };
        cmd.arg("--config")
            .arg(&config)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data_dir.unwrap_or(dir.path()))
            .env("HEARTH_RATE_LIMIT_ENABLED", "false")
            .env("HEARTH_PASSWORD_HASH_MEMORY_KIB", "1024")
            .env("HEARTH_PASSWORD_HASH_ITERATIONS", "1")
            .env("HEARTH_LOG_LEVEL", "warn")
            // notify-fanout's push service is the local sink (plain http on loopback).
            .env("HEARTH_NOTIFY_PUSH_ALLOW_PRIVATE", "true")
            // media-serve's range reads need a 100 MiB file (the default cap is 25 MiB).
            .env("HEARTH_MEDIA_MAX_UPLOAD_BYTES", (200u64 << 20).to_string())
            .env("HEARTH_WEB_DIR", dir.path().join("none"))
            .env("HEARTH_JWT_SECRET", jwt)
            .env_remove("HEARTH_NATS_URL")
            .env_remove("HEARTH_REDIS_URL")
            .env_remove("HEARTH_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if args.scenario == crate::Scenario::GwAbuse {
            // The shipped per-user limits (what an abuser is held to); the
            // per-address ones lifted, since all our traffic is one address.
            let lifted = "1000000";
            cmd.env("HEARTH_RATE_LIMIT_ENABLED", "true")
                .env("HEARTH_RATE_LIMIT_PER_IP_PER_SECOND", lifted)
                .env("HEARTH_RATE_LIMIT_PER_IP_BURST", lifted)
                .env("HEARTH_RATE_LIMIT_AUTH_PER_IP_PER_SECOND", lifted)
                .env("HEARTH_RATE_LIMIT_AUTH_PER_IP_BURST", lifted)
                .env("HEARTH_RATE_LIMIT_AUTH_PER_ACCOUNT_PER_SECOND", lifted)
                .env("HEARTH_RATE_LIMIT_AUTH_PER_ACCOUNT_BURST", lifted);
        }
        if !search {
            cmd.env("HEARTH_SEARCH_ENABLED", "false");
        }
        if cluster {
            cmd.env("NATS_URL", &args.nats_url)
                .env("REDIS_URL", &args.redis_url);
        } else {
            cmd.env_remove("NATS_URL").env_remove("REDIS_URL");
        }
        match &self.backend {
            hearth_store::Backend::Postgres(url) => {
                cmd.env("DATABASE_URL", url)
                    .env("HEARTH_DB_MAX_CONNECTIONS", "32");
            }
            hearth_store::Backend::Sqlite(_) => {
                cmd.env_remove("DATABASE_URL");
            }
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", args.server_bin.display()))?;
        let pid = child.id().unwrap_or(0);
        let base = format!("http://127.0.0.1:{port}");
        let node = Node {
            base,
            pid,
            child,
            _dir: dir,
        };
        let http = reqwest::Client::new();
        let start = Instant::now();
        loop {
            if let Ok(r) = http.get(format!("{}/readyz", node.base)).send().await
                && r.status().is_success()
            {
                break;
            }
            if start.elapsed() > Duration::from_secs(30) {
                return Err("the server did not become ready in 30 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(node)
    }

    /// CPU time (user + system) of every node together, in seconds.
    pub fn cpu_seconds(&self) -> Option<f64> {
        self.nodes
            .iter()
            .map(|n| crate::voice_common::cpu_seconds(n.pid))
            .sum()
    }

    /// Resident memory of all nodes together, in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        self.nodes.iter().map(Node::rss_kib).sum()
    }

    pub async fn stop(mut self) {
        for n in &mut self.nodes {
            let _ = n.child.kill().await;
        }
        if let Some((admin, name)) = self.pg.take()
            && let Err(e) = hearth_store::testing::drop_database(&admin, &name).await
        {
            eprintln!("dropping {name}: {e}");
        }
    }
}
