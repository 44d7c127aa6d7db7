//! `POST /discord/interactions`: Ed25519-verified interactions (PING, the `/care` command,
//! card buttons, form select menus), translated into the shared command layer and answered
//! in Discord's interaction-response format — UPDATE_MESSAGE for a card that changed,
//! ephemeral (flag 64) messages for refusals, drafts and forms.

use super::{layout, Discord};
use crate::chat::command::{self, usage, Args, Command, Press};
use crate::chat::interact::{self, Answer, Form, FormKind, Pressed, Who};
use crate::ctx::Ctx;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use serenity::all::{
    ActionRowComponent, CommandDataOption, CommandDataOptionValue, ComponentInteractionDataKind, Interaction,
};
use std::sync::Arc;

/// How far a request's timestamp may be from now (replayed requests are refused).
const REPLAY_WINDOW_SECS: i64 = 300;
const EPHEMERAL: u64 = 64;

fn private(text: &str) -> Value {
    json!({ "type": 4, "data": { "content": cap(text), "flags": EPHEMERAL, "allowed_mentions": { "parse": [] } } })
}

fn cap(text: &str) -> String {
    if text.chars().count() <= 2000 {
        return text.to_string();
    }
    format!("{}…", text.chars().take(1999).collect::<String>())
}

/// The `/care` subcommand and its options, straight into a typed command by the shared
/// command table (no round trip through text).
fn command_of(options: &[CommandDataOption]) -> Result<Command, String> {
    let Some(sub) = options.first() else { return Ok(Command::Help) };
    let spec = command::spec(&sub.name).ok_or_else(|| format!("unknown command {:?}", sub.name))?;
    let mut args = Args::default();
    if let CommandDataOptionValue::SubCommand(opts) = &sub.value {
        for o in opts {
            let Some(a) = spec.chat_args().find(|a| a.name == o.name) else { continue };
            let value = match &o.value {
                CommandDataOptionValue::Integer(n) => command::typed(spec, a, &n.to_string())?,
                CommandDataOptionValue::String(t) => command::typed(spec, a, t)?,
                CommandDataOptionValue::Boolean(b) => command::Value::Flag(*b),
                CommandDataOptionValue::User(id) => command::typed(spec, a, &format!("<@{id}>"))?,
                _ => continue,
            };
            args.set(a.name, value);
        }
    }
    Command::from_args(spec, &args)
}

/// How a form is asked on Discord: the reply form as a private preview, a form that
/// needs text as a modal, a choice as a select menu.
fn ask(form: &Form) -> Value {
    if form.kind == FormKind::Reply {
        return json!({ "type": 4, "data": layout::reply_preview(form) });
    }
    if form.kind.answer_is_text() {
        return layout::modal(form);
    }
    json!({
        "type": 4,
        "data": { "content": form.title, "flags": EPHEMERAL, "components": [layout::select(form)] }
    })
}

