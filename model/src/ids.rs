//! Id newtypes. Core code never passes bare strings for ids.
//!
//! Ids and roles hold an `Arc<str>`: the allocator copies a framework id,
//! an agent id and a role into each of its 10,000 offers per cycle, and
//! every resource reservation names a role, so a copy is a reference count
//! increment rather than an allocation and a string copy. Ids never change
//! once made, so sharing is safe.
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::sync::{Arc, LazyLock};

use crate::error::ModelError;

/// Longest id we accept from outside; long enough for uuids plus prefixes and
/// Marathon-style `app.instance-uuid` task ids.
pub const MAX_ID_LEN: usize = 255;

fn validate_id(field: &str, s: &str) -> Result<(), ModelError> {
    if s.is_empty() {
        return Err(ModelError::invalid(field, "must not be empty"));
    }
    if s.len() > MAX_ID_LEN {
        return Err(ModelError::invalid(
            field,
            format!("longer than {MAX_ID_LEN} bytes"),
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || *c == '/')
    {
        return Err(ModelError::invalid(
            field,
            format!("contains invalid character {c:?}"),
        ));
    }
    if s == "." || s == ".." {
        return Err(ModelError::invalid(field, "must not be '.' or '..'"));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Arc<str>);

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map(|s| Self(s.into()))
            }
        }

        impl $name {
            /// Validates and wraps an id that came from outside.
            pub fn parse(s: impl Into<String>) -> Result<Self, ModelError> {
                let s: String = s.into();
                validate_id($field, &s)?;
                Ok(Self(s.into()))
            }
            /// Wraps an id the caller generated itself (always valid).
            pub fn new_unchecked(s: impl Into<String>) -> Self {
                Self(s.into().into())
            }
            /// A fresh random id.
            pub fn random() -> Self {
                Self(uuid::Uuid::new_v4().to_string().into())
            }
            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// An agent's id, assigned by the master on first registration.
    AgentId, "agent_id");
id_type!(
    /// A framework's id, assigned by the master on first subscription.
    FrameworkId, "framework_id");
id_type!(
    /// An offer's id, unique per master run.
    OfferId, "offer_id");
id_type!(
    /// A task's id, chosen by the framework, unique within it.
    TaskId, "task_id");
id_type!(
    /// One Subscribe call's event stream; calls name it so that calls from
    /// an older subscription of the same framework are refused.
    StreamId, "stream_id");
id_type!(
    /// One registration of an agent; its Attach stream must name it.
    SessionId, "session_id");

/// A role. `*` is the default role, meaning unreserved. Hierarchical roles use
/// `/` between components (`eng/frontend`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Role(Arc<str>);

/// The one `*`, shared: `Role::star()` is called for every unreserved
/// resource entry parsed or built.
static STAR: LazyLock<Role> = LazyLock::new(|| Role("*".into()));

impl Serialize for Role {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Role(s.into()))
    }
}

impl Role {
    /// The default role `*`.
    pub fn star() -> Role {
        STAR.clone()
    }
    /// Is this the default (unreserved) role?
    pub fn is_star(&self) -> bool {
        &*self.0 == "*"
    }
    /// Validates a role name: `*`, or `/`-separated components that are not
    /// empty, `.`, `..` or `*`, with no whitespace, and do not start with `-`.
    pub fn parse(s: impl Into<String>) -> Result<Role, ModelError> {
        let s: String = s.into();
        if s == "*" {
            return Ok(Role::star());
        }
        if s.is_empty() {
            return Err(ModelError::invalid("role", "must not be empty"));
        }
        if s.len() > MAX_ID_LEN {
            return Err(ModelError::invalid(
                "role",
                format!("longer than {MAX_ID_LEN} bytes"),
            ));
        }
        for comp in s.split('/') {
            if comp.is_empty() || comp == "." || comp == ".." || comp == "*" {
                return Err(ModelError::invalid(
                    "role",
                    format!("{s:?}: component {comp:?} is not allowed"),
                ));
            }
            if comp.starts_with('-') {
                return Err(ModelError::invalid(
                    "role",
                    format!("{s:?}: component starts with '-'"),
                ));
            }
            if let Some(c) = comp
                .chars()
                .find(|c| c.is_whitespace() || c.is_control() || "\\()[]{}:;,".contains(*c))
            {
                return Err(ModelError::invalid(
                    "role",
                    format!("{s:?}: invalid character {c:?}"),
                ));
            }
        }
        Ok(Role(s.into()))
    }
    /// The role name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Role {
    fn default() -> Self {
        Role::star()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_reject_empty_space_and_slash() {
        assert!(TaskId::parse("").is_err());
        assert!(TaskId::parse("a b").is_err());
        assert!(TaskId::parse("a/b").is_err());
        assert!(TaskId::parse("..").is_err());
        assert!(TaskId::parse("web.1234").is_ok());
        assert!(TaskId::parse("x".repeat(MAX_ID_LEN + 1)).is_err());
    }

    #[test]
    fn roles_follow_mesos_rules() {
        assert!(Role::parse("*").unwrap().is_star());
        assert!(Role::parse("eng/frontend").is_ok());
        for bad in ["", "a//b", "a/./b", "..", "a/*", "-x", "a b", "a(b"] {
            assert!(Role::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
