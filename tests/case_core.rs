//! The case core against real databases: intake dedupe and revisions, the state machine as
//! persisted, concurrent claims, the outbox, filters, job-run claiming and retention.
//! Every scenario runs on SQLite and on Postgres.

mod common;

use carebot::chat::DeliveryError;
use carebot::domain::{Action, CaseState, EscalationTarget, Outcome};
use carebot::intake::{ingest, Ingested};
use carebot::jobs::outbox::deliver_due;
use carebot::store::cases::Table;
use carebot::store::{Backend, CaseFilter};
use carebot::workflow::{act, ActError};
use common::*;
use std::sync::Arc;
use std::time::Duration;

async fn counts(e: &Env) -> (i64, i64, i64, i64) {
    let s = &e.ctx.store;
    (
        s.count(Table::Mentions).await.unwrap(),
        s.count(Table::Cases).await.unwrap(),
        s.count(Table::CaseEvents).await.unwrap(),
        s.count(Table::Outbox).await.unwrap(),
    )
}

async fn the_same_mention_twice_opens_one_case(b: Backend) {
    let e = env(b).await;
    let m = mention("google", "r-1", "Waited 3 hours at Riverside, front desk was rude", Some(1.0));
    let first = ingest(&e.ctx, std::slice::from_ref(&m)).await.unwrap();
    let again = ingest(&e.ctx, &[m.clone(), m]).await.unwrap();
    let id = first[0].case_id();
    assert_eq!(first, vec![Ingested::Opened(id)]);
    assert_eq!(again, vec![Ingested::Duplicate(id), Ingested::Duplicate(id)]);
    assert_eq!(counts(&e).await.0..=counts(&e).await.1, 1..=1);
    let case = e.ctx.store.case(id).await.unwrap().unwrap();
    assert_eq!((case.situation.as_str(), case.site.as_deref()), ("negative-review", Some("riverside")));
    assert_eq!(case.categories, ["wait_times", "front_office"]);
}

async fn unrated_and_rated_mentions_mix_in_one_batch(b: Backend) {
    let e = env(b).await;
    let batch = [
        mention("x", "u-1", "Parking at Riverside again", None),
        mention("google", "u-2", "Billing trouble at Northgate", Some(2.0)),
        mention("x", "u-3", "Front desk at Eastbrook", None),
        mention("google", "u-4", "Thank you Eastbrook", Some(4.5)),
    ];
    let out = ingest(&e.ctx, &batch).await.unwrap();
    let mut ratings = Vec::new();
    for r in &out {
        let c = e.ctx.store.case(r.case_id()).await.unwrap().unwrap();
        ratings.push(e.ctx.store.mention(c.mention_id).await.unwrap().unwrap().rating);
    }
    assert_eq!(ratings, [None, Some(2.0), None, Some(4.5)]);
    // A revision that drops the rating, in the same transaction as one that sets it.
    let out = ingest(
        &e.ctx,
        &[
            mention("google", "u-2", "Billing trouble at Northgate", None),
            mention("x", "u-1", "Parking at Riverside again", Some(1.0)),
        ],
    )
    .await
    .unwrap();
    assert!(matches!(out[..], [Ingested::Revised(_), Ingested::Revised(_)]), "{out:?}");
}

async fn a_changed_rating_is_a_revision_event_on_the_same_case(b: Backend) {
    let e = env(b).await;
    let id =
        ingest(&e.ctx, &[mention("yelp", "y-9", "Billing mess at Northgate", Some(1.0))]).await.unwrap()[0].case_id();
    let before = e.ctx.store.case(id).await.unwrap().unwrap();
    let revised =
        ingest(&e.ctx, &[mention("yelp", "y-9", "Billing mess at Northgate, but they fixed it fast", Some(4.0))])
            .await
            .unwrap();
    assert_eq!(revised, vec![Ingested::Revised(id)]);
    assert_eq!(e.ctx.store.count(Table::Cases).await.unwrap(), 1);
    let events = e.ctx.store.events(id).await.unwrap();
    let rev = events.iter().find(|x| x.action == "revised").expect("a revised event");
    assert_eq!((rev.detail["old_rating"].as_f64(), rev.detail["new_rating"].as_f64()), (Some(1.0), Some(4.0)));
    let m = e.ctx.store.mention(e.ctx.store.case(id).await.unwrap().unwrap().mention_id).await.unwrap().unwrap();
    assert_eq!((m.rating, m.revision), (Some(4.0), 1));
    // Through the case's version check like any change: a card or form drawn before is stale,
    // and the state is untouched.
    let after = e.ctx.store.case(id).await.unwrap().unwrap();
    assert_eq!(after.version, before.version + 1);
    assert_eq!((after.state, after.owner), (before.state, before.owner));
    assert_eq!(rev.actor, "carebot");
}

