//! Gateway scenarios: real WebSocket clients speaking the contract's
//! protocol against one node or several.
//!
//! - `idle` (fanout.rs): N identified connections that only heartbeat; the
//!   server's RSS per connection.
//! - `fanout` (fanout.rs): N connections in one channel, a sender posting at a
//!   fixed rate over REST; deliveries/s and send-to-receive latency. With
//!   several nodes the connections are spread over them, one row per node.
//! - `rising` (fanout.rs): the same with a rising send rate, one row per step.
//! - `floor` (floor.rs): gw-rising's writes by a bare writer process, no
//!   server: the kernel's share of a delivery.
//! - `channels` (channels.rs): many channels, each with its own members.
//! - `e2e` (channels.rs): 1,000 msg/s over several channels and senders to a
//!   modest number of receivers, optionally on another node.
//! - `storm` (storm.rs): every connection dropped at once, all resume.
//! - `ready` (ready.rs): READY size and time for a user in many big
//!   communities, and one page of members.
//! - `abuse` (abuse.rs): message latency for everyone while one user joins
//!   and leaves in a loop and another creates group DMs.
//! - `rolling` (rolling.rs): clients through a cluster's load balancer
//!   while every node is restarted in turn: nothing lost, repeated or out
//!   of order, and how long resuming takes.
//! - `overload` (overload.rs): one channel sent to faster than it can be
//!   delivered, some readers stalling: every message reaches every client,
//!   live or (after a close) by resume or REST, and none silently skipped.

mod abuse;
mod channels;
pub(crate) mod client;
pub(crate) mod cohort;
mod fanout;
mod floor;
mod overload;
pub(crate) mod probe;
mod ready;
mod rolling;
mod storm;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use abuse::abuse;
pub use channels::{channels, e2e};
pub use fanout::{fanout, idle, rising};
pub use floor::{floor, writer as floor_writer};
pub use overload::overload;
pub use ready::ready;
pub use rolling::rolling;
pub use storm::storm;

/// Node names in result rows.
fn node_name(n: usize) -> char {
    (b'A' + n as u8) as char
}

/// Posts messages over REST without waiting for the answers (an open loop),
/// so a slow server shows up as latency, not as a lower send rate.
#[derive(Clone)]
struct Poster {
    http: reqwest::Client,
    failed: Arc<AtomicU64>,
}

impl Poster {
    fn new() -> Poster {
        Poster {
            http: crate::scenarios::client(),
            failed: Arc::new(AtomicU64::new(0)),
        }
    }

    fn post(&self, base: &str, channel: &str, token: &str, content: String) {
        let req = self
            .http
            .post(format!("{base}/api/v1/channels/{channel}/messages"))
            .bearer_auth(token)
            .json(&serde_json::json!({ "content": content }));
        let failed = self.failed.clone();
        tokio::spawn(async move {
            let ok = matches!(req.send().await, Ok(r) if r.status().as_u16() == 201);
            if !ok {
                failed.fetch_add(1, Ordering::Relaxed);
            }
        });
    }

    fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
}
