//! How a session is told to stop, and why: shared by its reader, its
//! writer and the hub, which knows nothing else of the transport.

use std::sync::OnceLock;

use chat_api::ErrorCode;
use tokio_util::sync::CancellationToken;

/// Why a session ended, as told to the client in `bye`.
#[derive(Debug, Clone)]
pub struct CloseReason {
    pub code: ErrorCode,
    pub reason: String,
}

/// Tells a session's tasks to stop, and why.
#[derive(Debug)]
pub struct Closer {
    /// Child of the server's shutdown token: server shutdown closes every session.
    token: CancellationToken,
    /// The first reason given wins; none means the server is shutting down.
    reason: OnceLock<CloseReason>,
}

impl Closer {
    pub fn new(token: CancellationToken) -> Closer {
        Closer {
            token,
            reason: OnceLock::new(),
        }
    }

    /// Ends the session with a reason (the first call wins).
    pub fn close(&self, code: ErrorCode, reason: impl Into<String>) {
        let _ = self.reason.set(CloseReason {
            code,
            reason: reason.into(),
        });
        self.token.cancel();
    }

    pub fn is_closed(&self) -> bool {
        self.token.is_cancelled()
    }

    pub async fn closed(&self) {
        self.token.cancelled().await
    }

    /// The reason the session ended (server shutdown when none was given).
    pub fn reason(&self) -> CloseReason {
        self.reason.get().cloned().unwrap_or_else(|| CloseReason {
            code: ErrorCode::SHUTTING_DOWN,
            reason: "the server is shutting down".to_string(),
        })
    }
}
