//! Roles in the team file and the person acting on a case.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a person in the team file may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Works cases: claims, replies, takes offline, resolves their own cases.
    Agent,
    /// Everything an agent does, on anyone's case; overrides and reassigns.
    Lead,
    /// Risk management / legal: works referred and clinical-risk cases like an agent.
    Risk,
    /// Reads cases and digests; may add notes.
    Leadership,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Lead => "lead",
            Role::Risk => "risk",
            Role::Leadership => "leadership",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "agent" => Some(Role::Agent),
            "lead" => Some(Role::Lead),
            "risk" => Some(Role::Risk),
            "leadership" => Some(Role::Leadership),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The roles one person holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleSet(Vec<Role>);

impl RoleSet {
    pub fn new(roles: impl IntoIterator<Item = Role>) -> Self {
        let mut v: Vec<Role> = roles.into_iter().collect();
        v.sort();
        v.dedup();
        RoleSet(v)
    }
    pub fn has(&self, role: Role) -> bool {
        self.0.contains(&role)
    }
    /// May work cases (claim, reply, resolve).
    pub fn works_cases(&self) -> bool {
        self.has(Role::Agent) || self.has(Role::Lead) || self.has(Role::Risk)
    }
    pub fn iter(&self) -> impl Iterator<Item = &Role> {
        self.0.iter()
    }
}

/// A person acting on a case, as resolved from the team file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub id: String,
    pub roles: RoleSet,
}

impl Actor {
    /// carebot itself, when a job changes a case (the escalation sweep): it acts with a
    /// lead's rights, and its steps are recorded as `carebot`.
    pub fn system() -> Self {
        Actor::new("carebot", [Role::Lead])
    }

    pub fn new(id: impl Into<String>, roles: impl IntoIterator<Item = Role>) -> Self {
        Actor { id: id.into(), roles: RoleSet::new(roles) }
    }
}
