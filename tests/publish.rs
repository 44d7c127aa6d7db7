//! Publishing a reply where the review lives (`respond --publish`), against a local fake of
//! Google Business Profile, the Facebook Graph API and X API v2 that checks method, path,
//! token, body and length: the post, a retry after a lost answer that does not post twice,
//! a policy refusal and an expired token that reach the agent, dry-run, and the refusals
//! that change nothing.

mod common;
#[path = "fakes/platforms.rs"]
mod platforms;

use carebot::clock::{Clock, FixedClock};
use carebot::config::PublishMode;
use carebot::domain::Action;
use carebot::drafting::{submit_reply, Replied};
use carebot::errors::ActError;
use carebot::intake::ingest;
use carebot::jobs::outbox::deliver_due;
use carebot::store::Backend;
use carebot::workflow::{act, ReplyOptions};
use carebot::{Ctx, Settings};
use chrono::Duration;
use common::*;
use platforms::*;
use std::sync::Arc;

const LOC: &str = "accounts/1/locations/9";
const REPLY: &str =
    "We're sorry about the wait. Please email patientrelations.riverside@lakeshore-health.example so we can help.";

struct Setup {
    ctx: Ctx,
    chat: Arc<Recorder>,
    clock: Arc<FixedClock>,
    fake: FakePlatforms,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

async fn setup(b: Backend, configure: impl FnOnce(&mut Settings)) -> Setup {
    let fake = FakePlatforms::start().await;
    let db = TestDb::new(b).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&db, &dir.path().join("inbox"));
    s.publish.mode = PublishMode::Live;
    s.publish.sites.insert("riverside".into(), vec!["google".into(), "facebook".into(), "x".into()]);
    s.publish.sites.insert("northgate".into(), vec!["google".into()]);
    s.publish.facebook_graph_url = format!("{}/v21.0", fake.url).as_str().into();
    let g = &mut s.sources.google_business;
    g.api_url = fake.url.as_str().into();
    g.token_url = format!("{}/token", fake.url).as_str().into();
    g.locations.push(serde_json::from_value(serde_json::json!({"id": LOC, "site": "riverside"})).unwrap());
    s.sources.x.api_url = fake.url.as_str().into();
    s.sources.facebook.pages.insert(PAGE_ID.into(), "riverside".into());
    s.secrets.google_client_id = Some(format!("client-{}", fake.url)); // one token cache entry per test
    s.secrets.google_client_secret = Some("g-secret".into());
    s.secrets.google_refresh_token = Some("1//refresh".into());
    s.secrets.facebook_page_token = Some(PAGE_TOKEN.into());
    s.secrets.x_user_token = Some(X_TOKEN.into());
    configure(&mut s);
    let clock = Arc::new(FixedClock::new(t0()));
    let chat = Arc::new(Recorder::default());
    let mut ctx = Ctx::new(s, chat.clone(), clock.clone() as Arc<dyn Clock>).await.unwrap();
    ctx.publisher = Arc::new(carebot::sources::publish::HttpPublisher::new().unwrap());
    fake.with(|f| f.known_reviews.insert(format!("{LOC}/reviews/g-1")));
    Setup { ctx, chat, clock, fake, _db: db, _dir: dir }
}

/// A claimed case for a mention from `source` with this id.
async fn claimed(s: &Setup, source: &str, id: &str, text: &str) -> i64 {
    let case = ingest(&s.ctx, &[mention(source, id, text, Some(1.0))]).await.unwrap()[0].case_id();
    act(&s.ctx, case, "marcus", Action::Claim).await.unwrap();
    case
}

async fn publish(s: &Setup, case: i64, who: &str, text: &str) -> Result<Replied, ActError> {
    let person = s.ctx.playbooks().team.person(who).unwrap().clone();
    submit_reply(&s.ctx, case, &person, Some(text.to_string()), false, live()).await
}

fn live() -> ReplyOptions {
    ReplyOptions { publish: true, ..Default::default() }
}

async fn unpublish(s: &Setup, case: i64, who: &str) -> Result<String, ActError> {
    act(&s.ctx, case, who, Action::Unpublish { reason: Some("posted on the wrong review".into()) })
        .await
        .map(|d| d.summary)
}

/// The lines the outbox wrote in the cases' threads so far.
fn thread_lines(s: &Setup) -> Vec<String> {
    s.chat
        .calls()
        .into_iter()
        .filter_map(|c| if let Call::Thread { text, .. } = c { Some(text) } else { None })
        .collect()
}

async fn actions(s: &Setup, case: i64) -> Vec<String> {
    s.ctx.store.events(case).await.unwrap().into_iter().map(|e| e.action).collect()
}

