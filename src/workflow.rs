//! Running a case action: authorise the person from the team file, apply the pure state
//! machine, and persist status + event + chat updates in one transaction. Concurrent
//! actions on one case are serialised by an optimistic version check: exactly one wins,
//! the others re-read the case and get a refusal that names the winner.

use crate::app::Ctx;
use crate::chat::{card::describe_event, ChatOp};
use crate::domain::{apply, Action, CaseState, EscalationTarget, Refusal};
use crate::playbook::{Person, Playbooks};
use crate::store::cases::{self, Stamps};
use crate::store::{is_contention, outbox, CaseRow, EventRow};
use chrono::{DateTime, Utc};

/// What a person sees when an action does not go through.
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    #[error("Case {0} does not exist")]
    UnknownCase(i64),
    #[error("@{0} is not in the team file; ask a lead to add them to playbooks/team.yaml")]
    UnknownPerson(String),
    #[error("Case {case_id} {refusal}")]
    Refused { case_id: i64, refusal: Refusal },
    #[error("{0}")]
    Invalid(String),
    /// Not the person's fault: logged with context; they see a short apology.
    #[error("something went wrong on our side; the case was not changed")]
    Internal(#[from] anyhow::Error),
}

impl ActError {
    /// A mistake the person can fix (as opposed to an internal failure).
    pub fn is_user_error(&self) -> bool {
        !matches!(self, ActError::Internal(_))
    }
}

#[derive(Debug, Clone)]
pub struct Acted {
    pub case: CaseRow,
    pub event: EventRow,
    pub summary: String,
}

/// People an escalation target reaches for this case at `now`.
pub fn resolve_targets<'a>(
    playbooks: &'a Playbooks,
    case: &CaseRow,
    target: &EscalationTarget,
    now: DateTime<Utc>,
) -> Vec<&'a Person> {
    let team = &playbooks.team;
    match target {
        EscalationTarget::SiteOwner => case
            .site
            .as_deref()
            .and_then(|s| team.site(s))
            .and_then(|s| team.person(&s.owner))
            .into_iter()
            .collect(),
        EscalationTarget::Role(r) => team.with_role(*r).collect(),
        EscalationTarget::OnCall(rot) => team
            .rotation(rot)
            .and_then(|r| team.person(r.on_call(now)))
            .into_iter()
            .collect(),
        EscalationTarget::Person(p) => team.person(p).into_iter().collect(),
        EscalationTarget::Channel => Vec::new(),
    }
}

fn validate(ctx: &Ctx, action: &Action) -> Result<(), ActError> {
    let team = &ctx.playbooks.team;
    match action {
        Action::Reassign { to } => match team.person(to) {
            None => Err(ActError::UnknownPerson(to.clone())),
            Some(p) if !p.actor().roles.works_cases() => Err(ActError::Invalid(format!(
                "@{} cannot own cases (needs the agent, lead or risk role)",
                p.id
            ))),
            Some(_) => Ok(()),
        },
        Action::Escalate {
            to: EscalationTarget::Person(p),
            ..
        } if team.person(p).is_none() => Err(ActError::UnknownPerson(p.clone())),
        Action::Escalate {
            to: EscalationTarget::OnCall(r),
            ..
        } if team.rotation(r).is_none() => Err(ActError::Invalid(format!(
            "there is no rotation {r:?} in the team file"
        ))),
        Action::Note { text } if text.trim().is_empty() => {
            Err(ActError::Invalid("a note needs some text".into()))
        }
        _ => Ok(()),
    }
}

