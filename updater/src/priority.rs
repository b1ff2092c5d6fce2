//! Which pods need an update and in which order (upstream `priority_processor.go`,
//! `update_priority_calculator.go`).
//!
//! A pod's priority sums, per resource over its observed containers with a recommendation,
//! `|max(request, 1) − target| / max(request, 1)` in milli units. A pod is updated when some
//! request is outside the recommended range, when a container was OOM-killed quickly after
//! starting (unless nothing would change), or when it has run for
//! `--in-recommendation-bounds-eviction-lifetime-threshold` and its priority reaches
//! `--pod-update-threshold`. Pods that want more resources go first, then larger differences;
//! ties, which upstream leaves to Go's unstable sort, go by namespace, name and UID.

use crate::in_place::{InPlaceTracker, has_lower_target};
use crate::settings::UpdaterSettings;
use crate::view::{OOM_KILLED, PodView, UpdateMode, VpaView};
use std::cmp::Ordering;
use vpa_core::model::{ResourceAmount, ResourceKind};
use vpa_core::time::{Duration, Timestamp, since};

const KINDS: [ResourceKind; 2] = [ResourceKind::Cpu, ResourceKind::Memory];

/// The update priority of a pod (upstream `PodPriority`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PodPriority {
    /// Some container's request is outside its recommended range (or missing).
    pub outside_recommended_range: bool,
    /// Some container's target is above its request (or the request is missing).
    pub scale_up: bool,
    /// The summed relative difference between requests and targets.
    pub resource_diff: f64,
}

impl PodPriority {
    /// The update order: `Less` when `self` goes before `other` (scale-ups first, then the
    /// larger difference).
    pub fn update_order(&self, other: &PodPriority) -> Ordering {
        other
            .scale_up
            .cmp(&self.scale_up)
            .then_with(|| other.resource_diff.total_cmp(&self.resource_diff))
    }
}

/// An amount in milli units, as upstream compares quantities (`MilliValue`): CPU amounts are
/// millicores already, memory bytes are multiplied by 1000.
fn milli(kind: ResourceKind, v: ResourceAmount) -> i128 {
    match kind {
        ResourceKind::Cpu => i128::from(v),
        ResourceKind::Memory => i128::from(v) * 1000,
    }
}

/// The priority of a pod with its processed recommendation (upstream `GetUpdatePriority`).
pub fn pod_priority(pod: &PodView) -> PodPriority {
    let mut outside = false;
    let mut scale_up = false;
    let mut total_request = [0i128; 2];
    let mut total_recommended = [None::<i128>; 2];
    for c in &pod.containers {
        if !pod.is_observed(&c.name) {
            continue;
        }
        let Some(rec) = pod.recommendation_for(&c.name) else {
            continue;
        };
        let requests = &c.current().requests;
        for (i, kind) in KINDS.into_iter().enumerate() {
            let Some(target) = rec.target.get(kind) else {
                continue;
            };
            let t = milli(kind, target);
            if let Some(slot) = total_recommended.get_mut(i) {
                *slot = Some(slot.unwrap_or(0) + t);
            }
            match requests.get(kind) {
                Some(request) => {
                    if let Some(slot) = total_request.get_mut(i) {
                        *slot += milli(kind, request);
                    }
                    if t > milli(kind, request) {
                        scale_up = true;
                    }
                    let below = rec.lower_bound.get(kind).is_some_and(|l| request < l);
                    let above = rec.upper_bound.get(kind).is_some_and(|u| request > u);
                    if below || above {
                        outside = true;
                    }
                }
                None => {
                    scale_up = true;
                    outside = true;
                }
            }
        }
    }
    let mut diff = 0.0;
    for (req, rec) in total_request.iter().zip(&total_recommended) {
        if let Some(rec) = rec {
            let total = (*req as f64).max(1.0);
            diff += (total - *rec as f64).abs() / total;
        }
    }
    PodPriority {
        outside_recommended_range: outside,
        scale_up,
        resource_diff: diff,
    }
}

/// The quick-OOM threshold of a VPA: `updatePolicy.evictAfterOOMSeconds` with the
/// `PerVPAConfig` gate, else `--evict-after-oom-threshold`.
pub fn evict_after_oom_threshold(vpa: &VpaView, settings: &UpdaterSettings) -> Duration {
    match vpa.evict_after_oom_seconds {
        Some(s) if settings.gates.per_vpa_config => Duration::from_secs(i64::from(s)),
        _ => settings.evict_after_oom_threshold,
    }
}

