//! Slack end to end against a local fake Slack: cards with buttons, signed clicks and
//! commands, modals, DMs, file uploads, delivery errors and Socket Mode.

mod common;
#[path = "fakes/slack.rs"]
mod fake_slack;
#[path = "fakes/platforms.rs"]
mod platforms;

use carebot::app::chat_surfaces;
use carebot::chat::ChatOp;
use carebot::clock::{Clock, SystemClock};
use carebot::config::{SlackMode, SurfaceKind};
use carebot::domain::{CaseState, Outcome};
use carebot::intake::ingest;
use carebot::store::Backend;
use carebot::{App, Ctx};
use common::*;
use fake_slack::*;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const DENA: &str = "U01DENA0001"; // agent + lead
const SAM: &str = "U01SAM00002"; // agent
const RUTH: &str = "U01RUTH0007"; // risk management
const HELEN: &str = "U01HELEN008"; // leadership: reads, does not work cases
const STRANGER: &str = "U09NOTINTEAM";

struct Running {
    base: String,
    ctx: Arc<Ctx>,
    fake: FakeSlack,
    _stop: tokio::sync::oneshot::Sender<()>,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

async fn start_with(b: Backend, tweak: impl FnOnce(&mut carebot::Settings)) -> Running {
    let fake = FakeSlack::start().await;
    let db = TestDb::new(b).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&db, &dir.path().join("inbox"));
    s.chat.surface = SurfaceKind::Slack;
    s.slack.api_url = fake.api_url().as_str().into();
    s.slack.burst = 100.try_into().unwrap();
    s.slack.messages_per_second = 100.try_into().unwrap();
    s.secrets.slack_bot_token = Some(BOT_TOKEN.into());
    s.secrets.slack_signing_secret = Some(SIGNING_SECRET.into());
    s.secrets.slack_app_token = Some(APP_TOKEN.into());
    tweak(&mut s);
    let surfaces = chat_surfaces(&s).unwrap();
    let mut ctx = Ctx::new(s, surfaces.chat.clone(), Arc::new(SystemClock) as Arc<dyn Clock>).await.unwrap();
    surfaces.attach(&mut ctx);
    let app = App::from_ctx(ctx).await.unwrap();
    let (base, ctx) = (format!("http://{}", app.addr()), app.ctx());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    Running { base, ctx, fake, _stop: tx, _db: db, _dir: dir }
}

async fn start(b: Backend) -> Running {
    start_with(b, |_| {}).await
}

const REVIEW: &str = "Waited four hours at Riverside ER and nobody told us anything. Awful experience.";

/// Ingests one negative review and waits for its card; returns the case id.
async fn case_with_card(r: &Running, id: &str) -> i64 {
    let m = mention("google", id, REVIEW, Some(1.0));
    let case_id = ingest(&r.ctx, &[m]).await.unwrap()[0].case_id();
    let marker = format!("Case #{case_id} ");
    r.fake
        .wait_for("the card", |c| {
            c.iter().any(|c| c.method == "chat.postMessage" && c.body["text"].as_str().unwrap_or("").contains(&marker))
        })
        .await;
    case_id
}

