//! Click-to-ack latency for signed Claim clicks, Slack then Discord (release build:
//! `cargo bench --bench slack_ack`).
//!
//! The running app (HTTP listener, outbox worker delivering card updates to a local fake
//! Slack or Discord) on a fresh Postgres database at CAREBOT_TEST_PG_URL (default
//! postgres://postgres@127.0.0.1:5432/test). Rounds of 50 concurrent signed Claim clicks —
//! 10 cases, 5 clicks racing on each — measured from send to HTTP answer; then checks that
//! every case has exactly one claim.

#[path = "../tests/fakes/discord.rs"]
mod fake_discord;
#[path = "../tests/fakes/slack.rs"]
mod fake_slack;
mod support;

use carebot::app::chat_surfaces;
use carebot::clock::SystemClock;
use carebot::config::SurfaceKind;
use carebot::{App, Ctx, Settings};
use fake_slack::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROUNDS: usize = 40;
const CASES_PER_ROUND: usize = 10;
const AGENTS: [&str; 5] = ["U01SAM00002", "U01DENA0001", "U01PRIYA003", "U01MARCUS04", "U01GRACE005"];

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let db = support::BenchDb::create("ack").await;

    let fake = FakeSlack::start().await;
    let mut s = Settings::default();
    s.playbooks.dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("playbooks");
    s.http.listen = ([127, 0, 0, 1], 0).into();
    s.secrets.database_url = Some(db.url.clone());
    s.database.max_connections = 20;
    s.sources.files.enabled = false;
    s.chat.surface = SurfaceKind::Slack;
    s.slack.api_url = fake.api_url().as_str().into();
    s.slack.messages_per_second = 1000.try_into().unwrap();
    s.slack.burst = 1000.try_into().unwrap();
    s.secrets.slack_bot_token = Some(BOT_TOKEN.into());
    s.secrets.slack_signing_secret = Some(SIGNING_SECRET.into());
    let surfaces = chat_surfaces(&s).expect("slack surface");
    let mut ctx = Ctx::new(s, surfaces.chat.clone(), Arc::new(SystemClock)).await.expect("context");
    surfaces.attach(&mut ctx);
    let app = App::from_ctx(ctx).await.expect("bind");
    let (url, ctx) = (format!("http://{}/slack/interactions", app.addr()), app.ctx());
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));

    let total = ROUNDS * CASES_PER_ROUND;
    let mentions = support::mentions("ack", total + CASES_PER_ROUND, 1.0);
    let mut case_ids = Vec::new();
    for chunk in mentions.chunks(100) {
        case_ids.extend(carebot::intake::ingest(&ctx, chunk).await.expect("ingest").iter().map(|r| r.case_id()));
    }
    case_ids.sort_unstable();
    case_ids.dedup();
    assert_eq!(case_ids.len(), total + CASES_PER_ROUND, "every bench mention is its own case");
    // One unmeasured round first: it opens the pool's connections, as a running serve has.
    let warm_cases = case_ids.split_off(total);

    let client = reqwest::Client::new();
    let signed_click = |agent: &str, case_id: i64| {
        let body = click_body(&fake, agent, "claim", case_id, "1764000000.000001");
        let ts = now();
        client
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", ts.to_string())
            .header("x-slack-signature", signature(SIGNING_SECRET, ts, &body))
            .body(body)
    };
    let cold = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for &case_id in &warm_cases {
        for agent in AGENTS {
            let req = signed_click(agent, case_id);
            tasks.spawn(async move { req.send().await.expect("click").status().as_u16() });
        }
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.expect("task"), 200);
    }
    println!(
        "  (unmeasured first round of 50, the pool opening its connections: {:.1} ms)",
        cold.elapsed().as_secs_f64() * 1e3
    );

    let mut latencies = Vec::with_capacity(total * AGENTS.len());
    let started = Instant::now();
    for round in case_ids.chunks(CASES_PER_ROUND) {
        let mut tasks = tokio::task::JoinSet::new();
        for &case_id in round {
            for agent in AGENTS {
                let req = signed_click(agent, case_id);
                tasks.spawn(async move {
                    let t = Instant::now();
                    let status = req.send().await.expect("click").status();
                    (t.elapsed(), status.as_u16())
                });
            }
        }
        while let Some(r) = tasks.join_next().await {
            let (d, status) = r.expect("task");
            assert_eq!(status, 200);
            latencies.push(d);
        }
    }
    let wall = started.elapsed();
    latencies.sort_unstable();

    let mut exactly_one = 0;
    for &id in &case_ids {
        let claims = ctx.store.events(id).await.expect("events").iter().filter(|e| e.action == "claim").count();
        if claims == 1 {
            exactly_one += 1;
        }
    }
    println!(
        "slack click-to-ack (Postgres, {} signed Claim clicks in rounds of {} concurrent, {} agents per case):",
        latencies.len(),
        CASES_PER_ROUND * AGENTS.len(),
        AGENTS.len()
    );
    println!(
        "  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({:.0} clicks/s)",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.90).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
        latencies.len() as f64 / wall.as_secs_f64()
    );
    println!("  cases with exactly one claim: {exactly_one}/{}", case_ids.len());

    // The reply path: Draft reply clicks (draft + compliance check, then views.open after
    // the ack) and reply-modal submissions (check + the responded transaction), 50 at once.
    let signed = |body: String| {
        let ts = now();
        client
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", ts.to_string())
            .header("x-slack-signature", signature(SIGNING_SECRET, ts, &body))
            .body(body)
    };
    let mut owners = ctx.store.list_cases(&carebot::store::CaseFilter::default()).await.expect("cases");
    owners.retain(|c| case_ids.contains(&c.id));
    let mut drafts = Vec::new();
    let mut submits = Vec::new();
    for round in owners.chunks(50) {
        let mut tasks = tokio::task::JoinSet::new();
        for c in round {
            let person = ctx.playbooks().team.person(c.owner.as_deref().expect("claimed")).expect("owner").clone();
            let user = person.slack.clone().expect("slack id");
            let text = carebot::drafting::draft(&ctx, c.id, &person.id, None).await.expect("draft").text;
            let click = signed(click_body(&fake, &user, "draft_reply", c.id, "1764000000.000001"));
            let values = serde_json::json!({ "note": {"note": {"type": "plain_text_input", "value": text}} });
            let submit = signed(view_body(&user, &format!("reply:{}", c.id), values));
            tasks.spawn(async move {
                let t = Instant::now();
                assert_eq!(click.send().await.expect("click").status(), 200);
                let d = t.elapsed();
                let t = Instant::now();
                let res = submit.send().await.expect("submit");
                assert_eq!(res.status(), 200);
                let answer = res.text().await.expect("body");
                assert!(answer.is_empty(), "the modal was refused: {answer}");
                (d, t.elapsed())
            });
        }
        while let Some(r) = tasks.join_next().await {
            let (d, sub) = r.expect("task");
            drafts.push(d);
            submits.push(sub);
        }
    }
    drafts.sort_unstable();
    submits.sort_unstable();
    let responded = ctx
        .store
        .list_cases(&carebot::store::CaseFilter {
            states: vec![carebot::domain::CaseState::Responded],
            ..Default::default()
        })
        .await
        .expect("cases")
        .len();
    for (what, l) in [("Draft reply click", &drafts), ("reply modal submission", &submits)] {
        println!(
            "  {what}: p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({} in rounds of 50)",
            percentile(l, 0.50).as_secs_f64() * 1e3,
            percentile(l, 0.90).as_secs_f64() * 1e3,
            percentile(l, 0.99).as_secs_f64() * 1e3,
            l.last().unwrap().as_secs_f64() * 1e3,
            l.len()
        );
    }
    println!("  cases marked responded with the submitted text: {responded}/{}", case_ids.len());
    assert_eq!(responded, case_ids.len(), "a reply submission did not mark its case responded");

    let _ = stop.send(());
    let _ = server.await;
    drop(ctx);
    db.drop().await;
    assert_eq!(exactly_one, case_ids.len(), "a case was claimed more than once or not at all");
    discord().await;
}

