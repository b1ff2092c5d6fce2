//! The recommender's cluster model: pods and their containers, aggregation keys, VPAs and
//! which aggregations each VPA selects, and garbage collection of stale aggregations
//! (upstream `model/cluster.go`, `model/vpa.go`).
//!
//! Aggregations are grouped by (namespace, label set): every pod with the same labels in one
//! namespace shares one group, and a group holds one aggregate per container name. VPAs match
//! groups, not containers, so a VPA's aggregates are found without scanning every container,
//! and a new group is matched against the VPAs of its namespace only.

use super::aggregate::AggregateContainerState;
use super::config::AggregationsConfig;
use super::container::{ContainerState, OomError};
use super::resources::Resources;
use super::sample::UsageSample;
use crate::labels::{LabelSet, Selector, canonical_string};
use crate::policy::{ContainerScalingMode, PodResourcePolicy, container_policy};
use crate::time::Timestamp;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use thiserror::Error;

/// A namespaced name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId {
    /// Namespace.
    pub namespace: Arc<str>,
    /// Name.
    pub name: Arc<str>,
}

impl ObjectId {
    /// A namespaced name.
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: Arc::from(namespace),
            name: Arc::from(name),
        }
    }
}

impl std::fmt::Display for ObjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A pod's phase, as far as the model cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PodPhase {
    /// Pending.
    Pending,
    /// Running (or Unknown): active.
    #[default]
    Running,
    /// Succeeded: no longer active.
    Succeeded,
    /// Failed: no longer active.
    Failed,
}

impl PodPhase {
    /// Not Succeeded and not Failed.
    pub fn is_active(self) -> bool {
        !matches!(self, PodPhase::Succeeded | PodPhase::Failed)
    }
}

/// A sample or OOM for a pod or container the model does not know.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ModelError {
    /// Unknown pod.
    #[error("pod {0} is not in the model")]
    UnknownPod(ObjectId),
    /// Unknown container.
    #[error("container {container} of pod {pod} is not in the model")]
    UnknownContainer {
        /// The pod.
        pod: ObjectId,
        /// The container.
        container: String,
    },
    /// An OOM that was not recorded.
    #[error(transparent)]
    Oom(#[from] OomError),
}

type GroupId = u32;

#[derive(Debug)]
struct Group {
    namespace: Arc<str>,
    labels: LabelSet,
    aggregates: BTreeMap<String, AggregateContainerState>,
    /// Pods of this group currently in the model.
    pods: BTreeSet<ObjectId>,
    /// VPAs that select this group.
    vpas: BTreeSet<ObjectId>,
}

#[derive(Debug)]
struct Pod {
    group: GroupId,
    phase: PodPhase,
    containers: BTreeMap<String, ContainerState>,
}

/// One VPA as the model sees it.
#[derive(Debug)]
pub struct Vpa {
    /// The pod selector of its target; `None` selects nothing (unresolved target).
    pub selector: Option<Selector>,
    /// Its resource policy.
    pub policy: Option<PodResourcePolicy>,
    /// State loaded from checkpoints at start-up, by container name; merged into every
    /// recommendation for the life of the process.
    pub initial_state: BTreeMap<String, AggregateContainerState>,
    groups: BTreeSet<GroupId>,
}

/// The cluster model.
#[derive(Debug)]
pub struct ClusterModel {
    config: Arc<AggregationsConfig>,
    per_vpa_config: bool,
    pods: HashMap<ObjectId, Pod>,
    groups: HashMap<GroupId, Group>,
    group_index: HashMap<(Arc<str>, String), GroupId>,
    next_group: GroupId,
    vpas: BTreeMap<ObjectId, Vpa>,
}

impl ClusterModel {
    /// An empty model. `per_vpa_config` is the PerVPAConfig feature gate.
    pub fn new(config: Arc<AggregationsConfig>, per_vpa_config: bool) -> Self {
        Self {
            config,
            per_vpa_config,
            pods: HashMap::new(),
            groups: HashMap::new(),
            group_index: HashMap::new(),
            next_group: 0,
            vpas: BTreeMap::new(),
        }
    }

