//! Set-based writes for intake: one statement per table per chunk of rows instead of one
//! per row, so a batch costs a handful of round trips whatever its size.
//!
//! Ids are reserved up front (a sequence on Postgres; the write lock `BEGIN IMMEDIATE`
//! holds on SQLite), so a mention row can name its case before the case row exists and no
//! statement has to read back what an earlier one generated.

use super::{flag, Backend, NewCase, Tx};
use crate::domain::Mention;
use anyhow::Context as _;
use sqlx::Row;
use std::collections::HashMap;

/// Rows per multi-row statement: well inside SQLite's 32,766 and Postgres's 65,535 bound
/// parameters for the widest table (cases, 24 per row).
const CHUNK: usize = 500;

/// The placeholder style: `$N` on Postgres; a bare `?` on SQLite, where every numbered or
/// named parameter is looked up by walking a list (`sqlite3_bind_parameter_name`, called
/// once per parameter by the driver): quadratic in a statement with thousands of them.
/// Either way each placeholder appears once, in bind order.
fn sign(backend: Backend) -> Option<char> {
    match backend {
        Backend::Postgres => Some('$'),
        Backend::Sqlite => None,
    }
}

/// `(…), (…)` for `rows` rows, each written by `row` from its first placeholder number.
fn rows_sql(rows: usize, cols: usize, row: impl Fn(usize) -> String) -> String {
    let mut out = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push_str(&row(r * cols + 1));
    }
    out
}

/// `$b, $b+1, …` (or `?, ?, …`): `cols` placeholders from `b`.
fn marks(sign: Option<char>, b: usize, cols: usize) -> Vec<String> {
    (b..b + cols).map(|i| sign.map_or_else(|| "?".to_string(), |s| format!("{s}{i}"))).collect()
}

/// `($b, $b+1, …)` with `cols` placeholders.
fn plain_row(sign: Option<char>, b: usize, cols: usize) -> String {
    format!("({})", marks(sign, b, cols).join(", "))
}

/// What a stored mention looks like to intake: its case, and the text and rating a new
/// sighting is compared with.
#[derive(Debug, Clone, PartialEq)]
pub struct Known {
    pub case_id: Option<i64>,
    /// `None` once retention purged it.
    pub text: Option<String>,
    pub rating: Option<f64>,
}

/// The stored mentions among these (source, external id) keys.
pub async fn known_keys(
    db: &mut sqlx::AnyConnection,
    backend: Backend,
    keys: &[(&str, &str)],
) -> anyhow::Result<HashMap<(String, String), Known>> {
    let mut known = HashMap::new();
    for chunk in keys.chunks(CHUNK) {
        let sql = format!(
            // A join, not `(source, external_id) IN (VALUES …)`: SQLite scans the whole
            // table for the latter; both backends name VALUES columns column1, column2.
            "SELECT m.source, m.external_id, m.case_id, m.text, m.rating FROM (VALUES {}) AS v \
             JOIN mentions m ON m.source = v.column1 AND m.external_id = v.column2",
            rows_sql(chunk.len(), 2, |b| plain_row(sign(backend), b, 2))
        );
        // Not kept in the connection's statement cache: one prepared statement per batch
        // size and table, thousands of parameters each, would hold memory for good.
        let mut q = sqlx::query(&sql).persistent(false);
        for (source, id) in chunk {
            q = q.bind(*source).bind(*id);
        }
        for r in q.fetch_all(&mut *db).await.context("looking up known mentions")? {
            known.insert(
                (r.try_get("source")?, r.try_get("external_id")?),
                Known { case_id: r.try_get("case_id")?, text: r.try_get("text")?, rating: r.try_get("rating")? },
            );
        }
    }
    Ok(known)
}

