//! The recent window of the bus log, kept by every node.
//!
//! Every node follows the same log in the same order, so every node's
//! window holds the same events at the same positions. That is what lets a
//! session resume on any node: its record names log positions, and the
//! node it lands on looks the events up here. The window is bounded by
//! count and by age ([`crate::config::Config::gateway_resume_secs`]); a
//! client further behind gets `invalid_session` and catches up over REST.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::events::{Change, EventKind, Subject};

/// One log event as the gateway needs it: where it goes, what it is, and
/// its encoded tail, all parsed once when it is read from the log.
#[derive(Debug)]
pub struct LogEvent {
    pub pos: u64,
    pub subject: Subject,
    /// The dispatch name; `None` for a name this build does not know
    /// (still delivered by its subject).
    pub kind: Option<EventKind>,
    /// What it changes of who may see what (only view-changing kinds).
    pub change: Option<Change>,
    /// The dispatch without `{"op":..,"s":..,` (shared by every recipient).
    pub tail: Arc<str>,
    pub at: Instant,
}

impl LogEvent {
    pub fn is(&self, kind: EventKind) -> bool {
        self.kind == Some(kind)
    }
}

pub struct Ring {
    events: VecDeque<Arc<LogEvent>>,
    capacity: usize,
    max_age: Duration,
}

impl Ring {
    pub fn new(capacity: usize, max_age: Duration) -> Ring {
        Ring {
            events: VecDeque::new(),
            capacity: capacity.max(1),
            max_age,
        }
    }

    pub fn push(&mut self, ev: Arc<LogEvent>) {
        while self.events.len() >= self.capacity
            || self
                .events
                .front()
                .is_some_and(|e| e.at.elapsed() > self.max_age)
        {
            self.events.pop_front();
        }
        self.events.push_back(ev);
    }

    fn index_of(&self, pos: u64) -> Result<usize, usize> {
        self.events.binary_search_by_key(&pos, |e| e.pos)
    }

    pub fn get(&self, pos: u64) -> Option<Arc<LogEvent>> {
        self.index_of(pos).ok().map(|i| self.events[i].clone())
    }

    /// Every event after `pos`, if the window still holds all of them.
    pub fn after(&self, pos: u64) -> Option<Vec<Arc<LogEvent>>> {
        let Some(oldest) = self.events.front() else {
            return Some(Vec::new());
        };
        if oldest.pos > pos + 1 {
            // Positions are dense, so a gap before the oldest kept event
            // means events after `pos` were dropped.
            return None;
        }
        let start = match self.index_of(pos) {
            Ok(i) => i + 1,
            Err(i) => i,
        };
        Some(self.events.range(start..).cloned().collect())
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(pos: u64) -> Arc<LogEvent> {
        Arc::new(LogEvent {
            pos,
            subject: Subject::User(hearth_types::UserId(1)),
            kind: None,
            change: None,
            tail: Arc::from(""),
            at: Instant::now(),
        })
    }

    #[test]
    fn keeps_a_bounded_window_and_knows_what_it_lost() {
        let mut r = Ring::new(3, Duration::from_secs(60));
        for p in 1..=5 {
            r.push(ev(p));
        }
        assert_eq!(r.len(), 3);
        assert!(r.get(2).is_none());
        assert_eq!(r.get(4).map(|e| e.pos), Some(4));
        assert!(r.after(1).is_none(), "2 was dropped");
        let after2: Vec<u64> = r.after(2).unwrap().iter().map(|e| e.pos).collect();
        assert_eq!(after2, [3, 4, 5]);
        let after4: Vec<u64> = r.after(4).unwrap().iter().map(|e| e.pos).collect();
        assert_eq!(after4, [5]);
        assert!(r.after(9).unwrap().is_empty());
    }
}
