//! Three `hearth` processes on one Postgres, NATS and Redis, and one of them
//! killed with SIGKILL in the middle of 400 sends: its clients reconnect to
//! another node, resume, and end with every acknowledged message once, in
//! order. Then a permission change made on node 1 stops delivery on node 3.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use crate::cluster::{drop_log, nats_url, redis_url};
use crate::gateway::{Got, Gw};
use crate::{TestServer, User};

struct Node {
    child: Child,
    api: Arc<TestServer>,
    /// The process's stderr (its logs), for failure messages.
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// Starts a `hearth` process without waiting for it; `jwt_secret` None
/// leaves the signing keys to the database.
fn start(db_url: &str, root: &str, jwt_secret: Option<&str>) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let log = dir.path().join("stderr.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.args(["serve", "--listen", &addr.to_string(), "--data-dir"])
        .arg(dir.path())
        .env("DATABASE_URL", db_url)
        .env("NATS_URL", nats_url())
        .env("REDIS_URL", redis_url())
        .env("HEARTH_NATS_SUBJECT_ROOT", root)
        .env("HEARTH_RATE_LIMIT_ENABLED", "false")
        .env("HEARTH_PASSWORD_HASH_MEMORY_KIB", "64")
        .env("HEARTH_PASSWORD_HASH_ITERATIONS", "1")
        .env("HEARTH_LOG_LEVEL", "warn")
        .env("HEARTH_WEB_DIR", dir.path().join("no-web"))
        .env_remove("HEARTH_DATABASE_URL")
        .env_remove("HEARTH_JWT_SECRET")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true);
    if let Some(secret) = jwt_secret {
        cmd.env("HEARTH_JWT_SECRET", secret);
    }
    let child = cmd.spawn().expect("spawn hearth");
    Node {
        child,
        api: Arc::new(TestServer::external(addr)),
        log,
        _dir: dir,
    }
}

