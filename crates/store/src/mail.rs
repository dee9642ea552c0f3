//! Mail's repository (issue #13): the outbox, single-use account tokens,
//! and the state of users' addresses. Its own trait and file (a supertrait
//! of [`Store`](crate::Store), so every store has it), with one SQL text
//! stamped out for both backends like the rest.

use async_trait::async_trait;
use hearth_types::{SessionId, UserId};
use sqlx::Row;

use crate::sql::{PostgresStore, SqliteStore};
use crate::{StoreError, StoreResult};

/// Where a queued mail is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailStatus {
    Queued,
    /// Held by a worker until its claim runs out (then anyone may take it).
    Sending,
    Sent,
    /// Out of retries.
    Failed,
    /// Refused for good by the mail server; the address is marked.
    Bounced,
}

impl MailStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MailStatus::Queued => "queued",
            MailStatus::Sending => "sending",
            MailStatus::Sent => "sent",
            MailStatus::Failed => "failed",
            MailStatus::Bounced => "bounced",
        }
    }

    pub fn parse(s: &str) -> Option<MailStatus> {
        Some(match s {
            "queued" => MailStatus::Queued,
            "sending" => MailStatus::Sending,
            "sent" => MailStatus::Sent,
            "failed" => MailStatus::Failed,
            "bounced" => MailStatus::Bounced,
            _ => return None,
        })
    }
}

/// One mail in the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct MailRecord {
    pub id: i64,
    /// Enqueueing the same key twice queues one mail.
    pub dedupe_key: String,
    pub user_id: Option<UserId>,
    /// The template's name (`welcome`, `password_reset`, …).
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub status: MailStatus,
    /// Attempts made (a claim counts one).
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub done_at: Option<i64>,
}

/// A single-use account token, by the SHA-256 of its secret.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountTokenRecord {
    pub hash: String,
    pub user_id: UserId,
    /// `verify_email`, `password_reset` or `email_change` (opaque here).
    pub purpose: String,
    /// The address it was mailed to (and, for an email change, the new one).
    pub email: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

#[async_trait]
pub trait MailStore: Send + Sync {
    /// Queues `mail` unless one with its `dedupe_key` exists; true if queued.
    async fn enqueue_mail(&self, mail: &MailRecord) -> StoreResult<bool>;
    /// Claims up to `limit` mails that are due (queued and due, or held by
    /// a worker whose claim ran out) until `now + lease_ms`, counting an
    /// attempt on each. A mail is claimed by one caller at a time.
    async fn claim_mail(&self, now: i64, lease_ms: i64, limit: u32)
    -> StoreResult<Vec<MailRecord>>;
    /// Sent: done, bodies cleared.
    async fn mail_sent(&self, id: i64, now: i64) -> StoreResult<()>;
    /// Failed this time: queued again for `next_at`.
    async fn mail_retry(&self, id: i64, next_at: i64, error: &str) -> StoreResult<()>;
    /// Failed for good (`Failed` or `Bounced`): done, bodies cleared.
    async fn mail_given_up(
        &self,
        id: i64,
        status: MailStatus,
        error: &str,
        now: i64,
    ) -> StoreResult<()>;
    async fn mail(&self, id: i64) -> StoreResult<Option<MailRecord>>;
    /// Marks the user holding `email` (ignoring case) as bounced, unless
    /// marked already; true if this call marked it.
    async fn mark_email_bounced(&self, email: &str, now: i64) -> StoreResult<bool>;

    async fn create_account_token(&self, token: &AccountTokenRecord) -> StoreResult<()>;
    async fn account_token(&self, hash: &str) -> StoreResult<Option<AccountTokenRecord>>;
    /// Spends an unused token; false if it was used already (a race lost).
    async fn use_account_token(&self, hash: &str, now: i64) -> StoreResult<bool>;
    /// Spends every unused token of `user` for `purpose`; returns how many.
    async fn spend_account_tokens(&self, user: UserId, purpose: &str, now: i64)
    -> StoreResult<u64>;
    /// Marks the user's address verified if it is still `email`.
    async fn set_email_verified(&self, user: UserId, email: &str, now: i64) -> StoreResult<bool>;
    /// Replaces the user's address with `email`, verified at `now` (it was
    /// proven by a mailed link) and not bounced. `Conflict("email")` if
    /// another account holds it.
    async fn change_email(&self, user: UserId, email: &str, now: i64) -> StoreResult<bool>;
    /// Sets the password hash and revokes every live session of the user,
    /// in one transaction; returns the sessions revoked.
    async fn reset_password(
        &self,
        user: UserId,
        password_hash: &str,
        now: i64,
    ) -> StoreResult<Vec<SessionId>>;
}

