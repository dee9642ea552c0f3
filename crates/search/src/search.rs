//! Running a [`Query`] inside a caller's [`Scope`]: the tantivy query, the
//! collector, the page and its snippets.

use std::ops::Bound;
use std::sync::Arc;

use hearth_types::{ChannelId, MessageId};
use tantivy::query::{
    AllQuery, BooleanQuery, ConstScoreQuery, Occur, PhrasePrefixQuery, PhraseQuery,
    Query as TQuery, RangeQuery, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::{Searcher, TantivyDocument, Term};

use crate::collect::{ChannelSet, Fruit, HitCollector, Order, SegmentCache};
use crate::error::SearchError;
use crate::highlight::{self, Highlight, Marks};
use crate::query::{
    Cursor, MAX_PREFIX_EXPANSIONS, MAX_RELEVANCE_RESULTS, Query, Sort, Target, Text,
};
use crate::schema::{self, Fields};

/// The channels a caller may search, decided by the server at query time:
/// those where they have VIEW_CHANNEL and READ_MESSAGE_HISTORY, and their
/// DM channels. Nothing outside it is matched, counted or shown.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    channels: Vec<u64>,
}

impl Scope {
    pub fn new(channels: impl IntoIterator<Item = ChannelId>) -> Scope {
        let mut channels: Vec<u64> = channels.into_iter().map(|c| schema::id(c.0)).collect();
        channels.sort_unstable();
        channels.dedup();
        Scope { channels }
    }

    pub fn len(&self) -> usize {
        self.channels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }
}

/// One result. The server loads the message itself from the store by ID.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub id: MessageId,
    pub channel_id: ChannelId,
    /// BM25 score in relevance order, 0 in date order.
    pub score: f32,
    pub highlight: Highlight,
}

/// A page of results.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchPage {
    /// Every matching message in scope (not only this page).
    pub total: usize,
    pub hits: Vec<Hit>,
    /// Pass back as `cursor` (with the same query and sort) for the next page.
    pub next_cursor: Option<String>,
}

/// Channels to search above this many are checked per document only (by
/// the collector); at most this many also become a query clause, so a
/// narrow scope reads only its channels' postings.
const SCOPE_CLAUSE_MAX: usize = 4;

pub(crate) fn run(
    searcher: &Searcher,
    f: &Fields,
    segments: &Arc<SegmentCache>,
    q: &Query,
    scope: &Scope,
) -> Result<SearchPage, SearchError> {
    if let Some(name) = q.names().first() {
        return Err(SearchError::Unresolved(name.1.to_string()));
    }
    let channels: Vec<u64> = if q.channels.is_empty() {
        scope.channels.clone()
    } else {
        let mut wanted: Vec<u64> = q
            .channels
            .iter()
            .filter_map(|t| match t {
                Target::Id(c) => Some(schema::id(c.0)),
                Target::Name(_) => None,
            })
            .filter(|c| scope.channels.binary_search(c).is_ok())
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        wanted
    };
    if channels.is_empty() {
        return Ok(SearchPage::default());
    }
    let (tquery, marks) = plan(f, q, &channels);
    let (order, k, after, offset) = match (q.sort, q.cursor) {
        (Sort::Relevance, c) => {
            let offset = match c {
                Some(Cursor::Offset(o)) => o,
                _ => 0,
            };
            (Order::Score, offset + q.limit, None, offset)
        }
        (Sort::Newest, c) => (Order::IdDesc, q.limit, after_id(c), 0),
        (Sort::Oldest, c) => (Order::IdAsc, q.limit, after_id(c), 0),
    };
    let collector = HitCollector {
        scope: Arc::new(ChannelSet::new(&channels)),
        order,
        k,
        after,
        segments: segments.clone(),
    };
    let Fruit {
        total,
        eligible,
        top,
    } = searcher.search(&tquery, &collector)?;
    let page: Vec<_> = top.into_iter().skip(offset).collect();
    let next_cursor = match order {
        Order::Score if eligible > offset + q.limit && offset + q.limit < MAX_RELEVANCE_RESULTS => {
            Some(Cursor::Offset(offset + q.limit).encode(q.sort))
        }
        Order::IdDesc | Order::IdAsc if eligible > q.limit => {
            page.last().map(|e| Cursor::After(e.id).encode(q.sort))
        }
        _ => None,
    };
    let mut analyzer = crate::analyzer::index_analyzer();
    let mut hits = Vec::with_capacity(page.len());
    for e in page {
        let doc: TantivyDocument = searcher.doc(e.addr)?;
        let content = doc
            .get_first(f.content)
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let channel = doc
            .get_first(f.channel)
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        hits.push(Hit {
            id: MessageId(e.id as i64),
            channel_id: ChannelId(channel as i64),
            score: e.score,
            highlight: highlight::highlight(&mut analyzer, content, &marks),
        });
    }
    Ok(SearchPage {
        total,
        hits,
        next_cursor,
    })
}

fn after_id(c: Option<Cursor>) -> Option<u64> {
    match c {
        Some(Cursor::After(id)) => Some(id),
        _ => None,
    }
}

fn filter(q: impl TQuery) -> Box<dyn TQuery> {
    Box::new(ConstScoreQuery::new(Box::new(q), 0.0))
}

/// Any of `values` in `field`, scoring nothing.
fn any_of(field: Field, values: impl IntoIterator<Item = u64>) -> Box<dyn TQuery> {
    let terms: Vec<(Occur, Box<dyn TQuery>)> = values
        .into_iter()
        .map(|v| {
            let t: Box<dyn TQuery> = Box::new(TermQuery::new(
                Term::from_field_u64(field, v),
                IndexRecordOption::Basic,
            ));
            (Occur::Should, t)
        })
        .collect();
    filter(BooleanQuery::new(terms))
}

