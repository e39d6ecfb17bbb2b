-- Accounts of the auth plugin (plugins/auth).
-- Names are unique case-insensitively: `name_key` is the ASCII-lower-cased
-- name, `name` the spelling chosen at registration.
CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL,
    name_key      TEXT    NOT NULL UNIQUE,
    -- argon2id PHC string: algorithm, cost parameters, salt and hash.
    password_hash TEXT    NOT NULL,
    admin         INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    -- Milliseconds since the Unix epoch.
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    last_login_at INTEGER
) STRICT;

-- Changes made by the admin CLI (another process) that a running server must
-- act on, e.g. ending the sessions of a disabled account. The server polls
-- for rows with a `seq` above the last one it has seen.
CREATE TABLE account_events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    name_key TEXT    NOT NULL,
    event    TEXT    NOT NULL CHECK (event IN ('created', 'disabled', 'enabled', 'deleted', 'password_changed')),
    at       INTEGER NOT NULL
) STRICT;
