//! The webhook server standalone, for load tests without an API server
//! (`scripts/bench-admission`): the same TLS server, router, reviewer, pod mutator and VPA
//! validator as `vpa-admission`, with the binary's flags and defaults, but the VPA index is
//! pre-filled with the benchmark fixture (10,000 VPAs in 1,000 namespaces, see
//! `benches/fixture`) instead of watches, the certificate is always generated in memory,
//! and nothing is registered. Listens on 127.0.0.1:`--port`.
//!
//! `--bodies-out FILE` writes `--bodies` pod CREATE AdmissionReviews (one compact JSON per
//! line, pods of different Deployments spread over the namespaces, each matched by one VPA)
//! once the port is bound, so the file's appearance means "ready". SIGTERM or SIGINT stops
//! it gracefully.
#![allow(missing_docs)]

/// mimalloc: fewer and cheaper allocations on the request path than glibc malloc (see
/// docs/benchmarks.md, Admission controller).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[allow(dead_code)]
#[path = "../benches/fixture/mod.rs"]
mod fixture;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow};
use clap::Parser;
use prometheus_client::registry::Registry;
use vpa_admission::config::Config;
use vpa_admission::hooks::Hooks;
use vpa_admission::metrics::AdmissionMetrics;
use vpa_admission::mutator::IndexMutator;
use vpa_admission::review::Reviewer;
use vpa_admission::server::{self, ServerSettings};
use vpa_admission::tls::{self, CertResolver};
use vpa_admission::validator::Validator;
use vpa_core::patch::PatchConfig;
use vpa_core::runtime::shutdown::Shutdown;

#[derive(Parser)]
struct Args {
    /// Write pod CREATE review bodies here, one per line, once listening.
    #[arg(long)]
    bodies_out: Option<PathBuf>,
    /// How many bodies to write.
    #[arg(long, default_value_t = 1000)]
    bodies: usize,
    #[command(flatten)]
    config: Config,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    args.config.log.init().context("logging")?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?
        .block_on(serve(args))
}

async fn serve(args: Args) -> Result<()> {
    let config = args.config;
    let index = fixture::index().map_err(|e| anyhow!(e))?;
    tracing::info!(vpas = index.read().len(), "VPA index filled");
    let hooks = Hooks::new(
        Arc::new(IndexMutator::new(index, PatchConfig::default())),
        Arc::new(Validator::default()),
    );
    let metrics = Arc::new(AdmissionMetrics::new(&mut Registry::default()));

    let provider = Arc::new(tls::provider(&tls::cipher_choice(&config.tls_ciphers)));
    let material = tls::generate(&tls::generated_sans("vpa-webhook", "kube-system", ""))?;
    let key = material.certified_key(&provider)?;
    let resolver = Arc::new(CertResolver::new(Arc::new(key)));
    let tls_config = tls::server_config(provider, config.min_tls_version, resolver)?;

    let listener = server::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, config.port)))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", config.port))?;
    let router = server::router(
        Arc::new(Reviewer::new(hooks)),
        metrics.clone(),
        config.body_read_timeout,
    );
    if let Some(path) = &args.bodies_out {
        let bodies = fixture::bodies(args.bodies).map_err(|e| anyhow!(e))?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bodies.join(&b'\n'))
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    }
    tracing::info!(port = config.port, "bench server listening (HTTPS)");
    let shutdown = Shutdown::with_signals().context("signal handlers")?;
    server::serve(
        listener,
        Arc::new(tls_config),
        router,
        ServerSettings {
            handshake_timeout: config.tls_handshake_timeout,
            header_read_timeout: config.header_read_timeout,
            body_read_timeout: config.body_read_timeout,
            drain_timeout: config.shutdown_timeout,
        },
        metrics,
        shutdown.cancelled_owned(),
    )
    .await;
    Ok(())
}
