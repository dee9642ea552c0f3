//! The staff policy: the documented matrix of default roles, edits that
//! take effect at once, validation, no escalation, the last admin.

use std::sync::Arc;

use hearth_moderation::staff::{ADMIN, SUPPORT, TRUST_AND_SAFETY, all_pairs};
use hearth_moderation::{
    Actor, AdminOp, MemoryPolicyStore, ModerationError, PolicyRule, PolicyStore, StaffAction,
    StaffObject, StaffPolicy, StaffRole,
};
use hearth_types::UserId;

const ROOT: UserId = UserId(1);
const TNS: UserId = UserId(2);
const SUP: UserId = UserId(3);
const NOBODY: UserId = UserId(4);

/// The documented defaults (ARCHITECTURE.md, `crates/moderation`), written
/// here independently of the code: object, action, then admin,
/// trust_and_safety, support, a user without a role.
const MATRIX: &[(&str, &str, [bool; 4])] = &[
    ("users", "read", [true, true, true, false]),
    ("users", "suspend", [true, true, false, false]),
    ("users", "unsuspend", [true, true, false, false]),
    ("users", "reset_mfa", [true, false, true, false]),
    ("users", "erase", [true, false, false, false]),
    ("communities", "read", [true, true, false, false]),
    ("communities", "takedown", [true, true, false, false]),
    ("reports", "read", [true, true, true, false]),
    ("reports", "handle", [true, true, false, false]),
    ("stats", "read", [true, true, false, false]),
    ("policy", "read", [true, false, false, false]),
    ("policy", "edit", [true, false, false, false]),
    ("audit", "read", [true, true, false, false]),
];

fn role(name: &str) -> StaffRole {
    StaffRole::new(name).unwrap()
}

async fn policy() -> (StaffPolicy, Arc<MemoryPolicyStore>) {
    let store = Arc::new(MemoryPolicyStore::new());
    let p = StaffPolicy::open(store.clone()).await.unwrap();
    p.grant(Actor::Operator, ROOT, &role(ADMIN)).await.unwrap();
    p.grant(Actor::Operator, TNS, &role(TRUST_AND_SAFETY))
        .await
        .unwrap();
    p.grant(Actor::Operator, SUP, &role(SUPPORT)).await.unwrap();
    (p, store)
}

fn pair(o: &str, a: &str) -> (StaffObject, StaffAction) {
    let o: StaffObject = o.parse().unwrap();
    (o, o.action(a).unwrap())
}

#[tokio::test]
async fn default_roles_follow_the_documented_matrix() {
    let (p, _) = policy().await;
    // The table covers the whole catalog.
    assert_eq!(MATRIX.len(), all_pairs().count());
    for (o, a, expected) in MATRIX {
        let (obj, act) = pair(o, a);
        for (user, want) in [ROOT, TNS, SUP, NOBODY].into_iter().zip(expected) {
            // Twice: computed, then cached.
            assert_eq!(p.check(user, obj, act), *want, "{user} {o}:{a}");
            assert_eq!(p.check(user, obj, act), *want, "{user} {o}:{a} (cached)");
        }
    }
    assert_eq!(p.permissions_of(NOBODY), vec![]);
    assert_eq!(p.roles_of(TNS), vec![role(TRUST_AND_SAFETY)]);
}

#[tokio::test]
async fn admin_ops_require_their_permission() {
    let (p, _) = policy().await;
    for op in AdminOp::ALL {
        assert!(p.require(ROOT, *op).is_ok(), "{op:?}");
        let err = p.require(NOBODY, *op).unwrap_err();
        assert!(matches!(err, ModerationError::Forbidden { .. }));
        assert_eq!(err.code(), "staff_forbidden");
        assert!(op.audit_action().is_admin());
    }
    assert!(p.require(SUP, AdminOp::ResetMfa).is_ok());
    assert!(p.require(SUP, AdminOp::SuspendUser).is_err());
}

#[tokio::test]
async fn grants_and_revocations_change_answers_at_once() {
    let (p, store) = policy().await;
    let (o, a) = pair("users", "reset_mfa");
    assert!(!p.check(NOBODY, o, a));
    assert!(
        p.grant(Actor::Staff(ROOT), NOBODY, &role(SUPPORT))
            .await
            .unwrap()
    );
    assert!(p.check(NOBODY, o, a));
    assert!(
        !p.grant(Actor::Staff(ROOT), NOBODY, &role(SUPPORT))
            .await
            .unwrap()
    );
    assert!(
        p.revoke(Actor::Staff(ROOT), NOBODY, &role(SUPPORT))
            .await
            .unwrap()
    );
    assert!(!p.check(NOBODY, o, a));
    // Permission edits too.
    assert!(
        p.add_permission(Actor::Staff(ROOT), &role(SUPPORT), "stats", "read")
            .await
            .unwrap()
    );
    assert!(p.check(SUP, StaffObject::Stats, StaffAction::Read));
    assert!(
        p.remove_permission(Actor::Staff(ROOT), &role(SUPPORT), "stats", "read")
            .await
            .unwrap()
    );
    assert!(!p.check(SUP, StaffObject::Stats, StaffAction::Read));
    // Wildcards.
    p.add_permission(Actor::Staff(ROOT), &role(SUPPORT), "communities", "*")
        .await
        .unwrap();
    assert!(p.check(SUP, StaffObject::Communities, StaffAction::Takedown));
    assert!(!p.check(SUP, StaffObject::Users, StaffAction::Erase));
    // Everything went to the store; another node reloading sees it.
    let other = StaffPolicy::open(store.clone()).await.unwrap();
    assert!(other.check(SUP, StaffObject::Communities, StaffAction::Takedown));
    p.revoke(Actor::Staff(ROOT), SUP, &role(SUPPORT))
        .await
        .unwrap();
    assert!(
        other.check(SUP, StaffObject::Users, StaffAction::Read),
        "stale until reloaded"
    );
    other.reload().await.unwrap();
    assert!(!other.check(SUP, StaffObject::Users, StaffAction::Read));
}

