//! The authorization matrix: every community REST operation and the
//! MESSAGE_CREATE event, tried by every kind of actor, compared with what
//! the contract says.
//!
//! The expected answer does not come from the code under test: the rules of
//! the contract (v1 "Roles and permissions", v1.1 "Granting", "Timeouts",
//! "Clarifications") are written once below as [`expect`], over plain facts
//! about the actor (member or not, owner, effective community permissions,
//! rank, timed out) and about the operation (what it needs, which rank or
//! role position it touches, which bits it grants). Each case runs against
//! fresh targets so that cases cannot influence each other. The test fails
//! listing every case whose status class differs: an unauthorized success,
//! a refusal where the contract allows, or a 403 where the contract says
//! 404 (a non-member or a hidden channel).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::gateway::Gw;
use crate::{TestServer, User};

/// The contract's answers, as status classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    Ok,
    Forbidden,
    NotFound,
}

fn class(st: StatusCode) -> Option<Want> {
    match st.as_u16() {
        200..=299 => Some(Want::Ok),
        403 => Some(Want::Forbidden),
        404 => Some(Want::NotFound),
        _ => None,
    }
}

const ALL: &[&str] = &[
    "VIEW_CHANNEL",
    "SEND_MESSAGES",
    "READ_MESSAGE_HISTORY",
    "ADD_REACTIONS",
    "ATTACH_FILES",
    "MENTION_EVERYONE",
    "MANAGE_MESSAGES",
    "MANAGE_CHANNELS",
    "MANAGE_ROLES",
    "MANAGE_COMMUNITY",
    "CREATE_INVITE",
    "KICK_MEMBERS",
    "BAN_MEMBERS",
    "MODERATE_MEMBERS",
    "VIEW_AUDIT_LOG",
    "CONNECT",
    "SPEAK",
    "VIDEO",
    "MUTE_MEMBERS",
    "ADMINISTRATOR",
];

/// What moderators in this world hold (everything but ADMINISTRATOR).
const MOD_PERMS: &[&str] = &[
    "MANAGE_MESSAGES",
    "MANAGE_CHANNELS",
    "MANAGE_ROLES",
    "MANAGE_COMMUNITY",
    "KICK_MEMBERS",
    "BAN_MEMBERS",
    "MODERATE_MEMBERS",
    "VIEW_AUDIT_LOG",
    "MENTION_EVERYONE",
];

/// Role positions in the world.
const ADMIN_POS: i32 = 9;
const MOD_HIGH_POS: i32 = 8;
const VICTIM_POS: i32 = 5;
const MOD_LOW_POS: i32 = 3;
const LOW_POS: i32 = 1;

/// Facts about one actor, as the contract sees them.
struct Actor {
    name: &'static str,
    user: User,
    member: bool,
    owner: bool,
    /// Highest role position (`@everyone` is 0); the owner outranks all.
    rank: i32,
    /// Effective community permissions per the contract's resolution.
    perms: BTreeSet<&'static str>,
    /// The world's poster has blocked this actor.
    blocked_by_poster: bool,
}

impl Actor {
    fn has(&self, p: &str) -> bool {
        self.perms.contains(p)
    }
    fn all_powerful(&self) -> bool {
        self.owner || self.has("ADMINISTRATOR")
    }
}

/// Where an operation applies.
#[derive(Clone, Copy)]
enum Scope {
    Community,
    /// A channel every member can VIEW.
    Channel,
    /// A channel `@everyone` is denied VIEW_CHANNEL in, with no allow for
    /// any role: only the owner and administrators see it.
    Hidden,
    /// The DM between the owner and the poster: only its participants see
    /// it, whatever their roles.
    OwnersDm,
    /// Opening a DM with the poster (v1.1 "DMs"): only someone who shares a
    /// community with them and whom they have not blocked; refused alike
    /// (403) for everyone else.
    DmWithPoster,
}

/// Whose rank an operation's target has.
#[derive(Clone, Copy)]
enum Target {
    None,
    /// A member whose highest role sits at this position.
    Rank(i32),
    /// The actor themselves.
    SelfRank,
}

