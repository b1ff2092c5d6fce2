//! The in-cluster recommender: watches (reflector stores) for VPAs, pods, checkpoints and
//! HPAs and a watch on eviction events, and `run_once(now)` over them — load VPAs and
//! resolve their targets, load pods, fetch metrics and OOMs, compute statuses and write the
//! changed ones with server-side apply, write checkpoints within the cycle budget, and
//! garbage-collect. The decisions are in [`crate::engine`]; this module converts and does
//! the I/O.

use crate::engine::{
    CheckpointWrite, Engine, EngineSettings, OomEvent, OpenWindow, SelectorState, StatusWrite,
    VpaInput,
};
use crate::feeder::{self, NamespaceFilter};
use crate::metrics::RecommenderMetrics;
use crate::metrics_source::MetricsSource;
use crate::pod_store::PodStore;
use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::autoscaling::v1::CrossVersionObjectReference;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use vpa_core::api::checkpoint::{
    VerticalPodAutoscalerCheckpoint, VerticalPodAutoscalerCheckpointSpec,
};
use vpa_core::api::vpa::VerticalPodAutoscaler;
use vpa_core::checkpoint::{from_time, to_time};
use vpa_core::model::{ObjectId, PodPhase};
use vpa_core::runtime::watch::{WatchBackoff, scoped};
use vpa_core::time::{Duration, Timestamp};

/// Field manager of every write.
pub const FIELD_MANAGER: &str = "vpa-recommender";
/// Annotation on checkpoints holding the open memory windows (vpa-rs; upstream ignores it).
pub const OPEN_WINDOWS_ANNOTATION: &str = "vpa-rs.io/memory-window-peaks";

/// Resolves targetRefs to pod selectors (implemented over the API by `target`, statically
/// in tests and benchmarks).
pub trait Targets: Send + Sync {
    /// The selector state of a VPA's target.
    fn resolve<'a>(
        &'a self,
        namespace: &'a str,
        target: &'a CrossVersionObjectReference,
    ) -> BoxFuture<'a, SelectorState>;
    /// Whether the target is known to exist (no API call): aggregation GC keeps the history
    /// of VPAs whose target exists.
    fn exists(&self, namespace: &str, target: &CrossVersionObjectReference) -> bool;
}

/// Settings of the loop (from the command line).
#[derive(Debug, Clone)]
pub struct LoopSettings {
    /// `--recommender-name`.
    pub recommender_name: String,
    /// Namespace selection.
    pub namespaces: NamespaceFilter,
    /// `--update-worker-count`.
    pub update_worker_count: usize,
    /// `--checkpoints-timeout`.
    pub checkpoints_timeout: std::time::Duration,
    /// `--checkpoints-gc-interval`.
    pub checkpoints_gc_interval: Duration,
    /// Write checkpoints at all (also with `--storage=prometheus`, where upstream does not).
    pub write_checkpoints: bool,
}

/// The reflector stores the loop reads.
#[derive(Clone)]
pub struct Stores {
    /// VPAs, untyped so a malformed one is still seen.
    pub vpas: Store<kube::api::DynamicObject>,
    /// Non-pending pods, as compact records.
    pub pods: PodStore,
    /// Checkpoints.
    pub checkpoints: Store<VerticalPodAutoscalerCheckpoint>,
    /// HorizontalPodAutoscalers.
    pub hpas: Store<HorizontalPodAutoscaler>,
}

/// The VPA API resource, for untyped access.
pub fn vpa_api_resource() -> kube::api::ApiResource {
    kube::api::ApiResource::erase::<VerticalPodAutoscaler>(&())
}

fn trim_meta(meta: &mut kube::api::ObjectMeta) {
    meta.managed_fields = None;
}

/// A watch that keeps `writer`'s store current (managedFields dropped), counting and
/// logging its errors under `resource`.
fn reflected<K>(
    api: Api<K>,
    writer: reflector::store::Writer<K>,
    metrics: Arc<RecommenderMetrics>,
    resource: &'static str,
) -> impl std::future::Future<Output = ()> + Send + 'static
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    vpa_core::runtime::watch::reflect(
        api,
        watcher::Config::default(),
        writer,
        |o: &mut K| trim_meta(o.meta_mut()),
        move |e| metrics.watch_error(resource, e),
    )
}

