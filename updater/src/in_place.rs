//! In-place updates: the decision whether a pod may be resized now (upstream
//! `CanInPlaceUpdate`), when a pod that is already resizing falls back to eviction
//! (`CanEvictInPlacingPod`), the per-pod state that outlives a loop ([`InPlaceTracker`]),
//! and the classification of a rejected resize.
//!
//! Fallback rules (mode `InPlaceOrRecreate`, when the replica group can be disrupted): the
//! kubelet reports the resize `Infeasible`; it stays `Deferred` longer than
//! [`DEFERRED_RESIZE_UPDATE_TIMEOUT`]; it stays in progress longer than
//! [`IN_PROGRESS_RESIZE_UPDATE_TIMEOUT`]; the kubelet reports an error or an unexpected
//! reason; or the API server rejects the resize (for example because it would change the
//! pod's QoS class, or decrease a memory limit of a container whose memory resize policy is
//! `NotRequired`, formerly `PreferNoRestart`, on clusters that forbid that).
//!
//! Mode `InPlace` never evicts. A resize is recorded as infeasible only when the kubelet says
//! `Infeasible` or the API server rejects it for node capacity; a transient kubelet `Error`
//! is never recorded (upstream #10093), so a later recommendation is not skipped.

use crate::restriction::GroupStats;
use crate::settings::UpdaterSettings;
use crate::view::{
    ContainerResources, ContainerTarget, PodConditionType, PodView, REASON_DEFERRED, REASON_ERROR,
    REASON_INFEASIBLE, RestartPolicy, UpdateMode, VpaView,
};
use std::collections::{HashMap, HashSet};
use vpa_core::model::{ResourceKind, Resources};
use vpa_core::time::{Duration, Timestamp, since};

/// How long a resize may stay `Deferred` before `InPlaceOrRecreate` evicts the pod.
pub const DEFERRED_RESIZE_UPDATE_TIMEOUT: Duration = Duration::from_minutes(5);
/// How long a resize may stay in progress before `InPlaceOrRecreate` evicts the pod.
pub const IN_PROGRESS_RESIZE_UPDATE_TIMEOUT: Duration = Duration::from_hours(1);

/// The cause type of the API server's node-capacity rejection of a resize (the
/// `PodResizeValidator` admission plugin of Kubernetes 1.36).
pub const INFEASIBLE_CAUSE_NODE_CAPACITY: &str = "NodeCapacity";

/// True while the pod is resizing: its first `PodResizePending` or `PodResizeInProgress`
/// condition is True (upstream `isInPlaceUpdating`).
pub fn is_in_place_updating(pod: &PodView) -> bool {
    pod.conditions
        .iter()
        .find(|c| {
            matches!(
                c.kind,
                PodConditionType::PodResizePending | PodConditionType::PodResizeInProgress
            )
        })
        .is_some_and(|c| c.is_true)
}

/// What the kubelet reports about a resize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeStatus {
    /// No resize pending or in progress.
    None,
    /// Pending, reason `Deferred`: the kubelet waits for room on the node.
    Deferred,
    /// Pending, reason `Infeasible`: the node can never fit it.
    Infeasible,
    /// In progress without a reason.
    InProgress,
    /// In progress with reason `Error`.
    Error,
    /// Pending or in progress with another reason.
    Unknown,
}

/// The resize status from the pod's True `PodResizePending` / `PodResizeInProgress`
/// conditions (pending first).
pub fn resize_status(pod: &PodView) -> ResizeStatus {
    let true_condition = |kind| pod.conditions.iter().find(|c| c.kind == kind && c.is_true);
    if let Some(c) = true_condition(PodConditionType::PodResizePending) {
        return match c.reason.as_str() {
            REASON_INFEASIBLE => ResizeStatus::Infeasible,
            REASON_DEFERRED => ResizeStatus::Deferred,
            _ => ResizeStatus::Unknown,
        };
    }
    if let Some(c) = true_condition(PodConditionType::PodResizeInProgress) {
        return match c.reason.as_str() {
            "" => ResizeStatus::InProgress,
            REASON_ERROR => ResizeStatus::Error,
            _ => ResizeStatus::Unknown,
        };
    }
    ResizeStatus::None
}

/// Why an in-place-mode pod goes to the eviction list instead of being resized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackCause {
    /// The VPA's mode does not resize in place (upstream returns "evict" for it).
    NotInPlaceMode,
    /// The kubelet reports the pending resize `Infeasible`.
    Infeasible,
    /// The resize has been `Deferred` for longer than [`DEFERRED_RESIZE_UPDATE_TIMEOUT`].
    DeferredTooLong,
    /// The pending resize has an unexpected reason.
    UnexpectedPending,
    /// The resize has been in progress for longer than [`IN_PROGRESS_RESIZE_UPDATE_TIMEOUT`].
    InProgressTooLong,
    /// The kubelet reports an error applying the resize.
    ResizeError,
    /// The resize in progress has an unexpected reason or message.
    UnexpectedInProgress,
    /// The resize request failed.
    Rejected(RejectionCause),
}

