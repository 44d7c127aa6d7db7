//! Pure domain types and rules: mentions, cases and their state machine, roles, durations.
//! Nothing in here performs I/O; every rule is a function over plain values.

pub mod case;
pub mod compliance;
pub mod duration;
pub mod fingerprint;
pub mod mention;
pub mod role;

pub use case::{
    apply, Action, CaseState, CaseStatus, EscalationTarget, OfflineVia, Outcome, Priority, Refusal, Revision,
    Transition, TriageField,
};
pub use duration::Span;
pub use mention::{Mention, MentionError, RawMention, Visibility};
pub use role::{Actor, Role, RoleSet};