/// The same rounds through Discord: Ed25519-signed component interactions, answered with
/// the redrawn card (UPDATE_MESSAGE) or a private refusal. Three people have Discord ids
/// in the shipped team file, so each case gets five clicks from them (two double clicks).
async fn discord() {
    use fake_discord as fd;
    let db = support::BenchDb::create("ackd").await;
    let fake = fd::FakeDiscord::start().await;
    let mut s = Settings::default();
    s.playbooks.dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("playbooks");
    s.http.listen = ([127, 0, 0, 1], 0).into();
    s.secrets.database_url = Some(db.url.clone());
    s.database.max_connections = 20;
    s.sources.files.enabled = false;
    s.chat.surface = SurfaceKind::Discord;
    s.discord.api_url = fake.base.as_str().into();
    s.secrets.discord_bot_token = Some(fd::BOT_TOKEN.into());
    s.secrets.discord_public_key = Some(fd::public_key_hex());
    s.secrets.discord_application_id = Some(fd::APP_ID.into());
    let surfaces = chat_surfaces(&s).expect("discord surface");
    let mut ctx = Ctx::new(s, surfaces.chat.clone(), Arc::new(SystemClock)).await.expect("context");
    surfaces.attach(&mut ctx);
    let app = App::from_ctx(ctx).await.expect("bind");
    let (url, ctx) = (format!("http://{}/discord/interactions", app.addr()), app.ctx());
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));

    let total = ROUNDS * CASES_PER_ROUND;
    let mentions = support::mentions("ackd", total + CASES_PER_ROUND, 1.0);
    let mut case_ids = Vec::new();
    for chunk in mentions.chunks(100) {
        case_ids.extend(carebot::intake::ingest(&ctx, chunk).await.expect("ingest").iter().map(|r| r.case_id()));
    }
    case_ids.sort_unstable();
    case_ids.dedup();
    const CLICKERS: [&str; 5] =
        ["401000000000000001", "401000000000000002", "401000000000000003", "401000000000000001", "401000000000000002"];
    let client = reqwest::Client::new();
    let signed = |body: serde_json::Value| {
        let text = body.to_string();
        let ts = chrono::Utc::now().timestamp().to_string();
        client
            .post(&url)
            .header("content-type", "application/json")
            .header("x-signature-ed25519", fd::sign(&ts, &text))
            .header("x-signature-timestamp", ts)
            .body(text)
    };
    let warm_cases = case_ids.split_off(total);
    let cold = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for &case_id in &warm_cases {
        for who in CLICKERS {
            let req = signed(fd::component(who, &format!("claim:{case_id}"), None, "800000000000000001"));
            tasks.spawn(async move { req.send().await.expect("click").status().as_u16() });
        }
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.expect("task"), 200);
    }
    println!(
        "  (unmeasured first round of 50, the pool opening its connections: {:.1} ms)",
        cold.elapsed().as_secs_f64() * 1e3
    );

    let mut latencies = Vec::with_capacity(total * CLICKERS.len());
    let started = Instant::now();
    for round in case_ids.chunks(CASES_PER_ROUND) {
        let mut tasks = tokio::task::JoinSet::new();
        for &case_id in round {
            for who in CLICKERS {
                let req = signed(fd::component(who, &format!("claim:{case_id}"), None, "800000000000000001"));
                tasks.spawn(async move {
                    let t = Instant::now();
                    let res = req.send().await.expect("click");
                    let status = res.status().as_u16();
                    (t.elapsed(), status)
                });
            }
        }
        while let Some(r) = tasks.join_next().await {
            let (d, status) = r.expect("task");
            assert_eq!(status, 200);
            latencies.push(d);
        }
    }
    let wall = started.elapsed();
    latencies.sort_unstable();
    let mut exactly_one = 0;
    for &id in &case_ids {
        let claims = ctx.store.events(id).await.expect("events").iter().filter(|e| e.action == "claim").count();
        if claims == 1 {
            exactly_one += 1;
        }
    }
    println!(
        "discord click-to-ack (Postgres, {} signed Claim clicks in rounds of {} concurrent):",
        latencies.len(),
        CASES_PER_ROUND * CLICKERS.len()
    );
    println!(
        "  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({:.0} clicks/s)",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.90).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
        latencies.len() as f64 / wall.as_secs_f64()
    );
    println!("  cases with exactly one claim: {exactly_one}/{}", case_ids.len());
    let _ = stop.send(());
    let _ = server.await;
    drop(ctx);
    db.drop().await;
    assert_eq!(exactly_one, case_ids.len(), "a case was claimed more than once or not at all");
}
