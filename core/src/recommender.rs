//! The pod resource recommender: runs the estimator chain for every container of one VPA
//! (upstream `logic/recommender.go` `GetRecommendedPodResources`).

use crate::estimator::{
    ConfidenceMultiplier, MarginEstimator, MinResourcesEstimator, PercentileEstimator,
    ResourceEstimator,
};
use crate::model::{
    AggregateContainerState, Resources, cpu_amount_from_cores, memory_amount_from_bytes,
    scale_resource,
};
use crate::time::Duration;
use std::collections::BTreeMap;
use thiserror::Error;

/// The estimator settings (upstream flags, with their defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct RecommenderConfig {
    /// `--target-cpu-percentile` (0.9).
    pub target_cpu_percentile: f64,
    /// `--recommendation-lower-bound-cpu-percentile` (0.5).
    pub lower_bound_cpu_percentile: f64,
    /// `--recommendation-upper-bound-cpu-percentile` (0.95).
    pub upper_bound_cpu_percentile: f64,
    /// `--target-memory-percentile` (0.9).
    pub target_memory_percentile: f64,
    /// `--recommendation-lower-bound-memory-percentile` (0.5).
    pub lower_bound_memory_percentile: f64,
    /// `--recommendation-upper-bound-memory-percentile` (0.95).
    pub upper_bound_memory_percentile: f64,
    /// `--recommendation-margin-fraction` (0.15).
    pub margin_fraction: f64,
    /// `--confidence-interval-cpu` (24h).
    pub confidence_interval_cpu: Duration,
    /// `--confidence-interval-memory` (24h).
    pub confidence_interval_memory: Duration,
    /// `--pod-recommendation-min-cpu-millicores` (25).
    pub pod_min_cpu_millicores: f64,
    /// `--pod-recommendation-min-memory-mb` (250, in MiB).
    pub pod_min_memory_mb: f64,
}

impl Default for RecommenderConfig {
    fn default() -> Self {
        Self {
            target_cpu_percentile: 0.9,
            lower_bound_cpu_percentile: 0.5,
            upper_bound_cpu_percentile: 0.95,
            target_memory_percentile: 0.9,
            lower_bound_memory_percentile: 0.5,
            upper_bound_memory_percentile: 0.95,
            margin_fraction: 0.15,
            confidence_interval_cpu: Duration::from_hours(24),
            confidence_interval_memory: Duration::from_hours(24),
            pod_min_cpu_millicores: 25.0,
            pod_min_memory_mb: 250.0,
        }
    }
}

/// Settings that upstream refuses to start with.
#[derive(Debug, Error, PartialEq)]
pub enum ConfigError {
    /// Percentiles out of order.
    #[error(
        "make sure 0 < recommendation-lower-bound-{0}-percentile <= target-{0}-percentile <= recommendation-upper-bound-{0}-percentile"
    )]
    PercentileOrder(&'static str),
    /// A non-positive confidence interval.
    #[error("confidence-interval-{0} must be positive")]
    ConfidenceInterval(&'static str),
}

impl RecommenderConfig {
    /// Checks the percentile order upstream enforces at start-up.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ordered = |lo: f64, t: f64, up: f64| lo > 0.0 && lo <= t && t <= up;
        if !ordered(
            self.lower_bound_cpu_percentile,
            self.target_cpu_percentile,
            self.upper_bound_cpu_percentile,
        ) {
            return Err(ConfigError::PercentileOrder("cpu"));
        }
        if !ordered(
            self.lower_bound_memory_percentile,
            self.target_memory_percentile,
            self.upper_bound_memory_percentile,
        ) {
            return Err(ConfigError::PercentileOrder("memory"));
        }
        if self.confidence_interval_cpu.as_nanos() <= 0 {
            return Err(ConfigError::ConfidenceInterval("cpu"));
        }
        if self.confidence_interval_memory.as_nanos() <= 0 {
            return Err(ConfigError::ConfidenceInterval("memory"));
        }
        Ok(())
    }
}

/// Target and bounds of one container, in millicores and bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecommendedContainerResources {
    /// Recommended amount.
    pub target: Resources,
    /// Lower bound.
    pub lower_bound: Resources,
    /// Upper bound.
    pub upper_bound: Resources,
}

/// Computes recommendations from aggregated usage.
#[derive(Debug, Clone, Default)]
pub struct PodResourceRecommender {
    config: RecommenderConfig,
}

impl PodResourceRecommender {
    /// A recommender with the given settings.
    pub fn new(config: RecommenderConfig) -> Self {
        Self { config }
    }

    /// The settings.
    pub fn config(&self) -> &RecommenderConfig {
        &self.config
    }

