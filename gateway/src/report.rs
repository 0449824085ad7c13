//! How an error is shown to people: every distinct cause once, outermost
//! first, joined with `": "`.
//!
//! The gateway's error enums follow one convention: a variant that keeps its
//! cause as a source (`#[from]` or `#[source]`) does not repeat the cause in
//! its own `Display`, and a wrapper that adds nothing is
//! `#[error(transparent)]`. So each `Display` is one link of the chain, and
//! whoever shows an error to a person (the CLI, a log line, `/readyz`) walks
//! the chain with [`Report`] instead of calling `to_string()`.
//!
//! Third-party errors do not all follow it: sqlx's "error communicating with
//! database: {io error}" also returns that io error as its source. A link
//! whose message the previous link already contains is therefore skipped.

use std::error::Error;
use std::fmt;

/// Shows an error and its causes, each once: `outer: inner: root`.
///
/// ```
/// use changewire_gateway::testing::Report;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("reading the configuration")]
/// struct Reading(#[source] std::io::Error);
///
/// let err = Reading(std::io::Error::other("permission denied"));
/// assert_eq!(
///     Report(&err).to_string(),
///     "reading the configuration: permission denied"
/// );
/// ```
#[derive(Clone, Copy)]
pub struct Report<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut previous = String::new();
        let mut link: Option<&(dyn Error + 'static)> = Some(self.0);
        let mut first = true;
        while let Some(err) = link {
            let message = err.to_string();
            if !message.is_empty() && !previous.contains(&message) {
                if !first {
                    f.write_str(": ")?;
                }
                f.write_str(&message)?;
                first = false;
                previous = message;
            }
            link = err.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Middle);

    /// Repeats its source in its message, as some third-party errors do.
    #[derive(Debug, thiserror::Error)]
    #[error("middle: {0}")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn each_cause_is_shown_once_even_when_a_link_repeats_its_source() {
        let err = Outer(Middle(std::io::Error::other("connection refused")));
        assert_eq!(
            Report(&err).to_string(),
            "outer: middle: connection refused"
        );
    }

    #[test]
    fn an_error_without_a_source_is_its_message() {
        let err = std::io::Error::other("boom");
        assert_eq!(Report(&err).to_string(), "boom");
    }
}
