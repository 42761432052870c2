//! Updates. A release build (`pinned`, which turns on `updater`) asks its update endpoint for a
//! newer version, downloads it, and verifies it against the updater key pinned at build time
//! (`VOXSEAL_UPDATER_PUBKEY`) with the signed version bound to the announced one; only then
//! does it offer to install. Builds without the feature offer no updates.
//!
//! The endpoint is `VOXSEAL_UPDATE_URL`, set at build time; the same variable at run time
//! overrides it (a mirror, or a test server). Only the key is trusted, never the address.

use tauri::AppHandle;
use tauri::ipc::Channel;
use voxseal_app::{AppError, ErrorKind};

use crate::CommandResult;

// The IPC values (generated into the UI's bindings with the others).
pub use voxseal_app::types::{DownloadProgress, UpdateOffer};

#[cfg(feature = "updater")]
pub use enabled::{Updates, check, download, install, plugin};

#[cfg(not(feature = "updater"))]
pub use disabled::{Updates, check, download, install};

#[cfg(feature = "updater")]
mod enabled {
    use std::sync::{Mutex, MutexGuard};

    use tauri::Runtime;
    use tauri::plugin::TauriPlugin;
    use tauri_plugin_updater::{Update, UpdaterExt};

    use super::*;

    /// The updater's public key (`tauri signer generate`), pinned into this build.
    const PUBKEY: &str = env!("VOXSEAL_UPDATER_PUBKEY");
    /// The endpoint built in, if any.
    const BUILT_IN_URL: Option<&str> = option_env!("VOXSEAL_UPDATE_URL");

    /// The update on offer, and its verified bytes once downloaded.
    #[derive(Default)]
    pub struct Updates {
        offered: Mutex<Option<Update>>,
        verified: Mutex<Option<Vec<u8>>>,
    }

    fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The updater plugin with the pinned key (whatever the config file says).
    pub fn plugin<R: Runtime>() -> TauriPlugin<R, tauri_plugin_updater::Config> {
        tauri_plugin_updater::Builder::new().pubkey(PUBKEY).build()
    }

    fn endpoint() -> Option<String> {
        std::env::var("VOXSEAL_UPDATE_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .or_else(|| BUILT_IN_URL.map(str::to_owned))
    }

    /// Asks the endpoint for a newer version (`None`: up to date, or no endpoint in this build).
    pub async fn check(app: &AppHandle, updates: &Updates) -> CommandResult<Option<UpdateOffer>> {
        let Some(url) = endpoint() else {
            return Ok(None);
        };
        let url = url.parse().map_err(|e| {
            AppError::new(
                ErrorKind::InvalidInput,
                format!("the update address {url:?} is not a URL ({e}): check VOXSEAL_UPDATE_URL"),
            )
        })?;
        let updater = app
            .updater_builder()
            .endpoints(vec![url])
            .and_then(|b| b.build())
            .map_err(|e| AppError::new(ErrorKind::InvalidInput, e.to_string()))?;
        let update = updater.check().await.map_err(|e| {
            AppError::new(
                ErrorKind::Offline,
                format!("could not check for updates: {e}; try again later"),
            )
        })?;
        let offer = update.as_ref().map(offer_of);
        *lock(&updates.offered) = update;
        *lock(&updates.verified) = None;
        Ok(offer)
    }

    fn offer_of(u: &Update) -> UpdateOffer {
        UpdateOffer {
            version: u.version.clone(),
            current_version: u.current_version.clone(),
            notes: u.body.clone(),
        }
    }

    /// Downloads the offered update and verifies its signature; keeps it for [`install`].
    pub async fn download(
        updates: &Updates,
        on_progress: Channel<DownloadProgress>,
    ) -> CommandResult<UpdateOffer> {
        let update = lock(&updates.offered).clone().ok_or_else(nothing_offered)?;
        let mut done = 0u64;
        let bytes = update
            .download(
                |n, total| {
                    done += n as u64;
                    let _ = on_progress.send(DownloadProgress { done, total });
                },
                || {},
            )
            .await
            .map_err(download_error)?;
        *lock(&updates.verified) = Some(bytes);
        Ok(offer_of(&update))
    }

    /// Installs the verified update (checked again before it is written; the package manager
    /// may ask for the administrator's password) and restarts.
    pub async fn install(app: &AppHandle, updates: &Updates) -> CommandResult<()> {
        let update = lock(&updates.offered).clone().ok_or_else(nothing_offered)?;
        let bytes = lock(&updates.verified).take().ok_or_else(|| {
            AppError::new(
                ErrorKind::InvalidInput,
                "the update is not downloaded and verified yet",
            )
        })?;
        let installed = tauri::async_runtime::spawn_blocking(move || update.install(&bytes))
            .await
            .map_err(|e| AppError::new(ErrorKind::Internal, e.to_string()))?;
        installed.map_err(|e| {
            AppError::new(
                ErrorKind::Storage,
                format!(
                    "the update could not be installed: {e}; install it from a verified release"
                ),
            )
        })?;
        app.restart()
    }

    fn nothing_offered() -> AppError {
        AppError::new(
            ErrorKind::InvalidInput,
            "no update is on offer: check for updates first",
        )
    }

    /// A signature that does not verify is a refusal the contractor must see as such; anything
    /// else is the network.
    fn download_error(e: tauri_plugin_updater::Error) -> AppError {
        use tauri_plugin_updater::Error as E;
        match e {
            E::Minisign(_)
            | E::Base64(_)
            | E::SignatureUtf8(_)
            | E::SignedVersionMismatch { .. }
            | E::MissingSignedVersion => AppError::new(
                ErrorKind::UpdateRefused,
                format!("signature check: {e}; the download was discarded"),
            ),
            other => AppError::new(
                ErrorKind::Offline,
                format!("the update could not be downloaded: {other}; try again later"),
            ),
        }
    }
}

#[cfg(not(feature = "updater"))]
mod disabled {
    use super::*;

    /// Nothing: this build does not update itself.
    #[derive(Default)]
    pub struct Updates {
        _none: (),
    }

    fn no_updater() -> AppError {
        AppError::new(
            ErrorKind::InvalidInput,
            "this build does not update itself: install new versions from a verified release",
        )
    }

    /// No updates in this build.
    pub async fn check(_: &AppHandle, _: &Updates) -> CommandResult<Option<UpdateOffer>> {
        Ok(None)
    }

    /// Refused: this build has no updater.
    pub async fn download(_: &Updates, _: Channel<DownloadProgress>) -> CommandResult<UpdateOffer> {
        Err(no_updater())
    }

    /// Refused: this build has no updater.
    pub async fn install(_: &AppHandle, _: &Updates) -> CommandResult<()> {
        Err(no_updater())
    }
}
