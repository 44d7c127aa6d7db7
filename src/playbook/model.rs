//! The statistical layer of triage: one logistic regression per label (risk, on-site now,
//! spam, shout-out, each category) over hashed word, word-pair and character n-gram
//! features, trained when the playbooks load from the labelled corpus that ships with them
//! (`triage-corpus.jsonl`). No network, no randomness: the same corpus gives the same
//! weights. Its verdicts are shown on the card with the words that weighed most.

use super::corpus::Labelled;
use super::text::{tokens, Token};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

const DIM_BITS: u32 = 16;
const DIM: usize = 1 << DIM_BITS;
const EPOCHS: usize = 12;
const L2: f32 = 1e-5;
const RATE: f32 = 0.5;

/// One feature of a mention: its hashed slot, its value, and the word behind it when it is
/// a word feature (for explanations): the token's index, and whether the next token joins
/// it (a word pair).
struct Feature {
    slot: usize,
    value: f32,
    word: Option<(usize, bool)>,
}

fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.as_bytes().iter().chain(b"\x1f") {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

fn slot(parts: &[&str]) -> usize {
    (fnv(parts) >> (64 - DIM_BITS)) as usize
}

/// `slot(&[kind, &pieces.concat()])` without building the string.
fn slot_joined(kind: &str, pieces: &[&str]) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = kind.as_bytes().iter().chain(b"\x1f").chain(pieces.iter().flat_map(|p| p.as_bytes())).chain(b"\x1f");
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h >> (64 - DIM_BITS)) as usize
}

/// The words a word feature stands for.
fn feature_words(toks: &[Token], (i, pair): (usize, bool)) -> String {
    match (pair, toks.get(i + 1)) {
        (true, Some(next)) => format!("{} {}", toks[i].norm, next.norm),
        _ => toks[i].norm.clone(),
    }
}

/// Words that carry weight in the model but tell a reader nothing on their own ("the",
/// "to", "my"): a reason names the words around them instead.
const FILLER: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "did", "do", "for", "from", "had", "has", "have",
    "he", "her", "him", "his", "i", "i'm", "in", "is", "it", "it's", "just", "me", "my", "of", "on", "or", "our",
    "she", "so", "that", "the", "their", "them", "then", "there", "they", "this", "to", "us", "was", "we", "were",
    "with", "you", "your", "el", "la", "los", "las", "de", "del", "que", "y", "en", "por", "con", "un", "una", "mi",
    "se", "lo", "es", "al",
];

/// Whether a word feature is worth naming: not filler alone, and a pair not of two fillers.
fn telling(toks: &[Token], (i, pair): (usize, bool)) -> bool {
    let filler = |t: Option<&Token>| t.is_none_or(|t| FILLER.contains(&t.norm.as_str()));
    !(filler(toks.get(i)) && (!pair || filler(toks.get(i + 1))))
}

/// A mention's features, and its tokens (which word features point into).
fn features(text: &str, rating: Option<f64>) -> (Vec<Feature>, Vec<Token>) {
    let toks: Vec<Token> = tokens(text);
    let mut out = Vec::with_capacity(toks.len() * 14);
    for (i, t) in toks.iter().enumerate() {
        if t.norm.chars().count() > 1 {
            out.push(Feature { slot: slot(&["w", &t.norm]), value: 1.0, word: Some((i, false)) });
        }
        if let Some(next) = toks.get(i + 1).filter(|n| !n.after_break) {
            let slot = slot_joined("b", &[&t.norm, " ", &next.norm]);
            out.push(Feature { slot, value: 1.0, word: Some((i, true)) });
        }
    }
    // Character n-grams of the padded word, hashed in place (buffers reused).
    let (mut padded, mut starts) = (String::new(), Vec::new());
    for t in &toks {
        padded.clear();
        padded.push(' ');
        padded.push_str(&t.norm);
        padded.push(' ');
        starts.clear();
        starts.extend(padded.char_indices().map(|(i, _)| i));
        starts.push(padded.len());
        for n in 3..=5 {
            for w in starts.windows(n + 1) {
                out.push(Feature { slot: slot(&["c", &padded[w[0]..w[n]]]), value: 1.0, word: None });
            }
        }
    }
    let r = rating.map(|r| format!("{}", r.round() as i64)).unwrap_or_else(|| "none".into());
    out.push(Feature { slot: slot(&["r", &r]), value: 1.0, word: None });
    let norm = 1.0 / (out.len().max(1) as f32).sqrt();
    for f in &mut out {
        f.value *= norm;
    }
    (out, toks)
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The trained weights: `DIM` slots × labels, plus a bias per label.
pub struct Model {
    labels: Vec<String>,
    weights: Vec<f32>,
    bias: Vec<f32>,
    /// How many labelled mentions it learnt from.
    pub trained_on: usize,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("labels", &self.labels).field("trained_on", &self.trained_on).finish()
    }
}

