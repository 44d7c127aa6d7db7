//! Per-agent and per-site performance for leads (`carebot report agents`): for the cases
//! opened in a date range, who worked them (the case's owner), how fast they were claimed
//! and answered, the share answered within the response clock, and how they ended.

use super::{day_bounds, fmt_minutes, fmt_share, percentile, Names, Summary};
use crate::ctx::Ctx;
use crate::store::reports::ReportCase;
use chrono::NaiveDate;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    /// Person id (agents) or site id (sites; None: no site).
    pub key: Option<String>,
    pub cases: i64,
    /// Of them, claimed by someone (for sites; an agent's cases are all claimed).
    pub claimed: i64,
    pub median_claim_minutes: Option<f64>,
    pub median_response_minutes: Option<f64>,
    pub within_sla_share: Option<f64>,
    pub with_clock: i64,
    /// Resolved cases by outcome; "open" for those still unresolved.
    pub outcomes: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Performance {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub timezone: String,
    pub agents: Vec<Row>,
    /// Cases of the range nobody owns (never claimed, or released).
    pub unclaimed: i64,
    pub sites: Vec<Row>,
    pub names: Names,
}

fn row(key: Option<String>, cases: &[&ReportCase], at: i64) -> Row {
    let f = Summary::of(cases.iter().copied(), at);
    let mut claim: Vec<f64> =
        cases.iter().filter_map(|r| Some((r.case.claimed_at? - r.case.opened_at) as f64 / 60_000.0)).collect();
    claim.sort_by(f64::total_cmp);
    let mut outcomes = BTreeMap::new();
    for r in cases {
        let k = match (r.case.state, r.case.outcome) {
            (crate::domain::CaseState::Resolved, Some(o)) => o.as_str(),
            (crate::domain::CaseState::Resolved, None) => "resolved",
            _ => "open",
        };
        *outcomes.entry(k.to_string()).or_default() += 1;
    }
    Row {
        key,
        cases: cases.len() as i64,
        claimed: claim.len() as i64,
        median_claim_minutes: percentile(&claim, 0.5),
        median_response_minutes: f.median_response_minutes,
        within_sla_share: f.within_sla_share,
        with_clock: f.with_clock,
        outcomes,
    }
}

/// Figures from the cases opened in the range: pure. `at` is when unanswered clocks are judged.
pub fn compute(
    from: NaiveDate,
    to: NaiveDate,
    timezone: &str,
    cases: &[ReportCase],
    at: i64,
    names: Names,
) -> Performance {
    let mut by_agent: BTreeMap<&str, Vec<&ReportCase>> = BTreeMap::new();
    let mut by_site: BTreeMap<Option<&str>, Vec<&ReportCase>> = BTreeMap::new();
    for r in cases {
        if let Some(o) = &r.case.owner {
            by_agent.entry(o).or_default().push(r);
        }
        by_site.entry(r.case.site.as_deref()).or_default().push(r);
    }
    let mut agents: Vec<Row> = by_agent.into_iter().map(|(k, v)| row(Some(k.to_string()), &v, at)).collect();
    agents.sort_by(|a, b| b.cases.cmp(&a.cases).then(a.key.cmp(&b.key)));
    let mut sites: Vec<Row> = by_site.into_iter().map(|(k, v)| row(k.map(String::from), &v, at)).collect();
    sites.sort_by(|a, b| b.cases.cmp(&a.cases).then(a.key.cmp(&b.key)));
    let unclaimed = cases.iter().filter(|r| r.case.owner.is_none()).count() as i64;
    Performance { from, to, timezone: timezone.to_string(), agents, unclaimed, sites, names }
}

pub async fn gather(ctx: &Ctx, from: NaiveDate, to: NaiveDate) -> anyhow::Result<Performance> {
    let playbooks = ctx.playbooks();
    let tz = playbooks.team.timezone;
    let (start, _) = day_bounds(tz, from);
    let (_, end) = day_bounds(tz, to);
    let cases = ctx.store.cases_opened_between(start, end, false).await?;
    Ok(compute(from, to, tz.name(), &cases, end.min(ctx.now_ms()), Names::from_playbooks(&playbooks)))
}

fn outcomes(m: &BTreeMap<String, i64>) -> String {
    m.iter().map(|(k, n)| format!("{} {n}", k.replace('_', " "))).collect::<Vec<_>>().join(", ")
}

impl Performance {
    pub fn to_text(&self) -> String {
        let mut o = format!(
            "Performance for cases opened {} to {} ({})\n",
            self.from.format("%a %-d %b %Y"),
            self.to.format("%a %-d %b %Y"),
            self.timezone
        );
        o.push_str("By agent (the case's owner):\n");
        if self.agents.is_empty() {
            o.push_str("  no claimed cases\n");
        }
        for r in &self.agents {
            o.push_str(&format!(
                "  {}: {} case{}; median to claim {}, to first response {}; within SLA {}; {}\n",
                self.names.person(r.key.as_deref().unwrap_or("")),
                r.cases,
                if r.cases == 1 { "" } else { "s" },
                fmt_minutes(r.median_claim_minutes),
                fmt_minutes(r.median_response_minutes),
                fmt_share(r.within_sla_share),
                outcomes(&r.outcomes),
            ));
        }
        if self.unclaimed > 0 {
            o.push_str(&format!(
                "  nobody (unclaimed): {} case{}\n",
                self.unclaimed,
                if self.unclaimed == 1 { "" } else { "s" }
            ));
        }
        o.push_str("By site:\n");
        if self.sites.is_empty() {
            o.push_str("  no cases\n");
        }
        for r in &self.sites {
            o.push_str(&format!(
                "  {}: {} case{}, {} claimed; median to claim {}, to first response {}; within SLA {}; {}\n",
                self.names.site(r.key.as_deref()),
                r.cases,
                if r.cases == 1 { "" } else { "s" },
                r.claimed,
                fmt_minutes(r.median_claim_minutes),
                fmt_minutes(r.median_response_minutes),
                fmt_share(r.within_sla_share),
                outcomes(&r.outcomes),
            ));
        }
        o
    }

    pub fn to_csv(&self) -> anyhow::Result<String> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record([
            "from",
            "to",
            "by",
            "name",
            "cases",
            "claimed",
            "median_claim_minutes",
            "median_first_response_minutes",
            "within_sla_share",
            "outcomes",
        ])?;
        let opt = |v: Option<f64>| v.map(|x| format!("{x:.1}")).unwrap_or_default();
        for (by, rows) in [("agent", &self.agents), ("site", &self.sites)] {
            for r in rows {
                let name = match by {
                    "agent" => self.names.person(r.key.as_deref().unwrap_or("")),
                    _ => self.names.site(r.key.as_deref()),
                };
                w.write_record([
                    self.from.to_string().as_str(),
                    &self.to.to_string(),
                    by,
                    name,
                    &r.cases.to_string(),
                    &r.claimed.to_string(),
                    &opt(r.median_claim_minutes),
                    &opt(r.median_response_minutes),
                    &r.within_sla_share.map(|s| format!("{s:.3}")).unwrap_or_default(),
                    &outcomes(&r.outcomes),
                ])?;
            }
        }
        Ok(String::from_utf8(w.into_inner()?)?)
    }
}
