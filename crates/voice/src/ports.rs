//! The configured UDP port range: one port per peer connection, returned when the
//! [`PortLease`] drops, so a participant that leaves (however it leaves) frees its port.

use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::sync::Arc;

#[derive(Clone)]
pub(crate) struct Ports {
    inner: Option<Arc<Mutex<PortPool>>>,
}

struct PortPool {
    range: (u16, u16),
    in_use: BTreeSet<u16>,
    next: u16,
}

/// A port of the range (or port 0, the OS's choice, without a range).
pub(crate) struct PortLease {
    pub(crate) port: u16,
    pool: Option<Arc<Mutex<PortPool>>>,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        if let Some(pool) = &self.pool {
            pool.lock().in_use.remove(&self.port);
        }
    }
}

impl Ports {
    pub(crate) fn new(range: Option<(u16, u16)>) -> Ports {
        Ports {
            inner: range.map(|range| {
                Arc::new(Mutex::new(PortPool {
                    range,
                    in_use: BTreeSet::new(),
                    next: range.0,
                }))
            }),
        }
    }

    /// The next free port after the last one handed out (round robin, so a port just freed
    /// is not reused at once while the OS may still hold it), skipping `tried`.
    pub(crate) fn lease(&self, tried: &[u16]) -> Option<PortLease> {
        let Some(pool) = &self.inner else {
            return Some(PortLease {
                port: 0,
                pool: None,
            });
        };
        let mut p = pool.lock();
        let (lo, hi) = p.range;
        let size = u32::from(hi - lo) + 1;
        for _ in 0..size {
            let port = p.next;
            p.next = if port >= hi { lo } else { port + 1 };
            if !p.in_use.contains(&port) && !tried.contains(&port) {
                p.in_use.insert(port);
                return Some(PortLease {
                    port,
                    pool: Some(pool.clone()),
                });
            }
        }
        None
    }

    pub(crate) fn in_use(&self) -> usize {
        self.inner.as_ref().map_or(0, |p| p.lock().in_use.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_round_robin_and_free_on_drop() {
        let ports = Ports::new(Some((5000, 5002)));
        let a = ports.lease(&[]);
        assert_eq!(a.as_ref().map(|l| l.port), Some(5000));
        let b = ports.lease(&[]);
        let c = ports.lease(&[]);
        assert!(ports.lease(&[]).is_none());
        assert_eq!(ports.in_use(), 3);
        drop((a, b, c));
        assert_eq!(ports.in_use(), 0);
        assert_eq!(ports.lease(&[5000]).map(|l| l.port), Some(5001));
    }
}
