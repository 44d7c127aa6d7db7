//! The digest and weekly report for a fixed fixture day, on both backends: exact figures,
//! a chart that decodes to the expected size, and delivery of text + chart by the job.

mod common;

use carebot::digest::{gather, gather_weekly, CHART_SIZE};
use carebot::domain::{Action, Outcome};
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
    let reply = |site_email: &str| Action::Respond {
        text: Some(format!("We're sorry to hear this. Please email {site_email} so we can help.")),
        override_block: false,
    };
    let riverside = "patientrelations.riverside@lakeshore-health.example";
    // Monday 16th, 09:00 Chicago: the same weekday a week before, for the change figures.
    let last_monday = t0() - Duration::days(7);
    e.clock.set(last_monday);
    let lw: Vec<i64> = ingest(
        &e.ctx,
        &[
            mention("google", "lw-1", "Waited 3 hours at Riverside", Some(2.0)),
            mention("google", "lw-2", "Thank you Riverside, wonderful care", Some(5.0)),
        ],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.case_id())
    .collect();
    e.clock.set(last_monday + Duration::minutes(60));
    act(&e.ctx, lw[0], "marcus", reply(riverside)).await.unwrap();
    act(&e.ctx, lw[1], "marcus", Action::Claim).await.unwrap();
    for id in &lw {
        act(&e.ctx, *id, "marcus", Action::Resolve { outcome: Outcome::Resolved, note: None }).await.unwrap();
    }
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
    e.clock.set(t0() + Duration::minutes(30));
    act(&e.ctx, ids[0], "marcus", reply(riverside)).await.unwrap();
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
    let f = &d.figures;
    assert_eq!(f.mentions, 4);
    assert_eq!(d.by_source, map(&[("facebook", 1), ("google", 2), ("yelp", 1)]));
    assert_eq!(d.by_site, map(&[("eastbrook", 1), ("northgate", 2), ("riverside", 1)]));
    assert_eq!(d.by_sentiment, map(&[("negative", 3), ("positive", 1)]));
    assert_eq!(f.negative_share, Some(0.75));
    // Ratings as they stand: the revised 4★, 2★ and 5★ (f-3 has none).
    assert_eq!((f.rated, f.average_rating), (3, Some(11.0 / 3.0)));
    assert_eq!(f.responded, 2);
    assert_eq!((f.median_response_minutes, f.p90_response_minutes), (Some(30.0), Some(180.0)));
    // Three response clocks count: f-1 met (30 min of 2 h), f-2 missed (3 h), and the risk
    // case f-3, unanswered 10 h after its 1-hour clock ran out. The praise has none.
    assert_eq!((f.with_clock, f.within_sla_share), (3, Some(1.0 / 3.0)));
    let lw = &d.last_week;
    assert_eq!((lw.mentions, lw.negative_share, lw.median_response_minutes), (2, Some(0.5), Some(60.0)));
    assert_eq!((lw.with_clock, lw.within_sla_share), (1, Some(1.0)));
    let site = |id: Option<&str>| d.sites.iter().find(|s| s.site.as_deref() == id).unwrap().figures.clone();
    assert_eq!(
        d.sites.iter().map(|s| s.site.as_deref()).collect::<Vec<_>>(),
        [Some("riverside"), Some("northgate"), Some("eastbrook")],
        "every site, in team-file order"
    );
    let northgate = site(Some("northgate"));
    assert_eq!((northgate.mentions, northgate.negative_share, northgate.average_rating), (2, Some(0.5), Some(3.5)));
    assert_eq!((northgate.median_response_minutes, northgate.within_sla_share), (Some(180.0), Some(0.0)));
    let eastbrook = site(Some("eastbrook"));
    assert_eq!((eastbrook.average_rating, eastbrook.responded, eastbrook.within_sla_share), (None, 0, Some(0.0)));
    assert_eq!(site(Some("riverside")).within_sla_share, Some(1.0));
    assert_eq!(d.risk.iter().map(|c| c.case_id).collect::<Vec<_>>(), [ids[2]]);
    assert_eq!(d.recoveries.len(), 1);
    assert_eq!((d.recoveries[0].case_id, d.recoveries[0].from, d.recoveries[0].to), (ids[0], 1.0, 4.0));
    assert_eq!(d.shout_outs.iter().map(|s| s.case_id).collect::<Vec<_>>(), [ids[3]]);
    assert_eq!(d.shout_outs[0].praised, ["Northgate nursing team"], "named from team.yaml recognition");
    assert_eq!(d.open_cases, 6);
    assert_eq!(d.trend.len(), 7);
    assert_eq!(&d.trend[5..], &[(day(22), 2), (day(23), 4)]);
    assert_eq!(d.open_risk.iter().map(|c| c.case_id).collect::<Vec<_>>(), [old_risk, ids[2]], "oldest first");
    assert!(d.trend[..5].iter().all(|(_, n)| *n == 0));

    let text = d.to_text();
    for line in [
        "Daily digest for Mon 23 Nov 2026 (America/Chicago)",
        "Mentions: 4 (last Mon 16 Nov: 2, +2)",
        "  negative: 75% (last Mon 16 Nov: 50%, +25 pts); average rating 3.7★",
        "  by category: ",
        "First public response: 2 responded; median 30 min (last Mon 16 Nov: 60 min), p90 3.0 h; within SLA 33% of 3 (last Mon 16 Nov: 100%, −67 pts)",
        "  Northgate Family Clinic: 2 mentions, 50% negative, 3.5★; first response median 3.0 h, p90 3.0 h; within SLA 0% of 1",
        "  Eastbrook Urgent Care: 1 mention, 100% negative, no ratings; first response median -, p90 -; within SLA 0% of 1",
        "Clinical/legal risk: 1 opened this day; 2 still open",
        // Opened Sunday 12:00 Chicago, read Monday 19:00: 31 hours, by names, not ids.
        &format!("  #{old_risk} P1 Riverside Medical Center — open 1 d 7 h — unclaimed"),
        &format!("  #{} P1 Eastbrook Urgent Care — open 10 h — unclaimed", ids[2]),
        "Shout-outs to share:",
        &format!("  #{} Northgate Family Clinic 5★ — praises Northgate nursing team: \"Thank you Northgate nurses, so kind!\"", ids[3]),
    ] {
        assert!(text.lines().any(|l| l.starts_with(line)), "missing {line:?} in\n{text}");
    }
    assert!(text.contains("Billing 1") && !text.contains("billing 1"), "categories by label: {text}");
    let csv = d.to_csv().unwrap();
    assert!(csv.contains(&format!("open_risk,{old_risk},unclaimed")), "{csv}");
    assert!(
        csv.contains("day,within_sla_share,0.333") && csv.contains("same_day_last_week,within_sla_share,1.000"),
        "{csv}"
    );
    assert!(csv.contains("site_average_rating,Northgate Family Clinic,3.5"), "{csv}");

    // The chart's figures: 30 days to the 23rd, the 16th stacked by sentiment, open cases
    // by age at 19:00 (four opened today, two yesterday at noon).
    let c = &d.chart;
    assert_eq!((c.from, c.to, c.days.len()), (Some(day(23) - Duration::days(29)), Some(day(23)), 30));
    let d16 = c.days.iter().find(|x| x.date == day(16)).unwrap();
    assert_eq!((d16.negative, d16.neutral, d16.positive), (1, 0, 1));
    assert_eq!(c.open_by_age.iter().map(|b| b.cases).collect::<Vec<_>>(), [0, 4, 2, 0, 0]);
    let riverside_ratings = &c.rating_by_site.iter().find(|r| r.site == "Riverside Medical Center").unwrap().daily;
    assert_eq!((riverside_ratings[22], riverside_ratings[29]), (Some(3.5), Some(4.0)), "16th: (2+5)/2; 23rd: 4");

    let png = d.chart_png().unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let reader = decoder.read_info().unwrap();
    assert_eq!((reader.info().width, reader.info().height), CHART_SIZE);

    // A past day's digest is that day's: Sunday's, read on Monday evening, counts the cases
    // open at Sunday's end (Monday's cases did not exist yet) and their ages then.
    let sunday = gather(&e.ctx, day(22)).await.unwrap();
    assert_eq!((sunday.figures.mentions, sunday.open_cases), (2, 2));
    assert_eq!(sunday.overdue.len(), 2, "both had passed their acknowledge clocks by midnight");
    let text = sunday.to_text();
    assert!(text.contains(&format!("  #{old_risk} P1 Riverside Medical Center — open 12 h — unclaimed")), "{text}");
    assert!(text.contains("Clinical/legal risk: 1 opened this day; 1 still open"), "{text}");
}

