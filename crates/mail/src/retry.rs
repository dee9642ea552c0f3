//! The outbox's retry policy, as pure functions (the store keeps the
//! attempts; the worker asks what to do next).

use std::time::Duration;

/// Retries after the first attempt; then the mail is failed.
pub const RETRIES: u32 = 3;

/// What to do with a mail after an attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Try again after this long.
    RetryIn(Duration),
    /// Out of retries: failed, dead-lettered, counted.
    Fail,
    /// A permanent refusal: the address is marked bounced; never retried.
    Bounce,
}

/// `attempts`: attempts made so far, the failed one included (1 after the
/// first). The waits grow fourfold from `base` (30 s by default: 30 s,
/// 2 min, 8 min), so a mail server that is down for a few minutes loses
/// nothing while one that is gone for good fails the mail within minutes.
pub fn after_failure(attempts: u32, permanent: bool, base: Duration) -> Next {
    if permanent {
        return Next::Bounce;
    }
    if attempts > RETRIES {
        return Next::Fail;
    }
    let factor = 4u32.saturating_pow(attempts.saturating_sub(1));
    Next::RetryIn(base.saturating_mul(factor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_retries_with_growing_waits_then_failed() {
        let base = Duration::from_secs(30);
        let waits: Vec<Next> = (1..=4).map(|a| after_failure(a, false, base)).collect();
        assert_eq!(
            waits,
            vec![
                Next::RetryIn(Duration::from_secs(30)),
                Next::RetryIn(Duration::from_secs(120)),
                Next::RetryIn(Duration::from_secs(480)),
                Next::Fail,
            ]
        );
        assert_eq!(after_failure(1, true, base), Next::Bounce);
        assert_eq!(after_failure(99, false, base), Next::Fail);
    }
}
