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

/// What to show for `/care help` and after unknown input. `{cmd}` is the configured name.
pub fn usage(cmd: &str) -> String {
    format!(
        "Usage:\n\
         • `{cmd} queue` — open, unclaimed cases, oldest first\n\
         • `{cmd} mine` — cases you own\n\
         • `{cmd} show N` — one case and its history\n\
         • `{cmd} claim N` — take case N\n\
         • `{cmd} resolve N OUTCOME [note]` — OUTCOME is one of {}\n\
         • `{cmd} draft N [TEMPLATE]` — a HIPAA-safe reply draft\n\
         • `{cmd} log URL TEXT [--confidential]` — log a post someone forwarded\n\
         • `{cmd} oncall` — who is on call now",
        Outcome::ALL.iter().map(|o| o.as_str()).collect::<Vec<_>>().join(", ")
    )
}

fn case_number(word: Option<&str>, what: &str) -> Result<i64, String> {
    let w = word.ok_or_else(|| format!("`{what}` needs a case number, e.g. `{what} 42`"))?;
    w.trim_start_matches('#')
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{w:?} is not a case number"))
}

fn rest(words: &[&str]) -> Option<String> {
    let s = words.join(" ");
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

impl FromStr for Command {
    type Err = String;
    /// Parses the text after the command name. The error says what was wrong; callers add
    /// the usage help.
    fn from_str(text: &str) -> Result<Command, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let Some((verb, args)) = words.split_first() else { return Ok(Command::Help) };
        let mut args = args.iter().copied();
        let cmd = match verb.to_lowercase().as_str() {
            "help" | "?" => Command::Help,
            "queue" | "q" => Command::Queue,
            "mine" => Command::Mine,
            "oncall" | "on-call" => Command::Oncall,
            "show" => Command::Show(case_number(args.next(), "show")?),
            "claim" => Command::Claim(case_number(args.next(), "claim")?),
            "resolve" => {
                let case_id = case_number(args.next(), "resolve")?;
                let outcome = args.next().ok_or("`resolve` needs an outcome, e.g. `resolve 42 resolved`")?.parse()?;
                Command::Resolve { case_id, outcome, note: rest(&args.collect::<Vec<_>>()) }
            }
            "draft" => {
                Command::Draft { case_id: case_number(args.next(), "draft")?, template: args.next().map(Into::into) }
            }
            "log" => {
                let all: Vec<&str> = args.collect();
                let confidential = all.contains(&"--confidential");
                let mut words = all.into_iter().filter(|w| *w != "--confidential");
                // Slack wraps links as <https://…> or <https://…|label>.
                let url = words.next().map(|u| {
                    u.trim_start_matches('<').trim_end_matches('>').split('|').next().unwrap_or_default().to_string()
                });
                let url = url
                    .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
                    .ok_or("`log` needs the post's link first, e.g. `log https://… what they said`")?;
                let text = rest(&words.collect::<Vec<_>>()).ok_or("`log` needs the text of the post after the link")?;
                Command::Log { url, text, confidential }
            }
            other => return Err(format!("unknown command {other:?}")),
        };
        Ok(cmd)
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
    fn usage_names_the_configured_command() {
        assert!(usage("/px").contains("`/px claim N`"));
    }
}
