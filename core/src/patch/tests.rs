//! Pod patches: the conformance vectors of the behaviour spec §5 (rows 113–131) on the
//! resource-updates calculator, whole-patch examples through [`pod_patch`], and property
//! tests that apply generated patches to the pod's JSON.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::limitrange::LimitRangeItem;
use crate::pod_resources::tests::{container, one_policy, pod_of, q, rec_json, rmap, vpa};
use crate::pod_resources::{ContainerAnnotations, PodResources};
use proptest::prelude::*;
use serde_json::json;

fn ops_json(ops: &[PatchOperation]) -> Value {
    serde_json::to_value(ops).unwrap()
}

fn add(path: &str, value: Value) -> Value {
    json!({"op": "add", "path": path, "value": value})
}

fn add_resources(i: usize) -> Value {
    add(&format!("/spec/containers/{i}/resources"), json!({}))
}

fn add_requests(i: usize) -> Value {
    add(
        &format!("/spec/containers/{i}/resources/requests"),
        json!({}),
    )
}

fn add_limits(i: usize) -> Value {
    add(&format!("/spec/containers/{i}/resources/limits"), json!({}))
}

fn request(i: usize, resource: &str, value: &str) -> Value {
    add(
        &format!("/spec/containers/{i}/resources/requests/{resource}"),
        json!(value),
    )
}

fn limit(i: usize, resource: &str, value: &str) -> Value {
    add(
        &format!("/spec/containers/{i}/resources/limits/{resource}"),
        json!(value),
    )
}

fn updates(text: &str) -> Value {
    add(
        "/metadata/annotations/vpaUpdates",
        json!(format!("Pod resources updated by name: {text}")),
    )
}

fn boost_annotation(container: &str, value: &str) -> Value {
    add(
        &format!("/metadata/annotations/vpaCpuStartupBoost~1{container}"),
        json!(value),
    )
}

/// Requests and limits of one container, as name/value pairs.
type Pairs<'a> = &'a [(&'a str, &'a str)];

fn computed(containers: Vec<(Pairs<'_>, Pairs<'_>)>) -> PodResources {
    PodResources {
        containers: containers
            .into_iter()
            .map(|(r, l)| ContainerResources {
                requests: rmap(r),
                limits: rmap(l),
            })
            .collect(),
        annotations: ContainerAnnotations::new(),
    }
}

const BOOST_ON: PatchConfig = PatchConfig {
    cpu_startup_boost: true,
    max_allowed_cpu_boost: None,
};

fn calc(
    pod: &PodView,
    v: &VerticalPodAutoscaler,
    c: PodResources,
    config: &PatchConfig,
) -> Result<Value, PatchError> {
    resource_updates(pod, v, c, config).map(|p| ops_json(&p.operations))
}

fn plain() -> VerticalPodAutoscaler {
    vpa(json!({}), None)
}

// ---------------------------------------------------------------------------------------
// Resource-updates calculator.

#[test]
fn row_113_new_cpu_recommendation() {
    let pod = pod_of(vec![container("", None, None)]);
    let got = calc(
        &pod,
        &plain(),
        computed(vec![(&[("cpu", "1")], &[])]),
        &PatchConfig::default(),
    );
    assert_eq!(
        got.unwrap(),
        json!([
            add_resources(0),
            add_requests(0),
            request(0, "cpu", "1"),
            updates("container 0: cpu request")
        ])
    );
}

#[test]
fn row_114_replacement_cpu_recommendation() {
    let pod = pod_of(vec![container("", Some(&[("cpu", "0")]), None)]);
    let got = calc(
        &pod,
        &plain(),
        computed(vec![(&[("cpu", "1")], &[])]),
        &PatchConfig::default(),
    );
    assert_eq!(
        got.unwrap(),
        json!([request(0, "cpu", "1"), updates("container 0: cpu request")])
    );
}

#[test]
fn row_115_two_containers() {
    let pod = pod_of(vec![
        container("container-1", Some(&[("cpu", "0")]), None),
        container("", None, None),
    ]);
    let got = calc(
        &pod,
        &plain(),
        computed(vec![(&[("cpu", "1")], &[]), (&[("cpu", "2")], &[])]),
        &PatchConfig::default(),
    );
    assert_eq!(
        got.unwrap(),
        json!([
            request(0, "cpu", "1"),
            add_resources(1),
            add_requests(1),
            request(1, "cpu", "2"),
            updates("container 0: cpu request; container 1: cpu request")
        ])
    );
}

