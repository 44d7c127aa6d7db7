//! The case state machine: which action is legal in which state, for whom, and what it changes.
//!
//! `apply` is pure: given the current status, the actor and the action it returns either the
//! transition to persist (new status + event) or a `Refusal` worded for the person in chat.

use super::role::{Actor, Role};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseState {
    Open,
    Claimed,
    /// A public reply was posted.
    Responded,
    /// Moved to a private channel (DM, phone, email with PX).
    Offline,
    Resolved,
}

impl CaseState {
    pub const ALL: [CaseState; 5] =
        [CaseState::Open, CaseState::Claimed, CaseState::Responded, CaseState::Offline, CaseState::Resolved];
    pub fn as_str(&self) -> &'static str {
        match self {
            CaseState::Open => "open",
            CaseState::Claimed => "claimed",
            CaseState::Responded => "responded",
            CaseState::Offline => "offline",
            CaseState::Resolved => "resolved",
        }
    }
}

impl FromStr for CaseState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        CaseState::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown state {s:?}; one of open, claimed, responded, offline, resolved"))
    }
}

impl fmt::Display for CaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The reviewer updated positively (e.g. 1 star to 4).
    Recovered,
    Resolved,
    NoReply,
    /// Handed to risk management / legal.
    Referred,
    /// Spam, off-topic, nothing to do.
    NotActionable,
}

impl Outcome {
    pub const ALL: [Outcome; 5] =
        [Outcome::Recovered, Outcome::Resolved, Outcome::NoReply, Outcome::Referred, Outcome::NotActionable];
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Recovered => "recovered",
            Outcome::Resolved => "resolved",
            Outcome::NoReply => "no_reply",
            Outcome::Referred => "referred",
            Outcome::NotActionable => "not_actionable",
        }
    }
}

impl FromStr for Outcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let norm = s.trim().to_lowercase().replace('-', "_");
        Outcome::ALL.into_iter().find(|o| o.as_str() == norm).ok_or_else(|| {
            format!("unknown outcome {s:?}; one of recovered, resolved, no_reply, referred, not_actionable")
        })
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a case was moved to a private channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfflineVia {
    Dm,
    Phone,
    Email,
}

impl FromStr for OfflineVia {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_lowercase().as_str() {
            "dm" => Ok(OfflineVia::Dm),
            "phone" => Ok(OfflineVia::Phone),
            "email" => Ok(OfflineVia::Email),
            _ => Err(format!("unknown channel {s:?}; one of dm, phone, email")),
        }
    }
}

/// Case priority, p1 (drop everything) to p4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    P1,
    P2,
    P3,
    P4,
}

impl Priority {
    pub fn as_str(&self) -> &'static str {
        match self {
            Priority::P1 => "p1",
            Priority::P2 => "p2",
            Priority::P3 => "p3",
            Priority::P4 => "p4",
        }
    }
}

/// As people read it: `P1` … `P4`.
impl std::fmt::Display for Priority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_str().to_uppercase())
    }
}

impl FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "p1" => Ok(Priority::P1),
            "p2" => Ok(Priority::P2),
            "p3" => Ok(Priority::P3),
            "p4" => Ok(Priority::P4),
            _ => Err(format!("unknown priority {s:?}; one of p1, p2, p3, p4")),
        }
    }
}

/// Who a case is escalated to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum EscalationTarget {
    /// The owner of the case's site in the team file.
    SiteOwner,
    /// Whoever has claimed the case (nobody while it is unclaimed).
    Owner,
    /// Everyone holding a role (e.g. risk management).
    Role(Role),
    /// Whoever is on call in a rotation now.
    OnCall(String),
    /// One named person.
    Person(String),
    /// The case's channel (`@here`).
    Channel,
}

impl FromStr for EscalationTarget {
    type Err = String;
    /// `site-owner`, `channel`, `risk` / `lead` / `role:NAME`, `oncall:ROTATION`, `person:ID` or `@ID`.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let bad = || {
            format!("unknown escalation target {s:?}; use site-owner, owner, channel, role:NAME, oncall:ROTATION or @person")
        };
        if s == "site-owner" || s == "site_owner" {
            return Ok(EscalationTarget::SiteOwner);
        }
        if s == "channel" {
            return Ok(EscalationTarget::Channel);
        }
        if s == "owner" || s == "claimer" {
            return Ok(EscalationTarget::Owner);
        }
        if let Some(r) = Role::parse(s) {
            return Ok(EscalationTarget::Role(r));
        }
        if let Some(r) = s.strip_prefix("role:") {
            return Role::parse(r).map(EscalationTarget::Role).ok_or_else(bad);
        }
        if let Some(r) = s.strip_prefix("oncall:").filter(|r| !r.is_empty()) {
            return Ok(EscalationTarget::OnCall(r.to_string()));
        }
        if let Some(p) = s.strip_prefix('@').or_else(|| s.strip_prefix("person:")).filter(|p| !p.is_empty()) {
            return Ok(EscalationTarget::Person(p.to_string()));
        }
        Err(bad())
    }
}

