#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use serde_json::json;
use vpa_core::api::pod_view::namespace_limits;

fn vpa(value: serde_json::Value) -> VerticalPodAutoscaler {
    serde_json::from_value(value).unwrap()
}

fn web_vpa() -> VerticalPodAutoscaler {
    vpa(json!({
        "apiVersion": "autoscaling.k8s.io/v1", "kind": "VerticalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "ns"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "updatePolicy": {"updateMode": "InPlaceOrRecreate", "minReplicas": 1,
                "evictionRequirements": [{"resources": ["cpu", "gpu"],
                    "changeRequirement": "TargetLowerThanRequests"}]},
            "resourcePolicy": {"containerPolicies": [
                {"containerName": "app", "maxAllowed": {"cpu": "1"}},
                {"containerName": "side", "mode": "Off"}]},
            "startupBoost": {"cpu": {"type": "Factor", "factor": 2, "durationSeconds": 30}}
        },
        "status": {"recommendation": {"containerRecommendations": [{
            "containerName": "app",
            "target": {"cpu": "2", "memory": "300Mi"},
            "lowerBound": {"cpu": "500m", "memory": "200Mi"},
            "upperBound": {"cpu": "4", "memory": "1Gi"}}]}}
    }))
}

fn web_pod() -> core::Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-1", "namespace": "ns", "uid": "u1",
            "annotations": {"vpaObservedContainers": "app, side",
                "vpaCpuStartupBoost/app": "{\"requests\":{\"cpu\":\"100m\"},\"limits\":{}}"},
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Other", "name": "x", "uid": "o0"},
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": "o1",
                 "controller": true}]},
        "spec": {"containers": [
            {"name": "app", "image": "pause",
             "resources": {"requests": {"cpu": "100m", "memory": "100Mi"},
                           "limits": {"cpu": "200m"}},
             "resizePolicy": [{"resourceName": "memory", "restartPolicy": "RestartContainer"}]},
            {"name": "side", "image": "pause"}],
            "initContainers": [{"name": "init", "image": "pause", "restartPolicy": "Always"}]},
        "status": {"phase": "Running", "startTime": "2025-01-01T00:00:00Z",
            "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": "2025-01-01T00:01:00Z"},
                {"type": "PodResizePending", "status": "True", "reason": "Infeasible",
                 "message": "Node didn't have enough capacity"}],
            "containerStatuses": [{"name": "app", "image": "pause", "imageID": "", "ready": true,
                "restartCount": 1,
                "resources": {"requests": {"cpu": "150m", "memory": "100Mi"},
                              "limits": {"cpu": "300m"}},
                "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                    "startedAt": "2025-01-01T00:00:10Z", "finishedAt": "2025-01-01T00:00:20Z"}}}]}
    }))
    .unwrap()
}

#[test]
fn vpa_view_reads_policy_status_and_boost() {
    let v = vpa_view(&web_vpa());
    assert_eq!((v.namespace.as_str(), v.name.as_str()), ("ns", "web"));
    assert_eq!(v.mode, UpdateMode::InPlaceOrRecreate);
    assert_eq!(v.min_replicas, Some(1));
    let reqs = v.eviction_requirements.as_ref().unwrap();
    assert_eq!(reqs[0].resources, vec![Some(ResourceKind::Cpu), None]);
    assert_eq!(reqs[0].change, ChangeRequirement::TargetLowerThanRequests);
    assert_eq!(v.container_policies.len(), 2);
    assert!(!v.container_policies[0].mode_off && v.container_policies[1].mode_off);
    assert_eq!(
        v.startup_boost.and_then(|b| b.duration),
        Some(Duration::from_secs(30))
    );
    let rec = v.recommendation.unwrap();
    assert_eq!(rec[0].container_name, "app");
    assert_eq!(rec[0].target, Resources::new(2000, 300 * 1024 * 1024));
}

#[test]
fn a_vpa_without_update_policy_is_recreate_with_no_requirements() {
    let v = vpa_view(&vpa(json!({
        "apiVersion": "autoscaling.k8s.io/v1", "kind": "VerticalPodAutoscaler",
        "metadata": {"name": "v", "namespace": "ns"},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}}
    })));
    assert_eq!(v.mode, UpdateMode::Recreate);
    assert_eq!(v.eviction_requirements, None);
    assert_eq!(v.recommendation, None);
}

