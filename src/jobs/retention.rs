//! Retention: mention text and author names of long-closed cases are purged (PHI-minded).

use crate::ctx::Ctx;
use chrono::{DateTime, Utc};

pub async fn run(ctx: &Ctx, at: DateTime<Utc>) -> anyhow::Result<String> {
    let days = ctx.settings.retention.mention_text_days;
    let cutoff = at - chrono::Duration::days(days);
    let n = ctx.store.purge_mention_text(cutoff.timestamp_millis(), at.timestamp_millis()).await?;
    Ok(format!("purged text of {n} mention(s) resolved before {}", cutoff.format("%Y-%m-%d")))
}
