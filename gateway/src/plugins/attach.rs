//! Attaching a plugin to a receiver: compile it here, store it (a new
//! revision), install it. Through the API, and at start-up for the
//! plugins named in the configuration file.

use super::{Error, PluginRuntime};
use crate::config::Config;
use crate::model::ReceiverId;
use crate::store::Store;
use crate::store::plugins::PluginRow;

/// Validates, compiles and stores a plugin, and installs it here.
///
/// Refuses a receiver that does not exist ([`Error::NotFound`]), a module
/// that is not a plugin this gateway can run ([`Error::Invalid`], with the
/// host's reason) and any attach while plugins are off here
/// ([`Error::Disabled`]); nothing is stored then.
pub(crate) async fn attach(
    store: &Store,
    runtime: &PluginRuntime,
    receiver_id: ReceiverId,
    name: &str,
    wasm: Vec<u8>,
    config: &str,
) -> Result<PluginRow, Error> {
    if store.receiver(receiver_id).await?.is_none() {
        return Err(Error::NotFound { receiver_id });
    }
    let plugin = runtime.compile(wasm.clone()).await?;
    let row = store
        .attach_plugin(receiver_id, name, plugin.sha256(), &wasm, config)
        .await?;
    runtime.install(receiver_id, &row.revision, plugin, name, config);
    Ok(row)
}

/// Attaches the plugins named in the configuration file
/// (`[[plugins.attach]]`), at start-up; each is named after its file.
pub(crate) async fn attach_from_config(
    config: &Config,
    store: &Store,
    runtime: &PluginRuntime,
) -> Result<(), Error> {
    for (receiver_id, path, plugin_config) in &config.plugins.attach {
        let wasm = std::fs::read(path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("plugin")
            .to_string();
        attach(
            store,
            runtime,
            ReceiverId(*receiver_id),
            &name,
            wasm,
            plugin_config,
        )
        .await
        .map_err(|source| Error::FromConfig {
            path: path.clone(),
            receiver_id: *receiver_id,
            source: Box::new(source),
        })?;
    }
    Ok(())
}
