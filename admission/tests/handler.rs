//! Handler tests of the real pod mutator ([`IndexMutator`] over a hand-filled [`VpaIndex`])
//! and VPA validator ([`Validator`]) through the router, driven by full AdmissionReview JSON
//! in `tests/data/admission/mutate/`:
//!
//! * `pods/<case>/`: `review.json` (a pod CREATE review as the API server sends it),
//!   `vpa.json` (one VPA, or a `List` of them), optionally `limitrange.json` (one LimitRange
//!   or a `List`), and `case.json`: the resolved selector of each VPA (what the target
//!   resolver would find), optional owner records, scalable kinds and patch settings, and the
//!   expectation: whether there is a patch, every container's resources after applying it,
//!   the annotations it adds, and optionally the exact operations, paths that must occur and
//!   the warnings.
//! * `vpas/<case>/`: `review.json` (a VPA CREATE or UPDATE review) and `case.json` with the
//!   feature gates and the expected verdict (the exact 422 message and causes, or the
//!   defaulting patch and warnings).
//!
//! Each pod case checks that the patch applies cleanly to `request.object` with `json_patch`,
//! that the patched pod still reads as a pod, that it has the expected resources and
//! annotations, and that nothing else changed. Expected values were worked out from the
//! behaviour spec (upstream §3.3–§3.7 and the conformance rows of §5), not from this code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use http_body_util::BodyExt as _;
use k8s_openapi::api::core::v1::{LimitRange, Pod};
use kube::core::admission::{AdmissionRequest, AdmissionReview};
use serde_json::{Map, Value, json};
use tower::ServiceExt as _;
use vpa_admission::hooks::{Hooks, PodMutator};
use vpa_admission::metrics::AdmissionMetrics;
use vpa_admission::mutator::IndexMutator;
use vpa_admission::review::Reviewer;
use vpa_admission::server::router;
use vpa_admission::validator::Validator;
use vpa_core::api::VerticalPodAutoscaler;
use vpa_core::features::FeatureGates;
use vpa_core::labels::Selector;
use vpa_core::matcher::ControllerRef;
use vpa_core::patch::{PatchConfig, containers_resources};
use vpa_core::runtime::vpa_index::{VpaIndex, record_of};

/// `tests/data/admission/mutate`.
fn data_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/admission/mutate")
}

