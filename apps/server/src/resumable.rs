//! Resumable uploads (issue #11): a file sent in chunks, each its own
//! request, any of which may fail and be sent again, to any node.
//!
//! State lives where every node sees it: the upload's row (`uploads`:
//! declared size, bytes `received`) in the store, its bytes in the blob
//! store as one object per accepted chunk (`upl/<id>/<start>-<random>`,
//! recorded in `upload_parts`). A chunk is all-or-nothing: it is streamed
//! into its own object (never held whole; at most `upload_chunk_max_bytes`
//! and never past the declared size), and only then counted, by a
//! conditional UPDATE from the offset it started at — so of two requests
//! for one offset exactly one counts, and the loser deletes its object.
//! A chunk that stops halfway leaves nothing: the client asks for the
//! offset (`HEAD`) and sends that chunk again.
//!
//! On the last byte the parts are concatenated, streaming, into `att/<id>`
//! (the attachment's id is the upload's), the attachment row is inserted
//! and the upload's rows removed in one transaction, then the parts'
//! objects are deleted. Everything after that is what a multipart upload
//! gets: the sniffed type, MEDIA_UPLOADED for the image pipeline, claims by
//! `attachment_ids`. A finish that died halfway is run again by a chunk
//! request at the final offset (idempotent). Unfinished uploads expire
//! after `media.upload_ttl_secs` and the collector removes them, parts and
//! all; so does `DELETE`.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use hearth_blobs::{BlobError, ByteStream};
use hearth_media::SNIFF_LEN;
use hearth_store::{AttachmentRecord, UploadRecord};
use hearth_types::{AttachmentId, ChannelId, UserId, now_ms};
use parking_lot::Mutex;

use crate::events::{EventKind, Subject};
use crate::media::{Media, UploadError, blob_key};
use crate::state::Inner;

/// What a chunk did.
#[derive(Debug)]
pub enum Chunk {
    /// Accepted; the upload is now at this offset.
    Progress(u64),
    /// The last byte arrived: the finished file.
    Complete(Box<AttachmentRecord>),
}

fn parts_prefix(id: AttachmentId) -> String {
    format!("upl/{id}/")
}

impl Media {
    /// Starts a resumable upload of `size` bytes to `channel` (the caller
    /// checked the permissions). Refused when `size` is over the upload cap
    /// or would pass the uploader's quota: the declared size counts at once.
    pub async fn create_upload(
        &self,
        state: &Inner,
        uploader: UserId,
        channel: ChannelId,
        filename: &str,
        declared_type: &str,
        size: u64,
    ) -> Result<UploadRecord, UploadError> {
        if size == 0 {
            return Err(UploadError::Invalid("size", "at least 1 byte".into()));
        }
        if size > self.max_upload_bytes {
            return Err(UploadError::TooLarge {
                limit: self.max_upload_bytes,
            });
        }
        let (room, used) = self.quota_room(state, uploader).await?;
        if size > room {
            self.metrics
                .uploads
                .with_label_values(&["over_quota"])
                .inc();
            return Err(UploadError::Quota {
                quota_bytes: self.quota_bytes,
                used_bytes: used,
            });
        }
        let now = now_ms();
        let up = UploadRecord {
            id: AttachmentId(self.ids.next().0),
            uploader_id: uploader,
            channel_id: channel,
            filename: hearth_media::sanitize_filename(filename),
            declared_type: declared_type.chars().take(255).collect(),
            size: size as i64,
            received: 0,
            created_at: now,
            expires_at: now + self.ttl.as_millis() as i64,
        };
        state.store.create_upload(&up).await?;
        Ok(up)
    }

    /// `user`'s upload `id` if it is live; [`UploadError::Gone`] for anyone
    /// else's, an unknown, expired or finished one (one answer for all).
    pub async fn live_upload(
        &self,
        state: &Inner,
        user: UserId,
        id: AttachmentId,
    ) -> Result<UploadRecord, UploadError> {
        match state.store.upload(id).await? {
            Some(u) if u.uploader_id == user && u.expires_at > now_ms() => Ok(u),
            _ => Err(UploadError::Gone),
        }
    }

    /// Stores the chunk starting at `offset` (see the module's rules).
    #[tracing::instrument(skip_all, fields(upload = %up.id, offset))]
    pub async fn upload_chunk(
        &self,
        state: &Inner,
        up: &UploadRecord,
        offset: u64,
        body: ByteStream<'_>,
    ) -> Result<Chunk, UploadError> {
        let (received, size) = (up.received as u64, up.size as u64);
        if offset != received {
            self.metrics.chunks.with_label_values(&["conflict"]).inc();
            return Err(UploadError::Conflict { offset: received });
        }
        if received == size {
            // Every byte is here but the finish did not happen (a node died
            // in it): do it now.
            return self
                .finish(state, up)
                .await
                .map(|a| Chunk::Complete(Box::new(a)));
        }
        let cap = self.chunk_max_bytes.min(size - received);
        let key = format!(
            "{}{offset:020}-{:016x}",
            parts_prefix(up.id),
            rand::random::<u64>()
        );
        let stored = match self.blobs.put(&key, body, cap).await {
            Ok(s) => s,
            Err(e) => {
                let (result, err) = match e {
                    BlobError::TooLarge { limit } => ("too_large", UploadError::TooLarge { limit }),
                    BlobError::Source(cause) => {
                        tracing::debug!(error = %cause, "chunk stopped");
                        ("stopped", UploadError::Stopped)
                    }
                    other => ("error", UploadError::Blob(other)),
                };
                self.metrics.chunks.with_label_values(&[result]).inc();
                return Err(err);
            }
        };
        if stored.size == 0 {
            let _ = self.blobs.delete(&key).await;
            return Ok(Chunk::Progress(received));
        }
        let counted = state
            .store
            .add_upload_part(up.id, offset as i64, stored.size as i64, &key)
            .await;
        let now_at = match counted {
            Ok(Some(at)) => at as u64,
            Ok(None) => {
                // Another request took this offset first, or the upload went.
                let _ = self.blobs.delete(&key).await;
                self.metrics.chunks.with_label_values(&["conflict"]).inc();
                return match state.store.upload(up.id).await? {
                    Some(now) => Err(UploadError::Conflict {
                        offset: now.received as u64,
                    }),
                    None => Err(UploadError::Gone),
                };
            }
            Err(e) => {
                let _ = self.blobs.delete(&key).await;
                return Err(e.into());
            }
        };
        self.metrics.chunks.with_label_values(&["stored"]).inc();
        if now_at < size {
            return Ok(Chunk::Progress(now_at));
        }
        let done = UploadRecord {
            received: now_at as i64,
            ..up.clone()
        };
        self.finish(state, &done)
            .await
            .map(|a| Chunk::Complete(Box::new(a)))
    }

