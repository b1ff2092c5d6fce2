//! `vpa-recommender` in a cluster: start-up (client, admin server, watches), leadership,
//! the interval loop over [`controller::Recommender::run_once`], and shutdown (finish the
//! cycle, write checkpoints, release the lease, exit 0).
//!
//! Each leadership term starts from the checkpoints, so a recommender that loses the lease
//! and wins it back does not count the other leader's history twice. Standbys keep their
//! watches (and so their caches) warm.

use crate::config::{EngineFlags, LoopFlags, parse_feature_gates};
use crate::controller::{self, LoopSettings, Recommender, Targets};
use crate::engine::{EngineSettings, SelectorState};
use crate::metrics::RecommenderMetrics;
use crate::metrics_source::{ApiServerMetrics, DirectMetrics, DirectSettings, MetricsSource};
use anyhow::{Context as _, Result};
use futures::future::BoxFuture;
use k8s_openapi::api::autoscaling::v1::CrossVersionObjectReference;
use std::sync::{Arc, Mutex};
use vpa_core::runtime::admin::{self, Health, HealthConfig};
use vpa_core::runtime::client::{self as kube_client, KubeArgs};
use vpa_core::runtime::lease::{self, LeaderElectionArgs, LeaderElector};
use vpa_core::runtime::shutdown::Shutdown;
use vpa_core::runtime::target::{ResolverOptions, TargetError, TargetRef, TargetResolver};
use vpa_core::runtime::telemetry::LogArgs;
use vpa_core::time::Timestamp;

/// Readiness condition: every watch has its initial list.
const STORES_SYNCED: &str = "stores synced";

/// Default Lease name (upstream's).
pub const LEASE_NAME: &str = "vpa-recommender-lease";

/// All flags of the in-cluster recommender.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Loop flags.
    #[command(flatten)]
    pub loop_flags: LoopFlags,
    /// Engine flags.
    #[command(flatten)]
    pub engine: EngineFlags,
    /// API client flags.
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Leader election flags.
    #[command(flatten)]
    pub leader: LeaderElectionArgs,
    /// Logging flags.
    #[command(flatten)]
    pub log: LogArgs,
    /// Prometheus history flags (`--storage=prometheus`).
    #[command(flatten)]
    pub prometheus: crate::history::PrometheusFlags,
}

/// Loads Prometheus history for the VPAs without checkpoints, once per leader term (upstream
/// loads it once at start). A Prometheus that cannot be reached is reported and the
/// recommender goes on with live metrics only.
async fn load_prometheus_history(
    rec: &mut Recommender,
    flags: &crate::history::PrometheusFlags,
    namespace: &str,
) {
    let started = std::time::Instant::now();
    let provider = match crate::history::PrometheusHistoryProvider::new(flags, namespace) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("--storage=prometheus: {e}; going on without history");
            return;
        }
    };
    let at = now();
    match provider.load(at).await {
        Ok(history) => {
            let samples = rec.feed_history(&history, at);
            tracing::info!(
                pods = history.len(),
                samples,
                seconds = started.elapsed().as_secs_f64(),
                address = %flags.prometheus_address,
                "history loaded from Prometheus for VPAs without checkpoints"
            );
        }
        Err(e) => tracing::error!(
            "cannot load history from Prometheus: {e}; check --prometheus-address and that \
             Prometheus scrapes cAdvisor (job {:?}); going on with live metrics only",
            flags.prometheus_cadvisor_job_name
        ),
    }
}

/// Wall-clock time as an engine timestamp.
pub fn now() -> Timestamp {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Timestamp::from_unix_nanos(nanos)
}

/// Targets resolved through the API with the cached resolver.
struct ApiTargets(TargetResolver);

fn target_ref(t: &CrossVersionObjectReference) -> TargetRef {
    TargetRef {
        api_version: t.api_version.clone().unwrap_or_default(),
        kind: t.kind.clone(),
        name: t.name.clone(),
    }
}

