//! A local fake of Discord's REST API (v10) for tests: checks the `Bot` token, records
//! every call, answers like Discord (message objects, threads, DM channels, 429 with
//! `retry_after` when told to). Also builds and Ed25519-signs interactions as Discord does.
#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{json, Value};
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BOT_TOKEN: &str = "discord-bot-token-test";
pub const APP_ID: &str = "1000000000000000001";
pub const GUILD: &str = "900000000000000001";

#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub body: Value,
    pub at: Instant,
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    rate_limit_next_post: VecDeque<f64>,
    threads: HashSet<String>,
    seq: u64,
}

#[derive(Clone)]
pub struct FakeDiscord {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeDiscord {
    pub async fn start() -> FakeDiscord {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let fake = FakeDiscord { base, inner: Arc::new(Mutex::new(Inner::default())) };
        let app = Router::new().route("/api/v10/{*path}", any(api)).with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    /// The next message POST answers 429 with this `retry_after` (seconds).
    pub fn rate_limit_next_post(&self, secs: f64) {
        self.inner.lock().unwrap().rate_limit_next_post.push_back(secs);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().unwrap().calls.clone()
    }

    pub async fn wait_for(&self, what: &str, pred: impl Fn(&[Call]) -> bool) -> Vec<Call> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let calls = self.calls();
            if pred(&calls) {
                return calls;
            }
            if Instant::now() > deadline {
                let seen: Vec<String> = calls.iter().map(|c| format!("{} {}", c.method, c.path)).collect();
                panic!("timed out waiting for {what}; calls: {seen:#?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn error(status: StatusCode, code: i64, message: &str) -> Response {
    (status, Json(json!({"code": code, "message": message}))).into_response()
}

async fn api(
    State(fake): State<FakeDiscord>,
    method: Method,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/{path}");
    let ct = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    let parsed = if ct.starts_with("multipart/") {
        json!({"multipart": true, "len": body.len(), "has_png": body.windows(4).any(|w| w == b"\x89PNG")})
    } else {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    };
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut inner = fake.inner.lock().unwrap();
    inner.calls.push(Call { method: method.to_string(), path: path.clone(), body: parsed.clone(), at: Instant::now() });
    if auth != format!("Bot {BOT_TOKEN}") {
        return error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized");
    }
    if matches!(method.as_str(), "POST" | "PATCH") && path.contains("/messages") && !ct.starts_with("multipart/") {
        if let Err(why) = check_message(&parsed) {
            return error(StatusCode::BAD_REQUEST, 50035, &format!("Invalid Form Body: {why}"));
        }
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    inner.seq += 1;
    let seq = inner.seq;
    match (method.as_str(), parts.as_slice()) {
        ("POST", ["channels", channel, "messages"]) => {
            if let Some(secs) = inner.rate_limit_next_post.pop_front() {
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", format!("{}", secs.ceil())), ("x-ratelimit-scope", "user".into())],
                    Json(json!({"message": "You are being rate limited.", "retry_after": secs, "global": false})),
                )
                    .into_response();
            }
            // Messages to a thread need the thread (its id is the card's message id).
            let is_known = channel.starts_with("50") || channel.starts_with("DM") || inner.threads.contains(*channel);
            if !is_known {
                return error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
            }
            let id = format!("7{seq:017}");
            Json(json!({"id": id, "channel_id": channel, "type": 0, "content": parsed["content"]})).into_response()
        }
        ("GET", ["channels", channel]) => {
            Json(json!({"id": channel, "type": 0, "guild_id": GUILD, "name": "px-triage"})).into_response()
        }
        ("PATCH", ["channels", channel, "messages", id]) => {
            Json(json!({"id": id, "channel_id": channel, "type": 0})).into_response()
        }
        ("POST", ["channels", _, "messages", id, "threads"]) => {
            inner.threads.insert(id.to_string());
            Json(json!({"id": id, "type": 11, "name": parsed["name"]})).into_response()
        }
        ("POST", ["users", "@me", "channels"]) => {
            Json(json!({"id": format!("DM{}", parsed["recipient_id"].as_str().unwrap_or("")), "type": 1}))
                .into_response()
        }
        ("PUT", ["applications", _, "guilds", _, "commands"]) | ("PUT", ["applications", _, "commands"]) => {
            let mut cmds = parsed.clone();
            for c in cmds.as_array_mut().into_iter().flatten() {
                c["id"] = json!("1200000000000000001");
                c["application_id"] = json!(APP_ID);
            }
            Json(cmds).into_response()
        }
        _ => error(StatusCode::NOT_FOUND, 0, "404: Not Found"),
    }
}

/// The application's key pair; tests configure the public half as DISCORD_PUBLIC_KEY.
pub fn key() -> SigningKey {
    SigningKey::from_bytes(&[42u8; 32])
}

pub fn public_key_hex() -> String {
    key().verifying_key().to_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sign(timestamp: &str, body: &str) -> String {
    let sig = key().sign(format!("{timestamp}{body}").as_bytes());
    sig.to_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn user(id: &str) -> Value {
    json!({"id": id, "username": format!("user{}", &id[id.len() - 3..]), "discriminator": "0",
           "global_name": null, "avatar": null, "public_flags": 0})
}

fn envelope(kind: u8, user_id: &str, data: Value) -> Value {
    json!({
        "id": "1100000000000000001",
        "application_id": APP_ID,
        "type": kind,
        "data": data,
        "guild_id": GUILD,
        "channel_id": "501000000000000001",
        "member": {"user": user(user_id), "roles": [], "joined_at": "2025-01-01T00:00:00.000000+00:00",
                   "deaf": false, "mute": false, "flags": 0, "pending": false, "permissions": "2248473465835073",
                   "nick": null, "avatar": null, "premium_since": null, "communication_disabled_until": null},
        "token": "interaction-token",
        "version": 1,
        "app_permissions": "2248473465835073",
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": GUILD},
        "context": 0,
        "attachment_size_limit": 26214400
    })
}

/// A button or select click on a message, as Discord posts it.
pub fn component(user_id: &str, custom_id: &str, values: Option<Vec<&str>>, message_id: &str) -> Value {
    let data = match values {
        Some(v) => json!({"custom_id": custom_id, "component_type": 3, "values": v}),
        None => json!({"custom_id": custom_id, "component_type": 2}),
    };
    let mut i = envelope(3, user_id, data);
    i["message"] = json!({
        "id": message_id, "channel_id": "501000000000000001", "author": user(APP_ID),
        "content": "", "timestamp": "2026-11-22T10:00:00.000000+00:00", "edited_timestamp": null,
        "tts": false, "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [],
        "embeds": [], "pinned": false, "type": 0, "flags": 0, "components": []
    });
    i
}

/// A `/care SUB …` command with options `(name, type, value)`.
pub fn command(user_id: &str, sub: &str, options: Vec<(&str, u8, Value)>) -> Value {
    let opts: Vec<Value> = options.into_iter().map(|(n, t, v)| json!({"name": n, "type": t, "value": v})).collect();
    let data = json!({"id": "1200000000000000001", "name": "care", "type": 1,
                      "options": [{"name": sub, "type": 1, "options": opts}]});
    envelope(2, user_id, data)
}

pub fn ping() -> Value {
    json!({"id": "1100000000000000009", "application_id": APP_ID, "type": 1, "token": "t", "version": 1,
           "entitlements": [], "authorizing_integration_owners": {}, "locale": "en-US", "attachment_size_limit": 26214400})
}

/// Posts an interaction signed at `timestamp` with the test key (or not at all).
pub async fn post(url: &str, body: &Value, timestamp: i64, signed: bool) -> (u16, Value) {
    let text = body.to_string();
    let ts = timestamp.to_string();
    let mut req = reqwest::Client::new().post(url).header("content-type", "application/json").body(text.clone());
    if signed {
        req = req.header("x-signature-ed25519", sign(&ts, &text)).header("x-signature-timestamp", &ts);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn chars(v: &Value) -> usize {
    v.as_str().map(|s| s.chars().count()).unwrap_or(0)
}

/// Discord's limits on a message body (content 2000; 10 embeds; 5 action rows of at most
/// 5 buttons or one select; custom ids 100; button labels 80; select options 25).
pub fn check_message(v: &Value) -> Result<(), String> {
    if chars(&v["content"]) > 2000 {
        return Err("content over 2000 characters".into());
    }
    if v["embeds"].as_array().is_some_and(|e| e.len() > 10) {
        return Err("more than 10 embeds".into());
    }
    check_rows(&v["components"], false)
}

fn check_rows(rows: &Value, modal: bool) -> Result<(), String> {
    let Some(rows) = rows.as_array() else { return Ok(()) };
    if rows.len() > 5 {
        return Err("more than 5 action rows".into());
    }
    for row in rows {
        let items = row["components"].as_array().cloned().unwrap_or_default();
        if row["type"] != 1 || items.is_empty() || items.len() > 5 {
            return Err("an action row needs 1 to 5 components".into());
        }
        for c in &items {
            if chars(&c["custom_id"]) > 100 {
                return Err("custom_id over 100 characters".into());
            }
            match c["type"].as_u64() {
                Some(2) if modal => return Err("buttons are not allowed in modals".into()),
                Some(2) if chars(&c["label"]) > 80 => return Err("button label over 80".into()),
                Some(3) if items.len() > 1 => return Err("a select menu needs a row of its own".into()),
                Some(3) if c["options"].as_array().is_some_and(|o| o.len() > 25 || o.is_empty()) => {
                    return Err("a select menu takes 1 to 25 options".into())
                }
                Some(4) if !modal => return Err("text inputs belong in modals".into()),
                Some(4) if chars(&c["label"]) > 45 || chars(&c["value"]) > 4000 => {
                    return Err("text input label over 45 or value over 4000".into())
                }
                Some(4) if c["style"] != 1 && c["style"] != 2 => return Err("text input without a style".into()),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Discord's rules for an interaction response carebot returns: messages as above;
/// modals (type 9) need a custom id, a title up to 45 characters and 1–5 rows of text inputs.
pub fn check_response(v: &Value) -> Result<(), String> {
    match v["type"].as_u64() {
        Some(9) => {
            let d = &v["data"];
            if chars(&d["custom_id"]) == 0 || chars(&d["title"]) == 0 || chars(&d["title"]) > 45 {
                return Err("a modal needs a custom_id and a title of 1 to 45 characters".into());
            }
            if d["components"].as_array().is_none_or(|r| r.is_empty()) {
                return Err("a modal needs at least one row".into());
            }
            check_rows(&d["components"], true)
        }
        Some(4) | Some(7) => check_message(&v["data"]),
        _ => Ok(()),
    }
}

/// A modal submitted, as Discord posts it (type 5): each `(custom_id, value)` a text input.
pub fn modal_submit(user_id: &str, custom_id: &str, inputs: Vec<(&str, &str)>) -> Value {
    let rows: Vec<Value> = inputs
        .into_iter()
        .map(|(id, value)| json!({"type": 1, "components": [{"type": 4, "custom_id": id, "value": value}]}))
        .collect();
    envelope(5, user_id, json!({"custom_id": custom_id, "components": rows}))
}
