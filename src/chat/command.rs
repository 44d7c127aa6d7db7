//! The `/care` command grammar and the button/form identifiers, shared by every chat
//! platform. Pure: text in, a `Command` (or usage help) out.

use crate::domain::{Action, EscalationTarget, OfflineVia, Outcome, TriageField};
use std::str::FromStr;

use super::Button;

/// One `/care …` request, whatever platform it came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Help,
    /// Open, unclaimed cases, most urgent first (priority, then next due time).
    Queue,
    /// Cases the person owns.
    Mine,
    Show(i64),
    Claim(i64),
    Resolve {
        case_id: i64,
        outcome: Outcome,
        note: Option<String>,
    },
    /// A post a colleague forwarded, or a private post shown by screenshot.
    Log {
        url: String,
        text: String,
        confidential: bool,
    },
    Oncall,
    Draft {
        case_id: i64,
        template: Option<String>,
    },
    /// A case action that needs nothing but its arguments (release, take offline,
    /// escalate, reopen, note, send a reply back).
    Act {
        case_id: i64,
        action: Action,
    },
    /// Hand a case to someone: a team-file id, `@id`, or a chat mention.
    Reassign {
        case_id: i64,
        to: String,
    },
    /// Mark the public reply posted (on a risk case, ask a lead to approve it first).
    Respond {
        case_id: i64,
        text: Option<String>,
        override_block: bool,
        /// Also post it where the review lives (Google, Facebook, X).
        publish: bool,
        /// Posted by hand on a page carebot cannot post to: the link to the posted reply.
        link: Option<String>,
        /// `--no-text`: no reply text is recorded, and why.
        no_text: Option<String>,
        /// Facebook: send it privately on Messenger instead of as a public comment.
        private: bool,
    },
    /// A lead approves a reply: the text given, or the one waiting for approval.
    Approve {
        case_id: i64,
        text: Option<String>,
    },
    /// Replies waiting for a lead's approval.
    Approvals,
    /// A lead puts someone on call in a rotation until a time (`oncall set`).
    Cover {
        rotation: String,
        person: String,
        until: String,
    },
    /// Pause a case's escalation steps and nudges: `15m`, `1h`, `4h`, `tomorrow`, or
    /// any span like `90m`.
    Snooze {
        case_id: i64,
        span: String,
    },
}

/// What one argument of a `/care` subcommand takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// A case number (`42` or `#42`).
    Case,
    /// One of the resolution outcomes.
    Outcome,
    /// One word.
    Word,
    /// A link (Slack's `<https://…|label>` wrapping is undone).
    Url,
    /// Everything left on the line.
    Rest,
    /// `--NAME` anywhere on the line.
    Flag,
    /// A teammate: team-file id, `@id`, or a chat mention (`<@U…>`).
    Person,
    /// How a case continues offline: dm, phone or email.
    Via,
    /// Who to escalate to: site-owner, risk, lead, oncall:ROTATION or @person.
    Target,
    /// What triage field to correct: site, category or situation.
    Field,
    /// A possible risk's verdict: confirm or dismiss.
    Verdict,
}

#[derive(Debug, Clone, Copy)]
pub struct ArgSpec {
    pub name: &'static str,
    pub kind: ArgKind,
    pub required: bool,
    pub help: &'static str,
    /// How the argument is written after `carebot case NAME` in a terminal.
    pub cli: CliForm,
    /// Offered in chat (`/care`); false for terminal-only switches such as `--json`.
    pub chat: bool,
}

/// How a table argument is spelled on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CliForm {
    /// In order, without a name: `carebot case note 42 "called back"`.
    Positional,
    /// A named option (`--to sam`), or a switch for flags (`--override`).
    Long(&'static str),
}

impl ArgSpec {
    const fn positional(self) -> ArgSpec {
        ArgSpec { cli: CliForm::Positional, ..self }
    }
    const fn long(self, name: &'static str) -> ArgSpec {
        ArgSpec { cli: CliForm::Long(name), ..self }
    }
    const fn terminal_only(self) -> ArgSpec {
        ArgSpec { chat: false, ..self }
    }
}

