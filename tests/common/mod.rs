//! Test helpers: a fresh database per test (Postgres or SQLite), settings pointing at the
//! shipped playbooks, a chat surface that records what it was asked to deliver, and a macro
//! that runs one scenario on both backends.
#![allow(dead_code)]

use async_trait::async_trait;
use carebot::chat::{Card, ChatSurface, DeliveryError};
use carebot::clock::{Clock, FixedClock};
use carebot::domain::{Mention, RawMention};
use carebot::playbook::{Channel, Person};
use carebot::store::{Backend, MessageRef};
use carebot::{Ctx, Settings};
use chrono::{TimeZone, Utc};
use sqlx::Connection;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Where the Postgres tests create their databases (trust auth on this machine).
pub fn pg_admin_url() -> String {
    std::env::var("CAREBOT_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A database that exists for one test and is dropped after it.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    pg_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("carebot.db").display());
                TestDb { url, backend, pg_name: None, _dir: Some(dir) }
            }
            Backend::Postgres => {
                let name = format!(
                    "carebot_t_{}_{}_{}",
                    std::process::id(),
                    SEQ.fetch_add(1, Ordering::SeqCst),
                    Utc::now().timestamp_micros() % 1_000_000_000
                );
                let admin = pg_admin_url();
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
                    panic!("Postgres tests need a server at {admin} (set CAREBOT_TEST_PG_URL; scripts/setup-postgres starts one): {e}")
                });
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create test database");
                let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin.clone());
                TestDb { url: format!("{base}/{name}"), backend, pg_name: Some(name), _dir: None }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            // Dropped from a plain thread: Drop cannot await, and the test's runtime may be gone.
            let admin = pg_admin_url();
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                rt.block_on(async {
                    let mut conn = sqlx::PgConnection::connect(&admin).await.ok()?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await.ok()
                })
            })
            .join();
        }
    }
}

/// Settings for a test: shipped playbooks, port 0, a private drop folder, no scheduled jobs.
pub fn settings(db: &TestDb, inbox: &Path) -> Settings {
    let mut s = Settings::default();
    s.playbooks.dir = repo().join("playbooks");
    s.http.listen = ([127, 0, 0, 1], 0).into();
    s.secrets.database_url = Some(db.url.clone());
    s.sources.files.dir = inbox.to_path_buf();
    s.outbox.poll_interval_ms = 20;
    s.outbox.backoff_base_ms = 10;
    s.outbox.backoff_max_ms = 50;
    s
}

pub fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 15, 0, 0).unwrap()
}

pub struct Env {
    pub ctx: Ctx,
    pub chat: Arc<Recorder>,
    pub clock: Arc<FixedClock>,
    pub db: TestDb,
    pub dir: tempfile::TempDir,
}

pub async fn env(backend: Backend) -> Env {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let chat = Arc::new(Recorder::default());
    let clock = Arc::new(FixedClock::new(t0()));
    let ctx = Ctx::new(settings(&db, &dir.path().join("inbox")), chat.clone(), clock.clone() as Arc<dyn Clock>)
        .await
        .expect("context");
    Env { ctx, chat, clock, db, dir }
}

pub fn mention(source: &str, id: &str, text: &str, rating: Option<f64>) -> Mention {
    RawMention {
        source: Some(source.into()),
        external_id: Some(id.into()),
        text: Some(text.into()),
        rating,
        author: Some("A. Reviewer".into()),
        ..Default::default()
    }
    .parse(None, t0())
    .unwrap()
}

/// One recorded delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Post { channel: String, case_id: i64, state: String, owner: Option<String>, buttons: Vec<String> },
    Update { channel: String, case_id: i64, state: String, owner: Option<String> },
    Thread { channel: String, text: String },
    Dm { person: String, text: String },
    Channel { channel: String, text: String },
    File { channel: String, name: String, bytes: Vec<u8> },
}

/// A chat surface that records calls and can be told to fail the next N deliveries.
#[derive(Default)]
pub struct Recorder {
    pub calls: Mutex<Vec<Call>>,
    failures: Mutex<Vec<DeliveryError>>,
    file_failures: Mutex<usize>,
    pub attempts: AtomicUsize,
}

impl Recorder {
    pub fn fail_next(&self, errors: Vec<DeliveryError>) {
        *self.failures.lock().unwrap() = errors;
    }
    /// Fails the next file upload only (transiently), whatever comes before it.
    pub fn fail_next_file(&self) {
        *self.file_failures.lock().unwrap() += 1;
    }
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
    fn gate(&self) -> Result<(), DeliveryError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let mut f = self.failures.lock().unwrap();
        if f.is_empty() {
            Ok(())
        } else {
            Err(f.remove(0))
        }
    }
    fn push(&self, c: Call) {
        self.calls.lock().unwrap().push(c);
    }
}

#[async_trait]
impl ChatSurface for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    async fn post_card(&self, channel: &Channel, card: &Card) -> Result<String, DeliveryError> {
        self.gate()?;
        self.push(Call::Post {
            channel: channel.name.clone(),
            case_id: card.case_id,
            state: card.state.to_string(),
            owner: card.owner.clone(),
            buttons: card.buttons.iter().map(|b| b.label().to_string()).collect(),
        });
        Ok(format!("{}-{}", channel.name, card.case_id))
    }
    async fn update_card(&self, m: &MessageRef, card: &Card) -> Result<(), DeliveryError> {
        self.gate()?;
        self.push(Call::Update {
            channel: m.channel.clone(),
            case_id: card.case_id,
            state: card.state.to_string(),
            owner: card.owner.clone(),
        });
        Ok(())
    }
    async fn thread_reply(&self, m: &MessageRef, text: &str, here: bool) -> Result<(), DeliveryError> {
        self.gate()?;
        let text = if here { format!("@here {text}") } else { text.to_string() };
        self.push(Call::Thread { channel: m.channel.clone(), text });
        Ok(())
    }
    async fn direct_message(&self, p: &Person, text: &str) -> Result<(), DeliveryError> {
        self.gate()?;
        self.push(Call::Dm { person: p.id.clone(), text: text.into() });
        Ok(())
    }
    async fn channel_message(&self, c: &Channel, text: &str) -> Result<(), DeliveryError> {
        self.gate()?;
        self.push(Call::Channel { channel: c.name.clone(), text: text.into() });
        Ok(())
    }
    async fn channel_file(&self, c: &Channel, name: &str, bytes: &[u8], _comment: &str) -> Result<(), DeliveryError> {
        self.gate()?;
        {
            let mut n = self.file_failures.lock().unwrap();
            if *n > 0 {
                *n -= 1;
                return Err(DeliveryError::Transient("upload timed out".into()));
            }
        }
        self.push(Call::File { channel: c.name.clone(), name: name.into(), bytes: bytes.to_vec() });
        Ok(())
    }
}

/// Runs each listed scenario `async fn name(backend: Backend)` once per backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(carebot::store::Backend::Sqlite).await }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(carebot::store::Backend::Postgres).await }
            )*
        }
    };
}