    /// Number of pods.
    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    /// Number of aggregations (one per namespace, label set and container name).
    pub fn aggregation_count(&self) -> usize {
        self.groups.values().map(|g| g.aggregates.len()).sum()
    }

    fn group_for(&mut self, namespace: &Arc<str>, labels: &LabelSet) -> GroupId {
        let key = (namespace.clone(), canonical_string(labels));
        if let Some(&g) = self.group_index.get(&key) {
            return g;
        }
        let id = self.next_group;
        self.next_group += 1;
        let vpas = self
            .vpas
            .range(ObjectId::new(namespace, "")..)
            .take_while(|(vid, _)| vid.namespace == *namespace)
            .filter(|(_, v)| v.selector.as_ref().is_some_and(|s| s.matches(labels)))
            .map(|(vid, _)| vid.clone())
            .collect::<BTreeSet<_>>();
        for vid in &vpas {
            if let Some(v) = self.vpas.get_mut(vid) {
                v.groups.insert(id);
            }
        }
        self.groups.insert(
            id,
            Group {
                namespace: namespace.clone(),
                labels: labels.clone(),
                aggregates: BTreeMap::new(),
                pods: BTreeSet::new(),
                vpas,
            },
        );
        self.group_index.insert(key, id);
        id
    }

    /// Adds or updates a pod. When its labels change, its containers move to the
    /// aggregations of the new label set (their own state is kept).
    pub fn add_or_update_pod(&mut self, id: &ObjectId, labels: &LabelSet, phase: PodPhase) {
        let group = self.group_for(&id.namespace, labels);
        match self.pods.get_mut(id) {
            Some(pod) => {
                pod.phase = phase;
                if pod.group != group {
                    let old = std::mem::replace(&mut pod.group, group);
                    let names: Vec<String> = pod.containers.keys().cloned().collect();
                    if let Some(g) = self.groups.get_mut(&old) {
                        g.pods.remove(id);
                    }
                    for name in names {
                        self.ensure_aggregate(group, &name);
                    }
                }
            }
            None => {
                self.pods.insert(
                    id.clone(),
                    Pod {
                        group,
                        phase,
                        containers: BTreeMap::new(),
                    },
                );
            }
        }
        if let Some(g) = self.groups.get_mut(&group) {
            g.pods.insert(id.clone());
        }
    }

    fn ensure_aggregate(&mut self, group: GroupId, container: &str) {
        let Some(g) = self.groups.get(&group) else {
            return;
        };
        if g.aggregates.contains_key(container) {
            return;
        }
        let mut state = AggregateContainerState::new(&self.config, Timestamp::UNIX_EPOCH);
        // Link to the VPAs that select this group (the last one wins, as upstream's order of
        // linking is unspecified when several VPAs match).
        for vid in &g.vpas {
            if let Some(v) = self.vpas.get(vid) {
                state.is_under_vpa = true;
                state.update_from_policy(
                    container_policy(v.policy.as_ref(), container),
                    self.per_vpa_config,
                );
            }
        }
        if let Some(g) = self.groups.get_mut(&group) {
            g.aggregates.insert(container.to_string(), state);
        }
    }

    /// Adds or updates a container of a known pod, created at `now`.
    pub fn add_or_update_container(
        &mut self,
        pod: &ObjectId,
        container: &str,
        request: Resources,
        now: Timestamp,
    ) -> Result<(), ModelError> {
        let p = self
            .pods
            .get_mut(pod)
            .ok_or_else(|| ModelError::UnknownPod(pod.clone()))?;
        let group = p.group;
        p.containers
            .entry(container.to_string())
            .and_modify(|c| c.request = request)
            .or_insert_with(|| ContainerState::new(request));
        let fresh = self
            .groups
            .get(&group)
            .is_some_and(|g| !g.aggregates.contains_key(container));
        self.ensure_aggregate(group, container);
        if fresh
            && let Some(a) = self
                .groups
                .get_mut(&group)
                .and_then(|g| g.aggregates.get_mut(container))
        {
            a.creation_time = now;
        }
        Ok(())
    }

