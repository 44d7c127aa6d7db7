//! The daily leadership digest and the weekly PX report: figures for a local day (or the
//! seven days ending on it), rendered as text, JSON or CSV, with a PNG trend chart drawn
//! in-process (plotters, bundled DejaVu Sans font: no system font libraries needed).

use crate::ctx::Ctx;
use crate::playbook::team::local_midnight;
use crate::store::reports::ReportCase;
use chrono::{Duration, NaiveDate};
use serde::Serialize;
use std::collections::BTreeMap;

const FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
pub const CHART_SIZE: (u32, u32) = (800, 400);

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
    pub excerpt: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Digest {
    pub date: NaiveDate,
    pub timezone: String,
    pub mentions: i64,
    pub by_source: BTreeMap<String, i64>,
    pub by_site: BTreeMap<String, i64>,
    pub by_category: BTreeMap<String, i64>,
    pub by_sentiment: BTreeMap<String, i64>,
    /// Cases opened that day that got a first public response.
    pub responded: i64,
    pub median_response_minutes: Option<f64>,
    pub p90_response_minutes: Option<f64>,
    /// Of those with a response clock, the share answered by its due time.
    pub within_sla_share: Option<f64>,
    pub open_cases: i64,
    pub overdue: Vec<CaseLine>,
    /// Risk cases opened that day.
    pub risk: Vec<CaseLine>,
    /// Every clinical/legal-risk case still unresolved, whenever it was opened, oldest
    /// first: a P1 left unclaimed for days is listed every morning until it is closed.
    pub open_risk: Vec<CaseLine>,
    /// The moment ages and overdue are measured at (ms): the end of the day, or now.
    pub as_of: i64,
    /// Display names: team-file person and site ids → names (ids show where none is known).
    pub names: BTreeMap<String, String>,
    pub recoveries: Vec<Recovery>,
    pub shout_outs: Vec<ShoutOut>,
    /// Mentions per local day, the seven days ending on `date`.
    pub trend: Vec<(NaiveDate, i64)>,
    /// Snoozes that day: a snooze pauses nudges, never a due time, so leaders see them.
    pub snoozes: Vec<Snooze>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Snooze {
    pub case_id: i64,
    /// Who snoozed (team-file id; the text shows the name).
    pub by: String,
    /// Until when (ms).
    pub until: i64,
}

fn line(c: &crate::store::CaseRow) -> CaseLine {
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

/// The value below which `q` of the sorted values fall (nearest rank).
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn excerpt(text: &str, max: usize) -> String {
    let t: String = text.chars().take(max).collect();
    if text.chars().count() > max {
        format!("{}…", t.trim_end())
    } else {
        t
    }
}

/// Figures for one day from its rows: pure, so the arithmetic is tested without a database.
pub fn compute(
    date: NaiveDate,
    timezone: &str,
    day: &[ReportCase],
    unresolved: &[crate::store::CaseRow],
    // (rating revisions, snoozes) of the day.
    (revisions, snoozes): (&[crate::store::EventRow], &[crate::store::EventRow]),
    overdue_at: i64,
    trend: Vec<(NaiveDate, i64)>,
) -> Digest {
    let mut d = Digest {
        date,
        timezone: timezone.to_string(),
        mentions: day.len() as i64,
        by_source: BTreeMap::new(),
        by_site: BTreeMap::new(),
        by_category: BTreeMap::new(),
        by_sentiment: BTreeMap::new(),
        responded: 0,
        median_response_minutes: None,
        p90_response_minutes: None,
        within_sla_share: None,
        open_cases: unresolved.len() as i64,
        overdue: unresolved.iter().filter(|c| c.overdue_at(overdue_at)).map(line).collect(),
        risk: Vec::new(),
        open_risk: {
            let mut open: Vec<&crate::store::CaseRow> = unresolved.iter().filter(|c| c.risk).collect();
            open.sort_by_key(|c| (c.opened_at, c.id));
            open.into_iter().map(line).collect()
        },
        as_of: overdue_at,
        names: BTreeMap::new(),
        recoveries: Vec::new(),
        shout_outs: Vec::new(),
        trend,
        snoozes: snoozes
            .iter()
            .filter_map(|e| {
                Some(Snooze { case_id: e.case_id, by: e.actor.clone(), until: e.detail.get("until")?.as_i64()? })
            })
            .collect(),
    };
    let mut times = Vec::new();
    let (mut with_clock, mut in_time) = (0, 0);
    for r in day {
        let c = &r.case;
        *d.by_source.entry(r.source.clone()).or_default() += 1;
        *d.by_site.entry(c.site.clone().unwrap_or_else(|| "(none)".into())).or_default() += 1;
        for cat in &c.categories {
            *d.by_category.entry(cat.clone()).or_default() += 1;
        }
        *d.by_sentiment.entry(c.sentiment.as_str().to_string()).or_default() += 1;
        if let Some(first) = c.first_response_at {
            times.push((first - c.opened_at) as f64 / 60_000.0);
            if let Some(due) = c.response_due {
                with_clock += 1;
                in_time += i64::from(first <= due);
            }
        }
        if c.risk {
            d.risk.push(line(c));
        }
    }
    times.sort_by(f64::total_cmp);
    d.responded = times.len() as i64;
    d.median_response_minutes = percentile(&times, 0.5);
    d.p90_response_minutes = percentile(&times, 0.9);
    d.within_sla_share = (with_clock > 0).then(|| in_time as f64 / with_clock as f64);
    for e in revisions {
        let from = e.detail.get("old_rating").and_then(|v| v.as_f64());
        let to = e.detail.get("new_rating").and_then(|v| v.as_f64());
        if let (Some(from), Some(to)) = (from, to) {
            if to > from {
                let after_reply = e.detail.get("after_reply").and_then(|v| v.as_bool()).unwrap_or(false);
                d.recoveries.push(Recovery { case_id: e.case_id, from, to, after_reply });
            }
        }
    }
    let mut praise: Vec<&ReportCase> = day.iter().filter(|r| r.case.positive && !r.case.confidential).collect();
    praise.sort_by(|a, b| {
        let key = |r: &ReportCase| (r.rating.unwrap_or(0.0), r.case.sentiment_score);
        key(b).partial_cmp(&key(a)).unwrap_or(std::cmp::Ordering::Equal).then(a.case.id.cmp(&b.case.id))
    });
    d.shout_outs = praise
        .into_iter()
        .take(3)
        .filter_map(|r| {
            Some(ShoutOut {
                case_id: r.case.id,
                site: r.case.site.clone(),
                rating: r.rating,
                excerpt: excerpt(r.text.as_deref()?, 200),
            })
        })
        .collect();
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
    let tz = ctx.playbooks().team.timezone;
    let (start, end) = day_bounds(tz, date);
    let day = ctx.store.cases_opened_between(start, end).await?;
    let unresolved = ctx.store.unresolved_cases().await?;
    let revisions = ctx.store.events_between("revised", start, end).await?;
    let snoozes = ctx.store.events_between("snooze", start, end).await?;
    let mut trend = Vec::new();
    for back in (0..7).rev() {
        let d = date - Duration::days(back);
        let (s, e) = day_bounds(tz, d);
        trend.push((d, ctx.store.count_opened_between(s, e).await?));
    }
    let overdue_at = end.min(ctx.now_ms());
    let mut d = compute(date, tz.name(), &day, &unresolved, (&revisions, &snoozes), overdue_at, trend);
    let team = &ctx.playbooks().team;
    d.names.extend(team.people.iter().map(|p| (p.id.clone(), p.name.clone())));
    d.names.extend(team.sites.iter().map(|s| (s.id.clone(), s.name.clone())));
    Ok(d)
}

fn fmt_minutes(m: Option<f64>) -> String {
    match m {
        None => "-".into(),
        Some(m) if m < 120.0 => format!("{m:.0} min"),
        Some(m) => format!("{:.1} h", m / 60.0),
    }
}

fn counts(map: &BTreeMap<String, i64>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    let mut v: Vec<(&String, &i64)> = map.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
}

/// An age as a person reads it: "45 min", "7 h", "2 d 3 h".
fn age(ms: i64) -> String {
    let minutes = ms.max(0) / 60_000;
    match (minutes / 1440, (minutes % 1440) / 60) {
        (0, 0) => format!("{minutes} min"),
        (0, h) => format!("{h} h"),
        (d, 0) => format!("{d} d"),
        (d, h) => format!("{d} d {h} h"),
    }
}

impl Digest {
    /// A person's or site's name for its team-file id.
    fn name<'a>(&'a self, id: &'a str) -> &'a str {
        self.names.get(id).map_or(id, String::as_str)
    }

    pub fn to_text(&self) -> String {
        let mut o = format!("Daily digest for {} ({})\n", self.date, self.timezone);
        o.push_str(&format!("Mentions: {}\n", self.mentions));
        o.push_str(&format!("  by source: {}\n", counts(&self.by_source)));
        o.push_str(&format!("  by site: {}\n", counts(&self.by_site)));
        o.push_str(&format!("  by category: {}\n", counts(&self.by_category)));
        o.push_str(&format!("  by sentiment: {}\n", counts(&self.by_sentiment)));
        o.push_str(&format!(
            "First public response: {} responded; median {}, p90 {}; within SLA {}\n",
            self.responded,
            fmt_minutes(self.median_response_minutes),
            fmt_minutes(self.p90_response_minutes),
            self.within_sla_share.map(|s| format!("{:.0}%", s * 100.0)).unwrap_or_else(|| "-".into())
        ));
        o.push_str(&format!("Open cases: {}; overdue: {}\n", self.open_cases, self.overdue.len()));
        for c in &self.overdue {
            o.push_str(&format!(
                "  #{} {} {} {} — {}\n",
                c.case_id,
                c.priority.to_uppercase(),
                c.situation,
                c.site.as_deref().map_or("-", |x| self.name(x)),
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
                c.site.as_deref().map_or("no site", |s| self.name(s)),
                age(self.as_of - c.opened_at),
                c.owner.as_deref().map_or("unclaimed".to_string(), |o| self.name(o).to_string()),
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
        if !self.shout_outs.is_empty() {
            o.push_str("Shout-outs to share:\n");
        }
        for s in &self.shout_outs {
            o.push_str(&format!("  #{} {}: \"{}\"\n", s.case_id, s.site.as_deref().unwrap_or("-"), s.excerpt));
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
        w.write_record(["mentions", "total", &self.mentions.to_string()])?;
        for (section, map) in [
            ("source", &self.by_source),
            ("site", &self.by_site),
            ("category", &self.by_category),
            ("sentiment", &self.by_sentiment),
        ] {
            for (k, v) in map {
                w.write_record([section, k, &v.to_string()])?;
            }
        }
        let opt = |v: Option<f64>| v.map(|x| format!("{x:.1}")).unwrap_or_default();
        w.write_record(["response", "responded", &self.responded.to_string()])?;
        w.write_record(["response", "median_minutes", &opt(self.median_response_minutes)])?;
        w.write_record(["response", "p90_minutes", &opt(self.p90_response_minutes)])?;
        w.write_record([
            "response",
            "within_sla_share",
            &self.within_sla_share.map(|s| format!("{s:.3}")).unwrap_or_default(),
        ])?;
        w.write_record(["open", "total", &self.open_cases.to_string()])?;
        for c in &self.overdue {
            w.write_record(["overdue", &c.case_id.to_string(), c.owner.as_deref().unwrap_or("")])?;
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
        for (d, n) in &self.trend {
            w.write_record(["trend", &d.to_string(), &n.to_string()])?;
        }
        Ok(String::from_utf8(w.into_inner()?)?)
    }

    /// The 7-day trend as a PNG bar chart.
    pub fn chart_png(&self) -> anyhow::Result<Vec<u8>> {
        use plotters::prelude::*;
        use plotters::style::{register_font, FontStyle};
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
        let (w, h) = CHART_SIZE;
        let mut rgb = vec![0u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| anyhow::anyhow!("chart: {e}"))?;
            let max = self.trend.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
            let mut chart = ChartBuilder::on(&root)
                .caption(format!("Mentions, 7 days to {}", self.date), ("sans-serif", 24))
                .margin(16)
                .x_label_area_size(36)
                .y_label_area_size(48)
                .build_cartesian_2d(0i32..self.trend.len() as i32, 0i64..(max + max / 5 + 1))
                .map_err(|e| anyhow::anyhow!("chart: {e}"))?;
            let labels: Vec<String> = self.trend.iter().map(|(d, _)| d.format("%a %d").to_string()).collect();
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(labels.len())
                .x_label_formatter(&|x| labels.get(*x as usize).cloned().unwrap_or_default())
                .label_style(("sans-serif", 14))
                .draw()
                .map_err(|e| anyhow::anyhow!("chart: {e}"))?;
            chart
                .draw_series(self.trend.iter().enumerate().map(|(i, (_, n))| {
                    let x = i as i32;
                    Rectangle::new([(x, 0), (x + 1, *n)], RGBColor(46, 109, 164).filled())
                }))
                .map_err(|e| anyhow::anyhow!("chart: {e}"))?;
            root.present().map_err(|e| anyhow::anyhow!("chart: {e}"))?;
        }
        let mut png = Vec::new();
        let enc = png_encoder(&mut png, w, h);
        enc.write_header()?.write_image_data(&rgb)?;
        Ok(png)
    }
}

fn png_encoder(out: &mut Vec<u8>, w: u32, h: u32) -> png::Encoder<'_, &mut Vec<u8>> {
    let mut enc = png::Encoder::new(out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc
}

/// One complaint theme at one site over the week, with the words people used most.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Theme {
    pub site: String,
    pub category: String,
    pub count: i64,
    /// The matched rule phrases (not free text), most frequent first.
    pub phrases: Vec<(String, i64)>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WeeklyReport {
    pub week_ending: NaiveDate,
    pub mentions: i64,
    pub themes: Vec<Theme>,
}

/// Themes from a week's cases: pure.
pub fn themes(week_ending: NaiveDate, cases: &[ReportCase], praise: &[String]) -> WeeklyReport {
    let mut map: BTreeMap<(String, String), (i64, BTreeMap<String, i64>)> = BTreeMap::new();
    for r in cases {
        let site = r.case.site.clone().unwrap_or_else(|| "(no site)".into());
        for reason in r.case.reasons.iter().filter(|x| x.kind == "category" && !praise.contains(&x.rule)) {
            let e = map.entry((site.clone(), reason.rule.clone())).or_default();
            e.0 += 1;
            *e.1.entry(reason.matched.to_lowercase()).or_default() += 1;
        }
    }
    let mut themes: Vec<Theme> = map
        .into_iter()
        .map(|((site, category), (count, phrases))| {
            let mut p: Vec<(String, i64)> = phrases.into_iter().collect();
            p.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            p.truncate(3);
            Theme { site, category, count, phrases: p }
        })
        .collect();
    themes.sort_by(|a, b| a.site.cmp(&b.site).then(b.count.cmp(&a.count)).then(a.category.cmp(&b.category)));
    WeeklyReport { week_ending, mentions: cases.len() as i64, themes }
}

pub async fn gather_weekly(ctx: &Ctx, week_ending: NaiveDate) -> anyhow::Result<WeeklyReport> {
    let tz = ctx.playbooks().team.timezone;
    let (start, _) = day_bounds(tz, week_ending - Duration::days(6));
    let (_, end) = day_bounds(tz, week_ending);
    let cases = ctx.store.cases_opened_between(start, end).await?;
    let praise: Vec<String> =
        ctx.playbooks().triage_rules.rules.iter().filter(|r| r.praise).map(|r| r.id.clone()).collect();
    Ok(themes(week_ending, &cases, &praise))
}

impl WeeklyReport {
    pub fn to_text(&self) -> String {
        let mut o = format!(
            "Weekly PX report, 7 days to {} ({} mentions): most common complaint themes\n",
            self.week_ending, self.mentions
        );
        let mut site = "";
        for t in &self.themes {
            if t.site != site {
                site = &t.site;
                o.push_str(&format!("{site}\n"));
            }
            let phrases: Vec<String> = t.phrases.iter().map(|(p, n)| format!("\"{p}\" ×{n}")).collect();
            o.push_str(&format!("  {} ×{}: {}\n", t.category, t.count, phrases.join(", ")));
        }
        if self.themes.is_empty() {
            o.push_str("  no complaints this week\n");
        }
        o
    }

    pub fn to_csv(&self) -> anyhow::Result<String> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["week_ending", "site", "category", "count", "phrases"])?;
        for t in &self.themes {
            let phrases: Vec<String> = t.phrases.iter().map(|(p, n)| format!("{p} ({n})")).collect();
            w.write_record([
                &self.week_ending.to_string(),
                &t.site,
                &t.category,
                &t.count.to_string(),
                &phrases.join("; "),
            ])?;
        }
        Ok(String::from_utf8(w.into_inner()?)?)
    }
}
