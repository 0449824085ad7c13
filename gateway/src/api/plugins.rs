//! Plugins: attach a WebAssembly component to a receiver, detach it, list them.
//! The GraphQL side only; the rules are in [`crate::plugins`].

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::context::{admin, api, caller};
use super::error::{Error, FieldResult};
use super::limits;
use super::scalars::{id, parse_id};
use crate::model::ReceiverId;
use crate::plugins::{self, LoadState, PluginRuntime};
use crate::store::plugins::PluginRow;
use crate::timefmt::format_ms;

/// Largest module accepted, in bytes.
pub(crate) const MAX_PLUGIN_BYTES: usize = 20 << 20;

/// Whether an attached plugin is loaded on the gateway that answers.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WebhookPluginStatus {
    /// Compiled and transforming deliveries.
    Loaded,
    /// Attached, not compiled on this gateway yet (its deliveries wait).
    Loading,
    /// It does not compile on this gateway (see `error`); its deliveries
    /// are held unless the receiver chose `DELIVER_ORIGINAL`.
    Failed,
    /// Plugins are disabled on this gateway; the same holds as for `FAILED`.
    Disabled,
}

/// A plugin attached to a receiver.
#[derive(SimpleObject, Debug, Clone)]
pub(crate) struct WebhookPlugin {
    /// The receiver.
    pub(crate) receiver_id: ID,
    /// A name for it.
    pub(crate) name: String,
    /// SHA-256 of the module, hex.
    pub(crate) sha256: String,
    /// Size of the module, bytes.
    pub(crate) size: i32,
    /// Its configuration (JSON), given to every call.
    pub(crate) config: Json<serde_json::Value>,
    /// When it was attached.
    pub(crate) attached_at: String,
    /// Changes at every attach; each delivery is transformed by the
    /// revision attached when it was leased.
    pub(crate) revision: String,
    /// Whether it is loaded on the gateway that answers this query.
    pub(crate) status: WebhookPluginStatus,
    /// Why it is not loaded (`FAILED`, `DISABLED`), and when it is compiled again.
    pub(crate) error: Option<String>,
}

impl WebhookPlugin {
    /// A stored plugin with its state on this gateway.
    pub(crate) fn new(p: PluginRow, runtime: &PluginRuntime) -> Self {
        let (status, error) = match runtime.load_state(p.receiver_id, &p.revision) {
            LoadState::Loaded => (WebhookPluginStatus::Loaded, None),
            LoadState::Loading => (WebhookPluginStatus::Loading, None),
            LoadState::Failed { error, retry_at } => (
                WebhookPluginStatus::Failed,
                Some(format!(
                    "{error} (compiled again at {})",
                    format_ms(retry_at)
                )),
            ),
            LoadState::Disabled { reason } => (
                WebhookPluginStatus::Disabled,
                Some(format!("plugins are disabled on this gateway: {reason}")),
            ),
        };
        WebhookPlugin {
            receiver_id: id(p.receiver_id),
            name: p.name,
            sha256: p.sha256,
            size: i32::try_from(p.wasm.len()).unwrap_or(i32::MAX),
            config: Json(serde_json::from_str(&p.config).unwrap_or_default()),
            attached_at: format_ms(p.created_at),
            revision: p.revision,
            status,
            error,
        }
    }
}

/// Input of `attachWebhookPlugin`.
#[derive(InputObject, Debug, Clone)]
pub(crate) struct AttachWebhookPluginInput {
    /// The receiver.
    pub(crate) receiver_id: ID,
    /// The WebAssembly component, base64.
    pub(crate) wasm: String,
    /// Configuration given to every call (a JSON object; default `{}`).
    pub(crate) config: Option<Json<serde_json::Value>>,
    /// A name for it (default `plugin`).
    pub(crate) name: Option<String>,
}

/// Input of `detachWebhookPlugin`.
#[derive(InputObject, Debug, Clone)]
pub(crate) struct DetachWebhookPluginInput {
    /// The receiver.
    pub(crate) receiver_id: ID,
}

/// Payload of `attachWebhookPlugin`.
#[derive(SimpleObject)]
pub(crate) struct AttachWebhookPluginPayload {
    /// The attached plugin.
    pub(crate) plugin: WebhookPlugin,
}

