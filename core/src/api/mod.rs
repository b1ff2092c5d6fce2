//! The Kubernetes API types of vpa-rs.
//!
//! * [`vpa`]: `VerticalPodAutoscaler` (`autoscaling.k8s.io/v1`), the object users write.
//! * [`checkpoint`]: `VerticalPodAutoscalerCheckpoint`, the recommender's saved history.
//! * [`metrics`]: `PodMetrics` from the resource metrics API (`metrics.k8s.io/v1beta1`).
//!
//! Both custom resources are wire-compatible with upstream VPA 1.7.1: objects written by upstream
//! components deserialise here and serialise back to equal JSON, and [`crds`] returns CRDs whose
//! schemas have the same shape as upstream's (`core/tests/crd_structural_diff.rs` checks this
//! path by path). Use [`crds`] rather than `CustomResourceExt::crd`, which lacks the adjustments
//! made here: upstream's quantity and nullability conventions, the retired `v1beta2` version
//! entries, and no status subresource on checkpoints. `cargo run -p vpa-core --bin crdgen`
//! writes them to `charts/vpa/crds/`.

pub mod checkpoint;
pub mod convert;
pub mod metrics;
pub mod pod_view;
mod schema;
pub mod vpa;
mod yaml;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionVersion,
};
use kube::CustomResourceExt;

pub use checkpoint::{
    CHECKPOINT_VERSION, HistogramCheckpoint, VerticalPodAutoscalerCheckpoint,
    VerticalPodAutoscalerCheckpointSpec, VerticalPodAutoscalerCheckpointStatus,
};
pub use metrics::{ContainerMetrics, METRICS_GROUP, METRICS_VERSION, PodMetrics, PodMetricsList};
pub use schema::QUANTITY_PATTERN;
pub use vpa::{
    CONDITION_FALSE, CONDITION_TRUE, CONDITION_TYPES, CONDITION_UNKNOWN, CONFIG_DEPRECATED,
    CONFIG_UNSUPPORTED, ContainerResourcePolicy, ContainerScalingMode, ControlledValues,
    DEFAULT_CONTAINER_RESOURCE_POLICY, DEFAULT_CONTROLLED_RESOURCES, EvictionChangeRequirement,
    EvictionRequirement, FETCHING_HISTORY, GenericStartupBoost, LOW_CONFIDENCE, NO_PODS_MATCHED,
    PodResourcePolicy, PodUpdatePolicy, RECOMMENDATION_PROVIDED, RESOURCE_CPU, RESOURCE_MEMORY,
    RecommendedContainerResources, RecommendedPodResources, ResourceList, StartupBoost,
    StartupBoostType, UpdateMode, VerticalPodAutoscaler, VerticalPodAutoscalerCondition,
    VerticalPodAutoscalerRecommenderSelector, VerticalPodAutoscalerSpec,
    VerticalPodAutoscalerStatus,
};

/// The version upstream retired in 1.3.0. It stays in the CRDs, neither served nor stored, so
/// that clusters that once stored objects in it (it is in their CRD's `status.storedVersions`)
/// accept these CRDs.
pub const RETIRED_VERSION: &str = "v1beta2";

/// The warning upstream attaches to the retired `v1beta2` version of the VPA CRD.
pub const RETIRED_VERSION_WARNING: &str = "autoscaling.k8s.io/v1beta2 API is deprecated";

/// Errors from rendering the CRDs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A CRD could not be serialised to JSON.
    #[error("cannot serialise the CRD {name}")]
    Serialise {
        /// The CRD's name.
        name: String,
        /// What went wrong.
        #[source]
        source: serde_json::Error,
    },
    /// The rendered YAML does not parse.
    #[error("the YAML rendered for the CRD {name} does not parse")]
    Parse {
        /// The CRD's name.
        name: String,
        /// What went wrong.
        #[source]
        source: serde_yaml::Error,
    },
    /// The rendered YAML parses to something other than the CRD.
    #[error("the YAML rendered for the CRD {name} does not read back as the same CRD")]
    Mismatch {
        /// The CRD's name.
        name: String,
    },
}