impl fmt::Display for EscalationTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EscalationTarget::SiteOwner => f.write_str("site owner"),
            EscalationTarget::Owner => f.write_str("case owner"),
            EscalationTarget::Role(r) => write!(f, "role:{r}"),
            EscalationTarget::OnCall(r) => write!(f, "on-call of {r}"),
            EscalationTarget::Person(p) => write!(f, "@{p}"),
            EscalationTarget::Channel => f.write_str("channel"),
        }
    }
}

/// The part of a case's triage a lead can correct.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriageField {
    Site,
    Category,
    Situation,
}

impl FromStr for TriageField {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_lowercase().as_str() {
            "site" => Ok(TriageField::Site),
            "category" => Ok(TriageField::Category),
            "situation" => Ok(TriageField::Situation),
            _ => Err(format!("cannot set {s:?}; one of site, category, situation")),
        }
    }
}

/// Something a person does to a case.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Claim,
    Release,
    Reassign {
        to: String,
    },
    /// Marks the public reply posted. `override_block`: a lead accepts blocking findings.
    Respond {
        text: Option<String>,
        override_block: bool,
    },
    /// A lead approves a reply text (required for clinical/legal-risk cases).
    ApproveReply {
        text: String,
    },
    /// An agent asks the leads to approve a reply text for a risk case.
    RequestApproval {
        text: String,
    },
    /// A lead sends a reply that waits for approval back with what to change.
    RequestChanges {
        note: String,
    },
    /// A lead corrects the triage: the case's site (`None`: no site), its category, or its
    /// situation (priority, SLA clocks and channel follow).
    Reclassify {
        field: TriageField,
        value: Option<String>,
    },
    /// Risk management (or a lead) decides a "possible risk" case: confirmed, it becomes a
    /// clinical/legal-risk case; dismissed, it returns to the queue it would have joined.
    /// Anyone working cases may confirm; dismissing needs the risk or lead role.
    JudgeRisk {
        confirm: bool,
    },
    /// Pause the case's escalation steps and nudges until `until` (ms since the epoch).
    /// SLA due times do not move.
    Snooze {
        until: i64,
    },
    TakeOffline {
        via: OfflineVia,
        note: Option<String>,
    },
    Escalate {
        to: EscalationTarget,
        note: Option<String>,
    },
    Resolve {
        outcome: Outcome,
        note: Option<String>,
    },
    Reopen {
        note: Option<String>,
    },
    Note {
        text: String,
    },
    /// The public post behind the case changed on its platform (new text or rating).
    /// Recorded by carebot itself at intake; a rating that rose after the team replied
    /// makes the case a recovery candidate. The state does not change.
    Revise(Revision),
    /// The platform refused the published reply (policy, deleted review, expired token):
    /// nothing is public, so a case still `responded` goes back to `claimed` with its
    /// first-response clock running again. Recorded by carebot only.
    ReplyNotPosted {
        platform: String,
        reason: String,
    },
    /// A reply the platform had refused went out on a later attempt (`outbox retry` after
    /// the cause was fixed): a case sent back to `claimed` by that refusal is `responded`
    /// again. Recorded by carebot only.
    ReplyPosted {
        platform: String,
    },
    /// The owner or a lead takes our published reply down from its platform. The state
    /// does not change (the reviewer did see a reply); respond again to post a new one.
    Unpublish {
        reason: Option<String>,
    },
}

/// What a platform reported changed about a mention already on a case.
#[derive(Clone, Debug, PartialEq)]
pub struct Revision {
    pub old_rating: Option<f64>,
    pub new_rating: Option<f64>,
    pub text_changed: bool,
    /// The mention's revision number after this change (1 for the first revision).
    pub revision: i64,
    /// The team had already replied publicly when the change arrived.
    pub after_reply: bool,
    /// The reply carebot published that was live then: its event id and the platform's
    /// name. A recovery after it is counted for that reply.
    pub published: Option<(i64, String)>,
}

impl Revision {
    /// A rating that rose after our public reply: a win to report and thank for.
    pub fn recovery(&self) -> bool {
        self.after_reply && matches!((self.old_rating, self.new_rating), (Some(o), Some(n)) if n > o)
    }

