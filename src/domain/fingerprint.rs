//! Near-duplicate fingerprints for storm handling: a 64-bit SimHash over word pairs of the
//! normalised text (case, retweet prefixes, @handles, links and punctuation removed), so a
//! retweet, a quote or a copy-paste of the same complaint lands within a few bits.

/// Words of the text that carry meaning for near-duplicate detection.
pub fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter(|w| {
            !w.starts_with('@') && !w.starts_with("http://") && !w.starts_with("https://") && !w.starts_with('#')
        })
        .map(|w| w.chars().filter(|c| c.is_alphanumeric()).collect::<String>().to_lowercase())
        .filter(|w| !w.is_empty() && w != "rt" && w != "via")
        .collect()
}

fn hash64(s: &str) -> u64 {
    // FNV-1a: stable across processes and versions (unlike std's randomised hasher).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The SimHash of the text, or `None` when it is too short to compare safely.
pub fn simhash(text: &str, min_words: usize) -> Option<i64> {
    let w = words(text);
    if w.len() < min_words.max(2) {
        return None;
    }
    let mut acc = [0i32; 64];
    for pair in w.windows(2) {
        let h = hash64(&format!("{} {}", pair[0], pair[1]));
        for (bit, slot) in acc.iter_mut().enumerate() {
            *slot += if h >> bit & 1 == 1 { 1 } else { -1 };
        }
    }
    let v = acc.iter().enumerate().fold(0u64, |v, (bit, s)| if *s > 0 { v | 1 << bit } else { v });
    Some(v as i64)
}

pub fn distance(a: i64, b: i64) -> u32 {
    ((a ^ b) as u64).count_ones()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGINAL: &str =
        "Waited 6 hours in the Riverside ER with my daughter and nobody even checked on her. Disgraceful.";

    #[test]
    fn retweets_quotes_and_copies_of_a_complaint_are_near() {
        let a = simhash(ORIGINAL, 6).unwrap();
        for variant in [
            format!("RT @angrydad: {ORIGINAL}"),
            format!("{} https://t.co/xyz #hospitalfail", ORIGINAL.to_uppercase()),
            ORIGINAL.replace("Disgraceful.", "Disgraceful!!!"),
            format!("This. {ORIGINAL}"),
        ] {
            let d = distance(a, simhash(&variant, 6).unwrap());
            assert!(d <= 10, "{variant:?}: {d} bits apart");
        }
    }

    #[test]
    fn different_complaints_are_far_and_short_texts_are_not_fingerprinted() {
        let a = simhash(ORIGINAL, 6).unwrap();
        let b =
            simhash("Northgate billed me twice for one visit and nobody answers the billing line at all", 6).unwrap();
        assert!(distance(a, b) > 16, "{} bits", distance(a, b));
        // Two different people opening with the same words are not one storm.
        let c = simhash("Waited 6 hours in the Riverside ER and then they billed me twice for the visit", 6).unwrap();
        assert!(distance(a, c) > 10, "{} bits", distance(a, c));
        assert_eq!(simhash("so bad", 6), None);
    }
}
