//! README's first command: `changewire quickstart` shows real signed
//! deliveries on the embedded default, verified under both schemes.

use changewire_e2e::command;

#[test]
fn quickstart_delivers_four_verified_events() {
    let dir = tempfile::tempdir().unwrap();
    // Run as a newcomer would: no `CHANGEWIRE_*` settings from this test run.
    let out = command()
        .arg("quickstart")
        .arg("--dir")
        .arg(dir.path())
        .output()
        .expect("run changewire quickstart");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "quickstart failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // Four deliveries, each with an ION and a Standard Webhooks signature
    // checked by the demo receiver.
    assert_eq!(stdout.matches("[verified]").count(), 8, "{stdout}");
    assert!(!stdout.contains("NOT VERIFIED"), "{stdout}");
    for action in ["create", "update", "delete"] {
        assert!(
            stdout.contains(&format!(" runs {action} row 1")),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains("4 changes committed, 4 signed deliveries received and verified."),
        "{stdout}"
    );
    // It ends with a single-use console link (and, not in a terminal, stops).
    assert!(
        stdout.contains("/console/link/cwl_"),
        "a console link: {stdout}"
    );
    // The audit trail agrees, and `--dir` kept the demo's files.
    assert_eq!(
        stdout.matches("→ \"succeeded\" (HTTP 200").count(),
        4,
        "{stdout}"
    );
    let kept: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(kept.iter().any(|f| f.ends_with(".db")), "kept: {kept:?}");
}
