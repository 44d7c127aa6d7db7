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
    /// The playbooks and the triage compiled from them, swapped together on reload.
    live: arc_swap::ArcSwap<Live>,
    pub chat: Arc<dyn ChatSurface>,
    /// Posts approved replies to Google, Facebook and X (attached by the assembly).
    pub publisher: Arc<dyn crate::publish::Publisher>,
    pub clock: Arc<dyn Clock>,
    /// Wakes the outbox worker when new messages are queued.
    pub outbox_wake: Arc<Notify>,
    /// Platform clients the inbound adapters need (the Slack or Discord client), by type:
    /// the core holds them without knowing what they are.
    adapters: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
    /// Requests per webhook source (`http.webhook_requests_per_second`).
    pub webhook_limiter: governor::DefaultKeyedRateLimiter<String>,
}

/// One validated playbook set, with the triage compiled from it and a version id (a hash of
/// the files) recorded with every change it makes.
pub struct Live {
    pub playbooks: Arc<Playbooks>,
    pub triage: Arc<Triage>,
    pub version: String,
}

impl Live {
    pub fn new(playbooks: Playbooks, triage: Triage) -> Live {
        let version = playbook_version(&playbooks.dir);
        Live { playbooks: Arc::new(playbooks), triage: Arc::new(triage), version }
    }
}

/// A short hash of every file in the playbooks folder (names and contents).
pub fn playbook_version(dir: &std::path::Path) -> String {
    use sha2::Digest;
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.push(p);
                }
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort();
    let mut h = sha2::Sha256::new();
    for f in files {
        h.update(f.strip_prefix(dir).unwrap_or(&f).to_string_lossy().as_bytes());
        h.update(std::fs::read(&f).unwrap_or_default());
    }
    h.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect()
}

impl Ctx {
    /// The playbooks live now (a reload swaps them; hold the `Arc` for one piece of work).
    pub fn playbooks(&self) -> Arc<Playbooks> {
        self.live.load().playbooks.clone()
    }

    /// The triage compiled from the live playbooks.
    pub fn triage(&self) -> Arc<Triage> {
        self.live.load().triage.clone()
    }

    /// The live playbooks' version id.
    pub fn playbook_version(&self) -> String {
        self.live.load().version.clone()
    }

    /// Loads and validates the playbooks again and, only if every file is sound, swaps
    /// them in whole; a broken set is refused with its `file:line` problems and the running
    /// set stays. Returns the new version id.
    pub fn reload_playbooks(&self) -> Result<String, Vec<String>> {
        let playbooks = Playbooks::load(&self.settings.playbooks.dir)
            .map_err(|p| p.0.iter().map(|x| x.to_string()).collect::<Vec<_>>())?;
        let unknown = self.settings.unknown_mapped_sites(&playbooks.team);
        if !unknown.is_empty() {
            return Err(unknown.iter().map(|(k, s)| format!("{k}: site {s:?} is not in team.yaml")).collect());
        }
        let triage = Triage::compile(&playbooks.triage_rules, &playbooks.team).map_err(|e| vec![format!("{e:#}")])?;
        let live = Live::new(playbooks, triage);
        let version = live.version.clone();
        self.live.store(Arc::new(live));
        Ok(version)
    }

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
            live: arc_swap::ArcSwap::from_pointee(Live::new(playbooks, triage)),
            chat,
            publisher: Arc::new(crate::publish::Unattached),
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
    let rate = http.webhook_requests_per_second;
    let burst = rate.saturating_mul(std::num::NonZeroU32::new(4).unwrap_or(std::num::NonZeroU32::MIN));
    governor::RateLimiter::keyed(governor::Quota::per_second(rate).allow_burst(burst))
}