/// Why a resize request failed (for events, logs and metrics; the decision only depends on
/// whether it is [`RejectionCause::NodeCapacity`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectionCause {
    /// The API server refused it for node capacity (recorded as infeasible in `InPlace`).
    NodeCapacity,
    /// The new resources would change the pod's QoS class, which the API server refuses.
    QosClassChange,
    /// It lowers the memory limit of a container whose memory resize policy is
    /// `NotRequired` (refused by clusters that do not allow that without a restart).
    MemoryLimitDecrease,
    /// No container had resources to set ("no resource patches were calculated to apply").
    NothingToPatch,
    /// The pod is not in a replica group (upstream: "not in replicated pods map").
    NotInReplicaGroup,
    /// Any other failure.
    Other,
}

/// Why an in-place update waits for a later loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeferCause {
    /// Mode `InPlace` while the `InPlace` feature gate is off.
    InPlaceGateOff,
    /// The pod is not in a replica group.
    NotInReplicaGroup,
    /// The pod is `Pending`.
    Pending,
    /// The VPA status has no recommendation yet.
    NoRecommendation,
    /// A resize is already pending or in progress.
    Resizing(ResizeStatus),
    /// The replica group cannot tolerate another disruption now.
    DisruptionBudget,
}

/// The answer of [`can_in_place_update`] (upstream `InPlaceDecision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InPlaceDecision {
    /// Resize now.
    Approved,
    /// Not now.
    Deferred(DeferCause),
    /// Evict instead (`InPlaceOrRecreate` only).
    Evict(FallbackCause),
    /// The kubelet reports the resize infeasible (`InPlace` only): record the attempt, retry.
    Infeasible,
    /// An earlier attempt was infeasible and the recommendation has nothing lower (`InPlace`).
    InfeasibleCached,
}

/// What the tracker remembers about one pod between loops.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodInPlaceState {
    /// When the updater first saw the current resize pending or in progress.
    pub resizing_since: Option<Timestamp>,
    /// The recommendation (status targets) of the last infeasible attempt.
    pub infeasible_attempt: Option<Vec<ContainerTarget>>,
}

/// The in-place state that outlives one loop (upstream keeps it in memory only), by pod UID.
///
/// Transitions: [`InPlaceTracker::resize_seen`] starts the resize clock the first time a
/// resizing pod is evaluated; [`InPlaceTracker::begin_loop`] stops it once the pod is seen
/// not resizing (so the timeouts count from the start of the current resize, as documented
/// upstream) and forgets pods that no longer exist; [`InPlaceTracker::record_infeasible`]
/// stores an infeasible attempt, which only a lower recommendation clears.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InPlaceTracker {
    pods: HashMap<String, PodInPlaceState>,
}

impl InPlaceTracker {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// Call once per loop with every live pod (of every VPA): forgets pods that are gone and
    /// stops the resize clock of pods that are not resizing.
    pub fn begin_loop<'a>(&mut self, live: impl IntoIterator<Item = &'a PodView>) {
        if self.pods.is_empty() {
            return;
        }
        let mut seen: HashSet<&str> = HashSet::new();
        for pod in live {
            seen.insert(pod.uid.as_str());
            if let Some(state) = self.pods.get_mut(pod.uid.as_str())
                && !is_in_place_updating(pod)
            {
                state.resizing_since = None;
            }
        }
        self.pods.retain(|uid, s| {
            seen.contains(uid.as_str())
                && (s.resizing_since.is_some() || s.infeasible_attempt.is_some())
        });
    }

    /// The state of a pod.
    pub fn state(&self, uid: &str) -> Option<&PodInPlaceState> {
        self.pods.get(uid)
    }

    /// The last infeasible attempt of a pod.
    pub fn infeasible_attempt(&self, uid: &str) -> Option<&[ContainerTarget]> {
        self.pods
            .get(uid)
            .and_then(|s| s.infeasible_attempt.as_deref())
    }

    /// Records an infeasible attempt with the VPA status recommendation it tried.
    pub fn record_infeasible(&mut self, uid: &str, recommendation: Vec<ContainerTarget>) {
        self.pods
            .entry(uid.to_string())
            .or_default()
            .infeasible_attempt = Some(recommendation);
    }

    /// When the pod's current resize was first seen; the first call (for a resizing pod)
    /// starts the clock at `now`.
    pub fn resize_seen(&mut self, pod: &PodView, now: Timestamp) -> Timestamp {
        *self
            .pods
            .entry(pod.uid.clone())
            .or_default()
            .resizing_since
            .get_or_insert(now)
    }

    /// The number of pods with state.
    pub fn len(&self) -> usize {
        self.pods.len()
    }

    /// True when no pod has state.
    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }
}

