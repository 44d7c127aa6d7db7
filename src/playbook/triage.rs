//! The triage engine: site, categories, sentiment, risk, urgency, praise and spam for one
//! mention, with the rules that matched so a card can say why. Compiled once from the
//! playbooks; `triage` itself is pure and allocation-light.

use super::model::Model;
use super::team::Team;
use super::text::{tokens, Speller, Token};
use super::triage_rules::{ModelSettings, RuleKind, TriageBook};
use crate::domain::Mention;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::{Regex, RegexSet};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

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
    /// No risk rule matched, but the model thinks it may be risk: it goes to the risk
    /// channel to be confirmed or dismissed.
    pub possible_risk: bool,
    pub urgent: bool,
    pub spam: bool,
    pub positive: bool,
    pub reasons: Vec<Reason>,
}

struct RuleRef {
    kind: RuleKind,
    id: String,
    praise: bool,
    /// A risk rule whose matches make a case "possible risk", not risk.
    possible: bool,
}

/// Below this many words the model adds no category or flag (a possible risk excepted):
/// "Love this place" is too little to learn from.
const MODEL_MIN_WORDS: usize = 6;

/// Who a phrase belongs to: a rule on its own, or one list of a rule's combo.
#[derive(Debug, Clone, Copy)]
enum Owner {
    Phrase(usize),
    Combo { combo: usize, list: usize },
}

pub struct Triage {
    rules: Vec<RuleRef>,
    /// Normalised phrases (deduplicated), matched on the normalised words of a mention.
    phrases: AhoCorasick,
    phrase_owners: Vec<Vec<Owner>>,
    phrase_starts_negated: Vec<bool>,
    combos: Vec<(usize, super::triage_rules::Combo)>,
    speller: Speller,
    negators: Vec<String>,
    patterns: RegexSet,
    pattern_rule: Vec<usize>,
    pattern_each: Vec<Regex>,
    site_words: AhoCorasick,
    site_word_site: Vec<usize>,
    site_ids: Vec<String>,
    site_listings: Vec<(usize, String)>,
    vader: vader_sentiment::SentimentIntensityAnalyzer<'static>,
    model: Option<(Arc<Model>, ModelSettings)>,
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
    rules.iter().zip(hit).any(|(r, h)| *h && r.kind == kind && !r.possible)
}

fn any_possible(rules: &[RuleRef], hit: &[bool]) -> bool {
    rules.iter().zip(hit).any(|(r, h)| *h && r.kind == RuleKind::Risk && r.possible)
}

/// A mention's words, spelling-corrected against the playbook's vocabulary, joined by single
/// spaces, with where each word starts and ends in that string.
struct Words {
    toks: Vec<Token>,
    joined: String,
    starts: Vec<usize>,
    ends: Vec<usize>,
}

impl Words {
    fn new(text: &str, speller: &Speller) -> Words {
        let mut toks = tokens(text);
        for t in &mut toks {
            if let Some(fixed) = speller.correct(&t.norm) {
                t.norm = fixed.to_string();
            }
        }
        let mut joined = String::with_capacity(text.len());
        let (mut starts, mut ends) = (Vec::with_capacity(toks.len()), Vec::with_capacity(toks.len()));
        for t in &toks {
            if !joined.is_empty() {
                joined.push(' ');
            }
            starts.push(joined.len());
            joined.push_str(&t.norm);
            ends.push(joined.len());
        }
        Words { toks, joined, starts, ends }
    }

    /// The words a match in `joined` covers, if it starts and ends on word edges.
    fn span(&self, start: usize, end: usize) -> Option<(usize, usize)> {
        let a = self.starts.binary_search(&start).ok()?;
        let b = self.ends.binary_search(&end).ok()?;
        Some((a, b))
    }

    /// The original text of words a..=b.
    fn original<'t>(&self, text: &'t str, a: usize, b: usize) -> &'t str {
        &text[self.toks[a].start..self.toks[b].end]
    }
}

