//! VPA validation: the messages of the behaviour spec §3.7 and row 160 of §5 (upstream's
//! `validation_test.go` cases), options, warnings and defaulting.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use proptest::prelude::*;
use serde_json::json;

fn submitted(spec: Value) -> SubmittedVpa {
    SubmittedVpa::from_json(&json!({
        "apiVersion": "autoscaling.k8s.io/v1",
        "kind": "VerticalPodAutoscaler",
        "metadata": {"name": "v"},
        "spec": spec,
    }))
    .unwrap()
}

fn with_target(mut spec: Value) -> Value {
    spec["targetRef"] = json!({"kind": "Deployment", "name": "my-app"});
    spec
}

fn all_allowed() -> ValidationOptions {
    ValidationOptions {
        is_create: true,
        allow_cpu_startup_boost: true,
        allow_per_vpa_config: true,
        allow_in_place: true,
        existing_controlled_resources: BTreeSet::new(),
    }
}

fn none_allowed() -> ValidationOptions {
    ValidationOptions {
        is_create: true,
        ..Default::default()
    }
}

fn messages(spec: Value, opts: &ValidationOptions) -> Vec<String> {
    validate(&submitted(with_target(spec)), opts)
        .errors
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Exactly one error, with this message.
fn one_error(spec: Value, opts: &ValidationOptions, want: &str) {
    assert_eq!(messages(spec, opts), [want]);
}

fn policy(p: Value) -> Value {
    json!({"resourcePolicy": {"containerPolicies": [p]}})
}

#[test]
fn row_160_target_ref_required_on_create() {
    let empty = SubmittedVpa::from_json(&json!({})).unwrap();
    assert!(validate(&empty, &ValidationOptions::default()).is_valid());
    let v = validate(&empty, &none_allowed());
    assert_eq!(
        v.errors[0].to_string(),
        "spec.targetRef: Required value: If you're using v1beta1 version of the API, please \
         migrate to v1"
    );
}

#[test]
fn row_160_update_policy() {
    one_error(
        json!({"updatePolicy": {}}),
        &all_allowed(),
        "spec.updatePolicy.updateMode: Required value: updateMode is required if UpdatePolicy is used",
    );
    one_error(
        json!({"updatePolicy": {"updateMode": "bad"}}),
        &all_allowed(),
        "spec.updatePolicy.updateMode: Unsupported value: \"bad\": supported values: \
         \"InPlace\", \"InPlaceOrRecreate\", \"Initial\", \"Off\", \"Recreate\"",
    );
    one_error(
        json!({"updatePolicy": {"updateMode": "Off", "minReplicas": 0}}),
        &all_allowed(),
        "spec.updatePolicy.minReplicas: Invalid value: 0: minReplicas has to be positive",
    );
    one_error(
        json!({"updatePolicy": {"updateMode": "InPlace"}}),
        &none_allowed(),
        "spec.updatePolicy.updateMode: Forbidden: in order to use UpdateMode InPlace, you must \
         enable feature gate InPlace in the admission-controller args",
    );
    for mode in ["Off", "Initial", "Recreate", "InPlaceOrRecreate", "Auto"] {
        assert!(
            messages(
                json!({"updatePolicy": {"updateMode": mode, "minReplicas": 1}}),
                &none_allowed()
            )
            .is_empty(),
            "{mode}"
        );
    }
    assert!(
        messages(
            json!({"updatePolicy": {"updateMode": "InPlace"}}),
            &all_allowed()
        )
        .is_empty()
    );
}

#[test]
fn row_160_evict_after_oom_seconds() {
    one_error(
        json!({"updatePolicy": {"updateMode": "Off", "evictAfterOOMSeconds": 600}}),
        &none_allowed(),
        "spec.updatePolicy.evictAfterOOMSeconds: Forbidden: not supported when feature flag \
         PerVPAConfig is disabled",
    );
    one_error(
        json!({"updatePolicy": {"updateMode": "Off", "evictAfterOOMSeconds": 0}}),
        &all_allowed(),
        "spec.updatePolicy.evictAfterOOMSeconds: Invalid value: 0: must be greater than or equal to 1",
    );
    assert!(
        messages(
            json!({"updatePolicy": {"updateMode": "Off", "evictAfterOOMSeconds": 600}}),
            &all_allowed()
        )
        .is_empty()
    );
}

#[test]
fn row_160_container_policies() {
    let p = "spec.resourcePolicy.containerPolicies[0]";
    one_error(
        policy(json!({})),
        &all_allowed(),
        &format!("{p}.containerName: Required value"),
    );
    one_error(
        policy(json!({"containerName": "loot box", "mode": "bad"})),
        &all_allowed(),
        &format!("{p}.mode: Unsupported value: \"bad\": supported values: \"Auto\", \"Off\""),
    );
    one_error(
        policy(
            json!({"containerName": "loot box", "minAllowed": {"cpu": "100"}, "maxAllowed": {"cpu": "10"}}),
        ),
        &all_allowed(),
        &format!(
            "{p}.maxAllowed[cpu]: Invalid value: \"10\": max resource for cpu is lower than min of \"100\""
        ),
    );
    one_error(
        policy(
            json!({"containerName": "loot box", "minAllowed": {"cpu": "187500u"}, "maxAllowed": {"cpu": "275m"}}),
        ),
        &all_allowed(),
        &format!(
            "{p}.minAllowed[cpu]: Invalid value: \"187500u\": must be a whole number of milli CPUs"
        ),
    );
    one_error(
        policy(json!({"containerName": "loot box",
            "minAllowed": {"cpu": "1m", "memory": "100m"},
            "maxAllowed": {"cpu": "275m", "memory": "500M"}})),
        &all_allowed(),
        &format!(
            "{p}.minAllowed[memory]: Invalid value: \"100m\": must be a whole number of bytes"
        ),
    );
    one_error(
        policy(
            json!({"containerName": "loot box", "minAllowed": {}, "maxAllowed": {"cpu": "187500u"}}),
        ),
        &all_allowed(),
        &format!(
            "{p}.maxAllowed[cpu]: Invalid value: \"187500u\": must be a whole number of milli CPUs"
        ),
    );
    one_error(
        policy(json!({"containerName": "loot box",
            "minAllowed": {"cpu": "1m"},
            "maxAllowed": {"cpu": "275m", "memory": "500m"}})),
        &all_allowed(),
        &format!(
            "{p}.maxAllowed[memory]: Invalid value: \"500m\": must be a whole number of bytes"
        ),
    );
    one_error(
        policy(
            json!({"containerName": "loot box", "mode": "Off", "controlledValues": "RequestsAndLimits"}),
        ),
        &all_allowed(),
        &format!(
            "{p}.controlledValues: Forbidden: controlledValues shouldn't be specified if container scaling mode is off"
        ),
    );
    // RequestsOnly with mode Off is accepted.
    assert!(
        messages(
            policy(
                json!({"containerName": "c", "mode": "Off", "controlledValues": "RequestsOnly"})
            ),
            &all_allowed()
        )
        .is_empty()
    );
    // All valid.
    assert!(
        messages(
            json!({
                "resourcePolicy": {"containerPolicies": [{"containerName": "loot box", "mode": "Auto",
                    "minAllowed": {"cpu": "10"}, "maxAllowed": {"cpu": "100"}}]},
                "updatePolicy": {"updateMode": "Off", "minReplicas": 1}
            }),
            &none_allowed()
        )
        .is_empty()
    );
}

#[test]
fn row_160_per_vpa_config_fields() {
    let p = "spec.resourcePolicy.containerPolicies[0]";
    let forbidden = "Forbidden: not supported when feature flag PerVPAConfig is disabled";
    for (field, value) in [
        ("oomBumpUpRatio", json!("2")),
        ("oomMinBumpUp", json!("2")),
        ("memoryAggregationIntervalSeconds", json!(3600)),
        ("memoryAggregationIntervalCount", json!(10)),
    ] {
        let mut cp = json!({"containerName": "loot box"});
        cp[field] = value;
        one_error(
            policy(cp.clone()),
            &none_allowed(),
            &format!("{p}.{field}: {forbidden}"),
        );
        assert!(messages(policy(cp), &all_allowed()).is_empty(), "{field}");
    }
    for (ratio, shown) in [("-1", "-1"), ("0.5", "0.5"), ("999m", "0.999")] {
        one_error(
            policy(
                json!({"containerName": "*", "oomBumpUpRatio": ratio, "oomMinBumpUp": "104857600"}),
            ),
            &all_allowed(),
            &format!(
                "{p}.oomBumpUpRatio: Invalid value: {shown}: must be greater than or equal to 1.0"
            ),
        );
    }
    one_error(
        policy(json!({"containerName": "*", "oomBumpUpRatio": "2", "oomMinBumpUp": "-1"})),
        &all_allowed(),
        &format!("{p}.oomMinBumpUp: Invalid value: -1: must be greater than or equal to 0"),
    );
    for (field, value) in [
        ("memoryAggregationIntervalSeconds", 0),
        ("memoryAggregationIntervalSeconds", -5),
        ("memoryAggregationIntervalCount", 0),
        ("memoryAggregationIntervalCount", -3),
    ] {
        let mut cp = json!({"containerName": "loot box"});
        cp[field] = json!(value);
        one_error(
            policy(cp),
            &all_allowed(),
            &format!("{p}.{field}: Invalid value: {value}: must be greater than or equal to 1"),
        );
    }
}

#[test]
fn row_160_startup_boost() {
    let gate = "in order to use startupBoost, you must enable feature gate CPUStartupBoost in the \
                admission-controller args";
    let container = "spec.resourcePolicy.containerPolicies[0].startupBoost";
    let cases: [(Value, &str); 6] = [
        (
            json!({"factor": 0, "type": "Factor"}),
            "cpu.factor: Invalid value: 0: must be >= 1 for type Factor",
        ),
        (
            json!({"type": "Factor"}),
            "cpu.factor: Required value: required when type is Factor",
        ),
        (
            json!({"type": "Quantity"}),
            "cpu.quantity: Required value: required when type is Quantity",
        ),
        (
            json!({"type": "Quantity", "quantity": "187500u"}),
            "cpu.quantity: Invalid value: \"187500u\": must be a whole number of milli CPUs",
        ),
        (
            json!({"type": "bad"}),
            "cpu.type: Unsupported value: \"bad\": supported values: \"Factor\", \"Quantity\"",
        ),
        (
            json!({}),
            "cpu.type: Required value: must be either Factor or Quantity",
        ),
    ];
    for (cpu, want) in cases {
        one_error(
            json!({"startupBoost": {"cpu": cpu.clone()}}),
            &all_allowed(),
            &format!("spec.startupBoost.{want}"),
        );
        one_error(
            policy(json!({"containerName": "loot box", "startupBoost": {"cpu": cpu}})),
            &all_allowed(),
            &format!("{container}.{want}"),
        );
    }
    let valid = [
        json!({"type": "Factor", "factor": 2}),
        json!({"type": "Quantity", "quantity": "100m"}),
    ];
    for cpu in valid {
        one_error(
            json!({"startupBoost": {"cpu": cpu.clone()}}),
            &none_allowed(),
            &format!("spec.startupBoost: Forbidden: {gate}"),
        );
        one_error(
            policy(json!({"containerName": "loot box", "startupBoost": {"cpu": cpu.clone()}})),
            &none_allowed(),
            &format!("{container}: Forbidden: {gate}"),
        );
        assert!(messages(json!({"startupBoost": {"cpu": cpu}}), &all_allowed()).is_empty());
    }
}

#[test]
fn row_160_recommenders() {
    one_error(
        json!({"updatePolicy": {"updateMode": "Off"}, "recommenders": [{"name": "test1"}, {"name": "test2"}]}),
        &all_allowed(),
        "spec.recommenders: Too many: 2: must have at most 1 item",
    );
    assert!(messages(json!({"recommenders": [{"name": "test1"}]}), &all_allowed()).is_empty());
}

#[test]
fn row_160_very_invalid_vpa_reports_every_field() {
    let v = SubmittedVpa::from_json(&json!({"spec": {
        "resourcePolicy": {"containerPolicies": [{
            "containerName": "loot box",
            "startupBoost": {"cpu": {}},
            "controlledResources": ["cpu", "memory", "broken"],
        }]},
        "startupBoost": {},
        "updatePolicy": {"minReplicas": -1, "updateMode": "bad", "evictAfterOOMSeconds": -1},
        "recommenders": [{"name": "test1"}, {"name": "test2"}],
    }}))
    .unwrap();
    let errors = validate(&v, &none_allowed()).errors;
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "spec.targetRef",
            "spec.updatePolicy.updateMode",
            "spec.updatePolicy.minReplicas",
            "spec.updatePolicy.evictAfterOOMSeconds",
            "spec.resourcePolicy.containerPolicies[0].controlledResources[2]",
            "spec.resourcePolicy.containerPolicies[0].startupBoost",
            "spec.startupBoost",
            "spec.recommenders",
        ]
    );
    // Upstream's test predates the controlledResources check and counts 7.
    assert_eq!(
        errors[4].to_string(),
        "spec.resourcePolicy.containerPolicies[0].controlledResources[2]: Unsupported value: \
         \"broken\": supported values: \"cpu\", \"memory\""
    );
}

