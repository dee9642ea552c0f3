//! The index: one writer, a background committer, readers reloaded after
//! each commit. The consumer's position (and a rebuild's checkpoint) are
//! committed with the documents in tantivy's commit payload, so what a
//! restart resumes from always matches what the index holds.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hearth_types::MessageId;
use parking_lot::{Condvar, Mutex};
use serde::{Deserialize, Serialize};
use tantivy::query::TermQuery;
use tantivy::schema::IndexRecordOption;
use tantivy::{IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::analyzer;
use crate::error::{IndexError, SearchError};
use crate::message::{IndexedMessage, Op};
use crate::query::Query;
use crate::schema::{self, Fields, SCHEMA_VERSION};
use crate::search::{self, Scope, SearchPage};

/// The file beside tantivy's that names the schema version.
const VERSION_FILE: &str = "hearth-search.version";

#[derive(Clone, Debug)]
pub struct IndexConfig {
    /// The writer's indexing memory, split among its threads (at least
    /// 15 MB a thread, tantivy's floor).
    pub writer_memory_bytes: usize,
    /// Indexing threads.
    pub writer_threads: usize,
    /// The shortest time between two commits. A change after a quiet
    /// period is committed at once; under load, one commit per interval.
    /// A change is searchable after at most this long plus one commit.
    pub commit_interval: Duration,
    /// Searches run at once; more wait their turn in arrival order (see
    /// `gate.rs`). Default: the machine's cores.
    pub search_threads: usize,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            writer_memory_bytes: 64 << 20,
            writer_threads: 1,
            commit_interval: Duration::from_millis(200),
            search_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// See `Index::start`.
const DOCSTORE_BLOCK_BYTES: usize = 4096;

/// What is committed with every commit.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
struct Payload {
    /// The highest log position applied.
    position: u64,
    /// While rebuilding: the last message ID backfilled from the store.
    rebuild: Option<i64>,
}

/// Numbers for metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Searchable documents.
    pub docs: u64,
    pub segments: usize,
    /// Bytes on disk (for an in-memory index, the bytes its segments use).
    pub size_bytes: u64,
    /// The committed (durable) log position.
    pub position: u64,
    /// The highest position applied, committed or not.
    pub applied_position: u64,
    pub last_commit_at_ms: Option<i64>,
    /// How long the oldest change not yet searchable has waited (0 if none).
    pub uncommitted_ms: u64,
}

/// Deletions seen while a rebuild runs, so a backfilled row read from the
/// store before its deletion cannot bring it back; and the IDs written by
/// live events, which a backfill (possibly older) must not overwrite.
#[derive(Default)]
struct RebuildGuard {
    ids: HashSet<i64>,
    channels: HashSet<i64>,
    communities: HashSet<i64>,
    live: HashSet<i64>,
}

struct Writer {
    writer: IndexWriter,
    dirty: bool,
    dirty_since: Option<Instant>,
    payload: Payload,
    /// Writes since the last commit, by message ID (`None`: deleted), and
    /// the channels and communities deleted since: what the searcher cannot
    /// see yet, for `SetPinned`.
    pending: HashMap<i64, Option<IndexedMessage>>,
    pending_channels: HashSet<i64>,
    pending_communities: HashSet<i64>,
    guard: Option<RebuildGuard>,
}

#[derive(Default)]
struct Signal {
    dirty: bool,
    stop: bool,
}

struct Shared {
    fields: Fields,
    /// At most `search_threads` searches at once.
    gate: crate::gate::Gate,
    /// Per-segment ID ranges for date-ordered pages (see `collect`).
    segments: Arc<crate::collect::SegmentCache>,
    reader: IndexReader,
    writer: Mutex<Writer>,
    committed: Mutex<(Payload, Option<i64>)>,
    signal: Mutex<Signal>,
    wake: Condvar,
    dir: Option<PathBuf>,
    config: IndexConfig,
}

/// The message index. Cheap to share behind an `Arc`; searches run
/// concurrently with each other and with writes. All methods block (disk
/// and CPU): call them from blocking threads.
pub struct Index {
    shared: Arc<Shared>,
    committer: Option<JoinHandle<()>>,
    needs_rebuild: bool,
}

impl Index {
    /// Opens (or creates) the index in `dir` (e.g. `data_dir/search`). An
    /// index of another schema version is wiped. [`Index::needs_rebuild`]
    /// tells whether the index may lack messages the store has (new, wiped,
    /// or a rebuild not finished).
    pub fn open(dir: &Path, config: IndexConfig) -> Result<Index, IndexError> {
        std::fs::create_dir_all(dir)?;
        let version_path = dir.join(VERSION_FILE);
        let version = std::fs::read_to_string(&version_path)
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok());
        let exists = dir.join("meta.json").exists();
        let (schema, fields) = schema::build();
        let mut needs_rebuild = false;
        if exists && version != Some(SCHEMA_VERSION) {
            tracing::warn!(
                ?version,
                current = SCHEMA_VERSION,
                "search index of another schema version; wiping it"
            );
            for entry in std::fs::read_dir(dir)? {
                let path = entry?.path();
                if path.is_dir() {
                    std::fs::remove_dir_all(&path)?;
                } else {
                    std::fs::remove_file(&path)?;
                }
            }
        }
        let index = if exists && version == Some(SCHEMA_VERSION) {
            tantivy::Index::open_in_dir(dir)?
        } else {
            needs_rebuild = true;
            let index = tantivy::Index::create_in_dir(dir, schema)?;
            let tmp = dir.join(format!("{VERSION_FILE}.tmp"));
            std::fs::write(&tmp, format!("{SCHEMA_VERSION}\n"))?;
            std::fs::rename(&tmp, &version_path)?;
            index
        };
        Self::start(
            index,
            fields,
            Some(dir.to_path_buf()),
            config,
            needs_rebuild,
        )
    }

    /// An empty index in memory (tests, tools).
    pub fn open_in_ram(config: IndexConfig) -> Result<Index, IndexError> {
        let (schema, fields) = schema::build();
        Self::start(
            tantivy::Index::create_in_ram(schema),
            fields,
            None,
            config,
            false,
        )
    }

    fn start(
        index: tantivy::Index,
        fields: Fields,
        dir: Option<PathBuf>,
        config: IndexConfig,
        mut needs_rebuild: bool,
    ) -> Result<Index, IndexError> {
        let mut index = index;
        // Each hit's text is read back for its snippet: one compressed
        // block of the doc store decompressed per hit. tantivy's 16 KB
        // blocks hold ~100 messages; 4 KB ones cost a quarter of the
        // decompression per hit for a slightly larger store. It applies to
        // every segment written from now on (existing ones keep theirs).
        index.settings_mut().docstore_blocksize = DOCSTORE_BLOCK_BYTES;
        index
            .tokenizers()
            .register(analyzer::ANALYZER, analyzer::index_analyzer());
        index
            .tokenizers()
            .register(analyzer::PAIRS, analyzer::pair_analyzer());
        let payload: Payload = match index.load_metas()?.payload {
            Some(p) => serde_json::from_str(&p).map_err(|e| IndexError::Meta(e.to_string()))?,
            None => Payload::default(),
        };
        needs_rebuild |= payload.rebuild.is_some();
        let threads = config.writer_threads.max(1);
        let memory = config.writer_memory_bytes.max(threads * 15_000_000);
        let writer = index.writer_with_num_threads(threads, memory)?;
        let segments = Arc::new(crate::collect::SegmentCache::new(fields.channel));
        let warmer: std::sync::Weak<dyn tantivy::Warmer> = Arc::downgrade(&segments) as _;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .warmers(vec![warmer])
            .try_into()?;
        let shared = Arc::new(Shared {
            fields,
            gate: crate::gate::Gate::new(config.search_threads),
            segments,
            reader,
            writer: Mutex::new(Writer {
                writer,
                dirty: false,
                dirty_since: None,
                payload,
                pending: HashMap::new(),
                pending_channels: HashSet::new(),
                pending_communities: HashSet::new(),
                guard: payload.rebuild.map(|_| RebuildGuard::default()),
            }),
            committed: Mutex::new((payload, None)),
            signal: Mutex::new(Signal::default()),
            wake: Condvar::new(),
            dir,
            config,
        });
        let committer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("search-commit".into())
                .spawn(move || commit_loop(&shared))?
        };
        Ok(Index {
            shared,
            committer: Some(committer),
            needs_rebuild,
        })
    }

    /// Whether the index may lack messages the store has: it was just
    /// created or wiped (schema change), or a rebuild did not finish. The
    /// server then rebuilds (see [`Index::begin_rebuild`]).
    pub fn needs_rebuild(&self) -> bool {
        self.needs_rebuild
    }

    /// The committed log position: a restart resumes the consumer after it.
    pub fn position(&self) -> u64 {
        self.shared.committed.lock().0.position
    }

    /// Applies `ops` (from events up to log `position`). Idempotent: the
    /// same ops again leave the same index. Searchable after the next
    /// commit (at most `commit_interval` later), durable with the position.
    pub fn apply(&self, ops: Vec<Op>, position: u64) -> Result<(), IndexError> {
        let mut w = self.shared.writer.lock();
        for op in ops {
            self.apply_one(&mut w, op)?;
        }
        let before = w.payload.position;
        w.payload.position = before.max(position);
        let changed = w.payload.position != before;
        drop(w);
        if changed {
            self.mark_dirty();
        }
        Ok(())
    }

    fn apply_one(&self, w: &mut Writer, op: Op) -> Result<(), IndexError> {
        let f = &self.shared.fields;
        match op {
            Op::Upsert(m) => {
                if let Some(g) = &mut w.guard {
                    g.live.insert(m.id.0);
                }
                self.write(w, m)?;
            }
            Op::Delete { id } => self.delete(w, id.0),
            Op::BulkDelete { ids } => {
                for id in ids {
                    self.delete(w, id.0);
                }
            }
            Op::DeleteChannel { channel_id } => {
                let c = channel_id.0;
                w.writer
                    .delete_term(Term::from_field_u64(f.channel, schema::id(c)));
                for m in w.pending.values_mut() {
                    if m.as_ref().is_some_and(|m| m.channel_id.0 == c) {
                        *m = None;
                    }
                }
                w.pending_channels.insert(c);
                if let Some(g) = &mut w.guard {
                    g.channels.insert(c);
                }
            }
            Op::DeleteCommunity { community_id } => {
                let c = community_id.0;
                w.writer
                    .delete_term(Term::from_field_u64(f.community, schema::id(c)));
                for m in w.pending.values_mut() {
                    if m.as_ref()
                        .is_some_and(|m| m.community_id.is_some_and(|x| x.0 == c))
                    {
                        *m = None;
                    }
                }
                w.pending_communities.insert(c);
                if let Some(g) = &mut w.guard {
                    g.communities.insert(c);
                }
            }
            Op::SetPinned { id, pinned } => {
                let current = match w.pending.get(&id.0) {
                    Some(m) => m.clone(),
                    None => self.stored(id.0)?.filter(|m| {
                        !w.pending_channels.contains(&m.channel_id.0)
                            && !m
                                .community_id
                                .is_some_and(|c| w.pending_communities.contains(&c.0))
                    }),
                };
                if let Some(mut m) = current
                    && m.pinned != pinned
                {
                    m.pinned = pinned;
                    if let Some(g) = &mut w.guard {
                        g.live.insert(id.0);
                    }
                    self.write(w, m)?;
                }
            }
        }
        Ok(())
    }

    fn write(&self, w: &mut Writer, m: IndexedMessage) -> Result<(), IndexError> {
        let f = &self.shared.fields;
        w.writer
            .delete_term(Term::from_field_u64(f.id, schema::id(m.id.0)));
        w.writer.add_document(f.document(&m))?;
        w.pending.insert(m.id.0, Some(m));
        w.dirty = true;
        Ok(())
    }

    fn delete(&self, w: &mut Writer, id: i64) {
        let f = &self.shared.fields;
        w.writer
            .delete_term(Term::from_field_u64(f.id, schema::id(id)));
        w.pending.insert(id, None);
        if let Some(g) = &mut w.guard {
            g.ids.insert(id);
        }
    }

    /// The committed document for `id`, if any.
    fn stored(&self, id: i64) -> Result<Option<IndexedMessage>, IndexError> {
        let f = &self.shared.fields;
        let searcher = self.shared.reader.searcher();
        let q = TermQuery::new(
            Term::from_field_u64(f.id, schema::id(id)),
            IndexRecordOption::Basic,
        );
        let top = searcher.search(
            &q,
            &tantivy::collector::TopDocs::with_limit(1).order_by_score(),
        )?;
        match top.first() {
            Some((_, addr)) => {
                let doc: TantivyDocument = searcher.doc(*addr)?;
                Ok(Some(f.message(&doc)))
            }
            None => Ok(None),
        }
    }

    /// Starts a rebuild from the store: removes every document and records
    /// a checkpoint (no message yet). Events keep being applied meanwhile;
    /// deletions and live writes seen during the rebuild win over backfilled
    /// rows.
    pub fn begin_rebuild(&self) -> Result<(), IndexError> {
        {
            let mut w = self.shared.writer.lock();
            w.writer.delete_all_documents()?;
            w.pending.clear();
            w.payload.rebuild = Some(0);
            w.guard = Some(RebuildGuard::default());
            w.dirty = true;
        }
        self.commit()
    }

    /// While rebuilding: the last message ID backfilled (committed or not);
    /// continue the store scan after it. `None` when no rebuild runs.
    pub fn rebuild_checkpoint(&self) -> Option<MessageId> {
        self.shared.writer.lock().payload.rebuild.map(MessageId)
    }

    /// Adds messages read from the store, in ID order, through `checkpoint`
    /// (the last ID read). A message deleted, or written by an event, since
    /// the rebuild began is skipped.
    pub fn backfill(
        &self,
        messages: Vec<IndexedMessage>,
        checkpoint: MessageId,
    ) -> Result<(), IndexError> {
        let mut w = self.shared.writer.lock();
        for m in messages {
            let skip = w.guard.as_ref().is_some_and(|g| {
                g.live.contains(&m.id.0)
                    || g.ids.contains(&m.id.0)
                    || g.channels.contains(&m.channel_id.0)
                    || m.community_id.is_some_and(|c| g.communities.contains(&c.0))
            });
            if !skip {
                self.write(&mut w, m)?;
            }
        }
        if let Some(r) = &mut w.payload.rebuild {
            *r = (*r).max(checkpoint.0);
        }
        w.dirty = true;
        drop(w);
        self.mark_dirty();
        Ok(())
    }

    /// Ends the rebuild (commits).
    pub fn finish_rebuild(&self) -> Result<(), IndexError> {
        {
            let mut w = self.shared.writer.lock();
            w.payload.rebuild = None;
            w.guard = None;
            w.dirty = true;
        }
        self.commit()
    }

    /// Commits now (the committer does it on its own; tests and shutdown
    /// call this to be sure).
    pub fn commit(&self) -> Result<(), IndexError> {
        commit(&self.shared)
    }

    pub fn search(&self, query: &Query, scope: &Scope) -> Result<SearchPage, SearchError> {
        let _turn = self.shared.gate.enter();
        let searcher = self.shared.reader.searcher();
        search::run(
            &searcher,
            &self.shared.fields,
            &self.shared.segments,
            query,
            scope,
        )
    }

    pub fn stats(&self) -> Stats {
        let searcher = self.shared.reader.searcher();
        let size_bytes = match &self.shared.dir {
            Some(dir) => dir_size(dir),
            None => searcher
                .space_usage()
                .map(|u| u.total().get_bytes())
                .unwrap_or(0),
        };
        let (payload, last_commit_at_ms) = *self.shared.committed.lock();
        let w = self.shared.writer.lock();
        Stats {
            docs: searcher.num_docs(),
            segments: searcher.segment_readers().len(),
            size_bytes,
            position: payload.position,
            applied_position: w.payload.position,
            last_commit_at_ms,
            uncommitted_ms: w.dirty_since.map_or(0, |t| t.elapsed().as_millis() as u64),
        }
    }

    fn mark_dirty(&self) {
        {
            let mut w = self.shared.writer.lock();
            w.dirty = true;
            w.dirty_since.get_or_insert_with(Instant::now);
        }
        self.shared.signal.lock().dirty = true;
        self.shared.wake.notify_one();
    }

    /// Stops the committer and commits what is left.
    pub fn close(mut self) -> Result<(), IndexError> {
        self.stop();
        commit(&self.shared)
    }

    /// [`Index::close`], then waits for the segment merges under way to
    /// finish and be committed: the layout a bulk load settles into. A
    /// dropped writer abandons its merges instead (their threads run on
    /// and their results are thrown away), which left a 10M-message bench
    /// with 18 segments and its queries competing with orphaned merges.
    pub fn close_after_merges(mut self) -> Result<(), IndexError> {
        self.stop();
        commit(&self.shared)?;
        let shared = self.shared.clone();
        drop(self);
        match Arc::try_unwrap(shared) {
            Ok(shared) => shared.writer.into_inner().writer.wait_merging_threads()?,
            // Someone else holds the index: nothing to wait on here.
            Err(_) => tracing::warn!("search index shared elsewhere; not waiting for merges"),
        }
        Ok(())
    }

    fn stop(&mut self) {
        self.shared.signal.lock().stop = true;
        self.shared.wake.notify_one();
        if let Some(h) = self.committer.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        if self.committer.is_some() {
            self.stop();
            if let Err(e) = commit(&self.shared) {
                tracing::error!(error = %e, "search index: last commit failed");
            }
        }
    }
}

