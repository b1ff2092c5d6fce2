//! Conversion from the API's resource policy to the plain values the engine and the capping
//! logic use (`crate::policy`). Quantities become millicores (CPU) and bytes (memory);
//! resources other than cpu and memory are not modelled and are skipped.

use super::vpa::{self, ResourceList};
use crate::model::{ResourceKind, Resources};
use crate::policy::{
    ContainerResourcePolicy, ContainerScalingMode, ControlledResources, ControlledValues,
    PodResourcePolicy,
};
use crate::quantity;
use crate::time::Duration;
use thiserror::Error;

/// A policy field that does not hold a valid quantity.
#[derive(Debug, Error, PartialEq)]
#[error("resourcePolicy.containerPolicies[{index}].{field}: {source}")]
pub struct PolicyError {
    /// Index of the container policy.
    pub index: usize,
    /// The field, e.g. `minAllowed.cpu`.
    pub field: String,
    /// Why the value was refused.
    pub source: quantity::QuantityError,
}

fn resources(
    list: Option<&ResourceList>,
    index: usize,
    field: &str,
) -> Result<Resources, PolicyError> {
    let mut out = Resources::default();
    for (name, q) in list.into_iter().flatten() {
        let Some(kind) = ResourceKind::from_name(name) else {
            continue;
        };
        let parsed = quantity::parse(&q.0).map_err(|source| PolicyError {
            index,
            field: format!("{field}.{name}"),
            source,
        })?;
        let amount = match kind {
            ResourceKind::Cpu => parsed.milli_value(),
            ResourceKind::Memory => parsed.value(),
        };
        out.set(kind, Some(amount));
    }
    Ok(out)
}

/// Upstream converts these with `MilliValue() / 1000`.
fn ratio(
    q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    index: usize,
    field: &str,
) -> Result<Option<f64>, PolicyError> {
    q.map(|q| {
        quantity::parse(&q.0)
            .map(|p| p.milli_value() as f64 / 1000.0)
            .map_err(|source| PolicyError {
                index,
                field: field.to_string(),
                source,
            })
    })
    .transpose()
}

/// The plain policy for an API `spec.resourcePolicy`.
pub fn pod_resource_policy(p: &vpa::PodResourcePolicy) -> Result<PodResourcePolicy, PolicyError> {
    let mut container_policies = Vec::new();
    for (index, c) in p.container_policies.iter().flatten().enumerate() {
        container_policies.push(ContainerResourcePolicy {
            container_name: c.container_name.clone().unwrap_or_default(),
            mode: c.mode.map(|m| match m {
                vpa::ContainerScalingMode::Auto => ContainerScalingMode::Auto,
                vpa::ContainerScalingMode::Off => ContainerScalingMode::Off,
            }),
            min_allowed: resources(c.min_allowed.as_ref(), index, "minAllowed")?,
            max_allowed: resources(c.max_allowed.as_ref(), index, "maxAllowed")?,
            controlled_resources: c
                .controlled_resources
                .as_ref()
                .map(|names| ControlledResources::from_names(names.iter().map(String::as_str))),
            controlled_values: c.controlled_values.map(|v| match v {
                vpa::ControlledValues::RequestsAndLimits => ControlledValues::RequestsAndLimits,
                vpa::ControlledValues::RequestsOnly => ControlledValues::RequestsOnly,
            }),
            oom_bump_up_ratio: ratio(c.oom_bump_up_ratio.as_ref(), index, "oomBumpUpRatio")?,
            oom_min_bump_up: ratio(c.oom_min_bump_up.as_ref(), index, "oomMinBumpUp")?,
            memory_aggregation_interval: c
                .memory_aggregation_interval_seconds
                .map(|s| Duration::from_secs(i64::from(s))),
            memory_aggregation_interval_count: c.memory_aggregation_interval_count,
        });
    }
    Ok(PodResourcePolicy { container_policies })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn converts_an_upstream_policy() {
        let api: vpa::PodResourcePolicy = serde_json::from_value(serde_json::json!({
            "containerPolicies": [
                {"containerName": "*", "mode": "Off"},
                {"containerName": "app", "minAllowed": {"cpu": "100m", "memory": "50Mi", "nvidia.com/gpu": "1"},
                 "maxAllowed": {"cpu": 2, "memory": "1Gi"}, "controlledResources": ["memory"],
                 "controlledValues": "RequestsOnly", "oomBumpUpRatio": "1.5", "oomMinBumpUp": "200Mi",
                 "memoryAggregationIntervalSeconds": 3600, "memoryAggregationIntervalCount": 4}
            ]
        }))
        .unwrap();
        let p = pod_resource_policy(&api).unwrap();
        let app = p.container_policy("app").unwrap();
        assert_eq!(app.min_allowed, Resources::new(100, 50 << 20));
        assert_eq!(app.max_allowed, Resources::new(2000, 1 << 30));
        assert_eq!(
            app.controlled_resources,
            Some(ControlledResources {
                cpu: false,
                memory: true
            })
        );
        assert_eq!(app.controlled_values, Some(ControlledValues::RequestsOnly));
        assert_eq!(app.oom_bump_up_ratio, Some(1.5));
        assert_eq!(app.oom_min_bump_up, Some((200 << 20) as f64));
        assert_eq!(
            app.memory_aggregation_interval,
            Some(Duration::from_hours(1))
        );
        assert_eq!(app.memory_aggregation_interval_count, Some(4));
        assert_eq!(
            p.container_policy("other").unwrap().mode,
            Some(ContainerScalingMode::Off)
        );
    }

    #[test]
    fn a_bad_quantity_names_the_field() {
        let api: vpa::PodResourcePolicy = serde_json::from_value(serde_json::json!({
            "containerPolicies": [{"containerName": "app", "maxAllowed": {"memory": "lots"}}]
        }))
        .unwrap();
        let e = pod_resource_policy(&api).unwrap_err().to_string();
        assert!(
            e.starts_with("resourcePolicy.containerPolicies[0].maxAllowed.memory: "),
            "{e}"
        );
        assert!(e.contains("lots"), "{e}");
    }
}
