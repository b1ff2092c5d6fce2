//! The recommender's state between cycles and the pure steps of one cycle (upstream
//! `routines/recommender.go` `RunOnce`, `input/cluster_feeder.go`, `checkpoint_writer.go`):
//! sync VPAs and pods into the cluster model, feed usage and OOMs, compute each VPA's status,
//! pick and build checkpoints, garbage-collect. Plain values and an explicit `now` only: the
//! kube-facing loop (`controller`) converts objects into the inputs here and writes the
//! outputs; the scale benchmark drives it with no API server at all.

use crate::status::{self, StatusParts};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use vpa_core::api::checkpoint::VerticalPodAutoscalerCheckpointStatus;
use vpa_core::api::vpa::VerticalPodAutoscalerStatus;
use vpa_core::checkpoint::{from_api_status, to_api_status};
use vpa_core::conditions::{Conditions, MissingRecommendations};
use vpa_core::labels::{LabelSet, Selector};
use vpa_core::model::{
    AggregateContainerState, AggregationsConfig, CheckpointError, ClusterModel, ObjectId, PodPhase,
    ResourceAmount, Resources, UsageSample,
};
use vpa_core::policy::PodResourcePolicy;
use vpa_core::recommendation::{
    ContainerRecommendation, OutputFormat, apply_integer_cpu, apply_vpa_policy,
    to_container_recommendations,
};
use vpa_core::recommender::PodResourceRecommender;
use vpa_core::time::{Duration, Timestamp};

/// Condition set when the VPA's configuration cannot be acted on.
pub const CONFIG_UNSUPPORTED: &str = "ConfigUnsupported";
/// Condition upstream only ever deletes.
pub const CONFIG_DEPRECATED: &str = "ConfigDeprecated";
/// Condition set when a HorizontalPodAutoscaler scales the same workload on CPU or memory.
pub const HPA_CONFLICT: &str = "HPAConflict";
/// Condition set while the Metrics API cannot be read (vpa-rs; upstream only logs).
pub const METRICS_UNAVAILABLE: &str = "MetricsUnavailable";
/// Upstream's aggregation garbage-collection interval.
pub const AGGREGATE_GC_INTERVAL: Duration = Duration::from_hours(1);

/// Settings of the engine (from the command line).
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Histogram and memory window settings.
    pub aggregations: Arc<AggregationsConfig>,
    /// Estimators.
    pub recommender: PodResourceRecommender,
    /// Rounding of amounts to quantities.
    pub format: OutputFormat,
    /// `--container-recommendation-max-allowed-*`.
    pub global_max_allowed: Resources,
    /// `--cpu-integer-post-processor-enabled`.
    pub integer_cpu: bool,
    /// `--memory-saver`: only pods selected by some VPA are modelled.
    pub memory_saver: bool,
    /// The PerVPAConfig feature gate.
    pub per_vpa_config: bool,
}

/// What the VPA's targetRef resolved to this cycle.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectorState {
    /// The pods of the target.
    Resolved(Selector),
    /// The target cannot be used: ConfigUnsupported with this message; selects nothing.
    Unsupported(String),
    /// The target could not be read for a transient reason: the previous selector is kept
    /// (history is not dropped, upstream #9891).
    Transient(String),
}

/// One VPA as the cycle sees it.
#[derive(Debug, Clone)]
pub struct VpaInput {
    /// Namespace and name.
    pub id: ObjectId,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// The resolved target.
    pub selector: SelectorState,
    /// The resource policy (already converted and validated).
    pub policy: Option<PodResourcePolicy>,
    /// A spec problem that makes the VPA unusable (ConfigUnsupported message).
    pub config_error: Option<String>,
    /// `metadata.annotations` (integer-CPU post-processor).
    pub annotations: BTreeMap<String, String>,
    /// The status as last observed.
    pub observed: Option<VerticalPodAutoscalerStatus>,
    /// An HPA conflict message, if any.
    pub hpa_conflict: Option<String>,
}

