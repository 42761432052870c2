//! Errors as the web view sees them: `{kind, message}`.

use serde::Serialize;

/// What kind of failure, for the UI to branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No device token.
    NotEnrolled,
    /// An enrollment code was refused.
    BadCode,
    /// The contractor was revoked.
    Revoked,
    /// The broker or storage is unreachable.
    Offline,
    /// No input device.
    NoDevice,
    /// The device failed.
    DeviceLost,
    /// Another operation is in progress.
    Busy,
    /// No take to act on.
    NoTake,
    /// A failing take needs explicit acceptance.
    QualityFailed,
    /// Consent first.
    NoConsent,
    /// The token file needs a passphrase.
    NeedsPassphrase,
    /// A project config was refused: bad signature, older serial, expired, another broker.
    ProjectRefused,
    /// The link is for another project than the installed one: switching is an explicit choice.
    OtherProject,
    /// An update did not verify against the updater key built into the app: not installed.
    UpdateRefused,
    /// Bad argument from the UI.
    InvalidInput,
    /// Disk full, permissions.
    Storage,
    /// Anything else.
    Internal,
}

/// An error for the UI: a kind and a message for people (no secrets, no paths outside the data
/// directory, no audio).
#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[error("{message}")]
pub struct AppError {
    /// For code.
    pub kind: ErrorKind,
    /// For people.
    pub message: String,
}

impl AppError {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// Result with [`AppError`].
pub type AppResult<T> = Result<T, AppError>;

impl From<voxseal_core::store::workspace::WorkspaceError> for AppError {
    fn from(e: voxseal_core::store::workspace::WorkspaceError) -> Self {
        use voxseal_core::store::workspace::WorkspaceError as W;
        let kind = match e {
            W::NoContractor(_) | W::NoProject(_) => ErrorKind::NotEnrolled,
            W::Io { .. } => ErrorKind::Storage,
            W::Refused(_) | W::Signature(_) | W::Config(_) => ErrorKind::ProjectRefused,
            _ => ErrorKind::Internal,
        };
        Self::new(kind, e.to_string())
    }
}

impl From<voxseal_core::capture::recorder::RecordError> for AppError {
    fn from(e: voxseal_core::capture::recorder::RecordError) -> Self {
        use voxseal_core::capture::audio::SourceError as S;
        use voxseal_core::capture::recorder::RecordError as R;
        let kind = match &e {
            R::Source(S::NoDevice | S::DeviceNotFound { .. }) => ErrorKind::NoDevice,
            R::Source(S::DeviceLost { .. }) => ErrorKind::DeviceLost,
            R::Source(_) => ErrorKind::NoDevice,
            R::Spool(_) => ErrorKind::Storage,
            R::Busy => ErrorKind::Busy,
            R::NoTake => ErrorKind::NoTake,
            _ => ErrorKind::Internal,
        };
        Self::new(kind, e.to_string())
    }
}

impl From<voxseal_cloud::provider::CredentialError> for AppError {
    fn from(e: voxseal_cloud::provider::CredentialError) -> Self {
        use voxseal_cloud::provider::CredentialError as C;
        let kind = match &e {
            C::Offline { .. } | C::RateLimited { .. } | C::Upstream(_) => ErrorKind::Offline,
            C::Unauthorized | C::NotEnrolled => ErrorKind::NotEnrolled,
            C::Revoked => ErrorKind::Revoked,
            C::BadCode(_) => ErrorKind::BadCode,
            _ => ErrorKind::Internal,
        };
        Self::new(kind, e.to_string())
    }
}

impl From<std::io::Error> for AppError {
    fn from(e: std::io::Error) -> Self {
        Self::new(ErrorKind::Storage, e.to_string())
    }
}

impl From<voxseal_core::store::audit::AuditError> for AppError {
    fn from(e: voxseal_core::store::audit::AuditError) -> Self {
        Self::new(ErrorKind::Storage, e.to_string())
    }
}
