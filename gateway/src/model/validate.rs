//! Checks of single values. Each returns an [`Invalid`] naming the field
//! it was given (the API reports it as `BAD_USER_INPUT`).

use changewire_core::headers;

use super::Invalid;
use crate::destination::Policy;

type Result<T> = std::result::Result<T, Invalid>;

/// A short single-line text (names).
pub(crate) fn name(field: &str, value: &str, max: usize) -> Result<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(Invalid::new(
            field,
            format!("is longer than {max} characters"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(Invalid::new(field, "must not contain control characters"));
    }
    Ok(v.to_string())
}

/// A free text (descriptions).
pub(crate) fn text(field: &str, value: &str, max: usize) -> Result<String> {
    if value.chars().count() > max {
        return Err(Invalid::new(
            field,
            format!("is longer than {max} characters"),
        ));
    }
    Ok(value.to_string())
}

/// A receiver URL, checked without network access; returns the form to
/// store (see [`Policy::accept_url`]: scheme and host normalised, path and
/// query as given). Every `webhookUri` the API accepts goes through here.
pub(crate) fn webhook_uri(field: &str, value: &str, policy: &Policy) -> Result<String> {
    if value.len() > 2048 {
        return Err(Invalid::new(field, "is longer than 2048 characters"));
    }
    policy
        .accept_url(value)
        .map_err(|r| Invalid::new(field, r.to_string()))
}

/// A status code that can count as success.
pub(crate) fn status_code(field: &str, value: i32) -> Result<i32> {
    if (100..=599).contains(&value) {
        Ok(value)
    } else {
        Err(Invalid::new(
            field,
            format!("{value} is not an HTTP status code (100–599)"),
        ))
    }
}

/// An integer within bounds.
pub(crate) fn range(field: &str, value: i64, min: i64, max: i64) -> Result<i64> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(Invalid::new(
            field,
            format!("{value} is outside {min}–{max}"),
        ))
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// A custom header name and value.
pub(crate) fn header(field: &str, key: &str, value: &str) -> Result<(String, String)> {
    let key = key.trim();
    if key.is_empty() || key.len() > 256 || !key.chars().all(is_token_char) {
        return Err(Invalid::new(
            format!("{field}.key"),
            format!("`{key}` is not a valid header name (letters, digits and !#$%&'*+-.^_`|~)"),
        ));
    }
    if let Some(why) = headers::reserved(key) {
        return Err(Invalid::new(
            format!("{field}.key"),
            format!("`{key}` is reserved and cannot be set as a custom header: {why}"),
        ));
    }
    if value.len() > 8192 {
        return Err(Invalid::new(
            format!("{field}.value"),
            "is longer than 8192 bytes",
        ));
    }
    if value.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
        return Err(Invalid::new(
            format!("{field}.value"),
            "must not contain CR, LF or NUL",
        ));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(Invalid::new(
            format!("{field}.value"),
            "must not contain control characters",
        ));
    }
    Ok((key.to_string(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_checked() {
        assert!(header("h", "X-Api-Key", "abc").is_ok());
        for (k, v) in [
            ("X-A", "a\r\nInjected: 1"),
            ("X-A", "a\nb"),
            ("Bad Name", "v"),
            ("Content-Type", "text/plain"),
            ("x-ion-signature", "forged"),
            ("Authorization", "Bearer x"),
            ("User-Agent", "mine/1"),
            ("Expect", "100-continue"),
            ("Content-Encoding", "gzip"),
            ("Proxy-Connection", "keep-alive"),
            ("X-Ion-Signature-V2", "forged"),
            ("webhook-signature-x", "forged"),
            ("", "v"),
        ] {
            let err = header("input", k, v).unwrap_err();
            assert!(err.field.starts_with("input"), "{k}: {v}: {err}");
        }
    }

    #[test]
    fn status_codes_and_names() {
        assert!(status_code("c", 200).is_ok());
        assert!(status_code("c", 99).is_err());
        assert!(status_code("c", 600).is_err());
        assert!(name("n", "  ", 10).is_err());
        assert!(name("n", "a\u{7}b", 10).is_err());
        assert_eq!(name("n", " ok ", 10).unwrap(), "ok");
    }
}
