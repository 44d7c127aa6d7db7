//! Facebook Page webhooks: `GET /ingest/facebook` answers the subscription check
//! (`hub.mode=subscribe`, `hub.verify_token`, echo `hub.challenge`); `POST /ingest/facebook`
//! takes Page change notifications signed with the app secret (`X-Hub-Signature-256:
//! sha256=<hex>` over the raw body). Visitor posts, comments, ratings/recommendations and
//! mentions of the page become mentions, with the page mapped to its site; the page's own
//! posts and replies, likes, reactions and removals are skipped. 2xx only once stored, so
//! Facebook retries anything we could not keep; an edited comment is a revision.

use crate::ctx::Ctx;
use crate::domain::{Mention, RawMention};
use crate::intake::{ingest, Ingested};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
/// The key of Facebook's health row in `source_cursors`.
pub const HEALTH_KEY: &str = "facebook";

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

/// `GET /ingest/facebook`: the subscription handshake.
pub async fn verify_subscription(State(ctx): State<Arc<Ctx>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let Some(expected) = ctx.settings.secrets.facebook_verify_token.as_deref() else {
        return error(StatusCode::NOT_FOUND, "Facebook intake is not configured (FACEBOOK_VERIFY_TOKEN unset)");
    };
    let mode = q.get("hub.mode").map(String::as_str);
    let token = q.get("hub.verify_token").map(String::as_str);
    match (mode, token, q.get("hub.challenge")) {
        (Some("subscribe"), Some(t), Some(challenge)) if t == expected => challenge.clone().into_response(),
        (Some("subscribe"), Some(_), Some(_)) => error(StatusCode::FORBIDDEN, "hub.verify_token does not match"),
        _ => error(StatusCode::BAD_REQUEST, "expected hub.mode=subscribe, hub.verify_token and hub.challenge"),
    }
}

/// Seconds since the epoch (feed changes) or an ISO time (some rating payloads).
fn time(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => n.as_i64().and_then(|s| DateTime::<Utc>::from_timestamp(s, 0)).map(|d| d.to_rfc3339()),
        Value::String(s) => DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z")
            .map(|d| d.with_timezone(&Utc).to_rfc3339())
            .or_else(|_| DateTime::parse_from_rfc3339(s).map(|d| d.with_timezone(&Utc).to_rfc3339()))
            .ok(),
        _ => None,
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

fn permalink(id: &str) -> String {
    format!("https://www.facebook.com/{id}")
}

/// One change notification as a mention, or `None` when it is not something to answer
/// (the page's own activity, reactions, removals, empty posts).
fn change_to_raw(page_id: &str, field: &str, v: &Value) -> Option<RawMention> {
    let verb = text(v, "verb").unwrap_or_else(|| "add".into());
    if !matches!(verb.as_str(), "add" | "edited" | "edit") {
        return None;
    }
    let from_id = v.get("from").and_then(|f| text(f, "id")).or_else(|| text(v, "sender_id"));
    if from_id.as_deref() == Some(page_id) {
        return None; // our own posts and replies
    }
    let author = v
        .get("from")
        .and_then(|f| text(f, "name"))
        .or_else(|| text(v, "sender_name"))
        .or_else(|| text(v, "reviewer_name"));
    let item = text(v, "item").unwrap_or_default();
    let (external_id, body, url, rating) = match field {
        "feed" => {
            if !matches!(item.as_str(), "comment" | "post" | "status" | "photo" | "video" | "share") {
                return None; // reactions, likes, events…
            }
            let id = if item == "comment" { text(v, "comment_id")? } else { text(v, "post_id")? };
            let url = v.get("post").and_then(|p| text(p, "permalink_url")).filter(|_| item != "comment");
            (id.clone(), text(v, "message")?, url.or_else(|| Some(permalink(&id))), None)
        }
        "ratings" => {
            let id = text(v, "open_graph_story_id")
                .or_else(|| Some(format!("rating-{}-{}", text(v, "reviewer_id")?, v.get("created_time")?)))?;
            let recommends = match text(v, "recommendation_type").as_deref() {
                Some("positive") => Some("Recommends"),
                Some("negative") => Some("Does not recommend"),
                _ => None,
            };
            let review = text(v, "review_text");
            let body = match (recommends, review) {
                (Some(r), Some(t)) => format!("{r}: {t}"),
                (Some(r), None) => format!("{r} (no text)"),
                (None, Some(t)) => t,
                (None, None) => return None,
            };
            let rating = v.get("rating").and_then(Value::as_f64);
            (id.clone(), body, Some(permalink(&id)), rating)
        }
        "mention" => {
            let id = text(v, "comment_id").or_else(|| text(v, "post_id"))?;
            let body = text(v, "message").unwrap_or_else(|| "Mentioned the page (open the link to read it)".into());
            (id.clone(), body, Some(permalink(&id)), None)
        }
        _ => return None,
    };
    Some(RawMention {
        external_id: Some(external_id),
        url,
        author,
        text: Some(body),
        rating,
        posted_at: v.get("created_time").and_then(time),
        ..Default::default()
    })
}

/// Every answerable change in a notification body, with the page → site mapping applied.
pub fn mentions(
    body: &[u8],
    source: &str,
    pages: &std::collections::BTreeMap<String, String>,
    now: DateTime<Utc>,
) -> Result<Vec<Mention>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}"))?;
    if value.get("object").and_then(Value::as_str) != Some("page") {
        return Err("expected a Page notification (\"object\": \"page\")".into());
    }
    let entries = value.get("entry").and_then(Value::as_array).ok_or("`entry` must be an array")?;
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let page = match entry.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(format!("entry {i}: missing page `id`")),
        };
        for change in entry.get("changes").and_then(Value::as_array).into_iter().flatten() {
            let field = change.get("field").and_then(Value::as_str).unwrap_or_default();
            let Some(value) = change.get("value") else { continue };
            let Some(raw) = change_to_raw(&page, field, value) else { continue };
            let mut m = raw.scrubbed().parse(Some(source), now).map_err(|e| format!("entry {i} ({field}): {e}"))?;
            m.site = pages.get(&page).cloned();
            out.push(m);
        }
    }
    Ok(out)
}

