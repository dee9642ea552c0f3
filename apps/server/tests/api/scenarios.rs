//! The contract, scenario by scenario. Each function runs on both backends.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{TestServer, assert_error};

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_string())
        .collect()
}

pub async fn accounts_and_sessions(s: &TestServer) {
    let (st, v) = s
        .call(Method::POST, "/api/v1/auth/register", None, Some(json!({"username": "Zoe.B_1", "password": "long enough", "email": "zoe@example.org", "display_name": "Zoë"})))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["user"]["username"], "Zoe.B_1");
    assert_eq!(v["user"]["display_name"], "Zoë");
    assert_eq!(v["user"]["plan"], "free");
    assert!(v["expires_in"].as_u64().unwrap() > 0);
    assert!(v["user"]["created_at"].as_str().unwrap().ends_with('Z'));
    let id = v["user"]["id"].as_str().unwrap();
    assert!(id.parse::<i64>().unwrap() > 0, "IDs are decimal strings");

    // Unique ignoring case, for usernames and emails.
    let (st, e) = s
        .call(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(json!({"username": "zoe.b_1", "password": "long enough"})),
        )
        .await;
    assert_error(st, &e, 409, "conflict");
    let (st, e) = s
        .call(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(
                json!({"username": "other", "password": "long enough", "email": "ZOE@example.org"}),
            ),
        )
        .await;
    assert_error(st, &e, 409, "conflict");
    for bad in [
        json!({"username": "a", "password": "long enough"}),
        json!({"username": "no spaces", "password": "long enough"}),
        json!({"username": "okname", "password": "short"}),
        json!({"username": "okname", "password": "long enough", "email": "nope"}),
    ] {
        let (st, e) = s
            .call(
                Method::POST,
                "/api/v1/auth/register",
                None,
                Some(bad.clone()),
            )
            .await;
        assert_error(st, &e, 400, "invalid_request");
        assert!(
            e["error"]["details"]["fields"].is_object(),
            "details name the field: {e}"
        );
    }

    // Login by username (any case) or email.
    for login in ["zoe.b_1", "ZOE.B_1", "zoe@EXAMPLE.org"] {
        let (st, v) = s
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"login": login, "password": "long enough"})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{login}: {v}");
        assert_eq!(v["user"]["id"], id);
    }
    let (st, e) = s
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"login": "zoe.b_1", "password": "wrong password"})),
        )
        .await;
    assert_error(st, &e, 401, "invalid_credentials");
    let (st, e) = s
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"login": "nobody", "password": "whatever1"})),
        )
        .await;
    assert_error(st, &e, 401, "invalid_credentials");

    // Sessions: four so far (register + 3 logins); the current one is marked.
    let (_, v) = s
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"login": "zoe.b_1", "password": "long enough"})),
        )
        .await;
    let token = v["access_token"].as_str().unwrap().to_string();
    let (st, list) = s.get("/api/v1/auth/sessions", &token).await;
    assert_eq!(st, StatusCode::OK);
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 5);
    assert_eq!(list.iter().filter(|x| x["current"] == true).count(), 1);

    // Sign out everywhere else.
    let (st, _) = s.delete("/api/v1/auth/sessions", &token).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, list) = s.get("/api/v1/auth/sessions", &token).await;
    assert_eq!(list.as_array().unwrap().len(), 1);

    let (st, e) = s.call(Method::GET, "/api/v1/users/@me", None, None).await;
    assert_error(st, &e, 401, "unauthorized");
    let (st, e) = s.get("/api/v1/users/@me", "not.a.token").await;
    assert_error(st, &e, 401, "unauthorized");
}

pub async fn refresh_rotation_and_reuse(s: &TestServer) {
    let u = s.register("rita").await;
    let (st, v) = s
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": u.refresh})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let r2 = v["refresh_token"].as_str().unwrap().to_string();
    let a2 = v["access_token"].as_str().unwrap().to_string();
    assert_ne!(r2, u.refresh, "rotated");
    assert_eq!(s.get("/api/v1/users/@me", &a2).await.0, StatusCode::OK);

    // The spent token again: the whole session is revoked, new tokens included.
    let (st, e) = s
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": u.refresh})),
        )
        .await;
    assert_error(st, &e, 401, "token_reused");
    let (st, e) = s
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": r2})),
        )
        .await;
    assert_error(st, &e, 401, "unauthorized");
    let (st, _) = s.get("/api/v1/users/@me", &a2).await;
    assert_eq!(
        st,
        StatusCode::UNAUTHORIZED,
        "the revoked session's access token stops at once"
    );
    let (st, e) = s
        .call(Method::POST, "/api/v1/auth/refresh", None, Some(json!({})))
        .await;
    assert_error(st, &e, 401, "unauthorized");
}

pub async fn logout_and_revocation(s: &TestServer) {
    let u = s.register("leo").await;
    let (_, v) = s
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"login": "leo", "password": "correct horse battery"})),
        )
        .await;
    let other = v["access_token"].as_str().unwrap().to_string();
    assert_eq!(s.get("/api/v1/users/@me", &u.token).await.0, StatusCode::OK);
    let (st, _) = s
        .call(Method::POST, "/api/v1/auth/logout", Some(&u.token), None)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        s.get("/api/v1/users/@me", &u.token).await.0,
        StatusCode::UNAUTHORIZED,
        "refused on the next request"
    );
    let (st, _) = s
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": u.refresh})),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.get("/api/v1/users/@me", &other).await.0,
        StatusCode::OK,
        "other sessions live on"
    );

    // Revoke a session by id from another one.
    let (_, list) = s.get("/api/v1/auth/sessions", &other).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (_, v) = s
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"login": "leo", "password": "correct horse battery"})),
        )
        .await;
    let third = v["access_token"].as_str().unwrap().to_string();
    let (_, list) = s.get("/api/v1/auth/sessions", &other).await;
    let victim = list
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["current"] == false)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, _) = s
        .delete(&format!("/api/v1/auth/sessions/{victim}"), &other)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        s.get("/api/v1/users/@me", &third).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (st, e) = s
        .delete(&format!("/api/v1/auth/sessions/{victim}"), &other)
        .await;
    assert_error(st, &e, 404, "not_found");
    let mallory = s.register("mallory").await;
    let (_, list) = s.get("/api/v1/auth/sessions", &other).await;
    let mine = list[0]["id"].as_str().unwrap().to_string();
    let (st, e) = s
        .delete(&format!("/api/v1/auth/sessions/{mine}"), &mallory.token)
        .await;
    assert_error(st, &e, 404, "not_found");
    assert_eq!(
        s.get("/api/v1/users/@me", &other).await.0,
        StatusCode::OK,
        "nobody else can revoke it"
    );
}

