#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The CRD files committed under `charts/vpa/crds/` must be exactly what `crdgen` writes from the
//! Rust types today.

use std::path::Path;

#[test]
fn committed_crd_files_are_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/vpa/crds");
    let mut problems = Vec::new();
    for (file, generated) in vpa_core::api::crd_files().expect("the CRDs render") {
        let path = dir.join(file);
        match std::fs::read_to_string(&path) {
            Ok(committed) if committed == generated => {}
            Ok(_) => problems.push(format!(
                "charts/vpa/crds/{file} differs from the generated CRD"
            )),
            Err(error) => problems.push(format!("charts/vpa/crds/{file} cannot be read: {error}")),
        }
    }
    assert!(
        problems.is_empty(),
        "{}\nThe CRD files are generated from core/src/api. \
         Run `cargo run -p vpa-core --bin crdgen` and commit the result.",
        problems.join("\n")
    );
}

#[test]
fn committed_crd_files_parse_as_the_crds() {
    // A second, semantic look: each file holds exactly one CRD, equal to the one from `crds()`.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/vpa/crds");
    let expected: Vec<serde_json::Value> = vpa_core::api::crds()
        .iter()
        .map(|crd| serde_json::to_value(crd).unwrap())
        .collect();
    let mut found = Vec::new();
    for (file, _) in vpa_core::api::crd_files().unwrap() {
        let Ok(text) = std::fs::read_to_string(dir.join(file)) else {
            continue; // Reported by the test above.
        };
        let parsed: serde_json::Value = serde_yaml::from_str(&text)
            .unwrap_or_else(|error| panic!("charts/vpa/crds/{file} does not parse: {error}"));
        found.push(parsed);
    }
    for crd in &found {
        assert!(
            expected.contains(crd),
            "a committed CRD is not what `crds()` returns; run `cargo run -p vpa-core --bin crdgen`"
        );
    }
}
