//! The embedded S3 endpoint of the local stack.
//!
//! A real HTTP server on 127.0.0.1 that the AWS SDK and the AWS CLI talk to with SigV4. Storage is
//! [`s3s_fs::FileSystem`] (objects are plain files under `root/<bucket>/<key>`); the protocol,
//! SigV4 (including aws-chunked bodies with checksum trailers) and routing come from `s3s`.
//!
//! # Enforcement
//! Every request is authenticated against a [`GrantStore`]: the access key must exist
//! (`InvalidAccessKeyId`), the signature must verify (`SignatureDoesNotMatch`, checked by s3s),
//! the `x-amz-security-token` must be the grant's (`InvalidToken`) and the grant must not have
//! expired (`ExpiredToken`). Anonymous requests get `AccessDenied`. Admin grants may do
//! everything. Contractor grants get what the session policy of [`voxseal_cloud::policy`] allows on AWS
//! and nothing else (`AccessDenied`): `PutObject` and the multipart-upload actions, on keys under
//! the grant's prefixes of the grant's bucket; `PutObject` and `CreateMultipartUpload` must ask
//! for SSE-KMS under the grant's key; the other allowed requests carry no SSE headers, and if they
//! do, the headers must name the same.
//!
//! # What this adds to s3s-fs 0.14
//! - `If-None-Match: *` on `PutObject` and `CompleteMultipartUpload` is atomic: object writes are
//!   serialized per (bucket, key).
//! - Checksums (`x-amz-checksum-{crc32,crc32c,crc64nvme,sha1,sha256}` as headers or aws-chunked
//!   trailers, and `Content-MD5`) are verified while the body streams, before the file is moved
//!   into place: a mismatch is `BadDigest` and leaves no object behind and an earlier object at
//!   the key untouched.
//! - SSE: the requested algorithm and KMS key id are recorded per object (a JSON sidecar under
//!   `root/.voxseal/`, which s3s-fs neither lists nor serves) and returned by `PutObject`,
//!   `CompleteMultipartUpload`, `HeadObject` and `GetObject`. Nothing is actually encrypted: the
//!   payloads Voxseal uploads are age ciphertext already.
//! - Multipart checksums: parts are verified and their checksums recorded; `ListParts` returns
//!   them; `CompleteMultipartUpload` checks the ones the client lists and returns S3's
//!   `COMPOSITE` checksum (the checksum of the concatenated raw part checksums, then `-N`).
//! - Multipart uploads belong to their (bucket, key), not to the access key that created them,
//!   as on S3: a contractor whose credentials were refreshed mid-upload can finish it.
//! - ETags as on S3 without the work s3s-fs does for them: parts of SSE-KMS uploads are written
//!   here, with opaque ETags (S3's ETag of an SSE-KMS object is not an MD5 of its data), instead
//!   of s3s-fs hashing every byte with MD5; other parts keep s3s-fs's MD5 ETag, recorded.
//!   `CompleteMultipartUpload` is done here too: the parts are concatenated in the kernel
//!   (`copy_file_range`) and the ETag comes from the recorded part ETags (MD5 of the part MD5s,
//!   `-N`; opaque for SSE-KMS), where s3s-fs reads the whole object back to hash it again. A
//!   listed part ETag must be the one the part was acknowledged with (`InvalidPart`). These
//!   steps write s3s-fs's own files (part files, upload record, ETag and attribute sidecars)
//!   under the names of the pinned s3s-fs 0.14.1; uploads with an `If-Match` condition or with
//!   parts recorded before ETags were kept are completed by s3s-fs.
//!
//! Limits: no versioning, ACLs, tagging, `UploadPartCopy` or `ListMultipartUploads`; part
//! numbers must be consecutive from 1 (an s3s-fs rule); keys with empty, `.` or `..` segments are
//! refused (they would alias other paths on the filesystem).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_core::Stream;
use hyper::HeaderMap;
use hyper::body::Bytes;
use hyper_util::rt::{TokioIo, TokioTimer};
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::checksum::ChecksumHasher;
use s3s::crypto::Checksum as _;
use s3s::dto::{
    AbortMultipartUploadInput, AbortMultipartUploadOutput, ChecksumAlgorithm, ChecksumMode,
    ChecksumType, CompleteMultipartUploadInput, CompleteMultipartUploadOutput, CopyObjectInput,
    CopyObjectOutput, CreateBucketInput, CreateBucketOutput, CreateMultipartUploadInput,
    CreateMultipartUploadOutput, DeleteBucketInput, DeleteBucketOutput, DeleteObjectInput,
    DeleteObjectOutput, DeleteObjectsInput, DeleteObjectsOutput, ETag, GetBucketLocationInput,
    GetBucketLocationOutput, GetObjectInput, GetObjectOutput, HeadBucketInput, HeadBucketOutput,
    HeadObjectInput, HeadObjectOutput, ListBucketsInput, ListBucketsOutput, ListObjectsInput,
    ListObjectsOutput, ListObjectsV2Input, ListObjectsV2Output, ListPartsInput, ListPartsOutput,
    PutObjectInput, PutObjectOutput, ServerSideEncryption, StreamingBlob, UploadPartInput,
    UploadPartOutput,
};
use s3s::path::S3Path;
use s3s::service::S3ServiceBuilder;
use s3s::stream::{ByteStream, RemainingLength};
use s3s::{
    S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, StdError, TrailingHeaders, s3_error,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::{OwnedMutexGuard, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::grants::{Grant, GrantStore, Scope};

/// How long [`LocalS3::shutdown`] waits for open requests before cutting connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The only operations a contractor grant allows (what the session policy's actions cover).
const CONTRACTOR_OPERATIONS: [&str; 6] = [
    "PutObject",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
    "AbortMultipartUpload",
    "ListParts",
];

const SSE_HEADER: &str = "x-amz-server-side-encryption";
const SSE_KMS_KEY_HEADER: &str = "x-amz-server-side-encryption-aws-kms-key-id";
const SECURITY_TOKEN_HEADER: &str = "x-amz-security-token";

/// Why the endpoint could not start or a bucket could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalS3Error {
    /// Reading or writing the store's directory failed.
    #[error("local S3 store {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The listening socket could not be opened.
    #[error("local S3 endpoint cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The name is not a valid S3 bucket name.
    #[error("invalid bucket name {0:?}")]
    InvalidBucketName(String),
    /// s3s-fs refused the store directory.
    #[error("local S3 store: {0}")]
    Store(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> LocalS3Error + '_ {
    move |source| LocalS3Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// A running local S3 endpoint. Stops when [`shutdown`](LocalS3::shutdown) is awaited or when it
/// is dropped (then in the background).
#[derive(Debug)]
pub struct LocalS3 {
    addr: SocketAddr,
    root: PathBuf,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
}

impl LocalS3 {
    /// Starts the endpoint on `bind` (use 127.0.0.1:0 for a free port) serving objects stored under
    /// `root` (created if missing), authenticating every request against `grants`. Runs on the
    /// current tokio runtime.
    pub async fn start(
        root: &Path,
        grants: GrantStore,
        bind: SocketAddr,
    ) -> Result<LocalS3, LocalS3Error> {
        tokio::fs::create_dir_all(root)
            .await
            .map_err(io_err(root))?;
        let root = tokio::fs::canonicalize(root).await.map_err(io_err(root))?;
        let store = Store::open(&root).await?;

        let mut builder = S3ServiceBuilder::new(store);
        builder.set_auth(GrantGate {
            grants: grants.clone(),
        });
        builder.set_access(GrantGate { grants });
        let service = builder.build();

        let listener = TcpListener::bind(bind)
            .await
            .map_err(|source| LocalS3Error::Bind { addr: bind, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| LocalS3Error::Bind { addr: bind, source })?;
        let (stop, stop_rx) = watch::channel(false);
        let server = tokio::spawn(serve(listener, service, stop_rx));
        tracing::debug!(%addr, root = %root.display(), "local S3 endpoint started");
        Ok(LocalS3 {
            addr,
            root,
            stop,
            server: Some(server),
        })
    }

    /// The address the endpoint listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to give clients as their endpoint, e.g. `http://127.0.0.1:PORT` (use path-style
    /// addressing).
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Creates a bucket on disk, without any credentials (setup of the local stack). Creating a
    /// bucket that exists is not an error.
    pub fn create_bucket(&self, name: &str) -> Result<(), LocalS3Error> {
        if !s3s::path::check_bucket_name(name) {
            return Err(LocalS3Error::InvalidBucketName(
                name.chars().take(80).collect(),
            ));
        }
        let path = self.root.join(name);
        std::fs::create_dir_all(&path).map_err(io_err(&path))
    }

    /// Stops accepting connections, lets requests in flight finish (up to 10 seconds), then
    /// returns.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for LocalS3 {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Resolves once shutdown is asked for (or the [`LocalS3`] is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

async fn serve(
    listener: TcpListener,
    service: s3s::service::S3Service,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => {
                    connections.spawn(serve_connection(socket, service.clone(), stop.clone()));
                }
                Err(err) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(%err, "local S3 endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        connections.abort_all();
    }
    tracing::debug!("local S3 endpoint stopped");
}

async fn serve_connection(
    socket: tokio::net::TcpStream,
    service: s3s::service::S3Service,
    mut stop: watch::Receiver<bool>,
) {
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(socket), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(err) = result {
                tracing::debug!(%err, "local S3 endpoint: connection ended with an error");
            }
        }
        () = stopped(&mut stop) => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.as_mut().await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Authentication and authorization

/// Looks keys up in the grant store (SigV4) and decides what each request may do.
struct GrantGate {
    grants: GrantStore,
}

fn unknown_key() -> S3Error {
    s3_error!(
        InvalidAccessKeyId,
        "The AWS Access Key Id you provided does not exist in our records."
    )
}

#[async_trait::async_trait]
impl S3Auth for GrantGate {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        let grant = self.grants.get(access_key).ok_or_else(unknown_key)?;
        Ok(SecretKey::from(grant.secret.expose_secret()))
    }
}

#[async_trait::async_trait]
impl S3Access for GrantGate {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let Some(credentials) = cx.credentials() else {
            return Err(s3_error!(AccessDenied, "Anonymous access is not allowed."));
        };
        // Looked up again: the grant may have been revoked since the signature was checked.
        let grant = self
            .grants
            .get(&credentials.access_key)
            .ok_or_else(unknown_key)?;
        let token = session_token(cx.headers(), cx.uri().query());
        authorize(
            &grant,
            OffsetDateTime::now_utc(),
            cx.s3_op().name(),
            cx.s3_path(),
            cx.headers(),
            token.as_deref(),
        )
    }
}

/// The session token of a request: the `x-amz-security-token` header or, for presigned URLs, the
/// `X-Amz-Security-Token` query parameter.
fn session_token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(value) = headers.get(SECURITY_TOKEN_HEADER) {
        return Some(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    query?.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.eq_ignore_ascii_case("X-Amz-Security-Token")
            .then(|| percent_decode(value))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex_byte = || {
            std::str::from_utf8(bytes.get(i + 1..i + 3)?)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        };
        match bytes[i] {
            b'%' if hex_byte().is_some() => {
                out.extend(hex_byte());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A single-valued header, or an error when it is repeated.
fn single_header<'h>(headers: &'h HeaderMap, name: &str) -> S3Result<Option<&'h str>> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(s3_error!(
            InvalidArgument,
            "header {name} must not be repeated"
        ));
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| s3_error!(InvalidArgument, "header {name} is not ASCII"))
}

/// True when the key maps to exactly one file under the bucket's directory: no empty, `.` or `..`
/// segment (s3s-fs would resolve those, letting `raw/a/../b/x` land in `raw/b/x`).
fn key_is_plain(key: &str) -> bool {
    !key.is_empty()
        && key.split('/').enumerate().all(|(i, seg)| match seg {
            "." | ".." => false,
            // A trailing `/` is a directory marker; an empty segment anywhere else aliases.
            "" => i > 0 && key.ends_with('/') && i == key.split('/').count() - 1,
            _ => true,
        })
}

/// The decision for one request (see the module docs).
fn authorize(
    grant: &Grant,
    now: OffsetDateTime,
    operation: &str,
    path: &S3Path,
    headers: &HeaderMap,
    token: Option<&str>,
) -> S3Result<()> {
    if !grant.token_matches(token) {
        return Err(s3_error!(
            InvalidToken,
            "The provided token is malformed or otherwise invalid."
        ));
    }
    if grant.expires_at.is_some_and(|expiry| now >= expiry) {
        return Err(s3_error!(ExpiredToken, "The provided token has expired."));
    }
    if let Some((_, key)) = path.as_object()
        && !key_is_plain(key)
    {
        return Err(s3_error!(
            InvalidArgument,
            "object keys with empty, '.' or '..' segments are not supported here"
        ));
    }
    let (bucket, prefixes, kms_key_arn) = match &grant.scope {
        Scope::Admin => return Ok(()),
        Scope::Contractor {
            bucket,
            prefixes,
            kms_key_arn,
            ..
        } => (bucket, prefixes, kms_key_arn),
    };
    if !CONTRACTOR_OPERATIONS.contains(&operation) {
        return Err(s3_error!(
            AccessDenied,
            "{operation} is not allowed for upload credentials."
        ));
    }
    let Some((req_bucket, key)) = path.as_object() else {
        return Err(s3_error!(
            AccessDenied,
            "{operation} is allowed on objects only."
        ));
    };
    if req_bucket != bucket {
        return Err(s3_error!(
            AccessDenied,
            "Access to bucket {req_bucket} is not allowed."
        ));
    }
    if !prefixes
        .iter()
        .any(|prefix| key.starts_with(prefix.as_str()))
    {
        return Err(s3_error!(
            AccessDenied,
            "Access to this key is not allowed: keys must start with one of {prefixes:?}."
        ));
    }
    let sse = single_header(headers, SSE_HEADER)?;
    let kms_key = single_header(headers, SSE_KMS_KEY_HEADER)?;
    let starts_object = matches!(operation, "PutObject" | "CreateMultipartUpload");
    match sse {
        Some(ServerSideEncryption::AWS_KMS) => {}
        Some(other) => {
            return Err(s3_error!(
                AccessDenied,
                "{SSE_HEADER} must be aws:kms, not {other}."
            ));
        }
        None if starts_object => {
            return Err(s3_error!(
                AccessDenied,
                "Uploads must request SSE-KMS: {SSE_HEADER}: aws:kms is missing."
            ));
        }
        None => {}
    }
    match kms_key {
        Some(k) if k == kms_key_arn => {}
        Some(_) => {
            return Err(s3_error!(
                AccessDenied,
                "{SSE_KMS_KEY_HEADER} names a KMS key other than the project key."
            ));
        }
        None if starts_object => {
            return Err(s3_error!(
                AccessDenied,
                "Uploads must name the project KMS key: {SSE_KMS_KEY_HEADER} is missing."
            ));
        }
        None => {}
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Checksums

/// The checksum algorithms S3 knows, in a fixed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alg {
    Crc32,
    Crc32c,
    Sha1,
    Sha256,
    Crc64Nvme,
}

impl Alg {
    const ALL: [Alg; 5] = [
        Alg::Crc32,
        Alg::Crc32c,
        Alg::Sha1,
        Alg::Sha256,
        Alg::Crc64Nvme,
    ];

    fn header(self) -> &'static str {
        match self {
            Alg::Crc32 => "x-amz-checksum-crc32",
            Alg::Crc32c => "x-amz-checksum-crc32c",
            Alg::Sha1 => "x-amz-checksum-sha1",
            Alg::Sha256 => "x-amz-checksum-sha256",
            Alg::Crc64Nvme => "x-amz-checksum-crc64nvme",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Alg::Crc32 => ChecksumAlgorithm::CRC32,
            Alg::Crc32c => ChecksumAlgorithm::CRC32C,
            Alg::Sha1 => ChecksumAlgorithm::SHA1,
            Alg::Sha256 => ChecksumAlgorithm::SHA256,
            Alg::Crc64Nvme => ChecksumAlgorithm::CRC64NVME,
        }
    }

    fn from_name(name: &str) -> Option<Alg> {
        Alg::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name.trim()))
    }

    fn from_header(name: &str) -> Option<Alg> {
        Alg::ALL
            .into_iter()
            .find(|a| a.header().eq_ignore_ascii_case(name.trim()))
    }
}