/// One `/care` subcommand: the single definition the text parser, the help text and the
/// Discord command registration are all made from.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub help: &'static str,
    pub args: &'static [ArgSpec],
    /// Also a terminal command, `carebot case NAME …` (with `--as PERSON`).
    pub case_cli: bool,
}

impl Spec {
    /// The arguments `/care` takes (the table less terminal-only switches).
    pub fn chat_args(&self) -> impl Iterator<Item = &'static ArgSpec> + use<> {
        self.args.iter().filter(|a| a.chat)
    }
}

const fn arg(name: &'static str, kind: ArgKind, required: bool, help: &'static str) -> ArgSpec {
    ArgSpec { name, kind, required, help, cli: CliForm::Long(name), chat: true }
}
const CASE: ArgSpec = arg("case", ArgKind::Case, true, "Case number").positional();

/// The `/care` command table.
pub const COMMANDS: &[Spec] = &[
    Spec {
        name: "queue",
        aliases: &["q"],
        help: "open, unclaimed cases, most urgent first",
        args: &[],
        case_cli: false,
    },
    Spec { name: "mine", aliases: &[], help: "cases you own, most urgent first", args: &[], case_cli: false },
    Spec {
        name: "show",
        aliases: &[],
        help: "one case and its history",
        args: &[CASE, arg("json", ArgKind::Flag, false, "Print the case and its events as JSON").terminal_only()],
        case_cli: true,
    },
    Spec { name: "claim", aliases: &[], help: "take a case", args: &[CASE], case_cli: true },
    Spec {
        name: "resolve",
        aliases: &[],
        help: "resolve a case",
        args: &[
            CASE,
            arg("outcome", ArgKind::Outcome, true, "How it ended"),
            arg("note", ArgKind::Rest, false, "No patient details"),
        ],
        case_cli: true,
    },
    Spec {
        name: "log",
        aliases: &[],
        help: "log a post a colleague forwarded",
        args: &[
            arg("url", ArgKind::Url, true, "Link to the post"),
            arg("text", ArgKind::Rest, true, "What it says"),
            arg("confidential", ArgKind::Flag, false, "A private post: hide who forwarded it"),
        ],
        case_cli: false,
    },
    Spec {
        name: "release",
        aliases: &[],
        help: "give a claimed case back to the queue",
        args: &[CASE],
        case_cli: true,
    },
    Spec {
        name: "reassign",
        aliases: &[],
        help: "hand a case to a teammate",
        args: &[CASE, arg("person", ArgKind::Person, true, "Who takes it over").long("to")],
        case_cli: true,
    },
    Spec {
        name: "respond",
        aliases: &[],
        help: "mark the public reply posted (risk cases: sends it for approval)",
        args: &[
            CASE,
            arg("text", ArgKind::Rest, false, "The reply exactly as posted"),
            arg("override", ArgKind::Flag, false, "Lead: accept blocking findings"),
            arg("publish", ArgKind::Flag, false, "Also post it to Google, Facebook or X"),
            arg("private", ArgKind::Flag, false, "Facebook: send it privately on Messenger instead"),
            arg("no-text", ArgKind::Flag, false, "Record no reply text; say why (in chat, as the text)"),
            arg("reason", ArgKind::Rest, false, "With --no-text: why no text is recorded").terminal_only(),
        ],
        case_cli: true,
    },
    Spec {
        name: "posted",
        aliases: &[],
        help: "mark a reply you posted yourself on a page carebot cannot post to (Yelp, Healthgrades…)",
        args: &[
            CASE,
            arg("link", ArgKind::Url, true, "Link to your posted reply"),
            arg("text", ArgKind::Rest, true, "The reply exactly as posted"),
        ],
        case_cli: true,
    },
    Spec {
        name: "unpublish",
        aliases: &[],
        help: "take down the reply carebot published (owner or lead)",
        args: &[CASE, arg("reason", ArgKind::Rest, false, "Why (no patient details)")],
        case_cli: true,
    },
    Spec {
        name: "approve",
        aliases: &[],
        help: "lead: approve the reply waiting on a risk case",
        args: &[CASE, arg("text", ArgKind::Rest, false, "Approve this text instead")],
        case_cli: true,
    },
    Spec {
        name: "changes",
        aliases: &[],
        help: "lead: send a waiting reply back",
        args: &[CASE, arg("note", ArgKind::Rest, true, "What to change")],
        case_cli: true,
    },
    Spec { name: "approvals", aliases: &[], help: "replies waiting for a lead's approval", args: &[], case_cli: false },
    Spec {
        name: "offline",
        aliases: &[],
        help: "continue a case privately",
        args: &[
            CASE,
            arg("via", ArgKind::Via, true, "dm, phone or email"),
            arg("note", ArgKind::Rest, false, "No patient details"),
        ],
        case_cli: true,
    },
    Spec {
        name: "escalate",
        aliases: &[],
        help: "raise a case to someone",
        args: &[
            CASE,
            arg("to", ArgKind::Target, true, "site-owner, risk, lead, oncall:ROTATION or @person"),
            arg("note", ArgKind::Rest, false, "No patient details"),
        ],
        case_cli: true,
    },
    Spec {
        name: "reopen",
        aliases: &[],
        help: "reopen a resolved case",
        args: &[CASE, arg("note", ArgKind::Rest, false, "Why")],
        case_cli: true,
    },
    Spec {
        name: "note",
        aliases: &[],
        help: "add a note to a case's history",
        args: &[CASE, arg("text", ArgKind::Rest, true, "No patient details").positional()],
        case_cli: true,
    },
    Spec {
        name: "set",
        aliases: &[],
        help: "lead: correct a case's site, category or situation",
        args: &[
            CASE,
            arg("field", ArgKind::Field, true, "site, category or situation").positional(),
            arg("value", ArgKind::Word, true, "Its id (site: none for no site)").positional(),
        ],
        case_cli: true,
    },
    Spec {
        name: "snooze",
        aliases: &[],
        help: "pause a case's nudges (due times do not move)",
        args: &[CASE, arg("for", ArgKind::Word, true, "15m, 1h, 4h or tomorrow (9:00)")],
        case_cli: true,
    },
    Spec {
        name: "risk",
        aliases: &[],
        help: "confirm or dismiss a case marked possible risk",
        args: &[CASE, arg("verdict", ArgKind::Verdict, true, "confirm or dismiss").positional()],
        case_cli: true,
    },
    Spec { name: "oncall", aliases: &["on-call"], help: "who is on call now", args: &[], case_cli: false },
    Spec {
        name: "cover",
        aliases: &[],
        help: "lead: put someone on call for a while",
        args: &[
            arg("rotation", ArgKind::Word, true, "Rotation id, e.g. px-oncall"),
            arg("person", ArgKind::Person, true, "Who covers"),
            arg("until", ArgKind::Word, true, "8h, tomorrow (9:00) or an RFC 3339 time"),
        ],
        case_cli: false,
    },
    Spec {
        name: "draft",
        aliases: &[],
        help: "a HIPAA-safe reply draft",
        args: &[CASE, arg("template", ArgKind::Word, false, "Template id")],
        case_cli: false,
    },
    Spec { name: "help", aliases: &["?"], help: "this help", args: &[], case_cli: false },
];

