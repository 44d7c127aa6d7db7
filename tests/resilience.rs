//! carebot under a database outage, hostile connections and odd input, driven over real
//! HTTP against the running app: it answers at once while PostgreSQL is away, changes
//! nothing it did not acknowledge, resumes without a restart, closes idle sockets, and
//! refuses input that would poison the store or the cards.

mod common;
#[path = "fakes/slack.rs"]
mod fake_slack;
#[path = "fakes/pg_proxy.rs"]
mod pg_proxy;

use carebot::app::chat_surfaces;
use carebot::clock::{Clock, FixedClock, SystemClock};
use carebot::config::SurfaceKind;
use carebot::sources::webhook::{sign, SIGNATURE_HEADER};
use carebot::store::cases::Table;
use carebot::store::Backend;
use carebot::{App, Ctx, Settings};
use common::*;
use fake_slack::*;
use pg_proxy::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

const SECRET: &str = "whsec-resilience-1";
const SAM: &str = "U01SAM00002";

struct Running {
    base: String,
    ctx: Arc<Ctx>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn run(ctx: Ctx) -> Running {
    let app = App::from_ctx(ctx).await.unwrap();
    let (base, ctx) = (format!("http://{}", app.addr()), app.ctx());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    Running { base, ctx, _stop: tx }
}

fn webhook_settings(s: &mut Settings) {
    s.secrets.webhook_secrets.insert("contact_form".into(), SECRET.into());
}

async fn post_webhook(base: &str, source: &str, body: &str) -> (u16, Option<String>, serde_json::Value) {
    let res = reqwest::Client::new()
        .post(format!("{base}/ingest/webhook/{source}"))
        .header(SIGNATURE_HEADER, sign(SECRET.as_bytes(), body.as_bytes()))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let retry = res.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
    (status, retry, res.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_is_answered_at_once_and_work_resumes_when_it_returns() {
    let db = TestDb::new(Backend::Postgres).await;
    let proxy = PgProxy::start(upstream_of(&db.url)).await;
    let fake = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&db, &dir.path().join("inbox"));
    s.secrets.database_url = Some(proxy.url_through(&db.url));
    webhook_settings(&mut s);
    s.chat.surface = SurfaceKind::Slack;
    s.slack.api_url = fake.api_url().as_str().into();
    s.secrets.slack_bot_token = Some(BOT_TOKEN.into());
    s.secrets.slack_signing_secret = Some(SIGNING_SECRET.into());
    let surfaces = chat_surfaces(&s).unwrap();
    let mut ctx = Ctx::new(s, surfaces.chat.clone(), Arc::new(SystemClock) as Arc<dyn Clock>).await.unwrap();
    surfaces.attach(&mut ctx);
    let r = run(ctx).await;

    let first = r#"{"external_id":"cf-1","text":"Waited three hours at Riverside ER"}"#;
    let (status, _, json) = post_webhook(&r.base, "contact_form", first).await;
    assert_eq!(status, 200, "{json}");
    let case_id = json["cases"][0].as_i64().unwrap();

    proxy.down();

    // The webhook says "retry later" at once, with Retry-After.
    let second = r#"{"external_id":"cf-2","text":"Billing sent me to collections"}"#;
    let t = Instant::now();
    let (status, retry, json) = post_webhook(&r.base, "contact_form", second).await;
    let waited = t.elapsed();
    assert_eq!(status, 503, "{json}");
    assert!(retry.is_some(), "503 carries Retry-After");
    assert!(json["error"].as_str().unwrap().contains("can't reach its database"), "{json}");
    assert!(waited < Duration::from_secs(2), "webhook answered after {waited:?}");

    // Readiness says so within a second.
    let t = Instant::now();
    let ready = reqwest::get(format!("{}/readyz", r.base)).await.unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    assert!(t.elapsed() < Duration::from_secs(1), "/readyz took {:?}", t.elapsed());

    // A Slack claim is told at once that nothing changed.
    let t = Instant::now();
    let body = command_body(&fake, SAM, &format!("claim {case_id}"));
    let (status, answer) = post_signed(&format!("{}/slack/commands", r.base), &body, now(), SIGNING_SECRET).await;
    assert_eq!(status, 200);
    assert!(answer.contains("can't reach its database; nothing was changed"), "{answer}");
    assert!(t.elapsed() < Duration::from_secs(3), "/care claim answered after {:?}", t.elapsed());

    // The database returns: readiness recovers without a restart …
    proxy.up().await;
    let mut ready = false;
    for _ in 0..100 {
        if reqwest::get(format!("{}/readyz", r.base)).await.unwrap().status().is_success() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "/readyz recovers once the database is back");
    // … the refused claim was not applied behind the person's back …
    tokio::time::sleep(Duration::from_millis(300)).await;
    let case = r.ctx.store.case(case_id).await.unwrap().unwrap();
    assert_eq!((case.state.as_str(), case.owner.as_deref()), ("open", None));
    // … the refused mention was not stored, and the sender's retry is.
    assert_eq!(r.ctx.store.count(Table::Mentions).await.unwrap(), 1);
    let (status, _, json) = post_webhook(&r.base, "contact_form", second).await;
    assert_eq!((status, json["opened"].as_i64()), (200, Some(1)), "{json}");
    let body = command_body(&fake, SAM, &format!("claim {case_id}"));
    let (_, answer) = post_signed(&format!("{}/slack/commands", r.base), &body, now(), SIGNING_SECRET).await;
    assert!(answer.contains("claimed by"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_up_error_names_the_unreachable_database_without_its_password() {
    // A port nothing listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://carebot:hunter2secret@127.0.0.1:{port}/carebot");
    let err = carebot::store::Store::connect(&url, 2, Duration::from_millis(500)).await.unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains(&format!("127.0.0.1:{port}")) && msg.contains("carebot"), "{msg}");
    assert!(msg.to_lowercase().contains("refused"), "the cause is named: {msg}");
    assert!(!msg.contains("hunter2secret"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_surplus_connections_are_closed_and_healthz_stays_reachable() {
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&db, &dir.path().join("inbox"));
    s.http.max_connections = 40;
    s.http.idle_timeout = "1s".parse().unwrap();
    s.http.header_read_timeout = "1s".parse().unwrap();
    let ctx =
        Ctx::new(s, Arc::new(Recorder::default()), Arc::new(FixedClock::new(t0())) as Arc<dyn Clock>).await.unwrap();
    let r = run(ctx).await;
    let addr = r.base.trim_start_matches("http://").to_string();

    // 120 sockets that connect and say nothing: three times the cap.
    let mut idle = Vec::new();
    for _ in 0..120 {
        idle.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    // Every one of them is closed by the server (over the cap at once, the rest when idle).
    let t = Instant::now();
    for mut sock in idle {
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(10), sock.read(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "an idle connection was left open");
    }
    assert!(t.elapsed() < Duration::from_secs(10));
    // The listener still serves.
    let res = reqwest::get(format!("{}/healthz", r.base)).await.unwrap();
    assert_eq!(res.text().await.unwrap(), "ok\n");
}

async fn control_characters_a_foreign_source_and_odd_ids_and_links(b: Backend) {
    let db = TestDb::new(b).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&db, &dir.path().join("inbox"));
    webhook_settings(&mut s);
    let ctx =
        Ctx::new(s, Arc::new(Recorder::default()), Arc::new(FixedClock::new(t0())) as Arc<dyn Clock>).await.unwrap();
    let r = run(ctx).await;
    let count = || async { r.ctx.store.count(Table::Mentions).await.unwrap() };

    for (body, field) in [
        (r#"{"external_id":"n-1","text":"before\u0000after"}"#, "`text`"),
        (r#"{"external_id":"n-2\u0000","text":"fine"}"#, "`external_id`"),
        (r#"{"external_id":"n-3","author":"Ann\u001b[31m","text":"fine"}"#, "`author`"),
    ] {
        let (status, _, json) = post_webhook(&r.base, "contact_form", body).await;
        let error = json["error"].as_str().unwrap_or_default();
        assert_eq!(status, 400, "{body}: {json}");
        assert!(error.contains(field) && error.contains("control character"), "{error}");
    }
    // The path's source is the source.
    let (status, _, json) = post_webhook(&r.base, "contact_form", r#"{"source":"google","id":"s-1","text":"x"}"#).await;
    assert_eq!(status, 400);
    assert!(json["error"].as_str().unwrap().contains("\"google\""), "{json}");
    let long = format!(r#"{{"source":"{}","id":"s-2","text":"x"}}"#, "a".repeat(8000));
    assert_eq!(post_webhook(&r.base, "contact_form", &long).await.0, 400);
    assert_eq!(count().await, 0, "refused bodies stored nothing");

    // Numeric ids (Zapier, Make) and links without a scheme are taken.
    let ok = r#"[{"source":"contact_form","external_id":48213,"text":"Parking at Riverside","url":"www.yelp.com/biz/riverside-medical"},
                 {"id":7,"text":"Eastbrook front desk","url":"javascript:alert(1)"}]"#;
    let (status, _, json) = post_webhook(&r.base, "contact_form", ok).await;
    assert_eq!(status, 200, "{json}");
    let first = r.ctx.store.case(json["cases"][0].as_i64().unwrap()).await.unwrap().unwrap();
    let m = r.ctx.store.mention(first.mention_id).await.unwrap().unwrap();
    assert_eq!(
        (m.external_id.as_str(), m.url.as_deref()),
        ("48213", Some("https://www.yelp.com/biz/riverside-medical"))
    );
    let second = json["cases"][1].as_i64().unwrap();
    let m = r.ctx.store.mention(r.ctx.store.case(second).await.unwrap().unwrap().mention_id).await.unwrap().unwrap();
    assert_eq!((m.external_id.as_str(), m.url.as_deref()), ("7", None));
    let events = r.ctx.store.events(second).await.unwrap();
    let notes = events[0].detail["notes"].to_string();
    assert!(notes.contains("link dropped"), "the dropped link is explained on the case: {notes}");
}

async fn a_sender_over_its_rate_gets_429_with_retry_after(b: Backend) {
    let db = TestDb::new(b).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&db, &dir.path().join("inbox"));
    webhook_settings(&mut s);
    s.http.webhook_requests_per_second = 1.try_into().unwrap();
    let ctx =
        Ctx::new(s, Arc::new(Recorder::default()), Arc::new(FixedClock::new(t0())) as Arc<dyn Clock>).await.unwrap();
    let r = run(ctx).await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let body = format!(r#"{{"id":"r-{i}","text":"Parking at Riverside, take {i}"}}"#);
        let (status, retry, _) = post_webhook(&r.base, "contact_form", &body).await;
        if status == 429 {
            assert!(retry.is_some());
        }
        statuses.push(status);
    }
    assert_eq!(&statuses[..4], &[200, 200, 200, 200], "a burst of four is allowed: {statuses:?}");
    assert!(statuses[4..].contains(&429), "{statuses:?}");
    let stored = r.ctx.store.count(Table::Mentions).await.unwrap();
    assert_eq!(stored as usize, statuses.iter().filter(|s| **s == 200).count(), "refused requests stored nothing");
}

on_both_backends!(
    control_characters_a_foreign_source_and_odd_ids_and_links,
    a_sender_over_its_rate_gets_429_with_retry_after
);

/// A caller that gives up while its transaction is starting (a request timeout, a
/// `select!`) must not leave the connection inside an open transaction: the next writer
/// on that connection would run inside it, Postgres would warn "there is already a
/// transaction in progress", and a plain write there would never be committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_abandoned_while_starting_leaks_nothing_into_the_next_write() {
    use sqlx::{Connection, Row};
    let db = TestDb::new(Backend::Postgres).await;
    let store = carebot::store::Store::connect(&db.url, 1, Duration::from_secs(5)).await.unwrap();
    store.migrate().await.unwrap();
    let mut other = sqlx::PgConnection::connect(&db.url).await.unwrap();
    for i in 0..40i64 {
        // Abandoned at once, and at a few points further along.
        let _ = tokio::time::timeout(Duration::from_micros((i % 4) as u64 * 100), store.begin()).await;
        let person = format!("p{i}");
        store.set_oncall_override("px-oncall", &person, 2_000_000_000_000, "dena", 1).await.unwrap();
        // Seen from another connection: the write was committed.
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM oncall_overrides WHERE person = $1")
            .bind(&person)
            .fetch_one(&mut other)
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 1, "write {i} after an abandoned begin was not committed");
    }
    store.close().await;
}