/// A label's probability for one mention, with the words that pushed it up most.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub probability: f32,
    pub because: Vec<String>,
}

/// What a labelled mention says about one label.
pub fn has_label(l: &Labelled, label: &str) -> bool {
    match label {
        "risk" => l.expect.risk,
        "urgent" => l.expect.urgent,
        "spam" => l.expect.spam,
        "positive" => l.expect.positive,
        c => l.expect.categories.iter().any(|x| x == c),
    }
}

impl Model {
    /// Trains one model per label. Labels nobody in the corpus carries are skipped.
    pub fn train(corpus: &[Labelled], labels: &[String]) -> Model {
        let labels: Vec<String> = labels.iter().filter(|l| corpus.iter().any(|c| has_label(c, l))).cloned().collect();
        let n = labels.len();
        let mut weights = vec![0f32; DIM * n];
        let mut bias = vec![0f32; n];
        let mut grad_sq = vec![1e-6f32; DIM * n];
        let mut bias_sq = vec![1e-6f32; n];
        let feats: Vec<Vec<Feature>> = corpus.iter().map(|c| features(&c.text, c.rating).0).collect();
        // Rare labels weigh more, so a recall-first label (risk) is not drowned by the rest.
        let pos_weight: Vec<f32> = labels
            .iter()
            .map(|l| {
                let pos = corpus.iter().filter(|c| has_label(c, l)).count().max(1) as f32;
                ((corpus.len() as f32 - pos) / pos).sqrt().clamp(1.0, 4.0)
            })
            .collect();
        let wanted: Vec<Vec<bool>> = labels.iter().map(|l| corpus.iter().map(|c| has_label(c, l)).collect()).collect();
        // A fixed visiting order (a linear congruential shuffle) keeps training deterministic.
        let mut order: Vec<usize> = (0..corpus.len()).collect();
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..EPOCHS {
            for i in (1..order.len()).rev() {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                order.swap(i, (seed >> 33) as usize % (i + 1));
            }
            for &i in &order {
                // Every label's score in one pass over the features (labels' weights sit
                // side by side per slot), then every label's update in a second pass.
                let mut z = vec![0f32; n];
                for f in &feats[i] {
                    for (li, zl) in z.iter_mut().enumerate() {
                        *zl += weights[f.slot * n + li] * f.value;
                    }
                }
                for (zl, b) in z.iter_mut().zip(&bias) {
                    *zl += b;
                }
                let errs: Vec<f32> = (0..n)
                    .map(|li| {
                        let y = if wanted[li][i] { 1.0 } else { 0.0 };
                        let err = sigmoid(z[li]) - y;
                        if y > 0.5 {
                            err * pos_weight[li]
                        } else {
                            err
                        }
                    })
                    .collect();
                for f in &feats[i] {
                    let row = f.slot * n;
                    for (li, err) in errs.iter().enumerate() {
                        let k = row + li;
                        let g = err * f.value + L2 * weights[k];
                        grad_sq[k] += g * g;
                        weights[k] -= RATE * g / grad_sq[k].sqrt();
                    }
                }
                for (li, err) in errs.iter().enumerate() {
                    bias_sq[li] += err * err;
                    bias[li] -= RATE * err / bias_sq[li].sqrt();
                }
            }
        }
        Model { labels, weights, bias, trained_on: corpus.len() }
    }

