//! RSS/Atom polling (feed-rs): Google Alerts and Talkwalker Alerts, Reddit search feeds,
//! news. Conditional GET (ETag / If-Modified-Since), a minimum interval per feed, alert
//! redirect links unwrapped to the real URL, HTML stripped. The cursor is saved only after
//! the entries are stored; entries seen before are plain duplicates.

use super::{poll_with_cursor, store_page, summarize, Failure};
use crate::config::FeedSettings;
use crate::ctx::Ctx;
use crate::domain::{Mention, RawMention};
use anyhow::Context as _;
use chrono::{DateTime, Utc};
use regex::Regex;
use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

/// Where a feed left off: the validators of its last answer, for a conditional GET.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Cursor {
    etag: Option<String>,
    last_modified: Option<String>,
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
        if let Ok(m) = raw.scrubbed().parse(None, now) {
            out.push(m);
        }
    }
    Ok(out)
}

/// One conditional GET of a feed; its entries are stored before the new validators are
/// returned (and saved by `poll_with_cursor`).
async fn fetch(
    ctx: &Ctx,
    http: &reqwest::Client,
    feed: &FeedSettings,
    at: DateTime<Utc>,
    cursor: Cursor,
) -> Result<(Cursor, usize), Failure<Cursor>> {
    let mut req = http.get(feed.url.as_str());
    if let Some(etag) = &cursor.etag {
        req = req.header(IF_NONE_MATCH, etag);
    }
    if let Some(lm) = &cursor.last_modified {
        req = req.header(IF_MODIFIED_SINCE, lm);
    }
    let resp = req.send().await.with_context(|| format!("fetching feed {}", feed.name))?;
    if resp.status() == reqwest::StatusCode::NOT_MODIFIED {
        return Ok((cursor, 0));
    }
    if !resp.status().is_success() {
        return Err(anyhow::anyhow!("feed {} answered HTTP {}", feed.name, resp.status()).into());
    }
    let header =
        |h| resp.headers().get(h).and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok()).map(str::to_string);
    let next = Cursor { etag: header(ETAG), last_modified: header(LAST_MODIFIED) };
    let body = resp.bytes().await.with_context(|| format!("reading feed {}", feed.name))?;
    let opened = store_page(ctx, &entries(feed, &body, at)?).await?;
    Ok((next, opened))
}

/// The `poll_feeds` job: every configured feed whose interval has passed.
#[tracing::instrument(skip_all, fields(source = "rss"))]
pub async fn poll_all(ctx: &Ctx, at: DateTime<Utc>) -> anyhow::Result<String> {
    let feeds = &ctx.settings.sources.feeds;
    if feeds.is_empty() {
        return Ok("no feeds configured".into());
    }
    let http = super::client()?;
    let mut results = Vec::new();
    for feed in feeds {
        let r = poll_with_cursor(ctx, &feed.name, feed.every, at, |c| fetch(ctx, &http, feed, at, c)).await;
        results.push((feed.name.clone(), r));
    }
    summarize("feed", results)
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
