//! Escalation bookkeeping: which steps fired for which cases, and on-call overrides.

use super::{cases, Store, Tx};
use crate::store::CaseRow;
use sqlx::Row;
use std::collections::HashMap;

impl Store {
    /// Unresolved cases (served by the partial index `cases_unresolved`).
    pub async fn unresolved_cases(&self) -> anyhow::Result<Vec<CaseRow>> {
        self.list_cases(&cases::CaseFilter { open_only: true, ..Default::default() }).await
    }

    /// The highest round fired so far per (case, step), for unresolved cases.
    pub async fn fired_rounds(&self) -> anyhow::Result<HashMap<(i64, i64), i64>> {
        let rows = sqlx::query(
            "SELECT f.case_id, f.step, MAX(f.round) AS round FROM escalation_fires f \
             JOIN cases c ON c.id = f.case_id WHERE c.state <> 'resolved' GROUP BY f.case_id, f.step",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok(((r.try_get("case_id")?, r.try_get("step")?), r.try_get("round")?))).collect()
    }

    /// The person covering `rotation` at `at` by override, if any (latest override wins).
    pub async fn oncall_override(&self, rotation: &str, at: i64) -> anyhow::Result<Option<String>> {
        oncall_override_with(self.pool(), rotation, at).await
    }

    pub async fn set_oncall_override(
        &self,
        rotation: &str,
        person: &str,
        until: i64,
        by: &str,
        now: i64,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO oncall_overrides (rotation, person, until_at, set_by, set_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(rotation)
        .bind(person)
        .bind(until)
        .bind(by)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

/// Claims (case, step, round); false if it already fired (here or on another replica).
pub async fn claim_fire(tx: &mut Tx<'_>, case_id: i64, step: i64, round: i64, now: i64) -> anyhow::Result<bool> {
    let r = sqlx::query(
        "INSERT INTO escalation_fires (case_id, step, round, fired_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (case_id, step, round) DO NOTHING",
    )
    .bind(case_id)
    .bind(step)
    .bind(round)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Who covers `rotation` at `at` by override, read through `exec` (the pool, or the
/// transaction of a case action so it never waits for a second connection).
pub async fn oncall_override_with<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    exec: E,
    rotation: &str,
    at: i64,
) -> anyhow::Result<Option<String>> {
    let row = sqlx::query(
        "SELECT person FROM oncall_overrides WHERE rotation = $1 AND until_at > $2 AND set_at <= $2 \
         ORDER BY set_at DESC LIMIT 1",
    )
    .bind(rotation)
    .bind(at)
    .fetch_optional(exec)
    .await?;
    Ok(row.map(|r| r.try_get("person")).transpose()?)
}
