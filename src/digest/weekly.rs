//! The weekly PX report: complaint themes per site from the complaints only (never praise),
//! each with the phrases people actually wrote and short excerpts, the material for staff
//! tip sheets; and a staff-recognition section from the week's praise.

use super::{day_bounds, excerpt, mask_staff_names, Names};
use crate::ctx::Ctx;
use crate::playbook::team::Team;
use crate::playbook::text::tokens;
use crate::playbook::Sentiment;
use crate::store::reports::ReportCase;
use chrono::{Duration, NaiveDate};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One complaint theme at one site over the week.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Theme {
    /// Team-file site id; None for complaints that named no site.
    pub site: Option<String>,
    /// Triage category id.
    pub category: String,
    pub count: i64,
    /// Two- and three-word phrases written in at least two of the theme's complaints, with
    /// in how many, most frequent first.
    pub phrases: Vec<(String, i64)>,
    /// Up to two short excerpts: the sentence that put the complaint in this theme.
    pub excerpts: Vec<String>,
}

/// Praise naming someone on team.yaml's recognition list.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Recognition {
    pub name: String,
    pub count: i64,
    pub excerpt: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WeeklyReport {
    pub week_ending: NaiveDate,
    pub mentions: i64,
    pub complaints: i64,
    pub praise: i64,
    pub themes: Vec<Theme>,
    pub recognition: Vec<Recognition>,
    /// Praise that named no one on the recognition list.
    pub praise_unnamed: i64,
    pub names: Names,
}

const STOP: &[&str] = &[
    "a", "an", "the", "and", "or", "but", "to", "of", "in", "on", "at", "for", "with", "my", "our", "your", "we", "i",
    "me", "it", "is", "was", "were", "be", "been", "are", "this", "that", "they", "them", "their", "he", "she", "his",
    "her", "you", "so", "as", "by", "from", "had", "have", "has", "there", "then", "than", "just", "very", "not", "no",
    "if", "when", "who", "what", "all", "about", "after", "up", "out", "do", "did", "get", "got", "us", "de", "la",
    "el", "en", "y", "que", "los", "las", "por", "con", "una", "un",
];

/// Distinct 2- and 3-word phrases of a text that neither start nor end with a filler word
/// and do not cross a sentence break.
fn phrases(text: &str) -> BTreeSet<String> {
    let t = tokens(text);
    let mut out = BTreeSet::new();
    for n in [2, 3] {
        for w in t.windows(n) {
            if w[1..].iter().any(|x| x.after_break) {
                continue;
            }
            let (first, last) = (&w[0].norm, &w[n - 1].norm);
            if STOP.contains(&first.as_str()) || STOP.contains(&last.as_str()) || w.iter().any(|x| x.norm.len() < 2) {
                continue;
            }
            out.insert(w.iter().map(|x| x.norm.as_str()).collect::<Vec<_>>().join(" "));
        }
    }
    out
}

/// The sentence of `text` that holds `matched` (or the start of the text), shortened, with
/// handles masked: excerpts carry what was said, never who said it.
fn sentence_with(text: &str, matched: &str) -> String {
    let lower = text.to_lowercase();
    let at = lower.find(&matched.to_lowercase()).unwrap_or(0);
    let start = text[..at].rfind(['.', '!', '?', '\n']).map_or(0, |i| i + 1);
    let end = text[at..].find(['.', '!', '?', '\n']).map_or(text.len(), |i| at + i + 1);
    let masked: Vec<String> = text[start..end]
        .split_whitespace()
        .map(|w| if w.starts_with('@') && w.len() > 1 { "@…".to_string() } else { w.to_string() })
        .collect();
    excerpt(&masked.join(" "), 140)
}

/// A complaint: not praise, not spam, not positive.
fn is_complaint(r: &ReportCase) -> bool {
    !r.case.positive && !r.case.spam && r.case.sentiment != Sentiment::Positive
}

/// The report from a week's cases (with text): pure.
pub fn compute(
    week_ending: NaiveDate,
    cases: &[ReportCase],
    praise_rules: &[String],
    team: &Team,
    names: Names,
) -> WeeklyReport {
    type Acc<'a> = (i64, BTreeMap<String, i64>, Vec<String>);
    let mut map: BTreeMap<(Option<String>, String), Acc> = BTreeMap::new();
    let complaints: Vec<&ReportCase> = cases.iter().filter(|r| is_complaint(r)).collect();
    // Newest first, so the excerpts are the latest words.
    for r in complaints.iter().rev() {
        let text = r.text.as_deref().unwrap_or("");
        let mine = phrases(text);
        for cat in r.case.categories.iter().filter(|c| !praise_rules.contains(c)) {
            let e = map.entry((r.case.site.clone(), cat.clone())).or_default();
            e.0 += 1;
            for p in &mine {
                *e.1.entry(p.clone()).or_default() += 1;
            }
            let matched =
                r.case.reasons.iter().find(|x| x.kind == "category" && &x.rule == cat).map(|x| x.matched.as_str());
            if e.2.len() < 2 && !r.case.confidential && !text.is_empty() {
                let said = sentence_with(text, matched.unwrap_or(""));
                e.2.push(mask_staff_names(&said, team, r.case.site.as_deref()));
            }
        }
    }
    let mut themes: Vec<Theme> = map
        .into_iter()
        .map(|((site, category), (count, ps, excerpts))| {
            let mut p: Vec<(String, i64)> = ps.into_iter().filter(|(_, n)| *n >= 2).collect();
            p.sort_by(|a, b| {
                b.1.cmp(&a.1).then(b.0.split(' ').count().cmp(&a.0.split(' ').count())).then(a.0.cmp(&b.0))
            });
            // A three-word phrase already says what its two-word parts do.
            let mut kept: Vec<(String, i64)> = Vec::new();
            for (phrase, n) in p {
                if !kept.iter().any(|(k, m)| *m == n && k.contains(&phrase)) {
                    kept.push((phrase, n));
                }
            }
            kept.truncate(3);
            Theme { site, category, count, phrases: kept, excerpts }
        })
        .collect();
    let site_name = |s: &Option<String>| names.site(s.as_deref()).to_string();
    themes.sort_by(|a, b| {
        site_name(&a.site).cmp(&site_name(&b.site)).then(b.count.cmp(&a.count)).then(a.category.cmp(&b.category))
    });

    let praise: Vec<&ReportCase> = cases.iter().filter(|r| r.case.positive && !r.case.confidential).collect();
    let mut recognition: Vec<Recognition> = Vec::new();
    let mut unnamed = 0;
    for r in &praise {
        let text = r.text.as_deref().unwrap_or("");
        let named = team.praised_in(text, r.case.site.as_deref());
        unnamed += i64::from(named.is_empty());
        for name in named {
            match recognition.iter_mut().find(|x| x.name == name) {
                Some(x) => x.count += 1,
                None => recognition.push(Recognition {
                    name: name.to_string(),
                    count: 1,
                    excerpt: excerpt(&mask_staff_names(text, team, r.case.site.as_deref()), 140),
                }),
            }
        }
    }
    recognition.sort_by(|a, b| b.count.cmp(&a.count).then(a.name.cmp(&b.name)));
    WeeklyReport {
        week_ending,
        mentions: cases.len() as i64,
        complaints: complaints.len() as i64,
        praise: praise.len() as i64,
        themes,
        recognition,
        praise_unnamed: unnamed,
        names,
    }
}

