//! The audit log and automod through the API (issue #12): every audited
//! change appears with its actor, target, reason and changes; filters and
//! paging; who may read it; a redelivered event is stored once; automod
//! refuses messages naming the rule, honours exemptions and validates rules.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{TestServer, User, assert_error};

/// A request with an `X-Audit-Log-Reason` header.
async fn with_reason(
    s: &TestServer,
    method: Method,
    path: &str,
    who: &User,
    body: Option<Value>,
    reason: &str,
) -> (StatusCode, Value) {
    let mut req = s
        .http
        .request(method, format!("{}{}", s.base, path))
        .bearer_auth(&who.token)
        .header("X-Audit-Log-Reason", reason);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let text = res.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The community's audit log (newest first) once it holds at least `n`
/// entries matching `query` (the consumer writes them a moment after).
async fn audit_log(s: &TestServer, who: &User, c: &str, query: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (st, v) = s
            .get(
                &format!("/api/v1/communities/{c}/audit-log?{query}"),
                &who.token,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let entries = v.as_array().expect("a list").clone();
        if entries.len() >= n || Instant::now() > deadline {
            return entries;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn find<'a>(entries: &'a [Value], action: &str) -> &'a Value {
    entries
        .iter()
        .find(|e| e["action"] == action)
        .unwrap_or_else(|| panic!("no {action} in {entries:#?}"))
}

fn change<'a>(e: &'a Value, key: &str) -> &'a Value {
    e["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["key"] == key)
        .unwrap_or_else(|| panic!("no change of {key} in {e}"))
}

/// Every audited action, with actor, target, reason (header or ban body)
/// and before/after changes.
pub async fn audited_actions_are_logged(s: &TestServer) {
    let owner = s.register("audown").await;
    let (c, general) = s.community(&owner, "Audited").await;
    let m1 = s.register("audm1").await;
    let m2 = s.register("audm2").await;
    let m3 = s.register("audm3").await;
    for m in [&m1, &m2, &m3] {
        s.join(&owner, &c, m).await;
    }

    // Roles: create (reason from the header, URL-encoded), update, assign, remove, delete.
    let (st, role) = with_reason(
        s,
        Method::POST,
        &format!("/api/v1/communities/{c}/roles"),
        &owner,
        Some(json!({"name": "Helpers", "permissions": ["SEND_MESSAGES"]})),
        "for%20the%20helpers%20%E2%9C%93",
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{role}");
    let rid = role["id"].as_str().unwrap().to_string();
    let (st, v) = s
        .patch(
            &format!("/api/v1/communities/{c}/roles/{rid}"),
            &owner.token,
            json!({"name": "Helpers+"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = s
        .put(
            &format!("/api/v1/communities/{c}/members/{}/roles/{rid}", m1.id),
            &owner.token,
            None,
        )
        .await;
    assert!(st.is_success(), "{v}");
    let (st, v) = s
        .delete(
            &format!("/api/v1/communities/{c}/members/{}/roles/{rid}", m1.id),
            &owner.token,
        )
        .await;
    assert!(st.is_success(), "{v}");

    // Channels and overwrites.
    let (st, ch) = s
        .post(
            &format!("/api/v1/communities/{c}/channels"),
            &owner.token,
            json!({"name": "mods"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{ch}");
    let chid = ch["id"].as_str().unwrap().to_string();
    let (st, v) = s
        .patch(
            &format!("/api/v1/channels/{chid}"),
            &owner.token,
            json!({"topic": "quiet please"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = s
        .put(
            &format!("/api/v1/channels/{chid}/overwrites/{c}"),
            &owner.token,
            Some(json!({"target_type": "role", "deny": ["VIEW_CHANNEL"]})),
        )
        .await;
    assert!(st.is_success(), "{v}");
    let (st, v) = s
        .delete(
            &format!("/api/v1/channels/{chid}/overwrites/{c}"),
            &owner.token,
        )
        .await;
    assert!(st.is_success(), "{v}");
    let (st, v) = s
        .delete(&format!("/api/v1/channels/{chid}"), &owner.token)
        .await;
    assert!(st.is_success(), "{v}");
    let (st, v) = s
        .delete(
            &format!("/api/v1/communities/{c}/roles/{rid}"),
            &owner.token,
        )
        .await;
    assert!(st.is_success(), "{v}");

    // The community, members and messages.
    let (st, v) = s
        .patch(
            &format!("/api/v1/communities/{c}"),
            &owner.token,
            json!({"name": "Audited 2"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let msg = s.send(&m1, &general, "delete me").await;
    let mid = msg["id"].as_str().unwrap().to_string();
    let until = hearth_types::format_rfc3339(hearth_types::now_ms() + 600_000);
    let (st, v) = s
        .patch(
            &format!("/api/v1/communities/{c}/members/{}", m1.id),
            &owner.token,
            json!({"timed_out_until": until}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let own = s.send(&owner, &general, "my own").await;
    let (st, v) = s
        .delete(
            &format!("/api/v1/channels/{general}/messages/{mid}"),
            &owner.token,
        )
        .await;
    assert!(st.is_success(), "{v}");
    // Deleting one's own message is not audited.
    let (st, v) = s
        .delete(
            &format!(
                "/api/v1/channels/{general}/messages/{}",
                own["id"].as_str().unwrap()
            ),
            &owner.token,
        )
        .await;
    assert!(st.is_success(), "{v}");
    let (st, v) = with_reason(
        s,
        Method::DELETE,
        &format!("/api/v1/communities/{c}/members/{}", m2.id),
        &owner,
        None,
        "rude",
    )
    .await;
    assert!(st.is_success(), "{v}");
    let (st, v) = s
        .put(
            &format!("/api/v1/communities/{c}/bans/{}", m3.id),
            &owner.token,
            Some(json!({"reason": "spam"})),
        )
        .await;
    assert!(st.is_success(), "{v}");
    let (st, v) = s
        .delete(
            &format!("/api/v1/communities/{c}/bans/{}", m3.id),
            &owner.token,
        )
        .await;
    assert!(st.is_success(), "{v}");
    let (st, inv) = s
        .post(
            &format!("/api/v1/communities/{c}/invites"),
            &owner.token,
            json!({"max_uses": 5}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{inv}");
    let (st, v) = s
        .delete(
            &format!("/api/v1/invites/{}", inv["code"].as_str().unwrap()),
            &owner.token,
        )
        .await;
    assert!(st.is_success(), "{v}");

    let actions = [
        "role_create",
        "role_update",
        "member_role_add",
        "member_role_remove",
        "channel_create",
        "channel_update",
        "overwrite_put",
        "overwrite_delete",
        "channel_delete",
        "role_delete",
        "community_update",
        "member_timeout",
        "message_delete",
        "member_kick",
        "member_ban",
        "member_unban",
        "invite_create",
        "invite_delete",
    ];
    // Three invites for the joins come first.
    let all = audit_log(s, &owner, &c, "limit=100", actions.len() + 3).await;
    for a in actions {
        find(&all, a);
    }
    assert_eq!(all.len(), actions.len() + 3, "{all:#?}");
    assert_eq!(
        all.iter()
            .filter(|e| e["action"] == "message_delete")
            .count(),
        1,
        "an author deleting their own message is not audited"
    );
    // Newest first, ids strictly decreasing.
    let ids: Vec<i64> = all
        .iter()
        .map(|e| e["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    for e in &all {
        assert_eq!(e["actor_id"], owner.id.as_str(), "{e}");
        assert!(e["created_at"].is_string(), "{e}");
    }

    let e = find(&all, "role_create");
    assert_eq!(e["target_kind"], "role");
    assert_eq!(e["target_id"], rid.as_str());
    assert_eq!(e["reason"], "for the helpers ✓");
    assert_eq!(change(e, "name")["after"], "Helpers");
    assert!(change(e, "name")["before"].is_null());
    let e = find(&all, "role_update");
    assert_eq!(change(e, "name")["before"], "Helpers");
    assert_eq!(change(e, "name")["after"], "Helpers+");
    assert_eq!(e["changes"].as_array().unwrap().len(), 1, "{e}");
    assert!(e["reason"].is_null());
    let e = find(&all, "member_role_add");
    assert_eq!(e["target_kind"], "user");
    assert_eq!(e["target_id"], m1.id.as_str());
    assert_eq!(change(e, "roles")["before"], json!([]));
    assert_eq!(change(e, "roles")["after"], json!([rid]));
    let e = find(&all, "member_role_remove");
    assert_eq!(change(e, "roles")["after"], json!([]));
    let e = find(&all, "channel_update");
    assert_eq!(e["target_id"], chid.as_str());
    assert_eq!(change(e, "topic")["after"], "quiet please");
    assert_eq!(e["changes"].as_array().unwrap().len(), 1, "{e}");
    let e = find(&all, "overwrite_put");
    assert_eq!(change(e, "deny")["after"], json!(["VIEW_CHANNEL"]));
    let e = find(&all, "channel_delete");
    assert_eq!(change(e, "name")["before"], "mods");
    let e = find(&all, "community_update");
    assert_eq!(change(e, "name")["before"], "Audited");
    assert_eq!(change(e, "name")["after"], "Audited 2");
    let e = find(&all, "member_timeout");
    assert_eq!(e["target_id"], m1.id.as_str());
    assert!(change(e, "timed_out_until")["before"].is_null());
    assert!(change(e, "timed_out_until")["after"].is_string());
    let e = find(&all, "message_delete");
    assert_eq!(e["target_kind"], "message");
    assert_eq!(e["target_id"], mid.as_str());
    assert_eq!(change(e, "author_id")["before"], m1.id.as_str());
    let e = find(&all, "member_kick");
    assert_eq!(e["target_id"], m2.id.as_str());
    assert_eq!(e["reason"], "rude");
    let e = find(&all, "member_ban");
    assert_eq!(e["target_id"], m3.id.as_str());
    assert_eq!(e["reason"], "spam");
    find(&all, "member_unban");
    let e = find(&all, "invite_delete");
    assert_eq!(e["target_kind"], "invite");
    assert_eq!(change(e, "max_uses")["before"], 5);
}

/// Filters, paging, and who may read the log.
pub async fn filters_paging_and_permissions(s: &TestServer) {
    let owner = s.register("audfown").await;
    let (c, _) = s.community(&owner, "Filtered").await;
    let modr = s.register("audfmod").await;
    let plain = s.register("audfplain").await;
    let outsider = s.register("audfout").await;
    s.join(&owner, &c, &modr).await;
    s.join(&owner, &c, &plain).await;
    let (_, role) = s
        .post(
            &format!("/api/v1/communities/{c}/roles"),
            &owner.token,
            json!({"name": "Mods", "position": 5, "permissions": ["VIEW_AUDIT_LOG", "MANAGE_ROLES"]}),
        )
        .await;
    let rid = role["id"].as_str().unwrap().to_string();
    s.put(
        &format!("/api/v1/communities/{c}/members/{}/roles/{rid}", modr.id),
        &owner.token,
        None,
    )
    .await;
    // The moderator makes three roles of their own.
    let mut made = Vec::new();
    for n in 0..3 {
        let (st, r) = s
            .post(
                &format!("/api/v1/communities/{c}/roles"),
                &modr.token,
                json!({"name": format!("r{n}")}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{r}");
        made.push(r["id"].as_str().unwrap().to_string());
    }
    // 2 joins (invites) + role + assignment + 3 roles.
    let all = audit_log(s, &modr, &c, "", 7).await;
    assert_eq!(all.len(), 7, "{all:#?}");

    let mine = audit_log(s, &modr, &c, &format!("actor_id={}", modr.id), 3).await;
    assert_eq!(mine.len(), 3);
    assert!(mine.iter().all(|e| e["action"] == "role_create"));
    let invites = audit_log(s, &owner, &c, "action=invite_create", 2).await;
    assert_eq!(invites.len(), 2);
    let about = audit_log(s, &owner, &c, &format!("target_id={}", made[1]), 1).await;
    assert_eq!(about.len(), 1);
    assert_eq!(about[0]["target_id"], made[1].as_str());
    // Paging: two at a time, by entry id.
    let page1 = audit_log(s, &owner, &c, "limit=2", 2).await;
    assert_eq!(page1.len(), 2);
    assert_eq!(page1[0]["id"], all[0]["id"]);
    let last = page1[1]["id"].as_str().unwrap();
    let page2 = audit_log(s, &owner, &c, &format!("limit=2&before={last}"), 2).await;
    assert_eq!(page2[0]["id"], all[2]["id"]);
    assert_eq!(page2[1]["id"], all[3]["id"]);
    let newer = audit_log(
        s,
        &owner,
        &c,
        &format!("after={}", all[2]["id"].as_str().unwrap()),
        2,
    )
    .await;
    assert_eq!(newer.len(), 2);

    // Without VIEW_AUDIT_LOG: 403 naming it; outside the community: 404.
    let (st, e) = s
        .get(&format!("/api/v1/communities/{c}/audit-log"), &plain.token)
        .await;
    assert_error(st, &e, 403, "forbidden");
    assert_eq!(
        e["error"]["details"]["missing_permissions"],
        json!(["VIEW_AUDIT_LOG"])
    );
    let (st, e) = s
        .get(
            &format!("/api/v1/communities/{c}/audit-log"),
            &outsider.token,
        )
        .await;
    assert_error(st, &e, 404, "not_found");
    for bad in [
        "action=nope",
        "limit=0",
        "limit=101",
        "actor_id=x",
        "before=-1",
    ] {
        let (st, e) = s
            .get(
                &format!("/api/v1/communities/{c}/audit-log?{bad}"),
                &owner.token,
            )
            .await;
        assert_error(st, &e, 400, "invalid_request");
    }
}

/// The consumer stores an event once, however often it is delivered.
async fn redelivery_is_stored_once(store: Arc<dyn hearth_store::Store>) {
    use hearth_bus::journal::Handler;
    use hearth_moderation::{AuditFilter, AuditStore};
    let log = Arc::new(hearth_server::moderation::StoreAuditLog(store.clone()));
    let consumer = hearth_server::moderation::AuditConsumer { log: log.clone() };
    let data = json!({"t": "AUDIT_LOG_ENTRY", "d": {
        "community_id": "4242", "actor_id": "7", "action": "role_update", "target_kind": "role",
        "target_id": "99", "reason": "tidy", "before": {"name": "a", "color": 1}, "after": {"name": "b", "color": 1}, "at": 1000
    }});
    let env = hearth_bus::Envelope::json(
        "123456789".into(),
        "test".into(),
        "hearth.AUDIT_LOG_ENTRY",
        "chat.audit.4242",
        data.to_string(),
    );
    consumer.handle(1, &env).await.expect("handled");
    consumer.handle(1, &env).await.expect("handled again");
    let filter = AuditFilter {
        community_id: Some(hearth_types::CommunityId(4242)),
        ..Default::default()
    };
    let entries = log.list(&filter, 100).await.expect("list");
    assert_eq!(entries.len(), 1, "{entries:?}");
    let e = &entries[0];
    assert_eq!(e.id.0, 123456789);
    assert_eq!(e.reason.as_deref(), Some("tidy"));
    assert_eq!(e.changes.len(), 1);
    assert_eq!(e.changes[0].key, "name");
    assert_eq!(e.created_at, 1000);
    // Pruning by age.
    assert_eq!(store.prune_audit(1001).await.expect("prune"), 1);
    assert!(log.list(&filter, 100).await.expect("list").is_empty());
}

#[tokio::test]
async fn audit_redelivery_is_stored_once_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    let store = hearth_store::connect(&hearth_store::Backend::Sqlite(dir.path().join("a.db")), 2)
        .await
        .expect("sqlite");
    redelivery_is_stored_once(store).await;
}

#[tokio::test]
async fn audit_redelivery_is_stored_once_postgres() {
    let admin = hearth_store::testing::admin_url();
    let name = format!(
        "hearth_audit_{}_{}",
        std::process::id(),
        rand::random::<u32>()
    );
    let url = hearth_store::testing::create_database(&admin, &name)
        .await
        .expect("postgres");
    let store = hearth_store::connect(&hearth_store::Backend::Postgres(url), 2)
        .await
        .expect("connect");
    redelivery_is_stored_once(store.clone()).await;
    drop(store);
    hearth_store::testing::drop_database(&admin, &name)
        .await
        .expect("drop");
}

async fn put_rules(s: &TestServer, who: &User, c: &str, rules: Value) -> (StatusCode, Value) {
    s.put(
        &format!("/api/v1/communities/{c}/automod/rules"),
        &who.token,
        Some(json!({"rules": rules})),
    )
    .await
}

/// Keyword and regex rules block on send naming the rule and store
/// nothing; exempt roles and channels pass; moderators are not checked.
pub async fn automod_blocks_on_send(s: &TestServer) {
    let owner = s.register("amown").await;
    let (c, general) = s.community(&owner, "Automod").await;
    let m = s.register("ammem").await;
    let trusted = s.register("amtrust").await;
    s.join(&owner, &c, &m).await;
    s.join(&owner, &c, &trusted).await;
    let (_, role) = s
        .post(
            &format!("/api/v1/communities/{c}/roles"),
            &owner.token,
            json!({"name": "Trusted"}),
        )
        .await;
    let rid = role["id"].as_str().unwrap().to_string();
    s.put(
        &format!("/api/v1/communities/{c}/members/{}/roles/{rid}", trusted.id),
        &owner.token,
        None,
    )
    .await;
    let (_, other) = s
        .post(
            &format!("/api/v1/communities/{c}/channels"),
            &owner.token,
            json!({"name": "anything-goes"}),
        )
        .await;
    let other = other["id"].as_str().unwrap().to_string();

    let (st, v) = s
        .get(
            &format!("/api/v1/communities/{c}/automod/rules"),
            &owner.token,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["rules"], json!([]));
    let (st, v) = put_rules(
        s,
        &owner,
        &c,
        json!([
            {"name": "No pills", "trigger": {"type": "keywords", "words": ["pills", "casino*"]},
             "actions": [{"type": "block"}], "exempt_roles": [rid], "exempt_channels": [other]},
            {"id": "77", "name": "No card numbers", "trigger": {"type": "regex", "patterns": ["\\b\\d{4}-\\d{4}-\\d{4}-\\d{4}\\b"]},
             "actions": [{"type": "block"}]},
        ]),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let rules = v["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2);
    let kw_id = rules[0]["id"].as_str().unwrap().to_string();
    assert_eq!(kw_id, "78", "a rule without id gets the next one");
    let (_, stored) = s
        .get(
            &format!("/api/v1/communities/{c}/automod/rules"),
            &owner.token,
        )
        .await;
    assert_eq!(stored, v);

    let send = |who: &User, ch: &str, text: &str| {
        let (who, ch, text) = (who.token.clone(), ch.to_string(), text.to_string());
        async move {
            s.post(
                &format!("/api/v1/channels/{ch}/messages"),
                &who,
                json!({"content": text}),
            )
            .await
        }
    };
    let (st, e) = send(&m, &general, "cheap PILLS here").await;
    assert_error(st, &e, 400, "automod_blocked");
    assert_eq!(e["error"]["details"]["rule_id"], kw_id.as_str());
    assert_eq!(e["error"]["details"]["rule_name"], "No pills");
    let (st, e) = send(&m, &general, "visit casinoroyale now").await;
    assert_error(st, &e, 400, "automod_blocked");
    let (st, e) = send(&m, &general, "card 1234-5678-9012-3456 ok?").await;
    assert_error(st, &e, 400, "automod_blocked");
    assert_eq!(e["error"]["details"]["rule_id"], "77");
    assert_eq!(e["error"]["details"]["rule_name"], "No card numbers");
    // Nothing was stored.
    let (_, msgs) = s
        .get(
            &format!("/api/v1/channels/{general}/messages"),
            &owner.token,
        )
        .await;
    assert_eq!(msgs.as_array().unwrap().len(), 0, "{msgs}");
    // Clean text, an exempt role, an exempt channel, and a moderator pass.
    let (st, v) = send(&m, &general, "spills are fine: whole words only").await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, v) = send(&trusted, &general, "pills").await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, v) = send(&m, &other, "pills").await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, e) = send(&trusted, &general, "1234-5678-9012-3456").await;
    assert_error(st, &e, 400, "automod_blocked");
    let (st, v) = send(&owner, &general, "pills").await;
    assert_eq!(st, StatusCode::CREATED, "{v}");

    // Removing the rules lets everything through again.
    let (st, v) = put_rules(s, &owner, &c, json!([])).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = send(&m, &general, "pills").await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    // Rule changes are audited.
    let log = audit_log(s, &owner, &c, "target_id=78", 2).await;
    let actions: Vec<&str> = log.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        ["automod_rule_delete", "automod_rule_create"],
        "{log:#?}"
    );
}

/// Invalid rules are refused naming the rule; only MANAGE_COMMUNITY edits;
/// the dry run answers the verdict without sending.
pub async fn automod_rules_are_validated_and_testable(s: &TestServer) {
    let owner = s.register("amvown").await;
    let (c, general) = s.community(&owner, "AutomodV").await;
    let m = s.register("amvmem").await;
    s.join(&owner, &c, &m).await;

    let (st, e) = put_rules(
        s,
        &owner,
        &c,
        json!([{"id": "5", "name": "Broken", "trigger": {"type": "regex", "patterns": ["(unclosed"]}, "actions": [{"type": "block"}]}]),
    )
    .await;
    assert_error(st, &e, 400, "automod_invalid_regex");
    assert_eq!(e["error"]["details"]["rule_id"], "5");
    assert_eq!(e["error"]["details"]["rule_name"], "Broken");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("(unclosed"),
        "{e}"
    );
    let (st, e) = put_rules(
        s,
        &owner,
        &c,
        json!([{"name": "Empty", "trigger": {"type": "keywords", "words": []}, "actions": [{"type": "block"}]}]),
    )
    .await;
    assert_error(st, &e, 400, "automod_invalid_rule");
    assert_eq!(e["error"]["details"]["rule_name"], "Empty");
    let (st, e) = put_rules(
        s,
        &owner,
        &c,
        json!([{"name": "No trigger", "actions": []}]),
    )
    .await;
    assert_error(st, &e, 400, "invalid_request");
    let too_many: Vec<Value> = (0..201)
        .map(|i| json!({"name": format!("r{i}"), "trigger": {"type": "keywords", "words": ["x"]}, "actions": [{"type": "block"}]}))
        .collect();
    let (st, e) = put_rules(s, &owner, &c, json!(too_many)).await;
    assert_error(st, &e, 400, "automod_limit_exceeded");
    // Nothing was stored by the refused edits.
    let (_, v) = s
        .get(
            &format!("/api/v1/communities/{c}/automod/rules"),
            &owner.token,
        )
        .await;
    assert_eq!(v["rules"], json!([]));
    // Members without MANAGE_COMMUNITY may neither read nor edit nor test.
    let (st, e) = s
        .get(&format!("/api/v1/communities/{c}/automod/rules"), &m.token)
        .await;
    assert_error(st, &e, 403, "forbidden");
    let (st, e) = put_rules(s, &m, &c, json!([])).await;
    assert_error(st, &e, 403, "forbidden");
    let (st, e) = s
        .post(
            &format!("/api/v1/communities/{c}/automod/test"),
            &m.token,
            json!({"content": "x"}),
        )
        .await;
    assert_error(st, &e, 403, "forbidden");

    let (st, v) = put_rules(
        s,
        &owner,
        &c,
        json!([
            {"id": "1", "name": "Slurs", "trigger": {"type": "keywords", "words": ["badword"]}, "actions": [{"type": "block"}, {"type": "timeout", "secs": 60}]},
            {"id": "2", "name": "Links", "trigger": {"type": "links", "block_links": true}, "actions": [{"type": "flag", "channel_id": general}]},
        ]),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let test_path = format!("/api/v1/communities/{c}/automod/test");
    let test = |text: &str| {
        let (text, path, token) = (text.to_string(), test_path.clone(), owner.token.clone());
        async move { s.post(&path, &token, json!({"content": text})).await }
    };
    let (st, v) = test("say badword").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["blocked"], true);
    assert_eq!(v["blocked_by"]["rule_id"], "1");
    assert_eq!(v["blocked_by"]["rule_name"], "Slurs");
    assert_eq!(v["timeouts"][0]["secs"], 60);
    let (_, v) = test("see https://example.com").await;
    assert_eq!(v["blocked"], false);
    assert_eq!(v["flags"][0]["rule_id"], "2");
    assert_eq!(v["flags"][0]["channel_id"], general.as_str());
    let (_, v) = test("hello").await;
    assert_eq!(
        v,
        json!({"blocked": false, "blocked_by": null, "flags": [], "timeouts": [], "deletes": []})
    );
    // The owner's test ran the rules (no exemption), and sent nothing.
    let (_, msgs) = s
        .get(
            &format!("/api/v1/channels/{general}/messages"),
            &owner.token,
        )
        .await;
    assert_eq!(msgs.as_array().unwrap().len(), 0);
}

/// Bulk delete: MANAGE_MESSAGES, 2-100 ids, audited; a ban deleting the
/// user's recent messages.
pub async fn bulk_delete_and_ban_cleanup(s: &TestServer) {
    let owner = s.register("bdown").await;
    let (c, general) = s.community(&owner, "Bulk").await;
    let m = s.register("bdmem").await;
    s.join(&owner, &c, &m).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(
            s.send(&m, &general, &format!("m{i}")).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let path = format!("/api/v1/channels/{general}/messages/bulk-delete");
    let (st, e) = s
        .post(&path, &m.token, json!({"message_ids": [ids[0], ids[1]]}))
        .await;
    assert_error(st, &e, 403, "forbidden");
    let (st, e) = s
        .post(&path, &owner.token, json!({"message_ids": [ids[0]]}))
        .await;
    assert_error(st, &e, 400, "invalid_request");
    let (st, e) = s
        .post(&path, &owner.token, json!({"message_ids": [ids[0], "x"]}))
        .await;
    assert_error(st, &e, 400, "invalid_request");
    let (st, v) = s
        .post(
            &path,
            &owner.token,
            json!({"message_ids": [ids[0], ids[1], ids[2]]}),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let (_, msgs) = s
        .get(
            &format!("/api/v1/channels/{general}/messages"),
            &owner.token,
        )
        .await;
    let left: Vec<&str> = msgs
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(left, [ids[3].as_str()]);
    let log = audit_log(s, &owner, &c, "action=message_bulk_delete", 1).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["target_id"], general.as_str());
    assert_eq!(change(&log[0], "count")["before"], 3);

    // A ban can take the user's recent messages with it.
    let spammer = s.register("bdspam").await;
    s.join(&owner, &c, &spammer).await;
    for i in 0..3 {
        s.send(&spammer, &general, &format!("spam {i}")).await;
    }
    let bans = format!("/api/v1/communities/{c}/bans/{}", spammer.id);
    let (st, e) = s
        .put(
            &bans,
            &owner.token,
            Some(json!({"delete_message_seconds": 604_801})),
        )
        .await;
    assert_error(st, &e, 400, "invalid_request");
    let (st, v) = s
        .put(
            &bans,
            &owner.token,
            Some(json!({"reason": "spam", "delete_message_seconds": 3600})),
        )
        .await;
    assert!(st.is_success(), "{v}");
    let (_, msgs) = s
        .get(
            &format!("/api/v1/channels/{general}/messages"),
            &owner.token,
        )
        .await;
    let left: Vec<&str> = msgs
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        left,
        [ids[3].as_str()],
        "the member's message stays, the spammer's are gone"
    );
}

/// Follow-ups: a timeout and the deletion of recent messages are carried
/// out after the send; blocks, flags and timeouts are audited with no actor.
pub async fn automod_follow_ups(s: &TestServer) {
    let owner = s.register("amfown").await;
    let (c, general) = s.community(&owner, "AutomodF").await;
    let m = s.register("amfmem").await;
    let r = s.register("amfraid").await;
    s.join(&owner, &c, &m).await;
    s.join(&owner, &c, &r).await;
    let (st, v) = put_rules(
        s,
        &owner,
        &c,
        json!([
            {"id": "1", "name": "Scam", "trigger": {"type": "keywords", "words": ["freecoins"]},
             "actions": [{"type": "block"}, {"type": "timeout", "secs": 600}, {"type": "flag", "channel_id": general}]},
            {"id": "2", "name": "Raid", "trigger": {"type": "keywords", "words": ["raidword"]},
             "actions": [{"type": "delete_recent", "secs": 3600}]},
        ]),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, e) = s
        .post(
            &format!("/api/v1/channels/{general}/messages"),
            &m.token,
            json!({"content": "get freecoins"}),
        )
        .await;
    assert_error(st, &e, 400, "automod_blocked");
    // The timeout lands a moment later.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, mem) = s
            .get(
                &format!("/api/v1/communities/{c}/members/{}", m.id),
                &owner.token,
            )
            .await;
        if mem["timed_out_until"].is_string() {
            break;
        }
        assert!(Instant::now() < deadline, "no timeout: {mem}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = audit_log(s, &owner, &c, &format!("target_id={}", m.id), 3).await;
    for action in ["automod_block", "automod_timeout", "automod_flag"] {
        let e = find(&log, action);
        assert!(e["actor_id"].is_null(), "{e}");
        assert_eq!(e["reason"], "automod rule 1 \"Scam\"", "{e}");
    }
    // The flag is also a notice in the moderators' channel, from automod's
    // own account, which nobody can sign in as.
    let deadline = Instant::now() + Duration::from_secs(10);
    let notice = loop {
        let (_, msgs) = s
            .get(
                &format!("/api/v1/channels/{general}/messages"),
                &owner.token,
            )
            .await;
        if let Some(n) = msgs
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["author"]["username"] == "hearth-automod")
        {
            break n.clone();
        }
        assert!(Instant::now() < deadline, "no flag notice: {msgs}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let text = notice["content"].as_str().unwrap();
    assert!(text.contains(&format!("<@{}>", m.id)), "{text}");
    assert!(text.contains("\"Scam\""), "{text}");
    assert!(text.contains("> get freecoins"), "{text}");
    assert!(text.contains("it was blocked"), "{text}");
    let (st, _) = s
        .call(
            reqwest::Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"login": "hearth-automod", "password": "!system"})),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // delete_recent without block: the raider's earlier messages go.
    let first = s.send(&r, &general, "hello all").await;
    let second = s.send(&r, &general, "raidword").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, msgs) = s
            .get(
                &format!("/api/v1/channels/{general}/messages"),
                &owner.token,
            )
            .await;
        let ids: Vec<&str> = msgs
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        if !ids.contains(&first["id"].as_str().unwrap()) {
            break;
        }
        assert!(Instant::now() < deadline, "not deleted: {msgs}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = second;
    find(
        &audit_log(s, &owner, &c, "action=automod_delete", 1).await,
        "automod_delete",
    );
}

/// MESSAGE_DELETE_BULK reaches the channel's viewers; audit announcements
/// (in the log) never reach a client.
pub async fn gateway_sees_bulk_deletes_not_audit(s: &TestServer) {
    use crate::gateway::Gw;
    let owner = s.register("gwaown").await;
    let (c, general) = s.community(&owner, "GwAudit").await;
    let m = s.register("gwamem").await;
    s.join(&owner, &c, &m).await;
    let (mut gw, _) = Gw::identify(s, &m).await;
    let a = s.send(&m, &general, "one").await;
    let b = s.send(&m, &general, "two").await;
    let (st, role) = s
        .post(
            &format!("/api/v1/communities/{c}/roles"),
            &owner.token,
            json!({"name": "Audited"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{role}");
    let (st, v) = s
        .post(
            &format!("/api/v1/channels/{general}/messages/bulk-delete"),
            &owner.token,
            json!({"message_ids": [a["id"], b["id"]]}),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let d = gw.expect("MESSAGE_DELETE_BULK").await;
    assert_eq!(d["ids"], json!([a["id"], b["id"]]));
    assert_eq!(d["channel_id"], general.as_str());
    assert_eq!(d["community_id"], c.as_str());
    // The audit entries exist, and no client was sent them.
    audit_log(s, &owner, &c, "action=message_bulk_delete", 1).await;
    gw.never("AUDIT_LOG_ENTRY", Duration::from_millis(500))
        .await;
}

/// Two nodes on one Postgres, NATS and Redis: a rule change on one node
/// reaches the other's cached rules (the `internal.automod` nudge), and
/// the audit log (one durable consumer for the cluster) stores each entry
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_automod_nudge_and_one_audit_entry() {
    use crate::cluster::{drop_log, nats_url, redis_url};
    let admin = hearth_store::testing::admin_url();
    let db = format!(
        "hearth_modcl_{}_{}",
        std::process::id(),
        rand::random::<u32>()
    );
    let url = hearth_store::testing::create_database(&admin, &db)
        .await
        .expect("Postgres");
    let root = format!("t{}", rand::random::<u32>());
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let (url, root) = (url.clone(), root.clone());
        nodes.push(
            TestServer::start_with(crate::Db::Shared(url), move |c| {
                c.nats_url = nats_url();
                c.redis_url = hearth_server::config::Secret(redis_url());
                c.nats_subject_root = root;
                c.rate_limit.enabled = false;
                c.jwt_secret = hearth_server::config::Secret("one secret for both nodes".into());
            })
            .await,
        );
    }
    let (n1, n2) = (&nodes[0], &nodes[1]);
    let owner = n1.register("mclown").await;
    let m = n1.register("mclmem").await;
    let (c, general) = n1.community(&owner, "ModCluster").await;
    n1.join(&owner, &c, &m).await;
    // Node 2 caches the community's (empty) rules.
    n2.send(&m, &general, "forbidden fruit").await;
    let (st, v) = put_rules(
        n1,
        &owner,
        &c,
        json!([{"id": "1", "name": "Fruit", "trigger": {"type": "keywords", "words": ["fruit"]}, "actions": [{"type": "block"}]}]),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (st, e) = n2
            .post(
                &format!("/api/v1/channels/{general}/messages"),
                &m.token,
                json!({"content": "fruit"}),
            )
            .await;
        if st == StatusCode::BAD_REQUEST {
            assert_eq!(e["error"]["code"], "automod_blocked");
            break;
        }
        assert!(Instant::now() < deadline, "node 2 still uses its old rules");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Both nodes run the consumer; the rule's creation is stored once.
    let log = audit_log(n2, &owner, &c, "action=automod_rule_create", 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = audit_log(n1, &owner, &c, "action=automod_rule_create", 1).await;
    assert_eq!((log.len(), again.len()), (1, 1), "{again:#?}");
    for n in nodes {
        n.stop().await;
    }
    drop_log(&root).await;
    hearth_store::testing::drop_database(&admin, &db)
        .await
        .expect("drop");
}
