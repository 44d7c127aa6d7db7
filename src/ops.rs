//! What the CLI commands do, as library functions returning text (or JSON) for the terminal.
//! `main.rs` only parses arguments and prints.

use crate::config::Settings;
use crate::ctx::Ctx;
use crate::playbook::{Playbooks, Triage};
use crate::present::fmt_time;
pub use crate::present::{case_act, case_show, oncall_set, oncall_show};
use crate::store::{CaseFilter, CaseRow};
use std::path::Path;

/// `carebot check`: every problem in the config and playbooks, or a summary when clean.
pub fn check(config_path: &Path) -> Result<String, Vec<String>> {
    // Every file is checked even when an earlier one is broken, so one run lists every
    // mistake: a broken config still names its playbooks folder (or the default one).
    let (settings, playbooks) = match Settings::load(config_path, &crate::registry::names()) {
        Ok(settings) => {
            let playbooks = Playbooks::load(&settings.playbooks.dir)
                .map_err(|p| p.0.iter().map(|x| x.to_string()).collect::<Vec<_>>())?;
            (settings, playbooks)
        }
        Err(e) => {
            let mut problems: Vec<String> = e.0.iter().map(|p| p.to_string()).collect();
            if let Err(p) = Playbooks::load(&crate::config::playbooks_dir_of(config_path)) {
                problems.extend(p.0.iter().map(|x| x.to_string()));
            }
            return Err(problems);
        }
    };
    Triage::compile(&playbooks.triage_rules, &playbooks.team).map_err(|e| vec![format!("triage rules: {e}")])?;
    let channels = &playbooks.situations.channels;
    let text = std::fs::read_to_string(config_path).unwrap_or_default();
    let mut missing: Vec<String> =
        [("digest.channel", &settings.digest.channel), ("digest.weekly_channel", &settings.digest.weekly_channel)]
            .into_iter()
            .filter(|(_, c)| !channels.contains_key(c.as_str()))
            .map(|(k, c)| {
                let line = crate::config::locate_key(&text, &k.split('.').map(str::to_string).collect::<Vec<_>>());
                let at = line.map(|l| format!(":{l}")).unwrap_or_default();
                format!("{}{at}: {k}: channel {c:?} is not defined in situations.yaml", config_path.display())
            })
            .collect();
    for (key, site) in settings.unknown_mapped_sites(&playbooks.team) {
        let line = text.lines().position(|l| l.contains(&format!("\"{site}\""))).map(|i| i + 1);
        let at = line.map(|l| format!(":{l}")).unwrap_or_default();
        missing.push(format!("{}{at}: {key}: site {site:?} is not in team.yaml", config_path.display()));
    }
    if !missing.is_empty() {
        return Err(missing);
    }
    let t = &playbooks.team;
    Ok(format!(
        "{}: ok\n{}: ok ({} people, {} sites, {} rotation(s), {} triage rules, {} situations, {} channels, {} reply templates)\nscheduled jobs: {}",
        config_path.display(),
        settings.playbooks.dir.display(),
        t.people.len(),
        t.sites.len(),
        t.rotations.len(),
        playbooks.triage_rules.rules.len(),
        playbooks.situations.situations.len(),
        playbooks.situations.channels.len(),
        playbooks.replies.templates.len(),
        if settings.jobs.is_empty() { "none".to_string() } else { settings.jobs.keys().cloned().collect::<Vec<_>>().join(", ") }
    ))
}

/// `carebot check --online`: the Slack token works and the bot is in every channel.
pub async fn check_online(config_path: &Path) -> Result<String, Vec<String>> {
    let settings = Settings::load(config_path, &crate::registry::names())
        .map_err(|e| e.0.iter().map(|p| p.to_string()).collect::<Vec<_>>())?;
    let playbooks =
        Playbooks::load(&settings.playbooks.dir).map_err(|p| p.0.iter().map(|x| x.to_string()).collect::<Vec<_>>())?;
    let Some(token) = settings.secrets.slack_bot_token.as_deref() else {
        return Err(vec!["--online checks Slack: set SLACK_BOT_TOKEN".into()]);
    };
    let slack = crate::chat::slack::Slack::new(&settings.slack, token).map_err(|e| vec![format!("{e:#}")])?;
    let problems = slack.check_online(&playbooks).await;
    if problems.is_empty() {
        Ok(format!("Slack: token accepted; the bot is in all {} channels", playbooks.situations.channels.len()))
    } else {
        Err(problems)
    }
}