    /// The line for the case's thread.
    pub fn line(&self) -> String {
        match (self.old_rating, self.new_rating) {
            (Some(o), Some(n)) if self.recovery() => match &self.published {
                Some((_, on)) => {
                    format!("Review revised: rating {o} → {n} after our reply on {on} — recovery candidate")
                }
                None => format!("Review revised: rating {o} → {n} after our reply — recovery candidate"),
            },
            (Some(o), Some(n)) if o != n => format!("Review revised: rating {o} → {n}"),
            _ => "Review text revised".to_string(),
        }
    }
}

impl Action {
    /// What the action does to the case, as a person reads it after "you cannot".
    pub fn verb(&self) -> &'static str {
        match self {
            Action::Claim => "claim it",
            Action::Release => "release it",
            Action::Reassign { .. } => "reassign it",
            Action::Respond { .. } => "mark it responded",
            Action::ApproveReply { .. } => "approve a reply for it",
            Action::RequestApproval { .. } => "send a reply for approval on it",
            Action::RequestChanges { .. } => "send its reply back",
            Action::TakeOffline { .. } => "take it offline",
            Action::Escalate { .. } => "escalate it",
            Action::Resolve { .. } => "resolve it",
            Action::Reopen { .. } => "reopen it",
            Action::Note { .. } => "add a note to it",
            Action::Snooze { .. } => "snooze it",
            Action::Reclassify { .. } => "change its triage",
            Action::JudgeRisk { confirm: true } => "confirm its risk",
            Action::JudgeRisk { confirm: false } => "dismiss its possible risk",
            Action::Revise(_) => "record a revision of its post",
            Action::ReplyNotPosted { .. } => "record a refused reply",
            Action::Unpublish { .. } => "remove its published reply",
            Action::ReplyPosted { .. } => "record a reply posted after all",
        }
    }

    /// The action as a subject: "approving a reply needs the lead role".
    pub fn gerund(&self) -> &'static str {
        match self {
            Action::Claim => "claiming",
            Action::Release => "releasing",
            Action::Reassign { .. } => "reassigning",
            Action::Respond { .. } => "marking it responded",
            Action::ApproveReply { .. } => "approving a reply",
            Action::RequestApproval { .. } => "sending a reply for approval",
            Action::RequestChanges { .. } => "sending a reply back",
            Action::TakeOffline { .. } => "taking it offline",
            Action::Escalate { .. } => "escalating",
            Action::Resolve { .. } => "resolving",
            Action::Reopen { .. } => "reopening",
            Action::Note { .. } => "adding a note",
            Action::Snooze { .. } => "snoozing",
            Action::Reclassify { .. } => "changing the triage",
            Action::JudgeRisk { confirm: true } => "confirming a possible risk",
            Action::JudgeRisk { confirm: false } => "dismissing a possible risk",
            Action::Revise(_) => "recording a revision",
            Action::ReplyNotPosted { .. } => "recording a refused reply",
            Action::Unpublish { .. } => "removing a published reply",
            Action::ReplyPosted { .. } => "recording a reply posted after all",
        }
    }

    /// The event name recorded in the case history.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Claim => "claim",
            Action::Release => "release",
            Action::Reassign { .. } => "reassign",
            Action::Respond { .. } => "respond",
            Action::ApproveReply { .. } => "approve_reply",
            Action::RequestApproval { .. } => "request_approval",
            Action::RequestChanges { .. } => "request_changes",
            Action::Snooze { .. } => "snooze",
            Action::Reclassify { .. } => "reclassify",
            Action::JudgeRisk { confirm: true } => "confirm_risk",
            Action::JudgeRisk { confirm: false } => "dismiss_risk",
            Action::TakeOffline { .. } => "offline",
            Action::Escalate { .. } => "escalate",
            Action::Resolve { .. } => "resolve",
            Action::Reopen { .. } => "reopen",
            Action::Note { .. } => "note",
            Action::Revise(_) => "revised",
            Action::ReplyNotPosted { .. } => "publish_failed",
            Action::Unpublish { .. } => "unpublish",
            Action::ReplyPosted { .. } => "reply_posted",
        }
    }
}

/// The part of a case the state machine reads and changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseStatus {
    pub state: CaseState,
    pub owner: Option<String>,
    pub outcome: Option<Outcome>,
    pub escalation_level: i64,
}

impl CaseStatus {
    pub fn open() -> Self {
        CaseStatus { state: CaseState::Open, owner: None, outcome: None, escalation_level: 0 }
    }
}

/// What a legal action changes: the new status and the event detail to record.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    pub next: CaseStatus,
    pub event: &'static str,
    pub detail: serde_json::Value,
}

