//! Building the application apart from running it: `Ctx` is the one context every handler
//! and job receives; `App::build` prepares it and binds the listener (port 0 in tests);
//! `run_until_stopped` serves HTTP and runs the outbox worker, scheduler and intake.

use crate::chat::{console::Console, ChatSurface};
use crate::clock::{Clock, SystemClock};
use crate::config::{Settings, SurfaceKind};
use crate::playbook::{Playbooks, Triage};
use crate::store::Store;
use anyhow::Context as _;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{watch, Notify};

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
}

impl Ctx {
    /// Loads playbooks, connects to and migrates the database.
    pub async fn new(settings: Settings, chat: Arc<dyn ChatSurface>, clock: Arc<dyn Clock>) -> anyhow::Result<Ctx> {
        let playbooks = Playbooks::load(&settings.playbooks.dir)?;
        let triage = Triage::compile(&playbooks.triage_rules, &playbooks.team)?;
        let store = Store::connect(&settings.database_url(), settings.database.max_connections).await?;
        store.migrate().await?;
        Ok(Ctx {
            settings,
            store,
            playbooks: Arc::new(playbooks),
            triage: Arc::new(triage),
            chat,
            clock,
            outbox_wake: Arc::new(Notify::new()),
        })
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }
}

/// The chat surface the settings ask for.
pub fn chat_surface(settings: &Settings) -> anyhow::Result<Arc<dyn ChatSurface>> {
    match settings.chat.surface {
        SurfaceKind::Console => Ok(Arc::new(Console::stdout())),
        SurfaceKind::Auto => {
            if settings.secrets.slack_bot_token.is_some() || settings.secrets.discord_bot_token.is_some() {
                tracing::warn!("chat tokens are set but this build delivers to the console surface only");
            }
            Ok(Arc::new(Console::stdout()))
        }
        other => anyhow::bail!(
            "chat.surface = {:?} is not supported by this version of carebot; use \"console\" or \"auto\"",
            format!("{other:?}").to_lowercase()
        ),
    }
}

pub struct App {
    ctx: Arc<Ctx>,
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
}

impl App {
    /// Production build: chat surface from settings, system clock.
    pub async fn build(settings: Settings) -> anyhow::Result<App> {
        let chat = chat_surface(&settings)?;
        let ctx = Ctx::new(settings, chat, Arc::new(SystemClock)).await?;
        App::from_ctx(ctx).await
    }

    /// Binds the listener for a prepared context (tests pass their own surface and clock).
    pub async fn from_ctx(ctx: Ctx) -> anyhow::Result<App> {
        let listen = ctx.settings.http.listen.clone();
        let listener = tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("binding {listen}"))?;
        let addr = listener.local_addr()?;
        Ok(App { ctx: Arc::new(ctx), listener, addr })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn ctx(&self) -> Arc<Ctx> {
        self.ctx.clone()
    }

    /// Runs until Ctrl-C or SIGTERM.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Runs until `stop` completes; background work is stopped and the server drained.
    pub async fn run_until(self, stop: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let (tx, rx) = watch::channel(false);
        let ctx = self.ctx.clone();
        tracing::info!(addr = %self.addr, store = ctx.store.backend().as_str(), surface = ctx.chat.name(), "carebot serving");
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(crate::jobs::outbox::run_worker(ctx.clone(), rx.clone()));
        tasks.spawn(crate::jobs::scheduler::run(ctx.clone(), rx.clone()));
        tasks.spawn(crate::sources::files::import_on_start(ctx.clone()));
        let router = crate::http::router(ctx.clone());
        let mut rx_http = rx.clone();
        let server = axum::serve(self.listener, router).with_graceful_shutdown(async move {
            let _ = rx_http.wait_for(|s| *s).await;
        });
        let stopper = tokio::spawn(async move {
            stop.await;
            let _ = tx.send(true);
        });
        let result = server.await.context("HTTP server");
        stopper.abort();
        while tasks.join_next().await.is_some() {}
        ctx.store.close().await;
        tracing::info!("carebot stopped");
        result
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
