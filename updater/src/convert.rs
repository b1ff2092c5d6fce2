//! Conversions from the API objects (VPA, Pod, owners) to the plain [`crate::view`] types the
//! decisions take, including the per-pod processing of the VPA's recommendation (vpa-core's
//! capping to LimitRanges and the resource policy, and the new requests and limits an
//! in-place resize would set, computed as the admission controller does).
//!
//! Pure: no I/O, no clock. Quantities that do not parse are dropped from the views (the API
//! server's validation makes them unreachable); a pod whose recommendation cannot be
//! processed gets [`PodView::recommendation_error`] and so is never updated.

use crate::view::{
    ChangeRequirement, ContainerPolicyView, ContainerRecommendation, ContainerResources,
    ContainerTarget, ContainerView, EvictionRequirement, OBSERVED_CONTAINERS_ANNOTATION, OwnerRef,
    PodCondition, PodConditionType, PodPhase, PodView, RecommendedResources, ResizePolicy,
    RestartPolicy, StartupBoostView, Termination, UpdateMode, VpaView, boosted_containers,
    parse_observed_containers,
};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;
use std::collections::BTreeMap;
use vpa_core::api::vpa::{
    ContainerScalingMode, EvictionChangeRequirement, StartupBoost, VerticalPodAutoscaler,
};
use vpa_core::checkpoint::from_time;
use vpa_core::limitrange::NamespaceLimits;
use vpa_core::model::{ResourceKind, Resources};
use vpa_core::patch::{CPU_STARTUP_BOOST_ANNOTATION_PREFIX, OriginalResources};
use vpa_core::pod::ResourceMap;
use vpa_core::pod_resources::{cap_recommendation, container_resources, parse_recommendation};
use vpa_core::quantity;
use vpa_core::time::Duration;

/// CPU in millicores and memory in bytes of a parsed resource map.
pub fn resources_of(map: Option<&ResourceMap>) -> Resources {
    let Some(map) = map else {
        return Resources::default();
    };
    Resources {
        cpu: map.get("cpu").map(quantity::Quantity::milli_value),
        memory: map.get("memory").map(quantity::Quantity::value),
    }
}

/// CPU in millicores and memory in bytes of an API resource list (unparsable values dropped).
pub fn api_resources(list: Option<&BTreeMap<String, ApiQuantity>>) -> Resources {
    let Some(list) = list else {
        return Resources::default();
    };
    let get = |name: &str| {
        list.get(name)
            .and_then(|q| quantity::parse(q.0.trim()).ok())
    };
    Resources {
        cpu: get("cpu").map(|q| q.milli_value()),
        memory: get("memory").map(|q| q.value()),
    }
}

fn boost_view(b: &StartupBoost) -> StartupBoostView {
    StartupBoostView {
        duration: b
            .cpu
            .as_ref()
            .and_then(|c| c.duration_seconds)
            .map(|s| Duration::from_secs(i64::from(s))),
    }
}

/// The updater's view of a VPA.
pub fn vpa_view(vpa: &VerticalPodAutoscaler) -> VpaView {
    let policy = vpa.spec.update_policy.as_ref();
    let eviction_requirements = policy.map(|p| {
        p.eviction_requirements
            .iter()
            .flatten()
            .map(|r| EvictionRequirement {
                resources: r
                    .resources
                    .iter()
                    .map(|name| match name.as_str() {
                        "cpu" => Some(ResourceKind::Cpu),
                        "memory" => Some(ResourceKind::Memory),
                        _ => None,
                    })
                    .collect(),
                change: match r.change_requirement {
                    EvictionChangeRequirement::TargetHigherThanRequests => {
                        ChangeRequirement::TargetHigherThanRequests
                    }
                    EvictionChangeRequirement::TargetLowerThanRequests => {
                        ChangeRequirement::TargetLowerThanRequests
                    }
                },
            })
            .collect()
    });
    let container_policies = vpa
        .spec
        .resource_policy
        .as_ref()
        .and_then(|p| p.container_policies.as_ref())
        .into_iter()
        .flatten()
        .map(|c| ContainerPolicyView {
            container_name: c.container_name.clone().unwrap_or_default(),
            mode_off: c.mode == Some(ContainerScalingMode::Off),
            startup_boost: c.startup_boost.as_ref().map(boost_view),
        })
        .collect();
    let recommendation = vpa
        .status
        .as_ref()
        .and_then(|s| s.recommendation.as_ref())
        .map(|r| {
            r.container_recommendations
                .iter()
                .flatten()
                .map(|c| ContainerTarget {
                    container_name: c.container_name.clone().unwrap_or_default(),
                    target: api_resources(Some(&c.target)),
                })
                .collect()
        });
    VpaView {
        namespace: vpa.metadata.namespace.clone().unwrap_or_default(),
        name: vpa.metadata.name.clone().unwrap_or_default(),
        mode: UpdateMode::from_api(Some(vpa.spec.update_mode().as_str()))
            .unwrap_or(UpdateMode::Off),
        min_replicas: policy.and_then(|p| p.min_replicas),
        eviction_requirements,
        evict_after_oom_seconds: policy.and_then(|p| p.evict_after_oom_seconds),
        container_policies,
        startup_boost: vpa.spec.startup_boost.as_ref().map(boost_view),
        recommendation,
    }
}

