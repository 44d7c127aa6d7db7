//! What Slack sends carebot — slash commands, button clicks, modal submissions, events —
//! over signed HTTP callbacks or Socket Mode. Both transports end in the same two
//! functions, which answer inside Slack's 3 seconds: the case action itself is one short
//! transaction; card updates go through the outbox; modals and private answers are sent
//! after the acknowledgement.

use super::blocks::{self, CHOICE_ACTION, CHOICE_BLOCK, NOTE_ACTION, NOTE_BLOCK, OVERRIDE_ACTION, OVERRIDE_BLOCK};
use super::{Client, Slack};
use crate::chat::command::{usage, Command, Press};
use crate::chat::interact::{self, Answer, FormKind, Pressed, Who};
use crate::ctx::Ctx;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use slack_morphism::errors::{SlackClientError, SlackClientProtocolError};
use slack_morphism::prelude::*;
use slack_morphism::signature_verifier::{SlackEventSignatureVerifier, SlackEventSignatureVerifierError};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;

/// A `/care` command from any transport; the answer is ephemeral.
pub async fn command(ctx: &Ctx, slack: &Slack, ev: &SlackCommandEvent) -> SlackCommandEventResponse {
    let name = &slack.settings.command;
    let reply = match interact::person(ctx, Who::Slack(&ev.user_id.0)) {
        Err(refusal) => refusal,
        Ok(person) => match ev.text.as_deref().unwrap_or_default().parse::<Command>() {
            Ok(cmd) => interact::run(ctx, &person, cmd, name).await,
            Err(why) => format!("{why}\n\n{}", usage(name)),
        },
    };
    SlackCommandEventResponse::new(SlackMessageContent::new().with_text(reply))
        .with_response_type(SlackMessageResponseType::Ephemeral)
}

/// A click or a modal submission from any transport. Returns what to acknowledge with.
pub async fn interaction(ctx: &Ctx, slack: &Arc<Slack>, ev: SlackInteractionEvent) -> SlackInteractionResponse {
    match ev {
        SlackInteractionEvent::BlockActions(a) => {
            block_actions(ctx, slack, a).await;
            SlackInteractionResponse::Empty
        }
        SlackInteractionEvent::ViewSubmission(v) => match view_submission(ctx, slack, &v).await {
            Ok(()) => SlackInteractionResponse::Empty,
            Err((block, why)) => {
                let errors = HashMap::from([(block.to_string(), why)]);
                SlackViewSubmissionResponse::Errors(SlackViewSubmissionErrorsResponse::new(errors)).into()
            }
        },
        _ => SlackInteractionResponse::Empty,
    }
}

fn answer_later(slack: &Arc<Slack>, url: Option<SlackResponseUrl>, text: String) {
    let Some(url) = url else { return };
    let slack = slack.clone();
    tokio::spawn(async move { slack.respond_privately(&url, &text).await });
}

