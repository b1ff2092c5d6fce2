//! The plain input types of the updater's decisions: what the kube-facing edge extracts from
//! a VPA object, its pods and their owners.
//!
//! Amounts are vpa-core [`Resources`] (CPU in millicores, memory in bytes, both from the
//! quantities' `MilliValue`/`Value`); instants are vpa-core [`Timestamp`]s, `None` where
//! the API object has Go's zero time. Each pod carries the recommendation already processed
//! for it by the caller (vpa-core's capping: LimitRange, minAllowed/maxAllowed, RequestsOnly
//! limit capping), as upstream's updater processes the VPA recommendation per pod.

use vpa_core::model::{ResourceKind, Resources};
use vpa_core::time::{Duration, Timestamp};

/// The pod annotation listing the containers the admission controller saw.
pub const OBSERVED_CONTAINERS_ANNOTATION: &str = "vpaObservedContainers";
/// The prefix of the per-container CPU startup boost annotations (`vpaCpuStartupBoost/<c>`).
pub const STARTUP_BOOST_ANNOTATION_PREFIX: &str = "vpaCpuStartupBoost/";
/// The annotation the updater sets on a pod it resized in place.
pub const IN_PLACE_UPDATED_ANNOTATION: &str = "vpaInPlaceUpdated";
/// The termination reason of an OOM-killed container.
pub const OOM_KILLED: &str = "OOMKilled";

/// `spec.updatePolicy.updateMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum UpdateMode {
    /// Recommendations only.
    Off,
    /// Resources are set at pod creation only.
    Initial,
    /// Pods are evicted to apply recommendations (the default).
    #[default]
    Recreate,
    /// Deprecated name of `Recreate`.
    Auto,
    /// Resize in place, evict when that fails.
    InPlaceOrRecreate,
    /// Resize in place only, never evict (alpha, feature gate `InPlace`).
    InPlace,
}

impl UpdateMode {
    /// The mode of a VPA: unset or empty is `Recreate` (upstream `GetUpdateMode`); an unknown
    /// name is `None` (the CRD's enum refuses those).
    pub fn from_api(mode: Option<&str>) -> Option<UpdateMode> {
        Some(match mode.unwrap_or("") {
            "" | "Recreate" => UpdateMode::Recreate,
            "Off" => UpdateMode::Off,
            "Initial" => UpdateMode::Initial,
            "Auto" => UpdateMode::Auto,
            "InPlaceOrRecreate" => UpdateMode::InPlaceOrRecreate,
            "InPlace" => UpdateMode::InPlace,
            _ => return None,
        })
    }

    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateMode::Off => "Off",
            UpdateMode::Initial => "Initial",
            UpdateMode::Recreate => "Recreate",
            UpdateMode::Auto => "Auto",
            UpdateMode::InPlaceOrRecreate => "InPlaceOrRecreate",
            UpdateMode::InPlace => "InPlace",
        }
    }

    /// True for the modes in which the updater changes running pods.
    pub fn updates_pods(self) -> bool {
        matches!(
            self,
            UpdateMode::Recreate
                | UpdateMode::Auto
                | UpdateMode::InPlaceOrRecreate
                | UpdateMode::InPlace
        )
    }

    /// True for `Auto`, which upstream logs as deprecated.
    pub fn is_deprecated(self) -> bool {
        self == UpdateMode::Auto
    }
}

/// The direction an eviction requirement asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeRequirement {
    /// `TargetHigherThanRequests`.
    TargetHigherThanRequests,
    /// `TargetLowerThanRequests`.
    TargetLowerThanRequests,
    /// Any other value (the CRD refuses them): never satisfied.
    Other,
}

/// One entry of `spec.updatePolicy.evictionRequirements`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvictionRequirement {
    /// The resources; `None` stands for a resource other than cpu and memory, whose request
    /// and target both read as zero, so it never satisfies the requirement.
    pub resources: Vec<Option<ResourceKind>>,
    /// The direction.
    pub change: ChangeRequirement,
}

/// A CPU startup boost (`startupBoost`), as far as the updater needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StartupBoostView {
    /// `cpu.durationSeconds`; unset means zero.
    pub duration: Option<Duration>,
}

/// One entry of `spec.resourcePolicy.containerPolicies`, as far as the updater needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerPolicyView {
    /// A container name, or `"*"` for every container without its own entry.
    pub container_name: String,
    /// `mode: Off`.
    pub mode_off: bool,
    /// The container's own startup boost.
    pub startup_boost: Option<StartupBoostView>,
}

