//! Scheduled job runs as rows keyed by (job, scheduled time): a run is claimed by inserting
//! its row, so it happens once across restarts and replicas sharing one database.

use super::Store;
use sqlx::Row;

#[derive(Debug, Clone, serde::Serialize)]
pub struct JobRun {
    pub job: String,
    pub scheduled_at: i64,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub status: String,
    pub detail: Option<String>,
}

impl Store {
    /// Claims the run of `job` scheduled at `scheduled_at`; false if someone already has.
    pub async fn claim_job_run(&self, job: &str, scheduled_at: i64, now: i64) -> anyhow::Result<bool> {
        let r = sqlx::query(
            "INSERT INTO job_runs (job, scheduled_at, started_at, status) VALUES ($1, $2, $3, 'running') \
             ON CONFLICT (job, scheduled_at) DO NOTHING",
        )
        .bind(job)
        .bind(scheduled_at)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Records a manual run (`carebot run-job`), replacing an earlier record for that time.
    pub async fn record_manual_run(&self, job: &str, scheduled_at: i64, now: i64) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO job_runs (job, scheduled_at, started_at, status) VALUES ($1, $2, $3, 'running') \
             ON CONFLICT (job, scheduled_at) DO UPDATE SET started_at = $3, status = 'running', finished_at = NULL, detail = NULL",
        )
        .bind(job)
        .bind(scheduled_at)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn finish_job_run(
        &self,
        job: &str,
        scheduled_at: i64,
        now: i64,
        ok: bool,
        detail: &str,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE job_runs SET finished_at = $1, status = $2, detail = $3 WHERE job = $4 AND scheduled_at = $5",
        )
        .bind(now)
        .bind(if ok { "ok" } else { "failed" })
        .bind(detail)
        .bind(job)
        .bind(scheduled_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn last_job_run(&self, job: &str) -> anyhow::Result<Option<JobRun>> {
        let row = sqlx::query(
            "SELECT job, scheduled_at, started_at, finished_at, status, detail FROM job_runs \
             WHERE job = $1 ORDER BY scheduled_at DESC LIMIT 1",
        )
        .bind(job)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| -> anyhow::Result<JobRun> {
            Ok(JobRun {
                job: r.try_get("job")?,
                scheduled_at: r.try_get("scheduled_at")?,
                started_at: r.try_get("started_at")?,
                finished_at: r.try_get("finished_at")?,
                status: r.try_get("status")?,
                detail: r.try_get("detail")?,
            })
        })
        .transpose()
    }
}
