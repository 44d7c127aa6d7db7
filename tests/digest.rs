//! The digest and weekly report for a fixed fixture day, on both backends: exact figures,
//! a chart that decodes to the expected size, and delivery of text + chart by the job.

mod common;

use carebot::digest::{gather, gather_weekly, CHART_SIZE};
use carebot::domain::Action;
use carebot::intake::ingest;
use carebot::jobs::outbox::deliver_due;
use carebot::store::Backend;
use carebot::workflow::act;
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use common::*;

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
}

async fn the_digest_for_a_fixture_day_has_exactly_the_expected_figures(b: Backend) {
    let e = env(b).await;
    // Sunday 22nd, 12:00 Chicago: one mention for the trend.
    e.clock.set(Utc.with_ymd_and_hms(2026, 11, 22, 18, 0, 0).unwrap());
    ingest(&e.ctx, &[mention("x", "f-0", "Parking at Riverside is a nightmare", None)]).await.unwrap();
    // A risk case from the day before, left unclaimed: still listed the next morning.
    let old_risk = ingest(
        &e.ctx,
        &[mention("facebook", "f-old", "Wrong medication given at Riverside, my lawyer will call", None)],
    )
    .await
    .unwrap()[0]
        .case_id();
    // Monday 23rd from 09:00 Chicago (t0).
    e.clock.set(t0());
    let ids: Vec<i64> = ingest(
        &e.ctx,
        &[
            mention("google", "f-1", "Waited 4 hours at Riverside", Some(1.0)),
            mention("yelp", "f-2", "Billed twice at Northgate, nobody called back", Some(2.0)),
            mention("facebook", "f-3", "Wrong medication at Eastbrook, calling a lawyer", None),
            mention("google", "f-4", "Thank you Northgate nurses, so kind!", Some(5.0)),
        ],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.case_id())
    .collect();
    let reply = |site_email: &str| Action::Respond {
        text: Some(format!("We're sorry to hear this. Please email {site_email} so we can help.")),
        override_block: false,
    };
    e.clock.set(t0() + Duration::minutes(30));
    act(&e.ctx, ids[0], "marcus", reply("patientrelations.riverside@lakeshore-health.example")).await.unwrap();
    e.clock.set(t0() + Duration::minutes(180));
    act(&e.ctx, ids[1], "grace", reply("feedback.northgate@lakeshore-health.example")).await.unwrap();
    // The Riverside reviewer raises 1 → 4 stars that afternoon.
    e.clock.set(t0() + Duration::hours(5));
    ingest(&e.ctx, &[mention("google", "f-1", "Waited 4 hours at Riverside, but they called me back", Some(4.0))])
        .await
        .unwrap();

    e.clock.set(t0() + Duration::hours(10));
    let d = gather(&e.ctx, day(23)).await.unwrap();
    let map = |pairs: &[(&str, i64)]| pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    assert_eq!(d.mentions, 4);
    assert_eq!(d.by_source, map(&[("facebook", 1), ("google", 2), ("yelp", 1)]));
    assert_eq!(d.by_site, map(&[("eastbrook", 1), ("northgate", 2), ("riverside", 1)]));
    assert_eq!(d.by_sentiment, map(&[("negative", 3), ("positive", 1)]));
    assert_eq!(d.responded, 2);
    assert_eq!((d.median_response_minutes, d.p90_response_minutes), (Some(30.0), Some(180.0)));
    assert_eq!(d.within_sla_share, Some(0.5), "the 3-hour reply missed the 2-hour clock");
    assert_eq!(d.risk.iter().map(|c| c.case_id).collect::<Vec<_>>(), [ids[2]]);
    assert_eq!(d.recoveries.len(), 1);
    assert_eq!((d.recoveries[0].case_id, d.recoveries[0].from, d.recoveries[0].to), (ids[0], 1.0, 4.0));
    assert_eq!(d.shout_outs.iter().map(|s| s.case_id).collect::<Vec<_>>(), [ids[3]]);
    assert_eq!(d.open_cases, 6);
    assert_eq!(d.trend.len(), 7);
    assert_eq!(&d.trend[5..], &[(day(22), 2), (day(23), 4)]);
    assert_eq!(d.open_risk.iter().map(|c| c.case_id).collect::<Vec<_>>(), [old_risk, ids[2]], "oldest first");
    assert!(d.trend[..5].iter().all(|(_, n)| *n == 0));
    let text = d.to_text();
    assert!(text.contains("median 30 min, p90 3.0 h; within SLA 50%"), "{text}");
    // Opened Sunday 12:00 Chicago, read Monday 19:00: 31 hours, by names, not ids.
    assert!(text.contains("Clinical/legal risk: 1 opened this day; 2 still open"), "{text}");
    assert!(text.contains(&format!("#{old_risk} P1 Riverside Medical Center — open 1 d 7 h — unclaimed")), "{text}");
    assert!(text.contains(&format!("#{} P1 Eastbrook", ids[2])) && text.contains("— open 10 h — unclaimed"), "{text}");
    assert!(text.contains("Shout-outs to share:"), "{text}");
    assert!(d.to_csv().unwrap().contains(&format!("open_risk,{old_risk},unclaimed")));
    assert!(d.to_csv().unwrap().contains("response,within_sla_share,0.500"));

    let png = d.chart_png().unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let reader = decoder.read_info().unwrap();
    assert_eq!((reader.info().width, reader.info().height), CHART_SIZE);

    let weekly = gather_weekly(&e.ctx, day(23)).await.unwrap();
    assert_eq!(weekly.mentions, 6);
    let csv = weekly.to_csv().unwrap();
    assert!(csv.contains("2026-11-23,northgate,billing,1,billed (1)"), "{csv}");
    assert!(!csv.contains("praise"), "praise is not a complaint theme: {csv}");
}

