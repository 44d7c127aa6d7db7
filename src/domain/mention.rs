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
    /// Zapier and Make send numeric ids: a JSON integer is taken as its decimal text.
    #[serde(alias = "id", default, deserialize_with = "string_or_integer")]
    pub external_id: Option<String>,
    pub url: Option<String>,
    pub author: Option<String>,
    pub text: Option<String>,
    /// A number, or a number in a string (`"4"`, as form tools send it).
    #[serde(default, deserialize_with = "number_or_numeric_string")]
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
    /// What intake changed or dropped, and why (e.g. an unusable link); recorded on the
    /// case's "opened" event.
    pub notes: Vec<String>,
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
    #[error("field `{0}` contains a control character (U+{1:04X}); only newlines and tabs are allowed in text")]
    ControlCharacter(&'static str, u32),
    #[error("field `source` must be a short lower-case name (letters, digits, `_`, `-`; at most {MAX_SOURCE} characters), got {0:?}")]
    Source(String),
    #[error("field `source` is {given:?} but this endpoint receives {expected:?} mentions; leave `source` out or send it to /ingest/webhook/{given}")]
    SourceMismatch { given: String, expected: String },
}

const MAX_TEXT: usize = 20_000;
const MAX_SHORT: usize = 2_000;
pub const MAX_SOURCE: usize = 40;

/// Accepts a JSON string or integer (numeric ids from Zapier/Make) as text.
fn string_or_integer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct Id;
    impl<'v> serde::de::Visitor<'v> for Id {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string or an integer (field `external_id`)")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: serde::Deserializer<'v>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(Id)
        }
    }
    d.deserialize_option(Id)
}

/// Accepts a JSON number or a string holding one (form tools send `"4"`).
fn number_or_numeric_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    struct Rating;
    impl<'v> serde::de::Visitor<'v> for Rating {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a number from 0 to 5 (field `rating`)")
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            let v = v.trim();
            if v.is_empty() {
                return Ok(None);
            }
            v.parse()
                .map(Some)
                .map_err(|_| E::custom(format!("field `rating` must be a number from 0 to 5, got {v:?}")))
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: serde::Deserializer<'v>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(Rating)
        }
    }
    d.deserialize_option(Rating)
}

/// A source name as carebot keys it: lower case, `-` read as `_`. `None` if it is not a
/// short identifier.
pub fn source_key(s: &str) -> Option<String> {
    let k = s.trim().to_lowercase().replace('-', "_");
    let ok = !k.is_empty()
        && k.len() <= MAX_SOURCE
        && k.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    ok.then_some(k)
}

/// Refuses control characters (NUL, escape sequences …) that no post legitimately holds
/// and that PostgreSQL or a terminal would choke on. `multiline` fields keep newlines and
/// tabs; Windows line ends are normalised first.
fn checked(
    field: &'static str,
    v: Option<String>,
    multiline: bool,
    max: usize,
) -> Result<Option<String>, MentionError> {
    let Some(v) = v else { return Ok(None) };
    let v = if multiline { v.replace("\r\n", "\n").replace('\r', "\n") } else { v };
    if let Some(c) = v.chars().find(|c| c.is_control() && !(multiline && (*c == '\n' || *c == '\t'))) {
        return Err(MentionError::ControlCharacter(field, c as u32));
    }
    let chars = v.chars().count();
    if chars > max {
        return Err(MentionError::TooLong(field, chars, max));
    }
    Ok(present(Some(v)))
}

/// Control characters removed, for data carebot fetches itself from a platform: dropping a
/// stray byte beats losing the review.
fn scrub(v: Option<String>) -> Option<String> {
    v.map(|s| s.replace("\r\n", "\n").chars().filter(|c| !c.is_control() || *c == '\n' || *c == '\t').collect())
}

