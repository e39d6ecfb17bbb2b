//! chatd's side of [`HostRef`]: the plugins' [`Host`] behind a context
//! pointer and a static table of C functions, lent to a library plugin for
//! as long as it holds it (until it calls `release`).

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use chat_api::plugin_abi::{
    AbiBuffer, AbiContext, AbiOutcome, AbiStr, AbiTask, FfiFuture, FfiFutureExt, HostRef,
    HostVTable,
};
use chat_api::{ApiError, ErrorCode, Host, LogLevel, StorageError, StorageErrorKind};

use super::session_table::payload;
use super::storage::PluginStore;

/// What the context pointer points to.
struct HostContext {
    host: Arc<dyn Host>,
    /// `host.data_dir()` as UTF-8, lent to the plugin as an [`AbiStr`].
    data_dir: String,
    /// The plugin's key-value store (`None` only where chatd opened no
    /// database; its calls then fail as unavailable).
    store: Option<PluginStore>,
}

/// Lends `host` (and the plugin's store) to a plugin; freed when the
/// plugin has released it and the last task it spawned has ended.
pub fn lend(host: Arc<dyn Host>, store: Option<PluginStore>) -> HostRef {
    let data_dir = host.data_dir().to_string_lossy().into_owned();
    let context = Arc::new(HostContext {
        host,
        data_dir,
        store,
    });
    HostRef {
        ctx: AbiContext(Arc::into_raw(context).cast::<c_void>()),
        vtable: &VTABLE,
    }
}

static VTABLE: HostVTable = HostVTable {
    size: std::mem::size_of::<HostVTable>(),
    release,
    send_to_session,
    send_to_user,
    send_to_room,
    broadcast,
    users,
    rooms,
    room_members,
    session_of,
    join_room,
    leave_room,
    close_room,
    disconnect,
    next_message_id,
    spawn,
    spawn_blocking,
    sleep,
    data_dir,
    max_frame_bytes,
    log,
    kv_get,
    kv_put,
    kv_delete,
    kv_list,
};

/// The context behind a pointer.
///
/// # Safety
/// `ctx` must come from [`lend`] and not be released yet.
unsafe fn context<'a>(ctx: AbiContext) -> &'a HostContext {
    // SAFETY: the caller's guarantee.
    unsafe { &*ctx.0.cast::<HostContext>() }
}

/// Runs `f` with the host, never letting a panic unwind into the plugin.
///
/// # Safety
/// As [`context`].
unsafe fn with<T>(ctx: AbiContext, fallback: T, f: impl FnOnce(&dyn Host) -> T) -> T {
    // SAFETY: the caller's guarantee.
    let host = unsafe { &*context(ctx).host };
    catch_unwind(AssertUnwindSafe(|| f(host))).unwrap_or(fallback)
}

/// A string argument of the plugin's, valid for the call.
fn text(s: AbiStr) -> String {
    // SAFETY: every caller passes the plugin's arguments during the call.
    unsafe { s.to_str() }.into_owned()
}

fn unusable_frame() -> ApiError {
    ApiError::new(
        ErrorCode::INTERNAL,
        "the plugin sent a frame that is not one JSON object",
    )
}

fn outcome<T: serde::Serialize>(result: Result<T, ApiError>) -> AbiOutcome {
    match result {
        Ok(value) => AbiOutcome::ok(AbiBuffer::json(&value)),
        Err(error) => AbiOutcome::rejected(&error),
    }
}

fn crashed() -> AbiOutcome {
    AbiOutcome::failed("chatd failed on this call; see its log")
}

// SAFETY (every function below): called by the plugin with the context it
// was lent and arguments valid for the call.

unsafe extern "C" fn release(ctx: AbiContext) {
    // SAFETY: the plugin's reference, released once.
    let context = unsafe { Arc::from_raw(ctx.0.cast::<HostContext>()) };
    let _ = catch_unwind(AssertUnwindSafe(move || drop(context)));
}

/// Another reference to the context, for a task that may outlive the
/// plugin's own (its code may still log through `ctx`).
///
/// # Safety
/// As [`context`].
unsafe fn keep(ctx: AbiContext) -> Arc<HostContext> {
    let ptr = ctx.0.cast::<HostContext>();
    // SAFETY: `ptr` came from `Arc::into_raw` and is not released yet.
    unsafe {
        Arc::increment_strong_count(ptr);
        Arc::from_raw(ptr)
    }
}