/// The case directories under `kind`, sorted by name.
fn case_dirs(kind: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(data_root().join(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The objects of a file holding one object or a `List`.
fn objects(v: Value) -> Vec<Value> {
    match v.get("kind").and_then(Value::as_str) {
        Some(k) if k.ends_with("List") => v["items"].as_array().cloned().unwrap_or_default(),
        _ => vec![v],
    }
}

fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// The router over the real hooks.
fn app(index: VpaIndex, config: PatchConfig, gates: FeatureGates) -> Router {
    let hooks = Hooks::new(
        Arc::new(IndexMutator::new(index, config)),
        Arc::new(Validator::new(gates)),
    );
    router(
        Arc::new(Reviewer::new(hooks)),
        Arc::new(AdmissionMetrics::unregistered()),
        Duration::from_secs(5),
    )
}

/// Posts a review body; the HTTP status and the decoded response review.
async fn post(app: Router, body: Vec<u8>) -> (StatusCode, Value) {
    let req = Request::post("/")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "response is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, json)
}

/// The index a pod case describes: its VPAs with their resolved selectors, owner records,
/// scalable kinds and LimitRanges.
fn index_of(dir: &Path, case: &Value, namespace: &str) -> VpaIndex {
    let index = VpaIndex::new();
    for v in objects(read_json(&dir.join("vpa.json"))) {
        let vpa: VerticalPodAutoscaler = serde_json::from_value(v).unwrap();
        let record = record_of(vpa).expect("VPA with namespace and name");
        let id = record.id.clone();
        let labels = case["selectors"][&*id.name]
            .as_object()
            .unwrap_or_else(|| panic!("{}: no selector for VPA {}", dir.display(), id.name));
        let selector = Selector::new(
            labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str().unwrap())),
            [],
        )
        .unwrap();
        let mut m = index.write();
        m.upsert_vpa(record);
        m.set_selector(&id, Some(selector));
    }
    for o in case["owners"].as_array().into_iter().flatten() {
        let r = |v: &Value| {
            ControllerRef::new(v["kind"].as_str().unwrap(), v["name"].as_str().unwrap())
        };
        index
            .write()
            .set_owner(namespace, r(o), Some(r(&o["owner"])));
    }
    for k in case["scalableKinds"].as_array().into_iter().flatten() {
        index.write().mark_scalable(k.as_str().unwrap());
    }
    let lr_path = dir.join("limitrange.json");
    if lr_path.exists() {
        let lrs: Vec<LimitRange> = objects(read_json(&lr_path))
            .into_iter()
            .map(|v| serde_json::from_value(v).unwrap())
            .collect();
        index.set_limit_ranges(namespace, lrs);
    }
    index
}

/// Collects the failures of one case.
#[derive(Default)]
struct Check {
    failures: Vec<String>,
}

impl Check {
    fn ok(&mut self, cond: bool, what: impl FnOnce() -> String) {
        if !cond {
            self.failures.push(what());
        }
    }

    fn eq(&mut self, what: &str, got: &Value, want: &Value) {
        self.ok(got == want, || {
            format!("{what}:\n      got  {got}\n      want {want}")
        });
    }
}

fn warnings_of(response: &Value) -> Vec<String> {
    response["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| w.as_str().unwrap_or_default().to_string())
        .collect()
}

fn decode_patch(response: &Value) -> Option<Value> {
    let b64 = response["patch"].as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("patch is base64");
    Some(serde_json::from_slice(&bytes).expect("patch is JSON"))
}

/// Runs one pod case; the failures.
async fn run_pod_case(dir: &Path) -> Vec<String> {
    let body = std::fs::read(dir.join("review.json")).unwrap();
    let review: Value = serde_json::from_slice(&body).unwrap();
    let case = read_json(&dir.join("case.json"));
    let expect = &case["expect"];
    let request = &review["request"];
    let namespace = request["namespace"].as_str().unwrap();
    let original = &request["object"];
    let config = PatchConfig {
        cpu_startup_boost: flag(&case["config"], "cpuStartupBoost"),
        max_allowed_cpu_boost: None,
    };
    let app = app(
        index_of(dir, &case, namespace),
        config,
        FeatureGates::default(),
    );
    let (status, out) = post(app, body).await;
    let mut c = Check::default();
    c.ok(status == StatusCode::OK, || format!("HTTP status {status}"));
    c.eq(
        "apiVersion",
        &out["apiVersion"],
        &json!("admission.k8s.io/v1"),
    );
    c.eq("kind", &out["kind"], &json!("AdmissionReview"));
    let response = &out["response"];
    c.eq("uid", &response["uid"], &request["uid"]);
    c.eq(
        "allowed (a pod is never denied)",
        &response["allowed"],
        &json!(true),
    );
    c.ok(response.get("status").is_none(), || {
        format!("unexpected status {}", response["status"])
    });

    // The patch, applied as the API server would.
    let patch = decode_patch(response);
    let patched = match (&patch, flag(expect, "patched")) {
        (Some(ops), true) => {
            c.eq("patchType", &response["patchType"], &json!("JSONPatch"));
            let parsed: json_patch::Patch = match serde_json::from_value(ops.clone()) {
                Ok(p) => p,
                Err(e) => return vec![format!("the patch is not RFC 6902 ({e}): {ops}")],
            };
            let mut doc = original.clone();
            if let Err(e) = json_patch::patch(&mut doc, &parsed) {
                return vec![format!("the patch does not apply ({e}): {ops}")];
            }
            doc
        }
        (None, false) => {
            c.ok(response.get("patchType").is_none(), || {
                "patchType without a patch".into()
            });
            original.clone()
        }
        (Some(ops), false) => {
            c.failures.push(format!("expected no patch, got {ops}"));
            return c.failures;
        }
        (None, true) => {
            c.failures.push(format!(
                "expected a patch, got none (warnings {:?})",
                warnings_of(response)
            ));
            return c.failures;
        }
    };
    if let (Some(ops), Some(want)) = (&patch, expect.get("operations")) {
        c.eq("operations", ops, want);
    }
    let paths: Vec<&str> = patch
        .as_ref()
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|op| op["path"].as_str())
        .collect();
    for want in expect["paths"].as_array().into_iter().flatten() {
        let want = want.as_str().unwrap();
        c.ok(paths.contains(&want), || {
            format!("no operation at {want}; paths {paths:?}")
        });
    }

    // Resources of every container.
    match containers_resources(&patched) {
        Ok(r) => c.ok(
            r.len() == expect["containers"].as_array().map_or(0, Vec::len),
            || format!("{} containers after the patch", r.len()),
        ),
        Err(e) => c
            .failures
            .push(format!("the patched pod does not read as a pod: {e}")),
    }
    let containers = patched["spec"]["containers"].as_array().unwrap();
    for (i, want) in expect["containers"].as_array().unwrap().iter().enumerate() {
        let Some(got) = containers.get(i) else {
            c.failures.push(format!("no container {i}"));
            continue;
        };
        c.eq(
            &format!("containers[{i}].name"),
            &got["name"],
            &want["name"],
        );
        c.eq(
            &format!("containers[{i}] ({}) resources", want["name"]),
            got.get("resources").unwrap_or(&Value::Null),
            &want["resources"],
        );
    }

    // Annotations: the original ones plus (or replaced by) the expected ones.
    let mut annotations = original["metadata"]["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (k, v) in expect["annotations"].as_object().unwrap() {
        annotations.insert(k.clone(), v.clone());
    }
    let got = patched["metadata"]
        .get("annotations")
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    c.eq("annotations", &got, &Value::Object(annotations));

    // Nothing else changed.
    let mut rest = patched.clone();
    match original["metadata"].get("annotations") {
        Some(a) => rest["metadata"]["annotations"] = a.clone(),
        None => {
            rest["metadata"]
                .as_object_mut()
                .unwrap()
                .remove("annotations");
        }
    }
    let rest_containers = rest["spec"]["containers"].as_array_mut().unwrap();
    for (i, orig) in original["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let Some(obj) = rest_containers.get_mut(i).and_then(Value::as_object_mut) else {
            continue;
        };
        match orig.get("resources") {
            Some(r) => {
                obj.insert("resources".into(), r.clone());
            }
            None => {
                obj.remove("resources");
            }
        }
    }
    c.ok(rest == *original, || {
        "the patch changed more than container resources and annotations".into()
    });

    // Warnings.
    let warnings = warnings_of(response);
    if let Some(want) = expect.get("warningsContain") {
        let all = warnings.join("\n");
        for w in want.as_array().unwrap() {
            let w = w.as_str().unwrap();
            c.ok(all.contains(w), || {
                format!("no warning contains {w:?}; warnings {warnings:?}")
            });
        }
    } else {
        let want: Vec<String> = expect
            .get("warnings")
            .map(|w| serde_json::from_value(w.clone()).unwrap())
            .unwrap_or_default();
        c.ok(warnings == want, || {
            format!("warnings {warnings:?}, want {want:?}")
        });
    }
    c.failures
}

