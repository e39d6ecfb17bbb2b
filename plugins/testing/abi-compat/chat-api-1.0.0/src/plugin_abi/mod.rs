//! The shared-library plugin boundary: a versioned C ABI between chatd and a
//! plugin `cdylib`.
//!
//! Only `#[repr(C)]` types and `extern "C"` functions cross it, so a plugin
//! built by another Rust compiler, against an older `chat-api` of the same
//! major ABI version, loads in any newer chatd:
//!
//! * the library exports [`ENTRY_SYMBOL`], which returns a
//!   [`PluginDeclaration`]: a magic number, the layout version of the
//!   declaration, the [`AbiVersion`] the plugin speaks, its name and version,
//!   and a constructor;
//! * chatd gives the constructor its configuration (TOML text) and a
//!   [`HostRef`] (a context pointer and a table of C functions: routing,
//!   runtime services, storage) and gets back a [`PluginRef`] (the plugin's
//!   table: one C function per [`MessageHandler`](crate::MessageHandler)
//!   hook);
//! * each hook call carries a [`SessionRef`] valid for that call;
//! * frames, replies and errors cross as JSON bytes (as on the wire);
//!   futures cross as [`async_ffi::FfiFuture`]s, whose waker crosses too;
//! * no Rust type, trait object, allocation or panic crosses: a returned
//!   buffer ([`AbiBuffer`]) carries the function that frees it on the side
//!   that allocated it, and every function either side exports runs under
//!   `catch_unwind`.
//!
//! Plugin authors never see any of this: [`export_plugin!`](crate::export_plugin)
//! turns the C tables back into the safe traits (`Host`, `Session`) inside
//! the plugin, and chatd turns the plugin's table back into a
//! `MessageHandler` on its side. Versioning rules and the reasons for this
//! design are in `docs/plugins.md` ("The ABI").

mod contain;
mod export;
mod host;
mod session;

use std::ffi::c_void;

pub use async_ffi::{FfiFuture, FutureExt as FfiFutureExt};
pub use contain::{panic_message, CatchPanics, Contained};
pub use export::{create_plugin, PluginDescription, PluginRef, PluginVTable};
pub use host::{AbiTask, HostRef, HostVTable, RemoteHost};
pub use session::{IdentityJson, RemoteSession, SessionInfo, SessionRef, SessionVTable};

use crate::protocol::{ApiError, ErrorCode, Inbound, Request};

/// The name of the function every plugin library exports (by
/// [`export_plugin!`](crate::export_plugin)); it returns a pointer to the
/// library's [`PluginDeclaration`].
pub const ENTRY_SYMBOL: &str = "chatd_plugin_declaration";

/// First field of every declaration: tells a chatd plugin from a library
/// that merely happens to export a symbol of that name.
pub const DECLARATION_MAGIC: u64 = u64::from_le_bytes(*b"chatdPLG");

/// Layout version of [`PluginDeclaration`] itself. Format 1 was the
/// fingerprinted Rust-ABI declaration of chat-api 0.1; format 2 carries an
/// [`AbiVersion`]. Read before anything else.
pub const DECLARATION_VERSION: u32 = 2;

/// A version of the C boundary: `major.minor`. A plugin declaring `1.x`
/// loads in any chatd speaking `1.y` with `y >= x`: minor versions only
/// append functions to the tables, never change or remove one.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbiVersion {
    pub major: u16,
    pub minor: u16,
}

impl AbiVersion {
    /// Whether a chatd speaking `self` can load a plugin declaring `plugin`.
    pub fn loads(self, plugin: AbiVersion) -> bool {
        plugin.major == self.major && plugin.minor <= self.minor
    }
}

impl std::fmt::Display for AbiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The ABI this `chat-api` speaks: what a plugin built against it declares,
/// and the newest a chatd built with it loads.
///
/// * 1.0: the hooks of `MessageHandler`, `Session` and `Host`.
pub const ABI_VERSION: AbiVersion = AbiVersion { major: 1, minor: 0 };

/// A borrowed string or byte slice: valid for the duration of the call it is
/// passed to (or, for [`HostVTable::data_dir`], of the host). A null
/// pointer is `None` where the field is optional.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct AbiStr {
    pub ptr: *const u8,
    pub len: usize,
}

