#![allow(clippy::unwrap_used)]

use super::*;
use crate::quantity;

fn map(pairs: &[(&str, &str)]) -> Option<ResourceMap> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), quantity::parse(v).unwrap()))
            .collect(),
    )
}

fn item(
    type_: &str,
    max: Option<ResourceMap>,
    min: Option<ResourceMap>,
    default: Option<ResourceMap>,
) -> LimitRangeItem {
    LimitRangeItem {
        type_: type_.into(),
        max,
        min,
        default,
    }
}

#[test]
fn nothing_applies_without_items_of_the_type() {
    assert_eq!(merge([], LIMIT_TYPE_CONTAINER), None);
    let pvc = item(
        "PersistentVolumeClaim",
        map(&[("storage", "1Gi")]),
        None,
        None,
    );
    let pod_only = item(LIMIT_TYPE_POD, map(&[("cpu", "1")]), None, None);
    let items = [pvc, pod_only];
    let limits = NamespaceLimits::from_items(&items);
    assert_eq!(limits.container, None);
    assert_eq!(limits.pod.unwrap().max, map(&[("cpu", "1")]));
    // An item without max, min or default is skipped.
    let empty = item(LIMIT_TYPE_CONTAINER, None, None, None);
    assert_eq!(merge([&empty], LIMIT_TYPE_CONTAINER), None);
}

#[test]
fn lowest_max_highest_min_last_default() {
    let a = item(
        LIMIT_TYPE_CONTAINER,
        map(&[
            ("cpu", "2"),
            ("memory", "1Gi"),
            ("ephemeral-storage", "1Gi"),
        ]),
        map(&[("cpu", "100m")]),
        map(&[("cpu", "1"), ("memory", "500Mi")]),
    );
    let b = item(
        LIMIT_TYPE_CONTAINER,
        map(&[("cpu", "3"), ("memory", "512Mi")]),
        map(&[("cpu", "50m"), ("memory", "10Mi")]),
        None,
    );
    let c = item(
        LIMIT_TYPE_CONTAINER,
        None,
        map(&[("cpu", "200m")]),
        map(&[("memory", "300Mi")]),
    );
    let merged = merge([&a, &b, &c], LIMIT_TYPE_CONTAINER).unwrap();
    assert_eq!(merged.type_, LIMIT_TYPE_CONTAINER);
    // The first item's map is taken whole, so other resources stay.
    assert_eq!(
        merged.max,
        map(&[
            ("cpu", "2"),
            ("memory", "512Mi"),
            ("ephemeral-storage", "1Gi")
        ])
    );
    assert_eq!(merged.min, map(&[("cpu", "200m"), ("memory", "10Mi")]));
    // The last default replaces the whole map.
    assert_eq!(merged.default, map(&[("memory", "300Mi")]));
}

#[test]
fn ties_keep_the_later_text_form() {
    let a = item(
        LIMIT_TYPE_CONTAINER,
        map(&[("memory", "1024")]),
        map(&[("memory", "1024")]),
        None,
    );
    let b = item(
        LIMIT_TYPE_CONTAINER,
        map(&[("memory", "1Ki")]),
        map(&[("memory", "1Ki")]),
        None,
    );
    let merged = merge([&a, &b], LIMIT_TYPE_CONTAINER).unwrap();
    assert_eq!(
        merged.max_of("memory").unwrap().to_canonical_string(),
        "1Ki"
    );
    assert_eq!(
        merged.min_of("memory").unwrap().to_canonical_string(),
        "1Ki"
    );
    assert_eq!(merged.default_of("memory"), None);
}
