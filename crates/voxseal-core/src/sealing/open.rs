//! Opening sealed samples: decrypt with an identity file, verify against the manifest, and write
//! the plaintext (or just summarize it).
//!
//! The ciphertext's SHA-256 is computed while it is decrypted and must equal the manifest's;
//! with a manifest, the [`crate::sealing::binding`] sealed inside the payload must also equal the
//! manifest's fields. Decrypted output is written to a temp file and renamed into place only
//! after the age authentication, the hash and the binding checks pass, so a damaged or
//! substituted file, or one whose manifest was edited, never yields output.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::project::manifest::{Manifest, PayloadKind};

/// Why a sealed file could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The manifest is missing or invalid.
    #[error("{path}: {detail}")]
    Manifest {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The file is not an age file, or its header is damaged.
    #[error(
        "{path} is not a valid age file: {detail}; get an intact copy of it (download it again)"
    )]
    NotAge {
        /// The file.
        path: String,
        /// What age said.
        detail: String,
    },
    /// None of the identities can decrypt it.
    #[error(
        "{path}: none of the given identities can decrypt it (it is sealed to other recipients)"
    )]
    WrongIdentity {
        /// The file.
        path: String,
    },
    /// Authentication failed: the ciphertext was altered or truncated.
    #[error("{path} is damaged: {detail}; get an intact copy of it (download it again)")]
    Damaged {
        /// The file.
        path: String,
        /// What failed.
        detail: String,
    },
    /// The ciphertext is not the one the manifest describes.
    #[error(
        "{path}: SHA-256 {got} does not match the manifest's {want} (a different or substituted file)"
    )]
    HashMismatch {
        /// The file.
        path: String,
        /// The manifest's hash.
        want: String,
        /// The file's hash.
        got: String,
    },
    /// The manifest says something other than what was sealed inside the payload.
    #[error(
        "{path}: the manifest's `{field}` does not match the one sealed inside the payload ({detail}); the manifest was edited, or the payload belongs to another sample"
    )]
    BindingMismatch {
        /// The file.
        path: String,
        /// The first differing field (dotted path).
        field: String,
        /// Both values.
        detail: String,
    },
    /// The ciphertext's size is not the manifest's.
    #[error(
        "{path} is {got} bytes, but the manifest says {want} bytes (a truncated, extended or different file); get an intact copy of it"
    )]
    SizeMismatch {
        /// The file.
        path: String,
        /// The manifest's size.
        want: u64,
        /// The file's size.
        got: u64,
    },
    /// An output file is already there; it is left as it is.
    #[error(
        "{path} already exists and was not overwritten: open into an empty directory, or move the old files away"
    )]
    Exists {
        /// The output file.
        path: String,
    },
    /// The decrypted content is not what its kind should be.
    #[error("{path}: decrypted content is not a valid {kind}: {detail}")]
    BadContent {
        /// The file.
        path: String,
        /// `WAV` or `safetensors`.
        kind: &'static str,
        /// What is wrong.
        detail: String,
    },
}

