//! Mentions, cases, their event history and the chat messages that show them.

use super::{flag, Store, Tx};
use crate::domain::{CaseState, CaseStatus, Outcome, Priority};
use crate::playbook::triage::{Reason, Sentiment};
use anyhow::Context as _;
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, serde::Serialize)]
pub struct MentionRow {
    pub id: i64,
    pub source: String,
    pub external_id: String,
    pub url: Option<String>,
    pub author: Option<String>,
    /// `None` once the retention job has purged it.
    pub text: Option<String>,
    pub rating: Option<f64>,
    pub posted_at: i64,
    pub received_at: i64,
    pub location_hint: Option<String>,
    pub visibility: String,
    pub forwarded_by: Option<String>,
    pub confidential: bool,
    pub case_id: Option<i64>,
    pub revision: i64,
}

impl MentionRow {
    /// The stored mention as triage reads it (refused once retention purged its text).
    pub fn as_mention(&self) -> Result<crate::domain::Mention, crate::domain::MentionError> {
        crate::domain::RawMention {
            source: Some(self.source.clone()),
            external_id: Some(self.external_id.clone()),
            url: self.url.clone(),
            text: self.text.clone(),
            rating: self.rating,
            location_hint: self.location_hint.clone(),
            ..Default::default()
        }
        .parse(None, crate::clock::from_ms(self.received_at))
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CaseRow {
    pub id: i64,
    pub mention_id: i64,
    pub state: CaseState,
    pub owner: Option<String>,
    pub outcome: Option<Outcome>,
    pub situation: String,
    pub priority: Priority,
    pub channel: String,
    pub site: Option<String>,
    pub categories: Vec<String>,
    pub sentiment: Sentiment,
    pub sentiment_score: f64,
    pub risk: bool,
    pub urgent: bool,
    pub spam: bool,
    pub positive: bool,
    pub confidential: bool,
    pub escalation_level: i64,
    pub reasons: Vec<Reason>,
    pub opened_at: i64,
    pub updated_at: i64,
    pub claimed_at: Option<i64>,
    pub first_response_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub ack_due: Option<i64>,
    pub response_due: Option<i64>,
    pub follow_up_due: Option<i64>,
    pub resolve_due: Option<i64>,
    pub version: i64,
    /// Near-identical mentions attached to this case (storms).
    pub similar_count: i64,
    /// When the reviewer raised their rating after our reply: a service-recovery candidate.
    pub recovery_at: Option<i64>,
    /// Escalation steps and nudges pause until then (ms); SLA due times do not move.
    pub snoozed_until: Option<i64>,
    /// When the escalation sweep next looks at the case (ms; 0: at its next run).
    pub next_check_at: i64,
}

impl CaseRow {
    pub fn status(&self) -> CaseStatus {
        CaseStatus {
            state: self.state,
            owner: self.owner.clone(),
            outcome: self.outcome,
            escalation_level: self.escalation_level,
        }
    }
    /// Past its next unmet SLA clock at `now` (ms).
    pub fn overdue_at(&self, now: i64) -> bool {
        let past = |d: Option<i64>| d.is_some_and(|d| d < now);
        match self.state {
            CaseState::Open => past(self.ack_due) || past(self.response_due) || past(self.resolve_due),
            CaseState::Claimed => past(self.response_due) || past(self.resolve_due),
            CaseState::Responded | CaseState::Offline => past(self.resolve_due),
            CaseState::Resolved => false,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct EventRow {
    pub id: i64,
    pub case_id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub detail: serde_json::Value,
}

/// A chat message showing a case's card.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MessageRef {
    pub surface: String,
    pub channel: String,
    pub message_ref: String,
}

/// Everything needed to open a case; built by intake from triage.
#[derive(Debug, Clone)]
pub struct NewCase {
    pub situation: String,
    pub priority: Priority,
    pub channel: String,
    pub site: Option<String>,
    pub categories: Vec<String>,
    pub sentiment: Sentiment,
    pub sentiment_score: f64,
    pub risk: bool,
    pub urgent: bool,
    pub spam: bool,
    pub positive: bool,
    pub confidential: bool,
    pub reasons: Vec<Reason>,
    pub opened_at: i64,
    pub ack_due: Option<i64>,
    pub response_due: Option<i64>,
    pub follow_up_due: Option<i64>,
    pub resolve_due: Option<i64>,
    pub fingerprint: Option<i64>,
}

/// Filters for `carebot cases` and the chat queue.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub states: Vec<CaseState>,
    /// Not resolved.
    pub open_only: bool,
    pub owner: Option<String>,
    pub unclaimed: bool,
    pub site: Option<String>,
    pub category: Option<String>,
    /// Past an SLA clock at this time (ms).
    pub overdue_at: Option<i64>,
    pub limit: Option<i64>,
    /// Most urgent first (priority, then the next due time) instead of oldest first.
    pub by_urgency: bool,
}

pub(crate) const CASE_COLS: &str =
    "id, mention_id, state, owner, outcome, situation, priority, channel, site, categories, \
    sentiment, sentiment_score, risk, urgent, spam, positive, confidential, escalation_level, reasons, opened_at, \
    updated_at, claimed_at, first_response_at, resolved_at, ack_due, response_due, follow_up_due, resolve_due, version, \
    similar_count, recovery_at, snoozed_until, next_check_at";

const MENTION_COLS: &str =
    "id, source, external_id, url, author, text, rating, posted_at, received_at, location_hint, \
    visibility, forwarded_by, confidential, case_id, revision";

/// A stored value that does not parse is an error naming the case and column, never
/// silently replaced by a default.
fn stored<T: std::str::FromStr<Err = String>>(id: i64, column: &str, v: &str) -> anyhow::Result<T> {
    v.parse().map_err(|e: String| anyhow::anyhow!("case {id}: stored {column} is unreadable: {e}"))
}

pub(crate) fn case_from_row(r: &AnyRow) -> anyhow::Result<CaseRow> {
    let id: i64 = r.try_get("id")?;
    let state: String = r.try_get("state")?;
    let outcome: Option<String> = r.try_get("outcome")?;
    let categories: String = r.try_get("categories")?;
    let reasons: String = r.try_get("reasons")?;
    let priority: String = r.try_get("priority")?;
    let sentiment: String = r.try_get("sentiment")?;
    Ok(CaseRow {
        id,
        mention_id: r.try_get("mention_id")?,
        state: stored(id, "state", &state)?,
        owner: r.try_get("owner")?,
        outcome: outcome.map(|o| stored(id, "outcome", &o)).transpose()?,
        situation: r.try_get("situation")?,
        priority: stored(id, "priority", &priority)?,
        channel: r.try_get("channel")?,
        site: r.try_get("site")?,
        categories: categories.split(',').filter(|c| !c.is_empty()).map(str::to_string).collect(),
        sentiment: stored(id, "sentiment", &sentiment)?,
        sentiment_score: r.try_get("sentiment_score")?,
        risk: r.try_get::<i64, _>("risk")? != 0,
        urgent: r.try_get::<i64, _>("urgent")? != 0,
        spam: r.try_get::<i64, _>("spam")? != 0,
        positive: r.try_get::<i64, _>("positive")? != 0,
        confidential: r.try_get::<i64, _>("confidential")? != 0,
        escalation_level: r.try_get("escalation_level")?,
        reasons: serde_json::from_str(&reasons).map_err(|e| {
            anyhow::anyhow!("case {id}: stored reasons are unreadable (line {} column {})", e.line(), e.column())
        })?,
        opened_at: r.try_get("opened_at")?,
        updated_at: r.try_get("updated_at")?,
        claimed_at: r.try_get("claimed_at")?,
        first_response_at: r.try_get("first_response_at")?,
        resolved_at: r.try_get("resolved_at")?,
        ack_due: r.try_get("ack_due")?,
        response_due: r.try_get("response_due")?,
        follow_up_due: r.try_get("follow_up_due")?,
        resolve_due: r.try_get("resolve_due")?,
        version: r.try_get("version")?,
        snoozed_until: r.try_get("snoozed_until")?,
        next_check_at: r.try_get("next_check_at")?,
        similar_count: r.try_get("similar_count")?,
        recovery_at: r.try_get("recovery_at")?,
    })
}

fn mention_from_row(r: &AnyRow) -> anyhow::Result<MentionRow> {
    Ok(MentionRow {
        id: r.try_get("id")?,
        source: r.try_get("source")?,
        external_id: r.try_get("external_id")?,
        url: r.try_get("url")?,
        author: r.try_get("author")?,
        text: r.try_get("text")?,
        rating: r.try_get("rating")?,
        posted_at: r.try_get("posted_at")?,
        received_at: r.try_get("received_at")?,
        location_hint: r.try_get("location_hint")?,
        visibility: r.try_get("visibility")?,
        forwarded_by: r.try_get("forwarded_by")?,
        confidential: r.try_get::<i64, _>("confidential")? != 0,
        case_id: r.try_get("case_id")?,
        revision: r.try_get("revision")?,
    })
}

pub(crate) fn event_from_row(r: &AnyRow) -> anyhow::Result<EventRow> {
    let detail: String = r.try_get("detail")?;
    let id: i64 = r.try_get("id")?;
    Ok(EventRow {
        id,
        case_id: r.try_get("case_id")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        detail: serde_json::from_str(&detail).map_err(|e| {
            anyhow::anyhow!("event {id}: stored detail is unreadable (line {} column {})", e.line(), e.column())
        })?,
    })
}

pub async fn mention_by_key(tx: &mut Tx<'_>, source: &str, external_id: &str) -> anyhow::Result<Option<MentionRow>> {
    let sql = format!("SELECT {MENTION_COLS} FROM mentions WHERE source = $1 AND external_id = $2");
    let row = sqlx::query(&sql).bind(source).bind(external_id).fetch_optional(&mut **tx).await?;
    row.as_ref().map(mention_from_row).transpose()
}

/// Applies a revised text/rating to a known mention.
pub async fn revise_mention(tx: &mut Tx<'_>, id: i64, text: &str, rating: Option<f64>) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE mentions SET text = $1, rating = CASE WHEN $4 = 1 THEN $2 END, \
         revision = revision + 1 WHERE id = $3",
    )
    .bind(text)
    .bind(rating.unwrap_or(0.0))
    .bind(id)
    .bind(flag(rating.is_some()))
    .execute(&mut **tx)
    .await
    .context("revising mention")?;
    Ok(())
}

#[tracing::instrument(level = "debug", skip_all, fields(case_id = id))]
pub async fn case_in_tx(tx: &mut Tx<'_>, id: i64) -> anyhow::Result<Option<CaseRow>> {
    let sql = format!("SELECT {CASE_COLS} FROM cases WHERE id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(&mut **tx).await?;
    row.as_ref().map(case_from_row).transpose()
}

/// Timestamps a transition sets, besides the status.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stamps {
    pub claimed_at: Option<i64>,
    pub first_response_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub clear_resolved: bool,
    /// The public reply did not go out after all: its first-response time is taken back.
    pub clear_first_response: bool,
}

/// A status change, only if the case is still at the version read ($10 id, $11 version).
const UPDATE_STATUS: &str =
    "UPDATE cases SET state = $1, owner = $2, outcome = $3, escalation_level = $4, updated_at = $5, \
     claimed_at = COALESCE(claimed_at, $6), \
     first_response_at = CASE WHEN $12 = 1 THEN NULL ELSE COALESCE(first_response_at, $7) END, \
     resolved_at = CASE WHEN $8 = 1 THEN NULL ELSE COALESCE($9, resolved_at) END, version = version + 1, \
     next_check_at = 0 \
     WHERE id = $10 AND version = $11";

/// Writes a new status if the case still has `version`; false if someone got there first.
#[tracing::instrument(level = "debug", skip_all, fields(case_id = id, version))]
pub async fn update_status(
    tx: &mut Tx<'_>,
    id: i64,
    version: i64,
    s: &CaseStatus,
    stamps: Stamps,
    now: i64,
) -> anyhow::Result<bool> {
    Ok(update_status_returning(tx, id, version, s, stamps, now).await?.is_some())
}

/// `update_status`, answering with the case as it now is (one round trip); `None` when
/// the case changed since `version` was read.
pub async fn update_status_returning(
    tx: &mut Tx<'_>,
    id: i64,
    version: i64,
    s: &CaseStatus,
    stamps: Stamps,
    now: i64,
) -> anyhow::Result<Option<CaseRow>> {
    let sql = format!("{UPDATE_STATUS} RETURNING {CASE_COLS}");
    let row = sqlx::query(&sql)
        .bind(s.state.as_str())
        .bind(&s.owner)
        .bind(s.outcome.map(|o| o.as_str()))
        .bind(s.escalation_level)
        .bind(now)
        .bind(stamps.claimed_at)
        .bind(stamps.first_response_at)
        .bind(flag(stamps.clear_resolved))
        .bind(stamps.resolved_at)
        .bind(id)
        .bind(version)
        .bind(flag(stamps.clear_first_response))
        .fetch_optional(&mut **tx)
        .await
        .context("updating case status")?;
    row.as_ref().map(case_from_row).transpose()
}

/// A whole case action in one statement (PostgreSQL): the status change, its event and
/// its chat operations, all or nothing, and only if the case is still at `version`. One
/// round trip and one commit. Answers the case as it now is and the event's id; `None`
/// when the case changed since it was read.
#[allow(clippy::too_many_arguments)]
pub async fn act_in_one(
    store: &Store,
    id: i64,
    version: i64,
    s: &CaseStatus,
    stamps: Stamps,
    now: i64,
    event: (&str, &str, &serde_json::Value),
    outbox: &[super::bulk::OutboxInsert],
) -> anyhow::Result<Option<(CaseRow, i64)>> {
    debug_assert_eq!(store.backend(), super::Backend::Postgres);
    let values: Vec<String> = (0..outbox.len())
        .map(|i| {
            let b = 16 + 5 * i;
            format!("(${b}::bigint, ${}::text, ${}::text, ${}::text, ${}::bigint)", b + 1, b + 2, b + 3, b + 4)
        })
        .collect();
    let queued = if values.is_empty() {
        String::new()
    } else {
        format!(
            ", o AS (INSERT INTO outbox (case_id, op, payload, next_attempt_at, created_at, lane, priority) \
             SELECT x.case_id, x.op, x.payload, $5, $5, x.lane, x.priority FROM u, (VALUES {}) \
             AS x (case_id, op, payload, lane, priority))",
            values.join(", ")
        )
    };
    let sql = format!(
        "WITH u AS ({UPDATE_STATUS} RETURNING {CASE_COLS}), \
         e AS (INSERT INTO case_events (case_id, at, actor, action, detail) SELECT id, $5, $13, $14, $15 FROM u \
         RETURNING id){queued} \
         SELECT u.*, (SELECT e.id FROM e) AS event_id FROM u"
    );
    let (actor, action, detail) = event;
    let mut q = sqlx::query(&sql)
        .bind(s.state.as_str())
        .bind(&s.owner)
        .bind(s.outcome.map(|o| o.as_str()))
        .bind(s.escalation_level)
        .bind(now)
        .bind(stamps.claimed_at)
        .bind(stamps.first_response_at)
        .bind(flag(stamps.clear_resolved))
        .bind(stamps.resolved_at)
        .bind(id)
        .bind(version)
        .bind(flag(stamps.clear_first_response))
        .bind(actor)
        .bind(action)
        .bind(detail.to_string());
    for o in outbox {
        q = q.bind(o.case_id).bind(o.op).bind(&o.payload).bind(&o.lane).bind(o.priority);
    }
    let Some(row) = q.fetch_optional(store.pool()).await.context("recording the case action")? else {
        return Ok(None);
    };
    Ok(Some((case_from_row(&row)?, row.try_get("event_id")?)))
}

/// A corrected site (`None`: no site) or category list.
pub async fn set_site_and_categories(
    tx: &mut Tx<'_>,
    id: i64,
    site: Option<&str>,
    categories: &[String],
    reasons: &[Reason],
) -> anyhow::Result<()> {
    sqlx::query("UPDATE cases SET site = $1, categories = $2, reasons = $3 WHERE id = $4")
        .bind(site)
        .bind(categories.join(","))
        .bind(serde_json::to_string(reasons)?)
        .bind(id)
        .execute(&mut **tx)
        .await
        .context("correcting a case's site or category")?;
    Ok(())
}

/// What follows a case's situation: its priority, channel and SLA due times.
#[derive(Debug, Clone)]
pub struct SituationChange {
    pub situation: String,
    pub priority: Priority,
    pub channel: String,
    pub ack_due: Option<i64>,
    pub response_due: Option<i64>,
    pub follow_up_due: Option<i64>,
    pub resolve_due: Option<i64>,
    /// A clinical/legal-risk situation makes the case one (replies need a lead's approval).
    pub risk: bool,
}

/// A corrected situation, with the priority, channel and SLA due times that follow it.
pub async fn set_situation(tx: &mut Tx<'_>, id: i64, c: &SituationChange) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE cases SET situation = $1, priority = $2, channel = $3, ack_due = $4, response_due = $5, \
         follow_up_due = $6, resolve_due = $7, risk = $8 WHERE id = $9",
    )
    .bind(&c.situation)
    .bind(c.priority.as_str())
    .bind(&c.channel)
    .bind(c.ack_due)
    .bind(c.response_due)
    .bind(c.follow_up_due)
    .bind(c.resolve_due)
    .bind(flag(c.risk))
    .bind(id)
    .execute(&mut **tx)
    .await
    .context("correcting a case's situation")?;
    Ok(())
}

/// A mention read inside a case's transaction.
pub async fn mention_in_tx(tx: &mut Tx<'_>, id: i64) -> anyhow::Result<Option<MentionRow>> {
    let sql = format!("SELECT {MENTION_COLS} FROM mentions WHERE id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(&mut **tx).await.context("reading a mention")?;
    row.as_ref().map(mention_from_row).transpose()
}

/// Pauses a case's escalation steps and nudges until `until` (ms).
pub async fn set_snooze(tx: &mut Tx<'_>, id: i64, until: i64) -> anyhow::Result<()> {
    sqlx::query("UPDATE cases SET snoozed_until = $1 WHERE id = $2")
        .bind(until)
        .bind(id)
        .execute(&mut **tx)
        .await
        .context("snoozing a case")?;
    Ok(())
}

#[tracing::instrument(level = "debug", skip_all, fields(case_id, action))]
pub async fn append_event(
    tx: &mut Tx<'_>,
    case_id: i64,
    at: i64,
    actor: &str,
    action: &str,
    detail: &serde_json::Value,
) -> anyhow::Result<i64> {
    let row = sqlx::query(
        "INSERT INTO case_events (case_id, at, actor, action, detail) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(case_id)
    .bind(at)
    .bind(actor)
    .bind(action)
    .bind(detail.to_string())
    .fetch_one(&mut **tx)
    .await
    .context("appending case event")?;
    Ok(row.try_get(0)?)
}

impl Store {
    #[tracing::instrument(level = "debug", skip_all, fields(case_id = id))]
    pub async fn case(&self, id: i64) -> anyhow::Result<Option<CaseRow>> {
        let sql = format!("SELECT {CASE_COLS} FROM cases WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(self.pool()).await?;
        row.as_ref().map(case_from_row).transpose()
    }

    pub async fn mention(&self, id: i64) -> anyhow::Result<Option<MentionRow>> {
        let sql = format!("SELECT {MENTION_COLS} FROM mentions WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(self.pool()).await?;
        row.as_ref().map(mention_from_row).transpose()
    }

    pub async fn events(&self, case_id: i64) -> anyhow::Result<Vec<EventRow>> {
        events_with(self.pool(), case_id).await
    }

    /// Open cases with a reply waiting for a lead's approval, and the request, oldest first.
    pub async fn awaiting_approvals(&self) -> anyhow::Result<Vec<(CaseRow, EventRow)>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT e.case_id FROM case_events e JOIN cases c ON c.id = e.case_id \
             WHERE e.action = 'request_approval' AND c.state <> 'resolved' ORDER BY e.case_id",
        )
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::new();
        for id in ids {
            let events = self.events(id).await?;
            if let (Some(case), Some(req)) = (self.case(id).await?, awaiting_approval(&events)) {
                out.push((case, req.clone()));
            }
        }
        out.sort_by_key(|(_, e)| e.at);
        Ok(out)
    }

    pub async fn count(&self, table: Table) -> anyhow::Result<i64> {
        let sql = format!("SELECT COUNT(*) FROM {}", table.name());
        Ok(sqlx::query(&sql).fetch_one(self.pool()).await?.try_get(0)?)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn list_cases(&self, f: &CaseFilter) -> anyhow::Result<Vec<CaseRow>> {
        let mut sql = format!("SELECT {CASE_COLS} FROM cases WHERE 1 = 1");
        let mut args: Vec<String> = Vec::new();
        let mut bind = |sql: &mut String, clause: &str, v: String| {
            args.push(v);
            sql.push_str(&clause.replace('?', &format!("${}", args.len())));
        };
        if f.open_only {
            sql.push_str(" AND state <> 'resolved'");
        }
        if !f.states.is_empty() {
            let list: Vec<String> = f.states.iter().map(|s| format!("'{}'", s.as_str())).collect();
            sql.push_str(&format!(" AND state IN ({})", list.join(", ")));
        }
        if f.unclaimed {
            sql.push_str(" AND owner IS NULL");
        }
        if let Some(o) = &f.owner {
            bind(&mut sql, " AND owner = ?", o.clone());
        }
        if let Some(s) = &f.site {
            bind(&mut sql, " AND site = ?", s.clone());
        }
        if let Some(c) = &f.category {
            bind(&mut sql, " AND (',' || categories || ',') LIKE ?", format!("%,{c},%"));
        }
        // Filters and the limit run in the database: only the rows asked for come back.
        // (`CaseRow::overdue_at` is the same rule, for one case in hand.)
        let now = f.overdue_at.unwrap_or_default();
        if f.overdue_at.is_some() {
            sql.push_str(&format!(
                " AND ((state = 'open' AND (ack_due < {now} OR response_due < {now} OR resolve_due < {now})) \
                 OR (state = 'claimed' AND (response_due < {now} OR resolve_due < {now})) \
                 OR (state IN ('responded', 'offline') AND resolve_due < {now}))"
            ));
        }
        if f.by_urgency {
            // The next due time that still counts: acknowledge while open, first response
            // until there is one, then resolve.
            sql.push_str(
                " ORDER BY priority, COALESCE(CASE WHEN state = 'open' THEN ack_due END, \
                 CASE WHEN first_response_at IS NULL THEN response_due END, resolve_due, opened_at), id",
            );
        } else {
            sql.push_str(" ORDER BY opened_at, id");
        }
        if let Some(n) = f.limit {
            sql.push_str(&format!(" LIMIT {}", n.max(0)));
        }
        let mut q = sqlx::query(&sql);
        for a in &args {
            q = q.bind(a);
        }
        let rows = q.fetch_all(self.pool()).await?;
        rows.iter().map(case_from_row).collect()
    }

    pub async fn case_messages(&self, case_id: i64) -> anyhow::Result<Vec<MessageRef>> {
        let rows = sqlx::query(
            "SELECT surface, channel, message_ref FROM case_messages WHERE case_id = $1 ORDER BY posted_at",
        )
        .bind(case_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MessageRef {
                    surface: r.try_get("surface")?,
                    channel: r.try_get("channel")?,
                    message_ref: r.try_get("message_ref")?,
                })
            })
            .collect()
    }

    /// The fingerprint of the card a message last showed.
    pub async fn card_rendered(&self, case_id: i64, m: &MessageRef) -> anyhow::Result<Option<String>> {
        let row =
            sqlx::query("SELECT rendered FROM case_messages WHERE case_id = $1 AND surface = $2 AND channel = $3")
                .bind(case_id)
                .bind(&m.surface)
                .bind(&m.channel)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|r| r.try_get::<Option<String>, _>("rendered")).transpose()?.flatten())
    }

