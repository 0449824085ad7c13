//! What one GraphQL request may cost, checked before any resolver runs.
//!
//! async-graphql's complexity pass adds up a document's cost from the
//! `complexity` attribute of each field:
//!
//! * a field without one costs 1 plus what it selects;
//! * a list costs its page size (`first`, or its default when absent) times
//!   what one item selects ([`list`]), so nested lists multiply:
//!   `webhookEvents(first: 100) { attempts { outcome } }` costs
//!   100 × [`ATTEMPTS_PER_EVENT`] × 1;
//! * a list without a page argument counts its most likely length
//!   ([`bounded`] with the constants below);
//! * a field that runs a `COUNT` adds [`COUNT_COST`] ([`connection`],
//!   [`counted`]).
//!
//! Every item returned selects at least one field, so the cost bounds the
//! rows one request can read. [`QueryLimits`] refuses a document whose cost
//! is above `api.max_query_complexity`, or whose operation has more root
//! fields than `api.max_root_fields`, with the numbers in the error.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ErrorExtensionValues, ServerError, ServerResult, ValidationResult, Variables};

use crate::config::resources::DEFAULT_RESOURCES;

/// Page size of a root list or connection when `first` is absent.
pub(crate) const DEFAULT_PAGE_SIZE: i32 = 100;

/// Attempts counted per event: the largest retry budget a receiver may have
/// (`maxAttempts` is at most 50). Most events have far fewer; a manual retry
/// can add more.
pub(crate) const ATTEMPTS_PER_EVENT: usize = 50;

/// Subscriptions counted per receiver: one per (resource, action), 3 actions
/// of ION's 18 resources. A gateway configured with more resources can hold
/// more.
pub(crate) const SUBSCRIPTIONS_PER_RECEIVER: usize = 3 * DEFAULT_RESOURCES.len();

/// Operational subscriptions counted per listing (they are few: one or two
/// per on-call receiver).
pub(crate) const OPERATIONAL_SUBSCRIPTIONS: usize = 100;

/// Custom headers counted per receiver (the number is not capped; 32 is as
/// many as a plugin may add to one delivery).
pub(crate) const HEADERS_PER_RECEIVER: usize = 32;

/// What a `COUNT` over a filtered table costs: it reads every matching
/// row's index entry, so it weighs like many pages. At this weight the
/// default limit admits at most nine of them per request.
pub(crate) const COUNT_COST: usize = 5_000;

/// Items a page argument asks for, for the cost: at least 1 (a page size
/// below 1 is refused by the resolver).
fn items(first: i32) -> usize {
    usize::try_from(first).unwrap_or(0).max(1)
}

/// A list paged with `first`: `first` × what one item selects.
pub(crate) fn list(first: i32, child_complexity: usize) -> usize {
    items(first).saturating_mul(child_complexity)
}

/// A list of at most (or usually) `items` without a page argument.
pub(crate) fn bounded(items: usize, child_complexity: usize) -> usize {
    items.saturating_mul(child_complexity)
}

/// A field that runs a `COUNT` besides what it selects.
pub(crate) fn counted(child_complexity: usize) -> usize {
    COUNT_COST.saturating_add(child_complexity)
}

/// A connection: its page (`first`, default [`DEFAULT_PAGE_SIZE`]) times
/// what it selects, plus the `COUNT` behind `totalCount`, which the
/// resolvers run whether it is selected or not. `pageInfo` and `totalCount`
/// are counted once per item: the bound stays simple and errs high.
pub(crate) fn connection(first: Option<i32>, child_complexity: usize) -> usize {
    counted(list(first.unwrap_or(DEFAULT_PAGE_SIZE), child_complexity))
}

/// The limits of `[api]`, checked on every document after its cost is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueryLimits {
    /// `api.max_query_complexity`.
    pub(crate) max_cost: usize,
    /// `api.max_root_fields`.
    pub(crate) max_root_fields: usize,
}

impl QueryLimits {
    /// The errors for a document of `cost` whose largest operation has
    /// `root_fields` root fields; empty when it is within the limits.
    pub(crate) fn check(&self, cost: usize, root_fields: usize) -> Vec<ServerError> {
        let mut errors = Vec::new();
        if cost > self.max_cost {
            errors.push(refusal(
                format!(
                    "query cost {cost} exceeds the limit of {} (`api.max_query_complexity`): a list \
                     costs its page size (`first`) times what each item selects, and a connection \
                     adds {COUNT_COST} for its count; ask for smaller pages or fewer nested lists",
                    self.max_cost
                ),
                [("cost", cost), ("limit", self.max_cost)],
            ));
        }
        if root_fields > self.max_root_fields {
            errors.push(refusal(
                format!(
                    "the operation has {root_fields} root fields (each alias counts); the limit \
                     is {} (`api.max_root_fields`): split it into several requests",
                    self.max_root_fields
                ),
                [("rootFields", root_fields), ("limit", self.max_root_fields)],
            ));
        }
        errors
    }
}

fn refusal(message: String, numbers: [(&str, usize); 2]) -> ServerError {
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", "BAD_USER_INPUT");
    for (name, value) in numbers {
        extensions.set(name, value);
    }
    let mut error = ServerError::new(message, None);
    error.extensions = Some(extensions);
    error
}

