use std::time::Duration;

use hearth_search::{Has, Index, IndexConfig, IndexedMessage, Op, Query, Scope, SearchPage, Sort};
use hearth_types::{ChannelId, CommunityId, MessageId, UserId};

pub const COMMUNITY: CommunityId = CommunityId(7);
pub const GENERAL: ChannelId = ChannelId(100);
pub const RANDOM: ChannelId = ChannelId(101);
pub const SECRET: ChannelId = ChannelId(102);
pub const DM: ChannelId = ChannelId(200);
pub const ALICE: UserId = UserId(1);
pub const BOB: UserId = UserId(2);
/// 2026-03-01T00:00:00Z.
pub const MARCH_1: i64 = 1_772_323_200_000;
pub const DAY: i64 = 86_400_000;

pub fn msg(id: i64, channel: ChannelId, author: UserId, content: &str) -> IndexedMessage {
    IndexedMessage {
        id: MessageId(id),
        channel_id: channel,
        community_id: (channel != DM).then_some(COMMUNITY),
        author_id: author,
        content: content.to_string(),
        mentions: vec![],
        role_mentions: vec![],
        mentions_everyone: false,
        has: Has::detect(content, [], false),
        pinned: false,
        reply_to: None,
        created_at_ms: MARCH_1 + id * 1000,
        edited_at_ms: None,
    }
}

pub fn index() -> Index {
    Index::open_in_ram(IndexConfig {
        commit_interval: Duration::from_millis(20),
        ..IndexConfig::default()
    })
    .expect("in-memory index")
}

/// An index holding `messages`, committed.
pub fn index_with(messages: Vec<IndexedMessage>) -> Index {
    let ix = index();
    ix.apply(messages.into_iter().map(Op::Upsert).collect(), 1)
        .expect("apply");
    ix.commit().expect("commit");
    ix
}

pub fn everywhere() -> Scope {
    Scope::new([GENERAL, RANDOM, SECRET, DM])
}

pub fn public() -> Scope {
    Scope::new([GENERAL, RANDOM])
}

pub fn search_in(ix: &Index, q: &str, sort: Sort, scope: &Scope) -> SearchPage {
    let query = Query::parse(q, sort, 20, None).unwrap_or_else(|e| panic!("{q}: {e}"));
    ix.search(&query, scope)
        .unwrap_or_else(|e| panic!("{q}: {e}"))
}

/// IDs found for `q` in every channel, newest first.
pub fn ids(ix: &Index, q: &str) -> Vec<i64> {
    search_in(ix, q, Sort::Newest, &everywhere())
        .hits
        .iter()
        .map(|h| h.id.0)
        .collect()
}