async fn intake_queues_a_card_for_each_channel_of_the_situation(b: Backend) {
    let e = env(b).await;
    let out = ingest(
        &e.ctx,
        &[mention("facebook", "fb-1", "Wrong medication given at Riverside, calling my attorney", None)],
    )
    .await
    .unwrap();
    let id = out[0].case_id();
    let case = e.ctx.store.case(id).await.unwrap().unwrap();
    assert!(case.risk);
    assert_eq!(case.situation, "clinical-risk");
    let queued = e.ctx.store.outbox_for_case(id).await.unwrap();
    assert_eq!(queued.iter().filter(|(op, ..)| op == "post_card").count(), 2, "{queued:?}");
    deliver_due(&e.ctx, t0()).await.unwrap();
    let channels: Vec<String> = e
        .chat
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Post { channel, buttons, .. } => {
                assert_eq!(
                    buttons,
                    [
                        "Claim",
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
                Some(channel)
            }
            _ => None,
        })
        .collect();
    assert_eq!(channels, ["risk", "px-triage"]);
}

async fn a_second_claim_is_refused_names_the_owner_and_changes_nothing(b: Backend) {
    let e = env(b).await;
    let id = ingest(&e.ctx, &[mention("google", "g-2", "Parking at Riverside is awful", Some(2.0))]).await.unwrap()[0]
        .case_id();
    let done = act(&e.ctx, id, "sam", Action::Claim).await.unwrap();
    assert_eq!((done.case.state, done.case.owner.as_deref()), (CaseState::Claimed, Some("sam")));
    let before = counts(&e).await;
    let version = e.ctx.store.case(id).await.unwrap().unwrap().version;
    let err = act(&e.ctx, id, "priya", Action::Claim).await.unwrap_err();
    assert_eq!(err.to_string(), format!("Case {id} is already claimed by Sam Whitfield"));
    assert!(err.is_user_error());
    assert_eq!(counts(&e).await, before);
    assert_eq!(e.ctx.store.case(id).await.unwrap().unwrap().version, version);
}

