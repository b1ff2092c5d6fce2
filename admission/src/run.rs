//! `vpa-admission` in a cluster: start-up, the long-running tasks, and shutdown.
//!
//! Order: validate flags → kube client → metrics and the admin server (`--address`;
//! `/readyz` requires `tls serving` plus whatever the hooks require) → the hooks (from the
//! caller's factory, which may start watches and add readiness conditions such as
//! `stores synced`) → certificates and the TLS listener on `--port` (`tls serving` becomes
//! ready) → certificate reloading → webhook registration (retried until it succeeds, then
//! re-applied when the CA changes) → the status Lease, renewed from then on.
//!
//! On SIGTERM/SIGINT: readiness turns false (`shutting down`), the server keeps serving for
//! `--shutdown-delay`, then closes the listener and lets in-flight requests finish (at most
//! `--shutdown-timeout`); the background tasks stop and the process exits 0.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};
use prometheus_client::registry::Registry;
use vpa_core::runtime::admin::{self, Health, HealthConfig};
use vpa_core::runtime::client as kube_client;
use vpa_core::runtime::shutdown::Shutdown;

use crate::config::Config;
use crate::hooks::Hooks;
use crate::metrics::AdmissionMetrics;
use crate::registration::{Registrar, WebhookSettings};
use crate::review::Reviewer;
use crate::server::{self, ServerSettings};
use crate::status_lease::StatusLease;
use crate::tls::{self, CertFiles};

/// Readiness condition: the HTTPS listener is bound with a certificate.
pub const TLS_SERVING: &str = "tls serving";
/// Readiness condition set at shutdown.
pub const SHUTTING_DOWN: &str = "shutting down";

/// What the hooks factory gets to build the mutator and validator.
pub struct Context<'a> {
    /// The flags.
    pub config: &'a Config,
    /// The API client (for watches; never call the API on the request path).
    pub client: kube::Client,
    /// Readiness: `health.require("stores synced")` now, `set_ready(.., true)` once synced.
    pub health: Arc<Health>,
    /// Register the hooks' own metrics here.
    pub registry: &'a mut Registry,
    /// Process shutdown, for the tasks the factory spawns.
    pub shutdown: Shutdown,
}

/// Runs the admission controller until `shutdown`. `make_hooks` builds the pod mutator and
/// the VPA validator; it runs inside the tokio runtime, before the listener is bound, and may
/// `tokio::spawn` (e.g. watches feeding an index).
pub async fn run<F>(config: Config, shutdown: Shutdown, make_hooks: F) -> Result<()>
where
    F: FnOnce(Context<'_>) -> Result<Hooks>,
{
    config.validate().context("invalid flags")?;
    let settings = if config.register_webhook {
        Some(WebhookSettings::from_config(&config).context("invalid webhook flags")?)
    } else {
        None
    };
    let client = kube_client::client(&config.kube, "vpa-admission", true)
        .await
        .context("cannot create the Kubernetes client")?;

    let mut registry = Registry::default();
    let metrics = Arc::new(AdmissionMetrics::new(&mut registry));
    // Upstream's admission controller never fails liveness.
    let health = Arc::new(Health::new(HealthConfig::default()));
    health.require(TLS_SERVING);
    let hooks = make_hooks(Context {
        config: &config,
        client: client.clone(),
        health: health.clone(),
        registry: &mut registry,
        shutdown: shutdown.clone(),
    })
    .context("cannot set up the admission hooks")?;
    if hooks.pods.is_none() {
        tracing::warn!("no pod mutator installed: pods are admitted unchanged");
    }
    if hooks.vpas.is_none() {
        tracing::warn!("no VPA validator installed: VPA objects are admitted unchanged");
    }
    let registry = Arc::new(Mutex::new(registry));

    // The admin server outlives the webhook server so /readyz reports the shutdown.
    let admin_stop = Shutdown::new();
    let (admin_addr, admin_task) = admin::serve(
        &config.address,
        admin::router(health.clone(), registry),
        admin_stop.clone().cancelled_owned(),
    )
    .await
    .with_context(|| format!("cannot serve the admin port --address={}", config.address))?;
    tracing::info!(address = %admin_addr, "admin server: /healthz /readyz /metrics");

    let choice = tls::cipher_choice(&config.tls_ciphers);
    if !choice.ignored.is_empty() {
        tracing::warn!(ignored = ?choice.ignored, "--tls-ciphers: names ignored (unknown or not supported by rustls)");
    }
    let provider = Arc::new(tls::provider(&choice));
    let files = CertFiles {
        cert: config.tls_cert_file.clone().into(),
        key: config.tls_private_key.clone().into(),
        ca: config.client_ca_file.clone().into(),
    };
    let sans = tls::generated_sans(
        &config.webhook_service,
        config.namespace(),
        &config.webhook_address,
    );
    let mut certs = tls::load(&files, &sans, provider.clone(), metrics.clone())
        .context("cannot load the serving certificate")?;
    if certs.generated {
        tracing::info!(
            ?sans,
            "no certificate files: serving a generated certificate with an in-memory CA (use one replica)"
        );
    } else if certs.ca_bundle.borrow().is_empty() && config.register_webhook {
        tracing::warn!(file = %config.client_ca_file, "no CA file: the webhook is registered without a caBundle");
    }
    let tls_config = tls::server_config(provider, config.min_tls_version, certs.resolver.clone())
        .context("invalid TLS settings")?;

    let listener = server::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, config.port)))
        .await
        .with_context(|| format!("cannot listen on --port={}", config.port))?;
    tracing::info!(port = config.port, "webhook listening (HTTPS)");
    let reviewer = Arc::new(Reviewer::new(hooks));
    let router = server::router(reviewer, metrics.clone(), config.body_read_timeout);
    let server_stop = Shutdown::new();
    let server_task = tokio::spawn(server::serve(
        listener,
        Arc::new(tls_config),
        router,
        ServerSettings {
            handshake_timeout: config.tls_handshake_timeout,
            header_read_timeout: config.header_read_timeout,
            body_read_timeout: config.body_read_timeout,
            drain_timeout: config.shutdown_timeout,
        },
        metrics.clone(),
        server_stop.clone().cancelled_owned(),
    ));
    health.set_ready(TLS_SERVING, true);

    if let Some(reloader) = certs.take_reloader() {
        tokio::spawn(reloader.run(
            config.tls_reload_interval,
            shutdown.clone().cancelled_owned(),
        ));
    }

    let background = {
        let shutdown = shutdown.clone();
        let ca_bundle = certs.ca_bundle.clone();
        let client = client.clone();
        let metrics = metrics.clone();
        let lease_namespace = config.status_lease_namespace().to_string();
        let lease_name = config.status_lease_name.clone();
        let interval = config.status_lease_update_interval;
        async move {
            if let Some(settings) = settings {
                let registrar = Registrar::new(client.clone(), settings, metrics.clone());
                let ca = ca_bundle.borrow().clone();
                if !registrar.register(&ca, shutdown.cancelled()).await {
                    return;
                }
                tokio::spawn(registrar.follow(ca_bundle, shutdown.clone().cancelled_owned()));
            }
            let holder = hostname::get()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "vpa-admission".to_string());
            tracing::info!(lease = %lease_name, namespace = %lease_namespace, %holder, "renewing the status Lease");
            StatusLease::new(
                client,
                &lease_namespace,
                &lease_name,
                &holder,
                interval,
                metrics,
            )
            .run(shutdown.cancelled())
            .await;
        }
    };
    let background = tokio::spawn(background);

    shutdown.cancelled().await;
    tracing::info!(reason = ?shutdown.reason(), delay = ?config.shutdown_delay, "shutting down");
    health.set_not_ready(SHUTTING_DOWN, "the process is stopping");
    if !config.shutdown_delay.is_zero() {
        tokio::time::sleep(config.shutdown_delay).await;
    }
    server_stop.trigger("shutdown");
    if let Err(e) = server_task.await {
        tracing::error!(error = %e, "webhook server task failed");
    }
    background.abort();
    admin_stop.trigger("shutdown");
    let _ = admin_task.await;
    tracing::info!("stopped");
    Ok(())
}

