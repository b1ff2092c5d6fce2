//! The pod mutator: finds the pod's VPA in the in-memory [`VpaIndex`] and asks the pure
//! patch builder ([`vpa_core::patch::pod_patch`]) for the JSON patch. No API calls: a pod
//! whose VPA is not (yet) known is admitted unchanged.

use crate::hooks::{Mutation, MutationError, PodMutator};
use k8s_openapi::api::core::v1::Pod;
use kube::core::admission::AdmissionRequest;
use vpa_core::api::pod_view::namespace_limits;
use vpa_core::labels::LabelSet;
use vpa_core::patch::{PatchConfig, pod_patch};
use vpa_core::pod::PodView;
use vpa_core::runtime::vpa_index::{VpaIndex, controller_of};

/// Mutates pods from the VPA index.
#[derive(Debug, Clone)]
pub struct IndexMutator {
    index: VpaIndex,
    config: PatchConfig,
}

impl IndexMutator {
    /// A mutator over `index` with the patch settings from the flags.
    pub fn new(index: VpaIndex, config: PatchConfig) -> Self {
        Self { index, config }
    }

    /// The mutation for `pod` in `namespace` (the request's namespace when the pod has none).
    pub fn mutate_pod(&self, pod: &Pod, namespace: &str) -> Result<Mutation, MutationError> {
        let namespace = pod
            .metadata
            .namespace
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(namespace);
        let empty = LabelSet::new();
        let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
        let controller = controller_of(pod.metadata.owner_references.as_deref());
        let vpa = match self.index.find(namespace, labels, controller.as_ref()) {
            Ok(vpa) => vpa,
            Err(why) => {
                tracing::trace!(namespace, ?why, "no VPA for the pod");
                return Ok(Mutation::unchanged());
            }
        };
        let mut view = PodView::try_from(pod)
            .map_err(|e| MutationError::new(format!("cannot read the pod: {e}")))?;
        if view.namespace.is_empty() {
            view.namespace = namespace.to_string();
        }
        let limit_ranges = self.index.limit_ranges(namespace);
        let limits = namespace_limits(limit_ranges.iter()).map_err(|e| {
            MutationError::new(format!("cannot read the LimitRanges of {namespace}: {e}"))
        })?;
        let vpa_name = vpa.metadata.name.as_deref().unwrap_or_default();
        let patch = pod_patch(&view, &vpa, &limits, &self.config)
            .map_err(|e| MutationError::new(format!("VPA {namespace}/{vpa_name}: {e}")))?;
        if patch.is_empty() {
            return Ok(Mutation::unchanged());
        }
        let json = patch
            .to_json_patch()
            .map_err(|e| MutationError::new(format!("VPA {namespace}/{vpa_name}: {e}")))?;
        tracing::debug!(
            namespace,
            pod = %if view.name.is_empty() { format!("{}%", view.generate_name) } else { view.name.clone() },
            vpa = vpa_name,
            updates = %patch.updates.join("; "),
            "pod resources set from the VPA"
        );
        Ok(Mutation::with_patch(json.0))
    }
}

impl PodMutator for IndexMutator {
    fn mutate(&self, req: &AdmissionRequest<Pod>) -> Result<Mutation, MutationError> {
        let pod = req
            .object
            .as_ref()
            .ok_or_else(|| MutationError::new("the review carries no pod"))?;
        self.mutate_pod(pod, &req.namespace.clone().unwrap_or_default())
    }
}
