//! The compliance check for public replies: pure, no I/O. A public answer acknowledges and
//! apologises, never argues, never confirms that the author is a patient or says anything
//! about their care (HIPAA), never names clinical staff, and moves the conversation
//! offline to a contact the site allows. Each finding carries a severity, the offending
//! span and a suggestion.

use regex::{Regex, RegexBuilder};
use serde::Serialize;
use std::sync::LazyLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The reply may not be marked responded unless a lead overrides.
    Block,
    /// Worth a second look; does not stop the reply.
    Warn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// "your visit", "when you were here", "our records show".
    PatientRelationship,
    /// Conditions, medications, dates of service, record/account numbers, dates of birth.
    Phi,
    /// Arguing, blaming, disputing the account.
    Defensive,
    /// Clinical staff named, or staff other than the site's designated point people.
    StaffName,
    /// A phone number the site does not allow publicly.
    PrivatePhone,
    /// Longer than the platform or template allows.
    TooLong,
    /// No email or allowed phone to take the conversation offline.
    NoOfflineRoute,
    /// The same text was already posted publicly in the last 24 hours.
    Canned,
    /// A phrase the PX lead listed as never to be posted (reply-check.yaml).
    BlockedPhrase,
}

impl Rule {
    pub fn as_str(&self) -> &'static str {
        match self {
            Rule::PatientRelationship => "patient_relationship",
            Rule::Phi => "phi",
            Rule::Defensive => "defensive",
            Rule::StaffName => "staff_name",
            Rule::PrivatePhone => "private_phone",
            Rule::TooLong => "too_long",
            Rule::NoOfflineRoute => "no_offline_route",
            Rule::Canned => "canned",
            Rule::BlockedPhrase => "blocked_phrase",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: Rule,
    pub severity: Severity,
    /// Byte range of the offending text in the reply (empty for whole-reply findings).
    pub start: usize,
    pub end: usize,
    pub excerpt: String,
    pub suggestion: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Block => "BLOCK",
            Severity::Warn => "warn",
        };
        if self.excerpt.is_empty() {
            write!(f, "{sev} {}: {}", self.rule.as_str(), self.suggestion)
        } else {
            write!(f, "{sev} {} \"{}\": {}", self.rule.as_str(), self.excerpt, self.suggestion)
        }
    }
}

/// What the check needs to know besides the text.
#[derive(Debug, Clone, Default)]
pub struct ReplyContext {
    /// Character limit: the smaller of the platform's and the template's.
    pub max_chars: Option<usize>,
    /// The site's phone, only if it may be posted publicly.
    pub public_phone: Option<String>,
    /// Other numbers that may be posted (the organisation's public line).
    pub other_public_phones: Vec<String>,
    /// Names that may appear (the site's designated point people, the signing agent).
    pub allowed_names: Vec<String>,
    /// Names of staff that must not appear publicly (from the team file).
    pub staff_names: Vec<String>,
    /// Public replies posted in the last 24 hours.
    pub recent_replies: Vec<String>,
    /// The PX lead's word lists (reply-check.yaml); empty: the built-in lists only.
    pub vocabulary: std::sync::Arc<Vocabulary>,
    /// A thank-you to praise: it needs no offline route.
    pub praise: bool,
    /// Where the reply will be posted (the mention's source): decides whether a
    /// direct-message invitation is an offline route.
    pub platform: Option<String>,
}

/// Word lists a PX lead keeps (reply-check.yaml), compiled: each list is one
/// case-insensitive, whole-word alternation.
#[derive(Debug, Clone, Default)]
pub struct Vocabulary {
    /// (pattern, what it is: "a medication", …, rule).
    terms: Vec<(Regex, String, Rule)>,
    dm_invitation: Option<Regex>,
    dm_platforms: Vec<String>,
}

fn alternation(words: &[String]) -> Option<Regex> {
    let alts: Vec<String> =
        words.iter().filter(|w| !w.trim().is_empty()).map(|w| regex::escape(w.trim()).replace(' ', r"\s+")).collect();
    (!alts.is_empty()).then(|| ci(&format!(r"(?:^|\b)(?:{})(?:\b|$)", alts.join("|"))))
}

