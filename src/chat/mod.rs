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
    /// A step logged under the case's cards; `here` also notifies the channel (Slack
    /// `<!here>`, Discord `@here`).
    ThreadReply {
        case_id: i64,
        text: String,
        #[serde(default)]
        here: bool,
    },
    /// A private message to one person from the team file. With a case, a person the
    /// surface cannot reach by DM (no chat id) is told in the case's channel, by name.
    DirectMessage {
        person: String,
        text: String,
        #[serde(default)]
        case_id: Option<i64>,
        /// A nudge about the case: delivered with a link to its card and Claim / Snooze
        /// buttons.
        #[serde(default)]
        nudge: bool,
        /// A request for a lead's approval (its event id): the DM carries Approve reply
        /// (bound to that request) and Request changes instead of Claim / Snooze.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        approve: Option<i64>,
    },
    /// A plain message to a channel (alerts).
    ChannelMessage { channel: String, text: String },
    /// The daily digest for a local date (built at delivery time): its text, or with
    /// `file` its chart. Two operations, so a failed upload is retried without posting
    /// the text again.
    Digest {
        date: chrono::NaiveDate,
        #[serde(default)]
        file: bool,
    },
    /// Post a reply marked responded to the review's platform (or, `dry_run`, only record
    /// what would have been posted); the result is recorded on the case.
    PublishReply {
        case_id: i64,
        target: crate::publish::Target,
        text: String,
        /// Who marked it responded: told if the platform refuses it.
        by: String,
        #[serde(default)]
        dry_run: bool,
        /// Our reply already there (its platform id): change its text instead of posting.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        edit: Option<String>,
        /// The `respond` event that queued it: a reply published or removed after it wins.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<i64>,
        /// Facebook: send it privately on Messenger from this page instead.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        private_from: Option<String>,
    },
    /// Take our published reply `remote_id` down from the review's platform; the result
    /// is recorded on the case.
    RemoveReply {
        case_id: i64,
        target: crate::publish::Target,
        remote_id: String,
        /// Who asked: told if the platform refuses.
        by: String,
    },
    /// The weekly PX report for the seven days ending on a local date: its text, or with
    /// `file` its CSV.
    WeeklyReport {
        week_ending: chrono::NaiveDate,
        #[serde(default)]
        file: bool,
    },
}

impl ChatOp {
    /// The operations that post a report: its text, then its file, in the reports lane.
    pub fn report(weekly: bool, date: chrono::NaiveDate) -> [ChatOp; 2] {
        if weekly {
            [
                ChatOp::WeeklyReport { week_ending: date, file: false },
                ChatOp::WeeklyReport { week_ending: date, file: true },
            ]
        } else {
            [ChatOp::Digest { date, file: false }, ChatOp::Digest { date, file: true }]
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            ChatOp::PostCard { .. } => "post_card",
            ChatOp::UpdateCard { .. } => "update_card",
            ChatOp::ThreadReply { .. } => "thread_reply",
            ChatOp::DirectMessage { .. } => "direct_message",
            ChatOp::ChannelMessage { .. } => "channel_message",
            ChatOp::Digest { file: false, .. } => "digest",
            ChatOp::Digest { file: true, .. } => "digest_chart",
            ChatOp::WeeklyReport { file: false, .. } => "weekly_report",
            ChatOp::WeeklyReport { file: true, .. } => "weekly_report_csv",
            ChatOp::PublishReply { .. } => "publish_reply",
            ChatOp::RemoveReply { .. } => "remove_reply",
        }
    }
    pub fn case_id(&self) -> Option<i64> {
        match self {
            ChatOp::PostCard { case_id, .. } | ChatOp::UpdateCard { case_id } | ChatOp::ThreadReply { case_id, .. } => {
                Some(*case_id)
            }
            ChatOp::DirectMessage { case_id, .. } => *case_id,
            ChatOp::PublishReply { case_id, .. } | ChatOp::RemoveReply { case_id, .. } => Some(*case_id),
            _ => None,
        }
    }

    /// The delivery lane: its destination. `None`: the lane of its case's channel (card
    /// updates and thread lines go where the card is).
    pub fn lane(&self) -> Option<String> {
        match self {
            ChatOp::PostCard { channel, .. } | ChatOp::ChannelMessage { channel, .. } => {
                Some(format!("channel:{channel}"))
            }
            ChatOp::UpdateCard { .. } | ChatOp::ThreadReply { .. } => None,
            ChatOp::DirectMessage { person, .. } => Some(format!("dm:{person}")),
            ChatOp::Digest { .. } | ChatOp::WeeklyReport { .. } => Some("reports".into()),
            ChatOp::PublishReply { target, .. } | ChatOp::RemoveReply { target, .. } => {
                Some(format!("publish:{}", target.platform.id()))
            }
        }
    }
}

