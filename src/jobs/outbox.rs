//! The outbox worker: delivers queued chat operations through the chat surface in
//! independent lanes — one per destination (a channel, a person's DMs) — so a busy or
//! rate-limited channel never delays another. Inside a lane, higher priority goes first
//! and a case's steps keep their order (a thread line waits for its card). Each lane is
//! leased to one replica at a time and paced by a budget stored with the lease, so several
//! replicas together keep the per-channel rate. Rate limits and outages only delay a
//! message (every wait is measured from when the answer arrived); it is marked failed only
//! for a permanent error or when older than `outbox.max_age`.

use crate::chat::{ChatOp, DeliveryError, Pacing};
use crate::ctx::Ctx;
use crate::store::{MessageRef, OutboxRow};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How long a lane is leased to this process; renewed before every message, and handed
/// back when the worker stops.
const LEASE_MS: i64 = 20_000;
/// A lane that must wait longer than this (a long Retry-After) is handed back and picked
/// up again when its next message is due.
const MAX_LANE_WAIT_MS: i64 = 15_000;
/// Lanes delivered at once by one process.
const MAX_ACTIVE_LANES: usize = 64;
/// A card update waits this long after the action that queued it, so the answer to a
/// Discord click (which already shows the new card) is recorded first and the same card is
/// not edited a second time.
const UPDATE_SETTLE_MS: i64 = 250;
/// Longest one message may take to deliver, well inside the lease.
const SEND_LIMIT: Duration = Duration::from_millis((LEASE_MS - 5_000) as u64);

