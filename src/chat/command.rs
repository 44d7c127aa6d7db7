//! The `/care` command grammar and the button/form identifiers, shared by every chat
//! platform. Pure: text in, a `Command` (or usage help) out.

use crate::domain::Outcome;
use std::str::FromStr;

use super::Button;

/// One `/care …` request, whatever platform it came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Help,
    /// Open, unclaimed cases, oldest first.
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
}

#[derive(Debug, Clone, Copy)]
pub struct ArgSpec {
    pub name: &'static str,
    pub kind: ArgKind,
    pub required: bool,
    pub help: &'static str,
}

/// One `/care` subcommand: the single definition the text parser, the help text and the
/// Discord command registration are all made from.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub help: &'static str,
    pub args: &'static [ArgSpec],
}

const fn arg(name: &'static str, kind: ArgKind, required: bool, help: &'static str) -> ArgSpec {
    ArgSpec { name, kind, required, help }
}
const CASE: ArgSpec = arg("case", ArgKind::Case, true, "Case number");

/// The `/care` command table.
pub const COMMANDS: &[Spec] = &[
    Spec { name: "queue", aliases: &["q"], help: "open, unclaimed cases, oldest first", args: &[] },
    Spec { name: "mine", aliases: &[], help: "cases you own", args: &[] },
    Spec { name: "show", aliases: &[], help: "one case and its history", args: &[CASE] },
    Spec { name: "claim", aliases: &[], help: "take a case", args: &[CASE] },
    Spec {
        name: "resolve",
        aliases: &[],
        help: "resolve a case",
        args: &[
            CASE,
            arg("outcome", ArgKind::Outcome, true, "How it ended"),
            arg("note", ArgKind::Rest, false, "No patient details"),
        ],
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
    },
    Spec { name: "oncall", aliases: &["on-call"], help: "who is on call now", args: &[] },
    Spec {
        name: "draft",
        aliases: &[],
        help: "a HIPAA-safe reply draft",
        args: &[CASE, arg("template", ArgKind::Word, false, "Template id")],
    },
    Spec { name: "help", aliases: &["?"], help: "this help", args: &[] },
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
        let args: Vec<String> = spec.args.iter().map(shown).collect();
        let line = [spec.name.to_string()].into_iter().chain(args).collect::<Vec<_>>().join(" ");
        out.push_str(&format!("\n• `{cmd} {line}` — {}", spec.help));
        if spec.args.iter().any(|a| a.kind == ArgKind::Outcome) {
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
        ArgKind::Word | ArgKind::Rest => Value::Text(raw.to_string()),
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
        let words: Vec<&str> = text.split_whitespace().collect();
        let Some((verb, rest)) = words.split_first() else { return Ok(Command::Help) };
        let spec = spec(verb).ok_or_else(|| format!("unknown command {:?}", verb.to_lowercase()))?;
        let mut args = Args::default();
        let flags: Vec<&ArgSpec> = spec.args.iter().filter(|a| a.kind == ArgKind::Flag).collect();
        let mut words: Vec<&str> = Vec::new();
        for w in rest {
            match flags.iter().find(|f| w.strip_prefix("--") == Some(f.name)) {
                Some(f) => args.set(f.name, Value::Flag(true)),
                None => words.push(w),
            }
        }
        let mut words = words.into_iter();
        for a in spec.args.iter().filter(|a| a.kind != ArgKind::Flag) {
            let raw = if a.kind == ArgKind::Rest {
                let all: Vec<&str> = words.by_ref().collect();
                Some(all.join(" ")).filter(|s| !s.is_empty())
            } else {
                words.next().map(str::to_string)
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
}

impl Press {
    pub fn encode(&self) -> String {
        format!("{}:{}", self.button.id(), self.case_id)
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
        Ok(Press { button, case_id: case_number(Some(case), action)? })
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
            let p = Press { button: b, case_id: 12 };
            assert_eq!(p.encode().parse(), Ok(p));
        }
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