    /// Removes a pod (its aggregations stay until garbage collection).
    pub fn delete_pod(&mut self, id: &ObjectId) {
        if let Some(p) = self.pods.remove(id)
            && let Some(g) = self.groups.get_mut(&p.group)
        {
            g.pods.remove(id);
        }
    }

    fn container_and_aggregate(
        &mut self,
        pod: &ObjectId,
        container: &str,
    ) -> Result<(&mut ContainerState, &mut AggregateContainerState), ModelError> {
        let p = self
            .pods
            .get_mut(pod)
            .ok_or_else(|| ModelError::UnknownPod(pod.clone()))?;
        let unknown = || ModelError::UnknownContainer {
            pod: pod.clone(),
            container: container.to_string(),
        };
        let c = p.containers.get_mut(container).ok_or_else(unknown)?;
        let a = self
            .groups
            .get_mut(&p.group)
            .and_then(|g| g.aggregates.get_mut(container))
            .ok_or_else(unknown)?;
        Ok((c, a))
    }

    /// Feeds a usage sample; `Ok(false)` when it was a duplicate or invalid.
    pub fn add_sample(
        &mut self,
        pod: &ObjectId,
        container: &str,
        sample: &UsageSample,
    ) -> Result<bool, ModelError> {
        let (c, a) = self.container_and_aggregate(pod, container)?;
        Ok(c.add_sample(sample, a))
    }

    /// Feeds one metrics measurement of a container (either resource may be absent), with
    /// the container's current requests as the samples' requests (CPU samples are weighted
    /// by request). Returns how many samples were accepted.
    pub fn add_usage(
        &mut self,
        pod: &ObjectId,
        container: &str,
        ts: Timestamp,
        cpu_millis: Option<super::resources::ResourceAmount>,
        memory_bytes: Option<super::resources::ResourceAmount>,
    ) -> Result<usize, ModelError> {
        let (c, a) = self.container_and_aggregate(pod, container)?;
        let mut accepted = 0;
        if let Some(cpu) = cpu_millis {
            let mut s = UsageSample::cpu(ts, cpu);
            s.request = c.request.cpu.unwrap_or(0);
            accepted += usize::from(c.add_sample(&s, a));
        }
        if let Some(mem) = memory_bytes {
            let mut s = UsageSample::memory(ts, mem);
            s.request = c.request.memory.unwrap_or(0);
            accepted += usize::from(c.add_sample(&s, a));
        }
        Ok(accepted)
    }

    /// The requests of a container of a pod in the model.
    pub fn container_request(&self, pod: &ObjectId, container: &str) -> Option<Resources> {
        self.pods
            .get(pod)
            .and_then(|p| p.containers.get(container))
            .map(|c| c.request)
    }

    /// Records an OOM kill.
    pub fn record_oom(
        &mut self,
        pod: &ObjectId,
        container: &str,
        ts: Timestamp,
        requested_memory: i64,
    ) -> Result<(), ModelError> {
        let (c, a) = self.container_and_aggregate(pod, container)?;
        c.record_oom(ts, requested_memory, a)?;
        Ok(())
    }

    /// Adds or updates a VPA. A changed selector re-links its aggregations; the policy is
    /// applied to every aggregation it selects.
    pub fn add_or_update_vpa(
        &mut self,
        id: &ObjectId,
        selector: Option<Selector>,
        policy: Option<PodResourcePolicy>,
    ) {
        let selector_changed = self.vpas.get(id).is_none_or(|v| v.selector != selector);
        if selector_changed {
            self.unlink_vpa(id);
        }
        let vpa = self.vpas.entry(id.clone()).or_insert_with(|| Vpa {
            selector: None,
            policy: None,
            initial_state: BTreeMap::new(),
            groups: BTreeSet::new(),
        });
        vpa.selector = selector;
        vpa.policy = policy;
        if selector_changed && let Some(sel) = vpa.selector.as_ref() {
            for (gid, g) in &mut self.groups {
                if g.namespace == id.namespace && sel.matches(&g.labels) {
                    vpa.groups.insert(*gid);
                    g.vpas.insert(id.clone());
                }
            }
        }
        let groups: Vec<GroupId> = vpa.groups.iter().copied().collect();
        let policy = vpa.policy.clone();
        for gid in groups {
            if let Some(g) = self.groups.get_mut(&gid) {
                for (name, a) in &mut g.aggregates {
                    a.is_under_vpa = true;
                    a.update_from_policy(
                        container_policy(policy.as_ref(), name),
                        self.per_vpa_config,
                    );
                }
            }
        }
    }

