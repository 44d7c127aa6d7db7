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

on_both_backends!(a_500_mention_storm_becomes_one_case_with_a_count);