/// Waits until the node answers `/readyz` with 200; fails the test (with the
/// node's logs) if it exits or takes longer than 30 s.
async fn ready(node: &mut Node) {
    let start = Instant::now();
    loop {
        if let Ok(r) = node
            .api
            .http
            .get(format!("{}/readyz", node.api.base))
            .send()
            .await
            && r.status() == StatusCode::OK
        {
            return;
        }
        if let Some(status) = node.child.try_wait().unwrap() {
            panic!(
                "node {} exited ({status}) before it was ready: {}",
                node.api.base,
                std::fs::read_to_string(&node.log).unwrap_or_default()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "node {} did not start: {}",
            node.api.base,
            std::fs::read_to_string(&node.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn spawn(db_url: &str, root: &str) -> Node {
    let mut node = start(db_url, root, Some("one secret for the whole test cluster"));
    ready(&mut node).await;
    node
}

/// What a receiving client saw, per channel, in arrival order.
#[derive(Default)]
struct Seen {
    by_channel: HashMap<String, Vec<String>>,
    /// The last PRESENCE_UPDATE per user, and when it came.
    presence: HashMap<String, (String, Instant)>,
    resumed: usize,
    reidentified: usize,
}

impl Seen {
    fn note(&mut self, f: &Value) {
        if f["t"] == "PRESENCE_UPDATE" {
            let u = f["d"]["user_id"].as_str().unwrap().to_string();
            let st = f["d"]["status"].as_str().unwrap().to_string();
            self.presence.insert(u, (st, Instant::now()));
        }
        if f["t"] == "MESSAGE_CREATE" {
            let ch = f["d"]["channel_id"].as_str().unwrap().to_string();
            let id = f["d"]["id"].as_str().unwrap().to_string();
            self.by_channel.entry(ch).or_default().push(id);
        }
    }
}

/// Follows the contract: on a dropped connection, resume on `fallback`;
/// on `invalid_session`, identify and fetch `messages?after=` per channel.
async fn receive(
    first: Arc<TestServer>,
    fallback: Arc<TestServer>,
    user: User,
    channels: Vec<String>,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<tokio::sync::Notify>,
) {
    let (mut gw, ready) = Gw::identify(&first, &user).await;
    let mut session = ready["session_id"].as_str().unwrap().to_string();
    loop {
        let got = tokio::select! {
            g = gw.next(Duration::from_secs(30)) => g,
            _ = stop.notified() => return,
        };
        match got {
            Got::Frame(f) => seen.lock().await.note(&f),
            Got::Nothing => {}
            Got::Closed(_) => {
                let (new_gw, outcome) = Gw::resume(&fallback, &user, &session, gw.last_s).await;
                gw = new_gw;
                match outcome {
                    Ok(missed) => {
                        let mut s = seen.lock().await;
                        s.resumed += 1;
                        for f in &missed {
                            s.note(f);
                        }
                    }
                    Err(()) => {
                        let (g, ready) = Gw::identify(&fallback, &user).await;
                        gw = g;
                        session = ready["session_id"].as_str().unwrap().to_string();
                        let mut s = seen.lock().await;
                        s.reidentified += 1;
                        for ch in &channels {
                            let mut after = s
                                .by_channel
                                .get(ch)
                                .and_then(|v| v.last().cloned())
                                .unwrap_or_else(|| "0".into());
                            loop {
                                let (st, page) = fallback
                                    .get(
                                        &format!(
                                            "/api/v1/channels/{ch}/messages?after={after}&limit=100"
                                        ),
                                        &user.token,
                                    )
                                    .await;
                                assert_eq!(st, StatusCode::OK, "{page}");
                                let mut items: Vec<Value> =
                                    page.as_array().cloned().unwrap_or_default();
                                items.sort_by_key(|m| {
                                    m["id"].as_str().unwrap().parse::<i64>().unwrap()
                                });
                                if items.is_empty() {
                                    break;
                                }
                                for m in &items {
                                    s.note(&json!({"t": "MESSAGE_CREATE", "d": m}));
                                }
                                after = items.last().unwrap()["id"].as_str().unwrap().to_string();
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Sends `n` messages one after another, each with a nonce; a failed
/// request is retried (same nonce) on the next node in `nodes`.
async fn send_all(
    nodes: Vec<Arc<TestServer>>,
    user: User,
    channel: String,
    n: usize,
    progress: Arc<AtomicUsize>,
) -> Vec<String> {
    let mut acked = Vec::new();
    let mut at = 0;
    for i in 0..n {
        let body = json!({"content": format!("m{i}"), "nonce": format!("{channel}-{i}")});
        loop {
            let node = &nodes[at.min(nodes.len() - 1)];
            let r = node
                .http
                .post(format!("{}/api/v1/channels/{channel}/messages", node.base))
                .bearer_auth(&user.token)
                .json(&body)
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            match r {
                Ok(r) if r.status().is_success() => {
                    let m: Value = r.json().await.unwrap();
                    acked.push(m["id"].as_str().unwrap().to_string());
                    break;
                }
                Ok(r) => panic!("send answered {}", r.status()),
                Err(_) => at += 1, // the node is gone: the next one
            }
        }
        progress.fetch_add(1, Ordering::SeqCst);
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_sends_loses_no_acknowledged_message() {
    let admin = hearth_store::testing::admin_url();
    let db = format!(
        "hearth_procs_{}_{}",
        std::process::id(),
        rand::random::<u32>()
    );
    let url = hearth_store::testing::create_database(&admin, &db)
        .await
        .expect("Postgres must be running");
    let root = format!("p{}", rand::random::<u32>());
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(spawn(&url, &root).await);
    }
    let (n1, n2, n3) = (
        nodes[0].api.clone(),
        nodes[1].api.clone(),
        nodes[2].api.clone(),
    );
    let owner = n1.register("kowner").await;
    let (cid, a) = n1.community(&owner, "Kill").await;
    let (st, b) = n1
        .post(
            &format!("/api/v1/communities/{cid}/channels"),
            &owner.token,
            json!({"name": "second"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let b = b["id"].as_str().unwrap().to_string();
    let mut receivers = Vec::new();
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut members = Vec::new();
    for i in 0..3 {
        let u = n1.register(&format!("krecv{i}")).await;
        n1.join(&owner, &cid, &u).await;
        members.push(u);
    }
    // A client that lives and dies with node 2: it never reconnects.
    let ghost = n1.register("kghost").await;
    n1.join(&owner, &cid, &ghost).await;
    // Two clients on node 2 (to be killed), one on node 3.
    for (i, u) in members.iter().enumerate() {
        let first = if i < 2 { n2.clone() } else { n3.clone() };
        let seen = Arc::new(Mutex::new(Seen::default()));
        let user = User {
            id: u.id.clone(),
            token: u.token.clone(),
            refresh: u.refresh.clone(),
        };
        let task = tokio::spawn(receive(
            first,
            n3.clone(),
            user,
            vec![a.clone(), b.clone()],
            seen.clone(),
            stop.clone(),
        ));
        receivers.push((seen, task));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (ghost_gw, _) = Gw::identify(&n2, &ghost).await;

    // 300 sends into A through node 1, 100 into B through node 2 (then 3).
    let progress = Arc::new(AtomicUsize::new(0));
    let clone_user = |u: &User| User {
        id: u.id.clone(),
        token: u.token.clone(),
        refresh: u.refresh.clone(),
    };
    let s1 = tokio::spawn(send_all(
        vec![n1.clone()],
        clone_user(&owner),
        a.clone(),
        300,
        progress.clone(),
    ));
    let s2 = tokio::spawn(send_all(
        vec![n2.clone(), n3.clone()],
        clone_user(&owner),
        b.clone(),
        100,
        Arc::new(AtomicUsize::new(0)),
    ));
    while progress.load(Ordering::SeqCst) < 150 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    nodes[1].child.start_kill().expect("SIGKILL node 2");
    let killed_at = Instant::now();
    let acked_a = s1.await.unwrap();
    let acked_b = s2.await.unwrap();
    assert_eq!((acked_a.len(), acked_b.len()), (300, 100));

    // Every client ends with every acknowledged message, once, in order.
    let deadline = Instant::now() + Duration::from_secs(30);
    for (i, (seen, _)) in receivers.iter().enumerate() {
        loop {
            let done = {
                let s = seen.lock().await;
                s.by_channel.get(&a).map_or(0, Vec::len) >= 300
                    && s.by_channel.get(&b).map_or(0, Vec::len) >= 100
            };
            if done || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let s = seen.lock().await;
        for (ch, acked) in [(&a, &acked_a), (&b, &acked_b)] {
            let got = s.by_channel.get(ch).cloned().unwrap_or_default();
            let mut want = acked.clone();
            want.sort_by_key(|id| id.parse::<i64>().unwrap());
            assert_eq!(
                got, want,
                "client {i}: channel {ch}: every acked message once, in ID order"
            );
        }
        if i < 2 {
            assert_eq!(
                (s.resumed, s.reidentified),
                (1, 0),
                "client {i} resumed on node 3 after node 2 died"
            );
        }
    }

    // The dead node's users go offline for everyone within 30 s.
    let on3 = &receivers[2].0;
    loop {
        let offline = on3
            .lock()
            .await
            .presence
            .get(&ghost.id)
            .is_some_and(|(st, _)| st == "offline");
        if offline {
            eprintln!("dead node's user offline after {:?}", killed_at.elapsed());
            break;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(30),
            "the dead node's user is still online after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        on3.lock()
            .await
            .presence
            .get(&members[0].id)
            .is_some_and(|(st, _)| st == "online"),
        "a client that resumed elsewhere stays online"
    );
    drop(ghost_gw);

    // A permission change made on node 1 stops delivery on node 3.
    let (mut watcher, _) = Gw::identify(&n3, &members[0]).await;
    n1.put(
        &format!("/api/v1/channels/{a}/overwrites/{cid}"),
        &owner.token,
        Some(json!({"target_type": "role", "deny": ["VIEW_CHANNEL"]})),
    )
    .await;
    assert_eq!(watcher.expect("CHANNEL_DELETE").await["id"], a.as_str());
    n1.send(&owner, &a, "hidden now").await;
    let visible = n1.send(&owner, &b, "still visible").await;
    assert_eq!(watcher.expect("MESSAGE_CREATE").await["id"], visible["id"]);

    stop.notify_waiters();
    for (_, t) in receivers {
        t.abort();
    }
    drop(watcher);
    for mut n in nodes {
        let _ = n.child.kill().await;
    }
    drop_log(&root).await;
    hearth_store::testing::drop_database(&admin, &db)
        .await
        .expect("drop");
}

/// Three nodes started at the same instant on a new, empty database with no
/// configured secret: every one migrates (under the lock) and becomes ready,
/// and they share the signing key the first of them stored, so a token from
/// one works on the others; a token signed before `rotate-signing-key` still
/// works after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_cluster_starts_and_shares_its_signing_keys() {
    let admin = hearth_store::testing::admin_url();
    let db = format!(
        "hearth_fresh_{}_{}",
        std::process::id(),
        rand::random::<u32>()
    );
    let url = hearth_store::testing::create_database(&admin, &db)
        .await
        .expect("Postgres must be running");
    let root = format!("f{}", rand::random::<u32>());
    let mut nodes: Vec<Node> = (0..3).map(|_| start(&url, &root, None)).collect();
    let waits = nodes.iter_mut().map(ready);
    futures::future::join_all(waits).await;
    let apis: Vec<Arc<TestServer>> = nodes.iter().map(|n| n.api.clone()).collect();

    let ada = apis[0].register("fresh_ada").await;
    for (i, api) in apis.iter().enumerate() {
        let (st, me) = api.get("/api/v1/users/@me", &ada.token).await;
        assert_eq!(
            st,
            StatusCode::OK,
            "node {}: a token from node 1: {me}",
            i + 1
        );
        assert_eq!(me["id"], ada.id.as_str());
    }

    assert_eq!(kid_of(&ada.token), "k1", "the first database key signs");

    // Rotation: the new key signs once every node has loaded it, and tokens
    // signed before it keep working everywhere.
    let out = crate::cli::hearth()
        .env("DATABASE_URL", &url)
        .args(["admin", "rotate-signing-key"])
        .output()
        .expect("run hearth admin rotate-signing-key");
    assert!(
        out.status.success(),
        "rotate-signing-key: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("k2"), "names the new key: {said}");
    let rotated = Instant::now();
    let fresh = loop {
        let (st, v) = apis[1]
            .call(
                reqwest::Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"login": "fresh_ada", "password": "correct horse battery"})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let token = v["access_token"].as_str().unwrap().to_string();
        if kid_of(&token) == "k2" {
            break token;
        }
        assert!(
            rotated.elapsed() < Duration::from_secs(60),
            "node 2 still signs with {} a minute after the rotation",
            kid_of(&token)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!("the new key signs {:?} after rotation", rotated.elapsed());
    for (i, api) in apis.iter().enumerate() {
        for (which, token) in [("before", &ada.token), ("after", &fresh)] {
            let (st, me) = api.get("/api/v1/users/@me", token).await;
            assert_eq!(
                st,
                StatusCode::OK,
                "node {}: a token signed {which} the rotation: {me}",
                i + 1
            );
        }
    }

    for mut n in nodes {
        let _ = n.child.kill().await;
    }
    drop_log(&root).await;
    hearth_store::testing::drop_database(&admin, &db)
        .await
        .expect("drop");
}

/// The `kid` in a JWT's header.
fn kid_of(token: &str) -> String {
    use base64::Engine;
    let head = token.split('.').next().unwrap();
    let head: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(head)
            .unwrap(),
    )
    .unwrap();
    head["kid"].as_str().unwrap_or("").to_string()
}
