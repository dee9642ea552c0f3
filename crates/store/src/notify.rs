//! Notifications' repository (issue #13): settings per account, community
//! and channel, the inbox, browsers' push subscriptions, the push outbox
//! and the server's VAPID key. A supertrait of [`Store`](crate::Store),
//! one SQL text stamped out for both backends, like `mail.rs`.

use async_trait::async_trait;
use hearth_types::{ChannelId, CommunityId, MessageId, UserId};
use sqlx::Row;

use crate::StoreResult;
use crate::sql::{PostgresStore, SqliteStore, join_ids};

/// The account's row in `notification_settings` has scope id 0.
pub const ACCOUNT_SCOPE: i64 = 0;

/// One user's settings for one scope; `None` inherits. `level` is opaque
/// here (`all`, `mentions`, `nothing`: `hearth-notify` reads it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotifySettingRecord {
    pub user_id: UserId,
    /// 0 for the account, else the community's or channel's id.
    pub scope_id: i64,
    /// `account`, `community` or `channel`.
    pub scope: String,
    pub level: Option<String>,
    pub muted_until: Option<i64>,
    pub suppress_everyone: Option<bool>,
    pub push_previews: Option<bool>,
    pub email_digest: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationRecord {
    pub id: i64,
    pub user_id: UserId,
    pub message_id: MessageId,
    pub channel_id: ChannelId,
    pub community_id: Option<CommunityId>,
    /// Why (`mention`, `reply`, `dm`…: opaque here).
    pub kind: String,
    pub created_at: i64,
    pub read_at: Option<i64>,
    pub emailed_at: Option<i64>,
}

/// One notification to add for a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewNotification {
    pub id: i64,
    pub user_id: UserId,
    pub kind: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushSubscriptionRecord {
    pub id: i64,
    pub user_id: UserId,
    pub endpoint: String,
    /// Base64url, as the browser gave them.
    pub p256dh: String,
    pub auth: String,
    pub created_at: i64,
}

/// A push waiting to go out, with its subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushRecord {
    pub id: i64,
    pub subscription: PushSubscriptionRecord,
    /// The collapse key (a channel id): a newer push replaces a waiting one.
    pub topic: String,
    /// The JSON the browser receives (encrypted when sent).
    pub payload: String,
    /// How many times the payload was replaced; a worker's outcome applies
    /// only to the version it sent.
    pub version: i64,
    /// Attempts made (a claim counts one).
    pub attempts: i64,
    pub created_at: i64,
}

#[async_trait]
pub trait NotifyStore: Send + Sync {
    /// Every settings row of the user.
    async fn notify_settings(&self, user: UserId) -> StoreResult<Vec<NotifySettingRecord>>;
    /// The rows of these users for these scopes (for deciding a message).
    async fn notify_settings_of(
        &self,
        users: &[UserId],
        scopes: &[i64],
    ) -> StoreResult<Vec<NotifySettingRecord>>;
    /// Inserts or replaces the row for (user, scope).
    async fn put_notify_setting(&self, s: &NotifySettingRecord) -> StoreResult<()>;
    /// False if there was none.
    async fn delete_notify_setting(&self, user: UserId, scope_id: i64) -> StoreResult<bool>;
    /// Users who set `all` on this channel, on its community, or on their
    /// account while members of the community (`community` is `None` for DMs).
    async fn notify_all_subscribers(
        &self,
        community: Option<CommunityId>,
        channel: ChannelId,
    ) -> StoreResult<Vec<UserId>>;

    /// Who has blocked `user` (they are never notified of `user`'s messages).
    async fn users_blocking(&self, user: UserId) -> StoreResult<Vec<UserId>>;

