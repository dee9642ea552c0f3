//! Appending log events in order, with nothing acknowledged lost.
//!
//! One task hands events to the bus in the order they were queued (appends
//! are pipelined: it does not wait for each one to be stored); a second
//! collects the storage acknowledgements in the same order. Every log event
//! stays in the [`Ledger`] until one of its copies is acknowledged.
//!
//! Why copies: when a NATS server dies under the connection, the appends
//! written to it and not yet acknowledged may or may not be stored, and
//! their acknowledgements only time out later. Were they appended again
//! only then, events appended after the reconnect would be stored before
//! them, out of order. So as soon as the bus reports the connection lost
//! or made again ([`Bus::connection_epoch`]), everything unacknowledged is
//! appended again, in order, before anything new. The log keeps one copy
//! of an envelope id (NATS de-duplicates within 2 min), so appending one
//! that was stored after all changes nothing. An event whose every copy
//! failed is appended again after a pause, for up to [`RETRY_FOR`]; one
//! whose copy is only slow to be acknowledged is left alone, so a loaded
//! bus is not sent everything twice.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth_bus::{Ack, Bus, BusError, Envelope};
use hearth_types::ChannelId;
use parking_lot::Mutex;
use tokio::sync::mpsc;

/// How long a log event is appended again after failing: well inside the
/// log's 2 min de-duplication window, so a copy stored after all is kept
/// once.
pub const RETRY_FOR: Duration = Duration::from_secs(50);
/// The pause before appending again events whose every copy failed.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// What the appending task is asked to do.
pub enum Work {
    /// An event, with the channel whose gate waits for it to be stored.
    Event(Envelope, Option<ChannelId>),
    /// Append again whatever is still unacknowledged.
    Retry,
}

/// An appended event's outcome, for the publisher to act on.
pub struct Outcome {
    pub event: Envelope,
    pub gated: Option<ChannelId>,
    pub stored: bool,
}

struct Entry {
    no: u64,
    event: Envelope,
    gated: Option<ChannelId>,
    /// Copies handed to the bus whose acknowledgement has not come.
    copies: u32,
    since: Instant,
    done: bool,
}

/// Log events not yet known to be stored, oldest first.
#[derive(Default)]
struct Ledger {
    entries: VecDeque<Entry>,
    retry_pending: bool,
}

impl Ledger {
    fn entry(&mut self, no: u64) -> Option<&mut Entry> {
        // Acks come in order: the entry is at or near the front.
        self.entries.iter_mut().find(|e| e.no == no)
    }

    /// Unacknowledged events (all of them, or only those with no copy in
    /// flight), each counted as one more copy in flight.
    fn take_copies(&mut self, all: bool) -> Vec<(u64, Envelope)> {
        self.entries
            .iter_mut()
            .filter(|e| !e.done && (all || e.copies == 0))
            .map(|e| {
                e.copies += 1;
                (e.no, e.event.clone())
            })
            .collect()
    }
}

/// Starts the two tasks; `on_outcome` runs once per log event (stored, or
/// given up after [`RETRY_FOR`]); `publish` handles events outside the log.
pub fn start(
    bus: Arc<dyn Bus>,
    capacity: usize,
    on_outcome: impl Fn(Outcome) + Send + 'static,
    publish: impl Fn(&str, bool) + Send + 'static,
) -> mpsc::Sender<Work> {
    let (tx, mut rx) = mpsc::channel::<Work>(capacity);
    let (ack_tx, mut ack_rx) = mpsc::unbounded_channel::<(u64, Result<Ack, BusError>)>();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let (bus1, ledger1) = (bus.clone(), ledger.clone());
    tokio::spawn(async move {
        let (bus, ledger) = (bus1, ledger1);
        let mut epoch = bus.connection_epoch();
        let mut next_no = 0u64;
        while let Some(w) = rx.recv().await {
            let (ev, gated) = match w {
                Work::Retry => {
                    // Only what failed: an append merely slow to be
                    // acknowledged (a loaded bus) is not doubled.
                    ledger.lock().retry_pending = false;
                    append_copies(bus.as_ref(), &ledger, &ack_tx, false).await;
                    continue;
                }
                Work::Event(ev, gated) => (ev, gated),
            };
            if !ev.subject.starts_with("chat.") {
                let ty = ev.ty.clone();
                let ok = bus.publish(ev).await.is_ok();
                publish(&ty, ok);
                continue;
            }
            let now = bus.connection_epoch();
            if now != epoch {
                // Whatever was written to the lost connection may be gone:
                // all of it again, before anything new.
                epoch = now;
                append_copies(bus.as_ref(), &ledger, &ack_tx, true).await;
            }
            next_no += 1;
            ledger.lock().entries.push_back(Entry {
                no: next_no,
                event: ev.clone(),
                gated,
                copies: 1,
                since: Instant::now(),
                done: false,
            });
            let ack = bus.append(ev).await;
            let _ = ack_tx.send((next_no, ack));
        }
    });
    let retry = tx.downgrade();
    tokio::spawn(async move {
        while let Some((no, ack)) = ack_rx.recv().await {
            let stored = match ack {
                Ok(ack) => ack.await.is_ok(),
                Err(_) => false,
            };
            let mut finished = Vec::new();
            let mut ask_retry = false;
            {
                let mut l = ledger.lock();
                if let Some(e) = l.entry(no) {
                    e.copies -= 1;
                    if !e.done && (stored || e.copies == 0) {
                        if stored || e.since.elapsed() >= RETRY_FOR {
                            e.done = true;
                            if !stored {
                                tracing::error!(id = %e.event.id, ty = %e.event.ty, "a log event could not be stored; it is lost to live delivery");
                            } else if e.since.elapsed() > Duration::from_secs(1) {
                                tracing::info!(id = %e.event.id, "a log event was stored after a retry");
                            }
                            finished.push(Outcome {
                                event: e.event.clone(),
                                gated: e.gated,
                                stored,
                            });
                        } else {
                            ask_retry = true;
                        }
                    }
                }
                while l.entries.front().is_some_and(|e| e.done) {
                    l.entries.pop_front();
                }
                if ask_retry && !l.retry_pending {
                    l.retry_pending = true;
                } else {
                    ask_retry = false;
                }
            }
            if ask_retry && let Some(tx) = retry.upgrade() {
                tokio::spawn(async move {
                    tokio::time::sleep(RETRY_PAUSE).await;
                    let _ = tx.send(Work::Retry).await;
                });
            }
            for o in finished {
                on_outcome(o);
            }
        }
    });
    tx
}

