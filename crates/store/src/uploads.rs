//! Resumable uploads' repository (issue #11): the state of an upload in
//! progress (every node reads and advances the same row, so any node can
//! take the next chunk), its accepted chunks, and the per-user storage sum
//! the quota is checked against. A supertrait of [`Store`](crate::Store),
//! one SQL text for both backends.
//!
//! Invariants: `received` only moves forward, by exactly one chunk, and only
//! from the value the writer read (a conditional UPDATE), so two nodes
//! taking the same offset cannot both succeed; a part row exists exactly for
//! the chunks counted in `received`; finishing inserts the attachment and
//! removes the upload in one transaction.

use async_trait::async_trait;
use hearth_types::{AttachmentId, ChannelId, UserId};
use sqlx::Row;

use crate::StoreResult;
use crate::model::AttachmentRecord;
use crate::sql::{PostgresStore, SqliteStore};

/// A resumable upload in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadRecord {
    /// Also the attachment's id once it completes.
    pub id: AttachmentId,
    pub uploader_id: UserId,
    pub channel_id: ChannelId,
    /// Already sanitised.
    pub filename: String,
    pub declared_type: String,
    /// The declared total size (bytes).
    pub size: i64,
    /// Bytes accepted so far: the offset the next chunk must start at.
    pub received: i64,
    pub created_at: i64,
    pub expires_at: i64,
}

/// One accepted chunk: bytes `[start, start + size)` of the upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadPartRecord {
    pub start: i64,
    pub size: i64,
    pub blob_key: String,
}

#[async_trait]
pub trait UploadStore: Send + Sync {
    async fn create_upload(&self, u: &UploadRecord) -> StoreResult<()>;
    async fn upload(&self, id: AttachmentId) -> StoreResult<Option<UploadRecord>>;
    /// Records a chunk of `size` bytes stored under `blob_key` at `start`:
    /// `received` becomes `start + size` if it was `start` and that does not
    /// pass the declared size. The new `received`, or `None` when the
    /// upload is gone or another chunk took that offset first (nothing
    /// changed; the caller deletes its blob).
    async fn add_upload_part(
        &self,
        id: AttachmentId,
        start: i64,
        size: i64,
        blob_key: &str,
    ) -> StoreResult<Option<i64>>;
    /// The accepted chunks, in order.
    async fn upload_parts(&self, id: AttachmentId) -> StoreResult<Vec<UploadPartRecord>>;
    /// Inserts the finished file's row (unless a concurrent finish already
    /// did) and removes the upload with its parts, in one transaction.
    async fn finish_upload(&self, id: AttachmentId, a: &AttachmentRecord) -> StoreResult<()>;
    /// Removes the upload and its part rows; false if it was not there.
    async fn delete_upload(&self, id: AttachmentId) -> StoreResult<bool>;
    /// Uploads that expired before `before`, oldest first, at most `limit`.
    async fn expired_uploads(&self, before: i64, limit: u32) -> StoreResult<Vec<UploadRecord>>;
    /// What counts against `user`'s quota: the sizes of their files not
    /// deleted (orphaned files wait for collection but no longer count)
    /// plus the declared sizes of their uploads in progress.
    async fn storage_used(&self, user: UserId) -> StoreResult<i64>;
}

