//! The in-process bus: one broadcast channel, filtered by subject prefix on
//! the subscriber side. Right for one node; the NATS bus replaces it for many.

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::{Bus, BusError, Delivery, Envelope, Subscription};

pub struct MemoryBus {
    tx: broadcast::Sender<Envelope>,
}

impl MemoryBus {
    /// `capacity` bounds how far a subscriber may fall behind before it lags.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(16));
        MemoryBus { tx }
    }
}

struct MemorySubscription {
    rx: broadcast::Receiver<Envelope>,
    prefix: String,
}

#[async_trait]
impl Subscription for MemorySubscription {
    async fn next(&mut self) -> Option<Delivery> {
        loop {
            match self.rx.recv().await {
                Ok(ev) if ev.subject.starts_with(&self.prefix) => return Some(Delivery::Event(ev)),
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
        let _ = self.tx.send(event);
        Ok(())
    }

    async fn subscribe(&self, prefix: &str) -> Result<Box<dyn Subscription>, BusError> {
        Ok(Box::new(MemorySubscription {
            rx: self.tx.subscribe(),
            prefix: prefix.to_string(),
        }))
    }

    async fn ping(&self) -> Result<(), BusError> {
        Ok(())
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
}
