-- The embedded bus's journal: the event log kept for durable consumers
-- (search, moderation, notifications), its consumers' cursors and what they
-- gave up on. Only the journaler appends; positions are the bus log's.
CREATE TABLE event_journal (
    position     INTEGER PRIMARY KEY,
    id           TEXT NOT NULL,
    source       TEXT NOT NULL,
    type         TEXT NOT NULL,
    subject      TEXT NOT NULL,
    time         INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    data         BLOB NOT NULL
);

CREATE TABLE consumer_cursors (
    name       TEXT PRIMARY KEY,
    position   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE dead_letters (
    consumer     TEXT NOT NULL,
    position     INTEGER NOT NULL,
    id           TEXT NOT NULL,
    source       TEXT NOT NULL,
    type         TEXT NOT NULL,
    subject      TEXT NOT NULL,
    time         INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    data         BLOB NOT NULL,
    error        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (consumer, position)
);
