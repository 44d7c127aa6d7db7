//! The `carebot` binary as an operator uses it: check, ingest, the case actions, run-job.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Cli {
    dir: tempfile::TempDir,
    config: PathBuf,
    database_url: Option<String>,
}

impl Cli {
    /// A temp working folder with a copy of the shipped playbooks and a config using them.
    fn new(database_url: Option<String>) -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let pb = dir.path().join("playbooks");
        std::fs::create_dir_all(&pb).unwrap();
        for f in [
            "team.yaml",
            "triage.yaml",
            "triage-corpus.jsonl",
            "reply-check.yaml",
            "situations.yaml",
            "sample-mentions.jsonl",
        ] {
            std::fs::copy(repo().join("playbooks").join(f), pb.join(f)).unwrap();
        }
        std::fs::create_dir_all(pb.join("replies")).unwrap();
        for entry in std::fs::read_dir(repo().join("playbooks/replies")).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, pb.join("replies").join(path.file_name().unwrap())).unwrap();
        }
        let config = dir.path().join("carebot.toml");
        std::fs::write(
            &config,
            format!(
                "[database]\nsqlite_path = \"{}\"\n\n[playbooks]\ndir = \"{}\"\n\n[jobs.retention]\ncron = \"0 30 3 * * *\"\n",
                dir.path().join("carebot.db").display(),
                pb.display()
            ),
        )
        .unwrap();
        Cli { dir, config, database_url }
    }
    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_carebot"));
        cmd.arg("--config").arg(&self.config).args(args).current_dir(self.dir.path());
        cmd.env_remove("DATABASE_URL").env_remove("CAREBOT_USER").env("RUST_LOG", "warn");
        if let Some(u) = &self.database_url {
            cmd.env("DATABASE_URL", u);
        }
        cmd.output().expect("run carebot")
    }
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }
    fn err(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "{args:?} should fail: {}", String::from_utf8_lossy(&out.stdout));
        String::from_utf8(out.stderr).unwrap()
    }
    fn playbook(&self, name: &str) -> PathBuf {
        self.dir.path().join("playbooks").join(name)
    }
}

fn replace_in(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from:?} not in {}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

fn line_of(path: &Path, needle: &str) -> usize {
    std::fs::read_to_string(path).unwrap().lines().position(|l| l.contains(needle)).unwrap() + 1
}

fn work_a_case_end_to_end(cli: &Cli) {
    let out = cli.ok(&["ingest", "playbooks/sample-mentions.jsonl"]);
    assert!(out.contains("10 new case(s), 0 revision(s), 0 duplicate(s), 0 similar, 0 bad row(s)"), "{out}");
    assert!(cli.ok(&["case", "claim", "1", "--as", "sam"]).contains("claimed by Sam Whitfield"));
    let shown: serde_json::Value = serde_json::from_str(&cli.ok(&["case", "show", "1", "--json"])).unwrap();
    assert_eq!(shown["case"]["owner"], "sam");
    assert_eq!(shown["case"]["state"], "claimed");
    assert_eq!(shown["events"][1]["action"], "claim");
    assert_eq!(shown["events"][1]["actor"], "sam");

    let err = cli.err(&["case", "claim", "1", "--as", "priya"]);
    assert!(err.contains("Case 1 is already claimed by Sam Whitfield"), "{err}");
    assert!(cli
        .ok(&["case", "resolve", "1", "--outcome", "recovered", "--as", "sam"])
        .contains("Case 1: resolved (recovered) by Sam Whitfield"));
    let err = cli.err(&["case", "resolve", "1", "--outcome", "recovered", "--as", "sam"]);
    assert!(err.contains("Case 1 is resolved; you cannot resolve it"), "{err}");
    let shown: serde_json::Value = serde_json::from_str(&cli.ok(&["case", "show", "1", "--json"])).unwrap();
    assert_eq!(shown["case"]["outcome"], "recovered");
    assert_eq!(shown["events"].as_array().unwrap().len(), 3, "the refused actions left no trace");

    let again = cli.ok(&["ingest", "playbooks/sample-mentions.jsonl"]);
    assert!(again.contains("0 new case(s), 0 revision(s), 10 duplicate(s)"), "{again}");
    let open = cli.ok(&["cases", "--open", "--json"]);
    assert_eq!(serde_json::from_str::<Vec<serde_json::Value>>(&open).unwrap().len(), 9);
}

