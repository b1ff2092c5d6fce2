#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use kube::api::DynamicObject;
use vpa_core::api::VerticalPodAutoscaler;

fn typed(o: &DynamicObject) -> Option<VerticalPodAutoscaler> {
    serde_json::from_value(serde_json::to_value(o).ok()?).ok()
}
use crate::hooks::{MutationError, PodMutator, VpaValidator};

/// Directory of the committed sample reviews.
pub(crate) fn data_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/admission")
}

pub(crate) fn sample(name: &str) -> Vec<u8> {
    std::fs::read(data_dir().join(name)).unwrap()
}

/// Sets one request per container (`cpu: <n>m`, n = 100 × (index + 1)) and warns about
/// containers without a name.
#[derive(Default)]
pub(crate) struct RequestSetter {
    pub calls: AtomicUsize,
}

impl PodMutator for RequestSetter {
    fn mutate(&self, req: &AdmissionRequest<Pod>) -> Result<Mutation, MutationError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let pod = req
            .object
            .as_ref()
            .ok_or_else(|| MutationError::new("no pod"))?;
        let spec = pod
            .spec
            .as_ref()
            .ok_or_else(|| MutationError::new("pod without spec"))?;
        let ops = spec
            .containers
            .iter()
            .enumerate()
            .map(|(i, _)| {
                PatchOperation::Add(AddOperation {
                    path: PointerBuf::from_tokens([
                        "spec".to_string(),
                        "containers".to_string(),
                        i.to_string(),
                        "resources".to_string(),
                        "requests".to_string(),
                        "cpu".to_string(),
                    ]),
                    value: json!(format!("{}m", 100 * (i + 1))),
                })
            })
            .collect();
        let mut m = Mutation::with_patch(ops);
        if spec.containers.len() > 1 {
            m = m.warn(format!("{} containers", spec.containers.len()));
        }
        Ok(m)
    }
}

/// Fails for pods in namespace `broken`, else changes nothing.
struct FailsInBroken;

impl PodMutator for FailsInBroken {
    fn mutate(&self, req: &AdmissionRequest<Pod>) -> Result<Mutation, MutationError> {
        if req.namespace.as_deref() == Some("broken") {
            Err(MutationError::new("VPA index unavailable"))
        } else {
            Ok(Mutation::unchanged())
        }
    }
}

/// Panics on every pod.
struct Panics;

impl PodMutator for Panics {
    fn mutate(&self, req: &AdmissionRequest<Pod>) -> Result<Mutation, MutationError> {
        panic!("mutator bug on {}", req.uid);
    }
}

/// Defaults a missing updatePolicy (as upstream), requires updateMode when updatePolicy is set,
/// and rejects minReplicas <= 0.
pub(crate) struct PolicyValidator;

impl VpaValidator for PolicyValidator {
    fn validate(&self, req: &AdmissionRequest<DynamicObject>) -> Verdict {
        let Some(vpa) = req.object.as_ref().and_then(typed) else {
            return Verdict::Deny {
                errors: vec!["object: Invalid value: cannot be read".into()],
                warnings: vec![],
            };
        };
        let Some(policy) = &vpa.spec.update_policy else {
            return Verdict::Allow(Mutation::with_patch(vec![PatchOperation::Add(
                AddOperation {
                    path: PointerBuf::from_tokens(["spec", "updatePolicy"]),
                    value: json!({"updateMode": "Recreate"}),
                },
            )]));
        };
        let mut errors = Vec::new();
        if policy.update_mode.is_none() {
            errors.push(
                "spec.updatePolicy.updateMode: Required value: updateMode is required if UpdatePolicy is used"
                    .to_string(),
            );
        }
        if let Some(n) = policy.min_replicas
            && n <= 0
        {
            errors.push(format!(
                "spec.updatePolicy.minReplicas: Invalid value: {n}: minReplicas has to be positive"
            ));
        }
        if errors.is_empty() {
            Verdict::Allow(Mutation::unchanged())
        } else {
            Verdict::Deny {
                errors,
                warnings: vec!["checked by the test validator".into()],
            }
        }
    }
}

pub(crate) fn hooks() -> Hooks {
    Hooks::new(
        Arc::new(RequestSetter::default()),
        Arc::new(PolicyValidator),
    )
}

fn review(r: &Reviewer, body: &[u8]) -> (Reviewed, Value) {
    let out = r.review(body).unwrap();
    let json: Value = serde_json::from_slice(&out.to_json()).unwrap();
    (out, json)
}

