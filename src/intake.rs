//! Intake: dedupe on (source, external id), triage, open the case and queue its card — all
//! in one transaction, so a mention accepted is a mention stored with its card on the way.
//! A known mention with new text or rating is a revision event on its existing case.

use crate::chat::ChatOp;
use crate::ctx::Ctx;
use crate::domain::{apply, fingerprint, Action, Actor, Mention, Revision};
use crate::store::{bulk, cases, is_contention, NewCase, Tx};
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
    let triaged = triage_new(ctx, mentions).await?;
    loop {
        attempt += 1;
        match ingest_once(ctx, mentions, &triaged).await {
            Ok(out) => {
                for (m, r) in mentions.iter().zip(&out) {
                    if matches!(r, Ingested::Opened(_) | Ingested::Similar(_)) {
                        metrics::counter!("carebot_mentions_ingested_total", "source" => m.source.clone()).increment(1);
                    }
                }
                ctx.outbox_wake.notify_one();
                return Ok(out);
            }
            Err(e)
                if attempt < 8
                    && (is_contention(&e) || e.is::<BatchRaced>())
                    && std::time::Instant::now() < give_up =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(20 * attempt)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// What triage decided for a new mention, decided before the transaction opens.
struct Triaged {
    result: crate::playbook::TriageResult,
    fingerprint: Option<i64>,
}

/// Batches at least this large are triaged on every core.
const PARALLEL_FROM: usize = 32;

/// Triage is intake's CPU work: it runs before the transaction opens (so a transaction,
/// and SQLite's write lock, is held only for the writes), only for mentions whose key is
/// not stored yet, and a large batch is split across the cores. A mention that turns out
/// new only inside the transaction (a race) is triaged there.
async fn triage_new(ctx: &Ctx, mentions: &[Mention]) -> anyhow::Result<Vec<Option<Triaged>>> {
    let keys: Vec<(&str, &str)> = mentions.iter().map(|m| (m.source.as_str(), m.external_id.as_str())).collect();
    let known = {
        let mut conn = ctx.store.pool().acquire().await.context("looking up known mentions")?;
        bulk::known_keys(&mut conn, ctx.store.backend(), &keys).await?
    };
    let mut seen = std::collections::HashSet::new();
    let fresh: Vec<usize> = (0..mentions.len())
        .filter(|&i| {
            let key = (mentions[i].source.clone(), mentions[i].external_id.clone());
            !known.contains_key(&key) && seen.insert(key)
        })
        .collect();
    let (triage, pb) = (ctx.triage(), ctx.playbooks());
    let one = move |m: &Mention| Triaged { result: triage.triage(m), fingerprint: storm_fingerprint(&pb, m) };
    let results: Vec<Triaged> = if fresh.len() < PARALLEL_FROM {
        fresh.iter().map(|&i| one(&mentions[i])).collect()
    } else {
        let todo: Vec<Mention> = fresh.iter().map(|&i| mentions[i].clone()).collect();
        tokio::task::spawn_blocking(move || {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
            let chunks: Vec<&[Mention]> = todo.chunks(todo.len().div_ceil(cores)).collect();
            let one = &one;
            std::thread::scope(|s| {
                let rest: Vec<_> =
                    chunks[1..].iter().map(|c| s.spawn(move || c.iter().map(one).collect::<Vec<_>>())).collect();
                let mut out: Vec<Triaged> = chunks[0].iter().map(one).collect();
                for h in rest {
                    out.extend(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
                }
                out
            })
        })
        .await
        .context("triaging the batch")?
    };
    let mut out: Vec<Option<Triaged>> = (0..mentions.len()).map(|_| None).collect();
    for (i, t) in fresh.into_iter().zip(results) {
        out[i] = Some(t);
    }
    Ok(out)
}

/// A new case must not be folded into a case that raced it: the batch is tried again.
#[derive(Debug, thiserror::Error)]
#[error("another writer stored some of these mentions at the same moment")]
struct BatchRaced;

/// Where a new mention of the batch goes.
enum Plan {
    /// Opens a case: index into the batch's new cases.
    Open(usize),
    /// Joins a case that existed before the batch.
    JoinStored(i64),
    /// Joins a case this batch opens.
    JoinNew(usize),
}

/// A storm candidate: a stored case, or one this batch opens (with its index).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Candidate {
    Stored(i64),
    New(usize),
}

/// One batch, set-based: one lookup of the known keys; triage and storm folding in
/// memory; then one multi-row statement per table (mentions, cases, events, outbox).
/// Known mentions (revisions) go one by one after that, as before.
async fn ingest_once(ctx: &Ctx, mentions: &[Mention], triaged: &[Option<Triaged>]) -> anyhow::Result<Vec<Ingested>> {
    let now = ctx.now_ms();
    let pb = ctx.playbooks();
    let mut tx = ctx.store.begin().await?;
    let keys: Vec<(&str, &str)> = mentions.iter().map(|m| (m.source.as_str(), m.external_id.as_str())).collect();
    // What each key looks like now: as stored, or as first seen in this batch.
    let mut current = bulk::known_keys(&mut tx, ctx.store.backend(), &keys).await?;
    let mut seen = std::collections::HashSet::new();
    let (mut fresh, mut again) = (Vec::new(), Vec::new());
    for (i, k) in keys.iter().enumerate() {
        let key = (k.0.to_string(), k.1.to_string());
        if current.contains_key(&key) || !seen.insert(key) {
            again.push(i);
        } else {
            fresh.push(i);
        }
    }

    // Storm folding against recent stored cases and the cases this batch opens.
    let storm = pb.triage_rules.storm.as_ref();
    let mut candidates: Vec<(Candidate, i64)> = match storm {
        Some(s) if !fresh.is_empty() => cases::storm_candidates(&mut tx, now - s.window.as_millis(), STORM_CANDIDATES)
            .await?
            .into_iter()
            .map(|(id, fp)| (Candidate::Stored(id), fp))
            .collect(),
        _ => Vec::new(),
    };
    let mut plans = Vec::with_capacity(fresh.len());
    let mut opened: Vec<(usize, NewCase, Vec<String>)> = Vec::new();
    for &i in &fresh {
        let m = &mentions[i];
        let late;
        let t = match &triaged[i] {
            Some(t) => t,
            None => {
                late = Triaged { result: ctx.triage().triage(m), fingerprint: storm_fingerprint(&pb, m) };
                &late
            }
        };
        let fp = t.fingerprint;
        let joined = match (storm, fp) {
            (Some(s), Some(fp)) => candidates
                .iter()
                .map(|(c, other)| (*c, fingerprint::distance(fp, *other)))
                .filter(|(_, d)| *d <= s.max_distance)
                .min_by_key(|(c, d)| (*d, *c))
                .map(|(c, _)| c),
            _ => None,
        };
        plans.push(match joined {
            Some(Candidate::Stored(id)) => Plan::JoinStored(id),
            Some(Candidate::New(n)) => Plan::JoinNew(n),
            None => {
                let (case, channels) = new_case(&pb, m, &t.result, fp, now);
                if let Some(fp) = fp {
                    candidates.push((Candidate::New(opened.len()), fp));
                }
                opened.push((i, case, channels));
                Plan::Open(opened.len() - 1)
            }
        });
    }

    // Ids first, so every row can name the rows it belongs to.
    let backend = ctx.store.backend();
    let mention_ids = bulk::reserve_ids(&mut tx, backend, "mentions", fresh.len()).await?;
    let case_ids = bulk::reserve_ids(&mut tx, backend, "cases", opened.len()).await?;
    let mut similar = vec![0i64; opened.len()];
    let mut joined_stored: Vec<(i64, i64)> = Vec::new(); // (case, mentions joined)
    let mut rows = Vec::with_capacity(fresh.len());
    let mut out = vec![Ingested::Duplicate(0); mentions.len()];
    for ((&i, plan), &id) in fresh.iter().zip(&plans).zip(&mention_ids) {
        let case_id = match *plan {
            Plan::Open(n) => {
                out[i] = Ingested::Opened(case_ids[n]);
                case_ids[n]
            }
            Plan::JoinNew(n) => {
                similar[n] += 1;
                out[i] = Ingested::Similar(case_ids[n]);
                case_ids[n]
            }
            Plan::JoinStored(c) => {
                match joined_stored.iter_mut().find(|(id, _)| *id == c) {
                    Some((_, k)) => *k += 1,
                    None => joined_stored.push((c, 1)),
                }
                out[i] = Ingested::Similar(c);
                c
            }
        };
        rows.push(bulk::MentionInsert { id, mention: &mentions[i], case_id });
    }
    if bulk::insert_mentions(&mut tx, backend, &rows, now).await? < rows.len() as u64 {
        return Err(BatchRaced.into());
    }
    let mut mention_of = vec![0i64; mentions.len()];
    for (&i, &id) in fresh.iter().zip(&mention_ids) {
        mention_of[i] = id;
    }
    let inserts: Vec<_> = opened
        .iter()
        .zip(&case_ids)
        .zip(&similar)
        .map(|(((i, case, _), &id), &similar)| bulk::CaseInsert { id, mention_id: mention_of[*i], case, similar })
        .collect();
    bulk::insert_cases(&mut tx, backend, &inserts).await?;

    let mut events = Vec::with_capacity(opened.len());
    let mut outbox = Vec::with_capacity(opened.len());
    for (((i, case, channels), &case_id), &similar) in opened.iter().zip(&case_ids).zip(&similar) {
        let m = &mentions[*i];
        let mut detail = serde_json::json!({
            "source": m.source, "situation": case.situation, "priority": case.priority.as_str(),
            "site": case.site, "categories": case.categories, "risk": case.risk, "urgent": case.urgent,
        });
        if !m.notes.is_empty() {
            detail["notes"] = serde_json::json!(m.notes);
        }
        events.push(bulk::EventInsert {
            case_id,
            at: now,
            actor: Actor::system().id,
            action: "opened",
            detail: detail.to_string(),
        });
        let rank = crate::chat::outbox_rank(case.priority);
        let home = format!("channel:{}", case.channel);
        let mut ops: Vec<(ChatOp, i64)> =
            channels.iter().map(|channel| (ChatOp::PostCard { case_id, channel: channel.clone() }, now)).collect();
        if similar > 0 {
            ops.extend(storm_ops(ctx, case_id, &case.situation, similar, now));
        }
        for (op, due) in ops {
            outbox.push(bulk::OutboxInsert {
                case_id: Some(case_id),
                op: op.name(),
                payload: serde_json::to_string(&op)?,
                lane: op.lane().unwrap_or_else(|| home.clone()),
                priority: rank,
                created_at: now,
                due,
            });
        }
    }
    bulk::insert_events(&mut tx, backend, &events).await?;
    bulk::insert_outbox(&mut tx, backend, &outbox).await?;
    for (case_id, k) in joined_stored {
        join_stored(ctx, &mut tx, case_id, k, now).await?;
    }
    for &i in &fresh {
        let m = &mentions[i];
        let known = bulk::Known { case_id: Some(out[i].case_id()), text: Some(m.text.clone()), rating: m.rating };
        current.insert((m.source.clone(), m.external_id.clone()), known);
    }
    // Seen before: unchanged is a duplicate, told apart in memory; a change is a revision.
    for i in again {
        let m = &mentions[i];
        let key = (m.source.clone(), m.external_id.clone());
        let unchanged = current.get(&key).and_then(|k| {
            let text_changed = k.text.as_deref().is_some_and(|t| t != m.text);
            (!text_changed && k.rating == m.rating).then_some(k.case_id).flatten()
        });
        out[i] = match unchanged {
            Some(case_id) => Ingested::Duplicate(case_id),
            None => {
                let r = revise(&mut tx, m, now).await?;
                if let Some(k) = current.get_mut(&key) {
                    (k.text, k.rating) = (Some(m.text.clone()), m.rating);
                }
                r
            }
        };
    }
    tx.commit().await.context("committing intake")?;
    Ok(out)
}

/// What a storm's growth queues on its case: the card refreshed after a short delay, so a
/// burst costs one update and the last count always shows, and — where the situation
/// asks — a line under the card with the count as of now.
fn storm_ops(ctx: &Ctx, case_id: i64, situation: &str, count: i64, now: i64) -> Vec<(ChatOp, i64)> {
    let pb = ctx.playbooks();
    let Some(storm) = pb.triage_rules.storm.as_ref() else { return Vec::new() };
    let mut ops = Vec::new();
    if pb.situations.get(situation).is_some_and(|s| s.storm_lines) {
        let at = crate::clock::from_ms(now).with_timezone(&pb.team.timezone).format("%H:%M");
        let text = format!("+{count} similar mention(s) as of {at}");
        ops.push((ChatOp::ThreadReply { case_id, text, here: false }, now));
    }
    ops.push((ChatOp::UpdateCard { case_id }, now + storm.update_every.as_millis()));
    ops
}

/// The storm fingerprint of a mention, if storms are configured and it may join one
/// (a forwarded private post is never folded into a public storm).
fn storm_fingerprint(pb: &crate::playbook::Playbooks, m: &Mention) -> Option<i64> {
    let storm = pb.triage_rules.storm.as_ref()?;
    if m.confidential {
        return None;
    }
    fingerprint::simhash(&m.text, storm.min_words)
}

/// How many recent cases a new mention is compared with.
const STORM_CANDIDATES: i64 = 2000;

/// `k` mentions of this batch joined a stored case: counted there, and its card refreshed
/// unless a refresh is already pending.
async fn join_stored(ctx: &Ctx, tx: &mut Tx<'_>, case_id: i64, k: i64, now: i64) -> anyhow::Result<()> {
    let Some(storm) = ctx.playbooks().triage_rules.storm.clone() else { return Ok(()) };
    if cases::count_similar(tx, case_id, k, now, storm.update_every.as_millis()).await? {
        let Some(case) = cases::case_in_tx(tx, case_id).await? else { return Ok(()) };
        for (op, due) in storm_ops(ctx, case_id, &case.situation, case.similar_count, now) {
            crate::chat::queue(tx, &op, now, due).await?;
        }
    }
    Ok(())
}

/// Triage, situation and due times of a new case, and the channels its card goes to.
fn new_case(
    pb: &crate::playbook::Playbooks,
    m: &Mention,
    t: &crate::playbook::TriageResult,
    fingerprint: Option<i64>,
    now: i64,
) -> (NewCase, Vec<String>) {
    let situation = pb.situations.pick(t, m);
    let due = |s: Option<crate::domain::Span>| s.map(|s| now + s.as_millis());
    let case = NewCase {
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
    let mut channels: Vec<String> =
        std::iter::once(&situation.channel).chain(&situation.also_post_to).cloned().collect();
    // A possible risk that went to another situation first (someone on site now) still
    // reaches the channel that confirms or dismisses possible risk.
    if t.possible_risk && !t.risk && situation.when.possible_risk != Some(true) {
        if let Some(p) = pb.situations.situations.iter().find(|s| s.when.possible_risk == Some(true)) {
            if !channels.contains(&p.channel) {
                channels.push(p.channel.clone());
            }
        }
    }
    (case, channels)
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
