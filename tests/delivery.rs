//! Chat delivery against a local fake Slack that answers like Slack (429 + Retry-After,
//! 5xx, `ok:false`): independent per-channel lanes, P1 first, rate limits that delay but
//! never lose, waits measured from the answer, a case's steps in order, real `<!here>`,
//! the per-channel rate kept across two replicas, re-sending failed messages, and a
//! prompt shutdown.

mod common;
#[path = "fakes/slack.rs"]
mod fake_slack;

use carebot::app::chat_surfaces;
use carebot::clock::{Clock, SystemClock};
use carebot::config::SurfaceKind;
use carebot::domain::Action;
use carebot::intake::ingest;
use carebot::store::Backend;
use carebot::workflow::act;
use carebot::{App, Ctx, Settings};
use common::*;
use fake_slack::{Call, *};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TRIAGE: &str = "C01PXTRIAGE";
const RISK: &str = "C01RISKMGMT";

struct Running {
    ctx: Arc<Ctx>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

fn slack_settings(db: &TestDb, dir: &std::path::Path, fake: &FakeSlack) -> Settings {
    let mut s = settings(db, &dir.join("inbox"));
    s.chat.surface = SurfaceKind::Slack;
    s.slack.api_url = fake.api_url().as_str().into();
    s.secrets.slack_bot_token = Some(BOT_TOKEN.into());
    s.secrets.slack_signing_secret = Some(SIGNING_SECRET.into());
    s
}

async fn start(s: Settings) -> Running {
    let surfaces = chat_surfaces(&s).unwrap();
    let mut ctx = Ctx::new(s, surfaces.chat.clone(), Arc::new(SystemClock) as Arc<dyn Clock>).await.unwrap();
    surfaces.attach(&mut ctx);
    let app = App::from_ctx(ctx).await.unwrap();
    let ctx = app.ctx();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    Running { ctx, stop: Some(tx), done }
}

/// Distinct routine complaints: different words each, so no storm folds them together.
fn routine(i: usize) -> carebot::domain::Mention {
    const WORDS: [&str; 40] = [
        "parking",
        "billing",
        "signage",
        "cafeteria",
        "elevator",
        "wifi",
        "noise",
        "lighting",
        "invoice",
        "lobby",
        "pharmacy",
        "radiology",
        "laboratory",
        "scheduling",
        "portal",
        "voicemail",
        "wheelchair",
        "stairs",
        "vending",
        "restroom",
        "chairs",
        "television",
        "blanket",
        "pillow",
        "menu",
        "coffee",
        "garage",
        "shuttle",
        "badge",
        "kiosk",
        "printer",
        "copay",
        "insurance",
        "referral",
        "fax",
        "letter",
        "envelope",
        "map",
        "hallway",
        "window",
    ];
    let mut seed = (i as u64 + 1).wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut words = Vec::new();
    for _ in 0..10 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        words.push(WORDS[(seed >> 33) as usize % WORDS.len()]);
    }
    let text = format!("Riverside complaint {i}: {} were all bad and disappointing", words.join(" "));
    mention("google", &format!("r-{i}"), &text, Some(2.0))
}

fn posts_to(calls: &[Call], channel: &str) -> Vec<Call> {
    calls.iter().filter(|c| c.method == "chat.postMessage" && c.body["channel"] == channel).cloned().collect()
}