#[test]
fn row_116_new_and_replacement_cpu_limit() {
    let pod = pod_of(vec![container("", None, None)]);
    let got = calc(
        &pod,
        &plain(),
        computed(vec![(&[], &[("cpu", "1")])]),
        &PatchConfig::default(),
    );
    assert_eq!(
        got.unwrap(),
        json!([
            add_resources(0),
            add_limits(0),
            limit(0, "cpu", "1"),
            updates("container 0: cpu limit")
        ])
    );
    let pod = pod_of(vec![container("", None, Some(&[("cpu", "0")]))]);
    let got = calc(
        &pod,
        &plain(),
        computed(vec![(&[], &[("cpu", "1")])]),
        &PatchConfig::default(),
    );
    assert_eq!(
        got.unwrap(),
        json!([limit(0, "cpu", "1"), updates("container 0: cpu limit")])
    );
}

#[test]
fn row_117_no_recommendation_no_patches() {
    for resources in [None, Some(&[("cpu", "0")][..])] {
        let pod = pod_of(vec![container("", None, resources)]);
        let got = calc(
            &pod,
            &plain(),
            computed(vec![(&[], &[])]),
            &PatchConfig::default(),
        );
        assert_eq!(got.unwrap(), json!([]));
    }
    let got = calc(
        &pod_of(vec![]),
        &plain(),
        PodResources::default(),
        &PatchConfig::default(),
    );
    assert_eq!(got.unwrap(), json!([]));
}

#[test]
fn two_replacement_resources_in_name_order() {
    let pod = pod_of(vec![container("", Some(&[("cpu", "0")]), None)]);
    let got = calc(
        &pod,
        &plain(),
        computed(vec![(&[("unobtanium", "2"), ("cpu", "1")], &[])]),
        &PatchConfig::default(),
    );
    assert_eq!(
        got.unwrap(),
        json!([
            request(0, "cpu", "1"),
            request(0, "unobtanium", "2"),
            updates("container 0: cpu request, unobtanium request")
        ])
    );
}

#[test]
fn capping_annotations_come_before_the_changed_values() {
    let pod = pod_of(vec![container("app", Some(&[("cpu", "1")]), None)]);
    let mut c = computed(vec![(&[("cpu", "2")], &[("cpu", "4")])]);
    c.annotations
        .insert("app".into(), vec!["cpu capped to maxAllowed".into()]);
    let got = calc(&pod, &plain(), c, &PatchConfig::default()).unwrap();
    assert_eq!(
        got.as_array().unwrap().last().unwrap(),
        &updates("container 0: cpu capped to maxAllowed, cpu request, cpu limit")
    );
}

// ---------------------------------------------------------------------------------------
// CPU startup boost.

fn boost_vpa(boost: Value, policy: Option<Value>) -> VerticalPodAutoscaler {
    let mut spec = json!({"startupBoost": {"cpu": boost}});
    if let Some(p) = policy {
        spec["resourcePolicy"] = json!({"containerPolicies": [p]});
    }
    vpa(spec, None)
}

fn factor(f: i32) -> Value {
    json!({"type": "Factor", "factor": f, "durationSeconds": 10})
}

fn boost_quantity(q: &str) -> Value {
    json!({"type": "Quantity", "quantity": q, "durationSeconds": 10})
}

fn one_millicore_pod() -> PodView {
    pod_of(vec![container(
        "container1",
        Some(&[("cpu", "1m")]),
        Some(&[("cpu", "1m")]),
    )])
}

const ONE_MILLI_ORIGINAL: &str = r#"{"requests":{"cpu":"1m"},"limits":{"cpu":"1m"}}"#;

#[test]
fn row_118_boost_factor() {
    for duration in [10, 0] {
        let mut boost = factor(2);
        boost["durationSeconds"] = json!(duration);
        let got = calc(
            &one_millicore_pod(),
            &boost_vpa(boost, None),
            computed(vec![(&[("cpu", "100m")], &[("cpu", "100m")])]),
            &BOOST_ON,
        );
        assert_eq!(
            got.unwrap(),
            json!([
                boost_annotation("container1", ONE_MILLI_ORIGINAL),
                request(0, "cpu", "200m"),
                limit(0, "cpu", "200m"),
                updates("container 0: cpu request, cpu limit")
            ])
        );
    }
}

#[test]
fn row_119_boost_quantity() {
    let got = calc(
        &one_millicore_pod(),
        &boost_vpa(boost_quantity("500m"), None),
        computed(vec![(&[("cpu", "100m")], &[("cpu", "100m")])]),
        &BOOST_ON,
    );
    assert_eq!(
        got.unwrap(),
        json!([
            boost_annotation("container1", ONE_MILLI_ORIGINAL),
            request(0, "cpu", "600m"),
            limit(0, "cpu", "600m"),
            updates("container 0: cpu request, cpu limit")
        ])
    );
}

