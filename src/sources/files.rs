//! File intake: JSON lines and CSV (e.g. a review-aggregator export for Healthgrades, Vitals
//! or RateMDs), from `carebot ingest FILE` or dropped into the `sources.files.dir` folder.
//! Bad rows are reported with their line number and skipped; good rows still land.

use crate::ctx::Ctx;
use crate::domain::{Mention, RawMention};
use crate::intake::{ingest, Ingested};
use anyhow::Context as _;
use chrono::{DateTime, Utc};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Columns a CSV file may have (header names; aliases cover common export spellings).
pub const CSV_COLUMNS: &[&str] = &[
    "source",
    "external_id",
    "id",
    "review_id",
    "url",
    "author",
    "reviewer",
    "text",
    "review_text",
    "comment",
    "rating",
    "stars",
    "posted_at",
    "date",
    "review_date",
    "location_hint",
    "location",
    "visibility",
    "forwarded_by",
    "confidential",
];

/// Rows are written to the database in transactions of this many.
const BATCH: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IngestReport {
    pub opened: usize,
    pub revised: usize,
    pub duplicates: usize,
    /// Near-duplicates folded into an existing case (storms).
    pub similar: usize,
    pub errors: Vec<RowError>,
}

impl std::fmt::Display for IngestReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} new case(s), {} revision(s), {} duplicate(s), {} similar, {} bad row(s)",
            self.opened,
            self.revised,
            self.duplicates,
            self.similar,
            self.errors.len()
        )
    }
}

/// The accepted shapes of a raw row before field checks (CSV fields arrive as text).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CsvRow {
    source: Option<String>,
    #[serde(alias = "id", alias = "review_id")]
    external_id: Option<String>,
    url: Option<String>,
    #[serde(alias = "reviewer")]
    author: Option<String>,
    #[serde(alias = "review_text", alias = "comment")]
    text: Option<String>,
    #[serde(alias = "stars")]
    rating: Option<String>,
    #[serde(alias = "date", alias = "review_date")]
    posted_at: Option<String>,
    #[serde(alias = "location")]
    location_hint: Option<String>,
    visibility: Option<String>,
    forwarded_by: Option<String>,
    confidential: Option<String>,
}

impl CsvRow {
    fn into_raw(self) -> Result<RawMention, String> {
        let rating = match self.rating.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(r) => Some(r.parse::<f64>().map_err(|_| format!("field `rating` must be a number, got {r:?}"))?),
        };
        let visibility = match self.visibility.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some("public") => Some(crate::domain::Visibility::Public),
            Some("private") => Some(crate::domain::Visibility::Private),
            Some(v) => return Err(format!("field `visibility` must be public or private, got {v:?}")),
        };
        let confidential = match self.confidential.as_deref().map(|s| s.trim().to_lowercase()) {
            None => None,
            Some(s) if s.is_empty() => None,
            Some(s) if ["true", "yes", "1"].contains(&s.as_str()) => Some(true),
            Some(s) if ["false", "no", "0"].contains(&s.as_str()) => Some(false),
            Some(s) => return Err(format!("field `confidential` must be true or false, got {s:?}")),
        };
        Ok(RawMention {
            source: self.source,
            external_id: self.external_id,
            url: self.url,
            author: self.author,
            text: self.text,
            rating,
            posted_at: self.posted_at,
            location_hint: self.location_hint,
            visibility,
            forwarded_by: self.forwarded_by,
            confidential,
        })
    }
}

fn check_raw(raw: RawMention, default_source: Option<&str>, now: DateTime<Utc>) -> Result<Mention, String> {
    raw.parse(default_source, now).map_err(|e| e.to_string())
}

enum Reader {
    Jsonl { lines: std::io::Lines<BufReader<File>>, line: usize },
    Csv { records: csv::StringRecordsIntoIter<File>, headers: csv::StringRecord },
}

/// The rows of one file, read lazily so a large export never sits in memory whole.
/// Each item is a checked mention with its line number, or the line's problem.
pub struct Rows {
    reader: Reader,
    default_source: Option<String>,
    now: DateTime<Utc>,
}

impl Rows {
    /// Opens a file by its extension (`.jsonl`/`.ndjson`/`.json` lines, or `.csv`); a CSV
    /// header with unknown columns is refused here, before any row is read.
    pub fn open(path: &Path, default_source: Option<&str>, now: DateTime<Utc>) -> anyhow::Result<Rows> {
        let file = File::open(path).with_context(|| format!("reading {}", path.display()))?;
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_lowercase();
        let reader = match ext.as_str() {
            "jsonl" | "ndjson" | "json" => Reader::Jsonl { lines: BufReader::new(file).lines(), line: 0 },
            "csv" => {
                let mut rdr = csv::ReaderBuilder::new().flexible(false).from_reader(file);
                let headers = rdr
                    .headers()
                    .map_err(|e| anyhow::anyhow!("{}:1: cannot read the CSV header: {e}", path.display()))?
                    .clone();
                let unknown: Vec<&str> = headers.iter().map(str::trim).filter(|h| !CSV_COLUMNS.contains(h)).collect();
                if !unknown.is_empty() {
                    anyhow::bail!(
                        "{}:1: unknown column(s) {}; known columns: {}",
                        path.display(),
                        unknown.join(", "),
                        CSV_COLUMNS.join(", ")
                    );
                }
                let headers: csv::StringRecord = headers.iter().map(str::trim).collect();
                Reader::Csv { records: rdr.into_records(), headers }
            }
            _ => anyhow::bail!("{}: unknown file type; use .jsonl (JSON lines) or .csv", path.display()),
        };
        Ok(Rows { reader, default_source: default_source.map(str::to_string), now })
    }
}

