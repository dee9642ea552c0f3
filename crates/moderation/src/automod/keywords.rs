//! Every keyword of a community's rules in one Aho-Corasick automaton, so a
//! message is scanned once whatever the number of rules and words.
//!
//! A keyword is matched in the normalized text (see `normalize`), as a whole
//! word unless it starts or ends with `*`: `bad` matches the word "bad" only,
//! `bad*` words starting with it ("badly"), `*bad` words ending with it
//! ("notbad"), `*bad*` anywhere. A rule's allow-list names whole words in
//! which its matches do not count (`*ass*` with `class` allowed).

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, MatchKind};

use super::bits::Bits;
use super::normalize::{is_word_char, normalize};

/// What one automaton pattern means for one rule.
#[derive(Clone, Copy, Debug)]
struct Entry {
    rule: u16,
    /// A word boundary is needed before the match.
    left: bool,
    /// A word boundary is needed after the match.
    right: bool,
}

/// Why a keyword was refused.
pub type KeywordError = &'static str;

/// A keyword split into its literal and the boundaries it needs.
pub struct Keyword {
    pub literal: String,
    pub left: bool,
    pub right: bool,
}

/// Parses one keyword as written in a rule.
pub fn parse_keyword(word: &str, max_chars: usize) -> Result<Keyword, KeywordError> {
    let n = normalize(word.trim());
    let starts = n.starts_with('*');
    let ends = n.len() > 1 && n.ends_with('*');
    let core = n.trim_matches('*');
    if core.is_empty() {
        return Err("is empty");
    }
    if core.contains('*') {
        return Err("may have * only at its start or end");
    }
    if core.chars().count() > max_chars {
        return Err("is too long");
    }
    // A boundary only means something next to a word character: `$$$` as a
    // whole word needs none.
    let first = core.chars().next().is_some_and(is_word_char);
    let last = core.chars().next_back().is_some_and(is_word_char);
    Ok(Keyword {
        literal: core.to_owned(),
        left: !starts && first,
        right: !ends && last,
    })
}

#[derive(Default)]
pub struct KeywordIndex {
    ac: Option<AhoCorasick>,
    /// Pattern `p`'s entries are `entries[starts[p]..starts[p + 1]]`.
    starts: Vec<u32>,
    entries: Vec<Entry>,
}

#[derive(Default)]
pub struct KeywordBuilder {
    by_literal: HashMap<String, Vec<Entry>>,
    order: Vec<String>,
}

impl KeywordBuilder {
    pub fn add(&mut self, rule: u16, k: Keyword) {
        let entry = Entry {
            rule,
            left: k.left,
            right: k.right,
        };
        match self.by_literal.get_mut(&k.literal) {
            Some(v) => v.push(entry),
            None => {
                self.order.push(k.literal.clone());
                self.by_literal.insert(k.literal, vec![entry]);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn build(mut self) -> Result<KeywordIndex, aho_corasick::BuildError> {
        if self.order.is_empty() {
            return Ok(KeywordIndex::default());
        }
        let mut starts = Vec::with_capacity(self.order.len() + 1);
        let mut entries = Vec::new();
        for lit in &self.order {
            starts.push(entries.len() as u32);
            entries.extend(self.by_literal.remove(lit).unwrap_or_default());
        }
        starts.push(entries.len() as u32);
        // Standard semantics: the only kind that reports overlapping matches,
        // which whole-word checks need (a rejected match must not hide
        // another one starting inside it).
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&self.order)?;
        Ok(KeywordIndex {
            ac: Some(ac),
            starts,
            entries,
        })
    }
}

impl KeywordIndex {
    /// Sets in `hit` each rule of `active` with a keyword in `text` (already
    /// normalized) that is not inside one of the rule's allowed words.
    pub fn scan(
        &self,
        text: &str,
        active: &Bits,
        hit: &mut Bits,
        allowed: impl Fn(usize, &str) -> bool,
    ) {
        let Some(ac) = &self.ac else { return };
        for m in ac.find_overlapping_iter(text) {
            let p = m.pattern().as_usize();
            let (a, b) = (self.starts[p] as usize, self.starts[p + 1] as usize);
            for e in &self.entries[a..b] {
                let rule = usize::from(e.rule);
                if !active.has(rule) || hit.has(rule) {
                    continue;
                }
                if e.left
                    && text[..m.start()]
                        .chars()
                        .next_back()
                        .is_some_and(is_word_char)
                {
                    continue;
                }
                if e.right && text[m.end()..].chars().next().is_some_and(is_word_char) {
                    continue;
                }
                if allowed(rule, enclosing_word(text, m.start(), m.end())) {
                    continue;
                }
                hit.set(rule);
            }
        }
    }
}

/// The word around `text[start..end]`: the match extended both ways while
/// the characters are word characters.
pub fn enclosing_word(text: &str, start: usize, end: usize) -> &str {
    let mut s = start;
    for (i, c) in text[..start].char_indices().rev() {
        if !is_word_char(c) {
            break;
        }
        s = i;
    }
    let mut e = end;
    for (i, c) in text[end..].char_indices() {
        if !is_word_char(c) {
            break;
        }
        e = end + i + c.len_utf8();
    }
    &text[s..e]
}
