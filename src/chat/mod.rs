//! Platform-neutral chat: the operations the outbox delivers, the Card view model built from
//! a case, and the `ChatSurface` each platform (console, Slack, Discord) implements.

pub mod card;
pub mod command;
pub mod console;
pub mod discord;
pub mod escape;
pub mod interact;
pub mod slack;

use crate::playbook::{Channel, Person};
use crate::store::MessageRef;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub use card::{Button, Card};

/// One chat operation, as stored in the outbox (JSON in `payload`, name in `op`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ChatOp {
    /// Post the case's card to a channel (built from the case at delivery time).
    PostCard { case_id: i64, channel: String },
    /// Re-render every posted card of the case in place.
    UpdateCard { case_id: i64 },
    /// A step logged under the case's cards.
    ThreadReply { case_id: i64, text: String },
    /// A private message to one person from the team file.
    DirectMessage { person: String, text: String },
    /// A plain message to a channel (alerts).
    ChannelMessage { channel: String, text: String },
    /// The daily digest for a local date, with its chart (built at delivery time).
    Digest { date: chrono::NaiveDate },
    /// The weekly PX report for the seven days ending on a local date.
    WeeklyReport { week_ending: chrono::NaiveDate },
}

impl ChatOp {
    pub fn name(&self) -> &'static str {
        match self {
            ChatOp::PostCard { .. } => "post_card",
            ChatOp::UpdateCard { .. } => "update_card",
            ChatOp::ThreadReply { .. } => "thread_reply",
            ChatOp::DirectMessage { .. } => "direct_message",
            ChatOp::ChannelMessage { .. } => "channel_message",
            ChatOp::Digest { .. } => "digest",
            ChatOp::WeeklyReport { .. } => "weekly_report",
        }
    }
    pub fn case_id(&self) -> Option<i64> {
        match self {
            ChatOp::PostCard { case_id, .. } | ChatOp::UpdateCard { case_id } | ChatOp::ThreadReply { case_id, .. } => {
                Some(*case_id)
            }
            _ => None,
        }
    }
}

/// Why a delivery failed, and so whether and when to try again.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeliveryError {
    /// The platform asked us to wait (HTTP 429 with Retry-After).
    #[error("rate limited; retry after {0:?}")]
    RateLimited(Duration),
    /// Network trouble or a 5xx: retry with backoff.
    #[error("temporary failure: {0}")]
    Transient(String),
    /// Will not succeed by retrying (unknown channel, bot not in channel, bad token).
    #[error("permanent failure: {0}")]
    Permanent(String),
}

/// A chat platform. Implementations only translate; all decisions are made in the core.
#[async_trait]
pub trait ChatSurface: Send + Sync {
    /// `console`, `slack` or `discord`; stored with message references.
    fn name(&self) -> &'static str;
    async fn post_card(&self, channel: &Channel, card: &Card) -> Result<String, DeliveryError>;
    async fn update_card(&self, message: &MessageRef, card: &Card) -> Result<(), DeliveryError>;
    async fn thread_reply(&self, message: &MessageRef, text: &str) -> Result<(), DeliveryError>;
    async fn direct_message(&self, person: &Person, text: &str) -> Result<(), DeliveryError>;
    async fn channel_message(&self, channel: &Channel, text: &str) -> Result<(), DeliveryError>;
    /// A file (e.g. the digest chart) posted to a channel with a short comment.
    async fn channel_file(
        &self,
        channel: &Channel,
        name: &str,
        bytes: &[u8],
        comment: &str,
    ) -> Result<(), DeliveryError>;
}

/// A posted card's reference as the chat surfaces store it: `CHANNEL|MESSAGE`
/// (Slack channel id and ts, Discord channel id and message id).
pub fn split_message_ref(m: &MessageRef) -> Result<(String, String), DeliveryError> {
    m.message_ref.split_once('|').map(|(c, id)| (c.to_string(), id.to_string())).ok_or_else(|| {
        DeliveryError::Permanent(format!("{:?} is not a {} message reference", m.message_ref, m.surface))
    })
}