#[test]
fn row_120_boost_quantity_added_to_the_recommendation() {
    let pod = pod_of(vec![container(
        "container1",
        Some(&[("cpu", "400m")]),
        Some(&[("cpu", "400m")]),
    )]);
    let got = calc(
        &pod,
        &boost_vpa(boost_quantity("200m"), None),
        computed(vec![(&[("cpu", "500m")], &[("cpu", "500m")])]),
        &BOOST_ON,
    );
    assert_eq!(
        got.unwrap(),
        json!([
            boost_annotation(
                "container1",
                r#"{"requests":{"cpu":"400m"},"limits":{"cpu":"400m"}}"#
            ),
            request(0, "cpu", "700m"),
            limit(0, "cpu", "700m"),
            updates("container 0: cpu request, cpu limit")
        ])
    );
}

#[test]
fn row_121_boost_capped_to_max_allowed() {
    let config = PatchConfig {
        cpu_startup_boost: true,
        max_allowed_cpu_boost: Some(q("40m")),
    };
    let got = calc(
        &one_millicore_pod(),
        &boost_vpa(factor(3), None),
        computed(vec![(&[("cpu", "20m")], &[("cpu", "20m")])]),
        &config,
    );
    assert_eq!(
        got.unwrap(),
        json!([
            boost_annotation("container1", ONE_MILLI_ORIGINAL),
            request(0, "cpu", "40m"),
            limit(0, "cpu", "40m"),
            updates("container 0: cpu request, cpu limit")
        ])
    );
}

#[test]
fn row_122_boost_factor_below_one_is_an_error() {
    let pod = pod_of(vec![container("container1", Some(&[("cpu", "1m")]), None)]);
    let err = calc(
        &pod,
        &boost_vpa(factor(0), None),
        computed(vec![(&[("cpu", "100m")], &[])]),
        &BOOST_ON,
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "boost factor must be >= 1");
    // A missing factor or quantity is an error too (the CRD's rules forbid both).
    let err = calc(
        &pod,
        &boost_vpa(json!({"type": "Factor"}), None),
        computed(vec![(&[], &[])]),
        &BOOST_ON,
    )
    .unwrap_err();
    assert_eq!(err, PatchError::BoostFactorMissing);
    let err = calc(
        &pod,
        &boost_vpa(json!({"type": "Quantity"}), None),
        computed(vec![(&[], &[])]),
        &BOOST_ON,
    )
    .unwrap_err();
    assert_eq!(err, PatchError::BoostQuantityMissing);
}

#[test]
fn row_123_unknown_boost_type_does_not_decode() {
    // Upstream answers "unsupported startup boost type: Invalid"; here the type is an enum
    // and such an object is not a VerticalPodAutoscaler at all.
    let obj = json!({
        "apiVersion": "autoscaling.k8s.io/v1", "kind": "VerticalPodAutoscaler",
        "metadata": {"name": "name"},
        "spec": {"targetRef": {"kind": "Deployment", "name": "app"},
                 "startupBoost": {"cpu": {"type": "Invalid", "factor": 2}}}
    });
    assert!(serde_json::from_value::<VerticalPodAutoscaler>(obj).is_err());
}

#[test]
fn row_124_boost_without_recommendation_boosts_the_original_request() {
    let pod = pod_of(vec![container(
        "container1",
        Some(&[("cpu", "100m")]),
        Some(&[("cpu", "100m")]),
    )]);
    let got = calc(
        &pod,
        &boost_vpa(factor(2), None),
        computed(vec![(&[], &[])]),
        &BOOST_ON,
    );
    assert_eq!(
        got.unwrap(),
        json!([
            boost_annotation(
                "container1",
                r#"{"requests":{"cpu":"100m"},"limits":{"cpu":"100m"}}"#
            ),
            request(0, "cpu", "200m"),
            limit(0, "cpu", "200m"),
            updates("container 0: cpu request, cpu limit")
        ])
    );
}

fn requests_only(name: &str) -> Value {
    json!({"containerName": name, "controlledValues": "RequestsOnly"})
}

#[test]
fn row_125_boost_requests_only_leaves_the_limit() {
    let pod = pod_of(vec![container(
        "container1",
        Some(&[("cpu", "100m")]),
        Some(&[("cpu", "300m")]),
    )]);
    let got = calc(
        &pod,
        &boost_vpa(factor(2), Some(requests_only("container1"))),
        computed(vec![(&[("cpu", "100m")], &[])]),
        &BOOST_ON,
    );
    assert_eq!(
        got.unwrap(),
        json!([
            boost_annotation(
                "container1",
                r#"{"requests":{"cpu":"100m"},"limits":{"cpu":"300m"}}"#
            ),
            request(0, "cpu", "200m"),
            updates("container 0: cpu request")
        ])
    );
}

