//! The encrypted spool: where a take's PCM lives between the microphone and sealing.
//!
//! Each take is one file, `<take-id>.spool`, encrypted with ChaCha20-Poly1305 in the STREAM
//! construction (big-endian 32-bit chunk counter plus a last-chunk flag in the nonce) under a
//! random 256-bit key that exists only in this process's memory ([`SpoolKey`], zeroized on drop).
//! Losing the key (sealing, discarding, a crash) makes the file unreadable: cryptographic erase.
//!
//! Layout: a plaintext header (magic, version, sample rate, sample format, nonce prefix, take id),
//! then records `u32 LE ciphertext length || ciphertext`. Each chunk's associated data is the
//! header plus its length field, so nothing in the file can change without failing
//! authentication. The reader demands the final chunk exactly at the end of the file: it rejects
//! truncation, reordered, dropped or duplicated chunks, a missing final chunk and trailing data.
//!
//! A live take's file is held under an exclusive lock; [`sweep`] (run at start-up) wipes every
//! spool file nobody holds, because its key died with the process that wrote it. Only takes that
//! were not yet accepted can be lost this way: accepted takes are already sealed in the outbox.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::generic_array::GenericArray;
use chacha20poly1305::aead::stream::{NewStream, StreamBE32, StreamPrimitive};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use zeroize::Zeroizing;

use crate::dsp::pcm::{PcmRead, PcmReplay};
use crate::hardening::MemLock;
use crate::project::ids::TakeId;
use crate::store::audit::AuditLog;
use crate::store::{fsutil, wipe};

const MAGIC: &[u8; 8] = b"VXSPOOL\x01";
const FORMAT_F32LE_MONO: u16 = 1;
/// Samples per chunk: 64 KiB of plaintext.
pub const CHUNK_SAMPLES: usize = 16 * 1024;
const CHUNK_BYTES: usize = CHUNK_SAMPLES * 4;
const TAG: usize = 16;
/// The file extension of spool files.
pub const EXTENSION: &str = "spool";

/// A take's spool key. Lives only in memory, on a page locked out of swap where the OS allows
/// ([`MemLock`]); zeroized on drop; never printed.
pub struct SpoolKey {
    // Unlocked before the memory is freed (munlock of freed, unmapped memory fails); the bytes
    // are zeroized first, in `drop`.
    _lock: MemLock,
    bytes: Box<Zeroizing<[u8; 32]>>,
}

impl Drop for SpoolKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.bytes[..]);
    }
}

impl SpoolKey {
    fn generate() -> Self {
        let mut bytes = Box::new(Zeroizing::new([0u8; 32]));
        let lock = MemLock::new(&bytes[..]);
        getrandom::getrandom(&mut bytes[..]).expect("the OS random number generator failed");
        Self { bytes, _lock: lock }
    }
    /// An all-zero stand-in left behind when a writer hands its key over.
    fn spent() -> Self {
        Self {
            bytes: Box::new(Zeroizing::new([0u8; 32])),
            _lock: MemLock::new::<u8>(&[]),
        }
    }
    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(&self.bytes[..]))
    }
    /// The spool cipher on the heap, locked like the key (it holds a copy of it).
    fn stream(&self, nonce_prefix: &[u8]) -> (Box<StreamBE32<ChaCha20Poly1305>>, MemLock) {
        let stream = Box::new(StreamBE32::from_aead(
            self.cipher(),
            GenericArray::from_slice(nonce_prefix),
        ));
        let lock = MemLock::new(std::slice::from_ref(&*stream));
        (stream, lock)
    }
}

/// An empty chunk buffer of `capacity` bytes whose pages are locked out of swap where the OS
/// allows (plaintext audio passes through it). It never grows past `capacity`.
fn locked_chunk_buffer(capacity: usize) -> (Zeroizing<Vec<u8>>, MemLock) {
    let mut buf = Zeroizing::new(vec![0u8; capacity]);
    let lock = MemLock::new(&buf[..]);
    buf.clear();
    (buf, lock)
}

impl std::fmt::Debug for SpoolKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpoolKey(..)")
    }
}

