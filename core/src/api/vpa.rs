//! The `VerticalPodAutoscaler` custom resource (`autoscaling.k8s.io/v1`).
//!
//! The field names, enum strings and optionality follow upstream VPA 1.7.1 one for one, so that
//! objects written by upstream tools load here and round-trip to equal JSON. Every optional field
//! is an `Option` that is left out of the JSON when unset.
//!
//! Upstream leaves most defaults to the readers of the object rather than to the API server (the
//! schema carries no `default`). The methods on these types return those effective values:
//! [`VerticalPodAutoscalerSpec::update_mode`], [`ContainerResourcePolicy::mode`],
//! [`ContainerResourcePolicy::controlled_values`] and
//! [`ContainerResourcePolicy::controlled_resources`].
//!
//! Build the CRD with [`crate::api::crds`], not with `CustomResourceExt::crd`: only the former
//! carries the adjustments that make the schema equal to upstream's.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::autoscaling::v1::CrossVersionObjectReference;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema;

/// A map from resource name (`cpu`, `memory`, …) to an amount, as `core/v1.ResourceList`.
pub type ResourceList = BTreeMap<String, Quantity>;

/// The resource name of CPU in a [`ResourceList`].
pub const RESOURCE_CPU: &str = "cpu";
/// The resource name of memory in a [`ResourceList`].
pub const RESOURCE_MEMORY: &str = "memory";

/// The resources a container policy controls when `controlledResources` is not set.
pub const DEFAULT_CONTROLLED_RESOURCES: [&str; 2] = [RESOURCE_CPU, RESOURCE_MEMORY];

/// The `containerName` of the policy that applies to every container without a policy of its own.
pub const DEFAULT_CONTAINER_RESOURCE_POLICY: &str = "*";

/// Condition type: the recommender has put a recommendation into the status.
pub const RECOMMENDATION_PROVIDED: &str = "RecommendationProvided";
/// Condition type: the recommendation rests on little data, so it is not to be trusted much.
pub const LOW_CONFIDENCE: &str = "LowConfidence";
/// Condition type: the target's selector matches no pod.
pub const NO_PODS_MATCHED: &str = "NoPodsMatched";
/// Condition type: the recommender is still loading usage history for this object.
pub const FETCHING_HISTORY: &str = "FetchingHistory";
/// Condition type: the object uses a configuration that is deprecated.
pub const CONFIG_DEPRECATED: &str = "ConfigDeprecated";
/// Condition type: the object's configuration cannot be acted on (for example an unknown target).
pub const CONFIG_UNSUPPORTED: &str = "ConfigUnsupported";
/// Every condition type upstream defines, in upstream's order.
pub const CONDITION_TYPES: [&str; 6] = [
    RECOMMENDATION_PROVIDED,
    LOW_CONFIDENCE,
    NO_PODS_MATCHED,
    FETCHING_HISTORY,
    CONFIG_DEPRECATED,
    CONFIG_UNSUPPORTED,
];

/// Condition status: the condition holds.
pub const CONDITION_TRUE: &str = "True";
/// Condition status: the condition does not hold.
pub const CONDITION_FALSE: &str = "False";
/// Condition status: it is not known whether the condition holds.
pub const CONDITION_UNKNOWN: &str = "Unknown";

