//! The staff policy's storage seam and its memory implementation.

use std::fmt;

use async_trait::async_trait;
use hearth_types::UserId;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::catalog::StaffObject;
use crate::{ModerationError, StoreError};

/// A staff role name: 1 to 32 of `a-z`, `0-9` and `_`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StaffRole(String);

impl StaffRole {
    pub fn new(name: &str) -> Result<StaffRole, ModerationError> {
        let ok = (1..=32).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !ok {
            return Err(ModerationError::InvalidRole(name.to_owned()));
        }
        Ok(StaffRole(name.to_owned()))
    }

    pub fn admin() -> StaffRole {
        StaffRole(super::catalog::ADMIN.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_admin(&self) -> bool {
        self.0 == super::catalog::ADMIN
    }
}

impl TryFrom<String> for StaffRole {
    type Error = ModerationError;
    fn try_from(s: String) -> Result<Self, ModerationError> {
        StaffRole::new(&s)
    }
}

impl From<StaffRole> for String {
    fn from(r: StaffRole) -> String {
        r.0
    }
}

impl fmt::Display for StaffRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One line of the staff policy, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PolicyRule {
    /// `role` may do `action` on `object`; either may be `*` (any). Made
    /// through [`PolicyRule::permission`], which validates the names.
    Permission {
        role: StaffRole,
        object: String,
        action: String,
    },
    /// `user` holds `role`.
    Member { user: UserId, role: StaffRole },
}

impl PolicyRule {
    /// A permission rule with its object and action checked against the
    /// catalog: `*` or a known object; `*` or an action of that object (of
    /// some object, when the object is `*`).
    pub fn permission(
        role: StaffRole,
        object: &str,
        action: &str,
    ) -> Result<PolicyRule, ModerationError> {
        if object != "*" {
            let o: StaffObject = object.parse()?;
            if action != "*" {
                o.action(action)?;
            }
        } else if action != "*"
            && !StaffObject::ALL
                .iter()
                .any(|o| o.actions().iter().any(|a| a.as_str() == action))
        {
            return Err(ModerationError::UnknownAction {
                object: object.to_owned(),
                action: action.to_owned(),
            });
        }
        Ok(PolicyRule::Permission {
            role,
            object: object.to_owned(),
            action: action.to_owned(),
        })
    }

    /// Whether the rule is well formed (rules read back from storage are
    /// checked again: a rule naming something that no longer exists is skipped).
    pub fn is_valid(&self) -> bool {
        match self {
            PolicyRule::Permission {
                role,
                object,
                action,
            } => PolicyRule::permission(role.clone(), object, action).is_ok(),
            PolicyRule::Member { user, .. } => user.0 > 0,
        }
    }
}

/// Where the staff policy is kept (the server: a table in the database).
/// Each call is one statement; [`StaffPolicy`](super::StaffPolicy)
/// serializes its edits, so implementations need no locking of their own.
#[async_trait]
pub trait PolicyStore: Send + Sync {
    /// Every rule.
    async fn load(&self) -> Result<Vec<PolicyRule>, StoreError>;
    /// Adds a rule; false if it was there already.
    async fn add(&self, rule: &PolicyRule) -> Result<bool, StoreError>;
    /// Removes a rule; false if it was not there.
    async fn remove(&self, rule: &PolicyRule) -> Result<bool, StoreError>;
}

/// A [`PolicyStore`] in memory, for tests and single-process tools.
#[derive(Default)]
pub struct MemoryPolicyStore {
    rules: Mutex<Vec<PolicyRule>>,
}

impl MemoryPolicyStore {
    pub fn new() -> MemoryPolicyStore {
        MemoryPolicyStore::default()
    }

    pub fn with_rules(rules: Vec<PolicyRule>) -> MemoryPolicyStore {
        MemoryPolicyStore {
            rules: Mutex::new(rules),
        }
    }
}

#[async_trait]
impl PolicyStore for MemoryPolicyStore {
    async fn load(&self) -> Result<Vec<PolicyRule>, StoreError> {
        Ok(self.rules.lock().clone())
    }

    async fn add(&self, rule: &PolicyRule) -> Result<bool, StoreError> {
        let mut rules = self.rules.lock();
        if rules.contains(rule) {
            return Ok(false);
        }
        rules.push(rule.clone());
        Ok(true)
    }

    async fn remove(&self, rule: &PolicyRule) -> Result<bool, StoreError> {
        let mut rules = self.rules.lock();
        let before = rules.len();
        rules.retain(|r| r != rule);
        Ok(rules.len() != before)
    }
}