/// `carebot discord register-commands`: installs `/care` for a guild or globally.
pub async fn discord_register(settings: &Settings, guild: Option<&str>) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let s = &settings.secrets;
    let token = s.discord_bot_token.as_deref().context("set DISCORD_BOT_TOKEN")?;
    let app = s.discord_application_id.as_deref().context("set DISCORD_APPLICATION_ID")?;
    let discord = crate::chat::discord::Discord::new(&settings.discord, token, None)?;
    let done = discord.register_commands(app, guild).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let names: Vec<&str> = done.as_array().into_iter().flatten().filter_map(|c| c["name"].as_str()).collect();
    let scope = guild.map(|g| format!("guild {g}")).unwrap_or_else(|| "all guilds (global; may take a while)".into());
    Ok(format!("registered /{} for {scope}", names.join(", /")))
}

fn next_due(c: &CaseRow) -> Option<i64> {
    use crate::domain::CaseState::*;
    match c.state {
        Open => c.ack_due.or(c.response_due).or(c.resolve_due),
        Claimed => c.response_due.or(c.resolve_due),
        Responded | Offline => c.resolve_due,
        Resolved => None,
    }
}

/// `carebot cases`: a table (or JSON array) of cases matching the filter.
pub async fn cases(ctx: &Ctx, filter: &CaseFilter, json: bool) -> anyhow::Result<String> {
    let list = ctx.store.list_cases(filter).await?;
    if json {
        return Ok(serde_json::to_string_pretty(&list)?);
    }
    if list.is_empty() {
        return Ok("no cases match".into());
    }
    let now = ctx.now_ms();
    let mut out = format!(
        "{:>5}  {:<9}  {:<3}  {:<16}  {:<10}  {:<8}  {:<16}  {}\n",
        "case", "state", "pri", "situation", "site", "owner", "opened (UTC)", "next due (UTC)"
    );
    for c in &list {
        let overdue = if c.overdue_at(now) { "  OVERDUE" } else { "" };
        out.push_str(&format!(
            "{:>5}  {:<9}  {:<3}  {:<16}  {:<10}  {:<8}  {:<16}  {}{overdue}\n",
            c.id,
            c.state.as_str(),
            c.priority.as_str(),
            c.situation,
            c.site.as_deref().unwrap_or("-"),
            c.owner.as_deref().unwrap_or("-"),
            fmt_time(Some(c.opened_at)),
            fmt_time(next_due(c)),
        ));
    }
    out.push_str(&format!("{} case(s)", list.len()));
    Ok(out)
}

/// Queues one chat operation for the running `serve` to deliver.
pub async fn queue_op(ctx: &Ctx, op: crate::chat::ChatOp) -> anyhow::Result<()> {
    queue_ops(ctx, &[op]).await
}

