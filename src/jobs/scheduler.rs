//! The scheduler: runs each configured job on its cron schedule in its time zone. A run is
//! claimed as a (job, scheduled time) row first, so it happens once across restarts and
//! replicas; after downtime a missed run is caught up once, not once per missed tick.

use crate::ctx::Ctx;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

struct Scheduled {
    job: &'static super::Job,
    schedule: cron::Schedule,
    tz: Tz,
    next: Option<DateTime<Utc>>,
}

fn next_after(s: &Scheduled, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    s.schedule.after(&t.with_timezone(&s.tz)).next().map(|d| d.with_timezone(&Utc))
}

async fn plan(ctx: &Ctx, registry: &'static [super::Job]) -> Vec<Scheduled> {
    let mut out = Vec::new();
    let now = ctx.clock.now();
    for (name, cfg) in &ctx.settings.jobs {
        if !cfg.enabled {
            continue;
        }
        // Names, expressions and zones were validated when the settings were loaded.
        let Some(job) = registry.iter().find(|j| j.name == name.as_str()) else {
            continue;
        };
        let tz = cfg.zone(ctx.playbooks().team.timezone);
        let mut s = Scheduled { job, schedule: cfg.cron.schedule.clone(), tz, next: None };
        let last = ctx.store.last_job_run(name).await.ok().flatten();
        let from = last.map(|r| crate::clock::from_ms(r.scheduled_at)).unwrap_or(now);
        s.next = next_after(&s, from);
        out.push(s);
    }
    out
}

async fn run_due(ctx: &Arc<Ctx>, s: &mut Scheduled, now: DateTime<Utc>) {
    let Some(due) = s.next.filter(|n| *n <= now) else {
        return;
    };
    let due_ms = due.timestamp_millis();
    match ctx.store.claim_job_run(s.job.name, due_ms, now.timestamp_millis()).await {
        Ok(true) => {
            let job = s.job;
            let task_ctx = ctx.clone();
            // Spawned so a panicking job is reported as a failed run, not a dead scheduler.
            let res = tokio::spawn(async move { (job.run)(&task_ctx, due).await }).await;
            let (ok, detail) = match res {
                Ok(Ok(s)) => (true, s),
                Ok(Err(e)) => (false, format!("{e:#}")),
                Err(e) => (false, format!("job panicked: {e}")),
            };
            if ok {
                tracing::debug!(job = job.name, %detail, "job finished");
            } else {
                tracing::error!(job = job.name, %detail, "job failed");
            }
            if let Err(e) = ctx.store.finish_job_run(job.name, due_ms, ctx.now_ms(), ok, &detail).await {
                tracing::error!(job = job.name, error = %format!("{e:#}"), "could not record job result");
            }
            super::give_back_memory();
        }
        Ok(false) => {} // another replica has this run
        Err(e) => {
            tracing::error!(job = s.job.name, error = %format!("{e:#}"), "could not claim job run; will retry");
            return;
        }
    }
    // Skip ticks missed while down: the next run is the first one after now.
    s.next = next_after(s, now);
}

/// Runs the configured jobs of `registry` until `stop` turns true.
pub async fn run(ctx: Arc<Ctx>, registry: &'static [super::Job], mut stop: watch::Receiver<bool>) {
    let mut jobs = plan(&ctx, registry).await;
    loop {
        let now = ctx.clock.now();
        for s in jobs.iter_mut() {
            run_due(&ctx, s, now).await;
        }
        let wait = jobs
            .iter()
            .filter_map(|s| s.next)
            .min()
            .map(|n| (n - ctx.clock.now()).to_std().unwrap_or_default())
            .unwrap_or(Duration::from_secs(1))
            .clamp(Duration::from_millis(50), Duration::from_secs(1));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_cron;
    use chrono::TimeZone;

    static JOB: crate::jobs::Job =
        crate::jobs::Job { name: "noop", about: "does nothing", run: |_, _| Box::pin(async { Ok(String::new()) }) };

    fn sched(expr: &str) -> Scheduled {
        Scheduled { job: &JOB, schedule: parse_cron(expr).unwrap(), tz: chrono_tz::America::Chicago, next: None }
    }

    #[test]
    fn a_local_morning_job_follows_the_clock_change_in_spring_and_autumn() {
        let s = sched("0 0 7 * * *");
        // 2027-03-14: Chicago moves from CST (UTC-6) to CDT (UTC-5).
        let sat = Utc.with_ymd_and_hms(2027, 3, 13, 14, 0, 0).unwrap();
        assert_eq!(next_after(&s, sat), Some(Utc.with_ymd_and_hms(2027, 3, 14, 12, 0, 0).unwrap()));
        // 2026-11-01: back to CST.
        let sat = Utc.with_ymd_and_hms(2026, 10, 31, 13, 0, 0).unwrap();
        assert_eq!(next_after(&s, sat), Some(Utc.with_ymd_and_hms(2026, 11, 1, 13, 0, 0).unwrap()));
    }

    #[test]
    fn a_run_inside_the_spring_forward_gap_is_skipped_that_day() {
        let s = sched("0 30 2 * * *");
        let before = Utc.with_ymd_and_hms(2027, 3, 14, 6, 0, 0).unwrap(); // 00:00 CST
        let next = next_after(&s, before).unwrap();
        assert_eq!(next.with_timezone(&chrono_tz::America::Chicago).date_naive().to_string(), "2027-03-15");
    }
}