/// Why a spool file could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// Reading or writing the file failed (disk full, permissions, ...).
    #[error("spool {path}: {source}")]
    Io {
        /// The spool file.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The file does not start with a Voxseal spool header.
    #[error("{path} is not a Voxseal spool file")]
    NotASpool {
        /// The file.
        path: String,
    },
    /// The file ends before its final chunk: it was cut off (crash, copy error).
    #[error("spool {path} is truncated: {detail}")]
    Truncated {
        /// The file.
        path: String,
        /// Where it ends.
        detail: String,
    },
    /// A chunk failed authentication: wrong key, or chunks altered, reordered, dropped or duplicated.
    #[error(
        "spool {path}: chunk {chunk} failed authentication (wrong key, or the file was altered or its chunks reordered)"
    )]
    Corrupt {
        /// The file.
        path: String,
        /// 0-based chunk index.
        chunk: u32,
    },
    /// Bytes follow the final chunk.
    #[error("spool {path} has {bytes} unexpected bytes after its final chunk")]
    TrailingData {
        /// The file.
        path: String,
        /// How many bytes follow.
        bytes: u64,
    },
}

/// The plaintext header of a spool file.
#[derive(Debug, Clone)]
struct Header {
    sample_rate: u32,
    nonce_prefix: [u8; 7],
    take_id: String,
    bytes: Vec<u8>,
}

impl Header {
    fn new(sample_rate: u32, take_id: &TakeId) -> Self {
        let mut nonce_prefix = [0u8; 7];
        getrandom::getrandom(&mut nonce_prefix).expect("the OS random number generator failed");
        let id = take_id.as_str().as_bytes();
        let mut bytes = Vec::with_capacity(8 + 4 + 2 + 7 + 1 + id.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&sample_rate.to_le_bytes());
        bytes.extend_from_slice(&FORMAT_F32LE_MONO.to_le_bytes());
        bytes.extend_from_slice(&nonce_prefix);
        bytes.push(id.len() as u8);
        bytes.extend_from_slice(id);
        Self {
            sample_rate,
            nonce_prefix,
            take_id: take_id.as_str().to_owned(),
            bytes,
        }
    }

    fn read(r: &mut impl Read) -> Option<Self> {
        let mut fixed = [0u8; 8 + 4 + 2 + 7 + 1];
        r.read_exact(&mut fixed).ok()?;
        if &fixed[..8] != MAGIC {
            return None;
        }
        let sample_rate = u32::from_le_bytes(fixed[8..12].try_into().ok()?);
        let format = u16::from_le_bytes(fixed[12..14].try_into().ok()?);
        if format != FORMAT_F32LE_MONO || sample_rate == 0 {
            return None;
        }
        let nonce_prefix: [u8; 7] = fixed[14..21].try_into().ok()?;
        let mut id = vec![0u8; fixed[21] as usize];
        r.read_exact(&mut id).ok()?;
        let take_id = String::from_utf8(id).ok()?.parse::<TakeId>().ok()?;
        let mut bytes = fixed.to_vec();
        bytes.extend_from_slice(take_id.as_str().as_bytes());
        Some(Self {
            sample_rate,
            nonce_prefix,
            take_id: take_id.as_str().to_owned(),
            bytes,
        })
    }

    fn aad(&self, ct_len: u32) -> Vec<u8> {
        let mut aad = self.bytes.clone();
        aad.extend_from_slice(&ct_len.to_le_bytes());
        aad
    }
}

/// Writes one take's PCM into an encrypted spool file, chunk by chunk.
pub struct SpoolWriter {
    // First: unlocked before the buffers are freed (zeroized first, in `drop`).
    _locks: [MemLock; 2],
    path: PathBuf,
    file: BufWriter<File>,
    lock: Option<File>,
    header: Header,
    key: SpoolKey,
    stream: Box<StreamBE32<ChaCha20Poly1305>>,
    chunk: u32,
    buf: Zeroizing<Vec<u8>>,
    samples: u64,
}

