//! Read queries for the digest and weekly report (index-backed ranges on `opened_at` and
//! `case_events.at`, and the partial index on unresolved cases).

use super::cases::{case_from_row, event_from_row, CASE_COLS};
use super::{CaseRow, EventRow, Store};
use sqlx::Row;

/// A case with the mention fields reports show.
#[derive(Debug, Clone)]
pub struct ReportCase {
    pub case: CaseRow,
    pub source: String,
    pub rating: Option<f64>,
    pub text: Option<String>,
    /// The post's page, where the source gives one.
    pub url: Option<String>,
    /// When it was posted on its platform (ms); the case opens when carebot receives it.
    pub posted_at: i64,
}

impl Store {
    /// Cases opened in [start, end) ms, with their mention's source and rating, and its
    /// text only when `with_text` (figures never need it; excerpts and exports do).
    pub async fn cases_opened_between(&self, start: i64, end: i64, with_text: bool) -> anyhow::Result<Vec<ReportCase>> {
        let cols: Vec<String> = CASE_COLS.split(", ").map(|c| format!("c.{}", c.trim())).collect();
        let text = if with_text { "m.text" } else { "CAST(NULL AS TEXT)" };
        let sql = format!(
            "SELECT {}, m.source AS m_source, m.rating AS m_rating, m.url AS m_url, m.posted_at AS m_posted, {text} AS m_text FROM cases c \
             JOIN mentions m ON m.id = c.mention_id WHERE c.opened_at >= $1 AND c.opened_at < $2 ORDER BY c.id",
            cols.join(", ")
        );
        let rows = sqlx::query(&sql).bind(start).bind(end).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(ReportCase {
                    case: case_from_row(r)?,
                    source: r.try_get("m_source")?,
                    rating: r.try_get("m_rating")?,
                    text: r.try_get("m_text")?,
                    url: r.try_get("m_url")?,
                    posted_at: r.try_get("m_posted")?,
                })
            })
            .collect()
    }

    /// Records in each case's history that `actor` exported its mention text: one
    /// transaction, so the export and its trail are written together or not at all.
    pub async fn record_text_export(
        &self,
        case_ids: &[i64],
        actor: &str,
        at: i64,
        detail: &serde_json::Value,
    ) -> anyhow::Result<()> {
        let mut tx = self.begin().await?;
        for id in case_ids {
            super::cases::append_event(&mut tx, *id, at, actor, "text_exported", detail).await?;
        }
        tx.commit().await?;
        Ok(())
    }
    /// Unresolved cases past a due time, per situation and clock (the same rule as the
    /// digest's overdue list: acknowledge while open, first response until answered, resolve
    /// until resolved), for the alertable gauges on /metrics.
    pub async fn overdue_counts(&self, now: i64) -> anyhow::Result<Vec<(String, [i64; 3])>> {
        let rows = sqlx::query(
            "SELECT situation, \
               CAST(SUM(CASE WHEN state = 'open' AND ack_due < $1 THEN 1 ELSE 0 END) AS BIGINT) AS ack, \
               CAST(SUM(CASE WHEN state IN ('open', 'claimed') AND response_due < $1 THEN 1 ELSE 0 END) AS BIGINT) AS response, \
               CAST(SUM(CASE WHEN resolve_due < $1 THEN 1 ELSE 0 END) AS BIGINT) AS resolve \
             FROM cases WHERE state <> 'resolved' GROUP BY situation ORDER BY situation",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("situation")?, [r.try_get("ack")?, r.try_get("response")?, r.try_get("resolve")?])))
            .collect()
    }

    /// When the oldest unclaimed P1 case was opened (ms), if there is one.
    pub async fn oldest_unclaimed_p1(&self) -> anyhow::Result<Option<i64>> {
        let r = sqlx::query("SELECT MIN(opened_at) AS t FROM cases WHERE state = 'open' AND priority = 'p1'")
            .fetch_one(self.pool())
            .await?;
        Ok(r.try_get("t")?)
    }

    /// Response clocks that came due in [start, end) ms: how many, and how many were met.
    pub async fn response_clocks_due(&self, start: i64, end: i64) -> anyhow::Result<(i64, i64)> {
        let r = sqlx::query(
            "SELECT COUNT(*) AS due, \
               CAST(COALESCE(SUM(CASE WHEN first_response_at IS NOT NULL AND first_response_at <= response_due THEN 1 ELSE 0 END), 0) AS BIGINT) AS met \
             FROM cases WHERE response_due >= $1 AND response_due < $2",
        )
        .bind(start)
        .bind(end)
        .fetch_one(self.pool())
        .await?;
        Ok((r.try_get("due")?, r.try_get("met")?))
    }

    pub async fn count_opened_between(&self, start: i64, end: i64) -> anyhow::Result<i64> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM cases WHERE opened_at >= $1 AND opened_at < $2")
            .bind(start)
            .bind(end)
            .fetch_one(self.pool())
            .await?;
        Ok(r.try_get("n")?)
    }

    /// Events of one kind recorded in [start, end) ms.
    pub async fn events_between(&self, action: &str, start: i64, end: i64) -> anyhow::Result<Vec<EventRow>> {
        let rows = sqlx::query(
            "SELECT id, case_id, at, actor, action, detail FROM case_events WHERE action = $1 AND at >= $2 AND at < $3 ORDER BY id",
        )
        .bind(action)
        .bind(start)
        .bind(end)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(event_from_row).collect()
    }
}