impl Triage {
    /// Compiles the rules and trains the model. Patterns were checked at playbook load;
    /// failure here is a bug.
    pub fn compile(book: &TriageBook, team: &Team) -> anyhow::Result<Triage> {
        let mut rules = Vec::new();
        let mut phrase_index: HashMap<String, usize> = HashMap::new();
        let mut phrase_list: Vec<String> = Vec::new();
        let mut phrase_owners: Vec<Vec<Owner>> = Vec::new();
        let mut add = |phrase: &str, owner: Owner| {
            if phrase.is_empty() {
                return;
            }
            let i = *phrase_index.entry(phrase.to_string()).or_insert_with(|| {
                phrase_list.push(phrase.to_string());
                phrase_owners.push(Vec::new());
                phrase_list.len() - 1
            });
            phrase_owners[i].push(owner);
        };
        let mut combos = Vec::new();
        let mut pattern_list = Vec::new();
        let mut pattern_rule = Vec::new();
        for (i, r) in book.rules.iter().enumerate() {
            rules.push(RuleRef { kind: r.kind, id: r.id.clone(), praise: r.praise, possible: r.possible });
            for p in &r.phrases {
                add(p, Owner::Phrase(i));
            }
            for c in &r.combos {
                for (li, list) in c.all.iter().enumerate() {
                    for p in list {
                        add(p, Owner::Combo { combo: combos.len(), list: li });
                    }
                }
                combos.push((i, c.clone()));
            }
            for p in &r.patterns {
                pattern_list.push(format!("(?i){p}"));
                pattern_rule.push(i);
            }
        }
        let negators = book.negators.clone();
        let phrase_starts_negated =
            phrase_list.iter().map(|p| negators.iter().any(|n| p == n || p.starts_with(&format!("{n} ")))).collect();
        let speller = Speller::new(phrase_list.iter().flat_map(|p| p.split(' ')));
        let phrases = AhoCorasickBuilder::new().match_kind(MatchKind::Standard).build(&phrase_list)?;
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
        let model = book.model.as_ref().map(|m| {
            let mut labels: Vec<String> = ["risk", "urgent", "spam", "positive"].map(String::from).to_vec();
            labels.extend(book.rules.iter().filter(|r| r.kind == RuleKind::Category).map(|r| r.id.clone()));
            (Model::train_cached(&m.corpus, &labels), m.clone())
        });
        Ok(Triage {
            rules,
            phrases,
            phrase_owners,
            phrase_starts_negated,
            combos,
            speller,
            negators,
            patterns,
            pattern_rule,
            pattern_each,
            site_words,
            site_word_site,
            site_ids: team.sites.iter().map(|s| s.id.clone()).collect(),
            site_listings,
            vader: vader_sentiment::SentimentIntensityAnalyzer::new(),
            model,
            book: book.clone(),
        })
    }

    /// A category's label ("Wait times") from its id, or the id when no rule has it.
    pub fn category_label<'a>(&'a self, id: &'a str) -> &'a str {
        self.book.category(id).map_or(id, |r| r.label.as_str())
    }

    /// How a reason reads to a person: "On site now: call light", "Poor follow-up
    /// (model): model 0.91: …", "Possible risk (model): model 0.64: …".
    pub fn reason_text(&self, r: &Reason) -> String {
        let label = self.book.rules.iter().find(|x| x.id == r.rule).map_or(r.rule.as_str(), |x| x.label.as_str());
        match r.kind.as_str() {
            "possible_risk" if r.rule == "model" => format!("Possible risk (model): {}", r.matched),
            "model" if r.rule == "positive" => format!("Shout-out (model): {}", r.matched),
            "model" => format!("{label} (model): {}", r.matched),
            _ => format!("{label}: {}", r.matched),
        }
    }

