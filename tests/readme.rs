//! Every `carebot` command line in the README's shell blocks, run as written against the
//! built binary in a fresh folder (a copy of the shipped config and playbooks, the sample
//! mentions imported as `serve` does at start). A line the README marks `# error:` must
//! fail; every other line must succeed. `serve` itself is exercised in tests/serve.rs.

mod common;

use common::repo;
use std::process::Command;

/// The command lines of the README's ```sh blocks that run carebot, in order.
fn readme_lines() -> Vec<String> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let mut out = Vec::new();
    let mut in_sh = false;
    for line in readme.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            in_sh = t == "```sh";
            continue;
        }
        if in_sh && (t.starts_with("cargo run") || t.starts_with("carebot ")) {
            out.push(t.to_string());
        }
    }
    out
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

#[test]
fn every_readme_command_line_runs_as_documented() {
    let lines = readme_lines();
    assert!(lines.len() >= 15, "the README's command lines were not found: {lines:?}");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("config"), &dir.path().join("config"));
    copy_dir(&repo().join("playbooks"), &dir.path().join("playbooks"));
    let bin = env!("CARGO_BIN_EXE_carebot");
    let run = |line: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(line)
            .current_dir(dir.path())
            .env("CAREBOT_BIN", bin)
            .env_remove("DATABASE_URL")
            .env_remove("CAREBOT_USER")
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    // What `serve` does first: import the sample mentions.
    let out = run("\"$CAREBOT_BIN\" ingest playbooks/sample-mentions.jsonl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut ran = 0;
    for line in &lines {
        let command =
            line.replacen("cargo run -q --", "\"$CAREBOT_BIN\"", 1).replacen("cargo run --", "\"$CAREBOT_BIN\"", 1);
        let command =
            if command.starts_with("carebot ") { command.replacen("carebot", "\"$CAREBOT_BIN\"", 1) } else { command };
        if command.contains("\" serve") {
            continue; // runs until stopped: tests/serve.rs
        }
        let out = run(&command);
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if line.contains("# error:") {
            assert!(!out.status.success(), "README says this fails, it succeeded: {line}\n{stdout}");
        } else {
            assert!(out.status.success(), "README line failed: {line}\n{stderr}{stdout}");
        }
        ran += 1;
    }
    assert!(ran >= 14, "ran {ran} lines");
}
