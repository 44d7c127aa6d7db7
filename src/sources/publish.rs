//! The HTTP publisher: posts approved replies where the reviews live.
//!
//! - Google Business Profile: `PUT {api_url}/v4/{review name}/reply` with `{"comment": …}`,
//!   authorised by the same refresh-token flow as review intake. A PUT replaces the
//!   review's one reply, so a retry can never post twice.
//! - Facebook Pages: `POST {graph}/{post or comment id}/comments` with `{"message": …}` and
//!   the page token. Before a retry it reads the object's newest 100 comments and takes a
//!   comment by one of our pages with the same text as already posted.
//! - X: `POST {api_url}/2/tweets` with `{"text": …, "reply": {"in_reply_to_tweet_id": …}}`
//!   and the account's user-context token. On a retry, X's "duplicate content" refusal
//!   means the first attempt went through.
//!
//! Private replies (Facebook): `POST {graph}/{page id}/messages` with
//! `{"recipient": {"comment_id"|"post_id": …}, "message": {"text": …}}`. Facebook allows one
//! per post or comment, so on a retry its "already replied" refusal means the first went
//! through.
//!
//! Edits and removals: Google replaces the reply with the same PUT and deletes it with
//! `DELETE …/reply`; Facebook edits a comment with `POST {graph}/{comment id}` and deletes it
//! with `DELETE`; X deletes with `DELETE /2/tweets/{id}` (X posts cannot be edited). A
//! reply already gone (404, or Facebook's "does not exist") counts as removed, so a retried
//! removal never fails on its own earlier success.
//!
//! Tokens travel in the Authorization header only, never in a URL, and errors are reported
//! without the request URL.

use crate::config::Settings;
use crate::publish::{Platform, PublishError, Published, Publisher, Target};
use async_trait::async_trait;
use reqwest::StatusCode;
use serde_json::{json, Value};

pub struct HttpPublisher {
    http: reqwest::Client,
}

impl HttpPublisher {
    pub fn new() -> anyhow::Result<HttpPublisher> {
        Ok(HttpPublisher { http: super::client()? })
    }
}

fn network(platform: Platform, e: reqwest::Error) -> PublishError {
    PublishError::Transient(format!("calling {}: {}", platform.name(), e.without_url()))
}

/// The platform's answer as an error a person can act on. What we sent that must not
/// reach a log or a chat (the token, the reply text) is cut out if the platform echoes it.
async fn refused(platform: Platform, resp: reqwest::Response, hide: &[&str]) -> PublishError {
    let status = resp.status();
    let mut body = resp.text().await.unwrap_or_default();
    for h in hide.iter().filter(|h| h.len() >= 4) {
        // As sent, and as it reads inside a JSON string.
        let quoted = serde_json::to_string(h).unwrap_or_default();
        body = body.replace(quoted.trim_matches('"'), "[…]").replace(h, "[…]");
    }
    let body: String = body.chars().take(300).collect();
    let said = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.pointer("/errors/0/message"))
                .or_else(|| v.pointer("/detail"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or(body);
    let msg = format!("{} answered HTTP {}: {}", platform.name(), status.as_u16(), said.trim());
    match status {
        StatusCode::UNAUTHORIZED => PublishError::Auth(msg),
        StatusCode::TOO_MANY_REQUESTS => PublishError::Transient(msg),
        s if s.is_server_error() => PublishError::Transient(msg),
        // Facebook reports an expired or revoked token as 400 with OAuthException code 190.
        _ if platform == Platform::Facebook && said.contains("access token") => PublishError::Auth(msg),
        _ => PublishError::Rejected(msg),
    }
}

fn token<'a>(t: &'a Option<String>, platform: Platform, var: &str) -> Result<&'a str, PublishError> {
    t.as_deref().ok_or_else(|| PublishError::Auth(format!("set {var} to publish to {}", platform.name())))
}

