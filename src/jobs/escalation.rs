//! The escalation sweep: for every unresolved case, each step of its situation's chain
//! that is due (past its clock, still in the given states, inside its hours) notifies its
//! targets once per round. The fire is claimed as a row in the same transaction as the
//! nudges, so no step fires twice across restarts or replicas; after downtime only the
//! latest round is sent, not every missed one.

use crate::chat::ChatOp;
use crate::ctx::Ctx;
use crate::domain::{apply, Action, Actor, CaseState, EscalationTarget};
use crate::playbook::{ClockTimes, EscalationStep, SlaClock};
use crate::store::{cases, escalation, is_contention, CaseRow};
use crate::workflow::resolve_targets;
use chrono::{DateTime, Utc};

fn clocks(c: &CaseRow) -> ClockTimes {
    ClockTimes {
        opened: c.opened_at,
        acknowledge: c.ack_due,
        first_response: c.response_due,
        follow_up: c.follow_up_due,
        resolve: c.resolve_due,
    }
}

fn clock_name(step: &EscalationStep) -> &'static str {
    match step.clock {
        None => "opened",
        Some(SlaClock::Acknowledge) => "acknowledge",
        Some(SlaClock::FirstResponse) => "first response",
        Some(SlaClock::FollowUp) => "follow-up",
        Some(SlaClock::Resolve) => "resolve",
    }
}

/// Cases looked at per page: memory stays bounded however many are due.
const PAGE: i64 = 500;
/// A step due outside its hours is looked at again this much later.
const OUTSIDE_HOURS_RECHECK_MS: i64 = 5 * 60_000;

/// Steps fired together in one transaction (a catch-up after downtime fires thousands).
const FIRE_BATCH: usize = 100;

/// A step of a case that is due now.
struct Due<'p> {
    case_id: i64,
    index: usize,
    step: &'p EscalationStep,
    round: i64,
}

/// What looking at one case did.
#[derive(Default)]
struct Looked {
    reminded: usize,
    /// When the sweep must look at the case next (`i64::MAX`: only after it changes).
    next: i64,
    /// The case changed (or may have): it keeps its "look again" mark.
    changed: bool,
}

/// One sweep as of `at`; returns a summary for the job record. It reads only the cases
/// whose next check has come (new, changed, or with a step, round or reminder falling
/// due), a page at a time, and records each one's next check.
pub async fn sweep(ctx: &Ctx, at: DateTime<Utc>) -> anyhow::Result<String> {
    // The version before the playbooks: a reload in between makes the next sweep look again.
    let version = ctx.playbook_version();
    let pb = ctx.playbooks();
    let at_ms = at.timestamp_millis();
    ctx.store.recheck_unless(&version).await?;
    let (mut sent, mut reminded, mut checked) = (0, 0, 0);
    let mut after = (i64::MIN, 0);
    loop {
        let page = ctx.store.cases_to_check(at_ms, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = (last.next_check_at, last.id);
        checked += page.len();
        let ids: Vec<i64> = page.iter().map(|c| c.id).collect();
        let fired = ctx.store.fired_rounds(&ids).await?;
        let mut next = Vec::with_capacity(page.len());
        let mut to_fire = Vec::new();
        for case in &page {
            let looked = look_at(ctx, &pb, case, &fired, at, &mut to_fire).await?;
            reminded += looked.reminded;
            if !looked.changed {
                next.push((case.id, case.version, looked.next));
            }
        }
        sent += fire_all(ctx, &to_fire, at).await?;
        ctx.store.set_next_checks(&next).await?;
        if (page.len() as i64) < PAGE {
            break;
        }
    }
    if sent + reminded > 0 {
        ctx.outbox_wake.notify_one();
    }
    Ok(format!("{sent} escalation step(s) fired; {reminded} reminder(s) sent; {checked} case(s) due a look"))
}

/// Fires what is due on one case and works out when it is next due.
async fn look_at<'p>(
    ctx: &Ctx,
    pb: &'p crate::playbook::Playbooks,
    case: &CaseRow,
    fired: &std::collections::HashMap<(i64, i64), i64>,
    at: DateTime<Utc>,
    to_fire: &mut Vec<Due<'p>>,
) -> anyhow::Result<Looked> {
    let at_ms = at.timestamp_millis();
    let mut looked = Looked { next: i64::MAX, ..Looked::default() };
    // Snoozed: nothing fires until the snooze ends; then the latest round does.
    if let Some(until) = case.snoozed_until.filter(|u| *u > at_ms) {
        looked.next = until;
        return Ok(looked);
    }
    // A situation the playbook no longer has: looked at again after a reload.
    let Some(situation) = pb.situations.get(&case.situation) else { return Ok(looked) };
    let soon = |looked: &mut Looked, t: i64| looked.next = looked.next.min(t);
    for (i, step) in situation.escalation.iter().enumerate() {
        let Some(round) = step.due_round(case.state, clocks(case), at_ms) else {
            // Not yet due (or not in this state: a change of state marks the case again).
            if step.while_states.contains(&case.state) {
                if let Some(start) = step.starts_at(clocks(case)) {
                    soon(&mut looked, start);
                }
            }
            continue;
        };
        if let Some(t) = step.round_at(clocks(case), round + 1) {
            soon(&mut looked, t);
        }
        if fired.get(&(case.id, i as i64)).is_some_and(|r| *r >= round) {
            continue;
        }
        let tz = case.site.as_deref().and_then(|s| pb.team.site(s)).map(|s| s.timezone);
        let local = at.with_timezone(&tz.unwrap_or(pb.team.timezone)).time();
        if !step.inside_hours(local) {
            soon(&mut looked, at_ms + OUTSIDE_HOURS_RECHECK_MS);
            continue;
        }
        // Fired with the rest of the page, below; either way the case changes (or another
        // sweep fired it): the next sweep looks again.
        to_fire.push(Due { case_id: case.id, index: i, step, round });
        looked.changed = true;
    }
    let Some(lead) = situation.remind_before else { return Ok(looked) };
    if case.owner.is_none() {
        return Ok(looked);
    }
    for (step, name, due) in reminder_clocks(case) {
        if fired.contains_key(&(case.id, step)) || at_ms >= due {
            continue;
        }
        if at_ms < due - lead.as_millis() {
            soon(&mut looked, due - lead.as_millis());
            continue;
        }
        match remind(ctx, case.id, step, name, at).await {
            Ok(true) => looked.reminded += 1,
            Ok(false) => {}
            // Taken by a concurrent sweep or action: the next sweep looks again.
            Err(e) if is_contention(&e) => soon(&mut looked, at_ms),
            Err(e) => return Err(e),
        }
    }
    Ok(looked)
}