/// Reserves `n` new ids in `table` (mentions or cases) for rows this transaction inserts.
pub async fn reserve_ids(tx: &mut Tx<'_>, backend: Backend, table: &str, n: usize) -> anyhow::Result<Vec<i64>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    debug_assert!(matches!(table, "mentions" | "cases"));
    match backend {
        Backend::Postgres => {
            let sql = format!("SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, $1)");
            let rows = sqlx::query(&sql).bind(n as i64).fetch_all(&mut **tx).await.context("reserving ids")?;
            rows.iter().map(|r| Ok(r.try_get::<i64, _>(0)?)).collect()
        }
        Backend::Sqlite => {
            // The write lock is held from BEGIN IMMEDIATE, so nobody else takes these ids;
            // past the highest ever used (AUTOINCREMENT's memory), not only the highest left.
            let sql = format!(
                "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = '{table}'), 0), \
                 COALESCE((SELECT MAX(id) FROM {table}), 0))"
            );
            let top: i64 = sqlx::query(&sql).fetch_one(&mut **tx).await.context("reserving ids")?.try_get(0)?;
            Ok((1..=n as i64).map(|i| top + i).collect())
        }
    }
}

/// A mention row to insert under a reserved id, pointing at its (possibly not yet
/// inserted) case.
pub struct MentionInsert<'a> {
    pub id: i64,
    pub mention: &'a Mention,
    pub case_id: i64,
}

/// Inserts mentions whose keys were not known; returns how many went in. Fewer than asked
/// means another writer stored one of the keys meanwhile.
pub async fn insert_mentions(
    tx: &mut Tx<'_>,
    backend: Backend,
    rows: &[MentionInsert<'_>],
    received_at: i64,
) -> anyhow::Result<u64> {
    let mut inserted = 0;
    for chunk in rows.chunks(CHUNK) {
        // The rating is bound as a value plus a presence flag: sqlx 0.8's `Any` driver binds
        // a NULL f64 as FLOAT4 but a present one as FLOAT8, so on Postgres a statement first
        // prepared with a missing rating would reject every later rating on that connection.
        let values = rows_sql(chunk.len(), 15, |b| {
            let p = marks(sign(backend), b, 15);
            format!("({}, CASE WHEN {} = 1 THEN {} END, {})", p[..6].join(", "), p[6], p[7], p[8..].join(", "))
        });
        let sql = format!(
            "INSERT INTO mentions (id, source, external_id, url, author, text, rating, posted_at, received_at, \
             location_hint, visibility, forwarded_by, confidential, case_id) VALUES {values} \
             ON CONFLICT (source, external_id) DO NOTHING"
        );
        // Not kept in the connection's statement cache: one prepared statement per batch
        // size and table, thousands of parameters each, would hold memory for good.
        let mut q = sqlx::query(&sql).persistent(false);
        for r in chunk {
            let m = r.mention;
            q = q
                .bind(r.id)
                .bind(&m.source)
                .bind(&m.external_id)
                .bind(&m.url)
                .bind(&m.author)
                .bind(&m.text)
                .bind(flag(m.rating.is_some()))
                .bind(m.rating.unwrap_or(0.0))
                .bind(m.posted_at.timestamp_millis())
                .bind(received_at)
                .bind(&m.location_hint)
                .bind(m.visibility.as_str())
                .bind(&m.forwarded_by)
                .bind(flag(m.confidential))
                .bind(r.case_id);
        }
        inserted += q.execute(&mut **tx).await.context("inserting mentions")?.rows_affected();
    }
    Ok(inserted)
}

/// A new case under a reserved id; `similar` mentions of the same batch already joined it.
pub struct CaseInsert<'a> {
    pub id: i64,
    pub mention_id: i64,
    pub case: &'a NewCase,
    pub similar: i64,
}

