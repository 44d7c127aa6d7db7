//! Intake: dedupe on (source, external id), triage, open the case and queue its card — all
//! in one transaction, so a mention accepted is a mention stored with its card on the way.
//! A known mention with new text or rating is a revision event on its existing case.

use crate::chat::ChatOp;
use crate::ctx::Ctx;
use crate::domain::{apply, fingerprint, Action, Actor, Mention, Revision};
use crate::store::{cases, is_contention, NewCase, Tx};
use anyhow::Context as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// A new case was opened.
    Opened(i64),
    /// The mention was known and changed: a revision event on this case.
    Revised(i64),
    /// Known and unchanged: nothing to do.
    Duplicate(i64),
    /// New, but a near-duplicate of a recent open case: counted there as "+1 similar".
    Similar(i64),
}

impl Ingested {
    pub fn case_id(&self) -> i64 {
        match self {
            Ingested::Opened(c) | Ingested::Revised(c) | Ingested::Duplicate(c) | Ingested::Similar(c) => *c,
        }
    }
}

/// Stores a batch in one transaction (retrying on write contention) and wakes the outbox.
#[tracing::instrument(skip_all, fields(mentions = mentions.len()))]
pub async fn ingest(ctx: &Ctx, mentions: &[Mention]) -> anyhow::Result<Vec<Ingested>> {
    let mut attempt = 0;
    // Contention is retried briefly; a lock held longer is answered like an outage.
    let give_up = std::time::Instant::now() + 2 * ctx.settings.database.acquire_timeout.as_std();
    loop {
        attempt += 1;
        match ingest_once(ctx, mentions).await {
            Ok(out) => {
                for (m, r) in mentions.iter().zip(&out) {
                    if matches!(r, Ingested::Opened(_) | Ingested::Similar(_)) {
                        metrics::counter!("carebot_mentions_ingested_total", "source" => m.source.clone()).increment(1);
                    }
                }
                ctx.outbox_wake.notify_one();
                return Ok(out);
            }
            Err(e) if attempt < 8 && is_contention(&e) && std::time::Instant::now() < give_up => {
                tokio::time::sleep(std::time::Duration::from_millis(20 * attempt)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn ingest_once(ctx: &Ctx, mentions: &[Mention]) -> anyhow::Result<Vec<Ingested>> {
    let now = ctx.now_ms();
    let mut tx = ctx.store.begin().await?;
    let mut out = Vec::with_capacity(mentions.len());
    // Recent storm candidates, read once per batch and extended with the cases it opens.
    let mut candidates: Option<Vec<(i64, i64)>> = None;
    for m in mentions {
        let r = match cases::insert_mention(&mut tx, m, now).await? {
            Some(mention_id) => {
                let fp = storm_fingerprint(ctx, m);
                match storm_case(ctx, &mut tx, &mut candidates, fp, mention_id, now).await? {
                    Some(case_id) => Ingested::Similar(case_id),
                    None => {
                        let case_id = open_case(ctx, &mut tx, mention_id, m, fp, now).await?;
                        if let (Some(list), Some(fp)) = (candidates.as_mut(), fp) {
                            list.push((case_id, fp));
                        }
                        Ingested::Opened(case_id)
                    }
                }
            }
            None => revise(&mut tx, m, now).await?,
        };
        out.push(r);
    }
    tx.commit().await.context("committing intake")?;
    Ok(out)
}

/// The storm fingerprint of a mention, if storms are configured and it may join one
/// (a forwarded private post is never folded into a public storm).
fn storm_fingerprint(ctx: &Ctx, m: &Mention) -> Option<i64> {
    let pb = ctx.playbooks();
    let storm = pb.triage_rules.storm.as_ref()?;
    if m.confidential {
        return None;
    }
    fingerprint::simhash(&m.text, storm.min_words)
}

/// How many recent cases a new mention is compared with.
const STORM_CANDIDATES: i64 = 2000;

/// If the mention is a near-duplicate of a recent unresolved case (a storm), attaches it
/// there and returns that case; the card's "+N similar" is refreshed after a short delay
/// so a burst costs one update and the last count always shows.
async fn storm_case(
    ctx: &Ctx,
    tx: &mut Tx<'_>,
    candidates: &mut Option<Vec<(i64, i64)>>,
    fp: Option<i64>,
    mention_id: i64,
    now: i64,
) -> anyhow::Result<Option<i64>> {
    let pb = ctx.playbooks();
    let (Some(storm), Some(fp)) = (&pb.triage_rules.storm, fp) else { return Ok(None) };
    if candidates.is_none() {
        *candidates = Some(cases::storm_candidates(tx, now - storm.window.as_millis(), STORM_CANDIDATES).await?);
    }
    let Some((case_id, _)) = candidates
        .iter()
        .flatten()
        .map(|(id, other)| (*id, fingerprint::distance(fp, *other)))
        .filter(|(_, d)| *d <= storm.max_distance)
        .min_by_key(|(id, d)| (*d, *id))
    else {
        return Ok(None);
    };
    let every = storm.update_every.as_millis();
    if cases::attach_similar(tx, case_id, mention_id, now, every).await? {
        let case = cases::case_in_tx(tx, case_id).await?;
        let quiet = case.as_ref().and_then(|c| pb.situations.get(&c.situation)).is_none_or(|s| !s.storm_lines);
        if !quiet {
            // The count as of now, said as such: the card itself shows the latest count.
            let n = case.map(|c| c.similar_count).unwrap_or_default();
            let at = crate::clock::from_ms(now).with_timezone(&pb.team.timezone).format("%H:%M");
            let text = format!("+{n} similar mention(s) as of {at}");
            crate::chat::queue(tx, &ChatOp::ThreadReply { case_id, text, here: false }, now, now).await?;
        }
        let op = ChatOp::UpdateCard { case_id };
        crate::chat::queue(tx, &op, now, now + every).await?;
    }
    Ok(Some(case_id))
}

async fn open_case(
    ctx: &Ctx,
    tx: &mut Tx<'_>,
    mention_id: i64,
    m: &Mention,
    fingerprint: Option<i64>,
    now: i64,
) -> anyhow::Result<i64> {
    let pb = ctx.playbooks();
    let t = ctx.triage().triage(m);
    let situation = pb.situations.pick(&t, m);
    let due = |s: Option<crate::domain::Span>| s.map(|s| now + s.as_millis());
    let new = NewCase {
        situation: situation.id.clone(),
        priority: situation.priority,
        channel: situation.channel.clone(),
        site: t.site.clone(),
        categories: t.categories.clone(),
        sentiment: t.sentiment,
        sentiment_score: t.sentiment_score,
        risk: t.risk,
        urgent: t.urgent,
        spam: t.spam,
        positive: t.positive,
        confidential: m.confidential,
        reasons: t.reasons.clone(),
        opened_at: now,
        ack_due: due(situation.sla.acknowledge),
        response_due: due(situation.sla.first_response),
        follow_up_due: due(situation.sla.follow_up),
        resolve_due: due(situation.sla.resolve),
        fingerprint,
    };
    let case_id = cases::insert_case(tx, mention_id, &new).await?;
    let mut detail = serde_json::json!({
        "source": m.source, "situation": situation.id, "priority": new.priority.as_str(),
        "site": t.site, "categories": t.categories, "risk": t.risk, "urgent": t.urgent,
    });
    if !m.notes.is_empty() {
        detail["notes"] = serde_json::json!(m.notes);
    }
    cases::append_event(tx, case_id, now, "carebot", "opened", &detail).await?;
    for channel in std::iter::once(&situation.channel).chain(&situation.also_post_to) {
        let op = ChatOp::PostCard { case_id, channel: channel.clone() };
        crate::chat::queue(tx, &op, now, now).await?;
    }
    Ok(case_id)
}

/// A known mention that changed: recorded on its case through the state machine and the
/// case's version check, like every other case change.
async fn revise(tx: &mut Tx<'_>, m: &Mention, now: i64) -> anyhow::Result<Ingested> {
    let known = cases::mention_by_key(tx, &m.source, &m.external_id)
        .await?
        .context("mention vanished between insert and lookup")?;
    let case_id = known.case_id.context("mention without a case")?;
    let text_changed = known.text.as_deref().is_some_and(|t| t != m.text);
    let rating_changed = known.rating != m.rating;
    if !text_changed && !rating_changed {
        return Ok(Ingested::Duplicate(case_id));
    }
    cases::revise_mention(tx, known.id, &m.text, m.rating).await?;
    // The reply carebot published there, if one is live: a recovery is counted for it.
    let published = match crate::publish::Platform::of_source(&m.source) {
        Some(platform) => {
            let events = cases::events_with(&mut **tx, case_id).await?;
            crate::publish::live_reply(&events, platform).map(|e| (e.id, platform.name().to_string()))
        }
        None => None,
    };
    // The version check can lose to a person acting on the case at this moment: read again.
    for _ in 0..5 {
        let case = cases::case_in_tx(tx, case_id).await?.context("mention's case vanished")?;
        let revision = Revision {
            old_rating: known.rating,
            new_rating: m.rating,
            text_changed,
            revision: known.revision + 1,
            after_reply: case.first_response_at.is_some() || published.is_some(),
            published: published.clone(),
        };
        let action = Action::Revise(revision.clone());
        let t = apply(&case.status(), &Actor::system(), &action).map_err(|r| anyhow::anyhow!("case {case_id} {r}"))?;
        if !cases::update_status(tx, case_id, case.version, &t.next, cases::Stamps::default(), now).await? {
            continue;
        }
        cases::append_event(tx, case_id, now, &Actor::system().id, t.event, &t.detail).await?;
        if revision.recovery() {
            cases::mark_recovery(tx, case_id, now).await?;
        }
        let line = ChatOp::ThreadReply { case_id, text: revision.line(), here: false };
        for op in [ChatOp::UpdateCard { case_id }, line] {
            crate::chat::queue(tx, &op, now, now).await?;
        }
        return Ok(Ingested::Revised(case_id));
    }
    anyhow::bail!("case {case_id} kept changing while a revision of its post was recorded")
}