#[test]
fn auto_mode_is_accepted_with_a_warning() {
    let v = validate(
        &submitted(with_target(json!({"updatePolicy": {"updateMode": "Auto"}}))),
        &none_allowed(),
    );
    assert!(v.is_valid());
    assert_eq!(
        v.warnings,
        [
            "spec.updatePolicy: \"Auto\" mode is deprecated and will be removed in a future API \
          version. Use explicit update modes like: [InPlace InPlaceOrRecreate Initial Off \
          Recreate]. See https://github.com/kubernetes/autoscaler/issues/8424 for more details."
        ]
    );
}

#[test]
fn controlled_resources_already_in_the_old_object_only_warn() {
    let spec = with_target(policy(
        json!({"containerName": "app", "controlledResources": ["cpu", "ephemeral-storage"]}),
    ));
    let new = submitted(spec.clone());
    let fresh = validate_vpa(&new, None, &FeatureGates::default());
    assert_eq!(fresh.errors.len(), 1);
    let updated = validate_vpa(&new, Some(&submitted(spec)), &FeatureGates::default());
    assert!(updated.is_valid());
    assert_eq!(
        updated.warnings,
        [
            "spec.resourcePolicy.containerPolicies[0].controlledResources[1]: unsupported value \
          \"ephemeral-storage\" is allowed only because it is present in the existing VPA \
          object; supported values: \"cpu\", \"memory\""
        ]
    );
}

