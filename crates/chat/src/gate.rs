//! Per-channel order of MESSAGE_CREATE across nodes.
//!
//! On one node the sequencer (`ordering.rs`) is enough. In a cluster two
//! nodes could mint IDs for one channel at the same moment and publish them
//! in the other order; a [`ChannelGate`] prevents that: a node *enters* a
//! channel before minting (in a cluster, by holding a short lease on it,
//! receiving the highest ID the previous holder used as a floor) and says
//! when each message it minted is finished. The implementation decides
//! when the node can let go (every finished message's event stored).

use async_trait::async_trait;
use hearth_types::{ChannelId, MessageId};

use crate::error::ChatResult;

#[async_trait]
pub trait ChannelGate: Send + Sync + 'static {
    /// Waits until this node may mint an ID for a message in `channel`;
    /// every ID it mints must exceed the returned floor.
    async fn enter(&self, channel: ChannelId) -> ChatResult<i64>;
    /// A message entered with [`ChannelGate::enter`] is finished: `emitted`
    /// is its id if its MESSAGE_CREATE was announced (the gate then waits
    /// for that event to be stored before letting go).
    fn finished(&self, channel: ChannelId, emitted: Option<MessageId>);
}

/// Calls [`ChannelGate::finished`] exactly once, even if the send is
/// cancelled midway.
pub(crate) struct Pass<'a> {
    pub gate: &'a dyn ChannelGate,
    pub channel: ChannelId,
    pub emitted: Option<MessageId>,
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        self.gate.finished(self.channel, self.emitted);
    }
}
