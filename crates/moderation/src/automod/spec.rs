//! Automod rules as stored and edited: plain serde types, validated when a
//! [`RuleSet`](super::RuleSet) is compiled from them.

use hearth_types::{ChannelId, RoleId};
use serde::{Deserialize, Serialize};

use crate::AutomodRuleId;

/// One automod rule of a community.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSpec {
    pub id: AutomodRuleId,
    /// Shown to a sender whose message the rule blocks, so make it say why.
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub trigger: Trigger,
    pub actions: Vec<Action>,
    #[serde(default)]
    pub exempt_channels: Vec<ChannelId>,
    /// Members holding any of these roles are not checked by this rule.
    #[serde(default)]
    pub exempt_roles: Vec<RoleId>,
}

fn yes() -> bool {
    true
}

/// What makes a rule fire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Trigger {
    /// Any of `words` (case-insensitive, Unicode-folded, whole words unless
    /// they start or end with `*`), except inside a word of `allow`.
    Keywords {
        words: Vec<String>,
        #[serde(default)]
        allow: Vec<String>,
    },
    /// Any of `patterns` (the `regex` crate's syntax, case-insensitive,
    /// matched against the normalized text).
    Regex { patterns: Vec<String> },
    /// More than `max_distinct` distinct mentions (users and roles; `@everyone` counts as one).
    MentionSpam { max_distinct: u32 },
    /// A link to a domain outside `allow_domains` (a domain allows its
    /// subdomains too), if `block_links`; an invite link (the instance's and
    /// other platforms' invite URLs), if `block_invites`, allowed domain or not.
    Links {
        #[serde(default)]
        allow_domains: Vec<String>,
        #[serde(default)]
        block_invites: bool,
        #[serde(default = "yes")]
        block_links: bool,
    },
    /// The same text (normalized) sent more than `max_repeats` times within
    /// `window_secs` by one author in the community (the current message counts).
    Flood { max_repeats: u32, window_secs: u32 },
    /// An account younger than `min_account_age_secs` or a member who joined
    /// less than `min_member_age_secs` ago (0 turns either off).
    NewAccount {
        #[serde(default)]
        min_account_age_secs: u64,
        #[serde(default)]
        min_member_age_secs: u64,
    },
}

/// What a rule does when it fires. Every action of every fired rule is
/// reported; `Block` stops the message on the send path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Refuse the message; the sender gets an error naming the rule.
    Block,
    /// Post a notice to a moderators' channel.
    Flag { channel_id: ChannelId },
    /// Time the author out.
    Timeout { secs: u32 },
    /// Delete the author's messages in the community from the last `secs`.
    DeleteRecent { secs: u32 },
}
