//! The one text analyzer, used to index message content and to read query
//! text, so both sides always agree on what a token is.
//!
//! Text is cut into runs by character class:
//! - **words** (letters, digits, `_`, any script written with spaces):
//!   one token per run, lowercased and ASCII-folded (`Café` → `cafe`). At
//!   index time an identifier also gives its parts *at the same position*:
//!   `snake_case` → `snake_case`, `snake`, `case`; `getHTTPServer` →
//!   `gethttpserver`, `get`, `http`, `server`. So `snake` and `snake_case`
//!   both find it; a phrase through an identifier (`"call snake_case now"`)
//!   still matches, while a phrase of its parts (`"snake case"`) does not.
//! - **unspaced scripts** (Han, kana, Hangul, Thai): character bigrams, plus
//!   each character alone at the bigram's position. A query word of two or
//!   more characters becomes the phrase of its bigrams (`東京都` →
//!   `東京`,`京都` at consecutive positions), found inside any unspaced
//!   sentence; a one-character query is the single character. No dictionary
//!   is used: dictionary segmenters (lindera, jieba) download or embed large
//!   dictionaries, and bigrams find every substring of two characters or
//!   more, which is what "find the word in the sentence" needs.
//! - **emoji**: each emoji (with its modifiers, joiners and variation
//!   selectors) is one token; `U+FE0F` is dropped so `❤` and `❤️` are one
//!   token, and a sequence (`👍🏽`, `👨‍👩‍👧`) also gives its base emoji at
//!   the same position at index time.
//! - everything else separates tokens.

use std::ops::Range;

use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, TextAnalyzer, Token, TokenStream, Tokenizer,
};

/// Name under which the index analyzer is registered with tantivy.
pub const ANALYZER: &str = "hearth";
/// Name under which the word-pair analyzer is registered (the `pairs`
/// field: see [`pair_analyzer`]).
pub const PAIRS: &str = "hearth_pairs";
/// Joins the two words of a pair token (no token holds a space).
pub const PAIR_JOIN: char = ' ';
/// At most this many tokens of one position (a word and its identifier
/// parts) take part in pairs.
const PAIR_TOKENS_MAX: usize = 8;
/// Tokens longer than this (bytes, after folding) are dropped.
const MAX_TOKEN_BYTES: usize = 64;

/// Index mode emits identifier parts and CJK unigrams beside the whole
/// tokens; query mode emits only what a query term should be matched as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Index,
    Query,
}

/// The analyzer registered for the content field (index mode).
pub fn index_analyzer() -> TextAnalyzer {
    build(Mode::Index)
}

/// The same analyzer in query mode.
pub fn query_analyzer() -> TextAnalyzer {
    build(Mode::Query)
}

fn build(mode: Mode) -> TextAnalyzer {
    TextAnalyzer::builder(HearthTokenizer { mode })
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .build()
}

/// The analyzer of the `pairs` field: for every two consecutive positions
/// that both hold words (letters, digits, `_`), one token `a b` for each
/// word `a` at the first and `b` at the second (an identifier's parts
/// count as words at its position, up to [`PAIR_TOKENS_MAX`] per
/// position). A two-word phrase is then one term: `"good morning"` reads
/// the posting list of `good morning` instead of checking the positions
/// of every message holding both words. Unspaced scripts and emoji make no
/// pairs; phrases through them are checked by position as before.
pub fn pair_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(PairTokenizer {
        words: index_analyzer(),
    })
    .build()
}

/// Whether an analyzed token is a word (pairs are made of words only).
pub fn is_word(token: &str) -> bool {
    token
        .chars()
        .next()
        .is_some_and(|c| class(c) == Class::Word)
}

/// The pair token of two analyzed words.
pub fn pair(a: &str, b: &str) -> String {
    let mut out = String::with_capacity(a.len() + b.len() + 1);
    out.push_str(a);
    out.push(PAIR_JOIN);
    out.push_str(b);
    out
}

#[derive(Clone)]
struct PairTokenizer {
    words: TextAnalyzer,
}

