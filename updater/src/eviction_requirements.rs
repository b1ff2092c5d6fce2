//! `updatePolicy.evictionRequirements` (upstream
//! `scaling_direction_pod_eviction_admission.go`): which pods an update may proceed for,
//! given the direction of the change.
//!
//! A pod of a VPA without `updatePolicy` is always admitted. Otherwise a pod is admitted
//! when one of its containers (of `spec.containers`) with a recommendation either lacks a cpu
//! or a memory request, or satisfies every requirement, where a requirement is satisfied
//! when one of its resources changes in the asked direction (target vs request, milli
//! units, the status's request taking precedence over the spec's).

use crate::view::{ChangeRequirement, EvictionRequirement, PodView};
use vpa_core::model::{ResourceKind, Resources};

/// The milli value of a resource of a list; missing or unmodelled resources read as zero.
fn milli(r: &Resources, kind: Option<ResourceKind>) -> i128 {
    match kind {
        Some(ResourceKind::Cpu) => i128::from(r.cpu.unwrap_or(0)),
        Some(ResourceKind::Memory) => i128::from(r.memory.unwrap_or(0)) * 1000,
        None => 0,
    }
}

fn satisfies(requests: &Resources, target: &Resources, req: &EvictionRequirement) -> bool {
    req.resources.iter().any(|&kind| {
        let (current, recommended) = (milli(requests, kind), milli(target, kind));
        match req.change {
            ChangeRequirement::TargetHigherThanRequests => recommended > current,
            ChangeRequirement::TargetLowerThanRequests => recommended < current,
            ChangeRequirement::Other => false,
        }
    })
}

/// True when the pod may be updated under `requirements` (`None`: the VPA has no
/// `updatePolicy`).
pub fn admit(requirements: Option<&[EvictionRequirement]>, pod: &PodView) -> bool {
    let Some(requirements) = requirements else {
        return true;
    };
    pod.containers.iter().filter(|c| !c.init).any(|c| {
        let Some(rec) = pod.recommendation_for(&c.name) else {
            return false;
        };
        let requests = &c.current().requests;
        requests.cpu.is_none()
            || requests.memory.is_none()
            || requirements
                .iter()
                .all(|r| satisfies(requests, &rec.target, r))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{
        ContainerRecommendation, ContainerResources, ContainerView, RecommendedResources,
    };

    const GI: i64 = 1 << 30;

    fn pod(requests: Resources, status: Option<Resources>, target: Resources) -> PodView {
        PodView {
            name: "pod1".into(),
            containers: vec![ContainerView {
                name: "container1".into(),
                spec: ContainerResources {
                    requests,
                    limits: Resources::default(),
                },
                status: status.map(|requests| ContainerResources {
                    requests,
                    limits: Resources::default(),
                }),
                ..Default::default()
            }],
            recommendation: vec![ContainerRecommendation {
                container_name: "container1".into(),
                recommended: RecommendedResources {
                    target,
                    ..Default::default()
                },
            }],
            ..Default::default()
        }
    }

    fn req(change: ChangeRequirement, kinds: &[ResourceKind]) -> EvictionRequirement {
        EvictionRequirement {
            resources: kinds.iter().copied().map(Some).collect(),
            change,
        }
    }

    use ChangeRequirement::{TargetHigherThanRequests as Higher, TargetLowerThanRequests as Lower};
    use ResourceKind::{Cpu, Memory};

    #[test]
    fn vector_156_unmapped_pod_is_admitted_without_recommendation() {
        let mut p = pod(Resources::new(100, GI), None, Resources::new(400, 4 * GI));
        p.recommendation.clear();
        assert!(admit(None, &p));
    }

    #[test]
    fn vector_157_container_without_requests_is_admitted() {
        let p = pod(Resources::default(), None, Resources::new(400, 4 * GI));
        assert!(admit(Some(&[req(Lower, &[Cpu, Memory])]), &p));
        let cpu_only = pod(
            Resources {
                cpu: Some(500),
                memory: None,
            },
            None,
            Resources::new(400, 4 * GI),
        );
        assert!(admit(Some(&[req(Lower, &[Memory])]), &cpu_only));
    }

    #[test]
    fn vector_158_status_requests_take_precedence() {
        let p = pod(
            Resources::new(500, 10 * GI),
            Some(Resources::new(100, GI)),
            Resources::new(400, 4 * GI),
        );
        assert!(admit(Some(&[req(Higher, &[Cpu, Memory])]), &p));
        let spec_only = pod(
            Resources::new(500, 10 * GI),
            None,
            Resources::new(400, 4 * GI),
        );
        assert!(!admit(Some(&[req(Higher, &[Cpu, Memory])]), &spec_only));
    }

    #[test]
    fn vector_159_empty_requirements_admit_with_recommendation() {
        let p = pod(Resources::new(100, GI), None, Resources::new(400, 4 * GI));
        assert!(admit(Some(&[]), &p));
        let mut none = p.clone();
        none.recommendation.clear();
        assert!(!admit(Some(&[]), &none));
    }

    #[test]
    fn every_requirement_must_hold_and_any_resource_of_one_suffices() {
        // cpu up, memory down.
        let p = pod(Resources::new(100, 4 * GI), None, Resources::new(400, GI));
        assert!(admit(Some(&[req(Higher, &[Cpu])]), &p));
        assert!(!admit(Some(&[req(Higher, &[Memory])]), &p));
        assert!(admit(Some(&[req(Higher, &[Memory, Cpu])]), &p));
        assert!(admit(
            Some(&[req(Higher, &[Cpu]), req(Lower, &[Memory])]),
            &p
        ));
        assert!(!admit(
            Some(&[req(Higher, &[Cpu]), req(Higher, &[Memory])]),
            &p
        ));
        // Equal is neither higher nor lower.
        let same = pod(Resources::new(100, GI), None, Resources::new(100, GI));
        assert!(!admit(Some(&[req(Higher, &[Cpu])]), &same));
        assert!(!admit(Some(&[req(Lower, &[Cpu])]), &same));
    }

    #[test]
    fn other_resources_and_directions_never_hold() {
        let p = pod(Resources::new(100, GI), None, Resources::new(400, 4 * GI));
        let other = EvictionRequirement {
            resources: vec![None],
            change: Higher,
        };
        assert!(!admit(Some(&[other]), &p));
        assert!(!admit(Some(&[req(ChangeRequirement::Other, &[Cpu])]), &p));
    }

    #[test]
    fn init_containers_do_not_admit() {
        let mut p = pod(Resources::new(100, GI), None, Resources::new(400, GI));
        assert!(admit(Some(&[req(Higher, &[Cpu])]), &p));
        if let Some(c) = p.containers.first_mut() {
            c.init = true;
        }
        assert!(!admit(Some(&[req(Higher, &[Cpu])]), &p));
    }
}
