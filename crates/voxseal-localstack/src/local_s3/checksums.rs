//! Checksums verified while a body streams (headers, aws-chunked trailers, Content-MD5), and multipart COMPOSITE checksums.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_core::Stream;
use hyper::HeaderMap;
use hyper::body::Bytes;
use s3s::checksum::ChecksumHasher;
use s3s::crypto::Checksum as _;
use s3s::dto::{ChecksumAlgorithm, StreamingBlob};
use s3s::stream::{ByteStream, RemainingLength};
use s3s::{S3Result, StdError, TrailingHeaders, s3_error};
use serde::{Deserialize, Serialize};

/// The checksum algorithms S3 knows, in a fixed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChecksumKind {
    Crc32,
    Crc32c,
    Sha1,
    Sha256,
    Crc64Nvme,
}

impl ChecksumKind {
    pub(super) const ALL: [ChecksumKind; 5] = [
        ChecksumKind::Crc32,
        ChecksumKind::Crc32c,
        ChecksumKind::Sha1,
        ChecksumKind::Sha256,
        ChecksumKind::Crc64Nvme,
    ];

    pub(super) fn header(self) -> &'static str {
        match self {
            ChecksumKind::Crc32 => "x-amz-checksum-crc32",
            ChecksumKind::Crc32c => "x-amz-checksum-crc32c",
            ChecksumKind::Sha1 => "x-amz-checksum-sha1",
            ChecksumKind::Sha256 => "x-amz-checksum-sha256",
            ChecksumKind::Crc64Nvme => "x-amz-checksum-crc64nvme",
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            ChecksumKind::Crc32 => ChecksumAlgorithm::CRC32,
            ChecksumKind::Crc32c => ChecksumAlgorithm::CRC32C,
            ChecksumKind::Sha1 => ChecksumAlgorithm::SHA1,
            ChecksumKind::Sha256 => ChecksumAlgorithm::SHA256,
            ChecksumKind::Crc64Nvme => ChecksumAlgorithm::CRC64NVME,
        }
    }

    pub(super) fn from_name(name: &str) -> Option<ChecksumKind> {
        ChecksumKind::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name.trim()))
    }

    pub(super) fn from_header(name: &str) -> Option<ChecksumKind> {
        ChecksumKind::ALL
            .into_iter()
            .find(|a| a.header().eq_ignore_ascii_case(name.trim()))
    }
}

/// Base64 checksum values, as S3 sends and stores them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Checksums {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) crc32: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) crc32c: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) sha1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) crc64nvme: Option<String>,
}

impl Checksums {
    pub(super) fn slot(&mut self, alg: ChecksumKind) -> &mut Option<String> {
        match alg {
            ChecksumKind::Crc32 => &mut self.crc32,
            ChecksumKind::Crc32c => &mut self.crc32c,
            ChecksumKind::Sha1 => &mut self.sha1,
            ChecksumKind::Sha256 => &mut self.sha256,
            ChecksumKind::Crc64Nvme => &mut self.crc64nvme,
        }
    }

