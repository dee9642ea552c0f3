//! Records as stored. Times are Unix milliseconds; IDs are the typed snowflakes.

use hearth_types::{AttachmentId, ChannelId, CommunityId, MessageId, RoleId, SessionId, UserId};

#[derive(Clone, Debug, PartialEq)]
pub struct UserRecord {
    pub id: UserId,
    pub username: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub avatar_id: Option<AttachmentId>,
    pub password_hash: String,
    pub is_admin: bool,
    pub plan: String,
    /// The TOTP secret (raw bytes, hex) once two-factor sign-in is on.
    pub totp_secret: Option<String>,
    /// Who may open a DM with this user.
    pub allow_dms_from: DmPolicy,
    pub created_at: i64,
    /// When the current `email` was proven to be the user's (a link mailed
    /// to it was opened); cleared when the address changes.
    pub email_verified_at: Option<i64>,
    /// When a mail server refused the current `email` for good (5xx);
    /// nothing more is mailed there until the address changes.
    pub email_bounced_at: Option<i64>,
}

/// Who may open a DM with a user (contract v1.1, "DMs").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DmPolicy {
    /// Users who share a community with them (or already share a DM).
    #[default]
    CommunityMembers,
    Nobody,
}

impl DmPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            DmPolicy::CommunityMembers => "community_members",
            DmPolicy::Nobody => "nobody",
        }
    }

    pub fn parse(s: &str) -> Option<DmPolicy> {
        match s {
            "community_members" => Some(DmPolicy::CommunityMembers),
            "nobody" => Some(DmPolicy::Nobody),
            _ => None,
        }
    }
}

/// What adding a reaction did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReactionAdded {
    Added,
    /// The user had already reacted with that emoji.
    AlreadyThere,
    /// The message already carries the most distinct reactions allowed.
    Full,
}