/// What a `VerticalPodAutoscaler` asks for: which workload, and how its pods may be changed.
// clippy mistakes the repeated `type_`/`priority` keys of separate `printcolumn(…)` entries for
// duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "autoscaling.k8s.io",
    version = "v1",
    kind = "VerticalPodAutoscaler",
    namespaced,
    shortname = "vpa",
    status = "VerticalPodAutoscalerStatus",
    derive = "PartialEq",
    annotation(
        "api-approved.kubernetes.io",
        "https://github.com/kubernetes/kubernetes/pull/63797"
    ),
    doc = "A VerticalPodAutoscaler sets the CPU and memory requests (and limits) of the pods of one \
           workload from their observed usage, and keeps them up to date.",
    printcolumn(
        name = "Mode",
        type_ = "string",
        json_path = ".spec.updatePolicy.updateMode"
    ),
    printcolumn(
        name = "CPU",
        type_ = "string",
        json_path = ".status.recommendation.containerRecommendations[0].target.cpu"
    ),
    printcolumn(
        name = "Mem",
        type_ = "string",
        json_path = ".status.recommendation.containerRecommendations[0].target.memory"
    ),
    printcolumn(
        name = "Provided",
        type_ = "string",
        json_path = ".status.conditions[?(@.type=='RecommendationProvided')].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "MinReplicas",
        type_ = "integer",
        json_path = ".spec.updatePolicy.minReplicas",
        priority = 1
    ),
    printcolumn(
        name = "OOMSeconds",
        type_ = "integer",
        json_path = ".spec.updatePolicy.evictAfterOOMSeconds",
        priority = 1
    )
)]
#[serde(rename_all = "camelCase")]
pub struct VerticalPodAutoscalerSpec {
    /// The workload whose pods this object manages, such as a Deployment or StatefulSet. The pods
    /// are found through the target's scale subresource (only its label selector is used; the
    /// replica count is never changed) or, for well-known controllers such as DaemonSets, through
    /// the controller's own spec. A target that cannot be used is reported with the
    /// `ConfigUnsupported` condition.
    #[schemars(extend("x-kubernetes-map-type" = "atomic"))]
    pub target_ref: CrossVersionObjectReference,

    /// How and when new resources are applied to the pods. Unset means every field of the policy
    /// takes its default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_policy: Option<PodUpdatePolicy>,

    /// Bounds and switches for the computed resources, per container. Unset means that every
    /// container of the pod gets a recommendation, without bounds. A container is left out only by
    /// giving it a policy with `mode: "Off"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_policy: Option<PodResourcePolicy>,

    /// The recommender that computes the recommendation for this object. Empty or unset selects
    /// the default recommender; at most one entry is allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommenders: Option<Vec<VerticalPodAutoscalerRecommenderSelector>>,

    /// A temporary CPU increase for the pods while they start, applied to every container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_boost: Option<StartupBoost>,
}

impl VerticalPodAutoscalerSpec {
    /// The update mode in effect: the one set in `updatePolicy`, else [`UpdateMode::Recreate`].
    pub fn update_mode(&self) -> UpdateMode {
        self.update_policy
            .as_ref()
            .map(PodUpdatePolicy::update_mode)
            .unwrap_or_default()
    }

    /// The container policy that applies to `container_name`: its own entry, else the `"*"` entry,
    /// else none.
    pub fn container_policy(&self, container_name: &str) -> Option<&ContainerResourcePolicy> {
        self.resource_policy
            .as_ref()
            .and_then(|policy| policy.container_policy(container_name))
    }

    /// The name of the selected recommender, if the object names one.
    pub fn recommender_name(&self) -> Option<&str> {
        self.recommenders
            .as_deref()
            .and_then(<[VerticalPodAutoscalerRecommenderSelector]>::first)
            .map(|selector| selector.name.as_str())
    }
}

impl VerticalPodAutoscaler {
    /// The update mode in effect, see [`VerticalPodAutoscalerSpec::update_mode`].
    pub fn update_mode(&self) -> UpdateMode {
        self.spec.update_mode()
    }

    /// The condition of the given type in the status, if there is one.
    pub fn condition(&self, condition_type: &str) -> Option<&VerticalPodAutoscalerCondition> {
        self.status
            .as_ref()
            .and_then(|status| status.condition(condition_type))
    }
}

/// When the pods of the target get new resources.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = schema::without_description)]
pub enum UpdateMode {
    /// Recommendations are computed but never applied.
    Off,
    /// Resources are set when a pod is created and never changed afterwards.
    Initial,
    /// Resources are set when a pod is created, and running pods are evicted when their
    /// resources are far from the recommendation. This is the default.
    #[default]
    Recreate,
    /// Running pods are resized in place where possible and evicted otherwise.
    InPlaceOrRecreate,
    /// Running pods are only ever resized in place, never evicted.
    InPlace,
    /// Deprecated; behaves as `Recreate`.
    Auto,
}

impl UpdateMode {
    /// Every mode, in upstream's order.
    pub const ALL: [UpdateMode; 6] = [
        UpdateMode::Off,
        UpdateMode::Initial,
        UpdateMode::Recreate,
        UpdateMode::InPlaceOrRecreate,
        UpdateMode::InPlace,
        UpdateMode::Auto,
    ];

