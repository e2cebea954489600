//! The model crate's error type.
use thiserror::Error;

/// A malformed text form, with the byte position where parsing stopped.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("at byte {pos}: {reason}")]
pub struct ParseError {
    /// Byte offset into the input where the problem was found.
    pub pos: usize,
    /// What was expected or wrong there.
    pub reason: String,
}

impl ParseError {
    pub(crate) fn new(pos: usize, reason: impl Into<String>) -> Self {
        Self {
            pos,
            reason: reason.into(),
        }
    }
}

/// Errors of domain validation and arithmetic.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModelError {
    #[error("parse error {0}")]
    Parse(#[from] ParseError),
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("insufficient resources: {0}")]
    Insufficient(String),
}

impl ModelError {
    /// An invalid-field error naming the field path.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