/// How an argument is written in the help text.
fn shown(a: &ArgSpec) -> String {
    let word = match a.kind {
        ArgKind::Case => "N".to_string(),
        ArgKind::Flag => format!("--{}", a.name),
        _ => a.name.to_uppercase(),
    };
    if a.required {
        word
    } else {
        format!("[{word}]")
    }
}

/// What to show for `/care help` and after unknown input. `{cmd}` is the configured name.
pub fn usage(cmd: &str) -> String {
    let mut out = String::from("Usage:");
    for spec in COMMANDS.iter().filter(|s| s.name != "help") {
        let args: Vec<String> = spec.chat_args().map(shown).collect();
        let line = [spec.name.to_string()].into_iter().chain(args).collect::<Vec<_>>().join(" ");
        out.push_str(&format!("\n• `{cmd} {line}` — {}", spec.help));
        if spec.chat_args().any(|a| a.kind == ArgKind::Via) {
            out.push_str(" (VIA: dm, phone, email)");
        }
        if spec.chat_args().any(|a| a.kind == ArgKind::Outcome) {
            let all: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
            out.push_str(&format!(" (OUTCOME: {})", all.join(", ")));
        }
    }
    out
}

fn case_number(word: Option<&str>, what: &str) -> Result<i64, String> {
    let w = word.ok_or_else(|| format!("`{what}` needs a case number, e.g. `{what} 42`"))?;
    w.trim_start_matches('#')
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{w:?} is not a case number"))
}

