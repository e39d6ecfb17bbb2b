//! Frames of the accounts plugin (`auth`), shared by the plugin and clients
//! so that they cannot drift apart. `docs/protocol.md`, section "Accounts
//! frames", is the normative description.
//!
//! Requests are one enum, [`AccountRequest`], serialised with their `type`
//! (a client library adds the `id`); `register`, `login` and `resume` are
//! answered with [`LoggedIn`], `whoami` with [`WhoAmI`], `passwd` and
//! `logout` with the core's `ok`. Their `Debug` output hides passwords and
//! tokens, so that a request can be logged.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::protocol::{ApiError, ErrorCode, Received, RequestId};

/// Error codes of the accounts frames (besides the core ones).
pub mod codes {
    use super::ErrorCode;

    /// The frame needs a logged-in session.
    pub const AUTH_REQUIRED: ErrorCode = ErrorCode::custom("auth_required");
    /// Unknown account or wrong password (deliberately the same).
    pub const AUTH_FAILED: ErrorCode = ErrorCode::custom("auth_failed");
    /// Too many failed logins for the account or the address, or too many
    /// registrations from the address; the message says for how long.
    pub const THROTTLED: ErrorCode = ErrorCode::custom("throttled");
    /// The password was right but an operator disabled the account.
    pub const ACCOUNT_DISABLED: ErrorCode = ErrorCode::custom("account_disabled");
    /// `register` with a name that is already registered.
    pub const ACCOUNT_EXISTS: ErrorCode = ErrorCode::custom("account_exists");
    /// A new password breaks the rules (length, control characters).
    pub const INVALID_PASSWORD: ErrorCode = ErrorCode::custom("invalid_password");
    /// `register` on a server with `registration = "closed"`.
    pub const REGISTRATION_CLOSED: ErrorCode = ErrorCode::custom("registration_closed");
    /// `login` or `register` on a session that is logged in.
    pub const ALREADY_LOGGED_IN: ErrorCode = ErrorCode::custom("already_logged_in");
    /// Passwords sent over plaintext while `allow_plaintext = false`.
    pub const TLS_REQUIRED: ErrorCode = ErrorCode::custom("tls_required");
    /// Too many password checks are queued; retry in a few seconds.
    pub const SERVER_BUSY: ErrorCode = ErrorCode::custom("server_busy");
    /// `resume` with a token that is unknown, expired or revoked.
    pub const INVALID_TOKEN: ErrorCode = ErrorCode::custom("invalid_token");
}

/// Client → server: the accounts requests.
///
/// New requests may appear within a protocol version: match with a `_` arm.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AccountRequest {
    /// Create an account and log in to it.
    Register {
        /// The account name (`name` is accepted as an alias).
        #[serde(alias = "name")]
        user: String,
        password: String,
    },
    /// Log in with a password.
    Login {
        /// The account name, in any letter case (`name` is accepted as an
        /// alias).
        #[serde(alias = "name")]
        user: String,
        password: String,
    },
    /// Log in with a resume token instead of the password.
    Resume {
        /// Absent: the token the transport carries (the browser's cookie).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        /// The newest message id the client has: what was missed after it
        /// is sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_msg_id: Option<u64>,
    },
    /// Change one's own password.
    Passwd {
        old_password: String,
        new_password: String,
    },
    /// Log out; the connection stays.
    Logout {
        /// Revoke every resume token of the account, not only this
        /// session's, and end its other sessions.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        everywhere: bool,
    },
    /// Who this session is logged in as.
    Whoami {},
}

impl AccountRequest {
    /// The value of the frame's `type` field.
    pub fn kind(&self) -> &'static str {
        match self {
            AccountRequest::Register { .. } => "register",
            AccountRequest::Login { .. } => "login",
            AccountRequest::Resume { .. } => "resume",
            AccountRequest::Passwd { .. } => "passwd",
            AccountRequest::Logout { .. } => "logout",
            AccountRequest::Whoami {} => "whoami",
        }
    }

    /// Every request's `type`.
    pub const KINDS: &'static [&'static str] =
        &["register", "login", "resume", "passwd", "logout", "whoami"];
}

/// Passwords and tokens never reach a log through `{:?}`.
impl fmt::Debug for AccountRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HIDDEN: &str = "<hidden>";
        match self {
            AccountRequest::Register { user, .. } => f
                .debug_struct("Register")
                .field("user", user)
                .field("password", &HIDDEN)
                .finish(),
            AccountRequest::Login { user, .. } => f
                .debug_struct("Login")
                .field("user", user)
                .field("password", &HIDDEN)
                .finish(),
            AccountRequest::Resume { token, last_msg_id } => f
                .debug_struct("Resume")
                .field("token", &token.as_ref().map(|_| HIDDEN))
                .field("last_msg_id", last_msg_id)
                .finish(),
            AccountRequest::Passwd { .. } => f
                .debug_struct("Passwd")
                .field("old_password", &HIDDEN)
                .field("new_password", &HIDDEN)
                .finish(),
            AccountRequest::Logout { everywhere } => f
                .debug_struct("Logout")
                .field("everywhere", everywhere)
                .finish(),
            AccountRequest::Whoami {} => f.write_str("Whoami"),
        }
    }
}

/// Server → client: reply to `register`, `login` and `resume`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "logged_in")]
pub struct LoggedIn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// The account name as registered (whatever case the client typed).
    pub user: String,
    /// The session's nickname: the account name.
    #[serde(default)]
    pub nick: String,
    #[serde(default)]
    pub admin: bool,
    /// Sent back with `resume` on a new connection instead of the
    /// password; absent when the server keeps no history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_token: Option<String>,
    /// When the token expires unless used again (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_expires: Option<u64>,
    /// Whether this login came from `resume`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resumed: bool,
}

impl LoggedIn {
    /// Decodes a `logged_in` frame (any other frame is an `invalid_frame`
    /// error).
    pub fn from_frame(frame: &Received) -> Result<LoggedIn, ApiError> {
        frame.decode_custom()
    }
}

/// The resume token never reaches a log through `{:?}`.
impl fmt::Debug for LoggedIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoggedIn")
            .field("id", &self.id)
            .field("user", &self.user)
            .field("nick", &self.nick)
            .field("admin", &self.admin)
            .field(
                "resume_token",
                &self.resume_token.as_ref().map(|_| "<hidden>"),
            )
            .field("token_expires", &self.token_expires)
            .field("resumed", &self.resumed)
            .finish()
    }
}

/// Server → client: reply to `whoami`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "whoami")]
pub struct WhoAmI {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// The account name; absent when not logged in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    pub admin: bool,
}
