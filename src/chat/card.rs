//! The Card: what every chat surface shows for a case, built once from the case, its mention
//! and the team file. Surfaces only lay it out (Block Kit, Discord embed, terminal box).

use crate::clock::from_ms;
use crate::domain::CaseState;
use crate::playbook::Playbooks;
use crate::store::{CaseRow, EventRow, MentionRow};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Longest mention excerpt shown on a card.
pub const TEXT_LIMIT: usize = 600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Button {
    Claim,
    Release,
    DraftReply,
    Escalate,
    TakeOffline,
    Resolve,
    Reopen,
    Reassign,
    Note,
    /// A lead approves the reply shown on the card (the press names the request).
    ApproveReply,
    RequestChanges,
    /// Pause the case's escalation steps and nudges for a while.
    Snooze,
    /// A lead corrects the site or situation.
    FixTriage,
    /// A "possible risk" case: risk management confirms it …
    ConfirmRisk,
    /// … or dismisses it back to the ordinary queue.
    DismissRisk,
}

impl Button {
    pub const ALL: [Button; 15] = [
        Button::ConfirmRisk,
        Button::DismissRisk,
        Button::Claim,
        Button::Release,
        Button::DraftReply,
        Button::Escalate,
        Button::TakeOffline,
        Button::Resolve,
        Button::Reopen,
        Button::Reassign,
        Button::Note,
        Button::ApproveReply,
        Button::RequestChanges,
        Button::Snooze,
        Button::FixTriage,
    ];
    pub fn label(&self) -> &'static str {
        match self {
            Button::Claim => "Claim",
            Button::Release => "Release",
            Button::DraftReply => "Draft reply",
            Button::Escalate => "Escalate",
            Button::TakeOffline => "Take offline",
            Button::Resolve => "Resolve",
            Button::Reopen => "Reopen",
            Button::Reassign => "Reassign",
            Button::Note => "Add note",
            Button::ApproveReply => "Approve reply",
            Button::RequestChanges => "Request changes",
            Button::Snooze => "Snooze",
            Button::FixTriage => "Fix triage",
            Button::ConfirmRisk => "Confirm risk",
            Button::DismissRisk => "Dismiss risk",
        }
    }
    /// The action id carried by the button (`claim`, `draft_reply`, …).
    pub fn id(&self) -> &'static str {
        match self {
            Button::Claim => "claim",
            Button::Release => "release",
            Button::DraftReply => "draft_reply",
            Button::Escalate => "escalate",
            Button::TakeOffline => "take_offline",
            Button::Resolve => "resolve",
            Button::Reopen => "reopen",
            Button::Reassign => "reassign",
            Button::Note => "note",
            Button::ApproveReply => "approve_reply",
            Button::RequestChanges => "request_changes",
            Button::Snooze => "snooze",
            Button::FixTriage => "fix_triage",
            Button::ConfirmRisk => "confirm_risk",
            Button::DismissRisk => "dismiss_risk",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tag {
    pub label: String,
    /// The words that triggered it, for "why".
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Card {
    pub case_id: i64,
    pub priority: String,
    pub situation: String,
    pub state: CaseState,
    pub owner: Option<String>,
    /// Where it was said; "forwarded post (confidential)" for confidential cases.
    pub source: String,
    pub site: Option<String>,
    /// The author's public handle; never shown for confidential cases.
    pub author: Option<String>,
    pub rating: Option<f64>,
    pub text: String,
    pub url: Option<String>,
    pub tags: Vec<Tag>,
    pub sla: Vec<(String, DateTime<Utc>)>,
    pub latest_step: Option<String>,
    pub buttons: Vec<Button>,
    pub confidential: bool,
    /// Near-identical mentions folded into this case ("+N similar").
    pub similar: i64,
    /// The reviewer raised their rating after our reply.
    pub recovery: bool,
    /// A reply waiting for a lead's approval.
    pub pending_reply: Option<PendingReply>,
}

/// A reply text an agent sent for approval, as the approval card shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingReply {
    /// The `request_approval` event: the Approve button binds this exact request.
    pub request: i64,
    pub asked_by: String,
    pub text: String,
    pub findings: Vec<String>,
}

/// The card line of a recovery candidate.
pub const RECOVERY: &str = "⤴ Recovery candidate: the rating rose after our reply";

fn trimmed(text: &str) -> String {
    if text.chars().count() <= TEXT_LIMIT {
        return text.to_string();
    }
    let cut: String = text.chars().take(TEXT_LIMIT).collect();
    format!("{}…", cut.trim_end())
}

/// Buttons offered in a state (the approval buttons come first while a reply waits).
pub fn buttons_for(state: CaseState) -> Vec<Button> {
    use Button::*;
    match state {
        CaseState::Open => vec![Claim, DraftReply, Escalate, TakeOffline, Resolve, Reassign, Snooze, FixTriage, Note],
        CaseState::Claimed => {
            vec![Release, DraftReply, Escalate, TakeOffline, Resolve, Reassign, Snooze, FixTriage, Note]
        }
        CaseState::Responded => vec![DraftReply, Escalate, TakeOffline, Resolve, Reassign, Snooze, FixTriage, Note],
        CaseState::Offline => vec![Escalate, Resolve, Reassign, Snooze, FixTriage, Note],
        CaseState::Resolved => vec![Reopen, Note],
    }
}

fn platform_name(id: Option<String>) -> &'static str {
    id.and_then(|p| crate::publish::Platform::parse(&p)).map_or("the platform", |p| p.name())
}