/// Whether a pod that is resizing may be evicted instead (upstream `CanEvictInPlacingPod`):
/// the cause, or `None`. The first evaluation of a resizing pod starts its resize clock.
pub fn can_evict_in_placing_pod(
    pod: &PodView,
    stats: &GroupStats,
    tracker: &mut InPlaceTracker,
    now: Timestamp,
) -> Option<FallbackCause> {
    if !is_in_place_updating(pod) {
        return None;
    }
    let since_seen = tracker.resize_seen(pod, now);
    if !stats.is_pod_disruptable() {
        return None;
    }
    let elapsed = since(Some(now), Some(since_seen));
    if let Some(c) = pod.condition(PodConditionType::PodResizePending) {
        return match c.reason.as_str() {
            REASON_DEFERRED => {
                (elapsed > DEFERRED_RESIZE_UPDATE_TIMEOUT).then_some(FallbackCause::DeferredTooLong)
            }
            REASON_INFEASIBLE => Some(FallbackCause::Infeasible),
            _ => Some(FallbackCause::UnexpectedPending),
        };
    }
    if let Some(c) = pod.condition(PodConditionType::PodResizeInProgress) {
        return if c.reason.is_empty() && c.message.is_empty() {
            (elapsed > IN_PROGRESS_RESIZE_UPDATE_TIMEOUT)
                .then_some(FallbackCause::InProgressTooLong)
        } else if c.reason == REASON_ERROR {
            Some(FallbackCause::ResizeError)
        } else {
            Some(FallbackCause::UnexpectedInProgress)
        };
    }
    None
}

/// True when no container (of `spec.containers`) has a `RestartContainer` resize policy
/// (upstream `IsNonDisruptiveResize`).
pub fn is_non_disruptive_resize(pod: &PodView) -> bool {
    pod.containers.iter().filter(|c| !c.init).all(|c| {
        c.resize_policy.cpu != RestartPolicy::RestartContainer
            && c.resize_policy.memory != RestartPolicy::RestartContainer
    })
}

/// True when some container target of `new` is lower than the same container's target in
/// `last` (upstream `RecommendationHasLowerResource`): only a lower recommendation retries
/// an infeasible resize.
pub fn has_lower_target<'a>(
    last: &[ContainerTarget],
    new: impl IntoIterator<Item = (&'a str, &'a Resources)>,
) -> bool {
    new.into_iter().any(|(name, target)| {
        last.iter()
            .find(|l| l.container_name == name)
            .is_some_and(|l| {
                [ResourceKind::Cpu, ResourceKind::Memory].iter().any(
                    |&k| matches!((target.get(k), l.target.get(k)), (Some(n), Some(o)) if n < o),
                )
            })
    })
}

/// Whether the pod may be resized in place now (upstream `CanInPlaceUpdate`). `stats` is
/// the pod's replica group (`None`: not in a group). Evaluating a resizing pod in mode
/// `InPlaceOrRecreate` starts its resize clock.
pub fn can_in_place_update(
    vpa: &VpaView,
    pod: &PodView,
    stats: Option<&GroupStats>,
    settings: &UpdaterSettings,
    tracker: &mut InPlaceTracker,
    now: Timestamp,
) -> InPlaceDecision {
    match vpa.mode {
        UpdateMode::InPlaceOrRecreate => {}
        UpdateMode::InPlace => {
            if !settings.gates.in_place {
                return InPlaceDecision::Deferred(DeferCause::InPlaceGateOff);
            }
        }
        _ => return InPlaceDecision::Evict(FallbackCause::NotInPlaceMode),
    }
    let Some(stats) = stats else {
        return InPlaceDecision::Deferred(DeferCause::NotInReplicaGroup);
    };
    if pod.is_pending() {
        return InPlaceDecision::Deferred(DeferCause::Pending);
    }
    let Some(recommendation) = vpa.recommendation.as_deref() else {
        return InPlaceDecision::Deferred(DeferCause::NoRecommendation);
    };
    if vpa.mode == UpdateMode::InPlace
        && let Some(last) = tracker.infeasible_attempt(&pod.uid)
        && !has_lower_target(
            last,
            recommendation
                .iter()
                .map(|r| (r.container_name.as_str(), &r.target)),
        )
    {
        return InPlaceDecision::InfeasibleCached;
    }
    let status = resize_status(pod);
    if status != ResizeStatus::None {
        if vpa.mode == UpdateMode::InPlace {
            // Only the kubelet's Infeasible is final; a kubelet Error is transient (#10093).
            return match status {
                ResizeStatus::Infeasible => InPlaceDecision::Infeasible,
                _ => InPlaceDecision::Deferred(DeferCause::Resizing(status)),
            };
        }
        return match can_evict_in_placing_pod(pod, stats, tracker, now) {
            Some(cause) => InPlaceDecision::Evict(cause),
            None => InPlaceDecision::Deferred(DeferCause::Resizing(status)),
        };
    }
    if settings.in_place_skip_disruption_budget && is_non_disruptive_resize(pod) {
        return InPlaceDecision::Approved;
    }
    if stats.is_pod_disruptable() {
        InPlaceDecision::Approved
    } else {
        InPlaceDecision::Deferred(DeferCause::DisruptionBudget)
    }
}

