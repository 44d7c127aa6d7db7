//! Read queries for the digest and weekly report (index-backed ranges on `opened_at` and
//! `case_events.at`, and the partial index on unresolved cases).

use super::cases::{case_from_row, event_from_row, CASE_COLS};
use super::{CaseRow, EventRow, Store};
use sqlx::Row;

/// A case with the mention fields reports show.
#[derive(Debug, Clone)]
pub struct ReportCase {
    pub case: CaseRow,
    pub source: String,
    pub rating: Option<f64>,
    pub text: Option<String>,
    /// The post's page, where the source gives one.
    pub url: Option<String>,
    /// When it was posted on its platform (ms); the case opens when carebot receives it.
    pub posted_at: i64,
}

impl Store {
    /// Cases opened in [start, end) ms, with their mention's source and rating, and its
    /// text only when `with_text` (figures never need it; excerpts and exports do).
    pub async fn cases_opened_between(&self, start: i64, end: i64, with_text: bool) -> anyhow::Result<Vec<ReportCase>> {
        let cols: Vec<String> = CASE_COLS.split(", ").map(|c| format!("c.{}", c.trim())).collect();
        let text = if with_text { "m.text" } else { "CAST(NULL AS TEXT)" };
        let sql = format!(
            "SELECT {}, m.source AS m_source, m.rating AS m_rating, m.url AS m_url, m.posted_at AS m_posted, {text} AS m_text FROM cases c \
             JOIN mentions m ON m.id = c.mention_id WHERE c.opened_at >= $1 AND c.opened_at < $2 ORDER BY c.id",
            cols.join(", ")
        );
        let rows = sqlx::query(&sql).bind(start).bind(end).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(ReportCase {
                    case: case_from_row(r)?,
                    source: r.try_get("m_source")?,
                    rating: r.try_get("m_rating")?,
                    text: r.try_get("m_text")?,
                    url: r.try_get("m_url")?,
                    posted_at: r.try_get("m_posted")?,
                })
            })
            .collect()
    }

    /// Records in each case's history that `actor` exported its mention text: one
    /// transaction, so the export and its trail are written together or not at all.
    pub async fn record_text_export(
        &self,
        case_ids: &[i64],
        actor: &str,
        at: i64,
        detail: &serde_json::Value,
    ) -> anyhow::Result<()> {
        let mut tx = self.begin().await?;
        for id in case_ids {
            super::cases::append_event(&mut tx, *id, at, actor, "text_exported", detail).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Cases that were open at `at` (ms): opened before it and not resolved by then. A case
    /// resolved, reopened and resolved again counts by its last resolution.
    pub async fn cases_open_at(&self, at: i64) -> anyhow::Result<Vec<CaseRow>> {
        let sql = format!(
            "SELECT {CASE_COLS} FROM cases WHERE opened_at < $1 AND (resolved_at IS NULL OR resolved_at >= $1) ORDER BY id"
        );
        let rows = sqlx::query(&sql).bind(at).fetch_all(self.pool()).await?;
        rows.iter().map(case_from_row).collect()
    }

    /// Unresolved cases past a due time, per situation and clock (the same rule as the
    /// digest's overdue list: acknowledge while open, first response until answered, resolve
    /// until resolved), for the alertable gauges on /metrics.
    pub async fn overdue_counts(&self, now: i64) -> anyhow::Result<Vec<(String, [i64; 3])>> {
        let rows = sqlx::query(
            "SELECT situation, \
               CAST(SUM(CASE WHEN state = 'open' AND ack_due < $1 THEN 1 ELSE 0 END) AS BIGINT) AS ack, \
               CAST(SUM(CASE WHEN state IN ('open', 'claimed') AND response_due < $1 THEN 1 ELSE 0 END) AS BIGINT) AS response, \
               CAST(SUM(CASE WHEN resolve_due < $1 THEN 1 ELSE 0 END) AS BIGINT) AS resolve \
             FROM cases WHERE state <> 'resolved' GROUP BY situation ORDER BY situation",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("situation")?, [r.try_get("ack")?, r.try_get("response")?, r.try_get("resolve")?])))
            .collect()
    }

    /// When the oldest unclaimed P1 case was opened (ms), if there is one.
    pub async fn oldest_unclaimed_p1(&self) -> anyhow::Result<Option<i64>> {
        let r = sqlx::query("SELECT MIN(opened_at) AS t FROM cases WHERE state = 'open' AND priority = 'p1'")
            .fetch_one(self.pool())
            .await?;
        Ok(r.try_get("t")?)
    }

    /// Response clocks that came due in [start, end) ms: how many, and how many were met.
    pub async fn response_clocks_due(&self, start: i64, end: i64) -> anyhow::Result<(i64, i64)> {
        let r = sqlx::query(
            "SELECT COUNT(*) AS due, \
               CAST(COALESCE(SUM(CASE WHEN first_response_at IS NOT NULL AND first_response_at <= response_due THEN 1 ELSE 0 END), 0) AS BIGINT) AS met \
             FROM cases WHERE response_due >= $1 AND response_due < $2",
        )
        .bind(start)
        .bind(end)
        .fetch_one(self.pool())
        .await?;
        Ok((r.try_get("due")?, r.try_get("met")?))
    }

    pub async fn count_opened_between(&self, start: i64, end: i64) -> anyhow::Result<i64> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM cases WHERE opened_at >= $1 AND opened_at < $2")
            .bind(start)
            .bind(end)
            .fetch_one(self.pool())
            .await?;
        Ok(r.try_get("n")?)
    }

    /// Events of one kind recorded in [start, end) ms.
    pub async fn events_between(&self, action: &str, start: i64, end: i64) -> anyhow::Result<Vec<EventRow>> {
        let rows = sqlx::query(
            "SELECT id, case_id, at, actor, action, detail FROM case_events WHERE action = $1 AND at >= $2 AND at < $3 ORDER BY id",
        )
        .bind(action)
        .bind(start)
        .bind(end)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(event_from_row).collect()
    }
}