/// Queues `op` in the outbox inside `tx`, not to be delivered before `due` (ms).
#[tracing::instrument(level = "debug", skip_all, fields(op = op.name(), case_id = op.case_id()))]
pub async fn queue(tx: &mut crate::store::Tx<'_>, op: &ChatOp, now: i64, due: i64) -> anyhow::Result<()> {
    let payload = serde_json::to_string(op)?;
    crate::store::outbox::insert(tx, op.case_id(), op.name(), &payload, op.lane().as_deref(), now, due).await
}

/// The outbox priority of a case's messages (1 = P1 … 4 = P4).
pub fn outbox_rank(p: crate::domain::Priority) -> i64 {
    use crate::domain::Priority::*;
    match p {
        P1 => 1,
        P2 => 2,
        P3 => 3,
        P4 => 4,
    }
}

/// The outbox rows of an action's ops on `case` (as it is after the action): the same rows
/// as `queue` writes one by one, with the lane and priority taken from the case.
pub fn outbox_rows(
    ops: &[ChatOp],
    case: &crate::store::CaseRow,
    now: i64,
) -> anyhow::Result<Vec<crate::store::bulk::OutboxInsert>> {
    let mut rows = Vec::with_capacity(ops.len());
    for op in ops {
        let ours = op.case_id() == Some(case.id);
        rows.push(crate::store::bulk::OutboxInsert {
            case_id: op.case_id(),
            op: op.name(),
            payload: serde_json::to_string(op)?,
            lane: op.lane().unwrap_or_else(|| format!("channel:{}", case.channel)),
            priority: if ours { outbox_rank(case.priority) } else { 5 },
            created_at: now,
            due: now,
        });
    }
    Ok(rows)
}

/// Queues every op of an action on `case` in one statement (`outbox_rows`).
pub async fn queue_for_case(
    tx: &mut crate::store::Tx<'_>,
    backend: crate::store::Backend,
    ops: &[ChatOp],
    case: &crate::store::CaseRow,
    now: i64,
) -> anyhow::Result<()> {
    crate::store::bulk::insert_outbox(tx, backend, &outbox_rows(ops, case, now)?).await
}

/// How fast one lane may send: `per_second` sustained, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    pub per_second: u32,
    pub burst: u32,
}

impl Pacing {
    /// No pacing (the console).
    pub const NONE: Pacing = Pacing { per_second: 0, burst: 1 };

    /// Milliseconds between two sends at the sustained rate.
    pub fn interval_ms(&self) -> i64 {
        if self.per_second == 0 {
            0
        } else {
            (1000 / i64::from(self.per_second)).max(1)
        }
    }

    /// How far ahead of the sustained rate a burst may run.
    pub fn tolerance_ms(&self) -> i64 {
        self.interval_ms() * i64::from(self.burst.max(1) - 1)
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

/// What a nudge DM carries besides its text: where the card is and what can be done.
#[derive(Debug, Clone, PartialEq)]
pub struct Nudge {
    pub case_id: i64,
    /// A link to the case's card (Slack permalink, Discord message link).
    pub link: Option<String>,
    pub buttons: Vec<command::Press>,
}

/// A chat platform. Implementations only translate; all decisions are made in the core.
#[async_trait]
pub trait ChatSurface: Send + Sync {
    /// `console`, `slack` or `discord`; stored with message references.
    fn name(&self) -> &'static str;
    /// Per-lane pacing the platform needs; `None` sends as fast as it can.
    fn pacing(&self) -> Option<Pacing> {
        None
    }
    /// Whether this person can get a direct message here (has a chat id on this platform).
    fn reaches(&self, _person: &Person) -> bool {
        true
    }
    async fn post_card(&self, channel: &Channel, card: &Card) -> Result<String, DeliveryError>;
    async fn update_card(&self, message: &MessageRef, card: &Card) -> Result<(), DeliveryError>;
    /// A step under a posted card; `here` notifies the channel too.
    async fn thread_reply(&self, message: &MessageRef, text: &str, here: bool) -> Result<(), DeliveryError>;
    async fn direct_message(&self, person: &Person, text: &str) -> Result<(), DeliveryError>;
    /// A DM about a case with a link to its card and buttons; surfaces without buttons
    /// send the text and the link.
    async fn nudge(&self, person: &Person, text: &str, nudge: &Nudge) -> Result<(), DeliveryError> {
        match &nudge.link {
            Some(link) => self.direct_message(person, &format!("{text}\nCard: {link}")).await,
            None => self.direct_message(person, text).await,
        }
    }
    /// A link people can open to a posted card, if the platform has one.
    async fn message_link(&self, _message: &MessageRef) -> Option<String> {
        None
    }
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
