//! Labelled mentions (JSON Lines) and the measurement of triage against them: the corpus
//! the triage model learns from (`playbooks/triage-corpus.jsonl`), the held-out set it is
//! judged on, and any export a PX lead labels themselves (`carebot triage eval FILE`).

use super::triage::Triage;
use super::{Problem, Problems};
use crate::domain::{Mention, RawMention};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

pub const CORPUS_FILE: &str = "triage-corpus.jsonl";

/// One labelled mention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Labelled {
    pub text: String,
    #[serde(default)]
    pub rating: Option<f64>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    pub expect: Expect,
}

/// What a person decided the mention is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default)]
    pub site: Option<String>,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub risk: bool,
    #[serde(default)]
    pub urgent: bool,
    #[serde(default)]
    pub spam: bool,
    #[serde(default)]
    pub positive: bool,
}

impl Labelled {
    /// The mention as intake would build it.
    pub fn mention(&self) -> Result<Mention, String> {
        RawMention {
            source: Some(self.source.clone().unwrap_or_else(|| "webhook".into())),
            external_id: Some("eval".into()),
            text: Some(self.text.clone()),
            rating: self.rating,
            url: self.url.clone(),
            ..Default::default()
        }
        .parse(None, chrono::Utc::now())
        .map_err(|e| e.to_string())
    }
}

/// Reads a labelled file; every bad line is reported with its number.
pub fn load(path: &Path) -> Result<Vec<Labelled>, Problems> {
    load_checked(path, |_| None)
}

/// `load`, also refusing a line whose labels `check` finds wrong (it says why).
pub fn load_checked(path: &Path, check: impl Fn(&Labelled) -> Option<String>) -> Result<Vec<Labelled>, Problems> {
    let problem = |line: Option<u64>, message: String| Problem { file: path.to_path_buf(), line, message };
    let text = std::fs::read_to_string(path).map_err(|e| Problems(vec![problem(None, format!("cannot read: {e}"))]))?;
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Labelled>(line) {
            Ok(l) if l.text.trim().is_empty() => problems.push(problem(Some(i as u64 + 1), "empty text".into())),
            Ok(l) => match check(&l) {
                Some(why) => problems.push(problem(Some(i as u64 + 1), why)),
                None => out.push(l),
            },
            Err(e) => problems.push(problem(Some(i as u64 + 1), format!("not a labelled mention: {e}"))),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(Problems(problems))
    }
}

/// True and false positives and negatives of one label.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub tp: u32,
    pub fp: u32,
    pub fn_: u32,
}

impl Counts {
    pub fn add(&mut self, expected: bool, got: bool) {
        match (expected, got) {
            (true, true) => self.tp += 1,
            (false, true) => self.fp += 1,
            (true, false) => self.fn_ += 1,
            _ => {}
        }
    }
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
    pub fn support(&self) -> u32 {
        self.tp + self.fn_
    }
}

fn ratio(a: u32, b: u32) -> f64 {
    if b == 0 {
        1.0
    } else {
        f64::from(a) / f64::from(b)
    }
}

/// The `--misses` heading of risk mentions that reached the risk channel only as
/// "possible risk" (counted as caught; a person confirms them).
const ONLY_POSSIBLE: &str = "risk (caught only as possible risk: a person confirms it)";

/// Triage measured on a labelled set.
#[derive(Debug, Default, Clone)]
pub struct Evaluation {
    pub mentions: usize,
    /// Risk counting the "possible risk" tier as caught (it reaches the risk channel).
    pub risk: Counts,
    /// Risk counting only confirmed-by-rule risk.
    pub risk_confirmed: Counts,
    pub urgent: Counts,
    pub spam: Counts,
    pub positive: Counts,
    pub categories: BTreeMap<String, Counts>,
    pub site_right: usize,
    /// (expected, got) category pairs that disagreed, with how often; "-" for none.
    pub confusions: BTreeMap<(String, String), u32>,
    /// Texts triage got wrong, per label (for `--misses`).
    pub misses: BTreeMap<String, Vec<String>>,
    /// Category id → its label in triage.yaml, for the report.
    pub names: BTreeMap<String, String>,
}