impl AbiStr {
    pub const NONE: AbiStr = AbiStr {
        ptr: std::ptr::null(),
        len: 0,
    };

    pub const fn new(s: &str) -> AbiStr {
        AbiStr::bytes(s.as_bytes())
    }

    pub const fn bytes(bytes: &[u8]) -> AbiStr {
        AbiStr {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
        }
    }

    pub fn option(s: Option<&str>) -> AbiStr {
        s.map_or(AbiStr::NONE, AbiStr::new)
    }

    pub fn is_none(&self) -> bool {
        self.ptr.is_null()
    }

    /// # Safety
    /// `ptr` must be null or point to `len` bytes readable for `'a`.
    pub unsafe fn as_bytes<'a>(&self) -> &'a [u8] {
        if self.ptr.is_null() {
            &[]
        } else {
            // SAFETY: the caller's guarantee.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }

    /// The text, with invalid UTF-8 replaced (never trusted to be valid).
    ///
    /// # Safety
    /// As [`as_bytes`](Self::as_bytes).
    pub unsafe fn to_str<'a>(&self) -> std::borrow::Cow<'a, str> {
        // SAFETY: the caller's guarantee.
        String::from_utf8_lossy(unsafe { self.as_bytes() })
    }

    /// # Safety
    /// As [`as_bytes`](Self::as_bytes).
    pub unsafe fn to_option(&self) -> Option<String> {
        // SAFETY: the caller's guarantee.
        (!self.is_none()).then(|| unsafe { self.to_str() }.into_owned())
    }
}

/// Bytes handed from one side to the other, with the function that frees
/// them on the side that allocated them (called by `Drop`).
#[repr(C)]
pub struct AbiBuffer {
    ptr: *mut u8,
    len: usize,
    capacity: usize,
    free: Option<unsafe extern "C" fn(ptr: *mut u8, len: usize, capacity: usize)>,
}

// SAFETY: an owned byte buffer; its free function is thread-safe (the
// allocator of the side that made it).
unsafe impl Send for AbiBuffer {}

impl AbiBuffer {
    pub const EMPTY: AbiBuffer = AbiBuffer {
        ptr: std::ptr::null_mut(),
        len: 0,
        capacity: 0,
        free: None,
    };

    /// Hands over `bytes`, to be freed by this side's allocator.
    pub fn from_vec(bytes: Vec<u8>) -> AbiBuffer {
        unsafe extern "C" fn free(ptr: *mut u8, len: usize, capacity: usize) {
            // SAFETY: the parts of a Vec this very function's crate leaked.
            drop(unsafe { Vec::from_raw_parts(ptr, len, capacity) });
        }
        let mut bytes = std::mem::ManuallyDrop::new(bytes);
        AbiBuffer {
            ptr: bytes.as_mut_ptr(),
            len: bytes.len(),
            capacity: bytes.capacity(),
            free: Some(free),
        }
    }

    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> AbiBuffer {
        AbiBuffer::from_vec(serde_json::to_vec(value).unwrap_or_default())
    }

    pub fn as_bytes(&self) -> &[u8] {
        if self.ptr.is_null() {
            &[]
        } else {
            // SAFETY: made by `from_vec`, on either side, and not freed yet.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }

    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(self.as_bytes()).into_owned()
    }

    /// Decodes the JSON the buffer holds.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(self.as_bytes()).ok()
    }
}

impl std::fmt::Debug for AbiBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AbiBuffer({} bytes)", self.len)
    }
}

impl Drop for AbiBuffer {
    fn drop(&mut self) {
        if let Some(free) = self.free.take() {
            // SAFETY: the free function that came with these parts.
            unsafe { free(self.ptr, self.len, self.capacity) }
        }
    }
}

/// How a call ended. `status` says which, `body` carries its data (JSON
/// unless said otherwise).
#[repr(C)]
pub struct AbiOutcome {
    pub status: u32,
    pub body: AbiBuffer,
}

