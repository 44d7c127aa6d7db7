//! Laying out the neutral Card, Form and command set for Discord with serenity's builders:
//! the case embed with its buttons, the select menu a form becomes, and the `/care`
//! application command with its subcommands.

use crate::chat::command::{ArgKind, ArgSpec, COMMANDS};
use crate::chat::interact::Form;
use crate::chat::{escape, Button, Card};
use crate::domain::Outcome;
use serde_json::{json, Value};
use serenity::all::{ButtonStyle, CommandOptionType, InputTextStyle};
use serenity::builder::{
    CreateActionRow, CreateButton, CreateCommand, CreateCommandOption, CreateEmbed, CreateEmbedFooter, CreateInputText,
    CreateSelectMenu, CreateSelectMenuKind, CreateSelectMenuOption,
};

/// Custom ids of form select menus and modals start with this; the rest is `KIND:CASE`.
pub const FORM_PREFIX: &str = "form:";
/// The reply preview's template select: `tpl:CASE`.
pub const TEMPLATE_PREFIX: &str = "tpl:";
/// The reply preview's "Edit and send" button: `edit:CASE:TEMPLATE`.
pub const EDIT_PREFIX: &str = "edit:";
/// The custom ids of a modal's text inputs.
pub const TEXT_INPUT: &str = "text";
pub const OVERRIDE_INPUT: &str = "override";
pub const PUBLISH_INPUT: &str = "publish";
pub const LINK_INPUT: &str = "link";

fn colour(priority: &str) -> u32 {
    match priority {
        "P1" => 0xC0392B,
        "P2" => 0xE67E22,
        "P3" => 0xF1C40F,
        _ => 0x95A5A6,
    }
}

/// Discord field values are limited to 1024 characters.
fn cap(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    format!("{}…", s.chars().take(n - 1).collect::<String>())
}

pub fn embed(card: &Card) -> CreateEmbed {
    let mut e = CreateEmbed::new()
        .title(format!("[{}] Case #{} · {}", card.priority, card.case_id, card.situation))
        .colour(colour(&card.priority))
        .description(cap(&escape::discord(&card.text), 3500))
        .field("Source", cap(&escape::discord(&card.source), 1024), true)
        .field("Site", card.site.as_deref().unwrap_or("no site detected"), true);
    if let Some(a) = &card.author {
        e = e.field("Author", cap(&escape::discord(a), 1024), true);
    }
    if let Some(r) = card.rating {
        e = e.field("Rating", format!("{r}★"), true);
    }
    let owner = card.owner.as_deref().map(|o| format!(" · {}", escape::discord(o))).unwrap_or_default();
    e = e.field("State", format!("{}{owner}", card.state), true);
    if card.recovery {
        e = e.field("Recovery", crate::chat::card::RECOVERY, false);
    }
    if card.similar > 0 {
        e = e.field("Similar", format!("+{}", card.similar), true);
    }
    if !card.tags.is_empty() {
        let tags: Vec<String> =
            card.tags.iter().map(|t| format!("{} (\"{}\")", t.label, escape::discord(&t.why))).collect();
        e = e.field("Tags and why", cap(&tags.join("\n"), 1024), false);
    }
    if !card.sla.is_empty() {
        let due: Vec<String> = card.sla.iter().map(|(l, at)| format!("{l} <t:{}:R>", at.timestamp())).collect();
        e = e.field("Due", due.join("\n"), false);
    }
    // Only a web link: Discord refuses the whole embed for anything else.
    if let Some(u) = card.url.as_deref().filter(|u| u.starts_with("https://") || u.starts_with("http://")) {
        e = e.url(u);
    }
    if let Some(p) = &card.pending_reply {
        let mut shown = format!("Asked by {}:\n{}", escape::discord(&p.asked_by), escape::discord(&p.text));
        if !p.findings.is_empty() {
            shown.push_str(&format!("\nFindings: {}", escape::discord(&p.findings.join("; "))));
        }
        e = e.field("Reply awaiting a lead's approval", cap(&shown, 1024), false);
    }
    if let Some(s) = &card.latest_step {
        e = e.footer(CreateEmbedFooter::new(cap(&format!("Latest: {s}"), 2048)));
    }
    e
}

/// The card's buttons; each custom id carries `ACTION:CASE`.
pub fn buttons(card: &Card) -> Vec<CreateActionRow> {
    let buttons: Vec<CreateButton> = card
        .buttons
        .iter()
        .map(|b| {
            let style = match b {
                Button::Claim => ButtonStyle::Primary,
                Button::Escalate | Button::ConfirmRisk => ButtonStyle::Danger,
                Button::Resolve | Button::ApproveReply => ButtonStyle::Success,
                _ => ButtonStyle::Secondary,
            };
            CreateButton::new(card.press(*b).encode()).label(b.label()).style(style)
        })
        .collect();
    // Discord allows five buttons per row.
    buttons.chunks(5).map(|row| CreateActionRow::Buttons(row.to_vec())).collect()
}

/// Rows of buttons for presses (a nudge's Claim / Snooze), five to a row.
pub fn press_buttons(presses: &[crate::chat::command::Press]) -> Vec<CreateActionRow> {
    let buttons: Vec<CreateButton> = presses
        .iter()
        .map(|p| {
            let style = if p.button == Button::Claim { ButtonStyle::Primary } else { ButtonStyle::Secondary };
            CreateButton::new(p.encode()).label(p.button.label()).style(style)
        })
        .collect();
    buttons.chunks(5).map(|row| CreateActionRow::Buttons(row.to_vec())).collect()
}

