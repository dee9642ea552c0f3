-- The embedded bus's journal: the event log kept for durable consumers
-- (search, moderation, notifications), its consumers' cursors and what they
-- gave up on. Only the journaler appends; positions are the bus log's.
CREATE TABLE event_journal (
    position     BIGINT PRIMARY KEY,
    id           TEXT NOT NULL,
    source       TEXT NOT NULL,
    type         TEXT NOT NULL,
    subject      TEXT NOT NULL,
    time         BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    data         BYTEA NOT NULL
);

CREATE TABLE consumer_cursors (
    name       TEXT PRIMARY KEY,
    position   BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE dead_letters (
    consumer     TEXT NOT NULL,
    position     BIGINT NOT NULL,
    id           TEXT NOT NULL,
    source       TEXT NOT NULL,
    type         TEXT NOT NULL,
    subject      TEXT NOT NULL,
    time         BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    data         BYTEA NOT NULL,
    error        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (consumer, position)
);
