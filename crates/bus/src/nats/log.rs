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
        let (s, first, last) = self.log_state().await?;
        // Never before the oldest event kept: what aged out is no gap here.
        let start = (last.saturating_sub(backlog) + 1).max(first);
        let messages = self.ordered_from(&s, start).await?;
        Ok((
            Box::new(LogFollower::new(self.log_stream(), s, messages, start - 1)),
            last,
        ))
    }

    /// [`Bus::read_from`](crate::Bus::read_from): the log stream after
    /// `position`; events no longer in the stream (aged out) or a position
    /// beyond the stream's end (a stream that was recreated) are reported
    /// as a gap first.
    pub(crate) async fn read_log_from(
        &self,
        position: u64,
    ) -> Result<Box<dyn Subscription>, BusError> {
        let (s, _, last) = self.log_state().await?;
        let messages = self.ordered_from(&s, position + 1).await?;
        let mut follower = LogFollower::new(self.log_stream(), s, messages, position);
        if position > last {
            // Whatever the reader built on is not this log.
            follower.queued.push_back(Delivery::Lagged(1));
            follower.last = last;
        }
        Ok(Box::new(follower))
    }

    /// The log stream's last sequence.
    pub async fn log_last_sequence(&self) -> Result<u64, BusError> {
        Ok(self.log_state().await?.2)
    }

    /// The log stream with its first and last sequence.
    async fn log_state(&self) -> Result<(stream::Stream, u64, u64), BusError> {
        let name = self.log_stream();
        let mut s = self.js.get_stream(&name).await.map_err(unavailable)?;
        let state = &s.info().await.map_err(unavailable)?.state;
        let (first, last) = (state.first_sequence, state.last_sequence);
        Ok((s, first, last))
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

/// Most missing events a follower fetches one by one before it reports
/// them as lost instead.
const FILL_MAX: u64 = 4096;
/// How long a follower keeps asking the stream's leader for a missing event
/// that it cannot answer for yet (a leader election after a server died).
const FILL_PATIENCE: Duration = Duration::from_secs(10);

/// Follows the log stream in sequence order, with no silent gaps.
///
/// The log stream holds only log events, so its sequences are the log's
/// positions and follow each other. The ordered consumer checks only its
/// own delivery count: a consumer placed on a replica that is missing
/// events (one that came back from a crash and caught up by snapshot) can
/// jump over stream sequences without noticing. So the follower checks
/// every sequence against the last one it handed on; what is missing is
/// read from the stream's leader, which has every acknowledged event, and
/// only what the stream no longer holds (aged out, deleted) is reported as
/// `Lagged`, before the events that follow it.
struct LogFollower {
    name: String,
    stream: stream::Stream,
    messages: std::pin::Pin<Box<consumer::push::Ordered>>,
    /// The last sequence handed on or passed over as unreadable.
    last: u64,
    /// What to hand on before reading further (a gap being filled).
    queued: std::collections::VecDeque<Delivery>,
}

impl LogFollower {
    fn new(
        name: String,
        stream: stream::Stream,
        messages: std::pin::Pin<Box<consumer::push::Ordered>>,
        last: u64,
    ) -> LogFollower {
        LogFollower {
            name,
            stream,
            messages,
            last,
            queued: Default::default(),
        }
    }

    /// The event at `seq`, if it decodes (logged and passed over if not).
    fn decode(
        &self,
        seq: u64,
        headers: Option<&async_nats::HeaderMap>,
        payload: bytes::Bytes,
    ) -> Option<Delivery> {
        match codec::from_message(headers, payload) {
            Ok(e) => Some(Delivery::Logged(seq, e)),
            Err(why) => {
                tracing::warn!(stream = %self.name, seq, %why, "log skipped a message");
                None
            }
        }
    }

    /// Queues the events after `self.last` and before `next` from the
    /// stream's leader; those it no longer holds go first, as one `Lagged`.
    async fn fill(&mut self, next: u64) {
        let missing = next - self.last - 1;
        tracing::warn!(stream = %self.name, after = self.last, missing, "log consumer skipped events; reading them from the stream leader");
        if missing > FILL_MAX {
            self.queued.push_back(Delivery::Lagged(missing));
            return;
        }
        let mut found = Vec::new();
        let mut lost = 0;
        for seq in self.last + 1..next {
            match fetch(&self.stream, &self.name, seq).await {
                Some(m) => found.extend(self.decode(seq, Some(&m.headers), m.payload)),
                None => lost += 1,
            }
        }
        if lost > 0 {
            tracing::error!(stream = %self.name, after = self.last, lost, "log events no longer in the stream");
            self.queued.push_back(Delivery::Lagged(lost));
        }
        self.queued.extend(found);
    }
}

/// One event from the stream's leader; `None` if the stream does not
/// hold it (or its leader cannot be reached for [`FILL_PATIENCE`]).
async fn fetch(
    stream: &stream::Stream,
    name: &str,
    seq: u64,
) -> Option<async_nats::jetstream::message::StreamMessage> {
    use async_nats::jetstream::stream::LastRawMessageErrorKind as Kind;
    let deadline = tokio::time::Instant::now() + FILL_PATIENCE;
    let mut wait = Duration::from_millis(50);
    loop {
        match stream.get_raw_message(seq).await {
            Ok(m) => return Some(m),
            Err(e) if e.kind() == Kind::NoMessageFound => return None,
            Err(e) if tokio::time::Instant::now() >= deadline => {
                tracing::error!(stream = %name, seq, error = %e, "cannot read a missing log event");
                return None;
            }
            Err(e) => {
                tracing::debug!(stream = %name, seq, error = %e, "reading a missing log event");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(1));
            }
        }
    }
}

