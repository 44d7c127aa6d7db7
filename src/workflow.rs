//! Running a case action: authorise the person from the team file, apply the pure state
//! machine, and persist status + event + chat updates in one transaction. Concurrent
//! actions on one case are serialised by an optimistic version check: exactly one wins,
//! the others re-read the case and get a refusal that names the winner.

use crate::chat::{card::describe_event, ChatOp};
use crate::ctx::Ctx;
use crate::domain::compliance::{same_text, Finding, Severity};
use crate::domain::{apply, Action, CaseState, EscalationTarget, Role, TriageField};
use crate::playbook::Person;
use crate::store::cases::{self, Stamps};
use crate::store::{is_contention, CaseRow, EventRow};
use chrono::{DateTime, Utc};

pub use crate::errors::ActError;

#[derive(Debug, Clone)]
pub struct Acted {
    pub case: CaseRow,
    pub event: EventRow,
    pub summary: String,
}

impl Acted {
    /// The reply check's findings that went with a reply marked responded or approved
    /// (warnings such as a canned reply included), for the person who did it; "" when none.
    pub fn findings_note(&self) -> String {
        let list: Vec<&str> = self
            .event
            .detail
            .get("findings_text")
            .and_then(|f| f.as_array())
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        if list.is_empty() {
            String::new()
        } else {
            format!("\nReply check findings recorded with it:\n- {}", list.join("\n- "))
        }
    }
}

/// Who is on call in `rotation` at `now`: a current override, else the weekly rotation.
pub async fn on_call(ctx: &Ctx, rotation: &str, now: DateTime<Utc>) -> anyhow::Result<Option<String>> {
    if let Some(p) = ctx.store.oncall_override(rotation, now.timestamp_millis()).await? {
        return Ok(Some(p));
    }
    Ok(ctx.playbooks().team.rotation(rotation).map(|r| r.on_call(now).to_string()))
}

/// People an escalation target reaches for this case at `now`, read inside the case's
/// transaction `tx`.
pub async fn resolve_targets(
    ctx: &Ctx,
    tx: &mut crate::store::Tx<'_>,
    case: &CaseRow,
    target: &EscalationTarget,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<Person>> {
    let team = &ctx.playbooks().team;
    Ok(match target {
        EscalationTarget::SiteOwner => case
            .site
            .as_deref()
            .and_then(|s| team.site(s))
            .and_then(|s| team.person(&s.owner))
            .into_iter()
            .cloned()
            .collect(),
        EscalationTarget::Owner => case.owner.as_deref().and_then(|o| team.person(o)).into_iter().cloned().collect(),
        EscalationTarget::Role(r) => team.with_role(*r).cloned().collect(),
        EscalationTarget::OnCall(rot) => {
            let covering =
                crate::store::escalation::oncall_override_with(&mut **tx, rot, now.timestamp_millis()).await?;
            let who = covering.or_else(|| team.rotation(rot).map(|r| r.on_call(now).to_string()));
            who.and_then(|p| team.person(&p).cloned()).into_iter().collect()
        }
        EscalationTarget::Person(p) => team.person(p).into_iter().cloned().collect(),
        EscalationTarget::Channel => Vec::new(),
    })
}

fn validate(ctx: &Ctx, action: &Action) -> Result<(), ActError> {
    let pb = ctx.playbooks();
    let team = &pb.team;
    match action {
        Action::Reassign { to } => match team.person(to) {
            None => Err(ActError::UnknownPerson(to.clone())),
            Some(p) if !p.actor().roles.works_cases() => {
                Err(ActError::Invalid(format!("@{} cannot own cases (needs the agent, lead or risk role)", p.id)))
            }
            Some(_) => Ok(()),
        },
        Action::Escalate { to: EscalationTarget::Person(p), .. } if team.person(p).is_none() => {
            Err(ActError::UnknownPerson(p.clone()))
        }
        Action::Escalate { to: EscalationTarget::OnCall(r), .. } if team.rotation(r).is_none() => {
            Err(ActError::Invalid(format!("there is no rotation {r:?} in the team file")))
        }
        Action::Note { text } if text.trim().is_empty() => Err(ActError::Invalid("a note needs some text".into())),
        Action::RequestApproval { text } | Action::ApproveReply { text } if text.trim().is_empty() => {
            Err(ActError::Invalid("there is no reply text to approve".into()))
        }
        Action::Reclassify { field: TriageField::Site, value: Some(v) } if team.site(v).is_none() => {
            let known: Vec<&str> = team.sites.iter().map(|s| s.id.as_str()).collect();
            Err(ActError::Invalid(format!("there is no site {v:?}; one of {}, or none", known.join(", "))))
        }
        Action::Reclassify { field: TriageField::Category, value } => match value {
            Some(v) if pb.triage_rules.category(v).is_some() => Ok(()),
            _ => {
                let known: Vec<&str> = pb
                    .triage_rules
                    .rules
                    .iter()
                    .filter(|r| r.kind == crate::playbook::triage_rules::RuleKind::Category)
                    .map(|r| r.id.as_str())
                    .collect();
                Err(ActError::Invalid(format!("name a category: one of {}", known.join(", "))))
            }
        },
        Action::Reclassify { field: TriageField::Situation, value } => match value {
            Some(v) if pb.situations.get(v).is_some() => Ok(()),
            _ => {
                let known: Vec<&str> = pb.situations.situations.iter().map(|s| s.id.as_str()).collect();
                Err(ActError::Invalid(format!("name a situation: one of {}", known.join(", "))))
            }
        },
        Action::Snooze { until } if *until <= ctx.now_ms() => {
            Err(ActError::Invalid("a snooze must end in the future".into()))
        }
        Action::Snooze { until } if *until > ctx.now_ms() + 7 * 24 * 3_600_000 => {
            Err(ActError::Invalid("a snooze can last at most 7 days; escalate or reassign instead".into()))
        }
        Action::RequestChanges { note } if note.trim().is_empty() => {
            Err(ActError::Invalid("say what to change, so the agent knows".into()))
        }
        _ => Ok(()),
    }
}

/// A refusal as a person reads it: owners by name, not by team-file id.
fn refused(ctx: &Ctx, case_id: i64, refusal: crate::domain::Refusal) -> ActError {
    use crate::domain::Refusal;
    let name = |id: String| ctx.playbooks().team.person(&id).map(|p| p.name.clone()).unwrap_or(id);
    let refusal = match refusal {
        Refusal::AlreadyClaimed { owner } => Refusal::AlreadyClaimed { owner: name(owner) },
        Refusal::NotOwner { owner, action } => Refusal::NotOwner { owner: name(owner), action },
        other => other,
    };
    ActError::Refused { case_id, refusal }
}

/// Runs `action` on case `case_id` as `actor_id` (a team-file person id).
#[tracing::instrument(skip_all, fields(case_id, action = action.name()))]
pub async fn act(ctx: &Ctx, case_id: i64, actor_id: &str, action: Action) -> Result<Acted, ActError> {
    act_publishing(ctx, case_id, actor_id, action, &ReplyOptions::default()).await
}

/// How a reply marked responded reached (or reaches) the public.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplyOptions {
    /// carebot posts it to the review's platform (Google, Facebook, X).
    pub publish: bool,
    /// The agent posted it by hand on a page carebot cannot post to: the link to it.
    pub link: Option<String>,
    /// No text is recorded (`--no-text`): why.
    pub no_text: Option<String>,
    /// Facebook: send the reply privately on Messenger (a private reply to the post or
    /// comment) instead of as a public comment. Implies `publish`.
    pub private: bool,
}

