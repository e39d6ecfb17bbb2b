//! # dice: a third-party chatd plugin for tabletop rooms
//!
//! Built as a shared library and loaded by chatd at start; it depends on
//! `chat-api` alone. It is also the worked example of `docs/plugins.md`.
//!
//! * In a room (or a direct message), `/roll 2d6+1 for damage` is replaced by
//!   the result, `🎲 2d6+1 for damage: 4 + 2 + 1 = 7`, and delivered as the
//!   sender's message: everyone sees the same roll, nobody can re-roll in
//!   private first. `/roll` alone rolls the configured default.
//! * The `roll` frame rolls privately: `{"type":"roll","dice":"3d6"}` is
//!   answered with `{"type":"rolled","dice":"3d6","rolls":[..],"modifier":0,"total":..}`
//!   to the sender only.
//!
//! ```toml
//! [[plugin]]
//! name = "dice"
//! path = "plugins/libchatd_plugin_dice.so"
//! [plugin.config]
//! command = "/roll"      # the chat command
//! max_dice = 20          # dice per roll
//! max_sides = 1000       # sides per die
//! default_dice = "1d6"   # what `/roll` alone rolls
//! ```

use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use chat_api::serde::{Deserialize, Serialize};
use chat_api::{
    async_trait, ApiError, ClientFrame, ConfigError, ErrorCode, HandlerResult, Inbound,
    MessageHandler, PluginContext, Request, RequestId, Session, Verdict,
};

chat_api::export_plugin!("dice", Dice::from_context);

/// Refusals of this plugin: the text says what was wrong and how to write it.
pub const INVALID_DICE: ErrorCode = ErrorCode::custom("invalid_dice");

/// Largest modifier (`+M` / `-M`) accepted.
const MAX_MODIFIER: i64 = 1_000_000;

/// The plugin's `[plugin.config]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(crate = "chat_api::serde", deny_unknown_fields, default)]
pub struct DiceConfig {
    /// The chat command, e.g. `/roll`.
    pub command: String,
    /// Most dice in one roll (bounds the reply's length).
    pub max_dice: u32,
    /// Most sides a die may have.
    pub max_sides: u32,
    /// What the command rolls without an argument.
    pub default_dice: String,
}

impl Default for DiceConfig {
    fn default() -> Self {
        DiceConfig {
            command: "/roll".to_string(),
            max_dice: 20,
            max_sides: 1000,
            default_dice: "1d6".to_string(),
        }
    }
}

/// A parsed `NdS+M`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiceSpec {
    pub count: u32,
    pub sides: u32,
    pub modifier: i64,
}

impl std::fmt::Display for DiceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}d{}", self.count, self.sides)?;
        match self.modifier {
            0 => Ok(()),
            m if m > 0 => write!(f, "+{m}"),
            m => write!(f, "{m}"),
        }
    }
}

/// The result of one roll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roll {
    pub spec: DiceSpec,
    pub rolls: Vec<u32>,
    pub total: i64,
}

impl Roll {
    /// The chat line that replaces the command, e.g. `🎲 2d6+1: 4 + 2 + 1 = 7`.
    pub fn describe(&self, label: &str) -> String {
        let mut text = format!("🎲 {}", self.spec);
        if !label.is_empty() {
            text.push(' ');
            text.push_str(label);
        }
        text.push_str(": ");
        if self.rolls.len() == 1 && self.spec.modifier == 0 {
            let _ = write!(text, "{}", self.total);
            return text;
        }
        let rolls: Vec<String> = self.rolls.iter().map(u32::to_string).collect();
        text.push_str(&rolls.join(" + "));
        match self.spec.modifier {
            0 => {}
            m if m > 0 => {
                let _ = write!(text, " + {m}");
            }
            m => {
                let _ = write!(text, " - {}", -m);
            }
        }
        let _ = write!(text, " = {}", self.total);
        text
    }
}

/// The `roll` frame (a private roll).
#[derive(Debug, Deserialize)]
#[serde(crate = "chat_api::serde")]
struct RollRequest {
    /// Absent: the configured default.
    #[serde(default)]
    dice: Option<String>,
}

/// The reply to `roll`.
#[derive(Debug, Serialize)]
#[serde(crate = "chat_api::serde", tag = "type", rename = "rolled")]
struct Rolled {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<RequestId>,
    dice: String,
    rolls: Vec<u32>,
    modifier: i64,
    total: i64,
}

/// The handler.
pub struct Dice {
    command: String,
    max_dice: u32,
    max_sides: u32,
    default_dice: DiceSpec,
    rng: SplitMix64,
}

