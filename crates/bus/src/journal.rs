//! The embedded bus's durable journal and its durable consumers.
//!
//! On one node the log is a broadcast channel: fast, but gone when the
//! process stops. Domain services (search, moderation, notifications, media)
//! need more: an at-least-once stream they can resume from a stored
//! position after a restart, with one retry and then a dead letter, exactly
//! as `nats::durable` gives them on JetStream. The [`Journal`] is where the
//! embedded bus keeps its log for them; the store implements it (the bus
//! writes no SQL).
//!
//! **Positions are the log's.** A journaled [`MemoryBus`](crate::MemoryBus)
//! starts numbering after the journal's head, so a position means the same
//! event in the broadcast, in the journal and in a consumer's cursor, across
//! restarts.
//!
//! **Nothing is dropped on the way.** `append` hands each event to the
//! [`Journaler`] through an unbounded queue (never the lossy broadcast), and
//! the journaler writes them in batches, one transaction each, in position
//! order, from one task: positions reach the journal in order and only the
//! journaler writes it. The send path never waits for the journal. What the
//! journal does not promise: an event appended in the last moments before
//! the process is killed may never be journaled (the chat data itself is in
//! the database; a consumer that must be exact reconciles from the store on
//! start, as search's rebuild does).
//!
//! **Consumers** ([`run_consumer`]) read after their cursor in batches,
//! filtered by subject prefix, call the handler for each event, retry a
//! failure once after `retry_delay`, then dead-letter it (kept in the
//! journal's dead letters with the error) and go on; the cursor is stored
//! when the consumer goes idle and otherwise at most every
//! [`CURSOR_EVERY`], so a crash redelivers what came since: handlers must
//! be idempotent (the event id is unique).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::nats::durable::{ConsumerStats, StatsSnapshot};
use crate::{BusError, Envelope};

/// Where the embedded log is kept (implemented over the store).
#[async_trait]
pub trait Journal: Send + Sync + 'static {
    /// The highest position journaled (0: none).
    async fn head(&self) -> Result<u64, BusError>;
    /// Stores events at their positions, in one transaction; a position
    /// already stored is kept as it is.
    async fn append(&self, events: &[(u64, Envelope)]) -> Result<(), BusError>;
    /// Up to `limit` events after `position`, in position order.
    async fn after(&self, position: u64, limit: usize) -> Result<Vec<(u64, Envelope)>, BusError>;
    /// A consumer's cursor: the last position it has processed (0: none).
    async fn cursor(&self, consumer: &str) -> Result<u64, BusError>;
    async fn set_cursor(&self, consumer: &str, position: u64) -> Result<(), BusError>;
    /// Keeps an event a consumer gave up on, with the error.
    async fn dead_letter(
        &self,
        consumer: &str,
        position: u64,
        event: &Envelope,
        error: &str,
    ) -> Result<(), BusError>;
}

/// Writes what a journaled bus appends into the journal, in batches.
pub struct Journaler {
    tx: mpsc::UnboundedSender<(u64, Envelope)>,
    head: watch::Receiver<u64>,
    /// The last position queued (what `flush` waits for).
    queued: std::sync::atomic::AtomicU64,
    task: JoinHandle<()>,
}

/// Most events written in one transaction.
const BATCH: usize = 512;

/// The longest a consumer's stored cursor may trail what it has processed
/// while events keep coming (it is stored at once when the consumer goes
/// idle). A crash redelivers at most this much, which handlers tolerate
/// (they are idempotent); storing it per batch cost a write per send.
const CURSOR_EVERY: Duration = Duration::from_millis(250);

