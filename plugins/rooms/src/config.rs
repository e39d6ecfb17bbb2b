//! The plugin's `[plugin.config]` table.

use chat_api::{ConfigError, PluginConfig};
use serde::Deserialize;

/// Limits on private rooms; every one bounds what one account can make the
/// server store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoomsConfig {
    /// Rooms one account may own.
    pub max_rooms_per_owner: u32,
    /// Members plus pending invitations of one room.
    pub max_members: u32,
    /// Invitations waiting for one account (stops invitation spam).
    pub max_pending_invitations: u32,
    /// Longest topic, in characters.
    pub max_topic_length: usize,
}

impl Default for RoomsConfig {
    fn default() -> Self {
        RoomsConfig {
            max_rooms_per_owner: 20,
            max_members: 500,
            max_pending_invitations: 100,
            max_topic_length: 300,
        }
    }
}

impl RoomsConfig {
    /// Parses and checks the table.
    pub fn from_plugin_config(config: &PluginConfig) -> Result<RoomsConfig, ConfigError> {
        let parsed: RoomsConfig = config.parse()?;
        if parsed.max_rooms_per_owner == 0 {
            return Err(ConfigError::invalid(
                config,
                "max_rooms_per_owner must be at least 1 (disable the plugin to forbid private rooms)",
            ));
        }
        if parsed.max_members < 2 {
            return Err(ConfigError::invalid(
                config,
                "max_members must be at least 2 (the owner and one more)",
            ));
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> PluginConfig {
        PluginConfig {
            plugin: "rooms".into(),
            source: "test.toml".into(),
            toml: toml.into(),
        }
    }

    #[test]
    fn defaults_and_errors_name_the_key() {
        let c = RoomsConfig::from_plugin_config(&config("")).unwrap();
        assert_eq!(c.max_members, 500);
        let e = RoomsConfig::from_plugin_config(&config("max_member = 3")).unwrap_err();
        assert!(e.to_string().contains("max_member"), "{e}");
        let e = RoomsConfig::from_plugin_config(&config("max_members = 1")).unwrap_err();
        assert!(e.to_string().contains("max_members"), "{e}");
    }
}