    /// The string used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateMode::Off => "Off",
            UpdateMode::Initial => "Initial",
            UpdateMode::Recreate => "Recreate",
            UpdateMode::InPlaceOrRecreate => "InPlaceOrRecreate",
            UpdateMode::InPlace => "InPlace",
            UpdateMode::Auto => "Auto",
        }
    }

    /// Whether the mode is deprecated (only `Auto`).
    pub fn is_deprecated(self) -> bool {
        self == UpdateMode::Auto
    }

    /// Whether the updater applies recommendations to running pods in this mode, by eviction or
    /// in-place resize. (A CPU startup boost is removed in every mode.)
    pub fn updates_running_pods(self) -> bool {
        !matches!(self, UpdateMode::Off | UpdateMode::Initial)
    }
}

impl fmt::Display for UpdateMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How changes are applied to the pods of the target.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodUpdatePolicy {
    /// When recommendations are applied to the pods. Defaults to `Recreate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_mode: Option<UpdateMode>,

    /// How many replicas must stay alive for the updater to evict a pod (on top of the other
    /// checks such as PodDisruptionBudgets). Must be positive. Overrides the updater's
    /// `--min-replicas` flag for this object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<i32>,

    /// Conditions that must all hold before a pod is evicted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eviction_requirements: Option<Vec<EvictionRequirement>>,

    /// How long after an out-of-memory kill a pod is still a candidate for eviction: pods whose
    /// container was OOM-killed less than this many seconds after it started are evicted.
    #[serde(
        default,
        rename = "evictAfterOOMSeconds",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1))]
    pub evict_after_oom_seconds: Option<i32>,
}

impl PodUpdatePolicy {
    /// The update mode in effect: the one set here, else [`UpdateMode::Recreate`].
    pub fn update_mode(&self) -> UpdateMode {
        self.update_mode.unwrap_or_default()
    }
}

/// One condition a pod must meet to be evicted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvictionRequirement {
    /// The resources the requirement looks at. It is met when at least one of them satisfies
    /// `changeRequirement`.
    pub resources: Vec<String>,

    /// How the new target must compare with the pod's current requests.
    pub change_requirement: EvictionChangeRequirement,
}

/// How a new target must compare with a pod's current requests for the pod to be evicted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = schema::without_description)]
pub enum EvictionChangeRequirement {
    /// The target is above the current request.
    #[default]
    TargetHigherThanRequests,
    /// The target is below the current request.
    TargetLowerThanRequests,
}

/// Constraints on the recommendations, per container.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodResourcePolicy {
    /// The policies, one per container name (or `"*"` for all other containers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_policies: Option<Vec<ContainerResourcePolicy>>,
}

impl PodResourcePolicy {
    /// The policy for `container_name`: the entry with that exact name, else the `"*"` entry,
    /// else none.
    pub fn container_policy(&self, container_name: &str) -> Option<&ContainerResourcePolicy> {
        let policies = self.container_policies.as_deref().unwrap_or_default();
        policies
            .iter()
            .find(|policy| policy.container_name.as_deref() == Some(container_name))
            .or_else(|| {
                policies.iter().find(|policy| {
                    policy.container_name.as_deref() == Some(DEFAULT_CONTAINER_RESOURCE_POLICY)
                })
            })
    }
}

/// How recommendations are computed and bounded for one container.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerResourcePolicy {
    /// The container this policy is for, or `"*"`: the policy of every container that has none
    /// of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,

    /// Whether the container is autoscaled at all. Defaults to `Auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ContainerScalingMode>,

    /// The lowest amounts that will be recommended. No lower bound by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_allowed: Option<ResourceList>,

    /// The highest amounts that will be recommended. No upper bound by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_allowed: Option<ResourceList>,

    /// The resources that get recommendations (and are possibly applied). Defaults to
    /// `[cpu, memory]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controlled_resources: Option<Vec<String>>,

    /// Whether requests only, or requests and limits, are set. Defaults to `RequestsAndLimits`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controlled_values: Option<ControlledValues>,

    /// The factor by which memory grows after an out-of-memory kill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_bump_up_ratio: Option<Quantity>,

    /// The least amount by which memory grows after an out-of-memory kill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_min_bump_up: Option<Quantity>,

    /// The length in seconds of one memory interval: the recommender keeps one memory sample per
    /// interval, the peak usage within it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub memory_aggregation_interval_seconds: Option<i32>,

    /// How many consecutive memory intervals make up the memory window, which therefore lasts
    /// `memoryAggregationIntervalSeconds × memoryAggregationIntervalCount`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub memory_aggregation_interval_count: Option<i64>,

    /// A startup boost for this container, replacing the pod-level one. It overrides the other
    /// fields of this policy except `containerName` and `controlledValues`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_boost: Option<StartupBoost>,
}