/// Why an action was refused. Shown to the person as is (the caller adds the case number).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// `owner` is a team-file id here; the workflow puts the person's name in its place.
    #[error("is already claimed by {owner}")]
    AlreadyClaimed { owner: String },
    #[error("is already yours")]
    AlreadyYours,
    #[error("belongs to {owner}; only they or a lead can {action}")]
    NotOwner { owner: String, action: &'static str },
    #[error("is {state}; you cannot {action}{hint}")]
    Illegal { state: CaseState, action: &'static str, hint: &'static str },
    #[error("cannot be changed by you: {action} needs the {needs} role")]
    NotPermitted { action: &'static str, needs: &'static str },
}

fn illegal(state: CaseState, action: &'static str, hint: &'static str) -> Refusal {
    Refusal::Illegal { state, action, hint }
}

/// Decides an action. Pure: no clock, no store, no team lookup beyond the actor's roles.
pub fn apply(cur: &CaseStatus, actor: &Actor, action: &Action) -> Result<Transition, Refusal> {
    use CaseState::*;
    let name = action.name();
    let (verb, gerund) = (action.verb(), action.gerund());
    let roles = &actor.roles;
    let is_lead = roles.has(Role::Lead);

    // Who may act at all: leadership reads and notes; everyone else must work cases.
    match action {
        Action::Note { .. } => {}
        // Only carebot records what a platform changed; no person can.
        Action::Revise(_) | Action::ReplyNotPosted { .. } | Action::ReplyPosted { .. }
            if actor.id != Actor::system().id =>
        {
            return Err(Refusal::NotPermitted { action: gerund, needs: "carebot (system)" })
        }
        Action::Revise(_) | Action::ReplyNotPosted { .. } | Action::ReplyPosted { .. } => {}
        Action::JudgeRisk { confirm: false } if !is_lead && !roles.has(Role::Risk) => {
            return Err(Refusal::NotPermitted { action: gerund, needs: "risk or lead" })
        }
        _ if !roles.works_cases() => {
            return Err(Refusal::NotPermitted { action: gerund, needs: "agent, lead or risk" })
        }
        _ => {}
    }

    // Actions on a case someone else owns need that owner or a lead.
    let owned_by_other = cur.owner.as_deref().filter(|o| *o != actor.id);
    let guard_owner = || match owned_by_other {
        Some(o) if !is_lead => Err(Refusal::NotOwner { owner: o.to_string(), action: verb }),
        _ => Ok(()),
    };

    let mut next = cur.clone();
    let mut detail = serde_json::json!({});
    match action {
        Action::Claim => match cur.state {
            Open => {
                next.state = Claimed;
                next.owner = Some(actor.id.clone());
            }
            Claimed | Responded | Offline => {
                return Err(match owned_by_other {
                    Some(o) => Refusal::AlreadyClaimed { owner: o.to_string() },
                    None => Refusal::AlreadyYours,
                })
            }
            Resolved => return Err(illegal(cur.state, verb, "; reopen it first")),
        },
        Action::Release => match cur.state {
            Claimed => {
                guard_owner()?;
                next.state = Open;
                next.owner = None;
                detail = serde_json::json!({ "previous_owner": cur.owner });
            }
            _ => return Err(illegal(cur.state, verb, "; only a claimed case can be released")),
        },
        Action::Reassign { to } => match cur.state {
            Resolved => return Err(illegal(cur.state, verb, "; reopen it first")),
            _ => {
                if cur.owner.is_none() && !is_lead {
                    // An unclaimed case is handed out by a lead; an agent claims it.
                    return Err(Refusal::NotPermitted { action: "assigning an unclaimed case", needs: "lead" });
                }
                guard_owner()?;
                if cur.owner.as_deref() == Some(to.as_str()) {
                    return Err(Refusal::AlreadyClaimed { owner: to.clone() });
                }
                if cur.state == Open {
                    next.state = Claimed;
                }
                next.owner = Some(to.clone());
                detail = serde_json::json!({ "from": cur.owner, "to": to });
            }
        },
        Action::Respond { text, override_block } => match cur.state {
            Open | Claimed | Responded => {
                if *override_block && !is_lead {
                    return Err(Refusal::NotPermitted { action: "overriding compliance findings", needs: "lead" });
                }
                guard_owner()?;
                next.state = Responded;
                next.owner = Some(cur.owner.clone().unwrap_or_else(|| actor.id.clone()));
                detail = serde_json::json!({ "text": text });
            }
            Offline => return Err(illegal(cur.state, verb, "; it has moved offline, add a note instead")),
            Resolved => return Err(illegal(cur.state, verb, "; reopen it first")),
        },
        Action::ApproveReply { text } => match cur.state {
            Resolved => return Err(illegal(cur.state, verb, "; reopen it first")),
            _ if !is_lead => return Err(Refusal::NotPermitted { action: gerund, needs: "lead" }),
            _ => detail = serde_json::json!({ "text": text }),
        },
        Action::RequestApproval { text } => match cur.state {
            Open | Claimed | Responded => {
                guard_owner()?;
                if cur.state == Open {
                    next.state = Claimed;
                }
                next.owner = Some(cur.owner.clone().unwrap_or_else(|| actor.id.clone()));
                detail = serde_json::json!({ "text": text });
            }
            Offline => return Err(illegal(cur.state, verb, "; it has moved offline, add a note instead")),
            Resolved => return Err(illegal(cur.state, verb, "; reopen it first")),
        },
        Action::RequestChanges { note } => match cur.state {
            Resolved => return Err(illegal(cur.state, verb, "; reopen it first")),
            _ if !is_lead => return Err(Refusal::NotPermitted { action: "sending a reply back", needs: "lead" }),
            _ => detail = serde_json::json!({ "note": note }),
        },
        Action::Reclassify { field, value } => match cur.state {
            Resolved => return Err(illegal(cur.state, verb, "; reopen it first")),
            _ if !is_lead => return Err(Refusal::NotPermitted { action: "changing the triage", needs: "lead" }),
            _ => detail = serde_json::json!({ "field": field, "to": value }),
        },
        Action::JudgeRisk { confirm } => match cur.state {
            Resolved => return Err(illegal(cur.state, verb, "; reopen it first")),
            _ if !confirm && !is_lead && !roles.has(Role::Risk) => {
                return Err(Refusal::NotPermitted { action: "dismissing a possible risk", needs: "risk or lead" })
            }
            _ => detail = serde_json::json!({ "confirm": confirm }),
        },
        Action::Snooze { until } => match cur.state {
            Resolved => return Err(illegal(cur.state, verb, "; a resolved case has nothing to nudge")),
            _ => detail = serde_json::json!({ "until": until }),
        },
        Action::TakeOffline { via, note } => match cur.state {
            Open | Claimed | Responded => {
                guard_owner()?;
                next.state = Offline;
                next.owner = Some(cur.owner.clone().unwrap_or_else(|| actor.id.clone()));
                detail = serde_json::json!({ "via": via, "note": note });
            }
            Offline => return Err(illegal(cur.state, verb, "; it is already offline")),
            Resolved => return Err(illegal(cur.state, verb, "; reopen it first")),
        },
        Action::Escalate { to, note } => match cur.state {
            Resolved => return Err(illegal(cur.state, verb, "; reopen it first")),
            _ => {
                next.escalation_level += 1;
                detail = serde_json::json!({ "to": to, "note": note, "level": next.escalation_level });
            }
        },
        Action::Resolve { outcome, note } => match cur.state {
            Open if matches!(outcome, Outcome::NotActionable | Outcome::Referred) => {
                next.state = Resolved;
                next.outcome = Some(*outcome);
                detail = serde_json::json!({ "outcome": outcome, "note": note });
            }
            Open => {
                return Err(illegal(
                    cur.state,
                    name,
                    " with that outcome; claim it first (unclaimed cases close only as not_actionable or referred)",
                ))
            }
            Claimed | Responded | Offline => {
                guard_owner()?;
                next.state = Resolved;
                next.outcome = Some(*outcome);
                detail = serde_json::json!({ "outcome": outcome, "note": note });
            }
            Resolved => return Err(illegal(cur.state, verb, "; it is already resolved")),
        },
        Action::Reopen { note } => match cur.state {
            Resolved => {
                next.state = Open;
                next.owner = None;
                next.outcome = None;
                detail =
                    serde_json::json!({ "previous_outcome": cur.outcome, "previous_owner": cur.owner, "note": note });
            }
            _ => return Err(illegal(cur.state, verb, "; only a resolved case can be reopened")),
        },
        Action::Note { text } => {
            detail = serde_json::json!({ "text": text });
        }
        // Only a case still marked responded goes back; one taken further stays where it is.
        Action::ReplyNotPosted { platform, reason } => {
            if cur.state == Responded {
                next.state = Claimed;
            }
            detail = serde_json::json!({ "platform": platform, "reason": reason, "reopened": cur.state == Responded });
        }
        // Only a case the refusal sent back (still claimed) moves; any later step stands.
        Action::ReplyPosted { platform } => {
            if cur.state == Claimed {
                next.state = Responded;
            }
            detail = serde_json::json!({ "platform": platform, "responded": cur.state == Claimed });
        }
        Action::Unpublish { reason } => match cur.state {
            Open => return Err(illegal(cur.state, verb, "; nothing has been published for it")),
            _ => {
                guard_owner()?;
                detail = serde_json::json!({ "reason": reason });
            }
        },
        // Any state: a resolved case keeps its outcome; the history and the card say what changed.
        Action::Revise(r) => {
            detail = serde_json::json!({
                "old_rating": r.old_rating, "new_rating": r.new_rating, "text_changed": r.text_changed,
                "revision": r.revision, "after_reply": r.after_reply, "recovery": r.recovery(),
                "published_reply": r.published.as_ref().map(|(id, _)| id),
            });
        }
    }
    Ok(Transition { next, event: name, detail })
}

