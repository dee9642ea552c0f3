//! The query language, parsed once into a [`Query`].
//!
//! ```text
//! word other          both words (AND), any order
//! "a phrase"          the words in this order (an unclosed quote runs to the end)
//! prefi*              words starting with `prefi` (at least 2 characters before `*`,
//!                     at most 64 expansions); "a phrase wi*" also works
//! -word  -"a phrase"  without it
//! from:<user>         by this author           (repeat: any of them)
//! mentions:<user>     mentioning this user     (repeat: any of them)
//! in:<channel>        in this channel          (repeat: any of them)
//! has:link|file|image|video|embed              (repeat: all of them)
//! before:YYYY-MM-DD   sent before that day (UTC)
//! after:YYYY-MM-DD    sent after that day (UTC)
//! during:YYYY-MM-DD   sent that day (UTC)
//! pinned:true|false
//! ```
//! `<user>` and `<channel>` are a decimal ID, or a name (`@alice`, `alice`,
//! `#general`) the server resolves with [`Query::resolve`] before searching
//! (this crate does not know names). A filter value may be quoted
//! (`in:"general chat"`). A `key:value` token whose key is not a filter
//! answers [`SearchError::UnknownFilter`], except when the value starts with
//! `/` (`https://…` is text).

use std::fmt;

use hearth_types::{ChannelId, UserId};

use crate::analyzer::{self, Analyzed};
use crate::error::SearchError;
use crate::message::{HAS_KINDS, Has};

/// Longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 1_000;
/// Most terms (analyzed tokens plus filter values) in one query.
pub const MAX_TERMS: usize = 32;
/// Largest page.
pub const MAX_LIMIT: usize = 100;
/// Relevance order pages through at most this many results.
pub const MAX_RELEVANCE_RESULTS: usize = 1_000;
/// Most index terms one `prefix*` expands to.
pub const MAX_PREFIX_EXPANSIONS: u32 = 64;

const DAY_MS: i64 = 86_400_000;

/// Result order. Date order is ID order (snowflakes are time-ordered).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sort {
    #[default]
    Relevance,
    Newest,
    Oldest,
}

impl std::str::FromStr for Sort {
    type Err = SearchError;
    fn from_str(s: &str) -> Result<Sort, SearchError> {
        match s {
            "relevance" => Ok(Sort::Relevance),
            "newest" => Ok(Sort::Newest),
            "oldest" => Ok(Sort::Oldest),
            _ => Err(SearchError::BadValue(format!("sort={s}"))),
        }
    }
}

/// A user or channel named in a filter: an ID, or a name still to resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target<T> {
    Id(T),
    /// The name as written, without its `@` or `#`.
    Name(String),
}

/// What a name in a filter refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKind {
    User,
    Channel,
}

/// Analyzed text: one term, a phrase, or a phrase whose last term is a
/// prefix. Positions are the analyzer's, so phrases line up with the index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Text {
    Term(String),
    Phrase(Vec<(usize, String)>),
    Prefix(Vec<(usize, String)>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TextClause {
    pub negated: bool,
    pub text: Text,
}

/// Where a page starts: after a message ID (date order) or at an offset
/// (relevance order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cursor {
    After(u64),
    Offset(usize),
}

impl Cursor {
    pub(crate) fn encode(self, sort: Sort) -> String {
        match (self, sort) {
            (Cursor::After(id), Sort::Newest) => format!("n{id:x}"),
            (Cursor::After(id), _) => format!("o{id:x}"),
            (Cursor::Offset(o), _) => format!("r{o:x}"),
        }
    }

    fn decode(s: &str, sort: Sort) -> Result<Cursor, SearchError> {
        let (tag, rest) = s.split_at_checked(1).ok_or(SearchError::BadCursor)?;
        if rest.is_empty() || rest.len() > 16 {
            return Err(SearchError::BadCursor);
        }
        let n = u64::from_str_radix(rest, 16).map_err(|_| SearchError::BadCursor)?;
        match (tag, sort) {
            ("n", Sort::Newest) | ("o", Sort::Oldest) => Ok(Cursor::After(n)),
            ("r", Sort::Relevance) if n as usize <= MAX_RELEVANCE_RESULTS => {
                Ok(Cursor::Offset(n as usize))
            }
            _ => Err(SearchError::BadCursor),
        }
    }
}

