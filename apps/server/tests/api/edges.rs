//! Contract edges the other suites did not prove: revocation reaching a
//! socket on another node while the user's other session stays; each way of
//! losing access (ban, role removal, a role edit) stopping MESSAGE_CREATE,
//! proved with a marker that must arrive rather than a sleep; and a resume
//! past the window ending, after `invalid_session`, with exactly the
//! acknowledged messages from `messages?after=`.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::cluster::{drop_log, nats_url, redis_url};
use crate::gateway::{Got, Gw};
use crate::{Db, TestServer, User};

/// Two nodes on one fresh Postgres database, NATS and Redis.
struct Pair {
    a: TestServer,
    b: TestServer,
    admin: String,
    db: String,
    root: String,
}

impl Pair {
    async fn start() -> Pair {
        let admin = hearth_store::testing::admin_url();
        let db = format!(
            "hearth_edges_{}_{}",
            std::process::id(),
            rand::random::<u32>()
        );
        let url = hearth_store::testing::create_database(&admin, &db)
            .await
            .expect("Postgres must be running");
        let root = format!("e{}", rand::random::<u32>());
        let node = |url: String, root: String| {
            TestServer::start_with(Db::Shared(url), move |c| {
                c.nats_url = nats_url();
                c.redis_url = hearth_server::config::Secret(redis_url());
                c.nats_subject_root = root;
                c.rate_limit.enabled = false;
                c.jwt_secret = hearth_server::config::Secret(
                    "a shared secret for both nodes of this test".into(),
                );
            })
        };
        let a = node(url.clone(), root.clone()).await;
        let b = node(url, root.clone()).await;
        Pair {
            a,
            b,
            admin,
            db,
            root,
        }
    }

    async fn stop(self) {
        self.a.stop().await;
        self.b.stop().await;
        drop_log(&self.root).await;
        let _ = hearth_store::testing::drop_database(&self.admin, &self.db).await;
    }
}

async fn login(s: &TestServer, name: &str) -> User {
    let (st, v) = s
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"login": name, "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    User {
        id: v["user"]["id"].as_str().unwrap().into(),
        token: v["access_token"].as_str().unwrap().into(),
        refresh: v["refresh_token"].as_str().unwrap().into(),
    }
}

async fn still_open(gw: &mut Gw) {
    gw.send(json!({"op": "heartbeat", "d": {"s": gw.last_s}}))
        .await;
    loop {
        match gw.next(Duration::from_secs(3)).await {
            Got::Frame(f) if f["op"] == "heartbeat_ack" => return,
            Got::Frame(_) => continue,
            other => panic!(
                "the other session's socket closed: {}",
                matches!(other, Got::Nothing)
            ),
        }
    }
}

/// `DELETE /auth/sessions/{id}` and a reused refresh token, each done on
/// node A, close that session's socket on node B with 4010 within 1 s; the
/// user's other session stays open.
pub async fn revocation_reaches_other_nodes() {
    let p = Pair::start().await;
    let first = p.a.register("twice").await;
    let second = login(&p.a, "twice").await;
    let third = login(&p.a, "twice").await;
    let (mut gw1, _) = Gw::identify(&p.b, &first).await;
    let (mut gw2, _) = Gw::identify(&p.b, &second).await;
    let (mut gw3, _) = Gw::identify(&p.b, &third).await;

    // The first session is signed out from the second, on the other node.
    let (_, me1) = p.a.get("/api/v1/auth/sessions", &first.token).await;
    let sid = me1
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let started = Instant::now();
    let (st, v) =
        p.a.delete(&format!("/api/v1/auth/sessions/{sid}"), &second.token)
            .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    assert_eq!(gw1.closed_with(Duration::from_secs(3)).await, 4010);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    still_open(&mut gw2).await;
    still_open(&mut gw3).await;

    // The third session's refresh token, reused on node A: its socket on
    // node B closes; the second session stays.
    let (st, _) =
        p.a.call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": third.refresh})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let started = Instant::now();
    let (st, _) =
        p.a.call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": third.refresh})),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(gw3.closed_with(Duration::from_secs(3)).await, 4010);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    still_open(&mut gw2).await;
    let (st, _) = p.b.get("/api/v1/users/@me", &second.token).await;
    assert_eq!(st, StatusCode::OK);
    p.stop().await;
}