#[cfg(test)]
mod tests {
    use super::*;
    use CaseState::*;

    fn agent(id: &str) -> Actor {
        Actor::new(id, [Role::Agent])
    }

    #[test]
    fn a_refused_reply_sends_a_responded_case_back_to_claimed_and_only_carebot_records_it() {
        let refused = Action::ReplyNotPosted { platform: "x".into(), reason: "policy".into() };
        let t = apply(&status(Responded, Some("sam")), &Actor::system(), &refused).unwrap();
        assert_eq!((t.next.state, t.next.owner.as_deref(), t.event), (Claimed, Some("sam"), "publish_failed"));
        let t = apply(&status(Offline, Some("sam")), &Actor::system(), &refused).unwrap();
        assert_eq!(t.next.state, Offline, "a case taken further stays where it is");
        assert!(matches!(
            apply(&status(Responded, Some("sam")), &agent("sam"), &refused),
            Err(Refusal::NotPermitted { .. })
        ));
    }
    fn lead(id: &str) -> Actor {
        Actor::new(id, [Role::Agent, Role::Lead])
    }
    fn status(state: CaseState, owner: Option<&str>) -> CaseStatus {
        CaseStatus {
            state,
            owner: owner.map(str::to_string),
            outcome: (state == Resolved).then_some(Outcome::Resolved),
            escalation_level: 0,
        }
    }
    fn actions() -> Vec<Action> {
        vec![
            Action::Claim,
            Action::Release,
            Action::Reassign { to: "sam".into() },
            Action::Respond { text: None, override_block: false },
            Action::TakeOffline { via: OfflineVia::Phone, note: None },
            Action::Escalate { to: EscalationTarget::SiteOwner, note: None },
            Action::Resolve { outcome: Outcome::Recovered, note: None },
            Action::Reopen { note: None },
            Action::Note { text: "called back".into() },
        ]
    }

