//! Request headers: content type, signatures (after any plugin, over what is
//! actually sent), custom headers and Basic auth.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use changewire_core::{Secret, ion, standard};

/// Signing material of a receiver at the moment of sending.
#[derive(Debug, Clone)]
pub(crate) struct Signing {
    /// The current secret.
    pub(crate) current: Secret,
    /// The previous secret while a rotation's overlap lasts.
    pub(crate) previous: Option<Secret>,
    /// Send `x-ion-signature`.
    pub(crate) ion: bool,
    /// Send Standard Webhooks headers with HMAC (`v1`) signatures.
    pub(crate) standard: bool,
    /// Ed25519 keys that sign (`v1a`): the current one, and the previous
    /// one during a rotation's overlap. Empty when the receiver did not
    /// choose ED25519.
    pub(crate) ed25519: Vec<standard::Ed25519SigningKey>,
}

/// What one request's headers are made from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestParts<'a> {
    /// The receiver URL, exactly as registered.
    pub(crate) url: &'a str,
    /// The final body (after any plugin).
    pub(crate) body: &'a [u8],
    /// The event id (`webhook-id`).
    pub(crate) event_id: i64,
    /// Now, in Unix seconds (`webhook-timestamp`).
    pub(crate) now_secs: i64,
    /// Secrets and schemes.
    pub(crate) signing: &'a Signing,
    /// The receiver's custom headers.
    pub(crate) custom: &'a [(String, String)],
    /// Basic auth (user, password).
    pub(crate) basic_auth: Option<(&'a str, &'a str)>,
    /// Headers a plugin added.
    pub(crate) plugin_headers: &'a [(String, String)],
}

/// Builds the headers of one request.
pub(crate) fn build(parts: &RequestParts<'_>) -> Vec<(String, String)> {
    let RequestParts {
        url,
        body,
        event_id,
        now_secs,
        signing,
        custom,
        basic_auth,
        plugin_headers,
    } = *parts;
    let mut headers: Vec<(String, String)> = Vec::with_capacity(8 + custom.len());
    headers.push(("content-type".into(), "application/json".into()));
    headers.push((
        "user-agent".into(),
        concat!("changewire/", env!("CARGO_PKG_VERSION")).into(),
    ));
    // The ION scheme signs `data`. A body without one (a plugin's own shape,
    // e.g. a Slack message) cannot be verified by the reference code, so it
    // gets no `x-ion-signature`; Standard Webhooks signs any body.
    let sign = |secret: &Secret| ion::sign_body(secret.expose(), url, body).ok();
    if signing.ion {
        match &signing.previous {
            Some(previous) => {
                if let (Some(old), Some(new)) = (sign(previous), sign(&signing.current)) {
                    headers.push((ion::HEADER.into(), old));
                    headers.push((ion::HEADER_NEXT.into(), new));
                }
            }
            None => {
                if let Some(sig) = sign(&signing.current) {
                    headers.push((ion::HEADER.into(), sig));
                }
            }
        }
    }
    if signing.standard || !signing.ed25519.is_empty() {
        let id = event_id.to_string();
        let mut signatures = Vec::new();
        if signing.standard {
            for secret in std::iter::once(&signing.current).chain(signing.previous.iter()) {
                if let Ok(key) = standard::SigningKey::from_secret(secret.expose()) {
                    signatures.push(key.sign(&id, now_secs, body));
                }
            }
        }
        for key in &signing.ed25519 {
            signatures.push(key.sign(&id, now_secs, body));
        }
        headers.push((standard::HEADER_ID.into(), id));
        headers.push((standard::HEADER_TIMESTAMP.into(), now_secs.to_string()));
        headers.push((standard::HEADER_SIGNATURE.into(), signatures.join(" ")));
    }
    // A plugin's header wins over a custom header of the same name.
    for (k, v) in custom {
        if !plugin_headers
            .iter()
            .any(|(pk, _)| pk.eq_ignore_ascii_case(k))
        {
            headers.push((k.clone(), v.clone()));
        }
    }
    for (k, v) in plugin_headers {
        headers.push((k.clone(), v.clone()));
    }
    if let Some((user, password)) = basic_auth {
        headers.push((
            "authorization".into(),
            format!("Basic {}", BASE64.encode(format!("{user}:{password}"))),
        ));
    }
    headers
}

/// Headers the audit trail shows in full: the ones changewire itself sets,
/// none of which is a credential. Every other value (custom headers, which
/// often carry API keys, and headers a plugin added) is masked: an
/// allow-list, so a header nobody thought of is masked too.
const SHOWN_IN_AUDIT: &[&str] = &[
    "content-type",
    "user-agent",
    ion::HEADER,
    ion::HEADER_NEXT,
    standard::HEADER_ID,
    standard::HEADER_TIMESTAMP,
    standard::HEADER_SIGNATURE,
    "traceparent",
];

