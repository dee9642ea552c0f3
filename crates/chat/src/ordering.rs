//! Per-channel ordering of MESSAGE_CREATE without serializing the writes.
//!
//! IDs are minted under a short per-channel lock and registered as in flight;
//! the inserts then run concurrently (so Postgres can group-commit them), and
//! each finished message is announced only once every lower ID minted for the
//! same channel has finished too. Whoever completes the head of the line
//! announces everything ready behind it, in ID order. A request dropped
//! midway (client gone) releases its slot through [`Slot`]'s `Drop`, so one
//! cancelled send can never stall a channel.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use hearth_types::{ChannelId, MessageId};
use parking_lot::Mutex;

use crate::events::{ChatEvent, EventSink};

enum State {
    Pending,
    /// Finished: announce this (or nothing, for a failure or a duplicate).
    Done(Option<ChatEvent>),
}

#[derive(Default)]
struct Line {
    inflight: BTreeMap<MessageId, State>,
}

#[derive(Default)]
pub(crate) struct Sequencer {
    lines: Mutex<HashMap<ChannelId, Arc<Mutex<Line>>>>,
}

/// A reserved place in a channel's line.
pub(crate) struct Slot {
    line: Arc<Mutex<Line>>,
    id: MessageId,
    sink: Arc<dyn EventSink>,
    finished: bool,
}

impl Sequencer {
    /// Mints the next ID for `channel` with `mint` and reserves its place.
    pub fn reserve(
        &self,
        channel: ChannelId,
        sink: Arc<dyn EventSink>,
        mint: impl FnOnce() -> MessageId,
    ) -> Slot {
        let line = {
            let mut lines = self.lines.lock();
            if lines.len() > 100_000 {
                lines.retain(|_, l| Arc::strong_count(l) > 1 || !l.lock().inflight.is_empty());
            }
            lines.entry(channel).or_default().clone()
        };
        let id = {
            let mut l = line.lock();
            let id = mint();
            l.inflight.insert(id, State::Pending);
            id
        };
        Slot {
            line,
            id,
            sink,
            finished: false,
        }
    }
}

impl Slot {
    pub fn id(&self) -> MessageId {
        self.id
    }

    /// Marks this message finished and announces every finished message at
    /// the head of the line, in ID order.
    pub fn finish(mut self, event: Option<ChatEvent>) {
        self.complete(event);
    }

    fn complete(&mut self, event: Option<ChatEvent>) {
        if self.finished {
            return;
        }
        self.finished = true;
        let mut l = self.line.lock();
        l.inflight.insert(self.id, State::Done(event));
        while let Some(entry) = l.inflight.first_entry() {
            if matches!(entry.get(), State::Pending) {
                break;
            }
            if let State::Done(Some(ev)) = entry.remove() {
                // Emitting only queues the event (never blocks), so doing it
                // under the line's lock keeps the order without stalling others.
                self.sink.emit(ev);
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.complete(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    struct Collect(Mutex<Vec<i64>>);
    impl EventSink for Collect {
        fn emit(&self, e: ChatEvent) {
            if let ChatEvent::TypingStart { at_ms, .. } = e {
                self.0.lock().push(at_ms);
            }
        }
    }

    fn ev(n: i64) -> Option<ChatEvent> {
        Some(ChatEvent::TypingStart {
            channel_id: ChannelId(1),
            community_id: None,
            user_id: hearth_types::UserId(1),
            at_ms: n,
        })
    }

    #[test]
    fn announces_in_id_order_whatever_the_finish_order() {
        let sink = Arc::new(Collect(Mutex::new(Vec::new())));
        let seq = Sequencer::default();
        let next = AtomicI64::new(0);
        let mint = || MessageId(next.fetch_add(1, Ordering::SeqCst) + 1);
        let a = seq.reserve(ChannelId(1), sink.clone(), mint);
        let b = seq.reserve(ChannelId(1), sink.clone(), mint);
        let c = seq.reserve(ChannelId(1), sink.clone(), mint);
        let d = seq.reserve(ChannelId(1), sink.clone(), mint);
        c.finish(ev(3));
        b.finish(None); // a duplicate: nothing to announce
        assert!(sink.0.lock().is_empty(), "waits for the head");
        a.finish(ev(1));
        assert_eq!(*sink.0.lock(), vec![1, 3]);
        drop(d); // cancelled midway: releases its place
        let e = seq.reserve(ChannelId(1), sink.clone(), mint);
        e.finish(ev(5));
        assert_eq!(*sink.0.lock(), vec![1, 3, 5]);
    }
}