/// True when a failed resize request is the API server's node-capacity rejection: HTTP
/// Forbidden with a cause of type [`INFEASIBLE_CAUSE_NODE_CAPACITY`] (upstream
/// `isInfeasibleError`). Every other failure is transient and is never recorded.
pub fn is_infeasible_rejection<'a>(
    status_reason: &str,
    cause_types: impl IntoIterator<Item = &'a str>,
) -> bool {
    status_reason == "Forbidden"
        && cause_types
            .into_iter()
            .any(|t| t == INFEASIBLE_CAUSE_NODE_CAPACITY)
}

/// A pod's QoS class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QosClass {
    /// No cpu or memory requests or limits.
    BestEffort,
    /// Anything in between.
    Burstable,
    /// Every container has cpu and memory limits, and requests equal limits.
    Guaranteed,
}

/// The QoS class of a pod whose containers (regular and init) have these resources, by
/// Kubernetes' rules for cpu and memory (pod-level resources are not modelled).
pub fn qos_class<'a>(containers: impl IntoIterator<Item = &'a ContainerResources>) -> QosClass {
    let mut requests = [None::<i128>; 2];
    let mut limits = [None::<i128>; 2];
    let mut guaranteed = true;
    let add = |acc: &mut Option<i128>, v: i64| *acc = Some(acc.unwrap_or(0) + i128::from(v));
    for c in containers {
        let mut limits_found = 0;
        for (i, kind) in [ResourceKind::Cpu, ResourceKind::Memory]
            .into_iter()
            .enumerate()
        {
            if let Some(v) = c.requests.get(kind).filter(|&v| v > 0) {
                add(&mut requests[i], v);
            }
            if let Some(v) = c.limits.get(kind).filter(|&v| v > 0) {
                add(&mut limits[i], v);
                limits_found += 1;
            }
        }
        if limits_found < 2 {
            guaranteed = false;
        }
    }
    if requests.iter().all(Option::is_none) && limits.iter().all(Option::is_none) {
        return QosClass::BestEffort;
    }
    let same = requests
        .iter()
        .zip(&limits)
        .all(|(r, l)| r.is_none() || r == l);
    let counts = requests.iter().flatten().count() == limits.iter().flatten().count();
    if guaranteed && same && counts {
        QosClass::Guaranteed
    } else {
        QosClass::Burstable
    }
}

/// The spec resources of every container after setting `new` on the containers it names
/// (by index into `pod.containers`); a resource missing from `new` keeps its value.
pub fn resources_after<'a>(
    pod: &PodView,
    new: impl IntoIterator<Item = (usize, &'a ContainerResources)> + Clone,
) -> Vec<ContainerResources> {
    pod.containers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut r = c.spec;
            for (j, n) in new.clone() {
                if j == i {
                    r.requests = overlay(r.requests, n.requests);
                    r.limits = overlay(r.limits, n.limits);
                }
            }
            r
        })
        .collect()
}

fn overlay(base: Resources, top: Resources) -> Resources {
    Resources {
        cpu: top.cpu.or(base.cpu),
        memory: top.memory.or(base.memory),
    }
}

/// Why the API server probably refused a resize that set `new` (by container index): a QoS
/// class change, a memory limit decrease under resize policy `NotRequired`, else `Other`.
pub fn likely_rejection<'a>(
    pod: &PodView,
    new: impl IntoIterator<Item = (usize, &'a ContainerResources)> + Clone,
) -> RejectionCause {
    let after = resources_after(pod, new);
    if qos_class(pod.containers.iter().map(|c| &c.spec)) != qos_class(after.iter()) {
        return RejectionCause::QosClassChange;
    }
    let lowers_memory_limit = pod.containers.iter().zip(&after).any(|(c, a)| {
        c.resize_policy.memory == RestartPolicy::NotRequired
            && matches!((c.spec.limits.memory, a.limits.memory), (Some(old), Some(new)) if new < old)
    });
    if lowers_memory_limit {
        RejectionCause::MemoryLimitDecrease
    } else {
        RejectionCause::Other
    }
}

#[cfg(test)]
mod tests;
