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

-- Files whose message, channel or community was deleted: when that
-- happened. The media collector deletes them (blob and row) once
-- `media.deleted_file_grace_secs` has passed since.
ALTER TABLE attachments ADD COLUMN orphaned_at BIGINT;
CREATE INDEX attachments_orphaned ON attachments (orphaned_at) WHERE orphaned_at IS NOT NULL;
