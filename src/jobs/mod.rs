//! Scheduled and background work. Each job is a file with one entry point
//! `run(&Ctx, at) -> summary`; the list of jobs is `crate::registry` (it also wires the
//! polled sources, so it sits above them); the scheduler runs them on their cron schedules
//! and `carebot run-job NAME --at T` runs one as if at time T.

pub mod escalation;
pub mod outbox;
pub mod retention;
pub mod scheduler;
pub mod spikes;

use crate::ctx::Ctx;
use chrono::{DateTime, Utc};
use std::future::Future;
use std::pin::Pin;

pub type JobFuture<'a> = Pin<Box<dyn Future<Output = anyhow::Result<String>> + Send + 'a>>;

pub struct Job {
    pub name: &'static str,
    pub about: &'static str,
    pub run: for<'a> fn(&'a Ctx, DateTime<Utc>) -> JobFuture<'a>,
}

/// Queues the digest (or weekly report) for the local day before `at`; delivered by the outbox.
pub async fn queue_report(ctx: &Ctx, at: DateTime<Utc>, weekly: bool) -> anyhow::Result<String> {
    let date = at.with_timezone(&ctx.playbooks().team.timezone).date_naive() - chrono::Duration::days(1);
    let ops = crate::chat::ChatOp::report(weekly, date);
    let mut tx = ctx.store.begin().await?;
    let now = at.timestamp_millis();
    for op in &ops {
        crate::chat::queue(&mut tx, op, now, now).await?;
    }
    tx.commit().await?;
    ctx.outbox_wake.notify_one();
    Ok(format!("{} for {date} queued", ops[0].name()))
}

/// A long-running `serve` keeps the memory a large job (a sweep or digest over many cases)
/// briefly needed: glibc's allocator holds freed pages in per-thread arenas. Fewer arenas
/// (set once at start) and handing free pages back after each job keep the resident set
/// near what the bot actually uses.
pub fn limit_allocator_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's tuning; it is safe to call at any time.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// See `limit_allocator_arenas`: returns freed heap pages to the system.
pub fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it is safe to call at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
