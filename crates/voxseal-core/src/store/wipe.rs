//! Best-effort secure deletion of files.
//!
//! [`wipe_file`] overwrites the file's bytes in place, fsyncs, truncates it to zero, fsyncs,
//! renames it to a random name (so the directory entry no longer says what it was), unlinks it
//! and fsyncs the directory.
//!
//! What this does and does not guarantee: on a plain in-place filesystem (ext4 without journalled
//! data, XFS) on a spinning disk the old blocks are overwritten. On SSDs the flash translation
//! layer writes the new bytes to fresh pages and leaves the old ones until garbage collection; on
//! copy-on-write or snapshotting filesystems (btrfs, ZFS, APFS) the overwrite lands in new blocks;
//! journals, swap and backups may hold copies. So the overwrite is defence in depth only. What
//! makes Voxseal's erase real is cryptographic erase (NIST SP 800-88): plaintext audio only ever
//! reaches disk inside the [spool](crate::capture::spool), encrypted under a key that lives only in memory
//! and is zeroized when the take is sealed or discarded.

use std::fs::{self, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;

use crate::store::fsutil;

/// What a wipe did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WipeReport {
    /// Bytes overwritten before the file was truncated and unlinked.
    pub bytes_overwritten: u64,
}

/// Why a wipe failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WipeError {
    /// The path is a symlink, directory or device, which `wipe_file` refuses to touch.
    #[error("{path} is not a regular file; refusing to wipe it")]
    NotARegularFile {
        /// The path given.
        path: String,
    },
    /// An I/O step failed; the file may be partly overwritten but is not reported as wiped.
    #[error("could not wipe {path}: {source}")]
    Io {
        /// The path given.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
}

const BLOCK: usize = 1 << 20;

/// Overwrites `path` with zeros, truncates, renames to a random name, unlinks, and fsyncs the
/// directory. See the module docs for what this can and cannot guarantee.
pub fn wipe_file(path: &Path) -> Result<WipeReport, WipeError> {
    let io = regular_file(path)?;
    let bytes_overwritten = overwrite(path).map_err(&io)?;
    unlink_durably(path).map_err(io)?;
    Ok(WipeReport { bytes_overwritten })
}

/// Deletes `path` without overwriting it: renames it to a random name, unlinks it and fsyncs the
/// directory, so the deletion survives a power cut and the directory no longer names it. For
/// ciphertext the laptop cannot decrypt (an uploaded payload), where an overwrite protects
/// nothing and costs a full write of the file.
pub fn delete_file(path: &Path) -> Result<(), WipeError> {
    let io = regular_file(path)?;
    unlink_durably(path).map_err(io)
}

/// Checks that `path` is a regular file (not a link or a directory); returns the mapping of I/O
/// errors on it.
fn regular_file(path: &Path) -> Result<impl Fn(io::Error) -> WipeError + '_, WipeError> {
    let shown = || path.display().to_string();
    let meta = fs::symlink_metadata(path).map_err(|source| WipeError::Io {
        path: shown(),
        source,
    })?;
    if !meta.file_type().is_file() {
        return Err(WipeError::NotARegularFile { path: shown() });
    }
    Ok(move |source| WipeError::Io {
        path: shown(),
        source,
    })
}

fn unlink_durably(path: &Path) -> io::Result<()> {
    let renamed = fsutil::temp_sibling(path);
    fs::rename(path, &renamed)?;
    fs::remove_file(&renamed)?;
    fsutil::fsync_dir(fsutil::parent_dir(path))
}

/// Overwrites a file's current contents with zeros, fsyncs, truncates it to zero and fsyncs
/// again, leaving the (now empty) file in place. Never follows a symlink and never blocks on a
/// FIFO: a name swapped for either after the caller checked it is refused, not written through.
pub fn overwrite(path: &Path) -> io::Result<u64> {
    let mut f = open_regular_for_write(path)?;
    let len = zero_fill(&mut f)?;
    f.set_len(0)?;
    f.sync_all()?;
    Ok(len)
}

/// Opens `path` for writing without following a final symlink (O_NOFOLLOW) or waiting for a
/// FIFO's reader (O_NONBLOCK), then checks on the open file that it is a regular file.
fn open_regular_for_write(path: &Path) -> io::Result<fs::File> {
    let mut opts = OpenOptions::new();
    opts.write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut opts, libc::O_NOFOLLOW | libc::O_NONBLOCK);
    // Windows: FILE_FLAG_OPEN_REPARSE_POINT opens a symlink or junction itself, which the check
    // below then refuses.
    #[cfg(windows)]
    std::os::windows::fs::OpenOptionsExt::custom_flags(&mut opts, 0x0020_0000);
    let f = opts.open(path)?;
    if !f.metadata()?.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file; refusing to overwrite it",
        ));
    }
    Ok(f)
}