    /// How many labelled mentions the model learnt from (0: rules only).
    pub fn model_trained_on(&self) -> usize {
        self.model.as_ref().map_or(0, |(m, _)| m.trained_on)
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
        // The site named most often; on a tie, the one named first ("went to Eastbrook …
        // ended up at the Riverside ER" is about Eastbrook). The location hint counts first.
        let mut hits = vec![0u32; self.site_ids.len()];
        let mut first: Vec<Option<(usize, String)>> = vec![None; self.site_ids.len()];
        let mut order = 0;
        for hay in [m.location_hint.as_deref(), Some(m.text.as_str())].into_iter().flatten() {
            let bytes = hay.as_bytes();
            // "Riverside ER" also holds the alias "Riverside": one naming, counted once.
            let mut counted: Vec<(usize, usize)> = Vec::new();
            for hit in self.site_words.find_overlapping_iter(hay) {
                if on_word_boundary(bytes, hit.start(), hit.end()) {
                    let s = self.site_word_site[hit.pattern().as_usize()];
                    if counted.iter().any(|&(site, start)| site == s && start == hit.start()) {
                        continue;
                    }
                    counted.push((s, hit.start()));
                    hits[s] += 1;
                    order += 1;
                    first[s].get_or_insert_with(|| (order, hay[hit.start()..hit.end()].to_string()));
                }
            }
        }
        let best = (0..hits.len())
            .filter(|&i| hits[i] > 0)
            .max_by_key(|&i| (hits[i], std::cmp::Reverse(first[i].as_ref().map_or(usize::MAX, |f| f.0))))?;
        first[best].take().map(|(_, word)| (self.site_ids[best].clone(), word))
    }

    /// A negating word ("no", "not", "never", "didn't") among the three words before word
    /// `a`, in the same clause: "no infection", "not going to sue".
    fn negated(&self, w: &Words, a: usize) -> bool {
        let mut k = a;
        for _ in 0..3 {
            if k == 0 || w.toks[k].after_break {
                return false;
            }
            k -= 1;
            let word = w.toks[k].norm.as_str();
            let next = w.toks.get(k + 1).map(|t| t.norm.as_str());
            // "no one", "nobody" and "no more" blame people; they do not negate.
            if self.negators.iter().any(|n| n == word) && !(word == "no" && matches!(next, Some("one" | "more"))) {
                return true;
            }
        }
        false
    }

    pub fn triage(&self, m: &Mention) -> TriageResult {
        let text = m.text.as_str();
        let mut hit = vec![false; self.rules.len()];
        let mut reasons = Vec::new();
        let mut note = |rule: usize, matched: &str, hit: &mut Vec<bool>| {
            if !hit[rule] {
                hit[rule] = true;
                let r = &self.rules[rule];
                let kind = match r.kind {
                    RuleKind::Category => "category",
                    RuleKind::Risk if r.possible => "possible_risk",
                    RuleKind::Risk => "risk",
                    RuleKind::Urgency => "urgency",
                    RuleKind::Spam => "spam",
                };
                reasons.push(Reason { kind: kind.into(), rule: r.id.clone(), matched: matched.to_string() });
            }
        };
        let words = Words::new(text, &self.speller);
        // Where each combo list matched: (combo, list) → word positions and their text.
        let mut combo_hits: HashMap<(usize, usize), Vec<(usize, usize)>> = HashMap::new();
        for h in self.phrases.find_overlapping_iter(&words.joined) {
            let Some((a, b)) = words.span(h.start(), h.end()) else { continue };
            let p = h.pattern().as_usize();
            let negated = !self.phrase_starts_negated[p] && self.negated(&words, a);
            for owner in &self.phrase_owners[p] {
                match *owner {
                    Owner::Phrase(rule) => {
                        let r = &self.rules[rule];
                        let negatable = r.kind != RuleKind::Category || r.praise;
                        if !(negated && negatable) {
                            note(rule, words.original(text, a, b), &mut hit);
                        }
                    }
                    Owner::Combo { combo, list, .. } if !negated => {
                        combo_hits.entry((combo, list)).or_default().push((a, b));
                    }
                    Owner::Combo { .. } => {}
                }
            }
        }
        for (ci, (rule, combo)) in self.combos.iter().enumerate() {
            if hit[*rule] {
                continue;
            }
            let Some(firsts) = combo_hits.get(&(ci, 0)) else { continue };
            'first: for &(a0, b0) in firsts {
                let mut parts = vec![(a0, b0)];
                for li in 1..combo.all.len() {
                    // Near the first part, and other words than the parts found so far:
                    // "fell" alone is not a fall and its injury.
                    let near = combo_hits.get(&(ci, li)).and_then(|occ| {
                        occ.iter().find(|(a, b)| {
                            (a.abs_diff(a0) <= combo.within || b.abs_diff(b0) <= combo.within)
                                && !parts.iter().any(|(pa, pb)| a <= pb && pa <= b)
                        })
                    });
                    match near {
                        Some(x) => parts.push(*x),
                        None => continue 'first,
                    }
                }
                let shown: Vec<&str> = parts.iter().map(|(a, b)| words.original(text, *a, *b)).collect();
                note(*rule, &shown.join(" … "), &mut hit);
                break;
            }
        }
        for i in self.patterns.matches(text).iter() {
            let rule = self.pattern_rule[i];
            if !hit[rule] {
                let matched = self.pattern_each[i].find(text).map(|m| m.as_str()).unwrap_or_default();
                note(rule, matched, &mut hit);
            }
        }

