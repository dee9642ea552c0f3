//! Audit entries: stable names, diffs, filters, idempotent recording.

use hearth_moderation::audit::{AuditStore, MAX_REASON_CHARS, diff};
use hearth_moderation::{
    AuditAction, AuditEntry, AuditEntryId, AuditFilter, Change, MemoryAuditStore, TargetKind,
};
use hearth_types::{CommunityId, UserId};
use serde_json::json;

#[test]
fn action_and_target_names_round_trip() {
    for a in AuditAction::ALL {
        let s = a.to_string();
        assert_eq!(s.parse::<AuditAction>().unwrap(), *a);
        assert_eq!(serde_json::to_value(a).unwrap(), json!(s));
        assert_eq!(serde_json::from_value::<AuditAction>(json!(s)).unwrap(), *a);
        assert!(
            s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{s}"
        );
    }
    for k in TargetKind::ALL {
        assert_eq!(k.to_string().parse::<TargetKind>().unwrap(), *k);
    }
    // A few names are fixed by the issue and by stored data.
    assert_eq!(AuditAction::MemberBan.as_str(), "member_ban");
    assert_eq!(AuditAction::OverwritePut.as_str(), "overwrite_put");
    assert_eq!(AuditAction::AutomodBlock.as_str(), "automod_block");
    assert!("member_explode".parse::<AuditAction>().is_err());
    assert!(serde_json::from_value::<AuditAction>(json!("nope")).is_err());
    let mut names: Vec<_> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), AuditAction::ALL.len());
}

#[test]
fn diff_lists_changed_top_level_keys() {
    let before = json!({"name": "general", "topic": "hi", "nsfw": false, "position": 1});
    let after =
        json!({"name": "lobby", "topic": "hi", "nsfw": false, "slowmode": 5, "position": 1});
    assert_eq!(
        diff(&before, &after),
        vec![
            Change {
                key: "name".into(),
                before: Some(json!("general")),
                after: Some(json!("lobby"))
            },
            Change {
                key: "slowmode".into(),
                before: None,
                after: Some(json!(5))
            },
        ]
    );
    // Create and delete.
    let created = diff(&json!(null), &json!({"b": 1, "a": [1, 2]}));
    assert_eq!(
        created.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert!(created.iter().all(|c| c.before.is_none()));
    let deleted = diff(&json!({"a": 1}), &json!(null));
    assert_eq!(deleted[0].after, None);
    assert!(diff(&before, &before).is_empty());
    // Nested values are compared whole.
    let d = diff(&json!({"perms": {"a": 1}}), &json!({"perms": {"a": 2}}));
    assert_eq!(d.len(), 1);
    // Scalars.
    assert_eq!(diff(&json!(1), &json!(2))[0].key, "value");
}

fn entry(id: i64, actor: i64, action: AuditAction, target: i64) -> AuditEntry {
    AuditEntry {
        id: AuditEntryId(id),
        community_id: Some(CommunityId(7)),
        actor_id: Some(UserId(actor)),
        action,
        target_kind: TargetKind::User,
        target_id: Some(target),
        reason: None,
        changes: vec![],
        created_at: id,
    }
}

#[tokio::test]
async fn recording_is_idempotent_and_filters_work() {
    let store = MemoryAuditStore::default();
    let e = entry(1, 10, AuditAction::MemberBan, 20);
    assert!(store.record(&e).await.unwrap());
    assert!(
        !store.record(&e).await.unwrap(),
        "a redelivered event is recorded once"
    );
    for (id, actor, action, target) in [
        (2, 10, AuditAction::MemberKick, 21),
        (3, 11, AuditAction::MemberBan, 22),
        (4, 10, AuditAction::RoleUpdate, 30),
    ] {
        store
            .record(&entry(id, actor, action, target))
            .await
            .unwrap();
    }
    let mut admin = entry(5, 10, AuditAction::AdminUserSuspend, 20);
    admin.community_id = None;
    store.record(&admin).await.unwrap();

    let ids = |v: Vec<AuditEntry>| v.into_iter().map(|e| e.id.0).collect::<Vec<_>>();
    let community = AuditFilter {
        community_id: Some(CommunityId(7)),
        ..Default::default()
    };
    assert_eq!(ids(store.list(&community, 50).await.unwrap()), [4, 3, 2, 1]);
    let by_actor = AuditFilter {
        actor_id: Some(UserId(10)),
        ..community.clone()
    };
    assert_eq!(ids(store.list(&by_actor, 50).await.unwrap()), [4, 2, 1]);
    let bans = AuditFilter {
        action: Some(AuditAction::MemberBan),
        ..community.clone()
    };
    assert_eq!(ids(store.list(&bans, 50).await.unwrap()), [3, 1]);
    let target = AuditFilter {
        target_id: Some(20),
        ..community.clone()
    };
    assert_eq!(ids(store.list(&target, 50).await.unwrap()), [1]);
    let page = AuditFilter {
        before: Some(AuditEntryId(4)),
        after: Some(AuditEntryId(1)),
        ..community.clone()
    };
    assert_eq!(ids(store.list(&page, 50).await.unwrap()), [3, 2]);
    assert_eq!(ids(store.list(&community, 2).await.unwrap()), [4, 3]);
    assert_eq!(
        ids(store.list(&AuditFilter::default(), 50).await.unwrap()),
        [5]
    );
}

#[test]
fn entries_serialize_with_stable_names_and_cut_reasons() {
    let e = entry(1, 10, AuditAction::MemberTimeout, 20).with_reason(Some(&"x".repeat(1000)));
    assert_eq!(e.reason.as_ref().unwrap().chars().count(), MAX_REASON_CHARS);
    let v = serde_json::to_value(&e).unwrap();
    assert_eq!(v["action"], "member_timeout");
    assert_eq!(v["target_kind"], "user");
    assert_eq!(v["id"], "1");
    let back: AuditEntry = serde_json::from_value(v).unwrap();
    assert_eq!(back, e);
    assert_eq!(
        entry(1, 1, AuditAction::MemberKick, 1)
            .with_reason(Some("  "))
            .reason,
        None
    );
}
