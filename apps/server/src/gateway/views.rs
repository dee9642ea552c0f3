//! Who may see what, held once per node: for each community this node
//! serves, its rules ([`CommunityRules`]: roles, channels, overwrites) and,
//! for each user with a session here, the channels they may VIEW — one
//! resolved view per (user, community), shared by all that user's sessions.
//!
//! Routing decides every channel event from these in memory: no database
//! work happens on the routing task. What needs the database is loaded
//! beside it and applied by it ([`Loaded`]):
//! - a permission nudge (`internal.permissions.<c>`) reloads the
//!   community's rules once, whatever the number of sessions; if the new
//!   rules give everyone the same access (a join or leave: the common case)
//!   nothing else happens, otherwise every member's view is re-resolved in
//!   memory and only the users whose view changed are told;
//! - a join (COMMUNITY_CREATE) loads that one member; meanwhile the events
//!   of that community for that user's sessions wait, in order, and are
//!   delivered when the member is known.
//!
//! Channel and role events change the rules in place (their bytes carry
//! the records); an event that arrives while a reload is in flight is kept
//! and re-applied on top of the reloaded rules, and another reload follows,
//! so the rules converge on the database.
//!
//! Communities and views live only while a session here needs them: the
//! reaper drops the rest ([`Views::retain_used`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hearth_chat::view::CommunityRules;
use hearth_types::{ChannelId, CommunityId, RoleId, UserId};
use parking_lot::Mutex;

use super::hub::Session;
use super::ring::LogEvent;
use crate::events::Change;

/// One member's view of one community.
pub struct Member {
    pub roles: Vec<RoleId>,
    pub visible: HashSet<ChannelId>,
}

struct Community {
    rules: Arc<CommunityRules>,
    members: HashMap<UserId, Member>,
    /// Every member id while there are at most `threshold`; `None` beyond.
    small: Option<HashSet<UserId>>,
    /// Members in all (exact at load, then kept by MEMBER_ADD/REMOVE).
    count: usize,
    loading: bool,
    /// Another reload is due once the one in flight lands.
    again: bool,
    /// Changes applied while a reload was in flight, re-applied on top.
    edits: Vec<Change>,
}

/// Events held for one (community, user) while the member loads.
type Held = Vec<(Arc<Session>, Arc<LogEvent>)>;

/// A database load, done beside the routing task and applied by it.
pub enum Loaded {
    /// A community's rules after a nudge (`None`: it is gone).
    Rules(CommunityId, Option<CommunityRules>),
    /// The rules could not be read: they stay as they were.
    RulesFailed(CommunityId),
    /// A member who just joined (`None`: not a member any more), with the
    /// community's rules and members if the node did not have them.
    Member {
        community: CommunityId,
        user: UserId,
        fresh: Option<Fresh>,
        roles: Option<Vec<RoleId>>,
    },
}

/// A community loaded for the first time on this node.
pub struct Fresh {
    pub rules: CommunityRules,
    pub members: Vec<UserId>,
}

/// What a user can see of one channel, as routing needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Sees it (and saw it before this event).
    Sees,
    Hidden,
    /// This event showed it.
    Gained,
    /// This event hid it.
    Lost,
    /// The member is loading: hold the event.
    Wait,
}

/// A user's view change, from a re-resolution.
pub struct Diff {
    pub user: UserId,
    pub gained: Vec<hearth_store::ChannelRecord>,
    pub lost: Vec<ChannelId>,
}

pub struct Views {
    map: Mutex<HashMap<CommunityId, Community>>,
    held: Mutex<HashMap<(CommunityId, UserId), Held>>,
    /// `gateway_presence_threshold`.
    threshold: AtomicUsize,
}

impl Default for Views {
    fn default() -> Self {
        Views::new(1_000)
    }
}

impl Views {
    pub fn new(presence_threshold: usize) -> Views {
        Views {
            map: Mutex::default(),
            held: Mutex::default(),
            threshold: AtomicUsize::new(presence_threshold),
        }
    }

    pub fn set_threshold(&self, members: usize) {
        self.threshold.store(members, Ordering::Relaxed);
    }

