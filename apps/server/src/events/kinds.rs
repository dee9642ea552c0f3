//! The bus's vocabulary, typed once: where an event goes ([`Subject`]), what
//! it is ([`EventKind`], the gateway's dispatch name), and, for the few
//! kinds that change who may see what, the change itself ([`Change`]),
//! decoded from the event's encoded bytes once by the gateway. Messages and
//! other frequent kinds are never decoded: the gateway forwards their bytes.

use std::fmt;
use std::str::FromStr;

use hearth_chat::Permissions;
use hearth_store::{ChannelKind, ChannelRecord, RoleRecord};
use hearth_types::{AttachmentId, ChannelId, CommunityId, RoleId, SessionId, UserId};
use serde_json::Value;

/// Where an event goes. Under `chat.` (the first four) events are appended
/// to the bus log and replayed on resume; the rest are real-time only.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    /// `chat.community.<c>`: the community's own events (members, roles…).
    Community(CommunityId),
    /// `chat.community.<c>.channel.<ch>`: one of its channels.
    Channel(CommunityId, ChannelId),
    /// `chat.private.<ch>`: a DM or group DM.
    Private(ChannelId),
    /// `chat.user.<u>`: one user's own events (joins, read states, profile).
    User(UserId),
    /// `chat.audit.<c>`: a community's audit announcements. In the log (for
    /// the audit-log consumer), never delivered to clients.
    Audit(CommunityId),
    /// `chat.media.<attachment>`: a stored upload for the image pipeline. In
    /// the log (for its durable consumer), never delivered to clients.
    Media(AttachmentId),
    /// `chat.account.<u>`: account lifecycle (USER_CREATED), for domain
    /// services such as mail. In the log, never delivered to clients.
    Account(UserId),
    /// `presence.<u>`: a user's combined status.
    Presence(UserId),
    /// `internal.permissions.<c>`: anything in the community may have
    /// changed who may see what; caches re-check.
    Permissions(CommunityId),
    /// `auth.session.<sid>`: an auth session was revoked.
    AuthSession(SessionId),
    /// `gateway.moved.<gateway session id>`: resumed on another node.
    Moved(String),
    /// `gateway.voice.<gateway session id>`: a call's dispatch for a session
    /// from the node hosting the call (`{t, d}`).
    VoiceSession(String),
    /// `voice.room.<channel>`: a voice op for whichever node hosts the room.
    VoiceRoom(ChannelId),
    /// `internal.automod.<c>`: a community's automod rules changed; nodes
    /// drop their compiled copy.
    Automod(CommunityId),
}

/// The real-time subject prefixes the gateway follows besides the log.
pub const LIVE_PREFIXES: [&str; 4] = ["presence.", "internal.", "auth.", "gateway."];

impl Subject {
    /// A channel's subject: under its community, or private.
    pub fn channel(community: Option<CommunityId>, channel: ChannelId) -> Subject {
        match community {
            Some(c) => Subject::Channel(c, channel),
            None => Subject::Private(channel),
        }
    }

    /// Whether events on it go to the bus log (and so survive for resume).
    pub fn in_log(&self) -> bool {
        matches!(
            self,
            Subject::Community(_)
                | Subject::Channel(..)
                | Subject::Private(_)
                | Subject::User(_)
                | Subject::Audit(_)
                | Subject::Media(_)
                | Subject::Account(_)
        )
    }

