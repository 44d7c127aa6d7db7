//! Shared by the benchmarks: distinct mention texts and a throwaway Postgres database.
#![allow(dead_code)]

use carebot::domain::{Mention, RawMention};
use sqlx::Connection;

/// Seeded random words, so near-duplicate (storm) folding leaves every mention its own case.
pub fn distinct_text(i: usize) -> String {
    const WORDS: &[&str] = &[
        "waited",
        "hours",
        "Riverside",
        "ER",
        "rude",
        "nurse",
        "billing",
        "parking",
        "doctor",
        "dismissive",
        "lost",
        "results",
        "phone",
        "hold",
        "appointment",
        "cancelled",
        "room",
        "dirty",
        "pain",
        "ignored",
        "front",
        "desk",
        "insurance",
        "charged",
        "twice",
        "discharge",
        "confusing",
        "lab",
        "wrong",
        "name",
        "pharmacy",
        "delay",
    ];
    let mut x = (i as u64).wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..20)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            WORDS[(x >> 33) as usize % WORDS.len()]
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `n` distinct Google reviews with ids `PREFIX-0` …
pub fn mentions(prefix: &str, n: usize, rating: f64) -> Vec<Mention> {
    (0..n)
        .map(|i| {
            RawMention {
                source: Some("google".into()),
                external_id: Some(format!("{prefix}-{i}")),
                text: Some(distinct_text(i)),
                rating: Some(rating),
                ..Default::default()
            }
            .parse(None, chrono::Utc::now())
            .expect("mention")
        })
        .collect()
}

/// A database created for one benchmark run on the server at CAREBOT_TEST_PG_URL.
pub struct BenchDb {
    pub url: String,
    name: String,
    admin: sqlx::PgConnection,
}

impl BenchDb {
    pub async fn create(label: &str) -> BenchDb {
        let admin_url =
            std::env::var("CAREBOT_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!("carebot_bench_{label}_{}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("Postgres for the benchmark");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create db");
        let base = admin_url.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin_url.clone());
        BenchDb { url: format!("{base}/{name}"), name, admin }
    }

    pub async fn drop(mut self) {
        sqlx::query(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .execute(&mut self.admin)
            .await
            .expect("drop db");
    }
}
