//! Frames another node forwarded because this node holds what they are
//! about (a file transfer's bytes): this node's plugins handle each as the
//! other node's session's, and whatever they send that session goes back
//! to its node (`crate::cluster`'s relay).

use std::net::SocketAddr;
use std::sync::{Arc, Weak};

use chat_api::{
    ApiError, ErrorCode, Identity, Inbound, Payload, ServerFrame, SessionId, Transport, Verdict,
};

use crate::cluster::relay::{frame_text, ForwardedFrame, ForwardedFrames};
use crate::cluster::wire::Relay;
use crate::shared::Shared;

/// Runs forwarded frames through this node's pipeline.
pub struct Forwarded {
    shared: Weak<Shared>,
}

impl Forwarded {
    pub fn new(shared: &Arc<Shared>) -> Forwarded {
        Forwarded {
            shared: Arc::downgrade(shared),
        }
    }
}

impl ForwardedFrames for Forwarded {
    fn handle(&self, from_node: String, forwarded: ForwardedFrame) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            let view = RemoteSession {
                node: from_node,
                forwarded,
                shared: shared.clone(),
            };
            let mut frame = match Inbound::parse(view.forwarded.frame.as_bytes()) {
                Ok(frame) => frame,
                Err(e) => {
                    tracing::debug!(error = ?e, "a forwarded frame does not parse");
                    return;
                }
            };
            let id = frame.id;
            let refused = match shared.pipeline.process(&view, &mut frame).await {
                Verdict::Done => None,
                Verdict::Reject(error) => Some(error),
                Verdict::Continue => Some(ApiError::new(
                    ErrorCode::UNKNOWN_TYPE,
                    format!(
                        "'{}' cannot be forwarded to the node holding it",
                        frame.kind
                    ),
                )),
            };
            if let Some(error) = refused {
                chat_api::Session::send(&view, Payload::encode(&ServerFrame::error(id, &error)));
            }
        });
    }
}

/// Another node's session as this node's plugins see it.
struct RemoteSession {
    node: String,
    forwarded: ForwardedFrame,
    shared: Arc<Shared>,
}

impl RemoteSession {
    fn relay(&self, op: Relay) {
        if let Some(cluster) = &self.shared.cluster {
            cluster.relay(Some(&self.node), op);
        }
    }

    /// The session's own id on its node.
    fn session_there(&self) -> Option<SessionId> {
        let cluster = self.shared.cluster.as_ref()?;
        cluster.resolve(self.forwarded.session).map(|(_, id)| id)
    }
}

impl chat_api::Session for RemoteSession {
    fn id(&self) -> SessionId {
        self.forwarded.session
    }
    fn peer_addr(&self) -> Option<SocketAddr> {
        None
    }
    fn transport(&self) -> Transport {
        Transport::Tcp
    }
    fn nick(&self) -> Option<String> {
        Some(self.forwarded.nick.clone()).filter(|n| !n.is_empty())
    }
    fn account(&self) -> Option<String> {
        self.forwarded.account.clone()
    }
    fn is_admin(&self) -> bool {
        self.forwarded.admin
    }
    fn send(&self, payload: Payload) -> bool {
        let Some(session) = self.session_there() else {
            return false;
        };
        let frame = frame_text(&payload);
        self.relay(Relay::ToSession { session, frame });
        true
    }
    fn set_identity(&self, _identity: Identity, _replace: bool) -> Result<(), ApiError> {
        Err(ApiError::new(
            ErrorCode::FORBIDDEN,
            "a session's identity changes only on the node it is connected to",
        ))
    }
    fn clear_identity(&self) {}
    fn close(&self, code: ErrorCode, reason: &str) {
        if let Some(session) = self.session_there() {
            self.relay(Relay::Disconnect {
                session,
                code: code.as_str().to_string(),
                reason: reason.to_string(),
            });
        }
    }
}