/// The contract's requirements of one operation.
struct Rule {
    scope: Scope,
    need: &'static [&'static str],
    /// Bits the change grants or changes (v1.1 granting rule).
    grant: &'static [&'static str],
    /// The position of a role the operation edits, assigns or targets.
    role_pos: Option<i32>,
    target: Target,
    owner_only: bool,
    /// Only the author may (and the actor is not the author).
    author_only: bool,
    /// The change lifts a channel deny the actor is under: in that channel
    /// the actor lacks the bit, so (granting is judged where the change
    /// applies) only the owner and administrators may.
    lifts_own_deny: bool,
}

const fn rule(scope: Scope, need: &'static [&'static str]) -> Rule {
    Rule {
        scope,
        need,
        grant: &[],
        role_pos: None,
        target: Target::None,
        owner_only: false,
        author_only: false,
        lifts_own_deny: false,
    }
}

/// The contract, once.
fn expect(a: &Actor, r: &Rule) -> Want {
    match r.scope {
        Scope::OwnersDm => return if a.owner { Want::Ok } else { Want::NotFound },
        Scope::DmWithPoster => {
            return if a.member && !a.blocked_by_poster {
                Want::Ok
            } else {
                Want::Forbidden
            };
        }
        _ => {}
    }
    // Things the caller may not see are 404, never 403.
    if !a.member {
        return Want::NotFound;
    }
    if matches!(r.scope, Scope::Hidden) && !a.all_powerful() {
        return Want::NotFound;
    }
    if r.owner_only {
        return if a.owner { Want::Ok } else { Want::Forbidden };
    }
    if r.author_only {
        return Want::Forbidden;
    }
    // Permissions (a timeout has already reduced `perms` to VIEW and READ).
    if !r.need.iter().all(|p| a.has(p)) {
        return Want::Forbidden;
    }
    // Granting: every changed bit must be the actor's; only the owner or
    // an ADMINISTRATOR gives ADMINISTRATOR (others never hold it).
    if !r.grant.iter().all(|p| a.has(p)) || (r.lifts_own_deny && !a.all_powerful()) {
        return Want::Forbidden;
    }
    // Nobody edits a role at or above their highest role; the target of
    // kick, ban, timeout, nickname and role changes ranks below the actor.
    let below = |pos: i32| a.owner || a.rank > pos;
    if let Some(pos) = r.role_pos
        && !below(pos)
    {
        return Want::Forbidden;
    }
    match r.target {
        Target::Rank(pos) if !below(pos) => Want::Forbidden,
        Target::SelfRank if !a.owner => Want::Forbidden,
        _ => Want::Ok,
    }
}

#[derive(Clone, Copy, Debug)]
enum Op {
    GetCommunity,
    PatchCommunity,
    DeleteCommunity,
    ListMembers,
    Kick,
    Ban,
    Unban,
    Timeout,
    Nickname,
    ListBans,
    CreateInvite,
    ListInvites,
    ListRoles,
    CreateRole,
    CreateAdminRole,
    EditRole,
    DeleteRole,
    AssignLowRole,
    AssignAdminRole,
    AssignLowRoleToSelf,
    RemoveVictimRole,
    CreateChannel,
    PatchChannel,
    DeleteChannel,
    PutOverwrite,
    DeleteOverwrite,
    DeleteOverwriteYouAreUnder,
    SendMessage,
    ReadMessages,
    ReadHidden,
    SendHidden,
    EditOthersMessage,
    DeleteOthersMessage,
    React,
    Pin,
    GetPins,
    Typing,
    Ack,
    ReadDm,
    SendDm,
    OpenDmWithPoster,
}

const OPS: &[Op] = &[
    Op::GetCommunity,
    Op::PatchCommunity,
    Op::DeleteCommunity,
    Op::ListMembers,
    Op::Kick,
    Op::Ban,
    Op::Unban,
    Op::Timeout,
    Op::Nickname,
    Op::ListBans,
    Op::CreateInvite,
    Op::ListInvites,
    Op::ListRoles,
    Op::CreateRole,
    Op::CreateAdminRole,
    Op::EditRole,
    Op::DeleteRole,
    Op::AssignLowRole,
    Op::AssignAdminRole,
    Op::AssignLowRoleToSelf,
    Op::RemoveVictimRole,
    Op::CreateChannel,
    Op::PatchChannel,
    Op::DeleteChannel,
    Op::PutOverwrite,
    Op::DeleteOverwrite,
    Op::DeleteOverwriteYouAreUnder,
    Op::SendMessage,
    Op::ReadMessages,
    Op::ReadHidden,
    Op::SendHidden,
    Op::EditOthersMessage,
    Op::DeleteOthersMessage,
    Op::React,
    Op::Pin,
    Op::GetPins,
    Op::Typing,
    Op::Ack,
    Op::ReadDm,
    Op::SendDm,
    Op::OpenDmWithPoster,
];