impl Targets for ApiTargets {
    fn resolve<'a>(
        &'a self,
        namespace: &'a str,
        target: &'a CrossVersionObjectReference,
    ) -> BoxFuture<'a, SelectorState> {
        Box::pin(async move {
            match self
                .0
                .resolve(namespace, &target_ref(target), std::time::Instant::now())
                .await
            {
                Ok(r) => SelectorState::Resolved(r.selector),
                Err(e) if e.is_transient() => SelectorState::Transient(e.condition_message()),
                Err(e) => SelectorState::Unsupported(unsupported_message(&e)),
            }
        })
    }

    fn exists(&self, namespace: &str, target: &CrossVersionObjectReference) -> bool {
        self.0
            .exists_cached(namespace, &target_ref(target))
            .unwrap_or(false)
    }
}

fn unsupported_message(e: &TargetError) -> String {
    e.condition_message()
}

fn engine_settings(args: &RunArgs) -> Result<EngineSettings> {
    let recommender = args
        .engine
        .recommender()
        .map_err(anyhow::Error::msg)
        .context("invalid recommender flags")?;
    let gates = parse_feature_gates(&args.loop_flags.feature_gates).map_err(anyhow::Error::msg)?;
    Ok(EngineSettings {
        aggregations: Arc::new(args.engine.aggregations()),
        recommender,
        format: args.engine.output_format(),
        global_max_allowed: args.engine.global_max_allowed(),
        integer_cpu: args.loop_flags.cpu_integer_post_processor_enabled,
        memory_saver: args.loop_flags.memory_saver,
        per_vpa_config: gates.per_vpa_config,
    })
}

fn metrics_source(args: &LoopFlags, client: &kube::Client) -> Result<Arc<dyn MetricsSource>> {
    if args.metrics_url.is_empty() {
        return Ok(Arc::new(ApiServerMetrics::new(client.clone())));
    }
    let direct = DirectMetrics::new(&DirectSettings {
        url: args.metrics_url.clone(),
        ca_file: args.metrics_ca_file.clone(),
        token_file: args.metrics_token_file.clone(),
        insecure: args.metrics_insecure,
    })?;
    Ok(Arc::new(direct))
}

