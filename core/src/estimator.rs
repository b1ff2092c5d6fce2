//! Resource estimators and their chain: percentile → margin → confidence → minimum
//! (upstream `logic/estimator.go`). Each estimator maps an aggregate to CPU and memory amounts.

use crate::gomath;
use crate::model::{
    AggregateContainerState, ResourceAmount, Resources, cpu_amount_from_cores,
    memory_amount_from_bytes, scale_resource,
};
use crate::time::{self, Duration};

/// Estimates CPU and memory for one aggregate.
pub trait ResourceEstimator {
    /// The estimate.
    fn estimate(&self, s: &AggregateContainerState) -> Resources;
}

/// The CPU percentile of the usage histogram and the memory percentile of the peaks.
#[derive(Debug, Clone, Copy)]
pub struct PercentileEstimator {
    /// CPU percentile in [0, 1].
    pub cpu_percentile: f64,
    /// Memory percentile in [0, 1].
    pub memory_percentile: f64,
}

impl ResourceEstimator for PercentileEstimator {
    fn estimate(&self, s: &AggregateContainerState) -> Resources {
        Resources::new(
            cpu_amount_from_cores(s.cpu_usage.percentile(self.cpu_percentile)),
            memory_amount_from_bytes(s.memory_peaks.percentile(self.memory_percentile)),
        )
    }
}

/// Adds `fraction` of the base estimate (each term truncated separately).
#[derive(Debug, Clone)]
pub struct MarginEstimator<E> {
    /// Safety margin fraction.
    pub fraction: f64,
    /// Inner estimator.
    pub base: E,
}

impl<E: ResourceEstimator> ResourceEstimator for MarginEstimator<E> {
    fn estimate(&self, s: &AggregateContainerState) -> Resources {
        self.base
            .estimate(s)
            .map(|_, v| v + scale_resource(v, self.fraction))
    }
}

/// Scales by `(1 + multiplier / confidence)^exponent`, where confidence is the history
/// length in units of the confidence interval (see [`confidence`]).
#[derive(Debug, Clone)]
pub struct ConfidenceMultiplier<E> {
    /// Multiplier.
    pub multiplier: f64,
    /// Exponent.
    pub exponent: f64,
    /// Confidence interval for CPU.
    pub cpu_interval: Duration,
    /// Confidence interval for memory.
    pub memory_interval: Duration,
    /// Inner estimator.
    pub base: E,
}

/// How much history backs an aggregate: the smaller of its CPU sample span and its CPU
/// sample count at one sample per minute, both in units of `interval` (days by default).
pub fn confidence(s: &AggregateContainerState, interval: Duration) -> f64 {
    let lifespan = time::since(s.last_sample_start, s.first_sample_start).as_nanos_f64()
        / interval.as_nanos_f64();
    let samples = s.total_samples_count as f64 / interval.as_minutes_f64();
    lifespan.min(samples)
}

impl<E: ResourceEstimator> ResourceEstimator for ConfidenceMultiplier<E> {
    fn estimate(&self, s: &AggregateContainerState) -> Resources {
        let base = self.base.estimate(s);
        let factor = |interval: Duration| {
            gomath::pow(
                1.0 + self.multiplier / confidence(s, interval),
                self.exponent,
            )
        };
        Resources {
            cpu: base
                .cpu
                .map(|v| scale_resource(v, factor(self.cpu_interval))),
            memory: base
                .memory
                .map(|v| scale_resource(v, factor(self.memory_interval))),
        }
    }
}

/// Raises each resource to a minimum.
#[derive(Debug, Clone)]
pub struct MinResourcesEstimator<E> {
    /// Minimum millicores.
    pub min_cpu: ResourceAmount,
    /// Minimum bytes.
    pub min_memory: ResourceAmount,
    /// Inner estimator.
    pub base: E,
}

impl<E: ResourceEstimator> ResourceEstimator for MinResourcesEstimator<E> {
    fn estimate(&self, s: &AggregateContainerState) -> Resources {
        let b = self.base.estimate(s);
        Resources {
            cpu: b.cpu.map(|v| v.max(self.min_cpu)),
            memory: b.memory.map(|v| v.max(self.min_memory)),
        }
    }
}