/// Runs `action` on case `case_id` as `actor_id` (a team-file person id).
#[tracing::instrument(skip_all, fields(case_id, action = action.name()))]
pub async fn act(
    ctx: &Ctx,
    case_id: i64,
    actor_id: &str,
    action: Action,
) -> Result<Acted, ActError> {
    let person = ctx
        .playbooks
        .team
        .person(actor_id)
        .ok_or_else(|| ActError::UnknownPerson(actor_id.to_string()))?;
    let actor = person.actor();
    validate(ctx, &action)?;
    let mut attempt = 0u64;
    loop {
        attempt += 1;
        match try_act(ctx, case_id, &actor, &action).await {
            Ok(Some(done)) => {
                ctx.outbox_wake.notify_one();
                return Ok(done);
            }
            // Someone changed the case between our read and write: read again and re-decide.
            Ok(None) => {}
            Err(ActError::Internal(e)) if is_contention(&e) && attempt < 20 => {}
            Err(e) => {
                if let ActError::Internal(err) = &e {
                    tracing::error!(case_id, error = %format!("{err:#}"), "case action failed");
                }
                return Err(e);
            }
        }
        if attempt >= 20 {
            return Err(ActError::Internal(anyhow::anyhow!(
                "case {case_id} kept changing; gave up after {attempt} tries"
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(2 * attempt)).await;
    }
}

async fn try_act(
    ctx: &Ctx,
    case_id: i64,
    actor: &crate::domain::Actor,
    action: &Action,
) -> Result<Option<Acted>, ActError> {
    let now_dt = ctx.clock.now();
    let now = now_dt.timestamp_millis();
    let mut tx = ctx.store.begin().await?;
    let case = cases::case_in_tx(&mut tx, case_id)
        .await?
        .ok_or(ActError::UnknownCase(case_id))?;
    let t = apply(&case.status(), actor, action)
        .map_err(|refusal| ActError::Refused { case_id, refusal })?;

    let mut stamps = Stamps::default();
    match (case.state, t.next.state) {
        (CaseState::Open, s) if s != CaseState::Open && s != CaseState::Resolved => {
            stamps.claimed_at = Some(now)
        }
        _ => {}
    }
    if t.next.state == CaseState::Responded {
        stamps.first_response_at = Some(now);
    }
    if t.next.state == CaseState::Resolved && case.state != CaseState::Resolved {
        stamps.resolved_at = Some(now);
    }
    if case.state == CaseState::Resolved && t.next.state != CaseState::Resolved {
        stamps.clear_resolved = true;
    }
    if !cases::update_status(&mut tx, case_id, case.version, &t.next, stamps, now).await? {
        tx.rollback().await.map_err(anyhow::Error::from)?;
        return Ok(None);
    }
    let event_id =
        cases::append_event(&mut tx, case_id, now, &actor.id, t.event, &t.detail).await?;
    let event = EventRow {
        id: event_id,
        case_id,
        at: now,
        actor: actor.id.clone(),
        action: t.event.to_string(),
        detail: t.detail.clone(),
    };
    let summary = describe_event(&event, &ctx.playbooks);
    let mut ops = vec![
        ChatOp::UpdateCard { case_id },
        ChatOp::ThreadReply {
            case_id,
            text: summary.clone(),
        },
    ];
    if let Action::Escalate { to, note } = action {
        let who = ctx
            .playbooks
            .team
            .person(&actor.id)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| actor.id.clone());
        let mut text = format!(
            "Case #{case_id} ({}) was escalated to you by {who}.",
            case.priority.to_uppercase()
        );
        if let Some(n) = note {
            text.push_str(&format!(" Note: {n}"));
        }
        for p in resolve_targets(&ctx.playbooks, &case, to, now_dt) {
            ops.push(ChatOp::DirectMessage {
                person: p.id.clone(),
                text: text.clone(),
            });
        }
    }
    if let Action::Reassign { to } = action {
        ops.push(ChatOp::DirectMessage {
            person: to.clone(),
            text: format!("Case #{case_id} was assigned to you."),
        });
    }
    for op in &ops {
        outbox::enqueue(
            &mut tx,
            Some(case_id),
            op.name(),
            &serde_json::to_string(op).map_err(anyhow::Error::from)?,
            now,
        )
        .await?;
    }
    let case = cases::case_in_tx(&mut tx, case_id)
        .await?
        .ok_or(ActError::UnknownCase(case_id))?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(Some(Acted {
        case,
        event,
        summary,
    }))
}
