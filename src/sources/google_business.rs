//! Google Business Profile reviews per location (`GET /v4/{location}/reviews`, newest
//! `updateTime` first, `nextPageToken` pages), authorised with an OAuth2 access token
//! obtained from a refresh token at `token_url` and cached until shortly before it expires.
//! A review edited by its author comes back with a new `updateTime`: a changed star rating
//! or text becomes a revision on the existing case (and, when the rating rose after the team
//! replied, a recovery candidate). The cursor moves only after every page is stored.

use super::{http_error, poll_with_cursor, store_page, summarize, Failure};
use crate::config::LocationSettings;
use crate::ctx::Ctx;
use crate::domain::{Mention, RawMention};
use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

const MAX_PAGES: usize = 20;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Cursor {
    /// The newest `updateTime` stored.
    pub newest_update: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    #[serde(default)]
    reviews: Vec<Review>,
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Review {
    review_id: String,
    reviewer: Option<Reviewer>,
    star_rating: Option<String>,
    comment: Option<String>,
    create_time: Option<DateTime<Utc>>,
    update_time: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reviewer {
    display_name: Option<String>,
    #[serde(default)]
    is_anonymous: bool,
}

#[derive(Deserialize)]
struct Token {
    access_token: String,
    #[serde(default = "an_hour")]
    expires_in: u64,
}

fn an_hour() -> u64 {
    3600
}

/// Access tokens by (token URL, client id), with when to stop using them.
static TOKENS: LazyLock<Mutex<HashMap<String, (String, Instant)>>> = LazyLock::new(Default::default);

/// A valid access token: the cached one, or a new one from the refresh-token grant.
pub(super) async fn access_token(ctx: &Ctx, http: &reqwest::Client) -> anyhow::Result<String> {
    access_token_with(&ctx.settings, http).await
}

/// `access_token` from the settings alone (the publisher has no context).
pub(super) async fn access_token_with(
    settings: &crate::config::Settings,
    http: &reqwest::Client,
) -> anyhow::Result<String> {
    let s = &settings.secrets;
    let (Some(id), Some(secret), Some(refresh)) =
        (s.google_client_id.as_deref(), s.google_client_secret.as_deref(), s.google_refresh_token.as_deref())
    else {
        anyhow::bail!(
            "set GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET and GOOGLE_REFRESH_TOKEN to use Google Business Profile"
        );
    };
    let token_url = &settings.sources.google_business.token_url;
    let cache_key = format!("{token_url} {id}");
    if let Some((token, until)) = TOKENS.lock().ok().and_then(|m| m.get(&cache_key).cloned()) {
        if Instant::now() < until {
            return Ok(token);
        }
    }
    let form =
        [("grant_type", "refresh_token"), ("client_id", id), ("client_secret", secret), ("refresh_token", refresh)];
    let resp = http.post(token_url.as_str()).form(&form).send().await.context("calling the Google token endpoint")?;
    if !resp.status().is_success() {
        // The body names the OAuth error (e.g. invalid_grant: the refresh token was revoked).
        // A body that repeats the request must not carry our secrets into a log or a chat.
        let mut said = format!("{:#}", http_error("the Google token endpoint", resp).await);
        for hide in [secret, refresh].into_iter().filter(|h| h.len() >= 4) {
            said = said.replace(hide, "[…]");
        }
        anyhow::bail!(said);
    }
    let t: Token = super::decode("the Google token endpoint", resp).await?;
    // Renew a minute early so a token never expires mid-poll.
    let until = Instant::now() + Duration::from_secs(t.expires_in.saturating_sub(60));
    if let Ok(mut m) = TOKENS.lock() {
        m.insert(cache_key, (t.access_token.clone(), until));
    }
    Ok(t.access_token)
}

pub(super) fn forget_token(ctx: &Ctx) {
    forget_token_with(&ctx.settings)
}

pub(super) fn forget_token_with(settings: &crate::config::Settings) {
    let id = settings.secrets.google_client_id.clone().unwrap_or_default();
    let key = format!("{} {id}", settings.sources.google_business.token_url);
    if let Ok(mut m) = TOKENS.lock() {
        m.remove(&key);
    }
}

fn stars(s: Option<&str>) -> Option<f64> {
    match s? {
        "ONE" => Some(1.0),
        "TWO" => Some(2.0),
        "THREE" => Some(3.0),
        "FOUR" => Some(4.0),
        "FIVE" => Some(5.0),
        _ => None,
    }
}

fn to_mention(r: &Review, loc: &LocationSettings, now: DateTime<Utc>) -> Option<Mention> {
    let author = r.reviewer.as_ref().and_then(|v| {
        if v.is_anonymous {
            Some("A Google user".to_string())
        } else {
            v.display_name.clone()
        }
    });
    let text =
        r.comment.clone().filter(|c| !c.trim().is_empty()).unwrap_or_else(|| "(rating without a comment)".into());
    let raw = RawMention {
        source: Some("google".into()),
        external_id: Some(r.review_id.clone()),
        url: loc.url.clone(),
        author,
        text: Some(text),
        rating: stars(r.star_rating.as_deref()),
        posted_at: r.create_time.or(r.update_time).map(|t| t.to_rfc3339()),
        ..Default::default()
    };
    let mut m = raw.scrubbed().parse(None, now).ok()?;
    m.site = Some(loc.site.clone());
    Some(m)
}

/// The key of a location's cursor and health.
pub fn key(loc: &LocationSettings) -> String {
    format!("google_business:{}", loc.id)
}

async fn poll_location(
    ctx: &Ctx,
    http: &reqwest::Client,
    loc: &LocationSettings,
    at: DateTime<Utc>,
    cursor: Cursor,
) -> Result<(Cursor, usize), Failure<Cursor>> {
    let gbp = &ctx.settings.sources.google_business;
    let token = access_token(ctx, http).await?;
    let url = format!("{}/v4/{}/reviews", gbp.api_url, loc.id.trim_matches('/'));
    let mut newest = cursor.newest_update;
    let (mut opened, mut page_token) = (0, None::<String>);
    for _ in 0..MAX_PAGES {
        let mut query = vec![("pageSize", "50".to_string()), ("orderBy", "updateTime desc".to_string())];
        if let Some(t) = &page_token {
            query.push(("pageToken", t.clone()));
        }
        let resp = http
            .get(&url)
            .bearer_auth(&token)
            .query(&query)
            .send()
            .await
            .with_context(|| format!("calling Google reviews for {}", loc.id))?;
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
            forget_token(ctx); // revoked or expired early: the next poll gets a new one
        }
        if !resp.status().is_success() {
            return Err(http_error(&format!("Google reviews ({})", loc.id), resp).await.into());
        }
        let page: Page = super::decode(&format!("Google reviews ({})", loc.id), resp).await?;
        let mentions: Vec<Mention> = page.reviews.iter().filter_map(|r| to_mention(r, loc, at)).collect();
        opened += store_page(ctx, &mentions).await?;
        let updates = page.reviews.iter().filter_map(|r| r.update_time);
        newest = updates.clone().chain(newest).max();
        let reached_known = cursor.newest_update.is_some_and(|known| updates.clone().any(|u| u <= known));
        match page.next_page_token {
            Some(t) if !reached_known => page_token = Some(t),
            _ => break,
        }
    }
    Ok((Cursor { newest_update: newest }, opened))
}

/// The `poll_google_reviews` job: every configured location whose interval has passed.
#[tracing::instrument(skip_all, fields(source = "google_business"))]
pub async fn poll_all(ctx: &Ctx, at: DateTime<Utc>) -> anyhow::Result<String> {
    let gbp = &ctx.settings.sources.google_business;
    if gbp.locations.is_empty() {
        return Ok("no Google Business Profile locations configured".into());
    }
    let http = super::client()?;
    let mut results = Vec::new();
    for loc in &gbp.locations {
        let key = key(loc);
        let r = poll_with_cursor(ctx, &key, gbp.every, at, |c| poll_location(ctx, &http, loc, at, c)).await;
        results.push((key, r));
    }
    summarize("Google location", results)
}