#[test]
fn an_operator_works_a_case_end_to_end_on_sqlite() {
    work_a_case_end_to_end(&Cli::new(None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_works_a_case_end_to_end_on_postgres() {
    let db = TestDb::new(carebot::store::Backend::Postgres).await;
    let cli = Cli::new(Some(db.url.clone()));
    tokio::task::spawn_blocking(move || work_a_case_end_to_end(&cli)).await.unwrap();
}

#[test]
fn a_changed_rating_in_a_second_import_is_a_revision_and_bad_rows_are_reported_by_line() {
    let cli = Cli::new(None);
    let csv = cli.dir.path().join("healthgrades.csv");
    std::fs::write(
        &csv,
        "review_id,reviewer,stars,review_date,review_text\n\
         hg-1,Pat,1,2026-11-01T10:00:00Z,Waited two hours at Eastbrook\n\
         hg-2,Lee,nine,2026-11-01T10:00:00Z,Rude front desk at Northgate\n\
         hg-3,Kim,5,2026-11-02T10:00:00Z,Thank you Riverside nurses\n",
    )
    .unwrap();
    let out = cli.run(&["ingest", csv.to_str().unwrap(), "--source", "healthgrades"]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("2 new case(s), 0 revision(s), 0 duplicate(s), 0 similar, 1 bad row(s)"), "{stdout}");
    assert!(stderr.contains("healthgrades.csv:3: field `rating` must be a number"), "{stderr}");

    std::fs::write(
        &csv,
        "review_id,reviewer,stars,review_date,review_text\nhg-1,Pat,4,2026-11-01T10:00:00Z,Waited two hours at Eastbrook but they called me back\n",
    )
    .unwrap();
    let out = cli.ok(&["ingest", csv.to_str().unwrap(), "--source", "healthgrades"]);
    assert!(out.contains("0 new case(s), 1 revision(s)"), "{out}");
    let shown = cli.ok(&["case", "show", "1"]);
    assert!(shown.contains("review revised: rating 1 → 4"), "{shown}");

    let jsonl = cli.dir.path().join("mixed.jsonl");
    std::fs::write(
        &jsonl,
        "{\"source\":\"x\",\"external_id\":\"a\",\"text\":\"Riverside parking is a nightmare\"}\n\
         {not json}\n\
         {\"source\":\"x\",\"external_id\":\"b\"}\n\
         {\"source\":\"x\",\"external_id\":\"c\",\"text\":\"hi\",\"colour\":\"red\"}\n",
    )
    .unwrap();
    let out = cli.run(&["ingest", jsonl.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("mixed.jsonl:2: malformed JSON"), "{stderr}");
    assert!(stderr.contains("mixed.jsonl:3: missing field `text`"), "{stderr}");
    assert!(stderr.contains("mixed.jsonl:4: malformed JSON: unknown field `colour`"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 new case(s)"));
}

#[test]
fn check_passes_on_the_shipped_playbooks_and_config() {
    let out = Command::new(env!("CARGO_BIN_EXE_carebot"))
        .args(["check", "--config", "config/carebot.toml"])
        .current_dir(repo())
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("8 people, 3 sites, 1 rotation(s)"), "{stdout}");
    // The production example must stay valid too.
    let out = Command::new(env!("CARGO_BIN_EXE_carebot"))
        .args(["check", "--config", "config/carebot.example.toml"])
        .current_dir(repo())
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn check_refuses_a_listing_mapped_to_an_unknown_site() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(repo().join("config/carebot.example.toml")).unwrap();
    let from = "id = \"riverside-medical-center-springfield\"\nsite = \"riverside\"";
    assert!(example.contains(from));
    let broken = example.replace(from, "id = \"riverside-medical-center-springfield\"\nsite = \"southside\"");
    let path = dir.path().join("carebot.toml");
    std::fs::write(&path, &broken).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_carebot"))
        .args(["check", "--config", path.to_str().unwrap()])
        .current_dir(repo())
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let line = broken.lines().position(|l| l.contains("\"southside\"")).unwrap() + 1;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "carebot.toml:{line}: sources.yelp.businesses riverside-medical-center-springfield: site \"southside\" is not in team.yaml"
        )),
        "{stderr}"
    );
}

#[test]
fn a_broken_playbook_makes_check_and_serve_fail_naming_file_and_line() {
    let cli = Cli::new(None);
    let team = cli.playbook("team.yaml");
    replace_in(&team, "members: [dena, sam, priya]", "members: [dena, sam, bob]");
    let sit = cli.playbook("situations.yaml");
    replace_in(&sit, "acknowledge: 15m, first_response: 1h", "acknowledge: 15 minutes-ish, first_response: 1h");
    replace_in(&sit, "channel: shoutouts", "channel: kudos");
    let triage = cli.playbook("triage.yaml");
    replace_in(&triage, "patterns: ['\\b(?:\\d+|two", "patterns: ['\\b((?:\\d+|two");

    let err = cli.err(&["check"]);
    let team_line = line_of(&team, "members: [dena, sam, bob]");
    assert!(err.contains(&format!("team.yaml:{team_line}: unknown person \"bob\" in rotation px-oncall")), "{err}");
    let tri_line = line_of(&triage, "patterns: ['\\b(");
    assert!(err.contains(&format!("triage.yaml:{tri_line}: pattern")) && err.contains("does not compile"), "{err}");
    // The situations file is checked against the other two, so it waits until they are fixed.
    replace_in(&team, "members: [dena, sam, bob]", "members: [dena, sam, priya]");
    replace_in(&triage, "patterns: ['\\b((?:\\d+|two", "patterns: ['\\b(?:\\d+|two");
    let err = cli.err(&["check"]);
    let dur_line = line_of(&sit, "15 minutes-ish");
    assert!(err.contains(&format!("situations.yaml:{dur_line}: bad duration")), "{err}");
    let ch_line = line_of(&sit, "channel: kudos");
    assert!(err.contains(&format!("situations.yaml:{ch_line}: unknown channel \"kudos\"")), "{err}");

    let err = cli.err(&["serve"]);
    assert!(err.contains(&format!("situations.yaml:{ch_line}: unknown channel")), "serve must fail fast: {err}");
}

#[test]
fn a_yaml_syntax_error_and_an_unknown_key_are_located() {
    let cli = Cli::new(None);
    let team = cli.playbook("team.yaml");
    replace_in(&team, "    name: Sam Whitfield", "    name: Sam Whitfield\n    nickname: Sammy");
    let err = cli.err(&["check"]);
    let line = line_of(&team, "nickname: Sammy");
    assert!(err.contains(&format!("team.yaml:{line}: unknown key `nickname`")), "{err}");

    // A word where a number belongs is named in plain words, with what was written.
    let cli = Cli::new(None);
    let triage = cli.playbook("triage.yaml");
    replace_in(&triage, "  max_distance: 10 ", "  max_distance: ten ");
    let err = cli.err(&["check"]);
    let line = line_of(&triage, "max_distance: ten");
    assert!(err.contains(&format!("triage.yaml:{line}: a whole number was expected here, not \"ten\"")), "{err}");
    assert!(!err.contains("u32"), "no Rust type names: {err}");
}

#[test]
fn check_explains_a_five_field_cron_line_and_an_unknown_config_key() {
    let cli = Cli::new(None);
    replace_in(&cli.config, "cron = \"0 30 3 * * *\"", "cron = \"30 3 * * *\"");
    let err = cli.err(&["check"]);
    let line = line_of(&cli.config, "cron = \"30 3");
    assert!(err.contains(&format!("carebot.toml:{line}: jobs.retention.cron: \"30 3 * * *\" has 5 fields")), "{err}");
    assert!(err.contains("write \"0 30 3 * * *\""), "{err}");

    let cli = Cli::new(None);
    replace_in(&cli.config, "[playbooks]", "[playbooks]\ndirectory = \"x\"");
    let err = cli.err(&["check"]);
    assert!(err.contains("unknown field") && err.contains("directory"), "{err}");
}

#[test]
fn run_job_runs_a_job_as_if_at_the_given_time_and_refuses_unknown_names() {
    let cli = Cli::new(None);
    cli.ok(&["ingest", "playbooks/sample-mentions.jsonl"]);
    cli.ok(&["case", "resolve", "8", "--outcome", "not_actionable", "--as", "sam"]);
    let out = cli.ok(&["run-job", "retention", "--at", "2028-01-01T00:00:00Z"]);
    assert!(out.contains("purged text of 1 mention(s)"), "{out}");
    let err = cli.err(&["run-job", "sweep"]);
    assert!(
        err.contains("unknown job \"sweep\"; known jobs: deliver_outbox, daily_digest, weekly_report, escalation_sweep, poll_feeds, poll_x, poll_google_reviews, poll_yelp, spike_check, poll_files, retention"),
        "{err}"
    );
    let err = cli.err(&["run-job", "retention", "--at", "tomorrow"]);
    assert!(err.contains("not an RFC 3339 time"), "{err}");
}

#[test]
fn a_reply_is_drafted_and_a_non_compliant_one_needs_a_leads_override() {
    let cli = Cli::new(None);
    cli.ok(&["ingest", "playbooks/sample-mentions.jsonl"]);
    cli.ok(&["case", "claim", "1", "--as", "sam"]);
    let d = cli.ok(&["draft", "1", "--as", "sam"]);
    assert!(d.contains("template wait-time") && d.contains("Compliance: no findings."), "{d}");
    let switched = cli.ok(&["draft", "1", "--as", "sam", "--template", "negative-review"]);
    assert!(switched.contains("template negative-review"), "{switched}");

    let bad =
        "Sorry about your visit on 11/03, Dr. Patel says hi. Email patientrelations.riverside@lakeshore-health.example";
    let err = cli.err(&["case", "respond", "1", "--as", "sam", "--text", bad]);
    for rule in ["patient_relationship \"your visit\"", "phi \"11/03\"", "staff_name \"Dr. Patel\""] {
        assert!(err.contains(rule), "{rule} missing: {err}");
    }
    let err = cli.err(&["case", "respond", "1", "--as", "sam", "--text", bad, "--override"]);
    assert!(err.contains("needs the lead role"), "{err}");
    let out = cli.ok(&["case", "respond", "1", "--as", "dena", "--text", bad, "--override"]);
    assert!(out.contains("compliance findings overridden"), "{out}");
    let shown: serde_json::Value = serde_json::from_str(&cli.ok(&["case", "show", "1", "--json"])).unwrap();
    let last = shown["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["action"].as_str(), last["detail"]["override_by"].as_str()), (Some("respond"), Some("dena")));
}

#[test]
fn a_broken_reply_template_is_named_with_file_and_line() {
    let cli = Cli::new(None);
    let file = cli.playbook("replies/zz-broken.md");
    std::fs::write(
        &file,
        "---\nid: broken\ntitle: Broken\nsituations: [negative-review, no-such-situation]\n---\nHi {{ author }},\nplease fax {{ contacts.fax }}\n",
    )
    .unwrap();
    let err = cli.err(&["check"]);
    assert!(err.contains("zz-broken.md:4: unknown situation \"no-such-situation\""), "{err}");
    std::fs::write(
        &file,
        "---\nid: broken\ntitle: Broken\n---\nHi {{ author }},\nplease fax {{ contacts.fax }} {{ contacts.email }}\n",
    )
    .unwrap();
    let err = cli.err(&["check"]);
    assert!(err.contains("zz-broken.md:6: template does not render"), "{err}");
    std::fs::write(&file, "---\nid: broken\ntitle: Broken\n---\nHi {{ author }\n").unwrap();
    let err = cli.err(&["check"]);
    assert!(err.contains("zz-broken.md:5: template does not compile"), "{err}");
}

#[test]
fn ingest_exits_1_when_rows_were_rejected_and_keeps_the_good_ones() {
    let cli = Cli::new(None);
    let file = cli.dir.path().join("export.jsonl");
    std::fs::write(
        &file,
        "{\"source\":\"zapier\",\"external_id\":101,\"text\":\"Riverside parking is a nightmare\"}\n\
         {\"source\":\"zapier\",\"external_id\":\"102\",\"text\":\"bad\\u0000byte\"}\n",
    )
    .unwrap();
    let out = cli.run(&["ingest", file.to_str().unwrap()]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("1 new case(s)") && stdout.contains("1 bad row(s)"), "{stdout}");
    assert!(stderr.contains("export.jsonl:2: field `text` contains a control character (U+0000)"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "no colour codes when stderr is not a terminal: {stderr:?}");
    // All rows good: exit 0.
    std::fs::write(&file, "{\"source\":\"zapier\",\"external_id\":103,\"text\":\"Thanks Eastbrook\"}\n").unwrap();
    cli.ok(&["ingest", file.to_str().unwrap()]);
}

#[test]
fn check_lists_the_problems_of_every_broken_file_in_one_run() {
    let cli = Cli::new(None);
    replace_in(&cli.config, "cron = \"0 30 3 * * *\"", "cron = \"30 3 * * *\"");
    // An unknown key no longer hides the other mistakes in the same file.
    replace_in(&cli.config, "[database]", "[http]\nidle_timout = \"5s\"\n\n[database]");
    let team = cli.playbook("team.yaml");
    replace_in(&team, "members: [dena, sam, priya]", "members: [dena, sam, bob]");
    let triage = cli.playbook("triage.yaml");
    replace_in(&triage, "patterns: ['\\b(?:\\d+|two", "patterns: ['\\b((?:\\d+|two");
    let err = cli.err(&["check"]);
    assert!(err.contains("carebot.toml:") && err.contains("jobs.retention.cron"), "{err}");
    assert!(err.contains("idle_timout"), "{err}");
    assert!(err.contains("team.yaml:") && err.contains("unknown person \"bob\""), "{err}");
    assert!(err.contains("triage.yaml:") && err.contains("does not compile"), "{err}");
}

#[test]
fn a_category_renamed_in_the_rules_but_not_in_the_corpus_is_refused() {
    let cli = Cli::new(None);
    let triage = cli.playbook("triage.yaml");
    replace_in(&triage, "  - id: parking\n", "  - id: car_park\n");
    let err = cli.err(&["check"]);
    assert!(
        err.contains("triage.yaml:") && err.contains("category \"parking\", which is not a category here"),
        "{err}"
    );
}

#[test]
fn oncall_set_runs_as_the_readme_shows_and_is_refused_to_non_leads() {
    let cli = Cli::new(None);
    let out = cli.ok(&["oncall", "set", "px-oncall", "priya", "--until", "2099-11-27T17:00:00-06:00", "--as", "dena"]);
    assert!(out.contains("Priya") || out.contains("priya"), "{out}");
    let now = cli.ok(&["oncall"]);
    assert!(now.contains("Priya"), "{now}");
    let err = cli.err(&["oncall", "set", "px-oncall", "sam", "--until", "2099-11-27T17:00:00-06:00", "--as", "sam"]);
    assert!(err.contains("lead"), "{err}");
}

#[test]
fn outbox_lists_what_waits_and_retry_requeues_failed_messages() {
    let cli = Cli::new(None);
    cli.ok(&["ingest", "playbooks/sample-mentions.jsonl"]);
    let out = cli.ok(&["outbox"]);
    assert!(out.contains("channel:px-triage") && out.contains("pending"), "{out}");
    let out = cli.ok(&["outbox", "retry", "--failed"]);
    assert!(out.contains("0 failed message(s) queued again"), "{out}");
    let err = cli.err(&["outbox", "retry", "--id", "999"]);
    assert!(err.contains("no failed message with id 999"), "{err}");
    let err = cli.err(&["outbox", "retry"]);
    assert!(err.contains("--id") || err.contains("--failed"), "{err}");
}

#[test]
fn lint_checks_a_text_alone_and_names_what_blocks_it() {
    let cli = Cli::new(None);
    let ok =
        cli.ok(&["lint", "Thank you for the kind words! We'll share them. — Dena", "--platform", "google", "--praise"]);
    assert!(ok.contains("ok: nothing found"), "{ok}");
    // Nurse Alicia is on team.yaml's recognition list for Northgate (she agreed to be
    // named): a thank-you to praise there may pass the words on to her; elsewhere, or in
    // a reply to a complaint, naming her still blocks.
    let thanks = "Thank you! We'll pass your kind words on to Nurse Alicia. — Dena";
    let ok = cli.ok(&["lint", thanks, "--site", "northgate", "--praise"]);
    assert!(ok.contains("ok: nothing found"), "{ok}");
    for args in [&["--site", "riverside", "--praise"][..], &["--site", "northgate"][..]] {
        let out = cli.run(&[&["lint", thanks][..], args].concat());
        assert!(String::from_utf8_lossy(&out.stdout).contains("BLOCK staff_name \"Nurse Alicia\""), "{args:?}");
    }
    // Her full name without a title is hers too: fine in thanks at Northgate, flagged elsewhere.
    let full = "Thank you! We'll pass your kind words on to Alicia Moreno. — Dena";
    let ok = cli.ok(&["lint", full, "--site", "northgate", "--praise"]);
    assert!(ok.contains("ok: nothing found"), "{ok}");
    let out = cli.run(&["lint", full, "--site", "eastbrook", "--praise"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("staff_name \"Alicia Moreno\""), "{out:?}");
    let out = cli.run(&["lint", "Sorry about the Tylenol mix-up. Please send us a direct message.", "--platform", "x"]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("BLOCK phi \"Tylenol\"") && said.contains("blocked:"), "{said}");
    // The same invitation on Google, where nobody can be messaged, is no offline route.
    let out = cli.run(&["lint", "We're sorry. Please send us a direct message.", "--platform", "google"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("no_offline_route"));
    let err = cli.err(&["lint", "Thanks!", "--platform", "tiktok"]);
    assert!(err.contains("there is no platform \"tiktok\""), "{err}");
    let err = cli.err(&["lint", "Thanks!", "--case", "1"]);
    assert!(err.contains("--case needs --as"), "{err}");
}

#[test]
fn triage_eval_measures_a_labelled_file_and_names_bad_lines() {
    let cli = Cli::new(None);
    let file = cli.dir.path().join("mine.jsonl");
    std::fs::write(
        &file,
        concat!(
            r#"{"text": "They sent my dad home from Riverside and two days later he was in the ICU with sepsis.", "expect": {"site": "riverside", "risk": true}}"#,
            "\n",
            r#"{"text": "Parking garage at Northgate is always full, circled for 20 minutes.", "rating": 2, "expect": {"site": "northgate", "categories": ["parking"]}}"#,
            "\n",
            r#"{"text": "There was a mistake with my results at Riverside and I am still confused about what happened next.", "rating": 2, "expect": {"site": "riverside", "risk": true}}"#,
            "\n",
            r#"{"text": "Visited the Northgate lobby today to drop off a form.", "expect": {"site": "eastbrook"}}"#,
            "\n"
        ),
    )
    .unwrap();
    let out = cli.ok(&["triage", "eval", file.to_str().unwrap(), "--misses"]);
    assert!(out.contains("4 labelled mentions"), "{out}");
    assert!(out.contains("risk (with possible risk)        precision 1.00  recall 1.00"), "{out}");
    assert!(out.contains("  Parking    ") && out.contains("Site right: 0.75 (3 of 4)"), "{out}");
    assert!(out.contains("site (labelled eastbrook, triaged northgate):\n  - Visited the Northgate lobby"), "{out}");
    assert!(out.contains("spam                             n/a"), "{out}");
    // Caught, but only as possible risk: --misses says which ones a person must confirm.
    let possible = out.split("risk (caught only as possible risk: a person confirms it):\n").nth(1).unwrap_or("");
    assert!(possible.starts_with("  - There was a mistake with my results"), "{out}");
    // Why, in the playbook's words: the rule's label and what it matched.
    assert!(possible.contains("[Possible clinical harm (to confirm): results … mistake"), "{out}");
    std::fs::write(&file, "{\"text\": \"ok\", \"expect\": {}}\n{\"text\": \"no labels\"}\n").unwrap();
    let err = cli.err(&["triage", "eval", file.to_str().unwrap()]);
    assert!(err.contains("mine.jsonl:2: not a labelled mention") && err.contains("expect"), "{err}");
    // A label the playbook does not know is a typo, not a label nobody catches.
    let typos = "{\"text\": \"Waited 3 hours\", \"expect\": {\"site\": \"westside\"}}\n\
                 {\"text\": \"Waited 3 hours\", \"expect\": {\"categories\": [\"waiting\"]}}\n";
    std::fs::write(&file, typos).unwrap();
    let err = cli.err(&["triage", "eval", file.to_str().unwrap()]);
    assert!(err.contains("mine.jsonl:1: unknown site \"westside\"; one of riverside"), "{err}");
    assert!(err.contains("mine.jsonl:2: unknown category \"waiting\"; one of wait_times"), "{err}");
}

#[test]
fn piping_a_long_listing_into_head_ends_quietly() {
    let cli = Cli::new(None);
    let line = format!(
        "'{}' --config '{}' triage eval '{}' --misses | head -1",
        env!("CARGO_BIN_EXE_carebot"),
        cli.config.display(),
        cli.playbook("triage-corpus.jsonl").display()
    );
    let out = Command::new("sh").arg("-c").arg(&line).env("RUST_LOG", "warn").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !err.contains("panicked"), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}

#[test]
fn check_refuses_ambiguous_durations_unordered_clocks_unknown_platforms_and_blocked_templates() {
    let cli = Cli::new(None);
    replace_in(
        &cli.playbook("situations.yaml"),
        "acknowledge: 15m, first_response: 1h",
        "acknowledge: 15M, first_response: 1h",
    );
    replace_in(
        &cli.playbook("situations.yaml"),
        "acknowledge: 10m, first_response: 30m",
        "acknowledge: 1h, first_response: 30m",
    );
    replace_in(&cli.playbook("reply-check.yaml"), "dm_platforms: [x,", "dm_platforms: [gogle, x,");
    let err = cli.err(&["check"]);
    assert!(err.contains("\"M\" could mean months or minutes"), "{err}");
    assert!(err.contains("reply-check.yaml") && err.contains("\"gogle\" is not a platform"), "{err}");
    assert!(err.contains("sla.acknowledge (1h) must not be later than sla.first_response (30m)"), "{err}");
    // Templates are checked against valid situations, so a fresh copy for them.
    let cli = Cli::new(None);
    replace_in(&cli.playbook("replies/short-apology-x.md"), "platforms: [x]", "platforms: [x, tiktok]");
    replace_in(
        &cli.playbook("replies/negative-review.md"),
        "fell short of what you should expect",
        "fell short during your visit",
    );
    let err = cli.err(&["check"]);
    assert!(err.contains("short-apology-x.md") && err.contains("unknown platform \"tiktok\""), "{err}");
    assert!(
        err.contains("negative-review.md") && err.contains("its own text is blocked") && err.contains("your visit"),
        "{err}"
    );
}

#[test]
fn reload_switches_a_running_serve_to_fixed_playbooks_and_refuses_broken_ones() {
    use std::io::BufRead;
    let cli = Cli::new(None);
    let text = std::fs::read_to_string(&cli.config).unwrap();
    std::fs::write(&cli.config, format!("{text}\n[http]\nlisten = \"127.0.0.1:0\"\n")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_carebot"))
        .arg("--config")
        .arg(&cli.config)
        .arg("serve")
        .current_dir(cli.dir.path())
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let base = first.trim_start_matches("carebot listening on ").to_string();
    let ready = |base: &str| {
        let mut s = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
        use std::io::{Read, Write};
        write!(s, "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    // The pid file appears once serve has started.
    for _ in 0..100 {
        if cli.dir.path().join("carebot.pid").exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let before = ready(&base);
    assert!(before.contains("ready; playbooks "), "{before}");

    // A broken playbook is refused by reload and the running set stays.
    let triage = cli.playbook("triage.yaml");
    replace_in(&triage, "negative_below: -0.05", "negative_below: [");
    let err = cli.err(&["reload"]);
    assert!(err.contains("triage.yaml") && err.contains("keeps its current ones"), "{err}");
    assert_eq!(ready(&base).lines().last(), before.lines().last());

    // Fixed (and changed), it is taken up without a restart.
    replace_in(&triage, "negative_below: [", "negative_below: -0.1");
    let said = cli.ok(&["reload"]);
    assert!(said.contains("asked carebot (pid"), "{said}");
    let mut after = String::new();
    for _ in 0..100 {
        after = ready(&base);
        if after.lines().last() != before.lines().last() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_ne!(after.lines().last(), before.lines().last(), "the version did not change: {after}");
    let version = said.split("(version ").nth(1).unwrap().split(')').next().unwrap();
    assert!(after.contains(&format!("playbooks {version}")), "{after} vs {said}");

    // SAFETY: signalling the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success() || status.code().is_some(), "{status:?}");
    assert!(!cli.dir.path().join("carebot.pid").exists(), "the pid file is removed at stop");
}

#[test]
fn marking_responded_shows_the_findings_recorded_with_the_reply_including_a_canned_warning() {
    let cli = Cli::new(None);
    cli.ok(&["ingest", "playbooks/sample-mentions.jsonl"]);
    let text = "We're sorry to hear this. Please email patientexperience@lakeshore-health.example and our team will follow up.";
    let first = cli.ok(&["case", "respond", "4", "--as", "sam", "--text", text]);
    assert!(!first.contains("findings recorded"), "{first}");
    let second = cli.ok(&["case", "respond", "6", "--as", "sam", "--text", text]);
    assert!(second.contains("Reply check findings recorded with it:") && second.contains("warn canned"), "{second}");
}

#[test]
fn a_risk_reply_goes_for_approval_and_a_lead_approves_the_waiting_text_from_the_terminal() {
    let cli = Cli::new(None);
    let mentions = cli.dir.path().join("risk.jsonl");
    std::fs::write(
        &mentions,
        "{\"source\":\"facebook\",\"external_id\":\"f-risk\",\"text\":\"Nurse gave my dad the wrong medication at \
         Riverside, calling a lawyer\",\"posted_at\":\"2026-11-30T10:00:00Z\"}\n",
    )
    .unwrap();
    cli.ok(&["ingest", mentions.to_str().unwrap()]);
    cli.ok(&["case", "claim", "1", "--as", "sam"]);
    let text = "We're very sorry to read this. Please contact our patient relations team at \
                patientrelations.riverside@lakeshore-health.example so we can help. — Sam";
    // The same meaning as `/care respond` in chat: an agent's text goes to the leads.
    let sent = cli.ok(&["case", "respond", "1", "--as", "sam", "--text", text]);
    assert!(sent.contains("went to the leads for approval"), "{sent}");
    assert!(cli.err(&["case", "approve", "1", "--as", "sam"]).contains("needs the lead role"));
    // No --text: the reply waiting for approval is the one approved.
    let approved = cli.ok(&["case", "approve", "1", "--as", "dena"]);
    assert!(approved.contains("reply approved by Dena Ortiz"), "{approved}");
    let done = cli.ok(&["case", "respond", "1", "--as", "sam", "--text", text]);
    assert!(done.contains("(now responded)"), "{done}");
    // Bad values are refused by the table's own checks before anything runs.
    let out = cli.run(&["case", "resolve", "1", "--outcome", "fixed", "--as", "sam"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown outcome \"fixed\""));
    assert!(cli.err(&["case", "approve", "99", "--as", "dena"]).contains("Case 99 does not exist"));
    let shown: serde_json::Value = serde_json::from_str(&cli.ok(&["case", "show", "1", "--json"])).unwrap();
    let actions: Vec<&str> =
        shown["events"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["opened", "claim", "request_approval", "approve_reply", "respond"]);
}

#[test]
fn a_possible_risk_on_site_now_reaches_the_risk_channel_and_can_be_confirmed_or_dismissed() {
    // Someone on site now goes to the on-site queue first (P1); triage also saw a possible
    // risk ("no interpreter"): the risk channel gets the card too, and the verdict works
    // from there as for any possible risk.
    let cli = Cli::new(None);
    let mentions = cli.dir.path().join("onsite.jsonl");
    let line = |id: &str, text: &str| format!("{{\"source\":\"x\",\"external_id\":\"{id}\",\"text\":\"{text}\"}}\n");
    let one = "We are at Riverside ER right now with my dad and there is no interpreter, he does not understand \
               what the nurse is asking him.";
    let two = "Sitting in the Eastbrook lobby right now, mi mama has been here since noon, no interpreter came.";
    std::fs::write(&mentions, [line("os-1", one), line("os-2", two)].concat()).unwrap();
    cli.ok(&["ingest", mentions.to_str().unwrap()]);
    let shown: serde_json::Value = serde_json::from_str(&cli.ok(&["case", "show", "1", "--json"])).unwrap();
    assert_eq!(shown["case"]["situation"], "on-site-now", "{shown}");
    let outbox = cli.ok(&["outbox"]);
    assert!(outbox.contains("channel:risk") && outbox.contains("channel:px-triage"), "{outbox}");

    let done = cli.ok(&["case", "risk", "1", "confirm", "--as", "sam"]);
    assert!(done.contains("possible risk confirmed by Sam Whitfield"), "{done}");
    let shown: serde_json::Value = serde_json::from_str(&cli.ok(&["case", "show", "1", "--json"])).unwrap();
    assert_eq!((&shown["case"]["situation"], &shown["case"]["risk"]), (&"clinical-risk".into(), &true.into()));

    let done = cli.ok(&["case", "risk", "2", "dismiss", "--as", "ruth"]);
    assert!(done.contains("possible risk dismissed by Ruth Adeyemi"), "{done}");
    let shown: serde_json::Value = serde_json::from_str(&cli.ok(&["case", "show", "2", "--json"])).unwrap();
    assert_eq!(shown["case"]["situation"], "on-site-now", "dismissed, it stays on site now: {shown}");
    let err = cli.err(&["case", "risk", "2", "confirm", "--as", "sam"]);
    assert!(err.contains("already dismissed by Ruth Adeyemi"), "{err}");
}