/// An argument's value, typed as its spec says.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Case(i64),
    Outcome(Outcome),
    Text(String),
    Flag(bool),
}

/// The arguments of one request, by name: from `/care` text, or from Discord's options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Args(Vec<(&'static str, Value)>);

impl Args {
    pub fn set(&mut self, name: &'static str, v: Value) {
        self.0.push((name, v));
    }
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
    fn case(&self, spec: &Spec) -> Result<i64, String> {
        match self.get("case") {
            Some(Value::Case(n)) => Ok(*n),
            _ => Err(format!("`{}` needs a case number, e.g. `{} 42`", spec.name, spec.name)),
        }
    }
    fn text(&self, name: &str) -> Option<String> {
        match self.get(name) {
            Some(Value::Text(t)) => Some(t.trim().to_string()).filter(|t| !t.is_empty()),
            _ => None,
        }
    }
    fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some(Value::Flag(true)))
    }
}

/// A value for `arg` from what a platform sent as text (Discord options arrive typed but
/// are checked the same way).
pub fn typed(spec: &Spec, a: &ArgSpec, raw: &str) -> Result<Value, String> {
    Ok(match a.kind {
        ArgKind::Case => Value::Case(case_number(Some(raw), spec.name)?),
        ArgKind::Outcome => Value::Outcome(raw.parse()?),
        ArgKind::Flag => Value::Flag(true),
        ArgKind::Url => {
            // Slack wraps links as <https://…> or <https://…|label>.
            let url = raw.trim_start_matches('<').trim_end_matches('>').split('|').next().unwrap_or_default();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!(
                    "`{}` needs the post's link first, e.g. `{} https://… what they said`",
                    spec.name, spec.name
                ));
            }
            Value::Text(url.to_string())
        }
        ArgKind::Via => {
            raw.parse::<OfflineVia>()?;
            Value::Text(raw.to_string())
        }
        ArgKind::Target => {
            // A person picked from the client's autocomplete arrives as a mention.
            let raw = if raw.starts_with("<@") { format!("@{raw}") } else { raw.to_string() };
            raw.parse::<EscalationTarget>()?;
            Value::Text(raw)
        }
        ArgKind::Verdict => match raw.to_ascii_lowercase().as_str() {
            "confirm" | "dismiss" => Value::Text(raw.to_ascii_lowercase()),
            _ => return Err(format!("`{}` takes confirm or dismiss, not {raw:?}", spec.name)),
        },
        ArgKind::Field => {
            raw.parse::<TriageField>()?;
            Value::Text(raw.to_string())
        }
        ArgKind::Word | ArgKind::Rest | ArgKind::Person => Value::Text(raw.to_string()),
    })
}

/// The spec of a subcommand name or alias.
pub fn spec(name: &str) -> Option<&'static Spec> {
    let name = name.to_lowercase();
    COMMANDS.iter().find(|s| s.name == name || s.aliases.contains(&name.as_str()))
}