impl Evaluation {
    pub fn run(triage: &Triage, corpus: &[Labelled]) -> Evaluation {
        let mut ev = Evaluation { mentions: corpus.len(), ..Default::default() };
        let mut judged: Vec<(Vec<String>, Vec<String>)> = Vec::new();
        for l in corpus {
            let Ok(m) = l.mention() else { continue };
            let r = triage.triage(&m);
            for c in l.expect.categories.iter().chain(&r.categories) {
                ev.names.entry(c.clone()).or_insert_with(|| triage.category_label(c).to_string());
            }
            let name = |c: &str| format!("category {}", triage.category_label(c));
            let why: Vec<String> =
                r.reasons.iter().filter(|x| x.kind != "site").map(|x| triage.reason_text(x)).collect();
            let shown = if why.is_empty() { l.text.clone() } else { format!("{}  [{}]", l.text, why.join("; ")) };
            if l.expect.risk && r.possible_risk {
                ev.misses.entry(ONLY_POSSIBLE.into()).or_default().push(shown.clone());
            }
            if l.expect.site != r.site {
                let site = |s: &Option<String>| s.clone().unwrap_or_else(|| "none".into());
                let key = format!("site (labelled {}, triaged {})", site(&l.expect.site), site(&r.site));
                ev.misses.entry(key).or_default().push(shown.clone());
            }
            let only_possible = r.possible_risk && !r.risk;
            let mut miss = |label: &str, expected: bool, got: bool| {
                if expected != got {
                    let tag = match (expected, label) {
                        (true, _) => "missed",
                        (false, "risk") if only_possible => "false alarm, as possible risk",
                        (false, _) => "false alarm",
                    };
                    ev.misses.entry(format!("{label} ({tag})")).or_default().push(shown.clone());
                }
            };
            miss("risk", l.expect.risk, r.risk || r.possible_risk);
            miss("on site now", l.expect.urgent, r.urgent);
            miss("spam", l.expect.spam, r.spam);
            miss("shout-out", l.expect.positive, r.positive);
            ev.risk.add(l.expect.risk, r.risk || r.possible_risk);
            ev.risk_confirmed.add(l.expect.risk, r.risk);
            ev.urgent.add(l.expect.urgent, r.urgent);
            ev.spam.add(l.expect.spam, r.spam);
            ev.positive.add(l.expect.positive, r.positive);
            if l.expect.site == r.site {
                ev.site_right += 1;
            }
            for c in l.expect.categories.iter().chain(&r.categories) {
                ev.categories.entry(c.clone()).or_default();
            }
            for c in &l.expect.categories {
                if !r.categories.contains(c) {
                    miss(&name(c), true, false);
                }
            }
            for c in &r.categories {
                if !l.expect.categories.contains(c) {
                    miss(&name(c), false, true);
                }
            }
            judged.push((l.expect.categories.clone(), r.categories.clone()));
            let missing: Vec<&String> = l.expect.categories.iter().filter(|c| !r.categories.contains(c)).collect();
            let extra: Vec<&String> = r.categories.iter().filter(|c| !l.expect.categories.contains(c)).collect();
            for m in &missing {
                let got = extra.first().map(|s| s.to_string()).unwrap_or_else(|| "-".into());
                *ev.confusions.entry((m.to_string(), got)).or_default() += 1;
            }
            if missing.is_empty() {
                for e in &extra {
                    *ev.confusions.entry(("-".into(), e.to_string())).or_default() += 1;
                }
            }
        }
        for (c, counts) in ev.categories.iter_mut() {
            for (want, got) in &judged {
                counts.add(want.contains(c), got.contains(c));
            }
        }
        ev
    }

