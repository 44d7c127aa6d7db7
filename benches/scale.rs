//! Escalation sweep and daily digest over a large Postgres table (release build:
//! `cargo bench --bench scale`): 10,000,000 cases, 100,000 of them unresolved (set
//! CAREBOT_SCALE_CASES and CAREBOT_SCALE_OPEN for other sizes).
//! Rows are bulk-loaded with generate_series; the sweep and digest run through the same
//! code as `carebot serve`. Postgres at CAREBOT_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/test).

use carebot::chat::console::Console;
use carebot::clock::FixedClock;
use carebot::{Ctx, Settings};
use chrono::{Duration, TimeZone, Utc};
use sqlx::Connection;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const STEP_MS: i64 = 30_000; // one case every 30 s: ten million span ~9.5 years

fn size(var: &str, default: i64) -> i64 {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Resident and peak memory of this process.
fn memory() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        status.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
    };
    format!("RSS {} MiB, peak {} MiB", kb("VmRSS:").unwrap_or(0) / 1024, kb("VmHWM:").unwrap_or(0) / 1024)
}

async fn explain(pool: &sqlx::AnyPool, sql: &str) {
    use sqlx::Row;
    let rows =
        sqlx::query(&format!("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}")).fetch_all(pool).await.expect("explain");
    println!("EXPLAIN {sql}");
    for r in rows {
        println!("  {}", r.get::<String, _>(0));
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    #[allow(non_snake_case)] // read as the constants they were
    let (TOTAL, OPEN) = (size("CAREBOT_SCALE_CASES", 10_000_000), size("CAREBOT_SCALE_OPEN", 100_000));
    let admin =
        std::env::var("CAREBOT_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut conn = match sqlx::PgConnection::connect(&admin).await {
        Ok(c) => c,
        Err(e) => {
            println!("scale bench skipped: no Postgres at {admin}: {e}");
            return;
        }
    };
    let name = format!("carebot_scale_{}", std::process::id());
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create db");
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin.clone());

    let now = Utc.with_ymd_and_hms(2026, 11, 23, 18, 0, 0).unwrap();
    let start = (now - Duration::milliseconds(TOTAL * STEP_MS)).timestamp_millis();
    let mut settings = Settings::default();
    settings.playbooks.dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks");
    settings.secrets.database_url = Some(format!("{base}/{name}"));
    let ctx =
        Ctx::new(settings, Arc::new(Console::to_writer(Box::new(std::io::sink()))), Arc::new(FixedClock::new(now)))
            .await
            .expect("context");
    let pool = ctx.store.pool();

    let load = Instant::now();
    let sql = [
        format!(
            "INSERT INTO mentions (id, source, external_id, text, rating, posted_at, received_at, visibility, confidential, case_id) \
             SELECT g, (ARRAY['google','yelp','x','facebook'])[1 + g % 4], 'm' || g, 'Waited ' || (g % 7) || ' hours at Riverside', \
             CASE WHEN g % 3 = 0 THEN (g % 5) + 1 END, {start} + g * {STEP_MS}, {start} + g * {STEP_MS}, 'public', 0, g \
             FROM generate_series(1::bigint, {TOTAL}) g"
        ),
        format!(
            "INSERT INTO cases (id, mention_id, state, owner, outcome, situation, priority, channel, site, categories, sentiment, \
             sentiment_score, risk, urgent, spam, positive, confidential, reasons, opened_at, updated_at, first_response_at, \
             resolved_at, ack_due, response_due, follow_up_due, resolve_due) \
             SELECT g, g, CASE WHEN g > {TOTAL} - {OPEN} THEN (CASE WHEN g % 2 = 0 THEN 'open' ELSE 'claimed' END) ELSE 'resolved' END, \
             CASE WHEN g % 2 = 1 THEN 'sam' END, CASE WHEN g <= {TOTAL} - {OPEN} THEN 'resolved' END, \
             (ARRAY['negative-review','general','clinical-risk','on-site-now'])[1 + g % 4], 'p2', 'px-triage', \
             (ARRAY['riverside','northgate','eastbrook'])[1 + g % 3], 'wait_times', 'negative', -0.5, \
             CASE WHEN g % 4 = 2 THEN 1 ELSE 0 END, 0, 0, 0, 0, \
             '[{{\"kind\":\"category\",\"rule\":\"wait_times\",\"matched\":\"waited\"}}]', \
             {start} + g * {STEP_MS}, {start} + g * {STEP_MS}, \
             CASE WHEN g % 5 <> 0 THEN {start} + g * {STEP_MS} + (g % 240) * 60000 END, \
             CASE WHEN g <= {TOTAL} - {OPEN} THEN {start} + g * {STEP_MS} + 86400000 END, \
             {start} + g * {STEP_MS} + 1800000, {start} + g * {STEP_MS} + 7200000, \
             {start} + g * {STEP_MS} + 172800000, {start} + g * {STEP_MS} + 259200000 \
             FROM generate_series(1::bigint, {TOTAL}) g"
        ),
        "ANALYZE".to_string(),
    ];
    for s in &sql {
        sqlx::query(s).execute(pool).await.expect("bulk load");
    }
    println!("loaded {TOTAL} cases ({OPEN} unresolved) in {:.1} s", load.elapsed().as_secs_f64());

    let t = Instant::now();
    let first = carebot::jobs::escalation::sweep(&ctx, now).await.expect("sweep");
    println!("first sweep (every overdue step fires once): {:.0} ms — {first}", t.elapsed().as_secs_f64() * 1000.0);
    let mut sweeps = Vec::new();
    for i in 0..5 {
        let t = Instant::now();
        let s = carebot::jobs::escalation::sweep(&ctx, now + Duration::seconds(i)).await.expect("sweep");
        sweeps.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(s.starts_with("0 escalation"), "{s}");
    }
    println!("steady-state sweep over {OPEN} unresolved of {TOTAL}: median {:.1} ms of 5", median(sweeps));
    // Some cases changed (claims, replies): only they are looked at.
    sqlx::query(&format!("UPDATE cases SET next_check_at = 0 WHERE id > {TOTAL} - {OPEN} AND id % 100 = 0"))
        .execute(pool)
        .await
        .expect("mark");
    let t = Instant::now();
    let s = carebot::jobs::escalation::sweep(&ctx, now + Duration::seconds(10)).await.expect("sweep");
    println!("sweep after 1% of the open cases changed: {:.1} ms — {s}", t.elapsed().as_secs_f64() * 1000.0);
    println!("bench process memory after the sweeps: {}", memory());
    explain(
        pool,
        &format!(
            "SELECT * FROM cases WHERE state <> 'resolved' AND next_check_at <= {} \
             AND (next_check_at > {min} OR (next_check_at = {min} AND id > 0)) ORDER BY next_check_at, id LIMIT 500",
            now.timestamp_millis(),
            min = i64::MIN
        ),
    )
    .await;

    let day = (now - Duration::days(2)).with_timezone(&chrono_tz::America::Chicago).date_naive();
    let mut digests = Vec::new();
    let mut mentions = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let d = carebot::digest::gather(&ctx, day).await.expect("digest");
        digests.push(t.elapsed().as_secs_f64() * 1000.0);
        mentions = d.figures.mentions;
    }
    println!("daily digest query set for {day} ({mentions} mentions that day): median {:.1} ms of 5", median(digests));
    let t = Instant::now();
    let today = now.with_timezone(&chrono_tz::America::Chicago).date_naive();
    let live = carebot::digest::gather(&ctx, today).await.expect("digest");
    println!(
        "today's digest (live: {} open, {} overdue): {:.1} ms",
        live.open_cases,
        live.overdue.len(),
        t.elapsed().as_secs_f64() * 1000.0
    );
    println!("bench process memory after the digests: {}", memory());
    let at = now.timestamp_millis();
    explain(
        pool,
        &format!(
            "SELECT id, priority, situation, site, state, owner, opened_at, risk \
             FROM (SELECT * FROM cases WHERE state <> 'resolved') c \
             WHERE ((state = 'open' AND (ack_due < {at} OR response_due < {at} OR resolve_due < {at})) \
             OR (state = 'claimed' AND (response_due < {at} OR resolve_due < {at})) \
             OR (state IN ('responded', 'offline') AND resolve_due < {at})) ORDER BY priority, opened_at, id LIMIT 100"
        ),
    )
    .await;
    let end = carebot::digest::day_bounds(chrono_tz::America::Chicago, day).1;
    explain(
        pool,
        &format!(
            "SELECT COUNT(*) FROM (SELECT * FROM cases WHERE state <> 'resolved' AND opened_at < {end} \
             UNION ALL SELECT * FROM cases WHERE state = 'resolved' AND resolved_at >= {end} AND opened_at < {end}) c"
        ),
    )
    .await;
    ctx.store.close().await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)")).execute(&mut conn).await.expect("drop db");
}
