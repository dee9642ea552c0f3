-- Mail (issue #13): the state of each user's address, the outbox the
-- server's mail worker sends from, and single-use account tokens (email
-- verification, password reset, email change), stored only as hashes.
ALTER TABLE users ADD COLUMN email_verified_at INTEGER;
ALTER TABLE users ADD COLUMN email_bounced_at INTEGER;

-- One row per mail. `dedupe_key` makes enqueueing idempotent (a welcome
-- mail per user, whatever the redeliveries). Status: queued, sending (held
-- by a worker until claimed_until), sent, failed (out of retries), bounced
-- (a permanent refusal). Bodies are cleared once a mail is done with: they
-- may hold a token's link.
CREATE TABLE mail_outbox (
    id              INTEGER PRIMARY KEY,
    dedupe_key      TEXT NOT NULL UNIQUE,
    user_id         INTEGER,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    text_body       TEXT NOT NULL,
    html_body       TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    claimed_until   INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    done_at         INTEGER
);
CREATE INDEX mail_outbox_due ON mail_outbox (status, next_attempt_at);

CREATE TABLE account_tokens (
    hash       TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL,
    email      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX account_tokens_user ON account_tokens (user_id, purpose);