impl ExtensionFactory for QueryLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(LimitCheck {
            limits: *self,
            root_fields: AtomicUsize::new(0),
        })
    }
}

/// One request's check: counts root fields when the document is parsed,
/// compares both numbers with the limits once validation has its cost.
struct LimitCheck {
    limits: QueryLimits,
    root_fields: AtomicUsize,
}

#[async_graphql::async_trait::async_trait]
impl Extension for LimitCheck {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        self.root_fields
            .store(root_fields(&document), Ordering::Relaxed);
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        let errors = self
            .limits
            .check(result.complexity, self.root_fields.load(Ordering::Relaxed));
        if errors.is_empty() {
            Ok(result)
        } else {
            Err(errors)
        }
    }
}

/// Root fields of the document's largest operation, fragments expanded
/// (aliases and repeats each count).
pub(crate) fn root_fields(document: &ExecutableDocument) -> usize {
    let mut counter = RootCounter {
        document,
        fragments: HashMap::new(),
    };
    document
        .operations
        .iter()
        .map(|(_, op)| counter.count(&op.node.selection_set.node))
        .max()
        .unwrap_or(0)
}

/// Counts fields of a selection set; each fragment is counted once
/// (memoised), so the work stays linear in the document's size.
struct RootCounter<'a> {
    document: &'a ExecutableDocument,
    /// Fragment name → its field count; `None` while it is being counted
    /// (a cycle, which validation refuses, counts 0).
    fragments: HashMap<&'a str, Option<usize>>,
}

impl<'a> RootCounter<'a> {
    fn count(&mut self, set: &'a SelectionSet) -> usize {
        let mut n: usize = 0;
        for item in &set.items {
            let add = match &item.node {
                Selection::Field(_) => 1,
                Selection::InlineFragment(f) => self.count(&f.node.selection_set.node),
                Selection::FragmentSpread(s) => self.fragment(&s.node.fragment_name.node),
            };
            n = n.saturating_add(add);
        }
        n
    }

    fn fragment(&mut self, name: &'a async_graphql::Name) -> usize {
        if let Some(known) = self.fragments.get(name.as_str()) {
            return known.unwrap_or(0);
        }
        self.fragments.insert(name.as_str(), None);
        let n = self
            .document
            .fragments
            .get(name)
            .map_or(0, |f| self.count(&f.node.selection_set.node));
        self.fragments.insert(name.as_str(), Some(n));
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots(query: &str) -> usize {
        root_fields(&async_graphql::parser::parse_query(query).expect("parses"))
    }

    #[test]
    fn root_fields_count_aliases_fragments_and_the_largest_operation() {
        assert_eq!(roots("{ a b: a c: a }"), 3);
        assert_eq!(
            roots("{ a ...F ... on Q { d e } } fragment F on Q { b c }"),
            5
        );
        assert_eq!(
            roots("{ ...F ...F } fragment F on Q { ...G ...G } fragment G on Q { a b }"),
            8
        );
        assert_eq!(roots("query A { a } query B { a b: a c: a }"), 3);
        // A cycle (refused by validation) does not loop here.
        assert_eq!(roots("{ ...F } fragment F on Q { a ...F }"), 1);
    }

    #[test]
    fn deeply_shared_fragments_are_counted_without_blowing_up() {
        // Each fragment spreads the next twice: 2^40 root fields, counted once each.
        let mut doc = String::from("{ ...F0 }");
        for i in 0..40 {
            doc.push_str(&format!(
                " fragment F{i} on Q {{ ...F{} ...F{} }}",
                i + 1,
                i + 1
            ));
        }
        doc.push_str(" fragment F40 on Q { a }");
        assert_eq!(roots(&doc), 1 << 40);
    }

    #[test]
    fn lists_cost_their_page_times_their_items() {
        assert_eq!(list(10, 3), 30);
        assert_eq!(list(20, 3), 60);
        assert_eq!(list(-5, 3), 3, "a bad page size still costs its items once");
        assert_eq!(connection(None, 2), COUNT_COST + 200);
        assert_eq!(connection(Some(7), 2), COUNT_COST + 14);
        assert_eq!(list(i32::MAX, usize::MAX), usize::MAX, "saturates");
    }

    #[test]
    fn refusals_state_the_numbers_and_the_key() {
        let limits = QueryLimits {
            max_cost: 100,
            max_root_fields: 2,
        };
        assert!(limits.check(100, 2).is_empty());
        let errors = limits.check(101, 3);
        assert_eq!(errors.len(), 2);
        assert!(
            errors[0].message.starts_with(
                "query cost 101 exceeds the limit of 100 (`api.max_query_complexity`)"
            ),
            "{}",
            errors[0].message
        );
        assert!(
            errors[1].message.contains("3 root fields")
                && errors[1].message.contains("`api.max_root_fields`"),
            "{}",
            errors[1].message
        );
        let ext = errors[0].extensions.as_ref().expect("extensions");
        assert_eq!(
            ext.get("code"),
            Some(&async_graphql::Value::from("BAD_USER_INPUT"))
        );
        assert_eq!(ext.get("cost"), Some(&async_graphql::Value::from(101usize)));
        assert_eq!(
            ext.get("limit"),
            Some(&async_graphql::Value::from(100usize))
        );
    }
}
