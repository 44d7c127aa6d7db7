//! Text normalisation shared by the triage rules and the triage model: words in lower case
//! with accents folded ("médico" → "medico", curly apostrophes straightened), each with its
//! place in the original text, and a misspelling-tolerant comparison of two words.

/// One word of a mention, normalised, with its byte range in the original text.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub norm: String,
    pub start: usize,
    pub end: usize,
    /// A sentence or clause break (. ! ? ; , : or a line break) lies between this word and
    /// the one before it.
    pub after_break: bool,
}

fn fold(c: char) -> Option<char> {
    let c = match c {
        'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' | 'Á' | 'À' | 'Â' | 'Ä' | 'Ã' => 'a',
        'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' | 'Ë' => 'e',
        'í' | 'ì' | 'î' | 'ï' | 'Í' | 'Ì' | 'Î' | 'Ï' => 'i',
        'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'Ó' | 'Ò' | 'Ô' | 'Ö' | 'Õ' => 'o',
        'ú' | 'ù' | 'û' | 'ü' | 'Ú' | 'Ù' | 'Û' | 'Ü' => 'u',
        'ñ' | 'Ñ' => 'n',
        'ç' | 'Ç' => 'c',
        '’' | '‘' | '`' => '\'',
        c => c,
    };
    if c.is_alphanumeric() || c == '\'' {
        Some(c.to_lowercase().next().unwrap_or(c))
    } else {
        None
    }
}

/// Splits text into normalised words. An apostrophe inside a word stays ("didn't"); one at
/// either end is dropped.
pub fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = 0;
    let mut brk = false;
    let flush = |cur: &mut String, start: usize, end: usize, brk: &mut bool, out: &mut Vec<Token>| {
        let word = cur.trim_matches('\'');
        if !word.is_empty() {
            out.push(Token { norm: word.to_string(), start, end, after_break: *brk });
            *brk = false;
        }
        cur.clear();
    };
    for (i, c) in text.char_indices() {
        match fold(c) {
            Some(f) => {
                if cur.is_empty() {
                    start = i;
                }
                cur.push(f);
            }
            None => {
                if !cur.is_empty() {
                    flush(&mut cur, start, i, &mut brk, &mut out);
                }
                if matches!(c, '.' | '!' | '?' | ';' | ',' | ':' | '\n' | '¡' | '¿') {
                    brk = true;
                }
            }
        }
    }
    if !cur.is_empty() {
        flush(&mut cur, start, text.len(), &mut brk, &mut out);
    }
    out
}

/// A phrase from a playbook in the same form as mention words: "Check-in staff" →
/// "check in staff".
pub fn normalise_phrase(phrase: &str) -> String {
    tokens(phrase).into_iter().map(|t| t.norm).collect::<Vec<_>>().join(" ")
}

/// Optimal-string-alignment distance, giving up (None) beyond `max`.
pub fn distance_within(a: &str, b: &str, max: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    osa_within(&a, &b, max)
}

/// `distance_within` on letters already split out; the three rows live on the stack for
/// words of up to 47 letters (every word a speller compares), so a comparison allocates
/// nothing.
fn osa_within(a: &[char], b: &[char], max: usize) -> Option<usize> {
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    let (n, m) = (a.len(), b.len());
    let mut stack = [0usize; 3 * 48];
    let mut heap = Vec::new();
    let rows: &mut [usize] = if m < 48 {
        &mut stack[..3 * (m + 1)]
    } else {
        heap.resize(3 * (m + 1), 0);
        &mut heap
    };
    let (mut prev2, rest) = rows.split_at_mut(m + 1);
    let (mut prev, mut cur) = rest.split_at_mut(m + 1);
    for (j, v) in prev.iter_mut().enumerate() {
        *v = j;
    }
    for i in 1..=n {
        cur[0] = i;
        let mut row_min = cur[0];
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(prev2[j - 2] + 1);
            }
            cur[j] = v;
            row_min = row_min.min(v);
        }
        if row_min > max {
            return None;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    Some(prev[m]).filter(|d| *d <= max)
}

/// How many typing slips a word of this length may carry and still count: none below six
/// letters (too many real words lie one letter apart), one up to eight, two beyond.
pub fn slips_allowed(len: usize) -> usize {
    match len {
        0..=5 => 0,
        6..=8 => 1,
        _ => 2,
    }
}

/// The words a misspelt word may stand for: the playbook's own vocabulary, bucketed by
/// first letter (people rarely mistype the first letter), each with its letters split out
/// and sorted once.
#[derive(Debug, Default, Clone)]
pub struct Speller {
    exact: std::collections::HashSet<String>,
    by_first: std::collections::HashMap<char, Vec<Candidate>>,
}

