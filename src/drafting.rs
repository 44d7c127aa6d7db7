//! Reply drafting: pick the best-fitting template for a case, render it with the case's
//! site contacts and the agent's name, and run the compliance check. The same check gates
//! "mark responded" (see `workflow`), so what a person sees in the draft is what counts.

use crate::ctx::Ctx;
use crate::domain::compliance::{self, Finding, ReplyContext};
use crate::playbook::{Person, ReplyVars};
use crate::store::CaseRow;
use crate::workflow::ActError;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Draft {
    pub case_id: i64,
    pub template: String,
    pub title: String,
    pub text: String,
    pub findings: Vec<Finding>,
    /// Other templates that fit, best first (id, title), to switch to.
    pub alternatives: Vec<(String, String)>,
    /// Clinical/legal-risk cases need a lead's approval before they are marked responded.
    pub needs_approval: bool,
}

/// "24 hours", "2 days", "45 minutes".
pub fn human(span: crate::domain::Span) -> String {
    let mins = span.as_millis() / 60_000;
    match mins {
        m if m < 60 => format!("{m} minutes"),
        m if m < 48 * 60 => format!("{} hours", m / 60),
        m => format!("{} days", m / (24 * 60)),
    }
}

/// The facts the compliance check needs, without the database: the site's (or the
/// organisation's) public phone, who may be named, the platform and its limit, and whether
/// the reply thanks someone for praise. `carebot lint` uses it alone; cases add the
/// replies posted in the last day.
pub fn context_for(
    playbooks: &crate::playbook::Playbooks,
    site: Option<&str>,
    agent: Option<&Person>,
    platform: Option<&str>,
    praise: bool,
) -> ReplyContext {
    let team = &playbooks.team;
    let site = site.and_then(|s| team.site(s));
    let mut allowed = Vec::new();
    if let Some(agent) = agent {
        allowed.extend([agent.first_name().to_string(), agent.name.clone()]);
    }
    if let Some(owner) = site.and_then(|s| team.person(&s.owner)) {
        allowed.push(owner.name.clone());
    }
    if praise {
        // Staff on the recognition list agreed to be named: a thank-you to praise of their
        // site may pass the kind words on to them by name.
        let site_id = site.map(|s| s.id.as_str());
        allowed.extend(
            team.recognition
                .iter()
                .filter(|r| r.site.is_none() || r.site.as_deref() == site_id)
                .flat_map(|r| [r.name.replace(',', " ")].into_iter().chain(r.person_name())),
        );
    }
    ReplyContext {
        max_chars: platform.and_then(compliance::platform_limit),
        public_phone: match site {
            Some(s) => s.contacts.phone.clone().filter(|_| s.contacts.phone_public),
            None => {
                team.organisation.as_ref().and_then(|o| o.contacts.phone.clone().filter(|_| o.contacts.phone_public))
            }
        },
        other_public_phones: team
            .organisation
            .as_ref()
            .and_then(|o| o.contacts.phone.clone().filter(|_| o.contacts.phone_public))
            .into_iter()
            .collect(),
        allowed_names: allowed,
        staff_names: team.staff_names(),
        recent_replies: Vec::new(),
        vocabulary: playbooks.reply_check.vocabulary.clone(),
        praise,
        platform: platform.map(str::to_string),
    }
}

/// The facts the compliance check needs for this case, signed by `agent`.
pub async fn reply_context(
    ctx: &Ctx,
    case: &CaseRow,
    agent: &Person,
    max_chars: Option<usize>,
) -> anyhow::Result<ReplyContext> {
    let platform = ctx.store.mention(case.mention_id).await?.map(|m| m.source);
    let praise = ctx.playbooks().situations.get(&case.situation).is_some_and(|s| s.when.positive == Some(true));
    let mut cx = context_for(&ctx.playbooks(), case.site.as_deref(), Some(agent), platform.as_deref(), praise);
    cx.max_chars = max_chars;
    cx.recent_replies = ctx.store.public_replies_since(ctx.now_ms() - 24 * 3_600_000).await?;
    Ok(cx)
}