/// The weekly report's themes come from complaints only, with phrases several people wrote
/// and a short excerpt each; praise names only staff on the recognition list.
async fn weekly_themes_are_phrases_people_wrote_and_praise_is_recognition(b: Backend) {
    let e = env(b).await;
    e.clock.set(t0());
    ingest(
        &e.ctx,
        &[
            mention("google", "w-1", "We waited four hours in the Riverside ER. Nobody told us anything.", Some(1.0)),
            mention("yelp", "w-2", "Riverside ER: waited four hours to be seen, awful", Some(2.0)),
            mention("google", "w-3", "Waited 5 hours at Riverside with a broken arm", Some(1.0)),
            mention("google", "w-4", "Thank you to the front desk at Northgate, so welcoming!", Some(5.0)),
            mention("google", "w-5", "Nurse Alicia at Northgate was wonderful with my son, thank you", Some(5.0)),
            mention("google", "w-6", "Dr. Smith at Northgate was lovely, thank you", Some(5.0)),
            mention("yelp", "w-7", "Receptionist Karen at Riverside was rude and we waited four hours", Some(1.0)),
        ],
    )
    .await
    .unwrap();
    e.clock.set(t0() + Duration::hours(10));
    let w = gather_weekly(&e.ctx, day(23)).await.unwrap();
    assert_eq!((w.mentions, w.complaints, w.praise), (7, 4, 3));
    let waits = w.themes.iter().find(|t| t.category == "wait_times").expect("a wait-times theme");
    assert_eq!((waits.site.as_deref(), waits.count), (Some("riverside"), 4));
    assert_eq!(waits.phrases.first(), Some(&("waited four hours".to_string(), 3)), "{:?}", waits.phrases);
    assert!(!waits.phrases.iter().any(|(p, _)| p == "four hours"), "a part of a longer phrase is not repeated");
    // The newest two; a staff member not on the recognition list is not named.
    assert_eq!(
        waits.excerpts,
        [
            "Receptionist [name] at Riverside was rude and we waited four hours",
            "Waited 5 hours at Riverside with a broken arm"
        ]
    );
    assert!(
        w.themes.iter().all(|t| t.site.as_deref() == Some("riverside")),
        "praise is never a complaint theme: {:?}",
        w.themes
    );
    let named: Vec<(&str, i64)> = w.recognition.iter().map(|r| (r.name.as_str(), r.count)).collect();
    assert_eq!(named, [("Alicia Moreno, RN", 1), ("Front desk team", 1)]);
    assert_eq!(w.praise_unnamed, 1, "Dr. Smith is not on the recognition list and is not named");
    let text = w.to_text();
    assert!(text.contains("  Wait times ×4 — people wrote \"waited four hours\" ×3"), "{text}");
    assert!(!text.contains("Karen"), "{text}");
    assert!(text.contains("Staff recognition:\n  Alicia Moreno, RN ×1: \"Nurse Alicia"), "{text}");
    assert!(!text.contains("Smith"), "{text}");
    let csv = w.to_csv().unwrap();
    assert!(
        csv.contains("2026-11-23,complaint_theme,Riverside Medical Center,Wait times,4,waited four hours (3)"),
        "{csv}"
    );
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
    assert!(calls.iter().any(|c| matches!(c, Call::Channel { channel, text } if channel == "leadership" && text.starts_with("Daily digest for Mon 23 Nov 2026") && text.contains("Mentions: 1"))), "{calls:?}");
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

/// The chart upload fails once: it is retried on its own, and the digest text is posted
/// once, not again with the retry.
async fn a_failed_chart_upload_is_retried_without_posting_the_digest_twice(b: Backend) {
    let e = env(b).await;
    ingest(&e.ctx, &[mention("google", "j-1", "Rude front desk at Eastbrook", Some(1.0))]).await.unwrap();
    deliver_due(&e.ctx, t0()).await.unwrap();
    let at = Utc.with_ymd_and_hms(2026, 11, 24, 13, 0, 0).unwrap();
    carebot::registry::run_once(&e.ctx, "daily_digest", at).await.unwrap();
    e.chat.fail_next_file();
    deliver_due(&e.ctx, at).await.unwrap();
    deliver_due(&e.ctx, at + Duration::minutes(5)).await.unwrap();
    let calls = e.chat.calls();
    let texts = calls.iter().filter(|c| matches!(c, Call::Channel { channel, .. } if channel == "leadership")).count();
    let files = calls.iter().filter(|c| matches!(c, Call::File { channel, .. } if channel == "leadership")).count();
    assert_eq!((texts, files), (1, 1), "{calls:?}");
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

/// A hospital that fell behind: the digest counts every overdue case but lists only the
/// most urgent ones (priority, then age), so it stays readable and its cost stays bounded.
async fn a_long_overdue_backlog_is_counted_in_full_and_listed_by_urgency(b: Backend) {
    let e = env(b).await;
    let batch: Vec<_> = (0..130)
        .map(|i| mention("google", &format!("o-{i}"), &format!("Waited {i} hours at Riverside"), Some(1.0)))
        .collect();
    ingest(&e.ctx, &batch).await.unwrap();
    e.clock.set(t0() + Duration::minutes(10));
    let risk = ingest(
        &e.ctx,
        &[mention("google", "o-risk", "They gave my mother the wrong medication at Riverside", Some(1.0))],
    )
    .await
    .unwrap()[0]
        .case_id();
    e.clock.set(t0() + Duration::hours(5));
    let today = (t0() + Duration::hours(5)).with_timezone(&chrono_tz::America::Chicago).date_naive();
    let d = gather(&e.ctx, today).await.unwrap();
    assert_eq!((d.open_cases, d.overdue_count), (131, 131));
    assert_eq!(d.overdue.len(), 100, "the JSON and CSV list the 100 most urgent");
    assert_eq!(d.overdue[0].case_id, risk, "the P1 risk case leads the list");
    assert!(d.overdue[1..].windows(2).all(|w| w[0].opened_at <= w[1].opened_at), "then the oldest first");
    let text = d.to_text();
    assert!(text.contains("Open cases: 131; overdue: 131"), "{text}");
    assert!(text.contains("the 10 most urgent"), "{text}");
    let csv = d.to_csv().unwrap();
    assert!(csv.contains("overdue,total,131"), "{csv}");
}

on_both_backends!(
    a_long_overdue_backlog_is_counted_in_full_and_listed_by_urgency,
    a_failed_chart_upload_is_retried_without_posting_the_digest_twice,
    weekly_themes_are_phrases_people_wrote_and_praise_is_recognition,
    snoozes_show_in_the_digest_and_do_not_hide_overdue_cases,
    the_digest_for_a_fixture_day_has_exactly_the_expected_figures,
    the_daily_digest_job_posts_text_and_chart_to_leadership,
);
