//! Slack: the Web API client (slack-morphism) as a `ChatSurface` the outbox delivers
//! through (paced per channel by the outbox's lanes), with Slack's errors sorted into
//! retry / wait / give up.
//! Inbound callbacks (HTTP and Socket Mode) live in `inbound`.

pub mod blocks;
pub mod inbound;

use super::{Card, ChatSurface, DeliveryError, Pacing};
use crate::config::SlackSettings;
use crate::playbook::{Channel, Person, Playbooks};
use crate::store::MessageRef;
use async_trait::async_trait;
use slack_morphism::errors::*;
use slack_morphism::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub type Connector = SlackClientHyperHttpsConnector;
pub type Client = SlackClient<Connector>;

/// The Slack side of carebot: a Web API client with the bot token. Pacing per channel is
/// the outbox's (one lane per channel), from `slack.messages_per_second` and `burst`.
pub struct Slack {
    pub(crate) client: Arc<Client>,
    token: SlackApiToken,
    pub(crate) settings: SlackSettings,
    /// Person's Slack user id → their DM channel, from `conversations.open`.
    dm_channels: Mutex<HashMap<String, SlackChannelId>>,
}

/// Why a Slack error will not go away by retrying, and what to do about it.
fn hint(code: &str) -> &'static str {
    match code {
        "channel_not_found" | "not_in_channel" | "is_archived" => {
            " — invite the bot to the channel (/invite @carebot), check the channel id in situations.yaml, \
             and run `carebot check --online`"
        }
        "invalid_auth" | "not_authed" | "token_revoked" | "account_inactive" | "missing_scope" => {
            " — check SLACK_BOT_TOKEN and the app's scopes (config/slack-app-manifest.yaml)"
        }
        "user_not_found" | "cannot_dm_bot" => " — check the person's slack id in team.yaml",
        _ => "",
    }
}

/// Sorts a Slack client error: 429 → wait, 5xx and network → retry, `ok:false` → give up
/// (counted on /metrics by error code) unless Slack says it is on their side.
pub(crate) fn classify(method: &str, e: &SlackClientError) -> DeliveryError {
    match e {
        SlackClientError::RateLimitError(r) => {
            DeliveryError::RateLimited(r.retry_after.unwrap_or(Duration::from_secs(1)))
        }
        SlackClientError::ApiError(a) => {
            metrics::counter!("carebot_slack_api_errors_total", "method" => method.to_string(), "code" => a.code.clone())
                .increment(1);
            match a.code.as_str() {
                "ratelimited" => DeliveryError::RateLimited(Duration::from_secs(1)),
                "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout" => {
                    DeliveryError::Transient(format!("Slack {method}: {}", a.code))
                }
                code => DeliveryError::Permanent(format!("Slack {method} answered {code}{}", hint(code))),
            }
        }
        SlackClientError::HttpError(h) if h.status_code.is_server_error() => {
            DeliveryError::Transient(format!("Slack {method}: HTTP {}", h.status_code))
        }
        SlackClientError::HttpError(h) => DeliveryError::Permanent(format!("Slack {method}: HTTP {}", h.status_code)),
        // Parse errors carry Slack's answer, which echoes the message (mention text):
        // report only where parsing failed.
        SlackClientError::ProtocolError(p) => DeliveryError::Transient(format!(
            "Slack {method}: unreadable answer ({:?} error at line {} column {})",
            p.json_error.classify(),
            p.json_error.line(),
            p.json_error.column()
        )),
        SlackClientError::HttpProtocolError(_) | SlackClientError::EndOfStream(_) => {
            DeliveryError::Transient(format!("Slack {method}: connection failed"))
        }
        other => DeliveryError::Transient(format!("Slack {method}: {other}")),
    }
}

/// `C123|1700000000.000100`: the channel id and timestamp of a posted card.
fn message_ref(channel: &SlackChannelId, ts: &SlackTs) -> String {
    format!("{}|{}", channel.0, ts.0)
}

fn parse_ref(m: &MessageRef) -> Result<(SlackChannelId, SlackTs), DeliveryError> {
    let (c, ts) = super::split_message_ref(m)?;
    Ok((SlackChannelId(c), SlackTs(ts)))
}

fn slack_channel(channel: &Channel) -> Result<SlackChannelId, DeliveryError> {
    channel.slack.clone().map(SlackChannelId).ok_or_else(|| {
        DeliveryError::Permanent(format!("channel {:?} has no `slack:` id in situations.yaml", channel.name))
    })
}

fn text(s: &str) -> SlackMessageContent {
    SlackMessageContent::new().with_text(s.to_string())
}

