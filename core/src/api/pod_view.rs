//! Conversions from the Kubernetes `Pod` and `LimitRange` types to the plain views the pure
//! modules compute on ([`crate::pod::PodView`], [`crate::limitrange::LimitRangeItem`]).
//!
//! Quantities are parsed here, once. A quantity that does not parse makes the whole
//! conversion fail with the field named, as upstream's decoding of the object would.

use crate::limitrange::{LimitRangeItem, NamespaceLimits};
use crate::pod::{ContainerStatusView, ContainerView, PodView, ResourceMap, ResourceRequirements};
use crate::quantity::{self, QuantityError};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;
use std::collections::BTreeMap;
use thiserror::Error;

/// A quantity in a pod or LimitRange that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {source}")]
pub struct ConversionError {
    /// Where the value is, e.g. `spec.containers[0].resources.requests[cpu]`.
    pub field: String,
    /// Why it does not parse.
    #[source]
    pub source: QuantityError,
}

fn resource_map(
    list: Option<&BTreeMap<String, ApiQuantity>>,
    field: &str,
) -> Result<Option<ResourceMap>, ConversionError> {
    list.map(|list| {
        list.iter()
            .map(|(name, q)| {
                quantity::parse(q.0.trim())
                    .map(|q| (name.clone(), q))
                    .map_err(|source| ConversionError {
                        field: format!("{field}[{name}]"),
                        source,
                    })
            })
            .collect()
    })
    .transpose()
}

/// Converts `resources` of a container or container status.
pub fn resource_requirements(
    r: &core::ResourceRequirements,
    field: &str,
) -> Result<ResourceRequirements, ConversionError> {
    Ok(ResourceRequirements {
        requests: resource_map(r.requests.as_ref(), &format!("{field}.requests"))?,
        limits: resource_map(r.limits.as_ref(), &format!("{field}.limits"))?,
    })
}

fn containers(
    list: &[core::Container],
    field: &str,
) -> Result<Vec<ContainerView>, ConversionError> {
    list.iter()
        .enumerate()
        .map(|(i, c)| {
            let resources = match &c.resources {
                Some(r) => resource_requirements(r, &format!("{field}[{i}].resources"))?,
                None => ResourceRequirements::default(),
            };
            Ok(ContainerView {
                name: c.name.clone(),
                resources,
                restart_policy: c.restart_policy.clone(),
            })
        })
        .collect()
}

fn statuses(
    list: Option<&Vec<core::ContainerStatus>>,
    field: &str,
) -> Result<Vec<ContainerStatusView>, ConversionError> {
    list.into_iter()
        .flatten()
        .enumerate()
        .map(|(i, s)| {
            Ok(ContainerStatusView {
                name: s.name.clone(),
                resources: s
                    .resources
                    .as_ref()
                    .map(|r| resource_requirements(r, &format!("{field}[{i}].resources")))
                    .transpose()?,
            })
        })
        .collect()
}

impl TryFrom<&core::Pod> for PodView {
    type Error = ConversionError;

    fn try_from(pod: &core::Pod) -> Result<PodView, ConversionError> {
        let meta = &pod.metadata;
        let spec = pod.spec.as_ref();
        let status = pod.status.as_ref();
        Ok(PodView {
            name: meta.name.clone().unwrap_or_default(),
            generate_name: meta.generate_name.clone().unwrap_or_default(),
            namespace: meta.namespace.clone().unwrap_or_default(),
            labels: meta.labels.clone().unwrap_or_default(),
            annotations: meta.annotations.clone(),
            containers: containers(
                spec.map(|s| s.containers.as_slice()).unwrap_or_default(),
                "spec.containers",
            )?,
            init_containers: containers(
                spec.and_then(|s| s.init_containers.as_deref())
                    .unwrap_or_default(),
                "spec.initContainers",
            )?,
            container_statuses: statuses(
                status.and_then(|s| s.container_statuses.as_ref()),
                "status.containerStatuses",
            )?,
            init_container_statuses: statuses(
                status.and_then(|s| s.init_container_statuses.as_ref()),
                "status.initContainerStatuses",
            )?,
        })
    }
}