/// The due times an owner is reminded of, as (fire key, clock name, due): the first
/// response until there is one, and resolving. Keys are negative so they never collide
/// with the situation's escalation steps.
fn reminder_clocks(c: &CaseRow) -> Vec<(i64, &'static str, i64)> {
    let mut out = Vec::new();
    if let (None, Some(due)) = (c.first_response_at, c.response_due) {
        if matches!(c.state, CaseState::Open | CaseState::Claimed) {
            out.push((-1, "first response", due));
        }
    }
    if let Some(due) = c.resolve_due {
        out.push((-2, "resolve", due));
    }
    out
}

/// DMs the owner that a due time nears, once per case and clock.
#[tracing::instrument(skip_all, fields(case_id, step))]
async fn remind(ctx: &Ctx, case_id: i64, step: i64, clock: &str, at: DateTime<Utc>) -> anyhow::Result<bool> {
    let now = at.timestamp_millis();
    let mut tx = ctx.store.begin().await?;
    let Some(case) = cases::case_in_tx(&mut tx, case_id).await? else { return Ok(false) };
    let still = reminder_clocks(&case).into_iter().find(|(s, ..)| *s == step);
    let (Some(owner), Some((_, _, due))) = (case.owner.clone(), still) else { return Ok(false) };
    if case.state == CaseState::Resolved || case.snoozed_until.is_some_and(|u| u > now) {
        return Ok(false);
    }
    if !escalation::claim_fire(&mut tx, case_id, step, 0, now).await? {
        return Ok(false);
    }
    let team = &ctx.playbooks().team;
    let tz = case.site.as_deref().and_then(|s| team.site(s)).map_or(team.timezone, |s| s.timezone);
    let label = ctx.playbooks().situations.get(&case.situation).map(|s| s.label.clone()).unwrap_or_default();
    let minutes = ((due - now) / 60_000).max(1);
    let text = format!(
        "Reminder: case #{case_id} ({} · {label}) — {clock} due at {} ({minutes} min from now).",
        case.priority,
        crate::clock::from_ms(due).with_timezone(&tz).format("%H:%M %Z")
    );
    let detail = serde_json::json!({ "clock": clock, "due": due, "person": owner });
    cases::append_event(&mut tx, case_id, now, "carebot", "reminder", &detail).await?;
    let op = ChatOp::DirectMessage { person: owner, text, case_id: Some(case_id), nudge: true, approve: None };
    let queued = now.min(ctx.now_ms());
    crate::chat::queue(&mut tx, &op, queued, queued).await?;
    tx.commit().await?;
    Ok(true)
}

