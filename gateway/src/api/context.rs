//! What every resolver can reach.

use std::sync::Arc;

use async_graphql::Context;

use super::auth::Caller;
use super::error::{Error, Result};
use crate::config::Config;
use crate::delivery::handoff::Handoff;
use crate::destination::Policy;
use crate::plugins::PluginRuntime;
use crate::secrets::SecretBox;
use crate::signals::Signals;
use crate::store::Store;
use crate::traces::Traces;

/// Shared state of the API.
#[derive(Clone)]
pub(crate) struct ApiContext {
    /// The store.
    pub(crate) store: Store,
    /// The configuration.
    pub(crate) config: Arc<Config>,
    /// Secrets at rest.
    pub(crate) secrets: SecretBox,
    /// Wake-ups for the delivery engine.
    pub(crate) signals: Arc<Signals>,
    /// Destination rules.
    pub(crate) policy: Policy,
    /// The plugin host and registry.
    pub(crate) plugins: Arc<PluginRuntime>,
    /// Producer events, committed in groups.
    pub(crate) publisher: crate::fanout::Publisher,
    /// This process's delivery engine, to hand new deliveries to.
    pub(crate) handoff: Option<Handoff>,
    /// Where spans of published changes go.
    pub(crate) traces: Traces,
}

impl ApiContext {
    /// Builds the API state.
    pub(crate) fn new(
        store: Store,
        config: Arc<Config>,
        signals: Arc<Signals>,
        plugins: Arc<PluginRuntime>,
        handoff: Option<Handoff>,
        traces: Traces,
    ) -> Self {
        ApiContext {
            secrets: SecretBox::new(config.secret_key.as_ref()),
            policy: config.destination_policy(),
            publisher: crate::fanout::Publisher::start(
                store.clone(),
                signals.clone(),
                handoff.clone(),
                traces.clone(),
            ),
            handoff,
            traces,
            store,
            config,
            signals,
            plugins,
        }
    }
}

/// The API state from a resolver's context.
pub(crate) fn api<'a>(ctx: &Context<'a>) -> &'a ApiContext {
    // The schema is always built with an ApiContext (see `schema::build`).
    ctx.data_unchecked::<ApiContext>()
}

/// The caller from a resolver's context.
pub(crate) fn caller<'a>(ctx: &Context<'a>) -> Result<&'a Caller> {
    ctx.data_opt::<Caller>().ok_or(Error::Unauthenticated)
}

/// The caller, who must be an admin.
pub(crate) fn admin<'a>(ctx: &Context<'a>) -> Result<&'a Caller> {
    let caller = caller(ctx)?;
    caller.require_admin()?;
    Ok(caller)
}