#[derive(Debug, Clone)]
struct Candidate {
    word: String,
    letters: Vec<char>,
    sorted: Vec<char>,
    mask: u32,
}

/// Which letters a word has, one bit each (other characters share the top bits). One slip
/// changes at most two bits, so words whose masks differ in more bits than twice the slips
/// allowed cannot be a slip of each other: most of the vocabulary is ruled out without
/// comparing letters.
fn letter_mask(letters: &[char]) -> u32 {
    letters.iter().fold(0, |m, c| match c {
        'a'..='z' => m | 1 << (*c as u32 - 'a' as u32),
        c => m | 1 << (26 + *c as u32 % 6),
    })
}

impl Speller {
    pub fn new<'a>(words: impl IntoIterator<Item = &'a str>) -> Speller {
        let mut s = Speller::default();
        for w in words {
            let letters: Vec<char> = w.chars().collect();
            if s.exact.insert(w.to_string()) && letters.len() >= 6 {
                let mut sorted = letters.clone();
                sorted.sort_unstable();
                let mask = letter_mask(&letters);
                s.by_first.entry(letters[0]).or_default().push(Candidate {
                    word: w.to_string(),
                    letters,
                    sorted,
                    mask,
                });
            }
        }
        s
    }

    /// The vocabulary word this word is a slip of, if any (never for a word it knows).
    pub fn correct(&self, word: &str) -> Option<&str> {
        if self.exact.contains(word) {
            return None;
        }
        let letters: Vec<char> = word.chars().collect();
        let len = letters.len();
        let max = slips_allowed(len);
        if max == 0 || letters.iter().any(char::is_ascii_digit) {
            return None;
        }
        let bucket = self.by_first.get(&letters[0])?;
        let mask = letter_mask(&letters);
        let mut sorted: Option<Vec<char>> = None;
        let mut best: Option<(usize, &str)> = None;
        for cand in bucket {
            let clen = cand.letters.len();
            let allowed = max.min(slips_allowed(clen));
            if clen.abs_diff(len) > allowed || (cand.mask ^ mask).count_ones() as usize > 2 * allowed {
                continue;
            }
            // In words under eight letters a changed letter too often makes another real
            // word ("showed"/"shoved", "wanted"/"waited"): there only a dropped, doubled or
            // swapped letter counts as a slip.
            if len < 8 && clen == len {
                let sorted = sorted.get_or_insert_with(|| {
                    let mut s = letters.clone();
                    s.sort_unstable();
                    s
                });
                if *sorted != cand.sorted {
                    continue;
                }
            }
            if let Some(d) = osa_within(&letters, &cand.letters, allowed) {
                if best.is_none_or(|(bd, _)| d < bd) {
                    best = Some((d, cand.word.as_str()));
                }
            }
        }
        best.map(|(_, w)| w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lowercased_with_accents_folded_and_breaks_noted() {
        let t = tokens("El MÉDICO didn’t listen. Check-in");
        let words: Vec<&str> = t.iter().map(|t| t.norm.as_str()).collect();
        assert_eq!(words, ["el", "medico", "didn't", "listen", "check", "in"]);
        assert!(t[4].after_break && !t[3].after_break);
        assert_eq!(&"El MÉDICO didn’t listen. Check-in"[t[1].start..t[1].end], "MÉDICO");
        assert_eq!(normalise_phrase("Check-in staff"), "check in staff");
    }

    #[test]
    fn slips_are_tolerated_only_in_long_enough_words() {
        let s = Speller::new(["receptionist", "appointment", "prescription", "doctor", "bill", "waited"]);
        assert_eq!(s.correct("recepionist"), Some("receptionist"));
        assert_eq!(s.correct("apointment"), Some("appointment"));
        assert_eq!(s.correct("perscription"), Some("prescription"));
        assert_eq!(s.correct("docter"), None, "a changed letter in a short word may be another word");
        assert_eq!(s.correct("wanted"), None, "not \"waited\"");
        assert_eq!(s.correct("waitde"), Some("waited"), "a swapped pair is a slip");
        assert_eq!(s.correct("recieved"), None, "not in this vocabulary");
        assert_eq!(s.correct("will"), None, "short words need an exact match");
        assert_eq!(s.correct("doctor"), None, "a known word is left alone");
        assert_eq!(s.correct("xeceptionist"), None, "the first letter must match");
        assert_eq!(distance_within("abc", "abcdef", 2), None);
    }
}
