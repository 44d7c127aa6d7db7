//! The outbox worker: delivers queued chat operations through the chat surface, storing
//! message references, retrying with backoff (or the platform's Retry-After), and marking a
//! message failed — visible on /metrics — only when retrying cannot help.

use crate::app::Ctx;
use crate::chat::{Card, ChatOp, DeliveryError};
use crate::store::{MessageRef, OutboxRow};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long a claimed message is reserved for this worker.
const LEASE_MS: i64 = 60_000;

/// The current card of a case, as the surfaces show it.
pub async fn card_for(ctx: &Ctx, case_id: i64) -> Result<Card, DeliveryError> {
    let internal = |e: anyhow::Error| DeliveryError::Transient(format!("{e:#}"));
    let case = ctx
        .store
        .case(case_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| DeliveryError::Permanent(format!("case {case_id} not found")))?;
    let mention = ctx
        .store
        .mention(case.mention_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| DeliveryError::Permanent(format!("mention of case {case_id} not found")))?;
    let events = ctx.store.events(case_id).await.map_err(internal)?;
    Ok(Card::build(&case, &mention, events.last(), &ctx.playbooks))
}

async fn deliver(ctx: &Ctx, op: &ChatOp) -> Result<(), DeliveryError> {
    let surface = ctx.chat.name();
    let internal = |e: anyhow::Error| DeliveryError::Transient(format!("{e:#}"));
    let channel = |name: &str| {
        ctx.playbooks
            .situations
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
            let card = card_for(ctx, *case_id).await?;
            let message_ref = ctx.chat.post_card(&ch, &card).await?;
            let m = MessageRef { surface: surface.into(), channel: name.clone(), message_ref };
            ctx.store.save_case_message(*case_id, &m, ctx.now_ms()).await.map_err(internal)?;
        }
        ChatOp::UpdateCard { case_id } => {
            let card = card_for(ctx, *case_id).await?;
            for m in ctx.store.case_messages(*case_id).await.map_err(internal)?.iter().filter(|m| m.surface == surface)
            {
                ctx.chat.update_card(m, &card).await?;
            }
        }
        ChatOp::ThreadReply { case_id, text } => {
            for m in ctx.store.case_messages(*case_id).await.map_err(internal)?.iter().filter(|m| m.surface == surface)
            {
                ctx.chat.thread_reply(m, text).await?;
            }
        }
        ChatOp::DirectMessage { person, text } => {
            let p = ctx
                .playbooks
                .team
                .person(person)
                .ok_or_else(|| DeliveryError::Permanent(format!("person {person:?} is not in the team file")))?;
            ctx.chat.direct_message(p, text).await?;
        }
        ChatOp::ChannelMessage { channel: name, text } => {
            ctx.chat.channel_message(&channel(name)?, text).await?;
        }
        ChatOp::Digest { date } => {
            let ch = channel(&ctx.settings.digest.channel)?;
            let digest = crate::digest::gather(ctx, *date).await.map_err(internal)?;
            let png = digest.chart_png().map_err(|e| DeliveryError::Permanent(format!("{e:#}")))?;
            ctx.chat.channel_message(&ch, &digest.to_text()).await?;
            ctx.chat.channel_file(&ch, &format!("digest-{date}.png"), &png, "7-day mention trend").await?;
        }
        ChatOp::WeeklyReport { week_ending } => {
            let ch = channel(&ctx.settings.digest.weekly_channel)?;
            let report = crate::digest::gather_weekly(ctx, *week_ending).await.map_err(internal)?;
            let csv = report.to_csv().map_err(internal)?;
            ctx.chat.channel_message(&ch, &report.to_text()).await?;
            ctx.chat
                .channel_file(&ch, &format!("px-themes-{week_ending}.csv"), csv.as_bytes(), "themes as CSV")
                .await?;
        }
    }
    Ok(())
}

fn backoff(ctx: &Ctx, attempts: i64) -> Duration {
    let cfg = &ctx.settings.outbox;
    let exp = cfg.backoff_base_ms.saturating_mul(1u64 << attempts.clamp(0, 20));
    Duration::from_millis(exp.min(cfg.backoff_max_ms))
}

async fn handle(ctx: &Ctx, row: &OutboxRow, now: DateTime<Utc>) -> anyhow::Result<()> {
    let surface = ctx.chat.name();
    let result = match serde_json::from_str::<ChatOp>(&row.payload) {
        Ok(op) => deliver(ctx, &op).await,
        Err(e) => Err(DeliveryError::Permanent(format!("unreadable outbox payload: {e}"))),
    };
    let now_ms = now.timestamp_millis();
    let attempts = row.attempts + 1;
    match result {
        Ok(()) => ctx.store.outbox_delivered(row.id, ctx.now_ms()).await,
        Err(DeliveryError::Permanent(msg)) => {
            metrics::counter!("carebot_delivery_failures_total", "surface" => surface, "op" => row.op.clone(), "kind" => "permanent").increment(1);
            tracing::error!(outbox_id = row.id, case_id = row.case_id, op = %row.op, error = %msg, "chat delivery failed permanently");
            ctx.store.outbox_failed(row.id, &msg).await
        }
        Err(e) if attempts >= ctx.settings.outbox.max_attempts => {
            metrics::counter!("carebot_delivery_failures_total", "surface" => surface, "op" => row.op.clone(), "kind" => "exhausted").increment(1);
            tracing::error!(outbox_id = row.id, case_id = row.case_id, op = %row.op, attempts, error = %e, "chat delivery gave up");
            ctx.store.outbox_failed(row.id, &e.to_string()).await
        }
        Err(e) => {
            let wait = match &e {
                DeliveryError::RateLimited(d) => *d,
                _ => backoff(ctx, row.attempts),
            };
            metrics::counter!("carebot_delivery_retries_total", "surface" => surface, "op" => row.op.clone())
                .increment(1);
            tracing::warn!(outbox_id = row.id, case_id = row.case_id, op = %row.op, attempts, retry_in_ms = wait.as_millis() as u64, error = %e, "chat delivery will be retried");
            ctx.store.outbox_retry(row.id, now_ms + wait.as_millis() as i64, &e.to_string()).await
        }
    }
}

/// One delivery pass over messages due at `at`; returns how many were handled.
pub async fn deliver_due(ctx: &Ctx, at: DateTime<Utc>) -> anyhow::Result<usize> {
    let rows = ctx.store.claim_outbox(at.timestamp_millis(), LEASE_MS, ctx.settings.outbox.batch_size).await?;
    for row in &rows {
        handle(ctx, row, at).await?;
    }
    Ok(rows.len())
}

/// Delivers continuously until stopped; woken early when intake or an action queues work.
pub async fn run_worker(ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let idle = Duration::from_millis(ctx.settings.outbox.poll_interval_ms.max(10));
    loop {
        let busy = match deliver_due(&ctx, ctx.clock.now()).await {
            Ok(n) => n > 0,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "outbox pass failed; will retry");
                false
            }
        };
        if busy {
            if *stop.borrow() {
                return;
            }
            continue;
        }
        tokio::select! {
            _ = ctx.outbox_wake.notified() => {}
            _ = tokio::time::sleep(idle) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
