//! One loop's input: the handled VPAs with their live pods and the replica counts of the
//! pods' owners, built from the in-memory stores (the VPA index and the pod and owner
//! caches). No API calls.
//!
//! A pod belongs to the VPA the index finds for it (the strongest VPA whose target is the
//! pod's topmost controller and whose selector matches the pod's labels); pods being
//! deleted, and pods whose VPA is filtered out by the namespace flags or does not update pods,
//! are left out. Each namespace's LimitRanges are merged once, sorted by name.

use crate::convert::{controller_owner, pod_view, vpa_view};
use crate::plan::VpaInput;
use crate::selection::{NamespaceFilter, is_handled};
use crate::view::{OwnerRef, OwnerReplicas};
use k8s_openapi::api::core::v1::{LimitRange, Pod};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use vpa_core::api::pod_view::namespace_limits;
use vpa_core::api::vpa::VerticalPodAutoscaler;
use vpa_core::labels::LabelSet;
use vpa_core::limitrange::NamespaceLimits;

/// The cheap form of [`is_handled`] on the API object: an updating mode or a startup boost.
fn handled(vpa: &VerticalPodAutoscaler) -> bool {
    vpa.update_mode().updates_running_pods()
        || vpa.spec.startup_boost.is_some()
        || vpa
            .spec
            .resource_policy
            .as_ref()
            .and_then(|p| p.container_policies.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.startup_boost.is_some()))
}
use vpa_core::runtime::vpa_index::{VpaIndex, controller_of};

/// The inputs of one loop, one per handled VPA with at least one live pod, in `namespace/name`
/// order. `replicas(namespace, owner)` gives an owner's count as
/// [`OwnerReplicas::count`] wants it.
pub fn build<'p>(
    index: &VpaIndex,
    pods: impl IntoIterator<Item = &'p Pod>,
    replicas: impl Fn(&str, &OwnerRef) -> Option<i32>,
    filter: &NamespaceFilter,
) -> Vec<VpaInput> {
    struct Entry {
        vpa: Arc<VerticalPodAutoscaler>,
        input: VpaInput,
    }
    let mut by_vpa: BTreeMap<(String, String), Entry> = BTreeMap::new();
    let mut limits: HashMap<String, Result<NamespaceLimits, String>> = HashMap::new();
    let empty = LabelSet::new();
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        if !filter.allows(ns) {
            continue;
        }
        let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
        let controller = controller_of(pod.metadata.owner_references.as_deref());
        // Among the VPAs this loop handles only: an older `Initial` VPA does not hide a
        // newer `Recreate` one from the updater.
        let Ok(vpa) = index.find_where(ns, labels, controller.as_ref(), handled) else {
            continue;
        };
        let key = (
            vpa.metadata.namespace.clone().unwrap_or_default(),
            vpa.metadata.name.clone().unwrap_or_default(),
        );
        let entry = match by_vpa.entry(key) {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                let view = vpa_view(&vpa);
                if !is_handled(&view) {
                    continue;
                }
                v.insert(Entry {
                    vpa: vpa.clone(),
                    input: VpaInput {
                        vpa: view,
                        ..VpaInput::default()
                    },
                })
            }
        };
        let ns_limits = limits
            .entry(ns.to_string())
            .or_insert_with(|| merged_limits(&index.limit_ranges(ns)));
        let view = pod_view(pod, &entry.vpa, ns_limits.as_ref().map_err(Clone::clone));
        entry.input.pods.push(view);
        if let Some(owner) = controller_owner(pod)
            && !entry.input.owners.iter().any(|o| o.owner == owner)
        {
            let count = replicas(ns, &owner);
            entry.input.owners.push(OwnerReplicas { owner, count });
        }
    }
    by_vpa.into_values().map(|e| e.input).collect()
}

