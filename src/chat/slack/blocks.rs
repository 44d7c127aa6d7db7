//! Laying out the neutral Card and Form as Slack Block Kit: the case card with its buttons,
//! and the modal that asks for an escalation target or an outcome.

use crate::chat::escape;
use crate::chat::interact::{Form, FormKind};
use crate::chat::{Button, Card};
use slack_morphism::prelude::*;

/// Block and action ids carebot reads back from modal submissions.
pub const CHOICE_BLOCK: &str = "choice";
pub const CHOICE_ACTION: &str = "choice";
pub const NOTE_BLOCK: &str = "note";
pub const NOTE_ACTION: &str = "note";
pub const OVERRIDE_BLOCK: &str = "override";
pub const OVERRIDE_ACTION: &str = "override";
pub const PUBLISH_BLOCK: &str = "publish";
pub const PUBLISH_ACTION: &str = "publish";
pub const LINK_BLOCK: &str = "link";
pub const LINK_ACTION: &str = "link";
/// Every card button's action id starts with this; the value carries `ACTION:CASE`.
pub const BUTTON_PREFIX: &str = "carebot_";
/// The callback id of carebot's modals.
pub const FORM_CALLBACK: &str = "carebot_form";

/// A time every reader sees in their own time zone, with a UTC fallback.
fn local_time(at: chrono::DateTime<chrono::Utc>) -> String {
    format!("<!date^{}^{{date_short_pretty}} {{time}}|{}>", at.timestamp(), at.format("%Y-%m-%d %H:%M UTC"))
}

fn stars(rating: f64) -> String {
    let full = rating.round().clamp(0.0, 5.0) as usize;
    format!("{}{} {rating}", "★".repeat(full), "☆".repeat(5 - full))
}

fn md(text: String) -> SlackBlockText {
    SlackBlockText::MarkDown(SlackBlockMarkDownText::new(text))
}

fn context(text: String) -> SlackBlock {
    SlackContextBlock::new(vec![SlackContextBlockElement::MarkDown(SlackBlockMarkDownText::new(text))]).into()
}

fn button(card: &Card, b: Button) -> SlackActionBlockElement {
    let mut el = SlackBlockButtonElement::new(b.label().into())
        .with_action_id(format!("{BUTTON_PREFIX}{}", b.id()).into())
        .with_value(card.press(b).encode());
    match b {
        Button::Claim => el = el.with_style(SlackBlockButtonStyle::Primary),
        Button::Escalate | Button::ConfirmRisk => el = el.with_style(SlackBlockButtonStyle::Danger),
        Button::ApproveReply => el = el.with_style(SlackBlockButtonStyle::Primary),
        _ => {}
    }
    SlackActionBlockElement::Button(el)
}

/// The case card: what was said, where, why it was tagged, when it is due, and the buttons.
pub fn card_blocks(card: &Card) -> Vec<SlackBlock> {
    let mut blocks: Vec<SlackBlock> = Vec::new();
    let site = card.site.as_deref().unwrap_or("no site detected");
    blocks.push(
        SlackSectionBlock::new()
            .with_text(md(format!(
                "*[{}] Case #{} · {}*\n{} · {}",
                card.priority,
                card.case_id,
                escape::slack(&card.situation),
                escape::slack(&card.source),
                escape::slack(site)
            )))
            .into(),
    );
    let mut fields = Vec::new();
    if let Some(a) = &card.author {
        fields.push(md(format!("*Author*\n{}", escape::slack(a))));
    }
    if let Some(r) = card.rating {
        fields.push(md(format!("*Rating*\n{}", stars(r))));
    }
    let owner = card.owner.as_deref().map(|o| format!(" · {}", escape::slack(o))).unwrap_or_default();
    fields.push(md(format!("*State*\n{}{owner}", card.state)));
    blocks.push(SlackSectionBlock::new().with_fields(fields).into());
    let quoted: String = card.text.lines().map(|l| format!("&gt; {}\n", escape::slack(l))).collect();
    blocks.push(SlackSectionBlock::new().with_text(md(quoted)).into());
    let mut extra = Vec::new();
    if let Some(u) = &card.url {
        extra.push(format!("<{}|Open the post>", u.replace('|', "%7C").replace('>', "%3E")));
    }
    if card.recovery {
        extra.push(format!("*{}*", super::super::card::RECOVERY));
    }
    if card.similar > 0 {
        extra.push(format!("*+{} similar*", card.similar));
    }
    if !card.tags.is_empty() {
        let tags: Vec<String> = card
            .tags
            .iter()
            .map(|t| format!("`{}` (\"{}\")", escape::slack(&t.label), escape::slack(&t.why)))
            .collect();
        extra.push(tags.join("  "));
    }
    if !extra.is_empty() {
        blocks.push(context(extra.join(" · ")));
    }
    if !card.sla.is_empty() {
        let due: Vec<String> = card.sla.iter().map(|(l, at)| format!("{l} due {}", local_time(*at))).collect();
        blocks.push(context(due.join(" · ")));
    }
    if let Some(s) = &card.latest_step {
        blocks.push(context(format!("Latest: {}", escape::slack(s))));
    }
    if let Some(p) = &card.pending_reply {
        let quoted: String = p.text.lines().map(|l| format!("&gt; {}\n", escape::slack(l))).collect();
        let text = format!("*Reply awaiting a lead's approval* (asked by {})\n{quoted}", escape::slack(&p.asked_by));
        blocks.push(SlackSectionBlock::new().with_text(md(cap(&text, 2900))).into());
        if !p.findings.is_empty() {
            blocks.push(context(cap(&format!("Findings: {}", escape::slack(&p.findings.join("; "))), 2900)));
        }
    }
    if !card.buttons.is_empty() {
        // Slack allows 25 elements per actions block; a card has at most 11 buttons.
        let buttons = card.buttons.iter().map(|b| button(card, *b)).collect();
        blocks.push(SlackActionsBlock::new(buttons).with_block_id(format!("case_{}", card.case_id).into()).into());
    }
    blocks
}

