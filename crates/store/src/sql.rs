//! The one SQL implementation of [`Store`], stamped out for SQLite and Postgres.
//!
//! The SQL is written once in the dialect both engines share (`$N` parameters,
//! `ON CONFLICT`, `RETURNING`, `CASE`, `CAST(.. AS BIGINT)`), so a behaviour
//! difference between backends can only come from the engines themselves, and
//! the contract suite in `tests/` runs against both to catch it.
//!
//! SQLite allows one writer at a time. Instead of letting many connections
//! fight over the write lock (SQLite's busy handler sleeps in 1-100 ms steps,
//! which wrecks tail latency), writes go through a one-connection pool and
//! queue fairly in async code; reads use the wider pool. Postgres uses one pool
//! for both.

use async_trait::async_trait;
use hearth_types::{AttachmentId, ChannelId, CommunityId, MessageId, RoleId, SessionId, UserId};
use sqlx::Row;

use crate::migrate::{self, Migration};
use crate::model::*;
use crate::{Store, StoreError, StoreResult};

pub struct SqliteStore {
    read: sqlx::SqlitePool,
    write: sqlx::SqlitePool,
}

impl SqliteStore {
    pub(crate) fn new(read: sqlx::SqlitePool, write: sqlx::SqlitePool) -> Self {
        SqliteStore { read, write }
    }

    /// A file in this process: there while the process is.
    async fn reachable_now(&self) -> bool {
        true
    }
    pub(crate) fn r(&self) -> &sqlx::SqlitePool {
        &self.read
    }
    pub(crate) fn w(&self) -> &sqlx::SqlitePool {
        &self.write
    }
}

pub struct PostgresStore {
    pool: sqlx::PgPool,
}

impl PostgresStore {
    pub(crate) fn new(pool: sqlx::PgPool) -> Self {
        PostgresStore { pool }
    }

    /// A fresh connection with the pool's options (see `Store::reachable`).
    async fn reachable_now(&self) -> bool {
        use sqlx::Connection;
        let opts = self.pool.connect_options();
        let attempt = sqlx::PgConnection::connect_with(&opts);
        match tokio::time::timeout(std::time::Duration::from_secs(2), attempt).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                true
            }
            // Nothing listens, or the connection broke on the way.
            Ok(Err(sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_))) => false,
            // admin_shutdown, crash_shutdown, cannot_connect_now (starting or stopping).
            Ok(Err(sqlx::Error::Database(e))) => {
                !matches!(e.code().as_deref(), Some("57P01" | "57P02" | "57P03"))
            }
            // Anything else (too many clients, a slow answer) is a database that is there.
            Ok(Err(_)) | Err(_) => true,
        }
    }
    pub(crate) fn r(&self) -> &sqlx::PgPool {
        &self.pool
    }
    pub(crate) fn w(&self) -> &sqlx::PgPool {
        &self.pool
    }
}

pub(crate) fn join_ids(ids: impl IntoIterator<Item = i64>) -> String {
    let mut s = String::new();
    for id in ids {
        if !s.is_empty() {
            s.push(',');
        }
        s.push_str(&id.to_string());
    }
    s
}

fn split_ids(s: &str) -> Vec<i64> {
    s.split(',').filter_map(|p| p.parse().ok()).collect()
}

/// The kid after the newest: `k1` on a new database.
fn next_kid(keys: &[SigningKeyRecord]) -> String {
    format!(
        "k{}",
        keys.iter().map(SigningKeyRecord::seq).max().unwrap_or(0) + 1
    )
}

