//! Scheduled and background work, registered in one list. Each job is a file with one entry
//! point `run(&Ctx, at) -> summary`; the scheduler runs them on their cron schedules and
//! `carebot run-job NAME --at T` runs one as if at time T.

pub mod escalation;
pub mod outbox;
pub mod retention;
pub mod scheduler;
pub mod spikes;

use crate::app::Ctx;
use chrono::{DateTime, Utc};
use std::future::Future;
use std::pin::Pin;

pub type JobFuture<'a> = Pin<Box<dyn Future<Output = anyhow::Result<String>> + Send + 'a>>;

pub struct Job {
    pub name: &'static str,
    pub about: &'static str,
    pub run: for<'a> fn(&'a Ctx, DateTime<Utc>) -> JobFuture<'a>,
}

/// The registry: every job carebot knows, by name.
pub const JOBS: &[Job] = &[
    Job {
        name: "deliver_outbox",
        about: "deliver due chat messages once (the worker in `serve` does this continuously)",
        run: |ctx, at| {
            Box::pin(async move { outbox::deliver_due(ctx, at).await.map(|n| format!("{n} message(s) handled")) })
        },
    },
    Job {
        name: "daily_digest",
        about: "post yesterday's leadership digest (with its chart) to digest.channel",
        run: |ctx, at| Box::pin(queue_report(ctx, at, false)),
    },
    Job {
        name: "weekly_report",
        about: "post the PX complaint themes of the last seven days to digest.weekly_channel",
        run: |ctx, at| Box::pin(queue_report(ctx, at, true)),
    },
    Job {
        name: "escalation_sweep",
        about: "nudge escalation targets for cases past their SLA clocks (each step once per round)",
        run: |ctx, at| Box::pin(escalation::sweep(ctx, at)),
    },
    Job {
        name: "poll_feeds",
        about: "poll the RSS/Atom feeds in sources.feeds (conditional GET, each at most every `every`)",
        run: |ctx, at| Box::pin(crate::sources::rss::poll_all(ctx, at)),
    },
    Job {
        name: "poll_x",
        about: "search X (API v2 recent search) for sources.x.query, from the stored since_id",
        run: |ctx, at| Box::pin(crate::sources::x::poll_all(ctx, at)),
    },
    Job {
        name: "poll_google_reviews",
        about: "read new and edited Google Business Profile reviews of sources.google_business.locations",
        run: |ctx, at| Box::pin(crate::sources::google_business::poll_all(ctx, at)),
    },
    Job {
        name: "poll_yelp",
        about: "read new Yelp Fusion reviews of sources.yelp.businesses",
        run: |ctx, at| Box::pin(crate::sources::yelp::poll_all(ctx, at)),
    },
    Job {
        name: "spike_check",
        about: "alert the leads when a site's or category's mentions jump above the baseline (triage.yaml spike:)",
        run: |ctx, at| Box::pin(spikes::check(ctx, at)),
    },
    Job {
        name: "poll_files",
        about: "ingest JSON-lines/CSV files dropped into sources.files.dir",
        run: |ctx, _at| Box::pin(crate::sources::files::poll_drop_folder(ctx)),
    },
    Job {
        name: "retention",
        about: "purge mention text and authors of cases resolved more than retention.mention_text_days ago",
        run: |ctx, at| Box::pin(retention::run(ctx, at)),
    },
];

/// Queues the digest (or weekly report) for the local day before `at`; delivered by the outbox.
async fn queue_report(ctx: &Ctx, at: DateTime<Utc>, weekly: bool) -> anyhow::Result<String> {
    let date = at.with_timezone(&ctx.playbooks.team.timezone).date_naive() - chrono::Duration::days(1);
    let op = if weekly {
        crate::chat::ChatOp::WeeklyReport { week_ending: date }
    } else {
        crate::chat::ChatOp::Digest { date }
    };
    let mut tx = ctx.store.begin().await?;
    let now = at.timestamp_millis();
    crate::chat::queue(&mut tx, &op, now, now).await?;
    tx.commit().await?;
    ctx.outbox_wake.notify_one();
    Ok(format!("{} for {date} queued", op.name()))
}

pub fn find(name: &str) -> Option<&'static Job> {
    JOBS.iter().find(|j| j.name == name)
}

pub fn is_known(name: &str) -> bool {
    find(name).is_some()
}

pub fn names() -> Vec<&'static str> {
    JOBS.iter().map(|j| j.name).collect()
}

/// Runs one job once as if at `at`, recording the run (`carebot run-job`).
pub async fn run_once(ctx: &Ctx, name: &str, at: DateTime<Utc>) -> anyhow::Result<String> {
    let job = find(name).ok_or_else(|| anyhow::anyhow!("unknown job {name:?}; known jobs: {}", names().join(", ")))?;
    let at_ms = at.timestamp_millis();
    ctx.store.record_manual_run(job.name, at_ms, ctx.now_ms()).await?;
    let result = (job.run)(ctx, at).await;
    let (ok, detail) = match &result {
        Ok(s) => (true, s.clone()),
        Err(e) => (false, format!("{e:#}")),
    };
    ctx.store.finish_job_run(job.name, at_ms, ctx.now_ms(), ok, &detail).await?;
    result
}

#[cfg(test)]
mod tests {
    #[test]
    fn job_names_are_unique() {
        let mut names = super::names();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }
}
