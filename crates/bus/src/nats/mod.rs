//! The NATS bus: the same seam as [`crate::MemoryBus`], across nodes.
//!
//! Three delivery grades, because events differ in what losing one costs:
//!
//! 1. **Real-time fan-out** ([`Bus::publish`] / [`Bus::subscribe`]): core
//!    NATS, at-most-once. A typing indicator or presence ping that arrives
//!    late is worthless, so nothing is stored and a slow subscriber is told it
//!    lagged ([`crate::Delivery::Lagged`]) instead of slowing anyone down.
//! 2. **Durable consumers** ([`NatsBus::durable`]): JetStream, at-least-once,
//!    for domain services (search indexing, notifications, moderation) that
//!    must see every event even across restarts. See [`durable`] for the
//!    backpressure, retry and dead-letter rules.
//! 3. **Must-not-lose publishes** ([`NatsBus::publish_durable`]) acknowledged
//!    by the server once stored, and [`NatsBus::replay`] to read a stream from
//!    a sequence onwards (resuming clients). See [`log`].
//!
//! On the wire every event is a CloudEvents 1.0 message in binary content
//! mode (see [`codec`]) on the NATS subject `<root>.<envelope.subject>`, with
//! `root` = [`NatsOptions::subject_root`] (default `hearth`). Core publishes
//! are also captured by any JetStream stream whose subjects match, so a
//! durable consumer sees events published either way.

pub mod codec;
pub mod durable;
pub mod log;
mod subscribe;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{Bus, BusError, Envelope, Subscription};
pub use durable::{ConsumerStats, DurableConfig, DurableConsumer, StatsSnapshot};
pub use log::{REPLAY_MAX, StreamLimits};

/// Connection and local-buffering settings.
#[derive(Clone, Debug)]
pub struct NatsOptions {
    /// First subject token of every bus subject (`hearth` → `hearth.chat.…`).
    /// Lets several deployments share one NATS account.
    pub subject_root: String,
    /// Events buffered per subscription before it starts to lag.
    pub subscriber_capacity: usize,
    /// Shown in the server's connection list.
    pub connection_name: String,
    /// Limit for connecting and for each request (ping, JetStream API calls).
    pub request_timeout: Duration,
    /// Limits for streams this bus creates.
    pub stream_limits: StreamLimits,
    /// Bus subject patterns that make up the log ([`Bus::append`],
    /// [`Bus::follow`]); empty: no log. Stored in one stream named after the
    /// subject root ([`NatsBus::log_stream`]), created by [`NatsBus::open_log`].
    pub log_subjects: Vec<String>,
    /// Limits of the log stream: its `max_age` is the resume window.
    pub log_limits: StreamLimits,
}

impl Default for NatsOptions {
    fn default() -> Self {
        NatsOptions {
            subject_root: "hearth".into(),
            subscriber_capacity: 1024,
            connection_name: "hearth".into(),
            request_timeout: Duration::from_secs(5),
            stream_limits: StreamLimits::default(),
            log_subjects: Vec::new(),
            log_limits: StreamLimits {
                max_age: Duration::from_secs(600),
                max_bytes: 256 << 20,
                ..StreamLimits::default()
            },
        }
    }
}

/// A connected NATS bus; cheap to clone (one shared connection).
#[derive(Clone)]
pub struct NatsBus {
    client: async_nats::Client,
    js: async_nats::jetstream::Context,
    opts: NatsOptions,
    /// Connection events seen (disconnects and reconnects).
    events: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// The servers in a comma-separated `nats://a:4222,nats://b:4222` list.
fn server_list(url: &str) -> Result<Vec<async_nats::ServerAddr>, BusError> {
    let list: Vec<&str> = url
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if list.is_empty() {
        return Err(BusError::Invalid("no NATS server named".into()));
    }
    list.iter()
        .map(|s| {
            s.parse::<async_nats::ServerAddr>()
                .map_err(|e| BusError::Invalid(format!("NATS address {s:?}: {e}")))
        })
        .collect()
}

impl NatsBus {
    /// Connects once; fails (rather than retrying forever) if the server is
    /// unreachable, so a misconfigured node does not start. After that the
    /// client reconnects by itself and buffers publishes meanwhile. `url`
    /// may list several servers of a cluster, comma-separated: the client
    /// starts from any that answers and fails over between them.
    pub async fn connect(url: &str, opts: NatsOptions) -> Result<NatsBus, BusError> {
        if opts.subject_root.is_empty() || !subscribe::valid_prefix(&opts.subject_root) {
            return Err(BusError::Invalid(format!(
                "subject root {:?}",
                opts.subject_root
            )));
        }
        let events = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let seen = events.clone();
        let client = async_nats::ConnectOptions::new()
            .event_callback(move |e| {
                if matches!(
                    e,
                    async_nats::Event::Connected | async_nats::Event::Disconnected
                ) {
                    seen.fetch_add(1, std::sync::atomic::Ordering::Release);
                }
                async {}
            })
            .name(&opts.connection_name)
            .connection_timeout(opts.request_timeout)
            .request_timeout(Some(opts.request_timeout))
            .connect(server_list(url)?.as_slice())
            .await
            .map_err(unavailable)?;
        let js = async_nats::jetstream::new(client.clone());
        Ok(NatsBus {
            client,
            js,
            opts,
            events,
        })
    }

    /// The underlying client, for what the seam does not cover.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn options(&self) -> &NatsOptions {
        &self.opts
    }

    /// Bus subject (or pattern with NATS wildcards) → NATS subject.
    pub fn nats_subject(&self, subject: &str) -> String {
        format!("{}.{subject}", self.opts.subject_root)
    }

