//! Link previews' repository (issue #11 item 6): the cache per URL
//! (`link_previews`) and the previews shown under each message
//! (`message_embeds`, which go with their message). A supertrait of
//! [`Store`](crate::Store), one SQL text for both backends.

use async_trait::async_trait;
use hearth_types::{ChannelId, EmbedId, MessageId};
use sqlx::Row;

use crate::StoreResult;
use crate::sql::{PostgresStore, SqliteStore};

/// A preview's image: a WebP in the blob store, made by the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbedImage {
    pub key: String,
    pub width: i32,
    pub height: i32,
}

/// What a link's preview shows (text already cleaned and bounded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreviewData {
    pub title: Option<String>,
    pub description: Option<String>,
    pub site_name: Option<String>,
    pub author_name: Option<String>,
    /// `opengraph`, `oembed` or `html`: opaque here.
    pub provider: String,
    pub image: Option<EmbedImage>,
}

/// The cache's answer for one URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkPreviewRecord {
    pub url: String,
    /// `None`: nothing to show (no metadata, refused, failed).
    pub preview: Option<PreviewData>,
    pub fetched_at: i64,
    pub expires_at: i64,
}

/// A preview under a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbedRecord {
    pub id: EmbedId,
    pub message_id: MessageId,
    /// Its place among the message's previews (the order of the URLs).
    pub position: i32,
    pub url: String,
    pub preview: PreviewData,
}

#[async_trait]
pub trait EmbedStore: Send + Sync {
    async fn link_preview(&self, url: &str) -> StoreResult<Option<LinkPreviewRecord>>;
    /// Stores (or replaces) the cache's answer for a URL.
    async fn put_link_preview(&self, r: &LinkPreviewRecord) -> StoreResult<()>;
    /// Forgets answers that expired before `before`; returns how many.
    async fn prune_link_previews(&self, before: i64) -> StoreResult<u64>;
    /// The previews of these messages, by message then position.
    async fn embeds(&self, messages: &[MessageId]) -> StoreResult<Vec<EmbedRecord>>;
    async fn embed(&self, id: EmbedId) -> StoreResult<Option<EmbedRecord>>;
    /// Replaces a message's previews with `embeds` in one transaction. False
    /// (and nothing stored) when the message is not in `channel` any more.
    async fn set_embeds(
        &self,
        channel: ChannelId,
        message: MessageId,
        embeds: &[EmbedRecord],
    ) -> StoreResult<bool>;
    /// Whether a cached answer or an embed names this image.
    async fn embed_image_in_use(&self, key: &str) -> StoreResult<bool>;
}

fn image_from(key: Option<String>, width: Option<i32>, height: Option<i32>) -> Option<EmbedImage> {
    Some(EmbedImage {
        key: key?,
        width: width.unwrap_or(0),
        height: height.unwrap_or(0),
    })
}

