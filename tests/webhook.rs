//! Webhook intake over real HTTP against the running app: signed bodies are stored once,
//! bad signatures are 401, bad bodies 400 naming the problem, and nothing changes on error.

mod common;

use carebot::clock::{Clock, FixedClock};
use carebot::sources::webhook::{sign, SIGNATURE_HEADER};
use carebot::store::cases::Table;
use carebot::store::Backend;
use carebot::{App, Ctx};
use common::*;
use std::sync::Arc;

const SECRET: &str = "whsec-test-7f3a";

async fn start(b: Backend) -> (String, Arc<Ctx>, tokio::sync::oneshot::Sender<()>, TestDb) {
    let db = TestDb::new(b).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&db, &dir.path().join("inbox"));
    s.secrets.webhook_secrets.insert("contact_form".into(), SECRET.into());
    s.http.body_limit_bytes = 64 * 1024;
    let ctx =
        Ctx::new(s, Arc::new(Recorder::default()), Arc::new(FixedClock::new(t0())) as Arc<dyn Clock>).await.unwrap();
    let app = App::from_ctx(ctx).await.unwrap();
    let (base, ctx) = (format!("http://{}", app.addr()), app.ctx());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    (base, ctx, tx, db)
}

async fn post(base: &str, path: &str, body: &str, signature: Option<String>) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(sig) = signature {
        req = req.header(SIGNATURE_HEADER, sig);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

async fn signed_mentions_are_stored_once_and_bad_input_changes_nothing(b: Backend) {
    let (base, ctx, stop, _db) = start(b).await;
    let path = "/ingest/webhook/contact_form";
    let body = r#"{"mentions":[
        {"external_id":"cf-1","author":"M. Osei","text":"Trying to get an appointment at Eastbrook for two weeks"},
        {"external_id":"cf-2","text":"Thank you Northgate, so kind!","rating":5}]}"#;
    let (status, json) = post(&base, path, body, Some(sign(SECRET.as_bytes(), body.as_bytes()))).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!((json["accepted"].as_i64(), json["opened"].as_i64()), (Some(2), Some(2)));
    let case = ctx.store.case(json["cases"][0].as_i64().unwrap()).await.unwrap().unwrap();
    assert_eq!(
        (case.site.as_deref(), case.categories.clone()),
        (Some("eastbrook"), vec!["appointment_access".to_string()])
    );
    assert_eq!(ctx.store.mention(case.mention_id).await.unwrap().unwrap().source, "contact_form");

    // A replay (the sender retried) is accepted and changes nothing.
    let (status, json) = post(&base, path, body, Some(sign(SECRET.as_bytes(), body.as_bytes()))).await;
    assert_eq!((status, json["duplicates"].as_i64()), (200, Some(2)));

    let before = (ctx.store.count(Table::Mentions).await.unwrap(), ctx.store.count(Table::Outbox).await.unwrap());
    let one = r#"{"external_id":"cf-3","text":"Parking at Riverside"}"#;
    // Wrong secret, a tampered body, no header: 401.
    assert_eq!(post(&base, path, one, Some(sign(b"wrong", one.as_bytes()))).await.0, 401);
    let tampered = one.replace("Parking", "Billing");
    assert_eq!(post(&base, path, &tampered, Some(sign(SECRET.as_bytes(), one.as_bytes()))).await.0, 401);
    let (status, json) = post(&base, path, one, None).await;
    assert_eq!((status, json["error"].as_str()), (401, Some("bad or missing X-Carebot-Signature")));
    // Malformed JSON and a missing field: 400 with the reason.
    let broken = r#"{"external_id":"cf-4","text":"#;
    let (status, json) = post(&base, path, broken, Some(sign(SECRET.as_bytes(), broken.as_bytes()))).await;
    assert_eq!(status, 400);
    assert!(json["error"].as_str().unwrap().starts_with("malformed JSON"), "{json}");
    let partial = r#"[{"external_id":"cf-5","text":"fine"},{"external_id":"cf-6","rating":9,"text":"x"}]"#;
    let (status, json) = post(&base, path, partial, Some(sign(SECRET.as_bytes(), partial.as_bytes()))).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (400, Some("mention 2: field `rating` must be between 0 and 5, got 9"))
    );
    // An unknown source: 404; an oversized body: 413.
    assert_eq!(
        post(&base, "/ingest/webhook/sprinklr", one, Some(sign(SECRET.as_bytes(), one.as_bytes()))).await.0,
        404
    );
    let huge = format!(r#"{{"external_id":"cf-7","text":"{}"}}"#, "a".repeat(70_000));
    assert_eq!(post(&base, path, &huge, Some(sign(SECRET.as_bytes(), huge.as_bytes()))).await.0, 413);

    let after = (ctx.store.count(Table::Mentions).await.unwrap(), ctx.store.count(Table::Outbox).await.unwrap());
    assert_eq!(before, after, "rejected requests stored nothing");
    stop.send(()).unwrap();
}

on_both_backends!(signed_mentions_are_stored_once_and_bad_input_changes_nothing);
