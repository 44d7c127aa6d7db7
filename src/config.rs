//! Deployment settings: `config/carebot.toml`, overridden key by key from the environment
//! (`CAREBOT__SECTION__KEY`), secrets only from the environment. Validated once, with the
//! file and line of each problem.

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub const DEFAULT_PATH: &str = "config/carebot.toml";

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub http: HttpSettings,
    pub chat: ChatSettings,
    pub slack: SlackSettings,
    pub discord: DiscordSettings,
    pub playbooks: PlaybookSettings,
    pub outbox: OutboxSettings,
    pub sources: SourcesSettings,
    pub retention: RetentionSettings,
    pub digest: DigestSettings,
    pub publish: PublishSettings,
    /// Scheduled jobs by name (see `carebot jobs`): cron expression and time zone.
    pub jobs: BTreeMap<String, JobSettings>,
    /// Filled from the environment only, never from the file.
    #[serde(skip)]
    pub secrets: Secrets,
    /// Where the settings were read from (for error messages).
    #[serde(skip)]
    pub source_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// SQLite file used when `DATABASE_URL` is not set (the embedded default).
    pub sqlite_path: PathBuf,
    pub max_connections: u32,
    /// How long a request waits for a database connection before it is told the database
    /// is unavailable (webhooks 503, chat "try again in a minute").
    pub acquire_timeout: crate::domain::Span,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            sqlite_path: PathBuf::from("data/carebot.db"),
            max_connections: 10,
            acquire_timeout: crate::domain::Span::from_secs(1),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    pub listen: std::net::SocketAddr,
    pub body_limit_bytes: usize,
    /// A client must send a request's headers within this time.
    pub header_read_timeout: crate::domain::Span,
    /// … and its whole body within this time.
    pub body_read_timeout: crate::domain::Span,
    /// A connection with no bytes moving either way for this long is closed.
    pub idle_timeout: crate::domain::Span,
    /// Open connections at most; 0 = derived from the open-file limit (limit − 128).
    pub max_connections: usize,
    /// Requests per second each webhook source may send (bursts of 4× allowed); 429 above.
    pub webhook_requests_per_second: NonZeroU32,
    /// On SIGTERM, in-flight requests get this long to finish.
    pub shutdown_grace: crate::domain::Span,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit_bytes: 1024 * 1024,
            header_read_timeout: crate::domain::Span::from_secs(10),
            body_read_timeout: crate::domain::Span::from_secs(30),
            idle_timeout: crate::domain::Span::from_secs(60),
            max_connections: 0,
            webhook_requests_per_second: NonZeroU32::new(50).expect("non-zero"),
            shutdown_grace: crate::domain::Span::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SurfaceKind {
    /// Slack if its tokens are set, else Discord if its are, else the console.
    #[default]
    Auto,
    Console,
    Slack,
    Discord,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ChatSettings {
    pub surface: SurfaceKind,
}

/// How Slack reaches carebot: signed HTTP callbacks, or Socket Mode (no public URL).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SlackMode {
    #[default]
    Http,
    Socket,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackSettings {
    pub mode: SlackMode,
    /// Web API base URL; point it at a local server for tests or staging.
    pub api_url: HttpUrl,
    /// The slash command as configured in the Slack app (shown in help texts).
    pub command: String,
    /// Sustained messages per second per channel (Slack allows about one).
    pub messages_per_second: NonZeroU32,
    /// Messages a channel may receive at once before pacing starts.
    pub burst: NonZeroU32,
}

impl Default for SlackSettings {
    fn default() -> Self {
        SlackSettings {
            mode: SlackMode::Http,
            api_url: "https://slack.com/api".into(),
            command: "/care".into(),
            messages_per_second: NonZeroU32::MIN,
            burst: NonZeroU32::new(4).expect("non-zero"),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordSettings {
    /// REST base URL (`/api/v10` is appended); point it at a local server for tests.
    pub api_url: HttpUrl,
}

impl Default for DiscordSettings {
    fn default() -> Self {
        DiscordSettings { api_url: "https://discord.com".into() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlaybookSettings {
    pub dir: PathBuf,
}

impl Default for PlaybookSettings {
    fn default() -> Self {
        PlaybookSettings { dir: PathBuf::from("playbooks") }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxSettings {
    /// How often the delivery worker looks for due messages when not woken up.
    pub poll_interval_ms: u64,
    /// No longer used: rate limits and outages never fail a message (see `max_age`).
    /// Still accepted so existing config files load.
    pub max_attempts: Option<i64>,
    /// A message still failing (rate limits, 5xx, network) this long after it was queued is
    /// marked failed; permanent errors fail at once.
    pub max_age: crate::domain::Span,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    pub batch_size: i64,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings {
            poll_interval_ms: 500,
            max_attempts: None,
            max_age: crate::domain::Span::from_secs(24 * 3600),
            backoff_base_ms: 1000,
            backoff_max_ms: 300_000,
            batch_size: 50,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SourcesSettings {
    pub files: FilesSourceSettings,
    /// RSS/Atom feeds polled by the `poll_feeds` job (`[[sources.feeds]]`).
    pub feeds: Vec<FeedSettings>,
    pub facebook: FacebookSettings,
    pub x: XSettings,
    pub google_business: GoogleBusinessSettings,
    pub yelp: YelpSettings,
}

/// Facebook Page webhooks (`GET|POST /ingest/facebook`); secrets FACEBOOK_APP_SECRET and
/// FACEBOOK_VERIFY_TOKEN.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FacebookSettings {
    /// Page id → site id (team.yaml). Posts on an unmapped page get the site from their text.
    pub pages: BTreeMap<String, String>,
    /// Source recorded on its mentions.
    pub source: String,
}

impl Default for FacebookSettings {
    fn default() -> Self {
        FacebookSettings { pages: BTreeMap::new(), source: "facebook".into() }
    }
}

/// X API v2 recent search (`poll_x` job); secret X_BEARER_TOKEN.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct XSettings {
    /// The search query (handles and names); empty: X is not polled.
    pub query: String,
    pub api_url: HttpUrl,
    /// Minimum time between two searches.
    pub every: crate::domain::Span,
    /// Pages (100 posts each) fetched per poll; the rest is fetched at the next poll.
    pub max_pages: NonZeroU32,
}

impl Default for XSettings {
    fn default() -> Self {
        XSettings {
            query: String::new(),
            api_url: "https://api.x.com".into(),
            every: crate::domain::Span::from_secs(120),
            max_pages: NonZeroU32::new(10).expect("non-zero"),
        }
    }
}

/// Google Business Profile reviews (`poll_google_reviews` job); secrets GOOGLE_CLIENT_ID,
/// GOOGLE_CLIENT_SECRET, GOOGLE_REFRESH_TOKEN.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GoogleBusinessSettings {
    pub api_url: HttpUrl,
    pub token_url: HttpUrl,
    pub every: crate::domain::Span,
    pub locations: Vec<LocationSettings>,
}

impl Default for GoogleBusinessSettings {
    fn default() -> Self {
        GoogleBusinessSettings {
            api_url: "https://mybusiness.googleapis.com".into(),
            token_url: "https://oauth2.googleapis.com/token".into(),
            every: crate::domain::Span::from_secs(600),
            locations: Vec::new(),
        }
    }
}

/// One reviewed place (a Google location or a Yelp business) and its site.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationSettings {
    /// Google: `accounts/{account}/locations/{location}`; Yelp: the business id or alias.
    pub id: String,
    /// Site id from team.yaml.
    pub site: String,
    /// The public page of the listing, linked from cards (reviews have no own URL on Google).
    #[serde(default)]
    pub url: Option<String>,
}

/// Yelp Fusion business reviews (`poll_yelp` job); secret YELP_API_KEY.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct YelpSettings {
    pub api_url: HttpUrl,
    pub every: crate::domain::Span,
    pub businesses: Vec<LocationSettings>,
}

impl Default for YelpSettings {
    fn default() -> Self {
        YelpSettings {
            api_url: "https://api.yelp.com".into(),
            every: crate::domain::Span::from_secs(1800),
            businesses: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedSettings {
    /// Unique name; also the key of the feed's cursor and health.
    pub name: String,
    pub url: HttpUrl,
    /// Source recorded on its mentions, e.g. google_alerts, talkwalker, reddit, news.
    #[serde(default = "default_feed_source")]
    pub source: String,
    /// Minimum time between two polls of this feed.
    #[serde(default = "default_feed_every")]
    pub every: crate::domain::Span,
}

fn default_feed_source() -> String {
    "rss".into()
}

fn default_feed_every() -> crate::domain::Span {
    crate::domain::Span::from_secs(300)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesSourceSettings {
    pub enabled: bool,
    /// Drop folder: `.jsonl` and `.csv` files put here are ingested, then moved to `done/`.
    pub dir: PathBuf,
    /// Source name for rows that do not say theirs.
    pub default_source: String,
    /// Files ingested once when `carebot serve` starts (idempotent: duplicates are skipped).
    pub import_on_start: Vec<PathBuf>,
}

impl Default for FilesSourceSettings {
    fn default() -> Self {
        FilesSourceSettings {
            enabled: true,
            dir: PathBuf::from("data/inbox"),
            default_source: "files".into(),
            import_on_start: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// Mention text and author are purged from closed cases after this many days.
    pub mention_text_days: i64,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings { mention_text_days: 365 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DigestSettings {
    /// Channel (from situations.yaml) for the daily leadership digest.
    pub channel: String,
    /// Channel for the weekly PX themes report.
    pub weekly_channel: String,
}

impl Default for DigestSettings {
    fn default() -> Self {
        DigestSettings { channel: "leadership".into(), weekly_channel: "px-triage".into() }
    }
}

/// Posting approved replies to the platforms (`respond --publish`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PublishSettings {
    /// `off` (publishing refused), `dry-run` (recorded on the case, never sent) or `live`.
    pub mode: PublishMode,
    /// Site id → the platforms its replies may be published to (`google`, `facebook`, `x`).
    /// A site not listed publishes nowhere.
    pub sites: BTreeMap<String, Vec<String>>,
    /// The Facebook Graph API base, with its version.
    pub facebook_graph_url: HttpUrl,
}

impl Default for PublishSettings {
    fn default() -> Self {
        PublishSettings {
            mode: PublishMode::Off,
            sites: BTreeMap::new(),
            facebook_graph_url: "https://graph.facebook.com/v21.0".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum PublishMode {
    #[default]
    Off,
    DryRun,
    Live,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSettings {
    /// Six or seven fields, seconds first: "0 */5 * * * *" is every five minutes.
    pub cron: CronSchedule,
    /// `None`: the team's time zone.
    #[serde(default)]
    pub timezone: Option<TimeZone>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl JobSettings {
    /// A checked schedule (for settings built in code rather than loaded).
    pub fn new(cron: &str, timezone: Option<&str>) -> Result<JobSettings, String> {
        Ok(JobSettings {
            cron: CronSchedule::try_from(cron.to_string())?,
            timezone: timezone.map(|t| TimeZone::try_from(t.to_string())).transpose()?,
            enabled: true,
        })
    }

    /// The zone this job's cron is read in.
    pub fn zone(&self, team: chrono_tz::Tz) -> chrono_tz::Tz {
        self.timezone.as_ref().map_or(team, |t| t.0)
    }
}

/// A cron expression, parsed when the settings are read (six or seven fields, seconds first).
#[derive(Debug, Clone)]
pub struct CronSchedule {
    pub expr: String,
    pub schedule: cron::Schedule,
}

impl TryFrom<String> for CronSchedule {
    type Error = String;
    fn try_from(expr: String) -> Result<Self, String> {
        let schedule = parse_cron(&expr)?;
        Ok(CronSchedule { expr, schedule })
    }
}

impl<'de> Deserialize<'de> for CronSchedule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        CronSchedule::try_from(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// An IANA time zone name, parsed when the settings are read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeZone(pub chrono_tz::Tz);

impl TryFrom<String> for TimeZone {
    type Error = String;
    fn try_from(name: String) -> Result<Self, String> {
        name.parse::<chrono_tz::Tz>()
            .map(TimeZone)
            .map_err(|_| format!("unknown time zone {name:?}; use an IANA name such as America/Chicago"))
    }
}

impl<'de> Deserialize<'de> for TimeZone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        TimeZone::try_from(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// An http(s) URL with a host, checked when the settings are read. Kept as written, minus
/// any trailing slash, so paths can be appended with `format!("{url}/…")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl(String);

impl HttpUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for HttpUrl {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let web =
            url::Url::parse(&text).ok().filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
        match web {
            Some(_) => Ok(HttpUrl(text.trim_end_matches('/').to_string())),
            None => Err(format!("{text:?} must start with http:// or https:// and name a host")),
        }
    }
}

impl From<&str> for HttpUrl {
    /// For the shipped defaults and tests; a bad literal is a programming error.
    fn from(text: &str) -> Self {
        HttpUrl::try_from(text.to_string()).unwrap_or_else(|e| panic!("{e}"))
    }
}

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        HttpUrl::try_from(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

fn yes() -> bool {
    true
}

/// Secrets, read from the environment only.
#[derive(Clone, Default)]
pub struct Secrets {
    pub database_url: Option<String>,
    pub slack_bot_token: Option<String>,
    pub slack_signing_secret: Option<String>,
    pub slack_app_token: Option<String>,
    pub discord_bot_token: Option<String>,
    pub discord_public_key: Option<String>,
    pub discord_application_id: Option<String>,
    /// Per-source webhook secrets: `CAREBOT_WEBHOOK_SECRET_<SOURCE>` → source (lower-cased).
    pub webhook_secrets: std::collections::HashMap<String, String>,
    pub facebook_app_secret: Option<String>,
    pub facebook_verify_token: Option<String>,
    pub x_bearer_token: Option<String>,
    pub google_client_id: Option<String>,
    pub google_client_secret: Option<String>,
    pub google_refresh_token: Option<String>,
    pub yelp_api_key: Option<String>,
    /// Page access token for replying on the Facebook Pages in `sources.facebook.pages`.
    pub facebook_page_token: Option<String>,
    /// OAuth 2.0 user-context token (tweet.write) of the organisation's X account.
    pub x_user_token: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |o: &Option<String>| if o.is_some() { "<set>" } else { "<unset>" };
        f.debug_struct("Secrets")
            .field("database_url", &set(&self.database_url))
            .field("slack_bot_token", &set(&self.slack_bot_token))
            .field("discord_bot_token", &set(&self.discord_bot_token))
            .field("webhook_sources", &self.webhook_secrets.keys().collect::<Vec<_>>())
            .field("facebook_app_secret", &set(&self.facebook_app_secret))
            .field("x_bearer_token", &set(&self.x_bearer_token))
            .field("google_refresh_token", &set(&self.google_refresh_token))
            .field("yelp_api_key", &set(&self.yelp_api_key))
            .field("facebook_page_token", &set(&self.facebook_page_token))
            .field("x_user_token", &set(&self.x_user_token))
            .finish_non_exhaustive()
    }
}

impl Secrets {
    pub fn from_env() -> Secrets {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Secrets {
            database_url: get("DATABASE_URL"),
            slack_bot_token: get("SLACK_BOT_TOKEN"),
            slack_signing_secret: get("SLACK_SIGNING_SECRET"),
            slack_app_token: get("SLACK_APP_TOKEN"),
            discord_bot_token: get("DISCORD_BOT_TOKEN"),
            discord_public_key: get("DISCORD_PUBLIC_KEY"),
            discord_application_id: get("DISCORD_APPLICATION_ID"),
            webhook_secrets: std::env::vars()
                .filter_map(|(k, v)| {
                    let source = k.strip_prefix("CAREBOT_WEBHOOK_SECRET_")?.to_lowercase();
                    (!v.trim().is_empty()).then_some((source, v))
                })
                .collect(),
            facebook_app_secret: get("FACEBOOK_APP_SECRET"),
            facebook_verify_token: get("FACEBOOK_VERIFY_TOKEN"),
            x_bearer_token: get("X_BEARER_TOKEN"),
            google_client_id: get("GOOGLE_CLIENT_ID"),
            google_client_secret: get("GOOGLE_CLIENT_SECRET"),
            google_refresh_token: get("GOOGLE_REFRESH_TOKEN"),
            yelp_api_key: get("YELP_API_KEY"),
            facebook_page_token: get("FACEBOOK_PAGE_TOKEN"),
            x_user_token: get("X_USER_TOKEN"),
        }
    }
}

/// A configuration problem, located where possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub file: Option<PathBuf>,
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.file, self.line) {
            (Some(p), Some(l)) => write!(f, "{}:{}: {}", p.display(), l, self.message),
            (Some(p), None) => write!(f, "{}: {}", p.display(), self.message),
            _ => write!(f, "{}", self.message),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError(pub Vec<ConfigProblem>);

/// Finds the line of `a.b.c` in a TOML file: the `key =` line inside table `[a.b]` (or a
/// dotted key). Good enough to point a person at the right place; `None` if not found.
pub fn locate_key(text: &str, path: &[String]) -> Option<usize> {
    let whole = path.join(".");
    let header = text
        .lines()
        .position(|l| l.trim().strip_prefix('[').and_then(|h| h.strip_suffix(']')).is_some_and(|h| h.trim() == whole));
    if let Some(i) = header {
        return Some(i + 1);
    }
    let (key, table) = path.split_last()?;
    let want_table = table.join(".");
    let mut current = String::new();
    let mut table_line = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(h) = t.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            current = h.trim().trim_matches('"').to_string();
            if current == want_table {
                table_line = Some(i + 1);
            }
            continue;
        }
        let k = t.split('=').next().unwrap_or("").trim().trim_matches('"');
        if t.contains('=') && current == want_table && k == key {
            return Some(i + 1);
        }
    }
    table_line
}

/// The playbooks folder a config file names, read leniently (for `check` when the rest of
/// the file is broken): `playbooks.dir` if it can be read, else the default.
pub fn playbooks_dir_of(path: &Path) -> PathBuf {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    Figment::new()
        .merge(Toml::string(&text))
        .merge(Env::prefixed("CAREBOT__").split("__"))
        .extract_inner::<PathBuf>("playbooks.dir")
        .unwrap_or_else(|_| PlaybookSettings::default().dir)
}

/// Takes `path` out of a settings tree; true if it was there.
fn remove_key(d: &mut figment::value::Dict, path: &[String]) -> bool {
    match path {
        [] => false,
        [last] => d.remove(last).is_some(),
        [first, rest @ ..] => match d.get_mut(first) {
            Some(figment::value::Value::Dict(_, inner)) => remove_key(inner, rest),
            _ => false,
        },
    }
}

impl Settings {
    /// Reads the file (which must exist) and the environment. `known_jobs` are the job
    /// names `[jobs.NAME]` may use (the job registry's, passed in so settings stay below it).
    pub fn load(path: &Path, known_jobs: &[&str]) -> Result<Settings, ConfigError> {
        let problem = |line, message: String| ConfigProblem { file: Some(path.to_path_buf()), line, message };
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(vec![problem(None, format!("cannot read config file: {e}"))]))?;
        let describe = |e: &figment::Error| {
            let from_env = e.metadata.as_ref().is_some_and(|m| m.name.contains("environment"));
            let line = if from_env { None } else { locate_key(&text, &e.path) };
            let key = e.path.join(".");
            let mut msg = e.kind.to_string();
            if !key.is_empty() {
                msg = format!("{key}: {msg}");
            }
            if from_env {
                msg.push_str(" (from the environment)");
            }
            problem(line, msg)
        };
        // Deserialising stops at the first bad key; to report every problem in one run, a
        // bad key is reported, taken out of the file's values, and the rest read again.
        let mut file: Option<figment::value::Dict> = Figment::from(Toml::string(&text)).extract().ok();
        let mut reported: Vec<ConfigProblem> = Vec::new();
        let mut taken_out: Vec<Vec<String>> = Vec::new();
        let mut settings: Settings = loop {
            let base = match &file {
                Some(d) => Figment::from(figment::providers::Serialized::defaults(d.clone())),
                None => Figment::new().merge(Toml::string(&text)),
            };
            match base.merge(Env::prefixed("CAREBOT__").split("__")).extract::<Settings>() {
                Ok(s) => break s,
                Err(errs) => {
                    let mut removed = false;
                    for e in errs {
                        // A required key taken out after its own problem was reported is
                        // not missing a second time.
                        if let figment::error::Kind::MissingField(f) = &e.kind {
                            let mut path = e.path.clone();
                            path.push(f.to_string());
                            if taken_out.contains(&path) {
                                // Its table goes too, so the rest of the file can be read.
                                removed |= file.as_mut().is_some_and(|d| remove_key(d, &e.path));
                                continue;
                            }
                        }
                        reported.push(describe(&e));
                        let from_env = e.metadata.as_ref().is_some_and(|m| m.name.contains("environment"));
                        if let (Some(d), false) = (file.as_mut(), from_env) {
                            if remove_key(d, &e.path) {
                                removed = true;
                                taken_out.push(e.path.clone());
                            }
                        }
                    }
                    if !removed || reported.len() > 50 {
                        return Err(ConfigError(reported));
                    }
                }
            }
        };
        settings.secrets = Secrets::from_env();
        settings.source_file = Some(path.to_path_buf());
        let mut problems = reported;
        problems.extend(settings.validate(&text, known_jobs));
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigError(problems))
        }
    }

    /// Checks across keys that a field's own type cannot make: job names against the
    /// registry, feed names unique, the connection floor, the slash command's spelling.
    /// Cron expressions, time zones, URLs, addresses and counts are parsed by their types.
    fn validate(&self, text: &str, known_jobs: &[&str]) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        let file = self.source_file.clone();
        for (site, platforms) in &self.publish.sites {
            for p in platforms.iter().filter(|p| !["google", "facebook", "x"].contains(&p.as_str())) {
                out.push(ConfigProblem {
                    file: file.clone(),
                    line: locate_key(text, &["publish".into(), "sites".into(), site.clone()]),
                    message: format!("publish.sites.{site}: unknown platform {p:?}; one of google, facebook, x"),
                });
            }
        }
        for name in self.jobs.keys() {
            let at = |k: &str| locate_key(text, &["jobs".into(), name.clone(), k.into()]);
            if !known_jobs.contains(&name.as_str()) {
                out.push(ConfigProblem {
                    file: file.clone(),
                    line: locate_key(text, &["jobs".into(), name.clone()]).or(at("cron")),
                    message: format!("unknown job {name:?}; known jobs: {}", known_jobs.join(", ")),
                });
            }
        }
        let mut names = std::collections::HashSet::new();
        for f in &self.sources.feeds {
            let at = text.lines().position(|l| l.contains(&format!("\"{}\"", f.name))).map(|i| i + 1);
            if !names.insert(f.name.as_str()) {
                out.push(ConfigProblem {
                    file: file.clone(),
                    line: at,
                    message: format!("duplicate feed name {:?}", f.name),
                });
            }
        }
        let slack_at = |k: &str| locate_key(text, &["slack".into(), k.into()]);
        if !self.slack.command.starts_with('/') || self.slack.command.len() < 2 {
            out.push(ConfigProblem {
                file: file.clone(),
                line: slack_at("command"),
                message: format!("slack.command: {:?} must be a slash command such as \"/care\"", self.slack.command),
            });
        }
        if self.database.max_connections < 2 {
            out.push(ConfigProblem {
                file: file.clone(),
                line: locate_key(text, &["database".into(), "max_connections".into()]),
                message:
                    "database.max_connections must be at least 2 (a case action and the delivery worker each need one)"
                        .into(),
            });
        }
        out
    }

    /// Source mappings (Facebook page, Google location, Yelp business → site) naming a
    /// site that team.yaml does not have: (where, site).
    pub fn unknown_mapped_sites(&self, team: &crate::playbook::team::Team) -> Vec<(String, String)> {
        let src = &self.sources;
        let pages = src.facebook.pages.iter().map(|(page, site)| (format!("sources.facebook.pages.{page}"), site));
        let places = src.google_business.locations.iter().map(|l| ("sources.google_business.locations", l));
        let places = places.chain(src.yelp.businesses.iter().map(|l| ("sources.yelp.businesses", l)));
        let publish = self.publish.sites.keys().map(|site| (format!("publish.sites.{site}"), site));
        pages
            .chain(publish)
            .chain(places.map(|(k, l)| (format!("{k} {}", l.id), &l.site)))
            .filter(|(_, site)| team.site(site).is_none())
            .map(|(key, site)| (key, site.clone()))
            .collect()
    }

    /// The database URL: `DATABASE_URL` if set, else the embedded SQLite file.
    pub fn database_url(&self) -> String {
        match &self.secrets.database_url {
            Some(u) => u.clone(),
            None => format!("sqlite://{}?mode=rwc", self.database.sqlite_path.display()),
        }
    }
}

/// Parses a cron expression, explaining the common mistake of a 5-field crontab line.
pub fn parse_cron(expr: &str) -> Result<cron::Schedule, String> {
    let fields = expr.split_whitespace().count();
    if fields == 5 {
        return Err(format!(
            "{expr:?} has 5 fields; carebot cron expressions have 6 or 7, seconds first (write \"0 {expr}\")"
        ));
    }
    cron::Schedule::from_str(expr).map_err(|e| format!("bad cron expression {expr:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crontab_line_is_refused_with_the_six_field_spelling() {
        let e = parse_cron("*/5 * * * *").unwrap_err();
        assert!(e.contains("write \"0 */5 * * * *\""), "{e}");
        assert!(parse_cron("0 */5 * * * *").is_ok());
        assert!(parse_cron("0 61 * * * *").is_err());
    }

    #[test]
    fn bad_values_are_refused_once_each_with_key_and_line_by_their_types() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("carebot.toml");
        let text =
            "[http]\nlisten = \"localhost\"\n\n[sources.x]\nquery = \"q\"\napi_url = \"api.x.com\"\nmax_pages = 0\n\n\
                    [jobs.retention]\ncron = \"*/5 * * * *\"\ntimezone = \"Chicago\"\n";
        std::fs::write(&path, text).unwrap();
        let ConfigError(problems) = Settings::load(&path, &["retention"]).unwrap_err();
        let seen: Vec<(Option<usize>, String)> = problems.into_iter().map(|p| (p.line, p.message)).collect();
        let at = |line: usize, key: &str, says: &str| {
            assert!(
                seen.iter().any(|(l, m)| *l == Some(line) && m.starts_with(key) && m.contains(says)),
                "{key} at line {line} saying {says:?}: {seen:#?}"
            )
        };
        at(2, "http.listen:", "socket address");
        at(6, "sources.x.api_url:", "must start with http:// or https://");
        at(7, "sources.x.max_pages:", "nonzero");
        at(10, "jobs.retention.cron:", "write \"0 */5 * * * *\"");
        at(11, "jobs.retention.timezone:", "America/Chicago");
        assert_eq!(seen.len(), 5, "each problem once: {seen:#?}");
    }

    #[test]
    fn a_url_keeps_its_path_without_the_trailing_slash() {
        let u = HttpUrl::try_from("http://127.0.0.1:9/api/".to_string()).unwrap();
        assert_eq!(format!("{u}/chat.postMessage"), "http://127.0.0.1:9/api/chat.postMessage");
        assert!(HttpUrl::try_from("ftp://example.org".to_string()).is_err());
        assert!(HttpUrl::try_from("http://".to_string()).is_err());
    }

    #[test]
    fn keys_are_located_in_their_table() {
        let text = "[http]\nlisten = \"x\"\n\n[jobs.retention]\ncron = \"bad\"\n";
        assert_eq!(locate_key(text, &["jobs".into(), "retention".into(), "cron".into()]), Some(5));
        assert_eq!(locate_key(text, &["http".into(), "listen".into()]), Some(2));
        assert_eq!(locate_key(text, &["jobs".into(), "retention".into()]), Some(4));
    }
}
