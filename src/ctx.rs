//! The context every handler and job receives: settings, store, playbooks, triage, the
//! chat surface and the clock — no globals. It sits between the core (store, playbooks,
//! the chat-neutral model) and the services; it names no platform: the Slack and Discord
//! clients the inbound adapters need are kept by type ([`Ctx::adapter`]).

use crate::chat::ChatSurface;
use crate::clock::Clock;
use crate::config::Settings;
use crate::playbook::{Playbooks, Triage};
use crate::store::Store;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Notify;

/// Everything a handler or job needs, passed by reference. No globals.
pub struct Ctx {
    pub settings: Settings,
    pub store: Store,
    pub playbooks: Arc<Playbooks>,
    pub triage: Arc<Triage>,
    pub chat: Arc<dyn ChatSurface>,
    pub clock: Arc<dyn Clock>,
    /// Wakes the outbox worker when new messages are queued.
    pub outbox_wake: Arc<Notify>,
    /// Platform clients the inbound adapters need (the Slack or Discord client), by type:
    /// the core holds them without knowing what they are.
    adapters: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
    /// Requests per webhook source (`http.webhook_requests_per_second`).
    pub webhook_limiter: governor::DefaultKeyedRateLimiter<String>,
}

impl Ctx {
    /// Loads playbooks, connects to and migrates the database.
    pub async fn new(settings: Settings, chat: Arc<dyn ChatSurface>, clock: Arc<dyn Clock>) -> anyhow::Result<Ctx> {
        let playbooks = Playbooks::load(&settings.playbooks.dir)?;
        let unknown = settings.unknown_mapped_sites(&playbooks.team);
        if !unknown.is_empty() {
            let list: Vec<String> =
                unknown.iter().map(|(k, s)| format!("{k}: site {s:?} is not in team.yaml")).collect();
            anyhow::bail!("{} (run `carebot check`)", list.join("; "));
        }
        let triage = Triage::compile(&playbooks.triage_rules, &playbooks.team)?;
        let db = &settings.database;
        let store = Store::connect(&settings.database_url(), db.max_connections, db.acquire_timeout.as_std()).await?;
        store.migrate().await?;
        Ok(Ctx {
            store,
            playbooks: Arc::new(playbooks),
            triage: Arc::new(triage),
            chat,
            clock,
            outbox_wake: Arc::new(Notify::new()),
            adapters: HashMap::new(),
            webhook_limiter: webhook_limiter(&settings.http),
            settings,
        })
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    /// Hands a platform client to the context (the assembly does this at start).
    pub fn attach_adapter<T: Any + Send + Sync>(&mut self, adapter: Arc<T>) {
        self.adapters.insert(TypeId::of::<T>(), adapter);
    }

    /// The platform client of type `T`, if that platform is in use.
    pub fn adapter<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.adapters.get(&TypeId::of::<T>()).cloned().and_then(|a| a.downcast::<T>().ok())
    }
}

fn webhook_limiter(http: &crate::config::HttpSettings) -> governor::DefaultKeyedRateLimiter<String> {
    let rate = std::num::NonZeroU32::new(http.webhook_requests_per_second.max(1)).unwrap_or(std::num::NonZeroU32::MIN);
    let burst = rate.saturating_mul(std::num::NonZeroU32::new(4).unwrap_or(std::num::NonZeroU32::MIN));
    governor::RateLimiter::keyed(governor::Quota::per_second(rate).allow_burst(burst))
}
