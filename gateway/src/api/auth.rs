//! Bearer tokens: the bootstrap `CHANGEWIRE_ADMIN_TOKEN` or an API key.

use changewire_core::Secret;
use subtle_eq::constant_time_eq;

use super::error::Error;
use crate::secrets::hash_token;
use crate::store::Store;
use crate::store::receivers::Actor;

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Everything.
    Admin,
    /// Read only.
    Viewer,
}

impl Role {
    /// `admin` / `viewer`, as stored.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    /// Parses `admin` / `viewer`.
    pub(crate) fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// Who (for `createdBy`).
    pub(crate) actor: Actor,
    /// What they may do.
    pub(crate) role: Role,
}

impl Caller {
    /// Refuses callers that are not admins.
    pub(crate) fn require_admin(&self) -> Result<(), Error> {
        match self.role {
            Role::Admin => Ok(()),
            Role::Viewer => Err(Error::Forbidden(format!(
                "API key `{}` has the viewer role, which cannot change anything",
                self.actor.name
            ))),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` value. The scheme is
/// case-insensitive (RFC 7235 §2.1) and must start the value, followed by a
/// space; whitespace around the token is ignored. Another scheme, or no
/// token, is not a bearer token.
pub(crate) fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, rest) = header.split_once(' ')?;
    let token = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Resolves an `Authorization` header value to a caller.
pub(crate) async fn authenticate(
    header: Option<&str>,
    admin_token: Option<&Secret>,
    store: &Store,
) -> Result<Caller, Error> {
    let token = header
        .and_then(bearer_token)
        .ok_or(Error::Unauthenticated)?;
    if let Some(admin) = admin_token
        && constant_time_eq(admin.expose().as_bytes(), token.as_bytes())
    {
        return Ok(Caller {
            actor: Actor {
                id: "admin".into(),
                name: "admin".into(),
            },
            role: Role::Admin,
        });
    }
    let key = store
        .api_key_by_hash(&hash_token(token))
        .await
        .map_err(|e| Error::Internal(crate::report::Report(&e).to_string()))?
        .ok_or(Error::Unauthenticated)?;
    let role = Role::parse(&key.role)
        .ok_or_else(|| Error::Internal(format!("key {} has role {}", key.id, key.role)))?;
    Ok(Caller {
        actor: Actor {
            id: format!("key:{}", key.id),
            name: key.name,
        },
        role,
    })
}

mod subtle_eq {
    /// Compares in time independent of where the inputs differ.
    pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        a.ct_eq(b).into()
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for header in [
            "Bearer tok",
            "bearer tok",
            "BEARER tok",
            "bEaReR tok",
            "Bearer   tok  ",
        ] {
            assert_eq!(bearer_token(header), Some("tok"), "{header:?}");
        }
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_not_bearer_tokens() {
        for header in [
            "Basic dXNlcjpwdw==",
            "Bearer",
            "Bearer ",
            "Bearer    ",
            "Bearertok",
            "Bearer\ttok",
            " Bearer tok",
            "Token tok",
        ] {
            assert_eq!(bearer_token(header), None, "{header:?}");
        }
    }
}
