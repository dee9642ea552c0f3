//! The blob-storage seam: one trait ([`BlobStore`]) and two backends, the local disk
//! ([`DiskStore`], the embedded default, under `data_dir/blobs`) and S3-compatible object
//! storage ([`S3Store`], through `object_store`).
//!
//! **Knows nothing of HTTP, attachments, permissions or the database**: it stores opaque
//! bytes under keys the caller chooses. Invariants every backend keeps (one contract suite,
//! `tests/contract.rs`, runs against both):
//! - a put streams: it never holds more than one part (8 MiB on S3, 64 KiB on disk) in
//!   memory, stops as soon as the size cap is passed, and leaves nothing behind when it
//!   fails (the upload stopped, the cap was passed) — the key stays absent;
//! - a put is all-or-nothing: readers see the old object or the complete new one;
//! - reads stream too, whole or one byte range.

mod disk;
mod s3;

use std::ops::Range;
use std::time::SystemTime;

use bytes::Bytes;
use futures::stream::BoxStream;

pub use disk::DiskStore;
pub use s3::{S3Config, S3Store};

/// Installs ring as the process's rustls crypto provider (idempotent).
///
/// The S3 client's reqwest 0.13 is built with `rustls-no-provider` (so no
/// aws-lc, a C build), and Cargo unifies that feature into every reqwest
/// 0.13 in the binary, the OTLP exporter's included: any of them panics on
/// its first client unless a provider is installed. The server calls this
/// first thing, before telemetry or storage make a client.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A stream of body chunks from the client; an `Err` means the upload stopped.
pub type ByteStream<'a> = BoxStream<'a, Result<Bytes, std::io::Error>>;

/// What a read returns: the chunks of the object (or of the requested range).
pub type BlobStream = BoxStream<'static, Result<Bytes, BlobError>>;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// More than the cap arrived; nothing was stored.
    #[error("the blob is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("no blob at {0}")]
    NotFound(String),
    /// A key outside the allowed alphabet (`[A-Za-z0-9._-]` segments joined by `/`).
    #[error("invalid blob key {0:?}")]
    InvalidKey(String),
    /// A range that does not fit the object (empty, or starting past its end).
    #[error("unsatisfiable range {start}..{end} of {size} bytes")]
    Range { start: u64, end: u64, size: u64 },
    /// The source stream failed (the client went away halfway); nothing was stored.
    #[error("the upload stopped: {0}")]
    Source(std::io::Error),
    /// The backend failed (disk, network, S3).
    #[error("blob backend: {0}")]
    Backend(String),
}

/// What a completed put stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub size: u64,
    /// Lowercase hex SHA-256 of the whole content.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    pub key: String,
    pub size: u64,
    pub last_modified: SystemTime,
}

pub struct Blob {
    /// The object's whole size.
    pub size: u64,
    /// The bytes `stream` yields.
    pub range: Range<u64>,
    pub stream: BlobStream,
}

#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Streams `body` into `key`, refusing with [`BlobError::TooLarge`] once more than
    /// `max_size` bytes arrived. Replaces an existing object atomically.
    async fn put(
        &self,
        key: &str,
        body: ByteStream<'_>,
        max_size: u64,
    ) -> Result<Stored, BlobError>;
    /// The whole object, or `range` of it (end exclusive; an end past the object is cut).
    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<Blob, BlobError>;
    async fn head(&self, key: &str) -> Result<BlobMeta, BlobError>;
    /// Deleting an absent key is not an error (collection may run twice).
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
    /// Every object whose key starts with `prefix` (a whole segment prefix such as `att/`),
    /// for garbage collection.
    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>, BlobError>;
    /// A short name for logs and metrics (`disk`, `s3`).
    fn kind(&self) -> &'static str;
}

/// Keys are `/`-joined segments of `[A-Za-z0-9._-]`, none empty, `.` or `..`: they map to
/// paths on disk, so nothing may climb out of the root.
pub fn validate_key(key: &str) -> Result<(), BlobError> {
    let ok = !key.is_empty()
        && key.len() <= 512
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
    if ok {
        Ok(())
    } else {
        Err(BlobError::InvalidKey(key.to_owned()))
    }
}

/// Clamps a requested range to an object of `size` bytes; empty or past-the-end ranges
/// are refused the same way on every backend.
pub(crate) fn clamp_range(range: Range<u64>, size: u64) -> Result<Range<u64>, BlobError> {
    let end = range.end.min(size);
    if range.start >= end {
        return Err(BlobError::Range {
            start: range.start,
            end: range.end,
            size,
        });
    }
    Ok(range.start..end)
}

pub(crate) fn hex_digest(hasher: sha2::Sha256) -> String {
    use sha2::Digest;
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_climb_out() {
        for bad in [
            "", "/a", "a/", "a//b", "../a", "a/../b", "a/./b", "a b", "a\\b", "ä",
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "att/123", "previews/1.webp", "x-y_z.2"] {
            assert!(validate_key(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn ranges_are_clamped_or_refused() {
        assert_eq!(clamp_range(0..10, 5).ok(), Some(0..5));
        assert_eq!(clamp_range(2..4, 5).ok(), Some(2..4));
        assert!(clamp_range(5..6, 5).is_err());
        assert!(clamp_range(3..3, 5).is_err());
    }
}