impl AbiOutcome {
    /// Success. `on_frame`: pass the frame on; `body` is the changed frame,
    /// or empty if unchanged. `reconfigure`: applied. Host calls: the
    /// result.
    pub const OK: u32 = 0;
    /// `on_frame`: the plugin answered the frame. `reconfigure`: restart
    /// needed.
    pub const DONE: u32 = 1;
    /// Refused: `body` is `{"code":..,"message":..}`, sent to the client.
    pub const REJECTED: u32 = 2;
    /// Failed: `body` is a message for the log (or, from the constructor
    /// and `reconfigure`, for the operator).
    pub const FAILED: u32 = 3;

    pub fn ok(body: AbiBuffer) -> AbiOutcome {
        AbiOutcome {
            status: AbiOutcome::OK,
            body,
        }
    }

    pub fn status(status: u32) -> AbiOutcome {
        AbiOutcome {
            status,
            body: AbiBuffer::EMPTY,
        }
    }

    pub fn rejected(error: &ApiError) -> AbiOutcome {
        AbiOutcome {
            status: AbiOutcome::REJECTED,
            body: AbiBuffer::json(&serde_json::json!({
                "code": error.code,
                "message": error.message,
            })),
        }
    }

    pub fn failed(message: &str) -> AbiOutcome {
        AbiOutcome {
            status: AbiOutcome::FAILED,
            body: AbiBuffer::from_vec(message.as_bytes().to_vec()),
        }
    }

    /// The error of a [`REJECTED`](Self::REJECTED) outcome.
    pub fn api_error(&self) -> ApiError {
        #[derive(serde::Deserialize)]
        struct Wire {
            code: String,
            message: String,
        }
        match self.body.parse::<Wire>() {
            Some(wire) => ApiError::new(ErrorCode(wire.code.into()), wire.message),
            None => ApiError::new(ErrorCode::INTERNAL, self.body.to_string_lossy()),
        }
    }

    /// The outcome as a `Result`: the body on success, the error otherwise.
    pub fn into_result(self) -> Result<AbiBuffer, ApiError> {
        match self.status {
            AbiOutcome::OK => Ok(self.body),
            AbiOutcome::REJECTED => Err(self.api_error()),
            _ => Err(ApiError::new(ErrorCode::INTERNAL, self.body.to_string_lossy())),
        }
    }
}

/// A delivered chat message ([`crate::Delivery`]) in C layout.
#[repr(C)]
pub struct AbiDelivery {
    /// 0 room, 1 direct, 2 broadcast.
    pub kind: u8,
    /// Null for a broadcast.
    pub target: AbiStr,
    pub msg_id: u64,
    pub ts: u64,
    pub recipients: u64,
    pub text: AbiStr,
}

/// The frame as JSON bytes, as a client would send it: the frame's fields
/// with its `type` and `id`. Both sides decode it with [`Inbound::parse`].
pub fn encode_frame(frame: &Inbound) -> Vec<u8> {
    let mut object = match &frame.request {
        Request::Custom(map) => map.clone(),
        Request::Core(core) => match serde_json::to_value(core) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        },
    };
    object.insert("type".into(), frame.kind.clone().into());
    match frame.id {
        Some(id) => object.insert("id".into(), id.into()),
        None => object.remove("id"),
    };
    serde_json::to_vec(&object).unwrap_or_default()
}

/// Why a library's declaration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeclarationError {
    #[error("its `{ENTRY_SYMBOL}` symbol does not point to a chatd plugin declaration")]
    NotADeclaration,
    #[error(
        "it was built for the plugin interface of chatd releases before plugin ABI 1.0 (declaration format {found}, bound to one compiler and chat-api 0.1 source); rebuild it against chat-api {api} or later 1.x, with any Rust compiler",
        api = env!("CARGO_PKG_VERSION")
    )]
    UnsupportedFormat { found: u32 },
    #[error("its plugin declaration is corrupt (field `{field}`)")]
    Corrupt { field: &'static str },
}

/// The constructor's arguments.
#[repr(C)]
pub struct CreateArgs {
    /// The plugin's name in chatd.toml.
    pub plugin: AbiStr,
    /// Where the configuration came from (for error messages).
    pub source: AbiStr,
    /// The `[plugin.config]` table as TOML text.
    pub config: AbiStr,
    /// The server, for as long as the plugin holds it (released by
    /// [`HostVTable::release`]).
    pub host: HostRef,
}

