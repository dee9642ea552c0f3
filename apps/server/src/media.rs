//! The media plane on this node: uploads streamed into the blob store
//! (`hearth-blobs`: `data_dir/blobs` or S3), their rows (`attachments`), the
//! image pipeline as a durable consumer of `chat.media.<id>` (one per
//! cluster, one retry, then dead letters), and collection of uploads never
//! sent.
//!
//! An upload is streamed to the blob store under `att/<id>` with the size
//! cap enforced while it arrives (nothing is buffered whole, a stopped or
//! oversized upload leaves nothing), its type is sniffed from its first bytes
//! (`hearth-media`), and a row is stored. Images the pipeline can decode are
//! announced on the log; the consumer strips the original's metadata (EXIF
//! GPS…) in place, writes a WebP preview to `prev/<id>.webp`, records width,
//! height and blurhash, and, when the file is already in a message, announces
//! MESSAGE_UPDATE. An "image" it cannot decode (corrupt, a bomb, a polyglot)
//! is marked undecodable and served as a download.
//!
//! Audio and video go through the same consumer when ffmpeg is installed
//! ([`crate::avprobe`]): their duration is recorded, and a video's poster
//! frame becomes its preview (width, height, blurhash) like an image's.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use hearth_blobs::{BlobError, BlobStore, ByteStream, DiskStore, S3Config, S3Store};
use hearth_bus::Envelope;
use hearth_bus::journal::{ConsumerConfig, Handler};
use hearth_media::{ImageLimits, SNIFF_LEN};
use hearth_store::{AttachmentProcessed, AttachmentRecord, StoreError};
use hearth_types::{AttachmentId, ChannelId, IdGenerator, UserId, now_ms};
use parking_lot::Mutex;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts};
use tracing::Instrument;

use crate::config::Config;
use crate::events::{EventKind, Subject};
use crate::metrics::Metrics;
use crate::state::Inner;

/// The image pipeline's consumer name (its cursor and dead letters).
pub const PIPELINE_CONSUMER: &str = "media-pipeline";

/// What an upload is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Message(ChannelId),
    Avatar,
    /// A community's icon (the uploader had MANAGE_COMMUNITY there).
    Icon,
}

impl Purpose {
    /// The `attachments.purpose` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Message(_) => "message",
            Purpose::Avatar => "avatar",
            Purpose::Icon => "icon",
        }
    }
}

