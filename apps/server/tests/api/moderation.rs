//! Moderators' channel settings: slowmode and locks (issue #12), and the
//! log's durable copy that domain services read (the journal).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::{TestServer, assert_error};

/// Slowmode makes a member wait between messages, answers 429 with how
/// long, keeps nonce retries idempotent, and spares moderators.
pub async fn slowmode_makes_members_wait(s: &TestServer) {
    let owner = s.register("slowown").await;
    let (c, general) = s.community(&owner, "Slow").await;
    let member = s.register("slowmem").await;
    s.join(&owner, &c, &member).await;
    let path = format!("/api/v1/channels/{general}");
    for bad in [
        json!({"slowmode_secs": -1}),
        json!({"slowmode_secs": 21_601}),
    ] {
        let (st, e) = s.patch(&path, &owner.token, bad).await;
        assert_error(st, &e, 400, "invalid_request");
        assert!(e.to_string().contains("slowmode_secs"), "{e}");
    }
    let (st, e) = s.patch(&path, &owner.token, json!({"user_limit": 5})).await;
    assert_error(st, &e, 400, "invalid_request");
    let (st, e) = s
        .patch(&path, &member.token, json!({"slowmode_secs": 0}))
        .await;
    assert_error(st, &e, 403, "forbidden");
    let (st, ch) = s
        .patch(&path, &owner.token, json!({"slowmode_secs": 2}))
        .await;
    assert_eq!(st, StatusCode::OK, "{ch}");
    assert_eq!(ch["slowmode_secs"], 2);

    let messages = format!("{path}/messages");
    let send = |nonce: &str| {
        s.post(
            &messages,
            &member.token,
            json!({"content": "hello", "nonce": nonce}),
        )
    };
    let (st, first) = send("n1").await;
    assert_eq!(st, StatusCode::CREATED, "{first}");
    let (st, e) = send("n2").await;
    assert_error(st, &e, 429, "rate_limited");
    let wait = e["error"]["details"]["retry_after_ms"]
        .as_u64()
        .expect("retry_after_ms");
    assert!((1..=2_000).contains(&wait), "{e}");
    // The retry of a stored send is that send, not a new one.
    let (st, again) = send("n1").await;
    assert_eq!(st, StatusCode::OK, "{again}");
    assert_eq!(again["id"], first["id"]);
    // Moderators are exempt.
    for i in 0..3 {
        s.send(&owner, &general, &format!("mod {i}")).await;
    }
    tokio::time::sleep(Duration::from_millis(wait + 50)).await;
    let (st, m) = send("n3").await;
    assert_eq!(st, StatusCode::CREATED, "after the wait: {m}");
    let (_, list) = s
        .get(&format!("{path}/messages?limit=50"), &owner.token)
        .await;
    let from_member = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["author"]["id"] == member.id.as_str())
        .count();
    assert_eq!(from_member, 2, "the refused send stored nothing");
}

/// A locked channel takes messages only from those with MANAGE_MESSAGES.
pub async fn locked_channels_take_moderators_only(s: &TestServer) {
    let owner = s.register("lockown").await;
    let (c, general) = s.community(&owner, "Lock").await;
    let member = s.register("lockmem").await;
    s.join(&owner, &c, &member).await;
    let path = format!("/api/v1/channels/{general}");
    let (st, e) = s.patch(&path, &member.token, json!({"locked": true})).await;
    assert_error(st, &e, 403, "forbidden");
    let (st, ch) = s.patch(&path, &owner.token, json!({"locked": true})).await;
    assert_eq!((st, &ch["locked"]), (StatusCode::OK, &json!(true)), "{ch}");
    let (st, e) = s
        .post(
            &format!("{path}/messages"),
            &member.token,
            json!({"content": "let me in"}),
        )
        .await;
    assert_error(st, &e, 403, "forbidden");
    s.send(&owner, &general, "announcement").await;
    let (st, _) = s.patch(&path, &owner.token, json!({"locked": false})).await;
    assert_eq!(st, StatusCode::OK);
    s.send(&member, &general, "thanks").await;
}
