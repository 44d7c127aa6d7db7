//! `replies/*.md`: reply templates. Each file has YAML front matter (id, title, which
//! situations, categories and platforms it fits, maximum length) and a minijinja body.
//! Loading compiles every template and renders it for every site and platform, so a
//! missing variable or an over-long reply is caught by `carebot check`, with file and line.

use super::situations::SituationBook;
use super::team::{Site, Team};
use super::triage_rules::TriageBook;
use super::{Problem, Problems};
use crate::domain::compliance::platform_limit;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

pub const REPLIES_DIR: &str = "replies";

/// Platforms every template is test-rendered for.
pub const PLATFORMS: &[&str] = &["x", "facebook", "google", "yelp", "healthgrades"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    id: Spanned<String>,
    title: String,
    #[serde(default)]
    situations: Vec<Spanned<String>>,
    #[serde(default)]
    categories: Vec<Spanned<String>>,
    #[serde(default)]
    platforms: Vec<String>,
    #[serde(default)]
    max_length: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct ReplyTemplate {
    pub id: String,
    pub title: String,
    pub situations: Vec<String>,
    pub categories: Vec<String>,
    /// Empty: fits every platform.
    pub platforms: Vec<String>,
    pub max_length: Option<usize>,
    pub file: PathBuf,
    /// It thanks someone for praise (one of its categories is a praise category).
    pub praise: bool,
}

/// What template selection knows about a case.
#[derive(Debug, Clone, Copy)]
pub struct Fit<'a> {
    pub situation: &'a str,
    pub categories: &'a [String],
    /// The case is praise: positive, or carrying a praise category and no complaint.
    pub praise: bool,
    pub platform: &'a str,
}