/// Reads frames until the MESSAGE_CREATE with `marker_id`; returns every
/// MESSAGE_CREATE id seen before it.
async fn until_marker(gw: &mut Gw, marker_id: &Value) -> Vec<String> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < deadline, "the marker never arrived");
        match gw.next(Duration::from_millis(500)).await {
            Got::Frame(f) if f["t"] == "MESSAGE_CREATE" => {
                if f["d"]["id"] == *marker_id {
                    return seen;
                }
                seen.push(f["d"]["id"].as_str().unwrap().to_string());
            }
            Got::Closed(c) => panic!("closed with {c}"),
            _ => {}
        }
    }
}

async fn put(s: &TestServer, path: &str, token: &str, body: Option<Value>) {
    let (st, v) = s.put(path, token, body).await;
    assert!(st.is_success(), "{path}: {st} {v}");
}

/// Ban, role removal and a role edit that drops VIEW_CHANNEL each stop
/// MESSAGE_CREATE at once, on the other node: the message sent right after
/// the change never arrives, and a DM marker sent after it does.
pub async fn losing_access_stops_message_create() {
    let p = Pair::start().await;
    let owner = p.a.register("boss").await;
    let (c, general) = p.a.community(&owner, "Access").await;
    let m = p.a.register("member").await;
    p.a.join(&owner, &c, &m).await;
    let (st, dm) =
        p.a.post("/api/v1/dms", &owner.token, json!({"user_ids": [m.id]}))
            .await;
    assert!(st.is_success(), "{dm}");
    let dm = dm["id"].as_str().unwrap().to_string();
    let (mut gw, _) = Gw::identify(&p.b, &m).await;
    let mk = |name: &str, perms: Value, pos: i32| {
        let (c, owner) = (c.clone(), owner.token.clone());
        let name = name.to_string();
        let s = &p.a;
        async move {
            let (st, r) = s
                .post(
                    &format!("/api/v1/communities/{c}/roles"),
                    &owner,
                    json!({"name": name, "permissions": perms, "position": pos}),
                )
                .await;
            assert!(st.is_success(), "{r}");
            r["id"].as_str().unwrap().to_string()
        }
    };
    // A private channel the member sees only through role `insider`.
    let (_, secret) =
        p.a.post(
            &format!("/api/v1/communities/{c}/channels"),
            &owner.token,
            json!({"name": "insiders"}),
        )
        .await;
    let secret = secret["id"].as_str().unwrap().to_string();
    let insider = mk("insider", json!([]), 2).await;
    put(
        &p.a,
        &format!("/api/v1/channels/{secret}/overwrites/{c}"),
        &owner.token,
        Some(json!({"target_type": "role", "allow": [], "deny": ["VIEW_CHANNEL"]})),
    )
    .await;
    put(
        &p.a,
        &format!("/api/v1/channels/{secret}/overwrites/{insider}"),
        &owner.token,
        Some(json!({"target_type": "role", "allow": ["VIEW_CHANNEL"], "deny": []})),
    )
    .await;
    put(
        &p.a,
        &format!("/api/v1/communities/{c}/members/{}/roles/{insider}", m.id),
        &owner.token,
        None,
    )
    .await;

    // Sanity: the member gets the private channel's messages now.
    let seen = p.a.send(&owner, &secret, "for insiders").await;
    let marker = p.a.send(&owner, &dm, "marker 0").await;
    let got = until_marker(&mut gw, &marker["id"]).await;
    assert!(
        got.contains(&seen["id"].as_str().unwrap().to_string()),
        "{got:?}"
    );

    // 1. Role removal.
    let (st, _) =
        p.a.delete(
            &format!("/api/v1/communities/{c}/members/{}/roles/{insider}", m.id),
            &owner.token,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let hidden = p.a.send(&owner, &secret, "after role removal").await;
    let marker = p.a.send(&owner, &dm, "marker 1").await;
    let got = until_marker(&mut gw, &marker["id"]).await;
    assert!(
        !got.contains(&hidden["id"].as_str().unwrap().to_string()),
        "role removal: {got:?}"
    );

    // 2. A role edit that drops VIEW_CHANNEL: `@everyone` loses it, the
    // `viewer` role carries it, then the viewer role is edited.
    let viewer = mk(
        "viewer",
        json!(["VIEW_CHANNEL", "READ_MESSAGE_HISTORY", "SEND_MESSAGES"]),
        3,
    )
    .await;
    put(
        &p.a,
        &format!("/api/v1/communities/{c}/members/{}/roles/{viewer}", m.id),
        &owner.token,
        None,
    )
    .await;
    let (st, v) =
        p.a.patch(
            &format!("/api/v1/communities/{c}/roles/{c}"),
            &owner.token,
            json!({"permissions": ["SEND_MESSAGES", "READ_MESSAGE_HISTORY", "ADD_REACTIONS"]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let visible =
        p.a.send(&owner, &general, "still visible through viewer")
            .await;
    let marker = p.a.send(&owner, &dm, "marker 2a").await;
    let got = until_marker(&mut gw, &marker["id"]).await;
    assert!(
        got.contains(&visible["id"].as_str().unwrap().to_string()),
        "{got:?}"
    );
    let (st, v) =
        p.a.patch(
            &format!("/api/v1/communities/{c}/roles/{viewer}"),
            &owner.token,
            json!({"permissions": ["READ_MESSAGE_HISTORY", "SEND_MESSAGES"]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let hidden = p.a.send(&owner, &general, "after the role edit").await;
    let marker = p.a.send(&owner, &dm, "marker 2b").await;
    let got = until_marker(&mut gw, &marker["id"]).await;
    assert!(
        !got.contains(&hidden["id"].as_str().unwrap().to_string()),
        "role edit: {got:?}"
    );

    // 3. Ban (VIEW_CHANNEL back for everyone first, so only the ban hides).
    let (st, _) =
        p.a.patch(
            &format!("/api/v1/communities/{c}/roles/{c}"),
            &owner.token,
            json!({"permissions": ["VIEW_CHANNEL", "SEND_MESSAGES", "READ_MESSAGE_HISTORY"]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let visible = p.a.send(&owner, &general, "visible again").await;
    let marker = p.a.send(&owner, &dm, "marker 3a").await;
    let got = until_marker(&mut gw, &marker["id"]).await;
    assert!(
        got.contains(&visible["id"].as_str().unwrap().to_string()),
        "{got:?}"
    );
    put(
        &p.a,
        &format!("/api/v1/communities/{c}/bans/{}", m.id),
        &owner.token,
        Some(json!({})),
    )
    .await;
    let hidden = p.a.send(&owner, &general, "after the ban").await;
    let marker = p.a.send(&owner, &dm, "marker 3b").await;
    let got = until_marker(&mut gw, &marker["id"]).await;
    assert!(
        !got.contains(&hidden["id"].as_str().unwrap().to_string()),
        "ban: {got:?}"
    );
    p.stop().await;
}

/// A resume past the window answers `invalid_session`; identifying again
/// and reading `messages?after=<last seen>` returns exactly the messages
/// the server answered 201 for while the client was away.
pub async fn resume_past_the_window(s: &TestServer) {
    let u = s.register("away").await;
    let (_, general) = s.community(&u, "Window").await;
    let (mut gw, ready) = Gw::identify(s, &u).await;
    let session = ready["session_id"].as_str().unwrap().to_string();
    let seen = s.send(&u, &general, "seen live").await;
    let got = loop {
        let f = gw.expect("MESSAGE_CREATE").await;
        if f["id"] == seen["id"] {
            break f;
        }
    };
    let last_s = gw.last_s;
    drop(gw);
    // More than the session keeps for a local resume (REPLAY_FRAMES, 2048),
    // sent concurrently; each answered 201.
    let mut tasks = Vec::new();
    for t in 0..16 {
        let (http, base, token, general) = (
            s.http.clone(),
            s.base.clone(),
            u.token.clone(),
            general.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..135 {
                let r = http
                    .post(format!("{base}/api/v1/channels/{general}/messages"))
                    .bearer_auth(&token)
                    .json(&json!({"content": format!("while away {t}/{i}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::CREATED);
                let m: Value = r.json().await.unwrap();
                ids.push(m["id"].as_str().unwrap().parse::<i64>().unwrap());
            }
            ids
        }));
    }
    let mut acknowledged = Vec::new();
    for t in tasks {
        acknowledged.extend(t.await.unwrap());
    }
    acknowledged.sort();
    let acknowledged: Vec<String> = acknowledged.iter().map(i64::to_string).collect();
    let (mut again, resumed) = Gw::resume(s, &u, &session, last_s).await;
    assert!(resumed.is_err(), "past the window: invalid_session");
    again
        .send(json!({"op": "identify", "d": {"token": u.token}}))
        .await;
    again.expect("READY").await;
    let mut fetched: Vec<String> = Vec::new();
    let mut after = got["id"].as_str().unwrap().to_string();
    loop {
        let (st, page) = s
            .get(
                &format!("/api/v1/channels/{general}/messages?after={after}&limit=100"),
                &u.token,
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        let ids: Vec<String> = page
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect();
        let Some(last) = ids.last().cloned() else {
            break;
        };
        fetched.extend(ids);
        after = last;
    }
    assert_eq!(
        fetched, acknowledged,
        "exactly the acknowledged set, oldest first"
    );
}
