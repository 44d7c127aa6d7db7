//! `team.yaml`: people and their roles, sites (how to recognise them, who owns them, offline
//! contacts) and on-call rotations.

use super::{parse_yaml, Problems, Report};
use crate::domain::{Actor, Role};
use chrono::{DateTime, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::HashSet;
use std::path::Path;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTeam {
    #[serde(default)]
    timezone: Option<Spanned<String>>,
    people: Vec<RawPerson>,
    sites: Vec<RawSite>,
    #[serde(default)]
    rotations: Vec<RawRotation>,
    /// Organisation-wide contacts, for replies to mentions with no detected site.
    #[serde(default)]
    organisation: Option<RawOrganisation>,
    /// Staff and units the digest may name when praise mentions them.
    #[serde(default)]
    recognition: Vec<RawRecognised>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecognised {
    name: Spanned<String>,
    #[serde(default)]
    site: Option<Spanned<String>>,
    #[serde(rename = "match")]
    phrases: Spanned<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrganisation {
    name: String,
    contacts: Spanned<RawContacts>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPerson {
    id: Spanned<String>,
    name: String,
    roles: Spanned<Vec<String>>,
    #[serde(default)]
    slack: Option<String>,
    #[serde(default)]
    discord: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    id: Spanned<String>,
    name: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    listings: Vec<String>,
    owner: Spanned<String>,
    #[serde(default)]
    timezone: Option<Spanned<String>>,
    contacts: Spanned<RawContacts>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContacts {
    email: String,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    phone_public: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRotation {
    id: Spanned<String>,
    members: Vec<Spanned<String>>,
    handoff: RawHandoff,
    #[serde(default)]
    timezone: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHandoff {
    day: Spanned<String>,
    time: Spanned<String>,
}

#[derive(Debug, Clone)]
pub struct Person {
    pub id: String,
    pub name: String,
    pub roles: Vec<Role>,
    pub slack: Option<String>,
    pub discord: Option<String>,
    pub email: Option<String>,
}

impl Person {
    pub fn actor(&self) -> Actor {
        Actor::new(self.id.clone(), self.roles.iter().copied())
    }
    pub fn first_name(&self) -> &str {
        self.name.split_whitespace().next().unwrap_or(&self.name)
    }
}

#[derive(Debug, Clone)]
pub struct Contacts {
    pub email: String,
    pub phone: Option<String>,
    /// Whether the phone number may appear in a public reply.
    pub phone_public: bool,
}

#[derive(Debug, Clone)]
pub struct Site {
    pub id: String,
    pub name: String,
    pub aliases: Vec<String>,
    pub keywords: Vec<String>,
    pub listings: Vec<String>,
    pub owner: String,
    pub timezone: Tz,
    pub contacts: Contacts,
}

/// A member of staff or a unit whose praise the digest may name (`recognition:` in
/// team.yaml: the PX lead lists only those who agreed to be named).
#[derive(Debug, Clone)]
pub struct Recognised {
    /// As shown: "Kelly Nguyen, RN", "Front desk team".
    pub name: String,
    /// Only praise of this site names them (None: any site).
    pub site: Option<String>,
    /// Normalised phrases that mean them in a review ("nurse kelly", "front desk").
    pub phrases: Vec<String>,
}

impl Recognised {
    /// The person's name without title or credentials ("Alicia Moreno" for "Alicia
    /// Moreno, RN", "Amir Haddad" for "Dr. Amir Haddad"); None for a team or unit
    /// ("Front desk team"), whose name is not capitalised word by word.
    pub fn person_name(&self) -> Option<String> {
        let bare = self.name.split(',').next().unwrap_or_default();
        let words: Vec<&str> = bare
            .split_whitespace()
            .filter(|w| !matches!(w.trim_end_matches('.').to_lowercase().as_str(), "dr" | "nurse" | "doctor"))
            .collect();
        let capitalised = |w: &&str| w.chars().next().is_some_and(char::is_uppercase);
        (words.len() >= 2 && words.iter().all(capitalised)).then(|| words.join(" "))
    }

    /// Whether a review about `site` with these words names them.
    fn named_in(&self, words: &str, site: Option<&str>) -> bool {
        let site_ok = match (&self.site, site) {
            (Some(mine), Some(theirs)) => mine == theirs,
            _ => true,
        };
        site_ok && self.phrases.iter().any(|p| words.contains(&format!(" {p} ")))
    }
}

#[derive(Debug, Clone)]
pub struct Rotation {
    pub id: String,
    pub members: Vec<String>,
    pub handoff_day: Weekday,
    pub handoff_time: NaiveTime,
    pub timezone: Tz,
}

impl Rotation {
    /// Who is on call at `at`: rotations hand off weekly at the given local day and time,
    /// members in file order, counted from the first handoff after 1970-01-01.
    pub fn on_call(&self, at: DateTime<Utc>) -> &str {
        let local = at.with_timezone(&self.timezone).naive_local();
        // Shift time so that every handoff instant falls on a Monday 00:00.
        let offset = chrono::Duration::days(self.handoff_day.num_days_from_monday() as i64)
            + (self.handoff_time - NaiveTime::MIN);
        let shifted = local - offset;
        let monday_1970 = chrono::NaiveDate::from_ymd_opt(1970, 1, 5).expect("valid date").and_time(NaiveTime::MIN);
        let weeks = (shifted - monday_1970).num_seconds().div_euclid(7 * 86_400);
        let idx = weeks.rem_euclid(self.members.len() as i64) as usize;
        &self.members[idx]
    }
}

#[derive(Debug, Clone)]
pub struct Team {
    pub timezone: Tz,
    pub people: Vec<Person>,
    pub sites: Vec<Site>,
    pub rotations: Vec<Rotation>,
    /// The organisation's name and neutral contacts (`organisation:` in team.yaml), used
    /// when a case has no site.
    pub organisation: Option<Organisation>,
    pub recognition: Vec<Recognised>,
}

#[derive(Debug, Clone)]
pub struct Organisation {
    pub name: String,
    pub contacts: Contacts,
}

impl Team {
    pub fn person(&self, id: &str) -> Option<&Person> {
        let id = id.trim_start_matches('@');
        self.people.iter().find(|p| p.id == id)
    }
    pub fn person_by_slack(&self, slack_id: &str) -> Option<&Person> {
        self.people.iter().find(|p| p.slack.as_deref() == Some(slack_id))
    }
    pub fn person_by_discord(&self, discord_id: &str) -> Option<&Person> {
        self.people.iter().find(|p| p.discord.as_deref() == Some(discord_id))
    }
    pub fn site(&self, id: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.id == id)
    }
    /// Names a public reply should not use unless allowed: the team file's people and the
    /// people on the recognition list (they agreed to be named only for praise of their site).
    pub fn staff_names(&self) -> Vec<String> {
        let recognised = self.recognition.iter().filter_map(Recognised::person_name);
        self.people.iter().map(|p| p.name.clone()).chain(recognised).collect()
    }
    /// Whether a person called `name` (one word, as written after "Nurse" or "Dr.") is on
    /// the recognition list for `site`: some entry's phrase has that word.
    pub fn may_name(&self, name: &str, site: Option<&str>) -> bool {
        let name = super::text::normalise_phrase(name);
        self.recognition
            .iter()
            .filter(|r| match (&r.site, site) {
                (Some(mine), Some(theirs)) => mine == theirs,
                _ => true,
            })
            .any(|r| r.phrases.iter().any(|p| p.split(' ').any(|w| w == name)))
    }

    /// The recognised staff and units a review of `site` names, in team-file order.
    pub fn praised_in(&self, text: &str, site: Option<&str>) -> Vec<&str> {
        let words: Vec<String> = super::text::tokens(text).into_iter().map(|t| t.norm).collect();
        let words = format!(" {} ", words.join(" "));
        self.recognition.iter().filter(|r| r.named_in(&words, site)).map(|r| r.name.as_str()).collect()
    }
    pub fn rotation(&self, id: &str) -> Option<&Rotation> {
        self.rotations.iter().find(|r| r.id == id)
    }
    pub fn with_role(&self, role: Role) -> impl Iterator<Item = &Person> {
        self.people.iter().filter(move |p| p.roles.contains(&role))
    }
}

fn parse_tz(raw: &Option<Spanned<String>>, default: Tz, rep: &mut Report) -> Tz {
    match raw {
        None => default,
        Some(s) => s.value.parse::<Tz>().unwrap_or_else(|_| {
            rep.at(
                s.referenced.line(),
                format!("unknown time zone {:?}; use an IANA name such as America/Chicago", s.value),
            );
            default
        }),
    }
}

fn check_unique<'a>(seen: &mut HashSet<&'a str>, id: &'a Spanned<String>, what: &str, rep: &mut Report) {
    if id.value.trim().is_empty() {
        rep.at(id.referenced.line(), format!("{what} id must not be empty"));
    } else if !seen.insert(id.value.as_str()) {
        rep.at(id.referenced.line(), format!("duplicate {what} id {:?}", id.value));
    }
}

pub(crate) fn load(path: &Path) -> Result<Team, Problems> {
    let raw: RawTeam = parse_yaml(path)?;
    let mut rep = Report::new(path);
    let timezone = parse_tz(&raw.timezone, chrono_tz::UTC, &mut rep);

    let mut ids = HashSet::new();
    let mut people = Vec::new();
    for p in &raw.people {
        check_unique(&mut ids, &p.id, "person", &mut rep);
        let mut roles = Vec::new();
        for r in &p.roles.value {
            match Role::parse(r) {
                Some(role) => roles.push(role),
                None => rep.at(
                    p.roles.referenced.line(),
                    format!("unknown role {r:?} for {}; one of agent, lead, risk, leadership", p.id.value),
                ),
            }
        }
        if p.roles.value.is_empty() {
            rep.at(p.roles.referenced.line(), format!("{} has no roles", p.id.value));
        }
        people.push(Person {
            id: p.id.value.clone(),
            name: p.name.clone(),
            roles,
            slack: p.slack.clone(),
            discord: p.discord.clone(),
            email: p.email.clone(),
        });
    }
    let known = |id: &str| raw.people.iter().any(|p| p.id.value == id);

    let mut site_ids = HashSet::new();
    let mut sites = Vec::new();
    for s in &raw.sites {
        check_unique(&mut site_ids, &s.id, "site", &mut rep);
        if !known(&s.owner.value) {
            rep.at(s.owner.referenced.line(), format!("site {} has unknown owner {:?}", s.id.value, s.owner.value));
        }
        let c = &s.contacts.value;
        if !c.email.contains('@') {
            rep.at(s.contacts.referenced.line(), format!("site {} needs an offline contact email", s.id.value));
        }
        if c.phone_public && c.phone.is_none() {
            rep.at(s.contacts.referenced.line(), format!("site {} sets phone_public but has no phone", s.id.value));
        }
        sites.push(Site {
            id: s.id.value.clone(),
            name: s.name.clone(),
            aliases: s.aliases.clone(),
            keywords: s.keywords.clone(),
            listings: s.listings.clone(),
            owner: s.owner.value.clone(),
            timezone: parse_tz(&s.timezone, timezone, &mut rep),
            contacts: Contacts { email: c.email.clone(), phone: c.phone.clone(), phone_public: c.phone_public },
        });
    }

    let mut rot_ids = HashSet::new();
    let mut rotations = Vec::new();
    for r in &raw.rotations {
        check_unique(&mut rot_ids, &r.id, "rotation", &mut rep);
        if r.members.is_empty() {
            rep.at(r.id.referenced.line(), format!("rotation {} has no members", r.id.value));
        }
        for m in &r.members {
            if !known(&m.value) {
                rep.at(m.referenced.line(), format!("unknown person {:?} in rotation {}", m.value, r.id.value));
            }
        }
        let day = r.handoff.day.value.parse::<Weekday>().unwrap_or_else(|_| {
            rep.at(
                r.handoff.day.referenced.line(),
                format!("bad handoff day {:?}; write e.g. monday", r.handoff.day.value),
            );
            Weekday::Mon
        });
        let time = NaiveTime::parse_from_str(&r.handoff.time.value, "%H:%M").unwrap_or_else(|_| {
            rep.at(
                r.handoff.time.referenced.line(),
                format!("bad handoff time {:?}; write HH:MM, e.g. 09:00", r.handoff.time.value),
            );
            NaiveTime::MIN
        });
        rotations.push(Rotation {
            id: r.id.value.clone(),
            members: r.members.iter().map(|m| m.value.clone()).collect(),
            handoff_day: day,
            handoff_time: time,
            timezone: parse_tz(&r.timezone, timezone, &mut rep),
        });
    }

    let organisation = raw.organisation.as_ref().map(|o| {
        let c = &o.contacts.value;
        if !c.email.contains('@') {
            rep.at(o.contacts.referenced.line(), "organisation needs an offline contact email".to_string());
        }
        if c.phone_public && c.phone.is_none() {
            rep.at(o.contacts.referenced.line(), "organisation sets phone_public but has no phone".to_string());
        }
        Organisation {
            name: o.name.clone(),
            contacts: Contacts { email: c.email.clone(), phone: c.phone.clone(), phone_public: c.phone_public },
        }
    });
    let mut recognition: Vec<Recognised> = Vec::new();
    for r in &raw.recognition {
        if r.name.value.trim().is_empty() {
            rep.at(r.name.referenced.line(), "a recognition entry needs a name".to_string());
        } else if recognition.iter().any(|x| x.name == r.name.value) {
            rep.at(r.name.referenced.line(), format!("recognition {:?} is listed twice", r.name.value));
        }
        if let Some(site) = &r.site {
            if !site_ids.contains(site.value.as_str()) {
                rep.at(
                    site.referenced.line(),
                    format!("recognition {:?} names unknown site {:?}", r.name.value, site.value),
                );
            }
        }
        let phrases: Vec<String> =
            r.phrases.value.iter().map(|p| super::text::normalise_phrase(p)).filter(|p| !p.is_empty()).collect();
        if phrases.is_empty() {
            rep.at(
                r.phrases.referenced.line(),
                format!("recognition {:?} needs at least one phrase under match", r.name.value),
            );
        }
        recognition.push(Recognised {
            name: r.name.value.clone(),
            site: r.site.as_ref().map(|s| s.value.clone()),
            phrases,
        });
    }
    if rep.problems.is_empty() {
        Ok(Team { timezone, people, sites, rotations, organisation, recognition })
    } else {
        Err(Problems(rep.problems))
    }
}

/// Local wall-clock helper used by schedules and rotations.
pub fn local_midnight(tz: Tz, date: chrono::NaiveDate) -> DateTime<Utc> {
    tz.from_local_datetime(&date.and_time(NaiveTime::MIN))
        .earliest()
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&date.and_time(NaiveTime::MIN)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rotation() -> Rotation {
        Rotation {
            id: "px".into(),
            members: vec!["a".into(), "b".into(), "c".into()],
            handoff_day: Weekday::Mon,
            handoff_time: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            timezone: chrono_tz::America::Chicago,
        }
    }

    #[test]
    fn on_call_hands_off_weekly_at_the_local_handoff_time() {
        let r = rotation();
        // Monday 2026-11-23 08:59 and 09:00 in Chicago (CST, UTC-6).
        let before = Utc.with_ymd_and_hms(2026, 11, 23, 14, 59, 0).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 11, 23, 15, 0, 0).unwrap();
        assert_ne!(r.on_call(before), r.on_call(after));
        // The same person all week, back to them after three handoffs.
        let later = after + chrono::Duration::days(6);
        assert_eq!(r.on_call(after), r.on_call(later));
        assert_eq!(r.on_call(after), r.on_call(after + chrono::Duration::weeks(3)));
    }
}

#[cfg(test)]
mod recognition_tests {
    use super::*;

    fn shipped() -> String {
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/team.yaml")).unwrap()
    }

    fn load_text(text: &str) -> Result<Team, Problems> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("team.yaml");
        std::fs::write(&path, text).unwrap();
        load(&path)
    }

    #[test]
    fn praise_names_only_listed_staff_and_only_at_their_site() {
        let team = load_text(&shipped()).unwrap();
        assert_eq!(team.praised_in("Nurse Alicia was so kind", Some("northgate")), ["Alicia Moreno, RN"]);
        assert!(team.praised_in("Nurse Alicia was so kind", Some("riverside")).is_empty(), "listed for Northgate only");
        assert_eq!(team.praised_in("The FRONT-DESK staff were lovely", None), ["Front desk team"]);
        assert!(team.praised_in("Dr. Smith was wonderful", Some("northgate")).is_empty());
    }

    #[test]
    fn a_recognition_entry_with_an_unknown_site_or_no_phrase_is_refused_with_its_line() {
        let text = shipped().replacen(
            "    site: northgate\n    match: [nurse alicia, alicia]",
            "    site: southside\n    match: []",
            1,
        );
        let problems = load_text(&text).unwrap_err().to_string();
        assert!(problems.contains("recognition \"Alicia Moreno, RN\" names unknown site \"southside\""), "{problems}");
        assert!(
            problems.contains("recognition \"Alicia Moreno, RN\" needs at least one phrase under match"),
            "{problems}"
        );
        let line = text.lines().position(|l| l.contains("site: southside")).unwrap() + 1;
        assert!(problems.contains(&format!("team.yaml:{line}:")), "{problems}");
    }

    #[test]
    fn recognised_people_are_staff_names_but_teams_are_not() {
        let team = load_text(&shipped()).expect("shipped team file");
        let names = team.staff_names();
        assert!(names.contains(&"Alicia Moreno".to_string()), "{names:?}");
        assert!(names.contains(&"Amir Haddad".to_string()), "{names:?}");
        assert!(!names.iter().any(|n| n.contains("team") || n.contains("nurses")), "{names:?}");
    }
}
