//! Explaining a statement as the gateway's connections run it: in its
//! generic plan ([`super::GENERIC_PLANS`]), planned once without the
//! parameters' values. `EXPLAIN` of a statement with bound values would
//! show a plan made for those values instead. For the tests that keep the
//! delivery path index-driven; nothing is run but the planning.

use sqlx::{AssertSqlSafe, PgConnection};

use super::Result;

/// The name a statement is prepared under to be explained.
const EXPLAINED: &str = "changewire_explained";

/// Where a parameter's value waits for `EXPLAIN EXECUTE` (a utility
/// statement takes no parameters of its own, so the values travel as
/// session settings, bound by [`parameter_values_sql`]).
fn parameter_setting(i: usize) -> String {
    format!("changewire_explain.p{i}")
}

/// Prepares `sql` on `conn` as [`EXPLAINED`], its plan to be the generic
/// one (planned without the parameters' values, once, as the gateway's
/// connections run it); returns its parameters' types. Then bind the
/// values to [`parameter_values_sql`], and [`explain_prepared`].
pub(crate) async fn prepare_explained(conn: &mut PgConnection, sql: &str) -> Result<Vec<String>> {
    sqlx::query("SET plan_cache_mode = force_generic_plan")
        .execute(&mut *conn)
        .await?;
    sqlx::raw_sql(AssertSqlSafe(format!("PREPARE {EXPLAINED} AS {sql}")))
        .execute(&mut *conn)
        .await?;
    let types: Vec<String> = sqlx::query_scalar(
        "SELECT parameter_types::text[] FROM pg_prepared_statements WHERE name = $1",
    )
    .bind(EXPLAINED)
    .fetch_one(&mut *conn)
    .await?;
    Ok(types)
}

/// The statement that keeps `n` bound parameters for [`explain_prepared`]
/// (one text column back).
pub(crate) fn parameter_values_sql(n: usize) -> String {
    let sets = (1..=n)
        .map(|i| format!("set_config('{}', ${i}::text, false)", parameter_setting(i)))
        .collect::<Vec<_>>()
        .join(", ");
    format!("SELECT concat_ws('', {sets})")
}

/// `EXPLAIN EXECUTE` of what [`prepare_explained`] prepared, with the
/// values [`parameter_values_sql`] kept; then drops it all.
pub(crate) async fn explain_prepared(conn: &mut PgConnection, types: &[String]) -> Result<String> {
    let arguments = types
        .iter()
        .enumerate()
        .map(|(i, t)| format!("current_setting('{}')::{t}", parameter_setting(i + 1)))
        .collect::<Vec<_>>()
        .join(", ");
    let lines: Vec<(String,)> = sqlx::query_as(AssertSqlSafe(format!(
        "EXPLAIN EXECUTE {EXPLAINED}({arguments})"
    )))
    .fetch_all(&mut *conn)
    .await?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DEALLOCATE {EXPLAINED}; RESET plan_cache_mode"
    )))
    .execute(&mut *conn)
    .await?;
    Ok(lines
        .into_iter()
        .map(|(l,)| l)
        .collect::<Vec<_>>()
        .join("\n"))
}
