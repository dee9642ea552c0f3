//! Message search on this node: the index in `data_dir/search` (see
//! `hearth-search`), fed from the bus log by one consumer, rebuilt from the
//! store when it may lack messages.
//!
//! Every node keeps its own replica of the index, made from the log (the
//! embedded journal on one node, the JetStream stream in a cluster) with
//! [`Bus::read_from`] after the index's committed position. The consumer
//! applies events in batches; the index commits itself (at most every
//! 200 ms) with the position, so a restart resumes exactly where the index
//! is. A new or wiped index, or a log that no longer holds the events after
//! the position ([`Delivery::Lagged`]), starts a rebuild from the store in
//! the background while live events keep being applied (the crate decides
//! which wins). The rebuild's checkpoint is committed too, so an
//! interrupted rebuild continues where it stopped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth_bus::{Bus, Delivery, Envelope};
use hearth_search::{Has, Index, IndexConfig, IndexedMessage, Op};
use hearth_store::{MessageRecord, Store, StoreError};
use hearth_types::{ChannelId, CommunityId, MessageId};
use parking_lot::Mutex;
use prometheus::IntGauge;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::metrics::Metrics;

/// Messages read from the store per backfill batch.
const BACKFILL_BATCH: u32 = 500;
/// Most events applied in one call.
const APPLY_BATCH: usize = 1_000;

/// The index directory inside the data directory.
pub fn index_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("search")
}

/// Opens the index, waiting up to `wait` for another holder of its writer
/// (a server stopping in this process, or a `hearth search reindex`).
pub fn open_index(dir: &Path, wait: Duration) -> Result<Index, hearth_search::IndexError> {
    let deadline = Instant::now() + wait;
    loop {
        match Index::open(dir, IndexConfig::default()) {
            Ok(i) => return Ok(i),
            Err(e) if Instant::now() < deadline => {
                tracing::debug!(error = %e, "search index busy; retrying");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e),
        }
    }
}

/// The gauges search exports.
#[derive(Clone)]
struct Gauges {
    docs: IntGauge,
    size_bytes: IntGauge,
    position: IntGauge,
    lag_events: IntGauge,
    uncommitted_ms: IntGauge,
    rebuilding: IntGauge,
}

impl Gauges {
    fn new(metrics: &Metrics) -> Gauges {
        let g = |name: &str, help: &str| {
            let g = IntGauge::new(name, help)
                .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
            if let Err(e) = metrics.registry().register(Box::new(g.clone())) {
                tracing::warn!(error = %e, name, "registering a search metric");
            }
            g
        };
        Gauges {
            docs: g("hearth_search_docs", "Messages in this node's search index"),
            size_bytes: g(
                "hearth_search_size_bytes",
                "Bytes of this node's search index on disk",
            ),
            position: g(
                "hearth_search_log_position",
                "The log position this node's search index has committed",
            ),
            lag_events: g(
                "hearth_search_lag_events",
                "Log events routed by this node but not yet committed to its search index",
            ),
            uncommitted_ms: g(
                "hearth_search_uncommitted_ms",
                "How long the oldest change not yet searchable has waited",
            ),
            rebuilding: g(
                "hearth_search_rebuilding",
                "1 while the search index is being rebuilt from the database",
            ),
        }
    }
}

/// This node's search: the index and the tasks feeding it.
pub struct Search {
    index: Mutex<Option<Arc<Index>>>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    gauges: Gauges,
}

impl Search {
    /// Opens `data_dir/search`. `None` (logged) if it cannot be opened:
    /// the server runs, and search answers 503.
    pub fn open(data_dir: &Path, metrics: &Metrics) -> Option<Arc<Search>> {
        let dir = index_dir(data_dir);
        let index = match open_index(&dir, Duration::from_secs(5)) {
            Ok(i) => i,
            Err(e) => {
                tracing::error!(dir = %dir.display(), error = %e, "cannot open the search index; search is off on this node");
                return None;
            }
        };
        let (stop, _) = watch::channel(false);
        Some(Arc::new(Search {
            index: Mutex::new(Some(Arc::new(index))),
            stop,
            tasks: Mutex::new(Vec::new()),
            gauges: Gauges::new(metrics),
        }))
    }

    /// The index, unless search has stopped.
    pub fn index(&self) -> Option<Arc<Index>> {
        self.index.lock().clone()
    }

    /// Starts the consumer (and, if needed, a rebuild) and the metrics task.
    pub fn start(self: &Arc<Self>, bus: Arc<dyn Bus>, store: Arc<dyn Store>, metrics: Metrics) {
        let Some(index) = self.index() else {
            return;
        };
        let consumer = tokio::spawn(consume(
            index.clone(),
            bus,
            store,
            self.stop.subscribe(),
            self.gauges.clone(),
        ));
        let stats = tokio::spawn(export_stats(
            index,
            self.stop.subscribe(),
            self.gauges.clone(),
            metrics,
        ));
        self.tasks.lock().extend([consumer, stats]);
    }