impl Tokenizer for PairTokenizer {
    type TokenStream<'a> = VecTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        // The index analyzer's words, grouped by position.
        let mut groups: Vec<(usize, Vec<Token>)> = Vec::new();
        let mut stream = self.words.token_stream(text);
        while stream.advance() {
            let t = stream.token();
            if !is_word(&t.text) {
                continue;
            }
            match groups.last_mut() {
                Some((p, g)) if *p == t.position => {
                    if g.len() < PAIR_TOKENS_MAX {
                        g.push(t.clone());
                    }
                }
                _ => groups.push((t.position, vec![t.clone()])),
            }
        }
        let mut tokens = Vec::new();
        for w in groups.windows(2) {
            let ((p, first), (q, second)) = (&w[0], &w[1]);
            if *q != p + 1 {
                continue;
            }
            for a in first {
                for b in second {
                    tokens.push(Token {
                        offset_from: a.offset_from,
                        offset_to: b.offset_to,
                        position: *p,
                        text: pair(&a.text, &b.text),
                        position_length: 1,
                    });
                }
            }
        }
        VecTokenStream { tokens, next: 0 }
    }
}

/// One analyzed token: its text, position and byte range in the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Analyzed {
    pub text: String,
    pub position: usize,
    pub offsets: Range<usize>,
}

/// Runs `analyzer` over `text`.
pub fn analyze(analyzer: &mut TextAnalyzer, text: &str) -> Vec<Analyzed> {
    let mut out = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while stream.advance() {
        let t = stream.token();
        out.push(Analyzed {
            text: t.text.clone(),
            position: t.position,
            offsets: t.offset_from..t.offset_to,
        });
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Word,
    Unspaced,
    Emoji,
    /// Joins to a preceding emoji: ZWJ, variation selectors, skin tones,
    /// keycap, tag characters.
    EmojiMod,
    Sep,
}

fn class(c: char) -> Class {
    let u = c as u32;
    if c == '_' {
        return Class::Word;
    }
    if c.is_ascii() {
        return if c.is_ascii_alphanumeric() {
            Class::Word
        } else {
            Class::Sep
        };
    }
    if matches!(u, 0x200D | 0xFE0E | 0xFE0F | 0x20E3 | 0x1F3FB..=0x1F3FF | 0xE0020..=0xE007F) {
        return Class::EmojiMod;
    }
    if is_emoji(u) {
        return Class::Emoji;
    }
    if is_unspaced(u) {
        return Class::Unspaced;
    }
    if c.is_alphanumeric() {
        Class::Word
    } else {
        Class::Sep
    }
}

fn is_emoji(u: u32) -> bool {
    matches!(
        u,
        0x1F000..=0x1FAFF
            | 0x2600..=0x27BF
            | 0x2300..=0x23FF
            | 0x2B00..=0x2BFF
            | 0x2190..=0x21FF
            | 0x25AA..=0x25FE
            | 0x00A9
            | 0x00AE
            | 0x203C
            | 0x2049
            | 0x2122
            | 0x2139
            | 0x24C2
            | 0x3030
            | 0x303D
            | 0x3297
            | 0x3299
    )
}

/// Scripts written without spaces between words.
fn is_unspaced(u: u32) -> bool {
    matches!(
        u,
        0x3040..=0x30FF // hiragana, katakana
            | 0x31F0..=0x31FF // katakana extensions
            | 0x3400..=0x4DBF // CJK extension A
            | 0x4E00..=0x9FFF // CJK unified
            | 0xF900..=0xFAFF // CJK compatibility
            | 0xFF66..=0xFF9F // half-width katakana
            | 0x1100..=0x11FF // hangul jamo
            | 0x3130..=0x318F // hangul compatibility jamo
            | 0xAC00..=0xD7AF // hangul syllables
            | 0x0E00..=0x0E7F // thai
            | 0x20000..=0x3134F // CJK extensions B-G
    )
}

/// Splits an identifier into its parts: at `_` and at case changes
/// (`getHTTPServer` → `get`, `HTTP`, `Server`). Returns byte ranges.
fn identifier_parts(word: &str) -> Vec<Range<usize>> {
    let mut parts = Vec::new();
    let chars: Vec<(usize, char)> = word.char_indices().collect();
    let mut start: Option<usize> = None;
    for (i, &(at, c)) in chars.iter().enumerate() {
        if c == '_' {
            if let Some(s) = start.take() {
                parts.push(s..at);
            }
            continue;
        }
        if let Some(s) = start {
            let prev = chars[i - 1].1;
            let next = chars.get(i + 1).map(|&(_, n)| n);
            let boundary = c.is_uppercase()
                && (prev.is_lowercase()
                    || prev.is_ascii_digit()
                    || (prev.is_uppercase() && next.is_some_and(char::is_lowercase)));
            if boundary {
                parts.push(s..at);
                start = Some(at);
            }
        } else {
            start = Some(at);
        }
    }
    if let Some(s) = start {
        parts.push(s..word.len());
    }
    parts
}

#[derive(Clone)]
struct HearthTokenizer {
    mode: Mode,
}

impl Tokenizer for HearthTokenizer {
    type TokenStream<'a> = VecTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        VecTokenStream {
            tokens: tokenize(text, self.mode),
            next: 0,
        }
    }
}