async fn answer(ctx: &Ctx, interaction: Interaction) -> Value {
    let name = "/care";
    match interaction {
        Interaction::Ping(_) => json!({ "type": 1 }),
        Interaction::Command(c) => {
            let user = c.user.id.to_string();
            let text = match interact::person(ctx, Who::Discord(&user)) {
                Err(refusal) => refusal,
                Ok(p) => match command_of(&c.data.options) {
                    Ok(cmd) => interact::run(ctx, &p, cmd, name).await,
                    Err(why) => format!("{why}\n\n{}", usage(name)),
                },
            };
            private(&text)
        }
        Interaction::Component(c) => {
            let user = c.user.id.to_string();
            let person = match interact::person(ctx, Who::Discord(&user)) {
                Ok(p) => p,
                Err(refusal) => return private(&refusal),
            };
            // The reply preview: another template, or open the editor.
            if let Some(case) = c.data.custom_id.strip_prefix(layout::TEMPLATE_PREFIX) {
                let ComponentInteractionDataKind::StringSelect { values } = &c.data.kind else {
                    return private("Please pick a template.");
                };
                let (Ok(case_id), Some(template)) = (case.parse::<i64>(), values.first()) else {
                    return private("That menu has expired.");
                };
                return match interact::reply_form(ctx, &person, case_id, Some(template)).await {
                    Ok(form) => json!({ "type": 7, "data": layout::reply_preview(&form) }),
                    Err(e) => private(&crate::errors::explain(&e, "discord", "switch template", Some(case_id))),
                };
            }
            if let Some(rest) = c.data.custom_id.strip_prefix(layout::EDIT_PREFIX) {
                let (case, template) = rest.split_once(':').unwrap_or((rest, ""));
                let Ok(case_id) = case.parse::<i64>() else { return private("That button has expired.") };
                let template = Some(template).filter(|t| !t.is_empty());
                return match interact::reply_form(ctx, &person, case_id, template).await {
                    Ok(form) => layout::modal(&form),
                    Err(e) => private(&crate::errors::explain(&e, "discord", "edit reply", Some(case_id))),
                };
            }
            if let Some(form) = c.data.custom_id.strip_prefix(layout::FORM_PREFIX) {
                let Some((kind, case_id)) = FormKind::decode(form) else { return private("That form has expired.") };
                let ComponentInteractionDataKind::StringSelect { values } = &c.data.kind else {
                    return private("Please pick one of the options.");
                };
                let Some(choice) = values.first() else { return private("Please pick one of the options.") };
                let answer = Answer { choice: Some(choice.clone()), ..Answer::default() };
                return match interact::submit(ctx, &person, kind, case_id, answer).await {
                    Ok(done) => json!({ "type": 7, "data": { "content": done, "components": [] } }),
                    Err(why) => private(&why),
                };
            }
            let Ok(press) = c.data.custom_id.parse::<Press>() else { return private("That button is not carebot's.") };
            match interact::press(ctx, &person, press).await {
                Pressed::Done(done) => {
                    let clicked = c.message.id.to_string();
                    let messages = ctx.store.case_messages(press.case_id).await.unwrap_or_default();
                    // Not a card (a nudge in a DM): say what happened there; the DM never
                    // becomes a copy of the card.
                    let Some(m) = messages.iter().find(|m| m.message_ref.ends_with(&format!("|{clicked}"))) else {
                        return private(&done);
                    };
                    match crate::present::card_for(ctx, press.case_id).await {
                        Ok(card) => {
                            // The answer shows the new card on the clicked message: remember
                            // it, so the queued update does not edit it a second time.
                            if let Err(e) = ctx.store.set_card_rendered(press.case_id, m, &card.fingerprint()).await {
                                tracing::warn!(case_id = press.case_id, error = %format!("{e:#}"), "card fingerprint not saved");
                            }
                            json!({ "type": 7, "data": Discord::card_body(&card) })
                        }
                        Err(e) => {
                            tracing::warn!(case_id = press.case_id, error = %e, "card not rebuilt for Discord");
                            json!({ "type": 6 })
                        }
                    }
                }
                Pressed::Private(text) => private(&text),
                Pressed::Ask(form) => ask(&form),
            }
        }
        Interaction::Modal(m) => {
            let user = m.user.id.to_string();
            let person = match interact::person(ctx, Who::Discord(&user)) {
                Ok(p) => p,
                Err(refusal) => return private(&refusal),
            };
            let Some((kind, case_id)) = m.data.custom_id.strip_prefix(layout::FORM_PREFIX).and_then(FormKind::decode)
            else {
                return private("That form has expired; nothing was changed.");
            };
            let input = |id: &str| {
                m.data.components.iter().flat_map(|r| r.components.iter()).find_map(|c| match c {
                    ActionRowComponent::InputText(t) if t.custom_id == id => t.value.clone(),
                    _ => None,
                })
            };
            let text = input(layout::TEXT_INPUT);
            let override_block =
                input(layout::OVERRIDE_INPUT).is_some_and(|v| v.trim().eq_ignore_ascii_case("override"));
            let publish = input(layout::PUBLISH_INPUT).is_some_and(|v| v.trim().eq_ignore_ascii_case("yes"));
            let link = input(layout::LINK_INPUT).filter(|l| !l.trim().is_empty());
            let answer = Answer { choice: None, text: text.clone(), override_block, publish, link };
            match interact::submit(ctx, &person, kind, case_id, answer).await {
                Ok(done) => private(&done),
                // The modal is gone: give the person their text back with the reason.
                // Up to 4,000 characters fit an embed (a message holds 2,000).
                Err(why) => match text.filter(|t| !t.trim().is_empty() && kind == FormKind::Reply) {
                    Some(t) => json!({ "type": 4, "data": {
                        "content": cap(&why),
                        "embeds": [{
                            "title": "Your text, to fix and send again",
                            // Embed descriptions are markdown: the text may quote the author.
                            "description": crate::chat::escape::discord(&t.chars().take(4000).collect::<String>()),
                        }],
                        "flags": EPHEMERAL,
                        "allowed_mentions": { "parse": [] },
                    }}),
                    None => private(&why),
                },
            }
        }
        _ => private("carebot does not handle that kind of interaction."),
    }
}

/// `POST /discord/interactions`
pub async fn http_interaction(State(ctx): State<Arc<Ctx>>, headers: HeaderMap, body: Bytes) -> Response {
    let refuse = |status: StatusCode, why: &str| (status, format!("{why}\n")).into_response();
    let Some(discord) = ctx.adapter::<Discord>() else {
        return refuse(StatusCode::NOT_FOUND, "Discord interactions are not enabled on this carebot");
    };
    let Some(verifier) = discord.public_key.as_ref() else {
        return refuse(StatusCode::NOT_FOUND, "Discord interactions need DISCORD_PUBLIC_KEY");
    };
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let (Some(sig), Some(ts)) = (header("x-signature-ed25519"), header("x-signature-timestamp")) else {
        return refuse(StatusCode::UNAUTHORIZED, "missing Discord signature headers");
    };
    if verifier.verify(sig, ts, &body).is_err() {
        metrics::counter!("carebot_discord_rejected_total", "reason" => "signature").increment(1);
        tracing::warn!("rejected a Discord interaction: bad signature");
        return refuse(StatusCode::UNAUTHORIZED, "bad Discord signature");
    }
    let fresh = ts.parse::<i64>().is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() <= REPLAY_WINDOW_SECS);
    if !fresh {
        metrics::counter!("carebot_discord_rejected_total", "reason" => "stale").increment(1);
        return refuse(StatusCode::UNAUTHORIZED, "stale Discord request timestamp (more than 5 minutes off)");
    }
    match serde_json::from_slice::<Interaction>(&body) {
        Ok(i) => Json(answer(&ctx, i).await).into_response(),
        Err(e) => refuse(StatusCode::BAD_REQUEST, &format!("not a Discord interaction: {e}")),
    }
}