impl Slack {
    pub fn new(settings: &SlackSettings, bot_token: &str) -> anyhow::Result<Slack> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| anyhow::anyhow!("loading the system's TLS root certificates for Slack: {e}"))?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .build();
        let connector = SlackClientHyperConnector::with_connector(https).with_slack_api_url(settings.api_url.as_str());
        Ok(Slack {
            client: Arc::new(SlackClient::new(connector)),
            token: SlackApiToken::new(bot_token.to_string().into()),
            settings: settings.clone(),
            dm_channels: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn session(&self) -> SlackClientSession<'_, Connector> {
        self.client.open_session(&self.token)
    }

    async fn post(
        &self,
        req: SlackApiChatPostMessageRequest,
    ) -> Result<SlackApiChatPostMessageResponse, DeliveryError> {
        self.session().chat_post_message(&req).await.map_err(|e| classify("chat.postMessage", &e))
    }

    async fn dm_channel(&self, person: &Person) -> Result<SlackChannelId, DeliveryError> {
        let user = person.slack.clone().ok_or_else(|| {
            DeliveryError::Permanent(format!("@{} has no `slack:` id in team.yaml, so cannot get DMs", person.id))
        })?;
        self.dm_channel_of(user).await
    }

    /// A short private answer after a modal closed (Slack gives modals no reply of their
    /// own): a DM from the bot to the person who submitted.
    pub(crate) async fn tell(&self, user: &SlackUserId, body: &str) {
        let sent = match self.dm_channel_of(user.0.clone()).await {
            Ok(channel) => self
                .post(SlackApiChatPostMessageRequest::new(channel, text(&crate::chat::escape::slack(body))))
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            tracing::warn!(error = %e, "could not tell a Slack user what their form did");
        }
    }

    async fn dm_channel_of(&self, user: String) -> Result<SlackChannelId, DeliveryError> {
        if let Some(c) = self.dm_channels.lock().ok().and_then(|m| m.get(&user).cloned()) {
            return Ok(c);
        }
        let req = SlackApiConversationsOpenRequest::new().with_users(vec![SlackUserId(user.clone())]);
        let opened = self.session().conversations_open(&req).await.map_err(|e| classify("conversations.open", &e))?;
        let id = opened.channel.id;
        if let Ok(mut m) = self.dm_channels.lock() {
            m.insert(user, id.clone());
        }
        Ok(id)
    }

    /// Answers on an interaction's `response_url`, visible only to the person.
    pub(crate) async fn respond_privately(&self, response_url: &SlackResponseUrl, text: &str) {
        let req = SlackApiPostWebhookMessageRequest::new(SlackMessageContent::new().with_text(text.to_string()))
            .with_replace_original(false);
        if let Err(e) = self.client.respond_to_event(response_url, &req).await {
            tracing::warn!(error = %classify("response_url", &e), "could not answer a Slack interaction");
        }
    }

    /// `carebot check --online`: the token works and the bot is in every configured channel.
    pub async fn check_online(&self, playbooks: &Playbooks) -> Vec<String> {
        let mut problems = Vec::new();
        match self.session().auth_test().await {
            Ok(me) => tracing::info!(team = %me.team, "Slack token accepted"),
            Err(e) => {
                problems.push(format!("auth.test: {}", classify("auth.test", &e)));
                return problems;
            }
        }
        for (name, ch) in &playbooks.situations.channels {
            let Some(id) = &ch.slack else {
                problems.push(format!("channel {name}: no `slack:` id in situations.yaml"));
                continue;
            };
            let req = SlackApiConversationsInfoRequest::new(SlackChannelId(id.clone()));
            match self.session().conversations_info(&req).await {
                Ok(info) if info.channel.flags.is_member == Some(false) => problems
                    .push(format!("channel {name} ({id}): the bot is not a member; invite it with /invite @carebot")),
                Ok(_) => {}
                Err(e) => problems.push(format!("channel {name} ({id}): {}", classify("conversations.info", &e))),
            }
        }
        problems
    }
}