/// Fires the due steps, `FIRE_BATCH` to a transaction; a batch that meets contention is
/// fired again one step per transaction. Returns how many fired.
async fn fire_all(ctx: &Ctx, due: &[Due<'_>], at: DateTime<Utc>) -> anyhow::Result<usize> {
    let mut sent = 0;
    for batch in due.chunks(FIRE_BATCH) {
        let together = async {
            let mut tx = ctx.store.begin().await?;
            let mut n = 0;
            for d in batch {
                n += usize::from(fire(ctx, &mut tx, d, at).await?);
            }
            tx.commit().await?;
            anyhow::Ok(n)
        };
        match together.await {
            Ok(n) => sent += n,
            Err(e) if is_contention(&e) => {
                for d in batch {
                    sent += usize::from(fire_alone(ctx, d, at).await?);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(sent)
}

/// One step in a transaction of its own, retried while the database reports contention.
async fn fire_alone(ctx: &Ctx, d: &Due<'_>, at: DateTime<Utc>) -> anyhow::Result<bool> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let once = async {
            let mut tx = ctx.store.begin().await?;
            let fired = fire(ctx, &mut tx, d, at).await?;
            tx.commit().await?;
            anyhow::Ok(fired)
        };
        match once.await {
            Err(e) if attempt < 10 && is_contention(&e) => {
                tokio::time::sleep(std::time::Duration::from_millis(10 * attempt)).await;
            }
            other => return other,
        }
    }
}

/// Fires one step inside `tx`: claims (case, step, round), raises the level and queues the
/// nudges. False (and nothing written) if the case moved on or the step already fired.
#[tracing::instrument(skip_all, fields(case_id = d.case_id, step = d.index, round = d.round))]
async fn fire(ctx: &Ctx, tx: &mut crate::store::Tx<'_>, d: &Due<'_>, at: DateTime<Utc>) -> anyhow::Result<bool> {
    let (case_id, i, step, round) = (d.case_id, d.index, d.step, d.round);
    let pb = ctx.playbooks();
    let now = at.timestamp_millis();
    // Re-read inside the transaction: the case may have moved on since the sweep began.
    let Some(case) = cases::case_in_tx(tx, case_id).await? else { return Ok(false) };
    let snoozed = case.snoozed_until.is_some_and(|u| u > now);
    if snoozed || case.state == CaseState::Resolved || !step.while_states.contains(&case.state) {
        return Ok(false);
    }
    if !escalation::claim_fire(tx, case_id, i as i64, round, now).await? {
        return Ok(false);
    }
    // The level rises through the state machine and the case's version check, like any
    // other change: a case changed meanwhile is left for the next sweep.
    let action = Action::Escalate { to: EscalationTarget::Channel, note: None };
    let Ok(t) = apply(&case.status(), &Actor::system(), &action) else { return Ok(false) };
    if !cases::update_status(tx, case_id, case.version, &t.next, cases::Stamps::default(), now).await? {
        // Changed meanwhile: the claim goes too (the batch's other steps stand).
        escalation::unclaim_fire(tx, case_id, i as i64, round).await?;
        return Ok(false);
    }
    let mut people = Vec::new();
    let mut ops = Vec::new();
    let label = pb.situations.get(&case.situation).map(|s| s.label.clone()).unwrap_or_default();
    let site = case.site.as_deref().and_then(|s| pb.team.site(s)).map(|s| s.name.clone());
    let what = format!(
        "Case #{case_id} ({} · {label}{}) is past its {} time",
        case.priority,
        site.map(|s| format!(" · {s}")).unwrap_or_default(),
        clock_name(step)
    );
    for target in &step.notify {
        if *target == EscalationTarget::Channel {
            ops.push(ChatOp::ThreadReply { case_id, text: format!("{what} and is still {}.", case.state), here: true });
            continue;
        }
        for p in resolve_targets(ctx, tx, &case, target, at).await? {
            if !people.contains(&p.id) {
                people.push(p.id.clone());
                ops.push(ChatOp::DirectMessage {
                    person: p.id.clone(),
                    text: format!("{what}; it is still {}.", case.state),
                    case_id: Some(case_id),
                    nudge: true,
                    approve: None,
                });
            }
        }
    }
    let detail = serde_json::json!({
        "step": i, "round": round, "clock": clock_name(step), "people": people,
        "notify": step.notify.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
    });
    cases::append_event(tx, case_id, now, "carebot", "escalation", &detail).await?;
    ops.push(ChatOp::UpdateCard { case_id });
    for op in &ops {
        // Due at once, even when the sweep runs "as if at" a later time (`run-job --at`).
        let queued = now.min(ctx.now_ms());
        crate::chat::queue(tx, op, queued, queued).await?;
    }
    tracing::info!(case_id, step = i, round, notified = people.len(), "escalation step fired");
    Ok(true)
}
