//! The automod rules engine.
//!
//! A community's rules ([`RuleSpec`], stored and edited as plain data) are
//! compiled once into a [`RuleSet`], kept by the server until they change,
//! and [`RuleSet::check`]ed against every message on the send path in one
//! pass: the content is normalized once (NFKC, lowercase, invisible
//! characters removed: `normalize.rs`), every keyword of every rule is found
//! by one Aho-Corasick automaton, every regex by one `RegexSet`, links by a
//! hand-written scanner, floods by the [`FloodTracker`].
//!
//! Limits (checked by [`RuleSet::compile`], each refusal naming the rule and
//! the word or pattern): see the `MAX_*` constants. Regexes run on the
//! `regex` crate (finite automata: no catastrophic backtracking) with a
//! compiled-size limit per pattern and for the community's set.
//!
//! The [`Verdict`] lists every fired rule's actions. The send path answers a
//! `blocked_by` verdict with a 4xx naming the rule and hands the rest
//! (flags, timeouts, deletions) to a consumer; checking once on the send
//! path, rather than again on the consumer, keeps the flood state counted once.

mod bits;
mod flood;
mod keywords;
mod links;
pub mod normalize;
mod spec;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use hearth_types::{ChannelId, CommunityId, RoleId, UserId};
use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

pub use flood::{FloodTracker, RING};
pub use links::{Link, for_each_link};
pub use spec::{Action, RuleSpec, Trigger};

use crate::{ModerationError, RuleRef};
use bits::Bits;
use keywords::{KeywordBuilder, KeywordIndex, parse_keyword};

/// Rules per community.
pub const MAX_RULES: usize = 200;
/// Keywords in one rule.
pub const MAX_KEYWORDS_PER_RULE: usize = 10_000;
/// Keywords of all rules of a community together.
pub const MAX_KEYWORDS: usize = 50_000;
/// Characters in one keyword (after normalization, without `*`).
pub const MAX_KEYWORD_CHARS: usize = 100;
/// Allowed words in one rule.
pub const MAX_ALLOW_PER_RULE: usize = 1_000;
/// Regex patterns in one rule.
pub const MAX_PATTERNS_PER_RULE: usize = 10;
/// Regex patterns of all rules of a community together.
pub const MAX_PATTERNS: usize = 500;
/// Bytes in one regex pattern as written.
pub const MAX_PATTERN_BYTES: usize = 1_000;
/// Compiled size of one regex pattern (the `regex` crate's `size_limit`).
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;
/// Compiled size of a community's regexes together.
pub const REGEX_SET_SIZE_LIMIT: usize = 8 * 1024 * 1024;
/// The lazy DFA's cache for a community's regexes (`dfa_size_limit`).
pub const REGEX_DFA_SIZE_LIMIT: usize = 4 * 1024 * 1024;
/// Exempt channels, and exempt roles, per rule.
pub const MAX_EXEMPTIONS: usize = 100;
/// Allowed domains per link rule.
pub const MAX_ALLOW_DOMAINS: usize = 1_000;
/// The longest timeout an automod rule may give (28 days).
pub const MAX_TIMEOUT_SECS: u32 = 28 * 24 * 3600;
/// How far back a rule may delete an author's messages (7 days).
pub const MAX_DELETE_SECS: u32 = 7 * 24 * 3600;
/// The longest flood window (1 hour).
pub const MAX_FLOOD_WINDOW_SECS: u32 = 3600;
/// The longest account or membership age a rule may require (1 year).
pub const MAX_AGE_SECS: u64 = 365 * 24 * 3600;

/// Instance-wide automod settings.
#[derive(Clone, Debug)]
pub struct AutomodConfig {
    /// Invite URLs without scheme and `www.`, lowercase, e.g.
    /// `hearth.example/invite/`. A link whose host and path start with one
    /// is an invite.
    pub invite_prefixes: Vec<String>,
}

