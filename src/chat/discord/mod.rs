//! Discord: the REST API (v10) as a `ChatSurface` the outbox delivers through. Bodies are
//! built with serenity's builders; requests go out with reqwest so carebot can honour
//! Discord's rate-limit headers itself (`X-RateLimit-*`, 429 `retry_after`) — serenity's
//! ratelimiter is bypassed whenever a base URL is overridden. Inbound interactions live in
//! `inbound`.

pub mod inbound;
pub mod layout;

use super::{Card, ChatSurface, DeliveryError, Pacing};
use crate::config::DiscordSettings;
use crate::playbook::{Channel, Person};
use crate::store::MessageRef;
use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Discord {
    http: reqwest::Client,
    api: String,
    token: String,
    pub(crate) public_key: Option<serenity::interactions_endpoint::Verifier>,
    /// Rate-limit bucket exhausted: not before this instant, per route key.
    not_before: Mutex<HashMap<String, Instant>>,
    dm_channels: Mutex<HashMap<String, String>>,
    /// Channel id → its guild id, for links to messages.
    guilds: Mutex<HashMap<String, String>>,
}

/// Discord's message content limit.
const CONTENT_LIMIT: usize = 2000;

/// Discord allows about five messages per five seconds in a channel.
const PACING: Pacing = Pacing { per_second: 1, burst: 4 };

/// A route as a metric label: ids replaced by placeholders, so one route is one series
/// (`POST /channels/{id}/messages/{id}/threads`).
fn route_template(method: &Method, path: &str) -> String {
    let parts: Vec<&str> =
        path.split('/')
            .map(|p| {
                if !p.is_empty() && (p.bytes().all(|b| b.is_ascii_digit()) || p.starts_with("DM")) {
                    "{id}"
                } else {
                    p
                }
            })
            .collect();
    format!("{method} {}", parts.join("/"))
}

fn hint(code: i64) -> &'static str {
    match code {
        10003 | 50001 | 50013 => {
            " — check the channel id in situations.yaml and that the bot may view and send messages there"
        }
        50007 => " — this person does not accept DMs from the server's bots",
        _ => "",
    }
}

/// Splits long text at line breaks into messages Discord accepts.
fn chunks(text: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    for line in text.lines() {
        let line: String = line.chars().take(CONTENT_LIMIT - 1).collect();
        let cur = out.last_mut().expect("one chunk");
        if cur.chars().count() + line.chars().count() + 1 > CONTENT_LIMIT {
            out.push(String::new());
        }
        let cur = out.last_mut().expect("one chunk");
        cur.push_str(&line);
        cur.push('\n');
    }
    out.into_iter().filter(|c| !c.trim().is_empty()).collect()
}

fn discord_channel(channel: &Channel) -> Result<String, DeliveryError> {
    channel.discord.clone().ok_or_else(|| {
        DeliveryError::Permanent(format!("channel {:?} has no `discord:` id in situations.yaml", channel.name))
    })
}