impl Vocabulary {
    /// `lists`: (what the words are, e.g. "a medication", the words); `blocked`: phrases
    /// never to post; `dm_invitations` count as an offline route on `dm_platforms`.
    pub fn new(
        lists: &[(&str, &[String])],
        blocked: &[String],
        dm_invitations: &[String],
        dm_platforms: &[String],
    ) -> Vocabulary {
        let mut terms: Vec<(Regex, String, Rule)> = lists
            .iter()
            .filter_map(|(what, words)| alternation(words).map(|re| (re, what.to_string(), Rule::Phi)))
            .collect();
        if let Some(re) = alternation(blocked) {
            terms.push((re, "a phrase on the team's blocked list".into(), Rule::BlockedPhrase));
        }
        Vocabulary {
            terms,
            dm_invitation: alternation(dm_invitations),
            dm_platforms: dm_platforms.iter().map(|p| p.to_lowercase()).collect(),
        }
    }
}

/// Platforms a public reply can be written for (the sources carebot knows).
pub const PLATFORMS: [&str; 9] =
    ["google", "yelp", "x", "twitter", "facebook", "instagram", "healthgrades", "vitals", "ratemds"];

static LINK: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"https?://\S+").expect("link pattern"));

/// A text's length as the platform counts it against its limit. X weighs characters: a
/// link counts 23 (X shortens every link), Latin and common punctuation 1, other scripts
/// and emoji 2 (joiners, variation selectors and skin tones add nothing); elsewhere one
/// per character.
pub fn platform_length(source: Option<&str>, text: &str) -> usize {
    if !matches!(source, Some("x" | "twitter")) {
        return text.chars().count();
    }
    let weight = |c: char| match c as u32 {
        0x200D | 0xFE00..=0xFE0F | 0x1F3FB..=0x1F3FF => 0,
        0..=4351 | 8192..=8205 | 8208..=8223 | 8242..=8247 => 1,
        _ => 2,
    };
    let mut len = 0;
    let mut at = 0;
    for m in LINK.find_iter(text) {
        len += text[at..m.start()].chars().map(weight).sum::<usize>() + 23;
        at = m.end();
    }
    len + text[at..].chars().map(weight).sum::<usize>()
}

/// Public character limits by platform (source name); `None` where none applies.
pub fn platform_limit(source: &str) -> Option<usize> {
    match source {
        "x" | "twitter" => Some(280),
        "google" | "google_reviews" => Some(4096),
        "yelp" => Some(5000),
        "facebook" | "instagram" => Some(8000),
        "healthgrades" | "vitals" | "ratemds" => Some(2000),
        _ => None,
    }
}

fn ci(p: &str) -> Regex {
    RegexBuilder::new(p).case_insensitive(true).build().expect("built-in compliance pattern compiles")
}

static RELATIONSHIP: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        r"\byour\s+(?:recent\s+|last\s+|latest\s+)?(?:visit|stay|procedure|surgery|operation|appointment|treatment|care team|doctor|physician|surgeon|nurse|provider|medical records?|records?|chart|test results|lab results|results|diagnosis|medications?|prescriptions?|admission|discharge|bill|account|claim|exam|scan|x-?ray|mri|labs?)\b",
        r"\bwhen you were\s+(?:here|in|at|admitted|seen|treated|discharged|with us)\b",
        r"\b(?:our|the|your)\s+records\s+(?:show|indicate|reflect|say)\b",
        r"\b(?:you are|you're|you were|as)\s+(?:our|a)\s+(?:patient|client)\b",
        r"\byou were\s+(?:seen|treated|admitted|discharged|examined|triaged)\b",
        r"\bduring your\s+(?:time|visit|stay|care|admission|treatment|appointment)\b",
        r"\byour\s+(?:mom|mother|dad|father|son|daughter|husband|wife|child|baby|kid|partner|grandma|grandpa|grandmother|grandfather)'?s\s+(?:time|stay|care|visit|treatment|appointment|surgery|procedure|doctor|nurse)\b",
        r"\byour\s+(?:new\s+baby|follow-?up|check-?up|next\s+appointment|delivery|recovery|healing|condition|illness|injury|injuries|symptoms|pain)\b",
        r"\b(?:stitched|patched|fixed)\s+(?:you|him|her|them)\s+up\b",
        r"\b(?:get|got|getting)\s+(?:you|him|her|them)\s+(?:stitched|patched|fixed)\s+up\b",
        r"\b(?:caring|cared)\s+for\s+(?:you|him|her|your)\b",
        r"\b(?:loyal|longtime|long-time|valued)\s+(?:\w+\s+)?patient\b",
        r"\btrusting us with\s+(?:your|his|her)\b",
        r"\bseeing you (?:at|for|again at) your\b",
        r"\bsu\s+(?:visita|estancia|cita|tratamiento|cirug[ií]a|doctor|m[eé]dico)\b",
        r"\b(?:haberle|haberla|haberlo)\s+atendid[oa]\b",
        r"\bwe (?:treated|saw|admitted|discharged) you\b",
    ]
    .iter()
    .map(|p| ci(p))
    .collect()
});