#[test]
fn row_126_boost_requests_only_stays_below_the_limit() {
    let pod = pod_of(vec![container(
        "container1",
        Some(&[("cpu", "100m")]),
        Some(&[("cpu", "150m")]),
    )]);
    let got = calc(
        &pod,
        &boost_vpa(factor(2), Some(requests_only("container1"))),
        computed(vec![(&[("cpu", "100m")], &[])]),
        &BOOST_ON,
    );
    assert_eq!(
        got.unwrap(),
        json!([
            boost_annotation(
                "container1",
                r#"{"requests":{"cpu":"100m"},"limits":{"cpu":"150m"}}"#
            ),
            request(0, "cpu", "149m"),
            updates("container 0: cpu request")
        ])
    );
}

#[test]
fn row_127_boost_requests_and_limits_scales_the_limit() {
    let pod = pod_of(vec![container(
        "container1",
        Some(&[("cpu", "100m")]),
        Some(&[("cpu", "300m")]),
    )]);
    let policy = json!({"containerName": "container1", "controlledValues": "RequestsAndLimits"});
    let got = calc(
        &pod,
        &boost_vpa(factor(2), Some(policy)),
        computed(vec![(&[("cpu", "150m")], &[])]),
        &BOOST_ON,
    );
    assert_eq!(
        got.unwrap(),
        json!([
            boost_annotation(
                "container1",
                r#"{"requests":{"cpu":"100m"},"limits":{"cpu":"300m"}}"#
            ),
            request(0, "cpu", "300m"),
            limit(0, "cpu", "900m"),
            updates("container 0: cpu request, cpu limit")
        ])
    );
}