/// The recommended target of one container (of `status.recommendation`, or of a recorded
/// infeasible attempt).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerTarget {
    /// The container.
    pub container_name: String,
    /// Its target.
    pub target: Resources,
}

/// A VerticalPodAutoscaler, as far as the updater needs it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VpaView {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The update mode (unset or empty: `Recreate`).
    pub mode: UpdateMode,
    /// `updatePolicy.minReplicas`.
    pub min_replicas: Option<i32>,
    /// `updatePolicy.evictionRequirements`: `None` when the VPA has no `updatePolicy` at all
    /// (its pods are then always admitted), otherwise the list (possibly empty).
    pub eviction_requirements: Option<Vec<EvictionRequirement>>,
    /// `updatePolicy.evictAfterOOMSeconds` (used with the `PerVPAConfig` gate).
    pub evict_after_oom_seconds: Option<i32>,
    /// `resourcePolicy.containerPolicies`.
    pub container_policies: Vec<ContainerPolicyView>,
    /// The top-level `startupBoost`.
    pub startup_boost: Option<StartupBoostView>,
    /// The targets of `status.recommendation`; `None` when the status has no recommendation.
    pub recommendation: Option<Vec<ContainerTarget>>,
}

impl VpaView {
    /// The policy of a container: its own entry, else the `"*"` entry (upstream
    /// `GetContainerResourcePolicy`).
    pub fn container_policy(&self, container: &str) -> Option<&ContainerPolicyView> {
        let mut wildcard = None;
        for p in &self.container_policies {
            if p.container_name == container {
                return Some(p);
            }
            if p.container_name == "*" && wildcard.is_none() {
                wildcard = Some(p);
            }
        }
        wildcard
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Requests and limits of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ContainerResources {
    /// Requests.
    pub requests: Resources,
    /// Limits.
    pub limits: Resources,
}

/// A container's `resizePolicy` restart policy for one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    /// `NotRequired` (formerly `PreferNoRestart`), the default.
    #[default]
    NotRequired,
    /// `RestartContainer`.
    RestartContainer,
}

/// A container's `resizePolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResizePolicy {
    /// For cpu.
    pub cpu: RestartPolicy,
    /// For memory.
    pub memory: RestartPolicy,
}

/// A container's `lastTerminationState.terminated`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Termination {
    /// The reason, e.g. `OOMKilled`.
    pub reason: String,
    /// When the terminated run started (`None`: Go's zero time).
    pub started_at: Option<Timestamp>,
    /// When it ended (`None`: Go's zero time).
    pub finished_at: Option<Timestamp>,
}

/// The recommendation for one container, processed for this pod by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecommendedResources {
    /// Target.
    pub target: Resources,
    /// Lower bound (a missing resource has no bound).
    pub lower_bound: Resources,
    /// Upper bound (a missing resource has no bound).
    pub upper_bound: Resources,
}

/// One container recommendation of a pod's processed recommendation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerRecommendation {
    /// The container.
    pub container_name: String,
    /// The recommendation.
    pub recommended: RecommendedResources,
}

/// A container of a pod (`spec.containers` or `spec.initContainers` with its status).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerView {
    /// Name.
    pub name: String,
    /// True for an entry of `spec.initContainers`.
    pub init: bool,
    /// `spec.resources`.
    pub spec: ContainerResources,
    /// `status.containerStatuses[].resources` when the status has it (in-place resize);
    /// it then takes precedence over the spec for requests and limits.
    pub status: Option<ContainerResources>,
    /// `status.containerStatuses[].lastTerminationState.terminated`.
    pub last_termination: Option<Termination>,
    /// `resizePolicy`.
    pub resize_policy: ResizePolicy,
    /// What an in-place resize sets for this container: the same values the admission
    /// controller computes from the recommendation (vpa-core). `None` leaves it unchanged.
    pub new_resources: Option<ContainerResources>,
    /// The original resources recorded in the container's `vpaCpuStartupBoost/<c>`
    /// annotation, used to unboost a container that has no recommendation.
    pub boost_original: Option<ContainerResources>,
}

impl ContainerView {
    /// The requests and limits in effect: the status's when present, else the spec's
    /// (upstream `ContainerRequestsAndLimits`).
    pub fn current(&self) -> &ContainerResources {
        self.status.as_ref().unwrap_or(&self.spec)
    }
}