/// One pod as the cycle sees it.
#[derive(Debug, Clone)]
pub struct PodInput {
    /// Namespace and name.
    pub id: ObjectId,
    /// Labels.
    pub labels: LabelSet,
    /// Phase.
    pub phase: PodPhase,
    /// Regular containers and their requests (init containers are not modelled).
    pub containers: Vec<(String, Resources)>,
}

/// One container's usage from one PodMetrics item.
#[derive(Debug, Clone)]
pub struct ContainerUsage {
    /// The pod.
    pub pod: ObjectId,
    /// The container.
    pub container: String,
    /// The PodMetrics timestamp (the end of the window, fed as the sample start as upstream).
    pub timestamp: Timestamp,
    /// Millicores.
    pub cpu_millis: Option<ResourceAmount>,
    /// Bytes.
    pub memory_bytes: Option<ResourceAmount>,
}

/// One OOM kill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OomEvent {
    /// The pod.
    pub pod: ObjectId,
    /// The container.
    pub container: String,
    /// When it happened.
    pub timestamp: Timestamp,
    /// The memory the container requested (or used, for eviction events), in bytes.
    pub memory: ResourceAmount,
}

/// An open memory window of one container of one pod, persisted with a checkpoint so a
/// restart does not lose the current window's peak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenWindow {
    /// Pod name (same namespace as the VPA).
    pub pod: String,
    /// End of the window.
    pub window_end: Timestamp,
    /// Peak so far, in bytes.
    pub peak: ResourceAmount,
}

/// One checkpoint to write.
#[derive(Debug, Clone)]
pub struct CheckpointWrite {
    /// The VPA.
    pub vpa: ObjectId,
    /// Container name.
    pub container: String,
    /// The status, as upstream writes it (open windows subtracted).
    pub status: VerticalPodAutoscalerCheckpointStatus,
    /// The open windows of this container's pods.
    pub open_windows: Vec<OpenWindow>,
}

/// A status to write.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusWrite {
    /// The VPA.
    pub id: ObjectId,
    /// The complete new status.
    pub status: VerticalPodAutoscalerStatus,
}

/// Counts from feeding one batch of metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedStats {
    /// Samples accepted.
    pub accepted: usize,
    /// Samples rejected (duplicates, out of order, negative).
    pub rejected: usize,
    /// Containers the model does not know (pod not modelled yet, or memory saver).
    pub unknown: usize,
}

/// Result of computing statuses.
#[derive(Debug, Clone, Default)]
pub struct UpdateOutcome {
    /// Statuses that differ from the observed ones.
    pub writes: Vec<StatusWrite>,
    /// VPAs with a recommendation.
    pub with_recommendation: usize,
    /// Messages about VPAs missing a recommendation for too long (to log).
    pub missing: Vec<String>,
}

#[derive(Debug)]
struct VpaEntry {
    input: VpaInput,
    checkpoint_written: Option<Timestamp>,
    has_checkpoint: bool,
}

/// Why a checkpoint was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The checkpoint's VPA is not in the model.
    #[error("no VPA {0} for this checkpoint")]
    UnknownVpa(ObjectId),
    /// Wrong version or corrupt histogram.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// The recommender's state.
#[derive(Debug)]
pub struct Engine {
    settings: EngineSettings,
    model: ClusterModel,
    vpas: BTreeMap<ObjectId, VpaEntry>,
    pending_windows: HashMap<(ObjectId, String), (ObjectId, Timestamp, ResourceAmount)>,
    missing: MissingRecommendations<ObjectId>,
    last_gc: Timestamp,
    metrics_problem: Option<String>,
    seen_pods: HashSet<ObjectId>,
    /// Per VPA with pods: when one of its pods last had metrics (or when that was first
    /// found missing).
    metrics_seen: HashMap<ObjectId, Timestamp>,
}