fn rule_of(op: Op) -> Rule {
    use Scope::*;
    match op {
        Op::GetCommunity | Op::ListMembers | Op::ListRoles => rule(Community, &[]),
        Op::PatchCommunity | Op::ListInvites => rule(Community, &["MANAGE_COMMUNITY"]),
        Op::DeleteCommunity => Rule {
            owner_only: true,
            ..rule(Community, &[])
        },
        Op::Kick => Rule {
            target: Target::Rank(VICTIM_POS),
            ..rule(Community, &["KICK_MEMBERS"])
        },
        Op::Ban => Rule {
            target: Target::Rank(VICTIM_POS),
            ..rule(Community, &["BAN_MEMBERS"])
        },
        Op::Unban | Op::ListBans => rule(Community, &["BAN_MEMBERS"]),
        Op::Timeout => Rule {
            target: Target::Rank(VICTIM_POS),
            ..rule(Community, &["MODERATE_MEMBERS"])
        },
        Op::Nickname => Rule {
            target: Target::Rank(VICTIM_POS),
            ..rule(Community, &["MANAGE_COMMUNITY"])
        },
        Op::CreateInvite => rule(Community, &["CREATE_INVITE"]),
        Op::CreateRole => Rule {
            grant: &["SEND_MESSAGES"],
            role_pos: Some(LOW_POS),
            ..rule(Community, &["MANAGE_ROLES"])
        },
        Op::CreateAdminRole => Rule {
            grant: &["ADMINISTRATOR"],
            role_pos: Some(LOW_POS),
            ..rule(Community, &["MANAGE_ROLES"])
        },
        // The fresh role holds SEND_MESSAGES; the edit adds ADD_REACTIONS.
        Op::EditRole => Rule {
            grant: &["ADD_REACTIONS"],
            role_pos: Some(LOW_POS),
            ..rule(Community, &["MANAGE_ROLES"])
        },
        Op::DeleteRole => Rule {
            role_pos: Some(LOW_POS),
            ..rule(Community, &["MANAGE_ROLES"])
        },
        Op::AssignLowRole => Rule {
            grant: &["SEND_MESSAGES"],
            role_pos: Some(LOW_POS),
            target: Target::Rank(VICTIM_POS),
            ..rule(Community, &["MANAGE_ROLES"])
        },
        Op::AssignAdminRole => Rule {
            grant: &["ADMINISTRATOR"],
            role_pos: Some(ADMIN_POS),
            target: Target::Rank(VICTIM_POS),
            ..rule(Community, &["MANAGE_ROLES"])
        },
        Op::AssignLowRoleToSelf => Rule {
            grant: &["SEND_MESSAGES"],
            role_pos: Some(LOW_POS),
            target: Target::SelfRank,
            ..rule(Community, &["MANAGE_ROLES"])
        },
        // The victim role holds no bits; the victim ranks at its position.
        Op::RemoveVictimRole => Rule {
            role_pos: Some(VICTIM_POS),
            target: Target::Rank(VICTIM_POS),
            ..rule(Community, &["MANAGE_ROLES"])
        },
        Op::CreateChannel => rule(Community, &["MANAGE_CHANNELS"]),
        Op::PatchChannel | Op::DeleteChannel => rule(Channel, &["MANAGE_CHANNELS"]),
        // On the victim role: deny SEND_MESSAGES in a fresh channel.
        Op::PutOverwrite => Rule {
            grant: &["SEND_MESSAGES"],
            role_pos: Some(VICTIM_POS),
            ..rule(Channel, &["MANAGE_ROLES"])
        },
        // The low role's overwrite denying ADD_REACTIONS (the actors do not
        // hold the low role, so they are not under it).
        Op::DeleteOverwrite => Rule {
            grant: &["ADD_REACTIONS"],
            role_pos: Some(LOW_POS),
            ..rule(Channel, &["MANAGE_ROLES"])
        },
        // `@everyone`'s overwrite denying ADD_REACTIONS: every actor but the
        // owner and administrators is under it.
        Op::DeleteOverwriteYouAreUnder => Rule {
            grant: &["ADD_REACTIONS"],
            role_pos: Some(0),
            lifts_own_deny: true,
            ..rule(Channel, &["MANAGE_ROLES"])
        },
        Op::SendMessage | Op::Typing => rule(Channel, &["SEND_MESSAGES"]),
        Op::ReadMessages | Op::GetPins => rule(Channel, &["READ_MESSAGE_HISTORY"]),
        Op::ReadHidden => rule(Hidden, &["READ_MESSAGE_HISTORY"]),
        Op::SendHidden => rule(Hidden, &["SEND_MESSAGES"]),
        Op::EditOthersMessage => Rule {
            author_only: true,
            ..rule(Channel, &[])
        },
        Op::DeleteOthersMessage | Op::Pin => rule(Channel, &["MANAGE_MESSAGES"]),
        Op::React => rule(Channel, &["READ_MESSAGE_HISTORY", "ADD_REACTIONS"]),
        Op::Ack => rule(Channel, &[]),
        Op::ReadDm | Op::SendDm => rule(OwnersDm, &[]),
        Op::OpenDmWithPoster => rule(DmWithPoster, &[]),
    }
}