#[test]
fn row_128_boost_requests_and_limits_without_a_limit() {
    let pod = pod_of(vec![container(
        "container1",
        Some(&[("cpu", "100m")]),
        None,
    )]);
    let policy = json!({"containerName": "container1", "controlledValues": "RequestsAndLimits"});
    let got = calc(
        &pod,
        &boost_vpa(factor(2), Some(policy)),
        computed(vec![(&[("cpu", "150m")], &[])]),
        &BOOST_ON,
    );
    assert_eq!(
        got.unwrap(),
        json!([
            boost_annotation("container1", r#"{"requests":{"cpu":"100m"},"limits":{}}"#),
            request(0, "cpu", "300m"),
            updates("container 0: cpu request")
        ])
    );
}

#[test]
fn row_129_container_boost_wins_over_the_vpa_boost() {
    let policy = json!({"containerName": "container1", "startupBoost": {"cpu": factor(3)}});
    let got = calc(
        &one_millicore_pod(),
        &boost_vpa(factor(2), Some(policy)),
        computed(vec![(&[("cpu", "100m")], &[("cpu", "100m")])]),
        &BOOST_ON,
    );
    assert_eq!(
        got.unwrap(),
        json!([
            boost_annotation("container1", ONE_MILLI_ORIGINAL),
            request(0, "cpu", "300m"),
            limit(0, "cpu", "300m"),
            updates("container 0: cpu request, cpu limit")
        ])
    );
}

#[test]
fn row_130_container_mode_off_gets_no_patch_at_all() {
    let pod = pod_of(vec![container(
        "container1",
        Some(&[("cpu", "100m")]),
        None,
    )]);
    let policy = json!({"containerName": "container1", "mode": "Off"});
    let got = calc(
        &pod,
        &boost_vpa(factor(2), Some(policy)),
        computed(vec![(&[("cpu", "1")], &[])]),
        &BOOST_ON,
    );
    assert_eq!(got.unwrap(), json!([]));
}

#[test]
fn row_131_gate_off_applies_the_plain_recommendation() {
    let pod = pod_of(vec![container(
        "container1",
        Some(&[("cpu", "100m")]),
        None,
    )]);
    let got = calc(
        &pod,
        &boost_vpa(factor(2), None),
        computed(vec![(&[("cpu", "100m")], &[])]),
        &PatchConfig::default(),
    );
    assert_eq!(
        got.unwrap(),
        json!([
            request(0, "cpu", "100m"),
            updates("container 0: cpu request")
        ])
    );
}

#[test]
fn original_resources_annotation_has_cpu_and_memory_only() {
    let r = ResourceRequirements {
        requests: Some(rmap(&[
            ("memory", "1Gi"),
            ("cpu", "0.5"),
            ("nvidia.com/gpu", "1"),
        ])),
        limits: None,
    };
    assert_eq!(
        OriginalResources::of(&r).to_annotation(),
        r#"{"requests":{"cpu":"500m","memory":"1Gi"},"limits":{}}"#
    );
}

// ---------------------------------------------------------------------------------------
// The whole patch.

fn target_vpa(mode: Option<&str>, targets: &[(&str, &[(&str, &str)])]) -> VerticalPodAutoscaler {
    let spec = match mode {
        Some(m) => json!({"updatePolicy": {"updateMode": m}}),
        None => json!({}),
    };
    vpa(
        spec,
        Some(targets.iter().map(|(n, t)| rec_json(n, t)).collect()),
    )
}

fn observed(names: &str) -> Value {
    add("/metadata/annotations/vpaObservedContainers", json!(names))
}

#[test]
fn whole_patch_in_upstream_order() {
    let mut pod = pod_of(vec![
        container(
            "app",
            Some(&[("cpu", "100m"), ("memory", "100Mi")]),
            Some(&[("memory", "200Mi")]),
        ),
        container("sidecar", None, None),
    ]);
    pod.init_containers
        .push(container("init", Some(&[("cpu", "1")]), None));
    let v = target_vpa(
        None,
        &[
            ("app", &[("cpu", "250m"), ("memory", "300Mi")]),
            ("init", &[("cpu", "5")]),
        ],
    );
    let patch = pod_patch(&pod, &v, &NamespaceLimits::NONE, &PatchConfig::default()).unwrap();
    assert_eq!(
        ops_json(&patch.operations),
        json!([
            add("/metadata/annotations", json!({})),
            request(0, "cpu", "250m"),
            request(0, "memory", "300Mi"),
            limit(0, "memory", "600Mi"),
            updates(
                "container 0: cpu: limit NOT set since originalLimit is nil or 0, cpu request, \
                 memory request, memory limit"
            ),
            observed("app, sidecar"),
        ])
    );
    assert_eq!(patch.updates.len(), 1);
    assert_eq!(patch.resources.len(), 2);
    assert_eq!(patch.resources[1], ContainerResources::default());

    // A pod that has annotations gets no empty annotations object.
    pod.annotations = Some(BTreeMap::new());
    let patch = pod_patch(&pod, &v, &NamespaceLimits::NONE, &PatchConfig::default()).unwrap();
    assert_eq!(
        ops_json(&patch.operations[..1]),
        json!([request(0, "cpu", "250m")])
    );
}

#[test]
fn vpa_without_recommendation_only_annotates() {
    let pod = pod_of(vec![container("a", None, None), container("b", None, None)]);
    let patch = pod_patch(
        &pod,
        &plain(),
        &NamespaceLimits::NONE,
        &PatchConfig::default(),
    )
    .unwrap();
    assert_eq!(
        ops_json(&patch.operations),
        json!([add("/metadata/annotations", json!({})), observed("a, b")])
    );
    let empty = pod_of(vec![]);
    let patch = pod_patch(
        &empty,
        &plain(),
        &NamespaceLimits::NONE,
        &PatchConfig::default(),
    )
    .unwrap();
    assert_eq!(
        ops_json(&patch.operations),
        json!([add("/metadata/annotations", json!({})), observed("")])
    );
}

#[test]
fn every_updating_mode_patches_and_off_does_not() {
    let pod = pod_of(vec![container("app", None, None)]);
    for mode in [
        "Initial",
        "Recreate",
        "InPlaceOrRecreate",
        "InPlace",
        "Auto",
    ] {
        let v = target_vpa(Some(mode), &[("app", &[("cpu", "1")])]);
        let patch = pod_patch(&pod, &v, &NamespaceLimits::NONE, &PatchConfig::default()).unwrap();
        assert_eq!(patch.updates, ["container 0: cpu request"], "mode {mode}");
    }
    let off = target_vpa(Some("Off"), &[("app", &[("cpu", "1")])]);
    for config in [PatchConfig::default(), BOOST_ON] {
        let patch = pod_patch(&pod, &off, &NamespaceLimits::NONE, &config).unwrap();
        assert!(patch.is_empty());
    }
}

#[test]
fn mode_off_with_a_boost_only_boosts() {
    let pod = pod_of(vec![container("app", Some(&[("cpu", "100m")]), None)]);
    let mut v = boost_vpa(factor(2), None);
    v.spec.update_policy = Some(crate::api::vpa::PodUpdatePolicy {
        update_mode: Some(UpdateMode::Off),
        ..Default::default()
    });
    v.status = target_vpa(None, &[("app", &[("cpu", "1")])]).status;
    let patch = pod_patch(&pod, &v, &NamespaceLimits::NONE, &BOOST_ON).unwrap();
    assert_eq!(
        ops_json(&patch.operations),
        json!([
            add("/metadata/annotations", json!({})),
            boost_annotation("app", r#"{"requests":{"cpu":"100m"},"limits":{}}"#),
            request(0, "cpu", "200m"),
            updates("container 0: cpu request"),
            observed("app"),
        ])
    );
    // With the gate off such a VPA still matches, but only annotates.
    let patch = pod_patch(&pod, &v, &NamespaceLimits::NONE, &PatchConfig::default()).unwrap();
    assert_eq!(
        ops_json(&patch.operations),
        json!([add("/metadata/annotations", json!({})), observed("app")])
    );
}

#[test]
fn resource_names_and_annotation_keys_are_escaped() {
    assert_eq!(escape_json_pointer("nvidia.com/gpu"), "nvidia.com~1gpu");
    assert_eq!(escape_json_pointer("a~b/c"), "a~0b~1c");
    assert_eq!(escape_json_pointer("cpu"), "cpu");
    assert_eq!(
        annotation_path("vpaCpuStartupBoost/app"),
        "/metadata/annotations/vpaCpuStartupBoost~1app"
    );

    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "app", "resources": {"requests": {"cpu": "1"}}}]}
    }))
    .unwrap();
    let view = PodView::try_from(&pod).unwrap();
    let v = target_vpa(None, &[("app", &[("nvidia.com/gpu", "2"), ("x~y", "1")])]);
    let patch = pod_patch(&view, &v, &NamespaceLimits::NONE, &PatchConfig::default()).unwrap();
    let paths: Vec<&str> = patch.operations.iter().map(|o| o.path.as_str()).collect();
    assert!(paths.contains(&"/spec/containers/0/resources/requests/nvidia.com~1gpu"));
    assert!(paths.contains(&"/spec/containers/0/resources/requests/x~0y"));
    let patched = apply_patch(&serde_json::to_value(&pod).unwrap(), &patch.operations).unwrap();
    let requests = &patched["spec"]["containers"][0]["resources"]["requests"];
    assert_eq!(
        requests,
        &json!({"cpu": "1", "nvidia.com/gpu": "2", "x~y": "1"})
    );
}