    /// Adds notifications for a message that still exists, one per user at
    /// most (a user notified already is skipped); returns those added. A
    /// user who has read the channel up to the message gets it read.
    async fn add_notifications(
        &self,
        message: MessageId,
        channel: ChannelId,
        community: Option<CommunityId>,
        created_at: i64,
        rows: &[NewNotification],
    ) -> StoreResult<Vec<NotificationRecord>>;
    /// Newest first, before `before` (a notification id).
    async fn notifications(
        &self,
        user: UserId,
        before: Option<i64>,
        limit: u32,
        unread_only: bool,
    ) -> StoreResult<Vec<NotificationRecord>>;
    /// Unread notifications per channel: (channel, community, count).
    async fn unread_notification_channels(
        &self,
        user: UserId,
    ) -> StoreResult<Vec<(ChannelId, Option<CommunityId>, i64)>>;
    /// Unread notifications of each of these users (those with none are left out).
    async fn unread_notification_counts(&self, users: &[UserId])
    -> StoreResult<Vec<(UserId, i64)>>;
    /// Marks one read (if unread); `None` if the user has no such notification.
    async fn read_notification(
        &self,
        user: UserId,
        id: i64,
        now: i64,
    ) -> StoreResult<Option<NotificationRecord>>;
    /// Marks unread ones read: all, or a channel's, up to a message; returns
    /// the ids marked.
    async fn read_notifications(
        &self,
        user: UserId,
        channel: Option<ChannelId>,
        up_to: Option<MessageId>,
        now: i64,
    ) -> StoreResult<Vec<i64>>;
    /// Users with unread, unmailed notifications (other than `message`
    /// ones) created at or before `before`.
    async fn digest_due(&self, before: i64, limit: u32) -> StoreResult<Vec<UserId>>;
    /// A user's unread, unmailed notifications (other than `message`)
    /// created at or before `before`, oldest first.
    async fn undigested(
        &self,
        user: UserId,
        before: i64,
        limit: u32,
    ) -> StoreResult<Vec<NotificationRecord>>;
    /// Marks these notifications mailed.
    async fn mark_notifications_emailed(
        &self,
        user: UserId,
        ids: &[i64],
        now: i64,
    ) -> StoreResult<()>;

    /// Registers a browser: a known endpoint moves to this user with these
    /// keys. Returns the row and whether it is new (or changed hands); keeps
    /// the user's newest `keep`.
    async fn put_push_subscription(
        &self,
        s: &PushSubscriptionRecord,
        keep: u32,
    ) -> StoreResult<(PushSubscriptionRecord, bool)>;
    async fn push_subscriptions(&self, user: UserId) -> StoreResult<Vec<PushSubscriptionRecord>>;
    async fn push_subscriptions_of(
        &self,
        users: &[UserId],
    ) -> StoreResult<Vec<PushSubscriptionRecord>>;
    /// Removes a subscription (only the user's, when `user` is given).
    async fn delete_push_subscription(&self, user: Option<UserId>, id: i64) -> StoreResult<bool>;
    /// Queues a push; one already waiting for the subscription and topic
    /// takes the new payload instead (and is due now).
    async fn enqueue_push(
        &self,
        id: i64,
        subscription: i64,
        topic: &str,
        payload: &str,
        now: i64,
    ) -> StoreResult<()>;
    /// Claims up to `limit` due pushes until `now + lease_ms`, counting an
    /// attempt on each; one caller at a time holds a push.
    async fn claim_push(&self, now: i64, lease_ms: i64, limit: u32)
    -> StoreResult<Vec<PushRecord>>;
    /// Done with the version sent (delivered or given up): the row goes,
    /// unless a newer payload replaced it meanwhile (that one stays due).
    async fn push_done(&self, id: i64, version: i64) -> StoreResult<()>;
    /// Failed this time: due again at `next_at` (a replaced payload is due now).
    async fn push_retry(&self, id: i64, version: i64, next_at: i64) -> StoreResult<()>;

    /// The VAPID key pair (private PKCS#8, public), storing `candidate` if
    /// there is none yet: every node gets the same one.
    async fn ensure_vapid_key(
        &self,
        private_key: &str,
        public_key: &str,
        now: i64,
    ) -> StoreResult<(String, String)>;
}

macro_rules! notification_cols {
    () => {
        "id, user_id, message_id, channel_id, community_id, kind, created_at, read_at, emailed_at"
    };
}