impl Discord {
    pub fn new(settings: &DiscordSettings, token: &str, public_key: Option<&str>) -> anyhow::Result<Discord> {
        let public_key = match public_key {
            Some(k) => {
                let bytes: Vec<u8> = (0..k.len())
                    .step_by(2)
                    .map(|i| k.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                    .collect::<Option<_>>()
                    .filter(|b: &Vec<u8>| b.len() == 32)
                    .ok_or_else(|| {
                        anyhow::anyhow!("DISCORD_PUBLIC_KEY must be the 64 hex digits of the app's public key")
                    })?;
                let arr: [u8; 32] = bytes.try_into().map_err(|_| anyhow::anyhow!("DISCORD_PUBLIC_KEY: 32 bytes"))?;
                Some(
                    serenity::interactions_endpoint::Verifier::try_new(arr)
                        .map_err(|e| anyhow::anyhow!("DISCORD_PUBLIC_KEY: {e}"))?,
                )
            }
            None => None,
        };
        Ok(Discord {
            http: reqwest::Client::builder().timeout(Duration::from_secs(20)).build()?,
            api: format!("{}/api/v10", settings.api_url),
            token: token.to_string(),
            public_key,
            not_before: Mutex::new(HashMap::new()),
            dm_channels: Mutex::new(HashMap::new()),
            guilds: Mutex::new(HashMap::new()),
        })
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.api))
            .header("authorization", format!("Bot {}", self.token))
            .header("user-agent", "DiscordBot (carebot, 0.1)")
    }

    /// One JSON REST call.
    pub(crate) async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, DeliveryError> {
        let mut req = self.request(method.clone(), path);
        if let Some(b) = &body {
            req = req.json(b);
        }
        self.execute(&method, path, req).await
    }

    /// Sends a request: waits out an exhausted bucket, records the rate-limit headers, and
    /// sorts failures into wait / retry / give up.
    async fn execute(&self, method: &Method, path: &str, req: reqwest::RequestBuilder) -> Result<Value, DeliveryError> {
        let bucket = path.split('/').take(3).collect::<Vec<_>>().join("/");
        let wait = self.not_before.lock().ok().and_then(|m| m.get(&bucket).copied());
        if let Some(t) = wait.filter(|t| *t > Instant::now()) {
            tokio::time::sleep_until(t.into()).await;
        }
        let route = route_template(method, path);
        let res = req.send().await.map_err(|e| DeliveryError::Transient(format!("Discord {route}: {e}")))?;
        let header = |n: &str| res.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
        if header("x-ratelimit-remaining").as_deref() == Some("0") {
            if let Some(after) = header("x-ratelimit-reset-after").and_then(|s| s.parse::<f64>().ok()) {
                if let Ok(mut m) = self.not_before.lock() {
                    m.insert(
                        bucket,
                        Instant::now()
                            + Duration::try_from_secs_f64(after.clamp(0.0, 3600.0)).unwrap_or(Duration::from_secs(1)),
                    );
                }
            }
        }
        let status = res.status();
        let retry_header = header("retry-after").and_then(|s| s.parse::<f64>().ok());
        let text = res.text().await.unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(v);
        }
        let code = v["code"].as_i64().unwrap_or(0);
        metrics::counter!("carebot_discord_api_errors_total", "route" => route.clone(), "status" => status.as_u16().to_string(), "code" => code.to_string())
            .increment(1);
        Err(match status {
            StatusCode::TOO_MANY_REQUESTS => {
                let secs = v["retry_after"].as_f64().or(retry_header).unwrap_or(1.0);
                DeliveryError::RateLimited(
                    Duration::try_from_secs_f64(secs.clamp(0.05, 3600.0)).unwrap_or(Duration::from_secs(1)),
                )
            }
            s if s.is_server_error() => DeliveryError::Transient(format!("Discord {route}: HTTP {s}")),
            s => DeliveryError::Permanent(format!("Discord {route}: HTTP {} code {code}{}", s.as_u16(), hint(code))),
        })
    }

    async fn send(&self, channel_id: &str, body: Value) -> Result<Value, DeliveryError> {
        self.call(Method::POST, &format!("/channels/{channel_id}/messages"), Some(body)).await
    }

    /// The DM channel with a person (opened once, then cached).
    async fn dm_channel(&self, person: &Person) -> Result<String, DeliveryError> {
        let user = person.discord.clone().ok_or_else(|| {
            DeliveryError::Permanent(format!("@{} has no `discord:` id in team.yaml, so cannot get DMs", person.id))
        })?;
        let cached = self.dm_channels.lock().ok().and_then(|m| m.get(&user).cloned());
        Ok(match cached {
            Some(c) => c,
            None => {
                let dm = self.call(Method::POST, "/users/@me/channels", Some(json!({ "recipient_id": user }))).await?;
                let c = dm["id"].as_str().unwrap_or_default().to_string();
                if let Ok(mut m) = self.dm_channels.lock() {
                    m.insert(user, c.clone());
                }
                c
            }
        })
    }

    async fn send_text(&self, channel_id: &str, text: &str) -> Result<(), DeliveryError> {
        for part in chunks(text) {
            self.send(channel_id, json!({ "content": part, "allowed_mentions": { "parse": [] } })).await?;
        }
        Ok(())
    }

    /// Starts the thread a card's steps go into; its id is the card's message id.
    async fn start_thread(&self, channel: &str, message: &str, name: &str) -> Result<(), DeliveryError> {
        let start = json!({ "name": name, "auto_archive_duration": 10080 });
        self.call(Method::POST, &format!("/channels/{channel}/messages/{message}/threads"), Some(start)).await?;
        Ok(())
    }

    /// The message body of a card: summary line, embed, buttons.
    pub(crate) fn card_body(card: &Card) -> Value {
        json!({
            "content": card.summary(),
            "embeds": [layout::embed(card)],
            "components": layout::buttons(card),
            "allowed_mentions": { "parse": [] },
        })
    }

    /// Registers `/care` for one guild (appears at once) or globally.
    pub async fn register_commands(&self, application_id: &str, guild: Option<&str>) -> Result<Value, DeliveryError> {
        let path = match guild {
            Some(g) => format!("/applications/{application_id}/guilds/{g}/commands"),
            None => format!("/applications/{application_id}/commands"),
        };
        self.call(Method::PUT, &path, Some(json!([layout::care_command()]))).await
    }
}