        // The model adds what the rules missed, and says why.
        let mut possible_risk = any_possible(&self.rules, &hit);
        let mut late = Vec::new();
        if let Some((model, set)) = &self.model {
            let explain_from = [set.possible_risk, set.category, set.urgent, set.spam, set.positive]
                .into_iter()
                .fold(f64::MAX, f64::min);
            let verdicts = model.predict(text, m.rating, explain_from as f32 - 1e-6);
            let said = |v: &super::model::Verdict| {
                let mut s = format!("model {:.2}", v.probability);
                if !v.because.is_empty() {
                    s.push_str(": ");
                    s.push_str(&v.because.join(", "));
                }
                s
            };
            let risk_now = any_of(&self.rules, &hit, RuleKind::Risk);
            let short = words.toks.len() < MODEL_MIN_WORDS;
            let risk_probability = verdicts.get("risk").filter(|v| f64::from(v.probability) >= set.possible_risk);
            if let Some(v) = risk_probability.filter(|_| !risk_now && !possible_risk && !short) {
                possible_risk = true;
                late.push(Reason { kind: "possible_risk".into(), rule: "model".into(), matched: said(v) });
            }
            for (i, r) in self.rules.iter().enumerate() {
                let threshold = match r.kind {
                    RuleKind::Category => set.category,
                    RuleKind::Urgency => set.urgent,
                    RuleKind::Spam => set.spam,
                    RuleKind::Risk => continue,
                };
                let label = match r.kind {
                    RuleKind::Category => r.id.as_str(),
                    RuleKind::Urgency => "urgent",
                    _ => "spam",
                };
                // A few words say too little for the model: rules decide short mentions.
                if hit[i] || short || (r.kind != RuleKind::Category && any_of(&self.rules, &hit, r.kind)) {
                    continue;
                }
                if let Some(v) = verdicts.get(label).filter(|v| f64::from(v.probability) >= threshold) {
                    // One reason per family for flags: the first rule of that kind carries it.
                    note(i, &said(v), &mut hit);
                }
            }
            if let Some(v) = verdicts.get("positive").filter(|v| !short && f64::from(v.probability) >= set.positive) {
                late.push(Reason { kind: "model".into(), rule: "positive".into(), matched: said(v) });
            }
        }
        reasons.extend(late);

        let score = self.vader.polarity_scores(text).get("compound").copied().unwrap_or(0.0);
        let praise_hit = self.rules.iter().zip(&hit).any(|(r, h)| *h && r.praise);
        // Four or five stars (or no rating and very warm words), praise and warm words:
        // "the receptionist Maria was so kind" is about the front desk, not a complaint
        // about it.
        let glowing = praise_hit
            && match m.rating {
                Some(r) => r >= 4.0 && score >= self.book.positive_above,
                None => score >= self.book.positive_min_sentiment,
            };
        let complaint =
            !glowing && self.rules.iter().zip(&hit).any(|(r, h)| *h && r.kind == RuleKind::Category && !r.praise);
        let sentiment = match m.rating {
            Some(r) if r <= 2.0 => Sentiment::Negative,
            // VADER reads English only: a 4–5 star review without a complaint is positive
            // whatever the wording ("¡Muchas gracias!").
            Some(r) if r >= 4.0 && (score > self.book.negative_below || !complaint) => Sentiment::Positive,
            _ if score <= self.book.negative_below => Sentiment::Negative,
            _ if score >= self.book.positive_above => Sentiment::Positive,
            // A matched complaint in flat wording ("on hold for 40 minutes") is still a complaint.
            _ if complaint || any_of(&self.rules, &hit, RuleKind::Risk) || possible_risk => Sentiment::Negative,
            _ => Sentiment::Neutral,
        };