/// A form as a select menu, shown privately to the person who clicked.
pub fn select(form: &Form) -> CreateActionRow {
    // Discord: at most 25 options.
    let options =
        form.choices.iter().take(25).map(|c| CreateSelectMenuOption::new(cap(&c.label, 100), c.id.clone())).collect();
    CreateActionRow::SelectMenu(
        CreateSelectMenu::new(
            format!("{FORM_PREFIX}{}", form.kind.encode(form.case_id)),
            CreateSelectMenuKind::String { options },
        )
        .placeholder(cap(&form.prompt, 150)),
    )
}

/// A form that needs text, as a Discord modal (interaction response type 9): one text
/// input, and for a lead on the reply form a second one to accept blocking findings.
pub fn modal(form: &Form) -> Value {
    let field = form.text.clone().unwrap_or_default();
    // Discord: titles and labels up to 45 characters, values up to 4000.
    let mut input = CreateInputText::new(InputTextStyle::Paragraph, cap(&field.label, 45), TEXT_INPUT)
        .required(field.required)
        .max_length(4000);
    if !field.initial.is_empty() {
        input = input.value(cap(&field.initial, 4000));
    }
    let mut rows = vec![CreateActionRow::InputText(input)];
    if form.can_override {
        rows.push(CreateActionRow::InputText(
            CreateInputText::new(InputTextStyle::Short, "Lead: type override to accept findings", OVERRIDE_INPUT)
                .required(false)
                .max_length(20),
        ));
    }
    if let Some(platform) = &form.publish_to {
        rows.push(CreateActionRow::InputText(
            CreateInputText::new(
                InputTextStyle::Short,
                cap(&format!("Post it on {platform}? Type yes"), 45),
                PUBLISH_INPUT,
            )
            .required(false)
            .max_length(10),
        ));
    }
    if form.ask_link {
        rows.push(CreateActionRow::InputText(
            CreateInputText::new(InputTextStyle::Short, "Link to your posted reply", LINK_INPUT)
                .required(true)
                .max_length(2000),
        ));
    }
    json!({
        "type": 9,
        "data": {
            "custom_id": format!("{FORM_PREFIX}{}", form.kind.encode(form.case_id)),
            "title": cap(&form.title, 45),
            "components": rows,
        }
    })
}

/// The reply form before editing, shown privately: the draft, its findings, a template
/// select and the button that opens the editor.
pub fn reply_preview(form: &Form) -> Value {
    let text = form.text.as_ref().map(|t| t.initial.as_str()).unwrap_or_default();
    let quoted: String = text.lines().map(|l| format!("> {}\n", escape::discord(l))).collect();
    let info: String = form.info.iter().map(|l| format!("• {}\n", escape::discord(l))).collect();
    let content = format!("**{}**\n{quoted}\n{info}", form.title);
    let options: Vec<CreateSelectMenuOption> = form
        .choices
        .iter()
        .take(25)
        .map(|c| {
            CreateSelectMenuOption::new(cap(&c.label, 100), c.id.clone())
                .default_selection(form.chosen.as_ref() == Some(&c.id))
        })
        .collect();
    let template = form.chosen.clone().unwrap_or_default();
    let mut rows = Vec::new();
    if !options.is_empty() {
        rows.push(CreateActionRow::SelectMenu(
            CreateSelectMenu::new(
                format!("{TEMPLATE_PREFIX}{}", form.case_id),
                CreateSelectMenuKind::String { options },
            )
            .placeholder("Template"),
        ));
    }
    rows.push(CreateActionRow::Buttons(vec![CreateButton::new(format!("{EDIT_PREFIX}{}:{template}", form.case_id))
        .label(cap(&format!("Edit and {}", form.submit.to_lowercase()), 80))
        .style(ButtonStyle::Primary)]));
    json!({ "content": cap(&content, 2000), "flags": 64, "components": rows, "allowed_mentions": { "parse": [] } })
}

fn option(a: &ArgSpec) -> CreateCommandOption {
    let kind = match a.kind {
        ArgKind::Case => CommandOptionType::Integer,
        ArgKind::Flag => CommandOptionType::Boolean,
        ArgKind::Person => CommandOptionType::User,
        _ => CommandOptionType::String,
    };
    let mut o = CreateCommandOption::new(kind, a.name, a.help).required(a.required);
    if a.kind == ArgKind::Case {
        o = o.min_int_value(1);
    }
    if a.kind == ArgKind::Outcome {
        for out in Outcome::ALL {
            o = o.add_string_choice(out.as_str().replace('_', " "), out.as_str());
        }
    }
    if a.kind == ArgKind::Via {
        for via in ["dm", "phone", "email"] {
            o = o.add_string_choice(via, via);
        }
    }
    if a.kind == ArgKind::Verdict {
        for v in ["confirm", "dismiss"] {
            o = o.add_string_choice(v, v);
        }
    }
    if a.kind == ArgKind::Field {
        for field in ["site", "category", "situation"] {
            o = o.add_string_choice(field, field);
        }
    }
    o
}

/// The `/care` application command, made from the same command table as the Slack
/// command's parser and help.
pub fn care_command() -> CreateCommand {
    let mut cmd = CreateCommand::new("care").description("Work patient-experience cases");
    for spec in COMMANDS {
        let mut help = spec.help.to_string();
        if let Some(first) = help.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        let sub = CreateCommandOption::new(CommandOptionType::SubCommand, spec.name, help)
            .set_sub_options(spec.chat_args().map(option).collect::<Vec<_>>());
        cmd = cmd.add_option(sub);
    }
    cmd
}
