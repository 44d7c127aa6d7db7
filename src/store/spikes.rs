//! Spike alerts: recent mention counts by site and category, and the alerts raised.

use super::{Store, Tx};
use anyhow::Context as _;
use sqlx::Row;

/// One mention in the spike period: its case's site and categories, and when it was posted.
#[derive(Debug, Clone)]
pub struct SpikeRow {
    pub site: Option<String>,
    pub categories: Vec<String>,
    pub posted_at: i64,
}

impl Store {
    /// Mentions (new cases and "+N similar" alike, spam excluded) posted in (since, until] ms.
    pub async fn spike_rows(&self, since: i64, until: i64) -> anyhow::Result<Vec<SpikeRow>> {
        let rows = sqlx::query(
            "SELECT c.site, c.categories, m.posted_at FROM mentions m JOIN cases c ON c.id = m.case_id \
             WHERE m.posted_at > $1 AND m.posted_at <= $2 AND c.spam = 0",
        )
        .bind(since)
        .bind(until)
        .fetch_all(self.pool())
        .await
        .context("counting recent mentions")?;
        rows.iter()
            .map(|r| {
                let categories: String = r.try_get("categories")?;
                Ok(SpikeRow {
                    site: r.try_get("site")?,
                    categories: categories.split(',').filter(|c| !c.is_empty()).map(str::to_string).collect(),
                    posted_at: r.try_get("posted_at")?,
                })
            })
            .collect()
    }

    /// When the first mention was received (how much history a baseline can draw on).
    pub async fn first_received_at(&self) -> anyhow::Result<Option<i64>> {
        let r = sqlx::query("SELECT MIN(received_at) AS t FROM mentions").fetch_one(self.pool()).await?;
        Ok(r.try_get("t")?)
    }

    /// The last spike alert raised for a scope ("site:riverside", "category:billing").
    pub async fn last_spike(&self, scope: &str) -> anyhow::Result<Option<i64>> {
        let r = sqlx::query("SELECT MAX(raised_at) AS t FROM spike_alerts WHERE scope = $1")
            .bind(scope)
            .fetch_one(self.pool())
            .await?;
        Ok(r.try_get("t")?)
    }
}

/// Records an alert (in the transaction that queues its messages).
pub async fn record_spike(tx: &mut Tx<'_>, scope: &str, at: i64, detail: &serde_json::Value) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO spike_alerts (scope, raised_at, detail) VALUES ($1, $2, $3)")
        .bind(scope)
        .bind(at)
        .bind(detail.to_string())
        .execute(&mut **tx)
        .await
        .context("recording a spike alert")?;
    Ok(())
}