unsafe extern "C" fn send_to_session(ctx: AbiContext, session: u64, frame: AbiStr) -> bool {
    unsafe {
        with(ctx, false, |host| {
            payload(frame).is_some_and(|p| host.send_to_session(session, p))
        })
    }
}

unsafe extern "C" fn send_to_user(ctx: AbiContext, nick: AbiStr, frame: AbiStr) -> AbiOutcome {
    unsafe {
        with(ctx, crashed(), |host| {
            let payload = payload(frame).ok_or_else(unusable_frame);
            outcome(payload.and_then(|p| host.send_to_user(&text(nick), p)))
        })
    }
}

unsafe extern "C" fn send_to_room(ctx: AbiContext, room: AbiStr, frame: AbiStr) -> AbiOutcome {
    unsafe {
        with(ctx, crashed(), |host| {
            let payload = payload(frame).ok_or_else(unusable_frame);
            outcome(payload.and_then(|p| host.send_to_room(&text(room), p)))
        })
    }
}

unsafe extern "C" fn broadcast(ctx: AbiContext, frame: AbiStr) -> u64 {
    unsafe {
        with(ctx, 0, |host| {
            payload(frame).map_or(0, |p| host.broadcast(p) as u64)
        })
    }
}

unsafe extern "C" fn users(ctx: AbiContext) -> AbiBuffer {
    unsafe { with(ctx, AbiBuffer::EMPTY, |host| AbiBuffer::json(&host.users())) }
}

unsafe extern "C" fn rooms(ctx: AbiContext) -> AbiBuffer {
    unsafe { with(ctx, AbiBuffer::EMPTY, |host| AbiBuffer::json(&host.rooms())) }
}

unsafe extern "C" fn room_members(ctx: AbiContext, room: AbiStr) -> AbiBuffer {
    unsafe {
        with(ctx, AbiBuffer::EMPTY, |host| {
            AbiBuffer::json(&host.room_members(&text(room)))
        })
    }
}

unsafe extern "C" fn session_of(ctx: AbiContext, nick: AbiStr) -> AbiBuffer {
    unsafe {
        with(ctx, AbiBuffer::EMPTY, |host| {
            AbiBuffer::json(&host.session_of(&text(nick)))
        })
    }
}

unsafe extern "C" fn join_room(ctx: AbiContext, session: u64, room: AbiStr) -> AbiOutcome {
    unsafe {
        with(ctx, crashed(), |host| {
            outcome(host.join_room(session, &text(room)))
        })
    }
}

unsafe extern "C" fn leave_room(
    ctx: AbiContext,
    session: u64,
    room: AbiStr,
    reason: AbiStr,
) -> AbiOutcome {
    unsafe {
        with(ctx, crashed(), |host| {
            let reason = reason.to_option();
            outcome(host.leave_room(session, &text(room), reason.as_deref()))
        })
    }
}

unsafe extern "C" fn close_room(ctx: AbiContext, room: AbiStr, reason: AbiStr) {
    unsafe { with(ctx, (), |host| host.close_room(&text(room), &text(reason))) }
}

unsafe extern "C" fn disconnect(ctx: AbiContext, session: u64, code: AbiStr, reason: AbiStr) {
    unsafe {
        with(ctx, (), |host| {
            host.disconnect(session, ErrorCode(text(code).into()), &text(reason))
        })
    }
}

unsafe extern "C" fn next_message_id(ctx: AbiContext, out: *mut [u64; 2]) {
    let (id, ts) = unsafe { with(ctx, (0, 0), |host| host.next_message_id()) };
    if !out.is_null() {
        unsafe { *out = [id, ts] };
    }
}

unsafe extern "C" fn spawn(ctx: AbiContext, task: FfiFuture<()>) {
    // A poll that panicked inside the plugin (`FfiPoll::Panicked`) panics
    // here, in chatd's task, which tokio contains.
    let keep = unsafe { keep(ctx) };
    let task = async move {
        task.await;
        drop(keep);
    };
    unsafe { with(ctx, (), move |host| host.spawn(Box::pin(task))) }
}

