//! Message search on tantivy.
//!
//! The index holds one document per message (every field stored) and is fed
//! only by [`Op`]s, which the server makes from the event log with
//! [`ops_from_event`] (and, for a rebuild, from the store). It never reads
//! the chat crate or the store, and it knows no names or permissions: the
//! server resolves `from:@alice` to IDs ([`Query::resolve`]) and decides the
//! caller's [`Scope`] (channels they may view and read the history of, and
//! their DMs) at query time.
//!
//! ```text
//! event log ──ops_from_event──▶ Index::apply(ops, position) ──commit (≤ 200 ms)──▶ searchable
//! server: Query::parse ─▶ resolve names ─▶ Index::search(&query, &scope) ─▶ ids + snippets
//! ```
//!
//! Invariants:
//! - Applying an op twice leaves the index as applying it once.
//! - The consumer's log position is committed in the same commit as the
//!   documents it covers; after a restart, resume after [`Index::position`].
//! - Nothing outside the scope is matched, counted or shown: the scope is
//!   checked on every matching document before it is counted.
//! - Every query is bounded: at most [`MAX_QUERY_CHARS`] characters,
//!   [`MAX_TERMS`] terms, [`MAX_PREFIX_EXPANSIONS`] expansions per prefix,
//!   [`MAX_LIMIT`] hits a page and [`MAX_RELEVANCE_RESULTS`] in relevance
//!   order; its work is at most one pass over the documents its terms match.

mod analyzer;
mod collect;
mod error;
mod events;
mod gate;
mod highlight;
mod index;
mod message;
mod query;
mod schema;
mod search;

pub use error::{EventError, IndexError, SearchError};
pub use events::{KINDS, ops_from_event};
pub use highlight::{Highlight, SNIPPET_CHARS};
pub use index::{Index, IndexConfig, Stats};
pub use message::{HAS_KINDS, Has, IndexedMessage, Op};
pub use query::{
    MAX_LIMIT, MAX_PREFIX_EXPANSIONS, MAX_QUERY_CHARS, MAX_RELEVANCE_RESULTS, MAX_TERMS, NameKind,
    Query, Sort, Target,
};
pub use schema::SCHEMA_VERSION;
pub use search::{Hit, Scope, SearchPage};
