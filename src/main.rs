//! The `carebot` command line: parse arguments, load settings, call the library, print.

mod case_cli;

use anyhow::Context as _;
use carebot::app::{chat_surfaces, App, Ctx};
use carebot::clock::SystemClock;
use carebot::config::{Settings, DEFAULT_PATH};
use carebot::domain::CaseState;
use carebot::store::CaseFilter;
use carebot::{ops, sources};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "carebot", version, about = "Turns public mentions of your hospital into tracked cases in chat")]
struct Cli {
    /// Settings file.
    #[arg(long, global = true, env = "CAREBOT_CONFIG", default_value = DEFAULT_PATH)]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything: HTTP listener, outbox delivery, scheduler, intake.
    Serve,
    /// Validate settings and playbooks; names file, line and problem.
    Check {
        /// Also ask Slack whether the token works and the bot is in every channel.
        #[arg(long)]
        online: bool,
    },
    /// Create or upgrade the database schema.
    Migrate,
    /// Ingest a JSON-lines (.jsonl) or CSV (.csv) file of mentions.
    Ingest {
        file: PathBuf,
        /// Source name for rows that do not say theirs (e.g. healthgrades).
        #[arg(long)]
        source: Option<String>,
    },
    /// List cases.
    Cases {
        /// Only cases in this state (repeatable).
        #[arg(long, value_parser = parse_state)]
        state: Vec<CaseState>,
        /// Only cases not yet resolved.
        #[arg(long)]
        open: bool,
        /// Only cases owned by the person given with --as.
        #[arg(long)]
        mine: bool,
        /// Only unclaimed cases.
        #[arg(long)]
        unclaimed: bool,
        #[arg(long)]
        site: Option<String>,
        #[arg(long)]
        category: Option<String>,
        /// Only cases past an SLA clock.
        #[arg(long)]
        overdue: bool,
        #[arg(long, env = "CAREBOT_USER")]
        r#as: Option<String>,
        #[arg(long)]
        limit: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Show or act on one case.
    Case {
        #[command(subcommand)]
        action: case_cli::CaseCli,
    },
    /// Draft a public reply for a case from the best-fitting template, with compliance findings.
    Draft {
        id: i64,
        /// Use this template instead of the best fit (switch templates).
        #[arg(long)]
        template: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        who: Who,
    },
    /// Preview (or send) the daily leadership digest for a local date.
    Digest {
        /// YYYY-MM-DD in the team's time zone (default: yesterday).
        #[arg(long)]
        date: Option<String>,
        #[arg(long, value_parser = ["text", "json", "csv"], default_value = "text")]
        format: String,
        /// Also write the four-panel chart (PNG, 30 days) here.
        #[arg(long)]
        chart: Option<PathBuf>,
        /// Queue it for the digest channel (delivered by `carebot serve`).
        #[arg(long)]
        send: bool,
    },
    /// Preview (or send) the weekly PX report: complaint themes per site and staff
    /// recognition; `report agents` for per-agent and per-site performance.
    #[command(args_conflicts_with_subcommands = true)]
    Report {
        #[command(subcommand)]
        what: Option<ReportCmd>,
        /// Last day of the week, YYYY-MM-DD (default: yesterday).
        #[arg(long)]
        week_ending: Option<String>,
        #[arg(long, value_parser = ["text", "csv", "json"], default_value = "text")]
        format: String,
        #[arg(long)]
        send: bool,
    },
    /// Cases opened in a date range with their timings and outcomes, one row per case
    /// (no mention text unless --with-text, which is recorded on each case).
    Export {
        /// First local day, YYYY-MM-DD.
        #[arg(long)]
        from: String,
        /// Last local day, YYYY-MM-DD (inclusive).
        #[arg(long)]
        to: String,
        #[arg(long, value_parser = ["csv", "jsonl"], default_value = "csv")]
        format: String,
        /// Include the mention text (needs --as a lead or risk person).
        #[arg(long)]
        with_text: bool,
        /// Who exports (a person id from playbooks/team.yaml).
        #[arg(long = "as", env = "CAREBOT_USER")]
        person: Option<String>,
    },
    /// Discord setup.
    Discord {
        #[command(subcommand)]
        action: DiscordCmd,
    },
    /// Who is on call; `oncall set` overrides a rotation for a while.
    Oncall {
        #[command(subcommand)]
        action: Option<OncallCmd>,
    },
    /// Run one scheduled job once, as if at a given time.
    RunJob {
        name: String,
        /// RFC 3339 time, e.g. 2026-11-23T09:00:00-06:00 (default: now).
        #[arg(long)]
        at: Option<String>,
    },
    /// List the jobs carebot knows and their schedules.
    Jobs,
    /// Health of the polled sources: last success, lag, last error.
    Sources,
    /// Validate the playbooks and tell the running `serve` to switch to them (SIGHUP).
    Reload,
    /// Check a public reply text alone: the same check drafts and replies get.
    Lint {
        text: String,
        /// Check as for this case (its site, platform and whether it thanks praise).
        #[arg(long)]
        case: Option<i64>,
        /// The site the reply speaks for (its public phone is allowed).
        #[arg(long, conflicts_with = "case")]
        site: Option<String>,
        /// Where it will be posted (google, yelp, x, facebook, …): length limit and DMs.
        #[arg(long, conflicts_with = "case")]
        platform: Option<String>,
        /// It thanks someone for praise (needs no offline route).
        #[arg(long, conflicts_with = "case")]
        praise: bool,
        /// Who signs it (with --case; a person id from team.yaml).
        #[arg(long = "as", env = "CAREBOT_USER")]
        person: Option<String>,
    },
    /// Triage tools: measure the playbook's triage on labelled mentions.
    Triage {
        #[command(subcommand)]
        action: TriageCmd,
    },
    /// Chat messages waiting or failed, by lane and error; `outbox retry` re-sends failed ones.
    Outbox {
        #[command(subcommand)]
        action: Option<OutboxCmd>,
    },
}

#[derive(Subcommand)]
enum OutboxCmd {
    /// Queue failed messages again (e.g. after fixing a channel id in the playbook).
    Retry {
        /// One message, by the id `carebot outbox` shows.
        #[arg(long, conflicts_with = "failed", required_unless_present = "failed")]
        id: Option<i64>,
        /// Every failed message.
        #[arg(long)]
        failed: bool,
    },
}

#[derive(Subcommand)]
enum DiscordCmd {
    /// Register the /care application command (in one guild: appears at once; else global).
    RegisterCommands {
        #[arg(long)]
        guild: Option<String>,
    },
}

#[derive(Subcommand)]
enum OncallCmd {
    /// Put PERSON on call for ROTATION until a time (leads only).
    Set {
        rotation: String,
        /// Who is on call until then (a person id from team.yaml).
        #[arg(value_name = "PERSON")]
        on_call: String,
        /// RFC 3339 time, e.g. 2026-11-27T17:00:00-06:00.
        #[arg(long)]
        until: String,
        #[command(flatten)]
        who: Who,
    },
}

#[derive(clap::Args)]
struct Who {
    /// Who is acting: a person id from playbooks/team.yaml.
    #[arg(long = "as", env = "CAREBOT_USER")]
    person: String,
}

fn parse_state(s: &str) -> Result<CaseState, String> {
    s.parse()
}

fn local_date(ctx: &Ctx, date: Option<&str>) -> anyhow::Result<chrono::NaiveDate> {
    match date {
        Some(d) => chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .with_context(|| format!("{d:?} is not a date such as 2026-11-22")),
        None => Ok(Utc::now().with_timezone(&ctx.playbooks().team.timezone).date_naive() - chrono::Duration::days(1)),
    }
}

#[derive(Subcommand)]
enum ReportCmd {
    /// Per-agent and per-site performance for the cases opened in a date range (leads and
    /// leadership only).
    Agents {
        /// First local day, YYYY-MM-DD.
        #[arg(long)]
        from: String,
        /// Last local day, YYYY-MM-DD (inclusive).
        #[arg(long)]
        to: String,
        #[arg(long, value_parser = ["text", "csv", "json"], default_value = "text")]
        format: String,
        #[command(flatten)]
        who: Who,
    },
}

#[derive(Subcommand)]
enum TriageCmd {
    /// Per-label precision and recall on a labelled JSON-lines file, with the confusions.
    Eval {
        /// One labelled mention per line (the format of playbooks/triage-corpus.jsonl).
        file: PathBuf,
        /// Cross-validate in K folds: the model never judges a mention it learnt from.
        #[arg(long, default_value_t = 1)]
        folds: usize,
        /// Also list the texts triage got wrong, per label.
        #[arg(long)]
        misses: bool,
    },
}

fn parse_time(s: &str, flag: &str) -> anyhow::Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339(s)
        .with_context(|| format!("{flag} {s:?} is not an RFC 3339 time such as 2026-11-23T09:00:00Z"))?
        .with_timezone(&Utc))
}