async fn card_ref(r: &Running, case_id: i64) -> (String, String) {
    for _ in 0..200 {
        let msgs = r.ctx.store.case_messages(case_id).await.unwrap();
        if let Some(m) = msgs.first() {
            let (c, ts) = m.message_ref.split_once('|').unwrap();
            return (c.to_string(), ts.to_string());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("card of case {case_id} was never stored");
}

fn buttons(blocks: &Value) -> Vec<String> {
    blocks
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().unwrap().iter().map(|e| e["text"]["text"].as_str().unwrap().to_string()))
        .collect()
}

async fn click(r: &Running, user: &str, action: &str, case_id: i64, ts: &str) -> (u16, String) {
    let body = click_body(&r.fake, user, action, case_id, ts);
    post_signed(&format!("{}/slack/interactions", r.base), &body, now(), SIGNING_SECRET).await
}

async fn submit(r: &Running, user: &str, metadata: &str, choice: &str, note: Option<&str>) -> (u16, String) {
    let body = submission_body(user, metadata, choice, note);
    post_signed(&format!("{}/slack/interactions", r.base), &body, now(), SIGNING_SECRET).await
}

async fn command(r: &Running, user: &str, text: &str) -> Value {
    let body = command_body(&r.fake, user, text);
    let (status, body) = post_signed(&format!("{}/slack/commands", r.base), &body, now(), SIGNING_SECRET).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

async fn a_claim_click_updates_the_card_and_resolve_through_the_modal_closes_it(b: Backend) {
    let r = start(b).await;
    let case_id = case_with_card(&r, "rev-1").await;
    let post = r.fake.calls_to("chat.postMessage").into_iter().find(|c| c.body["blocks"].is_array()).unwrap();
    assert_eq!(post.body["channel"], "C01PXTRIAGE");
    assert_eq!(
        buttons(&post.body["blocks"]),
        ["Claim", "Draft reply", "Escalate", "Take offline", "Resolve", "Reassign", "Snooze", "Fix triage", "Add note"]
    );
    let card_text = post.body["blocks"].to_string();
    assert!(card_text.contains("Waited four hours"), "the card shows the mention");
    assert!(card_text.contains("<!date^"), "SLA times are shown in each reader's time zone");
    let (channel, ts) = card_ref(&r, case_id).await;
    assert_eq!(channel, "C01PXTRIAGE");

    let (status, _) = click(&r, SAM, "claim", case_id, &ts).await;
    assert_eq!(status, 200);
    let case = r.ctx.store.case(case_id).await.unwrap().unwrap();
    assert_eq!(case.owner.as_deref(), Some("sam"), "the click claimed the case before the ack");
    let calls = r
        .fake
        .wait_for("card update and thread line", |c| {
            c.iter().any(|c| c.method == "chat.update" && c.body["ts"] == ts.as_str())
                && c.iter().any(|c| c.method == "chat.postMessage" && c.body["thread_ts"] == ts.as_str())
        })
        .await;
    let update = calls.iter().find(|c| c.method == "chat.update").unwrap();
    assert_eq!(update.body["channel"], "C01PXTRIAGE");
    let shown = update.body["blocks"].to_string();
    assert!(shown.contains("Sam Whitfield"), "the card shows the owner: {shown}");
    assert_eq!(
        buttons(&update.body["blocks"]),
        [
            "Release",
            "Draft reply",
            "Escalate",
            "Take offline",
            "Resolve",
            "Reassign",
            "Snooze",
            "Fix triage",
            "Add note"
        ]
    );
    let thread = calls.iter().find(|c| c.body["thread_ts"] == ts.as_str()).unwrap();
    assert!(thread.body["text"].as_str().unwrap().contains("claimed by Sam Whitfield"));

    let (status, _) = click(&r, SAM, "resolve", case_id, &ts).await;
    assert_eq!(status, 200);
    let calls = r.fake.wait_for("the outcome modal", |c| c.iter().any(|c| c.method == "views.open")).await;
    let open = calls.iter().find(|c| c.method == "views.open").unwrap();
    assert_eq!(open.body["trigger_id"], format!("trig-{SAM}-resolve-{case_id}"));
    assert_eq!(open.body["view"]["private_metadata"], format!("resolve:{case_id}"));
    assert_eq!(
        r.ctx.store.case(case_id).await.unwrap().unwrap().state,
        CaseState::Claimed,
        "a modal changes nothing yet"
    );

    let (status, body) =
        submit(&r, SAM, &format!("resolve:{case_id}"), "resolved", Some("called back, apologised")).await;
    assert_eq!((status, body.as_str()), (200, ""), "an empty 200 closes the modal");
    let case = r.ctx.store.case(case_id).await.unwrap().unwrap();
    assert_eq!((case.state, case.outcome), (CaseState::Resolved, Some(Outcome::Resolved)));
    r.fake
        .wait_for("the resolved card", |c| {
            c.iter().any(|c| {
                c.method == "chat.update"
                    && buttons(&c.body["blocks"]) == ["Reopen", "Add note"]
                    && c.body["text"].as_str().unwrap().contains("resolved")
            })
        })
        .await;
}

async fn bad_or_stale_signatures_are_401_and_change_nothing(b: Backend) {
    let r = start(b).await;
    let case_id = case_with_card(&r, "rev-2").await;
    let (_, ts) = card_ref(&r, case_id).await;
    let url = format!("{}/slack/interactions", r.base);
    let body = click_body(&r.fake, SAM, "claim", case_id, &ts);

    let (status, text) = post_signed(&url, &body, now(), "not-the-secret").await;
    assert_eq!(status, 401, "{text}");
    let (status, text) = post_signed(&url, &body, now() - 6 * 60, SIGNING_SECRET).await;
    assert_eq!(status, 401);
    assert!(text.contains("stale"), "{text}");
    let unsigned = reqwest::Client::new().post(&url).body(body.clone()).send().await.unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
    // A signed body that was altered afterwards.
    let ts_now = now();
    let sig = signature(SIGNING_SECRET, ts_now, &body);
    let tampered = body.replace("claim%3A", "resolve%3A");
    let res = reqwest::Client::new()
        .post(&url)
        .header("x-slack-request-timestamp", ts_now.to_string())
        .header("x-slack-signature", sig)
        .body(tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    // Signed but not a Slack payload: 400, on every callback path.
    let (status, _) = post_signed(&url, "payload=%7Bnot-json", now(), SIGNING_SECRET).await;
    assert_eq!(status, 400);
    let (status, text) = post_signed(&format!("{}/slack/commands", r.base), "text=claim", now(), SIGNING_SECRET).await;
    assert_eq!(status, 400, "{text}");
    let (status, _) = post_signed(&format!("{}/slack/events", r.base), "{\"type\":", now(), SIGNING_SECRET).await;
    assert_eq!(status, 400);
    // A carebot button whose value is not ACTION:CASE, and a form for no known case kind.
    let stale = click_body(&r.fake, SAM, "claim", case_id, &ts).replace("claim%3A", "launch%3A");
    assert_eq!(post_signed(&url, &stale, now(), SIGNING_SECRET).await.0, 200);
    let calls = r.fake.wait_for("the private answer", |c| c.iter().any(|c| c.method == "response_url")).await;
    let answer = calls.iter().find(|c| c.method == "response_url").unwrap();
    assert!(answer.body["text"].as_str().unwrap().contains("out of date"));
    let (status, body) = submit(&r, SAM, &format!("launch:{case_id}"), "resolved", None).await;
    assert_eq!(status, 200);
    assert!(body.contains("out of date"), "{body}");

    let case = r.ctx.store.case(case_id).await.unwrap().unwrap();
    assert_eq!((case.state, case.owner), (CaseState::Open, None));
    assert_eq!(r.ctx.store.events(case_id).await.unwrap().len(), 1, "only the opening event");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(r.fake.calls_to("chat.update").is_empty());
}

async fn people_outside_the_team_or_without_the_role_are_refused_privately(b: Backend) {
    let r = start(b).await;
    let case_id = case_with_card(&r, "rev-3").await;
    let (_, ts) = card_ref(&r, case_id).await;
    assert_eq!(click(&r, STRANGER, "claim", case_id, &ts).await.0, 200);
    assert_eq!(click(&r, HELEN, "claim", case_id, &ts).await.0, 200);
    let calls =
        r.fake.wait_for("two private refusals", |c| c.iter().filter(|c| c.method == "response_url").count() == 2).await;
    let stranger = calls.iter().find(|c| c.body["_id"] == format!("{STRANGER}-claim-{case_id}")).unwrap();
    assert!(stranger.body["text"].as_str().unwrap().contains("not in carebot's team file"));
    assert_eq!(stranger.body["replace_original"], false, "the card stays");
    let helen = calls.iter().find(|c| c.body["_id"] == format!("{HELEN}-claim-{case_id}")).unwrap();
    assert!(helen.body["text"].as_str().unwrap().contains("role"), "{}", helen.body);
    let case = r.ctx.store.case(case_id).await.unwrap().unwrap();
    assert_eq!((case.state, case.owner), (CaseState::Open, None));
}

async fn concurrent_claim_clicks_have_one_winner_and_the_loser_is_told_who(b: Backend) {
    let r = start(b).await;
    let case_id = case_with_card(&r, "rev-4").await;
    let (_, ts) = card_ref(&r, case_id).await;
    let (a, b2) = tokio::join!(click(&r, SAM, "claim", case_id, &ts), click(&r, DENA, "claim", case_id, &ts));
    assert_eq!((a.0, b2.0), (200, 200));
    let case = r.ctx.store.case(case_id).await.unwrap().unwrap();
    let winner = case.owner.clone().expect("someone won");
    let claims = r.ctx.store.events(case_id).await.unwrap().iter().filter(|e| e.action == "claim").count();
    assert_eq!(claims, 1);
    let calls = r.fake.wait_for("the loser's refusal", |c| c.iter().any(|c| c.method == "response_url")).await;
    let refusal = calls.iter().find(|c| c.method == "response_url").unwrap();
    assert!(
        refusal.body["text"]
            .as_str()
            .unwrap()
            .contains(&format!("already claimed by {}", r.ctx.playbooks().team.person(&winner).unwrap().name)),
        "{}",
        refusal.body
    );
}

async fn slash_commands_answer_privately_and_log_forwarded_posts(b: Backend) {
    let r = start(b).await;
    let case_id = case_with_card(&r, "rev-5").await;
    let queue = command(&r, SAM, "queue").await;
    assert_eq!(queue["response_type"], "ephemeral");
    assert!(queue["text"].as_str().unwrap().contains(&format!("#{case_id} ")), "{queue}");

    let claimed = command(&r, SAM, &format!("claim {case_id}")).await;
    assert!(claimed["text"].as_str().unwrap().contains("claimed by Sam Whitfield"), "{claimed}");
    let mine = command(&r, SAM, "mine").await;
    assert!(mine["text"].as_str().unwrap().contains(&format!("#{case_id} ")));
    let again = command(&r, DENA, &format!("claim {case_id}")).await;
    assert!(again["text"].as_str().unwrap().contains("already claimed by Sam Whitfield"));

    let unknown = command(&r, SAM, "frobnicate 3").await;
    assert!(
        unknown["text"].as_str().unwrap().contains("unknown command")
            && unknown["text"].as_str().unwrap().contains("/care queue")
    );
    let missing = command(&r, SAM, "show 999999").await;
    assert!(missing["text"].as_str().unwrap().contains("Case 999999 does not exist"));
    let stranger = command(&r, STRANGER, "queue").await;
    assert!(stranger["text"].as_str().unwrap().contains("not in carebot's team file"));

    let logged = command(
        &r,
        DENA,
        "log <https://facebook.com/groups/x/posts/7> --confidential my dad fell at Riverside and no one helped",
    )
    .await;
    let text = logged["text"].as_str().unwrap();
    assert!(text.contains("Logged as case #"), "{text}");
    let new_id: i64 = text.split('#').nth(1).unwrap().split(';').next().unwrap().parse().unwrap();
    let case = r.ctx.store.case(new_id).await.unwrap().unwrap();
    assert!(case.confidential);
    let calls = r
        .fake
        .wait_for("the confidential card", |c| {
            c.iter().any(|c| {
                c.method == "chat.postMessage"
                    && c.body["text"].as_str().unwrap_or("").contains(&format!("Case #{new_id} "))
            })
        })
        .await;
    let card =
        calls.iter().find(|c| c.body["text"].as_str().unwrap_or("").contains(&format!("Case #{new_id} "))).unwrap();
    let shown = card.body.to_string();
    assert!(
        !shown.contains("Dena") && !shown.contains("facebook.com"),
        "confidential cards hide who forwarded it: {shown}"
    );
}

async fn a_rate_limited_post_is_delivered_once_after_the_wait(b: Backend) {
    let r = start(b).await;
    r.fake.script("chat.postMessage", Scripted::RateLimited { retry_after_secs: 1 });
    let m = mention("google", "rev-6", REVIEW, Some(1.0));
    let case_id = ingest(&r.ctx, &[m]).await.unwrap()[0].case_id();
    card_ref(&r, case_id).await; // stored only once Slack accepted the post
    let posts: Vec<_> = r.fake.calls_to("chat.postMessage");
    assert_eq!(posts.len(), 2, "one 429, then one delivery");
    assert!(posts[1].at - posts[0].at >= Duration::from_millis(950), "Retry-After was honoured");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cards = r.fake.calls_to("chat.postMessage").into_iter().filter(|c| c.body["blocks"].is_array()).count();
    assert_eq!(cards, 2, "no third attempt");
    assert_eq!(r.ctx.store.case_messages(case_id).await.unwrap().len(), 1);
}

async fn a_channel_error_is_reported_and_not_retried_forever(b: Backend) {
    let r = start(b).await;
    r.fake.script("chat.postMessage", Scripted::Error("not_in_channel"));
    let m = mention("google", "rev-7", REVIEW, Some(1.0));
    ingest(&r.ctx, &[m]).await.unwrap();
    for _ in 0..250 {
        if r.ctx.store.outbox_depth().await.unwrap().1 == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(r.ctx.store.outbox_depth().await.unwrap().1, 1, "marked failed");
    assert_eq!(r.fake.calls_to("chat.postMessage").len(), 1, "not retried");
    let metrics = reqwest::get(format!("{}/metrics", r.base)).await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("carebot_slack_api_errors_total{method=\"chat.postMessage\",code=\"not_in_channel\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("carebot_outbox_failed 1"));
}

async fn escalation_from_the_modal_reaches_the_site_owner_by_dm(b: Backend) {
    let r = start(b).await;
    let case_id = case_with_card(&r, "rev-8").await;
    let (status, body) = submit(&r, SAM, &format!("escalate:{case_id}"), "site-owner", Some("needs a manager")).await;
    assert_eq!((status, body.as_str()), (200, ""));
    let calls = r
        .fake
        .wait_for("a DM to the Riverside owner", |c| {
            c.iter().any(|c| c.method == "chat.postMessage" && c.body["channel"] == "DU01MARCUS04")
        })
        .await;
    let open = calls.iter().find(|c| c.method == "conversations.open").unwrap();
    assert!(open.body["users"].to_string().contains("U01MARCUS04"));
    let dm = calls.iter().find(|c| c.body["channel"] == "DU01MARCUS04").unwrap();
    assert!(dm.body["text"].as_str().unwrap().contains(&format!("Case #{case_id}")));

    // A bad choice in the form is shown in the form and changes nothing.
    let (status, body) = submit(&r, SAM, &format!("escalate:{case_id}"), "oncall:nonexistent", None).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["response_action"], "errors", "{v}");
    assert!(v["errors"]["choice"].as_str().unwrap().contains("no rotation"));
    let escalations = r.ctx.store.events(case_id).await.unwrap().iter().filter(|e| e.action == "escalate").count();
    assert_eq!(escalations, 1);
}

/// A review quoted in the digest (a shout-out) cannot ping the leadership channel or hide
/// a link: the channel message is escaped like a card.
async fn a_review_quoted_in_the_digest_cannot_ping_or_link(b: Backend) {
    let r = start(b).await;
    let text = "Thank you Northgate nurses <!channel> see <https://evil.example|our thanks>";
    ingest(&r.ctx, &[mention("google", "esc-1", text, Some(5.0))]).await.unwrap();
    let today = chrono::Utc::now().with_timezone(&chrono_tz::America::Chicago).date_naive();
    carebot::ops::queue_ops(&r.ctx, &ChatOp::report(false, today)).await.unwrap();
    r.ctx.outbox_wake.notify_one();
    let calls = r
        .fake
        .wait_for("the digest text", |c| {
            c.iter().any(|c| c.method == "chat.postMessage" && c.body["channel"] == "C01LEADERS0")
        })
        .await;
    let posted = calls.iter().find(|c| c.method == "chat.postMessage" && c.body["channel"] == "C01LEADERS0").unwrap();
    let body = posted.body["text"].as_str().unwrap();
    assert!(body.contains("&lt;!channel&gt;") && body.contains("&lt;https://evil.example|our thanks&gt;"), "{body}");
    assert!(!body.contains("<!channel>") && !body.contains("<https://"), "{body}");
}

async fn the_digest_chart_is_uploaded_with_the_v2_flow(b: Backend) {
    let r = start(b).await;
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
    carebot::ops::queue_ops(&r.ctx, &ChatOp::report(false, date)).await.unwrap();
    r.ctx.outbox_wake.notify_one();
    let calls = r
        .fake
        .wait_for("the upload to complete", |c| c.iter().any(|c| c.method == "files.completeUploadExternal"))
        .await;
    let get = calls.iter().find(|c| c.method == "files.getUploadURLExternal").unwrap();
    assert_eq!(get.body["filename"], "digest-2026-11-22.png");
    let done = calls.iter().find(|c| c.method == "files.completeUploadExternal").unwrap();
    assert_eq!(done.body["channel_id"], "C01LEADERS0");
    let id = done.body["files"][0]["id"].as_str().unwrap();
    let png = r.fake.upload(id).expect("bytes uploaded");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        calls.iter().any(|c| c.method == "chat.postMessage" && c.body["channel"] == "C01LEADERS0"),
        "digest text too"
    );
}

async fn reply_modal_values(r: &Running, user: &str, case_id: i64, text: &str, override_block: bool) -> (u16, String) {
    let mut values = json!({ "note": {"note": {"type": "plain_text_input", "value": text}} });
    if override_block {
        values["override"] = json!({"override": {"type": "checkboxes",
            "selected_options": [{"text": {"type": "mrkdwn", "text": "Accept"}, "value": "override"}]}});
    }
    let body = view_body(user, &format!("reply:{case_id}"), values);
    post_signed(&format!("{}/slack/interactions", r.base), &body, now(), SIGNING_SECRET).await
}

fn input_value(view: &Value, block: &str) -> String {
    let b = view["blocks"].as_array().unwrap().iter().find(|b| b["block_id"] == block).unwrap();
    b["element"]["initial_value"].as_str().unwrap_or_default().to_string()
}

/// Draft reply opens an editor: the draft prefilled and signed by the agent, the template
/// picker, the findings; another template redraws it; a blocked text is refused inside the
/// modal naming the words and changes nothing; the edited text is recorded exactly.
async fn the_reply_modal_edits_checks_and_records_the_exact_text(b: Backend) {
    let r = start(b).await;
    let case_id = case_with_card(&r, "rev-10").await;
    let (_, ts) = card_ref(&r, case_id).await;
    assert_eq!(click(&r, SAM, "draft_reply", case_id, &ts).await.0, 200);
    let calls = r.fake.wait_for("the reply modal", |c| c.iter().any(|c| c.method == "views.open")).await;
    let view = calls.iter().find(|c| c.method == "views.open").unwrap().body["view"].clone();
    assert_eq!(view["private_metadata"], format!("reply:{case_id}"));
    assert_eq!(view["submit"]["text"], "Mark responded");
    let draft = input_value(&view, "note");
    assert!(draft.contains("Sam"), "signed with the agent's first name: {draft}");
    let picker = view["blocks"].as_array().unwrap().iter().find(|b| b["block_id"] == "choice").unwrap();
    assert_eq!(picker["dispatch_action"], true, "picking a template redraws the modal");
    let options = picker["element"]["options"].as_array().unwrap();
    assert_eq!(picker["element"]["initial_option"]["value"], options[0]["value"]);
    assert!(view.to_string().contains("Compliance") || view.to_string().contains("warn"), "findings shown: {view}");

    // Another template: the modal is redrawn in place with that template selected.
    {
        let other = options.get(1).and_then(|o| o["value"].as_str()).expect("a negative review fits several templates");
        let body = modal_select_body(SAM, &format!("reply:{case_id}"), other);
        let (status, _) = post_signed(&format!("{}/slack/interactions", r.base), &body, now(), SIGNING_SECRET).await;
        assert_eq!(status, 200);
        let calls = r.fake.wait_for("the redrawn modal", |c| c.iter().any(|c| c.method == "views.update")).await;
        let update = calls.iter().find(|c| c.method == "views.update").unwrap();
        assert_eq!(update.body["view_id"], "V0MODAL");
        let picker =
            update.body["view"]["blocks"].as_array().unwrap().iter().find(|b| b["block_id"] == "choice").cloned();
        assert_eq!(picker.unwrap()["element"]["initial_option"]["value"], other);
    }

    // No way to take it offline: refused in the modal, under the text, naming the rule.
    let (status, body) =
        reply_modal_values(&r, SAM, case_id, "Thank you for your feedback, we are sorry.", false).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["response_action"], "errors", "{v}");
    let why = v["errors"]["note"].as_str().unwrap();
    assert!(why.contains("cannot be marked responded") && why.contains("BLOCK"), "{why}");
    assert_eq!(r.ctx.store.case(case_id).await.unwrap().unwrap().state, CaseState::Open, "nothing changed");

    // The edited text is what is recorded, and the agent is told.
    let edited = format!("{draft}\nWe look forward to hearing from you.");
    let (status, body) = reply_modal_values(&r, SAM, case_id, &edited, false).await;
    assert_eq!((status, body.as_str()), (200, ""), "the modal closes");
    let case = r.ctx.store.case(case_id).await.unwrap().unwrap();
    assert_eq!((case.state, case.owner.as_deref()), (CaseState::Responded, Some("sam")));
    let events = r.ctx.store.events(case_id).await.unwrap();
    let respond = events.iter().find(|e| e.action == "respond").unwrap();
    assert_eq!(respond.detail["text"], edited.as_str(), "exactly the submitted text");
    r.fake
        .wait_for("the confirmation DM", |c| {
            c.iter().any(|c| {
                c.method == "chat.postMessage"
                    && c.body["channel"] == format!("D{SAM}")
                    && c.body["text"].as_str().unwrap_or("").contains("public reply posted by Sam Whitfield")
            })
        })
        .await;
}

/// With publishing on for Google at the review's site, the reply modal offers "Post it on
/// Google"; ticked, the submitted text is posted as the review's reply and the thread says
/// so. Left unticked, nothing reaches Google.
async fn the_reply_modal_can_post_the_reply_on_google(b: Backend) {
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
    google.with(|f| f.known_reviews.insert("accounts/1/locations/9/reviews/rev-30".into()));
    let case_id = case_with_card(&r, "rev-30").await;
    let (_, ts) = card_ref(&r, case_id).await;
    let view = open_reply_modal(&r, case_id, &ts, 1).await;
    let tick =
        view["blocks"].as_array().unwrap().iter().find(|b| b["block_id"] == "publish").expect("a publish tick box");
    assert_eq!(tick["element"]["options"][0]["text"]["text"], "Post it on Google as the organisation");
    let text = format!("{}\nWe look forward to hearing from you.", input_value(&view, "note"));
    let values = json!({
        "note": {"note": {"type": "plain_text_input", "value": text}},
        "publish": {"publish": {"type": "checkboxes",
            "selected_options": [{"text": {"type": "mrkdwn", "text": "Post it"}, "value": "publish"}]}},
    });
    let body = view_body(SAM, &format!("reply:{case_id}"), values);
    let (status, body) = post_signed(&format!("{}/slack/interactions", r.base), &body, now(), SIGNING_SECRET).await;
    assert_eq!((status, body.as_str()), (200, ""), "the modal closes");
    r.fake
        .wait_for("the thread line", |c| {
            c.iter().any(|c| c.body["text"].as_str().unwrap_or("").starts_with("replied on Google at "))
        })
        .await;
    assert_eq!(google.with(|f| f.google_replies.values().cloned().collect::<Vec<_>>()), [text]);

    // Unticked: recorded as responded, nothing posted.
    google.with(|f| f.known_reviews.insert("accounts/1/locations/9/reviews/rev-31".into()));
    let other = case_with_card(&r, "rev-31").await;
    let (_, ts) = card_ref(&r, other).await;
    let view = open_reply_modal(&r, other, &ts, 2).await;
    let (status, _) = reply_modal_values(&r, SAM, other, &input_value(&view, "note"), false).await;
    assert_eq!(status, 200);
    assert_eq!(r.ctx.store.case(other).await.unwrap().unwrap().state, CaseState::Responded);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(google.writes(), 1, "only the ticked reply reached Google");
}

/// Clicks Draft reply and returns the `n`-th modal carebot opened (counting from 1).
async fn open_reply_modal(r: &Running, case_id: i64, ts: &str, n: usize) -> Value {
    assert_eq!(click(r, SAM, "draft_reply", case_id, ts).await.0, 200);
    let calls =
        r.fake.wait_for("the reply modal", |c| c.iter().filter(|c| c.method == "views.open").count() >= n).await;
    calls.iter().filter(|c| c.method == "views.open").nth(n - 1).unwrap().body["view"].clone()
}

const RISK: &str =
    "They gave my father the wrong medication at Riverside and he ended up in the ICU. Calling a lawyer.";

fn dm_texts(r: &Running, user: &str) -> Vec<String> {
    r.fake
        .calls_to("chat.postMessage")
        .into_iter()
        .filter(|c| c.body["channel"] == format!("D{user}"))
        .map(|c| c.body["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A risk reply goes to the leads (a DM each, the card shows it with Approve / Request
/// changes); the Approve button binds the exact request shown; the agent hears the
/// decision; an edited text needs a new approval; the approved text is what is recorded.
async fn a_risk_reply_waits_for_a_lead_and_the_approval_binds_the_exact_text(b: Backend) {
    let r = start(b).await;
    let m = mention("facebook", "risk-1", RISK, None);
    let case_id = ingest(&r.ctx, &[m]).await.unwrap()[0].case_id();
    assert!(r.ctx.store.case(case_id).await.unwrap().unwrap().risk);
    let (_, ts) = card_ref(&r, case_id).await;
    let first = carebot::drafting::draft(&r.ctx, case_id, "sam", None).await.unwrap().text;

    let (status, body) = reply_modal_values(&r, SAM, case_id, &first, false).await;
    assert_eq!((status, body.as_str()), (200, ""), "{body}");
    let case = r.ctx.store.case(case_id).await.unwrap().unwrap();
    assert_eq!(case.state, CaseState::Claimed, "not responded: it waits for a lead");
    let calls = r
        .fake
        .wait_for("the request DM and the approval card", |c| {
            c.iter().any(|c| c.body["channel"] == format!("D{DENA}"))
                && c.iter().any(|c| {
                    c.method == "chat.update" && buttons(&c.body["blocks"]).contains(&"Approve reply".to_string())
                })
        })
        .await;
    let ask = dm_texts(&r, DENA).join("\n");
    assert!(ask.contains(&format!("approve a reply for case #{case_id}")) && ask.contains("Sam Whitfield"), "{ask}");
    let card = calls.iter().rev().find(|c| c.method == "chat.update").unwrap();
    assert!(card.body["blocks"].to_string().contains("Reply awaiting a lead"), "the card shows the text");
    let first_request = r.ctx.store.events(case_id).await.unwrap().last().unwrap().id;
    // The lead's DM carries the text, its findings, a link to the card and the decision buttons.
    let dm = r.fake.calls_to("chat.postMessage").into_iter().find(|c| c.body["channel"] == format!("D{DENA}")).unwrap();
    assert_eq!(buttons(&dm.body["blocks"]), ["Approve reply", "Request changes"]);
    let shown = dm.body["blocks"].to_string();
    assert!(shown.contains(&format!("approve_reply:{case_id}:{first_request}")), "bound to the request: {shown}");
    assert!(
        shown.contains("Open the card") && (shown.contains("Findings") || shown.contains("no findings")),
        "{shown}"
    );
    let approvals = command(&r, DENA, "approvals").await;
    assert!(approvals["text"].as_str().unwrap().contains(&format!("#{case_id}")), "{approvals}");

    // An agent cannot approve; the agent edits the text: a new request.
    let refused = command(&r, SAM, &format!("approve {case_id}")).await;
    assert!(refused["text"].as_str().unwrap().contains("lead"), "{refused}");
    let second = format!("{first}\nThank you for your patience.");
    assert_eq!(reply_modal_values(&r, SAM, case_id, &second, false).await.0, 200);
    let second_request = r.ctx.store.events(case_id).await.unwrap().last().unwrap().id;
    assert!(second_request > first_request);

    // The lead clicks Approve on the card drawn for the first text: refused, nothing approved.
    let stale =
        click_value_body(&r.fake, DENA, "approve_reply", &format!("approve_reply:{case_id}:{first_request}"), &ts);
    assert_eq!(post_signed(&format!("{}/slack/interactions", r.base), &stale, now(), SIGNING_SECRET).await.0, 200);
    r.fake
        .wait_for("the stale refusal", |c| {
            c.iter()
                .any(|c| c.method == "response_url" && c.body["text"].as_str().unwrap_or("").contains("changed since"))
        })
        .await;
    assert!(!r.ctx.store.events(case_id).await.unwrap().iter().any(|e| e.action == "approve_reply"));
    let fresh =
        click_value_body(&r.fake, DENA, "approve_reply", &format!("approve_reply:{case_id}:{second_request}"), &ts);
    assert_eq!(post_signed(&format!("{}/slack/interactions", r.base), &fresh, now(), SIGNING_SECRET).await.0, 200);
    let events = r.ctx.store.events(case_id).await.unwrap();
    let approved = events.iter().find(|e| e.action == "approve_reply").unwrap();
    assert_eq!((approved.actor.as_str(), approved.detail["text"].as_str()), ("dena", Some(second.as_str())));
    r.fake
        .wait_for("the decision DM", |c| {
            c.iter().any(|c| {
                c.body["channel"] == format!("D{SAM}")
                    && c.body["text"].as_str().unwrap_or("").contains("approved your reply")
            })
        })
        .await;
    // Draft reply now opens on the approved text, to post as is and mark responded.
    let view = open_reply_modal(&r, case_id, &ts, 1).await;
    assert_eq!((view["submit"]["text"].as_str(), input_value(&view, "note")), (Some("Mark responded"), second.clone()));
    assert!(!view.to_string().contains("sends the text to a lead"), "{view}");

    // Changing the approved text needs a new approval; the approved text is recorded as is.
    let third = format!("{second} ");
    let edited = format!("{second}\nWe are here for you.");
    assert_eq!(reply_modal_values(&r, SAM, case_id, &edited, false).await.0, 200);
    assert_eq!(r.ctx.store.case(case_id).await.unwrap().unwrap().state, CaseState::Claimed);
    let sent_back = command(&r, DENA, &format!("changes {case_id} keep it shorter")).await;
    assert!(sent_back["text"].as_str().unwrap().contains("sent back"), "{sent_back}");
    r.fake
        .wait_for("the send-back DM", |c| {
            c.iter().any(|c| {
                c.body["channel"] == format!("D{SAM}")
                    && c.body["text"].as_str().unwrap_or("").contains("keep it shorter")
            })
        })
        .await;
    // Draft reply reopens on the text that was sent back, with the lead's note.
    let view = open_reply_modal(&r, case_id, &ts, 2).await;
    assert_eq!(input_value(&view, "note"), edited);
    assert!(view.to_string().contains("Dena Ortiz sent this back: keep it shorter"), "{view}");
    assert_eq!(view["submit"]["text"], "Send for approval");
    let done = command(&r, SAM, &format!("respond {case_id} {third}")).await;
    assert!(done["text"].as_str().unwrap().contains("now responded"), "{done}");
    let respond = r.ctx.store.events(case_id).await.unwrap().into_iter().find(|e| e.action == "respond").unwrap();
    assert_eq!(respond.detail["approved_by"], "dena");
    assert!(respond.detail["text"].as_str().unwrap().trim() == second.trim());
}

/// Every case action of the CLI, taken from Slack: `/care` subcommands, card buttons and
/// modals; each row checks what was recorded.
async fn every_case_action_can_be_taken_from_slack(b: Backend) {
    let r = start(b).await;
    let case_id = case_with_card(&r, "rev-20").await;
    let (_, ts) = card_ref(&r, case_id).await;
    let said = |v: Value| v["text"].as_str().unwrap().to_string();
    assert_eq!(click(&r, SAM, "claim", case_id, &ts).await.0, 200);
    // note: the button opens a modal with a required text field
    assert_eq!(click(&r, SAM, "note", case_id, &ts).await.0, 200);
    let calls = r.fake.wait_for("the note modal", |c| c.iter().any(|c| c.method == "views.open")).await;
    let view = &calls.iter().find(|c| c.method == "views.open").unwrap().body["view"];
    assert_eq!(view["private_metadata"], format!("note:{case_id}"));
    let values = json!({ "note": {"note": {"type": "plain_text_input", "value": "called the family back"}} });
    let body = view_body(SAM, &format!("note:{case_id}"), values);
    assert_eq!(post_signed(&format!("{}/slack/interactions", r.base), &body, now(), SIGNING_SECRET).await.0, 200);
    assert!(said(command(&r, SAM, &format!("release {case_id}")).await).contains("released by"));
    // reassign: by Slack mention, as Slack's autocomplete writes it
    let v = command(&r, DENA, &format!("reassign {case_id} <@{SAM}|sam>")).await;
    assert!(said(v.clone()).contains("reassigned to Sam Whitfield"), "{v}");
    let text = carebot::drafting::draft(&r.ctx, case_id, "sam", None).await.unwrap().text;
    assert!(said(command(&r, SAM, &format!("respond {case_id} {text}")).await).contains("now responded"));
    assert!(said(command(&r, SAM, &format!("escalate {case_id} risk needs eyes")).await).contains("escalated to"));
    assert!(said(command(&r, SAM, &format!("offline {case_id} email")).await).contains("taken offline (email)"));
    assert!(said(command(&r, SAM, &format!("resolve {case_id} resolved")).await).contains("resolved"));
    assert!(said(command(&r, SAM, &format!("reopen {case_id} she wrote again")).await).contains("reopened by"));
    assert!(said(command(&r, SAM, &format!("note {case_id} closing the loop")).await).contains("note by"));
    let v = command(&r, DENA, &format!("cover px-oncall <@{SAM}|sam> tomorrow")).await;
    assert!(said(v.clone()).contains("Sam Whitfield covers px-oncall until"), "{v}");
    assert!(said(command(&r, SAM, "oncall").await).contains("px-oncall: Sam Whitfield"));
    let events = r.ctx.store.events(case_id).await.unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "opened", "claim", "note", "release", "reassign", "respond", "escalate", "offline", "resolve", "reopen",
            "note"
        ]
    );
    assert_eq!(events[5].detail["text"].as_str().map(str::trim), Some(text.trim()), "the reply keeps its lines");
    // reassign: the button's picker offers only people who can own cases
    assert_eq!(click(&r, SAM, "reassign", case_id, &ts).await.0, 200);
    let calls = r
        .fake
        .wait_for("the reassign modal", |c| {
            c.iter().any(|c| {
                c.method == "views.open" && c.body["view"]["private_metadata"] == format!("reassign:{case_id}")
            })
        })
        .await;
    let view = calls.iter().rev().find(|c| c.method == "views.open").unwrap().body["view"].to_string();
    assert!(view.contains("Sam Whitfield") && !view.contains("Helen Park"), "{view}");
    // A teammate by first name; escalating to the channel really notifies it.
    let v = command(&r, DENA, &format!("reassign {case_id} Priya")).await;
    assert!(said(v.clone()).contains("reassigned to Priya Raman by Dena Ortiz"), "{v}");
    let v = command(&r, DENA, &format!("escalate {case_id} channel")).await;
    assert!(said(v.clone()).contains("escalated to channel"), "{v}");
    r.fake
        .wait_for("the @here", |c| {
            c.iter().any(|c| {
                c.method == "chat.postMessage"
                    && c.body["reply_broadcast"] == true
                    && c.body["text"].as_str().unwrap_or("").starts_with("<!here> escalated to channel by Dena Ortiz")
            })
        })
        .await;
    // Someone who cannot work cases cannot cover the on-call.
    let v = command(&r, DENA, "cover px-oncall @helen 8h").await;
    assert!(said(v.clone()).contains("Helen Park cannot be on call"), "{v}");
    // Bad input changes nothing and says why.
    let events = r.ctx.store.events(case_id).await.unwrap();
    let v = command(&r, SAM, &format!("reassign {case_id} @nobody")).await;
    assert!(said(v).contains("not in the team file"));
    let v = command(&r, SAM, &format!("offline {case_id} pigeon")).await;
    assert!(said(v).contains("unknown channel"));
    assert_eq!(r.ctx.store.events(case_id).await.unwrap().len(), events.len());
}

/// An escalation DM carries the case, a link to its card and Claim / Snooze buttons; the
/// buttons work from the DM and say what they did there; snoozing from it records a snooze.
async fn escalation_nudges_link_the_card_and_can_be_acted_on(b: Backend) {
    let r = start(b).await;
    let case_id = case_with_card(&r, "rev-30").await;
    let (channel, ts) = card_ref(&r, case_id).await;
    let v = command(&r, SAM, &format!("escalate {case_id} @dena needs a lead")).await;
    assert!(v["text"].as_str().unwrap().contains("escalated to Dena Ortiz"), "{v}");
    let calls = r
        .fake
        .wait_for("the nudge", |c| {
            c.iter().any(|c| c.method == "chat.postMessage" && c.body["channel"] == format!("D{DENA}"))
        })
        .await;
    let dm = calls.iter().find(|c| c.body["channel"] == format!("D{DENA}")).unwrap();
    let blocks = dm.body["blocks"].to_string();
    assert!(dm.body["text"].as_str().unwrap().contains(&format!("Case #{case_id}")));
    let link = format!("https://example-health.slack.com/archives/{channel}/p{}", ts.replace('.', ""));
    assert!(blocks.contains(&link), "a link to the card: {blocks}");
    assert_eq!(buttons(&dm.body["blocks"]), ["Claim", "Snooze"]);
    let dm_ts = "1764000009.000100";
    let body = click_value_body(&r.fake, DENA, "claim", &format!("claim:{case_id}"), dm_ts)
        .replace("C01PXTRIAGE", &format!("D{DENA}"));
    assert_eq!(post_signed(&format!("{}/slack/interactions", r.base), &body, now(), SIGNING_SECRET).await.0, 200);
    r.fake
        .wait_for("the answer in the DM", |c| {
            c.iter().any(|c| {
                c.method == "response_url" && c.body["text"].as_str().unwrap_or("").contains("claimed by Dena")
            })
        })
        .await;
    assert_eq!(r.ctx.store.case(case_id).await.unwrap().unwrap().owner.as_deref(), Some("dena"));
    // Snooze: the button asks how long; the answer records the snooze.
    let (status, body) = submit(&r, DENA, &format!("snooze:{case_id}"), "1h", None).await;
    assert_eq!((status, body.as_str()), (200, ""), "{body}");
    let case = r.ctx.store.case(case_id).await.unwrap().unwrap();
    let left = case.snoozed_until.unwrap() - chrono::Utc::now().timestamp_millis();
    assert!((3_500_000..=3_600_000).contains(&left), "about an hour: {left}");
    let v = command(&r, DENA, &format!("snooze {case_id} forever")).await;
    assert!(v["text"].as_str().unwrap().contains("snooze for e.g."), "{v}");
}

/// A lead corrects the triage from chat: the situation brings its priority, SLA clocks
/// and channel (a card there); no site means organisation-wide contacts in the draft; an
/// agent cannot; bad values say what is allowed and change nothing.
async fn a_lead_fixes_the_triage_and_the_clocks_and_channel_follow(b: Backend) {
    let r = start(b).await;
    let case_id = case_with_card(&r, "rev-40").await;
    let (_, ts) = card_ref(&r, case_id).await;
    let before = r.ctx.store.case(case_id).await.unwrap().unwrap();
    let said = |v: Value| v["text"].as_str().unwrap().to_string();

    let refused = said(command(&r, SAM, &format!("set {case_id} situation clinical-risk")).await);
    assert!(refused.contains("needs the lead role"), "{refused}");
    let bad = said(command(&r, DENA, &format!("set {case_id} situation nonsense")).await);
    assert!(bad.contains("one of clinical-risk"), "{bad}");
    assert_eq!(r.ctx.store.events(case_id).await.unwrap().len(), 1, "nothing recorded");

    let done = said(command(&r, DENA, &format!("set {case_id} situation clinical-risk")).await);
    assert!(done.contains("situation set to"), "{done}");
    let after = r.ctx.store.case(case_id).await.unwrap().unwrap();
    let pb = r.ctx.playbooks();
    let risk = pb.situations.get("clinical-risk").unwrap();
    assert_eq!(
        (after.situation.as_str(), after.priority, after.channel.as_str()),
        ("clinical-risk", risk.priority, "risk")
    );
    assert_eq!(after.ack_due, risk.sla.acknowledge.map(|d| before.opened_at + d.as_millis()), "clock from opening");
    assert_ne!(after.ack_due, before.ack_due);
    assert!(after.risk, "a clinical-risk case: replies now need a lead's approval");
    let event = r.ctx.store.events(case_id).await.unwrap().last().unwrap().clone();
    assert_eq!(
        (event.detail["from"].as_str(), event.detail["to"].as_str()),
        (Some("negative-review"), Some("clinical-risk"))
    );
    r.fake
        .wait_for("the card in the risk channel", |c| {
            c.iter().any(|c| {
                c.method == "chat.postMessage" && c.body["channel"] == "C01RISKMGMT" && c.body["blocks"].is_array()
            })
        })
        .await;

    // A category fixed by hand replaces the detected category tags on the card.
    assert!(said(command(&r, DENA, &format!("set {case_id} category billing")).await).contains("category set to"));
    let tags: Vec<String> =
        carebot::present::card_for(&r.ctx, case_id).await.unwrap().tags.into_iter().map(|t| t.label).collect();
    assert!(tags.contains(&"Billing".to_string()) && !tags.contains(&"Wait times".to_string()), "{tags:?}");

    // No site: the card says so and the draft gives the organisation's contacts.
    assert!(said(command(&r, DENA, &format!("set {case_id} site none")).await).contains("site set to no site"));
    let draft = carebot::drafting::draft(&r.ctx, case_id, "sam", None).await.unwrap().text;
    assert!(draft.contains("patientexperience@lakeshore-health.example"), "{draft}");
    assert!(!draft.contains("riverside"), "{draft}");
    let card = carebot::present::card_for(&r.ctx, case_id).await.unwrap();
    assert_eq!(card.site, None);
    assert!(carebot::chat::slack::blocks::card_blocks(&card)
        .iter()
        .any(|b| serde_json::to_string(b).unwrap().contains("no site detected")));

    // The card's Fix triage button asks which site or situation.
    assert_eq!(click(&r, DENA, "fix_triage", case_id, &ts).await.0, 200);
    let calls = r
        .fake
        .wait_for("the triage form", |c| {
            c.iter()
                .any(|c| c.method == "views.open" && c.body["view"]["private_metadata"] == format!("triage:{case_id}"))
        })
        .await;
    let view = calls.iter().rev().find(|c| c.method == "views.open").unwrap().body["view"].to_string();
    assert!(view.contains("site:riverside") && view.contains("situation:negative-review"), "{view}");
    let (status, body) = submit(&r, DENA, &format!("triage:{case_id}"), "site:riverside", None).await;
    assert_eq!((status, body.as_str()), (200, ""));
    assert_eq!(r.ctx.store.case(case_id).await.unwrap().unwrap().site.as_deref(), Some("riverside"));
}

/// Opening the App Home tab shows the person's cases and the unclaimed queue, most urgent
/// first (the order of `/care queue`); Claim from the home tab works and redraws it.
async fn the_app_home_shows_my_cases_and_the_queue_most_urgent_first(b: Backend) {
    let r = start(b).await;
    let routine = case_with_card(&r, "rev-50").await;
    let urgent = ingest(&r.ctx, &[mention("facebook", "risk-50", RISK, None)]).await.unwrap()[0].case_id();
    let queue = command(&r, SAM, "queue").await["text"].as_str().unwrap().to_string();
    let (u, n) = (queue.find(&format!("#{urgent} ")).unwrap(), queue.find(&format!("#{routine} ")).unwrap());
    assert!(u < n, "the P1 comes first although it is newer: {queue}");

    let event = json!({
        "token": "legacy", "team_id": "T0EXAMPLE", "api_app_id": "A0CAREBOT", "type": "event_callback",
        "event_id": "Ev0HOME", "event_time": 1764000000,
        "event": {"type": "app_home_opened", "user": SAM, "channel": format!("D{SAM}"), "tab": "home",
                  "event_ts": "1764000000.000100"}
    })
    .to_string();
    let (status, _) = post_signed(&format!("{}/slack/events", r.base), &event, now(), SIGNING_SECRET).await;
    assert_eq!(status, 200);
    let calls = r.fake.wait_for("the home tab", |c| c.iter().any(|c| c.method == "views.publish")).await;
    let home = calls.iter().find(|c| c.method == "views.publish").unwrap();
    assert_eq!((home.body["user_id"].as_str(), home.body["view"]["type"].as_str()), (Some(SAM), Some("home")));
    let text = home.body["view"].to_string();
    let (yours, unclaimed) = (text.find("Your open cases (0)").unwrap(), text.find("Unclaimed queue (2)").unwrap());
    assert!(
        yours < unclaimed && text.find(&format!("#{urgent} ")).unwrap() < text.find(&format!("#{routine} ")).unwrap()
    );

    // Claim from the home tab: a block action in a view of type home.
    let payload = json!({
        "type": "block_actions", "team": {"id": "T0EXAMPLE", "domain": "example-health"},
        "user": {"id": SAM, "username": "sam", "team_id": "T0EXAMPLE"}, "api_app_id": "A0CAREBOT",
        "container": {"type": "view", "view_id": "V0HOME"}, "trigger_id": "trig-home",
        "view": {"id": "V0HOME", "team_id": "T0EXAMPLE", "type": "home", "blocks": [], "private_metadata": "",
                 "callback_id": "", "state": {"values": {}}, "hash": "1764000000.home"},
        "actions": [{"type": "button", "action_id": "carebot_claim", "block_id": format!("home_{routine}"),
                     "text": {"type": "plain_text", "text": "Claim"}, "value": format!("claim:{routine}"),
                     "action_ts": "1764000002.000100"}]
    });
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    assert_eq!(post_signed(&format!("{}/slack/interactions", r.base), &body, now(), SIGNING_SECRET).await.0, 200);
    assert_eq!(r.ctx.store.case(routine).await.unwrap().unwrap().owner.as_deref(), Some("sam"));
    let calls =
        r.fake.wait_for("the redrawn home", |c| c.iter().filter(|c| c.method == "views.publish").count() == 2).await;
    let home = calls.iter().rev().find(|c| c.method == "views.publish").unwrap().body["view"].to_string();
    assert!(home.contains("Your open cases (1)") && home.contains("Unclaimed queue (1)"), "{home}");
}

/// A mention triage is unsure about reaches the risk channel as "possible risk"; one click
/// confirms it (a clinical-risk case) or dismisses it back to the queue it would have
/// joined; each verdict is recorded, and an agent may confirm but not dismiss.
async fn a_possible_risk_is_confirmed_or_dismissed_with_one_click(b: Backend) {
    let r = start(b).await;
    let text = "There was a mistake with my results at Riverside and I am still confused about what happened next.";
    const OTHER: &str = "Eastbrook made some mistake with the x ray for my son, the clinic will not say what.";
    let ids: Vec<i64> =
        ingest(&r.ctx, &[mention("google", "pr-1", text, Some(2.0)), mention("google", "pr-2", OTHER, Some(2.0))])
            .await
            .unwrap()
            .iter()
            .map(|o| o.case_id())
            .collect();
    let (dismissed, confirmed) = (ids[0], ids[1]);
    let case = r.ctx.store.case(dismissed).await.unwrap().unwrap();
    assert_eq!((case.situation.as_str(), case.channel.as_str(), case.risk), ("possible-risk", "risk", false));
    let calls = r
        .fake
        .wait_for("the possible-risk card in #risk", |c| {
            c.iter().any(|c| {
                c.method == "chat.postMessage"
                    && c.body["channel"] == "C01RISKMGMT"
                    && c.body["text"].as_str().unwrap_or("").contains(&format!("Case #{dismissed} "))
            })
        })
        .await;
    let card = calls
        .iter()
        .find(|c| {
            c.body["channel"] == "C01RISKMGMT"
                && c.body["text"].as_str().unwrap_or("").contains(&format!("Case #{dismissed} "))
        })
        .unwrap();
    assert_eq!(buttons(&card.body["blocks"])[..2], ["Confirm risk", "Dismiss risk"]);
    let shown = card.body["blocks"].to_string();
    assert!(shown.contains("Possible clinical harm (to confirm)") && shown.contains("results … mistake"), "{shown}");
    let (_, ts) = card_ref(&r, dismissed).await;

    // An agent may not dismiss a possible risk; nothing changes.
    assert_eq!(click(&r, SAM, "dismiss_risk", dismissed, &ts).await.0, 200);
    r.fake
        .wait_for("the refusal", |c| {
            c.iter()
                .any(|c| c.method == "response_url" && c.body["text"].as_str().unwrap_or("").contains("risk or lead"))
        })
        .await;
    assert_eq!(r.ctx.store.case(dismissed).await.unwrap().unwrap().situation, "possible-risk");

    // Risk management dismisses it: back to the queue a negative review joins.
    assert_eq!(click(&r, RUTH, "dismiss_risk", dismissed, &ts).await.0, 200);
    let mut after = r.ctx.store.case(dismissed).await.unwrap().unwrap();
    for _ in 0..200 {
        if after.situation != "possible-risk" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        after = r.ctx.store.case(dismissed).await.unwrap().unwrap();
    }
    let pb = r.ctx.playbooks();
    let usual = pb.situations.get("negative-review").unwrap();
    assert_eq!(
        (after.situation.as_str(), after.channel.as_str(), after.priority),
        ("negative-review", "px-triage", usual.priority)
    );
    assert!(!after.risk);
    let event = r.ctx.store.events(dismissed).await.unwrap().last().unwrap().clone();
    assert_eq!(
        (event.action.as_str(), event.actor.as_str(), event.detail["to"].as_str()),
        ("dismiss_risk", "ruth", Some("negative-review"))
    );
    let card = carebot::present::card_for(&r.ctx, dismissed).await.unwrap();
    assert!(!card.buttons.iter().any(|b| b.label().contains("risk")), "{:?}", card.buttons);
    assert_eq!(
        card.latest_step.as_deref(),
        Some("possible risk dismissed by Ruth Adeyemi: back to Negative review or complaint")
    );

    // An agent confirms the other from /care: it becomes a clinical-risk case.
    let said = command(&r, SAM, &format!("risk {confirmed} confirm")).await;
    assert!(said["text"].as_str().unwrap().contains("possible risk confirmed by Sam Whitfield"), "{said}");
    let after = r.ctx.store.case(confirmed).await.unwrap().unwrap();
    assert_eq!((after.situation.as_str(), after.channel.as_str(), after.risk), ("clinical-risk", "risk", true));
    // The card still says what raised it, now as confirmed risk, and by whom.
    let card = carebot::present::card_for(&r.ctx, confirmed).await.unwrap();
    let tag = card.tags.iter().find(|t| t.label.starts_with('⚠')).expect("a risk tag");
    assert_eq!(tag.label, "⚠ Risk confirmed by Sam Whitfield", "{:?}", card.tags);
    assert!(tag.why.contains("mistake"), "{tag:?}");
    let again = command(&r, RUTH, &format!("risk {confirmed} dismiss")).await;
    assert!(
        again["text"].as_str().unwrap().contains("possible risk was already confirmed by Sam Whitfield"),
        "{again}"
    );
    let junk = command(&r, RUTH, &format!("risk {confirmed} maybe")).await;
    assert!(junk["text"].as_str().unwrap().contains("confirm or dismiss"), "{junk}");
    assert_eq!(r.ctx.store.events(confirmed).await.unwrap().len(), 2, "refusals record nothing");
}

on_both_backends!(
    the_reply_modal_can_post_the_reply_on_google,
    a_possible_risk_is_confirmed_or_dismissed_with_one_click,
    the_app_home_shows_my_cases_and_the_queue_most_urgent_first,
    a_lead_fixes_the_triage_and_the_clocks_and_channel_follow,
    escalation_nudges_link_the_card_and_can_be_acted_on,
    every_case_action_can_be_taken_from_slack,
    the_reply_modal_edits_checks_and_records_the_exact_text,
    a_risk_reply_waits_for_a_lead_and_the_approval_binds_the_exact_text,
    a_claim_click_updates_the_card_and_resolve_through_the_modal_closes_it,
    bad_or_stale_signatures_are_401_and_change_nothing,
    people_outside_the_team_or_without_the_role_are_refused_privately,
    concurrent_claim_clicks_have_one_winner_and_the_loser_is_told_who,
    slash_commands_answer_privately_and_log_forwarded_posts,
    a_rate_limited_post_is_delivered_once_after_the_wait,
    a_channel_error_is_reported_and_not_retried_forever,
    escalation_from_the_modal_reaches_the_site_owner_by_dm,
    the_digest_chart_is_uploaded_with_the_v2_flow,
    a_review_quoted_in_the_digest_cannot_ping_or_link,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_verification_is_answered_and_unsigned_events_are_refused() {
    let r = start(Backend::Sqlite).await;
    let body = json!({"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"})
        .to_string();
    let url = format!("{}/slack/events", r.base);
    let (status, text) = post_signed(&url, &body, now(), SIGNING_SECRET).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["challenge"], "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");
    let (status, _) = post_signed(&url, &body, now(), "wrong").await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_to_one_channel_are_paced() {
    let r = start_with(Backend::Sqlite, |s| {
        s.slack.messages_per_second = 2.try_into().unwrap();
        s.slack.burst = 1.try_into().unwrap();
    })
    .await;
    for i in 0..3 {
        carebot::ops::queue_op(&r.ctx, ChatOp::ChannelMessage { channel: "risk".into(), text: format!("alert {i}") })
            .await
            .unwrap();
    }
    r.ctx.outbox_wake.notify_one();
    let calls =
        r.fake.wait_for("three posts", |c| c.iter().filter(|c| c.method == "chat.postMessage").count() == 3).await;
    let at: Vec<_> = calls.iter().filter(|c| c.method == "chat.postMessage").map(|c| c.at).collect();
    assert!(at[2] - at[0] >= Duration::from_millis(900), "2/s with no burst: {:?}", at[2] - at[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_mode_fetches_its_url_and_acknowledges_envelopes() {
    let r = start_with(Backend::Sqlite, |s| s.slack.mode = SlackMode::Socket).await;
    let case_id = case_with_card(&r, "rev-9").await;
    let command = json!({
        "envelope_id": "env-cmd-1",
        "type": "slash_commands",
        "accepts_response_payload": true,
        "payload": {
            "token": "legacy", "team_id": "T0EXAMPLE", "team_domain": "example-health",
            "channel_id": "C01PXTRIAGE", "channel_name": "px-triage", "user_id": SAM, "user_name": "sam",
            "command": "/care", "text": format!("claim {case_id}"), "api_app_id": "A0CAREBOT",
            "response_url": r.fake.response_url("sock"), "trigger_id": "trig-sock"
        }
    });
    r.fake.queue_envelope(command);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let ack = loop {
        if let Some(a) = r.fake.socket_acks().into_iter().find(|a| a["envelope_id"] == "env-cmd-1") {
            break a;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no ack; calls: {:?}",
            r.fake.calls().iter().map(|c| c.method.clone()).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert!(!r.fake.calls_to("apps.connections.open").is_empty(), "the websocket URL came from apps.connections.open");
    assert!(ack["payload"]["text"].as_str().unwrap_or("").contains("claimed by Sam Whitfield"), "{ack}");
    assert_eq!(r.ctx.store.case(case_id).await.unwrap().unwrap().owner.as_deref(), Some("sam"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_online_names_a_channel_the_bot_is_not_in() {
    let fake = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("carebot.toml");
    std::fs::write(
        &config,
        format!(
            "[playbooks]\ndir = {:?}\n\n[slack]\napi_url = {:?}\n",
            repo().join("playbooks").display().to_string(),
            fake.api_url()
        ),
    )
    .unwrap();
    let run = |token: &'static str| {
        let config = config.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_carebot"))
                .args(["--config", config.to_str().unwrap(), "check", "--online"])
                .env("SLACK_BOT_TOKEN", token)
                .env_remove("DATABASE_URL")
                .output()
                .unwrap()
        })
    };
    let out = run(BOT_TOKEN).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("channel shoutouts (C01SHOUTOUT): the bot is not a member"), "{stderr}");
    assert!(!stderr.contains("px-triage"), "the other channels are fine: {stderr}");
    assert_eq!(fake.calls_to("conversations.info").len(), 4);

    let out = run("xoxb-revoked").await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("invalid_auth") && stderr.contains("SLACK_BOT_TOKEN"), "{stderr}");
}
