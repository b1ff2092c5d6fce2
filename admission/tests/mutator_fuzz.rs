//! Property tests of the pod mutator over arbitrary JSON shaped like pods, VPAs and
//! LimitRanges (any names, any quantity text, absent/empty/null lists, sidecars, statuses,
//! boosts, annotations already present): the conversion (`PodView::try_from`,
//! `namespace_limits`) and the patch builder (`pod_patch`) never panic; a patch always applies
//! to the pod JSON as sent and leaves quantities that parse; [`IndexMutator`] agrees with the
//! direct computation; and the whole review path returns that same patch. A second property
//! replaces single fields of the real sample review with arbitrary JSON.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use base64::Engine as _;
use k8s_openapi::api::core::v1::{LimitRange, Pod};
use proptest::prelude::*;
use serde_json::{Value, json};
use vpa_admission::hooks::Hooks;
use vpa_admission::mutator::IndexMutator;
use vpa_admission::review::Reviewer;
use vpa_admission::validator::Validator;
use vpa_core::api::pod_view::namespace_limits;
use vpa_core::api::vpa::VerticalPodAutoscaler;
use vpa_core::labels::{LabelSet, Selector};
use vpa_core::matcher::ControllerRef;
use vpa_core::model::ObjectId;
use vpa_core::patch::{PatchConfig, apply_patch, containers_resources, pod_patch};
use vpa_core::pod::PodView;
use vpa_core::quantity::Quantity;
use vpa_core::runtime::vpa_index::{VpaIndex, controller_of, record_of};

const NS: &str = "fuzz";
const HASH: &str = "5d8c7b9f4";

fn sample(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/admission")
        .join(name);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------
// Strategies.

fn quantity() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0u32..5000).prop_map(|m| format!("{m}m")),
        3 => (0u64..1 << 34).prop_map(|b| b.to_string()),
        3 => (0u32..4096).prop_map(|m| format!("{m}Mi")),
        2 => prop::sample::select(vec![
            "0", "1", "0.5", "1.5Gi", "1e3", "1E", "1Ei", "8Ei", "9223372036854775807",
            "123456789012345678901234567890", "0.000000001", "1n", "1u", "-1", "-100m", "+5m",
            " 1", "1.5.3", "", "m", "Ki", "1k", "1K", "NaN", "1e999", "0.1m", "100Gi",
        ])
        .prop_map(String::from),
        1 => "[0-9a-zA-Z.+ -]{0,10}",
    ]
}

/// Mostly valid quantity text, sometimes anything.
fn mostly_valid_quantity() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (1u32..5000).prop_map(|m| format!("{m}m")),
        6 => (1u32..4096).prop_map(|m| format!("{m}Mi")),
        1 => quantity(),
    ]
}

fn resource_name() -> impl Strategy<Value = String> {
    prop_oneof![
        5 => Just("cpu".to_string()),
        5 => Just("memory".to_string()),
        1 => prop::sample::select(vec!["nvidia.com/gpu", "ephemeral-storage", "a~b/c", ""])
            .prop_map(String::from),
    ]
}

fn resource_list() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(resource_name(), mostly_valid_quantity(), 0..4)
        .prop_map(|m| json!(m))
}

/// An optional field: absent, null, or a value.
fn field(s: impl Strategy<Value = Value> + 'static) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(Value::Null)),
        5 => s.prop_map(Some),
    ]
}

fn object(entries: Vec<(&'static str, Option<Value>)>) -> Value {
    Value::Object(
        entries
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect(),
    )
}

fn container_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["web", "sidecar", "init", "a~b", "a/b", "", "*"])
            .prop_map(String::from),
        1 => "[a-z]{1,4}",
    ]
}

fn resources() -> impl Strategy<Value = Value> {
    (field(resource_list()), field(resource_list()))
        .prop_map(|(requests, limits)| object(vec![("requests", requests), ("limits", limits)]))
}

fn container(init: bool) -> impl Strategy<Value = Value> {
    let restart = if init {
        prop::option::of(prop::sample::select(vec!["Always", "OnFailure", ""])).boxed()
    } else {
        Just(None).boxed()
    };
    (container_name(), field(resources()), restart).prop_map(|(name, res, restart)| {
        let mut c = object(vec![("resources", res)]);
        c["name"] = json!(name);
        c["image"] = json!("x");
        if let Some(r) = restart {
            c["restartPolicy"] = json!(r);
        }
        c
    })
}

