//! The `vpa-updater` command line: upstream's updater flags with their names and defaults,
//! plus the shared logging, client and leader-election groups of `vpa_core::runtime`.
//!
//! The three `--admission-controller-status-lease-*` flags exist upstream only after 1.7.1
//! (1.7.1 hard-codes the same defaults); accepting them costs nothing.

use crate::rate_limit::TokenBucket;
use crate::selection::NamespaceFilter;
use crate::settings::{FeatureGates, UpdaterSettings};
use clap::Parser;
use vpa_core::runtime::client::KubeArgs;
use vpa_core::runtime::lease::LeaderElectionArgs;
use vpa_core::runtime::telemetry::LogArgs;
use vpa_core::time::{Duration, parse_go_duration};

/// The default name of the updater's leader-election Lease.
pub const LEADER_ELECTION_DEFAULT_NAME: &str = "vpa-updater";
/// The namespace of the admission controller's status Lease when neither the flag nor
/// `$NAMESPACE` names one.
pub const DEFAULT_STATUS_NAMESPACE: &str = "kube-system";

fn go_duration(s: &str) -> Result<Duration, String> {
    parse_go_duration(s).map_err(|e| e.to_string())
}

fn positive_go_duration(s: &str) -> Result<Duration, String> {
    let d = go_duration(s)?;
    if d.as_nanos() <= 0 {
        return Err(format!("{s} must be positive"));
    }
    Ok(d)
}

/// Kubernetes Vertical Pod Autoscaler updater (vpa-rs): evicts or resizes in place the pods
/// whose requests are far from their VPA's recommendation. The flags keep the upstream
/// updater's names and defaults.
#[derive(Debug, Clone, PartialEq, Parser)]
#[command(name = "vpa-updater", version, about)]
pub struct Config {
    /// How often the updater loop runs (Go duration).
    #[arg(long, default_value = "1m0s", value_parser = positive_go_duration)]
    pub updater_interval: Duration,
    /// Minimum number of live replicas of a replica group for its pods to be updated
    /// (overridden per VPA by updatePolicy.minReplicas).
    #[arg(long, default_value_t = 2, allow_negative_numbers = true)]
    pub min_replicas: i64,
    /// Fraction of a replica group's configured replicas that may be evicted or resized at
    /// once (at least one when all run).
    #[arg(long, default_value_t = 0.5, allow_negative_numbers = true)]
    pub eviction_tolerance: f64,
    /// Evictions (and, separately, in-place resizes) per second; zero or less: unlimited.
    #[arg(long, default_value_t = -1.0, allow_negative_numbers = true)]
    pub eviction_rate_limit: f64,
    /// Burst of evictions (and of in-place resizes) above the rate limit.
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    pub eviction_rate_burst: i64,
    /// Address of the admin HTTP server: /healthz, /readyz, /metrics (upstream: health
    /// check and metrics).
    #[arg(long, default_value = ":8943")]
    pub address: String,
    /// Act only while the admission controller's status Lease is fresh.
    #[arg(long, default_value_t = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub use_admission_controller_status: bool,
    /// [BETA] In-place updates that need no container restart ignore the eviction tolerance
    /// and minReplicas.
    #[arg(long, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub in_place_skip_disruption_budget: bool,
    /// Name of the admission controller's status Lease.
    #[arg(long, default_value = "vpa-admission-controller")]
    pub admission_controller_status_lease_name: String,
    /// Namespace of the admission controller's status Lease (empty: $NAMESPACE, else
    /// kube-system).
    #[arg(long, default_value = "")]
    pub admission_controller_status_lease_namespace: String,
    /// How long the admission controller's status Lease stays valid (Go duration).
    #[arg(long, default_value = "1m0s", value_parser = positive_go_duration)]
    pub admission_controller_status_lease_timeout: Duration,
    /// Minimum relative resource difference that updates a pod whose requests are within the
    /// recommended range.
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    pub pod_update_threshold: f64,
    /// How long a pod whose requests are within the recommended range must have run before
    /// it is updated for a difference (Go duration).
    #[arg(long, default_value = "12h0m0s", value_parser = go_duration)]
    pub in_recommendation_bounds_eviction_lifetime_threshold: Duration,
    /// A container OOM-killed within this time after it started makes its pod eligible for
    /// an update (Go duration; a VPA's updatePolicy.evictAfterOOMSeconds overrides it with
    /// the PerVPAConfig gate).
    #[arg(long, default_value = "10m0s", value_parser = go_duration)]
    pub evict_after_oom_threshold: Duration,
    /// Only handle VPAs (and pods) of this namespace.
    #[arg(long, default_value = "")]
    pub vpa_object_namespace: String,
    /// Comma-separated namespaces whose VPAs are ignored.
    #[arg(long, default_value = "")]
    pub ignored_vpa_object_namespaces: String,
    /// Feature gates: CPUStartupBoost, InPlace, PerVPAConfig (e.g. InPlace=true).
    #[arg(long, default_value = "")]
    pub feature_gates: String,
    /// API client flags.
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Leader election flags (the Lease defaults to vpa-updater).
    #[command(flatten)]
    pub leader: LeaderElectionArgs,
    /// Logging flags.
    #[command(flatten)]
    pub log: LogArgs,
}

