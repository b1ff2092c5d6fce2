#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Our CRDs against upstream's, field by field.
//!
//! For both CRDs (VerticalPodAutoscaler and VerticalPodAutoscalerCheckpoint), in both upstream
//! copies (the v1.7.1 release and master, in `tests/data/upstream-crds/`), this walks every node
//! of the v1 `openAPIV3Schema` and lists every difference:
//!
//! * a property, `items`, `additionalProperties` or `anyOf` branch that one side has and the
//!   other lacks (extra properties are failures too: the shape must be the same);
//! * any keyword whose value differs, among them `type`, `enum` (values and order), `format`,
//!   `required` (as a set), `nullable`, `pattern`, `minimum`, `default`,
//!   `x-kubernetes-preserve-unknown-fields`, `x-kubernetes-int-or-string`,
//!   `x-kubernetes-map-type`, `x-kubernetes-list-type` and `x-kubernetes-validations` (rules and
//!   messages), or a keyword present on one side only.
//!
//! Only `description` is skipped: our descriptions are our own words. Outside the schema it
//! compares names, scope, the `api-approved.kubernetes.io` annotation, the list of versions with
//! their served/storage/deprecation settings, printer columns and subresources.
//!
//! Not compared: the schema of the retired `v1beta2` version (ours repeats v1's; the version is
//! not served, so its schema is never used) and controller-gen's version annotation.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// Keywords that hold sub-schemas, walked rather than compared.
const NESTING_KEYWORDS: [&str; 4] = ["properties", "items", "additionalProperties", "anyOf"];

/// Keywords that may differ.
const IGNORED_KEYWORDS: [&str; 1] = ["description"];

fn copies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/upstream-crds")
}

fn reference_dir() -> PathBuf {
    match std::env::var_os("VPA_REFERENCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference"),
    }
}

/// The CRDs in a YAML file, by name.
fn crds_in(path: &Path) -> BTreeMap<String, Value> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| Value::deserialize(document).unwrap())
        .filter(|document| document["kind"] == "CustomResourceDefinition")
        .map(|crd| (crd["metadata"]["name"].as_str().unwrap().to_owned(), crd))
        .collect()
}

fn ours() -> BTreeMap<String, Value> {
    vpa_core::api::crds()
        .iter()
        .map(|crd| {
            let value = serde_json::to_value(crd).unwrap();
            (
                value["metadata"]["name"].as_str().unwrap().to_owned(),
                value,
            )
        })
        .collect()
}

/// Equality of JSON values where numbers compare by value (`1` equals `1.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, x)| y.get(key).is_some_and(|y| same(x, y)))
        }
        _ => a == b,
    }
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .map(|map| map.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

/// Compares two schema nodes at `path`, recursing into sub-schemas; returns how many nodes it
/// visited.
fn diff_schema(path: &str, upstream: &Value, ours: &Value, problems: &mut Vec<String>) -> usize {
    let mut visited = 1;
    for keyword in keys(upstream).union(&keys(ours)) {
        if IGNORED_KEYWORDS.contains(keyword) || NESTING_KEYWORDS.contains(keyword) {
            continue;
        }
        match (upstream.get(*keyword), ours.get(*keyword)) {
            (Some(_), None) => problems.push(format!("{path}: `{keyword}` is missing in ours")),
            (None, Some(value)) => {
                problems.push(format!("{path}: `{keyword}: {value}` is not in upstream"));
            }
            (Some(up), Some(our)) => {
                let equal = if *keyword == "required" {
                    let set = |value: &Value| -> BTreeSet<String> {
                        value
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(ToString::to_string)
                            .collect()
                    };
                    set(up) == set(our)
                } else {
                    same(up, our)
                };
                if !equal {
                    problems.push(format!(
                        "{path}: `{keyword}` is {our} in ours, {up} upstream"
                    ));
                }
            }
            (None, None) => {}
        }
    }

    // properties
    let empty = serde_json::Map::new();
    let upstream_properties = upstream
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let our_properties = ours
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for name in upstream_properties
        .keys()
        .chain(our_properties.keys())
        .collect::<BTreeSet<_>>()
    {
        let child = if path.is_empty() {
            name.clone()
        } else {
            format!("{path}.{name}")
        };
        match (upstream_properties.get(name), our_properties.get(name)) {
            (Some(up), Some(our)) => visited += diff_schema(&child, up, our, problems),
            (Some(_), None) => problems.push(format!("{child}: missing in ours")),
            (None, Some(_)) => problems.push(format!("{child}: extra in ours, not in upstream")),
            (None, None) => {}
        }
    }

    // items, additionalProperties
    for (keyword, suffix) in [("items", "[]"), ("additionalProperties", "{}")] {
        let child = format!("{path}{suffix}");
        match (upstream.get(keyword), ours.get(keyword)) {
            (Some(up @ Value::Object(_)), Some(our @ Value::Object(_))) => {
                visited += diff_schema(&child, up, our, problems);
            }
            (Some(up), Some(our)) if !same(up, our) => {
                problems.push(format!(
                    "{path}: `{keyword}` is {our} in ours, {up} upstream"
                ));
            }
            (Some(_), None) => problems.push(format!("{child}: `{keyword}` is missing in ours")),
            (None, Some(_)) => problems.push(format!("{child}: `{keyword}` is not in upstream")),
            _ => {}
        }
    }

    // anyOf
    match (upstream.get("anyOf"), ours.get("anyOf")) {
        (Some(Value::Array(up)), Some(Value::Array(our))) if up.len() == our.len() => {
            for (i, (up, our)) in up.iter().zip(our).enumerate() {
                visited += diff_schema(&format!("{path}.anyOf[{i}]"), up, our, problems);
            }
        }
        (None, None) => {}
        (up, our) => problems.push(format!(
            "{path}: `anyOf` is {} in ours, {} upstream",
            our.map_or("absent".into(), ToString::to_string),
            up.map_or("absent".into(), ToString::to_string)
        )),
    }
    visited
}

fn version<'a>(crd: &'a Value, name: &str) -> Option<&'a Value> {
    crd["spec"]["versions"]
        .as_array()?
        .iter()
        .find(|version| version["name"] == name)
}