pub async fn insert_cases(tx: &mut Tx<'_>, backend: Backend, rows: &[CaseInsert<'_>]) -> anyhow::Result<()> {
    const COLS: usize = 24;
    for chunk in rows.chunks(CHUNK) {
        let values = rows_sql(chunk.len(), COLS, |b| {
            let p = marks(sign(backend), b, COLS);
            format!("({}, 'open', {})", p[..2].join(", "), p[2..].join(", "))
        });
        let sql = format!(
            "INSERT INTO cases (id, mention_id, state, situation, priority, channel, site, categories, sentiment, \
             sentiment_score, risk, urgent, spam, positive, confidential, reasons, opened_at, updated_at, \
             ack_due, response_due, follow_up_due, resolve_due, fingerprint, similar_count, similar_noted_at) \
             VALUES {values}"
        );
        // Not kept in the connection's statement cache: one prepared statement per batch
        // size and table, thousands of parameters each, would hold memory for good.
        let mut q = sqlx::query(&sql).persistent(false);
        for r in chunk {
            let c = r.case;
            q = q
                .bind(r.id)
                .bind(r.mention_id)
                .bind(&c.situation)
                .bind(c.priority.as_str())
                .bind(&c.channel)
                .bind(&c.site)
                .bind(c.categories.join(","))
                .bind(c.sentiment.as_str())
                .bind(c.sentiment_score)
                .bind(flag(c.risk))
                .bind(flag(c.urgent))
                .bind(flag(c.spam))
                .bind(flag(c.positive))
                .bind(flag(c.confidential))
                .bind(serde_json::to_string(&c.reasons)?)
                .bind(c.opened_at)
                .bind(c.opened_at)
                .bind(c.ack_due)
                .bind(c.response_due)
                .bind(c.follow_up_due)
                .bind(c.resolve_due)
                .bind(c.fingerprint)
                .bind(r.similar)
                // A case that similar mentions joined was noted when it opened.
                .bind((r.similar > 0).then_some(c.opened_at));
        }
        q.execute(&mut **tx).await.context("inserting cases")?;
    }
    Ok(())
}

/// A case event to append.
pub struct EventInsert {
    pub case_id: i64,
    pub at: i64,
    pub actor: String,
    pub action: &'static str,
    pub detail: String,
}

pub async fn insert_events(tx: &mut Tx<'_>, backend: Backend, rows: &[EventInsert]) -> anyhow::Result<()> {
    for chunk in rows.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO case_events (case_id, at, actor, action, detail) VALUES {}",
            rows_sql(chunk.len(), 5, |b| plain_row(sign(backend), b, 5))
        );
        // Not kept in the connection's statement cache: one prepared statement per batch
        // size and table, thousands of parameters each, would hold memory for good.
        let mut q = sqlx::query(&sql).persistent(false);
        for e in chunk {
            q = q.bind(e.case_id).bind(e.at).bind(&e.actor).bind(e.action).bind(&e.detail);
        }
        q.execute(&mut **tx).await.context("appending case events")?;
    }
    Ok(())
}

/// An outbox row with its lane and priority already worked out.
pub struct OutboxInsert {
    pub case_id: Option<i64>,
    pub op: &'static str,
    pub payload: String,
    pub lane: String,
    pub priority: i64,
    pub created_at: i64,
    pub due: i64,
}

pub async fn insert_outbox(tx: &mut Tx<'_>, backend: Backend, rows: &[OutboxInsert]) -> anyhow::Result<()> {
    for chunk in rows.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO outbox (case_id, op, payload, next_attempt_at, created_at, lane, priority) VALUES {}",
            rows_sql(chunk.len(), 7, |b| plain_row(sign(backend), b, 7))
        );
        // Not kept in the connection's statement cache: one prepared statement per batch
        // size and table, thousands of parameters each, would hold memory for good.
        let mut q = sqlx::query(&sql).persistent(false);
        for o in chunk {
            q = q
                .bind(o.case_id)
                .bind(o.op)
                .bind(&o.payload)
                .bind(o.due)
                .bind(o.created_at)
                .bind(&o.lane)
                .bind(o.priority);
        }
        q.execute(&mut **tx).await.context("queueing chat messages")?;
    }
    Ok(())
}