/// Both CRDs, VerticalPodAutoscaler first, in upstream's shape.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![vpa_crd(), checkpoint_crd()]
}

/// The `verticalpodautoscalers.autoscaling.k8s.io` CRD.
pub fn vpa_crd() -> CustomResourceDefinition {
    let mut crd = VerticalPodAutoscaler::crd();
    conform(&mut crd, &[]);
    let retired = crd
        .spec
        .versions
        .first()
        .map(|current| CustomResourceDefinitionVersion {
            name: RETIRED_VERSION.into(),
            served: false,
            storage: false,
            deprecated: Some(true),
            deprecation_warning: Some(RETIRED_VERSION_WARNING.into()),
            additional_printer_columns: None,
            ..current.clone()
        });
    crd.spec.versions.extend(retired);
    crd
}

/// The `verticalpodautoscalercheckpoints.autoscaling.k8s.io` CRD. Upstream gives it no status
/// subresource and does not require `spec`.
pub fn checkpoint_crd() -> CustomResourceDefinition {
    let mut crd = VerticalPodAutoscalerCheckpoint::crd();
    conform(&mut crd, &schema::CHECKPOINT_NULLABLE);
    for version in &mut crd.spec.versions {
        version.subresources = None;
        if let Some(root) = version
            .schema
            .as_mut()
            .and_then(|validation| validation.open_api_v3_schema.as_mut())
        {
            root.required = None;
        }
    }
    let retired = crd
        .spec
        .versions
        .first()
        .map(|current| CustomResourceDefinitionVersion {
            name: RETIRED_VERSION.into(),
            served: false,
            storage: false,
            ..current.clone()
        });
    crd.spec.versions.extend(retired);
    crd
}

/// Applies upstream's schema conventions to every version and fills in `listKind`.
fn conform(crd: &mut CustomResourceDefinition, nullable: &[&str]) {
    let names = &mut crd.spec.names;
    names
        .list_kind
        .get_or_insert_with(|| format!("{}List", names.kind));
    for version in &mut crd.spec.versions {
        if let Some(root) = version
            .schema
            .as_mut()
            .and_then(|validation| validation.open_api_v3_schema.as_mut())
        {
            schema::conform_to_upstream(root, nullable);
        }
    }
}

/// The file under `charts/vpa/crds/` that holds each CRD, with its contents.
pub fn crd_files() -> Result<Vec<(&'static str, String)>, Error> {
    [
        ("verticalpodautoscalers.yaml", vpa_crd()),
        ("verticalpodautoscalercheckpoints.yaml", checkpoint_crd()),
    ]
    .into_iter()
    .map(|(file, crd)| Ok((file, render_yaml(&crd)?)))
    .collect()
}

/// The first line of every generated CRD file.
pub const GENERATED_HEADER: &str =
    "# Generated from core/src/api by `cargo run -p vpa-core --bin crdgen`. Do not edit.";

/// The text of a generated CRD file: a header saying where it comes from, then the YAML.
///
/// The YAML quotes every string that YAML 1.1 (Helm, kubectl) could read as another type, and
/// is checked to parse back to the same CRD before it is returned.
pub fn render_yaml(crd: &CustomResourceDefinition) -> Result<String, Error> {
    let name = || crd.metadata.name.clone().unwrap_or_default();
    let value = serde_json::to_value(crd).map_err(|source| Error::Serialise {
        name: name(),
        source,
    })?;
    let text = format!("{GENERATED_HEADER}\n---\n{}", yaml::to_yaml(&value));
    let parsed: serde_json::Value = serde_yaml::from_str(&text).map_err(|source| Error::Parse {
        name: name(),
        source,
    })?;
    if parsed != value {
        return Err(Error::Mismatch { name: name() });
    }
    Ok(text)
}
