#!/usr/bin/env python3
"""The SQL side of the search comparison (docs/benchmarks.md, "Search").

Loads the corpus the Rust bench writes (`--tsv`) into Postgres full-text
search and SQLite FTS5, then runs the very queries the Rust bench runs
(`--dump-queries`: the same strings, the same clients, the same order) and
prints the same table: p50/p99/max latency, queries per second and the
average total.

Each query does what a team building search on the database would do, and
what Hearth's answer holds: the exact total in the caller's scope (a count)
and the top 20 (by rank or by date) in it with a highlighted snippet of
each (Hearth answers with one: `ts_headline` on Postgres, `snippet()` on
FTS5, the content itself where LIKE found it). Both statements run on the
client's own connection, one after the other; the latency is both.

  bench-search-sql.py load-pg     --tsv F --db NAME
  bench-search-sql.py load-sqlite --tsv F --file PATH
  bench-search-sql.py query --engine pg|sqlite --queries Q (--db NAME | --file PATH)
                            [--clients 10] [--per-client N]

What each engine gets (the best a careful team would set up):
- Postgres 15: a stored `tsvector` column with a text search configuration
  `hearth` (`simple` + `unaccent`: lowercased, accents folded, no stemming,
  like Hearth's analyzer) and a GIN index on it; `pg_trgm` GIN on the
  content for CJK (the `simple` parser keeps an unspaced CJK sentence as one
  word, so words inside it are only found by LIKE); btree indexes on
  (channel_id, id) and (author_id, id). Rank is `ts_rank`.
- SQLite FTS5 (the Python module's SQLite): an `unicode61 remove_diacritics
  2` table for words and a `trigram` table for CJK, both external-content
  over a plain `messages` table with the same btree indexes; rank is FTS5's
  bm25.
"""

import argparse
import sqlite3
import statistics
import sys
import threading
import time
from collections import defaultdict
from datetime import datetime, timezone

CHANNELS = list(range(1000, 1100))
NARROW = CHANNELS[::5]  # the Rust bench's "20 channels" scope


