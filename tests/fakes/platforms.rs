//! A stateful fake of the three reply APIs carebot publishes to, checking what it receives
//! as the platforms do and answering with their documented bodies:
//!
//! - Google Business Profile: `POST /token` (refresh grant) and
//!   `PUT /v4/accounts/*/locations/*/reviews/*/reply` `{"comment"}` (≤ 4096 chars, Bearer
//!   access token); one reply per review, replaced by a second PUT; 404 for an unknown review.
//! - Facebook Graph: `POST /v21.0/{object}/comments` `{"message"}` and `GET` of the same
//!   path (Bearer page token); OAuthException bodies (190 expired token, 368 policy).
//! - X API v2: `POST /2/tweets` `{"text", "reply": {"in_reply_to_tweet_id"}}` (≤ 280
//!   chars, Bearer user token); 403 "duplicate content" for the same text twice.
//!
//! Private replies: `POST /v21.0/{page}/messages` `{"recipient": {"comment_id"|"post_id"},
//! "message": {"text"}}`, one per post or comment ((#10900) "Activity already replied to").
//!
//! Edits and removals: Google `DELETE …/reply`; Facebook `POST /v21.0/{comment id}`
//! `{"message"}` (edit, `{"success": true}`) and `DELETE` of the same path (code 100
//! "does not exist" for an unknown comment); X `DELETE /2/tweets/{id}` (404 when unknown).
//!
//! `fail_after_write(n)`: the next n writes are applied and then answered 503, as when the
//! platform did the work but the answer was lost.

#![allow(dead_code)]
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

pub const GOOGLE_ACCESS: &str = "ya29.fake-access";
pub const PAGE_TOKEN: &str = "EAAB-page-token";
pub const X_TOKEN: &str = "x-user-token";
pub const PAGE_ID: &str = "1001";

#[derive(Default)]
pub struct State_ {
    /// Every request: (method, path).
    pub requests: Vec<(String, String)>,
    /// Google: review name → reply comment.
    pub google_replies: BTreeMap<String, String>,
    pub known_reviews: HashSet<String>,
    /// Facebook: object → comments (id, message, from page id).
    pub fb_comments: BTreeMap<String, Vec<(String, String, String)>>,
    /// Facebook private replies (Messenger): (page, recipient kind, object, text).
    pub fb_private: Vec<(String, String, String, String)>,
    /// X: posts (id, text, in reply to).
    pub tweets: Vec<(String, String, String)>,
    pub fail_after_write: usize,
    /// The next write answers with this (status, body) and changes nothing.
    pub refuse_next: Option<(u16, Value)>,
    pub expired_page_token: bool,
}

#[derive(Clone)]
pub struct FakePlatforms {
    pub state: Arc<Mutex<State_>>,
    pub url: String,
}

impl FakePlatforms {
    pub async fn start() -> FakePlatforms {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake =
            FakePlatforms { state: Default::default(), url: format!("http://{}", listener.local_addr().unwrap()) };
        let app = axum::Router::new().fallback(answer).with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }
    pub fn with<R>(&self, f: impl FnOnce(&mut State_) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }
    pub fn writes(&self) -> usize {
        self.with(|s| s.requests.iter().filter(|(m, p)| m != "GET" && p != "/token").count())
    }
}

fn err(status: u16, body: Value) -> Response {
    (StatusCode::from_u16(status).unwrap(), Json(body)).into_response()
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers.get("authorization")?.to_str().ok()?.strip_prefix("Bearer ").map(str::to_string)
}

fn google_error(code: u16, status: &str, message: &str) -> Response {
    err(code, json!({"error": {"code": code, "message": message, "status": status}}))
}

fn fb_error(code: i64, message: &str) -> Response {
    err(400, json!({"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbC"}}))
}