/// The process entry point: crypto provider, logging, tokio runtime, signals, [`run`].
pub fn main<F>(config: Config, make_hooks: F) -> Result<()>
where
    F: FnOnce(Context<'_>) -> Result<Hooks>,
{
    vpa_core::runtime::process::run_until_signal(&config.log.clone(), |shutdown| {
        run(config, shutdown, make_hooks)
    })
}

/// Readiness condition: the VPA index has listed everything and resolved the selectors once.
pub const STORES_SYNCED: &str = "stores synced";

/// The webhook's hooks: the VPA index (watches started here, stopped at shutdown) behind the
/// pod mutator, and the VPA validator. `/readyz` waits for the index.
pub fn vpa_hooks(ctx: Context<'_>) -> Result<Hooks> {
    use vpa_core::runtime::target::{ResolverOptions, TargetResolver};
    use vpa_core::runtime::vpa_index::{self, IndexOptions};

    let gates = vpa_core::features::FeatureGates::parse(&ctx.config.feature_gates)
        .map_err(anyhow::Error::msg)?;
    let resolver = TargetResolver::new(ctx.client.clone(), ResolverOptions::default());
    let opts = IndexOptions {
        namespace: (!ctx.config.vpa_object_namespace.is_empty())
            .then(|| ctx.config.vpa_object_namespace.clone()),
    };
    let (index, watches) = vpa_index::start(&ctx.client, resolver, &opts);
    let stop = ctx.shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = watches => {}
            () = stop.cancelled() => {}
        }
    });
    ctx.health.require(STORES_SYNCED);
    let (health, synced) = (ctx.health.clone(), index.clone());
    let stop = ctx.shutdown.clone();
    tokio::spawn(async move {
        while !synced.is_synced() {
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                () = stop.cancelled() => return,
            }
        }
        tracing::info!(vpas = synced.read().len(), "VPA index synced");
        health.set_ready(STORES_SYNCED, true);
    });
    let config = vpa_core::patch::PatchConfig {
        cpu_startup_boost: gates.cpu_startup_boost,
        max_allowed_cpu_boost: ctx
            .config
            .max_allowed_cpu_boost
            .filter(|m| *m > 0)
            .map(vpa_core::quantity::Quantity::from_millis),
    };
    Ok(Hooks::new(
        Arc::new(crate::mutator::IndexMutator::new(index, config)),
        Arc::new(crate::validator::Validator::new(gates)),
    ))
}