/// The controller owner of a pod.
pub fn controller_owner(pod: &core::Pod) -> Option<OwnerRef> {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| OwnerRef {
            kind: o.kind.clone(),
            name: o.name.clone(),
        })
}

fn phase(p: Option<&str>) -> PodPhase {
    match p {
        Some("Pending") => PodPhase::Pending,
        Some("Running") => PodPhase::Running,
        _ => PodPhase::Other,
    }
}

fn condition(c: &core::PodCondition) -> PodCondition {
    PodCondition {
        kind: match c.type_.as_str() {
            "Ready" => PodConditionType::Ready,
            "PodResizePending" => PodConditionType::PodResizePending,
            "PodResizeInProgress" => PodConditionType::PodResizeInProgress,
            _ => PodConditionType::Other,
        },
        is_true: c.status == "True",
        reason: c.reason.clone().unwrap_or_default(),
        message: c.message.clone().unwrap_or_default(),
        last_transition: from_time(c.last_transition_time.as_ref()),
    }
}

fn resize_policy(c: &core::Container) -> ResizePolicy {
    let mut out = ResizePolicy::default();
    for p in c.resize_policy.iter().flatten() {
        let policy = if p.restart_policy == "RestartContainer" {
            RestartPolicy::RestartContainer
        } else {
            RestartPolicy::NotRequired
        };
        match p.resource_name.as_str() {
            "cpu" => out.cpu = policy,
            "memory" => out.memory = policy,
            _ => {}
        }
    }
    out
}

fn requirements(r: Option<&core::ResourceRequirements>) -> ContainerResources {
    ContainerResources {
        requests: api_resources(r.and_then(|r| r.requests.as_ref())),
        limits: api_resources(r.and_then(|r| r.limits.as_ref())),
    }
}

fn container_view(
    c: &core::Container,
    init: bool,
    statuses: Option<&Vec<core::ContainerStatus>>,
    annotations: Option<&BTreeMap<String, String>>,
) -> ContainerView {
    let status = statuses.into_iter().flatten().find(|s| s.name == c.name);
    let boost_original = annotations
        .and_then(|a| a.get(&format!("{CPU_STARTUP_BOOST_ANNOTATION_PREFIX}{}", c.name)))
        .and_then(|v| serde_json::from_str::<OriginalResources>(v).ok())
        .map(|o| {
            let parse = |m: &BTreeMap<String, String>| -> Resources {
                let get = |name: &str| m.get(name).and_then(|q| quantity::parse(q.trim()).ok());
                Resources {
                    cpu: get("cpu").map(|q| q.milli_value()),
                    memory: get("memory").map(|q| q.value()),
                }
            };
            ContainerResources {
                requests: parse(&o.requests),
                limits: parse(&o.limits),
            }
        });
    ContainerView {
        name: c.name.clone(),
        init,
        spec: requirements(c.resources.as_ref()),
        status: status
            .and_then(|s| s.resources.as_ref())
            .map(|r| requirements(Some(r))),
        last_termination: status
            .and_then(|s| s.last_state.as_ref())
            .and_then(|s| s.terminated.as_ref())
            .map(|t| Termination {
                reason: t.reason.clone().unwrap_or_default(),
                started_at: from_time(t.started_at.as_ref()),
                finished_at: from_time(t.finished_at.as_ref()),
            }),
        resize_policy: resize_policy(c),
        new_resources: None,
        boost_original,
    }
}

