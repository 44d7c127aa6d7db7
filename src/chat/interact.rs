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
pub fn person<'c>(ctx: &'c Ctx, who: Who<'_>) -> Result<&'c Person, String> {
    let team = &ctx.playbooks.team;
    let found = match who {
        Who::Slack(id) => team.person_by_slack(id),
        Who::Discord(id) => team.person_by_discord(id),
    };
    found.ok_or_else(|| {
        "You are not in carebot's team file, so you cannot work cases. Ask a PX lead to add you \
         (playbooks/team.yaml)."
            .to_string()
    })
}

/// A question to ask before acting (a Slack modal, a Discord select menu).
#[derive(Debug, Clone, PartialEq)]
pub struct Form {
    pub kind: FormKind,
    pub case_id: i64,
    pub title: String,
    pub prompt: String,
    pub choices: Vec<Choice>,
    pub submit: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormKind {
    Escalate,
    Resolve,
    Offline,
}

impl FormKind {
    pub fn id(&self) -> &'static str {
        match self {
            FormKind::Escalate => "escalate",
            FormKind::Resolve => "resolve",
            FormKind::Offline => "offline",
        }
    }
    /// Form ids travel as `KIND:CASE` (Slack `private_metadata`, Discord `custom_id`).
    pub fn encode(&self, case_id: i64) -> String {
        format!("{}:{case_id}", self.id())
    }
    pub fn decode(s: &str) -> Option<(FormKind, i64)> {
        let (kind, case) = s.split_once(':')?;
        let kind = [FormKind::Escalate, FormKind::Resolve, FormKind::Offline].into_iter().find(|k| k.id() == kind)?;
        Some((kind, case.parse().ok()?))
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
    Ask(Form),
}

/// The text a person sees for an action error; internal errors are logged there.
fn explain(e: &ActError, what: &str, case_id: Option<i64>) -> String {
    crate::errors::explain(e, "chat", what, case_id)
}

fn choice(id: impl Into<String>, label: impl Into<String>) -> Choice {
    Choice { id: id.into(), label: label.into() }
}

async fn form(ctx: &Ctx, kind: FormKind, case_id: i64) -> Result<Form, ActError> {
    let case = ctx.store.case(case_id).await?.ok_or(ActError::UnknownCase(case_id))?;
    let team = &ctx.playbooks.team;
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
            Form {
                kind,
                case_id,
                title: format!("Escalate case #{case_id}"),
                prompt: "Escalate to".into(),
                choices,
                submit: "Escalate".into(),
            }
        }
        FormKind::Resolve => Form {
            kind,
            case_id,
            title: format!("Resolve case #{case_id}"),
            prompt: "Outcome".into(),
            choices: Outcome::ALL.iter().map(|o| choice(o.as_str(), outcome_label(*o))).collect(),
            submit: "Resolve".into(),
        },
        FormKind::Offline => Form {
            kind,
            case_id,
            title: format!("Take case #{case_id} offline"),
            prompt: "Continued by".into(),
            choices: vec![choice("dm", "Direct message"), choice("phone", "Phone call"), choice("email", "Email")],
            submit: "Take offline".into(),
        },
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

/// A card button: act at once (Claim, Release, Reopen), show a draft, or ask a question.
pub async fn press(ctx: &Ctx, person: &Person, p: Press) -> Pressed {
    let action = match p.button {
        Button::Claim => Action::Claim,
        Button::Release => Action::Release,
        Button::Reopen => Action::Reopen { note: None },
        Button::DraftReply => {
            return match crate::drafting::draft(ctx, p.case_id, &person.id, None).await {
                Ok(d) => Pressed::Private(crate::present::draft_text(&d)),
                Err(e) => Pressed::Private(explain(&e, "draft", Some(p.case_id))),
            }
        }
        Button::Escalate | Button::Resolve | Button::TakeOffline => {
            let kind = match p.button {
                Button::Escalate => FormKind::Escalate,
                Button::Resolve => FormKind::Resolve,
                _ => FormKind::Offline,
            };
            return match form(ctx, kind, p.case_id).await {
                Ok(f) => Pressed::Ask(f),
                Err(e) => Pressed::Private(explain(&e, kind.id(), Some(p.case_id))),
            };
        }
    };
    match act(ctx, p.case_id, &person.id, action).await {
        Ok(done) => Pressed::Done(format!("Case {}: {}", p.case_id, done.summary)),
        Err(e) => Pressed::Private(explain(&e, p.button.id(), Some(p.case_id))),
    }
}

/// The answer to a form: runs the action, or says why not (shown in the form).
pub async fn submit(
    ctx: &Ctx,
    person: &Person,
    kind: FormKind,
    case_id: i64,
    choice: &str,
    note: Option<String>,
) -> Result<String, String> {
    let note = note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    let action = match kind {
        FormKind::Escalate => Action::Escalate { to: choice.parse::<EscalationTarget>()?, note },
        FormKind::Resolve => Action::Resolve { outcome: choice.parse::<Outcome>()?, note },
        FormKind::Offline => Action::TakeOffline { via: choice.parse::<OfflineVia>()?, note },
    };
    act(ctx, case_id, &person.id, action)
        .await
        .map(|d| format!("Case {case_id}: {}", d.summary))
        .map_err(|e| explain(&e, kind.id(), Some(case_id)))
}

fn case_line(ctx: &Ctx, c: &CaseRow) -> String {
    let team = &ctx.playbooks.team;
    let site = c.site.as_deref().and_then(|s| team.site(s)).map(|s| s.name.as_str()).unwrap_or("no site");
    let situation =
        ctx.playbooks.situations.get(&c.situation).map(|s| s.label.as_str()).unwrap_or(c.situation.as_str());
    let opened = from_ms(c.opened_at).with_timezone(&team.timezone).format("%a %H:%M");
    let owner = c.owner.as_deref().map(|o| format!(" · @{o}")).unwrap_or_default();
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
        lines.push(format!("… and more: the oldest {SHOWN} are shown (carebot cases lists them all)"));
    }
    Ok(lines.join("\n"))
}

