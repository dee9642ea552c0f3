//! S3-compatible object storage through `object_store`. A put goes up as one request when
//! it fits in one part and as a multipart upload of 8 MiB parts otherwise (aborted when
//! the source stops or the cap is passed, so no half object appears).

use std::ops::Range;
use std::sync::Arc;

use bytes::BytesMut;
use futures::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload};
use sha2::Digest;

use crate::{
    Blob, BlobError, BlobMeta, BlobStore, ByteStream, Stored, clamp_range, hex_digest, validate_key,
};

/// S3 parts must be at least 5 MiB (but the last); 8 MiB keeps the request count low
/// while bounding what one upload holds in memory.
const PART: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone, Default)]
pub struct S3Config {
    pub bucket: String,
    /// `None` for AWS itself; an URL for MinIO, moto, R2, ….
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Plain-HTTP endpoints (tests, a store on the same host).
    pub allow_http: bool,
}

#[derive(Debug, Clone)]
pub struct S3Store {
    inner: Arc<AmazonS3>,
}

fn backend(e: object_store::Error) -> BlobError {
    match e {
        object_store::Error::NotFound { path, .. } => BlobError::NotFound(path),
        other => BlobError::Backend(other.to_string()),
    }
}

impl S3Store {
    pub fn new(cfg: &S3Config) -> Result<Self, BlobError> {
        // reqwest is built without a bundled TLS provider (no aws-lc); ring is the one
        // compiled in, and installing it twice is harmless.
        crate::install_tls_provider();
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&cfg.bucket)
            .with_region(&cfg.region)
            .with_access_key_id(&cfg.access_key_id)
            .with_secret_access_key(&cfg.secret_access_key)
            .with_allow_http(cfg.allow_http);
        if let Some(endpoint) = &cfg.endpoint {
            // Path-style requests: S3-compatible servers rarely have per-bucket hostnames.
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        }
        let inner = builder.build().map_err(backend)?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    fn path(key: &str) -> Result<Path, BlobError> {
        validate_key(key)?;
        Path::parse(key).map_err(|_| BlobError::InvalidKey(key.to_owned()))
    }
}

#[async_trait::async_trait]
impl BlobStore for S3Store {
    async fn put(
        &self,
        key: &str,
        mut body: ByteStream<'_>,
        max_size: u64,
    ) -> Result<Stored, BlobError> {
        let path = Self::path(key)?;
        let mut hasher = sha2::Sha256::new();
        let mut size = 0u64;
        let mut buf = BytesMut::new();
        let mut upload: Option<Box<dyn object_store::MultipartUpload>> = None;
        let result: Result<(), BlobError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(BlobError::Source)?;
                size += chunk.len() as u64;
                if size > max_size {
                    return Err(BlobError::TooLarge { limit: max_size });
                }
                hasher.update(&chunk);
                buf.extend_from_slice(&chunk);
                while buf.len() >= PART {
                    let part = buf.split_to(PART).freeze();
                    if upload.is_none() {
                        upload = Some(self.inner.put_multipart(&path).await.map_err(backend)?);
                    }
                    if let Some(up) = upload.as_mut() {
                        up.put_part(PutPayload::from(part)).await.map_err(backend)?;
                    }
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            if let Some(mut up) = upload {
                if let Err(abort) = up.abort().await {
                    tracing::warn!(key, error = %abort, "aborting a multipart upload failed");
                }
            }
            return Err(e);
        }
        match upload {
            None => {
                self.inner
                    .put(&path, PutPayload::from(buf.freeze()))
                    .await
                    .map_err(backend)?;
            }
            Some(mut up) => {
                if !buf.is_empty() {
                    up.put_part(PutPayload::from(buf.freeze()))
                        .await
                        .map_err(backend)?;
                }
                up.complete().await.map_err(backend)?;
            }
        }
        Ok(Stored {
            size,
            sha256: hex_digest(hasher),
        })
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<Blob, BlobError> {
        let path = Self::path(key)?;
        // The size is needed to clamp and to answer Content-Range; one HEAD first keeps
        // every backend's range errors identical.
        let size = self.inner.head(&path).await.map_err(backend)?.size;
        let range = match range {
            Some(r) => clamp_range(r, size)?,
            None => 0..size,
        };
        if range.is_empty() {
            // A zero-byte object: S3 refuses a ranged GET of nothing.
            return Ok(Blob {
                size,
                range,
                stream: futures::stream::empty().boxed(),
            });
        }
        let opts = GetOptions {
            range: Some(GetRange::Bounded(range.clone())),
            ..Default::default()
        };
        let result = self.inner.get_opts(&path, opts).await.map_err(backend)?;
        let stream = result.into_stream().map(|r| r.map_err(backend)).boxed();
        Ok(Blob {
            size,
            range,
            stream,
        })
    }

    async fn head(&self, key: &str) -> Result<BlobMeta, BlobError> {
        let path = Self::path(key)?;
        let meta = self.inner.head(&path).await.map_err(backend)?;
        Ok(BlobMeta {
            key: key.to_owned(),
            size: meta.size,
            last_modified: meta.last_modified.into(),
        })
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        let path = Self::path(key)?;
        match self.inner.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(backend(e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>, BlobError> {
        // object_store lists by whole path segments; filter the last partial segment here.
        let dir = match prefix.rfind('/') {
            Some(i) => Some(Path::from(&prefix[..i])),
            None => None,
        };
        let mut stream = self.inner.list(dir.as_ref());
        let mut out = Vec::new();
        while let Some(meta) = stream.next().await {
            let meta = meta.map_err(backend)?;
            let key = meta.location.to_string();
            if key.starts_with(prefix) {
                out.push(BlobMeta {
                    key,
                    size: meta.size,
                    last_modified: meta.last_modified.into(),
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn kind(&self) -> &'static str {
        "s3"
    }
}