/// Everything about one CRD that must equal upstream's; returns the schema nodes visited.
fn diff_crd(name: &str, upstream: &Value, ours: &Value, problems: &mut Vec<String>) -> usize {
    let check = |problems: &mut Vec<String>, what: &str, up: &Value, our: &Value| {
        if !same(up, our) {
            problems.push(format!("{name}: {what} is {our} in ours, {up} upstream"));
        }
    };
    let approved = "/metadata/annotations/api-approved.kubernetes.io";
    check(
        problems,
        "annotation api-approved.kubernetes.io",
        upstream.pointer(approved).unwrap_or(&Value::Null),
        ours.pointer(approved).unwrap_or(&Value::Null),
    );
    let spec_keys = |crd: &Value| {
        keys(&crd["spec"])
            .into_iter()
            .map(Value::from)
            .collect::<Vec<_>>()
    };
    check(
        problems,
        "the set of spec fields",
        &Value::from(spec_keys(upstream)),
        &Value::from(spec_keys(ours)),
    );
    for field in [
        "group",
        "scope",
        "names",
        "conversion",
        "preserveUnknownFields",
    ] {
        check(
            problems,
            field,
            &upstream["spec"][field],
            &ours["spec"][field],
        );
    }

    let version_settings = |crd: &Value| -> Value {
        crd["spec"]["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|version| {
                serde_json::json!([
                    version["name"],
                    version["served"],
                    version["storage"],
                    version["deprecated"],
                    version["deprecationWarning"],
                ])
            })
            .collect()
    };
    check(
        problems,
        "versions [name, served, storage, deprecated, deprecationWarning]",
        &version_settings(upstream),
        &version_settings(ours),
    );
    for version_name in upstream["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|version| version["name"].as_str())
    {
        let (Some(up), Some(our)) = (version(upstream, version_name), version(ours, version_name))
        else {
            continue; // Reported with the version settings.
        };
        for field in [
            "additionalPrinterColumns",
            "subresources",
            "selectableFields",
        ] {
            check(
                problems,
                &format!("{version_name} {field}"),
                &up[field],
                &our[field],
            );
        }
        if our.pointer("/schema/openAPIV3Schema/type") != Some(&Value::from("object")) {
            problems.push(format!(
                "{name}: version {version_name} has no object schema"
            ));
        }
    }

    let schema = |crd: &Value| version(crd, "v1").map(|v| v["schema"]["openAPIV3Schema"].clone());
    match (schema(upstream), schema(ours)) {
        (Some(up), Some(our)) => {
            let mut schema_problems = Vec::new();
            let visited = diff_schema("", &up, &our, &mut schema_problems);
            problems.extend(
                schema_problems.into_iter().map(|problem| {
                    format!("{name} v1 schema: {}", problem.trim_start_matches(": "))
                }),
            );
            visited
        }
        _ => {
            problems.push(format!("{name}: no v1 schema"));
            0
        }
    }
}

