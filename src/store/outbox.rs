//! The outbox: chat operations written in the same transaction as the change they report,
//! delivered later by the worker with retries, so a chat outage delays but never loses them.
//!
//! Each row belongs to a lane (its destination: `channel:NAME`, `dm:PERSON`) and carries a
//! priority (1 = P1 … 4 = P4, 5 = reports and alerts). One replica at a time holds a lane's
//! lease and sends on it, in priority order, paced by a budget stored with the lease.

use super::{Store, Tx};
use anyhow::Context as _;
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub case_id: Option<i64>,
    pub op: String,
    pub payload: String,
    pub attempts: i64,
    pub created_at: i64,
    pub lane: String,
    pub last_error: Option<String>,
}

/// `last_error` of a failed message queued again by `carebot outbox retry`.
pub const REQUEUED: &str = "queued again by carebot outbox retry";

/// Queues an operation, not to be delivered before `due` (ms). `lane` `None` puts it in
/// the lane of its case's channel; the priority comes from the case.
pub async fn insert(
    tx: &mut Tx<'_>,
    case_id: Option<i64>,
    op: &str,
    payload: &str,
    lane: Option<&str>,
    now: i64,
    due: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO outbox (case_id, op, payload, next_attempt_at, created_at, lane, priority) \
         VALUES ($1, $2, $3, $4, $5, \
           COALESCE($6, (SELECT 'channel:' || channel FROM cases WHERE id = $1), ''), \
           COALESCE((SELECT CASE priority WHEN 'p1' THEN 1 WHEN 'p2' THEN 2 WHEN 'p3' THEN 3 WHEN 'p4' THEN 4 ELSE 5 END \
                     FROM cases WHERE id = $1), 5))",
    )
    .bind(case_id)
    .bind(op)
    .bind(payload)
    .bind(due)
    .bind(now)
    .bind(lane)
    .execute(&mut **tx)
    .await
    .with_context(|| format!("queueing {op}"))?;
    Ok(())
}

/// A pending message `o` may go only when no earlier step of its case is still pending in
/// its lane — nor, for a card update or thread line, a post of the card anywhere. A card
/// update never holds anything up (it shows the current state whenever it is sent, and a
/// storm's refresh is scheduled for later on purpose).
const WAITS_FOR_NOTHING: &str = "NOT EXISTS (SELECT 1 FROM outbox e WHERE e.case_id = o.case_id \
     AND e.status = 'pending' AND e.id < o.id AND e.op <> 'update_card' \
     AND (e.lane = o.lane OR (e.op = 'post_card' AND o.op IN ('update_card', 'thread_reply'))))";

/// One lane's queue, for `carebot outbox` and /metrics.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LaneSummary {
    pub lane: String,
    pub status: String,
    pub error: Option<String>,
    pub count: i64,
    pub oldest: i64,
}

impl Store {
    /// Lanes with something due at `now`, the one with the most urgent message first.
    pub async fn due_lanes(&self, now: i64) -> anyhow::Result<Vec<String>> {
        let sql = format!(
            "SELECT o.lane FROM outbox o WHERE o.status = 'pending' AND o.next_attempt_at <= $1 AND {WAITS_FOR_NOTHING} \
             GROUP BY o.lane ORDER BY MIN(o.priority), MIN(o.id)"
        );
        let rows = sqlx::query(&sql).bind(now).fetch_all(self.pool()).await?;
        rows.iter().map(|r| Ok(r.try_get("lane")?)).collect()
    }