async fn block_actions(ctx: &Ctx, slack: &Arc<Slack>, a: SlackInteractionBlockActionsEvent) {
    let Some(user) = a.user.as_ref().map(|u| u.id.0.clone()) else { return };
    if let SlackInteractionActionContainer::View(container) = &a.container {
        if let Some(SlackView::Modal(_)) = &a.view {
            return switch_template(ctx, slack, &a, &user, &container.view_id).await;
        }
    }
    let on_home = matches!(&a.view, Some(SlackView::Home(_)));
    let Some(ours) = a.actions.iter().flatten().find(|x| x.action_id.0.starts_with(blocks::BUTTON_PREFIX)) else {
        return; // not a carebot button
    };
    let Some(press) = ours.value.as_deref().and_then(|v| v.parse::<Press>().ok()) else {
        return answer_later(slack, a.response_url, "That button is out of date; nothing was changed.".into());
    };
    let person = match interact::person(ctx, Who::Slack(&user)) {
        Ok(p) => p,
        Err(refusal) => return answer_later(slack, a.response_url, refusal),
    };
    // A button in a DM (a nudge): the card is elsewhere, so say what happened.
    let in_dm = matches!(&a.container, SlackInteractionActionContainer::Message(m)
        if m.channel_id.as_ref().is_some_and(|c| c.0.starts_with('D')));
    let pressed = interact::press(ctx, &person, press).await;
    if on_home {
        // The home tab shows the queue as it is now; a refusal goes by DM (no response_url).
        if let Pressed::Private(text) = &pressed {
            let (slack, user, text) = (slack.clone(), SlackUserId(user.clone()), text.clone());
            tokio::spawn(async move { slack.tell(&user, &text).await });
        }
        if !matches!(pressed, Pressed::Ask(_)) {
            publish_home(ctx, slack, &user).await;
            return;
        }
    }
    match pressed {
        Pressed::Done(text) if in_dm => answer_later(slack, a.response_url, text),
        Pressed::Done(_) => {}
        Pressed::Private(text) => answer_later(slack, a.response_url, text),
        Pressed::Ask(form) => {
            let slack = slack.clone();
            let req = SlackApiViewsOpenRequest::new(a.trigger_id, blocks::modal(&form));
            tokio::spawn(async move {
                if let Err(e) = slack.session().views_open(&req).await {
                    let why = super::classify("views.open", &e);
                    tracing::warn!(case_id = press.case_id, error = %why, "could not open a Slack modal");
                    if let Some(url) = a.response_url {
                        slack.respond_privately(&url, "Slack would not open the form; please try again.").await;
                    }
                }
            });
        }
    }
}

/// The reply modal's template picker changed: redraw the modal with that template's draft.
async fn switch_template(
    ctx: &Ctx,
    slack: &Arc<Slack>,
    a: &SlackInteractionBlockActionsEvent,
    user: &str,
    view_id: &SlackViewId,
) {
    let Some(SlackView::Modal(modal)) = &a.view else { return };
    let Some((FormKind::Reply, case_id)) = modal.private_metadata.as_deref().and_then(FormKind::decode) else {
        return;
    };
    let Some(template) = a
        .actions
        .iter()
        .flatten()
        .find(|x| x.action_id.0 == CHOICE_ACTION)
        .and_then(|x| x.selected_option.as_ref())
        .map(|o| o.value.clone())
    else {
        return;
    };
    let Ok(person) = interact::person(ctx, Who::Slack(user)) else { return };
    let form = match interact::reply_form(ctx, &person, case_id, Some(&template)).await {
        Ok(f) => f,
        Err(e) => {
            crate::errors::explain(&e, "slack", "switch template", Some(case_id));
            return;
        }
    };
    let mut req = SlackApiViewsUpdateRequest::new(blocks::modal(&form)).with_view_id(view_id.clone());
    if let Some(hash) = modal.hash.clone() {
        req = req.with_hash(hash);
    }
    let slack = slack.clone();
    tokio::spawn(async move {
        if let Err(e) = slack.session().views_update(&req).await {
            tracing::warn!(case_id, error = %super::classify("views.update", &e), "could not redraw the reply modal");
        }
    });
}

/// Draws a person's App Home tab (`views.publish`) after the acknowledgement.
async fn publish_home(ctx: &Ctx, slack: &Arc<Slack>, user: &str) {
    let Ok(person) = interact::person(ctx, Who::Slack(user)) else { return };
    let sections = match interact::home(ctx, &person).await {
        Ok(s) => s,
        Err(e) => {
            crate::errors::explain(&e, "slack", "app home", None);
            return;
        }
    };
    let req = SlackApiViewsPublishRequest::new(SlackUserId(user.to_string()), blocks::home_view(&sections));
    let slack = slack.clone();
    tokio::spawn(async move {
        if let Err(e) = slack.session().views_publish(&req).await {
            tracing::warn!(error = %super::classify("views.publish", &e), "could not draw the App Home");
        }
    });
}

