//! A local fake of the Slack Web API for tests: checks the bearer token, records every
//! call with its body, answers like Slack (including `ok:false` errors and 429 with
//! Retry-After when told to), serves `response_url`s, the v2 file upload URL and a Socket
//! Mode websocket. Also signs requests exactly as Slack does.
#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BOT_TOKEN: &str = "xoxb-test-carebot";
pub const APP_TOKEN: &str = "xapp-test-carebot";
pub const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub body: Value,
    pub at: Instant,
}

/// What to answer instead of success, the next time a method is called.
#[derive(Debug, Clone)]
pub enum Scripted {
    RateLimited { retry_after_secs: u64 },
    Error(&'static str),
    ServerError,
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    scripts: HashMap<String, VecDeque<Scripted>>,
    uploads: HashMap<String, Vec<u8>>,
    /// Socket Mode envelopes to send once a client connects.
    envelopes: VecDeque<Value>,
    /// What the Socket Mode client sent back (acknowledgements).
    socket_acks: Vec<Value>,
    ts: u64,
}

#[derive(Clone)]
pub struct FakeSlack {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeSlack {
    pub async fn start() -> FakeSlack {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let fake = FakeSlack { base, inner: Arc::new(Mutex::new(Inner::default())) };
        let app = Router::new()
            .route("/api/{method}", any(api))
            .route("/response/{id}", post(response_url))
            .route("/upload/{id}", post(upload))
            .route("/socket", get(socket))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    /// The Web API base URL to configure as `slack.api_url`.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.base)
    }

    pub fn response_url(&self, id: &str) -> String {
        format!("{}/response/{id}", self.base)
    }

    pub fn script(&self, method: &str, s: Scripted) {
        self.inner.lock().unwrap().scripts.entry(method.into()).or_default().push_back(s);
    }

    pub fn queue_envelope(&self, envelope: Value) {
        self.inner.lock().unwrap().envelopes.push_back(envelope);
    }

    pub fn socket_acks(&self) -> Vec<Value> {
        self.inner.lock().unwrap().socket_acks.clone()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().unwrap().calls.clone()
    }

    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.method == method).collect()
    }

    pub fn upload(&self, id: &str) -> Option<Vec<u8>> {
        self.inner.lock().unwrap().uploads.get(id).cloned()
    }