async fn answer(
    State(fake): State<FakePlatforms>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let mut s = fake.state.lock().unwrap();
    s.requests.push((method.to_string(), path.clone()));
    if method == Method::POST && path == "/token" {
        let form = String::from_utf8_lossy(&body);
        if !form.contains("grant_type=refresh_token") {
            return err(400, json!({"error": "unsupported_grant_type"}));
        }
        return Json(json!({"access_token": GOOGLE_ACCESS, "expires_in": 3599, "token_type": "Bearer"}))
            .into_response();
    }
    let write = method != Method::GET;
    if write {
        if let Some((status, body)) = s.refuse_next.take() {
            return err(status, body);
        }
    }
    let lost = write && s.fail_after_write > 0;
    if lost {
        s.fail_after_write -= 1;
    }
    let answer = |r: Response| if lost { err(503, json!({"error": "backend unavailable"})) } else { r };
    let json: Option<Value> = serde_json::from_slice(&body).ok();

    // Google Business Profile.
    if let Some(review) = path.strip_prefix("/v4/").and_then(|p| p.strip_suffix("/reply")) {
        if method == Method::DELETE {
            if bearer(&headers).as_deref() != Some(GOOGLE_ACCESS) {
                return google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.");
            }
            return match s.google_replies.remove(review) {
                Some(_) => answer(Json(json!({})).into_response()),
                None => google_error(404, "NOT_FOUND", "Requested entity was not found."),
            };
        }
        if method != Method::PUT {
            return google_error(405, "METHOD_NOT_ALLOWED", "use PUT to reply");
        }
        if bearer(&headers).as_deref() != Some(GOOGLE_ACCESS) {
            return google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.");
        }
        if !s.known_reviews.contains(review) {
            return google_error(404, "NOT_FOUND", "Requested entity was not found.");
        }
        let obj = json.as_ref().and_then(Value::as_object);
        let comment = obj.and_then(|o| o.get("comment")).and_then(Value::as_str);
        match comment {
            Some(c) if obj.is_some_and(|o| o.len() == 1) && !c.trim().is_empty() && c.chars().count() <= 4096 => {
                s.google_replies.insert(review.to_string(), c.to_string());
                return answer(Json(json!({"comment": c, "updateTime": "2026-11-23T15:02:00Z"})).into_response());
            }
            _ => return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload: expected {\"comment\": text}"),
        }
    }
    // Facebook Graph.
    if let Some(object) = path.strip_prefix("/v21.0/").and_then(|p| p.strip_suffix("/comments")) {
        if bearer(&headers).as_deref() != Some(PAGE_TOKEN) || s.expired_page_token {
            return fb_error(190, "Error validating access token: Session has expired on Monday, 23-Nov-26.");
        }
        if method == Method::GET {
            let data: Vec<Value> = s
                .fb_comments
                .get(object)
                .into_iter()
                .flatten()
                .map(|(id, m, from)| json!({"id": id, "message": m, "from": {"id": from, "name": "Lakeshore Health"}}))
                .collect();
            return Json(json!({"data": data, "paging": {}})).into_response();
        }
        let message = json.as_ref().and_then(|v| v.get("message")).and_then(Value::as_str);
        match message {
            Some(m) if !m.trim().is_empty() && m.chars().count() <= 8000 => {
                let list = s.fb_comments.entry(object.to_string()).or_default();
                let id = format!("{object}_{}", 9000 + list.len());
                list.push((id.clone(), m.to_string(), PAGE_ID.to_string()));
                return answer(Json(json!({"id": id})).into_response());
            }
            _ => return fb_error(100, "(#100) The parameter message is required"),
        }
    }
    // Facebook private replies: one per post or comment, by Messenger.
    if let Some(page) = path.strip_prefix("/v21.0/").and_then(|p| p.strip_suffix("/messages")) {
        if bearer(&headers).as_deref() != Some(PAGE_TOKEN) || s.expired_page_token {
            return fb_error(190, "Error validating access token: Session has expired on Monday, 23-Nov-26.");
        }
        let v = json.unwrap_or_default();
        let recipient = ["comment_id", "post_id"]
            .into_iter()
            .find_map(|k| v.pointer(&format!("/recipient/{k}")).and_then(Value::as_str).map(|o| (k, o.to_string())));
        let text = v
            .pointer("/message/text")
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty() && t.chars().count() <= 2000);
        let (Some((kind, object)), Some(text)) = (recipient, text) else {
            return fb_error(100, "(#100) The parameter recipient is required");
        };
        if s.fb_private.iter().any(|m| m.2 == object) {
            return fb_error(10900, "(#10900) Activity already replied to");
        }
        s.fb_private.push((page.to_string(), kind.to_string(), object.clone(), text.to_string()));
        let id = format!("m_{}", s.fb_private.len());
        return answer(Json(json!({"recipient_id": "2002", "message_id": id})).into_response());
    }
    // Facebook Graph: one comment of ours, edited or deleted.
    if let Some(comment) = path.strip_prefix("/v21.0/").filter(|p| !p.contains('/')) {
        if bearer(&headers).as_deref() != Some(PAGE_TOKEN) || s.expired_page_token {
            return fb_error(190, "Error validating access token: Session has expired on Monday, 23-Nov-26.");
        }
        let found = s.fb_comments.values_mut().flat_map(|l| l.iter_mut()).any(|c| c.0 == comment);
        if !found {
            return fb_error(
                100,
                &format!("Unsupported request. Object with ID '{comment}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."),
            );
        }
        if method == Method::DELETE {
            for list in s.fb_comments.values_mut() {
                list.retain(|c| c.0 != comment);
            }
            return answer(Json(json!({"success": true})).into_response());
        }
        if method == Method::POST {
            let message = json.as_ref().and_then(|v| v.get("message")).and_then(Value::as_str);
            let Some(m) = message.filter(|m| !m.trim().is_empty() && m.chars().count() <= 8000) else {
                return fb_error(100, "(#100) The parameter message is required");
            };
            for c in s.fb_comments.values_mut().flat_map(|l| l.iter_mut()).filter(|c| c.0 == comment) {
                c.1 = m.to_string();
            }
            return answer(Json(json!({"success": true})).into_response());
        }
    }
    // X API v2.
    if let Some(id) = path.strip_prefix("/2/tweets/").filter(|_| method == Method::DELETE) {
        if bearer(&headers).as_deref() != Some(X_TOKEN) {
            return err(
                401,
                json!({"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}),
            );
        }
        let before = s.tweets.len();
        s.tweets.retain(|t| t.0 != id);
        if s.tweets.len() == before {
            return err(
                404,
                json!({"title": "Not Found Error", "detail": format!("Could not find tweet with id: [{id}]."),
                "type": "https://api.twitter.com/2/problems/resource-not-found"}),
            );
        }
        return answer(Json(json!({"data": {"deleted": true}})).into_response());
    }
    if path == "/2/tweets" && method == Method::POST {
        if bearer(&headers).as_deref() != Some(X_TOKEN) {
            return err(
                401,
                json!({"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}),
            );
        }
        let text = json.as_ref().and_then(|v| v.get("text")).and_then(Value::as_str);
        let to = json.as_ref().and_then(|v| v.pointer("/reply/in_reply_to_tweet_id")).and_then(Value::as_str);
        let (Some(text), Some(to)) = (text, to) else {
            return err(
                400,
                json!({"title": "Invalid Request", "detail": "One or more parameters to your request was invalid.",
                "type": "https://api.twitter.com/2/problems/invalid-request"}),
            );
        };
        if text.chars().count() > 280 {
            return err(
                400,
                json!({"title": "Invalid Request", "detail": "One or more parameters to your request was invalid.",
                "errors": [{"message": "Tweet text is too long"}], "type": "https://api.twitter.com/2/problems/invalid-request"}),
            );
        }
        if s.tweets.iter().any(|(_, t, _)| t == text) {
            return err(
                403,
                json!({"detail": "You are not allowed to create a Tweet with duplicate content.",
                "type": "about:blank", "title": "Forbidden", "status": 403}),
            );
        }
        let id = format!("186{:016}", s.tweets.len() + 1);
        s.tweets.push((id.clone(), text.to_string(), to.to_string()));
        let created =
            (StatusCode::CREATED, Json(json!({"data": {"id": id, "text": text, "edit_history_tweet_ids": [id]}})));
        return answer(created.into_response());
    }
    err(404, json!({"error": format!("fake platforms: no route for {method} {path}")}))
}