/// `catch_up`: a card sent again by `carebot outbox retry` also gets, in its thread, the
/// steps taken while it could not be posted (their own lines found no card then).
/// `retry`: an earlier attempt may have reached the platform (publishing checks first).
async fn deliver(ctx: &Ctx, op: &ChatOp, catch_up: bool, retry: bool) -> Result<(), DeliveryError> {
    let pb = ctx.playbooks();
    let surface = ctx.chat.name();
    let internal = |e: anyhow::Error| DeliveryError::Transient(format!("{e:#}"));
    let channel = |name: &str| {
        pb.situations
            .channels
            .get(name)
            .cloned()
            .ok_or_else(|| DeliveryError::Permanent(format!("channel {name:?} is not defined in situations.yaml")))
    };
    match op {
        ChatOp::PostCard { case_id, channel: name } => {
            let existing = ctx.store.case_messages(*case_id).await.map_err(internal)?;
            if existing.iter().any(|m| m.surface == surface && m.channel == *name) {
                return Ok(()); // posted before a crash, not yet marked delivered
            }
            let ch = channel(name)?;
            let card = crate::present::card_for(ctx, *case_id).await?;
            let message_ref = ctx.chat.post_card(&ch, &card).await?;
            let m = MessageRef { surface: surface.into(), channel: name.clone(), message_ref };
            ctx.store.save_case_message(*case_id, &m, ctx.now_ms()).await.map_err(internal)?;
            ctx.store.set_card_rendered(*case_id, &m, &card.fingerprint()).await.map_err(internal)?;
            if catch_up {
                let events = ctx.store.events(*case_id).await.map_err(internal)?;
                let steps: Vec<String> = events
                    .iter()
                    .filter(|e| e.action != "opened")
                    .map(|e| format!("• {}", crate::chat::card::describe_event(e, &pb)))
                    .collect();
                if !steps.is_empty() {
                    let text = format!("Steps taken before this card could be posted:\n{}", steps.join("\n"));
                    // The card is posted; a failure here must not post it again.
                    if let Err(e) = ctx.chat.thread_reply(&m, &text, false).await {
                        tracing::warn!(case_id, error = %e, "earlier steps not added under the re-sent card");
                    }
                }
            }
        }
        ChatOp::UpdateCard { case_id } => {
            let card = crate::present::card_for(ctx, *case_id).await?;
            let shown = card.fingerprint();
            for m in ctx.store.case_messages(*case_id).await.map_err(internal)?.iter().filter(|m| m.surface == surface)
            {
                // Already showing this card (a click's answer updated it): no second edit.
                if ctx.store.card_rendered(*case_id, m).await.map_err(internal)?.as_deref() == Some(shown.as_str()) {
                    continue;
                }
                ctx.chat.update_card(m, &card).await?;
                ctx.store.set_card_rendered(*case_id, m, &shown).await.map_err(internal)?;
            }
        }
        ChatOp::ThreadReply { case_id, text, here } => {
            for m in ctx.store.case_messages(*case_id).await.map_err(internal)?.iter().filter(|m| m.surface == surface)
            {
                ctx.chat.thread_reply(m, text, *here).await?;
            }
        }
        ChatOp::DirectMessage { person, text, case_id, nudge, approve } => {
            let p = pb
                .team
                .person(person)
                .ok_or_else(|| DeliveryError::Permanent(format!("person {person:?} is not in the team file")))?;
            match case_id {
                // No chat id for this person on this surface: tell them in the case's
                // channel, by name, rather than not at all.
                Some(case_id) if !ctx.chat.reaches(p) => {
                    let case = ctx
                        .store
                        .case(*case_id)
                        .await
                        .map_err(internal)?
                        .ok_or_else(|| DeliveryError::Permanent(format!("case {case_id} not found")))?;
                    let line = format!("For {} (no {surface} id in team.yaml for a direct message): {text}", p.name);
                    ctx.chat.channel_message(&channel(&case.channel)?, &line).await?;
                }
                Some(case_id) if *nudge => {
                    let n = nudge_for(ctx, *case_id, *approve).await.map_err(internal)?;
                    ctx.chat.nudge(p, text, &n).await?;
                }
                _ => ctx.chat.direct_message(p, text).await?,
            }
        }
        ChatOp::ChannelMessage { channel: name, text } => {
            ctx.chat.channel_message(&channel(name)?, text).await?;
        }
        ChatOp::Digest { date, file } => {
            let ch = channel(&ctx.settings.digest.channel)?;
            let digest = crate::digest::gather(ctx, *date).await.map_err(internal)?;
            if *file {
                let png = digest.chart_png().map_err(|e| DeliveryError::Permanent(format!("{e:#}")))?;
                let comment = "Mentions, SLA, ratings and open cases: 30 days";
                ctx.chat.channel_file(&ch, &format!("digest-{date}.png"), &png, comment).await?;
            } else {
                ctx.chat.channel_message(&ch, &digest.to_text()).await?;
            }
        }
        ChatOp::PublishReply { case_id, target, text, by, dry_run, edit, after, private_from } => {
            use crate::publish::{PublishError, Published};
            // Superseded: the case got a newer reply (published, posted by hand or marked
            // responded) or a take-down since this one was queued, e.g. a failed reply sent
            // again by `outbox retry` after the agent moved on. Nothing to send.
            let events = ctx.store.events(*case_id).await.map_err(internal)?;
            let superseded = match after {
                Some(a) => events.iter().any(|e| e.id > *a && matches!(e.action.as_str(), "respond" | "unpublish")),
                // Queued before replies carried their event: the older rule, by text.
                None => events.iter().any(|e| {
                    e.action == "published"
                        && e.detail["platform"] == target.platform.id()
                        && e.detail["text"].as_str() != Some(text.as_str())
                }),
            };
            if superseded {
                tracing::info!(case_id, platform = target.platform.id(), "reply not sent: a newer one replaced it");
                return Ok(());
            }
            let result = match (dry_run, edit) {
                (true, _) => Ok(Published::default()),
                (false, _) if private_from.is_some() => {
                    let page = private_from.as_deref().unwrap_or_default();
                    ctx.publisher.reply_privately(&ctx.settings, target, page, text, retry).await
                }
                (false, Some(remote_id)) => ctx.publisher.edit(&ctx.settings, target, remote_id, text).await,
                (false, None) => ctx.publisher.publish(&ctx.settings, target, text, retry).await,
            };
            match result {
                Ok(p) => {
                    let how = match (dry_run, edit) {
                        (true, _) => "publish_dry_run",
                        (false, Some(_)) => "reply_edited",
                        (false, None) => "published",
                    };
                    let private = private_from.is_some();
                    let sent = Sent { by, target, text, private, after: *after };
                    published(ctx, *case_id, sent, &p, how).await.map_err(internal)?
                }
                Err(PublishError::Transient(m)) => return Err(DeliveryError::Transient(m)),
                Err(e) => {
                    let reason = e.to_string();
                    not_published(ctx, *case_id, by, target, &reason, edit.is_some()).await.map_err(internal)?;
                    return Err(DeliveryError::Permanent(reason));
                }
            }
        }
        ChatOp::RemoveReply { case_id, target, remote_id, by } => {
            use crate::publish::PublishError;
            let events = ctx.store.events(*case_id).await.map_err(internal)?;
            let gone = events.iter().any(|e| {
                e.action == "unpublished"
                    && e.detail["platform"] == target.platform.id()
                    && e.detail["remote_id"] == **remote_id
            });
            if gone {
                return Ok(()); // recorded before a crash, not yet marked delivered
            }
            match ctx.publisher.remove(&ctx.settings, target, remote_id).await {
                Ok(()) => {
                    let detail = serde_json::json!({ "platform": target.platform.id(), "remote_id": remote_id });
                    record(ctx, *case_id, by, "unpublished", &detail, None).await.map_err(internal)?;
                }
                Err(PublishError::Transient(m)) => return Err(DeliveryError::Transient(m)),
                Err(e) => {
                    let reason = e.to_string();
                    let detail = serde_json::json!({ "platform": target.platform.id(), "reason": reason });
                    let dm = format!(
                        "Your request to take down our reply on case #{case_id} failed: {} refused it ({}). It is \
                         still public: delete it on the platform, or fix the cause and send it again \
                         (`carebot outbox retry --id N`).",
                        target.platform.name(),
                        reason.trim_end_matches('.')
                    );
                    record(ctx, *case_id, "carebot", "unpublish_failed", &detail, Some((by, dm)))
                        .await
                        .map_err(internal)?;
                    return Err(DeliveryError::Permanent(reason));
                }
            }
        }
        ChatOp::WeeklyReport { week_ending, file } => {
            let ch = channel(&ctx.settings.digest.weekly_channel)?;
            let report = crate::digest::gather_weekly(ctx, *week_ending).await.map_err(internal)?;
            if *file {
                let csv = report.to_csv().map_err(internal)?;
                let name = format!("px-themes-{week_ending}.csv");
                ctx.chat.channel_file(&ch, &name, csv.as_bytes(), "themes as CSV").await?;
            } else {
                ctx.chat.channel_message(&ch, &report.to_text()).await?;
            }
        }
    }
    Ok(())
}

