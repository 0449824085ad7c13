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
//!
//! A cached artifact is loaded as native code, so only this user may be
//! able to put one there (Unix): the directory must be owned by the
//! effective user and not writable by group or others, checked at open and
//! before every load; otherwise the host runs without the disk cache. Each
//! artifact is opened without following symbolic links and must itself be a
//! regular file owned by this user and writable by no one else. Temporary
//! files are created exclusively (`O_CREAT|O_EXCL|O_NOFOLLOW`), mode 0600.

use std::fs;
use std::hash::Hasher;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::host::hex;

const MAGIC: &[u8] = b"changewire-plugin-cache 1\n";
const EXTENSION: &str = "cwasm";

/// A directory of compiled plugins for one engine configuration.
#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
    fingerprint: String,
}

impl DiskCache {
    /// Open (creating, mode 0700) `dir` and delete artifacts of other
    /// engines. `None`, with a warning, when the directory cannot be created
    /// or is not private to this user: the host then compiles every plugin.
    pub(crate) fn open(dir: &Path, engine: &Engine) -> Option<Self> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        let opened = builder.create(dir).and_then(|()| fs::canonicalize(dir));
        let dir = match opened {
            Ok(dir) => dir,
            Err(e) => {
                tracing::warn!(
                    dir = %dir.display(),
                    error = %e,
                    "cannot open the plugin cache directory; plugins are compiled at every start"
                );
                return None;
            }
        };
        if let Err(unsafe_dir) = private::check_dir(&dir) {
            tracing::warn!(
                dir = %dir.display(),
                "the plugin cache directory is not private ({unsafe_dir}); compiled plugins are \
                 native code, so it is not used and plugins are compiled at every start. Fix: \
                 make it yours and writable only by you (`chown \"$(id -u)\" DIR && chmod 700 \
                 DIR`), or set [plugins] cache_dir to another directory"
            );
            return None;
        }
        let cache = DiskCache {
            dir,
            fingerprint: fingerprint(engine),
        };
        cache.prune();
        Some(cache)
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir
            .join(format!("{sha256}-{}.{EXTENSION}", self.fingerprint))
    }

    /// The directory is still private (it may have been changed since open).
    fn still_private(&self) -> bool {
        match private::check_dir(&self.dir) {
            Ok(()) => true,
            Err(unsafe_dir) => {
                tracing::warn!(
                    dir = %self.dir.display(),
                    "the plugin cache directory is no longer private ({unsafe_dir}); not using it"
                );
                false
            }
        }
    }

    /// The compiled plugin, if a valid artifact is cached. A corrupt or
    /// incompatible file is deleted and reported as a miss, and so is one
    /// that is a symbolic link, not a regular file, or not private.
    pub(crate) fn load(&self, engine: &Engine, sha256: &str) -> Option<Component> {
        if !self.still_private() {
            return None;
        }
        let path = self.path(sha256);
        let bytes = match private::read_artifact(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "not loading cached plugin");
                if private::is_planted(&path) {
                    let _ = fs::remove_file(&path);
                }
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
        if !self.still_private() {
            return;
        }
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
        // A name no one else can predict: the temporary is created
        // exclusively, so a leftover of the same name would only fail it.
        let tmp = self.dir.join(format!(
            ".tmp-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let write = || -> std::io::Result<()> {
            let mut file = private::create_new(&tmp)?;
            file.write_all(MAGIC)?;
            file.write_all(&Sha256::digest(artifact))?;
            file.write_all(artifact)?;
            file.sync_all()?;
            // Replaces whatever has the real name (a symbolic link itself,
            // never its target).
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

/// Who may write where: the checks that keep other users' bytes from being
/// loaded as native code.
#[cfg(unix)]
mod private {
    use std::fs;
    use std::io::Read as _;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    use std::path::Path;

    /// `O_NOFOLLOW` for `OpenOptionsExt::custom_flags`.
    fn no_follow() -> i32 {
        // The flag is a small positive constant on every Unix.
        i32::try_from(rustix::fs::OFlags::NOFOLLOW.bits()).unwrap_or(0)
    }

    /// Whether `meta` belongs to this process's effective user and no one
    /// else may write it; `Err` describes what is wrong.
    fn check_private(meta: &fs::Metadata) -> Result<(), String> {
        let me = rustix::process::geteuid().as_raw();
        let (owner, mode) = (meta.uid(), meta.mode() & 0o7777);
        if owner != me {
            return Err(format!(
                "owner uid {owner}, mode {mode:04o}; this process runs as uid {me}"
            ));
        }
        if mode & 0o022 != 0 {
            return Err(format!(
                "owner uid {owner}, mode {mode:04o}: writable by group or others"
            ));
        }
        Ok(())
    }

    /// The cache directory itself (not a symbolic link to one) is private.
    pub(super) fn check_dir(dir: &Path) -> Result<(), String> {
        let meta = fs::symlink_metadata(dir).map_err(|e| e.to_string())?;
        if !meta.is_dir() {
            return Err("not a directory".to_owned());
        }
        check_private(&meta)
    }

    /// The artifact's bytes, read without following a symbolic link, from a
    /// private regular file.
    pub(super) fn read_artifact(path: &Path) -> std::io::Result<Vec<u8>> {
        let mut file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(no_follow())
            .open(path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(std::io::Error::other("not a regular file"));
        }
        check_private(&meta).map_err(std::io::Error::other)?;
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        file.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// Something the cache never writes sits under an artifact's name.
    pub(super) fn is_planted(path: &Path) -> bool {
        fs::symlink_metadata(path).is_ok_and(|m| !m.is_file() || check_private(&m).is_err())
    }

    /// A new file, mode 0600; fails if anything (a symbolic link included)
    /// already has the name.
    pub(super) fn create_new(path: &Path) -> std::io::Result<fs::File> {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(no_follow())
            .open(path)
    }
}

/// Elsewhere the directory is trusted as created.
#[cfg(not(unix))]
mod private {
    use std::fs;
    use std::path::Path;

    pub(super) fn check_dir(_dir: &Path) -> Result<(), String> {
        Ok(())
    }

    pub(super) fn read_artifact(path: &Path) -> std::io::Result<Vec<u8>> {
        fs::read(path)
    }

    pub(super) fn is_planted(_path: &Path) -> bool {
        false
    }

    pub(super) fn create_new(path: &Path) -> std::io::Result<fs::File> {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
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
/// This is the only `unsafe` in this crate, and the gateway has none.
#[allow(unsafe_code)] // Component::deserialize is unsafe; see SAFETY below.
fn deserialize_trusted(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `Component::deserialize` requires bytes produced by
    // `Component::serialize` of a compatible wasmtime; it loads them as
    // native code. These bytes are read from the gateway's own cache
    // directory (created 0700, written only by `DiskCache::store` with
    // `serialize` output), under a name that includes the engine's
    // compatibility fingerprint, and their SHA-256 matches the one stored
    // beside them, so they are exactly what `serialize` wrote. On Unix the
    // directory was checked, just before the read, to be owned by this
    // process's effective user and writable by no one else, and the file
    // (opened with O_NOFOLLOW) to be a regular file with the same owner and
    // no group/other write bit, so only this user (or root) can have put
    // the bytes there, and that user can already replace the gateway
    // binary. wasmtime additionally checks its own header, version and
    // configuration and returns an error on mismatch.
    unsafe { Component::deserialize(engine, artifact) }
}