impl Iterator for Rows {
    type Item = Result<(usize, Mention), RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let source = self.default_source.as_deref();
        match &mut self.reader {
            Reader::Jsonl { lines, line } => loop {
                *line += 1;
                let text = match lines.next()? {
                    Ok(t) => t,
                    Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                        return Some(Err(RowError { line: *line, message: "not valid UTF-8".into() }))
                    }
                    Err(e) => return Some(Err(RowError { line: *line, message: format!("read error: {e}") })),
                };
                if text.trim().is_empty() || text.trim_start().starts_with('#') {
                    continue;
                }
                let row = serde_json::from_str::<RawMention>(&text)
                    .map_err(|e| format!("malformed JSON: {e}"))
                    .and_then(|raw| check_raw(raw, source, self.now));
                return Some(row.map(|m| (*line, m)).map_err(|message| RowError { line: *line, message }));
            },
            Reader::Csv { records, headers } => {
                let (line, row) = match records.next()? {
                    Err(e) => (e.position().map(|p| p.line() as usize).unwrap_or(0), Err(e.to_string())),
                    Ok(r) => (
                        r.position().map(|p| p.line() as usize).unwrap_or(0),
                        r.deserialize::<CsvRow>(Some(headers))
                            .map_err(|e| e.to_string())
                            .and_then(CsvRow::into_raw)
                            .and_then(|raw| check_raw(raw, source, self.now)),
                    ),
                };
                Some(row.map(|m| (line, m)).map_err(|message| RowError { line, message }))
            }
        }
    }
}

/// Ingests a whole file, `BATCH` rows per transaction; bad rows are collected, not fatal.
pub async fn ingest_file(ctx: &Ctx, path: &Path, default_source: Option<&str>) -> anyhow::Result<IngestReport> {
    let rows = Rows::open(path, default_source, ctx.clock.now())?;
    ingest_rows(ctx, rows).await
}

pub async fn ingest_rows(ctx: &Ctx, mut rows: Rows) -> anyhow::Result<IngestReport> {
    let mut report = IngestReport::default();
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let row = rows.next();
        let end = row.is_none();
        match row {
            Some(Ok((_, m))) => batch.push(m),
            Some(Err(e)) => report.errors.push(e),
            None => {}
        }
        if batch.len() == BATCH || (end && !batch.is_empty()) {
            for r in ingest(ctx, &batch).await? {
                match r {
                    Ingested::Opened(_) => report.opened += 1,
                    Ingested::Revised(_) => report.revised += 1,
                    Ingested::Duplicate(_) => report.duplicates += 1,
                    Ingested::Similar(_) => report.similar += 1,
                }
            }
            batch.clear();
        }
        if end {
            return Ok(report);
        }
    }
}

/// Files at serve start (`sources.files.import_on_start`), e.g. the bundled samples.
pub async fn import_on_start(ctx: Arc<Ctx>) {
    for path in &ctx.settings.sources.files.import_on_start {
        match ingest_file(&ctx, path, Some(&ctx.settings.sources.files.default_source)).await {
            Ok(r) => {
                tracing::info!(file = %path.display(), opened = r.opened, duplicates = r.duplicates, bad_rows = r.errors.len(), "imported")
            }
            Err(e) => {
                tracing::error!(file = %path.display(), error = %format!("{e:#}"), "import failed")
            }
        }
    }
}

fn move_into(path: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().context("file without a name")?;
    let mut dest = dir.join(name);
    let mut n = 1;
    while dest.exists() {
        dest = dir.join(format!("{}.{n}", name.to_string_lossy()));
        n += 1;
    }
    std::fs::rename(path, &dest)?;
    Ok(dest)
}

/// One pass over the drop folder: each `.jsonl`/`.csv` is ingested, then moved to `done/`
/// (with a `.errors.txt` listing bad rows), or to `failed/` if it could not be read at all.
/// A file is moved only after its rows are committed, so a crash re-reads it (dedupe makes
/// that harmless) rather than losing it.
pub async fn poll_drop_folder(ctx: &Ctx) -> anyhow::Result<String> {
    let cfg = &ctx.settings.sources.files;
    if !cfg.enabled {
        return Ok("files source disabled".into());
    }
    std::fs::create_dir_all(&cfg.dir).with_context(|| format!("creating {}", cfg.dir.display()))?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&cfg.dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("jsonl" | "ndjson" | "csv")))
        .collect();
    files.sort();
    let mut summary = Vec::new();
    for path in files {
        // A file that cannot be parsed goes to failed/; a database error leaves it in place
        // to be retried on the next tick.
        match Rows::open(&path, Some(&cfg.default_source), ctx.clock.now()) {
            Ok(rows) => {
                let report = ingest_rows(ctx, rows).await?;
                let dest = move_into(&path, &cfg.dir.join("done"))?;
                if !report.errors.is_empty() {
                    let lines: Vec<String> =
                        report.errors.iter().map(|e| format!("line {}: {}", e.line, e.message)).collect();
                    std::fs::write(format!("{}.errors.txt", dest.display()), lines.join("\n") + "\n")?;
                }
                summary.push(format!("{}: {report}", dest.display()));
            }
            Err(e) => {
                let msg = format!("{e:#}");
                let dest = move_into(&path, &cfg.dir.join("failed"))?;
                std::fs::write(format!("{}.errors.txt", dest.display()), format!("{msg}\n"))?;
                summary.push(format!("{}: failed: {msg}", dest.display()));
            }
        }
    }
    Ok(if summary.is_empty() { "no new files".into() } else { summary.join("; ") })
}
