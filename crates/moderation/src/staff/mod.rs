//! Platform staff roles, decided by casbin.
//!
//! Separate from the per-community permissions of `hearth-rbac`: this is who
//! may use the admin API (find and suspend users, take communities down,
//! handle instance reports, read statistics, edit this very policy).
//!
//! The model is casbin's RBAC: subjects are users (`user:<id>`), roles
//! `role:<name>`, objects and actions come from a fixed catalog
//! ([`StaffObject`], [`StaffAction`]), and a permission may use `*` for any
//! object or action. The `admin` role holds `*, *`, built in (never stored,
//! never editable). The policy lives in a [`PolicyStore`]; a new, empty
//! store is seeded with the default roles' permissions.
//!
//! Checks ([`StaffPolicy::check`]) are synchronous and cached per (user,
//! object, action); an edit builds a new enforcer and swaps it in with a new,
//! empty cache, so an answer changes at once on this node. Other nodes see a
//! change when they [`reload`](StaffPolicy::reload) (the server nudges them
//! over the bus after each edit).
//!
//! Edits are checked in the domain, like every chat operation: the actor
//! needs `policy:edit`, may grant only what they hold themselves (so nobody
//! edits their way up; the `admin` role only by an admin), unknown names are
//! refused, and the last admin cannot be removed. The command line acts as
//! [`Actor::Operator`], which needs no permission (it has the database
//! anyway) but keeps every other rule.

mod catalog;
mod store;

use std::collections::HashMap;
use std::sync::Arc;

use casbin::{CoreApi, DefaultModel, Enforcer, MgmtApi, NullAdapter};
use hearth_types::UserId;
use parking_lot::RwLock;

pub use catalog::{
    ADMIN, AdminOp, SUPPORT, StaffAction, StaffObject, TRUST_AND_SAFETY, all_pairs,
    default_permissions,
};
pub use store::{MemoryPolicyStore, PolicyRule, PolicyStore, StaffRole};

use crate::ModerationError;

const MODEL: &str = r#"
[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub) && (p.obj == "*" || r.obj == p.obj) && (p.act == "*" || r.act == p.act)
"#;

/// Cached answers kept per policy version before the cache starts over.
const CACHE_CAP: usize = 100_000;

/// Who is editing the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A staff member through the admin API: needs `policy:edit`.
    Staff(UserId),
    /// The operator at the command line (`hearth admin …`).
    Operator,
}

/// One version of the policy: its rules, the enforcer built from them and
/// the answers given so far.
struct Snapshot {
    rules: Vec<PolicyRule>,
    enforcer: Enforcer,
    cache: RwLock<HashMap<(UserId, StaffObject, StaffAction), bool>>,
}

/// The staff policy of the instance.
pub struct StaffPolicy {
    store: Arc<dyn PolicyStore>,
    current: RwLock<Arc<Snapshot>>,
    /// Serializes edits and reloads (each reads, writes the store, rebuilds).
    edit: tokio::sync::Mutex<()>,
}

fn engine(e: casbin::Error) -> ModerationError {
    ModerationError::Engine(e.to_string())
}

fn subject(user: UserId) -> String {
    format!("user:{}", user.0)
}

fn role_subject(role: &StaffRole) -> String {
    format!("role:{role}")
}

async fn build(rules: Vec<PolicyRule>) -> Result<Snapshot, ModerationError> {
    let model = DefaultModel::from_str(MODEL).await.map_err(engine)?;
    let mut enforcer = Enforcer::new(model, NullAdapter).await.map_err(engine)?;
    let mut p = vec![vec![
        role_subject(&StaffRole::admin()),
        "*".into(),
        "*".into(),
    ]];
    let mut g = Vec::new();
    for r in &rules {
        match r {
            PolicyRule::Permission {
                role,
                object,
                action,
            } => {
                if !role.is_admin() {
                    p.push(vec![role_subject(role), object.clone(), action.clone()]);
                }
            }
            PolicyRule::Member { user, role } => g.push(vec![subject(*user), role_subject(role)]),
        }
    }
    enforcer.add_policies(p).await.map_err(engine)?;
    if !g.is_empty() {
        enforcer.add_grouping_policies(g).await.map_err(engine)?;
    }
    Ok(Snapshot {
        rules,
        enforcer,
        cache: RwLock::new(HashMap::new()),
    })
}

impl StaffPolicy {
    /// Loads the policy from `store`, seeding an empty store with the
    /// default roles' permissions.
    pub async fn open(store: Arc<dyn PolicyStore>) -> Result<StaffPolicy, ModerationError> {
        let mut rules = store.load().await?;
        if rules.is_empty() {
            for (role, o, a) in default_permissions() {
                let rule = PolicyRule::permission(StaffRole::new(role)?, o.as_str(), a.as_str())?;
                store.add(&rule).await?;
                rules.push(rule);
            }
        }
        let snapshot = build(valid(rules)).await?;
        Ok(StaffPolicy {
            store,
            current: RwLock::new(Arc::new(snapshot)),
            edit: tokio::sync::Mutex::new(()),
        })
    }

