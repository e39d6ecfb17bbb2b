//! Shared-library plugins (`[[plugin]]` entries with a `path`).

use std::sync::Arc;

use chat_api::{MessageHandler, PluginContext};

use crate::config::PluginEntry;
use crate::pipeline::PipelineError;

/// Loads a plugin from a shared library.
pub fn load(
    entry: &PluginEntry,
    ctx: PluginContext,
) -> Result<Arc<dyn MessageHandler>, PipelineError> {
    let _ = ctx;
    Err(PipelineError::Load {
        source_name: entry.name.clone(),
        name: entry.name.clone(),
        message: "this build of chatd cannot load shared-library plugins yet; remove `path` or disable the plugin".to_string(),
    })
}
