//! The assembly, imported by nobody but `main`: picks the chat surfaces, builds the
//! [`Ctx`], binds the listener (port 0 in tests) and runs HTTP, the outbox worker, the
//! scheduler and intake until stopped.

use crate::chat::discord::Discord;
use crate::chat::slack::Slack;
use crate::chat::{console::Console, ChatSurface};
use crate::clock::SystemClock;
use crate::config::{Settings, SurfaceKind};
use anyhow::Context as _;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;

pub use crate::ctx::Ctx;

/// The chat surfaces the settings ask for: what the outbox delivers through, and the
/// Slack client when Slack is in use.
pub struct Surfaces {
    pub chat: Arc<dyn ChatSurface>,
    pub slack: Option<Arc<Slack>>,
    pub discord: Option<Arc<Discord>>,
}

impl Surfaces {
    /// Hands the platform clients to the context (inbound callbacks need them).
    pub fn attach(self, ctx: &mut Ctx) {
        if let Ok(p) = crate::sources::publish::HttpPublisher::new() {
            ctx.publisher = Arc::new(p);
        }
        if let Some(slack) = self.slack {
            ctx.attach_adapter(slack);
        }
        if let Some(discord) = self.discord {
            ctx.attach_adapter(discord);
        }
    }
}

/// Picks the chat surface: `auto` means Slack when its bot token is set, else Discord when
/// its bot token is set, else the console.
pub fn chat_surfaces(settings: &Settings) -> anyhow::Result<Surfaces> {
    let console = || Surfaces { chat: Arc::new(Console::stdout()), slack: None, discord: None };
    let secrets = &settings.secrets;
    let kind = match settings.chat.surface {
        SurfaceKind::Auto if secrets.slack_bot_token.is_some() => SurfaceKind::Slack,
        SurfaceKind::Auto if secrets.discord_bot_token.is_some() => SurfaceKind::Discord,
        SurfaceKind::Auto => SurfaceKind::Console,
        k => k,
    };
    match kind {
        SurfaceKind::Console | SurfaceKind::Auto => Ok(console()),
        SurfaceKind::Slack => {
            let token = secrets
                .slack_bot_token
                .as_deref()
                .context("chat.surface = \"slack\" needs SLACK_BOT_TOKEN (xoxb-…) in the environment")?;
            match settings.slack.mode {
                crate::config::SlackMode::Http if secrets.slack_signing_secret.is_none() => {
                    anyhow::bail!(
                        "Slack over HTTP needs SLACK_SIGNING_SECRET (Basic Information page of the Slack app)"
                    )
                }
                crate::config::SlackMode::Socket if secrets.slack_app_token.is_none() => {
                    anyhow::bail!("slack.mode = \"socket\" needs SLACK_APP_TOKEN (xapp-…, with connections:write)")
                }
                _ => {}
            }
            let slack = Arc::new(Slack::new(&settings.slack, token)?);
            Ok(Surfaces { chat: slack.clone(), slack: Some(slack), discord: None })
        }
        SurfaceKind::Discord => {
            let token = secrets
                .discord_bot_token
                .as_deref()
                .context("chat.surface = \"discord\" needs DISCORD_BOT_TOKEN in the environment")?;
            let key = secrets
                .discord_public_key
                .as_deref()
                .context("Discord needs DISCORD_PUBLIC_KEY (General Information page of the application)")?;
            let discord = Arc::new(Discord::new(&settings.discord, token, Some(key))?);
            Ok(Surfaces { chat: discord.clone(), slack: None, discord: Some(discord) })
        }
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
        let surfaces = chat_surfaces(&settings)?;
        let mut ctx = Ctx::new(settings, surfaces.chat.clone(), Arc::new(SystemClock)).await?;
        surfaces.attach(&mut ctx);
        App::from_ctx(ctx).await
    }

    /// Binds the listener for a prepared context (tests pass their own surface and clock).
    pub async fn from_ctx(ctx: Ctx) -> anyhow::Result<App> {
        let listen = ctx.settings.http.listen;
        let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
        let addr = listener.local_addr()?;
        Ok(App { ctx: Arc::new(ctx), listener, addr })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn ctx(&self) -> Arc<Ctx> {
        self.ctx.clone()
    }

    /// Runs until Ctrl-C or SIGTERM; writes its pid to `carebot.pid` beside the settings'
    /// data folder so `carebot reload` can find it.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let pidfile = pid_file(&self.ctx.settings);
        if let Some(dir) = pidfile.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = std::fs::write(&pidfile, format!("{}\n", std::process::id())) {
            tracing::warn!(file = %pidfile.display(), error = %e, "cannot write the pid file; `carebot reload` will not find this process");
        }
        let result = self.run_until(shutdown_signal()).await;
        let _ = std::fs::remove_file(&pidfile);
        result
    }

    /// Runs until `stop` completes; background work is stopped and the server drained.
    pub async fn run_until(self, stop: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let (tx, rx) = watch::channel(false);
        let ctx = self.ctx.clone();
        tracing::info!(addr = %self.addr, store = ctx.store.backend().as_str(), surface = ctx.chat.name(), "carebot serving");
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(crate::jobs::outbox::run_worker(ctx.clone(), rx.clone()));
        tasks.spawn(crate::jobs::scheduler::run(ctx.clone(), crate::registry::JOBS, rx.clone()));
        tasks.spawn(crate::sources::files::import_on_start(ctx.clone()));
        tasks.spawn(reload_on_hangup(ctx.clone(), rx.clone()));
        if let (Some(_), crate::config::SlackMode::Socket, Some(app_token)) =
            (ctx.adapter::<Slack>(), ctx.settings.slack.mode, ctx.settings.secrets.slack_app_token.clone())
        {
            tasks.spawn(crate::chat::slack::inbound::run_socket_mode(ctx.clone(), app_token, rx.clone()));
        }
        let router = crate::http::router(ctx.clone());
        let http = &ctx.settings.http;
        let limits = crate::http::server::Limits {
            header_read_timeout: http.header_read_timeout.as_std(),
            idle_timeout: http.idle_timeout.as_std(),
            max_connections: http.max_connections,
            shutdown_grace: http.shutdown_grace.as_std(),
        };
        let server = crate::http::server::serve(self.listener, router, limits, rx.clone());
        let stopper = tokio::spawn(async move {
            stop.await;
            let _ = tx.send(true);
        });
        let result = server.await.context("HTTP server");
        stopper.abort();
        // Background work stops at its next await point; a delivery or job still running
        // after the grace period is cut off (its outbox rows stay pending for the next start).
        let grace = ctx.settings.http.shutdown_grace.as_std();
        if tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await.is_err() {
            tracing::warn!("background work still running after the grace period; stopping it");
            tasks.shutdown().await;
        }
        ctx.store.close().await;
        tracing::info!("carebot stopped");
        result
    }
}

/// Where `serve` notes its process id: `carebot.pid` in the SQLite file's folder (`data/`
/// by default), whichever database is in use.
pub fn pid_file(settings: &crate::config::Settings) -> std::path::PathBuf {
    let dir = settings.database.sqlite_path.parent().filter(|p| !p.as_os_str().is_empty());
    dir.unwrap_or(std::path::Path::new(".")).join("carebot.pid")
}

/// SIGHUP (what `carebot reload` sends) reloads the playbooks: validated first, swapped
/// whole, or refused with every problem logged while the running set stays.
async fn reload_on_hangup(ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    #[cfg(unix)]
    {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else { return };
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                got = hup.recv() => {
                    if got.is_none() { return }
                    match ctx.reload_playbooks() {
                        Ok(version) => tracing::info!(version, "playbooks reloaded"),
                        Err(problems) => {
                            for p in &problems {
                                tracing::error!(problem = %p, "playbook reload refused; the running playbooks stay");
                            }
                        }
                    }
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (ctx, stop.changed().await);
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
