//! Search benchmark: generates a corpus, indexes it, runs six kinds of query
//! from concurrent clients and prints throughput, size, RSS and latency
//! percentiles.
//!
//! ```text
//! CARGO_TARGET_DIR=/var/tmp/hearth-target-search \
//!   cargo run --release -p hearth-search --example bench -- \
//!   [--messages 1000000] [--clients 10] [--queries 300] [--dir PATH] [--tsv PATH]
//! ```
//! `--tsv PATH` only writes the corpus (for loading into other engines) and
//! exits.

mod corpus;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth_search::{Index, IndexConfig, Op, Query, Scope, Sort};

use corpus::{AUTHORS, CHANNELS, Corpus, Rng, author, channel};

/// The server's allocator: search runs inside the server's process.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    messages: usize,
    clients: usize,
    queries: usize,
    dir: Option<String>,
    tsv: Option<String>,
    /// Write every query the query phase would run (kind, sort, scope,
    /// client, text) as TSV and exit: the same queries, in the same order
    /// per client, for the Postgres and SQLite side of the comparison.
    dump_queries: Option<String>,
    seed: u64,
    /// Run only the query phase on an index already in `dir` (the bench
    /// runs itself this way, so RSS is the searching process's alone).
    query_only: bool,
    /// Skip the freshness phase (it writes to the index), so one built
    /// index can be queried again and again unchanged.
    no_freshness: bool,
    /// Run only the kinds of query whose name contains one of these
    /// `|`-separated pieces (for profiling one kind).
    only: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        messages: 1_000_000,
        clients: 10,
        queries: 300,
        dir: None,
        tsv: None,
        dump_queries: None,
        seed: 42,
        query_only: false,
        no_freshness: false,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--no-freshness" => a.no_freshness = true,
            "--query-only" => a.query_only = true,
            _ => {
                let v = it.next().unwrap_or_default();
                match k.as_str() {
                    "--messages" => a.messages = v.parse().unwrap_or(a.messages),
                    "--clients" => a.clients = v.parse().unwrap_or(a.clients),
                    "--queries" => a.queries = v.parse().unwrap_or(a.queries),
                    "--seed" => a.seed = v.parse().unwrap_or(a.seed),
                    "--dir" => a.dir = Some(v),
                    "--tsv" => a.tsv = Some(v),
                    "--dump-queries" => a.dump_queries = Some(v),
                    "--only" => a.only = Some(v),
                    other => eprintln!("unknown argument {other}"),
                }
            }
        }
    }
    a
}

fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (kb("VmRSS:") / 1024, kb("VmHWM:") / 1024)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = args();
    let mut corpus = Corpus::new(a.seed);
    if let Some(path) = &a.tsv {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for _ in 0..a.messages {
            corpus::write_tsv_row(&mut out, &corpus.next_message())?;
        }
        println!("wrote {} messages to {path}", a.messages);
        return Ok(());
    }
    if a.dump_queries.is_some() {
        return query_phase(&a, std::path::Path::new("."), corpus);
    }
    if a.query_only {
        let dir = std::path::PathBuf::from(a.dir.as_deref().unwrap_or("."));
        return query_phase(&a, &dir, corpus);
    }
    let tmp;
    let dir = match &a.dir {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            tmp = tempfile::Builder::new()
                .prefix("hearth-search-bench")
                .tempdir_in("/var/tmp")?;
            tmp.path().to_path_buf()
        }
    };
    let ix = Index::open(
        &dir,
        IndexConfig {
            writer_memory_bytes: 512 << 20,
            writer_threads: 2,
            commit_interval: Duration::from_secs(3600),
            ..IndexConfig::default()
        },
    )?;
    println!(
        "machine: {} cores; messages: {}; clients: {}",
        std::thread::available_parallelism()?.get(),
        a.messages,
        a.clients
    );

    // Generation is timed apart from indexing.
    let start = Instant::now();
    let messages: Vec<_> = (0..a.messages).map(|_| corpus.next_message()).collect();
    let generated = start.elapsed();
    let bytes: usize = messages.iter().map(|m| m.content.len()).sum();
    println!(
        "generated in {:.1} s ({:.1} MB of text)",
        generated.as_secs_f64(),
        bytes as f64 / 1e6
    );

    let start = Instant::now();
    let mut position = 0;
    for chunk in messages.chunks(10_000) {
        position += 1;
        ix.apply(chunk.iter().cloned().map(Op::Upsert).collect(), position)?;
    }
    ix.commit()?;
    let indexed = start.elapsed();
    drop(messages);
    let stats = ix.stats();
    let (rss_now, rss_peak) = rss();
    println!(
        "indexed {} docs in {:.1} s: {:.0} msg/s; {} segments; {:.1} MB on disk ({:.0} B/msg); RSS {} MB (peak {} MB)",
        stats.docs,
        indexed.as_secs_f64(),
        a.messages as f64 / indexed.as_secs_f64(),
        stats.segments,
        stats.size_bytes as f64 / 1e6,
        stats.size_bytes as f64 / a.messages.max(1) as f64,
        rss_now,
        rss_peak
    );

    // The merges the last commit started finish first, so every run
    // queries the layout the load settles into.
    let start = Instant::now();
    ix.close_after_merges()?;
    let settled = tantivy_segments(&dir);
    println!(
        "merges settled in {:.1} s: {settled} segments",
        start.elapsed().as_secs_f64()
    );
    // The query phase replaces this process: its RSS is a searching
    // server's, and none of the loader's memory (the whole corpus, kept by
    // the allocator) is left to squeeze the page cache the index is read
    // through.
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    std::io::stdout().flush()?;
    let err = std::process::Command::new(std::env::current_exe()?)
        .args(std::env::args().skip(1))
        .args(["--dir", &dir.to_string_lossy(), "--query-only"])
        .exec();
    Err(format!("starting the query phase: {err}").into())
}

/// Reads every file of the index once, as a server that has been
/// answering queries has them in the page cache.
fn warm_page_cache(dir: &std::path::Path) -> std::io::Result<u64> {
    use std::io::Read;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let mut f = std::fs::File::open(entry?.path())?;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            total += n as u64;
        }
    }
    Ok(total)
}

/// Segments in the index's last commit.
fn tantivy_segments(dir: &std::path::Path) -> usize {
    std::fs::read_to_string(dir.join("meta.json"))
        .ok()
        .and_then(|m| serde_json::from_str::<serde_json::Value>(&m).ok())
        .and_then(|v| v["segments"].as_array().map(Vec::len))
        .unwrap_or(0)
}