/// A parsed query, ready for [`crate::Index::search`] once its names are
/// resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub(crate) text: Vec<TextClause>,
    pub from: Vec<Target<UserId>>,
    pub mentions: Vec<Target<UserId>>,
    pub channels: Vec<Target<ChannelId>>,
    /// Kinds every result must have.
    pub has: Has,
    /// Created at or after (ms since the epoch).
    pub created_from_ms: Option<i64>,
    /// Created before (ms since the epoch).
    pub created_until_ms: Option<i64>,
    pub pinned: Option<bool>,
    pub sort: Sort,
    pub limit: usize,
    pub(crate) cursor: Option<Cursor>,
}

impl Query {
    /// Parses `q`. `limit` must be within 1..=[`MAX_LIMIT`]; `cursor` is a
    /// `next_cursor` from an earlier page with the same sort.
    pub fn parse(
        q: &str,
        sort: Sort,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Query, SearchError> {
        if q.len() > MAX_QUERY_CHARS * 4 || q.chars().count() > MAX_QUERY_CHARS {
            return Err(SearchError::TooLong {
                max: MAX_QUERY_CHARS,
            });
        }
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(SearchError::BadLimit(limit));
        }
        let mut query = Query {
            text: Vec::new(),
            from: Vec::new(),
            mentions: Vec::new(),
            channels: Vec::new(),
            has: Has::default(),
            created_from_ms: None,
            created_until_ms: None,
            pinned: None,
            sort,
            limit,
            cursor: cursor.map(|c| Cursor::decode(c, sort)).transpose()?,
        };
        let mut analyzer = analyzer::query_analyzer();
        let mut terms = 0;
        for lexeme in lex(q) {
            terms += query.add(&lexeme, &mut analyzer)?;
            if terms > MAX_TERMS {
                return Err(SearchError::TooManyTerms { max: MAX_TERMS });
            }
        }
        let filtered = !query.from.is_empty()
            || !query.mentions.is_empty()
            || !query.channels.is_empty()
            || query.has != Has::default()
            || query.created_from_ms.is_some()
            || query.created_until_ms.is_some()
            || query.pinned.is_some();
        if query.text.is_empty() && !filtered {
            return Err(SearchError::Empty);
        }
        Ok(query)
    }

    /// The names in `from:`, `mentions:` and `in:` still to resolve.
    pub fn names(&self) -> Vec<(NameKind, &str)> {
        let users = self
            .from
            .iter()
            .chain(&self.mentions)
            .filter_map(|t| match t {
                Target::Name(n) => Some((NameKind::User, n.as_str())),
                Target::Id(_) => None,
            });
        let channels = self.channels.iter().filter_map(|t| match t {
            Target::Name(n) => Some((NameKind::Channel, n.as_str())),
            Target::Id(_) => None,
        });
        users.chain(channels).collect()
    }

    /// Replaces every name with the ID `lookup` gives; a name it does not
    /// know answers [`SearchError::Unresolved`] naming it.
    pub fn resolve(
        &mut self,
        lookup: impl Fn(NameKind, &str) -> Option<i64>,
    ) -> Result<(), SearchError> {
        fn one<T: From<hearth_types::Snowflake>>(
            t: &mut Target<T>,
            kind: NameKind,
            lookup: &impl Fn(NameKind, &str) -> Option<i64>,
        ) -> Result<(), SearchError> {
            if let Target::Name(n) = t {
                let id = lookup(kind, n).ok_or_else(|| SearchError::Unresolved(n.clone()))?;
                *t = Target::Id(T::from(hearth_types::Snowflake(id)));
            }
            Ok(())
        }
        for t in self.from.iter_mut().chain(&mut self.mentions) {
            one(t, NameKind::User, &lookup)?;
        }
        for t in &mut self.channels {
            one(t, NameKind::Channel, &lookup)?;
        }
        Ok(())
    }