/// A `/care` command. The answer is shown only to the person who typed it.
pub async fn run(ctx: &Ctx, person: &Person, cmd: Command, command_name: &str) -> String {
    let what = format!("/care {}", format!("{cmd:?}").split(['(', ' ', '{']).next().unwrap_or_default().to_lowercase());
    let result: Result<String, ActError> = async {
        Ok(match cmd {
            Command::Help => usage(command_name),
            Command::Queue => {
                let f = CaseFilter { open_only: true, unclaimed: true, ..CaseFilter::default() };
                list(ctx, f, "The queue is empty: no open, unclaimed cases.").await?
            }
            Command::Mine => {
                let f = CaseFilter { open_only: true, owner: Some(person.id.clone()), ..CaseFilter::default() };
                list(ctx, f, "You have no open cases.").await?
            }
            Command::Show(id) => crate::present::case_show(ctx, id, false).await?,
            Command::Claim(id) => crate::present::case_act(ctx, id, &person.id, Action::Claim).await?,
            Command::Resolve { case_id, outcome, note } => {
                crate::present::case_act(ctx, case_id, &person.id, Action::Resolve { outcome, note }).await?
            }
            Command::Draft { case_id, template } => crate::present::draft_text(
                &crate::drafting::draft(ctx, case_id, &person.id, template.as_deref()).await?,
            ),
            Command::Oncall => crate::present::oncall_show(ctx).await?,
            Command::Log { url, text, confidential } => log(ctx, person, url, text, confidential).await?,
        })
    }
    .await;
    result.unwrap_or_else(|e| explain(&e, &what, None))
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
        for k in [FormKind::Escalate, FormKind::Resolve, FormKind::Offline] {
            assert_eq!(FormKind::decode(&k.encode(42)), Some((k, 42)));
        }
        assert_eq!(FormKind::decode("launch:1"), None);
        assert_eq!(FormKind::decode("resolve:x"), None);
    }
}