    /// Recommendations for the containers of one VPA, keyed by container name. The pod
    /// minimums are split evenly across the containers.
    pub fn recommend(
        &self,
        containers: &BTreeMap<String, AggregateContainerState>,
    ) -> BTreeMap<String, RecommendedContainerResources> {
        let mut out = BTreeMap::new();
        if containers.is_empty() {
            return out;
        }
        let c = &self.config;
        let fraction = 1.0 / containers.len() as f64;
        let min_cpu = scale_resource(
            cpu_amount_from_cores(c.pod_min_cpu_millicores * 0.001),
            fraction,
        );
        let min_memory = scale_resource(
            memory_amount_from_bytes(c.pod_min_memory_mb * 1024.0 * 1024.0),
            fraction,
        );
        let margin = |cpu_percentile: f64, memory_percentile: f64| MarginEstimator {
            fraction: c.margin_fraction,
            base: PercentileEstimator {
                cpu_percentile,
                memory_percentile,
            },
        };
        let target = MinResourcesEstimator {
            min_cpu,
            min_memory,
            base: margin(c.target_cpu_percentile, c.target_memory_percentile),
        };
        let lower = MinResourcesEstimator {
            min_cpu,
            min_memory,
            base: ConfidenceMultiplier {
                multiplier: 0.001,
                exponent: -2.0,
                cpu_interval: c.confidence_interval_cpu,
                memory_interval: c.confidence_interval_memory,
                base: margin(
                    c.lower_bound_cpu_percentile,
                    c.lower_bound_memory_percentile,
                ),
            },
        };
        let upper = MinResourcesEstimator {
            min_cpu,
            min_memory,
            base: ConfidenceMultiplier {
                multiplier: 1.0,
                exponent: 1.0,
                cpu_interval: c.confidence_interval_cpu,
                memory_interval: c.confidence_interval_memory,
                base: margin(
                    c.upper_bound_cpu_percentile,
                    c.upper_bound_memory_percentile,
                ),
            },
        };
        for (name, state) in containers {
            let controlled = state.controlled_resources;
            out.insert(
                name.clone(),
                RecommendedContainerResources {
                    target: controlled.filter(target.estimate(state)),
                    lower_bound: controlled.filter(lower.estimate(state)),
                    upper_bound: controlled.filter(upper.estimate(state)),
                },
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::{AggregationsConfig, ContainerState, UsageSample};
    use crate::policy::ControlledResources;
    use crate::time::Timestamp;
    use std::sync::Arc;

    fn constant_state(cpu_milli: i64, mem: i64, n: i64) -> AggregateContainerState {
        let cfg = Arc::new(AggregationsConfig::default());
        let start = Timestamp::from_unix_seconds(1_700_000_000);
        let mut s = AggregateContainerState::new(&cfg, start);
        let mut c = ContainerState::default();
        for i in 0..n {
            let t = start.add(Duration::from_minutes(i));
            assert!(c.add_sample(&UsageSample::cpu(t, cpu_milli), &mut s));
            assert!(c.add_sample(&UsageSample::memory(t, mem), &mut s));
        }
        s
    }

    #[test]
    fn row_067_min_resources_applied() {
        let r = PodResourceRecommender::default();
        let m = BTreeMap::from([("c".to_string(), constant_state(1, 1_000_000, 10))]);
        let rec = &r.recommend(&m)["c"];
        assert_eq!(rec.target, Resources::new(25, 262_144_000));
    }

    #[test]
    fn row_068_min_resources_split_across_containers() {
        let r = PodResourceRecommender::default();
        let m = BTreeMap::from([
            ("a".to_string(), constant_state(1, 1_000_000, 10)),
            ("b".to_string(), constant_state(1, 1_000_000, 10)),
        ]);
        for rec in r.recommend(&m).values() {
            assert_eq!(rec.target, Resources::new(12, 131_072_000));
        }
    }

    #[test]
    fn row_069_controlled_resources_filtered() {
        let r = PodResourceRecommender::default();
        let mut s = constant_state(500, 200 << 20, 100);
        s.controlled_resources = ControlledResources::from_names(["memory"]);
        let m = BTreeMap::from([("c".to_string(), s)]);
        let rec = &r.recommend(&m)["c"];
        for res in [rec.target, rec.lower_bound, rec.upper_bound] {
            assert_eq!(res.cpu, None);
            assert!(res.memory.is_some());
        }
    }

    /// The worked example of behaviour file §1.8: 0.5 core and 200Mi, 1440 samples a minute apart.
    #[test]
    fn derived_worked_example() {
        let r = PodResourceRecommender::default();
        let m = BTreeMap::from([("c".to_string(), constant_state(500, 200 << 20, 1440))]);
        let rec = &r.recommend(&m)["c"];
        assert_eq!(rec.target, Resources::new(587, 262_144_000));
        assert_eq!(rec.lower_bound.cpu, Some(585));
        assert_eq!(rec.upper_bound.cpu, Some(1174));
    }

    #[test]
    fn no_containers_no_recommendation() {
        assert!(
            PodResourceRecommender::default()
                .recommend(&BTreeMap::new())
                .is_empty()
        );
    }

    #[test]
    fn percentile_order_is_validated() {
        assert!(RecommenderConfig::default().validate().is_ok());
        let bad = RecommenderConfig {
            target_cpu_percentile: 0.99,
            upper_bound_cpu_percentile: 0.95,
            ..Default::default()
        };
        assert_eq!(bad.validate(), Err(ConfigError::PercentileOrder("cpu")));
    }
}