/// Sends OOMs to the engine's channel, counting those dropped because it is full.
fn send_ooms(tx: &mpsc::Sender<OomEvent>, metrics: &RecommenderMetrics, ooms: Vec<OomEvent>) {
    for oom in ooms {
        if tx.try_send(oom).is_err() {
            metrics.oom_dropped();
        }
    }
}

/// Starts the watches. Returns the stores and, through `oom_tx`, OOM kills seen in pod
/// updates and eviction events. The returned future runs the watches until dropped.
pub fn start_watches(
    client: &Client,
    namespace: Option<&str>,
    metrics: Arc<RecommenderMetrics>,
    oom_tx: mpsc::Sender<OomEvent>,
) -> (Stores, BoxFuture<'static, ()>) {
    let ar = vpa_api_resource();
    let vpa_writer = reflector::store::Writer::<kube::api::DynamicObject>::new(ar.clone());
    let vpa_reader = vpa_writer.as_reader();
    let vpa_api: Api<kube::api::DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    let vpa_watch = reflected(
        vpa_api,
        vpa_writer,
        metrics.clone(),
        "verticalpodautoscalers",
    );

    let (cp_reader, cp_writer) = reflector::store::<VerticalPodAutoscalerCheckpoint>();
    let cp_watch = reflected(
        scoped(client, namespace),
        cp_writer,
        metrics.clone(),
        "verticalpodautoscalercheckpoints",
    );
    let (hpa_reader, hpa_writer) = reflector::store::<HorizontalPodAutoscaler>();
    let hpa_watch = reflected(
        scoped(client, namespace),
        hpa_writer,
        metrics.clone(),
        "horizontalpodautoscalers",
    );

    let pod_store = PodStore::new();
    let (m, store, tx) = (metrics.clone(), pod_store.clone(), oom_tx.clone());
    let pod_watch = watcher(
        scoped::<Pod>(client, namespace),
        watcher::Config::default().fields("status.phase!=Pending"),
    )
    .backoff(WatchBackoff::default())
    .for_each(move |r| {
        match r {
            Ok(ev) => send_ooms(&tx, &m, store.apply(ev)),
            Err(e) => m.watch_error("pods", &e),
        }
        futures::future::ready(())
    });

    let m = metrics;
    let ev_task = watcher(
        scoped::<Event>(client, namespace),
        watcher::Config::default().fields("reason=Evicted"),
    )
    .backoff(WatchBackoff::default())
    .applied_objects()
    .for_each(move |r| {
        match r {
            Ok(ev) => send_ooms(&oom_tx, &m, feeder::ooms_from_eviction_event(&ev)),
            Err(e) => m.watch_error("events", &e),
        }
        futures::future::ready(())
    });
    let stores = Stores {
        vpas: vpa_reader,
        pods: pod_store,
        checkpoints: cp_reader,
        hpas: hpa_reader,
    };
    let all = async move {
        tokio::join!(vpa_watch, pod_watch, cp_watch, hpa_watch, ev_task);
    };
    (stores, Box::pin(all))
}

impl Stores {
    /// Waits until every store has its initial list.
    pub async fn wait_synced(&self) -> Result<(), reflector::store::WriterDropped> {
        self.vpas.wait_until_ready().await?;
        self.pods.wait_ready().await;
        self.checkpoints.wait_until_ready().await?;
        self.hpas.wait_until_ready().await?;
        Ok(())
    }
}

/// Everything one cycle needs besides the engine.
pub struct Recommender {
    /// The engine.
    pub engine: Engine,
    client: Client,
    stores: Stores,
    targets: Arc<dyn Targets>,
    metrics_source: Arc<dyn MetricsSource>,
    settings: LoopSettings,
    metrics: Arc<RecommenderMetrics>,
    oom_rx: mpsc::Receiver<OomEvent>,
    last_checkpoint_gc: Timestamp,
    targets_by_vpa: HashMap<ObjectId, CrossVersionObjectReference>,
    metrics_failing_since: Option<Timestamp>,
    parsed: ParsedCache,
}

/// Parsed VPAs by (namespace, name): resourceVersion, named recommender, parsed object.
type ParsedCache = HashMap<(String, String), (String, (Option<String>, feeder::ParsedVpa))>;

