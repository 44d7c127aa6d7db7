//! `Span`: a human-written duration from a playbook ("15m", "1h 30m", "3d"), parsed once.

use std::fmt;
use std::str::FromStr;

/// A positive duration written the way a PX lead writes it in a playbook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(std::time::Duration);

impl Span {
    pub fn from_secs(secs: u64) -> Self {
        Span(std::time::Duration::from_secs(secs))
    }
    pub fn from_millis(ms: u64) -> Self {
        Span(std::time::Duration::from_millis(ms))
    }
    pub fn as_std(&self) -> std::time::Duration {
        self.0
    }
    pub fn as_millis(&self) -> i64 {
        self.0.as_millis() as i64
    }
    pub fn as_chrono(&self) -> chrono::Duration {
        chrono::Duration::milliseconds(self.as_millis())
    }
}

impl FromStr for Span {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty duration; write e.g. \"15m\", \"2h\" or \"3d\"".into());
        }
        let d = humantime::parse_duration(s)
            .map_err(|e| format!("bad duration {s:?} ({e}); write e.g. \"15m\", \"2h\" or \"3d\""))?;
        if d.is_zero() {
            return Err(format!("duration {s:?} must be greater than zero"));
        }
        Ok(Span(d))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> serde::Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playbook_durations_parse_in_the_units_leads_write() {
        assert_eq!("15m".parse::<Span>().unwrap(), Span::from_secs(900));
        assert_eq!("1h 30m".parse::<Span>().unwrap(), Span::from_secs(5400));
        assert_eq!("3d".parse::<Span>().unwrap(), Span::from_secs(3 * 86400));
    }

    #[test]
    fn zero_empty_and_unitless_durations_are_refused_with_an_example() {
        for bad in ["", "0m", "15", "soon"] {
            let err = bad.parse::<Span>().unwrap_err();
            assert!(err.contains("duration"), "{bad}: {err}");
        }
    }
}
