//! RSS/Atom polling against a local fake feed server that honours conditional GET and
//! records what it received: entries become mentions once, alert redirects are unwrapped,
//! HTML is stripped, a restart resumes from the stored ETag, and a failing feed loses nothing.

mod common;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use carebot::clock::{Clock, FixedClock};
use carebot::config::FeedSettings;
use carebot::sources::rss::poll_all;
use carebot::store::cases::Table;
use carebot::store::Backend;
use carebot::Ctx;
use chrono::Duration;
use common::*;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Fake {
    /// (etag, body) served now; `None` answers 500.
    feed: Option<(String, String)>,
    /// The If-None-Match header of every request.
    seen: Vec<Option<String>>,
}

type Shared = Arc<Mutex<Fake>>;

async fn serve_feed(State(fake): State<Shared>, headers: HeaderMap) -> impl IntoResponse {
    let mut f = fake.lock().unwrap();
    let inm = headers.get("if-none-match").and_then(|v| v.to_str().ok()).map(str::to_string);
    f.seen.push(inm.clone());
    match &f.feed {
        None => (StatusCode::INTERNAL_SERVER_ERROR, HeaderMap::new(), String::new()),
        Some((etag, _)) if inm.as_deref() == Some(etag.as_str()) => {
            (StatusCode::NOT_MODIFIED, HeaderMap::new(), String::new())
        }
        Some((etag, body)) => {
            let mut h = HeaderMap::new();
            h.insert("etag", etag.parse().unwrap());
            h.insert("content-type", "application/atom+xml".parse().unwrap());
            (StatusCode::OK, h, body.clone())
        }
    }
}

fn entry(id: &str, title: &str, target: &str, content: &str) -> String {
    format!(
        r#"<entry><id>tag:google.com,2013:googlealerts/feed:{id}</id><title type="html">{title}</title>
<link href="https://www.google.com/url?rct=j&amp;sa=t&amp;url={target}&amp;ct=ga&amp;cd=CAIyGg&amp;usg=AOvVaw"/>
<published>2026-11-23T13:00:00Z</published><updated>2026-11-23T13:00:00Z</updated>
<content type="html">{content}</content><author><name></name></author></entry>"#
    )
}

fn atom(entries: &[String]) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">
<id>tag:google.com,2005:reader/user/1/state/com.google/alerts/2</id><title>Google Alert - Riverside Medical Center</title>
<link href="https://www.google.com/alerts/feeds/1/2" rel="self"/><updated>2026-11-23T14:00:00Z</updated>{}</feed>"#,
        entries.join("")
    )
}

async fn feeds_are_polled_conditionally_resume_after_restart_and_lose_nothing_on_errors(b: Backend) {
    let fake: Shared = Arc::new(Mutex::new(Fake::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/alerts/feeds/1/2", axum::routing::get(serve_feed)).with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let e1 = entry(
        "111",
        "Patients report long &lt;b&gt;waits&lt;/b&gt; at &lt;b&gt;Riverside Medical Center&lt;/b&gt; ER",
        "https://news.example.com/riverside-waits",
        "Families say they &lt;b&gt;waited&lt;/b&gt; five hours.",
    );
    let e2 = entry(
        "222",
        "Riverside hospital opens new parking garage",
        "https://news.example.com/garage",
        "Parking fees start at $5.",
    );
    fake.lock().unwrap().feed = Some(("\"v1\"".into(), atom(&[e1.clone(), e2.clone()])));

    let db = TestDb::new(b).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&db, &dir.path().join("inbox"));
    s.sources.feeds.push(FeedSettings {
        name: "alerts-riverside".into(),
        url: format!("http://{addr}/alerts/feeds/1/2").as_str().into(),
        source: "google_alerts".into(),
        every: "5m".parse().unwrap(),
    });
    let clock = Arc::new(FixedClock::new(t0()));
    let ctx = Ctx::new(s.clone(), Arc::new(Recorder::default()), clock.clone() as Arc<dyn Clock>).await.unwrap();

    assert_eq!(poll_all(&ctx, t0()).await.unwrap(), "alerts-riverside: 2 new");
    let case = ctx.store.case(1).await.unwrap().unwrap();
    let m = ctx.store.mention(case.mention_id).await.unwrap().unwrap();
    assert_eq!(m.url.as_deref(), Some("https://news.example.com/riverside-waits"), "redirect unwrapped");
    assert_eq!(
        m.text.as_deref(),
        Some("Patients report long waits at Riverside Medical Center ER — Families say they waited five hours.")
    );
    assert_eq!((m.source.as_str(), case.site.as_deref()), ("google_alerts", Some("riverside")));

    // Within the feed's interval: not polled. After it: a conditional GET answered 304.
    assert_eq!(poll_all(&ctx, t0() + Duration::minutes(4)).await.unwrap(), "no feed due");
    assert_eq!(poll_all(&ctx, t0() + Duration::minutes(5)).await.unwrap(), "alerts-riverside: 0 new");
    assert_eq!(fake.lock().unwrap().seen, vec![None, Some("\"v1\"".to_string())]);

    // The feed breaks: the poll fails, the error is recorded, nothing is lost or skipped.
    fake.lock().unwrap().feed = None;
    let err = poll_all(&ctx, t0() + Duration::minutes(10)).await.unwrap_err();
    assert!(err.to_string().contains("HTTP 500"), "{err}");
    let health = ctx.store.source_cursor("alerts-riverside").await.unwrap().unwrap();
    assert!(health.last_error.unwrap().contains("HTTP 500"));
    let metrics = carebot::http::render_metrics(&ctx).await.unwrap();
    assert!(metrics.contains("carebot_source_failing{source=\"alerts-riverside\"} 1"), "{metrics}");

    // A restart: a new process resumes with the stored ETag, and picks up only the new entry.
    let e3 = entry(
        "333",
        "Riverside ER staff praised after storm",
        "https://news.example.com/praise",
        "Thank you to the &amp; team.",
    );
    fake.lock().unwrap().feed = Some(("\"v2\"".into(), atom(&[e3, e1, e2])));
    drop(ctx);
    let ctx = Ctx::new(s, Arc::new(Recorder::default()), clock as Arc<dyn Clock>).await.unwrap();
    assert_eq!(poll_all(&ctx, t0() + Duration::minutes(15)).await.unwrap(), "alerts-riverside: 1 new");
    assert_eq!(fake.lock().unwrap().seen.last().unwrap().as_deref(), Some("\"v1\""));
    assert_eq!(ctx.store.count(Table::Mentions).await.unwrap(), 3);
    let health = ctx.store.source_cursor("alerts-riverside").await.unwrap().unwrap();
    assert!(health.last_error.is_none());
    assert!(carebot::ops::sources_table(&ctx).await.unwrap().contains("alerts-riverside"));
}

on_both_backends!(feeds_are_polled_conditionally_resume_after_restart_and_lose_nothing_on_errors);