    /// Reads the policy from the store again (another node changed it).
    pub async fn reload(&self) -> Result<(), ModerationError> {
        let _edit = self.edit.lock().await;
        let rules = self.store.load().await?;
        self.install(valid(rules)).await
    }

    /// Reads the policy again and installs it only if it changed (so the
    /// cached answers survive): for a node polling the store, which a
    /// process without a shared bus (`hearth admin staff` next to a
    /// single node) edits behind its back. True if it changed.
    pub async fn refresh(&self) -> Result<bool, ModerationError> {
        let _edit = self.edit.lock().await;
        let rules = valid(self.store.load().await?);
        let same = {
            let now = self.current.read();
            let had: std::collections::HashSet<&PolicyRule> = now.rules.iter().collect();
            rules.len() == now.rules.len() && rules.iter().all(|r| had.contains(r))
        };
        if same {
            return Ok(false);
        }
        self.install(rules).await?;
        Ok(true)
    }

    /// Whether `user` may do `action` on `object`. Cached; a pair outside
    /// the catalog is always false.
    pub fn check(&self, user: UserId, object: StaffObject, action: StaffAction) -> bool {
        let key = (user, object, action);
        let snapshot = {
            let current = self.current.read();
            if let Some(&answer) = current.cache.read().get(&key) {
                return answer;
            }
            Arc::clone(&current)
        };
        let answer = object.allows(action)
            && snapshot
                .enforcer
                .enforce((subject(user), object.as_str(), action.as_str()))
                .unwrap_or_else(|e| {
                    tracing::error!(error = %e, "staff policy check failed; refusing");
                    false
                });
        let mut cache = snapshot.cache.write();
        if cache.len() >= CACHE_CAP {
            cache.clear();
        }
        cache.insert(key, answer);
        answer
    }

    /// [`check`](Self::check) for an admin API operation, as an error.
    pub fn require(&self, user: UserId, op: AdminOp) -> Result<(), ModerationError> {
        let (object, action) = op.requires();
        if self.check(user, object, action) {
            return Ok(());
        }
        Err(ModerationError::Forbidden {
            user,
            object: object.as_str(),
            action: action.as_str(),
        })
    }

    /// Every rule as stored (without the built-in admin permission).
    pub fn rules(&self) -> Vec<PolicyRule> {
        self.current.read().rules.clone()
    }

    /// The roles `user` holds.
    pub fn roles_of(&self, user: UserId) -> Vec<StaffRole> {
        let current = self.current.read();
        let mut roles: Vec<StaffRole> = current
            .rules
            .iter()
            .filter_map(|r| match r {
                PolicyRule::Member { user: u, role } if *u == user => Some(role.clone()),
                _ => None,
            })
            .collect();
        roles.sort();
        roles
    }

    /// The users holding `role`.
    pub fn members_of(&self, role: &StaffRole) -> Vec<UserId> {
        let current = self.current.read();
        let mut users: Vec<UserId> = current
            .rules
            .iter()
            .filter_map(|r| match r {
                PolicyRule::Member { user, role: r } if r == role => Some(*user),
                _ => None,
            })
            .collect();
        users.sort();
        users
    }

    /// Everything `user` may do.
    pub fn permissions_of(&self, user: UserId) -> Vec<(StaffObject, StaffAction)> {
        all_pairs()
            .filter(|(o, a)| self.check(user, *o, *a))
            .collect()
    }

    /// Gives `user` the staff role `role`. False if they held it already.
    pub async fn grant(
        &self,
        actor: Actor,
        user: UserId,
        role: &StaffRole,
    ) -> Result<bool, ModerationError> {
        let _edit = self.edit.lock().await;
        let rules = self.current.read().rules.clone();
        if !role.is_admin()
            && !rules
                .iter()
                .any(|r| matches!(r, PolicyRule::Permission { role: x, .. } if x == role))
        {
            return Err(ModerationError::InvalidRole(format!(
                "{role} (no such role: give it a permission first)"
            )));
        }
        self.authorize_role(actor, role, &rules)?;
        let rule = PolicyRule::Member {
            user,
            role: role.clone(),
        };
        self.apply(rules, rule, true).await
    }

