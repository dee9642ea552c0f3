//! Message search through real HTTP: what is found and how fast, filters,
//! edits and deletes, the permission scope, DMs, bad input, and an index
//! that resumes from the log after a restart.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{Db, TestServer, User, assert_error};

/// How long a sent message may take to become searchable.
const FRESH: Duration = Duration::from_secs(1);

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn community_path(community: &str, q: &str, extra: &str) -> String {
    format!(
        "/api/v1/communities/{community}/messages/search?q={}{extra}",
        enc(q)
    )
}

fn dm_path(q: &str) -> String {
    format!("/api/v1/dms/messages/search?q={}", enc(q))
}

async fn search(s: &TestServer, who: &User, path: &str) -> Value {
    let (st, v) = s.get(path, &who.token).await;
    assert_eq!(st, StatusCode::OK, "{path}: {v}");
    v
}

/// Polls `path` until `done` holds, asserting it happens within [`FRESH`]
/// of `since`.
async fn eventually(
    s: &TestServer,
    who: &User,
    path: &str,
    since: Instant,
    done: impl Fn(&Value) -> bool,
) -> Value {
    loop {
        let v = search(s, who, path).await;
        if done(&v) {
            let took = since.elapsed();
            assert!(took < FRESH, "{path}: searchable after {took:?}");
            return v;
        }
        assert!(
            since.elapsed() < FRESH,
            "{path}: not there after {FRESH:?}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn contents(v: &Value) -> Vec<String> {
    v["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["content"].as_str().expect("content").to_string())
        .collect()
}

fn total(v: &Value) -> u64 {
    v["total"].as_u64().expect("total")
}

async fn channel(s: &TestServer, owner: &User, community: &str, name: &str) -> String {
    let (st, c) = s
        .post(
            &format!("/api/v1/communities/{community}/channels"),
            &owner.token,
            json!({"name": name}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{c}");
    c["id"].as_str().expect("id").to_string()
}

pub async fn finds_and_filters(s: &TestServer) {
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let (cid, general) = s.community(&alice, "Search").await;
    s.join(&alice, &cid, &bob).await;
    let random = channel(s, &alice, &cid, "random").await;

    let t = Instant::now();
    let fox = s
        .send(&alice, &general, "The quick brown fox jumps <over>")
        .await;
    let v = eventually(s, &alice, &community_path(&cid, "fox", ""), t, |v| {
        total(v) == 1
    })
    .await;
    let hit = &v["messages"][0];
    assert_eq!(hit["id"], fox["id"]);
    assert_eq!(hit["author"]["username"], "alice");
    assert!(hit["reactions"].is_array(), "the message shape: {hit}");
    assert_eq!(
        hit["highlight"],
        "The quick brown <mark>fox</mark> jumps &lt;over&gt;"
    );
    assert!(v["next_cursor"].is_null());

    let t = Instant::now();
    s.send(&bob, &random, "lazy dog sleeps at https://example.org/dog")
        .await;
    let last = s.send(&alice, &random, "quickly now, everyone").await;
    eventually(s, &alice, &community_path(&cid, "quic*", ""), t, |v| {
        total(v) == 2
    })
    .await;

    let q = |q: &'static str| community_path(&cid, q, "");
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("\"quick brown\"", vec!["The quick brown fox jumps <over>"]),
        ("\"brown quick\"", vec![]),
        (
            "from:@bob",
            vec!["lazy dog sleeps at https://example.org/dog"],
        ),
        (
            "dog from:bob",
            vec!["lazy dog sleeps at https://example.org/dog"],
        ),
        ("fox from:@bob", vec![]),
        (
            "in:#random",
            vec![
                "quickly now, everyone",
                "lazy dog sleeps at https://example.org/dog",
            ],
        ),
        ("fox in:#random", vec![]),
        (
            "has:link",
            vec!["lazy dog sleeps at https://example.org/dog"],
        ),
        ("fox -jumps", vec![]),
        ("before:2000-01-01", vec![]),
        (
            "fox after:2000-01-01",
            vec!["The quick brown fox jumps <over>"],
        ),
        (
            "fox before:2999-01-01",
            vec!["The quick brown fox jumps <over>"],
        ),
    ];
    for (query, want) in cases {
        let v = search(s, &alice, &format!("{}&sort=newest", q(query))).await;
        assert_eq!(contents(&v), want, "{query}");
        assert_eq!(total(&v), want.len() as u64, "{query}");
    }

    // Pages in date order.
    let v = search(
        s,
        &alice,
        &community_path(&cid, "in:#random", "&sort=oldest&limit=1"),
    )
    .await;
    assert_eq!(total(&v), 2);
    assert_eq!(contents(&v), ["lazy dog sleeps at https://example.org/dog"]);
    let cursor = v["next_cursor"].as_str().expect("a next page").to_string();
    let v = search(
        s,
        &alice,
        &community_path(
            &cid,
            "in:#random",
            &format!("&sort=oldest&limit=1&cursor={cursor}"),
        ),
    )
    .await;
    assert_eq!(contents(&v), ["quickly now, everyone"]);

    // An edit replaces the old text.
    let fox_id = fox["id"].as_str().unwrap();
    let t = Instant::now();
    let (st, _) = s
        .patch(
            &format!("/api/v1/channels/{general}/messages/{fox_id}"),
            &alice.token,
            json!({"content": "the slow red fox"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    eventually(s, &alice, &q("slow"), t, |v| total(v) == 1).await;
    let v = search(s, &alice, &q("brown")).await;
    assert_eq!(total(&v), 0, "{v}");

    // A delete disappears at once (and from the total).
    let last_id = last["id"].as_str().unwrap();
    let (st, _) = s
        .delete(
            &format!("/api/v1/channels/{random}/messages/{last_id}"),
            &alice.token,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let v = search(s, &alice, &q("quickly")).await;
    assert_eq!((total(&v), contents(&v).len()), (0, 0), "{v}");
    let t = Instant::now();
    eventually(s, &alice, &q("in:#random"), t, |v| total(v) == 1).await;

    // The index's numbers are exported (refreshed every second).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = s.metrics().await;
        let value = |name: &str| text.value(name, &[]);
        assert!(value("hearth_search_lag_events").is_some(), "{text}");
        assert!(value("hearth_search_size_bytes").is_some(), "{text}");
        if value("hearth_search_docs") == Some(2.0) {
            break;
        }
        assert!(Instant::now() < deadline, "hearth_search_docs: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn scope_follows_permissions(s: &TestServer) {
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let (cid, general) = s.community(&alice, "Scoped").await;
    s.join(&alice, &cid, &bob).await;
    let secret = channel(s, &alice, &cid, "secret").await;
    let archive = channel(s, &alice, &cid, "archive").await;
    for (ch, deny) in [
        (&secret, "VIEW_CHANNEL"),
        (&archive, "READ_MESSAGE_HISTORY"),
    ] {
        let (st, v) = s
            .put(
                &format!("/api/v1/channels/{ch}/overwrites/{cid}"),
                &alice.token,
                Some(json!({"target_type": "role", "deny": [deny]})),
            )
            .await;
        assert!(st.is_success(), "{v}");
    }
    let t = Instant::now();
    for ch in [&general, &secret, &archive] {
        s.send(&alice, ch, "banana split").await;
    }
    // The owner sees all three.
    let path = community_path(&cid, "banana", "");
    eventually(s, &alice, &path, t, |v| total(v) == 3).await;
    // Bob only the one in #general: hits, total and highlights.
    for query in [
        "banana",
        "split",
        "banan*",
        "from:@alice",
        "\"banana split\"",
    ] {
        let v = search(s, &bob, &community_path(&cid, query, "")).await;
        assert_eq!(total(&v), 1, "{query}: {v}");
        let hits = v["messages"].as_array().unwrap();
        assert_eq!(hits.len(), 1, "{query}: {v}");
        assert_eq!(hits[0]["channel_id"], general.as_str(), "{query}: {v}");
    }
    // Channels he may not read are not names he can search in.
    for name in ["secret", "archive"] {
        let (st, v) = s
            .get(
                &community_path(&cid, &format!("banana in:#{name}"), ""),
                &bob.token,
            )
            .await;
        assert_error(st, &v, 400, "invalid_request");
    }
    // Nor by id.
    let v = search(
        s,
        &bob,
        &community_path(&cid, &format!("banana in:{secret}"), ""),
    )
    .await;
    assert_eq!(total(&v), 0, "{v}");
    // Granting access widens the scope at query time.
    let (st, _) = s
        .delete(
            &format!("/api/v1/channels/{archive}/overwrites/{cid}"),
            &alice.token,
        )
        .await;
    assert!(st.is_success());
    let v = search(s, &bob, &path).await;
    assert_eq!(total(&v), 2, "{v}");
    // Not a member: 404.
    let carol = s.register("carol").await;
    let (st, v) = s.get(&path, &carol.token).await;
    assert_error(st, &v, 404, "not_found");
}

pub async fn dm_search_is_the_callers(s: &TestServer) {
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let carol = s.register("carol").await;
    let (cid, general) = s.community(&alice, "Friends").await;
    s.join(&alice, &cid, &bob).await;
    s.join(&alice, &cid, &carol).await;
    let dm = |a: &User, b: &User| {
        let body = json!({"user_ids": [b.id]});
        let token = a.token.clone();
        async move {
            let (st, v) = s.post("/api/v1/dms", &token, body).await;
            assert_eq!(st, StatusCode::OK, "{v}");
            v["id"].as_str().unwrap().to_string()
        }
    };
    let ab = dm(&alice, &bob).await;
    let cb = dm(&carol, &bob).await;
    let t = Instant::now();
    s.send(&alice, &ab, "kiwi for bob from alice").await;
    s.send(&carol, &cb, "kiwi for bob from carol").await;
    s.send(&alice, &general, "kiwi in public").await;
    eventually(s, &bob, &dm_path("kiwi"), t, |v| total(v) == 2).await;
    let v = search(s, &alice, &dm_path("kiwi")).await;
    assert_eq!(contents(&v), ["kiwi for bob from alice"]);
    let v = search(s, &carol, &dm_path("kiwi")).await;
    assert_eq!(contents(&v), ["kiwi for bob from carol"]);
    let v = search(s, &bob, &dm_path("kiwi from:@carol")).await;
    assert_eq!(contents(&v), ["kiwi for bob from carol"]);
    // A DM is not in the community's results.
    let v = eventually(s, &bob, &community_path(&cid, "kiwi", ""), t, |v| {
        total(v) == 1
    })
    .await;
    assert_eq!(contents(&v), ["kiwi in public"]);
}

pub async fn bad_input_is_refused(s: &TestServer) {
    let alice = s.register("alice").await;
    let (cid, general) = s.community(&alice, "Strict").await;
    s.send(&alice, &general, "something").await;
    let long = "a".repeat(10_000);
    let cases: Vec<(String, &str, &str)> = vec![
        (community_path(&cid, "hello foo:bar", ""), "q", "foo:bar"),
        (
            community_path(&cid, "before:2024-13-45", ""),
            "q",
            "before:2024-13-45",
        ),
        (community_path(&cid, &long, ""), "q", "1000"),
        (
            community_path(&cid, "hello", "&limit=1000000"),
            "limit",
            "1000000",
        ),
        (community_path(&cid, "hello", "&limit=0"), "limit", "limit"),
        (community_path(&cid, "hello", "&limit=x"), "limit", "limit"),
        (
            community_path(&cid, "hello", "&sort=sideways"),
            "sort",
            "sideways",
        ),
        (
            community_path(&cid, "hello", "&cursor=zz"),
            "cursor",
            "cursor",
        ),
        (community_path(&cid, "from:@nobody", ""), "q", "nobody"),
        (community_path(&cid, "", ""), "q", "q"),
        (
            format!("/api/v1/communities/{cid}/messages/search"),
            "q",
            "q",
        ),
        (dm_path("x*"), "q", "x*"),
        (dm_path("during:yesterday"), "q", "during:yesterday"),
    ];
    for (path, field, names) in cases {
        let t = Instant::now();
        let (st, v) = s.get(&path, &alice.token).await;
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{path} took {:?}",
            t.elapsed()
        );
        assert_error(st, &v, 400, "invalid_request");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(&format!("{field}:")), "{path}: {v}");
        assert!(
            message.contains(names),
            "{path}: {message} should name {names}"
        );
        assert!(v["error"]["details"]["fields"][field].is_string(), "{v}");
    }
    let (st, v) = s
        .get(&community_path("12345", "hello", ""), &alice.token)
        .await;
    assert_error(st, &v, 404, "not_found");
    let (st, _) = s
        .call(
            reqwest::Method::GET,
            &community_path(&cid, "hello", ""),
            None,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

/// A server on a data directory and database that outlive it.
struct Node {
    task: tokio::task::JoinHandle<()>,
    stop: tokio::sync::oneshot::Sender<()>,
    addr: std::net::SocketAddr,
}

async fn start_node(cfg: hearth_server::config::Config) -> Node {
    let server = hearth_server::app::build(cfg).await.expect("server builds");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .serve(listener, async move {
                let _ = rx.await;
            })
            .await
            .expect("serve");
    });
    Node { task, stop, addr }
}

impl Node {
    fn client(&self) -> TestServer {
        TestServer::external(self.addr)
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Stop the server, send while another node (search off) runs on the same
/// database, start the first again: the index resumes from its log
/// position and finds what was sent while it was down, and what it had.
pub async fn restart_resumes(db: Db) {
    let (_dir, cfg, pg) = node_config(db).await;
    let node = start_node(cfg.clone()).await;
    let s = node.client();
    let alice = s.register("alice").await;
    let (cid, general) = s.community(&alice, "Durable").await;
    let t = Instant::now();
    s.send(&alice, &general, "before the restart").await;
    eventually(&s, &alice, &community_path(&cid, "before", ""), t, |v| {
        total(v) == 1
    })
    .await;
    node.stop().await;

    let mut quiet = cfg.clone();
    quiet.search_enabled = false;
    let other = start_node(quiet).await;
    let s = other.client();
    s.send(&alice, &general, "the one sent while it was down")
        .await;
    let (st, v) = s.get(&community_path(&cid, "down", ""), &alice.token).await;
    assert_error(st, &v, 503, "unavailable");
    other.stop().await;

    let node = start_node(cfg).await;
    let s = node.client();
    let t = Instant::now();
    let v = eventually(
        &s,
        &alice,
        &community_path(&cid, "the", "&sort=oldest"),
        t,
        |v| total(v) == 2,
    )
    .await;
    assert_eq!(
        contents(&v),
        ["before the restart", "the one sent while it was down"]
    );
    node.stop().await;
    drop_database(pg).await;
}

/// A wiped index is rebuilt from the database at start, and what is sent
/// meanwhile is found too.
pub async fn wiped_index_is_rebuilt(db: Db) {
    let (dir, cfg, pg) = node_config(db).await;
    let node = start_node(cfg.clone()).await;
    let s = node.client();
    let alice = s.register("alice").await;
    let (cid, general) = s.community(&alice, "Rebuilt").await;
    for i in 0..30 {
        s.send(&alice, &general, &format!("mango number {i}")).await;
    }
    let t = Instant::now();
    eventually(&s, &alice, &community_path(&cid, "mango", ""), t, |v| {
        total(v) == 30
    })
    .await;
    node.stop().await;
    std::fs::remove_dir_all(dir.path().join("search")).expect("wipe the index");

    let node = start_node(cfg).await;
    let s = node.client();
    s.send(&alice, &general, "mango after the wipe").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = search(&s, &alice, &community_path(&cid, "mango", "")).await;
        if total(&v) == 31 {
            break;
        }
        assert!(Instant::now() < deadline, "not rebuilt: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    node.stop().await;
    drop_database(pg).await;
}

/// `hearth search reindex` on a stopped node's data directory rebuilds the
/// index from the database; the node then starts with it as it is.
pub async fn reindex_command(db: Db) {
    let (dir, cfg, pg) = node_config(db).await;
    let node = start_node(cfg.clone()).await;
    let s = node.client();
    let alice = s.register("alice").await;
    let (cid, general) = s.community(&alice, "Reindexed").await;
    for i in 0..3 {
        s.send(&alice, &general, &format!("papaya {i}")).await;
    }
    let t = Instant::now();
    eventually(&s, &alice, &community_path(&cid, "papaya", ""), t, |v| {
        total(v) == 3
    })
    .await;
    node.stop().await;

    let mut cmd = crate::cli::hearth();
    cmd.arg("--data-dir")
        .arg(dir.path())
        .args(["search", "reindex"]);
    if !cfg.database_url.0.is_empty() {
        cmd.env("HEARTH_DATABASE_URL", &cfg.database_url.0);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run hearth"))
        .await
        .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("reindexed 3 messages"), "{stdout}");

    let node = start_node(cfg).await;
    let s = node.client();
    let v = search(&s, &alice, &community_path(&cid, "papaya", "")).await;
    assert_eq!(total(&v), 3, "{v}");
    node.stop().await;
    drop_database(pg).await;
}

/// A data directory and configuration a node can be restarted on, with a
/// fresh Postgres database for `Db::Postgres` (dropped by [`drop_database`]).
async fn node_config(
    db: Db,
) -> (
    tempfile::TempDir,
    hearth_server::config::Config,
    Option<(String, String)>,
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = crate::test_config(dir.path());
    let mut pg = None;
    if let Db::Postgres = db {
        let admin = hearth_store::testing::admin_url();
        let name = format!(
            "hearth_api_search_{}_{}",
            std::process::id(),
            rand::random::<u32>()
        );
        let url = hearth_store::testing::create_database(&admin, &name)
            .await
            .expect("Postgres for the API tests");
        cfg.database_url = hearth_server::config::Secret(url);
        pg = Some((admin, name));
    }
    (dir, cfg, pg)
}

async fn drop_database(pg: Option<(String, String)>) {
    if let Some((admin, name)) = pg {
        hearth_store::testing::drop_database(&admin, &name)
            .await
            .expect("drop test database");
    }
}

/// Jumping to a result: `messages?around=` centres a page on the message,
/// newest first, with the message in the older half; it never mixes with
/// `before`/`after` and obeys READ_MESSAGE_HISTORY like any page.
pub async fn around_centres_a_page(s: &TestServer) {
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let (cid, general) = s.community(&alice, "Around").await;
    s.join(&alice, &cid, &bob).await;
    let mut ids = Vec::new();
    for i in 0..30 {
        let m = s.send(&alice, &general, &format!("message {i}")).await;
        ids.push(m["id"].as_str().unwrap().to_string());
    }
    let page = |v: &Value| -> Vec<String> {
        v.as_array()
            .expect("an array")
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    let base = format!("/api/v1/channels/{general}/messages");
    // 10 around #12: #16..#12 newer half would be 5 (13..17), older 5 (8..12).
    let (st, v) = s
        .get(&format!("{base}?around={}&limit=10", ids[12]), &bob.token)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let want: Vec<String> = (8..=17).rev().map(|i| ids[i].clone()).collect();
    assert_eq!(page(&v), want);
    // Near the newest end the newer half is short; nothing is invented.
    let (_, v) = s
        .get(&format!("{base}?around={}&limit=10", ids[28]), &bob.token)
        .await;
    let want: Vec<String> = (24..=29).rev().map(|i| ids[i].clone()).collect();
    assert_eq!(page(&v), want);
    // The default limit (50): #0 is the whole older half, 25 newer follow.
    let (_, v) = s
        .get(&format!("{base}?around={}", ids[0]), &bob.token)
        .await;
    let want: Vec<String> = (0..=25).rev().map(|i| ids[i].clone()).collect();
    assert_eq!(page(&v), want);
    // A deleted target still centres the page.
    let (st, _) = s.delete(&format!("{base}/{}", ids[12]), &alice.token).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, v) = s
        .get(&format!("{base}?around={}&limit=4", ids[12]), &bob.token)
        .await;
    let want: Vec<String> = [14, 13, 11, 10].iter().map(|&i| ids[i].clone()).collect();
    assert_eq!(page(&v), want);

    for bad in [
        format!("{base}?around={}&before={}", ids[3], ids[5]),
        format!("{base}?around={}&after={}", ids[3], ids[1]),
        format!("{base}?around=abc"),
        format!("{base}?around={}&limit=0", ids[3]),
    ] {
        let (st, v) = s.get(&bad, &bob.token).await;
        assert_error(st, &v, 400, "invalid_request");
    }
    // Without READ_MESSAGE_HISTORY there is no page around anything.
    let (st, v) = s
        .put(
            &format!("/api/v1/channels/{general}/overwrites/{cid}"),
            &alice.token,
            Some(json!({"target_type": "role", "allow": [], "deny": ["READ_MESSAGE_HISTORY"]})),
        )
        .await;
    assert!(st.is_success(), "{v}");
    let (st, v) = s
        .get(&format!("{base}?around={}&limit=4", ids[3]), &bob.token)
        .await;
    assert_error(st, &v, 403, "forbidden");
}