async fn a_google_reply_is_posted_once_and_shown_on_the_card(b: Backend) {
    let s = setup(b, |_| {}).await;
    let case = claimed(&s, "google", "g-1", "Waited 4 hours at Riverside").await;
    s.clock.set(t0() + Duration::minutes(2));
    let done = publish(&s, case, "marcus", REPLY).await.unwrap();
    let Replied::Responded(acted) = done else { panic!("not responded") };
    assert_eq!(acted.summary, "reply by Marcus Bell sent to Google; it shows as replied once Google takes it");
    deliver_due(&s.ctx, t0() + Duration::minutes(2)).await.unwrap();
    assert_eq!(s.fake.with(|f| f.google_replies.get(&format!("{LOC}/reviews/g-1")).cloned()), Some(REPLY.to_string()));
    let events = s.ctx.store.events(case).await.unwrap();
    let published = events.iter().find(|e| e.action == "published").expect("the post is recorded");
    deliver_due(&s.ctx, t0() + Duration::minutes(3)).await.unwrap(); // the card and thread line it queued
    assert_eq!(published.detail["remote_id"], format!("{LOC}/reviews/g-1/reply"));
    assert_eq!(published.actor, "marcus");
    let lines: Vec<String> = s
        .chat
        .calls()
        .into_iter()
        .filter_map(|c| if let Call::Thread { text, .. } = c { Some(text) } else { None })
        .collect();
    assert!(lines.iter().any(|l| l == "replied on Google at 09:02 by Marcus Bell"), "{lines:?}");
    // Delivering again posts nothing more.
    deliver_due(&s.ctx, t0() + Duration::minutes(10)).await.unwrap();
    assert_eq!(s.fake.writes(), 1);
}

/// The platform did the work but the answer was lost (503): the retry finds the reply and
/// does not post it again, on each platform.
async fn a_retry_after_a_lost_answer_does_not_post_twice(b: Backend) {
    let s = setup(b, |_| {}).await;
    let fb = claimed(&s, "facebook", "1001_555", "Parking at Riverside is awful").await;
    let x = claimed(&s, "x", "1860000000000000001", "Riverside ER wait is 5 hours").await;
    let g = claimed(&s, "google", "g-1", "Waited 4 hours at Riverside").await;
    s.fake.with(|f| f.fail_after_write = 3);
    for case in [fb, x, g] {
        publish(&s, case, "marcus", REPLY).await.unwrap();
    }
    deliver_due(&s.ctx, t0()).await.unwrap();
    assert_eq!(s.fake.writes(), 3, "each platform was written once");
    for case in [fb, x, g] {
        assert!(
            !actions(&s, case).await.contains(&"published".to_string()),
            "not recorded before the platform says so"
        );
    }
    deliver_due(&s.ctx, t0() + Duration::minutes(5)).await.unwrap();
    s.fake.with(|f| {
        assert_eq!(f.fb_comments["1001_555"].len(), 1, "Facebook: found by the lookup, not posted again");
        assert_eq!(f.tweets.len(), 1, "X: the duplicate refusal means the first post went through");
        assert_eq!(f.google_replies.len(), 1, "Google: the second PUT replaced the same reply");
    });
    for case in [fb, x, g] {
        let n = actions(&s, case).await.iter().filter(|a| *a == "published").count();
        assert_eq!(n, 1, "case {case}");
    }
    let fb_event = s.ctx.store.events(fb).await.unwrap().into_iter().find(|e| e.action == "published").unwrap();
    assert_eq!(fb_event.detail["remote_id"], "1001_555_9000");
}

