//! One contract suite for every blob backend: each test runs on the disk (a tempdir) and on
//! S3 (a real moto server, `scripts/moto.sh`, at `HEARTH_TEST_S3_URL`, default
//! `http://127.0.0.1:5055`; a test fails when it is not there), each in its own bucket.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use hearth_blobs::{BlobError, BlobStore, ByteStream, DiskStore, S3Config, S3Store};
use sha2::Digest;

const MIB: usize = 1024 * 1024;

/// Keeps the backend's resources alive for the test (the tempdir; the bucket is left to
/// moto, which keeps everything in memory).
struct Fixture {
    store: Arc<dyn BlobStore>,
    _dir: Option<tempfile::TempDir>,
}

async fn disk() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = DiskStore::open(dir.path().join("blobs"))
        .await
        .expect("open disk store");
    Fixture {
        store: Arc::new(store),
        _dir: Some(dir),
    }
}

pub fn s3_url() -> String {
    std::env::var("HEARTH_TEST_S3_URL").unwrap_or_else(|_| "http://127.0.0.1:5055".into())
}

/// Makes a bucket of its own on the test S3 server (moto takes an unsigned PUT).
pub async fn s3_bucket() -> S3Config {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = s3_url();
    let bucket = format!("hearth-test-{:016x}", rand::random::<u64>());
    let resp = reqwest::Client::new()
        .put(format!("{url}/{bucket}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("no S3 server at {url} (run scripts/moto.sh): {e}"));
    assert!(
        resp.status().is_success(),
        "creating bucket {bucket}: {}",
        resp.status()
    );
    S3Config {
        bucket,
        endpoint: Some(url),
        region: "us-east-1".into(),
        access_key_id: "test".into(),
        secret_access_key: "test".into(),
        allow_http: true,
    }
}

async fn s3() -> Fixture {
    let store = S3Store::new(&s3_bucket().await).expect("S3 store");
    Fixture {
        store: Arc::new(store),
        _dir: None,
    }
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod disk_backend { $(#[tokio::test] async fn $name() { super::$name(super::disk().await).await })* }
        mod s3_backend { $(#[tokio::test] async fn $name() { super::$name(super::s3().await).await })* }
    };
}

contract!(
    put_get_roundtrip,
    large_put_streams_in_parts,
    ranges,
    size_cap_refuses_and_leaves_nothing,
    stopped_upload_leaves_nothing,
    zero_bytes,
    overwrite_replaces,
    head_delete_and_missing,
    list_by_prefix,
    invalid_keys_refused,
);

fn chunks(data: &[u8], size: usize) -> ByteStream<'static> {
    let parts: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(size.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(parts).boxed()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

async fn read_all(
    store: &dyn BlobStore,
    key: &str,
    range: Option<std::ops::Range<u64>>,
) -> Vec<u8> {
    let blob = store.get(key, range).await.expect("get");
    let mut out = Vec::new();
    let mut stream = blob.stream;
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.expect("chunk"));
    }
    assert_eq!(out.len() as u64, blob.range.end - blob.range.start);
    out
}

fn sha(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

async fn put_get_roundtrip(f: Fixture) {
    let data = pattern(300_000);
    let stored = f
        .store
        .put("att/1", chunks(&data, 7_000), 1 << 30)
        .await
        .expect("put");
    assert_eq!(stored.size, data.len() as u64);
    assert_eq!(stored.sha256, sha(&data));
    assert_eq!(read_all(&*f.store, "att/1", None).await, data);
    let meta = f.store.head("att/1").await.expect("head");
    assert_eq!(meta.size, data.len() as u64);
    assert_eq!(meta.key, "att/1");
}

async fn large_put_streams_in_parts(f: Fixture) {
    // More than one 8 MiB S3 part, with a short last part.
    let data = pattern(17 * MIB + 123);
    let stored = f
        .store
        .put("big/one", chunks(&data, MIB / 2), 1 << 30)
        .await
        .expect("put");
    assert_eq!(stored.size, data.len() as u64);
    assert_eq!(stored.sha256, sha(&data));
    let back = read_all(&*f.store, "big/one", None).await;
    assert!(back == data, "content differs");
}

async fn ranges(f: Fixture) {
    let data = pattern(10_000);
    f.store
        .put("r/x", chunks(&data, 1000), 1 << 20)
        .await
        .expect("put");
    assert_eq!(read_all(&*f.store, "r/x", Some(0..1)).await, data[0..1]);
    assert_eq!(
        read_all(&*f.store, "r/x", Some(1234..5678)).await,
        data[1234..5678]
    );
    // An end past the object is cut to it.
    let blob = f.store.get("r/x", Some(9_990..20_000)).await.expect("get");
    assert_eq!((blob.size, blob.range.clone()), (10_000, 9_990..10_000));
    assert_eq!(
        read_all(&*f.store, "r/x", Some(9_990..20_000)).await,
        data[9_990..]
    );
    for bad in [10_000..10_001, 5..5, 20_000..30_000] {
        match f.store.get("r/x", Some(bad.clone())).await {
            Err(BlobError::Range { size: 10_000, .. }) => {}
            Err(e) => panic!("{bad:?}: {e}"),
            Ok(_) => panic!("{bad:?} accepted"),
        }
    }
}

async fn size_cap_refuses_and_leaves_nothing(f: Fixture) {
    let data = pattern(9 * MIB + 1);
    match f
        .store
        .put("cap/a", chunks(&data, MIB), 9 * MIB as u64)
        .await
    {
        Err(BlobError::TooLarge { limit }) => assert_eq!(limit, 9 * MIB as u64),
        other => panic!("expected TooLarge, got {:?}", other.map(|s| s.size)),
    }
    assert!(matches!(
        f.store.head("cap/a").await,
        Err(BlobError::NotFound(_))
    ));
    assert!(f.store.list("cap/").await.expect("list").is_empty());
    // Exactly at the cap is fine.
    let ok = f
        .store
        .put("cap/b", chunks(&data[..MIB], 4096), MIB as u64)
        .await
        .expect("put");
    assert_eq!(ok.size, MIB as u64);
}

async fn stopped_upload_leaves_nothing(f: Fixture) {
    // A client that goes away after 9 MiB (past the first S3 part).
    let good: Vec<Result<Bytes, std::io::Error>> =
        (0..9).map(|_| Ok(Bytes::from(pattern(MIB)))).collect();
    let body = futures::stream::iter(good)
        .chain(futures::stream::once(async {
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "client gone",
            ))
        }))
        .boxed();
    match f.store.put("stop/a", body, 1 << 30).await {
        Err(BlobError::Source(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
        other => panic!("expected Source, got {:?}", other.map(|s| s.size)),
    }
    assert!(matches!(
        f.store.head("stop/a").await,
        Err(BlobError::NotFound(_))
    ));
    assert!(f.store.list("stop/").await.expect("list").is_empty());
}

async fn zero_bytes(f: Fixture) {
    let stored = f
        .store
        .put("z/0", futures::stream::empty().boxed(), 10)
        .await
        .expect("put");
    assert_eq!(stored.size, 0);
    assert_eq!(stored.sha256, sha(b""));
    assert_eq!(read_all(&*f.store, "z/0", None).await, Vec::<u8>::new());
    assert_eq!(f.store.head("z/0").await.expect("head").size, 0);
}

async fn overwrite_replaces(f: Fixture) {
    f.store
        .put("o/k", chunks(b"first version", 4), 100)
        .await
        .expect("put");
    f.store
        .put("o/k", chunks(b"second", 4), 100)
        .await
        .expect("put");
    assert_eq!(read_all(&*f.store, "o/k", None).await, b"second");
}

async fn head_delete_and_missing(f: Fixture) {
    assert!(matches!(
        f.store.head("m/none").await,
        Err(BlobError::NotFound(_))
    ));
    assert!(matches!(
        f.store.get("m/none", None).await,
        Err(BlobError::NotFound(_))
    ));
    f.store
        .put("m/a", chunks(b"abc", 1), 10)
        .await
        .expect("put");
    f.store.delete("m/a").await.expect("delete");
    assert!(matches!(
        f.store.head("m/a").await,
        Err(BlobError::NotFound(_))
    ));
    // Deleting twice (a collector run repeated) is fine.
    f.store.delete("m/a").await.expect("delete again");
}

async fn list_by_prefix(f: Fixture) {
    for key in ["att/1", "att/2", "att/sub/3", "previews/1.webp", "attic/9"] {
        f.store
            .put(key, chunks(key.as_bytes(), 3), 100)
            .await
            .expect("put");
    }
    let keys = |v: Vec<hearth_blobs::BlobMeta>| v.into_iter().map(|m| m.key).collect::<Vec<_>>();
    assert_eq!(
        keys(f.store.list("att/").await.expect("list")),
        ["att/1", "att/2", "att/sub/3"]
    );
    assert_eq!(
        keys(f.store.list("previews/").await.expect("list")),
        ["previews/1.webp"]
    );
    assert_eq!(
        keys(f.store.list("att").await.expect("list")),
        ["att/1", "att/2", "att/sub/3", "attic/9"]
    );
    assert!(f.store.list("none/").await.expect("list").is_empty());
    let all = f.store.list("").await.expect("list");
    assert_eq!(all.len(), 5);
    let one = all.iter().find(|m| m.key == "att/2").expect("att/2 listed");
    assert_eq!(one.size, 5);
    let age = std::time::SystemTime::now()
        .duration_since(one.last_modified)
        .unwrap_or_default();
    assert!(age.as_secs() < 600, "last_modified is recent: {age:?}");
}

async fn invalid_keys_refused(f: Fixture) {
    for bad in ["../escape", "/abs", "a//b", "a/../../b", ""] {
        match f.store.put(bad, chunks(b"x", 1), 10).await {
            Err(BlobError::InvalidKey(_)) => {}
            other => panic!("{bad:?}: {:?}", other.map(|s| s.size)),
        }
        assert!(matches!(
            f.store.get(bad, None).await,
            Err(BlobError::InvalidKey(_))
        ));
    }
}
