-- Erased accounts. The users row stays (messages, audit entries and DMs
-- keep pointing at it) but holds nothing of the person any more: a
-- tombstone username, no email, name, avatar, password or two-factor
-- secret. This row says that it happened, when, by whom, and whether the
-- account's messages were kept (shown as from a deleted user) or removed.
CREATE TABLE user_erasures (
    user_id   BIGINT PRIMARY KEY REFERENCES users(id),
    erased_by BIGINT,
    messages  TEXT NOT NULL,
    erased_at BIGINT NOT NULL
);