#[test]
fn gated_fields_are_allowed_by_the_gate_or_the_old_object() {
    let gates_off = FeatureGates::default();
    let boost = submitted(with_target(
        json!({"startupBoost": {"cpu": {"type": "Factor", "factor": 2}}}),
    ));
    let per_vpa = submitted(with_target(
        json!({"updatePolicy": {"updateMode": "Off", "evictAfterOOMSeconds": 60}}),
    ));
    let in_place = submitted(with_target(
        json!({"updatePolicy": {"updateMode": "InPlace"}}),
    ));
    for v in [&boost, &per_vpa, &in_place] {
        assert!(!validate_vpa(v, None, &gates_off).is_valid());
        assert!(validate_vpa(v, Some(v), &gates_off).is_valid());
    }
    let all = FeatureGates {
        cpu_startup_boost: true,
        per_vpa_config: true,
        in_place: true,
    };
    for v in [&boost, &per_vpa, &in_place] {
        assert!(validate_vpa(v, None, &all).is_valid());
    }
    // A container-level boost in the old object allows boosts too; an empty one does not
    // count at the top level.
    let old = submitted(policy(json!({"containerName": "a", "startupBoost": {}})));
    assert!(ValidationOptions::for_request(Some(&old), &gates_off).allow_cpu_startup_boost);
    let old = submitted(json!({"startupBoost": {}}));
    assert!(!ValidationOptions::for_request(Some(&old), &gates_off).allow_cpu_startup_boost);
    // As upstream's handler: never "create", so targetRef is not checked here.
    let no_target = SubmittedVpa::from_json(&json!({"spec": {}})).unwrap();
    assert!(validate_vpa(&no_target, None, &gates_off).is_valid());
}