/// What one cycle did (for logs and tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    /// VPAs handled.
    pub vpas: usize,
    /// Pods in the model.
    pub pods: usize,
    /// Samples accepted.
    pub samples: usize,
    /// OOMs recorded.
    pub ooms: usize,
    /// Status writes done.
    pub status_writes: usize,
    /// Status writes that failed.
    pub status_failures: usize,
    /// Checkpoints written.
    pub checkpoints: usize,
    /// The metrics problem, if any.
    pub metrics_error: Option<String>,
}

impl Recommender {
    /// A recommender over started watches.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        engine_settings: EngineSettings,
        client: Client,
        stores: Stores,
        targets: Arc<dyn Targets>,
        metrics_source: Arc<dyn MetricsSource>,
        settings: LoopSettings,
        metrics: Arc<RecommenderMetrics>,
        oom_rx: mpsc::Receiver<OomEvent>,
        now: Timestamp,
    ) -> Self {
        Self {
            engine: Engine::new(engine_settings),
            client,
            stores,
            targets,
            metrics_source,
            settings,
            metrics,
            oom_rx,
            last_checkpoint_gc: now,
            targets_by_vpa: HashMap::new(),
            metrics_failing_since: None,
            parsed: HashMap::new(),
        }
    }

    /// Step 1: the VPAs this recommender handles, their targets resolved.
    pub async fn load_vpas(&mut self) {
        let started = Instant::now();
        let objects = self.stores.vpas.state();
        let hpas = self.stores.hpas.state();
        let mut parsed = Vec::new();
        let mut cache = std::mem::take(&mut self.parsed);
        let mut fresh = HashMap::with_capacity(objects.len());
        for obj in &objects {
            let ns = obj.namespace().unwrap_or_default();
            if !self.settings.namespaces.allows(&ns) {
                continue;
            }
            let key = (ns, obj.name_any());
            let rv = obj.resource_version().unwrap_or_default();
            // Objects are parsed again only when they changed.
            let entry = match cache.remove(&key) {
                Some((old_rv, p)) if old_rv == rv => Some((old_rv, p)),
                _ => {
                    let raw = serde_json::to_value(obj.as_ref()).unwrap_or_default();
                    let named = feeder::raw_recommender_name(&raw);
                    feeder::parse_vpa(&raw).map(|p| (rv, (named, p)))
                }
            };
            if let Some((rv, (named, p))) = entry {
                if feeder::selects_recommender(&self.settings.recommender_name, named.as_deref()) {
                    parsed.push(p.clone());
                }
                fresh.insert(key, (rv, (named, p)));
            }
        }
        self.parsed = fresh;
        let targets = self.targets.clone();
        let resolved: Vec<(feeder::ParsedVpa, SelectorState)> = futures::stream::iter(parsed)
            .map(|p| {
                let targets = targets.clone();
                async move {
                    let state = match (&p.config_error, &p.spec) {
                        (None, Some(spec)) => {
                            targets.resolve(&p.id.namespace, &spec.target_ref).await
                        }
                        _ => SelectorState::Unsupported(String::new()),
                    };
                    (p, state)
                }
            })
            .buffer_unordered(self.settings.update_worker_count.max(1) * 4)
            .collect()
            .await;
        let mut hpas_by_ns: HashMap<&str, Vec<&HorizontalPodAutoscaler>> = HashMap::new();
        for h in &hpas {
            hpas_by_ns
                .entry(h.metadata.namespace.as_deref().unwrap_or_default())
                .or_default()
                .push(h.as_ref());
        }
        let mut inputs = Vec::with_capacity(resolved.len());
        self.targets_by_vpa.clear();
        for (p, selector) in resolved {
            let hpa_conflict = p.spec.as_ref().and_then(|spec| {
                let t = &spec.target_ref;
                let policy = p.policy.as_ref();
                feeder::hpa_conflict(
                    &p.id.namespace,
                    t.api_version.as_deref().unwrap_or_default(),
                    &t.kind,
                    &t.name,
                    hpas_by_ns
                        .get(&*p.id.namespace)
                        .map_or(&[][..], Vec::as_slice),
                    |res| controls(policy, res),
                )
            });
            if let Some(spec) = &p.spec {
                self.targets_by_vpa
                    .insert(p.id.clone(), spec.target_ref.clone());
            }
            inputs.push(VpaInput {
                id: p.id,
                generation: p.generation,
                selector,
                policy: p.policy,
                config_error: p.config_error,
                annotations: p.annotations,
                observed: p.status,
                hpa_conflict,
            });
        }
        self.engine.sync_vpas(inputs);
        self.metrics
            .step("load_vpas", started.elapsed().as_secs_f64());
    }

    /// Loads every checkpoint whose VPA is in the model (at start-up, after `load_vpas`).
    /// Returns (loaded, skipped).
    pub fn load_checkpoints(&mut self) -> (usize, usize) {
        let mut loaded = 0;
        let mut skipped = 0;
        for cp in self.stores.checkpoints.state() {
            let ns = cp.namespace().unwrap_or_default();
            let (Some(vpa), Some(container), Some(status)) = (
                cp.spec.vpa_object_name.as_deref(),
                cp.spec.container_name.as_deref(),
                cp.status.as_ref(),
            ) else {
                skipped += 1;
                continue;
            };
            let id = ObjectId::new(&ns, vpa);
            if self.engine.model().vpa(&id).is_none() {
                skipped += 1;
                continue;
            }
            let windows = open_windows_from(&cp);
            match self
                .engine
                .load_checkpoint(&id, container, status, &windows)
            {
                Ok(()) => loaded += 1,
                Err(e) => {
                    skipped += 1;
                    tracing::warn!(checkpoint = %format!("{ns}/{}", cp.name_any()), error = %e, "checkpoint not loaded");
                }
            }
        }
        (loaded, skipped)
    }

    /// Feeds start-up history (Prometheus) for the pods of VPAs without checkpoints.
    pub fn feed_history(
        &mut self,
        history: &BTreeMap<ObjectId, crate::history_load::PodHistory>,
        now: Timestamp,
    ) -> usize {
        let wanted: Vec<ObjectId> = history
            .iter()
            .filter(|(id, h)| {
                self.engine
                    .selected_by_vpa_without_checkpoint(&id.namespace, &h.labels)
            })
            .map(|(id, _)| id.clone())
            .collect();
        let wanted: BTreeSet<ObjectId> = wanted.into_iter().collect();
        crate::history_load::feed_history(&mut self.engine, history, now, |id, _| {
            wanted.contains(id)
        })
    }

    /// Step 2: the pods.
    pub fn load_pods(&mut self, now: Timestamp) {
        let started = Instant::now();
        let filter = &self.settings.namespaces;
        let engine = &mut self.engine;
        self.stores.pods.with(|pods| {
            engine.sync_pods(
                pods.values()
                    .map(|r| &r.input)
                    .filter(|p| p.phase != PodPhase::Pending && filter.allows(&p.id.namespace)),
                now,
            );
        });
        self.metrics
            .step("load_pods", started.elapsed().as_secs_f64());
    }

    /// Step 3: metrics and OOMs. A failing Metrics API is reported and the cycle goes on
    /// with the history it has.
    pub async fn load_metrics(&mut self, now: Timestamp) -> (usize, usize, Option<String>) {
        let started = Instant::now();
        let ns = self.settings.namespaces.only.clone();
        let result = self.metrics_source.pod_metrics(ns.as_deref()).await;
        let mut accepted = 0;
        let mut problem = None;
        match result {
            Ok(items) => {
                let (mut usage, problems) = feeder::usage_from_metrics(&items);
                self.stores.pods.with(|pods| {
                    usage.retain(|u| {
                        pods.get(&u.pod)
                            .is_none_or(|r| !r.init_containers.contains(&u.container))
                    });
                });
                for p in problems.iter().take(5) {
                    tracing::warn!(pod = %p.pod, "unusable PodMetrics: {}", p.message);
                }
                let covered: std::collections::HashSet<ObjectId> =
                    usage.iter().map(|u| u.pod.clone()).collect();
                self.engine.note_metrics_coverage(&covered, now);
                let stats = self.engine.add_usage(&usage);
                accepted = stats.accepted;
                self.metrics
                    .samples(stats.accepted, stats.rejected, stats.unknown);
                if let Some(since) = self.metrics_failing_since.take() {
                    tracing::info!(
                        source = %self.metrics_source.describe(),
                        "the Metrics API works again (it failed for {})",
                        now.since(since)
                    );
                }
                self.metrics.metrics_api(true, None);
                self.engine.set_metrics_problem(None);
            }
            Err(e) => {
                let message = e.to_string();
                if self.metrics_failing_since.is_none() {
                    self.metrics_failing_since = Some(now);
                    tracing::error!(
                        source = %self.metrics_source.describe(),
                        reason = e.reason(),
                        "cannot read container usage; recommendations keep their current history until it works again: {message}"
                    );
                } else {
                    tracing::warn!(
                        reason = e.reason(),
                        "the Metrics API still fails: {message}"
                    );
                }
                self.metrics.metrics_api(false, Some(e.reason()));
                self.engine.set_metrics_problem(Some(message.clone()));
                problem = Some(message);
            }
        }
        let mut ooms = Vec::new();
        while let Ok(o) = self.oom_rx.try_recv() {
            ooms.push(o);
        }
        let failed = self.engine.record_ooms(&ooms);
        for (o, why) in failed.iter().take(5) {
            tracing::debug!(pod = %o.pod, container = %o.container, "OOM not recorded: {why}");
        }
        self.metrics.ooms(ooms.len() - failed.len());
        self.metrics
            .step("load_metrics", started.elapsed().as_secs_f64());
        (accepted, ooms.len() - failed.len(), problem)
    }

    /// Step 4: statuses; writes the changed ones. Returns (written, failed).
    pub async fn update_vpas(&mut self, now: Timestamp) -> (usize, usize) {
        let started = Instant::now();
        let outcome = self.engine.update_vpas(now);
        for m in &outcome.missing {
            tracing::warn!("{m}");
        }
        self.metrics
            .vpas(self.engine.vpa_count(), outcome.with_recommendation);
        let client = self.client.clone();
        let results: Vec<bool> = futures::stream::iter(outcome.writes)
            .map(|w| write_status(client.clone(), w))
            .buffer_unordered(self.settings.update_worker_count.max(1))
            .collect()
            .await;
        let ok = results.iter().filter(|r| **r).count();
        let failed = results.len() - ok;
        self.metrics.status_writes(ok, failed);
        self.metrics
            .step("update_vpas", started.elapsed().as_secs_f64());
        (ok, failed)
    }

    /// Step 5: checkpoints, longest unwritten first, within `--checkpoints-timeout` (at
    /// least `--update-worker-count` VPAs), then checkpoint GC when due.
    pub async fn maintain_checkpoints(&mut self, now: Timestamp) -> usize {
        if !self.settings.write_checkpoints {
            return 0;
        }
        let started = Instant::now();
        let deadline = started + self.settings.checkpoints_timeout;
        let order = self.engine.checkpoint_order();
        let workers = self.settings.update_worker_count.max(1);
        let mut written = 0;
        for chunk in order.chunks(workers) {
            let batches: Vec<(ObjectId, Vec<CheckpointWrite>)> = chunk
                .iter()
                .map(|id| (id.clone(), self.engine.checkpoints_for(id, now)))
                .collect();
            let client = self.client.clone();
            let results: Vec<(ObjectId, usize, bool)> = futures::stream::iter(batches)
                .map(|(id, writes)| {
                    let client = client.clone();
                    async move {
                        let n = writes.len();
                        let mut ok = true;
                        for w in writes {
                            ok &= write_checkpoint(&client, &w).await;
                        }
                        (id, n, ok)
                    }
                })
                .buffer_unordered(workers)
                .collect()
                .await;
            for (id, n, ok) in results {
                if ok {
                    self.engine.checkpoint_written(&id, now);
                    written += n;
                }
                self.metrics.checkpoint_writes(n, ok);
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        if now.since(self.last_checkpoint_gc) >= self.settings.checkpoints_gc_interval {
            self.last_checkpoint_gc = now;
            if let Err(e) = self.garbage_collect_checkpoints().await {
                tracing::warn!("checkpoint garbage collection failed: {e}");
            }
        }
        self.metrics
            .step("maintain_checkpoints", started.elapsed().as_secs_f64());
        written
    }

    /// Deletes checkpoints whose VPA is gone, in every handled namespace (all VPAs count,
    /// whatever recommender they name, as upstream).
    pub async fn garbage_collect_checkpoints(&self) -> Result<usize, kube::Error> {
        let vpas: BTreeSet<(String, String)> = self
            .stores
            .vpas
            .state()
            .iter()
            .map(|v| (v.namespace().unwrap_or_default(), v.name_any()))
            .collect();
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let existing: BTreeSet<String> = namespaces
            .list_metadata(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect();
        let mut deleted = 0;
        for cp in self.stores.checkpoints.state() {
            let ns = cp.namespace().unwrap_or_default();
            if !self.settings.namespaces.allows(&ns) || !existing.contains(&ns) {
                continue;
            }
            let vpa = cp.spec.vpa_object_name.clone().unwrap_or_default();
            if vpas.contains(&(ns.clone(), vpa)) {
                continue;
            }
            let api: Api<VerticalPodAutoscalerCheckpoint> =
                Api::namespaced(self.client.clone(), &ns);
            match api.delete(&cp.name_any(), &DeleteParams::default()).await {
                Ok(_) => deleted += 1,
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        if deleted > 0 {
            tracing::info!(deleted, "deleted checkpoints of VPAs that no longer exist");
        }
        Ok(deleted)
    }

    /// Step 6: aggregation GC (hourly).
    pub fn garbage_collect(&mut self, now: Timestamp) {
        let targets = self.targets.clone();
        let by_vpa = &self.targets_by_vpa;
        if let Some(n) = self.engine.garbage_collect(now, |id| {
            by_vpa
                .get(id)
                .is_some_and(|t| targets.exists(&id.namespace, t))
        }) {
            tracing::debug!(deleted = n, "aggregation garbage collection");
        }
        self.metrics
            .aggregates(self.engine.model().aggregation_count());
    }

    /// One cycle.
    pub async fn run_once(&mut self, now: Timestamp) -> CycleReport {
        let started = Instant::now();
        self.load_vpas().await;
        self.load_pods(now);
        let (samples, ooms, metrics_error) = self.load_metrics(now).await;
        let (status_writes, status_failures) = self.update_vpas(now).await;
        let checkpoints = self.maintain_checkpoints(now).await;
        self.garbage_collect(now);
        self.metrics.step("total", started.elapsed().as_secs_f64());
        CycleReport {
            vpas: self.engine.vpa_count(),
            pods: self.engine.model().pod_count(),
            samples,
            ooms,
            status_writes,
            status_failures,
            checkpoints,
            metrics_error,
        }
    }

    /// Writes every checkpoint now, whatever the budget (at shutdown).
    pub async fn write_all_checkpoints(&mut self, now: Timestamp) -> usize {
        if !self.settings.write_checkpoints {
            return 0;
        }
        let mut written = 0;
        for id in self.engine.checkpoint_order() {
            let writes = self.engine.checkpoints_for(&id, now);
            let mut ok = true;
            for w in &writes {
                ok &= write_checkpoint(&self.client, w).await;
            }
            if ok {
                written += writes.len();
                self.engine.checkpoint_written(&id, now);
            }
        }
        written
    }
}

fn controls(policy: Option<&vpa_core::policy::PodResourcePolicy>, resource: &str) -> bool {
    let Some(policy) = policy else {
        return true;
    };
    if policy.container_policies.is_empty() {
        return true;
    }
    // Controlled by the wildcard policy (or by default when there is none), or by any
    // container policy that is not Off.
    let wildcard = policy
        .container_policies
        .iter()
        .find(|c| c.container_name == "*");
    let controlled_by = |c: &vpa_core::policy::ContainerResourcePolicy| {
        c.mode != Some(vpa_core::policy::ContainerScalingMode::Off)
            && c.controlled_resources.is_none_or(|r| match resource {
                "cpu" => r.cpu,
                "memory" => r.memory,
                _ => false,
            })
    };
    wildcard.is_none_or(controlled_by) || policy.container_policies.iter().any(controlled_by)
}

async fn write_status(client: Client, w: StatusWrite) -> bool {
    let api: Api<VerticalPodAutoscaler> = Api::namespaced(client, &w.id.namespace);
    let body = serde_json::json!({
        "apiVersion": "autoscaling.k8s.io/v1",
        "kind": "VerticalPodAutoscaler",
        "metadata": {"name": &*w.id.name, "namespace": &*w.id.namespace},
        "status": w.status,
    });
    match api
        .patch_status(
            &w.id.name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(body),
        )
        .await
    {
        Ok(_) => true,
        Err(kube::Error::Api(e)) if e.code == 404 => true,
        Err(e) => {
            tracing::warn!(vpa = %w.id, "cannot write the VPA status: {e}");
            false
        }
    }
}

/// The checkpoint object's name for a VPA's container.
pub fn checkpoint_name(vpa: &str, container: &str) -> String {
    format!("{vpa}-{container}")
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct WindowJson {
    pod: String,
    window_end: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
    peak_bytes: i64,
}

fn open_windows_json(windows: &[OpenWindow]) -> Option<String> {
    let items: Vec<WindowJson> = windows
        .iter()
        .filter_map(|w| {
            Some(WindowJson {
                pod: w.pod.clone(),
                window_end: to_time(Some(w.window_end))?,
                peak_bytes: w.peak,
            })
        })
        .collect();
    serde_json::to_string(&items).ok()
}

fn open_windows_from(cp: &VerticalPodAutoscalerCheckpoint) -> Vec<OpenWindow> {
    cp.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(OPEN_WINDOWS_ANNOTATION))
        .and_then(|v| serde_json::from_str::<Vec<WindowJson>>(v).ok())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|w| {
            Some(OpenWindow {
                pod: w.pod,
                window_end: from_time(Some(&w.window_end))?,
                peak: w.peak_bytes,
            })
        })
        .collect()
}

async fn write_checkpoint(client: &Client, w: &CheckpointWrite) -> bool {
    let name = checkpoint_name(&w.vpa.name, &w.container);
    let api: Api<VerticalPodAutoscalerCheckpoint> =
        Api::namespaced(client.clone(), &w.vpa.namespace);
    let mut annotations = BTreeMap::new();
    if let Some(json) = open_windows_json(&w.open_windows) {
        annotations.insert(OPEN_WINDOWS_ANNOTATION.to_string(), json);
    }
    let mut cp = VerticalPodAutoscalerCheckpoint::new(
        &name,
        VerticalPodAutoscalerCheckpointSpec {
            vpa_object_name: Some(w.vpa.name.to_string()),
            container_name: Some(w.container.clone()),
        },
    );
    cp.metadata.namespace = Some(w.vpa.namespace.to_string());
    cp.metadata.annotations = Some(annotations);
    cp.status = Some(w.status.clone());
    let mut body = match serde_json::to_value(&cp) {
        Ok(b) => b,
        Err(_) => return false,
    };
    if let Some(obj) = body.as_object_mut() {
        obj.insert(
            "apiVersion".into(),
            VerticalPodAutoscalerCheckpoint::api_version(&()).into(),
        );
        obj.insert(
            "kind".into(),
            VerticalPodAutoscalerCheckpoint::kind(&()).into(),
        );
    }
    match api
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(body),
        )
        .await
    {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(checkpoint = %format!("{}/{name}", w.vpa.namespace), "cannot write the checkpoint: {e}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use vpa_core::policy::{
        ContainerResourcePolicy, ContainerScalingMode, ControlledResources, PodResourcePolicy,
    };

    #[test]
    fn open_windows_round_trip_through_the_annotation() {
        let windows = vec![OpenWindow {
            pod: "p".into(),
            window_end: Timestamp::from_unix_seconds(1_800_000_000),
            peak: 123,
        }];
        let json = open_windows_json(&windows).unwrap();
        assert_eq!(
            json,
            r#"[{"pod":"p","windowEnd":"2027-01-15T08:00:00Z","peakBytes":123}]"#
        );
        let mut cp = VerticalPodAutoscalerCheckpoint::new("v-c", Default::default());
        cp.metadata.annotations = Some([(OPEN_WINDOWS_ANNOTATION.to_string(), json)].into());
        assert_eq!(open_windows_from(&cp), windows);
        // Garbage in the annotation: no windows, no error.
        cp.metadata.annotations = Some([(OPEN_WINDOWS_ANNOTATION.to_string(), "{".into())].into());
        assert!(open_windows_from(&cp).is_empty());
        assert_eq!(checkpoint_name("web", "app"), "web-app");
    }

    #[test]
    fn controlled_resources_for_hpa_conflicts() {
        assert!(controls(None, "cpu"));
        let only_memory = PodResourcePolicy {
            container_policies: vec![ContainerResourcePolicy {
                container_name: "*".into(),
                controlled_resources: Some(ControlledResources {
                    cpu: false,
                    memory: true,
                }),
                ..Default::default()
            }],
        };
        assert!(!controls(Some(&only_memory), "cpu"));
        assert!(controls(Some(&only_memory), "memory"));
        let off = PodResourcePolicy {
            container_policies: vec![ContainerResourcePolicy {
                container_name: "*".into(),
                mode: Some(ContainerScalingMode::Off),
                ..Default::default()
            }],
        };
        assert!(!controls(Some(&off), "cpu"));
    }
}
