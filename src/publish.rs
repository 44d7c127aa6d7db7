//! Publishing an approved reply where the review lives: the platform-neutral part. A
//! `Publisher` (the HTTP adapter in `crate::platforms`, a fake in tests) posts one reply
//! and says what became of it; the outbox delivers `ChatOp::PublishReply` through it, so a
//! publish is retried on failure and recorded on the case exactly once.

use crate::config::Settings;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// The platforms carebot can reply on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Google,
    Facebook,
    X,
}

impl Platform {
    pub const ALL: [Platform; 3] = [Platform::Google, Platform::Facebook, Platform::X];

    /// The platform behind a mention's source, if carebot can reply there.
    pub fn of_source(source: &str) -> Option<Platform> {
        match source {
            "google" => Some(Platform::Google),
            "facebook" => Some(Platform::Facebook),
            "x" | "twitter" => Some(Platform::X),
            _ => None,
        }
    }
    pub fn parse(s: &str) -> Option<Platform> {
        Platform::ALL.into_iter().find(|p| p.id() == s)
    }
    pub fn id(&self) -> &'static str {
        match self {
            Platform::Google => "google",
            Platform::Facebook => "facebook",
            Platform::X => "x",
        }
    }
    pub fn name(&self) -> &'static str {
        match self {
            Platform::Google => "Google",
            Platform::Facebook => "Facebook",
            Platform::X => "X",
        }
    }
    /// Whether the platform lets us change the text of a posted reply (X does not).
    pub fn can_edit(&self) -> bool {
        !matches!(self, Platform::X)
    }
    /// A reply's length as the platform counts it (X weighs links and emoji).
    pub fn length(&self, text: &str) -> usize {
        crate::domain::compliance::platform_length(Some(self.id()), text)
    }
    /// The longest reply the platform takes, in characters.
    pub fn max_chars(&self) -> usize {
        match self {
            Platform::Google => 4096,
            Platform::Facebook => 8000,
            Platform::X => 280,
        }
    }
}

/// What a reply is posted under: a Google review's name
/// (`accounts/…/locations/…/reviews/…`), a Facebook post or comment id, an X post id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub platform: Platform,
    pub object: String,
}

/// The platform's record of the posted reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Published {
    pub remote_id: Option<String>,
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// Worth trying again (5xx, timeouts, rate limits).
    #[error("{0}")]
    Transient(String),
    /// The platform refused this reply (policy, deleted review, too long): trying again will
    /// not help; the agent is told.
    #[error("{0}")]
    Rejected(String),
    /// The credentials were refused or have expired: an operator must renew them.
    #[error("{0}")]
    Auth(String),
}

#[async_trait]
pub trait Publisher: Send + Sync {
    /// Posts `text` as the organisation's reply under `target`. `retry`: an earlier attempt
    /// may have reached the platform, so look for the reply before posting it again.
    async fn publish(
        &self,
        settings: &Settings,
        target: &Target,
        text: &str,
        retry: bool,
    ) -> Result<Published, PublishError>;

    /// Replaces the text of our reply `remote_id` under `target` (Google: the review's one
    /// reply; Facebook: our comment). X posts cannot be edited.
    async fn edit(
        &self,
        settings: &Settings,
        target: &Target,
        remote_id: &str,
        text: &str,
    ) -> Result<Published, PublishError>;

    /// Sends `text` privately to the author of `target` (a Facebook post or comment) from
    /// `page`, by Messenger: one private reply per post or comment. `retry`: an earlier
    /// attempt may have gone through.
    async fn reply_privately(
        &self,
        settings: &Settings,
        target: &Target,
        page: &str,
        text: &str,
        retry: bool,
    ) -> Result<Published, PublishError>;

    /// Deletes our reply `remote_id` under `target`. A reply already gone counts as removed.
    async fn remove(&self, settings: &Settings, target: &Target, remote_id: &str) -> Result<(), PublishError>;
}

/// Our reply on `platform` that is live now: the latest `published` event not taken down
/// since (events oldest first).
pub fn live_reply(events: &[crate::store::EventRow], platform: Platform) -> Option<&crate::store::EventRow> {
    let mut live = None;
    for e in events.iter().filter(|e| e.detail["platform"] == platform.id()) {
        match e.action.as_str() {
            "published" => live = Some(e),
            "unpublished" => live = None,
            // Deleted by hand: the platform never gave us its id.
            "unpublish" if e.detail["by_hand"] == true => live = None,
            _ => {}
        }
    }
    live
}

/// The publisher of a process that has no platform client attached.
pub struct Unattached;

#[async_trait]
impl Publisher for Unattached {
    async fn publish(&self, _: &Settings, target: &Target, _: &str, _: bool) -> Result<Published, PublishError> {
        Err(unattached(target))
    }
    async fn edit(&self, _: &Settings, target: &Target, _: &str, _: &str) -> Result<Published, PublishError> {
        Err(unattached(target))
    }
    async fn remove(&self, _: &Settings, target: &Target, _: &str) -> Result<(), PublishError> {
        Err(unattached(target))
    }
    async fn reply_privately(
        &self,
        _: &Settings,
        t: &Target,
        _: &str,
        _: &str,
        _: bool,
    ) -> Result<Published, PublishError> {
        Err(unattached(t))
    }
}

fn unattached(target: &Target) -> PublishError {
    PublishError::Transient(format!("no {} client in this process", target.platform.name()))
}