async fn append_copies(
    bus: &dyn Bus,
    ledger: &Mutex<Ledger>,
    acks: &mpsc::UnboundedSender<(u64, Result<Ack, BusError>)>,
    all: bool,
) {
    let copies = ledger.lock().take_copies(all);
    if !copies.is_empty() {
        tracing::warn!(
            events = copies.len(),
            "appending unacknowledged log events again"
        );
    }
    for (no, ev) in copies {
        let ack = bus.append(ev).await;
        let _ = acks.send((no, ack));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicU64, Ordering};

    use async_trait::async_trait;
    use hearth_bus::Subscription;

    use super::*;

    /// A log that records every append and fails the acknowledgement of the
    /// first copy of the events it is told to, at once or after a while (as
    /// NATS does when the server it was written to died).
    #[derive(Default)]
    struct Log {
        appended: Mutex<Vec<String>>,
        fail_once: Mutex<HashSet<String>>,
        fail_late_once: Mutex<HashSet<String>>,
        epoch: AtomicU64,
    }

    #[async_trait]
    impl Bus for Log {
        fn name(&self) -> &'static str {
            "test-log"
        }
        fn connection_epoch(&self) -> u64 {
            self.epoch.load(Ordering::SeqCst)
        }
        async fn publish(&self, _: Envelope) -> Result<(), BusError> {
            Ok(())
        }
        async fn append(&self, e: Envelope) -> Result<Ack, BusError> {
            let n = {
                let mut a = self.appended.lock();
                a.push(e.id.clone());
                a.len() as u64
            };
            if self.fail_once.lock().remove(&e.id) {
                return Ok(Box::pin(async {
                    Err(BusError::Unavailable("lost".into()))
                }));
            }
            if self.fail_late_once.lock().remove(&e.id) {
                return Ok(Box::pin(async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Err(BusError::Unavailable("timed out".into()))
                }));
            }
            Ok(Box::pin(async move { Ok(n) }))
        }
        async fn follow(&self, _: u64) -> Result<(Box<dyn Subscription>, u64), BusError> {
            Err(BusError::Invalid("not in this test".into()))
        }
        async fn subscribe(&self, _: &str) -> Result<Box<dyn Subscription>, BusError> {
            Err(BusError::Invalid("not in this test".into()))
        }
        async fn ping(&self) -> Result<(), BusError> {
            Ok(())
        }
    }

    fn event(id: &str) -> Work {
        Work::Event(
            Envelope::json(
                id.into(),
                "hearth://node/1".into(),
                "hearth.MESSAGE_CREATE",
                "chat.community.1.channel.2",
                b"{}".to_vec(),
            ),
            None,
        )
    }

    fn started(log: &Arc<Log>) -> (mpsc::Sender<Work>, mpsc::UnboundedReceiver<(String, bool)>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let work = start(
            log.clone(),
            16,
            move |o: Outcome| {
                let _ = tx.send((o.event.id.clone(), o.stored));
            },
            |_: &str, _: bool| {},
        );
        (work, rx)
    }

    async fn outcomes(
        rx: &mut mpsc::UnboundedReceiver<(String, bool)>,
        n: usize,
    ) -> Vec<(String, bool)> {
        let mut got = Vec::new();
        while got.len() < n {
            let o = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("an outcome in time")
                .unwrap();
            got.push(o);
        }
        got.sort();
        got
    }

    #[tokio::test]
    async fn an_event_whose_append_failed_is_appended_again_and_stored() {
        let log = Arc::new(Log::default());
        log.fail_once.lock().insert("e2".into());
        let (work, mut rx) = started(&log);
        for id in ["e1", "e2", "e3"] {
            work.send(event(id)).await.unwrap();
        }
        let got = outcomes(&mut rx, 3).await;
        assert_eq!(
            got,
            [
                ("e1".into(), true),
                ("e2".into(), true),
                ("e3".into(), true)
            ]
        );
        // Only the failed one again: e3, whose copy was fine, is not doubled.
        assert_eq!(*log.appended.lock(), ["e1", "e2", "e3", "e2"]);
    }

    #[tokio::test]
    async fn after_a_lost_connection_what_is_unacknowledged_goes_again_before_anything_new() {
        let log = Arc::new(Log::default());
        log.fail_late_once.lock().insert("e1".into());
        let (work, mut rx) = started(&log);
        work.send(event("e1")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The connection e1 was written to is gone (its ack times out later).
        log.epoch.fetch_add(1, Ordering::SeqCst);
        work.send(event("e2")).await.unwrap();
        let got = outcomes(&mut rx, 2).await;
        assert_eq!(got, [("e1".into(), true), ("e2".into(), true)]);
        // e1's copy is in the log before e2: the log keeps their order.
        assert_eq!(*log.appended.lock(), ["e1", "e1", "e2"]);
    }
}