fn is_card_of(c: &Call, case_id: i64) -> bool {
    c.body["thread_ts"].is_null() && c.body["text"].as_str().unwrap_or("").contains(&format!("Case #{case_id} "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_p1_card_is_not_held_up_by_a_busy_channel_and_goes_first_in_its_own() {
    let fake = FakeSlack::start().await;
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let r = start(slack_settings(&db, dir.path(), &fake)).await; // default pacing: 1/s, bursts of 4
    let backlog: Vec<_> = (0..30).map(routine).collect();
    ingest(&r.ctx, &backlog).await.unwrap();
    fake.wait_for("the first routine cards", |c| posts_to(c, TRIAGE).len() >= 4).await;

    let queued = Instant::now();
    let risk = mention(
        "google",
        "p1",
        "They gave my father the wrong medication at Riverside and he ended up in the ICU. Calling a lawyer.",
        Some(1.0),
    );
    let p1 = ingest(&r.ctx, &[risk]).await.unwrap()[0].case_id();
    let calls = fake.wait_for("the P1 card in #risk", |c| posts_to(c, RISK).iter().any(|c| is_card_of(c, p1))).await;
    let p1_at = posts_to(&calls, RISK).into_iter().find(|c| is_card_of(c, p1)).unwrap().at;
    let waited = p1_at.duration_since(queued);
    assert!(waited < Duration::from_millis(1500), "#risk waited {waited:?} behind #px-triage's backlog");

    // In #px-triage itself the P1 copy jumps the routine queue.
    let calls =
        fake.wait_for("the P1 card in #px-triage", |c| posts_to(c, TRIAGE).iter().any(|c| is_card_of(c, p1))).await;
    let order = posts_to(&calls, TRIAGE);
    let position = order.iter().position(|c| is_card_of(c, p1)).unwrap();
    assert!(position <= 7, "P1 card was #{position} in #px-triage, behind routine cards");
    let pending = r.ctx.store.outbox_depth().await.unwrap().0;
    assert!(pending > 15, "the routine backlog was still pacing out when the P1 went ({pending} left)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_delays_but_loses_nothing_and_retry_after_is_waited_from_the_answer() {
    let fake = FakeSlack::start().await;
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = slack_settings(&db, dir.path(), &fake);
    s.slack.messages_per_second = 50.try_into().unwrap();
    s.slack.burst = 10.try_into().unwrap();
    s.outbox.max_attempts = Some(2); // no longer a limit: rate limits never use up attempts
    let storm = 5;
    fake.script("chat.postMessage", Scripted::RateLimited { retry_after_secs: 3 });
    for _ in 1..storm {
        fake.script("chat.postMessage", Scripted::RateLimited { retry_after_secs: 1 });
    }
    let r = start(s).await;
    let cards: Vec<_> = (0..5).map(routine).collect();
    let ids: Vec<i64> = ingest(&r.ctx, &cards).await.unwrap().iter().map(|i| i.case_id()).collect();
    let calls = fake
        .wait_for("every card despite the storm", |c| {
            ids.iter().all(|id| posts_to(c, TRIAGE).iter().any(|c| is_card_of(c, *id)))
        })
        .await;
    let posts = posts_to(&calls, TRIAGE);
    // Each answered 429 was waited out in full before the next message on the channel.
    for (i, pair) in posts.windows(2).enumerate().take(storm) {
        let wait = if i == 0 { 3 } else { 1 };
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(gap >= Duration::from_secs(wait), "call {} came {gap:?} after a 429 asking for {wait} s", i + 1);
    }
    // The fake records refused calls too: the first `storm` were answered 429.
    assert_eq!(posts.len(), storm + ids.len(), "each card sent once it was accepted");
    for id in &ids {
        assert_eq!(posts[storm..].iter().filter(|c| is_card_of(c, *id)).count(), 1, "case {id} posted once");
    }
    // The fake has seen the last post; the worker marks it delivered right after.
    let mut depth = r.ctx.store.outbox_depth().await.unwrap();
    for _ in 0..100 {
        if depth.0 == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        depth = r.ctx.store.outbox_depth().await.unwrap();
    }
    assert_eq!(depth, (0, 0), "nothing pending, nothing failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_made_while_the_card_is_being_retried_logs_its_line_under_the_card() {
    let fake = FakeSlack::start().await;
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = slack_settings(&db, dir.path(), &fake);
    s.outbox.backoff_base_ms = 400;
    s.outbox.backoff_max_ms = 400;
    fake.script("chat.postMessage", Scripted::ServerError);
    fake.script("chat.postMessage", Scripted::ServerError);
    let r = start(s).await;
    let id = ingest(&r.ctx, &[routine(1)]).await.unwrap()[0].case_id();
    fake.wait_for("the first failed post", |c| !posts_to(c, TRIAGE).is_empty()).await;
    act(&r.ctx, id, "sam", Action::Claim).await.unwrap();
    let calls = fake
        .wait_for("the claim's line in the card's thread", |c| {
            posts_to(c, TRIAGE)
                .iter()
                .any(|c| c.body["text"].as_str().unwrap_or("").contains("claimed by Sam Whitfield"))
        })
        .await;
    let posts = posts_to(&calls, TRIAGE);
    let card = posts.iter().rposition(|c| is_card_of(c, id)).expect("the card was posted");
    let line = posts.iter().position(|c| c.body["text"].as_str().unwrap_or("").contains("claimed by")).unwrap();
    assert!(line > card, "the line came after the card");
    let card_ts = r.ctx.store.case_messages(id).await.unwrap()[0].message_ref.split_once('|').unwrap().1.to_string();
    assert_eq!(posts[line].body["thread_ts"], card_ts.as_str(), "the line is in the card's thread");
    assert_eq!(posts.iter().filter(|c| is_card_of(c, id)).count(), 3, "two failures, one success");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_escalation_really_notifies_the_channel() {
    let fake = FakeSlack::start().await;
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let r = start(slack_settings(&db, dir.path(), &fake)).await;
    let id = ingest(&r.ctx, &[routine(2)]).await.unwrap()[0].case_id();
    fake.wait_for("the card", |c| posts_to(c, TRIAGE).iter().any(|c| is_card_of(c, id))).await;
    // Tomorrow at noon in the site's time zone: past the acknowledge clock, inside the
    // step's 07:00-21:00 hours.
    let tz: chrono_tz::Tz = "America/Chicago".parse().unwrap();
    let noon =
        (chrono::Utc::now().with_timezone(&tz).date_naive() + chrono::Duration::days(1)).and_hms_opt(12, 0, 0).unwrap();
    let later = noon.and_local_timezone(tz).unwrap().with_timezone(&chrono::Utc);
    let fired = carebot::jobs::escalation::sweep(&r.ctx, later).await.unwrap();
    let case = r.ctx.store.case(id).await.unwrap().unwrap();
    assert!(!fired.starts_with("0 escalation"), "{fired} ({})", case.situation);
    let calls = fake
        .wait_for("the @here line", |c| {
            posts_to(c, TRIAGE).iter().any(|c| c.body["text"].as_str().unwrap_or("").starts_with("<!here> "))
        })
        .await;
    let here =
        posts_to(&calls, TRIAGE).into_iter().find(|c| c.body["text"].as_str().unwrap().starts_with("<!here>")).unwrap();
    assert!(here.body["text"].as_str().unwrap().contains(&format!("Case #{id} ")), "{}", here.body);
    assert_eq!(here.body["reply_broadcast"], true, "shown in the channel, not only in the thread");
    assert!(!here.body["thread_ts"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_together_keep_the_per_channel_rate() {
    let fake = FakeSlack::start().await;
    let db = TestDb::new(Backend::Postgres).await;
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let tune = |mut s: Settings| {
        s.slack.messages_per_second = 4.try_into().unwrap(); // one every 250 ms …
        s.slack.burst = 1.try_into().unwrap(); // … and no bursts
        s
    };
    let a = start(tune(slack_settings(&db, dirs.0.path(), &fake))).await;
    let b = start(tune(slack_settings(&db, dirs.1.path(), &fake))).await;
    let cards: Vec<_> = (0..12).map(routine).collect();
    let ids: Vec<i64> = ingest(&a.ctx, &cards).await.unwrap().iter().map(|i| i.case_id()).collect();
    b.ctx.outbox_wake.notify_one();
    let calls = fake
        .wait_for("all twelve cards", |c| ids.iter().all(|id| posts_to(c, TRIAGE).iter().any(|c| is_card_of(c, *id))))
        .await;
    let posts = posts_to(&calls, TRIAGE);
    assert_eq!(posts.len(), 12, "each card once, from one replica or the other");
    // One every 250 ms in all: two replicas each at the full rate would post four in about
    // 375 ms. The shared pacing spaces the decisions to send; on a busy 2-core machine one
    // send can take ~100 ms longer than the next, so a single gap may shrink, but any four
    // posts in a row span three intervals less that jitter.
    for four in posts.windows(4) {
        let span = four[3].at.duration_since(four[0].at);
        assert!(span >= Duration::from_millis(600), "four posts to #px-triage in {span:?}: over the rate");
    }
    let span = posts[11].at.duration_since(posts[0].at);
    assert!(span >= Duration::from_millis(11 * 240), "12 posts in {span:?}: over the rate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_outage_the_p1_card_goes_first() {
    let fake = FakeSlack::start().await;
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = slack_settings(&db, dir.path(), &fake);
    s.outbox.backoff_base_ms = 200;
    s.outbox.backoff_max_ms = 800;
    for _ in 0..4 {
        fake.script("chat.postMessage", Scripted::ServerError);
    }
    let r = start(s).await;
    let backlog: Vec<_> = (10..16).map(routine).collect();
    ingest(&r.ctx, &backlog).await.unwrap();
    fake.wait_for("the outage", |c| !posts_to(c, TRIAGE).is_empty()).await;
    let risk = mention(
        "google",
        "p1-out",
        "They gave my father the wrong medication at Riverside and he ended up in the ICU. Calling a lawyer.",
        Some(1.0),
    );
    let p1 = ingest(&r.ctx, &[risk]).await.unwrap()[0].case_id();
    // When each card reached #px-triage, from the references carebot stored on success.
    let mut ids: Vec<i64> = (1..=6).collect();
    ids.push(p1);
    let mut posted = Vec::new();
    for _ in 0..500 {
        posted.clear();
        for id in &ids {
            let msgs = r.ctx.store.case_messages(*id).await.unwrap();
            if msgs.iter().any(|m| m.channel == "px-triage") {
                posted.push(*id);
            }
        }
        if posted.len() == ids.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(posted.len(), ids.len(), "every card was posted once the outage ended");
    let rows = sqlx::query("SELECT case_id FROM case_messages WHERE channel = 'px-triage' ORDER BY posted_at, case_id")
        .fetch_all(r.ctx.store.pool())
        .await
        .unwrap();
    let order: Vec<i64> = rows.iter().map(|row| sqlx::Row::get::<i64, _>(row, "case_id")).collect();
    assert_eq!(order[0], p1, "the first card into #px-triage after the outage was not the P1: {order:?}");
    assert_eq!(r.ctx.store.outbox_depth().await.unwrap().1, 0, "nothing failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_messages_can_be_sent_again_once_fixed() {
    let fake = FakeSlack::start().await;
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    fake.script("chat.postMessage", Scripted::Error("channel_not_found"));
    let r = start(slack_settings(&db, dir.path(), &fake)).await;
    let id = ingest(&r.ctx, &[routine(3)]).await.unwrap()[0].case_id();
    for _ in 0..200 {
        if r.ctx.store.outbox_depth().await.unwrap().1 == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(r.ctx.store.outbox_depth().await.unwrap(), (0, 1), "a permanent error fails at once");
    let table = carebot::ops::outbox_table(&r.ctx).await.unwrap();
    assert!(table.contains("channel:px-triage") && table.contains("channel_not_found"), "{table}");
    // Someone claims the case meanwhile: its line has no card to go under yet.
    act(&r.ctx, id, "sam", Action::Claim).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The channel is fixed (the bot invited): re-send.
    assert_eq!(r.ctx.store.outbox_requeue(None, r.ctx.now_ms()).await.unwrap(), 1);
    r.ctx.outbox_wake.notify_one();
    let calls = fake
        .wait_for("the re-sent card and the steps taken meanwhile", |c| {
            posts_to(c, TRIAGE).iter().any(|c| c.body["text"].as_str().unwrap_or("").starts_with("Steps taken before"))
        })
        .await;
    let posts = posts_to(&calls, TRIAGE);
    assert_eq!(posts.iter().filter(|c| is_card_of(c, id)).count(), 2, "refused once, posted once");
    let catch_up = posts.iter().find(|c| c.body["text"].as_str().unwrap_or("").starts_with("Steps taken")).unwrap();
    assert!(catch_up.body["text"].as_str().unwrap().contains("claimed by Sam Whitfield"), "{}", catch_up.body);
    let card_ts = r.ctx.store.case_messages(id).await.unwrap()[0].message_ref.split_once('|').unwrap().1.to_string();
    assert_eq!(catch_up.body["thread_ts"], card_ts.as_str());
    let metrics = carebot::http::render_metrics(&r.ctx).await.unwrap();
    assert!(metrics.contains("carebot_outbox_failed 0"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stops_within_seconds_while_cards_are_pacing_out_and_keeps_the_rest() {
    let fake = FakeSlack::start().await;
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let mut r = start(slack_settings(&db, dir.path(), &fake)).await;
    let cards: Vec<_> = (0..20).map(routine).collect();
    ingest(&r.ctx, &cards).await.unwrap();
    fake.wait_for("the first cards", |c| posts_to(c, TRIAGE).len() >= 5).await;
    let asked = Instant::now();
    r.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), &mut r.done).await.expect("serve stopped").unwrap().unwrap();
    assert!(asked.elapsed() < Duration::from_secs(3), "stopping took {:?}", asked.elapsed());
    let sent = posts_to(&fake.calls(), TRIAGE).len() as i64;
    let store = carebot::store::Store::connect(&db.url, 2, Duration::from_secs(1)).await.unwrap();
    let (pending, failed) = store.outbox_depth().await.unwrap();
    assert_eq!((pending + sent, failed), (20, 0), "what was not sent is still pending, nothing failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slacks_ssl_check_is_answered() {
    let fake = FakeSlack::start().await;
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let s = slack_settings(&db, dir.path(), &fake);
    let surfaces = chat_surfaces(&s).unwrap();
    let mut ctx = Ctx::new(s, surfaces.chat.clone(), Arc::new(SystemClock) as Arc<dyn Clock>).await.unwrap();
    surfaces.attach(&mut ctx);
    let app = App::from_ctx(ctx).await.unwrap();
    let base = format!("http://{}", app.addr());
    let (_tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    let res = reqwest::Client::new()
        .post(format!("{base}/slack/commands"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("ssl_check=1&token=legacy-verification-token")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    // Anything else unsigned is still refused.
    let res = reqwest::Client::new()
        .post(format!("{base}/slack/commands"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("command=/care&text=queue&user_id=U01SAM00002")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
}