/// A phrase. Each two adjacent words of it are one term of the `pairs`
/// field: a two-word phrase is that term alone (a message holds the pair
/// exactly when it holds the words side by side), and a longer one reads
/// its pairs' postings first and checks positions only in the messages
/// holding all of them, instead of in every message holding all its words.
/// A phrase with no adjacent words (through unspaced scripts or emoji)
/// checks positions alone.
fn phrase(f: &Fields, ts: &[(usize, String)]) -> Box<dyn TQuery> {
    let pairs: Vec<Term> = ts
        .windows(2)
        .filter(|w| {
            w[1].0 == w[0].0 + 1
                && crate::analyzer::is_word(&w[0].1)
                && crate::analyzer::is_word(&w[1].1)
        })
        .map(|w| Term::from_field_text(f.pairs, &crate::analyzer::pair(&w[0].1, &w[1].1)))
        .collect();
    if ts.len() == 2 && pairs.len() == 1 {
        return Box::new(TermQuery::new(
            pairs[0].clone(),
            IndexRecordOption::WithFreqs,
        ));
    }
    let positions: Box<dyn TQuery> = Box::new(PhraseQuery::new_with_offset(
        ts.iter()
            .map(|(p, t)| (*p, Term::from_field_text(f.content, t)))
            .collect(),
    ));
    if pairs.is_empty() {
        return positions;
    }
    let mut clauses: Vec<(Occur, Box<dyn TQuery>)> = pairs
        .into_iter()
        .map(|t| {
            (
                Occur::Must,
                filter(TermQuery::new(t, IndexRecordOption::Basic)),
            )
        })
        .collect();
    clauses.push((Occur::Must, positions));
    Box::new(BooleanQuery::new(clauses))
}

fn ids<T: Copy>(targets: &[Target<T>], raw: impl Fn(T) -> i64) -> Vec<u64> {
    targets
        .iter()
        .filter_map(|t| match t {
            Target::Id(v) => Some(schema::id(raw(*v))),
            Target::Name(_) => None,
        })
        .collect()
}

/// The tantivy query for `q` in `channels`, and the words its snippets mark.
fn plan(f: &Fields, q: &Query, channels: &[u64]) -> (Box<dyn TQuery>, Marks) {
    let mut clauses: Vec<(Occur, Box<dyn TQuery>)> = Vec::new();
    let mut marks = Marks::default();
    let text_term = |t: &str| Term::from_field_text(f.content, t);
    for c in &q.text {
        let occur = if c.negated {
            Occur::MustNot
        } else {
            Occur::Must
        };
        let query: Box<dyn TQuery> = match &c.text {
            Text::Term(t) => {
                if !c.negated {
                    marks.terms.push(t.clone());
                }
                Box::new(TermQuery::new(text_term(t), IndexRecordOption::WithFreqs))
            }
            Text::Phrase(ts) => {
                if !c.negated {
                    marks.terms.extend(ts.iter().map(|(_, t)| t.clone()));
                }
                phrase(f, ts)
            }
            Text::Prefix(ts) => {
                if !c.negated
                    && let Some(((_, last), rest)) = ts.split_last()
                {
                    marks.terms.extend(rest.iter().map(|(_, t)| t.clone()));
                    marks.prefixes.push(last.clone());
                }
                let mut p = PhrasePrefixQuery::new_with_offset(
                    ts.iter().map(|(p, t)| (*p, text_term(t))).collect(),
                );
                p.set_max_expansions(MAX_PREFIX_EXPANSIONS);
                Box::new(p)
            }
        };
        clauses.push((occur, query));
    }
    if !q.from.is_empty() {
        clauses.push((Occur::Must, any_of(f.author, ids(&q.from, |u| u.0))));
    }
    if !q.mentions.is_empty() {
        clauses.push((Occur::Must, any_of(f.mentions, ids(&q.mentions, |u| u.0))));
    }
    if channels.len() <= SCOPE_CLAUSE_MAX {
        clauses.push((Occur::Must, any_of(f.channel, channels.iter().copied())));
    }
    let has = q.has.bits();
    for bit in 0..5 {
        if has & (1 << bit) != 0 {
            clauses.push((Occur::Must, any_of(f.has, [bit])));
        }
    }
    if let Some(p) = q.pinned {
        clauses.push((
            Occur::Must,
            filter(TermQuery::new(
                Term::from_field_bool(f.pinned, p),
                IndexRecordOption::Basic,
            )),
        ));
    }
    if q.created_from_ms.is_some() || q.created_until_ms.is_some() {
        let lower = q.created_from_ms.map_or(Bound::Unbounded, |v| {
            Bound::Included(Term::from_field_i64(f.created, v))
        });
        let upper = q.created_until_ms.map_or(Bound::Unbounded, |v| {
            Bound::Excluded(Term::from_field_i64(f.created, v))
        });
        clauses.push((Occur::Must, filter(RangeQuery::new(lower, upper))));
    }
    if !clauses.iter().any(|(o, _)| *o == Occur::Must) {
        clauses.push((Occur::Must, filter(AllQuery)));
    }
    // One required clause alone keeps its own fast paths (a term's count
    // is its posting list's length).
    if clauses.len() == 1 && clauses[0].0 == Occur::Must {
        let (_, only) = clauses.remove(0);
        return (only, marks);
    }
    (Box::new(BooleanQuery::new(clauses)), marks)
}
