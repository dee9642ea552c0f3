//! At most N searches at once, the rest waiting in arrival order.
//!
//! A search is pure CPU. Run ten at once on two cores and the scheduler
//! time-slices them: a 0.2 ms query that loses its core waits out other
//! queries' slices and answers in 20 ms. Queued in order behind a few
//! running ones, it waits only for the queries ahead of it, so the tail
//! follows the work instead of the scheduler. It also bounds the CPU and
//! memory searches can take from the rest of the server.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::Thread;

use parking_lot::Mutex;

pub(crate) struct Gate {
    permits: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    running: usize,
    /// Callers waiting, first come first.
    queue: VecDeque<Arc<Waiter>>,
}

struct Waiter {
    thread: Thread,
    /// Set (before the unpark) when a finishing search hands its place
    /// over; a spurious wake-up finds it still false and parks again.
    admitted: AtomicBool,
}

impl Gate {
    pub fn new(permits: usize) -> Gate {
        Gate {
            permits: permits.max(1),
            state: Mutex::new(State::default()),
        }
    }

    /// Runs at once if fewer than `permits` run, else waits its turn. A
    /// finishing search hands its place straight to the first waiter
    /// (waking only that thread), so they start in arrival order.
    pub fn enter(&self) -> Pass<'_> {
        let waiter = {
            let mut s = self.state.lock();
            if s.running < self.permits {
                s.running += 1;
                return Pass { gate: self };
            }
            let w = Arc::new(Waiter {
                thread: std::thread::current(),
                admitted: AtomicBool::new(false),
            });
            s.queue.push_back(w.clone());
            w
        };
        while !waiter.admitted.load(Ordering::Acquire) {
            std::thread::park();
        }
        Pass { gate: self }
    }
}

/// A running search; its drop lets the next one in.
pub(crate) struct Pass<'a> {
    gate: &'a Gate,
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        let mut s = self.gate.state.lock();
        match s.queue.pop_front() {
            // The place passes on: `running` stays the same.
            Some(w) => {
                drop(s);
                w.admitted.store(true, Ordering::Release);
                w.thread.unpark();
            }
            None => s.running -= 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn never_more_than_the_permits_run() {
        let gate = Arc::new(Gate::new(2));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (gate, running, most) = (gate.clone(), running.clone(), most.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let _pass = gate.enter();
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_micros(200));
                        running.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert_eq!(running.load(Ordering::SeqCst), 0);
    }
}
