-- Private rooms of the rooms plugin (plugins/rooms).
-- Everything is keyed by account (`accounts.name_key`, the folded name), so
-- deleting an account with `chatd user delete` removes its memberships,
-- invitations and bans, and the rooms it owned (trigger below).
CREATE TABLE private_rooms (
    id         INTEGER PRIMARY KEY,
    -- The name as its creator spelled it, e.g. `#Team`.
    name       TEXT    NOT NULL,
    -- ASCII-lower-cased name; room names are unique case-insensitively.
    name_key   TEXT    NOT NULL UNIQUE,
    topic      TEXT,
    -- Milliseconds since the Unix epoch.
    created_at INTEGER NOT NULL
) STRICT;

-- Members, owner and moderators included (`role`).
CREATE TABLE private_room_members (
    room_id     INTEGER NOT NULL REFERENCES private_rooms (id) ON DELETE CASCADE,
    account_key TEXT    NOT NULL REFERENCES accounts (name_key) ON DELETE CASCADE,
    role        TEXT    NOT NULL CHECK (role IN ('owner', 'moderator', 'member')),
    since       INTEGER NOT NULL,
    PRIMARY KEY (room_id, account_key)
) STRICT;
-- Exactly one owner per room: at most one here, at least one by the plugin.
CREATE UNIQUE INDEX private_room_one_owner ON private_room_members (room_id) WHERE role = 'owner';
CREATE INDEX private_room_members_by_account ON private_room_members (account_key);

-- Invitations not yet accepted or declined.
CREATE TABLE private_room_invitations (
    room_id     INTEGER NOT NULL REFERENCES private_rooms (id) ON DELETE CASCADE,
    account_key TEXT    NOT NULL REFERENCES accounts (name_key) ON DELETE CASCADE,
    -- Who invited (folded account name; may since have been deleted).
    invited_by  TEXT    NOT NULL,
    invited_at  INTEGER NOT NULL,
    PRIMARY KEY (room_id, account_key)
) STRICT;
CREATE INDEX private_room_invitations_by_account ON private_room_invitations (account_key);

CREATE TABLE private_room_bans (
    room_id     INTEGER NOT NULL REFERENCES private_rooms (id) ON DELETE CASCADE,
    account_key TEXT    NOT NULL REFERENCES accounts (name_key) ON DELETE CASCADE,
    banned_by   TEXT    NOT NULL,
    reason      TEXT,
    banned_at   INTEGER NOT NULL,
    PRIMARY KEY (room_id, account_key)
) STRICT;

-- A room never outlives its owner's account.
CREATE TRIGGER private_rooms_of_deleted_owner BEFORE DELETE ON accounts
BEGIN
    DELETE FROM private_rooms WHERE id IN (
        SELECT room_id FROM private_room_members
        WHERE account_key = OLD.name_key AND role = 'owner');
END;