fn status() -> impl Strategy<Value = Value> {
    prop::collection::vec((container_name(), field(resources())), 0..3).prop_map(|s| {
        let statuses: Vec<Value> = s
            .into_iter()
            .map(|(name, res)| {
                let mut st = object(vec![("resources", res)]);
                st["name"] = json!(name);
                st["image"] = json!("x");
                st["imageID"] = json!("");
                st["ready"] = json!(false);
                st["restartCount"] = json!(0);
                st
            })
            .collect();
        json!({ "containerStatuses": statuses })
    })
}

fn annotations() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("vpaObservedContainers".to_string()),
        Just("vpaUpdates".to_string()),
        Just("a/b~c".to_string()),
        "[a-z.]{1,8}",
    ];
    prop::collection::btree_map(key, "[ -~]{0,12}", 0..3).prop_map(|m| json!(m))
}

fn pod() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(container(false), 0..4),
        prop::collection::vec(container(true), 0..3),
        field(annotations()),
        field(status()),
        prop::sample::select(vec!["owned", "owned", "owned", "owned", "unowned", "other"]),
    )
        .prop_map(|(containers, init, annotations, status, owner)| {
            let mut meta = object(vec![("annotations", annotations)]);
            meta["generateName"] = json!(format!("app-{HASH}-"));
            meta["namespace"] = json!(NS);
            meta["labels"] = json!({"app": "app", "pod-template-hash": HASH});
            let rs = match owner {
                "owned" => Some(format!("app-{HASH}")),
                "other" => Some("other-1".to_string()),
                _ => None,
            };
            if let Some(rs) = rs {
                meta["ownerReferences"] = json!([{
                    "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs,
                    "uid": "u", "controller": true,
                }]);
            }
            let mut spec = json!({ "containers": containers });
            if !init.is_empty() {
                spec["initContainers"] = json!(init);
            }
            let mut pod =
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec});
            if let Some(s) = status {
                pod["status"] = s;
            }
            pod
        })
}

fn boost() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["Factor", "Quantity"]),
        prop::option::of(-1i32..5),
        prop::option::of(quantity()),
        prop::option::of(0i32..600),
    )
        .prop_map(|(t, factor, q, d)| {
            let mut cpu = json!({ "type": t });
            if let Some(f) = factor {
                cpu["factor"] = json!(f);
            }
            if let Some(q) = q {
                cpu["quantity"] = json!(q);
            }
            if let Some(d) = d {
                cpu["durationSeconds"] = json!(d);
            }
            json!({ "cpu": cpu })
        })
}

fn container_policy() -> impl Strategy<Value = Value> {
    (
        container_name(),
        field(prop::sample::select(vec!["Auto", "Off"]).prop_map(|s| json!(s))),
        field(resource_list()),
        field(resource_list()),
        field(prop::collection::vec(resource_name(), 0..3).prop_map(|v| json!(v))),
        field(
            prop::sample::select(vec!["RequestsAndLimits", "RequestsOnly"]).prop_map(|s| json!(s)),
        ),
        field(boost()),
    )
        .prop_map(|(name, mode, min, max, controlled, values, boost)| {
            let mut p = object(vec![
                ("mode", mode),
                ("minAllowed", min),
                ("maxAllowed", max),
                ("controlledResources", controlled),
                ("controlledValues", values),
                ("startupBoost", boost),
            ]);
            p["containerName"] = json!(name);
            p
        })
}

fn recommendation() -> impl Strategy<Value = Value> {
    (
        container_name(),
        resource_list(),
        field(resource_list()),
        field(resource_list()),
        field(resource_list()),
    )
        .prop_map(|(name, target, lower, upper, uncapped)| {
            let mut r = object(vec![
                ("lowerBound", lower),
                ("upperBound", upper),
                ("uncappedTarget", uncapped),
            ]);
            r["containerName"] = json!(name);
            r["target"] = target;
            r
        })
}

fn vpa() -> impl Strategy<Value = Value> {
    (
        field(
            prop::sample::select(vec!["Off", "Initial", "Recreate", "InPlaceOrRecreate", "Auto"])
                .prop_map(|m| json!({ "updateMode": m })),
        ),
        field(
            prop::collection::vec(container_policy(), 0..3)
                .prop_map(|p| json!({ "containerPolicies": p })),
        ),
        field(boost()),
        field(
            prop::collection::vec(recommendation(), 0..4)
                .prop_map(|r| json!({ "recommendation": { "containerRecommendations": r } })),
        ),
    )
        .prop_map(|(policy, resource_policy, boost, status)| {
            let mut spec = object(vec![
                ("updatePolicy", policy),
                ("resourcePolicy", resource_policy),
                ("startupBoost", boost),
            ]);
            spec["targetRef"] = json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "app"});
            let mut v = json!({
                "apiVersion": "autoscaling.k8s.io/v1", "kind": "VerticalPodAutoscaler",
                "metadata": {"name": "app", "namespace": NS, "creationTimestamp": "2025-06-01T10:00:00Z"},
                "spec": spec,
            });
            if let Some(s) = status {
                v["status"] = s;
            }
            v
        })
}

