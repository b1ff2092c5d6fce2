//! The actions of one updater loop and their outcomes: what the edge executes (evictions
//! through the Eviction API, resizes through `pods/resize`) and reports back.

use crate::in_place::{DeferCause, FallbackCause, RejectionCause};
use crate::priority::UpdateReason;
use crate::restriction::EvictBlock;
use crate::startup_boost::UnboostBlock;
use crate::view::{ContainerResources, PodView};
use vpa_core::model::Resources;

/// The requests of a container before an update and the target it is updated for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerChange {
    /// The container.
    pub container_name: String,
    /// Its requests in effect now.
    pub requests: Resources,
    /// Its recommended target.
    pub target: Resources,
}

/// Why a pod is evicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictReason {
    /// Mode `Recreate`/`Auto`: the pod needs an update.
    Update(UpdateReason),
    /// Mode `InPlaceOrRecreate`: the in-place resize failed or stalled.
    InPlaceFallback(FallbackCause),
}

/// Why a pod is resized in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeReason {
    /// The pod needs an update.
    Update(UpdateReason),
    /// Mode `InPlace`: the kubelet found the last resize infeasible and the recommendation
    /// has changed; the attempt was recorded.
    RetryInfeasible(UpdateReason),
    /// Mode `InPlace`: a resize is pending or in progress (or the pod cannot be disrupted
    /// now), and upstream sends the new resources anyway.
    ResendWhileDeferred(UpdateReason, DeferCause),
    /// The CPU startup boost of some containers has expired.
    Unboost,
}

/// The resources to set on one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPatch {
    /// Index into [`PodView::containers`].
    pub index: usize,
    /// The container.
    pub container_name: String,
    /// An init container (`/spec/initContainers`).
    pub init: bool,
    /// The requests and limits to set; a resource missing here is left alone.
    pub resources: ContainerResources,
}

/// A resize: the `pods/resize` patch, then the annotation patch on the pod
/// (`vpaInPlaceUpdated: "true"`, and the removal of expired boost annotations).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResizePatch {
    /// The containers to resize (never empty in an action).
    pub containers: Vec<ContainerPatch>,
    /// The containers whose `vpaCpuStartupBoost/<c>` annotation is removed.
    pub remove_boost_annotations: Vec<String>,
}

/// Why a pod that needs an update (or an unboost) is left alone in this loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// It may not be evicted now.
    NotEvictable(EvictBlock),
    /// The in-place update waits for a later loop.
    InPlaceDeferred(DeferCause),
    /// Mode `InPlace`: the last resize was infeasible and nothing is lower now (upstream
    /// emits the event `InPlaceResizeSkipped`).
    InfeasibleCached,
    /// `updatePolicy.evictionRequirements` do not admit the change.
    EvictionRequirements,
    /// Mode `InPlace`: the resize could not be sent or was refused; no eviction.
    ResizeFailed(RejectionCause),
    /// A boosted pod cannot be unboosted now.
    Unboost(UnboostBlock),
}

/// One action of the plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Action<'a> {
    /// Evict the pod through the Eviction API (PodDisruptionBudgets apply); report the
    /// outcome.
    Evict {
        /// The pod.
        pod: &'a PodView,
        /// Why.
        reason: EvictReason,
        /// Requests before and targets, per recommended container.
        changes: Vec<ContainerChange>,
    },
    /// Resize the pod in place; report the outcome.
    ResizeInPlace {
        /// The pod.
        pod: &'a PodView,
        /// Why.
        reason: ResizeReason,
        /// What to set.
        patch: ResizePatch,
    },
    /// Leave the pod alone (for logs and events; nothing to execute or report).
    Skip {
        /// The pod.
        pod: &'a PodView,
        /// Why.
        why: SkipReason,
    },
}

impl<'a> Action<'a> {
    /// The pod the action is about.
    pub fn pod(&self) -> &'a PodView {
        match self {
            Action::Evict { pod, .. }
            | Action::ResizeInPlace { pod, .. }
            | Action::Skip { pod, .. } => pod,
        }
    }

    /// True for an eviction or a resize, whose outcome the round expects.
    pub fn needs_outcome(&self) -> bool {
        !matches!(self, Action::Skip { .. })
    }
}

/// The outcome of an eviction or a resize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The API server accepted it.
    Succeeded,
    /// It failed; for a resize, `infeasible` when the API server refused it for node
    /// capacity ([`crate::in_place::is_infeasible_rejection`]).
    Failed {
        /// A node-capacity rejection of a resize.
        infeasible: bool,
    },
}