struct VecTokenStream {
    tokens: Vec<Token>,
    next: usize,
}

impl TokenStream for VecTokenStream {
    fn advance(&mut self) -> bool {
        if self.next < self.tokens.len() {
            self.next += 1;
            true
        } else {
            false
        }
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

fn push(out: &mut Vec<Token>, text: String, from: usize, to: usize, position: usize) {
    out.push(Token {
        offset_from: from,
        offset_to: to,
        position,
        text,
        position_length: 1,
    });
}

/// Cuts `text` into raw tokens (before lowercasing and folding).
fn tokenize(text: &str, mode: Mode) -> Vec<Token> {
    let mut out = Vec::new();
    let mut position = 0;
    let mut it = text.char_indices().peekable();
    while let Some(&(start, c)) = it.peek() {
        match class(c) {
            Class::Sep | Class::EmojiMod => {
                it.next();
            }
            Class::Word => {
                let mut end = start;
                while let Some(&(at, c)) = it.peek() {
                    if class(c) != Class::Word {
                        break;
                    }
                    end = at + c.len_utf8();
                    it.next();
                }
                let word = &text[start..end];
                if word.bytes().all(|b| b == b'_') {
                    continue;
                }
                push(&mut out, word.to_string(), start, end, position);
                if mode == Mode::Index {
                    let parts = identifier_parts(word);
                    if parts.len() > 1 || parts.first().is_some_and(|p| p.len() != word.len()) {
                        for p in parts {
                            let part = &word[p.clone()];
                            push(
                                &mut out,
                                part.to_string(),
                                start + p.start,
                                start + p.end,
                                position,
                            );
                        }
                    }
                }
                position += 1;
            }
            Class::Unspaced => {
                let mut chars: Vec<(usize, char)> = Vec::new();
                while let Some(&(at, c)) = it.peek() {
                    if class(c) != Class::Unspaced {
                        break;
                    }
                    chars.push((at, c));
                    it.next();
                }
                let n = chars.len();
                let end_of = |i: usize| chars[i].0 + chars[i].1.len_utf8();
                for i in 0..n {
                    let (at, c) = chars[i];
                    if mode == Mode::Index || n == 1 {
                        push(&mut out, c.to_string(), at, end_of(i), position + i);
                    }
                    if i + 1 < n {
                        let bigram = text[at..end_of(i + 1)].to_string();
                        push(&mut out, bigram, at, end_of(i + 1), position + i);
                    }
                }
                position += n;
            }
            Class::Emoji => {
                let mut end = start;
                let mut seq = String::new();
                let mut base: Option<(String, usize)> = None;
                let mut joined = false;
                let mut ri = 0;
                while let Some(&(at, c)) = it.peek() {
                    let k = class(c);
                    let regional = ('\u{1F1E6}'..='\u{1F1FF}').contains(&c);
                    let take = match k {
                        _ if seq.is_empty() => true,
                        Class::EmojiMod => true,
                        // A flag is two regional indicators.
                        Class::Emoji if regional && ri == 1 => true,
                        Class::Emoji => joined,
                        _ => false,
                    };
                    if !take {
                        break;
                    }
                    if regional {
                        ri += 1;
                    }
                    joined = c == '\u{200D}';
                    if c != '\u{FE0F}' && c != '\u{FE0E}' {
                        seq.push(c);
                    }
                    if base.is_none() {
                        base = Some((seq.clone(), at + c.len_utf8()));
                    }
                    end = at + c.len_utf8();
                    it.next();
                }
                let seq = seq.trim_end_matches('\u{200D}').to_string();
                if seq.is_empty() {
                    continue;
                }
                let flag = seq.starts_with(|c| ('\u{1F1E6}'..='\u{1F1FF}').contains(&c));
                let base = base.filter(|(b, _)| *b != seq && !flag);
                push(&mut out, seq, start, end, position);
                if let (Mode::Index, Some((b, b_end))) = (mode, base) {
                    push(&mut out, b, start, b_end, position);
                }
                position += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(mode: Mode, s: &str) -> Vec<(String, usize)> {
        let mut a = build(mode);
        analyze(&mut a, s)
            .into_iter()
            .map(|t| (t.text, t.position))
            .collect()
    }

    fn t(s: &str, p: usize) -> (String, usize) {
        (s.to_string(), p)
    }

    #[test]
    fn latin_words_fold() {
        assert_eq!(
            texts(Mode::Index, "Café, NAÏVE straße!"),
            vec![t("cafe", 0), t("naive", 1), t("strasse", 2)]
        );
    }

    #[test]
    fn identifiers_give_parts_at_the_same_position() {
        assert_eq!(
            texts(Mode::Index, "call getHTTPServer now"),
            vec![
                t("call", 0),
                t("gethttpserver", 1),
                t("get", 1),
                t("http", 1),
                t("server", 1),
                t("now", 2)
            ]
        );
        assert_eq!(
            texts(Mode::Index, "snake_case"),
            vec![t("snake_case", 0), t("snake", 0), t("case", 0)]
        );
        assert_eq!(texts(Mode::Query, "snake_case"), vec![t("snake_case", 0)]);
        assert_eq!(texts(Mode::Index, "___"), vec![]);
    }

    #[test]
    fn cjk_bigrams_and_unigrams() {
        assert_eq!(
            texts(Mode::Index, "東京都"),
            vec![
                t("東", 0),
                t("東京", 0),
                t("京", 1),
                t("京都", 1),
                t("都", 2)
            ]
        );
        assert_eq!(
            texts(Mode::Query, "東京都"),
            vec![t("東京", 0), t("京都", 1)]
        );
        assert_eq!(texts(Mode::Query, "猫"), vec![t("猫", 0)]);
        assert_eq!(
            texts(Mode::Query, "hello世界 ok"),
            vec![t("hello", 0), t("世界", 1), t("ok", 3)]
        );
    }

    #[test]
    fn pairs_of_adjacent_words() {
        let mut a = pair_analyzer();
        let pairs = |a: &mut TextAnalyzer, s: &str| -> Vec<String> {
            analyze(a, s).into_iter().map(|t| t.text).collect()
        };
        assert_eq!(
            pairs(&mut a, "Good Morning, café!"),
            vec!["good morning", "morning cafe"]
        );
        // An identifier's parts pair like the whole word.
        assert_eq!(
            pairs(&mut a, "call snake_case now"),
            vec![
                "call snake_case",
                "call snake",
                "call case",
                "snake_case now",
                "snake now",
                "case now"
            ]
        );
        // No pairs through unspaced scripts or emoji, nor across them.
        assert_eq!(pairs(&mut a, "東京 tower 🎉 party"), Vec::<String>::new());
        assert_eq!(pairs(&mut a, "one"), Vec::<String>::new());
    }

    #[test]
    fn emoji_are_tokens() {
        assert_eq!(
            texts(Mode::Index, "great🎉job ❤️ 👍🏽"),
            vec![
                t("great", 0),
                t("🎉", 1),
                t("job", 2),
                t("❤", 3),
                t("👍🏽", 4),
                t("👍", 4)
            ]
        );
        assert_eq!(texts(Mode::Query, "❤"), vec![t("❤", 0)]);
        assert_eq!(texts(Mode::Index, "🇫🇷🇩🇪"), vec![t("🇫🇷", 0), t("🇩🇪", 1)]);
    }
}