/// Records a published, edited (or dry-run) reply on the case, once, and shows it on the
/// card.
/// What went out: the reply op's parts that the record needs.
struct Sent<'a> {
    by: &'a str,
    target: &'a crate::publish::Target,
    text: &'a str,
    /// Sent privately on Messenger.
    private: bool,
    /// The `respond` event that queued it.
    after: Option<i64>,
}

async fn published(
    ctx: &Ctx,
    case_id: i64,
    sent: Sent<'_>,
    p: &crate::publish::Published,
    action: &str,
) -> anyhow::Result<()> {
    let Sent { by, target, text, private, after } = sent;
    let events = ctx.store.events(case_id).await?;
    let platform = if private { "messenger" } else { target.platform.id() };
    let last = events.iter().rev().find(|e| {
        e.detail["platform"] == platform
            && matches!(e.action.as_str(), "published" | "reply_edited" | "unpublished" | "publish_dry_run")
    });
    let ours = |e: &crate::store::EventRow| match after {
        Some(a) => e.detail["respond_event"] == a,
        None => e.action == action && e.detail["text"].as_str() == Some(text),
    };
    if last.is_some_and(ours) {
        return Ok(()); // recorded before a crash, not yet marked delivered
    }
    let mut detail = serde_json::json!({
        "platform": platform, "object": target.object, "remote_id": p.remote_id, "url": p.url, "text": text,
    });
    if private {
        // A Messenger message: not our public reply, so never edited or taken down as one.
        detail["private"] = true.into();
    }
    if let Some(a) = after {
        detail["respond_event"] = a.into();
    }
    record(ctx, case_id, by, action, &detail, None).await?;
    // It had been refused before (the case went back to claimed) and went out now.
    let reopened = events
        .iter()
        .any(|e| e.action == "publish_failed" && after.is_some_and(|a| e.id > a) && e.detail["reopened"] == true);
    if reopened && action == "published" {
        reply_posted(ctx, case_id, target).await?;
    }
    Ok(())
}

