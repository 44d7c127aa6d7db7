//! RSS/Atom polling (feed-rs): Google Alerts and Talkwalker Alerts, Reddit search feeds,
//! news. Conditional GET (ETag / If-Modified-Since), a minimum interval per feed, alert
//! redirect links unwrapped to the real URL, HTML stripped. The cursor is saved only after
//! the entries are stored; entries seen before are plain duplicates.

use crate::app::Ctx;
use crate::config::FeedSettings;
use crate::domain::{Mention, RawMention};
use crate::intake::{ingest, Ingested};
use anyhow::Context as _;
use chrono::{DateTime, Utc};
use regex::Regex;
use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
struct Cursor {
    etag: Option<String>,
    last_modified: Option<String>,
    polled_at: Option<i64>,
}

static TAGS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?s)<[^>]*>").expect("pattern compiles"));

/// Tags removed, common entities decoded, whitespace folded.
pub fn strip_html(s: &str) -> String {
    let text = TAGS.replace_all(s, " ");
    let text = text
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Google/Talkwalker alert links point at a redirect (`https://www.google.com/url?…&url=REAL`);
/// the card should link to the real page.
pub fn unwrap_link(link: &str) -> String {
    let Ok(url) = reqwest::Url::parse(link) else { return link.to_string() };
    let redirect = url.host_str().is_some_and(|h| h.ends_with("google.com")) && url.path() == "/url"
        || url.host_str().is_some_and(|h| h.ends_with("talkwalker.com")) && url.path().contains("redirect");
    if redirect {
        if let Some((_, real)) = url.query_pairs().find(|(k, _)| k == "url" || k == "q" || k == "u") {
            return real.into_owned();
        }
    }
    link.to_string()
}

/// The feed's entries as mentions (entries without any text are skipped).
pub fn entries(feed: &FeedSettings, body: &[u8], now: DateTime<Utc>) -> anyhow::Result<Vec<Mention>> {
    let parsed = feed_rs::parser::parse(body).with_context(|| format!("feed {} is not valid RSS/Atom", feed.name))?;
    let mut out = Vec::new();
    for e in parsed.entries {
        let title = e.title.map(|t| strip_html(&t.content)).unwrap_or_default();
        let body = e
            .summary
            .map(|t| t.content)
            .or_else(|| e.content.and_then(|c| c.body))
            .map(|b| strip_html(&b))
            .unwrap_or_default();
        let text = match (title.is_empty(), body.is_empty()) {
            (false, false) => format!("{title} — {body}"),
            (false, true) => title,
            (true, _) => body,
        };
        let link = e.links.first().map(|l| unwrap_link(&l.href));
        let raw = RawMention {
            source: Some(feed.source.clone()),
            external_id: Some(if e.id.is_empty() { link.clone().unwrap_or_default() } else { e.id }),
            url: link,
            author: e.authors.first().and_then(|a| a.name.clone()).filter(|n| !n.trim().is_empty()),
            text: Some(text),
            posted_at: e.published.or(e.updated).map(|d| d.to_rfc3339()),
            ..Default::default()
        };
        if let Ok(m) = raw.parse(None, now) {
            out.push(m);
        }
    }
    Ok(out)
}

/// Polls one feed if its interval has passed; returns new cases opened, or `None` if skipped.
pub async fn poll(
    ctx: &Ctx,
    http: &reqwest::Client,
    feed: &FeedSettings,
    at: DateTime<Utc>,
) -> anyhow::Result<Option<usize>> {
    let now = at.timestamp_millis();
    let cursor: Cursor = ctx
        .store
        .source_cursor(&feed.name)
        .await?
        .and_then(|c| c.cursor)
        .and_then(|c| serde_json::from_str(&c).ok())
        .unwrap_or_default();
    if cursor.polled_at.is_some_and(|p| now - p < feed.every.as_millis()) {
        return Ok(None);
    }
    let mut req = http.get(&feed.url);
    if let Some(etag) = &cursor.etag {
        req = req.header(IF_NONE_MATCH, etag);
    }
    if let Some(lm) = &cursor.last_modified {
        req = req.header(IF_MODIFIED_SINCE, lm);
    }
    let result: anyhow::Result<(Cursor, usize)> = async {
        let resp = req.send().await.with_context(|| format!("fetching feed {}", feed.name))?;
        if resp.status() == reqwest::StatusCode::NOT_MODIFIED {
            return Ok((Cursor { polled_at: Some(now), ..cursor }, 0));
        }
        if !resp.status().is_success() {
            anyhow::bail!("feed {} answered HTTP {}", feed.name, resp.status());
        }
        let header =
            |h| resp.headers().get(h).and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok()).map(str::to_string);
        let next = Cursor { etag: header(ETAG), last_modified: header(LAST_MODIFIED), polled_at: Some(now) };
        let body = resp.bytes().await.with_context(|| format!("reading feed {}", feed.name))?;
        let mentions = entries(feed, &body, at)?;
        let mut opened = 0;
        for chunk in mentions.chunks(500) {
            opened += ingest(ctx, chunk).await?.iter().filter(|r| matches!(r, Ingested::Opened(_))).count();
        }
        Ok((next, opened))
    }
    .await;
    match result {
        Ok((next, opened)) => {
            ctx.store.cursor_success(&feed.name, &serde_json::to_string(&next)?, now).await?;
            Ok(Some(opened))
        }
        Err(e) => {
            ctx.store.cursor_error(&feed.name, &format!("{e:#}"), now).await?;
            Err(e)
        }
    }
}

/// The `poll_feeds` job: every configured feed whose interval has passed.
pub async fn poll_all(ctx: &Ctx, at: DateTime<Utc>) -> anyhow::Result<String> {
    let feeds = &ctx.settings.sources.feeds;
    if feeds.is_empty() {
        return Ok("no feeds configured".into());
    }
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .user_agent(concat!("carebot/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let (mut parts, mut failed) = (Vec::new(), 0);
    for feed in feeds {
        match poll(ctx, &http, feed, at).await {
            Ok(None) => {}
            Ok(Some(n)) => parts.push(format!("{}: {n} new", feed.name)),
            Err(e) => {
                failed += 1;
                tracing::warn!(feed = %feed.name, error = %format!("{e:#}"), "feed poll failed; will retry");
                parts.push(format!("{}: failed: {e:#}", feed.name));
            }
        }
    }
    let summary = if parts.is_empty() { "no feed due".to_string() } else { parts.join("; ") };
    if failed == feeds.len() {
        anyhow::bail!("every feed failed: {summary}");
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_redirects_are_unwrapped_and_other_links_kept() {
        let g = "https://www.google.com/url?rct=j&sa=t&url=https://news.example.com/a%3Fb%3D1&ct=ga&cd=CAIyGg";
        assert_eq!(unwrap_link(g), "https://news.example.com/a?b=1");
        assert_eq!(unwrap_link("https://news.example.com/x"), "https://news.example.com/x");
        assert_eq!(unwrap_link("not a url"), "not a url");
    }

    #[test]
    fn html_is_stripped_and_entities_decoded() {
        assert_eq!(
            strip_html("Long <b>waits</b> at&nbsp;Riverside &amp; <i>Eastbrook</i>"),
            "Long waits at Riverside & Eastbrook"
        );
    }
}