#[test]
fn operations_serialise_as_upstream_patch_records() {
    let ops = vec![
        PatchOperation::add_annotation("vpaUpdates", "x"),
        PatchOperation::remove_annotation("vpaCpuStartupBoost/app"),
    ];
    assert_eq!(
        serde_json::to_string(&ops).unwrap(),
        r#"[{"op":"add","path":"/metadata/annotations/vpaUpdates","value":"x"},{"op":"remove","path":"/metadata/annotations/vpaCpuStartupBoost~1app","value":null}]"#
    );
    let patch = PodPatch {
        operations: ops.clone(),
        ..Default::default()
    };
    assert_eq!(patch.to_json(), serde_json::to_value(&ops).unwrap());
    let jp = patch.to_json_patch().unwrap();
    assert_eq!(jp.0.len(), 2);
    let bad = [PatchOperation::add("no-leading-slash", json!(1))];
    assert!(matches!(
        to_json_patch(&bad),
        Err(PatchApplyError::Pointer { .. })
    ));
}

#[test]
fn observed_containers_round_trip() {
    assert_eq!(
        parse_observed_containers("app, side-car"),
        Some(vec!["app".to_string(), "side-car".to_string()])
    );
    assert_eq!(parse_observed_containers(""), Some(vec![]));
    assert_eq!(parse_observed_containers("abcd;';"), None);
    assert_eq!(parse_observed_containers("app,side"), None);
    assert_eq!(parse_observed_containers("-app"), None);
    let pod = pod_of(vec![container("a", None, None), container("b", None, None)]);
    assert_eq!(
        parse_observed_containers(&observed_containers(&pod)),
        Some(vec!["a".into(), "b".into()])
    );
}

#[test]
fn pod_limit_range_through_the_whole_patch() {
    let pod = pod_of(vec![
        container("a", Some(&[("cpu", "1")]), Some(&[("cpu", "1")])),
        container("b", Some(&[("cpu", "1")]), Some(&[("cpu", "1")])),
    ]);
    let limits = NamespaceLimits {
        container: None,
        pod: Some(LimitRangeItem {
            type_: "Pod".into(),
            max: Some(rmap(&[("cpu", "1")])),
            ..Default::default()
        }),
    };
    let v = target_vpa(None, &[("a", &[("cpu", "1")])]);
    let patch = pod_patch(&pod, &v, &limits, &PatchConfig::default()).unwrap();
    // b has no recommendation but its request counts for the pod and is scaled too. The
    // memory note comes from the limit scaling, which found no memory limit.
    let note = "memory: limit NOT set since originalLimit is nil or 0";
    assert_eq!(
        patch.updates,
        [
            format!("container 0: {note}, cpu request, cpu limit"),
            format!("container 1: {note}, cpu request, cpu limit")
        ]
    );
    assert_eq!(patch.resources[1].requests, rmap(&[("cpu", "500m")]));
}