/// A refused reply went out after all: a case its refusal sent back to claimed is
/// responded again, with its first response now (through the state machine, as carebot).
async fn reply_posted(ctx: &Ctx, case_id: i64, target: &crate::publish::Target) -> anyhow::Result<()> {
    use crate::domain::{apply, Action, Actor, CaseState};
    use crate::store::cases;
    let action = Action::ReplyPosted { platform: target.platform.id().to_string() };
    for _ in 0..5 {
        let now = ctx.now_ms();
        let mut tx = ctx.store.begin().await?;
        let case =
            cases::case_in_tx(&mut tx, case_id).await?.ok_or_else(|| anyhow::anyhow!("case {case_id} vanished"))?;
        if case.state != CaseState::Claimed {
            return Ok(()); // someone took it further meanwhile
        }
        let t = apply(&case.status(), &Actor::system(), &action).map_err(|r| anyhow::anyhow!("case {case_id} {r}"))?;
        let stamps = cases::Stamps { first_response_at: Some(now), ..Default::default() };
        if !cases::update_status(&mut tx, case_id, case.version, &t.next, stamps, now).await? {
            tx.rollback().await?;
            continue;
        }
        let id = cases::append_event(&mut tx, case_id, now, &Actor::system().id, t.event, &t.detail).await?;
        let event = crate::store::EventRow {
            id,
            case_id,
            at: now,
            actor: Actor::system().id,
            action: t.event.to_string(),
            detail: t.detail.clone(),
        };
        let line = crate::chat::card::describe_event(&event, &ctx.playbooks());
        for op in [ChatOp::UpdateCard { case_id }, ChatOp::ThreadReply { case_id, text: line, here: false }] {
            crate::chat::queue(&mut tx, &op, now, now).await?;
        }
        tx.commit().await?;
        return Ok(());
    }
    anyhow::bail!("case {case_id} kept changing while its posted reply was recorded")
}

