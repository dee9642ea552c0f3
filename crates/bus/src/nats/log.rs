//! JetStream streams: creating them, publishing with a storage ack, and
//! reading back from a sequence.
//!
//! Why a bounded window: streams are a *catch-up* buffer, not the system of
//! record (the database is). A client that was away longer than the window
//! reloads state from the database instead of replaying. Defaults
//! ([`StreamLimits::default`]): 24 h max age, 1 GiB, 1 MiB per message, file
//! storage, old messages discarded first, and a 2 min duplicate window keyed
//! on the envelope id (`Nats-Msg-Id`), so retrying a `publish_durable` after
//! a timeout does not store the event twice.
//!
//! A stream whose name already exists is used as it is: its subjects and
//! limits are not changed by [`NatsBus::ensure_stream`].

use std::time::Duration;

use async_nats::jetstream::{consumer, stream};
use async_trait::async_trait;
use futures::StreamExt;

use super::{NatsBus, codec, unavailable};
use crate::{Ack, BusError, Delivery, Envelope, Subscription};

/// Most events one [`NatsBus::replay`] call returns.
pub const REPLAY_MAX: usize = 1000;

#[derive(Clone, Debug)]
pub struct StreamLimits {
    pub max_age: Duration,
    pub max_bytes: i64,
    pub max_message_size: i32,
    pub duplicate_window: Duration,
    /// `false`: file storage (survives a server restart).
    pub memory: bool,
    /// Copies kept across a JetStream cluster (1 on a single server; 3 so
    /// the stream survives one server's death). Only applied when the stream
    /// is created: an existing stream keeps what it has.
    pub replicas: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            max_age: Duration::from_secs(24 * 3600),
            max_bytes: 1 << 30,
            max_message_size: 1 << 20,
            duplicate_window: Duration::from_secs(120),
            memory: false,
            replicas: 1,
        }
    }
}

impl NatsBus {
    /// Creates stream `name` capturing the given bus subject patterns (NATS
    /// wildcards allowed, e.g. `chat.>`; the subject root is prepended) if it
    /// does not exist.
    pub async fn ensure_stream(
        &self,
        name: &str,
        subjects: &[&str],
    ) -> Result<stream::Stream, BusError> {
        self.ensure_stream_with(name, subjects, &self.opts.stream_limits)
            .await
    }

    pub(crate) async fn ensure_stream_with(
        &self,
        name: &str,
        subjects: &[&str],
        limits: &StreamLimits,
    ) -> Result<stream::Stream, BusError> {
        if subjects.is_empty() {
            return Err(BusError::Invalid(format!("stream {name} without subjects")));
        }
        let config = stream::Config {
            name: name.to_string(),
            subjects: subjects.iter().map(|s| self.nats_subject(s)).collect(),
            max_age: limits.max_age,
            max_bytes: limits.max_bytes,
            max_message_size: limits.max_message_size,
            duplicate_window: limits.duplicate_window,
            discard: stream::DiscardPolicy::Old,
            storage: if limits.memory {
                stream::StorageType::Memory
            } else {
                stream::StorageType::File
            },
            num_replicas: limits.replicas.max(1),
            ..Default::default()
        };
        self.js
            .get_or_create_stream(config)
            .await
            .map_err(|e| match e.kind() {
                async_nats::jetstream::context::CreateStreamErrorKind::EmptyStreamName
                | async_nats::jetstream::context::CreateStreamErrorKind::InvalidStreamName => {
                    BusError::Invalid(format!("stream name {name:?}"))
                }
                _ => unavailable(e),
            })
    }