/// Facebook refuses the reply (policy) or the page token has expired: the case says so, the
/// agent gets a DM with the reason, and the message is kept as failed, not retried.
async fn a_refused_reply_or_expired_token_reaches_the_agent(b: Backend) {
    let s = setup(b, |_| {}).await;
    let policy = claimed(&s, "facebook", "1001_1", "Parking at Riverside is awful").await;
    s.fake.with(|f| {
        f.refuse_next = Some((400, serde_json::json!({"error": {"message": "(#368) The action attempted has been deemed abusive or is otherwise disallowed", "type": "OAuthException", "code": 368}})))
    });
    publish(&s, policy, "marcus", REPLY).await.unwrap();
    deliver_due(&s.ctx, t0()).await.unwrap();
    let failed = s.ctx.store.events(policy).await.unwrap().into_iter().find(|e| e.action == "publish_failed").unwrap();
    assert!(failed.detail["reason"].as_str().unwrap().contains("(#368)"), "{failed:?}");
    deliver_due(&s.ctx, t0()).await.unwrap(); // the DM and thread line it queued
    let dms: Vec<String> = s
        .chat
        .calls()
        .into_iter()
        .filter_map(|c| if let Call::Dm { person, text } = c { (person == "marcus").then_some(text) } else { None })
        .collect();
    assert!(
        dms.iter().any(|t| t.contains(&format!("case #{policy} was not posted to Facebook")) && t.contains("(#368)")),
        "{dms:?}"
    );
    assert_eq!(s.ctx.store.outbox_depth().await.unwrap().1, 1, "kept as failed for `carebot outbox`");

    let expired = claimed(&s, "facebook", "1001_2", "Rude staff at Riverside").await;
    s.fake.with(|f| f.expired_page_token = true);
    publish(&s, expired, "marcus", REPLY).await.unwrap();
    deliver_due(&s.ctx, t0() + Duration::minutes(1)).await.unwrap();
    let failed = s.ctx.store.events(expired).await.unwrap().into_iter().find(|e| e.action == "publish_failed").unwrap();
    assert!(failed.detail["reason"].as_str().unwrap().contains("Session has expired"), "{failed:?}");
    assert!(s.fake.with(|f| f.fb_comments.is_empty()));
}

async fn dry_run_records_what_would_be_posted_and_sends_nothing(b: Backend) {
    let s = setup(b, |s| s.publish.mode = PublishMode::DryRun).await;
    let case = claimed(&s, "x", "1860000000000000009", "Riverside ER wait is 5 hours").await;
    let Replied::Responded(acted) = publish(&s, case, "marcus", REPLY).await.unwrap() else { panic!("not responded") };
    assert_eq!(acted.summary, "reply marked responded by Marcus Bell; dry run: not sent to X");
    deliver_due(&s.ctx, t0()).await.unwrap();
    assert!(s.fake.with(|f| f.requests.is_empty()), "nothing reached X");
    let e = s.ctx.store.events(case).await.unwrap().into_iter().find(|e| e.action == "publish_dry_run").unwrap();
    assert_eq!((e.detail["platform"].as_str(), e.detail["text"].as_str()), (Some("x"), Some(REPLY)));
}

/// What cannot be published is refused before anything is recorded: the case stays claimed.
async fn replies_that_cannot_be_published_are_refused_and_change_nothing(b: Backend) {
    let s = setup(b, |_| {}).await;
    let yelp = claimed(&s, "yelp", "y-1", "Billed twice at Riverside").await;
    let err = publish(&s, yelp, "marcus", REPLY).await.err().unwrap().to_string();
    assert!(err.contains("yelp has no reply API carebot can post to"), "{err}");
    let x = claimed(&s, "x", "1860000000000000002", "Riverside ER wait is 5 hours").await;
    let long = format!("{REPLY} {}", "We value your feedback. ".repeat(10));
    let err = publish(&s, x, "marcus", &long).await.err().unwrap().to_string();
    assert!(err.contains("too_long"), "the reply check names it first: {err}");
    // A lead may accept the finding for a reply posted by hand, never for one sent to X.
    let dena = s.ctx.playbooks().team.person("dena").unwrap().clone();
    let err = submit_reply(&s.ctx, x, &dena, Some(long.clone()), true, live()).await.err().unwrap().to_string();
    assert!(err.contains("X takes at most 280 characters; this reply has"), "{err}");
    let northgate =
        ingest(&s.ctx, &[mention("facebook", "2002_1", "Billed twice at Northgate", None)]).await.unwrap()[0].case_id();
    act(&s.ctx, northgate, "grace", Action::Claim).await.unwrap();
    let err = publish(&s, northgate, "grace", "We're sorry. Please email feedback.northgate@lakeshore-health.example.")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("publishing to Facebook is not enabled for Northgate Family Clinic"), "{err}");
    for case in [yelp, x, northgate] {
        assert_eq!(s.ctx.store.case(case).await.unwrap().unwrap().state.as_str(), "claimed");
    }
    deliver_due(&s.ctx, t0()).await.unwrap();
    assert!(s.fake.with(|f| f.requests.is_empty()));

    let off = setup(b, |s| s.publish.mode = PublishMode::Off).await;
    let g = claimed(&off, "google", "g-1", "Waited 4 hours at Riverside").await;
    let err = publish(&off, g, "marcus", REPLY).await.err().unwrap().to_string();
    assert!(err.contains("publishing is off"), "{err}");
}

