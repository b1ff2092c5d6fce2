//! The plain view of a pod that the admission controller and the updater compute on: names,
//! labels, annotations, and the requests and limits of every container, with quantities
//! already parsed.
//!
//! `crate::api::pod_view` builds it from a Kubernetes `Pod` in one call. Absent and empty
//! resource lists are kept apart (`None` vs `Some(empty)`), because the JSON patches that
//! fill them in depend on which of the two a pod has.

use crate::quantity::Quantity;
use std::collections::BTreeMap;

/// A map from resource name (`cpu`, `memory`, `nvidia.com/gpu`, …) to an amount, as
/// `core/v1.ResourceList`.
pub type ResourceMap = BTreeMap<String, Quantity>;

/// The resource name of CPU.
pub const CPU: &str = "cpu";
/// The resource name of memory.
pub const MEMORY: &str = "memory";

/// The `restartPolicy` that makes an init container a native sidecar.
pub const RESTART_POLICY_ALWAYS: &str = "Always";

/// Requests and limits of one container (`core/v1.ResourceRequirements` without claims).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceRequirements {
    /// `requests`; `None` when the field is absent.
    pub requests: Option<ResourceMap>,
    /// `limits`; `None` when the field is absent.
    pub limits: Option<ResourceMap>,
}

impl ResourceRequirements {
    /// The request of one resource, if set.
    pub fn request(&self, resource: &str) -> Option<&Quantity> {
        self.requests.as_ref().and_then(|m| m.get(resource))
    }

    /// The limit of one resource, if set.
    pub fn limit(&self, resource: &str) -> Option<&Quantity> {
        self.limits.as_ref().and_then(|m| m.get(resource))
    }
}

/// One container of the pod spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerView {
    /// Container name.
    pub name: String,
    /// `resources` as in the pod spec.
    pub resources: ResourceRequirements,
    /// `restartPolicy` (init containers only; `Always` marks a native sidecar).
    pub restart_policy: Option<String>,
}

impl ContainerView {
    /// Whether this (init) container is a native sidecar (`restartPolicy: Always`).
    pub fn is_sidecar(&self) -> bool {
        self.restart_policy.as_deref() == Some(RESTART_POLICY_ALWAYS)
    }
}

/// The status of one container: the resources the kubelet reports it actually runs with
/// (in-place resize API).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerStatusView {
    /// Container name.
    pub name: String,
    /// `status.containerStatuses[].resources`, when the kubelet reports it.
    pub resources: Option<ResourceRequirements>,
}

/// A pod, as far as resource decisions need it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodView {
    /// `metadata.name` (empty on CREATE when the name is generated).
    pub name: String,
    /// `metadata.generateName`.
    pub generate_name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`; `None` when the field is absent.
    pub annotations: Option<BTreeMap<String, String>>,
    /// `spec.containers`, in order.
    pub containers: Vec<ContainerView>,
    /// `spec.initContainers`, in order.
    pub init_containers: Vec<ContainerView>,
    /// `status.containerStatuses`.
    pub container_statuses: Vec<ContainerStatusView>,
    /// `status.initContainerStatuses`.
    pub init_container_statuses: Vec<ContainerStatusView>,
}

impl PodView {
    /// The spec container with this name.
    pub fn container(&self, name: &str) -> Option<&ContainerView> {
        self.containers.iter().find(|c| c.name == name)
    }

    /// The requests and limits a container currently has: the ones in its status when the
    /// kubelet reports them (a resize may be under way), else the spec's (upstream
    /// `ContainerRequestsAndLimits`). `None` for an unknown container.
    pub fn current_resources(&self, name: &str) -> Option<&ResourceRequirements> {
        let from_status = self
            .container_statuses
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.resources.as_ref());
        from_status.or_else(|| self.container(name).map(|c| &c.resources))
    }

    /// The name to log for the pod: its name, or `generateName + "%"` while it has none.
    pub fn display_name(&self) -> String {
        if self.name.is_empty() {
            format!("{}%", self.generate_name)
        } else {
            self.name.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn q(s: &str) -> Quantity {
        crate::quantity::parse(s).unwrap()
    }

    #[test]
    fn status_resources_win_over_spec() {
        let spec = ResourceRequirements {
            requests: Some(ResourceMap::from([(CPU.to_string(), q("10"))])),
            limits: None,
        };
        let status = ResourceRequirements {
            requests: Some(ResourceMap::from([(CPU.to_string(), q("2"))])),
            limits: None,
        };
        let mut pod = PodView {
            containers: vec![ContainerView {
                name: "app".into(),
                resources: spec.clone(),
                restart_policy: None,
            }],
            ..Default::default()
        };
        assert_eq!(pod.current_resources("app"), Some(&spec));
        pod.container_statuses.push(ContainerStatusView {
            name: "app".into(),
            resources: None,
        });
        assert_eq!(pod.current_resources("app"), Some(&spec));
        pod.container_statuses[0].resources = Some(status.clone());
        assert_eq!(pod.current_resources("app"), Some(&status));
        assert_eq!(pod.current_resources("other"), None);
    }

    #[test]
    fn display_name_of_generated_pod() {
        let pod = PodView {
            generate_name: "web-".into(),
            ..Default::default()
        };
        assert_eq!(pod.display_name(), "web-%");
        let sidecar = ContainerView {
            restart_policy: Some("Always".into()),
            ..Default::default()
        };
        assert!(sidecar.is_sidecar());
        assert!(!ContainerView::default().is_sidecar());
    }
}