/// True when an observed, autoscaled container's last run ended in an OOM kill shorter than
/// the threshold.
pub fn has_quick_oom(pod: &PodView, vpa: &VpaView, settings: &UpdaterSettings) -> bool {
    let threshold = evict_after_oom_threshold(vpa, settings);
    pod.containers.iter().filter(|c| !c.init).any(|c| {
        pod.is_observed(&c.name)
            && !vpa.container_policy(&c.name).is_some_and(|p| p.mode_off)
            && c.last_termination.as_ref().is_some_and(|t| {
                t.reason == OOM_KILLED && since(t.finished_at, t.started_at) < threshold
            })
    })
}

/// Why a pod is updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateReason {
    /// A request is outside the recommended range.
    OutsideRecommendedRange,
    /// A container was OOM-killed soon after it started.
    QuickOom,
    /// The pod is old enough and its requests differ enough from the targets.
    LongLivedDifference,
}

/// Why a pod is not updated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotAccepted {
    /// The caller could not process the recommendation for the pod.
    RecommendationError(String),
    /// Mode `InPlace`: an earlier resize was infeasible and nothing is lower now.
    InfeasibleCached,
    /// Within range and the pod has no start time.
    NoStartTime,
    /// Within range and the pod is younger than the lifetime threshold.
    ShortLived,
    /// Within range and the difference is below `--pod-update-threshold`.
    DifferenceTooSmall,
    /// A quick OOM, but the resources would not change.
    QuickOomWithoutChange,
}

/// A pod accepted for an update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accepted {
    /// Its priority.
    pub priority: PodPriority,
    /// Why.
    pub reason: UpdateReason,
}

/// Whether the pod needs an update now (upstream `AddPod`).
pub fn evaluate(
    pod: &PodView,
    vpa: &VpaView,
    settings: &UpdaterSettings,
    tracker: &InPlaceTracker,
    now: Timestamp,
) -> Result<Accepted, NotAccepted> {
    if let Some(e) = &pod.recommendation_error {
        return Err(NotAccepted::RecommendationError(e.clone()));
    }
    if vpa.mode == UpdateMode::InPlace
        && let Some(last) = tracker.infeasible_attempt(&pod.uid)
        && !has_lower_target(
            last,
            pod.recommendation
                .iter()
                .map(|r| (r.container_name.as_str(), &r.recommended.target)),
        )
    {
        return Err(NotAccepted::InfeasibleCached);
    }
    let priority = pod_priority(pod);
    let quick_oom = has_quick_oom(pod, vpa, settings);
    if !priority.outside_recommended_range && !quick_oom {
        let Some(start) = pod.start_time else {
            return Err(NotAccepted::NoStartTime);
        };
        if now < start.add(settings.pod_lifetime_update_threshold) {
            return Err(NotAccepted::ShortLived);
        }
        if priority.resource_diff < settings.pod_update_threshold {
            return Err(NotAccepted::DifferenceTooSmall);
        }
    }
    if quick_oom && priority.resource_diff == 0.0 {
        return Err(NotAccepted::QuickOomWithoutChange);
    }
    let reason = if priority.outside_recommended_range {
        UpdateReason::OutsideRecommendedRange
    } else if quick_oom {
        UpdateReason::QuickOom
    } else {
        UpdateReason::LongLivedDifference
    };
    Ok(Accepted { priority, reason })
}

/// Sorts `(pod index, priority)` pairs into update order; ties go by namespace, name and
/// UID, so the order is total and deterministic.
pub fn sort_for_update(order: &mut [(usize, PodPriority)], pods: &[PodView]) {
    let key = |i: usize| {
        pods.get(i)
            .map(|p| (p.namespace.as_str(), p.name.as_str(), p.uid.as_str()))
    };
    order.sort_by(|(ia, a), (ib, b)| {
        a.update_order(b)
            .then_with(|| key(*ia).cmp(&key(*ib)))
            .then_with(|| ia.cmp(ib))
    });
}

#[cfg(test)]
mod tests;