    fn unlink_vpa(&mut self, id: &ObjectId) {
        let Some(v) = self.vpas.get_mut(id) else {
            return;
        };
        for gid in std::mem::take(&mut v.groups) {
            if let Some(g) = self.groups.get_mut(&gid) {
                g.vpas.remove(id);
                if g.vpas.is_empty() {
                    for a in g.aggregates.values_mut() {
                        a.is_under_vpa = false;
                    }
                }
            }
        }
    }

    /// Removes a VPA; its aggregations are no longer autoscaled by it.
    pub fn delete_vpa(&mut self, id: &ObjectId) {
        self.unlink_vpa(id);
        self.vpas.remove(id);
    }

    /// A VPA of the model.
    pub fn vpa(&self, id: &ObjectId) -> Option<&Vpa> {
        self.vpas.get(id)
    }

    /// A VPA of the model, mutably (to load checkpoints into `initial_state`).
    pub fn vpa_mut(&mut self, id: &ObjectId) -> Option<&mut Vpa> {
        self.vpas.get_mut(id)
    }

    /// Number of pods the VPA selects.
    pub fn vpa_pod_count(&self, id: &ObjectId) -> usize {
        self.vpas.get(id).map_or(0, |v| {
            v.groups
                .iter()
                .filter_map(|g| self.groups.get(g))
                .map(|g| g.pods.len())
                .sum()
        })
    }

    /// The recommendation input of a VPA: its aggregations merged by container name into
    /// fresh states created at `now`, plus the checkpoint-loaded state; containers whose
    /// policy is `Off` are dropped, the rest take the policy's controlled resources.
    pub fn vpa_container_states(
        &mut self,
        id: &ObjectId,
        now: Timestamp,
    ) -> BTreeMap<String, AggregateContainerState> {
        let mut out: BTreeMap<String, AggregateContainerState> = BTreeMap::new();
        let Some(vpa) = self.vpas.get_mut(id) else {
            return out;
        };
        for gid in &vpa.groups {
            if let Some(g) = self.groups.get_mut(gid) {
                for (name, a) in &mut g.aggregates {
                    let merged = out
                        .entry(name.clone())
                        .or_insert_with(|| AggregateContainerState::new(&self.config, now));
                    // Same configuration on both sides: merging cannot fail.
                    let _ = merged.merge(a);
                }
            }
        }
        for (name, initial) in &mut vpa.initial_state {
            let merged = out
                .entry(name.clone())
                .or_insert_with(|| AggregateContainerState::new(&self.config, now));
            let _ = merged.merge(initial);
        }
        let policy = vpa.policy.as_ref();
        out.retain(|name, state| {
            let p = container_policy(policy, name);
            if p.and_then(|p| p.mode) == Some(ContainerScalingMode::Off) {
                return false;
            }
            state.update_from_policy(p, self.per_vpa_config);
            true
        });
        out
    }

