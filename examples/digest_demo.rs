//! Draws the README's example digest and chart from a month of made-up activity:
//!
//!     cargo run --example digest_demo -- docs
//!
//! A temporary SQLite database and a fixed clock: thirty days of mentions (texts from
//! `playbooks/triage-corpus.jsonl`, 5–13 a day) arrive through intake and are worked by the
//! example team at varying speeds through the same workflow as chat; some stay open. Then
//! the digest for Monday 23 November 2026 is written to DIR/digest-example.txt and
//! DIR/digest-example.png.

use carebot::clock::{Clock, FixedClock};
use carebot::domain::{Action, Outcome, RawMention};
use carebot::{Ctx, Settings};
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use std::sync::Arc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let out = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "docs".into()));
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir()?;
    let mut settings = Settings::default();
    settings.playbooks.dir = repo.join("playbooks");
    settings.secrets.database_url = Some(format!("sqlite://{}?mode=rwc", tmp.path().join("demo.db").display()));
    settings.sources.files.dir = tmp.path().join("inbox");
    let chat = Arc::new(carebot::chat::console::Console::to_writer(Box::new(std::io::sink())));
    let start = Utc.with_ymd_and_hms(2026, 10, 25, 14, 0, 0).single().expect("valid time");
    let clock = Arc::new(FixedClock::new(start));
    let ctx = Ctx::new(settings, chat, clock.clone() as Arc<dyn Clock>).await?;

    let corpus: Vec<serde_json::Value> = std::fs::read_to_string(repo.join("playbooks/triage-corpus.jsonl"))?
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let agents = ["sam", "priya", "marcus", "grace", "tomas", "dena"];
    let email = |site: Option<&str>| match site {
        Some("riverside") => "patientrelations.riverside@lakeshore-health.example",
        Some("northgate") => "feedback.northgate@lakeshore-health.example",
        Some("eastbrook") => "care.eastbrook@lakeshore-health.example",
        _ => "patientexperience@lakeshore-health.example",
    };
    let mut next = 0usize;
    for day in 0..30i64 {
        let morning = start + Duration::days(day);
        let count = 5 + (day * 7 % 9) as usize;
        for i in 0..count {
            let item = &corpus[(next * 37) % corpus.len()];
            next += 1;
            let at = morning + Duration::minutes(47 * i as i64);
            clock.set(at);
            let raw = RawMention {
                source: item["source"].as_str().map(String::from),
                external_id: Some(format!("demo-{day}-{i}")),
                text: item["text"].as_str().map(String::from),
                rating: item["rating"].as_f64(),
                ..Default::default()
            };
            let Ok(mention) = raw.parse(Some("google"), at) else { continue };
            let ingested = carebot::intake::ingest(&ctx, &[mention]).await?;
            let Some(id) = ingested.first().map(|x| x.case_id()) else { continue };
            let Some(case) = ctx.store.case(id).await? else { continue };
            // Most cases are worked; the last days' backlog and some risk cases stay open.
            let seed = (day * 31 + i as i64 * 17) % 100;
            if seed < 12 || (day >= 27 && seed < 45) {
                continue;
            }
            // Risk management takes the clinical/legal-risk cases and refers them on.
            let who = if case.risk { "ruth" } else { agents[(seed as usize) % agents.len()] };
            clock.set(at + Duration::minutes(5 + seed % 40));
            if carebot::workflow::act(&ctx, id, who, Action::Claim).await.is_err() {
                continue;
            }
            if !case.risk && !case.positive {
                clock.set(at + Duration::minutes(20 + seed * 2));
                let text = format!(
                    "We're sorry to hear about your experience. Please email {} so we can look into it.",
                    email(case.site.as_deref())
                );
                let _ =
                    carebot::workflow::act(&ctx, id, who, Action::Respond { text: Some(text), override_block: false })
                        .await;
            }
            if seed > 20 {
                clock.set(at + Duration::hours(6 + seed % 20));
                let outcome = match (case.risk, case.positive) {
                    (true, _) => Outcome::Referred,
                    (_, true) => Outcome::Resolved,
                    _ => Outcome::NoReply,
                };
                let _ = carebot::workflow::act(&ctx, id, who, Action::Resolve { outcome, note: None }).await;
            }
        }
    }
    let date = NaiveDate::from_ymd_opt(2026, 11, 23).expect("valid date");
    clock.set(Utc.with_ymd_and_hms(2026, 11, 24, 13, 0, 0).single().expect("valid time"));
    let digest = carebot::digest::gather(&ctx, date).await?;
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("digest-example.txt"), digest.to_text())?;
    std::fs::write(out.join("digest-example.png"), digest.chart_png()?)?;
    println!("wrote {0}/digest-example.txt and {0}/digest-example.png", out.display());
    Ok(())
}
