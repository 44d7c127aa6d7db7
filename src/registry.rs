//! The job registry: every job carebot knows, by name, wired to the services and polled
//! sources that do the work. Part of the assembly (it names the source adapters): the
//! scheduler receives the list; settings receive the names.

use crate::ctx::Ctx;
use crate::jobs::{escalation, outbox, retention, spikes, Job};
use chrono::{DateTime, Utc};

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
        run: |ctx, at| Box::pin(crate::jobs::queue_report(ctx, at, false)),
    },
    Job {
        name: "weekly_report",
        about: "post the PX complaint themes of the last seven days to digest.weekly_channel",
        run: |ctx, at| Box::pin(crate::jobs::queue_report(ctx, at, true)),
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
