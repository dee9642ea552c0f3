//! Slowmode's clock in the shared state, so a member waits the same on
//! every node: a claim (SET NX with a TTL) holding the cooldown's end.

use std::time::Duration;

use async_trait::async_trait;
use hearth_chat::Cooldowns;
use hearth_state::{Claim, NonceGuard};
use hearth_types::now_ms;

pub struct SharedCooldowns<N>(pub N);

#[async_trait]
impl<N: NonceGuard> Cooldowns for SharedCooldowns<N> {
    async fn start(&self, key: &str, period: Duration) -> Result<Option<Duration>, String> {
        let ends = now_ms() + i64::try_from(period.as_millis()).unwrap_or(i64::MAX / 2);
        match self.0.claim(key, &ends.to_string(), period).await {
            Ok(Claim::New) => Ok(None),
            Ok(Claim::Existing(until)) => {
                let left = until.parse::<i64>().unwrap_or(0) - now_ms();
                Ok(Some(Duration::from_millis(left.max(1).unsigned_abs())))
            }
            Err(e) => Err(e.to_string()),
        }
    }
}