fn check_against(upstream_file: &Path) {
    let upstream = crds_in(upstream_file);
    let ours = ours();
    assert_eq!(
        upstream.keys().collect::<Vec<_>>(),
        ours.keys().collect::<Vec<_>>(),
        "the set of CRDs differs from {}",
        upstream_file.display()
    );
    let mut problems = Vec::new();
    for (name, up) in &upstream {
        let visited = diff_crd(name, up, &ours[name], &mut problems);
        // Guard against a vacuous pass: the VPA schema has well over 100 nodes, the checkpoint's
        // about 25.
        assert!(visited > 20, "{name}: only {visited} schema nodes compared");
    }
    assert!(
        problems.is_empty(),
        "{} difference(s) from {}:\n{}",
        problems.len(),
        upstream_file.display(),
        problems.join("\n")
    );
}

#[test]
fn matches_upstream_v1_7_1() {
    check_against(&copies_dir().join("vpa-v1-crd-gen.v1.7.1.yaml"));
}

#[test]
fn matches_upstream_master() {
    check_against(&copies_dir().join("vpa-v1-crd-gen.yaml"));
}

#[test]
fn copies_match_the_reference() {
    let reference = reference_dir().join("crds");
    for file in ["vpa-v1-crd-gen.v1.7.1.yaml", "vpa-v1-crd-gen.yaml"] {
        let original = reference.join(file);
        if !original.exists() {
            eprintln!(
                "note: {} is absent; testing the copies only",
                original.display()
            );
            continue;
        }
        assert_eq!(
            crds_in(&copies_dir().join(file)),
            crds_in(&original),
            "tests/data/upstream-crds/{file} no longer matches {}; refresh the copy",
            original.display()
        );
    }
}

#[test]
fn the_diff_finds_differences() {
    // The comparison itself must notice a changed keyword, a missing and an extra property.
    let upstream = serde_json::json!({
        "type": "object",
        "required": ["a"],
        "properties": {
            "a": {"type": "integer", "minimum": 1, "description": "x"},
            "b": {"type": "string"}
        }
    });
    let ours = serde_json::json!({
        "type": "object",
        "required": ["a"],
        "properties": {
            "a": {"type": "integer", "minimum": 1.0, "format": "int32", "description": "y"},
            "c": {"type": "string"}
        }
    });
    let mut problems = Vec::new();
    diff_schema("", &upstream, &ours, &mut problems);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(
        problems.iter().any(|p| p.starts_with("a: `format")),
        "{problems:#?}"
    );
    assert!(
        problems.iter().any(|p| p == "b: missing in ours"),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p == "c: extra in ours, not in upstream"),
        "{problems:#?}"
    );
}

#[test]
fn the_diff_notices_changes_to_our_real_schema() {
    let upstream = crds_in(&copies_dir().join("vpa-v1-crd-gen.v1.7.1.yaml"));
    let name = "verticalpodautoscalers.autoscaling.k8s.io";
    let mut ours = ours().remove(name).unwrap();
    let schema = ours
        .pointer_mut("/spec/versions/0/schema/openAPIV3Schema/properties")
        .unwrap();
    schema
        .pointer_mut("/spec/properties/updatePolicy/properties/updateMode/enum")
        .and_then(Value::as_array_mut)
        .unwrap()
        .pop();
    schema
        .pointer_mut("/status/properties")
        .and_then(Value::as_object_mut)
        .unwrap()
        .remove("observedGeneration");
    schema
        .pointer_mut("/spec/properties/targetRef")
        .and_then(Value::as_object_mut)
        .unwrap()
        .insert("nullable".into(), Value::Bool(true));
    let mut problems = Vec::new();
    diff_crd(name, &upstream[name], &ours, &mut problems);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    for expected in [
        "spec.updatePolicy.updateMode: `enum`",
        "status.observedGeneration: missing in ours",
        "spec.targetRef: `nullable: true` is not in upstream",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{expected}: {problems:#?}"
        );
    }
}