/// What opening one payload produced.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The ciphertext.
    pub source: PathBuf,
    /// What it held.
    pub kind: PayloadKind,
    /// Where the plaintext was written, if it was.
    pub output: Option<PathBuf>,
    /// Plaintext size.
    pub plain_bytes: u64,
    /// True when the ciphertext's SHA-256 was checked against a manifest.
    pub verified: bool,
    /// True when the manifest's fields were checked against the binding sealed in the payload
    /// (false without a manifest, and for `/1` manifests, which predate the binding).
    pub bound: bool,
    /// A one-line description (shapes, duration).
    pub summary: String,
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Reads an item's manifest (`manifest.json` in an outbox item or a downloaded copy).
pub fn read_manifest(path: &Path) -> Result<Manifest, OpenError> {
    let bytes = std::fs::read(path).map_err(|source| OpenError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Manifest::from_json(&bytes).map_err(|e| OpenError::Manifest {
        path: path.display().to_string(),
        detail: e.to_string(),
    })
}

/// Decrypts one age file with `identities`. With `expected_sha256`, the ciphertext must match.
/// With `out_dir`, the plaintext is written there as `<stem>.<wav|safetensors>`; otherwise it is
/// only inspected and summarized.
pub fn open_file(
    path: &Path,
    identities: &[Box<dyn age::Identity>],
    expected: Option<(PayloadKind, &str)>,
    out_dir: Option<&Path>,
) -> Result<Opened, OpenError> {
    open_checked(path, identities, expected, None, out_dir)
}

/// Decrypts the `kind` payload of `manifest` at `path`, checking its SHA-256 and its binding
/// against the manifest ([`open_file`] otherwise).
pub fn open_payload(
    path: &Path,
    identities: &[Box<dyn age::Identity>],
    manifest: &Manifest,
    kind: PayloadKind,
    out_dir: Option<&Path>,
) -> Result<Opened, OpenError> {
    let Some(p) = manifest.payload(kind) else {
        return Err(OpenError::Manifest {
            path: path.display().to_string(),
            detail: format!("the manifest lists no {} payload", kind.as_str()),
        });
    };
    open_checked(
        path,
        identities,
        Some((kind, &p.sha256)),
        Some(manifest),
        out_dir,
    )
}

fn open_checked(
    path: &Path,
    identities: &[Box<dyn age::Identity>],
    expected: Option<(PayloadKind, &str)>,
    manifest: Option<&Manifest>,
    out_dir: Option<&Path>,
) -> Result<Opened, OpenError> {
    let shown = path.display().to_string();
    let file = File::open(path).map_err(|source| OpenError::Io {
        path: shown.clone(),
        source,
    })?;
    let mut hashing = HashingReader {
        inner: BufReader::with_capacity(256 * 1024, file),
        hasher: Sha256::new(),
    };
    let reader = match decrypt(&shown, &mut hashing, identities) {
        Ok(r) => r,
        Err(e) => return Err(undecryptable(&shown, &mut hashing, expected, e)),
    };
    // Plaintext goes to a temp file (or nowhere) and is kept only if everything checks out.
    let mut temp = TempPlaintext::create(out_dir)?;
    let streamed = stream_plaintext(&shown, reader, temp.writer())?;
    temp.finish(&shown)?;
    // Drain anything after the age stream (there should be nothing) so the hash covers the file.
    let mut rest = Vec::new();
    let _ = hashing.read_to_end(&mut rest);
    let digest = hashing.hasher.finalize();
    let head = &streamed.head;
    let kind = match expected {
        Some((k, _)) => k,
        None if head.starts_with(b"RIFF") => PayloadKind::Raw,
        None => PayloadKind::Features,
    };
    if let Some((_, want)) = expected {
        check_hash(&shown, want, digest)?;
    }
    let summary =
        describe(kind, head, streamed.plain_bytes, &streamed.stats).map_err(|(k, detail)| {
            OpenError::BadContent {
                path: shown.clone(),
                kind: k,
                detail,
            }
        })?;
    if let Some(m) = manifest {
        check_binding(&shown, kind, head, m)?;
    }
    let output = match out_dir {
        Some(dir) => Some(temp.keep(&dir.join(plain_name(path, kind)))?),
        None => None,
    };
    Ok(Opened {
        source: path.to_owned(),
        kind,
        output,
        plain_bytes: streamed.plain_bytes,
        verified: expected.is_some(),
        bound: manifest.is_some(),
        summary,
    })
}

/// The age stream of `hashing` decrypted with `identities`.
fn decrypt<'a, R: Read>(
    shown: &str,
    hashing: &'a mut HashingReader<R>,
    identities: &[Box<dyn age::Identity>],
) -> Result<age::stream::StreamReader<&'a mut HashingReader<R>>, OpenError> {
    let decryptor = age::Decryptor::new(hashing).map_err(|e| classify(shown, e))?;
    decryptor
        .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(|e| classify(shown, e))
}

