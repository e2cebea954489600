//! The crate's errors: bad ids, bad constraints, invalid apps (as Marathon's
//! 422 `details` entries: a JSON path and its messages) and plans that
//! cannot be made.
use thiserror::Error;

use crate::ids::PathId;

/// An id that breaks Marathon's id rules.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    /// A segment is neither `..` nor `(label.)*label` with labels of
    /// `[a-z0-9-]` that start and end with a letter or digit.
    #[error(
        "path contains invalid characters (allowed: lowercase letters, digits, hyphens, \".\", \"..\"): {id:?} (segment {segment:?})"
    )]
    InvalidPath {
        /// The whole id as given.
        id: String,
        /// The offending segment.
        segment: String,
    },
}

/// A constraint that cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConstraintError {
    /// Not `[field, OPERATOR]` or `[field, OPERATOR, value]`.
    #[error("Each constraint must have either 2 or 3 fields")]
    Arity,
    /// The field name is empty.
    #[error("Missing field and operator")]
    EmptyField,
    /// Not one of UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER, IS.
    #[error(
        "Constraint operator must be one of the following: [UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER, IS], got {0:?}"
    )]
    UnknownOperator(String),
    /// UNIQUE takes no value.
    #[error("Value specified but not used")]
    UnexpectedValue,
    /// LIKE, UNLIKE, MAX_PER and IS need a value.
    #[error("Missing value")]
    MissingValue,
    /// LIKE/UNLIKE value is not a regular expression.
    #[error("'{value}' is not a valid regular expression ({message})")]
    BadRegex {
        /// The value given.
        value: String,
        /// What the regex parser said.
        message: String,
    },
    /// MAX_PER/GROUP_BY value is not a non-negative integer (GROUP_BY: positive).
    #[error("Value was not a valid number: {0:?}")]
    NotANumber(String),
}

/// One invalid field, as an entry of Marathon's 422 body:
/// `{"path": "/constraints(0)", "errors": ["Missing value"]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Marathon's JSON path form: `/upgradeStrategy/minimumHealthCapacity`,
    /// list elements as `(i)`.
    pub path: String,
    /// Human-readable messages for that path.
    pub errors: Vec<String>,
}

impl Violation {
    /// One message at `path`.
    pub fn at(path: impl Into<String>, error: impl Into<String>) -> Violation {
        Violation {
            path: path.into(),
            errors: vec![error.into()],
        }
    }
}

/// Why a deployment plan cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlanError {
    /// The target's dependencies form a cycle through these apps.
    #[error("Dependency graph has cyclic dependencies: {0:?}")]
    Cycle(Vec<PathId>),
    /// `app` depends on `missing`, which is not in the target.
    #[error("App {app} depends on {missing}, which does not exist")]
    UnknownDependency {
        /// The app that names the dependency.
        app: PathId,
        /// The id it names.
        missing: PathId,
    },
    /// A map key and the app's own id differ.
    #[error("App stored under {key} has id {id}")]
    KeyMismatch {
        /// The map key.
        key: PathId,
        /// The app's id.
        id: PathId,
    },
}
