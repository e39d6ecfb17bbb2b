-- The message log (chatd/src/history): every room message, direct message
-- and broadcast the server accepted, with the id and text as delivered.
-- `conv` names the conversation: a room's folded name (`#rust`), two
-- parties' keys for a direct conversation (`alice bob`, sorted; an account's
-- key is its folded name, a guest's `~BOOT.SESSION`), or `*` for broadcasts.
CREATE TABLE messages (
    msg_id INTEGER PRIMARY KEY,
    -- Milliseconds since the Unix epoch, as delivered.
    ts     INTEGER NOT NULL,
    -- 0 room, 1 direct, 2 broadcast.
    kind   INTEGER NOT NULL CHECK (kind IN (0, 1, 2)),
    conv   TEXT    NOT NULL,
    sender TEXT    NOT NULL,
    -- The room (as spelled when the message was sent) or the recipient.
    target TEXT,
    text   TEXT    NOT NULL
) STRICT;
CREATE INDEX messages_by_conv ON messages (conv, msg_id);
CREATE INDEX messages_by_ts ON messages (ts);

-- Message ids are handed out ahead of storage; the server reserves blocks
-- here before using them, so ids never repeat across restarts.
CREATE TABLE message_ids (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    reserved_through INTEGER NOT NULL
) STRICT;
INSERT INTO message_ids (id, reserved_through) VALUES (1, 0);

-- Direct messages to an account that had no session; delivered (and the
-- row deleted) at its next login.
CREATE TABLE pending_direct (
    account_key TEXT    NOT NULL REFERENCES accounts (name_key) ON DELETE CASCADE,
    msg_id      INTEGER NOT NULL REFERENCES messages (msg_id) ON DELETE CASCADE,
    PRIMARY KEY (account_key, msg_id)
) STRICT;
CREATE INDEX pending_direct_by_msg ON pending_direct (msg_id);

-- An account's direct conversations, for listing them at login.
CREATE TABLE direct_conversations (
    account_key TEXT    NOT NULL REFERENCES accounts (name_key) ON DELETE CASCADE,
    conv        TEXT    NOT NULL,
    -- The other party's nickname, as last seen.
    peer        TEXT    NOT NULL,
    last_msg_id INTEGER NOT NULL,
    PRIMARY KEY (account_key, conv)
) STRICT;

-- Rooms an account is in, remembered across connections.
CREATE TABLE account_rooms (
    account_key TEXT NOT NULL REFERENCES accounts (name_key) ON DELETE CASCADE,
    room_key    TEXT NOT NULL,
    room        TEXT NOT NULL,
    PRIMARY KEY (account_key, room_key)
) STRICT;

-- The newest message an account has read, per conversation.
CREATE TABLE read_markers (
    account_key TEXT    NOT NULL REFERENCES accounts (name_key) ON DELETE CASCADE,
    conv        TEXT    NOT NULL,
    msg_id      INTEGER NOT NULL,
    PRIMARY KEY (account_key, conv)
) STRICT;

-- Resume tokens of the auth plugin: only their SHA-256 hash is stored.
CREATE TABLE resume_tokens (
    token_hash  BLOB    PRIMARY KEY,
    account_key TEXT    NOT NULL REFERENCES accounts (name_key) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX resume_tokens_by_account ON resume_tokens (account_key);

-- Deleting an account deletes its direct messages.
CREATE TRIGGER direct_messages_of_deleted_account BEFORE DELETE ON accounts
BEGIN
    DELETE FROM messages WHERE kind = 1 AND (
        substr(conv, 1, length(OLD.name_key) + 1) = OLD.name_key || ' '
        OR substr(conv, -(length(OLD.name_key) + 1)) = ' ' || OLD.name_key);
END;

-- Private rooms (plugins/rooms): a member reads only what was said since
-- joining. The newest stored message id when the membership began.
ALTER TABLE private_room_members ADD COLUMN since_msg_id INTEGER NOT NULL DEFAULT 0;

-- A deleted private room takes its history with it: a public room of the
-- same name later must not show what was said in private.
CREATE TRIGGER history_of_deleted_private_room AFTER DELETE ON private_rooms
BEGIN
    DELETE FROM messages WHERE kind = 0 AND conv = OLD.name_key;
    DELETE FROM read_markers WHERE conv = OLD.name_key;
END;