/// `status.phase`, as far as the updater distinguishes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PodPhase {
    /// `Pending`.
    Pending,
    /// `Running`.
    #[default]
    Running,
    /// Any other phase (the pod watch drops `Succeeded` and `Failed`).
    Other,
}

/// The pod condition types the updater reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodConditionType {
    /// `Ready`.
    Ready,
    /// `PodResizePending`.
    PodResizePending,
    /// `PodResizeInProgress`.
    PodResizeInProgress,
    /// Any other type.
    Other,
}

/// The reason `Deferred` of a pending resize.
pub const REASON_DEFERRED: &str = "Deferred";
/// The reason `Infeasible` of a pending resize.
pub const REASON_INFEASIBLE: &str = "Infeasible";
/// The reason `Error` of a resize in progress.
pub const REASON_ERROR: &str = "Error";

/// One entry of `status.conditions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodCondition {
    /// The type.
    pub kind: PodConditionType,
    /// `status == "True"`.
    pub is_true: bool,
    /// `reason`.
    pub reason: String,
    /// `message`.
    pub message: String,
    /// `lastTransitionTime` (`None`: Go's zero time).
    pub last_transition: Option<Timestamp>,
}

/// The controlling owner reference of a pod (`controller: true`): its replica group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OwnerRef {
    /// The owner's kind, e.g. `ReplicaSet`.
    pub kind: String,
    /// The owner's name (in the pod's namespace).
    pub name: String,
}

/// The kinds whose replica count the updater knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerKind {
    /// `ReplicationController`: `spec.replicas`.
    ReplicationController,
    /// `ReplicaSet`: `spec.replicas`.
    ReplicaSet,
    /// `StatefulSet`: `spec.replicas`.
    StatefulSet,
    /// `DaemonSet`: `status.numberReady`.
    DaemonSet,
    /// `Job`: the number of live pods.
    Job,
    /// Anything else: zero configured replicas (as upstream).
    Other,
}

impl OwnerKind {
    /// From an owner reference's kind.
    pub fn from_kind(kind: &str) -> OwnerKind {
        match kind {
            "ReplicationController" => OwnerKind::ReplicationController,
            "ReplicaSet" => OwnerKind::ReplicaSet,
            "StatefulSet" => OwnerKind::StatefulSet,
            "DaemonSet" => OwnerKind::DaemonSet,
            "Job" => OwnerKind::Job,
            _ => OwnerKind::Other,
        }
    }
}

/// The replica count of a pod owner, as the edge read it from its informer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerReplicas {
    /// The owner.
    pub owner: OwnerRef,
    /// `spec.replicas` for ReplicationController, ReplicaSet and StatefulSet,
    /// `status.numberReady` for DaemonSet; `None` when the owner is not in the informer or
    /// the field is unset. Ignored for other kinds.
    pub count: Option<i32>,
}

/// A live pod (not being deleted, scheduled, not `Succeeded`/`Failed`) controlled by the VPA.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodView {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
    /// The controlling owner; `None` when no owner reference has `controller: true`.
    pub owner: Option<OwnerRef>,
    /// `status.phase`.
    pub phase: PodPhase,
    /// `status.startTime`.
    pub start_time: Option<Timestamp>,
    /// `spec.containers` followed by `spec.initContainers`.
    pub containers: Vec<ContainerView>,
    /// The parsed `vpaObservedContainers` annotation; `None` when it is absent or does not
    /// parse (see [`parse_observed_containers`]).
    pub observed_containers: Option<Vec<String>>,
    /// `status.conditions`, in order (the types the updater does not read may be left out).
    pub conditions: Vec<PodCondition>,
    /// The containers named by `vpaCpuStartupBoost/<c>` annotations.
    pub boosted_containers: Vec<String>,
    /// The recommendation processed for this pod (one entry per recommended container,
    /// possibly for containers the pod does not have).
    pub recommendation: Vec<ContainerRecommendation>,
    /// Set when the caller could not process the recommendation for this pod (for example a
    /// LimitRange error): the pod still counts in its replica group but is not updated.
    pub recommendation_error: Option<String>,
}

impl PodView {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// True in phase `Pending`.
    pub fn is_pending(&self) -> bool {
        self.phase == PodPhase::Pending
    }

    /// The first condition of a type.
    pub fn condition(&self, kind: PodConditionType) -> Option<&PodCondition> {
        self.conditions.iter().find(|c| c.kind == kind)
    }

    /// The processed recommendation of a container.
    pub fn recommendation_for(&self, container: &str) -> Option<&RecommendedResources> {
        self.recommendation
            .iter()
            .find(|r| r.container_name == container)
            .map(|r| &r.recommended)
    }