    /// Adds one lexeme; returns how many terms it counts for.
    fn add(
        &mut self,
        l: &Lexeme,
        analyzer: &mut tantivy::tokenizer::TextAnalyzer,
    ) -> Result<usize, SearchError> {
        if !l.quoted
            && let Some((key, value)) = filter_parts(&l.text)
        {
            if l.negated {
                return Err(SearchError::NegatedFilter(l.raw.clone()));
            }
            return self.add_filter(key, value, &l.raw).map(|()| 1);
        }
        let mut body = l.text.as_str();
        let prefix = body.ends_with('*');
        if prefix {
            body = body.trim_end_matches('*');
        }
        let tokens: Vec<Analyzed> = analyzer::analyze(analyzer, body);
        let Some(last) = tokens.last() else {
            return if prefix && !l.quoted {
                Err(SearchError::PrefixTooShort(l.raw.clone()))
            } else {
                Ok(0)
            };
        };
        if prefix && last.text.chars().count() < 2 {
            return Err(SearchError::PrefixTooShort(l.raw.clone()));
        }
        let n = tokens.len();
        let positioned = || {
            tokens
                .iter()
                .map(|t| (t.position, t.text.clone()))
                .collect()
        };
        let text = if prefix {
            Text::Prefix(positioned())
        } else if n == 1 {
            Text::Term(last.text.clone())
        } else {
            Text::Phrase(positioned())
        };
        self.text.push(TextClause {
            negated: l.negated,
            text,
        });
        Ok(n)
    }

    fn add_filter(&mut self, key: &str, value: &str, raw: &str) -> Result<(), SearchError> {
        let bad = || SearchError::BadValue(raw.to_string());
        match key {
            "from" | "mentions" => {
                let t = target(value.strip_prefix('@').unwrap_or(value)).ok_or_else(bad)?;
                if key == "from" {
                    self.from.push(t);
                } else {
                    self.mentions.push(t);
                }
            }
            "in" => {
                let t = target(value.strip_prefix('#').unwrap_or(value)).ok_or_else(bad)?;
                self.channels.push(t);
            }
            "has" => {
                let bit = HAS_KINDS.iter().position(|k| *k == value).ok_or_else(bad)?;
                self.has = Has::from_bits(self.has.bits() | (1 << bit));
            }
            "pinned" => {
                self.pinned = Some(match value {
                    "true" | "yes" => true,
                    "false" | "no" => false,
                    _ => return Err(bad()),
                })
            }
            "before" | "after" | "during" => {
                let day = parse_day(value).ok_or_else(|| SearchError::BadDate(raw.to_string()))?;
                let (from, until) = match key {
                    "before" => (None, Some(day)),
                    "after" => (Some(day + DAY_MS), None),
                    _ => (Some(day), Some(day + DAY_MS)),
                };
                if let Some(f) = from {
                    self.created_from_ms = Some(self.created_from_ms.map_or(f, |o| o.max(f)));
                }
                if let Some(u) = until {
                    self.created_until_ms = Some(self.created_until_ms.map_or(u, |o| o.min(u)));
                }
            }
            _ => return Err(SearchError::UnknownFilter(raw.to_string())),
        }
        Ok(())
    }
}

fn target<T: From<hearth_types::Snowflake>>(v: &str) -> Option<Target<T>> {
    if v.is_empty() {
        return None;
    }
    // Anything that looks like a number must be an ID.
    if v.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+') {
        let id: i64 = v
            .parse()
            .ok()
            .filter(|&id| id > 0 && v.bytes().all(|b| b.is_ascii_digit()))?;
        return Some(Target::Id(T::from(hearth_types::Snowflake(id))));
    }
    Some(Target::Name(v.to_string()))
}

/// Midnight UTC of a `YYYY-MM-DD` day, in ms since the epoch.
fn parse_day(v: &str) -> Option<i64> {
    let b = v.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i32> {
        let s = v.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let month = time::Month::try_from(u8::try_from(num(5..7)?).ok()?).ok()?;
    let day = u8::try_from(num(8..10)?).ok()?;
    let date = time::Date::from_calendar_date(num(0..4)?, month, day).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() * 1000)
}

/// Splits `key:value` when `key` is a plain word and the token is not a URL.
/// Known keys with an empty value are filters (and answer `BadValue`).
fn filter_parts(text: &str) -> Option<(&str, &str)> {
    let (key, value) = text.split_once(':')?;
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let value = value
        .strip_prefix('"')
        .map(|v| v.strip_suffix('"').unwrap_or(v))
        .unwrap_or(value);
    let known = matches!(
        key,
        "from" | "mentions" | "in" | "has" | "pinned" | "before" | "after" | "during"
    );
    if value.starts_with('/') || (value.is_empty() && !known) {
        return None;
    }
    Some((key, value))
}

