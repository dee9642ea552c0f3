-- Resumable uploads in progress (issue #11). The row is the upload's
-- state, shared by every node: what it will be (channel, name, declared
-- size) and how many bytes arrived (`received`). The bytes themselves are
-- in the blob store, one object per accepted chunk (`upload_parts`, in
-- order by `part_start`); on the last byte they are concatenated into
-- `att/<id>`, the attachment row (same id) is inserted and these rows go in
-- one transaction. Unfinished uploads are collected after `expires_at`.
CREATE TABLE uploads (
    id            BIGINT PRIMARY KEY,
    uploader_id   BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    channel_id    BIGINT NOT NULL,
    filename      TEXT NOT NULL,
    declared_type TEXT NOT NULL,
    size          BIGINT NOT NULL,
    received      BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX uploads_uploader ON uploads (uploader_id);
CREATE INDEX uploads_expiry ON uploads (expires_at);

-- One accepted chunk: bytes [part_start, part_start + size) of the upload.
CREATE TABLE upload_parts (
    upload_id  BIGINT NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
    part_start BIGINT NOT NULL,
    size       BIGINT NOT NULL,
    blob_key   TEXT NOT NULL,
    PRIMARY KEY (upload_id, part_start)
);

-- The per-user quota sums a user's files.
CREATE INDEX attachments_uploader ON attachments (uploader_id);
