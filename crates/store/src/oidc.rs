//! OpenID Connect's repository (issue #13): sign-in flows in flight and
//! the identities accounts hold at providers. A supertrait of
//! [`Store`](crate::Store), one SQL text for both backends.

use async_trait::async_trait;
use hearth_types::UserId;
use sqlx::Row;

use crate::sql::{PostgresStore, SqliteStore};
use crate::{StoreError, StoreResult};

/// One trip to a provider and back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcFlowRecord {
    /// SHA-256 (hex) of the `state` sent: the state itself is never stored.
    pub state_hash: String,
    pub provider: String,
    pub nonce: String,
    pub verifier: String,
    /// The account an identity is being linked to; `None` for a sign-in.
    pub link_user_id: Option<UserId>,
    /// Where the browser goes afterwards (a path of this site).
    pub redirect: String,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityRecord {
    pub id: i64,
    pub user_id: UserId,
    pub provider: String,
    /// The provider's `sub`.
    pub subject: String,
    pub email: Option<String>,
    pub created_at: i64,
}

#[async_trait]
pub trait OidcStore: Send + Sync {
    async fn create_oidc_flow(&self, f: &OidcFlowRecord) -> StoreResult<()>;
    /// Spends a flow that is unused and unexpired; `None` otherwise (also
    /// for the loser of two racing callbacks).
    async fn take_oidc_flow(
        &self,
        state_hash: &str,
        now: i64,
    ) -> StoreResult<Option<OidcFlowRecord>>;
    /// Forgets flows that expired before `before`; returns how many.
    async fn prune_oidc_flows(&self, before: i64) -> StoreResult<u64>;
    async fn identity(&self, provider: &str, subject: &str) -> StoreResult<Option<IdentityRecord>>;
    /// `Conflict("identity")` if another account (or this one) holds it.
    async fn add_identity(&self, i: &IdentityRecord) -> StoreResult<()>;
    async fn identities(&self, user: UserId) -> StoreResult<Vec<IdentityRecord>>;
    async fn delete_identity(&self, user: UserId, id: i64) -> StoreResult<bool>;
}

macro_rules! oidc_impl {
    ($Store:ident, $Row:ty) => {
        impl $Store {
            fn identity_from(r: &$Row) -> Result<IdentityRecord, sqlx::Error> {
                Ok(IdentityRecord {
                    id: r.try_get("id")?,
                    user_id: UserId(r.try_get("user_id")?),
                    provider: r.try_get("provider")?,
                    subject: r.try_get("subject")?,
                    email: r.try_get("email")?,
                    created_at: r.try_get("created_at")?,
                })
            }
        }

        #[async_trait]
        impl OidcStore for $Store {
            async fn create_oidc_flow(&self, f: &OidcFlowRecord) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO oidc_flows (state_hash, provider, nonce, verifier, link_user_id, redirect, \
                     created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&f.state_hash)
                .bind(&f.provider)
                .bind(&f.nonce)
                .bind(&f.verifier)
                .bind(f.link_user_id.map(|u| u.0))
                .bind(&f.redirect)
                .bind(f.created_at)
                .bind(f.expires_at)
                .execute(self.w())
                .await?;
                Ok(())
            }

            async fn take_oidc_flow(&self, state_hash: &str, now: i64) -> StoreResult<Option<OidcFlowRecord>> {
                let row = sqlx::query(
                    "UPDATE oidc_flows SET used_at = $2 WHERE state_hash = $1 AND used_at IS NULL AND expires_at > $2 \
                     RETURNING state_hash, provider, nonce, verifier, link_user_id, redirect, created_at, expires_at",
                )
                .bind(state_hash)
                .bind(now)
                .fetch_optional(self.w())
                .await?;
                let Some(r) = row else { return Ok(None) };
                Ok(Some(OidcFlowRecord {
                    state_hash: r.try_get("state_hash")?,
                    provider: r.try_get("provider")?,
                    nonce: r.try_get("nonce")?,
                    verifier: r.try_get("verifier")?,
                    link_user_id: r.try_get::<Option<i64>, _>("link_user_id")?.map(UserId),
                    redirect: r.try_get("redirect")?,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                }))
            }

            async fn prune_oidc_flows(&self, before: i64) -> StoreResult<u64> {
                let done = sqlx::query("DELETE FROM oidc_flows WHERE expires_at < $1")
                    .bind(before)
                    .execute(self.w())
                    .await?;
                Ok(done.rows_affected())
            }

            async fn identity(&self, provider: &str, subject: &str) -> StoreResult<Option<IdentityRecord>> {
                let row = sqlx::query(
                    "SELECT id, user_id, provider, subject, email, created_at FROM user_identities \
                     WHERE provider = $1 AND subject = $2",
                )
                .bind(provider)
                .bind(subject)
                .fetch_optional(self.r())
                .await?;
                Ok(row.map(|r| Self::identity_from(&r)).transpose()?)
            }

            async fn add_identity(&self, i: &IdentityRecord) -> StoreResult<()> {
                let done = sqlx::query(
                    "INSERT INTO user_identities (id, user_id, provider, subject, email, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(i.id)
                .bind(i.user_id.0)
                .bind(&i.provider)
                .bind(&i.subject)
                .bind(&i.email)
                .bind(i.created_at)
                .execute(self.w())
                .await
                .map_err(StoreError::from);
                match done {
                    Ok(_) => Ok(()),
                    Err(StoreError::Conflict(_)) => Err(StoreError::Conflict("identity".into())),
                    Err(e) => Err(e),
                }
            }

            async fn identities(&self, user: UserId) -> StoreResult<Vec<IdentityRecord>> {
                let rows = sqlx::query(
                    "SELECT id, user_id, provider, subject, email, created_at FROM user_identities \
                     WHERE user_id = $1 ORDER BY created_at, id",
                )
                .bind(user.0)
                .fetch_all(self.r())
                .await?;
                Ok(rows.iter().map(Self::identity_from).collect::<Result<_, _>>()?)
            }

            async fn delete_identity(&self, user: UserId, id: i64) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM user_identities WHERE id = $1 AND user_id = $2")
                    .bind(id)
                    .bind(user.0)
                    .execute(self.w())
                    .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

oidc_impl!(SqliteStore, sqlx::sqlite::SqliteRow);
oidc_impl!(PostgresStore, sqlx::postgres::PgRow);