/// `error` from decrypting; for a file sealed to other recipients the ciphertext is first read
/// to its end and checked against the expected hash, so damage is found by whoever holds the
/// manifest, with or without the key.
fn undecryptable<R: Read>(
    shown: &str,
    hashing: &mut HashingReader<R>,
    expected: Option<(PayloadKind, &str)>,
    error: OpenError,
) -> OpenError {
    if let (OpenError::WrongIdentity { .. }, Some((_, want))) = (&error, expected) {
        if let Err(source) = io::copy(hashing, &mut io::sink()) {
            let path = shown.to_owned();
            return OpenError::Io { path, source };
        }
        let digest = std::mem::take(&mut hashing.hasher).finalize();
        if let Err(damaged) = check_hash(shown, want, digest) {
            return damaged;
        }
    }
    error
}

/// What streaming a payload's plaintext found.
struct Streamed {
    /// The first 64 KiB (headers, the binding).
    head: Vec<u8>,
    plain_bytes: u64,
    stats: ContentStats,
}

/// Reads the plaintext to its end into `sink`, keeping its head and content statistics.
fn stream_plaintext(
    shown: &str,
    mut reader: impl Read,
    sink: &mut dyn io::Write,
) -> Result<Streamed, OpenError> {
    let mut head = Vec::with_capacity(64 * 1024);
    let mut buf = zeroize::Zeroizing::new(vec![0u8; 64 * 1024]);
    let mut plain_bytes = 0u64;
    let mut stats = ContentStats::default();
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                let detail = stream_error(&e);
                return Err(OpenError::Damaged {
                    path: shown.to_owned(),
                    detail,
                });
            }
        };
        if head.len() < 64 * 1024 {
            let take = n.min(64 * 1024 - head.len());
            head.extend_from_slice(&buf[..take]);
        }
        stats.feed(plain_bytes, &buf[..n], &head);
        plain_bytes += n as u64;
        sink.write_all(&buf[..n]).map_err(|source| OpenError::Io {
            path: shown.to_owned(),
            source,
        })?;
    }
    Ok(Streamed {
        head,
        plain_bytes,
        stats,
    })
}

/// The plaintext's name in the output directory: the payload's stem and its kind's extension.
fn plain_name(path: &Path, kind: PayloadKind) -> String {
    let stem = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("payload");
    let stem = stem.strip_suffix(".age").unwrap_or(stem);
    let stem = stem.rsplit_once('.').map_or(stem, |(s, _)| s);
    format!("{stem}.{}", kind.plain_extension())
}

/// Where plaintext is written while it is checked: a temp file next to its final name, removed
/// on every path except [`TempPlaintext::keep`] (or nothing, when no output is wanted).
struct TempPlaintext {
    path: Option<PathBuf>,
    writer: Box<dyn io::Write>,
}

impl TempPlaintext {
    fn create(out_dir: Option<&Path>) -> Result<Self, OpenError> {
        let Some(dir) = out_dir else {
            return Ok(Self {
                path: None,
                writer: Box::new(io::sink()),
            });
        };
        let tmp = crate::store::fsutil::temp_sibling(&dir.join("opening"));
        let f = crate::store::fsutil::create_new(&tmp, true).map_err(|source| OpenError::Io {
            path: tmp.display().to_string(),
            source,
        })?;
        Ok(Self {
            path: Some(tmp),
            writer: Box::new(io::BufWriter::new(f)),
        })
    }

    fn writer(&mut self) -> &mut dyn io::Write {
        &mut *self.writer
    }

    /// Flushes what was written and closes the file.
    fn finish(&mut self, shown: &str) -> Result<(), OpenError> {
        let flushed = self.writer.flush();
        self.writer = Box::new(io::sink());
        flushed.map_err(|source| OpenError::Io {
            path: shown.to_owned(),
            source,
        })
    }

    /// Gives the plaintext its final name; a hard link never replaces an existing file (a
    /// rename would, silently). The temp file goes either way.
    fn keep(self, target: &Path) -> Result<PathBuf, OpenError> {
        let tmp = self
            .path
            .as_ref()
            .expect("keep is only called with an output");
        std::fs::hard_link(tmp, target).map_err(|source| match source.kind() {
            io::ErrorKind::AlreadyExists => OpenError::Exists {
                path: target.display().to_string(),
            },
            _ => OpenError::Io {
                path: target.display().to_string(),
                source,
            },
        })?;
        Ok(target.to_owned())
    }
}

