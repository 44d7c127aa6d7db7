//! `carebot export`: the cases opened in a date range with their timings and outcomes, one
//! row per case, for the monthly report and the complaint system. Columns follow the usual
//! complaint-register layout (received, source, site, category, severity, owner, dates,
//! outcome). Mention text is left out unless asked for; asking is recorded on each case.

use super::{day_bounds, Names};
use crate::ctx::Ctx;
use crate::store::reports::ReportCase;
use chrono::NaiveDate;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ExportRow {
    pub case_id: i64,
    /// Local time the case was opened (RFC 3339 with offset).
    pub received: String,
    /// Local time it was posted on its platform.
    pub posted: String,
    pub source: String,
    pub url: Option<String>,
    pub site: String,
    pub categories: String,
    /// The clinical/legal-risk rules that matched (labels), "possible" ones included.
    pub risk_flags: String,
    pub sentiment: String,
    pub rating: Option<f64>,
    pub priority: String,
    pub situation: String,
    pub clinical_risk: bool,
    pub confidential: bool,
    pub state: String,
    pub outcome: Option<String>,
    pub owner: Option<String>,
    pub claimed: Option<String>,
    pub first_response: Option<String>,
    pub resolved: Option<String>,
    pub minutes_to_claim: Option<i64>,
    pub minutes_to_first_response: Option<i64>,
    pub response_due: Option<String>,
    /// Answered by the response clock's due time; None while it is not yet due or with no clock.
    pub within_sla: Option<bool>,
    pub escalation_level: i64,
    pub similar_mentions: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

pub const COLUMNS: [&str; 26] = [
    "case_id",
    "received",
    "posted",
    "source",
    "url",
    "site",
    "categories",
    "risk_flags",
    "sentiment",
    "rating",
    "priority",
    "situation",
    "clinical_risk",
    "confidential",
    "state",
    "outcome",
    "owner",
    "claimed",
    "first_response",
    "resolved",
    "minutes_to_claim",
    "minutes_to_first_response",
    "response_due",
    "within_sla",
    "escalation_level",
    "similar_mentions",
];

/// One row per case: pure. `at` decides whether an unanswered clock has been missed yet.
pub fn rows(cases: &[ReportCase], tz: chrono_tz::Tz, at: i64, names: &Names) -> Vec<ExportRow> {
    let local = |ms: i64| crate::clock::from_ms(ms).with_timezone(&tz).to_rfc3339();
    cases
        .iter()
        .map(|r| {
            let c = &r.case;
            let within_sla = match (c.response_due, c.first_response_at) {
                (Some(due), Some(first)) => Some(first <= due),
                (Some(due), None) if due < at => Some(false),
                _ => None,
            };
            ExportRow {
                case_id: c.id,
                received: local(c.opened_at),
                posted: local(r.posted_at),
                source: r.source.clone(),
                url: r.url.clone(),
                site: names.site(c.site.as_deref()).to_string(),
                categories: c.categories.iter().map(|x| names.category(x)).collect::<Vec<_>>().join("; "),
                risk_flags: {
                    let mut flags: Vec<&str> = c
                        .reasons
                        .iter()
                        .filter(|x| x.kind == "risk" || x.kind == "possible_risk")
                        .map(|x| names.category(&x.rule))
                        .collect();
                    flags.dedup();
                    flags.join("; ")
                },
                sentiment: c.sentiment.as_str().to_string(),
                rating: r.rating,
                priority: c.priority.as_str().to_uppercase(),
                situation: c.situation.clone(),
                clinical_risk: c.risk,
                confidential: c.confidential,
                state: c.state.to_string(),
                outcome: c.outcome.map(|o| o.as_str().to_string()),
                owner: c.owner.as_deref().map(|o| names.person(o).to_string()),
                claimed: c.claimed_at.map(local),
                first_response: c.first_response_at.map(local),
                resolved: c.resolved_at.map(local),
                minutes_to_claim: c.claimed_at.map(|t| (t - c.opened_at) / 60_000),
                minutes_to_first_response: c.first_response_at.map(|t| (t - c.opened_at) / 60_000),
                response_due: c.response_due.map(local),
                within_sla,
                escalation_level: c.escalation_level,
                similar_mentions: c.similar_count,
                text: r.text.clone(),
            }
        })
        .collect()
}

/// Export format.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Format {
    Csv,
    Jsonl,
}

