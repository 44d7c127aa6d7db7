//! What people read about cases, the same in the terminal and in chat: the card of a
//! case, its history, a draft with its findings, who is on call — and the actions people
//! take from either place. The CLI (`ops`) and the chat layer (`chat::interact`) both
//! call these, so the two never drift apart.

use crate::chat::{Card, DeliveryError};
use crate::clock::from_ms;
use crate::ctx::Ctx;
use crate::errors::ActError;
use crate::workflow::act;

/// The current card of a case, as the surfaces show it.
pub async fn card_for(ctx: &Ctx, case_id: i64) -> Result<Card, DeliveryError> {
    let internal = |e: anyhow::Error| DeliveryError::Transient(format!("{e:#}"));
    let case = ctx
        .store
        .case(case_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| DeliveryError::Permanent(format!("case {case_id} not found")))?;
    let mention = ctx
        .store
        .mention(case.mention_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| DeliveryError::Permanent(format!("mention of case {case_id} not found")))?;
    let events = ctx.store.events(case_id).await.map_err(internal)?;
    Ok(Card::build(&case, &mention, &events, &ctx.playbooks()))
}

/// A draft, its compliance findings, whether it needs a lead's approval and the other
/// templates to switch to.
pub fn draft_text(d: &crate::drafting::Draft) -> String {
    let mut out = format!("Draft for case #{} — template {} ({})\n\n{}\n\n", d.case_id, d.template, d.title, d.text);
    if d.findings.is_empty() {
        out.push_str("Compliance: no findings.\n");
    } else {
        out.push_str("Compliance findings:\n");
        for f in &d.findings {
            out.push_str(&format!("  - {f}\n"));
        }
    }
    if d.needs_approval {
        out.push_str(
            "This is a clinical/legal-risk case: a lead must approve the exact reply before it is marked responded.\n",
        );
    }
    if !d.alternatives.is_empty() {
        let alts: Vec<&str> = d.alternatives.iter().map(|(id, _)| id.as_str()).collect();
        out.push_str(&format!("Other templates: {}\n", alts.join(", ")));
    }
    out.trim_end().to_string()
}

pub fn fmt_time(ms: Option<i64>) -> String {
    ms.map(|m| from_ms(m).format("%Y-%m-%d %H:%M").to_string()).unwrap_or_else(|| "-".into())
}

/// `carebot case show N`: the card, the history and delivery state.
pub async fn case_show(ctx: &Ctx, id: i64, json: bool) -> Result<String, ActError> {
    let case = ctx.store.case(id).await?.ok_or(ActError::UnknownCase(id))?;
    let mention = ctx.store.mention(case.mention_id).await?.ok_or(ActError::UnknownCase(id))?;
    let events = ctx.store.events(id).await?;
    let messages = ctx.store.case_messages(id).await?;
    if json {
        let v = serde_json::json!({ "case": case, "mention": mention, "events": events, "messages": messages });
        return Ok(serde_json::to_string_pretty(&v).map_err(anyhow::Error::from)?);
    }
    let mut card = crate::chat::Card::build(&case, &mention, &events, &ctx.playbooks());
    // Read here, not clicked: no button labels.
    card.buttons.clear();
    let mut out = card.to_text().trim_end().to_string();
    out.push('\n');
    out.push_str("\nHistory:\n");
    for e in &events {
        let line = crate::chat::card::describe_event(e, &ctx.playbooks());
        let note = e.detail.get("note").or_else(|| e.detail.get("text")).and_then(|v| v.as_str());
        let note = note.map(|n| format!(" — {n}")).unwrap_or_default();
        out.push_str(&format!("  {}  {line}{note}\n", fmt_time(Some(e.at))));
    }
    Ok(out)
}

/// Runs a case action for the CLI and returns the confirmation line.
pub async fn case_act(ctx: &Ctx, id: i64, who: &str, action: crate::domain::Action) -> Result<String, ActError> {
    let done = act(ctx, id, who, action).await?;
    // "(now …)" only where the step changed the state and does not already say so.
    let state = done.case.state.as_str();
    let note = done.findings_note();
    if done.summary.contains(state) || !done.event.detail.is_object() || !changes_state(&done.event.action) {
        return Ok(format!("Case {id}: {}{note}", done.summary));
    }
    Ok(format!("Case {id}: {} (now {state}){note}", done.summary))
}

fn changes_state(event: &str) -> bool {
    matches!(
        event,
        "claim" | "release" | "reassign" | "respond" | "offline" | "resolve" | "reopen" | "request_approval"
    )
}

/// `carebot oncall`: who covers each rotation now, and until when any override runs.
pub async fn oncall_show(ctx: &Ctx) -> anyhow::Result<String> {
    let now = ctx.clock.now();
    let mut out = String::new();
    for r in &ctx.playbooks().team.rotations {
        let who = crate::workflow::on_call(ctx, &r.id, now).await?.unwrap_or_default();
        let name = ctx.playbooks().team.person(&who).map(|p| p.name.clone()).unwrap_or(who.clone());
        let how = match ctx.store.oncall_override(&r.id, now.timestamp_millis()).await? {
            Some(_) => "override",
            None => "rotation",
        };
        out.push_str(&format!("{}: {name} (@{who}, {how})\n", r.id));
    }
    Ok(out.trim_end().to_string())
}

/// `carebot oncall set ROTATION PERSON --until T --as LEAD`: a temporary override.
pub async fn oncall_set(
    ctx: &Ctx,
    rotation: &str,
    person: &str,
    until: chrono::DateTime<chrono::Utc>,
    by: &str,
) -> Result<String, ActError> {
    let team = &ctx.playbooks().team;
    let setter = team.person(by).ok_or_else(|| ActError::UnknownPerson(by.to_string()))?;
    if !setter.roles.contains(&crate::domain::Role::Lead) {
        return Err(ActError::Invalid(format!("{} cannot change the on-call: that needs the lead role", setter.name)));
    }
    if team.rotation(rotation).is_none() {
        return Err(ActError::Invalid(format!("there is no rotation {rotation:?} in the team file")));
    }
    let p = team.person(person).ok_or_else(|| ActError::UnknownPerson(person.trim_start_matches('@').to_string()))?;
    if !p.actor().roles.works_cases() {
        return Err(ActError::Invalid(format!(
            "{} cannot be on call: on-call nudges need someone who can work cases (agent, lead or risk)",
            p.name
        )));
    }
    let now = ctx.clock.now();
    if until <= now {
        return Err(ActError::Invalid(format!("--until {} is not in the future", until.to_rfc3339())));
    }
    ctx.store.set_oncall_override(rotation, &p.id, until.timestamp_millis(), by, now.timestamp_millis()).await?;
    Ok(format!(
        "{} covers {rotation} until {}",
        p.name,
        until.with_timezone(&team.timezone).format("%a %Y-%m-%d %H:%M %Z")
    ))
}
