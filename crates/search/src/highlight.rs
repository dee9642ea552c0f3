//! Snippets: a window of the message's plain text and the byte ranges of
//! the matched words in it. The text is never HTML; [`Highlight::to_html`]
//! escapes it and adds `<mark>` around the ranges, for callers that want
//! markup.

use std::ops::Range;

use tantivy::tokenizer::TextAnalyzer;

use crate::analyzer;

/// Longest snippet, in characters (plus an ellipsis at each cut end).
pub const SNIPPET_CHARS: usize = 200;

/// A snippet: plain text and the byte ranges of the matches in it (sorted,
/// not overlapping, on character boundaries).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Highlight {
    pub text: String,
    pub ranges: Vec<Range<usize>>,
}

impl Highlight {
    /// The text HTML-escaped, each range inside `<mark>…</mark>`.
    pub fn to_html(&self) -> String {
        let mut out = String::with_capacity(self.text.len() + self.ranges.len() * 13);
        let mut at = 0;
        for r in &self.ranges {
            escape(&self.text[at..r.start], &mut out);
            out.push_str("<mark>");
            escape(&self.text[r.clone()], &mut out);
            out.push_str("</mark>");
            at = r.end;
        }
        escape(&self.text[at..], &mut out);
        out
    }
}

fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// What a snippet marks: whole terms and term prefixes (analyzed).
#[derive(Clone, Debug, Default)]
pub(crate) struct Marks {
    pub terms: Vec<String>,
    pub prefixes: Vec<String>,
}

pub(crate) fn highlight(analyzer: &mut TextAnalyzer, content: &str, marks: &Marks) -> Highlight {
    let mut ranges: Vec<Range<usize>> = Vec::new();
    if !marks.terms.is_empty() || !marks.prefixes.is_empty() {
        for t in analyzer::analyze(analyzer, content) {
            let hit = marks.terms.contains(&t.text)
                || marks
                    .prefixes
                    .iter()
                    .any(|p| t.text.starts_with(p.as_str()));
            if hit {
                ranges.push(t.offsets);
            }
        }
    }
    ranges.sort_by_key(|r| (r.start, r.end));
    let mut merged: Vec<Range<usize>> = Vec::new();
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    window(content, merged)
}

/// Cuts `content` to at most [`SNIPPET_CHARS`] characters around the first
/// match.
fn window(content: &str, ranges: Vec<Range<usize>>) -> Highlight {
    let boundaries: Vec<usize> = content
        .char_indices()
        .map(|(i, _)| i)
        .chain([content.len()])
        .collect();
    let n = boundaries.len() - 1;
    if n <= SNIPPET_CHARS {
        return Highlight {
            text: content.to_string(),
            ranges,
        };
    }
    let anchor = ranges.first().map_or(0, |r| r.start);
    let anchor_char = boundaries.partition_point(|&b| b < anchor);
    let start_char = anchor_char
        .saturating_sub(SNIPPET_CHARS / 4)
        .min(n - SNIPPET_CHARS);
    let (start, end) = (
        boundaries[start_char],
        boundaries[start_char + SNIPPET_CHARS],
    );
    let lead = if start > 0 { "…" } else { "" };
    let mut text = format!("{lead}{}", &content[start..end]);
    if end < content.len() {
        text.push('…');
    }
    let shift = lead.len();
    let ranges = ranges
        .into_iter()
        .filter(|r| r.start >= start && r.end <= end)
        .map(|r| r.start - start + shift..r.end - start + shift)
        .collect();
    Highlight { text, ranges }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marks(terms: &[&str]) -> Marks {
        Marks {
            terms: terms.iter().map(|s| s.to_string()).collect(),
            prefixes: vec![],
        }
    }

    #[test]
    fn marks_and_escapes() {
        let mut a = analyzer::index_analyzer();
        let h = highlight(&mut a, "<b>Café</b> & cafe", &marks(&["cafe"]));
        assert_eq!(
            h.to_html(),
            "&lt;b&gt;<mark>Café</mark>&lt;/b&gt; &amp; <mark>cafe</mark>"
        );
    }

    #[test]
    fn cjk_bigrams_merge() {
        let mut a = analyzer::index_analyzer();
        let h = highlight(&mut a, "我住在東京都。", &marks(&["東京", "京都"]));
        assert_eq!(h.to_html(), "我住在<mark>東京都</mark>。");
    }

    #[test]
    fn long_text_is_cut_around_the_match() {
        let mut a = analyzer::index_analyzer();
        let text = format!("{} needle {}", "a ".repeat(500), "b ".repeat(500));
        let h = highlight(&mut a, &text, &marks(&["needle"]));
        assert!(h.text.chars().count() <= SNIPPET_CHARS + 2);
        assert_eq!(h.ranges.len(), 1);
        assert_eq!(&h.text[h.ranges[0].clone()], "needle");
    }
}