static PHI: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    vec![
        (
            ci(
                r"\b(?:diabetes|diabetic|cancer|tumou?r|pregnan(?:t|cy)|miscarriage|hiv|aids|hepatitis|covid(?:-19)?|depression|bipolar|schizophrenia|overdose|addiction|stroke|heart attack|fracture[sd]?|broken (?:arm|leg|hip|wrist|ankle)|sepsis|pneumonia|asthma|dementia|alzheimer'?s|infection|concussion|appendicitis|seizures?)\b",
            ),
            "a health condition",
        ),
        (
            ci(
                r"\b(?:insulin|opioids?|oxycodone|morphine|fentanyl|antibiotics?|chemo(?:therapy)?|metformin|warfarin|xanax|adderall|methadone|ibuprofen|prescribed)\b",
            ),
            "a medication",
        ),
        (ci(r"\b\d{1,2}/\d{1,2}(?:/\d{2,4})?\b"), "a date"),
        (
            ci(
                r"\b(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|jun(?:e)?|jul(?:y)?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?\s+\d{1,2}(?:st|nd|rd|th)?\b",
            ),
            "a date",
        ),
        (
            ci(
                r"\b(?:mrn|medical record|record|account|acct|patient id|claim|case|invoice|member id)\s*(?:number|no\.?|#|id)?\s*[:#]?\s*[a-z]{0,3}-?\d[\w-]{3,}\b",
            ),
            "a record or account number",
        ),
        (ci(r"\b(?:date of birth|dob|birth ?date|born on)\b"), "a date of birth"),
        (ci(r"\bon the \d{1,2}(?:st|nd|rd|th)\b"), "a date"),
        (
            ci(
                r"\b(?:on|over)\s+(?:new year'?s(?:\s+eve|\s+day)?|christmas(?:\s+eve|\s+day)?|thanksgiving|labor day|memorial day|easter|halloween)\b",
            ),
            "a date",
        ),
    ]
});

static DEFENSIVE: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        r"\bthat(?:'s| is) (?:simply )?(?:not true|false|untrue|inaccurate|not what happened|not accurate)\b",
        r"\byou(?:'re| are) (?:wrong|mistaken|lying|incorrect)\b",
        r"\bwe (?:strongly )?disagree\b",
        r"\bcontrary to (?:your|what you)\b",
        r"\byou (?:should|could|would) have\b",
        r"\byou (?:failed|refused|neglected) to\b",
        r"\b(?:your own|not our) fault\b",
        r"\byou were (?:rude|aggressive|abusive|disruptive|late)\b",
        r"\b(?:our|the) (?:staff|team|nurses?|doctors?) (?:did nothing wrong|followed (?:all )?(?:protocol|procedures?|policy))\b",
        r"\bas (?:you were|we) (?:already )?(?:told|explained)\b",
        r"\bper (?:our|hospital|clinic) policy\b",
        r"\bsigui[oó] el protocolo\b",
        r"\bwait times are posted\b",
        r"\b(?:were|was|are|is)\s+(?:just\s+)?following\s+(?:the\s+|our\s+|all\s+)?(?:guidelines|protocols?|procedures?|policy|standard of care)\b",
        r"\bfollowed\s+(?:the\s+|our\s+|all\s+)?(?:guidelines|standard of care)\b",
        r"\byou claim\b",
        r"\ballegedly\b",
        r"\bmisunderst(?:ood|anding) on your part\b",
    ]
    .iter()
    .map(|p| ci(p))
    .collect()
});

