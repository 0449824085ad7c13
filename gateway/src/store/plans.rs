//! `EXPLAIN` of the fan-out statement, for the test that keeps the delivery
//! path index-driven (the lease's and the recorder's sit beside their
//! statements in `deliveries/`). Nothing is written: statements are only
//! planned.

use changewire_core::Action;
use sqlx::AssertSqlSafe;

use super::changes::{Claim, Claims, NeedsSeen, NewChange};
use super::explain::{explain_prepared, parameter_values_sql, prepare_explained};
use super::fan_out_pg::{PG_FAN_OUT, pg_fan_out_args};
use super::{Result, now_ms};
use crate::envelope::ChangePayload;
use crate::model::ReceiverId;

/// The plan PostgreSQL picks for the fan-out of `n` captured changes of
/// `resource` (updates, ~100-byte rows), each receiver in `claimed` taking
/// its new deliveries leased, as `EXPLAIN` prints it: the generic plan, as
/// the fan-out's connections run it.
pub(crate) async fn explain_fan_out(
    pool: &sqlx::PgPool,
    resource: &str,
    n: usize,
    claimed: &[ReceiverId],
) -> Result<String> {
    let now = now_ms();
    let changes: Vec<NewChange> = (0..n)
        .map(|i| {
            let mut payload = ChangePayload::new(resource, Action::Update, i.to_string(), now, now);
            payload.old = Some(format!(r#"{{"id": {i}, "status": "queued"}}"#));
            payload.new = Some(format!(r#"{{"id": {i}, "status": "running"}}"#));
            NewChange {
                source: "explain".into(),
                source_key: Some(format!("{i}@{now}")),
                table_name: Some("runs".into()),
                payload,
            }
        })
        .collect();
    let claims = Claims {
        owner: "explain".into(),
        receivers: claimed
            .iter()
            .map(|r| Claim {
                receiver_id: *r,
                limit: 32,
                lease_until: now + 60_000,
            })
            .collect(),
    };
    let mut needs = NeedsSeen::default();
    needs.push(resource, "[]", true);
    let args =
        pg_fan_out_args(&changes, &claims, Some(&needs), now).map_err(sqlx::Error::Encode)?;
    let mut conn = pool.acquire().await?;
    let types = prepare_explained(&mut conn, PG_FAN_OUT).await?;
    sqlx::query_with(AssertSqlSafe(parameter_values_sql(types.len())), args)
        .execute(&mut *conn)
        .await?;
    explain_prepared(&mut conn, &types).await
}
