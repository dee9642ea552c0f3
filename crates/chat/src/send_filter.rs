//! A filter on the send path (the server's automod): asked about every
//! message to a community channel after the permission, slowmode and nonce
//! checks and before anything is stored, so a refused message leaves no
//! trace. The filter decides alone what to check and whom to spare.

use async_trait::async_trait;
use hearth_rbac::Permissions;
use hearth_store::{Mentions, UserRecord};
use hearth_types::{ChannelId, CommunityId};

use crate::ChatError;

/// A message about to be stored.
#[derive(Clone, Copy, Debug)]
pub struct Outgoing<'a> {
    pub community_id: CommunityId,
    pub channel_id: ChannelId,
    pub author: &'a UserRecord,
    /// The author's permissions in the channel.
    pub permissions: Permissions,
    pub content: &'a str,
    pub mentions: &'a Mentions,
}

#[async_trait]
pub trait SendFilter: Send + Sync + 'static {
    /// `Err` refuses the message (typically [`ChatError::Blocked`]).
    async fn check(&self, msg: &Outgoing<'_>) -> Result<(), ChatError>;
}