/// The App Home tab: the person's open cases and the unclaimed queue, each case a line
/// with its buttons.
pub fn home_view(sections: &[(String, Vec<crate::chat::interact::HomeCase>)]) -> SlackView {
    let mut blocks: Vec<SlackBlock> = Vec::new();
    for (title, cases) in sections {
        blocks.push(SlackHeaderBlock::new(cap(title, 150).as_str().into()).into());
        if cases.is_empty() {
            blocks.push(context("Nothing here.".into()));
        }
        for c in cases {
            blocks.push(SlackSectionBlock::new().with_text(md(cap(&escape::slack(&c.line), 2900))).into());
            let buttons = c
                .buttons
                .iter()
                .map(|p| {
                    SlackActionBlockElement::Button(
                        SlackBlockButtonElement::new(p.button.label().into())
                            .with_action_id(format!("{BUTTON_PREFIX}{}", p.button.id()).into())
                            .with_value(p.encode()),
                    )
                })
                .collect();
            blocks.push(SlackActionsBlock::new(buttons).with_block_id(format!("home_{}", c.case_id).into()).into());
        }
        blocks.push(SlackDividerBlock::new().into());
    }
    SlackView::Home(SlackHomeView::new(blocks))
}

/// A nudge DM: its text, a link to the card, and the buttons (same ids as the card's).
pub fn nudge_blocks(text: &str, nudge: &crate::chat::Nudge) -> Vec<SlackBlock> {
    let mut blocks: Vec<SlackBlock> =
        vec![SlackSectionBlock::new().with_text(md(cap(&escape::slack(text), 2900))).into()];
    if let Some(link) = &nudge.link {
        blocks.push(context(format!("<{}|Open the card>", link.replace('|', "%7C").replace('>', "%3E"))));
    }
    if !nudge.buttons.is_empty() {
        let buttons = nudge
            .buttons
            .iter()
            .map(|p| {
                let mut el = SlackBlockButtonElement::new(p.button.label().into())
                    .with_action_id(format!("{BUTTON_PREFIX}{}", p.button.id()).into())
                    .with_value(p.encode());
                if p.button == Button::Claim {
                    el = el.with_style(SlackBlockButtonStyle::Primary);
                }
                SlackActionBlockElement::Button(el)
            })
            .collect();
        blocks.push(SlackActionsBlock::new(buttons).with_block_id(format!("nudge_{}", nudge.case_id).into()).into());
    }
    blocks
}

/// Cuts `s` to at most `n` characters (Block Kit text limits).
fn cap(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    format!("{}…", s.chars().take(n - 1).collect::<String>())
}

