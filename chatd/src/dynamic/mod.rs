//! Shared-library plugins (`[[plugin]]` entries with a `path`).
//!
//! A library is opened, its declaration (see [`chat_api::plugin_abi`]) read
//! with C layout rules only, and its ABI version compared with chatd's
//! before anything else in it is called. From then on only C functions and
//! `#[repr(C)]` data cross: chatd lends the plugin its host
//! (`host_table`) and, per call, a session (`session_table`), and calls the
//! plugin's table through [`LoadedPlugin`], a `MessageHandler` like any
//! built-in. Loaded libraries are never unloaded: their code backs the
//! handler and every task it spawned, for the life of the process.

mod host_table;
mod loaded;
mod session_table;
pub mod storage;

use std::path::Path;
use std::sync::Arc;

use chat_api::plugin_abi::{
    AbiStr, AbiVersion, CreateArgs, DeclaredPlugin, PluginDeclaration, PluginVTable, ABI_VERSION,
    ENTRY_SYMBOL,
};
use chat_api::{ConfigError, MessageHandler, PluginContext};

use chatd_storage::Database;

use crate::config::PluginEntry;
use crate::pipeline::PipelineError;

pub use loaded::LoadedPlugin;
use storage::PluginStore;

/// The entry symbol's type, as `export_plugin!` generates it.
type EntryFn = unsafe extern "C" fn() -> *const PluginDeclaration;

/// The oldest plugin ABI this chatd loads (the first minor of its major).
pub const OLDEST_LOADED: AbiVersion = AbiVersion {
    major: ABI_VERSION.major,
    minor: 0,
};

/// Loads a plugin from the shared library at `entry.path`, after checking
/// that it was built for this chatd.
/// `database` backs the plugin's key-value store.
pub fn load(
    entry: &PluginEntry,
    ctx: PluginContext,
    database: Option<&Database>,
) -> Result<Arc<dyn MessageHandler>, PipelineError> {
    let refuse = |message: String| PipelineError::Load {
        source_name: ctx.config.source.clone(),
        name: entry.name.clone(),
        message,
    };
    let path = entry
        .path
        .as_deref()
        .ok_or_else(|| refuse("no `path` to load the plugin from".to_string()))?;
    if !path.is_file() {
        return Err(refuse(format!(
            "library {} does not exist; build the plugin (`cargo build --release` in its crate) and set `path` to the {} file it produced",
            path.display(),
            library_file_name("NAME"),
        )));
    }

    // Absolute, so that the loader opens this very file: given a bare file
    // name, dlopen would search the system's library path instead.
    let path = &path.canonicalize().map_err(|e| {
        refuse(format!(
            "cannot resolve library path {}: {e}",
            path.display()
        ))
    })?;

    // SAFETY: opening a library runs its initialisers. That is the trust an
    // operator extends by listing it in chatd.toml; Rust cdylibs have none.
    let library = unsafe { libloading::Library::new(path) }
        .map_err(|e| refuse(format!("cannot open library {}: {e}", path.display())))?;

    // SAFETY: the symbol's type is checked by nothing; it is only trusted as
    // far as the magic number and format version it must return.
    let entry_fn = unsafe { library.get::<EntryFn>(ENTRY_SYMBOL.as_bytes()) }.map_err(|_| {
        refuse(format!(
            "{} is not a chatd plugin: it has no `{ENTRY_SYMBOL}` symbol; the plugin crate must call `chat_api::export_plugin!` and be built with crate-type = [\"cdylib\"]",
            path.display()
        ))
    })?;
    // SAFETY: calling the entry only returns the address of a static; the
    // declaration is then read as C layout, magic and format first.
    let declaration = unsafe { entry_fn() };
    if declaration.is_null() {
        return Err(refuse(format!(
            "{}: `{ENTRY_SYMBOL}` returned no declaration",
            path.display()
        )));
    }
    // SAFETY: non-null, returned by the entry symbol of the loaded library,
    // which stays loaded while `declared` is used.
    let declaration: &PluginDeclaration = unsafe { &*declaration };
    let declared = unsafe { declaration.read() }
        .map_err(|e| refuse(format!("{} was refused: {e}", path.display())))?;

    check_abi(path, &declared).map_err(refuse)?;
    if declared.name != entry.name {
        return Err(refuse(format!(
            "{} is the plugin '{}', not '{}'; set name = \"{}\" in its [[plugin]] entry or fix `path`",
            path.display(),
            declared.name,
            entry.name,
            declared.name
        )));
    }
    let (abi, version) = (declared.abi, declared.version.to_string());
    let store = database.map(|db| PluginStore::new(db.clone(), &entry.name));
    let handler = create(declaration, abi, ctx, store)?;
    // Keep the library loaded for the life of the process (see module docs).
    std::mem::forget(library);
    tracing::info!(plugin = %entry.name, %version, %abi, path = %path.display(), "loaded shared-library plugin");
    Ok(Arc::new(handler))
}

