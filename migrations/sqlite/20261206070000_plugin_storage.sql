-- The key-value stores of shared-library plugins (Host::kv_put ..., plugin
-- ABI 1.1; chatd/src/dynamic/storage.rs). One namespace per plugin, named
-- as in chatd.toml; limits (key and value size, keys per plugin) are
-- enforced by chatd and documented in docs/plugins.md.
CREATE TABLE plugin_kv (
    plugin TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  BLOB NOT NULL,
    PRIMARY KEY (plugin, key)
) STRICT, WITHOUT ROWID;
