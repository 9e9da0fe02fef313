//! The error every layer can raise for bad input, so that the CLI answers it
//! with exit status 2 and the API with 400, wherever it was found.

/// An error in what the user asked for, as opposed to a failure while doing it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
