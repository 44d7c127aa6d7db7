//! Leads' reports on a fixed data set and clock: per-agent and per-site performance, the
//! case export (and the record its text leaves), and the alertable gauges on /metrics.
//! Every figure is worked out by hand in the comments.

mod common;

use carebot::digest::export::{export, ExportError, Format};
use carebot::digest::performance;
use carebot::domain::{Action, Outcome};
use carebot::intake::ingest;
use carebot::store::Backend;
use carebot::workflow::act;
use chrono::{Duration, NaiveDate};
use common::*;

fn monday() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
}

/// Monday 23rd from 09:00 Chicago (t0):
/// - A Riverside wait (1★): Marcus claims at +10 min, replies at +40 (clock 2 h: met), resolves at +2 h.
/// - B Northgate billing (2★): Grace claims at +60, replies at +150 (missed), leaves it responded.
/// - C Northgate front desk (1★): Grace claims at +20, replies at +80 (met), resolves no_reply at +3 h.
/// - D Northgate praise (5★): nobody (shout-out: no response clock).
/// - E Eastbrook wrong medication: clinical risk, P1, nobody (1-hour response clock, missed).
///
/// Read at +10 h (19:00 Chicago).
async fn fixture(e: &Env) -> Vec<i64> {
    e.clock.set(t0());
    let ids: Vec<i64> = ingest(
        &e.ctx,
        &[
            mention("google", "r-a", "Waited 4 hours at Riverside", Some(1.0)),
            mention("yelp", "r-b", "Billed twice at Northgate, nobody called back", Some(2.0)),
            mention("google", "r-c", "Rude front desk at Northgate", Some(1.0)),
            mention("google", "r-d", "Thank you Northgate nurses, so kind!", Some(5.0)),
            mention("facebook", "r-e", "Wrong medication at Eastbrook, calling a lawyer", None),
        ],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.case_id())
    .collect();
    let reply = |email: &str| Action::Respond {
        text: Some(format!("We're sorry to hear this. Please email {email} so we can help.")),
        override_block: false,
    };
    let (riverside, northgate) =
        ("patientrelations.riverside@lakeshore-health.example", "feedback.northgate@lakeshore-health.example");
    let steps: Vec<(i64, usize, &str, Action)> = vec![
        (10, 0, "marcus", Action::Claim),
        (20, 2, "grace", Action::Claim),
        (40, 0, "marcus", reply(riverside)),
        (60, 1, "grace", Action::Claim),
        (80, 2, "grace", reply(northgate)),
        (120, 0, "marcus", Action::Resolve { outcome: Outcome::Resolved, note: None }),
        (150, 1, "grace", reply(northgate)),
        (180, 2, "grace", Action::Resolve { outcome: Outcome::NoReply, note: None }),
    ];
    for (minutes, case, who, action) in steps {
        e.clock.set(t0() + Duration::minutes(minutes));
        act(&e.ctx, ids[case], who, action).await.unwrap();
    }
    e.clock.set(t0() + Duration::hours(10));
    ids
}

async fn per_agent_and_per_site_performance_has_the_hand_computed_figures(b: Backend) {
    let e = env(b).await;
    fixture(&e).await;
    let p = performance::gather(&e.ctx, monday(), monday()).await.unwrap();
    let agent = |id: &str| p.agents.iter().find(|r| r.key.as_deref() == Some(id)).unwrap().clone();
    assert_eq!(p.agents.iter().map(|r| r.key.clone().unwrap()).collect::<Vec<_>>(), ["grace", "marcus"]);
    // Grace: claims after 20 and 60 min (nearest-rank median 20), replies after 80 and 150
    // (median 80), one of two clocks met, one no_reply and one still open.
    let grace = agent("grace");
    assert_eq!((grace.cases, grace.median_claim_minutes, grace.median_response_minutes), (2, Some(20.0), Some(80.0)));
    assert_eq!((grace.with_clock, grace.within_sla_share), (2, Some(0.5)));
    assert_eq!(grace.outcomes.get("no_reply"), Some(&1));
    assert_eq!(grace.outcomes.get("open"), Some(&1));
    let marcus = agent("marcus");
    assert_eq!(
        (marcus.cases, marcus.median_claim_minutes, marcus.median_response_minutes),
        (1, Some(10.0), Some(40.0))
    );
    assert_eq!((marcus.within_sla_share, marcus.outcomes.get("resolved")), (Some(1.0), Some(&1)));
    // Sites: Northgate B, C, D (two claimed; D has no response clock); Eastbrook E, past due.
    let site = |id: &str| p.sites.iter().find(|r| r.key.as_deref() == Some(id)).unwrap().clone();
    let northgate = site("northgate");
    assert_eq!((northgate.cases, northgate.claimed, northgate.within_sla_share), (3, 2, Some(0.5)));
    assert_eq!(northgate.outcomes.get("open"), Some(&2));
    let eastbrook = site("eastbrook");
    assert_eq!(
        (eastbrook.cases, eastbrook.claimed, eastbrook.with_clock, eastbrook.within_sla_share),
        (1, 0, 1, Some(0.0))
    );
    assert_eq!(p.unclaimed, 2, "D and E");
    let text = p.to_text();
    assert!(text.contains("  nobody (unclaimed): 2 cases\n"), "{text}");
    assert!(
        text.contains("  Grace Lin: 2 cases; median to claim 20 min, to first response 80 min; within SLA 50%; no reply 1, open 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "  Eastbrook Urgent Care: 1 case, 0 claimed; median to claim -, to first response -; within SLA 0%; open 1"
        ),
        "{text}"
    );
    let csv = p.to_csv().unwrap();
    assert!(csv.contains("2026-11-23,2026-11-23,agent,Marcus Bell,1,1,10.0,40.0,1.000,resolved 1"), "{csv}");
}