    /// Adds another part's counts (cross-validation folds).
    pub fn merge(&mut self, other: Evaluation) {
        let add = |a: &mut Counts, b: Counts| {
            a.tp += b.tp;
            a.fp += b.fp;
            a.fn_ += b.fn_;
        };
        self.mentions += other.mentions;
        add(&mut self.risk, other.risk);
        add(&mut self.risk_confirmed, other.risk_confirmed);
        add(&mut self.urgent, other.urgent);
        add(&mut self.spam, other.spam);
        add(&mut self.positive, other.positive);
        for (c, counts) in other.categories {
            add(self.categories.entry(c).or_default(), counts);
        }
        self.site_right += other.site_right;
        for (k, n) in other.confusions {
            *self.confusions.entry(k).or_default() += n;
        }
        for (k, v) in other.misses {
            self.misses.entry(k).or_default().extend(v);
        }
        self.names.extend(other.names);
    }

    /// Category counts summed over labels (micro average).
    pub fn category_micro(&self) -> Counts {
        self.categories.values().fold(Counts::default(), |a, c| Counts {
            tp: a.tp + c.tp,
            fp: a.fp + c.fp,
            fn_: a.fn_ + c.fn_,
        })
    }

    pub fn category_macro_f1(&self) -> f64 {
        let with_support: Vec<&Counts> = self.categories.values().filter(|c| c.support() > 0).collect();
        if with_support.is_empty() {
            return 1.0;
        }
        with_support.iter().map(|c| c.f1()).sum::<f64>() / with_support.len() as f64
    }

    pub fn site_accuracy(&self) -> f64 {
        ratio(self.site_right as u32, self.mentions as u32)
    }

    /// The report `carebot triage eval` prints.
    pub fn render(&self, misses: bool) -> String {
        let mut s = String::new();
        let line = |s: &mut String, name: &str, c: &Counts| {
            if c.tp + c.fp + c.fn_ == 0 {
                let _ = writeln!(s, "  {name:<32} n/a (none labelled, none triaged)");
                return;
            }
            // A ratio over nothing is not a figure: no mention labelled (recall) or none
            // triaged (precision) with this label.
            let fig = |n: u32, d: u32| {
                if d == 0 {
                    "—   ".to_string()
                } else {
                    format!("{:.2}", f64::from(n) / f64::from(d))
                }
            };
            let f1 = if c.support() == 0 || c.tp + c.fp == 0 { "—   ".to_string() } else { format!("{:.2}", c.f1()) };
            let _ = writeln!(
                s,
                "  {name:<32} precision {}  recall {}  F1 {f1}  ({} labelled, {} caught, {} false alarms)",
                fig(c.tp, c.tp + c.fp),
                fig(c.tp, c.support()),
                c.support(),
                c.tp,
                c.fp
            );
        };
        let _ = writeln!(s, "{} labelled mentions", self.mentions);
        let _ = writeln!(s, "Flags:");
        line(&mut s, "risk (with possible risk)", &self.risk);
        line(&mut s, "risk (confirmed only)", &self.risk_confirmed);
        line(&mut s, "on site now", &self.urgent);
        line(&mut s, "spam", &self.spam);
        line(&mut s, "shout-out", &self.positive);
        let _ = writeln!(s, "Categories:");
        for (c, counts) in &self.categories {
            line(&mut s, self.names.get(c).map_or(c, |n| n), counts);
        }
        let micro = self.category_micro();
        let ratio =
            |n: u32, d: u32| if d == 0 { "—".to_string() } else { format!("{:.2}", f64::from(n) / f64::from(d)) };
        let _ = writeln!(
            s,
            "  micro: precision {}  recall {}  F1 {};  macro F1 {:.2}",
            ratio(micro.tp, micro.tp + micro.fp),
            ratio(micro.tp, micro.support()),
            if micro.tp + micro.fp == 0 || micro.support() == 0 {
                "—".to_string()
            } else {
                format!("{:.2}", micro.f1())
            },
            self.category_macro_f1()
        );
        let _ = writeln!(s, "Site right: {:.2} ({} of {})", self.site_accuracy(), self.site_right, self.mentions);
        if !self.confusions.is_empty() {
            let _ = writeln!(s, "Category confusions (labelled → triaged, times):");
            let mut pairs: Vec<_> = self.confusions.iter().collect();
            pairs.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let name = |c: &String| self.names.get(c).cloned().unwrap_or_else(|| c.clone());
            for ((want, got), n) in pairs.into_iter().take(15) {
                let _ = writeln!(s, "  {} → {}: {n}", name(want), name(got));
            }
        }
        if misses {
            for (label, texts) in &self.misses {
                let _ = writeln!(s, "{label}:");
                for t in texts {
                    let short: String = t.chars().take(400).collect();
                    let _ = writeln!(s, "  - {}", short.replace('\n', " "));
                }
            }
        }
        s
    }
}