/// What a report shows of a case in a list: no text, no triage detail.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseBrief {
    pub id: i64,
    pub priority: String,
    pub situation: String,
    pub site: Option<String>,
    pub state: String,
    pub owner: Option<String>,
    pub opened_at: i64,
    pub risk: bool,
}

/// The cases open at a moment, summed up in the database: how many, how many overdue and
/// the most urgent of those, the risk ones (as briefs), and how many per age bucket (`age_bounds_ms`, exclusive upper
/// bounds; one bucket more for the rest).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpenSummary {
    pub count: i64,
    pub overdue_count: i64,
    /// The most urgent overdue cases (priority, then age), as many as asked for.
    pub overdue: Vec<CaseBrief>,
    pub risk: Vec<CaseBrief>,
    pub by_age: Vec<i64>,
}

/// One local day's cases of one site and sentiment, summed up (for the 30-day chart).
#[derive(Debug, Clone, PartialEq)]
pub struct DayGroup {
    /// Index of the day in the bounds asked for.
    pub day: usize,
    pub site: Option<String>,
    pub sentiment: String,
    pub cases: i64,
    /// Cases with a response clock that counts at the moment asked for (answered, or due
    /// and unanswered), and of those the ones answered in time.
    pub with_clock: i64,
    pub in_time: i64,
    pub rated: i64,
    pub rating_sum: f64,
}

/// `CASE WHEN col < b1 THEN 0 WHEN col < b2 THEN 1 … END` over increasing bounds.
fn bucket(col: &str, bounds: &[i64]) -> String {
    let mut s = String::from("CASE");
    for (i, b) in bounds.iter().enumerate() {
        s.push_str(&format!(" WHEN {col} < {b} THEN {i}"));
    }
    s.push_str(&format!(" ELSE {} END", bounds.len()));
    s
}

