//! Capping, proportional limits and the recommendation provider; rows are the conformance
//! vectors of the behaviour spec §5. The helpers are shared with `patch`'s tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::pod::{ContainerStatusView, ContainerView};
use serde_json::{Value, json};

pub(crate) fn q(s: &str) -> Quantity {
    quantity::parse(s).unwrap()
}

pub(crate) fn rmap(pairs: &[(&str, &str)]) -> ResourceMap {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), q(v)))
        .collect()
}

pub(crate) fn container(
    name: &str,
    requests: Option<&[(&str, &str)]>,
    limits: Option<&[(&str, &str)]>,
) -> ContainerView {
    ContainerView {
        name: name.into(),
        resources: ResourceRequirements {
            requests: requests.map(rmap),
            limits: limits.map(rmap),
        },
        restart_policy: None,
    }
}

pub(crate) fn pod_of(containers: Vec<ContainerView>) -> PodView {
    PodView {
        name: "pod".into(),
        namespace: "default".into(),
        containers,
        ..Default::default()
    }
}

fn list(pairs: &[(&str, &str)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), Value::String((*v).to_string())))
            .collect(),
    )
}

/// `{"containerName": name, "target": {...}}`.
pub(crate) fn rec_json(name: &str, target: &[(&str, &str)]) -> Value {
    json!({"containerName": name, "target": list(target)})
}