    /// Takes or renews the lease of `lane` for `holder` until `now + lease_ms`; returns the
    /// lane's pacing budget (GCRA theoretical arrival time, ms), or `None` while another
    /// holder's lease runs.
    pub async fn lease_lane(&self, lane: &str, holder: &str, now: i64, lease_ms: i64) -> anyhow::Result<Option<i64>> {
        let row = sqlx::query(
            "INSERT INTO outbox_lanes (lane, holder, lease_until, tat) VALUES ($1, $2, $3, 0) \
             ON CONFLICT (lane) DO UPDATE SET holder = $2, lease_until = $3 \
             WHERE outbox_lanes.holder = $2 OR outbox_lanes.holder IS NULL OR outbox_lanes.lease_until < $4 \
             RETURNING tat",
        )
        .bind(lane)
        .bind(holder)
        .bind(now + lease_ms)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| Ok(r.try_get("tat")?)).transpose()
    }

    /// Stores the lane's pacing budget (only its holder may).
    pub async fn save_lane_tat(&self, lane: &str, holder: &str, tat: i64) -> anyhow::Result<()> {
        sqlx::query("UPDATE outbox_lanes SET tat = $1 WHERE lane = $2 AND holder = $3")
            .bind(tat)
            .bind(lane)
            .bind(holder)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Hands back every lane `holder` leases (at shutdown).
    pub async fn release_lanes_of(&self, holder: &str) -> anyhow::Result<()> {
        sqlx::query("UPDATE outbox_lanes SET holder = NULL, lease_until = NULL WHERE holder = $1")
            .bind(holder)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn release_lane(&self, lane: &str, holder: &str) -> anyhow::Result<()> {
        sqlx::query("UPDATE outbox_lanes SET holder = NULL, lease_until = NULL WHERE lane = $1 AND holder = $2")
            .bind(lane)
            .bind(holder)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The next message to send on `lane`: due, highest priority first, and never ahead of
    /// an earlier step of the same case (anything earlier in this lane; for updates and
    /// thread lines, also the card's posts in other channels), so a thread line waits for
    /// its card instead of finding nothing to reply to. A card's copies in different
    /// channels do not wait for each other.
    pub async fn next_in_lane(&self, lane: &str, now: i64) -> anyhow::Result<Option<OutboxRow>> {
        let sql = format!(
            "SELECT o.id, o.case_id, o.op, o.payload, o.attempts, o.created_at, o.lane, o.last_error FROM outbox o \
             WHERE o.status = 'pending' AND o.lane = $1 AND o.next_attempt_at <= $2 \
             AND {WAITS_FOR_NOTHING} \
             ORDER BY o.priority, o.id LIMIT 1"
        );
        let row = sqlx::query(&sql).bind(lane).bind(now).fetch_optional(self.pool()).await?;
        row.map(|r| {
            Ok(OutboxRow {
                id: r.try_get("id")?,
                case_id: r.try_get("case_id")?,
                op: r.try_get("op")?,
                payload: r.try_get("payload")?,
                attempts: r.try_get("attempts")?,
                created_at: r.try_get("created_at")?,
                lane: r.try_get("lane")?,
                last_error: r.try_get("last_error")?,
            })
        })
        .transpose()
    }

    pub async fn outbox_delivered(&self, id: i64, now: i64) -> anyhow::Result<()> {
        sqlx::query("UPDATE outbox SET status = 'delivered', delivered_at = $1, attempts = attempts + 1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Schedules another attempt at `next_at`, keeping the error for operators.
    pub async fn outbox_retry(&self, id: i64, next_at: i64, error: &str) -> anyhow::Result<()> {
        sqlx::query("UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2 WHERE id = $3")
            .bind(next_at)
            .bind(error)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Gives up on a message: it stays in the table, visible on /metrics and `carebot outbox`.
    pub async fn outbox_failed(&self, id: i64, error: &str) -> anyhow::Result<()> {
        sqlx::query("UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = $1 WHERE id = $2")
            .bind(error)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Marks a case's pending card updates done: the interaction answer already showed the
    /// new card (Discord's UPDATE_MESSAGE). Returns how many were skipped.
    pub async fn outbox_skip_card_updates(&self, case_id: i64, now: i64) -> anyhow::Result<u64> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'delivered', delivered_at = $1, last_error = 'shown by the interaction answer' \
             WHERE case_id = $2 AND status = 'pending' AND op = 'update_card' AND next_attempt_at <= $1",
        )
        .bind(now)
        .bind(case_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Puts failed messages back in the queue (`carebot outbox retry`): one by id, or all.
    pub async fn outbox_requeue(&self, id: Option<i64>, now: i64) -> anyhow::Result<u64> {
        let q = match id {
            Some(id) => sqlx::query(
                "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $1, last_error = $2 \
                 WHERE status = 'failed' AND id = $3",
            )
            .bind(now)
            .bind(REQUEUED)
            .bind(id),
            None => sqlx::query(
                "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $1, last_error = $2 \
                 WHERE status = 'failed'",
            )
            .bind(now)
            .bind(REQUEUED),
        };
        Ok(q.execute(self.pool()).await?.rows_affected())
    }

    /// Pending and failed messages grouped by lane, status and error.
    pub async fn outbox_lanes(&self) -> anyhow::Result<Vec<LaneSummary>> {
        let rows = sqlx::query(
            "SELECT lane, status, last_error, COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox \
             WHERE status IN ('pending', 'failed') GROUP BY lane, status, last_error ORDER BY lane, status",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LaneSummary {
                    lane: r.try_get("lane")?,
                    status: r.try_get("status")?,
                    error: r.try_get("last_error")?,
                    count: r.try_get("n")?,
                    oldest: r.try_get("oldest")?,
                })
            })
            .collect()
    }

    /// (lane, pending count, oldest created_at) per lane with anything pending.
    pub async fn pending_by_lane(&self) -> anyhow::Result<Vec<(String, i64, i64)>> {
        let rows = sqlx::query(
            "SELECT lane, COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox WHERE status = 'pending' \
             GROUP BY lane ORDER BY lane",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok((r.try_get("lane")?, r.try_get("n")?, r.try_get("oldest")?))).collect()
    }

    /// Failed messages with their ids, newest first (`carebot outbox --failed`).
    pub async fn outbox_failed_rows(&self, limit: i64) -> anyhow::Result<Vec<(i64, String, String, Option<String>)>> {
        let rows = sqlx::query(
            "SELECT id, lane, op, last_error FROM outbox WHERE status = 'failed' ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("lane")?, r.try_get("op")?, r.try_get("last_error")?)))
            .collect()
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