#[tokio::test]
async fn unknown_names_are_refused() {
    let (p, _) = policy().await;
    let root = Actor::Staff(ROOT);
    let err = p
        .add_permission(root, &role(SUPPORT), "users", "fly")
        .await
        .unwrap_err();
    assert!(
        matches!(err, ModerationError::UnknownAction { .. }),
        "{err:?}"
    );
    let err = p
        .add_permission(root, &role(SUPPORT), "stats", "erase")
        .await
        .unwrap_err();
    assert!(
        matches!(err, ModerationError::UnknownAction { .. }),
        "{err:?}"
    );
    let err = p
        .add_permission(root, &role(SUPPORT), "servers", "read")
        .await
        .unwrap_err();
    assert!(matches!(err, ModerationError::UnknownObject(_)), "{err:?}");
    let err = p
        .add_permission(root, &role(SUPPORT), "*", "fly")
        .await
        .unwrap_err();
    assert!(
        matches!(err, ModerationError::UnknownAction { .. }),
        "{err:?}"
    );
    assert!(StaffRole::new("Bad Role").is_err() && StaffRole::new("").is_err());
    let err = p
        .grant(root, NOBODY, &role("no_such_role"))
        .await
        .unwrap_err();
    assert!(matches!(err, ModerationError::InvalidRole(_)), "{err:?}");
    let err = p
        .add_permission(root, &role(ADMIN), "users", "read")
        .await
        .unwrap_err();
    assert!(matches!(err, ModerationError::BuiltInRole));
    let err = p
        .remove_permission(root, &role(ADMIN), "*", "*")
        .await
        .unwrap_err();
    assert!(matches!(err, ModerationError::BuiltInRole));
}

#[tokio::test]
async fn the_last_admin_stays() {
    let (p, _) = policy().await;
    let admin = role(ADMIN);
    let err = p
        .revoke(Actor::Staff(ROOT), ROOT, &admin)
        .await
        .unwrap_err();
    assert!(matches!(err, ModerationError::LastAdmin(UserId(1))));
    let err = p.revoke(Actor::Operator, ROOT, &admin).await.unwrap_err();
    assert!(matches!(err, ModerationError::LastAdmin(_)));
    p.grant(Actor::Staff(ROOT), UserId(5), &admin)
        .await
        .unwrap();
    assert!(
        p.revoke(Actor::Staff(UserId(5)), ROOT, &admin)
            .await
            .unwrap()
    );
    assert!(!p.check(ROOT, StaffObject::Policy, StaffAction::Edit));
    let err = p
        .revoke(Actor::Staff(UserId(5)), UserId(5), &admin)
        .await
        .unwrap_err();
    assert!(matches!(err, ModerationError::LastAdmin(UserId(5))));
    assert_eq!(p.members_of(&admin), vec![UserId(5)]);
}

#[tokio::test]
async fn staff_cannot_edit_their_way_up() {
    let (p, _) = policy().await;
    // Trust and safety may not edit the policy at all.
    let err = p
        .grant(Actor::Staff(TNS), NOBODY, &role(SUPPORT))
        .await
        .unwrap_err();
    assert!(matches!(err, ModerationError::Forbidden { .. }), "{err:?}");
    // An editor holding only users:read and policy:edit.
    let editor = role("policy_editor");
    for (o, a) in [("policy", "edit"), ("policy", "read"), ("users", "read")] {
        p.add_permission(Actor::Operator, &editor, o, a)
            .await
            .unwrap();
    }
    let ed = UserId(6);
    p.grant(Actor::Operator, ed, &editor).await.unwrap();
    let me = Actor::Staff(ed);
    // Not admin, not a role with more than they hold, not a permission they lack.
    assert!(p.grant(me, NOBODY, &role(ADMIN)).await.is_err());
    assert!(p.grant(me, NOBODY, &role(SUPPORT)).await.is_err()); // support resets MFA
    assert!(
        p.add_permission(me, &editor, "users", "erase")
            .await
            .is_err()
    );
    assert!(p.add_permission(me, &editor, "*", "*").await.is_err());
    // What they hold, they may hand on.
    let viewer = role("viewer");
    assert!(
        p.add_permission(me, &viewer, "users", "read")
            .await
            .unwrap()
    );
    assert!(p.grant(me, NOBODY, &viewer).await.unwrap());
    assert!(p.check(NOBODY, StaffObject::Users, StaffAction::Read));
}

#[tokio::test]
async fn a_stored_policy_is_loaded_as_is() {
    let rules = vec![
        PolicyRule::permission(role("ops"), "stats", "read").unwrap(),
        PolicyRule::Member {
            user: UserId(9),
            role: role("ops"),
        },
        // A rule naming something that no longer exists is skipped.
        PolicyRule::Permission {
            role: role("ops"),
            object: "gone".into(),
            action: "read".into(),
        },
    ];
    let store = Arc::new(MemoryPolicyStore::with_rules(rules));
    let p = StaffPolicy::open(store.clone()).await.unwrap();
    assert!(p.check(UserId(9), StaffObject::Stats, StaffAction::Read));
    // Not seeded: the store was not empty.
    assert_eq!(p.rules().len(), 2);
    assert_eq!(store.load().await.unwrap().len(), 3);
    let json = serde_json::to_string(&p.rules()[1]).unwrap();
    assert_eq!(json, r#"{"kind":"member","user":"9","role":"ops"}"#);
}
