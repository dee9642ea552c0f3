-- Access-token signing keys (HS256 secrets), shared by every node on this
-- database. Kids are k1, k2, ... in order of creation; the newest active key
-- signs, every key not retired verifies. Times are Unix milliseconds.
CREATE TABLE signing_keys (
    kid        TEXT PRIMARY KEY,
    secret     BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER
);
