//! Automod on the send path: one community with 100 rules (60 keyword lists,
//! 40 regex rules), checked against a mix of realistic messages.
//!
//! `cargo bench -p hearth-moderation --bench automod`
//! Prints per-check p50/p99/p99.9/max after a warm-up. The issue's target:
//! p99 under 100 µs of added send latency.

use std::time::{Duration, Instant};

use hearth_moderation::automod::{Action, Mentions, RuleSet, RuleSpec, Trigger};
use hearth_moderation::{AutomodRuleId, FloodTracker, MessageContext};
use hearth_types::{ChannelId, CommunityId, RoleId, UserId};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[(self.next() % v.len() as u64) as usize]
    }
}

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "zer", "tor", "qua", "vex", "bin", "dar", "shu", "plo", "nek", "gri", "fa",
    "wu", "yol",
];

fn word(rng: &mut Rng) -> String {
    let n = 2 + rng.next() % 3;
    (0..n).map(|_| *rng.pick(SYLLABLES)).collect()
}

fn rules(rng: &mut Rng, keyword_rules: usize, regex_rules: usize, others: bool) -> Vec<RuleSpec> {
    let mut out = Vec::new();
    let mut id = 0;
    let mut push = |trigger: Trigger, out: &mut Vec<RuleSpec>, exempt: bool| {
        id += 1;
        out.push(RuleSpec {
            id: AutomodRuleId(id),
            name: format!("rule {id}"),
            enabled: true,
            trigger,
            actions: vec![
                Action::Block,
                Action::Flag {
                    channel_id: ChannelId(9),
                },
            ],
            exempt_channels: if exempt {
                vec![ChannelId(1234)]
            } else {
                vec![]
            },
            exempt_roles: if exempt { vec![RoleId(77)] } else { vec![] },
        });
    };
    for i in 0..keyword_rules {
        // Mostly short lists, some long ones (one of 10,000 words).
        let n = match i {
            0 => 10_000,
            1..=4 => 1_000,
            _ => 20 + (rng.next() % 100) as usize,
        };
        let words = (0..n)
            .map(|_| {
                let w = word(rng);
                match rng.next() % 6 {
                    0 => format!("{w}*"),
                    1 => format!("*{w}"),
                    2 => format!("*{w}*"),
                    _ => w,
                }
            })
            .collect();
        push(
            Trigger::Keywords {
                words,
                allow: vec![],
            },
            &mut out,
            i % 3 == 0,
        );
    }
    let templates: &[fn(&str, &str) -> String] = &[
        |a, b| format!(r"\b{a}\s*{b}\b"),
        |a, b| format!(r"{a}+[\s._-]*{b}+"),
        |a, _| format!(r"(?:free|cheap)\s+{a}"),
        |_, _| r"\d{3}[-.\s]?\d{3}[-.\s]?\d{4}".to_string(),
        |a, _| format!(r"[a-z0-9._%+-]+@{a}\.[a-z]{{2,}}"),
        |a, b| format!(r"(?:bit\.ly|tinyurl\.com)/{a}{b}\w*"),
        |a, b| format!(r"^{a}.*{b}$"),
    ];
    for i in 0..regex_rules {
        let n = 1 + rng.next() % 3;
        let patterns = (0..n)
            .map(|_| {
                let t = rng.pick(templates);
                t(&word(rng), &word(rng))
            })
            .collect();
        push(Trigger::Regex { patterns }, &mut out, i % 4 == 0);
    }
    if others {
        push(Trigger::MentionSpam { max_distinct: 5 }, &mut out, false);
        push(
            Trigger::Links {
                allow_domains: vec!["example.com".into(), "youtube.com".into()],
                block_invites: true,
                block_links: true,
            },
            &mut out,
            false,
        );
        push(
            Trigger::Flood {
                max_repeats: 4,
                window_secs: 10,
            },
            &mut out,
            false,
        );
        push(
            Trigger::NewAccount {
                min_account_age_secs: 3600,
                min_member_age_secs: 0,
            },
            &mut out,
            false,
        );
    }
    out
}

/// The rules `hearth-loadgen --scenario sends --automod-rules 100` puts on
/// its community: 60 lists of 180 made-up words (a third with a leading
/// `*`, a third with a trailing one) and 40 rules of five `\b…\b` regexes,
/// none of which the load's messages match.
fn loadgen_rules() -> Vec<RuleSpec> {
    (0..100)
        .map(|i| {
            let trigger = if i < 60 {
                Trigger::Keywords {
                    words: (0..180)
                        .map(|j| match j % 3 {
                            0 => format!("zq{i}x{j}"),
                            1 => format!("*blorp{i}y{j}"),
                            _ => format!("snarf{i}z{j}*"),
                        })
                        .collect(),
                    allow: vec![],
                }
            } else {
                Trigger::Regex {
                    patterns: (0..5)
                        .map(|j| format!(r"(?i)\bqx{i}_{j}[0-9]{{3,}}\b"))
                        .collect(),
                }
            };
            RuleSpec {
                id: AutomodRuleId(i + 1),
                name: format!("rule {i}"),
                enabled: true,
                trigger,
                actions: vec![Action::Block],
                exempt_channels: vec![],
                exempt_roles: vec![],
            }
        })
        .collect()
}

