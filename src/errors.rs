//! The errors a person can meet when acting on a case, worded for them, shared by every
//! surface (CLI, Slack, Discord) and by the services that raise them.

use crate::domain::Refusal;

/// What a person sees when an action does not go through.
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    #[error("Case {0} does not exist")]
    UnknownCase(i64),
    #[error("@{0} is not in the team file; ask a lead to add them to playbooks/team.yaml")]
    UnknownPerson(String),
    #[error("Case {case_id} {refusal}")]
    Refused { case_id: i64, refusal: Refusal },
    #[error("{0}")]
    Invalid(String),
    #[error("Case {case_id}: the reply cannot be marked responded:\n  - {}\nFix the text; a lead may accept the findings (Slack: the tick box in the reply form; Discord: type override in the form's second field; `--override` in `/care respond` and the CLI).", findings.join("\n  - "))]
    ReplyBlocked { case_id: i64, findings: Vec<String> },
    /// The database cannot be reached: nothing was changed; said at once, never retried
    /// behind the person's back.
    #[error("carebot can't reach its database; nothing was changed, try again in a minute")]
    Unavailable,
    /// Not the person's fault: logged with context; they see a short apology.
    #[error("something went wrong on our side; the case was not changed")]
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for ActError {
    fn from(e: anyhow::Error) -> Self {
        if crate::store::is_unavailable(&e) {
            ActError::Unavailable
        } else {
            ActError::Internal(e)
        }
    }
}

impl ActError {
    /// A mistake the person can fix (as opposed to an internal failure).
    pub fn is_user_error(&self) -> bool {
        !matches!(self, ActError::Internal(_) | ActError::Unavailable)
    }
}

/// The one edge where an action error meets a person: internal failures are logged here,
/// once, with where they happened (never mention text: errors carry ids and causes);
/// the person gets the wording of the error.
pub fn explain(e: &ActError, surface: &str, what: &str, case_id: Option<i64>) -> String {
    match e {
        ActError::Internal(err) => {
            tracing::error!(surface, what, case_id, error = %format!("{err:#}"), "action failed")
        }
        ActError::Unavailable => tracing::warn!(surface, what, case_id, "action refused: database unreachable"),
        _ => {}
    }
    e.to_string()
}
