//! Triage quality, measured on a labelled corpus of realistic mentions for the example
//! organisation (every category, risk, on-site urgency, praise, spam, sarcasm, mixed
//! feelings, misspellings, each site and none). Prints per-label precision and recall and
//! holds the floors: risk recall ≥ 0.95, urgency recall ≥ 0.9, category macro-F1 ≥ 0.8,
//! site accuracy ≥ 0.9.

mod common;

use carebot::domain::RawMention;
use carebot::playbook::{Playbooks, Triage};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct Labelled {
    text: String,
    rating: Option<f64>,
    url: Option<String>,
    expect: Expect,
}

#[derive(Deserialize)]
struct Expect {
    site: Option<String>,
    categories: Vec<String>,
    risk: bool,
    urgent: bool,
    spam: bool,
    positive: bool,
}

#[derive(Default, Debug)]
struct Counts {
    tp: u32,
    fp: u32,
    fn_: u32,
}

impl Counts {
    fn add(&mut self, expected: bool, got: bool) {
        match (expected, got) {
            (true, true) => self.tp += 1,
            (false, true) => self.fp += 1,
            (true, false) => self.fn_ += 1,
            _ => {}
        }
    }
    fn precision(&self) -> f64 {
        if self.tp + self.fp == 0 {
            1.0
        } else {
            self.tp as f64 / (self.tp + self.fp) as f64
        }
    }
    fn recall(&self) -> f64 {
        if self.tp + self.fn_ == 0 {
            1.0
        } else {
            self.tp as f64 / (self.tp + self.fn_) as f64
        }
    }
    fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

#[test]
fn triage_meets_its_quality_floors_on_the_labelled_corpus() {
    let pb = Playbooks::load(&common::repo().join("playbooks")).unwrap();
    let triage = Triage::compile(&pb.triage_rules, &pb.team).unwrap();
    let text = std::fs::read_to_string(common::repo().join("tests/fixtures/triage_corpus.jsonl")).unwrap();
    let corpus: Vec<Labelled> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(corpus.len() >= 150, "the corpus has {} mentions", corpus.len());

    let mut flags: BTreeMap<&str, Counts> = BTreeMap::new();
    let mut cats: BTreeMap<String, Counts> = BTreeMap::new();
    let (mut site_ok, mut misses) = (0, Vec::new());
    for (i, l) in corpus.iter().enumerate() {
        let m = RawMention {
            source: Some("google".into()),
            external_id: Some(i.to_string()),
            text: Some(l.text.clone()),
            rating: l.rating,
            url: l.url.clone(),
            ..Default::default()
        }
        .parse(None, common::t0())
        .unwrap();
        let r = triage.triage(&m);
        flags.entry("risk").or_default().add(l.expect.risk, r.risk);
        flags.entry("urgent").or_default().add(l.expect.urgent, r.urgent);
        flags.entry("spam").or_default().add(l.expect.spam, r.spam);
        flags.entry("positive").or_default().add(l.expect.positive, r.positive);
        for c in pb.triage_rules.rules.iter().filter(|r| r.kind == carebot::playbook::triage_rules::RuleKind::Category)
        {
            let (e, g) = (l.expect.categories.contains(&c.id), r.categories.contains(&c.id));
            cats.entry(c.id.clone()).or_default().add(e, g);
            if e != g {
                misses.push(format!("{}{}: {:?}", if e { "missed " } else { "extra " }, c.id, l.text));
            }
        }
        if l.expect.site == r.site {
            site_ok += 1;
        } else {
            misses.push(format!("site {:?} instead of {:?}: {:?}", r.site, l.expect.site, l.text));
        }
        for (name, e, g) in [("risk", l.expect.risk, r.risk), ("urgent", l.expect.urgent, r.urgent)] {
            if e != g {
                misses.push(format!("{name} {g} instead of {e}: {:?}", l.text));
            }
        }
    }

    println!("{:<24} {:>9} {:>7} {:>6}", "label", "precision", "recall", "F1");
    for (name, c) in
        flags.iter().map(|(k, v)| (k.to_string(), v)).chain(cats.iter().map(|(k, v)| (format!("category {k}"), v)))
    {
        println!("{name:<24} {:>9.3} {:>7.3} {:>6.3}", c.precision(), c.recall(), c.f1());
    }
    let macro_f1 = cats.values().map(Counts::f1).sum::<f64>() / cats.len() as f64;
    let site_accuracy = site_ok as f64 / corpus.len() as f64;
    println!("category macro-F1 {macro_f1:.3}; site accuracy {site_accuracy:.3} ({site_ok}/{})", corpus.len());
    for m in &misses {
        println!("  {m}");
    }
    assert!(flags["risk"].recall() >= 0.95, "risk recall {:.3}", flags["risk"].recall());
    assert!(flags["urgent"].recall() >= 0.9, "urgency recall {:.3}", flags["urgent"].recall());
    assert!(macro_f1 >= 0.8, "category macro-F1 {macro_f1:.3}");
    assert!(site_accuracy >= 0.9, "site accuracy {site_accuracy:.3}");
}