/// One line describing an event, for the card and the thread ("claimed by Dena Ortiz").
pub fn describe_event(e: &EventRow, playbooks: &Playbooks) -> String {
    let who = playbooks.team.person(&e.actor).map(|p| p.name.clone()).unwrap_or_else(|| e.actor.clone());
    let d = &e.detail;
    let s = |k: &str| d.get(k).and_then(|v| v.as_str()).map(str::to_string);
    match e.action.as_str() {
        "opened" => "opened".into(),
        "claim" => format!("claimed by {who}"),
        "release" => format!("released by {who}"),
        "reassign" => format!(
            "reassigned to {} by {who}",
            s("to").and_then(|t| playbooks.team.person(&t).map(|p| p.name.clone())).unwrap_or_default()
        ),
        "respond" => {
            let overridden = if d.get("override_by").is_some() { " (compliance findings overridden)" } else { "" };
            let platform = d
                .pointer("/publish/target/platform")
                .and_then(|v| v.as_str())
                .and_then(crate::publish::Platform::parse)
                .map(|p| p.name());
            let private = d.pointer("/publish/private_from").is_some_and(|p| !p.is_null());
            match (platform, d.pointer("/publish/dry_run").and_then(|v| v.as_bool())) {
                (Some(_), Some(false)) if private => {
                    format!("private reply by {who} sent on Messenger{overridden}; the case shows it once Facebook takes it")
                }
                (Some(p), Some(true)) => {
                    format!("reply marked responded by {who}{overridden}; dry run: not sent to {p}")
                }
                (Some(p), _) if d.pointer("/publish/edit").is_some_and(|e| !e.is_null()) => {
                    format!("changed reply by {who} sent to {p}{overridden}")
                }
                (Some(p), _) => {
                    format!("reply by {who} sent to {p}{overridden}; it shows as replied once {p} takes it")
                }
                _ if d.get("no_text_reason").is_some() => format!("marked responded by {who}, no reply text recorded"),
                _ => match s("link") {
                    Some(link) => format!("reply posted by {who}{overridden} — {link}"),
                    None => format!("public reply posted by {who}{overridden}"),
                },
            }
        }
        "offline" => format!("taken offline ({}) by {who}", s("via").unwrap_or_default()),
        "escalate" => {
            let to = d.get("to").map(|t| {
                let kind = t.get("kind").and_then(|k| k.as_str()).unwrap_or("");
                let id = t.get("id").and_then(|k| k.as_str()).unwrap_or("");
                match kind {
                    "site_owner" => "site owner".to_string(),
                    "owner" => "case owner".to_string(),
                    "role" => format!("{id} role"),
                    "on_call" => format!("on-call ({id})"),
                    "person" => playbooks.team.person(id).map(|p| p.name.clone()).unwrap_or_else(|| id.to_string()),
                    _ => "channel".to_string(),
                }
            });
            format!("escalated to {} by {who}", to.unwrap_or_default())
        }
        "resolve" => format!("resolved ({}) by {who}", s("outcome").unwrap_or_default()),
        "reopen" => format!("reopened by {who}"),
        "note" => format!("note by {who}"),
        "approve_reply" => format!("reply approved by {who}"),
        "request_approval" => format!("reply sent for a lead's approval by {who}"),
        "request_changes" => format!("reply sent back for changes by {who}"),
        "reminder" => {
            let to = s("person").map(|p| playbooks.team.person(&p).map(|x| x.name.clone()).unwrap_or(p));
            format!("{} reminded: {} due soon", to.unwrap_or_default(), s("clock").unwrap_or_default())
        }
        "confirm_risk" => format!(
            "possible risk confirmed by {who}: now {}",
            s("to").map(|t| playbooks.situations.get(&t).map(|x| x.label.clone()).unwrap_or(t)).unwrap_or_default()
        ),
        "dismiss_risk" => format!(
            "possible risk dismissed by {who}: back to {}",
            s("to").map(|t| playbooks.situations.get(&t).map(|x| x.label.clone()).unwrap_or(t)).unwrap_or_default()
        ),
        "reclassify" => {
            let field = s("field").unwrap_or_default();
            let to = s("to");
            let shown = match field.as_str() {
                "site" => to
                    .map(|t| playbooks.team.site(&t).map(|x| x.name.clone()).unwrap_or(t))
                    .unwrap_or_else(|| "no site".into()),
                "situation" => {
                    to.map(|t| playbooks.situations.get(&t).map(|x| x.label.clone()).unwrap_or(t)).unwrap_or_default()
                }
                _ => to
                    .map(|t| playbooks.triage_rules.category(&t).map(|r| r.label.clone()).unwrap_or(t))
                    .unwrap_or_default(),
            };
            format!("{field} set to {shown} by {who}")
        }
        "snooze" => {
            let until = d.get("until").and_then(|v| v.as_i64()).map(crate::clock::from_ms);
            let local = until.map(|u| u.with_timezone(&playbooks.team.timezone).format("%a %H:%M %Z").to_string());
            format!("nudges snoozed until {} by {who} (due times unchanged)", local.unwrap_or_default())
        }
        "escalation" => {
            let names: Vec<String> = d
                .get("people")
                .and_then(|p| p.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str())
                        .map(|id| playbooks.team.person(id).map(|p| p.name.clone()).unwrap_or_else(|| id.to_string()))
                        .collect()
                })
                .unwrap_or_default();
            let to = if names.is_empty() { "the channel".to_string() } else { names.join(", ") };
            format!(
                "escalated to {to} at {} ({} overdue)",
                crate::clock::from_ms(e.at).with_timezone(&playbooks.team.timezone).format("%H:%M"),
                s("clock").unwrap_or_default()
            )
        }
        "revised" => {
            let old = d.get("old_rating").and_then(|v| v.as_f64());
            let new = d.get("new_rating").and_then(|v| v.as_f64());
            match (old, new) {
                (Some(o), Some(n)) if o != n => format!("review revised: rating {o} → {n}"),
                _ => "review text revised".into(),
            }
        }
        "text_exported" => format!("mention text exported by {who}"),
        "published" | "publish_dry_run" => {
            let platform =
                s("platform").and_then(|p| crate::publish::Platform::parse(&p)).map_or("the platform", |p| p.name());
            let at = crate::clock::from_ms(e.at).with_timezone(&playbooks.team.timezone).format("%H:%M");
            let link = s("url").map(|u| format!(" — {u}")).unwrap_or_default();
            if d.get("private").and_then(|v| v.as_bool()) == Some(true) {
                format!("replied privately on Messenger at {at} by {who}")
            } else if e.action == "publish_dry_run" {
                format!(
                    "dry run: the reply would have been posted on {platform} at {at} by {who} (publish.mode = dry-run)"
                )
            } else {
                format!("replied on {platform} at {at} by {who}{link}")
            }
        }
        "reply_edited" => {
            let at = crate::clock::from_ms(e.at).with_timezone(&playbooks.team.timezone).format("%H:%M");
            format!("our reply on {} was changed at {at} by {who}", platform_name(s("platform")))
        }
        "reply_posted" => format!(
            "the reply reached {} after all{}",
            platform_name(s("platform")),
            if d.get("responded").and_then(|v| v.as_bool()) == Some(true) {
                "; the case is responded again"
            } else {
                ""
            }
        ),
        "unpublish" if d.get("by_hand").and_then(|v| v.as_bool()) == Some(true) => format!(
            "{who} recorded our reply on {0} as deleted by hand (carebot has no id for it: delete it on {0} if that \
             is not done)",
            platform_name(s("platform"))
        ),
        "unpublish" => format!("{who} asked carebot to take our reply down from {}", platform_name(s("platform"))),
        "unpublished" => {
            let at = crate::clock::from_ms(e.at).with_timezone(&playbooks.team.timezone).format("%H:%M");
            format!("our reply was taken down from {} at {at} (asked by {who})", platform_name(s("platform")))
        }
        "unpublish_failed" => format!(
            "our reply on {} was NOT taken down: {}; it is still public",
            platform_name(s("platform")),
            s("reason").unwrap_or_default()
        ),
        "publish_failed" if d.get("edit").and_then(|v| v.as_bool()) == Some(true) => format!(
            "the change to our reply was NOT made on {}: {}; the earlier reply is still public",
            platform_name(s("platform")),
            s("reason").unwrap_or_default()
        ),
        "publish_failed" => format!(
            "the reply was NOT posted on {}: {}{}",
            s("platform").and_then(|p| crate::publish::Platform::parse(&p)).map_or("the platform", |p| p.name()),
            s("reason").unwrap_or_default(),
            if d.get("reopened").and_then(|v| v.as_bool()) == Some(true) {
                "; the case is back to claimed"
            } else {
                ""
            }
        ),
        other => other.to_string(),
    }
}

