//! Leadership reporting: the daily digest (this file), its four-panel chart (`chart`), the
//! weekly PX report (`weekly`), per-agent and per-site performance (`performance`) and the
//! case export (`export`). Figures are computed by pure functions from rows, so each one is
//! tested by hand-computed values with a fixed clock; `gather*` only fetch the rows.

pub mod chart;
pub mod export;
pub mod performance;
pub mod weekly;

pub use chart::{ChartData, CHART_SIZE};
pub use weekly::{gather_weekly, WeeklyReport};

use crate::ctx::Ctx;
use crate::playbook::team::{local_midnight, Team};
use crate::playbook::{Playbooks, Sentiment};
use crate::store::reports::{CaseBrief, DayGroup, OpenSummary, ReportCase};
use crate::store::{CaseRow, EventRow};
use chrono::{Duration, NaiveDate};
use serde::Serialize;
use std::collections::BTreeMap;

/// Overdue cases the digest text lists (by priority, then oldest).
pub const OVERDUE_SHOWN: usize = 10;
/// Overdue cases listed in the digest's JSON and CSV (the most urgent; the count is of all).
pub const OVERDUE_LISTED: i64 = 100;

/// Display names for the team-file ids reports carry: people, sites and triage categories.
/// An id with no entry shows as itself.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Names {
    pub people: BTreeMap<String, String>,
    pub sites: BTreeMap<String, String>,
    pub categories: BTreeMap<String, String>,
}