    /// Waits (up to 10 s) until `pred` holds for the recorded calls.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&[Call]) -> bool) -> Vec<Call> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let calls = self.calls();
            if pred(&calls) {
                return calls;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; calls: {:#?}",
                    calls.iter().map(|c| &c.method).collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn record(&self, method: &str, body: Value) -> Option<Scripted> {
        let mut inner = self.inner.lock().unwrap();
        inner.calls.push(Call { method: method.into(), body, at: Instant::now() });
        inner.scripts.get_mut(method).and_then(|q| q.pop_front())
    }

    fn next_ts(&self) -> String {
        let mut inner = self.inner.lock().unwrap();
        inner.ts += 1;
        format!("1764000000.{:06}", inner.ts)
    }
}

fn parse_body(headers: &HeaderMap, query: Option<String>, body: &Bytes) -> Value {
    let ct = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    if ct.starts_with("application/json") {
        return serde_json::from_slice(body).unwrap_or(Value::Null);
    }
    let form = if body.is_empty() { query.unwrap_or_default() } else { String::from_utf8_lossy(body).into_owned() };
    let pairs: HashMap<String, String> = serde_urlencoded::from_str(&form).unwrap_or_default();
    serde_json::to_value(pairs).unwrap()
}

async fn api(
    State(fake): State<FakeSlack>,
    Path(method): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    let expected = if method == "apps.connections.open" { APP_TOKEN } else { BOT_TOKEN };
    let body = parse_body(&headers, query, &body);
    if auth != format!("Bearer {expected}") {
        fake.record(&format!("{method} (bad token)"), body);
        return Json(json!({"ok": false, "error": "invalid_auth"})).into_response();
    }
    match fake.record(&method, body.clone()) {
        Some(Scripted::RateLimited { retry_after_secs }) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", retry_after_secs.to_string())],
                Json(json!({"ok": false, "error": "ratelimited"})),
            )
                .into_response()
        }
        Some(Scripted::Error(code)) => return Json(json!({"ok": false, "error": code})).into_response(),
        Some(Scripted::ServerError) => return (StatusCode::SERVICE_UNAVAILABLE, "upstream trouble").into_response(),
        None => {}
    }
    if let Err(why) = check_layout(&method, &body) {
        fake.record(&format!("{method} (invalid: {why})"), json!({}));
        return Json(json!({"ok": false, "error": "invalid_blocks", "errors": [why]})).into_response();
    }
    let ok = match method.as_str() {
        "chat.postMessage" => {
            let ts = fake.next_ts();
            json!({"ok": true, "channel": body["channel"], "ts": ts,
                   "message": {"type": "message", "ts": ts, "text": body["text"], "bot_id": "B0CAREBOT"}})
        }
        "chat.update" => json!({"ok": true, "channel": body["channel"], "ts": body["ts"],
                                "message": {"text": body["text"], "bot_id": "B0CAREBOT"}}),
        "conversations.open" => {
            let user =
                body["users"].as_str().map(str::to_string).or_else(|| body["users"][0].as_str().map(str::to_string));
            json!({"ok": true, "channel": {"id": format!("D{}", user.unwrap_or_default())}})
        }
        "chat.getPermalink" => json!({"ok": true, "channel": body["channel"],
            "permalink": format!("https://example-health.slack.com/archives/{}/p{}",
                body["channel"].as_str().unwrap_or(""), body["message_ts"].as_str().unwrap_or("").replace('.', ""))}),
        "views.update" | "views.publish" => {
            let mut view = body["view"].clone();
            view["id"] = body["view_id"].clone();
            json!({"ok": true, "view": view})
        }
        "views.open" => {
            let mut view = body["view"].clone();
            view["id"] = json!("V0MODAL");
            view["team_id"] = json!("T0EXAMPLE");
            json!({"ok": true, "view": view})
        }
        "files.getUploadURLExternal" => {
            let id = format!("F{}", fake.next_ts().replace('.', ""));
            json!({"ok": true, "upload_url": format!("{}/upload/{id}", fake.base), "file_id": id})
        }
        "files.completeUploadExternal" => json!({"ok": true, "files": [{"id": body["files"][0]["id"]}]}),
        "auth.test" => json!({"ok": true, "user_id": "U0CAREBOT", "team_id": "T0EXAMPLE", "team": "Example Health",
                              "url": "https://example-health.slack.com/"}),
        "conversations.info" => json!({"ok": true, "channel": {"id": body["channel"], "created": 1700000000,
                                       "is_channel": true, "is_member": body["channel"] != "C01SHOUTOUT"}}),
        "apps.connections.open" => {
            json!({"ok": true, "url": format!("{}/socket", fake.base.replace("http://", "ws://"))})
        }
        _ => json!({"ok": false, "error": "unknown_method"}),
    };
    Json(ok).into_response()
}

async fn response_url(State(fake): State<FakeSlack>, Path(id): Path<String>, body: Bytes) -> Response {
    let mut v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    v["_id"] = json!(id);
    fake.record("response_url", v);
    (StatusCode::OK, "ok").into_response()
}

async fn upload(State(fake): State<FakeSlack>, Path(id): Path<String>, body: Bytes) -> Response {
    fake.record("upload", json!({"id": id, "len": body.len()}));
    fake.inner.lock().unwrap().uploads.insert(id, body.to_vec());
    (StatusCode::OK, format!("OK - {}", body.len())).into_response()
}

async fn socket(State(fake): State<FakeSlack>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |s| serve_socket(fake, s))
}