/// On a clinical/legal-risk case the published text is the one a lead approved: an agent's
/// publish goes for approval first, and only the approved text is posted.
async fn a_risk_reply_is_published_only_as_approved(b: Backend) {
    let s = setup(b, |_| {}).await;
    let case = ingest(
        &s.ctx,
        &[mention("google", "g-1", "Wrong medication given at Riverside, my lawyer will call", Some(1.0))],
    )
    .await
    .unwrap()[0]
        .case_id();
    act(&s.ctx, case, "marcus", Action::Claim).await.unwrap();
    let text = "We take this seriously. Please email patientrelations.riverside@lakeshore-health.example so we can look into it.";
    assert!(matches!(publish(&s, case, "marcus", text).await.unwrap(), Replied::SentForApproval));
    deliver_due(&s.ctx, t0()).await.unwrap();
    assert_eq!(s.fake.writes(), 0, "nothing is posted before a lead approves");
    act(&s.ctx, case, "dena", Action::ApproveReply { text: text.into() }).await.unwrap();
    deliver_due(&s.ctx, t0()).await.unwrap();
    assert_eq!(s.fake.writes(), 0, "an approval alone posts nothing");
    let dms: Vec<String> = s
        .chat
        .calls()
        .into_iter()
        .filter_map(|c| if let Call::Dm { person, text } = c { (person == "marcus").then_some(text) } else { None })
        .collect();
    assert!(
        dms.iter().any(|t| t.contains("approved your reply") && t.contains(&format!("/care respond {case} --publish"))),
        "the agent who asked to publish is told how: {dms:?}"
    );
    assert!(matches!(publish(&s, case, "marcus", text).await.unwrap(), Replied::Responded(_)));
    deliver_due(&s.ctx, t0() + Duration::minutes(1)).await.unwrap();
    assert_eq!(s.fake.with(|f| f.google_replies.values().cloned().collect::<Vec<_>>()), [text]);
    let queued = s.ctx.store.events(case).await.unwrap().into_iter().find(|e| e.action == "respond").unwrap();
    assert_eq!(queued.detail["approved_by"], "dena");
}

/// X refused a reply; the agent published an edited one. Sending the failed one again by
/// hand neither posts it next to the new one nor takes X's "duplicate" for a success; and a
/// case already answered on a platform is not answered there twice.
async fn a_refused_reply_sent_again_never_lands_beside_the_newer_one(b: Backend) {
    let s = setup(b, |_| {}).await;
    let case = claimed(&s, "x", "1860000000000000003", "Riverside ER wait is 5 hours").await;
    s.fake.with(|f| {
        f.refuse_next = Some((
            400,
            serde_json::json!({"title": "Invalid Request", "detail": "One or more parameters to your request was invalid.",
                "errors": [{"message": "Your Tweet text contains a disallowed link"}]}),
        ))
    });
    publish(&s, case, "marcus", REPLY).await.unwrap();
    deliver_due(&s.ctx, t0()).await.unwrap();
    let failed = s.ctx.store.events(case).await.unwrap().into_iter().find(|e| e.action == "publish_failed").unwrap();
    assert!(failed.detail["reason"].as_str().unwrap().contains("disallowed link"), "X's own reason: {failed:?}");
    let edited = "We're sorry about the wait. Please email patientrelations.riverside@lakeshore-health.example.";
    publish(&s, case, "marcus", edited).await.unwrap();
    deliver_due(&s.ctx, t0() + Duration::minutes(1)).await.unwrap();
    assert_eq!(s.fake.with(|f| f.tweets.len()), 1);
    // `carebot outbox retry --failed`: the old text must not follow the new one.
    s.ctx.store.outbox_requeue(None, s.ctx.now_ms()).await.unwrap();
    deliver_due(&s.ctx, t0() + Duration::minutes(2)).await.unwrap();
    assert_eq!(s.fake.with(|f| f.tweets.iter().map(|t| t.1.clone()).collect::<Vec<_>>()), [edited]);
    assert_eq!(actions(&s, case).await.iter().filter(|a| *a == "published").count(), 1);
    let again = "Thank you for waiting. Please email patientrelations.riverside@lakeshore-health.example.";
    let err = publish(&s, case, "marcus", again).await.err().unwrap().to_string();
    assert!(err.contains("already has our reply on X"), "{err}");

    // A definite refusal sent again by hand is not mistaken for an earlier success.
    let dup = claimed(&s, "x", "1860000000000000004", "Riverside parking is awful").await;
    publish(&s, dup, "marcus", edited).await.unwrap(); // the same text X already has
    deliver_due(&s.ctx, t0() + Duration::minutes(3)).await.unwrap();
    s.ctx.store.outbox_requeue(None, s.ctx.now_ms()).await.unwrap();
    deliver_due(&s.ctx, t0() + Duration::minutes(4)).await.unwrap();
    assert!(!actions(&s, dup).await.contains(&"published".to_string()), "X refused it as a duplicate both times");
}

