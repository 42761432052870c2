//! `voxseal-broker`: reads its configuration, sets up JSON logging, binds and serves until
//! SIGINT or SIGTERM. Everything else lives in the library.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use voxseal_broker::config::{Config, IssuerKind};
use voxseal_broker::issuer::{Issuer, StsIssuer};
use voxseal_broker::serve::serve;
use voxseal_broker::{AppState, Settings};

/// Voxseal's token-vending service: enrollment codes -> device tokens -> short-lived,
/// prefix-scoped upload credentials.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Configuration file (TOML). Every key can also be set with VOXSEAL_BROKER_<KEY>.
    #[arg(long, env = "VOXSEAL_BROKER_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    // Before any token or credential is in memory: no core file can carry them.
    let hardening = voxseal_core::hardening::harden_process();
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("VOXSEAL_BROKER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .init();
    tracing::info!(
        rlimit_core_zero = hardening.rlimit_core_zero,
        not_dumpable = hardening.not_dumpable,
        "core-dump hardening applied"
    );
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "voxseal-broker stopped");
            eprintln!("voxseal-broker: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::load(args.config.as_deref())?;
    if config.issuer == IssuerKind::Local {
        return Err("issuer = \"local\" only works inside the demo stack (`voxseal dev-stack`), whose embedded S3 endpoint enforces its grants; this broker issues STS sessions: set issuer = \"sts\" and role_arn".into());
    }
    let issuer: Arc<dyn Issuer> = Arc::new(
        StsIssuer::from_environment(
            config.role_arn.as_deref().unwrap_or_default(),
            config.target.clone(),
            config.duration_secs,
            config.sts_endpoint.as_deref(),
        )
        .await?,
    );
    let state = AppState::with_limits(
        Settings::from(&config),
        config.client_limits.clone(),
        issuer,
    );
    let listener = tokio::net::TcpListener::bind(config.bind).await?;
    let addr = listener.local_addr()?;
    tracing::info!(
        %addr,
        issuer = state.issuer_name(),
        bucket = config.target.bucket(),
        region = config.target.region(),
        duration_secs = config.duration_secs,
        registry = %config.registry.display(),
        audit_log = %config.audit_log.display(),
        trusted_proxies = ?config.client_limits.trusted_proxies,
        max_connections = config.serve_limits.max_connections,
        "listening"
    );
    serve(listener, state, config.serve_limits, shutdown()).await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}