/// The shared world: one community, its roles and channels.
struct World {
    owner: User,
    c: String,
    general: String,
    secret: String,
    poster: User,
    poster_msg: String,
    owners_dm: String,
    everyone_perms: BTreeSet<&'static str>,
    admin_role: String,
    mod_high: String,
    victim_role: String,
    mod_low: String,
    low_role: String,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

async fn fresh_user(s: &TestServer, prefix: &str) -> User {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    s.register(&format!("{prefix}{n}")).await
}

async fn must(s: &TestServer, st_v: (StatusCode, Value), what: &str) -> Value {
    let (st, v) = st_v;
    let _ = s;
    assert!(st.is_success(), "setup {what}: {st} {v}");
    v
}

async fn role(s: &TestServer, w_owner: &User, c: &str, perms: &[&str], pos: i32) -> String {
    let v = must(
        s,
        s.post(
            &format!("/api/v1/communities/{c}/roles"),
            &w_owner.token,
            json!({"name": format!("r{pos}"), "permissions": perms, "position": pos}),
        )
        .await,
        "role",
    )
    .await;
    v["id"].as_str().unwrap().to_string()
}

impl World {
    async fn new(s: &TestServer) -> World {
        let owner = fresh_user(s, "owner").await;
        let (c, general) = s.community(&owner, "Matrix").await;
        let admin_role = role(s, &owner, &c, &["ADMINISTRATOR"], ADMIN_POS).await;
        let mod_high = role(s, &owner, &c, MOD_PERMS, MOD_HIGH_POS).await;
        let victim_role = role(s, &owner, &c, &[], VICTIM_POS).await;
        let mod_low = role(s, &owner, &c, MOD_PERMS, MOD_LOW_POS).await;
        let low_role = role(s, &owner, &c, &["SEND_MESSAGES"], LOW_POS).await;
        let secret = must(
            s,
            s.post(
                &format!("/api/v1/communities/{c}/channels"),
                &owner.token,
                json!({"name": "secret"}),
            )
            .await,
            "secret channel",
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_string();
        must(
            s,
            s.put(
                &format!("/api/v1/channels/{secret}/overwrites/{c}"),
                &owner.token,
                Some(json!({"target_type": "role", "allow": [], "deny": ["VIEW_CHANNEL"]})),
            )
            .await,
            "hide secret",
        )
        .await;
        s.send(&owner, &secret, "classified").await;
        let poster = fresh_user(s, "poster").await;
        s.join(&owner, &c, &poster).await;
        let poster_msg = s.send(&poster, &general, "a member's message").await["id"]
            .as_str()
            .unwrap()
            .to_string();
        let owners_dm = must(
            s,
            s.post(
                "/api/v1/dms",
                &owner.token,
                json!({"user_ids": [poster.id]}),
            )
            .await,
            "owner's DM",
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (_, roles) = s
            .get(&format!("/api/v1/communities/{c}/roles"), &owner.token)
            .await;
        let everyone = roles
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == c.as_str())
            .expect("@everyone");
        let everyone_perms = names(&everyone["permissions"]);
        World {
            owner,
            c,
            general,
            secret,
            poster,
            poster_msg,
            owners_dm,
            everyone_perms,
            admin_role,
            mod_high,
            victim_role,
            mod_low,
            low_role,
        }
    }

    async fn give(&self, s: &TestServer, u: &User, role: &str) {
        must(
            s,
            s.put(
                &format!(
                    "/api/v1/communities/{}/members/{}/roles/{role}",
                    self.c, u.id
                ),
                &self.owner.token,
                None,
            )
            .await,
            "give role",
        )
        .await;
    }

    /// A fresh member holding the victim role (position 5).
    async fn victim(&self, s: &TestServer) -> User {
        let v = fresh_user(s, "victim").await;
        s.join(&self.owner, &self.c, &v).await;
        self.give(s, &v, &self.victim_role).await;
        v
    }

    async fn actors(&self, s: &TestServer) -> Vec<Actor> {
        let mut out = Vec::new();
        let all: BTreeSet<&'static str> = ALL.iter().copied().collect();
        let with = |extra: &[&'static str]| {
            let mut p = self.everyone_perms.clone();
            p.extend(extra.iter().copied());
            p
        };
        out.push(Actor {
            name: "owner",
            user: self.owner.clone_user(),
            member: true,
            owner: true,
            rank: i32::MAX,
            perms: all.clone(),
            blocked_by_poster: false,
        });
        for (name, role, rank, perms) in [
            ("admin", &self.admin_role, ADMIN_POS, all.clone()),
            (
                "mod ranked above the target",
                &self.mod_high,
                MOD_HIGH_POS,
                with(MOD_PERMS),
            ),
            (
                "mod ranked below the target",
                &self.mod_low,
                MOD_LOW_POS,
                with(MOD_PERMS),
            ),
        ] {
            let u = fresh_user(s, "actor").await;
            s.join(&self.owner, &self.c, &u).await;
            self.give(s, &u, role).await;
            out.push(Actor {
                name,
                user: u,
                member: true,
                owner: false,
                rank,
                perms,
                blocked_by_poster: false,
            });
        }
        let plain = fresh_user(s, "plain").await;
        s.join(&self.owner, &self.c, &plain).await;
        out.push(Actor {
            name: "member without the permission",
            user: plain,
            member: true,
            owner: false,
            rank: 0,
            perms: with(&[]),
            blocked_by_poster: false,
        });
        let blocked = fresh_user(s, "blocked").await;
        s.join(&self.owner, &self.c, &blocked).await;
        must(
            s,
            s.put(
                &format!("/api/v1/users/@me/blocks/{}", blocked.id),
                &self.poster.token,
                None,
            )
            .await,
            "block",
        )
        .await;
        out.push(Actor {
            name: "member blocked by the poster",
            user: blocked,
            member: true,
            owner: false,
            rank: 0,
            perms: with(&[]),
            blocked_by_poster: true,
        });
        // A moderator, timed out: keeps VIEW_CHANNEL and READ_MESSAGE_HISTORY only.
        let timed = fresh_user(s, "timed").await;
        s.join(&self.owner, &self.c, &timed).await;
        self.give(s, &timed, &self.mod_high).await;
        let until = hearth_types::format_rfc3339(hearth_types::now_ms() + 3_600_000);
        must(
            s,
            s.patch(
                &format!("/api/v1/communities/{}/members/{}", self.c, timed.id),
                &self.owner.token,
                json!({"timed_out_until": until}),
            )
            .await,
            "timeout",
        )
        .await;
        out.push(Actor {
            name: "timed-out mod",
            user: timed,
            member: true,
            owner: false,
            rank: MOD_HIGH_POS,
            perms: ["VIEW_CHANNEL", "READ_MESSAGE_HISTORY"]
                .into_iter()
                .filter(|p| self.everyone_perms.contains(p))
                .collect(),
            blocked_by_poster: false,
        });
        let stranger = fresh_user(s, "stranger").await;
        out.push(Actor {
            name: "stranger",
            user: stranger,
            member: false,
            owner: false,
            rank: 0,
            perms: BTreeSet::new(),
            blocked_by_poster: false,
        });
        let kicked = fresh_user(s, "kicked").await;
        s.join(&self.owner, &self.c, &kicked).await;
        self.give(s, &kicked, &self.mod_high).await;
        must(
            s,
            s.delete(
                &format!("/api/v1/communities/{}/members/{}", self.c, kicked.id),
                &self.owner.token,
            )
            .await,
            "kick",
        )
        .await;
        out.push(Actor {
            name: "kicked mod",
            user: kicked,
            member: false,
            owner: false,
            rank: 0,
            perms: BTreeSet::new(),
            blocked_by_poster: false,
        });
        let banned = fresh_user(s, "banned").await;
        s.join(&self.owner, &self.c, &banned).await;
        self.give(s, &banned, &self.mod_high).await;
        must(
            s,
            s.put(
                &format!("/api/v1/communities/{}/bans/{}", self.c, banned.id),
                &self.owner.token,
                Some(json!({})),
            )
            .await,
            "ban",
        )
        .await;
        out.push(Actor {
            name: "banned mod",
            user: banned,
            member: false,
            owner: false,
            rank: 0,
            perms: BTreeSet::new(),
            blocked_by_poster: false,
        });
        out
    }

    /// Runs one operation as `a` against fresh targets.
    async fn run(&self, s: &TestServer, op: Op, a: &Actor) -> (StatusCode, Value) {
        let (c, g, t) = (&self.c, &self.general, &a.user.token);
        let o = &self.owner;
        match op {
            Op::GetCommunity => s.get(&format!("/api/v1/communities/{c}"), t).await,
            Op::PatchCommunity => {
                s.patch(&format!("/api/v1/communities/{c}"), t, json!({"name": "Matrix"}))
                    .await
            }
            Op::DeleteCommunity => s.delete(&format!("/api/v1/communities/{c}"), t).await,
            Op::ListMembers => s.get(&format!("/api/v1/communities/{c}/members"), t).await,
            Op::Kick => {
                let v = self.victim(s).await;
                s.delete(&format!("/api/v1/communities/{c}/members/{}", v.id), t)
                    .await
            }
            Op::Ban => {
                let v = self.victim(s).await;
                s.put(&format!("/api/v1/communities/{c}/bans/{}", v.id), t, Some(json!({})))
                    .await
            }
            Op::Unban => {
                let v = self.victim(s).await;
                must(
                    s,
                    s.put(&format!("/api/v1/communities/{c}/bans/{}", v.id), &o.token, Some(json!({})))
                        .await,
                    "ban for unban",
                )
                .await;
                s.delete(&format!("/api/v1/communities/{c}/bans/{}", v.id), t)
                    .await
            }
            Op::Timeout => {
                let v = self.victim(s).await;
                let until = hearth_types::format_rfc3339(hearth_types::now_ms() + 600_000);
                s.patch(
                    &format!("/api/v1/communities/{c}/members/{}", v.id),
                    t,
                    json!({"timed_out_until": until}),
                )
                .await
            }
            Op::Nickname => {
                let v = self.victim(s).await;
                s.patch(
                    &format!("/api/v1/communities/{c}/members/{}", v.id),
                    t,
                    json!({"nickname": "renamed"}),
                )
                .await
            }
            Op::ListBans => s.get(&format!("/api/v1/communities/{c}/bans"), t).await,
            Op::CreateInvite => {
                s.post(&format!("/api/v1/communities/{c}/invites"), t, json!({}))
                    .await
            }
            Op::ListInvites => s.get(&format!("/api/v1/communities/{c}/invites"), t).await,
            Op::ListRoles => s.get(&format!("/api/v1/communities/{c}/roles"), t).await,
            Op::CreateRole => {
                s.post(
                    &format!("/api/v1/communities/{c}/roles"),
                    t,
                    json!({"name": "new", "permissions": ["SEND_MESSAGES"], "position": LOW_POS}),
                )
                .await
            }
            Op::CreateAdminRole => {
                s.post(
                    &format!("/api/v1/communities/{c}/roles"),
                    t,
                    json!({"name": "new admin", "permissions": ["ADMINISTRATOR"], "position": LOW_POS}),
                )
                .await
            }
            Op::EditRole => {
                let r = role(s, o, c, &["SEND_MESSAGES"], LOW_POS).await;
                s.patch(
                    &format!("/api/v1/communities/{c}/roles/{r}"),
                    t,
                    json!({"permissions": ["SEND_MESSAGES", "ADD_REACTIONS"]}),
                )
                .await
            }
            Op::DeleteRole => {
                let r = role(s, o, c, &["SEND_MESSAGES"], LOW_POS).await;
                s.delete(&format!("/api/v1/communities/{c}/roles/{r}"), t)
                    .await
            }
            Op::AssignLowRole | Op::AssignAdminRole => {
                let v = self.victim(s).await;
                let r = if matches!(op, Op::AssignLowRole) {
                    &self.low_role
                } else {
                    &self.admin_role
                };
                s.put(
                    &format!("/api/v1/communities/{c}/members/{}/roles/{r}", v.id),
                    t,
                    None,
                )
                .await
            }
            Op::AssignLowRoleToSelf => {
                let r = &self.low_role;
                let res = s
                    .put(
                        &format!("/api/v1/communities/{c}/members/{}/roles/{r}", a.user.id),
                        t,
                        None,
                    )
                    .await;
                if res.0.is_success() {
                    // Put things back for the cases after this one.
                    s.delete(
                        &format!("/api/v1/communities/{c}/members/{}/roles/{r}", a.user.id),
                        &o.token,
                    )
                    .await;
                }
                res
            }
            Op::RemoveVictimRole => {
                let v = self.victim(s).await;
                s.delete(
                    &format!("/api/v1/communities/{c}/members/{}/roles/{}", v.id, self.victim_role),
                    t,
                )
                .await
            }
            Op::CreateChannel => {
                s.post(&format!("/api/v1/communities/{c}/channels"), t, json!({"name": "new"}))
                    .await
            }
            Op::PatchChannel => {
                s.patch(&format!("/api/v1/channels/{g}"), t, json!({"topic": "matrix"}))
                    .await
            }
            Op::DeleteChannel | Op::PutOverwrite | Op::DeleteOverwrite | Op::DeleteOverwriteYouAreUnder => {
                let ch = must(
                    s,
                    s.post(&format!("/api/v1/communities/{c}/channels"), &o.token, json!({"name": "scratch"}))
                        .await,
                    "scratch channel",
                )
                .await["id"]
                    .as_str()
                    .unwrap()
                    .to_string();
                match op {
                    Op::DeleteChannel => s.delete(&format!("/api/v1/channels/{ch}"), t).await,
                    Op::PutOverwrite => {
                        s.put(
                            &format!("/api/v1/channels/{ch}/overwrites/{}", self.victim_role),
                            t,
                            Some(json!({"target_type": "role", "allow": [], "deny": ["SEND_MESSAGES"]})),
                        )
                        .await
                    }
                    _ => {
                        let target = if matches!(op, Op::DeleteOverwrite) {
                            &self.low_role
                        } else {
                            c
                        };
                        must(
                            s,
                            s.put(
                                &format!("/api/v1/channels/{ch}/overwrites/{target}"),
                                &o.token,
                                Some(json!({"target_type": "role", "allow": [], "deny": ["ADD_REACTIONS"]})),
                            )
                            .await,
                            "overwrite to delete",
                        )
                        .await;
                        s.delete(&format!("/api/v1/channels/{ch}/overwrites/{target}"), t)
                            .await
                    }
                }
            }
            Op::SendMessage => {
                s.post(&format!("/api/v1/channels/{g}/messages"), t, json!({"content": "hi"}))
                    .await
            }
            Op::ReadMessages => s.get(&format!("/api/v1/channels/{g}/messages"), t).await,
            Op::ReadHidden => {
                s.get(&format!("/api/v1/channels/{}/messages", self.secret), t)
                    .await
            }
            Op::SendHidden => {
                s.post(
                    &format!("/api/v1/channels/{}/messages", self.secret),
                    t,
                    json!({"content": "psst"}),
                )
                .await
            }
            Op::EditOthersMessage => {
                s.patch(
                    &format!("/api/v1/channels/{g}/messages/{}", self.poster_msg),
                    t,
                    json!({"content": "edited by someone else"}),
                )
                .await
            }
            Op::DeleteOthersMessage => {
                let poster = fresh_user(s, "author").await;
                s.join(o, c, &poster).await;
                let m = s.send(&poster, g, "delete me").await;
                s.delete(
                    &format!("/api/v1/channels/{g}/messages/{}", m["id"].as_str().unwrap()),
                    t,
                )
                .await
            }
            Op::React => {
                s.put(
                    &format!("/api/v1/channels/{g}/messages/{}/reactions/%F0%9F%91%8D", self.poster_msg),
                    t,
                    None,
                )
                .await
            }
            Op::Pin => {
                let m = s.send(o, g, "pin me").await;
                s.put(
                    &format!("/api/v1/channels/{g}/pins/{}", m["id"].as_str().unwrap()),
                    t,
                    None,
                )
                .await
            }
            Op::GetPins => s.get(&format!("/api/v1/channels/{g}/pins"), t).await,
            Op::Typing => {
                s.post(&format!("/api/v1/channels/{g}/typing"), t, json!({}))
                    .await
            }
            Op::ReadDm => {
                s.get(&format!("/api/v1/channels/{}/messages", self.owners_dm), t)
                    .await
            }
            Op::SendDm => {
                s.post(
                    &format!("/api/v1/channels/{}/messages", self.owners_dm),
                    t,
                    json!({"content": "in your DM"}),
                )
                .await
            }
            Op::OpenDmWithPoster => {
                s.post("/api/v1/dms", t, json!({"user_ids": [self.poster.id]}))
                    .await
            }
            Op::Ack => {
                s.put(
                    &format!("/api/v1/channels/{g}/read"),
                    t,
                    Some(json!({"message_id": self.poster_msg})),
                )
                .await
            }
        }
    }
}

trait CloneUser {
    fn clone_user(&self) -> User;
}

impl CloneUser for User {
    fn clone_user(&self) -> User {
        User {
            id: self.id.clone(),
            token: self.token.clone(),
            refresh: self.refresh.clone(),
        }
    }
}

fn names(v: &Value) -> BTreeSet<&'static str> {
    v.as_array()
        .unwrap()
        .iter()
        .filter_map(|n| ALL.iter().copied().find(|a| n == a))
        .collect()
}

/// Every operation × every actor, and MESSAGE_CREATE delivery per actor.
pub async fn authorization_matrix(s: &TestServer) {
    let w = World::new(s).await;
    let actors = w.actors(s).await;
    let mut cases = 0;
    let mut wrong = Vec::new();
    for op in OPS {
        let r = rule_of(*op);
        for a in &actors {
            let want = expect(a, &r);
            // The owner deleting the community would end the world; its
            // success is covered by the communities scenario.
            if matches!(op, Op::DeleteCommunity) && want == Want::Ok {
                continue;
            }
            cases += 1;
            let (st, body) = w.run(s, *op, a).await;
            let got = class(st);
            if got != Some(want) {
                let kind = match (want, got) {
                    (Want::Forbidden | Want::NotFound, Some(Want::Ok)) => "UNAUTHORIZED SUCCESS",
                    (Want::NotFound, Some(Want::Forbidden)) => "403 where the contract says 404",
                    (Want::Ok, _) => "refused what the contract allows",
                    _ => "other",
                };
                wrong.push(format!(
                    "{kind}: {op:?} by {}: want {want:?}, got {st} {body}",
                    a.name
                ));
            }
        }
    }

    // Gateway: MESSAGE_CREATE reaches an actor only if they may see the
    // channel. Proved with a marker: the hidden channel's message is sent
    // first and the visible one after; whoever gets the visible one has had
    // every chance to get the hidden one.
    let mut gws = Vec::new();
    for a in &actors {
        gws.push(Gw::identify(s, &a.user).await.0);
    }
    s.send(&w.owner, &w.secret, "hidden marker").await;
    let visible = s.send(&w.owner, &w.general, "visible marker").await;
    for (a, gw) in actors.iter().zip(gws.iter_mut()) {
        cases += 1;
        let sees_general = a.member;
        let sees_secret = a.member && a.all_powerful();
        let mut saw_secret = false;
        let mut saw_general = false;
        let deadline =
            tokio::time::Instant::now() + Duration::from_secs(if sees_general { 5 } else { 1 });
        while tokio::time::Instant::now() < deadline && !saw_general {
            match gw.next(Duration::from_millis(200)).await {
                crate::gateway::Got::Frame(f) => {
                    if f["t"] == "MESSAGE_CREATE" {
                        if f["d"]["channel_id"] == w.secret.as_str() {
                            saw_secret = true;
                        }
                        if f["d"]["id"] == visible["id"] {
                            saw_general = true;
                        }
                    }
                }
                crate::gateway::Got::Closed(_) => break,
                crate::gateway::Got::Nothing => {}
            }
        }
        if (saw_general, saw_secret) != (sees_general, sees_secret) {
            wrong.push(format!(
                "gateway MESSAGE_CREATE for {}: want (general, secret) = {:?}, got {:?}",
                a.name,
                (sees_general, sees_secret),
                (saw_general, saw_secret)
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {cases} cases differ from the contract:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(cases > 300, "the matrix ran {cases} cases");
}