    pub async fn set_card_rendered(&self, case_id: i64, m: &MessageRef, fingerprint: &str) -> anyhow::Result<()> {
        sqlx::query("UPDATE case_messages SET rendered = $1 WHERE case_id = $2 AND surface = $3 AND channel = $4")
            .bind(fingerprint)
            .bind(case_id)
            .bind(&m.surface)
            .bind(&m.channel)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn save_case_message(&self, case_id: i64, m: &MessageRef, now: i64) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO case_messages (case_id, surface, channel, message_ref, posted_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (case_id, surface, channel) DO UPDATE SET message_ref = $4",
        )
        .bind(case_id)
        .bind(&m.surface)
        .bind(&m.channel)
        .bind(&m.message_ref)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Case counts by state, for /metrics.
    pub async fn cases_by_state(&self) -> anyhow::Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM cases GROUP BY state").fetch_all(self.pool()).await?;
        rows.iter().map(|r| Ok((r.try_get("state")?, r.try_get("n")?))).collect()
    }

    /// Mentions stored per source, for /metrics (survives restarts, unlike a process counter).
    pub async fn mentions_by_source(&self) -> anyhow::Result<Vec<(String, i64)>> {
        let rows =
            sqlx::query("SELECT source, COUNT(*) AS n FROM mentions GROUP BY source").fetch_all(self.pool()).await?;
        rows.iter().map(|r| Ok((r.try_get("source")?, r.try_get("n")?))).collect()
    }