macro_rules! uploads_impl {
    ($Store:ident, $Row:ty) => {
        impl $Store {
            fn upload_from(r: &$Row) -> Result<UploadRecord, sqlx::Error> {
                Ok(UploadRecord {
                    id: AttachmentId(r.try_get("id")?),
                    uploader_id: UserId(r.try_get("uploader_id")?),
                    channel_id: ChannelId(r.try_get("channel_id")?),
                    filename: r.try_get("filename")?,
                    declared_type: r.try_get("declared_type")?,
                    size: r.try_get("size")?,
                    received: r.try_get("received")?,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                })
            }
        }

        #[async_trait]
        impl UploadStore for $Store {
            async fn create_upload(&self, u: &UploadRecord) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO uploads (id, uploader_id, channel_id, filename, declared_type, size, received, \
                     created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(u.id.0)
                .bind(u.uploader_id.0)
                .bind(u.channel_id.0)
                .bind(&u.filename)
                .bind(&u.declared_type)
                .bind(u.size)
                .bind(u.received)
                .bind(u.created_at)
                .bind(u.expires_at)
                .execute(self.w())
                .await?;
                Ok(())
            }

            async fn upload(&self, id: AttachmentId) -> StoreResult<Option<UploadRecord>> {
                let row = sqlx::query(
                    "SELECT id, uploader_id, channel_id, filename, declared_type, size, received, created_at, \
                     expires_at FROM uploads WHERE id = $1",
                )
                .bind(id.0)
                .fetch_optional(self.r())
                .await?;
                Ok(row.map(|r| Self::upload_from(&r)).transpose()?)
            }

            async fn add_upload_part(
                &self,
                id: AttachmentId,
                start: i64,
                size: i64,
                blob_key: &str,
            ) -> StoreResult<Option<i64>> {
                let mut tx = self.w().begin().await?;
                let moved: Option<i64> = sqlx::query_scalar(
                    "UPDATE uploads SET received = received + $3 \
                     WHERE id = $1 AND received = $2 AND received + $3 <= size RETURNING received",
                )
                .bind(id.0)
                .bind(start)
                .bind(size)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(received) = moved else {
                    return Ok(None); // dropping the transaction rolls back nothing
                };
                sqlx::query(
                    "INSERT INTO upload_parts (upload_id, part_start, size, blob_key) VALUES ($1, $2, $3, $4)",
                )
                .bind(id.0)
                .bind(start)
                .bind(size)
                .bind(blob_key)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Some(received))
            }

            async fn upload_parts(&self, id: AttachmentId) -> StoreResult<Vec<UploadPartRecord>> {
                let rows = sqlx::query(
                    "SELECT part_start, size, blob_key FROM upload_parts WHERE upload_id = $1 ORDER BY part_start",
                )
                .bind(id.0)
                .fetch_all(self.r())
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(UploadPartRecord {
                            start: r.try_get("part_start")?,
                            size: r.try_get("size")?,
                            blob_key: r.try_get("blob_key")?,
                        })
                    })
                    .collect()
            }

            async fn finish_upload(&self, id: AttachmentId, a: &AttachmentRecord) -> StoreResult<()> {
                let mut tx = self.w().begin().await?;
                sqlx::query(
                    "INSERT INTO attachments (id, uploader_id, channel_id, purpose, filename, declared_type, \
                     content_type, size, sha256, blob_key, width, height, blurhash, preview_key, undecodable, \
                     message_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
                     ON CONFLICT (id) DO NOTHING",
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
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM upload_parts WHERE upload_id = $1")
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM uploads WHERE id = $1")
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn delete_upload(&self, id: AttachmentId) -> StoreResult<bool> {
                let mut tx = self.w().begin().await?;
                sqlx::query("DELETE FROM upload_parts WHERE upload_id = $1")
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await?;
                let done = sqlx::query("DELETE FROM uploads WHERE id = $1")
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }

            async fn expired_uploads(&self, before: i64, limit: u32) -> StoreResult<Vec<UploadRecord>> {
                let rows = sqlx::query(
                    "SELECT id, uploader_id, channel_id, filename, declared_type, size, received, created_at, \
                     expires_at FROM uploads WHERE expires_at < $1 ORDER BY expires_at LIMIT $2",
                )
                .bind(before)
                .bind(i64::from(limit))
                .fetch_all(self.r())
                .await?;
                Ok(rows.iter().map(Self::upload_from).collect::<Result<_, _>>()?)
            }

            async fn storage_used(&self, user: UserId) -> StoreResult<i64> {
                // SUM of BIGINT is NUMERIC on Postgres: cast back.
                let used: i64 = sqlx::query_scalar(
                    "SELECT CAST(COALESCE((SELECT SUM(size) FROM attachments WHERE uploader_id = $1 \
                     AND orphaned_at IS NULL), 0) + COALESCE((SELECT SUM(size) FROM uploads \
                     WHERE uploader_id = $1), 0) AS BIGINT)",
                )
                .bind(user.0)
                .fetch_one(self.r())
                .await?;
                Ok(used)
            }
        }
    };
}

uploads_impl!(SqliteStore, sqlx::sqlite::SqliteRow);
uploads_impl!(PostgresStore, sqlx::postgres::PgRow);
