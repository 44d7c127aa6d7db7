//! `reply-check.yaml`: the word lists the public-reply check uses besides its built-in
//! rules — conditions, procedures, medications, the names of sensitive services, phrases
//! the team never posts, and what counts as inviting someone to a private message. Kept by
//! the PX lead; optional (without it only the built-in rules apply).

use super::{parse_yaml, Problems, Report};
use crate::domain::compliance::Vocabulary;
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;

pub const REPLY_CHECK_FILE: &str = "reply-check.yaml";

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    conditions: Vec<String>,
    #[serde(default)]
    symptoms: Vec<String>,
    #[serde(default)]
    procedures: Vec<String>,
    #[serde(default)]
    medications: Vec<String>,
    #[serde(default)]
    services: Vec<String>,
    #[serde(default)]
    blocked_phrases: Vec<String>,
    #[serde(default)]
    dm_invitations: Vec<String>,
    #[serde(default)]
    dm_platforms: Vec<String>,
}

/// The compiled lists, shared by every check.
#[derive(Debug, Clone, Default)]
pub struct ReplyCheckBook {
    pub vocabulary: Arc<Vocabulary>,
    /// How many words and phrases the file lists (for `check`'s summary).
    pub entries: usize,
}

pub(crate) fn load(dir: &Path) -> Result<ReplyCheckBook, Problems> {
    let path = dir.join(REPLY_CHECK_FILE);
    if !path.exists() {
        return Ok(ReplyCheckBook::default());
    }
    let raw: Raw = parse_yaml(&path)?;
    let mut rep = Report::new(&path);
    for (name, list) in [
        ("conditions", &raw.conditions),
        ("symptoms", &raw.symptoms),
        ("procedures", &raw.procedures),
        ("medications", &raw.medications),
        ("services", &raw.services),
        ("blocked_phrases", &raw.blocked_phrases),
        ("dm_invitations", &raw.dm_invitations),
    ] {
        if list.iter().any(|w| w.trim().chars().count() < 2) {
            rep.at(0, format!("{name}: every entry needs at least 2 letters"));
        }
    }
    for p in &raw.dm_platforms {
        if !crate::domain::compliance::PLATFORMS.contains(&p.to_lowercase().as_str()) {
            rep.at(
                0,
                format!(
                    "dm_platforms: {p:?} is not a platform; one of {}",
                    crate::domain::compliance::PLATFORMS.join(", ")
                ),
            );
        }
    }
    if !rep.problems.is_empty() {
        return Err(Problems(rep.problems));
    }
    let lists: [(&str, &[String]); 5] = [
        ("a health condition", &raw.conditions),
        ("a symptom", &raw.symptoms),
        ("a procedure", &raw.procedures),
        ("a medication", &raw.medications),
        ("the name of a service that reveals care", &raw.services),
    ];
    let entries =
        lists.iter().map(|(_, l)| l.len()).sum::<usize>() + raw.blocked_phrases.len() + raw.dm_invitations.len();
    Ok(ReplyCheckBook {
        vocabulary: Arc::new(Vocabulary::new(&lists, &raw.blocked_phrases, &raw.dm_invitations, &raw.dm_platforms)),
        entries,
    })
}
