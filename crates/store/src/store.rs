//! The repository API every backend implements.

use async_trait::async_trait;
use hearth_types::{AttachmentId, ChannelId, CommunityId, MessageId, RoleId, SessionId, UserId};

use crate::StoreResult;
use crate::model::*;

#[async_trait]
pub trait Store:
    crate::mail::MailStore
    + crate::notify::NotifyStore
    + crate::oidc::OidcStore
    + crate::embeds::EmbedStore
    + crate::uploads::UploadStore
    + Send
    + Sync
    + 'static
{
    /// `"sqlite"` or `"postgres"`, for logs and `/readyz`.
    fn backend(&self) -> &'static str;
    /// A trivial round trip, for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;
    /// Whether the database takes a new connection now, tried outside the pool
    /// (whose acquire keeps retrying a refused connection until its timeout,
    /// 10 s). False only when it is surely down (refused, shutting down,
    /// starting up); slow or saturated is not down. Embedded SQLite: true.
    async fn reachable(&self) -> bool;
    /// Runs every embedded migration not yet applied. Idempotent.
    async fn migrate(&self) -> StoreResult<()>;

    // ---- node leases: each live node holds a distinct 10-bit node id ----
    /// Claims the lowest free or expired node id for `holder` until `now + ttl_ms`.
    async fn lease_node(&self, holder: &str, now: i64, ttl_ms: i64) -> StoreResult<Option<u16>>;
    /// Extends a held lease. False if it was lost (taken over after expiring).
    async fn renew_node(&self, node: u16, holder: &str, now: i64, ttl_ms: i64)
    -> StoreResult<bool>;
    async fn release_node(&self, node: u16, holder: &str) -> StoreResult<()>;

    // ---- access-token signing keys, shared by every node on the database ----
    /// Every key, oldest (lowest kid number) first, retired ones included.
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    /// Makes sure a key that verifies exists: if none does, stores `secret`
    /// as the next key (`k1` on a new database) and returns every key. Race-free:
    /// concurrent callers insert the same kid (`ON CONFLICT DO NOTHING`) and
    /// all read back the one that was stored, so they agree on one key.
    async fn ensure_signing_key(
        &self,
        secret: &[u8],
        now: i64,
    ) -> StoreResult<Vec<SigningKeyRecord>>;
    /// Adds a key after the newest (`k<n+1>`) and returns it.
    async fn add_signing_key(&self, secret: &[u8], now: i64) -> StoreResult<SigningKeyRecord>;
    /// Retires a key: it verifies nothing from then on. False if it is
    /// unknown or retired already.
    async fn retire_signing_key(&self, kid: &str, now: i64) -> StoreResult<bool>;

    // ---- users ----
    /// `Conflict("username")` / `Conflict("email")` when taken (ignoring case).
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()>;
    async fn user(&self, id: UserId) -> StoreResult<Option<UserRecord>>;
    /// By username or email, ignoring case.
    async fn user_by_login(&self, login: &str) -> StoreResult<Option<UserRecord>>;
    async fn update_user(&self, id: UserId, patch: &UserPatch) -> StoreResult<Option<UserRecord>>;
    async fn set_totp_secret(&self, id: UserId, secret: Option<&str>) -> StoreResult<bool>;
    async fn set_password_hash(&self, id: UserId, hash: &str) -> StoreResult<bool>;
    async fn set_admin(&self, id: UserId, admin: bool) -> StoreResult<bool>;

    // ---- sessions and refresh tokens ----
    async fn create_session(&self, session: &SessionRecord, refresh_hash: &str) -> StoreResult<()>;
    async fn session(&self, id: SessionId) -> StoreResult<Option<SessionRecord>>;
    async fn sessions_for_user(&self, user: UserId) -> StoreResult<Vec<SessionRecord>>;
    /// Spends `old_hash` and stores `new_hash` in its place, atomically; a spent
    /// token presented again revokes the session.
    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        now: i64,
    ) -> StoreResult<RefreshOutcome>;
    /// Revokes a live session of `user`. False if none matched.
    async fn revoke_session(&self, id: SessionId, user: UserId, now: i64) -> StoreResult<bool>;
    async fn touch_session(&self, id: SessionId, now: i64) -> StoreResult<()>;

    // ---- communities ----
    /// Creates the community, its `@everyone` role, its first channel and the owner's membership.
    async fn create_community(
        &self,
        community: &CommunityRecord,
        everyone: &RoleRecord,
        first_channel: &ChannelRecord,
    ) -> StoreResult<()>;
    async fn community(&self, id: CommunityId) -> StoreResult<Option<CommunityRecord>>;
    async fn communities_for_user(&self, user: UserId) -> StoreResult<Vec<CommunityRecord>>;
    /// Changes what is given: the name, and the icon when `icon` is `Some`
    /// (`Some(None)` clears it).
    async fn update_community(
        &self,
        id: CommunityId,
        name: Option<&str>,
        icon: Option<Option<AttachmentId>>,
    ) -> StoreResult<Option<CommunityRecord>>;
    async fn delete_community(&self, id: CommunityId) -> StoreResult<bool>;

    // ---- members ----
    async fn member(
        &self,
        community: CommunityId,
        user: UserId,
    ) -> StoreResult<Option<MemberRecord>>;
    /// Members ordered by user id, after the cursor.
    async fn members(
        &self,
        community: CommunityId,
        after: Option<UserId>,
        limit: u32,
    ) -> StoreResult<Vec<MemberRecord>>;
    /// All member user ids (for mention fan-out and event audiences).
    async fn member_ids(&self, community: CommunityId) -> StoreResult<Vec<UserId>>;
    /// User ids holding a role.
    async fn role_member_ids(
        &self,
        community: CommunityId,
        role: RoleId,
    ) -> StoreResult<Vec<UserId>>;
    /// False if already a member.
    async fn add_member(&self, community: CommunityId, user: UserId, now: i64)
    -> StoreResult<bool>;
    async fn remove_member(&self, community: CommunityId, user: UserId) -> StoreResult<bool>;
    async fn update_member(
        &self,
        community: CommunityId,
        user: UserId,
        patch: &MemberPatch,
    ) -> StoreResult<Option<MemberRecord>>;
    async fn add_member_role(
        &self,
        community: CommunityId,
        user: UserId,
        role: RoleId,
    ) -> StoreResult<bool>;
    async fn remove_member_role(
        &self,
        community: CommunityId,
        user: UserId,
        role: RoleId,
    ) -> StoreResult<bool>;
    /// Bans and removes the member in one step. False if already banned.
    async fn ban(&self, ban: &BanRecord) -> StoreResult<bool>;
    async fn unban(&self, community: CommunityId, user: UserId) -> StoreResult<bool>;
    async fn is_banned(&self, community: CommunityId, user: UserId) -> StoreResult<bool>;
    async fn bans(&self, community: CommunityId) -> StoreResult<Vec<BanRecord>>;

    // ---- invites ----
    async fn create_invite(&self, invite: &InviteRecord) -> StoreResult<()>;
    async fn invite(&self, code: &str) -> StoreResult<Option<InviteRecord>>;
    async fn invites(&self, community: CommunityId) -> StoreResult<Vec<InviteRecord>>;
    /// Counts one use if the invite is live, atomically (never past `max_uses`).
    async fn use_invite(&self, code: &str, now: i64) -> StoreResult<InviteUse>;
    async fn delete_invite(&self, code: &str) -> StoreResult<bool>;

    // ---- roles ----
    async fn create_role(&self, role: &RoleRecord) -> StoreResult<()>;
    async fn role(&self, id: RoleId) -> StoreResult<Option<RoleRecord>>;
    async fn roles(&self, community: CommunityId) -> StoreResult<Vec<RoleRecord>>;
    async fn update_role(&self, id: RoleId, patch: &RolePatch) -> StoreResult<Option<RoleRecord>>;
    /// Also drops it from members and channel overwrites.
    async fn delete_role(&self, id: RoleId) -> StoreResult<bool>;

    // ---- channels and overwrites ----
    async fn create_channel(&self, channel: &ChannelRecord) -> StoreResult<()>;
    async fn channel(&self, id: ChannelId) -> StoreResult<Option<ChannelRecord>>;
    async fn channels(&self, community: CommunityId) -> StoreResult<Vec<ChannelRecord>>;
    async fn update_channel(
        &self,
        id: ChannelId,
        patch: &ChannelPatch,
    ) -> StoreResult<Option<ChannelRecord>>;
    async fn delete_channel(&self, id: ChannelId) -> StoreResult<bool>;
    async fn overwrites(&self, channel: ChannelId) -> StoreResult<Vec<OverwriteRecord>>;
    /// Every overwrite of every channel of a community (one query for channel lists).
    async fn community_overwrites(
        &self,
        community: CommunityId,
    ) -> StoreResult<Vec<OverwriteRecord>>;
    async fn put_overwrite(&self, overwrite: &OverwriteRecord) -> StoreResult<()>;
    async fn delete_overwrite(&self, channel: ChannelId, target_id: i64) -> StoreResult<bool>;

    // ---- DMs ----
    /// Creates a DM or group DM with its recipients. For a 1:1 DM whose `dm_key`
    /// exists already, returns the existing channel instead.
    async fn create_private_channel(
        &self,
        channel: &ChannelRecord,
        recipients: &[UserId],
    ) -> StoreResult<ChannelRecord>;
    async fn private_channels(&self, user: UserId) -> StoreResult<Vec<ChannelRecord>>;
    async fn recipients(&self, channel: ChannelId) -> StoreResult<Vec<UserRecord>>;
    async fn is_recipient(&self, channel: ChannelId, user: UserId) -> StoreResult<bool>;

    // ---- messages ----
    /// Inserts the message, or returns the first one for a repeated nonce from
    /// the same author in the same channel within `nonce_window_ms`.
    async fn create_message(
        &self,
        msg: &NewMessage,
        author: &UserRecord,
        now: i64,
        nonce_window_ms: i64,
    ) -> StoreResult<MessageCreate>;
    /// The author's message carrying `nonce` in the channel, if any.
    async fn message_by_nonce(
        &self,
        channel: ChannelId,
        author: UserId,
        nonce: &str,
    ) -> StoreResult<Option<MessageRecord>>;
    /// Inserts many messages in one transaction (seeding and imports).
    async fn bulk_insert_messages(&self, msgs: &[NewMessage]) -> StoreResult<()>;
    async fn message(
        &self,
        channel: ChannelId,
        id: MessageId,
    ) -> StoreResult<Option<MessageRecord>>;
    async fn messages(
        &self,
        channel: ChannelId,
        page: Page<MessageId>,
    ) -> StoreResult<Vec<MessageRecord>>;
    /// Every channel's messages after `after`, in ID order, at most
    /// `limit` (rebuilding the search index).
    async fn messages_after(&self, after: MessageId, limit: u32)
    -> StoreResult<Vec<MessageRecord>>;
    async fn edit_message(
        &self,
        channel: ChannelId,
        id: MessageId,
        content: &str,
        mentions: &Mentions,
        edited_at: i64,
    ) -> StoreResult<Option<MessageRecord>>;
    async fn delete_message(&self, channel: ChannelId, id: MessageId) -> StoreResult<bool>;
    async fn set_pinned(
        &self,
        channel: ChannelId,
        id: MessageId,
        pinned: bool,
    ) -> StoreResult<bool>;
    async fn pinned_messages(&self, channel: ChannelId) -> StoreResult<Vec<MessageRecord>>;
    /// False if that user already reacted with that emoji.
    async fn add_reaction(
        &self,
        channel: ChannelId,
        message: MessageId,
        user: UserId,
        emoji: &str,
        now: i64,
        max_distinct: u32,
    ) -> StoreResult<ReactionAdded>;
    async fn remove_reaction(
        &self,
        message: MessageId,
        user: UserId,
        emoji: &str,
    ) -> StoreResult<bool>;
    async fn reactions(
        &self,
        channel: ChannelId,
        messages: &[MessageId],
        viewer: UserId,
    ) -> StoreResult<Vec<ReactionCount>>;

    // ---- read states ----
    /// Moves the read marker forward (never back) and clears the mention count.
    async fn ack(
        &self,
        user: UserId,
        channel: ChannelId,
        message: MessageId,
    ) -> StoreResult<ReadStateRecord>;
    async fn read_states(&self, user: UserId) -> StoreResult<Vec<ReadStateRecord>>;
    /// Adds one mention to each user's read state in the channel.
    async fn add_mentions(&self, channel: ChannelId, users: &[UserId]) -> StoreResult<()>;

    // ---- trust: blocks, DM reachability, single-use codes ----
    /// `user` blocks `blocked`; false if already blocked.
    async fn block_user(&self, user: UserId, blocked: UserId, now: i64) -> StoreResult<bool>;
    async fn unblock_user(&self, user: UserId, blocked: UserId) -> StoreResult<bool>;
    /// Whom `user` has blocked, oldest first.
    async fn blocked_users(&self, user: UserId) -> StoreResult<Vec<UserId>>;
    /// Whether `user` has blocked `other`.
    async fn has_blocked(&self, user: UserId, other: UserId) -> StoreResult<bool>;
    /// Whether the two users are members of at least one common community.
    async fn share_community(&self, a: UserId, b: UserId) -> StoreResult<bool>;
    /// Whether the two users are both recipients of some DM or group DM.
    async fn share_private_channel(&self, a: UserId, b: UserId) -> StoreResult<bool>;
    /// How many group DMs `owner` created at or after `since` (ms), and when
    /// the oldest of those was created.
    async fn group_dms_created_since(
        &self,
        owner: UserId,
        since: i64,
    ) -> StoreResult<(i64, Option<i64>)>;
    /// Records `step` as the last TOTP step used; false (and no change) when
    /// a code of this step or a later one was already accepted.
    async fn use_totp_step(&self, user: UserId, step: i64) -> StoreResult<bool>;
    /// Forgets the last used TOTP step (a new secret starts afresh).
    async fn reset_totp_step(&self, user: UserId) -> StoreResult<()>;

    // ---- the embedded bus's journal (see hearth-bus `journal.rs`) ----
    /// The highest journaled position (0: none).
    async fn journal_head(&self) -> StoreResult<i64>;
    /// Stores events in one transaction; a position already stored stays.
    async fn journal_append(&self, events: &[JournalRecord]) -> StoreResult<()>;
    /// Up to `limit` events after `position`, in order.
    async fn journal_after(&self, position: i64, limit: u32) -> StoreResult<Vec<JournalRecord>>;
    /// Drops events before `position` (retention); returns how many.
    async fn journal_trim(&self, before: i64) -> StoreResult<u64>;
    async fn consumer_cursor(&self, name: &str) -> StoreResult<i64>;
    async fn set_consumer_cursor(&self, name: &str, position: i64, now: i64) -> StoreResult<()>;
    async fn add_dead_letter(&self, dead: &DeadLetterRecord) -> StoreResult<()>;
    /// A consumer's dead letters, oldest first.
    async fn dead_letters(&self, consumer: &str, limit: u32) -> StoreResult<Vec<DeadLetterRecord>>;

    // ---- moderation: the audit log and automod rules ----
    /// Stores an audit row unless one with its id exists; true if stored.
    async fn insert_audit(&self, entry: &AuditRecord) -> StoreResult<bool>;
    /// At most `limit` rows matching `query`, newest (largest id) first.
    /// `insert_audit` for many, in one transaction; how many were new.
    async fn insert_audits(&self, entries: &[AuditRecord]) -> StoreResult<u64>;
    async fn audit_entries(&self, query: &AuditQuery, limit: u32) -> StoreResult<Vec<AuditRecord>>;
    /// Drops rows created before `before` (ms); returns how many.
    async fn prune_audit(&self, before: i64) -> StoreResult<u64>;
    /// A community's automod rules as stored (a JSON list), if any.
    async fn automod_rules(&self, community: CommunityId) -> StoreResult<Option<String>>;
    /// Replaces a community's automod rules.
    async fn set_automod_rules(
        &self,
        community: CommunityId,
        rules: &str,
        now: i64,
    ) -> StoreResult<()>;
    /// Deletes the messages of `ids` that are in `channel`; returns the ones deleted.
    async fn delete_messages(
        &self,
        channel: ChannelId,
        ids: &[MessageId],
    ) -> StoreResult<Vec<MessageId>>;
    /// The (channel, message) ids `author` sent in the community's channels
    /// with an id above `after` (at most 10,000, oldest first).
    async fn messages_by_author_since(
        &self,
        community: CommunityId,
        author: UserId,
        after: MessageId,
    ) -> StoreResult<Vec<(ChannelId, MessageId)>>;

    // ---- platform administration ----
    /// The staff policy's rules as stored (opaque text: the moderation
    /// layer gives them meaning), oldest first.
    async fn staff_rules(&self) -> StoreResult<Vec<String>>;
    /// Adds a rule; false if it was there already.
    async fn add_staff_rule(&self, rule: &str, now: i64) -> StoreResult<bool>;
    /// Removes a rule; false if it was not there.
    async fn remove_staff_rule(&self, rule: &str) -> StoreResult<bool>;
    /// Suspends an account; false (and the first suspension kept) if it
    /// already is, or if there is no such user.
    async fn suspend_user(&self, s: &SuspensionRecord) -> StoreResult<bool>;
    /// Lifts a suspension; false if there was none.
    async fn unsuspend_user(&self, user: UserId) -> StoreResult<bool>;
    async fn suspension(&self, user: UserId) -> StoreResult<Option<SuspensionRecord>>;
    /// Users whose username starts with `query` or whose email is `query`
    /// (both ignoring case; an empty query matches everyone), by id after
    /// `after`, at most `limit`.
    /// Erases an account's personal data for good (see `ErasureRecord`):
    /// the row keeps its id under `tombstone` (its username from now on)
    /// and nothing else of the person; its refresh and account tokens,
    /// pending mail, blocks, read states, memberships and suspension go,
    /// and its sessions are revoked. One transaction. False if there is no
    /// such user or it was erased already.
    async fn erase_user(&self, e: &ErasureRecord, tombstone: &str) -> StoreResult<bool>;
    async fn erasure(&self, user: UserId) -> StoreResult<Option<ErasureRecord>>;
    /// `(channel, community, message)` for the messages `author` sent
    /// anywhere (communities and DMs) with an id above `after`, oldest
    /// first, at most `limit`.
    async fn messages_by_author(
        &self,
        author: UserId,
        after: MessageId,
        limit: u32,
    ) -> StoreResult<Vec<(ChannelId, Option<CommunityId>, MessageId)>>;
    /// Communities by id for the instance's staff: `query` is a name
    /// prefix (ignoring case) or an exact id; empty lists them all.
    async fn admin_communities(
        &self,
        query: &str,
        after: CommunityId,
        limit: u32,
    ) -> StoreResult<Vec<CommunitySummary>>;
    async fn find_users(
        &self,
        query: &str,
        after: UserId,
        limit: u32,
    ) -> StoreResult<Vec<UserRecord>>;
    /// Counts for operators; `now` (ms) dates "live" sessions.
    async fn instance_stats(&self, now: i64) -> StoreResult<InstanceStats>;

    // ---- reports ----
    async fn insert_report(&self, r: &ReportRecord) -> StoreResult<()>;
    async fn report(&self, id: i64) -> StoreResult<Option<ReportRecord>>;
    /// Writes `r` (its version one above `expected`) if the stored version
    /// is still `expected`; false if someone changed it meanwhile.
    async fn update_report(&self, r: &ReportRecord, expected: i64) -> StoreResult<bool>;
    /// A queue: reports to `community` (`None`: the instance), in `state`
    /// if given, with an id below `before`, newest first.
    async fn reports(
        &self,
        community: Option<CommunityId>,
        state: Option<&str>,
        before: i64,
        limit: u32,
    ) -> StoreResult<Vec<ReportRecord>>;

    // ---- attachments ----
    async fn insert_attachment(&self, a: &AttachmentRecord) -> StoreResult<()>;
    async fn attachment(&self, id: AttachmentId) -> StoreResult<Option<AttachmentRecord>>;
    /// The rows of `ids` that exist, in the order of `ids`.
    async fn attachments(&self, ids: &[AttachmentId]) -> StoreResult<Vec<AttachmentRecord>>;
    /// Binds `ids` to `message` where each is `uploader`'s unclaimed upload to
    /// `channel`, all or none (one transaction); true if all were.
    async fn claim_attachments(
        &self,
        ids: &[AttachmentId],
        uploader: UserId,
        channel: ChannelId,
        message: MessageId,
    ) -> StoreResult<bool>;
    async fn set_attachment_processed(
        &self,
        id: AttachmentId,
        p: &AttachmentProcessed,
    ) -> StoreResult<()>;
    /// Unclaimed message uploads created before `before` and unused avatar
    /// and icon uploads (no user's avatar, no community's icon), at most
    /// `limit`, oldest first: what collection removes.
    async fn expired_attachments(
        &self,
        before: i64,
        limit: u32,
    ) -> StoreResult<Vec<AttachmentRecord>>;
    /// Files whose message, channel or community was deleted before
    /// `before` (oldest first, at most `limit`): for the collector.
    async fn orphaned_attachments(
        &self,
        before: i64,
        limit: u32,
    ) -> StoreResult<Vec<AttachmentRecord>>;
    async fn delete_attachment(&self, id: AttachmentId) -> StoreResult<bool>;
    /// Takes an expired unsent upload out of reach before its bytes are
    /// deleted (purpose `expired`, which no send, avatar or icon accepts);
    /// false when a send claimed it first (then it must be kept).
    async fn withdraw_unsent_attachment(&self, id: AttachmentId) -> StoreResult<bool>;
}
