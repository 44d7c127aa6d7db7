//! A mention: one public (or forwarded private) post about the organisation, as a source yields it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Whether the post is public or was shared privately with staff.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    #[default]
    Public,
    /// A private post a colleague forwarded; the case is confidential.
    Private,
}

impl Visibility {
    pub fn as_str(&self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
        }
    }
}

/// A mention as it arrives on the wire (JSON line, CSV row, webhook body), before checks.
/// The field names here are the documented intake schema (see README, "Intake format").
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawMention {
    pub source: Option<String>,
    #[serde(alias = "id")]
    pub external_id: Option<String>,
    pub url: Option<String>,
    pub author: Option<String>,
    pub text: Option<String>,
    pub rating: Option<f64>,
    pub posted_at: Option<String>,
    #[serde(alias = "location")]
    pub location_hint: Option<String>,
    pub visibility: Option<Visibility>,
    pub forwarded_by: Option<String>,
    pub confidential: Option<bool>,
}

/// A checked mention: every field a case needs is present and sane.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mention {
    pub source: String,
    pub external_id: String,
    pub url: Option<String>,
    pub author: Option<String>,
    pub text: String,
    pub rating: Option<f64>,
    pub posted_at: DateTime<Utc>,
    pub location_hint: Option<String>,
    pub visibility: Visibility,
    pub forwarded_by: Option<String>,
    pub confidential: bool,
    /// The site this mention is about when its source says so (a Facebook page, a Google
    /// location, a Yelp business mapped in the config); wins over detection from the text.
    pub site: Option<String>,
}

/// Why a raw mention was refused; names the field so the sender can fix it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MentionError {
    #[error("missing field `{0}`")]
    Missing(&'static str),
    #[error("field `rating` must be between 0 and 5, got {0}")]
    Rating(f64),
    #[error("field `posted_at` must be an RFC 3339 time such as 2026-11-02T14:05:00Z or a date such as 2026-11-02, got {0:?}")]
    PostedAt(String),
    #[error("field `{0}` is too long ({1} characters, at most {2})")]
    TooLong(&'static str, usize, usize),
}

const MAX_TEXT: usize = 20_000;

fn present(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

impl RawMention {
    /// Checks the raw fields. `default_source` fills `source` when the channel implies it
    /// (a webhook path, `carebot ingest --source`); `now` fills a missing `posted_at`.
    pub fn parse(self, default_source: Option<&str>, now: DateTime<Utc>) -> Result<Mention, MentionError> {
        let source = present(self.source)
            .or_else(|| default_source.map(str::to_string))
            .ok_or(MentionError::Missing("source"))?;
        let external_id = present(self.external_id).ok_or(MentionError::Missing("external_id"))?;
        let text = present(self.text).ok_or(MentionError::Missing("text"))?;
        let chars = text.chars().count();
        if chars > MAX_TEXT {
            return Err(MentionError::TooLong("text", chars, MAX_TEXT));
        }
        if let Some(r) = self.rating {
            if !(0.0..=5.0).contains(&r) || r.is_nan() {
                return Err(MentionError::Rating(r));
            }
        }
        let posted_at = match present(self.posted_at) {
            None => now,
            Some(s) => match DateTime::parse_from_rfc3339(&s) {
                Ok(d) => d.with_timezone(&Utc),
                // Review-site exports often carry only the day.
                Err(_) => chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                    .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
                    .map_err(|_| MentionError::PostedAt(s))?,
            },
        };
        let visibility = self.visibility.unwrap_or_default();
        let forwarded_by = present(self.forwarded_by);
        let confidential = self.confidential.unwrap_or(false) || visibility == Visibility::Private;
        Ok(Mention {
            source: source.to_lowercase(),
            external_id,
            url: present(self.url),
            author: present(self.author),
            text,
            rating: self.rating,
            posted_at,
            location_hint: present(self.location_hint),
            visibility,
            forwarded_by,
            confidential,
            site: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawMention {
        RawMention {
            source: Some("google".into()),
            external_id: Some("g-1".into()),
            text: Some("Waited 4 hours".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_private_forwarded_post_becomes_confidential() {
        let m = RawMention { visibility: Some(Visibility::Private), forwarded_by: Some("sam".into()), ..raw() }
            .parse(None, Utc::now())
            .unwrap();
        assert!(m.confidential);
    }

    #[test]
    fn missing_text_and_bad_rating_name_the_field() {
        let e = RawMention { text: Some("  ".into()), ..raw() }.parse(None, Utc::now()).unwrap_err();
        assert_eq!(e.to_string(), "missing field `text`");
        let e = RawMention { rating: Some(7.0), ..raw() }.parse(None, Utc::now()).unwrap_err();
        assert!(e.to_string().contains("rating"));
        let e = RawMention { posted_at: Some("yesterday".into()), ..raw() }.parse(None, Utc::now()).unwrap_err();
        assert!(e.to_string().contains("posted_at"));
        let day = RawMention { posted_at: Some("2026-11-02".into()), ..raw() }.parse(None, Utc::now()).unwrap();
        assert_eq!(day.posted_at.to_rfc3339(), "2026-11-02T00:00:00+00:00");
    }

    #[test]
    fn the_default_source_fills_a_missing_one() {
        let m = RawMention { source: None, ..raw() }.parse(Some("Yelp"), Utc::now()).unwrap();
        assert_eq!(m.source, "yelp");
        let e = RawMention { source: None, ..raw() }.parse(None, Utc::now()).unwrap_err();
        assert_eq!(e, MentionError::Missing("source"));
    }
}