/// Events carebot acts on: opening the App Home tab.
async fn on_event(ctx: &Ctx, slack: &Arc<Slack>, cb: &SlackPushEventCallback) {
    if let SlackEventCallbackBody::AppHomeOpened(ev) = &cb.event {
        if ev.tab.as_deref().unwrap_or("home") == "home" {
            publish_home(ctx, slack, &ev.user.0).await;
        }
    }
}

/// A modal submitted: the error, if any, names the block to show it under.
async fn view_submission(
    ctx: &Ctx,
    slack: &Arc<Slack>,
    v: &SlackInteractionViewSubmissionEvent,
) -> Result<(), (&'static str, String)> {
    let SlackView::Modal(modal) = &v.view.view else { return Ok(()) };
    if modal.callback_id.as_ref().map(|c| c.0.as_str()) != Some(blocks::FORM_CALLBACK) {
        return Ok(()); // not a carebot form
    }
    let Some((kind, case_id)) = modal.private_metadata.as_deref().and_then(FormKind::decode) else {
        let why = "This form is out of date; nothing was changed. Close it and click the button again.";
        return Err((CHOICE_BLOCK, why.into()));
    };
    let block = if kind.answer_is_text() { NOTE_BLOCK } else { CHOICE_BLOCK };
    let person = interact::person(ctx, Who::Slack(&v.user.id.0)).map_err(|why| (block, why))?;
    let values = v.view.state_params.state.as_ref().map(|s| &s.values);
    let value = |block: &str, action: &str| values?.get(&block.to_string().into())?.get(&action.to_string().into());
    let answer = Answer {
        choice: value(CHOICE_BLOCK, CHOICE_ACTION).and_then(|s| s.selected_option.as_ref()).map(|o| o.value.clone()),
        text: value(NOTE_BLOCK, NOTE_ACTION).and_then(|s| s.value.clone()),
        override_block: value(OVERRIDE_BLOCK, OVERRIDE_ACTION)
            .and_then(|s| s.selected_options.as_ref())
            .is_some_and(|o| o.iter().any(|o| o.value == "override")),
        publish: value(blocks::PUBLISH_BLOCK, blocks::PUBLISH_ACTION)
            .and_then(|s| s.selected_options.as_ref())
            .is_some_and(|o| o.iter().any(|o| o.value == "publish")),
        link: value(blocks::LINK_BLOCK, blocks::LINK_ACTION)
            .and_then(|s| s.value.clone())
            .filter(|l| !l.trim().is_empty()),
    };
    let done = interact::submit(ctx, &person, kind, case_id, answer).await.map_err(|why| (block, why))?;
    // The modal closes; say what happened (e.g. "sent for approval") in a DM-like ephemeral way.
    if kind == FormKind::Reply {
        let slack = slack.clone();
        let user = v.user.id.clone();
        tokio::spawn(async move { slack.tell(&user, &done).await });
    }
    Ok(())
}

// ---- HTTP transport ----

fn refuse(status: StatusCode, why: &str) -> Response {
    (status, format!("{why}\n")).into_response()
}

/// Checks Slack's `v0` signature and the 5-minute replay window; returns the body as text.
type Rejection = (StatusCode, &'static str);

fn verified<'b>(ctx: &Ctx, headers: &HeaderMap, body: &'b Bytes) -> Result<(Arc<Slack>, &'b str), Rejection> {
    let (Some(slack), Some(secret)) = (ctx.adapter::<Slack>(), ctx.settings.secrets.slack_signing_secret.as_ref())
    else {
        return Err((StatusCode::NOT_FOUND, "Slack callbacks are not enabled on this carebot"));
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(sig), Some(ts)) = (
        header(SlackEventSignatureVerifier::SLACK_SIGNED_HASH_HEADER),
        header(SlackEventSignatureVerifier::SLACK_SIGNED_TIMESTAMP),
    ) else {
        return Err((StatusCode::UNAUTHORIZED, "missing Slack signature headers"));
    };
    let text = std::str::from_utf8(body).map_err(|_| (StatusCode::BAD_REQUEST, "body is not UTF-8"))?;
    let verifier = SlackEventSignatureVerifier::new(&SlackSigningSecret::new(secret.clone()));
    if let Err(e) = verifier.verify(sig, text, ts) {
        metrics::counter!("carebot_slack_rejected_total", "reason" => "signature").increment(1);
        let why = match e {
            SlackEventSignatureVerifierError::IncorrectOrExpiredTimestampError(_) => {
                "stale or invalid Slack request timestamp (more than 5 minutes off)"
            }
            _ => "bad Slack signature",
        };
        tracing::warn!(reason = why, "rejected a Slack callback");
        return Err((StatusCode::UNAUTHORIZED, why));
    }
    Ok((slack, text))
}