#[async_trait]
impl Subscription for LogFollower {
    async fn next(&mut self) -> Option<Delivery> {
        loop {
            if let Some(d) = self.queued.pop_front() {
                return Some(d);
            }
            let m = match self.messages.next().await? {
                Ok(m) => m,
                Err(e) => {
                    // The client recreates the consumer after the last
                    // sequence it delivered.
                    tracing::warn!(stream = %self.name, error = %e, "log follower hiccup");
                    continue;
                }
            };
            let Ok(info) = m.info() else { continue };
            let seq = info.stream_sequence;
            if seq <= self.last {
                continue; // already handed on (a recreated consumer)
            }
            if seq > self.last + 1 {
                self.fill(seq).await;
            }
            self.last = seq;
            let d = self.decode(seq, m.headers.as_ref(), m.payload.clone());
            self.queued.extend(d);
        }
    }
}

#[cfg(test)]
mod gap_tests {
    //! Against the machine's NATS (`HEARTH_NATS_URL`); fails without one.
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::NatsOptions;

    async fn logged(f: &mut LogFollower) -> Delivery {
        tokio::time::timeout(Duration::from_secs(10), f.next())
            .await
            .expect("a delivery in time")
            .expect("the follower stays open")
    }

    fn id_of(d: &Delivery) -> String {
        match d {
            Delivery::Logged(p, e) => format!("{p}:{}", e.id),
            Delivery::Lagged(n) => format!("lagged {n}"),
            Delivery::Event(e) => format!("event {}", e.id),
        }
    }

    /// A consumer that jumps over events the stream holds (as one on a
    /// replica that caught up by snapshot may) is filled from the leader;
    /// an event the stream no longer holds is reported, in its place.
    #[tokio::test]
    async fn skipped_events_are_read_from_the_leader_and_lost_ones_reported() {
        let url =
            std::env::var("HEARTH_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
        let opts = NatsOptions {
            subject_root: format!("gap{:016x}", rand::random::<u64>()),
            log_subjects: vec!["chat.>".into()],
            ..Default::default()
        };
        let bus = NatsBus::connect(&url, opts)
            .await
            .expect("NATS must run for this test");
        bus.open_log().await.unwrap();
        for i in 1..=6 {
            let e = Envelope::json(
                format!("e{i}"),
                "hearth://node/test".into(),
                "hearth.test",
                "chat.community.1",
                b"{}".to_vec(),
            );
            bus.append_log(e).await.unwrap().await.unwrap();
        }
        let (s, _, last) = bus.log_state().await.unwrap();
        assert_eq!(last, 6);
        assert!(s.delete_message(5).await.unwrap());
        // Handed on up to 1, but the consumer starts at 4: 2 and 3 skipped.
        let messages = bus.ordered_from(&s, 4).await.unwrap();
        let mut f = LogFollower::new(bus.log_stream(), s, messages, 1);
        let mut got = Vec::new();
        for _ in 0..5 {
            got.push(id_of(&logged(&mut f).await));
        }
        assert_eq!(got, ["2:e2", "3:e3", "4:e4", "lagged 1", "6:e6"]);
        bus.delete_stream(&bus.log_stream()).await.unwrap();
    }
}
