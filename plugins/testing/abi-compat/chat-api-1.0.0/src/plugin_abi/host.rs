//! The server across the boundary: chatd hands the plugin's constructor a
//! [`HostRef`] (its host behind a context pointer, and a table of C
//! functions); inside the plugin, [`RemoteHost`] turns it back into a
//! [`Host`]. The plugin keeps it as long as it likes and releases it once
//! ([`HostVTable::release`], when the last `Arc` of the `RemoteHost` goes).

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_ffi::{FfiFuture, FutureExt};

use super::contain::panic_message;
use super::{AbiBuffer, AbiContext, AbiOutcome, AbiStr, CatchPanics};
use crate::payload::Payload;
use crate::plugin::{BoxFuture, Host, LogLevel, SessionId};
use crate::protocol::{ApiError, ErrorCode, RoomInfo};

/// The server, for as long as the plugin holds it.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct HostRef {
    pub ctx: AbiContext,
    pub vtable: *const HostVTable,
}

// SAFETY: chatd's host may be used from any thread; the table is a static.
unsafe impl Send for HostRef {}
// SAFETY: as above.
unsafe impl Sync for HostRef {}

/// Work for chatd's blocking pool: `run` consumes `data` (and frees it);
/// if chatd cannot run it, it calls `drop` instead. Exactly one of the two
/// is called, once.
#[repr(C)]
pub struct AbiTask {
    pub data: *mut c_void,
    pub run: unsafe extern "C" fn(data: *mut c_void),
    pub drop: unsafe extern "C" fn(data: *mut c_void),
}

// SAFETY: made from a `Send` closure (see `AbiTask::new`).
unsafe impl Send for AbiTask {}

impl AbiTask {
    /// Wraps a closure; a panic in it is caught here and reported to
    /// `on_panic` (also under `catch_unwind`).
    pub fn new(work: Box<dyn FnOnce() + Send + 'static>) -> AbiTask {
        type Work = Box<dyn FnOnce() + Send + 'static>;
        unsafe extern "C" fn run(data: *mut c_void) {
            // SAFETY: `data` is the `Box<Work>` leaked below, used once.
            let work = unsafe { Box::from_raw(data.cast::<Work>()) };
            let _ = catch_unwind(AssertUnwindSafe(move || work()));
        }
        unsafe extern "C" fn drop_work(data: *mut c_void) {
            // SAFETY: as above.
            let work = unsafe { Box::from_raw(data.cast::<Work>()) };
            let _ = catch_unwind(AssertUnwindSafe(move || drop(work)));
        }
        AbiTask {
            data: Box::into_raw(Box::new(work)).cast(),
            run,
            drop: drop_work,
        }
    }
}