    /// Deletes a stream and its consumers (tests, operators).
    pub async fn delete_stream(&self, name: &str) -> Result<(), BusError> {
        self.js
            .delete_stream(name)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    /// The log's stream: `<ROOT>_LOG` (the subject root upper-cased, other
    /// characters than letters and digits as `_`), so deployments sharing a
    /// NATS account keep separate logs.
    pub fn log_stream(&self) -> String {
        let root: String = self
            .opts
            .subject_root
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        format!("{root}_LOG")
    }

    /// Creates the log stream if it does not exist (call once at start), waiting
    /// a while for a JetStream that does not answer yet.
    pub async fn open_log(&self) -> Result<(), BusError> {
        super::with_setup_patience("log stream", || self.open_log_once()).await
    }

    async fn open_log_once(&self) -> Result<(), BusError> {
        if self.opts.log_subjects.is_empty() {
            return Err(BusError::Invalid("no log subjects configured".into()));
        }
        let subjects: Vec<&str> = self.opts.log_subjects.iter().map(String::as_str).collect();
        let limits = &self.opts.log_limits;
        let mut s = self
            .ensure_stream_with(&self.log_stream(), &subjects, limits)
            .await?;
        // The log's retention is configuration: a node started with new
        // limits applies them to the existing stream (replicas stay).
        let mut config = s.info().await.map_err(unavailable)?.config.clone();
        if config.max_age != limits.max_age || config.max_bytes != limits.max_bytes {
            config.max_age = limits.max_age;
            config.max_bytes = limits.max_bytes;
            self.js.update_stream(config).await.map_err(unavailable)?;
        }
        Ok(())
    }

    /// A JetStream publish into whichever stream captures the subject (the
    /// log's, for `Bus::append`), de-duplicated by envelope id; the ack
    /// resolves to the stream sequence once stored.
    pub(crate) async fn append_log(&self, event: Envelope) -> Result<Ack, BusError> {
        self.check_subject(&event.subject)?;
        let mut headers = codec::to_headers(&event);
        headers.insert(codec::NATS_MSG_ID, event.id.as_str());
        // Sent on the one connection in call order; the ack comes later.
        let ack = self
            .js
            .publish_with_headers(self.nats_subject(&event.subject), headers, event.data)
            .await
            .map_err(unavailable)?;
        Ok(Box::pin(async move {
            ack.await.map(|a| a.sequence).map_err(unavailable)
        }))
    }

    pub(crate) async fn follow_log(
        &self,
        backlog: u64,
    ) -> Result<(Box<dyn Subscription>, u64), BusError> {
        let (s, last) = self.log_state().await?;
        let messages = self
            .ordered_from(&s, last.saturating_sub(backlog) + 1)
            .await?;
        let follower = LogFollower {
            stream: self.log_stream(),
            messages,
            expect: None,
            pending: None,
        };
        Ok((Box::new(follower), last))
    }

    /// [`Bus::read_from`](crate::Bus::read_from): the log stream after
    /// `position`; a first sequence beyond `position + 1` (aged out) or a
    /// position beyond the stream's end (a stream that was recreated) is
    /// reported as a gap first.
    pub(crate) async fn read_log_from(
        &self,
        position: u64,
    ) -> Result<Box<dyn Subscription>, BusError> {
        let (s, last) = self.log_state().await?;
        let messages = self.ordered_from(&s, position + 1).await?;
        Ok(Box::new(LogFollower {
            stream: self.log_stream(),
            messages,
            expect: Some(if position > last {
                None
            } else {
                Some(position + 1)
            }),
            pending: None,
        }))
    }

    /// The log stream's last sequence.
    pub async fn log_last_sequence(&self) -> Result<u64, BusError> {
        Ok(self.log_state().await?.1)
    }

    async fn log_state(&self) -> Result<(stream::Stream, u64), BusError> {
        let name = self.log_stream();
        let mut s = self.js.get_stream(&name).await.map_err(unavailable)?;
        let last = s.info().await.map_err(unavailable)?.state.last_sequence;
        Ok((s, last))
    }

    async fn ordered_from(
        &self,
        s: &stream::Stream,
        start_sequence: u64,
    ) -> Result<std::pin::Pin<Box<consumer::push::Ordered>>, BusError> {
        // An ordered consumer: flow-controlled, in stream order, and recreated
        // by the client from the last sequence seen if it ever stalls.
        let c = s
            .create_consumer(consumer::push::OrderedConfig {
                deliver_subject: self.client.new_inbox(),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence },
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        Ok(Box::pin(c.messages().await.map_err(unavailable)?))
    }

    /// Publishes through JetStream and waits for the server to store it;
    /// returns the stream sequence. Fails if no stream captures the subject
    /// (create one with [`NatsBus::ensure_stream`]). Core subscribers receive
    /// it too. Re-publishing the same envelope id within the duplicate window
    /// is stored once and returns the original sequence.
    pub async fn publish_durable(&self, event: Envelope) -> Result<u64, BusError> {
        self.append_log(event).await?.await
    }

    /// Events in `stream` matching the bus subject pattern `filter` (NATS
    /// wildcards allowed, `""` = the whole stream) with sequence greater than
    /// `after_seq`, oldest first, at most `limit.min(REPLAY_MAX)` of them.
    /// A full batch means there may be more: call again with the last
    /// sequence. If `after_seq` has aged out of the stream, replay starts at
    /// the oldest stored event; compare the first sequence with
    /// `after_seq + 1` only as a hint (filtered subjects leave gaps anyway).
    /// Messages that are not CloudEvents are skipped.
    pub async fn replay(
        &self,
        stream: &str,
        filter: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Envelope)>, BusError> {
        let limit = limit.min(REPLAY_MAX);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let s = self.js.get_stream(stream).await.map_err(unavailable)?;
        // An ephemeral, unacknowledged consumer: nothing to clean up if we
        // crash, the server drops it after `inactive_threshold`.
        let mut c: consumer::PullConsumer = s
            .create_consumer(consumer::pull::Config {
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: after_seq + 1,
                },
                ack_policy: consumer::AckPolicy::None,
                filter_subject: if filter.is_empty() {
                    String::new()
                } else {
                    self.nats_subject(filter)
                },
                inactive_threshold: Duration::from_secs(30),
                memory_storage: true,
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        let pending = c.info().await.map_err(unavailable)?.num_pending;
        let want = usize::try_from(pending).unwrap_or(usize::MAX).min(limit);
        let mut out = Vec::with_capacity(want);
        if want > 0 {
            let mut batch = c
                .fetch()
                .max_messages(want)
                .expires(self.opts.request_timeout)
                .messages()
                .await
                .map_err(unavailable)?;
            let mut seen = 0;
            while seen < want {
                let Some(m) = batch.next().await else { break };
                let m = m.map_err(unavailable)?;
                seen += 1;
                let seq = m.info().map_err(unavailable)?.stream_sequence;
                match codec::from_message(m.headers.as_ref(), m.payload.clone()) {
                    Ok(e) => out.push((seq, e)),
                    Err(why) => tracing::warn!(stream, seq, %why, "replay skipped a message"),
                }
            }
        }
        let name = c.cached_info().name.clone();
        if let Err(e) = s.delete_consumer(&name).await {
            tracing::debug!(stream, %e, "replay consumer left to expire");
        }
        Ok(out)
    }
}

struct LogFollower {
    stream: String,
    messages: std::pin::Pin<Box<consumer::push::Ordered>>,
    /// For `read_from`, before the first delivery: the sequence expected
    /// first (`None` inside: the position was past the log's end).
    expect: Option<Option<u64>>,
    /// A message held back while a gap is reported.
    pending: Option<async_nats::jetstream::Message>,
}

#[async_trait]
impl Subscription for LogFollower {
    async fn next(&mut self) -> Option<Delivery> {
        if self.expect == Some(None) {
            // Past the log's end: whatever the reader built on is not this log.
            self.expect = None;
            return Some(Delivery::Lagged(1));
        }
        loop {
            let m = match self.pending.take() {
                Some(m) => m,
                None => match self.messages.next().await? {
                    Ok(m) => m,
                    Err(e) => {
                        // The client recreates the consumer after the last
                        // sequence it delivered; nothing is skipped.
                        tracing::warn!(stream = %self.stream, error = %e, "log follower hiccup");
                        continue;
                    }
                },
            };
            let Ok(info) = m.info() else { continue };
            let seq = info.stream_sequence;
            if let Some(Some(first)) = self.expect.take() {
                if seq > first {
                    // Aged out of the stream: tell of the gap; this event comes next.
                    self.pending = Some(m);
                    return Some(Delivery::Lagged(seq - first));
                }
            }
            match codec::from_message(m.headers.as_ref(), m.payload.clone()) {
                Ok(e) => return Some(Delivery::Logged(seq, e)),
                Err(why) => {
                    tracing::warn!(stream = %self.stream, seq, %why, "log skipped a message")
                }
            }
        }
    }
}
