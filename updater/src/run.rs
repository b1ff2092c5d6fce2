//! `vpa-updater` in a cluster: start-up (client, admin server, watches), leadership, the loop
//! every `--updater-interval`, and shutdown.
//!
//! Each loop: when `--use-admission-controller-status` is on, GET the admission
//! controller's status Lease and do nothing unless it is fresh ([`admission_status_valid`]);
//! then build the loop's snapshot from the caches and run [`Updater::run_once`] with a
//! deadline of one interval. `/healthz` fails when no loop has completed for five intervals
//! (upstream's check); `/readyz` waits for the caches. A standby (leader election on) keeps
//! its caches warm and stays healthy. On SIGTERM/SIGINT the loop stops before its next
//! action, the lease is released and the process exits 0.

use crate::actuator::{KubeActuator, wall_clock};
use crate::config::{Config, LEADER_ELECTION_DEFAULT_NAME};
use crate::cycle::Updater;
use crate::liveness::admission_status_valid;
use crate::metrics::{LoopResult, UpdaterMetrics};
use crate::snapshot;
use crate::stores::Stores;
use anyhow::{Context as _, Result};
use k8s_openapi::api::coordination::v1::Lease;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use vpa_core::checkpoint::from_time;
use vpa_core::runtime::admin::{self, Health, HealthConfig};
use vpa_core::runtime::client as kube_client;
use vpa_core::runtime::lease::{self, LeaderElector};
use vpa_core::runtime::shutdown::Shutdown;
use vpa_core::runtime::target::{ResolverOptions, TargetResolver};
use vpa_core::runtime::vpa_index::{self, IndexOptions, VpaIndex};
use vpa_core::time::Timestamp;

/// Readiness condition: the caches and the VPA index have listed once.
pub const STORES_SYNCED: &str = "stores synced";

/// Where the admission controller's status Lease is, and how long it stays fresh.
#[derive(Debug, Clone)]
struct StatusGate {
    namespace: String,
    name: String,
    timeout: vpa_core::time::Duration,
}

/// `Ok` when the admission controller's status Lease is fresh; otherwise why the loop must
/// do nothing.
async fn admission_status(
    client: &kube::Client,
    gate: &StatusGate,
    now: Timestamp,
) -> Result<(), String> {
    let api: kube::Api<Lease> = kube::Api::namespaced(client.clone(), &gate.namespace);
    // Upstream: three tries 100 ms apart for retryable errors.
    let mut attempt = 0;
    let lease = loop {
        match api.get(&gate.name).await {
            Ok(l) => break l,
            Err(kube::Error::Api(s)) if s.code < 500 && s.code != 429 => {
                return Err(format!(
                    "cannot read the status Lease: {} {}",
                    s.code, s.message
                ));
            }
            Err(e) if attempt >= 2 => return Err(format!("cannot read the status Lease: {e}")),
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    };
    let created = from_time(lease.metadata.creation_timestamp.as_ref());
    let renewed = lease
        .spec
        .as_ref()
        .and_then(|s| s.renew_time.as_ref())
        .map(|t| {
            Timestamp::from_unix_nanos(i64::try_from(t.0.as_nanosecond()).unwrap_or(i64::MAX))
        });
    if admission_status_valid(created, renewed, gate.timeout, now) {
        Ok(())
    } else {
        Err(format!(
            "the admission controller status Lease {}/{} is stale",
            gate.namespace, gate.name
        ))
    }
}

fn std_duration(d: vpa_core::time::Duration) -> std::time::Duration {
    std::time::Duration::from_nanos(u64::try_from(d.as_nanos()).unwrap_or(60_000_000_000))
}

/// Everything one loop reads.
struct LoopContext<'a> {
    config: &'a Config,
    client: &'a kube::Client,
    index: &'a VpaIndex,
    stores: &'a Stores,
    metrics: Arc<UpdaterMetrics>,
    actuator: &'a KubeActuator,
    gate: Option<StatusGate>,
}

async fn one_loop(ctx: &LoopContext<'_>, updater: &mut Updater) {
    let started = Instant::now();
    let now = wall_clock();
    let deadline = now.add(ctx.config.updater_interval);
    if let Some(gate) = &ctx.gate
        && let Err(why) = admission_status(ctx.client, gate, now).await
    {
        tracing::warn!(
            "{why}; skipping this loop (no pod is updated without a working admission controller)"
        );
        ctx.metrics.loop_ended(LoopResult::Skipped);
        return;
    }
    let pods = ctx.stores.pods.state();
    let inputs = snapshot::build(
        ctx.index,
        pods.iter().map(|p| p.as_ref()),
        |ns, owner| ctx.stores.replicas(ns, owner),
        &ctx.config.namespace_filter(),
    );
    drop(pods);
    let built = started.elapsed();
    ctx.metrics.observe_step("snapshot", built.as_secs_f64());
    let report = updater.run_once(&inputs, ctx.actuator, now, deadline).await;
    let total = started.elapsed();
    ctx.metrics
        .observe_step("act", (total.saturating_sub(built)).as_secs_f64());
    ctx.metrics.observe_step("total", total.as_secs_f64());
    tracing::info!(
        vpas = report.vpas,
        pods = report.pods,
        evicted = report.evicted,
        eviction_failures = report.eviction_failures,
        resized = report.resized,
        resize_failures = report.resize_failures,
        skipped = report.skipped,
        aborted = report.aborted.as_deref().unwrap_or(""),
        seconds = total.as_secs_f64(),
        "loop done"
    );
}