impl Card {
    /// The card of a case from its row, mention and history (oldest event first).
    pub fn build(case: &CaseRow, mention: &MentionRow, events: &[EventRow], playbooks: &Playbooks) -> Card {
        // An export is an audit record, not a step in the case: it never becomes "Latest".
        let last = events.iter().rev().find(|e| e.action != "text_exported");
        let situation = playbooks.situations.get(&case.situation);
        let team = &playbooks.team;
        let rule_label = |kind: &str, id: &str| match kind {
            "site" => team.site(id).map(|s| s.name.clone()).unwrap_or_else(|| id.to_string()),
            _ => playbooks
                .triage_rules
                .rules
                .iter()
                .find(|r| r.id == id)
                .map(|r| r.label.clone())
                .unwrap_or_else(|| id.to_string()),
        };
        // Once someone dismissed it, "possible risk" is history, not a tag; once someone
        // confirmed it, the tag says so and keeps what raised it.
        let decision = events.iter().rev().find(|e| e.action == "confirm_risk" || e.action == "dismiss_risk");
        let dismissed = decision.is_some_and(|e| e.action == "dismiss_risk");
        let confirmed_by = decision
            .filter(|e| e.action == "confirm_risk")
            .map(|e| team.person(&e.actor).map(|p| p.name.clone()).unwrap_or_else(|| e.actor.clone()));
        let tags = case
            .reasons
            .iter()
            .filter(|r| r.kind != "site" && !(dismissed && r.kind == "possible_risk"))
            .map(|r| Tag {
                label: match r.kind.as_str() {
                    "risk" => format!("⚠ {}", rule_label(&r.kind, &r.rule)),
                    "possible_risk" if confirmed_by.is_some() => {
                        format!("⚠ Risk confirmed by {}", confirmed_by.as_deref().unwrap_or_default())
                    }
                    "possible_risk" if r.rule == "model" => "⚠? Possible risk (model)".to_string(),
                    "possible_risk" => format!("⚠? {}", rule_label("risk", &r.rule)),
                    "model" => format!("{} (model)", rule_label("category", &r.rule)),
                    "urgency" => format!("⏱ {}", rule_label(&r.kind, &r.rule)),
                    _ => rule_label(&r.kind, &r.rule),
                },
                why: r.matched.clone(),
            })
            .collect();
        let mut sla = Vec::new();
        for (label, due, met) in [
            ("Acknowledge", case.ack_due, case.claimed_at.is_some() || case.state != CaseState::Open),
            ("First response", case.response_due, case.first_response_at.is_some()),
            ("Follow-up", case.follow_up_due, false),
            ("Resolve", case.resolve_due, case.state == CaseState::Resolved),
        ] {
            if let (Some(d), false) = (due, met) {
                sla.push((label.to_string(), from_ms(d)));
            }
        }
        let pending_reply = crate::store::cases::awaiting_approval(events).map(|e| PendingReply {
            request: e.id,
            asked_by: team.person(&e.actor).map(|p| p.name.clone()).unwrap_or_else(|| e.actor.clone()),
            text: crate::store::cases::event_text(e).unwrap_or_default().to_string(),
            findings: e
                .detail
                .get("findings")
                .and_then(|f| f.as_array())
                .map(|a| a.iter().filter_map(|v| v.as_str()).map(str::to_string).collect())
                .unwrap_or_default(),
        });
        let source =
            if case.confidential { "forwarded post (confidential)".to_string() } else { mention.source.clone() };
        Card {
            case_id: case.id,
            priority: case.priority.to_string(),
            situation: situation.map(|s| s.label.clone()).unwrap_or_else(|| case.situation.clone()),
            state: case.state,
            owner: case.owner.as_ref().map(|o| team.person(o).map(|p| p.name.clone()).unwrap_or_else(|| o.clone())),
            source,
            site: case.site.as_ref().map(|s| team.site(s).map(|x| x.name.clone()).unwrap_or_else(|| s.clone())),
            author: if case.confidential { None } else { mention.author.clone() },
            rating: mention.rating,
            text: mention.text.as_deref().map(trimmed).unwrap_or_else(|| "(text purged by retention)".into()),
            url: if case.confidential { None } else { mention.url.clone() },
            tags,
            sla,
            latest_step: last.map(|e| describe_event(e, playbooks)),
            buttons: {
                let mut b = Vec::new();
                let possible = situation.is_some_and(|s| s.when.possible_risk == Some(true))
                    || (!case.risk && decision.is_none() && case.reasons.iter().any(|r| r.kind == "possible_risk"));
                if possible && case.state != CaseState::Resolved {
                    b.extend([Button::ConfirmRisk, Button::DismissRisk]);
                }
                if pending_reply.is_some() {
                    b.extend([Button::ApproveReply, Button::RequestChanges]);
                }
                b.extend(buttons_for(case.state));
                b
            },
            pending_reply,
            confidential: case.confidential,
            similar: case.similar_count,
            recovery: case.recovery_at.is_some(),
        }
    }