async fn the_export_has_a_row_per_case_with_timings_and_text_only_when_asked(b: Backend) {
    let e = env(b).await;
    let ids = fixture(&e).await;
    let csv = export(&e.ctx, monday(), monday(), Format::Csv, None).await.unwrap();
    let mut r = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    assert!(!header.contains(&"text".to_string()), "no mention text by default: {header:?}");
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), 5);
    let col = |row: &csv::StringRecord, name: &str| row[header.iter().position(|h| h == name).unwrap()].to_string();
    let a = &rows[0];
    assert_eq!(col(a, "case_id"), ids[0].to_string());
    assert_eq!(col(a, "received"), "2026-11-23T09:00:00-06:00");
    assert_eq!((col(a, "site"), col(a, "owner")), ("Riverside Medical Center".into(), "Marcus Bell".into()));
    assert_eq!((col(a, "minutes_to_claim"), col(a, "minutes_to_first_response")), ("10".into(), "40".into()));
    assert_eq!(
        (col(a, "state"), col(a, "outcome"), col(a, "within_sla")),
        ("resolved".into(), "resolved".into(), "yes".into())
    );
    assert_eq!(col(&rows[1], "within_sla"), "no", "B answered after 150 min on a 2-hour clock");
    assert_eq!(col(&rows[3], "within_sla"), "", "D has no response clock");
    let risk = &rows[4];
    assert_eq!(
        (col(risk, "priority"), col(risk, "clinical_risk"), col(risk, "within_sla")),
        ("P1".into(), "yes".into(), "no".into())
    );
    assert!(!csv.contains("Wrong medication"), "{csv}");
    assert!(!col(risk, "risk_flags").is_empty(), "the risk rules that matched are named: {csv}");
    assert_eq!(col(a, "posted"), "2026-11-23T09:00:00-06:00");

    // An agent may not take the text; nothing is recorded.
    let refused = export(&e.ctx, monday(), monday(), Format::Jsonl, Some("sam")).await;
    assert!(matches!(refused, Err(ExportError::NotAllowed(ref n)) if n == "Sam Whitfield"), "{refused:?}");
    assert!(e.ctx.store.events(ids[4]).await.unwrap().iter().all(|ev| ev.action != "text_exported"));
    // Risk management may, and each case's history says who did.
    let jsonl = export(&e.ctx, monday(), monday(), Format::Jsonl, Some("ruth")).await.unwrap();
    let first: serde_json::Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(first["text"], "Waited 4 hours at Riverside");
    assert_eq!(first["minutes_to_first_response"], 40);
    for id in &ids {
        let trail: Vec<_> =
            e.ctx.store.events(*id).await.unwrap().into_iter().filter(|ev| ev.action == "text_exported").collect();
        assert_eq!(trail.len(), 1, "case {id}");
        assert_eq!(trail[0].actor, "ruth");
    }
    let backwards = export(&e.ctx, monday(), monday() - Duration::days(1), Format::Csv, None).await;
    assert!(matches!(backwards, Err(ExportError::BadRange(..))));
}

async fn metrics_expose_overdue_oldest_unclaimed_p1_and_the_24h_sla_share(b: Backend) {
    let e = env(b).await;
    fixture(&e).await;
    let m = carebot::http::render_metrics(&e.ctx).await.unwrap();
    // E, unclaimed for 10 h, is past its 15-minute acknowledge and 1-hour response clocks.
    assert!(m.contains("carebot_cases_overdue{situation=\"clinical-risk\",clock=\"acknowledge\"} 1"), "{m}");
    assert!(m.contains("carebot_cases_overdue{situation=\"clinical-risk\",clock=\"first_response\"} 1"), "{m}");
    // B was answered, late: it is no longer overdue for a response.
    assert!(m.contains("carebot_cases_overdue{situation=\"negative-review\",clock=\"first_response\"} 0"), "{m}");
    assert!(m.contains("carebot_oldest_unclaimed_p1_age_seconds 36000\n"), "{m}");
    // Response clocks due in the last 24 h: A (met), B (missed), C (met), E (missed).
    assert!(m.contains("carebot_response_clocks_due_24h 4\n"), "{m}");
    assert!(m.contains("carebot_within_sla_share_24h 0.500\n"), "{m}");
}

on_both_backends!(
    per_agent_and_per_site_performance_has_the_hand_computed_figures,
    the_export_has_a_row_per_case_with_timings_and_text_only_when_asked,
    metrics_expose_overdue_oldest_unclaimed_p1_and_the_24h_sla_share,
);