#[async_trait]
impl ChatSurface for Discord {
    fn name(&self) -> &'static str {
        "discord"
    }

    fn pacing(&self) -> Option<Pacing> {
        Some(PACING)
    }

    fn reaches(&self, person: &Person) -> bool {
        person.discord.is_some()
    }

    /// Posts the card and starts its thread at once, so a step never goes to a thread that
    /// does not exist yet.
    #[tracing::instrument(skip_all, fields(case_id = card.case_id, channel = %channel.name))]
    async fn post_card(&self, channel: &Channel, card: &Card) -> Result<String, DeliveryError> {
        let id = discord_channel(channel)?;
        let posted = self.send(&id, Self::card_body(card)).await?;
        let message = posted["id"]
            .as_str()
            .ok_or_else(|| DeliveryError::Transient("Discord answered a message without an id".into()))?;
        let site = card.site.as_deref().unwrap_or("no site");
        let name: String = format!("Case {} · {site}", card.case_id).chars().take(100).collect();
        if let Err(e) = self.start_thread(&id, message, &name).await {
            // The card is posted (reposting would duplicate it); the first step starts the thread.
            tracing::warn!(case_id = card.case_id, error = %e, "could not start the card's thread yet");
        }
        Ok(format!("{id}|{message}"))
    }

    #[tracing::instrument(skip_all, fields(case_id = card.case_id, channel = %message.channel))]
    async fn update_card(&self, message: &MessageRef, card: &Card) -> Result<(), DeliveryError> {
        let (channel, id) = super::split_message_ref(message)?;
        self.call(Method::PATCH, &format!("/channels/{channel}/messages/{id}"), Some(Self::card_body(card))).await?;
        Ok(())
    }

    /// Steps go into the card's thread (its id is the card's id). With `here`, the line goes
    /// to the channel itself with `@here` allowed to notify.
    async fn thread_reply(&self, message: &MessageRef, text: &str, here: bool) -> Result<(), DeliveryError> {
        let (channel, id) = super::split_message_ref(message)?;
        let text = super::escape::discord(text);
        if here {
            let body = json!({
                "content": format!("@here {}", chunks(&text).first().cloned().unwrap_or_default().trim_end()),
                "allowed_mentions": { "parse": ["everyone"] },
                "message_reference": { "message_id": id, "fail_if_not_exists": false },
            });
            self.send(&channel, body).await?;
            return Ok(());
        }
        match self.send_text(&id, &text).await {
            // A card posted before its thread could be started: start it now.
            Err(DeliveryError::Permanent(_)) => {
                self.start_thread(&channel, &id, &format!("Case log {id}")).await?;
                self.send_text(&id, &text).await
            }
            other => other,
        }
    }

    /// A nudge DM: the text with a link to the card, and Claim / Snooze buttons.
    async fn nudge(&self, person: &Person, text: &str, nudge: &super::Nudge) -> Result<(), DeliveryError> {
        let channel = self.dm_channel(person).await?;
        let mut content = super::escape::discord(text);
        if let Some(link) = &nudge.link {
            content.push_str(&format!("\nCard: {link}"));
        }
        let content = chunks(&content).first().cloned().unwrap_or_default();
        self.send(
            &channel,
            json!({
                "content": content,
                "components": layout::press_buttons(&nudge.buttons),
                "allowed_mentions": { "parse": [] },
            }),
        )
        .await?;
        Ok(())
    }

    /// `https://discord.com/channels/GUILD/CHANNEL/MESSAGE`; the guild comes from the channel.
    async fn message_link(&self, message: &MessageRef) -> Option<String> {
        let (channel, id) = super::split_message_ref(message).ok()?;
        let cached = self.guilds.lock().ok().and_then(|m| m.get(&channel).cloned());
        let guild = match cached {
            Some(g) => g,
            None => match self.call(Method::GET, &format!("/channels/{channel}"), None).await {
                Ok(v) => {
                    let g = v["guild_id"].as_str()?.to_string();
                    if let Ok(mut m) = self.guilds.lock() {
                        m.insert(channel.clone(), g.clone());
                    }
                    g
                }
                Err(e) => {
                    tracing::warn!(error = %e, "no link to the card for a nudge");
                    return None;
                }
            },
        };
        Some(format!("https://discord.com/channels/{guild}/{channel}/{id}"))
    }

    async fn direct_message(&self, person: &Person, text: &str) -> Result<(), DeliveryError> {
        let channel = self.dm_channel(person).await?;
        self.send_text(&channel, &super::escape::discord(text)).await
    }

    async fn channel_message(&self, channel: &Channel, text: &str) -> Result<(), DeliveryError> {
        // Digests and alerts quote reviews: nothing in them may ping, link or format.
        self.send_text(&discord_channel(channel)?, &super::escape::discord(text)).await
    }

    async fn channel_file(
        &self,
        channel: &Channel,
        name: &str,
        bytes: &[u8],
        comment: &str,
    ) -> Result<(), DeliveryError> {
        let id = discord_channel(channel)?;
        let payload = json!({ "content": comment, "attachments": [{ "id": 0, "filename": name }] });
        let form = reqwest::multipart::Form::new()
            .text("payload_json", payload.to_string())
            .part("files[0]", reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name.to_string()));
        let path = format!("/channels/{id}/messages");
        self.execute(&Method::POST, &path, self.request(Method::POST, &path).multipart(form)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_labelled_by_template() {
        assert_eq!(
            route_template(&Method::POST, "/channels/501000000000000001/messages/900/threads"),
            "POST /channels/{id}/messages/{id}/threads"
        );
        assert_eq!(route_template(&Method::POST, "/users/@me/channels"), "POST /users/@me/channels");
    }

    #[test]
    fn long_texts_are_split_at_lines_under_the_limit() {
        let text = (0..300).map(|i| format!("line {i} of the digest")).collect::<Vec<_>>().join("\n");
        let parts = chunks(&text);
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|p| p.chars().count() <= CONTENT_LIMIT));
        assert_eq!(parts.concat().lines().count(), 300);
    }
}