/// Publishing again on a case already answered changes our reply in place (Google, Facebook);
/// X cannot edit, so the agent takes the post down and publishes afresh. Each change and
/// removal is recorded and shown in the thread.
async fn a_published_reply_is_changed_in_place_or_taken_down(b: Backend) {
    let s = setup(b, |_| {}).await;
    let g = claimed(&s, "google", "g-1", "Waited 4 hours at Riverside").await;
    let fb = claimed(&s, "facebook", "1001_7", "Parking at Riverside is awful").await;
    let x = claimed(&s, "x", "1860000000000000011", "Riverside ER wait is 5 hours").await;
    for case in [g, fb, x] {
        publish(&s, case, "marcus", REPLY).await.unwrap();
    }
    deliver_due(&s.ctx, t0()).await.unwrap();
    let better =
        "Thank you for telling us, and we're sorry. Please email patientrelations.riverside@lakeshore-health.example.";
    for case in [g, fb] {
        let Replied::Responded(acted) = publish(&s, case, "marcus", better).await.unwrap() else { panic!() };
        assert!(acted.summary.starts_with("changed reply by Marcus Bell sent to"), "{}", acted.summary);
    }
    let err = publish(&s, x, "marcus", better).await.err().unwrap().to_string();
    assert!(err.contains("X posts cannot be edited") && err.contains(&format!("carebot case unpublish {x}")), "{err}");
    s.clock.set(t0() + Duration::minutes(10));
    deliver_due(&s.ctx, t0() + Duration::minutes(10)).await.unwrap();
    s.fake.with(|f| {
        assert_eq!(f.google_replies[&format!("{LOC}/reviews/g-1")], better);
        assert_eq!(f.fb_comments["1001_7"].len(), 1, "edited, not posted beside");
        assert_eq!(f.fb_comments["1001_7"][0].1, better);
    });
    for case in [g, fb] {
        assert_eq!(actions(&s, case).await.iter().filter(|a| *a == "reply_edited").count(), 1, "case {case}");
    }
    deliver_due(&s.ctx, t0() + Duration::minutes(10)).await.unwrap();
    let lines = thread_lines(&s);
    assert!(lines.iter().any(|l| l == "our reply on Facebook was changed at 09:10 by Marcus Bell"), "{lines:?}");

    // Taken down: X's post (the answer is lost once; the retry finds it gone and does
    // not fail), and Google's reply.
    s.fake.with(|f| f.fail_after_write = 1);
    unpublish(&s, x, "marcus").await.unwrap();
    unpublish(&s, g, "dena").await.unwrap(); // a lead may too
    deliver_due(&s.ctx, t0() + Duration::minutes(11)).await.unwrap();
    deliver_due(&s.ctx, t0() + Duration::minutes(20)).await.unwrap();
    s.fake.with(|f| {
        assert!(f.tweets.is_empty(), "the X post is gone");
        assert!(f.google_replies.is_empty(), "the Google reply is gone");
    });
    for case in [g, x] {
        assert_eq!(actions(&s, case).await.iter().filter(|a| *a == "unpublished").count(), 1, "case {case}");
    }
    deliver_due(&s.ctx, t0() + Duration::minutes(20)).await.unwrap();
    let lines = thread_lines(&s);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("our reply was taken down from X at") && l.ends_with("(asked by Marcus Bell)")),
        "{lines:?}"
    );
    // Nothing live any more: a second take-down is refused, and X takes a new post.
    let err = unpublish(&s, x, "marcus").await.err().unwrap().to_string();
    assert!(err.contains("has no reply published by carebot"), "{err}");
    publish(&s, x, "marcus", better).await.unwrap();
    deliver_due(&s.ctx, t0() + Duration::minutes(21)).await.unwrap();
    assert_eq!(s.fake.with(|f| f.tweets.iter().map(|t| t.1.clone()).collect::<Vec<_>>()), [better]);
    // Only the owner or a lead takes a reply down.
    let err = unpublish(&s, fb, "grace").await.err().unwrap().to_string();
    assert!(err.contains("only they or a lead can remove its published reply"), "{err}");
    let fresh = claimed(&s, "google", "g-2", "Rude front desk at Riverside").await;
    let err = unpublish(&s, fresh, "marcus").await.err().unwrap().to_string();
    assert!(err.contains("has no reply published by carebot"), "{err}");
}

