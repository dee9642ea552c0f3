#!/usr/bin/env python3
"""A large SQLite instance for the migrate-data benchmark, written straight
into a migrated hearth.db (the API would take hours for a million messages).

    hearth migrate --data-dir DIR
    scripts/gen-sqlite-instance.py DIR/hearth.db --messages 1000000

Realistic shape, deterministic (seeded): 2,000 users, 20 communities with
10 channels each, members, a role per community, overwrites, DMs between
pairs of users, messages spread over channels and authors with lengths from
a few characters to 2,000 (mostly short, a long tail; some non-ASCII), about
one message in twenty with a reaction, one in fifty edited, one in a
thousand pinned, read states and sessions. IDs are snowflake-shaped (time in
the high bits) and increase with the message order.
"""

import argparse
import random
import sqlite3
import time

WORDS = (
    "the a to and of is in it you that for on was with he as I be at have "
    "this are we they but not what all were when your can said there use an "
    "each which she do how their if will up other about out many then them "
    "deploy server channel message ok lol thanks merge review tomorrow coffee "
    "bug fix release hearth chat voice search postgres sqlite rust build"
).split()
EXTRA = ["café", "naïve", "日本語", "🎉", "👍", "—", "«ok»", "ümlaut", "Ελληνικά"]
EPOCH_MS = 1735689600000  # 2025-01-01, the IDs' epoch


def snowflake(ms, seq):
    return ((ms - EPOCH_MS) << 22) | (seq & 0xFFF)


def content(rng):
    r = rng.random()
    if r < 0.6:
        n = rng.randint(1, 12)
    elif r < 0.9:
        n = rng.randint(12, 60)
    elif r < 0.99:
        n = rng.randint(60, 200)
    else:
        n = rng.randint(200, 330)
    words = [rng.choice(WORDS) for _ in range(n)]
    if rng.random() < 0.1:
        words.insert(rng.randrange(len(words) + 1), rng.choice(EXTRA))
    return " ".join(words)[:2000]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("db")
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--communities", type=int, default=20)
    ap.add_argument("--channels-per-community", type=int, default=10)
    ap.add_argument("--seed", type=int, default=14)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    db = sqlite3.connect(a.db)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = OFF")
    (n,) = db.execute("SELECT COUNT(*) FROM messages").fetchone()
    if n:
        raise SystemExit(f"{a.db} already has {n} messages")
    start = time.time()
    now = int(time.time() * 1000)
    t0 = now - 90 * 86400 * 1000
    seq = iter(range(10**9))

    def new_id(ms):
        return snowflake(ms, next(seq))

    users = [new_id(t0) for _ in range(a.users)]
    db.executemany(
        "INSERT INTO users (id, username, username_lower, email, email_lower, display_name, "
        "password_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (u, f"User{i}", f"user{i}", f"user{i}@example.org", f"user{i}@example.org",
             f"User number {i}" if i % 3 else None,
             "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$notarealhashnotarealhash", t0)
            for i, u in enumerate(users)
        ],
    )
    sessions = []
    for u in users[: a.users // 2]:
        sid = new_id(t0)
        sessions.append((sid, u, "bench", t0, now, None))
    db.executemany("INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?)", sessions)
    db.executemany(
        "INSERT INTO refresh_tokens (hash, session_id, spent, created_at) VALUES (?, ?, ?, ?)",
        [(f"{s[0]:064x}", s[0], False, t0) for s in sessions],
    )
    channels = []  # (channel id, member user ids)
    for c in range(a.communities):
        cid = new_id(t0)
        owner = users[c % len(users)]
        db.execute("INSERT INTO communities (id, name, owner_id, created_at) VALUES (?, ?, ?, ?)",
                   (cid, f"Community {c}", owner, t0))
        db.execute("INSERT INTO roles (id, community_id, name, permissions, position) VALUES (?, ?, ?, ?, ?)",
                   (cid, cid, "@everyone", 0x7FFF, 0))
        rid = new_id(t0)
        db.execute("INSERT INTO roles (id, community_id, name, permissions, color, position) VALUES (?, ?, ?, ?, ?, ?)",
                   (rid, cid, "Mods", 0xFFFF, 0x3366FF, 1))
        members = rng.sample(users, min(len(users), 300))
        if owner not in members:
            members.append(owner)
        db.executemany("INSERT INTO members (community_id, user_id, joined_at) VALUES (?, ?, ?)",
                       [(cid, m, t0) for m in members])
        db.executemany("INSERT INTO member_roles VALUES (?, ?, ?)", [(cid, m, rid) for m in members[:5]])
        for k in range(a.channels_per_community):
            ch = new_id(t0)
            db.execute("INSERT INTO channels (id, community_id, kind, name, topic, position, created_at) "
                       "VALUES (?, ?, 'text', ?, ?, ?, ?)", (ch, cid, f"channel-{k}", f"topic {k}" if k % 2 else None, k, t0))
            if k == 1:
                db.execute("INSERT INTO overwrites VALUES (?, ?, 'role', 0, 1024)", (ch, cid))
            channels.append((ch, members))
    for d in range(200):
        x, y = rng.sample(users, 2)
        ch = new_id(t0)
        key = f"{min(x, y)}:{max(x, y)}"
        try:
            db.execute("INSERT INTO channels (id, kind, dm_key, created_at) VALUES (?, 'dm', ?, ?)", (ch, key, t0))
        except sqlite3.IntegrityError:
            continue
        db.executemany("INSERT INTO channel_recipients VALUES (?, ?)", [(ch, x), (ch, y)])
        channels.append((ch, [x, y]))
    db.commit()

    # Messages: channels by a skewed popularity, IDs increasing with time.
    weights = [1.0 / (i + 1) ** 0.8 for i in range(len(channels))]
    span = now - t0
    batch, reactions, last_in = [], [], {}
    emoji = ["👍", "🎉", "❤️", "😂", "🔥"]
    for i in range(a.messages):
        ms = t0 + span * i // a.messages
        mid = snowflake(ms, i)
        ch, members = rng.choices(channels, weights)[0]
        author = rng.choice(members)
        edited = ms + 60000 if i % 50 == 0 else None
        batch.append((mid, ch, author, content(rng), edited, None, "", "", False, "", i % 1000 == 0, None))
        last_in[ch] = (mid, members)
        if i % 20 == 0:
            reactions.append((ch, mid, rng.choice(emoji), rng.choice(members), ms))
        if len(batch) == 20000:
            db.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)
            db.executemany("INSERT OR IGNORE INTO reactions VALUES (?, ?, ?, ?, ?)", reactions)
            batch, reactions = [], []
    db.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)
    db.executemany("INSERT OR IGNORE INTO reactions VALUES (?, ?, ?, ?, ?)", reactions)
    reads = []
    for ch, (mid, members) in last_in.items():
        for u in members[:50]:
            reads.append((u, ch, mid, 0))
    db.executemany("INSERT OR IGNORE INTO read_states VALUES (?, ?, ?, ?)", reads)
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    print(f"{a.messages} messages, {a.users} users, {len(channels)} channels in {time.time() - start:.1f} s")


if __name__ == "__main__":
    main()
