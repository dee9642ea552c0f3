//! Durable consumers for domain services (search, notifications, moderation).
//!
//! **At-least-once.** Events come from a JetStream stream through a durable
//! pull consumer with explicit acks; an event is acked only after its handler
//! returned `Ok`. A crash, a lost ack or an `ack_wait` timeout redelivers it,
//! so a handler can see the same event twice. Handlers must be idempotent:
//! dedupe on [`Envelope::id`] (unique per event) or make the effect
//! naturally repeatable (upserts).
//!
//! **Backpressure.** `max_in_flight` is both the consumer's server-side
//! `max_ack_pending` (the server stops delivering while that many are
//! unacked, so a backlog stays in the stream, not in our memory) and a local
//! semaphore (never more than that many handler calls run at once). A slow
//! handler therefore slows its own consumer and nothing else.
//!
//! **Retry, then dead letter.** A handler error NAKs the message with
//! `retry_delay`, and the server redelivers it once (`retried`). If the
//! second attempt fails too, the event is published to
//! `<root>.dlq.<consumer>` with its original `ce-*` headers plus
//! `hearth-error` (the handler's error), `hearth-stream`,
//! `hearth-stream-seq` and `hearth-consumer`; then the original is acked so
//! one poisoned event cannot block the consumer (`dead_lettered`). Dead
//! letters are stored in the stream `<ROOT>_DLQ` (7 days), which this module
//! creates, so they survive until someone looks at them. Messages that are
//! not CloudEvents go straight to the DLQ.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{self, PullConsumer};
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::log::StreamLimits;
use super::{NatsBus, codec, unavailable};
use crate::{BusError, Envelope};

pub const H_ERROR: &str = "hearth-error";
pub const H_STREAM: &str = "hearth-stream";
pub const H_STREAM_SEQ: &str = "hearth-stream-seq";
pub const H_CONSUMER: &str = "hearth-consumer";

/// What a durable consumer reads and how.
#[derive(Clone, Debug)]
pub struct DurableConfig {
    /// JetStream stream name (created with the bus's limits if missing).
    pub stream: String,
    /// Bus subject patterns the stream captures, e.g. `["chat.>"]`.
    pub subjects: Vec<String>,
    /// Durable consumer name; also names the DLQ subject. Instances sharing
    /// it share the work.
    pub consumer: String,
    /// Most unacked events and concurrent handler calls (≥ 1).
    pub max_in_flight: usize,
    /// Unacked this long, an event is redelivered. Longer than any handler.
    pub ack_wait: Duration,
    /// Delay before the one retry of a failed event.
    pub retry_delay: Duration,
}

impl DurableConfig {
    pub fn new(stream: &str, subjects: &[&str], consumer: &str, max_in_flight: usize) -> Self {
        DurableConfig {
            stream: stream.into(),
            subjects: subjects.iter().map(|s| s.to_string()).collect(),
            consumer: consumer.into(),
            max_in_flight: max_in_flight.max(1),
            ack_wait: Duration::from_secs(30),
            retry_delay: Duration::from_secs(1),
        }
    }

    pub fn retry_delay(mut self, d: Duration) -> Self {
        self.retry_delay = d;
        self
    }

    pub fn ack_wait(mut self, d: Duration) -> Self {
        self.ack_wait = d;
        self
    }
}

/// Counters for export (plain atomics, monotonically increasing).
#[derive(Debug, Default)]
pub struct ConsumerStats {
    /// Handler returned `Ok` and the event was acked.
    pub processed: AtomicU64,
    /// Handler failed on the first delivery; redelivery requested.
    pub retried: AtomicU64,
    /// Sent to the DLQ after the retry failed (or undecodable).
    pub dead_lettered: AtomicU64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub processed: u64,
    pub retried: u64,
    pub dead_lettered: u64,
}

impl ConsumerStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            processed: self.processed.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
        }
    }
}

/// A running consumer. Dropping it (or [`DurableConsumer::shutdown`]) stops
/// fetching; in-flight events not yet acked are redelivered later.
pub struct DurableConsumer {
    stats: Arc<ConsumerStats>,
    task: JoinHandle<()>,
}

impl DurableConsumer {
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// The live counters, to hand to a metrics exporter.
    pub fn counters(&self) -> Arc<ConsumerStats> {
        self.stats.clone()
    }

    pub fn shutdown(self) {}
}

impl Drop for DurableConsumer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Handler = Arc<
    dyn Fn(u64, Envelope) -> futures::future::BoxFuture<'static, Result<(), String>> + Send + Sync,
>;

impl NatsBus {
    /// Ensures the stream, the DLQ stream and the durable pull consumer, then
    /// runs `handler` for each event in a background task (see the module
    /// docs for the delivery guarantees).
    pub async fn durable<F, Fut, E>(
        &self,
        config: DurableConfig,
        handler: F,
    ) -> Result<DurableConsumer, BusError>
    where
        F: Fn(Envelope) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Display + 'static,
    {
        self.durable_at(config, move |_, e| handler(e)).await
    }