/// One whitespace-separated piece of a query.
#[derive(Debug, PartialEq, Eq)]
struct Lexeme {
    negated: bool,
    /// A `"…"` phrase (its text without the quotes).
    quoted: bool,
    text: String,
    /// As written, for error messages.
    raw: String,
}

fn lex(q: &str) -> Vec<Lexeme> {
    let chars: Vec<char> = q.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let negated = chars[i] == '-' && chars.get(i + 1).is_some_and(|c| !c.is_whitespace());
        if negated {
            i += 1;
        }
        let mut text = String::new();
        let quoted = chars[i] == '"';
        if quoted {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                text.push(chars[i]);
                i += 1;
            }
            i += 1; // the closing quote, or past the end
        } else {
            let mut in_quote = false;
            while i < chars.len() && (in_quote || !chars[i].is_whitespace()) {
                if chars[i] == '"' {
                    in_quote = !in_quote;
                }
                text.push(chars[i]);
                i += 1;
            }
        }
        let raw: String = chars[start..i.min(chars.len())].iter().collect();
        out.push(Lexeme {
            negated,
            quoted,
            text,
            raw,
        });
    }
    out
}

impl fmt::Display for Sort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Sort::Relevance => "relevance",
            Sort::Newest => "newest",
            Sort::Oldest => "oldest",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<Query, SearchError> {
        Query::parse(q, Sort::Relevance, 20, None)
    }

    #[test]
    fn words_phrases_prefixes() {
        let q = parse(r#"Hello "big World" wor* -nope"#).expect("parses");
        assert_eq!(
            q.text,
            vec![
                TextClause {
                    negated: false,
                    text: Text::Term("hello".into())
                },
                TextClause {
                    negated: false,
                    text: Text::Phrase(vec![(0, "big".into()), (1, "world".into())])
                },
                TextClause {
                    negated: false,
                    text: Text::Prefix(vec![(0, "wor".into())])
                },
                TextClause {
                    negated: true,
                    text: Text::Term("nope".into())
                },
            ]
        );
    }

    #[test]
    fn filters() {
        let q = parse("from:12 from:@alice in:#general has:image during:2026-03-01 pinned:true")
            .expect("parses");
        assert_eq!(
            q.from,
            vec![Target::Id(UserId(12)), Target::Name("alice".into())]
        );
        assert_eq!(q.channels, vec![Target::Name("general".into())]);
        assert!(q.has.image);
        assert_eq!(
            q.created_until_ms
                .zip(q.created_from_ms)
                .map(|(u, f)| u - f),
            Some(DAY_MS)
        );
        assert_eq!(q.pinned, Some(true));
        assert_eq!(q.names().len(), 2);
    }

    #[test]
    fn errors_name_the_token() {
        assert_eq!(
            parse("foo:bar"),
            Err(SearchError::UnknownFilter("foo:bar".into()))
        );
        assert_eq!(
            parse("before:2026-13-01"),
            Err(SearchError::BadDate("before:2026-13-01".into()))
        );
        assert_eq!(
            parse("has:cats"),
            Err(SearchError::BadValue("has:cats".into()))
        );
        assert_eq!(parse("a*"), Err(SearchError::PrefixTooShort("a*".into())));
        assert_eq!(parse("*"), Err(SearchError::PrefixTooShort("*".into())));
        assert_eq!(parse(""), Err(SearchError::Empty));
        assert!(matches!(
            parse(&"x".repeat(10_000)),
            Err(SearchError::TooLong { .. })
        ));
        assert!(Query::parse("x", Sort::Newest, 1_000_000, None).is_err());
        // URLs and clock times are text, not filters.
        assert!(parse("https://example.com/x").is_ok());
        assert!(parse("at 12:30").is_ok());
    }

    #[test]
    fn unbalanced_quotes_end_at_the_end() {
        let q = parse(r#"say "hello there"#).expect("parses");
        assert_eq!(q.text.len(), 2);
        assert!(parse(r#"""""""#).is_err()); // nothing but quotes
    }

    proptest::proptest! {
        #[test]
        fn any_input_parses_or_errors(q in ".{0,300}") {
            let _ = parse(&q);
        }
    }
}
