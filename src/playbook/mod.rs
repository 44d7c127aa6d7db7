//! Playbooks: the files a PX lead edits (team & sites, triage rules, situations), parsed and
//! validated once at load. Every problem is reported with file, line and what to fix.

pub mod corpus;
pub mod model;
pub mod replies;
pub mod reply_check;
pub mod situations;
pub mod team;
pub mod text;
pub mod triage;
pub mod triage_rules;

use std::fmt;
use std::path::{Path, PathBuf};

pub use replies::{ReplyBook, ReplyTemplate, ReplyVars};
pub use situations::{
    Channel, ClockTimes, EscalationStep, Notify, Situation, SituationBook, SlaClock, Slas, StepLines, When,
};
pub use team::{Contacts, Person, Rotation, Site, Team};
pub use triage::{Sentiment, Triage, TriageResult};
pub use triage_rules::TriageBook;

pub const TEAM_FILE: &str = "team.yaml";
pub const TRIAGE_FILE: &str = "triage.yaml";
pub const SITUATIONS_FILE: &str = "situations.yaml";

/// One problem in one playbook file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<u64>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.file.display(), l, self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// Every problem found while loading, so a lead fixes them all in one pass.
#[derive(Debug, Clone, thiserror::Error)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Collects problems for one file while validating.
pub(crate) struct Report<'a> {
    file: &'a Path,
    pub problems: Vec<Problem>,
}

impl<'a> Report<'a> {
    pub fn new(file: &'a Path) -> Self {
        Report { file, problems: Vec::new() }
    }
    pub fn at(&mut self, line: u64, message: impl Into<String>) {
        self.problems.push(Problem {
            file: self.file.to_path_buf(),
            line: (line > 0).then_some(line),
            message: message.into(),
        });
    }
}

/// Parses one YAML file into its raw form, turning syntax and shape errors into a Problem.
pub(crate) fn parse_yaml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, Problems> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Problems(vec![Problem { file: path.to_path_buf(), line: None, message: format!("cannot read: {e}") }])
    })?;
    serde_saphyr::from_str::<T>(&text).map_err(|e| {
        let line = e.location().map(|l| l.line()).filter(|l| *l > 0);
        // The library's own message may repeat the location and a snippet; keep the first line.
        let full = e.to_string();
        let message = full.lines().find(|l| !l.trim().is_empty()).unwrap_or("invalid YAML").trim().to_string();
        let found = e.location().and_then(|l| value_at(&text, l.line(), l.column()));
        Problems(vec![Problem { file: path.to_path_buf(), line, message: plain(&message, found) }])
    })
}

/// The value written at a 1-based line and column: up to a comma, bracket, comment or the
/// end of the line.
fn value_at(text: &str, line: u64, column: u64) -> Option<&str> {
    let l = text.lines().nth(usize::try_from(line).ok()?.checked_sub(1)?)?;
    let start = l.char_indices().nth(usize::try_from(column).ok()?.checked_sub(1)?)?.0;
    let rest = &l[start..];
    let end = rest.find([',', ']', '}', '#']).unwrap_or(rest.len());
    Some(rest[..end].trim()).filter(|v| !v.is_empty())
}

/// The YAML library speaks of Rust types ("invalid u32"); a PX lead editing a playbook reads
/// what was expected instead, with the value they wrote.
fn plain(message: &str, found: Option<&str>) -> String {
    // "error: line 14 column 17: invalid u32": the file:line is shown already.
    let message = message.strip_prefix("error: ").unwrap_or(message);
    let (place, what) = match message.split_once(": ") {
        Some((p, w)) if p.starts_with("line ") => (Some(p), w),
        _ => (None, message),
    };
    let expected = match what.trim_start_matches("invalid type: ").rsplit(' ').next().unwrap_or_default() {
        "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i32" | "i64" | "isize" => Some("a whole number"),
        "f32" | "f64" => Some("a number"),
        "bool" | "boolean" => Some("true or false"),
        _ => None,
    };
    let said = match (expected, found) {
        (Some(e), Some(f)) => format!("{e} was expected here, not {f:?}"),
        (Some(e), None) => format!("{e} was expected here"),
        _ => what.replace("unknown field", "unknown key").replace("missing field", "missing key"),
    };
    match place {
        Some(p) => format!("{said} ({p})"),
        None => said,
    }
}

/// The validated playbook set the bot runs on.
#[derive(Debug)]
pub struct Playbooks {
    pub dir: PathBuf,
    pub team: Team,
    pub triage_rules: TriageBook,
    pub situations: SituationBook,
    pub replies: ReplyBook,
    pub reply_check: reply_check::ReplyCheckBook,
}

impl Playbooks {
    /// Loads and cross-checks all playbook files in `dir`; returns every problem found.
    pub fn load(dir: &Path) -> Result<Playbooks, Problems> {
        let mut problems = Vec::new();
        let team = team::load(&dir.join(TEAM_FILE)).map_err(|p| problems.extend(p.0)).ok();
        let rules = triage_rules::load(&dir.join(TRIAGE_FILE)).map_err(|p| problems.extend(p.0)).ok();
        let situations = match (&team, &rules) {
            (Some(t), Some(r)) => {
                situations::load(&dir.join(SITUATIONS_FILE), t, r).map_err(|p| problems.extend(p.0)).ok()
            }
            _ => None,
        };
        if let (Some(r), Some(s)) = (&rules, &situations) {
            if let Some((channel, line)) = r.spike.as_ref().and_then(|sp| sp.channel.as_ref()) {
                if !s.channels.contains_key(channel) {
                    problems.push(Problem {
                        file: dir.join(TRIAGE_FILE),
                        line: Some(*line),
                        message: format!("spike.channel: {channel:?} is not a channel in {SITUATIONS_FILE}"),
                    });
                }
            }
        }
        let reply_check = reply_check::load(dir).map_err(|p| problems.extend(p.0)).ok();
        let replies = match (&team, &rules, &situations, &reply_check) {
            (Some(t), Some(r), Some(s), Some(c)) => {
                replies::load(dir, t, r, s, &c.vocabulary).map_err(|p| problems.extend(p.0)).ok()
            }
            _ => None,
        };
        match (team, rules, situations, replies, reply_check) {
            (Some(team), Some(triage_rules), Some(situations), Some(replies), Some(reply_check))
                if problems.is_empty() =>
            {
                Ok(Playbooks { dir: dir.to_path_buf(), team, triage_rules, situations, replies, reply_check })
            }
            _ => Err(Problems(problems)),
        }
    }
}