pub fn render(rows: &[ExportRow], format: Format, with_text: bool) -> anyhow::Result<String> {
    match format {
        Format::Jsonl => {
            let mut o = String::new();
            for r in rows {
                o.push_str(&serde_json::to_string(r)?);
                o.push('\n');
            }
            Ok(o)
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let mut header: Vec<&str> = COLUMNS.to_vec();
            if with_text {
                header.push("text");
            }
            w.write_record(&header)?;
            let o = |v: &Option<String>| v.clone().unwrap_or_default();
            let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
            for r in rows {
                let mut rec = vec![
                    r.case_id.to_string(),
                    r.received.clone(),
                    r.posted.clone(),
                    r.source.clone(),
                    o(&r.url),
                    r.site.clone(),
                    r.categories.clone(),
                    r.risk_flags.clone(),
                    r.sentiment.clone(),
                    r.rating.map(|x| x.to_string()).unwrap_or_default(),
                    r.priority.clone(),
                    r.situation.clone(),
                    yes(r.clinical_risk),
                    yes(r.confidential),
                    r.state.clone(),
                    o(&r.outcome),
                    o(&r.owner),
                    o(&r.claimed),
                    o(&r.first_response),
                    o(&r.resolved),
                    r.minutes_to_claim.map(|x| x.to_string()).unwrap_or_default(),
                    r.minutes_to_first_response.map(|x| x.to_string()).unwrap_or_default(),
                    o(&r.response_due),
                    r.within_sla.map(yes).unwrap_or_default(),
                    r.escalation_level.to_string(),
                    r.similar_mentions.to_string(),
                ];
                if with_text {
                    rec.push(o(&r.text));
                }
                w.write_record(&rec)?;
            }
            Ok(String::from_utf8(w.into_inner()?)?)
        }
    }
}

/// Why an export was refused.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("--with-text needs --as PERSON: who exports mention text is recorded on each case")]
    WhoExports,
    #[error("@{0} is not in the team file")]
    UnknownPerson(String),
    #[error("{0} may not export mention text; it needs the lead or risk role")]
    NotAllowed(String),
    #[error("--from {0} is after --to {1}")]
    BadRange(NaiveDate, NaiveDate),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The export of the cases opened from `from` to `to` (local days, inclusive). With text,
/// `who` must be a lead or risk person, and each exported case records it in its history.
pub async fn export(
    ctx: &Ctx,
    from: NaiveDate,
    to: NaiveDate,
    format: Format,
    with_text: Option<&str>,
) -> Result<String, ExportError> {
    if from > to {
        return Err(ExportError::BadRange(from, to));
    }
    let playbooks = ctx.playbooks();
    let actor = match with_text {
        None => None,
        Some(who) => {
            let p = playbooks.team.person(who).ok_or_else(|| ExportError::UnknownPerson(who.to_string()))?;
            let allowed = p.roles.iter().any(|r| matches!(r, crate::domain::Role::Lead | crate::domain::Role::Risk));
            if !allowed {
                return Err(ExportError::NotAllowed(p.name.clone()));
            }
            Some(p.id.clone())
        }
    };
    let tz = playbooks.team.timezone;
    let (start, _) = day_bounds(tz, from);
    let (_, end) = day_bounds(tz, to);
    let cases = ctx.store.cases_opened_between(start, end, actor.is_some()).await?;
    let rows = rows(&cases, tz, end.min(ctx.now_ms()), &Names::from_playbooks(&playbooks));
    let out = render(&rows, format, actor.is_some())?;
    if let Some(actor) = actor {
        let ids: Vec<i64> = cases.iter().map(|c| c.case.id).collect();
        let detail = serde_json::json!({ "from": from.to_string(), "to": to.to_string() });
        ctx.store.record_text_export(&ids, &actor, ctx.now_ms(), &detail).await?;
    }
    Ok(out)
}