        let any = |k: RuleKind| any_of(&self.rules, &hit, k);
        let categories: Vec<String> = self
            .rules
            .iter()
            .zip(&hit)
            .filter(|(r, h)| **h && r.kind == RuleKind::Category && (r.praise || !glowing))
            .map(|(r, _)| r.id.clone())
            .collect();
        if glowing {
            // The card's tags say the same as the case's categories.
            reasons.retain(|r| r.kind != "category" || categories.contains(&r.rule));
        }
        let praise = self.rules.iter().zip(&hit).any(|(r, h)| *h && r.praise);
        let risk = any(RuleKind::Risk);
        if risk {
            // Confirmed risk says it all; a weaker sign would only repeat it.
            possible_risk = false;
            reasons.retain(|r| r.kind != "possible_risk");
        }
        let urgent = any(RuleKind::Urgency);
        let spam = any(RuleKind::Spam) && !risk && !urgent && !possible_risk;
        let model_positive = reasons.iter().any(|r| r.kind == "model" && r.rule == "positive");
        let good_signal = praise
            || model_positive
            || m.rating.is_some_and(|r| r >= self.book.positive_min_rating)
            || score >= self.book.positive_min_sentiment;
        let positive = good_signal
            && !complaint
            && !risk
            && !possible_risk
            && !urgent
            && !spam
            && sentiment != Sentiment::Negative;

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
            possible_risk,
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
    fn waiting_for_a_call_back_is_not_being_on_site() {
        let (t, _) = triage();
        let r = t.triage(&mention(
            "Called Northgate billing 4 times, each time someone will call me back. Still waiting.",
            Some(1.0),
            None,
        ));
        assert!(!r.urgent, "{:?}", r.reasons);
        let here = t.triage(&mention("Still waiting in the Riverside ER with my dad, nobody has come", None, None));
        assert!(here.urgent, "{:?}", here.reasons);
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
    fn praise_of_the_front_desk_is_praise_not_a_front_desk_complaint() {
        let (t, _) = triage();
        let r = t.triage(&mention(
            "Huge thank you to the front desk at Northgate, Rosa was so kind and helpful",
            Some(5.0),
            None,
        ));
        assert!(r.positive, "{r:?}");
        assert_eq!(r.categories, ["praise"], "a glowing review files no complaint");
        assert!(!r.reasons.iter().any(|x| x.rule == "front_office"), "nor shows one: {:?}", r.reasons);
        let unrated =
            t.triage(&mention("Shout out to the wonderful front desk team at Eastbrook, amazing!", None, None));
        assert_eq!(unrated.categories, ["praise"]);
        let rude = t.triage(&mention("The front desk at Northgate was rude to my mother", Some(1.0), None));
        assert!(rude.categories.contains(&"front_office".to_string()));
    }

    #[test]
    fn a_few_words_are_never_possible_risk_on_the_model_alone() {
        let (t, _) = triage();
        let r = t.triage(&mention("Billing sent me two bills", Some(1.0), None));
        assert!(!r.risk && !r.possible_risk, "{:?}", r.reasons);
        // A rule still reads short mentions.
        assert!(t.triage(&mention("Wrong medication given", None, None)).risk);
    }

    #[test]
    fn five_stars_of_praise_in_spanish_are_a_shout_out() {
        let (t, _) = triage();
        let r = t.triage(&mention(
            "Excelente atención en Eastbrook, la enfermera fue muy amable. ¡Muchas gracias!",
            Some(5.0),
            None,
        ));
        assert_eq!(r.sentiment, Sentiment::Positive);
        assert!(r.positive, "{r:?}");
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
    fn a_mention_naming_two_sites_is_about_the_one_named_first() {
        let (t, _) = triage();
        let text = "Went to Eastbrook, ended up at the Riverside ER. The doctor missed my broken ankle.";
        assert_eq!(t.triage(&mention(text, Some(1.0), None)).site.as_deref(), Some("eastbrook"));
        // Named more often wins: "Riverside ER" counts once, not as two names.
        let text = "Riverside ER sent me to Eastbrook for an x-ray; back at Riverside they lost it.";
        assert_eq!(t.triage(&mention(text, Some(1.0), None)).site.as_deref(), Some("riverside"));
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