/// Fields a profile update may change; `None` leaves a field alone, `Some(None)` clears it.
#[derive(Clone, Debug, Default)]
pub struct UserPatch {
    pub display_name: Option<Option<String>>,
    pub avatar_id: Option<Option<AttachmentId>>,
    pub allow_dms_from: Option<DmPolicy>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SessionRecord {
    pub id: SessionId,
    pub user_id: UserId,
    pub user_agent: Option<String>,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub revoked_at: Option<i64>,
}

/// What presenting a refresh token did.
#[derive(Clone, Debug, PartialEq)]
pub enum RefreshOutcome {
    /// The token was live: it is now spent and `new_hash` replaces it.
    Rotated(SessionRecord),
    /// The token had been spent before: the whole session is now revoked.
    Reused(SessionId),
    /// No such token, or its session is already revoked.
    Invalid,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CommunityRecord {
    pub id: CommunityId,
    pub name: String,
    pub owner_id: UserId,
    pub icon_id: Option<AttachmentId>,
    pub created_at: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RoleRecord {
    pub id: RoleId,
    pub community_id: CommunityId,
    pub name: String,
    /// The rbac bitset, as stored.
    pub permissions: i64,
    pub color: Option<i32>,
    pub position: i32,
}

#[derive(Clone, Debug, Default)]
pub struct RolePatch {
    pub name: Option<String>,
    pub permissions: Option<i64>,
    pub color: Option<Option<i32>>,
    pub position: Option<i32>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MemberRecord {
    pub community_id: CommunityId,
    pub user: UserRecord,
    /// The member's roles other than `@everyone`.
    pub role_ids: Vec<RoleId>,
    pub nickname: Option<String>,
    pub joined_at: i64,
    pub timed_out_until: Option<i64>,
}

#[derive(Clone, Debug, Default)]
pub struct MemberPatch {
    pub nickname: Option<Option<String>>,
    pub timed_out_until: Option<Option<i64>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BanRecord {
    pub community_id: CommunityId,
    pub user_id: UserId,
    pub reason: Option<String>,
    pub moderator_id: UserId,
    pub created_at: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct InviteRecord {
    pub code: String,
    pub community_id: CommunityId,
    pub inviter_id: UserId,
    pub uses: i32,
    pub max_uses: Option<i32>,
    pub expires_at: Option<i64>,
    pub created_at: i64,
}

/// What redeeming an invite did.
#[derive(Clone, Debug, PartialEq)]
pub enum InviteUse {
    /// Counted; the caller may now add the member.
    Used(InviteRecord),
    /// Unknown code, expired, or used up.
    Invalid,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelKind {
    Text,
    Voice,
    Dm,
    GroupDm,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Text => "text",
            ChannelKind::Voice => "voice",
            ChannelKind::Dm => "dm",
            ChannelKind::GroupDm => "group_dm",
        }
    }

    pub fn parse(s: &str) -> Option<ChannelKind> {
        Some(match s {
            "text" => ChannelKind::Text,
            "voice" => ChannelKind::Voice,
            "dm" => ChannelKind::Dm,
            "group_dm" => ChannelKind::GroupDm,
            _ => return None,
        })
    }

    pub fn is_private(self) -> bool {
        matches!(self, ChannelKind::Dm | ChannelKind::GroupDm)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChannelRecord {
    pub id: ChannelId,
    /// `None` for DMs and group DMs.
    pub community_id: Option<CommunityId>,
    pub kind: ChannelKind,
    pub name: Option<String>,
    pub topic: Option<String>,
    pub position: i32,
    pub parent_id: Option<ChannelId>,
    /// The creator of a group DM.
    pub owner_id: Option<UserId>,
    /// For a 1:1 DM, `"<low id>:<high id>"`: the same pair finds the same channel.
    pub dm_key: Option<String>,
    pub last_message_id: Option<MessageId>,
    pub created_at: i64,
    pub settings: ChannelSettings,
}

/// What moderators set on a channel (all off by default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelSettings {
    /// Voice: most members connected at once (0: no limit).
    pub user_limit: i32,
    /// Seconds a member waits between messages (0: off).
    pub slowmode_secs: i32,
    /// Only members with MANAGE_MESSAGES may send.
    pub locked: bool,
}

#[derive(Clone, Debug, Default)]
pub struct ChannelPatch {
    pub name: Option<String>,
    pub topic: Option<Option<String>>,
    pub position: Option<i32>,
    pub parent_id: Option<Option<ChannelId>>,
    pub user_limit: Option<i32>,
    pub slowmode_secs: Option<i32>,
    pub locked: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverwriteTargetKind {
    Role,
    Member,
}

impl OverwriteTargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OverwriteTargetKind::Role => "role",
            OverwriteTargetKind::Member => "member",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct OverwriteRecord {
    pub channel_id: ChannelId,
    /// A role ID or a user ID, as `target_kind` says.
    pub target_id: i64,
    pub target_kind: OverwriteTargetKind,
    pub allow: i64,
    pub deny: i64,
}

/// Who and what a message mentions, resolved at write time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mentions {
    pub users: Vec<UserId>,
    pub roles: Vec<RoleId>,
    pub everyone: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewMessage {
    pub id: MessageId,
    pub channel_id: ChannelId,
    pub author_id: UserId,
    pub content: String,
    pub reply_to_id: Option<MessageId>,
    pub mentions: Mentions,
    pub attachment_ids: Vec<AttachmentId>,
    pub nonce: Option<String>,
}

/// A message as read back, with its author's public profile.
#[derive(Clone, Debug, PartialEq)]
pub struct MessageRecord {
    pub id: MessageId,
    pub channel_id: ChannelId,
    pub author: UserRecord,
    pub content: String,
    pub edited_at: Option<i64>,
    pub reply_to_id: Option<MessageId>,
    pub mentions: Mentions,
    pub attachment_ids: Vec<AttachmentId>,
    pub pinned: bool,
    pub nonce: Option<String>,
}

/// What a create with a nonce did.
#[derive(Clone, Debug, PartialEq)]
pub enum MessageCreate {
    Created(MessageRecord),
    /// The same author sent the same nonce in this channel within the window.
    Duplicate(MessageRecord),
}

/// A page request: `before` (or neither) gives newest first, `after` oldest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page<I> {
    pub before: Option<I>,
    pub after: Option<I>,
    pub limit: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReactionCount {
    pub message_id: MessageId,
    pub emoji: String,
    pub count: i64,
    /// Whether the viewer is among those who reacted.
    pub me: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadStateRecord {
    pub channel_id: ChannelId,
    pub last_read_id: MessageId,
    pub mention_count: i32,
}

/// An access-token signing key (an HS256 secret) shared by every node on the
/// database. Kids are `k1`, `k2`, … in order of creation.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub secret: Vec<u8>,
    pub created_at: i64,
    /// Once set, the key no longer verifies anything.
    pub retired_at: Option<i64>,
}

impl SigningKeyRecord {
    /// The number in the kid (`k7` → 7), which orders keys by creation
    /// whatever the clocks of the machines that made them said.
    pub fn seq(&self) -> u64 {
        self.kid
            .strip_prefix('k')
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("secret", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish()
    }
}

/// One event of the embedded bus's journal (a CloudEvents envelope at its
/// log position); `data` is opaque here as on the bus.
#[derive(Clone, Debug, PartialEq)]
pub struct JournalRecord {
    pub position: i64,
    pub id: String,
    pub source: String,
    pub ty: String,
    pub subject: String,
    pub time: i64,
    pub content_type: String,
    pub data: Vec<u8>,
}

/// An event a consumer gave up on, with why.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetterRecord {
    pub consumer: String,
    pub event: JournalRecord,
    pub error: String,
    pub created_at: i64,
}

/// One audit-log row. `action`, `target_kind` and `changes` (a JSON list)
/// are opaque text here: the server's moderation layer gives them meaning.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditRecord {
    pub id: i64,
    pub community_id: Option<CommunityId>,
    pub actor_id: Option<UserId>,
    pub action: String,
    pub target_kind: String,
    pub target_id: Option<i64>,
    pub reason: Option<String>,
    pub changes: String,
    pub created_at: i64,
}

/// A suspended account: who suspended it, when and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuspensionRecord {
    pub user_id: UserId,
    pub reason: Option<String>,
    pub suspended_by: Option<UserId>,
    pub suspended_at: i64,
}

/// An erased account: when, by whom, and what became of its messages
/// (`keep`: shown as from a deleted user; `remove`: deleted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErasureRecord {
    pub user_id: UserId,
    pub erased_by: Option<UserId>,
    pub messages: String,
    pub erased_at: i64,
}

/// A community as the instance's staff list it.
#[derive(Clone, Debug, PartialEq)]
pub struct CommunitySummary {
    pub community: CommunityRecord,
    pub members: i64,
    pub channels: i64,
}

/// A report as stored: the queue's columns and the whole report (JSON the
/// moderation crate defines).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportRecord {
    pub id: i64,
    /// `None`: to the instance's staff.
    pub community_id: Option<CommunityId>,
    pub reporter_id: UserId,
    pub state: String,
    pub report: String,
    /// Rises with every change (optimistic concurrency).
    pub version: i64,
    pub created_at: i64,
}

/// Counts for the instance's operators.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InstanceStats {
    pub users: i64,
    pub suspended_users: i64,
    pub communities: i64,
    pub channels: i64,
    pub messages: i64,
    /// Sessions not revoked and seen within the last 30 days.
    pub live_sessions: i64,
}

/// Which audit rows to list, newest (largest id) first. Every field set
/// must match; `community_id: None` lists the instance's rows (no community).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditQuery {
    pub community_id: Option<CommunityId>,
    pub actor_id: Option<UserId>,
    pub action: Option<String>,
    pub target_id: Option<i64>,
    /// Only rows with a smaller id.
    pub before: Option<i64>,
    /// Only rows with a larger id.
    pub after: Option<i64>,
}

/// An uploaded file (the bytes are in the blob store under `blob_key`).
#[derive(Clone, Debug, PartialEq)]
pub struct AttachmentRecord {
    pub id: AttachmentId,
    pub uploader_id: UserId,
    /// The channel it was uploaded to (`None` for avatars).
    pub channel_id: Option<ChannelId>,
    /// `message` or `avatar`: opaque here.
    pub purpose: String,
    pub filename: String,
    pub declared_type: String,
    /// What the bytes are (sniffed), not what the client said.
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub blob_key: String,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub blurhash: Option<String>,
    pub preview_key: Option<String>,
    /// The pipeline refused it as an image (corrupt, a bomb, a polyglot).
    pub undecodable: bool,
    pub message_id: Option<MessageId>,
    pub created_at: i64,
    /// Audio and video: how long it plays, once probed.
    pub duration_ms: Option<i64>,
}

/// What the image pipeline found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AttachmentProcessed {
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub blurhash: Option<String>,
    pub preview_key: Option<String>,
    pub undecodable: bool,
    /// Set when the original was rewritten (metadata stripped).
    pub size_sha256: Option<(i64, String)>,
    /// Audio and video.
    pub duration_ms: Option<i64>,
}
