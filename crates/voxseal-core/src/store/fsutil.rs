//! Crash-safe file writes: a file is either absent or complete, never half-written.
//!
//! Everything that persists state (outbox items, manifests, settings, identity files) goes through
//! [`write_atomic`]: write a temp file in the same directory, fsync it, rename it over the target,
//! fsync the directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Fsyncs a directory so that a rename or unlink inside it survives a crash.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A random, hidden name for a temp file next to `path`.
pub fn temp_sibling(path: &Path) -> PathBuf {
    let mut rnd = [0u8; 8];
    getrandom::getrandom(&mut rnd).expect("the OS random number generator failed");
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    parent_dir(path).join(format!(".{name}.{}.tmp", hex::encode(rnd)))
}

/// Whether `name` is one [`temp_sibling`] makes (".NAME.HEX.tmp").
pub fn is_temp_sibling(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with('.') && name.ends_with(".tmp")
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename, fsync directory).
///
/// `private` creates the file with mode 0600 on Unix (for secrets such as identity files).
pub fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> io::Result<()> {
    let tmp = temp_sibling(path);
    let result = (|| {
        let mut f = create_new(&tmp, private)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        fsync_dir(parent_dir(path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Like [`write_atomic`] but never replaces an existing file: the complete temp file is
/// hard-linked into place, which fails if `path` exists (no window where another file could be
/// overwritten).
pub fn write_new_atomic(path: &Path, bytes: &[u8], private: bool) -> io::Result<()> {
    let tmp = temp_sibling(path);
    let result = (|| {
        let mut f = create_new(&tmp, private)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::hard_link(&tmp, path)?;
        fsync_dir(parent_dir(path))
    })();
    let _ = fs::remove_file(&tmp);
    result
}

/// Creates a new file, failing if it exists; `private` means mode 0600 on Unix.
pub fn create_new(path: &Path, private: bool) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    opts.open(path)
}

/// Whether `path` still names the file `file` was opened from: false when it was removed, or
/// replaced by another file, since. A lock taken on `file` protects that file only, so whoever
/// locks a file found by name checks this before acting on the name.
pub fn still_names(path: &Path, file: &File) -> io::Result<bool> {
    // Device and inode on Unix; volume serial and file index on Windows, which lets an open file
    // be renamed and deleted too (std opens with FILE_SHARE_DELETE).
    #[cfg(unix)]
    let same = fs::symlink_metadata(path).and_then(|now| {
        use std::os::unix::fs::MetadataExt;
        let locked = file.metadata()?;
        Ok(now.dev() == locked.dev() && now.ino() == locked.ino())
    });
    #[cfg(windows)]
    let same = same_file::Handle::from_path(path)
        .and_then(|named| Ok(named == same_file::Handle::from_file(file.try_clone()?)?));
    match same {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        other => other,
    }
}

/// Creates a directory (and its parents) readable only by the owner on Unix. An existing
/// directory that others can read, write or enter is tightened to 0700 (a data directory made
/// by hand or by an older version with the default umask).
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)?;
        let mode = fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o700))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        fs::create_dir_all(path)
    }
}

/// Serializes `value` as pretty JSON and writes it atomically, readable by the owner only
/// (manifests, item states and progress live in the private data directory).
pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    bytes.push(b'\n');
    write_atomic(path, &bytes, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn still_names_follows_the_file_not_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a");
        fs::write(&p, b"one").unwrap();
        let f = File::open(&p).unwrap();
        assert!(still_names(&p, &f).unwrap());
        // Replaced by another file under the same name. Windows before 10 1809, non-NTFS
        // volumes and Wine refuse to replace an open file: nothing to check there.
        let q = dir.path().join("b");
        fs::write(&q, b"two").unwrap();
        match fs::rename(&q, &p) {
            Ok(()) => assert!(!still_names(&p, &f).unwrap()),
            Err(e) if cfg!(windows) && e.kind() == io::ErrorKind::PermissionDenied => {}
            Err(e) => panic!("rename: {e}"),
        }
        // Gone (where a delete waits for the last handle, after that).
        fs::remove_file(&p).unwrap();
        if cfg!(windows) && p.exists() {
            drop(f);
            assert!(!p.exists(), "gone once the last handle closed");
        } else {
            assert!(!still_names(&p, &f).unwrap());
        }
    }

    #[test]
    fn temp_siblings_are_recognised() {
        let t = temp_sibling(Path::new("/d/take.spool"));
        assert!(is_temp_sibling(t.file_name().unwrap()));
        assert!(!is_temp_sibling(std::ffi::OsStr::new("take.spool")));
        assert!(!is_temp_sibling(std::ffi::OsStr::new(".creation-gate")));
    }

    #[test]
    fn atomic_write_replaces_whole_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        write_atomic(&p, b"one", false).unwrap();
        write_atomic(&p, b"two two", false).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two two");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "temp files are renamed away");
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key.txt");
        write_atomic(&p, b"secret", true).unwrap();
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn an_existing_open_directory_is_tightened_to_0700() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("data");
        fs::create_dir(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&p).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o700
        );
        // A new one (and its new parents) is 0700 from the start.
        let q = dir.path().join("a/b");
        create_private_dir(&q).unwrap();
        assert_eq!(
            fs::metadata(&q).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }

    #[cfg(unix)]
    #[test]
    fn json_state_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("manifest.json");
        write_json_atomic(&p, &serde_json::json!({"contractor": "alice-01"})).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn write_new_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        write_new_atomic(&p, b"first", true).unwrap();
        let e = write_new_atomic(&p, b"second", true).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&p).unwrap(), b"first");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn failed_write_leaves_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("missing-dir").join("x");
        assert!(write_atomic(&p, b"x", false).is_err());
        assert!(!p.exists());
    }
}
