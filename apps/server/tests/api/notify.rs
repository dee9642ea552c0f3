//! Notifications (issue #13): who is told about what under their settings,
//! the inbox and its dispatches, Web Push against a real push service
//! (`scripts/push.sh`: a sink that checks the VAPID signature and decrypts
//! the payload with http-ece), and the email digest through the real SMTP
//! sink. Each fails, never skips, when its sink is not running.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::gateway::Gw;
use crate::{TestServer, User, assert_error};

/// Waits until the user's inbox holds `n` notifications; returns the page.
async fn inbox(s: &TestServer, u: &User, n: usize) -> Value {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let (st, v) = s.get("/api/v1/notifications", &u.token).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let got = v["notifications"].as_array().expect("list").len();
        if got >= n {
            assert_eq!(got, n, "exactly {n}: {v}");
            return v;
        }
        assert!(
            Instant::now() < until,
            "{n} notification(s) within 10 s: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The inbox after the consumer has surely handled everything sent so far:
/// a marker DM (always notified) is waited for, then dropped from the page.
async fn settled(s: &TestServer, from: &User, to: &User, dm: &str, expect: usize) -> Value {
    let marker = s.send(from, dm, "marker").await;
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, v) = s.get("/api/v1/notifications?limit=100", &to.token).await;
        let list = v["notifications"].as_array().expect("list").clone();
        if list.iter().any(|n| n["message"]["id"] == marker["id"]) {
            let rest: Vec<Value> = list
                .into_iter()
                .filter(|n| n["message"]["content"] != "marker")
                .collect();
            assert_eq!(rest.len(), expect, "{rest:?}");
            // Read the marker so counts stay about the scenario.
            let id = v["notifications"]
                .as_array()
                .expect("list")
                .iter()
                .find(|n| n["message"]["id"] == marker["id"])
                .expect("marker")["id"]
                .as_str()
                .expect("id")
                .to_string();
            let (st, _) = s
                .put(&format!("/api/v1/notifications/{id}/read"), &to.token, None)
                .await;
            assert_eq!(st, StatusCode::NO_CONTENT);
            return json!(rest);
        }
        assert!(Instant::now() < until, "the marker DM notified within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn dm(s: &TestServer, a: &User, b: &User) -> String {
    let (st, v) = s
        .post("/api/v1/dms", &a.token, json!({"user_ids": [b.id]}))
        .await;
    assert!(st.is_success(), "{v}");
    v["id"].as_str().expect("dm id").to_string()
}

pub async fn who_is_told_and_the_inbox(s: &TestServer) {
    let a = s.register("nann").await;
    let b = s.register("nbob").await;
    let c = s.register("ncat").await;
    let (community, general) = s.community(&a, "Notified").await;
    s.join(&a, &community, &b).await;
    s.join(&a, &community, &c).await;
    let a_b = dm(s, &a, &b).await;
    let a_c = dm(s, &a, &c).await;

    // A mention reaches b's open session and inbox, never the author.
    let (mut gw, ready) = Gw::identify(s, &b).await;
    assert_eq!(ready["notifications_unread"], 0, "{ready}");
    let m1 = s.send(&a, &general, &format!("hello <@{}>", b.id)).await;
    let d = gw.expect("NOTIFICATION_CREATE").await;
    assert_eq!(d["kind"], "mention");
    assert_eq!(d["message"]["id"], m1["id"]);
    assert_eq!(d["channel_id"], general);
    assert_eq!(d["community_id"], community);
    assert_eq!(d["unread_count"], 1);
    assert_eq!(d["read"], false);
    let page = inbox(s, &b, 1).await;
    assert_eq!(page["unread_count"], 1);
    assert_eq!(
        page["notifications"][0]["message"]["content"],
        m1["content"]
    );
    assert!(page["next_before"].is_null());
    assert!(
        settled(s, &b, &a, &a_b, 0)
            .await
            .as_array()
            .expect("list")
            .is_empty()
    );

    // A role mention; @everyone; a reply (one notification each, strongest reason).
    let (st, role) = s
        .post(
            &format!("/api/v1/communities/{community}/roles"),
            &a.token,
            json!({"name": "crew"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{role}");
    let role_id = role["id"].as_str().expect("role").to_string();
    let (st, v) = s
        .put(
            &format!(
                "/api/v1/communities/{community}/members/{}/roles/{role_id}",
                c.id
            ),
            &a.token,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    s.send(&a, &general, &format!("crew <@&{role_id}>")).await;
    s.send(&a, &general, "@everyone meeting").await;
    let mine = s.send(&c, &general, "my idea").await;
    let (st, v) = s
        .post(
            &format!("/api/v1/channels/{general}/messages"),
            &a.token,
            json!({"content": "good one", "reply_to_id": mine["id"]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let got = settled(s, &a, &c, &a_c, 3).await;
    let kinds: Vec<&str> = got
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["reply", "everyone", "role_mention"], "{got}");
    // b: the first mention, and @everyone.
    let got = settled(s, &a, &b, &a_b, 2).await;
    assert_eq!(got[0]["kind"], "everyone");

    // Settings: b silences the channel; c suppresses @everyone in the community.
    let (st, v) = s
        .put(
            &format!("/api/v1/users/@me/notification-settings/channels/{general}"),
            &b.token,
            Some(json!({"level": "nothing"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["level"], "nothing");
    let (st, v) = s
        .put(
            &format!("/api/v1/users/@me/notification-settings/communities/{community}"),
            &c.token,
            Some(json!({"suppress_everyone": true})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    s.send(&a, &general, &format!("<@{}> are you there", b.id))
        .await;
    s.send(&a, &general, "@everyone again").await;
    assert_eq!(
        settled(s, &a, &b, &a_b, 2).await.as_array().unwrap().len(),
        2
    );
    assert_eq!(
        settled(s, &a, &c, &a_c, 3).await.as_array().unwrap().len(),
        3
    );
    // Back to inheriting: mentions reach b again.
    let (st, _) = s
        .delete(
            &format!("/api/v1/users/@me/notification-settings/channels/{general}"),
            &b.token,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    s.send(&a, &general, &format!("<@{}> now?", b.id)).await;
    assert_eq!(
        settled(s, &a, &b, &a_b, 3).await.as_array().unwrap().len(),
        3
    );

    // A mute silences until it ends; `all` on a channel tells of every message.
    let soon = hearth_types::format_rfc3339(hearth_types::now_ms() + 3_600_000);
    let (st, v) = s
        .put(
            &format!("/api/v1/users/@me/notification-settings/communities/{community}"),
            &b.token,
            Some(json!({"muted_until": soon})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    s.send(&a, &general, &format!("<@{}> muted?", b.id)).await;
    assert_eq!(
        settled(s, &a, &b, &a_b, 3).await.as_array().unwrap().len(),
        3
    );
    let past = hearth_types::format_rfc3339(hearth_types::now_ms() - 1_000);
    s.put(
        &format!("/api/v1/users/@me/notification-settings/communities/{community}"),
        &b.token,
        Some(json!({"muted_until": past, "level": "all"})),
    )
    .await;
    s.send(&a, &general, "plain chatter").await;
    let got = settled(s, &a, &b, &a_b, 4).await;
    assert_eq!(got[0]["kind"], "message");
    let (_, set) = s
        .get("/api/v1/users/@me/notification-settings", &b.token)
        .await;
    assert_eq!(set["level"], "mentions", "{set}");
    assert_eq!(set["communities"][0]["community_id"], community);
    assert_eq!(set["communities"][0]["level"], "all");
    assert!(set["channels"].as_array().unwrap().is_empty(), "{set}");

    // Nobody is told of a channel they cannot see, nor by someone they blocked.
    let (st, hidden) = s
        .post(
            &format!("/api/v1/communities/{community}/channels"),
            &a.token,
            json!({"name": "staff"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{hidden}");
    let hidden = hidden["id"].as_str().unwrap().to_string();
    let (st, v) = s
        .put(
            &format!("/api/v1/channels/{hidden}/overwrites/{community}"),
            &a.token,
            Some(json!({"target_type": "role", "deny": ["VIEW_CHANNEL"]})),
        )
        .await;
    assert!(st.is_success(), "{v}");
    s.send(&a, &hidden, &format!("secret <@{}> <@{}>", b.id, c.id))
        .await;
    let (st, _) = s
        .put(
            &format!("/api/v1/users/@me/blocks/{}", a.id),
            &c.token,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    s.send(&a, &general, &format!("<@{}> hey", c.id)).await;
    assert_eq!(
        settled(s, &b, &c, &dm(s, &b, &c).await, 3)
            .await
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // b asked for every message of the community: "<@c> hey" too.
    assert_eq!(
        settled(s, &a, &b, &a_b, 5).await.as_array().unwrap().len(),
        5
    );

    // Reading: one, a channel up to a message, all; other sessions hear of it.
    let (_, page) = s.get("/api/v1/notifications?unread=true", &b.token).await;
    let unread = page["unread_count"].as_i64().unwrap();
    assert_eq!(unread, 5, "{page}");
    let first = page["notifications"][0]["id"].as_str().unwrap().to_string();
    let (st, _) = s
        .put(
            &format!("/api/v1/notifications/{first}/read"),
            &b.token,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    // (Earlier reads of the marker DMs were announced too.)
    loop {
        let d = gw.expect("NOTIFICATION_READ").await;
        if d["ids"] == json!([first]) {
            assert_eq!(d["unread_count"], 4);
            break;
        }
    }
    let (_, page) = s
        .get("/api/v1/notifications?unread=true&limit=1", &b.token)
        .await;
    assert_eq!(page["unread_count"], 4);
    assert_eq!(page["notifications"].as_array().unwrap().len(), 1);
    let next = page["next_before"]
        .as_str()
        .expect("more pages")
        .to_string();
    let (_, rest) = s
        .get(
            &format!("/api/v1/notifications?unread=true&before={next}"),
            &b.token,
        )
        .await;
    assert_eq!(rest["notifications"].as_array().unwrap().len(), 3, "{rest}");
    let (st, _) = s
        .put(
            &format!("/api/v1/channels/{general}/read"),
            &b.token,
            Some(json!({"message_id": m1["id"]})),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(gw.expect("NOTIFICATION_READ").await["unread_count"], 3);
    let (st, _) = s.put("/api/v1/notifications/read", &b.token, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let d = gw.expect("NOTIFICATION_READ").await;
    assert_eq!(
        (d["all"].clone(), d["unread_count"].clone()),
        (json!(true), json!(0))
    );
    let (_, ready) = Gw::identify(s, &b).await;
    assert_eq!(ready["notifications_unread"], 0);
    // A deleted message takes its notification along.
    let (_, before) = s.get("/api/v1/notifications?limit=100", &b.token).await;
    let n = before["notifications"].as_array().unwrap().len();
    let (st, _) = s
        .delete(
            &format!(
                "/api/v1/channels/{general}/messages/{}",
                m1["id"].as_str().unwrap()
            ),
            &a.token,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, after) = s.get("/api/v1/notifications?limit=100", &b.token).await;
    assert_eq!(after["notifications"].as_array().unwrap().len(), n - 1);

    // Bad input: a clear 400 or 404, never a 500.
    let (st, v) = s
        .patch(
            "/api/v1/users/@me/notification-settings",
            &b.token,
            json!({"level": "loud"}),
        )
        .await;
    assert_error(st, &v, 400, "invalid_request");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("level"),
        "{v}"
    );
    let (st, v) = s
        .patch(
            "/api/v1/users/@me/notification-settings",
            &b.token,
            json!({"push_previews": false, "email_digest": false}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        (v["push_previews"].clone(), v["email_digest"].clone()),
        (json!(false), json!(false))
    );
    for (path, body, code) in [
        (
            format!("communities/{community}"),
            json!({"muted_until": "tomorrow"}),
            400,
        ),
        (
            format!("communities/{community}"),
            json!({"muted_until": "2999-01-01T00:00:00Z"}),
            400,
        ),
        (
            format!("communities/{community}"),
            json!({"colour": "red"}),
            400,
        ),
        (
            "communities/123456789".to_string(),
            json!({"level": "all"}),
            404,
        ),
        ("communities/abc".to_string(), json!({"level": "all"}), 400),
        (format!("channels/{hidden}"), json!({"level": "all"}), 404),
        (
            format!("channels/{general}"),
            json!({"suppress_everyone": true}),
            400,
        ),
    ] {
        let (st, v) = s
            .put(
                &format!("/api/v1/users/@me/notification-settings/{path}"),
                &b.token,
                Some(body.clone()),
            )
            .await;
        assert_eq!(st.as_u16(), code, "{path} {body}: {v}");
    }
    for q in ["limit=0", "limit=101", "before=abc", "unread=maybe"] {
        let (st, v) = s.get(&format!("/api/v1/notifications?{q}"), &b.token).await;
        assert_error(st, &v, 400, "invalid_request");
    }
    // c's notification is not b's.
    let (_, cs) = s.get("/api/v1/notifications", &c.token).await;
    let theirs = cs["notifications"][0]["id"].as_str().unwrap();
    let (st, v) = s
        .put(
            &format!("/api/v1/notifications/{theirs}/read"),
            &b.token,
            None,
        )
        .await;
    assert_error(st, &v, 404, "not_found");
    let (st, _) = s.get("/api/v1/notifications", "not-a-token").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // Push subscriptions are checked when registered (private endpoints
    // are refused by default: server-side request forgery).
    let good_keys =
        json!({"p256dh": format!("B{}", "A".repeat(86)), "auth": "AAAAAAAAAAAAAAAAAAAAAA"});
    for (endpoint, keys, field) in [
        ("http://push.example.net/x", good_keys.clone(), "endpoint"),
        ("https://127.0.0.1/x", good_keys.clone(), "endpoint"),
        ("https://localhost/x", good_keys.clone(), "endpoint"),
        (
            "https://push.example.net/x",
            json!({"p256dh": "AAAA", "auth": "AAAAAAAAAAAAAAAAAAAAAA"}),
            "keys.p256dh",
        ),
        (
            "https://push.example.net/x",
            json!({"p256dh": format!("B{}", "A".repeat(86)), "auth": "AA"}),
            "keys.auth",
        ),
    ] {
        let (st, v) = s
            .post(
                "/api/v1/users/@me/push-subscriptions",
                &b.token,
                json!({"endpoint": endpoint, "keys": keys, "expirationTime": null}),
            )
            .await;
        assert_error(st, &v, 400, "invalid_request");
        assert!(
            v["error"]["details"]["fields"].get(field).is_some(),
            "{field}: {v}"
        );
    }
    let (st, v) = s.get("/api/v1/push/vapid-public-key", &b.token).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["public_key"].as_str().unwrap().len(), 87, "{v}");
}

// ---- Web Push against the real sink ----

pub(crate) fn push_sink() -> String {
    std::env::var("HEARTH_TEST_PUSH").unwrap_or_else(|_| "127.0.0.1:8089".into())
}

/// Fails the test when the push sink is absent.
pub(crate) fn require_push_sink() {
    let addr = push_sink();
    assert!(
        std::net::TcpStream::connect_timeout(
            &addr.parse().expect("host:port"),
            Duration::from_secs(2)
        )
        .is_ok(),
        "the test push service must be running on {addr}: start it with scripts/push.sh"
    );
}

pub(crate) async fn sink_subscription(mode: Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("http://{}/subscriptions", push_sink()))
        .json(&mode)
        .send()
        .await
        .expect("push sink");
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.expect("subscription")
}

async fn sink_state(sub: &Value) -> Value {
    let id = sub["id"].as_str().unwrap();
    reqwest::Client::new()
        .get(format!("http://{}/subscriptions/{id}", push_sink()))
        .send()
        .await
        .expect("push sink")
        .json()
        .await
        .expect("state")
}

async fn sink_messages(sub: &Value, n: usize, within: Duration) -> Vec<Value> {
    let until = Instant::now() + within;
    loop {
        let st = sink_state(sub).await;
        let got = st["messages"].as_array().unwrap().clone();
        if got.len() >= n {
            assert!(
                st["rejections"].as_array().unwrap().is_empty(),
                "no push was refused: {st}"
            );
            return got;
        }
        assert!(
            Instant::now() < until,
            "{n} push(es) within {within:?}: {st}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn push_metric(s: &TestServer, outcome: &str) -> u64 {
    let (_, text) = s.call(reqwest::Method::GET, "/metrics", None, None).await;
    let want = format!("hearth_push_total{{outcome=\"{outcome}\"}} ");
    text.as_str()
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(&want))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

async fn wait_push_metric(s: &TestServer, outcome: &str, at_least: u64) {
    let until = Instant::now() + Duration::from_secs(30);
    while push_metric(s, outcome).await < at_least {
        assert!(
            Instant::now() < until,
            "hearth_push_total{{{outcome}}} reached {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn register_browser(s: &TestServer, u: &User, sub: &Value) -> (StatusCode, Value) {
    s.post(
        "/api/v1/users/@me/push-subscriptions",
        &u.token,
        json!({"endpoint": sub["endpoint"], "keys": sub["keys"], "expirationTime": null}),
    )
    .await
}

pub async fn pushes_reach_away_users(s: &TestServer) {
    require_push_sink();
    let a = s.register("pann").await;
    let b = s.register("pbob").await;
    let (community, general) = s.community(&a, "Pushed").await;
    s.join(&a, &community, &b).await;

    let browser = sink_subscription(json!({})).await;
    let (st, reg) = register_browser(s, &b, &browser).await;
    assert_eq!(st, StatusCode::CREATED, "{reg}");
    let (st, again) = register_browser(s, &b, &browser).await;
    assert_eq!(st, StatusCode::OK, "{again}");
    assert_eq!(again["id"], reg["id"]);

    // b is offline: a mention is pushed, signed and encrypted for b's browser.
    let m = s
        .send(&a, &general, &format!("<@{}> lunch at noon?", b.id))
        .await;
    let got = sink_messages(&browser, 1, Duration::from_secs(10)).await;
    let p = &got[0];
    let (_, key) = s.get("/api/v1/push/vapid-public-key", &b.token).await;
    assert_eq!(
        p["vapid_key"], key["public_key"],
        "signed with the server's key"
    );
    assert_eq!(p["topic"], general, "collapsed per channel");
    assert_eq!(p["urgency"], "high");
    assert!(p["ttl"].as_u64().unwrap() > 0);
    let payload = &p["payload"];
    assert_eq!(payload["kind"], "mention");
    assert_eq!(payload["channel_id"], general);
    assert_eq!(payload["community_id"], community);
    assert_eq!(payload["tag"], general);
    assert_eq!(payload["title"], "pann in #general (Pushed)");
    assert_eq!(payload["body"], m["content"]);
    let (_, inbox) = s.get("/api/v1/notifications", &b.token).await;
    assert_eq!(payload["notification_id"], inbox["notifications"][0]["id"]);

    // Previews off: the text stays on the server.
    s.patch(
        "/api/v1/users/@me/notification-settings",
        &b.token,
        json!({"push_previews": false}),
    )
    .await;
    s.send(&a, &general, &format!("<@{}> secret plans", b.id))
        .await;
    let got = sink_messages(&browser, 2, Duration::from_secs(10)).await;
    assert_eq!(got[1]["payload"]["body"], "New message");

    // Online (a focused session): the inbox, no push.
    let (mut gw, _) = Gw::identify(s, &b).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.send(&a, &general, &format!("<@{}> you there?", b.id))
        .await;
    gw.expect("NOTIFICATION_CREATE").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        sink_state(&browser).await["messages"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Idle counts as away.
    gw.send(json!({"op": "presence_update", "d": {"status": "idle"}}))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.send(&a, &general, &format!("<@{}> still?", b.id)).await;
    sink_messages(&browser, 3, Duration::from_secs(10)).await;
    drop(gw);

    // A push service that answers 500 twice: retried, then delivered.
    let flaky = sink_subscription(json!({"mode": "flaky", "fail_times": 2})).await;
    register_browser(s, &b, &flaky).await;
    let retried = push_metric(s, "retried").await;
    s.send(&a, &general, &format!("<@{}> try again", b.id))
        .await;
    sink_messages(&flaky, 1, Duration::from_secs(15)).await;
    assert!(push_metric(s, "retried").await >= retried + 2);

    // The browser unsubscribed (410): the subscription is removed.
    let gone = sink_subscription(json!({"mode": "gone"})).await;
    let (_, gone_reg) = register_browser(s, &b, &gone).await;
    // A redirect is never followed: refused for good, dropped.
    let moved =
        sink_subscription(json!({"mode": "redirect", "redirect_to": "http://127.0.0.1:1/"})).await;
    register_browser(s, &b, &moved).await;
    let rejected = push_metric(s, "rejected").await;
    s.send(&a, &general, &format!("<@{}> knock knock", b.id))
        .await;
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, subs) = s
            .get("/api/v1/users/@me/push-subscriptions", &b.token)
            .await;
        if !subs
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == gone_reg["id"])
        {
            break;
        }
        assert!(
            Instant::now() < until,
            "the 410 subscription was removed: {subs}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_push_metric(s, "rejected", rejected + 1).await;
    let attempts = sink_state(&moved).await["attempts"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(attempts, 1, "a refused push is not retried");

    // A push service that keeps failing, and one that never answers (the
    // request times out): three retries each, then dropped and counted.
    let broken = sink_subscription(json!({"mode": "error"})).await;
    register_browser(s, &b, &broken).await;
    let hung = sink_subscription(json!({"mode": "hang"})).await;
    register_browser(s, &b, &hung).await;
    let failed = push_metric(s, "failed").await;
    s.send(&a, &general, &format!("<@{}> last one", b.id)).await;
    wait_push_metric(s, "failed", failed + 2).await;
    for sub in [&broken, &hung] {
        let attempts = sink_state(sub).await["attempts"].as_array().unwrap().len();
        assert_eq!(attempts, 4, "{sub}");
    }

    // Unsubscribing is the owner's alone.
    let (st, _) = s
        .delete(
            &format!(
                "/api/v1/users/@me/push-subscriptions/{}",
                reg["id"].as_str().unwrap()
            ),
            &a.token,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = s
        .delete(
            &format!(
                "/api/v1/users/@me/push-subscriptions/{}",
                reg["id"].as_str().unwrap()
            ),
            &b.token,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
}

/// Push on (the sink is plain http on loopback), fast retries.
pub fn push_on(c: &mut hearth_server::config::Config) {
    c.notify.push_allow_private = true;
    c.notify.push_retry_base_ms = 100;
    c.notify.push_timeout_ms = 2_000;
}

// ---- the email digest ----

pub async fn digests_mail_unread_mentions(s: &TestServer) {
    crate::mail::require_sink();
    let a = s.register("dann").await;
    let tag = format!("{:08x}", rand::random::<u32>());
    let email = format!("digest-{tag}@hearth.test");
    let (st, v) = s
        .call(
            reqwest::Method::POST,
            "/api/v1/auth/register",
            None,
            Some(json!({"username": format!("d{tag}"), "password": "correct horse battery", "email": email})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let b = User {
        id: v["user"]["id"].as_str().unwrap().into(),
        token: v["access_token"].as_str().unwrap().into(),
        refresh: String::new(),
    };
    let (community, general) = s.community(&a, "Digest Town").await;
    s.join(&a, &community, &b).await;
    s.send(
        &a,
        &general,
        &format!("<@{}> please review <b>this</b>", b.id),
    )
    .await;
    s.send(&a, &general, &format!("<@{}> and this", b.id)).await;
    let mails =
        crate::mail::wait_for_subject(&email, "unread mention", Duration::from_secs(15)).await;
    assert_eq!(mails.len(), 1, "one digest");
    let d = &mails[0];
    assert_eq!(d.0, "2 unread mentions on Hearth");
    assert!(
        d.1.contains("dann mentioned you in #general (Digest Town)"),
        "{}",
        d.1
    );
    assert!(d.1.contains("please review <b>this</b>"), "{}", d.1);
    assert!(d.2.contains("&lt;b&gt;this"), "escaped in HTML: {}", d.2);
    // Covered once: nothing more is mailed about them.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(crate::mail::subjects(&email, "unread mention").len(), 1);
    // Digests off: no mail.
    s.patch(
        "/api/v1/users/@me/notification-settings",
        &b.token,
        json!({"email_digest": false}),
    )
    .await;
    s.send(&a, &general, &format!("<@{}> third", b.id)).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(crate::mail::subjects(&email, "unread mention").len(), 1);
}
