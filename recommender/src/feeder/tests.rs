#![allow(clippy::unwrap_used)]
use super::*;
use serde_json::json;

fn pod(v: serde_json::Value) -> Pod {
    serde_json::from_value(v).unwrap()
}

#[test]
fn parse_vpa_valid_and_malformed() {
    let v = parse_vpa(&json!({
        "apiVersion": "autoscaling.k8s.io/v1", "kind": "VerticalPodAutoscaler",
        "metadata": {"name": "v", "namespace": "ns", "generation": 3, "annotations": {"a": "b"}},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"},
                 "resourcePolicy": {"containerPolicies": [{"containerName": "*", "maxAllowed": {"cpu": "2"}}]}},
        "status": {"conditions": [{"type": "RecommendationProvided", "status": "True"}]}
    }))
    .unwrap();
    assert_eq!(v.id, ObjectId::new("ns", "v"));
    assert_eq!(v.generation, Some(3));
    assert_eq!(v.annotations["a"], "b");
    assert!(v.config_error.is_none());
    assert_eq!(
        v.policy.unwrap().container_policies[0].max_allowed.cpu,
        Some(2000)
    );
    assert_eq!(v.status.unwrap().conditions.unwrap().len(), 1);

    let bad = parse_vpa(&json!({
        "metadata": {"name": "v", "namespace": "ns"},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"},
                 "updatePolicy": {"updateMode": "Sometimes"}}
    }))
    .unwrap();
    let msg = bad.config_error.unwrap();
    assert!(msg.starts_with("Invalid spec: "), "{msg}");
    assert!(msg.contains("Sometimes"), "{msg}");

    let bad_qty = parse_vpa(&json!({
        "metadata": {"name": "v", "namespace": "ns"},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"},
                 "resourcePolicy": {"containerPolicies": [{"containerName": "c", "minAllowed": {"memory": "lots"}}]}}
    }))
    .unwrap();
    assert!(
        bad_qty
            .config_error
            .unwrap()
            .contains("containerPolicies[0].minAllowed.memory")
    );
    assert!(parse_vpa(&json!({"metadata": {}})).is_none());
    assert!(
        parse_vpa(&json!({"metadata": {"name": "x"}}))
            .unwrap()
            .config_error
            .is_some()
    );
}

#[test]
fn recommender_and_namespace_selection() {
    assert!(selects_recommender("default", None));
    assert!(selects_recommender("default", Some("default")));
    assert!(!selects_recommender("default", Some("other")));
    assert!(selects_recommender("other", Some("other")));
    assert!(!selects_recommender("other", None));
    assert_eq!(
        raw_recommender_name(&json!({"spec": {"recommenders": [{"name": "x"}]}})).as_deref(),
        Some("x")
    );
    let f = NamespaceFilter {
        only: None,
        ignored: ["kube-system".to_string()].into(),
    };
    assert!(f.allows("a") && !f.allows("kube-system"));
    let f = NamespaceFilter {
        only: Some("a".into()),
        ignored: Default::default(),
    };
    assert!(f.allows("a") && !f.allows("b"));
}

#[test]
fn pod_input_uses_status_requests_first() {
    let p = pod(json!({
        "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "a"}},
        "spec": {"containers": [
            {"name": "c1", "resources": {"requests": {"cpu": "100m", "memory": "1Gi"}}},
            {"name": "c2"}],
          "initContainers": [{"name": "init"}]},
        "status": {"phase": "Running", "containerStatuses": [
            {"name": "c1", "ready": true, "restartCount": 0, "image": "i", "imageID": "",
             "resources": {"requests": {"cpu": "200m", "memory": "1Gi"}}}]}
    }));
    let input = pod_input(&p).unwrap();
    assert_eq!(input.id, ObjectId::new("ns", "p"));
    assert_eq!(input.phase, PodPhase::Running);
    assert_eq!(
        input.containers[0],
        ("c1".to_string(), Resources::new(200, 1 << 30))
    );
    assert_eq!(
        input.containers[1],
        ("c2".to_string(), Resources::default())
    );
    assert_eq!(input.labels["app"], "a");
    assert_eq!(init_container_names(&p), ["init".to_string()].into());
}

#[test]
fn usage_from_pod_metrics() {
    let items: Vec<PodMetrics> = serde_json::from_value(json!([
        {"metadata": {"name": "p", "namespace": "ns"}, "timestamp": "2026-12-02T10:00:00Z", "window": "30s",
         "containers": [{"name": "c", "usage": {"cpu": "250m", "memory": "300Mi"}},
                        {"name": "d", "usage": {"cpu": "1.5", "memory": "bogus"}}]},
        {"metadata": {"name": "q", "namespace": "ns"}, "window": "30s", "containers": []}
    ]))
    .unwrap();
    let (usage, problems) = usage_from_metrics(&items);
    assert_eq!(usage.len(), 2);
    assert_eq!(usage[0].cpu_millis, Some(250));
    assert_eq!(usage[0].memory_bytes, Some(300 << 20));
    assert_eq!(usage[0].timestamp.unix_seconds(), 1_796_205_600);
    assert_eq!(usage[1].cpu_millis, Some(1500));
    assert_eq!(usage[1].memory_bytes, None);
    assert_eq!(problems.len(), 2);
    assert!(problems[0].message.contains("bogus"));
    assert!(problems[1].message.contains("no timestamp"));
}