    /// [`NatsBus::durable`] with each event's stream sequence.
    /// The streams a durable consumer needs, and the consumer, made or updated.
    async fn open_durable(
        &self,
        config: &DurableConfig,
        max: usize,
    ) -> Result<PullConsumer, BusError> {
        let subjects: Vec<&str> = config.subjects.iter().map(String::as_str).collect();
        let stream = self.ensure_stream(&config.stream, &subjects).await?;
        let dlq_limits = StreamLimits {
            max_age: Duration::from_secs(7 * 24 * 3600),
            ..self.opts.stream_limits.clone()
        };
        self.ensure_stream_with(
            &format!("{}_DLQ", self.opts.subject_root.to_uppercase()),
            &["dlq.>"],
            &dlq_limits,
        )
        .await?;
        let want = consumer::pull::Config {
            durable_name: Some(config.consumer.clone()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: config.ack_wait,
            max_ack_pending: i64::try_from(max).unwrap_or(i64::MAX),
            ..Default::default()
        };
        let mut pull: PullConsumer = stream
            .get_or_create_consumer(&config.consumer, want.clone())
            .await
            .map_err(unavailable)?;
        let have = &pull.info().await.map_err(unavailable)?.config;
        if have.max_ack_pending != want.max_ack_pending || have.ack_wait != want.ack_wait {
            // Creating an existing durable with a new config updates it.
            pull = stream.create_consumer(want).await.map_err(unavailable)?;
        }
        Ok(pull)
    }

    pub async fn durable_at<F, Fut, E>(
        &self,
        config: DurableConfig,
        handler: F,
    ) -> Result<DurableConsumer, BusError>
    where
        F: Fn(u64, Envelope) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Display + 'static,
    {
        if config.consumer.is_empty()
            || !super::subscribe::valid_prefix(&config.consumer)
            || config.consumer.contains('.')
        {
            return Err(BusError::Invalid(format!("consumer {:?}", config.consumer)));
        }
        let max = config.max_in_flight.max(1);
        let pull = super::with_setup_patience(&config.consumer, || self.open_durable(&config, max))
            .await?;
        let handler: Handler = Arc::new(move |seq, e| {
            let fut = handler(seq, e);
            Box::pin(async move { fut.await.map_err(|e| e.to_string()) })
        });
        let stats = Arc::new(ConsumerStats::default());
        let task = tokio::spawn(run(self.clone(), pull, config, max, handler, stats.clone()));
        Ok(DurableConsumer { stats, task })
    }
}

async fn run(
    bus: NatsBus,
    pull: PullConsumer,
    config: DurableConfig,
    max: usize,
    handler: Handler,
    stats: Arc<ConsumerStats>,
) {
    let slots = Arc::new(Semaphore::new(max));
    let config = Arc::new(config);
    loop {
        let mut messages = match pull.stream().max_messages_per_batch(max).messages().await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(consumer = %config.consumer, %e, "cannot pull; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let msg = match messages.next().await {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    tracing::warn!(consumer = %config.consumer, %e, "pull error");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                None => break,
            };
            let (bus, config, handler, stats) =
                (bus.clone(), config.clone(), handler.clone(), stats.clone());
            tokio::spawn(async move {
                handle(&bus, &config, &handler, &stats, msg).await;
                drop(slot);
            });
        }
    }
}

async fn handle(
    bus: &NatsBus,
    config: &DurableConfig,
    handler: &Handler,
    stats: &ConsumerStats,
    msg: async_nats::jetstream::Message,
) {
    let (delivered, seq) = msg
        .info()
        .map(|i| (i.delivered, i.stream_sequence))
        .unwrap_or((1, 0));
    let error = match codec::from_message(msg.headers.as_ref(), msg.payload.clone()) {
        Err(why) => format!("undecodable: {why}"),
        Ok(event) => match handler(seq, event).await {
            Ok(()) => {
                match msg.ack().await {
                    Ok(()) => stats.processed.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        tracing::warn!(consumer = %config.consumer, seq, %e, "ack failed; will be redelivered");
                        return;
                    }
                };
                return;
            }
            Err(e) if delivered < 2 => {
                tracing::info!(consumer = %config.consumer, seq, error = %e, "handler failed; retrying once");
                if let Err(e) = msg.ack_with(AckKind::Nak(Some(config.retry_delay))).await {
                    tracing::warn!(consumer = %config.consumer, seq, %e, "nak failed");
                }
                stats.retried.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(e) => e,
        },
    };
    let mut headers = msg.headers.clone().unwrap_or_default();
    headers.insert(H_ERROR, error.replace(['\r', '\n'], " "));
    headers.insert(H_STREAM, config.stream.as_str());
    headers.insert(H_STREAM_SEQ, seq.to_string());
    headers.insert(H_CONSUMER, config.consumer.as_str());
    // Dedupes a second dead-lettering of the same stored event (lost ack).
    headers.insert(
        codec::NATS_MSG_ID,
        format!("dlq:{}:{}:{seq}", config.stream, config.consumer),
    );
    let dlq = bus.dlq_subject(&config.consumer);
    let stored = async {
        bus.js
            .publish_with_headers(dlq.clone(), headers, msg.payload.clone())
            .await
            .map_err(unavailable)?
            .await
            .map_err(unavailable)
    }
    .await;
    match stored {
        Ok(_) => {
            tracing::warn!(consumer = %config.consumer, seq, %error, "dead-lettered");
            if let Err(e) = msg.ack().await {
                tracing::warn!(consumer = %config.consumer, seq, %e, "ack after DLQ failed");
            }
            stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
        }
        // Not acked: redelivered after ack_wait and dead-lettered then.
        Err(e) => tracing::error!(consumer = %config.consumer, seq, %e, "DLQ publish failed"),
    }
}