impl SpoolWriter {
    /// Creates `<dir>/<take-id>.spool` with a fresh key, locked against [`sweep`].
    pub fn create(dir: &Path, take_id: &TakeId, sample_rate: u32) -> Result<Self, SpoolError> {
        let path = dir.join(format!("{take_id}.{EXTENSION}"));
        let io = |source| SpoolError::Io {
            path: path.display().to_string(),
            source,
        };
        fsutil::create_private_dir(dir).map_err(io)?;
        let gate = CreationGate::shared(dir).map_err(io)?;
        let file = fsutil::create_new(&path, true).map_err(io)?;
        let lock = file.try_clone().map_err(io)?;
        lock.try_lock()
            .map_err(|e| io(io::Error::other(e.to_string())))?;
        drop(gate);
        let header = Header::new(sample_rate, take_id);
        let key = SpoolKey::generate();
        let (stream, stream_lock) = key.stream(&header.nonce_prefix);
        let (buf, buf_lock) = locked_chunk_buffer(CHUNK_BYTES + TAG);
        let mut file = BufWriter::with_capacity(CHUNK_BYTES + TAG + 4, file);
        file.write_all(&header.bytes).map_err(io)?;
        Ok(Self {
            path,
            file,
            lock: Some(lock),
            header,
            key,
            stream,
            chunk: 0,
            buf,
            samples: 0,
            _locks: [stream_lock, buf_lock],
        })
    }

    /// Appends samples; full chunks are encrypted and written as they fill.
    pub fn write(&mut self, samples: &[f32]) -> Result<(), SpoolError> {
        for &s in samples {
            self.buf.extend_from_slice(&s.to_le_bytes());
            if self.buf.len() == CHUNK_BYTES {
                self.flush_chunk(false)?;
            }
        }
        self.samples += samples.len() as u64;
        Ok(())
    }

    /// Samples written so far.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    fn flush_chunk(&mut self, last: bool) -> Result<(), SpoolError> {
        let io = |source| SpoolError::Io {
            path: self.path.display().to_string(),
            source,
        };
        let ct_len = (self.buf.len() + TAG) as u32;
        let aad = self.header.aad(ct_len);
        if self.chunk == u32::MAX {
            return Err(io(io::Error::other(
                "the take is too long for one spool file",
            )));
        }
        self.stream
            .encrypt_in_place(self.chunk, last, &aad, &mut *self.buf)
            .map_err(|_| io(io::Error::other("spool chunk encryption failed")))?;
        self.chunk += 1;
        self.file.write_all(&ct_len.to_le_bytes()).map_err(io)?;
        self.file.write_all(&self.buf).map_err(io)?;
        self.buf.clear();
        crate::fault::point("spool.chunk");
        Ok(())
    }

    /// Writes the final chunk, fsyncs, and returns the take's spool (path, key, length).
    pub fn finish(mut self) -> Result<SpoolTake, SpoolError> {
        self.flush_chunk(true)?;
        let io = |source| SpoolError::Io {
            path: self.path.display().to_string(),
            source,
        };
        self.file.flush().map_err(io)?;
        self.file.get_ref().sync_all().map_err(io)?;
        Ok(SpoolTake {
            path: std::mem::take(&mut self.path),
            key: Some(std::mem::replace(&mut self.key, SpoolKey::spent())),
            sample_rate: self.header.sample_rate,
            samples: self.samples,
            lock: self.lock.take(),
        })
    }

    /// Abandons the take: the key is zeroized and the file wiped.
    pub fn abort(mut self) -> Result<wipe::WipeReport, wipe::WipeError> {
        let path = std::mem::take(&mut self.path);
        // The lock goes after the name: a sweep never finds the file unlocked.
        let wiped = wipe::wipe_file(&path);
        self.lock = None;
        wiped
    }
}

impl Drop for SpoolWriter {
    /// An unfinished writer (an error, a panic) wipes its file; its key dies with it.
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = wipe::wipe_file(&self.path);
        }
        self.lock = None;
        zeroize::Zeroize::zeroize(&mut *self.buf);
    }
}

/// A finished take in the spool: readable (with its in-memory key) until wiped or dropped.
///
/// Dropping a `SpoolTake` zeroizes its key and wipes its file (best effort); call
/// [`SpoolTake::wipe`] to get the result.
#[derive(Debug)]
pub struct SpoolTake {
    path: PathBuf,
    key: Option<SpoolKey>,
    sample_rate: u32,
    samples: u64,
    lock: Option<File>,
}