/// What the constructor returns: a plugin, or (`plugin.vtable` null) a
/// failure whose message is in `error`.
#[repr(C)]
pub struct CreateResult {
    pub plugin: PluginRef,
    pub error: AbiBuffer,
}

/// The constructor [`export_plugin!`](crate::export_plugin) generates.
pub type CreateFn = unsafe extern "C" fn(args: *const CreateArgs) -> CreateResult;

/// What a plugin library declares about itself. `#[repr(C)]`; read in
/// field order: magic and format first, the rest only when they match.
#[repr(C)]
pub struct PluginDeclaration {
    pub magic: u64,
    pub declaration_version: u32,
    pub abi: AbiVersion,
    pub name: AbiStr,
    pub version: AbiStr,
    /// The `chat-api` version the plugin was built against (for messages).
    pub chat_api_version: AbiStr,
    pub create: CreateFn,
}

// SAFETY: immutable, and its pointers refer to `'static` string literals.
unsafe impl Sync for PluginDeclaration {}

/// The readable part of a declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeclaredPlugin<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub chat_api_version: &'a str,
    pub abi: AbiVersion,
}

/// Longest string a declaration may hold; anything longer means the
/// declaration is not what it claims to be.
const MAX_DECLARED_STR: usize = 1024;

impl PluginDeclaration {
    /// Used by [`export_plugin!`](crate::export_plugin).
    #[doc(hidden)]
    pub const fn new(
        abi: AbiVersion,
        name: &'static str,
        version: &'static str,
        create: CreateFn,
    ) -> PluginDeclaration {
        PluginDeclaration {
            magic: DECLARATION_MAGIC,
            declaration_version: DECLARATION_VERSION,
            abi,
            name: AbiStr::new(name),
            version: AbiStr::new(version),
            chat_api_version: AbiStr::new(env!("CARGO_PKG_VERSION")),
            create,
        }
    }

    /// Reads the name, versions and ABI, relying on C layout only.
    ///
    /// # Safety
    /// `self` must be what a loaded library's entry symbol returned, and the
    /// library must stay loaded while the result is used.
    pub unsafe fn read(&self) -> Result<DeclaredPlugin<'_>, DeclarationError> {
        if self.magic != DECLARATION_MAGIC {
            return Err(DeclarationError::NotADeclaration);
        }
        if self.declaration_version != DECLARATION_VERSION {
            return Err(DeclarationError::UnsupportedFormat {
                found: self.declaration_version,
            });
        }
        let read = |s: &AbiStr, field: &'static str| {
            if s.ptr.is_null() || s.len > MAX_DECLARED_STR {
                return Err(DeclarationError::Corrupt { field });
            }
            // SAFETY: the magic and format matched, so these are string
            // literals of the library (the caller's guarantee).
            std::str::from_utf8(unsafe { s.as_bytes() })
                .map_err(|_| DeclarationError::Corrupt { field })
        };
        Ok(DeclaredPlugin {
            name: read(&self.name, "name")?,
            version: read(&self.version, "version")?,
            chat_api_version: read(&self.chat_api_version, "chat_api_version")?,
            abi: self.abi,
        })
    }
}

/// An opaque context pointer, sendable: each side guarantees that what it
/// points to may be used from any thread while the other side holds it.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct AbiContext(pub *const c_void);

// SAFETY: see the type's documentation.
unsafe impl Send for AbiContext {}
// SAFETY: see the type's documentation.
unsafe impl Sync for AbiContext {}