/// Runs one VPA case; the failures.
async fn run_vpa_case(dir: &Path) -> Vec<String> {
    let body = std::fs::read(dir.join("review.json")).unwrap();
    let review: Value = serde_json::from_slice(&body).unwrap();
    let case = read_json(&dir.join("case.json"));
    let expect = &case["expect"];
    let gates = FeatureGates {
        cpu_startup_boost: flag(&case["gates"], "cpuStartupBoost"),
        in_place: flag(&case["gates"], "inPlace"),
        per_vpa_config: flag(&case["gates"], "perVpaConfig"),
    };
    let app = app(VpaIndex::new(), PatchConfig::default(), gates);
    let (status, out) = post(app, body).await;
    let mut c = Check::default();
    c.ok(status == StatusCode::OK, || format!("HTTP status {status}"));
    let response = &out["response"];
    c.eq("uid", &response["uid"], &review["request"]["uid"]);
    c.eq("allowed", &response["allowed"], &expect["allowed"]);
    if expect["allowed"] == json!(false) {
        let s = &response["status"];
        c.eq("status.status", &s["status"], &json!("Failure"));
        c.eq("status.code", &s["code"], &expect["code"]);
        c.eq("status.reason", &s["reason"], &expect["reason"]);
        c.eq("status.message", &s["message"], &expect["message"]);
        let d = &s["details"];
        c.eq("details.kind", &d["kind"], &json!("VerticalPodAutoscaler"));
        c.eq("details.group", &d["group"], &json!("autoscaling.k8s.io"));
        c.eq(
            "details.name",
            &d["name"],
            &review["request"]["object"]["metadata"]["name"],
        );
        if let Some(want) = expect.get("causes") {
            c.eq("details.causes", &d["causes"], want);
        }
        c.ok(response.get("patch").is_none(), || {
            "a denial carries a patch".into()
        });
    } else {
        c.ok(response.get("status").is_none(), || {
            format!("unexpected status {}", response["status"])
        });
        let patch = decode_patch(response);
        c.eq(
            "patch",
            patch.as_ref().unwrap_or(&Value::Null),
            &expect["patch"],
        );
        if let (Some(ops), Some(want)) = (&patch, expect.get("defaulted")) {
            c.eq("patchType", &response["patchType"], &json!("JSONPatch"));
            let parsed: json_patch::Patch = serde_json::from_value(ops.clone()).unwrap();
            let mut doc = review["request"]["object"].clone();
            match json_patch::patch(&mut doc, &parsed) {
                Ok(()) => c.eq(
                    "defaulted spec.updatePolicy",
                    &doc["spec"]["updatePolicy"],
                    want,
                ),
                Err(e) => c.failures.push(format!("the patch does not apply: {e}")),
            }
        }
    }
    let want: Vec<String> = expect
        .get("warnings")
        .map(|w| serde_json::from_value(w.clone()).unwrap())
        .unwrap_or_default();
    let warnings = warnings_of(response);
    c.ok(warnings == want, || {
        format!("warnings {warnings:?}, want {want:?}")
    });
    c.failures
}

