//! The GraphQL schema: one root merged from each resource's file.

use async_graphql::{Context, EmptySubscription, MergedObject, Object, Schema, SimpleObject};

use super::context::{ApiContext, api, caller};
use super::error::FieldResult;
use super::events::{EventMutation, EventQuery};
use super::ingest::IngestMutation;
use super::plugins::{PluginMutation, PluginQuery};
use super::receivers::{ReceiverMutation, ReceiverQuery};
use super::scalars::with_resources;
use super::subscriptions::{SubscriptionMutation, SubscriptionQuery};

/// A configured resource.
#[derive(SimpleObject, Debug, Clone)]
pub struct ResourceInfo {
    /// The `ResourceEnum` value.
    pub name: String,
    /// The captured table, if any.
    pub table: Option<String>,
}

/// Queries about the gateway itself.
#[derive(Default)]
pub struct MetaQuery;

#[Object]
impl MetaQuery {
    /// The configured resources and their tables.
    async fn resources(&self, ctx: &Context<'_>) -> FieldResult<Vec<ResourceInfo>> {
        caller(ctx)?;
        Ok(api(ctx)
            .config
            .resources
            .iter()
            .map(|r| ResourceInfo {
                name: r.name.clone(),
                table: r.table.clone(),
            })
            .collect())
    }
}

/// Query root.
#[derive(MergedObject, Default)]
pub struct QueryRoot(
    ReceiverQuery,
    SubscriptionQuery,
    EventQuery,
    PluginQuery,
    MetaQuery,
);

/// Mutation root.
#[derive(MergedObject, Default)]
pub struct MutationRoot(
    ReceiverMutation,
    SubscriptionMutation,
    EventMutation,
    IngestMutation,
    PluginMutation,
);

/// The schema type.
pub type ApiSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// Builds the schema for this configuration (its resources become `ResourceEnum`).
pub fn build(state: ApiContext) -> ApiSchema {
    let names = state.config.resources.names();
    let depth = state.config.api.max_query_depth;
    let complexity = state.config.api.max_query_complexity;
    with_resources(names, || {
        Schema::build(
            QueryRoot::default(),
            MutationRoot::default(),
            EmptySubscription,
        )
        .data(state)
        .limit_depth(depth)
        .limit_complexity(complexity)
        .finish()
    })
}

/// The SDL of the schema for a configuration (committed as `gateway/schema.graphql`).
pub fn sdl(state: ApiContext) -> String {
    build(state).sdl()
}

/// The SDL for a configuration, without a store (for `changewire schema`).
pub fn sdl_for_config(config: std::sync::Arc<crate::config::Config>) -> String {
    with_resources(config.resources.names(), || {
        Schema::build(
            QueryRoot::default(),
            MutationRoot::default(),
            EmptySubscription,
        )
        .finish()
        .sdl()
    })
}

#[cfg(test)]
mod tests {
    /// The served schema (with the default resources) must equal the
    /// committed `gateway/schema.graphql`, so every API change is a visible
    /// diff. Regenerate with `cargo run -p changewire-gateway -- schema > gateway/schema.graphql`.
    #[test]
    fn committed_schema_is_current() {
        let config = std::sync::Arc::new(crate::config::Config::from_toml("").expect("defaults"));
        let served = super::sdl_for_config(config);
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.graphql");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            served == committed,
            "gateway/schema.graphql is stale; run `cargo run -p changewire-gateway -- schema > gateway/schema.graphql` and commit the diff"
        );
    }
}