macro_rules! embeds_impl {
    ($Store:ident, $Row:ty) => {
        impl $Store {
            fn preview_from(r: &$Row) -> Result<PreviewData, sqlx::Error> {
                Ok(PreviewData {
                    title: r.try_get("title")?,
                    description: r.try_get("description")?,
                    site_name: r.try_get("site_name")?,
                    author_name: r.try_get("author_name")?,
                    provider: r.try_get("provider")?,
                    image: image_from(
                        r.try_get("image_key")?,
                        r.try_get("image_width")?,
                        r.try_get("image_height")?,
                    ),
                })
            }

            fn embed_from(r: &$Row) -> Result<EmbedRecord, sqlx::Error> {
                Ok(EmbedRecord {
                    id: EmbedId(r.try_get("id")?),
                    message_id: MessageId(r.try_get("message_id")?),
                    position: r.try_get("position")?,
                    url: r.try_get("url")?,
                    preview: Self::preview_from(r)?,
                })
            }
        }

        #[async_trait]
        impl EmbedStore for $Store {
            async fn link_preview(&self, url: &str) -> StoreResult<Option<LinkPreviewRecord>> {
                let row = sqlx::query(
                    "SELECT url, found, title, description, site_name, author_name, provider, image_key, \
                     image_width, image_height, fetched_at, expires_at FROM link_previews WHERE url = $1",
                )
                .bind(url)
                .fetch_optional(self.r())
                .await?;
                let Some(r) = row else { return Ok(None) };
                let found: bool = r.try_get("found")?;
                Ok(Some(LinkPreviewRecord {
                    url: r.try_get("url")?,
                    preview: if found { Some(Self::preview_from(&r)?) } else { None },
                    fetched_at: r.try_get("fetched_at")?,
                    expires_at: r.try_get("expires_at")?,
                }))
            }

            async fn put_link_preview(&self, l: &LinkPreviewRecord) -> StoreResult<()> {
                let p = l.preview.as_ref();
                let image = p.and_then(|p| p.image.as_ref());
                sqlx::query(
                    "INSERT INTO link_previews (url, found, title, description, site_name, author_name, provider, \
                     image_key, image_width, image_height, fetched_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                     ON CONFLICT (url) DO UPDATE SET found = excluded.found, title = excluded.title, \
                     description = excluded.description, site_name = excluded.site_name, \
                     author_name = excluded.author_name, provider = excluded.provider, \
                     image_key = excluded.image_key, image_width = excluded.image_width, \
                     image_height = excluded.image_height, fetched_at = excluded.fetched_at, \
                     expires_at = excluded.expires_at",
                )
                .bind(&l.url)
                .bind(p.is_some())
                .bind(p.and_then(|p| p.title.as_deref()))
                .bind(p.and_then(|p| p.description.as_deref()))
                .bind(p.and_then(|p| p.site_name.as_deref()))
                .bind(p.and_then(|p| p.author_name.as_deref()))
                .bind(p.map_or("", |p| p.provider.as_str()))
                .bind(image.map(|i| i.key.as_str()))
                .bind(image.map(|i| i.width))
                .bind(image.map(|i| i.height))
                .bind(l.fetched_at)
                .bind(l.expires_at)
                .execute(self.w())
                .await?;
                Ok(())
            }

            async fn prune_link_previews(&self, before: i64) -> StoreResult<u64> {
                let done = sqlx::query("DELETE FROM link_previews WHERE expires_at < $1")
                    .bind(before)
                    .execute(self.w())
                    .await?;
                Ok(done.rows_affected())
            }

            async fn embeds(&self, messages: &[MessageId]) -> StoreResult<Vec<EmbedRecord>> {
                if messages.is_empty() {
                    return Ok(Vec::new());
                }
                let params: Vec<String> = (1..=messages.len()).map(|i| format!("${i}")).collect();
                let sql = format!(
                    "SELECT id, message_id, position, url, title, description, site_name, author_name, provider, \
                     image_key, image_width, image_height FROM message_embeds WHERE message_id IN ({}) \
                     ORDER BY message_id, position",
                    params.join(", ")
                );
                // Safe: fixed text and generated placeholders, no input.
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for m in messages {
                    q = q.bind(m.0);
                }
                let rows = q.fetch_all(self.r()).await?;
                Ok(rows.iter().map(Self::embed_from).collect::<Result<_, _>>()?)
            }

            async fn embed(&self, id: EmbedId) -> StoreResult<Option<EmbedRecord>> {
                let row = sqlx::query(
                    "SELECT id, message_id, position, url, title, description, site_name, author_name, provider, \
                     image_key, image_width, image_height FROM message_embeds WHERE id = $1",
                )
                .bind(id.0)
                .fetch_optional(self.r())
                .await?;
                Ok(row.map(|r| Self::embed_from(&r)).transpose()?)
            }

            async fn set_embeds(
                &self,
                channel: ChannelId,
                message: MessageId,
                embeds: &[EmbedRecord],
            ) -> StoreResult<bool> {
                let mut tx = self.w().begin().await?;
                // A no-op write on the message row: it takes the row's lock
                // (Postgres) or the write lock (SQLite), so a delete cannot
                // slip in between and leave embeds of no message.
                let found = sqlx::query("UPDATE messages SET pinned = pinned WHERE id = $1 AND channel_id = $2")
                    .bind(message.0)
                    .bind(channel.0)
                    .execute(&mut *tx)
                    .await?;
                if found.rows_affected() == 0 {
                    return Ok(false);
                }
                sqlx::query("DELETE FROM message_embeds WHERE message_id = $1")
                    .bind(message.0)
                    .execute(&mut *tx)
                    .await?;
                for e in embeds {
                    let image = e.preview.image.as_ref();
                    sqlx::query(
                        "INSERT INTO message_embeds (id, message_id, position, url, title, description, site_name, \
                         author_name, provider, image_key, image_width, image_height) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                    )
                    .bind(e.id.0)
                    .bind(message.0)
                    .bind(e.position)
                    .bind(&e.url)
                    .bind(&e.preview.title)
                    .bind(&e.preview.description)
                    .bind(&e.preview.site_name)
                    .bind(&e.preview.author_name)
                    .bind(&e.preview.provider)
                    .bind(image.map(|i| i.key.as_str()))
                    .bind(image.map(|i| i.width))
                    .bind(image.map(|i| i.height))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn embed_image_in_use(&self, key: &str) -> StoreResult<bool> {
                let n: i64 = sqlx::query_scalar(
                    "SELECT CAST((SELECT COUNT(*) FROM message_embeds WHERE image_key = $1) + \
                     (SELECT COUNT(*) FROM link_previews WHERE image_key = $1) AS BIGINT)",
                )
                .bind(key)
                .fetch_one(self.r())
                .await?;
                Ok(n > 0)
            }
        }
    };
}

embeds_impl!(SqliteStore, sqlx::sqlite::SqliteRow);
embeds_impl!(PostgresStore, sqlx::postgres::PgRow);