impl SpoolTake {
    /// The spool file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Wipes the spool file and zeroizes the key.
    pub fn wipe(mut self) -> Result<wipe::WipeReport, wipe::WipeError> {
        self.key = None;
        let path = std::mem::take(&mut self.path);
        // The lock goes after the name: a sweep never finds the file unlocked.
        let wiped = wipe::wipe_file(&path);
        self.lock = None;
        wiped
    }

    fn reader(&self) -> Result<SpoolReader, SpoolError> {
        let key = self.key.as_ref().expect("a live take has its key");
        SpoolReader::open(&self.path, key)
    }
}

impl Drop for SpoolTake {
    fn drop(&mut self) {
        self.key = None;
        if !self.path.as_os_str().is_empty() {
            let _ = wipe::wipe_file(&self.path);
        }
        self.lock = None;
    }
}

impl PcmReplay for SpoolTake {
    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }
    fn len(&self) -> u64 {
        self.samples
    }
    fn open(&self) -> io::Result<Box<dyn PcmRead + '_>> {
        Ok(Box::new(self.reader().map_err(io::Error::other)?))
    }
}

/// Decrypts a spool file chunk by chunk.
pub struct SpoolReader {
    // First: unlocked before the buffers are freed (zeroized first, in `drop`).
    _locks: [MemLock; 2],
    path: PathBuf,
    file: io::BufReader<File>,
    header: Header,
    stream: Box<StreamBE32<ChaCha20Poly1305>>,
    chunk: u32,
    plain: Zeroizing<Vec<u8>>,
    pos: usize,
    done: bool,
}

impl Drop for SpoolReader {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut *self.plain);
    }
}

impl SpoolReader {
    /// Opens a spool file with its key and checks the header.
    pub fn open(path: &Path, key: &SpoolKey) -> Result<Self, SpoolError> {
        let shown = path.display().to_string();
        let file = File::open(path).map_err(|source| SpoolError::Io {
            path: shown.clone(),
            source,
        })?;
        let mut file = io::BufReader::with_capacity(CHUNK_BYTES + TAG + 4, file);
        let header = Header::read(&mut file).ok_or(SpoolError::NotASpool { path: shown })?;
        let (stream, stream_lock) = key.stream(&header.nonce_prefix);
        let (plain, plain_lock) = locked_chunk_buffer(CHUNK_BYTES + TAG);
        Ok(Self {
            path: path.to_owned(),
            file,
            header,
            stream,
            chunk: 0,
            plain,
            pos: 0,
            done: false,
            _locks: [stream_lock, plain_lock],
        })
    }

    /// The sample rate from the header.
    pub fn sample_rate(&self) -> u32 {
        self.header.sample_rate
    }

    /// The take id from the header.
    pub fn take_id(&self) -> &str {
        &self.header.take_id
    }

    fn next_chunk(&mut self) -> Result<(), SpoolError> {
        let shown = self.path.display().to_string();
        let io = |source| SpoolError::Io {
            path: shown.clone(),
            source,
        };
        let truncated = |detail: String| SpoolError::Truncated {
            path: shown.clone(),
            detail,
        };
        let k = self.chunk;
        let mut len = [0u8; 4];
        match read_full(&mut self.file, &mut len).map_err(io)? {
            0 => return Err(truncated("it has no chunks".into())),
            4 => {}
            _ => return Err(truncated(format!("it ends inside the length of chunk {k}"))),
        }
        let ct_len = u32::from_le_bytes(len);
        if !(TAG as u32..=(CHUNK_BYTES + TAG) as u32).contains(&ct_len) {
            return Err(SpoolError::Corrupt {
                path: shown,
                chunk: k,
            });
        }
        self.plain.clear();
        self.plain.resize(ct_len as usize, 0);
        if read_full(&mut self.file, &mut self.plain).map_err(io)? != ct_len as usize {
            return Err(truncated(format!("it ends inside chunk {k}")));
        }
        let aad = self.header.aad(ct_len);
        // A chunk must be final exactly when the file ends right after it. On failure the AEAD
        // leaves the ciphertext untouched, so the other flag can be tried to name the problem.
        let at_end = self.file.fill_buf().map_err(io)?.is_empty();
        if self
            .stream
            .decrypt_in_place(k, at_end, &aad, &mut *self.plain)
            .is_ok()
        {
            self.done = at_end;
            self.chunk += 1;
            self.pos = 0;
            return Ok(());
        }
        let other_flag_ok = self
            .stream
            .decrypt_in_place(k, !at_end, &aad, &mut *self.plain)
            .is_ok();
        self.plain.clear();
        Err(match (at_end, other_flag_ok) {
            (true, true) => truncated(format!("it ends after chunk {k} without the final chunk")),
            (false, true) => {
                let mut rest = 0u64;
                let mut sink = [0u8; 8192];
                while let Ok(n) = self.file.read(&mut sink) {
                    if n == 0 {
                        break;
                    }
                    rest += n as u64;
                }
                SpoolError::TrailingData {
                    path: shown,
                    bytes: rest,
                }
            }
            (_, false) => SpoolError::Corrupt {
                path: shown,
                chunk: k,
            },
        })
    }
}