fn query_phase(
    a: &Args,
    dir: &std::path::Path,
    mut corpus: Corpus,
) -> Result<(), Box<dyn std::error::Error>> {
    let ix = if a.dump_queries.is_some() {
        None
    } else {
        let start = Instant::now();
        let bytes = warm_page_cache(dir)?;
        println!(
            "page cache warmed: {:.0} MB read in {:.1} s",
            bytes as f64 / 1e6,
            start.elapsed().as_secs_f64()
        );
        let ix = Arc::new(Index::open(dir, IndexConfig::default())?);
        let (rss_now, _) = rss();
        println!(
            "query process: opened {} docs, RSS {rss_now} MB",
            ix.stats().docs
        );
        Some(ix)
    };

    let all = Arc::new(Scope::new((0..CHANNELS).map(channel)));
    let narrow = Arc::new(Scope::new((0..CHANNELS).step_by(5).map(channel)));
    let c = &corpus;
    let mut kinds: Vec<QueryKind> = vec![
        ("common word", Sort::Relevance, all.clone(), {
            let words: Vec<String> = (0..10).map(|r| c.word(0, r).to_string()).collect();
            Box::new(move |r: &mut Rng| words[r.below(10) as usize].clone())
        }),
        ("common word, newest", Sort::Newest, all.clone(), {
            let words: Vec<String> = (0..10).map(|r| c.word(0, r).to_string()).collect();
            Box::new(move |r: &mut Rng| words[r.below(10) as usize].clone())
        }),
        (
            "common word, 20 channels",
            Sort::Relevance,
            narrow.clone(),
            {
                let words: Vec<String> = (0..10).map(|r| c.word(0, r).to_string()).collect();
                Box::new(move |r: &mut Rng| words[r.below(10) as usize].clone())
            },
        ),
        ("rare word", Sort::Relevance, all.clone(), {
            let words: Vec<String> = (20_000..20_100).map(|r| c.word(0, r).to_string()).collect();
            Box::new(move |r: &mut Rng| words[r.below(100) as usize].clone())
        }),
        ("phrase", Sort::Relevance, all.clone(), {
            let words: Vec<String> = (50..150).map(|r| c.word(0, r).to_string()).collect();
            Box::new(move |r: &mut Rng| {
                if r.chance(0.5) {
                    "\"good morning\"".to_string()
                } else {
                    format!("\"good morning {}\"", words[r.below(100) as usize])
                }
            })
        }),
        ("from:X in:Y", Sort::Newest, all.clone(), {
            Box::new(|r: &mut Rng| {
                format!(
                    "from:{} in:{}",
                    author(r.below(50) as i64).0,
                    channel(r.below(CHANNELS as u64) as i64).0
                )
            })
        }),
        ("text + filters", Sort::Relevance, all.clone(), {
            let words: Vec<String> = (30..80).map(|r| c.word(0, r).to_string()).collect();
            Box::new(move |r: &mut Rng| {
                format!(
                    "{} in:{} after:2025-06-15 from:{}",
                    words[r.below(50) as usize],
                    channel(r.below(10) as i64).0,
                    author(r.below(AUTHORS as u64 / 4) as i64).0
                )
            })
        }),
        ("prefix", Sort::Relevance, all.clone(), {
            let words: Vec<String> = (100..200)
                .map(|r| c.word(0, r).chars().take(3).collect())
                .collect();
            Box::new(move |r: &mut Rng| format!("{}*", words[r.below(100) as usize]))
        }),
        ("CJK word", Sort::Relevance, all.clone(), {
            let words = [
                "会议",
                "服务器",
                "项目",
                "東京",
                "プロジェクト",
                "회의",
                "今日",
                "朋友",
            ];
            Box::new(move |r: &mut Rng| words[r.below(words.len() as u64) as usize].to_string())
        }),
    ];
    if let Some(only) = &a.only {
        kinds.retain(|(name, ..)| only.split('|').any(|piece| name.contains(piece)));
    }
    if let Some(path) = &a.dump_queries {
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for (name, sort, scope, make) in &kinds {
            let scope = if Arc::ptr_eq(scope, &all) {
                "all"
            } else {
                "narrow"
            };
            for c in 0..a.clients {
                let mut rng = client_rng(c);
                for _ in 0..a.queries {
                    writeln!(out, "{name}\t{sort:?}\t{scope}\t{c}\t{}", make(&mut rng))?;
                }
            }
        }
        println!("wrote the queries to {path}");
        return Ok(());
    }
    let ix = ix.expect("an index to query");
    println!(
        "{:<26} {:>9} {:>9} {:>9} {:>10} {:>9}",
        "query (top 20)", "p50 ms", "p99 ms", "max ms", "qps", "avg total"
    );
    for (name, sort, scope, make) in &kinds {
        let (p50, p99, max, qps, avg_total) =
            run(&ix, a.clients, a.queries, *sort, scope, make.as_ref());
        println!("{name:<26} {p50:>9.3} {p99:>9.3} {max:>9.3} {qps:>10.0} {avg_total:>9.0}");
    }
    let (rss_now, rss_peak) = rss();
    println!(
        "RSS after queries: {rss_now} MB (peak {rss_peak} MB); {} segments",
        ix.stats().segments
    );
    // Freshness under a 1,000 msg/s stream, with the default commit policy.
    // It runs last: its commits start segment merges, which would compete
    // with the queries above for the two cores for a minute or more.
    if a.no_freshness {
        return Ok(());
    }
    let position = ix.position();
    let freshness = freshness(&ix, &mut corpus, position);
    println!(
        "freshness at 1,000 msg/s: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        freshness.0, freshness.1, freshness.2
    );
    Ok(())
}

