//! Listening sources against local fakes of their APIs: Facebook Page webhooks over real
//! HTTP with real signatures, X recent search, Google Business Profile reviews (with its
//! OAuth2 token endpoint) and Yelp Fusion polled through the same cursor machinery, and
//! spike alerts. Each covers pagination, errors, rate limits and a restart between polls.

mod common;
#[path = "fakes/api.rs"]
mod fakes;

use carebot::chat::card::Card;
use carebot::clock::{Clock, FixedClock};
use carebot::config::{LocationSettings, Settings};
use carebot::domain::{Action, Outcome};
use carebot::store::cases::Table;
use carebot::store::{Backend, CaseFilter, CaseRow, MentionRow};
use carebot::workflow::act;
use carebot::{App, Ctx};
use chrono::Duration;
use common::*;
use fakes::{ok, status, FakeApi, Reply};
use serde_json::{json, Value};
use std::sync::Arc;

struct Setup {
    ctx: Ctx,
    clock: Arc<FixedClock>,
    chat: Arc<Recorder>,
    settings: Settings,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

async fn setup(b: Backend, configure: impl FnOnce(&mut Settings)) -> Setup {
    let db = TestDb::new(b).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&db, &dir.path().join("inbox"));
    configure(&mut s);
    let clock = Arc::new(FixedClock::new(t0()));
    let chat = Arc::new(Recorder::default());
    let ctx = Ctx::new(s.clone(), chat.clone(), clock.clone() as Arc<dyn Clock>).await.unwrap();
    Setup { ctx, clock, chat, settings: s, _db: db, _dir: dir }
}

impl Setup {
    /// A new process on the same database (a restart between polls).
    async fn restart(&mut self) {
        self.ctx =
            Ctx::new(self.settings.clone(), self.chat.clone(), self.clock.clone() as Arc<dyn Clock>).await.unwrap();
    }
}

/// The case and mention of a source's post, by its id there.
async fn by_external(ctx: &Ctx, external_id: &str) -> Option<(CaseRow, MentionRow)> {
    for case in ctx.store.list_cases(&CaseFilter::default()).await.unwrap() {
        let m = ctx.store.mention(case.mention_id).await.unwrap().unwrap();
        if m.external_id == external_id {
            return Some((case, m));
        }
    }
    None
}

fn place(id: &str, site: &str) -> LocationSettings {
    LocationSettings { id: id.into(), site: site.into(), url: Some(format!("https://listing.example/{site}")) }
}

fn q(r: &fakes::Request, k: &str) -> Option<String> {
    r.query.get(k).cloned()
}

// ---------------------------------------------------------------- Facebook

const FB_SECRET: &str = "fb-app-secret-31";
const FB_VERIFY: &str = "carebot-verify-5521";
const RIVERSIDE_PAGE: &str = "104000000000001";

