//! The admin API: the staff policy (casbin) checked on every call, staff
//! roles edited through the API, suspension (no sign-in, sessions revoked,
//! sockets closed), MFA reset, statistics and the instance's audit log.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::gateway::Gw;
use crate::{TestServer, User, assert_error};

async fn login(s: &TestServer, name: &str, password: &str) -> (StatusCode, Value) {
    s.call(
        reqwest::Method::POST,
        "/api/v1/auth/login",
        None,
        Some(json!({"login": name, "password": password})),
    )
    .await
}

async fn get(s: &TestServer, u: &User, path: &str) -> (StatusCode, Value) {
    s.get(path, &u.token).await
}

async fn put(s: &TestServer, u: &User, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    s.put(path, &u.token, body).await
}

pub async fn staff_policy_decides_every_admin_call(s: &TestServer) {
    let admin = s.register("adm_root").await;
    s.make_admin(&admin).await;
    let helper = s.register("adm_helper").await;
    let nobody = s.register("adm_nobody").await;

    // Not staff: every admin call is the contract's 403, naming what is missing.
    let (st, me) = get(s, &nobody, "/api/v1/admin/@me").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        me,
        json!({"is_admin": false, "roles": [], "permissions": []})
    );
    for path in [
        "/api/v1/admin/users",
        "/api/v1/admin/stats",
        "/api/v1/admin/staff",
        "/api/v1/admin/audit-log",
    ] {
        let (st, body) = get(s, &nobody, path).await;
        assert_error(st, &body, 403, "forbidden");
        assert!(
            body["error"]["details"]["missing_permission"].is_string(),
            "{body}"
        );
    }
    let (st, body) = put(
        s,
        &nobody,
        &format!("/api/v1/admin/users/{}/suspension", helper.id),
        Some(json!({})),
    )
    .await;
    assert_error(st, &body, 403, "forbidden");
    assert_eq!(
        body["error"]["details"]["missing_permission"],
        "users:suspend"
    );

    // The admin flag holds everything; it gives a user the support role.
    let (st, me) = get(s, &admin, "/api/v1/admin/@me").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(me["is_admin"], true);
    assert!(me["permissions"].as_array().unwrap().len() >= 10, "{me}");
    let (st, _) = put(
        s,
        &admin,
        &format!("/api/v1/admin/staff/roles/support/members/{}", helper.id),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, me) = get(s, &helper, "/api/v1/admin/@me").await;
    assert_eq!(me["roles"], json!(["support"]));
    let perms: Vec<&str> = me["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        perms.contains(&"users:read") && perms.contains(&"users:reset_mfa"),
        "{me}"
    );
    assert!(!perms.contains(&"users:suspend"), "{me}");

    // Support finds users (by prefix or email) but may not suspend, read
    // statistics or edit the policy.
    let (st, found) = get(s, &helper, "/api/v1/admin/users?q=ADM_NO").await;
    assert_eq!(st, StatusCode::OK, "{found}");
    let found = found.as_array().unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["user"]["id"], nobody.id.as_str());
    assert_eq!(found[0]["suspended"], Value::Null);
    let (st, body) = put(
        s,
        &helper,
        &format!("/api/v1/admin/users/{}/suspension", nobody.id),
        Some(json!({"reason": "spam"})),
    )
    .await;
    assert_error(st, &body, 403, "forbidden");
    let (st, body) = get(s, &helper, "/api/v1/admin/stats").await;
    assert_error(st, &body, 403, "forbidden");
    assert_eq!(body["error"]["details"]["missing_permission"], "stats:read");
    let (st, body) = put(
        s,
        &helper,
        "/api/v1/admin/staff/roles/support/permissions/stats/read",
        None,
    )
    .await;
    assert_error(st, &body, 403, "forbidden");

    // The admin lets a new role read statistics and gives it to the helper:
    // it applies at once; taking it away does too.
    let (st, body) = put(
        s,
        &admin,
        "/api/v1/admin/staff/roles/analyst/permissions/stats/read",
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{body}");
    let (st, _) = put(
        s,
        &admin,
        &format!("/api/v1/admin/staff/roles/analyst/members/{}", helper.id),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, stats) = get(s, &helper, "/api/v1/admin/stats").await;
    assert_eq!(st, StatusCode::OK, "{stats}");
    assert!(stats["users"].as_i64().unwrap() >= 3, "{stats}");
    let (st, policy) = get(s, &admin, "/api/v1/admin/staff").await;
    assert_eq!(st, StatusCode::OK);
    let analyst = policy["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == "analyst")
        .cloned()
        .expect("the analyst role");
    assert_eq!(analyst["permissions"], json!(["stats:read"]));
    assert_eq!(analyst["members"], json!([helper.id]));
    let (st, _) = s
        .delete(
            &format!("/api/v1/admin/staff/roles/analyst/members/{}", helper.id),
            &admin.token,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = get(s, &helper, "/api/v1/admin/stats").await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // Bad input: clear 400s, nothing changed.
    for (path, field) in [
        (
            "/api/v1/admin/staff/roles/Bad%20Role/permissions/stats/read",
            "role",
        ),
        (
            "/api/v1/admin/staff/roles/analyst/permissions/stats/fly",
            "permission",
        ),
        (
            "/api/v1/admin/staff/roles/analyst/permissions/moons/read",
            "permission",
        ),
        (
            "/api/v1/admin/staff/roles/admin/permissions/stats/read",
            "permission",
        ),
    ] {
        let (st, body) = put(s, &admin, path, None).await;
        assert_error(st, &body, 400, "invalid_request");
        assert!(
            body["error"]["details"]["fields"][field].is_string(),
            "{path}: {body}"
        );
    }
    let (st, body) = get(s, &admin, "/api/v1/admin/users?limit=0").await;
    assert_error(st, &body, 400, "invalid_request");
    let (st, body) = put(
        s,
        &admin,
        &format!("/api/v1/admin/staff/roles/nosuchrole/members/{}", helper.id),
        None,
    )
    .await;
    assert_error(st, &body, 400, "invalid_request");
    let (st, _) = put(
        s,
        &admin,
        "/api/v1/admin/staff/roles/support/members/12345",
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Every staff action is in the instance's audit log, reads included.
    let (st, log) = get(
        s,
        &admin,
        "/api/v1/admin/audit-log?action=admin_policy_edit",
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{log}");
    let edits = log.as_array().unwrap();
    assert!(edits.len() >= 4, "{log}");
    assert!(edits.iter().all(|e| e["actor_id"] == admin.id.as_str()));
    let (_, log) = get(
        s,
        &admin,
        "/api/v1/admin/audit-log?action=admin_users_search",
    )
    .await;
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor_id"] == helper.id.as_str()),
        "{log}"
    );
}

pub async fn suspension_locks_an_account_out(s: &TestServer) {
    let admin = s.register("sus_admin").await;
    s.make_admin(&admin).await;
    let tns = s.register("sus_tns").await;
    let victim = s.register("sus_victim").await;
    let (st, _) = put(
        s,
        &admin,
        &format!(
            "/api/v1/admin/staff/roles/trust_and_safety/members/{}",
            tns.id
        ),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (mut gw, _) = Gw::identify(s, &victim).await;

    // Trust and safety suspends the victim: the open socket closes with
    // 4010, the token stops working, and signing in is refused (only with
    // the right password: a wrong one says nothing of the suspension).
    let (st, body) = put(
        s,
        &tns,
        &format!("/api/v1/admin/users/{}/suspension", victim.id),
        Some(json!({"reason": "spam waves"})),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(gw.closed_with(Duration::from_secs(1)).await, 4010);
    let (st, _) = s.get("/api/v1/users/@me", &victim.token).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, body) = login(s, "sus_victim", "correct horse battery").await;
    assert_error(st, &body, 403, "forbidden");
    assert_eq!(body["error"]["details"]["reason"], "account_suspended");
    let (st, body) = login(s, "sus_victim", "wrong password here").await;
    assert_error(st, &body, 401, "invalid_credentials");
    let (st, body) = s
        .call(
            reqwest::Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": victim.refresh})),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{body}");
    let (_, found) = get(s, &tns, &format!("/api/v1/admin/users/{}", victim.id)).await;
    assert_eq!(found["suspended"]["reason"], "spam waves");
    assert_eq!(found["suspended"]["suspended_by"], tns.id.as_str());

    // Staff cannot turn on their own or on a more powerful account.
    let (st, body) = put(
        s,
        &tns,
        &format!("/api/v1/admin/users/{}/suspension", admin.id),
        Some(json!({})),
    )
    .await;
    assert_error(st, &body, 403, "forbidden");
    let (st, body) = put(
        s,
        &admin,
        &format!("/api/v1/admin/users/{}/suspension", admin.id),
        Some(json!({})),
    )
    .await;
    assert_error(st, &body, 400, "invalid_request");
    let (st, body) = put(
        s,
        &tns,
        &format!("/api/v1/admin/users/{}/suspension", victim.id),
        Some(json!({"reason": "x".repeat(513)})),
    )
    .await;
    assert_error(st, &body, 400, "invalid_request");
    let (st, body) = put(
        s,
        &tns,
        &format!("/api/v1/admin/users/{}/suspension", victim.id),
        Some(json!({"surprise": true})),
    )
    .await;
    assert_error(st, &body, 400, "invalid_request");

    // Lifted: the victim signs in again (with a new session).
    let (st, _) = s
        .delete(
            &format!("/api/v1/admin/users/{}/suspension", victim.id),
            &tns.token,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = s
        .delete(
            &format!("/api/v1/admin/users/{}/suspension", victim.id),
            &tns.token,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, body) = login(s, "sus_victim", "correct horse battery").await;
    assert_eq!(st, StatusCode::OK, "{body}");

    // MFA reset is support's and trust and safety's lacks it.
    let (st, body) = s
        .delete(
            &format!("/api/v1/admin/users/{}/mfa", victim.id),
            &tns.token,
        )
        .await;
    assert_error(st, &body, 403, "forbidden");
    let (st, _) = s
        .delete(
            &format!("/api/v1/admin/users/{}/mfa", victim.id),
            &admin.token,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);

    let (_, log) = get(s, &admin, "/api/v1/admin/audit-log").await;
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for want in [
        "admin_user_suspend",
        "admin_user_unsuspend",
        "admin_user_reset_mfa",
    ] {
        assert!(actions.contains(&want), "{want} in {actions:?}");
    }
    let suspend = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "admin_user_suspend")
        .unwrap();
    assert_eq!(suspend["reason"], "spam waves");
    assert_eq!(suspend["target_id"], victim.id.as_str());
}

pub async fn reports_reach_moderators_and_staff(s: &TestServer) {
    let owner = s.register("rep_owner").await;
    let moder = s.register("rep_mod").await;
    let alice = s.register("rep_alice").await;
    let bob = s.register("rep_bob").await;
    let stranger = s.register("rep_stranger").await;
    let (cid, general) = s.community(&owner, "Reports").await;
    for u in [&moder, &alice, &bob] {
        s.join(&owner, &cid, u).await;
    }
    let (st, role) = s
        .post(
            &format!("/api/v1/communities/{cid}/roles"),
            &owner.token,
            json!({"name": "mods", "permissions": ["MANAGE_MESSAGES"]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{role}");
    let rolid = role["id"].as_str().unwrap();
    let (st, _) = s
        .put(
            &format!(
                "/api/v1/communities/{cid}/members/{}/roles/{rolid}",
                moder.id
            ),
            &owner.token,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);

    // Alice reports Bob's message to the moderators; the content is kept
    // as evidence even after Bob deletes it.
    let bad = s.send(&bob, &general, "bad words here").await;
    let mid = bad["id"].as_str().unwrap();
    let (st, report) = s
        .post(
            "/api/v1/reports",
            &alice.token,
            json!({"to": "community", "message_id": mid, "channel_id": general, "reason": "insults"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{report}");
    assert_eq!(report["state"], "open");
    assert_eq!(report["community_id"], cid.as_str());
    assert_eq!(report["subject"]["kind"], "message");
    assert_eq!(report["subject"]["evidence"], "bad words here");
    assert_eq!(report["subject"]["author_id"], bob.id.as_str());
    let rid = report["id"].as_str().unwrap().to_string();
    let (st, _) = s
        .delete(
            &format!("/api/v1/channels/{general}/messages/{mid}"),
            &bob.token,
        )
        .await;
    assert!(st.is_success());

    // What may not be reported: one's own message, what one cannot see, a
    // deleted message, a DM's message to a community, nothing at all.
    let mine = s.send(&alice, &general, "my own").await;
    let (st, body) = s
        .post(
            "/api/v1/reports",
            &alice.token,
            json!({"to": "community", "message_id": mine["id"], "channel_id": general, "reason": "x"}),
        )
        .await;
    assert_error(st, &body, 400, "invalid_request");
    let other = s.send(&bob, &general, "seen by members only").await;
    let (st, body) = s
        .post(
            "/api/v1/reports",
            &stranger.token,
            json!({"to": "instance", "message_id": other["id"], "channel_id": general, "reason": "x"}),
        )
        .await;
    assert_error(st, &body, 404, "not_found");
    let (st, body) = s
        .post(
            "/api/v1/reports",
            &alice.token,
            json!({"to": "community", "message_id": mid, "channel_id": general, "reason": "again"}),
        )
        .await;
    assert_error(st, &body, 404, "not_found");
    let (st, dm) = s
        .post("/api/v1/dms", &bob.token, json!({"user_ids": [alice.id]}))
        .await;
    assert!(st.is_success(), "{dm}");
    let dm_id = dm["id"].as_str().unwrap();
    let in_dm = s.send(&bob, dm_id, "dm insult").await;
    let (st, body) = s
        .post(
            "/api/v1/reports",
            &alice.token,
            json!({"to": "community", "message_id": in_dm["id"], "channel_id": dm_id, "reason": "x"}),
        )
        .await;
    assert_error(st, &body, 400, "invalid_request");
    for bad in [
        json!({"to": "community", "reason": "nothing"}),
        json!({"to": "elsewhere", "user_id": bob.id, "community_id": cid, "reason": "x"}),
        json!({"to": "community", "user_id": bob.id, "community_id": cid, "reason": "  "}),
        json!({"to": "community", "user_id": bob.id, "community_id": cid, "reason": "x", "extra": 1}),
    ] {
        let (st, body) = s.post("/api/v1/reports", &alice.token, bad.clone()).await;
        assert_error(st, &body, 400, "invalid_request");
    }
    let (st, body) = s
        .post(
            "/api/v1/reports",
            &alice.token,
            json!({"to": "community", "user_id": stranger.id, "community_id": cid, "reason": "not here"}),
        )
        .await;
    assert_error(st, &body, 404, "not_found");

    // The queue is the moderators'; the reporter sees their report, without notes.
    let (st, body) = s
        .get(&format!("/api/v1/communities/{cid}/reports"), &alice.token)
        .await;
    assert_error(st, &body, 403, "forbidden");
    let (st, queue) = s
        .get(
            &format!("/api/v1/communities/{cid}/reports?state=open"),
            &moder.token,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{queue}");
    assert_eq!(queue.as_array().unwrap().len(), 1);
    assert_eq!(queue[0]["subject"]["evidence"], "bad words here");
    let (st, _) = s
        .patch(
            &format!("/api/v1/reports/{rid}"),
            &alice.token,
            json!({"state": "dismissed"}),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, handled) = s
        .patch(
            &format!("/api/v1/reports/{rid}"),
            &moder.token,
            json!({"state": "actioned", "note": "removed and warned"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{handled}");
    assert_eq!(handled["state"], "actioned");
    assert_eq!(handled["resolved_by"], moder.id.as_str());
    assert_eq!(handled["notes"][0]["body"], "removed and warned");
    let (st, body) = s
        .patch(
            &format!("/api/v1/reports/{rid}"),
            &moder.token,
            json!({"state": "dismissed"}),
        )
        .await;
    assert_error(st, &body, 409, "conflict");
    assert_eq!(
        body["error"]["details"]["reason"],
        "report_invalid_transition"
    );
    let (st, mine) = s.get(&format!("/api/v1/reports/{rid}"), &alice.token).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(mine["state"], "actioned");
    assert_eq!(mine["notes"], json!([]));
    let (st, _) = s
        .get(&format!("/api/v1/reports/{rid}"), &stranger.token)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, log) = s
        .get(
            &format!("/api/v1/communities/{cid}/audit-log?action=report_actioned"),
            &owner.token,
        )
        .await;
    assert_eq!(log.as_array().map(Vec::len), Some(1), "{log}");

    // To the instance's staff: support reads the queue but may not close a
    // report; trust and safety may.
    let (st, r2) = s
        .post(
            "/api/v1/reports",
            &alice.token,
            json!({"to": "instance", "message_id": in_dm["id"], "channel_id": dm_id, "reason": "harassment"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{r2}");
    assert_eq!(r2["to"], "instance");
    let admin = s.register("rep_admin").await;
    s.make_admin(&admin).await;
    let support = s.register("rep_support").await;
    let tns = s.register("rep_tns").await;
    for (u, role) in [(&support, "support"), (&tns, "trust_and_safety")] {
        let (st, _) = s
            .put(
                &format!("/api/v1/admin/staff/roles/{role}/members/{}", u.id),
                &admin.token,
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
    }
    let (st, queue) = s
        .get("/api/v1/admin/reports?state=open", &support.token)
        .await;
    assert_eq!(st, StatusCode::OK, "{queue}");
    assert_eq!(queue[0]["id"], r2["id"]);
    let r2id = r2["id"].as_str().unwrap();
    let (st, body) = s
        .patch(
            &format!("/api/v1/reports/{r2id}"),
            &support.token,
            json!({"state": "dismissed"}),
        )
        .await;
    assert_error(st, &body, 403, "forbidden");
    let (st, body) = s.get("/api/v1/admin/reports", &moder.token).await;
    assert_error(st, &body, 403, "forbidden");
    let (st, done) = s
        .patch(
            &format!("/api/v1/reports/{r2id}"),
            &tns.token,
            json!({"state": "dismissed"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{done}");
    assert_eq!(done["state"], "dismissed");
    let (_, log) = s
        .get(
            "/api/v1/admin/audit-log?action=admin_report_dismiss",
            &admin.token,
        )
        .await;
    assert_eq!(log.as_array().map(Vec::len), Some(1), "{log}");
}

async fn message_ids(s: &TestServer, u: &User, channel: &str) -> Vec<String> {
    let (st, list) = s
        .get(&format!("/api/v1/channels/{channel}/messages"), &u.token)
        .await;
    assert_eq!(st, StatusCode::OK, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

pub async fn erasure_removes_the_person_for_good(s: &TestServer) {
    let admin = s.register("er_admin").await;
    s.make_admin(&admin).await;
    let owner = s.register("er_owner").await;
    let keeper = s.register("er_keeper").await;
    let remover = s.register("er_remover").await;
    let (cid, general) = s.community(&owner, "Erasures").await;
    s.join(&owner, &cid, &keeper).await;
    s.join(&owner, &cid, &remover).await;
    let (st, dm) = s
        .post(
            "/api/v1/dms",
            &remover.token,
            json!({"user_ids": [owner.id]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{dm}");
    let dm = dm["id"].as_str().unwrap().to_string();
    let kept = s.send(&keeper, &general, "mine, kept").await;
    let gone = s.send(&remover, &general, "mine, removed").await;
    let gone_dm = s.send(&remover, &dm, "in a DM, removed").await;
    let stays = s.send(&owner, &general, "the owner's").await;

    // A staff member without users:erase is refused; bad input is 400.
    let support = s.register("er_support").await;
    let (st, _) = put(
        s,
        &admin,
        &format!("/api/v1/admin/staff/roles/support/members/{}", support.id),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let erase_path = |u: &User| format!("/api/v1/admin/users/{}/erasure", u.id);
    let (st, body) = s
        .post(&erase_path(&keeper), &support.token, json!({}))
        .await;
    assert_error(st, &body, 403, "forbidden");
    assert_eq!(
        body["error"]["details"]["missing_permission"],
        "users:erase"
    );
    let (st, body) = s
        .post(
            &erase_path(&keeper),
            &admin.token,
            json!({"messages": "shred"}),
        )
        .await;
    assert_error(st, &body, 400, "invalid_request");
    // An owner is refused, naming what they own; nothing changes.
    let (st, body) = s.post(&erase_path(&owner), &admin.token, json!({})).await;
    assert_error(st, &body, 409, "conflict");
    assert_eq!(body["error"]["details"]["reason"], "owns_communities");
    assert_eq!(body["error"]["details"]["community_ids"], json!([cid]));
    assert_eq!(
        body["error"]["details"]["communities"],
        json!([{"id": cid, "name": "Erasures"}])
    );
    let (st, _) = s.get("/api/v1/users/@me", &owner.token).await;
    assert_eq!(st, StatusCode::OK);

    // Erased, messages kept: the socket closes, sign-in fails like a wrong
    // password, the messages stay under a tombstone, the person is gone.
    let (mut gw, _) = Gw::identify(s, &keeper).await;
    let (mut watcher, _) = Gw::identify(s, &owner).await;
    let (st, done) = s
        .post(
            &erase_path(&keeper),
            &admin.token,
            json!({"reason": "asked to be forgotten"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{done}");
    assert_eq!(done, json!({"messages_deleted": 0, "communities_left": 1}));
    assert_eq!(gw.closed_with(Duration::from_secs(1)).await, 4010);
    loop {
        let gone = watcher.expect("MEMBER_REMOVE").await;
        if gone["user_id"] == keeper.id.as_str() {
            break;
        }
    }
    let (st, _) = s.get("/api/v1/users/@me", &keeper.token).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, body) = login(s, "er_keeper", "correct horse battery").await;
    assert_error(st, &body, 401, "invalid_credentials");
    let (st, u) = s
        .get(&format!("/api/v1/users/{}", keeper.id), &owner.token)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(u["username"], format!("deleted-{}", keeper.id));
    assert_eq!(u["display_name"], Value::Null);
    assert_eq!(u["avatar_url"], Value::Null);
    let (_, found) = get(s, &admin, &format!("/api/v1/admin/users/{}", keeper.id)).await;
    assert_eq!(found["email"], Value::Null);
    assert_eq!(found["erased"]["messages"], "keep");
    assert_eq!(found["erased"]["erased_by"], admin.id.as_str());
    let ids = message_ids(s, &owner, &general).await;
    assert!(ids.contains(&kept["id"].as_str().unwrap().to_string()));
    let (_, members) = s
        .get(&format!("/api/v1/communities/{cid}/members"), &owner.token)
        .await;
    assert!(
        !members.to_string().contains(keeper.id.as_str()),
        "{members}"
    );
    // The name is free again; the account is not erased twice.
    let again = s.register("er_keeper").await;
    assert_ne!(again.id, keeper.id);
    let (st, body) = s.post(&erase_path(&keeper), &admin.token, json!({})).await;
    assert_error(st, &body, 404, "not_found");

    // Erased, messages removed: gone from the community and the DM, and
    // their viewers are told.
    let (st, done) = s
        .post(
            &erase_path(&remover),
            &admin.token,
            json!({"messages": "remove"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{done}");
    assert_eq!(done["messages_deleted"], 2);
    let ids = message_ids(s, &owner, &general).await;
    assert!(!ids.contains(&gone["id"].as_str().unwrap().to_string()));
    assert!(ids.contains(&stays["id"].as_str().unwrap().to_string()));
    let dm_ids = message_ids(s, &owner, &dm).await;
    assert!(!dm_ids.contains(&gone_dm["id"].as_str().unwrap().to_string()));
    loop {
        let f = watcher.frame().await;
        if f["t"] == "MESSAGE_DELETE" && f["d"]["id"] == gone["id"] {
            break;
        }
    }

    // Both are in the instance's audit log, with what was done.
    let (st, log) = get(s, &admin, "/api/v1/admin/audit-log?action=admin_user_erase").await;
    assert_eq!(st, StatusCode::OK, "{log}");
    let entries = log.as_array().unwrap();
    assert_eq!(entries.len(), 2, "{log}");
    assert_eq!(entries[1]["target_id"], keeper.id.as_str());
    assert_eq!(entries[1]["reason"], "asked to be forgotten");
}

pub async fn takedown_removes_a_community_for_everyone(s: &TestServer) {
    let admin = s.register("td_admin").await;
    s.make_admin(&admin).await;
    let tns = s.register("td_tns").await;
    let support = s.register("td_support").await;
    for (u, role) in [(&tns, "trust_and_safety"), (&support, "support")] {
        let (st, _) = put(
            s,
            &admin,
            &format!("/api/v1/admin/staff/roles/{role}/members/{}", u.id),
            None,
        )
        .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
    }
    let owner = s.register("td_owner").await;
    let member = s.register("td_member").await;
    let (cid, general) = s.community(&owner, "Spam Central").await;
    s.join(&owner, &cid, &member).await;
    s.send(&owner, &general, "buy now").await;
    let (other, _) = s.community(&owner, "Book Club").await;

    // Listing: by name prefix (any case) or exact id, with sizes.
    let (st, list) = get(s, &tns, "/api/v1/admin/communities?q=spam").await;
    assert_eq!(st, StatusCode::OK, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["community"]["id"], cid.as_str());
    assert_eq!(list[0]["members"], 2);
    assert!(list[0]["channels"].as_i64().unwrap() >= 1);
    let (_, by_id) = get(s, &tns, &format!("/api/v1/admin/communities?q={other}")).await;
    assert_eq!(by_id[0]["community"]["name"], "Book Club");
    let (st, body) = get(s, &support, "/api/v1/admin/communities").await;
    assert_error(st, &body, 403, "forbidden");
    assert_eq!(
        body["error"]["details"]["missing_permission"],
        "communities:read"
    );
    let (st, body) = get(s, &tns, "/api/v1/admin/communities?limit=0").await;
    assert_error(st, &body, 400, "invalid_request");

    // Support may not take it down; trust and safety may.
    let path = format!("/api/v1/admin/communities/{cid}/takedown");
    let (st, body) = s.post(&path, &support.token, json!({})).await;
    assert_error(st, &body, 403, "forbidden");
    let (mut gw, _) = Gw::identify(s, &member).await;
    let (st, body) = s
        .post(&path, &tns.token, json!({"reason": "spam operation"}))
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(gw.expect("COMMUNITY_DELETE").await["id"], cid.as_str());
    for who in [&owner, &member] {
        let (st, _) = s
            .get(&format!("/api/v1/communities/{cid}"), &who.token)
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _) = s
            .get(&format!("/api/v1/channels/{general}/messages"), &who.token)
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
    }
    let (st, _) = s
        .get(&format!("/api/v1/communities/{other}"), &owner.token)
        .await;
    assert_eq!(st, StatusCode::OK, "only the one taken down goes");
    let (st, body) = s.post(&path, &tns.token, json!({})).await;
    assert_error(st, &body, 404, "not_found");
    let (_, log) = get(
        s,
        &admin,
        "/api/v1/admin/audit-log?action=admin_community_takedown",
    )
    .await;
    assert_eq!(log[0]["target_id"], cid.as_str());
    assert_eq!(log[0]["reason"], "spam operation");
    let change = log[0]["changes"].to_string();
    assert!(change.contains("Spam Central"), "{change}");
}