impl HttpPublisher {
    async fn google(&self, s: &Settings, review: &str, text: &str) -> Result<Published, PublishError> {
        let p = Platform::Google;
        let url = format!("{}/v4/{}/reply", s.sources.google_business.api_url, review.trim_matches('/'));
        // An access token can expire between refresh and use: refresh once and try again.
        for fresh in [false, true] {
            let token = self.google_token(s).await?;
            let resp = self
                .http
                .put(&url)
                .bearer_auth(&token)
                .json(&json!({ "comment": text }))
                .send()
                .await
                .map_err(|e| network(p, e))?;
            if resp.status() == StatusCode::UNAUTHORIZED {
                super::google_business::forget_token_with(s);
                if !fresh {
                    continue;
                }
            }
            if !resp.status().is_success() {
                return Err(refused(p, resp, &[token.as_str(), text]).await);
            }
            break;
        }
        Ok(Published { remote_id: Some(format!("{}/reply", review.trim_matches('/'))), url: None })
    }

    async fn facebook(&self, s: &Settings, object: &str, text: &str, retry: bool) -> Result<Published, PublishError> {
        let p = Platform::Facebook;
        let token = token(&s.secrets.facebook_page_token, p, "FACEBOOK_PAGE_TOKEN")?;
        let url = format!("{}/{object}/comments", s.publish.facebook_graph_url);
        let link = |id: &str| Some(format!("https://www.facebook.com/{id}"));
        if retry {
            let resp = self
                .http
                .get(&url)
                .bearer_auth(token)
                // Newest first: the reply a lost answer hid is among the latest comments.
                .query(&[
                    ("fields", "id,message,from"),
                    ("filter", "stream"),
                    ("order", "reverse_chronological"),
                    ("limit", "100"),
                ])
                .send()
                .await
                .map_err(|e| network(p, e))?;
            if !resp.status().is_success() {
                return Err(refused(p, resp, &[token]).await);
            }
            let page: Value = resp.json().await.map_err(|e| network(p, e))?;
            let ours = page["data"].as_array().into_iter().flatten().find(|c| {
                let from = c.pointer("/from/id").and_then(Value::as_str).unwrap_or("");
                s.sources.facebook.pages.contains_key(from) && c["message"].as_str() == Some(text)
            });
            if let Some(c) = ours.and_then(|c| c["id"].as_str()) {
                return Ok(Published { remote_id: Some(c.to_string()), url: link(c) });
            }
        }
        let resp = self
            .http
            .post(&url)
            .bearer_auth(token)
            .json(&json!({ "message": text }))
            .send()
            .await
            .map_err(|e| network(p, e))?;
        if !resp.status().is_success() {
            return Err(refused(p, resp, &[token, text]).await);
        }
        let body: Value = resp.json().await.map_err(|e| network(p, e))?;
        let id = body["id"].as_str().map(str::to_string);
        Ok(Published { url: id.as_deref().and_then(link), remote_id: id })
    }

    async fn x(&self, s: &Settings, tweet: &str, text: &str, retry: bool) -> Result<Published, PublishError> {
        let p = Platform::X;
        let token = token(&s.secrets.x_user_token, p, "X_USER_TOKEN")?;
        let url = format!("{}/2/tweets", s.sources.x.api_url);
        let body = json!({ "text": text, "reply": { "in_reply_to_tweet_id": tweet } });
        let resp = self.http.post(&url).bearer_auth(token).json(&body).send().await.map_err(|e| network(p, e))?;
        if !resp.status().is_success() {
            let err = refused(p, resp, &[token, text]).await;
            if retry && err.to_string().to_lowercase().contains("duplicate content") {
                // The earlier attempt reached X; its id was lost with the answer.
                return Ok(Published::default());
            }
            return Err(err);
        }
        let body: Value = resp.json().await.map_err(|e| network(p, e))?;
        let id = body.pointer("/data/id").and_then(Value::as_str).map(str::to_string);
        Ok(Published { url: id.as_ref().map(|i| format!("https://x.com/i/web/status/{i}")), remote_id: id })
    }
}

impl HttpPublisher {
    /// Sends a removal and reads the platform's answer: gone (or already gone) is success.
    async fn delete(&self, p: Platform, url: &str, token: &str) -> Result<(), PublishError> {
        let resp = self.http.delete(url).bearer_auth(token).send().await.map_err(|e| network(p, e))?;
        if resp.status().is_success() || resp.status() == StatusCode::NOT_FOUND {
            return Ok(());
        }
        match refused(p, resp, &[token]).await {
            PublishError::Rejected(m) if m.contains("does not exist") => Ok(()),
            e => Err(e),
        }
    }