pub async fn web_client_cookie(s: &TestServer) {
    let res = s
        .http
        .post(format!("{}/api/v1/auth/register", s.base))
        .header("x-hearth-client", "web")
        .json(&json!({"username": "webby", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let cookie = res
        .headers()
        .get("set-cookie")
        .expect("cookie")
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Path=/api/v1/auth"),
        "{cookie}"
    );
    let body: Value = res.json().await.unwrap();
    assert!(
        body.get("refresh_token").is_none(),
        "page scripts never see the refresh token"
    );
    let pair = cookie.split(';').next().unwrap().to_string();
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
    let rotated = res
        .headers()
        .get("set-cookie")
        .expect("new cookie")
        .to_str()
        .unwrap()
        .to_string();
    assert_ne!(rotated.split(';').next().unwrap(), pair);
    let body: Value = res.json().await.unwrap();
    assert!(body["access_token"].is_string() && body.get("refresh_token").is_none());
}

pub async fn profiles(s: &TestServer) {
    let u = s.register("pia").await;
    let other = s.register("otto").await;
    let (st, me) = s.get("/api/v1/users/@me", &u.token).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        (me["username"].as_str(), me["mfa_enabled"].as_bool()),
        (Some("pia"), Some(false))
    );
    let (st, me) = s
        .patch(
            "/api/v1/users/@me",
            &u.token,
            json!({"display_name": "  Pia ✨ "}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{me}");
    assert_eq!(me["display_name"], "Pia ✨");
    let (st, e) = s
        .patch(
            "/api/v1/users/@me",
            &u.token,
            json!({"display_name": "x".repeat(33)}),
        )
        .await;
    assert_error(st, &e, 400, "invalid_request");
    let (st, e) = s
        .patch("/api/v1/users/@me", &u.token, json!({"avatar_id": "123"}))
        .await;
    assert_error(st, &e, 400, "invalid_request");
    let (st, me) = s
        .patch("/api/v1/users/@me", &u.token, json!({"display_name": null}))
        .await;
    assert_eq!(
        (st, me["display_name"].clone()),
        (StatusCode::OK, Value::Null)
    );
    let (st, pub_) = s
        .get(&format!("/api/v1/users/{}", u.id), &other.token)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        pub_.get("email").is_none(),
        "public profiles hide private fields"
    );
    let (st, e) = s.get("/api/v1/users/999999999", &other.token).await;
    assert_error(st, &e, 404, "not_found");
}

pub fn unbase32(s: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut buf, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in s.bytes() {
        buf = (buf << 5) | alphabet.iter().position(|&x| x == c).unwrap() as u32;
        bits += 5;
        if bits >= 8 {
            out.push((buf >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    out
}

pub async fn two_factor_sign_in(s: &TestServer) {
    let u = s.register("tina").await;
    let (st, setup) = s
        .post("/api/v1/users/@me/mfa/totp", &u.token, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{setup}");
    let secret = setup["secret"].as_str().unwrap().to_string();
    assert!(
        setup["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    let (st, e) = s
        .put(
            "/api/v1/users/@me/mfa/totp",
            &u.token,
            Some(json!({"secret": secret, "code": "000000x", "password": "correct horse battery"})),
        )
        .await;
    assert_error(st, &e, 400, "invalid_request");
    let now = hearth_types::now_ms() / 1000;
    let confirm = hearth_accounts::totp_at(&unbase32(&secret), now);
    let (st, _) = s
        .put(
            "/api/v1/users/@me/mfa/totp",
            &u.token,
            Some(json!({"secret": secret, "code": confirm, "password": "correct horse battery"})),
        )
        .await;
    // The confirming code is spent; sign in with the next step's.
    let code = hearth_accounts::totp_at(&unbase32(&secret), now + 30);
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, e) = s
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"login": "tina", "password": "correct horse battery"})),
        )
        .await;
    assert_error(st, &e, 401, "mfa_required");
    let (st, e) = s
        .call(Method::POST, "/api/v1/auth/login", None, Some(json!({"login": "tina", "password": "correct horse battery", "totp_code": "123456"})))
        .await;
    if code != "123456" {
        assert_error(st, &e, 401, "invalid_credentials");
    }
    let (st, v) = s
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"login": "tina", "password": "correct horse battery", "totp_code": code})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (_, me) = s.get("/api/v1/users/@me", &u.token).await;
    assert_eq!(me["mfa_enabled"], true);
}

pub async fn communities(s: &TestServer) {
    let owner = s.register("olga").await;
    let member = s.register("max").await;
    let stranger = s.register("sam").await;
    let (cid, general) = s.community(&owner, "Book Club").await;
    let (_, c) = s
        .get(&format!("/api/v1/communities/{cid}"), &owner.token)
        .await;
    assert_eq!(
        (c["name"].as_str(), c["owner_id"].as_str()),
        (Some("Book Club"), Some(owner.id.as_str()))
    );
    let (_, roles) = s
        .get(&format!("/api/v1/communities/{cid}/roles"), &owner.token)
        .await;
    assert_eq!(
        roles[0]["id"],
        cid.as_str(),
        "@everyone has the community's id"
    );
    assert_eq!(roles[0]["name"], "@everyone");
    assert!(
        roles[0]["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("SEND_MESSAGES"))
    );
    let (_, chans) = s
        .get(&format!("/api/v1/communities/{cid}/channels"), &owner.token)
        .await;
    assert_eq!(
        (
            chans[0]["name"].as_str(),
            chans[0]["kind"].as_str(),
            chans[0]["id"].as_str()
        ),
        (Some("general"), Some("text"), Some(general.as_str()))
    );

    // Strangers see nothing: 404, not 403.
    for path in [
        format!("/api/v1/communities/{cid}"),
        format!("/api/v1/communities/{cid}/channels"),
        format!("/api/v1/communities/{cid}/members"),
        format!("/api/v1/channels/{general}/messages"),
    ] {
        let (st, e) = s.get(&path, &stranger.token).await;
        assert_error(st, &e, 404, "not_found");
    }
    s.join(&owner, &cid, &member).await;
    let (_, list) = s.get("/api/v1/communities", &member.token).await;
    assert_eq!(ids(&list), vec![cid.clone()]);
    let (st, e) = s
        .patch(
            &format!("/api/v1/communities/{cid}"),
            &member.token,
            json!({"name": "Mine now"}),
        )
        .await;
    assert_error(st, &e, 403, "forbidden");
    assert_eq!(
        e["error"]["details"]["missing_permissions"],
        json!(["MANAGE_COMMUNITY"])
    );
    let (st, c) = s
        .patch(
            &format!("/api/v1/communities/{cid}"),
            &owner.token,
            json!({"name": "Readers"}),
        )
        .await;
    assert_eq!((st, c["name"].as_str()), (StatusCode::OK, Some("Readers")));
    let (st, e) = s
        .delete(&format!("/api/v1/communities/{cid}"), &member.token)
        .await;
    assert_error(st, &e, 403, "forbidden");
    let (_, members) = s
        .get(&format!("/api/v1/communities/{cid}/members"), &member.token)
        .await;
    assert_eq!(members.as_array().unwrap().len(), 2);
    assert!(members[0]["user"]["username"].is_string() && members[0]["joined_at"].is_string());
    let (st, _) = s
        .delete(&format!("/api/v1/communities/{cid}"), &owner.token)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = s
        .get(&format!("/api/v1/communities/{cid}"), &owner.token)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, list) = s.get("/api/v1/communities", &member.token).await;
    assert!(list.as_array().unwrap().is_empty());
}

pub async fn channels_and_visibility(s: &TestServer) {
    let owner = s.register("cora").await;
    let member = s.register("mo").await;
    let (cid, _) = s.community(&owner, "Lab").await;
    s.join(&owner, &cid, &member).await;
    let (st, e) = s
        .post(
            &format!("/api/v1/communities/{cid}/channels"),
            &member.token,
            json!({"name": "mine"}),
        )
        .await;
    assert_error(st, &e, 403, "forbidden");
    let (st, ch) = s
        .post(
            &format!("/api/v1/communities/{cid}/channels"),
            &owner.token,
            json!({"name": "Secret Plans", "topic": "shh"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{ch}");
    assert_eq!(ch["name"], "secret-plans");
    let secret = ch["id"].as_str().unwrap().to_string();
    let (st, v) = s
        .post(
            &format!("/api/v1/communities/{cid}/channels"),
            &owner.token,
            json!({"name": "Voice", "kind": "voice", "parent_id": secret}),
        )
        .await;
    assert_eq!(
        (st, v["kind"].as_str(), v["parent_id"].as_str()),
        (StatusCode::CREATED, Some("voice"), Some(secret.as_str()))
    );
    let (st, e) = s
        .post(
            &format!("/api/v1/communities/{cid}/channels"),
            &owner.token,
            json!({"name": "x", "kind": "dm"}),
        )
        .await;
    assert_error(st, &e, 400, "invalid_request");
    s.send(&owner, &secret, "the plan").await;

    // Deny VIEW_CHANNEL to @everyone: hidden from the member at once, everywhere.
    let (st, o) = s
        .put(
            &format!("/api/v1/channels/{secret}/overwrites/{cid}"),
            &owner.token,
            Some(json!({"target_type": "role", "deny": ["VIEW_CHANNEL"]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{o}");
    assert_eq!(o["deny"], json!(["VIEW_CHANNEL"]));
    let (_, list) = s
        .get(
            &format!("/api/v1/communities/{cid}/channels"),
            &member.token,
        )
        .await;
    assert!(!ids(&list).contains(&secret), "hidden channel not listed");
    for path in [
        format!("/api/v1/channels/{secret}"),
        format!("/api/v1/channels/{secret}/messages"),
        format!("/api/v1/channels/{secret}/pins"),
    ] {
        let (st, e) = s.get(&path, &member.token).await;
        assert_error(st, &e, 404, "not_found");
    }
    let (st, e) = s
        .post(
            &format!("/api/v1/channels/{secret}/messages"),
            &member.token,
            json!({"content": "hi"}),
        )
        .await;
    assert_error(st, &e, 404, "not_found");
    let (_, list) = s
        .get(&format!("/api/v1/communities/{cid}/channels"), &owner.token)
        .await;
    assert!(ids(&list).contains(&secret), "the owner still sees it");

    // A member overwrite lets this one member back in.
    let (st, _) = s
        .put(
            &format!("/api/v1/channels/{secret}/overwrites/{}", member.id),
            &owner.token,
            Some(json!({"target_type": "member", "allow": ["VIEW_CHANNEL"]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, msgs) = s
        .get(
            &format!("/api/v1/channels/{secret}/messages"),
            &member.token,
        )
        .await;
    assert_eq!((st, msgs.as_array().unwrap().len()), (StatusCode::OK, 1));
    let (st, _) = s
        .delete(
            &format!("/api/v1/channels/{secret}/overwrites/{}", member.id),
            &owner.token,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        s.get(&format!("/api/v1/channels/{secret}"), &member.token)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (st, e) = s
        .put(
            &format!("/api/v1/channels/{secret}/overwrites/{cid}"),
            &member.token,
            Some(json!({"target_type": "role", "allow": ["VIEW_CHANNEL"]})),
        )
        .await;
    assert_error(st, &e, 404, "not_found");
    let (st, e) = s
        .put(
            &format!("/api/v1/channels/{secret}/overwrites/{cid}"),
            &owner.token,
            Some(json!({"target_type": "role", "allow": ["FLY"]})),
        )
        .await;
    assert_error(st, &e, 400, "invalid_request");

    let (st, ch) = s
        .patch(
            &format!("/api/v1/channels/{secret}"),
            &owner.token,
            json!({"topic": null, "name": "Plans B"}),
        )
        .await;
    assert_eq!(
        (st, ch["topic"].clone(), ch["name"].as_str()),
        (StatusCode::OK, Value::Null, Some("plans-b"))
    );
    let (st, _) = s
        .delete(&format!("/api/v1/channels/{secret}"), &owner.token)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        s.get(&format!("/api/v1/channels/{secret}"), &owner.token)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (st, e) = s
        .post(
            &format!("/api/v1/channels/{secret}/messages"),
            &owner.token,
            json!({"content": "into the void"}),
        )
        .await;
    assert_error(st, &e, 404, "not_found");
}

pub async fn invites_and_membership(s: &TestServer) {
    let owner = s.register("ivan").await;
    let a = s.register("ada").await;
    let b = s.register("bea").await;
    let (cid, _) = s.community(&owner, "Guild").await;
    let (st, inv) = s
        .post(
            &format!("/api/v1/communities/{cid}/invites"),
            &owner.token,
            json!({"max_uses": 1, "max_age_seconds": 3600}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{inv}");
    assert_eq!(
        (
            inv["uses"].as_i64(),
            inv["max_uses"].as_i64(),
            inv["community_id"].as_str()
        ),
        (Some(0), Some(1), Some(cid.as_str()))
    );
    assert!(inv["expires_at"].is_string());
    let code = inv["code"].as_str().unwrap();
    let (st, pv) = s
        .call(Method::GET, &format!("/api/v1/invites/{code}"), None, None)
        .await;
    assert_eq!(st, StatusCode::OK, "previews are public");
    assert_eq!(
        (
            pv["community"]["name"].as_str(),
            pv["member_count"].as_i64()
        ),
        (Some("Guild"), Some(1))
    );
    let (st, c) = s
        .post(&format!("/api/v1/invites/{code}"), &a.token, json!({}))
        .await;
    assert_eq!((st, c["id"].as_str()), (StatusCode::OK, Some(cid.as_str())));
    let (st, _) = s
        .post(&format!("/api/v1/invites/{code}"), &a.token, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "joining again is harmless");
    let (st, e) = s
        .post(&format!("/api/v1/invites/{code}"), &b.token, json!({}))
        .await;
    assert_error(st, &e, 404, "not_found");
    let (st, e) = s
        .call(Method::GET, "/api/v1/invites/nope-!!", None, None)
        .await;
    assert_error(st, &e, 404, "not_found");
    for bad in [
        json!({"max_uses": -1}),
        json!({"max_uses": 5000}),
        json!({"max_age_seconds": 5}),
        json!({"max_uses": "x"}),
    ] {
        let (st, e) = s
            .post(
                &format!("/api/v1/communities/{cid}/invites"),
                &owner.token,
                bad,
            )
            .await;
        assert_error(st, &e, 400, "invalid_request");
    }
    let (_, list) = s
        .get(&format!("/api/v1/communities/{cid}/invites"), &owner.token)
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (st, e) = s
        .get(&format!("/api/v1/communities/{cid}/invites"), &a.token)
        .await;
    assert_error(st, &e, 403, "forbidden");

    // Leave; the owner cannot.
    let (st, _) = s
        .delete(&format!("/api/v1/communities/{cid}/members/@me"), &a.token)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        s.get(&format!("/api/v1/communities/{cid}"), &a.token)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (st, e) = s
        .delete(
            &format!("/api/v1/communities/{cid}/members/@me"),
            &owner.token,
        )
        .await;
    assert_error(st, &e, 409, "conflict");
}

pub async fn bans_and_kicks(s: &TestServer) {
    let owner = s.register("bo").await;
    let a = s.register("al").await;
    let b = s.register("bi").await;
    let (cid, general) = s.community(&owner, "Arena").await;
    s.join(&owner, &cid, &a).await;
    s.join(&owner, &cid, &b).await;
    let kept = s.send(&a, &general, "I was here").await;
    let (st, e) = s
        .delete(
            &format!("/api/v1/communities/{cid}/members/{}", b.id),
            &a.token,
        )
        .await;
    assert_error(st, &e, 403, "forbidden");
    assert_eq!(
        e["error"]["details"]["missing_permissions"],
        json!(["KICK_MEMBERS"])
    );
    let (st, e) = s
        .delete(
            &format!("/api/v1/communities/{cid}/members/{}", owner.id),
            &a.token,
        )
        .await;
    assert_error(st, &e, 403, "forbidden");
    let (st, _) = s
        .delete(
            &format!("/api/v1/communities/{cid}/members/{}", b.id),
            &owner.token,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        s.get(&format!("/api/v1/channels/{general}/messages"), &b.token)
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    let (st, _) = s
        .put(
            &format!("/api/v1/communities/{cid}/bans/{}", a.id),
            &owner.token,
            Some(json!({"reason": "spam"})),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        s.get(&format!("/api/v1/communities/{cid}"), &a.token)
            .await
            .0,
        StatusCode::NOT_FOUND,
        "a ban removes the member at once"
    );
    let (_, bans) = s
        .get(&format!("/api/v1/communities/{cid}/bans"), &owner.token)
        .await;
    assert_eq!(
        (bans[0]["user_id"].as_str(), bans[0]["reason"].as_str()),
        (Some(a.id.as_str()), Some("spam"))
    );
    let (_, inv) = s
        .post(
            &format!("/api/v1/communities/{cid}/invites"),
            &owner.token,
            json!({}),
        )
        .await;
    let code = inv["code"].as_str().unwrap();
    let (st, e) = s
        .post(&format!("/api/v1/invites/{code}"), &a.token, json!({}))
        .await;
    assert_error(st, &e, 403, "forbidden");
    // Their messages stay: a ban does not lose what was stored.
    let (_, msgs) = s
        .get(
            &format!("/api/v1/channels/{general}/messages"),
            &owner.token,
        )
        .await;
    assert!(ids(&msgs).contains(&kept["id"].as_str().unwrap().to_string()));
    let (st, _) = s
        .delete(
            &format!("/api/v1/communities/{cid}/bans/{}", a.id),
            &owner.token,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = s
        .post(&format!("/api/v1/invites/{code}"), &a.token, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK);
    // Ban without a body works too; unknown users are not found.
    let (st, _) = s
        .put(
            &format!("/api/v1/communities/{cid}/bans/{}", b.id),
            &owner.token,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, e) = s
        .put(
            &format!("/api/v1/communities/{cid}/bans/4242424242"),
            &owner.token,
            None,
        )
        .await;
    assert_error(st, &e, 404, "not_found");
}

pub async fn roles_and_hierarchy(s: &TestServer) {
    let owner = s.register("rex").await;
    let mgr = s.register("meg").await;
    let pleb = s.register("pat").await;
    let (cid, general) = s.community(&owner, "Org").await;
    s.join(&owner, &cid, &mgr).await;
    s.join(&owner, &cid, &pleb).await;
    let (st, mod_role) = s.post(&format!("/api/v1/communities/{cid}/roles"), &owner.token, json!({"name": "Managers", "permissions": ["MANAGE_ROLES", "MANAGE_CHANNELS", "KICK_MEMBERS"], "color": 0x3366ff, "position": 10})).await;
    assert_eq!(st, StatusCode::CREATED, "{mod_role}");
    assert_eq!(
        mod_role["permissions"],
        json!(["MANAGE_CHANNELS", "MANAGE_ROLES", "KICK_MEMBERS"])
    );
    let rid = mod_role["id"].as_str().unwrap().to_string();
    let (st, e) = s
        .post(
            &format!("/api/v1/communities/{cid}/roles"),
            &owner.token,
            json!({"name": "x", "permissions": ["SUPERPOWER"]}),
        )
        .await;
    assert_error(st, &e, 400, "invalid_request");
    let (st, _) = s
        .put(
            &format!("/api/v1/communities/{cid}/members/{}/roles/{rid}", mgr.id),
            &owner.token,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, m) = s
        .get(
            &format!("/api/v1/communities/{cid}/members/{}", mgr.id),
            &owner.token,
        )
        .await;
    assert_eq!(m["roles"], json!([rid]));

    // The new permission takes effect on the next request.
    let (st, _) = s
        .post(
            &format!("/api/v1/communities/{cid}/channels"),
            &mgr.token,
            json!({"name": "managed"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    // Nobody grants what they lack.
    let (st, e) = s
        .post(
            &format!("/api/v1/communities/{cid}/roles"),
            &mgr.token,
            json!({"name": "Admins", "permissions": ["ADMINISTRATOR"], "position": 1}),
        )
        .await;
    assert_error(st, &e, 403, "forbidden");
    assert_eq!(
        e["error"]["details"]["missing_permissions"],
        json!(["ADMINISTRATOR"])
    );
    let (st, e) = s
        .put(
            &format!("/api/v1/channels/{general}/overwrites/{cid}"),
            &mgr.token,
            Some(json!({"target_type": "role", "allow": ["BAN_MEMBERS"]})),
        )
        .await;
    assert_error(st, &e, 403, "forbidden");
    // Nobody edits a role at or above their own.
    let (st, e) = s
        .patch(
            &format!("/api/v1/communities/{cid}/roles/{rid}"),
            &mgr.token,
            json!({"name": "Kings"}),
        )
        .await;
    assert_error(st, &e, 403, "forbidden");
    let (st, e) = s
        .post(
            &format!("/api/v1/communities/{cid}/roles"),
            &mgr.token,
            json!({"name": "Peer", "position": 10}),
        )
        .await;
    assert_error(st, &e, 403, "forbidden");
    let (st, low) = s
        .post(
            &format!("/api/v1/communities/{cid}/roles"),
            &mgr.token,
            json!({"name": "Helpers", "permissions": ["KICK_MEMBERS"], "position": 2}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{low}");
    let low_id = low["id"].as_str().unwrap().to_string();
    let (st, _) = s
        .put(
            &format!(
                "/api/v1/communities/{cid}/members/{}/roles/{low_id}",
                pleb.id
            ),
            &mgr.token,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, e) = s
        .put(
            &format!("/api/v1/communities/{cid}/members/{}/roles/{rid}", pleb.id),
            &mgr.token,
            None,
        )
        .await;
    assert_error(st, &e, 403, "forbidden");
    // Hierarchy for kicks: pleb (Helpers, pos 2) cannot kick mgr (pos 10); mgr can kick pleb.
    let (st, e) = s
        .delete(
            &format!("/api/v1/communities/{cid}/members/{}", mgr.id),
            &pleb.token,
        )
        .await;
    assert_error(st, &e, 403, "forbidden");
    // @everyone: editable permissions, fixed name, never deleted.
    let (st, e) = s
        .delete(
            &format!("/api/v1/communities/{cid}/roles/{cid}"),
            &owner.token,
        )
        .await;
    assert_error(st, &e, 400, "invalid_request");
    let (st, e) = s
        .patch(
            &format!("/api/v1/communities/{cid}/roles/{cid}"),
            &owner.token,
            json!({"name": "all"}),
        )
        .await;
    assert_error(st, &e, 400, "invalid_request");
    let (st, ev) = s
        .patch(
            &format!("/api/v1/communities/{cid}/roles/{cid}"),
            &owner.token,
            json!({"permissions": ["VIEW_CHANNEL", "READ_MESSAGE_HISTORY"]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{ev}");
    let (st, e) = s
        .post(
            &format!("/api/v1/channels/{general}/messages"),
            &pleb.token,
            json!({"content": "can I talk?"}),
        )
        .await;
    assert_error(st, &e, 403, "forbidden");
    assert_eq!(
        e["error"]["details"]["missing_permissions"],
        json!(["SEND_MESSAGES"])
    );
    // Deleting the role takes its powers away at once.
    let (st, _) = s
        .delete(
            &format!("/api/v1/communities/{cid}/roles/{rid}"),
            &owner.token,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = s
        .post(
            &format!("/api/v1/communities/{cid}/channels"),
            &mgr.token,
            json!({"name": "again"}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (_, m) = s
        .get(
            &format!("/api/v1/communities/{cid}/members/{}", mgr.id),
            &owner.token,
        )
        .await;
    assert_eq!(m["roles"], json!([]));
}

pub async fn timeouts(s: &TestServer) {
    let owner = s.register("tom").await;
    let m = s.register("tim").await;
    let (cid, general) = s.community(&owner, "Quiet").await;
    s.join(&owner, &cid, &m).await;
    s.send(&m, &general, "before").await;
    let until = hearth_types::format_rfc3339(hearth_types::now_ms() + 600_000);
    let (st, e) = s
        .patch(
            &format!("/api/v1/communities/{cid}/members/{}", owner.id),
            &m.token,
            json!({"timed_out_until": until}),
        )
        .await;
    assert_error(st, &e, 403, "forbidden");
    let (st, mem) = s
        .patch(
            &format!("/api/v1/communities/{cid}/members/{}", m.id),
            &owner.token,
            json!({"timed_out_until": until}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{mem}");
    assert!(mem["timed_out_until"].is_string());
    let (st, e) = s
        .post(
            &format!("/api/v1/channels/{general}/messages"),
            &m.token,
            json!({"content": "muted?"}),
        )
        .await;
    assert_error(st, &e, 403, "forbidden");
    let (st, msgs) = s
        .get(&format!("/api/v1/channels/{general}/messages"), &m.token)
        .await;
    assert_eq!(
        (st, msgs.as_array().unwrap().len()),
        (StatusCode::OK, 1),
        "a timed-out member still reads"
    );
    let far = hearth_types::format_rfc3339(hearth_types::now_ms() + 40 * 24 * 3600 * 1000);
    let (st, e) = s
        .patch(
            &format!("/api/v1/communities/{cid}/members/{}", m.id),
            &owner.token,
            json!({"timed_out_until": far}),
        )
        .await;
    assert_error(st, &e, 400, "invalid_request");
    let (st, e) = s
        .patch(
            &format!("/api/v1/communities/{cid}/members/{}", m.id),
            &owner.token,
            json!({"timed_out_until": "tomorrow"}),
        )
        .await;
    assert_error(st, &e, 400, "invalid_request");
    let (st, _) = s
        .patch(
            &format!("/api/v1/communities/{cid}/members/{}", m.id),
            &owner.token,
            json!({"timed_out_until": null}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    s.send(&m, &general, "free again").await;
    let (st, mem) = s
        .patch(
            &format!("/api/v1/communities/{cid}/members/@me"),
            &m.token,
            json!({"nickname": "Timmy"}),
        )
        .await;
    assert_eq!(
        (st, mem["nickname"].as_str()),
        (StatusCode::OK, Some("Timmy"))
    );
    let (st, e) = s
        .patch(
            &format!("/api/v1/communities/{cid}/members/{}", owner.id),
            &m.token,
            json!({"nickname": "Boss"}),
        )
        .await;
    assert_error(st, &e, 403, "forbidden");
}

pub async fn messages_lifecycle(s: &TestServer) {
    let owner = s.register("mia").await;
    let other = s.register("noa").await;
    let (cid, ch) = s.community(&owner, "Talk").await;
    s.join(&owner, &cid, &other).await;
    let (st, m) = s
        .post(
            &format!("/api/v1/channels/{ch}/messages"),
            &owner.token,
            json!({"content": "  hello world  ", "nonce": "abc-1"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{m}");
    assert_eq!(
        (
            m["content"].as_str(),
            m["nonce"].as_str(),
            m["community_id"].as_str()
        ),
        (Some("hello world"), Some("abc-1"), Some(cid.as_str()))
    );
    assert_eq!(m["author"]["username"], "mia");
    assert_eq!(
        (m["pinned"].as_bool(), m["edited_at"].clone()),
        (Some(false), Value::Null)
    );
    let mid = m["id"].as_str().unwrap().to_string();
    // Same nonce, same author, same channel: 200 with the first message, never a duplicate.
    let (st, again) = s
        .post(
            &format!("/api/v1/channels/{ch}/messages"),
            &owner.token,
            json!({"content": "different", "nonce": "abc-1"}),
        )
        .await;
    assert_eq!(
        (st, again["id"].as_str(), again["content"].as_str()),
        (StatusCode::OK, Some(mid.as_str()), Some("hello world"))
    );
    let (_, list) = s
        .get(&format!("/api/v1/channels/{ch}/messages"), &owner.token)
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (st, _) = s
        .post(
            &format!("/api/v1/channels/{ch}/messages"),
            &other.token,
            json!({"content": "mine", "nonce": "abc-1"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "nonces are per author");

    let (st, reply) = s
        .post(
            &format!("/api/v1/channels/{ch}/messages"),
            &other.token,
            json!({"content": "re", "reply_to_id": mid}),
        )
        .await;
    assert_eq!(
        (st, reply["reply_to_id"].as_str()),
        (StatusCode::CREATED, Some(mid.as_str()))
    );
    let (st, e) = s
        .post(
            &format!("/api/v1/channels/{ch}/messages"),
            &other.token,
            json!({"content": "re", "reply_to_id": "12345"}),
        )
        .await;
    assert_error(st, &e, 400, "invalid_request");

    // Edit: the author's only.
    let (st, e) = s
        .patch(
            &format!("/api/v1/channels/{ch}/messages/{mid}"),
            &other.token,
            json!({"content": "hijack"}),
        )
        .await;
    assert_error(st, &e, 403, "forbidden");
    let (st, ed) = s
        .patch(
            &format!("/api/v1/channels/{ch}/messages/{mid}"),
            &owner.token,
            json!({"content": "hello, edited"}),
        )
        .await;
    assert_eq!(
        (st, ed["content"].as_str()),
        (StatusCode::OK, Some("hello, edited"))
    );
    assert!(ed["edited_at"].is_string());
    let (_, got) = s
        .get(
            &format!("/api/v1/channels/{ch}/messages/{mid}"),
            &other.token,
        )
        .await;
    assert_eq!(got["content"], "hello, edited");

    // Delete: the author's, or with MANAGE_MESSAGES.
    let rid = reply["id"].as_str().unwrap();
    let (st, e) = s
        .delete(
            &format!("/api/v1/channels/{ch}/messages/{mid}"),
            &other.token,
        )
        .await;
    assert_error(st, &e, 403, "forbidden");
    assert_eq!(
        s.delete(
            &format!("/api/v1/channels/{ch}/messages/{rid}"),
            &owner.token
        )
        .await
        .0,
        StatusCode::NO_CONTENT,
        "moderators delete others'"
    );
    assert_eq!(
        s.delete(
            &format!("/api/v1/channels/{ch}/messages/{mid}"),
            &owner.token
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let (st, e) = s
        .get(
            &format!("/api/v1/channels/{ch}/messages/{mid}"),
            &owner.token,
        )
        .await;
    assert_error(st, &e, 404, "not_found");
    assert_eq!(
        s.post(
            &format!("/api/v1/channels/{ch}/typing"),
            &other.token,
            json!({})
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
}

pub async fn message_pages(s: &TestServer) {
    let u = s.register("paige").await;
    let (_, ch) = s.community(&u, "Pages").await;
    let mut sent = Vec::new();
    for i in 0..120 {
        sent.push(
            s.send(&u, &ch, &format!("m{i}")).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let (_, newest) = s
        .get(&format!("/api/v1/channels/{ch}/messages"), &u.token)
        .await;
    let newest = ids(&newest);
    assert_eq!(newest.len(), 50, "default limit");
    assert_eq!(
        newest,
        sent[70..].iter().rev().cloned().collect::<Vec<_>>(),
        "newest first"
    );
    let (_, older) = s
        .get(
            &format!(
                "/api/v1/channels/{ch}/messages?before={}&limit=100",
                newest[49]
            ),
            &u.token,
        )
        .await;
    assert_eq!(
        ids(&older),
        sent[..70].iter().rev().cloned().collect::<Vec<_>>()
    );
    let (_, after) = s
        .get(
            &format!("/api/v1/channels/{ch}/messages?after={}&limit=5", sent[10]),
            &u.token,
        )
        .await;
    assert_eq!(ids(&after), sent[11..16].to_vec(), "after: oldest first");
    // Catch-up: walking `after` pages yields every message once, in order.
    let mut seen = Vec::new();
    let mut cursor = sent[0].clone();
    loop {
        let (_, page) = s
            .get(
                &format!("/api/v1/channels/{ch}/messages?after={cursor}&limit=37"),
                &u.token,
            )
            .await;
        let page = ids(&page);
        if page.is_empty() {
            break;
        }
        cursor = page.last().unwrap().clone();
        seen.extend(page);
    }
    assert_eq!(seen, sent[1..].to_vec());
    // IDs sort by creation time.
    let mut sorted = sent
        .iter()
        .map(|x| x.parse::<i64>().unwrap())
        .collect::<Vec<_>>();
    let orig = sorted.clone();
    sorted.sort();
    assert_eq!(sorted, orig);
}

pub async fn reactions_and_pins(s: &TestServer) {
    let owner = s.register("rae").await;
    let other = s.register("ray").await;
    let (cid, ch) = s.community(&owner, "Fun").await;
    s.join(&owner, &cid, &other).await;
    let m = s.send(&other, &ch, "react to me").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let thumbs = "%F0%9F%91%8D";
    let party = "%F0%9F%8E%89";
    assert_eq!(
        s.put(
            &format!("/api/v1/channels/{ch}/messages/{m}/reactions/{thumbs}"),
            &owner.token,
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.put(
            &format!("/api/v1/channels/{ch}/messages/{m}/reactions/{thumbs}"),
            &owner.token,
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT,
        "idempotent"
    );
    assert_eq!(
        s.put(
            &format!("/api/v1/channels/{ch}/messages/{m}/reactions/{thumbs}"),
            &other.token,
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.put(
            &format!("/api/v1/channels/{ch}/messages/{m}/reactions/{party}"),
            &other.token,
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let (_, got) = s
        .get(&format!("/api/v1/channels/{ch}/messages/{m}"), &owner.token)
        .await;
    let find = |v: &Value, e: &str| {
        v["reactions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["emoji"] == e)
            .cloned()
    };
    assert_eq!(got["reactions"].as_array().unwrap().len(), 2);
    assert_eq!(
        find(&got, "👍"),
        Some(json!({"emoji": "👍", "count": 2, "me": true}))
    );
    assert_eq!(
        find(&got, "🎉"),
        Some(json!({"emoji": "🎉", "count": 1, "me": false}))
    );
    let (st, e) = s
        .put(
            &format!("/api/v1/channels/{ch}/messages/{m}/reactions/abc"),
            &owner.token,
            None,
        )
        .await;
    assert_error(st, &e, 400, "invalid_request");
    assert_eq!(
        s.delete(
            &format!("/api/v1/channels/{ch}/messages/{m}/reactions/{thumbs}"),
            &owner.token
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let (_, got) = s
        .get(&format!("/api/v1/channels/{ch}/messages/{m}"), &owner.token)
        .await;
    assert_eq!(
        find(&got, "👍"),
        Some(json!({"emoji": "👍", "count": 1, "me": false}))
    );

    let (st, e) = s
        .put(
            &format!("/api/v1/channels/{ch}/pins/{m}"),
            &other.token,
            None,
        )
        .await;
    assert_error(st, &e, 403, "forbidden");
    assert_eq!(
        s.put(
            &format!("/api/v1/channels/{ch}/pins/{m}"),
            &owner.token,
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let (_, pins) = s
        .get(&format!("/api/v1/channels/{ch}/pins"), &other.token)
        .await;
    assert_eq!(ids(&pins), vec![m.clone()]);
    assert_eq!(pins[0]["pinned"], true);
    assert_eq!(
        s.delete(&format!("/api/v1/channels/{ch}/pins/{m}"), &owner.token)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (_, pins) = s
        .get(&format!("/api/v1/channels/{ch}/pins"), &other.token)
        .await;
    assert!(pins.as_array().unwrap().is_empty());
    let (st, e) = s
        .put(
            &format!("/api/v1/channels/{ch}/pins/999999"),
            &owner.token,
            None,
        )
        .await;
    assert_error(st, &e, 404, "not_found");
}

pub async fn mentions_and_read_states(s: &TestServer) {
    let owner = s.register("men").await;
    let a = s.register("ann").await;
    let b = s.register("ben").await;
    let outsider = s.register("out").await;
    let (cid, ch) = s.community(&owner, "Pings").await;
    s.join(&owner, &cid, &a).await;
    s.join(&owner, &cid, &b).await;
    let (_, role) = s
        .post(
            &format!("/api/v1/communities/{cid}/roles"),
            &owner.token,
            json!({"name": "Pingable"}),
        )
        .await;
    let rid = role["id"].as_str().unwrap().to_string();
    s.put(
        &format!("/api/v1/communities/{cid}/members/{}/roles/{rid}", b.id),
        &owner.token,
        None,
    )
    .await;
    let m = s
        .send(
            &owner,
            &ch,
            &format!("hey <@{}> and <@{}> and <@&{rid}>", a.id, outsider.id),
        )
        .await;
    assert_eq!(m["mentions"], json!([a.id]), "only members are mentioned");
    assert_eq!(m["mention_roles"], json!([rid]));
    // @everyone only pings for authors with MENTION_EVERYONE.
    let plain = s.send(&a, &ch, "@everyone look").await;
    assert_eq!(plain["mention_everyone"], false);
    let loud = s.send(&owner, &ch, "@everyone look").await;
    assert_eq!(loud["mention_everyone"], true);

    let count = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|r| r["channel_id"] == ch.as_str())
            .map(|r| r["mention_count"].as_i64().unwrap())
    };
    let (_, rs) = s.get("/api/v1/read-states", &a.token).await;
    assert_eq!(count(&rs), Some(2), "direct mention + @everyone");
    let (_, rs) = s.get("/api/v1/read-states", &b.token).await;
    assert_eq!(count(&rs), Some(2), "role mention + @everyone");
    let last = loud["id"].as_str().unwrap();
    let (st, _) = s
        .put(
            &format!("/api/v1/channels/{ch}/read"),
            &a.token,
            Some(json!({"message_id": last})),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, rs) = s.get("/api/v1/read-states", &a.token).await;
    let mine = rs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["channel_id"] == ch.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        (
            mine["last_read_id"].as_str(),
            mine["mention_count"].as_i64()
        ),
        (Some(last), Some(0))
    );
    let (st, e) = s
        .put(
            &format!("/api/v1/channels/{ch}/read"),
            &a.token,
            Some(json!({"message_id": "9223372036854775807"})),
        )
        .await;
    // Contract v1.1: a message id that is not in the channel is 404.
    assert_error(st, &e, 404, "not_found");
}

pub async fn dms(s: &TestServer) {
    let a = s.register("dana").await;
    let b = s.register("dora").await;
    let c = s.register("dina").await;
    // Contract v1.1: DMs need a shared community (see trust.rs for the refusals).
    let (club, _) = s.community(&a, "Club").await;
    s.join(&a, &club, &b).await;
    s.join(&a, &club, &c).await;
    let (st, dm) = s
        .post("/api/v1/dms", &a.token, json!({"user_ids": [b.id]}))
        .await;
    assert_eq!(st, StatusCode::OK, "{dm}");
    assert_eq!(
        (dm["kind"].as_str(), dm["community_id"].clone()),
        (Some("dm"), Value::Null)
    );
    assert_eq!(dm["recipients"].as_array().unwrap().len(), 2);
    let (_, again) = s
        .post("/api/v1/dms", &b.token, json!({"user_ids": [a.id]}))
        .await;
    assert_eq!(
        again["id"], dm["id"],
        "the same DM every time, from either side"
    );
    let dm_id = dm["id"].as_str().unwrap();
    s.send(&b, dm_id, "psst").await;
    let (_, msgs) = s
        .get(&format!("/api/v1/channels/{dm_id}/messages"), &a.token)
        .await;
    assert_eq!(msgs[0]["content"], "psst");
    assert_eq!(msgs[0]["community_id"], Value::Null);
    let (st, e) = s
        .get(&format!("/api/v1/channels/{dm_id}/messages"), &c.token)
        .await;
    assert_error(st, &e, 404, "not_found");
    let (st, g) = s
        .post("/api/v1/dms", &a.token, json!({"user_ids": [b.id, c.id]}))
        .await;
    assert_eq!((st, g["kind"].as_str()), (StatusCode::OK, Some("group_dm")));
    let (_, g2) = s
        .post("/api/v1/dms", &a.token, json!({"user_ids": [b.id, c.id]}))
        .await;
    assert_ne!(g2["id"], g["id"], "2-9 ids make a new group DM");
    let (_, list) = s.get("/api/v1/dms", &a.token).await;
    assert_eq!(list.as_array().unwrap().len(), 3);
    for bad in [
        json!({"user_ids": []}),
        json!({"user_ids": [a.id]}),
        json!({"user_ids": "x"}),
    ] {
        let (st, e) = s.post("/api/v1/dms", &a.token, bad).await;
        assert_error(st, &e, 400, "invalid_request");
    }
    let many: Vec<String> = (0..10).map(|i| format!("{}", 1000 + i)).collect();
    let (st, e) = s
        .post("/api/v1/dms", &a.token, json!({"user_ids": many}))
        .await;
    assert_error(st, &e, 400, "invalid_request");
}

pub async fn bad_input_is_refused_cleanly(s: &TestServer) {
    let u = s.register("bad").await;
    let (cid, ch) = s.community(&u, "Robust").await;
    let first = s.send(&u, &ch, "keep me").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let url = format!("{}/api/v1/channels/{ch}/messages", s.base);
    let raw = |body: &'static str| {
        s.http
            .post(&url)
            .bearer_auth(&u.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (body, why) in [
        ("{", "malformed JSON"),
        ("[]", "wrong top-level type"),
        (r#"{"content": 5}"#, "wrong field type"),
        (r#"{"content": "x", "extra": true}"#, "unknown field"),
        (r#"{"content": ""}"#, "empty"),
        (r#"{"content": "   "}"#, "blank after trimming"),
        (r#"{"content": "nul \u0000 here"}"#, "NUL"),
        (r#"{"content": "x", "nonce": ""}"#, "empty nonce"),
        ("null", "null body"),
    ] {
        let res = raw(body).await.unwrap();
        let st = res.status();
        let v: Value = res.json().await.unwrap();
        assert_error(st, &v, 400, "invalid_request");
        assert!(!v.to_string().contains("panicked"), "{why}");
    }
    let long = "x".repeat(4001);
    let (st, e) = s
        .post(
            &format!("/api/v1/channels/{ch}/messages"),
            &u.token,
            json!({"content": long}),
        )
        .await;
    assert_error(st, &e, 400, "invalid_request");
    assert!(e["error"]["details"]["fields"]["content"].is_string());
    let exact = "y".repeat(4000);
    assert_eq!(
        s.post(
            &format!("/api/v1/channels/{ch}/messages"),
            &u.token,
            json!({"content": exact})
        )
        .await
        .0,
        StatusCode::CREATED
    );
    let (st, e) = s
        .post(
            &format!("/api/v1/channels/{ch}/messages"),
            &u.token,
            json!({"content": "x", "nonce": "n".repeat(65)}),
        )
        .await;
    assert_error(st, &e, 400, "invalid_request");

    // Wrong content type, limits, IDs.
    let res = s
        .http
        .post(&url)
        .bearer_auth(&u.token)
        .header("content-type", "text/plain")
        .body("{\"content\":\"x\"}")
        .send()
        .await
        .unwrap();
    let st = res.status();
    assert_error(
        st,
        &res.json::<Value>().await.unwrap(),
        415,
        "unsupported_media_type",
    );
    for q in [
        "limit=101",
        "limit=0",
        "limit=-1",
        "limit=abc",
        "before=abc",
        "after=-5",
    ] {
        let (st, e) = s
            .get(&format!("/api/v1/channels/{ch}/messages?{q}"), &u.token)
            .await;
        assert_error(st, &e, 400, "invalid_request");
    }
    let (st, e) = s.get("/api/v1/channels/not-an-id/messages", &u.token).await;
    assert_error(st, &e, 400, "invalid_request");
    let (st, e) = s.get("/api/v1/channels/123456789/messages", &u.token).await;
    assert_error(st, &e, 404, "not_found");
    let (st, e) = s
        .get("/api/v1/channels/99999999999999999999/messages", &u.token)
        .await;
    assert_error(st, &e, 400, "invalid_request");

    // A 3 MB body: 413, read no further.
    let big = format!("{{\"content\": \"{}\"}}", "z".repeat(3 * 1024 * 1024));
    let res = s
        .http
        .post(&url)
        .bearer_auth(&u.token)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    let st = res.status();
    assert_error(
        st,
        &res.json::<Value>().await.unwrap(),
        413,
        "payload_too_large",
    );

    // Hostile strings are stored and returned exactly.
    for text in [
        "'); DROP TABLE messages; --",
        "\u{202E}gnp.exe",
        "👩‍👩‍👧‍👦 🏳️‍🌈",
        "<script>alert(1)</script>",
        "$1 ?1 :x %s {{x}}",
    ] {
        let m = s.send(&u, &ch, text).await;
        assert_eq!(m["content"], text);
    }
    let (st, e) = s
        .post(
            "/api/v1/communities",
            &u.token,
            json!({"name": "evil\u{202E}name"}),
        )
        .await;
    assert_error(st, &e, 400, "invalid_request");

    // Nothing stored before was changed by any of it.
    let (_, msgs) = s
        .get(
            &format!("/api/v1/channels/{ch}/messages?limit=100"),
            &u.token,
        )
        .await;
    let all = ids(&msgs);
    assert_eq!(all.len(), 7);
    assert_eq!(all.last().unwrap(), &first);
    let (_, kept) = s
        .get(&format!("/api/v1/channels/{ch}/messages/{first}"), &u.token)
        .await;
    assert_eq!(kept["content"], "keep me");
    let (_, c) = s.get(&format!("/api/v1/communities/{cid}"), &u.token).await;
    assert_eq!(c["name"], "Robust");
}

pub async fn burst_is_rate_limited(s: &TestServer) {
    // Runs with the shipped limits (see main.rs), not the test harness's.
    let u = s.register("burst").await;
    let (_, ch) = s.community(&u, "Flood").await;
    let before = s
        .get(&format!("/api/v1/channels/{ch}/messages"), &u.token)
        .await
        .1;
    let mut tasks = Vec::new();
    for i in 0..600 {
        let http = s.http.clone();
        let url = format!("{}/api/v1/channels/{ch}/messages", s.base);
        let token = u.token.clone();
        tasks.push(tokio::spawn(async move {
            let res = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({"content": format!("flood {i}")}))
                .send()
                .await
                .expect("send");
            let st = res.status();
            let retry = res
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            let body: Value = res.json().await.expect("json");
            (st, retry, body)
        }));
    }
    let (mut ok, mut limited) = (0, 0);
    for t in tasks {
        let (st, retry, body) = t.await.unwrap();
        match st.as_u16() {
            201 => ok += 1,
            429 => {
                limited += 1;
                assert_error(st, &body, 429, "rate_limited");
                assert!(
                    retry.unwrap().parse::<u64>().unwrap() >= 1,
                    "Retry-After in seconds"
                );
                assert!(body["error"]["details"]["retry_after_ms"].as_u64().unwrap() > 0);
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(
        limited > 300,
        "most of a 600-request burst is refused ({ok} accepted)"
    );
    assert!(ok >= 50, "the burst allowance is honoured ({ok})");
    // The limits refill: after a short rest the same user is served again.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (st, after) = s
        .get(
            &format!("/api/v1/channels/{ch}/messages?limit=100"),
            &u.token,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{after}");
    assert!(before.as_array().unwrap().is_empty());
    assert_eq!(
        after.as_array().unwrap().len(),
        ok.min(100),
        "every accepted message was stored, no others"
    );
}

pub async fn operations(s: &TestServer) {
    let (st, v) = s.call(Method::GET, "/healthz", None, None).await;
    assert_eq!((st, v["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (st, v) = s.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["checks"]["database"]["ok"], true);
    let (st, v) = s.call(Method::GET, "/readyz?scope=node", None, None).await;
    assert_eq!(
        (st, &v["checks"]["scope"]),
        (StatusCode::OK, &json!("node")),
        "{v}"
    );
    let (st, v) = s.call(Method::GET, "/readyz?scope=nodes", None, None).await;
    assert_error(st, &v, 400, "invalid_request");
    let u = s.register("ops").await;
    s.get("/api/v1/users/@me", &u.token).await;
    let res = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap();
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = res.text().await.unwrap();
    assert!(
        text.contains(
            r#"hearth_http_requests_total{method="GET",route="/api/v1/users/@me",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains("hearth_http_request_duration_seconds_bucket"));
    let res = s
        .http
        .get(format!("{}/api/v1/users/@me", s.base))
        .header("x-request-id", "trace-me-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-me-1");

    // The OpenAPI document covers the contract and matches the committed copy.
    let (st, doc) = s
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(st, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/auth/register", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/auth/sessions", "get"),
        ("/api/v1/auth/sessions/{id}", "delete"),
        ("/api/v1/users/@me", "get"),
        ("/api/v1/users/@me", "patch"),
        ("/api/v1/users/{id}", "get"),
        ("/api/v1/communities", "post"),
        ("/api/v1/communities", "get"),
        ("/api/v1/communities/{id}", "get"),
        ("/api/v1/communities/{id}", "patch"),
        ("/api/v1/communities/{id}", "delete"),
        ("/api/v1/communities/{id}/members", "get"),
        ("/api/v1/communities/{id}/members/{user_id}", "delete"),
        ("/api/v1/communities/{id}/members/@me", "delete"),
        ("/api/v1/gateway", "get"),
        ("/api/v1/communities/{id}/members/{user_id}", "patch"),
        ("/api/v1/communities/{id}/bans/{user_id}", "put"),
        ("/api/v1/communities/{id}/bans/{user_id}", "delete"),
        ("/api/v1/communities/{id}/invites", "post"),
        ("/api/v1/invites/{code}", "get"),
        ("/api/v1/invites/{code}", "post"),
        ("/api/v1/communities/{id}/roles", "post"),
        ("/api/v1/communities/{id}/roles", "get"),
        ("/api/v1/communities/{id}/roles/{role_id}", "patch"),
        ("/api/v1/communities/{id}/roles/{role_id}", "delete"),
        (
            "/api/v1/communities/{id}/members/{user_id}/roles/{role_id}",
            "put",
        ),
        (
            "/api/v1/communities/{id}/members/{user_id}/roles/{role_id}",
            "delete",
        ),
        ("/api/v1/channels/{id}/overwrites/{target_id}", "put"),
        ("/api/v1/channels/{id}/overwrites/{target_id}", "delete"),
        ("/api/v1/communities/{id}/channels", "post"),
        ("/api/v1/communities/{id}/channels", "get"),
        ("/api/v1/channels/{id}", "get"),
        ("/api/v1/channels/{id}", "patch"),
        ("/api/v1/channels/{id}", "delete"),
        ("/api/v1/dms", "post"),
        ("/api/v1/dms", "get"),
        ("/api/v1/channels/{id}/messages", "post"),
        ("/api/v1/channels/{id}/messages", "get"),
        ("/api/v1/channels/{id}/messages/{message_id}", "get"),
        ("/api/v1/channels/{id}/messages/{message_id}", "patch"),
        ("/api/v1/channels/{id}/messages/{message_id}", "delete"),
        (
            "/api/v1/channels/{id}/messages/{message_id}/reactions/{emoji}",
            "put",
        ),
        (
            "/api/v1/channels/{id}/messages/{message_id}/reactions/{emoji}",
            "delete",
        ),
        ("/api/v1/channels/{id}/pins/{message_id}", "put"),
        ("/api/v1/channels/{id}/pins/{message_id}", "delete"),
        ("/api/v1/channels/{id}/pins", "get"),
        ("/api/v1/channels/{id}/typing", "post"),
        ("/api/v1/channels/{id}/read", "put"),
        ("/api/v1/read-states", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/api/v1/openapi.json", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "OpenAPI lacks {method} {path}"
        );
    }
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/openapi.json"
        ))
        .expect("docs/openapi.json"),
    )
    .unwrap();
    assert_eq!(
        committed, doc,
        "docs/openapi.json is stale: run `hearth openapi > docs/openapi.json`"
    );
}