impl ReplyTemplate {
    pub fn fits_platform(&self, platform: &str) -> bool {
        self.platforms.is_empty() || self.platforms.iter().any(|p| p == platform)
    }
    /// How well the template fits a case: its situation, its categories (a template made
    /// for another category is pushed below the neutral ones, never chosen over them),
    /// whether the case is praise or a complaint, then the platform.
    pub fn score(&self, f: &Fit) -> i32 {
        let mut s = 0;
        if self.situations.iter().any(|x| x == f.situation) {
            s += 4;
        }
        if !self.categories.is_empty() {
            if self.categories.iter().any(|c| f.categories.contains(c)) {
                s += 3;
            } else {
                s -= 4;
            }
        }
        match (self.praise, f.praise) {
            (true, true) => s += 4,
            (true, false) => s -= 6,
            (false, true) => s -= 3, // an apology to someone who said thank you
            (false, false) => {}
        }
        if !self.platforms.is_empty() && self.fits_platform(f.platform) {
            s += 1;
        }
        s
    }
    /// The character limit for a platform: the smaller of the template's and the platform's.
    pub fn limit(&self, platform: &str) -> Option<usize> {
        match (self.max_length, platform_limit(platform)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The variables a template may use.
#[derive(Debug, Clone, Serialize)]
pub struct ReplyVars {
    /// The author's public handle, or "there".
    pub author: String,
    pub site: SiteVars,
    pub contacts: ContactVars,
    /// The promised follow-up time, e.g. "24 hours".
    pub follow_up: String,
    /// The drafting agent's first name.
    pub agent: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SiteVars {
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContactVars {
    pub email: String,
    /// Present only where the site allows its phone in public replies.
    pub phone: Option<String>,
}

impl ReplyVars {
    pub fn new(author: Option<&str>, site: Option<&Site>, team: &Team, follow_up: String, agent: &str) -> ReplyVars {
        // No site: the organisation's neutral contacts, never some site's.
        let (name, contacts) = match (site, &team.organisation) {
            (Some(s), _) => (s.name.clone(), Some(&s.contacts)),
            (None, Some(o)) => (o.name.clone(), Some(&o.contacts)),
            (None, None) => ("our team".to_string(), None),
        };
        ReplyVars {
            author: author.filter(|a| !a.trim().is_empty()).unwrap_or("there").to_string(),
            site: SiteVars { name },
            contacts: ContactVars {
                email: contacts.map(|c| c.email.clone()).unwrap_or_default(),
                phone: contacts.filter(|c| c.phone_public).and_then(|c| c.phone.clone()),
            },
            follow_up,
            agent: agent.to_string(),
        }
    }
}

pub struct ReplyBook {
    pub templates: Vec<ReplyTemplate>,
    env: minijinja::Environment<'static>,
}

impl std::fmt::Debug for ReplyBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplyBook").field("templates", &self.templates.len()).finish()
    }
}

impl ReplyBook {
    pub fn get(&self, id: &str) -> Option<&ReplyTemplate> {
        self.templates.iter().find(|t| t.id == id)
    }

    /// Templates that fit the platform, best first.
    pub fn ranked(&self, f: &Fit) -> Vec<&ReplyTemplate> {
        let mut v: Vec<(usize, &ReplyTemplate)> =
            self.templates.iter().enumerate().filter(|(_, t)| t.fits_platform(f.platform)).collect();
        v.sort_by_key(|(i, t)| (std::cmp::Reverse(t.score(f)), *i));
        v.into_iter().map(|(_, t)| t).collect()
    }

    pub fn render(&self, id: &str, vars: &ReplyVars) -> Result<String, minijinja::Error> {
        let t = self.env.get_template(id)?;
        let out = t.render(minijinja::value::Serde(vars))?;
        Ok(out.split_whitespace().collect::<Vec<_>>().join(" "))
    }
}

fn problem(file: &Path, line: u64, message: impl Into<String>) -> Problem {
    Problem { file: file.to_path_buf(), line: (line > 0).then_some(line), message: message.into() }
}

/// Splits `---\nfront matter\n---\nbody`; returns (front matter, body, body's first line).
fn split(text: &str) -> Option<(&str, &str, u64)> {
    let rest = text.strip_prefix("---\n").or_else(|| text.strip_prefix("---\r\n"))?;
    let end = rest.find("\n---")?;
    let front = &rest[..end + 1];
    let after = &rest[end + 4..];
    let body = after.strip_prefix('\n').or_else(|| after.strip_prefix("\r\n")).unwrap_or(after);
    let body_line = 2 + front.lines().count() as u64 + 1;
    Some((front, body, body_line))
}

/// Loads `dir/replies/*.md`. A missing folder is an empty book (drafting then says so).
pub(crate) fn load(
    dir: &Path,
    team: &Team,
    rules: &TriageBook,
    situations: &SituationBook,
    vocabulary: &std::sync::Arc<crate::domain::compliance::Vocabulary>,
) -> Result<ReplyBook, Problems> {
    let folder = dir.join(REPLIES_DIR);
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::SemiStrict);
    let mut templates = Vec::new();
    let mut problems = Vec::new();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&folder) {
        Err(_) => return Ok(ReplyBook { templates, env }),
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().and_then(|e| e.to_str()) == Some("md") && p.file_name() != Some("README.md".as_ref())
            })
            .collect(),
    };
    files.sort();
    let mut ids = HashSet::new();
    for file in files {
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                problems.push(problem(&file, 0, format!("cannot read: {e}")));
                continue;
            }
        };
        let Some((front, body, body_line)) = split(&text) else {
            problems.push(problem(
                &file,
                1,
                "a reply template starts with a `---` line, its front matter, and another `---` line",
            ));
            continue;
        };
        let fm: FrontMatter = match serde_saphyr::from_str(front) {
            Ok(f) => f,
            Err(e) => {
                let line = e.location().map(|l| l.line() + 1).unwrap_or(1);
                let msg = e.to_string().lines().next().unwrap_or("invalid front matter").to_string();
                problems.push(problem(&file, line, msg));
                continue;
            }
        };
        let at = |s: &Spanned<String>| s.referenced.line() + 1;
        let before = problems.len();
        if !ids.insert(fm.id.value.clone()) {
            problems.push(problem(&file, at(&fm.id), format!("duplicate template id {:?}", fm.id.value)));
        }
        for s in &fm.situations {
            if situations.get(&s.value).is_none() {
                problems.push(problem(
                    &file,
                    at(s),
                    format!("unknown situation {:?} (not in situations.yaml)", s.value),
                ));
            }
        }
        for p in &fm.platforms {
            if !crate::domain::compliance::PLATFORMS.contains(&p.as_str()) {
                problems.push(problem(
                    &file,
                    at(&fm.id),
                    format!("unknown platform {p:?}; one of {}", crate::domain::compliance::PLATFORMS.join(", ")),
                ));
            }
        }
        for c in &fm.categories {
            if rules.category(&c.value).is_none() {
                problems.push(problem(&file, at(c), format!("unknown category {:?} (not in triage.yaml)", c.value)));
            }
        }
        if let Err(e) = env.add_template_owned(fm.id.value.clone(), body.to_string()) {
            let line = body_line + e.line().map(|l| l as u64 - 1).unwrap_or(0);
            problems.push(problem(
                &file,
                line,
                format!("template does not compile: {}", e.detail().unwrap_or("syntax error")),
            ));
            continue;
        }
        let t = ReplyTemplate {
            id: fm.id.value.clone(),
            title: fm.title.clone(),
            situations: fm.situations.iter().map(|s| s.value.clone()).collect(),
            categories: fm.categories.iter().map(|s| s.value.clone()).collect(),
            platforms: fm.platforms.clone(),
            max_length: fm.max_length,
            file: file.clone(),
            praise: fm.categories.iter().any(|c| rules.category(&c.value).is_some_and(|r| r.praise)),
        };
        // Render for every site and platform with realistic values; report the first failure.
        let book = ReplyBook { templates: Vec::new(), env: env.clone() };
        let praise = t.praise;
        let sites: Vec<Option<&super::team::Site>> = team.sites.iter().map(Some).chain([None]).collect();
        'check: for site in sites {
            for platform in PLATFORMS.iter().filter(|p| t.fits_platform(p)) {
                let vars = ReplyVars::new(Some("@a_long_public_handle"), site, team, "48 hours".into(), "Alexandria");
                let where_ = site.map(|s| s.id.as_str()).unwrap_or("no site");
                match book.render(&t.id, &vars) {
                    Err(e) => {
                        let line = body_line + e.line().map(|l| l as u64 - 1).unwrap_or(0);
                        problems.push(problem(
                            &file,
                            line,
                            format!("template does not render: {}", e.detail().unwrap_or("error")),
                        ));
                        break 'check;
                    }
                    Ok(out) => {
                        // The template's own words must pass the reply check it drafts for.
                        let org_phone = team
                            .organisation
                            .as_ref()
                            .and_then(|o| o.contacts.phone.clone().filter(|_| o.contacts.phone_public));
                        let cx = crate::domain::compliance::ReplyContext {
                            max_chars: None,
                            public_phone: match site {
                                Some(s) => s.contacts.phone.clone().filter(|_| s.contacts.phone_public),
                                None => org_phone.clone(),
                            },
                            other_public_phones: org_phone.into_iter().collect(),
                            allowed_names: site
                                .and_then(|s| team.person(&s.owner))
                                .map(|p| p.name.clone())
                                .into_iter()
                                .chain(["Alexandria".to_string()])
                                .collect(),
                            staff_names: team.staff_names(),
                            recent_replies: Vec::new(),
                            vocabulary: vocabulary.clone(),
                            praise,
                            platform: Some(platform.to_string()),
                        };
                        let blocking: Vec<String> = crate::domain::compliance::check(&out, &cx)
                            .into_iter()
                            .filter(|f| f.severity == crate::domain::compliance::Severity::Block)
                            .map(|f| f.to_string())
                            .collect();
                        if !blocking.is_empty() {
                            problems.push(problem(
                                &file,
                                body_line,
                                format!(
                                    "its own text is blocked by the reply check for {where_} on {platform}: {}",
                                    blocking.join("; ")
                                ),
                            ));
                            break 'check;
                        }
                        let n = out.chars().count();
                        if let Some(max) = t.limit(platform).filter(|m| n > *m) {
                            problems.push(problem(
                                &file,
                                body_line,
                                format!("renders to {n} characters for {where_} on {platform}; the limit is {max}"),
                            ));
                            break 'check;
                        }
                    }
                }
            }
        }
        if problems.len() == before {
            templates.push(t);
        }
    }
    if problems.is_empty() {
        Ok(ReplyBook { templates, env })
    } else {
        Err(Problems(problems))
    }
}

