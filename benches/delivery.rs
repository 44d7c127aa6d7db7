//! Delivery latency through the outbox lanes to a local fake Slack at the default pacing
//! (1 message/s per channel, bursts of 4): `cargo bench --bench delivery`.
//!
//! 1. 1,000 cards queued at once over 10 channels (100 each): enqueue → delivered p50/p99,
//!    and the wall time to drain, against the pacing floor (100 cards at 1/s ≈ 96 s).
//! 2. A P1 card for another channel queued while one channel has a 100-card backlog, and a
//!    P1 card for the busy channel itself: enqueue → delivered.
//!
//! Postgres at CAREBOT_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/test); the
//! playbooks are the shipped ones with ten extra channels.

#[path = "../tests/fakes/slack.rs"]
mod fake_slack;
mod support;

use carebot::app::chat_surfaces;
use carebot::chat::ChatOp;
use carebot::clock::SystemClock;
use carebot::config::SurfaceKind;
use carebot::{App, Ctx, Settings};
use fake_slack::*;
use sqlx::Row;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHANNELS: usize = 10;
const CARDS: usize = 1000;

fn percentile(sorted: &[i64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0
}

/// The shipped playbooks plus channels bench-0 … bench-9.
fn playbooks() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("playbooks");
    for f in ["team.yaml", "triage.yaml", "situations.yaml"] {
        std::fs::copy(src.join(f), dir.path().join(f)).expect("copy playbook");
    }
    std::fs::create_dir_all(dir.path().join("replies")).expect("replies");
    for e in std::fs::read_dir(src.join("replies")).expect("replies") {
        let p = e.expect("entry").path();
        std::fs::copy(&p, dir.path().join("replies").join(p.file_name().expect("name"))).expect("copy template");
    }
    let path = dir.path().join("situations.yaml");
    let text = std::fs::read_to_string(&path).expect("situations");
    let extra: String = (0..CHANNELS)
        .map(|i| format!("  bench-{i}:\n    slack: C0BENCH{i:04}\n    description: bench channel {i}\n"))
        .collect();
    std::fs::write(&path, text.replacen("channels:\n", &format!("channels:\n{extra}"), 1)).expect("write");
    dir
}

async fn queue(ctx: &Ctx, ops: &[ChatOp]) {
    let mut tx = ctx.store.begin().await.expect("tx");
    let now = ctx.now_ms();
    for op in ops {
        carebot::chat::queue(&mut tx, op, now, now).await.expect("queue");
    }
    tx.commit().await.expect("commit");
    ctx.outbox_wake.notify_one();
}

