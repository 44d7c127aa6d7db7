//! The console surface: cards and messages printed to the terminal, so `carebot serve` works
//! on a fresh machine with no chat tokens. Output goes to stdout (logs go to stderr).

use super::{Card, ChatSurface, DeliveryError};
use crate::playbook::{Channel, Person};
use crate::store::MessageRef;
use async_trait::async_trait;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub struct Console {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
    seq: AtomicU64,
    /// Where posted files (digest charts) are written.
    files: std::path::PathBuf,
}

impl Console {
    pub fn stdout() -> Console {
        Console::to_writer(Box::new(std::io::stdout()))
    }
    pub fn to_writer(w: Box<dyn Write + Send>) -> Console {
        Console {
            out: Arc::new(Mutex::new(w)),
            seq: AtomicU64::new(0),
            files: std::path::PathBuf::from("data/outgoing"),
        }
    }
    /// Writes posted files into `dir` instead of `data/outgoing`.
    pub fn with_files_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Console {
        self.files = dir.into();
        self
    }
    fn print(&self, s: &str) -> Result<(), DeliveryError> {
        let mut out = self.out.lock().map_err(|_| DeliveryError::Transient("console lock poisoned".into()))?;
        let s = super::escape::console(s);
        out.write_all(s.as_bytes()).and_then(|_| out.flush()).map_err(|e| DeliveryError::Transient(e.to_string()))
    }
}

fn boxed(title: &str, body: &str) -> String {
    let rule = "─".repeat(72);
    format!("┌{rule}\n│ {title}\n├{rule}\n{}└{rule}\n", body.lines().map(|l| format!("│ {l}\n")).collect::<String>())
}

#[async_trait]
impl ChatSurface for Console {
    fn name(&self) -> &'static str {
        "console"
    }
    async fn post_card(&self, channel: &Channel, card: &Card) -> Result<String, DeliveryError> {
        let n = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        self.print(&boxed(&format!("#{} · new case", channel.name), &card.to_text()))?;
        Ok(format!("{}:{n}", channel.name))
    }
    async fn update_card(&self, message: &MessageRef, card: &Card) -> Result<(), DeliveryError> {
        let owner = card.owner.as_deref().map(|o| format!(", owner {o}")).unwrap_or_default();
        let latest = card.latest_step.as_deref().map(|s| format!(" ({s})")).unwrap_or_default();
        let latest = if card.similar > 0 { format!("{latest} +{} similar", card.similar) } else { latest };
        self.print(&format!("#{} · case #{} updated: {}{owner}{latest}\n", message.channel, card.case_id, card.state))
    }
    async fn thread_reply(&self, message: &MessageRef, text: &str, here: bool) -> Result<(), DeliveryError> {
        let here = if here { "@here " } else { "" };
        self.print(&format!("#{} · ↳ {here}{text}\n", message.channel))
    }
    async fn direct_message(&self, person: &Person, text: &str) -> Result<(), DeliveryError> {
        self.print(&format!("DM @{} · {text}\n", person.id))
    }
    async fn channel_message(&self, channel: &Channel, text: &str) -> Result<(), DeliveryError> {
        self.print(&boxed(&format!("#{}", channel.name), text))
    }
    async fn channel_file(
        &self,
        channel: &Channel,
        name: &str,
        bytes: &[u8],
        comment: &str,
    ) -> Result<(), DeliveryError> {
        let io = |e: std::io::Error| DeliveryError::Transient(format!("writing {name}: {e}"));
        std::fs::create_dir_all(&self.files).map_err(io)?;
        let path = self.files.join(name);
        std::fs::write(&path, bytes).map_err(io)?;
        self.print(&format!("#{} · {comment}: {} ({} bytes)\n", channel.name, path.display(), bytes.len()))
    }
}
