-- v1.1 trust rules: who may DM whom, blocks, and single-use TOTP codes.

-- "community_members" (the default) or "nobody".
ALTER TABLE users ADD COLUMN allow_dms_from TEXT NOT NULL DEFAULT 'community_members';
-- The last 30-second TOTP step accepted: a code for this step or an earlier one is spent.
ALTER TABLE users ADD COLUMN totp_last_step BIGINT;

CREATE TABLE user_blocks (
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    blocked_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, blocked_id)
);
CREATE INDEX user_blocks_by_blocked ON user_blocks(blocked_id);

-- Counting a user's group DMs of the last day.
CREATE INDEX channels_by_owner ON channels(owner_id, created_at);