/// `POST /ingest/facebook`.
pub async fn receive(State(ctx): State<Arc<Ctx>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(secret) = ctx.settings.secrets.facebook_app_secret.as_deref() else {
        return error(StatusCode::NOT_FOUND, "Facebook intake is not configured (FACEBOOK_APP_SECRET unset)");
    };
    let header = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    if !super::webhook::verify(secret.as_bytes(), &body, header) {
        metrics::counter!("carebot_webhook_rejected_total", "source" => "facebook", "reason" => "signature")
            .increment(1);
        return error(StatusCode::UNAUTHORIZED, "bad or missing X-Hub-Signature-256");
    }
    let fb = &ctx.settings.sources.facebook;
    let now = ctx.clock.now();
    let mentions = match mentions(&body, &fb.source, &fb.pages, now) {
        Ok(m) => m,
        Err(e) => {
            metrics::counter!("carebot_webhook_rejected_total", "source" => "facebook", "reason" => "body")
                .increment(1);
            return error(StatusCode::BAD_REQUEST, e);
        }
    };
    let stored = if mentions.is_empty() { Ok(Vec::new()) } else { ingest(&ctx, &mentions).await };
    let now_ms = now.timestamp_millis();
    match stored {
        Ok(results) => {
            if let Err(e) = ctx.store.cursor_success(HEALTH_KEY, "{}", now_ms).await {
                tracing::warn!(error = %format!("{e:#}"), "could not record Facebook health");
            }
            let opened = results.iter().filter(|r| matches!(r, Ingested::Opened(_))).count();
            Json(serde_json::json!({ "accepted": results.len(), "opened": opened })).into_response()
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "Facebook intake failed; Facebook will retry");
            let _ = ctx.store.cursor_error(HEALTH_KEY, &format!("{e:#}"), now_ms).await;
            error(StatusCode::SERVICE_UNAVAILABLE, "could not store the changes; retry later")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(changes: Value) -> Vec<u8> {
        json!({"object": "page", "entry": [{"id": "1040", "time": 1763900000, "changes": changes}]})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn the_pages_own_replies_reactions_and_removals_are_skipped() {
        let pages = [("1040".to_string(), "riverside".to_string())].into();
        let b = body(json!([
            {"field": "feed", "value": {"item": "comment", "verb": "add", "comment_id": "9_1", "post_id": "1040_9",
                "message": "Thank you, please call us", "from": {"id": "1040", "name": "Riverside"}}},
            {"field": "feed", "value": {"item": "reaction", "verb": "add", "post_id": "1040_9", "reaction_type": "like",
                "from": {"id": "77"}}},
            {"field": "feed", "value": {"item": "comment", "verb": "remove", "comment_id": "9_2", "post_id": "1040_9",
                "from": {"id": "77"}}},
            {"field": "feed", "value": {"item": "comment", "verb": "add", "comment_id": "9_3", "post_id": "1040_9",
                "message": "Still no call back", "from": {"id": "78", "name": "Pat"}, "created_time": 1763900000}},
        ]));
        let m = mentions(&b, "facebook", &pages, Utc::now()).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].external_id.as_str(), m[0].site.as_deref()), ("9_3", Some("riverside")));
        assert_eq!(m[0].posted_at.timestamp(), 1763900000);
    }

    #[test]
    fn other_objects_and_broken_bodies_are_refused() {
        let pages = Default::default();
        assert!(mentions(b"{", "facebook", &pages, Utc::now()).unwrap_err().starts_with("malformed JSON"));
        let user = json!({"object": "user", "entry": []}).to_string();
        assert!(mentions(user.as_bytes(), "facebook", &pages, Utc::now()).unwrap_err().contains("object"));
    }
}
