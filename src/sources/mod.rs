//! Intake adapters: each turns an outside format or API into checked `Mention`s and hands
//! them to `intake::ingest`.
//!
//! Pushed sources answer HTTP (`webhook`, `facebook`); polled sources (`rss`, `x`,
//! `google_business`, `yelp`) each expose `poll_all(&Ctx, at) -> summary`, run by a job, and
//! keep their cursor in `source_cursors` through [`poll_with_cursor`]: the cursor moves
//! only after the mentions it covers are stored, so a restart neither re-posts nor skips,
//! and a failure mid-poll is retried from where it safely can be.

pub mod facebook;
pub mod files;
pub mod google_business;
pub mod publish;
pub mod rss;
pub mod webhook;
pub mod x;
pub mod yelp;

use crate::ctx::Ctx;
use crate::domain::{Mention, Span};
use crate::intake::{ingest, Ingested};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::future::Future;

/// What a polled source stores between polls: its own position plus when it last ran and,
/// after a rate limit, when it may run again.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored<C> {
    polled_at: Option<i64>,
    resume_at: Option<i64>,
    #[serde(default)]
    state: C,
}

/// A failed poll: the error, and what is safe to keep.
#[derive(Debug)]
pub struct Failure<C> {
    pub error: anyhow::Error,
    /// Progress made before the failure (pages stored), saved as the new position.
    pub progress: Option<C>,
    /// Do not call the API again before this time (ms), e.g. a rate limit's reset.
    pub resume_at: Option<i64>,
}

impl<C> From<anyhow::Error> for Failure<C> {
    fn from(error: anyhow::Error) -> Self {
        Failure { error, progress: None, resume_at: None }
    }
}

/// Why a poll did not run.
#[derive(Debug, Clone, PartialEq)]
pub enum Polled {
    /// Ran: this many new cases opened.
    Opened(usize),
    /// Its interval has not passed.
    NotDue,
    /// Waiting for a rate limit to lift at this time (ms).
    RateLimited(i64),
}

/// The stored position of `key` (the default before its first poll; an unreadable one
/// from an older version also starts afresh, which only re-reads duplicates).
async fn load<C: DeserializeOwned + Default>(ctx: &Ctx, key: &str) -> anyhow::Result<Stored<C>> {
    Ok(match ctx.store.source_cursor(key).await?.and_then(|c| c.cursor) {
        Some(json) => serde_json::from_str(&json).unwrap_or_else(|e| {
            // Said, not silent: starting afresh re-reads only duplicates, but an operator
            // should know the stored position was not understood.
            tracing::warn!(source = key, error = %format!("line {} column {}", e.line(), e.column()), "stored cursor unreadable; polling afresh");
            Stored::default()
        }),
        None => Stored::default(),
    })
}

/// Runs one poll of `key` if its interval has passed and no rate limit is pending, with
/// the stored position; saves the new position on success, or the error (and any safe
/// progress) on failure, so `carebot sources` and /metrics show the source's health.
pub async fn poll_with_cursor<C, F, Fut>(
    ctx: &Ctx,
    key: &str,
    every: Span,
    at: DateTime<Utc>,
    poll: F,
) -> anyhow::Result<Polled>
where
    C: Serialize + DeserializeOwned + Default,
    F: FnOnce(C) -> Fut,
    Fut: Future<Output = Result<(C, usize), Failure<C>>>,
{
    let now = at.timestamp_millis();
    let stored: Stored<C> = load(ctx, key).await?;
    if let Some(until) = stored.resume_at.filter(|r| *r > now) {
        return Ok(Polled::RateLimited(until));
    }
    if stored.polled_at.is_some_and(|p| now - p < every.as_millis()) {
        return Ok(Polled::NotDue);
    }
    let polled_at = stored.polled_at;
    match poll(stored.state).await {
        Ok((state, opened)) => {
            let next = Stored { polled_at: Some(now), resume_at: None, state };
            ctx.store.cursor_success(key, &serde_json::to_string(&next)?, now).await?;
            Ok(Polled::Opened(opened))
        }
        Err(f) => {
            let error = format!("{:#}", f.error);
            // Without progress the position stays; a resume time is still recorded.
            let keep = match (f.progress, f.resume_at) {
                (None, None) => None,
                (progress, resume_at) => {
                    let state = match progress {
                        Some(p) => p,
                        None => load::<C>(ctx, key).await?.state,
                    };
                    Some(serde_json::to_string(&Stored { polled_at, resume_at, state })?)
                }
            };
            ctx.store.cursor_error_keeping(key, &error, keep.as_deref(), now).await?;
            Err(f.error)
        }
    }
}

/// Stores a page of mentions (in chunks) and returns how many new cases opened.
pub async fn store_page(ctx: &Ctx, mentions: &[Mention]) -> anyhow::Result<usize> {
    let mut opened = 0;
    for chunk in mentions.chunks(500) {
        opened += ingest(ctx, chunk).await?.iter().filter(|r| matches!(r, Ingested::Opened(_))).count();
    }
    Ok(opened)
}

/// The HTTP client polled sources share: a timeout so a hung API cannot stall the job.
pub fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .user_agent(concat!("carebot/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// Polls every unit of a source (`(key, result)` in order) into a job summary; the job
/// fails only when every unit that ran failed, so one broken location does not hide others.
pub fn summarize(what: &str, results: Vec<(String, anyhow::Result<Polled>)>) -> anyhow::Result<String> {
    let (mut parts, mut ran, mut failed) = (Vec::new(), 0, 0);
    for (key, r) in results {
        match r {
            Ok(Polled::NotDue) => {}
            Ok(Polled::RateLimited(until)) => {
                let t = DateTime::<Utc>::from_timestamp_millis(until).unwrap_or_default();
                parts.push(format!("{key}: rate-limited until {}", t.format("%H:%M:%S UTC")));
            }
            Ok(Polled::Opened(n)) => {
                ran += 1;
                parts.push(format!("{key}: {n} new"));
            }
            Err(e) => {
                ran += 1;
                failed += 1;
                tracing::warn!(source = %key, error = %format!("{e:#}"), "poll failed; will retry");
                parts.push(format!("{key}: failed: {e:#}"));
            }
        }
    }
    let summary = if parts.is_empty() { format!("no {what} due") } else { parts.join("; ") };
    if ran > 0 && failed == ran {
        anyhow::bail!("{summary}");
    }
    Ok(summary)
}

/// Reads an API's JSON answer. A body that does not fit is reported by position only:
/// serde's own message can quote a field's value, which may be a post's text.
pub async fn decode<T: DeserializeOwned>(api: &str, resp: reqwest::Response) -> anyhow::Result<T> {
    let body = resp.bytes().await.map_err(|e| anyhow::anyhow!("reading the answer of {api}: {e}"))?;
    serde_json::from_slice(&body).map_err(|e| {
        anyhow::anyhow!(
            "{api} answered JSON carebot cannot read ({:?} error at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        )
    })
}

/// Seconds-since-epoch header (X's `x-rate-limit-reset`) as ms.
pub fn epoch_header_ms(headers: &reqwest::header::HeaderMap, name: &str) -> Option<i64> {
    headers.get(name)?.to_str().ok()?.trim().parse::<i64>().ok().map(|s| s * 1000)
}

/// An API answer that was not a success, worded for the health table: status plus the
/// first part of the body (APIs put the reason there; never mention text).
pub async fn http_error(api: &str, resp: reqwest::Response) -> anyhow::Error {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let reason: String = body.chars().take(200).collect();
    anyhow::anyhow!("{api} answered HTTP {}: {}", status.as_u16(), reason.trim())
}
