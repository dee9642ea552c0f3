//! The server under test: a real `hearth` process with a fresh data
//! directory (SQLite) or a fresh Postgres database, rate limits off.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::{Args, BackendArg};

pub struct Server {
    pub base: String,
    pub pid: u32,
    pub backend: hearth_store::Backend,
    child: Child,
    pg: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Server {
    pub async fn start(args: &Args) -> Result<Server, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let mut pg = None;
        let backend = match args.backend {
            BackendArg::Sqlite => hearth_store::Backend::Sqlite(dir.path().join("hearth.db")),
            BackendArg::Postgres => {
                let name = format!("hearth_bench_{}", std::process::id());
                let url = hearth_store::testing::create_database(&args.postgres_admin_url, &name)
                    .await
                    .map_err(|e| e.to_string())?;
                pg = Some((args.postgres_admin_url.clone(), name));
                hearth_store::Backend::Postgres(url)
            }
        };
        let mut cmd = if args.pin {
            let mut c = Command::new("taskset");
            c.args(["-c", "0"]).arg(&args.server_bin);
            c
        } else {
            Command::new(&args.server_bin)
        };
        cmd.args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir.path())
        .env("HEARTH_RATE_LIMIT_ENABLED", "false")
        .env("HEARTH_PASSWORD_HASH_MEMORY_KIB", "1024")
        .env("HEARTH_PASSWORD_HASH_ITERATIONS", "1")
        .env("HEARTH_LOG_LEVEL", "warn")
        .env("HEARTH_WEB_DIR", dir.path().join("none"))
        .env_remove("NATS_URL")
        .env_remove("REDIS_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
        match &backend {
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
        let http = reqwest::Client::new();
        let start = Instant::now();
        loop {
            if let Ok(r) = http.get(format!("{base}/readyz")).send().await
                && r.status().is_success()
            {
                break;
            }
            if start.elapsed() > Duration::from_secs(30) {
                return Err("the server did not become ready in 30 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if args.pin {
            let me = std::process::id().to_string();
            let _ = std::process::Command::new("taskset")
                .args(["-pc", "1", &me])
                .output();
        }
        Ok(Server {
            base,
            pid,
            backend,
            child,
            pg,
            _dir: dir,
        })
    }

    /// Resident memory of the server process, in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
        if let Some((admin, name)) = self.pg.take()
            && let Err(e) = hearth_store::testing::drop_database(&admin, &name).await
        {
            eprintln!("dropping {name}: {e}");
        }
    }
}