/// The platform refused the reply: nothing is public, so a case still marked responded
/// goes back to claimed with its first-response clock running again (through the state
/// machine, as carebot); a thread line, and a DM to whoever sent it.
async fn not_published(
    ctx: &Ctx,
    case_id: i64,
    by: &str,
    target: &crate::publish::Target,
    reason: &str,
    edit: bool,
) -> anyhow::Result<()> {
    use crate::domain::{apply, Action, Actor, CaseState};
    use crate::store::cases;
    if edit {
        // Our earlier reply is still there: nothing to reopen.
        let dm = format!(
            "Your change to our reply on case #{case_id} was not made: {} refused it ({}). The earlier reply is \
             still public.",
            target.platform.name(),
            reason.trim_end_matches('.')
        );
        let detail = serde_json::json!({ "platform": target.platform.id(), "reason": reason, "edit": true });
        return record(ctx, case_id, "carebot", "publish_failed", &detail, Some((by, dm))).await;
    }
    let action = Action::ReplyNotPosted { platform: target.platform.id().to_string(), reason: reason.to_string() };
    let dm = format!(
        "Your reply on case #{case_id} was not posted to {}: {}. Nothing is public, so the case is back to claimed \
         (its first-response clock runs again). Post it on the platform yourself and mark it responded, or fix the \
         cause and send it again (`carebot outbox retry --id N`; `carebot outbox` lists it).",
        target.platform.name(),
        reason.trim_end_matches('.')
    );
    // The version check can lose to a person acting on the case at this moment: read again.
    for _ in 0..5 {
        let now = ctx.now_ms();
        let mut tx = ctx.store.begin().await?;
        let case =
            cases::case_in_tx(&mut tx, case_id).await?.ok_or_else(|| anyhow::anyhow!("case {case_id} vanished"))?;
        let mut t =
            apply(&case.status(), &Actor::system(), &action).map_err(|r| anyhow::anyhow!("case {case_id} {r}"))?;
        let stamps = cases::Stamps { clear_first_response: case.state == CaseState::Responded, ..Default::default() };
        if !cases::update_status(&mut tx, case_id, case.version, &t.next, stamps, now).await? {
            tx.rollback().await?;
            continue;
        }
        if let Some(d) = t.detail.as_object_mut() {
            d.insert("by".into(), by.into());
        }
        let id = cases::append_event(&mut tx, case_id, now, &Actor::system().id, t.event, &t.detail).await?;
        let event = crate::store::EventRow {
            id,
            case_id,
            at: now,
            actor: Actor::system().id,
            action: t.event.to_string(),
            detail: t.detail.clone(),
        };
        let line = crate::chat::card::describe_event(&event, &ctx.playbooks());
        let ops = [
            ChatOp::UpdateCard { case_id },
            ChatOp::ThreadReply { case_id, text: line, here: false },
            ChatOp::DirectMessage {
                person: by.to_string(),
                text: dm.clone(),
                case_id: Some(case_id),
                nudge: false,
                approve: None,
            },
        ];
        for op in &ops {
            crate::chat::queue(&mut tx, op, now, now).await?;
        }
        tx.commit().await?;
        ctx.outbox_wake.notify_one();
        return Ok(());
    }
    anyhow::bail!("case {case_id} kept changing while a refused reply was recorded")
}

async fn record(
    ctx: &Ctx,
    case_id: i64,
    actor: &str,
    action: &str,
    detail: &serde_json::Value,
    dm: Option<(&str, String)>,
) -> anyhow::Result<()> {
    let now = ctx.now_ms();
    let mut tx = ctx.store.begin().await?;
    let id = crate::store::cases::append_event(&mut tx, case_id, now, actor, action, detail).await?;
    let event = crate::store::EventRow {
        id,
        case_id,
        at: now,
        actor: actor.to_string(),
        action: action.to_string(),
        detail: detail.clone(),
    };
    let line = crate::chat::card::describe_event(&event, &ctx.playbooks());
    let mut ops = vec![ChatOp::UpdateCard { case_id }, ChatOp::ThreadReply { case_id, text: line, here: false }];
    if let Some((person, text)) = dm {
        ops.push(ChatOp::DirectMessage {
            person: person.to_string(),
            text,
            case_id: Some(case_id),
            nudge: false,
            approve: None,
        });
    }
    for op in &ops {
        crate::chat::queue(&mut tx, op, now, now).await?;
    }
    tx.commit().await?;
    ctx.outbox_wake.notify_one();
    Ok(())
}

/// The link and buttons of a nudge about `case_id`, as the case stands now.
async fn nudge_for(ctx: &Ctx, case_id: i64, approve: Option<i64>) -> anyhow::Result<crate::chat::Nudge> {
    use crate::chat::{command::Press, Button};
    let case = ctx.store.case(case_id).await?;
    let messages = ctx.store.case_messages(case_id).await?;
    let link = match messages.iter().find(|m| m.surface == ctx.chat.name()) {
        Some(m) => ctx.chat.message_link(m).await,
        None => None,
    };
    if let Some(request) = approve {
        let buttons = vec![
            Press { button: Button::ApproveReply, case_id, request: Some(request) },
            Press::new(Button::RequestChanges, case_id),
        ];
        return Ok(crate::chat::Nudge { case_id, link, buttons });
    }
    let mut buttons = Vec::new();
    match case.map(|c| c.state) {
        Some(crate::domain::CaseState::Open) => buttons.extend([Button::Claim, Button::Snooze]),
        Some(crate::domain::CaseState::Resolved) | None => {}
        Some(_) => buttons.push(Button::Snooze),
    }
    Ok(crate::chat::Nudge { case_id, link, buttons: buttons.into_iter().map(|b| Press::new(b, case_id)).collect() })
}