/// `POST /slack/commands`
pub async fn http_command(State(ctx): State<Arc<Ctx>>, headers: HeaderMap, body: Bytes) -> Response {
    // Slack checks the certificate of a command URL with `ssl_check=1`: no command, no
    // action, just a 200.
    if let Ok(form) = serde_urlencoded::from_bytes::<HashMap<String, String>>(&body) {
        if form.get("ssl_check").map(String::as_str) == Some("1") && !form.contains_key("command") {
            return StatusCode::OK.into_response();
        }
    }
    let (slack, text) = match verified(&ctx, &headers, &body) {
        Ok(v) => v,
        Err((status, why)) => return refuse(status, why),
    };
    match serde_urlencoded::from_str::<SlackCommandEvent>(text) {
        Ok(ev) => Json(command(&ctx, &slack, &ev).await).into_response(),
        Err(e) => refuse(StatusCode::BAD_REQUEST, &format!("not a Slack slash command: {e}")),
    }
}

#[derive(serde::Deserialize)]
struct InteractionForm {
    payload: String,
}

/// `POST /slack/interactions`
pub async fn http_interaction(State(ctx): State<Arc<Ctx>>, headers: HeaderMap, body: Bytes) -> Response {
    let (slack, text) = match verified(&ctx, &headers, &body) {
        Ok(v) => v,
        Err((status, why)) => return refuse(status, why),
    };
    let ev = match serde_urlencoded::from_str::<InteractionForm>(text)
        .map_err(|e| e.to_string())
        .and_then(|f| serde_json::from_str::<SlackInteractionEvent>(&f.payload).map_err(|e| e.to_string()))
    {
        Ok(ev) => ev,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, &format!("not a Slack interaction payload: {e}")),
    };
    match interaction(&ctx, &slack, ev).await {
        SlackInteractionResponse::ViewSubmission(r) => Json(r).into_response(),
        _ => StatusCode::OK.into_response(),
    }
}

/// `POST /slack/events`: the URL check when the app is set up, then event callbacks.
pub async fn http_event(State(ctx): State<Arc<Ctx>>, headers: HeaderMap, body: Bytes) -> Response {
    let (slack, text) = match verified(&ctx, &headers, &body) {
        Ok(v) => v,
        Err((status, why)) => return refuse(status, why),
    };
    match serde_json::from_str::<SlackPushEvent>(text) {
        Ok(SlackPushEvent::UrlVerification(v)) => Json(serde_json::json!({ "challenge": v.challenge })).into_response(),
        Ok(SlackPushEvent::AppRateLimited(_)) => {
            tracing::warn!("Slack is rate-limiting events to this app");
            StatusCode::OK.into_response()
        }
        Ok(SlackPushEvent::EventCallback(cb)) => {
            on_event(&ctx, &slack, &cb).await;
            StatusCode::OK.into_response()
        }
        Err(e) => refuse(StatusCode::BAD_REQUEST, &format!("not a Slack event: {e}")),
    }
}

// ---- Socket Mode transport ----

async fn ctx_of(state: &SlackClientEventsUserState) -> Result<Arc<Ctx>, Box<dyn std::error::Error + Send + Sync>> {
    state.read().await.get_user_state::<Arc<Ctx>>().cloned().ok_or_else(|| "carebot context missing".into())
}

