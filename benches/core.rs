//! Benchmarks for the case core (release build: `cargo bench --bench core`).
//!
//! Reports: triage throughput on one core; intake throughput (dedupe + triage + storm
//! check + mentions, cases, events and outbox rows, in batches of 500 and of 100) on SQLite
//! and on Postgres, interleaved with the database's own rate for the same rows written by
//! a bare multi-row INSERT chain, so the ratio shows how close intake is to what the
//! database can take; and the webhook path end to end over HTTP.
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

/// The database's own rate for the same rows intake writes, with nothing in between: per
/// batch of 500, the ids taken (a sequence on Postgres, the table's top on SQLite under its
/// write lock) and one multi-row INSERT each into mentions, cases, case_events and outbox,
/// in one transaction. Rows are already triaged (fixed values): no lookup, no triage, no
/// storm check.
async fn raw_chain_rate(ctx: &Ctx, ms: &[Mention]) -> f64 {
    let pool = ctx.store.pool();
    let start = Instant::now();
    for chunk in ms.chunks(500) {
        let mut tx = pool.begin().await.expect("begin");
        let now = chrono::Utc::now().timestamp_millis();
        // Bare `?` on SQLite: the driver looks every numbered parameter up by walking a
        // list, quadratic in a long statement.
        let sqlite = ctx.store.backend() == carebot::store::Backend::Sqlite;
        let mark = |i: usize| if sqlite { "?".to_string() } else { format!("${i}") };
        let values = |cols: usize, n: usize| {
            (0..n)
                .map(|r| format!("({})", (1..=cols).map(|c| mark(r * cols + c)).collect::<Vec<_>>().join(", ")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut ids = Vec::new();
        for table in ["mentions", "cases"] {
            let taken: Vec<i64> = if sqlite {
                let top: i64 = sqlx::Row::get(
                    &sqlx::query(&format!("SELECT COALESCE(MAX(id), 0) FROM {table}"))
                        .fetch_one(&mut *tx)
                        .await
                        .expect("ids"),
                    0,
                );
                (1..=chunk.len() as i64).map(|i| top + i).collect()
            } else {
                let sql = format!(
                    "SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, {})",
                    chunk.len()
                );
                let rows = sqlx::query(&sql).fetch_all(&mut *tx).await.expect("ids");
                rows.iter().map(|r| sqlx::Row::get::<i64, _>(r, 0)).collect()
            };
            ids.push(taken);
        }
        let (mention_ids, case_ids) = (&ids[0], &ids[1]);
        let sql = format!(
            "INSERT INTO mentions (id, source, external_id, url, author, text, rating, posted_at, received_at, \
             location_hint, visibility, forwarded_by, confidential, case_id) VALUES {}",
            values(14, chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for (m, (id, case)) in chunk.iter().zip(mention_ids.iter().zip(case_ids)) {
            q = q
                .bind(id)
                .bind(&m.source)
                .bind(format!("raw-{}", m.external_id))
                .bind(&m.url)
                .bind(&m.author)
                .bind(&m.text)
                .bind(m.rating.unwrap_or(0.0))
                .bind(m.posted_at.timestamp_millis())
                .bind(now)
                .bind(&m.location_hint)
                .bind("public")
                .bind(&m.forwarded_by)
                .bind(0i64)
                .bind(case);
        }
        q.execute(&mut *tx).await.expect("mentions");
        let sql = format!(
            "INSERT INTO cases (id, mention_id, state, situation, priority, channel, site, categories, sentiment, \
             sentiment_score, risk, urgent, spam, positive, confidential, reasons, opened_at, updated_at, ack_due, \
             response_due, follow_up_due, resolve_due, fingerprint) VALUES {}",
            values(23, mention_ids.len())
        );
        let mut q = sqlx::query(&sql);
        for (id, case) in mention_ids.iter().zip(case_ids) {
            q = q
                .bind(case)
                .bind(id)
                .bind("open")
                .bind("negative-review")
                .bind("p2")
                .bind("px-triage")
                .bind("riverside")
                .bind("wait_times")
                .bind("negative")
                .bind(-0.5)
                .bind(0i64)
                .bind(0i64)
                .bind(0i64)
                .bind(0i64)
                .bind(0i64)
                .bind(r#"[{"kind":"category","rule":"wait_times","matched":"waited"}]"#)
                .bind(now)
                .bind(now)
                .bind(now + 1_800_000)
                .bind(now + 7_200_000)
                .bind(now + 172_800_000)
                .bind(now + 259_200_000)
                .bind(now % 1_000_003);
        }
        q.execute(&mut *tx).await.expect("cases");
        let sql = format!(
            "INSERT INTO case_events (case_id, at, actor, action, detail) VALUES {}",
            values(5, case_ids.len())
        );
        let mut q = sqlx::query(&sql);
        for id in case_ids {
            q = q
                .bind(id)
                .bind(now)
                .bind("carebot")
                .bind("opened")
                .bind(r#"{"source":"google","situation":"negative-review"}"#);
        }
        q.execute(&mut *tx).await.expect("events");
        let sql = format!(
            "INSERT INTO outbox (case_id, op, payload, next_attempt_at, created_at, lane, priority) VALUES {}",
            values(7, case_ids.len())
        );
        let mut q = sqlx::query(&sql);
        for id in case_ids {
            q = q
                .bind(id)
                .bind("post_card")
                .bind(format!(r#"{{"op":"post_card","case_id":{id},"channel":"px-triage"}}"#))
                .bind(now)
                .bind(now)
                .bind("channel:px-triage")
                .bind(2i64);
        }
        q.execute(&mut *tx).await.expect("outbox");
        tx.commit().await.expect("commit");
    }
    ms.len() as f64 / start.elapsed().as_secs_f64()
}

async fn context(url: &str) -> Ctx {
    let mut settings = Settings::default();
    settings.playbooks.dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks");
    settings.secrets.database_url = Some(url.to_string());
    Ctx::new(settings, Arc::new(Console::to_writer(Box::new(std::io::sink()))), Arc::new(SystemClock))
        .await
        .expect("context")
}

/// Intake in batches of `batch` (500: `carebot ingest` and the drop folder; 100: a
/// webhook request) beside the raw chain of the same rows, interleaved three times.
async fn bench_intake(label: &str, url: &str) {
    let ctx = context(url).await;
    let n = 20_000;
    let (mut at_500, mut at_100, mut raw, mut dup) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..3 {
        let ms = mentions(n, &format!("{label}-{round}"));
        let start = Instant::now();
        for chunk in ms.chunks(500) {
            ingest(&ctx, chunk).await.expect("ingest");
        }
        at_500.push(n as f64 / start.elapsed().as_secs_f64());
        // Everything is a duplicate now: the dedupe path alone.
        let start = Instant::now();
        for chunk in ms.chunks(500) {
            ingest(&ctx, chunk).await.expect("ingest");
        }
        dup.push(n as f64 / start.elapsed().as_secs_f64());
        raw.push(raw_chain_rate(&ctx, &ms).await);
        let ms = mentions(n, &format!("{label}-w{round}"));
        let start = Instant::now();
        for chunk in ms.chunks(100) {
            ingest(&ctx, chunk).await.expect("ingest");
        }
        at_100.push(n as f64 / start.elapsed().as_secs_f64());
    }
    let cases = ctx.store.count(carebot::store::cases::Table::Cases).await.expect("count");
    assert!(cases as usize > n * 6 * 9 / 10, "{cases} cases: the bench texts are folding as storms");
    let range = |v: &[f64]| {
        let lo = v.iter().cloned().fold(f64::MAX, f64::min);
        let hi = v.iter().cloned().fold(0.0, f64::max);
        format!("{lo:.0}–{hi:.0}")
    };
    let ratio: Vec<f64> = at_500.iter().zip(&raw).map(|(a, r)| a / r).collect();
    println!(
        "intake on {label} ({n} new mentions per run, 3 interleaved runs): {} mentions/s in batches of 500 \
         ({} of the raw rate in the same run), {} mentions/s in batches of 100, {}/s duplicates; \
         raw multi-row INSERT chain of the same rows: {} rows/s",
        range(&at_500),
        {
            let lo = ratio.iter().cloned().fold(f64::MAX, f64::min);
            let hi = ratio.iter().cloned().fold(0.0, f64::max);
            format!("{lo:.2}x–{hi:.2}x")
        },
        range(&at_100),
        range(&dup),
        range(&raw),
    );
    ctx.store.close().await;
}

/// The webhook path end to end: signed HTTP requests of 100 mentions each to
/// `/ingest/webhook/{source}` of the running app, four senders at once.
async fn bench_webhook(url: &str) {
    use carebot::sources::webhook::{sign, SIGNATURE_HEADER};
    let mut settings = Settings::default();
    settings.playbooks.dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks");
    settings.secrets.database_url = Some(url.to_string());
    settings.http.listen = ([127, 0, 0, 1], 0).into();
    settings.sources.files.enabled = false;
    // The per-source request limit (default 50/s) is a policy, not the capacity measured.
    settings.http.webhook_requests_per_second = 100_000.try_into().expect("non-zero");
    settings.secrets.webhook_secrets.insert("listening".into(), "bench-secret".into());
    let ctx = Ctx::new(settings, Arc::new(Console::to_writer(Box::new(std::io::sink()))), Arc::new(SystemClock))
        .await
        .expect("context");
    let app = carebot::App::from_ctx(ctx).await.expect("app");
    let base = format!("http://{}", app.addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let n = 20_000;
    let bodies: Vec<String> = mentions(n, "webhook")
        .chunks(100)
        .map(|c| {
            let items: Vec<_> = c
                .iter()
                .map(|m| serde_json::json!({"id": m.external_id, "text": m.text, "author": m.author, "rating": m.rating}))
                .collect();
            serde_json::to_string(&items).expect("json")
        })
        .collect();
    let client = reqwest::Client::new();
    let start = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for part in bodies.chunks(bodies.len().div_ceil(4)) {
        let (client, base, part) = (client.clone(), base.clone(), part.to_vec());
        senders.spawn(async move {
            for body in part {
                let res = client
                    .post(format!("{base}/ingest/webhook/listening"))
                    .header(SIGNATURE_HEADER, sign(b"bench-secret", body.as_bytes()))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("send");
                assert!(res.status().is_success(), "{}", res.status());
            }
        });
    }
    while senders.join_next().await.is_some() {}
    let rate = n as f64 / start.elapsed().as_secs_f64();
    println!("webhook path on postgres: {rate:.0} mentions/s ({n} mentions, 100 per signed request, 4 senders)");
    let _ = stop.send(());
    let _ = running.await;
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
            sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create db");
            bench_webhook(&format!("{base}/{name}")).await;
            sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)")).execute(&mut conn).await.expect("drop db");
        }
    }
}