#[test]
fn defaulting_adds_the_update_policy() {
    let v = submitted(with_target(json!({})));
    assert_eq!(
        serde_json::to_value(default_patches(&v)).unwrap(),
        json!([{"op": "add", "path": "/spec/updatePolicy", "value": {"updateMode": "Recreate"}}])
    );
    let v = submitted(with_target(json!({"updatePolicy": {"updateMode": "Off"}})));
    assert!(default_patches(&v).is_empty());
}

#[test]
fn review_decodes_validates_and_defaults() {
    let gates = FeatureGates::default();
    let ok = json!({"spec": {"targetRef": {"kind": "Deployment", "name": "a"}}});
    let review = review_vpa(&ok, None, &gates);
    assert!(review.allowed());
    assert_eq!(review.patches.len(), 1);

    let bad =
        json!({"spec": {"targetRef": {"kind": "Deployment", "name": "a"}, "updatePolicy": {}}});
    let review = review_vpa(&bad, None, &gates);
    assert!(!review.allowed());
    assert!(review.patches.is_empty());

    // Values that do not decode (a quantity, an integer) are internal errors.
    for broken in [
        json!({"spec": {"resourcePolicy": {"containerPolicies": [{"containerName": "a", "minAllowed": {"cpu": "lots"}}]}}}),
        json!({"spec": {"updatePolicy": {"updateMode": "Off", "minReplicas": "two"}}}),
        json!({"spec": 7}),
    ] {
        let review = review_vpa(&broken, None, &gates);
        assert_eq!(review.errors.len(), 1, "{broken}");
        assert_eq!(review.errors[0].kind, FieldErrorKind::Internal);
        assert!(
            review.errors[0]
                .to_string()
                .starts_with(".: Internal error: ")
        );
    }
    let review = review_vpa(&ok, Some(&json!({"spec": "x"})), &gates);
    assert_eq!(review.errors[0].kind, FieldErrorKind::Internal);
    // Null is zero, as Go decodes it.
    let nulls = json!({"spec": {"targetRef": {"kind": "Deployment", "name": "a"},
        "resourcePolicy": {"containerPolicies": [{"containerName": null}]}}});
    assert_eq!(
        review_vpa(&nulls, None, &gates).errors[0].to_string(),
        "spec.resourcePolicy.containerPolicies[0].containerName: Required value"
    );
}

