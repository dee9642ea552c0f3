//! Fails API requests at once while the database is down, instead of letting each
//! one wait out the pool's acquire timeout (10 s) once per query: a request that
//! reads three times would hang 30 s before its 503.
//!
//! A probe opens a fresh connection outside the pool (`Store::reachable`) every
//! [`PROBE_EVERY`], and every [`PROBE_WHILE_DOWN`] once it failed, so the gate
//! closes within about two seconds of the database going away and opens within
//! half a second of it coming back. Only a database that is surely down closes it
//! (refused, shutting down, starting up); a slow or saturated one does not, so a
//! loaded node never turns its own traffic away. Embedded SQLite has no probe.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use hearth_store::Store;

/// Probe interval while the database answers.
pub const PROBE_EVERY: Duration = Duration::from_secs(2);
/// Probe interval while it does not.
pub const PROBE_WHILE_DOWN: Duration = Duration::from_millis(500);

#[derive(Default)]
pub struct DbGate {
    down: AtomicBool,
}

impl DbGate {
    /// A gate with its probe running while both it and the store live.
    pub fn start(store: &Arc<dyn Store>) -> Arc<DbGate> {
        let gate = Arc::new(DbGate::default());
        if store.backend() != "sqlite" {
            tokio::spawn(probe(Arc::downgrade(&gate), Arc::downgrade(store)));
        }
        gate
    }

    /// The last probe found the database down: answer 503 without trying it.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }
}

async fn probe(gate: Weak<DbGate>, store: Weak<dyn Store>) {
    let mut since: Option<Instant> = None;
    loop {
        let wait = if since.is_some() {
            PROBE_WHILE_DOWN
        } else {
            PROBE_EVERY
        };
        tokio::time::sleep(wait).await;
        // The server is gone (both are held by its state): so is the probe.
        let (Some(gate), Some(store)) = (gate.upgrade(), store.upgrade()) else {
            return;
        };
        let up = store.reachable().await;
        gate.down.store(!up, Ordering::Relaxed);
        match (up, since) {
            (false, None) => {
                tracing::warn!(
                    "the database is unreachable: API requests answer 503 at once until it is back"
                );
                since = Some(Instant::now());
            }
            (true, Some(at)) => {
                tracing::info!(
                    down_ms = at.elapsed().as_millis() as u64,
                    "the database is reachable again"
                );
                since = None;
            }
            _ => {}
        }
    }
}