fn merged_limits(items: &[LimitRange]) -> Result<NamespaceLimits, String> {
    let mut sorted: Vec<&LimitRange> = items.iter().collect();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    namespace_limits(sorted).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;
    use vpa_core::labels::Selector;
    use vpa_core::matcher::ControllerRef;
    use vpa_core::model::ObjectId;
    use vpa_core::runtime::vpa_index::record_of;

    fn index_with(vpas: &[(&str, &str, &str)]) -> VpaIndex {
        let index = VpaIndex::new();
        for (name, mode, created) in vpas {
            let v: VerticalPodAutoscaler = serde_json::from_value(json!({
                "apiVersion": "autoscaling.k8s.io/v1", "kind": "VerticalPodAutoscaler",
                "metadata": {"name": name, "namespace": "ns", "creationTimestamp": created},
                "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                         "updatePolicy": {"updateMode": mode}},
                "status": {"recommendation": {"containerRecommendations": [
                    {"containerName": "app", "target": {"cpu": "1", "memory": "1Gi"}}]}}
            }))
            .unwrap();
            let mut m = index.write();
            m.upsert_vpa(record_of(v).unwrap());
            m.set_selector(
                &ObjectId::new("ns", name),
                Some(Selector::parse("app=web").unwrap()),
            );
        }
        index.write().set_owner(
            "ns",
            ControllerRef::new("ReplicaSet", "web-1"),
            Some(ControllerRef::new("Deployment", "web")),
        );
        index
    }

    fn pod(name: &str, app: &str, deleting: bool) -> Pod {
        let mut p: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "ns", "uid": name, "labels": {"app": app},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": "web-1", "uid": "rs", "controller": true}]},
            "spec": {"containers": [{"name": "app", "image": "pause",
                "resources": {"requests": {"cpu": "100m"}}}]},
            "status": {"phase": "Running"}
        }))
        .unwrap();
        if deleting {
            p.metadata.deletion_timestamp =
                Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    "2025-01-01T00:00:00Z".parse().unwrap(),
                ));
        }
        p
    }

    #[test]
    fn pods_go_to_the_oldest_matching_vpa_with_owner_counts() {
        let index = index_with(&[
            ("young", "Recreate", "2025-02-01T00:00:00Z"),
            ("old", "InPlaceOrRecreate", "2025-01-01T00:00:00Z"),
        ]);
        let pods = [
            pod("a", "web", false),
            pod("b", "web", false),
            pod("c", "other", false),
            pod("d", "web", true),
        ];
        let inputs = build(
            &index,
            &pods,
            |ns, o| (ns == "ns" && o.name == "web-1").then_some(3),
            &NamespaceFilter::default(),
        );
        assert_eq!(inputs.len(), 1);
        let i = &inputs[0];
        assert_eq!(i.vpa.name, "old");
        let names: Vec<&str> = i.pods.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(i.owners.len(), 1);
        assert_eq!(i.owners[0].count, Some(3));
        assert_eq!(
            i.pods[0].recommendation_for("app").map(|r| r.target.cpu),
            Some(Some(1000))
        );
    }

    #[test]
    fn vpas_that_do_not_update_pods_and_filtered_namespaces_are_skipped() {
        let index = index_with(&[("init", "Initial", "2025-01-01T00:00:00Z")]);
        let pods = [pod("a", "web", false)];
        assert!(build(&index, &pods, |_, _| Some(1), &NamespaceFilter::default()).is_empty());
        let index = index_with(&[("r", "Recreate", "2025-01-01T00:00:00Z")]);
        let other = NamespaceFilter::from_flags("elsewhere", "");
        assert!(build(&index, &pods, |_, _| Some(1), &other).is_empty());
        assert_eq!(
            build(&index, &pods, |_, _| Some(1), &NamespaceFilter::default()).len(),
            1
        );
    }

    #[test]
    fn an_older_initial_vpa_does_not_hide_a_newer_recreate_one() {
        let index = index_with(&[
            ("init", "Initial", "2025-01-01T00:00:00Z"),
            ("recreate", "Recreate", "2025-02-01T00:00:00Z"),
        ]);
        let inputs = build(
            &index,
            &[pod("a", "web", false)],
            |_, _| Some(2),
            &NamespaceFilter::default(),
        );
        assert_eq!(inputs.len(), 1);
        assert_eq!(inputs[0].vpa.name, "recreate");
    }

    #[test]
    fn an_invalid_limit_range_marks_the_pods() {
        let index = index_with(&[("r", "Recreate", "2025-01-01T00:00:00Z")]);
        let lr: LimitRange = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "lr", "namespace": "ns"},
            "spec": {"limits": [{"type": "Container", "max": {"cpu": "lots"}}]}
        }))
        .unwrap();
        index.set_limit_ranges("ns", vec![lr]);
        let inputs = build(
            &index,
            &[pod("a", "web", false)],
            |_, _| Some(1),
            &NamespaceFilter::default(),
        );
        assert!(inputs[0].pods[0].recommendation_error.is_some());
    }
}
