//! How a binary's long-running mode starts: the rustls crypto provider, logging, a
//! multi-threaded tokio runtime and SIGTERM/SIGINT handling, then the binary's own `run`.

use super::shutdown::Shutdown;
use super::telemetry::{LogArgs, TelemetryError};
use std::future::Future;

/// Why the process could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `--log-format`, `--v` or `RUST_LOG` cannot be used.
    #[error("cannot set up logging: {0}")]
    Logging(#[from] TelemetryError),
    /// The tokio runtime could not be built.
    #[error("cannot start the tokio runtime: {0}")]
    Runtime(std::io::Error),
    /// The signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

/// Installs the ring crypto provider (if none is), initialises logging from `log`, and runs
/// `body` on a new multi-threaded runtime with a [`Shutdown`] that SIGTERM/SIGINT cancel.
pub fn run_until_signal<F, Fut, T, E>(log: &LogArgs, body: F) -> Result<T, E>
where
    F: FnOnce(Shutdown) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: From<StartError>,
{
    // Err means a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    log.init().map_err(StartError::from)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(StartError::Runtime)?;
    runtime.block_on(async {
        let shutdown = Shutdown::with_signals().map_err(StartError::Signals)?;
        body(shutdown).await
    })
}