async fn socket_command(
    ev: SlackCommandEvent,
    _client: Arc<Client>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<SlackCommandEventResponse> {
    let ctx = ctx_of(&state).await?;
    let slack = ctx.adapter::<Slack>().ok_or("Slack is not configured")?;
    Ok(command(&ctx, &slack, &ev).await)
}

async fn socket_interaction(
    ev: SlackInteractionEvent,
    _client: Arc<Client>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<SlackInteractionResponse> {
    let ctx = ctx_of(&state).await?;
    let slack = ctx.adapter::<Slack>().ok_or("Slack is not configured")?;
    Ok(interaction(&ctx, &slack, ev).await)
}

async fn socket_push(
    ev: SlackPushEventCallback,
    _client: Arc<Client>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let ctx = ctx_of(&state).await?;
    let slack = ctx.adapter::<Slack>().ok_or("Slack is not configured")?;
    on_event(&ctx, &slack, &ev).await;
    Ok(())
}

/// What may be logged of a Socket Mode failure: Slack's parse errors carry the envelope,
/// which holds message text, so only their kind and position are kept.
fn loggable(err: &(dyn std::error::Error + Send + Sync + 'static)) -> String {
    if let Some(e) = err.downcast_ref::<SlackClientError>() {
        return super::classify("socket mode", e).to_string();
    }
    if let Some(p) = err.downcast_ref::<SlackClientProtocolError>() {
        return format!("unreadable envelope ({:?} error at line {})", p.json_error.classify(), p.json_error.line());
    }
    if let Some(p) = err.downcast_ref::<serde_json::Error>() {
        return format!("unreadable envelope ({:?} error at line {})", p.classify(), p.line());
    }
    "callback failed (details withheld: they may contain message text)".into()
}

fn socket_error(
    err: Box<dyn std::error::Error + Send + Sync>,
    _client: Arc<Client>,
    _state: SlackClientEventsUserState,
) -> slack_morphism::listener::HttpStatusCode {
    tracing::error!(error = %loggable(err.as_ref()), "Slack Socket Mode callback failed");
    slack_morphism::listener::HttpStatusCode::OK
}

/// Socket Mode: connects out to Slack (no public URL needed) until `stop` turns true.
pub async fn run_socket_mode(ctx: Arc<Ctx>, app_token: String, mut stop: watch::Receiver<bool>) {
    let Some(slack) = ctx.adapter::<Slack>() else { return };
    let env = Arc::new(
        SlackClientEventsListenerEnvironment::new(slack.client.clone())
            .with_error_handler(socket_error)
            .with_user_state(ctx.clone()),
    );
    let callbacks = SlackSocketModeListenerCallbacks::new()
        .with_command_events(socket_command)
        .with_interaction_events(socket_interaction)
        .with_push_events(socket_push);
    let config = SlackClientSocketModeConfig::new().with_max_connections_count(1);
    let listener = SlackClientSocketModeListener::new(&config, env, callbacks);
    let token = SlackApiToken::new(app_token.into());
    if let Err(e) = listener.listen_for(&token).await {
        tracing::error!(error = %super::classify("apps.connections.open", &e), "Slack Socket Mode could not connect");
        return;
    }
    listener.start().await;
    tracing::info!("Slack Socket Mode connected");
    let _ = stop.wait_for(|s| *s).await;
    listener.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_mode_errors_never_log_the_envelope() {
        let body = r#"{"payload":{"text":"Waited four hours at Riverside"}"#;
        let json_error = serde_json::from_str::<serde_json::Value>(body).unwrap_err();
        let e = SlackClientError::ProtocolError(SlackClientProtocolError::new(json_error).with_json_body(body.into()));
        assert!(e.to_string().contains("Waited four hours"), "the library's own message carries the body");
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(e);
        let logged = loggable(boxed.as_ref());
        assert!(!logged.contains("Waited") && logged.contains("unreadable answer"), "{logged}");
        let other: Box<dyn std::error::Error + Send + Sync> = "Waited four hours".into();
        assert!(!loggable(other.as_ref()).contains("Waited"));
    }
}