impl Journaler {
    /// Starts the writer; `head` is the journal's head at start.
    pub fn start(journal: Arc<dyn Journal>, head: u64) -> Journaler {
        let (tx, mut rx) = mpsc::unbounded_channel::<(u64, Envelope)>();
        let (head_tx, head_rx) = watch::channel(head);
        let task = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                let last = batch.last().map_or(0, |(p, _)| *p);
                // A database that is down must not lose the batch: retry,
                // backing off, until it is stored (or the process stops).
                let mut wait = Duration::from_millis(50);
                while let Err(e) = journal.append(&batch).await {
                    tracing::warn!(error = %e, events = batch.len(), "journal append failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                batch.clear();
                let _ = head_tx.send(last);
            }
        });
        Journaler {
            tx,
            head: head_rx,
            queued: std::sync::atomic::AtomicU64::new(head),
            task,
        }
    }

    /// Queues an appended event (never blocks, never drops).
    pub fn push(&self, position: u64, event: Envelope) {
        self.queued
            .fetch_max(position, std::sync::atomic::Ordering::Relaxed);
        let _ = self.tx.send((position, event));
    }

    /// Waits until everything queued so far is written, or `within` passes
    /// (false then: a database that is down keeps the writer retrying).
    pub async fn flush(&self, within: Duration) -> bool {
        let target = self.queued.load(std::sync::atomic::Ordering::Relaxed);
        let mut head = self.head.clone();
        tokio::time::timeout(within, head.wait_for(|h| *h >= target))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The last position known to be in the journal; changes wake consumers.
    pub fn head(&self) -> watch::Receiver<u64> {
        self.head.clone()
    }
}

impl Drop for Journaler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a consumer reads and how.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// Names the cursor and the dead letters; unique per consuming service.
    pub name: String,
    /// Subject prefixes it wants (empty: everything).
    pub prefixes: Vec<String>,
    /// Events read per batch.
    pub batch: usize,
    /// Wait before the one retry of a failed event.
    pub retry_delay: Duration,
}

impl ConsumerConfig {
    pub fn new(name: &str, prefixes: &[&str]) -> ConsumerConfig {
        ConsumerConfig {
            name: name.to_string(),
            prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
            batch: 256,
            retry_delay: Duration::from_millis(500),
        }
    }

    pub(crate) fn wants(&self, e: &Envelope) -> bool {
        self.prefixes.is_empty() || self.prefixes.iter().any(|p| e.subject.starts_with(p))
    }
}

/// A domain service's event handler.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, position: u64, event: &Envelope) -> Result<(), String>;

    /// Whether the consumer should hand this handler what it reads in one
    /// call to [`Handler::handle_batch`] (one transaction, say).
    fn batched(&self) -> bool {
        false
    }

    /// Handles several events at once, in order, for a `batched` handler.
    /// Ok means every one is handled. On an error the consumer goes through
    /// them again one at a time, with its retry and dead letters, so what
    /// the batch did is done again: handlers are idempotent.
    async fn handle_batch(&self, events: &[(u64, &Envelope)]) -> Result<(), String> {
        for (position, event) in events {
            self.handle(*position, event).await?;
        }
        Ok(())
    }
}

/// A running journal consumer; dropping it stops it (what it had not yet
/// recorded as processed comes again next time).
pub struct JournalConsumer {
    stats: Arc<ConsumerStats>,
    task: JoinHandle<()>,
}

impl JournalConsumer {
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    pub fn counters(&self) -> Arc<ConsumerStats> {
        self.stats.clone()
    }
}

