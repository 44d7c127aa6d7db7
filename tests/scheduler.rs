//! The scheduler against a real database: after downtime a missed run is caught up once,
//! not once per missed tick, and the run is recorded.

mod common;

use carebot::clock::{Clock, FixedClock};
use carebot::config::JobSettings;
use carebot::store::Backend;
use carebot::Ctx;
use common::*;
use std::sync::Arc;
use std::time::Duration;

async fn a_missed_run_is_caught_up_once_after_downtime(b: Backend) {
    let db = TestDb::new(b).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&db, &dir.path().join("inbox"));
    s.jobs.insert("retention".into(), JobSettings::new("0 30 3 * * *", Some("America/Chicago")).unwrap());
    let clock = Arc::new(FixedClock::new(t0()));
    let ctx = Arc::new(Ctx::new(s, Arc::new(Recorder::default()), clock.clone() as Arc<dyn Clock>).await.unwrap());
    // The last recorded run was four days ago: three nightly runs were missed.
    let four_days_ago = (t0() - chrono::Duration::days(4)).timestamp_millis();
    assert!(ctx.store.claim_job_run("retention", four_days_ago, four_days_ago).await.unwrap());

    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(carebot::jobs::scheduler::run(ctx.clone(), carebot::registry::JOBS, rx));
    for _ in 0..100 {
        let last = ctx.store.last_job_run("retention").await.unwrap().unwrap();
        if last.scheduled_at > four_days_ago && last.finished_at.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.send(true).unwrap();
    task.await.unwrap();

    let runs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM job_runs WHERE job = 'retention'")
        .fetch_one(ctx.store.pool())
        .await
        .unwrap();
    assert_eq!(runs, 2, "the seeded run plus exactly one catch-up");
    let last = ctx.store.last_job_run("retention").await.unwrap().unwrap();
    assert_eq!(last.status, "ok");
    // The catch-up is the first tick after the last recorded run (03:30 Chicago, three days ago).
    assert_eq!(carebot::clock::from_ms(last.scheduled_at).to_rfc3339(), "2026-11-20T09:30:00+00:00");
}

on_both_backends!(a_missed_run_is_caught_up_once_after_downtime);