#[cfg(test)]
mod tests {
    use super::Fit;
    use std::path::Path;

    fn best(situation: &str, categories: &[&str], praise: bool, platform: &str) -> String {
        let pb = crate::playbook::Playbooks::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks")).unwrap();
        let categories: Vec<String> = categories.iter().map(|c| c.to_string()).collect();
        let fit = Fit { situation, categories: &categories, praise, platform };
        pb.replies.ranked(&fit).first().map(|t| t.id.clone()).unwrap_or_default()
    }

    #[test]
    fn templates_fit_the_case_and_fall_back_to_a_neutral_one() {
        // No category: the neutral apology, never another category's template.
        assert_eq!(best("negative-review", &[], false, "google"), "negative-review");
        assert_eq!(best("general", &[], false, "yelp"), "negative-review");
        assert_eq!(best("negative-review", &["billing"], false, "google"), "billing-complaint");
        assert_eq!(best("negative-review", &["parking"], false, "google"), "negative-review");
        // Praise gets the thank-you, even outside the shout-out situation and when the
        // praise is about the front desk.
        assert_eq!(best("general", &["front_office", "praise"], true, "google"), "praise-thank-you");
        assert_eq!(best("shout-out", &["praise"], true, "x"), "praise-thank-you");
        // A complaint is never answered with a thank-you.
        assert_ne!(best("general", &["praise", "wait_times"], false, "google"), "praise-thank-you");
        assert_eq!(best("negative-review", &["wait_times"], false, "x"), "short-apology-x");
    }
}