    fn threshold(&self) -> usize {
        self.threshold.load(Ordering::Relaxed)
    }

    fn community_from(&self, fresh: Fresh) -> Community {
        let count = fresh.members.len();
        Community {
            rules: Arc::new(fresh.rules),
            members: HashMap::new(),
            small: (count <= self.threshold()).then(|| fresh.members.into_iter().collect()),
            count,
            loading: false,
            again: false,
            edits: Vec::new(),
        }
    }

    /// Whether the node holds community `c`'s rules.
    pub fn has(&self, c: CommunityId) -> bool {
        self.map.lock().contains_key(&c)
    }

    /// The user's view of `c`, if known: the rules and visible channels.
    pub fn view(
        &self,
        c: CommunityId,
        u: UserId,
    ) -> Option<(Arc<CommunityRules>, HashSet<ChannelId>)> {
        let m = self.map.lock();
        let comm = m.get(&c)?;
        let me = comm.members.get(&u)?;
        Some((comm.rules.clone(), me.visible.clone()))
    }

    /// Records a member's view loaded for READY (or a resume), creating the
    /// community from `fresh` if the node has none. A member already known
    /// (maintained by routing since) or loading is left as it is; the view
    /// returned is the one routing will use from now on where it can be.
    pub fn install(
        &self,
        c: CommunityId,
        u: UserId,
        fresh: Option<Fresh>,
        roles: Vec<RoleId>,
    ) -> Option<(Arc<CommunityRules>, HashSet<ChannelId>)> {
        let loading = self.held.lock().contains_key(&(c, u));
        let mut m = self.map.lock();
        let comm = match m.entry(c) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(self.community_from(fresh?)),
        };
        if let Some(me) = comm.members.get(&u) {
            return Some((comm.rules.clone(), me.visible.clone()));
        }
        let visible = comm.rules.visible(u, &roles);
        if !loading {
            comm.members.insert(
                u,
                Member {
                    roles,
                    visible: visible.clone(),
                },
            );
        }
        Some((comm.rules.clone(), visible))
    }

    /// Starts holding `c`'s events for `u` (a join is loading). False if
    /// they were already held.
    pub fn hold(&self, c: CommunityId, u: UserId) -> bool {
        let mut h = self.held.lock();
        if h.contains_key(&(c, u)) {
            return false;
        }
        h.insert((c, u), Vec::new());
        true
    }

    /// Keeps an event for a session whose member is loading.
    pub fn keep(&self, c: CommunityId, s: &Arc<Session>, ev: &Arc<LogEvent>) {
        if let Some(q) = self.held.lock().get_mut(&(c, s.user)) {
            q.push((s.clone(), ev.clone()));
        }
    }

    /// Applies a loaded member: installs it (and its community if new) and
    /// returns what was held for it, to deliver now, in order.
    pub fn joined(
        &self,
        c: CommunityId,
        u: UserId,
        fresh: Option<Fresh>,
        roles: Option<Vec<RoleId>>,
    ) -> Held {
        let held = self.held.lock().remove(&(c, u)).unwrap_or_default();
        let mut m = self.map.lock();
        if !m.contains_key(&c)
            && let Some(fresh) = fresh
        {
            m.insert(c, self.community_from(fresh));
        }
        if let (Some(comm), Some(roles)) = (m.get_mut(&c), roles) {
            let visible = comm.rules.visible(u, &roles);
            comm.members.insert(u, Member { roles, visible });
        }
        held
    }

    /// How each of `users` (one entry per session, in order) sees channel
    /// `ch` of `c` after `change` (a CHANNEL_CREATE/UPDATE/DELETE, applied
    /// to the rules here, once) or, without one, now. The hot path (a
    /// message) is one lookup per session under one lock.
    pub fn channel_access(
        &self,
        c: CommunityId,
        ch: ChannelId,
        change: Option<&Change>,
        users: &[UserId],
    ) -> Vec<Access> {
        let held: HashSet<UserId> = {
            let h = self.held.lock();
            if h.is_empty() {
                HashSet::new()
            } else {
                users
                    .iter()
                    .copied()
                    .filter(|u| h.contains_key(&(c, *u)))
                    .collect()
            }
        };
        let mut m = self.map.lock();
        let Some(comm) = m.get_mut(&c) else {
            return users
                .iter()
                .map(|u| {
                    if held.contains(u) {
                        Access::Wait
                    } else {
                        Access::Hidden
                    }
                })
                .collect();
        };
        let mut changed: HashMap<UserId, Access> = HashMap::new();
        let structural = matches!(change, Some(Change::ChannelPut(_) | Change::ChannelGone(_)));
        if let Some(ch_change) = change.filter(|_| structural) {
            if comm.loading {
                comm.edits.push(ch_change.clone());
            }
            let rules = Arc::make_mut(&mut comm.rules);
            match ch_change {
                Change::ChannelPut(rec) => rules.put_channel(rec.clone()),
                Change::ChannelGone(id) => rules.remove_channel(*id),
                _ => {}
            }
            // Every member's view of this one channel, so views stay right
            // for users without a session in this event's audience too.
            let rules = comm.rules.clone();
            for (u, me) in comm.members.iter_mut() {
                let was = me.visible.contains(&ch);
                let now = rules.can_view(*u, &me.roles, ch);
                if now {
                    me.visible.insert(ch);
                } else {
                    me.visible.remove(&ch);
                }
                let a = match (was, now) {
                    (true, true) => Access::Sees,
                    (false, false) => Access::Hidden,
                    (false, true) => Access::Gained,
                    (true, false) => Access::Lost,
                };
                changed.insert(*u, a);
            }
        }
        users
            .iter()
            .map(|u| {
                if !held.is_empty() && held.contains(u) {
                    Access::Wait
                } else if structural {
                    changed.get(u).copied().unwrap_or(Access::Hidden)
                } else if comm
                    .members
                    .get(u)
                    .is_some_and(|me| me.visible.contains(&ch))
                {
                    Access::Sees
                } else {
                    Access::Hidden
                }
            })
            .collect()
    }

    /// Whether `u`'s events of `c` are being held.
    pub fn is_held(&self, c: CommunityId, u: UserId) -> bool {
        self.held.lock().contains_key(&(c, u))
    }

    /// Forgets `u`'s view of `c` (they are no longer a member).
    pub fn forget(&self, c: CommunityId, u: UserId) {
        if let Some(comm) = self.map.lock().get_mut(&c) {
            comm.members.remove(&u);
        }
    }

    /// A reload could not be done: the rules stay as they are.
    pub fn reload_failed(&self, c: CommunityId) {
        if let Some(comm) = self.map.lock().get_mut(&c) {
            comm.loading = false;
            comm.again = false;
            comm.edits.clear();
        }
    }

    /// A community event's change to the views (roles, members). Returns
    /// the users whose view changed.
    pub fn community_change(&self, c: CommunityId, change: &Change) -> Vec<Diff> {
        let mut m = self.map.lock();
        let Some(comm) = m.get_mut(&c) else {
            return Vec::new();
        };
        match change {
            Change::MemberAdded(u) => {
                comm.count += 1;
                if let Some(small) = &mut comm.small {
                    small.insert(*u);
                    if small.len() > self.threshold() {
                        comm.small = None;
                    }
                }
                Vec::new()
            }
            Change::MemberGone(u) => {
                comm.count = comm.count.saturating_sub(1);
                if let Some(small) = &mut comm.small {
                    small.remove(u);
                }
                comm.members.remove(u);
                Vec::new()
            }
            Change::MemberRoles(u, roles) => {
                let rules = comm.rules.clone();
                let Some(me) = comm.members.get_mut(u) else {
                    return Vec::new();
                };
                me.roles = roles.clone();
                let now = rules.visible(*u, roles);
                let diff = diff_of(*u, &rules, &me.visible, &now);
                me.visible = now;
                diff.into_iter().collect()
            }
            Change::RolePut(_) | Change::RoleGone(_) => {
                if comm.loading {
                    comm.edits.push(change.clone());
                }
                let rules = Arc::make_mut(&mut comm.rules);
                match change {
                    Change::RolePut(r) => rules.put_role(r.clone()),
                    Change::RoleGone(id) => rules.remove_role(*id),
                    _ => {}
                }
                let rules = comm.rules.clone();
                resolve_all(comm, &rules)
            }
            Change::CommunityGone => {
                m.remove(&c);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// A nudge: whether a reload of `c`'s rules should start now (one is
    /// not already in flight; if one is, another follows it).
    pub fn want_reload(&self, c: CommunityId) -> bool {
        let mut m = self.map.lock();
        let Some(comm) = m.get_mut(&c) else {
            return false;
        };
        if comm.loading {
            comm.again = true;
            return false;
        }
        comm.loading = true;
        comm.edits.clear();
        true
    }

    /// Applies reloaded rules. Returns the users whose view changed and
    /// whether another reload is due.
    pub fn reloaded(&self, c: CommunityId, rules: Option<CommunityRules>) -> (Vec<Diff>, bool) {
        let mut m = self.map.lock();
        let Some(comm) = m.get_mut(&c) else {
            return (Vec::new(), false);
        };
        comm.loading = false;
        let again = std::mem::take(&mut comm.again);
        let edits = std::mem::take(&mut comm.edits);
        let Some(mut rules) = rules else {
            // Gone: its COMMUNITY_DELETE removes it from every session.
            return (Vec::new(), false);
        };
        for e in edits {
            match e {
                Change::ChannelPut(rec) => rules.put_channel(rec),
                Change::ChannelGone(id) => rules.remove_channel(id),
                Change::RolePut(r) => rules.put_role(r),
                Change::RoleGone(id) => rules.remove_role(id),
                _ => {}
            }
        }
        let same = rules.same_access(&comm.rules);
        let rules = Arc::new(rules);
        comm.rules = rules.clone();
        if same {
            return (Vec::new(), again);
        }
        (resolve_all(comm, &rules), again)
    }

    /// The communities where `u` has a view here.
    pub fn communities_of(&self, u: UserId) -> Vec<CommunityId> {
        self.map
            .lock()
            .iter()
            .filter(|(_, comm)| comm.members.contains_key(&u))
            .map(|(c, _)| *c)
            .collect()
    }

    /// For presence: `Some(members)` for a small community, `None` for a
    /// large one (or one this node does not hold).
    pub fn small_members(&self, c: CommunityId) -> Option<HashSet<UserId>> {
        self.map.lock().get(&c)?.small.clone()
    }

    /// Whether community `c` is large (presence by subscription only).
    pub fn is_large(&self, c: CommunityId) -> bool {
        self.map
            .lock()
            .get(&c)
            .is_some_and(|comm| comm.small.is_none())
    }

    /// Keeps only the views of `users` (those with a session here, READY
    /// in progress included), and the communities that still have one.
    /// A user's view of a community stays right while kept whether or not
    /// their sessions are routed for it (routing maintains every member's),
    /// so it is only dropped with the user's last session.
    pub fn retain_used(&self, users: &HashSet<UserId>) {
        let held: HashSet<CommunityId> = self.held.lock().keys().map(|(c, _)| *c).collect();
        let mut m = self.map.lock();
        m.retain(|c, comm| {
            comm.members.retain(|u, _| users.contains(u));
            !comm.members.is_empty() || comm.loading || held.contains(c)
        });
    }

    /// Communities and member views held (for tests and metrics).
    pub fn size(&self) -> (usize, usize) {
        let m = self.map.lock();
        (m.len(), m.values().map(|c| c.members.len()).sum())
    }
}

fn diff_of(
    u: UserId,
    rules: &CommunityRules,
    before: &HashSet<ChannelId>,
    now: &HashSet<ChannelId>,
) -> Option<Diff> {
    if before == now {
        return None;
    }
    Some(Diff {
        user: u,
        gained: rules
            .channels()
            .iter()
            .filter(|ch| now.contains(&ch.id) && !before.contains(&ch.id))
            .cloned()
            .collect(),
        lost: before.difference(now).copied().collect(),
    })
}

/// Re-resolves every member's view under `rules`.
fn resolve_all(comm: &mut Community, rules: &CommunityRules) -> Vec<Diff> {
    let mut diffs = Vec::new();
    for (u, me) in comm.members.iter_mut() {
        let now = rules.visible(*u, &me.roles);
        if let Some(d) = diff_of(*u, rules, &me.visible, &now) {
            diffs.push(d);
        }
        me.visible = now;
    }
    diffs
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_chat::Permissions;
    use hearth_store::{
        ChannelKind, ChannelRecord, CommunityRecord, OverwriteRecord, OverwriteTargetKind,
        RoleRecord,
    };

    const C: CommunityId = CommunityId(1);

    fn channel(id: i64) -> ChannelRecord {
        ChannelRecord {
            id: ChannelId(id),
            community_id: Some(C),
            kind: ChannelKind::Text,
            name: Some(format!("c{id}")),
            topic: None,
            position: 0,
            parent_id: None,
            owner_id: None,
            dm_key: None,
            last_message_id: None,
            created_at: 0,
            settings: Default::default(),
        }
    }

    fn role(id: i64, p: Permissions) -> RoleRecord {
        RoleRecord {
            id: RoleId(id),
            community_id: C,
            name: format!("r{id}"),
            permissions: p.bits() as i64,
            color: None,
            position: i32::from(id != 1),
        }
    }

    /// Channel 11 is for role 5 only.
    fn rules(extra_deny_for: Option<i64>) -> CommunityRules {
        let view = Permissions::VIEW_CHANNEL.bits() as i64;
        let mut ows = vec![
            OverwriteRecord {
                channel_id: ChannelId(11),
                target_id: 1,
                target_kind: OverwriteTargetKind::Role,
                allow: 0,
                deny: view,
            },
            OverwriteRecord {
                channel_id: ChannelId(11),
                target_id: 5,
                target_kind: OverwriteTargetKind::Role,
                allow: view,
                deny: 0,
            },
        ];
        if let Some(u) = extra_deny_for {
            ows.push(OverwriteRecord {
                channel_id: ChannelId(10),
                target_id: u,
                target_kind: OverwriteTargetKind::Member,
                allow: 0,
                deny: view,
            });
        }
        CommunityRules::new(
            CommunityRecord {
                id: C,
                name: "c".into(),
                owner_id: UserId(100),
                icon_id: None,
                created_at: 0,
            },
            vec![
                role(5, Permissions::EMPTY),
                role(1, Permissions::VIEW_CHANNEL),
            ],
            vec![channel(10), channel(11)],
            &ows,
        )
    }

    fn fresh(members: &[i64]) -> Option<Fresh> {
        Some(Fresh {
            rules: rules(None),
            members: members.iter().map(|u| UserId(*u)).collect(),
        })
    }

    fn sorted(v: &HashSet<ChannelId>) -> Vec<i64> {
        let mut v: Vec<i64> = v.iter().map(|c| c.0).collect();
        v.sort();
        v
    }

    #[test]
    fn one_view_per_user_shared_and_kept_by_events() {
        let v = Views::new(1000);
        let (_, a) = v.install(C, UserId(7), fresh(&[7, 8]), vec![]).unwrap();
        assert_eq!(sorted(&a), [10]);
        let (_, b) = v.install(C, UserId(8), None, vec![RoleId(5)]).unwrap();
        assert_eq!(sorted(&b), [10, 11]);
        // A second session of 7 gets the same view, whatever roles it read.
        let (_, again) = v.install(C, UserId(7), None, vec![RoleId(5)]).unwrap();
        assert_eq!(sorted(&again), [10]);
        // A role for 7: only 7's view changes, and 7 is told what appeared.
        let diffs = v.community_change(C, &Change::MemberRoles(UserId(7), vec![RoleId(5)]));
        assert_eq!(diffs.len(), 1);
        assert_eq!(
            (diffs[0].user, diffs[0].gained.len(), diffs[0].lost.len()),
            (UserId(7), 1, 0)
        );
        // A new channel is visible per the community's rules at once.
        let users = [UserId(7), UserId(8)];
        let a = v.channel_access(
            C,
            ChannelId(12),
            Some(&Change::ChannelPut(channel(12))),
            &users,
        );
        assert_eq!(a[0], Access::Gained);
        let a = v.channel_access(C, ChannelId(12), None, &users);
        assert_eq!(a[1], Access::Sees);
        let a = v.channel_access(
            C,
            ChannelId(12),
            Some(&Change::ChannelGone(ChannelId(12))),
            &users,
        );
        assert_eq!(a[1], Access::Lost);
    }

    #[test]
    fn reloads_that_change_nothing_tell_nobody() {
        let v = Views::new(1000);
        v.install(C, UserId(7), fresh(&[7]), vec![]);
        // A join or leave elsewhere: same rules, no diffs, no work per user.
        assert!(v.want_reload(C));
        assert!(!v.want_reload(C), "one reload at a time");
        let (diffs, again) = v.reloaded(C, Some(rules(None)));
        assert!(diffs.is_empty());
        assert!(again, "a nudge during the reload asks for another");
        // An overwrite hiding channel 10 from 7: 7 is told.
        assert!(v.want_reload(C));
        let (diffs, again) = v.reloaded(C, Some(rules(Some(7))));
        assert!(!again);
        assert_eq!(diffs.len(), 1);
        assert_eq!(diffs[0].lost, [ChannelId(10)]);
    }

    #[test]
    fn changes_during_a_reload_are_kept() {
        let v = Views::new(1000);
        v.install(C, UserId(7), fresh(&[7]), vec![]);
        assert!(v.want_reload(C));
        // A channel created while the (older) rules were being read.
        let users = [UserId(7)];
        v.channel_access(
            C,
            ChannelId(12),
            Some(&Change::ChannelPut(channel(12))),
            &users,
        );
        let (diffs, _) = v.reloaded(C, Some(rules(None)));
        assert!(
            diffs.is_empty(),
            "the channel was re-applied: {:?}",
            diffs.len()
        );
        let (_, seen) = v.view(C, UserId(7)).unwrap();
        assert_eq!(sorted(&seen), [10, 12]);
    }

    #[test]
    fn small_and_large_and_shrinking() {
        let v = Views::new(2);
        v.install(C, UserId(7), fresh(&[7, 8]), vec![]);
        assert!(!v.is_large(C));
        v.community_change(C, &Change::MemberAdded(UserId(9)));
        assert!(v.is_large(C), "past the threshold");
        v.install(
            CommunityId(2),
            UserId(7),
            Some(Fresh {
                rules: rules(None),
                members: vec![],
            }),
            vec![],
        );
        assert_eq!(v.size(), (2, 2));
        // 7 is still here, 8 and 9 (views of community 1 only) are not;
        // 7's view of 1 stays.
        v.install(C, UserId(8), None, vec![]);
        assert_eq!(v.size(), (2, 3));
        v.retain_used(&HashSet::from([UserId(7)]));
        assert_eq!(v.size(), (2, 2));
        v.retain_used(&HashSet::new());
        assert_eq!(v.size(), (0, 0), "nobody here: everything goes");
    }

    /// A resume from another node loads the user's views before routing
    /// adopts its session: the reaper must not drop them in between.
    #[test]
    fn views_of_a_session_in_preparation_survive_the_reaper() {
        let hub = super::super::hub::Hub::new(None, 100, std::time::Duration::from_secs(60));
        let guard = hub.preparing(UserId(7));
        let again = hub.preparing(UserId(7));
        hub.views.install(C, UserId(7), fresh(&[7]), vec![]);
        hub.retain_views();
        assert!(
            hub.views.view(C, UserId(7)).is_some(),
            "kept while preparing"
        );
        drop(guard);
        hub.retain_views();
        assert!(
            hub.views.view(C, UserId(7)).is_some(),
            "a second resume still prepares"
        );
        drop(again);
        hub.retain_views();
        assert!(
            hub.views.view(C, UserId(7)).is_none(),
            "dropped once nobody needs it"
        );
    }
}