/// The host's functions. Append-only: a new function goes at the end, with
/// a new ABI minor version; a plugin only calls those of the minor version
/// it declared, and chatd never loads a plugin of a newer minor.
///
/// Frames are one encoded JSON object (no newline); lists and results are
/// JSON; an optional string is a null [`AbiStr`] when absent.
#[repr(C)]
pub struct HostVTable {
    /// `size_of::<HostVTable>()` of the side that made it.
    pub size: usize,
    /// The plugin no longer uses this host (called once).
    pub release: unsafe extern "C" fn(ctx: AbiContext),
    pub send_to_session: unsafe extern "C" fn(ctx: AbiContext, session: u64, frame: AbiStr) -> bool,
    /// Ok: empty body.
    pub send_to_user: unsafe extern "C" fn(ctx: AbiContext, nick: AbiStr, frame: AbiStr) -> AbiOutcome,
    /// Ok: the number of members, as JSON.
    pub send_to_room: unsafe extern "C" fn(ctx: AbiContext, room: AbiStr, frame: AbiStr) -> AbiOutcome,
    pub broadcast: unsafe extern "C" fn(ctx: AbiContext, frame: AbiStr) -> u64,
    /// `["nick", ...]`
    pub users: unsafe extern "C" fn(ctx: AbiContext) -> AbiBuffer,
    /// `[RoomInfo, ...]`
    pub rooms: unsafe extern "C" fn(ctx: AbiContext) -> AbiBuffer,
    /// `["nick", ...]` or `null`.
    pub room_members: unsafe extern "C" fn(ctx: AbiContext, room: AbiStr) -> AbiBuffer,
    /// The session id or `null`.
    pub session_of: unsafe extern "C" fn(ctx: AbiContext, nick: AbiStr) -> AbiBuffer,
    /// Ok: `["room as spelt", ["nick", ...]]`.
    pub join_room: unsafe extern "C" fn(ctx: AbiContext, session: u64, room: AbiStr) -> AbiOutcome,
    pub leave_room: unsafe extern "C" fn(
        ctx: AbiContext,
        session: u64,
        room: AbiStr,
        reason: AbiStr,
    ) -> AbiOutcome,
    pub close_room: unsafe extern "C" fn(ctx: AbiContext, room: AbiStr, reason: AbiStr),
    pub disconnect: unsafe extern "C" fn(ctx: AbiContext, session: u64, code: AbiStr, reason: AbiStr),
    /// Writes `[id, ts]` to `out`.
    pub next_message_id: unsafe extern "C" fn(ctx: AbiContext, out: *mut [u64; 2]),
    pub spawn: unsafe extern "C" fn(ctx: AbiContext, task: FfiFuture<()>),
    pub spawn_blocking: unsafe extern "C" fn(ctx: AbiContext, work: AbiTask),
    pub sleep: unsafe extern "C" fn(ctx: AbiContext, nanos: u64) -> FfiFuture<()>,
    /// Valid as long as the host is held.
    pub data_dir: unsafe extern "C" fn(ctx: AbiContext) -> AbiStr,
    /// 0 if unknown.
    pub max_frame_bytes: unsafe extern "C" fn(ctx: AbiContext) -> u64,
    /// `level`: 0 error, 1 warn, 2 info, 3 debug.
    pub log: unsafe extern "C" fn(ctx: AbiContext, plugin: AbiStr, level: u8, message: AbiStr),
}

/// The plugin side's [`Host`]: chatd's, through its table.
pub struct RemoteHost {
    host: HostRef,
    /// The plugin's name, for log lines about its panicked tasks.
    plugin: String,
    /// Copied once: `Host::data_dir` returns a borrowed path.
    data_dir: PathBuf,
}

impl RemoteHost {
    /// # Safety
    /// `host` must be what chatd passed to the constructor; this value
    /// releases it when dropped.
    pub unsafe fn new(host: HostRef, plugin: &str) -> RemoteHost {
        // SAFETY: chatd's table, valid until released.
        let data_dir = unsafe { ((*host.vtable).data_dir)(host.ctx).to_str() };
        RemoteHost {
            host,
            plugin: plugin.to_string(),
            data_dir: PathBuf::from(data_dir.into_owned()),
        }
    }

    fn table(&self) -> &HostVTable {
        // SAFETY: chatd's static table, valid until released.
        unsafe { &*self.host.vtable }
    }

    fn ctx(&self) -> AbiContext {
        self.host.ctx
    }
}

impl Drop for RemoteHost {
    fn drop(&mut self) {
        // SAFETY: released once, here; never used after.
        unsafe { (self.table().release)(self.ctx()) }
    }
}

/// A frame's JSON without its newline.
fn frame(payload: &Payload) -> AbiStr {
    AbiStr::bytes(payload.json())
}