    /// Concatenates the parts into the attachment's blob and records it.
    async fn finish(
        &self,
        state: &Inner,
        up: &UploadRecord,
    ) -> Result<AttachmentRecord, UploadError> {
        let parts = state.store.upload_parts(up.id).await?;
        let mut next = 0i64;
        for p in &parts {
            if p.start != next {
                return Err(UploadError::Blob(BlobError::Backend(format!(
                    "upload {}: a part starts at {} where {next} was expected",
                    up.id, p.start
                ))));
            }
            next += p.size;
        }
        if next != up.size {
            return Err(UploadError::Blob(BlobError::Backend(format!(
                "upload {}: parts hold {next} of {} bytes",
                up.id, up.size
            ))));
        }
        let blobs = self.blobs.clone();
        let head = Arc::new(Mutex::new(Vec::with_capacity(SNIFF_LEN)));
        let seen = head.clone();
        let keys: Vec<String> = parts.into_iter().map(|p| p.blob_key).collect();
        // Each part is read as a stream in turn: never more than one read
        // buffer (and the S3 put's one part) in memory.
        let body = futures::stream::iter(keys)
            .then(move |key| {
                let blobs = blobs.clone();
                async move { blobs.get(&key, None).await.map(|b| b.stream) }
            })
            .try_flatten()
            .map_err(|e| std::io::Error::other(e.to_string()))
            .inspect(move |chunk| {
                if let Ok(b) = chunk {
                    let mut h = seen.lock();
                    let want = SNIFF_LEN.saturating_sub(h.len()).min(b.len());
                    h.extend_from_slice(&b[..want]);
                }
            })
            .boxed();
        let key = blob_key(up.id);
        let stored = self
            .blobs
            .put(&key, body, up.size as u64)
            .await
            .map_err(UploadError::Blob)?;
        if stored.size != up.size as u64 {
            let _ = self.blobs.delete(&key).await;
            return Err(UploadError::Blob(BlobError::Backend(format!(
                "upload {}: concatenated {} of {} bytes",
                up.id, stored.size, up.size
            ))));
        }
        let sniffed = hearth_media::sniff(&head.lock());
        let rec = AttachmentRecord {
            id: up.id,
            uploader_id: up.uploader_id,
            channel_id: Some(up.channel_id),
            purpose: "message".into(),
            filename: up.filename.clone(),
            declared_type: up.declared_type.clone(),
            content_type: sniffed.mime.to_string(),
            size: stored.size as i64,
            sha256: stored.sha256,
            blob_key: key,
            width: None,
            height: None,
            blurhash: None,
            preview_key: None,
            undecodable: false,
            message_id: None,
            created_at: now_ms(),
            duration_ms: None,
        };
        state.store.finish_upload(up.id, &rec).await?;
        self.delete_parts(up.id).await;
        self.metrics.uploads.with_label_values(&["stored"]).inc();
        self.metrics.upload_bytes.inc_by(stored.size);
        if self.wants_pipeline(&sniffed) {
            state.publisher.publish_event(
                EventKind::MediaUploaded,
                Subject::Media(up.id),
                serde_json::json!({ "id": up.id.to_string() }),
            );
        }
        // A concurrent finish may have stored its row first: same bytes.
        Ok(state.store.attachment(up.id).await?.unwrap_or(rec))
    }

    /// Deletes every part object of `id` (best effort: logged).
    async fn delete_parts(&self, id: AttachmentId) {
        match self.blobs.list(&parts_prefix(id)).await {
            Ok(objects) => {
                for o in objects {
                    if let Err(e) = self.blobs.delete(&o.key).await {
                        tracing::warn!(key = o.key, error = %e, "deleting an upload part");
                    }
                }
            }
            Err(e) => tracing::warn!(upload = %id, error = %e, "listing an upload's parts"),
        }
    }

    /// Cancels (or collects) an unfinished upload: its parts' objects, its
    /// rows, then the parts again (a chunk racing the first sweep finds no
    /// row afterwards and deletes its own object; one that stored before
    /// the row went is caught by the second sweep).
    pub async fn discard_upload(&self, state: &Inner, id: AttachmentId) -> Result<(), String> {
        self.delete_parts(id).await;
        state
            .store
            .delete_upload(id)
            .await
            .map_err(|e| e.to_string())?;
        self.delete_parts(id).await;
        Ok(())
    }
}