/// Writes zeros over every byte of `f` and fsyncs; returns the length.
fn zero_fill(f: &mut fs::File) -> io::Result<u64> {
    let len = f.metadata()?.len();
    let zeros = vec![0u8; BLOCK];
    f.seek(SeekFrom::Start(0))?;
    let mut left = len;
    while left > 0 {
        let n = left.min(BLOCK as u64) as usize;
        f.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    f.sync_all()?;
    Ok(len)
}

/// Wipes every regular file under `dir` (recursively) with [`wipe_file`], then removes the
/// emptied directories. Symlinks are removed without following them.
pub fn wipe_tree(dir: &Path) -> Result<WipeReport, WipeError> {
    let io = |source| WipeError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut total = 0;
    for entry in fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let ty = entry.file_type().map_err(io)?;
        let p = entry.path();
        if ty.is_dir() {
            total += wipe_tree(&p)?.bytes_overwritten;
        } else if ty.is_file() {
            total += wipe_file(&p)?.bytes_overwritten;
        } else {
            fs::remove_file(&p).map_err(io)?;
        }
    }
    fs::remove_dir(dir).map_err(io)?;
    fsutil::fsync_dir(fsutil::parent_dir(dir)).map_err(io)?;
    Ok(WipeReport {
        bytes_overwritten: total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn wipe_removes_the_file_and_an_open_descriptor_sees_no_original_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("take.raw");
        let secret: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8 + 1).collect();
        fs::write(&p, &secret).unwrap();
        // Another holder of the inode (as a backup tool or a leaked descriptor would be).
        let mut held = fs::File::open(&p).unwrap();
        #[cfg(unix)]
        let link = {
            let l = dir.path().join("hardlink");
            fs::hard_link(&p, &l).unwrap();
            l
        };

        let report = wipe_file(&p).unwrap();
        assert_eq!(report.bytes_overwritten, secret.len() as u64);
        assert!(!p.exists());
        let mut rest = Vec::new();
        held.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "the inode was truncated");
        #[cfg(unix)]
        {
            assert_eq!(fs::metadata(&link).unwrap().len(), 0);
            fs::remove_file(&link).unwrap();
        }
        // Where a delete waits for the last handle (Windows before 10 1809, Wine), the renamed,
        // emptied name lingers until then.
        #[cfg(windows)]
        drop(held);
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "no renamed leftovers: {left:?}");
    }

    #[cfg(unix)]
    #[test]
    fn overwrite_replaces_every_byte_before_truncating() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        fs::write(&p, vec![0xAB; 3 * BLOCK + 17]).unwrap();
        let held = fs::File::open(&p).unwrap();
        // Stop after the overwrite step to look at the bytes the file still has.
        let mut f = OpenOptions::new().write(true).open(&p).unwrap();
        assert_eq!(zero_fill(&mut f).unwrap(), 3 * BLOCK as u64 + 17);
        let mut buf = vec![1u8; 3 * BLOCK + 17];
        held.read_exact_at(&mut buf, 0).unwrap();
        assert!(
            buf.iter().all(|&b| b == 0),
            "no original byte survives the overwrite"
        );
        // And the real function leaves an empty file.
        fs::write(&p, vec![0xCD; 1000]).unwrap();
        assert_eq!(overwrite(&p).unwrap(), 1000);
        assert_eq!(fs::metadata(&p).unwrap().len(), 0);
    }

    #[cfg(unix)]
    #[test]
    fn refuses_symlinks_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"keep me").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(
            wipe_file(&link),
            Err(WipeError::NotARegularFile { .. })
        ));
        assert!(matches!(
            wipe_file(dir.path()),
            Err(WipeError::NotARegularFile { .. })
        ));
        assert!(matches!(
            delete_file(&link),
            Err(WipeError::NotARegularFile { .. })
        ));
        assert_eq!(fs::read(&target).unwrap(), b"keep me");
    }

    /// The check in `wipe_file` and the open in `overwrite` are two steps: a symlink or FIFO
    /// put in place between them must be refused by the open itself.
    #[cfg(unix)]
    #[test]
    fn overwrite_never_follows_a_symlink_or_opens_a_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"keep me").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(overwrite(&link).is_err());
        assert_eq!(fs::read(&target).unwrap(), b"keep me");
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // Without O_NONBLOCK this open would wait forever for a reader.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(overwrite(&fifo).is_err()));
        let refused = rx.recv_timeout(std::time::Duration::from_secs(10));
        assert_eq!(refused, Ok(true), "opening a FIFO must fail at once");
    }

    #[test]
    fn delete_removes_the_name_and_leaves_the_bytes_to_an_open_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("item.age");
        fs::write(&p, b"age ciphertext").unwrap();
        let mut held = fs::File::open(&p).unwrap();
        delete_file(&p).unwrap();
        assert!(!p.exists());
        // Not overwritten: that is the difference from wipe_file.
        let mut seen = Vec::new();
        held.read_to_end(&mut seen).unwrap();
        assert_eq!(seen, b"age ciphertext");
        // Where a delete waits for the last handle (Windows before 10 1809, Wine), the renamed
        // name lingers until then.
        #[cfg(windows)]
        drop(held);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no renamed leftover"
        );
        assert!(matches!(delete_file(&p), Err(WipeError::Io { .. })));
    }

    #[test]
    fn wipe_tree_removes_everything() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("item");
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::write(root.join("a"), b"aaaa").unwrap();
        fs::write(root.join("sub/b"), b"bb").unwrap();
        assert_eq!(wipe_tree(&root).unwrap().bytes_overwritten, 6);
        assert!(!root.exists());
    }
}
