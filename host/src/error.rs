//! The errors a command or a request ends with, sorted by what a person does
//! about them. Each kind maps once to an exit status (`main.rs`) and once to an
//! HTTP status (the API, and back in the client), so bad input is exit status 2
//! and a 400 wherever it was found.

use std::fmt;

/// An error in what the user asked for, as opposed to a failure while doing it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// What a person does about a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Fix the command, the request or the configuration.
    Usage,
    /// Name something that exists.
    NotFound,
    /// Wait for what was named to be in a state that allows it (firing, running).
    Conflict,
    /// Start the host: only a running host does this.
    NeedsHost,
    /// Check the address and the network: the host did not answer.
    Unreachable,
    /// Try again: the database is busy or cannot be written for now.
    Unavailable,
    /// Look at the plugin: it failed doing what was asked.
    PluginFault,
    /// Look at the message: something failed while doing it.
    Failed,
}

/// Kinds and their HTTP statuses, read both ways. A host never answers that it
/// needs a host or cannot be reached: those are the client's own.
const HTTP: [(ErrorKind, u16); 6] = [
    (ErrorKind::Usage, 400),
    (ErrorKind::NotFound, 404),
    (ErrorKind::Conflict, 409),
    (ErrorKind::Unavailable, 503),
    (ErrorKind::PluginFault, 502),
    (ErrorKind::Failed, 500),
];

impl ErrorKind {
    /// The process's exit status: 2 for a mistake in what was asked, else 1.
    pub fn exit_status(self) -> u8 {
        match self {
            ErrorKind::Usage => 2,
            _ => 1,
        }
    }

    pub fn http_status(self) -> u16 {
        HTTP.iter().find(|(kind, _)| *kind == self).map_or(500, |(_, status)| *status)
    }

    /// The kind of a host's error answer; a status it does not use is a failure.
    pub fn from_http_status(status: u16) -> ErrorKind {
        HTTP.iter().find(|(_, s)| *s == status).map_or(ErrorKind::Failed, |(kind, _)| *kind)
    }
}

/// A failure of a command or a request, with its kind.
#[derive(Debug)]
pub struct CommandError {
    kind: ErrorKind,
    error: anyhow::Error,
}

pub type CommandResult<T> = Result<T, CommandError>;

impl CommandError {
    pub fn new(kind: ErrorKind, message: impl fmt::Display) -> CommandError {
        CommandError { kind, error: anyhow::anyhow!("{message}") }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for CommandError {}

/// An error that knows what a person does about it.
pub trait Classified: std::error::Error + Send + Sync + 'static {
    fn kind(&self) -> ErrorKind;
}

impl<E: Classified> From<E> for CommandError {
    fn from(e: E) -> CommandError {
        CommandError { kind: e.kind(), error: e.into() }
    }
}

impl Classified for UsageError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Usage
    }
}

impl Classified for std::io::Error {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Failed
    }
}

impl Classified for serde_json::Error {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Failed
    }
}

impl From<anyhow::Error> for CommandError {
    fn from(error: anyhow::Error) -> CommandError {
        CommandError { kind: ErrorKind::Failed, error }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_http_status() {
        for (kind, status) in HTTP {
            assert_eq!(kind.http_status(), status);
            assert_eq!(ErrorKind::from_http_status(status), kind);
        }
        assert_eq!(ErrorKind::from_http_status(418), ErrorKind::Failed);
    }

    #[test]
    fn a_classified_error_keeps_its_kind_and_anything_else_is_a_failure() {
        let usage = CommandError::from(UsageError("bad".into()));
        assert_eq!((usage.kind(), usage.kind().exit_status(), usage.to_string()), (ErrorKind::Usage, 2, "bad".into()));
        let failed = CommandError::from(anyhow::anyhow!("disk gone").context("writing"));
        assert_eq!((failed.kind(), failed.to_string()), (ErrorKind::Failed, "writing: disk gone".into()));
        assert_eq!(ErrorKind::NotFound.exit_status(), 1);
    }
}