impl Store {
    /// The cases open at `at`: the live states when `live`, else reconstructed from the
    /// timestamps (opened before, not resolved by then). Overdue is judged as the digest
    /// does: live, a clock past due in a state it applies to; for a past moment, a clock
    /// past due whose step had not happened by then.
    pub async fn open_summary(
        &self,
        at: i64,
        live: bool,
        age_bounds_ms: &[i64],
        overdue_listed: i64,
    ) -> anyhow::Result<OpenSummary> {
        // Two index ranges, not a scan of every case ever opened: the unresolved ones
        // (partial index `cases_unresolved`), and for a past moment the ones resolved since
        // (`cases_resolved_at`).
        let open = if live {
            "(SELECT * FROM cases WHERE state <> 'resolved') c".to_string()
        } else {
            format!(
                "(SELECT * FROM cases WHERE state <> 'resolved' AND opened_at < {at} \
                 UNION ALL SELECT * FROM cases WHERE state = 'resolved' AND resolved_at >= {at} AND opened_at < {at}) c"
            )
        };
        let overdue = if live {
            format!(
                "((state = 'open' AND (ack_due < {at} OR response_due < {at} OR resolve_due < {at})) \
                 OR (state = 'claimed' AND (response_due < {at} OR resolve_due < {at})) \
                 OR (state IN ('responded', 'offline') AND resolve_due < {at}))"
            )
        } else {
            format!(
                "((ack_due < {at} AND (claimed_at IS NULL OR claimed_at > {at})) \
                 OR (NOT (state = 'offline' AND first_response_at IS NULL) AND response_due < {at} \
                     AND (first_response_at IS NULL OR first_response_at > {at})) \
                 OR (resolve_due < {at} AND (resolved_at IS NULL OR resolved_at > {at})))"
            )
        };
        // Older than the bound ⇔ opened before at − bound: buckets from the youngest.
        let mut age_case = String::from("CASE");
        for (i, b) in age_bounds_ms.iter().enumerate() {
            age_case.push_str(&format!(" WHEN opened_at > {} THEN {i}", at.saturating_sub(*b)));
        }
        age_case.push_str(&format!(" ELSE {} END", age_bounds_ms.len()));
        let rows = sqlx::query(&format!(
            "SELECT {age_case} AS bucket, COUNT(*) AS n, \
             CAST(SUM(CASE WHEN {overdue} THEN 1 ELSE 0 END) AS BIGINT) AS late FROM {open} GROUP BY {age_case}"
        ))
        .fetch_all(self.pool())
        .await?;
        let mut summary = OpenSummary { by_age: vec![0; age_bounds_ms.len() + 1], ..Default::default() };
        for r in &rows {
            let (b, n, late): (i64, i64, i64) = (r.try_get("bucket")?, r.try_get("n")?, r.try_get("late")?);
            summary.by_age[b as usize] += n;
            summary.count += n;
            summary.overdue_count += late;
        }
        let cols = "id, priority, situation, site, state, owner, opened_at, risk";
        // The most urgent overdue cases (the count says how many there are in all), and every
        // open risk case, oldest first.
        for (risk, sql) in [
            (
                false,
                format!(
                    "SELECT {cols} FROM {open} WHERE {overdue} ORDER BY priority, opened_at, id LIMIT {overdue_listed}"
                ),
            ),
            (true, format!("SELECT {cols} FROM {open} WHERE risk = 1 ORDER BY opened_at, id")),
        ] {
            for r in &sqlx::query(&sql).fetch_all(self.pool()).await? {
                let brief = CaseBrief {
                    id: r.try_get("id")?,
                    priority: r.try_get("priority")?,
                    situation: r.try_get("situation")?,
                    site: r.try_get("site")?,
                    state: r.try_get("state")?,
                    owner: r.try_get("owner")?,
                    opened_at: r.try_get("opened_at")?,
                    risk: r.try_get::<i64, _>("risk")? == 1,
                };
                if risk {
                    summary.risk.push(brief);
                } else {
                    summary.overdue.push(brief);
                }
            }
        }
        Ok(summary)
    }

    /// Cases opened in [bounds[0], bounds[last]) summed up per day (`bounds` are the days'
    /// starts and the last day's end), site and sentiment; response clocks judged at
    /// `sla_at` as `Summary::of` does.
    pub async fn day_groups(&self, bounds: &[i64], sla_at: i64) -> anyhow::Result<Vec<DayGroup>> {
        let (Some(first), Some(last)) = (bounds.first(), bounds.last()) else { return Ok(Vec::new()) };
        let day = bucket("c.opened_at", &bounds[1..bounds.len() - 1]);
        let sql = format!(
            "SELECT {day} AS day, c.site, c.sentiment, COUNT(*) AS n, \
               CAST(SUM(CASE WHEN c.response_due IS NOT NULL AND (c.first_response_at IS NOT NULL \
                   OR c.response_due < {sla_at}) THEN 1 ELSE 0 END) AS BIGINT) AS with_clock, \
               CAST(SUM(CASE WHEN c.response_due IS NOT NULL AND c.first_response_at IS NOT NULL \
                   AND c.first_response_at <= c.response_due THEN 1 ELSE 0 END) AS BIGINT) AS in_time, \
               COUNT(m.rating) AS rated, COALESCE(SUM(m.rating), 0.0) AS rating_sum \
             FROM cases c JOIN mentions m ON m.id = c.mention_id \
             WHERE c.opened_at >= {first} AND c.opened_at < {last} \
             GROUP BY {day}, c.site, c.sentiment"
        );
        let rows = sqlx::query(&sql).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(DayGroup {
                    day: r.try_get::<i64, _>("day")? as usize,
                    site: r.try_get("site")?,
                    sentiment: r.try_get("sentiment")?,
                    cases: r.try_get("n")?,
                    with_clock: r.try_get("with_clock")?,
                    in_time: r.try_get("in_time")?,
                    rated: r.try_get("rated")?,
                    rating_sum: r.try_get("rating_sum")?,
                })
            })
            .collect()
    }
}
