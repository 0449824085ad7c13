//! Database URLs: which backend a URL names, and how it is shown in logs
//! and errors (passwords replaced).

use super::{ConfigError, invalid};

/// Where the store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `sqlite://…`.
    Sqlite(String),
    /// `postgres://…` or `postgresql://…`.
    Postgres(String),
}

impl StoreUrl {
    /// Parses a database URL.
    pub fn parse(key: &'static str, url: &str) -> Result<Self, ConfigError> {
        if url.starts_with("sqlite:") {
            Ok(StoreUrl::Sqlite(url.to_string()))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(StoreUrl::Postgres(url.to_string()))
        } else {
            Err(invalid(
                key,
                format!(
                    "`{}` is neither sqlite://… nor postgres://…",
                    redact_url(url)
                ),
            ))
        }
    }

    /// The URL itself.
    pub(crate) fn as_str(&self) -> &str {
        match self {
            StoreUrl::Sqlite(u) | StoreUrl::Postgres(u) => u,
        }
    }
}

/// A database URL with any password (`user:password@` or `?password=`)
/// replaced, for logs and errors.
pub(crate) fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_string();
    };
    let is_password = |key: &str| key.eq_ignore_ascii_case("password");
    let in_query = parsed.query_pairs().any(|(k, _)| is_password(&k));
    if parsed.password().is_none() && !in_query {
        return url.to_string();
    }
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    if in_query {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_password(&k) { "***".into() } else { v };
                (k.into_owned(), v.into_owned())
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}