fn with_status(restarts: i32, state: serde_json::Value, last: serde_json::Value, mem: &str) -> Pod {
    pod(json!({
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"containers": [{"name": "c", "resources": {"requests": {"memory": mem}}}]},
        "status": {"containerStatuses": [{"name": "c", "ready": true, "restartCount": restarts,
            "image": "i", "imageID": "", "state": state, "lastState": last}]}
    }))
}

#[test]
fn oom_from_pod_updates() {
    let running = json!({"running": {"startedAt": "2026-12-02T09:00:00Z"}});
    let oom = json!({"terminated": {"exitCode": 137, "reason": "OOMKilled", "finishedAt": "2026-12-02T10:00:00Z"}});
    let old = with_status(0, running.clone(), json!({}), "100Mi");
    // Newly terminated by OOM: request of the new pod.
    let new = with_status(0, oom.clone(), json!({}), "200Mi");
    let o = ooms_from_pod_update(&old, &new);
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].memory, 200 << 20);
    assert_eq!(o[0].timestamp.unix_seconds(), 1_796_205_600);
    // Already terminated, no restart: nothing new.
    assert!(ooms_from_pod_update(&new, &new).is_empty());
    // Restarted after an OOM: request of the old pod, time of the last termination.
    let restarted = with_status(1, running.clone(), oom.clone(), "300Mi");
    let o = ooms_from_pod_update(&old, &restarted);
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].memory, 100 << 20);
    // Restart for another reason: nothing.
    let other = with_status(
        1,
        running,
        json!({"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2026-12-02T10:00:00Z"}}),
        "300Mi",
    );
    assert!(ooms_from_pod_update(&old, &other).is_empty());
}

#[test]
fn oom_from_eviction_events() {
    let ev: Event = serde_json::from_value(json!({
        "metadata": {"name": "e", "namespace": "ns", "creationTimestamp": "2026-12-02T10:00:00Z",
            "annotations": {"offending_containers": "a,b", "offending_containers_usage": "1Gi,2",
                            "starved_resource": "memory,cpu"}},
        "involvedObject": {"kind": "Pod", "namespace": "ns", "name": "p"},
        "reason": "Evicted"
    }))
    .unwrap();
    let o = ooms_from_eviction_event(&ev);
    assert_eq!(
        o,
        vec![OomEvent {
            pod: ObjectId::new("ns", "p"),
            container: "a".into(),
            timestamp: vpa_core::time::Timestamp::from_unix_seconds(1_796_205_600),
            memory: 1 << 30,
        }]
    );
    let mut mismatched = ev.clone();
    mismatched
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert("starved_resource".into(), "memory".into());
    assert!(ooms_from_eviction_event(&mismatched).is_empty());
}

fn hpa(metrics: serde_json::Value) -> HorizontalPodAutoscaler {
    serde_json::from_value(json!({
        "metadata": {"name": "h", "namespace": "ns"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"},
                 "maxReplicas": 5, "metrics": metrics}
    }))
    .unwrap()
}

#[test]
fn hpa_conflicts() {
    let cpu = hpa(
        json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}]),
    );
    let all = |_: &str| true;
    let m = hpa_conflict("ns", "apps/v1", "Deployment", "d", &[&cpu], all).unwrap();
    assert!(
        m.starts_with("HorizontalPodAutoscaler h scales Deployment/d on cpu"),
        "{m}"
    );
    assert!(hpa_conflict("ns", "apps/v1", "Deployment", "other", &[&cpu], all).is_none());
    assert!(hpa_conflict("other", "apps/v1", "Deployment", "d", &[&cpu], all).is_none());
    // The VPA controls only memory: no conflict.
    assert!(
        hpa_conflict("ns", "apps/v1", "Deployment", "d", &[&cpu], |r| r
            == "memory")
        .is_none()
    );
    // No metrics: CPU by default.
    let none = hpa(serde_json::Value::Null);
    assert!(
        hpa_conflict("ns", "apps/v1", "Deployment", "d", &[&none], all)
            .unwrap()
            .contains("on cpu")
    );
    // External metrics only: no conflict.
    let ext = hpa(
        json!([{"type": "External", "external": {"metric": {"name": "q"}, "target": {"type": "Value", "value": "1"}}}]),
    );
    assert!(hpa_conflict("ns", "apps/v1", "Deployment", "d", &[&ext], all).is_none());
    let both = hpa(json!([
        {"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 60}}},
        {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "c", "target": {"type": "Utilization", "averageUtilization": 60}}}]));
    assert!(
        hpa_conflict("ns", "apps/v1", "Deployment", "d", &[&both], all)
            .unwrap()
            .contains("on cpu and memory")
    );
}
