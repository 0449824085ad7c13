//! The GraphQL schema: one root merged from each resource's file.

use async_graphql::{
    Context, EmptySubscription, MergedObject, Object, Schema, SchemaBuilder, SimpleObject,
};

use super::console::ConsoleMutation;
use super::context::{ApiContext, api, caller};
use super::error::FieldResult;
use super::events::EventQuery;
use super::ingest::IngestMutation;
use super::limits::QueryLimits;
use super::operational::{OperationalMutation, OperationalQuery};
use super::plugins::{PluginMutation, PluginQuery};
use super::receivers::{
    ReceiverHeaderMutation, ReceiverMutation, ReceiverPauseMutation, ReceiverQuery,
    ReceiverSecretMutation,
};
use super::redelivery::{EventMutation, RedeliveryQuery};
use super::scalars::with_resources;
use super::subscriptions::{SubscriptionMutation, SubscriptionQuery};
use crate::config::Config;

/// A configured resource.
#[derive(SimpleObject, Debug, Clone)]
pub(crate) struct ResourceInfo {
    /// The `ResourceEnum` value.
    pub(crate) name: String,
    /// The captured table, if any.
    pub(crate) table: Option<String>,
}

/// Queries about the gateway itself.
#[derive(Default)]
pub(crate) struct MetaQuery;

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
pub(crate) struct QueryRoot(
    ReceiverQuery,
    SubscriptionQuery,
    EventQuery,
    RedeliveryQuery,
    PluginQuery,
    OperationalQuery,
    MetaQuery,
);

/// Mutation root.
#[derive(MergedObject, Default)]
pub(crate) struct MutationRoot(
    ReceiverMutation,
    ReceiverHeaderMutation,
    ReceiverSecretMutation,
    ReceiverPauseMutation,
    SubscriptionMutation,
    EventMutation,
    IngestMutation,
    PluginMutation,
    OperationalMutation,
    ConsoleMutation,
);

/// The schema type.
pub(crate) type ApiSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// A schema being built.
type Builder = SchemaBuilder<QueryRoot, MutationRoot, EmptySubscription>;

/// The schema with this configuration's limits: depth (async-graphql's own
/// check), cost and root fields ([`QueryLimits`], which states the numbers).
fn builder(config: &Config) -> Builder {
    builder_with(
        QueryLimits {
            max_cost: config.api.max_query_complexity,
            max_root_fields: config.api.max_root_fields,
        },
        config.api.max_query_depth,
    )
}

fn builder_with(limits: QueryLimits, depth: usize) -> Builder {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        EmptySubscription,
    )
    .limit_depth(depth)
    .extension(limits)
}

/// Builds the schema for this configuration (its resources become `ResourceEnum`).
pub(crate) fn build(state: ApiContext) -> ApiSchema {
    let config = state.config.clone();
    with_resources(config.resources.names(), || {
        builder(&config).data(state).finish()
    })
}

/// The SDL for a configuration, without a store (for `changewire schema`).
pub(crate) fn sdl_for_config(config: std::sync::Arc<Config>) -> String {
    with_resources(config.resources.names(), || builder(&config).finish().sdl())
}

#[cfg(test)]
mod tests {
    use async_graphql::registry::{MetaType, MetaTypeName, Registry};
    use async_graphql::{OutputType, Request, Variables};
    use serde_json::json;

    use super::*;
    use crate::api::limits::{ATTEMPTS_PER_EVENT, COUNT_COST, SUBSCRIPTIONS_PER_RECEIVER};

    /// The cost async-graphql computes for `query`, read from the refusal
    /// of a schema whose limit is 0 (so nothing ever runs).
    async fn cost_with(query: &str, variables: serde_json::Value) -> usize {
        let config = Config::from_toml("").expect("defaults");
        let limits = QueryLimits {
            max_cost: 0,
            max_root_fields: usize::MAX,
        };
        let schema = with_resources(config.resources.names(), || {
            builder_with(limits, 64).finish()
        });
        let request = Request::new(query).variables(Variables::from_json(variables));
        let response = schema.execute(request).await;
        let error = response.errors.first().expect("refused");
        let cost = error
            .extensions
            .as_ref()
            .and_then(|e| e.get("cost"))
            .unwrap_or_else(|| panic!("not a cost refusal: {}", error.message));
        cost.to_string().parse().expect("a number")
    }