fn limit_range() -> impl Strategy<Value = Value> {
    let item = (
        prop::sample::select(vec!["Container", "Pod", "PersistentVolumeClaim", ""]),
        field(resource_list()),
        field(resource_list()),
        field(resource_list()),
        field(resource_list()),
    )
        .prop_map(|(t, max, min, default, default_request)| {
            let mut i = object(vec![
                ("max", max),
                ("min", min),
                ("default", default),
                ("defaultRequest", default_request),
            ]);
            i["type"] = json!(t);
            i
        });
    prop::collection::vec(item, 0..3).prop_map(|limits| {
        json!({"apiVersion": "v1", "kind": "LimitRange",
               "metadata": {"name": "lr", "namespace": NS}, "spec": {"limits": limits}})
    })
}

fn config() -> impl Strategy<Value = PatchConfig> {
    (any::<bool>(), prop::option::of(0i64..3000)).prop_map(|(gate, max)| PatchConfig {
        cpu_startup_boost: gate,
        max_allowed_cpu_boost: max.map(Quantity::from_millis),
    })
}

// ---------------------------------------------------------------------------------------
// Checks.

fn index_with(vpa: VerticalPodAutoscaler, limit_ranges: Vec<LimitRange>) -> VpaIndex {
    let index = VpaIndex::new();
    {
        let mut m = index.write();
        m.upsert_vpa(record_of(vpa).unwrap());
        m.set_selector(
            &ObjectId::new(NS, "app"),
            Some(Selector::parse("app=app").unwrap()),
        );
        m.set_owner(
            NS,
            ControllerRef::new("ReplicaSet", format!("app-{HASH}")),
            Some(ControllerRef::new("Deployment", "app")),
        );
    }
    index.set_limit_ranges(NS, limit_ranges);
    index
}

/// The patch the pure layer computes for this pod, or `None` if any step refuses.
fn direct(
    pod: &Pod,
    vpa: &VerticalPodAutoscaler,
    lrs: &[LimitRange],
    config: &PatchConfig,
    pod_json: &Value,
) -> Result<Option<json_patch::Patch>, TestCaseError> {
    let Ok(view) = PodView::try_from(pod) else {
        return Ok(None);
    };
    let Ok(limits) = namespace_limits(lrs.iter()) else {
        return Ok(None);
    };
    let Ok(patch) = pod_patch(&view, vpa, &limits, config) else {
        return Ok(None);
    };
    let patched = apply_patch(pod_json, &patch.operations);
    prop_assert!(patched.is_ok(), "{patched:?}\n{:#?}", patch.operations);
    let patched = patched.unwrap();
    // Every value written parses back, and the containers are still the pod's.
    let after = containers_resources(&patched);
    prop_assert!(after.is_ok(), "{after:?}\n{patched}");
    prop_assert_eq!(after.unwrap().len(), view.containers.len());
    Ok(Some(patch.to_json_patch().unwrap()))
}

fn review_body(pod_json: &Value) -> Vec<u8> {
    let mut review = sample("pod-create.json");
    review["request"]["namespace"] = json!(NS);
    review["request"]["object"] = pod_json.clone();
    serde_json::to_vec(&review).unwrap()
}