/// A refused change leaves the earlier reply (and the case) as they were; the agent is told.
async fn a_refused_change_keeps_the_earlier_reply(b: Backend) {
    let s = setup(b, |_| {}).await;
    let fb = claimed(&s, "facebook", "1001_8", "Parking at Riverside is awful").await;
    publish(&s, fb, "marcus", REPLY).await.unwrap();
    deliver_due(&s.ctx, t0()).await.unwrap();
    s.fake.with(|f| {
        f.refuse_next = Some((400, serde_json::json!({"error": {"message": "(#368) The action attempted has been deemed abusive or is otherwise disallowed", "type": "OAuthException", "code": 368}})))
    });
    publish(&s, fb, "marcus", "We hear you. Please email patientrelations.riverside@lakeshore-health.example.")
        .await
        .unwrap();
    deliver_due(&s.ctx, t0() + Duration::minutes(1)).await.unwrap();
    deliver_due(&s.ctx, t0() + Duration::minutes(1)).await.unwrap();
    assert_eq!(s.fake.with(|f| f.fb_comments["1001_8"][0].1.clone()), REPLY);
    assert_eq!(s.ctx.store.case(fb).await.unwrap().unwrap().state.as_str(), "responded", "the earlier reply stands");
    let dms: Vec<String> = s
        .chat
        .calls()
        .into_iter()
        .filter_map(|c| if let Call::Dm { text, .. } = c { Some(text) } else { None })
        .collect();
    assert!(dms.iter().any(|t| t.contains("was not made") && t.contains("earlier reply is still public")), "{dms:?}");
}

/// After our published reply the reviewer raises the rating: the revision names the reply,
/// the thread says so, and the digest counts a recovery for it.
async fn a_rating_raised_after_a_published_reply_counts_for_that_reply(b: Backend) {
    let s = setup(b, |_| {}).await;
    let g = claimed(&s, "google", "g-1", "Waited 4 hours at Riverside").await;
    let x = claimed(&s, "x", "1860000000000000012", "Riverside ER wait is 5 hours").await;
    for case in [g, x] {
        publish(&s, case, "marcus", REPLY).await.unwrap();
    }
    deliver_due(&s.ctx, t0()).await.unwrap();
    let published = s.ctx.store.events(g).await.unwrap().into_iter().find(|e| e.action == "published").unwrap();
    s.clock.set(t0() + Duration::hours(2));
    ingest(&s.ctx, &[mention("google", "g-1", "Waited 4 hours at Riverside", Some(4.0))]).await.unwrap();
    let revised = s.ctx.store.events(g).await.unwrap().into_iter().find(|e| e.action == "revised").unwrap();
    assert_eq!(revised.detail["published_reply"], published.id);
    assert_eq!(revised.detail["recovery"], true);
    deliver_due(&s.ctx, t0() + Duration::hours(2)).await.unwrap();
    let lines = thread_lines(&s);
    assert!(
        lines.iter().any(|l| l == "Review revised: rating 1 → 4 after our reply on Google — recovery candidate"),
        "{lines:?}"
    );
    let day = (t0() + Duration::hours(2)).with_timezone(&s.ctx.playbooks().team.timezone).date_naive();
    let digest = carebot::digest::gather(&s.ctx, day).await.unwrap();
    assert_eq!((digest.published.replies, digest.published.recovered), (2, 1));
    assert!(
        digest
            .to_text()
            .contains("Replies published by carebot (30 days): 2 (Google 1, X 1); rating raised after 1 of them (50%)"),
        "{}",
        digest.to_text()
    );
}

/// A reply posted by hand on a page carebot cannot post to is recorded with its link; a
/// case is never marked responded with no text unless the agent says why.
async fn a_reply_posted_by_hand_carries_its_link_and_no_text_needs_a_reason(b: Backend) {
    let s = setup(b, |_| {}).await;
    let marcus = s.ctx.playbooks().team.person("marcus").unwrap().clone();
    let yelp = claimed(&s, "yelp", "y-2", "Billed twice at Riverside").await;
    let err =
        submit_reply(&s.ctx, yelp, &marcus, None, false, ReplyOptions::default()).await.err().unwrap().to_string();
    assert!(err.contains("record the reply exactly as posted (--text), or say why there is none"), "{err}");
    assert_eq!(s.ctx.store.case(yelp).await.unwrap().unwrap().state.as_str(), "claimed", "refused: nothing changed");
    let link = "https://www.yelp.com/biz/riverside?hrid=abc";
    let posted = ReplyOptions { link: Some(link.into()), ..Default::default() };
    let Replied::Responded(acted) =
        submit_reply(&s.ctx, yelp, &marcus, Some(REPLY.into()), false, posted).await.unwrap()
    else {
        panic!("not responded")
    };
    assert_eq!(acted.summary, format!("reply posted by Marcus Bell — {link}"));
    assert_eq!(acted.event.detail["link"], link);
    assert_eq!(acted.event.detail["text"], REPLY);

    let other = claimed(&s, "yelp", "y-3", "Rude front desk at Riverside").await;
    let why = ReplyOptions { no_text: Some("posted by the press office".into()), ..Default::default() };
    let Replied::Responded(acted) = submit_reply(&s.ctx, other, &marcus, None, false, why).await.unwrap() else {
        panic!("not responded")
    };
    assert_eq!(acted.summary, "marked responded by Marcus Bell, no reply text recorded");
    assert_eq!(acted.event.detail["no_text_reason"], "posted by the press office");
    let both = ReplyOptions { publish: true, link: Some(link.into()), ..Default::default() };
    let g = claimed(&s, "google", "g-1", "Waited 4 hours at Riverside").await;
    let err = submit_reply(&s.ctx, g, &marcus, Some(REPLY.into()), false, both).await.err().unwrap().to_string();
    assert!(err.contains("--link is for a reply you posted yourself"), "{err}");
}

