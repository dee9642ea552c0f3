//! The `hearth` binary itself: migrate, admin create-user, serve, and a
//! graceful stop on SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub(crate) fn hearth() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hearth"));
    c.env("HEARTH_PASSWORD_HASH_MEMORY_KIB", "64")
        .env("HEARTH_PASSWORD_HASH_ITERATIONS", "1")
        .env("HEARTH_LOG_LEVEL", "warn");
    for k in [
        "DATABASE_URL",
        "NATS_URL",
        "REDIS_URL",
        "HEARTH_DATABASE_URL",
        "HEARTH_JWT_SECRET",
        "HEARTH_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ] {
        c.env_remove(k);
    }
    c
}

/// Polls `/healthz` (tagged with `request_id`) until the server answers
/// 200; fails the test after 20 s.
pub(crate) async fn wait_healthy(http: &reqwest::Client, base: &str, request_id: &str) {
    let start = Instant::now();
    while http
        .get(format!("{base}/healthz"))
        .header("x-request-id", request_id)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .ok()
        != Some(200)
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn migrate_admin_serve_and_stop() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let out = hearth()
        .args(["migrate", "--data-dir", data])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("hearth.db").exists());

    let out = hearth()
        .args([
            "admin",
            "create-user",
            "--username",
            "root",
            "--password",
            "root password",
            "--admin",
            "--data-dir",
            data,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("as an administrator"));
    let out = hearth()
        .args([
            "admin",
            "create-user",
            "--username",
            "x",
            "--password",
            "short",
            "--data-dir",
            data,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "bad input fails with a message");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = hearth()
        .args(["serve", "--listen", &listen, "--data-dir", data])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://{listen}");
    let http = reqwest::Client::new();
    wait_healthy(&http, &base, "cli-health").await;
    let res = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"login": "root", "password": "root password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let v: Value = res.json().await.unwrap();
    let me: Value = http
        .get(format!("{base}/api/v1/users/@me"))
        .bearer_auth(v["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["is_admin"], true);
    let html = http
        .get(format!("{base}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("web app has not been built"),
        "a clear message without the web build"
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success(), "graceful exit on SIGTERM: {st}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn migrate_on_postgres() {
    let admin = hearth_store::testing::admin_url();
    let name = format!(
        "hearth_cli_{}_{}",
        std::process::id(),
        rand::random::<u32>()
    );
    let url = hearth_store::testing::create_database(&admin, &name)
        .await
        .expect("Postgres must be running");
    let out = hearth()
        .env("DATABASE_URL", &url)
        .args(["migrate"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("postgres"));
    let out = hearth()
        .env("DATABASE_URL", &url)
        .args(["migrate"])
        .output()
        .unwrap();
    assert!(out.status.success(), "migrating twice is a no-op");
    hearth_store::testing::drop_database(&admin, &name)
        .await
        .unwrap();
}
