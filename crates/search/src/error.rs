//! The crate's errors: one enum for queries (each variant a 400 naming what
//! was wrong, except `Internal`), one for the index itself, one for events.

/// Why a query was refused. Every variant but `Internal` is the caller's
/// mistake (HTTP 400) and names the offending token.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SearchError {
    #[error("the query is longer than {max} characters")]
    TooLong { max: usize },
    #[error("the query has more than {max} terms")]
    TooManyTerms { max: usize },
    #[error("the query has no terms and no filters")]
    Empty,
    #[error("unknown filter `{0}`")]
    UnknownFilter(String),
    #[error("bad date in `{0}` (expected YYYY-MM-DD)")]
    BadDate(String),
    #[error("bad value in `{0}`")]
    BadValue(String),
    #[error("`{0}`: a filter cannot be negated (only words and phrases can)")]
    NegatedFilter(String),
    #[error("`{0}`: a prefix needs at least 2 characters before `*`")]
    PrefixTooShort(String),
    #[error("limit {0} is outside 1..=100")]
    BadLimit(usize),
    #[error("bad or expired cursor")]
    BadCursor,
    #[error("`{0}` names no known user or channel")]
    Unresolved(String),
    #[error("search failed: {0}")]
    Internal(String),
}

impl SearchError {
    /// The stable code the HTTP layer can answer with.
    pub fn code(&self) -> &'static str {
        match self {
            SearchError::TooLong { .. } => "query_too_long",
            SearchError::TooManyTerms { .. } => "too_many_terms",
            SearchError::Empty => "empty_query",
            SearchError::UnknownFilter(_) => "unknown_filter",
            SearchError::BadDate(_) => "bad_date",
            SearchError::BadValue(_) => "bad_value",
            SearchError::NegatedFilter(_) => "negated_filter",
            SearchError::PrefixTooShort(_) => "prefix_too_short",
            SearchError::BadLimit(_) => "bad_limit",
            SearchError::BadCursor => "bad_cursor",
            SearchError::Unresolved(_) => "unresolved_name",
            SearchError::Internal(_) => "internal",
        }
    }

    /// Whether the caller is at fault (400) rather than the server (500).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, SearchError::Internal(_))
    }
}

impl From<tantivy::TantivyError> for SearchError {
    fn from(e: tantivy::TantivyError) -> Self {
        SearchError::Internal(e.to_string())
    }
}

/// The index could not be opened, written or committed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("tantivy: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("index directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("index metadata: {0}")]
    Meta(String),
}

/// An event's data could not be read as its kind's shape.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {source}")]
pub struct EventError {
    pub kind: String,
    #[source]
    pub source: serde_json::Error,
}