#[test]
fn vpa_quantity_errors_are_reported() {
    let pod = pod_of(vec![container("app", None, None)]);
    let v = vpa(
        one_policy(json!({"containerName": "app", "minAllowed": {"cpu": "x"}})),
        Some(vec![rec_json("app", &[("cpu", "1")])]),
    );
    let err = pod_patch(&pod, &v, &NamespaceLimits::NONE, &PatchConfig::default()).unwrap_err();
    assert!(matches!(err, PatchError::Resources(_)));
}

#[test]
fn containers_resources_reads_a_patched_pod() {
    let pod = json!({"spec": {"containers": [
        {"name": "a", "resources": {"requests": {"cpu": "1"}}},
        {"name": "b"}
    ]}});
    let got = containers_resources(&pod).unwrap();
    assert_eq!(got[0].requests, Some(rmap(&[("cpu", "1")])));
    assert_eq!(got[1], ResourceRequirements::default());
    assert!(containers_resources(&json!({"spec": 3})).is_err());
}

// ---------------------------------------------------------------------------------------
// Properties.

fn cpu_text() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..4000).prop_map(|m| format!("{m}m")),
        (0u32..5).prop_map(|c| c.to_string()),
        Just("1Ei".to_string()),
        Just("0.5".to_string()),
    ]
}

fn memory_text() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..4096).prop_map(|m| format!("{m}Mi")),
        (0u64..5_000_000_000).prop_map(|b| b.to_string()),
        (1u32..10).prop_map(|g| format!("{g}G")),
        Just("1Ei".to_string()),
    ]
}

fn resource_name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just("cpu".to_string()),
        6 => Just("memory".to_string()),
        1 => Just("nvidia.com/gpu".to_string()),
        1 => Just("odd~name".to_string()),
        1 => Just(String::new()),
    ]
}

/// A resource list: mostly cpu and memory, sometimes other names.
fn resource_list() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(resource_name(), Just(()), 0..4).prop_flat_map(|names| {
        let entries: Vec<_> = names
            .into_keys()
            .map(|n| {
                let value = if n == "memory" {
                    memory_text().boxed()
                } else {
                    cpu_text().boxed()
                };
                (Just(n), value)
            })
            .collect();
        entries.prop_map(|e| e.into_iter().collect::<BTreeMap<_, _>>())
    })
}

/// A generated resource list: resource name to quantity text.
type Texts = BTreeMap<String, String>;

#[derive(Debug, Clone)]
struct Case {
    containers: Vec<(Option<Texts>, Option<Texts>)>,
    /// Per container: its recommended target, if any.
    targets: Vec<Option<BTreeMap<String, String>>>,
    min: BTreeMap<String, String>,
    max: BTreeMap<String, String>,
    requests_only: bool,
    mode: UpdateMode,
    boost: Option<i32>,
    gate: bool,
    container_lr: Option<(Texts, Texts, Texts)>,
    pod_lr: Option<(BTreeMap<String, String>, BTreeMap<String, String>)>,
    annotated: bool,
}

fn case() -> impl Strategy<Value = Case> {
    let container = (
        prop::option::of(resource_list()),
        prop::option::of(resource_list()),
    );
    (
        prop::collection::vec((container, prop::option::of(resource_list())), 0..4),
        resource_list(),
        resource_list(),
        any::<bool>(),
        prop::sample::select(UpdateMode::ALL.to_vec()),
        prop::option::of(0i32..4),
        any::<bool>(),
        prop::option::of((resource_list(), resource_list(), resource_list())),
        prop::option::of((resource_list(), resource_list())),
        any::<bool>(),
    )
        .prop_map(
            |(cs, min, max, requests_only, mode, boost, gate, container_lr, pod_lr, annotated)| {
                let (containers, targets) = cs.into_iter().unzip();
                Case {
                    containers,
                    targets,
                    min,
                    max,
                    requests_only,
                    mode,
                    boost,
                    gate,
                    container_lr,
                    pod_lr,
                    annotated,
                }
            },
        )
}

fn to_map(m: &BTreeMap<String, String>) -> ResourceMap {
    m.iter().map(|(k, v)| (k.clone(), q(v))).collect()
}

impl Case {
    fn pod_json(&self) -> Value {
        let containers: Vec<Value> = self
            .containers
            .iter()
            .enumerate()
            .map(|(i, (req, lim))| {
                let mut resources = serde_json::Map::new();
                if let Some(r) = req {
                    resources.insert("requests".into(), json!(r));
                }
                if let Some(l) = lim {
                    resources.insert("limits".into(), json!(l));
                }
                json!({"name": format!("c{i}"), "image": "x", "resources": resources})
            })
            .collect();
        let mut meta = json!({"name": "p", "namespace": "default"});
        if self.annotated {
            meta["annotations"] = json!({"keep": "me"});
        }
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": containers}})
    }

