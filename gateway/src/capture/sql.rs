//! SQL text both capture backends and the foreign-key expansion build:
//! quoted identifiers, and SQLite's row-as-JSON expression.

/// Quotes `table` or `schema.table` as identifiers (PostgreSQL).
pub(crate) fn quote(table: &str) -> String {
    table
        .split('.')
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join(".")
}

/// `json_object('c', <prefix>"c", …)` for a column list; BLOBs become hex
/// (SQLite).
pub(crate) fn json_object_expr(columns: &[String], prefix: &str) -> String {
    let pairs: Vec<String> = columns
        .iter()
        .map(|c| {
            let col = format!("{prefix}\"{c}\"");
            format!("'{c}', CASE typeof({col}) WHEN 'blob' THEN hex({col}) ELSE {col} END")
        })
        .collect();
    format!("json_object({})", pairs.join(", "))
}