impl Dice {
    /// Builds the handler from its configuration (the constructor exported
    /// to chatd).
    pub fn from_context(context: PluginContext) -> Result<Dice, ConfigError> {
        let config = &context.config;
        let c: DiceConfig = config.parse()?;
        if !c.command.starts_with('/')
            || c.command.len() < 2
            || c.command.contains(char::is_whitespace)
        {
            return Err(ConfigError::invalid(
                config,
                format!(
                    "command must be one word starting with '/', got {:?}",
                    c.command
                ),
            ));
        }
        if !(1..=1000).contains(&c.max_dice) {
            return Err(ConfigError::invalid(
                config,
                "max_dice must be between 1 and 1000",
            ));
        }
        if !(1..=1_000_000).contains(&c.max_sides) {
            return Err(ConfigError::invalid(
                config,
                "max_sides must be between 1 and 1000000",
            ));
        }
        let mut dice = Dice {
            command: c.command,
            max_dice: c.max_dice,
            max_sides: c.max_sides,
            default_dice: DiceSpec {
                count: 1,
                sides: 6,
                modifier: 0,
            },
            rng: SplitMix64::seeded(),
        };
        dice.default_dice = dice
            .parse(&c.default_dice)
            .map_err(|e| ConfigError::invalid(config, format!("default_dice: {}", e.message)))?;
        Ok(dice)
    }

    /// Parses `NdS`, `dS`, `NdS+M` or `NdS-M` within the configured limits.
    pub fn parse(&self, text: &str) -> Result<DiceSpec, ApiError> {
        let usage = || {
            ApiError::new(
                INVALID_DICE,
                format!(
                    "cannot roll {text:?}: write NdS+M, for example {} 2d6+1",
                    self.command
                ),
            )
        };
        let lower = text.trim().to_ascii_lowercase();
        let (count, rest) = lower.split_once('d').ok_or_else(usage)?;
        let count: u32 = if count.is_empty() {
            1
        } else {
            count.parse().map_err(|_| usage())?
        };
        let (sides, modifier) = match rest.find(['+', '-']) {
            Some(at) => {
                let modifier: i64 = rest[at..].parse().map_err(|_| usage())?;
                (&rest[..at], modifier)
            }
            None => (rest, 0),
        };
        let sides: u32 = sides.parse().map_err(|_| usage())?;
        if count == 0 || count > self.max_dice {
            return Err(ApiError::new(
                INVALID_DICE,
                format!("roll 1 to {} dice at a time", self.max_dice),
            ));
        }
        if sides == 0 || sides > self.max_sides {
            return Err(ApiError::new(
                INVALID_DICE,
                format!("dice have 1 to {} sides here", self.max_sides),
            ));
        }
        if modifier.abs() > MAX_MODIFIER {
            return Err(ApiError::new(
                INVALID_DICE,
                format!("the modifier must be between -{MAX_MODIFIER} and +{MAX_MODIFIER}"),
            ));
        }
        Ok(DiceSpec {
            count,
            sides,
            modifier,
        })
    }

    /// Rolls the dice.
    pub fn roll(&self, spec: DiceSpec) -> Roll {
        let rolls: Vec<u32> = (0..spec.count)
            .map(|_| 1 + self.rng.below(u64::from(spec.sides)) as u32)
            .collect();
        let total = rolls.iter().map(|&r| i64::from(r)).sum::<i64>() + spec.modifier;
        Roll { spec, rolls, total }
    }

    /// If `text` is the roll command, its argument (possibly empty).
    fn command_argument<'t>(&self, text: &'t str) -> Option<&'t str> {
        let rest = text.strip_prefix(&self.command)?;
        if rest.is_empty() {
            Some(rest)
        } else if rest.starts_with(char::is_whitespace) {
            Some(rest.trim())
        } else {
            None
        }
    }

    /// `2d6+1 for damage` → the chat line describing the roll.
    fn roll_command(&self, argument: &str) -> Result<String, ApiError> {
        let (dice, label) = match argument.split_once(char::is_whitespace) {
            Some((dice, label)) => (dice, label.trim()),
            None => (argument, ""),
        };
        let spec = if dice.is_empty() {
            self.default_dice
        } else {
            self.parse(dice)?
        };
        Ok(self.roll(spec).describe(label))
    }
}

#[async_trait]
impl MessageHandler for Dice {
    fn name(&self) -> &str {
        "dice"
    }

    fn features(&self) -> Vec<String> {
        vec!["dice".to_string()]
    }

    async fn on_frame(&self, session: &dyn Session, frame: &mut Inbound) -> HandlerResult {
        match &mut frame.request {
            Request::Core(ClientFrame::Say { text, .. } | ClientFrame::Msg { text, .. }) => {
                let Some(argument) = self.command_argument(text) else {
                    return Ok(Verdict::Continue);
                };
                match self.roll_command(argument) {
                    Ok(line) => {
                        // The core delivers the rewritten message as usual.
                        *text = line;
                        Ok(Verdict::Continue)
                    }
                    Err(error) => Ok(Verdict::Reject(error)),
                }
            }
            Request::Custom(_) if frame.kind == "roll" => {
                let request: RollRequest = match frame.decode_custom() {
                    Ok(request) => request,
                    Err(error) => return Ok(Verdict::Reject(error)),
                };
                let spec = match request.dice.as_deref() {
                    None => self.default_dice,
                    Some(dice) => match self.parse(dice) {
                        Ok(spec) => spec,
                        Err(error) => return Ok(Verdict::Reject(error)),
                    },
                };
                let roll = self.roll(spec);
                session.send_frame(&Rolled {
                    id: frame.id,
                    dice: spec.to_string(),
                    rolls: roll.rolls,
                    modifier: spec.modifier,
                    total: roll.total,
                });
                Ok(Verdict::Done)
            }
            _ => Ok(Verdict::Continue),
        }
    }
}

