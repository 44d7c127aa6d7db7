//! `carebot serve` as a whole: started on port 0 with a fresh database, it imports the
//! bundled samples, prints a card for each on the console surface, answers health checks
//! and metrics, and ingests files dropped into its inbox.

mod common;

use carebot::chat::console::Console;
use carebot::clock::SystemClock;
use carebot::store::Backend;
use carebot::{App, Ctx};
use common::*;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Default)]
struct Screen(Arc<Mutex<Vec<u8>>>);

impl Write for Screen {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Screen {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn serve_on(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let mut settings = settings(&db, &inbox);
    settings.sources.files.import_on_start = vec![repo().join("playbooks/sample-mentions.jsonl")];
    settings.jobs.insert("poll_files".into(), carebot::config::JobSettings::new("* * * * * *", None).unwrap());
    let screen = Screen::default();
    let console = Arc::new(Console::to_writer(Box::new(screen.clone())));
    let ctx = Ctx::new(settings, console, Arc::new(SystemClock)).await.unwrap();
    let app = App::from_ctx(ctx).await.unwrap();
    let base = format!("http://{}", app.addr());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stop_rx.await;
    }));

    wait_for("ten cards and two extra copies for #risk", || screen.text().matches("· new case").count() >= 12).await;
    let text = screen.text();
    // One card per sample; the clinical-risk one goes to #risk and #px-triage, and so does
    // the news item on readmission figures (possible risk: confirm or dismiss).
    for n in 1..=10 {
        assert!(text.contains(&format!("Case #{n} ·")), "card {n} missing:\n{text}");
    }
    assert_eq!(text.matches("#risk · new case").count(), 2);
    assert_eq!(text.matches("Possible risk (confirm or dismiss)").count(), 2, "{text}");
    assert!(text.contains("Source: forwarded post (confidential)"));
    assert!(!text.contains("forwarded_by") && !text.contains("by sam"), "confidential card names its forwarder");

    let http = reqwest::Client::new();
    let get = |p: &str| http.get(format!("{base}{p}")).send();
    let health = get("/healthz").await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(metrics.contains("carebot_cases{state=\"open\"} 10"), "{metrics}");
    assert!(metrics.contains("carebot_mentions_stored{source=\"google\"} 2"), "{metrics}");
    assert!(metrics.contains("carebot_outbox_pending 0"), "{metrics}");
    assert_eq!(get("/nope").await.unwrap().status(), 404);

    // A file dropped in the inbox is picked up by the scheduled poll and moved to done/.
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(
        inbox.join("vitals.jsonl"),
        "{\"source\":\"vitals\",\"external_id\":\"v-1\",\"text\":\"Front desk at Eastbrook was rude\",\"rating\":1}\n{broken\n",
    )
    .unwrap();
    wait_for("the dropped file", || inbox.join("done/vitals.jsonl").exists()).await;
    wait_for("its card", || screen.text().contains("Case #11 ·")).await;
    let errors = std::fs::read_to_string(inbox.join("done/vitals.jsonl.errors.txt")).unwrap();
    assert!(errors.starts_with("line 2: malformed JSON"), "{errors}");

    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server).await.expect("stops").unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_sqlite_prints_a_card_per_sample_mention_and_answers_health_checks() {
    serve_on(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_postgres_prints_a_card_per_sample_mention_and_answers_health_checks() {
    serve_on(Backend::Postgres).await;
}
