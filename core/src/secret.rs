//! A secret that never prints.

use std::fmt;

/// A shared secret. `Debug` and `Display` print `[redacted]`; read the value
/// with [`Secret::expose`] only where it is used.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The masked form the API shows after creation: `whsec_…` plus the last
    /// four characters, or only asterisks for short secrets.
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        if chars.len() < 12 {
            return "********".to_string();
        }
        let tail: String = chars[chars.len() - 4..].iter().collect();
        let head = if self.0.starts_with(crate::standard::SECRET_PREFIX) {
            crate::standard::SECRET_PREFIX
        } else {
            ""
        };
        format!("{head}********{tail}")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_and_masks() {
        let s = Secret::new("whsec_abcdefghijklmnopqrstuvwxyz012345");
        assert_eq!(format!("{s:?} {s}"), "Secret([redacted]) [redacted]");
        assert_eq!(s.masked(), "whsec_********2345");
        assert_eq!(Secret::new("short").masked(), "********");
    }
}