/// A small, fast pseudo-random generator (SplitMix64), shared by all
/// sessions without a lock. Dice need fairness, not secrecy; this keeps the
/// plugin free of dependencies beyond `chat-api`.
struct SplitMix64 {
    state: AtomicU64,
}

impl SplitMix64 {
    const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

    /// Seeded from the process's random hash keys and the clock.
    fn seeded() -> SplitMix64 {
        let mut hasher = RandomState::new().build_hasher();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        hasher.write_u128(nanos);
        SplitMix64 {
            state: AtomicU64::new(hasher.finish()),
        }
    }

    fn next(&self) -> u64 {
        let mut z = self
            .state
            .fetch_add(Self::GAMMA, Ordering::Relaxed)
            .wrapping_add(Self::GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (rejection sampling, so no die face is favoured).
    fn below(&self, n: u64) -> u64 {
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let x = self.next();
            if x < zone {
                return x % n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dice() -> Dice {
        Dice {
            command: "/roll".into(),
            max_dice: 10,
            max_sides: 100,
            default_dice: DiceSpec {
                count: 1,
                sides: 6,
                modifier: 0,
            },
            rng: SplitMix64::seeded(),
        }
    }

    #[test]
    fn parses_the_usual_notations() {
        let d = dice();
        assert_eq!(
            d.parse("2d6").unwrap(),
            DiceSpec {
                count: 2,
                sides: 6,
                modifier: 0
            }
        );
        assert_eq!(
            d.parse("d20").unwrap(),
            DiceSpec {
                count: 1,
                sides: 20,
                modifier: 0
            }
        );
        assert_eq!(
            d.parse("3D8+2").unwrap(),
            DiceSpec {
                count: 3,
                sides: 8,
                modifier: 2
            }
        );
        assert_eq!(
            d.parse("1d4-1").unwrap(),
            DiceSpec {
                count: 1,
                sides: 4,
                modifier: -1
            }
        );
        assert_eq!(d.parse("3d8+2").unwrap().to_string(), "3d8+2");
    }

    #[test]
    fn refuses_nonsense_and_excess() {
        let d = dice();
        for bad in [
            "", "banana", "2x6", "d", "2d", "2d6+", "2d6+x", "-1d6", "2d6 7",
        ] {
            let error = d.parse(bad).unwrap_err();
            assert_eq!(error.code, INVALID_DICE, "{bad}");
            assert!(error.message.contains("NdS+M"), "{bad}: {}", error.message);
        }
        assert!(d
            .parse("11d6")
            .unwrap_err()
            .message
            .contains("1 to 10 dice"));
        assert!(d.parse("0d6").unwrap_err().message.contains("1 to 10 dice"));
        assert!(d
            .parse("1d101")
            .unwrap_err()
            .message
            .contains("1 to 100 sides"));
        assert!(d
            .parse("1d6+1000001")
            .unwrap_err()
            .message
            .contains("modifier"));
    }

    #[test]
    fn rolls_stay_on_the_dice() {
        let d = dice();
        let spec = d.parse("10d6-3").unwrap();
        for _ in 0..100 {
            let roll = d.roll(spec);
            assert_eq!(roll.rolls.len(), 10);
            assert!(roll.rolls.iter().all(|r| (1..=6).contains(r)));
            assert_eq!(
                roll.total,
                roll.rolls.iter().map(|&r| i64::from(r)).sum::<i64>() - 3
            );
        }
    }

    #[test]
    fn describes_rolls_for_people() {
        let roll = |count, sides, modifier, rolls: &[u32], total| Roll {
            spec: DiceSpec {
                count,
                sides,
                modifier,
            },
            rolls: rolls.to_vec(),
            total,
        };
        assert_eq!(roll(1, 20, 0, &[17], 17).describe(""), "🎲 1d20: 17");
        assert_eq!(
            roll(2, 6, 1, &[4, 2], 7).describe("for damage"),
            "🎲 2d6+1 for damage: 4 + 2 + 1 = 7"
        );
        assert_eq!(roll(1, 4, -1, &[3], 2).describe(""), "🎲 1d4-1: 3 - 1 = 2");
    }

    #[test]
    fn recognises_only_the_command() {
        let d = dice();
        assert_eq!(d.command_argument("/roll"), Some(""));
        assert_eq!(d.command_argument("/roll  2d6 x"), Some("2d6 x"));
        assert_eq!(d.command_argument("/rolling"), None);
        assert_eq!(d.command_argument("I /roll"), None);
        assert!(d.roll_command("").unwrap().starts_with("🎲 1d6: "));
    }
}
