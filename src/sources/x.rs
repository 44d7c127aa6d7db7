//! X (Twitter) API v2 recent search (`GET /2/tweets/search/recent`) for the organisation's
//! handles and names, with the app's bearer token. Results come newest first in pages of
//! up to 100 (`next_token`); the `since_id` cursor moves to the sweep's newest post only
//! once every page down to the old `since_id` is stored. A sweep longer than `max_pages`
//! continues from its `next_token` at the next poll, so a burst is never skipped. A 429
//! (or `x-rate-limit-remaining: 0`) pauses the source until `x-rate-limit-reset`.

use super::{epoch_header_ms, http_error, poll_with_cursor, store_page, summarize, Failure};
use crate::ctx::Ctx;
use crate::domain::{Mention, RawMention};
use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The key of X's cursor and health.
pub const KEY: &str = "x";

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct Cursor {
    /// Posts up to this id are stored.
    pub since_id: Option<String>,
    /// A sweep under way: the page to fetch next and the newest id of the sweep.
    pub next_token: Option<String>,
    pub sweep_newest: Option<String>,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    data: Vec<Tweet>,
    #[serde(default)]
    includes: Includes,
    #[serde(default)]
    meta: Meta,
}

#[derive(Deserialize)]
struct Tweet {
    id: String,
    text: String,
    author_id: Option<String>,
    created_at: Option<String>,
}

#[derive(Deserialize, Default)]
struct Includes {
    #[serde(default)]
    users: Vec<User>,
}

#[derive(Deserialize)]
struct User {
    id: String,
    username: String,
}

#[derive(Deserialize, Default)]
struct Meta {
    newest_id: Option<String>,
    next_token: Option<String>,
}

/// X escapes `&`, `<` and `>` in post text.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

fn to_mentions(page: &Page, now: DateTime<Utc>) -> Vec<Mention> {
    let users: HashMap<&str, &str> = page.includes.users.iter().map(|u| (u.id.as_str(), u.username.as_str())).collect();
    page.data
        .iter()
        .filter_map(|t| {
            let handle = t.author_id.as_deref().and_then(|a| users.get(a)).copied();
            let raw = RawMention {
                source: Some("x".into()),
                external_id: Some(t.id.clone()),
                url: Some(format!("https://x.com/{}/status/{}", handle.unwrap_or("i/web"), t.id)),
                author: handle.map(|h| format!("@{h}")),
                text: Some(unescape(&t.text)),
                posted_at: t.created_at.clone(),
                ..Default::default()
            };
            raw.scrubbed().parse(None, now).ok()
        })
        .collect()
}

/// One poll: a sweep (or the rest of one) from the newest post back to `since_id`.
async fn sweep(
    ctx: &Ctx,
    http: &reqwest::Client,
    token: &str,
    at: DateTime<Utc>,
    cursor: Cursor,
) -> Result<(Cursor, usize), Failure<Cursor>> {
    let x = &ctx.settings.sources.x;
    let url = format!("{}/2/tweets/search/recent", x.api_url);
    let mut progress = cursor.clone();
    let mut opened = 0;
    for _ in 0..x.max_pages.get() {
        let mut query: Vec<(&str, String)> = vec![
            ("query", x.query.clone()),
            ("max_results", "100".into()),
            ("tweet.fields", "created_at,author_id".into()),
            ("expansions", "author_id".into()),
            ("user.fields", "username".into()),
        ];
        if let Some(s) = &progress.since_id {
            query.push(("since_id", s.clone()));
        }
        if let Some(t) = &progress.next_token {
            query.push(("next_token", t.clone()));
        }
        let fail = |error: anyhow::Error, progress: &Cursor, resume_at| Failure {
            error,
            progress: Some(progress.clone()),
            resume_at,
        };
        let resp = match http.get(&url).bearer_auth(token).query(&query).send().await {
            Ok(r) => r,
            Err(e) => return Err(fail(anyhow::Error::new(e).context("calling X recent search"), &progress, None)),
        };
        let reset = epoch_header_ms(resp.headers(), "x-rate-limit-reset");
        let exhausted = resp.headers().get("x-rate-limit-remaining").is_some_and(|v| v.as_bytes() == b"0");
        if resp.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
            let until = reset.unwrap_or(at.timestamp_millis() + 15 * 60_000);
            let t = DateTime::<Utc>::from_timestamp_millis(until).unwrap_or_default();
            let e = anyhow::anyhow!("X rate limit reached (HTTP 429); paused until {}", t.format("%H:%M:%S UTC"));
            return Err(fail(e, &progress, Some(until)));
        }
        if resp.status() == reqwest::StatusCode::BAD_REQUEST && progress.next_token.is_some() {
            // A page token X no longer accepts: start the sweep again from `since_id`
            // (pages already stored come back as duplicates; nothing is skipped).
            let restart = Cursor { since_id: progress.since_id.clone(), next_token: None, sweep_newest: None };
            return Err(fail(http_error("X recent search (page token refused)", resp).await, &restart, None));
        }
        if !resp.status().is_success() {
            return Err(fail(http_error("X recent search", resp).await, &progress, None));
        }
        let page: Page = match super::decode("X recent search", resp).await {
            Ok(p) => p,
            Err(e) => return Err(fail(e, &progress, None)),
        };
        match store_page(ctx, &to_mentions(&page, at)).await {
            Ok(n) => opened += n,
            Err(e) => return Err(fail(e, &progress, None)),
        }
        // The first page of a sweep carries its newest id; it becomes `since_id` at the end.
        if progress.next_token.is_none() {
            progress.sweep_newest = page.meta.newest_id.clone();
        }
        match page.meta.next_token {
            Some(next) => progress.next_token = Some(next),
            None => {
                if let Some(newest) = progress.sweep_newest.take() {
                    progress.since_id = Some(newest);
                }
                progress.next_token = None;
                return Ok((progress, opened));
            }
        }
        if exhausted {
            if let Some(until) = reset {
                // Pages stored so far are kept; the sweep resumes when the window resets.
                let e = anyhow::anyhow!("X rate limit window used up; resuming the sweep after the reset");
                return Err(fail(e, &progress, Some(until)));
            }
        }
    }
    // More pages than one poll may fetch: the next poll continues from `next_token`.
    Ok((progress, opened))
}

/// The `poll_x` job.
#[tracing::instrument(skip_all, fields(source = "x"))]
pub async fn poll_all(ctx: &Ctx, at: DateTime<Utc>) -> anyhow::Result<String> {
    let x = &ctx.settings.sources.x;
    if x.query.trim().is_empty() {
        return Ok("X is not configured (sources.x.query is empty)".into());
    }
    let token = ctx.settings.secrets.x_bearer_token.as_deref().context("X_BEARER_TOKEN is not set")?;
    let http = super::client()?;
    let r = poll_with_cursor(ctx, KEY, x.every, at, |c| sweep(ctx, &http, token, at, c)).await;
    summarize("X search", vec![(KEY.to_string(), r)])
}