async fn cli_ctx(settings: Settings) -> anyhow::Result<Ctx> {
    let surfaces = chat_surfaces(&settings)?;
    let mut ctx = Ctx::new(settings, surfaces.chat.clone(), Arc::new(SystemClock)).await?;
    surfaces.attach(&mut ctx);
    Ok(ctx)
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::FAILURE
}

#[tokio::main]
async fn main() -> ExitCode {
    carebot::jobs::limit_allocator_arenas();
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve) {
        // `carebot cases | head` should end quietly when `head` stops reading, as other
        // command-line tools do, not panic on a closed pipe. `serve` keeps Rust's default.
        #[cfg(unix)]
        // SAFETY: called once at start, before any thread is spawned.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "carebot=info,warn".into()),
        )
        .init();

    if let Command::Check { online } = cli.command {
        return match ops::check(&cli.config) {
            Ok(summary) => {
                println!("{summary}");
                if online {
                    return match ops::check_online(&cli.config).await {
                        Ok(summary) => {
                            println!("{summary}");
                            ExitCode::SUCCESS
                        }
                        Err(problems) => report_problems(&problems),
                    };
                }
                ExitCode::SUCCESS
            }
            Err(problems) => report_problems(&problems),
        };
    }
    let settings = match Settings::load(&cli.config, &carebot::registry::names()) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    match run(cli.command, settings).await {
        Ok(code) => code,
        Err(e) => fail(format!("{e:#}")),
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<ExitCode> {
    match command {
        Command::Check { .. } => unreachable!("handled before settings are loaded"),
        Command::Serve => {
            let app = App::build(settings).await?;
            println!("carebot listening on http://{}", app.addr());
            app.run_until_stopped().await?;
        }
        Command::Lint { text, case: Some(id), person, .. } => {
            let Some(person) = person else { anyhow::bail!("--case needs --as PERSON (who signs the reply)") };
            let ctx = cli_ctx(settings).await?;
            let case = ctx.store.case(id).await?.ok_or_else(|| anyhow::anyhow!("there is no case {id}"))?;
            let team = &ctx.playbooks().team;
            let agent = team.person(&person).ok_or_else(|| anyhow::anyhow!("there is no {person:?} in team.yaml"))?;
            let findings = carebot::drafting::check_reply(&ctx, &case, agent, &text).await?;
            println!("{}", ops::lint_report(&findings));
            if carebot::domain::compliance::blocks(&findings) {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Lint { text, case: None, site, platform, praise, .. } => {
            let playbooks = carebot::playbook::Playbooks::load(&settings.playbooks.dir)?;
            let (report, blocked) = ops::lint(&playbooks, &text, site.as_deref(), platform.as_deref(), praise)?;
            println!("{report}");
            if blocked {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Reload => {
            let playbooks = match carebot::playbook::Playbooks::load(&settings.playbooks.dir) {
                Ok(p) => p,
                Err(problems) => {
                    eprintln!("{problems}");
                    anyhow::bail!("the playbooks have problems; the running carebot keeps its current ones");
                }
            };
            carebot::playbook::Triage::compile(&playbooks.triage_rules, &playbooks.team)?;
            let version = carebot::ctx::playbook_version(&settings.playbooks.dir);
            let pidfile = carebot::app::pid_file(&settings);
            let pid: i32 =
                std::fs::read_to_string(&pidfile).ok().and_then(|s| s.trim().parse().ok()).ok_or_else(|| {
                    anyhow::anyhow!(
                        "no running carebot found ({} is missing); the playbooks are valid (version {version}) \
                         and take effect when serve starts",
                        pidfile.display()
                    )
                })?;
            #[cfg(unix)]
            // SAFETY: kill(2) with a pid read from serve's own pid file.
            if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
                anyhow::bail!(
                    "cannot signal carebot (pid {pid} from {}): {}; is serve still running?",
                    pidfile.display(),
                    std::io::Error::last_os_error()
                );
            }
            println!("playbooks valid (version {version}); asked carebot (pid {pid}) to switch to them");
        }
        Command::Triage { action: TriageCmd::Eval { file, folds, misses } } => {
            print!("{}", ops::triage_eval(&settings.playbooks.dir, &file, folds, misses)?);
        }
        Command::Migrate => {
            let store =
                carebot::store::Store::connect(&settings.database_url(), 1, settings.database.acquire_timeout.as_std())
                    .await?;
            store.migrate().await?;
            println!("{} database is up to date", store.backend().as_str());
        }
        Command::Ingest { file, source } => {
            let ctx = cli_ctx(settings).await?;
            let default = source.or_else(|| Some(ctx.settings.sources.files.default_source.clone()));
            let report = sources::files::ingest_file(&ctx, &file, default.as_deref()).await?;
            for e in &report.errors {
                eprintln!("{}:{}: {}", file.display(), e.line, e.message);
            }
            println!("{}: {report}", file.display());
            if !report.errors.is_empty() {
                // The good rows are stored; the exit code tells scripts that some were not.
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Cases { state, open, mine, unclaimed, site, category, overdue, r#as, limit, json } => {
            let ctx = cli_ctx(settings).await?;
            if mine && r#as.is_none() {
                anyhow::bail!("--mine needs --as PERSON (or CAREBOT_USER)");
            }
            let filter = CaseFilter {
                states: state,
                open_only: open,
                owner: if mine { r#as } else { None },
                unclaimed,
                site,
                category,
                overdue_at: overdue.then(|| ctx.now_ms()),
                limit,
                by_urgency: false,
            };
            println!("{}", ops::cases(&ctx, &filter, json).await?);
        }
        Command::Case { action } => {
            let ctx = cli_ctx(settings).await?;
            let result = match (action.command, action.person) {
                (carebot::chat::command::Command::Show(id), _) => ops::case_show(&ctx, id, action.json).await,
                (cmd, Some(who)) => match ctx.playbooks().team.person(&who).cloned() {
                    // The same dispatcher as `/care`: one meaning for every surface.
                    Some(person) => carebot::chat::interact::execute(&ctx, &person, cmd, "carebot case").await,
                    None => Err(carebot::errors::ActError::UnknownPerson(who)),
                },
                (_, None) => Err(carebot::errors::ActError::Invalid("say who is acting with --as PERSON".into())),
            };
            match result {
                Ok(text) => println!("{text}"),
                Err(e) => return Ok(fail(carebot::errors::explain(&e, "cli", "case", None))),
            }
        }
        Command::Draft { id, template, json, who } => {
            let ctx = cli_ctx(settings).await?;
            match carebot::drafting::draft(&ctx, id, &who.person, template.as_deref()).await {
                Ok(d) if json => println!("{}", serde_json::to_string_pretty(&d)?),
                Ok(d) => println!("{}", ops::draft_text(&d, &who.person)),
                Err(e) => return Ok(fail(e)),
            }
        }
        Command::Digest { date, format, chart, send } => {
            let ctx = cli_ctx(settings).await?;
            let date = local_date(&ctx, date.as_deref())?;
            let today = Utc::now().with_timezone(&ctx.playbooks().team.timezone).date_naive();
            if date > today {
                return Ok(fail(format!(
                    "{date} has not started yet in {} (it is {today} there)",
                    ctx.playbooks().team.timezone
                )));
            }
            let d = carebot::digest::gather(&ctx, date).await?;
            match format.as_str() {
                "json" => println!("{}", serde_json::to_string_pretty(&d)?),
                "csv" => print!("{}", d.to_csv()?),
                _ => print!("{}", d.to_text()),
            }
            if let Some(path) = chart {
                std::fs::write(&path, d.chart_png()?).with_context(|| format!("writing {}", path.display()))?;
                eprintln!("chart written to {}", path.display());
            }
            if send {
                ops::queue_ops(&ctx, &carebot::chat::ChatOp::report(false, date)).await?;
                eprintln!("digest for {date} queued for #{} (delivered by carebot serve)", ctx.settings.digest.channel);
            }
        }
        Command::Report { what: Some(ReportCmd::Agents { from, to, format, who }), .. } => {
            let ctx = cli_ctx(settings).await?;
            let (from, to) = (local_date(&ctx, Some(&from))?, local_date(&ctx, Some(&to))?);
            let playbooks = ctx.playbooks();
            let Some(person) = playbooks.team.person(&who.person) else {
                return Ok(fail(carebot::errors::ActError::UnknownPerson(who.person)));
            };
            use carebot::domain::Role;
            if !person.roles.iter().any(|r| matches!(r, Role::Lead | Role::Leadership)) {
                return Ok(fail(format!(
                    "per-agent figures are for leads and leadership; {} has neither role",
                    person.name
                )));
            }
            if from > to {
                return Ok(fail(format!("--from {from} is after --to {to}")));
            }
            let p = carebot::digest::performance::gather(&ctx, from, to).await?;
            match format.as_str() {
                "csv" => print!("{}", p.to_csv()?),
                "json" => println!("{}", serde_json::to_string_pretty(&p)?),
                _ => print!("{}", p.to_text()),
            }
        }
        Command::Report { what: None, week_ending, format, send } => {
            let ctx = cli_ctx(settings).await?;
            let date = local_date(&ctx, week_ending.as_deref())?;
            let r = carebot::digest::gather_weekly(&ctx, date).await?;
            match format.as_str() {
                "csv" => print!("{}", r.to_csv()?),
                "json" => println!("{}", serde_json::to_string_pretty(&r)?),
                _ => print!("{}", r.to_text()),
            }
            if send {
                ops::queue_ops(&ctx, &carebot::chat::ChatOp::report(true, date)).await?;
                eprintln!("report queued for #{} (delivered by carebot serve)", ctx.settings.digest.weekly_channel);
            }
        }
        Command::Export { from, to, format, with_text, person } => {
            let ctx = cli_ctx(settings).await?;
            let (from, to) = (local_date(&ctx, Some(&from))?, local_date(&ctx, Some(&to))?);
            use carebot::digest::export::{export, ExportError, Format};
            let format = if format == "jsonl" { Format::Jsonl } else { Format::Csv };
            let who = match (with_text, person) {
                (false, _) => None,
                (true, Some(p)) => Some(p),
                (true, None) => return Ok(fail(ExportError::WhoExports)),
            };
            match export(&ctx, from, to, format, who.as_deref()).await {
                Ok(out) => print!("{out}"),
                Err(ExportError::Other(e)) => return Err(e),
                Err(e) => return Ok(fail(e)),
            }
        }
        Command::Discord { action: DiscordCmd::RegisterCommands { guild } } => {
            println!("{}", ops::discord_register(&settings, guild.as_deref()).await?);
        }
        Command::Oncall { action } => {
            let ctx = cli_ctx(settings).await?;
            match action {
                None => println!("{}", ops::oncall_show(&ctx).await?),
                Some(OncallCmd::Set { rotation, on_call, until, who }) => {
                    let until = parse_time(&until, "--until")?;
                    match ops::oncall_set(&ctx, &rotation, &on_call, until, &who.person).await {
                        Ok(s) => println!("{s}"),
                        Err(e) => return Ok(fail(e)),
                    }
                }
            }
        }
        Command::RunJob { name, at } => {
            let at: DateTime<Utc> = match at {
                None => Utc::now(),
                Some(s) => parse_time(&s, "--at")?,
            };
            if !carebot::registry::is_known(&name) {
                anyhow::bail!("unknown job {name:?}; known jobs: {}", carebot::registry::names().join(", "));
            }
            let ctx = cli_ctx(settings).await?;
            println!("{name}: {}", carebot::registry::run_once(&ctx, &name, at).await?);
        }
        Command::Sources => {
            let ctx = cli_ctx(settings).await?;
            println!("{}", ops::sources_table(&ctx).await?);
        }
        Command::Outbox { action } => {
            let ctx = cli_ctx(settings).await?;
            match action {
                None => {
                    println!("{}", ops::outbox_table(&ctx).await?);
                    if ctx.store.outbox_depth().await?.1 > 0 {
                        return Ok(ExitCode::FAILURE); // something failed: scripts can check
                    }
                }
                Some(OutboxCmd::Retry { id, .. }) => {
                    let n = ctx.store.outbox_requeue(id, ctx.now_ms()).await?;
                    if n == 0 && id.is_some() {
                        return Ok(fail(format!("no failed message with id {}", id.unwrap_or_default())));
                    }
                    println!("{n} failed message(s) queued again; carebot serve delivers them");
                }
            }
        }
        Command::Jobs => {
            let ctx = cli_ctx(settings).await?;
            println!("{}", ops::jobs_table(&ctx).await?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `carebot check`'s failure: every problem on its own line, then the count.
fn report_problems(problems: &[String]) -> ExitCode {
    for p in problems {
        eprintln!("{p}");
    }
    eprintln!("{} problem(s) found", problems.len());
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_grammar_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
