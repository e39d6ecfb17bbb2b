//! The session a hook call is for, across the boundary: chatd passes a
//! [`SessionRef`] (its session behind a context pointer, and a table of C
//! functions) with each call; inside the plugin, [`RemoteSession`] turns it
//! back into a [`Session`]. Valid for that call (and the future it returns)
//! only.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{AbiBuffer, AbiContext, AbiOutcome, AbiStr};
use crate::payload::Payload;
use crate::plugin::{Identity, Session, SessionId, Transport};
use crate::protocol::{ApiError, ErrorCode};

/// A session for the duration of one call.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SessionRef {
    pub ctx: AbiContext,
    pub vtable: *const SessionVTable,
}

// SAFETY: chatd's session may be used from any thread (`Session: Sync`),
// and the table is a static.
unsafe impl Send for SessionRef {}
// SAFETY: as above.
unsafe impl Sync for SessionRef {}

/// What a session is, as one JSON object ([`SessionVTable::info`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionInfo {
    pub id: SessionId,
    pub peer_addr: Option<SocketAddr>,
    pub transport: Transport,
    pub encrypted: bool,
    pub nick: Option<String>,
    pub account: Option<String>,
    pub admin: bool,
    pub transport_token: Option<String>,
}

/// The session's functions. Append-only: a new function goes at the end,
/// with a new ABI minor version; `size` tells how many there are.
#[repr(C)]
pub struct SessionVTable {
    /// `size_of::<SessionVTable>()` of the side that made it.
    pub size: usize,
    /// [`SessionInfo`] as JSON.
    pub info: unsafe extern "C" fn(ctx: AbiContext) -> AbiBuffer,
    /// Queues an encoded frame (one JSON object, no newline).
    pub send: unsafe extern "C" fn(ctx: AbiContext, frame: AbiStr) -> bool,
    /// `identity` is an [`Identity`] as JSON: `{"nick","account","admin"}`.
    pub set_identity:
        unsafe extern "C" fn(ctx: AbiContext, identity: AbiStr, replace: bool) -> AbiOutcome,
    pub clear_identity: unsafe extern "C" fn(ctx: AbiContext),
    pub close: unsafe extern "C" fn(ctx: AbiContext, code: AbiStr, reason: AbiStr),
}

/// [`Identity`] on the wire between the two sides.
#[derive(Serialize, Deserialize)]
pub struct IdentityJson {
    pub nick: String,
    pub account: Option<String>,
    pub admin: bool,
}

/// The plugin side's [`Session`]: chatd's session, through its table.
pub struct RemoteSession {
    session: SessionRef,
    /// Known at the start of the call and fixed for a session's life.
    id: SessionId,
}

impl RemoteSession {
    /// # Safety
    /// `session` must be what chatd passed to the current call, used only
    /// while that call (or the future it returned) runs.
    pub unsafe fn new(session: SessionRef) -> RemoteSession {
        let mut remote = RemoteSession { session, id: 0 };
        remote.id = remote.info().map_or(0, |info| info.id);
        remote
    }

    fn table(&self) -> &SessionVTable {
        // SAFETY: a static table of chatd's, valid while the call runs.
        unsafe { &*self.session.vtable }
    }

    fn info(&self) -> Option<SessionInfo> {
        // SAFETY: chatd's function for this context.
        unsafe { (self.table().info)(self.session.ctx) }.parse()
    }
}

impl Session for RemoteSession {
    fn id(&self) -> SessionId {
        self.id
    }
    fn peer_addr(&self) -> Option<SocketAddr> {
        self.info().and_then(|info| info.peer_addr)
    }
    fn transport(&self) -> Transport {
        self.info().map_or(Transport::Tcp, |info| info.transport)
    }
    fn is_encrypted(&self) -> bool {
        self.info().is_some_and(|info| info.encrypted)
    }
    fn nick(&self) -> Option<String> {
        self.info().and_then(|info| info.nick)
    }
    fn account(&self) -> Option<String> {
        self.info().and_then(|info| info.account)
    }
    fn is_admin(&self) -> bool {
        self.info().is_some_and(|info| info.admin)
    }
    fn send(&self, payload: Payload) -> bool {
        let frame = payload.json();
        // SAFETY: chatd's function; the bytes live through the call.
        unsafe { (self.table().send)(self.session.ctx, AbiStr::bytes(frame)) }
    }
    fn set_identity(&self, identity: Identity, replace: bool) -> Result<(), ApiError> {
        let json = serde_json::to_vec(&IdentityJson {
            nick: identity.nick,
            account: identity.account,
            admin: identity.admin,
        })
        .map_err(|e| ApiError::new(ErrorCode::INTERNAL, e.to_string()))?;
        // SAFETY: chatd's function; the bytes live through the call.
        let outcome = unsafe {
            (self.table().set_identity)(self.session.ctx, AbiStr::bytes(&json), replace)
        };
        outcome.into_result().map(drop)
    }
    fn clear_identity(&self) {
        // SAFETY: chatd's function for this context.
        unsafe { (self.table().clear_identity)(self.session.ctx) }
    }
    fn close(&self, code: ErrorCode, reason: &str) {
        // SAFETY: chatd's function; the strings live through the call.
        unsafe {
            (self.table().close)(self.session.ctx, AbiStr::new(&code.0), AbiStr::new(reason))
        }
    }
    fn transport_token(&self) -> Option<String> {
        self.info().and_then(|info| info.transport_token)
    }
}
