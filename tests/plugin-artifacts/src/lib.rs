//! Paths of every plugin under `plugins/`, built from source for
//! `wasm32-wasip2` (release) by this crate's build script.
//!
//! ```ignore
//! let wasm = std::fs::read(changewire_plugin_artifacts::FILTER_BY_FIELD)?;
//! ```
//!
//! - `plugins/examples/<name>/` → `pub const <NAME>: &str`
//! - `plugins/hostile/<name>/` → `pub const HOSTILE_<NAME>: &str`
//! - `plugins/hostile/wat/<name>.wat` → `pub const HOSTILE_<NAME>: &str` (the
//!   text assembled to a binary; it need not be a component)
//!
//! [`foreach_plugin!`] calls a macro once per plugin with its snake-case name
//! (`filter_by_field`, `hostile_loop_forever`, …). Test suites use it to
//! assert that every plugin has a test of the same name, so adding a plugin
//! without a test fails the build, as wasmtime's `test-programs` do:
//!
//! ```ignore
//! macro_rules! assert_test_exists {
//!     ($name:ident) => {
//!         #[expect(unused_imports, reason = "only checks that the test exists")]
//!         use self::$name as _;
//!     };
//! }
//! changewire_plugin_artifacts::foreach_plugin!(assert_test_exists);
//! ```
//!
//! The plugins build in their own target directory
//! (`$CARGO_TARGET_DIR/plugin-artifacts`, or under this crate's `OUT_DIR`),
//! with `--locked` against `plugins/Cargo.lock`: after adding a plugin crate,
//! run `plugins/build.sh` once to update that lock file.

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