/// A Facebook reply sent privately by Messenger (a private reply to the comment): sent once
/// even when the answer is lost, shown as private, and only one per comment.
async fn a_private_reply_goes_by_messenger_once(b: Backend) {
    let s = setup(b, |_| {}).await;
    let fb = claimed(&s, "facebook", "555_42", "Parking at Riverside is awful").await;
    let marcus = s.ctx.playbooks().team.person("marcus").unwrap().clone();
    let private = || ReplyOptions { private: true, ..Default::default() };
    s.fake.with(|f| f.fail_after_write = 1);
    let Replied::Responded(acted) =
        submit_reply(&s.ctx, fb, &marcus, Some(REPLY.into()), false, private()).await.unwrap()
    else {
        panic!("not responded")
    };
    assert!(acted.summary.starts_with("private reply by Marcus Bell sent on Messenger"), "{}", acted.summary);
    deliver_due(&s.ctx, t0()).await.unwrap();
    deliver_due(&s.ctx, t0() + Duration::minutes(5)).await.unwrap();
    s.fake.with(|f| {
        assert_eq!(f.fb_private.len(), 1, "one private reply, not two");
        assert_eq!(f.fb_private[0], (PAGE_ID.to_string(), "comment_id".into(), "555_42".into(), REPLY.to_string()));
        assert!(f.fb_comments.is_empty(), "nothing public");
    });
    let events = s.ctx.store.events(fb).await.unwrap();
    assert_eq!(events.iter().filter(|e| e.action == "published" && e.detail["private"] == true).count(), 1);
    deliver_due(&s.ctx, t0() + Duration::minutes(5)).await.unwrap();
    assert!(
        thread_lines(&s).iter().any(|l| l == "replied privately on Messenger at 09:00 by Marcus Bell"),
        "{:?}",
        thread_lines(&s)
    );
    let err = submit_reply(&s.ctx, fb, &marcus, Some(REPLY.into()), false, private()).await.err().unwrap().to_string();
    assert!(err.contains("already had its private reply"), "{err}");
    let x = claimed(&s, "x", "1860000000000000021", "Riverside ER wait is 5 hours").await;
    let err = submit_reply(&s.ctx, x, &marcus, Some(REPLY.into()), false, private()).await.err().unwrap().to_string();
    assert!(err.contains("a private reply goes by Messenger to a Facebook post or comment"), "{err}");
}

fn refuse_once(s: &Setup) {
    s.fake.with(|f| {
        f.refuse_next = Some((400, serde_json::json!({"error": {"message": "(#368) The action attempted has been deemed abusive or is otherwise disallowed", "type": "OAuthException", "code": 368}})))
    });
}