/// Avatars and icons are stored as squares of at most this many pixels a side.
pub const SQUARE_EDGE: u32 = 512;

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the file is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    /// The client stopped sending before the body ended.
    #[error("the upload stopped before the end")]
    Stopped,
    #[error("{0}: {1}")]
    Invalid(&'static str, String),
    /// The uploader's quota (`media.user_quota_bytes`) would be passed.
    #[error("over the storage quota of {quota_bytes} bytes ({used_bytes} used)")]
    Quota { quota_bytes: u64, used_bytes: u64 },
    /// A chunk for another offset than the upload's current one.
    #[error("the upload is at offset {offset}")]
    Conflict { offset: u64 },
    /// The resumable upload is unknown, expired, cancelled or finished.
    #[error("no such upload")]
    Gone,
    #[error("blob store: {0}")]
    Blob(BlobError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub(crate) struct MediaMetrics {
    pub(crate) uploads: IntCounterVec,
    pub(crate) upload_bytes: IntCounter,
    /// Resumable uploads' chunks by result.
    pub(crate) chunks: IntCounterVec,
    pipeline: IntCounterVec,
    pipeline_seconds: Histogram,
    pub(crate) collected: IntCounter,
}

impl MediaMetrics {
    fn new(metrics: &Metrics) -> MediaMetrics {
        let reg = |c: Box<dyn prometheus::core::Collector>| {
            if let Err(e) = metrics.registry().register(c) {
                tracing::warn!(error = %e, "registering a media metric");
            }
        };
        let m = MediaMetrics {
            uploads: IntCounterVec::new(
                Opts::new("hearth_media_uploads_total", "Uploads by result"),
                &["result"],
            )
            .unwrap_or_else(|e| unreachable!("static metric definition: {e}")),
            upload_bytes: IntCounter::new(
                "hearth_media_upload_bytes_total",
                "Bytes stored by uploads",
            )
            .unwrap_or_else(|e| unreachable!("static metric definition: {e}")),
            chunks: IntCounterVec::new(
                Opts::new(
                    "hearth_media_upload_chunks_total",
                    "Resumable upload chunks by result",
                ),
                &["result"],
            )
            .unwrap_or_else(|e| unreachable!("static metric definition: {e}")),
            pipeline: IntCounterVec::new(
                Opts::new("hearth_media_pipeline_total", "Images processed by result"),
                &["result"],
            )
            .unwrap_or_else(|e| unreachable!("static metric definition: {e}")),
            pipeline_seconds: Histogram::with_opts(
                HistogramOpts::new("hearth_media_pipeline_seconds", "Time to process one image")
                    .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            )
            .unwrap_or_else(|e| unreachable!("static metric definition: {e}")),
            collected: IntCounter::new(
                "hearth_media_collected_total",
                "Unsent uploads deleted after their time to live",
            )
            .unwrap_or_else(|e| unreachable!("static metric definition: {e}")),
        };
        reg(Box::new(m.uploads.clone()));
        reg(Box::new(m.upload_bytes.clone()));
        reg(Box::new(m.chunks.clone()));
        reg(Box::new(m.pipeline.clone()));
        reg(Box::new(m.pipeline_seconds.clone()));
        reg(Box::new(m.collected.clone()));
        m
    }
}

pub struct Media {
    pub blobs: Arc<dyn BlobStore>,
    pub max_upload_bytes: u64,
    /// `media.user_quota_bytes`; 0 is no limit.
    pub quota_bytes: u64,
    /// The largest chunk of a resumable upload.
    pub chunk_max_bytes: u64,
    pub(crate) ttl: Duration,
    /// How long a deleted message's files are kept.
    grace: Duration,
    limits: ImageLimits,
    /// ffprobe and ffmpeg, when configured and installed.
    av: Option<crate::avprobe::AvTools>,
    /// Where audio and video are copied for the tools to read.
    scratch: std::path::PathBuf,
    pub(crate) ids: Arc<IdGenerator>,
    pub(crate) metrics: MediaMetrics,
    consumer: Mutex<Option<hearth_bus::Consumer>>,
    /// Hot small files (previews, avatars, icons) in memory and Redis.
    pub hot: crate::hot_files::HotFiles,
}

/// The blob store the configuration names.
pub async fn open_blobs(cfg: &Config) -> Result<Arc<dyn BlobStore>, BlobError> {
    let m = &cfg.media;
    Ok(match m.blob_backend.as_str() {
        "s3" => Arc::new(S3Store::new(&S3Config {
            bucket: m.s3_bucket.clone(),
            endpoint: (!m.s3_endpoint.is_empty()).then(|| m.s3_endpoint.clone()),
            region: m.s3_region.clone(),
            access_key_id: m.s3_access_key_id.clone(),
            secret_access_key: m.s3_secret_access_key.0.clone(),
            allow_http: m.s3_allow_http,
        })?),
        _ => Arc::new(DiskStore::open(cfg.data_dir.join("blobs")).await?),
    })
}

pub fn blob_key(id: AttachmentId) -> String {
    format!("att/{id}")
}

fn preview_key(id: AttachmentId) -> String {
    format!("prev/{id}.webp")
}

pub(crate) fn one_chunk(bytes: Vec<u8>) -> ByteStream<'static> {
    futures::stream::once(async move { Ok(Bytes::from(bytes)) }).boxed()
}

impl Media {
    pub fn new(
        cfg: &Config,
        blobs: Arc<dyn BlobStore>,
        ids: Arc<IdGenerator>,
        metrics: &Metrics,
        redis: Option<&hearth_state::RedisConnection>,
    ) -> Media {
        Media {
            blobs,
            max_upload_bytes: cfg.media.max_upload_bytes,
            quota_bytes: cfg.media.user_quota_bytes,
            chunk_max_bytes: cfg.media.upload_chunk_max_bytes,
            hot: crate::hot_files::HotFiles::new(&cfg.media, redis, metrics),
            ttl: Duration::from_secs(cfg.media.upload_ttl_secs),
            grace: Duration::from_secs(cfg.media.deleted_file_grace_secs),
            limits: ImageLimits::default(),
            av: {
                let av = crate::avprobe::AvTools::find(&cfg.media.ffmpeg);
                if av.is_none() && !cfg.media.ffmpeg.trim().is_empty() {
                    tracing::info!(ffmpeg = %cfg.media.ffmpeg, "ffmpeg or ffprobe not found: audio and video get no duration or poster");
                }
                av
            },
            scratch: cfg.data_dir.join("tmp"),
            ids,
            metrics: MediaMetrics::new(metrics),
            consumer: Mutex::new(None),
        }
    }

    /// Starts the pipeline's durable consumer and the collector.
    pub async fn start(state: &crate::state::AppState) -> Result<(), String> {
        let handler = Arc::new(Pipeline {
            state: Arc::downgrade(&state.0),
        });
        let consumer = state
            .bus
            .consume(
                ConsumerConfig::new(PIPELINE_CONSUMER, &["chat.media."]),
                handler,
            )
            .await
            .map_err(|e| e.to_string())?;
        *state.media.consumer.lock() = Some(consumer);
        spawn_collector(
            Arc::downgrade(&state.0),
            state.media.ttl.min(state.media.grace),
        );
        Ok(())
    }

    /// Streams `body` into the blob store and records it. The caller has
    /// checked the uploader may upload there.
    #[tracing::instrument(skip_all, fields(uploader = %uploader, purpose = ?purpose))]
    pub async fn upload(
        &self,
        state: &Inner,
        uploader: UserId,
        purpose: Purpose,
        filename: &str,
        declared_type: &str,
        body: ByteStream<'_>,
    ) -> Result<AttachmentRecord, UploadError> {
        let (room, used) = self.quota_room(state, uploader).await?;
        let cap = self.max_upload_bytes.min(room);
        let id = AttachmentId(self.ids.next().0);
        let key = blob_key(id);
        // The first bytes, for the type: kept as they stream past.
        let head = Arc::new(Mutex::new(Vec::with_capacity(SNIFF_LEN)));
        let seen = head.clone();
        let body = body
            .inspect(move |chunk| {
                if let Ok(b) = chunk {
                    let mut h = seen.lock();
                    let want = SNIFF_LEN.saturating_sub(h.len()).min(b.len());
                    h.extend_from_slice(&b[..want]);
                }
            })
            .boxed();
        let stored = match self.blobs.put(&key, body, cap).await {
            Ok(s) => s,
            Err(e) => {
                let (result, err) = match e {
                    BlobError::TooLarge { limit } if limit < self.max_upload_bytes => (
                        "over_quota",
                        UploadError::Quota {
                            quota_bytes: self.quota_bytes,
                            used_bytes: used,
                        },
                    ),
                    BlobError::TooLarge { limit } => ("too_large", UploadError::TooLarge { limit }),
                    BlobError::Source(cause) => {
                        tracing::debug!(error = %cause, "upload stopped");
                        ("stopped", UploadError::Stopped)
                    }
                    other => ("error", UploadError::Blob(other)),
                };
                self.metrics.uploads.with_label_values(&[result]).inc();
                return Err(err);
            }
        };
        if stored.size == 0 {
            // Nothing to show or keep; refused rather than stored.
            let _ = self.blobs.delete(&key).await;
            self.metrics.uploads.with_label_values(&["empty"]).inc();
            return Err(UploadError::Invalid("file", "the file is empty".into()));
        }
        let sniffed = hearth_media::sniff(&head.lock());
        if sniffed.mime != declared_type {
            tracing::info!(%id, declared = declared_type, sniffed = sniffed.mime, "declared type differs from the content");
        }
        let rec = AttachmentRecord {
            id,
            uploader_id: uploader,
            channel_id: match purpose {
                Purpose::Message(c) => Some(c),
                Purpose::Avatar | Purpose::Icon => None,
            },
            purpose: purpose.as_str().into(),
            filename: hearth_media::sanitize_filename(filename),
            declared_type: declared_type.chars().take(255).collect(),
            content_type: sniffed.mime.to_string(),
            size: stored.size as i64,
            sha256: stored.sha256,
            blob_key: key.clone(),
            width: None,
            height: None,
            blurhash: None,
            preview_key: None,
            undecodable: false,
            message_id: None,
            created_at: now_ms(),
            duration_ms: None,
        };
        if let Err(e) = state.store.insert_attachment(&rec).await {
            let _ = self.blobs.delete(&key).await;
            return Err(e.into());
        }
        self.metrics.uploads.with_label_values(&["stored"]).inc();
        self.metrics.upload_bytes.inc_by(stored.size);
        if self.wants_pipeline(&sniffed) {
            state.publisher.publish_event(
                EventKind::MediaUploaded,
                Subject::Media(id),
                serde_json::json!({ "id": id.to_string() }),
            );
        }
        Ok(rec)
    }

    /// How many more bytes `user` may store, and how many they use; refused
    /// at once when nothing is left. `u64::MAX` room without a quota.
    pub async fn quota_room(&self, state: &Inner, user: UserId) -> Result<(u64, u64), UploadError> {
        if self.quota_bytes == 0 {
            return Ok((u64::MAX, 0));
        }
        let used = state.store.storage_used(user).await?.max(0) as u64;
        if used >= self.quota_bytes {
            self.metrics
                .uploads
                .with_label_values(&["over_quota"])
                .inc();
            return Err(UploadError::Quota {
                quota_bytes: self.quota_bytes,
                used_bytes: used,
            });
        }
        Ok((self.quota_bytes - used, used))
    }

    /// Stores an avatar or a community icon: `source` (at most
    /// `max_upload_bytes`, read whole by the caller: decoding needs it)
    /// decoded within the image limits, cut to the square `crop` selects
    /// (the centred square without one), scaled to at most
    /// [`SQUARE_EDGE`] a side and re-encoded as lossless WebP, so no
    /// metadata of the original is kept. Settled at once: no pipeline run.
    pub async fn upload_square(
        &self,
        state: &Inner,
        uploader: UserId,
        purpose: Purpose,
        source: Vec<u8>,
        crop: Option<hearth_media::Crop>,
    ) -> Result<AttachmentRecord, UploadError> {
        if source.is_empty() {
            return Err(UploadError::Invalid("file", "the file is empty".into()));
        }
        let (room, used) = self.quota_room(state, uploader).await?;
        let limits = self.limits;
        let square = tokio::task::spawn_blocking(move || {
            hearth_media::square_image(&source, crop, SQUARE_EDGE, &limits)
        })
        .await
        .map_err(|e| UploadError::Invalid("file", format!("the image task failed: {e}")))?
        .map_err(|e| match e {
            hearth_media::MediaError::BadCrop(reason) => UploadError::Invalid("crop", reason),
            other => UploadError::Invalid(
                "file",
                format!("an image (PNG, JPEG, GIF or WebP) is needed: {other}"),
            ),
        })?;
        let len = square.webp.len() as u64;
        if len > room {
            self.metrics
                .uploads
                .with_label_values(&["over_quota"])
                .inc();
            return Err(UploadError::Quota {
                quota_bytes: self.quota_bytes,
                used_bytes: used,
            });
        }
        let id = AttachmentId(self.ids.next().0);
        let key = blob_key(id);
        let stored = self
            .blobs
            .put(&key, one_chunk(square.webp), len)
            .await
            .map_err(UploadError::Blob)?;
        let side = square.side as i32;
        let rec = AttachmentRecord {
            id,
            uploader_id: uploader,
            channel_id: None,
            purpose: purpose.as_str().into(),
            filename: format!("{}.webp", purpose.as_str()),
            declared_type: "image/webp".into(),
            content_type: "image/webp".into(),
            size: stored.size as i64,
            sha256: stored.sha256,
            blob_key: key.clone(),
            width: Some(side),
            height: Some(side),
            blurhash: None,
            preview_key: None,
            undecodable: false,
            message_id: None,
            created_at: now_ms(),
            duration_ms: None,
        };
        if let Err(e) = state.store.insert_attachment(&rec).await {
            let _ = self.blobs.delete(&key).await;
            return Err(e.into());
        }
        self.metrics.uploads.with_label_values(&["stored"]).inc();
        self.metrics.upload_bytes.inc_by(stored.size);
        Ok(rec)
    }

    /// Whether the pipeline has work for a file of this type: an image it
    /// decodes, or audio and video when the tools are here.
    pub(crate) fn wants_pipeline(&self, sniffed: &hearth_media::Sniffed) -> bool {
        sniffed.is_decodable_image()
            || (self.av.is_some() && crate::avprobe::demuxer(sniffed.mime).is_some())
    }

    /// Processes one stored image (idempotent: a processed one is left alone).
    async fn process(&self, state: &Inner, id: AttachmentId) -> Result<(), String> {
        let Some(rec) = state
            .store
            .attachment(id)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(()); // collected meanwhile
        };
        if rec.preview_key.is_some() || rec.undecodable || rec.duration_ms.is_some() {
            return Ok(());
        }
        let started = Instant::now();
        if crate::avprobe::demuxer(&rec.content_type).is_some() {
            return self.process_av(state, &rec, started).await;
        }
        let blob = match self.blobs.get(&rec.blob_key, None).await {
            Ok(b) => b,
            Err(BlobError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        };
        // Whole in memory: decoding needs it, and it is at most the upload cap.
        let mut bytes = Vec::with_capacity(blob.size.min(self.max_upload_bytes) as usize);
        let mut stream = blob.stream;
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
        }
        let limits = self.limits;
        let (stripped, processed) = tokio::task::spawn_blocking(move || {
            let processed = hearth_media::process_image(&bytes, &limits);
            (hearth_media::strip_metadata(&bytes), processed)
        })
        .await
        .map_err(|e| format!("the image task failed: {e}"))?;
        let mut outcome = AttachmentProcessed::default();
        match processed {
            Ok(p) => {
                if let Some(clean) = stripped {
                    let len = clean.len() as u64;
                    let put = self
                        .blobs
                        .put(&rec.blob_key, one_chunk(clean), len)
                        .await
                        .map_err(|e| e.to_string())?;
                    outcome.size_sha256 = Some((put.size as i64, put.sha256));
                }
                let pkey = preview_key(id);
                let len = p.preview_webp.len() as u64;
                self.blobs
                    .put(&pkey, one_chunk(p.preview_webp), len)
                    .await
                    .map_err(|e| e.to_string())?;
                outcome.width = Some(p.width as i32);
                outcome.height = Some(p.height as i32);
                outcome.blurhash = Some(p.blurhash);
                outcome.preview_key = Some(pkey);
                self.metrics.pipeline.with_label_values(&["ok"]).inc();
            }
            Err(e) => {
                tracing::info!(%id, error = %e, "an upload sniffed as an image does not decode");
                outcome.undecodable = true;
                self.metrics
                    .pipeline
                    .with_label_values(&["undecodable"])
                    .inc();
            }
        }
        state
            .store
            .set_attachment_processed(id, &outcome)
            .await
            .map_err(|e| e.to_string())?;
        self.metrics
            .pipeline_seconds
            .observe(started.elapsed().as_secs_f64());
        // Read again: a send may have claimed it while it was processed.
        self.announce(state, id).await
    }

    /// Audio and video: the tools read a copy on local disk (the blob may be
    /// in S3); the duration, and for video a poster as the preview.
    async fn process_av(
        &self,
        state: &Inner,
        rec: &AttachmentRecord,
        started: Instant,
    ) -> Result<(), String> {
        let Some(av) = &self.av else {
            return Ok(()); // no tools on this node: a plain file
        };
        let blob = match self.blobs.get(&rec.blob_key, None).await {
            Ok(b) => b,
            Err(BlobError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        };
        tokio::fs::create_dir_all(&self.scratch)
            .await
            .map_err(|e| e.to_string())?;
        let copy = Scratch(self.scratch.join(format!("av-{}", rec.id)));
        {
            let mut file = tokio::fs::File::create(&copy.0)
                .await
                .map_err(|e| e.to_string())?;
            let mut stream = blob.stream;
            while let Some(chunk) = stream.next().await {
                tokio::io::AsyncWriteExt::write_all(&mut file, &chunk.map_err(|e| e.to_string())?)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            tokio::io::AsyncWriteExt::flush(&mut file)
                .await
                .map_err(|e| e.to_string())?;
        }
        let facts = match av.probe(&copy.0, &rec.content_type).await {
            Ok(f) => f,
            Err(e) => {
                // Not the pipeline's failure: the file stays a plain file.
                tracing::info!(id = %rec.id, error = %e, "audio or video the tools could not read");
                self.metrics
                    .pipeline
                    .with_label_values(&["unreadable_av"])
                    .inc();
                return Ok(());
            }
        };
        drop(copy);
        let mut outcome = AttachmentProcessed {
            duration_ms: Some(facts.duration_ms.unwrap_or(0)),
            width: facts.width.map(|w| w as i32),
            height: facts.height.map(|h| h as i32),
            ..AttachmentProcessed::default()
        };
        if let Some(png) = facts.poster_png {
            let limits = self.limits;
            let poster =
                tokio::task::spawn_blocking(move || hearth_media::process_image(&png, &limits))
                    .await
                    .map_err(|e| format!("the poster task failed: {e}"))?;
            match poster {
                Ok(p) => {
                    let pkey = preview_key(rec.id);
                    let len = p.preview_webp.len() as u64;
                    self.blobs
                        .put(&pkey, one_chunk(p.preview_webp), len)
                        .await
                        .map_err(|e| e.to_string())?;
                    outcome.blurhash = Some(p.blurhash);
                    outcome.preview_key = Some(pkey);
                    if outcome.width.is_none() {
                        outcome.width = Some(p.width as i32);
                        outcome.height = Some(p.height as i32);
                    }
                }
                Err(e) => {
                    tracing::info!(id = %rec.id, error = %e, "a poster frame that does not decode")
                }
            }
        }
        state
            .store
            .set_attachment_processed(rec.id, &outcome)
            .await
            .map_err(|e| e.to_string())?;
        self.metrics.pipeline.with_label_values(&["av"]).inc();
        self.metrics
            .pipeline_seconds
            .observe(started.elapsed().as_secs_f64());
        self.announce(state, rec.id).await
    }

    /// MESSAGE_UPDATE for the message holding `id`, if a send has claimed it.
    async fn announce(&self, state: &Inner, id: AttachmentId) -> Result<(), String> {
        if let Some(now) = state
            .store
            .attachment(id)
            .await
            .map_err(|e| e.to_string())?
            && let (Some(channel), Some(message)) = (now.channel_id, now.message_id)
        {
            state
                .chat
                .announce_files_changed(channel, message)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Deletes uploads past their time to live, and the files of deleted
    /// messages, channels and communities past the grace period (blob,
    /// preview, row).
    async fn collect(&self, state: &Inner) -> Result<u64, String> {
        let unsent_before = now_ms() - self.ttl.as_millis() as i64;
        let orphaned_before = now_ms() - self.grace.as_millis() as i64;
        let mut n = 0;
        loop {
            let batch = state
                .store
                .expired_uploads(now_ms(), 200)
                .await
                .map_err(|e| e.to_string())?;
            if batch.is_empty() {
                break;
            }
            for u in batch {
                self.discard_upload(state, u.id).await?;
                self.metrics.collected.inc();
                n += 1;
            }
        }
        for orphans in [false, true] {
            loop {
                let batch = if orphans {
                    state.store.orphaned_attachments(orphaned_before, 200).await
                } else {
                    state.store.expired_attachments(unsent_before, 200).await
                }
                .map_err(|e| e.to_string())?;
                if batch.is_empty() {
                    break;
                }
                for a in batch {
                    // An unsent upload leaves reach before its bytes go: a
                    // send racing the collector either claims it first (and
                    // it stays) or finds it gone, never a file without bytes.
                    if !orphans
                        && !state
                            .store
                            .withdraw_unsent_attachment(a.id)
                            .await
                            .map_err(|e| e.to_string())?
                    {
                        continue;
                    }
                    self.delete(state, &a).await?;
                    self.metrics.collected.inc();
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Deletes one upload: its blob, its preview, then its row (so a failure
    /// midway leaves a row to find and delete again, never a lost blob).
    pub async fn delete(&self, state: &Inner, a: &AttachmentRecord) -> Result<(), String> {
        self.blobs
            .delete(&a.blob_key)
            .await
            .map_err(|e| e.to_string())?;
        self.hot.forget(&a.blob_key).await;
        if let Some(p) = &a.preview_key {
            self.blobs.delete(p).await.map_err(|e| e.to_string())?;
            self.hot.forget(p).await;
        }
        state
            .store
            .delete_attachment(a.id)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// Deletes the upload `id` if it exists (an erased account's avatar).
pub async fn delete_attachment(
    state: &crate::state::AppState,
    id: AttachmentId,
) -> Result<(), String> {
    match state.store.attachment(id).await {
        Ok(Some(a)) => state.media.delete(&state.0, &a).await,
        Ok(None) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// A scratch copy, removed however processing ends.
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The durable consumer's handler.
struct Pipeline {
    state: Weak<Inner>,
}

#[async_trait]
impl Handler for Pipeline {
    async fn handle(&self, _position: u64, event: &Envelope) -> Result<(), String> {
        let Ok(Subject::Media(id)) = event.subject.parse::<Subject>() else {
            return Ok(());
        };
        let Some(state) = self.state.upgrade() else {
            return Err("the server is stopping".into());
        };
        let span = tracing::info_span!("media.pipeline", %id);
        state
            .media
            .process(&state, id)
            .instrument(span)
            .await
            .inspect_err(|e| {
                state
                    .media
                    .metrics
                    .pipeline
                    .with_label_values(&["error"])
                    .inc();
                tracing::warn!(%id, error = %e, "image pipeline failed");
            })
    }
}

/// Every node sweeps (deleting twice is harmless); at most every 10 minutes,
/// at least twice per time to live.
fn spawn_collector(state: Weak<Inner>, ttl: Duration) {
    let every = (ttl / 2).clamp(Duration::from_secs(1), Duration::from_secs(600));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(state) = state.upgrade() else { return };
            match state.media.collect(&state).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(n, "collected unsent uploads and deleted messages' files"),
                Err(e) => tracing::warn!(error = %e, "collecting files"),
            }
        }
    });
}