    /// Texts of public replies recorded since `since` (ms), for the canned-reply check.
    pub async fn public_replies_since(&self, since: i64) -> anyhow::Result<Vec<String>> {
        let rows = sqlx::query("SELECT detail FROM case_events WHERE action = 'respond' AND at >= $1")
            .bind(since)
            .fetch_all(self.pool())
            .await?;
        let mut out = Vec::new();
        for r in &rows {
            let detail: String = r.try_get("detail")?;
            if let Some(t) = serde_json::from_str::<serde_json::Value>(&detail)?.get("text").and_then(|t| t.as_str()) {
                out.push(t.to_string());
            }
        }
        Ok(out)
    }

    /// Clears mention text and author of resolved cases closed before `cutoff` (ms).
    pub async fn purge_mention_text(&self, cutoff: i64, now: i64) -> anyhow::Result<u64> {
        let r = sqlx::query(
            "UPDATE mentions SET text = NULL, author = NULL, purged_at = $1 WHERE purged_at IS NULL AND case_id IN \
             (SELECT id FROM cases WHERE state = 'resolved' AND resolved_at < $2)",
        )
        .bind(now)
        .bind(cutoff)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected())
    }
}

/// Tables that can be counted (a closed list: table names are not bound parameters).
#[derive(Debug, Clone, Copy)]
pub enum Table {
    Mentions,
    Cases,
    CaseEvents,
    Outbox,
}