    fn vpa(&self) -> VerticalPodAutoscaler {
        let mut policy =
            json!({"containerName": "*", "minAllowed": self.min, "maxAllowed": self.max});
        if self.requests_only {
            policy["controlledValues"] = json!("RequestsOnly");
        }
        let mut spec = json!({
            "updatePolicy": {"updateMode": self.mode.as_str()},
            "resourcePolicy": {"containerPolicies": [policy]},
        });
        if let Some(f) = self.boost {
            spec["startupBoost"] = json!({"cpu": {"type": "Factor", "factor": f}});
        }
        let recs = self
            .targets
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                t.as_ref()
                    .map(|t| json!({"containerName": format!("c{i}"), "target": t}))
            })
            .collect();
        vpa(spec, Some(recs))
    }

    fn limits(&self) -> NamespaceLimits {
        NamespaceLimits {
            container: self
                .container_lr
                .as_ref()
                .map(|(max, min, default)| LimitRangeItem {
                    type_: "Container".into(),
                    max: Some(to_map(max)),
                    min: Some(to_map(min)),
                    default: Some(to_map(default)),
                }),
            pod: self.pod_lr.as_ref().map(|(max, min)| LimitRangeItem {
                type_: "Pod".into(),
                max: Some(to_map(max)),
                min: Some(to_map(min)),
                default: None,
            }),
        }
    }

    fn config(&self) -> PatchConfig {
        PatchConfig {
            cpu_startup_boost: self.gate,
            max_allowed_cpu_boost: None,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any pod and VPA: no panic, and a patch always applies to the pod's JSON and sets
    /// exactly the values it reports, leaving everything else as it was.
    #[test]
    fn patches_apply_and_set_what_they_report(case in case()) {
        let pod_json = case.pod_json();
        let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod_json.clone()).unwrap();
        let view = PodView::try_from(&pod).unwrap();
        let v = case.vpa();
        let Ok(patch) = pod_patch(&view, &v, &case.limits(), &case.config()) else {
            // Only a boost factor below 1 fails here.
            prop_assert!(case.gate && case.boost == Some(0));
            return Ok(());
        };
        let patched = apply_patch(&pod_json, &patch.operations).unwrap();
        let after = containers_resources(&patched).unwrap();
        prop_assert_eq!(after.len(), view.containers.len());
        if patch.is_empty() {
            prop_assert_eq!(case.mode, UpdateMode::Off);
            return Ok(());
        }
        prop_assert_eq!(patch.resources.len(), view.containers.len());
        for ((before, after), set) in view.containers.iter().zip(&after).zip(&patch.resources) {
            for (old, new, set) in [
                (&before.resources.requests, &after.requests, &set.requests),
                (&before.resources.limits, &after.limits, &set.limits),
            ] {
                let mut expected = old.clone().unwrap_or_default();
                expected.extend(set.clone());
                let got = new.clone().unwrap_or_default();
                prop_assert_eq!(got, expected);
            }
            if case.requests_only {
                prop_assert_eq!(&after.limits, &before.resources.limits);
            }
        }
        // Other annotations are kept; the observed containers are always written.
        if case.annotated {
            prop_assert_eq!(&patched["metadata"]["annotations"]["keep"], "me");
        }
        let names: Vec<String> = (0..view.containers.len()).map(|i| format!("c{i}")).collect();
        prop_assert_eq!(
            &patched["metadata"]["annotations"][VPA_OBSERVED_CONTAINERS_ANNOTATION],
            &json!(names.join(", "))
        );
        prop_assert_eq!(
            patched["metadata"]["annotations"].get(VPA_UPDATES_ANNOTATION).is_some(),
            !patch.updates.is_empty()
        );
    }

    /// Without LimitRanges, boosts or `RequestsOnly`, new requests stay within the policy's
    /// minAllowed and maxAllowed.
    #[test]
    fn requests_stay_within_min_and_max_allowed(case in case()) {
        let case = Case { requests_only: false, boost: None, container_lr: None, pod_lr: None, ..case };
        let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(case.pod_json()).unwrap();
        let view = PodView::try_from(&pod).unwrap();
        let patch = pod_patch(&view, &case.vpa(), &NamespaceLimits::NONE, &case.config()).unwrap();
        let (min, max) = (to_map(&case.min), to_map(&case.max));
        for set in &patch.resources {
            for (resource, value) in &set.requests {
                let lo = min.get(resource).filter(|m| !m.is_zero());
                let hi = max.get(resource).filter(|m| !m.is_zero());
                if let Some(hi) = hi {
                    prop_assert!(value <= hi, "{resource}: {value} above {hi}");
                }
                if let Some(lo) = lo && hi.is_none_or(|hi| lo <= hi) {
                    prop_assert!(value >= lo, "{resource}: {value} below {lo}");
                }
            }
        }
    }
}