/// Runs the updater until `shutdown`.
pub async fn run(config: Config, shutdown: Shutdown) -> Result<()> {
    config
        .validate()
        .map_err(anyhow::Error::msg)
        .context("invalid flags")?;
    let settings = config.settings().map_err(anyhow::Error::msg)?;
    let election = config
        .leader
        .config(LEADER_ELECTION_DEFAULT_NAME)
        .context("invalid leader election flags")?;
    // No retry layer: a refused eviction must come back at once (the loop retries).
    let client = kube_client::client(&config.kube, "vpa-updater", false)
        .await
        .context("cannot create the Kubernetes client")?;
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Arc::new(UpdaterMetrics::new(&mut registry));
    let registry = Arc::new(Mutex::new(registry));
    let interval = std_duration(config.updater_interval);
    let health = Arc::new(Health::new(HealthConfig {
        max_activity_age: Some(interval * 5),
        startup_grace: interval,
    }));
    health.require(STORES_SYNCED);
    let (bound, _admin_task) = admin::serve(
        &config.address,
        admin::router(health.clone(), registry),
        shutdown.clone().cancelled_owned(),
    )
    .await
    .with_context(|| format!("cannot serve the admin port --address={}", config.address))?;
    tracing::info!(address = %bound, "admin server: /healthz /readyz /metrics");

    let namespace =
        (!config.vpa_object_namespace.is_empty()).then(|| config.vpa_object_namespace.clone());
    let resolver = TargetResolver::new(client.clone(), ResolverOptions::default());
    let (index, index_watches) = vpa_index::start(
        &client,
        resolver,
        &IndexOptions {
            namespace: namespace.clone(),
        },
    );
    let (stores, store_watches) = Stores::start(&client, namespace.as_deref());
    let watches = tokio::spawn(async move {
        tokio::join!(index_watches, store_watches);
    });
    let synced = async {
        stores.wait_synced().await?;
        while !index.is_synced() {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Ok::<_, kube::runtime::reflector::store::WriterDropped>(())
    };
    tokio::select! {
        r = synced => r.context("a watch ended before its cache synced")?,
        () = shutdown.cancelled() => return Ok(()),
    }
    health.set_ready(STORES_SYNCED, true);
    tracing::info!(
        vpas = index.read().len(),
        pods = stores.pods.state().len(),
        "caches synced"
    );

    let gate = config.use_admission_controller_status.then(|| StatusGate {
        namespace: config.status_lease_namespace(std::env::var("NAMESPACE").ok().as_deref()),
        name: config.admission_controller_status_lease_name.clone(),
        timeout: config.admission_controller_status_lease_timeout,
    });
    if let Some(g) = &gate {
        tracing::info!(namespace = %g.namespace, name = %g.name, "acting only while the admission controller status Lease is fresh");
    }
    let instance = hostname::get()
        .ok()
        .map(|h| h.to_string_lossy().into_owned());
    let actuator = KubeActuator::new(client.clone(), instance);
    let ctx = LoopContext {
        config: &config,
        client: &client,
        index: &index,
        stores: &stores,
        metrics: metrics.clone(),
        actuator: &actuator,
        gate,
    };
    let result = leadership_terms(&ctx, &election, &health, &shutdown, settings, interval).await;
    watches.abort();
    result
}

async fn leadership_terms(
    ctx: &LoopContext<'_>,
    election: &Option<vpa_core::runtime::lease::LeaderElectionConfig>,
    health: &Health,
    shutdown: &Shutdown,
    settings: crate::settings::UpdaterSettings,
    interval: std::time::Duration,
) -> Result<()> {
    loop {
        let guard = match election {
            Some(config) => {
                let elector = LeaderElector::new(ctx.client.clone(), config.clone())
                    .context("leader election")?;
                tracing::info!(
                    identity = elector.identity(),
                    "waiting to become the leader"
                );
                let acquiring = elector.acquire(shutdown);
                tokio::pin!(acquiring);
                let mut heartbeat = tokio::time::interval(interval);
                let acquired = loop {
                    tokio::select! {
                        g = &mut acquiring => break g,
                        _ = heartbeat.tick() => health.mark_activity(Instant::now()),
                    }
                };
                match acquired {
                    Some(g) => {
                        tracing::info!("became the leader");
                        Some(g)
                    }
                    None => return Ok(()),
                }
            }
            None => None,
        };
        // A new term starts with fresh in-place state and full buckets.
        let mut updater = Updater::new(settings, ctx.config.rate_limiters(), ctx.metrics.clone());
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Upstream's first loop comes after one interval.
        ticker.tick().await;
        health.mark_activity(Instant::now());
        let stop = {
            let lost = lease::lost(guard.as_ref());
            tokio::pin!(lost);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {
                        // A signal stops the loop where it is (a request already sent is
                        // decided by the API server; no further action starts).
                        tokio::select! {
                            () = one_loop(ctx, &mut updater) => {}
                            () = shutdown.cancelled() => break true,
                        }
                        health.mark_activity(Instant::now());
                    }
                    () = &mut lost => break false,
                    () = shutdown.cancelled() => break true,
                }
            }
        };
        if stop {
            if let Some(g) = guard
                && let Err(e) = g.release().await
            {
                tracing::warn!("cannot release the leader lease: {e}");
            }
            tracing::info!("stopped");
            return Ok(());
        }
        tracing::warn!("lost the leader lease: stopping work; standing by to win it again");
    }
}

/// The process entry point: crypto provider, logging, tokio runtime, signals, [`run`].
pub fn main(config: Config) -> Result<()> {
    vpa_core::runtime::process::run_until_signal(&config.log.clone(), |shutdown| {
        run(config, shutdown)
    })
}
