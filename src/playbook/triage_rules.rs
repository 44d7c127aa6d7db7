//! `triage.yaml`: phrase and pattern rules for categories, clinical/legal risk, on-site
//! urgency, spam, and the thresholds for sentiment and positive shout-outs.

use super::{parse_yaml, Problems, Report};
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::HashSet;
use std::path::Path;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBook {
    #[serde(default)]
    sentiment: RawSentiment,
    #[serde(default)]
    positive: RawPositive,
    #[serde(default)]
    storm: Option<RawStorm>,
    #[serde(default)]
    spike: Option<RawSpike>,
    categories: Vec<RawRule>,
    #[serde(default)]
    risk: Vec<RawRule>,
    #[serde(default)]
    urgency: Vec<RawRule>,
    #[serde(default)]
    spam: Vec<RawRule>,
    #[serde(default)]
    negators: Vec<String>,
    #[serde(default)]
    model: Option<RawModel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    corpus: Spanned<String>,
    possible_risk: Spanned<f64>,
    category: Spanned<f64>,
    urgent: Spanned<f64>,
    spam: Spanned<f64>,
    positive: Spanned<f64>,
}

/// The statistical layer's settings: the labelled corpus it learns from (a file beside
/// triage.yaml) and the probability at which each of its verdicts counts.
#[derive(Debug, Clone)]
pub struct ModelSettings {
    pub corpus: Vec<super::corpus::Labelled>,
    pub corpus_file: String,
    /// No risk rule matched but the model says at least this: "possible risk".
    pub possible_risk: f64,
    pub category: f64,
    pub urgent: f64,
    pub spam: f64,
    pub positive: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCombo {
    within: usize,
    all: Vec<Vec<Spanned<String>>>,
}

/// A term from each list, all within `within` words of each other ("sent home" … "ruptured").
#[derive(Debug, Clone, PartialEq)]
pub struct Combo {
    pub within: usize,
    /// Normalised phrases, one list per term that must be present.
    pub all: Vec<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSentiment {
    negative_below: f64,
    positive_above: f64,
}

impl Default for RawSentiment {
    fn default() -> Self {
        RawSentiment { negative_below: -0.05, positive_above: 0.05 }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPositive {
    min_rating: f64,
    min_sentiment: f64,
}

impl Default for RawPositive {
    fn default() -> Self {
        RawPositive { min_rating: 4.0, min_sentiment: 0.5 }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorm {
    window: Spanned<String>,
    max_distance: u32,
    min_words: usize,
    update_every: Spanned<String>,
}

/// Near-duplicate ("storm") handling: mentions within `max_distance` bits of an unresolved
/// case opened in the last `window` attach to it; its card is refreshed at most every
/// `update_every`.
#[derive(Debug, Clone, PartialEq)]
pub struct Storm {
    pub window: crate::domain::Span,
    pub max_distance: u32,
    pub min_words: usize,
    pub update_every: crate::domain::Span,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpike {
    window: Spanned<String>,
    baseline: Spanned<String>,
    factor: Spanned<f64>,
    min_mentions: i64,
    cooldown: Spanned<String>,
    #[serde(default)]
    channel: Option<Spanned<String>>,
}

/// Spike alerts: the mentions of a site or a category in the last `window`, against the
/// average per window over the `baseline` before it. More than `factor` × that average
/// (and at least `min_mentions`) alerts the leads, once per `cooldown` for that site or
/// category.
#[derive(Debug, Clone, PartialEq)]
pub struct Spike {
    pub window: crate::domain::Span,
    pub baseline: crate::domain::Span,
    pub factor: f64,
    pub min_mentions: i64,
    pub cooldown: crate::domain::Span,
    /// Also posted here (a channel in situations.yaml), with the line it is set on.
    pub channel: Option<(String, u64)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Spanned<String>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    phrases: Vec<Spanned<String>>,
    #[serde(default)]
    patterns: Vec<Spanned<String>>,
    /// Categories only: this category is praise, not a complaint.
    #[serde(default)]
    praise: bool,
    #[serde(default)]
    combos: Vec<RawCombo>,
    /// Risk only: matches make a case "possible risk" (confirm or dismiss), not risk.
    #[serde(default)]
    possible: bool,
}

/// Which family a rule belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    Category,
    Risk,
    Urgency,
    Spam,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub kind: RuleKind,
    pub id: String,
    pub label: String,
    /// Lowercased literal phrases, matched on word boundaries, case-insensitively.
    pub phrases: Vec<String>,
    /// Case-insensitive regular expressions (already checked to compile).
    pub patterns: Vec<String>,
    pub praise: bool,
    /// Terms that count only together.
    pub combos: Vec<Combo>,
    /// Risk only: a match makes the case "possible risk".
    pub possible: bool,
}

#[derive(Debug, Clone)]
pub struct TriageBook {
    pub negative_below: f64,
    pub positive_above: f64,
    pub positive_min_rating: f64,
    pub positive_min_sentiment: f64,
    /// `None`: every mention opens its own case.
    pub storm: Option<Storm>,
    /// `None`: no spike alerts.
    pub spike: Option<Spike>,
    pub rules: Vec<Rule>,
    /// Words that, just before a risk, urgency, spam or praise phrase, cancel it ("no
    /// infection", "not suing"), normalised.
    pub negators: Vec<String>,
    /// `None`: rules only.
    pub model: Option<ModelSettings>,
}

impl TriageBook {
    pub fn category(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.kind == RuleKind::Category && r.id == id)
    }
}

pub(crate) fn load(path: &Path) -> Result<TriageBook, Problems> {
    let raw: RawBook = parse_yaml(path)?;
    let mut rep = Report::new(path);
    if raw.sentiment.negative_below > raw.sentiment.positive_above {
        rep.at(0, "sentiment.negative_below must not be above sentiment.positive_above");
    }
    let storm = raw.storm.as_ref().and_then(|st| {
        let span = |s: &Spanned<String>, rep: &mut Report| {
            s.value.parse::<crate::domain::Span>().map_err(|e| rep.at(s.referenced.line(), e)).ok()
        };
        let (window, every) = (span(&st.window, &mut rep), span(&st.update_every, &mut rep));
        if st.max_distance > 16 {
            rep.at(st.window.referenced.line(), "storm.max_distance above 16 bits would merge different complaints");
        }
        Some(Storm { window: window?, max_distance: st.max_distance, min_words: st.min_words, update_every: every? })
    });
    let spike = raw.spike.as_ref().and_then(|sp| {
        let span = |s: &Spanned<String>, rep: &mut Report| {
            s.value.parse::<crate::domain::Span>().map_err(|e| rep.at(s.referenced.line(), e)).ok()
        };
        let (window, baseline, cooldown) =
            (span(&sp.window, &mut rep), span(&sp.baseline, &mut rep), span(&sp.cooldown, &mut rep));
        if sp.factor.value.is_nan() || sp.factor.value <= 1.0 {
            rep.at(sp.factor.referenced.line(), "spike.factor must be above 1 (3 = three times the usual rate)");
        }
        if let (Some(w), Some(b)) = (window, baseline) {
            if b.as_millis() < 2 * w.as_millis() {
                rep.at(sp.baseline.referenced.line(), "spike.baseline must be at least twice spike.window");
            }
        }
        Some(Spike {
            window: window?,
            baseline: baseline?,
            factor: sp.factor.value,
            min_mentions: sp.min_mentions.max(1),
            cooldown: cooldown?,
            channel: sp.channel.as_ref().map(|c| (c.value.clone(), c.referenced.line())),
        })
    });
    let mut rules = Vec::new();
    for (kind, list) in [
        (RuleKind::Category, &raw.categories),
        (RuleKind::Risk, &raw.risk),
        (RuleKind::Urgency, &raw.urgency),
        (RuleKind::Spam, &raw.spam),
    ] {
        let mut seen = HashSet::new();
        for r in list {
            let line = r.id.referenced.line();
            if r.id.value.trim().is_empty() {
                rep.at(line, "rule id must not be empty");
            } else if !seen.insert(r.id.value.as_str()) {
                rep.at(line, format!("duplicate {kind:?} rule id {:?}", r.id.value).to_lowercase());
            }
            if r.phrases.is_empty() && r.patterns.is_empty() && r.combos.is_empty() {
                rep.at(line, format!("rule {} has neither phrases, patterns nor combos", r.id.value));
            }
            for c in &r.combos {
                if c.all.len() < 2 || c.all.iter().any(|l| l.is_empty()) {
                    rep.at(
                        line,
                        format!("rule {}: a combo needs at least two non-empty lists under `all`", r.id.value),
                    );
                }
                if c.within == 0 {
                    rep.at(line, format!("rule {}: a combo's `within` must be at least 1 word", r.id.value));
                }
            }
            if r.possible && kind != RuleKind::Risk {
                rep.at(line, format!("rule {}: `possible` applies to risk rules only", r.id.value));
            }
            if r.praise && kind != RuleKind::Category {
                rep.at(line, format!("rule {}: `praise` applies to categories only", r.id.value));
            }
            for p in &r.phrases {
                if p.value.trim().is_empty() {
                    rep.at(p.referenced.line(), format!("rule {} has an empty phrase", r.id.value));
                }
            }
            for p in &r.patterns {
                if let Err(e) = regex::RegexBuilder::new(&p.value).case_insensitive(true).build() {
                    let first = e.to_string().lines().last().unwrap_or("invalid").trim().to_string();
                    rep.at(
                        p.referenced.line(),
                        format!("pattern '{}' in rule {} does not compile: {first}", p.value, r.id.value),
                    );
                }
            }
            rules.push(Rule {
                kind,
                id: r.id.value.clone(),
                label: r.label.clone().unwrap_or_else(|| r.id.value.replace('_', " ")),
                phrases: r.phrases.iter().map(|p| super::text::normalise_phrase(&p.value)).collect(),
                patterns: r.patterns.iter().map(|p| p.value.clone()).collect(),
                praise: r.praise,
                possible: r.possible,
                combos: r
                    .combos
                    .iter()
                    .map(|c| Combo {
                        within: c.within,
                        all: c
                            .all
                            .iter()
                            .map(|l| l.iter().map(|p| super::text::normalise_phrase(&p.value)).collect())
                            .collect(),
                    })
                    .collect(),
            });
        }
    }
    let model = raw.model.as_ref().and_then(|m| {
        for (name, v) in [
            ("possible_risk", &m.possible_risk),
            ("category", &m.category),
            ("urgent", &m.urgent),
            ("spam", &m.spam),
            ("positive", &m.positive),
        ] {
            if !(v.value > 0.0 && v.value < 1.0) {
                rep.at(v.referenced.line(), format!("model.{name} is a probability between 0 and 1 (exclusive)"));
            }
        }
        let file = path.parent().unwrap_or(Path::new(".")).join(&m.corpus.value);
        match super::corpus::load(&file) {
            Ok(corpus) if corpus.is_empty() => {
                rep.at(
                    m.corpus.referenced.line(),
                    format!("model.corpus: {} has no labelled mentions", m.corpus.value),
                );
                None
            }
            Ok(corpus) => {
                // A category renamed in the rules but not in the corpus would silently
                // leave the model without its examples.
                let mut unknown: Vec<(&str, usize)> = Vec::new();
                for c in corpus.iter().flat_map(|l| &l.expect.categories) {
                    if !rules.iter().any(|r| r.kind == RuleKind::Category && r.id == *c) {
                        match unknown.iter_mut().find(|(u, _)| u == c) {
                            Some((_, n)) => *n += 1,
                            None => unknown.push((c, 1)),
                        }
                    }
                }
                for (c, n) in unknown {
                    rep.at(
                        m.corpus.referenced.line(),
                        format!(
                            "model.corpus: {n} mention(s) in {} are labelled with category {c:?}, which is not a \
                             category here (renamed? rename it in the corpus too)",
                            m.corpus.value
                        ),
                    );
                }
                Some(ModelSettings {
                    corpus,
                    corpus_file: m.corpus.value.clone(),
                    possible_risk: m.possible_risk.value,
                    category: m.category.value,
                    urgent: m.urgent.value,
                    spam: m.spam.value,
                    positive: m.positive.value,
                })
            }
            Err(p) => {
                for problem in p.0.into_iter().take(5) {
                    rep.at(m.corpus.referenced.line(), format!("model.corpus: {problem}"));
                }
                None
            }
        }
    });
    if rep.problems.is_empty() {
        Ok(TriageBook {
            negative_below: raw.sentiment.negative_below,
            positive_above: raw.sentiment.positive_above,
            positive_min_rating: raw.positive.min_rating,
            positive_min_sentiment: raw.positive.min_sentiment,
            storm,
            spike,
            rules,
            negators: raw.negators.iter().map(|n| super::text::normalise_phrase(n)).collect(),
            model,
        })
    } else {
        Err(Problems(rep.problems))
    }
}
