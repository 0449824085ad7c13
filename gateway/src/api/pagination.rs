//! Cursor pagination: `edges { node cursor } pageInfo { hasNextPage endCursor } totalCount`.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{OutputType, SimpleObject};

use super::error::{Error, Result};

/// Extra connection fields.
#[derive(SimpleObject, Debug, Clone, Copy)]
pub(crate) struct TotalCount {
    /// Number of objects matching, across all pages.
    pub(crate) total_count: i64,
}

/// A page of objects.
pub(crate) type Page<T> = Connection<String, T, TotalCount>;

/// Builds a page from `(id, node)` pairs; the cursor is the id.
pub(crate) fn page<T: OutputType>(
    items: Vec<(i64, T)>,
    has_next: bool,
    has_previous: bool,
    total: i64,
) -> Page<T> {
    let mut connection = Connection::with_additional_fields(
        has_previous,
        has_next,
        TotalCount { total_count: total },
    );
    connection.edges.extend(
        items
            .into_iter()
            .map(|(id, node)| Edge::new(id.to_string(), node)),
    );
    connection
}

/// Reads a cursor (an id); none means "from the start" (0).
pub(crate) fn decode_cursor(field: &str, cursor: Option<&str>) -> Result<i64> {
    match cursor {
        None => Ok(0),
        Some(c) => c
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|v| *v >= 0)
            .ok_or_else(|| Error::bad_input(field, format!("`{c}` is not a cursor from this API"))),
    }
}