impl Command {
    /// Builds the command from checked arguments.
    pub fn from_args(spec: &Spec, args: &Args) -> Result<Command, String> {
        let missing = |a: &str| format!("`{}` needs {a}", spec.name);
        Ok(match spec.name {
            "help" => Command::Help,
            "queue" => Command::Queue,
            "mine" => Command::Mine,
            "oncall" => Command::Oncall,
            "show" => Command::Show(args.case(spec)?),
            "claim" => Command::Claim(args.case(spec)?),
            "resolve" => Command::Resolve {
                case_id: args.case(spec)?,
                outcome: match args.get("outcome") {
                    Some(Value::Outcome(o)) => *o,
                    _ => return Err("`resolve` needs an outcome, e.g. `resolve 42 resolved`".into()),
                },
                note: args.text("note"),
            },
            "draft" => Command::Draft { case_id: args.case(spec)?, template: args.text("template") },
            "approvals" => Command::Approvals,
            "cover" => Command::Cover {
                rotation: args
                    .text("rotation")
                    .ok_or_else(|| missing("a rotation, e.g. `cover px-oncall @priya 8h`"))?,
                person: args.text("person").ok_or_else(|| missing("who covers, e.g. `cover px-oncall @priya 8h`"))?,
                until: args.text("until").ok_or_else(|| missing("until when, e.g. `8h` or `tomorrow`"))?,
            },
            "set" => {
                let field: TriageField =
                    args.text("field").ok_or_else(|| missing("site, category or situation"))?.parse()?;
                let value = args.text("value").ok_or_else(|| missing("the new value, e.g. `set 42 site riverside`"))?;
                let value = Some(value).filter(|v| !(field == TriageField::Site && v.eq_ignore_ascii_case("none")));
                Command::Act { case_id: args.case(spec)?, action: Action::Reclassify { field, value } }
            }
            "snooze" => Command::Snooze {
                case_id: args.case(spec)?,
                span: args
                    .text("for")
                    .ok_or_else(|| missing("how long, e.g. `snooze 42 1h` or `snooze 42 tomorrow`"))?,
            },
            "release" => Command::Act { case_id: args.case(spec)?, action: Action::Release },
            "risk" => Command::Act {
                case_id: args.case(spec)?,
                action: Action::JudgeRisk {
                    confirm: args
                        .text("verdict")
                        .ok_or_else(|| missing("confirm or dismiss, e.g. `risk 42 confirm`"))?
                        == "confirm",
                },
            },
            "reassign" => Command::Reassign {
                case_id: args.case(spec)?,
                to: args.text("person").ok_or_else(|| missing("a person, e.g. `reassign 42 @sam`"))?,
            },
            "respond" if args.flag("no-text") => Command::Respond {
                case_id: args.case(spec)?,
                text: None,
                override_block: args.flag("override"),
                publish: args.flag("publish"),
                link: None,
                private: false,
                // In chat the words after the case are the reason.
                no_text: Some(args.text("reason").or_else(|| args.text("text")).ok_or_else(|| {
                    missing(
                        "the reason no text is recorded: `--reason R` in a terminal, the words after --no-text in chat",
                    )
                })?),
            },
            "respond" if args.text("reason").is_some() => {
                return Err("`--reason` goes with `--no-text` (a reply recorded without its text)".into())
            }
            "respond" => Command::Respond {
                case_id: args.case(spec)?,
                text: args.text("text"),
                override_block: args.flag("override"),
                publish: args.flag("publish"),
                link: None,
                no_text: None,
                private: args.flag("private"),
            },
            "posted" => Command::Respond {
                case_id: args.case(spec)?,
                text: Some(args.text("text").ok_or_else(|| missing("the reply as posted"))?),
                override_block: false,
                publish: false,
                link: Some(args.text("link").ok_or_else(|| missing("the link to your posted reply"))?),
                no_text: None,
                private: false,
            },
            "unpublish" => {
                Command::Act { case_id: args.case(spec)?, action: Action::Unpublish { reason: args.text("reason") } }
            }
            "approve" => Command::Approve { case_id: args.case(spec)?, text: args.text("text") },
            "changes" => Command::Act {
                case_id: args.case(spec)?,
                action: Action::RequestChanges {
                    note: args
                        .text("note")
                        .ok_or_else(|| missing("what to change, e.g. `changes 42 drop the apology`"))?,
                },
            },
            "offline" => Command::Act {
                case_id: args.case(spec)?,
                action: Action::TakeOffline {
                    via: args.text("via").ok_or_else(|| missing("how: dm, phone or email"))?.parse()?,
                    note: args.text("note"),
                },
            },
            "escalate" => Command::Act {
                case_id: args.case(spec)?,
                action: Action::Escalate {
                    to: args.text("to").ok_or_else(|| missing("who to, e.g. `escalate 42 risk`"))?.parse()?,
                    note: args.text("note"),
                },
            },
            "reopen" => Command::Act { case_id: args.case(spec)?, action: Action::Reopen { note: args.text("note") } },
            "note" => Command::Act {
                case_id: args.case(spec)?,
                action: Action::Note { text: args.text("text").ok_or_else(|| missing("the note's text"))? },
            },
            "log" => Command::Log {
                url: args
                    .text("url")
                    .ok_or_else(|| missing("the post's link first, e.g. `log https://… what they said`"))?,
                text: args.text("text").ok_or_else(|| missing("the text of the post after the link"))?,
                confidential: args.flag("confidential"),
            },
            other => return Err(format!("unknown command {other:?}")),
        })
    }
}

