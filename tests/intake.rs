//! Intake batches, on both backends: a batch is stored set-based (one statement per table)
//! yet keeps the per-mention guarantees — a key repeated inside one batch is a revision
//! or a duplicate of its first sighting, never a second case; two writers sending the same
//! mentions at once store each once; and every opened case has its event and its card.

mod common;

use carebot::intake::{ingest, Ingested};
use carebot::store::cases::Table;
use carebot::store::Backend;
use common::*;

async fn a_key_repeated_inside_one_batch_is_a_revision_of_its_first_sighting(b: Backend) {
    let e = env(b).await;
    let out = ingest(
        &e.ctx,
        &[
            mention("google", "r-1", "Waited 3 hours at Riverside", Some(2.0)),
            mention("yelp", "r-2", "Billing sent me two bills", Some(1.0)),
            mention("google", "r-1", "Waited 3 hours at Riverside", Some(2.0)),
            mention("google", "r-1", "Waited 3 hours at Riverside but the nurse was kind", Some(4.0)),
        ],
    )
    .await
    .unwrap();
    let (a, bb) = (out[0].case_id(), out[1].case_id());
    assert_eq!(out, vec![Ingested::Opened(a), Ingested::Opened(bb), Ingested::Duplicate(a), Ingested::Revised(a)]);
    assert_ne!(a, bb);
    assert_eq!(e.ctx.store.count(Table::Mentions).await.unwrap(), 2);
    assert_eq!(e.ctx.store.count(Table::Cases).await.unwrap(), 2);
    let actions: Vec<String> = e.ctx.store.events(a).await.unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(actions, ["opened", "revised"]);
    let shown = carebot::ops::case_show(&e.ctx, a, false).await.unwrap();
    assert!(shown.contains("but the nurse was kind"), "the case shows the revised text: {shown}");
    // Each case's card is queued once.
    for id in [a, bb] {
        let queued = e.ctx.store.outbox_for_case(id).await.unwrap();
        assert_eq!(queued.iter().filter(|(op, ..)| op == "post_card").count(), 1, "{queued:?}");
    }

    // The same batch again: every key is known and unchanged now.
    let again = ingest(&e.ctx, &[mention("yelp", "r-2", "Billing sent me two bills", Some(1.0))]).await.unwrap();
    assert_eq!(again, vec![Ingested::Duplicate(bb)]);
}

async fn two_writers_sending_the_same_mentions_at_once_store_each_once(b: Backend) {
    let e = std::sync::Arc::new(env(b).await);
    let batch: Vec<_> =
        (0..300).map(|i| mention("x", &format!("w-{i}"), &format!("Waited {i} hours at Riverside"), None)).collect();
    let (one, two) = {
        let (e1, e2) = (e.clone(), e.clone());
        let (b1, b2) = (batch.clone(), batch.clone());
        let t1 = tokio::spawn(async move { ingest(&e1.ctx, &b1).await.unwrap() });
        let t2 = tokio::spawn(async move { ingest(&e2.ctx, &b2).await.unwrap() });
        (t1.await.unwrap(), t2.await.unwrap())
    };
    for (x, y) in one.iter().zip(&two) {
        // One writer opened the case, the other saw it as known; both name the same case.
        assert_eq!(x.case_id(), y.case_id());
        let opened = [x, y].iter().filter(|r| matches!(r, Ingested::Opened(_))).count();
        assert_eq!(opened, 1, "{x:?} {y:?}");
    }
    assert_eq!(e.ctx.store.count(Table::Mentions).await.unwrap(), 300);
    assert_eq!(e.ctx.store.count(Table::Cases).await.unwrap(), 300);
    for r in &one {
        let queued = e.ctx.store.outbox_for_case(r.case_id()).await.unwrap();
        assert_eq!(queued.iter().filter(|(op, ..)| op == "post_card").count(), 1, "{queued:?}");
        let opened =
            e.ctx.store.events(r.case_id()).await.unwrap().into_iter().filter(|e| e.action == "opened").count();
        assert_eq!(opened, 1);
    }
}

on_both_backends!(
    a_key_repeated_inside_one_batch_is_a_revision_of_its_first_sighting,
    two_writers_sending_the_same_mentions_at_once_store_each_once,
);
