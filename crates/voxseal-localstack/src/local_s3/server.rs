//! The HTTP server: listening on 127.0.0.1, serving connections, shutting down.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::grants::GrantStore;

use super::auth::*;
use super::store::*;

/// How long [`LocalS3::shutdown`] waits for open requests before cutting connections.
pub(super) const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

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
    DiskStore(String),
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> LocalS3Error + '_ {
    move |source| LocalS3Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// A running local S3 endpoint. Stops when [`shutdown`](LocalS3::shutdown) is awaited or when it
/// is dropped (then in the background).
#[derive(Debug)]
pub struct LocalS3 {
    pub(super) addr: SocketAddr,
    pub(super) root: PathBuf,
    pub(super) stop: watch::Sender<bool>,
    pub(super) server: Option<JoinHandle<()>>,
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
        let store = DiskStore::open(&root).await?;

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
pub(super) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

pub(super) async fn serve(
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

pub(super) async fn serve_connection(
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