fn messages(rng: &mut Rng) -> Vec<String> {
    let base = [
        "hey, anyone around tonight?",
        "lol",
        "I pushed the fix to main, can someone review before the release? The tests pass locally but CI is flaky on the Postgres job.",
        "check this out https://www.youtube.com/watch?v=dQw4w9WgXcQ",
        "Bonjour à tous ! Qui vient à la réunion de jeudi ? 🎉",
        "これは普通のメッセージです。よろしくお願いします。",
        "Привет всем, как дела? Сегодня обновили сервер.",
        "ok 👍",
        "my number is 555 123 4567 call me",
        "```rust\nfn main() { println!(\"hello\"); }\n```",
        "The quick brown fox jumps over the lazy dog. ",
    ];
    let mut out: Vec<String> = base.iter().map(|s| s.to_string()).collect();
    // Some messages that contain rule words (hits), some long ones.
    for _ in 0..20 {
        out.push(format!("so {} is what they said", word(rng)));
    }
    out.push(base[2].repeat(10)); // ~1.3 KB
    out.push(base[4].repeat(15)); // ~1 KB of non-ASCII
    out.push("a".repeat(1999));
    out
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "{name}: n={} p50={:.2?} p99={:.2?} p99.9={:.2?} max={:.2?}",
        samples.len(),
        pct(0.50),
        pct(0.99),
        pct(0.999),
        samples[samples.len() - 1]
    );
}

fn bench(name: &str, set: &RuleSet, msgs: &[String], iterations: usize) {
    let flood = FloodTracker::new(100_000);
    let users = [UserId(5), UserId(6)];
    let roles = [RoleId(3), RoleId(4)];
    let run = |i: usize, samples: Option<&mut Vec<Duration>>| {
        let content = &msgs[i % msgs.len()];
        let ctx = MessageContext {
            community_id: CommunityId(1),
            channel_id: ChannelId(10 + (i % 3) as i64),
            author_id: UserId(1000 + (i % 500) as i64),
            author_roles: &roles,
            content,
            mentions: Mentions {
                users: &users,
                roles: &[],
                everyone: false,
            },
            account_created_at: 0,
            member_joined_at: 0,
            now: 1_800_000_000_000 + i as i64 * 10,
        };
        let start = Instant::now();
        let v = set.check(&ctx, &flood);
        let took = start.elapsed();
        std::hint::black_box(v);
        if let Some(s) = samples {
            s.push(took);
        }
    };
    for i in 0..iterations / 10 {
        run(i, None); // warm-up: caches, lazy DFA states, allocator
    }
    let mut samples = Vec::with_capacity(iterations);
    for i in 0..iterations {
        run(i, Some(&mut samples));
    }
    report(name, samples);
}

fn main() {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let specs = rules(&mut rng, 60, 40, false);
    let patterns: usize = specs
        .iter()
        .map(|r| match &r.trigger {
            Trigger::Regex { patterns } => patterns.len(),
            _ => 0,
        })
        .sum();
    let words: usize = specs
        .iter()
        .map(|r| match &r.trigger {
            Trigger::Keywords { words, .. } => words.len(),
            _ => 0,
        })
        .sum();
    let start = Instant::now();
    let set = RuleSet::compile(&specs).expect("rules compile");
    println!(
        "compile: {} rules ({} keywords, {} regex patterns) in {:.2?}",
        specs.len(),
        words,
        patterns,
        start.elapsed()
    );
    let msgs = messages(&mut rng);
    if std::env::var("PER_MESSAGE").is_ok() {
        // The mean per message, to see which kind of text costs what.
        let flood = FloodTracker::new(100_000);
        for m in &msgs {
            let ctx = MessageContext {
                community_id: CommunityId(1),
                channel_id: ChannelId(10),
                author_id: UserId(1),
                author_roles: &[],
                content: m,
                mentions: Mentions::default(),
                account_created_at: 0,
                member_joined_at: 0,
                now: 0,
            };
            for _ in 0..100 {
                set.check(&ctx, &flood);
            }
            let start = Instant::now();
            for _ in 0..1000 {
                std::hint::black_box(set.check(&ctx, &flood));
            }
            let head: String = m
                .chars()
                .take(50)
                .map(|c| if c == '\n' { ' ' } else { c })
                .collect();
            println!(
                "{:>10.2?} {} bytes: {head}",
                start.elapsed() / 1000,
                m.len()
            );
        }
        return;
    }
    bench(
        "100 rules (60 keyword, 40 regex), mixed messages",
        &set,
        &msgs,
        200_000,
    );

    let mut specs = rules(&mut Rng(7), 56, 40, true);
    specs.truncate(100);
    let set = RuleSet::compile(&specs).expect("rules compile");
    bench(
        "100 rules (56 keyword, 40 regex, mention, link, flood, new account)",
        &set,
        &msgs,
        200_000,
    );

    let set = RuleSet::compile(&loadgen_rules()).expect("rules compile");
    let sent: Vec<String> = (0..1000)
        .map(|i| {
            format!(
                "message {i} from sender {}: the quick brown fox jumps over the lazy dog",
                i % 64
            )
        })
        .collect();
    bench(
        "the load generator's 100 rules (10,800 keywords, 200 word-bounded regexes), its messages",
        &set,
        &sent,
        200_000,
    );

    let long: Vec<String> = msgs.iter().filter(|m| m.len() > 900).cloned().collect();
    bench(
        "100 rules, long messages only (1-2 KB)",
        &set,
        &long,
        50_000,
    );
}
