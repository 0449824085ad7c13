//! The error a plugin returns to fail a delivery.

use std::fmt;

/// `Result<T, Error>`, the return type of [`Plugin::transform`](crate::Plugin::transform).
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a plugin failed a delivery. Its message is recorded in the delivery's
/// attempt, so say what was wrong with the input.
///
/// `?` converts `serde_json` errors, `String` and `&str` into it; use
/// [`Error::msg`] for anything else that implements `Display`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
}

impl Error {
    /// An error with this message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Error {
            message: message.to_string(),
        }
    }

    /// The message recorded in the delivery's attempt.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::msg(e)
    }
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Error { message }
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Error::msg(message)
    }
}
