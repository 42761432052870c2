//! The one error type of the HTTP API: a stable JSON shape for clients, details only in the
//! server log.
//!
//! Every error body is `{"error":{"kind":"<kind>","message":"<text>"}}`; a `rate_limited` error
//! also carries `"retry_after_s":N` inside `error` (and a `Retry-After` header). Messages are fixed
//! texts: they never echo the request, so no code or token can leak through them.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An API error; see the module docs for the body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AppError {
    /// 400 `bad_request`: the body is not what the endpoint expects.
    BadRequest(&'static str),
    /// 413 `too_large`: the body is over the configured limit.
    TooLarge,
    /// 401 `unauthorized`: missing, malformed or unknown device token.
    Unauthorized,
    /// 401 `invalid_code`: malformed or unknown enrollment code.
    InvalidCode,
    /// 401 `expired_code`: the enrollment code has expired.
    ExpiredCode,
    /// 403 `revoked`: the contractor is revoked.
    Revoked,
    /// 408 `timeout`: the request's body or handling took longer than the broker allows.
    Timeout,
    /// 429 `rate_limited`: too many requests for this contractor, or too many refused requests
    /// from this client address.
    RateLimited {
        /// Seconds until the next request can succeed (at least 1).
        retry_after_s: u64,
    },
    /// 502 `upstream`: the credential service (STS) failed.
    Upstream,
    /// 404 `not_found`: no such route.
    NotFound,
    /// 405 `method_not_allowed`: the route exists but not with this method.
    MethodNotAllowed,
    /// 500 `internal`: the broker could not do its part (registry or audit log unavailable).
    Internal,
}

impl AppError {
    /// The machine-readable kind clients branch on.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::TooLarge => "too_large",
            Self::Unauthorized => "unauthorized",
            Self::InvalidCode => "invalid_code",
            Self::ExpiredCode => "expired_code",
            Self::Revoked => "revoked",
            Self::Timeout => "timeout",
            Self::RateLimited { .. } => "rate_limited",
            Self::Upstream => "upstream",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Internal => "internal",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unauthorized | Self::InvalidCode | Self::ExpiredCode => StatusCode::UNAUTHORIZED,
            Self::Revoked => StatusCode::FORBIDDEN,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Upstream => StatusCode::BAD_GATEWAY,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The human-readable message (fixed text, never request data).
    pub fn message(&self) -> &'static str {
        match self {
            Self::BadRequest(m) => m,
            Self::TooLarge => "the request body is too large",
            Self::Unauthorized => {
                "a valid device token is required (Authorization: Bearer vxt_...)"
            }
            Self::InvalidCode => "the enrollment code is not valid",
            Self::ExpiredCode => {
                "the enrollment code has expired; ask the project lead for a new one"
            }
            Self::Revoked => "this contractor's access has been revoked",
            Self::Timeout => "the request took too long; retry",
            Self::RateLimited { .. } => "too many requests; retry later",
            Self::Upstream => "the credential service is unavailable; retry later",
            Self::NotFound => "no such endpoint",
            Self::MethodNotAllowed => "method not allowed on this endpoint",
            Self::Internal => "the broker could not complete the request; retry later",
        }
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind(), self.message())
    }
}

impl std::error::Error for AppError {}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut error = json!({"kind": self.kind(), "message": self.message()});
        if let Self::RateLimited { retry_after_s } = self {
            error["retry_after_s"] = json!(retry_after_s);
        }
        let mut resp = (self.status(), axum::Json(json!({ "error": error }))).into_response();
        let headers = resp.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match self {
            Self::RateLimited { retry_after_s } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
            }
            Self::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        resp
    }
}