macro_rules! setting_cols {
    () => {
        "user_id, scope_id, scope, level, muted_until, suppress_everyone, push_previews, email_digest"
    };
}

macro_rules! subscription_cols {
    () => {
        "id, user_id, endpoint, p256dh, auth, created_at"
    };
}

/// Rows per multi-row statement (well under SQLite's parameter limit).
const CHUNK: usize = 500;

macro_rules! notify_impl {
    ($Store:ident, $Row:ty) => {
        impl $Store {
            fn notification_from(r: &$Row) -> Result<NotificationRecord, sqlx::Error> {
                Ok(NotificationRecord {
                    id: r.try_get("id")?,
                    user_id: UserId(r.try_get("user_id")?),
                    message_id: MessageId(r.try_get("message_id")?),
                    channel_id: ChannelId(r.try_get("channel_id")?),
                    community_id: r.try_get::<Option<i64>, _>("community_id")?.map(CommunityId),
                    kind: r.try_get("kind")?,
                    created_at: r.try_get("created_at")?,
                    read_at: r.try_get("read_at")?,
                    emailed_at: r.try_get("emailed_at")?,
                })
            }

            fn setting_from(r: &$Row) -> Result<NotifySettingRecord, sqlx::Error> {
                Ok(NotifySettingRecord {
                    user_id: UserId(r.try_get("user_id")?),
                    scope_id: r.try_get("scope_id")?,
                    scope: r.try_get("scope")?,
                    level: r.try_get("level")?,
                    muted_until: r.try_get("muted_until")?,
                    suppress_everyone: r.try_get("suppress_everyone")?,
                    push_previews: r.try_get("push_previews")?,
                    email_digest: r.try_get("email_digest")?,
                })
            }

            fn subscription_from(r: &$Row) -> Result<PushSubscriptionRecord, sqlx::Error> {
                Ok(PushSubscriptionRecord {
                    id: r.try_get("id")?,
                    user_id: UserId(r.try_get("user_id")?),
                    endpoint: r.try_get("endpoint")?,
                    p256dh: r.try_get("p256dh")?,
                    auth: r.try_get("auth")?,
                    created_at: r.try_get("created_at")?,
                })
            }
        }

        #[async_trait]
        impl NotifyStore for $Store {
            async fn notify_settings(&self, user: UserId) -> StoreResult<Vec<NotifySettingRecord>> {
                let rows = sqlx::query(concat!(
                    "SELECT ", setting_cols!(), " FROM notification_settings WHERE user_id = $1 ORDER BY scope_id"
                ))
                .bind(user.0)
                .fetch_all(self.r())
                .await?;
                Ok(rows.iter().map(Self::setting_from).collect::<Result<_, _>>()?)
            }

            async fn notify_settings_of(&self, users: &[UserId], scopes: &[i64]) -> StoreResult<Vec<NotifySettingRecord>> {
                let mut out = Vec::new();
                if scopes.is_empty() {
                    return Ok(out);
                }
                let scopes = join_ids(scopes.iter().copied());
                for chunk in users.chunks(CHUNK) {
                    let sql = format!(
                        concat!("SELECT ", setting_cols!(), " FROM notification_settings WHERE user_id IN ({}) AND scope_id IN ({})"),
                        join_ids(chunk.iter().map(|u| u.0)),
                        scopes
                    );
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(self.r()).await?;
                    for r in &rows {
                        out.push(Self::setting_from(r)?);
                    }
                }
                Ok(out)
            }

            async fn put_notify_setting(&self, s: &NotifySettingRecord) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO notification_settings (user_id, scope_id, scope, level, muted_until, suppress_everyone, \
                     push_previews, email_digest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (user_id, scope_id) DO UPDATE SET scope = excluded.scope, level = excluded.level, \
                     muted_until = excluded.muted_until, suppress_everyone = excluded.suppress_everyone, \
                     push_previews = excluded.push_previews, email_digest = excluded.email_digest",
                )
                .bind(s.user_id.0)
                .bind(s.scope_id)
                .bind(&s.scope)
                .bind(&s.level)
                .bind(s.muted_until)
                .bind(s.suppress_everyone)
                .bind(s.push_previews)
                .bind(s.email_digest)
                .execute(self.w())
                .await?;
                Ok(())
            }

            async fn delete_notify_setting(&self, user: UserId, scope_id: i64) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM notification_settings WHERE user_id = $1 AND scope_id = $2")
                    .bind(user.0)
                    .bind(scope_id)
                    .execute(self.w())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn notify_all_subscribers(&self, community: Option<CommunityId>, channel: ChannelId) -> StoreResult<Vec<UserId>> {
                // -1 matches no community (DMs): only the channel's own rows.
                let c = community.map_or(-1, |c| c.0);
                let ids: Vec<i64> = sqlx::query_scalar(
                    "SELECT DISTINCT s.user_id FROM notification_settings s WHERE s.level = 'all' AND \
                     (s.scope_id = $2 OR s.scope_id = $1 OR (s.scope_id = 0 AND EXISTS \
                     (SELECT 1 FROM members m WHERE m.community_id = $1 AND m.user_id = s.user_id)))",
                )
                .bind(c)
                .bind(channel.0)
                .fetch_all(self.r())
                .await?;
                Ok(ids.into_iter().map(UserId).collect())
            }

            async fn users_blocking(&self, user: UserId) -> StoreResult<Vec<UserId>> {
                let ids: Vec<i64> = sqlx::query_scalar("SELECT user_id FROM user_blocks WHERE blocked_id = $1")
                    .bind(user.0)
                    .fetch_all(self.r())
                    .await?;
                Ok(ids.into_iter().map(UserId).collect())
            }

            async fn add_notifications(
                &self,
                message: MessageId,
                channel: ChannelId,
                community: Option<CommunityId>,
                created_at: i64,
                rows: &[NewNotification],
            ) -> StoreResult<Vec<NotificationRecord>> {
                let mut out = Vec::new();
                let mut tx = self.w().begin().await?;
                for chunk in rows.chunks(CHUNK) {
                    // VALUES rows name their columns column1.. in both engines.
                    let mut sql = String::from(
                        // Created read when the user has read the channel past the
                        // message already (their client acked it before this ran).
                        "INSERT INTO notifications (id, user_id, message_id, channel_id, community_id, kind, created_at, read_at) \
                         SELECT column1, column2, $1, $2, $3, column3, $4, (SELECT $4 FROM read_states rs \
                         WHERE rs.user_id = v.column2 AND rs.channel_id = $2 AND rs.last_read_id >= $1) FROM (VALUES ",
                    );
                    for i in 0..chunk.len() {
                        let p = 5 + i * 3;
                        if i > 0 {
                            sql.push_str(", ");
                        }
                        sql.push_str(&format!("(CAST(${} AS BIGINT), CAST(${} AS BIGINT), CAST(${} AS TEXT))", p, p + 1, p + 2));
                    }
                    sql.push_str(concat!(
                        ") AS v WHERE EXISTS (SELECT 1 FROM messages WHERE id = $1) \
                         ON CONFLICT (user_id, message_id) DO NOTHING RETURNING ",
                        notification_cols!()
                    ));
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(message.0)
                        .bind(channel.0)
                        .bind(community.map(|c| c.0))
                        .bind(created_at);
                    for n in chunk {
                        q = q.bind(n.id).bind(n.user_id.0).bind(&n.kind);
                    }
                    let added = q.fetch_all(&mut *tx).await?;
                    for r in &added {
                        out.push(Self::notification_from(r)?);
                    }
                }
                tx.commit().await?;
                Ok(out)
            }

            async fn notifications(&self, user: UserId, before: Option<i64>, limit: u32, unread_only: bool) -> StoreResult<Vec<NotificationRecord>> {
                let rows = sqlx::query(concat!(
                    "SELECT ", notification_cols!(), " FROM notifications WHERE user_id = $1 AND id < $2 \
                     AND ($3 = 0 OR read_at IS NULL) ORDER BY id DESC LIMIT $4"
                ))
                .bind(user.0)
                .bind(before.unwrap_or(i64::MAX))
                .bind(i64::from(unread_only))
                .bind(i64::from(limit))
                .fetch_all(self.r())
                .await?;
                Ok(rows.iter().map(Self::notification_from).collect::<Result<_, _>>()?)
            }

            async fn unread_notification_channels(&self, user: UserId) -> StoreResult<Vec<(ChannelId, Option<CommunityId>, i64)>> {
                let rows = sqlx::query(
                    "SELECT channel_id, MAX(community_id) AS community_id, COUNT(*) AS n FROM notifications \
                     WHERE user_id = $1 AND read_at IS NULL GROUP BY channel_id",
                )
                .bind(user.0)
                .fetch_all(self.r())
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    out.push((
                        ChannelId(r.try_get("channel_id")?),
                        r.try_get::<Option<i64>, _>("community_id")?.map(CommunityId),
                        r.try_get::<i64, _>("n")?,
                    ));
                }
                Ok(out)
            }

            async fn unread_notification_counts(&self, users: &[UserId]) -> StoreResult<Vec<(UserId, i64)>> {
                let mut out = Vec::with_capacity(users.len());
                for chunk in users.chunks(CHUNK) {
                    let sql = format!(
                        "SELECT user_id, COUNT(*) AS n FROM notifications WHERE read_at IS NULL AND user_id IN ({}) \
                         GROUP BY user_id",
                        join_ids(chunk.iter().map(|u| u.0))
                    );
                    for r in &sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(self.r()).await? {
                        out.push((UserId(r.try_get("user_id")?), r.try_get::<i64, _>("n")?));
                    }
                }
                Ok(out)
            }

            async fn read_notification(&self, user: UserId, id: i64, now: i64) -> StoreResult<Option<NotificationRecord>> {
                sqlx::query("UPDATE notifications SET read_at = $3 WHERE id = $1 AND user_id = $2 AND read_at IS NULL")
                    .bind(id)
                    .bind(user.0)
                    .bind(now)
                    .execute(self.w())
                    .await?;
                let row = sqlx::query(concat!("SELECT ", notification_cols!(), " FROM notifications WHERE id = $1 AND user_id = $2"))
                    .bind(id)
                    .bind(user.0)
                    .fetch_optional(self.w())
                    .await?;
                Ok(row.map(|r| Self::notification_from(&r)).transpose()?)
            }

            async fn read_notifications(
                &self,
                user: UserId,
                channel: Option<ChannelId>,
                up_to: Option<MessageId>,
                now: i64,
            ) -> StoreResult<Vec<i64>> {
                let ids: Vec<i64> = sqlx::query_scalar(
                    "UPDATE notifications SET read_at = $4 WHERE user_id = $1 AND read_at IS NULL \
                     AND ($2 = 0 OR channel_id = $2) AND message_id <= $3 RETURNING id",
                )
                .bind(user.0)
                .bind(channel.map_or(0, |c| c.0))
                .bind(up_to.map_or(i64::MAX, |m| m.0))
                .bind(now)
                .fetch_all(self.w())
                .await?;
                Ok(ids)
            }

            async fn digest_due(&self, before: i64, limit: u32) -> StoreResult<Vec<UserId>> {
                let ids: Vec<i64> = sqlx::query_scalar(
                    "SELECT DISTINCT user_id FROM notifications WHERE read_at IS NULL AND emailed_at IS NULL \
                     AND created_at <= $1 AND kind <> 'message' LIMIT $2",
                )
                .bind(before)
                .bind(i64::from(limit))
                .fetch_all(self.r())
                .await?;
                Ok(ids.into_iter().map(UserId).collect())
            }

            async fn undigested(&self, user: UserId, before: i64, limit: u32) -> StoreResult<Vec<NotificationRecord>> {
                let rows = sqlx::query(concat!(
                    "SELECT ", notification_cols!(), " FROM notifications WHERE user_id = $1 AND read_at IS NULL \
                     AND emailed_at IS NULL AND created_at <= $2 AND kind <> 'message' ORDER BY id LIMIT $3"
                ))
                .bind(user.0)
                .bind(before)
                .bind(i64::from(limit))
                .fetch_all(self.r())
                .await?;
                Ok(rows.iter().map(Self::notification_from).collect::<Result<_, _>>()?)
            }

            async fn mark_notifications_emailed(&self, user: UserId, ids: &[i64], now: i64) -> StoreResult<()> {
                for chunk in ids.chunks(CHUNK) {
                    let sql = format!(
                        "UPDATE notifications SET emailed_at = $2 WHERE user_id = $1 AND id IN ({})",
                        join_ids(chunk.iter().copied())
                    );
                    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user.0).bind(now).execute(self.w()).await?;
                }
                Ok(())
            }

            async fn put_push_subscription(&self, s: &PushSubscriptionRecord, keep: u32) -> StoreResult<(PushSubscriptionRecord, bool)> {
                let mut tx = self.w().begin().await?;
                let existing = sqlx::query(concat!("SELECT ", subscription_cols!(), " FROM push_subscriptions WHERE endpoint = $1"))
                    .bind(&s.endpoint)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| Self::subscription_from(&r))
                    .transpose()?;
                if let Some(e) = existing
                    && e.user_id == s.user_id
                    && e.p256dh == s.p256dh
                    && e.auth == s.auth
                {
                    tx.commit().await?;
                    return Ok((e, false));
                }
                // The browser's endpoint, new keys or a new owner: the old row's
                // queued pushes (for the old keys) go with it.
                sqlx::query("DELETE FROM push_subscriptions WHERE endpoint = $1")
                    .bind(&s.endpoint)
                    .execute(&mut *tx)
                    .await?;
                let row = sqlx::query(concat!(
                    "INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING ", subscription_cols!()
                ))
                .bind(s.id)
                .bind(s.user_id.0)
                .bind(&s.endpoint)
                .bind(&s.p256dh)
                .bind(&s.auth)
                .bind(s.created_at)
                .fetch_one(&mut *tx)
                .await?;
                sqlx::query(
                    "DELETE FROM push_subscriptions WHERE user_id = $1 AND id NOT IN \
                     (SELECT id FROM push_subscriptions WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2)",
                )
                .bind(s.user_id.0)
                .bind(i64::from(keep.max(1)))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok((Self::subscription_from(&row)?, true))
            }

            async fn push_subscriptions(&self, user: UserId) -> StoreResult<Vec<PushSubscriptionRecord>> {
                let rows = sqlx::query(concat!(
                    "SELECT ", subscription_cols!(), " FROM push_subscriptions WHERE user_id = $1 ORDER BY created_at, id"
                ))
                .bind(user.0)
                .fetch_all(self.r())
                .await?;
                Ok(rows.iter().map(Self::subscription_from).collect::<Result<_, _>>()?)
            }

            async fn push_subscriptions_of(&self, users: &[UserId]) -> StoreResult<Vec<PushSubscriptionRecord>> {
                let mut out = Vec::new();
                for chunk in users.chunks(CHUNK) {
                    let sql = format!(
                        concat!("SELECT ", subscription_cols!(), " FROM push_subscriptions WHERE user_id IN ({})"),
                        join_ids(chunk.iter().map(|u| u.0))
                    );
                    for r in &sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(self.r()).await? {
                        out.push(Self::subscription_from(r)?);
                    }
                }
                Ok(out)
            }

            async fn delete_push_subscription(&self, user: Option<UserId>, id: i64) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM push_subscriptions WHERE id = $1 AND ($2 = 0 OR user_id = $2)")
                    .bind(id)
                    .bind(user.map_or(0, |u| u.0))
                    .execute(self.w())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn enqueue_push(&self, id: i64, subscription: i64, topic: &str, payload: &str, now: i64) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO push_outbox (id, subscription_id, topic, payload, version, attempts, next_attempt_at, created_at) \
                     SELECT $1, $2, $3, $4, 0, 0, $5, $5 WHERE EXISTS (SELECT 1 FROM push_subscriptions WHERE id = $2) \
                     ON CONFLICT (subscription_id, topic) DO UPDATE SET payload = excluded.payload, \
                     version = push_outbox.version + 1, attempts = 0, next_attempt_at = excluded.next_attempt_at",
                )
                .bind(id)
                .bind(subscription)
                .bind(topic)
                .bind(payload)
                .bind(now)
                .execute(self.w())
                .await?;
                Ok(())
            }

            async fn claim_push(&self, now: i64, lease_ms: i64, limit: u32) -> StoreResult<Vec<PushRecord>> {
                let due: Vec<i64> = sqlx::query_scalar(
                    "SELECT id FROM push_outbox WHERE (claimed_until IS NULL AND next_attempt_at <= $1) \
                     OR claimed_until < $1 ORDER BY next_attempt_at, id LIMIT $2",
                )
                .bind(now)
                .bind(i64::from(limit.clamp(1, 100)))
                .fetch_all(self.r())
                .await?;
                let mut out = Vec::with_capacity(due.len());
                for id in due {
                    // Conditional on still being due: one of two racing workers wins.
                    let row = sqlx::query(
                        "UPDATE push_outbox SET claimed_until = $2, attempts = attempts + 1 WHERE id = $1 AND \
                         ((claimed_until IS NULL AND next_attempt_at <= $3) OR claimed_until < $3) \
                         RETURNING id, subscription_id, topic, payload, version, attempts, created_at",
                    )
                    .bind(id)
                    .bind(now + lease_ms)
                    .bind(now)
                    .fetch_optional(self.w())
                    .await?;
                    let Some(r) = row else { continue };
                    let sub = sqlx::query(concat!("SELECT ", subscription_cols!(), " FROM push_subscriptions WHERE id = $1"))
                        .bind(r.try_get::<i64, _>("subscription_id")?)
                        .fetch_optional(self.w())
                        .await?;
                    let Some(sub) = sub else { continue };
                    out.push(PushRecord {
                        id: r.try_get("id")?,
                        subscription: Self::subscription_from(&sub)?,
                        topic: r.try_get("topic")?,
                        payload: r.try_get("payload")?,
                        version: r.try_get("version")?,
                        attempts: r.try_get("attempts")?,
                        created_at: r.try_get("created_at")?,
                    });
                }
                Ok(out)
            }

            async fn push_done(&self, id: i64, version: i64) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM push_outbox WHERE id = $1 AND version = $2")
                    .bind(id)
                    .bind(version)
                    .execute(self.w())
                    .await?;
                if done.rows_affected() == 0 {
                    // Replaced while in flight: the newer payload is due.
                    sqlx::query("UPDATE push_outbox SET claimed_until = NULL WHERE id = $1")
                        .bind(id)
                        .execute(self.w())
                        .await?;
                }
                Ok(())
            }

            async fn push_retry(&self, id: i64, version: i64, next_at: i64) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE push_outbox SET claimed_until = NULL, \
                     next_attempt_at = CASE WHEN version = $2 THEN $3 ELSE next_attempt_at END WHERE id = $1",
                )
                .bind(id)
                .bind(version)
                .bind(next_at)
                .execute(self.w())
                .await?;
                Ok(())
            }

            async fn ensure_vapid_key(&self, private_key: &str, public_key: &str, now: i64) -> StoreResult<(String, String)> {
                sqlx::query(
                    "INSERT INTO vapid_keys (id, private_key, public_key, created_at) VALUES (1, $1, $2, $3) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(private_key)
                .bind(public_key)
                .bind(now)
                .execute(self.w())
                .await?;
                let r = sqlx::query("SELECT private_key, public_key FROM vapid_keys WHERE id = 1")
                    .fetch_one(self.w())
                    .await?;
                Ok((r.try_get("private_key")?, r.try_get("public_key")?))
            }
        }
    };
}

notify_impl!(SqliteStore, sqlx::sqlite::SqliteRow);
notify_impl!(PostgresStore, sqlx::postgres::PgRow);