/// Refuses a plugin of an ABI this chatd does not speak, saying what to do.
/// The messages are documented in `docs/plugins.md`.
fn check_abi(path: &Path, declared: &DeclaredPlugin<'_>) -> Result<(), String> {
    let theirs = declared.abi;
    if ABI_VERSION.loads(theirs) {
        return Ok(());
    }
    let built = format!(
        "{} was built against chat-api {} and speaks plugin ABI {theirs}; this chatd {} speaks plugin ABI {ABI_VERSION} (loads {OLDEST_LOADED} to {ABI_VERSION})",
        path.display(),
        declared.chat_api_version,
        env!("CARGO_PKG_VERSION"),
    );
    let fix = if theirs.major > ABI_VERSION.major {
        format!("upgrade chatd to a release that speaks plugin ABI {}.x, or rebuild the plugin against chat-api {}.x", theirs.major, ABI_VERSION.major)
    } else if theirs.major < ABI_VERSION.major {
        format!(
            "rebuild the plugin against chat-api {}.x",
            ABI_VERSION.major
        )
    } else {
        format!("upgrade chatd to a release that speaks plugin ABI {theirs} or later, or rebuild the plugin against a chat-api of ABI {ABI_VERSION} or older (`chatd plugin-abi` prints which)")
    };
    Err(format!("{built}: {fix}"))
}

/// Calls the library's constructor with the plugin's configuration and a
/// lent host.
fn create(
    declaration: &PluginDeclaration,
    abi: AbiVersion,
    ctx: PluginContext,
    store: Option<PluginStore>,
) -> Result<LoadedPlugin, PipelineError> {
    let config = ctx.config;
    let args = CreateArgs {
        plugin: AbiStr::new(&config.plugin),
        source: AbiStr::new(&config.source),
        config: AbiStr::new(&config.toml),
        host: host_table::lend(ctx.host, store),
    };
    // SAFETY: the declaration's ABI matched; the constructor takes C
    // arguments valid for the call and contains its panics.
    let created = unsafe { (declaration.create)(&args) };
    if created.plugin.vtable.is_null() {
        let message = created.error.to_string_lossy();
        return Err(ConfigError::invalid(&config, message).into());
    }
    // SAFETY: a non-null table of a plugin whose ABI this chatd loads.
    let table_size = unsafe { (*created.plugin.vtable).size };
    if table_size < std::mem::size_of::<PluginVTable>() {
        return Err(ConfigError::invalid(
            &config,
            "its plugin table is shorter than its ABI version promises: the library is corrupt",
        )
        .into());
    }
    // SAFETY: a live instance with a table of ABI 1.0's size or more.
    Ok(unsafe { LoadedPlugin::new(created.plugin, abi, &config.plugin) })
}

/// How this platform names a library file, e.g. `libNAME.so`.
pub fn library_file_name(crate_name: &str) -> String {
    format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        crate_name.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    )
}