/// The headers as recorded in the audit trail (and shown to viewers): the
/// gateway's own headers in full, `authorization` as its scheme only, and
/// every other value masked.
pub(crate) fn for_audit(headers: &[(String, String)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .map(|(k, v)| {
            let value = if SHOWN_IN_AUDIT.iter().any(|s| k.eq_ignore_ascii_case(s)) {
                v.clone()
            } else if k.eq_ignore_ascii_case("authorization") {
                format!("{} ***", v.split(' ').next().unwrap_or(""))
            } else {
                crate::secrets::mask_header_value(v)
            };
            (k.clone(), serde_json::Value::String(value))
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use changewire_core::{Scheme, VerifyOptions, verify_request};

    #[test]
    fn the_audit_trail_shows_only_the_gateways_own_header_values() {
        let sent = [
            ("content-type".to_string(), "application/json".to_string()),
            ("webhook-id".to_string(), "42".to_string()),
            (
                "X-Api-Key".to_string(),
                "sk_live_0123456789abcdef".to_string(),
            ),
            ("x-plugin-added".to_string(), "tok".to_string()),
            ("authorization".to_string(), "Bearer abc.def".to_string()),
        ];
        let audit: serde_json::Value = serde_json::from_str(&for_audit(&sent)).unwrap();
        assert_eq!(audit["content-type"], "application/json");
        assert_eq!(audit["webhook-id"], "42");
        assert_eq!(audit["X-Api-Key"], "********cdef");
        assert_eq!(audit["x-plugin-added"], "********");
        assert_eq!(audit["authorization"], "Bearer ***");
    }

    const BODY: &[u8] = br#"{"event_id": 5, "data": {"id": 1, "new": {"a": 1}}}"#;

    #[test]
    fn ed25519_signs_beside_hmac_and_both_keys_sign_during_a_rotation() {
        let old = standard::Ed25519SigningKey::from_seed([1; 32]);
        let new = standard::Ed25519SigningKey::from_seed([2; 32]);
        let signing = Signing {
            current: Secret::new("whsec_bmV3LXNlY3JldC1rZXk="),
            previous: None,
            ion: false,
            standard: true,
            ed25519: vec![new.clone(), old.clone()],
        };
        let h = build(&RequestParts {
            url: "https://r.test/h",
            body: BODY,
            event_id: 5,
            now_secs: 1000,
            signing: &signing,
            custom: &[],
            basic_auth: None,
            plugin_headers: &[],
        });
        let header = h
            .iter()
            .find(|(k, _)| k == standard::HEADER_SIGNATURE)
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        let versions: Vec<&str> = header
            .split(' ')
            .filter_map(|e| e.split_once(',').map(|(v, _)| v))
            .collect();
        assert_eq!(versions, ["v1", "v1a", "v1a"], "{header}");
        for key in [&old, &new] {
            let public = key.public_key().to_string();
            assert_eq!(
                verify_request(&public, "", BODY, &h, 1000, &VerifyOptions::default()),
                Ok(Scheme::Ed25519)
            );
        }
        let stranger = standard::Ed25519SigningKey::from_seed([3; 32])
            .public_key()
            .to_string();
        assert!(verify_request(&stranger, "", BODY, &h, 1000, &VerifyOptions::default()).is_err());
    }

    #[test]
    fn signatures_verify_with_the_core_and_rotation_keeps_both() {
        let old = Secret::new("whsec_b2xkLXNlY3JldC1rZXk=");
        let new = Secret::new("whsec_bmV3LXNlY3JldC1rZXk=");
        let signing = Signing {
            current: new.clone(),
            previous: Some(old.clone()),
            ion: true,
            standard: true,
            ed25519: Vec::new(),
        };
        let custom = [("X-K".to_string(), "v".to_string())];
        let h = build(&RequestParts {
            url: "https://r.test/h",
            body: BODY,
            event_id: 5,
            now_secs: 1000,
            signing: &signing,
            custom: &custom,
            basic_auth: Some(("u", "p")),
            plugin_headers: &[],
        });
        for secret in [&old, &new] {
            let ion_only = VerifyOptions {
                require: Some(Scheme::Ion),
                ..Default::default()
            };
            assert_eq!(
                verify_request(
                    secret.expose(),
                    "https://r.test/h",
                    BODY,
                    &h,
                    1000,
                    &ion_only
                ),
                Ok(Scheme::Ion)
            );
            assert_eq!(
                verify_request(
                    secret.expose(),
                    "https://r.test/h",
                    BODY,
                    &h,
                    1000,
                    &VerifyOptions::default()
                ),
                Ok(Scheme::Standard)
            );
        }
        assert!(
            h.iter()
                .any(|(k, v)| k == "authorization" && v == "Basic dTpw")
        );
        let audit = for_audit(&h);
        assert!(
            audit.contains("Basic ***") && !audit.contains("dTpw"),
            "{audit}"
        );
    }
}