impl Config {
    /// Checks the combinations upstream refuses at start-up.
    pub fn validate(&self) -> Result<(), String> {
        if !self.vpa_object_namespace.is_empty() && !self.ignored_vpa_object_namespaces.is_empty() {
            return Err("--vpa-object-namespace and --ignored-vpa-object-namespaces are mutually exclusive and can't be set together.".into());
        }
        FeatureGates::parse(&self.feature_gates)?;
        Ok(())
    }

    /// The decision settings.
    pub fn settings(&self) -> Result<UpdaterSettings, String> {
        Ok(UpdaterSettings {
            min_replicas: self.min_replicas,
            eviction_tolerance: self.eviction_tolerance,
            pod_update_threshold: self.pod_update_threshold,
            pod_lifetime_update_threshold: self
                .in_recommendation_bounds_eviction_lifetime_threshold,
            evict_after_oom_threshold: self.evict_after_oom_threshold,
            in_place_skip_disruption_budget: self.in_place_skip_disruption_budget,
            gates: FeatureGates::parse(&self.feature_gates)?,
        })
    }

    /// The VPA namespace filter.
    pub fn namespace_filter(&self) -> NamespaceFilter {
        NamespaceFilter::from_flags(
            &self.vpa_object_namespace,
            &self.ignored_vpa_object_namespaces,
        )
    }

    /// Fresh token buckets: one for evictions, one for in-place resizes (same settings).
    pub fn rate_limiters(&self) -> (TokenBucket, TokenBucket) {
        let bucket = || TokenBucket::new(self.eviction_rate_limit, self.eviction_rate_burst);
        (bucket(), bucket())
    }

