//! What the CLI adds after an error: what was tried and which setting to
//! check. The error chain says why it failed; this says where to look.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;

use crate::config::{Config, StoreUrl, redact_url};
use crate::server::{StartError, StartErrorKind};

/// An error context ("starting changewire") with advice that the printer
/// puts on a line of its own after the error's causes.
#[derive(Debug)]
pub(super) struct Advised {
    /// What was being done; shown as the first link of the chain.
    pub(super) doing: &'static str,
    /// What was tried and which setting to check.
    pub(super) advice: Option<String>,
}

impl fmt::Display for Advised {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.doing)
    }
}

impl Advised {
    /// `err` as the cause of `doing`, with `advice`.
    pub(super) fn wrap<E>(err: E, doing: &'static str, advice: Option<String>) -> anyhow::Error
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        anyhow::Error::new(err).context(Advised { doing, advice })
    }
}

/// The store setting's name, as the user sets it.
pub(super) const STORE_SETTING: &str = "--store / CHANGEWIRE_STORE";
/// The capture setting's name, as the user sets it.
pub(super) const CAPTURE_SETTING: &str = "--capture / CHANGEWIRE_CAPTURE";

/// Advice for a gateway that did not start.
pub(super) fn for_start(err: &StartError, config: &Config) -> Option<String> {
    match err.kind() {
        StartErrorKind::Store(
            crate::store::Error::Database(_) | crate::store::Error::Migrate(_),
        ) => Some(database("the store", &config.store, STORE_SETTING)),
        StartErrorKind::Capture(err) => for_capture(err, config),
        StartErrorKind::Listen { addr, .. } => Some(format!(
            "tried to listen on {addr}: check --listen / CHANGEWIRE_LISTEN"
        )),
        _ => None,
    }
}

/// Advice for capture that could not be set up or removed.
pub(super) fn for_capture(err: &crate::capture::Error, config: &Config) -> Option<String> {
    match err {
        crate::capture::Error::Database(_) => config
            .capture
            .as_ref()
            .map(|url| database("the capture database", url, CAPTURE_SETTING)),
        _ => None,
    }
}

/// "tried <what> at <where>: check <setting>", with the password redacted,
/// and the host and port (PostgreSQL) or the file and whether its folder
/// exists (SQLite).
pub(super) fn database(what: &str, url: &StoreUrl, setting: &str) -> String {
    let tried = match url {
        StoreUrl::Postgres(raw) => match PgConnectOptions::from_str(raw) {
            Ok(options) => match options.get_socket() {
                Some(socket) => format!(
                    "{what} at {} (socket {}, port {})",
                    redact_url(raw),
                    socket.display(),
                    options.get_port()
                ),
                None => format!(
                    "{what} at {} (host {}, port {})",
                    redact_url(raw),
                    options.get_host(),
                    options.get_port()
                ),
            },
            Err(_) => format!("{what} at {}", redact_url(raw)),
        },
        StoreUrl::Sqlite(raw) => match SqliteConnectOptions::from_str(raw) {
            Ok(options) => sqlite_file(what, options.get_filename()),
            Err(_) => format!("{what} at {}", redact_url(raw)),
        },
    };
    format!("tried {tried}: check {setting}")
}

/// The file, and whether the folder it would be created in exists.
fn sqlite_file(what: &str, file: &Path) -> String {
    let folder = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let state = if folder.is_dir() {
        "exists"
    } else {
        "does not exist"
    };
    format!(
        "{what} file {} (its folder {} {state})",
        file.display(),
        folder.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_advice_names_host_and_port_without_the_password() {
        let url = StoreUrl::Postgres("postgres://app:hunter2@127.0.0.1:1/x".into());
        let advice = database("the store", &url, STORE_SETTING);
        assert_eq!(
            advice,
            "tried the store at postgres://app:***@127.0.0.1:1/x (host 127.0.0.1, port 1): \
             check --store / CHANGEWIRE_STORE"
        );
    }

    #[test]
    fn sqlite_advice_says_whether_the_folder_exists() {
        let url = StoreUrl::Sqlite("sqlite:///nonexistent/dir/app.db".into());
        assert_eq!(
            database("the capture database", &url, CAPTURE_SETTING),
            "tried the capture database file /nonexistent/dir/app.db \
             (its folder /nonexistent/dir does not exist): check --capture / CHANGEWIRE_CAPTURE"
        );
        let dir = tempfile::tempdir().unwrap();
        let url = StoreUrl::Sqlite(format!("sqlite://{}/s.db", dir.path().display()));
        assert!(
            database("the store", &url, STORE_SETTING)
                .contains(&format!("(its folder {} exists)", dir.path().display()))
        );
    }
}
