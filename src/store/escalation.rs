//! Escalation bookkeeping: which steps fired for which cases, and on-call overrides.

use super::cases::{case_from_row, CASE_COLS};
use super::{Store, Tx};
use crate::store::CaseRow;
use anyhow::Context as _;
use sqlx::Row;
use std::collections::HashMap;

impl Store {
    /// Up to `limit` unresolved cases the sweep must look at by `at` (their next check has
    /// come), after the key `after` (next check, id) of the previous page: one page of what
    /// is due, not everything open (a range of the partial index `cases_next_check`).
    pub async fn cases_to_check(&self, at: i64, after: (i64, i64), limit: i64) -> anyhow::Result<Vec<CaseRow>> {
        let sql = format!(
            "SELECT {CASE_COLS} FROM cases WHERE state <> 'resolved' AND next_check_at <= $1 \
             AND (next_check_at > $2 OR (next_check_at = $2 AND id > $3)) ORDER BY next_check_at, id LIMIT $4"
        );
        let rows = sqlx::query(&sql).bind(at).bind(after.0).bind(after.1).bind(limit).fetch_all(self.pool()).await?;
        rows.iter().map(case_from_row).collect()
    }

    /// The highest round fired so far per (case, step), for these cases.
    pub async fn fired_rounds(&self, case_ids: &[i64]) -> anyhow::Result<HashMap<(i64, i64), i64>> {
        if case_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let list: Vec<String> = case_ids.iter().map(|id| id.to_string()).collect();
        let rows = sqlx::query(&format!(
            "SELECT case_id, step, MAX(round) AS round FROM escalation_fires WHERE case_id IN ({}) \
             GROUP BY case_id, step",
            list.join(", ")
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok(((r.try_get("case_id")?, r.try_get("step")?), r.try_get("round")?))).collect()
    }

    /// Records when the sweep must next look at each case, given as (case, version it was
    /// read at, time). A case changed since it was read keeps its "look again" mark.
    pub async fn set_next_checks(&self, next: &[(i64, i64, i64)]) -> anyhow::Result<()> {
        for chunk in next.chunks(500) {
            let mut when = String::new();
            let mut version = String::new();
            let mut ids = Vec::with_capacity(chunk.len());
            for (id, v, at) in chunk {
                when.push_str(&format!(" WHEN {id} THEN {at}"));
                version.push_str(&format!(" WHEN {id} THEN {v}"));
                ids.push(id.to_string());
            }
            let sql = format!(
                "UPDATE cases SET next_check_at = CASE id{when} END WHERE id IN ({}) AND version = CASE id{version} END",
                ids.join(", ")
            );
            sqlx::query(&sql).execute(self.pool()).await.context("recording the next escalation checks")?;
        }
        Ok(())
    }

    /// Makes sure the next checks were worked out with `version` of the playbooks; if not
    /// (a reload, an edit between runs), every unresolved case is looked at again. Returns
    /// how many were marked.
    pub async fn recheck_unless(&self, version: &str) -> anyhow::Result<u64> {
        let mut tx = self.begin().await?;
        let stored: Option<String> = sqlx::query("SELECT playbook_version FROM sweep_state WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        if stored.as_deref() == Some(version) {
            return Ok(0);
        }
        let marked = sqlx::query("UPDATE cases SET next_check_at = 0 WHERE state <> 'resolved' AND next_check_at <> 0")
            .execute(&mut *tx)
            .await
            .context("marking open cases for the escalation sweep")?
            .rows_affected();
        sqlx::query(
            "INSERT INTO sweep_state (id, playbook_version) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET playbook_version = excluded.playbook_version",
        )
        .bind(version)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(marked)
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

/// Takes back a claim of (case, step, round) made in this transaction.
pub async fn unclaim_fire(tx: &mut Tx<'_>, case_id: i64, step: i64, round: i64) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM escalation_fires WHERE case_id = $1 AND step = $2 AND round = $3")
        .bind(case_id)
        .bind(step)
        .bind(round)
        .execute(&mut **tx)
        .await?;
    Ok(())
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