fn backoff(ctx: &Ctx, attempts: i64) -> Duration {
    let cfg = &ctx.settings.outbox;
    let exp = cfg.backoff_base_ms.saturating_mul(1u64 << attempts.clamp(0, 20));
    Duration::from_millis(exp.min(cfg.backoff_max_ms))
}

/// Sends one message and records the result. Returns until when the lane must pause when
/// the platform rate-limited it or failed.
#[tracing::instrument(skip_all, fields(outbox_id = row.id, case_id = row.case_id, op = %row.op, lane = %row.lane))]
async fn handle(ctx: &Ctx, row: &OutboxRow, mode: Mode) -> anyhow::Result<Option<i64>> {
    let surface = ctx.chat.name();
    let result = match serde_json::from_str::<ChatOp>(&row.payload) {
        Ok(op) => {
            let requeued = row.last_error.as_deref() == Some(crate::store::outbox::REQUEUED);
            // A retry after a transient failure may follow a post that went through with its
            // answer lost; one sent again by hand follows a definite refusal.
            deliver(ctx, &op, requeued, row.attempts > 0 && !requeued).await
        }
        Err(e) => Err(DeliveryError::Permanent(format!("unreadable outbox payload: {e}"))),
    };
    // Every wait counts from the moment the answer arrived, not from when the pass began
    // (a `run-job` pass runs as if at its given time).
    let answered = match mode {
        Mode::Serve => ctx.now_ms(),
        Mode::Pass { at } => at.max(ctx.now_ms()),
    };
    let attempts = row.attempts + 1;
    match result {
        Ok(()) => {
            ctx.store.outbox_delivered(row.id, answered).await?;
            let latency = (answered - row.created_at).max(0) as f64 / 1000.0;
            metrics::histogram!("carebot_delivery_latency_seconds", "surface" => surface).record(latency);
            Ok(None)
        }
        Err(DeliveryError::Permanent(msg)) => {
            metrics::counter!("carebot_delivery_failures_total", "surface" => surface, "op" => row.op.clone(), "kind" => "permanent").increment(1);
            tracing::error!(outbox_id = row.id, case_id = row.case_id, op = %row.op, lane = %row.lane, error = %msg, "chat delivery failed permanently");
            ctx.store.outbox_failed(row.id, &msg).await?;
            Ok(None)
        }
        Err(e) if answered - row.created_at > ctx.settings.outbox.max_age.as_millis() => {
            metrics::counter!("carebot_delivery_failures_total", "surface" => surface, "op" => row.op.clone(), "kind" => "expired").increment(1);
            tracing::error!(outbox_id = row.id, case_id = row.case_id, op = %row.op, lane = %row.lane, attempts, error = %e, "chat delivery gave up: older than outbox.max_age");
            ctx.store
                .outbox_failed(row.id, &format!("gave up after outbox.max_age ({}): {e}", ctx.settings.outbox.max_age))
                .await?;
            Ok(None)
        }
        Err(e) => {
            // Either way the whole lane waits (the platform is limiting or failing for this
            // destination), so when it recovers the most urgent message goes first.
            let wait = match &e {
                DeliveryError::RateLimited(d) => *d,
                _ => backoff(ctx, row.attempts),
            };
            let wait_ms = wait.as_millis() as i64;
            metrics::counter!("carebot_delivery_retries_total", "surface" => surface, "op" => row.op.clone())
                .increment(1);
            tracing::warn!(outbox_id = row.id, case_id = row.case_id, op = %row.op, lane = %row.lane, attempts, retry_in_ms = wait_ms, error = %e, "chat delivery will be retried");
            ctx.store.outbox_retry(row.id, answered + wait_ms, &e.to_string()).await?;
            Ok(Some(answered + wait_ms))
        }
    }
}

/// Why a lane stopped delivering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneEnd {
    /// Nothing more is due.
    Empty,
    /// Another replica holds the lane.
    Held,
    /// Rate-limited or paced beyond what is worth waiting for here: due again at this ms.
    Paused(i64),
    /// Stop requested, or the pass's quota used up.
    Stopped,
}

