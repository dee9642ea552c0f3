-- Per-channel settings: the most members in a voice channel at once (0: no
-- limit), slowmode (seconds a member waits between messages; 0: off) and a
-- moderators' lock (only members with MANAGE_MESSAGES may send).
ALTER TABLE channels ADD COLUMN user_limit INTEGER NOT NULL DEFAULT 0;
ALTER TABLE channels ADD COLUMN slowmode_secs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE channels ADD COLUMN locked BOOLEAN NOT NULL DEFAULT FALSE;