#[test]
fn pod_view_reads_status_conditions_and_annotations() {
    let p = pod_view(&web_pod(), &web_vpa(), Ok(&NamespaceLimits::default()));
    assert_eq!((p.name.as_str(), p.uid.as_str()), ("web-1", "u1"));
    assert_eq!(
        p.owner,
        Some(OwnerRef {
            kind: "ReplicaSet".into(),
            name: "web-abc".into()
        })
    );
    assert_eq!(p.phase, PodPhase::Running);
    assert!(p.start_time.is_some());
    assert_eq!(
        p.observed_containers,
        Some(vec!["app".to_string(), "side".to_string()])
    );
    assert_eq!(p.boosted_containers, vec!["app"]);
    assert_eq!(p.containers.len(), 3);
    let app = &p.containers[0];
    assert_eq!(app.spec.requests, Resources::new(100, 100 * 1024 * 1024));
    assert_eq!(app.spec.limits.cpu, Some(200));
    assert_eq!(app.current().requests.cpu, Some(150));
    assert_eq!(app.resize_policy.memory, RestartPolicy::RestartContainer);
    assert_eq!(app.resize_policy.cpu, RestartPolicy::NotRequired);
    let t = app.last_termination.as_ref().unwrap();
    assert_eq!(t.reason, "OOMKilled");
    assert!(t.finished_at > t.started_at);
    assert_eq!(app.boost_original.map(|b| b.requests.cpu), Some(Some(100)));
    assert!(p.containers[2].init);
    let pending = p.condition(PodConditionType::PodResizePending).unwrap();
    assert!(pending.is_true && pending.reason == "Infeasible");
    assert!(
        p.condition(PodConditionType::Ready)
            .unwrap()
            .last_transition
            .is_some()
    );
}

#[test]
fn the_recommendation_is_capped_per_pod_and_gives_the_resize_values() {
    let p = pod_view(&web_pod(), &web_vpa(), Ok(&NamespaceLimits::default()));
    assert_eq!(p.recommendation_error, None);
    let r = p.recommendation_for("app").unwrap();
    // maxAllowed cpu 1 caps the target and the upper bound.
    assert_eq!(r.target, Resources::new(1000, 300 * 1024 * 1024));
    assert_eq!(r.lower_bound.cpu, Some(500));
    assert_eq!(r.upper_bound.cpu, Some(1000));
    let new = p.containers[0].new_resources.unwrap();
    assert_eq!(new.requests, Resources::new(1000, 300 * 1024 * 1024));
    // The cpu limit keeps the ratio of the current (status) limit to request: 300m/150m.
    assert_eq!(new.limits.cpu, Some(2000));
    assert_eq!(p.containers[1].new_resources, None);
    assert_eq!(p.containers[2].new_resources, None);
}

#[test]
fn a_limit_range_caps_the_recommendation() {
    let lr: core::LimitRange = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "lr", "namespace": "ns"},
        "spec": {"limits": [{"type": "Container", "min": {"memory": "500Mi"}}]}
    }))
    .unwrap();
    let limits = namespace_limits([&lr]).unwrap();
    let p = pod_view(&web_pod(), &web_vpa(), Ok(&limits));
    assert_eq!(
        p.recommendation_for("app").unwrap().target.memory,
        Some(500 * 1024 * 1024)
    );
}

#[test]
fn unreadable_limit_ranges_mark_the_pod() {
    let p = pod_view(&web_pod(), &web_vpa(), Err("bad LimitRange".into()));
    assert_eq!(p.recommendation_error.as_deref(), Some("bad LimitRange"));
    assert!(p.recommendation.is_empty());
}

#[test]
fn a_vpa_without_recommendation_gives_none() {
    let mut v = web_vpa();
    v.status = None;
    let p = pod_view(&web_pod(), &v, Err("not read".into()));
    assert_eq!(p.recommendation_error, None);
    assert!(p.recommendation.is_empty());
}

#[test]
fn pending_pods_and_replica_fields() {
    let mut pod = web_pod();
    pod.status.as_mut().unwrap().phase = Some("Pending".into());
    assert!(pod_view(&pod, &web_vpa(), Ok(&NamespaceLimits::default())).is_pending());
    let rs = json!({"spec": {"replicas": 3}, "status": {"numberReady": 2}});
    assert_eq!(replicas_of_json("ReplicaSet", &rs), Some(3));
    assert_eq!(replicas_of_json("DaemonSet", &rs), Some(2));
    assert_eq!(replicas_of_json("StatefulSet", &json!({"spec": {}})), None);
}
