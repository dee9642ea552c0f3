//! The local-disk backend: `root/<key>`, written to `root/.tmp/<random>` first and renamed
//! into place, so a reader never sees half a file and a failed upload leaves only a temp
//! file that is removed at once (or, after a crash, by [`DiskStore::open`]).

use std::io::SeekFrom;
use std::ops::Range;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::{
    Blob, BlobError, BlobMeta, BlobStore, ByteStream, Stored, clamp_range, hex_digest, validate_key,
};

const TMP: &str = ".tmp";
const READ_CHUNK: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct DiskStore {
    root: PathBuf,
}

fn io(e: std::io::Error) -> BlobError {
    BlobError::Backend(e.to_string())
}

impl DiskStore {
    /// Opens (creating) the store at `root` and clears temp files a crash left behind.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, BlobError> {
        let root = root.into();
        let tmp = root.join(TMP);
        if tokio::fs::try_exists(&tmp).await.map_err(io)? {
            tokio::fs::remove_dir_all(&tmp).await.map_err(io)?;
        }
        tokio::fs::create_dir_all(&tmp).await.map_err(io)?;
        Ok(Self { root })
    }

    fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }

    async fn write_tmp(
        &self,
        tmp: &Path,
        mut body: ByteStream<'_>,
        max_size: u64,
    ) -> Result<Stored, BlobError> {
        let mut file = tokio::fs::File::create(tmp).await.map_err(io)?;
        let mut hasher = sha2::Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(BlobError::Source)?;
            size += chunk.len() as u64;
            if size > max_size {
                return Err(BlobError::TooLarge { limit: max_size });
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(io)?;
        }
        // Durable before the rename makes it visible.
        file.sync_all().await.map_err(io)?;
        Ok(Stored {
            size,
            sha256: hex_digest(hasher),
        })
    }
}

#[async_trait::async_trait]
impl BlobStore for DiskStore {
    async fn put(
        &self,
        key: &str,
        body: ByteStream<'_>,
        max_size: u64,
    ) -> Result<Stored, BlobError> {
        let path = self.path(key)?;
        let tmp = self
            .root
            .join(TMP)
            .join(format!("{:016x}", rand::random::<u64>()));
        match self.write_tmp(&tmp, body, max_size).await {
            Ok(stored) => {
                if let Some(parent) = path.parent() {
                    tokio::fs::create_dir_all(parent).await.map_err(io)?;
                }
                tokio::fs::rename(&tmp, &path).await.map_err(io)?;
                Ok(stored)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                Err(e)
            }
        }
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<Blob, BlobError> {
        let path = self.path(key)?;
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound(key.to_owned()));
            }
            Err(e) => return Err(io(e)),
        };
        let size = file.metadata().await.map_err(io)?.len();
        let range = match range {
            Some(r) => clamp_range(r, size)?,
            None => 0..size,
        };
        file.seek(SeekFrom::Start(range.start)).await.map_err(io)?;
        let remaining = range.end - range.start;
        let stream =
            futures::stream::try_unfold((file, remaining), |(mut file, left)| async move {
                if left == 0 {
                    return Ok(None);
                }
                let want = (left as usize).min(READ_CHUNK);
                let mut buf = vec![0u8; want];
                let n = file.read(&mut buf).await.map_err(io)?;
                if n == 0 {
                    return Err(BlobError::Backend("file shrank while read".into()));
                }
                buf.truncate(n);
                Ok(Some((bytes::Bytes::from(buf), (file, left - n as u64))))
            });
        Ok(Blob {
            size,
            range,
            stream: stream.boxed(),
        })
    }

    async fn head(&self, key: &str) -> Result<BlobMeta, BlobError> {
        let path = self.path(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => Ok(BlobMeta {
                key: key.to_owned(),
                size: m.len(),
                last_modified: m.modified().map_err(io)?,
            }),
            Ok(_) => Err(BlobError::NotFound(key.to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(BlobError::NotFound(key.to_owned()))
            }
            Err(e) => Err(io(e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>, BlobError> {
        // Walk iteratively (no recursion in async fns); skip the temp directory.
        let mut out = Vec::new();
        let mut dirs = vec![(self.root.clone(), String::new())];
        while let Some((dir, rel)) = dirs.pop() {
            let mut entries = match tokio::fs::read_dir(&dir).await {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(e)),
            };
            while let Some(entry) = entries.next_entry().await.map_err(io)? {
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                if rel.is_empty() && name == TMP {
                    continue;
                }
                let key = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                let meta = entry.metadata().await.map_err(io)?;
                if meta.is_dir() {
                    // Only descend where keys under it could match the prefix.
                    let dir_key = format!("{key}/");
                    if dir_key.starts_with(prefix) || prefix.starts_with(&dir_key) {
                        dirs.push((entry.path(), key));
                    }
                } else if key.starts_with(prefix) {
                    out.push(BlobMeta {
                        key,
                        size: meta.len(),
                        last_modified: meta.modified().map_err(io)?,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn kind(&self) -> &'static str {
        "disk"
    }
}