impl<E: ResourceEstimator + ?Sized> ResourceEstimator for &E {
    fn estimate(&self, s: &AggregateContainerState) -> Resources {
        (**self).estimate(s)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::{AggregationsConfig, ContainerState, UsageSample};
    use crate::time::Timestamp;
    use std::sync::Arc;

    fn state() -> AggregateContainerState {
        AggregateContainerState::new(
            &Arc::new(AggregationsConfig::default()),
            Timestamp::UNIX_EPOCH,
        )
    }

    /// A fixed estimate, for testing the wrappers.
    struct Constant(Resources);
    impl ResourceEstimator for Constant {
        fn estimate(&self, _: &AggregateContainerState) -> Resources {
            self.0
        }
    }

    #[test]
    fn row_059_percentile_estimator() {
        let mut s = state();
        let t = Timestamp::from_unix_seconds(1_000_000);
        for cores in [1.0, 2.0, 3.0] {
            s.cpu_usage.add_sample(cores, 1.0, t);
        }
        for bytes in [1e9, 2e9, 3e9] {
            s.memory_peaks.add_sample(bytes, 1.0, t);
        }
        let e = PercentileEstimator {
            cpu_percentile: 0.2,
            memory_percentile: 0.5,
        };
        let r = e.estimate(&s);
        assert_eq!(r.cpu, Some(1016));
        assert_eq!(r.memory, Some(2_093_479_957));
        assert!((r.cpu.unwrap() as f64 - 1000.0).abs() <= 50.0);
        assert!((r.memory.unwrap() as f64 - 2e9).abs() <= 1e8);
    }

    #[test]
    fn row_060_confidence_multiplier_without_history() {
        let s = state();
        let base = Constant(Resources::new(3140, 3_140_000_000));
        let day = Duration::from_hours(24);
        let up = multiplier(1.0, 1.0, day, &base);
        assert_eq!(up.estimate(&s).cpu, Some(crate::model::MAX_RESOURCE_AMOUNT));
        let down = multiplier(1.0, -1.0, day, &base);
        assert_eq!(down.estimate(&s).cpu, Some(0));
    }

    fn multiplier(
        multiplier: f64,
        exponent: f64,
        interval: Duration,
        base: &Constant,
    ) -> ConfidenceMultiplier<&Constant> {
        ConfidenceMultiplier {
            multiplier,
            exponent,
            cpu_interval: interval,
            memory_interval: interval,
            base,
        }
    }

    fn nine_samples_two_minutes_apart() -> AggregateContainerState {
        let mut s = state();
        let mut c = ContainerState::default();
        for i in 0..9 {
            let t = Timestamp::from_unix_seconds(i * 120);
            assert!(c.add_sample(&UsageSample::cpu(t, 1000), &mut s));
        }
        s
    }

    #[test]
    fn row_061_confidence_from_sample_count() {
        let s = nine_samples_two_minutes_apart();
        let c = confidence(&s, Duration::from_hours(24));
        assert!((c - 0.00625).abs() < 1e-12, "{c}");
    }

    #[test]
    fn row_062_confidence_multiplier_scales() {
        let s = nine_samples_two_minutes_apart();
        let base = Constant(Resources::new(3140, 3_140_000_000));
        let day = Duration::from_hours(24);
        let e = multiplier(0.1, 2.0, day, &base);
        let r = e.estimate(&s);
        // (1 + 0.1/0.00625)^2 = 289: 907.46 cores and 9.0746e11 bytes.
        assert_eq!(r.cpu, Some(907_460));
        assert_eq!(r.memory, Some(907_460_000_000));
    }

    #[test]
    fn row_063_confidence_with_custom_interval() {
        let s = nine_samples_two_minutes_apart();
        let interval = Duration::from_minutes(18);
        assert!((confidence(&s, interval) - 0.5).abs() < 1e-12);
        let base = Constant(Resources::new(3140, 3_140_000_000));
        let e = multiplier(0.1, 2.0, interval, &base);
        let r = e.estimate(&s);
        assert_eq!(r.cpu, Some(4521));
        assert_eq!(r.memory, Some(4_521_600_000));
    }

    #[test]
    fn row_064_confidence_multiplier_no_history() {
        let s = state();
        let base = Constant(Resources::new(3140, 3_140_000_000));
        let day = Duration::from_hours(24);
        let e = multiplier(0.1, 2.0, day, &base);
        assert_eq!(
            e.estimate(&s),
            Resources::new(
                crate::model::MAX_RESOURCE_AMOUNT,
                crate::model::MAX_RESOURCE_AMOUNT
            )
        );
    }

    #[test]
    fn row_065_margin() {
        let base = Constant(Resources::new(3140, 3_140_000_000));
        let e = MarginEstimator {
            fraction: 0.1,
            base: &base,
        };
        assert_eq!(e.estimate(&state()), Resources::new(3454, 3_454_000_000));
    }

    #[test]
    fn row_066_min_resources() {
        let base = Constant(Resources::new(3140, 400_000_000));
        let e = MinResourcesEstimator {
            min_cpu: 200,
            min_memory: 20_000_000,
            base: &base,
        };
        assert_eq!(e.estimate(&state()), Resources::new(3140, 400_000_000));
        let small = Constant(Resources::new(100, 1));
        let e = MinResourcesEstimator {
            min_cpu: 200,
            min_memory: 20_000_000,
            base: &small,
        };
        assert_eq!(e.estimate(&state()), Resources::new(200, 20_000_000));
    }
}