async fn the_daily_digest_job_posts_text_and_chart_to_leadership(b: Backend) {
    let e = env(b).await;
    ingest(&e.ctx, &[mention("google", "j-1", "Rude front desk at Eastbrook", Some(1.0))]).await.unwrap();
    deliver_due(&e.ctx, t0()).await.unwrap();
    // Tuesday 07:00 Chicago: yesterday's (Monday's) digest.
    let at = Utc.with_ymd_and_hms(2026, 11, 24, 13, 0, 0).unwrap();
    let summary = carebot::registry::run_once(&e.ctx, "daily_digest", at).await.unwrap();
    assert_eq!(summary, "digest for 2026-11-23 queued");
    deliver_due(&e.ctx, at).await.unwrap();
    let calls = e.chat.calls();
    assert!(calls.iter().any(|c| matches!(c, Call::Channel { channel, text } if channel == "leadership" && text.starts_with("Daily digest for 2026-11-23") && text.contains("Mentions: 1"))), "{calls:?}");
    let posted = calls.iter().find_map(|c| match c {
        Call::Channel { channel, text } if channel == "leadership" => Some(text.clone()),
        _ => None,
    });
    assert!(!posted.unwrap_or_default().contains("Shout-outs"), "no heading over an empty list");
    let file = calls.iter().find_map(|c| {
        if let Call::File { channel, name, bytes } = c {
            Some((channel, name, bytes))
        } else {
            None
        }
    });
    let (channel, name, bytes) = file.expect("the chart was posted");
    assert_eq!((channel.as_str(), name.as_str()), ("leadership", "digest-2026-11-23.png"));
    assert!(bytes.starts_with(b"\x89PNG"));
}

/// A snooze is visible in the digest of the day it was set, and the case stays in the
/// overdue list: snoozing pauses nudges, never the clock.
async fn snoozes_show_in_the_digest_and_do_not_hide_overdue_cases(b: Backend) {
    let e = env(b).await;
    e.clock.set(t0());
    let id = ingest(&e.ctx, &[mention("google", "z-1", "Waited 3 hours at Riverside", Some(1.0))]).await.unwrap()[0]
        .case_id();
    e.clock.set(t0() + Duration::hours(1));
    act(&e.ctx, id, "sam", Action::Snooze { until: (t0() + Duration::hours(6)).timestamp_millis() }).await.unwrap();
    e.clock.set(t0() + Duration::hours(5));
    let d = gather(&e.ctx, day(23)).await.unwrap();
    assert_eq!(d.snoozes.len(), 1);
    assert!(d.overdue.iter().any(|c| c.case_id == id), "still overdue while snoozed");
    let text = d.to_text();
    assert!(text.contains("Snoozed (nudges paused; due times unchanged): 1"), "{text}");
    assert!(text.contains(&format!("#{id} until Mon 15:00 by Sam Whitfield")), "{text}");
    assert!(gather(&e.ctx, day(22)).await.unwrap().snoozes.is_empty(), "only on the day it was set");
}

on_both_backends!(
    snoozes_show_in_the_digest_and_do_not_hide_overdue_cases,
    the_digest_for_a_fixture_day_has_exactly_the_expected_figures,
    the_daily_digest_job_posts_text_and_chart_to_leadership,
);
