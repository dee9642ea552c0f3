//! Contract v1.1: the rules that close privilege escalations and abuse
//! paths. Each scenario reproduces one finding of the trust review as an
//! attacker would try it, checks the contract's answer, and checks that the
//! refused attempt changed nothing.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::gateway::Gw;
use crate::scenarios::unbase32;
use crate::{TestServer, User, assert_error};

/// A role with these permissions at `position`; returns its id.
async fn role(
    s: &TestServer,
    owner: &User,
    c: &str,
    name: &str,
    perms: &[&str],
    pos: i32,
) -> String {
    let (st, r) = s
        .post(
            &format!("/api/v1/communities/{c}/roles"),
            &owner.token,
            json!({"name": name, "permissions": perms, "position": pos}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{r}");
    r["id"].as_str().unwrap().to_string()
}

async fn give(
    s: &TestServer,
    actor: &User,
    c: &str,
    member: &User,
    role: &str,
) -> (StatusCode, Value) {
    s.put(
        &format!("/api/v1/communities/{c}/members/{}/roles/{role}", member.id),
        &actor.token,
        None,
    )
    .await
}

async fn member_roles(s: &TestServer, viewer: &User, c: &str, member: &User) -> Vec<String> {
    let (st, list) = s
        .get(
            &format!("/api/v1/communities/{c}/members?limit=100"),
            &viewer.token,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{list}");
    let m = list
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user"]["id"] == member.id.as_str())
        .expect("member listed");
    let mut roles: Vec<String> = m["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    roles.sort();
    roles
}

/// Finding 1: MANAGE_ROLES alone could hand out a lower role carrying
/// ADMINISTRATOR, to anyone including oneself.
pub async fn role_assignment_needs_the_bits_and_the_rank(s: &TestServer) {
    let owner = s.register("own1").await;
    let (c, _) = s.community(&owner, "Grants").await;
    let mgr = s.register("mgr1").await;
    let low = s.register("low1").await;
    let peer = s.register("peer1").await;
    for u in [&mgr, &low, &peer] {
        s.join(&owner, &c, u).await;
    }
    let manager = role(
        s,
        &owner,
        &c,
        "manager",
        &["MANAGE_ROLES", "SEND_MESSAGES"],
        5,
    )
    .await;
    let admin = role(s, &owner, &c, "admin", &["ADMINISTRATOR"], 1).await;
    let kicker = role(s, &owner, &c, "kicker", &["KICK_MEMBERS"], 2).await;
    let talker = role(s, &owner, &c, "talker", &["SEND_MESSAGES"], 2).await;
    assert_eq!(
        give(s, &owner, &c, &mgr, &manager).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        give(s, &owner, &c, &peer, &manager).await.0,
        StatusCode::NO_CONTENT
    );

    // A lower role with ADMINISTRATOR: not to oneself, not to anyone.
    let (st, e) = give(s, &mgr, &c, &mgr, &admin).await;
    assert_error(st, &e, 403, "forbidden");
    let (st, e) = give(s, &mgr, &c, &low, &admin).await;
    assert_error(st, &e, 403, "forbidden");
    assert_eq!(
        e["error"]["details"]["missing_permissions"],
        json!(["ADMINISTRATOR"])
    );
    // A role with a bit the actor lacks (KICK_MEMBERS).
    let (st, e) = give(s, &mgr, &c, &low, &kicker).await;
    assert_error(st, &e, 403, "forbidden");
    // A role within the actor's bits, to someone ranked below: fine.
    assert_eq!(
        give(s, &mgr, &c, &low, &talker).await.0,
        StatusCode::NO_CONTENT
    );
    // ...but not to oneself or a peer (neither ranks below the actor),
    // and not taken away from a peer either.
    let (st, e) = give(s, &mgr, &c, &mgr, &talker).await;
    assert_error(st, &e, 403, "forbidden");
    let (st, e) = give(s, &mgr, &c, &peer, &talker).await;
    assert_error(st, &e, 403, "forbidden");
    let (st, e) = s
        .delete(
            &format!(
                "/api/v1/communities/{c}/members/{}/roles/{manager}",
                peer.id
            ),
            &mgr.token,
        )
        .await;
    assert_error(st, &e, 403, "forbidden");

    // Nothing changed by the refused attempts.
    assert_eq!(
        member_roles(s, &owner, &c, &mgr).await,
        vec![manager.clone()]
    );
    assert_eq!(
        member_roles(s, &owner, &c, &peer).await,
        vec![manager.clone()]
    );
    assert_eq!(
        member_roles(s, &owner, &c, &low).await,
        vec![talker.clone()]
    );
    let (st, _) = s
        .patch(
            &format!("/api/v1/communities/{c}"),
            &mgr.token,
            json!({"name": "pwned"}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "no administrator powers leaked");

    // Creating or editing a role follows the same rule.
    let (st, e) = s
        .post(
            &format!("/api/v1/communities/{c}/roles"),
            &mgr.token,
            json!({"name": "sneaky", "permissions": ["ADMINISTRATOR"], "position": 1}),
        )
        .await;
    assert_error(st, &e, 403, "forbidden");
    let (st, e) = s
        .patch(
            &format!("/api/v1/communities/{c}/roles/{talker}"),
            &mgr.token,
            json!({"permissions": ["SEND_MESSAGES", "BAN_MEMBERS"]}),
        )
        .await;
    assert_error(st, &e, 403, "forbidden");

    // The owner gives ADMINISTRATOR; an administrator may too.
    assert_eq!(
        give(s, &owner, &c, &low, &admin).await.0,
        StatusCode::NO_CONTENT
    );
}

/// Finding 2: a member denied SEND_MESSAGES by an `@everyone` overwrite
/// could delete (or empty) that overwrite with MANAGE_ROLES and then send.
pub async fn a_deny_you_are_under_stays(s: &TestServer) {
    let owner = s.register("own2").await;
    let (c, general) = s.community(&owner, "Denies").await;
    let mgr = s.register("mgr2").await;
    s.join(&owner, &c, &mgr).await;
    let manager = role(
        s,
        &owner,
        &c,
        "manager",
        &["MANAGE_ROLES", "VIEW_CHANNEL"],
        3,
    )
    .await;
    assert_eq!(
        give(s, &owner, &c, &mgr, &manager).await.0,
        StatusCode::NO_CONTENT
    );
    let ow = format!("/api/v1/channels/{general}/overwrites/{c}");
    let (st, v) = s
        .put(
            &ow,
            &owner.token,
            Some(json!({"target_type": "role", "allow": [], "deny": ["SEND_MESSAGES"]})),
        )
        .await;
    assert!(st.is_success(), "{v}");
    let msg = format!("/api/v1/channels/{general}/messages");
    let (st, _) = s.post(&msg, &mgr.token, json!({"content": "hi"})).await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    let (st, e) = s.delete(&ow, &mgr.token).await;
    assert_error(st, &e, 403, "forbidden");
    assert_eq!(
        e["error"]["details"]["missing_permissions"],
        json!(["SEND_MESSAGES"])
    );
    let (st, e) = s
        .put(
            &ow,
            &mgr.token,
            Some(json!({"target_type": "role", "allow": [], "deny": []})),
        )
        .await;
    assert_error(st, &e, 403, "forbidden");
    // An overwrite on oneself cannot lift it either (the target must rank below).
    let (st, e) = s
        .put(
            &format!("/api/v1/channels/{general}/overwrites/{}", mgr.id),
            &mgr.token,
            Some(json!({"target_type": "member", "allow": ["SEND_MESSAGES"], "deny": []})),
        )
        .await;
    assert_error(st, &e, 403, "forbidden");

    // Still denied, and the overwrite is still there.
    let (st, _) = s.post(&msg, &mgr.token, json!({"content": "hi"})).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (_, ch) = s
        .get(&format!("/api/v1/channels/{general}"), &owner.token)
        .await;
    let ows = ch["overwrites"].as_array().cloned().unwrap_or_default();
    if !ows.is_empty() {
        assert!(
            ows.iter()
                .any(|o| o["id"] == c.as_str() && o["deny"] == json!(["SEND_MESSAGES"])),
            "{ch}"
        );
    }
    // A change within the actor's own bits, on a target below them, works.
    let (st, v) = s
        .put(
            &ow,
            &mgr.token,
            Some(json!({"target_type": "role", "allow": [], "deny": ["SEND_MESSAGES", "VIEW_CHANNEL"]})),
        )
        .await;
    assert!(st.is_success(), "adding a deny of a bit you hold: {v}");
    // The owner lifts it.
    let (st, _) = s.delete(&ow, &owner.token).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = s.post(&msg, &mgr.token, json!({"content": "hi"})).await;
    assert_eq!(st, StatusCode::CREATED);
}

/// Finding 3: a timed-out member could still edit its messages (and take
/// back reactions, type).
pub async fn timeouts_stop_edits_and_reactions(s: &TestServer) {
    let owner = s.register("own3").await;
    let (c, general) = s.community(&owner, "Quiet").await;
    let m = s.register("noisy3").await;
    s.join(&owner, &c, &m).await;
    let sent = s.send(&m, &general, "before").await;
    let mid = sent["id"].as_str().unwrap();
    let react = format!("/api/v1/channels/{general}/messages/{mid}/reactions/%F0%9F%91%8D");
    assert_eq!(
        s.put(&react, &m.token, None).await.0,
        StatusCode::NO_CONTENT
    );
    let until = hearth_types::format_rfc3339(hearth_types::now_ms() + 600_000);
    let (st, v) = s
        .patch(
            &format!("/api/v1/communities/{c}/members/{}", m.id),
            &owner.token,
            json!({"timed_out_until": until}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");

    let edit = format!("/api/v1/channels/{general}/messages/{mid}");
    let (st, e) = s.patch(&edit, &m.token, json!({"content": "after"})).await;
    assert_error(st, &e, 403, "forbidden");
    let (st, e) = s.delete(&react, &m.token).await;
    assert_error(st, &e, 403, "forbidden");
    let (st, _) = s
        .post(
            &format!("/api/v1/channels/{general}/typing"),
            &m.token,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // Unchanged; still readable.
    let (st, got) = s.get(&edit, &m.token).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(got["content"], "before");
    assert_eq!(got["reactions"][0]["count"], 1);

    // When the timeout is lifted the edit goes through.
    let (st, _) = s
        .patch(
            &format!("/api/v1/communities/{c}/members/{}", m.id),
            &owner.token,
            json!({"timed_out_until": null}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, v) = s.patch(&edit, &m.token, json!({"content": "after"})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
}

/// Finding 4: anyone could DM anyone, open unlimited group DMs, and tell an
/// unknown user id from a refused one.
pub async fn dms_need_a_shared_community_and_consent(s: &TestServer) {
    let a = s.register("dma").await;
    let b = s.register("dmb").await;
    let stranger = s.register("dmc").await;
    let (c, _) = s.community(&a, "Friends").await;
    s.join(&a, &c, &b).await;

    // A stranger (no shared community, no DM) is refused, and an unknown id
    // gets the very same answer.
    let (st1, e1) = s
        .post("/api/v1/dms", &stranger.token, json!({"user_ids": [a.id]}))
        .await;
    assert_error(st1, &e1, 403, "forbidden");
    let (st2, e2) = s
        .post(
            "/api/v1/dms",
            &stranger.token,
            json!({"user_ids": ["123456789012345"]}),
        )
        .await;
    assert_eq!((st1, &e1), (st2, &e2), "no probing user ids");
    let (_, dms) = s.get("/api/v1/dms", &a.token).await;
    assert_eq!(dms.as_array().unwrap().len(), 0, "nothing was created");

    // Sharing a community is enough.
    let (st, dm) = s
        .post("/api/v1/dms", &b.token, json!({"user_ids": [a.id]}))
        .await;
    assert!(st.is_success(), "{dm}");
    let dm_id = dm["id"].as_str().unwrap().to_string();

    // A block refuses new DMs and sends into the existing one.
    assert_eq!(
        s.put(
            &format!("/api/v1/users/@me/blocks/{}", b.id),
            &a.token,
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let (_, blocked) = s.get("/api/v1/users/@me/blocks", &a.token).await;
    assert_eq!(blocked[0]["id"], b.id.as_str());
    let (st, e) = s
        .post("/api/v1/dms", &b.token, json!({"user_ids": [a.id]}))
        .await;
    assert_eq!((st, &e), (st1, &e1), "the same refusal");
    let (st, _) = s
        .post(
            &format!("/api/v1/channels/{dm_id}/messages"),
            &b.token,
            json!({"content": "hey"}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(
        s.delete(&format!("/api/v1/users/@me/blocks/{}", b.id), &a.token)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (st, _) = s
        .post(
            &format!("/api/v1/channels/{dm_id}/messages"),
            &b.token,
            json!({"content": "hey"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);

    // allow_dms_from: nobody.
    let (st, me) = s
        .patch(
            "/api/v1/users/@me",
            &a.token,
            json!({"allow_dms_from": "nobody"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{me}");
    assert_eq!(me["allow_dms_from"], "nobody");
    let (st, e) = s
        .post("/api/v1/dms", &b.token, json!({"user_ids": [a.id]}))
        .await;
    assert_eq!((st, &e), (st1, &e1));
    let (st, e) = s
        .patch(
            "/api/v1/users/@me",
            &a.token,
            json!({"allow_dms_from": "everyone"}),
        )
        .await;
    assert_error(st, &e, 400, "invalid_request");
    s.patch(
        "/api/v1/users/@me",
        &a.token,
        json!({"allow_dms_from": "community_members"}),
    )
    .await;

    // Group DMs: at most 10 members, every one of them reachable.
    let mut crowd = Vec::new();
    for i in 0..10 {
        let u = s.register(&format!("crowd{i}")).await;
        s.join(&a, &c, &u).await;
        crowd.push(u.id);
    }
    let (st, e) = s
        .post("/api/v1/dms", &a.token, json!({"user_ids": crowd}))
        .await;
    assert_error(st, &e, 400, "invalid_request");
    let (st, e) = s
        .post(
            "/api/v1/dms",
            &a.token,
            json!({"user_ids": [b.id, stranger.id]}),
        )
        .await;
    assert_eq!(
        (st, &e),
        (st1, &e1),
        "one unreachable member refuses the group"
    );

    // At most 100 group DMs a day.
    let pair = json!({"user_ids": [crowd[0], crowd[1]]});
    for i in 0..100 {
        let (st, v) = s.post("/api/v1/dms", &a.token, pair.clone()).await;
        assert!(st.is_success(), "group DM {i}: {v}");
    }
    let (st, e) = s.post("/api/v1/dms", &a.token, pair).await;
    assert_error(st, &e, 429, "rate_limited");
    assert!(e["error"]["details"]["retry_after_ms"].as_u64().unwrap() > 3_600_000);
}

/// Finding 5: reusing a spent refresh token revoked the session for REST,
/// but its gateway sockets stayed open. The user's other session stays.
pub async fn token_reuse_closes_the_sessions_sockets(s: &TestServer) {
    let u = s.register("reuse5").await;
    let (st, other) = s
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"login": "reuse5", "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let other = User {
        id: u.id.clone(),
        token: other["access_token"].as_str().unwrap().into(),
        refresh: other["refresh_token"].as_str().unwrap().into(),
    };
    let (mut victim, _) = Gw::identify(s, &u).await;
    let (mut bystander, _) = Gw::identify(s, &other).await;

    let (st, _) = s
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": u.refresh})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "the legitimate refresh");
    let started = std::time::Instant::now();
    let (st, e) = s
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": u.refresh})),
        )
        .await;
    assert_error(st, &e, 401, "token_reused");
    assert_eq!(victim.closed_with(Duration::from_secs(2)).await, 4010);
    assert!(started.elapsed() < Duration::from_secs(1), "within 1 s");
    let (st, _) = s.get("/api/v1/users/@me", &u.token).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // The other session is untouched: REST works and its socket stays open.
    let (st, _) = s.get("/api/v1/users/@me", &other.token).await;
    assert_eq!(st, StatusCode::OK);
    bystander
        .send(json!({"op": "heartbeat", "d": {"s": 1}}))
        .await;
    // Dispatches (a presence update) may come first; the socket must
    // answer the heartbeat, not close.
    loop {
        let f = bystander.frame().await;
        if f["op"] == "heartbeat_ack" {
            break;
        }
        assert_eq!(f["op"], "dispatch", "{f}");
    }
}

/// Finding 6: a refresh through the cookie without the client header
/// worked and put the rotated token in the JSON body.
pub async fn cookie_refresh_needs_the_client_header(s: &TestServer) {
    let res = s
        .http
        .post(format!("{}/api/v1/auth/register", s.base))
        .header("x-hearth-client", "web")
        .json(&json!({"username": "cookie6", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    let pair = cookie.split(';').next().unwrap().to_string();
    let res = s
        .http
        .post(format!("{}/api/v1/auth/refresh", s.base))
        .header("cookie", &pair)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body: Value = res.json().await.unwrap();
    assert_error(StatusCode::FORBIDDEN, &body, 403, "forbidden");
    assert!(body.get("refresh_token").is_none());
    // The cookie was not spent by the refused attempt.
    let res = s
        .http
        .post(format!("{}/api/v1/auth/refresh", s.base))
        .header("x-hearth-client", "web")
        .header("cookie", &pair)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert!(
        body.get("refresh_token").is_none(),
        "only in the cookie: {body}"
    );
}

/// Finding 7: MFA could be replaced with just an access token, and a TOTP
/// code could be used twice.
pub async fn mfa_needs_the_password_and_codes_are_single_use(s: &TestServer) {
    let u = s.register("mfa7").await;
    let login = |code: Option<String>| {
        let mut body = json!({"login": "mfa7", "password": "correct horse battery"});
        if let Some(c) = code {
            body["totp_code"] = json!(c);
        }
        s.call(Method::POST, "/api/v1/auth/login", None, Some(body))
    };
    let setup = |token: String| async move {
        let (_, v) = s
            .post("/api/v1/users/@me/mfa/totp", &token, json!({}))
            .await;
        v["secret"].as_str().unwrap().to_string()
    };
    let now = || hearth_types::now_ms() / 1000;
    let secret = setup(u.token.clone()).await;
    let key = unbase32(&secret);
    let code = hearth_accounts::totp_at(&key, now());

    // An access token alone cannot turn MFA on: the password is required.
    let (st, e) = s
        .put(
            "/api/v1/users/@me/mfa/totp",
            &u.token,
            Some(json!({"secret": secret, "code": code})),
        )
        .await;
    assert_error(st, &e, 400, "invalid_request");
    let (st, e) = s
        .put(
            "/api/v1/users/@me/mfa/totp",
            &u.token,
            Some(json!({"secret": secret, "code": code, "password": "wrong password!"})),
        )
        .await;
    assert_error(st, &e, 401, "invalid_credentials");
    let (_, me) = s.get("/api/v1/users/@me", &u.token).await;
    assert_eq!(me["mfa_enabled"], false, "nothing changed");
    let (st, v) = s
        .put(
            "/api/v1/users/@me/mfa/totp",
            &u.token,
            Some(json!({"secret": secret, "code": code, "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");

    // The confirming code is spent; the next step's code signs in once.
    let (st, e) = login(Some(code.clone())).await;
    assert_error(st, &e, 401, "invalid_credentials");
    let next = hearth_accounts::totp_at(&key, now() + 30);
    let (st, v) = login(Some(next.clone())).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, e) = login(Some(next.clone())).await;
    assert_error(st, &e, 401, "invalid_credentials");

    // Replacing the secret needs the password and a current code of the old
    // one (a spent code does not do).
    let attacker_secret = setup(u.token.clone()).await;
    let attacker_code = hearth_accounts::totp_at(&unbase32(&attacker_secret), now());
    let (st, e) = s
        .put(
            "/api/v1/users/@me/mfa/totp",
            &u.token,
            Some(json!({"secret": attacker_secret, "code": attacker_code, "password": "correct horse battery"})),
        )
        .await;
    assert_error(st, &e, 401, "mfa_required");
    let (st, e) = s
        .put(
            "/api/v1/users/@me/mfa/totp",
            &u.token,
            Some(json!({"secret": attacker_secret, "code": attacker_code, "password": "correct horse battery", "current_code": next})),
        )
        .await;
    assert_error(st, &e, 401, "invalid_credentials");
    // Disabling needs them too.
    let (st, e) = s
        .call(
            Method::DELETE,
            "/api/v1/users/@me/mfa/totp",
            Some(&u.token),
            Some(json!({"password": "correct horse battery"})),
        )
        .await;
    assert_error(st, &e, 401, "mfa_required");
    let (_, me) = s.get("/api/v1/users/@me", &u.token).await;
    assert_eq!(
        me["mfa_enabled"], true,
        "still on, with the original secret"
    );
    let (st, v) = login(Some(hearth_accounts::totp_at(&key, now() - 30))).await;
    assert_eq!(
        st.as_u16(),
        401,
        "an earlier step than one already used: {v}"
    );
}

/// Finding 8: look-alike usernames.
pub async fn look_alike_usernames_are_refused(s: &TestServer) {
    s.register("kevin").await;
    for name in ["\u{212A}evin", "ｋevin", "kev\u{0131}n", "\u{212A}"] {
        let (st, e) = s
            .call(
                Method::POST,
                "/api/v1/auth/register",
                None,
                Some(json!({"username": name, "password": "correct horse battery"})),
            )
            .await;
        assert_error(st, &e, 400, "invalid_request");
        assert!(
            e["error"]["details"]["fields"]["username"].is_string(),
            "{e}"
        );
    }
    // Upper-case ASCII folds as before: it is the same name.
    let (st, e) = s
        .call(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(json!({"username": "KEVIN", "password": "correct horse battery"})),
        )
        .await;
    assert_error(st, &e, 409, "conflict");
}

/// Finding 9: reactions were any 1-32 non-ASCII characters, unbounded.
pub async fn reactions_are_single_emoji_and_bounded(s: &TestServer) {
    let u = s.register("react9").await;
    let (_, general) = s.community(&u, "Reacts").await;
    let m = s.send(&u, &general, "react to me").await;
    let base = format!(
        "/api/v1/channels/{general}/messages/{}/reactions",
        m["id"].as_str().unwrap()
    );
    for bad in [
        "%C3%A4",
        "%E4%B8%AD",
        "%F0%9F%91%8D%F0%9F%91%8D",
        "abc",
        "123",
        "%E2%86%92",
    ] {
        let (st, e) = s.put(&format!("{base}/{bad}"), &u.token, None).await;
        assert_error(st, &e, 400, "invalid_request");
    }
    let emoji: Vec<&str> = vec![
        "😀", "😃", "😄", "😁", "😆", "😅", "🤣", "😂", "🙂", "🙃", "😉", "😊", "😇", "🥰", "😍",
        "🤩", "😘", "😗", "😚", "👍🏽",
    ];
    for e in &emoji {
        let path = format!("{base}/{}", urlencode(e));
        assert_eq!(
            s.put(&path, &u.token, None).await.0,
            StatusCode::NO_CONTENT,
            "{e}"
        );
    }
    let (st, e) = s
        .put(&format!("{base}/{}", urlencode("🔥")), &u.token, None)
        .await;
    assert_error(st, &e, 400, "invalid_request");
    // Another user may still add one of the 20.
    let (_, got) = s
        .get(
            &format!(
                "/api/v1/channels/{general}/messages/{}",
                m["id"].as_str().unwrap()
            ),
            &u.token,
        )
        .await;
    assert_eq!(got["reactions"].as_array().unwrap().len(), 20);
    assert!(
        got["reactions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["emoji"] == "👍🏽")
    );
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// Clarifications of v1.1 that were not yet true.
pub async fn contract_clarifications(s: &TestServer) {
    let u = s.register("clar").await;
    let (_, general) = s.community(&u, "Clar").await;
    let (c2, other) = s.community(&u, "Other").await;
    let _ = c2;
    let elsewhere = s.send(&u, &other, "in another channel").await;
    s.send(&u, &general, "here").await;
    // A read marker naming a message of another channel is 404.
    let (st, e) = s
        .put(
            &format!("/api/v1/channels/{general}/read"),
            &u.token,
            Some(json!({"message_id": elsewhere["id"]})),
        )
        .await;
    assert_error(st, &e, 404, "not_found");
}

async fn login_from(s: &TestServer, ip: &str, login: &str, password: &str) -> reqwest::Response {
    s.http
        .post(format!("{}/api/v1/auth/login", s.base))
        .header("x-forwarded-for", ip)
        .json(&json!({"login": login, "password": password}))
        .send()
        .await
        .unwrap()
}

/// Sign-in failures are limited per account (from any address) and per
/// address, with an IPv6 address counted by its /64. Needs a server that
/// trusts `X-Forwarded-For`, so each attempt can come from another address.
pub async fn sign_in_limits(s: &TestServer) {
    s.register("target").await;
    s.register("other").await;
    // Ten wrong guesses from ten addresses use up the account's burst...
    for i in 0..10 {
        let r = login_from(s, &format!("10.0.0.{i}"), "target", "wrong guess!").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "guess {i}");
    }
    // ...so the eleventh, from yet another address, is refused, even with
    // the right password, and says when to come back.
    let r = login_from(s, "10.0.1.1", "TARGET", "correct horse battery").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1, "Retry-After {retry}");
    let body: Value = r.json().await.unwrap();
    assert_error(StatusCode::TOO_MANY_REQUESTS, &body, 429, "rate_limited");
    // Another account is not affected.
    let r = login_from(s, "10.0.1.1", "other", "correct horse battery").await;
    assert_eq!(r.status(), StatusCode::OK);

    // Per address, IPv6 counts per /64: twenty attempts spread over one
    // /64 use up its burst.
    for i in 0..20 {
        // Each attempt names another account, so only the address limit counts.
        let r = login_from(
            s,
            &format!("2001:db8:7:7::{:x}", i + 1),
            &format!("nobody{i}"),
            "x",
        )
        .await;
        assert_ne!(r.status(), StatusCode::TOO_MANY_REQUESTS, "attempt {i}");
    }
    let r = login_from(s, "2001:db8:7:7:ffff::1", "nobody99", "x").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    // The next /64 is another address.
    let r = login_from(s, "2001:db8:7:8::1", "nobody98", "x").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// Found by schemathesis: a channel at the largest position made the next
/// channel's "last + 1" overflow (a panic and a 500 in a debug build).
pub async fn positions_are_bounded(s: &TestServer) {
    let u = s.register("pos").await;
    let (c, general) = s.community(&u, "Positions").await;
    let (st, e) = s
        .patch(
            &format!("/api/v1/channels/{general}"),
            &u.token,
            json!({"position": 2147483647}),
        )
        .await;
    assert_error(st, &e, 400, "invalid_request");
    let (st, v) = s
        .patch(
            &format!("/api/v1/channels/{general}"),
            &u.token,
            json!({"position": 1000000}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, ch) = s
        .post(
            &format!("/api/v1/communities/{c}/channels"),
            &u.token,
            json!({"name": "next"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{ch}");
    assert_eq!(ch["position"], 1000000);
    let (st, e) = s
        .post(
            &format!("/api/v1/communities/{c}/roles"),
            &u.token,
            json!({"name": "huge", "position": 2147483647}),
        )
        .await;
    assert_error(st, &e, 400, "invalid_request");
}
