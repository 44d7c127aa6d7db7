//! `situations.yaml`: the chat channels, and for each kind of case (clinical risk, on-site
//! now, negative review, shout-out, spam, …) where it goes, its priority, SLA clocks and
//! escalation chain. The first situation whose `when` holds wins; the last must match all.

use super::team::Team;
use super::triage::{Sentiment, TriageResult};
use super::triage_rules::TriageBook;
use super::{parse_yaml, Problems, Report};
use crate::domain::{CaseState, EscalationTarget, Mention, Priority, Span};
use chrono::NaiveTime;
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBook {
    channels: BTreeMap<String, RawChannel>,
    situations: Vec<RawSituation>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    #[serde(default)]
    slack: Option<String>,
    #[serde(default)]
    discord: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSituation {
    id: Spanned<String>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    when: Option<Spanned<RawWhen>>,
    priority: Spanned<String>,
    channel: Spanned<String>,
    #[serde(default)]
    also_post_to: Vec<Spanned<String>>,
    #[serde(default)]
    sla: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    escalation: Vec<RawStep>,
    /// DM the case's owner this long before a due time (e.g. 30m).
    #[serde(default)]
    remind_before: Option<Spanned<String>>,
    /// Where lines about steps people take go: thread (default), channel or none.
    #[serde(default)]
    step_lines: Option<Spanned<String>>,
    /// Whether a storm's "+N similar" refresh also posts a line under the card.
    #[serde(default)]
    storm_lines: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWhen {
    risk: Option<bool>,
    possible_risk: Option<bool>,
    urgent: Option<bool>,
    spam: Option<bool>,
    positive: Option<bool>,
    confidential: Option<bool>,
    sentiment: Option<String>,
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    sites: Vec<String>,
    #[serde(default)]
    sources: Vec<String>,
    max_rating: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    after: Spanned<String>,
    #[serde(default)]
    clock: Option<Spanned<String>>,
    #[serde(rename = "while", default)]
    while_states: Vec<Spanned<String>>,
    notify: Vec<Spanned<String>>,
    #[serde(default)]
    repeat: Option<Spanned<String>>,
    #[serde(default)]
    hours: Option<Spanned<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub name: String,
    pub slack: Option<String>,
    pub discord: Option<String>,
    pub description: Option<String>,
}

/// The four SLA clocks a case runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlaClock {
    Acknowledge,
    FirstResponse,
    FollowUp,
    Resolve,
}

impl SlaClock {
    pub fn parse(s: &str) -> Option<SlaClock> {
        match s {
            "acknowledge" => Some(SlaClock::Acknowledge),
            "first_response" => Some(SlaClock::FirstResponse),
            "follow_up" => Some(SlaClock::FollowUp),
            "resolve" => Some(SlaClock::Resolve),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slas {
    pub acknowledge: Option<Span>,
    pub first_response: Option<Span>,
    pub follow_up: Option<Span>,
    pub resolve: Option<Span>,
}

/// Who an escalation step notifies.
pub type Notify = EscalationTarget;

#[derive(Debug, Clone, PartialEq)]
pub struct EscalationStep {
    /// Counted from this clock's due time; `None` counts from when the case opened.
    pub clock: Option<SlaClock>,
    pub after: Span,
    /// The step applies only while the case is in one of these states.
    pub while_states: Vec<CaseState>,
    pub notify: Vec<Notify>,
    pub repeat: Option<Span>,
    /// Only inside these local hours (site time zone).
    pub hours: Option<(NaiveTime, NaiveTime)>,
}

/// A case's clock times (epoch ms), as the escalation maths needs them.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClockTimes {
    pub opened: i64,
    pub acknowledge: Option<i64>,
    pub first_response: Option<i64>,
    pub follow_up: Option<i64>,
    pub resolve: Option<i64>,
}

impl EscalationStep {
    /// The round of this step due at `at` (0 for the first firing, then one more per
    /// `repeat` interval), or `None` if the step does not apply yet or any more.
    pub fn due_round(&self, state: CaseState, clocks: ClockTimes, at: i64) -> Option<i64> {
        if !self.while_states.contains(&state) {
            return None;
        }
        let start = self.starts_at(clocks)?;
        if at < start {
            return None;
        }
        Some(match self.repeat {
            Some(r) => (at - start) / r.as_millis().max(1),
            None => 0,
        })
    }

    /// When the step's first round falls due (its clock plus `after`), if its clock is set.
    pub fn starts_at(&self, clocks: ClockTimes) -> Option<i64> {
        let base = match self.clock {
            None => Some(clocks.opened),
            Some(SlaClock::Acknowledge) => clocks.acknowledge,
            Some(SlaClock::FirstResponse) => clocks.first_response,
            Some(SlaClock::FollowUp) => clocks.follow_up,
            Some(SlaClock::Resolve) => clocks.resolve,
        }?;
        Some(base + self.after.as_millis())
    }

    /// When `round` falls due, if the step repeats (`None`: there is no such round).
    pub fn round_at(&self, clocks: ClockTimes, round: i64) -> Option<i64> {
        match (self.starts_at(clocks), self.repeat) {
            (Some(start), _) if round == 0 => Some(start),
            (Some(start), Some(r)) => Some(start + round * r.as_millis().max(1)),
            _ => None,
        }
    }

    /// Whether local time `t` is inside the step's hours (always, if it has none).
    pub fn inside_hours(&self, t: NaiveTime) -> bool {
        match self.hours {
            None => true,
            Some((from, to)) if from <= to => from <= t && t < to,
            Some((from, to)) => t >= from || t < to, // an overnight window
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct When {
    pub risk: Option<bool>,
    /// No risk rule matched but the model (or a weaker rule) says it may be risk.
    pub possible_risk: Option<bool>,
    pub urgent: Option<bool>,
    pub spam: Option<bool>,
    pub positive: Option<bool>,
    pub confidential: Option<bool>,
    pub sentiment: Option<Sentiment>,
    pub categories: Vec<String>,
    pub sites: Vec<String>,
    pub sources: Vec<String>,
    pub max_rating: Option<f64>,
}

impl When {
    pub fn matches(&self, t: &TriageResult, m: &Mention) -> bool {
        let flag = |want: Option<bool>, have: bool| want.is_none_or(|w| w == have);
        flag(self.risk, t.risk)
            && flag(self.possible_risk, t.possible_risk)
            && flag(self.urgent, t.urgent)
            && flag(self.spam, t.spam)
            && flag(self.positive, t.positive)
            && flag(self.confidential, m.confidential)
            && self.sentiment.is_none_or(|s| s == t.sentiment)
            && (self.categories.is_empty() || self.categories.iter().any(|c| t.categories.contains(c)))
            && (self.sites.is_empty() || t.site.as_ref().is_some_and(|s| self.sites.contains(s)))
            && (self.sources.is_empty() || self.sources.contains(&m.source))
            && self.max_rating.is_none_or(|max| m.rating.is_some_and(|r| r <= max))
    }
    fn is_catch_all(&self) -> bool {
        *self == When::default()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Situation {
    pub id: String,
    pub label: String,
    pub when: When,
    pub priority: Priority,
    pub channel: String,
    pub also_post_to: Vec<String>,
    pub sla: Slas,
    pub escalation: Vec<EscalationStep>,
    /// DM the owner this long before a due time; `None`: no reminders.
    pub remind_before: Option<Span>,
    pub step_lines: StepLines,
    pub storm_lines: bool,
}

/// Where the line about a step someone took ("claimed by Dena Ortiz") is posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StepLines {
    /// Under the card (a Slack thread, a Discord thread).
    #[default]
    Thread,
    /// In the case's channel, naming the case.
    Channel,
    /// Nowhere: the card alone shows the latest step.
    Off,
}

#[derive(Debug, Clone)]
pub struct SituationBook {
    pub channels: BTreeMap<String, Channel>,
    pub situations: Vec<Situation>,
}

impl SituationBook {
    /// The first situation whose conditions hold; validation guarantees a catch-all last.
    pub fn pick(&self, t: &TriageResult, m: &Mention) -> &Situation {
        self.situations
            .iter()
            .find(|s| s.when.matches(t, m))
            .unwrap_or_else(|| self.situations.last().expect("validated: at least one situation"))
    }
    pub fn get(&self, id: &str) -> Option<&Situation> {
        self.situations.iter().find(|s| s.id == id)
    }
}

fn parse_span(s: &Spanned<String>, rep: &mut Report) -> Option<Span> {
    s.value.parse::<Span>().map_err(|e| rep.at(s.referenced.line(), e)).ok()
}

fn parse_hours(s: &Spanned<String>, rep: &mut Report) -> Option<(NaiveTime, NaiveTime)> {
    let parsed = s.value.split_once('-').and_then(|(a, b)| {
        Some((NaiveTime::parse_from_str(a.trim(), "%H:%M").ok()?, NaiveTime::parse_from_str(b.trim(), "%H:%M").ok()?))
    });
    if parsed.is_none() {
        rep.at(s.referenced.line(), format!("bad hours {:?}; write HH:MM-HH:MM, e.g. 07:00-21:00", s.value));
    }
    parsed
}

pub(crate) fn load(path: &Path, team: &Team, rules: &TriageBook) -> Result<SituationBook, Problems> {
    let raw: RawBook = parse_yaml(path)?;
    let mut rep = Report::new(path);
    let channels: BTreeMap<String, Channel> = raw
        .channels
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                Channel {
                    name: k.clone(),
                    slack: v.slack.clone(),
                    discord: v.discord.clone(),
                    description: v.description.clone(),
                },
            )
        })
        .collect();
    let check_channel = |c: &Spanned<String>, rep: &mut Report| {
        if !channels.contains_key(&c.value) {
            let known: Vec<&str> = channels.keys().map(String::as_str).collect();
            rep.at(
                c.referenced.line(),
                format!("unknown channel {:?}; defined channels: {}", c.value, known.join(", ")),
            );
        }
    };

    let mut seen = HashSet::new();
    let mut situations = Vec::new();
    if raw.situations.is_empty() {
        rep.at(0, "no situations defined");
    }
    for s in &raw.situations {
        let line = s.id.referenced.line();
        if !seen.insert(s.id.value.as_str()) {
            rep.at(line, format!("duplicate situation id {:?}", s.id.value));
        }
        let priority = s.priority.value.parse::<Priority>().unwrap_or_else(|e| {
            rep.at(s.priority.referenced.line(), e);
            Priority::P3
        });
        check_channel(&s.channel, &mut rep);
        for c in &s.also_post_to {
            check_channel(c, &mut rep);
        }

        let mut sla = Slas::default();
        for (k, v) in &s.sla {
            let span = parse_span(v, &mut rep);
            match SlaClock::parse(k) {
                Some(SlaClock::Acknowledge) => sla.acknowledge = span,
                Some(SlaClock::FirstResponse) => sla.first_response = span,
                Some(SlaClock::FollowUp) => sla.follow_up = span,
                Some(SlaClock::Resolve) => sla.resolve = span,
                None => rep.at(
                    v.referenced.line(),
                    format!("unknown SLA clock {k:?}; one of acknowledge, first_response, follow_up, resolve"),
                ),
            }
        }
        // The clocks run from the same opening: a later step due before an earlier one is a slip.
        let sla_line = s.sla.values().next().map(|v| v.referenced.line()).unwrap_or(line);
        let ordered =
            [("acknowledge", sla.acknowledge), ("first_response", sla.first_response), ("resolve", sla.resolve)];
        for (i, (a, da)) in ordered.iter().enumerate() {
            for (b, db) in &ordered[i + 1..] {
                if let (Some(x), Some(y)) = (da, db) {
                    if x.as_millis() > y.as_millis() {
                        rep.at(
                            sla_line,
                            format!("situation {}: sla.{a} ({x}) must not be later than sla.{b} ({y})", s.id.value),
                        );
                    }
                }
            }
        }

        let when = match &s.when {
            None => When::default(),
            Some(w) => {
                let wl = w.referenced.line();
                let v = &w.value;
                let sentiment = v.sentiment.as_deref().and_then(|x| match x {
                    "negative" => Some(Sentiment::Negative),
                    "neutral" => Some(Sentiment::Neutral),
                    "positive" => Some(Sentiment::Positive),
                    other => {
                        rep.at(wl, format!("unknown sentiment {other:?}; one of negative, neutral, positive"));
                        None
                    }
                });
                for c in &v.categories {
                    if rules.category(c).is_none() {
                        rep.at(wl, format!("unknown category {c:?} (not in triage.yaml)"));
                    }
                }
                for site in &v.sites {
                    if team.site(site).is_none() {
                        rep.at(wl, format!("unknown site {site:?} (not in team.yaml)"));
                    }
                }
                When {
                    risk: v.risk,
                    possible_risk: v.possible_risk,
                    urgent: v.urgent,
                    spam: v.spam,
                    positive: v.positive,
                    confidential: v.confidential,
                    sentiment,
                    categories: v.categories.clone(),
                    sites: v.sites.clone(),
                    sources: v.sources.iter().map(|x| x.to_lowercase()).collect(),
                    max_rating: v.max_rating,
                }
            }
        };

        let mut escalation = Vec::new();
        for step in &s.escalation {
            let clock = step.clock.as_ref().and_then(|c| {
                if c.value == "opened" {
                    return None;
                }
                let parsed = SlaClock::parse(&c.value);
                if parsed.is_none() {
                    rep.at(
                        c.referenced.line(),
                        format!(
                            "unknown clock {:?}; one of opened, acknowledge, first_response, follow_up, resolve",
                            c.value
                        ),
                    );
                }
                parsed
            });
            let mut while_states = Vec::new();
            for st in &step.while_states {
                match st.value.parse::<CaseState>() {
                    Ok(x) => while_states.push(x),
                    Err(e) => rep.at(st.referenced.line(), e),
                }
            }
            let mut notify = Vec::new();
            if step.notify.is_empty() {
                rep.at(step.after.referenced.line(), "escalation step notifies nobody");
            }
            for n in &step.notify {
                match n.value.parse::<EscalationTarget>() {
                    Ok(EscalationTarget::OnCall(r)) if team.rotation(&r).is_none() => {
                        rep.at(n.referenced.line(), format!("unknown rotation {r:?} (not in team.yaml)"))
                    }
                    Ok(EscalationTarget::Person(p)) if team.person(&p).is_none() => {
                        rep.at(n.referenced.line(), format!("unknown person {p:?} (not in team.yaml)"))
                    }
                    Ok(t) => notify.push(t),
                    Err(e) => rep.at(n.referenced.line(), e),
                }
            }
            escalation.push(EscalationStep {
                clock,
                after: parse_span(&step.after, &mut rep).unwrap_or(Span::from_secs(1)),
                while_states: if while_states.is_empty() {
                    vec![CaseState::Open, CaseState::Claimed, CaseState::Responded, CaseState::Offline]
                } else {
                    while_states
                },
                notify,
                repeat: step.repeat.as_ref().and_then(|r| parse_span(r, &mut rep)),
                hours: step.hours.as_ref().and_then(|h| parse_hours(h, &mut rep)),
            });
        }

        situations.push(Situation {
            id: s.id.value.clone(),
            label: s.label.clone().unwrap_or_else(|| s.id.value.replace(['-', '_'], " ")),
            when,
            priority,
            channel: s.channel.value.clone(),
            also_post_to: s.also_post_to.iter().map(|c| c.value.clone()).collect(),
            sla,
            escalation,
            remind_before: s.remind_before.as_ref().and_then(|r| parse_span(r, &mut rep)),
            step_lines: match s.step_lines.as_ref().map(|l| (l.value.as_str(), l.referenced.line())) {
                None | Some(("thread", _)) => StepLines::Thread,
                Some(("channel", _)) => StepLines::Channel,
                Some(("none", _)) => StepLines::Off,
                Some((other, line)) => {
                    rep.at(line, format!("unknown step_lines {other:?}; one of thread, channel, none"));
                    StepLines::Thread
                }
            },
            storm_lines: s.storm_lines,
        });
    }
    if let Some(last) = situations.last() {
        if !last.when.is_catch_all() {
            let line = raw.situations.last().map(|s| s.id.referenced.line()).unwrap_or(0);
            rep.at(
                line,
                format!("the last situation ({}) must have no `when`, so every case lands somewhere", last.id),
            );
        }
    }
    if rep.problems.is_empty() {
        Ok(SituationBook { channels, situations })
    } else {
        Err(Problems(rep.problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(clock: Option<SlaClock>, after: u64, repeat: Option<u64>) -> EscalationStep {
        EscalationStep {
            clock,
            after: Span::from_secs(after),
            while_states: vec![CaseState::Open],
            notify: vec![EscalationTarget::Channel],
            repeat: repeat.map(Span::from_secs),
            hours: None,
        }
    }

    #[test]
    fn a_step_is_due_after_its_clock_and_repeats_in_rounds() {
        let clocks = ClockTimes { opened: 0, acknowledge: Some(600_000), ..Default::default() };
        let s = step(Some(SlaClock::Acknowledge), 300, Some(600));
        assert_eq!(s.due_round(CaseState::Open, clocks, 899_999), None);
        assert_eq!(s.due_round(CaseState::Open, clocks, 900_000), Some(0));
        assert_eq!(s.due_round(CaseState::Open, clocks, 1_499_999), Some(0));
        assert_eq!(s.due_round(CaseState::Open, clocks, 1_500_000), Some(1));
        // Once the case moved on, the step no longer applies.
        assert_eq!(s.due_round(CaseState::Claimed, clocks, 9_000_000), None);
        // Counted from opening when no clock is named; no repeat means round 0 forever.
        let opened = step(None, 60, None);
        assert_eq!(opened.due_round(CaseState::Open, clocks, 60_000), Some(0));
        assert_eq!(opened.due_round(CaseState::Open, clocks, 99_000_000), Some(0));
        // A clock the situation does not run never fires.
        assert_eq!(step(Some(SlaClock::FollowUp), 1, None).due_round(CaseState::Open, clocks, i64::MAX / 2), None);
    }

    #[test]
    fn hours_windows_may_cross_midnight() {
        let t = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap();
        let mut s = step(None, 60, None);
        s.hours = Some((t(7), t(21)));
        assert!(s.inside_hours(t(7)) && s.inside_hours(t(20)) && !s.inside_hours(t(21)) && !s.inside_hours(t(3)));
        s.hours = Some((t(22), t(6)));
        assert!(s.inside_hours(t(23)) && s.inside_hours(t(2)) && !s.inside_hours(t(12)));
    }
}