#[test]
fn typed_objects_convert() {
    let typed: VerticalPodAutoscaler = serde_json::from_value(json!({
        "apiVersion": "autoscaling.k8s.io/v1", "kind": "VerticalPodAutoscaler",
        "metadata": {"name": "v"},
        "spec": {"targetRef": {"kind": "Deployment", "name": "a"}, "updatePolicy": {"updateMode": "Auto"}}
    }))
    .unwrap();
    let v = SubmittedVpa::try_from(&typed).unwrap();
    assert_eq!(
        v.spec.update_policy.unwrap().update_mode.as_deref(),
        Some("Auto")
    );
}

#[test]
fn messages_aggregate_as_apimachinery() {
    let a = FieldError::required("spec.a", "");
    let b = FieldError::invalid("spec.b", BadValue::Int(3), "too big");
    assert_eq!(aggregate_message(&[]), "");
    assert_eq!(
        aggregate_message(std::slice::from_ref(&a)),
        "spec.a: Required value"
    );
    assert_eq!(
        aggregate_message(&[a.clone(), b.clone(), a.clone()]),
        "[spec.a: Required value, spec.b: Invalid value: 3: too big]"
    );
    assert_eq!(
        invalid_status_message(
            "VerticalPodAutoscaler.autoscaling.k8s.io",
            "web",
            std::slice::from_ref(&b)
        ),
        "VerticalPodAutoscaler.autoscaling.k8s.io \"web\" is invalid: spec.b: Invalid value: 3: too big"
    );
    assert_eq!(b.body(), "Invalid value: 3: too big");
    assert_eq!(b.kind.reason(), "FieldValueInvalid");
    assert_eq!(
        FieldError::internal(".", "boom").to_string(),
        ".: Internal error: boom"
    );
}

#[test]
fn go_formatting_of_values() {
    for (v, want) in [
        (0.5, "0.5"),
        (-1.0, "-1"),
        (0.999, "0.999"),
        (123_456.0, "123456"),
        (1e6, "1e+06"),
        (1_234_567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-1.5e-5, "-1.5e-05"),
        (0.0, "0"),
        (1e21, "1e+21"),
        (f64::INFINITY, "+Inf"),
        (f64::NAN, "NaN"),
    ] {
        assert_eq!(go_float(v), want, "{v}");
    }
    assert_eq!(go_quote("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\x01é\"");
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        prop_oneof![
            Just("cpu".to_string()),
            Just("Factor".to_string()),
            Just("Off".to_string()),
            Just("1.5".to_string()),
            "[a-zA-Z0-9.~/-]{0,8}"
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = prop_oneof![
            Just("spec".to_string()),
            Just("updatePolicy".to_string()),
            Just("updateMode".to_string()),
            Just("minReplicas".to_string()),
            Just("resourcePolicy".to_string()),
            Just("containerPolicies".to_string()),
            Just("containerName".to_string()),
            Just("minAllowed".to_string()),
            Just("maxAllowed".to_string()),
            Just("startupBoost".to_string()),
            Just("cpu".to_string()),
            Just("type".to_string()),
            Just("factor".to_string()),
            Just("quantity".to_string()),
            Just("recommenders".to_string()),
            Just("oomBumpUpRatio".to_string()),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    /// Any JSON object gets an answer, never a panic; rejected objects get no patches.
    #[test]
    fn review_never_panics(object in arbitrary_json(), old in prop::option::of(arbitrary_json())) {
        let review = review_vpa(&object, old.as_ref(), &FeatureGates::default());
        if !review.allowed() {
            prop_assert!(review.patches.is_empty());
        }
        for e in &review.errors {
            prop_assert!(!e.to_string().is_empty());
        }
    }
}
