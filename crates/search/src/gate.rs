//! At most N searches at once, the rest waiting in arrival order.
//!
//! A search is pure CPU. Run ten at once on two cores and the scheduler
//! time-slices them: a 0.2 ms query that loses its core waits out other
//! queries' slices and answers in 20 ms. Queued in order behind a few
//! running ones, it waits only for the queries ahead of it, so the tail
//! follows the work instead of the scheduler. It also bounds the CPU and
//! memory searches can take from the rest of the server.

use parking_lot::{Condvar, Mutex};

pub(crate) struct Gate {
    permits: u64,
    state: Mutex<Tickets>,
    turn: Condvar,
}

#[derive(Default)]
struct Tickets {
    /// Tickets handed out.
    issued: u64,
    /// Searches finished.
    finished: u64,
}

impl Gate {
    pub fn new(permits: usize) -> Gate {
        Gate {
            permits: permits.max(1) as u64,
            state: Mutex::new(Tickets::default()),
            turn: Condvar::new(),
        }
    }

    /// Waits for this caller's turn. Ticket `t` runs once `t - permits + 1`
    /// searches have finished: every earlier ticket is running, done, or
    /// (being earlier) allowed before it, so at most `permits` run and they
    /// start in arrival order.
    pub fn enter(&self) -> Pass<'_> {
        let mut s = self.state.lock();
        let ticket = s.issued;
        s.issued += 1;
        while ticket >= s.finished + self.permits {
            self.turn.wait(&mut s);
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
        s.finished += 1;
        drop(s);
        self.gate.turn.notify_all();
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