impl ContainerResourcePolicy {
    /// Whether the container is autoscaled: the mode set here, else [`ContainerScalingMode::Auto`].
    pub fn mode(&self) -> ContainerScalingMode {
        self.mode.unwrap_or_default()
    }

    /// Which values are set: the choice made here, else [`ControlledValues::RequestsAndLimits`].
    pub fn controlled_values(&self) -> ControlledValues {
        self.controlled_values.unwrap_or_default()
    }

    /// The resources that get recommendations: the list set here (an explicit empty list stays
    /// empty), else [`DEFAULT_CONTROLLED_RESOURCES`].
    pub fn controlled_resources(&self) -> Cow<'_, [String]> {
        match &self.controlled_resources {
            Some(resources) => Cow::Borrowed(resources.as_slice()),
            None => Cow::Owned(
                DEFAULT_CONTROLLED_RESOURCES
                    .iter()
                    .map(|name| (*name).to_owned())
                    .collect(),
            ),
        }
    }

    /// Whether `resource` is among [`Self::controlled_resources`].
    pub fn controls(&self, resource: &str) -> bool {
        match &self.controlled_resources {
            Some(resources) => resources.iter().any(|name| name == resource),
            None => DEFAULT_CONTROLLED_RESOURCES.contains(&resource),
        }
    }
}

/// Whether a container is autoscaled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = schema::without_description)]
pub enum ContainerScalingMode {
    /// The container gets recommendations, and they are applied. This is the default.
    #[default]
    Auto,
    /// The container is left alone.
    Off,
}

/// Which of a container's resource values are set from the recommendation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = schema::without_description)]
pub enum ControlledValues {
    /// Requests are set, and limits are scaled to keep their ratio to the requests. This is the
    /// default.
    #[default]
    RequestsAndLimits,
    /// Only requests are set; limits are left as they are.
    RequestsOnly,
}

/// Names the recommender responsible for an object. More settings may be added later.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerticalPodAutoscalerRecommenderSelector {
    /// The name of the recommender that computes the recommendation for this object.
    pub name: String,
}

/// Temporary extra resources for pods while they start.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartupBoost {
    /// The CPU boost. No boost is applied when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<GenericStartupBoost>,
}

/// A boost of one resource: how large it is and how long it lasts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("(self.type == 'Factor') == has(self.factor)")
        .message("factor is required when type is Factor and forbidden otherwise"),
    validation = Rule::new("(self.type == 'Quantity') == has(self.quantity)")
        .message("quantity is required when type is Quantity and forbidden otherwise")
)]
pub struct GenericStartupBoost {
    /// How the boost is expressed: `Factor` or `Quantity`. Other values apply no boost.
    #[serde(rename = "type")]
    pub type_: StartupBoostType,

    /// The multiplier applied to the resource request. Required with type `Factor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<i32>,

    /// The amount used as both request and limit while the boost lasts. Required with type
    /// `Quantity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Quantity>,

    /// How many seconds the pod stays boosted after it becomes Ready. Defaults to 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<i32>,
}

impl GenericStartupBoost {
    /// How many seconds the boost lasts after the pod is Ready: the value set here, else 0.
    pub fn duration_seconds(&self) -> i32 {
        self.duration_seconds.unwrap_or(0)
    }
}

/// How a startup boost is expressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = schema::without_description)]
pub enum StartupBoostType {
    /// The request is multiplied by `factor`.
    #[default]
    Factor,
    /// The request and limit are set to `quantity`.
    Quantity,
}

/// What the autoscaler last observed and recommended.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerticalPodAutoscalerStatus {
    /// The latest resources recommended for the pods of the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<RecommendedPodResources>,

    /// The conditions this autoscaler needs to do its work, and whether they hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<VerticalPodAutoscalerCondition>>,

    /// The latest `metadata.generation` of the object that the autoscaler has acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub observed_generation: Option<i64>,
}

