//! The in-process bus: one broadcast channel, filtered by subject prefix on
//! the subscriber side. Right for one node; the NATS bus replaces it for many.

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::broadcast;

use std::sync::Arc;

use crate::journal::{Journal, Journaler};
use crate::{Ack, Bus, BusError, Delivery, Envelope, Subscription};

/// An event on the broadcast channel: with its log position if appended.
type Item = (Option<u64>, Envelope);

pub struct MemoryBus {
    tx: broadcast::Sender<Item>,
    /// The last log position handed out; held while sending so positions
    /// reach subscribers (and the journal) in order.
    position: Mutex<u64>,
    /// Keeps the log for durable consumers, when there is a journal.
    journal: Option<(Arc<dyn Journal>, Journaler)>,
}

impl MemoryBus {
    /// `capacity` bounds how far a subscriber may fall behind before it lags.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(16));
        MemoryBus {
            tx,
            position: Mutex::new(0),
            journal: None,
        }
    }

    /// A bus whose log is also written to `journal` (see `journal.rs`):
    /// positions continue after the journal's head, so they stay unique
    /// across restarts, and durable consumers can read it.
    pub async fn journaled(capacity: usize, journal: Arc<dyn Journal>) -> Result<Self, BusError> {
        let head = journal.head().await?;
        let mut bus = MemoryBus::new(capacity);
        *bus.position.get_mut() = head;
        bus.journal = Some((journal.clone(), Journaler::start(journal, head)));
        Ok(bus)
    }

    fn journal(&self) -> Result<&(Arc<dyn Journal>, Journaler), BusError> {
        self.journal
            .as_ref()
            .ok_or_else(|| BusError::Invalid("this memory bus has no journal".into()))
    }
}

struct MemorySubscription {
    rx: broadcast::Receiver<Item>,
    prefix: String,
    /// Log followers see only appended events, with their positions.
    log: bool,
}

#[async_trait]
impl Subscription for MemorySubscription {
    async fn next(&mut self) -> Option<Delivery> {
        loop {
            match self.rx.recv().await {
                Ok((Some(pos), ev)) if self.log => return Some(Delivery::Logged(pos, ev)),
                Ok((_, ev)) if !self.log && ev.subject.starts_with(&self.prefix) => {
                    return Some(Delivery::Event(ev));
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(n)) => return Some(Delivery::Lagged(n)),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

#[async_trait]
impl Bus for MemoryBus {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn publish(&self, event: Envelope) -> Result<(), BusError> {
        // No subscribers is not an error: nobody is listening yet.
        let _ = self.tx.send((None, event));
        Ok(())
    }

    /// One process is the whole cluster: the log is the broadcast channel
    /// with a counter, so it is stored as soon as it is sent.
    async fn append(&self, event: Envelope) -> Result<Ack, BusError> {
        let pos = {
            let mut p = self.position.lock();
            *p += 1;
            if let Some((_, j)) = &self.journal {
                j.push(*p, event.clone());
            }
            let _ = self.tx.send((Some(*p), event));
            *p
        };
        Ok(Box::pin(async move { Ok(pos) }))
    }

    /// A process has no log from before it started: `backlog` finds nothing.
    async fn follow(&self, _backlog: u64) -> Result<(Box<dyn Subscription>, u64), BusError> {
        let p = self.position.lock();
        let sub = MemorySubscription {
            rx: self.tx.subscribe(),
            prefix: String::new(),
            log: true,
        };
        Ok((Box::new(sub), *p))
    }

    async fn subscribe(&self, prefix: &str) -> Result<Box<dyn Subscription>, BusError> {
        Ok(Box::new(MemorySubscription {
            rx: self.tx.subscribe(),
            prefix: prefix.to_string(),
            log: false,
        }))
    }

    async fn ping(&self) -> Result<(), BusError> {
        Ok(())
    }

    async fn flush(&self, within: std::time::Duration) -> Result<(), BusError> {
        match &self.journal {
            Some((_, j)) if !j.flush(within).await => Err(BusError::Unavailable(
                "the journal did not take every event in time".into(),
            )),
            _ => Ok(()),
        }
    }

    async fn log_head(&self) -> Result<Option<u64>, BusError> {
        Ok(Some(*self.position.lock()))
    }

    async fn read_from(&self, position: u64) -> Result<Box<dyn Subscription>, BusError> {
        let (journal, journaler) = self.journal()?;
        let log_head = *self.position.lock();
        Ok(Box::new(crate::journal::JournalReader::new(
            journal.clone(),
            journaler.head(),
            position,
            log_head,
        )))
    }

    async fn consume(
        &self,
        cfg: crate::journal::ConsumerConfig,
        handler: Arc<dyn crate::journal::Handler>,
    ) -> Result<crate::Consumer, BusError> {
        let (journal, journaler) = self.journal()?;
        let running = crate::journal::run_consumer(journal.clone(), journaler.head(), cfg, handler);
        Ok(crate::Consumer::new(running.counters(), Box::new(running)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(subject: &str, n: u8) -> Envelope {
        Envelope::json(
            n.to_string(),
            "test".into(),
            "hearth.test",
            subject,
            vec![n],
        )
    }

    #[tokio::test]
    async fn subscribers_get_their_prefix_in_order() {
        let bus = MemoryBus::new(64);
        let mut chat = bus.subscribe("chat.").await.unwrap();
        let mut all = bus.subscribe("").await.unwrap();
        for (i, s) in ["chat.channel.1", "auth.session.2", "chat.channel.3"]
            .iter()
            .enumerate()
        {
            bus.publish(ev(s, i as u8)).await.unwrap();
        }
        let mut got = Vec::new();
        for _ in 0..2 {
            match chat.next().await {
                Some(Delivery::Event(e)) => got.push(e.subject),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got, ["chat.channel.1", "chat.channel.3"]);
        for want in ["0", "1", "2"] {
            assert!(matches!(all.next().await, Some(Delivery::Event(e)) if e.id == want));
        }
    }

    #[tokio::test]
    async fn a_slow_subscriber_lags_instead_of_blocking() {
        let bus = MemoryBus::new(16);
        let mut slow = bus.subscribe("").await.unwrap();
        for i in 0..40 {
            bus.publish(ev("x", i)).await.unwrap();
        }
        assert!(matches!(slow.next().await, Some(Delivery::Lagged(n)) if n == 24));
        assert!(matches!(slow.next().await, Some(Delivery::Event(e)) if e.id == "24"));
    }

    #[tokio::test]
    async fn the_log_positions_appended_events_and_subscribers_see_them_too() {
        let bus = MemoryBus::new(64);
        let (mut log, head) = bus.follow(10).await.unwrap();
        assert_eq!(head, 0);
        let mut all = bus.subscribe("").await.unwrap();
        bus.publish(ev("presence.1", 0)).await.unwrap();
        let a = bus.append(ev("chat.channel.1", 1)).await.unwrap();
        let b = bus.append(ev("chat.channel.2", 2)).await.unwrap();
        assert_eq!((a.await.unwrap(), b.await.unwrap()), (1, 2));
        // The head is the last appended position (a publish is not logged).
        assert_eq!(bus.log_head().await.unwrap(), Some(2));
        for want in [(1, "1"), (2, "2")] {
            match log.next().await {
                Some(Delivery::Logged(p, e)) => assert_eq!((p, e.id.as_str()), want),
                other => panic!("{other:?}"),
            }
        }
        for want in ["0", "1", "2"] {
            assert!(matches!(all.next().await, Some(Delivery::Event(e)) if e.id == want));
        }
    }
}