    /// True when the container counts for the updater: the `vpaObservedContainers`
    /// annotation, when present and valid, lists it.
    pub fn is_observed(&self, container: &str) -> bool {
        match &self.observed_containers {
            Some(list) => list.iter().any(|c| c == container),
            None => true,
        }
    }

    /// True when some container still carries a CPU startup boost annotation.
    pub fn has_boost_annotation(&self) -> bool {
        !self.boosted_containers.is_empty()
    }
}

/// True for a DNS-1123 label: at most 63 characters of `[a-z0-9-]`, starting and ending
/// with an alphanumeric.
pub fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 63
        && b.first().is_some_and(|&c| alnum(c))
        && b.last().is_some_and(|&c| alnum(c))
        && b.iter().all(|&c| alnum(c) || c == b'-')
}

/// Parses a `vpaObservedContainers` value (`"c0, c1"`): empty is the empty list, and any
/// name that is not a DNS-1123 label makes the whole value invalid (`None`), in which case
/// upstream ignores the annotation.
pub fn parse_observed_containers(value: &str) -> Option<Vec<String>> {
    if value.is_empty() {
        return Some(Vec::new());
    }
    value
        .split(", ")
        .map(|c| is_dns1123_label(c).then(|| c.to_string()))
        .collect()
}

/// The containers named by `vpaCpuStartupBoost/<c>` annotation keys.
pub fn boosted_containers<'a>(annotation_keys: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    annotation_keys
        .into_iter()
        .filter_map(|k| k.strip_prefix(STARTUP_BOOST_ANNOTATION_PREFIX))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_mode_defaults_to_recreate() {
        assert_eq!(UpdateMode::from_api(None), Some(UpdateMode::Recreate));
        assert_eq!(UpdateMode::from_api(Some("")), Some(UpdateMode::Recreate));
        assert_eq!(UpdateMode::from_api(Some("Auto")), Some(UpdateMode::Auto));
        assert_eq!(UpdateMode::from_api(Some("auto")), None);
        for m in [
            UpdateMode::Off,
            UpdateMode::Initial,
            UpdateMode::Recreate,
            UpdateMode::Auto,
            UpdateMode::InPlaceOrRecreate,
            UpdateMode::InPlace,
        ] {
            assert_eq!(UpdateMode::from_api(Some(m.as_str())), Some(m));
        }
        assert!(!UpdateMode::Off.updates_pods());
        assert!(!UpdateMode::Initial.updates_pods());
        assert!(UpdateMode::Auto.updates_pods() && UpdateMode::Auto.is_deprecated());
    }

    #[test]
    fn observed_containers_parse_as_upstream() {
        assert_eq!(parse_observed_containers(""), Some(vec![]));
        assert_eq!(
            parse_observed_containers("app, side-car"),
            Some(vec!["app".to_string(), "side-car".to_string()])
        );
        assert_eq!(parse_observed_containers("abcd;';"), None);
        assert_eq!(parse_observed_containers("app,side"), None);
        assert_eq!(parse_observed_containers("-app"), None);
        assert_eq!(parse_observed_containers(&"a".repeat(64)), None);
        assert!(is_dns1123_label(&"a".repeat(63)));
    }

    #[test]
    fn boost_annotations_name_containers() {
        let keys = [
            "vpaCpuStartupBoost/app",
            "vpaObservedContainers",
            "vpaCpuStartupBoost/side",
        ];
        assert_eq!(boosted_containers(keys), vec!["app", "side"]);
    }

    #[test]
    fn container_policy_prefers_exact_name() {
        let vpa = VpaView {
            container_policies: vec![
                ContainerPolicyView {
                    container_name: "*".into(),
                    mode_off: true,
                    ..Default::default()
                },
                ContainerPolicyView {
                    container_name: "app".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        assert_eq!(vpa.container_policy("app").map(|p| p.mode_off), Some(false));
        assert_eq!(vpa.container_policy("x").map(|p| p.mode_off), Some(true));
    }

    #[test]
    fn status_resources_take_precedence() {
        let mut c = ContainerView {
            spec: ContainerResources {
                requests: Resources::new(500, 10),
                limits: Resources::default(),
            },
            ..Default::default()
        };
        assert_eq!(c.current().requests.cpu, Some(500));
        c.status = Some(ContainerResources::default());
        assert_eq!(c.current().requests.cpu, None);
    }
}