async fn fb_post(base: &str, body: &str, secret: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/ingest/facebook"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(secret) = secret {
        req = req.header("X-Hub-Signature-256", carebot::sources::webhook::sign(secret.as_bytes(), body.as_bytes()));
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn fb_body(changes: Value) -> String {
    json!({"object": "page", "entry": [{"id": RIVERSIDE_PAGE, "time": 1795446000, "changes": changes}]}).to_string()
}

async fn facebook_page_webhooks_verify_check_signatures_and_map_pages(b: Backend) {
    let s = setup(b, |s| {
        s.secrets.facebook_app_secret = Some(FB_SECRET.into());
        s.secrets.facebook_verify_token = Some(FB_VERIFY.into());
        s.sources.facebook.pages.insert(RIVERSIDE_PAGE.into(), "riverside".into());
    })
    .await;
    let app = App::from_ctx(s.ctx).await.unwrap();
    let (base, ctx) = (format!("http://{}", app.addr()), app.ctx());
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    let http = reqwest::Client::new();

    // The subscription handshake echoes the challenge only for the right token.
    let verify = |token: &str| {
        http.get(format!("{base}/ingest/facebook"))
            .query(&[("hub.mode", "subscribe"), ("hub.verify_token", token), ("hub.challenge", "1158201444")])
            .send()
    };
    let res = verify(FB_VERIFY).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "1158201444");
    assert_eq!(verify("guess").await.unwrap().status(), 403);
    assert_eq!(http.get(format!("{base}/ingest/facebook")).send().await.unwrap().status(), 400);

    // A visitor post (about Eastbrook, on the Riverside page), a comment, the page's own
    // reply, a like, a negative recommendation and a mention of the page.
    let body = fb_body(json!([
        {"field": "feed", "value": {"item": "post", "verb": "add", "post_id": "104000000000001_501",
            "message": "My mother waited five hours, the Eastbrook doctor never came &amp; nobody told us why",
            "from": {"id": "9001", "name": "Lena Park"}, "created_time": 1795445000,
            "post": {"permalink_url": "https://www.facebook.com/riverside/posts/501"}}},
        {"field": "feed", "value": {"item": "comment", "verb": "add", "comment_id": "501_77",
            "post_id": "104000000000001_501", "parent_id": "104000000000001_501",
            "message": "Same thing happened to us last week, billing sent us to collections",
            "from": {"id": "9002", "name": "Omar D"}, "created_time": 1795445100}},
        {"field": "feed", "value": {"item": "comment", "verb": "add", "comment_id": "501_78",
            "post_id": "104000000000001_501", "message": "We're sorry, please message us",
            "from": {"id": RIVERSIDE_PAGE, "name": "Riverside Medical Center"}, "created_time": 1795445200}},
        {"field": "feed", "value": {"item": "reaction", "verb": "add", "post_id": "104000000000001_501",
            "reaction_type": "like", "from": {"id": "9003"}}},
        {"field": "ratings", "value": {"item": "rating", "verb": "add", "open_graph_story_id": "88001",
            "recommendation_type": "negative", "review_text": "Rude front desk and a long wait",
            "reviewer_id": "9004", "reviewer_name": "J. Alvarez", "created_time": "2026-11-23T14:40:00+0000"}},
        {"field": "mention", "value": {"item": "post", "verb": "add", "post_id": "9005_31",
            "sender_id": "9005", "sender_name": "Community Group",
            "message": "Shout out to the Riverside ER nurses tonight"}},
    ]));
    let (status, json) = fb_post(&base, &body, Some(FB_SECRET)).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!((json["accepted"].as_i64(), json["opened"].as_i64()), (Some(4), Some(4)), "{json}");
    let (case, m) = by_external(&ctx, "104000000000001_501").await.unwrap();
    assert_eq!(case.site.as_deref(), Some("riverside"), "the page's site wins over words in the text");
    assert_eq!(m.url.as_deref(), Some("https://www.facebook.com/riverside/posts/501"));
    assert_eq!((m.source.as_str(), m.author.as_deref()), ("facebook", Some("Lena Park")));
    let (_, rating) = by_external(&ctx, "88001").await.unwrap();
    assert_eq!(rating.text.as_deref(), Some("Does not recommend: Rude front desk and a long wait"));
    assert!(by_external(&ctx, "501_77").await.is_some());
    assert!(by_external(&ctx, "9005_31").await.is_some(), "a mention of the page");
    assert!(by_external(&ctx, "501_78").await.is_none(), "the page's own reply is not a case");
    let health = ctx.store.source_cursor("facebook").await.unwrap().unwrap();
    assert!(health.last_success_at.is_some() && health.last_error.is_none());

    // Facebook retries deliveries: a replay changes nothing. An edited comment is a revision.
    let (status, json) = fb_post(&base, &body, Some(FB_SECRET)).await;
    assert_eq!((status, json["opened"].as_i64()), (200, Some(0)));
    let edited = fb_body(json!([{"field": "feed", "value": {"item": "comment", "verb": "edited",
        "comment_id": "501_77", "post_id": "104000000000001_501",
        "message": "Same thing happened to us last week, billing sent us to collections twice",
        "from": {"id": "9002", "name": "Omar D"}, "created_time": 1795445100}}]));
    assert_eq!(fb_post(&base, &edited, Some(FB_SECRET)).await.0, 200);
    let (case, _) = by_external(&ctx, "501_77").await.unwrap();
    assert!(ctx.store.events(case.id).await.unwrap().iter().any(|e| e.action == "revised"));

    // Bad signatures (missing, wrong secret, tampered body) are 401; bad bodies 400; nothing changes.
    let before = (ctx.store.count(Table::Mentions).await.unwrap(), ctx.store.count(Table::CaseEvents).await.unwrap());
    let new = fb_body(json!([{"field": "feed", "value": {"item": "post", "verb": "add", "post_id": "1040_9",
        "message": "Parking garage was full again", "from": {"id": "9010", "name": "A"}}}]));
    assert_eq!(fb_post(&base, &new, None).await.0, 401);
    assert_eq!(fb_post(&base, &new, Some("not-the-secret")).await.0, 401);
    let res = http
        .post(format!("{base}/ingest/facebook"))
        .header("X-Hub-Signature-256", carebot::sources::webhook::sign(FB_SECRET.as_bytes(), new.as_bytes()))
        .body(new.replace("full", "closed"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let (status, json) = fb_post(&base, "{\"object\": \"page\", \"entry\": [", Some(FB_SECRET)).await;
    assert_eq!(status, 400);
    assert!(json["error"].as_str().unwrap().starts_with("malformed JSON"), "{json}");
    let (status, json) = fb_post(&base, r#"{"object": "instagram", "entry": []}"#, Some(FB_SECRET)).await;
    assert_eq!(status, 400);
    assert!(json["error"].as_str().unwrap().contains("\"object\": \"page\""), "{json}");
    let after = (ctx.store.count(Table::Mentions).await.unwrap(), ctx.store.count(Table::CaseEvents).await.unwrap());
    assert_eq!(before, after);
    let _ = stop.send(());
}

// ---------------------------------------------------------------- X

fn tweets(items: &[(&str, &str, &str)], newest: Option<&str>, next: Option<&str>) -> Reply {
    let data: Vec<Value> = items
        .iter()
        .map(|(id, user, text)| {
            json!({"id": id, "text": text, "author_id": format!("u-{user}"), "created_at": "2026-11-23T14:55:00.000Z",
                   "edit_history_tweet_ids": [id]})
        })
        .collect();
    let users: Vec<Value> =
        items.iter().map(|(_, user, _)| json!({"id": format!("u-{user}"), "username": user, "name": "X"})).collect();
    let mut meta = json!({"result_count": items.len()});
    if let Some(n) = newest {
        meta["newest_id"] = json!(n);
        meta["oldest_id"] = json!(items.last().unwrap().0);
    }
    if let Some(t) = next {
        meta["next_token"] = json!(t);
    }
    ok(json!({"data": data, "includes": {"users": users}, "meta": meta}))
}

const SEARCH: &str = "/2/tweets/search/recent";

async fn poll(s: &Setup, at: chrono::DateTime<chrono::Utc>) -> anyhow::Result<String> {
    carebot::sources::x::poll_all(&s.ctx, at).await
}

async fn x_search_pages_back_to_since_id_waits_out_rate_limits_and_survives_restarts(b: Backend) {
    let api = FakeApi::start().await;
    let mut s = setup(b, |s| {
        s.sources.x.query = "(\"Riverside Medical\" OR @RiversideMC) -is:retweet".into();
        s.sources.x.api_url = api.url.as_str().into();
        s.sources.x.max_pages = 2.try_into().unwrap();
        s.secrets.x_bearer_token = Some("AAAA-bearer".into());
    })
    .await;

    // First sweep: two pages, newest first.
    api.script(
        SEARCH,
        tweets(
            &[
                ("1005", "pat_r", "Riverside Medical ER: 6 hours &amp; counting, no updates"),
                ("1004", "kim", "@RiversideMC billing charged me twice"),
            ],
            Some("1005"),
            Some("p2"),
        ),
    );
    api.script(SEARCH, tweets(&[("1003", "dev", "Thank you @RiversideMC nurses, amazing care")], Some("1003"), None));
    assert_eq!(poll(&s, t0()).await.unwrap(), "x: 3 new");
    let reqs = api.requests_to(SEARCH);
    assert_eq!(reqs[0].auth.as_deref(), Some("Bearer AAAA-bearer"));
    assert_eq!(q(&reqs[0], "query").unwrap(), "(\"Riverside Medical\" OR @RiversideMC) -is:retweet");
    assert_eq!((q(&reqs[0], "since_id"), q(&reqs[1], "next_token")), (None, Some("p2".into())));
    let (case, m) = by_external(&s.ctx, "1005").await.unwrap();
    assert_eq!(m.text.as_deref(), Some("Riverside Medical ER: 6 hours & counting, no updates"));
    assert_eq!((m.author.as_deref(), m.url.as_deref()), (Some("@pat_r"), Some("https://x.com/pat_r/status/1005")));
    assert_eq!(case.site.as_deref(), Some("riverside"));

    // Within `every`: no call. Then a 429: the reset time is kept and honoured.
    assert_eq!(poll(&s, t0() + Duration::seconds(30)).await.unwrap(), "no X search due");
    let reset = (t0() + Duration::minutes(15)).timestamp();
    api.script(
        SEARCH,
        Reply {
            status: 429,
            headers: vec![
                ("x-rate-limit-reset".into(), reset.to_string()),
                ("x-rate-limit-remaining".into(), "0".into()),
            ],
            body: json!({"title": "Too Many Requests", "detail": "Too Many Requests", "status": 429}),
        },
    );
    let err = poll(&s, t0() + Duration::minutes(3)).await.unwrap_err();
    assert!(err.to_string().contains("429"), "{err}");
    assert_eq!(q(api.requests_to(SEARCH).last().unwrap(), "since_id").as_deref(), Some("1005"));
    let health = s.ctx.store.source_cursor("x").await.unwrap().unwrap();
    assert!(health.last_error.unwrap().contains("rate limit"));
    let calls = api.requests_to(SEARCH).len();
    let out = poll(&s, t0() + Duration::minutes(10)).await.unwrap();
    assert!(out.contains("rate-limited until 15:15:00 UTC"), "{out}");
    assert_eq!(api.requests_to(SEARCH).len(), calls, "no call before the reset");

    // A restart, then a sweep that breaks on its second page: the first page is kept and
    // the next poll resumes at that page, so nothing is skipped or posted twice.
    s.restart().await;
    api.script(
        SEARCH,
        tweets(&[("1009", "ana", "Riverside Medical parking is a nightmare")], Some("1009"), Some("q2")),
    );
    api.script(SEARCH, status(503, json!({"title": "Service Unavailable"})));
    assert!(poll(&s, t0() + Duration::minutes(16)).await.is_err());
    assert!(by_external(&s.ctx, "1009").await.is_some());
    api.script(SEARCH, tweets(&[("1008", "bo", "Riverside Medical lost my x-rays")], Some("1008"), Some("q3")));
    api.script(SEARCH, tweets(&[("1006", "cy", "Riverside Medical front desk was so rude")], Some("1006"), None));
    assert_eq!(poll(&s, t0() + Duration::minutes(17)).await.unwrap(), "x: 2 new");
    let reqs = api.requests_to(SEARCH);
    let n = reqs.len();
    assert_eq!((q(&reqs[n - 2], "next_token"), q(&reqs[n - 2], "since_id")), (Some("q2".into()), Some("1005".into())));
    assert_eq!(q(&reqs[n - 1], "next_token").as_deref(), Some("q3"));
    // The sweep is complete: the next search starts after its newest post.
    api.script(SEARCH, ok(json!({"meta": {"result_count": 0}})));
    assert_eq!(poll(&s, t0() + Duration::minutes(20)).await.unwrap(), "x: 0 new");
    assert_eq!(q(api.requests_to(SEARCH).last().unwrap(), "since_id").as_deref(), Some("1009"));
    assert_eq!(s.ctx.store.count(Table::Cases).await.unwrap(), 6);
    // A page token X no longer accepts: the sweep starts over from since_id, nothing skipped.
    let newest = [("1012", "di", "Riverside Medical discharge paperwork took all day")];
    api.script(SEARCH, tweets(&newest, Some("1012"), Some("r2")));
    api.script(SEARCH, status(400, json!({"title": "Invalid Request", "detail": "Invalid pagination token"})));
    assert!(poll(&s, t0() + Duration::minutes(23)).await.is_err());
    api.script(SEARCH, tweets(&newest, Some("1012"), None));
    assert_eq!(poll(&s, t0() + Duration::minutes(24)).await.unwrap(), "x: 0 new");
    let last = api.requests_to(SEARCH).last().unwrap().clone();
    assert_eq!((q(&last, "next_token"), q(&last, "since_id")), (None, Some("1009".into())));
    let health = s.ctx.store.source_cursor("x").await.unwrap().unwrap();
    assert!(health.last_error.is_none());
    assert!(carebot::ops::sources_table(&s.ctx).await.unwrap().lines().any(|l| l.starts_with("x ")));
}

// ---------------------------------------------------------------- Yelp

const BIZ: &str = "riverside-medical-center-springfield";

/// A review text unlike the others (so storm folding keeps each its own case).
fn distinct_text(i: usize) -> String {
    const WORDS: [&str; 24] = [
        "parking",
        "nurse",
        "billing",
        "lobby",
        "doctor",
        "pharmacy",
        "x-ray",
        "insurance",
        "cafeteria",
        "appointment",
        "phone",
        "portal",
        "receptionist",
        "lab",
        "stitches",
        "prescription",
        "elevator",
        "signage",
        "copay",
        "referral",
        "discharge",
        "wheelchair",
        "interpreter",
        "voicemail",
    ];
    let mut x = (i as u64 + 1).wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let words: Vec<&str> = (0..12)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            WORDS[(x >> 33) as usize % WORDS.len()]
        })
        .collect();
    format!("Review {i} mentions {}", words.join(" "))
}

fn yelp_reviews(ids: std::ops::Range<usize>, total: usize, rating_of: impl Fn(usize) -> u8) -> Reply {
    let reviews: Vec<Value> = ids
        .rev()
        .map(|i| {
            json!({"id": format!("y{i}"), "url": format!("https://www.yelp.com/biz/{BIZ}?hrid=y{i}"),
                   "text": distinct_text(i),
                   "rating": rating_of(i), "time_created": format!("2026-11-{:02} 09:{:02}:00", 1 + i / 60, i % 60),
                   "user": {"id": format!("yu{i}"), "name": format!("Reviewer {i}.")}})
        })
        .collect();
    ok(json!({"reviews": reviews, "total": total, "possible_languages": ["en"]}))
}

async fn yelp_reviews_page_until_known_revise_ratings_and_keep_the_cursor_on_errors(b: Backend) {
    let api = FakeApi::start().await;
    let mut s = setup(b, |s| {
        s.sources.yelp.api_url = api.url.as_str().into();
        s.sources.yelp.businesses.push(place(BIZ, "northgate"));
        s.secrets.yelp_api_key = Some("yelp-key-9".into());
    })
    .await;
    let path = format!("/v3/businesses/{BIZ}/reviews");
    // 25 reviews: a full page of 20 (newest first), then 5.
    api.script(&path, yelp_reviews(5..25, 25, |_| 2));
    api.script(&path, yelp_reviews(0..5, 25, |_| 2));
    let out = carebot::sources::yelp::poll_all(&s.ctx, t0()).await.unwrap();
    assert_eq!(out, format!("yelp:{BIZ}: 25 new"));
    let reqs = api.requests_to(&path);
    assert_eq!(reqs[0].auth.as_deref(), Some("Bearer yelp-key-9"));
    assert_eq!((q(&reqs[0], "offset"), q(&reqs[1], "offset")), (Some("0".into()), Some("20".into())));
    assert_eq!(q(&reqs[0], "sort_by").as_deref(), Some("newest"));
    let (case, m) = by_external(&s.ctx, "y24").await.unwrap();
    assert_eq!(case.site.as_deref(), Some("northgate"), "the business's site, not the text's");
    assert_eq!((m.rating, m.author.as_deref()), (Some(2.0), Some("Reviewer 24.")));
    assert_eq!(m.posted_at, chrono::DateTime::parse_from_rfc3339("2026-11-01T17:24:00Z").unwrap().timestamp_millis());

    // Yelp fails (rate limit): the error is recorded, the cursor stays, nothing is lost.
    api.script(&path, status(429, json!({"error": {"code": "TOO_MANY_REQUESTS_PER_SECOND"}})));
    let err = carebot::sources::yelp::poll_all(&s.ctx, t0() + Duration::hours(1)).await.unwrap_err();
    assert!(err.to_string().contains("HTTP 429"), "{err}");
    let metrics = carebot::http::render_metrics(&s.ctx).await.unwrap();
    assert!(metrics.contains(&format!("carebot_source_failing{{source=\"yelp:{BIZ}\"}} 1")), "{metrics}");

    // An answer that does not fit: refused without quoting it (it may hold a post's text).
    api.script(&path, ok(json!({"reviews": "Waited five hours in pain at Northgate", "total": 1})));
    let err = carebot::sources::yelp::poll_all(&s.ctx, t0() + Duration::minutes(90)).await.unwrap_err();
    assert!(err.to_string().contains("answered JSON carebot cannot read"), "{err}");
    let health = s.ctx.store.source_cursor(&format!("yelp:{BIZ}")).await.unwrap().unwrap();
    assert!(!health.last_error.unwrap().contains("Waited"), "no post text in the health table");
    assert_eq!(s.ctx.store.count(Table::Cases).await.unwrap(), 25);

    // After a restart: two new reviews and a known one whose rating changed; one page is
    // enough because it reaches reviews already stored.
    s.restart().await;
    api.script(&path, yelp_reviews(7..27, 27, |i| if i == 24 { 4 } else { 2 }));
    let out = carebot::sources::yelp::poll_all(&s.ctx, t0() + Duration::hours(2)).await.unwrap();
    assert_eq!(out, format!("yelp:{BIZ}: 2 new"));
    assert_eq!(api.requests_to(&path).len(), 5, "stopped at known reviews");
    assert_eq!(s.ctx.store.count(Table::Cases).await.unwrap(), 27);
    let (case, m) = by_external(&s.ctx, "y24").await.unwrap();
    assert_eq!(m.rating, Some(4.0));
    let revised = s.ctx.store.events(case.id).await.unwrap();
    let revised = revised.iter().find(|e| e.action == "revised").unwrap();
    assert_eq!((revised.detail["old_rating"].as_f64(), revised.detail["new_rating"].as_f64()), (Some(2.0), Some(4.0)));
    assert!(case.recovery_at.is_none(), "nobody had replied, so not a recovery candidate");
    assert!(s.ctx.store.source_cursor(&format!("yelp:{BIZ}")).await.unwrap().unwrap().last_error.is_none());
}

// ---------------------------------------------------------------- Google Business Profile

const LOC: &str = "accounts/1099/locations/5521";
const TOKEN: &str = "/token";

fn gbp_review(id: &str, stars: &str, comment: Option<&str>, updated: &str) -> Value {
    let mut r = json!({
        "name": format!("{LOC}/reviews/{id}"), "reviewId": id,
        "reviewer": {"displayName": format!("Guest {id}"), "profilePhotoUrl": "https://lh3.example/p.png", "isAnonymous": false},
        "starRating": stars, "createTime": "2026-11-20T10:00:00Z", "updateTime": updated,
    });
    if let Some(c) = comment {
        r["comment"] = json!(c);
    }
    r
}

async fn google_reviews_use_oauth_paginate_and_mark_recovery_after_a_reply(b: Backend) {
    let api = FakeApi::start().await;
    let s = setup(b, |s| {
        let g = &mut s.sources.google_business;
        g.api_url = api.url.as_str().into();
        g.token_url = format!("{}{TOKEN}", api.url).as_str().into();
        g.locations.push(place(LOC, "eastbrook"));
        s.secrets.google_client_id = Some(format!("client-{}", api.url)); // one token cache entry per test
        s.secrets.google_client_secret = Some("g-secret".into());
        s.secrets.google_refresh_token = Some("1//refresh-abc".into());
    })
    .await;
    let path = format!("/v4/{LOC}/reviews");
    let poll = |at| carebot::sources::google_business::poll_all(&s.ctx, at);

    // A revoked refresh token: a clear error, nothing fetched.
    api.script(
        TOKEN,
        status(400, json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."})),
    );
    let err = poll(t0()).await.unwrap_err();
    assert!(err.to_string().contains("invalid_grant"), "{err}");
    assert!(api.requests_to(&path).is_empty());

    api.script(TOKEN, ok(json!({"access_token": "ya29.token-1", "expires_in": 3599, "token_type": "Bearer"})));
    api.script(
        &path,
        ok(json!({"reviews": [
            gbp_review("r3", "ONE", Some("Waited 3 hours at the urgent care and the front desk was rude"), "2026-11-23T14:00:00Z"),
            gbp_review("r2", "FIVE", Some("Fast and friendly, thank you!"), "2026-11-22T14:00:00Z"),
        ], "averageRating": 3.0, "totalReviewCount": 3, "nextPageToken": "page-2"})),
    );
    api.script(&path, ok(json!({"reviews": [gbp_review("r1", "TWO", None, "2026-11-21T14:00:00Z")]})));
    assert_eq!(poll(t0()).await.unwrap(), format!("google_business:{LOC}: 3 new"));
    let token_req = &api.requests_to(TOKEN)[1];
    for part in ["grant_type=refresh_token", "refresh_token=1%2F%2Frefresh-abc", "client_secret=g-secret"] {
        assert!(token_req.body.contains(part), "{part} in {}", token_req.body);
    }
    let reqs = api.requests_to(&path);
    assert_eq!(reqs[0].auth.as_deref(), Some("Bearer ya29.token-1"));
    assert_eq!(q(&reqs[1], "pageToken").as_deref(), Some("page-2"));
    let (case, m) = by_external(&s.ctx, "r3").await.unwrap();
    assert_eq!((case.site.as_deref(), m.rating, m.source.as_str()), (Some("eastbrook"), Some(1.0), "google"));
    let (_, rating_only) = by_external(&s.ctx, "r1").await.unwrap();
    assert_eq!((rating_only.rating, rating_only.text.as_deref()), (Some(2.0), Some("(rating without a comment)")));

    // The team replies publicly; later the reviewer edits the review up to four stars.
    act(&s.ctx, case.id, "priya", Action::Claim).await.unwrap();
    let reply = "We're sorry about your wait. Please email care.eastbrook@lakeshore-health.example so we can help.";
    act(&s.ctx, case.id, "priya", Action::Respond { text: Some(reply.into()), override_block: false }).await.unwrap();
    api.script(
        &path,
        ok(json!({"reviews": [
            gbp_review("r3", "FOUR", Some("Update: the manager called me back and sorted it out."), "2026-11-23T18:00:00Z"),
            gbp_review("r2", "FIVE", Some("Fast and friendly, thank you!"), "2026-11-22T14:00:00Z"),
        ], "nextPageToken": "page-2"})),
    );
    s.clock.set(t0() + Duration::hours(4));
    assert_eq!(poll(t0() + Duration::hours(4)).await.unwrap(), format!("google_business:{LOC}: 0 new"));
    assert_eq!(api.requests_to(TOKEN).len(), 2, "the access token is reused until it expires");
    assert_eq!(api.requests_to(&path).len(), 3, "stopped at a review already stored");
    let (case, m) = by_external(&s.ctx, "r3").await.unwrap();
    assert_eq!(m.rating, Some(4.0));
    assert!(case.recovery_at.is_some(), "rating rose after our reply");
    let events = s.ctx.store.events(case.id).await.unwrap();
    let card = Card::build(&case, &m, &events, &s.ctx.playbooks());
    assert!(card.to_text().contains("Recovery candidate"), "{}", card.to_text());
    let date = (t0() + Duration::hours(4)).with_timezone(&s.ctx.playbooks().team.timezone).date_naive();
    let digest = carebot::digest::gather(&s.ctx, date).await.unwrap();
    assert!(digest.recoveries.iter().any(|r| r.case_id == case.id && r.after_reply && r.from == 1.0 && r.to == 4.0));
    assert!(digest.to_text().contains(&format!("#{}: 1★ → 4★ — recovery candidate", case.id)), "{}", digest.to_text());
    // Resolving it as recovered still works as usual.
    act(&s.ctx, case.id, "priya", Action::Resolve { outcome: Outcome::Recovered, note: None }).await.unwrap();
}

// ---------------------------------------------------------------- spikes

async fn a_site_spike_alerts_the_leads_once_per_cooldown(b: Backend) {
    let s = setup(b, |_| {}).await;
    let check = |at| carebot::jobs::spikes::check(&s.ctx, at);
    assert_eq!(check(t0()).await.unwrap(), "not enough history for a baseline yet");

    // A quiet week: one Northgate mention a day.
    for day in 1..=7 {
        let at = t0() - Duration::days(day);
        s.clock.set(at);
        let mut m = mention("google", &format!("base-{day}"), &format!("Northgate clinic visit {day} was fine"), None);
        m.posted_at = at;
        carebot::intake::ingest(&s.ctx, &[m]).await.unwrap();
    }
    s.clock.set(t0());
    assert_eq!(check(t0()).await.unwrap(), "no spike");

    // Then ten complaints about Northgate within the hour.
    let burst: Vec<_> = (0..10)
        .map(|i| {
            let mut m = mention(
                "x",
                &format!("burst-{i}"),
                &format!("Northgate closed the walk-in again, case {i} of many"),
                None,
            );
            m.posted_at = t0() - Duration::minutes(5 * i);
            m
        })
        .collect();
    carebot::intake::ingest(&s.ctx, &burst).await.unwrap();
    let before = s.chat.calls().len();
    let out = check(t0()).await.unwrap();
    assert!(out.contains("site:northgate (10 vs 0.0 usual)"), "{out}");
    carebot::jobs::outbox::deliver_due(&s.ctx, t0()).await.unwrap();
    let calls = s.chat.calls()[before..].to_vec();
    let dm = calls
        .iter()
        .find_map(|c| match c {
            Call::Dm { person, text } if person == "dena" && text.contains("Northgate") => Some(text.clone()),
            _ => None,
        })
        .expect("the lead gets a DM");
    assert!(dm.contains("10 mentions about Northgate Family Clinic in the last 1h"), "{dm}");
    assert!(!dm.contains("walk-in"), "no mention text in alerts: {dm}");
    assert!(calls.iter().any(|c| matches!(c, Call::Channel { channel, .. } if channel == "px-triage")));

    // Within the cooldown: no second alert for the same site.
    assert!(!check(t0() + Duration::minutes(30)).await.unwrap().contains("site:northgate"));
}

on_both_backends!(
    facebook_page_webhooks_verify_check_signatures_and_map_pages,
    x_search_pages_back_to_since_id_waits_out_rate_limits_and_survives_restarts,
    yelp_reviews_page_until_known_revise_ratings_and_keep_the_cursor_on_errors,
    google_reviews_use_oauth_paginate_and_mark_recovery_after_a_reply,
    a_site_spike_alerts_the_leads_once_per_cooldown
);

#[test]
fn a_broken_spike_section_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(repo().join("playbooks")).unwrap() {
        let f = f.unwrap();
        if f.file_type().unwrap().is_file() {
            std::fs::copy(f.path(), dir.path().join(f.file_name())).unwrap();
        }
    }
    let copy = |from: &str| {
        let _ = std::fs::create_dir_all(dir.path().join(from));
        for f in std::fs::read_dir(repo().join("playbooks").join(from)).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), dir.path().join(from).join(f.file_name())).unwrap();
        }
    };
    copy("replies");
    let triage = std::fs::read_to_string(dir.path().join("triage.yaml")).unwrap();
    let problems = |from: &str, to: &str| {
        let broken = triage.replace(from, to);
        assert_ne!(broken, triage);
        std::fs::write(dir.path().join("triage.yaml"), broken).unwrap();
        let err = carebot::playbook::Playbooks::load(dir.path()).unwrap_err();
        err.0.iter().map(|p| p.to_string()).collect::<Vec<_>>()
    };
    let text = problems("  factor: 3 ", "  factor: 0.5 ");
    assert!(
        text.iter()
            .any(|p| p.ends_with("triage.yaml:21: spike.factor must be above 1 (3 = three times the usual rate)")),
        "{text:?}"
    );
    let text = problems("channel: px-triage ", "channel: nowhere ");
    assert!(
        text.iter()
            .any(|p| p.ends_with("triage.yaml:24: spike.channel: \"nowhere\" is not a channel in situations.yaml")),
        "{text:?}"
    );
}

#[tokio::test]
async fn a_listing_mapped_to_an_unknown_site_stops_start_up() {
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&db, &dir.path().join("inbox"));
    s.sources.yelp.businesses.push(place("southside-clinic", "southside"));
    let clock = Arc::new(FixedClock::new(t0())) as Arc<dyn Clock>;
    let err = Ctx::new(s, Arc::new(Recorder::default()), clock).await.err().expect("refused");
    assert!(
        err.to_string().contains("sources.yelp.businesses southside-clinic: site \"southside\" is not in team.yaml"),
        "{err}"
    );
}