/// Runs every case of `kind`, failing with all failures listed.
async fn run_all<F, Fut>(kind: &str, min_cases: usize, run: F)
where
    F: Fn(PathBuf) -> Fut,
    Fut: Future<Output = Vec<String>>,
{
    let dirs = case_dirs(kind);
    assert!(
        dirs.len() >= min_cases,
        "{} {kind} cases found, expected at least {min_cases}",
        dirs.len()
    );
    let mut report = String::new();
    for dir in &dirs {
        let failures = run(dir.clone()).await;
        if !failures.is_empty() {
            let name = dir.file_name().unwrap().to_string_lossy();
            let _ = writeln!(report, "{kind}/{name}:");
            for f in failures {
                let _ = writeln!(report, "    {f}");
            }
        }
    }
    assert!(report.is_empty(), "failing cases:\n{report}");
}

#[tokio::test]
async fn pod_reviews_get_patches_that_apply_and_give_the_expected_resources() {
    run_all("pods", 25, |dir| async move { run_pod_case(&dir).await }).await;
}

#[tokio::test]
async fn vpa_reviews_are_validated_and_defaulted_with_upstreams_messages() {
    run_all("vpas", 8, |dir| async move { run_vpa_case(&dir).await }).await;
}

/// A VPA for Deployment `app-<i>` recommending `cpu <i+1>0m` for container `web`.
fn numbered_vpa(i: usize) -> VerticalPodAutoscaler {
    serde_json::from_value(json!({
        "apiVersion": "autoscaling.k8s.io/v1",
        "kind": "VerticalPodAutoscaler",
        "metadata": {"name": format!("app-{i}"), "namespace": "shop",
                     "creationTimestamp": "2025-06-01T10:05:00Z"},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": format!("app-{i}")},
                 "updatePolicy": {"updateMode": "Recreate"}},
        "status": {"recommendation": {"containerRecommendations": [
            {"containerName": "web", "target": {"cpu": format!("{}0m", i + 1), "memory": "128Mi"}}
        ]}}
    }))
    .unwrap()
}

#[test]
fn index_to_patch_is_fast_with_a_hundred_vpas_in_the_namespace() {
    let dir = data_root().join("pods/container-limitrange-limit-ratio");
    let case = read_json(&dir.join("case.json"));
    let index = index_of(&dir, &case, "shop");
    for i in 0..100 {
        let record = record_of(numbered_vpa(i)).unwrap();
        let id = record.id.clone();
        let app = format!("app-{i}");
        let mut m = index.write();
        m.upsert_vpa(record);
        m.set_selector(
            &id,
            Some(Selector::new([("app", app.as_str())], []).unwrap()),
        );
    }
    assert_eq!(index.read().len(), 101);
    let body = std::fs::read(dir.join("review.json")).unwrap();
    let review: AdmissionReview<Pod> = serde_json::from_slice(&body).unwrap();
    let req: AdmissionRequest<Pod> = review.try_into().unwrap();
    let mutator = IndexMutator::new(index, PatchConfig::default());
    let reviewer = Reviewer::new(Hooks::new(
        Arc::new(mutator.clone()),
        Arc::new(Validator::default()),
    ));

    let median = |mut f: Box<dyn FnMut()>| {
        let mut times: Vec<Duration> = (0..31)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect();
        times.sort();
        times[times.len() / 2]
    };
    let mutate = median(Box::new(|| {
        let m = mutator.mutate(&req).unwrap();
        assert!(!m.patch.0.is_empty());
    }));
    let whole = median(Box::new(|| {
        let r = reviewer.review(&body).unwrap();
        assert!(r.response.patch.is_some());
    }));
    // A sanity bound for a debug build on a shared machine, not a benchmark.
    assert!(
        mutate < Duration::from_millis(5),
        "index -> patch took {mutate:?}"
    );
    assert!(
        whole < Duration::from_millis(5),
        "decode -> index -> patch -> encode took {whole:?}"
    );
}