impl VerticalPodAutoscalerStatus {
    /// The condition of the given type, if there is one.
    pub fn condition(&self, condition_type: &str) -> Option<&VerticalPodAutoscalerCondition> {
        self.conditions
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find(|condition| condition.type_ == condition_type)
    }

    /// The recommendation for the container with this name, if there is one.
    pub fn container_recommendation(
        &self,
        container_name: &str,
    ) -> Option<&RecommendedContainerResources> {
        self.recommendation
            .as_ref()
            .and_then(|recommendation| recommendation.container_recommendations.as_deref())
            .unwrap_or_default()
            .iter()
            .find(|recommendation| recommendation.container_name.as_deref() == Some(container_name))
    }
}

/// The recommended resources for the pods of the target.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecommendedPodResources {
    /// One recommendation per container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_recommendations: Option<Vec<RecommendedContainerResources>>,
}

/// The recommended resources for one container. It already respects the container's policy;
/// containers with `mode: "Off"` get none.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecommendedContainerResources {
    /// The container's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,

    /// The recommended amounts, within the container policy's bounds.
    pub target: ResourceList,

    /// The least recommended amounts, within the policy's bounds. Less than this may still work,
    /// but is likely to hurt performance or availability noticeably.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower_bound: Option<ResourceList>,

    /// The most recommended amounts, within the policy's bounds. More than this is likely wasted;
    /// it can exceed what the application is able to use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper_bound: Option<ResourceList>,

    /// The target computed from usage alone, before the policy's `minAllowed` and `maxAllowed`
    /// were applied. It is informational: nothing applies it to pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncapped_target: Option<ResourceList>,
}

/// The state of one aspect of a `VerticalPodAutoscaler` at some point in time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerticalPodAutoscalerCondition {
    /// Which condition this is, such as `RecommendationProvided` or `LowConfidence`.
    #[serde(rename = "type")]
    pub type_: String,

    /// Whether the condition holds: `True`, `False` or `Unknown`.
    pub status: String,

    /// When the status last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,

    /// A short machine-readable reason for the last change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,

    /// A message for humans about the last change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,

    /// The `metadata.generation` the condition was computed from. A value below the object's
    /// current generation means the condition is stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub observed_generation: Option<i64>,
}