/// A LIKE pattern for "starts with `q`", its wildcards escaped (with
/// `ESCAPE '\\'` in the query).
fn like_prefix(q: &str) -> String {
    let mut out = String::with_capacity(q.len() + 1);
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

fn limit(l: u32) -> i64 {
    i64::from(l.clamp(1, 1000))
}

macro_rules! user_cols {
    () => {
        "u.id AS u_id, u.username AS u_username, u.email AS u_email, u.display_name AS u_display_name, \
         u.avatar_id AS u_avatar_id, u.password_hash AS u_password_hash, u.is_admin AS u_is_admin, \
         u.plan AS u_plan, u.totp_secret AS u_totp_secret, u.allow_dms_from AS u_allow_dms_from, \
         u.created_at AS u_created_at, u.email_verified_at AS u_email_verified_at, \
         u.email_bounced_at AS u_email_bounced_at"
    };
}

macro_rules! message_select {
    () => {
        concat!(
            "SELECT m.id, m.channel_id, m.content, m.edited_at, m.reply_to_id, m.mention_users, \
             m.mention_roles, m.mention_everyone, m.attachment_ids, m.pinned, m.nonce, ",
            user_cols!(),
            " FROM messages m JOIN users u ON u.id = m.author_id "
        )
    };
}

macro_rules! attachment_select {
    () => {
        "SELECT id, uploader_id, channel_id, purpose, filename, declared_type, content_type, size, sha256, \
         blob_key, width, height, blurhash, preview_key, undecodable, message_id, created_at, duration_ms FROM attachments "
    };
}

macro_rules! member_select {
    () => {
        concat!(
            "SELECT mb.community_id, mb.nickname, mb.joined_at, mb.timed_out_until, ",
            user_cols!(),
            " FROM members mb JOIN users u ON u.id = mb.user_id "
        )
    };
}

/// `last_message_id` is read from the `(channel_id, id)` index rather than
/// stored, so a send never has to update the channel row.
macro_rules! channel_select {
    () => {
        "SELECT c.id, c.community_id, c.kind, c.name, c.topic, c.position, c.parent_id, c.owner_id, c.dm_key, \
         (SELECT MAX(m.id) FROM messages m WHERE m.channel_id = c.id) AS last_message_id, c.created_at, \
         c.user_limit, c.slowmode_secs, c.locked FROM channels c "
    };
}

macro_rules! sql_impl {
    ($Store:ident, $Db:ty, $Row:ty, $backend:literal, $migrations:expr) => {
        impl $Store {
            fn attachment_row(r: &$Row) -> StoreResult<AttachmentRecord> {
                Ok(AttachmentRecord {
                    id: AttachmentId(r.try_get("id")?),
                    uploader_id: UserId(r.try_get("uploader_id")?),
                    channel_id: r.try_get::<Option<i64>, _>("channel_id")?.map(ChannelId),
                    purpose: r.try_get("purpose")?,
                    filename: r.try_get("filename")?,
                    declared_type: r.try_get("declared_type")?,
                    content_type: r.try_get("content_type")?,
                    size: r.try_get("size")?,
                    sha256: r.try_get("sha256")?,
                    blob_key: r.try_get("blob_key")?,
                    width: r.try_get("width")?,
                    height: r.try_get("height")?,
                    blurhash: r.try_get("blurhash")?,
                    preview_key: r.try_get("preview_key")?,
                    undecodable: r.try_get("undecodable")?,
                    message_id: r.try_get::<Option<i64>, _>("message_id")?.map(MessageId),
                    created_at: r.try_get("created_at")?,
                    duration_ms: r.try_get("duration_ms")?,
                })
            }

            fn user_from(r: &$Row) -> Result<UserRecord, sqlx::Error> {
                Ok(UserRecord {
                    id: UserId(r.try_get("u_id")?),
                    username: r.try_get("u_username")?,
                    email: r.try_get("u_email")?,
                    display_name: r.try_get("u_display_name")?,
                    avatar_id: r.try_get::<Option<i64>, _>("u_avatar_id")?.map(AttachmentId),
                    password_hash: r.try_get("u_password_hash")?,
                    is_admin: r.try_get("u_is_admin")?,
                    plan: r.try_get("u_plan")?,
                    totp_secret: r.try_get("u_totp_secret")?,
                    // An unknown stored value (a newer binary's) reads as the strictest.
                    allow_dms_from: DmPolicy::parse(&r.try_get::<String, _>("u_allow_dms_from")?)
                        .unwrap_or(DmPolicy::Nobody),
                    created_at: r.try_get("u_created_at")?,
                    email_verified_at: r.try_get("u_email_verified_at")?,
                    email_bounced_at: r.try_get("u_email_bounced_at")?,
                })
            }

            /// Whether `sql` (a `SELECT ... WHERE ... $1 ... $2`) finds a row.
            async fn exists_pair(&self, sql: &'static str, a: i64, b: i64) -> StoreResult<bool> {
                let hit: Option<i64> = sqlx::query_scalar(sql)
                    .bind(a)
                    .bind(b)
                    .fetch_optional(self.r())
                    .await?;
                Ok(hit.is_some())
            }

            fn journal_from(r: &$Row) -> Result<JournalRecord, sqlx::Error> {
                Ok(JournalRecord {
                    position: r.try_get("position")?,
                    id: r.try_get("id")?,
                    source: r.try_get("source")?,
                    ty: r.try_get("type")?,
                    subject: r.try_get("subject")?,
                    time: r.try_get("time")?,
                    content_type: r.try_get("content_type")?,
                    data: r.try_get("data")?,
                })
            }

            fn session_from(r: &$Row) -> Result<SessionRecord, sqlx::Error> {
                Ok(SessionRecord {
                    id: SessionId(r.try_get("id")?),
                    user_id: UserId(r.try_get("user_id")?),
                    user_agent: r.try_get("user_agent")?,
                    created_at: r.try_get("created_at")?,
                    last_seen_at: r.try_get("last_seen_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                })
            }

            fn audit_insert(e: &AuditRecord) -> sqlx::query::Query<'_, $Db, <$Db as sqlx::Database>::Arguments> {
                sqlx::query(
                    "INSERT INTO audit_log (id, community_id, actor_id, action, target_kind, target_id, reason, changes, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
                )
                .bind(e.id)
                .bind(e.community_id.map(|c| c.0))
                .bind(e.actor_id.map(|u| u.0))
                .bind(&e.action)
                .bind(&e.target_kind)
                .bind(e.target_id)
                .bind(&e.reason)
                .bind(&e.changes)
                .bind(e.created_at)
            }

            fn community_from(r: &$Row) -> Result<CommunityRecord, sqlx::Error> {
                Ok(CommunityRecord {
                    id: CommunityId(r.try_get("id")?),
                    name: r.try_get("name")?,
                    owner_id: UserId(r.try_get("owner_id")?),
                    icon_id: r.try_get::<Option<i64>, _>("icon_id")?.map(AttachmentId),
                    created_at: r.try_get("created_at")?,
                })
            }

            fn role_from(r: &$Row) -> Result<RoleRecord, sqlx::Error> {
                Ok(RoleRecord {
                    id: RoleId(r.try_get("id")?),
                    community_id: CommunityId(r.try_get("community_id")?),
                    name: r.try_get("name")?,
                    permissions: r.try_get("permissions")?,
                    color: r.try_get("color")?,
                    position: r.try_get("position")?,
                })
            }

            fn member_from(r: &$Row) -> Result<MemberRecord, sqlx::Error> {
                Ok(MemberRecord {
                    community_id: CommunityId(r.try_get("community_id")?),
                    user: Self::user_from(r)?,
                    role_ids: Vec::new(),
                    nickname: r.try_get("nickname")?,
                    joined_at: r.try_get("joined_at")?,
                    timed_out_until: r.try_get("timed_out_until")?,
                })
            }

            fn invite_from(r: &$Row) -> Result<InviteRecord, sqlx::Error> {
                Ok(InviteRecord {
                    code: r.try_get("code")?,
                    community_id: CommunityId(r.try_get("community_id")?),
                    inviter_id: UserId(r.try_get("inviter_id")?),
                    uses: r.try_get("uses")?,
                    max_uses: r.try_get("max_uses")?,
                    expires_at: r.try_get("expires_at")?,
                    created_at: r.try_get("created_at")?,
                })
            }

            fn ban_from(r: &$Row) -> Result<BanRecord, sqlx::Error> {
                Ok(BanRecord {
                    community_id: CommunityId(r.try_get("community_id")?),
                    user_id: UserId(r.try_get("user_id")?),
                    reason: r.try_get("reason")?,
                    moderator_id: UserId(r.try_get("moderator_id")?),
                    created_at: r.try_get("created_at")?,
                })
            }

            fn channel_from(r: &$Row) -> Result<ChannelRecord, sqlx::Error> {
                let kind: String = r.try_get("kind")?;
                Ok(ChannelRecord {
                    id: ChannelId(r.try_get("id")?),
                    community_id: r.try_get::<Option<i64>, _>("community_id")?.map(CommunityId),
                    kind: ChannelKind::parse(&kind).ok_or_else(|| {
                        sqlx::Error::Decode(format!("unknown channel kind {kind:?}").into())
                    })?,
                    name: r.try_get("name")?,
                    topic: r.try_get("topic")?,
                    position: r.try_get("position")?,
                    parent_id: r.try_get::<Option<i64>, _>("parent_id")?.map(ChannelId),
                    owner_id: r.try_get::<Option<i64>, _>("owner_id")?.map(UserId),
                    dm_key: r.try_get("dm_key")?,
                    last_message_id: r.try_get::<Option<i64>, _>("last_message_id")?.map(MessageId),
                    created_at: r.try_get("created_at")?,
                    settings: ChannelSettings {
                        user_limit: r.try_get("user_limit")?,
                        slowmode_secs: r.try_get("slowmode_secs")?,
                        locked: r.try_get("locked")?,
                    },
                })
            }

            fn overwrite_from(r: &$Row) -> Result<OverwriteRecord, sqlx::Error> {
                let kind: String = r.try_get("target_type")?;
                Ok(OverwriteRecord {
                    channel_id: ChannelId(r.try_get("channel_id")?),
                    target_id: r.try_get("target_id")?,
                    target_kind: if kind == "role" {
                        OverwriteTargetKind::Role
                    } else {
                        OverwriteTargetKind::Member
                    },
                    allow: r.try_get("allow_bits")?,
                    deny: r.try_get("deny_bits")?,
                })
            }

            fn message_from(r: &$Row) -> Result<MessageRecord, sqlx::Error> {
                let users: String = r.try_get("mention_users")?;
                let roles: String = r.try_get("mention_roles")?;
                let atts: String = r.try_get("attachment_ids")?;
                Ok(MessageRecord {
                    id: MessageId(r.try_get("id")?),
                    channel_id: ChannelId(r.try_get("channel_id")?),
                    author: Self::user_from(r)?,
                    content: r.try_get("content")?,
                    edited_at: r.try_get("edited_at")?,
                    reply_to_id: r.try_get::<Option<i64>, _>("reply_to_id")?.map(MessageId),
                    mentions: Mentions {
                        users: split_ids(&users).into_iter().map(UserId).collect(),
                        roles: split_ids(&roles).into_iter().map(RoleId).collect(),
                        everyone: r.try_get("mention_everyone")?,
                    },
                    attachment_ids: split_ids(&atts).into_iter().map(AttachmentId).collect(),
                    pinned: r.try_get("pinned")?,
                    nonce: r.try_get("nonce")?,
                })
            }

            fn report_from(r: &$Row) -> Result<ReportRecord, sqlx::Error> {
                Ok(ReportRecord {
                    id: r.try_get("id")?,
                    community_id: r.try_get::<Option<i64>, _>("community_id")?.map(CommunityId),
                    reporter_id: UserId(r.try_get("reporter_id")?),
                    state: r.try_get("state")?,
                    report: r.try_get("report")?,
                    version: r.try_get("version")?,
                    created_at: r.try_get("created_at")?,
                })
            }

            fn read_state_from(r: &$Row) -> Result<ReadStateRecord, sqlx::Error> {
                Ok(ReadStateRecord {
                    channel_id: ChannelId(r.try_get("channel_id")?),
                    last_read_id: MessageId(r.try_get("last_read_id")?),
                    mention_count: r.try_get("mention_count")?,
                })
            }

            async fn insert_role<'c, E>(e: E, r: &RoleRecord) -> Result<(), sqlx::Error>
            where
                E: sqlx::Executor<'c, Database = $Db>,
            {
                sqlx::query(
                    "INSERT INTO roles (id, community_id, name, permissions, color, position) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(r.id.0)
                .bind(r.community_id.0)
                .bind(&r.name)
                .bind(r.permissions)
                .bind(r.color)
                .bind(r.position)
                .execute(e)
                .await?;
                Ok(())
            }

            async fn insert_channel<'c, E>(e: E, c: &ChannelRecord) -> Result<(), sqlx::Error>
            where
                E: sqlx::Executor<'c, Database = $Db>,
            {
                sqlx::query(
                    "INSERT INTO channels (id, community_id, kind, name, topic, position, parent_id, owner_id, dm_key, \
                     created_at, user_limit, slowmode_secs, locked) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                )
                .bind(c.id.0)
                .bind(c.community_id.map(|x| x.0))
                .bind(c.kind.as_str())
                .bind(&c.name)
                .bind(&c.topic)
                .bind(c.position)
                .bind(c.parent_id.map(|x| x.0))
                .bind(c.owner_id.map(|x| x.0))
                .bind(&c.dm_key)
                .bind(c.created_at)
                .bind(c.settings.user_limit)
                .bind(c.settings.slowmode_secs)
                .bind(c.settings.locked)
                .execute(e)
                .await?;
                Ok(())
            }

            /// Fills `role_ids` of a page of members ordered by user id with one range query.
            async fn attach_roles(&self, members: &mut [MemberRecord]) -> StoreResult<()> {
                let (Some(first), Some(last)) = (members.first(), members.last()) else {
                    return Ok(());
                };
                let rows = sqlx::query(
                    "SELECT mr.user_id, mr.role_id FROM member_roles mr JOIN roles ro ON ro.id = mr.role_id \
                     WHERE mr.community_id = $1 AND mr.user_id >= $2 AND mr.user_id <= $3 \
                     ORDER BY ro.position DESC, mr.role_id",
                )
                .bind(first.community_id.0)
                .bind(first.user.id.0)
                .bind(last.user.id.0)
                .fetch_all(self.r())
                .await?;
                for row in rows {
                    let user: i64 = row.try_get("user_id")?;
                    let role: i64 = row.try_get("role_id")?;
                    if let Some(m) = members.iter_mut().find(|m| m.user.id.0 == user) {
                        m.role_ids.push(RoleId(role));
                    }
                }
                Ok(())
            }

            /// False if a key with that kid exists already.
            async fn insert_signing_key(&self, kid: &str, secret: &[u8], now: i64) -> StoreResult<bool> {
                let done = sqlx::query(
                    "INSERT INTO signing_keys (kid, secret, created_at) VALUES ($1, $2, $3) ON CONFLICT (kid) DO NOTHING",
                )
                .bind(kid)
                .bind(secret)
                .bind(now)
                .execute(self.w())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            /// Applies what `list` has and the database lacks, on `conn`. The
            /// caller holds the migration lock on it (see `migrate_locked`), so
            /// what this reads as applied cannot change underneath.
            async fn apply_migrations_on(
                conn: &mut <$Db as sqlx::Database>::Connection,
                list: &[Migration],
            ) -> StoreResult<()> {
                sqlx::query(migrate::CREATE_TABLE).execute(&mut *conn).await?;
                let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
                    .fetch_all(&mut *conn)
                    .await?;
                let known = list.iter().map(|m| m.version).max().unwrap_or(0);
                if let Some(newer) = applied.iter().find(|v| **v > known) {
                    return Err(StoreError::Migration(format!(
                        "the database has schema version {newer}, newer than this binary knows ({known})"
                    )));
                }
                for m in list.iter().filter(|m| !applied.contains(&m.version)) {
                    // A transaction of its own (a savepoint inside SQLite's
                    // outer one), so a failed migration leaves nothing behind.
                    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                    sqlx::raw_sql(m.sql)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| StoreError::Migration(format!("{} {}: {e}", m.version, m.name)))?;
                    sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
                        .bind(m.version)
                        .bind(m.name)
                        .bind(hearth_types::now_ms())
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    tracing::info!(version = m.version, name = m.name, backend = $backend, "applied migration");
                }
                Ok(())
            }
        }

        #[async_trait]
        impl Store for $Store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn ping(&self) -> StoreResult<()> {
                sqlx::query("SELECT 1").execute(self.r()).await?;
                Ok(())
            }

            async fn reachable(&self) -> bool {
                self.reachable_now().await
            }

            async fn migrate(&self) -> StoreResult<()> {
                self.migrate_locked($migrations).await
            }

            // ---- node leases ----

            async fn lease_node(&self, holder: &str, now: i64, ttl_ms: i64) -> StoreResult<Option<u16>> {
                for _ in 0..8 {
                    let mut tx = self.w().begin().await?;
                    sqlx::query("DELETE FROM node_leases WHERE expires_at < $1")
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    let taken: Vec<i64> = sqlx::query_scalar("SELECT node_id FROM node_leases ORDER BY node_id")
                        .fetch_all(&mut *tx)
                        .await?;
                    let Some(free) = (0..=i64::from(hearth_types::MAX_NODE_ID)).find(|n| !taken.contains(n)) else {
                        return Ok(None);
                    };
                    let done = sqlx::query(
                        "INSERT INTO node_leases (node_id, holder, expires_at) VALUES ($1, $2, $3) ON CONFLICT (node_id) DO NOTHING",
                    )
                    .bind(free)
                    .bind(holder)
                    .bind(now + ttl_ms)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    if done.rows_affected() == 1 {
                        return Ok(Some(free as u16));
                    }
                }
                Ok(None)
            }

            async fn renew_node(&self, node: u16, holder: &str, now: i64, ttl_ms: i64) -> StoreResult<bool> {
                let done = sqlx::query("UPDATE node_leases SET expires_at = $3 WHERE node_id = $1 AND holder = $2")
                    .bind(i64::from(node))
                    .bind(holder)
                    .bind(now + ttl_ms)
                    .execute(self.w())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn release_node(&self, node: u16, holder: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM node_leases WHERE node_id = $1 AND holder = $2")
                    .bind(i64::from(node))
                    .bind(holder)
                    .execute(self.w())
                    .await?;
                Ok(())
            }

            // ---- signing keys ----

            async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
                let rows = sqlx::query("SELECT kid, secret, created_at, retired_at FROM signing_keys")
                    .fetch_all(self.r())
                    .await?;
                let mut keys = rows
                    .iter()
                    .map(|r| -> Result<SigningKeyRecord, sqlx::Error> {
                        Ok(SigningKeyRecord {
                            kid: r.try_get("kid")?,
                            secret: r.try_get("secret")?,
                            created_at: r.try_get("created_at")?,
                            retired_at: r.try_get("retired_at")?,
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                keys.sort_by(|a, b| a.seq().cmp(&b.seq()).then_with(|| a.kid.cmp(&b.kid)));
                Ok(keys)
            }

            async fn ensure_signing_key(&self, secret: &[u8], now: i64) -> StoreResult<Vec<SigningKeyRecord>> {
                for _ in 0..8 {
                    let keys = self.signing_keys().await?;
                    if keys.iter().any(|k| k.retired_at.is_none()) {
                        return Ok(keys);
                    }
                    // Whoever inserts this kid first wins; the others' inserts
                    // do nothing and the next round reads the winner's key.
                    self.insert_signing_key(&next_kid(&keys), secret, now).await?;
                }
                Err(StoreError::Other("could not store a signing key".into()))
            }

            async fn add_signing_key(&self, secret: &[u8], now: i64) -> StoreResult<SigningKeyRecord> {
                for _ in 0..8 {
                    let kid = next_kid(&self.signing_keys().await?);
                    if self.insert_signing_key(&kid, secret, now).await? {
                        return Ok(SigningKeyRecord { kid, secret: secret.to_vec(), created_at: now, retired_at: None });
                    }
                }
                Err(StoreError::Other("could not store a signing key".into()))
            }

            async fn retire_signing_key(&self, kid: &str, now: i64) -> StoreResult<bool> {
                let done = sqlx::query("UPDATE signing_keys SET retired_at = $2 WHERE kid = $1 AND retired_at IS NULL")
                    .bind(kid)
                    .bind(now)
                    .execute(self.w())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            // ---- users ----

            async fn create_user(&self, u: &UserRecord) -> StoreResult<()> {
                let res = sqlx::query(
                    "INSERT INTO users (id, username, username_lower, email, email_lower, display_name, avatar_id, \
                     password_hash, is_admin, plan, totp_secret, created_at, allow_dms_from) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                )
                .bind(u.id.0)
                .bind(&u.username)
                .bind(u.username.to_lowercase())
                .bind(&u.email)
                .bind(u.email.as_ref().map(|e| e.to_lowercase()))
                .bind(&u.display_name)
                .bind(u.avatar_id.map(|a| a.0))
                .bind(&u.password_hash)
                .bind(u.is_admin)
                .bind(&u.plan)
                .bind(&u.totp_secret)
                .bind(u.created_at)
                .bind(u.allow_dms_from.as_str())
                .execute(self.w())
                .await;
                match res.map_err(StoreError::from) {
                    Err(StoreError::Conflict(what)) if what.contains("email") => Err(StoreError::Conflict("email".into())),
                    Err(StoreError::Conflict(_)) => Err(StoreError::Conflict("username".into())),
                    other => other.map(|_| ()),
                }
            }

            async fn user(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
                let row = sqlx::query(concat!("SELECT ", user_cols!(), " FROM users u WHERE u.id = $1"))
                    .bind(id.0)
                    .fetch_optional(self.r())
                    .await?;
                Ok(row.map(|r| Self::user_from(&r)).transpose()?)
            }

            async fn user_by_login(&self, login: &str) -> StoreResult<Option<UserRecord>> {
                let row = sqlx::query(concat!(
                    "SELECT ", user_cols!(), " FROM users u WHERE u.username_lower = $1 OR u.email_lower = $1"
                ))
                .bind(login.to_lowercase())
                .fetch_optional(self.r())
                .await?;
                Ok(row.map(|r| Self::user_from(&r)).transpose()?)
            }

            async fn update_user(&self, id: UserId, p: &UserPatch) -> StoreResult<Option<UserRecord>> {
                sqlx::query(
                    "UPDATE users SET \
                     display_name = CASE WHEN $2 THEN $3 ELSE display_name END, \
                     avatar_id = CASE WHEN $4 THEN $5 ELSE avatar_id END, \
                     allow_dms_from = COALESCE($6, allow_dms_from) \
                     WHERE id = $1",
                )
                .bind(id.0)
                .bind(p.display_name.is_some())
                .bind(p.display_name.clone().flatten())
                .bind(p.avatar_id.is_some())
                .bind(p.avatar_id.flatten().map(|a| a.0))
                .bind(p.allow_dms_from.map(DmPolicy::as_str))
                .execute(self.w())
                .await?;
                self.user(id).await
            }

            async fn set_totp_secret(&self, id: UserId, secret: Option<&str>) -> StoreResult<bool> {
                let done = sqlx::query("UPDATE users SET totp_secret = $2 WHERE id = $1")
                    .bind(id.0)
                    .bind(secret)
                    .execute(self.w())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn set_password_hash(&self, id: UserId, hash: &str) -> StoreResult<bool> {
                let done = sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
                    .bind(id.0)
                    .bind(hash)
                    .execute(self.w())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn set_admin(&self, id: UserId, admin: bool) -> StoreResult<bool> {
                let done = sqlx::query("UPDATE users SET is_admin = $2 WHERE id = $1")
                    .bind(id.0)
                    .bind(admin)
                    .execute(self.w())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            // ---- sessions ----

            async fn create_session(&self, s: &SessionRecord, refresh_hash: &str) -> StoreResult<()> {
                let mut tx = self.w().begin().await?;
                sqlx::query(
                    "INSERT INTO sessions (id, user_id, user_agent, created_at, last_seen_at, revoked_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(s.id.0)
                .bind(s.user_id.0)
                .bind(&s.user_agent)
                .bind(s.created_at)
                .bind(s.last_seen_at)
                .bind(s.revoked_at)
                .execute(&mut *tx)
                .await?;
                sqlx::query("INSERT INTO refresh_tokens (hash, session_id, spent, created_at) VALUES ($1, $2, FALSE, $3)")
                    .bind(refresh_hash)
                    .bind(s.id.0)
                    .bind(s.created_at)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn session(&self, id: SessionId) -> StoreResult<Option<SessionRecord>> {
                let row = sqlx::query(
                    "SELECT id, user_id, user_agent, created_at, last_seen_at, revoked_at FROM sessions WHERE id = $1",
                )
                .bind(id.0)
                .fetch_optional(self.r())
                .await?;
                Ok(row.map(|r| Self::session_from(&r)).transpose()?)
            }

            async fn sessions_for_user(&self, user: UserId) -> StoreResult<Vec<SessionRecord>> {
                let rows = sqlx::query(
                    "SELECT id, user_id, user_agent, created_at, last_seen_at, revoked_at FROM sessions \
                     WHERE user_id = $1 AND revoked_at IS NULL ORDER BY id DESC",
                )
                .bind(user.0)
                .fetch_all(self.r())
                .await?;
                Ok(rows.iter().map(Self::session_from).collect::<Result<_, _>>()?)
            }

            async fn rotate_refresh(&self, old_hash: &str, new_hash: &str, now: i64) -> StoreResult<RefreshOutcome> {
                let mut tx = self.w().begin().await?;
                let spent: Option<i64> = sqlx::query_scalar(
                    "UPDATE refresh_tokens SET spent = TRUE WHERE hash = $1 AND spent = FALSE RETURNING session_id",
                )
                .bind(old_hash)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(session_id) = spent else {
                    // Unknown, or spent before: a spent one means the token leaked or
                    // raced; either way the session can no longer be trusted.
                    let prior: Option<i64> =
                        sqlx::query_scalar("SELECT session_id FROM refresh_tokens WHERE hash = $1")
                            .bind(old_hash)
                            .fetch_optional(&mut *tx)
                            .await?;
                    let Some(session_id) = prior else {
                        return Ok(RefreshOutcome::Invalid);
                    };
                    sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                        .bind(session_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    return Ok(RefreshOutcome::Reused(SessionId(session_id)));
                };
                let row = sqlx::query(
                    "UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND revoked_at IS NULL \
                     RETURNING id, user_id, user_agent, created_at, last_seen_at, revoked_at",
                )
                .bind(session_id)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else {
                    tx.commit().await?;
                    return Ok(RefreshOutcome::Invalid);
                };
                let session = Self::session_from(&row)?;
                sqlx::query("INSERT INTO refresh_tokens (hash, session_id, spent, created_at) VALUES ($1, $2, FALSE, $3)")
                    .bind(new_hash)
                    .bind(session_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(RefreshOutcome::Rotated(session))
            }

            async fn revoke_session(&self, id: SessionId, user: UserId, now: i64) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE sessions SET revoked_at = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
                )
                .bind(id.0)
                .bind(user.0)
                .bind(now)
                .execute(self.w())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn touch_session(&self, id: SessionId, now: i64) -> StoreResult<()> {
                sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id = $1")
                    .bind(id.0)
                    .bind(now)
                    .execute(self.w())
                    .await?;
                Ok(())
            }

            // ---- communities ----

            async fn create_community(
                &self,
                c: &CommunityRecord,
                everyone: &RoleRecord,
                first: &ChannelRecord,
            ) -> StoreResult<()> {
                let mut tx = self.w().begin().await?;
                sqlx::query("INSERT INTO communities (id, name, owner_id, icon_id, created_at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(c.id.0)
                    .bind(&c.name)
                    .bind(c.owner_id.0)
                    .bind(c.icon_id.map(|i| i.0))
                    .bind(c.created_at)
                    .execute(&mut *tx)
                    .await?;
                Self::insert_role(&mut *tx, everyone).await?;
                Self::insert_channel(&mut *tx, first).await?;
                sqlx::query("INSERT INTO members (community_id, user_id, nickname, joined_at, timed_out_until) VALUES ($1, $2, NULL, $3, NULL)")
                    .bind(c.id.0)
                    .bind(c.owner_id.0)
                    .bind(c.created_at)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn community(&self, id: CommunityId) -> StoreResult<Option<CommunityRecord>> {
                let row = sqlx::query("SELECT id, name, owner_id, icon_id, created_at FROM communities WHERE id = $1")
                    .bind(id.0)
                    .fetch_optional(self.r())
                    .await?;
                Ok(row.map(|r| Self::community_from(&r)).transpose()?)
            }

            async fn communities_for_user(&self, user: UserId) -> StoreResult<Vec<CommunityRecord>> {
                let rows = sqlx::query(
                    "SELECT c.id, c.name, c.owner_id, c.icon_id, c.created_at FROM communities c \
                     JOIN members mb ON mb.community_id = c.id WHERE mb.user_id = $1 ORDER BY mb.joined_at, c.id",
                )
                .bind(user.0)
                .fetch_all(self.r())
                .await?;
                Ok(rows.iter().map(Self::community_from).collect::<Result<_, _>>()?)
            }

            async fn update_community(
                &self,
                id: CommunityId,
                name: Option<&str>,
                icon: Option<Option<AttachmentId>>,
            ) -> StoreResult<Option<CommunityRecord>> {
                if name.is_some() || icon.is_some() {
                    sqlx::query(
                        "UPDATE communities SET name = COALESCE($2, name), \
                         icon_id = CASE WHEN $3 THEN $4 ELSE icon_id END WHERE id = $1",
                    )
                    .bind(id.0)
                    .bind(name)
                    .bind(icon.is_some())
                    .bind(icon.flatten().map(|a| a.0))
                    .execute(self.w())
                    .await?;
                }
                self.community(id).await
            }

            async fn delete_community(&self, id: CommunityId) -> StoreResult<bool> {
                let mut tx = self.w().begin().await?;
                // Its channels' files go too, after the grace period.
                sqlx::query(
                    "UPDATE attachments SET orphaned_at = $2 WHERE orphaned_at IS NULL \
                     AND channel_id IN (SELECT id FROM channels WHERE community_id = $1)",
                )
                .bind(id.0)
                .bind(hearth_types::now_ms())
                .execute(&mut *tx)
                .await?;
                let done = sqlx::query("DELETE FROM communities WHERE id = $1").bind(id.0).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }

            // ---- members ----

            async fn member(&self, community: CommunityId, user: UserId) -> StoreResult<Option<MemberRecord>> {
                let row = sqlx::query(concat!(member_select!(), "WHERE mb.community_id = $1 AND mb.user_id = $2"))
                    .bind(community.0)
                    .bind(user.0)
                    .fetch_optional(self.r())
                    .await?;
                let Some(row) = row else { return Ok(None) };
                let mut m = [Self::member_from(&row)?];
                self.attach_roles(&mut m).await?;
                let [m] = m;
                Ok(Some(m))
            }

            async fn members(&self, community: CommunityId, after: Option<UserId>, lim: u32) -> StoreResult<Vec<MemberRecord>> {
                let rows = sqlx::query(concat!(
                    member_select!(),
                    "WHERE mb.community_id = $1 AND mb.user_id > $2 ORDER BY mb.user_id LIMIT $3"
                ))
                .bind(community.0)
                .bind(after.map_or(0, |a| a.0))
                .bind(limit(lim))
                .fetch_all(self.r())
                .await?;
                let mut out = rows.iter().map(Self::member_from).collect::<Result<Vec<_>, _>>()?;
                self.attach_roles(&mut out).await?;
                Ok(out)
            }

            async fn member_ids(&self, community: CommunityId) -> StoreResult<Vec<UserId>> {
                let ids: Vec<i64> = sqlx::query_scalar("SELECT user_id FROM members WHERE community_id = $1 ORDER BY user_id")
                    .bind(community.0)
                    .fetch_all(self.r())
                    .await?;
                Ok(ids.into_iter().map(UserId).collect())
            }

            async fn role_member_ids(&self, community: CommunityId, role: RoleId) -> StoreResult<Vec<UserId>> {
                let ids: Vec<i64> = sqlx::query_scalar(
                    "SELECT user_id FROM member_roles WHERE community_id = $1 AND role_id = $2 ORDER BY user_id",
                )
                .bind(community.0)
                .bind(role.0)
                .fetch_all(self.r())
                .await?;
                Ok(ids.into_iter().map(UserId).collect())
            }

            async fn add_member(&self, community: CommunityId, user: UserId, now: i64) -> StoreResult<bool> {
                let done = sqlx::query(
                    "INSERT INTO members (community_id, user_id, nickname, joined_at, timed_out_until) \
                     VALUES ($1, $2, NULL, $3, NULL) ON CONFLICT (community_id, user_id) DO NOTHING",
                )
                .bind(community.0)
                .bind(user.0)
                .bind(now)
                .execute(self.w())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn remove_member(&self, community: CommunityId, user: UserId) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM members WHERE community_id = $1 AND user_id = $2")
                    .bind(community.0)
                    .bind(user.0)
                    .execute(self.w())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn update_member(&self, community: CommunityId, user: UserId, p: &MemberPatch) -> StoreResult<Option<MemberRecord>> {
                let done = sqlx::query(
                    "UPDATE members SET \
                     nickname = CASE WHEN $3 THEN $4 ELSE nickname END, \
                     timed_out_until = CASE WHEN $5 THEN $6 ELSE timed_out_until END \
                     WHERE community_id = $1 AND user_id = $2",
                )
                .bind(community.0)
                .bind(user.0)
                .bind(p.nickname.is_some())
                .bind(p.nickname.clone().flatten())
                .bind(p.timed_out_until.is_some())
                .bind(p.timed_out_until.flatten())
                .execute(self.w())
                .await?;
                if done.rows_affected() == 0 {
                    return Ok(None);
                }
                self.member(community, user).await
            }

            async fn add_member_role(&self, community: CommunityId, user: UserId, role: RoleId) -> StoreResult<bool> {
                let done = sqlx::query(
                    "INSERT INTO member_roles (community_id, user_id, role_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(community.0)
                .bind(user.0)
                .bind(role.0)
                .execute(self.w())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn remove_member_role(&self, community: CommunityId, user: UserId, role: RoleId) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM member_roles WHERE community_id = $1 AND user_id = $2 AND role_id = $3")
                    .bind(community.0)
                    .bind(user.0)
                    .bind(role.0)
                    .execute(self.w())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn ban(&self, b: &BanRecord) -> StoreResult<bool> {
                let mut tx = self.w().begin().await?;
                let done = sqlx::query(
                    "INSERT INTO bans (community_id, user_id, reason, moderator_id, created_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (community_id, user_id) DO NOTHING",
                )
                .bind(b.community_id.0)
                .bind(b.user_id.0)
                .bind(&b.reason)
                .bind(b.moderator_id.0)
                .bind(b.created_at)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM members WHERE community_id = $1 AND user_id = $2")
                    .bind(b.community_id.0)
                    .bind(b.user_id.0)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }

            async fn unban(&self, community: CommunityId, user: UserId) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM bans WHERE community_id = $1 AND user_id = $2")
                    .bind(community.0)
                    .bind(user.0)
                    .execute(self.w())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn is_banned(&self, community: CommunityId, user: UserId) -> StoreResult<bool> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bans WHERE community_id = $1 AND user_id = $2")
                    .bind(community.0)
                    .bind(user.0)
                    .fetch_one(self.r())
                    .await?;
                Ok(n > 0)
            }

            async fn bans(&self, community: CommunityId) -> StoreResult<Vec<BanRecord>> {
                let rows = sqlx::query(
                    "SELECT community_id, user_id, reason, moderator_id, created_at FROM bans WHERE community_id = $1 ORDER BY user_id",
                )
                .bind(community.0)
                .fetch_all(self.r())
                .await?;
                Ok(rows.iter().map(Self::ban_from).collect::<Result<_, _>>()?)
            }

            // ---- invites ----

            async fn create_invite(&self, i: &InviteRecord) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO invites (code, community_id, inviter_id, uses, max_uses, expires_at, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&i.code)
                .bind(i.community_id.0)
                .bind(i.inviter_id.0)
                .bind(i.uses)
                .bind(i.max_uses)
                .bind(i.expires_at)
                .bind(i.created_at)
                .execute(self.w())
                .await?;
                Ok(())
            }

            async fn invite(&self, code: &str) -> StoreResult<Option<InviteRecord>> {
                let row = sqlx::query(
                    "SELECT code, community_id, inviter_id, uses, max_uses, expires_at, created_at FROM invites WHERE code = $1",
                )
                .bind(code)
                .fetch_optional(self.r())
                .await?;
                Ok(row.map(|r| Self::invite_from(&r)).transpose()?)
            }

            async fn invites(&self, community: CommunityId) -> StoreResult<Vec<InviteRecord>> {
                let rows = sqlx::query(
                    "SELECT code, community_id, inviter_id, uses, max_uses, expires_at, created_at FROM invites \
                     WHERE community_id = $1 ORDER BY created_at DESC",
                )
                .bind(community.0)
                .fetch_all(self.r())
                .await?;
                Ok(rows.iter().map(Self::invite_from).collect::<Result<_, _>>()?)
            }

            async fn use_invite(&self, code: &str, now: i64) -> StoreResult<InviteUse> {
                let row = sqlx::query(
                    "UPDATE invites SET uses = uses + 1 WHERE code = $1 \
                     AND (max_uses IS NULL OR uses < max_uses) AND (expires_at IS NULL OR expires_at > $2) \
                     RETURNING code, community_id, inviter_id, uses, max_uses, expires_at, created_at",
                )
                .bind(code)
                .bind(now)
                .fetch_optional(self.w())
                .await?;
                Ok(match row {
                    Some(r) => InviteUse::Used(Self::invite_from(&r)?),
                    None => InviteUse::Invalid,
                })
            }

            async fn delete_invite(&self, code: &str) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM invites WHERE code = $1").bind(code).execute(self.w()).await?;
                Ok(done.rows_affected() == 1)
            }

            // ---- roles ----

            async fn create_role(&self, r: &RoleRecord) -> StoreResult<()> {
                Ok(Self::insert_role(self.w(), r).await?)
            }

            async fn role(&self, id: RoleId) -> StoreResult<Option<RoleRecord>> {
                let row = sqlx::query("SELECT id, community_id, name, permissions, color, position FROM roles WHERE id = $1")
                    .bind(id.0)
                    .fetch_optional(self.r())
                    .await?;
                Ok(row.map(|r| Self::role_from(&r)).transpose()?)
            }

            async fn roles(&self, community: CommunityId) -> StoreResult<Vec<RoleRecord>> {
                let rows = sqlx::query(
                    "SELECT id, community_id, name, permissions, color, position FROM roles WHERE community_id = $1 \
                     ORDER BY position DESC, id",
                )
                .bind(community.0)
                .fetch_all(self.r())
                .await?;
                Ok(rows.iter().map(Self::role_from).collect::<Result<_, _>>()?)
            }

            async fn update_role(&self, id: RoleId, p: &RolePatch) -> StoreResult<Option<RoleRecord>> {
                sqlx::query(
                    "UPDATE roles SET \
                     name = COALESCE($2, name), \
                     permissions = COALESCE($3, permissions), \
                     color = CASE WHEN $4 THEN $5 ELSE color END, \
                     position = COALESCE($6, position) \
                     WHERE id = $1",
                )
                .bind(id.0)
                .bind(&p.name)
                .bind(p.permissions)
                .bind(p.color.is_some())
                .bind(p.color.flatten())
                .bind(p.position)
                .execute(self.w())
                .await?;
                self.role(id).await
            }

            async fn delete_role(&self, id: RoleId) -> StoreResult<bool> {
                let mut tx = self.w().begin().await?;
                sqlx::query("DELETE FROM overwrites WHERE target_id = $1 AND target_type = 'role'")
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM member_roles WHERE role_id = $1").bind(id.0).execute(&mut *tx).await?;
                let done = sqlx::query("DELETE FROM roles WHERE id = $1").bind(id.0).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }

            // ---- channels ----

            async fn create_channel(&self, c: &ChannelRecord) -> StoreResult<()> {
                Ok(Self::insert_channel(self.w(), c).await?)
            }

            async fn channel(&self, id: ChannelId) -> StoreResult<Option<ChannelRecord>> {
                let row = sqlx::query(concat!(channel_select!(), "WHERE c.id = $1"))
                    .bind(id.0)
                    .fetch_optional(self.r())
                    .await?;
                Ok(row.map(|r| Self::channel_from(&r)).transpose()?)
            }

            async fn channels(&self, community: CommunityId) -> StoreResult<Vec<ChannelRecord>> {
                let rows = sqlx::query(concat!(channel_select!(), "WHERE c.community_id = $1 ORDER BY c.position, c.id"))
                    .bind(community.0)
                    .fetch_all(self.r())
                    .await?;
                Ok(rows.iter().map(Self::channel_from).collect::<Result<_, _>>()?)
            }

            async fn update_channel(&self, id: ChannelId, p: &ChannelPatch) -> StoreResult<Option<ChannelRecord>> {
                sqlx::query(
                    "UPDATE channels SET \
                     name = COALESCE($2, name), \
                     topic = CASE WHEN $3 THEN $4 ELSE topic END, \
                     position = COALESCE($5, position), \
                     parent_id = CASE WHEN $6 THEN $7 ELSE parent_id END, \
                     user_limit = COALESCE($8, user_limit), \
                     slowmode_secs = COALESCE($9, slowmode_secs), \
                     locked = COALESCE($10, locked) \
                     WHERE id = $1",
                )
                .bind(id.0)
                .bind(&p.name)
                .bind(p.topic.is_some())
                .bind(p.topic.clone().flatten())
                .bind(p.position)
                .bind(p.parent_id.is_some())
                .bind(p.parent_id.flatten().map(|x| x.0))
                .bind(p.user_limit)
                .bind(p.slowmode_secs)
                .bind(p.locked)
                .execute(self.w())
                .await?;
                self.channel(id).await
            }

            async fn delete_channel(&self, id: ChannelId) -> StoreResult<bool> {
                let mut tx = self.w().begin().await?;
                sqlx::query("UPDATE channels SET parent_id = NULL WHERE parent_id = $1")
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE attachments SET orphaned_at = $2 WHERE channel_id = $1 AND orphaned_at IS NULL")
                    .bind(id.0)
                    .bind(hearth_types::now_ms())
                    .execute(&mut *tx)
                    .await?;
                let done = sqlx::query("DELETE FROM channels WHERE id = $1").bind(id.0).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }

            async fn overwrites(&self, channel: ChannelId) -> StoreResult<Vec<OverwriteRecord>> {
                let rows = sqlx::query(
                    "SELECT channel_id, target_id, target_type, allow_bits, deny_bits FROM overwrites WHERE channel_id = $1 \
                     ORDER BY target_id",
                )
                .bind(channel.0)
                .fetch_all(self.r())
                .await?;
                Ok(rows.iter().map(Self::overwrite_from).collect::<Result<_, _>>()?)
            }

            async fn community_overwrites(&self, community: CommunityId) -> StoreResult<Vec<OverwriteRecord>> {
                let rows = sqlx::query(
                    "SELECT o.channel_id, o.target_id, o.target_type, o.allow_bits, o.deny_bits FROM overwrites o \
                     JOIN channels c ON c.id = o.channel_id WHERE c.community_id = $1 ORDER BY o.channel_id, o.target_id",
                )
                .bind(community.0)
                .fetch_all(self.r())
                .await?;
                Ok(rows.iter().map(Self::overwrite_from).collect::<Result<_, _>>()?)
            }

            async fn put_overwrite(&self, o: &OverwriteRecord) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO overwrites (channel_id, target_id, target_type, allow_bits, deny_bits) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (channel_id, target_id) DO UPDATE SET target_type = excluded.target_type, \
                     allow_bits = excluded.allow_bits, deny_bits = excluded.deny_bits",
                )
                .bind(o.channel_id.0)
                .bind(o.target_id)
                .bind(o.target_kind.as_str())
                .bind(o.allow)
                .bind(o.deny)
                .execute(self.w())
                .await?;
                Ok(())
            }

            async fn delete_overwrite(&self, channel: ChannelId, target_id: i64) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM overwrites WHERE channel_id = $1 AND target_id = $2")
                    .bind(channel.0)
                    .bind(target_id)
                    .execute(self.w())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            // ---- DMs ----

            async fn create_private_channel(&self, c: &ChannelRecord, recipients: &[UserId]) -> StoreResult<ChannelRecord> {
                let mut tx = self.w().begin().await?;
                let inserted = sqlx::query(
                    "INSERT INTO channels (id, community_id, kind, name, topic, position, parent_id, owner_id, dm_key, \
                     created_at) VALUES ($1, NULL, $2, $3, NULL, 0, NULL, $4, $5, $6) \
                     ON CONFLICT (dm_key) DO NOTHING",
                )
                .bind(c.id.0)
                .bind(c.kind.as_str())
                .bind(&c.name)
                .bind(c.owner_id.map(|x| x.0))
                .bind(&c.dm_key)
                .bind(c.created_at)
                .execute(&mut *tx)
                .await?;
                let id = if inserted.rows_affected() == 1 {
                    for u in recipients {
                        sqlx::query("INSERT INTO channel_recipients (channel_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                            .bind(c.id.0)
                            .bind(u.0)
                            .execute(&mut *tx)
                            .await?;
                    }
                    c.id.0
                } else {
                    sqlx::query_scalar("SELECT id FROM channels WHERE dm_key = $1")
                        .bind(&c.dm_key)
                        .fetch_one(&mut *tx)
                        .await?
                };
                let row = sqlx::query(concat!(channel_select!(), "WHERE c.id = $1"))
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Self::channel_from(&row)?)
            }

            async fn private_channels(&self, user: UserId) -> StoreResult<Vec<ChannelRecord>> {
                let rows = sqlx::query(
                    concat!(channel_select!(), "JOIN channel_recipients r ON r.channel_id = c.id \
                     WHERE r.user_id = $1 ORDER BY COALESCE((SELECT MAX(m2.id) FROM messages m2 WHERE m2.channel_id = c.id), c.id) DESC"),
                )
                .bind(user.0)
                .fetch_all(self.r())
                .await?;
                Ok(rows.iter().map(Self::channel_from).collect::<Result<_, _>>()?)
            }

            async fn recipients(&self, channel: ChannelId) -> StoreResult<Vec<UserRecord>> {
                let rows = sqlx::query(concat!(
                    "SELECT ", user_cols!(), " FROM channel_recipients r JOIN users u ON u.id = r.user_id \
                     WHERE r.channel_id = $1 ORDER BY u.id"
                ))
                .bind(channel.0)
                .fetch_all(self.r())
                .await?;
                Ok(rows.iter().map(Self::user_from).collect::<Result<_, _>>()?)
            }

            async fn is_recipient(&self, channel: ChannelId, user: UserId) -> StoreResult<bool> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM channel_recipients WHERE channel_id = $1 AND user_id = $2")
                    .bind(channel.0)
                    .bind(user.0)
                    .fetch_one(self.r())
                    .await?;
                Ok(n > 0)
            }

            // ---- messages ----

            async fn create_message(&self, m: &NewMessage, author: &UserRecord, now: i64, window_ms: i64) -> StoreResult<MessageCreate> {
                // One statement: the partial unique index on (channel, author, nonce)
                // turns a repeated nonce into "no row inserted" atomically, on both
                // engines, so the common case is a single round trip.
                for _ in 0..2 {
                    let done = sqlx::query(
                        "INSERT INTO messages (id, channel_id, author_id, content, edited_at, reply_to_id, mention_users, \
                         mention_roles, mention_everyone, attachment_ids, pinned, nonce) \
                         VALUES ($1, $2, $3, $4, NULL, $5, $6, $7, $8, $9, FALSE, $10) \
                         ON CONFLICT (channel_id, author_id, nonce) WHERE nonce IS NOT NULL DO NOTHING",
                    )
                    .bind(m.id.0)
                    .bind(m.channel_id.0)
                    .bind(m.author_id.0)
                    .bind(&m.content)
                    .bind(m.reply_to_id.map(|x| x.0))
                    .bind(join_ids(m.mentions.users.iter().map(|u| u.0)))
                    .bind(join_ids(m.mentions.roles.iter().map(|r| r.0)))
                    .bind(m.mentions.everyone)
                    .bind(join_ids(m.attachment_ids.iter().map(|a| a.0)))
                    .bind(&m.nonce)
                    .execute(self.w())
                    .await?;
                    if done.rows_affected() == 1 {
                        return Ok(MessageCreate::Created(MessageRecord {
                            id: m.id,
                            channel_id: m.channel_id,
                            author: author.clone(),
                            content: m.content.clone(),
                            edited_at: None,
                            reply_to_id: m.reply_to_id,
                            mentions: m.mentions.clone(),
                            attachment_ids: m.attachment_ids.clone(),
                            pinned: false,
                            nonce: m.nonce.clone(),
                        }));
                    }
                    let row = sqlx::query(concat!(message_select!(), "WHERE m.channel_id = $1 AND m.author_id = $2 AND m.nonce = $3"))
                        .bind(m.channel_id.0)
                        .bind(m.author_id.0)
                        .bind(&m.nonce)
                        .fetch_optional(self.w())
                        .await?;
                    match row {
                        Some(r) => {
                            let first = Self::message_from(&r)?;
                            if first.id.created_ms() > now - window_ms {
                                return Ok(MessageCreate::Duplicate(first));
                            }
                            // Outside the window the nonce is free again: release it
                            // from the old message and insert once more.
                            sqlx::query("UPDATE messages SET nonce = NULL WHERE id = $1")
                                .bind(first.id.0)
                                .execute(self.w())
                                .await?;
                        }
                        // The first message was deleted between our insert and our read.
                        None => continue,
                    }
                }
                Err(StoreError::Conflict("nonce".into()))
            }

            async fn message_by_nonce(&self, channel: ChannelId, author: UserId, nonce: &str) -> StoreResult<Option<MessageRecord>> {
                let row = sqlx::query(concat!(message_select!(), "WHERE m.channel_id = $1 AND m.author_id = $2 AND m.nonce = $3"))
                    .bind(channel.0)
                    .bind(author.0)
                    .bind(nonce)
                    .fetch_optional(self.r())
                    .await?;
                Ok(row.map(|r| Self::message_from(&r)).transpose()?)
            }

            async fn bulk_insert_messages(&self, msgs: &[NewMessage]) -> StoreResult<()> {
                let mut tx = self.w().begin().await?;
                for m in msgs {
                    sqlx::query(
                        "INSERT INTO messages (id, channel_id, author_id, content, edited_at, reply_to_id, mention_users, \
                         mention_roles, mention_everyone, attachment_ids, pinned, nonce) \
                         VALUES ($1, $2, $3, $4, NULL, $5, '', '', FALSE, '', FALSE, NULL)",
                    )
                    .bind(m.id.0)
                    .bind(m.channel_id.0)
                    .bind(m.author_id.0)
                    .bind(&m.content)
                    .bind(m.reply_to_id.map(|x| x.0))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn message(&self, channel: ChannelId, id: MessageId) -> StoreResult<Option<MessageRecord>> {
                let row = sqlx::query(concat!(message_select!(), "WHERE m.channel_id = $1 AND m.id = $2"))
                    .bind(channel.0)
                    .bind(id.0)
                    .fetch_optional(self.r())
                    .await?;
                Ok(row.map(|r| Self::message_from(&r)).transpose()?)
            }

            async fn messages_after(&self, after: MessageId, lim: u32) -> StoreResult<Vec<MessageRecord>> {
                let rows = sqlx::query(concat!(message_select!(), "WHERE m.id > $1 ORDER BY m.id ASC LIMIT $2"))
                    .bind(after.0)
                    .bind(limit(lim))
                    .fetch_all(self.r())
                    .await?;
                Ok(rows.iter().map(Self::message_from).collect::<Result<_, _>>()?)
            }

            async fn messages(&self, channel: ChannelId, page: Page<MessageId>) -> StoreResult<Vec<MessageRecord>> {
                let upper = page.before.map_or(i64::MAX, |b| b.0);
                let rows = match page.after {
                    Some(after) => {
                        sqlx::query(concat!(
                            message_select!(),
                            "WHERE m.channel_id = $1 AND m.id > $2 AND m.id < $3 ORDER BY m.id ASC LIMIT $4"
                        ))
                        .bind(channel.0)
                        .bind(after.0)
                        .bind(upper)
                        .bind(limit(page.limit))
                        .fetch_all(self.r())
                        .await?
                    }
                    None => {
                        sqlx::query(concat!(
                            message_select!(),
                            "WHERE m.channel_id = $1 AND m.id < $2 ORDER BY m.id DESC LIMIT $3"
                        ))
                        .bind(channel.0)
                        .bind(upper)
                        .bind(limit(page.limit))
                        .fetch_all(self.r())
                        .await?
                    }
                };
                Ok(rows.iter().map(Self::message_from).collect::<Result<_, _>>()?)
            }

            async fn edit_message(
                &self,
                channel: ChannelId,
                id: MessageId,
                content: &str,
                mentions: &Mentions,
                edited_at: i64,
            ) -> StoreResult<Option<MessageRecord>> {
                let done = sqlx::query(
                    "UPDATE messages SET content = $3, mention_users = $4, mention_roles = $5, mention_everyone = $6, \
                     edited_at = $7 WHERE channel_id = $1 AND id = $2",
                )
                .bind(channel.0)
                .bind(id.0)
                .bind(content)
                .bind(join_ids(mentions.users.iter().map(|u| u.0)))
                .bind(join_ids(mentions.roles.iter().map(|r| r.0)))
                .bind(mentions.everyone)
                .bind(edited_at)
                .execute(self.w())
                .await?;
                if done.rows_affected() == 0 {
                    return Ok(None);
                }
                self.message(channel, id).await
            }

            async fn delete_message(&self, channel: ChannelId, id: MessageId) -> StoreResult<bool> {
                Ok(self.delete_messages(channel, &[id]).await?.len() == 1)
            }

            async fn set_pinned(&self, channel: ChannelId, id: MessageId, pinned: bool) -> StoreResult<bool> {
                let done = sqlx::query("UPDATE messages SET pinned = $3 WHERE channel_id = $1 AND id = $2")
                    .bind(channel.0)
                    .bind(id.0)
                    .bind(pinned)
                    .execute(self.w())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn pinned_messages(&self, channel: ChannelId) -> StoreResult<Vec<MessageRecord>> {
                let rows = sqlx::query(concat!(message_select!(), "WHERE m.channel_id = $1 AND m.pinned ORDER BY m.id DESC"))
                    .bind(channel.0)
                    .fetch_all(self.r())
                    .await?;
                Ok(rows.iter().map(Self::message_from).collect::<Result<_, _>>()?)
            }

            async fn add_reaction(&self, channel: ChannelId, message: MessageId, user: UserId, emoji: &str, now: i64, max_distinct: u32) -> StoreResult<ReactionAdded> {
                let mut tx = self.w().begin().await?;
                // A no-op write on the message row first: it takes the row's
                // lock (Postgres) or the write lock (SQLite), so concurrent
                // adds to one message count and insert one after another and
                // the distinct-emoji bound holds exactly.
                let found = sqlx::query("UPDATE messages SET pinned = pinned WHERE id = $1 AND channel_id = $2")
                    .bind(message.0)
                    .bind(channel.0)
                    .execute(&mut *tx)
                    .await?;
                if found.rows_affected() == 0 {
                    return Err(StoreError::Missing("message".into()));
                }
                let done = sqlx::query(
                    "INSERT INTO reactions (channel_id, message_id, emoji, user_id, created_at) \
                     SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM reactions WHERE message_id = $2 AND emoji = $3) \
                     OR (SELECT COUNT(DISTINCT emoji) FROM reactions WHERE message_id = $2) < $6 \
                     ON CONFLICT (message_id, emoji, user_id) DO NOTHING",
                )
                .bind(channel.0)
                .bind(message.0)
                .bind(emoji)
                .bind(user.0)
                .bind(now)
                .bind(i64::from(max_distinct))
                .execute(&mut *tx)
                .await?;
                let outcome = if done.rows_affected() == 1 {
                    ReactionAdded::Added
                } else {
                    let mine: Option<i64> = sqlx::query_scalar(
                        "SELECT CAST(1 AS BIGINT) FROM reactions WHERE message_id = $1 AND emoji = $2 AND user_id = $3",
                    )
                    .bind(message.0)
                    .bind(emoji)
                    .bind(user.0)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if mine.is_some() { ReactionAdded::AlreadyThere } else { ReactionAdded::Full }
                };
                tx.commit().await?;
                Ok(outcome)
            }

            // ---- journal ----

            async fn journal_head(&self) -> StoreResult<i64> {
                let head: Option<i64> = sqlx::query_scalar("SELECT CAST(MAX(position) AS BIGINT) FROM event_journal")
                    .fetch_one(self.r())
                    .await?;
                Ok(head.unwrap_or(0))
            }

            async fn journal_append(&self, events: &[JournalRecord]) -> StoreResult<()> {
                let mut tx = self.w().begin().await?;
                for e in events {
                    sqlx::query(
                        "INSERT INTO event_journal (position, id, source, type, subject, time, content_type, data) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (position) DO NOTHING",
                    )
                    .bind(e.position)
                    .bind(&e.id)
                    .bind(&e.source)
                    .bind(&e.ty)
                    .bind(&e.subject)
                    .bind(e.time)
                    .bind(&e.content_type)
                    .bind(&e.data)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn journal_after(&self, position: i64, lim: u32) -> StoreResult<Vec<JournalRecord>> {
                let rows = sqlx::query(
                    "SELECT position, id, source, type, subject, time, content_type, data FROM event_journal \
                     WHERE position > $1 ORDER BY position LIMIT $2",
                )
                .bind(position)
                .bind(limit(lim))
                .fetch_all(self.r())
                .await?;
                Ok(rows.iter().map(Self::journal_from).collect::<Result<_, _>>()?)
            }

            async fn journal_trim(&self, before: i64) -> StoreResult<u64> {
                let done = sqlx::query("DELETE FROM event_journal WHERE position < $1")
                    .bind(before)
                    .execute(self.w())
                    .await?;
                Ok(done.rows_affected())
            }

            async fn consumer_cursor(&self, name: &str) -> StoreResult<i64> {
                let pos: Option<i64> = sqlx::query_scalar("SELECT position FROM consumer_cursors WHERE name = $1")
                    .bind(name)
                    .fetch_optional(self.r())
                    .await?;
                Ok(pos.unwrap_or(0))
            }

            async fn set_consumer_cursor(&self, name: &str, position: i64, now: i64) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO consumer_cursors (name, position, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at",
                )
                .bind(name)
                .bind(position)
                .bind(now)
                .execute(self.w())
                .await?;
                Ok(())
            }

            async fn add_dead_letter(&self, d: &DeadLetterRecord) -> StoreResult<()> {
                let e = &d.event;
                sqlx::query(
                    "INSERT INTO dead_letters (consumer, position, id, source, type, subject, time, content_type, data, error, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                     ON CONFLICT (consumer, position) DO UPDATE SET error = excluded.error, created_at = excluded.created_at",
                )
                .bind(&d.consumer)
                .bind(e.position)
                .bind(&e.id)
                .bind(&e.source)
                .bind(&e.ty)
                .bind(&e.subject)
                .bind(e.time)
                .bind(&e.content_type)
                .bind(&e.data)
                .bind(&d.error)
                .bind(d.created_at)
                .execute(self.w())
                .await?;
                Ok(())
            }

            async fn dead_letters(&self, consumer: &str, lim: u32) -> StoreResult<Vec<DeadLetterRecord>> {
                let rows = sqlx::query(
                    "SELECT consumer, position, id, source, type, subject, time, content_type, data, error, created_at \
                     FROM dead_letters WHERE consumer = $1 ORDER BY position LIMIT $2",
                )
                .bind(consumer)
                .bind(limit(lim))
                .fetch_all(self.r())
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    out.push(DeadLetterRecord {
                        consumer: r.try_get("consumer")?,
                        event: Self::journal_from(r)?,
                        error: r.try_get("error")?,
                        created_at: r.try_get("created_at")?,
                    });
                }
                Ok(out)
            }

            // ---- moderation ----

            async fn insert_audit(&self, e: &AuditRecord) -> StoreResult<bool> {
                let done = Self::audit_insert(e).execute(self.w()).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn insert_audits(&self, entries: &[AuditRecord]) -> StoreResult<u64> {
                // One commit (one fsync) for the lot: a consumer catching up
                // at a thousand entries a second cannot wait for one each.
                let mut tx = self.w().begin().await?;
                let mut n = 0;
                for e in entries {
                    n += Self::audit_insert(e).execute(&mut *tx).await?.rows_affected();
                }
                tx.commit().await?;
                Ok(n)
            }

            async fn audit_entries(&self, q: &AuditQuery, lim: u32) -> StoreResult<Vec<AuditRecord>> {
                // Unset filters bind a value that matches everything (0 for
                // ids, which are snowflakes, never 0; "" for the action), so
                // one statement serves every combination on both engines.
                let rows = sqlx::query(
                    "SELECT id, community_id, actor_id, action, target_kind, target_id, reason, changes, created_at \
                     FROM audit_log WHERE COALESCE(community_id, 0) = $1 \
                     AND ($2 = 0 OR actor_id = $2) AND ($3 = '' OR action = $3) \
                     AND ($4 = 0 OR target_id = $4) AND id < $5 AND id > $6 \
                     ORDER BY id DESC LIMIT $7",
                )
                .bind(q.community_id.map_or(0, |c| c.0))
                .bind(q.actor_id.map_or(0, |u| u.0))
                .bind(q.action.as_deref().unwrap_or(""))
                .bind(q.target_id.unwrap_or(0))
                .bind(q.before.unwrap_or(i64::MAX))
                .bind(q.after.unwrap_or(i64::MIN))
                .bind(limit(lim))
                .fetch_all(self.r())
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    out.push(AuditRecord {
                        id: r.try_get("id")?,
                        community_id: r.try_get::<Option<i64>, _>("community_id")?.map(CommunityId),
                        actor_id: r.try_get::<Option<i64>, _>("actor_id")?.map(UserId),
                        action: r.try_get("action")?,
                        target_kind: r.try_get("target_kind")?,
                        target_id: r.try_get("target_id")?,
                        reason: r.try_get("reason")?,
                        changes: r.try_get("changes")?,
                        created_at: r.try_get("created_at")?,
                    });
                }
                Ok(out)
            }

            async fn prune_audit(&self, before: i64) -> StoreResult<u64> {
                let done = sqlx::query("DELETE FROM audit_log WHERE created_at < $1")
                    .bind(before)
                    .execute(self.w())
                    .await?;
                Ok(done.rows_affected())
            }

            async fn automod_rules(&self, community: CommunityId) -> StoreResult<Option<String>> {
                Ok(sqlx::query_scalar("SELECT rules FROM automod_rules WHERE community_id = $1")
                    .bind(community.0)
                    .fetch_optional(self.r())
                    .await?)
            }

            async fn set_automod_rules(&self, community: CommunityId, rules: &str, now: i64) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO automod_rules (community_id, rules, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (community_id) DO UPDATE SET rules = excluded.rules, updated_at = excluded.updated_at",
                )
                .bind(community.0)
                .bind(rules)
                .bind(now)
                .execute(self.w())
                .await?;
                Ok(())
            }

            async fn delete_messages(&self, channel: ChannelId, ids: &[MessageId]) -> StoreResult<Vec<MessageId>> {
                let mut tx = self.w().begin().await?;
                let mut out = Vec::with_capacity(ids.len());
                let now = hearth_types::now_ms();
                for id in ids {
                    let done = sqlx::query("DELETE FROM messages WHERE channel_id = $1 AND id = $2")
                        .bind(channel.0)
                        .bind(id.0)
                        .execute(&mut *tx)
                        .await?;
                    if done.rows_affected() == 1 {
                        out.push(*id);
                        // Its files go after the grace period.
                        sqlx::query("UPDATE attachments SET orphaned_at = $2 WHERE message_id = $1 AND orphaned_at IS NULL")
                            .bind(id.0)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                tx.commit().await?;
                Ok(out)
            }

            async fn messages_by_author_since(
                &self,
                community: CommunityId,
                author: UserId,
                after: MessageId,
            ) -> StoreResult<Vec<(ChannelId, MessageId)>> {
                let rows = sqlx::query(
                    "SELECT m.channel_id, m.id FROM messages m JOIN channels c ON c.id = m.channel_id \
                     WHERE c.community_id = $1 AND m.author_id = $2 AND m.id > $3 ORDER BY m.id LIMIT 10000",
                )
                .bind(community.0)
                .bind(author.0)
                .bind(after.0)
                .fetch_all(self.r())
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    out.push((ChannelId(r.try_get("channel_id")?), MessageId(r.try_get("id")?)));
                }
                Ok(out)
            }

            // ---- attachments ----

            async fn insert_attachment(&self, a: &AttachmentRecord) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO attachments (id, uploader_id, channel_id, purpose, filename, declared_type, \
                     content_type, size, sha256, blob_key, width, height, blurhash, preview_key, undecodable, \
                     message_id, created_at, duration_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
                )
                .bind(a.id.0)
                .bind(a.uploader_id.0)
                .bind(a.channel_id.map(|c| c.0))
                .bind(&a.purpose)
                .bind(&a.filename)
                .bind(&a.declared_type)
                .bind(&a.content_type)
                .bind(a.size)
                .bind(&a.sha256)
                .bind(&a.blob_key)
                .bind(a.width)
                .bind(a.height)
                .bind(&a.blurhash)
                .bind(&a.preview_key)
                .bind(a.undecodable)
                .bind(a.message_id.map(|m| m.0))
                .bind(a.created_at)
                .bind(a.duration_ms)
                .execute(self.w())
                .await?;
                Ok(())
            }

            async fn attachment(&self, id: AttachmentId) -> StoreResult<Option<AttachmentRecord>> {
                let row = sqlx::query(concat!(attachment_select!(), "WHERE id = $1"))
                    .bind(id.0)
                    .fetch_optional(self.r())
                    .await?;
                row.as_ref().map(Self::attachment_row).transpose()
            }

            async fn attachments(&self, ids: &[AttachmentId]) -> StoreResult<Vec<AttachmentRecord>> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                // One statement for a page of messages' files: `$1, $2, …` as many as ids.
                let params: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
                let sql = format!("{} WHERE id IN ({})", attachment_select!(), params.join(", "));
                // Safe: fixed text and generated placeholders, no input.
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for id in ids {
                    q = q.bind(id.0);
                }
                let rows = q.fetch_all(self.r()).await?;
                let mut found = rows.iter().map(Self::attachment_row).collect::<StoreResult<Vec<_>>>()?;
                found.sort_by_key(|a| ids.iter().position(|i| *i == a.id));
                Ok(found)
            }

            async fn claim_attachments(
                &self,
                ids: &[AttachmentId],
                uploader: UserId,
                channel: ChannelId,
                message: MessageId,
            ) -> StoreResult<bool> {
                let mut tx = self.w().begin().await?;
                for id in ids {
                    let done = sqlx::query(
                        "UPDATE attachments SET message_id = $1 WHERE id = $2 AND uploader_id = $3 \
                         AND channel_id = $4 AND purpose = 'message' AND message_id IS NULL",
                    )
                    .bind(message.0)
                    .bind(id.0)
                    .bind(uploader.0)
                    .bind(channel.0)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() != 1 {
                        // Dropping the transaction rolls the others back.
                        return Ok(false);
                    }
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn withdraw_unsent_attachment(&self, id: AttachmentId) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE attachments SET purpose = 'expired' WHERE id = $1 AND message_id IS NULL",
                )
                .bind(id.0)
                .execute(self.w())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn set_attachment_processed(&self, id: AttachmentId, p: &AttachmentProcessed) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE attachments SET width = $2, height = $3, blurhash = $4, preview_key = $5, \
                     undecodable = $6, size = COALESCE($7, size), sha256 = COALESCE($8, sha256), \
                     duration_ms = $9 WHERE id = $1",
                )
                .bind(id.0)
                .bind(p.width)
                .bind(p.height)
                .bind(&p.blurhash)
                .bind(&p.preview_key)
                .bind(p.undecodable)
                .bind(p.size_sha256.as_ref().map(|s| s.0))
                .bind(p.size_sha256.as_ref().map(|s| s.1.clone()))
                .bind(p.duration_ms)
                .execute(self.w())
                .await?;
                Ok(())
            }

            async fn expired_attachments(&self, before: i64, limit: u32) -> StoreResult<Vec<AttachmentRecord>> {
                let rows = sqlx::query(concat!(
                    attachment_select!(),
                    "WHERE message_id IS NULL AND created_at < $1 \
                     AND NOT EXISTS (SELECT 1 FROM users u WHERE u.avatar_id = attachments.id) \
                     AND NOT EXISTS (SELECT 1 FROM communities c WHERE c.icon_id = attachments.id) \
                     ORDER BY created_at LIMIT $2"
                ))
                .bind(before)
                .bind(i64::from(limit))
                .fetch_all(self.r())
                .await?;
                rows.iter().map(Self::attachment_row).collect()
            }

            async fn orphaned_attachments(&self, before: i64, limit: u32) -> StoreResult<Vec<AttachmentRecord>> {
                let rows = sqlx::query(concat!(
                    attachment_select!(),
                    "WHERE orphaned_at IS NOT NULL AND orphaned_at < $1 ORDER BY orphaned_at LIMIT $2"
                ))
                .bind(before)
                .bind(i64::from(limit))
                .fetch_all(self.r())
                .await?;
                rows.iter().map(Self::attachment_row).collect()
            }

            async fn delete_attachment(&self, id: AttachmentId) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM attachments WHERE id = $1")
                    .bind(id.0)
                    .execute(self.w())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            // ---- trust ----

            async fn block_user(&self, user: UserId, blocked: UserId, now: i64) -> StoreResult<bool> {
                let done = sqlx::query(
                    "INSERT INTO user_blocks (user_id, blocked_id, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (user_id, blocked_id) DO NOTHING",
                )
                .bind(user.0)
                .bind(blocked.0)
                .bind(now)
                .execute(self.w())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn unblock_user(&self, user: UserId, blocked: UserId) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM user_blocks WHERE user_id = $1 AND blocked_id = $2")
                    .bind(user.0)
                    .bind(blocked.0)
                    .execute(self.w())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn blocked_users(&self, user: UserId) -> StoreResult<Vec<UserId>> {
                let ids: Vec<i64> = sqlx::query_scalar(
                    "SELECT blocked_id FROM user_blocks WHERE user_id = $1 ORDER BY created_at, blocked_id",
                )
                .bind(user.0)
                .fetch_all(self.r())
                .await?;
                Ok(ids.into_iter().map(UserId).collect())
            }

            async fn has_blocked(&self, user: UserId, other: UserId) -> StoreResult<bool> {
                self.exists_pair(
                    "SELECT CAST(1 AS BIGINT) FROM user_blocks WHERE user_id = $1 AND blocked_id = $2",
                    user.0,
                    other.0,
                )
                .await
            }

            async fn share_community(&self, a: UserId, b: UserId) -> StoreResult<bool> {
                self.exists_pair(
                    "SELECT CAST(1 AS BIGINT) FROM members x JOIN members y ON y.community_id = x.community_id \
                     WHERE x.user_id = $1 AND y.user_id = $2 LIMIT 1",
                    a.0,
                    b.0,
                )
                .await
            }

            async fn share_private_channel(&self, a: UserId, b: UserId) -> StoreResult<bool> {
                self.exists_pair(
                    "SELECT CAST(1 AS BIGINT) FROM channel_recipients x JOIN channel_recipients y ON y.channel_id = x.channel_id \
                     WHERE x.user_id = $1 AND y.user_id = $2 LIMIT 1",
                    a.0,
                    b.0,
                )
                .await
            }

            async fn group_dms_created_since(&self, owner: UserId, since: i64) -> StoreResult<(i64, Option<i64>)> {
                let row = sqlx::query(
                    "SELECT CAST(COUNT(*) AS BIGINT) AS n, CAST(MIN(created_at) AS BIGINT) AS oldest FROM channels \
                     WHERE owner_id = $1 AND kind = 'group_dm' AND created_at >= $2",
                )
                .bind(owner.0)
                .bind(since)
                .fetch_one(self.r())
                .await?;
                Ok((row.try_get("n")?, row.try_get("oldest")?))
            }

            async fn use_totp_step(&self, user: UserId, step: i64) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE users SET totp_last_step = $2 WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)",
                )
                .bind(user.0)
                .bind(step)
                .execute(self.w())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn reset_totp_step(&self, user: UserId) -> StoreResult<()> {
                sqlx::query("UPDATE users SET totp_last_step = NULL WHERE id = $1")
                    .bind(user.0)
                    .execute(self.w())
                    .await?;
                Ok(())
            }

            async fn remove_reaction(&self, message: MessageId, user: UserId, emoji: &str) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM reactions WHERE message_id = $1 AND emoji = $2 AND user_id = $3")
                    .bind(message.0)
                    .bind(emoji)
                    .bind(user.0)
                    .execute(self.w())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn reactions(&self, channel: ChannelId, messages: &[MessageId], viewer: UserId) -> StoreResult<Vec<ReactionCount>> {
                let (Some(lo), Some(hi)) = (messages.iter().min(), messages.iter().max()) else {
                    return Ok(Vec::new());
                };
                let rows = sqlx::query(
                    "SELECT message_id, emoji, CAST(COUNT(*) AS BIGINT) AS n, \
                     CAST(MAX(CASE WHEN user_id = $4 THEN 1 ELSE 0 END) AS BIGINT) AS me, MIN(created_at) AS first_at \
                     FROM reactions WHERE channel_id = $1 AND message_id >= $2 AND message_id <= $3 \
                     GROUP BY message_id, emoji ORDER BY message_id, first_at, emoji",
                )
                .bind(channel.0)
                .bind(lo.0)
                .bind(hi.0)
                .bind(viewer.0)
                .fetch_all(self.r())
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    let id = MessageId(r.try_get("message_id")?);
                    if messages.contains(&id) {
                        out.push(ReactionCount {
                            message_id: id,
                            emoji: r.try_get("emoji")?,
                            count: r.try_get("n")?,
                            me: r.try_get::<i64, _>("me")? != 0,
                        });
                    }
                }
                Ok(out)
            }

            // ---- read states ----

            async fn ack(&self, user: UserId, channel: ChannelId, message: MessageId) -> StoreResult<ReadStateRecord> {
                let row = sqlx::query(
                    "INSERT INTO read_states (user_id, channel_id, last_read_id, mention_count) VALUES ($1, $2, $3, 0) \
                     ON CONFLICT (user_id, channel_id) DO UPDATE SET \
                     last_read_id = CASE WHEN excluded.last_read_id > read_states.last_read_id \
                                         THEN excluded.last_read_id ELSE read_states.last_read_id END, \
                     mention_count = 0 \
                     RETURNING channel_id, last_read_id, mention_count",
                )
                .bind(user.0)
                .bind(channel.0)
                .bind(message.0)
                .fetch_one(self.w())
                .await?;
                Ok(Self::read_state_from(&row)?)
            }

            async fn read_states(&self, user: UserId) -> StoreResult<Vec<ReadStateRecord>> {
                let rows = sqlx::query(
                    "SELECT channel_id, last_read_id, mention_count FROM read_states WHERE user_id = $1 ORDER BY channel_id",
                )
                .bind(user.0)
                .fetch_all(self.r())
                .await?;
                Ok(rows.iter().map(Self::read_state_from).collect::<Result<_, _>>()?)
            }

            // ---- platform administration ----

            async fn staff_rules(&self) -> StoreResult<Vec<String>> {
                Ok(sqlx::query_scalar("SELECT rule FROM staff_policy ORDER BY created_at, rule")
                    .fetch_all(self.r())
                    .await?)
            }

            async fn add_staff_rule(&self, rule: &str, now: i64) -> StoreResult<bool> {
                let done = sqlx::query(
                    "INSERT INTO staff_policy (rule, created_at) VALUES ($1, $2) ON CONFLICT (rule) DO NOTHING",
                )
                .bind(rule)
                .bind(now)
                .execute(self.w())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn remove_staff_rule(&self, rule: &str) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM staff_policy WHERE rule = $1")
                    .bind(rule)
                    .execute(self.w())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn suspend_user(&self, s: &SuspensionRecord) -> StoreResult<bool> {
                let done = sqlx::query(
                    "INSERT INTO user_suspensions (user_id, reason, suspended_by, suspended_at) \
                     SELECT id, $2, $3, $4 FROM users WHERE id = $1 \
                     ON CONFLICT (user_id) DO NOTHING",
                )
                .bind(s.user_id.0)
                .bind(&s.reason)
                .bind(s.suspended_by.map(|u| u.0))
                .bind(s.suspended_at)
                .execute(self.w())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn unsuspend_user(&self, user: UserId) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM user_suspensions WHERE user_id = $1")
                    .bind(user.0)
                    .execute(self.w())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn suspension(&self, user: UserId) -> StoreResult<Option<SuspensionRecord>> {
                let row = sqlx::query(
                    "SELECT user_id, reason, suspended_by, suspended_at FROM user_suspensions WHERE user_id = $1",
                )
                .bind(user.0)
                .fetch_optional(self.r())
                .await?;
                Ok(match row {
                    None => None,
                    Some(r) => Some(SuspensionRecord {
                        user_id: UserId(r.try_get("user_id")?),
                        reason: r.try_get("reason")?,
                        suspended_by: r.try_get::<Option<i64>, _>("suspended_by")?.map(UserId),
                        suspended_at: r.try_get("suspended_at")?,
                    }),
                })
            }

            async fn erase_user(&self, e: &ErasureRecord, tombstone: &str) -> StoreResult<bool> {
                let mut tx = self.w().begin().await?;
                let done = sqlx::query(
                    "UPDATE users SET username = $2, username_lower = $3, email = NULL, email_lower = NULL, \
                     display_name = NULL, avatar_id = NULL, password_hash = '!erased', is_admin = FALSE, \
                     totp_secret = NULL, totp_last_step = NULL, email_verified_at = NULL, \
                     email_bounced_at = NULL, allow_dms_from = 'nobody' \
                     WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM user_erasures WHERE user_id = $1)",
                )
                .bind(e.user_id.0)
                .bind(tombstone)
                .bind(tombstone.to_lowercase())
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    return Ok(false);
                }
                let user = e.user_id.0;
                for sql in [
                    "DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM sessions WHERE user_id = $1)",
                    "DELETE FROM account_tokens WHERE user_id = $1",
                    "DELETE FROM mail_outbox WHERE user_id = $1",
                    "DELETE FROM user_blocks WHERE user_id = $1 OR blocked_id = $1",
                    "DELETE FROM read_states WHERE user_id = $1",
                    "DELETE FROM notifications WHERE user_id = $1",
                    "DELETE FROM notification_settings WHERE user_id = $1",
                    "DELETE FROM push_subscriptions WHERE user_id = $1",
                    "DELETE FROM user_identities WHERE user_id = $1",
                    "DELETE FROM oidc_flows WHERE link_user_id = $1",
                    "DELETE FROM member_roles WHERE user_id = $1",
                    "DELETE FROM members WHERE user_id = $1",
                    "DELETE FROM user_suspensions WHERE user_id = $1",
                ] {
                    sqlx::query(sql).bind(user).execute(&mut *tx).await?;
                }
                sqlx::query(
                    "UPDATE sessions SET user_agent = NULL, revoked_at = COALESCE(revoked_at, $2) WHERE user_id = $1",
                )
                .bind(user)
                .bind(e.erased_at)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO user_erasures (user_id, erased_by, messages, erased_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(user)
                .bind(e.erased_by.map(|u| u.0))
                .bind(&e.messages)
                .bind(e.erased_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn erasure(&self, user: UserId) -> StoreResult<Option<ErasureRecord>> {
                let row = sqlx::query(
                    "SELECT user_id, erased_by, messages, erased_at FROM user_erasures WHERE user_id = $1",
                )
                .bind(user.0)
                .fetch_optional(self.r())
                .await?;
                Ok(match row {
                    None => None,
                    Some(r) => Some(ErasureRecord {
                        user_id: UserId(r.try_get("user_id")?),
                        erased_by: r.try_get::<Option<i64>, _>("erased_by")?.map(UserId),
                        messages: r.try_get("messages")?,
                        erased_at: r.try_get("erased_at")?,
                    }),
                })
            }

            async fn messages_by_author(
                &self,
                author: UserId,
                after: MessageId,
                lim: u32,
            ) -> StoreResult<Vec<(ChannelId, Option<CommunityId>, MessageId)>> {
                // No index on the author (it would tax every send for a
                // rare erasure): a walk along the primary key, in pages.
                let rows = sqlx::query(
                    "SELECT m.channel_id, c.community_id, m.id FROM messages m JOIN channels c ON c.id = m.channel_id \
                     WHERE m.author_id = $1 AND m.id > $2 ORDER BY m.id LIMIT $3",
                )
                .bind(author.0)
                .bind(after.0)
                .bind(i64::from(lim))
                .fetch_all(self.r())
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    out.push((
                        ChannelId(r.try_get("channel_id")?),
                        r.try_get::<Option<i64>, _>("community_id")?.map(CommunityId),
                        MessageId(r.try_get("id")?),
                    ));
                }
                Ok(out)
            }

            async fn admin_communities(
                &self,
                query: &str,
                after: CommunityId,
                lim: u32,
            ) -> StoreResult<Vec<CommunitySummary>> {
                let q = query.trim().to_lowercase();
                let rows = sqlx::query(
                    "SELECT c.id, c.name, c.owner_id, c.icon_id, c.created_at, \
                     (SELECT COUNT(*) FROM members mb WHERE mb.community_id = c.id) AS member_count, \
                     (SELECT COUNT(*) FROM channels ch WHERE ch.community_id = c.id) AS channel_count \
                     FROM communities c \
                     WHERE (LOWER(c.name) LIKE $1 ESCAPE '\\' OR c.id = $2) AND c.id > $3 \
                     ORDER BY c.id LIMIT $4",
                )
                .bind(like_prefix(&q))
                .bind(q.parse::<i64>().unwrap_or(-1))
                .bind(after.0)
                .bind(limit(lim))
                .fetch_all(self.r())
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    out.push(CommunitySummary {
                        community: Self::community_from(r)?,
                        members: r.try_get("member_count")?,
                        channels: r.try_get("channel_count")?,
                    });
                }
                Ok(out)
            }

            async fn find_users(&self, query: &str, after: UserId, lim: u32) -> StoreResult<Vec<UserRecord>> {
                // A prefix match on the lower-cased username (its index
                // serves it), with LIKE's wildcards in the query escaped.
                let q = query.trim().to_lowercase();
                let rows = sqlx::query(concat!(
                    "SELECT ", user_cols!(), " FROM users u \
                     WHERE (u.username_lower LIKE $1 ESCAPE '\\' OR u.email_lower = $2) AND u.id > $3 \
                     ORDER BY u.id LIMIT $4"
                ))
                .bind(like_prefix(&q))
                .bind(&q)
                .bind(after.0)
                .bind(limit(lim))
                .fetch_all(self.r())
                .await?;
                Ok(rows.iter().map(Self::user_from).collect::<Result<_, _>>()?)
            }

            async fn instance_stats(&self, now: i64) -> StoreResult<InstanceStats> {
                let month = now - 30 * 24 * 3_600_000;
                let row = sqlx::query(
                    "SELECT (SELECT COUNT(*) FROM users) AS users, \
                     (SELECT COUNT(*) FROM user_suspensions) AS suspended, \
                     (SELECT COUNT(*) FROM communities) AS communities, \
                     (SELECT COUNT(*) FROM channels) AS channels, \
                     (SELECT COUNT(*) FROM messages) AS messages, \
                     (SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL AND last_seen_at > $1) AS live",
                )
                .bind(month)
                .fetch_one(self.r())
                .await?;
                Ok(InstanceStats {
                    users: row.try_get("users")?,
                    suspended_users: row.try_get("suspended")?,
                    communities: row.try_get("communities")?,
                    channels: row.try_get("channels")?,
                    messages: row.try_get("messages")?,
                    live_sessions: row.try_get("live")?,
                })
            }

            // ---- reports ----

            async fn insert_report(&self, r: &ReportRecord) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO reports (id, community_id, reporter_id, state, report, version, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(r.id)
                .bind(r.community_id.map(|c| c.0))
                .bind(r.reporter_id.0)
                .bind(&r.state)
                .bind(&r.report)
                .bind(r.version)
                .bind(r.created_at)
                .execute(self.w())
                .await?;
                Ok(())
            }

            async fn report(&self, id: i64) -> StoreResult<Option<ReportRecord>> {
                let row = sqlx::query(
                    "SELECT id, community_id, reporter_id, state, report, version, created_at FROM reports WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(self.r())
                .await?;
                Ok(row.map(|r| Self::report_from(&r)).transpose()?)
            }

            async fn update_report(&self, r: &ReportRecord, expected: i64) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE reports SET state = $2, report = $3, version = $4 WHERE id = $1 AND version = $5",
                )
                .bind(r.id)
                .bind(&r.state)
                .bind(&r.report)
                .bind(r.version)
                .bind(expected)
                .execute(self.w())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn reports(
                &self,
                community: Option<CommunityId>,
                state: Option<&str>,
                before: i64,
                lim: u32,
            ) -> StoreResult<Vec<ReportRecord>> {
                let rows = sqlx::query(
                    "SELECT id, community_id, reporter_id, state, report, version, created_at FROM reports \
                     WHERE COALESCE(community_id, 0) = $1 AND ($2 = '' OR state = $2) AND id < $3 \
                     ORDER BY id DESC LIMIT $4",
                )
                .bind(community.map_or(0, |c| c.0))
                .bind(state.unwrap_or(""))
                .bind(before)
                .bind(limit(lim))
                .fetch_all(self.r())
                .await?;
                Ok(rows.iter().map(Self::report_from).collect::<Result<_, _>>()?)
            }

            async fn add_mentions(&self, channel: ChannelId, users: &[UserId]) -> StoreResult<()> {
                if users.is_empty() {
                    return Ok(());
                }
                let mut tx = self.w().begin().await?;
                for u in users {
                    sqlx::query(
                        "INSERT INTO read_states (user_id, channel_id, last_read_id, mention_count) VALUES ($1, $2, 0, 1) \
                         ON CONFLICT (user_id, channel_id) DO UPDATE SET mention_count = read_states.mention_count + 1",
                    )
                    .bind(u.0)
                    .bind(channel.0)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

impl SqliteStore {
    /// One `BEGIN IMMEDIATE` transaction around the whole run: it takes the
    /// file's write lock up front, so another process migrating the same file
    /// waits (busy timeout) and then finds the migrations applied. Within the
    /// process, the one-connection write pool already serializes.
    async fn migrate_locked(&self, list: &[Migration]) -> StoreResult<()> {
        let mut conn = self.w().acquire().await?;
        let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
        Self::apply_migrations_on(&mut tx, list).await?;
        tx.commit().await?;
        Ok(())
    }
}

impl PostgresStore {
    /// The whole run under a session-level advisory lock, held on one
    /// dedicated connection and released after: nodes starting together on
    /// an empty database take turns (concurrent `CREATE TABLE`s would
    /// otherwise collide in the catalog), and each reads `schema_migrations`
    /// only once it holds the lock.
    async fn migrate_locked(&self, list: &[Migration]) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await?;
        let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(migrate::PG_LOCK_KEY)
            .fetch_one(&mut *conn)
            .await?;
        if !free {
            tracing::info!("another process is migrating this database; waiting for it");
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(migrate::PG_LOCK_KEY)
                .execute(&mut *conn)
                .await?;
        }
        let result = Self::apply_migrations_on(&mut conn, list).await;
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(migrate::PG_LOCK_KEY)
            .execute(&mut *conn)
            .await;
        if result.is_err() || unlocked.is_err() {
            // Never hand a connection that may still hold the lock back to
            // the pool: closing it ends the session, which releases the lock.
            conn.close_on_drop();
        }
        result?;
        unlocked?;
        Ok(())
    }
}

sql_impl!(
    SqliteStore,
    sqlx::Sqlite,
    sqlx::sqlite::SqliteRow,
    "sqlite",
    migrate::SQLITE
);
sql_impl!(
    PostgresStore,
    sqlx::Postgres,
    sqlx::postgres::PgRow,
    "postgres",
    migrate::POSTGRES
);