impl Table {
    fn name(&self) -> &'static str {
        match self {
            Table::Mentions => "mentions",
            Table::Cases => "cases",
            Table::CaseEvents => "case_events",
            Table::Outbox => "outbox",
        }
    }
}

/// The `limit` most recent unresolved cases opened since `since` that carry a fingerprint.
pub async fn storm_candidates(tx: &mut Tx<'_>, since: i64, limit: i64) -> anyhow::Result<Vec<(i64, i64)>> {
    let rows = sqlx::query(
        "SELECT id, fingerprint FROM cases WHERE opened_at >= $1 AND fingerprint IS NOT NULL AND state <> 'resolved' \
         ORDER BY opened_at DESC, id DESC LIMIT $2",
    )
    .bind(since)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await
    .context("finding storm candidates")?;
    rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("fingerprint")?))).collect()
}

/// Marks a case as a recovery candidate (the first time only).
pub async fn mark_recovery(tx: &mut Tx<'_>, case_id: i64, now: i64) -> anyhow::Result<()> {
    sqlx::query("UPDATE cases SET recovery_at = COALESCE(recovery_at, $1), updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(case_id)
        .execute(&mut **tx)
        .await
        .context("marking a recovery candidate")?;
    Ok(())
}

/// Counts `k` more similar mentions on a case. Returns true when the card's refresh should
/// be queued (none is pending within `every_ms`).
pub async fn count_similar(tx: &mut Tx<'_>, case_id: i64, k: i64, now: i64, every_ms: i64) -> anyhow::Result<bool> {
    sqlx::query("UPDATE cases SET similar_count = similar_count + $1 WHERE id = $2")
        .bind(k)
        .bind(case_id)
        .execute(&mut **tx)
        .await
        .context("counting similar mentions")?;
    // Only the first similar mention after a quiet spell schedules a refresh.
    let noted = sqlx::query(
        "UPDATE cases SET similar_noted_at = $1 WHERE id = $2 AND (similar_noted_at IS NULL OR similar_noted_at <= $3)",
    )
    .bind(now)
    .bind(case_id)
    .bind(now - every_ms)
    .execute(&mut **tx)
    .await?;
    Ok(noted.rows_affected() == 1)
}

/// A case's events, oldest first, read through `ex` (the pool or a case transaction).
pub async fn events_with<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    ex: E,
    case_id: i64,
) -> anyhow::Result<Vec<EventRow>> {
    let rows =
        sqlx::query("SELECT id, case_id, at, actor, action, detail FROM case_events WHERE case_id = $1 ORDER BY id")
            .bind(case_id)
            .fetch_all(ex)
            .await?;
    rows.iter().map(event_from_row).collect()
}

/// The reply text an event carries (`request_approval`, `approve_reply`, `respond`).
pub fn event_text(e: &EventRow) -> Option<&str> {
    e.detail.get("text").and_then(|t| t.as_str())
}

/// The request for a lead's approval that still waits for a decision, if any: a later
/// approval, a request for changes, a posted reply or the case leaving public handling
/// settles it.
pub fn awaiting_approval(events: &[EventRow]) -> Option<&EventRow> {
    for e in events.iter().rev() {
        match e.action.as_str() {
            "request_approval" => return Some(e),
            "approve_reply" | "request_changes" | "respond" | "offline" | "resolve" | "reopen" => return None,
            _ => {}
        }
    }
    None
}

/// The latest reply text a lead approved that has not been marked responded yet.
pub fn approved_reply(events: &[EventRow]) -> Option<&EventRow> {
    for e in events.iter().rev() {
        match e.action.as_str() {
            "approve_reply" => return Some(e),
            "respond" | "request_changes" | "request_approval" | "reopen" => return None,
            _ => {}
        }
    }
    None
}