macro_rules! mail_cols {
    () => {
        "id, dedupe_key, user_id, kind, recipient, subject, text_body, html_body, \
         status, attempts, next_attempt_at, last_error, created_at, done_at"
    };
}

macro_rules! mail_impl {
    ($Store:ident, $Row:ty) => {
        impl $Store {
            fn mail_from(r: &$Row) -> Result<MailRecord, sqlx::Error> {
                let status: String = r.try_get("status")?;
                Ok(MailRecord {
                    id: r.try_get("id")?,
                    dedupe_key: r.try_get("dedupe_key")?,
                    user_id: r.try_get::<Option<i64>, _>("user_id")?.map(UserId),
                    kind: r.try_get("kind")?,
                    recipient: r.try_get("recipient")?,
                    subject: r.try_get("subject")?,
                    text_body: r.try_get("text_body")?,
                    html_body: r.try_get("html_body")?,
                    // An unknown status (a newer binary's) is left alone.
                    status: MailStatus::parse(&status).unwrap_or(MailStatus::Failed),
                    attempts: r.try_get("attempts")?,
                    next_attempt_at: r.try_get("next_attempt_at")?,
                    last_error: r.try_get("last_error")?,
                    created_at: r.try_get("created_at")?,
                    done_at: r.try_get("done_at")?,
                })
            }

            fn token_from(r: &$Row) -> Result<AccountTokenRecord, sqlx::Error> {
                Ok(AccountTokenRecord {
                    hash: r.try_get("hash")?,
                    user_id: UserId(r.try_get("user_id")?),
                    purpose: r.try_get("purpose")?,
                    email: r.try_get("email")?,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                    used_at: r.try_get("used_at")?,
                })
            }
        }

        #[async_trait]
        impl MailStore for $Store {
            async fn enqueue_mail(&self, m: &MailRecord) -> StoreResult<bool> {
                let done = sqlx::query(
                    "INSERT INTO mail_outbox (id, dedupe_key, user_id, kind, recipient, subject, text_body, \
                     html_body, status, attempts, next_attempt_at, last_error, created_at, done_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                     ON CONFLICT (dedupe_key) DO NOTHING",
                )
                .bind(m.id)
                .bind(&m.dedupe_key)
                .bind(m.user_id.map(|u| u.0))
                .bind(&m.kind)
                .bind(&m.recipient)
                .bind(&m.subject)
                .bind(&m.text_body)
                .bind(&m.html_body)
                .bind(m.status.as_str())
                .bind(m.attempts)
                .bind(m.next_attempt_at)
                .bind(&m.last_error)
                .bind(m.created_at)
                .bind(m.done_at)
                .execute(self.w())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn claim_mail(&self, now: i64, lease_ms: i64, limit: u32) -> StoreResult<Vec<MailRecord>> {
                let due: Vec<i64> = sqlx::query_scalar(
                    "SELECT id FROM mail_outbox WHERE (status = 'queued' AND next_attempt_at <= $1) \
                     OR (status = 'sending' AND claimed_until < $1) ORDER BY next_attempt_at, id LIMIT $2",
                )
                .bind(now)
                .bind(i64::from(limit.clamp(1, 100)))
                .fetch_all(self.r())
                .await?;
                let mut out = Vec::with_capacity(due.len());
                for id in due {
                    // Conditional on the row still being due: of two workers
                    // racing for it, one updates it and the other finds nothing.
                    let row = sqlx::query(concat!(
                        "UPDATE mail_outbox SET status = 'sending', attempts = attempts + 1, claimed_until = $2 \
                         WHERE id = $1 AND ((status = 'queued' AND next_attempt_at <= $3) \
                         OR (status = 'sending' AND claimed_until < $3)) RETURNING ",
                        mail_cols!()
                    ))
                    .bind(id)
                    .bind(now + lease_ms)
                    .bind(now)
                    .fetch_optional(self.w())
                    .await?;
                    if let Some(r) = row {
                        out.push(Self::mail_from(&r)?);
                    }
                }
                Ok(out)
            }

            async fn mail_sent(&self, id: i64, now: i64) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE mail_outbox SET status = 'sent', done_at = $2, claimed_until = NULL, \
                     text_body = '', html_body = '', last_error = NULL WHERE id = $1",
                )
                .bind(id)
                .bind(now)
                .execute(self.w())
                .await?;
                Ok(())
            }

            async fn mail_retry(&self, id: i64, next_at: i64, error: &str) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE mail_outbox SET status = 'queued', next_attempt_at = $2, claimed_until = NULL, \
                     last_error = $3 WHERE id = $1",
                )
                .bind(id)
                .bind(next_at)
                .bind(error)
                .execute(self.w())
                .await?;
                Ok(())
            }

            async fn mail_given_up(&self, id: i64, status: MailStatus, error: &str, now: i64) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE mail_outbox SET status = $2, done_at = $4, claimed_until = NULL, last_error = $3, \
                     text_body = '', html_body = '' WHERE id = $1",
                )
                .bind(id)
                .bind(status.as_str())
                .bind(error)
                .bind(now)
                .execute(self.w())
                .await?;
                Ok(())
            }

            async fn mail(&self, id: i64) -> StoreResult<Option<MailRecord>> {
                let row = sqlx::query(concat!("SELECT ", mail_cols!(), " FROM mail_outbox WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(self.r())
                    .await?;
                Ok(row.map(|r| Self::mail_from(&r)).transpose()?)
            }

            async fn mark_email_bounced(&self, email: &str, now: i64) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE users SET email_bounced_at = $2 WHERE email_lower = $1 AND email_bounced_at IS NULL",
                )
                .bind(email.to_lowercase())
                .bind(now)
                .execute(self.w())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn create_account_token(&self, t: &AccountTokenRecord) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO account_tokens (hash, user_id, purpose, email, created_at, expires_at, used_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&t.hash)
                .bind(t.user_id.0)
                .bind(&t.purpose)
                .bind(&t.email)
                .bind(t.created_at)
                .bind(t.expires_at)
                .bind(t.used_at)
                .execute(self.w())
                .await?;
                Ok(())
            }

            async fn account_token(&self, hash: &str) -> StoreResult<Option<AccountTokenRecord>> {
                let row = sqlx::query(
                    "SELECT hash, user_id, purpose, email, created_at, expires_at, used_at \
                     FROM account_tokens WHERE hash = $1",
                )
                .bind(hash)
                .fetch_optional(self.w())
                .await?;
                Ok(row.map(|r| Self::token_from(&r)).transpose()?)
            }

            async fn use_account_token(&self, hash: &str, now: i64) -> StoreResult<bool> {
                let done = sqlx::query("UPDATE account_tokens SET used_at = $2 WHERE hash = $1 AND used_at IS NULL")
                    .bind(hash)
                    .bind(now)
                    .execute(self.w())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn spend_account_tokens(&self, user: UserId, purpose: &str, now: i64) -> StoreResult<u64> {
                let done = sqlx::query(
                    "UPDATE account_tokens SET used_at = $3 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
                )
                .bind(user.0)
                .bind(purpose)
                .bind(now)
                .execute(self.w())
                .await?;
                Ok(done.rows_affected())
            }

            async fn set_email_verified(&self, user: UserId, email: &str, now: i64) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE users SET email_verified_at = COALESCE(email_verified_at, $3) \
                     WHERE id = $1 AND email_lower = $2",
                )
                .bind(user.0)
                .bind(email.to_lowercase())
                .bind(now)
                .execute(self.w())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn change_email(&self, user: UserId, email: &str, now: i64) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE users SET email = $2, email_lower = $3, email_verified_at = $4, \
                     email_bounced_at = NULL WHERE id = $1",
                )
                .bind(user.0)
                .bind(email)
                .bind(email.to_lowercase())
                .bind(now)
                .execute(self.w())
                .await
                .map_err(StoreError::from);
                match done {
                    Ok(d) => Ok(d.rows_affected() == 1),
                    Err(StoreError::Conflict(_)) => Err(StoreError::Conflict("email".into())),
                    Err(e) => Err(e),
                }
            }

            async fn reset_password(&self, user: UserId, hash: &str, now: i64) -> StoreResult<Vec<SessionId>> {
                let mut tx = self.w().begin().await?;
                sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
                    .bind(user.0)
                    .bind(hash)
                    .execute(&mut *tx)
                    .await?;
                let revoked: Vec<i64> = sqlx::query_scalar(
                    "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL RETURNING id",
                )
                .bind(user.0)
                .bind(now)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(revoked.into_iter().map(SessionId).collect())
            }
        }
    };
}

mail_impl!(SqliteStore, sqlx::sqlite::SqliteRow);
mail_impl!(PostgresStore, sqlx::postgres::PgRow);
