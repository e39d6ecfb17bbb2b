//! The accounts frames: one file per command (`register`, `login`,
//! `resume`, `passwd`, `logout` and `whoami`), and what they share.

mod login;
mod logout;
mod password;
mod register;
mod resume;

use chat_api::accounts::{AccountRequest, LoggedIn};
use chat_api::names::fold;
use chat_api::{ApiError, ErrorCode, HandlerError, HandlerResult, RequestId, Session, Verdict};

use crate::accounts::AccountError;
use crate::{reject, storage_failure, tokens, Inner};

/// A name and password from `register` or `login`.
pub(crate) struct Credentials {
    user: String,
    password: String,
}

/// Why a command stopped before its end: refused (the client gets an
/// `error` frame) or failed inside the server.
pub(crate) enum Stop {
    Refused(ApiError),
    Failed(HandlerError),
}

impl From<ApiError> for Stop {
    fn from(e: ApiError) -> Stop {
        Stop::Refused(e)
    }
}

impl From<HandlerError> for Stop {
    fn from(e: HandlerError) -> Stop {
        Stop::Failed(e)
    }
}

impl From<AccountError> for Stop {
    fn from(e: AccountError) -> Stop {
        Stop::Failed(storage_failure(e))
    }
}

/// A step of a command: its result, or why the command stops.
pub(crate) type Step<T> = Result<T, Stop>;

/// The verdict of a command that ran its steps.
fn done(step: Step<()>) -> HandlerResult {
    match step {
        Ok(()) => Ok(Verdict::Done),
        Err(Stop::Refused(e)) => Ok(Verdict::Reject(e)),
        Err(Stop::Failed(e)) => Err(e),
    }
}

fn logged_in(
    session: &dyn Session,
    id: Option<u64>,
    account: &str,
    admin: bool,
    token: Option<(&str, i64)>,
    resumed: bool,
) {
    session.send_frame(&LoggedIn {
        id,
        user: account.to_string(),
        nick: account.to_string(),
        admin,
        resume_token: token.map(|t| t.0.to_string()),
        token_expires: token.map(|t| u64::try_from(t.1).unwrap_or(0)),
        resumed,
    });
}

impl Inner {
    /// One of the accounts frames.
    pub(crate) async fn answer(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        request: AccountRequest,
    ) -> HandlerResult {
        match request {
            AccountRequest::Register { user, password } => {
                self.register(session, id, Credentials { user, password })
                    .await
            }
            AccountRequest::Login { user, password } => {
                self.login(session, id, Credentials { user, password })
                    .await
            }
            AccountRequest::Resume { token, .. } => self.resume(session, id, token).await,
            AccountRequest::Passwd {
                old_password,
                new_password,
            } => self.passwd(session, id, old_password, new_password).await,
            AccountRequest::Logout { everywhere } => self.logout(session, id, everywhere).await,
            AccountRequest::Whoami {} => self.whoami(session, id),
            // A request chat-protocol knows and this plugin does not yet.
            other => reject(
                ErrorCode::UNKNOWN_TYPE,
                format!("this server does not handle '{}' frames", other.kind()),
            ),
        }
    }

    /// A resume token for a session that just logged in. Logging in works
    /// without one (the client then cannot resume): a failure is logged.
    pub(crate) async fn issue_token(
        &self,
        session: &dyn Session,
        account: &str,
    ) -> Option<tokens::Issued> {
        match self.tokens.issue(&fold(account)).await {
            Ok(issued) => {
                self.session_tokens
                    .lock()
                    .unwrap()
                    .insert(session.id(), issued.hash.clone());
                Some(issued)
            }
            Err(e) => {
                tracing::warn!(%account, error = %e, "cannot issue a resume token");
                None
            }
        }
    }
}