impl Drop for JournalConsumer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs `handler` over the journal from the consumer's cursor on, woken by
/// `head` as the journal grows.
pub fn run_consumer(
    journal: Arc<dyn Journal>,
    mut head: watch::Receiver<u64>,
    cfg: ConsumerConfig,
    handler: Arc<dyn Handler>,
) -> JournalConsumer {
    let stats = Arc::new(ConsumerStats::default());
    let counters = stats.clone();
    let task = tokio::spawn(async move {
        let mut cursor = loop {
            match journal.cursor(&cfg.name).await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::warn!(consumer = %cfg.name, error = %e, "cannot read the cursor; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        let mut stored = cursor;
        let mut stored_at = std::time::Instant::now();
        loop {
            let events = match journal.after(cursor, cfg.batch.max(1)).await {
                Ok(ev) => ev,
                Err(e) => {
                    tracing::warn!(consumer = %cfg.name, error = %e, "cannot read the journal; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if events.is_empty() {
                // Idle: the cursor is stored before sleeping until the
                // journal grows past it.
                if stored != cursor {
                    store_cursor(&*journal, &cfg.name, cursor).await;
                    (stored, stored_at) = (cursor, std::time::Instant::now());
                }
                if head.wait_for(|h| *h > cursor).await.is_err() {
                    return;
                }
                continue;
            }
            let wanted: Vec<(u64, &Envelope)> = events
                .iter()
                .filter(|(_, ev)| cfg.wants(ev))
                .map(|(pos, ev)| (*pos, ev))
                .collect();
            let together = wanted.len() > 1
                && handler.batched()
                && {
                    match handler.handle_batch(&wanted).await {
                        Ok(()) => {
                            counters
                                .processed
                                .fetch_add(wanted.len() as u64, Ordering::Relaxed);
                            true
                        }
                        Err(e) => {
                            tracing::info!(consumer = %cfg.name, events = wanted.len(), error = %e, "a batch failed; one at a time");
                            false
                        }
                    }
                };
            if !together {
                for (pos, ev) in &wanted {
                    deliver(&*journal, &cfg, &*handler, &counters, *pos, ev).await;
                }
            }
            if let Some((pos, _)) = events.last() {
                cursor = *pos;
            }
            if stored_at.elapsed() >= CURSOR_EVERY {
                store_cursor(&*journal, &cfg.name, cursor).await;
                (stored, stored_at) = (cursor, std::time::Instant::now());
            }
        }
    });
    JournalConsumer { stats, task }
}

async fn store_cursor(journal: &dyn Journal, name: &str, cursor: u64) {
    while let Err(e) = journal.set_cursor(name, cursor).await {
        tracing::warn!(consumer = %name, error = %e, "cannot store the cursor; retrying");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Reads the journal after a position, then follows it as it grows: the
/// embedded half of [`Bus::read_from`](crate::Bus::read_from).
pub(crate) struct JournalReader {
    journal: Arc<dyn Journal>,
    head: watch::Receiver<u64>,
    position: u64,
    buffered: std::collections::VecDeque<(u64, Envelope)>,
    /// Nothing read yet: the first read checks for a gap.
    fresh: bool,
    /// The log's last position when reading began (the journal may still
    /// be catching up to it).
    log_head: u64,
}

/// Events read from the journal at a time.
const READ_BATCH: usize = 512;

impl JournalReader {
    pub(crate) fn new(
        journal: Arc<dyn Journal>,
        head: watch::Receiver<u64>,
        position: u64,
        log_head: u64,
    ) -> JournalReader {
        JournalReader {
            journal,
            head,
            position,
            buffered: Default::default(),
            fresh: true,
            log_head,
        }
    }
}

#[async_trait]
impl crate::Subscription for JournalReader {
    async fn next(&mut self) -> Option<crate::Delivery> {
        loop {
            if let Some((pos, ev)) = self.buffered.pop_front() {
                self.position = pos;
                return Some(crate::Delivery::Logged(pos, ev));
            }
            let fresh = std::mem::take(&mut self.fresh);
            let events = match self.journal.after(self.position, READ_BATCH).await {
                Ok(ev) => ev,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the journal; retrying");
                    self.fresh = fresh;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if fresh {
                // A position the journal has trimmed past, or one beyond its
                // head (a journal that was reset): the reader must rebuild.
                let gap = match events.first() {
                    Some((first, _)) => first.saturating_sub(self.position + 1),
                    None if self.position > self.log_head => 1,
                    None => 0,
                };
                if gap > 0 {
                    self.buffered.extend(events);
                    return Some(crate::Delivery::Lagged(gap));
                }
            }
            if events.is_empty() {
                let at = self.position;
                self.head.wait_for(|h| *h > at).await.ok()?;
                continue;
            }
            self.buffered.extend(events);
        }
    }
}

/// One event: the handler, one retry, then the dead letters.
async fn deliver(
    journal: &dyn Journal,
    cfg: &ConsumerConfig,
    handler: &dyn Handler,
    stats: &ConsumerStats,
    pos: u64,
    ev: &Envelope,
) {
    let first = handler.handle(pos, ev).await;
    let Err(first) = first else {
        stats.processed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    stats.retried.fetch_add(1, Ordering::Relaxed);
    tracing::info!(consumer = %cfg.name, position = pos, error = %first, "handler failed; retrying once");
    tokio::time::sleep(cfg.retry_delay).await;
    match handler.handle(pos, ev).await {
        Ok(()) => {
            stats.processed.fetch_add(1, Ordering::Relaxed);
        }
        Err(second) => {
            tracing::warn!(consumer = %cfg.name, position = pos, error = %second, "handler failed twice; dead letter");
            while let Err(e) = journal.dead_letter(&cfg.name, pos, ev, &second).await {
                tracing::warn!(consumer = %cfg.name, error = %e, "cannot store the dead letter; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use parking_lot::Mutex;

    use super::*;
    use crate::{Bus, MemoryBus};

    /// A journal in memory, for the runner's rules; the SQL one is tested
    /// in the store's contract suite.
    #[derive(Default)]
    struct MemJournal {
        events: Mutex<BTreeMap<u64, Envelope>>,
        cursors: Mutex<HashMap<String, u64>>,
        dead: Mutex<Vec<(String, u64, String)>>,
        /// Appends fail while this is above zero (and count it down).
        fail_appends: Mutex<u32>,
    }

    #[async_trait]
    impl Journal for MemJournal {
        async fn head(&self) -> Result<u64, BusError> {
            Ok(self.events.lock().keys().next_back().copied().unwrap_or(0))
        }
        async fn append(&self, events: &[(u64, Envelope)]) -> Result<(), BusError> {
            let mut f = self.fail_appends.lock();
            if *f > 0 {
                *f -= 1;
                return Err(BusError::Unavailable("the database is down".into()));
            }
            let mut all = self.events.lock();
            for (p, e) in events {
                all.entry(*p).or_insert_with(|| e.clone());
            }
            Ok(())
        }
        async fn after(
            &self,
            position: u64,
            limit: usize,
        ) -> Result<Vec<(u64, Envelope)>, BusError> {
            Ok(self
                .events
                .lock()
                .range(position + 1..)
                .take(limit)
                .map(|(p, e)| (*p, e.clone()))
                .collect())
        }
        async fn cursor(&self, consumer: &str) -> Result<u64, BusError> {
            Ok(self.cursors.lock().get(consumer).copied().unwrap_or(0))
        }
        async fn set_cursor(&self, consumer: &str, position: u64) -> Result<(), BusError> {
            self.cursors.lock().insert(consumer.into(), position);
            Ok(())
        }
        async fn dead_letter(
            &self,
            consumer: &str,
            position: u64,
            _e: &Envelope,
            error: &str,
        ) -> Result<(), BusError> {
            self.dead
                .lock()
                .push((consumer.into(), position, error.into()));
            Ok(())
        }
    }

    /// Records what it saw; fails events whose data is `fail_times` > 0 that
    /// many times.
    #[derive(Default)]
    struct Recorder {
        seen: Mutex<Vec<(u64, String)>>,
        failures_left: Mutex<HashMap<String, u32>>,
    }

    #[async_trait]
    impl Handler for Recorder {
        async fn handle(&self, position: u64, event: &Envelope) -> Result<(), String> {
            if let Some(n) = self.failures_left.lock().get_mut(&event.id)
                && *n > 0
            {
                *n -= 1;
                return Err(format!("cannot handle {}", event.id));
            }
            self.seen.lock().push((position, event.id.clone()));
            Ok(())
        }
    }

    fn ev(id: &str, subject: &str) -> Envelope {
        Envelope::json(id.into(), "test".into(), "hearth.test", subject, vec![1])
    }

    async fn until(what: &str, mut ok: impl FnMut() -> bool) {
        for _ in 0..200 {
            if ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("never: {what}");
    }

    fn cfg(name: &str, prefixes: &[&str]) -> ConsumerConfig {
        let mut c = ConsumerConfig::new(name, prefixes);
        c.batch = 3;
        c.retry_delay = Duration::from_millis(10);
        c
    }

    #[tokio::test]
    async fn consumers_get_every_logged_event_once_in_order_and_resume_after_a_restart() {
        let journal = Arc::new(MemJournal::default());
        let bus = MemoryBus::journaled(64, journal.clone()).await.unwrap();
        for i in 1..=7 {
            let subject = if i % 2 == 0 {
                "presence.x"
            } else {
                "chat.community.1"
            };
            bus.append(ev(&i.to_string(), subject))
                .await
                .unwrap()
                .await
                .unwrap();
        }
        // Real-time events are not journaled.
        bus.publish(ev("rt", "chat.community.1")).await.unwrap();
        let rec = Arc::new(Recorder::default());
        let c = bus
            .consume(cfg("search", &["chat."]), rec.clone())
            .await
            .unwrap();
        until("four chat events", || rec.seen.lock().len() == 4).await;
        assert_eq!(
            *rec.seen.lock(),
            vec![
                (1, "1".into()),
                (3, "3".into()),
                (5, "5".into()),
                (7, "7".into())
            ]
        );
        until("the cursor stored", || {
            journal.cursors.lock().get("search") == Some(&7)
        })
        .await;
        drop(c);
        drop(bus);

        // A new process: positions continue after the journal's head, and the
        // consumer resumes after its cursor.
        let bus = MemoryBus::journaled(64, journal.clone()).await.unwrap();
        let p = bus
            .append(ev("8", "chat.community.1"))
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(p, 8, "positions are unique across restarts");
        let rec2 = Arc::new(Recorder::default());
        let _c = bus
            .consume(cfg("search", &["chat."]), rec2.clone())
            .await
            .unwrap();
        until("the new event", || rec2.seen.lock().len() == 1).await;
        assert_eq!(*rec2.seen.lock(), vec![(8, "8".into())]);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            rec2.seen.lock().len(),
            1,
            "nothing processed before comes again"
        );
        assert_eq!(c_stats_processed(&_c), 1);
    }

    fn c_stats_processed(c: &crate::Consumer) -> u64 {
        c.stats().processed
    }

    #[derive(Default)]
    struct Batcher {
        seen: Mutex<Vec<String>>,
        batches: Mutex<Vec<usize>>,
        fail_batches: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl Handler for Batcher {
        async fn handle(&self, _position: u64, event: &Envelope) -> Result<(), String> {
            self.seen.lock().push(event.id.clone());
            Ok(())
        }

        fn batched(&self) -> bool {
            true
        }

        async fn handle_batch(&self, events: &[(u64, &Envelope)]) -> Result<(), String> {
            if self.fail_batches.load(Ordering::Relaxed) {
                return Err("the batch failed".into());
            }
            self.batches.lock().push(events.len());
            self.seen
                .lock()
                .extend(events.iter().map(|(_, e)| e.id.clone()));
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_batched_handler_gets_what_was_read_at_once_and_one_by_one_if_that_fails() {
        let journal = Arc::new(MemJournal::default());
        let bus = MemoryBus::journaled(64, journal.clone()).await.unwrap();
        for id in ["a", "b", "c", "d", "e"] {
            bus.append(ev(id, "chat.community.1"))
                .await
                .unwrap()
                .await
                .unwrap();
        }
        // All five in the journal first (also tests `flush`), so the reads
        // find them together.
        crate::Bus::flush(&bus, Duration::from_secs(5))
            .await
            .unwrap();
        let whole = Arc::new(Batcher::default());
        let c = bus.consume(cfg("whole", &[]), whole.clone()).await.unwrap();
        until("five in a batch", || whole.seen.lock().len() == 5).await;
        // (The tests read three events at a time.)
        assert_eq!(*whole.batches.lock(), vec![3, 2]);
        assert_eq!(c.stats().processed, 5);

        let failing = Arc::new(Batcher::default());
        failing.fail_batches.store(true, Ordering::Relaxed);
        let c = bus
            .consume(cfg("failing", &[]), failing.clone())
            .await
            .unwrap();
        until("five one by one", || failing.seen.lock().len() == 5).await;
        assert_eq!(*failing.seen.lock(), ["a", "b", "c", "d", "e"]);
        assert!(failing.batches.lock().is_empty());
        let s = c.stats();
        assert_eq!((s.processed, s.retried, s.dead_lettered), (5, 0, 0));
    }

    #[tokio::test]
    async fn a_failure_is_retried_once_then_dead_lettered_and_the_rest_goes_on() {
        let journal = Arc::new(MemJournal::default());
        let bus = MemoryBus::journaled(64, journal.clone()).await.unwrap();
        let rec = Arc::new(Recorder::default());
        rec.failures_left.lock().insert("flaky".into(), 1);
        rec.failures_left.lock().insert("poison".into(), 99);
        let c = bus.consume(cfg("audit", &[]), rec.clone()).await.unwrap();
        for id in ["a", "flaky", "poison", "b"] {
            bus.append(ev(id, "chat.community.1"))
                .await
                .unwrap()
                .await
                .unwrap();
        }
        until("a, flaky and b", || rec.seen.lock().len() == 3).await;
        let ids: Vec<String> = rec.seen.lock().iter().map(|(_, id)| id.clone()).collect();
        assert_eq!(ids, ["a", "flaky", "b"]);
        let dead = journal.dead.lock().clone();
        assert_eq!(dead.len(), 1);
        assert_eq!((dead[0].0.as_str(), dead[0].1), ("audit", 3));
        assert!(dead[0].2.contains("poison"));
        let s = c.stats();
        assert_eq!((s.processed, s.retried, s.dead_lettered), (3, 2, 1));
    }

    #[tokio::test]
    async fn a_journal_that_is_down_loses_nothing() {
        let journal = Arc::new(MemJournal::default());
        *journal.fail_appends.lock() = 3;
        let bus = MemoryBus::journaled(64, journal.clone()).await.unwrap();
        for i in 1..=5 {
            bus.append(ev(&i.to_string(), "chat.x"))
                .await
                .unwrap()
                .await
                .unwrap();
        }
        let rec = Arc::new(Recorder::default());
        let _c = bus.consume(cfg("notify", &[]), rec.clone()).await.unwrap();
        until("all five after the journal recovers", || {
            rec.seen.lock().len() == 5
        })
        .await;
        let positions: Vec<u64> = rec.seen.lock().iter().map(|(p, _)| *p).collect();
        assert_eq!(positions, [1, 2, 3, 4, 5]);
    }

    #[tokio::test]
    async fn a_reader_reads_after_its_position_then_follows_and_reports_gaps() {
        let journal = Arc::new(MemJournal::default());
        let bus = MemoryBus::journaled(64, journal.clone()).await.unwrap();
        for i in 1..=4 {
            bus.append(ev(&i.to_string(), "chat.x"))
                .await
                .unwrap()
                .await
                .unwrap();
        }
        let mut r = bus.read_from(2).await.unwrap();
        let mut next = async || match tokio::time::timeout(Duration::from_secs(5), r.next()).await {
            Ok(Some(crate::Delivery::Logged(p, e))) => (p, e.id),
            other => panic!("expected a logged event, got {other:?}"),
        };
        assert_eq!(next().await, (3, "3".to_string()));
        assert_eq!(next().await, (4, "4".to_string()));
        bus.append(ev("5", "chat.x")).await.unwrap().await.unwrap();
        assert_eq!(next().await, (5, "5".to_string()), "then it follows");

        // Trimmed past the position: the reader is told to rebuild.
        journal.events.lock().retain(|p, _| *p > 3);
        let mut r = bus.read_from(1).await.unwrap();
        assert!(matches!(r.next().await, Some(crate::Delivery::Lagged(2))));
        assert!(matches!(
            r.next().await,
            Some(crate::Delivery::Logged(4, _))
        ));
        // A position beyond the head (a journal that was reset).
        let mut r = bus.read_from(99).await.unwrap();
        assert!(matches!(r.next().await, Some(crate::Delivery::Lagged(_))));
        // Without a journal there is no durable log.
        assert!(MemoryBus::new(16).read_from(0).await.is_err());
    }
}
