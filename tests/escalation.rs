//! Escalation with a controlled clock, on both backends: a case climbs its chain step by
//! step at the right times and stops when claimed; two sweepers sharing one database and a
//! restart send each nudge once; hours windows and on-call overrides are honoured.

mod common;

use carebot::clock::Clock;
use carebot::domain::Action;
use carebot::intake::ingest;
use carebot::jobs::escalation::sweep;
use carebot::jobs::outbox::deliver_due;
use carebot::store::Backend;
use carebot::workflow::act;
use carebot::Ctx;
use chrono::{Duration, TimeZone, Utc};
use common::*;
use std::sync::Arc;

async fn escalations(ctx: &Ctx, case_id: i64) -> Vec<(i64, i64, Vec<String>)> {
    ctx.store
        .events(case_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "escalation")
        .map(|e| {
            let people =
                e.detail["people"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect();
            (e.detail["step"].as_i64().unwrap(), e.detail["round"].as_i64().unwrap(), people)
        })
        .collect()
}

fn dms(e: &Env) -> Vec<String> {
    e.chat
        .calls()
        .into_iter()
        .filter_map(|c| if let Call::Dm { person, .. } = c { Some(person) } else { None })
        .collect()
}

async fn an_unclaimed_complaint_climbs_the_chain_and_stops_when_claimed(b: Backend) {
    let e = env(b).await;
    // t0 is Monday 09:00 in Chicago. Negative reviews: acknowledge within 30m; step 0 nudges
    // the channel and the on-call 30m after that, hourly; step 1 the site owner 4h after
    // the 2h first-response clock.
    let id = ingest(&e.ctx, &[mention("google", "e-1", "Waited 3 hours at Riverside", Some(1.0))]).await.unwrap()[0]
        .case_id();
    let oncall = carebot::workflow::on_call(&e.ctx, "px-oncall", t0()).await.unwrap().unwrap();

    assert!(sweep(&e.ctx, t0() + Duration::minutes(59)).await.unwrap().starts_with("0 escalation"));
    assert!(sweep(&e.ctx, t0() + Duration::minutes(60)).await.unwrap().starts_with("1 escalation"));
    assert!(sweep(&e.ctx, t0() + Duration::minutes(61)).await.unwrap().starts_with("0 escalation"));
    sweep(&e.ctx, t0() + Duration::minutes(120)).await.unwrap();
    assert_eq!(escalations(&e.ctx, id).await, vec![(0, 0, vec![oncall.clone()]), (0, 1, vec![oncall.clone()])]);

    e.clock.set(t0() + Duration::minutes(150));
    act(&e.ctx, id, "sam", Action::Claim).await.unwrap();
    // Claimed: step 0 (while open) stops; step 1 (open or claimed) still fires at t0+6h.
    sweep(&e.ctx, t0() + Duration::minutes(180)).await.unwrap();
    sweep(&e.ctx, t0() + Duration::hours(6) - Duration::seconds(1)).await.unwrap();
    assert_eq!(escalations(&e.ctx, id).await.len(), 2);
    sweep(&e.ctx, t0() + Duration::hours(6)).await.unwrap();
    // Step 1 notifies the site owner and whoever claimed the case.
    assert_eq!(escalations(&e.ctx, id).await[2], (1, 0, vec!["marcus".to_string(), "sam".to_string()]));
    assert_eq!(e.ctx.store.case(id).await.unwrap().unwrap().escalation_level, 3);

    deliver_due(&e.ctx, t0() + Duration::hours(6)).await.unwrap();
    // Each person's DMs are their own lane: the order across people is not fixed.
    let mut got = dms(&e);
    got.sort();
    let mut want = vec![oncall.clone(), oncall, "marcus".to_string(), "sam".to_string()];
    want.sort();
    assert_eq!(got, want);
    let calls = e.chat.calls();
    assert!(calls.iter().any(|c| matches!(c, Call::Thread { text, .. } if text.starts_with("@here Case #1 (P2 · Negative review or complaint · Riverside Medical Center) is past its acknowledge time"))), "{calls:?}");
    let shown = carebot::ops::case_show(&e.ctx, id, false).await.unwrap();
    assert!(shown.contains("escalated to Marcus Bell, Sam Whitfield at 15:00 (first response overdue)"), "{shown}");
}

/// A snoozed case fires no escalation step until the snooze ends, then the latest round
/// does; the snooze is an event and the due times do not move.
async fn a_snoozed_case_fires_nothing_until_the_snooze_ends(b: Backend) {
    let e = env(b).await;
    let id = ingest(&e.ctx, &[mention("google", "e-9", "Waited 3 hours at Riverside", Some(1.0))]).await.unwrap()[0]
        .case_id();
    let before = e.ctx.store.case(id).await.unwrap().unwrap();
    e.clock.set(t0() + Duration::minutes(50));
    let until = (t0() + Duration::minutes(50 + 90)).timestamp_millis();
    act(&e.ctx, id, "sam", Action::Snooze { until }).await.unwrap();
    // Step 0 would fire at t0+60m and again at t0+120m: both fall inside the snooze.
    assert!(sweep(&e.ctx, t0() + Duration::minutes(60)).await.unwrap().starts_with("0 escalation"));
    assert!(sweep(&e.ctx, t0() + Duration::minutes(139)).await.unwrap().starts_with("0 escalation"));
    assert!(escalations(&e.ctx, id).await.is_empty());
    assert!(sweep(&e.ctx, t0() + Duration::minutes(140)).await.unwrap().starts_with("1 escalation"));
    assert_eq!(escalations(&e.ctx, id).await, vec![(0, 1, vec![escalations_target(&e).await])]);
    let after = e.ctx.store.case(id).await.unwrap().unwrap();
    assert_eq!((after.ack_due, after.response_due), (before.ack_due, before.response_due), "due times unchanged");
    let shown = carebot::ops::case_show(&e.ctx, id, false).await.unwrap();
    assert!(shown.contains("nudges snoozed until Mon 11:20 CST by Sam Whitfield (due times unchanged)"), "{shown}");
    assert!(!shown.contains("[Claim]") && !shown.contains("[Snooze]"), "a history to read, no button labels: {shown}");
    // Snoozing into the past is refused.
    let err = act(&e.ctx, id, "sam", Action::Snooze { until: t0().timestamp_millis() }).await.unwrap_err();
    assert!(err.to_string().contains("in the future"), "{err}");
}

/// The owner of a case is reminded once, by DM with the card's buttons, when a due time
/// is within the situation's `remind_before`; not while snoozed; nobody for an unowned case.
async fn owners_are_reminded_once_before_a_due_time(b: Backend) {
    let e = env(b).await;
    // Negative reviews: first response due 2h after opening; remind 30m before.
    let id = ingest(&e.ctx, &[mention("google", "e-20", "Waited 3 hours at Riverside", Some(1.0))]).await.unwrap()[0]
        .case_id();
    let other = ingest(&e.ctx, &[mention("google", "e-21", "Rude front desk at Northgate clinic", Some(1.0))])
        .await
        .unwrap()[0]
        .case_id();
    e.clock.set(t0() + Duration::minutes(10));
    act(&e.ctx, id, "sam", Action::Claim).await.unwrap();
    act(&e.ctx, other, "priya", Action::Claim).await.unwrap();
    act(&e.ctx, other, "priya", Action::Snooze { until: (t0() + Duration::hours(3)).timestamp_millis() })
        .await
        .unwrap();
    let reminders = |s: String| s.split("; ").nth(1).unwrap().to_string();
    assert_eq!(reminders(sweep(&e.ctx, t0() + Duration::minutes(89)).await.unwrap()), "0 reminder(s) sent");
    assert_eq!(reminders(sweep(&e.ctx, t0() + Duration::minutes(90)).await.unwrap()), "1 reminder(s) sent");
    assert_eq!(reminders(sweep(&e.ctx, t0() + Duration::minutes(100)).await.unwrap()), "0 reminder(s) sent");
    deliver_due(&e.ctx, t0() + Duration::minutes(100)).await.unwrap();
    let dms: Vec<(String, String)> = e
        .chat
        .calls()
        .into_iter()
        .filter_map(|c| if let Call::Dm { person, text } = c { Some((person, text)) } else { None })
        .filter(|(_, t)| t.starts_with("Reminder"))
        .collect();
    assert_eq!(dms.len(), 1, "only the unsnoozed owner: {dms:?}");
    assert_eq!(dms[0].0, "sam");
    assert!(dms[0].1.contains(&format!("case #{id}")) && dms[0].1.contains("first response due at 11:00"), "{dms:?}");
    let shown = carebot::ops::case_show(&e.ctx, id, false).await.unwrap();
    assert!(shown.contains("Sam Whitfield reminded: first response due soon"), "{shown}");
}

/// A situation with `step_lines: none` (shout-outs) keeps its channel quiet: the card
/// changes, no line is posted; others post the line under the card.
async fn quiet_situations_post_no_step_lines(b: Backend) {
    let e = env(b).await;
    let praise = mention("google", "e-30", "Amazing nurse at Riverside, so kind, thank you!", Some(5.0));
    let loud = mention("google", "e-31", "Waited 3 hours at Riverside", Some(1.0));
    let ids: Vec<i64> = ingest(&e.ctx, &[praise, loud]).await.unwrap().iter().map(|r| r.case_id()).collect();
    assert_eq!(e.ctx.store.case(ids[0]).await.unwrap().unwrap().situation, "shout-out");
    for id in &ids {
        act(&e.ctx, *id, "sam", Action::Claim).await.unwrap();
    }
    deliver_due(&e.ctx, t0()).await.unwrap();
    let calls = e.chat.calls();
    let threads: Vec<&str> = calls
        .iter()
        .filter_map(|c| if let Call::Thread { channel, .. } = c { Some(channel.as_str()) } else { None })
        .collect();
    assert_eq!(threads, ["px-triage"], "one line, for the complaint only: {calls:?}");
    let claimed = calls.iter().any(|c| match c {
        Call::Post { channel, state, .. } | Call::Update { channel, state, .. } => {
            channel == "shoutouts" && state == "claimed"
        }
        _ => false,
    });
    assert!(claimed, "the shout-out's card still shows the claim: {calls:?}");
}

async fn escalations_target(e: &Env) -> String {
    carebot::workflow::on_call(&e.ctx, "px-oncall", t0()).await.unwrap().unwrap()
}

async fn two_sweepers_sharing_one_database_and_a_restart_send_each_nudge_once(b: Backend) {
    let e = env(b).await;
    let ids: Vec<i64> = ingest(
        &e.ctx,
        &[
            mention("google", "e-2", "Rude front desk at Northgate", Some(1.0)),
            mention("x", "e-3", "Still waiting in the Riverside ER right now", None),
            mention("facebook", "e-4", "Wrong medication at Eastbrook, calling a lawyer", None),
        ],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.case_id())
    .collect();
    // A second replica: its own pool and context on the same database.
    let other =
        Ctx::new(settings(&e.db, &e.dir.path().join("inbox2")), e.chat.clone(), e.clock.clone() as Arc<dyn Clock>)
            .await
            .unwrap();
    let (a, b) = (Arc::new(e.ctx), Arc::new(other));
    for minutes in [20, 45, 61, 95, 130, 200] {
        let at = t0() + Duration::minutes(minutes);
        let (x, y) = tokio::join!(sweep(&a, at), sweep(&b, at));
        x.unwrap();
        y.unwrap();
    }
    let mut seen = Vec::new();
    for id in &ids {
        let fired: Vec<(i64, i64)> = escalations(&a, *id).await.into_iter().map(|(s, r, _)| (s, r)).collect();
        let mut unique = fired.clone();
        unique.dedup();
        assert_eq!(fired, unique, "case {id} fired a step twice");
        seen.push(fired);
    }
    // On-site (10m ack + 10m, every 15m) and risk (15m ack + 15m, every 30m) cases repeat.
    assert!(seen.iter().all(|f| !f.is_empty()), "{seen:?}");
    let before: usize = seen.iter().map(Vec::len).sum();
    // A restart: a fresh context sweeping the same instant again sends nothing new.
    let restarted =
        Ctx::new(settings(&e.db, &e.dir.path().join("inbox3")), e.chat.clone(), e.clock.clone() as Arc<dyn Clock>)
            .await
            .unwrap();
    assert!(sweep(&restarted, t0() + Duration::minutes(200)).await.unwrap().starts_with("0 escalation"));
    let mut after = 0;
    for id in &ids {
        after += escalations(&restarted, *id).await.len();
    }
    assert_eq!(before, after);
}

async fn nudges_wait_for_the_steps_hours_and_follow_the_oncall_override(b: Backend) {
    let e = env(b).await;
    // Opened at 02:00 Chicago: the negative-review step runs 07:00-21:00 only.
    let night = Utc.with_ymd_and_hms(2026, 11, 24, 8, 0, 0).unwrap();
    e.clock.set(night);
    let id = ingest(&e.ctx, &[mention("google", "e-5", "Dirty bathroom at Riverside", Some(1.0))]).await.unwrap()[0]
        .case_id();
    sweep(&e.ctx, night + Duration::hours(2)).await.unwrap(); // 04:00 local
    assert!(escalations(&e.ctx, id).await.is_empty());
    carebot::ops::oncall_set(&e.ctx, "px-oncall", "priya", night + Duration::days(2), "dena").await.unwrap();
    let err = carebot::ops::oncall_set(&e.ctx, "px-oncall", "sam", night + Duration::days(2), "sam").await.unwrap_err();
    assert!(err.to_string().contains("needs the lead role"), "{err}");
    sweep(&e.ctx, night + Duration::hours(5)).await.unwrap(); // 07:00 local
    assert_eq!(escalations(&e.ctx, id).await, vec![(0, 4, vec!["priya".to_string()])], "one catch-up, to the override");
}

on_both_backends!(
    owners_are_reminded_once_before_a_due_time,
    quiet_situations_post_no_step_lines,
    a_snoozed_case_fires_nothing_until_the_snooze_ends,
    an_unclaimed_complaint_climbs_the_chain_and_stops_when_claimed,
    two_sweepers_sharing_one_database_and_a_restart_send_each_nudge_once,
    nudges_wait_for_the_steps_hours_and_follow_the_oncall_override,
    the_sweep_looks_only_at_cases_with_something_due,
);

/// The sweep reads what is due, not everything open: a new or changed case is looked at
/// once, then not again until one of its steps, rounds or reminders falls due; more cases
/// than one page are all looked at; a sweep under other playbooks looks at every one again.
async fn the_sweep_looks_only_at_cases_with_something_due(b: Backend) {
    let e = env(b).await;
    let batch: Vec<_> = (0..600)
        .map(|i| mention("google", &format!("d-{i}"), &format!("Waited {i} hours at Riverside"), Some(1.0)))
        .collect();
    let ids: Vec<i64> = ingest(&e.ctx, &batch).await.unwrap().iter().map(|r| r.case_id()).collect();
    let summary = sweep(&e.ctx, t0() + Duration::minutes(1)).await.unwrap();
    assert_eq!(summary, "0 escalation step(s) fired; 0 reminder(s) sent; 600 case(s) due a look");
    // Nothing falls due before the acknowledge clock plus 30 minutes (t0 + 60 min).
    for m in [2, 30, 59] {
        let summary = sweep(&e.ctx, t0() + Duration::minutes(m)).await.unwrap();
        assert!(summary.ends_with("; 0 case(s) due a look"), "at +{m} min: {summary}");
    }
    // A claim changes a case: it alone is looked at again.
    e.clock.set(t0() + Duration::minutes(5));
    act(&e.ctx, ids[7], "sam", Action::Claim).await.unwrap();
    let summary = sweep(&e.ctx, t0() + Duration::minutes(6)).await.unwrap();
    assert!(summary.ends_with("; 1 case(s) due a look"), "{summary}");
    // Step 0 (while open) comes due on the 599 open cases at once, across pages.
    let summary = sweep(&e.ctx, t0() + Duration::minutes(60)).await.unwrap();
    assert_eq!(summary, "599 escalation step(s) fired; 0 reminder(s) sent; 599 case(s) due a look");
    assert_eq!(escalations(&e.ctx, ids[599]).await.len(), 1);
    assert!(escalations(&e.ctx, ids[7]).await.is_empty(), "the claimed case is past step 0's states");
    // The fired cases are looked at once more (their level changed), then not until the
    // next hourly round.
    sweep(&e.ctx, t0() + Duration::minutes(61)).await.unwrap();
    let summary = sweep(&e.ctx, t0() + Duration::minutes(62)).await.unwrap();
    assert!(summary.ends_with("; 0 case(s) due a look"), "{summary}");
    let summary = sweep(&e.ctx, t0() + Duration::minutes(120)).await.unwrap();
    assert!(summary.starts_with("599 escalation step(s) fired"), "{summary}");

    // Swept under other playbooks (a reload, an edit between runs): all looked at again.
    sqlx::query("UPDATE sweep_state SET playbook_version = 'an-older-set'").execute(e.ctx.store.pool()).await.unwrap();
    let summary = sweep(&e.ctx, t0() + Duration::minutes(130)).await.unwrap();
    assert_eq!(summary, "0 escalation step(s) fired; 0 reminder(s) sent; 600 case(s) due a look");
}