    /// The same corpus trains the same model; a process (a test binary, `check` then
    /// `serve`) trains each distinct corpus once.
    pub fn train_cached(corpus: &[Labelled], labels: &[String]) -> Arc<Model> {
        static CACHE: LazyLock<Mutex<HashMap<u64, Arc<Model>>>> = LazyLock::new(Default::default);
        let key = {
            let mut parts: Vec<String> = labels.to_vec();
            for c in corpus {
                parts.push(serde_json::to_string(c).unwrap_or_default());
            }
            fnv(&parts.iter().map(String::as_str).collect::<Vec<_>>())
        };
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        cache.entry(key).or_insert_with(|| Arc::new(Model::train(corpus, labels))).clone()
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Every label's verdict for one mention.
    /// Each label's probability; the words behind it only where the probability reaches
    /// `explain_from` (naming them costs more than the verdict).
    pub fn predict(&self, text: &str, rating: Option<f64>, explain_from: f32) -> HashMap<String, Verdict> {
        let (feats, toks) = features(text, rating);
        let n = self.labels.len();
        // Every label's score in one pass: a feature's weights sit side by side.
        let mut z = self.bias.clone();
        for f in &feats {
            for (zl, w) in z.iter_mut().zip(&self.weights[f.slot * n..(f.slot + 1) * n]) {
                *zl += w * f.value;
            }
        }
        self.labels
            .iter()
            .enumerate()
            .map(|(li, label)| {
                let probability = sigmoid(z[li]);
                if probability < explain_from {
                    return (label.clone(), Verdict { probability, because: Vec::new() });
                }
                let mut words: Vec<(f32, (usize, bool))> = feats
                    .iter()
                    .filter_map(|f| f.word.map(|w| (self.weights[f.slot * n + li], w)))
                    .filter(|(w, word)| *w > 0.0 && telling(&toks, *word))
                    .collect();
                words.sort_by(|a, b| b.0.total_cmp(&a.0));
                let mut because: Vec<String> = Vec::new();
                for (_, w) in words {
                    if because.len() == 3 {
                        break;
                    }
                    let w = feature_words(&toks, w);
                    if !because.iter().any(|b| b.contains(&w) || w.contains(b.as_str())) {
                        because.push(w);
                    }
                }
                (label.clone(), Verdict { probability, because })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::corpus::Expect;

    fn labelled(text: &str, risk: bool) -> Labelled {
        Labelled {
            text: text.into(),
            rating: None,
            url: None,
            source: None,
            expect: Expect { risk, ..Default::default() },
        }
    }

    #[test]
    fn the_model_learns_a_label_from_examples_and_names_the_words_behind_it() {
        let mut corpus = Vec::new();
        for i in 0..20 {
            corpus.push(labelled(&format!("my father's appendix ruptured after they sent him home {i}"), true));
            corpus.push(labelled(&format!("the parking garage was full again today {i}"), false));
        }
        let model = Model::train(&corpus, &["risk".to_string(), "spam".to_string()]);
        assert_eq!(model.labels(), ["risk"], "a label nobody carries is not trained");
        let risky = &model.predict("her appendix ruptured at home", None, 0.0)["risk"];
        let calm = &model.predict("the garage was full", None, 0.0)["risk"];
        assert!(risky.probability > 0.7 && calm.probability < 0.3, "{risky:?} {calm:?}");
        assert!(risky.because.iter().any(|w| w.contains("ruptured") || w.contains("appendix")), "{risky:?}");
        let again = Model::train(&corpus, &["risk".to_string()]);
        assert_eq!(again.predict("appendix", None, 0.0)["risk"], model.predict("appendix", None, 0.0)["risk"]);
    }
}