/// Applies one message a millisecond and measures how long until each is
/// searchable.
fn freshness(ix: &Arc<Index>, corpus: &mut Corpus, mut position: u64) -> (f64, f64, f64) {
    let mut lat = Vec::new();
    let scope = Scope::new((0..CHANNELS).map(channel));
    for i in 0..300 {
        let mut m = fresh(corpus);
        let marker = format!("freshmarker{i}");
        m.content = format!("{} {marker}", m.content);
        let q = Query::parse(&marker, Sort::Newest, 1, None).expect("a valid query");
        let start = Instant::now();
        position += 1;
        ix.apply(vec![Op::Upsert(m)], position).expect("apply");
        loop {
            if ix.search(&q, &scope).map(|p| p.total).unwrap_or(0) == 1 {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        lat.push(start.elapsed().as_secs_f64() * 1e3);
        // Keep ~1,000 msg/s: the rest of this message's millisecond.
        for _ in 0..(start.elapsed().as_millis().max(1)) {
            position += 1;
            ix.apply(vec![Op::Upsert(corpus.next_message())], position)
                .expect("apply");
        }
    }
    lat.sort_by(f64::total_cmp);
    (
        lat[lat.len() / 2],
        lat[lat.len() * 99 / 100],
        lat[lat.len() - 1],
    )
}

/// A named kind of query: its sort, the caller's scope, and a maker of
/// query strings.
type QueryKind<'a> = (
    &'a str,
    Sort,
    Arc<Scope>,
    Box<dyn Fn(&mut Rng) -> String + Sync>,
);

/// A new message whose ID is not among the indexed ones (the query
/// process's generator starts over from the same seed).
fn fresh(corpus: &mut Corpus) -> hearth_search::IndexedMessage {
    let mut m = corpus.next_message();
    m.id = hearth_types::MessageId(m.id.0 | (1 << 61));
    m
}

/// Each client's own query sequence (the same in `--dump-queries`).
fn client_rng(client: usize) -> Rng {
    Rng::new(1000 + client as u64)
}

fn run(
    ix: &Arc<Index>,
    clients: usize,
    per_client: usize,
    sort: Sort,
    scope: &Arc<Scope>,
    make: &(dyn Fn(&mut Rng) -> String + Sync),
) -> (f64, f64, f64, f64, f64) {
    let start = Instant::now();
    let results: Vec<(Vec<f64>, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                s.spawn(move || {
                    let mut rng = client_rng(c);
                    let mut lat = Vec::with_capacity(per_client);
                    let mut totals = 0;
                    for _ in 0..per_client {
                        let q = make(&mut rng);
                        let t = Instant::now();
                        let query = Query::parse(&q, sort, 20, None).expect("a valid query");
                        let page = ix.search(&query, scope).expect("search");
                        lat.push(t.elapsed().as_secs_f64() * 1e3);
                        totals += page.total;
                    }
                    (lat, totals)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client"))
            .collect()
    });
    let wall = start.elapsed().as_secs_f64();
    let mut lat: Vec<f64> = results
        .iter()
        .flat_map(|(l, _)| l.iter().copied())
        .collect();
    let totals: usize = results.iter().map(|(_, t)| t).sum();
    lat.sort_by(f64::total_cmp);
    let n = lat.len();
    (
        lat[n / 2],
        lat[n * 99 / 100],
        lat[n - 1],
        n as f64 / wall,
        totals as f64 / n as f64,
    )
}