/// Cross-validation in `folds` parts: each part is judged by triage whose model learnt from
/// the other parts only, so the figures say how it does on mentions it has not seen.
pub fn cross_validate(playbooks: &super::Playbooks, labelled: &[Labelled], folds: usize) -> anyhow::Result<Evaluation> {
    let Some(model) = &playbooks.triage_rules.model else {
        anyhow::bail!("--folds needs a `model:` section in triage.yaml (there is no model to cross-validate)");
    };
    let mut total = Evaluation::default();
    for k in 0..folds.max(2) {
        let (test, train): (Vec<_>, Vec<_>) = labelled.iter().enumerate().partition(|(i, _)| i % folds.max(2) == k);
        let mut book = playbooks.triage_rules.clone();
        let mut m = model.clone();
        m.corpus = train.into_iter().map(|(_, l)| l.clone()).collect();
        book.model = Some(m);
        let triage = Triage::compile(&book, &playbooks.team)?;
        let test: Vec<Labelled> = test.into_iter().map(|(_, l)| l.clone()).collect();
        total.merge(Evaluation::run(&triage, &test));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_give_precision_recall_and_f1() {
        let mut c = Counts::default();
        for (want, got) in [(true, true), (true, true), (true, false), (false, true), (false, false)] {
            c.add(want, got);
        }
        assert_eq!((c.tp, c.fp, c.fn_), (2, 1, 1));
        assert!((c.precision() - 2.0 / 3.0).abs() < 1e-9 && (c.recall() - 2.0 / 3.0).abs() < 1e-9);
        assert!((c.f1() - 2.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn the_report_names_categories_and_shows_no_ratio_over_nothing() {
        let mut ev = Evaluation { mentions: 3, ..Default::default() };
        ev.categories.insert("billing".into(), Counts { tp: 0, fp: 2, fn_: 0 });
        ev.categories.insert("parking".into(), Counts { tp: 1, fp: 0, fn_: 1 });
        ev.names.insert("billing".into(), "Billing".into());
        ev.names.insert("parking".into(), "Parking".into());
        ev.confusions.insert(("parking".into(), "billing".into()), 1);
        let out = ev.render(false);
        // Nobody labelled billing: there is no recall to give, not "1.00" nor "0.00".
        assert!(out.contains("  Billing                          precision 0.00  recall —"), "{out}");
        assert!(out.contains("  Parking                          precision 1.00  recall 0.50"), "{out}");
        assert!(out.contains("  Parking → Billing: 1"), "{out}");
        assert!(!out.contains("billing") && !out.contains("parking"), "ids stay out of the report: {out}");
    }

    #[test]
    fn a_bad_line_is_reported_with_its_number() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.jsonl");
        std::fs::write(&f, "{\"text\": \"ok\", \"expect\": {}}\n{\"text\": 3}\n").unwrap();
        let err = load(&f).unwrap_err().to_string();
        assert!(err.contains("x.jsonl:2: not a labelled mention"), "{err}");
    }
}