impl Default for AutomodConfig {
    fn default() -> Self {
        AutomodConfig {
            invite_prefixes: [
                "discord.gg/",
                "discord.com/invite/",
                "discordapp.com/invite/",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

/// What the send path knows about a message.
#[derive(Clone, Copy, Debug)]
pub struct MessageContext<'a> {
    pub community_id: CommunityId,
    pub channel_id: ChannelId,
    pub author_id: UserId,
    pub author_roles: &'a [RoleId],
    pub content: &'a str,
    pub mentions: Mentions<'a>,
    /// Unix ms.
    pub account_created_at: i64,
    /// Unix ms.
    pub member_joined_at: i64,
    /// Unix ms.
    pub now: i64,
}

/// A message's mentions, each ID once.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mentions<'a> {
    pub users: &'a [UserId],
    pub roles: &'a [RoleId],
    pub everyone: bool,
}

/// What the rules decided about one message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// The first rule (in the community's order) that blocks the message.
    pub blocked_by: Option<RuleRef>,
    pub flags: Vec<Flagged>,
    pub timeouts: Vec<TimedOut>,
    pub deletes: Vec<DeleteRecent>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flagged {
    pub rule: RuleRef,
    pub channel_id: ChannelId,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimedOut {
    pub rule: RuleRef,
    pub secs: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteRecent {
    pub rule: RuleRef,
    pub secs: u32,
}

impl Verdict {
    /// No rule fired.
    pub fn is_clean(&self) -> bool {
        self.blocked_by.is_none()
            && self.flags.is_empty()
            && self.timeouts.is_empty()
            && self.deletes.is_empty()
    }

    /// The longest timeout asked for, if any.
    pub fn timeout_secs(&self) -> Option<u32> {
        self.timeouts.iter().map(|t| t.secs).max()
    }

    /// The furthest back deletion asked for, if any.
    pub fn delete_secs(&self) -> Option<u32> {
        self.deletes.iter().map(|d| d.secs).max()
    }

    /// Whether anything is left for the consumer (flags, timeouts, deletions).
    pub fn has_followups(&self) -> bool {
        !(self.flags.is_empty() && self.timeouts.is_empty() && self.deletes.is_empty())
    }
}

/// A rule's trigger after compilation (keywords and regexes live in the
/// shared automata; what remains per rule is here).
enum Compiled {
    Keywords {
        allow: HashSet<Box<str>>,
    },
    Regex,
    MentionSpam {
        max: u32,
    },
    Links {
        allow: Vec<Box<str>>,
        block_invites: bool,
        block_links: bool,
    },
    Flood {
        max: u32,
        window_ms: i64,
    },
    NewAccount {
        account_ms: i64,
        member_ms: i64,
    },
}

struct Rule {
    rref: RuleRef,
    trigger: Compiled,
    block: bool,
    flags: Vec<ChannelId>,
    timeout: Option<u32>,
    delete: Option<u32>,
}

impl RuleSet {
    /// Whether a check needs the author's membership (their roles, for
    /// exemptions, or when they joined, for a new-member restriction). The
    /// send path reads it from the store only then: a read per send costs
    /// more than the rules themselves.
    pub fn needs_member(&self) -> bool {
        !self.exempt_roles.is_empty()
            || self.rules.iter().any(
                |r| matches!(r.trigger, Compiled::NewAccount { member_ms, .. } if member_ms > 0),
            )
    }
}

/// A community's enabled rules, compiled. Cheap to check, immutable: on a
/// rule change, compile a new one and swap it in.
pub struct RuleSet {
    rules: Vec<Rule>,
    all: Bits,
    keyword_rules: Bits,
    regex_rules: Bits,
    link_rules: Bits,
    flood_rules: Bits,
    /// Rules each channel, and each role, is exempt from.
    exempt_channels: HashMap<ChannelId, Bits>,
    exempt_roles: HashMap<RoleId, Bits>,
    keywords: KeywordIndex,
    /// Patterns the lazy DFA can run on any text, together.
    regexes: Option<RegexSet>,
    /// The rule of each pattern of `regexes`.
    regex_rule: Vec<u16>,
    /// Patterns with Unicode word boundaries (`\b`, `\B`), each alone: on
    /// non-ASCII text the lazy DFA gives up on those and a set of them
    /// falls back to the PikeVM over every pattern at once (≈140 µs for a
    /// 50-character French message with 40 rules), while alone each keeps
    /// its literal prefilter and a small NFA (the bounded backtracker).
    word_regexes: Vec<(Regex, u16)>,
    invite_prefixes: Vec<Box<str>>,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.rules.len())
            .field("regex_patterns", &self.regex_rule.len())
            .field("word_boundary_patterns", &self.word_regexes.len())
            .finish_non_exhaustive()
    }
}

thread_local! {
    /// The normalized text of the message being checked, reused so checks
    /// do not allocate.
    static SCRATCH: RefCell<String> = const { RefCell::new(String::new()) };
}

fn invalid(rref: &RuleRef, reason: impl Into<String>) -> ModerationError {
    ModerationError::InvalidRule {
        rule: rref.clone(),
        reason: reason.into(),
    }
}

fn limit(what: String, count: usize, max: usize) -> Result<(), ModerationError> {
    if count > max {
        return Err(ModerationError::LimitExceeded { what, count, max });
    }
    Ok(())
}

fn regex_reason(e: regex::Error) -> String {
    match e {
        regex::Error::CompiledTooBig(n) => {
            format!(
                "compiles to more than the limit of {n} bytes; simplify it (large repetitions such as {{1000}} and Unicode classes such as \\w cost most)"
            )
        }
        regex::Error::Syntax(s) => s,
        e => e.to_string(),
    }
}

impl RuleSet {
    /// An empty rule set (a community without automod).
    pub fn empty() -> RuleSet {
        // Compiling no rules cannot fail.
        Self::compile(&[]).unwrap_or_else(|_| unreachable!())
    }

    /// Compiles a community's rules with the default [`AutomodConfig`].
    pub fn compile(specs: &[RuleSpec]) -> Result<RuleSet, ModerationError> {
        Self::compile_with(specs, &AutomodConfig::default())
    }

    /// Validates every rule (disabled ones too, so what is stored is always
    /// valid) and compiles the enabled ones.
    pub fn compile_with(
        specs: &[RuleSpec],
        config: &AutomodConfig,
    ) -> Result<RuleSet, ModerationError> {
        if specs.len() > MAX_RULES {
            return Err(ModerationError::TooManyRules {
                count: specs.len(),
                max: MAX_RULES,
            });
        }
        let mut seen = HashSet::new();
        let mut set = RuleSet {
            rules: Vec::new(),
            all: Bits::default(),
            keyword_rules: Bits::default(),
            regex_rules: Bits::default(),
            link_rules: Bits::default(),
            flood_rules: Bits::default(),
            exempt_channels: HashMap::new(),
            exempt_roles: HashMap::new(),
            keywords: KeywordIndex::default(),
            regexes: None,
            regex_rule: Vec::new(),
            word_regexes: Vec::new(),
            invite_prefixes: config
                .invite_prefixes
                .iter()
                .map(|p| normalize::normalize(p.trim()).into_boxed_str())
                .filter(|p| !p.is_empty())
                .collect(),
        };
        let mut kw = KeywordBuilder::default();
        let mut keyword_total = 0;
        let mut patterns: Vec<&str> = Vec::new();
        for spec in specs {
            let rref = RuleRef {
                id: spec.id,
                name: Arc::from(spec.name.as_str()),
            };
            if !seen.insert(spec.id) {
                return Err(ModerationError::DuplicateRuleId(spec.id));
            }
            let name_len = spec.name.trim().chars().count();
            if name_len == 0 || name_len > 100 {
                return Err(invalid(&rref, "the name must have 1 to 100 characters"));
            }
            limit(
                format!("{rref}: exempt channels"),
                spec.exempt_channels.len(),
                MAX_EXEMPTIONS,
            )?;
            limit(
                format!("{rref}: exempt roles"),
                spec.exempt_roles.len(),
                MAX_EXEMPTIONS,
            )?;
            let idx = set.rules.len();
            let (block, flags, timeout, delete) = validate_actions(&rref, &spec.actions)?;
            let trigger = match &spec.trigger {
                Trigger::Keywords { words, allow } => {
                    if words.is_empty() {
                        return Err(invalid(&rref, "a keyword rule needs at least one word"));
                    }
                    limit(
                        format!("{rref}: keywords"),
                        words.len(),
                        MAX_KEYWORDS_PER_RULE,
                    )?;
                    limit(
                        format!("{rref}: allowed words"),
                        allow.len(),
                        MAX_ALLOW_PER_RULE,
                    )?;
                    keyword_total += words.len();
                    limit("keywords of all rules".into(), keyword_total, MAX_KEYWORDS)?;
                    let mut parsed = Vec::with_capacity(words.len());
                    for w in words {
                        let k = parse_keyword(w, MAX_KEYWORD_CHARS).map_err(|reason| {
                            ModerationError::InvalidKeyword {
                                rule: rref.clone(),
                                keyword: w.clone(),
                                reason,
                            }
                        })?;
                        parsed.push(k);
                    }
                    let mut allowed = HashSet::with_capacity(allow.len());
                    for a in allow {
                        let n = normalize::normalize(a.trim());
                        if n.is_empty() || n.contains('*') || n.chars().count() > MAX_KEYWORD_CHARS
                        {
                            return Err(ModerationError::InvalidKeyword {
                                rule: rref.clone(),
                                keyword: a.clone(),
                                reason: "an allowed word must be a plain word of 1 to 100 characters",
                            });
                        }
                        allowed.insert(n.into_boxed_str());
                    }
                    if spec.enabled {
                        for k in parsed {
                            kw.add(idx as u16, k);
                        }
                    }
                    Compiled::Keywords { allow: allowed }
                }
                Trigger::Regex { patterns: ps } => {
                    if ps.is_empty() {
                        return Err(invalid(&rref, "a regex rule needs at least one pattern"));
                    }
                    limit(format!("{rref}: patterns"), ps.len(), MAX_PATTERNS_PER_RULE)?;
                    limit(
                        "regex patterns of all rules".into(),
                        patterns.len() + ps.len(),
                        MAX_PATTERNS,
                    )?;
                    for p in ps {
                        let (re, unicode_word) = compile_pattern(&rref, p)?;
                        if !spec.enabled {
                            continue;
                        }
                        if unicode_word {
                            set.word_regexes.push((re, idx as u16));
                        } else {
                            patterns.push(p);
                            set.regex_rule.push(idx as u16);
                        }
                    }
                    Compiled::Regex
                }
                Trigger::MentionSpam { max_distinct } => {
                    if !(1..=100).contains(max_distinct) {
                        return Err(invalid(&rref, "max_distinct must be 1 to 100"));
                    }
                    Compiled::MentionSpam { max: *max_distinct }
                }
                Trigger::Links {
                    allow_domains,
                    block_invites,
                    block_links,
                } => {
                    if !block_invites && !block_links {
                        return Err(invalid(
                            &rref,
                            "a link rule must block links, invites or both",
                        ));
                    }
                    limit(
                        format!("{rref}: allowed domains"),
                        allow_domains.len(),
                        MAX_ALLOW_DOMAINS,
                    )?;
                    let mut allow = Vec::with_capacity(allow_domains.len());
                    for d in allow_domains {
                        let n = normalize::normalize(d.trim());
                        let n = n.trim_start_matches("*.").trim_start_matches('.');
                        let n = n.strip_prefix("www.").unwrap_or(n);
                        if n.is_empty()
                            || n.len() > 253
                            || !n
                                .chars()
                                .all(|c| c.is_alphanumeric() || c == '.' || c == '-')
                        {
                            return Err(invalid(&rref, format!("{d:?} is not a domain")));
                        }
                        allow.push(Box::from(n));
                    }
                    Compiled::Links {
                        allow,
                        block_invites: *block_invites,
                        block_links: *block_links,
                    }
                }
                Trigger::Flood {
                    max_repeats,
                    window_secs,
                } => {
                    if !(1..RING as u32).contains(max_repeats) {
                        return Err(invalid(
                            &rref,
                            format!("max_repeats must be 1 to {}", RING - 1),
                        ));
                    }
                    if !(1..=MAX_FLOOD_WINDOW_SECS).contains(window_secs) {
                        return Err(invalid(
                            &rref,
                            format!("window_secs must be 1 to {MAX_FLOOD_WINDOW_SECS}"),
                        ));
                    }
                    Compiled::Flood {
                        max: *max_repeats,
                        window_ms: i64::from(*window_secs) * 1000,
                    }
                }
                Trigger::NewAccount {
                    min_account_age_secs,
                    min_member_age_secs,
                } => {
                    if *min_account_age_secs == 0 && *min_member_age_secs == 0 {
                        return Err(invalid(
                            &rref,
                            "set min_account_age_secs, min_member_age_secs or both",
                        ));
                    }
                    if *min_account_age_secs > MAX_AGE_SECS || *min_member_age_secs > MAX_AGE_SECS {
                        return Err(invalid(
                            &rref,
                            format!("ages are at most {MAX_AGE_SECS} seconds"),
                        ));
                    }
                    Compiled::NewAccount {
                        account_ms: *min_account_age_secs as i64 * 1000,
                        member_ms: *min_member_age_secs as i64 * 1000,
                    }
                }
            };
            if !spec.enabled {
                continue;
            }
            match trigger {
                Compiled::Keywords { .. } => set.keyword_rules.set(idx),
                Compiled::Regex => set.regex_rules.set(idx),
                Compiled::Links { .. } => set.link_rules.set(idx),
                Compiled::Flood { .. } => set.flood_rules.set(idx),
                _ => {}
            }
            set.all.set(idx);
            for c in &spec.exempt_channels {
                set.exempt_channels.entry(*c).or_default().set(idx);
            }
            for r in &spec.exempt_roles {
                set.exempt_roles.entry(*r).or_default().set(idx);
            }
            set.rules.push(Rule {
                rref,
                trigger,
                block,
                flags,
                timeout,
                delete,
            });
        }
        let literals = kw.len();
        set.keywords = kw.build().map_err(|e| ModerationError::LimitExceeded {
            what: format!("keyword automaton ({e})"),
            count: literals,
            max: MAX_KEYWORDS,
        })?;
        if !patterns.is_empty() {
            let built = RegexSetBuilder::new(&patterns)
                .case_insensitive(true)
                .size_limit(REGEX_SET_SIZE_LIMIT)
                .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
                .build()
                .map_err(|_| ModerationError::LimitExceeded {
                    what: "compiled size of all regex patterns together (bytes)".into(),
                    count: REGEX_SET_SIZE_LIMIT + 1,
                    max: REGEX_SET_SIZE_LIMIT,
                })?;
            set.regexes = Some(built);
        }
        Ok(set)
    }

    /// Enabled rules compiled.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Checks one message. Records it in `flood` if a flood rule applies to
    /// the author here (a blocked message counts too: repeating it is still
    /// flooding).
    pub fn check(&self, ctx: &MessageContext<'_>, flood: &FloodTracker) -> Verdict {
        if self.rules.is_empty() {
            return Verdict::default();
        }
        let mut active = self.all;
        if let Some(ex) = self.exempt_channels.get(&ctx.channel_id) {
            active = active.and_not(*ex);
        }
        if !self.exempt_roles.is_empty() {
            for r in ctx.author_roles {
                if let Some(ex) = self.exempt_roles.get(r) {
                    active = active.and_not(*ex);
                }
            }
        }
        if !active.any() {
            return Verdict::default();
        }
        let mut hit = Bits::default();
        // Rules that need no text.
        for i in active.iter() {
            let fired = match &self.rules[i].trigger {
                Compiled::MentionSpam { max } => {
                    let n = ctx.mentions.users.len()
                        + ctx.mentions.roles.len()
                        + usize::from(ctx.mentions.everyone);
                    n > *max as usize
                }
                Compiled::NewAccount {
                    account_ms,
                    member_ms,
                } => {
                    (*account_ms > 0 && ctx.now - ctx.account_created_at < *account_ms)
                        || (*member_ms > 0 && ctx.now - ctx.member_joined_at < *member_ms)
                }
                _ => false,
            };
            if fired {
                hit.set(i);
            }
        }
        let text_rules = self.keyword_rules.and(active).any()
            || self.regex_rules.and(active).any()
            || self.link_rules.and(active).any()
            || self.flood_rules.and(active).any();
        if text_rules {
            SCRATCH.with(|s| {
                let mut s = s.borrow_mut();
                normalize::normalize_into(ctx.content, &mut s);
                self.check_text(ctx, &s, active, &mut hit, flood);
            });
        }
        self.verdict(hit)
    }

    fn check_text(
        &self,
        ctx: &MessageContext<'_>,
        text: &str,
        active: Bits,
        hit: &mut Bits,
        flood: &FloodTracker,
    ) {
        if self.keyword_rules.and(active).any() {
            self.keywords.scan(text, &active, hit, |rule, word| {
                match &self.rules[rule].trigger {
                    Compiled::Keywords { allow } => !allow.is_empty() && allow.contains(word),
                    _ => false,
                }
            });
        }
        if self.regex_rules.and(active).any() {
            if let Some(set) = &self.regexes
                && set.is_match(text)
            {
                for p in set.matches(text).iter() {
                    let rule = usize::from(self.regex_rule[p]);
                    if active.has(rule) {
                        hit.set(rule);
                    }
                }
            }
            for (re, rule) in &self.word_regexes {
                let rule = usize::from(*rule);
                if active.has(rule) && !hit.has(rule) && re.is_match(text) {
                    hit.set(rule);
                }
            }
        }
        let link_rules = self.link_rules.and(active);
        if link_rules.any() {
            for_each_link(text, |link| {
                let invite = self
                    .invite_prefixes
                    .iter()
                    .any(|p| link.rest.starts_with(&**p));
                for i in link_rules.iter() {
                    if let Compiled::Links {
                        allow,
                        block_invites,
                        block_links,
                    } = &self.rules[i].trigger
                    {
                        let fired = (invite && *block_invites)
                            || (*block_links && !allow.iter().any(|d| link.host_within(d)));
                        if fired {
                            hit.set(i);
                        }
                    }
                }
                // Keep going while some link rule has not fired yet.
                link_rules.and_not(*hit).any()
            });
        }
        let flood_rules = self.flood_rules.and(active);
        if flood_rules.any() {
            let repeats = flood.record(ctx.community_id, ctx.author_id, text, ctx.now);
            for i in flood_rules.iter() {
                if let Compiled::Flood { max, window_ms } = self.rules[i].trigger
                    && repeats.count_since(ctx.now - window_ms) > max as usize
                {
                    hit.set(i);
                }
            }
        }
    }

    fn verdict(&self, hit: Bits) -> Verdict {
        let mut v = Verdict::default();
        for i in hit.iter() {
            let r = &self.rules[i];
            if r.block && v.blocked_by.is_none() {
                v.blocked_by = Some(r.rref.clone());
            }
            for c in &r.flags {
                v.flags.push(Flagged {
                    rule: r.rref.clone(),
                    channel_id: *c,
                });
            }
            if let Some(secs) = r.timeout {
                v.timeouts.push(TimedOut {
                    rule: r.rref.clone(),
                    secs,
                });
            }
            if let Some(secs) = r.delete {
                v.deletes.push(DeleteRecent {
                    rule: r.rref.clone(),
                    secs,
                });
            }
        }
        v
    }
}

type Actions = (bool, Vec<ChannelId>, Option<u32>, Option<u32>);

fn validate_actions(rref: &RuleRef, actions: &[Action]) -> Result<Actions, ModerationError> {
    if actions.is_empty() {
        return Err(invalid(rref, "a rule needs at least one action"));
    }
    limit(format!("{rref}: actions"), actions.len(), 8)?;
    let (mut block, mut flags, mut timeout, mut delete) = (false, Vec::new(), None, None);
    for a in actions {
        match a {
            Action::Block => block = true,
            Action::Flag { channel_id } => {
                if !flags.contains(channel_id) {
                    flags.push(*channel_id);
                }
            }
            Action::Timeout { secs } => {
                if !(1..=MAX_TIMEOUT_SECS).contains(secs) {
                    return Err(invalid(
                        rref,
                        format!("a timeout is 1 to {MAX_TIMEOUT_SECS} seconds"),
                    ));
                }
                timeout = timeout.max(Some(*secs));
            }
            Action::DeleteRecent { secs } => {
                if !(1..=MAX_DELETE_SECS).contains(secs) {
                    return Err(invalid(
                        rref,
                        format!("delete_recent reaches back 1 to {MAX_DELETE_SECS} seconds"),
                    ));
                }
                delete = delete.max(Some(*secs));
            }
        }
    }
    Ok((block, flags, timeout, delete))
}

/// Compiles one pattern alone, so an error names it. Also tells whether it
/// uses Unicode word boundaries.
fn compile_pattern(rref: &RuleRef, p: &str) -> Result<(Regex, bool), ModerationError> {
    let err = |reason: String| ModerationError::InvalidRegex {
        rule: rref.clone(),
        pattern: p.chars().take(200).collect(),
        reason,
    };
    if p.len() > MAX_PATTERN_BYTES {
        return Err(err(format!("longer than {MAX_PATTERN_BYTES} bytes")));
    }
    if p.is_empty() {
        return Err(err("is empty".into()));
    }
    let re = RegexBuilder::new(p)
        .case_insensitive(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .nest_limit(50)
        .build()
        .map_err(|e| err(regex_reason(e)))?;
    if re.is_match("") {
        return Err(err(
            "matches the empty text, so it would match every message".into(),
        ));
    }
    let hir = regex_syntax::ParserBuilder::new()
        .case_insensitive(true)
        .nest_limit(50)
        .build()
        .parse(p)
        .map_err(|e| err(e.to_string()))?;
    let unicode_word = hir.properties().look_set().contains_word_unicode();
    Ok((re, unicode_word))
}