/// A link as cards can show it: http(s) only; a bare `www.example.org/…` gets `https://`.
/// `Err` carries why the link was dropped.
pub fn normalise_link(s: &str) -> Result<String, String> {
    let s = s.trim();
    let parsed = match url::Url::parse(s) {
        Ok(u) => u,
        Err(url::ParseError::RelativeUrlWithoutBase) if !s.contains(char::is_whitespace) && s.contains('.') => {
            url::Url::parse(&format!("https://{s}")).map_err(|e| format!("link dropped: not a web address ({e})"))?
        }
        Err(e) => return Err(format!("link dropped: not a web address ({e})")),
    };
    match parsed.scheme() {
        "http" | "https" if parsed.host_str().is_some_and(|h| h.contains('.') || h == "localhost") => {
            Ok(parsed.to_string())
        }
        "http" | "https" => Err("link dropped: no host name".into()),
        other => Err(format!("link dropped: only http and https links are kept, not {other}:")),
    }
}

fn present(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

impl RawMention {
    /// Control characters stripped from every field: for mentions carebot fetches from a
    /// platform API, where refusing would lose the review.
    pub fn scrubbed(self) -> RawMention {
        RawMention {
            source: scrub(self.source),
            external_id: scrub(self.external_id),
            url: scrub(self.url),
            author: scrub(self.author),
            text: scrub(self.text),
            location_hint: scrub(self.location_hint),
            forwarded_by: scrub(self.forwarded_by),
            posted_at: scrub(self.posted_at),
            ..self
        }
    }

    /// Checks a mention sent to an endpoint that belongs to one source (a webhook path):
    /// that is its source, and a different `source` in the body is refused.
    pub fn parse_for(mut self, source: &str, now: DateTime<Utc>) -> Result<Mention, MentionError> {
        let expected = source_key(source).ok_or_else(|| MentionError::Source(source.to_string()))?;
        if let Some(given) = present(self.source.take()) {
            if source_key(&given).as_deref() != Some(expected.as_str()) {
                return Err(MentionError::SourceMismatch { given, expected });
            }
        }
        self.parse(Some(&expected), now)
    }

    /// Checks the raw fields. `default_source` fills `source` when the channel implies it
    /// (a webhook path, `carebot ingest --source`); `now` fills a missing `posted_at`.
    pub fn parse(self, default_source: Option<&str>, now: DateTime<Utc>) -> Result<Mention, MentionError> {
        let source = checked("source", self.source, false, MAX_SOURCE)?
            .or_else(|| default_source.map(str::to_string))
            .ok_or(MentionError::Missing("source"))?;
        let source = source_key(&source).ok_or(MentionError::Source(source))?;
        let external_id =
            checked("external_id", self.external_id, false, MAX_SHORT)?.ok_or(MentionError::Missing("external_id"))?;
        let text = checked("text", self.text, true, MAX_TEXT)?.ok_or(MentionError::Missing("text"))?;
        let author = checked("author", self.author, false, MAX_SHORT)?;
        let location_hint = checked("location_hint", self.location_hint, false, MAX_SHORT)?;
        let forwarded_by = checked("forwarded_by", self.forwarded_by, false, MAX_SHORT)?;
        let url = checked("url", self.url, false, MAX_SHORT)?;
        if let Some(r) = self.rating {
            if !(0.0..=5.0).contains(&r) || r.is_nan() {
                return Err(MentionError::Rating(r));
            }
        }
        let posted_at = match checked("posted_at", self.posted_at, false, 100)? {
            None => now,
            Some(s) => match DateTime::parse_from_rfc3339(&s) {
                Ok(d) => d.with_timezone(&Utc),
                // Review-site exports often carry only the day.
                Err(_) => chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                    .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
                    .map_err(|_| MentionError::PostedAt(s))?,
            },
        };
        let mut notes = Vec::new();
        let url = url.and_then(|u| normalise_link(&u).map_err(|why| notes.push(why)).ok());
        let visibility = self.visibility.unwrap_or_default();
        let confidential = self.confidential.unwrap_or(false) || visibility == Visibility::Private;
        Ok(Mention {
            source,
            external_id,
            url,
            author,
            text,
            rating: self.rating,
            posted_at,
            location_hint,
            visibility,
            forwarded_by,
            confidential,
            site: None,
            notes,
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

    #[test]
    fn control_characters_are_refused_naming_the_field_and_scrubbed_from_fetched_data() {
        let e = RawMention { text: Some("before\u{0}after".into()), ..raw() }.parse(None, Utc::now()).unwrap_err();
        assert_eq!(e, MentionError::ControlCharacter("text", 0));
        assert!(e.to_string().contains("`text`") && e.to_string().contains("U+0000"), "{e}");
        let e = RawMention { author: Some("Ann\u{1b}[31m".into()), ..raw() }.parse(None, Utc::now()).unwrap_err();
        assert_eq!(e, MentionError::ControlCharacter("author", 0x1b));
        let e = RawMention { external_id: Some("a\u{0}".into()), ..raw() }.parse(None, Utc::now()).unwrap_err();
        assert_eq!(e, MentionError::ControlCharacter("external_id", 0));
        let ok =
            RawMention { text: Some("line one\r\nline two\tend".into()), ..raw() }.parse(None, Utc::now()).unwrap();
        assert_eq!(ok.text, "line one\nline two\tend");
        let m = RawMention { text: Some("bad\u{0}byte".into()), ..raw() }.scrubbed().parse(None, Utc::now()).unwrap();
        assert_eq!(m.text, "badbyte");
    }

    #[test]
    fn sources_are_short_identifiers_and_a_fixed_source_cannot_be_overridden() {
        let long = "x".repeat(8000);
        let e = RawMention { source: Some(long), ..raw() }.parse(None, Utc::now()).unwrap_err();
        assert_eq!(e, MentionError::TooLong("source", 8000, MAX_SOURCE));
        let e = RawMention { source: Some("google reviews!".into()), ..raw() }.parse(None, Utc::now()).unwrap_err();
        assert!(matches!(e, MentionError::Source(_)), "{e}");
        let e =
            RawMention { source: Some("google".into()), ..raw() }.parse_for("contact_form", Utc::now()).unwrap_err();
        assert!(matches!(e, MentionError::SourceMismatch { .. }), "{e}");
        let same = RawMention { source: Some("Contact-Form".into()), ..raw() }.parse_for("contact_form", Utc::now());
        assert_eq!(same.unwrap().source, "contact_form");
        let none = RawMention { source: None, ..raw() }.parse_for("contact_form", Utc::now()).unwrap();
        assert_eq!(none.source, "contact_form");
    }

    #[test]
    fn ratings_may_come_as_numeric_strings() {
        let r: RawMention = serde_json::from_str(r#"{"id": "a", "text": "hi", "rating": "4"}"#).unwrap();
        assert_eq!(r.rating, Some(4.0));
        let r: RawMention = serde_json::from_str(r#"{"id": "a", "text": "hi", "rating": 3.5}"#).unwrap();
        assert_eq!(r.rating, Some(3.5));
        let e = serde_json::from_str::<RawMention>(r#"{"id": "a", "text": "hi", "rating": "five"}"#).unwrap_err();
        assert!(e.to_string().contains("must be a number from 0 to 5"), "{e}");
    }

    #[test]
    fn numeric_ids_are_accepted() {
        let r: RawMention = serde_json::from_str(r#"{"external_id": 1234567, "text": "hi"}"#).unwrap();
        assert_eq!(r.external_id.as_deref(), Some("1234567"));
        let r: RawMention = serde_json::from_str(r#"{"id": "z-9", "text": "hi"}"#).unwrap();
        assert_eq!(r.external_id.as_deref(), Some("z-9"));
        let e = serde_json::from_str::<RawMention>(r#"{"id": 1.5, "text": "hi"}"#).unwrap_err();
        assert!(e.to_string().contains("a string or an integer (field `external_id`)"), "{e}");
    }

    #[test]
    fn links_are_http_only_and_a_bare_host_gets_https() {
        assert_eq!(normalise_link("www.yelp.com/biz/riverside").unwrap(), "https://www.yelp.com/biz/riverside");
        assert_eq!(normalise_link("https://g.page/eastbrook").unwrap(), "https://g.page/eastbrook");
        assert!(normalise_link("javascript:alert(1)").is_err());
        assert!(normalise_link("not a link").is_err());
        let m = RawMention { url: Some("ftp://files.example.org/x".into()), ..raw() }.parse(None, Utc::now()).unwrap();
        assert_eq!(m.url, None);
        assert_eq!(m.notes.len(), 1);
        assert!(m.notes[0].starts_with("link dropped"), "{:?}", m.notes);
    }
}
