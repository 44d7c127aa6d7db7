//! Benchmarks for the case core (release build: `cargo bench --bench core`).
//!
//! Reports: triage throughput on one core; intake throughput (triage + dedupe + insert +
//! outbox, in 500-mention transactions) on SQLite and on Postgres; and, in the same run,
//! the database's own raw INSERT rates (one row per autocommit statement, and 500-row
//! transactions) so the ratio shows how close intake is to what the database can take.
//! Postgres is reached at CAREBOT_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/test).

use carebot::chat::console::Console;
use carebot::clock::SystemClock;
use carebot::domain::{Mention, RawMention};
use carebot::intake::ingest;
use carebot::playbook::{Playbooks, Triage};
use carebot::{Ctx, Settings};
use sqlx::Connection;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const TEXTS: &[&str] = &[
    "Waited 5 hours in the Riverside ER waiting room and the front desk was rude the whole time.",
    "Still waiting in the ER at Riverside right now, 4 hours and counting with my dad.",
    "They gave my mother the wrong medication at Riverside Medical Center. Talking to a lawyer.",
    "Northgate clinic billed me twice for the same visit and nobody called back after three messages.",
    "Huge thank you to Nurse Alicia at Northgate Family Clinic, she was so kind and went above and beyond.",
    "Eastbrook urgent care ran every test imaginable for a sore throat. Felt like unnecessary tests.",
    "Residents complain about the new parking garage fees at Riverside hospital.",
    "Get free followers now!! click here for crypto promo code",
    "I have been trying to get an appointment at Eastbrook for two weeks, on hold for 40 minutes.",
    "The bathroom was filthy at Northgate and the doctor was dismissive when I asked questions.",
];

/// Seeded pseudo-random words from the sample complaints, so every mention is its own case
/// (repeated templates would be folded together as a storm) while triage still finds
/// categories, sites and risk words in them.
fn varied_text(i: usize) -> String {
    let vocab: Vec<&str> = TEXTS.iter().flat_map(|t| t.split_whitespace()).collect();
    let mut x = (i as u64).wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut words = Vec::with_capacity(18);
    for _ in 0..18 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        words.push(vocab[(x >> 33) as usize % vocab.len()]);
    }
    words.join(" ")
}

fn mentions(n: usize, tag: &str) -> Vec<Mention> {
    (0..n)
        .map(|i| {
            RawMention {
                source: Some(["google", "yelp", "x", "facebook"][i % 4].into()),
                external_id: Some(format!("{tag}-{i}")),
                text: Some(varied_text(i)),
                rating: (i % 3 == 0).then_some((i % 5) as f64 + 1.0),
                author: Some(format!("reviewer {i}")),
                ..Default::default()
            }
            .parse(None, chrono::Utc::now())
            .expect("valid bench mention")
        })
        .collect()
}

fn bench_triage(pb: &Playbooks) {
    let triage = Triage::compile(&pb.triage_rules, &pb.team).expect("compile");
    let ms = mentions(20_000, "t");
    // Warm up, then three timed rounds; report the best.
    for m in &ms[..1000] {
        std::hint::black_box(triage.triage(m));
    }
    let mut best = f64::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        for m in &ms {
            std::hint::black_box(triage.triage(m));
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!("triage: {:.0} mentions/s on one core ({} mentions, best of 3)", ms.len() as f64 / best, ms.len());
}

async fn raw_insert_rates(ctx: &Ctx, n_single: usize) -> (f64, f64) {
    let pool = ctx.store.pool();
    sqlx::query("CREATE TABLE bench_raw (k TEXT NOT NULL, payload TEXT NOT NULL)").execute(pool).await.expect("create");
    let start = Instant::now();
    for i in 0..n_single {
        sqlx::query("INSERT INTO bench_raw (k, payload) VALUES ($1, $2)")
            .bind(format!("s{i}"))
            .bind(TEXTS[i % TEXTS.len()])
            .execute(pool)
            .await
            .expect("insert");
    }
    let single = n_single as f64 / start.elapsed().as_secs_f64();
    let n_batched = 20_000;
    let start = Instant::now();
    for chunk in (0..n_batched).collect::<Vec<_>>().chunks(500) {
        let mut tx = pool.begin().await.expect("begin");
        for i in chunk {
            sqlx::query("INSERT INTO bench_raw (k, payload) VALUES ($1, $2)")
                .bind(format!("b{i}"))
                .bind(TEXTS[i % TEXTS.len()])
                .execute(&mut *tx)
                .await
                .expect("insert");
        }
        tx.commit().await.expect("commit");
    }
    (single, n_batched as f64 / start.elapsed().as_secs_f64())
}

async fn bench_intake(label: &str, url: &str) {
    let mut settings = Settings::default();
    settings.playbooks.dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks");
    settings.secrets.database_url = Some(url.to_string());
    let ctx = Ctx::new(settings, Arc::new(Console::to_writer(Box::new(std::io::sink()))), Arc::new(SystemClock))
        .await
        .expect("context");
    let n = 20_000;
    let ms = mentions(n, label);
    let start = Instant::now();
    for chunk in ms.chunks(500) {
        ingest(&ctx, chunk).await.expect("ingest");
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let cases = ctx.store.count(carebot::store::cases::Table::Cases).await.expect("count");
    assert!(cases as usize > n * 9 / 10, "{cases} cases for {n} mentions: the bench texts are folding as storms");
    // Everything is a duplicate now: the dedupe path alone.
    let start = Instant::now();
    for chunk in ms.chunks(500) {
        ingest(&ctx, chunk).await.expect("ingest");
    }
    let dup_rate = n as f64 / start.elapsed().as_secs_f64();
    let (single, batched) = raw_insert_rates(&ctx, 2_000).await;
    println!(
        "intake on {label}: {rate:.0} mentions/s new ({n} mentions, 500 per transaction), {dup_rate:.0}/s duplicates; \
         raw INSERT: {single:.0} rows/s one per autocommit, {batched:.0} rows/s 500 per transaction \
         (intake = {:.2}x the batched raw rate)",
        rate / batched
    );
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list; there is nothing to unit-test here
    }
    let pb = Playbooks::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks")).expect("playbooks");
    bench_triage(&pb);

    let dir = tempfile::tempdir().expect("tempdir");
    bench_intake("sqlite", &format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display())).await;

    let admin =
        std::env::var("CAREBOT_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let name = format!("carebot_bench_{}", std::process::id());
    match sqlx::PgConnection::connect(&admin).await {
        Err(e) => println!("intake on postgres: skipped, no server at {admin}: {e}"),
        Ok(mut conn) => {
            sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create db");
            let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin.clone());
            bench_intake("postgres", &format!("{base}/{name}")).await;
            sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)")).execute(&mut conn).await.expect("drop db");
        }
    }
}