async fn serve_socket(fake: FakeSlack, mut ws: WebSocket) {
    let hello = json!({"type": "hello", "num_connections": 1,
                       "connection_info": {"app_id": "A0CAREBOT"}, "debug_info": {"host": "fake"}});
    if ws.send(Message::Text(hello.to_string().into())).await.is_err() {
        return;
    }
    loop {
        let next = fake.inner.lock().unwrap().envelopes.pop_front();
        if let Some(env) = next {
            if ws.send(Message::Text(env.to_string().into())).await.is_err() {
                return;
            }
        }
        match tokio::time::timeout(Duration::from_millis(50), ws.recv()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                if let Ok(v) = serde_json::from_str::<Value>(&t) {
                    fake.inner.lock().unwrap().socket_acks.push(v);
                }
            }
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => return,
            _ => {}
        }
    }
}

fn chars(v: &Value) -> usize {
    v.as_str().map(|s| s.chars().count()).unwrap_or(0)
}

/// The Block Kit limits Slack enforces on messages and views (it answers `invalid_blocks`):
/// 50 blocks per message and 100 per view, 25 elements per actions block, section text
/// 3000, context elements 10, button values 2000, modal titles and button labels 24, input
/// labels 2000, text inputs' initial value within their `max_length` (≤ 3000), option
/// labels 75 and 100 options per select.
fn check_layout(method: &str, body: &Value) -> Result<(), String> {
    let (blocks, max) = match method {
        "chat.postMessage" | "chat.update" => (&body["blocks"], 50),
        "views.open" | "views.update" | "views.publish" => (&body["view"]["blocks"], 100),
        _ => return Ok(()),
    };
    if method.starts_with("views.") {
        let view = &body["view"];
        if chars(&view["title"]["text"]) > 24 || chars(&view["submit"]["text"]) > 24 {
            return Err("view title or submit label over 24 characters".into());
        }
        if chars(&view["private_metadata"]) > 3000 {
            return Err("private_metadata over 3000 characters".into());
        }
    }
    let Some(blocks) = blocks.as_array() else { return Ok(()) };
    if blocks.len() > max {
        return Err(format!("{} blocks (max {max})", blocks.len()));
    }
    for b in blocks {
        if chars(&b["text"]["text"]) > 3000 {
            return Err("section text over 3000 characters".into());
        }
        match b["type"].as_str() {
            Some("actions") => {
                let els = b["elements"].as_array().cloned().unwrap_or_default();
                if els.len() > 25 {
                    return Err("actions block with more than 25 elements".into());
                }
                for e in els {
                    if chars(&e["text"]["text"]) > 75 || chars(&e["value"]) > 2000 {
                        return Err("button label over 75 or value over 2000 characters".into());
                    }
                }
            }
            Some("context") if b["elements"].as_array().is_some_and(|e| e.len() > 10) => {
                return Err("context block with more than 10 elements".into());
            }
            Some("input") => {
                if !method.starts_with("views.") {
                    return Err("input blocks belong in views".into());
                }
                if chars(&b["label"]["text"]) > 2000 {
                    return Err("input label over 2000 characters".into());
                }
                let el = &b["element"];
                let max_len = el["max_length"].as_u64().unwrap_or(3000).min(3000) as usize;
                if chars(&el["initial_value"]) > max_len {
                    return Err("initial_value longer than max_length".into());
                }
                if let Some(opts) = el["options"].as_array() {
                    if opts.len() > 100 || opts.iter().any(|o| chars(&o["text"]["text"]) > 75) {
                        return Err("select with over 100 options or an option label over 75".into());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The `X-Slack-Signature` Slack would send for `body` at `timestamp`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    let bytes = mac.finalize().into_bytes();
    format!("v0={}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Posts a Slack-signed form body to carebot; returns status and body text.
pub async fn post_signed(url: &str, body: &str, timestamp: i64, secret: &str) -> (u16, String) {
    let res = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", timestamp.to_string())
        .header("x-slack-signature", signature(secret, timestamp, body))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// A `block_actions` payload for a card button, as Slack sends it (form-encoded).
pub fn click_body(fake: &FakeSlack, user: &str, action: &str, case_id: i64, message_ts: &str) -> String {
    click_value_body(fake, user, action, &format!("{action}:{case_id}"), message_ts)
}

/// A `block_actions` payload for a card button with its exact `value`.
pub fn click_value_body(fake: &FakeSlack, user: &str, action: &str, value: &str, message_ts: &str) -> String {
    let case_id = value.split(':').nth(1).unwrap_or_default();
    let payload = json!({
        "type": "block_actions",
        "team": {"id": "T0EXAMPLE", "domain": "example-health"},
        "user": {"id": user, "username": "someone", "team_id": "T0EXAMPLE"},
        "api_app_id": "A0CAREBOT",
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": "C01PXTRIAGE", "is_ephemeral": false},
        "trigger_id": format!("trig-{user}-{action}-{case_id}"),
        "channel": {"id": "C01PXTRIAGE", "name": "px-triage"},
        "response_url": fake.response_url(&format!("{user}-{action}-{case_id}")),
        "actions": [{
            "type": "button", "action_id": format!("carebot_{action}"), "block_id": format!("case_{case_id}"),
            "text": {"type": "plain_text", "text": action, "emoji": true},
            "value": value, "action_ts": "1764000001.000200"
        }]
    });
    serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap()
}

/// A `view_submission` payload for a carebot modal.
pub fn submission_body(user: &str, metadata: &str, choice: &str, note: Option<&str>) -> String {
    view_body(
        user,
        metadata,
        json!({
            "choice": {"choice": {"type": "static_select",
                "selected_option": {"text": {"type": "plain_text", "text": choice}, "value": choice}}},
            "note": {"note": {"type": "plain_text_input", "value": note}}
        }),
    )
}

/// A `view_submission` payload with the given state values.
pub fn view_body(user: &str, metadata: &str, values: Value) -> String {
    let payload = json!({
        "type": "view_submission",
        "team": {"id": "T0EXAMPLE", "domain": "example-health"},
        "user": {"id": user, "username": "someone", "team_id": "T0EXAMPLE"},
        "api_app_id": "A0CAREBOT",
        "trigger_id": "trig-submit",
        "view": {
            "id": "V0MODAL", "team_id": "T0EXAMPLE", "type": "modal",
            "title": {"type": "plain_text", "text": "carebot"},
            "blocks": [],
            "private_metadata": metadata,
            "callback_id": "carebot_form",
            "state": {"values": values},
            "hash": "1764000000.abc"
        }
    });
    serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap()
}

/// A `block_actions` payload from a select inside an open modal (the reply form's
/// template picker).
pub fn modal_select_body(user: &str, metadata: &str, value: &str) -> String {
    let payload = json!({
        "type": "block_actions",
        "team": {"id": "T0EXAMPLE", "domain": "example-health"},
        "user": {"id": user, "username": "someone", "team_id": "T0EXAMPLE"},
        "api_app_id": "A0CAREBOT",
        "container": {"type": "view", "view_id": "V0MODAL"},
        "trigger_id": "trig-select",
        "view": {
            "id": "V0MODAL", "team_id": "T0EXAMPLE", "type": "modal",
            "title": {"type": "plain_text", "text": "carebot"},
            "blocks": [], "private_metadata": metadata, "callback_id": "carebot_form",
            "state": {"values": {}}, "hash": "1764000000.abc"
        },
        "actions": [{
            "type": "static_select", "action_id": "choice", "block_id": "choice",
            "selected_option": {"text": {"type": "plain_text", "text": value}, "value": value},
            "action_ts": "1764000001.000300"
        }]
    });
    serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap()
}

/// A slash command body, as Slack sends it.
pub fn command_body(fake: &FakeSlack, user: &str, text: &str) -> String {
    serde_urlencoded::to_string([
        ("token", "legacy-verification-token"),
        ("team_id", "T0EXAMPLE"),
        ("team_domain", "example-health"),
        ("channel_id", "C01PXTRIAGE"),
        ("channel_name", "px-triage"),
        ("user_id", user),
        ("user_name", "someone"),
        ("command", "/care"),
        ("text", text),
        ("api_app_id", "A0CAREBOT"),
        ("response_url", &fake.response_url("cmd")),
        ("trigger_id", "trig-cmd"),
    ])
    .unwrap()
}
