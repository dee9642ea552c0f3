//! Sequencing shards: the part of routing that scales with the runtime's
//! workers.
//!
//! Routing decides, in log order on one task, which session gets which
//! frame ([`super::route`]). Sequencing a frame into a session (its lock,
//! a slot in its window, the wake-up of its connection) is most of what a
//! message to thousands of sessions costs the routing task, and the
//! connection that is woken runs on the worker that woke it. So sessions
//! are partitioned over one shard per worker: a large fan-out is cut into
//! one batch per shard, each shard task sequences its batch and wakes its
//! connections on its own worker, and routing goes on with the next event
//! meanwhile.
//!
//! Order: a session belongs to one shard for its life and a shard takes
//! its batches in order, so what routing queues for a session arrives in
//! routing's order. Routing still sequences small deliveries itself (a
//! hop through a shard would add latency for nothing), but only into
//! sessions whose shard has nothing queued: a shard with batches in
//! flight gets the frame queued behind them instead. Which session sees
//! what, and the claim of each log position, stay on the routing task:
//! shards only sequence.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

use super::hub::{Kind, Session};

/// One frame for one session.
type Push = (Arc<Session>, Kind, Arc<str>);

/// Audiences at least this large are spread over the shards; a smaller
/// one is sequenced by routing itself (shards permitting).
pub const SPREAD_FROM: usize = 512;

pub struct Shards {
    queues: Vec<Queue>,
}

struct Queue {
    tx: mpsc::UnboundedSender<Vec<Push>>,
    /// Batches handed to the shard and not yet sequenced.
    in_flight: Arc<AtomicUsize>,
    /// The batch routing is filling for this shard (sent by [`Shards::flush`]).
    batch: RefCell<Vec<Push>>,
}

impl Shards {
    /// One shard task per worker of the current runtime; none on a runtime
    /// with one worker (routing then sequences everything itself: a second
    /// task on the same thread would only add a hop).
    pub fn start() -> Shards {
        let workers = tokio::runtime::Handle::try_current()
            .map(|h| h.metrics().num_workers())
            .unwrap_or(1);
        Shards::with(if workers > 1 { workers } else { 0 })
    }

    /// `n` shard tasks (0: none).
    pub fn with(n: usize) -> Shards {
        let queues = (0..n)
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel();
                let in_flight = Arc::new(AtomicUsize::new(0));
                tokio::spawn(run(rx, in_flight.clone()));
                Queue {
                    tx,
                    in_flight,
                    batch: RefCell::new(Vec::new()),
                }
            })
            .collect();
        Shards { queues }
    }

    fn queue_of(&self, s: &Arc<Session>) -> Option<&Queue> {
        if self.queues.is_empty() {
            return None;
        }
        // A session's address is fixed for its life; the low bits are
        // the allocator's alignment.
        let at = (Arc::as_ptr(s) as usize) >> 6;
        self.queues.get(at % self.queues.len())
    }

    /// Whether a fan-out to `n` sessions is worth spreading.
    pub fn spreads(&self, n: usize) -> bool {
        !self.queues.is_empty() && n >= SPREAD_FROM
    }

    /// Sequences a frame for `s` after everything routed for it before:
    /// at once if its shard has nothing queued, else behind what it has.
    pub fn push(&self, s: &Arc<Session>, kind: Kind, tail: &Arc<str>) {
        match self.queue_of(s) {
            Some(q) => {
                let mut batch = q.batch.borrow_mut();
                if batch.is_empty() && q.in_flight.load(Ordering::Acquire) == 0 {
                    s.push(kind, tail);
                } else {
                    batch.push((s.clone(), kind, tail.clone()));
                }
            }
            None => s.push(kind, tail),
        }
    }

    /// Queues a frame for `s` on its shard (part of a spread fan-out).
    pub fn queue(&self, s: &Arc<Session>, kind: Kind, tail: &Arc<str>) {
        match self.queue_of(s) {
            Some(q) => q.batch.borrow_mut().push((s.clone(), kind, tail.clone())),
            None => s.push(kind, tail),
        }
    }

    /// Hands each shard what was queued for it; routing calls it after
    /// every event it routes.
    pub fn flush(&self) {
        for q in &self.queues {
            let mut batch = q.batch.borrow_mut();
            if batch.is_empty() {
                continue;
            }
            q.in_flight.fetch_add(1, Ordering::AcqRel);
            if q.tx.send(std::mem::take(&mut *batch)).is_err() {
                // The shard is gone (the runtime is shutting down).
                q.in_flight.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// Batches queued on every shard and not yet sequenced.
    #[cfg(test)]
    fn backlog(&self) -> usize {
        self.queues
            .iter()
            .map(|q| q.in_flight.load(Ordering::Relaxed))
            .sum()
    }
}

async fn run(mut rx: mpsc::UnboundedReceiver<Vec<Push>>, in_flight: Arc<AtomicUsize>) {
    while let Some(batch) = rx.recv().await {
        for (s, kind, tail) in &batch {
            s.push(*kind, tail);
        }
        // Released only after every frame of the batch is sequenced:
        // routing may then sequence into these sessions directly.
        in_flight.fetch_sub(1, Ordering::Release);
        drop(batch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_types::{SessionId, UserId};

    fn session(i: i64) -> Arc<Session> {
        let s = Arc::new(Session::new(format!("s{i}"), UserId(i), SessionId(i), None));
        s.finish(Vec::new(), None);
        s
    }

    fn tails(s: &Session) -> Vec<String> {
        s.inner
            .lock()
            .replay
            .iter()
            .map(|f| f.tail.to_string())
            .collect()
    }

    /// Frames routed for a session arrive in routing's order whether they
    /// were spread, queued behind a spread, or sequenced directly.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_session_keeps_routing_order() {
        let shards = Shards::with(2);
        let sessions: Vec<_> = (0..2_000).map(session).collect();
        let mut expected = vec![Vec::new(); sessions.len()];
        for ev in 0..200u32 {
            let tail: Arc<str> = Arc::from(format!("e{ev}"));
            if ev % 3 == 0 {
                for s in &sessions {
                    shards.queue(s, Kind::Inline, &tail);
                }
                for e in expected.iter_mut() {
                    e.push(tail.to_string());
                }
            } else {
                // A small delivery: a few sessions, directly or queued.
                for k in 0..5 {
                    let i = (ev as usize * 7 + k * 131) % sessions.len();
                    shards.push(&sessions[i], Kind::Inline, &tail);
                    expected[i].push(tail.to_string());
                }
            }
            shards.flush();
            if ev % 50 == 0 {
                tokio::task::yield_now().await;
            }
        }
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while shards.backlog() > 0 {
            assert!(std::time::Instant::now() < until, "the shards drain");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        for (s, e) in sessions.iter().zip(&expected) {
            assert_eq!(&tails(s), e, "session {}", s.id);
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn one_worker_sequences_directly() {
        let shards = Shards::start();
        assert!(!shards.spreads(100_000));
        let s = session(1);
        let tail: Arc<str> = Arc::from("x");
        shards.queue(&s, Kind::Inline, &tail);
        shards.push(&s, Kind::Inline, &tail);
        shards.flush();
        assert_eq!(tails(&s), vec!["x", "x"]);
        assert_eq!(shards.backlog(), 0);
    }
}