/// Checks a final reply text for a case (platform limit from the mention's source).
pub async fn check_reply(ctx: &Ctx, case: &CaseRow, agent: &Person, text: &str) -> anyhow::Result<Vec<Finding>> {
    let mention = ctx
        .store
        .mention(case.mention_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("mention of case {} missing", case.id))?;
    let limit = compliance::platform_limit(&mention.source);
    Ok(compliance::check(text, &reply_context(ctx, case, agent, limit).await?))
}

/// Drafts a reply for `case_id` as `agent_id`, with `template` or the best fit.
#[tracing::instrument(skip_all, fields(case_id))]
pub async fn draft(ctx: &Ctx, case_id: i64, agent_id: &str, template: Option<&str>) -> Result<Draft, ActError> {
    let pb = ctx.playbooks();
    let team = &pb.team;
    let agent = team.person(agent_id).ok_or_else(|| ActError::UnknownPerson(agent_id.to_string()))?;
    let case = ctx.store.case(case_id).await?.ok_or(ActError::UnknownCase(case_id))?;
    let mention = ctx.store.mention(case.mention_id).await?.ok_or(ActError::UnknownCase(case_id))?;
    let replies = &pb.replies;
    let praise_categories = |c: &String| pb.triage_rules.category(c).is_some_and(|r| r.praise);
    let complaint = case.categories.iter().any(|c| !praise_categories(c));
    let praise = case.sentiment == crate::playbook::Sentiment::Positive && !complaint && !case.risk
        || pb.situations.get(&case.situation).is_some_and(|s| s.when.positive == Some(true));
    let fit = crate::playbook::replies::Fit {
        situation: &case.situation,
        categories: &case.categories,
        praise,
        platform: &mention.source,
    };
    let ranked = replies.ranked(&fit);
    let chosen = match template {
        Some(id) => match replies.get(id).filter(|t| t.fits_platform(&mention.source)) {
            Some(t) => t,
            None => {
                let known: Vec<&str> = ranked.iter().map(|t| t.id.as_str()).collect();
                return Err(ActError::Invalid(format!(
                    "there is no reply template {id:?} for {} mentions; templates for this case: {}",
                    mention.source,
                    known.join(", ")
                )));
            }
        },
        None => *ranked.first().ok_or_else(|| {
            ActError::Invalid(format!(
                "no reply template fits a {} mention; add one to playbooks/replies/",
                mention.source
            ))
        })?,
    };
    let situation = pb.situations.get(&case.situation);
    let follow_up = situation
        .and_then(|s| s.sla.follow_up.or(s.sla.first_response))
        .map(human)
        .unwrap_or_else(|| "one business day".into());
    // Confidential cases come from private posts: never address their author by name.
    let author = if case.confidential { None } else { mention.author.as_deref() };
    let vars =
        ReplyVars::new(author, case.site.as_deref().and_then(|s| team.site(s)), team, follow_up, agent.first_name());
    let text =
        replies.render(&chosen.id, &vars).map_err(|e| anyhow::anyhow!("rendering template {}: {e}", chosen.id))?;
    let cx = reply_context(ctx, &case, agent, chosen.limit(&mention.source)).await?;
    let findings = compliance::check(&text, &cx);
    Ok(Draft {
        case_id,
        template: chosen.id.clone(),
        title: chosen.title.clone(),
        text,
        findings,
        alternatives: ranked.iter().filter(|t| t.id != chosen.id).map(|t| (t.id.clone(), t.title.clone())).collect(),
        needs_approval: case.risk,
    })
}

/// What became of a reply someone submitted from chat or `/care respond`.
#[derive(Debug)]
pub enum Replied {
    /// Marked responded with this exact text.
    Responded(Box<crate::workflow::Acted>),
    /// A risk case: the text now waits for a lead's approval.
    SentForApproval,
}