    async fn cost(query: &str) -> usize {
        cost_with(query, json!({})).await
    }

    #[tokio::test]
    async fn list_cost_grows_with_first() {
        assert_eq!(cost("{ webhookEvents(first: 10) { id } }").await, 10);
        assert_eq!(cost("{ webhookEvents(first: 20) { id status } }").await, 40);
        assert_eq!(cost("{ webhookEvents { id } }").await, 100, "default page");
        let by_variable = "query($n: Int!) { webhookEvents(first: $n) { id } }";
        assert_eq!(cost_with(by_variable, json!({"n": 300})).await, 300);
        assert_eq!(
            cost("{ webhookPlugins(first: 5) { name sha256 } }").await,
            10
        );
        assert_eq!(
            cost("{ a: webhookEvents(first: 10) { id } b: webhookEvents(first: 10) { id } }").await,
            20,
            "aliases add up"
        );
    }

    #[tokio::test]
    async fn nested_lists_multiply() {
        assert_eq!(
            cost("{ webhookEvents(first: 10) { id attempts { outcome error } } }").await,
            10 * (1 + ATTEMPTS_PER_EVENT * 2)
        );
        let receivers = "{ webhookReceivers(first: 4) { edges { node { subscriptions { id } events(first: 3) { id } } } } }";
        // edges (1) + node (1) + subscriptions + events, per receiver.
        assert_eq!(
            cost(receivers).await,
            COUNT_COST + 4 * (2 + SUBSCRIPTIONS_PER_RECEIVER + 3)
        );
    }

    #[tokio::test]
    async fn connections_and_counts_carry_the_count() {
        let q = "{ webhookEventConnection(first: 10) { edges { node { id } } totalCount } }";
        // Per item: edges (1) + node (1) + id (1), and totalCount (1).
        assert_eq!(cost(q).await, COUNT_COST + 10 * 4);
        assert_eq!(
            cost("{ webhookSubscriptions { totalCount } }").await,
            COUNT_COST + 100
        );
        assert_eq!(
            cost(
                "mutation { redeliverFailedWebhookEvents(input: { receiverId: 1 }) { job { id } } }"
            )
            .await,
            COUNT_COST + 2
        );
    }

    /// Lists of scalars or enums come from the row already read; every
    /// other list reads rows and must carry a cost.
    #[test]
    fn every_list_of_objects_has_a_cost() {
        let config = Config::from_toml("").expect("defaults");
        let mut registry = Registry::default();
        with_resources(config.resources.names(), || {
            QueryRoot::create_type_info(&mut registry);
            MutationRoot::create_type_info(&mut registry);
        });
        // Read from the configuration, not the store.
        let exempt = ["ResourceInfo"];
        let mut missing = Vec::new();
        for (type_name, ty) in &registry.types {
            let MetaType::Object { fields, .. } = ty else {
                continue;
            };
            // Introspection, and connections' own fields (priced by the connection).
            if type_name.starts_with("__") || type_name.ends_with("Connection") {
                continue;
            }
            for (name, field) in fields {
                let inner = MetaTypeName::concrete_typename(&field.ty);
                let is_list = field.ty.contains('[');
                let rows = matches!(registry.types.get(inner), Some(MetaType::Object { .. }));
                let reads_rows = (is_list && rows) || inner.ends_with("Connection");
                let key = format!("{type_name}.{name}");
                if reads_rows && field.compute_complexity.is_none() && !exempt.contains(&inner) {
                    missing.push(key);
                }
            }
        }
        assert!(
            missing.is_empty(),
            "list fields without a cost: {missing:?}"
        );
    }

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