impl FromStr for Command {
    type Err = String;
    /// Parses the text after the command name by the command table. The error says what
    /// was wrong; callers add the usage help.
    fn from_str(text: &str) -> Result<Command, String> {
        // Words with where they start, so free text keeps its line breaks.
        let words: Vec<(usize, &str)> =
            text.split_whitespace().map(|w| (w.as_ptr() as usize - text.as_ptr() as usize, w)).collect();
        let Some(((_, verb), rest)) = words.split_first() else { return Ok(Command::Help) };
        let spec = spec(verb).ok_or_else(|| format!("unknown command {:?}", verb.to_lowercase()))?;
        let mut args = Args::default();
        let flags: Vec<&ArgSpec> = spec.chat_args().filter(|a| a.kind == ArgKind::Flag).collect();
        let is_flag = |w: &str| flags.iter().find(|f| w.strip_prefix("--") == Some(f.name)).copied();
        let mut words: Vec<(usize, &str)> = Vec::new();
        for (at, w) in rest {
            match is_flag(w) {
                Some(f) => args.set(f.name, Value::Flag(true)),
                None => words.push((*at, w)),
            }
        }
        let mut words = words.into_iter().peekable();
        for a in spec.chat_args().filter(|a| a.kind != ArgKind::Flag) {
            let raw = if a.kind == ArgKind::Rest {
                // Everything from the next word on, as typed, without the flags.
                let from = words.peek().map(|(at, _)| *at);
                words.by_ref().for_each(drop);
                from.map(|at| {
                    let kept: Vec<&str> = text[at..]
                        .split_inclusive(char::is_whitespace)
                        .filter(|w| is_flag(w.trim()).is_none())
                        .collect();
                    kept.concat().trim().to_string()
                })
                .filter(|s| !s.is_empty())
            } else {
                words.next().map(|(_, w)| w.to_string())
            };
            match raw {
                Some(raw) => args.set(a.name, typed(spec, a, &raw)?),
                None if a.required => break, // from_args names what is missing
                None => {}
            }
        }
        Command::from_args(spec, &args)
    }
}

/// A button press on a card: which button, which case. Encoded as `ACTION:CASE`
/// (`claim:42`) in Slack `value`s and Discord `custom_id`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Press {
    pub button: Button,
    pub case_id: i64,
    /// The event a button decides on (Approve reply: the exact request shown), encoded
    /// as a third part, `approve_reply:42:311`.
    pub request: Option<i64>,
}

impl Press {
    pub fn new(button: Button, case_id: i64) -> Press {
        Press { button, case_id, request: None }
    }
    pub fn encode(&self) -> String {
        match self.request {
            Some(r) => format!("{}:{}:{r}", self.button.id(), self.case_id),
            None => format!("{}:{}", self.button.id(), self.case_id),
        }
    }
}