/// The reply flow of the chat surfaces. On a clinical/legal-risk case an agent's text
/// goes to the leads for approval unless a lead already approved that exact text (no text:
/// the approved one); everything else is marked responded, through the compliance gate.
/// A reply is recorded with its text, or with `--no-text` and why; a link only for a reply
/// posted by hand, never with `--publish`.
fn check_reply_options(
    case_id: i64,
    text: Option<&str>,
    approved: bool,
    risk: bool,
    opts: &crate::workflow::ReplyOptions,
) -> Result<(), ActError> {
    let invalid = |m: String| Err(ActError::Invalid(m));
    match (text, &opts.no_text) {
        (_, Some(_)) if risk => {
            return invalid(format!(
                "Case {case_id} is a clinical/legal-risk case: its reply is recorded with the text a lead approved"
            ))
        }
        (Some(_), Some(_)) => return invalid("give the reply text or --no-text with a reason, not both".into()),
        (None, Some(why)) if why.trim().is_empty() => {
            return invalid("--no-text needs the reason no text is recorded (--reason)".into())
        }
        (None, None) if !approved && !risk => {
            return invalid(format!(
                "Case {case_id}: record the reply exactly as posted (--text), or say why there is none \
                 (--no-text --reason R)"
            ))
        }
        _ => {}
    }
    if (opts.publish || opts.private) && opts.no_text.is_some() {
        return invalid("--publish and --private need the reply text".into());
    }
    if let Some(link) = &opts.link {
        if opts.publish {
            return invalid(
                "--link is for a reply you posted yourself; --publish records the platform's own link".into(),
            );
        }
        if !(link.starts_with("https://") || link.starts_with("http://")) {
            return invalid(format!("{link:?} is not a link; give the address of your posted reply"));
        }
    }
    Ok(())
}

#[tracing::instrument(skip_all, fields(case_id))]
pub async fn submit_reply(
    ctx: &Ctx,
    case_id: i64,
    person: &Person,
    text: Option<String>,
    override_block: bool,
    opts: crate::workflow::ReplyOptions,
) -> Result<Replied, ActError> {
    use crate::domain::Action;
    use crate::store::cases::{approved_reply, event_text};
    let case = ctx.store.case(case_id).await?.ok_or(ActError::UnknownCase(case_id))?;
    let text = text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
    let is_lead = person.roles.contains(&crate::domain::Role::Lead);
    let events = ctx.store.events(case_id).await?;
    let approved_text = approved_reply(&events).and_then(event_text).map(str::to_string);
    // A risk case without text is answered below (the lead's approval comes first).
    check_reply_options(case_id, text.as_deref(), approved_text.is_some(), case.risk, &opts)?;
    if opts.link.is_some() && case.confidential {
        return Err(ActError::Invalid(format!(
            "Case {case_id} is confidential (forwarded privately): there is no public reply to link; record it with \
             its text only"
        )));
    }
    if !case.risk || is_lead {
        let text = text.or(approved_text.filter(|_| opts.no_text.is_none()));
        let action = Action::Respond { text, override_block };
        let done = crate::workflow::act_publishing(ctx, case_id, &person.id, action, &opts).await?;
        return Ok(Replied::Responded(Box::new(done)));
    }
    let Some(text) = text.or(approved_text) else {
        return Err(ActError::Invalid(format!(
            "Case {case_id} is a clinical/legal-risk case: write the reply text; a lead approves it before the \
             case is marked responded"
        )));
    };
    let approved = events
        .iter()
        .any(|e| e.action == "approve_reply" && event_text(e).is_some_and(|a| compliance::same_text(a, &text)));
    let action =
        if approved { Action::Respond { text: Some(text), override_block } } else { Action::RequestApproval { text } };
    let done = crate::workflow::act_publishing(ctx, case_id, &person.id, action, &opts).await?;
    Ok(if done.event.action == "request_approval" {
        Replied::SentForApproval
    } else {
        Replied::Responded(Box::new(done))
    })
}