    /// The open memory windows of the containers of the pods a VPA selects: for every such
    /// container with `now < window_end` and a non-zero peak, `(pod, container, window_end,
    /// peak)`. Upstream subtracts these peaks from checkpoints (the window is still open, and
    /// after a restart the container would record it again).
    pub fn vpa_open_memory_windows(
        &self,
        id: &ObjectId,
        now: Timestamp,
    ) -> Vec<(
        ObjectId,
        String,
        Timestamp,
        super::resources::ResourceAmount,
    )> {
        let mut out = Vec::new();
        let Some(vpa) = self.vpas.get(id) else {
            return out;
        };
        for gid in &vpa.groups {
            let Some(g) = self.groups.get(gid) else {
                continue;
            };
            for pid in &g.pods {
                let Some(p) = self.pods.get(pid) else {
                    continue;
                };
                for (name, c) in &p.containers {
                    let peak = c.current_peak();
                    if let Some(end) = c.window_end
                        && now < end
                        && peak > 0
                    {
                        out.push((pid.clone(), name.clone(), end, peak));
                    }
                }
            }
        }
        out
    }

    /// Restores the open memory window of a container after a restart: when the container
    /// has no window yet, its window becomes `window_end` with `peak` as its peak, and the
    /// peak is added to its aggregate at `window_end` (checkpoints hold aggregates without
    /// open windows). Returns whether it was restored.
    pub fn restore_memory_window(
        &mut self,
        pod: &ObjectId,
        container: &str,
        window_end: Timestamp,
        peak: super::resources::ResourceAmount,
    ) -> Result<bool, ModelError> {
        let (c, a) = self.container_and_aggregate(pod, container)?;
        if c.window_end.is_some() || peak <= 0 {
            return Ok(false);
        }
        c.window_end = Some(window_end);
        c.memory_peak = peak;
        a.add_sample(&UsageSample::memory(window_end, peak));
        Ok(true)
    }

    /// The pods a VPA selects.
    pub fn vpa_pods(&self, id: &ObjectId) -> impl Iterator<Item = &ObjectId> {
        self.vpas
            .get(id)
            .into_iter()
            .flat_map(|v| v.groups.iter())
            .filter_map(|g| self.groups.get(g))
            .flat_map(|g| g.pods.iter())
    }

    /// Whether the model has this pod.
    pub fn has_pod(&self, id: &ObjectId) -> bool {
        self.pods.contains_key(id)
    }

    /// Ids of all pods in the model.
    pub fn pod_ids(&self) -> impl Iterator<Item = &ObjectId> {
        self.pods.keys()
    }

    /// Whether a VPA of the namespace selects these labels (for `--memory-saver`).
    pub fn selected_by_any_vpa(&self, namespace: &str, labels: &LabelSet) -> bool {
        let start = ObjectId::new(namespace, "");
        self.vpas
            .range(start..)
            .take_while(|(id, _)| &*id.namespace == namespace)
            .any(|(_, v)| v.selector.as_ref().is_some_and(|s| s.matches(labels)))
    }

    /// Number of VPAs in the model.
    pub fn vpa_count(&self) -> usize {
        self.vpas.len()
    }

    /// Ids of the VPAs in the model.
    pub fn vpa_ids(&self) -> impl Iterator<Item = &ObjectId> {
        self.vpas.keys()
    }