    /// Takes the staff role `role` from `user`. Refuses to take `admin` from
    /// the last admin. False if they did not hold it.
    pub async fn revoke(
        &self,
        actor: Actor,
        user: UserId,
        role: &StaffRole,
    ) -> Result<bool, ModerationError> {
        let _edit = self.edit.lock().await;
        let rules = self.current.read().rules.clone();
        self.authorize_role(actor, role, &rules)?;
        let rule = PolicyRule::Member {
            user,
            role: role.clone(),
        };
        if role.is_admin() && rules.contains(&rule) {
            let admins = rules
                .iter()
                .filter(|r| matches!(r, PolicyRule::Member { role, .. } if role.is_admin()))
                .count();
            if admins <= 1 {
                return Err(ModerationError::LastAdmin(user));
            }
        }
        self.apply(rules, rule, false).await
    }

    /// Lets `role` do `action` on `object` (`*` for any). Creates the role
    /// if it is new. False if the rule existed.
    pub async fn add_permission(
        &self,
        actor: Actor,
        role: &StaffRole,
        object: &str,
        action: &str,
    ) -> Result<bool, ModerationError> {
        self.edit_permission(actor, role, object, action, true)
            .await
    }

    /// Removes a permission rule. False if there was no such rule.
    pub async fn remove_permission(
        &self,
        actor: Actor,
        role: &StaffRole,
        object: &str,
        action: &str,
    ) -> Result<bool, ModerationError> {
        self.edit_permission(actor, role, object, action, false)
            .await
    }

    /// Adds (`add`) or removes a permission rule: the built-in admin role is
    /// never edited, and the actor must hold what the rule names.
    async fn edit_permission(
        &self,
        actor: Actor,
        role: &StaffRole,
        object: &str,
        action: &str,
        add: bool,
    ) -> Result<bool, ModerationError> {
        let rule = PolicyRule::permission(role.clone(), object, action)?;
        if role.is_admin() {
            return Err(ModerationError::BuiltInRole);
        }
        let _edit = self.edit.lock().await;
        let rules = self.current.read().rules.clone();
        self.authorize_pairs(actor, &pairs_of(object, action))?;
        self.apply(rules, rule, add).await
    }

    /// The actor may edit the policy and holds every permission of `role`
    /// (the admin role: is an admin).
    fn authorize_role(
        &self,
        actor: Actor,
        role: &StaffRole,
        rules: &[PolicyRule],
    ) -> Result<(), ModerationError> {
        let Actor::Staff(user) = actor else {
            return Ok(());
        };
        self.require(user, AdminOp::EditPolicy)?;
        if role.is_admin() {
            if rules.contains(&PolicyRule::Member {
                user,
                role: StaffRole::admin(),
            }) {
                return Ok(());
            }
            return Err(ModerationError::Forbidden {
                user,
                object: "policy",
                action: "grant the admin role",
            });
        }
        let mut pairs = Vec::new();
        for r in rules {
            if let PolicyRule::Permission {
                role: x,
                object,
                action,
            } = r
                && x == role
            {
                pairs.extend(pairs_of(object, action));
            }
        }
        self.authorize_pairs(actor, &pairs)
    }

    fn authorize_pairs(
        &self,
        actor: Actor,
        pairs: &[(StaffObject, StaffAction)],
    ) -> Result<(), ModerationError> {
        let Actor::Staff(user) = actor else {
            return Ok(());
        };
        self.require(user, AdminOp::EditPolicy)?;
        for (o, a) in pairs {
            if !self.check(user, *o, *a) {
                return Err(ModerationError::Forbidden {
                    user,
                    object: o.as_str(),
                    action: a.as_str(),
                });
            }
        }
        Ok(())
    }

    /// Writes one change to the store, then swaps in the new policy.
    async fn apply(
        &self,
        mut rules: Vec<PolicyRule>,
        rule: PolicyRule,
        add: bool,
    ) -> Result<bool, ModerationError> {
        let present = rules.contains(&rule);
        if present == add {
            return Ok(false);
        }
        if add {
            self.store.add(&rule).await?;
            rules.push(rule);
        } else {
            self.store.remove(&rule).await?;
            rules.retain(|r| *r != rule);
        }
        self.install(rules).await?;
        Ok(true)
    }

    async fn install(&self, rules: Vec<PolicyRule>) -> Result<(), ModerationError> {
        let snapshot = build(rules).await?;
        *self.current.write() = Arc::new(snapshot);
        Ok(())
    }
}

/// The catalog pairs a permission rule's object and action cover.
fn pairs_of(object: &str, action: &str) -> Vec<(StaffObject, StaffAction)> {
    all_pairs()
        .filter(|(o, a)| {
            (object == "*" || o.as_str() == object) && (action == "*" || a.as_str() == action)
        })
        .collect()
}

fn valid(rules: Vec<PolicyRule>) -> Vec<PolicyRule> {
    let mut seen = std::collections::HashSet::with_capacity(rules.len());
    let mut out = Vec::with_capacity(rules.len());
    for r in rules {
        if !r.is_valid() {
            tracing::warn!(rule = ?r, "skipping a staff policy rule that names nothing known");
        } else if seen.insert(r.clone()) {
            out.push(r);
        }
    }
    out
}