    #[test]
    fn a_possible_risk_is_confirmed_by_anyone_working_cases_and_dismissed_by_risk_or_a_lead() {
        let open = status(Open, None);
        let dismiss = Action::JudgeRisk { confirm: false };
        assert!(apply(&open, &agent("sam"), &Action::JudgeRisk { confirm: true }).is_ok());
        assert!(apply(&open, &Actor::new("ruth", [Role::Risk]), &dismiss).is_ok());
        assert!(apply(&open, &lead("dena"), &dismiss).is_ok());
        for who in [agent("sam"), Actor::new("helen", [Role::Leadership])] {
            let refusal = apply(&open, &who, &dismiss).unwrap_err().to_string();
            assert!(refusal.contains("dismissing a possible risk needs the risk or lead role"), "{refusal}");
        }
        assert!(apply(&status(Resolved, Some("sam")), &lead("dena"), &dismiss).is_err());
    }

    /// The whole (state × action) table for the case owner acting on their own case
    /// (or, for `open`, an agent acting on an unowned case). `None` means refused.
    #[test]
    fn every_state_and_action_pair_for_the_owner_follows_the_lifecycle() {
        let expected: &[(CaseState, &[Option<CaseState>])] = &[
            // claim, release, reassign, respond, offline, escalate, resolve(recovered), reopen, note
            (Open, &[Some(Claimed), None, None, Some(Responded), Some(Offline), Some(Open), None, None, Some(Open)]),
            (
                Claimed,
                &[
                    None,
                    Some(Open),
                    Some(Claimed),
                    Some(Responded),
                    Some(Offline),
                    Some(Claimed),
                    Some(Resolved),
                    None,
                    Some(Claimed),
                ],
            ),
            (
                Responded,
                &[
                    None,
                    None,
                    Some(Responded),
                    Some(Responded),
                    Some(Offline),
                    Some(Responded),
                    Some(Resolved),
                    None,
                    Some(Responded),
                ],
            ),
            (Offline, &[None, None, Some(Offline), None, None, Some(Offline), Some(Resolved), None, Some(Offline)]),
            (Resolved, &[None, None, None, None, None, None, None, Some(Open), Some(Resolved)]),
        ];
        for (state, row) in expected {
            let owner = if *state == Open { None } else { Some("dena") };
            let cur = status(*state, owner);
            for (action, want) in actions().iter().zip(row.iter()) {
                let got = apply(&cur, &agent("dena"), action);
                match (want, &got) {
                    (Some(s), Ok(t)) => assert_eq!(t.next.state, *s, "{state} + {}", action.name()),
                    (None, Err(_)) => {}
                    _ => panic!("{state} + {}: expected {want:?}, got {got:?}", action.name()),
                }
                if got.is_err() {
                    // A refusal never implies a change: `apply` returned no new status at all.
                    continue;
                }
            }
        }
    }