    /// Stops the tasks and closes the index (its last changes committed),
    /// so the directory can be opened again.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *self.tasks.lock());
        for t in tasks {
            let _ = t.await;
        }
        let index = self.index.lock().take();
        if let Some(index) = index {
            let _ = tokio::task::spawn_blocking(move || drop(index)).await;
        }
    }
}

/// Refreshes the gauges every second.
async fn export_stats(
    index: Arc<Index>,
    mut stop: watch::Receiver<bool>,
    gauges: Gauges,
    metrics: Metrics,
) {
    loop {
        let i = index.clone();
        if let Ok(s) = tokio::task::spawn_blocking(move || i.stats()).await {
            gauges.docs.set(i64::try_from(s.docs).unwrap_or(i64::MAX));
            gauges
                .size_bytes
                .set(i64::try_from(s.size_bytes).unwrap_or(i64::MAX));
            let position = i64::try_from(s.position).unwrap_or(i64::MAX);
            gauges.position.set(position);
            let head = metrics.gateway_log_position.get();
            gauges.lag_events.set((head - position).max(0));
            gauges
                .uncommitted_ms
                .set(i64::try_from(s.uncommitted_ms).unwrap_or(i64::MAX));
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Follows the log into the index until stopped.
async fn consume(
    index: Arc<Index>,
    bus: Arc<dyn Bus>,
    store: Arc<dyn Store>,
    mut stop: watch::Receiver<bool>,
    gauges: Gauges,
) {
    let mut rebuild: Option<JoinHandle<()>> = None;
    let mut from = index.position();
    if index.needs_rebuild() {
        let fresh = index.rebuild_checkpoint().is_none();
        if fresh {
            // Everything before the log's head is in the store, which the
            // rebuild reads after this: follow the log from its head.
            let head = match bus.follow(0).await {
                Ok((_, head)) => head,
                Err(e) => {
                    tracing::warn!(error = %e, "search: cannot read the log head; reading it all");
                    0
                }
            };
            let i = index.clone();
            let begun = tokio::task::spawn_blocking(move || {
                i.begin_rebuild()?;
                i.apply(Vec::new(), head)
            })
            .await;
            match begun {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "search: cannot start a rebuild"),
                Err(e) => tracing::error!(error = %e, "search: rebuild task"),
            }
            from = from.max(head);
        }
        tracing::info!(
            position = from,
            "search: rebuilding the index from the database"
        );
        rebuild = Some(spawn_rebuild(
            index.clone(),
            store.clone(),
            stop.clone(),
            gauges.clone(),
        ));
    }
    let (tx, mut rx) = mpsc::channel::<Delivery>(4_096);
    let reader = {
        let bus = bus.clone();
        tokio::spawn(async move {
            let mut sub = loop {
                match bus.read_from(from).await {
                    Ok(s) => break s,
                    Err(e) => {
                        tracing::warn!(error = %e, "search: cannot read the log; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        if tx.is_closed() {
                            return;
                        }
                    }
                }
            };
            while let Some(d) = sub.next().await {
                if tx.send(d).await.is_err() {
                    return;
                }
            }
        })
    };
    loop {
        let first = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            d = rx.recv() => match d { Some(d) => d, None => break },
        };
        let mut batch = vec![first];
        while batch.len() < APPLY_BATCH {
            match rx.try_recv() {
                Ok(d) => batch.push(d),
                Err(_) => break,
            }
        }
        let mut ops = Vec::new();
        let mut position = None;
        for d in batch {
            match d {
                Delivery::Logged(pos, ev) => {
                    ops.extend(event_ops(&ev));
                    position = Some(pos);
                }
                Delivery::Lagged(n) => {
                    // Apply what came before, then start over from the store.
                    if let Some(p) = position.take() {
                        apply(&index, std::mem::take(&mut ops), p).await;
                    }
                    tracing::warn!(
                        missed = n,
                        "search: the log no longer holds events the index lacks; rebuilding from the database"
                    );
                    if let Some(r) = rebuild.take() {
                        r.abort();
                        let _ = r.await;
                    }
                    let i = index.clone();
                    match tokio::task::spawn_blocking(move || i.begin_rebuild()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::error!(error = %e, "search: cannot start a rebuild"),
                        Err(e) => tracing::error!(error = %e, "search: rebuild task"),
                    }
                    rebuild = Some(spawn_rebuild(
                        index.clone(),
                        store.clone(),
                        stop.clone(),
                        gauges.clone(),
                    ));
                }
                Delivery::Event(_) => {}
            }
        }
        if let Some(p) = position {
            apply(&index, ops, p).await;
        }
    }
    reader.abort();
    if let Some(r) = rebuild {
        // It checks `stop` between batches.
        let _ = r.await;
    }
}

async fn apply(index: &Arc<Index>, ops: Vec<Op>, position: u64) {
    let i = index.clone();
    match tokio::task::spawn_blocking(move || i.apply(ops, position)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, position, "search: applying events failed"),
        Err(e) => tracing::error!(error = %e, "search: apply task"),
    }
}