/// The updater's view of a pod controlled by `vpa`, with the VPA's recommendation processed
/// for it under the namespace's `limits` (`Err`: the LimitRanges could not be read).
pub fn pod_view(
    pod: &core::Pod,
    vpa: &VerticalPodAutoscaler,
    limits: Result<&NamespaceLimits, String>,
) -> PodView {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let annotations = meta.annotations.as_ref();
    let mut containers: Vec<ContainerView> = spec
        .map(|s| s.containers.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|c| {
            container_view(
                c,
                false,
                status.and_then(|s| s.container_statuses.as_ref()),
                annotations,
            )
        })
        .collect();
    containers.extend(
        spec.and_then(|s| s.init_containers.as_ref())
            .into_iter()
            .flatten()
            .map(|c| {
                container_view(
                    c,
                    true,
                    status.and_then(|s| s.init_container_statuses.as_ref()),
                    annotations,
                )
            }),
    );
    let mut view = PodView {
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        owner: controller_owner(pod),
        phase: phase(status.and_then(|s| s.phase.as_deref())),
        start_time: from_time(status.and_then(|s| s.start_time.as_ref())),
        containers,
        observed_containers: annotations
            .and_then(|a| a.get(OBSERVED_CONTAINERS_ANNOTATION))
            .map(|v| parse_observed_containers(v).unwrap_or_default()),
        conditions: status
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .map(condition)
            .collect(),
        boosted_containers: annotations
            .map(|a| boosted_containers(a.keys().map(String::as_str)))
            .unwrap_or_default(),
        recommendation: Vec::new(),
        recommendation_error: None,
    };
    match process_recommendation(pod, vpa, limits, &mut view) {
        Ok(()) => {}
        Err(e) => view.recommendation_error = Some(e),
    }
    view
}

/// Fills the pod's capped recommendation and each container's in-place resources.
fn process_recommendation(
    pod: &core::Pod,
    vpa: &VerticalPodAutoscaler,
    limits: Result<&NamespaceLimits, String>,
    view: &mut PodView,
) -> Result<(), String> {
    let Some(rec) = vpa.status.as_ref().and_then(|s| s.recommendation.as_ref()) else {
        return Ok(());
    };
    let limits = limits?;
    let core_pod = vpa_core::pod::PodView::try_from(pod).map_err(|e| e.to_string())?;
    let parsed = parse_recommendation(rec).map_err(|e| e.to_string())?;
    let capped = cap_recommendation(
        &core_pod,
        vpa.spec.resource_policy.as_ref(),
        Some(&parsed),
        limits,
    )
    .map_err(|e| e.to_string())?
    .unwrap_or_default();
    view.recommendation = capped
        .containers
        .iter()
        .map(|c| ContainerRecommendation {
            container_name: c.container_name.clone(),
            recommended: RecommendedResources {
                target: resources_of(Some(&c.target)),
                lower_bound: resources_of(c.lower_bound.as_ref()),
                upper_bound: resources_of(c.upper_bound.as_ref()),
            },
        })
        .collect();
    let new = container_resources(&core_pod, vpa, limits).map_err(|e| e.to_string())?;
    for (c, r) in view
        .containers
        .iter_mut()
        .filter(|c| !c.init)
        .zip(new.containers)
    {
        let resources = ContainerResources {
            requests: resources_of(Some(&r.requests)),
            limits: resources_of(Some(&r.limits)),
        };
        c.new_resources =
            (!resources.requests.is_empty() || !resources.limits.is_empty()).then_some(resources);
    }
    Ok(())
}

/// `spec.replicas` of a ReplicaSet, StatefulSet or ReplicationController, or `numberReady`
/// of a DaemonSet, as [`crate::view::OwnerReplicas::count`] wants it.
pub fn replicas_of_json(kind: &str, object: &serde_json::Value) -> Option<i32> {
    let field = match kind {
        "DaemonSet" => object.pointer("/status/numberReady"),
        _ => object.pointer("/spec/replicas"),
    }?;
    field.as_i64().and_then(|n| i32::try_from(n).ok())
}

#[cfg(test)]
mod tests;
