//! Webhook intake: `POST /ingest/webhook/{source}` takes one mention, an array, or
//! `{"mentions": [...]}` in the documented intake schema, signed with HMAC-SHA256 over
//! the raw body (`X-Carebot-Signature: sha256=<hex>`, per-source secret from the
//! environment). A bad signature is 401, a bad body 400 naming the item and field, and
//! 2xx is answered only once every mention is stored; replays are harmless duplicates.

use crate::ctx::Ctx;
use crate::domain::{Mention, RawMention};
use crate::intake::{ingest, Ingested};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hmac::{KeyInit, Mac};
use std::sync::Arc;

pub const SIGNATURE_HEADER: &str = "x-carebot-signature";

/// The environment variable holding a source's secret: `CAREBOT_WEBHOOK_SECRET_<SOURCE>`.
pub fn secret_var(source: &str) -> String {
    format!("CAREBOT_WEBHOOK_SECRET_{}", source.to_uppercase().replace('-', "_"))
}

/// `sha256=<hex>` of the body under `secret`, as senders must compute it.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    format!("sha256={}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

pub(crate) fn verify(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else { return false };
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let sig: Vec<u8> = (0..32).filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()).collect();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.verify_slice(&sig).is_ok() // constant-time comparison
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

/// Parses every item or none: a batch with one bad item is refused whole, so the sender
/// can fix and resend it without guessing what was kept.
fn parse_batch(body: &[u8], source: &str, now: chrono::DateTime<chrono::Utc>) -> Result<Vec<Mention>, String> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}"))?;
    let items = match value {
        serde_json::Value::Array(a) => a,
        serde_json::Value::Object(mut o) if o.contains_key("mentions") => match o.remove("mentions") {
            Some(serde_json::Value::Array(a)) => a,
            _ => return Err("`mentions` must be an array".into()),
        },
        obj @ serde_json::Value::Object(_) => vec![obj],
        _ => return Err("expected a mention object, an array of them, or {\"mentions\": [...]}".into()),
    };
    if items.is_empty() {
        return Err("no mentions in the body".into());
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            // Counted from 1, as a person counts them.
            let n = i + 1;
            let raw: RawMention = serde_json::from_value(item).map_err(|e| format!("mention {n}: {e}"))?;
            raw.parse_for(source, now).map_err(|e| format!("mention {n}: {e}"))
        })
        .collect()
}

pub async fn receive(
    State(ctx): State<Arc<Ctx>>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(source) = crate::domain::mention::source_key(&source) else {
        return error(StatusCode::NOT_FOUND, "unknown webhook source (sources are short lower-case names)");
    };
    let Some(secret) = ctx.settings.secrets.webhook_secrets.get(&source) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("unknown webhook source {source:?} (no {} set)", secret_var(&source)),
        );
    };
    let header = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    if !verify(secret.as_bytes(), &body, header) {
        metrics::counter!("carebot_webhook_rejected_total", "source" => source.clone(), "reason" => "signature")
            .increment(1);
        return error(StatusCode::UNAUTHORIZED, "bad or missing X-Carebot-Signature");
    }
    // Counted only for signed requests, so strangers cannot use up a sender's budget.
    if let Err(not_until) = ctx.webhook_limiter.check_key(&source) {
        metrics::counter!("carebot_webhook_rejected_total", "source" => source.clone(), "reason" => "rate")
            .increment(1);
        let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
        let mut res = error(StatusCode::TOO_MANY_REQUESTS, "too many requests for this source; slow down");
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        if let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string()) {
            res.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
        }
        return res;
    }
    let mentions = match parse_batch(&body, &source, ctx.clock.now()) {
        Ok(m) => m,
        Err(e) => {
            metrics::counter!("carebot_webhook_rejected_total", "source" => source.clone(), "reason" => "body")
                .increment(1);
            return error(StatusCode::BAD_REQUEST, e);
        }
    };
    match ingest(&ctx, &mentions).await {
        Ok(results) => {
            let count = |f: fn(&Ingested) -> bool| results.iter().filter(|r| f(r)).count();
            Json(serde_json::json!({
                "accepted": results.len(),
                "opened": count(|r| matches!(r, Ingested::Opened(_))),
                "revised": count(|r| matches!(r, Ingested::Revised(_))),
                "duplicates": count(|r| matches!(r, Ingested::Duplicate(_))),
                "similar": count(|r| matches!(r, Ingested::Similar(_))),
                "cases": results.iter().map(|r| r.case_id()).collect::<Vec<_>>(),
            }))
            .into_response()
        }
        Err(e) => {
            tracing::error!(%source, error = %format!("{e:#}"), "webhook intake failed");
            let why = if crate::store::is_unavailable(&e) {
                "carebot can't reach its database; nothing was stored, retry later"
            } else {
                "could not store the mentions; retry later"
            };
            let mut res = error(StatusCode::SERVICE_UNAVAILABLE, why);
            res.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("30"));
            res
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_for_the_exact_body_and_secret() {
        let sig = sign(b"s3cret", b"{\"a\":1}");
        assert!(verify(b"s3cret", b"{\"a\":1}", Some(&sig)));
        assert!(!verify(b"s3cret", b"{\"a\":2}", Some(&sig)));
        assert!(!verify(b"other", b"{\"a\":1}", Some(&sig)));
        assert!(!verify(b"s3cret", b"{\"a\":1}", Some("sha256=zz")));
        assert!(!verify(b"s3cret", b"{\"a\":1}", None));
    }

    #[test]
    fn a_batch_with_one_bad_item_is_refused_naming_it() {
        let now = chrono::Utc::now();
        let body = br#"{"mentions":[{"external_id":"1","text":"ok"},{"external_id":"2"}]}"#;
        assert_eq!(parse_batch(body, "zapier", now).unwrap_err(), "mention 2: missing field `text`");
        let one = parse_batch(br#"{"id":"7","text":"hello"}"#, "zapier", now).unwrap();
        assert_eq!((one[0].source.as_str(), one[0].external_id.as_str()), ("zapier", "7"));
        assert!(parse_batch(b"[]", "zapier", now).is_err());
        assert!(parse_batch(b"{nope", "zapier", now).unwrap_err().starts_with("malformed JSON"));
    }
}