/// Waits until nothing is pending; returns the wall time.
async fn drain(ctx: &Ctx, started: Instant) -> Duration {
    loop {
        let (pending, failed) = ctx.store.outbox_depth().await.expect("depth");
        assert_eq!(failed, 0, "nothing may fail");
        if pending == 0 {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn latencies(ctx: &Ctx, since_id: i64) -> Vec<i64> {
    let rows =
        sqlx::query("SELECT delivered_at - created_at AS ms FROM outbox WHERE id > $1 AND op = 'post_card' ORDER BY 1")
            .bind(since_id)
            .fetch_all(ctx.store.pool())
            .await
            .expect("latencies");
    rows.iter().map(|r| r.try_get::<i64, _>("ms").expect("ms")).collect()
}

async fn last_id(ctx: &Ctx) -> i64 {
    sqlx::query("SELECT COALESCE(MAX(id), 0) AS id FROM outbox")
        .fetch_one(ctx.store.pool())
        .await
        .expect("max id")
        .try_get("id")
        .expect("id")
}

#[tokio::main]
async fn main() {
    let db = support::BenchDb::create("delivery").await;
    let pb = playbooks();

    let fake = FakeSlack::start().await;
    let mut s = Settings::default();
    s.playbooks.dir = pb.path().to_path_buf();
    s.http.listen = ([127, 0, 0, 1], 0).into();
    s.secrets.database_url = Some(db.url.clone());
    s.sources.files.enabled = false;
    s.chat.surface = SurfaceKind::Slack;
    s.slack.api_url = fake.api_url().as_str().into();
    s.secrets.slack_bot_token = Some(BOT_TOKEN.into());
    s.secrets.slack_signing_secret = Some(SIGNING_SECRET.into());
    let (per_second, burst) = (s.slack.messages_per_second.get(), s.slack.burst.get());
    let surfaces = chat_surfaces(&s).expect("slack surface");
    let mut ctx = Ctx::new(s, surfaces.chat.clone(), Arc::new(SystemClock)).await.expect("context");
    surfaces.attach(&mut ctx);

    // Cases first, with their own cards dropped: the bench queues its own.
    let mentions = support::mentions("dl", CARDS + 2, 2.0);
    let mut ids = Vec::new();
    for chunk in mentions.chunks(200) {
        ids.extend(carebot::intake::ingest(&ctx, chunk).await.expect("ingest").iter().map(|r| r.case_id()));
    }
    sqlx::query("DELETE FROM outbox").execute(ctx.store.pool()).await.expect("clear outbox");

    let app = App::from_ctx(ctx).await.expect("bind");
    let ctx = app.ctx();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));

    // 1. 1,000 cards over ten channels.
    let ops: Vec<ChatOp> = ids[..CARDS]
        .iter()
        .enumerate()
        .map(|(i, id)| ChatOp::PostCard { case_id: *id, channel: format!("bench-{}", i % CHANNELS) })
        .collect();
    let started = Instant::now();
    queue(&ctx, &ops).await;
    let wall = drain(&ctx, started).await;
    let mut lat = latencies(&ctx, 0).await;
    lat.sort_unstable();
    let per_channel = CARDS / CHANNELS;
    let floor = (per_channel as f64 - burst as f64) / per_second as f64;
    println!("delivery, {CARDS} cards over {CHANNELS} channels at {per_second}/s per channel (bursts of {burst}), Postgres, local fake Slack:");
    println!(
        "  enqueue → delivered: p50 {:.2} s  p99 {:.2} s  max {:.2} s; drained in {:.1} s (pacing floor {floor:.0} s)",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0),
        wall.as_secs_f64()
    );
    let posts = fake.calls_to("chat.postMessage").len();
    assert_eq!(posts, CARDS, "each card posted once");

    // 2. A 100-card backlog in bench-0, then a P1 for bench-1 and one for bench-0 itself.
    let backlog: Vec<ChatOp> =
        ids[..100].iter().map(|id| ChatOp::PostCard { case_id: *id, channel: "bench-0".into() }).collect();
    let mark = last_id(&ctx).await;
    sqlx::query("DELETE FROM case_messages").execute(ctx.store.pool()).await.expect("forget posted cards");
    queue(&ctx, &backlog).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let p1 = [ids[CARDS], ids[CARDS + 1]];
    sqlx::query("UPDATE cases SET priority = 'p1' WHERE id = $1 OR id = $2")
        .bind(p1[0])
        .bind(p1[1])
        .execute(ctx.store.pool())
        .await
        .expect("p1");
    let before_p1 = last_id(&ctx).await;
    queue(
        &ctx,
        &[
            ChatOp::PostCard { case_id: p1[0], channel: "bench-1".into() },
            ChatOp::PostCard { case_id: p1[1], channel: "bench-0".into() },
        ],
    )
    .await;
    let wait_p1 = Instant::now();
    loop {
        let rows = sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE id > $1 AND status = 'delivered'")
            .bind(before_p1)
            .fetch_one(ctx.store.pool())
            .await
            .expect("p1 rows");
        if rows.try_get::<i64, _>("n").expect("n") == 2 || wait_p1.elapsed() > Duration::from_secs(30) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let p1_lat = latencies(&ctx, before_p1).await;
    let interval = 1.0 / per_second as f64;
    println!(
        "  P1 card while another channel has a 100-card backlog: {:.3} s; P1 card into the busy channel itself: {:.3} s (pacing interval {interval:.1} s)",
        p1_lat.iter().copied().min().unwrap_or(-1) as f64 / 1000.0,
        p1_lat.iter().copied().max().unwrap_or(-1) as f64 / 1000.0,
    );
    let _ = mark;

    let _ = stop.send(());
    let _ = server.await;
    drop(ctx);
    db.drop().await;
}