impl FromStr for Press {
    type Err = String;
    fn from_str(s: &str) -> Result<Press, String> {
        let (action, case) = s.split_once(':').ok_or_else(|| format!("{s:?} is not a card button"))?;
        let button = Button::ALL
            .into_iter()
            .find(|b| b.id() == action)
            .ok_or_else(|| format!("{action:?} is not a card button"))?;
        let (case, request) = match case.split_once(':') {
            Some((c, r)) => (c, Some(r.parse::<i64>().map_err(|_| format!("{s:?} is not a card button"))?)),
            None => (case, None),
        };
        Ok(Press { button, case_id: case_number(Some(case), action)?, request })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_with_case_numbers_parse() {
        assert_eq!("claim 42".parse(), Ok(Command::Claim(42)));
        assert_eq!("show #7".parse(), Ok(Command::Show(7)));
        assert_eq!("  QUEUE ".parse(), Ok(Command::Queue));
        assert_eq!("".parse(), Ok(Command::Help));
        assert_eq!(
            "resolve 9 no-reply left a voicemail".parse(),
            Ok(Command::Resolve { case_id: 9, outcome: Outcome::NoReply, note: Some("left a voicemail".into()) })
        );
        assert_eq!("draft 3 billing".parse(), Ok(Command::Draft { case_id: 3, template: Some("billing".into()) }));
    }

    #[test]
    fn mistakes_say_what_is_wrong() {
        assert!("claim".parse::<Command>().unwrap_err().contains("needs a case number"));
        assert!("claim abc".parse::<Command>().unwrap_err().contains("not a case number"));
        assert!("claim -3".parse::<Command>().unwrap_err().contains("not a case number"));
        assert!("resolve 4".parse::<Command>().unwrap_err().contains("needs an outcome"));
        assert!("resolve 4 fixed".parse::<Command>().unwrap_err().contains("unknown outcome"));
        assert!("dance".parse::<Command>().unwrap_err().contains("unknown command"));
        assert!("log just text".parse::<Command>().unwrap_err().contains("link first"));
        assert!("log https://x.com/a/1".parse::<Command>().unwrap_err().contains("text of the post"));
    }

    #[test]
    fn every_case_action_of_the_cli_has_a_subcommand() {
        assert_eq!("release 4".parse(), Ok(Command::Act { case_id: 4, action: Action::Release }));
        assert_eq!(
            "reassign 4 <@U01SAM00002>".parse(),
            Ok(Command::Reassign { case_id: 4, to: "<@U01SAM00002>".into() })
        );
        assert_eq!(
            "respond 4 Thank you --override".parse(),
            Ok(Command::Respond {
                case_id: 4,
                text: Some("Thank you".into()),
                override_block: true,
                publish: false,
                link: None,
                no_text: None,
                private: false,
            })
        );
        assert_eq!(
            "respond 4 Thank you --override --publish".parse(),
            Ok(Command::Respond {
                case_id: 4,
                text: Some("Thank you".into()),
                override_block: true,
                publish: true,
                link: None,
                no_text: None,
                private: false,
            })
        );
        assert_eq!(
            "respond 4 Thank you, please email us --private".parse(),
            Ok(Command::Respond {
                case_id: 4,
                text: Some("Thank you, please email us".into()),
                override_block: false,
                publish: false,
                link: None,
                no_text: None,
                private: true,
            })
        );
        assert_eq!("approve 4".parse(), Ok(Command::Approve { case_id: 4, text: None }));
        assert_eq!(
            "offline 4 phone called her back".parse(),
            Ok(Command::Act {
                case_id: 4,
                action: Action::TakeOffline { via: OfflineVia::Phone, note: Some("called her back".into()) }
            })
        );
        assert_eq!(
            "escalate 4 oncall:px-oncall".parse(),
            Ok(Command::Act {
                case_id: 4,
                action: Action::Escalate { to: EscalationTarget::OnCall("px-oncall".into()), note: None }
            })
        );
        assert_eq!(
            "note 4 called back\nshe is happy --override".parse(),
            Ok(Command::Act {
                case_id: 4,
                action: Action::Note { text: "called back\nshe is happy --override".into() }
            }),
            "free text keeps its lines; a flag the command does not take stays text",
        );
        assert_eq!(
            "respond 4 Thank you\n--override for waiting".parse(),
            Ok(Command::Respond {
                case_id: 4,
                text: Some("Thank you\nfor waiting".into()),
                override_block: true,
                publish: false,
                link: None,
                no_text: None,
                private: false,
            })
        );
        assert_eq!(
            "respond 4 --no-text posted by the press office".parse(),
            Ok(Command::Respond {
                case_id: 4,
                text: None,
                override_block: false,
                publish: false,
                link: None,
                no_text: Some("posted by the press office".into()),
                private: false,
            })
        );
        assert!("respond 4 --no-text".parse::<Command>().unwrap_err().contains("reason"));
        assert_eq!(
            "posted 4 <https://www.yelp.com/biz/x?hrid=1|yelp> Thank you for telling us".parse(),
            Ok(Command::Respond {
                case_id: 4,
                text: Some("Thank you for telling us".into()),
                override_block: false,
                publish: false,
                link: Some("https://www.yelp.com/biz/x?hrid=1".into()),
                no_text: None,
                private: false,
            })
        );
        assert!("posted 4 Thank you".parse::<Command>().unwrap_err().contains("link"));
        assert_eq!(
            "unpublish 4 posted on the wrong review".parse(),
            Ok(Command::Act {
                case_id: 4,
                action: Action::Unpublish { reason: Some("posted on the wrong review".into()) }
            })
        );
        assert_eq!(
            "set 4 site none".parse(),
            Ok(Command::Act { case_id: 4, action: Action::Reclassify { field: TriageField::Site, value: None } })
        );
        assert!("set 4 mood happy".parse::<Command>().unwrap_err().contains("cannot set"));
        assert!("offline 4 pigeon".parse::<Command>().unwrap_err().contains("unknown channel"));
        assert!("note 4".parse::<Command>().unwrap_err().contains("note's text"));
        assert!("changes 4".parse::<Command>().unwrap_err().contains("what to change"));
    }

    #[test]
    fn log_takes_slack_wrapped_links_and_the_confidential_flag_anywhere() {
        assert_eq!(
            "log <https://fb.com/p/1|fb.com/p/1> --confidential nurse was rude to my mum".parse(),
            Ok(Command::Log {
                url: "https://fb.com/p/1".into(),
                text: "nurse was rude to my mum".into(),
                confidential: true
            })
        );
        assert_eq!(
            "log https://x.com/a/1 long wait in ER".parse(),
            Ok(Command::Log { url: "https://x.com/a/1".into(), text: "long wait in ER".into(), confidential: false })
        );
    }

    #[test]
    fn presses_round_trip_and_reject_junk() {
        for b in Button::ALL {
            let p = Press::new(b, 12);
            assert_eq!(p.encode().parse(), Ok(p));
        }
        let approve = Press { button: Button::ApproveReply, case_id: 12, request: Some(311) };
        assert_eq!(approve.encode(), "approve_reply:12:311");
        assert_eq!("approve_reply:12:311".parse(), Ok(approve));
        assert!("approve_reply:12:x".parse::<Press>().is_err());
        assert!("claim".parse::<Press>().is_err());
        assert!("launch:3".parse::<Press>().is_err());
        assert!("claim:x".parse::<Press>().is_err());
    }

    #[test]
    fn usage_names_the_configured_command_and_every_subcommand() {
        let u = usage("/px");
        assert!(u.contains("`/px claim N`"), "{u}");
        assert!(u.contains("`/px resolve N OUTCOME [NOTE]`") && u.contains("no_reply"), "{u}");
        assert!(u.contains("`/px log URL TEXT [--confidential]`"), "{u}");
        for s in COMMANDS.iter().filter(|s| s.name != "help") {
            assert!(u.contains(&format!("`/px {}", s.name)), "{} missing from the help", s.name);
        }
    }
}