/// How a lane runs: continuously in `serve` (waiting out its pacing), or as one pass of
/// `run-job deliver_outbox` as if at a given time (never sleeping).
#[derive(Debug, Clone, Copy)]
enum Mode {
    Serve,
    Pass { at: i64 },
}

/// Waits `ms`, or less if `stop` turns true; returns false when stopped.
async fn nap(ms: i64, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(ms.max(0) as u64)) => true,
        _ = async { let _ = stop.wait_for(|s| *s).await; } => false,
    }
}

/// Delivers what is due on one lane, in order and paced, until it is empty, held by another
/// replica, paused, `limit` messages were sent, or `stop` turns true.
#[tracing::instrument(skip_all, fields(lane = %lane))]
async fn run_lane(
    ctx: &Ctx,
    lane: &str,
    holder: &str,
    mode: Mode,
    limit: usize,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<(LaneEnd, usize)> {
    let pacing = ctx.chat.pacing().unwrap_or(Pacing::NONE);
    let mut sent = 0;
    let end = loop {
        if *stop.borrow() || sent >= limit {
            break LaneEnd::Stopped;
        }
        let now = match mode {
            Mode::Serve => ctx.now_ms(),
            Mode::Pass { at } => at.max(ctx.now_ms()),
        };
        // Leases always run on the clock, whatever time a `run-job` pass pretends it is.
        let Some(tat) = ctx.store.lease_lane(lane, holder, ctx.now_ms(), LEASE_MS).await? else {
            return Ok((LaneEnd::Held, sent)); // not ours to release
        };
        let Some(row) = ctx.store.next_in_lane(lane, now).await? else { break LaneEnd::Empty };
        if matches!(mode, Mode::Serve)
            && row.op == "update_card"
            && (0..UPDATE_SETTLE_MS).contains(&(now - row.created_at))
        {
            if !nap(UPDATE_SETTLE_MS - (now - row.created_at), stop).await {
                break LaneEnd::Stopped;
            }
            continue;
        }
        let allowed_at = tat - pacing.tolerance_ms();
        if allowed_at > now {
            match mode {
                Mode::Serve if allowed_at - now <= MAX_LANE_WAIT_MS => {
                    if !nap(allowed_at - now, stop).await {
                        break LaneEnd::Stopped;
                    }
                    continue;
                }
                _ => break LaneEnd::Paused(allowed_at),
            }
        }
        // One message may not outlive the lease (another replica could take the lane and
        // send it again): a call that hangs is cut off and retried like a 5xx.
        let paused_until = match tokio::time::timeout(SEND_LIMIT, handle(ctx, &row, mode)).await {
            Ok(r) => r?,
            Err(_) => {
                let retry = ctx.now_ms() + backoff(ctx, row.attempts).as_millis() as i64;
                tracing::warn!(outbox_id = row.id, lane, "chat delivery timed out; will retry");
                ctx.store.outbox_retry(row.id, retry, "timed out waiting for the platform").await?;
                Some(retry)
            }
        };
        let mut next = tat.max(now) + pacing.interval_ms();
        if let Some(until) = paused_until {
            // The platform's wait, exactly, before anything else goes out on this lane.
            next = next.max(until + pacing.tolerance_ms());
        }
        ctx.store.save_lane_tat(lane, holder, next).await?;
        sent += 1;
    };
    ctx.store.release_lane(lane, holder).await?;
    Ok((end, sent))
}

/// Marks a lane free in this process when its task ends, however it ends.
struct LaneGuard {
    active: Arc<Mutex<HashSet<String>>>,
    lane: String,
}

impl Drop for LaneGuard {
    fn drop(&mut self) {
        self.active.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.lane);
    }
}

/// A name for this process's lane leases.
fn holder_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "carebot".into());
    format!("{host}:{}:{}", std::process::id(), chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default())
}

