//! The updater's decision settings as plain values: the flags that shape decisions and the
//! feature gates, with upstream's defaults. [`crate::config::Config`] builds them.

use vpa_core::time::Duration;

pub use vpa_core::features::FeatureGates;

/// The flags that shape the updater's decisions (upstream names in the field docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpdaterSettings {
    /// `--min-replicas` (2): a replica group with fewer live pods is left alone, unless
    /// the VPA sets `updatePolicy.minReplicas`.
    pub min_replicas: i64,
    /// `--eviction-tolerance` (0.5): the fraction of a group's configured replicas that may
    /// be disrupted at once.
    pub eviction_tolerance: f64,
    /// `--pod-update-threshold` (0.1): the minimum resource difference that updates a pod
    /// whose requests are within the recommended range.
    pub pod_update_threshold: f64,
    /// `--in-recommendation-bounds-eviction-lifetime-threshold` (12h): how long a pod within
    /// the recommended range must have run before it is updated for a difference.
    pub pod_lifetime_update_threshold: Duration,
    /// `--evict-after-oom-threshold` (10m): an OOM kill of a container that ran shorter than
    /// this is a quick OOM.
    pub evict_after_oom_threshold: Duration,
    /// `--in-place-skip-disruption-budget` (false): in-place updates that need no restart
    /// ignore the eviction tolerance and minReplicas.
    pub in_place_skip_disruption_budget: bool,
    /// `--feature-gates`.
    pub gates: FeatureGates,
}

impl Default for UpdaterSettings {
    fn default() -> Self {
        Self {
            min_replicas: 2,
            eviction_tolerance: 0.5,
            pod_update_threshold: 0.1,
            pod_lifetime_update_threshold: Duration::from_hours(12),
            evict_after_oom_threshold: Duration::from_minutes(10),
            in_place_skip_disruption_budget: false,
            gates: FeatureGates::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_gates_parse() {
        assert_eq!(FeatureGates::parse(""), Ok(FeatureGates::default()));
        assert_eq!(
            FeatureGates::parse("InPlace=true, CPUStartupBoost=true,PerVPAConfig=false"),
            Ok(FeatureGates {
                cpu_startup_boost: true,
                in_place: true,
                per_vpa_config: false
            })
        );
        assert!(FeatureGates::parse("InPlaceOrRecreate=true").is_err());
        assert!(FeatureGates::parse("InPlace").is_err());
        assert!(FeatureGates::parse("InPlace=yes").is_err());
    }
}