    /// What pressing `b` on this card sends back (Approve reply names the request shown).
    pub fn press(&self, b: Button) -> crate::chat::command::Press {
        let request = if b == Button::ApproveReply { self.pending_reply.as_ref().map(|p| p.request) } else { None };
        crate::chat::command::Press { button: b, case_id: self.case_id, request }
    }

    /// The one line chat apps show in notifications; carries no mention text or author.
    /// A fingerprint of everything the card shows: equal fingerprints, same card.
    pub fn fingerprint(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let digest = <sha2::Sha256 as sha2::Digest>::digest(&json);
        digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }

    pub fn summary(&self) -> String {
        let site = self.site.as_deref().unwrap_or("no site detected");
        format!("[{}] Case #{} · {} · {site} · {}", self.priority, self.case_id, self.situation, self.state)
    }

    /// A plain-text rendering (console surface, notifications, tests).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let site = self.site.as_deref().unwrap_or("no site detected");
        out.push_str(&format!("[{}] Case #{} · {} · {}\n", self.priority, self.case_id, self.situation, site));
        let mut who = format!("Source: {}", self.source);
        if let Some(a) = &self.author {
            who.push_str(&format!(" · by {a}"));
        }
        if let Some(r) = self.rating {
            who.push_str(&format!(" · {r}★"));
        }
        out.push_str(&who);
        out.push('\n');
        for line in self.text.lines() {
            out.push_str(&format!("> {line}\n"));
        }
        if let Some(u) = &self.url {
            out.push_str(&format!("Link: {u}\n"));
        }
        if self.similar > 0 {
            out.push_str(&format!("+{} similar mention(s)\n", self.similar));
        }
        if self.recovery {
            out.push_str(&format!("{RECOVERY}\n"));
        }
        if !self.tags.is_empty() {
            let tags: Vec<String> = self.tags.iter().map(|t| format!("{} (\"{}\")", t.label, t.why)).collect();
            out.push_str(&format!("Tags: {}\n", tags.join(", ")));
        }
        for (label, due) in &self.sla {
            out.push_str(&format!("{label} due {}\n", due.format("%Y-%m-%d %H:%M UTC")));
        }
        let owner = self.owner.as_deref().map(|o| format!(" · owner {o}")).unwrap_or_default();
        out.push_str(&format!("State: {}{owner}\n", self.state));
        if let Some(s) = &self.latest_step {
            out.push_str(&format!("Latest: {s}\n"));
        }
        if let Some(p) = &self.pending_reply {
            out.push_str(&format!("Reply awaiting a lead's approval (asked by {}):\n", p.asked_by));
            for line in p.text.lines() {
                out.push_str(&format!("  | {line}\n"));
            }
            if !p.findings.is_empty() {
                out.push_str(&format!("  Findings: {}\n", p.findings.join(", ")));
            }
        }
        let buttons: Vec<String> = self.buttons.iter().map(|b| format!("[{}]", b.label())).collect();
        out.push_str(&buttons.join(" "));
        out.push('\n');
        out
    }
}