impl Drop for TempPlaintext {
    fn drop(&mut self) {
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Compares the binding sealed in a payload (`head`: its first plaintext bytes) with `manifest`.
fn check_binding(
    path: &str,
    kind: PayloadKind,
    head: &[u8],
    manifest: &Manifest,
) -> Result<(), OpenError> {
    let sealed = match kind {
        PayloadKind::Raw => crate::sealing::binding::from_wav(head),
        PayloadKind::Features => crate::sealing::binding::from_safetensors(head),
    };
    let mismatch = |field: &str, detail: String| OpenError::BindingMismatch {
        path: path.to_owned(),
        field: field.to_owned(),
        detail,
    };
    let sealed = match sealed {
        Ok(Some(v)) => v,
        Ok(None) => {
            return Err(mismatch(
                "schema",
                "the payload carries no binding: it was not sealed with this manifest".into(),
            ));
        }
        Err(detail) => {
            return Err(OpenError::BadContent {
                path: path.to_owned(),
                kind: match kind {
                    PayloadKind::Raw => "WAV",
                    PayloadKind::Features => "safetensors",
                },
                detail,
            });
        }
    };
    let stated = crate::sealing::binding::of_manifest(manifest);
    match crate::sealing::binding::first_difference(&sealed, &stated) {
        None => Ok(()),
        Some(field) => {
            let show = |v: Option<&serde_json::Value>| {
                let s = v.map_or_else(|| "absent".to_owned(), |v| v.to_string());
                match s.char_indices().nth(80) {
                    Some((i, _)) => format!("{}…", &s[..i]),
                    None => s,
                }
            };
            let detail = format!(
                "manifest: {}, sealed: {}",
                show(crate::sealing::binding::at(&stated, &field)),
                show(crate::sealing::binding::at(&sealed, &field))
            );
            Err(mismatch(&field, detail))
        }
    }
}

/// The manifest's SHA-256 (`want`, hex) against the ciphertext's.
fn check_hash(path: &str, want: &str, digest: impl AsRef<[u8]>) -> Result<(), OpenError> {
    let got = hex::encode(digest);
    if want.eq_ignore_ascii_case(&got) {
        return Ok(());
    }
    Err(OpenError::HashMismatch {
        path: path.to_owned(),
        want: want.to_owned(),
        got,
    })
}

/// Our words for age's errors: age's own texts ("Unknown age format. Have you tried upgrading
/// to the latest version?", "failed to fill whole buffer") do not say what happened to a file
/// that was sealed by this program.
fn classify(path: &str, e: age::DecryptError) -> OpenError {
    use age::DecryptError as D;
    let path = path.to_owned();
    let not_age = |detail: &str| OpenError::NotAge {
        path: path.clone(),
        detail: detail.to_owned(),
    };
    let damaged = |detail: String| OpenError::Damaged {
        path: path.clone(),
        detail,
    };
    match e {
        D::NoMatchingKeys => OpenError::WrongIdentity { path },
        D::UnknownFormat => not_age(
            "it does not start with an age header (\"age-encryption.org/v1\"): the header is damaged, or it is not a sealed payload",
        ),
        D::InvalidHeader => not_age("its header is damaged (it cannot be parsed)"),
        D::InvalidMac => damaged("its header was altered (the header's MAC does not match)".into()),
        D::KeyDecryptionFailed => {
            damaged("its header was altered (a recipient's file key does not decrypt)".into())
        }
        D::DecryptionFailed => damaged("it does not authenticate (altered or cut short)".into()),
        D::Io(source) if source.kind() == io::ErrorKind::UnexpectedEof => {
            damaged("it is truncated: the file ends inside its header".into())
        }
        D::Io(source) => OpenError::Io { path, source },
        other => damaged(other.to_string()),
    }
}

/// What an error while reading the age payload stream means.
fn stream_error(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            "it is truncated: the file ends before its last chunk".into()
        }
        io::ErrorKind::InvalidData => {
            format!("its content was altered or cut short (a chunk does not authenticate: {e})")
        }
        _ => format!("it cannot be read: {e}"),
    }
}