/// Exports a [`MessageHandler`](crate::MessageHandler) from a `cdylib`
/// plugin crate.
///
/// `export_plugin!("name", constructor)` where `constructor` is any
/// `Fn(PluginContext) -> Result<H, ConfigError>` with `H: MessageHandler`,
/// and `"name"` is the name operators give the plugin in `chatd.toml`. The
/// plugin's version is its crate version. Use the macro once per library.
///
/// ```no_run
/// use chat_api::{async_trait, HandlerResult, Inbound, MessageHandler, PluginContext, Session, Verdict};
///
/// struct Dice;
///
/// impl Dice {
///     fn from_context(_ctx: PluginContext) -> Result<Dice, chat_api::ConfigError> {
///         Ok(Dice)
///     }
/// }
///
/// #[async_trait]
/// impl MessageHandler for Dice {
///     fn name(&self) -> &str { "dice" }
///     async fn on_frame(&self, _s: &dyn Session, _f: &mut Inbound) -> HandlerResult {
///         Ok(Verdict::Continue)
///     }
/// }
///
/// chat_api::export_plugin!("dice", Dice::from_context);
/// # fn main() {}
/// ```
///
/// The generated code declares [`ABI_VERSION`] and turns chatd's C tables
/// into the `Host` and `Session` the handler sees, and the handler into the
/// C table chatd calls, containing panics inside the library.
#[macro_export]
macro_rules! export_plugin {
    ($name:literal, $constructor:expr $(,)?) => {
        $crate::export_plugin!(@declare_abi $crate::plugin_abi::ABI_VERSION, $name, $constructor);
    };
    // Test-only: declares another ABI version than the one the library
    // speaks, to check that chatd refuses it. Never use in a real plugin.
    (@declare_abi $abi:expr, $name:literal, $constructor:expr $(,)?) => {
        /// The chatd plugin entry point (generated by `chat_api::export_plugin!`).
        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub extern "C" fn chatd_plugin_declaration(
        ) -> *const $crate::plugin_abi::PluginDeclaration {
            unsafe extern "C" fn create(
                args: *const $crate::plugin_abi::CreateArgs,
            ) -> $crate::plugin_abi::CreateResult {
                // SAFETY: chatd passes valid arguments for this call.
                unsafe { $crate::plugin_abi::create_plugin(args, $constructor) }
            }
            static DECLARATION: $crate::plugin_abi::PluginDeclaration =
                $crate::plugin_abi::PluginDeclaration::new(
                    $abi,
                    $name,
                    ::core::env!("CARGO_PKG_VERSION"),
                    create,
                );
            &DECLARATION
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_load_older_minors_of_the_same_major_only() {
        let chatd = AbiVersion { major: 1, minor: 1 };
        assert!(chatd.loads(AbiVersion { major: 1, minor: 0 }));
        assert!(chatd.loads(AbiVersion { major: 1, minor: 1 }));
        assert!(!chatd.loads(AbiVersion { major: 1, minor: 2 }));
        assert!(!chatd.loads(AbiVersion { major: 2, minor: 0 }));
        assert!(!chatd.loads(AbiVersion { major: 0, minor: 9 }));
    }

    #[test]
    fn frames_round_trip_with_type_and_id() {
        for line in [
            r##"{"type":"say","id":4,"room":"#a","text":"hi"}"##,
            r##"{"type":"roll","dice":"2d6"}"##,
            r##"{"type":"roll","id":9,"nested":{"a":[1,2]}}"##,
        ] {
            let frame = Inbound::parse(line.as_bytes()).unwrap();
            let again = Inbound::parse(&encode_frame(&frame)).unwrap();
            assert_eq!(frame, again, "{line}");
        }
    }

    #[test]
    fn buffers_free_themselves_and_outcomes_carry_errors() {
        let buffer = AbiBuffer::json(&["a", "b"]);
        assert_eq!(buffer.parse::<Vec<String>>().unwrap(), ["a", "b"]);
        let outcome = AbiOutcome::rejected(&ApiError::new(ErrorCode::custom("nope"), "not today"));
        let error = outcome.into_result().unwrap_err();
        assert_eq!(error.code, ErrorCode::custom("nope"));
        assert_eq!(error.message, "not today");
    }

    #[test]
    fn wrong_magic_and_old_format_are_not_read() {
        unsafe extern "C" fn create(_: *const CreateArgs) -> CreateResult {
            unreachable!()
        }
        let mut declaration = PluginDeclaration::new(ABI_VERSION, "x", "1", create);
        declaration.magic = 7;
        // SAFETY: a valid declaration apart from the magic.
        assert_eq!(
            unsafe { declaration.read() }.unwrap_err(),
            DeclarationError::NotADeclaration
        );
        declaration.magic = DECLARATION_MAGIC;
        declaration.declaration_version = 1;
        // SAFETY: as above.
        let error = unsafe { declaration.read() }.unwrap_err();
        assert_eq!(error, DeclarationError::UnsupportedFormat { found: 1 });
        assert!(error.to_string().contains("rebuild it against chat-api"), "{error}");
    }
}