pub async fn gather_weekly(ctx: &Ctx, week_ending: NaiveDate) -> anyhow::Result<WeeklyReport> {
    let playbooks = ctx.playbooks();
    let tz = playbooks.team.timezone;
    let (start, _) = day_bounds(tz, week_ending - Duration::days(6));
    let (_, end) = day_bounds(tz, week_ending);
    let cases = ctx.store.cases_opened_between(start, end, true).await?;
    let praise: Vec<String> = playbooks.triage_rules.rules.iter().filter(|r| r.praise).map(|r| r.id.clone()).collect();
    Ok(compute(week_ending, &cases, &praise, &playbooks.team, Names::from_playbooks(&playbooks)))
}

impl WeeklyReport {
    pub fn to_text(&self) -> String {
        let other = self.mentions - self.complaints - self.praise;
        let mut o = format!(
            "Weekly PX report, 7 days to {}: {} mentions: {} complaints, {} praise, {other} other (spam, news, questions)\n",
            self.week_ending.format("%a %-d %b %Y"),
            self.mentions,
            self.complaints,
            self.praise
        );
        if self.themes.is_empty() {
            o.push_str("No complaints this week.\n");
        } else {
            o.push_str("Complaint themes by site (for staff tip sheets):\n");
        }
        let mut site: Option<&Option<String>> = None;
        for t in &self.themes {
            if site != Some(&t.site) {
                site = Some(&t.site);
                o.push_str(&format!("{}\n", self.names.site(t.site.as_deref())));
            }
            let phrases: Vec<String> = t.phrases.iter().map(|(p, n)| format!("\"{p}\" ×{n}")).collect();
            let said =
                if phrases.is_empty() { String::new() } else { format!(" — people wrote {}", phrases.join(", ")) };
            o.push_str(&format!("  {} ×{}{said}\n", self.names.category(&t.category), t.count));
            for e in &t.excerpts {
                o.push_str(&format!("    \"{e}\"\n"));
            }
        }
        if !self.recognition.is_empty() {
            o.push_str("Staff recognition:\n");
            for r in &self.recognition {
                o.push_str(&format!("  {} ×{}: \"{}\"\n", r.name, r.count, r.excerpt));
            }
        }
        if self.praise_unnamed > 0 {
            o.push_str(&format!("Praise naming no one on the recognition list: {}\n", self.praise_unnamed));
        }
        o
    }

    pub fn to_csv(&self) -> anyhow::Result<String> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["week_ending", "section", "site", "name", "count", "phrases", "excerpts"])?;
        let week = self.week_ending.to_string();
        for t in &self.themes {
            let phrases: Vec<String> = t.phrases.iter().map(|(p, n)| format!("{p} ({n})")).collect();
            w.write_record([
                week.as_str(),
                "complaint_theme",
                self.names.site(t.site.as_deref()),
                self.names.category(&t.category),
                &t.count.to_string(),
                &phrases.join("; "),
                &t.excerpts.join(" | "),
            ])?;
        }
        for r in &self.recognition {
            w.write_record([week.as_str(), "recognition", "", &r.name, &r.count.to_string(), "", &r.excerpt])?;
        }
        Ok(String::from_utf8(w.into_inner()?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_keep_content_words_and_stay_inside_a_sentence() {
        let p = phrases("We waited four hours. Front desk staff were rude to my mother");
        assert!(p.contains("waited four hours") && p.contains("front desk staff") && p.contains("front desk"), "{p:?}");
        assert!(!p.contains("hours front"), "no phrase across a sentence break: {p:?}");
        assert!(!p.contains("to my mother") && !p.contains("were rude"), "{p:?}");
    }

    #[test]
    fn an_excerpt_is_the_sentence_that_matched_with_handles_masked() {
        let t = "Great nurses. But @jdoe99 at billing charged us twice! Never again.";
        assert_eq!(sentence_with(t, "charged us twice"), "But @… at billing charged us twice!");
    }
}
