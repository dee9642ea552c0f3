//! The embedded bus's journal over the store, and its retention.
//!
//! On one node (no NATS) the log's durable copy is the `event_journal`
//! table: domain consumers (search on every node, the audit log and
//! notifications once per cluster) read it after their own position. The
//! bus writes no SQL and the store knows no envelopes, so this adapter is
//! the one place the two meet.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hearth_bus::journal::Journal;
use hearth_bus::{BusError, Envelope};
use hearth_store::{DeadLetterRecord, JournalRecord, Store};
use hearth_types::now_ms;

pub struct StoreJournal(pub Arc<dyn Store>);

fn unavailable(e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(e.to_string())
}

fn position(p: u64) -> i64 {
    i64::try_from(p).unwrap_or(i64::MAX)
}

fn record(position: u64, e: &Envelope) -> JournalRecord {
    JournalRecord {
        position: self::position(position),
        id: e.id.clone(),
        source: e.source.clone(),
        ty: e.ty.clone(),
        subject: e.subject.clone(),
        time: e.time,
        content_type: e.datacontenttype.to_string(),
        data: e.data.to_vec(),
    }
}

fn envelope(r: JournalRecord) -> (u64, Envelope) {
    // The bus publishes JSON only; the content type is a static string.
    let datacontenttype = match r.content_type.as_str() {
        "application/json" => "application/json",
        _ => "application/octet-stream",
    };
    (
        u64::try_from(r.position).unwrap_or(0),
        Envelope {
            id: r.id,
            source: r.source,
            ty: r.ty,
            time: r.time,
            subject: r.subject,
            datacontenttype,
            data: r.data.into(),
        },
    )
}

#[async_trait]
impl Journal for StoreJournal {
    async fn head(&self) -> Result<u64, BusError> {
        let h = self.0.journal_head().await.map_err(unavailable)?;
        Ok(u64::try_from(h).unwrap_or(0))
    }

    async fn append(&self, events: &[(u64, Envelope)]) -> Result<(), BusError> {
        let records: Vec<JournalRecord> = events.iter().map(|(p, e)| record(*p, e)).collect();
        self.0.journal_append(&records).await.map_err(unavailable)
    }

    async fn after(&self, pos: u64, limit: usize) -> Result<Vec<(u64, Envelope)>, BusError> {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        let rows = self
            .0
            .journal_after(position(pos), limit)
            .await
            .map_err(unavailable)?;
        Ok(rows.into_iter().map(envelope).collect())
    }

    async fn cursor(&self, consumer: &str) -> Result<u64, BusError> {
        let c = self
            .0
            .consumer_cursor(consumer)
            .await
            .map_err(unavailable)?;
        Ok(u64::try_from(c).unwrap_or(0))
    }

    async fn set_cursor(&self, consumer: &str, pos: u64) -> Result<(), BusError> {
        self.0
            .set_consumer_cursor(consumer, position(pos), now_ms())
            .await
            .map_err(unavailable)
    }

    async fn dead_letter(
        &self,
        consumer: &str,
        pos: u64,
        event: &Envelope,
        error: &str,
    ) -> Result<(), BusError> {
        self.0
            .add_dead_letter(&DeadLetterRecord {
                consumer: consumer.to_string(),
                event: record(pos, event),
                error: error.to_string(),
                created_at: now_ms(),
            })
            .await
            .map_err(unavailable)
    }
}

/// Keeps the journal to the newest `keep` events: every consumer that is
/// further behind than that rebuilds from the store (search) or was told by
/// the gap. Trimming by count keeps the table's size bounded whatever the
/// rate of events.
pub fn spawn_retention(store: Arc<dyn Store>, keep: u64) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            let head = match store.journal_head().await {
                Ok(h) => h,
                Err(e) => {
                    tracing::debug!(error = %e, "journal retention: head");
                    continue;
                }
            };
            let before = head.saturating_sub(position(keep)) + 1;
            if before <= 1 {
                continue;
            }
            match store.journal_trim(before).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(trimmed = n, before, "journal retention"),
                Err(e) => tracing::warn!(error = %e, "journal retention: trim"),
            }
        }
    });
}