    /// The dead-letter subject of a durable consumer: `<root>.dlq.<consumer>`.
    pub fn dlq_subject(&self, consumer: &str) -> String {
        self.nats_subject(&format!("dlq.{consumer}"))
    }

    fn check_subject(&self, subject: &str) -> Result<(), BusError> {
        if subject.is_empty() || subject.ends_with('.') || !subscribe::valid_prefix(subject) {
            return Err(BusError::Invalid(format!("subject {subject:?}")));
        }
        Ok(())
    }
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(e.to_string())
}

/// How long JetStream setup (the log stream, durable consumers) keeps retrying a
/// server that does not answer: it can be slow while its cluster starts beside the
/// nodes (a meta leader being elected, every node creating its consumers at once).
const SETUP_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs an idempotent setup step, retrying `Unavailable` for [`SETUP_PATIENCE`].
pub(crate) async fn with_setup_patience<T, F, Fut>(what: &str, mut step: F) -> Result<T, BusError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, BusError>>,
{
    let deadline = std::time::Instant::now() + SETUP_PATIENCE;
    loop {
        match step().await {
            Err(e @ BusError::Unavailable(_)) if std::time::Instant::now() < deadline => {
                tracing::warn!(step = what, error = %e, "JetStream setup; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            done => return done,
        }
    }
}

#[async_trait]
impl Bus for NatsBus {
    fn name(&self) -> &'static str {
        "nats"
    }

    /// The connection events seen, and whether the client is connected now
    /// (read at once: the events reach us a task hop later).
    fn connection_epoch(&self) -> u64 {
        let seen = self.events.load(std::sync::atomic::Ordering::Acquire);
        let down = self.client.connection_state() != async_nats::connection::State::Connected;
        seen * 2 + u64::from(down)
    }

    async fn append(&self, event: Envelope) -> Result<crate::Ack, BusError> {
        self.append_log(event).await
    }

    async fn follow(&self, backlog: u64) -> Result<(Box<dyn Subscription>, u64), BusError> {
        self.follow_log(backlog).await
    }

    /// Core NATS publish: returns once queued on the connection (at-most-once).
    async fn publish(&self, event: Envelope) -> Result<(), BusError> {
        self.check_subject(&event.subject)?;
        let headers = codec::to_headers(&event);
        let subject = self.nats_subject(&event.subject);
        let data: Bytes = event.data;
        self.client
            .publish_with_headers(subject, headers, data)
            .await
            .map_err(unavailable)
    }

    /// Prefix semantics as the in-process bus (string prefix of the subject);
    /// see [`subscribe::plan`] for how they map onto NATS wildcards. Prefixes
    /// containing `*`, `>`, whitespace or empty tokens are rejected.
    async fn subscribe(&self, prefix: &str) -> Result<Box<dyn Subscription>, BusError> {
        if !subscribe::valid_prefix(prefix) {
            return Err(BusError::Invalid(format!("prefix {prefix:?}")));
        }
        let (subject, filter) = subscribe::plan(&self.opts.subject_root, prefix);
        let sub = self.client.subscribe(subject).await.map_err(unavailable)?;
        // Make sure the server has the interest before we return, so events
        // published right after `subscribe` returns are not missed.
        self.client.flush().await.map_err(unavailable)?;
        Ok(Box::new(subscribe::spawn(
            self.opts.subject_root.len(),
            sub,
            filter,
            self.opts.subscriber_capacity,
        )))
    }

    async fn read_from(&self, position: u64) -> Result<Box<dyn Subscription>, BusError> {
        self.read_log_from(position).await
    }

    async fn log_head(&self) -> Result<Option<u64>, BusError> {
        self.log_last_sequence().await.map(Some)
    }

    /// A durable pull consumer on the log stream, shared by every node
    /// using the same name; events outside the prefixes are acked unseen.
    async fn consume(
        &self,
        cfg: crate::journal::ConsumerConfig,
        handler: std::sync::Arc<dyn crate::journal::Handler>,
    ) -> Result<crate::Consumer, BusError> {
        let subjects: Vec<&str> = self.opts.log_subjects.iter().map(String::as_str).collect();
        let config = durable::DurableConfig::new(
            &self.log_stream(),
            &subjects,
            &cfg.name,
            cfg.batch.clamp(1, 256),
        )
        .retry_delay(cfg.retry_delay);
        let running = self
            .durable_at(config, move |seq, event: Envelope| {
                let (handler, cfg) = (handler.clone(), cfg.clone());
                async move {
                    if !cfg.wants(&event) {
                        return Ok(());
                    }
                    handler.handle(seq, &event).await
                }
            })
            .await?;
        Ok(crate::Consumer::new(running.counters(), Box::new(running)))
    }

    /// A full round trip to the server (flush waits for its PONG).
    async fn ping(&self) -> Result<(), BusError> {
        tokio::time::timeout(self.opts.request_timeout, self.client.flush())
            .await
            .map_err(|_| BusError::Unavailable("ping timed out".into()))?
            .map_err(unavailable)
    }
}

#[cfg(test)]
mod server_list_tests {
    use super::server_list;

    #[test]
    fn one_or_many_servers() {
        assert_eq!(server_list("nats://127.0.0.1:4222").unwrap().len(), 1);
        assert_eq!(
            server_list("nats://a:4231, nats://b:4232,nats://c:4233")
                .unwrap()
                .len(),
            3
        );
        assert!(server_list("").is_err());
        assert!(server_list(" , ").is_err());
    }
}