/// A VPA named `name` for a Deployment; `spec` keys are merged into the spec, and `recs`
/// (container recommendations) become `status.recommendation`.
pub(crate) fn vpa(spec: Value, recs: Option<Vec<Value>>) -> VerticalPodAutoscaler {
    let mut full_spec =
        json!({"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "app"}});
    if let (Some(base), Value::Object(extra)) = (full_spec.as_object_mut(), spec) {
        base.extend(extra);
    }
    let mut obj = json!({
        "apiVersion": "autoscaling.k8s.io/v1",
        "kind": "VerticalPodAutoscaler",
        "metadata": {"name": "name", "namespace": "default"},
        "spec": full_spec,
    });
    if let Some(recs) = recs {
        obj["status"] = json!({"recommendation": {"containerRecommendations": recs}});
    }
    serde_json::from_value(obj).unwrap()
}

/// A resource policy with one container policy.
pub(crate) fn one_policy(policy: Value) -> Value {
    json!({"resourcePolicy": {"containerPolicies": [policy]}})
}

fn recommended(
    name: &str,
    target: &[(&str, &str)],
    lower: Option<&[(&str, &str)]>,
    upper: Option<&[(&str, &str)]>,
) -> RecommendedContainer {
    RecommendedContainer {
        container_name: name.into(),
        target: rmap(target),
        lower_bound: lower.map(rmap),
        upper_bound: upper.map(rmap),
        uncapped_target: Some(rmap(target)),
    }
}

fn policy_of(v: &VerticalPodAutoscaler) -> Option<&vpa::PodResourcePolicy> {
    v.spec.resource_policy.as_ref()
}

fn container_lr(json: Value) -> NamespaceLimits {
    NamespaceLimits {
        container: Some(item("Container", json)),
        pod: None,
    }
}

fn item(type_: &str, json: Value) -> LimitRangeItem {
    let map = |k: &str| {
        json.get(k).map(|m| {
            m.as_object()
                .unwrap()
                .iter()
                .map(|(r, v)| (r.clone(), q(v.as_str().unwrap())))
                .collect()
        })
    };
    LimitRangeItem {
        type_: type_.into(),
        max: map("max"),
        min: map("min"),
        default: map("default"),
    }
}

// ---------------------------------------------------------------------------------------
// Capping processor.

#[test]
fn row_083_requests_only_caps_to_container_limit() {
    let pod = pod_of(vec![container(
        "container",
        None,
        Some(&[("cpu", "30"), ("memory", "70000")]),
    )]);
    let v = vpa(
        one_policy(json!({"containerName": "container", "controlledValues": "RequestsOnly"})),
        None,
    );
    let recs = [recommended(
        "container",
        &[("cpu", "20"), ("memory", "80000")],
        None,
        Some(&[("cpu", "100"), ("memory", "90000")]),
    )];
    let out = cap_recommendation(&pod, policy_of(&v), Some(&recs), &NamespaceLimits::NONE)
        .unwrap()
        .unwrap();
    let c = out.container("container").unwrap();
    assert_eq!(c.target, rmap(&[("cpu", "20"), ("memory", "70000")]));
    assert_eq!(
        c.upper_bound,
        Some(rmap(&[("cpu", "30"), ("memory", "70000")]))
    );
    assert_eq!(c.lower_bound, None);
    assert_eq!(
        c.uncapped_target,
        Some(rmap(&[("cpu", "20"), ("memory", "80000")]))
    );
    assert_eq!(
        out.annotations["container"],
        ["memory capped to container limit"]
    );
}

#[test]
fn row_084_requests_and_limits_does_not_cap_to_limit() {
    let pod = pod_of(vec![container(
        "container",
        None,
        Some(&[("cpu", "30"), ("memory", "70000")]),
    )]);
    let recs = [recommended(
        "container",
        &[("cpu", "20"), ("memory", "80000")],
        None,
        Some(&[("cpu", "100"), ("memory", "90000")]),
    )];
    for spec in [
        json!({}),
        one_policy(json!({"containerName": "container", "controlledValues": "RequestsAndLimits"})),
    ] {
        let v = vpa(spec, None);
        let out = cap_recommendation(&pod, policy_of(&v), Some(&recs), &NamespaceLimits::NONE)
            .unwrap()
            .unwrap();
        assert_eq!(out.containers.as_slice(), recs.as_slice());
        assert!(out.annotations.is_empty());
    }
}

#[test]
fn row_085_container_status_limits_win() {
    let mut pod = pod_of(vec![container(
        "container",
        None,
        Some(&[("cpu", "30"), ("memory", "70000")]),
    )]);
    pod.container_statuses.push(ContainerStatusView {
        name: "container".into(),
        resources: Some(ResourceRequirements {
            requests: None,
            limits: Some(rmap(&[("cpu", "2.5"), ("memory", "60000")])),
        }),
    });
    let v = vpa(
        one_policy(json!({"containerName": "container", "controlledValues": "RequestsOnly"})),
        None,
    );
    let recs = [recommended(
        "container",
        &[("cpu", "20"), ("memory", "80000")],
        None,
        Some(&[("cpu", "100"), ("memory", "90000")]),
    )];
    let out = cap_recommendation(&pod, policy_of(&v), Some(&recs), &NamespaceLimits::NONE)
        .unwrap()
        .unwrap();
    let c = &out.containers[0];
    assert_eq!(c.target, rmap(&[("cpu", "2.5"), ("memory", "60000")]));
    assert_eq!(
        c.upper_bound,
        Some(rmap(&[("cpu", "2.5"), ("memory", "60000")]))
    );
}

#[test]
fn row_086_capped_to_min_max_policy() {
    let pod = pod_of(vec![container("ctr-name", None, None)]);
    let v = vpa(
        one_policy(json!({
            "containerName": "ctr-name",
            "minAllowed": {"cpu": "400", "memory": "40000"},
            "maxAllowed": {"cpu": "450", "memory": "45000"},
        })),
        None,
    );
    let recs = [recommended(
        "ctr-name",
        &[("cpu", "300"), ("memory", "50000")],
        Some(&[("cpu", "200"), ("memory", "43000")]),
        Some(&[("cpu", "500"), ("memory", "55000")]),
    )];
    let out = cap_recommendation(&pod, policy_of(&v), Some(&recs), &NamespaceLimits::NONE)
        .unwrap()
        .unwrap();
    let c = &out.containers[0];
    assert_eq!(c.target, rmap(&[("cpu", "400"), ("memory", "45000")]));
    assert_eq!(
        c.lower_bound,
        Some(rmap(&[("cpu", "400"), ("memory", "43000")]))
    );
    assert_eq!(
        c.upper_bound,
        Some(rmap(&[("cpu", "450"), ("memory", "45000")]))
    );
    assert_eq!(
        out.annotations["ctr-name"],
        ["cpu capped to minAllowed", "memory capped to maxAllowed"]
    );
}

#[test]
fn row_087_caps_to_container_limit_range() {
    let pod = pod_of(vec![container(
        "container",
        Some(&[("cpu", "1"), ("memory", "1G")]),
        Some(&[("cpu", "1"), ("memory", "1G")]),
    )]);
    let limits = container_lr(json!({"max": {"cpu": "1"}, "min": {"memory": "500M"}}));
    let recs = [RecommendedContainer {
        container_name: "container".into(),
        target: rmap(&[("cpu", "2"), ("memory", "200M")]),
        ..Default::default()
    }];
    let v = vpa(json!({}), None);
    let out = cap_recommendation(&pod, policy_of(&v), Some(&recs), &limits)
        .unwrap()
        .unwrap();
    let c = &out.containers[0];
    assert_eq!(c.target, rmap(&[("cpu", "1000m"), ("memory", "500000000")]));
    assert_eq!(c.target["cpu"].to_canonical_string(), "1");
    assert_eq!(c.target["memory"].to_canonical_string(), "500M");
    assert_eq!(
        (c.lower_bound.as_ref(), c.upper_bound.as_ref()),
        (None, None)
    );
    assert_eq!(
        out.annotations["container"],
        [
            "cpu capped to fit Max in container LimitRange",
            "memory capped to fit Min in container LimitRange"
        ]
    );
}

#[test]
fn container_limit_range_bounds_scale_with_the_limit_ratio() {
    // Request 1, limit 2: a max limit of 3 allows a request of at most 1.5; a min limit of
    // 1 needs a request of at least 500m, and the min request itself is 800m.
    let pod = pod_of(vec![container(
        "c",
        Some(&[("cpu", "1")]),
        Some(&[("cpu", "2")]),
    )]);
    let limits = container_lr(json!({"max": {"cpu": "3"}, "min": {"cpu": "800m"}}));
    for (target, want, note) in [
        (
            "2",
            "1500m",
            "cpu capped to fit Max in container LimitRange",
        ),
        (
            "100m",
            "800m",
            "cpu capped to fit Min in container LimitRange",
        ),
    ] {
        let recs = [RecommendedContainer {
            container_name: "c".into(),
            target: rmap(&[("cpu", target)]),
            ..Default::default()
        }];
        let out = cap_recommendation(&pod, None, Some(&recs), &limits)
            .unwrap()
            .unwrap();
        assert_eq!(out.containers[0].target["cpu"], q(want));
        assert_eq!(out.annotations["c"], [note]);
    }
}

// ---------------------------------------------------------------------------------------
// Pod LimitRange.

fn two_containers(request_and_limit: &str, resource: &str) -> PodView {
    let rl = [(resource, request_and_limit)];
    pod_of(vec![
        container("container1", Some(&rl), Some(&rl)),
        container("container2", Some(&rl), Some(&rl)),
    ])
}

fn targets(recs: &[RecommendedContainer], resource: &str) -> Vec<String> {
    recs.iter()
        .map(|r| r.target[resource].to_canonical_string())
        .collect()
}

fn target_only(name: &str, resource: &str, value: &str) -> RecommendedContainer {
    RecommendedContainer {
        container_name: name.into(),
        target: rmap(&[(resource, value)]),
        ..Default::default()
    }
}

#[test]
fn row_088_cap_target_cpu_to_pod_max() {
    let pod = two_containers("1", "cpu");
    let lr = item("Pod", json!({"max": {"cpu": "1"}}));
    let mut recs = vec![
        target_only("container1", "cpu", "1"),
        target_only("container2", "cpu", "1"),
    ];
    apply_pod_limit_range(&mut recs, &pod, &lr, CPU, Field::Target);
    assert_eq!(targets(&recs, CPU), ["500m", "500m"]);

    // The same through the whole processor.
    let limits = NamespaceLimits {
        container: None,
        pod: Some(lr),
    };
    let recs = [
        target_only("container1", "cpu", "1"),
        target_only("container2", "cpu", "1"),
    ];
    let out = cap_recommendation(&pod, None, Some(&recs), &limits)
        .unwrap()
        .unwrap();
    assert_eq!(targets(&out.containers, CPU), ["500m", "500m"]);
}

#[test]
fn row_089_cap_memory_to_pod_min() {
    let pod = two_containers("1", "memory");
    let lr = item("Pod", json!({"min": {"memory": "4G"}}));
    let mut recs = vec![
        target_only("container1", "memory", "1G"),
        target_only("container2", "memory", "1G"),
    ];
    apply_pod_limit_range(&mut recs, &pod, &lr, MEMORY, Field::Target);
    assert_eq!(recs[0].target["memory"], q("2000000000"));
    assert_eq!(recs[1].target["memory"], q("2000000000"));
}

#[test]
fn row_090_cap_memory_to_pod_min_with_extra_recommendation() {
    let pod = pod_of(vec![container(
        "container2",
        Some(&[("memory", "1")]),
        Some(&[("memory", "2")]),
    )]);
    let lr = item(
        "Pod",
        json!({"min": {"memory": "4G"}, "max": {"memory": "10G"}}),
    );
    let mut recs = vec![
        target_only("container1", "memory", "1G"),
        target_only("container2", "memory", "1G"),
    ];
    apply_pod_limit_range(&mut recs, &pod, &lr, MEMORY, Field::Target);
    assert_eq!(recs[0].target["memory"], q("1G"));
    assert_eq!(recs[1].target["memory"], q("4000000000"));
}

#[test]
fn row_091_cap_target_cpu_to_pod_min_rounds_up() {
    let pod = two_containers("1m", "cpu");
    let lr = item("Pod", json!({"min": {"cpu": "150m"}}));
    let mut recs = vec![
        target_only("container1", "cpu", "15m"),
        target_only("container2", "cpu", "100m"),
    ];
    apply_pod_limit_range(&mut recs, &pod, &lr, CPU, Field::Target);
    assert_eq!(targets(&recs, CPU), ["20m", "131m"]);
}

#[test]
fn row_092_cap_target_cpu_to_pod_max_rounds_down() {
    let pod = two_containers("1m", "cpu");
    let lr = item("Pod", json!({"max": {"cpu": "90m"}}));
    let mut recs = vec![
        target_only("container1", "cpu", "15m"),
        target_only("container2", "cpu", "100m"),
    ];
    apply_pod_limit_range(&mut recs, &pod, &lr, CPU, Field::Target);
    assert_eq!(targets(&recs, CPU), ["11m", "78m"]);
}

#[test]
fn pod_limit_range_inserts_requests_of_containers_without_recommendation() {
    // container2 has no recommendation: its requests count towards the pod sum and it gets
    // a recommendation of its own, scaled with the others.
    let pod = two_containers("1", "cpu");
    let limits = NamespaceLimits {
        container: None,
        pod: Some(item("Pod", json!({"max": {"cpu": "1"}}))),
    };
    let recs = [target_only("container1", "cpu", "1")];
    let out = cap_recommendation(&pod, None, Some(&recs), &limits)
        .unwrap()
        .unwrap();
    assert_eq!(out.containers.len(), 2);
    assert_eq!(out.containers[1].container_name, "container2");
    assert_eq!(targets(&out.containers, CPU), ["500m", "500m"]);
}

#[test]
fn pod_limit_range_leaves_absent_values_absent() {
    // container2's target has no cpu: nothing is inserted for it, and absent bounds stay
    // absent.
    let pod = two_containers("100m", "cpu");
    let lr = item("Pod", json!({"min": {"cpu": "400m"}}));
    let mut recs = vec![
        target_only("container1", "cpu", "100m"),
        target_only("container2", "memory", "1Gi"),
    ];
    for f in [Field::UpperBound, Field::Target, Field::LowerBound] {
        apply_pod_limit_range(&mut recs, &pod, &lr, CPU, f);
    }
    assert_eq!(recs[0].target["cpu"], q("400m"));
    assert!(!recs[1].target.contains_key("cpu"));
    assert_eq!(recs[0].lower_bound, None);
}

#[test]
fn no_recommendation_and_no_policy_is_none() {
    let pod = pod_of(vec![container("c", None, None)]);
    assert_eq!(
        cap_recommendation(&pod, None, None, &NamespaceLimits::NONE).unwrap(),
        None
    );
    // A policy alone gives an empty recommendation.
    let v = vpa(one_policy(json!({"containerName": "c"})), None);
    let out = cap_recommendation(&pod, policy_of(&v), None, &NamespaceLimits::NONE).unwrap();
    assert_eq!(out, Some(CappedRecommendation::default()));
}

#[test]
fn recommendations_for_unknown_containers_are_dropped() {
    let pod = pod_of(vec![container("a", None, None)]);
    let recs = [
        target_only("gone", "cpu", "1"),
        target_only("a", "cpu", "2"),
    ];
    let out = cap_recommendation(&pod, None, Some(&recs), &NamespaceLimits::NONE)
        .unwrap()
        .unwrap();
    assert_eq!(out.containers.len(), 1);
    assert_eq!(out.containers[0].container_name, "a");
}

// ---------------------------------------------------------------------------------------
// Proportional limits and scaling.

fn limit_of(
    resource: &str,
    limit: Option<&str>,
    request: Option<&str>,
    rec: Option<&str>,
    default: Option<&str>,
) -> (Option<Quantity>, Option<String>) {
    let (l, r, c, d) = (limit.map(q), request.map(q), rec.map(q), default.map(q));
    proportional_limit(resource, l.as_ref(), r.as_ref(), c.as_ref(), d.as_ref())
}

#[test]
fn row_093_to_099_proportional_cpu_limit() {
    assert_eq!(
        limit_of("cpu", Some("2"), Some("1"), Some("10"), None),
        (Some(q("20")), None)
    );
    assert_eq!(
        limit_of("cpu", None, Some("1"), Some("10"), Some("2")),
        (Some(q("20")), None)
    );
    assert_eq!(
        limit_of("cpu", None, Some("1"), Some("10"), None),
        (
            None,
            Some("cpu: limit NOT set since originalLimit is nil or 0".into())
        )
    );
    assert_eq!(
        limit_of("cpu", Some("2"), None, Some("10"), None),
        (Some(q("10")), None)
    );
    assert_eq!(
        limit_of("cpu", Some("2"), Some("1"), Some("0"), None),
        (
            None,
            Some("cpu: limit NOT set since recommendedRequest is nil or 0".into())
        )
    );
    assert_eq!(
        limit_of("cpu", Some("1"), Some("1"), Some("10"), None),
        (Some(q("10")), None)
    );
    let (limit, note) = limit_of("cpu", Some("2"), Some("1.5"), Some("1"), None);
    assert_eq!(limit.unwrap().to_canonical_string(), "1333m");
    assert_eq!(note, None);
}

#[test]
fn row_100_proportional_cpu_limit_over_int64() {
    let (limit, note) = limit_of("cpu", Some("10G"), Some("1m"), Some("10G"), None);
    assert_eq!(limit.unwrap().milli_value(), i64::MAX);
    assert_eq!(
        note.as_deref(),
        Some("cpu: failed to keep limit to request ratio; capping limit to int64")
    );
}

#[test]
fn row_101_proportional_memory_limit() {
    assert_eq!(
        limit_of("memory", Some("200"), Some("150"), Some("100"), None),
        (Some(q("133")), None)
    );
}

#[test]
fn row_102_scaling_by_zero_returns_the_input() {
    let scaled = scale_proportionally(CPU, &q("5"), 0, 1000, false);
    assert_eq!(scaled, Scaled::DivisionByZero(q("5")));
    let scaled = scale_proportionally(MEMORY, &q("5Gi"), 0, 1000, true);
    assert_eq!(scaled, Scaled::DivisionByZero(q("5Gi")));
}

#[test]
fn scaled_values_keep_the_format_of_the_scaled_quantity() {
    let (limit, _) = limit_of("memory", Some("200Mi"), Some("100Mi"), Some("300Mi"), None);
    assert_eq!(limit.unwrap().to_canonical_string(), "600Mi");
    let (limit, _) = limit_of("memory", Some("2G"), Some("1G"), Some("1500M"), None);
    assert_eq!(limit.unwrap().to_canonical_string(), "3G");
}

#[test]
fn proportional_limits_annotate_both_resources_only_when_one_is_set() {
    let (limits, notes) = proportional_limits(
        Some(&rmap(&[("cpu", "2")])),
        Some(&rmap(&[("cpu", "1")])),
        &rmap(&[("cpu", "3"), ("memory", "1Gi")]),
        None,
    );
    assert_eq!(limits, Some(rmap(&[("cpu", "6")])));
    assert_eq!(
        notes,
        ["memory: limit NOT set since originalLimit is nil or 0"]
    );
    let (limits, notes) = proportional_limits(None, None, &rmap(&[("cpu", "3")]), None);
    assert_eq!((limits, notes), (None, vec![]));
}

#[test]
fn boundary_request_follows_the_limit_ratio() {
    let b = |req: Option<&str>, lim: Option<&str>, bound: &str, default: Option<&str>| {
        let (r, l, bd, d) = (req.map(q), lim.map(q), q(bound), default.map(q));
        boundary_request("cpu", r.as_ref(), l.as_ref(), Some(&bd), d.as_ref())
    };
    assert_eq!(b(Some("1"), Some("2"), "3", None), q("1500m"));
    assert_eq!(b(Some("1"), None, "3", Some("4")), q("750m"));
    assert_eq!(b(Some("1"), None, "3", None), Quantity::ZERO);
    assert_eq!(b(None, Some("2"), "3", None), q("3"));
}

// ---------------------------------------------------------------------------------------
// Provider.

const NAME: &str = "container1";

fn provider_vpa(
    target: (&str, &str),
    min: (&str, &str),
    max: (&str, &str),
    controlled: Option<&str>,
) -> VerticalPodAutoscaler {
    let mut policy = json!({
        "containerName": NAME,
        "minAllowed": {"cpu": min.0, "memory": min.1},
        "maxAllowed": {"cpu": max.0, "memory": max.1},
    });
    if let Some(c) = controlled {
        policy["controlledValues"] = json!(c);
    }
    vpa(
        one_policy(policy),
        Some(vec![rec_json(
            NAME,
            &[("cpu", target.0), ("memory", target.1), ("", "666")],
        )]),
    )
}

fn default_vpa() -> VerticalPodAutoscaler {
    provider_vpa(("2", "200Mi"), ("1", "100Mi"), ("3", "1Gi"), None)
}

fn one_pod(requests: Option<&[(&str, &str)]>, limits: Option<&[(&str, &str)]>) -> PodView {
    pod_of(vec![container(NAME, requests, limits)])
}

fn provide(pod: &PodView, v: &VerticalPodAutoscaler, limits: &NamespaceLimits) -> PodResources {
    let out = container_resources(pod, v, limits).unwrap();
    assert_eq!(out.containers.len(), pod.containers.len());
    for c in &out.containers {
        assert!(!c.requests.contains_key("") && !c.limits.contains_key(""));
    }
    out
}

#[test]
fn row_103_pod_without_resources_gets_the_target() {
    let out = provide(&one_pod(None, None), &default_vpa(), &NamespaceLimits::NONE);
    assert_eq!(
        out.containers[0].requests,
        rmap(&[("cpu", "2"), ("memory", "200Mi")])
    );
    assert!(out.containers[0].limits.is_empty());
    assert!(out.annotations.is_empty());
}

#[test]
fn row_104_target_below_min() {
    let v = provider_vpa(("3", "150Mi"), ("4", "300Mi"), ("5", "1Gi"), None);
    let out = provide(&one_pod(None, None), &v, &NamespaceLimits::NONE);
    assert_eq!(
        out.containers[0].requests,
        rmap(&[("cpu", "4"), ("memory", "300Mi")])
    );
    assert_eq!(
        out.annotations[NAME],
        ["cpu capped to minAllowed", "memory capped to minAllowed"]
    );
}

#[test]
fn row_105_target_above_max() {
    let v = provider_vpa(("7", "2Gi"), ("4", "300Mi"), ("5", "1Gi"), None);
    let out = provide(&one_pod(None, None), &v, &NamespaceLimits::NONE);
    assert_eq!(
        out.containers[0].requests,
        rmap(&[("cpu", "5"), ("memory", "1Gi")])
    );
    assert_eq!(
        out.annotations[NAME],
        ["cpu capped to maxAllowed", "memory capped to maxAllowed"]
    );
}

#[test]
fn row_106_guaranteed_pod_stays_guaranteed() {
    let rl: &[(&str, &str)] = &[("cpu", "2"), ("memory", "200Mi")];
    let out = provide(
        &one_pod(Some(rl), Some(rl)),
        &default_vpa(),
        &NamespaceLimits::NONE,
    );
    assert_eq!(out.containers[0].requests, rmap(rl));
    assert_eq!(out.containers[0].limits, rmap(rl));
    assert!(out.annotations.is_empty());
}

#[test]
fn row_107_limits_without_requests() {
    let rl: &[(&str, &str)] = &[("cpu", "2"), ("memory", "200Mi")];
    let out = provide(
        &one_pod(None, Some(rl)),
        &default_vpa(),
        &NamespaceLimits::NONE,
    );
    assert_eq!(out.containers[0].requests, rmap(rl));
    assert_eq!(out.containers[0].limits, rmap(rl));
}

#[test]
fn row_108_proportional_limit() {
    let pod = one_pod(
        Some(&[("cpu", "1"), ("memory", "100Mi")]),
        Some(&[("cpu", "2"), ("memory", "200Mi")]),
    );
    for controlled in [None, Some("RequestsAndLimits")] {
        let v = provider_vpa(("2", "200Mi"), ("1", "100Mi"), ("3", "1Gi"), controlled);
        let out = provide(&pod, &v, &NamespaceLimits::NONE);
        assert_eq!(
            out.containers[0].requests,
            rmap(&[("cpu", "2"), ("memory", "200Mi")])
        );
        assert_eq!(
            out.containers[0].limits,
            rmap(&[("cpu", "4"), ("memory", "400Mi")])
        );
    }
    // RequestsOnly leaves limits alone.
    let v = provider_vpa(
        ("2", "200Mi"),
        ("1", "100Mi"),
        ("3", "1Gi"),
        Some("RequestsOnly"),
    );
    let out = provide(&pod, &v, &NamespaceLimits::NONE);
    assert!(out.containers[0].limits.is_empty());
}

#[test]
fn row_109_requests_only_requests_capped_at_limit() {
    let pod = one_pod(
        Some(&[("cpu", "1"), ("memory", "100Mi")]),
        Some(&[("cpu", "2"), ("memory", "200Mi")]),
    );
    let v = provider_vpa(
        ("3", "500Mi"),
        ("1", "100Mi"),
        ("5", "1Gi"),
        Some("RequestsOnly"),
    );
    let out = provide(&pod, &v, &NamespaceLimits::NONE);
    assert_eq!(
        out.containers[0].requests,
        rmap(&[("cpu", "2"), ("memory", "200Mi")])
    );
    assert!(out.containers[0].limits.is_empty());
    assert_eq!(
        out.annotations[NAME],
        [
            "cpu capped to container limit",
            "memory capped to container limit"
        ]
    );
}

#[test]
fn row_110_limit_over_int64() {
    let pod = one_pod(
        Some(&[("cpu", "1"), ("memory", "100Mi")]),
        Some(&[("cpu", "10"), ("memory", "1000Mi")]),
    );
    let v = provider_vpa(("1Ei", "1Ei"), ("1", "100Mi"), ("1Ei", "1Ei"), None);
    let out = provide(&pod, &v, &NamespaceLimits::NONE);
    let c = &out.containers[0];
    assert_eq!(c.requests, rmap(&[("cpu", "1Ei"), ("memory", "1Ei")]));
    assert_eq!(c.limits["cpu"].milli_value(), i64::MAX);
    assert_eq!(c.limits["memory"].value(), i64::MAX);
    assert_eq!(
        out.annotations[NAME],
        [
            "cpu: failed to keep limit to request ratio; capping limit to int64",
            "memory: failed to keep limit to request ratio; capping limit to int64"
        ]
    );
}

#[test]
fn row_111_proportional_limit_from_limit_range_default() {
    let pod = one_pod(Some(&[("cpu", "2"), ("memory", "100Mi")]), None);
    let limits = container_lr(json!({"default": {"cpu": "2", "memory": "100Mi"}}));
    let out = provide(&pod, &default_vpa(), &limits);
    assert_eq!(
        out.containers[0].requests,
        rmap(&[("cpu", "2"), ("memory", "200Mi")])
    );
    assert_eq!(
        out.containers[0].limits,
        rmap(&[("cpu", "2"), ("memory", "200Mi")])
    );
    // Without the default the pod gets no limits and no annotation.
    let out = provide(&pod, &default_vpa(), &NamespaceLimits::NONE);
    assert!(out.containers[0].limits.is_empty());
    assert!(out.annotations.is_empty());
}

#[test]
fn empty_or_missing_recommendation_gives_nothing() {
    let pod = one_pod(Some(&[("cpu", "2"), ("memory", "100Mi")]), None);
    let mut v = default_vpa();
    v.status
        .as_mut()
        .unwrap()
        .recommendation
        .as_mut()
        .unwrap()
        .container_recommendations = None;
    let out = provide(&pod, &v, &NamespaceLimits::NONE);
    assert_eq!(out.containers, [ContainerResources::default()]);
    v.status = None;
    let out = provide(&pod, &v, &NamespaceLimits::NONE);
    assert_eq!(out.containers, [ContainerResources::default()]);
}

#[test]
fn mode_off_ignores_the_policy_for_controlled_values() {
    let pod = one_pod(
        Some(&[("cpu", "1"), ("memory", "100Mi")]),
        Some(&[("cpu", "2"), ("memory", "200Mi")]),
    );
    let mut v = provider_vpa(
        ("2", "200Mi"),
        ("1", "100Mi"),
        ("3", "1Gi"),
        Some("RequestsOnly"),
    );
    v.spec.update_policy = Some(vpa::PodUpdatePolicy {
        update_mode: Some(UpdateMode::Off),
        ..Default::default()
    });
    let out = provide(&pod, &v, &NamespaceLimits::NONE);
    assert_eq!(
        out.containers[0].limits,
        rmap(&[("cpu", "4"), ("memory", "400Mi")])
    );
}

#[test]
fn bad_quantity_in_the_vpa_is_an_error() {
    let v = vpa(json!({}), Some(vec![rec_json(NAME, &[("cpu", "lots")])]));
    let err = container_resources(&one_pod(None, None), &v, &NamespaceLimits::NONE).unwrap_err();
    let ResourcesError::Quantity { field, .. } = err;
    assert_eq!(
        field,
        "status.recommendation.containerRecommendations[0].target[cpu]"
    );
}