/// A clinical title followed by a capitalised name: "Dr. Patel", "Nurse Alicia".
static CLINICIAN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:[Dd]ra?\.?|[Dd]octor|[Dd]octora|[Nn]urse|RN|NP|PA-C|PA,|[Cc]harge nurse,|[Nn]urse practitioner,|[Ss]urgeon,|[Mm]idwife,|[Pp]hysician assistant,)\s+([A-Z][a-z]+)")
        .expect("pattern compiles")
});

static PHONE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:\+?1[\s.-]?)?\(?\b\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}\b").expect("pattern compiles"));

static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}").expect("pattern compiles"));

fn digits(s: &str) -> String {
    let d: String = s.chars().filter(char::is_ascii_digit).collect();
    d.strip_prefix('1').filter(|r| r.len() == 10).map(str::to_string).unwrap_or(d)
}

fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

fn word_at(text: &str, name: &str) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(i) = text[from..].find(name) {
        let (s, e) = (from + i, from + i + name.len());
        let before = s == 0 || !bytes[s - 1].is_ascii_alphanumeric();
        let after = e >= bytes.len() || !bytes[e].is_ascii_alphanumeric();
        if before && after {
            return Some((s, e));
        }
        from = e;
    }
    None
}

fn overlaps(spans: &[(usize, usize)], s: usize, e: usize) -> bool {
    spans.iter().any(|(a, b)| s < *b && *a < e)
}

/// Checks a reply. Findings are ordered by position, whole-reply findings last.
pub fn check(text: &str, cx: &ReplyContext) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut push = |rule, severity, s: usize, e: usize, suggestion: String| {
        out.push(Finding { rule, severity, start: s, end: e, excerpt: text[s..e].to_string(), suggestion });
    };
    for re in RELATIONSHIP.iter() {
        for m in re.find_iter(text) {
            push(
                Rule::PatientRelationship,
                Severity::Block,
                m.start(),
                m.end(),
                "do not confirm a visit or care; speak of \"the experience you describe\" instead".into(),
            );
        }
    }
    let phones: Vec<(usize, usize)> = PHONE.find_iter(text).map(|m| (m.start(), m.end())).collect();
    for (re, what) in PHI.iter() {
        for m in re.find_iter(text) {
            if overlaps(&phones, m.start(), m.end()) {
                continue; // a phone number is judged by the phone rule
            }
            push(
                Rule::Phi,
                Severity::Block,
                m.start(),
                m.end(),
                format!("remove {what}: nothing about anyone's health or care in public"),
            );
        }
    }
    // The built-in lists already named these words.
    let builtin: Vec<(usize, usize)> =
        PHI.iter().flat_map(|(re, _)| re.find_iter(text).map(|m| (m.start(), m.end()))).collect();
    for (re, what, rule) in &cx.vocabulary.terms {
        for m in re.find_iter(text) {
            if overlaps(&phones, m.start(), m.end()) || overlaps(&builtin, m.start(), m.end()) {
                continue;
            }
            let suggestion = match rule {
                Rule::BlockedPhrase => "the team never posts this; acknowledge and move offline".to_string(),
                _ => format!("remove {what}: nothing about anyone's health or care in public"),
            };
            push(*rule, Severity::Block, m.start(), m.end(), suggestion);
        }
    }
    for re in DEFENSIVE.iter() {
        for m in re.find_iter(text) {
            push(
                Rule::Defensive,
                Severity::Block,
                m.start(),
                m.end(),
                "acknowledge and apologise; never dispute or blame in public".into(),
            );
        }
    }
    let allowed = |name: &str| cx.allowed_names.iter().any(|a| a.split_whitespace().any(|w| w == name) || a == name);
    let mut named = Vec::new();
    for c in CLINICIAN.captures_iter(text) {
        let (whole, name) = (c.get(0).expect("match"), c.get(1).expect("group"));
        if !allowed(name.as_str()) {
            named.push((whole.start(), whole.end()));
            push(
                Rule::StaffName,
                Severity::Block,
                whole.start(),
                whole.end(),
                "do not name clinical staff publicly; thank \"our team\" instead".into(),
            );
        }
    }
    for name in &cx.staff_names {
        if name.len() < 3 || allowed(name) {
            continue;
        }
        if let Some((s, e)) = word_at(text, name) {
            if !overlaps(&named, s, e) {
                push(
                    Rule::StaffName,
                    Severity::Warn,
                    s,
                    e,
                    "only the site's designated contacts should be named".into(),
                );
            }
        }
    }
    let publics: Vec<String> = cx.public_phone.iter().chain(&cx.other_public_phones).map(|p| digits(p)).collect();
    let is_public = |s: usize, e: usize| publics.iter().any(|p| *p == digits(&text[s..e]));
    for (s, e) in &phones {
        if !is_public(*s, *e) {
            push(
                Rule::PrivatePhone,
                Severity::Block,
                *s,
                *e,
                "this number may not be posted publicly; give the site's email (or its public number)".into(),
            );
        }
    }
    out.sort_by_key(|f| (f.start, f.rule));
    let whole = |rule, severity, suggestion: String| Finding {
        rule,
        severity,
        start: 0,
        end: 0,
        excerpt: String::new(),
        suggestion,
    };
    let len = platform_length(cx.platform.as_deref(), text);
    if let Some(max) = cx.max_chars.filter(|m| len > *m) {
        out.push(whole(Rule::TooLong, Severity::Block, format!("{len} characters; this platform allows {max}")));
    }
    let public_route = phones.iter().any(|(s, e)| is_public(*s, *e));
    let dm_route = cx.platform.as_deref().is_some_and(|p| cx.vocabulary.dm_platforms.iter().any(|d| d == p))
        && cx.vocabulary.dm_invitation.as_ref().is_some_and(|re| re.is_match(text));
    if !EMAIL.is_match(text) && !public_route && !dm_route && !cx.praise {
        let hint = "give the site's patient-relations email (or public phone) to take this offline";
        out.push(whole(Rule::NoOfflineRoute, Severity::Block, hint.into()));
    }
    let norm = normalise(text);
    if cx.recent_replies.iter().any(|r| normalise(r) == norm) {
        let hint = "the same words were posted publicly in the last 24 hours; make it personal";
        out.push(whole(Rule::Canned, Severity::Warn, hint.into()));
    }
    out
}

