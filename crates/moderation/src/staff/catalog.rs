//! What platform staff can be allowed to do: objects, actions, the pairs
//! that exist, the built-in roles' defaults and the admin API's operations.

use std::fmt;
use std::str::FromStr;

use crate::ModerationError;
use crate::audit::AuditAction;

macro_rules! names {
    ($(#[$doc:meta])* $ty:ident { $($(#[$vdoc:meta])* $v:ident = $s:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $ty { $($(#[$vdoc])* $v),* }

        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$v),*];
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$v => $s),* }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

names!(
    /// An admin resource.
    StaffObject {
        Users = "users",
        Communities = "communities",
        Reports = "reports",
        Stats = "stats",
        /// The staff policy itself.
        Policy = "policy",
        /// The instance-level audit log.
        Audit = "audit",
    }
);

names!(
    /// Something done to an admin resource.
    StaffAction {
        Read = "read",
        Suspend = "suspend",
        Unsuspend = "unsuspend",
        ResetMfa = "reset_mfa",
        Erase = "erase",
        Takedown = "takedown",
        Handle = "handle",
        Edit = "edit",
    }
);

impl FromStr for StaffObject {
    type Err = ModerationError;
    fn from_str(s: &str) -> Result<Self, ModerationError> {
        StaffObject::ALL
            .iter()
            .copied()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| ModerationError::UnknownObject(s.to_owned()))
    }
}

impl StaffObject {
    /// The actions that exist on this object.
    pub fn actions(self) -> &'static [StaffAction] {
        use StaffAction::*;
        match self {
            StaffObject::Users => &[Read, Suspend, Unsuspend, ResetMfa, Erase],
            StaffObject::Communities => &[Read, Takedown],
            StaffObject::Reports => &[Read, Handle],
            StaffObject::Stats => &[Read],
            StaffObject::Policy => &[Read, Edit],
            StaffObject::Audit => &[Read],
        }
    }

    pub fn allows(self, action: StaffAction) -> bool {
        self.actions().contains(&action)
    }

    /// Parses `action` as one of this object's actions.
    pub fn action(self, action: &str) -> Result<StaffAction, ModerationError> {
        self.actions()
            .iter()
            .copied()
            .find(|a| a.as_str() == action)
            .ok_or_else(|| ModerationError::UnknownAction {
                object: self.as_str().to_owned(),
                action: action.to_owned(),
            })
    }
}

/// Every (object, action) pair that exists.
pub fn all_pairs() -> impl Iterator<Item = (StaffObject, StaffAction)> {
    StaffObject::ALL
        .iter()
        .flat_map(|o| o.actions().iter().map(move |a| (*o, *a)))
}

/// The built-in roles and the permissions a new instance gives them. `admin`
/// holds everything and cannot be edited; the others are only defaults.
pub const ADMIN: &str = "admin";
pub const TRUST_AND_SAFETY: &str = "trust_and_safety";
pub const SUPPORT: &str = "support";

pub fn default_permissions() -> Vec<(&'static str, StaffObject, StaffAction)> {
    use StaffAction::*;
    use StaffObject::*;
    let tns = [
        (Users, Read),
        (Users, Suspend),
        (Users, Unsuspend),
        (Communities, Read),
        (Communities, Takedown),
        (Reports, Read),
        (Reports, Handle),
        (Stats, Read),
        (Audit, Read),
    ];
    let support = [(Users, Read), (Users, ResetMfa), (Reports, Read)];
    tns.into_iter()
        .map(|(o, a)| (TRUST_AND_SAFETY, o, a))
        .chain(support.into_iter().map(|(o, a)| (SUPPORT, o, a)))
        .collect()
}

/// The admin API's operations: what each requires and how it is audited.
/// Every operation is audited, reads included (staff looking up a user is
/// itself worth a record).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AdminOp {
    FindUsers,
    SuspendUser,
    UnsuspendUser,
    ResetMfa,
    EraseUser,
    ListCommunities,
    TakedownCommunity,
    ListReports,
    ActionReport,
    DismissReport,
    Stats,
    ReadPolicy,
    EditPolicy,
    ReadAudit,
}

impl AdminOp {
    pub const ALL: &'static [AdminOp] = &[
        AdminOp::FindUsers,
        AdminOp::SuspendUser,
        AdminOp::UnsuspendUser,
        AdminOp::ResetMfa,
        AdminOp::EraseUser,
        AdminOp::ListCommunities,
        AdminOp::TakedownCommunity,
        AdminOp::ListReports,
        AdminOp::ActionReport,
        AdminOp::DismissReport,
        AdminOp::Stats,
        AdminOp::ReadPolicy,
        AdminOp::EditPolicy,
        AdminOp::ReadAudit,
    ];

    /// The permission the operation needs.
    pub fn requires(self) -> (StaffObject, StaffAction) {
        use AdminOp::*;
        use StaffAction as A;
        use StaffObject as O;
        match self {
            FindUsers => (O::Users, A::Read),
            SuspendUser => (O::Users, A::Suspend),
            UnsuspendUser => (O::Users, A::Unsuspend),
            ResetMfa => (O::Users, A::ResetMfa),
            EraseUser => (O::Users, A::Erase),
            ListCommunities => (O::Communities, A::Read),
            TakedownCommunity => (O::Communities, A::Takedown),
            ListReports => (O::Reports, A::Read),
            ActionReport | DismissReport => (O::Reports, A::Handle),
            Stats => (O::Stats, A::Read),
            ReadPolicy => (O::Policy, A::Read),
            EditPolicy => (O::Policy, A::Edit),
            ReadAudit => (O::Audit, A::Read),
        }
    }

    /// The audit-log action recorded for it.
    pub fn audit_action(self) -> AuditAction {
        use AdminOp::*;
        match self {
            FindUsers => AuditAction::AdminUsersSearch,
            SuspendUser => AuditAction::AdminUserSuspend,
            UnsuspendUser => AuditAction::AdminUserUnsuspend,
            ResetMfa => AuditAction::AdminUserResetMfa,
            EraseUser => AuditAction::AdminUserErase,
            ListCommunities => AuditAction::AdminCommunitiesList,
            TakedownCommunity => AuditAction::AdminCommunityTakedown,
            ListReports => AuditAction::AdminReportsList,
            ActionReport => AuditAction::AdminReportAction,
            DismissReport => AuditAction::AdminReportDismiss,
            Stats => AuditAction::AdminStatsRead,
            ReadPolicy => AuditAction::AdminPolicyRead,
            EditPolicy => AuditAction::AdminPolicyEdit,
            ReadAudit => AuditAction::AdminAuditRead,
        }
    }
}
