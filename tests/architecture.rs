//! The layers of `src/` (README, "Architecture") kept honest: every `crate::…` path in
//! every source file is checked against the rule that imports point down only, and that
//! adapters never import each other. A new import that breaks the rule fails here, naming
//! the file and the import.

use std::path::{Path, PathBuf};

/// (rank, name) of a module; a module may import only modules of its rank or below.
fn layer(module: &str) -> (u8, &'static str) {
    let is = |m: &str| module == m || module.starts_with(&format!("{m}::"));
    if is("domain") || is("clock") {
        (0, "core: domain")
    } else if is("playbook") || is("config") {
        (1, "core: playbooks and settings")
    } else if is("store") || is("publish") || ["chat", "chat::card", "chat::command", "chat::escape"].contains(&module)
    {
        (2, "core: store and the chat-neutral model")
    } else if is("ctx") || is("errors") {
        (3, "core: context and errors")
    } else if ["workflow", "intake", "drafting", "digest", "present", "jobs", "chat::interact"].iter().any(|m| is(m)) {
        (4, "services")
    } else if ["chat::slack", "chat::discord", "chat::console", "sources"].iter().any(|m| is(m)) {
        (6, "adapters")
    } else {
        (7, "assembly (app, registry, http, the CLI)")
    }
}

/// The adapter a module belongs to, if any (`chat::slack::inbound` → `chat::slack`).
fn adapter(module: &str) -> Option<String> {
    if layer(module).0 != 6 {
        return None;
    }
    let parts: Vec<&str> = module.split("::").collect();
    Some(if parts[0] == "chat" { parts[..2].join("::") } else { parts[0].to_string() })
}

/// Module paths named after `crate::` in `text` (grouped imports expanded), cut to the
/// deepest prefix the layer table distinguishes.
fn imports(text: &str) -> Vec<String> {
    let mut paths = Vec::new();
    // Comments may name modules freely.
    let code: String = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    let text = code.as_str();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            paths.extend(inner.split(',').map(|p| p.trim().to_string()));
        } else {
            paths.push(rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect());
        }
    }
    let mut out: Vec<String> = paths
        .iter()
        .filter_map(|p| {
            let parts: Vec<&str> = p
                .split("::")
                .take_while(|s| {
                    !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
                })
                .collect();
            let first = parts.first()?.to_string();
            const CHAT_MODULES: [&str; 7] = ["card", "command", "console", "discord", "escape", "interact", "slack"];
            Some(match parts.get(1) {
                Some(second) if first == "chat" && CHAT_MODULES.contains(second) => format!("chat::{second}"),
                _ => first,
            })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn imports_point_down_the_layers_and_adapters_stay_apart() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 40);
    let mut wrong = Vec::new();
    for f in &files {
        let module = module_of(&src, f);
        let (rank, name) = layer(&module);
        for dep in imports(&std::fs::read_to_string(f).unwrap()) {
            let (their_rank, their_name) = layer(&dep);
            let crosses_adapters = matches!((adapter(&module), adapter(&dep)), (Some(a), Some(b)) if a != b);
            if their_rank > rank || crosses_adapters {
                wrong.push(format!(
                    "src/{} ({name}) uses crate::{dep} ({their_name})",
                    f.strip_prefix(&src).unwrap().display()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "imports that point up a layer or across adapters:\n  {}", wrong.join("\n  "));
}

#[test]
fn the_checker_sees_grouped_and_nested_imports() {
    let text = "use crate::{store::Store, chat::slack::Slack};\nlet x = crate::app::Ctx::new();\n// crate::ops\ncrate::chat::queue(x);";
    assert_eq!(imports(text), ["app", "chat", "chat::slack", "store"]);
    assert_eq!(layer("chat::slack::inbound").0, 6);
    assert_eq!(layer("chat::card").0, 2);
    assert_eq!(adapter("chat::discord::layout").as_deref(), Some("chat::discord"));
}