impl VerticalPodAutoscalerCondition {
    /// Whether the status is `True`.
    pub fn is_true(&self) -> bool {
        self.status == CONDITION_TRUE
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn policy(json: serde_json::Value) -> ContainerResourcePolicy {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn update_mode_defaults_to_recreate() {
        let mut spec = VerticalPodAutoscalerSpec::default();
        assert_eq!(spec.update_mode(), UpdateMode::Recreate);
        spec.update_policy = Some(PodUpdatePolicy::default());
        assert_eq!(spec.update_mode(), UpdateMode::Recreate);
        for mode in UpdateMode::ALL {
            spec.update_policy = Some(PodUpdatePolicy {
                update_mode: Some(mode),
                ..PodUpdatePolicy::default()
            });
            assert_eq!(spec.update_mode(), mode);
        }
    }

    #[test]
    fn update_mode_strings_match_serde() {
        for mode in UpdateMode::ALL {
            assert_eq!(serde_json::to_value(mode).unwrap(), mode.as_str());
            assert_eq!(mode.to_string(), mode.as_str());
        }
        assert!(UpdateMode::Auto.is_deprecated());
        assert!(!UpdateMode::Recreate.is_deprecated());
        assert!(!UpdateMode::Initial.updates_running_pods());
        assert!(UpdateMode::InPlace.updates_running_pods());
    }

    #[test]
    fn container_policy_defaults() {
        let unset = ContainerResourcePolicy::default();
        assert_eq!(unset.mode(), ContainerScalingMode::Auto);
        assert_eq!(
            unset.controlled_values(),
            ControlledValues::RequestsAndLimits
        );
        assert_eq!(unset.controlled_resources().as_ref(), ["cpu", "memory"]);
        assert!(unset.controls("cpu") && unset.controls("memory") && !unset.controls("gpu"));

        let set = policy(serde_json::json!({
            "containerName": "app",
            "mode": "Off",
            "controlledValues": "RequestsOnly",
            "controlledResources": ["memory"],
        }));
        assert_eq!(set.mode(), ContainerScalingMode::Off);
        assert_eq!(set.controlled_values(), ControlledValues::RequestsOnly);
        assert_eq!(set.controlled_resources().as_ref(), ["memory"]);
        assert!(!set.controls("cpu") && set.controls("memory"));

        // An explicit empty list stays empty, as upstream.
        let empty = policy(serde_json::json!({"controlledResources": []}));
        assert!(empty.controlled_resources().is_empty());
        assert!(!empty.controls("cpu"));
    }

    #[test]
    fn container_policy_lookup_prefers_exact_name() {
        let resource_policy: PodResourcePolicy = serde_json::from_value(serde_json::json!({
            "containerPolicies": [
                {"containerName": "*", "mode": "Off"},
                {"containerName": "app", "controlledValues": "RequestsOnly"},
            ]
        }))
        .unwrap();
        let app = resource_policy.container_policy("app").unwrap();
        assert_eq!(app.controlled_values(), ControlledValues::RequestsOnly);
        let other = resource_policy.container_policy("sidecar").unwrap();
        assert_eq!(other.mode(), ContainerScalingMode::Off);
        assert!(
            PodResourcePolicy::default()
                .container_policy("app")
                .is_none()
        );
    }

    #[test]
    fn startup_boost_duration_defaults_to_zero() {
        let boost: GenericStartupBoost =
            serde_json::from_value(serde_json::json!({"type": "Factor", "factor": 2})).unwrap();
        assert_eq!(boost.duration_seconds(), 0);
        assert_eq!(boost.type_, StartupBoostType::Factor);
    }

    #[test]
    fn full_object_round_trips() {
        let input = serde_json::json!({
            "apiVersion": "autoscaling.k8s.io/v1",
            "kind": "VerticalPodAutoscaler",
            "metadata": {"name": "app", "namespace": "default", "generation": 3},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "app"},
                "updatePolicy": {
                    "updateMode": "InPlaceOrRecreate",
                    "minReplicas": 2,
                    "evictAfterOOMSeconds": 300,
                    "evictionRequirements": [
                        {"resources": ["cpu"], "changeRequirement": "TargetHigherThanRequests"}
                    ]
                },
                "resourcePolicy": {"containerPolicies": [{
                    "containerName": "*",
                    "mode": "Auto",
                    "minAllowed": {"cpu": "100m", "memory": "50Mi"},
                    "maxAllowed": {"cpu": "1", "memory": "500Mi"},
                    "controlledResources": ["cpu", "memory"],
                    "controlledValues": "RequestsOnly",
                    "oomBumpUpRatio": "1.5",
                    "oomMinBumpUp": "100Mi",
                    "memoryAggregationIntervalSeconds": 3600,
                    "memoryAggregationIntervalCount": 24,
                    "startupBoost": {"cpu": {"type": "Quantity", "quantity": "2", "durationSeconds": 30}}
                }]},
                "recommenders": [{"name": "default"}],
                "startupBoost": {"cpu": {"type": "Factor", "factor": 2}}
            },
            "status": {
                "observedGeneration": 3,
                "recommendation": {"containerRecommendations": [{
                    "containerName": "app",
                    "target": {"cpu": "587m", "memory": "262144k"},
                    "lowerBound": {"cpu": "100m", "memory": "262144k"},
                    "upperBound": {"cpu": "1", "memory": "500Mi"},
                    "uncappedTarget": {"cpu": "587m", "memory": "262144k"}
                }]},
                "conditions": [{
                    "type": "RecommendationProvided",
                    "status": "True",
                    "lastTransitionTime": "2025-06-01T10:00:00Z",
                    "observedGeneration": 3
                }]
            }
        });
        let vpa: VerticalPodAutoscaler = serde_json::from_value(input.clone()).unwrap();
        assert_eq!(vpa.update_mode(), UpdateMode::InPlaceOrRecreate);
        assert!(vpa.condition(RECOMMENDATION_PROVIDED).unwrap().is_true());
        assert_eq!(vpa.spec.recommender_name(), Some("default"));
        let status = vpa.status.as_ref().unwrap();
        assert_eq!(
            status.container_recommendation("app").unwrap().target["cpu"],
            Quantity("587m".into())
        );
        assert_eq!(serde_json::to_value(&vpa).unwrap(), input);
    }
}
