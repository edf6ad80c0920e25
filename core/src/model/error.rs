use thiserror::Error;

/// Errors of the data model. Each names what was wrong and where.
#[derive(Debug, Error)]
pub enum ModelError {
    #[error("invalid {kind} {text:?}: expected 26 lower-case base32hex characters")]
    InvalidId { kind: &'static str, text: String },
}
