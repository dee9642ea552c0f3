//! The event bus seam. Domain services publish [`Envelope`]s (the CloudEvents
//! attributes `id`, `source`, `type`, `time`, `subject` plus opaque `data`);
//! subscribers receive them by subject prefix.
//!
//! Invariants:
//! - The bus moves bytes; it never looks inside `data`. Whoever publishes
//!   chooses the encoding and says so in `datacontenttype`.
//! - Subjects are dot-separated (`chat.channel.<id>`), as NATS subjects are,
//!   so the in-process and NATS implementations route the same way.
//! - A slow subscriber loses events (and learns how many) rather than slowing
//!   the publisher: real-time fan-out must never wait on one reader.

mod envelope;
pub mod journal;
mod memory;
pub mod nats;

use async_trait::async_trait;
pub use envelope::Envelope;
pub use memory::MemoryBus;
pub use nats::{NatsBus, NatsOptions};

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("bus unavailable: {0}")]
    Unavailable(String),
    /// The request can never succeed as made (bad subject, prefix or name).
    #[error("invalid: {0}")]
    Invalid(String),
}

/// What a subscription yields.
#[derive(Debug)]
pub enum Delivery {
    Event(Envelope),
    /// An event from the log ([`Bus::follow`]) with its position: the same
    /// event has the same position on every node, and positions only grow.
    Logged(u64, Envelope),
    /// The subscriber fell behind and this many events were dropped for it.
    Lagged(u64),
}

#[async_trait]
pub trait Subscription: Send {
    /// The next delivery, or `None` once the bus is closed.
    async fn next(&mut self) -> Option<Delivery>;
}

/// Resolves once an appended event is stored, with its log position.
pub type Ack = std::pin::Pin<Box<dyn std::future::Future<Output = Result<u64, BusError>> + Send>>;

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// Changes whenever the connection to the log's server is lost or made
    /// again (never, in process). An append whose [`Ack`] has not come by
    /// then may have been lost with the connection: an appender keeping its
    /// order appends those again (the log keeps one copy of an envelope id)
    /// before anything new.
    fn connection_epoch(&self) -> u64 {
        0
    }
    /// Real-time, at-most-once: for what is worthless late (presence, cache
    /// nudges). Subscribers see it; the log does not keep it.
    async fn publish(&self, event: Envelope) -> Result<(), BusError>;
    /// Appends to the log: one total order for all nodes, kept for a bounded
    /// window so a client can resume on any node. Returns as soon as the event
    /// is handed over (appends from one caller keep their order); the [`Ack`]
    /// resolves when it is stored. Appending the same envelope id twice within
    /// the bus's duplicate window stores it once (a retry after a crash).
    async fn append(&self, event: Envelope) -> Result<Ack, BusError>;
    /// Every log event appended from now on, as [`Delivery::Logged`] in log
    /// order, preceded by up to `backlog` events appended before (a node that
    /// starts warms its resume window with them). Also returns the position
    /// of the last event appended before following began (0: none).
    async fn follow(&self, backlog: u64) -> Result<(Box<dyn Subscription>, u64), BusError>;
    /// Every event whose subject starts with `prefix` (empty: all).
    async fn subscribe(&self, prefix: &str) -> Result<Box<dyn Subscription>, BusError>;
    /// For `/readyz`.
    async fn ping(&self) -> Result<(), BusError>;
    /// Waits (at most `within`) until every event appended so far is in
    /// the log's durable copy: called by a stopping process, so what it
    /// published is not lost with it. Buses that store before answering
    /// `append` have nothing to wait for.
    async fn flush(&self, within: std::time::Duration) -> Result<(), BusError> {
        let _ = within;
        Ok(())
    }
    /// The position of the log's last event, if this bus can tell (for
    /// noticing a follower that stalled).
    async fn log_head(&self) -> Result<Option<u64>, BusError> {
        Ok(None)
    }
    /// The log after `position`, from its durable copy (the embedded
    /// journal, or the JetStream stream), as [`Delivery::Logged`] in order,
    /// then whatever is appended later: for a service that keeps its own
    /// position, such as a search index on every node. If events after
    /// `position` are no longer kept (or `position` is past the log's end,
    /// a log that was reset), the first delivery is [`Delivery::Lagged`]:
    /// the reader must rebuild from the store. `Invalid` if this bus keeps
    /// no durable log.
    async fn read_from(&self, position: u64) -> Result<Box<dyn Subscription>, BusError> {
        let _ = position;
        Err(BusError::Invalid(format!(
            "the {} bus keeps no durable log",
            self.name()
        )))
    }
    /// A durable consumer of the log shared by every node (each event is
    /// handled by one of them, at least once; one retry, then the dead
    /// letters), its cursor kept by the bus: for services whose work must
    /// happen once per cluster (the audit log, notifications). Handlers are
    /// idempotent by event id. `Invalid` if this bus keeps no durable log.
    async fn consume(
        &self,
        cfg: journal::ConsumerConfig,
        handler: std::sync::Arc<dyn journal::Handler>,
    ) -> Result<Consumer, BusError> {
        let _ = (cfg, handler);
        Err(BusError::Invalid(format!(
            "the {} bus keeps no durable log",
            self.name()
        )))
    }
}

/// A running durable consumer ([`Bus::consume`]); dropping it stops it.
pub struct Consumer {
    stats: std::sync::Arc<nats::durable::ConsumerStats>,
    _running: Box<dyn std::any::Any + Send + Sync>,
}

impl Consumer {
    pub(crate) fn new(
        stats: std::sync::Arc<nats::durable::ConsumerStats>,
        running: Box<dyn std::any::Any + Send + Sync>,
    ) -> Consumer {
        Consumer {
            stats,
            _running: running,
        }
    }

    pub fn stats(&self) -> nats::durable::StatsSnapshot {
        self.stats.snapshot()
    }

    /// The live counters, to hand to a metrics exporter.
    pub fn counters(&self) -> std::sync::Arc<nats::durable::ConsumerStats> {
        self.stats.clone()
    }
}
