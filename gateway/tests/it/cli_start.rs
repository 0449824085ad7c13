//! `changewire serve` as a process: what it says when it cannot start (each
//! cause once, then what was tried and which setting to check), and what it
//! says about secrets stored in clear.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// The binary with a clean environment: no `CHANGEWIRE_*` or `PG*` from the
/// caller, no home directory (so no plugin cache is created).
fn changewire() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_changewire"));
    cmd.env_clear();
    cmd
}

/// A port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn run(cmd: &mut Command) -> (i32, String) {
    let Output { status, stderr, .. } = cmd.output().unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

#[test]
fn a_store_that_does_not_answer_is_reported_once_with_the_setting_to_check() {
    let port = closed_port();
    let (code, stderr) = run(changewire().args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--store",
        &format!("postgres://app:hunter2@127.0.0.1:{port}/x"),
    ]));
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.matches("Connection refused").count(), 1, "{stderr}");
    assert_eq!(stderr.matches("database error").count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "tried the store at postgres://app:***@127.0.0.1:{port}/x (host 127.0.0.1, port {port}): \
             check --store / CHANGEWIRE_STORE"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    // The advice comes last.
    assert!(
        stderr
            .trim_end()
            .ends_with("check --store / CHANGEWIRE_STORE"),
        "{stderr}"
    );
}

#[test]
fn a_capture_file_in_a_missing_folder_is_reported_once_with_the_setting_to_check() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let (code, stderr) = run(changewire().args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--store",
        &format!("sqlite://{}/store.db", dir.path().display()),
        "--capture",
        &format!("sqlite://{}/app.db", missing.display()),
        "--resource",
        "RUNS=runs",
    ]));
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        stderr.matches("unable to open database file").count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "tried the capture database file {}/app.db (its folder {} does not exist): \
             check --capture / CHANGEWIRE_CAPTURE",
            missing.display(),
            missing.display()
        )),
        "{stderr}"
    );
}

#[test]
fn serve_refuses_to_start_without_a_secret_key_when_one_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.db");
    let (code, stderr) = run(changewire()
        .args(["serve", "--listen", "127.0.0.1:0", "--store"])
        .arg(format!("sqlite://{}", store.display()))
        .env("CHANGEWIRE_REQUIRE_SECRET_KEY", "true"));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("a secret key is required"), "{stderr}");
    assert!(stderr.contains("CHANGEWIRE_REQUIRE_SECRET_KEY"), "{stderr}");
    assert!(stderr.contains("set CHANGEWIRE_SECRET_KEY"), "{stderr}");
    // Refused before anything was opened.
    assert!(!store.exists());
}

#[test]
fn serve_without_a_secret_key_warns_what_is_stored_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = changewire()
        .args(["serve", "--listen", "127.0.0.1:0", "--store"])
        .arg(format!("sqlite://{}/store.db", dir.path().display()))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines, seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            if lines.send(line.unwrap_or_default()).is_err() {
                return;
            }
        }
    });
    let mut warning = None;
    let mut log = String::new();
    // Until the gateway listens; the timeout only keeps a broken build from hanging.
    while let Ok(line) = seen.recv_timeout(Duration::from_secs(60)) {
        log.push_str(&line);
        log.push('\n');
        if line.contains("CHANGEWIRE_SECRET_KEY is not set") {
            warning = Some(line.clone());
        }
        if line.contains("changewire is listening") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let warning = warning.unwrap_or_else(|| panic!("no warning in:\n{log}"));
    for needle in [
        "receivers' shared secrets",
        "Basic-auth passwords",
        "custom header values",
        "openssl rand -hex 32",
        "--require-secret-key",
    ] {
        assert!(warning.contains(needle), "{needle} not in {warning}");
    }
}

#[test]
fn version_names_the_git_commit_it_was_built_from() {
    let out = changewire().arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    assert!(out.status.success(), "{text}");
    assert_eq!(
        text.trim(),
        format!("changewire {} (commit {head})", env!("CARGO_PKG_VERSION"))
    );
}
