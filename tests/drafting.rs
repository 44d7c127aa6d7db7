//! Reply drafting end to end: templates fit and render, the compliance check gates "mark
//! responded", a lead may override (recorded), and risk cases need a lead's approval.

mod common;

use carebot::domain::compliance::{self, platform_limit, Rule, Severity};
use carebot::domain::{Action, CaseState};
use carebot::drafting::draft;
use carebot::intake::ingest;
use carebot::playbook::{replies::PLATFORMS, Playbooks, ReplyVars};
use carebot::store::Backend;
use carebot::workflow::{act, ActError};
use common::*;

#[test]
fn every_shipped_template_renders_clean_for_every_site_and_platform() {
    let pb = Playbooks::load(&repo().join("playbooks")).unwrap();
    assert!(pb.replies.templates.len() >= 7);
    let mut rendered = 0;
    for t in &pb.replies.templates {
        for site in &pb.team.sites {
            for platform in PLATFORMS.iter().filter(|p| t.fits_platform(p)) {
                let vars = ReplyVars::new(Some("@someone"), Some(site), &pb.team, "24 hours".into(), "Dena");
                let text = pb.replies.render(&t.id, &vars).unwrap();
                assert!(!text.contains("{{") && !text.contains("{%"), "{}: {text}", t.id);
                assert!(
                    text.contains(&site.contacts.email),
                    "{} on {platform} for {}: no offline route",
                    t.id,
                    site.id
                );
                if !site.contacts.phone_public {
                    let phone = site.contacts.phone.as_deref().unwrap_or("\u{0}");
                    assert!(!text.contains(phone), "{} posts {}'s private phone", t.id, site.id);
                }
                let cx = compliance::ReplyContext {
                    max_chars: t.limit(platform),
                    public_phone: site.contacts.phone.clone().filter(|_| site.contacts.phone_public),
                    allowed_names: vec!["Dena".into()],
                    staff_names: pb.team.people.iter().map(|p| p.name.clone()).collect(),
                    recent_replies: vec![],
                    other_public_phones: vec![],
                    vocabulary: pb.reply_check.vocabulary.clone(),
                    praise: false,
                    platform: Some(platform.to_string()),
                };
                let findings = compliance::check(&text, &cx);
                assert!(findings.is_empty(), "{} on {platform} for {}: {findings:?}", t.id, site.id);
                assert!(platform_limit(platform).is_none_or(|max| text.chars().count() <= max));
                rendered += 1;
            }
        }
    }
    assert!(rendered >= 7 * 3);
}

async fn draft_switch_and_mark_responded_is_gated_by_the_compliance_check(b: Backend) {
    let e = env(b).await;
    let id =
        ingest(&e.ctx, &[mention("google", "d-1", "Waited 4 hours at Riverside, front desk ignored us", Some(1.0))])
            .await
            .unwrap()[0]
            .case_id();
    act(&e.ctx, id, "sam", Action::Claim).await.unwrap();

    let d = draft(&e.ctx, id, "sam", None).await.unwrap();
    assert_eq!(d.template, "wait-time", "best fit for a wait-time complaint");
    assert!(d.text.contains("patientrelations.riverside@lakeshore-health.example") && d.text.ends_with("— Sam"));
    assert!(d.findings.is_empty(), "{:?}", d.findings);
    assert!(d.alternatives.iter().any(|(t, _)| t == "negative-review"));
    let switched = draft(&e.ctx, id, "sam", Some("negative-review")).await.unwrap();
    assert_eq!(switched.template, "negative-review");
    assert_ne!(switched.text, d.text);

    // An edited text that confirms a visit is refused and changes nothing.
    let bad = format!("{} We reviewed your visit notes.", switched.text);
    let events_before = e.ctx.store.events(id).await.unwrap().len();
    let err =
        act(&e.ctx, id, "sam", Action::Respond { text: Some(bad.clone()), override_block: false }).await.unwrap_err();
    match &err {
        ActError::ReplyBlocked { findings, .. } => {
            assert!(findings[0].contains("patient_relationship"), "{findings:?}")
        }
        other => panic!("expected a block, got {other:?}"),
    }
    assert!(err.to_string().contains("\"your visit\""), "{err}");
    // Only a lead may override.
    let err =
        act(&e.ctx, id, "sam", Action::Respond { text: Some(bad.clone()), override_block: true }).await.unwrap_err();
    assert!(err.to_string().contains("needs the lead role"), "{err}");
    let case = e.ctx.store.case(id).await.unwrap().unwrap();
    assert_eq!(
        (case.state, case.first_response_at, e.ctx.store.events(id).await.unwrap().len()),
        (CaseState::Claimed, None, events_before)
    );

    let done = act(&e.ctx, id, "dena", Action::Respond { text: Some(bad), override_block: true }).await.unwrap();
    assert_eq!(done.case.state, CaseState::Responded);
    assert!(done.case.first_response_at.is_some(), "the first-response clock stops");
    assert_eq!(done.event.detail["override_by"], "dena");
    assert_eq!(done.event.detail["findings"], serde_json::json!(["patient_relationship"]));
    assert_eq!(done.summary, "public reply posted by Dena Ortiz (compliance findings overridden)");
}

