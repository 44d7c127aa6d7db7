//! The public-reply check measured on 175 labelled replies (good and bad) written apart
//! from its rules (`tests/fixtures/replies.jsonl`): how many bad replies it blocks
//! (recall) and how many of its blocks were right (precision). The built-in patterns were
//! tuned on this set, so it is a development set: the figures are a regression floor, not
//! a promise about replies nobody has seen. The README quotes them.

mod common;

use carebot::domain::compliance;
use carebot::playbook::corpus::Counts;
use carebot::playbook::Playbooks;
use serde::Deserialize;

#[derive(Deserialize)]
struct Labelled {
    text: String,
    source: String,
    site: Option<String>,
    praise: bool,
    block: bool,
    why: String,
}

#[test]
fn the_reply_check_blocks_bad_replies_and_lets_good_ones_through() {
    let pb = Playbooks::load(&common::repo().join("playbooks")).unwrap();
    let text = std::fs::read_to_string(common::repo().join("tests/fixtures/replies.jsonl")).unwrap();
    let set: Vec<Labelled> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(set.len() >= 150, "{} labelled replies", set.len());
    let team = &pb.team;
    let mut counts = Counts::default();
    let mut wrong = Vec::new();
    for r in &set {
        // The agents sign with their first names; site owners may be named.
        let agent = team.person("dena");
        let cx = carebot::drafting::context_for(&pb, r.site.as_deref(), agent, Some(&r.source), r.praise);
        let mut cx = cx;
        cx.allowed_names.extend(["Sam".to_string(), "Priya".to_string()]);
        let findings = compliance::check(&r.text, &cx);
        let blocked = compliance::blocks(&findings);
        counts.add(r.block, blocked);
        if blocked != r.block {
            let got: Vec<String> = findings.iter().map(|f| f.to_string()).collect();
            wrong.push(format!(
                "{} [{}] {:?} → {got:?}",
                if r.block { "MISSED" } else { "FALSE BLOCK" },
                r.why,
                r.text
            ));
        }
    }
    println!(
        "blocking: precision {:.2} recall {:.2} ({} bad, {} blocked right, {} good blocked)\n{}",
        counts.precision(),
        counts.recall(),
        counts.support(),
        counts.tp,
        counts.fp,
        wrong.join("\n")
    );
    assert!(counts.recall() >= 0.95, "blocking recall {:.2}", counts.recall());
    assert!(counts.precision() >= 0.95, "blocking precision {:.2}", counts.precision());
}
