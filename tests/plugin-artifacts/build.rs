//! Build every plugin crate in `plugins/` for `wasm32-wasip2`, assemble the
//! `.wat` fixtures, and generate `artifacts.rs`: one `pub const` path per
//! plugin plus the `foreach_plugin!` macro.

use std::collections::BTreeMap;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const TARGET: &str = "wasm32-wasip2";

type BuildResult<T> = Result<T, Box<dyn std::error::Error>>;

fn main() {
    if let Err(e) = run() {
        // A build script reports failure by exiting non-zero; say why first.
        eprintln!("error: building plugin artifacts: {e}");
        std::process::exit(1);
    }
}

fn run() -> BuildResult<()> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let plugins = manifest_dir.join("../../plugins").canonicalize()?;
    for watched in [
        "Cargo.toml",
        "Cargo.lock",
        "wit",
        "sdk",
        "examples",
        "hostile",
    ] {
        println!("cargo:rerun-if-changed={}", plugins.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    ensure_target()?;
    let target_dir = match env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir.join("plugin-artifacts"),
        _ => out_dir.join("target"),
    };

    // name (snake case) -> path
    let mut artifacts = BTreeMap::new();
    for (manifest, wasm) in build_crates(&plugins, &target_dir)? {
        let dir = manifest.parent().ok_or("manifest without a directory")?;
        let group = dir
            .parent()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str());
        let crate_dir = dir
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or("odd crate directory")?;
        let name = match group {
            Some("examples") => snake(crate_dir),
            Some("hostile") => format!("hostile_{}", snake(crate_dir)),
            _ => continue, // the SDK
        };
        artifacts.insert(name, wasm);
    }
    let wat_dir = plugins.join("hostile/wat");
    for entry in fs::read_dir(&wat_dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wat") {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .ok_or("odd .wat file name")?;
            let wasm = wat::parse_file(&path)?;
            let out = out_dir.join(format!("{stem}.wasm"));
            // Rewriting identical bytes would make cargo see a change and
            // rerun this script on every build.
            if fs::read(&out).ok().as_deref() != Some(wasm.as_slice()) {
                fs::write(&out, wasm)?;
            }
            artifacts.insert(format!("hostile_{}", snake(stem)), out);
        }
    }
    if artifacts.is_empty() {
        return Err("no plugins found".into());
    }

    // Rebuild if an artifact disappears (its target directory was cleaned).
    for path in artifacts.values() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let mut code = String::new();
    for (name, path) in &artifacts {
        let path = path.to_str().ok_or("non-UTF-8 artifact path")?;
        writeln!(code, "/// `{path}`")?;
        writeln!(
            code,
            "pub const {}: &str = {path:?};",
            name.to_ascii_uppercase()
        )?;
    }
    writeln!(code, "/// Every plugin: `(snake_case_name, path)`.")?;
    writeln!(code, "pub const ALL: &[(&str, &str)] = &[")?;
    for name in artifacts.keys() {
        writeln!(code, "    ({name:?}, {}),", name.to_ascii_uppercase())?;
    }
    writeln!(code, "];")?;
    writeln!(
        code,
        "/// Invoke `$mac!(name)` for every plugin (see the crate docs)."
    )?;
    writeln!(code, "#[macro_export]")?;
    writeln!(code, "macro_rules! foreach_plugin {{")?;
    writeln!(code, "    ($mac:ident) => {{")?;
    for name in artifacts.keys() {
        writeln!(code, "        $mac!({name});")?;
    }
    writeln!(code, "    }};")?;
    writeln!(code, "}}")?;
    fs::write(out_dir.join("artifacts.rs"), code)?;
    Ok(())
}

/// Install the wasm target if this toolchain lacks it.
fn ensure_target() -> BuildResult<()> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()?;
    let libdir = String::from_utf8(libdir.stdout)?;
    if Path::new(libdir.trim()).is_dir() {
        return Ok(());
    }
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .map_err(|e| {
            format!(
                "the {TARGET} target is missing and `rustup target add {TARGET}` failed to run: {e}"
            )
        })?;
    if !status.success() {
        return Err(format!("`rustup target add {TARGET}` failed ({status})").into());
    }
    Ok(())
}

/// `cargo build` the plugin workspace; return (manifest, .wasm) per cdylib.
fn build_crates(plugins: &Path, target_dir: &Path) -> BuildResult<Vec<(PathBuf, PathBuf)>> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(plugins.join("Cargo.toml"))
        .args(["--workspace", "--release", "--locked", "--target", TARGET])
        .arg("--message-format=json-render-diagnostics")
        .env("CARGO_TARGET_DIR", target_dir)
        // Flags and wrappers meant for the outer (host) build must not leak
        // into the wasm build; clippy's wrapper in particular.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_BUILD_TARGET")
        .stdout(Stdio::piped());
    let mut child = cmd.spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut artifacts = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let msg: serde_json::Value = serde_json::from_str(&line?)?;
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let is_cdylib = msg["target"]["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "cdylib"));
        let manifest = msg["manifest_path"].as_str();
        let wasm = msg["filenames"].as_array().and_then(|f| {
            f.iter()
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with(".wasm"))
        });
        if let (true, Some(manifest), Some(wasm)) = (is_cdylib, manifest, wasm) {
            artifacts.push((PathBuf::from(manifest), PathBuf::from(wasm)));
        }
    }
    let status = child.wait()?;
    if !status.success() {
        return Err(format!(
            "`cargo build` of {} failed ({status}); if plugins/Cargo.lock is out of date \
             (a plugin was added), run plugins/build.sh once",
            plugins.display()
        )
        .into());
    }
    Ok(artifacts)
}

/// `loop-forever` -> `loop_forever`.
fn snake(name: &str) -> String {
    name.replace('-', "_")
}
