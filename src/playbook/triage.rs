//! The triage engine: site, categories, sentiment, risk, urgency, praise and spam for one
//! mention, with the rules that matched so a card can say why. Compiled once from the
//! playbooks; `triage` itself is pure and allocation-light.

use super::team::Team;
use super::triage_rules::{RuleKind, TriageBook};
use crate::domain::Mention;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::{Regex, RegexSet};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sentiment {
    Negative,
    Neutral,
    Positive,
}

impl std::str::FromStr for Sentiment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "negative" => Ok(Sentiment::Negative),
            "neutral" => Ok(Sentiment::Neutral),
            "positive" => Ok(Sentiment::Positive),
            _ => Err(format!("unknown sentiment {s:?}; one of negative, neutral, positive")),
        }
    }
}

impl Sentiment {
    pub fn as_str(&self) -> &'static str {
        match self {
            Sentiment::Negative => "negative",
            Sentiment::Neutral => "neutral",
            Sentiment::Positive => "positive",
        }
    }
}

/// Why a flag or category was set: which rule, on which words.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Reason {
    pub kind: String,
    pub rule: String,
    pub matched: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TriageResult {
    pub site: Option<String>,
    pub categories: Vec<String>,
    /// VADER compound score in [-1, 1].
    pub sentiment_score: f64,
    pub sentiment: Sentiment,
    pub risk: bool,
    pub urgent: bool,
    pub spam: bool,
    pub positive: bool,
    pub reasons: Vec<Reason>,
}

struct RuleRef {
    kind: RuleKind,
    id: String,
    praise: bool,
}

pub struct Triage {
    rules: Vec<RuleRef>,
    phrases: AhoCorasick,
    phrase_rule: Vec<usize>,
    patterns: RegexSet,
    pattern_rule: Vec<usize>,
    pattern_each: Vec<Regex>,
    site_words: AhoCorasick,
    site_word_site: Vec<usize>,
    site_ids: Vec<String>,
    site_listings: Vec<(usize, String)>,
    vader: vader_sentiment::SentimentIntensityAnalyzer<'static>,
    book: TriageBook,
}

impl std::fmt::Debug for Triage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Triage").field("rules", &self.rules.len()).finish()
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// True when text[start..end] is not glued to letters on either side ("er" must not match "every").
fn on_word_boundary(text: &[u8], start: usize, end: usize) -> bool {
    let before = start == 0 || !is_word_byte(text[start - 1]);
    let after = end >= text.len() || !is_word_byte(text[end]);
    before && after
}

fn any_of(rules: &[RuleRef], hit: &[bool], kind: RuleKind) -> bool {
    rules.iter().zip(hit).any(|(r, h)| *h && r.kind == kind)
}

impl Triage {
    /// Compiles the rules. Patterns were checked at playbook load; failure here is a bug.
    pub fn compile(book: &TriageBook, team: &Team) -> anyhow::Result<Triage> {
        let mut rules = Vec::new();
        let mut phrase_list = Vec::new();
        let mut phrase_rule = Vec::new();
        let mut pattern_list = Vec::new();
        let mut pattern_rule = Vec::new();
        for (i, r) in book.rules.iter().enumerate() {
            rules.push(RuleRef { kind: r.kind, id: r.id.clone(), praise: r.praise });
            for p in &r.phrases {
                phrase_list.push(p.clone());
                phrase_rule.push(i);
            }
            for p in &r.patterns {
                pattern_list.push(format!("(?i){p}"));
                pattern_rule.push(i);
            }
        }
        let phrases = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&phrase_list)?;
        let patterns = RegexSet::new(&pattern_list)?;
        let pattern_each = pattern_list.iter().map(|p| Regex::new(p)).collect::<Result<_, _>>()?;

