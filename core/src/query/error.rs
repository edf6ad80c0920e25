//! Errors of queries and live subscriptions.

use thiserror::Error;

/// A query that cannot run as written. Each variant names what was wrong;
/// [`code`](QueryError::code) is stable and is what hosts pass on to apps.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QueryError {
    #[error("traversal depth {depth} is out of range: use a depth from 1 to {max}")]
    InvalidDepth { depth: u32, max: u32 },
    #[error(
        "cannot compare field {field:?} with {op} against a {kind} value: \
         ordering comparisons (<, <=, >, >=) take a bool, number, string or bytes value; \
         use = or != for other kinds"
    )]
    Incomparable {
        field: String,
        op: &'static str,
        kind: &'static str,
    },
    #[error("the {what} is nested {depth} levels deep; at most {max} levels are allowed")]
    TooDeep {
        what: &'static str,
        depth: usize,
        max: usize,
    },
    #[error("empty field name in {context}: name the field to filter or order by")]
    EmptyField { context: &'static str },
}

impl QueryError {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            QueryError::InvalidDepth { .. } => "query.invalid_depth",
            QueryError::Incomparable { .. } => "query.incomparable",
            QueryError::TooDeep { .. } => "query.too_deep",
            QueryError::EmptyField { .. } => "query.empty_field",
        }
    }
}