async fn a_risk_case_reply_needs_a_leads_approval_of_that_text(b: Backend) {
    let e = env(b).await;
    let id = ingest(
        &e.ctx,
        &[mention("facebook", "d-2", "Wrong medication given to my father at Riverside, talking to a lawyer", None)],
    )
    .await
    .unwrap()[0]
        .case_id();
    act(&e.ctx, id, "sam", Action::Claim).await.unwrap();
    let d = draft(&e.ctx, id, "sam", None).await.unwrap();
    assert_eq!(d.template, "clinical-risk-holding");
    assert!(d.needs_approval);

    let respond = |text: &str| Action::Respond { text: Some(text.to_string()), override_block: false };
    let err = act(&e.ctx, id, "sam", respond(&d.text)).await.unwrap_err();
    assert!(err.to_string().contains("a lead must approve this exact reply"), "{err}");
    let err = act(&e.ctx, id, "sam", Action::Respond { text: None, override_block: false }).await.unwrap_err();
    assert!(err.to_string().contains("record the reply text"), "{err}");
    let err = act(&e.ctx, id, "sam", Action::ApproveReply { text: d.text.clone() }).await.unwrap_err();
    assert!(err.to_string().contains("needs the lead role"), "{err}");

    act(&e.ctx, id, "dena", Action::ApproveReply { text: d.text.clone() }).await.unwrap();
    // A different text is still unapproved; the approved one (re-spaced) goes through.
    let other = d.text.replace("very sorry", "so sorry");
    assert!(act(&e.ctx, id, "sam", respond(&other)).await.is_err());
    let done = act(&e.ctx, id, "sam", respond(&d.text.replace(' ', "  "))).await.unwrap();
    assert_eq!(done.event.detail["approved_by"], "dena");
    assert_eq!(done.case.state, CaseState::Responded);
}

async fn the_same_words_posted_twice_in_a_day_are_flagged_as_canned(b: Backend) {
    let e = env(b).await;
    let ids: Vec<i64> = ingest(
        &e.ctx,
        &[
            mention("google", "d-3", "Rude front desk at Northgate", Some(1.0)),
            mention("google", "d-4", "Rude front desk at Northgate again", Some(1.0)),
        ],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.case_id())
    .collect();
    let d = draft(&e.ctx, ids[0], "grace", None).await.unwrap();
    act(&e.ctx, ids[0], "grace", Action::Respond { text: Some(d.text.clone()), override_block: false }).await.unwrap();
    let again = draft(&e.ctx, ids[1], "grace", Some(&d.template)).await.unwrap();
    let canned: Vec<_> = again.findings.iter().map(|f| (f.rule, f.severity)).collect();
    // The author differs, so the texts differ only if the template names them; same author here.
    assert_eq!(canned, vec![(Rule::Canned, Severity::Warn)]);
    // A warning does not block.
    act(&e.ctx, ids[1], "grace", Action::Respond { text: Some(again.text), override_block: false }).await.unwrap();
}

async fn drafting_for_an_unknown_case_template_or_person_is_a_clear_error(b: Backend) {
    let e = env(b).await;
    let id = ingest(&e.ctx, &[mention("x", "d-5", "Parking at Eastbrook is a mess", None)]).await.unwrap()[0].case_id();
    assert!(matches!(draft(&e.ctx, 4242, "sam", None).await, Err(ActError::UnknownCase(4242))));
    assert!(matches!(draft(&e.ctx, id, "nobody", None).await, Err(ActError::UnknownPerson(_))));
    let err = draft(&e.ctx, id, "sam", Some("negative-review")).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("no reply template \"negative-review\" for x mentions; templates for this case: short-apology-x"),
        "{err}"
    );
    let d = draft(&e.ctx, id, "sam", None).await.unwrap();
    assert_eq!(d.template, "short-apology-x", "X gets the 280-character template");
    assert!(d.text.chars().count() <= 280);
}

on_both_backends!(
    draft_switch_and_mark_responded_is_gated_by_the_compliance_check,
    a_risk_case_reply_needs_a_leads_approval_of_that_text,
    the_same_words_posted_twice_in_a_day_are_flagged_as_canned,
    drafting_for_an_unknown_case_template_or_person_is_a_clear_error,
);