/// The modal for a form; `private_metadata` carries `KIND:CASE` back on submission. In
/// the reply form, picking another template redraws the modal (`dispatch_action`).
pub fn modal(form: &Form) -> SlackView {
    let mut blocks: Vec<SlackBlock> = Vec::new();
    if !form.info.is_empty() {
        let lines: Vec<String> = form.info.iter().map(|l| format!("• {}", escape::slack(l))).collect();
        blocks.push(context(cap(&lines.join("\n"), 2900)));
    }
    if !form.choices.is_empty() {
        // Slack allows 100 options, 75 characters per option label.
        let options: Vec<SlackBlockChoiceItem<SlackBlockPlainTextOnly>> = form
            .choices
            .iter()
            .take(100)
            .map(|c| SlackBlockChoiceItem::new(cap(&c.label, 75).as_str().into(), c.id.clone()))
            .collect();
        let initial = form.chosen.as_ref().and_then(|id| options.iter().find(|o| &o.value == id).cloned());
        let mut select =
            SlackBlockStaticSelectElement::new().with_action_id(CHOICE_ACTION.into()).with_options(options);
        if let Some(o) = initial {
            select = select.with_initial_option(o);
        }
        let mut block = SlackInputBlock::new(form.prompt.as_str().into(), SlackInputBlockElement::StaticSelect(select))
            .with_block_id(CHOICE_BLOCK.into());
        if form.kind == FormKind::Reply {
            block = block.with_dispatch_action(true);
        }
        blocks.push(block.into());
    }
    if let Some(t) = &form.text {
        let mut input = SlackBlockPlainTextInputElement::new()
            .with_action_id(NOTE_ACTION.into())
            .with_multiline(true)
            .with_max_length(3000);
        if !t.initial.is_empty() {
            input = input.with_initial_value(cap(&t.initial, 3000));
        }
        blocks.push(
            SlackInputBlock::new(t.label.as_str().into(), SlackInputBlockElement::PlainTextInput(input))
                .with_block_id(NOTE_BLOCK.into())
                .with_optional(!t.required)
                .into(),
        );
    }
    if form.can_override {
        let tick = SlackBlockChoiceItem::new(md("Accept blocking findings (lead override)".into()), "override".into());
        let boxes = SlackBlockCheckboxesElement::new(vec![tick]).with_action_id(OVERRIDE_ACTION.into());
        blocks.push(
            SlackInputBlock::new("Lead".into(), SlackInputBlockElement::Checkboxes(boxes))
                .with_block_id(OVERRIDE_BLOCK.into())
                .with_optional(true)
                .into(),
        );
    }
    if let Some(platform) = &form.publish_to {
        let tick =
            SlackBlockChoiceItem::new(md(format!("Post it on {platform} as the organisation")), "publish".into());
        let boxes = SlackBlockCheckboxesElement::new(vec![tick]).with_action_id(PUBLISH_ACTION.into());
        blocks.push(
            SlackInputBlock::new("Publish".into(), SlackInputBlockElement::Checkboxes(boxes))
                .with_block_id(PUBLISH_BLOCK.into())
                .with_optional(true)
                .into(),
        );
    }
    if form.ask_link {
        let input = SlackBlockPlainTextInputElement::new().with_action_id(LINK_ACTION.into()).with_max_length(2000);
        blocks.push(
            SlackInputBlock::new("Link to your posted reply".into(), SlackInputBlockElement::PlainTextInput(input))
                .with_block_id(LINK_BLOCK.into())
                .into(),
        );
    }
    // Slack limits modal titles to 24 characters and button labels to 24.
    let title: String = form.title.chars().take(24).collect();
    let submit: String = form.submit.chars().take(24).collect();
    SlackView::Modal(
        SlackModalView::new(title.into(), blocks)
            .with_submit(submit.into())
            .with_close("Cancel".into())
            .with_private_metadata(form.kind.encode(form.case_id))
            .with_callback_id(FORM_CALLBACK.into()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CaseState;

    fn card(state: CaseState) -> Card {
        Card {
            case_id: 7,
            priority: "P2".into(),
            situation: "Negative review".into(),
            state,
            owner: None,
            source: "google".into(),
            site: Some("Riverside".into()),
            author: Some("Pat <!channel>".into()),
            rating: Some(1.0),
            text: "Waited 5 hours <@U123> & nobody came".into(),
            url: Some("https://g.co/r/1".into()),
            tags: vec![],
            sla: vec![("Acknowledge".into(), chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap())],
            latest_step: None,
            buttons: crate::chat::card::buttons_for(state),
            confidential: false,
            similar: 0,
            recovery: false,
            pending_reply: None,
        }
    }

    #[test]
    fn an_open_card_has_the_five_buttons_with_case_values() {
        let v = serde_json::to_value(card_blocks(&card(CaseState::Open))).unwrap();
        let actions = v.as_array().unwrap().iter().find(|b| b["type"] == "actions").unwrap();
        let labels: Vec<&str> =
            actions["elements"].as_array().unwrap().iter().map(|e| e["text"]["text"].as_str().unwrap()).collect();
        assert_eq!(
            labels,
            [
                "Claim",
                "Draft reply",
                "Escalate",
                "Take offline",
                "Resolve",
                "Reassign",
                "Snooze",
                "Fix triage",
                "Add note"
            ]
        );
        assert_eq!(actions["elements"][0]["value"], "claim:7");
        assert_eq!(actions["elements"][0]["action_id"], "carebot_claim");
    }

    #[test]
    fn user_text_cannot_ping_or_forge_links() {
        let s = serde_json::to_string(&card_blocks(&card(CaseState::Open))).unwrap();
        assert!(!s.contains("<!channel>") && !s.contains("<@U123>"), "{s}");
        assert!(s.contains("&lt;@U123&gt; &amp; nobody"));
        assert!(s.contains("<!date^1800000000^{date_short_pretty} {time}|"));
    }

    #[test]
    fn the_modal_carries_the_form_kind_and_case() {
        let form = Form {
            kind: crate::chat::interact::FormKind::Resolve,
            case_id: 9,
            title: "Resolve case #9".into(),
            prompt: "Outcome".into(),
            choices: vec![crate::chat::interact::Choice { id: "resolved".into(), label: "Resolved".into() }],
            chosen: None,
            text: None,
            info: vec![],
            can_override: false,
            publish_to: None,
            ask_link: false,
            submit: "Resolve".into(),
        };
        let v = serde_json::to_value(modal(&form)).unwrap();
        assert_eq!(v["type"], "modal");
        assert_eq!(v["private_metadata"], "resolve:9");
        assert_eq!(v["blocks"][0]["element"]["options"][0]["value"], "resolved");
    }
}
