//! # wordfilter: a built-in chatd plugin
//!
//! Limits the length of chat text and masks or refuses listed words in room
//! messages, direct messages and broadcasts. It shows the three things a
//! handler can do with a frame: pass it on unchanged, change it (masking),
//! or reject it with an error.
//!
//! ```toml
//! [[plugin]]
//! name = "wordfilter"
//! [plugin.config]
//! max_length = 4000      # characters
//! words = ["darn"]       # case-insensitive, whole words
//! action = "mask"        # or "reject"
//! ```
//!
//! All three settings can change while the server runs (`chatd reload`);
//! the next message is checked against the new ones.

use std::sync::Arc;

use arc_swap::ArcSwap;
use chat_api::{
    async_trait, ApiError, ClientFrame, ConfigError, ErrorCode, HandlerResult, Inbound,
    MessageHandler, PluginConfig, Reconfigured, Request, Session, Verdict,
};
use serde::Deserialize;

/// What to do with a listed word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Replace the word with asterisks and deliver the message.
    Mask,
    /// Refuse the whole message.
    Reject,
}

/// The plugin's `[plugin.config]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WordFilterConfig {
    /// Longest text in characters.
    pub max_length: usize,
    pub words: Vec<String>,
    pub action: Action,
}

impl Default for WordFilterConfig {
    fn default() -> Self {
        WordFilterConfig {
            max_length: 4000,
            words: Vec::new(),
            action: Action::Mask,
        }
    }
}

/// The handler: its rules, replaced whole by a reload.
pub struct WordFilter {
    rules: ArcSwap<Rules>,
}

/// The checked settings a message is filtered by.
struct Rules {
    max_length: usize,
    /// Lower-cased words.
    words: Vec<String>,
    action: Action,
}

impl WordFilter {
    pub fn from_config(config: &PluginConfig) -> Result<WordFilter, ConfigError> {
        Ok(WordFilter {
            rules: ArcSwap::from_pointee(Rules::from_config(config)?),
        })
    }
}

impl Rules {
    fn from_config(config: &PluginConfig) -> Result<Rules, ConfigError> {
        let c: WordFilterConfig = config.parse()?;
        if c.max_length == 0 {
            return Err(ConfigError::invalid(
                config,
                "max_length must be at least 1",
            ));
        }
        if let Some(bad) = c
            .words
            .iter()
            .find(|w| w.trim().is_empty() || w.contains(char::is_whitespace))
        {
            return Err(ConfigError::invalid(
                config,
                format!("words must be single words, got {bad:?}"),
            ));
        }
        Ok(Rules {
            max_length: c.max_length,
            words: c.words.iter().map(|w| w.to_lowercase()).collect(),
            action: c.action,
        })
    }

    /// Masks listed words; returns the new text if anything changed.
    fn mask(&self, text: &str) -> Option<String> {
        if self.words.is_empty() {
            return None;
        }
        let mut out = String::with_capacity(text.len());
        let mut changed = false;
        let mut word = String::new();
        let mut flush = |word: &mut String, out: &mut String| {
            if !word.is_empty() {
                if self.words.contains(&word.to_lowercase()) {
                    out.extend(std::iter::repeat_n('*', word.chars().count()));
                    changed = true;
                } else {
                    out.push_str(word);
                }
                word.clear();
            }
        };
        for c in text.chars() {
            if c.is_alphanumeric() || c == '\'' {
                word.push(c);
            } else {
                flush(&mut word, &mut out);
                out.push(c);
            }
        }
        flush(&mut word, &mut out);
        changed.then_some(out)
    }
}

#[async_trait]
impl MessageHandler for WordFilter {
    fn name(&self) -> &str {
        "wordfilter"
    }

    fn reconfigure(&self, config: &PluginConfig) -> Result<Reconfigured, ConfigError> {
        self.rules.store(Arc::new(Rules::from_config(config)?));
        Ok(Reconfigured::Applied)
    }

    async fn on_frame(&self, _session: &dyn Session, frame: &mut Inbound) -> HandlerResult {
        let rules = self.rules.load();
        let text = match &mut frame.request {
            Request::Core(
                ClientFrame::Say { text, .. }
                | ClientFrame::Msg { text, .. }
                | ClientFrame::Broadcast { text },
            ) => text,
            _ => return Ok(Verdict::Continue),
        };
        let length = text.chars().count();
        if length > rules.max_length {
            return Ok(Verdict::Reject(ApiError::new(
                ErrorCode::REJECTED,
                format!(
                    "message too long: {length} characters, at most {} allowed",
                    rules.max_length
                ),
            )));
        }
        if let Some(masked) = rules.mask(text) {
            match rules.action {
                Action::Mask => *text = masked,
                Action::Reject => {
                    return Ok(Verdict::Reject(ApiError::new(
                        ErrorCode::REJECTED,
                        "message refused: it contains a word this server does not allow",
                    )))
                }
            }
        }
        Ok(Verdict::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(words: &[&str]) -> Rules {
        Rules {
            max_length: 10,
            words: words.iter().map(|w| w.to_string()).collect(),
            action: Action::Mask,
        }
    }

    #[test]
    fn masks_whole_words_case_insensitively() {
        let f = filter(&["darn"]);
        assert_eq!(
            f.mask("Darn it, darnit darn!").as_deref(),
            Some("**** it, darnit ****!")
        );
        assert_eq!(f.mask("all fine"), None);
    }

    #[test]
    fn config_rejects_unknown_keys_and_bad_values() {
        let cfg = |toml: &str| PluginConfig {
            plugin: "wordfilter".into(),
            source: "test.toml".into(),
            toml: toml.into(),
        };
        assert!(WordFilter::from_config(&cfg("max_lenght = 3")).is_err());
        assert!(WordFilter::from_config(&cfg("max_length = 0")).is_err());
        assert!(WordFilter::from_config(&cfg("words = [\"two words\"]")).is_err());
        assert!(WordFilter::from_config(&cfg("action = \"reject\"")).is_ok());
    }

    #[test]
    fn reconfigure_replaces_the_word_list_and_keeps_it_on_error() {
        let cfg = |toml: &str| PluginConfig {
            plugin: "wordfilter".into(),
            source: "test.toml".into(),
            toml: toml.into(),
        };
        let f = WordFilter::from_config(&cfg("words = [\"darn\"]")).unwrap();
        assert_eq!(
            f.reconfigure(&cfg("words = [\"heck\"]")).unwrap(),
            Reconfigured::Applied
        );
        assert_eq!(
            f.rules.load().mask("darn heck").as_deref(),
            Some("darn ****")
        );
        assert!(f.reconfigure(&cfg("words = [\"two words\"]")).is_err());
        assert_eq!(f.rules.load().words, vec!["heck".to_string()]);
    }
}