/// Base64 checksum values, as S3 sends and stores them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Checksums {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crc32: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crc32c: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crc64nvme: Option<String>,
}

impl Checksums {
    fn slot(&mut self, alg: Alg) -> &mut Option<String> {
        match alg {
            Alg::Crc32 => &mut self.crc32,
            Alg::Crc32c => &mut self.crc32c,
            Alg::Sha1 => &mut self.sha1,
            Alg::Sha256 => &mut self.sha256,
            Alg::Crc64Nvme => &mut self.crc64nvme,
        }
    }

    fn get(&self, alg: Alg) -> Option<&str> {
        match alg {
            Alg::Crc32 => self.crc32.as_deref(),
            Alg::Crc32c => self.crc32c.as_deref(),
            Alg::Sha1 => self.sha1.as_deref(),
            Alg::Sha256 => self.sha256.as_deref(),
            Alg::Crc64Nvme => self.crc64nvme.as_deref(),
        }
    }

    fn is_empty(&self) -> bool {
        Alg::ALL.into_iter().all(|a| self.get(a).is_none())
    }

    fn from_dto(c: s3s::dto::Checksum) -> Checksums {
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

fn hasher_for(algs: &[Alg]) -> ChecksumHasher {
    let mut h = ChecksumHasher::default();
    for alg in algs {
        match alg {
            Alg::Crc32 => h.crc32 = Some(s3s::crypto::Crc32::new()),
            Alg::Crc32c => h.crc32c = Some(s3s::crypto::Crc32c::new()),
            Alg::Sha1 => h.sha1 = Some(s3s::crypto::Sha1::new()),
            Alg::Sha256 => h.sha256 = Some(s3s::crypto::Sha256::new()),
            Alg::Crc64Nvme => h.crc64nvme = Some(s3s::crypto::Crc64Nvme::new()),
        }
    }
    h
}

/// S3's COMPOSITE checksum of a multipart object: the checksum of the concatenated raw part
/// checksums, then `-<number of parts>`. None when a part has no checksum of this algorithm.
fn composite(alg: Alg, parts: &[&Checksums]) -> Option<String> {
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
struct Expectations {
    /// Values sent as headers.
    sent: Checksums,
    /// `Content-MD5` (base64).
    content_md5: Option<String>,
    /// Algorithms to compute: the ones sent, announced (`x-amz-sdk-checksum-algorithm`,
    /// `x-amz-trailer`) or wanted by the caller.
    compute: Vec<Alg>,
}

impl Expectations {
    fn new(
        sent: Checksums,
        content_md5: Option<String>,
        algorithm: Option<&ChecksumAlgorithm>,
        headers: &HeaderMap,
    ) -> S3Result<Self> {
        let mut compute: Vec<Alg> = Alg::ALL
            .into_iter()
            .filter(|a| sent.get(*a).is_some())
            .collect();
        let mut trailed = Vec::new();
        for trailer in headers.get_all("x-amz-trailer") {
            let names = String::from_utf8_lossy(trailer.as_bytes()).into_owned();
            trailed.extend(names.split(',').filter_map(Alg::from_header));
        }
        compute.extend(&trailed);
        if let Some(algorithm) = algorithm {
            let alg = Alg::from_name(algorithm.as_str()).ok_or_else(|| {
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

    fn also_compute(&mut self, alg: Alg) {
        self.compute.push(alg);
        self.dedup();
    }

    fn dedup(&mut self) {
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
enum Verdict {
    /// Every declared checksum matched; these are the computed values and the body's length.
    Verified(Checksums, u64),
    /// A declared checksum did not match.
    Mismatch(String),
}

type VerdictSlot = Arc<Mutex<Option<Verdict>>>;

/// A request body that computes checksums as it streams and, at its end, compares them with the
/// declared ones (headers, then aws-chunked trailers). On a mismatch its last item is an error, so
/// s3s-fs never moves the file into place.
struct VerifyingBody {
    inner: StreamingBlob,
    hasher: Option<ChecksumHasher>,
    md5: Option<s3s::crypto::Md5>,
    expect: Expectations,
    trailers: Option<TrailingHeaders>,
    verdict: VerdictSlot,
    finished: bool,
    len: u64,
}

impl VerifyingBody {
    fn wrap(
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

    fn finish(&mut self) -> Verdict {
        let mut declared = self.expect.sent.clone();
        if let Some(trailers) = &self.trailers {
            trailers.read(|map| {
                for alg in Alg::ALL {
                    if let Some(value) = map.get(alg.header()).and_then(|v| v.to_str().ok()) {
                        *declared.slot(alg) = Some(value.trim().to_owned());
                    }
                }
            });
        }
        let computed = Checksums::from_dto(self.hasher.take().unwrap_or_default().finalize());
        for alg in Alg::ALL {
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

fn take_verdict(slot: &VerdictSlot) -> Option<Verdict> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

// ---------------------------------------------------------------------------------------------
// Per-key locks

/// Async mutexes by name, created on demand and dropped when nobody holds or waits for them.
#[derive(Default)]
struct KeyLocks {
    map: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

struct KeyGuard<'a> {
    locks: &'a KeyLocks,
    name: String,
    lock: Arc<tokio::sync::Mutex<()>>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl KeyLocks {
    async fn lock(&self, name: String) -> KeyGuard<'_> {
        let lock = Arc::clone(
            self.map
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(name.clone())
                .or_default(),
        );
        let guard = Arc::clone(&lock).lock_owned().await;
        KeyGuard {
            locks: self,
            name,
            lock,
            guard: Some(guard),
        }
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self
            .locks
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Ours and the map's: nobody else holds or waits for it.
        if Arc::strong_count(&self.lock) == 2 {
            map.remove(&self.name);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sidecars

/// What s3s-fs does not keep about an object.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ObjectMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sse: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kms_key_id: Option<String>,
    /// COMPOSITE checksums of a multipart object (s3s-fs keeps full-object ones itself).
    #[serde(default, skip_serializing_if = "Checksums::is_empty")]
    composite: Checksums,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    checksum_type: Option<String>,
}

/// A multipart upload in progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct UploadMeta {
    bucket: String,
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sse: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kms_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    checksum_algorithm: Option<String>,
}

/// One acknowledged part.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PartMeta {
    size: u64,
    checksums: Checksums,
    /// The ETag the part was acknowledged with (unquoted). Parts recorded before this field
    /// existed have none; their upload is completed by s3s-fs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    e_tag: Option<String>,
}

/// Whether objects written with this SSE algorithm get opaque ETags: on S3 the ETag of an SSE-KMS
/// object is not the MD5 of its data, so the endpoint does not compute one.
fn opaque_e_tags(sse: Option<&str>) -> bool {
    matches!(
        sse,
        Some(ServerSideEncryption::AWS_KMS | ServerSideEncryption::AWS_KMS_DSSE)
    )
}

/// An opaque ETag: 128 random bits in hex, the shape S3's own take.
fn opaque_e_tag() -> String {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).expect("the OS random number generator failed");
    hex::encode(bytes)
}

/// A multipart object's ETag: the MD5 of the concatenated binary part MD5s, then `-<parts>`, as
/// S3 and s3s-fs compute it. None if a part's ETag is not an MD5.
fn multipart_md5_e_tag(part_e_tags: &[&str]) -> Option<String> {
    let mut outer = s3s::crypto::Md5::new();
    for e_tag in part_e_tags {
        let md5 = hex::decode(e_tag).ok().filter(|m| m.len() == 16)?;
        outer.update(&md5);
    }
    Some(format!(
        "{}-{}",
        hex::encode(outer.finalize()),
        part_e_tags.len()
    ))
}

/// How much of a part the endpoint buffers before writing it out.
const PART_WRITE_BUFFER: usize = 4 << 20;

fn internal(err: impl std::fmt::Display) -> S3Error {
    tracing::warn!(%err, "local S3 endpoint: internal error");
    s3_error!(InternalError, "local store: {err}")
}

fn not_found(err: &std::io::Error) -> bool {
    err.kind() == std::io::ErrorKind::NotFound
}

// ---------------------------------------------------------------------------------------------
// The S3 implementation: s3s-fs plus the fixes listed in the module docs.

struct Store {
    fs: s3s_fs::FileSystem,
    root: PathBuf,
    meta: PathBuf,
    locks: KeyLocks,
    tmp_counter: AtomicU64,
}

fn sse_of(sse: Option<&ServerSideEncryption>) -> Option<String> {
    sse.map(|s| s.as_str().to_owned())
}

/// S3's rules for the SSE request headers.
fn check_sse_request(
    sse: Option<&ServerSideEncryption>,
    kms_key_id: Option<&String>,
) -> S3Result<()> {
    match sse.map(ServerSideEncryption::as_str) {
        None | Some(ServerSideEncryption::AWS_KMS | ServerSideEncryption::AWS_KMS_DSSE) => {}
        Some(ServerSideEncryption::AES256) if kms_key_id.is_none() => {}
        Some(ServerSideEncryption::AES256) => {
            return Err(s3_error!(
                InvalidArgument,
                "{SSE_KMS_KEY_HEADER} is only valid with aws:kms"
            ));
        }
        Some(other) => return Err(s3_error!(InvalidArgument, "unknown {SSE_HEADER}: {other}")),
    }
    if kms_key_id.is_some() && sse.is_none() {
        return Err(s3_error!(
            InvalidArgument,
            "{SSE_KMS_KEY_HEADER} requires {SSE_HEADER}: aws:kms"
        ));
    }
    Ok(())
}

fn checksum_mode_enabled(mode: Option<&ChecksumMode>) -> bool {
    mode.is_some_and(|m| m.as_str() == ChecksumMode::ENABLED)
}

fn valid_upload_id(id: &str) -> bool {
    id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

impl Store {
    async fn open(root: &Path) -> Result<Store, LocalS3Error> {
        let fs =
            s3s_fs::FileSystem::new(root).map_err(|e| LocalS3Error::Store(format!("{e:?}")))?;
        let meta = root.join(".voxseal");
        for dir in [meta.join("objects"), meta.join("uploads")] {
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(io_err(&dir))?;
        }
        Ok(Store {
            fs,
            root: root.to_owned(),
            meta,
            locks: KeyLocks::default(),
            tmp_counter: AtomicU64::new(0),
        })
    }

    fn object_lock_name(bucket: &str, key: &str) -> String {
        format!("o\0{bucket}\0{key}")
    }

    fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.join(bucket).join(key)
    }

    fn object_meta_path(&self, bucket: &str, key: &str) -> PathBuf {
        let mut h = sha2::Sha256::new();
        h.update(bucket.as_bytes());
        h.update([0]);
        h.update(key.as_bytes());
        self.meta
            .join("objects")
            .join(format!("{}.json", hex::encode(h.finalize())))
    }

    fn upload_dir(&self, upload_id: &str) -> PathBuf {
        self.meta.join("uploads").join(upload_id)
    }

    async fn write_json<T: Serialize>(&self, path: &Path, value: &T) -> S3Result<()> {
        let bytes = serde_json::to_vec(value).map_err(internal)?;
        let dir = path
            .parent()
            .ok_or_else(|| internal("sidecar path has no parent"))?;
        tokio::fs::create_dir_all(dir).await.map_err(internal)?;
        let tmp = dir.join(format!(
            ".tmp-{}",
            self.tmp_counter.fetch_add(1, Ordering::Relaxed)
        ));
        tokio::fs::write(&tmp, bytes).await.map_err(internal)?;
        tokio::fs::rename(&tmp, path).await.map_err(internal)
    }

    async fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> S3Result<Option<T>> {
        match tokio::fs::read(path).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(internal),
            Err(err) if not_found(&err) => Ok(None),
            Err(err) => Err(internal(err)),
        }
    }

    async fn remove_file(path: &Path) -> S3Result<()> {
        match tokio::fs::remove_file(path).await {
            Ok(()) => Ok(()),
            Err(err) if not_found(&err) => Ok(()),
            Err(err) => Err(internal(err)),
        }
    }

    async fn object_meta(&self, bucket: &str, key: &str) -> S3Result<ObjectMeta> {
        Ok(Self::read_json(&self.object_meta_path(bucket, key))
            .await?
            .unwrap_or_default())
    }

    async fn set_object_meta(&self, bucket: &str, key: &str, meta: &ObjectMeta) -> S3Result<()> {
        let path = self.object_meta_path(bucket, key);
        if meta.sse.is_none()
            && meta.kms_key_id.is_none()
            && meta.composite.is_empty()
            && meta.checksum_type.is_none()
        {
            Self::remove_file(&path).await
        } else {
            self.write_json(&path, meta).await
        }
    }

    /// The upload, checked against the request's bucket and key.
    async fn upload(&self, upload_id: &str, bucket: &str, key: &str) -> S3Result<UploadMeta> {
        let missing = || s3_error!(NoSuchUpload, "The specified upload does not exist.");
        if !valid_upload_id(upload_id) {
            return Err(missing());
        }
        let meta: UploadMeta = Self::read_json(&self.upload_dir(upload_id).join("upload.json"))
            .await?
            .ok_or_else(missing)?;
        if meta.bucket != bucket || meta.key != key {
            return Err(missing());
        }
        Ok(meta)
    }

    async fn part(&self, upload_id: &str, part_number: i32) -> S3Result<Option<PartMeta>> {
        Self::read_json(
            &self
                .upload_dir(upload_id)
                .join(format!("part-{part_number}.json")),
        )
        .await
    }

    // s3s-fs's own files, for the multipart steps this endpoint does itself (module docs). The
    // names are those of s3s-fs 0.14.1, pinned in Cargo.toml; the multipart tests read objects
    // back through s3s-fs, so a change of layout fails them.

    /// A temporary file in the store's root, named so that s3s-fs removes it at start-up if a
    /// crash left it.
    fn temp_path(&self) -> PathBuf {
        self.root.join(format!(
            ".tmp.voxseal-{}.internal.part",
            self.tmp_counter.fetch_add(1, Ordering::Relaxed)
        ))
    }

    fn fs_part_path(&self, upload_id: &str, part_number: i32) -> PathBuf {
        self.root
            .join(format!(".upload_id-{upload_id}.part-{part_number}"))
    }

    fn fs_upload_info_path(&self, upload_id: &str) -> PathBuf {
        self.root.join(format!(".upload-{upload_id}.json"))
    }

    /// s3s-fs's per-object files: `.bucket-<b>.object-<k><suffix>` with URL-safe base64 names.
    fn fs_object_file(&self, bucket: &str, key: &str, suffix: &str) -> PathBuf {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        self.root.join(format!(
            ".bucket-{}.object-{}{suffix}",
            URL_SAFE_NO_PAD.encode(bucket),
            URL_SAFE_NO_PAD.encode(key)
        ))
    }

    /// Streams a verified part body to its s3s-fs part file (through a temporary file, so a
    /// failed or refused body leaves the earlier part, if any, in place). Returns the checksums
    /// computed and the length.
    async fn write_part(
        &self,
        upload_id: &str,
        part_number: i32,
        mut body: StreamingBlob,
        verdict: &VerdictSlot,
    ) -> S3Result<(Checksums, u64)> {
        use tokio::io::AsyncWriteExt as _;
        let tmp = self.temp_path();
        let written = async {
            let file = tokio::fs::File::create(&tmp).await.map_err(internal)?;
            let mut out = tokio::io::BufWriter::with_capacity(PART_WRITE_BUFFER, file);
            while let Some(chunk) =
                std::future::poll_fn(|cx| Pin::new(&mut body).poll_next(cx)).await
            {
                match chunk {
                    Ok(bytes) => out.write_all(&bytes).await.map_err(internal)?,
                    Err(err) => {
                        return Err(match take_verdict(verdict) {
                            Some(Verdict::Mismatch(message)) => {
                                S3Error::with_message(S3ErrorCode::BadDigest, message)
                            }
                            _ => s3_error!(IncompleteBody, "the part's body ended early: {err}"),
                        });
                    }
                }
            }
            out.flush().await.map_err(internal)?;
            match take_verdict(verdict) {
                Some(Verdict::Verified(checksums, size)) => Ok((checksums, size)),
                Some(Verdict::Mismatch(message)) => {
                    Err(S3Error::with_message(S3ErrorCode::BadDigest, message))
                }
                None => Err(internal("a part's body ended without a verdict")),
            }
        }
        .await;
        match written {
            Ok(done) => {
                tokio::fs::rename(&tmp, self.fs_part_path(upload_id, part_number))
                    .await
                    .map_err(internal)?;
                Ok(done)
            }
            Err(err) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                Err(err)
            }
        }
    }

    /// Completes a multipart upload whose parts all have recorded ETags: concatenates the part
    /// files into the object in the kernel (`copy_file_range`, no pass through user space),
    /// stores the ETag where s3s-fs serves it from, moves the upload's attributes (content type,
    /// user metadata) to the object and removes the upload. s3s-fs's own completion reads every
    /// byte back to compute MD5s it already computed once per part (or, for SSE-KMS, need not
    /// compute at all): a serial pass over the whole object at the end of every upload.
    async fn finish_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        e_tag: &str,
        parts: usize,
    ) -> S3Result<()> {
        if !tokio::fs::metadata(self.root.join(bucket))
            .await
            .is_ok_and(|m| m.is_dir())
        {
            return Err(s3_error!(NoSuchBucket));
        }
        let sources: Vec<PathBuf> = (1..=parts)
            .map(|n| self.fs_part_path(upload_id, n as i32))
            .collect();
        let (dest, tmp) = (self.object_path(bucket, key), self.temp_path());
        tokio::task::spawn_blocking(move || {
            let joined = (|| -> std::io::Result<()> {
                let mut out = std::fs::File::create(&tmp)?;
                for part in &sources {
                    // std uses copy_file_range for file-to-file copies on Linux.
                    std::io::copy(&mut std::fs::File::open(part)?, &mut out)?;
                }
                drop(out);
                if let Some(dir) = dest.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::rename(&tmp, &dest)
            })();
            if joined.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            joined
        })
        .await
        .map_err(internal)?
        .map_err(internal)?;

        let info_path = self.fs_object_file(bucket, key, ".internal.json");
        let mut info: serde_json::Map<String, serde_json::Value> =
            Self::read_json(&info_path).await?.unwrap_or_default();
        info.insert("e_tag".into(), e_tag.into());
        self.write_json(&info_path, &info).await?;
        let attributes =
            self.fs_object_file(bucket, key, &format!(".upload-{upload_id}.metadata.json"));
        match tokio::fs::rename(
            &attributes,
            self.fs_object_file(bucket, key, ".metadata.json"),
        )
        .await
        {
            Ok(()) => {}
            Err(err) if not_found(&err) => {}
            Err(err) => return Err(internal(err)),
        }
        Self::remove_file(&self.fs_upload_info_path(upload_id)).await?;
        for n in 1..=parts {
            Self::remove_file(&self.fs_part_path(upload_id, n as i32)).await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl S3 for Store {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.fs.create_bucket(req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.fs.delete_bucket(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.fs.head_bucket(req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.fs.get_bucket_location(req).await
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.fs.list_buckets(req).await
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        self.fs.list_objects(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.fs.list_objects_v2(req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let with_checksums = checksum_mode_enabled(req.input.checksum_mode.as_ref());
        let mut resp = self.fs.head_object(req).await?;
        let meta = self.object_meta(&bucket, &key).await?;
        let out = &mut resp.output;
        out.server_side_encryption = meta.sse.map(ServerSideEncryption::from);
        out.ssekms_key_id = meta.kms_key_id;
        if !with_checksums {
            put_checksums!(out, Checksums::default());
        } else if !meta.composite.is_empty() {
            put_checksums!(out, meta.composite);
            out.checksum_type = meta.checksum_type.map(ChecksumType::from);
        } else if !get_checksums!(out).is_empty() {
            out.checksum_type = Some(ChecksumType::from_static(ChecksumType::FULL_OBJECT));
        }
        Ok(resp)
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let whole = req.input.range.is_none() && req.input.part_number.is_none();
        let with_checksums = checksum_mode_enabled(req.input.checksum_mode.as_ref());
        let mut resp = self.fs.get_object(req).await?;
        let meta = self.object_meta(&bucket, &key).await?;
        let out = &mut resp.output;
        out.server_side_encryption = meta.sse.map(ServerSideEncryption::from);
        out.ssekms_key_id = meta.kms_key_id;
        if !with_checksums {
            put_checksums!(out, Checksums::default());
        } else if !meta.composite.is_empty() && whole {
            put_checksums!(out, meta.composite);
            out.checksum_type = meta.checksum_type.map(ChecksumType::from);
        } else if !get_checksums!(out).is_empty() {
            out.checksum_type = Some(ChecksumType::from_static(ChecksumType::FULL_OBJECT));
        }
        Ok(resp)
    }

    async fn put_object(
        &self,
        mut req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let input = &mut req.input;
        check_sse_request(
            input.server_side_encryption.as_ref(),
            input.ssekms_key_id.as_ref(),
        )?;
        let (bucket, key) = (input.bucket.clone(), input.key.clone());
        let meta = ObjectMeta {
            sse: sse_of(input.server_side_encryption.as_ref()),
            kms_key_id: input.ssekms_key_id.clone(),
            ..ObjectMeta::default()
        };
        let expect = Expectations::new(
            get_checksums!(input),
            input.content_md5.clone(),
            input.checksum_algorithm.as_ref(),
            &req.headers,
        )?;
        let verdict = match input.body.take() {
            Some(body) => {
                let (body, verdict) =
                    VerifyingBody::wrap(body, expect, req.trailing_headers.clone());
                input.body = Some(body);
                Some(verdict)
            }
            None => None,
        };

        let _guard = self.locks.lock(Self::object_lock_name(&bucket, &key)).await;
        let path = self.object_path(&bucket, &key);
        let existed = tokio::fs::try_exists(&path).await.map_err(internal)?;
        match self.fs.put_object(req).await {
            Ok(mut resp) => {
                self.set_object_meta(&bucket, &key, &meta).await?;
                let out = &mut resp.output;
                out.server_side_encryption = meta.sse.map(ServerSideEncryption::from);
                out.ssekms_key_id = meta.kms_key_id;
                if !get_checksums!(out).is_empty() {
                    out.checksum_type = Some(ChecksumType::from_static(ChecksumType::FULL_OBJECT));
                }
                Ok(resp)
            }
            Err(err) => {
                // s3s-fs 0.14 checks some things (Content-MD5 format, trailers) after the file is
                // in place: never leave an object a failed request created.
                if !existed && !key.ends_with('/') {
                    Self::remove_file(&path).await?;
                }
                match verdict.as_ref().and_then(take_verdict) {
                    Some(Verdict::Mismatch(message)) => {
                        Err(S3Error::with_message(S3ErrorCode::BadDigest, message))
                    }
                    _ => Err(err),
                }
            }
        }
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let _guard = self.locks.lock(Self::object_lock_name(&bucket, &key)).await;
        let resp = self.fs.delete_object(req).await?;
        if !tokio::fs::try_exists(self.object_path(&bucket, &key))
            .await
            .map_err(internal)?
        {
            Self::remove_file(&self.object_meta_path(&bucket, &key)).await?;
        }
        Ok(resp)
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let bucket = req.input.bucket.clone();
        let resp = self.fs.delete_objects(req).await?;
        for deleted in resp.output.deleted.iter().flatten() {
            if let Some(key) = &deleted.key
                && !tokio::fs::try_exists(self.object_path(&bucket, key))
                    .await
                    .map_err(internal)?
            {
                Self::remove_file(&self.object_meta_path(&bucket, key)).await?;
            }
        }
        Ok(resp)
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        check_sse_request(
            req.input.server_side_encryption.as_ref(),
            req.input.ssekms_key_id.as_ref(),
        )?;
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        // As on S3, the copy is encrypted as the request says, not as the source was.
        let meta = ObjectMeta {
            sse: sse_of(req.input.server_side_encryption.as_ref()),
            kms_key_id: req.input.ssekms_key_id.clone(),
            ..ObjectMeta::default()
        };
        let _guard = self.locks.lock(Self::object_lock_name(&bucket, &key)).await;
        let mut resp = self.fs.copy_object(req).await?;
        self.set_object_meta(&bucket, &key, &meta).await?;
        resp.output.server_side_encryption = meta.sse.map(ServerSideEncryption::from);
        resp.output.ssekms_key_id = meta.kms_key_id;
        Ok(resp)
    }

    async fn create_multipart_upload(
        &self,
        mut req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let input = &req.input;
        check_sse_request(
            input.server_side_encryption.as_ref(),
            input.ssekms_key_id.as_ref(),
        )?;
        if input
            .checksum_type
            .as_ref()
            .is_some_and(|t| t.as_str() == ChecksumType::FULL_OBJECT)
        {
            return Err(s3_error!(
                NotImplemented,
                "FULL_OBJECT multipart checksums are not supported by the local endpoint"
            ));
        }
        let algorithm = match &input.checksum_algorithm {
            None => None,
            Some(a) => Some(
                Alg::from_name(a.as_str())
                    .ok_or_else(|| {
                        s3_error!(InvalidArgument, "unknown checksum algorithm {}", a.as_str())
                    })?
                    .name()
                    .to_owned(),
            ),
        };
        let meta = UploadMeta {
            bucket: input.bucket.clone(),
            key: input.key.clone(),
            sse: sse_of(input.server_side_encryption.as_ref()),
            kms_key_id: input.ssekms_key_id.clone(),
            checksum_algorithm: algorithm,
        };
        // Uploads belong to their key, not to the access key (see the module docs).
        req.credentials = None;
        let mut resp = self.fs.create_multipart_upload(req).await?;
        let upload_id = resp
            .output
            .upload_id
            .clone()
            .ok_or_else(|| internal("s3s-fs returned no upload id"))?;
        self.write_json(&self.upload_dir(&upload_id).join("upload.json"), &meta)
            .await?;
        let out = &mut resp.output;
        out.server_side_encryption = meta.sse.map(ServerSideEncryption::from);
        out.ssekms_key_id = meta.kms_key_id;
        out.checksum_algorithm = meta.checksum_algorithm.map(ChecksumAlgorithm::from);
        if out.checksum_algorithm.is_some() {
            out.checksum_type = Some(ChecksumType::from_static(ChecksumType::COMPOSITE));
        }
        Ok(resp)
    }

    async fn upload_part(
        &self,
        mut req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let input = &mut req.input;
        let upload = self
            .upload(&input.upload_id, &input.bucket, &input.key)
            .await?;
        let (upload_id, part_number) = (input.upload_id.clone(), input.part_number);
        if !(1..=10_000).contains(&part_number) {
            return Err(s3_error!(
                InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive"
            ));
        }
        let mut expect = Expectations::new(
            get_checksums!(input),
            input.content_md5.clone(),
            input.checksum_algorithm.as_ref(),
            &req.headers,
        )?;
        // The upload's algorithm is recorded for every part, so Complete can always compose it.
        if let Some(alg) = upload
            .checksum_algorithm
            .as_deref()
            .and_then(Alg::from_name)
        {
            expect.also_compute(alg);
        }
        let body = input.body.take().ok_or_else(|| s3_error!(IncompleteBody))?;
        let (body, verdict) = VerifyingBody::wrap(body, expect, req.trailing_headers.clone());

        let _guard = self
            .locks
            .lock(format!("p\0{upload_id}\0{part_number}"))
            .await;
        let (e_tag, checksums, size) = if opaque_e_tags(upload.sse.as_deref()) {
            // No MD5 to compute: write the part here.
            let (checksums, size) = self
                .write_part(&upload_id, part_number, body, &verdict)
                .await?;
            (opaque_e_tag(), checksums, size)
        } else {
            input.body = Some(body);
            req.credentials = None;
            let result = self.fs.upload_part(req).await;
            match (result, take_verdict(&verdict)) {
                (Ok(resp), Some(Verdict::Verified(checksums, size))) => {
                    let e_tag =
                        resp.output.e_tag.map(ETag::into_value).ok_or_else(|| {
                            internal("s3s-fs acknowledged a part without an ETag")
                        })?;
                    (e_tag, checksums, size)
                }
                (Ok(_), _) => {
                    return Err(internal(
                        "s3s-fs acknowledged a part without reading all of it",
                    ));
                }
                (Err(_), Some(Verdict::Mismatch(message))) => {
                    return Err(S3Error::with_message(S3ErrorCode::BadDigest, message));
                }
                (Err(err), _) => return Err(err),
            }
        };
        let part = PartMeta {
            size,
            checksums,
            e_tag: Some(e_tag.clone()),
        };
        self.write_json(
            &self
                .upload_dir(&upload_id)
                .join(format!("part-{part_number}.json")),
            &part,
        )
        .await?;
        let mut resp = S3Response::new(UploadPartOutput {
            e_tag: Some(ETag::Strong(e_tag)),
            ..Default::default()
        });
        let out = &mut resp.output;
        put_checksums!(out, part.checksums);
        out.server_side_encryption = upload.sse.map(ServerSideEncryption::from);
        out.ssekms_key_id = upload.kms_key_id;
        Ok(resp)
    }

    async fn list_parts(
        &self,
        mut req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let upload = self
            .upload(&req.input.upload_id, &req.input.bucket, &req.input.key)
            .await?;
        let upload_id = req.input.upload_id.clone();
        req.credentials = None;
        let mut resp = self.fs.list_parts(req).await?;
        let out = &mut resp.output;
        let mut parts = out.parts.take().unwrap_or_default();
        parts.sort_by_key(|p| p.part_number);
        for part in &mut parts {
            let Some(number) = part.part_number else {
                continue;
            };
            if let Some(meta) = self.part(&upload_id, number).await? {
                put_checksums!(part, meta.checksums);
                part.e_tag = meta.e_tag.map(ETag::Strong);
            }
        }
        out.parts = Some(parts);
        out.checksum_algorithm = upload.checksum_algorithm.map(ChecksumAlgorithm::from);
        if out.checksum_algorithm.is_some() {
            out.checksum_type = Some(ChecksumType::from_static(ChecksumType::COMPOSITE));
        }
        Ok(resp)
    }

    async fn complete_multipart_upload(
        &self,
        mut req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let input = &req.input;
        let (bucket, key, upload_id) = (
            input.bucket.clone(),
            input.key.clone(),
            input.upload_id.clone(),
        );
        let _guard = self.locks.lock(Self::object_lock_name(&bucket, &key)).await;
        let upload = self.upload(&upload_id, &bucket, &key).await?;

        // Check what s3s-fs would only find out half-way through writing the object.
        let listed = input
            .multipart_upload
            .as_ref()
            .and_then(|m| m.parts.as_ref())
            .map(Vec::as_slice)
            .unwrap_or_default();
        if listed.is_empty() {
            return Err(s3_error!(
                InvalidRequest,
                "You must specify at least one part"
            ));
        }
        let mut stored = Vec::with_capacity(listed.len());
        for (i, part) in listed.iter().enumerate() {
            let number = part
                .part_number
                .ok_or_else(|| s3_error!(InvalidRequest, "missing part number"))?;
            if usize::try_from(number).ok() != Some(i + 1) {
                return Err(s3_error!(
                    InvalidPartOrder,
                    "The local endpoint needs the parts numbered 1, 2, 3, ... in order; got {number} at position {}.",
                    i + 1
                ));
            }
            let meta = self.part(&upload_id, number).await?.ok_or_else(|| {
                s3_error!(
                    InvalidPart,
                    "One or more of the specified parts could not be found: part {number}."
                )
            })?;
            if let (Some(sent), Some(ours)) = (part.e_tag.as_ref(), meta.e_tag.as_deref())
                && sent.value() != ours
            {
                return Err(s3_error!(
                    InvalidPart,
                    "The ETag of part {number} is not the one it was acknowledged with."
                ));
            }
            let sent = get_checksums!(part);
            for alg in Alg::ALL {
                if let Some(want) = sent.get(alg)
                    && meta.checksums.get(alg) != Some(want)
                {
                    return Err(s3_error!(
                        InvalidPart,
                        "The {} of part {number} does not match the checksum of the uploaded part.",
                        alg.header()
                    ));
                }
            }
            if i + 1 < listed.len() && meta.size < 5 * 1024 * 1024 {
                return Err(s3_error!(
                    EntityTooSmall,
                    "Part {number} is smaller than the minimum of 5 MiB."
                ));
            }
            stored.push(meta);
        }
        let checksums: Vec<&Checksums> = stored.iter().map(|p| &p.checksums).collect();
        let algs: Vec<Alg> = match upload
            .checksum_algorithm
            .as_deref()
            .and_then(Alg::from_name)
        {
            Some(alg) => vec![alg],
            None => Alg::ALL.to_vec(),
        };
        let mut whole = Checksums::default();
        for alg in algs {
            *whole.slot(alg) = composite(alg, &checksums);
        }
        let sent_whole = get_checksums!(input);
        for alg in Alg::ALL {
            if let Some(want) = sent_whole.get(alg)
                && whole.get(alg) != Some(want)
            {
                return Err(s3_error!(
                    BadDigest,
                    "The {} you specified does not match the composite checksum.",
                    alg.header()
                ));
            }
        }

        if let Some(ref condition) = input.if_none_match
            && condition.is_any()
            && tokio::fs::try_exists(self.object_path(&bucket, &key))
                .await
                .map_err(internal)?
        {
            return Err(s3_error!(PreconditionFailed, "Object already exists"));
        }
        let e_tags: Option<Vec<&str>> = stored.iter().map(|p| p.e_tag.as_deref()).collect();
        let e_tag = match e_tags {
            Some(_) if opaque_e_tags(upload.sse.as_deref()) => {
                Some(format!("{}-{}", opaque_e_tag(), stored.len()))
            }
            Some(e_tags) => multipart_md5_e_tag(&e_tags),
            None => None,
        };
        let mut resp = match e_tag {
            Some(e_tag) if input.if_match.is_none() => {
                self.finish_multipart(&bucket, &key, &upload_id, &e_tag, stored.len())
                    .await?;
                S3Response::new(CompleteMultipartUploadOutput {
                    bucket: Some(bucket.clone()),
                    key: Some(key.clone()),
                    e_tag: Some(ETag::Strong(e_tag)),
                    ..Default::default()
                })
            }
            // Parts recorded by an earlier version of this endpoint, or an If-Match condition:
            // s3s-fs completes it.
            _ => {
                req.credentials = None;
                let mut resp = self.fs.complete_multipart_upload(req).await?;
                // s3s-fs hands the result over as a future (for keep-alive bodies); it has done
                // its work already, so resolve it here and answer with a plain body and a real
                // status code.
                if let Some(future) = resp.output.future.take() {
                    resp.output = future.await?;
                }
                resp
            }
        };
        let meta = ObjectMeta {
            sse: upload.sse.clone(),
            kms_key_id: upload.kms_key_id.clone(),
            checksum_type: (!whole.is_empty()).then(|| ChecksumType::COMPOSITE.to_owned()),
            composite: whole,
        };
        self.set_object_meta(&bucket, &key, &meta).await?;
        if let Err(err) = tokio::fs::remove_dir_all(self.upload_dir(&upload_id)).await {
            tracing::warn!(%err, "local S3 endpoint: could not remove a finished upload's records");
        }
        let out = &mut resp.output;
        out.server_side_encryption = meta.sse.map(ServerSideEncryption::from);
        out.ssekms_key_id = meta.kms_key_id;
        out.checksum_type = meta.checksum_type.map(ChecksumType::from);
        put_checksums!(out, meta.composite);
        Ok(resp)
    }

    async fn abort_multipart_upload(
        &self,
        mut req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let upload_id = req.input.upload_id.clone();
        self.upload(&upload_id, &req.input.bucket, &req.input.key)
            .await?;
        req.credentials = None;
        let resp = self.fs.abort_multipart_upload(req).await?;
        if let Err(err) = tokio::fs::remove_dir_all(self.upload_dir(&upload_id)).await {
            tracing::warn!(%err, "local S3 endpoint: could not remove an aborted upload's records");
        }
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contractor_grant(store: &GrantStore) -> (Grant, String) {
        let id = "alice-01".parse().unwrap();
        let creds = store.mint(
            &id,
            "b-1",
            "us-east-1",
            "arn:aws:kms:us-east-1:123456789012:key/k",
            time::Duration::minutes(5),
        );
        (
            store.get(&creds.access_key_id).unwrap(),
            creds.session_token.expose_secret().to_owned(),
        )
    }

    #[test]
    fn keys_that_alias_other_paths_are_refused() {
        for ok in [
            "a",
            "raw/alice-01/x.wav.age",
            "raw/alice-01/",
            "a.b/..c/d..",
            "raw/..x",
        ] {
            assert!(key_is_plain(ok), "{ok}");
        }
        for bad in [
            "",
            "/a",
            "a//b",
            "raw/alice-01/../bob/x",
            "./a",
            "a/.",
            "a/..",
            "a//",
        ] {
            assert!(!key_is_plain(bad), "{bad}");
        }
    }

    #[test]
    fn an_announced_algorithm_needs_a_value() {
        let sha = ChecksumAlgorithm::from_static(ChecksumAlgorithm::SHA256);
        let err = Expectations::new(Checksums::default(), None, Some(&sha), &HeaderMap::new())
            .err()
            .unwrap();
        assert_eq!(err.code(), &S3ErrorCode::InvalidRequest);
        let mut trailer = HeaderMap::new();
        trailer.insert("x-amz-trailer", "x-amz-checksum-sha256".parse().unwrap());
        let e = Expectations::new(Checksums::default(), None, Some(&sha), &trailer).unwrap();
        assert_eq!(e.compute, [Alg::Sha256]);
    }

    #[test]
    fn presigned_urls_carry_the_token_in_the_query() {
        let store = GrantStore::new();
        let (grant, token) = contractor_grant(&store);
        let encoded: String = token.bytes().map(|b| format!("%{b:02X}")).collect();
        let query = format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Security-Token={encoded}&X-Amz-Signature=00"
        );
        let got = session_token(&HeaderMap::new(), Some(&query));
        assert_eq!(got.as_deref(), Some(token.as_str()));
        let mut headers = HeaderMap::new();
        headers.insert(SSE_HEADER, "aws:kms".parse().unwrap());
        headers.insert(
            SSE_KMS_KEY_HEADER,
            "arn:aws:kms:us-east-1:123456789012:key/k".parse().unwrap(),
        );
        let path = S3Path::object("b-1", "raw/alice-01/x");
        let now = OffsetDateTime::now_utc();
        assert!(authorize(&grant, now, "PutObject", &path, &headers, got.as_deref()).is_ok());
        let late = now + time::Duration::minutes(6);
        let err =
            authorize(&grant, late, "PutObject", &path, &headers, got.as_deref()).unwrap_err();
        assert_eq!(err.code(), &S3ErrorCode::ExpiredToken);
    }
}
