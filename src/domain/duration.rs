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
        // Only s, m, h, d and w: "15M" (months to humantime, minutes to a person) and
        // spelled-out units are refused rather than guessed.
        let hint = "write e.g. \"15m\", \"2h\", \"3d\" or \"2w\" (units s, m, h, d, w)";
        let mut total: u64 = 0;
        let mut parts = 0;
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            let (num, after) = rest.split_at(digits);
            let unit_len = after.len() - after.trim_start_matches(|c: char| c.is_alphabetic()).len();
            let (unit, after) = after.split_at(unit_len);
            let n: u64 = num.parse().map_err(|_| format!("bad duration {s:?}; {hint}"))?;
            let secs = match unit {
                "s" => 1,
                "m" => 60,
                "h" => 3_600,
                "d" => 86_400,
                "w" => 7 * 86_400,
                "M" => return Err(format!("bad duration {s:?}: \"M\" could mean months or minutes; {hint}")),
                "" => return Err(format!("bad duration {s:?}: the number needs a unit; {hint}")),
                u => return Err(format!("bad duration {s:?}: unknown unit {u:?}; {hint}")),
            };
            total = n
                .checked_mul(secs)
                .and_then(|x| total.checked_add(x))
                .ok_or_else(|| format!("duration {s:?} is too long"))?;
            parts += 1;
            rest = after.trim_start();
        }
        if parts == 0 {
            return Err(format!("bad duration {s:?}; {hint}"));
        }
        let d = std::time::Duration::from_secs(total);
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
        assert_eq!("2w".parse::<Span>().unwrap(), Span::from_secs(14 * 86400));
        assert_eq!("1h30m".parse::<Span>().unwrap(), Span::from_secs(5400));
        assert!("15M".parse::<Span>().unwrap_err().contains("months or minutes"));
    }

    #[test]
    fn zero_empty_and_unitless_durations_are_refused_with_an_example() {
        for bad in ["", "0m", "15", "soon", "15M", "2 hours", "1.5h", "90min"] {
            let err = bad.parse::<Span>().unwrap_err();
            assert!(err.contains("duration"), "{bad}: {err}");
        }
    }
}
