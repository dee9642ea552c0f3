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
    /// The subscriber fell behind and this many events were dropped for it.
    Lagged(u64),
}

#[async_trait]
pub trait Subscription: Send {
    /// The next delivery, or `None` once the bus is closed.
    async fn next(&mut self) -> Option<Delivery>;
}

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    async fn publish(&self, event: Envelope) -> Result<(), BusError>;
    /// Every event whose subject starts with `prefix` (empty: all).
    async fn subscribe(&self, prefix: &str) -> Result<Box<dyn Subscription>, BusError>;
    /// For `/readyz`.
    async fn ping(&self) -> Result<(), BusError>;
}
