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
}

impl Store {
    /// Cases opened in [start, end) ms, with their mention's source, rating and text.
    pub async fn cases_opened_between(&self, start: i64, end: i64) -> anyhow::Result<Vec<ReportCase>> {
        let cols: Vec<String> = CASE_COLS.split(", ").map(|c| format!("c.{}", c.trim())).collect();
        let sql = format!(
            "SELECT {}, m.source AS m_source, m.rating AS m_rating, m.text AS m_text FROM cases c \
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
                })
            })
            .collect()
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