    /// The community it belongs to, if any.
    pub fn community(&self) -> Option<CommunityId> {
        match self {
            Subject::Community(c) | Subject::Channel(c, _) => Some(*c),
            _ => None,
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Community(c) => write!(f, "chat.community.{c}"),
            Subject::Channel(c, ch) => write!(f, "chat.community.{c}.channel.{ch}"),
            Subject::Private(ch) => write!(f, "chat.private.{ch}"),
            Subject::User(u) => write!(f, "chat.user.{u}"),
            Subject::Audit(c) => write!(f, "chat.audit.{c}"),
            Subject::Media(a) => write!(f, "chat.media.{a}"),
            Subject::Account(u) => write!(f, "chat.account.{u}"),
            Subject::Automod(c) => write!(f, "internal.automod.{c}"),
            Subject::Presence(u) => write!(f, "presence.{u}"),
            Subject::Permissions(c) => write!(f, "internal.permissions.{c}"),
            Subject::AuthSession(s) => write!(f, "auth.session.{s}"),
            Subject::Moved(id) => write!(f, "gateway.moved.{id}"),
            Subject::VoiceSession(id) => write!(f, "gateway.voice.{id}"),
            Subject::VoiceRoom(ch) => write!(f, "voice.room.{ch}"),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct UnknownSubject;

impl FromStr for Subject {
    type Err = UnknownSubject;

    fn from_str(s: &str) -> Result<Subject, UnknownSubject> {
        fn id<T: FromStr>(s: &str) -> Result<T, UnknownSubject> {
            s.parse().map_err(|_| UnknownSubject)
        }
        let parts: Vec<&str> = s.split('.').collect();
        Ok(match parts.as_slice() {
            ["chat", "community", c] => Subject::Community(id(c)?),
            ["chat", "community", c, "channel", ch] => Subject::Channel(id(c)?, id(ch)?),
            ["chat", "private", ch] => Subject::Private(id(ch)?),
            ["chat", "user", u] => Subject::User(id(u)?),
            ["chat", "audit", c] => Subject::Audit(id(c)?),
            ["chat", "media", a] => Subject::Media(id(a)?),
            ["chat", "account", u] => Subject::Account(id(u)?),
            ["internal", "automod", c] => Subject::Automod(id(c)?),
            ["presence", u] => Subject::Presence(id(u)?),
            ["internal", "permissions", c] => Subject::Permissions(id(c)?),
            ["auth", "session", sid] => Subject::AuthSession(id(sid)?),
            ["gateway", "moved", sess] if !sess.is_empty() => Subject::Moved(sess.to_string()),
            ["gateway", "voice", sess] if !sess.is_empty() => {
                Subject::VoiceSession(sess.to_string())
            }
            ["voice", "room", ch] => Subject::VoiceRoom(id(ch)?),
            _ => return Err(UnknownSubject),
        })
    }
}

macro_rules! event_kinds {
    ($($(#[$doc:meta])* $v:ident = $s:literal),* $(,)?) => {
        /// What an event is: its dispatch name (`t`), and `hearth.<t>` as
        /// the CloudEvents type of its envelope.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum EventKind { $($(#[$doc])* $v),* }

        impl EventKind {
            pub const fn as_str(self) -> &'static str {
                match self { $(EventKind::$v => $s),* }
            }
        }

        impl FromStr for EventKind {
            type Err = UnknownKind;
            fn from_str(s: &str) -> Result<EventKind, UnknownKind> {
                match s { $($s => Ok(EventKind::$v),)* _ => Err(UnknownKind) }
            }
        }
    };
}

event_kinds! {
    Ready = "READY",
    Resumed = "RESUMED",
    MessageCreate = "MESSAGE_CREATE",
    MessageUpdate = "MESSAGE_UPDATE",
    MessageDelete = "MESSAGE_DELETE",
    MessageDeleteBulk = "MESSAGE_DELETE_BULK",
    ReactionAdd = "REACTION_ADD",
    ReactionRemove = "REACTION_REMOVE",
    ChannelPinsUpdate = "CHANNEL_PINS_UPDATE",
    ChannelCreate = "CHANNEL_CREATE",
    ChannelUpdate = "CHANNEL_UPDATE",
    ChannelDelete = "CHANNEL_DELETE",
    CommunityCreate = "COMMUNITY_CREATE",
    CommunityUpdate = "COMMUNITY_UPDATE",
    CommunityDelete = "COMMUNITY_DELETE",
    MemberAdd = "MEMBER_ADD",
    MemberUpdate = "MEMBER_UPDATE",
    MemberRemove = "MEMBER_REMOVE",
    RoleCreate = "ROLE_CREATE",
    RoleUpdate = "ROLE_UPDATE",
    RoleDelete = "ROLE_DELETE",
    TypingStart = "TYPING_START",
    PresenceUpdate = "PRESENCE_UPDATE",
    ReadStateUpdate = "READ_STATE_UPDATE",
    NotificationCreate = "NOTIFICATION_CREATE",
    NotificationRead = "NOTIFICATION_READ",
    VoiceStateUpdate = "VOICE_STATE_UPDATE",
    UserUpdate = "USER_UPDATE",
    MembersChunk = "MEMBERS_CHUNK",
    /// Internal: a community's permissions may have changed.
    PermissionsChanged = "PERMISSIONS_CHANGED",
    /// Internal: an auth session was revoked.
    SessionRevoked = "SESSION_REVOKED",
    /// Internal: a gateway session was resumed on another node.
    SessionMoved = "SESSION_MOVED",
    /// Internal: an audited change, for the audit log (never dispatched).
    AuditLogEntry = "AUDIT_LOG_ENTRY",
    /// Internal: an upload stored, for the image pipeline (never dispatched).
    MediaUploaded = "MEDIA_UPLOADED",
    /// Internal: a community's automod rules changed.
    AutomodRulesChanged = "AUTOMOD_RULES_CHANGED",
    /// Internal: an account was registered (the welcome mail).
    UserCreated = "USER_CREATED",
}

#[derive(Debug, PartialEq, Eq)]
pub struct UnknownKind;

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl EventKind {
    /// From an envelope's CloudEvents type (`hearth.MESSAGE_CREATE`).
    pub fn of_type(ty: &str) -> Option<EventKind> {
        ty.strip_prefix("hearth.").unwrap_or(ty).parse().ok()
    }

    /// Whether it can change what its audience may see (so a resume across
    /// it cannot simply replay it).
    pub fn changes_view(self) -> bool {
        matches!(
            self,
            EventKind::ChannelCreate
                | EventKind::ChannelUpdate
                | EventKind::ChannelDelete
                | EventKind::MemberUpdate
                | EventKind::MemberRemove
                | EventKind::RoleCreate
                | EventKind::RoleUpdate
                | EventKind::RoleDelete
                | EventKind::CommunityDelete
        )
    }
}

/// A change to who may see what, carried by an event.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// A community channel created or changed (CHANNEL_CREATE/UPDATE).
    ChannelPut(ChannelRecord),
    /// A community channel deleted.
    ChannelGone(ChannelId),
    RolePut(RoleRecord),
    RoleGone(RoleId),
    /// MEMBER_ADD.
    MemberAdded(UserId),
    /// MEMBER_UPDATE: the member's roles now (besides `@everyone`).
    MemberRoles(UserId, Vec<RoleId>),
    /// MEMBER_REMOVE: left, kicked or banned.
    MemberGone(UserId),
    /// COMMUNITY_DELETE.
    CommunityGone,
    /// COMMUNITY_CREATE on `chat.user.<u>`: the user is now a member.
    Joined(CommunityId),
    /// CHANNEL_CREATE on `chat.private.<ch>`: a new DM or group DM, with
    /// its participants.
    PrivateCreated(Vec<UserId>),
}

fn id_of<T: FromStr>(v: &Value) -> Option<T> {
    v.as_str()?.parse().ok()
}

fn channel_record(d: &Value) -> Option<ChannelRecord> {
    Some(ChannelRecord {
        id: id_of(&d["id"])?,
        community_id: id_of(&d["community_id"]),
        kind: ChannelKind::parse(d["kind"].as_str()?)?,
        name: d["name"].as_str().map(str::to_string),
        topic: d["topic"].as_str().map(str::to_string),
        position: i32::try_from(d["position"].as_i64()?).ok()?,
        parent_id: id_of(&d["parent_id"]),
        owner_id: None,
        dm_key: None,
        last_message_id: id_of(&d["last_message_id"]),
        created_at: 0,
        settings: hearth_store::ChannelSettings {
            user_limit: d["user_limit"]
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .unwrap_or(0),
            slowmode_secs: d["slowmode_secs"]
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .unwrap_or(0),
            locked: d["locked"].as_bool().unwrap_or(false),
        },
    })
}

fn role_record(d: &Value) -> Option<RoleRecord> {
    let names = d["permissions"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str);
    Some(RoleRecord {
        id: id_of(&d["id"])?,
        community_id: id_of(&d["community_id"])?,
        name: d["name"].as_str()?.to_string(),
        permissions: Permissions::from_names(names).ok()?.bits() as i64,
        color: d["color"].as_i64().and_then(|c| i32::try_from(c).ok()),
        position: i32::try_from(d["position"].as_i64()?).ok()?,
    })
}

/// The change an event makes to who may see what, if any. `tail` is the
/// encoded dispatch without its opening brace (as kept by the gateway).
/// Only the kinds that can change a view are decoded.
pub fn decode_change(kind: EventKind, subject: &Subject, tail: &str) -> Option<Change> {
    use EventKind as K;
    let relevant = match subject {
        Subject::Channel(..) => {
            matches!(kind, K::ChannelCreate | K::ChannelUpdate | K::ChannelDelete)
        }
        Subject::Community(_) => matches!(
            kind,
            K::MemberAdd
                | K::MemberUpdate
                | K::MemberRemove
                | K::RoleCreate
                | K::RoleUpdate
                | K::RoleDelete
                | K::CommunityDelete
        ),
        Subject::User(_) => kind == K::CommunityCreate,
        Subject::Private(_) => kind == K::ChannelCreate,
        _ => false,
    };
    if !relevant {
        return None;
    }
    let v: Value = serde_json::from_str(&format!("{{{tail}")).ok()?;
    let d = &v["d"];
    Some(match (subject, kind) {
        (Subject::Channel(..), K::ChannelDelete) => Change::ChannelGone(id_of(&d["id"])?),
        (Subject::Channel(..), _) => Change::ChannelPut(channel_record(d)?),
        (_, K::MemberAdd) => Change::MemberAdded(id_of(&d["user"]["id"])?),
        (_, K::MemberUpdate) => Change::MemberRoles(
            id_of(&d["user"]["id"])?,
            d["roles"].as_array()?.iter().filter_map(id_of).collect(),
        ),
        (_, K::MemberRemove) => Change::MemberGone(id_of(&d["user_id"])?),
        (_, K::RoleCreate | K::RoleUpdate) => Change::RolePut(role_record(d)?),
        (_, K::RoleDelete) => Change::RoleGone(id_of(&d["role_id"])?),
        (_, K::CommunityDelete) => Change::CommunityGone,
        (_, K::CommunityCreate) => Change::Joined(id_of(&d["id"])?),
        (Subject::Private(_), K::ChannelCreate) => Change::PrivateCreated(
            d["recipients"]
                .as_array()?
                .iter()
                .filter_map(|u| id_of(&u["id"]))
                .collect(),
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_round_trip() {
        let all = [
            Subject::Community(CommunityId(1)),
            Subject::Channel(CommunityId(1), ChannelId(2)),
            Subject::Private(ChannelId(3)),
            Subject::User(UserId(4)),
            Subject::Presence(UserId(5)),
            Subject::Permissions(CommunityId(6)),
            Subject::AuthSession(SessionId(7)),
            Subject::Moved("abc123".into()),
            Subject::Audit(CommunityId(8)),
            Subject::Automod(CommunityId(9)),
        ];
        for s in all {
            assert_eq!(s.to_string().parse::<Subject>(), Ok(s.clone()), "{s}");
        }
        assert_eq!(
            "chat.community.1.channel.2".parse(),
            Ok(Subject::Channel(CommunityId(1), ChannelId(2)))
        );
        for bad in [
            "chat.community.x",
            "chat.community.1.channel",
            "chat.unknown.1",
            "presence",
            "",
            "gateway.moved.",
        ] {
            assert!(bad.parse::<Subject>().is_err(), "{bad}");
        }
        assert!(Subject::User(UserId(1)).in_log());
        assert!(!Subject::Presence(UserId(1)).in_log());
        assert!(Subject::Audit(CommunityId(1)).in_log());
        assert!(Subject::Account(UserId(1)).in_log());
        assert_eq!("chat.account.7".parse(), Ok(Subject::Account(UserId(7))));
        assert!(!Subject::Automod(CommunityId(1)).in_log());
        for p in LIVE_PREFIXES {
            assert!(!p.starts_with("chat."));
        }
    }

    #[test]
    fn kinds_round_trip() {
        for k in [
            EventKind::MessageCreate,
            EventKind::MembersChunk,
            EventKind::SessionMoved,
        ] {
            assert_eq!(k.as_str().parse(), Ok(k));
            assert_eq!(EventKind::of_type(&format!("hearth.{k}")), Some(k));
        }
        assert_eq!("NOPE".parse::<EventKind>(), Err(UnknownKind));
    }

    #[test]
    fn decodes_view_changes_only() {
        let tail = |t: &str, d: &str| format!("\"t\":\"{t}\",\"d\":{d}}}");
        let ch = Subject::Channel(CommunityId(1), ChannelId(2));
        let created = tail(
            "CHANNEL_CREATE",
            r#"{"id":"2","community_id":"1","name":"x","kind":"text","topic":null,"position":3,"parent_id":null,"last_message_id":null}"#,
        );
        match decode_change(EventKind::ChannelCreate, &ch, &created) {
            Some(Change::ChannelPut(r)) => {
                assert_eq!(
                    (r.id, r.position, r.kind),
                    (ChannelId(2), 3, ChannelKind::Text)
                )
            }
            other => panic!("{other:?}"),
        }
        let community = Subject::Community(CommunityId(1));
        let member = tail(
            "MEMBER_UPDATE",
            r#"{"user":{"id":"9"},"roles":["5","6"],"community_id":"1"}"#,
        );
        assert_eq!(
            decode_change(EventKind::MemberUpdate, &community, &member),
            Some(Change::MemberRoles(UserId(9), vec![RoleId(5), RoleId(6)]))
        );
        let role = tail(
            "ROLE_UPDATE",
            r#"{"id":"5","community_id":"1","name":"mods","permissions":["VIEW_CHANNEL"],"color":null,"position":2}"#,
        );
        match decode_change(EventKind::RoleUpdate, &community, &role) {
            Some(Change::RolePut(r)) => {
                assert_eq!(r.permissions, Permissions::VIEW_CHANNEL.bits() as i64)
            }
            other => panic!("{other:?}"),
        }
        let dm = tail(
            "CHANNEL_CREATE",
            r#"{"id":"7","kind":"group_dm","recipients":[{"id":"1"},{"id":"2"},{"id":"3"}]}"#,
        );
        assert_eq!(
            decode_change(
                EventKind::ChannelCreate,
                &Subject::Private(ChannelId(7)),
                &dm
            ),
            Some(Change::PrivateCreated(vec![
                UserId(1),
                UserId(2),
                UserId(3)
            ]))
        );
        // Messages are never decoded.
        let msg = tail("MESSAGE_CREATE", r#"{"id":"1"}"#);
        assert_eq!(decode_change(EventKind::MessageCreate, &ch, &msg), None);
    }
}
