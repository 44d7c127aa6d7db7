//! Storms: a viral complaint arriving as hundreds of near-identical mentions (retweets,
//! quotes, copy-paste) becomes one case with "+N similar", not N cards.

mod common;

use carebot::intake::{ingest, Ingested};
use carebot::jobs::outbox::deliver_due;
use carebot::store::Backend;
use chrono::Duration;
use common::*;

const COMPLAINT: &str =
    "Waited 6 hours in the Riverside ER with my daughter and nobody even checked on her. Disgraceful.";

async fn a_500_mention_storm_becomes_one_case_with_a_count(b: Backend) {
    let e = env(b).await;
    let storm: Vec<_> = (0..500)
        .map(|i| {
            let text = match i % 4 {
                0 => COMPLAINT.to_string(),
                1 => format!("RT @parent{i}: {COMPLAINT}"),
                2 => format!("{COMPLAINT} https://t.co/{i:05} #riverside"),
                _ => format!("This!! {}", COMPLAINT.to_uppercase()),
            };
            mention(if i % 2 == 0 { "x" } else { "facebook" }, &format!("storm-{i}"), &text, None)
        })
        .collect();
    let unrelated = mention(
        "google",
        "other-1",
        "Northgate billed me twice for one visit and the billing office never answers",
        Some(1.0),
    );
    let mut results = Vec::new();
    for chunk in storm.chunks(100) {
        results.extend(ingest(&e.ctx, chunk).await.unwrap());
    }
    results.extend(ingest(&e.ctx, &[unrelated]).await.unwrap());

    let opened: Vec<i64> =
        results.iter().filter_map(|r| if let Ingested::Opened(c) = r { Some(*c) } else { None }).collect();
    assert_eq!(opened.len(), 2, "one storm case and one unrelated case");
    let storm_case = opened[0];
    assert_eq!(results.iter().filter(|r| matches!(r, Ingested::Similar(c) if *c == storm_case)).count(), 499);
    let case = e.ctx.store.case(storm_case).await.unwrap().unwrap();
    assert_eq!(case.similar_count, 499);

    // One card posted, one delayed refresh queued for the whole burst.
    let ops = e.ctx.store.outbox_for_case(storm_case).await.unwrap();
    let names: Vec<&str> = ops.iter().map(|(op, ..)| op.as_str()).collect();
    assert_eq!(names, ["post_card", "update_card"], "{ops:?}");
    assert_eq!(deliver_due(&e.ctx, t0()).await.unwrap(), 2, "the two post_cards; the refresh waits");
    assert_eq!(deliver_due(&e.ctx, t0() + Duration::seconds(5)).await.unwrap(), 1);
    let posts = e.chat.calls().into_iter().filter(|c| matches!(c, Call::Post { .. })).count();
    assert_eq!(posts, 2);
    let shown = carebot::ops::case_show(&e.ctx, storm_case, false).await.unwrap();
    assert!(shown.contains("+499 similar mention(s)"), "{shown}");

    // A replay of the storm is plain duplicates; a resolved storm no longer absorbs mentions.
    let again = ingest(&e.ctx, &storm[..10]).await.unwrap();
    assert!(again.iter().all(|r| matches!(r, Ingested::Duplicate(_))));
    carebot::workflow::act(
        &e.ctx,
        storm_case,
        "dena",
        carebot::domain::Action::Resolve { outcome: carebot::domain::Outcome::Referred, note: None },
    )
    .await
    .unwrap();
    let late = ingest(&e.ctx, &[mention("x", "storm-late", COMPLAINT, None)]).await.unwrap();
    assert!(matches!(late[0], Ingested::Opened(c) if c != storm_case), "{late:?}");
}

/// With `storm_lines: true` a storm's refresh also posts a line under the card with the
/// count as of then; by default (the shipped playbooks) it does not.
async fn storm_lines_are_posted_only_where_the_situation_asks(b: Backend) {
    let db = TestDb::new(b).await;
    let dir = tempfile::tempdir().unwrap();
    let books = dir.path().join("playbooks");
    std::fs::create_dir_all(books.join("replies")).unwrap();
    for f in ["team.yaml", "triage.yaml", "triage-corpus.jsonl", "situations.yaml"] {
        let mut text = std::fs::read_to_string(repo().join("playbooks").join(f)).unwrap();
        if f == "situations.yaml" {
            text = text.replace("    remind_before: 30m\n", "    remind_before: 30m\n    storm_lines: true\n");
        }
        std::fs::write(books.join(f), text).unwrap();
    }
    for r in std::fs::read_dir(repo().join("playbooks/replies")).unwrap() {
        let p = r.unwrap().path();
        std::fs::copy(&p, books.join("replies").join(p.file_name().unwrap())).unwrap();
    }
    let mut s = settings(&db, &dir.path().join("inbox"));
    s.playbooks.dir = books;
    let chat = std::sync::Arc::new(Recorder::default());
    let clock = std::sync::Arc::new(carebot::clock::FixedClock::new(t0()));
    let ctx = carebot::Ctx::new(s, chat.clone(), clock as std::sync::Arc<dyn carebot::clock::Clock>).await.unwrap();
    let burst: Vec<_> =
        (0..3).map(|i| mention("x", &format!("sl-{i}"), &format!("RT @p{i}: {COMPLAINT}"), None)).collect();
    let case_id = ingest(&ctx, &burst).await.unwrap()[0].case_id();
    deliver_due(&ctx, t0() + Duration::seconds(10)).await.unwrap();
    let lines: Vec<String> = chat
        .calls()
        .into_iter()
        .filter_map(|c| if let Call::Thread { text, .. } = c { Some(text) } else { None })
        .collect();
    // The burst arrives in one batch: one line, with the count the batch left.
    assert_eq!(lines, ["+2 similar mention(s) as of 09:00"], "one line per refresh, not per mention");
    assert_eq!(ctx.store.case(case_id).await.unwrap().unwrap().similar_count, 2);

    // The shipped playbooks: no line.
    let e = env(b).await;
    ingest(&e.ctx, &(0..3).map(|i| mention("x", &format!("sl-{i}"), COMPLAINT, None)).collect::<Vec<_>>())
        .await
        .unwrap();
    deliver_due(&e.ctx, t0() + Duration::seconds(10)).await.unwrap();
    assert!(!e.chat.calls().iter().any(|c| matches!(c, Call::Thread { .. })));
}

on_both_backends!(
    storm_lines_are_posted_only_where_the_situation_asks,
    a_500_mention_storm_becomes_one_case_with_a_count
);