    /// The namespace of the admission controller's status Lease: the flag, else the value
    /// of `$NAMESPACE` (passed in), else kube-system.
    pub fn status_lease_namespace(&self, env_namespace: Option<&str>) -> String {
        if !self.admission_controller_status_lease_namespace.is_empty() {
            return self.admission_controller_status_lease_namespace.clone();
        }
        match env_namespace {
            Some(ns) if !ns.is_empty() => ns.to_string(),
            _ => DEFAULT_STATUS_NAMESPACE.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("vpa-updater").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_are_upstreams() -> Result<(), clap::Error> {
        let c = parse(&[])?;
        assert_eq!(c.updater_interval, Duration::from_minutes(1));
        assert_eq!(c.min_replicas, 2);
        assert_eq!(c.eviction_tolerance, 0.5);
        assert_eq!(c.eviction_rate_limit, -1.0);
        assert_eq!(c.eviction_rate_burst, 1);
        assert_eq!(c.address, ":8943");
        assert!(c.use_admission_controller_status);
        assert!(!c.in_place_skip_disruption_budget);
        assert_eq!(
            c.admission_controller_status_lease_name,
            "vpa-admission-controller"
        );
        assert_eq!(c.admission_controller_status_lease_namespace, "");
        assert_eq!(
            c.admission_controller_status_lease_timeout,
            Duration::from_minutes(1)
        );
        assert_eq!(c.pod_update_threshold, 0.1);
        assert_eq!(
            c.in_recommendation_bounds_eviction_lifetime_threshold,
            Duration::from_hours(12)
        );
        assert_eq!(c.evict_after_oom_threshold, Duration::from_minutes(10));
        assert_eq!(
            c.leader.resource_name(LEADER_ELECTION_DEFAULT_NAME),
            "vpa-updater"
        );
        assert_eq!(c.kube.kube_api_qps, 50.0);
        assert_eq!(c.log.verbosity, 4);
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.settings(), Ok(UpdaterSettings::default()));
        assert!(c.rate_limiters().0.is_unlimited());
        Ok(())
    }

    #[test]
    fn flags_parse() -> Result<(), clap::Error> {
        let c = parse(&[
            "--updater-interval=30s",
            "--min-replicas=1",
            "--eviction-tolerance=0.2",
            "--eviction-rate-limit=2.5",
            "--eviction-rate-burst=3",
            "--use-admission-controller-status=false",
            "--in-place-skip-disruption-budget",
            "--pod-update-threshold=0.3",
            "--in-recommendation-bounds-eviction-lifetime-threshold=1h",
            "--evict-after-oom-threshold=5m",
            "--feature-gates=InPlace=true,PerVPAConfig=true",
            "--leader-elect",
            "--v=2",
        ])?;
        assert_eq!(c.updater_interval, Duration::from_secs(30));
        assert!(!c.use_admission_controller_status);
        assert!(c.in_place_skip_disruption_budget);
        assert!(!c.rate_limiters().1.is_unlimited());
        assert!(c.leader.leader_elect);
        let s = c
            .settings()
            .map_err(|e| clap::Error::raw(clap::error::ErrorKind::InvalidValue, e))?;
        assert_eq!(s.min_replicas, 1);
        assert_eq!(s.eviction_tolerance, 0.2);
        assert_eq!(s.pod_update_threshold, 0.3);
        assert_eq!(s.pod_lifetime_update_threshold, Duration::from_hours(1));
        assert_eq!(s.evict_after_oom_threshold, Duration::from_minutes(5));
        assert!(s.in_place_skip_disruption_budget && s.gates.in_place && s.gates.per_vpa_config);
        assert!(!s.gates.cpu_startup_boost);
        Ok(())
    }

    #[test]
    fn invalid_values_are_refused() -> Result<(), clap::Error> {
        assert!(parse(&["--updater-interval=0s"]).is_err());
        assert!(parse(&["--admission-controller-status-lease-timeout=0s"]).is_err());
        assert!(parse(&["--evict-after-oom-threshold=ten"]).is_err());
        let both = parse(&[
            "--vpa-object-namespace=a",
            "--ignored-vpa-object-namespaces=b",
        ])?;
        assert!(both.validate().is_err());
        let gates = parse(&["--feature-gates=Nope=true"])?;
        assert!(gates.validate().is_err());
        assert!(gates.settings().is_err());
        Ok(())
    }

    #[test]
    fn status_lease_namespace_falls_back_to_env_then_kube_system() -> Result<(), clap::Error> {
        let c = parse(&[])?;
        assert_eq!(c.status_lease_namespace(None), "kube-system");
        assert_eq!(c.status_lease_namespace(Some("")), "kube-system");
        assert_eq!(c.status_lease_namespace(Some("vpa")), "vpa");
        let flag = parse(&["--admission-controller-status-lease-namespace=x"])?;
        assert_eq!(flag.status_lease_namespace(Some("vpa")), "x");
        Ok(())
    }

    #[test]
    fn namespace_filter_from_flags() -> Result<(), clap::Error> {
        let c = parse(&["--ignored-vpa-object-namespaces=kube-system,b"])?;
        let f = c.namespace_filter();
        assert!(f.allows("a") && !f.allows("b"));
        Ok(())
    }
}
