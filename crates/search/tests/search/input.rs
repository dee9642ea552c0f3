//! Hostile input answers an error or a fast, bounded result.

use std::time::{Duration, Instant};

use hearth_search::{Query, SearchError, Sort};

use super::helpers::*;

fn quick<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{what} took {:?}",
        start.elapsed()
    );
    out
}

fn corpus() -> hearth_search::Index {
    index_with(
        (1..=2000)
            .map(|i| {
                msg(
                    i,
                    GENERAL,
                    ALICE,
                    &format!("aa{i} ab{i} word{} a b c", i % 97),
                )
            })
            .collect(),
    )
}

fn run(
    ix: &hearth_search::Index,
    q: &str,
    limit: usize,
) -> Result<hearth_search::SearchPage, SearchError> {
    let query = Query::parse(q, Sort::Relevance, limit, None)?;
    ix.search(&query, &everywhere())
}

#[test]
fn errors_name_the_token() {
    let ix = corpus();
    let cases: &[(&str, SearchError)] = &[
        (
            "hello color:red",
            SearchError::UnknownFilter("color:red".into()),
        ),
        (
            "during:2026-02-30",
            SearchError::BadDate("during:2026-02-30".into()),
        ),
        (
            "before:yesterday",
            SearchError::BadDate("before:yesterday".into()),
        ),
        ("has:", SearchError::BadValue("has:".into())),
        ("pinned:maybe", SearchError::BadValue("pinned:maybe".into())),
        ("from:-3", SearchError::BadValue("from:-3".into())),
        ("-from:1", SearchError::NegatedFilter("-from:1".into())),
        ("a*", SearchError::PrefixTooShort("a*".into())),
        ("*", SearchError::PrefixTooShort("*".into())),
        ("**", SearchError::PrefixTooShort("**".into())),
        ("", SearchError::Empty),
        ("   ", SearchError::Empty),
    ];
    for (q, want) in cases {
        assert_eq!(
            quick(q, || run(&ix, q, 20)).err().as_ref(),
            Some(want),
            "{q}"
        );
    }
}

#[test]
fn oversized_input() {
    let ix = corpus();
    let long = "word ".repeat(2_000);
    assert!(matches!(
        quick("10,000 chars", || run(&ix, &long, 20)),
        Err(SearchError::TooLong { .. })
    ));
    let many: String = (0..40).map(|i| format!("w{i} ")).collect();
    assert!(matches!(
        quick("40 terms", || run(&ix, &many, 20)),
        Err(SearchError::TooManyTerms { .. })
    ));
    assert_eq!(
        quick("limit", || run(&ix, "word1", 1_000_000)).err(),
        Some(SearchError::BadLimit(1_000_000))
    );
    assert_eq!(
        quick("limit 0", || run(&ix, "word1", 0)).err(),
        Some(SearchError::BadLimit(0))
    );
}

#[test]
fn odd_syntax_is_bounded() {
    let ix = corpus();
    for q in [
        r#"unbalanced "quote"#,
        r#""""""""""#,
        r#""a "b "c "d "e"#,
        "((((((((((((((((((((word1))))))))))))))))))))",
        "^(a|b)+$.*[0-9]{1,3}?\\d+",
        "word1 OR word2 AND NOT word3",
        "a* b* c*".trim_start_matches("a* "),
        "aa*",
        "word*",
        "-word1",
        "-a -b",
        "\u{0}\u{7f}\u{200b}\u{feff}",
        "🚀*",
        "https://example.com/path?q=1",
    ] {
        let result = quick(q, || run(&ix, q, 100));
        if let Ok(page) = result {
            assert!(page.hits.len() <= 100, "{q}");
        }
    }
}

#[test]
fn prefixes_expand_to_a_bounded_number_of_terms() {
    let ix = corpus();
    // 2000 distinct `aaN` terms: the prefix takes at most 64 of them.
    let page = quick("aa*", || run(&ix, "aa*", 100)).expect("searches");
    assert!(
        page.total <= hearth_search::MAX_PREFIX_EXPANSIONS as usize,
        "{}",
        page.total
    );
    assert!(page.total > 0);
}
