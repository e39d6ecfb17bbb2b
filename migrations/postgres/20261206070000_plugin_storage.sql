-- The key-value stores of shared-library plugins (chatd/src/dynamic/storage.rs);
-- the PostgreSQL twin of ../sqlite/20261206070000_plugin_storage.sql.
CREATE TABLE plugin_kv (
    plugin TEXT  COLLATE "C" NOT NULL,
    key    TEXT  COLLATE "C" NOT NULL,
    value  BYTEA NOT NULL,
    PRIMARY KEY (plugin, key)
);
