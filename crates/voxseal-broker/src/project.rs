//! `POST /v1/project`: the lead-signed project config, for an app that is about to enroll (it
//! holds a valid one-time code) or is enrolled (it holds a device token).
//!
//! The broker only hands the config out; it cannot change it: the app verifies the signature
//! against the lead key pinned in its build, and refuses an older serial or an expired config.
//! The files are read on each request, so a config the lead re-signs is served at once.
//! Refusals cost the client address's refusal budget (the app's guard); a contractor's own
//! bucket is charged only after their token verified, so an old link cannot lock them out.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use voxseal_core::project::ids::ContractorId;

use crate::app::{AppState, ClientIp, EVENT_PROJECT_SERVED, bearer, body_error, is_json, ok_json};
use crate::error::AppError;
use crate::registry::{self, RedeemError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectRequest {
    code: Option<String>,
}

/// The handler.
pub(crate) async fn serve(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match serve_inner(&st, &headers, body).await {
        Ok((contractor, config, signature)) => {
            let details = json!({
                "outcome": "served",
                "contractor": contractor,
                "source_ip": ip.map(|i| i.to_string()),
            });
            if st.audit(EVENT_PROJECT_SERVED, details).await.is_err() {
                return AppError::Internal.into_response();
            }
            ok_json(json!({ "config": config, "signature": signature, "contractor": contractor }))
        }
        Err(e) => e.into_response(),
    }
}

async fn serve_inner(
    st: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(ContractorId, String, String), AppError> {
    let path = st.project_path().ok_or(AppError::NotFound)?.to_owned();
    let body = body.map_err(body_error)?;
    let req = if body.iter().all(u8::is_ascii_whitespace) {
        ProjectRequest { code: None }
    } else {
        if !is_json(headers) {
            return Err(AppError::BadRequest(
                "expected Content-Type: application/json",
            ));
        }
        serde_json::from_slice(&body).map_err(|_| {
            AppError::BadRequest("expected {\"code\": \"vxe_...\"} or a bearer device token")
        })?
    };
    let contractor = match (req.code, bearer(headers)) {
        (Some(code), _) => check_code(st, code).await?,
        (None, Some(token)) => check_token(st, token.to_owned()).await?,
        (None, None) => return Err(AppError::Unauthorized),
    };
    let read = |p: std::path::PathBuf| {
        std::fs::read_to_string(&p).map_err(|e| {
            tracing::error!(file = %p.display(), error = %e, "project config unavailable");
            AppError::Internal
        })
    };
    let config = read(path.clone())?;
    let signature = read(voxseal_core::project::signing::sig_path(&path))?;
    Ok((contractor, config, signature))
}

async fn check_code(st: &AppState, code: String) -> Result<ContractorId, AppError> {
    let (lookup, _) = registry::parse_code(&code).ok_or(AppError::InvalidCode)?;
    let snap = st.snapshot()?;
    snap.code_contractor(&lookup).ok_or(AppError::InvalidCode)?;
    match st.argon2(move || snap.check_code(&code)).await? {
        Ok(c) => Ok(c),
        Err(RedeemError::ExpiredCode(_)) => Err(AppError::ExpiredCode),
        Err(RedeemError::Revoked(_)) => Err(AppError::Revoked),
        Err(_) => Err(AppError::InvalidCode),
    }
}

async fn check_token(st: &AppState, token: String) -> Result<ContractorId, AppError> {
    let snap = st.snapshot()?;
    let lookup = registry::token_lookup_id(&token).ok_or(AppError::Unauthorized)?;
    snap.token_entry(lookup).ok_or(AppError::Unauthorized)?;
    match st.argon2(move || snap.authenticate(&token)).await? {
        Ok(c) => {
            st.rate_limit(&c)?;
            Ok(c)
        }
        Err(registry::AuthError::Revoked(_)) => Err(AppError::Revoked),
        Err(_) => Err(AppError::Unauthorized),
    }
}
