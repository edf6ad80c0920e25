//! Why an invitation step failed. Every error has a stable code
//! (`invite.*`) shown to the people on both sides, and a sentence they can
//! act on.

/// An invitation error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    /// The text is not an invite code of any version this vault reads.
    #[error("this is not an ECHO invite code ({0}); copy the whole code or link again")]
    BadCode(String),
    /// The code was made by a newer vault.
    #[error("this invite code has format {0}, newer than this vault reads; update the vault")]
    UnsupportedVersion(u8),
    /// The invitation's time ran out.
    #[error("the invitation has expired; ask for a new one")]
    Expired,
    /// The host has no such invitation (never made here, or forgotten).
    #[error("the host does not know this invitation; ask for a new one")]
    Unknown,
    /// A single-use invitation was used already.
    #[error("the invitation was used already; ask for a new one")]
    Used,
    /// The host cancelled it.
    #[error("the host cancelled the invitation")]
    Cancelled,
    /// Three wrong authorization codes ended it.
    #[error("too many wrong authorization codes: the invitation has ended; ask for a new one")]
    TooManyAttempts,
    /// Another guest is using the invitation at the moment.
    #[error("someone else is answering this invitation right now; try again in a minute")]
    Busy,
    /// The authorization code did not match; `attempts_left` more may be made.
    #[error(
        "the authorization code is not the one the host shows ({attempts_left} attempts left)"
    )]
    WrongCode { attempts_left: u8 },
    /// The typed authorization code is not six digits.
    #[error("the authorization code is the six digits the host's vault shows")]
    BadAuthCode,
    /// The peer that answered is not the device that made the invitation.
    #[error("the device that answered is not the one that made the invitation")]
    HostMismatch,
    /// A message that does not decode, fails its check, or comes out of turn.
    #[error("the other side sent a message that breaks the invitation protocol ({0})")]
    Protocol(&'static str),
    /// The guest's identity or device credential did not verify.
    #[error("the guest's identity could not be verified")]
    BadCredentials,
    /// A step took too long.
    #[error("the other side stopped answering; try again")]
    Timeout,
    /// A code arrived when none was asked for.
    #[error("no authorization code is asked for at this point")]
    NotReady,
}

impl InviteError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            InviteError::BadCode(_) => "invite.bad_code",
            InviteError::UnsupportedVersion(_) => "invite.unsupported_version",
            InviteError::Expired => "invite.expired",
            InviteError::Unknown => "invite.unknown",
            InviteError::Used => "invite.used",
            InviteError::Cancelled => "invite.cancelled",
            InviteError::TooManyAttempts => "invite.too_many_attempts",
            InviteError::Busy => "invite.busy",
            InviteError::WrongCode { .. } => "invite.wrong_code",
            InviteError::BadAuthCode => "invite.bad_auth_code",
            InviteError::HostMismatch => "invite.host_mismatch",
            InviteError::Protocol(_) => "invite.protocol",
            InviteError::BadCredentials => "invite.bad_credentials",
            InviteError::Timeout => "invite.timeout",
            InviteError::NotReady => "invite.not_ready",
        }
    }
}

/// Why a host ended or refused a guest, as the wire carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Refusal {
    Expired,
    Unknown,
    Used,
    Cancelled,
    TooManyAttempts,
    Busy,
    Timeout,
    Protocol,
}

impl Refusal {
    /// The error the guest reports.
    pub fn error(self) -> InviteError {
        match self {
            Refusal::Expired => InviteError::Expired,
            Refusal::Unknown => InviteError::Unknown,
            Refusal::Used => InviteError::Used,
            Refusal::Cancelled => InviteError::Cancelled,
            Refusal::TooManyAttempts => InviteError::TooManyAttempts,
            Refusal::Busy => InviteError::Busy,
            Refusal::Timeout => InviteError::Timeout,
            Refusal::Protocol => InviteError::Protocol("the host refused a message"),
        }
    }
}
