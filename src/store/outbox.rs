//! The outbox: chat operations written in the same transaction as the change they report,
//! delivered later by the worker with retries, so a chat outage delays but never loses them.

use super::{Backend, Store, Tx};
use anyhow::Context as _;
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub case_id: Option<i64>,
    pub op: String,
    pub payload: String,
    pub attempts: i64,
}

pub async fn enqueue(tx: &mut Tx<'_>, case_id: Option<i64>, op: &str, payload: &str, now: i64) -> anyhow::Result<()> {
    enqueue_at(tx, case_id, op, payload, now, now).await
}

/// Queues a message that is not to be delivered before `due` (ms).
pub async fn enqueue_at(
    tx: &mut Tx<'_>,
    case_id: Option<i64>,
    op: &str,
    payload: &str,
    now: i64,
    due: i64,
) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO outbox (case_id, op, payload, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(case_id)
        .bind(op)
        .bind(payload)
        .bind(due)
        .bind(now)
        .execute(&mut **tx)
        .await
        .with_context(|| format!("queueing {op}"))?;
    Ok(())
}

impl Store {
    /// Claims up to `limit` due messages for `lease_ms`, oldest first. On Postgres, rows a
    /// concurrent worker holds are skipped (`SKIP LOCKED`); the outer conditions are checked
    /// again on update, so a message is never handed to two workers inside one lease.
    pub async fn claim_outbox(&self, now: i64, lease_ms: i64, limit: i64) -> anyhow::Result<Vec<OutboxRow>> {
        let lock = match self.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE outbox SET locked_until = $1 WHERE status = 'pending' AND next_attempt_at <= $2 \
             AND (locked_until IS NULL OR locked_until <= $2) AND id IN (SELECT id FROM outbox \
             WHERE status = 'pending' AND next_attempt_at <= $2 AND (locked_until IS NULL OR locked_until <= $2) \
             ORDER BY id LIMIT $3{lock}) RETURNING id, case_id, op, payload, attempts"
        );
        let rows = sqlx::query(&sql).bind(now + lease_ms).bind(now).bind(limit).fetch_all(self.pool()).await?;
        let mut out: Vec<OutboxRow> = rows
            .iter()
            .map(|r| {
                Ok(OutboxRow {
                    id: r.try_get("id")?,
                    case_id: r.try_get("case_id")?,
                    op: r.try_get("op")?,
                    payload: r.try_get("payload")?,
                    attempts: r.try_get("attempts")?,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        out.sort_by_key(|r| r.id);
        Ok(out)
    }

    pub async fn outbox_delivered(&self, id: i64, now: i64) -> anyhow::Result<()> {
        sqlx::query("UPDATE outbox SET status = 'delivered', delivered_at = $1, attempts = attempts + 1, locked_until = NULL WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Schedules another attempt at `next_at`, keeping the error for operators.
    pub async fn outbox_retry(&self, id: i64, next_at: i64, error: &str) -> anyhow::Result<()> {
        sqlx::query("UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2, locked_until = NULL WHERE id = $3")
            .bind(next_at)
            .bind(error)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Gives up on a message: it stays in the table, visible on /metrics and `carebot outbox`.
    pub async fn outbox_failed(&self, id: i64, error: &str) -> anyhow::Result<()> {
        sqlx::query("UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = $1, locked_until = NULL WHERE id = $2")
            .bind(error)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// (pending, failed) message counts.
    pub async fn outbox_depth(&self) -> anyhow::Result<(i64, i64)> {
        let r = sqlx::query(
            "SELECT COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS pending, \
             COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed FROM outbox",
        )
        .fetch_one(self.pool())
        .await?;
        Ok((r.try_get("pending")?, r.try_get("failed")?))
    }

    /// Statuses of the messages queued for one case, oldest first (for tests and `case show`).
    pub async fn outbox_for_case(&self, case_id: i64) -> anyhow::Result<Vec<(String, String, i64)>> {
        let rows = sqlx::query("SELECT op, status, attempts FROM outbox WHERE case_id = $1 ORDER BY id")
            .bind(case_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| Ok((r.try_get("op")?, r.try_get("status")?, r.try_get("attempts")?))).collect()
    }
}