#[async_trait]
impl ChatSurface for Slack {
    fn name(&self) -> &'static str {
        "slack"
    }

    fn pacing(&self) -> Option<Pacing> {
        Some(Pacing { per_second: self.settings.messages_per_second.get(), burst: self.settings.burst.get() })
    }

    fn reaches(&self, person: &Person) -> bool {
        person.slack.is_some()
    }

    #[tracing::instrument(skip_all, fields(case_id = card.case_id, channel = %channel.name))]
    async fn post_card(&self, channel: &Channel, card: &Card) -> Result<String, DeliveryError> {
        let id = slack_channel(channel)?;
        let content = text(&card.summary()).with_blocks(blocks::card_blocks(card));
        let posted = self.post(SlackApiChatPostMessageRequest::new(id, content).with_unfurl_links(false)).await?;
        Ok(message_ref(&posted.channel, &posted.ts))
    }

    #[tracing::instrument(skip_all, fields(case_id = card.case_id, channel = %message.channel))]
    async fn update_card(&self, message: &MessageRef, card: &Card) -> Result<(), DeliveryError> {
        let (channel, ts) = parse_ref(message)?;
        let content = text(&card.summary()).with_blocks(blocks::card_blocks(card));
        self.session()
            .chat_update(&SlackApiChatUpdateRequest::new(channel, content, ts))
            .await
            .map_err(|e| classify("chat.update", &e))?;
        Ok(())
    }

    /// A step as a thread reply; with `here`, `<!here>` (the only form Slack notifies for)
    /// and broadcast to the channel, where the people to notify are.
    async fn thread_reply(&self, message: &MessageRef, body: &str, here: bool) -> Result<(), DeliveryError> {
        let (channel, ts) = parse_ref(message)?;
        let body = crate::chat::escape::slack(body);
        let req = if here {
            SlackApiChatPostMessageRequest::new(channel, text(&format!("<!here> {body}")))
                .with_thread_ts(ts)
                .with_reply_broadcast(true)
        } else {
            SlackApiChatPostMessageRequest::new(channel, text(&body)).with_thread_ts(ts)
        };
        self.post(req).await?;
        Ok(())
    }

    async fn direct_message(&self, person: &Person, body: &str) -> Result<(), DeliveryError> {
        let channel = self.dm_channel(person).await?;
        self.post(SlackApiChatPostMessageRequest::new(channel, text(&crate::chat::escape::slack(body)))).await?;
        Ok(())
    }

    /// A nudge DM: the text, a link to the card and Claim / Snooze buttons.
    async fn nudge(&self, person: &Person, body: &str, nudge: &super::Nudge) -> Result<(), DeliveryError> {
        let channel = self.dm_channel(person).await?;
        let content = SlackMessageContent::new()
            .with_text(crate::chat::escape::slack(body))
            .with_blocks(blocks::nudge_blocks(body, nudge));
        self.post(SlackApiChatPostMessageRequest::new(channel, content)).await?;
        Ok(())
    }

    /// The card's permalink (`chat.getPermalink`); none if Slack will not say.
    async fn message_link(&self, message: &MessageRef) -> Option<String> {
        let (channel, ts) = parse_ref(message).ok()?;
        let req = SlackApiChatGetPermalinkRequest::new(channel, ts);
        match self.session().chat_get_permalink(&req).await {
            Ok(r) => Some(r.permalink.to_string()),
            Err(e) => {
                tracing::warn!(error = %classify("chat.getPermalink", &e), "no link to the card for a nudge");
                None
            }
        }
    }

    async fn channel_message(&self, channel: &Channel, body: &str) -> Result<(), DeliveryError> {
        let id = slack_channel(channel)?;
        // Digests and alerts quote reviews: nothing in them may ping, link or format.
        self.post(SlackApiChatPostMessageRequest::new(id, text(&crate::chat::escape::slack(body)))).await?;
        Ok(())
    }

    /// Slack's v2 upload: get an upload URL, send the bytes, then share into the channel.
    async fn channel_file(
        &self,
        channel: &Channel,
        name: &str,
        bytes: &[u8],
        comment: &str,
    ) -> Result<(), DeliveryError> {
        let id = slack_channel(channel)?;
        let session = self.session();
        let url = session
            .get_upload_url_external(&SlackApiFilesGetUploadUrlExternalRequest::new(name.to_string(), bytes.len()))
            .await
            .map_err(|e| classify("files.getUploadURLExternal", &e))?;
        let content_type = if name.ends_with(".png") { "image/png" } else { "text/csv" };
        session
            .files_upload_via_url(&SlackApiFilesUploadViaUrlRequest::new(
                url.upload_url,
                bytes.to_vec(),
                content_type.to_string(),
            ))
            .await
            .map_err(|e| classify("file upload", &e))?;
        let file = SlackApiFilesComplete::new(url.file_id).with_title(name.to_string());
        session
            .files_complete_upload_external(
                &SlackApiFilesCompleteUploadExternalRequest::new(vec![file])
                    .with_channel_id(id)
                    .with_initial_comment(comment.to_string()),
            )
            .await
            .map_err(|e| classify("files.completeUploadExternal", &e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_errors_are_permanent_and_say_what_to_do() {
        let e = SlackClientError::ApiError(SlackClientApiError::new("not_in_channel".into()));
        match classify("chat.postMessage", &e) {
            DeliveryError::Permanent(m) => assert!(m.contains("not_in_channel") && m.contains("check --online"), "{m}"),
            other => panic!("{other:?}"),
        }
        let e = SlackClientError::ApiError(SlackClientApiError::new("internal_error".into()));
        assert!(matches!(classify("chat.update", &e), DeliveryError::Transient(_)));
        let e = SlackClientError::RateLimitError(SlackRateLimitError::new().with_retry_after(Duration::from_secs(3)));
        assert_eq!(classify("chat.update", &e), DeliveryError::RateLimited(Duration::from_secs(3)));
    }
}
