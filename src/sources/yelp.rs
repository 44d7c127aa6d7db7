//! Yelp Fusion business reviews (`GET /v3/businesses/{id}/reviews`, newest first, API key
//! as a bearer token) for each configured business, mapped to its site. Pages are read
//! until a review at or before the stored newest time; the cursor moves only after every
//! page is stored. A changed rating or text on a known review is a revision of its case.

use super::{http_error, poll_with_cursor, store_page, summarize, Failure};
use crate::config::LocationSettings;
use crate::ctx::Ctx;
use crate::domain::{Mention, RawMention};
use anyhow::Context as _;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

const PAGE: usize = 20;
const MAX_PAGES: usize = 10;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Cursor {
    /// `time_created` of the newest review stored ("YYYY-MM-DD HH:MM:SS", sorts as text).
    pub newest: Option<String>,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    reviews: Vec<Review>,
    #[serde(default)]
    total: usize,
}

#[derive(Deserialize)]
struct Review {
    id: String,
    url: Option<String>,
    text: Option<String>,
    rating: Option<f64>,
    time_created: String,
    user: Option<User>,
}

#[derive(Deserialize)]
struct User {
    name: Option<String>,
}

/// The key of a business's cursor and health.
pub fn key(b: &LocationSettings) -> String {
    format!("yelp:{}", b.id)
}

/// Yelp gives review times in Pacific time, without a zone.
fn posted_at(time_created: &str) -> Option<String> {
    let naive = NaiveDateTime::parse_from_str(time_created, "%Y-%m-%d %H:%M:%S").ok()?;
    let local = chrono_tz::America::Los_Angeles.from_local_datetime(&naive).earliest()?;
    Some(local.with_timezone(&Utc).to_rfc3339())
}

fn to_mention(r: &Review, b: &LocationSettings, now: DateTime<Utc>) -> Option<Mention> {
    let raw = RawMention {
        source: Some("yelp".into()),
        external_id: Some(r.id.clone()),
        url: r.url.clone().or_else(|| b.url.clone()),
        author: r.user.as_ref().and_then(|u| u.name.clone()),
        text: Some(r.text.clone().filter(|t| !t.trim().is_empty()).unwrap_or_else(|| "(rating without text)".into())),
        rating: r.rating,
        posted_at: posted_at(&r.time_created),
        ..Default::default()
    };
    let mut m = raw.scrubbed().parse(None, now).ok()?;
    m.site = Some(b.site.clone());
    Some(m)
}

async fn poll_business(
    ctx: &Ctx,
    http: &reqwest::Client,
    key: &str,
    b: &LocationSettings,
    at: DateTime<Utc>,
    cursor: Cursor,
) -> Result<(Cursor, usize), Failure<Cursor>> {
    let yelp = &ctx.settings.sources.yelp;
    let api_key = ctx.settings.secrets.yelp_api_key.as_deref().context("YELP_API_KEY is not set")?;
    let url = format!("{}/v3/businesses/{}/reviews", yelp.api_url, b.id);
    let mut newest = cursor.newest.clone();
    let mut opened = 0;
    for page_no in 0..MAX_PAGES {
        let offset = page_no * PAGE;
        let query = [("limit", PAGE.to_string()), ("offset", offset.to_string()), ("sort_by", "newest".into())];
        let resp = http
            .get(&url)
            .bearer_auth(api_key)
            .query(&query)
            .send()
            .await
            .with_context(|| format!("calling Yelp for {key}"))?;
        if !resp.status().is_success() {
            return Err(http_error(&format!("Yelp ({key})"), resp).await.into());
        }
        let page: Page = super::decode(&format!("Yelp ({key})"), resp).await?;
        let mentions: Vec<Mention> = page.reviews.iter().filter_map(|r| to_mention(r, b, at)).collect();
        opened += store_page(ctx, &mentions).await?;
        for r in &page.reviews {
            if newest.as_deref().is_none_or(|n| r.time_created.as_str() > n) {
                newest = Some(r.time_created.clone());
            }
        }
        let reached_known =
            cursor.newest.as_deref().is_some_and(|known| page.reviews.iter().any(|r| r.time_created.as_str() <= known));
        if reached_known || page.reviews.len() < PAGE || offset + page.reviews.len() >= page.total {
            break;
        }
    }
    Ok((Cursor { newest }, opened))
}

/// The `poll_yelp` job: every configured business whose interval has passed.
#[tracing::instrument(skip_all, fields(source = "yelp"))]
pub async fn poll_all(ctx: &Ctx, at: DateTime<Utc>) -> anyhow::Result<String> {
    let yelp = &ctx.settings.sources.yelp;
    if yelp.businesses.is_empty() {
        return Ok("no Yelp businesses configured".into());
    }
    let http = super::client()?;
    let mut results = Vec::new();
    for b in &yelp.businesses {
        let key = key(b);
        let r = poll_with_cursor(ctx, &key, yelp.every, at, |c| poll_business(ctx, &http, &key, b, at, c)).await;
        results.push((key, r));
    }
    summarize("Yelp business", results)
}

#[cfg(test)]
mod tests {
    #[test]
    fn yelp_times_are_pacific() {
        assert_eq!(super::posted_at("2026-11-20 14:05:00").unwrap(), "2026-11-20T22:05:00+00:00");
        assert_eq!(super::posted_at("2026-07-20 14:05:00").unwrap(), "2026-07-20T21:05:00+00:00");
        assert!(super::posted_at("yesterday").is_none());
    }
}