/// Runs the recommender until SIGTERM/SIGINT (or `shutdown`).
pub async fn run(args: RunArgs, shutdown: Shutdown) -> Result<()> {
    args.loop_flags.validate().map_err(anyhow::Error::msg)?;
    let engine_settings = engine_settings(&args)?;
    // No retry layer: a 503 or 429 must not stall a cycle for minutes; the loop retries.
    let client = kube_client::client(&args.kube, "vpa-recommender", false)
        .await
        .context("cannot create the Kubernetes client")?;
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Arc::new(RecommenderMetrics::new(&mut registry));
    let registry = Arc::new(Mutex::new(registry));
    let interval = std::time::Duration::from_nanos(
        u64::try_from(args.loop_flags.recommender_interval.as_nanos()).unwrap_or(60_000_000_000),
    );
    // Upstream: unhealthy when the loop has not run for 5 intervals.
    let health = Arc::new(Health::new(HealthConfig {
        max_activity_age: Some(interval * 5),
        startup_grace: interval,
    }));
    health.require(STORES_SYNCED);
    let router = admin::router(health.clone(), registry.clone());
    let (bound, _admin_task) = admin::serve(
        &args.loop_flags.address,
        router,
        shutdown.clone().cancelled_owned(),
    )
    .await
    .with_context(|| {
        format!(
            "cannot serve the admin port --address={}",
            args.loop_flags.address
        )
    })?;
    tracing::info!(address = %bound, "admin server: /healthz /readyz /metrics");

    if args.loop_flags.storage == "prometheus" {
        // Refuse bad history flags at start, as upstream does.
        crate::history::PrometheusHistoryProvider::new(
            &args.prometheus,
            &args.loop_flags.vpa_object_namespace,
        )
        .context("--storage=prometheus")?;
    }
    let namespace = (!args.loop_flags.vpa_object_namespace.is_empty())
        .then(|| args.loop_flags.vpa_object_namespace.clone());
    let (oom_tx, oom_rx) = tokio::sync::mpsc::channel(5000);
    let (stores, watches) =
        controller::start_watches(&client, namespace.as_deref(), metrics.clone(), oom_tx);
    tokio::spawn(watches);

    tokio::select! {
        r = stores.wait_synced() => r.context("a watch ended before its store synced")?,
        () = shutdown.cancelled() => return Ok(()),
    }
    health.set_ready(STORES_SYNCED, true);
    tracing::info!(
        vpas = stores.vpas.state().len(),
        pods = stores.pods.len(),
        checkpoints = stores.checkpoints.state().len(),
        "stores synced"
    );

    let targets: Arc<dyn Targets> = Arc::new(ApiTargets(TargetResolver::new(
        client.clone(),
        ResolverOptions::default(),
    )));
    let source = metrics_source(&args.loop_flags, &client)?;
    let loop_settings = LoopSettings {
        recommender_name: args.loop_flags.recommender_name.clone(),
        namespaces: args.loop_flags.namespace_filter(),
        update_worker_count: args.loop_flags.update_worker_count as usize,
        checkpoints_timeout: std::time::Duration::from_nanos(
            u64::try_from(args.loop_flags.checkpoints_timeout.as_nanos()).unwrap_or(60_000_000_000),
        ),
        checkpoints_gc_interval: args.loop_flags.checkpoints_gc_interval,
        write_checkpoints: true,
    };
    let mut oom_rx = Some(oom_rx);
    let election = args
        .leader
        .config(LEASE_NAME)
        .context("invalid leader election flags")?;
    loop {
        let guard = match &election {
            Some(config) => {
                let elector = LeaderElector::new(client.clone(), config.clone())
                    .context("leader election")?;
                tracing::info!(
                    identity = elector.identity(),
                    "waiting to become the leader"
                );
                let acquiring = elector.acquire(&shutdown);
                tokio::pin!(acquiring);
                // A standby is healthy: it keeps its watches warm.
                let mut heartbeat = tokio::time::interval(interval);
                let acquired = loop {
                    tokio::select! {
                        g = &mut acquiring => break g,
                        _ = heartbeat.tick() => health.mark_activity(std::time::Instant::now()),
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
        let rx = match oom_rx.take() {
            Some(rx) => rx,
            None => {
                // A new term: OOMs seen while standby were not buffered for it.
                let (tx, rx) = tokio::sync::mpsc::channel(5000);
                drop(tx);
                rx
            }
        };
        let mut rec = Recommender::new(
            engine_settings.clone(),
            client.clone(),
            stores.clone(),
            targets.clone(),
            source.clone(),
            loop_settings.clone(),
            metrics.clone(),
            rx,
            now(),
        );
        rec.load_vpas().await;
        let (loaded, skipped) = rec.load_checkpoints();
        tracing::info!(loaded, skipped, "checkpoints loaded");
        if args.loop_flags.storage == "prometheus" {
            rec.load_pods(now());
            load_prometheus_history(
                &mut rec,
                &args.prometheus,
                &args.loop_flags.vpa_object_namespace,
            )
            .await;
        }
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stop = {
            let lost = lease::lost(guard.as_ref());
            tokio::pin!(lost);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {
                        let report = rec.run_once(now()).await;
                        health.mark_activity(std::time::Instant::now());
                        tracing::info!(
                            vpas = report.vpas, pods = report.pods, samples = report.samples,
                            ooms = report.ooms, status_writes = report.status_writes,
                            status_failures = report.status_failures, checkpoints = report.checkpoints,
                            metrics_ok = report.metrics_error.is_none(),
                            "cycle done"
                        );
                    }
                    () = &mut lost => break false,
                    () = shutdown.cancelled() => break true,
                }
            }
        };
        if stop {
            let n = rec.write_all_checkpoints(now()).await;
            tracing::info!(checkpoints = n, "shutting down: checkpoints written");
            if let Some(g) = guard
                && let Err(e) = g.release().await
            {
                tracing::warn!("cannot release the leader lease: {e}");
            }
            return Ok(());
        }
        tracing::warn!("lost the leader lease: stopping work; standing by to win it again");
    }
}

/// The process entry point of the in-cluster recommender: crypto provider, logging, tokio
/// runtime, signal handling, [`run`].
pub fn main(args: RunArgs) -> Result<()> {
    vpa_core::runtime::process::run_until_signal(&args.log.clone(), |shutdown| run(args, shutdown))
}