/// Payload of `detachWebhookPlugin`.
#[derive(SimpleObject)]
pub(crate) struct DetachWebhookPluginPayload {
    /// Whether a plugin was attached.
    pub(crate) detached: bool,
}

/// The API error for a refused attach: `FORBIDDEN` while plugins are off
/// here, `BAD_USER_INPUT` on `input.wasm` for a module that is not a
/// runnable plugin, `NOT_FOUND` for a receiver that does not exist.
fn attach_error(err: plugins::Error) -> Error {
    match err {
        plugins::Error::Disabled { .. } => Error::Forbidden(err.to_string()),
        plugins::Error::Invalid { reason } => Error::bad_input("input.wasm", reason),
        plugins::Error::NotFound { receiver_id } => Error::NotFound {
            entity: "receiver",
            id: receiver_id.to_string(),
        },
        plugins::Error::Store(err) => err.into(),
        // Only start-up attaches read files.
        plugins::Error::Read { .. } | plugins::Error::FromConfig { .. } => {
            Error::Internal(crate::report::Report(&err).to_string())
        }
    }
}

/// Plugin queries.
#[derive(Default)]
pub(crate) struct PluginQuery;

#[Object]
impl PluginQuery {
    /// Attached plugins, by receiver id: the first `first` of them.
    #[graphql(complexity = "limits::list(first, child_complexity)")]
    async fn webhook_plugins(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 100)] first: i32,
    ) -> FieldResult<Vec<WebhookPlugin>> {
        caller(ctx)?;
        let limit = usize::try_from(super::events::page_size(ctx, first)?).unwrap_or(usize::MAX);
        let state = api(ctx);
        let mut out = Vec::new();
        for entry in state.store.plugin_index().await?.into_iter().take(limit) {
            if let Some(row) = state.store.plugin_for(entry.receiver_id).await? {
                out.push(WebhookPlugin::new(row, &state.plugins));
            }
        }
        Ok(out)
    }
}

/// Plugin mutations.
#[derive(Default)]
pub(crate) struct PluginMutation;

#[Object]
impl PluginMutation {
    /// Attaches (or hot-swaps) a receiver's plugin. The module is validated
    /// and compiled first; an invalid one is refused with the compiler's reason.
    async fn attach_webhook_plugin(
        &self,
        ctx: &Context<'_>,
        input: AttachWebhookPluginInput,
    ) -> FieldResult<AttachWebhookPluginPayload> {
        admin(ctx)?;
        let state = api(ctx);
        let rid = ReceiverId(parse_id("input.receiverId", &input.receiver_id)?);
        let wasm = BASE64
            .decode(input.wasm.trim())
            .map_err(|e| Error::bad_input("input.wasm", format!("is not base64: {e}")))?;
        if wasm.len() > MAX_PLUGIN_BYTES {
            return Err(Error::bad_input(
                "input.wasm",
                format!("is {} bytes; the limit is {MAX_PLUGIN_BYTES}", wasm.len()),
            )
            .into());
        }
        let config = match input.config {
            None => "{}".to_string(),
            Some(Json(v @ serde_json::Value::Object(_))) => v.to_string(),
            Some(_) => return Err(Error::bad_input("input.config", "must be a JSON object").into()),
        };
        let name = match input.name.as_deref() {
            Some(n) => crate::model::validate::name("input.name", n, 200)?,
            None => "plugin".into(),
        };
        let row = plugins::attach(&state.store, &state.plugins, rid, &name, wasm, &config)
            .await
            .map_err(attach_error)?;
        state.signals.receivers_changed();
        Ok(AttachWebhookPluginPayload {
            plugin: WebhookPlugin::new(row, &state.plugins),
        })
    }

    /// Detaches a receiver's plugin; deliveries go out untransformed again.
    async fn detach_webhook_plugin(
        &self,
        ctx: &Context<'_>,
        input: DetachWebhookPluginInput,
    ) -> FieldResult<DetachWebhookPluginPayload> {
        admin(ctx)?;
        let state = api(ctx);
        let rid = ReceiverId(parse_id("input.receiverId", &input.receiver_id)?);
        let detached = state.store.detach_plugin(rid).await?;
        state.plugins.remove(rid);
        state.signals.receivers_changed();
        Ok(DetachWebhookPluginPayload { detached })
    }
}