/// A refused reply sent again with `outbox retry` after the agent moved on (published the
/// same text again, or posted by hand) is dropped, not posted a second time; one retried
/// once the cause is fixed goes out and puts the case back to responded.
async fn a_refused_reply_retried_later_never_doubles_and_reopens_what_went_out(b: Backend) {
    let s = setup(b, |_| {}).await;
    let marcus = s.ctx.playbooks().team.person("marcus").unwrap().clone();
    // Published again with the same text, then the old one retried.
    let again = claimed(&s, "facebook", "1001_20", "Parking at Riverside is awful").await;
    refuse_once(&s);
    publish(&s, again, "marcus", REPLY).await.unwrap();
    deliver_due(&s.ctx, t0()).await.unwrap();
    publish(&s, again, "marcus", REPLY).await.unwrap();
    deliver_due(&s.ctx, t0() + Duration::minutes(1)).await.unwrap();
    // Posted by hand after the refusal, then the old one retried.
    let by_hand = claimed(&s, "facebook", "1001_21", "Rude staff at Riverside").await;
    refuse_once(&s);
    publish(&s, by_hand, "marcus", REPLY).await.unwrap();
    deliver_due(&s.ctx, t0() + Duration::minutes(2)).await.unwrap();
    let link = ReplyOptions { link: Some("https://www.facebook.com/1001_21_1".into()), ..Default::default() };
    submit_reply(&s.ctx, by_hand, &marcus, Some(REPLY.into()), false, link).await.unwrap();
    s.ctx.store.outbox_requeue(None, s.ctx.now_ms()).await.unwrap();
    deliver_due(&s.ctx, t0() + Duration::minutes(3)).await.unwrap();
    s.fake.with(|f| {
        assert_eq!(f.fb_comments["1001_20"].len(), 1, "the same text is not posted twice");
        assert!(!f.fb_comments.contains_key("1001_21"), "not posted beside the one posted by hand");
    });
    assert_eq!(s.ctx.store.outbox_depth().await.unwrap(), (0, 0), "the superseded ones are done, not failed");

    // Refused, the cause fixed, retried: it goes out and the case is responded again.
    let fixed = claimed(&s, "facebook", "1001_22", "Billing at Riverside is a mess").await;
    refuse_once(&s);
    publish(&s, fixed, "marcus", REPLY).await.unwrap();
    deliver_due(&s.ctx, t0() + Duration::minutes(4)).await.unwrap();
    let case = s.ctx.store.case(fixed).await.unwrap().unwrap();
    assert_eq!((case.state.as_str(), case.first_response_at), ("claimed", None));
    s.clock.set(t0() + Duration::minutes(30));
    s.ctx.store.outbox_requeue(None, s.ctx.now_ms()).await.unwrap();
    deliver_due(&s.ctx, t0() + Duration::minutes(30)).await.unwrap();
    assert_eq!(s.fake.with(|f| f.fb_comments["1001_22"].len()), 1);
    let case = s.ctx.store.case(fixed).await.unwrap().unwrap();
    assert_eq!(case.state.as_str(), "responded");
    assert_eq!(case.first_response_at, Some((t0() + Duration::minutes(30)).timestamp_millis()));
    deliver_due(&s.ctx, t0() + Duration::minutes(30)).await.unwrap();
    let lines = thread_lines(&s);
    assert!(
        lines.iter().any(|l| l == "the reply reached Facebook after all; the case is responded again"),
        "{lines:?}"
    );
}

/// X's answer was lost and the retry met "duplicate content": carebot has no id for the
/// post, so `unpublish` records it as deleted by hand, and a new reply can then go out.
async fn an_x_post_without_an_id_is_taken_down_by_hand(b: Backend) {
    let s = setup(b, |_| {}).await;
    let x = claimed(&s, "x", "1860000000000000031", "Riverside ER wait is 5 hours").await;
    s.fake.with(|f| f.fail_after_write = 1);
    publish(&s, x, "marcus", REPLY).await.unwrap();
    deliver_due(&s.ctx, t0()).await.unwrap();
    deliver_due(&s.ctx, t0() + Duration::minutes(5)).await.unwrap();
    let summary = unpublish(&s, x, "marcus").await.unwrap();
    assert!(summary.contains("as deleted by hand (carebot has no id for it: delete it on X"), "{summary}");
    s.fake.with(|f| f.tweets.clear()); // the agent deleted it on X
    let better = "Thank you for waiting. Please email patientrelations.riverside@lakeshore-health.example.";
    publish(&s, x, "marcus", better).await.unwrap();
    deliver_due(&s.ctx, t0() + Duration::minutes(6)).await.unwrap();
    assert_eq!(s.fake.with(|f| f.tweets.iter().map(|t| t.1.clone()).collect::<Vec<_>>()), [better]);
}

on_both_backends!(
    a_refused_reply_retried_later_never_doubles_and_reopens_what_went_out,
    an_x_post_without_an_id_is_taken_down_by_hand,
    a_private_reply_goes_by_messenger_once,
    a_published_reply_is_changed_in_place_or_taken_down,
    a_refused_change_keeps_the_earlier_reply,
    a_rating_raised_after_a_published_reply_counts_for_that_reply,
    a_reply_posted_by_hand_carries_its_link_and_no_text_needs_a_reason,
    a_refused_reply_sent_again_never_lands_beside_the_newer_one,
    a_google_reply_is_posted_once_and_shown_on_the_card,
    a_retry_after_a_lost_answer_does_not_post_twice,
    a_refused_reply_or_expired_token_reaches_the_agent,
    dry_run_records_what_would_be_posted_and_sends_nothing,
    replies_that_cannot_be_published_are_refused_and_change_nothing,
    a_risk_reply_is_published_only_as_approved,
);
