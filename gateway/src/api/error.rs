//! API errors: one enum, converted at the edge into GraphQL errors with a
//! stable `extensions.code`. Internal errors are logged here, once, and reach
//! the client as a generic message.

use async_graphql::ErrorExtensions;

use crate::store;

/// What an API call can fail with.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The input is unusable; nothing was changed.
    #[error("`{field}`: {reason}")]
    BadInput {
        /// The input field, e.g. `input.webhookUri`.
        field: String,
        /// Why it is refused.
        reason: String,
    },
    /// The request body is not the JSON expected; nothing was done.
    #[error("`body`: {reason}")]
    BadBody {
        /// Why, with the JSON parser's words and position.
        reason: String,
        /// Line of the parser's position (1-based).
        line: usize,
        /// Column of the parser's position (1-based; 0 before the first character).
        column: usize,
    },
    /// The object does not exist.
    #[error("{entity} {id} does not exist")]
    NotFound {
        /// What was looked up.
        entity: &'static str,
        /// Its id.
        id: String,
    },
    /// A stale etag or a duplicate; nothing was changed.
    #[error("{0}")]
    Conflict(String),
    /// No valid bearer token.
    #[error(
        "a bearer token is required: send `Authorization: Bearer <token>` (CHANGEWIRE_ADMIN_TOKEN or a key from `changewire keys create`)"
    )]
    Unauthenticated,
    /// The token's role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// Something broke on our side.
    #[error("internal error")]
    Internal(String),
}

impl Error {
    /// A bad input on `field`.
    pub(crate) fn bad_input(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::BadInput {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A body that did not parse as `expected` (e.g. "a GraphQL request").
    pub(crate) fn bad_body(err: &serde_json::Error, expected: &str) -> Self {
        use serde_json::error::Category;
        let reason = match err.classify() {
            Category::Eof if err.line() == 1 && err.column() == 0 => {
                format!("is empty; expected {expected} in JSON")
            }
            Category::Syntax | Category::Eof => format!("is not valid JSON: {err}"),
            Category::Data => format!("is not {expected}: {err}"),
            Category::Io => format!("could not be read: {err}"),
        };
        Error::BadBody {
            reason,
            line: err.line(),
            column: err.column(),
        }
    }

    /// The input field at fault, if any (`extensions.field`).
    pub(crate) fn field(&self) -> Option<&str> {
        match self {
            Error::BadInput { field, .. } => Some(field),
            Error::BadBody { .. } => Some("body"),
            _ => None,
        }
    }

    /// Where in the body the JSON parser stopped, if that is the fault
    /// (`extensions.line` and `extensions.column`).
    pub(crate) fn position(&self) -> Option<(usize, usize)> {
        match self {
            Error::BadBody { line, column, .. } => Some((*line, *column)),
            _ => None,
        }
    }

    /// The stable code clients switch on.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Error::BadInput { .. } | Error::BadBody { .. } => "BAD_USER_INPUT",
            Error::NotFound { .. } => "NOT_FOUND",
            Error::Conflict(_) => "CONFLICT",
            Error::Unauthenticated => "UNAUTHENTICATED",
            Error::Forbidden(_) => "FORBIDDEN",
            Error::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }
}

impl From<store::Error> for Error {
    fn from(err: store::Error) -> Self {
        match err {
            store::Error::NotFound { entity, id } => Error::NotFound {
                entity,
                id: id.to_string(),
            },
            store::Error::Conflict { .. } | store::Error::Duplicate(_) => {
                Error::Conflict(err.to_string())
            }
            other => Error::Internal(crate::report::Report(&other).to_string()),
        }
    }
}

impl From<crate::model::Invalid> for Error {
    fn from(err: crate::model::Invalid) -> Self {
        Error::BadInput {
            field: err.field,
            reason: err.reason,
        }
    }
}

impl From<crate::secrets::Error> for Error {
    fn from(err: crate::secrets::Error) -> Self {
        Error::Internal(err.to_string())
    }
}

/// A resolver's error. It deliberately does not implement `Display`, so that
/// async-graphql's blanket `From<impl Display>` cannot turn it into an error
/// without its `extensions.code`; the conversion below always sets it.
#[derive(Debug)]
pub(crate) struct Failure(pub(crate) Error);

impl<E: Into<Error>> From<E> for Failure {
    fn from(err: E) -> Self {
        Failure(err.into())
    }
}

impl From<Failure> for async_graphql::Error {
    fn from(Failure(err): Failure) -> Self {
        if let Error::Internal(detail) = &err {
            tracing::error!(error = %detail, "internal error in the API");
        }
        async_graphql::Error::new(err.to_string()).extend_with(|_, ext| {
            ext.set("code", err.code());
            if let Some(field) = err.field() {
                ext.set("field", field);
            }
            if let Some((line, column)) = err.position() {
                ext.set("line", line);
                ext.set("column", column);
            }
        })
    }
}

/// Result of API helpers.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// Result of GraphQL resolvers.
pub(crate) type FieldResult<T> = std::result::Result<T, Failure>;