/// Running statistics over a WAV's 16-bit samples (peak), for the summary.
#[derive(Default)]
struct ContentStats {
    peak: i32,
    odd: Option<u8>,
    data_at: Option<u64>,
}

impl ContentStats {
    /// Takes the plaintext `bytes` at `offset`; `head` holds the plaintext's first bytes read so
    /// far (up to 64 KiB), where the `data` chunk is looked for.
    fn feed(&mut self, offset: u64, bytes: &[u8], head: &[u8]) {
        if self.data_at.is_none() {
            self.data_at = crate::sealing::binding::wav_data_offset(head);
        }
        let Some(data_at) = self.data_at else { return };
        let skip = data_at.saturating_sub(offset).min(bytes.len() as u64) as usize;
        let mut b = &bytes[skip..];
        if let Some(lo) = self.odd.take()
            && let Some((&hi, rest)) = b.split_first()
        {
            self.peak = self.peak.max((i16::from_le_bytes([lo, hi]) as i32).abs());
            b = rest;
        }
        let mut chunks = b.chunks_exact(2);
        for c in &mut chunks {
            self.peak = self
                .peak
                .max((i16::from_le_bytes([c[0], c[1]]) as i32).abs());
        }
        self.odd = chunks.remainder().first().copied();
    }
}

fn describe(
    kind: PayloadKind,
    head: &[u8],
    size: u64,
    stats: &ContentStats,
) -> Result<String, (&'static str, String)> {
    match kind {
        PayloadKind::Raw => {
            let r = hound::WavReader::new(head).map_err(|e| ("WAV", e.to_string()))?;
            let spec = r.spec();
            let frames = r.duration() as f64;
            let peak =
                crate::capture::audio::levels::amplitude_to_dbfs(stats.peak as f32 / 32768.0);
            Ok(format!(
                "WAV {} Hz, {} ch, {}-bit, {:.2} s, peak {:.1} dBFS",
                spec.sample_rate,
                spec.channels,
                spec.bits_per_sample,
                frames / spec.sample_rate as f64,
                peak
            ))
        }
        PayloadKind::Features => {
            if head.len() < 8 {
                return Err(("safetensors", "too short".into()));
            }
            // The length and the offsets are untrusted: checked arithmetic (fuzzing found
            // `8 + n` and `8 + n + end` overflowing on a crafted file).
            let n = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
            let json = usize::try_from(n)
                .ok()
                .and_then(|n| head.get(8..8usize.checked_add(n)?))
                .ok_or(("safetensors", "header larger than 64 KiB".to_owned()))?;
            let v: serde_json::Value =
                serde_json::from_slice(json).map_err(|e| ("safetensors", e.to_string()))?;
            let shape = |t: &str| {
                v.get(t)
                    .and_then(|t| t.get("shape"))
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            };
            let end = v
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(_, t)| {
                    t.get("data_offsets")
                        .and_then(|o| o.get(1))
                        .and_then(|e| e.as_u64())
                })
                .max()
                .unwrap_or(0);
            let described = (8 + n).checked_add(end);
            if described != Some(size) {
                return Err((
                    "safetensors",
                    format!(
                        "{} bytes, but its header describes {}",
                        size,
                        described.map_or_else(|| "more than 2^64".to_owned(), |d| d.to_string())
                    ),
                ));
            }
            Ok(format!(
                "safetensors log_mel {} mfcc {}, {} bytes",
                shape("log_mel"),
                shape("mfcc"),
                size
            ))
        }
    }
}