impl PcmRead for SpoolReader {
    fn read_pcm(&mut self, buf: &mut [f32]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            if self.pos == self.plain.len() {
                if self.done {
                    break;
                }
                self.next_chunk().map_err(io::Error::other)?;
                continue;
            }
            let avail = (self.plain.len() - self.pos) / 4;
            let take = avail.min(buf.len() - n);
            for (i, out) in buf[n..n + take].iter_mut().enumerate() {
                let p = self.pos + 4 * i;
                *out = f32::from_le_bytes(self.plain[p..p + 4].try_into().expect("4 bytes"));
            }
            self.pos += 4 * take;
            n += take;
        }
        Ok(n)
    }
}

/// Reads until `buf` is full or EOF; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Makes "create a take's file and lock it" one step as far as [`sweep`] can see: writers hold it
/// shared while they do that, the sweep exclusively while it tries a file's lock. Without it a
/// sweep could lock a file created a moment ago, not yet locked by its writer, and take it for a
/// crash leftover. On Unix it is a lock on the spool directory itself, so no extra file sits in
/// it; Windows cannot lock a directory, so there it is the file `.creation-gate` in the spool
/// directory, which the sweep leaves alone.
struct CreationGate {
    _lock: File,
}

/// The creation gate's file on Windows.
const GATE_FILE: &str = ".creation-gate";

impl CreationGate {
    fn shared(dir: &Path) -> io::Result<Self> {
        Self::take(dir, File::lock_shared)
    }

    fn exclusive(dir: &Path) -> io::Result<Self> {
        Self::take(dir, File::lock)
    }

    /// Waits for the lock; held until dropped. Creation holds it for microseconds.
    fn take(dir: &Path, lock: fn(&File) -> Result<(), io::Error>) -> io::Result<Self> {
        #[cfg(unix)]
        let f = File::open(dir)?;
        #[cfg(windows)]
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(GATE_FILE))?;
        lock(&f)?;
        Ok(Self { _lock: f })
    }

    /// Whether `name` is the gate's own file (Windows), which is no take.
    fn is_gate(name: &std::ffi::OsStr) -> bool {
        cfg!(windows) && name == GATE_FILE
    }
}

/// The files in a spool directory other than the creation gate's own (Windows): what takes,
/// crashes and wipes left there. Empty when the directory does not exist.
pub fn files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        if !CreationGate::is_gate(&entry.file_name()) {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// One spool file removed by [`sweep`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swept {
    /// The file's name.
    pub file: String,
    /// Its size.
    pub bytes: u64,
}