        let mut words = Vec::new();
        let mut site_word_site = Vec::new();
        let mut site_listings = Vec::new();
        for (i, s) in team.sites.iter().enumerate() {
            for w in std::iter::once(&s.name).chain(&s.aliases).chain(&s.keywords) {
                words.push(w.to_lowercase());
                site_word_site.push(i);
            }
            for l in &s.listings {
                site_listings.push((i, l.to_lowercase()));
            }
        }
        let site_words =
            AhoCorasickBuilder::new().ascii_case_insensitive(true).match_kind(MatchKind::Standard).build(&words)?;
        Ok(Triage {
            rules,
            phrases,
            phrase_rule,
            patterns,
            pattern_rule,
            pattern_each,
            site_words,
            site_word_site,
            site_ids: team.sites.iter().map(|s| s.id.clone()).collect(),
            site_listings,
            vader: vader_sentiment::SentimentIntensityAnalyzer::new(),
            book: book.clone(),
        })
    }

    fn detect_site(&self, m: &Mention) -> Option<(String, String)> {
        // The source's own mapping (page, location, business) is certain.
        if let Some(site) = m.site.as_ref().filter(|s| self.site_ids.contains(s)) {
            return Some((site.clone(), "source mapping".into()));
        }
        // A listing URL (the Google/Yelp page reviewed) is the strongest signal.
        if let Some(url) = &m.url {
            let url = url.to_lowercase();
            if let Some((i, l)) = self.site_listings.iter().find(|(_, l)| url.contains(l.as_str())) {
                return Some((self.site_ids[*i].clone(), l.clone()));
            }
        }
        let mut hits = vec![0u32; self.site_ids.len()];
        let mut first_word: Vec<Option<String>> = vec![None; self.site_ids.len()];
        for hay in [m.location_hint.as_deref(), Some(m.text.as_str())].into_iter().flatten() {
            let bytes = hay.as_bytes();
            for hit in self.site_words.find_overlapping_iter(hay) {
                if on_word_boundary(bytes, hit.start(), hit.end()) {
                    let s = self.site_word_site[hit.pattern().as_usize()];
                    hits[s] += 1;
                    first_word[s].get_or_insert_with(|| hay[hit.start()..hit.end()].to_string());
                }
            }
        }
        let (best, n) = hits.iter().enumerate().max_by_key(|(i, n)| (**n, std::cmp::Reverse(*i)))?;
        (*n > 0).then(|| (self.site_ids[best].clone(), first_word[best].clone().unwrap_or_default()))
    }

    pub fn triage(&self, m: &Mention) -> TriageResult {
        let text = m.text.as_str();
        let bytes = text.as_bytes();
        let mut hit = vec![false; self.rules.len()];
        let mut reasons = Vec::new();
        let mut note = |rule: usize, matched: &str, hit: &mut Vec<bool>| {
            if !hit[rule] {
                hit[rule] = true;
                let r = &self.rules[rule];
                let kind = match r.kind {
                    RuleKind::Category => "category",
                    RuleKind::Risk => "risk",
                    RuleKind::Urgency => "urgency",
                    RuleKind::Spam => "spam",
                };
                reasons.push(Reason { kind: kind.into(), rule: r.id.clone(), matched: matched.to_string() });
            }
        };
        for h in self.phrases.find_overlapping_iter(text) {
            if on_word_boundary(bytes, h.start(), h.end()) {
                note(self.phrase_rule[h.pattern().as_usize()], &text[h.start()..h.end()], &mut hit);
            }
        }
        for i in self.patterns.matches(text).iter() {
            let rule = self.pattern_rule[i];
            if !hit[rule] {
                let matched = self.pattern_each[i].find(text).map(|m| m.as_str()).unwrap_or_default();
                note(rule, matched, &mut hit);
            }
        }

        let score = self.vader.polarity_scores(text).get("compound").copied().unwrap_or(0.0);
        let complaint = self.rules.iter().zip(&hit).any(|(r, h)| *h && r.kind == RuleKind::Category && !r.praise);
        let sentiment = match m.rating {
            Some(r) if r <= 2.0 => Sentiment::Negative,
            Some(r) if r >= 4.0 && score > self.book.negative_below => Sentiment::Positive,
            _ if score <= self.book.negative_below => Sentiment::Negative,
            _ if score >= self.book.positive_above => Sentiment::Positive,
            // A matched complaint in flat wording ("on hold for 40 minutes") is still a complaint.
            _ if complaint || any_of(&self.rules, &hit, RuleKind::Risk) => Sentiment::Negative,
            _ => Sentiment::Neutral,
        };

        let any = |k: RuleKind| any_of(&self.rules, &hit, k);
        let categories: Vec<String> = self
            .rules
            .iter()
            .zip(&hit)
            .filter(|(r, h)| **h && r.kind == RuleKind::Category)
            .map(|(r, _)| r.id.clone())
            .collect();
        let praise = self.rules.iter().zip(&hit).any(|(r, h)| *h && r.praise);
        let risk = any(RuleKind::Risk);
        let urgent = any(RuleKind::Urgency);
        let spam = any(RuleKind::Spam) && !risk && !urgent;
        let good_signal = praise
            || m.rating.is_some_and(|r| r >= self.book.positive_min_rating)
            || score >= self.book.positive_min_sentiment;
        let positive = good_signal && !complaint && !risk && !urgent && !spam && sentiment != Sentiment::Negative;

        let site = self.detect_site(m);
        if let Some((id, word)) = &site {
            reasons.push(Reason { kind: "site".into(), rule: id.clone(), matched: word.clone() });
        }
        TriageResult {
            site: site.map(|(id, _)| id),
            categories,
            sentiment_score: score,
            sentiment,
            risk,
            urgent,
            spam,
            positive,
            reasons,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RawMention;
    use std::path::Path;

    fn triage() -> (Triage, crate::playbook::Playbooks) {
        let pb = crate::playbook::Playbooks::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks")).unwrap();
        (Triage::compile(&pb.triage_rules, &pb.team).unwrap(), pb)
    }

    fn mention(text: &str, rating: Option<f64>, url: Option<&str>) -> Mention {
        RawMention {
            source: Some("google".into()),
            external_id: Some("1".into()),
            text: Some(text.into()),
            rating,
            url: url.map(str::to_string),
            ..Default::default()
        }
        .parse(None, chrono::Utc::now())
        .unwrap()
    }

    #[test]
    fn a_clinical_harm_report_with_a_legal_threat_is_risk_and_names_the_words() {
        let (t, _) = triage();
        let r = t.triage(&mention("They gave my dad the wrong medication at Riverside. Calling a lawyer.", None, None));
        assert!(r.risk);
        assert_eq!(r.site.as_deref(), Some("riverside"));
        let rules: Vec<&str> = r.reasons.iter().filter(|x| x.kind == "risk").map(|x| x.rule.as_str()).collect();
        assert_eq!(rules, ["clinical_harm", "legal_threat"]);
    }

    #[test]
    fn someone_waiting_on_site_now_is_urgent() {
        let (t, _) = triage();
        let r = t.triage(&mention("sitting in the ER at Eastbrook right now, been here 3 hours now", None, None));
        assert!(r.urgent);
        assert_eq!(r.site.as_deref(), Some("eastbrook"));
    }

    #[test]
    fn phrases_match_whole_words_only() {
        let (t, _) = triage();
        // "sue" must not match inside "issue", "bill" not inside "billboard".
        let r = t.triage(&mention("Small issue with the billboard near the road, great people though", None, None));
        assert!(!r.risk);
        assert!(!r.categories.contains(&"billing".to_string()), "{:?}", r.categories);
    }

    #[test]
    fn praise_with_five_stars_is_a_shout_out_but_mixed_feelings_are_not() {
        let (t, _) = triage();
        let r = t.triage(&mention("Thank you to the nurses at Northgate, so kind!", Some(5.0), None));
        assert!(r.positive);
        assert_eq!(r.sentiment, Sentiment::Positive);
        let mixed =
            t.triage(&mention("Nurses were so kind but we waited 5 hours in the waiting room", Some(3.0), None));
        assert!(!mixed.positive);
        assert!(mixed.categories.contains(&"wait_times".to_string()));
    }

    #[test]
    fn a_flatly_worded_complaint_is_negative() {
        let (t, _) = triage();
        let r = t.triage(&mention("The phone line keeps me on hold for 40 minutes to book an appointment", None, None));
        assert_eq!(r.sentiment, Sentiment::Negative);
    }

    #[test]
    fn the_review_listing_url_decides_the_site() {
        let (t, _) = triage();
        let r = t.triage(&mention(
            "Terrible experience.",
            Some(1.0),
            Some("https://www.yelp.com/biz/eastbrook-urgent-care?x=1"),
        ));
        assert_eq!(r.site.as_deref(), Some("eastbrook"));
        assert_eq!(r.sentiment, Sentiment::Negative);
    }

    #[test]
    fn promotions_are_spam_unless_they_carry_risk() {
        let (t, _) = triage();
        assert!(t.triage(&mention("free followers, click here", None, None)).spam);
        assert!(!t.triage(&mention("click here: my lawyer says malpractice", None, None)).spam);
    }

    #[test]
    fn situations_route_risk_before_everything_else() {
        let (t, pb) = triage();
        let m = mention("Wrong dose given at Riverside, still waiting right now", None, None);
        let r = t.triage(&m);
        assert_eq!(pb.situations.pick(&r, &m).id, "clinical-risk");
        let m = mention("Love this place", Some(5.0), None);
        assert_eq!(pb.situations.pick(&t.triage(&m), &m).id, "shout-out");
    }
}