/// How long the pods of a VPA may go without any metrics, while the Metrics API answers,
/// before the VPA says so.
pub const POD_METRICS_MISSING_AFTER: Duration = Duration::from_minutes(5);

impl Engine {
    /// An empty engine.
    pub fn new(settings: EngineSettings) -> Self {
        let model = ClusterModel::new(settings.aggregations.clone(), settings.per_vpa_config);
        Self {
            settings,
            model,
            vpas: BTreeMap::new(),
            pending_windows: HashMap::new(),
            missing: MissingRecommendations::default(),
            last_gc: Timestamp::UNIX_EPOCH,
            metrics_problem: None,
            seen_pods: HashSet::new(),
            metrics_seen: HashMap::new(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// The cluster model (read-only).
    pub fn model(&self) -> &ClusterModel {
        &self.model
    }

    /// Number of VPAs.
    pub fn vpa_count(&self) -> usize {
        self.vpas.len()
    }

    /// Replaces the set of VPAs: new ones are added, changed ones updated, absent ones
    /// removed. A transient selector error keeps the previous selector.
    pub fn sync_vpas(&mut self, inputs: Vec<VpaInput>) {
        let mut seen = HashSet::with_capacity(inputs.len());
        for input in inputs {
            seen.insert(input.id.clone());
            let previous = self.model.vpa(&input.id).and_then(|v| v.selector.clone());
            let selector = if input.config_error.is_some() {
                None
            } else {
                match &input.selector {
                    SelectorState::Resolved(s) => Some(s.clone()),
                    SelectorState::Unsupported(_) => None,
                    SelectorState::Transient(_) => previous,
                }
            };
            self.model
                .add_or_update_vpa(&input.id, selector, input.policy.clone());
            match self.vpas.get_mut(&input.id) {
                Some(e) => e.input = input,
                None => {
                    self.vpas.insert(
                        input.id.clone(),
                        VpaEntry {
                            input,
                            checkpoint_written: None,
                            has_checkpoint: false,
                        },
                    );
                }
            }
        }
        let gone: Vec<ObjectId> = self
            .vpas
            .keys()
            .filter(|id| !seen.contains(*id))
            .cloned()
            .collect();
        for id in gone {
            self.vpas.remove(&id);
            self.model.delete_vpa(&id);
            self.missing.forget(&id);
        }
    }

    /// Replaces the set of pods (Pending pods are expected to be filtered out already, as
    /// upstream's informer does). With `--memory-saver` only pods some VPA selects are kept.
    pub fn sync_pods<'a>(&mut self, pods: impl IntoIterator<Item = &'a PodInput>, now: Timestamp) {
        let mut seen = std::mem::take(&mut self.seen_pods);
        seen.clear();
        for pod in pods {
            if self.settings.memory_saver
                && !self
                    .model
                    .selected_by_any_vpa(&pod.id.namespace, &pod.labels)
            {
                continue;
            }
            self.model
                .add_or_update_pod(&pod.id, &pod.labels, pod.phase);
            for (name, request) in &pod.containers {
                // The pod was just added: this cannot fail.
                let _ = self
                    .model
                    .add_or_update_container(&pod.id, name, *request, now);
            }
            seen.insert(pod.id.clone());
        }
        let gone: Vec<ObjectId> = self
            .model
            .pod_ids()
            .filter(|id| !seen.contains(*id))
            .cloned()
            .collect();
        for id in gone {
            self.model.delete_pod(&id);
        }
        self.seen_pods = seen;
        if !self.pending_windows.is_empty() {
            self.restore_windows();
        }
    }

    /// Adds pods without removing any (start-up history: pods that may no longer exist).
    pub fn add_pods(&mut self, pods: &[PodInput], now: Timestamp) {
        for pod in pods {
            self.model
                .add_or_update_pod(&pod.id, &pod.labels, pod.phase);
            for (name, request) in &pod.containers {
                let _ = self
                    .model
                    .add_or_update_container(&pod.id, name, *request, now);
            }
        }
    }

    fn restore_windows(&mut self) {
        for ((pod, container), (vpa, end, peak)) in std::mem::take(&mut self.pending_windows) {
            let restored = self
                .model
                .restore_memory_window(&pod, &container, end, peak)
                .unwrap_or(false);
            if !restored
                && !self.model.has_pod(&pod)
                && let Some(v) = self.model.vpa_mut(&vpa)
                && let Some(state) = v.initial_state.get_mut(&container)
            {
                // The pod is gone: its last window is closed, and its peak counts.
                state.add_sample(&UsageSample::memory(end, peak));
            }
        }
    }

    /// Feeds a batch of container usage.
    pub fn add_usage(&mut self, usage: &[ContainerUsage]) -> FeedStats {
        let mut stats = FeedStats::default();
        for u in usage {
            let offered =
                usize::from(u.cpu_millis.is_some()) + usize::from(u.memory_bytes.is_some());
            match self.model.add_usage(
                &u.pod,
                &u.container,
                u.timestamp,
                u.cpu_millis,
                u.memory_bytes,
            ) {
                Ok(n) => {
                    stats.accepted += n;
                    stats.rejected += offered - n;
                }
                Err(_) => stats.unknown += offered,
            }
        }
        stats
    }

    /// Records OOM kills; returns the ones that were not recorded, with the reason.
    pub fn record_ooms(&mut self, ooms: &[OomEvent]) -> Vec<(OomEvent, String)> {
        let mut failed = Vec::new();
        for o in ooms {
            if let Err(e) = self
                .model
                .record_oom(&o.pod, &o.container, o.timestamp, o.memory)
            {
                failed.push((o.clone(), e.to_string()));
            }
        }
        failed
    }

    /// Says the Metrics API could not be read (`Some(message)`) or works again (`None`):
    /// every VPA then carries, or loses, the `MetricsUnavailable` condition.
    pub fn set_metrics_problem(&mut self, problem: Option<String>) {
        self.metrics_problem = problem;
    }

    /// Notes which pods the Metrics API returned this cycle. A VPA whose pods have had no
    /// metrics for [`POD_METRICS_MISSING_AFTER`] while the API answers gets a
    /// `MetricsUnavailable` condition saying so (metrics-server cannot scrape their nodes).
    pub fn note_metrics_coverage(&mut self, pods_with_metrics: &HashSet<ObjectId>, now: Timestamp) {
        let ids: Vec<ObjectId> = self.vpas.keys().cloned().collect();
        for id in ids {
            let mut any_pod = false;
            let mut covered = false;
            for p in self.model.vpa_pods(&id) {
                any_pod = true;
                if pods_with_metrics.contains(p) {
                    covered = true;
                    break;
                }
            }
            if !any_pod || covered {
                self.metrics_seen.insert(id, now);
            } else {
                self.metrics_seen.entry(id).or_insert(now);
            }
        }
        self.metrics_seen.retain(|id, _| self.vpas.contains_key(id));
    }

    fn pod_metrics_missing(&self, id: &ObjectId, now: Timestamp) -> Option<Duration> {
        let since = *self.metrics_seen.get(id)?;
        let gap = now.since(since);
        (gap >= POD_METRICS_MISSING_AFTER).then_some(gap)
    }

    /// The recommendation of one VPA from the current model, post-processed.
    pub fn recommendation(
        &mut self,
        id: &ObjectId,
        now: Timestamp,
    ) -> Vec<ContainerRecommendation> {
        let states = self.model.vpa_container_states(id, now);
        self.recommend_from(id, &states)
    }

    fn recommend_from(
        &self,
        id: &ObjectId,
        states: &BTreeMap<String, AggregateContainerState>,
    ) -> Vec<ContainerRecommendation> {
        let estimates = self.settings.recommender.recommend(states);
        let mut recs = to_container_recommendations(&estimates, &self.settings.format);
        let Some(entry) = self.vpas.get(id) else {
            return recs;
        };
        if self.settings.integer_cpu {
            apply_integer_cpu(&mut recs, &entry.input.annotations);
        }
        apply_vpa_policy(
            &mut recs,
            entry.input.policy.as_ref(),
            &self.settings.global_max_allowed,
        );
        recs
    }

    /// Computes every VPA's status; returns those that differ from what was observed.
    pub fn update_vpas(&mut self, now: Timestamp) -> UpdateOutcome {
        let mut out = UpdateOutcome::default();
        let ids: Vec<ObjectId> = self.vpas.keys().cloned().collect();
        for id in ids {
            let recs = self.recommendation(&id, now);
            let pods = self.model.vpa_pod_count(&id);
            let Some(entry) = self.vpas.get(&id) else {
                continue;
            };
            let input = &entry.input;
            let mut conditions = status::conditions_from_api(input.observed.as_ref());
            update_conditions(&mut conditions, input, pods > 0, !recs.is_empty(), now);
            if let Some(problem) = &self.metrics_problem {
                conditions.set(
                    METRICS_UNAVAILABLE,
                    true,
                    "MetricsAPIUnavailable",
                    problem,
                    now,
                );
            } else if let Some(gap) = self.pod_metrics_missing(&id, now) {
                let message = format!(
                    "the Metrics API answers but has had no metrics for any pod of this VPA for {gap}: metrics-server cannot scrape the kubelets of their nodes (check the metrics-server logs for kubelet connection or TLS errors, e.g. x509 errors that --kubelet-insecure-tls or a proper kubelet serving certificate fixes)"
                );
                conditions.set(METRICS_UNAVAILABLE, true, "NoPodMetrics", &message, now);
            } else {
                conditions.delete(METRICS_UNAVAILABLE);
            }
            let has_rec = !recs.is_empty();
            if has_rec {
                out.with_recommendation += 1;
            }
            if let Some(msg) = self.missing.record(&id, &id.to_string(), has_rec, now) {
                out.missing.push(msg);
            }
            let new = status::to_api(&StatusParts {
                recommendation: &recs,
                conditions: &conditions,
                observed_generation: input.generation,
            });
            if !status::semantically_equal(input.observed.as_ref(), &new) {
                out.writes.push(StatusWrite { id, status: new });
            }
        }
        out
    }

    /// The VPAs whose checkpoints to write, longest unwritten first.
    pub fn checkpoint_order(&self) -> Vec<ObjectId> {
        let mut ids: Vec<(Option<Timestamp>, &ObjectId)> = self
            .vpas
            .iter()
            .map(|(id, e)| (e.checkpoint_written, id))
            .collect();
        ids.sort();
        ids.into_iter().map(|(_, id)| id.clone()).collect()
    }

    /// The checkpoints of one VPA at `now`: its merged container states without the open
    /// memory windows (as upstream writes them), and those windows alongside.
    pub fn checkpoints_for(&mut self, id: &ObjectId, now: Timestamp) -> Vec<CheckpointWrite> {
        let mut states = self.model.vpa_container_states(id, now);
        let windows = self.model.vpa_open_memory_windows(id, now);
        let mut open: BTreeMap<String, Vec<OpenWindow>> = BTreeMap::new();
        for (pod, container, end, peak) in windows {
            if let Some(state) = states.get_mut(&container) {
                state.subtract_sample(&UsageSample::memory(end, peak));
                open.entry(container).or_default().push(OpenWindow {
                    pod: pod.name.to_string(),
                    window_end: end,
                    peak,
                });
            }
        }
        states
            .into_iter()
            .map(|(container, state)| CheckpointWrite {
                vpa: id.clone(),
                open_windows: open.remove(&container).unwrap_or_default(),
                status: to_api_status(&state.save_to_checkpoint(now)),
                container,
            })
            .collect()
    }

    /// Marks a VPA's checkpoints written at `now`.
    pub fn checkpoint_written(&mut self, id: &ObjectId, now: Timestamp) {
        if let Some(e) = self.vpas.get_mut(id) {
            e.checkpoint_written = Some(now);
            e.has_checkpoint = true;
        }
    }

    /// Loads one checkpoint into the state of its VPA (at start-up, after the VPAs are
    /// synced and before the pods are). Open windows are restored when the pods appear.
    pub fn load_checkpoint(
        &mut self,
        vpa: &ObjectId,
        container: &str,
        status: &VerticalPodAutoscalerCheckpointStatus,
        open_windows: &[OpenWindow],
    ) -> Result<(), LoadError> {
        let config = self.settings.aggregations.clone();
        let v = self
            .model
            .vpa_mut(vpa)
            .ok_or_else(|| LoadError::UnknownVpa(vpa.clone()))?;
        let mut state = AggregateContainerState::new(&config, Timestamp::UNIX_EPOCH);
        state.load_from_checkpoint(&from_api_status(status))?;
        v.initial_state.insert(container.to_string(), state);
        for w in open_windows {
            self.pending_windows.insert(
                (ObjectId::new(&vpa.namespace, &w.pod), container.to_string()),
                (vpa.clone(), w.window_end, w.peak),
            );
        }
        if let Some(e) = self.vpas.get_mut(vpa) {
            e.has_checkpoint = true;
        }
        Ok(())
    }

    /// Whether checkpoints were loaded or written for this VPA.
    pub fn has_checkpoint(&self, id: &ObjectId) -> bool {
        self.vpas.get(id).is_some_and(|e| e.has_checkpoint)
    }

    /// Whether a VPA of the namespace that has no checkpoint selects these labels (which
    /// pods start-up history is loaded for).
    pub fn selected_by_vpa_without_checkpoint(&self, namespace: &str, labels: &LabelSet) -> bool {
        self.vpas
            .range(ObjectId::new(namespace, "")..)
            .take_while(|(id, _)| &*id.namespace == namespace)
            .filter(|(_, e)| !e.has_checkpoint)
            .any(|(id, _)| {
                self.model
                    .vpa(id)
                    .and_then(|v| v.selector.as_ref())
                    .is_some_and(|s| s.matches(labels))
            })
    }

    /// Rate-limited aggregation garbage collection (at most once per hour, the first call
    /// always runs). Returns the number of aggregations deleted, `None` when not due.
    pub fn garbage_collect(
        &mut self,
        now: Timestamp,
        target_exists: impl Fn(&ObjectId) -> bool,
    ) -> Option<usize> {
        if now.since(self.last_gc) < AGGREGATE_GC_INTERVAL {
            return None;
        }
        self.last_gc = now;
        Some(self.model.garbage_collect(now, target_exists))
    }
}

/// Upstream's per-cycle conditions plus ours: ConfigUnsupported from the spec or target,
/// ConfigDeprecated deleted, NoPodsMatched and RecommendationProvided, HPAConflict.
fn update_conditions(
    conditions: &mut Conditions,
    input: &VpaInput,
    pods_matched: bool,
    has_recommendation: bool,
    now: Timestamp,
) {
    let unsupported = input.config_error.clone().or(match &input.selector {
        SelectorState::Unsupported(m) => Some(m.clone()),
        _ => None,
    });
    match unsupported {
        Some(message) => conditions.set(CONFIG_UNSUPPORTED, true, "", &message, now),
        None => {
            if !matches!(input.selector, SelectorState::Transient(_)) {
                conditions.delete(CONFIG_UNSUPPORTED);
            }
        }
    }
    conditions.delete(CONFIG_DEPRECATED);
    conditions.update(pods_matched, has_recommendation, now);
    match &input.hpa_conflict {
        Some(message) => conditions.set(HPA_CONFLICT, true, "HPAScalesSameResource", message, now),
        None => conditions.delete(HPA_CONFLICT),
    }
}

#[cfg(test)]
mod tests;