async fn an_illegal_transition_is_refused_and_changes_nothing(b: Backend) {
    let e = env(b).await;
    let id = ingest(&e.ctx, &[mention("google", "g-3", "Dirty bathroom at Eastbrook", Some(2.0))]).await.unwrap()[0]
        .case_id();
    act(&e.ctx, id, "priya", Action::Claim).await.unwrap();
    act(&e.ctx, id, "priya", Action::Resolve { outcome: Outcome::Recovered, note: None }).await.unwrap();
    let before = counts(&e).await;
    let err = act(&e.ctx, id, "priya", Action::Resolve { outcome: Outcome::Resolved, note: None }).await.unwrap_err();
    assert!(matches!(err, ActError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("already resolved"), "{err}");
    let err = act(&e.ctx, id, "helen", Action::Reopen { note: None }).await.unwrap_err();
    assert!(err.to_string().contains("needs the agent, lead or risk role"), "{err}");
    assert!(matches!(act(&e.ctx, 999_999, "sam", Action::Claim).await, Err(ActError::UnknownCase(999_999))));
    assert!(matches!(act(&e.ctx, id, "mallory", Action::Claim).await, Err(ActError::UnknownPerson(_))));
    assert_eq!(counts(&e).await, before);
    let case = e.ctx.store.case(id).await.unwrap().unwrap();
    assert_eq!((case.state, case.outcome), (CaseState::Resolved, Some(Outcome::Recovered)));
}

async fn fifty_concurrent_claims_have_exactly_one_winner(b: Backend) {
    let e = env(b).await;
    let id = ingest(&e.ctx, &[mention("x", "t-1", "Still waiting at Riverside ER right now", None)]).await.unwrap()[0]
        .case_id();
    let ctx = Arc::new(e.ctx);
    let people = ["sam", "priya", "marcus", "grace", "tomas"];
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let ctx = ctx.clone();
        let who = people[i % people.len()];
        tasks.spawn(async move { (who, act(&ctx, id, who, Action::Claim).await) });
    }
    let mut winners = Vec::new();
    let mut refusals = 0;
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            (who, Ok(_)) => winners.push(who),
            (_, Err(ActError::Refused { .. })) => refusals += 1,
            (who, Err(other)) => panic!("{who}: unexpected {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(refusals, 49);
    let case = ctx.store.case(id).await.unwrap().unwrap();
    assert_eq!(case.owner.as_deref(), Some(winners[0]));
    let claims = ctx.store.events(id).await.unwrap().into_iter().filter(|e| e.action == "claim").count();
    assert_eq!(claims, 1);
}

async fn every_step_is_recorded_and_shows_on_the_card(b: Backend) {
    let e = env(b).await;
    let id = ingest(&e.ctx, &[mention("google", "g-4", "Nobody called back about my bill at Northgate", Some(1.0))])
        .await
        .unwrap()[0]
        .case_id();
    act(&e.ctx, id, "grace", Action::Claim).await.unwrap();
    act(
        &e.ctx,
        id,
        "grace",
        Action::Respond {
            text: Some("We're sorry; please email feedback.northgate@lakeshore-health.example.".into()),
            override_block: false,
        },
    )
    .await
    .unwrap();
    act(&e.ctx, id, "grace", Action::Escalate { to: EscalationTarget::SiteOwner, note: Some("billing".into()) })
        .await
        .unwrap();
    act(&e.ctx, id, "grace", Action::TakeOffline { via: "email".parse().unwrap(), note: None }).await.unwrap();
    act(&e.ctx, id, "dena", Action::Resolve { outcome: Outcome::Recovered, note: Some("4 stars now".into()) })
        .await
        .unwrap();
    let actions: Vec<String> = e.ctx.store.events(id).await.unwrap().into_iter().map(|x| x.action).collect();
    assert_eq!(actions, ["opened", "claim", "respond", "escalate", "offline", "resolve"]);
    let case = e.ctx.store.case(id).await.unwrap().unwrap();
    assert!(case.claimed_at.is_some() && case.first_response_at.is_some() && case.resolved_at.is_some());
    assert_eq!(case.escalation_level, 1);

    deliver_due(&e.ctx, t0()).await.unwrap();
    let calls = e.chat.calls();
    // The escalation reached the site owner (grace owns northgate) by DM, without the mention text.
    assert!(calls.iter().any(|c| matches!(c, Call::Dm { person, text } if person == "grace" && text.contains("Note: billing") && !text.contains("Nobody called back"))), "{calls:?}");
    assert!(calls
        .iter()
        .any(|c| matches!(c, Call::Thread { text, .. } if text == "resolved (recovered) by Dena Ortiz")));
    // The card shows the final state (posted that way, or updated to it) and is never
    // edited to show the same card again.
    match calls.iter().rev().find(|c| matches!(c, Call::Update { .. } | Call::Post { .. })) {
        Some(Call::Update { state, owner, .. }) | Some(Call::Post { state, owner, .. }) => {
            assert_eq!((state.as_str(), owner.as_deref()), ("resolved", Some("Grace Lin")))
        }
        other => panic!("no card: {other:?}"),
    }
    let updates = calls.iter().filter(|c| matches!(c, Call::Update { .. })).count();
    assert_eq!(updates, 0, "the card was posted after every step, showing them all: {calls:?}");
}

async fn a_rate_limited_card_is_delivered_after_the_wait_exactly_once(b: Backend) {
    let e = env(b).await;
    e.chat.fail_next(vec![DeliveryError::RateLimited(Duration::from_secs(30)), DeliveryError::Transient("502".into())]);
    let id = ingest(&e.ctx, &[mention("google", "g-5", "Great nurses at Eastbrook, thank you!", Some(5.0))])
        .await
        .unwrap()[0]
        .case_id();
    assert_eq!(deliver_due(&e.ctx, t0()).await.unwrap(), 1);
    assert!(e.chat.calls().is_empty());
    // Not due again before Retry-After has passed.
    assert_eq!(deliver_due(&e.ctx, t0() + chrono::Duration::seconds(29)).await.unwrap(), 0);
    assert_eq!(deliver_due(&e.ctx, t0() + chrono::Duration::seconds(30)).await.unwrap(), 1); // 502: backoff
    assert_eq!(deliver_due(&e.ctx, t0() + chrono::Duration::seconds(31)).await.unwrap(), 1);
    assert_eq!(deliver_due(&e.ctx, t0() + chrono::Duration::seconds(99)).await.unwrap(), 0);
    let posts = e.chat.calls().into_iter().filter(|c| matches!(c, Call::Post { .. })).count();
    assert_eq!(posts, 1);
    assert_eq!(e.ctx.store.outbox_for_case(id).await.unwrap(), vec![("post_card".into(), "delivered".into(), 3)]);
    assert_eq!(e.ctx.store.case_messages(id).await.unwrap().len(), 1);
}

async fn a_permanent_delivery_failure_is_kept_as_failed_not_retried(b: Backend) {
    let e = env(b).await;
    e.chat.fail_next(vec![DeliveryError::Permanent("channel_not_found".into())]);
    let id = ingest(&e.ctx, &[mention("google", "g-6", "Parking garage at Riverside is full again", Some(2.0))])
        .await
        .unwrap()[0]
        .case_id();
    deliver_due(&e.ctx, t0()).await.unwrap();
    assert_eq!(deliver_due(&e.ctx, t0() + chrono::Duration::hours(1)).await.unwrap(), 0);
    assert_eq!(e.ctx.store.outbox_for_case(id).await.unwrap(), vec![("post_card".into(), "failed".into(), 1)]);
    assert_eq!(e.ctx.store.outbox_depth().await.unwrap(), (0, 1));
    let metrics = carebot::http::render_metrics(&e.ctx).await.unwrap();
    assert!(metrics.contains("carebot_outbox_failed 1"), "{metrics}");
}

async fn the_queue_filters_by_owner_site_category_and_overdue(b: Backend) {
    let e = env(b).await;
    let ids: Vec<i64> = ingest(
        &e.ctx,
        &[
            mention("google", "f-1", "Waited forever at Riverside", Some(1.0)),
            mention("google", "f-2", "Billing error at Northgate", Some(1.0)),
            mention("google", "f-3", "Billing again, Eastbrook", Some(2.0)),
        ],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.case_id())
    .collect();
    act(&e.ctx, ids[1], "grace", Action::Claim).await.unwrap();
    let q = |f: CaseFilter| {
        let store = e.ctx.store.clone();
        async move { store.list_cases(&f).await.unwrap().into_iter().map(|c| c.id).collect::<Vec<_>>() }
    };
    assert_eq!(q(CaseFilter { owner: Some("grace".into()), ..Default::default() }).await, [ids[1]]);
    assert_eq!(q(CaseFilter { unclaimed: true, ..Default::default() }).await, [ids[0], ids[2]]);
    assert_eq!(q(CaseFilter { site: Some("eastbrook".into()), ..Default::default() }).await, [ids[2]]);
    assert_eq!(q(CaseFilter { category: Some("billing".into()), ..Default::default() }).await, [ids[1], ids[2]]);
    // Negative reviews must be acknowledged within 30 minutes; the claimed one has 2h to respond.
    let later = (t0() + chrono::Duration::minutes(31)).timestamp_millis();
    assert_eq!(q(CaseFilter { overdue_at: Some(later), ..Default::default() }).await, [ids[0], ids[2]]);
}

async fn a_scheduled_run_is_claimed_once(b: Backend) {
    let e = env(b).await;
    let at = t0().timestamp_millis();
    assert!(e.ctx.store.claim_job_run("retention", at, at).await.unwrap());
    assert!(!e.ctx.store.claim_job_run("retention", at, at + 5).await.unwrap());
    assert!(e.ctx.store.claim_job_run("retention", at + 1000, at).await.unwrap());
}

async fn retention_purges_text_of_long_resolved_cases_only(b: Backend) {
    let e = env(b).await;
    let old = ingest(&e.ctx, &[mention("google", "r-old", "Rude receptionist at Northgate", Some(1.0))]).await.unwrap()
        [0]
    .case_id();
    let open =
        ingest(&e.ctx, &[mention("google", "r-open", "Rude receptionist at Eastbrook", Some(1.0))]).await.unwrap()[0]
            .case_id();
    act(&e.ctx, old, "grace", Action::Resolve { outcome: Outcome::NotActionable, note: None }).await.unwrap();
    let summary = carebot::registry::run_once(&e.ctx, "retention", t0() + chrono::Duration::days(400)).await.unwrap();
    assert!(summary.starts_with("purged text of 1 mention"), "{summary}");
    let text_of = |id| {
        let store = e.ctx.store.clone();
        async move {
            let c = store.case(id).await.unwrap().unwrap();
            store.mention(c.mention_id).await.unwrap().unwrap()
        }
    };
    let purged = text_of(old).await;
    assert_eq!((purged.text, purged.author), (None, None));
    assert!(text_of(open).await.text.is_some());
    assert_eq!(e.ctx.store.last_job_run("retention").await.unwrap().unwrap().status, "ok");
}

on_both_backends!(
    the_same_mention_twice_opens_one_case,
    a_changed_rating_is_a_revision_event_on_the_same_case,
    unrated_and_rated_mentions_mix_in_one_batch,
    intake_queues_a_card_for_each_channel_of_the_situation,
    a_second_claim_is_refused_names_the_owner_and_changes_nothing,
    an_illegal_transition_is_refused_and_changes_nothing,
    fifty_concurrent_claims_have_exactly_one_winner,
    every_step_is_recorded_and_shows_on_the_card,
    a_rate_limited_card_is_delivered_after_the_wait_exactly_once,
    a_permanent_delivery_failure_is_kept_as_failed_not_retried,
    the_queue_filters_by_owner_site_category_and_overdue,
    a_scheduled_run_is_claimed_once,
    retention_purges_text_of_long_resolved_cases_only,
);