impl Names {
    pub fn from_playbooks(p: &Playbooks) -> Names {
        Names {
            people: p.team.people.iter().map(|x| (x.id.clone(), x.name.clone())).collect(),
            sites: p.team.sites.iter().map(|x| (x.id.clone(), x.name.clone())).collect(),
            categories: p.triage_rules.rules.iter().map(|r| (r.id.clone(), r.label.clone())).collect(),
        }
    }
    pub fn person<'a>(&'a self, id: &'a str) -> &'a str {
        self.people.get(id).map_or(id, String::as_str)
    }
    /// A site's name; "no site" for a mention that named none.
    pub fn site<'a>(&'a self, id: Option<&'a str>) -> &'a str {
        match id {
            None => "no site",
            Some(id) => self.sites.get(id).map_or(id, String::as_str),
        }
    }
    pub fn category<'a>(&'a self, id: &'a str) -> &'a str {
        self.categories.get(id).map_or(id, String::as_str)
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CaseLine {
    pub case_id: i64,
    pub priority: String,
    pub situation: String,
    pub site: Option<String>,
    pub state: String,
    pub owner: Option<String>,
    /// When the case was opened (ms): the age a reader sees is counted from it.
    pub opened_at: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Recovery {
    pub case_id: i64,
    pub from: f64,
    pub to: f64,
    /// The rating rose after the team's public reply: a recovery candidate.
    pub after_reply: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ShoutOut {
    pub case_id: i64,
    pub site: Option<String>,
    pub rating: Option<f64>,
    /// Staff and units the review praises, as named in team.yaml `recognition` (only those
    /// listed there are ever named).
    pub praised: Vec<String>,
    pub excerpt: String,
}

/// The figures of one set of mentions (a day, a site's day, a week's agent…).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Summary {
    pub mentions: i64,
    /// Share of the mentions triaged negative.
    pub negative_share: Option<f64>,
    /// Mean star rating over the rated mentions, and how many were rated.
    pub average_rating: Option<f64>,
    pub rated: i64,
    /// Cases that got a first public response, and how long it took (minutes).
    pub responded: i64,
    pub median_response_minutes: Option<f64>,
    pub p90_response_minutes: Option<f64>,
    /// Of the cases with a response clock, the share answered by its due time, and how many
    /// had one. A case with a clock and no response yet counts once its due time has passed.
    pub within_sla_share: Option<f64>,
    pub with_clock: i64,
}

impl Summary {
    /// Figures of `rows`, with SLA judged at `at` (ms): an unanswered case whose due time is
    /// still ahead is not counted yet.
    pub fn of<'a>(rows: impl IntoIterator<Item = &'a ReportCase>, at: i64) -> Summary {
        let (mut s, mut times, mut in_time, mut rating_sum, mut negative) = (Summary::default(), Vec::new(), 0, 0.0, 0);
        for r in rows {
            let c = &r.case;
            s.mentions += 1;
            negative += i64::from(c.sentiment == Sentiment::Negative);
            if let Some(x) = r.rating {
                s.rated += 1;
                rating_sum += x;
            }
            if let Some(first) = c.first_response_at {
                times.push((first - c.opened_at) as f64 / 60_000.0);
            }
            if let Some(due) = c.response_due {
                match c.first_response_at {
                    Some(first) => {
                        s.with_clock += 1;
                        in_time += i64::from(first <= due);
                    }
                    None if due < at => s.with_clock += 1,
                    None => {}
                }
            }
        }
        times.sort_by(f64::total_cmp);
        s.responded = times.len() as i64;
        s.median_response_minutes = percentile(&times, 0.5);
        s.p90_response_minutes = percentile(&times, 0.9);
        s.within_sla_share = share(in_time, s.with_clock);
        s.negative_share = share(negative, s.mentions);
        s.average_rating = (s.rated > 0).then(|| rating_sum / s.rated as f64);
        s
    }
}

pub fn share(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SiteSummary {
    /// Team-file site id; None for mentions that named no site.
    pub site: Option<String>,
    #[serde(flatten)]
    pub figures: Summary,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Digest {
    pub date: NaiveDate,
    pub timezone: String,
    /// The day's headline figures.
    #[serde(flatten)]
    pub figures: Summary,
    /// The same figures for the same weekday a week before: the change a reader sees.
    pub last_week: Summary,
    pub by_source: BTreeMap<String, i64>,
    pub by_site: BTreeMap<String, i64>,
    pub by_category: BTreeMap<String, i64>,
    pub by_sentiment: BTreeMap<String, i64>,
    /// Every team site (with no mentions too), then "no site" if any mention named none.
    pub sites: Vec<SiteSummary>,
    /// Cases open at the end of the day (or now, for today).
    pub open_cases: i64,
    /// Open cases past a due time, all of them.
    pub overdue_count: i64,
    /// The most urgent of those (priority, then age), at most `OVERDUE_LISTED`.
    pub overdue: Vec<CaseLine>,
    /// Risk cases opened that day.
    pub risk: Vec<CaseLine>,
    /// Every clinical/legal-risk case still unresolved, whenever it was opened, oldest
    /// first: a P1 left unclaimed for days is listed every morning until it is closed.
    pub open_risk: Vec<CaseLine>,
    /// The moment open, overdue and ages are measured at (ms): the end of the day, or now.
    pub as_of: i64,
    pub names: Names,
    pub recoveries: Vec<Recovery>,
    pub shout_outs: Vec<ShoutOut>,
    /// Mentions per local day, the seven days ending on `date`.
    pub trend: Vec<(NaiveDate, i64)>,
    /// Snoozes that day: a snooze pauses nudges, never a due time, so leaders see them.
    pub snoozes: Vec<Snooze>,
    /// What the four-panel chart draws (the 30 days ending on `date`).
    pub chart: ChartData,
    /// Replies carebot published in the 30 days ending on `date`, and how many of them a
    /// reviewer answered by raising the rating (by the end of `date`).
    pub published: PublishedFigures,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct PublishedFigures {
    pub replies: i64,
    /// Per platform id.
    pub by_platform: BTreeMap<String, i64>,
    /// Replies after which the reviewer raised the rating: recoveries per published reply.
    pub recovered: i64,
}

impl PublishedFigures {
    /// From the `published` events of the window and the `revised` events since. A case
    /// counts once (a reply changed, taken down and posted again is one answered case).
    pub fn of(published: &[EventRow], revisions: &[EventRow]) -> PublishedFigures {
        let mut f = PublishedFigures::default();
        let mut cases = std::collections::BTreeMap::new();
        for e in published.iter().filter(|e| e.detail["private"] != true) {
            cases.entry(e.case_id).or_insert(e);
        }
        f.replies = cases.len() as i64;
        for e in cases.values() {
            let platform = e.detail["platform"].as_str().unwrap_or("other").to_string();
            *f.by_platform.entry(platform).or_default() += 1;
        }
        let ids: std::collections::BTreeSet<i64> =
            published.iter().filter(|e| cases.contains_key(&e.case_id)).map(|e| e.id).collect();
        let recovered: std::collections::BTreeSet<i64> = revisions
            .iter()
            .filter(|e| e.detail["recovery"] == true)
            .filter(|e| e.detail["published_reply"].as_i64().is_some_and(|id| ids.contains(&id)))
            .map(|e| e.case_id)
            .collect();
        f.recovered = recovered.len() as i64;
        f
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Snooze {
    pub case_id: i64,
    /// Who snoozed (team-file id; the text shows the name).
    pub by: String,
    /// Until when (ms).
    pub until: i64,
}

fn line(c: &CaseRow) -> CaseLine {
    CaseLine {
        case_id: c.id,
        priority: c.priority.as_str().to_string(),
        situation: c.situation.clone(),
        site: c.site.clone(),
        state: c.state.to_string(),
        owner: c.owner.clone(),
        opened_at: c.opened_at,
    }
}

fn brief_line(c: &CaseBrief) -> CaseLine {
    CaseLine {
        case_id: c.id,
        priority: c.priority.clone(),
        situation: c.situation.clone(),
        site: c.site.clone(),
        state: c.state.clone(),
        owner: c.owner.clone(),
        opened_at: c.opened_at,
    }
}

/// The value below which `q` of the sorted values fall (nearest rank).
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

pub(crate) fn excerpt(text: &str, max: usize) -> String {
    let t: String = text.chars().take(max).collect();
    if text.chars().count() > max {
        format!("{}…", t.trim_end())
    } else {
        t
    }
}

/// Words that put a staff member's name after them ("Nurse Kelly", "Dr. Patel").
const TITLES: &[&str] = &[
    "nurse",
    "dr",
    "doctor",
    "receptionist",
    "np",
    "pa",
    "therapist",
    "tech",
    "technician",
    "midwife",
    "physician",
    "surgeon",
    "pharmacist",
    "dra",
    "doctora",
    "enfermera",
    "enfermero",
    "paramedic",
    "aide",
];

/// `text` with the name of any staff member not on team.yaml's recognition list replaced
/// by "[name]": reports quote reviews, and only people who agreed are named.
pub fn mask_staff_names(text: &str, team: &Team, site: Option<&str>) -> String {
    let words: Vec<&str> = text.split(' ').collect();
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    for (i, w) in words.iter().enumerate() {
        let prev = if i == 0 { "" } else { words[i - 1] };
        let title = prev.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
        let name = w.trim_matches(|c: char| !c.is_alphanumeric());
        let looks_like_name = name.chars().next().is_some_and(char::is_uppercase) && name.chars().count() > 1;
        if TITLES.contains(&title.as_str()) && looks_like_name && !team.may_name(name, site) {
            out.push(w.replacen(name, "[name]", 1));
            continue;
        }
        out.push(w.to_string());
    }
    out.join(" ")
}

/// What one local day's digest is computed from.
pub struct DayRows<'a> {
    pub date: NaiveDate,
    pub timezone: chrono_tz::Tz,
    /// Cases opened that day, with text (for shout-outs).
    pub day: &'a [ReportCase],
    /// Cases opened the same weekday a week before.
    pub last_week: &'a [ReportCase],
    /// Cases opened in the 30 days ending on `date`, summed up per day, site and sentiment
    /// (the chart; the 7-day trend).
    pub month: &'a [DayGroup],
    /// The cases open at `as_of`, summed up (ages bucketed by `chart::AGES`).
    pub open: &'a OpenSummary,
    /// Whether `as_of` is now (the live case states apply) rather than a past day's end.
    pub live: bool,
    pub revisions: &'a [EventRow],
    pub snoozes: &'a [EventRow],
    /// Replies carebot published in the 30 days ending on `date`, and the revisions since.
    pub published: &'a [EventRow],
    pub month_revisions: &'a [EventRow],
    pub as_of: i64,
}

/// Figures for one day from its rows: pure, so the arithmetic is tested without a database.
pub fn compute(rows: &DayRows<'_>, team: &Team, names: Names) -> Digest {
    let (start, end) = day_bounds(rows.timezone, rows.date);
    let (_, last_week_end) = day_bounds(rows.timezone, rows.date - Duration::days(7));
    let mut d = Digest {
        date: rows.date,
        timezone: rows.timezone.name().to_string(),
        figures: Summary::of(rows.day, rows.as_of.min(end)),
        last_week: Summary::of(rows.last_week, last_week_end),
        by_source: BTreeMap::new(),
        by_site: BTreeMap::new(),
        by_category: BTreeMap::new(),
        by_sentiment: BTreeMap::new(),
        sites: Vec::new(),
        open_cases: rows.open.count,
        overdue_count: rows.open.overdue_count,
        overdue: rows.open.overdue.iter().map(brief_line).collect(),
        risk: Vec::new(),
        // Oldest first.
        open_risk: rows.open.risk.iter().map(brief_line).collect(),
        as_of: rows.as_of,
        names,
        recoveries: Vec::new(),
        shout_outs: Vec::new(),
        trend: Vec::new(),
        snoozes: rows
            .snoozes
            .iter()
            .filter_map(|e| {
                Some(Snooze { case_id: e.case_id, by: e.actor.clone(), until: e.detail.get("until")?.as_i64()? })
            })
            .collect(),
        chart: ChartData::default(),
        published: PublishedFigures::of(rows.published, rows.month_revisions),
    };
    for r in rows.day {
        let c = &r.case;
        *d.by_source.entry(r.source.clone()).or_default() += 1;
        *d.by_site.entry(c.site.clone().unwrap_or_else(|| "(none)".into())).or_default() += 1;
        for cat in &c.categories {
            *d.by_category.entry(cat.clone()).or_default() += 1;
        }
        *d.by_sentiment.entry(c.sentiment.as_str().to_string()).or_default() += 1;
        if c.risk {
            d.risk.push(line(c));
        }
    }
    let mut site_ids: Vec<Option<String>> = team.sites.iter().map(|s| Some(s.id.clone())).collect();
    if rows.day.iter().any(|r| r.case.site.is_none()) {
        site_ids.push(None);
    }
    for r in rows.day {
        if !site_ids.contains(&r.case.site) {
            site_ids.push(r.case.site.clone());
        }
    }
    d.sites = site_ids
        .into_iter()
        .map(|site| {
            let figures = Summary::of(rows.day.iter().filter(|r| r.case.site == site), rows.as_of.min(end));
            SiteSummary { site, figures }
        })
        .collect();
    for e in rows.revisions {
        let from = e.detail.get("old_rating").and_then(|v| v.as_f64());
        let to = e.detail.get("new_rating").and_then(|v| v.as_f64());
        if let (Some(from), Some(to)) = (from, to) {
            if to > from {
                let after_reply = e.detail.get("after_reply").and_then(|v| v.as_bool()).unwrap_or(false);
                d.recoveries.push(Recovery { case_id: e.case_id, from, to, after_reply });
            }
        }
    }
    let mut praise: Vec<&ReportCase> = rows.day.iter().filter(|r| r.case.positive && !r.case.confidential).collect();
    praise.sort_by(|a, b| {
        let key = |r: &ReportCase| (r.rating.unwrap_or(0.0), r.case.sentiment_score);
        key(b).partial_cmp(&key(a)).unwrap_or(std::cmp::Ordering::Equal).then(a.case.id.cmp(&b.case.id))
    });
    d.shout_outs = praise
        .into_iter()
        .filter_map(|r| {
            let text = r.text.as_deref()?;
            Some(ShoutOut {
                case_id: r.case.id,
                site: r.case.site.clone(),
                rating: r.rating,
                praised: team.praised_in(text, r.case.site.as_deref()).into_iter().map(String::from).collect(),
                excerpt: excerpt(&mask_staff_names(text, team, r.case.site.as_deref()), 200),
            })
        })
        .take(3)
        .collect();
    d.chart = chart::data(rows, team, &d.names, start);
    d.trend = d.chart.days.iter().rev().take(7).rev().map(|x| (x.date, x.negative + x.neutral + x.positive)).collect();
    d
}

/// [start, end) of a local day in ms.
pub fn day_bounds(tz: chrono_tz::Tz, date: NaiveDate) -> (i64, i64) {
    let start = local_midnight(tz, date).timestamp_millis();
    let end = local_midnight(tz, date + Duration::days(1)).timestamp_millis();
    (start, end)
}

/// Gathers the digest for a local day of the team's time zone.
pub async fn gather(ctx: &Ctx, date: NaiveDate) -> anyhow::Result<Digest> {
    let playbooks = ctx.playbooks();
    let tz = playbooks.team.timezone;
    let (start, end) = day_bounds(tz, date);
    let (lw_start, lw_end) = day_bounds(tz, date - Duration::days(7));
    let (month_start, _) = day_bounds(tz, date - Duration::days(chart::DAYS - 1));
    let now = ctx.now_ms();
    let live = end > now;
    let as_of = end.min(now);
    let day = ctx.store.cases_opened_between(start, end, true).await?;
    let last_week = ctx.store.cases_opened_between(lw_start, lw_end, false).await?;
    let day_starts: Vec<i64> = (0..=chart::DAYS)
        .map(|i| day_bounds(tz, date - Duration::days(chart::DAYS - 1) + Duration::days(i)).0)
        .collect();
    let month = ctx.store.day_groups(&day_starts, as_of.min(end)).await?;
    let open = ctx.store.open_summary(as_of, live, &chart::age_bounds_ms(), OVERDUE_LISTED).await?;
    let revisions = ctx.store.events_between("revised", start, end).await?;
    let snoozes = ctx.store.events_between("snooze", start, end).await?;
    let published = ctx.store.events_between("published", month_start, end).await?;
    let month_revisions = ctx.store.events_between("revised", month_start, end).await?;
    let rows = DayRows {
        date,
        timezone: tz,
        day: &day,
        last_week: &last_week,
        month: &month,
        open: &open,
        live,
        revisions: &revisions,
        snoozes: &snoozes,
        published: &published,
        month_revisions: &month_revisions,
        as_of,
    };
    Ok(compute(&rows, &playbooks.team, Names::from_playbooks(&playbooks)))
}

pub(crate) fn fmt_minutes(m: Option<f64>) -> String {
    match m {
        None => "-".into(),
        Some(m) if m < 120.0 => format!("{m:.0} min"),
        Some(m) => format!("{:.1} h", m / 60.0),
    }
}

pub(crate) fn fmt_share(s: Option<f64>) -> String {
    s.map(|s| format!("{:.0}%", s * 100.0)).unwrap_or_else(|| "-".into())
}

fn counts(map: &BTreeMap<String, i64>, name: impl Fn(&str) -> String) -> String {
    if map.is_empty() {
        return "none".into();
    }
    let mut v: Vec<(&String, &i64)> = map.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter().map(|(k, n)| format!("{} {n}", name(k))).collect::<Vec<_>>().join(", ")
}

/// An age as a person reads it: "45 min", "7 h", "2 d 3 h".
pub(crate) fn age(ms: i64) -> String {
    let minutes = ms.max(0) / 60_000;
    match (minutes / 1440, (minutes % 1440) / 60) {
        (0, 0) => format!("{minutes} min"),
        (0, h) => format!("{h} h"),
        (d, 0) => format!("{d} d"),
        (d, h) => format!("{d} d {h} h"),
    }
}

/// "+2", "−1", "no change".
fn delta_count(now: i64, then: i64) -> String {
    match now - then {
        0 => "no change".into(),
        d if d > 0 => format!("+{d}"),
        d => format!("−{}", -d),
    }
}

/// A share's change in percentage points: "+12 pts", or nothing to compare.
fn delta_share(now: Option<f64>, then: Option<f64>) -> Option<String> {
    let d = ((now? - then?) * 100.0).round() as i64;
    Some(match d {
        0 => "no change".into(),
        d if d > 0 => format!("+{d} pts"),
        d => format!("−{} pts", -d),
    })
}

/// "67% of 3": the share of response clocks met and how many counted.
fn sla_of(f: &Summary) -> String {
    match f.within_sla_share {
        None => "-".into(),
        Some(_) => format!("{} of {}", fmt_share(f.within_sla_share), f.with_clock),
    }
}

fn rating(r: Option<f64>) -> String {
    r.map(|r| format!("{r:.1}★")).unwrap_or_else(|| "no ratings".into())
}

impl Digest {
    fn name<'a>(&'a self, id: &'a str) -> &'a str {
        self.names.person(id)
    }

    pub fn to_text(&self) -> String {
        let f = &self.figures;
        let lw = &self.last_week;
        // The same weekday a week before: "last Mon 16 Nov".
        let before = format!("last {}", (self.date - Duration::days(7)).format("%a %-d %b"));
        let mut o = format!("Daily digest for {} ({})\n", self.date.format("%a %-d %b %Y"), self.timezone);
        o.push_str(&format!(
            "Mentions: {} ({before}: {}, {})\n",
            f.mentions,
            lw.mentions,
            delta_count(f.mentions, lw.mentions)
        ));
        let neg = match delta_share(f.negative_share, lw.negative_share) {
            Some(d) => format!("{} ({before}: {}, {d})", fmt_share(f.negative_share), fmt_share(lw.negative_share)),
            None => fmt_share(f.negative_share),
        };
        o.push_str(&format!("  negative: {neg}; average rating {}\n", rating(f.average_rating)));
        o.push_str(&format!("  by source: {}\n", counts(&self.by_source, |k| k.to_string())));
        o.push_str(&format!("  by category: {}\n", counts(&self.by_category, |k| self.names.category(k).to_string())));
        o.push_str(&format!("  by sentiment: {}\n", counts(&self.by_sentiment, |k| k.to_string())));
        let sla = match delta_share(f.within_sla_share, lw.within_sla_share) {
            Some(d) => format!("{} ({before}: {}, {d})", sla_of(f), fmt_share(lw.within_sla_share)),
            None => sla_of(f),
        };
        o.push_str(&format!(
            "First public response: {} responded; median {} ({before}: {}), p90 {}; within SLA {sla}\n",
            f.responded,
            fmt_minutes(f.median_response_minutes),
            fmt_minutes(lw.median_response_minutes),
            fmt_minutes(f.p90_response_minutes),
        ));
        o.push_str("By site:\n");
        for s in &self.sites {
            let x = &s.figures;
            if x.mentions == 0 {
                o.push_str(&format!("  {}: no mentions\n", self.names.site(s.site.as_deref())));
                continue;
            }
            o.push_str(&format!(
                "  {}: {} mention{}, {} negative, {}; first response median {}, p90 {}; within SLA {}\n",
                self.names.site(s.site.as_deref()),
                x.mentions,
                if x.mentions == 1 { "" } else { "s" },
                fmt_share(x.negative_share),
                rating(x.average_rating),
                fmt_minutes(x.median_response_minutes),
                fmt_minutes(x.p90_response_minutes),
                sla_of(x),
            ));
        }
        o.push_str(&format!("Open cases: {}; overdue: {}\n", self.open_cases, self.overdue_count));
        // The most urgent first, and only a screenful: the JSON and CSV list the 100 most
        // urgent, `carebot cases --overdue` all of them.
        let mut overdue: Vec<&CaseLine> = self.overdue.iter().collect();
        overdue.sort_by(|a, b| {
            a.priority.cmp(&b.priority).then(a.opened_at.cmp(&b.opened_at)).then(a.case_id.cmp(&b.case_id))
        });
        if self.overdue_count > OVERDUE_SHOWN as i64 {
            o.push_str(&format!("  the {OVERDUE_SHOWN} most urgent (all: carebot cases --overdue):\n"));
        }
        for c in overdue.into_iter().take(OVERDUE_SHOWN) {
            o.push_str(&format!(
                "  #{} {} {} {} — open {} — {}\n",
                c.case_id,
                c.priority.to_uppercase(),
                c.situation,
                self.names.site(c.site.as_deref()),
                age(self.as_of - c.opened_at),
                c.owner.as_deref().map_or("unclaimed", |x| self.name(x))
            ));
        }
        if !self.snoozes.is_empty() {
            // Snoozes pause nudges only; the cases above are overdue whether snoozed or not.
            let tz: chrono_tz::Tz = self.timezone.parse().unwrap_or(chrono_tz::UTC);
            o.push_str(&format!("Snoozed (nudges paused; due times unchanged): {}\n", self.snoozes.len()));
            for z in &self.snoozes {
                let until = crate::clock::from_ms(z.until).with_timezone(&tz).format("%a %H:%M");
                o.push_str(&format!("  #{} until {until} by {}\n", z.case_id, self.name(&z.by)));
            }
        }
        o.push_str(&format!(
            "Clinical/legal risk: {} opened this day; {} still open\n",
            self.risk.len(),
            self.open_risk.len()
        ));
        for c in &self.open_risk {
            o.push_str(&format!(
                "  #{} {} {} — open {} — {}\n",
                c.case_id,
                c.priority.to_uppercase(),
                self.names.site(c.site.as_deref()),
                age(self.as_of - c.opened_at),
                c.owner.as_deref().map_or("unclaimed", |o| self.name(o)),
            ));
        }
        let candidates = self.recoveries.iter().filter(|r| r.after_reply).count();
        o.push_str(&format!(
            "Ratings raised: {} ({candidates} recovery candidate(s): raised after our reply)\n",
            self.recoveries.len()
        ));
        for r in &self.recoveries {
            let why = if r.after_reply { " — recovery candidate" } else { "" };
            o.push_str(&format!("  #{}: {}★ → {}★{why}\n", r.case_id, r.from, r.to));
        }
        let p = &self.published;
        if p.replies > 0 {
            let platforms = counts(&p.by_platform, |id| {
                crate::publish::Platform::parse(id).map_or(id.to_string(), |p| p.name().to_string())
            });
            o.push_str(&format!(
                "Replies published by carebot (30 days): {} ({platforms}); rating raised after {} of them ({:.0}%)\n",
                p.replies,
                p.recovered,
                100.0 * p.recovered as f64 / p.replies as f64
            ));
        }
        if !self.shout_outs.is_empty() {
            o.push_str("Shout-outs to share:\n");
        }
        for s in &self.shout_outs {
            let who =
                if s.praised.is_empty() { String::new() } else { format!(" — praises {}", s.praised.join(", ")) };
            let stars = s.rating.map(|r| format!(" {r}★")).unwrap_or_default();
            o.push_str(&format!(
                "  #{} {}{stars}{who}: \"{}\"\n",
                s.case_id,
                self.names.site(s.site.as_deref()),
                s.excerpt
            ));
        }
        let trend: Vec<String> = self.trend.iter().map(|(d, n)| format!("{} {n}", d.format("%a"))).collect();
        o.push_str(&format!("Last 7 days: {}\n", trend.join(", ")));
        o
    }

    /// Flat `section,key,value` rows, for spreadsheets and complaint-tracking tools.
    pub fn to_csv(&self) -> anyhow::Result<String> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["section", "key", "value"])?;
        w.write_record(["date", "", &self.date.to_string()])?;
        let opt = |v: Option<f64>| v.map(|x| format!("{x:.1}")).unwrap_or_default();
        let share = |v: Option<f64>| v.map(|s| format!("{s:.3}")).unwrap_or_default();
        for (section, f) in [("day", &self.figures), ("same_day_last_week", &self.last_week)] {
            w.write_record([section, "mentions", &f.mentions.to_string()])?;
            w.write_record([section, "negative_share", &share(f.negative_share)])?;
            w.write_record([section, "average_rating", &opt(f.average_rating)])?;
            w.write_record([section, "responded", &f.responded.to_string()])?;
            w.write_record([section, "median_response_minutes", &opt(f.median_response_minutes)])?;
            w.write_record([section, "p90_response_minutes", &opt(f.p90_response_minutes)])?;
            w.write_record([section, "within_sla_share", &share(f.within_sla_share)])?;
        }
        for (section, map) in [
            ("source", &self.by_source),
            ("site", &self.by_site),
            ("category", &self.by_category),
            ("sentiment", &self.by_sentiment),
        ] {
            for (k, v) in map {
                let key = match section {
                    "site" if k == "(none)" => self.names.site(None),
                    "site" => self.names.site(Some(k)),
                    "category" => self.names.category(k),
                    _ => k,
                };
                w.write_record([section, key, &v.to_string()])?;
            }
        }
        for s in &self.sites {
            let name = self.names.site(s.site.as_deref());
            let f = &s.figures;
            w.write_record(["site_negative_share", name, &share(f.negative_share)])?;
            w.write_record(["site_average_rating", name, &opt(f.average_rating)])?;
            w.write_record(["site_median_response_minutes", name, &opt(f.median_response_minutes)])?;
            w.write_record(["site_p90_response_minutes", name, &opt(f.p90_response_minutes)])?;
            w.write_record(["site_within_sla_share", name, &share(f.within_sla_share)])?;
        }
        w.write_record(["open", "total", &self.open_cases.to_string()])?;
        w.write_record(["overdue", "total", &self.overdue_count.to_string()])?;
        for c in &self.overdue {
            let owner = c.owner.as_deref().map_or("unclaimed", |o| self.name(o));
            w.write_record(["overdue", &c.case_id.to_string(), owner])?;
        }
        for c in &self.risk {
            w.write_record(["risk", &c.case_id.to_string(), &c.state])?;
        }
        for c in &self.open_risk {
            let owner = c.owner.as_deref().map_or("unclaimed", |o| self.name(o));
            w.write_record(["open_risk", &c.case_id.to_string(), owner])?;
        }
        for r in &self.recoveries {
            let kind = if r.after_reply { "recovery_candidate" } else { "rating_raised" };
            w.write_record([kind, &r.case_id.to_string(), &format!("{}->{}", r.from, r.to)])?;
        }
        for s in &self.shout_outs {
            w.write_record(["shout_out", &s.case_id.to_string(), &s.praised.join("; ")])?;
        }
        for (d, n) in &self.trend {
            w.write_record(["trend", &d.to_string(), &n.to_string()])?;
        }
        Ok(String::from_utf8(w.into_inner()?)?)
    }

    /// The four-panel chart as a PNG of `CHART_SIZE`.
    pub fn chart_png(&self) -> anyhow::Result<Vec<u8>> {
        chart::render(&self.chart)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staff_not_on_the_recognition_list_are_not_named_in_quotes() {
        let team =
            crate::playbook::Playbooks::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks")))
                .unwrap()
                .team;
        let masked = mask_staff_names("Thanks Nurse Kelly and Dr. Patel! Nurse Alicia too.", &team, Some("northgate"));
        assert_eq!(masked, "Thanks Nurse [name] and Dr. [name]! Nurse Alicia too.");
        assert_eq!(mask_staff_names("The nurse was kind", &team, None), "The nurse was kind");
        // Alicia agreed to be named for Northgate only.
        assert_eq!(mask_staff_names("Nurse Alicia", &team, Some("riverside")), "Nurse [name]");
    }
}
