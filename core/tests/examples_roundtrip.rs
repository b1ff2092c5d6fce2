#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every `VerticalPodAutoscaler` in upstream's example manifests must load into our type and
//! serialise back to the same JSON.
//!
//! The examples are read from the copies in `tests/data/upstream-examples/` (so the test works
//! on its own), and also from the shared reference folder when it is present: files found only
//! there are tested as well, and a copy that no longer matches its original fails the test.
//! The reference folder is `$VPA_REFERENCE_DIR`, else `shared/reference` beside the workspace.
//!
//! One normalisation is applied to the input: a quantity written as a bare YAML number
//! (`cpu: 1`) is expected back as a string (`"1"`). k8s-openapi's `Quantity` holds its text, and
//! upstream's Go client writes quantities as strings too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use vpa_core::api::VerticalPodAutoscaler;

fn copies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/upstream-examples")
}

fn reference_dir() -> PathBuf {
    match std::env::var_os("VPA_REFERENCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference"),
    }
}

/// The YAML files in `dir`, by file name.
fn yaml_files(dir: &Path) -> BTreeMap<String, PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .map(|path| {
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                path,
            )
        })
        .collect()
}

/// The non-empty documents of a multi-document YAML file, as JSON.
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| {
            Value::deserialize(document)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        })
        .filter(|document| !document.is_null())
        .collect()
}

fn is_vpa(document: &Value) -> bool {
    document["kind"] == "VerticalPodAutoscaler"
        && document["apiVersion"]
            .as_str()
            .is_some_and(|version| version.starts_with("autoscaling.k8s.io/"))
}

/// Turns bare numbers at the quantity positions of a VPA into strings.
fn quantities_as_strings(vpa: &mut Value) {
    fn stringify(value: &mut Value) {
        if let Value::Number(number) = value {
            *value = Value::String(number.to_string());
        }
    }
    fn resource_list(list: &mut Value) {
        if let Value::Object(map) = list {
            map.values_mut().for_each(stringify);
        }
    }
    fn boost(boost: &mut Value) {
        if let Some(quantity) = boost.pointer_mut("/cpu/quantity") {
            stringify(quantity);
        }
    }
    fn items(value: Option<&mut Value>) -> impl Iterator<Item = &mut Value> {
        value
            .and_then(Value::as_array_mut)
            .into_iter()
            .flat_map(|items| items.iter_mut())
    }

    for policy in items(vpa.pointer_mut("/spec/resourcePolicy/containerPolicies")) {
        for key in ["minAllowed", "maxAllowed"] {
            if let Some(list) = policy.get_mut(key) {
                resource_list(list);
            }
        }
        for key in ["oomBumpUpRatio", "oomMinBumpUp"] {
            if let Some(quantity) = policy.get_mut(key) {
                stringify(quantity);
            }
        }
        if let Some(startup_boost) = policy.get_mut("startupBoost") {
            boost(startup_boost);
        }
    }
    if let Some(startup_boost) = vpa.pointer_mut("/spec/startupBoost") {
        boost(startup_boost);
    }
    for recommendation in items(vpa.pointer_mut("/status/recommendation/containerRecommendations"))
    {
        for key in ["target", "lowerBound", "upperBound", "uncappedTarget"] {
            if let Some(list) = recommendation.get_mut(key) {
                resource_list(list);
            }
        }
    }
}

/// Round-trips every VPA in `path`; returns how many there were.
fn round_trip_file(path: &Path, failures: &mut Vec<String>) -> usize {
    let mut count = 0;
    for (index, document) in documents(path).into_iter().enumerate() {
        if !is_vpa(&document) {
            continue;
        }
        count += 1;
        let place = format!("{} (document {})", path.display(), index + 1);
        let vpa: VerticalPodAutoscaler = match serde_json::from_value(document.clone()) {
            Ok(vpa) => vpa,
            Err(error) => {
                failures.push(format!("{place}: does not deserialise: {error}"));
                continue;
            }
        };
        let written = serde_json::to_value(&vpa).unwrap();
        let mut expected = document;
        quantities_as_strings(&mut expected);
        if written != expected {
            failures.push(format!(
                "{place}: serialises differently\n  input:  {expected}\n  output: {written}"
            ));
        }
    }
    count
}

#[test]
fn upstream_example_vpas_round_trip() {
    let copies = yaml_files(&copies_dir());
    assert!(
        !copies.is_empty(),
        "no example copies in {}",
        copies_dir().display()
    );
    let reference = yaml_files(&reference_dir().join("examples"));
    if reference.is_empty() {
        eprintln!(
            "note: no reference examples under {}; testing the copies only",
            reference_dir().display()
        );
    }

    let mut failures = Vec::new();
    let mut vpas = 0;
    for path in copies.values() {
        vpas += round_trip_file(path, &mut failures);
    }
    for (name, original) in &reference {
        match copies.get(name) {
            Some(copy) if documents(copy) != documents(original) => failures.push(format!(
                "{} no longer matches {}; refresh the copy (keep its provenance line)",
                copy.display(),
                original.display()
            )),
            Some(_) => {}
            None => vpas += round_trip_file(original, &mut failures),
        }
    }

    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(vpas >= 4, "expected at least 4 example VPAs, found {vpas}");
}

#[test]
fn example_fields_load_with_their_meaning() {
    let path = copies_dir().join("examples-hamster.yaml");
    let document = documents(&path).into_iter().find(is_vpa).unwrap();
    let vpa: VerticalPodAutoscaler = serde_json::from_value(document).unwrap();
    assert_eq!(vpa.spec.target_ref.kind, "Deployment");
    assert_eq!(vpa.spec.target_ref.name, "hamster");
    // No update policy: the effective mode is Recreate (it was Auto before 1.6.0).
    assert_eq!(vpa.update_mode(), vpa_core::api::UpdateMode::Recreate);
    let policy = vpa.spec.container_policy("hamster").unwrap();
    assert_eq!(policy.container_name.as_deref(), Some("*"));
    let max = policy.max_allowed.as_ref().unwrap();
    assert_eq!(max["cpu"].0, "1");
    assert_eq!(max["memory"].0, "500Mi");
    assert_eq!(policy.controlled_resources().as_ref(), ["cpu", "memory"]);
}