pub fn blocks(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Block)
}

/// Whitespace- and case-insensitive equality, for approvals and canned-reply checks.
pub fn same_text(a: &str, b: &str) -> bool {
    normalise(a) == normalise(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Rule::*;

    fn cx() -> ReplyContext {
        ReplyContext {
            max_chars: Some(280),
            public_phone: Some("(555) 010-2200".into()),
            allowed_names: vec!["Marcus Bell".into(), "Dena".into()],
            staff_names: vec!["Sam Whitfield".into(), "Priya Raman".into(), "Marcus Bell".into()],
            recent_replies: vec!["We're sorry to hear this. Please email care@lakeshore.example so we can help.".into()],
            ..Default::default()
        }
    }

    const EMAIL_TAIL: &str = " Please email care@lakeshore.example so we can follow up.";

    /// Good replies: each must come back with no finding at all.
    const GOOD: &[&str] = &[
        "Hi Jordan, we're sorry to hear this. We'd like to learn more. Please email care@lakeshore.example — Dena",
        "Thank you for sharing this. We want to make it right; please contact patientrelations@lakeshore.example.",
        "We're sorry about the wait you describe. Our patient relations team would like to hear from you at care@lakeshore.example.",
        "Thank you for the kind words! We'll share them with the team. Questions? care@lakeshore.example",
        "We hear you, and we apologise. Please call us at (555) 010-2200 or email care@lakeshore.example.",
        "Sorry for the frustration. Please reach out at 555-010-2200 so we can look into this.",
        "We take feedback like this seriously. Please email care@lakeshore.example and Marcus Bell will follow up.",
        "We're concerned to read this and want to help right away. Please email care@lakeshore.example.",
        "Thanks for letting us know about parking. We'd love to hear more at care@lakeshore.example.",
        "We're sorry you had trouble reaching us by phone. Please email care@lakeshore.example and we'll get back to you today.",
        "Your feedback matters to us. Please contact care@lakeshore.example so we can talk privately.",
        "We apologise for the experience you describe. Please email care@lakeshore.example. — Dena",
        "Thank you for taking the time to write. We'd like to connect offline: care@lakeshore.example",
        "We're sorry to hear about your concerns with billing. Please email billing-help@lakeshore.example so we can help.",
        "Thank you for this shout-out! We'll pass it along to our team. care@lakeshore.example",
        "Please accept our apologies. We'd like to speak with you directly: +1 555 010 2200.",
        "We'd like to understand what happened. Email care@lakeshore.example and we'll respond within 24 hours.",
        "It sounds like a hard day, and we're sorry. Please get in touch at care@lakeshore.example.",
        "We appreciate you raising this. A member of our team can help at care@lakeshore.example.",
        "So sorry to read this. If someone is with you on site now, please email care@lakeshore.example and we'll find you.",
        "Thanks for the feedback on scheduling. We're working on it; please email care@lakeshore.example with any questions.",
        "We're glad you shared this and we're sorry. Please reach our team at care@lakeshore.example.",
        "Thank you for your patience and for telling us. Please email care@lakeshore.example.",
        "We want every visitor to feel welcome. Please tell us more at care@lakeshore.example.",
        "We are sorry. Please contact Marcus Bell at care@lakeshore.example so we can follow up personally.",
    ];

    /// Bad replies and the rule each must trip (other findings may come too).
    const BAD: &[(&str, Rule)] = &[
        ("We're sorry about your visit last week.", PatientRelationship),
        ("Sorry to hear your stay was unpleasant.", PatientRelationship),
        ("We hope your procedure went well otherwise.", PatientRelationship),
        ("We've shared this with your doctor.", PatientRelationship),
        ("We reviewed your records and see the delay.", PatientRelationship),
        ("When you were here on the ward, staff were busy.", PatientRelationship),
        ("Our records show you arrived at 3pm.", PatientRelationship),
        ("As a patient of ours you deserve better.", PatientRelationship),
        ("You were seen by the triage team promptly.", PatientRelationship),
        ("During your stay we tried our best.", PatientRelationship),
        ("We looked into your bill and it is correct.", PatientRelationship),
        ("Your test results were sent on time.", PatientRelationship),
        ("We treated you as fast as we could.", PatientRelationship),
        ("Sorry about the wait for your diabetes check.", Phi),
        ("We understand cancer treatment is stressful.", Phi),
        ("The insulin delay should not have happened.", Phi),
        ("We know the wait on 11/03 was long.", Phi),
        ("We know the wait on November 3rd was long.", Phi),
        ("Please quote MRN 448812 when you email.", Phi),
        ("Your account number 99812233 has been credited.", Phi),
        ("Please include your date of birth in the email.", Phi),
        ("Recovering from a broken hip is hard.", Phi),
        ("The antibiotics were prescribed correctly.", Phi),
        ("That's not true, we were fully staffed.", Defensive),
        ("You're wrong about the wait time.", Defensive),
        ("We disagree with this review.", Defensive),
        ("You should have called ahead.", Defensive),
        ("You failed to bring your paperwork.", Defensive),
        ("Our staff followed protocol at every step.", Defensive),
        ("As you were told at the desk, we were busy.", Defensive),
        ("Per our policy, visitors must wait outside.", Defensive),
        ("You claim you waited 5 hours.", Defensive),
        ("You were rude to the receptionist.", Defensive),
        ("Contrary to your review, the room was clean.", Defensive),
        ("Dr. Patel will be glad to hear this!", StaffName),
        ("Nurse Alicia says thank you!", StaffName),
        ("We've passed this to Sam Whitfield in billing.", StaffName),
        ("Please call Priya Raman directly.", StaffName),
        ("Please call our manager at 555-867-5309.", PrivatePhone),
        ("Text us on (555) 010-3300 any time.", PrivatePhone),
        ("We're sorry. Please get in touch with our team.", NoOfflineRoute),
        ("Thank you for the feedback!", NoOfflineRoute),
    ];

    fn rules(text: &str) -> Vec<Rule> {
        check(text, &cx()).into_iter().map(|f| f.rule).collect()
    }

    #[test]
    fn good_replies_come_back_clean() {
        for text in GOOD {
            let f = check(text, &cx());
            assert!(f.is_empty(), "{text:?} flagged: {:?}", f.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn each_bad_reply_is_caught_by_the_intended_rule() {
        for (text, rule) in BAD {
            let full = format!("{text}{EMAIL_TAIL}");
            let text = if *rule == NoOfflineRoute { text.to_string() } else { full };
            let got = rules(&text);
            assert!(got.contains(rule), "{text:?}: expected {rule:?}, got {got:?}");
        }
        assert!(GOOD.len() + BAD.len() >= 60);
    }

    #[test]
    fn findings_point_at_the_offending_words_with_a_suggestion() {
        let text = "Sorry about your visit. Email care@lakeshore.example";
        let f = check(text, &cx());
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].severity, &text[f[0].start..f[0].end]), (Severity::Block, "your visit"));
        assert!(f[0].suggestion.contains("experience you describe"));
        assert!(blocks(&f));
    }

    #[test]
    fn the_x_limit_and_repeated_wording_are_caught() {
        let long = format!("{}{EMAIL_TAIL}", "We are so sorry. ".repeat(20));
        assert!(rules(&long).contains(&TooLong));
        let canned = "We're sorry to hear this.  Please email care@lakeshore.example so we can help.";
        let f = check(canned, &cx());
        assert_eq!(f.iter().map(|x| (x.rule, x.severity)).collect::<Vec<_>>(), vec![(Canned, Severity::Warn)]);
        assert!(!blocks(&f));
    }

    #[test]
    fn the_public_phone_is_an_offline_route_but_a_private_one_is_not() {
        assert!(!rules("Please call (555) 010-2200.").contains(&NoOfflineRoute));
        let private = rules("Please call (555) 010-3300.");
        assert!(private.contains(&PrivatePhone) && private.contains(&NoOfflineRoute));
        let mut no_public = cx();
        no_public.public_phone = None;
        assert!(check("Please call (555) 010-2200.", &no_public).iter().any(|f| f.rule == PrivatePhone));
    }

    #[test]
    fn praise_needs_no_route_and_a_dm_invitation_is_one_only_where_dms_exist() {
        let vocab = std::sync::Arc::new(Vocabulary::new(
            &[("a medication", &["amoxicillin".to_string(), "tylenol".to_string()])],
            &["wrong medication".to_string()],
            &["direct message".to_string(), "dm us".to_string()],
            &["x".to_string(), "facebook".to_string()],
        ));
        let on = |platform: &str, praise: bool| ReplyContext {
            vocabulary: vocab.clone(),
            platform: Some(platform.into()),
            praise,
            ..cx()
        };
        assert!(check("Thank you so much for the kind words!", &on("google", true)).is_empty());
        let dm = "We're sorry to hear this. Please send us a direct message so our team can follow up.";
        assert!(check(dm, &on("x", false)).is_empty());
        assert!(check(dm, &on("google", false)).iter().any(|f| f.rule == NoOfflineRoute), "Google has no DMs");
        let med = check("Sorry about the Tylenol mix-up. DM us.", &on("x", false));
        assert_eq!(med.iter().map(|f| (f.rule, f.excerpt.as_str())).collect::<Vec<_>>(), [(Phi, "Tylenol")]);
        let blocked = check("So sorry about the wrong medication. DM us.", &on("x", false));
        assert!(blocked.iter().any(|f| f.rule == BlockedPhrase && f.excerpt == "wrong medication"), "{blocked:?}");
        assert!(check("Our ER doctors were following guidelines. DM us.", &on("x", false))
            .iter()
            .any(|f| f.rule == Defensive));
    }

    #[test]
    fn approvals_compare_text_ignoring_spacing_and_case() {
        assert!(same_text("We are  sorry.\nEmail us", "we are sorry. email us"));
        assert!(!same_text("We are sorry.", "We are not sorry."));
    }

    #[test]
    fn x_counts_links_as_23_and_emoji_as_2() {
        assert_eq!(platform_length(Some("x"), "Thank you"), 9);
        assert_eq!(
            platform_length(Some("x"), "See https://lakeshore-health.example/a/very/long/path/to/a/page ok"),
            4 + 23 + 3
        );
        assert_eq!(platform_length(Some("x"), "Gracias 🙏"), 8 + 2);
        assert_eq!(platform_length(Some("x"), "❤️"), 2);
        assert_eq!(platform_length(Some("google"), "See https://x.example 🙏"), 23);
    }
}
