-- The message log (chatd/src/history); the PostgreSQL twin of
-- ../sqlite/20261206010000_history.sql, which explains each table.
CREATE TABLE messages (
    msg_id BIGINT PRIMARY KEY,
    ts     BIGINT NOT NULL,
    -- 0 room, 1 direct, 2 broadcast.
    kind   BIGINT NOT NULL CHECK (kind IN (0, 1, 2)),
    conv   TEXT   COLLATE "C" NOT NULL,
    sender TEXT   NOT NULL,
    target TEXT,
    text   TEXT   NOT NULL
);
CREATE INDEX messages_by_conv ON messages (conv, msg_id);
CREATE INDEX messages_by_ts ON messages (ts);

CREATE TABLE message_ids (
    id               BIGINT PRIMARY KEY CHECK (id = 1),
    reserved_through BIGINT NOT NULL
);
INSERT INTO message_ids (id, reserved_through) VALUES (1, 0);

CREATE TABLE pending_direct (
    account_key TEXT   COLLATE "C" NOT NULL REFERENCES accounts (name_key) ON DELETE CASCADE,
    msg_id      BIGINT NOT NULL REFERENCES messages (msg_id) ON DELETE CASCADE,
    PRIMARY KEY (account_key, msg_id)
);
CREATE INDEX pending_direct_by_msg ON pending_direct (msg_id);

CREATE TABLE direct_conversations (
    account_key TEXT   COLLATE "C" NOT NULL REFERENCES accounts (name_key) ON DELETE CASCADE,
    conv        TEXT   COLLATE "C" NOT NULL,
    peer        TEXT   NOT NULL,
    last_msg_id BIGINT NOT NULL,
    PRIMARY KEY (account_key, conv)
);

CREATE TABLE account_rooms (
    account_key TEXT COLLATE "C" NOT NULL REFERENCES accounts (name_key) ON DELETE CASCADE,
    room_key    TEXT COLLATE "C" NOT NULL,
    room        TEXT NOT NULL,
    PRIMARY KEY (account_key, room_key)
);

CREATE TABLE read_markers (
    account_key TEXT   COLLATE "C" NOT NULL REFERENCES accounts (name_key) ON DELETE CASCADE,
    conv        TEXT   COLLATE "C" NOT NULL,
    msg_id      BIGINT NOT NULL,
    PRIMARY KEY (account_key, conv)
);

-- Resume tokens of the auth plugin: only their SHA-256 hash is stored.
CREATE TABLE resume_tokens (
    token_hash  BYTEA  PRIMARY KEY,
    account_key TEXT   COLLATE "C" NOT NULL REFERENCES accounts (name_key) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX resume_tokens_by_account ON resume_tokens (account_key);

-- Deleting an account deletes its direct messages.
CREATE FUNCTION direct_messages_of_deleted_account() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM messages WHERE kind = 1 AND (
        left(conv, length(OLD.name_key) + 1) = OLD.name_key || ' '
        OR right(conv, length(OLD.name_key) + 1) = ' ' || OLD.name_key);
    RETURN OLD;
END;
$$;
CREATE TRIGGER direct_messages_of_deleted_account BEFORE DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION direct_messages_of_deleted_account();

-- Private rooms: a member reads only what was said since joining.
ALTER TABLE private_room_members ADD COLUMN since_msg_id BIGINT NOT NULL DEFAULT 0;

-- A deleted private room takes its history with it.
CREATE FUNCTION history_of_deleted_private_room() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM messages WHERE kind = 0 AND conv = OLD.name_key;
    DELETE FROM read_markers WHERE conv = OLD.name_key;
    RETURN OLD;
END;
$$;
CREATE TRIGGER history_of_deleted_private_room AFTER DELETE ON private_rooms
    FOR EACH ROW EXECUTE FUNCTION history_of_deleted_private_room();