    #[test]
    fn second_claim_on_the_same_case_is_refused_and_names_the_owner() {
        let t = apply(&CaseStatus::open(), &agent("dena"), &Action::Claim).unwrap();
        assert_eq!(t.next.owner.as_deref(), Some("dena"));
        let err = apply(&t.next, &agent("sam"), &Action::Claim).unwrap_err();
        assert_eq!(err, Refusal::AlreadyClaimed { owner: "dena".into() });
        assert_eq!(err.to_string(), "is already claimed by dena");
        assert_eq!(apply(&t.next, &agent("dena"), &Action::Claim).unwrap_err(), Refusal::AlreadyYours);
    }

    #[test]
    fn another_agents_case_can_be_worked_only_by_a_lead() {
        let cur = status(Claimed, Some("dena"));
        for action in [
            Action::Release,
            Action::Respond { text: None, override_block: false },
            Action::Resolve { outcome: Outcome::Resolved, note: None },
            Action::TakeOffline { via: OfflineVia::Email, note: None },
        ] {
            let err = apply(&cur, &agent("sam"), &action).unwrap_err();
            assert!(matches!(err, Refusal::NotOwner { ref owner, .. } if owner == "dena"), "{err}");
            assert!(apply(&cur, &lead("priya"), &action).is_ok(), "lead may {}", action.name());
        }
        // Escalating and noting are open to every agent: anyone may raise the alarm.
        assert!(apply(&cur, &agent("sam"), &Action::Escalate { to: EscalationTarget::SiteOwner, note: None }).is_ok());
    }

    #[test]
    fn only_a_lead_may_approve_a_reply_or_override_findings() {
        let cur = status(Claimed, Some("dena"));
        let approve = Action::ApproveReply { text: "We're sorry.".into() };
        assert!(matches!(apply(&cur, &agent("dena"), &approve), Err(Refusal::NotPermitted { needs: "lead", .. })));
        let t = apply(&cur, &lead("priya"), &approve).unwrap();
        assert_eq!((t.next.state, t.event), (Claimed, "approve_reply"));
        assert!(apply(&status(Resolved, Some("dena")), &lead("priya"), &approve).is_err());
        let force = Action::Respond { text: Some("x".into()), override_block: true };
        assert!(matches!(apply(&cur, &agent("dena"), &force), Err(Refusal::NotPermitted { .. })));
        assert_eq!(apply(&cur, &lead("priya"), &force).unwrap().next.state, Responded);
    }

    #[test]
    fn asking_for_approval_claims_an_open_case_and_only_a_lead_sends_it_back() {
        let ask = Action::RequestApproval { text: "We're sorry.".into() };
        let t = apply(&CaseStatus::open(), &agent("sam"), &ask).unwrap();
        assert_eq!((t.next.state, t.next.owner.as_deref(), t.event), (Claimed, Some("sam"), "request_approval"));
        let err = apply(&status(Claimed, Some("dena")), &agent("sam"), &ask).unwrap_err();
        assert!(matches!(err, Refusal::NotOwner { .. }), "{err}");
        assert!(apply(&status(Offline, Some("sam")), &agent("sam"), &ask).is_err());
        let back = Action::RequestChanges { note: "drop the apology for the wait".into() };
        assert!(matches!(apply(&t.next, &agent("sam"), &back), Err(Refusal::NotPermitted { needs: "lead", .. })));
        assert_eq!(apply(&t.next, &lead("dena"), &back).unwrap().next, t.next);
    }

    #[test]
    fn leadership_may_only_add_notes() {
        let boss = Actor::new("cfo", [Role::Leadership]);
        let err = apply(&CaseStatus::open(), &boss, &Action::Claim).unwrap_err();
        assert!(matches!(err, Refusal::NotPermitted { .. }));
        assert!(apply(&CaseStatus::open(), &boss, &Action::Note { text: "seen".into() }).is_ok());
    }