    async fn google_token(&self, s: &Settings) -> Result<String, PublishError> {
        super::google_business::access_token_with(s, &self.http).await.map_err(|e| PublishError::Auth(format!("{e:#}")))
    }
}

#[async_trait]
impl Publisher for HttpPublisher {
    async fn edit(
        &self,
        s: &Settings,
        target: &Target,
        remote_id: &str,
        text: &str,
    ) -> Result<Published, PublishError> {
        match target.platform {
            // One reply per review: the same PUT replaces its text.
            Platform::Google => self.google(s, &target.object, text).await,
            Platform::Facebook => {
                let p = Platform::Facebook;
                let token = token(&s.secrets.facebook_page_token, p, "FACEBOOK_PAGE_TOKEN")?;
                let url = format!("{}/{remote_id}", s.publish.facebook_graph_url);
                let resp = self
                    .http
                    .post(&url)
                    .bearer_auth(token)
                    .json(&json!({ "message": text }))
                    .send()
                    .await
                    .map_err(|e| network(p, e))?;
                if !resp.status().is_success() {
                    return Err(refused(p, resp, &[token, text]).await);
                }
                Ok(Published {
                    remote_id: Some(remote_id.to_string()),
                    url: Some(format!("https://www.facebook.com/{remote_id}")),
                })
            }
            Platform::X => Err(PublishError::Rejected("X posts cannot be edited".into())),
        }
    }

    async fn reply_privately(
        &self,
        s: &Settings,
        target: &Target,
        page: &str,
        text: &str,
        retry: bool,
    ) -> Result<Published, PublishError> {
        let p = Platform::Facebook;
        if target.platform != p {
            return Err(PublishError::Rejected(format!("{} has no private replies", target.platform.name())));
        }
        let token = token(&s.secrets.facebook_page_token, p, "FACEBOOK_PAGE_TOKEN")?;
        // A visitor post's id is PAGE_POST; a comment's is POST_COMMENT on someone else's post.
        let to = if target.object.starts_with(&format!("{page}_")) { "post_id" } else { "comment_id" };
        let body = json!({ "recipient": { to: target.object }, "message": { "text": text } });
        let url = format!("{}/{page}/messages", s.publish.facebook_graph_url);
        let resp = self.http.post(&url).bearer_auth(token).json(&body).send().await.map_err(|e| network(p, e))?;
        if !resp.status().is_success() {
            let err = refused(p, resp, &[token, text]).await;
            if retry && err.to_string().contains("already replied") {
                return Ok(Published::default());
            }
            return Err(err);
        }
        let body: Value = resp.json().await.map_err(|e| network(p, e))?;
        Ok(Published { remote_id: body["message_id"].as_str().map(str::to_string), url: None })
    }

    async fn remove(&self, s: &Settings, target: &Target, remote_id: &str) -> Result<(), PublishError> {
        match target.platform {
            Platform::Google => {
                let token = self.google_token(s).await?;
                let url = format!("{}/v4/{}/reply", s.sources.google_business.api_url, target.object.trim_matches('/'));
                self.delete(Platform::Google, &url, &token).await
            }
            Platform::Facebook => {
                let token = token(&s.secrets.facebook_page_token, Platform::Facebook, "FACEBOOK_PAGE_TOKEN")?;
                let url = format!("{}/{remote_id}", s.publish.facebook_graph_url);
                self.delete(Platform::Facebook, &url, token).await
            }
            Platform::X => {
                let token = token(&s.secrets.x_user_token, Platform::X, "X_USER_TOKEN")?;
                let url = format!("{}/2/tweets/{remote_id}", s.sources.x.api_url);
                self.delete(Platform::X, &url, token).await
            }
        }
    }

    async fn publish(&self, s: &Settings, target: &Target, text: &str, retry: bool) -> Result<Published, PublishError> {
        match target.platform {
            Platform::Google => self.google(s, &target.object, text).await,
            Platform::Facebook => self.facebook(s, &target.object, text, retry).await,
            Platform::X => self.x(s, &target.object, text, retry).await,
        }
    }
}
