//! `carebot case NAME …`: the terminal form of the `/care` case actions, built from the same
//! command table (`carebot::chat::command::COMMANDS`). Each table argument says how it is
//! spelled here (positional or `--name`); values are checked by the same typed parsers
//! and become the same `Command` that `/care` runs, so a terminal and a chat surface
//! cannot drift apart.

use carebot::chat::command::{self, ArgKind, ArgSpec, Args, CliForm, Command, Spec, Value, COMMANDS};
use clap::error::ErrorKind;
use clap::{Arg, ArgAction, ArgMatches};

/// One parsed `carebot case …` line.
#[derive(Debug)]
pub struct CaseCli {
    pub command: Command,
    /// Who acts (`--as`, or `CAREBOT_USER`); `show` needs nobody.
    pub person: Option<String>,
    /// `show --json`.
    pub json: bool,
}

fn case_specs() -> impl Iterator<Item = &'static Spec> {
    COMMANDS.iter().filter(|s| s.case_cli)
}

/// The clap argument for one table argument.
fn clap_arg(spec: &'static Spec, a: &'static ArgSpec) -> Arg {
    let mut arg = Arg::new(a.name).help(a.help);
    let shown = match a.kind {
        ArgKind::Case => "N",
        ArgKind::Outcome => "OUTCOME",
        ArgKind::Person => "PERSON",
        ArgKind::Via => "VIA",
        ArgKind::Target => "TARGET",
        ArgKind::Field => "FIELD",
        ArgKind::Verdict => "VERDICT",
        ArgKind::Url => "URL",
        ArgKind::Word | ArgKind::Rest | ArgKind::Flag => a.name,
    };
    arg = match a.cli {
        CliForm::Positional => arg.value_name(shown),
        CliForm::Long(long) => arg.long(long).value_name(shown),
    };
    if a.kind == ArgKind::Flag {
        return arg.action(ArgAction::SetTrue);
    }
    let checked = move |raw: &str| command::typed(spec, a, raw).map(|_| raw.to_string());
    arg.required(a.required).value_parser(checked)
}

fn clap_command(spec: &'static Spec) -> clap::Command {
    let mut cmd = clap::Command::new(spec.name).about(spec.help);
    for a in spec.args {
        cmd = cmd.arg(clap_arg(spec, a));
    }
    if spec.name != "show" {
        cmd = cmd.arg(
            Arg::new("as")
                .long("as")
                .env("CAREBOT_USER")
                .required(true)
                .value_name("PERSON")
                .help("Who is acting: a person id from playbooks/team.yaml"),
        );
    }
    cmd
}

impl clap::FromArgMatches for CaseCli {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let (name, sub) =
            m.subcommand().ok_or_else(|| clap::Error::raw(ErrorKind::MissingSubcommand, "name a case action\n"))?;
        let spec = case_specs()
            .find(|s| s.name == name)
            .ok_or_else(|| clap::Error::raw(ErrorKind::InvalidSubcommand, format!("unknown case action {name:?}\n")))?;
        let mut args = Args::default();
        for a in spec.args {
            if a.kind == ArgKind::Flag {
                if sub.get_flag(a.name) {
                    args.set(a.name, Value::Flag(true));
                }
            } else if let Some(raw) = sub.get_one::<String>(a.name) {
                let v = command::typed(spec, a, raw).map_err(|e| clap::Error::raw(ErrorKind::ValueValidation, e))?;
                args.set(a.name, v);
            }
        }
        let command = Command::from_args(spec, &args)
            .map_err(|e| clap::Error::raw(ErrorKind::ValueValidation, format!("{e}\n")))?;
        let json = spec.args.iter().any(|a| a.name == "json") && sub.get_flag("json");
        let person = sub.try_get_one::<String>("as").ok().flatten().cloned();
        Ok(CaseCli { command, person, json })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = CaseCli::from_arg_matches(m)?;
        Ok(())
    }
}

impl clap::Subcommand for CaseCli {
    fn augment_subcommands(cmd: clap::Command) -> clap::Command {
        cmd.subcommands(case_specs().map(clap_command)).subcommand_required(true)
    }
    fn augment_subcommands_for_update(cmd: clap::Command) -> clap::Command {
        CaseCli::augment_subcommands(cmd)
    }
    fn has_subcommand(name: &str) -> bool {
        case_specs().any(|s| s.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{FromArgMatches, Subcommand};

    fn parse(line: &[&str]) -> Result<CaseCli, clap::Error> {
        let cmd = CaseCli::augment_subcommands(clap::Command::new("case").no_binary_name(true));
        CaseCli::from_arg_matches(&cmd.try_get_matches_from(line)?)
    }

    #[test]
    fn every_case_action_in_the_table_is_a_terminal_command_and_means_the_same() {
        for spec in case_specs() {
            assert!(CaseCli::has_subcommand(spec.name), "{}", spec.name);
        }
        let c = parse(&["reassign", "7", "--to", "sam", "--as", "dena"]).unwrap();
        assert_eq!(c.command, "reassign 7 sam".parse::<Command>().unwrap());
        assert_eq!(c.person.as_deref(), Some("dena"));
        let c = parse(&["resolve", "#7", "--outcome", "recovered", "--note", "called back", "--as", "sam"]).unwrap();
        assert_eq!(c.command, "resolve 7 recovered called back".parse::<Command>().unwrap());
        let c = parse(&["set", "7", "site", "none", "--as", "dena"]).unwrap();
        assert_eq!(c.command, "set 7 site none".parse::<Command>().unwrap());
        let c = parse(&["respond", "7", "--text", "Thank you", "--override", "--as", "dena"]).unwrap();
        assert_eq!(c.command, "respond 7 Thank you --override".parse::<Command>().unwrap());
        let c = parse(&["show", "7", "--json"]).unwrap();
        assert!(c.json && c.person.is_none());
    }

    #[test]
    fn bad_values_are_refused_by_the_same_checks_as_chat() {
        let e = parse(&["resolve", "7", "--outcome", "fixed", "--as", "sam"]).unwrap_err();
        assert!(e.to_string().contains("fixed"), "{e}");
        let e = parse(&["offline", "7", "--via", "pigeon", "--as", "sam"]).unwrap_err();
        assert!(e.to_string().contains("pigeon"), "{e}");
        assert!(parse(&["claim", "zero", "--as", "sam"]).is_err());
        assert!(parse(&["risk", "7", "maybe", "--as", "sam"]).is_err());
        assert_eq!(parse(&["claim", "7"]).err().map(|e| e.kind()), Some(ErrorKind::MissingRequiredArgument));
    }
}
