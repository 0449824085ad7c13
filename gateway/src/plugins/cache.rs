//! Compiled plugins on disk, so a restart does not recompile every plugin.
//!
//! One file per (plugin, engine): `<sha256 of the .wasm>-<engine fingerprint>.cwasm`,
//! holding a magic line, the SHA-256 of the artifact, and the artifact as
//! `Component::serialize` wrote it. The fingerprint hashes everything that
//! makes compiled code incompatible (wasmtime version, target, compiler
//! flags, engine configuration), so an upgrade or a changed limit misses
//! and recompiles; files of other fingerprints are deleted at startup.
//! Writes go to a temporary file that is synced and renamed into place, so
//! a crash never leaves a torn artifact under a real name, and the checksum
//! catches any other corruption before wasmtime sees the bytes.

use std::fs;
use std::hash::Hasher;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::host::hex;

const MAGIC: &[u8] = b"changewire-plugin-cache 1\n";
const EXTENSION: &str = "cwasm";

/// A directory of compiled plugins for one engine configuration.
#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
    fingerprint: String,
}

impl DiskCache {
    /// Open (creating, mode 0700) `dir` and delete artifacts of other engines.
    pub(crate) fn open(dir: &Path, engine: &Engine) -> std::io::Result<Self> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir)?;
        let cache = DiskCache {
            dir: dir.to_owned(),
            fingerprint: fingerprint(engine),
        };
        cache.prune();
        Ok(cache)
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir
            .join(format!("{sha256}-{}.{EXTENSION}", self.fingerprint))
    }

    /// The compiled plugin, if a valid artifact is cached. A corrupt or
    /// incompatible file is deleted and reported as a miss.
    pub(crate) fn load(&self, engine: &Engine, sha256: &str) -> Option<Component> {
        let path = self.path(sha256);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read cached plugin");
                return None;
            }
        };
        let artifact = bytes
            .strip_prefix(MAGIC)
            .and_then(|rest| rest.split_at_checked(32))
            .filter(|(sum, artifact)| Sha256::digest(artifact).as_slice() == *sum)
            .map(|(_, artifact)| artifact);
        let loaded = match artifact {
            Some(artifact) => deserialize_trusted(engine, artifact).map_err(|e| format!("{e:#}")),
            None => Err("bad header or checksum".to_owned()),
        };
        match loaded {
            Ok(component) => Some(component),
            Err(reason) => {
                tracing::warn!(path = %path.display(), %reason, "discarding cached plugin");
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// Cache a compiled plugin. Failure only costs a recompile later, so it
    /// is logged, not returned.
    pub(crate) fn store(&self, sha256: &str, component: &Component) {
        let path = self.path(sha256);
        let result = component
            .serialize()
            .map_err(|e| std::io::Error::other(format!("{e:#}")))
            .and_then(|artifact| self.write_atomically(&path, &artifact));
        if let Err(e) = result {
            tracing::warn!(path = %path.display(), error = %e, "cannot cache compiled plugin");
        }
    }

    fn write_atomically(&self, path: &Path, artifact: &[u8]) -> std::io::Result<()> {
        let tmp = self.dir.join(format!(
            ".tmp-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let write = || -> std::io::Result<()> {
            let mut file = fs::File::create(&tmp)?;
            file.write_all(MAGIC)?;
            file.write_all(&Sha256::digest(artifact))?;
            file.write_all(artifact)?;
            file.sync_all()?;
            fs::rename(&tmp, path)
        };
        write().inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
    }

    /// Delete artifacts of other engine fingerprints and stray temporaries.
    fn prune(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let suffix = format!("-{}.{EXTENSION}", self.fingerprint);
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let ours = name.ends_with(&format!(".{EXTENSION}")) || name.starts_with(".tmp-");
            if ours && !name.ends_with(&suffix) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// 16 hex digits identifying the engine's compiled-code compatibility.
fn fingerprint(engine: &Engine) -> String {
    /// Feeds `Hash` output into SHA-256 (deterministic across processes,
    /// unlike `DefaultHasher`, which is only stable within one build).
    struct ShaHasher(Sha256);
    impl Hasher for ShaHasher {
        fn finish(&self) -> u64 {
            0 // never used: the digest is read with `finalize`
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut hasher = ShaHasher(Sha256::new());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
    hex(&hasher.0.finalize()[..8])
}

/// Load a compiled component from bytes this cache wrote.
///
/// This is the only `unsafe` in the gateway.
#[allow(unsafe_code)] // Component::deserialize is unsafe; see SAFETY below.
fn deserialize_trusted(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `Component::deserialize` requires bytes produced by
    // `Component::serialize` of a compatible wasmtime; it loads them as
    // native code. These bytes are read from the gateway's own cache
    // directory (created 0700, written only by `DiskCache::store` with
    // `serialize` output), under a name that includes the engine's
    // compatibility fingerprint, and their SHA-256 matches the one stored
    // beside them, so they are exactly what `serialize` wrote. wasmtime
    // additionally checks its own header, version and configuration and
    // returns an error on mismatch. Anyone able to write that directory can
    // already replace the gateway binary.
    unsafe { Component::deserialize(engine, artifact) }
}
