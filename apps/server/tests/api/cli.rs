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

    // The staff policy and suspensions from the shell.
    let admin = |args: &[&str]| {
        let mut all = vec!["admin"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--data-dir", data]);
        hearth().args(&all).output().unwrap()
    };
    let ok = |out: &std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    ok(&admin(&[
        "create-user",
        "--username",
        "helper",
        "--password",
        "helper password",
    ]));
    let out = ok(&admin(&[
        "staff", "grant", "--user", "helper", "--role", "support",
    ]));
    assert!(out.contains("staff policy changed"), "{out}");
    let out = ok(&admin(&[
        "staff", "grant", "--user", "helper", "--role", "support",
    ]));
    assert!(out.contains("unchanged"), "{out}");
    let out = ok(&admin(&["staff", "list"]));
    assert!(out.contains("\"role\":\"support\""), "{out}");
    let out = admin(&[
        "staff",
        "allow",
        "--role",
        "support",
        "--permission",
        "users",
    ]);
    assert!(
        !out.status.success(),
        "a permission without an action is refused"
    );
    let out = admin(&[
        "staff",
        "grant",
        "--user",
        "nobody-here",
        "--role",
        "support",
    ]);
    assert!(!out.status.success(), "an unknown user is refused");
    let out = ok(&admin(&[
        "suspend", "--user", "helper", "--reason", "testing",
    ]));
    assert!(out.contains("suspended"), "{out}");
    let out = ok(&admin(&["unsuspend", "--user", "helper"]));
    assert!(out.contains("may sign in again"), "{out}");
    // Erasure and takedowns from the shell.
    ok(&admin(&[
        "create-user",
        "--username",
        "leaver",
        "--password",
        "leaver password",
    ]));
    let out = admin(&["erase", "--user", "leaver", "--messages", "shred"]);
    assert!(
        !out.status.success(),
        "an unknown messages policy is refused"
    );
    let out = ok(&admin(&[
        "erase",
        "--user",
        "leaver",
        "--messages",
        "remove",
    ]));
    assert!(out.contains("erased: now deleted-"), "{out}");
    let out = admin(&["erase", "--user", "leaver"]);
    assert!(!out.status.success(), "the name is gone with the account");
    let out = ok(&admin(&["users", "--query", "help"]));
    assert!(out.contains("\thelper\t"), "{out}");
    assert!(!out.contains("root"), "a prefix search: {out}");
    let out = ok(&admin(&["reset-mfa", "--user", "helper"]));
    assert!(out.contains("password alone"), "{out}");
    let out = ok(&admin(&["stats"]));
    assert!(
        out.contains("users 3"),
        "root, helper and the erased account: {out}"
    );
    let out = ok(&admin(&["reports", "--state", "open"]));
    assert!(out.trim().is_empty(), "no reports yet: {out}");
    let out = admin(&["reports", "--state", "closed"]);
    assert!(!out.status.success(), "an unknown state is refused");
    let out = ok(&admin(&["communities"]));
    assert!(out.trim().is_empty(), "no communities yet: {out}");
    let out = admin(&["takedown", "--community", "12345"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no community 12345"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

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
    // A policy edit from the shell beside the running node (no shared bus)
    // applies within seconds.
    let helper: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"login": "helper", "password": "helper password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let helper_token = helper["access_token"].as_str().unwrap().to_string();
    let staff_roles = |http: reqwest::Client, base: String, token: String| async move {
        let me: Value = http
            .get(format!("{base}/api/v1/admin/@me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        me["roles"].clone()
    };
    assert_eq!(
        staff_roles(http.clone(), base.clone(), helper_token.clone()).await,
        json!(["support"])
    );
    ok(&admin(&[
        "staff", "revoke", "--user", "helper", "--role", "support",
    ]));
    let edited = Instant::now();
    while staff_roles(http.clone(), base.clone(), helper_token.clone()).await != json!([]) {
        assert!(
            edited.elapsed() < Duration::from_secs(5),
            "the running node did not apply the shell's policy edit"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    // An instance report handled from the shell, in a staff account's name.
    let root_token = v["access_token"].as_str().unwrap().to_string();
    let c: Value = http
        .post(format!("{base}/api/v1/communities"))
        .bearer_auth(&root_token)
        .json(&json!({"name": "Reported"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let report: Value = http
        .post(format!("{base}/api/v1/reports"))
        .bearer_auth(&root_token)
        .json(&json!({"to": "instance", "community_id": c["id"], "reason": "looks like spam"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rid = report["id"].as_str().expect("a report id").to_string();
    let out = admin(&["report", "--id", &rid, "--state", "closed", "--as", "root"]);
    assert!(!out.status.success(), "an unknown state is refused");
    let out = ok(&admin(&[
        "report",
        "--id",
        &rid,
        "--state",
        "dismissed",
        "--note",
        "not spam",
        "--as",
        "root",
    ]));
    assert!(out.contains("dismissed"), "{out}");
    let out = admin(&[
        "report", "--id", &rid, "--state", "actioned", "--as", "root",
    ]);
    assert!(!out.status.success(), "a report closes once");
    let out = ok(&admin(&["reports", "--state", "dismissed"]));
    assert!(out.contains(&rid) && out.contains("not spam"), "{out}");

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

#[tokio::test]
async fn a_short_jwt_secret_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = hearth()
        .env("HEARTH_JWT_SECRET", "0123456789")
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "a 10-byte secret must not start");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("jwt_secret") && said.contains("at least 32 bytes"),
        "names the setting and the minimum: {said}"
    );
    assert!(!said.contains("0123456789"), "never prints the secret");
    assert!(
        !dir.path().join("hearth.db").exists(),
        "refused before touching anything"
    );
}

/// HMAC-SHA256 (RFC 2104), for signing a token the way a node did before
/// tokens had a kid.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut k = if key.len() > 64 {
        Sha256::digest(key).to_vec()
    } else {
        key.to_vec()
    };
    k.resize(64, 0);
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// A single node from before keys were shared kept its key in
/// `data_dir/jwt.key`. Upgraded, it imports that file as the first database
/// key, so the tokens its users hold (no kid) keep working, and new tokens
/// are signed with the same secret.
#[tokio::test]
async fn an_existing_jwt_key_file_is_imported() {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let secret: Vec<u8> = (0..64).map(|_| rand::random::<u8>()).collect();
    std::fs::write(dir.path().join("jwt.key"), STANDARD.encode(&secret)).unwrap();

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
    wait_healthy(&http, &base, "cli-import").await;
    let v: Value = http
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"username": "olduser", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = v["access_token"].as_str().unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let header: Value = serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["kid"], "k1", "{header}");
    let signed = format!("{}.{}", parts[0], parts[1]);
    assert_eq!(
        B64.encode(hmac_sha256(&secret, signed.as_bytes())),
        parts[2],
        "signed with the imported secret"
    );

    // The same session's token as the old node signed it: no kid.
    let old_header = B64.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    let old_signed = format!("{old_header}.{}", parts[1]);
    let old_token = format!(
        "{old_signed}.{}",
        B64.encode(hmac_sha256(&secret, old_signed.as_bytes()))
    );
    // And one signed with any other secret.
    let forged = format!(
        "{old_signed}.{}",
        B64.encode(hmac_sha256(b"some other secret", old_signed.as_bytes()))
    );
    for (which, t, want) in [
        ("new", token, 200),
        ("kid-less", old_token.as_str(), 200),
        ("forged", forged.as_str(), 401),
    ] {
        let st = http
            .get(format!("{base}/api/v1/users/@me"))
            .bearer_auth(t)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(st.as_u16(), want, "the {which} token");
    }
    let _ = child.kill();
    let _ = child.wait();
}