/// Opens every payload of an item directory (an outbox item, or a folder with `manifest.json`
/// and the payload files under their outbox names), verifying each against the manifest (hash
/// and binding).
/// Every payload's size and SHA-256 are checked; payloads the identities cannot decrypt are
/// then skipped (reported as `Err(WrongIdentity)`). With `out_dir`, the plaintext goes to
/// `<out_dir>/<sample id>/`, so several items never share (or overwrite) a file.
pub fn open_item(
    dir: &Path,
    identities: &[Box<dyn age::Identity>],
    out_dir: Option<&Path>,
) -> Result<(Manifest, Vec<Result<Opened, OpenError>>), OpenError> {
    let manifest = read_manifest(&dir.join(crate::store::outbox::MANIFEST_FILE))?;
    let out_dir = out_dir.map(|d| d.join(manifest.sample_id.as_str()));
    let created = out_dir.as_ref().filter(|d| !d.exists());
    if let Some(d) = &out_dir {
        crate::store::fsutil::create_private_dir(d).map_err(|source| OpenError::Io {
            path: d.display().to_string(),
            source,
        })?;
    }
    let mut results = Vec::new();
    for p in &manifest.payloads {
        let path = dir.join(&p.file);
        if !path.exists() {
            results.push(Err(OpenError::Io {
                path: path.display().to_string(),
                source: io::Error::new(
                    io::ErrorKind::NotFound,
                    "not on this machine (already uploaded?)",
                ),
            }));
            continue;
        }
        match std::fs::metadata(&path) {
            Ok(m) if m.len() != p.size => {
                results.push(Err(OpenError::SizeMismatch {
                    path: path.display().to_string(),
                    want: p.size,
                    got: m.len(),
                }));
                continue;
            }
            _ => {}
        }
        results.push(open_payload(
            &path,
            identities,
            &manifest,
            p.kind,
            out_dir.as_deref(),
        ));
    }
    // Nothing written (all refused or skipped): no empty directory left behind.
    if let Some(d) = created {
        let _ = std::fs::remove_dir(d);
    }
    Ok((manifest, results))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A safetensors head: 8-byte length, then `json`.
    fn head(n: u64, json: &str) -> Vec<u8> {
        let mut h = n.to_le_bytes().to_vec();
        h.extend_from_slice(json.as_bytes());
        h
    }

    /// Found by the `age_open` fuzz target: a decrypted "features" payload whose safetensors
    /// length or data offsets are near u64::MAX overflowed `8 + n` / `8 + n + end` (a panic in
    /// debug builds, a wrapped size in release). Both are now refused as bad content.
    #[test]
    fn huge_safetensors_lengths_are_bad_content_not_overflow() {
        let stats = ContentStats::default();
        for n in [u64::MAX, u64::MAX - 7, u64::MAX / 2, 1 << 40] {
            let h = head(n, "{}");
            let err = describe(PayloadKind::Features, &h, h.len() as u64, &stats).unwrap_err();
            assert_eq!(err.0, "safetensors");
            assert!(err.1.contains("larger than 64 KiB"), "{}", err.1);
        }
        let json = format!(r#"{{"mfcc":{{"data_offsets":[0,{}]}}}}"#, u64::MAX - 4);
        let h = head(json.len() as u64, &json);
        let err = describe(PayloadKind::Features, &h, h.len() as u64, &stats).unwrap_err();
        assert!(err.1.contains("more than 2^64"), "{}", err.1);
        // A consistent head still describes.
        let json = r#"{"mfcc":{"shape":[1,1],"data_offsets":[0,4]}}"#;
        let h = head(json.len() as u64, json);
        let ok = describe(PayloadKind::Features, &h, h.len() as u64 + 4, &stats).unwrap();
        assert!(ok.contains("mfcc [1,1]"), "{ok}");
    }

    /// The same through `open_file`: an age file whose plaintext is such a head.
    #[test]
    fn open_file_refuses_an_overflowing_safetensors_head() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let id = age::x25519::Identity::generate();
        let enc = age::Encryptor::with_recipients(std::iter::once(
            &id.to_public() as &dyn age::Recipient
        ))
        .unwrap();
        let path = dir.path().join("features.safetensors.age");
        let mut w = enc.wrap_output(File::create(&path).unwrap()).unwrap();
        w.write_all(&head(u64::MAX - 7, "{}")).unwrap();
        w.finish().unwrap();
        let ids: Vec<Box<dyn age::Identity>> = vec![Box::new(id)];
        let err = open_file(&path, &ids, None, None).unwrap_err();
        assert!(matches!(err, OpenError::BadContent { .. }), "{err}");
    }
}
