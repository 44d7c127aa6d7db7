//! The `spike_check` job: a site or a category whose mentions in the last `window` exceed
//! `factor` × its average per window over the trailing `baseline` (and `min_mentions`)
//! alerts the leads by DM and, if set, a channel — once per `cooldown`. Alerts carry
//! counts and names of sites and categories only, never mention text or authors.

use crate::chat::ChatOp;
use crate::ctx::Ctx;
use crate::playbook::triage_rules::Spike;
use crate::store::spikes;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// One site or category's counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Rate {
    pub scope: String,
    pub label: String,
    pub window: i64,
    /// Average mentions per window over the baseline.
    pub usual: f64,
}

impl Rate {
    pub fn is_spike(&self, s: &Spike) -> bool {
        self.window >= s.min_mentions && self.window as f64 > s.factor * self.usual
    }
}

/// Counts per site and per category: (scope, window count, baseline count).
pub fn rates(ctx: &Ctx, spike: &Spike, rows: &[spikes::SpikeRow], now: i64) -> Vec<Rate> {
    let window_start = now - spike.window.as_millis();
    let mut counts: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for r in rows {
        let recent = r.posted_at > window_start;
        let scopes =
            r.site.iter().map(|s| format!("site:{s}")).chain(r.categories.iter().map(|c| format!("category:{c}")));
        for scope in scopes {
            let e = counts.entry(scope).or_default();
            if recent {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
    }
    let windows_in_baseline = spike.baseline.as_millis() as f64 / spike.window.as_millis() as f64;
    counts
        .into_iter()
        .map(|(scope, (window, baseline))| {
            let label = match scope.split_once(':') {
                Some(("site", id)) => ctx.playbooks().team.site(id).map(|s| s.name.clone()).unwrap_or(id.to_string()),
                Some((_, id)) => {
                    ctx.playbooks().triage_rules.category(id).map(|r| r.label.clone()).unwrap_or(id.to_string())
                }
                None => scope.clone(),
            };
            Rate { scope, label, window, usual: baseline as f64 / windows_in_baseline }
        })
        .collect()
}

pub async fn check(ctx: &Ctx, at: DateTime<Utc>) -> anyhow::Result<String> {
    let pb = ctx.playbooks();
    let Some(spike) = pb.triage_rules.spike.clone() else {
        return Ok("spike alerts are off (no `spike:` in triage.yaml)".into());
    };
    let now = at.timestamp_millis();
    let (w, b) = (spike.window.as_millis(), spike.baseline.as_millis());
    // A baseline needs history: a new installation (or a first import) is not a spike.
    let first = ctx.store.first_received_at().await?;
    if first.is_none_or(|f| f > now - w - b / 2) {
        return Ok("not enough history for a baseline yet".into());
    }
    let rows = ctx.store.spike_rows(now - w - b, now).await?;
    let mut raised = Vec::new();
    for rate in rates(ctx, &spike, &rows, now).into_iter().filter(|r| r.is_spike(&spike)) {
        if ctx.store.last_spike(&rate.scope).await?.is_some_and(|t| now - t < spike.cooldown.as_millis()) {
            continue;
        }
        let text = format!(
            "📈 Spike: {} mentions about {} in the last {} — about {:.1} is usual ({} average). \
             Check the queue (`/care queue`) and consider a holding statement.",
            rate.window, rate.label, spike.window, rate.usual, spike.baseline
        );
        let detail = serde_json::json!({
            "window_count": rate.window, "usual": rate.usual, "factor": spike.factor,
            "window": spike.window.to_string(), "baseline": spike.baseline.to_string(),
        });
        let mut tx = ctx.store.begin().await?;
        spikes::record_spike(&mut tx, &rate.scope, now, &detail).await?;
        let leads = pb.team.with_role(crate::domain::Role::Lead);
        let mut ops: Vec<ChatOp> = leads
            .map(|p| ChatOp::DirectMessage {
                person: p.id.clone(),
                text: text.clone(),
                case_id: None,
                nudge: false,
                approve: None,
            })
            .collect();
        if let Some((channel, _)) = &spike.channel {
            ops.push(ChatOp::ChannelMessage { channel: channel.clone(), text: text.clone() });
        }
        for op in ops {
            crate::chat::queue(&mut tx, &op, now, now).await?;
        }
        tx.commit().await?;
        metrics::counter!("carebot_spike_alerts_total").increment(1);
        raised.push(format!("{} ({} vs {:.1} usual)", rate.scope, rate.window, rate.usual));
    }
    ctx.outbox_wake.notify_one();
    Ok(if raised.is_empty() { "no spike".into() } else { format!("spike alert(s): {}", raised.join(", ")) })
}