/// One delivery pass over messages due at `at` (`run-job deliver_outbox`): every due lane
/// in turn, at most `outbox.batch_size` messages in all; returns how many were handled.
pub async fn deliver_due(ctx: &Ctx, at: chrono::DateTime<chrono::Utc>) -> anyhow::Result<usize> {
    let at = at.timestamp_millis();
    let holder = holder_id();
    let (_keep, mut stop) = watch::channel(false);
    let mut left = usize::try_from(ctx.settings.outbox.batch_size.max(1)).unwrap_or(usize::MAX);
    let mut handled = 0;
    for lane in ctx.store.due_lanes(at).await? {
        if left == 0 {
            break;
        }
        let (_, sent) = run_lane(ctx, &lane, &holder, Mode::Pass { at }, left, &mut stop).await?;
        handled += sent;
        left -= sent;
    }
    Ok(handled)
}

/// Delivers continuously until stopped: a task per lane with work due, woken early when
/// intake or an action queues something. On stop, each lane finishes the message in hand
/// (unsent rows stay pending for the next start).
pub async fn run_worker(ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let idle = Duration::from_millis(ctx.settings.outbox.poll_interval_ms.max(10));
    let holder = Arc::new(holder_id());
    let active: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut paused: HashMap<String, i64> = HashMap::new();
    let (ended_tx, mut ended_rx) = tokio::sync::mpsc::unbounded_channel::<(String, LaneEnd)>();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        if *stop.borrow() {
            break;
        }
        while let Ok((lane, end)) = ended_rx.try_recv() {
            match end {
                LaneEnd::Paused(until) => {
                    paused.insert(lane, until);
                }
                _ => {
                    paused.remove(&lane);
                }
            }
        }
        while tasks.try_join_next().is_some() {}
        let now = ctx.now_ms();
        paused.retain(|_, until| *until > now);
        match ctx.store.due_lanes(now).await {
            Ok(lanes) => {
                for lane in lanes {
                    if paused.contains_key(&lane) {
                        continue;
                    }
                    let mut act = active.lock().unwrap_or_else(|p| p.into_inner());
                    if act.len() >= MAX_ACTIVE_LANES || !act.insert(lane.clone()) {
                        continue;
                    }
                    drop(act);
                    let (ctx, holder, active, ended, mut stop) =
                        (ctx.clone(), holder.clone(), active.clone(), ended_tx.clone(), stop.clone());
                    tasks.spawn(async move {
                        // Whatever happens in the lane (even a panic), it is free again after.
                        let _free = LaneGuard { active: active.clone(), lane: lane.clone() };
                        let end = match run_lane(&ctx, &lane, &holder, Mode::Serve, usize::MAX, &mut stop).await {
                            // Another replica sends on it: look again in a second.
                            Ok((LaneEnd::Held, _)) => LaneEnd::Paused(ctx.now_ms() + 1000),
                            Ok((end, _)) => end,
                            Err(e) => {
                                tracing::error!(%lane, error = %format!("{e:#}"), "outbox lane failed; will retry");
                                LaneEnd::Paused(ctx.now_ms() + 1000)
                            }
                        };
                        drop(_free);
                        let _ = ended.send((lane, end));
                        ctx.outbox_wake.notify_one();
                    });
                }
            }
            Err(e) => tracing::error!(error = %format!("{e:#}"), "outbox pass failed; will retry"),
        }
        tokio::select! {
            _ = ctx.outbox_wake.notified() => {}
            _ = tokio::time::sleep(idle) => {}
            _ = async { let _ = stop.wait_for(|s| *s).await; } => break,
        }
    }
    // Each lane finishes the message in hand; one cut off by the deadline stays pending.
    let grace = ctx.settings.http.shutdown_grace.as_std().saturating_sub(Duration::from_millis(500));
    if tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await.is_err() {
        tracing::warn!("a delivery was still in flight at shutdown; it stays pending and may be sent again");
        tasks.shutdown().await;
    }
    // Hand the lanes back at once, so the next start (or another replica) need not wait
    // for the leases to run out.
    if let Err(e) = ctx.store.release_lanes_of(&holder).await {
        tracing::warn!(error = %format!("{e:#}"), "lane leases not released; they expire by themselves");
    }
}