/// Wipes every spool file in `dir` that no live process holds: their keys are gone, so they can
/// never be read again. Each removal is an audit event `spool.swept`, and is returned, except
/// for takes in `sealed` (a crash after sealing, before the wipe): `spool.wiped`, as usual.
pub fn sweep(
    dir: &Path,
    audit: &AuditLog,
    sealed: &HashSet<TakeId>,
) -> Result<Vec<Swept>, SpoolError> {
    let io = |source| SpoolError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut swept = Vec::new();
    for path in files(dir).map_err(io)? {
        // Regular files only (not links or directories); one gone since the listing is skipped.
        if !fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file()) {
            continue;
        }
        let name = path.file_name().unwrap_or_default().to_owned();
        let wipe_leftover = fsutil::is_temp_sibling(&name);
        let file = match OpenOptions::new().read(true).open(&path) {
            Ok(f) => f,
            Err(_) => continue,
        };
        let locked = {
            let _gate = CreationGate::exclusive(dir).map_err(io)?;
            file.try_lock().is_ok()
        };
        if !locked {
            continue; // a live take of a running process
        }
        // Its owner may have finished between the listing and the lock (sealed the take, wiped
        // the file and let go of the lock): then the name is gone and there is nothing to sweep.
        if !fsutil::still_names(&path, &file).map_err(io)? {
            continue;
        }
        if wipe_leftover {
            // A wipe's renamed file, overwritten and truncated before the rename: left by a crash
            // between rename and unlink, or (Windows before 10 1809, Wine) a name whose delete
            // waits for the last handle. Nothing in it to wipe or report.
            let _ = fs::remove_file(&path);
            continue;
        }
        let name = name.to_string_lossy().into_owned();
        let report = wipe::wipe_file(&path).map_err(|e| io(io::Error::other(e.to_string())))?;
        drop(file);
        let take = (name.strip_suffix(".spool"))
            .and_then(|t| t.parse::<TakeId>().ok())
            .filter(|t| sealed.contains(t));
        if let Some(take) = take {
            let _ = audit.append(&crate::store::audit::AuditEvent::SpoolWiped {
                take,
                bytes: Some(report.bytes_overwritten),
                error: None,
            });
            continue;
        }
        let _ = audit.append(&crate::store::audit::AuditEvent::SpoolSwept {
            file: name.to_string(),
            bytes: report.bytes_overwritten,
        });
        swept.push(Swept {
            file: name,
            bytes: report.bytes_overwritten,
        });
    }
    Ok(swept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::pcm::read_all;

    fn samples(n: usize) -> Vec<f32> {
        (0..n).map(|i| ((i as f32) * 0.001).sin() * 0.5).collect()
    }

    fn write_take(dir: &Path, n: usize) -> SpoolTake {
        let mut w = SpoolWriter::create(dir, &TakeId::generate(), 48_000).unwrap();
        let s = samples(n);
        for part in s.chunks(1000) {
            w.write(part).unwrap();
        }
        w.finish().unwrap()
    }

    fn read_err(take: &SpoolTake) -> SpoolError {
        let mut r = take.reader().unwrap();
        let mut buf = vec![0f32; 4096];
        loop {
            match r.read_pcm(&mut buf) {
                Ok(0) => panic!("expected an error"),
                Ok(_) => {}
                Err(e) => {
                    return *e.into_inner().unwrap().downcast::<SpoolError>().unwrap();
                }
            }
        }
    }

    /// Splits a spool file into header and records.
    fn records(bytes: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
        let hlen = 8 + 4 + 2 + 7 + 1 + bytes[21] as usize;
        let (h, mut rest) = bytes.split_at(hlen);
        let mut recs = Vec::new();
        while !rest.is_empty() {
            let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
            recs.push(rest[..4 + len].to_vec());
            rest = &rest[4 + len..];
        }
        (h.to_vec(), recs)
    }

    fn rewrite(path: &Path, header: &[u8], recs: &[Vec<u8>]) {
        let mut out = header.to_vec();
        for r in recs {
            out.extend_from_slice(r);
        }
        fs::write(path, out).unwrap();
    }

    #[test]
    fn round_trips_exactly_for_many_lengths() {
        let dir = tempfile::tempdir().unwrap();
        for n in [
            0,
            1,
            CHUNK_SAMPLES - 1,
            CHUNK_SAMPLES,
            CHUNK_SAMPLES + 1,
            3 * CHUNK_SAMPLES + 17,
        ] {
            let take = write_take(dir.path(), n);
            assert_eq!(take.len(), n as u64);
            let got = read_all(&mut *take.open().unwrap()).unwrap();
            assert_eq!(got, samples(n), "n={n}");
            // Replayable.
            assert_eq!(read_all(&mut *take.open().unwrap()).unwrap().len(), n);
        }
    }

    #[test]
    fn file_holds_no_plaintext() {
        let dir = tempfile::tempdir().unwrap();
        let take = write_take(dir.path(), 2 * CHUNK_SAMPLES);
        let bytes = fs::read(take.path()).unwrap();
        let plain: Vec<u8> = samples(64).iter().flat_map(|s| s.to_le_bytes()).collect();
        assert!(!bytes.windows(16).any(|w| plain.windows(16).any(|p| p == w)));
    }

    #[test]
    fn truncation_at_every_chunk_boundary_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let take = write_take(dir.path(), 3 * CHUNK_SAMPLES + 5);
        let (h, recs) = records(&fs::read(take.path()).unwrap());
        assert_eq!(recs.len(), 4);
        for keep in 0..recs.len() {
            rewrite(take.path(), &h, &recs[..keep]);
            assert!(
                matches!(read_err(&take), SpoolError::Truncated { .. }),
                "keep {keep}"
            );
        }
        // Inside a chunk and inside a length field.
        let mut cut = h.clone();
        cut.extend_from_slice(&recs[0][..1000]);
        fs::write(take.path(), &cut).unwrap();
        assert!(matches!(read_err(&take), SpoolError::Truncated { .. }));
        let mut cut = h.clone();
        cut.extend_from_slice(&recs[0][..2]);
        fs::write(take.path(), &cut).unwrap();
        assert!(matches!(read_err(&take), SpoolError::Truncated { .. }));
    }

    #[test]
    fn reordered_dropped_duplicated_and_flipped_chunks_are_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let take = write_take(dir.path(), 3 * CHUNK_SAMPLES + 5);
        let original = fs::read(take.path()).unwrap();
        let (h, recs) = records(&original);
        let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
            (
                "swap",
                vec![
                    recs[1].clone(),
                    recs[0].clone(),
                    recs[2].clone(),
                    recs[3].clone(),
                ],
            ),
            (
                "drop",
                vec![recs[0].clone(), recs[2].clone(), recs[3].clone()],
            ),
            (
                "dup",
                vec![
                    recs[0].clone(),
                    recs[0].clone(),
                    recs[1].clone(),
                    recs[2].clone(),
                    recs[3].clone(),
                ],
            ),
            (
                "last-moved",
                vec![
                    recs[0].clone(),
                    recs[3].clone(),
                    recs[1].clone(),
                    recs[2].clone(),
                ],
            ),
        ];
        for (name, rs) in cases {
            rewrite(take.path(), &h, &rs);
            assert!(
                matches!(read_err(&take), SpoolError::Corrupt { .. }),
                "{name}"
            );
        }
        for pos in [h.len(), h.len() + 4, h.len() + 500, original.len() - 1] {
            let mut b = original.clone();
            b[pos] ^= 0x80;
            fs::write(take.path(), &b).unwrap();
            let e = read_err(&take);
            assert!(
                matches!(e, SpoolError::Corrupt { .. } | SpoolError::Truncated { .. }),
                "{pos}: {e}"
            );
        }
        // A flipped header byte fails authentication of the first chunk (or the header check).
        let mut b = original.clone();
        b[10] ^= 1; // sample rate
        fs::write(take.path(), &b).unwrap();
        assert!(matches!(
            read_err(&take),
            SpoolError::Corrupt { chunk: 0, .. }
        ));
    }

    #[test]
    fn trailing_data_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let take = write_take(dir.path(), CHUNK_SAMPLES + 5);
        let mut b = fs::read(take.path()).unwrap();
        b.extend_from_slice(&[0u8; 40]);
        fs::write(take.path(), &b).unwrap();
        assert!(matches!(
            read_err(&take),
            SpoolError::TrailingData { bytes: 40, .. }
        ));
    }

    /// The key, the cipher holding a copy of it and the plaintext chunk buffers are locked out
    /// of swap (root here; a user needs RLIMIT_MEMLOCK of a few pages, 8 MiB by default).
    #[cfg(target_os = "linux")]
    #[test]
    fn keys_and_plaintext_buffers_are_locked_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let w = SpoolWriter::create(dir.path(), &TakeId::generate(), 16_000).unwrap();
        assert!(w.key._lock.is_locked());
        assert!(w._locks.iter().all(MemLock::is_locked));
        let take = w.finish().unwrap();
        let r = take.reader().unwrap();
        assert!(take.key.as_ref().unwrap()._lock.is_locked());
        assert!(r._locks.iter().all(MemLock::is_locked));
    }

    #[test]
    fn another_takes_key_cannot_read_it() {
        let dir = tempfile::tempdir().unwrap();
        let a = write_take(dir.path(), 100);
        let b = write_take(dir.path(), 100);
        let mut r = SpoolReader::open(a.path(), b.key.as_ref().unwrap()).unwrap();
        let err = r.read_pcm(&mut [0f32; 10]).unwrap_err();
        assert!(err.to_string().contains("failed authentication"), "{err}");
    }

    #[test]
    fn dropping_or_wiping_a_take_removes_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = write_take(dir.path(), 100);
        let pa = a.path().to_owned();
        drop(a);
        assert!(!pa.exists());
        let b = write_take(dir.path(), 100);
        let pb = b.path().to_owned();
        let size = fs::metadata(&pb).unwrap().len();
        assert_eq!(b.wipe().unwrap().bytes_overwritten, size);
        assert!(!pb.exists());
        // An unfinished writer wipes its file too.
        let w = SpoolWriter::create(dir.path(), &TakeId::generate(), 16_000).unwrap();
        let pw = w.path.clone();
        drop(w);
        assert!(!pw.exists());
    }

    #[test]
    fn sweep_wipes_orphans_but_not_live_takes() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        let audit = AuditLog::new(dir.path().join("audit.log"));
        let live = write_take(&spool, 1000);
        // An orphan: a spool file left by a crashed process (no lock, no key).
        let orphan = spool.join(format!("{}.spool", TakeId::generate()));
        fs::write(&orphan, b"VXSPOOL\x01 whatever was there").unwrap();
        let swept = sweep(&spool, &audit, &HashSet::new()).unwrap();
        assert_eq!(swept.len(), 1);
        assert!(!orphan.exists());
        assert!(live.path().exists(), "a live take is locked and kept");
        let events = audit.entries().unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event, "spool.swept");
        assert_eq!(read_all(&mut *live.open().unwrap()).unwrap().len(), 1000);
        assert!(
            sweep(&dir.path().join("missing"), &audit, &HashSet::new())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_wipe_leftover_is_removed_without_a_report() {
        let dir = tempfile::tempdir().unwrap();
        let audit = AuditLog::new(dir.path().join("audit.log"));
        let spool = dir.path().join("spool");
        fs::create_dir(&spool).unwrap();
        let leftover = fsutil::temp_sibling(&spool.join("t.spool"));
        fs::write(&leftover, b"").unwrap();
        assert!(sweep(&spool, &audit, &HashSet::new()).unwrap().is_empty());
        assert!(!leftover.exists());
        assert!(audit.entries().unwrap().is_empty());
    }

    #[test]
    fn sweeps_racing_writers_never_touch_a_live_take() {
        // Takes are created, written, read back and wiped in a loop while another thread sweeps
        // the same directory again and again (as the CLI's start-up does next to a recording
        // app). A sweep may meet a take at any step: just created, being wiped, just unlinked.
        // It must never fail, never take a live take for a leftover, and never break one.
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        let audit = AuditLog::new(dir.path().join("audit.log"));
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let sweeper = s.spawn(|| {
                let mut sweeps = 0u32;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let swept = sweep(&spool, &audit, &HashSet::new()).unwrap();
                    assert!(swept.is_empty(), "a live take swept: {swept:?}");
                    sweeps += 1;
                }
                sweeps
            });
            for _ in 0..400 {
                let take = write_take(&spool, 100);
                assert_eq!(read_all(&mut *take.open().unwrap()).unwrap().len(), 100);
                take.wipe().unwrap();
            }
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            let sweeps = sweeper.join().unwrap();
            assert!(sweeps > 10, "the sweeps ran alongside: {sweeps}");
        });
        assert!(audit.entries().unwrap().is_empty());
    }

    #[test]
    fn not_a_spool() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.spool");
        fs::write(&p, b"RIFF....WAVEfmt ").unwrap();
        let key = SpoolKey::generate();
        assert!(matches!(
            SpoolReader::open(&p, &key),
            Err(SpoolError::NotASpool { .. })
        ));
    }
}
