//! The tantivy schema, its version, and the conversion between an
//! [`IndexedMessage`] and a tantivy document.

use hearth_types::{ChannelId, CommunityId, MessageId, RoleId, UserId};
use tantivy::TantivyDocument;
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, Schema, TextFieldIndexing, TextOptions, Value,
};

use crate::analyzer::{ANALYZER, PAIRS};
use crate::message::{Has, IndexedMessage};

/// Bump when the schema or the analyzer changes: an index written with
/// another version is wiped on open and reported as needing a rebuild.
pub const SCHEMA_VERSION: u32 = 2;

/// The schema's fields. IDs are positive `i64`s stored as `u64`.
#[derive(Clone, Copy, Debug)]
pub struct Fields {
    pub id: Field,
    pub channel: Field,
    pub community: Field,
    pub author: Field,
    pub content: Field,
    /// Adjacent word pairs of the content (not stored): a two-word phrase
    /// is one term here.
    pub pairs: Field,
    pub mentions: Field,
    pub role_mentions: Field,
    pub everyone: Field,
    pub has: Field,
    pub pinned: Field,
    pub reply_to: Field,
    pub created: Field,
    pub edited: Field,
}

pub fn build() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let content = TextOptions::default().set_stored().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(ANALYZER)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let fields = Fields {
        // FAST: date order and cursors read it per document.
        id: b.add_u64_field("id", INDEXED | STORED | FAST),
        // FAST: the permission scope is checked per matching document.
        channel: b.add_u64_field("channel", INDEXED | STORED | FAST),
        community: b.add_u64_field("community", INDEXED | STORED),
        author: b.add_u64_field("author", INDEXED | STORED),
        content: b.add_text_field("content", content),
        // Frequencies only: a pair's count in a message is the phrase's
        // count, which is what BM25 needs; longer phrases use pairs only
        // to narrow the candidates and check positions in `content`.
        pairs: b.add_text_field(
            "pairs",
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(PAIRS)
                    .set_index_option(IndexRecordOption::WithFreqs),
            ),
        ),
        mentions: b.add_u64_field("mentions", INDEXED | STORED),
        role_mentions: b.add_u64_field("role_mentions", INDEXED | STORED),
        everyone: b.add_bool_field("everyone", INDEXED | STORED),
        // One value per kind the message has (the kind's bit number).
        has: b.add_u64_field("has", INDEXED | STORED),
        pinned: b.add_bool_field("pinned", INDEXED | STORED),
        reply_to: b.add_u64_field("reply_to", INDEXED | STORED),
        created: b.add_i64_field("created", INDEXED | STORED | FAST),
        edited: b.add_i64_field("edited", STORED),
    };
    (b.build(), fields)
}

pub(crate) fn id(v: i64) -> u64 {
    v.max(0) as u64
}

impl Fields {
    pub fn document(&self, m: &IndexedMessage) -> TantivyDocument {
        let mut d = TantivyDocument::new();
        d.add_u64(self.id, id(m.id.0));
        d.add_u64(self.channel, id(m.channel_id.0));
        if let Some(c) = m.community_id {
            d.add_u64(self.community, id(c.0));
        }
        d.add_u64(self.author, id(m.author_id.0));
        d.add_text(self.content, &m.content);
        d.add_text(self.pairs, &m.content);
        for u in &m.mentions {
            d.add_u64(self.mentions, id(u.0));
        }
        for r in &m.role_mentions {
            d.add_u64(self.role_mentions, id(r.0));
        }
        d.add_bool(self.everyone, m.mentions_everyone);
        let bits = m.has.bits();
        for i in 0..5 {
            if bits & (1 << i) != 0 {
                d.add_u64(self.has, i);
            }
        }
        d.add_bool(self.pinned, m.pinned);
        if let Some(r) = m.reply_to {
            d.add_u64(self.reply_to, id(r.0));
        }
        d.add_i64(self.created, m.created_at_ms);
        if let Some(e) = m.edited_at_ms {
            d.add_i64(self.edited, e);
        }
        d
    }

    pub fn message(&self, d: &TantivyDocument) -> IndexedMessage {
        let u64s = |f: Field| -> Vec<i64> {
            d.get_all(f)
                .filter_map(|v| v.as_u64())
                .map(|v| v as i64)
                .collect()
        };
        let one = |f: Field| u64s(f).first().copied();
        let bool_of = |f: Field| d.get_first(f).and_then(|v| v.as_bool()).unwrap_or(false);
        let i64_of = |f: Field| d.get_first(f).and_then(|v| v.as_i64());
        IndexedMessage {
            id: MessageId(one(self.id).unwrap_or(0)),
            channel_id: ChannelId(one(self.channel).unwrap_or(0)),
            community_id: one(self.community).map(CommunityId),
            author_id: UserId(one(self.author).unwrap_or(0)),
            content: d
                .get_first(self.content)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string(),
            mentions: u64s(self.mentions).into_iter().map(UserId).collect(),
            role_mentions: u64s(self.role_mentions).into_iter().map(RoleId).collect(),
            mentions_everyone: bool_of(self.everyone),
            has: Has::from_bits(u64s(self.has).into_iter().fold(0, |a, i| a | (1 << i))),
            pinned: bool_of(self.pinned),
            reply_to: one(self.reply_to).map(MessageId),
            created_at_ms: i64_of(self.created).unwrap_or(0),
            edited_at_ms: i64_of(self.edited),
        }
    }
}