/// The index operations of one log event (none for kinds search ignores).
pub fn event_ops(ev: &Envelope) -> Vec<Op> {
    let Some(kind) = ev.ty.strip_prefix("hearth.") else {
        return Vec::new();
    };
    if !hearth_search::KINDS.contains(&kind) {
        return Vec::new();
    }
    let data = match serde_json::from_slice::<serde_json::Value>(&ev.data) {
        Ok(mut v) => v.get_mut("d").map(serde_json::Value::take),
        Err(_) => None,
    };
    let Some(d) = data else {
        tracing::warn!(kind, id = %ev.id, "search: event without data");
        return Vec::new();
    };
    let bytes = serde_json::to_vec(&d).unwrap_or_default();
    match hearth_search::ops_from_event(kind, &bytes) {
        Ok(ops) => ops,
        Err(e) => {
            tracing::warn!(error = %e, id = %ev.id, "search: skipping an event it cannot read");
            Vec::new()
        }
    }
}

fn spawn_rebuild(
    index: Arc<Index>,
    store: Arc<dyn Store>,
    stop: watch::Receiver<bool>,
    gauges: Gauges,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        gauges.rebuilding.set(1);
        let started = Instant::now();
        let mut stop_rx = stop.clone();
        let result = backfill(&index, store.as_ref(), &mut stop_rx, |_, _| {}).await;
        gauges.rebuilding.set(0);
        match result {
            Ok(Some(n)) => tracing::info!(
                messages = n,
                secs = started.elapsed().as_secs(),
                "search: index rebuilt"
            ),
            Ok(None) => tracing::info!("search: rebuild paused (continues at next start)"),
            Err(e) => tracing::error!(error = %e, "search: rebuild failed (retried at next start)"),
        }
    })
}

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("index: {0}")]
    Index(#[from] hearth_search::IndexError),
    #[error("{0}")]
    Task(String),
}

/// Reads every message after the index's rebuild checkpoint from the store,
/// in ID order, into the index, then ends the rebuild. `progress` is told
/// the messages done so far and the last ID. `Ok(None)` if stopped first
/// (the checkpoint is kept), else how many messages were read.
pub async fn backfill(
    index: &Arc<Index>,
    store: &dyn Store,
    stop: &mut watch::Receiver<bool>,
    mut progress: impl FnMut(u64, MessageId),
) -> Result<Option<u64>, RebuildError> {
    let Some(mut after) = index.rebuild_checkpoint() else {
        return Ok(Some(0));
    };
    // Per channel: `None` once the channel is gone, else its community.
    let mut communities: HashMap<ChannelId, Option<Option<CommunityId>>> = HashMap::new();
    let mut done = 0u64;
    loop {
        if *stop.borrow() {
            return Ok(None);
        }
        let page = store.messages_after(after, BACKFILL_BATCH).await?;
        let Some(last) = page.last().map(|m| m.id) else {
            break;
        };
        let mut docs = Vec::with_capacity(page.len());
        for m in page {
            let community = match communities.get(&m.channel_id) {
                Some(c) => *c,
                None => {
                    let c = store.channel(m.channel_id).await?.map(|c| c.community_id);
                    communities.insert(m.channel_id, c);
                    c
                }
            };
            // A channel gone since: its messages are not indexed.
            if let Some(community) = community {
                docs.push(indexed(m, community));
            }
        }
        done += docs.len() as u64;
        let i = index.clone();
        tokio::task::spawn_blocking(move || i.backfill(docs, last))
            .await
            .map_err(|e| RebuildError::Task(e.to_string()))??;
        after = last;
        progress(done, last);
    }
    let i = index.clone();
    tokio::task::spawn_blocking(move || i.finish_rebuild())
        .await
        .map_err(|e| RebuildError::Task(e.to_string()))??;
    Ok(Some(done))
}

/// A stored message as the index holds it (the same fields the events
/// give: attachments carry no type, so they count as files).
pub fn indexed(m: MessageRecord, community_id: Option<CommunityId>) -> IndexedMessage {
    let has = Has::detect(
        &m.content,
        m.attachment_ids.iter().map(|_| (None, None)),
        false,
    );
    IndexedMessage {
        id: m.id,
        channel_id: m.channel_id,
        community_id,
        author_id: m.author.id,
        created_at_ms: m.id.created_ms(),
        edited_at_ms: m.edited_at,
        content: m.content,
        mentions: m.mentions.users,
        role_mentions: m.mentions.roles,
        mentions_everyone: m.mentions.everyone,
        has,
        pinned: m.pinned,
        reply_to: m.reply_to_id,
    }
}
