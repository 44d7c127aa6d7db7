//! Running what people do in chat — `/care` commands, card buttons, form submissions — on
//! the core, the same way the CLI does. Platform adapters (Slack, Discord) only translate
//! their payloads into these calls and lay out the neutral answers they return.

use super::command::{usage, Command, Press};
use super::Button;
use crate::clock::from_ms;
use crate::ctx::Ctx;
use crate::domain::{Action, EscalationTarget, OfflineVia, Outcome, RawMention, Visibility};
use crate::playbook::Person;
use crate::store::{CaseFilter, CaseRow};
use crate::workflow::{act, ActError};

/// Who clicked or typed, as the platform names them.
#[derive(Debug, Clone, Copy)]
pub enum Who<'a> {
    Slack(&'a str),
    Discord(&'a str),
}

/// The team-file person behind a chat user, or the refusal to show them.
pub fn person(ctx: &Ctx, who: Who<'_>) -> Result<Person, String> {
    let pb = ctx.playbooks();
    let team = &pb.team;
    let found = match who {
        Who::Slack(id) => team.person_by_slack(id),
        Who::Discord(id) => team.person_by_discord(id),
    };
    found.cloned().ok_or_else(|| {
        "You are not in carebot's team file, so you cannot work cases. Ask a PX lead to add you \
         (playbooks/team.yaml)."
            .to_string()
    })
}

/// A question to ask before acting (a Slack modal; on Discord a select menu, or a modal
/// when it needs text).
#[derive(Debug, Clone, PartialEq)]
pub struct Form {
    pub kind: FormKind,
    pub case_id: i64,
    pub title: String,
    /// The label of the choices; no choices, no select.
    pub prompt: String,
    pub choices: Vec<Choice>,
    /// The choice selected when the form opens (the reply form's template).
    pub chosen: Option<String>,
    /// A text field.
    pub text: Option<TextField>,
    /// Lines shown above the fields (a draft's compliance findings).
    pub info: Vec<String>,
    /// Offer a lead's "accept blocking findings" tick box.
    pub can_override: bool,
    /// The reply form: offer "also post it on PLATFORM" (its name; publishing is on there).
    pub publish_to: Option<String>,
    /// The reply form on a page carebot cannot post to: ask for the link of the posted reply.
    pub ask_link: bool,
    pub submit: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TextField {
    pub label: String,
    pub initial: String,
    pub required: bool,
}

impl TextField {
    fn note() -> TextField {
        TextField { label: "Note (no patient details)".into(), initial: String::new(), required: false }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormKind {
    Escalate,
    Resolve,
    Offline,
    Reassign,
    Note,
    /// A lead sends a waiting reply back.
    Changes,
    /// The reply editor: template, text, findings; submitting marks the case responded or
    /// sends the text for approval.
    Reply,
    Snooze,
    /// A lead corrects the site or the situation.
    Triage,
}

impl FormKind {
    pub const ALL: [FormKind; 9] = [
        FormKind::Triage,
        FormKind::Snooze,
        FormKind::Escalate,
        FormKind::Resolve,
        FormKind::Offline,
        FormKind::Reassign,
        FormKind::Note,
        FormKind::Changes,
        FormKind::Reply,
    ];
    pub fn id(&self) -> &'static str {
        match self {
            FormKind::Escalate => "escalate",
            FormKind::Resolve => "resolve",
            FormKind::Offline => "offline",
            FormKind::Reassign => "reassign",
            FormKind::Note => "note",
            FormKind::Changes => "changes",
            FormKind::Reply => "reply",
            FormKind::Snooze => "snooze",
            FormKind::Triage => "triage",
        }
    }
    /// Form ids travel as `KIND:CASE` (Slack `private_metadata`, Discord `custom_id`).
    pub fn encode(&self, case_id: i64) -> String {
        format!("{}:{case_id}", self.id())
    }
    pub fn decode(s: &str) -> Option<(FormKind, i64)> {
        let (kind, case) = s.split_once(':')?;
        let kind = FormKind::ALL.into_iter().find(|k| k.id() == kind)?;
        Some((kind, case.parse().ok()?))
    }
    /// Whether the form's answer is its text (a note, a reply) rather than a choice.
    pub fn answer_is_text(&self) -> bool {
        matches!(self, FormKind::Note | FormKind::Changes | FormKind::Reply)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub id: String,
    pub label: String,
}

/// What a button press led to.
#[derive(Debug, Clone, PartialEq)]
pub enum Pressed {
    /// The case changed; the card update and the thread line are queued in the outbox.
    Done(String),
    /// Shown only to the person who pressed (refusals, drafts).
    Private(String),
    /// Ask this first, then call [`submit`].
    Ask(Box<Form>),
}

/// The text a person sees for an action error; internal errors are logged there.
fn explain(e: &ActError, what: &str, case_id: Option<i64>) -> String {
    crate::errors::explain(e, "chat", what, case_id)
}

fn choice(id: impl Into<String>, label: impl Into<String>) -> Choice {
    Choice { id: id.into(), label: label.into() }
}

fn ask(kind: FormKind, case_id: i64, title: String, prompt: &str, choices: Vec<Choice>, submit: &str) -> Form {
    Form {
        kind,
        case_id,
        title,
        prompt: prompt.into(),
        choices,
        chosen: None,
        text: Some(TextField::note()),
        info: Vec::new(),
        can_override: false,
        publish_to: None,
        ask_link: false,
        submit: submit.into(),
    }
}

/// The reply editor for a case: `template` or the best fit. Without a template it opens
/// on the text the approval round left: the approved text (post it as is), or the text a
/// lead sent back with their note.
pub async fn reply_form(ctx: &Ctx, person: &Person, case_id: i64, template: Option<&str>) -> Result<Form, ActError> {
    use crate::store::cases::{approved_reply, event_text};
    let d = crate::drafting::draft(ctx, case_id, &person.id, template).await?;
    let events = ctx.store.events(case_id).await?;
    let team = &ctx.playbooks().team;
    let name = |id: &str| team.person(id).map_or(id.to_string(), |p| p.name.clone());
    let is_lead = person.roles.contains(&crate::domain::Role::Lead);
    let approved = approved_reply(&events).and_then(event_text).filter(|_| template.is_none());
    // The latest request that a lead sent back, and the note.
    let sent_back = template
        .is_none()
        .then(|| {
            let i = events.iter().rposition(|e| {
                matches!(e.action.as_str(), "request_changes" | "request_approval" | "approve_reply" | "respond")
            })?;
            let back = events.get(i).filter(|e| e.action == "request_changes")?;
            let asked = events[..i].iter().rev().find(|e| e.action == "request_approval")?;
            Some((event_text(asked)?.to_string(), name(&back.actor), back.detail.get("note")?.as_str()?.to_string()))
        })
        .flatten();
    let post_first =
        "Post the reply on the platform, then submit: submitting records the case as responded with exactly this text.";
    let (initial, info, submit) = match (approved, sent_back) {
        (Some(text), _) => (
            text.to_string(),
            vec!["A lead approved this text: post it as is.".to_string(), post_first.to_string()],
            "Mark responded",
        ),
        (None, Some((text, by, note))) => (
            text,
            vec![format!("{by} sent this back: {note}"), "Edit it and send it for approval again.".to_string()],
            if d.needs_approval && !is_lead { "Send for approval" } else { "Mark responded" },
        ),
        (None, None) => {
            let mut info: Vec<String> = d.findings.iter().map(|f| f.to_string()).collect();
            if info.is_empty() {
                info.push("Compliance: no findings for the draft.".into());
            }
            if d.needs_approval && !is_lead {
                info.push("A clinical/legal-risk case: submitting sends the text to a lead for approval.".into());
                (d.text.clone(), info, "Send for approval")
            } else {
                info.push(post_first.into());
                (d.text.clone(), info, "Mark responded")
            }
        }
    };
    // Where the reply goes: carebot posts it (publishing on for the platform and site), or
    // the agent posts it on the page and gives the link.
    let case = ctx.store.case(case_id).await?.ok_or(ActError::UnknownCase(case_id))?;
    let mention = ctx.store.mention(case.mention_id).await?.ok_or(ActError::UnknownCase(case_id))?;
    let platform = crate::publish::Platform::of_source(&mention.source);
    let publishing = &ctx.settings.publish;
    let publish_to = platform
        .filter(|p| {
            publishing.mode != crate::config::PublishMode::Off
                && !case.confidential
                && publishing
                    .sites
                    .get(case.site.as_deref().unwrap_or(""))
                    .is_some_and(|l| l.iter().any(|x| x == p.id()))
        })
        .map(|p| p.name().to_string());
    let ask_link = platform.is_none() && mention.url.is_some() && !case.confidential;
    let (mut info, mut submit) = (info, submit);
    if let (Some(p), false) = (&publish_to, submit == "Send for approval") {
        info.push(format!("Tick \"Post it on {p}\" and carebot posts it for you as the organisation."));
    }
    if let (true, Some(url), false) = (ask_link, &mention.url, submit == "Send for approval") {
        info.push(format!(
            "{} has no reply API: post it yourself on {url}, then paste the link of your reply.",
            mention.source
        ));
        submit = "Mark posted";
    }
    let mut templates = vec![choice(d.template.clone(), d.title.clone())];
    templates.extend(d.alternatives.iter().map(|(id, title)| choice(id.clone(), title.clone())));
    // Opened on a text from the approval round: no template is selected (Discord's editor
    // button then reopens that text, not a template).
    let chosen = (initial == d.text).then(|| d.template.clone());
    Ok(Form {
        kind: FormKind::Reply,
        case_id,
        title: format!("Reply to case #{case_id}"),
        prompt: "Template".into(),
        choices: templates,
        chosen,
        text: Some(TextField { label: "Reply (edit before posting)".into(), initial, required: true }),
        info,
        can_override: is_lead,
        publish_to,
        ask_link,
        submit: submit.into(),
    })
}

async fn form(ctx: &Ctx, person: &Person, kind: FormKind, case_id: i64) -> Result<Form, ActError> {
    let case = ctx.store.case(case_id).await?.ok_or(ActError::UnknownCase(case_id))?;
    let team = &ctx.playbooks().team;
    Ok(match kind {
        FormKind::Escalate => {
            let mut choices = Vec::new();
            if let Some(owner) = case.site.as_deref().and_then(|s| team.site(s)).and_then(|s| team.person(&s.owner)) {
                choices.push(choice("site-owner", format!("Site owner ({})", owner.name)));
            }
            choices.push(choice("role:risk", "Risk management"));
            for r in &team.rotations {
                let now = crate::workflow::on_call(ctx, &r.id, ctx.clock.now()).await?.unwrap_or_default();
                let name = team.person(&now).map(|p| p.name.clone()).unwrap_or(now);
                choices.push(choice(format!("oncall:{}", r.id), format!("On call: {} ({name})", r.id)));
            }
            choices.push(choice("role:lead", "All PX leads"));
            ask(kind, case_id, format!("Escalate case #{case_id}"), "Escalate to", choices, "Escalate")
        }
        FormKind::Resolve => {
            let choices = Outcome::ALL.iter().map(|o| choice(o.as_str(), outcome_label(*o))).collect();
            ask(kind, case_id, format!("Resolve case #{case_id}"), "Outcome", choices, "Resolve")
        }
        FormKind::Offline => {
            let choices = vec![choice("dm", "Direct message"), choice("phone", "Phone call"), choice("email", "Email")];
            ask(kind, case_id, format!("Take case #{case_id} offline"), "Continued by", choices, "Take offline")
        }
        FormKind::Reassign => {
            // Only people who can own cases, and not the current owner.
            let choices = team
                .people
                .iter()
                .filter(|p| p.actor().roles.works_cases() && case.owner.as_deref() != Some(p.id.as_str()))
                .map(|p| choice(p.id.clone(), p.name.clone()))
                .collect();
            ask(kind, case_id, format!("Reassign case #{case_id}"), "Hand it to", choices, "Reassign")
        }
        FormKind::Note => Form {
            text: Some(TextField { label: "Note (no patient details)".into(), initial: String::new(), required: true }),
            ..ask(kind, case_id, format!("Note on case #{case_id}"), "", Vec::new(), "Add note")
        },
        FormKind::Changes => Form {
            text: Some(TextField { label: "What should change?".into(), initial: String::new(), required: true }),
            ..ask(kind, case_id, format!("Send back #{case_id}"), "", Vec::new(), "Send back")
        },
        FormKind::Reply => reply_form(ctx, person, case_id, None).await?,
        FormKind::Triage => {
            // One list: the sites (and "no site"), then the situations.
            let mut choices: Vec<Choice> =
                team.sites.iter().map(|s| choice(format!("site:{}", s.id), format!("Site: {}", s.name))).collect();
            choices.push(choice("site:none", "Site: none (organisation-wide)"));
            choices.extend(
                ctx.playbooks()
                    .situations
                    .situations
                    .iter()
                    .map(|s| choice(format!("situation:{}", s.id), format!("Situation: {} ({})", s.label, s.priority))),
            );
            ask(kind, case_id, format!("Fix triage of #{case_id}"), "Change to", choices, "Change")
        }
        FormKind::Snooze => {
            let choices = vec![
                choice("15m", "15 minutes"),
                choice("1h", "1 hour"),
                choice("4h", "4 hours"),
                choice("tomorrow", "Tomorrow 9:00"),
            ];
            Form {
                info: vec!["Escalation steps and nudges pause; the due times do not move.".into()],
                text: None,
                ..ask(kind, case_id, format!("Snooze case #{case_id}"), "Snooze for", choices, "Snooze")
            }
        }
    })
}

fn outcome_label(o: Outcome) -> &'static str {
    match o {
        Outcome::Recovered => "Recovered (reviewer updated positively)",
        Outcome::Resolved => "Resolved",
        Outcome::NoReply => "No reply from the patient",
        Outcome::Referred => "Referred to risk management / legal",
        Outcome::NotActionable => "Not actionable (spam, off-topic)",
    }
}

/// The reply a lead approves with the card's button: the exact request the card showed.
async fn approve_shown(ctx: &Ctx, person: &Person, case_id: i64, request: Option<i64>) -> Result<String, ActError> {
    let events = ctx.store.events(case_id).await?;
    if events.is_empty() && ctx.store.case(case_id).await?.is_none() {
        return Err(ActError::UnknownCase(case_id));
    }
    let waiting = crate::store::cases::awaiting_approval(&events);
    let Some(req) = waiting.filter(|e| request.is_none_or(|r| r == e.id)) else {
        return Err(ActError::Invalid(match waiting {
            Some(_) => format!(
                "Case {case_id}: the reply changed since this card was drawn; read the new text on the card and approve again."
            ),
            None => format!("Case {case_id} has no reply waiting for approval."),
        }));
    };
    let text = crate::store::cases::event_text(req).unwrap_or_default().to_string();
    crate::present::case_act(ctx, case_id, &person.id, Action::ApproveReply { text }).await
}

/// A card button: act at once (Claim, Release, Reopen, Approve reply), or ask first.
#[tracing::instrument(skip_all, fields(case_id = p.case_id, button = p.button.id()))]
pub async fn press(ctx: &Ctx, person: &Person, p: Press) -> Pressed {
    let action = match p.button {
        Button::Claim => Action::Claim,
        Button::Release => Action::Release,
        Button::Reopen => Action::Reopen { note: None },
        Button::ConfirmRisk => Action::JudgeRisk { confirm: true },
        Button::DismissRisk => Action::JudgeRisk { confirm: false },
        Button::ApproveReply => {
            return match approve_shown(ctx, person, p.case_id, p.request).await {
                Ok(done) => Pressed::Done(done),
                Err(e) => Pressed::Private(explain(&e, p.button.id(), Some(p.case_id))),
            }
        }
        Button::DraftReply
        | Button::Snooze
        | Button::FixTriage
        | Button::Escalate
        | Button::Resolve
        | Button::TakeOffline
        | Button::Reassign
        | Button::Note
        | Button::RequestChanges => {
            let kind = match p.button {
                Button::Escalate => FormKind::Escalate,
                Button::Resolve => FormKind::Resolve,
                Button::TakeOffline => FormKind::Offline,
                Button::Reassign => FormKind::Reassign,
                Button::Note => FormKind::Note,
                Button::RequestChanges => FormKind::Changes,
                Button::Snooze => FormKind::Snooze,
                Button::FixTriage => FormKind::Triage,
                _ => FormKind::Reply,
            };
            return match form(ctx, person, kind, p.case_id).await {
                Ok(f) => Pressed::Ask(Box::new(f)),
                Err(e) => Pressed::Private(explain(&e, kind.id(), Some(p.case_id))),
            };
        }
    };
    match act(ctx, p.case_id, &person.id, action).await {
        Ok(done) => Pressed::Done(format!("Case {}: {}{}", p.case_id, done.summary, done.findings_note())),
        Err(e) => Pressed::Private(explain(&e, p.button.id(), Some(p.case_id))),
    }
}

/// What a form's submission carries.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub choice: Option<String>,
    pub text: Option<String>,
    /// A lead ticked "accept blocking findings".
    pub override_block: bool,
    /// The reply form: also post it to the review's platform.
    pub publish: bool,
    /// The reply form: the link of a reply posted by hand.
    pub link: Option<String>,
}

/// What a reply submission led to, worded for the person.
fn replied(case_id: i64, r: crate::drafting::Replied) -> String {
    match r {
        crate::drafting::Replied::Responded(done) => {
            format!("Case {case_id}: {} (now {}){}", done.summary, done.case.state, done.findings_note())
        }
        crate::drafting::Replied::SentForApproval => format!(
            "Case {case_id}: your reply went to the leads for approval. You will get a DM when one decides; \
             then post it and mark the case responded."
        ),
    }
}

/// The answer to a form: runs the action, or says why not (shown in the form).
#[tracing::instrument(skip_all, fields(case_id, form = kind.id()))]
pub async fn submit(ctx: &Ctx, person: &Person, kind: FormKind, case_id: i64, a: Answer) -> Result<String, String> {
    let note = a.text.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    let choice = || a.choice.clone().filter(|c| !c.is_empty()).ok_or_else(|| "Please pick one".to_string());
    let needs_text = || note.clone().ok_or_else(|| "Please write something first".to_string());
    let action = match kind {
        FormKind::Escalate => Action::Escalate { to: choice()?.parse::<EscalationTarget>()?, note },
        FormKind::Resolve => Action::Resolve { outcome: choice()?.parse::<Outcome>()?, note },
        FormKind::Offline => Action::TakeOffline { via: choice()?.parse::<OfflineVia>()?, note },
        FormKind::Reassign => Action::Reassign { to: teammate(ctx, &choice()?).map_err(|e| e.to_string())? },
        FormKind::Note => Action::Note { text: needs_text()? },
        FormKind::Snooze => Action::Snooze { until: snooze_until(ctx, case_id, &choice()?).await? },
        FormKind::Triage => {
            let picked = choice()?;
            let (field, value) = picked.split_once(':').ok_or_else(|| "Please pick one".to_string())?;
            let field: crate::domain::TriageField = field.parse()?;
            let value = Some(value.to_string()).filter(|v| v != "none");
            Action::Reclassify { field, value }
        }
        FormKind::Changes => Action::RequestChanges { note: needs_text()? },
        FormKind::Reply => {
            let text = needs_text()?;
            let opts = crate::workflow::ReplyOptions { publish: a.publish, link: a.link.clone(), ..Default::default() };
            return crate::drafting::submit_reply(ctx, case_id, person, Some(text), a.override_block, opts)
                .await
                .map(|r| replied(case_id, r))
                .map_err(|e| explain(&e, kind.id(), Some(case_id)));
        }
    };
    act(ctx, case_id, &person.id, action)
        .await
        .map(|d| format!("Case {case_id}: {}{}", d.summary, d.findings_note()))
        .map_err(|e| explain(&e, kind.id(), Some(case_id)))
}

/// When a snooze of `span` ends: `tomorrow` is 9:00 tomorrow in the case's site's time
/// zone (the team's when it has none); anything else is a span from now (`15m`, `1h`).
pub async fn snooze_until(ctx: &Ctx, case_id: i64, span: &str) -> Result<i64, String> {
    let now = ctx.clock.now();
    let span = span.trim().to_lowercase();
    if span == "tomorrow" {
        let case = ctx.store.case(case_id).await.map_err(|e| explain(&e.into(), "snooze", Some(case_id)))?;
        let case = case.ok_or_else(|| ActError::UnknownCase(case_id).to_string())?;
        let team = &ctx.playbooks().team;
        let tz = case.site.as_deref().and_then(|s| team.site(s)).map_or(team.timezone, |s| s.timezone);
        let day = now.with_timezone(&tz).date_naive() + chrono::Days::new(1);
        let nine = day.and_hms_opt(9, 0, 0).and_then(|t| t.and_local_timezone(tz).earliest());
        return nine.map(|t| t.timestamp_millis()).ok_or_else(|| "9:00 tomorrow does not exist here".to_string());
    }
    let span: crate::domain::Span = span
        .parse()
        .map_err(|_| format!("{span:?} is not a time to snooze for; snooze for e.g. 15m, 1h, 4h or tomorrow"))?;
    Ok(now.timestamp_millis() + span.as_millis())
}

/// The end of an on-call cover: a span from now (`8h`), `tomorrow` (9:00 in the team's
/// time zone) or an RFC 3339 time.
fn cover_until(ctx: &Ctx, until: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    let now = ctx.clock.now();
    let until = until.trim();
    if until.eq_ignore_ascii_case("tomorrow") {
        let tz = ctx.playbooks().team.timezone;
        let day = now.with_timezone(&tz).date_naive() + chrono::Days::new(1);
        let nine = day.and_hms_opt(9, 0, 0).and_then(|t| t.and_local_timezone(tz).earliest());
        return nine.map(|t| t.with_timezone(&chrono::Utc)).ok_or_else(|| "9:00 tomorrow does not exist here".into());
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(until) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let span: crate::domain::Span = until
        .parse()
        .map_err(|_| format!("{until:?} is not a time; cover until e.g. 8h, tomorrow or 2026-12-01T17:00:00-06:00"))?;
    Ok(now + span.as_chrono())
}

/// The team-file id of a teammate named by id, `@id`, or a Slack or Discord mention.
pub fn teammate(ctx: &Ctx, named: &str) -> Result<String, ActError> {
    let team = &ctx.playbooks().team;
    let raw = named.trim();
    let inner = raw.strip_prefix("<@").and_then(|r| r.strip_suffix('>')).map(|r| r.split('|').next().unwrap_or(r));
    let found = match inner {
        Some(chat_id) => {
            let chat_id = chat_id.trim_start_matches('!');
            team.person_by_slack(chat_id).or_else(|| team.person_by_discord(chat_id))
        }
        None => {
            let id = raw.trim_start_matches('@');
            // A team-file id, else a full or first name that names exactly one person.
            team.person(id).or_else(|| {
                let hits: Vec<&Person> = team
                    .people
                    .iter()
                    .filter(|p| p.name.eq_ignore_ascii_case(id) || p.first_name().eq_ignore_ascii_case(id))
                    .collect();
                (hits.len() == 1).then(|| hits[0])
            })
        }
    };
    found.map(|p| p.id.clone()).ok_or_else(|| ActError::UnknownPerson(raw.trim_start_matches('@').to_string()))
}

fn case_line(ctx: &Ctx, c: &CaseRow) -> String {
    let pb = ctx.playbooks();
    let team = &pb.team;
    let site = c.site.as_deref().and_then(|s| team.site(s)).map(|s| s.name.as_str()).unwrap_or("no site");
    let situation = pb.situations.get(&c.situation).map(|s| s.label.as_str()).unwrap_or(c.situation.as_str());
    let opened = from_ms(c.opened_at).with_timezone(&team.timezone).format("%a %H:%M");
    let owner =
        c.owner.as_deref().map(|o| format!(" · {}", team.person(o).map_or(o, |p| p.name.as_str()))).unwrap_or_default();
    let overdue = if c.overdue_at(ctx.now_ms()) { " · OVERDUE" } else { "" };
    format!("#{} · {} · {situation} · {site} · opened {opened} · {}{owner}{overdue}", c.id, c.priority, c.state)
}

async fn list(ctx: &Ctx, filter: CaseFilter, empty: &str) -> anyhow::Result<String> {
    const SHOWN: usize = 20;
    let filter = CaseFilter { limit: Some(SHOWN as i64 + 1), ..filter };
    let cases = ctx.store.list_cases(&filter).await?;
    if cases.is_empty() {
        return Ok(empty.to_string());
    }
    let mut lines: Vec<String> = cases.iter().take(SHOWN).map(|c| case_line(ctx, c)).collect();
    if cases.len() > SHOWN {
        lines.push(format!("… and more: the {SHOWN} most urgent are shown (carebot cases lists them all)"));
    }
    Ok(lines.join("\n"))
}

/// The unclaimed queue, most urgent first.
fn queue_filter() -> CaseFilter {
    CaseFilter { open_only: true, unclaimed: true, by_urgency: true, ..CaseFilter::default() }
}

/// A person's open cases, most urgent first.
fn mine_filter(person: &Person) -> CaseFilter {
    CaseFilter { open_only: true, owner: Some(person.id.clone()), by_urgency: true, ..CaseFilter::default() }
}

/// One case on a person's home page: its line and what they can do from there.
#[derive(Debug, Clone, PartialEq)]
pub struct HomeCase {
    pub case_id: i64,
    pub line: String,
    pub buttons: Vec<Press>,
}

/// A person's home page (Slack App Home): their open cases, then the unclaimed queue,
/// each most urgent first, in the same order as `/care mine` and `/care queue`.
pub async fn home(ctx: &Ctx, person: &Person) -> Result<Vec<(String, Vec<HomeCase>)>, ActError> {
    const SHOWN: i64 = 20;
    let entry = |c: &CaseRow, buttons: &[Button]| HomeCase {
        case_id: c.id,
        line: case_line(ctx, c),
        buttons: buttons.iter().map(|b| Press::new(*b, c.id)).collect(),
    };
    let mine = ctx.store.list_cases(&CaseFilter { limit: Some(SHOWN), ..mine_filter(person) }).await?;
    let queue = ctx.store.list_cases(&CaseFilter { limit: Some(SHOWN), ..queue_filter() }).await?;
    Ok(vec![
        (
            format!("Your open cases ({})", mine.len()),
            mine.iter().map(|c| entry(c, &[Button::DraftReply, Button::Snooze])).collect(),
        ),
        (format!("Unclaimed queue ({})", queue.len()), queue.iter().map(|c| entry(c, &[Button::Claim])).collect()),
    ])
}

/// A `/care` command. The answer is shown only to the person who typed it.
pub async fn run(ctx: &Ctx, person: &Person, cmd: Command, command_name: &str) -> String {
    let what = format!("/care {}", format!("{cmd:?}").split(['(', ' ', '{']).next().unwrap_or_default().to_lowercase());
    execute(ctx, person, cmd, command_name).await.unwrap_or_else(|e| explain(&e, &what, None))
}

/// Runs a command from the table for `person`, whichever surface it came from (`/care`
/// on Slack or Discord, `carebot case …` in a terminal). The answer is plain text.
pub async fn execute(ctx: &Ctx, person: &Person, cmd: Command, command_name: &str) -> Result<String, ActError> {
    {
        Ok(match cmd {
            Command::Help => usage(command_name),
            Command::Queue => list(ctx, queue_filter(), "The queue is empty: no open, unclaimed cases.").await?,
            Command::Mine => list(ctx, mine_filter(person), "You have no open cases.").await?,
            Command::Show(id) => crate::present::case_show(ctx, id, false).await?,
            Command::Claim(id) => crate::present::case_act(ctx, id, &person.id, Action::Claim).await?,
            Command::Resolve { case_id, outcome, note } => {
                crate::present::case_act(ctx, case_id, &person.id, Action::Resolve { outcome, note }).await?
            }
            Command::Draft { case_id, template } => crate::present::draft_text(
                &crate::drafting::draft(ctx, case_id, &person.id, template.as_deref()).await?,
            ),
            Command::Oncall => crate::present::oncall_show(ctx).await?,
            Command::Act { case_id, action } => {
                let action = match action {
                    Action::Escalate { to: EscalationTarget::Person(p), note } => {
                        Action::Escalate { to: EscalationTarget::Person(teammate(ctx, &p)?), note }
                    }
                    other => other,
                };
                crate::present::case_act(ctx, case_id, &person.id, action).await?
            }
            Command::Reassign { case_id, to } => {
                let to = teammate(ctx, &to)?;
                crate::present::case_act(ctx, case_id, &person.id, Action::Reassign { to }).await?
            }
            Command::Respond { case_id, text, override_block, publish, link, no_text, private } => {
                let opts = crate::workflow::ReplyOptions { publish, link, no_text, private };
                replied(case_id, crate::drafting::submit_reply(ctx, case_id, person, text, override_block, opts).await?)
            }
            Command::Approve { case_id, text: Some(text) } => {
                crate::present::case_act(ctx, case_id, &person.id, Action::ApproveReply { text }).await?
            }
            Command::Approve { case_id, text: None } => approve_shown(ctx, person, case_id, None).await?,
            Command::Approvals => approvals(ctx).await?,
            Command::Cover { rotation, person: covering, until } => {
                let who = teammate(ctx, &covering)?;
                let until = cover_until(ctx, &until).map_err(ActError::Invalid)?;
                crate::present::oncall_set(ctx, &rotation, &who, until, &person.id).await?
            }
            Command::Snooze { case_id, span } => {
                let until = snooze_until(ctx, case_id, &span).await.map_err(ActError::Invalid)?;
                crate::present::case_act(ctx, case_id, &person.id, Action::Snooze { until }).await?
            }
            Command::Log { url, text, confidential } => log(ctx, person, url, text, confidential).await?,
        })
    }
}

/// `/care approvals`: replies waiting for a lead, oldest first, with their text.
async fn approvals(ctx: &Ctx) -> anyhow::Result<String> {
    let waiting = ctx.store.awaiting_approvals().await?;
    if waiting.is_empty() {
        return Ok("No replies are waiting for approval.".into());
    }
    let team = &ctx.playbooks().team;
    let mut out = String::new();
    for (case, req) in &waiting {
        let who = team.person(&req.actor).map(|p| p.name.clone()).unwrap_or_else(|| req.actor.clone());
        let asked = from_ms(req.at).with_timezone(&team.timezone).format("%a %H:%M");
        out.push_str(&format!("{} · asked by {who} at {asked}\n", case_line(ctx, case)));
        for line in crate::store::cases::event_text(req).unwrap_or_default().lines() {
            out.push_str(&format!("    {line}\n"));
        }
    }
    out.push_str("Approve with `/care approve N`, or send back with `/care changes N WHAT TO CHANGE`.");
    Ok(out)
}

/// `/care log`: a forwarded or screenshotted post becomes a case like any other mention.
async fn log(ctx: &Ctx, person: &Person, url: String, text: String, confidential: bool) -> Result<String, ActError> {
    if !person.actor().roles.works_cases() {
        return Err(ActError::Invalid("logging a post needs the agent, lead or risk role".into()));
    }
    let raw = RawMention {
        source: Some("forwarded".into()),
        external_id: Some(url.clone()),
        url: Some(url),
        text: Some(text),
        visibility: Some(if confidential { Visibility::Private } else { Visibility::Public }),
        forwarded_by: Some(person.id.clone()),
        confidential: Some(confidential),
        ..RawMention::default()
    };
    let mention = raw.parse(None, ctx.clock.now()).map_err(|e| ActError::Invalid(e.to_string()))?;
    let done = crate::intake::ingest(ctx, std::slice::from_ref(&mention)).await?;
    let Some(r) = done.first() else { return Err(ActError::Internal(anyhow::anyhow!("intake returned nothing"))) };
    Ok(match r {
        crate::intake::Ingested::Opened(id) => format!("Logged as case #{id}; its card is on its way."),
        crate::intake::Ingested::Duplicate(id) => format!("That post is already case #{id}."),
        crate::intake::Ingested::Revised(id) => format!("That post is case #{id}; its text was updated."),
        crate::intake::Ingested::Similar(id) => format!("That post joined case #{id} as a similar mention."),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_ids_round_trip() {
        for k in FormKind::ALL {
            assert_eq!(FormKind::decode(&k.encode(42)), Some((k, 42)));
        }
        assert_eq!(FormKind::decode("launch:1"), None);
        assert_eq!(FormKind::decode("resolve:x"), None);
    }
}
