//! The shared I/O glue of the three binaries (cargo feature `runtime`): everything a `main.rs`
//! needs around its own loop, with upstream's flag names and defaults.
//!
//! * [`telemetry`]: `--log-format`, klog's `--v`, `RUST_LOG`; installs the `tracing` subscriber.
//! * [`client`]: `--kubeconfig`, `--kube-api-qps`, `--kube-api-burst`; a rate-limited kube client.
//! * [`admin`]: the plain-HTTP admin server (`/healthz`, `/readyz`, `/health-check`, `/metrics`).
//! * [`shutdown`]: SIGTERM/SIGINT as a cloneable cancellation handle.
//! * [`target`]: a VPA targetRef to a pod selector (well-known controllers, `/scale`), cached.
//! * [`watch`]: the watch reconnect backoff and namespace-scoped `Api`s.
//! * [`vpa_index`]: VPAs, selectors, owners and LimitRanges in memory, for the webhook.
//! * [`process`]: crypto provider, logging, runtime and signals around a binary's `run`.
//! * [`lease`]: `--leader-elect*` and leader election on a `coordination.k8s.io/v1` Lease.
//!
//! A binary puts the argument groups into its `Config` with `#[command(flatten)]` and wires them
//! up like this (error handling shortened):
//!
//! ```no_run
//! use std::sync::{Arc, Mutex};
//! use clap::Parser;
//! use vpa_core::runtime::{admin, client, lease, shutdown::Shutdown, telemetry};
//!
//! #[derive(Parser)]
//! struct Config {
//!     #[command(flatten)]
//!     log: telemetry::LogArgs,
//!     #[command(flatten)]
//!     kube: client::KubeArgs,
//!     #[command(flatten)]
//!     leader: lease::LeaderElectionArgs,
//!     /// Address of the admin server.
//!     #[arg(long, default_value = ":8942")]
//!     address: String,
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // first: let _ = rustls::crypto::ring::default_provider().install_default();
//! let config = Config::parse();
//! config.log.init()?;
//! let shutdown = Shutdown::with_signals()?;
//! let client = client::client(&config.kube, "vpa-recommender", true).await?;
//!
//! let health = Arc::new(admin::Health::new(admin::HealthConfig::default()));
//! health.require("stores synced");
//! let registry = Arc::new(Mutex::new(prometheus_client::registry::Registry::default()));
//! let (addr, _server) = admin::serve(
//!     &config.address,
//!     admin::router(health.clone(), registry),
//!     shutdown.clone().cancelled_owned(),
//! )
//! .await?;
//! tracing::info!(%addr, "admin server listening");
//!
//! let guard = match config.leader.config("vpa-recommender-lease")? {
//!     Some(le) => match lease::LeaderElector::new(client.clone(), le)?.acquire(&shutdown).await {
//!         Some(guard) => Some(guard),
//!         None => return Ok(()), // shut down while waiting to lead
//!     },
//!     None => None,
//! };
//! tokio::select! {
//!     _ = shutdown.cancelled() => {}
//!     _ = lease::lost(guard.as_ref()) => return Err("leader election lost".into()),
//!     // _ = main_loop(client, health, ...) => {}
//! }
//! if let Some(guard) = guard {
//!     guard.release().await?;
//! }
//! # Ok(())
//! # }
//! ```

pub mod admin;
pub mod client;
pub mod lease;
pub mod process;
pub mod shutdown;
pub mod target;
pub mod telemetry;
pub mod vpa_index;
pub mod watch;
