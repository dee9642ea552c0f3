-- Link previews (issue #11 item 6). link_previews is the cache per URL,
-- shared by every node: what a fetch of the URL found (found = FALSE for a
-- page that gave nothing, or that could not or must not be fetched), kept
-- until expires_at. message_embeds are the previews shown under a message,
-- copied from the cache when the message was unfurled, in the order of its
-- URLs; they go with the message. image_key names the WebP made of the
-- page's image in the blob store (emb/<id>.webp), shared by the cache row
-- and the embeds copied from it; a blob nothing names any more is collected.
CREATE TABLE link_previews (
    url          TEXT PRIMARY KEY,
    found        BOOLEAN NOT NULL,
    title        TEXT,
    description  TEXT,
    site_name    TEXT,
    author_name  TEXT,
    provider     TEXT NOT NULL,
    image_key    TEXT,
    image_width  INTEGER,
    image_height INTEGER,
    fetched_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX link_previews_expiry ON link_previews (expires_at);
CREATE INDEX link_previews_image ON link_previews (image_key);

CREATE TABLE message_embeds (
    id           BIGINT PRIMARY KEY,
    message_id   BIGINT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    url          TEXT NOT NULL,
    title        TEXT,
    description  TEXT,
    site_name    TEXT,
    author_name  TEXT,
    provider     TEXT NOT NULL,
    image_key    TEXT,
    image_width  INTEGER,
    image_height INTEGER,
    UNIQUE (message_id, position)
);
CREATE INDEX message_embeds_image ON message_embeds (image_key);