/// Queues several operations together (a report's text and its file).
pub async fn queue_ops(ctx: &Ctx, ops: &[crate::chat::ChatOp]) -> anyhow::Result<()> {
    let mut tx = ctx.store.begin().await?;
    let now = ctx.now_ms();
    for op in ops {
        crate::chat::queue(&mut tx, op, now, now).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// `carebot jobs`: each job, its schedule, next run and last result.
pub async fn jobs_table(ctx: &Ctx) -> anyhow::Result<String> {
    let tz_default = ctx.playbooks().team.timezone;
    let now = ctx.clock.now();
    let mut out = format!("{:<17} {:<22} {:<26} {}\n", "job", "schedule", "next run", "last run");
    for j in crate::registry::JOBS {
        let (sched, next) = match ctx.settings.jobs.get(j.name).filter(|c| c.enabled) {
            None => ("not scheduled".to_string(), "-".to_string()),
            Some(c) => {
                let tz = c.zone(tz_default);
                let next = (c.cron.schedule.after(&now.with_timezone(&tz)).next())
                    .map(|d| d.format("%Y-%m-%d %H:%M:%S %Z").to_string())
                    .unwrap_or_else(|| "-".into());
                (c.cron.expr.clone(), next)
            }
        };
        let last = match ctx.store.last_job_run(j.name).await? {
            None => "never".to_string(),
            Some(r) => format!("{} {} ({})", fmt_time(Some(r.scheduled_at)), r.status, r.detail.unwrap_or_default()),
        };
        out.push_str(&format!("{:<17} {:<22} {:<26} {last}\n", j.name, sched, next));
    }
    Ok(out.trim_end().to_string())
}

/// `carebot sources`: each polled source's last success, last error and lag.
pub async fn sources_table(ctx: &Ctx) -> anyhow::Result<String> {
    let now = ctx.now_ms();
    let cursors = ctx.store.source_cursors().await?;
    let mut out = format!("{:<28} {:<18} {:<10} {}\n", "source", "last success (UTC)", "lag", "last error");
    // Every configured source is listed, polled yet or not.
    let src = &ctx.settings.sources;
    let mut names: Vec<String> = src.feeds.iter().map(|f| f.name.clone()).collect();
    if ctx.settings.secrets.facebook_app_secret.is_some() {
        names.push(crate::sources::facebook::HEALTH_KEY.into());
    }
    if !src.x.query.trim().is_empty() {
        names.push(crate::sources::x::KEY.into());
    }
    names.extend(src.google_business.locations.iter().map(crate::sources::google_business::key));
    names.extend(src.yelp.businesses.iter().map(crate::sources::yelp::key));
    names.extend(cursors.iter().map(|c| c.source.clone()).filter(|s| !names.contains(s)).collect::<Vec<_>>());
    for name in names {
        let c = cursors.iter().find(|c| c.source == name);
        let success = c.and_then(|c| c.last_success_at);
        let lag = success.map(|s| format!("{}s", (now - s) / 1000)).unwrap_or_else(|| "-".into());
        let error = c.and_then(|c| c.last_error.clone()).unwrap_or_default();
        out.push_str(&format!("{name:<28} {:<18} {lag:<10} {error}\n", fmt_time(success)));
    }
    Ok(out.trim_end().to_string())
}

/// `carebot outbox`: what waits and what failed, by lane and error, and the failed ids.
pub async fn outbox_table(ctx: &Ctx) -> anyhow::Result<String> {
    let lanes = ctx.store.outbox_lanes().await?;
    if lanes.is_empty() {
        return Ok("outbox: nothing pending, nothing failed".into());
    }
    let now = ctx.now_ms();
    let mut out = String::from("lane                      status   count  oldest   last error\n");
    for l in &lanes {
        let age = humantime::format_duration(std::time::Duration::from_secs(((now - l.oldest).max(0) / 1000) as u64));
        out.push_str(&format!(
            "{:<25} {:<8} {:>5}  {:<8} {}\n",
            l.lane,
            l.status,
            l.count,
            age.to_string(),
            l.error.as_deref().unwrap_or("-")
        ));
    }
    let failed = ctx.store.outbox_failed_rows(20).await?;
    if !failed.is_empty() {
        out.push_str("\nfailed (newest first; `carebot outbox retry --id N` or `--failed` re-sends):\n");
        for (id, lane, op, err) in failed {
            out.push_str(&format!("  #{id} {op} → {lane}: {}\n", err.as_deref().unwrap_or("-")));
        }
    }
    Ok(out.trim_end().to_string())
}

/// How `carebot draft` shows a draft: the shared text, then how to post it from here.
pub fn draft_text(d: &crate::drafting::Draft, who: &str) -> String {
    format!(
        "{}\nWhen posted: carebot case respond {} --as {who} --text \"…\"",
        crate::present::draft_text(d),
        d.case_id
    )
}

/// `carebot triage eval FILE`: per-label precision and recall of the live playbook's triage
/// on a labelled file, with the confusions. `folds` > 1 measures the model honestly on the
/// corpus it learns from: each fold is judged by a model trained on the other folds.
pub fn triage_eval(playbooks_dir: &Path, file: &Path, folds: usize, misses: bool) -> anyhow::Result<String> {
    use crate::playbook::corpus::{self, Evaluation};
    let playbooks = Playbooks::load(playbooks_dir)?;
    // A label the playbook does not know (a typo like "westside" or "waiting") would be
    // scored as a label nobody can ever catch: refuse it with its line.
    let sites: Vec<&str> = playbooks.team.sites.iter().map(|s| s.id.as_str()).collect();
    let categories: Vec<&str> = playbooks
        .triage_rules
        .rules
        .iter()
        .filter(|r| r.kind == crate::playbook::triage_rules::RuleKind::Category)
        .map(|r| r.id.as_str())
        .collect();
    let labelled = corpus::load_checked(file, |l| {
        if let Some(site) = l.expect.site.as_deref().filter(|s| !sites.contains(s)) {
            return Some(format!("unknown site {site:?}; one of {}, or null", sites.join(", ")));
        }
        l.expect
            .categories
            .iter()
            .find(|c| !categories.contains(&c.as_str()))
            .map(|c| format!("unknown category {c:?}; one of {}", categories.join(", ")))
    })?;
    if labelled.is_empty() {
        anyhow::bail!("{} has no labelled mentions", file.display());
    }
    let mut out = String::new();
    let ev = if folds > 1 {
        let total = corpus::cross_validate(&playbooks, &labelled, folds)?;
        out.push_str(&format!("{folds}-fold cross-validation (the model never judges a mention it learnt from)\n"));
        total
    } else {
        let triage = Triage::compile(&playbooks.triage_rules, &playbooks.team)?;
        let own = playbooks.triage_rules.model.as_ref().map(|m| playbooks_dir.join(&m.corpus_file));
        if let (Some(own), Ok(given)) = (own.and_then(|p| p.canonicalize().ok()), file.canonicalize()) {
            if own == given {
                out.push_str(
                    "note: the model learnt from this file, so these figures flatter it; add --folds 5 for honest ones\n",
                );
            }
        }
        Evaluation::run(&triage, &labelled)
    };
    out.push_str(&ev.render(misses));
    Ok(out)
}

/// `carebot lint "TEXT"`: the public-reply check on a text alone (as if for `site` on
/// `platform`, optionally a thank-you to praise). Returns the report and whether it blocks.
pub fn lint(
    playbooks: &Playbooks,
    text: &str,
    site: Option<&str>,
    platform: Option<&str>,
    praise: bool,
) -> anyhow::Result<(String, bool)> {
    if let Some(p) = platform.filter(|p| !crate::domain::compliance::PLATFORMS.contains(p)) {
        anyhow::bail!("there is no platform {p:?}; one of {}", crate::domain::compliance::PLATFORMS.join(", "));
    }
    if let Some(s) = site.filter(|s| playbooks.team.site(s).is_none()) {
        let known: Vec<&str> = playbooks.team.sites.iter().map(|s| s.id.as_str()).collect();
        anyhow::bail!("there is no site {s:?}; one of {}", known.join(", "));
    }
    let cx = crate::drafting::context_for(playbooks, site, None, platform, praise);
    let findings = crate::domain::compliance::check(text, &cx);
    Ok((lint_report(&findings), crate::domain::compliance::blocks(&findings)))
}

/// Findings one per line, then the verdict.
pub fn lint_report(findings: &[crate::domain::compliance::Finding]) -> String {
    let mut out: Vec<String> = findings.iter().map(|f| f.to_string()).collect();
    out.push(if crate::domain::compliance::blocks(findings) {
        "blocked: fix the BLOCK findings (or, on the case, a lead overrides: `case respond N --override`)".into()
    } else if findings.is_empty() {
        "ok: nothing found".into()
    } else {
        "ok: no blocking findings (read the warnings)".into()
    });
    out.join("\n")
}