fn commit(shared: &Shared) -> Result<(), IndexError> {
    let mut w = shared.writer.lock();
    if !w.dirty {
        return Ok(());
    }
    let payload = w.payload;
    let text = serde_json::to_string(&payload).map_err(|e| IndexError::Meta(e.to_string()))?;
    let mut prepared = w.writer.prepare_commit()?;
    prepared.set_payload(&text);
    prepared.commit()?;
    shared.reader.reload()?;
    w.pending.clear();
    w.pending_channels.clear();
    w.pending_communities.clear();
    w.dirty = false;
    w.dirty_since = None;
    *shared.committed.lock() = (payload, Some(hearth_types::now_ms()));
    Ok(())
}

fn commit_loop(shared: &Shared) {
    let mut last = Instant::now() - shared.config.commit_interval;
    loop {
        {
            let mut s = shared.signal.lock();
            while !s.dirty && !s.stop {
                shared.wake.wait(&mut s);
            }
            if s.stop {
                return;
            }
            s.dirty = false;
            // Under load, wait out the interval (waking early to stop).
            let due = last + shared.config.commit_interval;
            while !s.stop && Instant::now() < due {
                shared.wake.wait_until(&mut s, due);
            }
            if s.stop {
                return;
            }
        }
        if let Err(e) = commit(shared) {
            tracing::error!(error = %e, "search index commit failed");
        }
        last = Instant::now();
    }
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Has, IndexedMessage};
    use hearth_types::{ChannelId, MessageId, UserId};

    fn msg(id: i64) -> IndexedMessage {
        IndexedMessage {
            id: MessageId(id),
            channel_id: ChannelId(1),
            community_id: None,
            author_id: UserId(2),
            content: format!("message {id}"),
            mentions: vec![],
            role_mentions: vec![],
            mentions_everyone: false,
            has: Has::default(),
            pinned: false,
            reply_to: None,
            created_at_ms: id,
            edited_at_ms: None,
        }
    }

    /// The reader's warmer computes each new segment's ID ranges when it
    /// reloads (not on the first query) and forgets merged-away segments.
    #[test]
    fn the_warmer_keeps_ranges_for_the_live_segments() {
        let ix = Index::open_in_ram(IndexConfig::default()).expect("index");
        for batch in 0..12 {
            let ops = (0..50)
                .map(|i| Op::Upsert(msg(batch * 50 + i + 1)))
                .collect();
            ix.apply(ops, batch as u64 + 1).expect("apply");
            ix.commit().expect("commit");
        }
        let live: HashSet<_> = ix
            .shared
            .reader
            .searcher()
            .segment_readers()
            .iter()
            .map(|r| r.segment_id())
            .collect();
        let cached = ix.shared.segments.cached_segments();
        assert!(live.is_subset(&cached), "every live segment is warmed");
        assert!(cached.len() <= live.len() + 12, "{cached:?}");
    }
}
