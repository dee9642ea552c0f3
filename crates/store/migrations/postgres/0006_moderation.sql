-- The audit log (one row per audited change, written by the server's
-- durable consumer with the bus event's id, so a redelivery is stored once)
-- and each community's automod rules (one JSON list, validated by the
-- server before it is stored).
CREATE TABLE audit_log (
    id           BIGINT PRIMARY KEY,
    community_id BIGINT,
    actor_id     BIGINT,
    action       TEXT NOT NULL,
    target_kind  TEXT NOT NULL,
    target_id    BIGINT,
    reason       TEXT,
    changes      TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX audit_log_community ON audit_log (community_id, id);
CREATE INDEX audit_log_created ON audit_log (created_at);

CREATE TABLE automod_rules (
    community_id BIGINT PRIMARY KEY REFERENCES communities(id) ON DELETE CASCADE,
    rules        TEXT NOT NULL,
    updated_at   BIGINT NOT NULL
);