// SAFETY (every `unsafe` block below): a function of chatd's table, called
// with its context and arguments that live through the call.
impl Host for RemoteHost {
    fn send_to_session(&self, session: SessionId, payload: Payload) -> bool {
        unsafe { (self.table().send_to_session)(self.ctx(), session, frame(&payload)) }
    }
    fn send_to_user(&self, nick: &str, payload: Payload) -> Result<(), ApiError> {
        let outcome =
            unsafe { (self.table().send_to_user)(self.ctx(), AbiStr::new(nick), frame(&payload)) };
        outcome.into_result().map(drop)
    }
    fn send_to_room(&self, room: &str, payload: Payload) -> Result<usize, ApiError> {
        let outcome =
            unsafe { (self.table().send_to_room)(self.ctx(), AbiStr::new(room), frame(&payload)) };
        Ok(outcome.into_result()?.parse().unwrap_or(0))
    }
    fn broadcast(&self, payload: Payload) -> usize {
        unsafe { (self.table().broadcast)(self.ctx(), frame(&payload)) as usize }
    }
    fn users(&self) -> Vec<String> {
        unsafe { (self.table().users)(self.ctx()) }
            .parse()
            .unwrap_or_default()
    }
    fn rooms(&self) -> Vec<RoomInfo> {
        unsafe { (self.table().rooms)(self.ctx()) }
            .parse()
            .unwrap_or_default()
    }
    fn room_members(&self, room: &str) -> Option<Vec<String>> {
        unsafe { (self.table().room_members)(self.ctx(), AbiStr::new(room)) }
            .parse()
            .flatten()
    }
    fn session_of(&self, nick: &str) -> Option<SessionId> {
        unsafe { (self.table().session_of)(self.ctx(), AbiStr::new(nick)) }
            .parse()
            .flatten()
    }
    fn join_room(&self, session: SessionId, room: &str) -> Result<(String, Vec<String>), ApiError> {
        let outcome = unsafe { (self.table().join_room)(self.ctx(), session, AbiStr::new(room)) };
        outcome.into_result()?.parse().ok_or_else(|| {
            ApiError::new(ErrorCode::INTERNAL, "chatd sent an unreadable join result")
        })
    }
    fn leave_room(
        &self,
        session: SessionId,
        room: &str,
        reason: Option<&str>,
    ) -> Result<(), ApiError> {
        let outcome = unsafe {
            (self.table().leave_room)(
                self.ctx(),
                session,
                AbiStr::new(room),
                AbiStr::option(reason),
            )
        };
        outcome.into_result().map(drop)
    }
    fn close_room(&self, room: &str, reason: &str) {
        unsafe { (self.table().close_room)(self.ctx(), AbiStr::new(room), AbiStr::new(reason)) }
    }
    fn disconnect(&self, session: SessionId, code: ErrorCode, reason: &str) {
        unsafe {
            (self.table().disconnect)(
                self.ctx(),
                session,
                AbiStr::new(&code.0),
                AbiStr::new(reason),
            )
        }
    }
    fn next_message_id(&self) -> (u64, u64) {
        let mut out = [0u64; 2];
        unsafe { (self.table().next_message_id)(self.ctx(), &mut out) };
        (out[0], out[1])
    }
    fn spawn(&self, task: BoxFuture<()>) {
        let plugin = self.plugin.clone();
        let ctx = self.ctx();
        let log = self.table().log;
        let task = async move {
            if let Err(panic) = CatchPanics::new(task).await {
                let message = format!("a spawned task panicked: {}", panic_message(&*panic));
                // SAFETY: chatd's log function; the host outlives its tasks
                // (chatd releases nothing it runs tasks for).
                unsafe { log(ctx, AbiStr::new(&plugin), 0, AbiStr::new(&message)) };
            }
        };
        unsafe { (self.table().spawn)(self.ctx(), task.into_ffi()) }
    }
    fn spawn_blocking(&self, work: Box<dyn FnOnce() + Send + 'static>) {
        let plugin = self.plugin.clone();
        let ctx = self.ctx();
        let log = self.table().log;
        let work = Box::new(move || {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(work)) {
                let message = format!("blocking work panicked: {}", panic_message(&*panic));
                // SAFETY: as in `spawn`.
                unsafe { log(ctx, AbiStr::new(&plugin), 0, AbiStr::new(&message)) };
            }
        });
        unsafe { (self.table().spawn_blocking)(self.ctx(), AbiTask::new(work)) }
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        Box::pin(unsafe { (self.table().sleep)(self.ctx(), nanos) })
    }
    fn data_dir(&self) -> &Path {
        &self.data_dir
    }
    fn max_frame_bytes(&self) -> Option<usize> {
        let max = unsafe { (self.table().max_frame_bytes)(self.ctx()) };
        (max > 0).then_some(max as usize)
    }
    fn log(&self, plugin: &str, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Error => 0,
            LogLevel::Warn => 1,
            LogLevel::Info => 2,
            LogLevel::Debug => 3,
        };
        unsafe {
            (self.table().log)(self.ctx(), AbiStr::new(plugin), level, AbiStr::new(message))
        }
    }
}
