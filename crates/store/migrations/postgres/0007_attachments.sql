-- Uploaded files (the media plane). The bytes live in the blob store under
-- blob_key; this row is what the server knows of them. An upload for a message
-- has its channel and no message_id until a send claims it; unclaimed rows
-- older than the upload TTL are collected (blob and row). Avatars have no
-- channel (purpose 'avatar'). content_type is what the bytes are (sniffed);
-- declared_type what the client said. width, height, blurhash and preview_key
-- are filled by the image pipeline; undecodable marks an "image" it refused.
CREATE TABLE attachments (
    id            BIGINT PRIMARY KEY,
    uploader_id   BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    channel_id    BIGINT,
    purpose       TEXT NOT NULL,
    filename      TEXT NOT NULL,
    declared_type TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    size          BIGINT NOT NULL,
    sha256        TEXT NOT NULL,
    blob_key      TEXT NOT NULL,
    width         INTEGER,
    height        INTEGER,
    blurhash      TEXT,
    preview_key   TEXT,
    undecodable   BOOLEAN NOT NULL DEFAULT FALSE,
    message_id    BIGINT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX attachments_message ON attachments (message_id);
CREATE INDEX attachments_unclaimed ON attachments (created_at) WHERE message_id IS NULL;
