//! Laying out the neutral Card, Form and command set for Discord with serenity's builders:
//! the case embed with its buttons, the select menu a form becomes, and the `/care`
//! application command with its subcommands.

use crate::chat::command::{ArgKind, ArgSpec, Press, COMMANDS};
use crate::chat::interact::Form;
use crate::chat::{escape, Button, Card};
use crate::domain::Outcome;
use serenity::all::{ButtonStyle, CommandOptionType};
use serenity::builder::{
    CreateActionRow, CreateButton, CreateCommand, CreateCommandOption, CreateEmbed, CreateEmbedFooter,
    CreateSelectMenu, CreateSelectMenuKind, CreateSelectMenuOption,
};

/// Custom ids of form select menus start with this; the rest is `KIND:CASE`.
pub const FORM_PREFIX: &str = "form:";

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
                Button::Escalate => ButtonStyle::Danger,
                Button::Resolve => ButtonStyle::Success,
                _ => ButtonStyle::Secondary,
            };
            CreateButton::new(Press { button: *b, case_id: card.case_id }.encode()).label(b.label()).style(style)
        })
        .collect();
    // Discord allows five buttons per row.
    buttons.chunks(5).map(|row| CreateActionRow::Buttons(row.to_vec())).collect()
}

/// A form as a select menu, shown privately to the person who clicked.
pub fn select(form: &Form) -> CreateActionRow {
    let options = form.choices.iter().map(|c| CreateSelectMenuOption::new(cap(&c.label, 100), c.id.clone())).collect();
    CreateActionRow::SelectMenu(
        CreateSelectMenu::new(
            format!("{FORM_PREFIX}{}", form.kind.encode(form.case_id)),
            CreateSelectMenuKind::String { options },
        )
        .placeholder(cap(&form.prompt, 150)),
    )
}

fn option(a: &ArgSpec) -> CreateCommandOption {
    let kind = match a.kind {
        ArgKind::Case => CommandOptionType::Integer,
        ArgKind::Flag => CommandOptionType::Boolean,
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
    o
}

/// The `/care` application command, made from the same command table as the Slack
/// command's parser and help.
pub fn care_command() -> CreateCommand {
    let mut cmd = CreateCommand::new("care").description("Work patient-experience cases");
    for spec in COMMANDS.iter().filter(|s| s.name != "help") {
        let mut help = spec.help.to_string();
        if let Some(first) = help.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        let sub = CreateCommandOption::new(CommandOptionType::SubCommand, spec.name, help)
            .set_sub_options(spec.args.iter().map(option).collect::<Vec<_>>());
        cmd = cmd.add_option(sub);
    }
    cmd
}