unsafe extern "C" fn spawn_blocking(ctx: AbiContext, work: AbiTask) {
    struct Work(AbiTask);
    impl Drop for Work {
        fn drop(&mut self) {
            // SAFETY: the task's own drop, when it was never run.
            unsafe { (self.0.drop)(self.0.data) }
        }
    }
    let work = Work(work);
    let keep = unsafe { keep(ctx) };
    let run = move || {
        let _keep = keep;
        let work = std::mem::ManuallyDrop::new(work);
        // SAFETY: run consumes the task, exactly once (and `Work` never
        // drops it after).
        unsafe { (work.0.run)(work.0.data) }
    };
    unsafe { with(ctx, (), move |host| host.spawn_blocking(Box::new(run))) }
}

unsafe extern "C" fn sleep(ctx: AbiContext, nanos: u64) -> FfiFuture<()> {
    let duration = Duration::from_nanos(nanos);
    let sleeping = unsafe { with(ctx, None, |host| Some(host.sleep(duration))) };
    match sleeping {
        Some(sleeping) => sleeping.into_ffi(),
        None => std::future::ready(()).into_ffi(),
    }
}

unsafe extern "C" fn data_dir(ctx: AbiContext) -> AbiStr {
    // Lives in the context, as long as the plugin holds the host.
    AbiStr::new(&unsafe { context(ctx) }.data_dir)
}

unsafe extern "C" fn max_frame_bytes(ctx: AbiContext) -> u64 {
    unsafe {
        with(ctx, 0, |host| {
            host.max_frame_bytes().map_or(0, |max| max as u64)
        })
    }
}

unsafe extern "C" fn log(ctx: AbiContext, plugin: AbiStr, level: u8, message: AbiStr) {
    let level = match level {
        0 => LogLevel::Error,
        1 => LogLevel::Warn,
        2 => LogLevel::Info,
        _ => LogLevel::Debug,
    };
    unsafe {
        with(ctx, (), |host| {
            host.log(&text(plugin), level, &text(message))
        })
    }
}

/// Runs a store call on the plugin's store, as an FFI future; the
/// arguments are copied first (they are the plugin's only for the call).
///
/// # Safety
/// As [`context`].
unsafe fn store_call<F, Fut>(ctx: AbiContext, call: F) -> FfiFuture<AbiOutcome>
where
    F: FnOnce(PluginStore) -> Fut,
    Fut: std::future::Future<Output = Result<AbiOutcome, StorageError>> + Send + 'static,
{
    // SAFETY: the caller's guarantee.
    let store = unsafe { context(ctx) }.store.clone();
    let future = store.map(call);
    async move {
        let result = match future {
            Some(future) => future.await,
            None => Err(StorageError::new(
                StorageErrorKind::Unavailable,
                "chatd has no database open for this plugin instance",
            )),
        };
        result.unwrap_or_else(|error| {
            AbiOutcome::rejected(&ApiError::new(
                ErrorCode::custom(error.kind.code()),
                error.message,
            ))
        })
    }
    .into_ffi()
}

unsafe extern "C" fn kv_get(ctx: AbiContext, key: AbiStr) -> FfiFuture<AbiOutcome> {
    let key = text(key);
    unsafe {
        store_call(ctx, |store| async move {
            Ok(match store.get(&key).await? {
                Some(value) => AbiOutcome::ok(AbiBuffer::from_vec(value)),
                None => AbiOutcome::status(AbiOutcome::DONE),
            })
        })
    }
}

unsafe extern "C" fn kv_put(ctx: AbiContext, key: AbiStr, value: AbiStr) -> FfiFuture<AbiOutcome> {
    // SAFETY: the plugin's bytes, valid for the call; copied here.
    let (key, value) = (text(key), unsafe { value.as_bytes() }.to_vec());
    unsafe {
        store_call(ctx, |store| async move {
            store.put(&key, &value).await?;
            Ok(AbiOutcome::status(AbiOutcome::OK))
        })
    }
}

unsafe extern "C" fn kv_delete(ctx: AbiContext, key: AbiStr) -> FfiFuture<AbiOutcome> {
    let key = text(key);
    unsafe {
        store_call(ctx, |store| async move {
            Ok(AbiOutcome::ok(AbiBuffer::json(&store.delete(&key).await?)))
        })
    }
}

unsafe extern "C" fn kv_list(ctx: AbiContext, prefix: AbiStr) -> FfiFuture<AbiOutcome> {
    let prefix = text(prefix);
    unsafe {
        store_call(ctx, |store| async move {
            Ok(AbiOutcome::ok(AbiBuffer::json(&store.list(&prefix).await?)))
        })
    }
}
