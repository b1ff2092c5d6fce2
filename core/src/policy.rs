//! Per-VPA resource policy as plain values, and the recommender's capping post-processor
//! (upstream `utils/vpa/capping.go` `ApplyVPAPolicy`).
//!
//! The API types (`api`) convert into these; the engine and the capping logic only see plain
//! amounts (millicores, bytes).

use crate::model::{ResourceAmount, ResourceKind, Resources};
use crate::time::Duration;

/// Per-container scaling mode (`containerPolicies[].mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContainerScalingMode {
    /// Autoscaled (the default).
    #[default]
    Auto,
    /// Not autoscaled: no recommendation is produced.
    Off,
}

/// Which values the admission controller and updater change (`controlledValues`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ControlledValues {
    /// Requests, and limits proportionally (the default).
    #[default]
    RequestsAndLimits,
    /// Requests only.
    RequestsOnly,
}

/// The set of resources a VPA controls (`controlledResources`), cpu and memory by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlledResources {
    /// CPU is controlled.
    pub cpu: bool,
    /// Memory is controlled.
    pub memory: bool,
}

impl Default for ControlledResources {
    fn default() -> Self {
        Self {
            cpu: true,
            memory: true,
        }
    }
}

impl ControlledResources {
    /// Nothing controlled (an explicit empty list).
    pub const NONE: ControlledResources = ControlledResources {
        cpu: false,
        memory: false,
    };

    /// From the resource names of the API list; names other than cpu and memory are ignored.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut out = Self::NONE;
        for n in names {
            match ResourceKind::from_name(n) {
                Some(ResourceKind::Cpu) => out.cpu = true,
                Some(ResourceKind::Memory) => out.memory = true,
                None => {}
            }
        }
        out
    }

    /// True when `kind` is controlled.
    pub fn contains(&self, kind: ResourceKind) -> bool {
        match kind {
            ResourceKind::Cpu => self.cpu,
            ResourceKind::Memory => self.memory,
        }
    }

    /// Keeps only the controlled resources of `r`.
    pub fn filter(&self, r: Resources) -> Resources {
        Resources {
            cpu: r.cpu.filter(|_| self.cpu),
            memory: r.memory.filter(|_| self.memory),
        }
    }
}

/// One entry of `resourcePolicy.containerPolicies`, as plain values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerResourcePolicy {
    /// A container name, or `"*"` for every container without its own entry.
    pub container_name: String,
    /// Scaling mode; `None` means Auto.
    pub mode: Option<ContainerScalingMode>,
    /// Lower caps.
    pub min_allowed: Resources,
    /// Upper caps.
    pub max_allowed: Resources,
    /// Controlled resources; `None` means cpu and memory.
    pub controlled_resources: Option<ControlledResources>,
    /// Controlled values; `None` means RequestsAndLimits.
    pub controlled_values: Option<ControlledValues>,
    /// Per-VPA OOM bump ratio (PerVPAConfig).
    pub oom_bump_up_ratio: Option<f64>,
    /// Per-VPA minimal OOM bump in bytes (PerVPAConfig).
    pub oom_min_bump_up: Option<f64>,
    /// Per-VPA memory aggregation interval (PerVPAConfig).
    pub memory_aggregation_interval: Option<Duration>,
    /// Per-VPA memory aggregation interval count (PerVPAConfig).
    pub memory_aggregation_interval_count: Option<i64>,
}

/// The name that matches every container without its own policy.
pub const DEFAULT_CONTAINER_RESOURCE_POLICY: &str = "*";

/// `spec.resourcePolicy`, as plain values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodResourcePolicy {
    /// Per-container policies.
    pub container_policies: Vec<ContainerResourcePolicy>,
}

impl PodResourcePolicy {
    /// The exact-name entry if there is one, else the `"*"` entry, else `None`.
    pub fn container_policy(&self, container_name: &str) -> Option<&ContainerResourcePolicy> {
        let mut wildcard = None;
        for p in &self.container_policies {
            if p.container_name == container_name {
                return Some(p);
            }
            if p.container_name == DEFAULT_CONTAINER_RESOURCE_POLICY && wildcard.is_none() {
                wildcard = Some(p);
            }
        }
        wildcard
    }
}

/// [`PodResourcePolicy::container_policy`] for an optional policy.
pub fn container_policy<'a>(
    policy: Option<&'a PodResourcePolicy>,
    container_name: &str,
) -> Option<&'a ContainerResourcePolicy> {
    policy.and_then(|p| p.container_policy(container_name))
}

/// Raises `value` to `min` when `min` is set, non-zero and larger.
fn cap_to_min(value: ResourceAmount, min: Option<ResourceAmount>) -> ResourceAmount {
    match min {
        Some(m) if m != 0 && value < m => m,
        _ => value,
    }
}

/// Lowers `value` to `max` when `max` is set, non-zero and smaller.
fn cap_to_max(value: ResourceAmount, max: Option<ResourceAmount>) -> ResourceAmount {
    match max {
        Some(m) if m != 0 && value > m => m,
        _ => value,
    }
}

/// The max cap of one resource: the container policy's value if it has one (non-zero), else
/// the global `--container-recommendation-max-allowed-*` value.
fn max_allowed(
    kind: ResourceKind,
    policy: Option<&ContainerResourcePolicy>,
    global_max: &Resources,
) -> Option<ResourceAmount> {
    match policy.and_then(|p| p.max_allowed.get(kind)) {
        Some(v) if v != 0 => Some(v),
        _ => global_max.get(kind),
    }
}

/// Caps one resource list to the container policy's minAllowed and the effective maxAllowed.
pub fn cap_resources(
    r: Resources,
    policy: Option<&ContainerResourcePolicy>,
    global_max: &Resources,
) -> Resources {
    r.map(|kind, v| {
        let v = match policy {
            Some(p) => cap_to_min(v, p.min_allowed.get(kind)),
            None => v,
        };
        cap_to_max(v, max_allowed(kind, policy, global_max))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_name_wins_over_wildcard() {
        let p = PodResourcePolicy {
            container_policies: vec![
                ContainerResourcePolicy {
                    container_name: "*".into(),
                    mode: Some(ContainerScalingMode::Off),
                    ..Default::default()
                },
                ContainerResourcePolicy {
                    container_name: "app".into(),
                    ..Default::default()
                },
            ],
        };
        assert_eq!(p.container_policy("app").map(|c| c.mode), Some(None));
        assert_eq!(
            p.container_policy("other").map(|c| c.mode),
            Some(Some(ContainerScalingMode::Off))
        );
        assert!(PodResourcePolicy::default().container_policy("x").is_none());
    }

    #[test]
    fn controlled_resources_from_names() {
        assert_eq!(
            ControlledResources::from_names(["memory"]),
            ControlledResources {
                cpu: false,
                memory: true
            }
        );
        assert_eq!(
            ControlledResources::from_names([]),
            ControlledResources::NONE
        );
    }
}