/// The items of one LimitRange.
pub fn limit_range_items(lr: &core::LimitRange) -> Result<Vec<LimitRangeItem>, ConversionError> {
    let name = lr.metadata.name.as_deref().unwrap_or_default();
    lr.spec
        .iter()
        .flat_map(|s| s.limits.iter())
        .enumerate()
        .map(|(i, item)| {
            let field = |what: &str| format!("LimitRange {name}: spec.limits[{i}].{what}");
            Ok(LimitRangeItem {
                type_: item.type_.clone(),
                max: resource_map(item.max.as_ref(), &field("max"))?,
                min: resource_map(item.min.as_ref(), &field("min"))?,
                default: resource_map(item.default.as_ref(), &field("default"))?,
            })
        })
        .collect()
}

/// The merged limits of a namespace from all its LimitRanges, in the order given (upstream
/// takes the lister's order; sort by name first for a stable `default`).
pub fn namespace_limits<'a>(
    limit_ranges: impl IntoIterator<Item = &'a core::LimitRange>,
) -> Result<NamespaceLimits, ConversionError> {
    let mut items = Vec::new();
    for lr in limit_ranges {
        items.extend(limit_range_items(lr)?);
    }
    Ok(NamespaceLimits::from_items(&items))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::quantity::Quantity;

    fn q(s: &str) -> Quantity {
        quantity::parse(s).unwrap()
    }

    #[test]
    fn pod_converts_with_absent_and_empty_lists_kept_apart() {
        let pod: core::Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"generateName": "web-", "namespace": "ns", "labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "100m"}, "limits": {}}},
                    {"name": "b"}
                ],
                "initContainers": [{"name": "side", "restartPolicy": "Always"}]
            },
            "status": {"containerStatuses": [{
                "name": "a", "image": "x", "imageID": "", "ready": true, "restartCount": 0,
                "resources": {"requests": {"cpu": "200m"}}
            }]}
        }))
        .unwrap();
        let view = PodView::try_from(&pod).unwrap();
        assert_eq!(view.display_name(), "web-%");
        assert_eq!(view.namespace, "ns");
        assert_eq!(view.annotations, None);
        let a = &view.containers[0].resources;
        assert_eq!(a.request("cpu"), Some(&q("100m")));
        assert_eq!(a.limits, Some(ResourceMap::new()));
        assert_eq!(
            view.containers[1].resources,
            ResourceRequirements::default()
        );
        assert!(view.init_containers[0].is_sidecar());
        assert_eq!(
            view.current_resources("a").unwrap().request("cpu"),
            Some(&q("200m"))
        );
    }

    #[test]
    fn bad_quantity_names_the_field() {
        let pod = core::Pod {
            spec: Some(core::PodSpec {
                containers: vec![core::Container {
                    name: "a".into(),
                    resources: Some(core::ResourceRequirements {
                        limits: Some(BTreeMap::from([(
                            "memory".to_string(),
                            ApiQuantity("12x".into()),
                        )])),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let err = PodView::try_from(&pod).unwrap_err();
        assert_eq!(err.field, "spec.containers[0].resources.limits[memory]");
    }

    #[test]
    fn limit_ranges_merge_across_objects() {
        let lr = |name: &str, json: serde_json::Value| -> core::LimitRange {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name}, "spec": {"limits": json}
            }))
            .unwrap()
        };
        let a = lr(
            "a",
            serde_json::json!([{"type": "Container", "max": {"cpu": "2"}, "default": {"cpu": "1"}}]),
        );
        let b = lr(
            "b",
            serde_json::json!([
                {"type": "Container", "max": {"cpu": "1500m"}},
                {"type": "Pod", "min": {"memory": "1Gi"}}
            ]),
        );
        let limits = namespace_limits([&a, &b]).unwrap();
        let container = limits.container.unwrap();
        assert_eq!(container.max_of("cpu"), Some(&q("1500m")));
        assert_eq!(container.default_of("cpu"), Some(&q("1")));
        assert_eq!(limits.pod.unwrap().min_of("memory"), Some(&q("1Gi")));
    }
}