    pub(super) fn get(&self, alg: ChecksumKind) -> Option<&str> {
        match alg {
            ChecksumKind::Crc32 => self.crc32.as_deref(),
            ChecksumKind::Crc32c => self.crc32c.as_deref(),
            ChecksumKind::Sha1 => self.sha1.as_deref(),
            ChecksumKind::Sha256 => self.sha256.as_deref(),
            ChecksumKind::Crc64Nvme => self.crc64nvme.as_deref(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        ChecksumKind::ALL.into_iter().all(|a| self.get(a).is_none())
    }

    pub(super) fn from_dto(c: s3s::dto::Checksum) -> Checksums {
        Checksums {
            crc32: c.checksum_crc32,
            crc32c: c.checksum_crc32c,
            sha1: c.checksum_sha1,
            sha256: c.checksum_sha256,
            crc64nvme: c.checksum_crc64nvme,
        }
    }
}

/// Copies the five checksum fields of a [`Checksums`] into an S3 output.
macro_rules! put_checksums {
    ($out:expr, $c:expr) => {{
        let c: Checksums = $c;
        $out.checksum_crc32 = c.crc32;
        $out.checksum_crc32c = c.crc32c;
        $out.checksum_sha1 = c.sha1;
        $out.checksum_sha256 = c.sha256;
        $out.checksum_crc64nvme = c.crc64nvme;
    }};
}

/// Reads the five checksum fields of an S3 input or part.
macro_rules! get_checksums {
    ($x:expr) => {
        Checksums {
            crc32: $x.checksum_crc32.clone(),
            crc32c: $x.checksum_crc32c.clone(),
            sha1: $x.checksum_sha1.clone(),
            sha256: $x.checksum_sha256.clone(),
            crc64nvme: $x.checksum_crc64nvme.clone(),
        }
    };
}

pub(super) fn hasher_for(algs: &[ChecksumKind]) -> ChecksumHasher {
    let mut h = ChecksumHasher::default();
    for alg in algs {
        match alg {
            ChecksumKind::Crc32 => h.crc32 = Some(s3s::crypto::Crc32::new()),
            ChecksumKind::Crc32c => h.crc32c = Some(s3s::crypto::Crc32c::new()),
            ChecksumKind::Sha1 => h.sha1 = Some(s3s::crypto::Sha1::new()),
            ChecksumKind::Sha256 => h.sha256 = Some(s3s::crypto::Sha256::new()),
            ChecksumKind::Crc64Nvme => h.crc64nvme = Some(s3s::crypto::Crc64Nvme::new()),
        }
    }
    h
}

/// S3's COMPOSITE checksum of a multipart object: the checksum of the concatenated raw part
/// checksums, then `-<number of parts>`. None when a part has no checksum of this algorithm.
pub(super) fn composite(alg: ChecksumKind, parts: &[&Checksums]) -> Option<String> {
    let mut hasher = hasher_for(&[alg]);
    for part in parts {
        let raw = BASE64.decode(part.get(alg)?).ok()?;
        hasher.update(&raw);
    }
    let whole = Checksums::from_dto(hasher.finalize());
    Some(format!("{}-{}", whole.get(alg)?, parts.len()))
}

/// What the client declared about a body, checked when the body ends.
#[derive(Default)]
pub(super) struct Expectations {
    /// Values sent as headers.
    pub(super) sent: Checksums,
    /// `Content-MD5` (base64).
    pub(super) content_md5: Option<String>,
    /// Algorithms to compute: the ones sent, announced (`x-amz-sdk-checksum-algorithm`,
    /// `x-amz-trailer`) or wanted by the caller.
    pub(super) compute: Vec<ChecksumKind>,
}

impl Expectations {
    pub(super) fn new(
        sent: Checksums,
        content_md5: Option<String>,
        algorithm: Option<&ChecksumAlgorithm>,
        headers: &HeaderMap,
    ) -> S3Result<Self> {
        let mut compute: Vec<ChecksumKind> = ChecksumKind::ALL
            .into_iter()
            .filter(|a| sent.get(*a).is_some())
            .collect();
        let mut trailed = Vec::new();
        for trailer in headers.get_all("x-amz-trailer") {
            let names = String::from_utf8_lossy(trailer.as_bytes()).into_owned();
            trailed.extend(names.split(',').filter_map(ChecksumKind::from_header));
        }
        compute.extend(&trailed);
        if let Some(algorithm) = algorithm {
            let alg = ChecksumKind::from_name(algorithm.as_str()).ok_or_else(|| {
                s3_error!(
                    InvalidArgument,
                    "unknown checksum algorithm {}",
                    algorithm.as_str()
                )
            })?;
            // As on S3. s3s-fs would otherwise compare against nothing, after writing the file.
            if sent.get(alg).is_none() && !trailed.contains(&alg) {
                return Err(s3_error!(
                    InvalidRequest,
                    "x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* or x-amz-trailer headers were found."
                ));
            }
        }
        let mut e = Expectations {
            sent,
            content_md5,
            compute,
        };
        e.dedup();
        Ok(e)
    }

    pub(super) fn also_compute(&mut self, alg: ChecksumKind) {
        self.compute.push(alg);
        self.dedup();
    }

    pub(super) fn dedup(&mut self) {
        let mut seen = Vec::new();
        self.compute.retain(|a| {
            let new = !seen.contains(a);
            seen.push(*a);
            new
        });
    }
}

/// The outcome of a verified body, shared between the stream and the handler that awaits s3s-fs.
#[derive(Debug, Clone)]
pub(super) enum Verdict {
    /// Every declared checksum matched; these are the computed values and the body's length.
    Verified(Checksums, u64),
    /// A declared checksum did not match.
    Mismatch(String),
}

pub(super) type VerdictSlot = Arc<Mutex<Option<Verdict>>>;

/// A request body that computes checksums as it streams and, at its end, compares them with the
/// declared ones (headers, then aws-chunked trailers). On a mismatch its last item is an error, so
/// s3s-fs never moves the file into place.
pub(super) struct VerifyingBody {
    pub(super) inner: StreamingBlob,
    pub(super) hasher: Option<ChecksumHasher>,
    pub(super) md5: Option<s3s::crypto::Md5>,
    pub(super) expect: Expectations,
    pub(super) trailers: Option<TrailingHeaders>,
    pub(super) verdict: VerdictSlot,
    pub(super) finished: bool,
    pub(super) len: u64,
}

impl VerifyingBody {
    pub(super) fn wrap(
        body: StreamingBlob,
        expect: Expectations,
        trailers: Option<TrailingHeaders>,
    ) -> (StreamingBlob, VerdictSlot) {
        let verdict: VerdictSlot = Arc::default();
        let md5 = expect.content_md5.is_some().then(s3s::crypto::Md5::new);
        let this = VerifyingBody {
            inner: body,
            hasher: Some(hasher_for(&expect.compute)),
            md5,
            expect,
            trailers,
            verdict: Arc::clone(&verdict),
            finished: false,
            len: 0,
        };
        (StreamingBlob::new(this), verdict)
    }

    pub(super) fn finish(&mut self) -> Verdict {
        let mut declared = self.expect.sent.clone();
        if let Some(trailers) = &self.trailers {
            trailers.read(|map| {
                for alg in ChecksumKind::ALL {
                    if let Some(value) = map.get(alg.header()).and_then(|v| v.to_str().ok()) {
                        *declared.slot(alg) = Some(value.trim().to_owned());
                    }
                }
            });
        }
        let computed = Checksums::from_dto(self.hasher.take().unwrap_or_default().finalize());
        for alg in ChecksumKind::ALL {
            let Some(want) = declared.get(alg) else {
                continue;
            };
            match computed.get(alg) {
                Some(got) if got == want => {}
                Some(got) => {
                    return Verdict::Mismatch(format!(
                        "The {} you specified did not match the calculated checksum: sent {want}, calculated {got}.",
                        alg.header()
                    ));
                }
                None => {
                    return Verdict::Mismatch(format!(
                        "{} was sent but not announced in x-amz-trailer.",
                        alg.header()
                    ));
                }
            }
        }
        if let (Some(md5), Some(want)) = (self.md5.take(), &self.expect.content_md5) {
            let got = md5.finalize();
            if BASE64.decode(want.trim()).ok().as_deref() != Some(got.as_ref()) {
                return Verdict::Mismatch(
                    "The Content-MD5 you specified did not match what we received.".to_owned(),
                );
            }
        }
        Verdict::Verified(computed, self.len)
    }
}

impl Stream for VerifyingBody {
    type Item = Result<Bytes, StdError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                this.len += bytes.len() as u64;
                if let Some(h) = &mut this.hasher {
                    h.update(&bytes);
                }
                if let Some(m) = &mut this.md5 {
                    m.update(&bytes);
                }
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Ready(Some(Err(err))) => {
                this.finished = true;
                Poll::Ready(Some(Err(err)))
            }
            Poll::Ready(None) => {
                this.finished = true;
                let verdict = this.finish();
                let failed = matches!(verdict, Verdict::Mismatch(_));
                *this.verdict.lock().unwrap_or_else(PoisonError::into_inner) = Some(verdict);
                if failed {
                    Poll::Ready(Some(Err(Box::new(std::io::Error::other(
                        "checksum mismatch",
                    )))))
                } else {
                    Poll::Ready(None)
                }
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl ByteStream for VerifyingBody {
    fn remaining_length(&self) -> RemainingLength {
        self.inner.remaining_length()
    }
}

pub(super) fn take_verdict(slot: &VerdictSlot) -> Option<Verdict> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

// ---------------------------------------------------------------------------------------------
// Per-key locks

pub(super) use get_checksums;
pub(super) use put_checksums;
