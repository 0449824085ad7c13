//! What can go wrong on a console page, and the page each answer shows.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::shell;
use crate::api::error::Error as ApiError;
use crate::report::Report;
use crate::store;

/// A console request that cannot be answered as asked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// No session (or it ended): sign in.
    #[error("sign in to use the console")]
    SignIn,
    /// The session may not do this (a viewer, or a read-only link).
    #[error("{0}")]
    Forbidden(String),
    /// Nothing with this id that this session may see.
    #[error("no {entity} {id}")]
    NotFound {
        /// What was looked for.
        entity: &'static str,
        /// Its id, as given.
        id: String,
    },
    /// A form field is wrong; nothing changed.
    #[error("`{field}` {reason}")]
    BadInput {
        /// The form field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The form's CSRF token is missing or does not match the session's.
    #[error(
        "this form has expired or did not come from this console; reload the page and try again"
    )]
    Csrf,
    /// Someone else changed the row meanwhile; reload and retry.
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error("the store failed: {0}")]
    Store(String),
}

impl Error {
    /// A form field that is wrong.
    pub(crate) fn bad_input(field: &'static str, reason: impl Into<String>) -> Self {
        Error::BadInput {
            field,
            reason: reason.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Error::SignIn => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) | Error::Csrf => StatusCode::FORBIDDEN,
            Error::NotFound { .. } => StatusCode::NOT_FOUND,
            Error::BadInput { .. } => StatusCode::BAD_REQUEST,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<store::Error> for Error {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::NotFound { entity, id } => Error::NotFound {
                entity,
                id: id.to_string(),
            },
            store::Error::Conflict { .. } => Error::Conflict(e.to_string()),
            other => Error::Store(Report(&other).to_string()),
        }
    }
}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::NotFound { entity, id } => Error::NotFound { entity, id },
            ApiError::Forbidden(why) => Error::Forbidden(why),
            ApiError::Unauthenticated => Error::SignIn,
            other => Error::Forbidden(other.to_string()),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if matches!(self, Error::SignIn) {
            return Redirect::to("/console/login").into_response();
        }
        if let Error::Store(why) = &self {
            tracing::error!(error = %why, "console request failed");
        }
        let status = self.status();
        let title = match status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::BAD_REQUEST => "Check the form",
            StatusCode::CONFLICT => "Changed meanwhile",
            _ => "Something failed",
        };
        let body = html! {
            h1 { (title) }
            p.error role="alert" { (self.to_string()) }
            p { a href="/console" { "Back to the console" } }
        };
        (status, shell::bare(title, body)).into_response()
    }
}
