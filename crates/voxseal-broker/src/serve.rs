//! Serving the router over TCP with limits a slow or greedy client cannot get around: a cap on
//! open connections (in total and per client address), a deadline for each request's headers,
//! and a periodic flush of the aggregated refusal counts into the audit log.
//!
//! Request bodies and handling have their own deadline inside the router
//! ([`ClientLimits::request_timeout`](crate::ClientLimits)).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::{AppState, app};

/// How long requests in flight may take to finish after shutdown is asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Connection limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Open connections at most; further connections are closed at once. Default 1024.
    pub max_connections: usize,
    /// Open connections per client address at most (not applied to trusted proxies). Default 32.
    pub max_connections_per_address: usize,
    /// Time allowed for a request's headers, and for an idle connection's next request.
    /// Default 10 s.
    pub header_timeout: Duration,
    /// How often counted refusals are written to the audit log. Default 60 s.
    pub flush_interval: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_connections_per_address: 32,
            header_timeout: Duration::from_secs(10),
            flush_interval: Duration::from_secs(60),
        }
    }
}

/// Open connections per address; each entry is removed with its last connection.
#[derive(Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

/// One open connection's place in [`PerAddress`], given back on drop.
struct Slot {
    table: Arc<PerAddress>,
    address: Option<IpAddr>,
}

impl PerAddress {
    fn enter(self: &Arc<Self>, address: IpAddr, max: usize, counted: bool) -> Option<Slot> {
        if !counted {
            return Some(Slot {
                table: self.clone(),
                address: None,
            });
        }
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(address).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            table: self.clone(),
            address: Some(address),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(a) = self.address else { return };
        let mut map = self.table.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&a) {
            *n -= 1;
            if *n == 0 {
                map.remove(&a);
            }
        }
    }
}

/// Serves the broker on `listener` until `shutdown` resolves, then lets requests in flight finish
/// (up to 10 s) and writes the last refusal counts.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()>,
) {
    let router = app(state.clone());
    let (stop_tx, stop) = watch::channel(false);
    let total = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = Arc::new(PerAddress::default());
    let mut connections = JoinSet::new();
    let mut flush = tokio::time::interval(limits.flush_interval);
    flush.tick().await;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = flush.tick() => state.flush_refusals().await,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let counted = !state.is_trusted_proxy(peer.ip());
                    let admitted = total.clone().try_acquire_owned().ok().zip(
                        per_address.enter(peer.ip(), limits.max_connections_per_address, counted),
                    );
                    let Some(permits) = admitted else {
                        tracing::debug!(%peer, "connection refused: too many open connections");
                        drop(socket);
                        continue;
                    };
                    let router = router.clone();
                    let stop = stop.clone();
                    connections.spawn(async move {
                        serve_connection(socket, peer, router, limits.header_timeout, stop).await;
                        drop(permits);
                    });
                }
                Err(err) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        connections.abort_all();
    }
    state.flush_refusals().await;
}

/// Resolves once shutdown is asked for.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn serve_connection(
    socket: tokio::net::TcpStream,
    peer: SocketAddr,
    router: axum::Router,
    header_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        router.clone().oneshot(req.map(axum::body::Body::new))
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(socket), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(err) = result {
                tracing::debug!(%err, %peer, "connection ended with an error");
            }
        }
        () = stopped(&mut stop) => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.as_mut().await;
        }
    }
}
