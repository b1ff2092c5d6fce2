//! Builders for the unit tests: pods, containers, conditions and VPAs with short names.

use crate::view::{
    ContainerRecommendation, ContainerResources, ContainerTarget, ContainerView, OOM_KILLED,
    OwnerRef, OwnerReplicas, PodCondition, PodConditionType, PodPhase, PodView,
    RecommendedResources, Termination, UpdateMode, VpaView,
};
use vpa_core::model::Resources;
use vpa_core::time::{Duration, Timestamp};

/// 10^6 bytes.
pub const MB: i64 = 1_000_000;

/// The tests' "now".
pub fn now() -> Timestamp {
    Timestamp::from_unix_seconds(1_700_000_000)
}

/// `now` plus seconds.
pub fn at(secs: i64) -> Timestamp {
    now().add(Duration::from_secs(secs))
}

/// CPU only, in millicores.
pub fn cpu(m: i64) -> Resources {
    Resources {
        cpu: Some(m),
        memory: None,
    }
}

/// CPU millicores and memory bytes.
pub fn res(m: i64, bytes: i64) -> Resources {
    Resources::new(m, bytes)
}

/// A running pod owned by ReplicaSet `rs`, started a day ago, without containers.
pub fn pod(name: &str) -> PodView {
    PodView {
        namespace: "default".into(),
        name: name.into(),
        uid: format!("uid-{name}"),
        owner: Some(owner("rs")),
        phase: PodPhase::Running,
        start_time: Some(at(-24 * 3600)),
        ..Default::default()
    }
}

/// A ReplicaSet owner reference.
pub fn owner(name: &str) -> OwnerRef {
    OwnerRef {
        kind: "ReplicaSet".into(),
        name: name.into(),
    }
}

/// Replica count of a ReplicaSet.
pub fn replicas(name: &str, n: i32) -> OwnerReplicas {
    OwnerReplicas {
        owner: owner(name),
        count: Some(n),
    }
}

/// Adds a container with these spec requests and no limits.
pub fn with_container(mut p: PodView, name: &str, requests: Resources) -> PodView {
    p.containers.push(ContainerView {
        name: name.into(),
        spec: ContainerResources {
            requests,
            limits: Resources::default(),
        },
        ..Default::default()
    });
    p
}

/// Adds a recommendation without bounds.
pub fn with_target(p: PodView, name: &str, target: Resources) -> PodView {
    with_rec(p, name, target, Resources::default(), Resources::default())
}

/// Adds a recommendation.
pub fn with_rec(
    mut p: PodView,
    name: &str,
    target: Resources,
    lower: Resources,
    upper: Resources,
) -> PodView {
    p.recommendation.push(ContainerRecommendation {
        container_name: name.into(),
        recommended: RecommendedResources {
            target,
            lower_bound: lower,
            upper_bound: upper,
        },
    });
    p
}

/// A one-container pod `app` with this request and a target (new resources = target
/// requests, for in-place resizes).
pub fn simple(name: &str, request: Resources, target: Resources) -> PodView {
    let mut p = with_target(with_container(pod(name), "app", request), "app", target);
    if let Some(c) = p.containers.first_mut() {
        c.new_resources = Some(ContainerResources {
            requests: target,
            limits: Resources::default(),
        });
    }
    p
}

/// A True condition.
pub fn condition(kind: PodConditionType, reason: &str, message: &str) -> PodCondition {
    PodCondition {
        kind,
        is_true: true,
        reason: reason.into(),
        message: message.into(),
        last_transition: None,
    }
}

/// Marks the first container OOM-killed after running `ran` seconds.
pub fn oom_after(mut p: PodView, ran: i64) -> PodView {
    if let Some(c) = p.containers.first_mut() {
        c.last_termination = Some(Termination {
            reason: OOM_KILLED.into(),
            started_at: Some(at(-3600)),
            finished_at: Some(at(-3600 + ran)),
        });
    }
    p
}

/// A VPA in this mode with a status recommendation for `app`.
pub fn vpa(mode: UpdateMode) -> VpaView {
    VpaView {
        namespace: "default".into(),
        name: "vpa".into(),
        mode,
        eviction_requirements: Some(Vec::new()),
        recommendation: Some(vec![ContainerTarget {
            container_name: "app".into(),
            target: res(1000, 1000 * MB),
        }]),
        ..Default::default()
    }
}
