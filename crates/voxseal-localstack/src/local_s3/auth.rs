//! Authentication and authorization: SigV4 keys and session tokens from the grant store, and what a contractor grant may do.

use hyper::HeaderMap;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::dto::ServerSideEncryption;
use s3s::path::S3Path;
use s3s::{S3Error, S3Result, s3_error};
use secrecy::ExposeSecret;
use time::OffsetDateTime;

use crate::grants::{Grant, GrantStore, Scope};

/// The only operations a contractor grant allows (what the session policy's actions cover).
pub(super) const CONTRACTOR_OPERATIONS: [&str; 6] = [
    "PutObject",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
    "AbortMultipartUpload",
    "ListParts",
];

pub(super) const SSE_HEADER: &str = "x-amz-server-side-encryption";
pub(super) const SSE_KMS_KEY_HEADER: &str = "x-amz-server-side-encryption-aws-kms-key-id";
pub(super) const SECURITY_TOKEN_HEADER: &str = "x-amz-security-token";

/// Looks keys up in the grant store (SigV4) and decides what each request may do.
pub(super) struct GrantGate {
    pub(super) grants: GrantStore,
}

pub(super) fn unknown_key() -> S3Error {
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
pub(super) fn session_token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(value) = headers.get(SECURITY_TOKEN_HEADER) {
        return Some(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(name, _)| name.eq_ignore_ascii_case("X-Amz-Security-Token"))
        .map(|(_, value)| value.into_owned())
}

/// A single-valued header, or an error when it is repeated.
pub(super) fn single_header<'h>(headers: &'h HeaderMap, name: &str) -> S3Result<Option<&'h str>> {
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
pub(super) fn key_is_plain(key: &str) -> bool {
    !key.is_empty()
        && key.split('/').enumerate().all(|(i, seg)| match seg {
            "." | ".." => false,
            // A trailing `/` is a directory marker; an empty segment anywhere else aliases.
            "" => i > 0 && key.ends_with('/') && i == key.split('/').count() - 1,
            _ => true,
        })
}

/// The decision for one request (see the module docs).
pub(super) fn authorize(
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