    /// Deletes aggregations that are expired, or empty and not contributive. A group is
    /// contributive when one of its pods is active, or when `target_exists` says a VPA that
    /// selects it still has an existing target. Returns how many aggregations were deleted.
    pub fn garbage_collect(
        &mut self,
        now: Timestamp,
        target_exists: impl Fn(&ObjectId) -> bool,
    ) -> usize {
        let mut deleted = 0;
        let pods = &self.pods;
        let mut empty_groups = Vec::new();
        for (gid, g) in &mut self.groups {
            let contributive = g
                .pods
                .iter()
                .any(|p| pods.get(p).is_some_and(|p| p.phase.is_active()))
                || g.vpas.iter().any(&target_exists);
            let before = g.aggregates.len();
            g.aggregates
                .retain(|_, a| !(a.is_expired(now) || (!contributive && a.is_empty())));
            deleted += before - g.aggregates.len();
            if g.aggregates.is_empty() && g.pods.is_empty() {
                empty_groups.push(*gid);
            }
        }
        for gid in empty_groups {
            if let Some(g) = self.groups.remove(&gid) {
                self.group_index
                    .remove(&(g.namespace.clone(), canonical_string(&g.labels)));
                for vid in &g.vpas {
                    if let Some(v) = self.vpas.get_mut(vid) {
                        v.groups.remove(&gid);
                    }
                }
            }
        }
        deleted
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::policy::{ContainerResourcePolicy, ControlledResources};
    use crate::time::Duration;

    fn labels(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn app(v: &str) -> Option<Selector> {
        Some(Selector::new([("app", v)], []).unwrap())
    }

    fn t0() -> Timestamp {
        Timestamp::from_unix_seconds(1_800_000_000)
    }

    fn model() -> ClusterModel {
        ClusterModel::new(Arc::new(AggregationsConfig::default()), false)
    }

    fn feed(m: &mut ClusterModel, pod: &ObjectId, container: &str, n: i64, milli: i64) {
        for i in 0..n {
            let t = t0().add(Duration::from_minutes(i));
            m.add_sample(pod, container, &UsageSample::cpu(t, milli))
                .unwrap();
            m.add_sample(pod, container, &UsageSample::memory(t, 100 << 20))
                .unwrap();
        }
    }

    #[test]
    fn pods_with_equal_labels_share_aggregates_and_vpas_merge_by_container() {
        let mut m = model();
        let (p1, p2, p3) = (
            ObjectId::new("ns", "web-1"),
            ObjectId::new("ns", "web-2"),
            ObjectId::new("ns", "web-3"),
        );
        m.add_or_update_pod(
            &p1,
            &labels(&[("app", "web"), ("hash", "a")]),
            PodPhase::Running,
        );
        m.add_or_update_pod(
            &p2,
            &labels(&[("app", "web"), ("hash", "a")]),
            PodPhase::Running,
        );
        m.add_or_update_pod(
            &p3,
            &labels(&[("app", "web"), ("hash", "b")]),
            PodPhase::Running,
        );
        for p in [&p1, &p2, &p3] {
            m.add_or_update_container(p, "app", Resources::default(), t0())
                .unwrap();
            feed(&mut m, p, "app", 10, 500);
        }
        assert_eq!(
            m.aggregation_count(),
            2,
            "two label sets, one container name"
        );
        let vpa = ObjectId::new("ns", "web");
        m.add_or_update_vpa(&vpa, app("web"), None);
        assert_eq!(m.vpa_pod_count(&vpa), 3);
        let states = m.vpa_container_states(&vpa, t0());
        assert_eq!(states.len(), 1);
        assert_eq!(states["app"].total_samples_count, 30);
        // Another namespace never matches.
        let other = ObjectId::new("other", "web");
        m.add_or_update_vpa(&other, app("web"), None);
        assert_eq!(m.vpa_pod_count(&other), 0);
    }

    #[test]
    fn a_vpa_created_first_links_pods_that_come_later() {
        let mut m = model();
        let vpa = ObjectId::new("ns", "web");
        m.add_or_update_vpa(&vpa, app("web"), None);
        let p = ObjectId::new("ns", "web-1");
        m.add_or_update_pod(&p, &labels(&[("app", "web")]), PodPhase::Running);
        m.add_or_update_container(&p, "app", Resources::default(), t0())
            .unwrap();
        feed(&mut m, &p, "app", 5, 100);
        assert_eq!(m.vpa_pod_count(&vpa), 1);
        assert_eq!(
            m.vpa_container_states(&vpa, t0())["app"].total_samples_count,
            5
        );
    }

    #[test]
    fn policy_off_drops_the_container_and_controlled_resources_apply() {
        let mut m = model();
        let p = ObjectId::new("ns", "web-1");
        m.add_or_update_pod(&p, &labels(&[("app", "web")]), PodPhase::Running);
        for c in ["app", "sidecar"] {
            m.add_or_update_container(&p, c, Resources::default(), t0())
                .unwrap();
            feed(&mut m, &p, c, 3, 100);
        }
        let policy = PodResourcePolicy {
            container_policies: vec![
                ContainerResourcePolicy {
                    container_name: "sidecar".into(),
                    mode: Some(ContainerScalingMode::Off),
                    ..Default::default()
                },
                ContainerResourcePolicy {
                    container_name: "*".into(),
                    controlled_resources: Some(ControlledResources::from_names(["memory"])),
                    ..Default::default()
                },
            ],
        };
        let vpa = ObjectId::new("ns", "web");
        m.add_or_update_vpa(&vpa, app("web"), Some(policy));
        let states = m.vpa_container_states(&vpa, t0());
        assert_eq!(states.keys().collect::<Vec<_>>(), ["app"]);
        assert!(!states["app"].controlled_resources.cpu);
    }

    #[test]
    fn label_change_moves_containers_and_selector_change_relinks() {
        let mut m = model();
        let p = ObjectId::new("ns", "web-1");
        m.add_or_update_pod(&p, &labels(&[("app", "web")]), PodPhase::Running);
        m.add_or_update_container(&p, "app", Resources::default(), t0())
            .unwrap();
        let web = ObjectId::new("ns", "web");
        m.add_or_update_vpa(&web, app("web"), None);
        assert_eq!(m.vpa_pod_count(&web), 1);
        m.add_or_update_pod(&p, &labels(&[("app", "api")]), PodPhase::Running);
        assert_eq!(m.vpa_pod_count(&web), 0);
        m.add_or_update_vpa(&web, app("api"), None);
        assert_eq!(m.vpa_pod_count(&web), 1);
        // A selector of None (unresolvable target) selects nothing but keeps the VPA.
        m.add_or_update_vpa(&web, None, None);
        assert_eq!(m.vpa_pod_count(&web), 0);
        assert!(m.vpa(&web).is_some());
    }

    #[test]
    fn garbage_collection_keeps_contributive_and_recent_aggregations() {
        let mut m = model();
        let (live, gone) = (ObjectId::new("ns", "live"), ObjectId::new("ns", "gone"));
        m.add_or_update_pod(&live, &labels(&[("app", "a")]), PodPhase::Running);
        m.add_or_update_pod(&gone, &labels(&[("app", "b")]), PodPhase::Running);
        for p in [&live, &gone] {
            m.add_or_update_container(p, "c", Resources::default(), t0())
                .unwrap();
        }
        feed(&mut m, &live, "c", 3, 100);
        // `gone` has no CPU samples (empty) and is deleted: not contributive any more.
        m.delete_pod(&gone);
        assert_eq!(m.garbage_collect(t0(), |_| false), 1);
        assert_eq!(m.aggregation_count(), 1);
        // Eight days after the last sample the live one expires too.
        assert_eq!(
            m.garbage_collect(t0().add(Duration::from_hours(8 * 24 + 1)), |_| false),
            1
        );
        assert_eq!(m.aggregation_count(), 0);
    }

    #[test]
    fn an_existing_target_keeps_empty_aggregations_of_deleted_pods() {
        let mut m = model();
        let p = ObjectId::new("ns", "job-1");
        m.add_or_update_pod(&p, &labels(&[("app", "job")]), PodPhase::Succeeded);
        m.add_or_update_container(&p, "c", Resources::default(), t0())
            .unwrap();
        let vpa = ObjectId::new("ns", "job");
        m.add_or_update_vpa(&vpa, app("job"), None);
        // Succeeded pod: not active; but the VPA's target still exists.
        assert_eq!(m.garbage_collect(t0(), |v| v == &vpa), 0);
        assert_eq!(m.garbage_collect(t0(), |_| false), 1);
    }

    #[test]
    fn samples_for_unknown_pods_are_errors() {
        let mut m = model();
        let p = ObjectId::new("ns", "nope");
        assert_eq!(
            m.add_sample(&p, "c", &UsageSample::cpu(t0(), 1)),
            Err(ModelError::UnknownPod(p.clone()))
        );
        m.add_or_update_pod(&p, &LabelSet::new(), PodPhase::Running);
        assert!(matches!(
            m.record_oom(&p, "c", t0(), 1),
            Err(ModelError::UnknownContainer { .. })
        ));
    }
}