/// The patch of a review response, checked to apply to `object`.
fn response_patch(out: &[u8], object: &Value) -> Result<Option<Value>, TestCaseError> {
    let out: Value = serde_json::from_slice(out).unwrap();
    prop_assert_eq!(&out["response"]["allowed"], &json!(true));
    let Some(patch) = out["response"]["patch"].as_str() else {
        return Ok(None);
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(patch)
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
    let mut doc = object.clone();
    let applied = json_patch::patch(&mut doc, &patch.0);
    prop_assert!(applied.is_ok(), "{applied:?}");
    Ok(Some(serde_json::to_value(&patch).unwrap()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary pods, VPAs and LimitRanges through the pure layer, the mutator and the
    /// review path.
    #[test]
    fn arbitrary_pods_and_vpas_get_patches_that_apply(
        pod_json in pod(),
        vpa_json in vpa(),
        lr_json in prop::option::of(limit_range()),
        config in config(),
    ) {
        let pod: Pod = serde_json::from_value(pod_json.clone()).unwrap();
        let vpa: VerticalPodAutoscaler = serde_json::from_value(vpa_json).unwrap();
        let lrs: Vec<LimitRange> = lr_json
            .map(|l| serde_json::from_value(l).unwrap())
            .into_iter()
            .collect();

        let expected = direct(&pod, &vpa, &lrs, &config, &pod_json)?;

        let index = index_with(vpa.clone(), lrs.clone());
        let labels: LabelSet = pod.metadata.labels.clone().unwrap_or_default();
        let controller = controller_of(pod.metadata.owner_references.as_deref());
        let matched = index.find(NS, &labels, controller.as_ref()).is_ok();
        let mutator = Arc::new(IndexMutator::new(index, config.clone()));
        let got = mutator.mutate_pod(&pod, NS);
        if matched {
            match (&expected, &got) {
                (Some(p), Ok(m)) => prop_assert_eq!(&m.patch, p),
                (None, Err(_)) => {}
                _ => prop_assert!(false, "direct {expected:?}, mutator {got:?}"),
            }
        } else {
            prop_assert!(got.as_ref().is_ok_and(|m| m.patch.0.is_empty()), "{got:?}");
        }

        let reviewer = Reviewer::new(Hooks::new(mutator, Arc::new(Validator::default())));
        let out = reviewer.review(&review_body(&pod_json)).unwrap();
        let sent = response_patch(&out.to_json(), &pod_json)?;
        let wanted = got
            .ok()
            .filter(|m| !m.patch.0.is_empty())
            .map(|m| serde_json::to_value(&m.patch).unwrap());
        prop_assert_eq!(sent, wanted);
    }

    /// The real sample review with one field of its pod replaced by arbitrary JSON or
    /// quantity text: always an answer, and a patch, if any, applies to the object sent.
    #[test]
    fn edited_sample_reviews_get_patches_that_apply(
        pointer in prop::sample::select(vec![
            "/metadata/annotations",
            "/metadata/labels",
            "/metadata/ownerReferences",
            "/spec/containers",
            "/spec/containers/0",
            "/spec/containers/0/name",
            "/spec/containers/0/resources",
            "/spec/containers/0/resources/requests",
            "/spec/containers/0/resources/requests/cpu",
            "/spec/containers/0/resources/limits/memory",
            "/spec/containers/1/resources",
            "/spec/containers/1/name",
            "/spec/initContainers",
        ]),
        value in prop_oneof![
            quantity().prop_map(Value::String),
            resource_list(),
            resources(),
            container(true),
            annotations(),
            Just(Value::Null),
            Just(json!([])),
            Just(json!({})),
            any::<i64>().prop_map(|n| json!(n)),
        ],
        vpa_json in vpa(),
    ) {
        let mut review = sample("pod-create.json");
        let object = &mut review["request"]["object"];
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        if let Some(slot) = object.pointer_mut(parent) {
            match slot {
                Value::Object(m) => { m.insert(key.to_string(), value); }
                Value::Array(a) => {
                    if let Some(v) = key.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                        *v = value;
                    }
                }
                _ => {}
            }
        }
        let object = review["request"]["object"].clone();
        // The sample's pod: shop/frontend, owned by ReplicaSet frontend-7d9f8b6c5d.
        let mut vpa_json = vpa_json;
        vpa_json["metadata"]["namespace"] = json!("shop");
        vpa_json["metadata"]["name"] = json!("frontend");
        vpa_json["spec"]["targetRef"]["name"] = json!("frontend");
        let vpa: VerticalPodAutoscaler = serde_json::from_value(vpa_json).unwrap();
        let index = VpaIndex::new();
        {
            let mut m = index.write();
            m.upsert_vpa(record_of(vpa).unwrap());
            m.set_selector(
                &ObjectId::new("shop", "frontend"),
                Some(Selector::parse("app=frontend").unwrap()),
            );
        }
        let reviewer = Reviewer::new(Hooks::new(
            Arc::new(IndexMutator::new(index, PatchConfig { cpu_startup_boost: true, max_allowed_cpu_boost: None })),
            Arc::new(Validator::default()),
        ));
        let out = reviewer.review(&serde_json::to_vec(&review).unwrap()).unwrap();
        response_patch(&out.to_json(), &object)?;
    }
}
