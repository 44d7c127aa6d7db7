//! Discord end to end against a local fake Discord REST API: embed cards with buttons,
//! Ed25519-signed interactions, select-menu forms, threads, DMs, 429s and the command
//! registration.

mod common;
#[path = "fakes/discord.rs"]
mod fake_discord;
#[path = "fakes/platforms.rs"]
mod platforms;

use carebot::app::chat_surfaces;
use carebot::clock::{Clock, SystemClock};
use carebot::config::SurfaceKind;
use carebot::domain::{CaseState, Outcome};
use carebot::intake::ingest;
use carebot::store::Backend;
use carebot::{App, Ctx};
use common::*;
use fake_discord::*;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const SAM: &str = "401000000000000002"; // agent
const DENA: &str = "401000000000000001"; // agent + lead
const STRANGER: &str = "409999999999999999";
const TRIAGE: &str = "501000000000000001";

struct Running {
    url: String,
    ctx: Arc<Ctx>,
    fake: FakeDiscord,
    _stop: tokio::sync::oneshot::Sender<()>,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

async fn start(b: Backend) -> Running {
    start_with(b, |_| {}).await
}

async fn start_with(b: Backend, tweak: impl FnOnce(&mut carebot::Settings)) -> Running {
    let fake = FakeDiscord::start().await;
    let db = TestDb::new(b).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&db, &dir.path().join("inbox"));
    s.chat.surface = SurfaceKind::Discord;
    s.discord.api_url = fake.base.as_str().into();
    s.secrets.discord_bot_token = Some(BOT_TOKEN.into());
    s.secrets.discord_public_key = Some(public_key_hex());
    s.secrets.discord_application_id = Some(APP_ID.into());
    tweak(&mut s);
    let surfaces = chat_surfaces(&s).unwrap();
    let mut ctx = Ctx::new(s, surfaces.chat.clone(), Arc::new(SystemClock) as Arc<dyn Clock>).await.unwrap();
    surfaces.attach(&mut ctx);
    let app = App::from_ctx(ctx).await.unwrap();
    let (url, ctx) = (format!("http://{}/discord/interactions", app.addr()), app.ctx());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    Running { url, ctx, fake, _stop: tx, _db: db, _dir: dir }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

const REVIEW: &str = "Waited four hours at Riverside ER and nobody told us anything. Awful experience.";

/// Ingests a review and waits until its card is stored; returns (case id, message id).
async fn case_with_card(r: &Running, id: &str) -> (i64, String) {
    let case_id = ingest(&r.ctx, &[mention("google", id, REVIEW, Some(1.0))]).await.unwrap()[0].case_id();
    for _ in 0..300 {
        if let Some(m) = r.ctx.store.case_messages(case_id).await.unwrap().first() {
            let (channel, message) = m.message_ref.split_once('|').unwrap();
            assert_eq!(channel, TRIAGE);
            return (case_id, message.to_string());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the card of case {case_id} was never posted");
}

/// The message id of a case's first posted card, once the outbox has posted it.
async fn posted_card(r: &Running, case_id: i64) -> String {
    for _ in 0..300 {
        if let Some(m) = r.ctx.store.case_messages(case_id).await.unwrap().first() {
            return m.message_ref.split('|').nth(1).unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the card of case {case_id} was never posted");
}

fn button_ids(components: &Value) -> Vec<String> {
    components
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| {
            row["components"].as_array().unwrap().iter().map(|b| b["custom_id"].as_str().unwrap().to_string())
        })
        .collect()
}

/// Sends a signed interaction and checks the answer is one Discord would accept.
async fn send(r: &Running, body: &Value) -> (u16, Value) {
    let (status, res) = post(&r.url, body, now(), true).await;
    if status == 200 {
        check_response(&res).unwrap_or_else(|why| panic!("Discord would refuse this answer ({why}): {res}"));
    }
    (status, res)
}

async fn click(r: &Running, user: &str, custom_id: &str, message: &str) -> (u16, Value) {
    send(r, &component(user, custom_id, None, message)).await
}

async fn care(r: &Running, user: &str, sub: &str, options: Vec<(&str, u8, Value)>) -> String {
    let (status, res) = send(r, &command(user, sub, options)).await;
    assert_eq!((status, res["data"]["flags"].as_u64()), (200, Some(64)), "{res}");
    res["data"]["content"].as_str().unwrap().to_string()
}

/// Draft reply shows the draft privately with a template picker and an editor button; the
/// editor is a modal prefilled with the draft; a blocked text is refused with the text
/// given back; the edited text is recorded exactly.
async fn the_reply_editor_is_a_modal_and_records_the_exact_text(b: Backend) {
    let r = start(b).await;
    let (case_id, message) = case_with_card(&r, "d-20").await;
    let (_, preview) = click(&r, SAM, &format!("draft_reply:{case_id}"), &message).await;
    assert_eq!((preview["type"].as_u64(), preview["data"]["flags"].as_u64()), (Some(4), Some(64)), "{preview}");
    let rows = preview["data"]["components"].as_array().unwrap();
    let select = &rows[0]["components"][0];
    assert_eq!(select["custom_id"], format!("tpl:{case_id}"));
    let edit = rows.last().unwrap()["components"][0]["custom_id"].as_str().unwrap().to_string();
    assert!(edit.starts_with(&format!("edit:{case_id}:")), "{edit}");
    assert!(preview["data"]["content"].as_str().unwrap().contains("Sam"), "{preview}");

    {
        let other = select["options"]
            .as_array()
            .unwrap()
            .get(1)
            .and_then(|o| o["value"].as_str())
            .expect("several templates fit");
        let pick = component(SAM, &format!("tpl:{case_id}"), Some(vec![other]), "800000000000000002");
        let (_, res) = send(&r, &pick).await;
        assert_eq!(res["type"], 7, "the preview is redrawn with that template: {res}");
        let edit = res["data"]["components"].as_array().unwrap().last().unwrap()["components"][0]["custom_id"].clone();
        assert_eq!(edit, format!("edit:{case_id}:{other}"));
    }

    let (_, modal) = click(&r, SAM, &edit, "800000000000000002").await;
    assert_eq!(modal["type"], 9, "{modal}");
    assert_eq!(modal["data"]["custom_id"], format!("form:reply:{case_id}"));
    let draft = modal["data"]["components"][0]["components"][0]["value"].as_str().unwrap().to_string();
    assert!(draft.contains("Sam"), "{draft}");
    assert_eq!(modal["data"]["components"].as_array().unwrap().len(), 1, "no override box for an agent");

    let blocked = "Thank you for your feedback, we are sorry.";
    let (_, res) = send(&r, &modal_submit(SAM, &format!("form:reply:{case_id}"), vec![("text", blocked)])).await;
    let said = res["data"]["content"].as_str().unwrap();
    assert!(said.contains("cannot be marked responded"), "{said}");
    let back = res["data"]["embeds"][0]["description"].as_str().unwrap_or_default();
    assert!(back.contains("Thank you for your feedback"), "the text is given back: {res}");
    assert_eq!(r.ctx.store.case(case_id).await.unwrap().unwrap().state, CaseState::Open);

    let edited = format!("{draft}\nWe look forward to hearing from you.");
    let (_, res) = send(&r, &modal_submit(SAM, &format!("form:reply:{case_id}"), vec![("text", &edited)])).await;
    assert!(res["data"]["content"].as_str().unwrap().contains("now responded"), "{res}");
    let events = r.ctx.store.events(case_id).await.unwrap();
    assert_eq!(events.iter().find(|e| e.action == "respond").unwrap().detail["text"], edited.as_str());
}

/// With publishing on for Google, the reply editor asks "Post it on Google? Type yes"; a
/// yes posts the submitted text as the review's reply, and `/care unpublish` takes it down.
async fn a_reply_is_published_from_the_editor_and_taken_down_with_care_unpublish(b: Backend) {
    let google = platforms::FakePlatforms::start().await;
    let r = start_with(b, |s| {
        s.publish.mode = carebot::config::PublishMode::Live;
        s.publish.sites.insert("riverside".into(), vec!["google".into()]);
        let g = &mut s.sources.google_business;
        g.api_url = google.url.as_str().into();
        g.token_url = format!("{}/token", google.url).as_str().into();
        g.locations.push(serde_json::from_value(json!({"id": "accounts/1/locations/9", "site": "riverside"})).unwrap());
        s.secrets.google_client_id = Some(format!("client-{}", google.url));
        s.secrets.google_client_secret = Some("g-secret".into());
        s.secrets.google_refresh_token = Some("1//refresh".into());
    })
    .await;
    let review = "accounts/1/locations/9/reviews/d-40";
    google.with(|f| f.known_reviews.insert(review.into()));
    let (case_id, message) = case_with_card(&r, "d-40").await;
    let (_, preview) = click(&r, SAM, &format!("draft_reply:{case_id}"), &message).await;
    let rows = preview["data"]["components"].as_array().unwrap();
    let edit = rows.last().unwrap()["components"][0]["custom_id"].as_str().unwrap().to_string();
    let (_, modal) = click(&r, SAM, &edit, &message).await;
    let inputs: Vec<Value> =
        modal["data"]["components"].as_array().unwrap().iter().map(|r| r["components"][0].clone()).collect();
    let ask = inputs.iter().find(|i| i["custom_id"] == "publish").expect("a publish field");
    assert_eq!(ask["label"], "Post it on Google? Type yes");
    let draft = inputs[0]["value"].as_str().unwrap().to_string();
    let form = format!("form:reply:{case_id}");
    let (_, res) = send(&r, &modal_submit(SAM, &form, vec![("text", &draft), ("publish", "yes")])).await;
    assert!(res["data"]["content"].as_str().unwrap().contains("sent to Google"), "{res}");
    // Posted, and recorded as published (the outbox records it once Google has answered).
    for _ in 0..300 {
        let recorded = r.ctx.store.events(case_id).await.unwrap().iter().any(|e| e.action == "published");
        if recorded && google.with(|f| f.google_replies.contains_key(review)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(google.with(|f| f.google_replies.get(review).cloned()), Some(draft.trim().to_string()));

    let said =
        care(&r, SAM, "unpublish", vec![("case", 4, json!(case_id)), ("reason", 3, json!("wrong review"))]).await;
    assert!(said.contains("asked carebot to take our reply down from Google"), "{said}");
    for _ in 0..300 {
        if !google.with(|f| f.google_replies.contains_key(review)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(google.with(|f| f.google_replies.is_empty()), "the reply is gone from Google");
}

/// Every case action of the CLI, taken from Discord: as `/care` subcommands and through
/// the card's buttons and modals; each row checks what was recorded.
async fn every_case_action_can_be_taken_from_discord(b: Backend) {
    let r = start(b).await;
    let (case_id, message) = case_with_card(&r, "d-21").await;
    let n = || ("case", 4u8, json!(case_id));
    let last = |r: &Running| {
        let ctx = r.ctx.clone();
        async move { ctx.store.events(case_id).await.unwrap().last().unwrap().clone() }
    };
    // claim (button)
    click(&r, SAM, &format!("claim:{case_id}"), &message).await;
    assert_eq!(last(&r).await.action, "claim");
    // note (button → modal)
    let (_, modal) = click(&r, SAM, &format!("note:{case_id}"), &message).await;
    assert_eq!(
        (modal["type"].as_u64(), modal["data"]["custom_id"].as_str()),
        (Some(9), Some(format!("form:note:{case_id}").as_str()))
    );
    send(&r, &modal_submit(SAM, &format!("form:note:{case_id}"), vec![("text", "called the family back")])).await;
    assert_eq!(
        (last(&r).await.action.as_str(), last(&r).await.detail["text"].as_str()),
        ("note", Some("called the family back"))
    );
    // release, reassign (a USER option: the people picker)
    assert!(care(&r, SAM, "release", vec![n()]).await.contains("released by"));
    let said = care(&r, DENA, "reassign", vec![n(), ("person", 6, json!(SAM))]).await;
    assert!(said.contains("reassigned to Sam Whitfield"), "{said}");
    // respond with a text that passes the checks
    let text = carebot::drafting::draft(&r.ctx, case_id, "sam", None).await.unwrap().text;
    assert!(care(&r, SAM, "respond", vec![n(), ("text", 3, json!(text))]).await.contains("now responded"));
    // escalate, offline, resolve, reopen, note
    assert!(care(&r, SAM, "escalate", vec![n(), ("to", 3, json!("risk"))]).await.contains("escalated to"));
    assert!(care(&r, SAM, "offline", vec![n(), ("via", 3, json!("phone"))]).await.contains("taken offline (phone)"));
    assert!(care(&r, SAM, "resolve", vec![n(), ("outcome", 3, json!("resolved"))]).await.contains("resolved"));
    assert!(care(&r, SAM, "reopen", vec![n()]).await.contains("reopened by"));
    assert!(care(&r, SAM, "note", vec![n(), ("text", 3, json!("closing the loop"))]).await.contains("note by"));
    assert!(care(&r, SAM, "snooze", vec![n(), ("for", 3, json!("4h"))]).await.contains("nudges snoozed until"));
    let said = care(&r, DENA, "set", vec![n(), ("field", 3, json!("site")), ("value", 3, json!("northgate"))]).await;
    assert!(said.contains("site set to Northgate Family Clinic"), "{said}");
    let actions: Vec<String> = r.ctx.store.events(case_id).await.unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            "opened",
            "claim",
            "note",
            "release",
            "reassign",
            "respond",
            "escalate",
            "offline",
            "resolve",
            "reopen",
            "note",
            "snooze",
            "reclassify"
        ]
    );

    // approve and request changes, on a risk case, from the card's buttons.
    let risk =
        mention("facebook", "d-22", "Wrong medication given to my father at Riverside, talking to a lawyer", None);
    let risk_id = ingest(&r.ctx, &[risk]).await.unwrap()[0].case_id();
    let reply = carebot::drafting::draft(&r.ctx, risk_id, "sam", None).await.unwrap().text;
    let said = care(&r, SAM, "respond", vec![("case", 4, json!(risk_id)), ("text", 3, json!(reply))]).await;
    assert!(said.contains("went to the leads for approval"), "{said}");
    let card = carebot::present::card_for(&r.ctx, risk_id).await.unwrap();
    let request = card.pending_reply.as_ref().unwrap().request;
    let (_, modal) = click(&r, DENA, &format!("request_changes:{risk_id}"), &message).await;
    assert_eq!(modal["type"], 9, "{modal}");
    send(
        &r,
        &modal_submit(DENA, &format!("form:changes:{risk_id}"), vec![("text", "name the patient-relations line")]),
    )
    .await;
    assert_eq!(r.ctx.store.events(risk_id).await.unwrap().last().unwrap().action, "request_changes");
    care(&r, SAM, "respond", vec![("case", 4, json!(risk_id)), ("text", 3, json!(reply))]).await;
    let again = carebot::present::card_for(&r.ctx, risk_id).await.unwrap().pending_reply.unwrap().request;
    assert!(again > request);
    let risk_card = posted_card(&r, risk_id).await;
    let (_, res) = click(&r, DENA, &format!("approve_reply:{risk_id}:{again}"), &risk_card).await;
    assert_eq!(res["type"], 7, "the card is redrawn: {res}");
    let approved = r.ctx.store.events(risk_id).await.unwrap().last().unwrap().clone();
    assert_eq!((approved.action.as_str(), approved.actor.as_str()), ("approve_reply", "dena"));
    let waiting = care(&r, DENA, "approvals", vec![]).await;
    assert!(waiting.contains("No replies are waiting"), "{waiting}");

    // A lead cannot approve a text with a blocking finding.
    let said = care(&r, DENA, "approve", vec![("case", 4, json!(risk_id)), ("text", 3, json!("Hello"))]).await;
    assert!(said.contains("BLOCK"), "{said}");

    // A button in a DM (a nudge) is answered privately; the DM never becomes the card.
    let other = ingest(&r.ctx, &[mention("google", "d-23", REVIEW, Some(1.0))]).await.unwrap()[0].case_id();
    let (_, res) = click(&r, SAM, &format!("claim:{other}"), "800000000000000009").await;
    assert_eq!((res["type"].as_u64(), res["data"]["flags"].as_u64()), (Some(4), Some(64)), "{res}");
    assert!(res["data"]["content"].as_str().unwrap().contains("claimed by Sam Whitfield"), "{res}");
    assert!(res["data"]["embeds"].is_null(), "no card in the DM: {res}");
    // A person picked from Discord's autocomplete, and /care help.
    let n2 = ("case", 4u8, json!(other));
    let said = care(&r, SAM, "escalate", vec![n2, ("to", 3, json!(format!("<@{DENA}>")))]).await;
    assert!(said.contains("escalated to Dena Ortiz"), "{said}");
    assert!(care(&r, SAM, "help", vec![]).await.contains("Usage"));

    // On-call cover (the CLI's `oncall set`): a lead only.
    let cover = |who| vec![("rotation", 3u8, json!("px-oncall")), ("person", 6, json!(who)), ("until", 3, json!("8h"))];
    assert!(care(&r, SAM, "cover", cover(SAM)).await.contains("needs the lead role"));
    let said = care(&r, DENA, "cover", cover(SAM)).await;
    assert!(said.contains("Sam Whitfield covers px-oncall until"), "{said}");
    let now = care(&r, SAM, "oncall", vec![]).await;
    assert!(now.contains("px-oncall: Sam Whitfield") && now.contains("override"), "{now}");
}

async fn a_claim_click_updates_the_card_and_resolve_through_the_select_menu(b: Backend) {
    let r = start(b).await;
    let (case_id, message) = case_with_card(&r, "d-1").await;
    let posted = r
        .fake
        .calls()
        .into_iter()
        .find(|c| c.method == "POST" && c.path == format!("/channels/{TRIAGE}/messages"))
        .unwrap();
    let embed = &posted.body["embeds"][0];
    assert!(embed["description"].as_str().unwrap().contains("Waited four hours"));
    assert!(embed.to_string().contains(":R>"), "SLA due as Discord timestamps: {embed}");
    let ids = button_ids(&posted.body["components"]);
    let expected: Vec<String> =
        ["claim", "draft_reply", "escalate", "take_offline", "resolve", "reassign", "snooze", "fix_triage", "note"]
            .iter()
            .map(|a| format!("{a}:{case_id}"))
            .collect();
    assert_eq!(ids, expected);

    let (status, res) = click(&r, SAM, &format!("claim:{case_id}"), &message).await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["type"], 7, "UPDATE_MESSAGE: {res}");
    assert!(res["data"]["embeds"][0].to_string().contains("Sam Whitfield"), "{res}");
    assert_eq!(button_ids(&res["data"]["components"])[0], format!("release:{case_id}"));
    assert_eq!(r.ctx.store.case(case_id).await.unwrap().unwrap().owner.as_deref(), Some("sam"));
    // The first attempt meets "Unknown Channel"; the thread is started on the card and the line sent again.
    r.fake
        .wait_for("the step in a thread started on the card", |c| {
            let started = c.iter().position(|c| c.path == format!("/channels/{TRIAGE}/messages/{message}/threads"));
            started.is_some_and(|i| {
                c[i..].iter().any(|c| {
                    c.path == format!("/channels/{message}/messages")
                        && c.body["content"].as_str().is_some_and(|t| t.contains("claimed by"))
                })
            })
        })
        .await;

    let (_, res) = click(&r, SAM, &format!("resolve:{case_id}"), &message).await;
    assert_eq!((res["type"].as_u64(), res["data"]["flags"].as_u64()), (Some(4), Some(64)), "{res}");
    let select = &res["data"]["components"][0]["components"][0];
    assert_eq!(select["custom_id"], format!("form:resolve:{case_id}"));
    assert!(select["options"].to_string().contains("\"value\":\"recovered\""));
    assert_eq!(r.ctx.store.case(case_id).await.unwrap().unwrap().state, CaseState::Claimed);

    let pick = component(SAM, &format!("form:resolve:{case_id}"), Some(vec!["recovered"]), "800000000000000001");
    let (status, res) = post(&r.url, &pick, now(), true).await;
    assert_eq!((status, res["type"].as_u64()), (200, Some(7)), "{res}");
    let case = r.ctx.store.case(case_id).await.unwrap().unwrap();
    assert_eq!((case.state, case.outcome), (CaseState::Resolved, Some(Outcome::Recovered)));
    r.fake
        .wait_for("the resolved card", |c| {
            c.iter().any(|c| c.method == "PATCH" && c.body["content"].as_str().is_some_and(|t| t.ends_with("resolved")))
        })
        .await;
}

async fn bad_signatures_and_stale_requests_are_401_and_change_nothing(b: Backend) {
    let r = start(b).await;
    let (case_id, message) = case_with_card(&r, "d-2").await;
    let body = component(SAM, &format!("claim:{case_id}"), None, &message);
    assert_eq!(post(&r.url, &body, now(), false).await.0, 401, "unsigned");
    assert_eq!(post(&r.url, &body, now() - 600, true).await.0, 401, "replayed ten minutes later");
    let ts = now().to_string();
    let sig = sign(&ts, &body.to_string());
    let tampered = body.to_string().replace("claim:", "resolve:");
    let res = reqwest::Client::new()
        .post(&r.url)
        .header("x-signature-ed25519", sig)
        .header("x-signature-timestamp", ts)
        .body(tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401, "altered after signing");
    let (status, _) = post(&r.url, &json!({"type": 3, "nonsense": true}), now(), true).await;
    assert_eq!(status, 400, "signed but not an interaction");
    let case = r.ctx.store.case(case_id).await.unwrap().unwrap();
    assert_eq!((case.state, case.owner), (CaseState::Open, None));

    let (status, pong) = post(&r.url, &ping(), now(), true).await;
    assert_eq!((status, pong), (200, json!({"type": 1})));
}

async fn strangers_are_refused_privately_and_concurrent_claims_have_one_winner(b: Backend) {
    let r = start(b).await;
    let (case_id, message) = case_with_card(&r, "d-3").await;
    let (_, res) = click(&r, STRANGER, &format!("claim:{case_id}"), &message).await;
    assert_eq!(res["data"]["flags"], 64);
    assert!(res["data"]["content"].as_str().unwrap().contains("not in carebot's team file"));
    assert_eq!(r.ctx.store.case(case_id).await.unwrap().unwrap().owner, None);

    let claim = format!("claim:{case_id}");
    let (a, b2) = tokio::join!(click(&r, SAM, &claim, &message), click(&r, DENA, &claim, &message));
    let winner = r.ctx.store.case(case_id).await.unwrap().unwrap().owner.expect("a winner");
    let answers = [a.1, b2.1];
    assert_eq!(answers.iter().filter(|v| v["type"] == 7).count(), 1, "{answers:?}");
    let loser = answers.iter().find(|v| v["type"] == 4).unwrap();
    assert_eq!(loser["data"]["flags"], 64);
    assert!(loser["data"]["content"]
        .as_str()
        .unwrap()
        .contains(&format!("already claimed by {}", r.ctx.playbooks().team.person(&winner).unwrap().name)));
}

async fn a_rate_limited_post_is_delivered_once_after_retry_after(b: Backend) {
    let r = start(b).await;
    r.fake.rate_limit_next_post(0.8);
    let (_, _) = case_with_card(&r, "d-4").await;
    let posts: Vec<_> = r
        .fake
        .calls()
        .into_iter()
        .filter(|c| c.method == "POST" && c.path == format!("/channels/{TRIAGE}/messages"))
        .collect();
    assert_eq!(posts.len(), 2, "one 429, one delivery");
    assert!(posts[1].at - posts[0].at >= Duration::from_millis(750), "{:?}", posts[1].at - posts[0].at);
}

async fn slash_commands_and_escalation_dms(b: Backend) {
    let r = start(b).await;
    let (case_id, _) = case_with_card(&r, "d-5").await;
    let (_, res) = post(&r.url, &command(SAM, "queue", vec![]), now(), true).await;
    assert_eq!(res["data"]["flags"], 64);
    assert!(res["data"]["content"].as_str().unwrap().contains(&format!("#{case_id} ")), "{res}");
    let (_, res) = post(&r.url, &command(SAM, "show", vec![("case", 4, json!(999999))]), now(), true).await;
    assert!(res["data"]["content"].as_str().unwrap().contains("does not exist"));
    let (_, res) = post(&r.url, &command(SAM, "claim", vec![("case", 4, json!(case_id))]), now(), true).await;
    assert!(res["data"]["content"].as_str().unwrap().contains("claimed by Sam Whitfield"), "{res}");
    let logged = command(
        DENA,
        "log",
        vec![
            ("url", 3, json!("https://www.facebook.com/groups/1/posts/2")),
            ("text", 3, json!("my mum was left in a hallway at Riverside")),
            ("confidential", 5, json!(true)),
        ],
    );
    let (_, res) = post(&r.url, &logged, now(), true).await;
    assert!(res["data"]["content"].as_str().unwrap().contains("Logged as case #"), "{res}");

    let pick = component(SAM, &format!("form:escalate:{case_id}"), Some(vec!["role:lead"]), "800000000000000001");
    let (_, res) = post(&r.url, &pick, now(), true).await;
    assert_eq!(res["type"], 7, "{res}");
    let calls = r
        .fake
        .wait_for("a DM to the lead", |c| c.iter().any(|c| c.path == format!("/channels/DM{DENA}/messages")))
        .await;
    let open = calls.iter().find(|c| c.path == "/users/@me/channels").unwrap();
    assert_eq!(open.body["recipient_id"], DENA);
    let dm = calls.iter().find(|c| c.path == format!("/channels/DM{DENA}/messages")).unwrap();
    assert!(dm.body["content"].as_str().unwrap().contains(&format!("Case #{case_id}")));
}

/// What a stranger wrote cannot link, ping, head or format inside the staff's card, and a
/// link without a scheme still gets the card posted.
async fn a_review_cannot_plant_a_disguised_link_or_a_ping_in_the_card(b: Backend) {
    let r = start(b).await;
    let text = "Billing at Riverside is a scam. [verify your login here](https://attacker.example/reset) **urgent** @everyone <@401000000000000001>\n# Read this\n```code```";
    let raw = carebot::domain::RawMention {
        source: Some("yelp".into()),
        external_id: Some("inj-1".into()),
        text: Some(text.into()),
        url: Some("www.yelp.com/biz/riverside-medical".into()),
        author: Some("_Evil_ [x](https://a.example)".into()),
        ..Default::default()
    };
    let m = raw.parse(None, t0()).unwrap();
    let case_id = ingest(&r.ctx, &[m]).await.unwrap()[0].case_id();
    let calls = r
        .fake
        .wait_for("the card", |c| {
            c.iter().any(|c| c.method == "POST" && c.path == format!("/channels/{TRIAGE}/messages"))
        })
        .await;
    let post = calls.iter().find(|c| c.path == format!("/channels/{TRIAGE}/messages")).unwrap();
    let embed = &post.body["embeds"][0];
    let description = embed["description"].as_str().unwrap();
    assert!(!description.contains("](") && description.contains("\\[verify your login here\\]\\("), "{description}");
    assert!(description.contains("\\*\\*urgent\\*\\*") && description.contains("\\@everyone"), "{description}");
    assert!(
        description.contains("\\<\\@401000000000000001\\>") && description.contains("\n\\# Read this"),
        "{description}"
    );
    assert!(!description.contains("```"), "{description}");
    let author = embed["fields"].as_array().unwrap().iter().find(|f| f["name"] == "Author").unwrap();
    assert_eq!(author["value"], "\\_Evil\\_ \\[x\\]\\(https://a.example\\)");
    assert_eq!(embed["url"], "https://www.yelp.com/biz/riverside-medical");
    assert_eq!(post.body["allowed_mentions"]["parse"], json!([]));
    assert!(r.ctx.store.case_messages(case_id).await.is_ok());
}

/// The card's thread is started with the card (no "Unknown Channel" for the first step),
/// named after the case; a click answered with the new card is not edited again; an
/// escalation to the channel really notifies it; a person with no Discord id is told in
/// the channel by name.
async fn threads_come_with_the_card_and_nothing_is_sent_twice(b: Backend) {
    let r = start(b).await;
    let (case_id, message) = case_with_card(&r, "t-1").await;
    let thread_path = format!("/channels/{TRIAGE}/messages/{message}/threads");
    let calls = r.fake.wait_for("the thread", |c| c.iter().any(|c| c.path == thread_path)).await;
    let thread = calls.iter().find(|c| c.path == thread_path).unwrap();
    assert_eq!(thread.body["name"], format!("Case {case_id} · Riverside Medical Center"));

    let (_, res) = click(&r, SAM, &format!("claim:{case_id}"), &message).await;
    assert_eq!(res["type"], 7, "{res}");
    let line_path = format!("/channels/{message}/messages");
    let calls = r
        .fake
        .wait_for("the claim's line", |c| {
            c.iter()
                .any(|c| c.path == line_path && c.body["content"].as_str().is_some_and(|t| t.contains("claimed by")))
        })
        .await;
    let started = calls.iter().position(|c| c.path == thread_path).unwrap();
    let first_line = calls.iter().position(|c| c.path == line_path).unwrap();
    assert!(first_line > started, "no line was sent to a thread that did not exist yet");
    assert_eq!(calls.iter().filter(|c| c.path == line_path).count(), 1, "the line was sent once");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let edits = r.fake.calls().iter().filter(|c| c.method == "PATCH" && c.path.ends_with(&message)).count();
    assert_eq!(edits, 0, "the click's answer already showed the new card");

    // Escalate to the site owner (Marcus: no Discord id) and sweep a day later.
    let pick = component(SAM, &format!("form:escalate:{case_id}"), Some(vec!["site-owner"]), "800000000000000001");
    let (_, res) = post(&r.url, &pick, now(), true).await;
    assert_eq!(res["type"], 7, "{res}");
    let calls = r
        .fake
        .wait_for("Marcus told in the channel", |c| {
            c.iter().any(|c| {
                c.path == format!("/channels/{TRIAGE}/messages")
                    && c.body["content"].as_str().is_some_and(|t| t.starts_with("For Marcus Bell"))
            })
        })
        .await;
    assert!(!calls.iter().any(|c| c.path == "/users/@me/channels" && c.body["recipient_id"].is_null()));

    let other =
        mention("google", "t-2", "Billing at Riverside sent my account to collections twice, awful service", Some(1.0));
    let case2 = ingest(&r.ctx, &[other]).await.unwrap()[0].case_id();
    r.fake
        .wait_for("the second card", |c| {
            c.iter().filter(|c| c.path == format!("/channels/{TRIAGE}/messages") && !c.body["embeds"].is_null()).count()
                >= 2
        })
        .await;
    let tz: chrono_tz::Tz = "America/Chicago".parse().unwrap();
    let noon =
        (chrono::Utc::now().with_timezone(&tz).date_naive() + chrono::Duration::days(1)).and_hms_opt(12, 0, 0).unwrap();
    carebot::jobs::escalation::sweep(&r.ctx, noon.and_local_timezone(tz).unwrap().with_timezone(&chrono::Utc))
        .await
        .unwrap();
    let calls = r
        .fake
        .wait_for("@here in the channel", |c| {
            c.iter()
                .any(|c| c.body["content"].as_str().is_some_and(|t| t.starts_with(&format!("@here Case #{case2} "))))
        })
        .await;
    let here = calls.iter().find(|c| c.body["content"].as_str().is_some_and(|t| t.starts_with("@here"))).unwrap();
    assert_eq!(here.path, format!("/channels/{TRIAGE}/messages"), "in the channel, where people are");
    assert_eq!(here.body["allowed_mentions"]["parse"], json!(["everyone"]));
}

on_both_backends!(
    a_reply_is_published_from_the_editor_and_taken_down_with_care_unpublish,
    the_reply_editor_is_a_modal_and_records_the_exact_text,
    every_case_action_can_be_taken_from_discord,
    threads_come_with_the_card_and_nothing_is_sent_twice,
    a_review_cannot_plant_a_disguised_link_or_a_ping_in_the_card,
    a_claim_click_updates_the_card_and_resolve_through_the_select_menu,
    bad_signatures_and_stale_requests_are_401_and_change_nothing,
    strangers_are_refused_privately_and_concurrent_claims_have_one_winner,
    a_rate_limited_post_is_delivered_once_after_retry_after,
    slash_commands_and_escalation_dms,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_commands_installs_care_with_its_subcommands() {
    let fake = FakeDiscord::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("carebot.toml");
    std::fs::write(&config, format!("[discord]\napi_url = {:?}\n", fake.base)).unwrap();
    let config2 = config.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_carebot"))
            .args(["--config", config2.to_str().unwrap(), "discord", "register-commands", "--guild", GUILD])
            .env("DISCORD_BOT_TOKEN", BOT_TOKEN)
            .env("DISCORD_APPLICATION_ID", APP_ID)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("registered /care for guild {GUILD}")));
    let put = fake.calls().into_iter().find(|c| c.method == "PUT").unwrap();
    assert_eq!(put.path, format!("/applications/{APP_ID}/guilds/{GUILD}/commands"));
    let subs: Vec<&str> =
        put.body[0]["options"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert!(subs.len() <= 25, "Discord takes at most 25 subcommands");
    assert_eq!(
        subs,
        [
            "queue",
            "mine",
            "show",
            "claim",
            "resolve",
            "log",
            "release",
            "reassign",
            "respond",
            "posted",
            "unpublish",
            "approve",
            "changes",
            "approvals",
            "offline",
            "escalate",
            "reopen",
            "note",
            "set",
            "snooze",
            "risk",
            "oncall",
            "cover",
            "draft",
            "help"
        ]
    );
    let reassign = put.body[0]["options"].as_array().unwrap().iter().find(|o| o["name"] == "reassign").unwrap();
    assert_eq!(reassign["options"][1]["type"], 6, "a people picker (USER option)");
    let resolve = &put.body[0]["options"][4];
    let outcome = resolve["options"].as_array().unwrap().iter().find(|o| o["name"] == "outcome").unwrap();
    assert_eq!(outcome["choices"].as_array().unwrap().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_digest_chart_is_attached_to_a_message() {
    let r = start(Backend::Sqlite).await;
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
    carebot::ops::queue_ops(&r.ctx, &carebot::chat::ChatOp::report(false, date)).await.unwrap();
    r.ctx.outbox_wake.notify_one();
    let calls = r
        .fake
        .wait_for("the digest text and chart", |c| {
            c.iter().any(|c| c.body["multipart"] == true) && c.iter().any(|c| c.body["content"].is_string())
        })
        .await;
    let upload = calls.iter().find(|c| c.body["multipart"] == true).unwrap();
    assert_eq!(upload.path, "/channels/501000000000000004/messages", "the leadership channel");
    assert_eq!(upload.body["has_png"], true);
    assert!(calls.iter().any(|c| c.path == upload.path && c.body["content"].is_string()), "digest text too");
}
