//! Polling cursors and source health: where each polled source left off (e.g. a feed's
//! ETag), its last success and its last error. Saved only after the mentions are stored,
//! so a restart neither re-posts nor skips.

use super::Store;
use sqlx::Row;

#[derive(Debug, Clone, serde::Serialize)]
pub struct SourceCursor {
    pub source: String,
    pub cursor: Option<String>,
    pub last_success_at: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    pub updated_at: i64,
}

impl Store {
    pub async fn source_cursor(&self, source: &str) -> anyhow::Result<Option<SourceCursor>> {
        Ok(self.source_cursors().await?.into_iter().find(|c| c.source == source))
    }

    pub async fn source_cursors(&self) -> anyhow::Result<Vec<SourceCursor>> {
        let rows = sqlx::query(
            "SELECT source, cursor, last_success_at, last_error, last_error_at, updated_at FROM source_cursors ORDER BY source",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SourceCursor {
                    source: r.try_get("source")?,
                    cursor: r.try_get("cursor")?,
                    last_success_at: r.try_get("last_success_at")?,
                    last_error: r.try_get("last_error")?,
                    last_error_at: r.try_get("last_error_at")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    /// Records a successful poll and the new cursor; clears the last error.
    pub async fn cursor_success(&self, source: &str, cursor: &str, now: i64) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO source_cursors (source, cursor, last_success_at, updated_at) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (source) DO UPDATE SET cursor = $2, last_success_at = $3, last_error = NULL, updated_at = $3",
        )
        .bind(source)
        .bind(cursor)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records a failed poll; the cursor stays where it was, so nothing is skipped.
    pub async fn cursor_error(&self, source: &str, error: &str, now: i64) -> anyhow::Result<()> {
        self.cursor_error_keeping(source, error, None, now).await
    }

    /// Records a failed poll, saving `progress` as the cursor if given: the pages stored
    /// before the failure, or when a rate limit lifts. Only ever what is safe to resume from.
    pub async fn cursor_error_keeping(
        &self,
        source: &str,
        error: &str,
        progress: Option<&str>,
        now: i64,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO source_cursors (source, cursor, last_error, last_error_at, updated_at) VALUES ($1, $4, $2, $3, $3) \
             ON CONFLICT (source) DO UPDATE SET cursor = COALESCE($4, source_cursors.cursor), last_error = $2, \
             last_error_at = $3, updated_at = $3",
        )
        .bind(source)
        .bind(error)
        .bind(now)
        .bind(progress)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