def day_ms(s):
    return int(datetime.strptime(s, "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp() * 1000)


def parse(q):
    """The few shapes the Rust bench generates, as parts."""
    out = {"words": [], "phrase": None, "prefix": None, "from": None, "in": None, "after": None}
    q = q.strip()
    if q.startswith('"') and q.endswith('"'):
        out["phrase"] = q[1:-1]
        return out
    for tok in q.split():
        if tok.startswith("from:"):
            out["from"] = int(tok[5:])
        elif tok.startswith("in:"):
            out["in"] = int(tok[3:])
        elif tok.startswith("after:"):
            # "after:D" is "sent after that day": from the next midnight.
            out["after"] = day_ms(tok[6:]) + 86_400_000
        elif tok.endswith("*"):
            out["prefix"] = tok[:-1]
        else:
            out["words"].append(tok)
    return out


def is_cjk(s):
    return any(
        0x3040 <= ord(c) <= 0x30FF or 0x3400 <= ord(c) <= 0x9FFF or 0xAC00 <= ord(c) <= 0xD7AF
        for c in s
    )


# ---------------------------------------------------------------- Postgres

PG_SCHEMA = """
DROP TABLE IF EXISTS messages;
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
DROP TEXT SEARCH CONFIGURATION IF EXISTS hearth;
CREATE TEXT SEARCH CONFIGURATION hearth (COPY = simple);
ALTER TEXT SEARCH CONFIGURATION hearth
  ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, word, hword, hword_part
  WITH unaccent, simple;
CREATE TABLE messages (
  id bigint PRIMARY KEY,
  channel_id bigint NOT NULL,
  community_id bigint NOT NULL,
  author_id bigint NOT NULL,
  created_ms bigint NOT NULL,
  content text NOT NULL,
  tsv tsvector GENERATED ALWAYS AS (to_tsvector('hearth'::regconfig, content)) STORED
);
"""

PG_INDEXES = [
    "CREATE INDEX messages_tsv ON messages USING gin (tsv)",
    "CREATE INDEX messages_trgm ON messages USING gin (content gin_trgm_ops)",
    "CREATE INDEX messages_channel ON messages (channel_id, id)",
    "CREATE INDEX messages_author ON messages (author_id, id)",
]


def pg_connect(db):
    import psycopg

    return psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={db}", autocommit=True)


def load_pg(args):
    import psycopg

    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {args.db}")
        c.execute(f"CREATE DATABASE {args.db}")
    with pg_connect(args.db) as c:
        c.execute(PG_SCHEMA)
        t = time.time()
        with c.cursor().copy(
            "COPY messages (id, channel_id, community_id, author_id, created_ms, content) "
            "FROM STDIN WITH (FORMAT csv, DELIMITER E'\\t', QUOTE E'\\x01')"
        ) as cp, open(args.tsv, "rb") as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                cp.write(chunk)
        copied = time.time() - t
        c.execute("SET maintenance_work_mem = '1GB'")
        t = time.time()
        for ix in PG_INDEXES:
            c.execute(ix)
        c.execute("VACUUM ANALYZE messages")
        built = time.time() - t
        n = c.execute("SELECT count(*) FROM messages").fetchone()[0]
        size = c.execute("SELECT pg_total_relation_size('messages')").fetchone()[0]
        sizes = c.execute(
            "SELECT relname, pg_relation_size(oid) FROM pg_class WHERE relname LIKE 'messages%' ORDER BY 1"
        ).fetchall()
    print(
        f"postgres: {n} rows; COPY (with tsvector) {copied:.1f} s = {n / copied:.0f} msg/s; "
        f"indexes + analyze {built:.1f} s; total {n / (copied + built):.0f} msg/s; "
        f"{size / 1e6:.0f} MB with indexes"
    )
    for name, s in sizes:
        print(f"  {name}: {s / 1e6:.0f} MB")


def pg_statements(p, sort, scope):
    """(count SQL, top-20 SQL, params) for one parsed query."""
    where, params = ["channel_id = ANY(%(scope)s)"], {"scope": scope}
    rank = None
    text = None
    if p["phrase"]:
        text = "phraseto_tsquery('hearth', %(text)s)"
        params["text"] = p["phrase"]
    elif p["prefix"]:
        text = "to_tsquery('hearth', %(text)s)"
        params["text"] = p["prefix"] + ":*"
    elif p["words"] and is_cjk(" ".join(p["words"])):
        where.append("content LIKE %(like)s")
        params["like"] = "%" + " ".join(p["words"]) + "%"
    elif p["words"]:
        text = "plainto_tsquery('hearth', %(text)s)"
        params["text"] = " ".join(p["words"])
    if text:
        where.append(f"tsv @@ {text}")
        rank = f"ts_rank(tsv, {text})"
    if p["from"] is not None:
        where.append("author_id = %(author)s")
        params["author"] = p["from"]
    if p["in"] is not None:
        where.append("channel_id = %(channel)s")
        params["channel"] = p["in"]
    if p["after"] is not None:
        where.append("created_ms >= %(after)s")
        params["after"] = p["after"]
    w = " AND ".join(where)
    if sort == "Relevance" and rank:
        order = f"{rank} DESC, id DESC"
    else:
        order = "id DESC"
    # The snippet only for the 20 kept (ts_headline re-parses the text).
    snippet = (
        f"ts_headline('hearth', content, {text}, "
        "'StartSel=<mark>, StopSel=</mark>, MaxFragments=1, MaxWords=30, MinWords=10')"
        if text
        else "left(content, 200)"
    )
    return (
        f"SELECT count(*) FROM messages WHERE {w}",
        f"SELECT id, {snippet} FROM (SELECT id, content FROM messages WHERE {w} "
        f"ORDER BY {order} LIMIT 20) top",
        params,
    )


# ------------------------------------------------------------------ SQLite

SQLITE_SCHEMA = """
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE messages (
  id INTEGER PRIMARY KEY,
  channel_id INTEGER NOT NULL,
  community_id INTEGER NOT NULL,
  author_id INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  content TEXT NOT NULL
);
CREATE VIRTUAL TABLE words USING fts5(
  content, content = 'messages', content_rowid = 'id',
  tokenize = 'unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE grams USING fts5(
  content, content = 'messages', content_rowid = 'id', tokenize = 'trigram'
);
"""


def load_sqlite(args):
    import os

    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(args.file + suffix):
            os.remove(args.file + suffix)
    c = sqlite3.connect(args.file)
    c.executescript(SQLITE_SCHEMA)
    t = time.time()
    with open(args.tsv, encoding="utf-8") as f:
        rows = (line.rstrip("\n").split("\t", 5) for line in f)
        c.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)", rows)
    c.commit()
    copied = time.time() - t
    t = time.time()
    c.execute("INSERT INTO words(words) VALUES ('rebuild')")
    c.execute("INSERT INTO grams(grams) VALUES ('rebuild')")
    c.execute("CREATE INDEX messages_channel ON messages (channel_id, id)")
    c.execute("CREATE INDEX messages_author ON messages (author_id, id)")
    c.commit()
    c.execute("INSERT INTO words(words) VALUES ('optimize')")
    c.execute("INSERT INTO grams(grams) VALUES ('optimize')")
    c.execute("ANALYZE")
    c.commit()
    built = time.time() - t
    n = c.execute("SELECT count(*) FROM messages").fetchone()[0]
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    size = os.path.getsize(args.file)
    print(
        f"sqlite: {n} rows; insert {copied:.1f} s; fts5 build + indexes {built:.1f} s; "
        f"total {n / (copied + built):.0f} msg/s; {size / 1e6:.0f} MB file"
    )


def sqlite_statements(p, sort, scope):
    scope_sql = "m.channel_id IN (" + ",".join(str(s) for s in scope) + ")"
    where, params = [scope_sql], []
    fts = None
    if p["phrase"]:
        fts = ("words", '"' + p["phrase"].replace('"', '""') + '"')
    elif p["prefix"]:
        fts = ("words", '"' + p["prefix"] + '" *')
    elif p["words"] and is_cjk(" ".join(p["words"])):
        word = " ".join(p["words"])
        if len(word) >= 3:
            fts = ("grams", '"' + word + '"')
        else:
            # The trigram tokenizer cannot look up fewer than three
            # characters; LIKE on its table scans it.
            where.append("m.content LIKE ?")
            params.append("%" + word + "%")
    elif p["words"]:
        fts = ("words", " ".join('"' + w.replace('"', '""') + '"' for w in p["words"]))
    if p["from"] is not None:
        where.append("m.author_id = ?")
        params.append(p["from"])
    if p["in"] is not None:
        where.append("m.channel_id = ?")
        params.append(p["in"])
    if p["after"] is not None:
        where.append("m.created_ms >= ?")
        params.append(p["after"])
    if fts:
        table, match = fts
        src = f"{table} f JOIN messages m ON m.id = f.rowid"
        where.insert(0, f"{table} MATCH ?")
        params.insert(0, match)
        order = "f.rank, m.id DESC" if sort == "Relevance" else "m.id DESC"
        snippet = f"snippet({table}, 0, '<mark>', '</mark>', '…', 30)"
    else:
        src = "messages m"
        order = "m.id DESC"
        snippet = "substr(m.content, 1, 200)"
    w = " AND ".join(where)
    return (
        f"SELECT count(*) FROM {src} WHERE {w}",
        f"SELECT m.id, {snippet} FROM {src} WHERE {w} ORDER BY {order} LIMIT 20",
        params,
    )


# ------------------------------------------------------------------ queries


def load_queries(path, per_client):
    kinds = defaultdict(lambda: defaultdict(list))
    order = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            name, sort, scope, client, q = line.rstrip("\n").split("\t", 4)
            if name not in kinds:
                order.append(name)
            lst = kinds[name][int(client)]
            if per_client is None or len(lst) < per_client:
                lst.append((sort, scope, q))
    return order, kinds


def run_kind(args, clients):
    lat, totals = [], []
    lock = threading.Lock()
    errors = []

    def client(queries):
        try:
            if args.engine == "pg":
                conn = pg_connect(args.db)
                run = lambda sql, params: conn.execute(sql, params).fetchall()
            else:
                conn = sqlite3.connect(f"file:{args.file}?mode=ro", uri=True, check_same_thread=False)
                conn.execute("PRAGMA cache_size = -262144")
                run = lambda sql, params: conn.execute(sql, params).fetchall()
            mine, my_totals = [], []
            for sort, scope, q in queries:
                ids = NARROW if scope == "narrow" else CHANNELS
                p = parse(q)
                make = pg_statements if args.engine == "pg" else sqlite_statements
                count_sql, top_sql, params = make(p, sort, ids)
                t = time.perf_counter()
                total = run(count_sql, params)[0][0]
                run(top_sql, params)
                mine.append((time.perf_counter() - t) * 1e3)
                my_totals.append(total)
            conn.close()
            with lock:
                lat.extend(mine)
                totals.extend(my_totals)
        except Exception as e:  # noqa: BLE001 - reported below, fails the run
            errors.append(e)

    threads = [threading.Thread(target=client, args=(qs,)) for _, qs in sorted(clients.items())]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t
    if errors:
        raise errors[0]
    lat.sort()
    n = len(lat)
    return lat[n // 2], lat[n * 99 // 100], lat[-1], n / wall, statistics.fmean(totals)


def query(args):
    order, kinds = load_queries(args.queries, args.per_client)
    if args.kinds:
        order = [k for k in order if k in args.kinds.split(",")]
    # Warm the caches the way the Rust bench's process is warm after its
    # freshness phase: one pass of a few queries of every kind.
    warm = {k: {0: kinds[k][0][:3]} for k in order}
    for k in order:
        run_kind(args, warm[k])
    print(f"engine: {args.engine}; clients: {len(kinds[order[0]])}")
    print(f"{'query (top 20)':<26} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} {'qps':>10} {'avg total':>9}")
    for k in order:
        p50, p99, mx, qps, avg = run_kind(args, kinds[k])
        print(f"{k:<26} {p50:>9.3f} {p99:>9.3f} {mx:>9.3f} {qps:>10.1f} {avg:>9.0f}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["load-pg", "load-sqlite", "query"])
    ap.add_argument("--tsv")
    ap.add_argument("--db", default="hearth_fts_bench")
    ap.add_argument("--file", default="/var/tmp/hearth-fts-bench.sqlite")
    ap.add_argument("--engine", choices=["pg", "sqlite"])
    ap.add_argument("--queries")
    ap.add_argument("--per-client", type=int)
    ap.add_argument("--kinds", help="comma-separated kinds to run (default all)")
    args = ap.parse_args()
    if args.cmd == "load-pg":
        load_pg(args)
    elif args.cmd == "load-sqlite":
        load_sqlite(args)
    else:
        query(args)


if __name__ == "__main__":
    sys.exit(main())
