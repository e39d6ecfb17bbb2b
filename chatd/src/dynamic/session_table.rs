//! chatd's side of [`SessionRef`]: a session lent to one plugin call, as a
//! context pointer and a static table of C functions.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use chat_api::plugin_abi::{
    AbiBuffer, AbiContext, AbiOutcome, AbiStr, IdentityJson, SessionInfo, SessionRef, SessionVTable,
};
use chat_api::{ErrorCode, Identity, Payload, Session};

/// Lends `session` (through the pointer to the reference `holder`, which
/// must stay where it is while the plugin call runs).
pub fn lend(holder: &&dyn Session) -> SessionRef {
    SessionRef {
        ctx: AbiContext((holder as *const &dyn Session).cast::<c_void>()),
        vtable: &VTABLE,
    }
}

static VTABLE: SessionVTable = SessionVTable {
    size: std::mem::size_of::<SessionVTable>(),
    info,
    send,
    set_identity,
    clear_identity,
    close,
};

/// The session behind a context, for one call.
///
/// # Safety
/// `ctx` must come from [`lend`], during the call it was lent for.
unsafe fn session<'a>(ctx: AbiContext) -> &'a dyn Session {
    // SAFETY: the caller's guarantee.
    unsafe { *ctx.0.cast::<&dyn Session>() }
}

/// Runs `f`, never letting a panic unwind into the plugin.
fn guard<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// A frame from a plugin (one JSON object, no newline) as a payload; `None`
/// if it would break the line framing.
pub fn payload(frame: AbiStr) -> Option<Payload> {
    // SAFETY: the plugin's bytes, valid for the call (every caller's
    // contract).
    let json = unsafe { frame.as_bytes() };
    if json.is_empty() || json.contains(&b'\n') {
        return None;
    }
    let mut line = Vec::with_capacity(json.len() + 1);
    line.extend_from_slice(json);
    line.push(b'\n');
    Some(Payload::from_line(line.into()))
}

unsafe extern "C" fn info(ctx: AbiContext) -> AbiBuffer {
    guard(AbiBuffer::EMPTY, || {
        // SAFETY: the plugin calls with the context it was lent.
        let session = unsafe { session(ctx) };
        AbiBuffer::json(&SessionInfo {
            id: session.id(),
            peer_addr: session.peer_addr(),
            transport: session.transport(),
            encrypted: session.is_encrypted(),
            nick: session.nick(),
            account: session.account(),
            admin: session.is_admin(),
            transport_token: session.transport_token(),
        })
    })
}

unsafe extern "C" fn send(ctx: AbiContext, frame: AbiStr) -> bool {
    guard(false, || {
        // SAFETY: the plugin calls with the context it was lent.
        let session = unsafe { session(ctx) };
        payload(frame).is_some_and(|payload| session.send(payload))
    })
}

unsafe extern "C" fn set_identity(ctx: AbiContext, identity: AbiStr, replace: bool) -> AbiOutcome {
    guard(
        AbiOutcome::failed("chatd failed to set the identity"),
        || {
            // SAFETY: the plugin calls with the context it was lent, and bytes
            // valid for the call.
            let (session, identity) = unsafe { (session(ctx), identity.as_bytes()) };
            let Ok(identity) = serde_json::from_slice::<IdentityJson>(identity) else {
                return AbiOutcome::failed("the plugin sent an unreadable identity");
            };
            let identity = Identity {
                nick: identity.nick,
                account: identity.account,
                admin: identity.admin,
            };
            match session.set_identity(identity, replace) {
                Ok(()) => AbiOutcome::status(AbiOutcome::OK),
                Err(error) => AbiOutcome::rejected(&error),
            }
        },
    )
}

unsafe extern "C" fn clear_identity(ctx: AbiContext) {
    // SAFETY: the plugin calls with the context it was lent.
    guard((), || unsafe { session(ctx) }.clear_identity())
}

unsafe extern "C" fn close(ctx: AbiContext, code: AbiStr, reason: AbiStr) {
    guard((), || {
        // SAFETY: the plugin calls with the context it was lent, and
        // strings valid for the call.
        let (session, code, reason) = unsafe { (session(ctx), code.to_str(), reason.to_str()) };
        session.close(ErrorCode(code.into_owned().into()), &reason);
    })
}