    #[test]
    fn an_unclaimed_case_closes_only_as_spam_or_referral() {
        let open = CaseStatus::open();
        for ok in [Outcome::NotActionable, Outcome::Referred] {
            let t = apply(&open, &agent("sam"), &Action::Resolve { outcome: ok, note: None }).unwrap();
            assert_eq!((t.next.state, t.next.outcome), (Resolved, Some(ok)));
        }
        let err =
            apply(&open, &agent("sam"), &Action::Resolve { outcome: Outcome::Recovered, note: None }).unwrap_err();
        assert!(err.to_string().contains("claim it first"), "{err}");
    }

    #[test]
    fn resolving_twice_is_refused_and_reopen_clears_owner_and_outcome() {
        let done = status(Resolved, Some("dena"));
        let err =
            apply(&done, &agent("dena"), &Action::Resolve { outcome: Outcome::Resolved, note: None }).unwrap_err();
        assert_eq!(err.to_string(), "is resolved; you cannot resolve it; it is already resolved");
        let t = apply(&done, &agent("sam"), &Action::Reopen { note: None }).unwrap();
        assert_eq!(t.next, CaseStatus::open());
    }

    #[test]
    fn escalation_raises_the_level_and_records_the_target() {
        let t = apply(
            &status(Claimed, Some("dena")),
            &agent("dena"),
            &Action::Escalate { to: "oncall:px".parse().unwrap(), note: None },
        )
        .unwrap();
        assert_eq!(t.next.escalation_level, 1);
        assert_eq!(t.detail["to"]["kind"], "on_call");
    }

    #[test]
    fn responding_to_an_unclaimed_case_makes_the_responder_its_owner() {
        let t =
            apply(&CaseStatus::open(), &agent("sam"), &Action::Respond { text: None, override_block: false }).unwrap();
        assert_eq!(t.next.owner.as_deref(), Some("sam"));
    }

    #[test]
    fn reassigning_an_unowned_case_needs_a_lead() {
        let err = apply(&CaseStatus::open(), &agent("sam"), &Action::Reassign { to: "dena".into() }).unwrap_err();
        assert!(matches!(err, Refusal::NotPermitted { needs: "lead", .. }));
        let t = apply(&CaseStatus::open(), &lead("priya"), &Action::Reassign { to: "dena".into() }).unwrap();
        assert_eq!((t.next.state, t.next.owner.as_deref()), (Claimed, Some("dena")));
    }

    #[test]
    fn escalation_targets_parse_from_what_people_type() {
        assert_eq!("site-owner".parse(), Ok(EscalationTarget::SiteOwner));
        assert_eq!("risk".parse(), Ok(EscalationTarget::Role(Role::Risk)));
        assert_eq!("claimer".parse(), Ok(EscalationTarget::Owner));
        assert_eq!("oncall:px".parse(), Ok(EscalationTarget::OnCall("px".into())));
        assert_eq!("@dena".parse(), Ok(EscalationTarget::Person("dena".into())));
        assert!("the boss".parse::<EscalationTarget>().is_err());
        assert_eq!("No-Reply".parse(), Ok(Outcome::NoReply));
    }

    #[test]
    fn only_carebot_records_a_revision_and_it_keeps_the_state() {
        let r = Revision {
            old_rating: Some(1.0),
            new_rating: Some(4.0),
            text_changed: false,
            revision: 1,
            after_reply: true,
            published: None,
        };
        let resolved = CaseStatus {
            state: Resolved,
            owner: Some("sam".into()),
            outcome: Some(Outcome::Resolved),
            escalation_level: 0,
        };
        let t = apply(&resolved, &Actor::system(), &Action::Revise(r.clone())).unwrap();
        assert_eq!(t.next, resolved, "a revision never reopens or reassigns");
        assert_eq!(t.event, "revised");
        assert_eq!(t.detail["recovery"], true);
        assert_eq!(r.line(), "Review revised: rating 1 → 4 after our reply — recovery candidate");
        assert!(matches!(apply(&resolved, &lead("dena"), &Action::Revise(r)), Err(Refusal::NotPermitted { .. })));
        let before_reply = Revision {
            old_rating: Some(1.0),
            new_rating: Some(4.0),
            text_changed: true,
            revision: 2,
            after_reply: false,
            published: None,
        };
        assert!(!before_reply.recovery());
        assert_eq!(before_reply.line(), "Review revised: rating 1 → 4");
        let fell = Revision { new_rating: Some(1.0), old_rating: Some(3.0), after_reply: true, ..before_reply.clone() };
        assert!(!fell.recovery());
        let text = Revision { new_rating: None, old_rating: None, ..before_reply };
        assert_eq!(text.line(), "Review text revised");
    }
}