/// `act`; with `opts.publish`, a reply marked responded is also posted to the review's
/// platform: checked here (publishing on, platform allowed for the site, length), then
/// queued in the same transaction as the event, and posted by the outbox.
pub async fn act_publishing(
    ctx: &Ctx,
    case_id: i64,
    actor_id: &str,
    action: Action,
    opts: &ReplyOptions,
) -> Result<Acted, ActError> {
    let publish = opts.publish || opts.private;
    let pb = ctx.playbooks();
    let person = pb.team.person(actor_id).ok_or_else(|| ActError::UnknownPerson(actor_id.to_string()))?;
    let actor = person.actor();
    validate(ctx, &action)?;
    if matches!(action, Action::Respond { .. } | Action::RequestApproval { .. }) {
        // Say "the case is resolved" before judging the wording of a reply to it.
        let case = ctx.store.case(case_id).await?.ok_or(ActError::UnknownCase(case_id))?;
        apply(&case.status(), &actor, &action).map_err(|r| refused(ctx, case_id, r))?;
    }
    let extra = match &action {
        Action::Respond { text, override_block } => {
            let mut extra = gate_reply(ctx, case_id, person, text.as_deref(), *override_block).await?;
            if let (Some(e), Some(link)) = (extra.as_object_mut(), &opts.link) {
                e.insert("link".into(), link.clone().into());
            }
            if let (Some(e), Some(why)) = (extra.as_object_mut(), &opts.no_text) {
                e.insert("no_text_reason".into(), why.clone().into());
            }
            if publish {
                let plan = publish_plan(ctx, case_id, text.as_deref(), opts.private).await?;
                if let Some(e) = extra.as_object_mut() {
                    e.insert("publish".into(), serde_json::to_value(plan).map_err(anyhow::Error::from)?);
                }
            }
            extra
        }
        // An agent's reply on a risk case waits for a lead; the wish to publish it is kept,
        // so the approval tells them how to post it.
        Action::RequestApproval { text } => {
            let mut extra = gate_request(ctx, case_id, person, text).await?;
            if let (true, Some(e)) = (publish, extra.as_object_mut()) {
                e.insert("publish".into(), true.into());
            }
            extra
        }
        _ if publish => return Err(ActError::Invalid("only a reply can be published".into())),
        Action::Unpublish { .. } => {
            let plan = remove_plan(ctx, case_id).await?;
            let by_hand = plan.remote_id.is_none();
            serde_json::json!({ "platform": plan.target.platform, "remove": plan, "by_hand": by_hand })
        }
        // A lead approves wording, never a privacy slip: the blocking checks run first.
        Action::ApproveReply { text } => gate_request(ctx, case_id, person, text).await?,
        _ => serde_json::json!({}),
    };
    let mut attempt = 0u64;
    // Conflicts are retried briefly; a lock held longer is answered like an outage.
    let give_up = std::time::Instant::now() + 2 * ctx.settings.database.acquire_timeout.as_std();
    loop {
        attempt += 1;
        match try_act(ctx, case_id, &actor, &action, &extra).await {
            Ok(Some(done)) => {
                ctx.outbox_wake.notify_one();
                return Ok(done);
            }
            // Someone else's change committed (the update waited for it): decide again now.
            Ok(None) if attempt < 20 => continue,
            Ok(None) => {}
            Err(ActError::Internal(e)) if is_contention(&e) && attempt < 20 && std::time::Instant::now() < give_up => {}
            Err(ActError::Internal(e)) if is_contention(&e) => {
                tracing::warn!(case_id, attempts = attempt, error = %format!("{e:#}"), "case action refused: the database stayed locked");
                return Err(ActError::Unavailable);
            }
            // Logged once, where it meets the person (`errors::explain`).
            Err(e) => return Err(e),
        }
        if attempt >= 20 {
            return Err(ActError::Internal(anyhow::anyhow!(
                "case {case_id} kept changing; gave up after {attempt} tries"
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(2 * attempt)).await;
    }
}

/// The compliance and approval gate for "mark responded". Returns what to add to the
/// event: findings accepted, who overrode them, who approved a risk-case reply.
async fn gate_reply(
    ctx: &Ctx,
    case_id: i64,
    person: &Person,
    text: Option<&str>,
    override_block: bool,
) -> Result<serde_json::Value, ActError> {
    let case = ctx.store.case(case_id).await?.ok_or(ActError::UnknownCase(case_id))?;
    let mut extra = serde_json::Map::new();
    let Some(text) = text else {
        if case.risk {
            return Err(ActError::Invalid(format!(
                "Case {case_id} is a clinical/legal-risk case: record the reply text (--text) and have a lead approve it"
            )));
        }
        return Ok(serde_json::Value::Object(extra));
    };
    let findings = crate::drafting::check_reply(ctx, &case, person, text).await?;
    let blocking: Vec<&Finding> = findings.iter().filter(|f| f.severity == Severity::Block).collect();
    if !blocking.is_empty() && !override_block {
        return Err(ActError::ReplyBlocked { case_id, findings: blocking.iter().map(|f| f.to_string()).collect() });
    }
    if !findings.is_empty() {
        extra.insert("findings".into(), findings.iter().map(|f| f.rule.as_str()).collect::<Vec<_>>().into());
        extra.insert("findings_text".into(), findings.iter().map(|f| f.to_string()).collect::<Vec<_>>().into());
    }
    if !blocking.is_empty() {
        extra.insert("override_by".into(), person.id.clone().into());
    }
    if case.risk {
        let approver = if person.roles.contains(&Role::Lead) {
            Some(person.id.clone())
        } else {
            ctx.store.events(case_id).await?.into_iter().rev().find_map(|e| {
                let approved = e.detail.get("text").and_then(|t| t.as_str()).is_some_and(|a| same_text(a, text));
                (e.action == "approve_reply" && approved).then_some(e.actor)
            })
        };
        match approver {
            Some(a) => {
                extra.insert("approved_by".into(), a.into());
            }
            None => {
                return Err(ActError::Invalid(format!(
                    "Case {case_id} is a clinical/legal-risk case: a lead must approve this exact reply first \
                     (carebot case approve {case_id} --text …)"
                )))
            }
        }
    }
    Ok(serde_json::Value::Object(extra))
}

/// Where and how a reply marked responded will be published.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PublishPlan {
    pub target: crate::publish::Target,
    pub dry_run: bool,
    /// Our reply already on the platform (its id): its text is replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit: Option<String>,
    /// Sent privately on Messenger from this Facebook page, not as a public comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_from: Option<String>,
}

/// Checks that the case's reply can be published, before anything is recorded: publishing
/// is on, the platform has a reply API carebot speaks, the site may publish there, the
/// text fits, and the review is known to the platform.
async fn publish_plan(ctx: &Ctx, case_id: i64, text: Option<&str>, private: bool) -> Result<PublishPlan, ActError> {
    use crate::config::PublishMode;
    use crate::publish::{Platform, Target};
    let settings = &ctx.settings.publish;
    if settings.mode == PublishMode::Off {
        return Err(ActError::Invalid(
            "publishing is off (publish.mode in config/carebot.toml); post the reply on the platform and mark it \
             responded without --publish"
                .into(),
        ));
    }
    let Some(text) = text else {
        return Err(ActError::Invalid("--publish needs the reply text (--text)".into()));
    };
    let case = ctx.store.case(case_id).await?.ok_or(ActError::UnknownCase(case_id))?;
    let mention = ctx.store.mention(case.mention_id).await?.ok_or(ActError::UnknownCase(case_id))?;
    if case.confidential {
        return Err(ActError::Invalid(format!(
            "Case {case_id} is confidential (forwarded privately): nothing is published"
        )));
    }
    let Some(platform) = Platform::of_source(&mention.source) else {
        let page = mention.url.as_deref().map(|u| format!(" ({u})")).unwrap_or_default();
        return Err(ActError::Invalid(format!(
            "{} has no reply API carebot can post to: post the reply on the page yourself{page}, then mark it \
             responded without --publish",
            mention.source
        )));
    };
    let site = case.site.as_deref().unwrap_or("");
    let allowed = settings.sites.get(site).is_some_and(|p| p.iter().any(|x| x == platform.id()));
    if !allowed {
        let where_ = ctx.playbooks().team.site(site).map_or("a mention with no site".to_string(), |s| s.name.clone());
        return Err(ActError::Invalid(format!(
            "publishing to {} is not enabled for {where_} (publish.sites in config/carebot.toml)",
            platform.name()
        )));
    }
    let secrets = &ctx.settings.secrets;
    let missing = match platform {
        Platform::Google => (secrets.google_refresh_token.is_none() || secrets.google_client_id.is_none())
            .then_some("GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET and GOOGLE_REFRESH_TOKEN"),
        Platform::Facebook => secrets.facebook_page_token.is_none().then_some("FACEBOOK_PAGE_TOKEN"),
        Platform::X => secrets.x_user_token.is_none().then_some("X_USER_TOKEN"),
    };
    if let (Some(vars), PublishMode::Live) = (missing, settings.mode) {
        return Err(ActError::Invalid(format!(
            "publishing to {} needs {vars} in carebot's environment",
            platform.name()
        )));
    }
    let events = ctx.store.events(case_id).await?;
    if private {
        if platform != Platform::Facebook {
            return Err(ActError::Invalid(format!(
                "a private reply goes by Messenger to a Facebook post or comment; this case is from {}",
                platform.name()
            )));
        }
        if events.iter().any(|e| e.action == "published" && e.detail["private"] == true) {
            return Err(ActError::Invalid(format!(
                "Case {case_id} already had its private reply: Facebook allows one per post or comment; continue in \
                 the Page inbox"
            )));
        }
        let page = ctx.settings.sources.facebook.pages.iter().find(|(_, s)| s.as_str() == site).map(|(p, _)| p);
        let Some(page) = page else {
            return Err(ActError::Invalid(format!(
                "no Facebook page for this site in sources.facebook.pages, so carebot cannot tell which page sends \
                 the private reply for case {case_id}"
            )));
        };
        let plan = PublishPlan {
            target: Target { platform, object: mention.external_id.clone() },
            dry_run: settings.mode == PublishMode::DryRun,
            edit: None,
            private_from: Some(page.clone()),
        };
        return Ok(plan);
    }
    // Our reply already there: a second publish changes its text (X cannot: take it down first).
    let edit = match crate::publish::live_reply(&events, platform) {
        None => None,
        Some(_) if !platform.can_edit() => {
            return Err(ActError::Invalid(format!(
                "Case {case_id} already has our reply on {0}, and {0} posts cannot be edited: take it down first \
                 (carebot case unpublish {case_id}), then publish the new text",
                platform.name()
            )))
        }
        Some(done) => match done.detail["remote_id"].as_str() {
            Some(id) => Some(id.to_string()),
            None => {
                return Err(ActError::Invalid(format!(
                    "Case {case_id}: {} did not tell us the id of our reply, so carebot cannot change it; edit it on \
                     the platform",
                    platform.name()
                )))
            }
        },
    };
    let chars = platform.length(text);
    if chars > platform.max_chars() {
        let counted = if platform == Platform::X { " as X counts them (a link is 23, an emoji 2)" } else { "" };
        return Err(ActError::Invalid(format!(
            "{} takes at most {} characters; this reply has {chars}{counted}",
            platform.name(),
            platform.max_chars()
        )));
    }
    let object = match platform {
        Platform::Google => {
            let locations: Vec<_> =
                ctx.settings.sources.google_business.locations.iter().filter(|l| l.site == site).collect();
            match locations.as_slice() {
                [one] => format!("{}/reviews/{}", one.id.trim_matches('/'), mention.external_id),
                _ => {
                    return Err(ActError::Invalid(format!(
                        "Case {case_id}: which Google location the review belongs to is not known \
                         (sources.google_business.locations needs exactly one location for this site)"
                    )))
                }
            }
        }
        Platform::Facebook | Platform::X => mention.external_id.clone(),
    };
    Ok(PublishPlan {
        target: Target { platform, object },
        dry_run: settings.mode == PublishMode::DryRun,
        edit,
        private_from: None,
    })
}

/// What `unpublish` takes down: our live reply on the review's platform.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RemovePlan {
    pub target: crate::publish::Target,
    /// `None`: carebot has no id for it; it is deleted by hand and only recorded here.
    pub remote_id: Option<String>,
}

async fn remove_plan(ctx: &Ctx, case_id: i64) -> Result<RemovePlan, ActError> {
    use crate::config::PublishMode;
    use crate::publish::Platform;
    let case = ctx.store.case(case_id).await?.ok_or(ActError::UnknownCase(case_id))?;
    let mention = ctx.store.mention(case.mention_id).await?.ok_or(ActError::UnknownCase(case_id))?;
    let nothing = || ActError::Invalid(format!("Case {case_id} has no reply published by carebot to take down"));
    let platform = Platform::of_source(&mention.source).ok_or_else(nothing)?;
    let events = ctx.store.events(case_id).await?;
    let live = crate::publish::live_reply(&events, platform).ok_or_else(nothing)?;
    match ctx.settings.publish.mode {
        PublishMode::Live => {}
        mode => {
            return Err(ActError::Invalid(format!(
                "publish.mode is {} here, so nothing is sent to {}: take the reply down on the platform",
                if mode == PublishMode::Off { "off" } else { "dry-run" },
                platform.name()
            )))
        }
    }
    // A post whose id the platform never gave us (X's answer lost, then "duplicate"):
    // carebot cannot delete it; the person deletes it by hand and this records that.
    let remote_id = live.detail["remote_id"].as_str().map(str::to_string);
    let target: crate::publish::Target = serde_json::from_value(serde_json::json!({
        "platform": platform, "object": live.detail["object"],
    }))
    .map_err(anyhow::Error::from)?;
    Ok(RemovePlan { target, remote_id })
}

/// A reply sent for approval must already pass the blocking checks: a lead approves
/// wording, not a privacy slip. The findings go with the request for the lead to read.
async fn gate_request(ctx: &Ctx, case_id: i64, person: &Person, text: &str) -> Result<serde_json::Value, ActError> {
    let case = ctx.store.case(case_id).await?.ok_or(ActError::UnknownCase(case_id))?;
    let findings = crate::drafting::check_reply(ctx, &case, person, text).await?;
    let blocking: Vec<String> =
        findings.iter().filter(|f| f.severity == Severity::Block).map(|f| f.to_string()).collect();
    if !blocking.is_empty() {
        return Err(ActError::ReplyBlocked { case_id, findings: blocking });
    }
    let shown: Vec<String> = findings.iter().map(|f| f.to_string()).collect();
    Ok(serde_json::json!({ "findings": shown, "findings_text": shown }))
}

async fn try_act(
    ctx: &Ctx,
    case_id: i64,
    actor: &crate::domain::Actor,
    action: &Action,
    extra: &serde_json::Value,
) -> Result<Option<Acted>, ActError> {
    let pb = ctx.playbooks();
    let now_dt = ctx.clock.now();
    let now = now_dt.timestamp_millis();
    // Read and decided before any transaction opens: a refused click ("already claimed")
    // costs one read; the version check in the update catches a case changed since.
    let case = ctx.store.case(case_id).await?.ok_or(ActError::UnknownCase(case_id))?;
    let mut t = apply(&case.status(), actor, action).map_err(|r| refused(ctx, case_id, r))?;
    if let (Some(detail), Some(more)) = (t.detail.as_object_mut(), extra.as_object()) {
        detail.extend(more.clone());
    }

    let mut stamps = Stamps::default();
    match (case.state, t.next.state) {
        (CaseState::Open, s) if s != CaseState::Open && s != CaseState::Resolved => stamps.claimed_at = Some(now),
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
    // Which playbooks decided it (a reload changes rules; the history says which applied).
    if let Some(d) = t.detail.as_object_mut() {
        d.insert("playbooks".into(), serde_json::json!(ctx.playbook_version()));
    }
    // Most actions (claim, release, resolve, notes, replies) touch the case, its history and
    // the chat queue only: on PostgreSQL they are one statement, one round trip, one commit.
    // The others read more in the transaction, or their messages name the event's id.
    let in_one = ctx.store.backend() == crate::store::Backend::Postgres
        && !matches!(
            action,
            Action::JudgeRisk { .. }
                | Action::RequestApproval { .. }
                | Action::ApproveReply { .. }
                | Action::RequestChanges { .. }
                | Action::Reclassify { .. }
                | Action::Snooze { .. }
                | Action::Escalate { .. }
        )
        && extra.get("publish").is_none();
    if in_one {
        let mut event = EventRow {
            id: 0,
            case_id,
            at: now,
            actor: actor.id.clone(),
            action: t.event.to_string(),
            detail: t.detail.clone(),
        };
        let summary = describe_event(&event, &pb);
        let ops = chat_ops(ctx, &case, actor, action, &event, &summary, None, extra, Vec::new(), Vec::new())?;
        let rows = crate::chat::outbox_rows(&ops, &case, now)?;
        let event_of = (actor.id.as_str(), t.event, &t.detail);
        let done = cases::act_in_one(&ctx.store, case_id, case.version, &t.next, stamps, now, event_of, &rows).await?;
        return Ok(done.map(|(case, id)| {
            event.id = id;
            Acted { case, event, summary }
        }));
    }

    let mut tx = ctx.store.begin().await?;
    // A possible-risk verdict moves the case to the situation it decides.
    let judged = match action {
        Action::JudgeRisk { confirm } => Some(judged_situation(ctx, &mut tx, &case, *confirm).await?),
        _ => None,
    };
    // Who asked for the approval a lead now decides (read before this event is added).
    let requester = match action {
        Action::ApproveReply { .. } | Action::RequestChanges { .. } => {
            let events = cases::events_with(&mut *tx, case_id).await?;
            cases::awaiting_approval(&events).map(|e| (e.actor.clone(), e.detail["publish"] == true))
        }
        _ => None,
    };
    let Some(updated) = cases::update_status_returning(&mut tx, case_id, case.version, &t.next, stamps, now).await?
    else {
        tx.rollback().await.map_err(anyhow::Error::from)?;
        return Ok(None);
    };
    if let Action::Snooze { until } = action {
        cases::set_snooze(&mut tx, case_id, *until).await?;
    }
    let mut new_channels = Vec::new();
    if let Some(to) = &judged {
        let from = reclassify(ctx, &mut tx, &case, TriageField::Situation, Some(to), &mut new_channels).await?;
        if let Some(d) = t.detail.as_object_mut() {
            d.insert("from".into(), from);
            d.insert("to".into(), serde_json::json!(to));
        }
    }
    if let Action::Reclassify { field, value } = action {
        let from = reclassify(ctx, &mut tx, &case, *field, value.as_deref(), &mut new_channels).await?;
        if let Some(d) = t.detail.as_object_mut() {
            d.insert("from".into(), from);
        }
    }
    let event_id = cases::append_event(&mut tx, case_id, now, &actor.id, t.event, &t.detail).await?;
    let event = EventRow {
        id: event_id,
        case_id,
        at: now,
        actor: actor.id.clone(),
        action: t.event.to_string(),
        detail: t.detail.clone(),
    };
    let summary = describe_event(&event, &pb);
    let targets = match action {
        Action::Escalate { to, .. } => resolve_targets(ctx, &mut tx, &case, to, now_dt).await?,
        _ => Vec::new(),
    };
    let ops = chat_ops(ctx, &case, actor, action, &event, &summary, requester.as_ref(), extra, targets, new_channels)?;
    // A snooze or a new situation changed the row again since the update returned it.
    let case = match (action, &judged) {
        (Action::Snooze { .. } | Action::Reclassify { .. }, _) | (_, Some(_)) => {
            cases::case_in_tx(&mut tx, case_id).await?.ok_or(ActError::UnknownCase(case_id))?
        }
        _ => updated,
    };
    crate::chat::queue_for_case(&mut tx, ctx.store.backend(), &ops, &case, now).await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(Some(Acted { case, event, summary }))
}

/// What an action tells chat: the card redrawn, the step line (thread, channel or none),
/// DMs to whoever it reaches, the approval round, a reply to publish or remove, and the
/// card posted to channels a new situation adds.
#[allow(clippy::too_many_arguments)]
fn chat_ops(
    ctx: &Ctx,
    case: &CaseRow,
    actor: &crate::domain::Actor,
    action: &Action,
    event: &EventRow,
    summary: &str,
    requester: Option<&(String, bool)>,
    extra: &serde_json::Value,
    escalated_to: Vec<Person>,
    new_channels: Vec<String>,
) -> Result<Vec<ChatOp>, ActError> {
    let pb = ctx.playbooks();
    let case_id = case.id;
    let summary = summary.to_string();
    let mut ops = vec![ChatOp::UpdateCard { case_id }];
    let lines = pb.situations.get(&case.situation).map(|s| s.step_lines).unwrap_or_default();
    // Escalating to the channel notifies it (`@here`), whatever the situation's step lines.
    let here = matches!(action, Action::Escalate { to: EscalationTarget::Channel, .. });
    match lines {
        _ if here => ops.push(ChatOp::ThreadReply { case_id, text: summary.clone(), here: true }),
        crate::playbook::StepLines::Thread => {
            ops.push(ChatOp::ThreadReply { case_id, text: summary.clone(), here: false })
        }
        crate::playbook::StepLines::Channel => ops.push(ChatOp::ChannelMessage {
            channel: case.channel.clone(),
            text: format!("Case #{case_id}: {summary}"),
        }),
        crate::playbook::StepLines::Off => {}
    }
    if let Action::Escalate { note, .. } = action {
        let who = pb.team.person(&actor.id).map(|p| p.name.clone()).unwrap_or_else(|| actor.id.clone());
        let mut text = format!("Case #{case_id} ({}) was escalated to you by {who}.", case.priority);
        if let Some(n) = note {
            text.push_str(&format!(" Note: {n}"));
        }
        for p in &escalated_to {
            ops.push(ChatOp::DirectMessage {
                person: p.id.clone(),
                text: text.clone(),
                case_id: Some(case_id),
                nudge: true,
                approve: None,
            });
        }
    }
    if let Action::Reassign { to } = action {
        ops.push(ChatOp::DirectMessage {
            person: to.clone(),
            text: {
                let who = pb.team.person(&actor.id).map_or(actor.id.as_str(), |p| p.name.as_str());
                let label = pb.situations.get(&case.situation).map_or("", |s| s.label.as_str());
                format!("Case #{case_id} ({} · {label}) was assigned to you by {who}.", case.priority)
            },
            case_id: Some(case_id),
            nudge: true,
            approve: None,
        });
    }
    ops.extend(approval_messages(ctx, case, &actor.id, action, requester, event));
    if let (Some(plan), Action::Respond { text: Some(text), .. }) = (extra.get("publish"), action) {
        let plan: PublishPlan = serde_json::from_value(plan.clone()).map_err(anyhow::Error::from)?;
        ops.push(ChatOp::PublishReply {
            case_id,
            target: plan.target,
            text: text.clone(),
            by: actor.id.clone(),
            dry_run: plan.dry_run,
            edit: plan.edit,
            after: Some(event.id),
            private_from: plan.private_from,
        });
    }
    if let (Some(plan), Action::Unpublish { .. }) = (extra.get("remove"), action) {
        let plan: RemovePlan = serde_json::from_value(plan.clone()).map_err(anyhow::Error::from)?;
        let by = actor.id.clone();
        if let Some(remote_id) = plan.remote_id {
            ops.push(ChatOp::RemoveReply { case_id, target: plan.target, remote_id, by });
        }
    }
    ops.extend(new_channels.into_iter().map(|channel| ChatOp::PostCard { case_id, channel }));
    Ok(ops)
}

/// The direct messages of the reply-approval round: a request reaches every lead; a
/// decision reaches the person who asked.
fn approval_messages(
    ctx: &Ctx,
    case: &CaseRow,
    actor: &str,
    action: &Action,
    requester: Option<&(String, bool)>,
    event: &EventRow,
) -> Vec<ChatOp> {
    let team = &ctx.playbooks().team;
    let who = team.person(actor).map(|p| p.name.clone()).unwrap_or_else(|| actor.to_string());
    let id = case.id;
    let dm = |person: &str, text: String| ChatOp::DirectMessage {
        person: person.to_string(),
        text,
        case_id: Some(id),
        nudge: false,
        approve: None,
    };
    match action {
        Action::RequestApproval { text } => {
            let findings: Vec<&str> = event
                .detail
                .get("findings")
                .and_then(|f| f.as_array())
                .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            let findings = if findings.is_empty() {
                "Compliance: no findings.".to_string()
            } else {
                format!("Findings:\n- {}", findings.join("\n- "))
            };
            team.with_role(Role::Lead)
                .filter(|p| p.id != actor)
                .map(|lead| ChatOp::DirectMessage {
                    person: lead.id.clone(),
                    text: format!(
                        "{who} asks you to approve a reply for case #{id} ({}):\n\n{text}\n\n{findings}\n\
                         Approve reply approves exactly this text; Request changes sends it back \
                         (or `/care approve {id}` / `/care changes {id} WHAT TO CHANGE`).",
                        case.priority
                    ),
                    case_id: Some(id),
                    nudge: true,
                    approve: Some(event.id),
                })
                .collect()
        }
        Action::ApproveReply { .. } => requester
            .filter(|(r, _)| r != actor)
            .map(|(r, publish)| {
                let how = if *publish {
                    format!(
                        "Nothing is posted yet: publish it with `/care respond {id} --publish` (or Draft reply on the \
                         card, then tick Post it on …); carebot posts exactly the approved text."
                    )
                } else {
                    format!(
                        "Post it, then mark the case responded: Draft reply on the card (the approved text is filled \
                         in) or `/care respond {id}`."
                    )
                };
                dm(r, format!("{who} approved your reply for case #{id}. {how}"))
            })
            .into_iter()
            .collect(),
        Action::RequestChanges { note } => requester
            .filter(|(r, _)| r != actor)
            .map(|(r, _)| r.as_str())
            .map(|r| dm(r, format!("{who} sent your reply for case #{id} back: {note}")))
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

/// Applies a triage correction inside the case's transaction; returns what it was. A new
/// A case triage flagged as possible risk that is not (yet) a risk case, whatever
/// situation it went to.
pub fn flagged_possible_risk(case: &CaseRow) -> bool {
    !case.risk && case.reasons.iter().any(|r| r.kind == "possible_risk")
}

/// Where a possible-risk case goes on a verdict: confirmed, the first risk situation;
/// dismissed, the situation its mention would have had without the possible-risk flag.
async fn judged_situation(
    ctx: &Ctx,
    tx: &mut crate::store::Tx<'_>,
    case: &CaseRow,
    confirm: bool,
) -> Result<String, ActError> {
    let book = &ctx.playbooks().situations;
    let in_possible = book.get(&case.situation).is_some_and(|s| s.when.possible_risk == Some(true));
    if !in_possible {
        let events = cases::events_with(&mut **tx, case.id).await?;
        if let Some(e) = events.iter().rev().find(|e| e.action == "confirm_risk" || e.action == "dismiss_risk") {
            let who = ctx.playbooks().team.person(&e.actor).map(|p| p.name.clone()).unwrap_or_else(|| e.actor.clone());
            let what = if e.action == "confirm_risk" { "confirmed" } else { "dismissed" };
            return Err(ActError::Invalid(format!("case {}'s possible risk was already {what} by {who}", case.id)));
        }
        if !flagged_possible_risk(case) {
            return Err(ActError::Invalid(format!(
                "case {} is not marked possible risk; to change its situation, a lead uses `set {} situation …`",
                case.id, case.id
            )));
        }
        // Flagged possible risk in another situation (someone on site now): dismissed, it
        // stays where it is; confirmed, it becomes a risk case like any other.
        if !confirm {
            return Ok(case.situation.clone());
        }
    }
    if confirm {
        let risk = book.situations.iter().find(|s| s.when.risk == Some(true)).ok_or_else(|| {
            ActError::Invalid("situations.yaml has no situation for risk (`when: { risk: true }`)".into())
        })?;
        return Ok(risk.id.clone());
    }
    let mention = cases::mention_in_tx(tx, case.mention_id).await?;
    let fallback = || book.situations.last().map(|s| s.id.clone()).unwrap_or_default();
    let Some(m) = mention.and_then(|m| m.as_mention().ok()) else { return Ok(fallback()) };
    let mut t = ctx.triage().triage(&m);
    t.possible_risk = false;
    t.risk = false;
    t.site = case.site.clone();
    Ok(book.pick(&t, &m).id.clone())
}

/// situation brings its priority, its SLA due times (from when the case opened) and its
/// channels, whose cards are added to `new_channels`.
async fn reclassify(
    ctx: &Ctx,
    tx: &mut crate::store::Tx<'_>,
    case: &CaseRow,
    field: TriageField,
    value: Option<&str>,
    new_channels: &mut Vec<String>,
) -> anyhow::Result<serde_json::Value> {
    let pb = ctx.playbooks();
    Ok(match field {
        TriageField::Site => {
            cases::set_site_and_categories(tx, case.id, value, &case.categories, &case.reasons).await?;
            serde_json::json!(case.site)
        }
        TriageField::Category => {
            // The card's tags follow: the detected category tags give way to the lead's.
            let categories: Vec<String> = value.map(str::to_string).into_iter().collect();
            let mut reasons: Vec<_> = case.reasons.iter().filter(|r| r.kind != "category").cloned().collect();
            reasons.extend(categories.iter().map(|c| crate::playbook::triage::Reason {
                kind: "category".into(),
                rule: c.clone(),
                matched: "set by a lead".into(),
            }));
            cases::set_site_and_categories(tx, case.id, case.site.as_deref(), &categories, &reasons).await?;
            serde_json::json!(case.categories)
        }
        TriageField::Situation => {
            let s = value
                .and_then(|v| pb.situations.get(v))
                .ok_or_else(|| anyhow::anyhow!("situation {value:?} vanished from the playbook"))?;
            let due = |span: Option<crate::domain::Span>| span.map(|d| case.opened_at + d.as_millis());
            let change = cases::SituationChange {
                situation: s.id.clone(),
                priority: s.priority,
                channel: s.channel.clone(),
                ack_due: due(s.sla.acknowledge),
                response_due: due(s.sla.first_response),
                follow_up_due: due(s.sla.follow_up),
                resolve_due: due(s.sla.resolve),
                risk: case.risk || s.when.risk == Some(true),
            };
            cases::set_situation(tx, case.id, &change).await?;
            new_channels.extend(std::iter::once(&s.channel).chain(&s.also_post_to).cloned());
            serde_json::json!(case.situation)
        }
    })
}
