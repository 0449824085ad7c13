//! The SQLite store file is private to the gateway's user: it holds the
//! receivers' shared secrets (in clear without `CHANGEWIRE_SECRET_KEY`),
//! Basic-auth passwords and custom header values.
//!
//! sqlx's `create_if_missing` creates the file with the process umask
//! (usually 0644: readable by every local user), so the file is created here
//! first, mode 0600. SQLite gives the `-wal` and `-shm` files it creates
//! later the mode (and, as root, the owner) of the database file. An
//! existing file readable or writable by others is tightened to 0600 when
//! the gateway's user owns it; otherwise a warning says how to fix it.

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::SqliteConnectOptions;

/// The files SQLite keeps beside the database.
#[cfg(unix)]
const SIDECARS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Makes the store file at the SQLite URL `url` private (mode 0600),
/// creating it if missing. Failures are left to sqlx's own open, which
/// reports them with the path.
pub(super) fn make_private(url: &str) {
    let Ok(options) = SqliteConnectOptions::from_str(url) else {
        return;
    };
    let path = options.get_filename();
    let in_memory = url.contains(":memory:")
        || url.contains("mode=memory")
        || path.to_string_lossy().starts_with("file:sqlx-in-memory");
    if in_memory || path.as_os_str().is_empty() {
        return;
    }
    #[cfg(unix)]
    private_unix(path);
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(unix)]
fn private_unix(path: &Path) {
    use std::os::unix::fs::OpenOptionsExt;

    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        // SQLite takes an empty file for a new database.
        Ok(_) => {
            tracing::debug!(path = %path.display(), "created the store file, mode 0600");
            return;
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(_) => return,
    }
    tighten(path);
    for suffix in SIDECARS {
        let mut sidecar = path.as_os_str().to_owned();
        sidecar.push(suffix);
        let sidecar = Path::new(&sidecar);
        if sidecar.exists() {
            tighten(sidecar);
        }
    }
}

/// Sets an existing file that others may read or write to 0600, if this
/// process's user owns it; warns otherwise.
#[cfg(unix)]
fn tighten(path: &Path) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 == 0 {
        return;
    }
    let owner = meta.uid();
    let me = rustix::process::geteuid().as_raw();
    let fix = format!("chmod 600 {}", path.display());
    if owner != me {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{mode:04o}"),
            owner,
            "the store file is accessible to other users and owned by another user, so it was \
             left as it is; it holds receiver secrets: make it private (`{fix}`)"
        );
        return;
    }
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
        Ok(()) => tracing::warn!(
            path = %path.display(),
            was = format_args!("{mode:04o}"),
            "the store file was accessible to other users; changed its mode to 0600"
        ),
        Err(err) => tracing::warn!(
            path = %path.display(),
            mode = format_args!("{mode:04o}"),
            error = %err,
            "the store file is accessible to other users and its mode could not be changed; \
             it holds receiver secrets: make it private (`{fix}`)"
        ),
    }
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use crate::config::StoreUrl;
    use crate::store::Store;

    fn mode(path: &std::path::Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn a_new_sqlite_store_and_its_wal_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("store.db");
        let url = StoreUrl::Sqlite(format!("sqlite://{}", file.display()));
        let store = Store::connect(&url).await.unwrap();
        // Migrations wrote through the WAL: both side files exist now.
        for path in [
            file.clone(),
            dir.path().join("store.db-wal"),
            dir.path().join("store.db-shm"),
        ] {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
        store.close().await;
    }

    #[tokio::test]
    async fn an_existing_store_readable_by_others_is_made_private() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("store.db");
        std::fs::write(&file, b"").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let url = StoreUrl::Sqlite(format!("sqlite://{}", file.display()));
        let store = Store::connect(&url).await.unwrap();
        assert_eq!(mode(&file), 0o600);
        store.close().await;
    }
}