fn decode_patch(json: &Value) -> Value {
    let b64 = json["response"]["patch"].as_str().unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn with(body: &[u8], edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(body).unwrap();
    edit(&mut v);
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn pod_create_gets_the_mutators_patch_in_a_v1_review() {
    let r = Reviewer::new(hooks());
    let (out, json) = review(&r, &sample("pod-create.json"));
    assert_eq!(json["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(json["kind"], "AdmissionReview");
    let resp = &json["response"];
    assert_eq!(resp["uid"], "4f0b6a2e-3c1d-4d9a-9d0e-8a3c5b7e1f20");
    assert_eq!(resp["allowed"], true);
    assert_eq!(resp["patchType"], "JSONPatch");
    assert!(resp.get("status").is_none());
    assert_eq!(resp["warnings"], json!(["2 containers"]));
    assert_eq!(
        decode_patch(&json),
        json!([
            {"op": "add", "path": "/spec/containers/0/resources/requests/cpu", "value": "100m"},
            {"op": "add", "path": "/spec/containers/1/resources/requests/cpu", "value": "200m"},
        ])
    );
    assert_eq!(out.status, AdmissionStatus::Applied);
    assert_eq!(out.resource, AdmissionResource::Pod);
    assert!(out.pod_handled && !out.hook_error);
}

#[test]
fn the_patch_applies_to_the_pod_that_was_sent() {
    let r = Reviewer::new(hooks());
    let body = sample("pod-create.json");
    let (_, json) = review(&r, &body);
    let patch: json_patch::Patch = serde_json::from_value(decode_patch(&json)).unwrap();
    let original: Value = serde_json::from_slice(&body).unwrap();
    let mut pod = original["request"]["object"].clone();
    // The sidecar has `resources: {}`: `add` of a nested key needs the parent, which the real
    // patch builder creates; here only the first container has requests already.
    let first = json_patch::Patch(patch.0[..1].to_vec());
    json_patch::patch(&mut pod, &first).unwrap();
    assert_eq!(
        pod["spec"]["containers"][0]["resources"]["requests"]["cpu"],
        "100m"
    );
}

#[test]
fn a_mutator_without_patch_is_skipped() {
    let r = Reviewer::new(Hooks {
        pods: Some(Arc::new(FailsInBroken)),
        vpas: None,
    });
    let (out, json) = review(&r, &sample("pod-create.json"));
    assert_eq!(json["response"]["allowed"], true);
    assert!(json["response"].get("patch").is_none());
    assert!(json["response"].get("patchType").is_none());
    assert_eq!(out.status, AdmissionStatus::Skipped);
}

#[test]
fn a_mutator_error_admits_the_pod_unchanged_with_a_warning() {
    let r = Reviewer::new(Hooks {
        pods: Some(Arc::new(FailsInBroken)),
        vpas: None,
    });
    let body = with(&sample("pod-create.json"), |v| {
        v["request"]["namespace"] = json!("broken");
    });
    let (out, json) = review(&r, &body);
    assert_eq!(json["response"]["allowed"], true);
    assert!(json["response"].get("patch").is_none());
    let w = json["response"]["warnings"][0].as_str().unwrap();
    assert!(w.contains("VPA index unavailable"), "{w}");
    assert!(out.hook_error);
    assert_eq!(out.status, AdmissionStatus::Error);
    let metrics = AdmissionMetrics::unregistered();
    out.record(&metrics);
}

#[test]
fn a_mutator_panic_admits_the_pod_unchanged_with_a_warning() {
    let r = Reviewer::new(Hooks {
        pods: Some(Arc::new(Panics)),
        vpas: None,
    });
    let (out, json) = review(&r, &sample("pod-create.json"));
    assert_eq!(json["response"]["allowed"], true);
    assert!(
        json["response"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("panic")
    );
    assert!(out.hook_error);
}

#[test]
fn a_pod_that_does_not_decode_is_admitted_with_a_warning() {
    let setter = Arc::new(RequestSetter::default());
    let r = Reviewer::new(Hooks {
        pods: Some(setter.clone()),
        vpas: None,
    });
    for name in [
        "pod-containers-string.json",
        "pod-no-object.json",
        "pod-no-userinfo.json",
    ] {
        let (out, json) = review(&r, &sample(&format!("corpus/{name}")));
        assert_eq!(json["response"]["allowed"], true, "{name}");
        assert_eq!(
            json["response"]["uid"],
            "4f0b6a2e-3c1d-4d9a-9d0e-8a3c5b7e1f20"
        );
        let w = json["response"]["warnings"][0].as_str().unwrap();
        assert!(w.starts_with("vpa-admission: "), "{name}: {w}");
        assert!(w.chars().count() <= 256, "{name}: {w}");
        assert!(out.hook_error, "{name}");
    }
    assert_eq!(setter.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn pods_are_mutated_only_on_create_and_without_subresource() {
    let setter = Arc::new(RequestSetter::default());
    let r = Reviewer::new(Hooks {
        pods: Some(setter.clone()),
        vpas: None,
    });
    let update = with(&sample("pod-create.json"), |v| {
        v["request"]["operation"] = json!("UPDATE");
    });
    let (out, json) = review(&r, &update);
    assert_eq!(json["response"]["allowed"], true);
    assert!(json["response"].get("patch").is_none());
    assert_eq!(out.status, AdmissionStatus::Skipped);
    let (out, _) = review(&r, &sample("corpus/pod-subresource.json"));
    assert_eq!(out.resource, AdmissionResource::Unknown);
    assert_eq!(setter.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn vpa_create_without_update_policy_gets_the_defaulting_patch() {
    let r = Reviewer::new(hooks());
    let (out, json) = review(&r, &sample("vpa-create.json"));
    assert_eq!(
        json["response"]["uid"],
        "b3e9f1d2-7a4c-4e8b-9f60-1c2d3e4f5a6b"
    );
    assert_eq!(json["response"]["allowed"], true);
    assert_eq!(
        decode_patch(&json),
        json!([{"op": "add", "path": "/spec/updatePolicy", "value": {"updateMode": "Recreate"}}])
    );
    assert_eq!(out.resource, AdmissionResource::Vpa);
    assert_eq!(out.status, AdmissionStatus::Applied);
    assert!(!out.pod_handled);
}

#[test]
fn vpa_update_passes_the_old_object_to_the_validator() {
    struct SeesOld;
    impl VpaValidator for SeesOld {
        fn validate(&self, req: &AdmissionRequest<DynamicObject>) -> Verdict {
            let old = req
                .old_object
                .as_ref()
                .and_then(typed)
                .map(|o| o.spec.update_policy.is_some());
            let new = req
                .object
                .as_ref()
                .and_then(typed)
                .map(|o| o.spec.update_policy.is_some());
            Verdict::Allow(Mutation::unchanged().warn(format!("old {old:?} new {new:?}")))
        }
    }
    let r = Reviewer::new(Hooks {
        pods: None,
        vpas: Some(Arc::new(SeesOld)),
    });
    let (out, json) = review(&r, &sample("vpa-update.json"));
    assert_eq!(
        json["response"]["warnings"],
        json!(["old Some(false) new Some(true)"])
    );
    assert_eq!(out.status, AdmissionStatus::Skipped);
}

#[test]
fn an_invalid_vpa_is_denied_with_a_422_invalid_status() {
    let r = Reviewer::new(hooks());
    let body = with(&sample("vpa-create.json"), |v| {
        v["request"]["object"]["spec"]["updatePolicy"] = json!({"minReplicas": 0});
    });
    let (out, json) = review(&r, &body);
    let resp = &json["response"];
    assert_eq!(resp["allowed"], false);
    assert_eq!(resp["status"]["status"], "Failure");
    assert_eq!(resp["status"]["code"], 422);
    assert_eq!(resp["status"]["reason"], "Invalid");
    assert_eq!(
        resp["status"]["message"],
        "VerticalPodAutoscaler.autoscaling.k8s.io \"frontend\" is invalid: [\
         spec.updatePolicy.updateMode: Required value: updateMode is required if UpdatePolicy is used, \
         spec.updatePolicy.minReplicas: Invalid value: 0: minReplicas has to be positive]"
    );
    assert_eq!(resp["status"]["details"]["group"], "autoscaling.k8s.io");
    assert_eq!(resp["status"]["details"]["kind"], "VerticalPodAutoscaler");
    assert_eq!(resp["status"]["details"]["name"], "frontend");
    assert_eq!(
        resp["status"]["details"]["causes"],
        json!([
            {"reason": "FieldValueRequired", "field": "spec.updatePolicy.updateMode",
             "message": "Required value: updateMode is required if UpdatePolicy is used"},
            {"reason": "FieldValueInvalid", "field": "spec.updatePolicy.minReplicas",
             "message": "Invalid value: 0: minReplicas has to be positive"},
        ])
    );
    assert_eq!(resp["warnings"], json!(["checked by the test validator"]));
    assert!(resp.get("patch").is_none());
    assert_eq!(out.status, AdmissionStatus::Error);
    let metrics = AdmissionMetrics::unregistered();
    out.record(&metrics);
}

#[test]
fn a_single_error_is_not_bracketed() {
    let s = invalid_status(
        "VerticalPodAutoscaler",
        "x",
        &["spec.recommenders: Too many: 2: must have at most 1 item".into()],
    );
    assert_eq!(
        s.message,
        "VerticalPodAutoscaler.autoscaling.k8s.io \"x\" is invalid: spec.recommenders: Too many: 2: must have at most 1 item"
    );
    assert_eq!(s.details.unwrap().causes[0].reason, "FieldValueTooMany");
}

#[test]
fn a_vpa_that_does_not_decode_into_the_typed_api_still_reaches_the_validator() {
    // `minReplicas: "two"` is no integer: the validator sees the raw object and explains it.
    let r = Reviewer::new(hooks());
    let (out, json) = review(&r, &sample("corpus/vpa-bad-type.json"));
    assert_eq!(json["response"]["allowed"], false);
    assert_eq!(json["response"]["status"]["code"], 422);
    assert!(!out.hook_error);
}

#[test]
fn a_review_whose_object_is_not_an_object_is_admitted_with_a_warning() {
    let mut body: Value = serde_json::from_slice(&sample("corpus/vpa-bad-type.json")).unwrap();
    body["request"]["object"] = json!(["not", "an", "object"]);
    let (out, json) = review(&Reviewer::new(hooks()), &serde_json::to_vec(&body).unwrap());
    assert_eq!(json["response"]["allowed"], true);
    assert!(
        json["response"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("cannot read the VerticalPodAutoscaler"),
        "{json}"
    );
    assert!(out.hook_error);
}

#[test]
fn other_resources_and_missing_hooks_are_admitted_unchanged() {
    let r = Reviewer::new(hooks());
    let (out, json) = review(&r, &sample("configmap-create.json"));
    assert_eq!(
        json,
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
               "response": {"uid": "d5a1b3f4-9c6e-4a0d-b182-3e4f5a6b7c8d", "allowed": true}})
    );
    assert_eq!(out.resource, AdmissionResource::Unknown);
    let none = Reviewer::new(Hooks::default());
    for name in ["pod-create.json", "vpa-create.json"] {
        let (_, json) = review(&none, &sample(name));
        assert_eq!(json["response"]["allowed"], true);
        assert!(json["response"].get("patch").is_none());
    }
}

#[test]
fn bodies_that_are_not_v1_reviews_with_a_request_are_errors() {
    let r = Reviewer::new(hooks());
    type Check = fn(&ReviewError) -> bool;
    let cases: [(&str, Check); 12] = [
        ("truncated.json", |e| matches!(e, ReviewError::Json(_))),
        ("empty.json", |e| matches!(e, ReviewError::Json(_))),
        ("null.json", |e| matches!(e, ReviewError::Json(_))),
        ("array.json", |e| matches!(e, ReviewError::Json(_))),
        ("not-json.txt", |e| matches!(e, ReviewError::Json(_))),
        ("wrong-kind.json", |e| {
            *e == ReviewError::Kind("AdmissionReviewList".into())
        }),
        ("v1beta1.json", |e| {
            *e == ReviewError::ApiVersion("admission.k8s.io/v1beta1".into())
        }),
        ("no-request.json", |e| *e == ReviewError::MissingRequest),
        ("null-request.json", |e| *e == ReviewError::MissingRequest),
        ("request-array.json", |e| matches!(e, ReviewError::Json(_))),
        ("no-uid.json", |e| *e == ReviewError::MissingUid),
        ("trailing-garbage.json", |e| {
            matches!(e, ReviewError::Json(_))
        }),
    ];
    for (name, check) in cases {
        let err = r.review(&sample(&format!("corpus/{name}"))).unwrap_err();
        assert!(check(&err), "{name}: {err:?}");
    }
    let err = r.review(&sample("corpus/wrong-kind.json")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "kind is \"AdmissionReviewList\"; expected \"AdmissionReview\""
    );
    // The envelope pass skips the deep object; the typed pass hits serde_json's recursion
    // limit, so the pod is admitted unchanged with a warning (and the stack survives).
    let out = r.review(&sample("corpus/deep-nesting.json")).unwrap();
    assert!(out.response.allowed && out.hook_error);
    assert!(
        out.response.warnings[0].contains("recursion limit"),
        "{:?}",
        out.response.warnings
    );
}

/// The invariant of every body: an error (HTTP 400) or an allowed review carrying the uid, for
/// hooks that never deny.
fn check_invariant(r: &Reviewer, body: &[u8]) {
    match r.review(body) {
        Err(e) => assert!(!e.to_string().is_empty()),
        Ok(out) => {
            assert!(out.response.allowed);
            assert!(!out.response.uid.is_empty());
            let json: Value = serde_json::from_slice(&out.to_json()).unwrap();
            assert_eq!(json["response"]["uid"], json!(out.response.uid));
        }
    }
}

fn allowing_reviewer() -> Reviewer {
    struct AllowAll;
    impl VpaValidator for AllowAll {
        fn validate(&self, _: &AdmissionRequest<DynamicObject>) -> Verdict {
            Verdict::Allow(Mutation::unchanged())
        }
    }
    Reviewer::new(Hooks::new(
        Arc::new(RequestSetter::default()),
        Arc::new(AllowAll),
    ))
}

#[test]
fn the_committed_corpus_keeps_the_invariant() {
    let r = allowing_reviewer();
    let mut n = 0;
    for entry in std::fs::read_dir(data_dir().join("corpus")).unwrap() {
        let body = std::fs::read(entry.unwrap().path()).unwrap();
        check_invariant(&r, &body);
        n += 1;
    }
    assert!(n >= 20, "corpus has {n} files");
}

pub(crate) fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "[a-zA-Z0-9 :/._-]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("AdmissionReview"),
            Just("admission.k8s.io/v1"),
            Just("pods"),
            Just("verticalpodautoscalers"),
            Just("autoscaling.k8s.io"),
            Just("CREATE"),
            Just("UPDATE"),
        ]
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        let keys = prop_oneof![
            Just("kind".to_string()),
            Just("apiVersion".to_string()),
            Just("request".to_string()),
            Just("uid".to_string()),
            Just("resource".to_string()),
            Just("group".to_string()),
            Just("operation".to_string()),
            Just("object".to_string()),
            Just("oldObject".to_string()),
            Just("spec".to_string()),
            Just("containers".to_string()),
            Just("userInfo".to_string()),
            "[a-z]{1,6}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A real review with one field replaced by an arbitrary value.
pub(crate) fn arb_mutated_sample() -> impl Strategy<Value = Vec<u8>> {
    let pointers = prop_oneof![
        Just("/kind"),
        Just("/apiVersion"),
        Just("/request"),
        Just("/request/uid"),
        Just("/request/resource"),
        Just("/request/resource/resource"),
        Just("/request/operation"),
        Just("/request/object"),
        Just("/request/object/spec"),
        Just("/request/object/spec/containers"),
        Just("/request/object/spec/containers/0/resources"),
        Just("/request/object/metadata"),
        Just("/request/userInfo"),
    ];
    let bases = prop_oneof![Just("pod-create.json"), Just("vpa-create.json")];
    (bases, pointers, arb_json()).prop_map(|(base, ptr, value)| {
        let mut v: Value = serde_json::from_slice(&sample(base)).unwrap();
        if let Some(slot) = v.pointer_mut(ptr) {
            *slot = value;
        }
        serde_json::to_vec(&v).unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        check_invariant(&allowing_reviewer(), &body);
    }

    #[test]
    fn arbitrary_json_never_panics(value in arb_json()) {
        check_invariant(&allowing_reviewer(), &serde_json::to_vec(&value).unwrap());
    }

    #[test]
    fn mutated_real_reviews_never_panic(body in arb_mutated_sample()) {
        check_invariant(&allowing_reviewer(), &body);
    }

    #[test]
    fn corpus_prefixes_never_panic(cut in 0usize..4000, which in 0usize..2) {
        let body = sample(["pod-create.json", "vpa-create.json"][which]);
        let cut = cut.min(body.len());
        check_invariant(&allowing_reviewer(), &body[..cut]);
    }
}
