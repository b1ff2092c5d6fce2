//! Engine settings shared by every aggregate: histogram layouts, half-lives, the memory
//! aggregation window and the OOM bump (upstream `model/aggregations_config.go`).

use crate::histogram::HistogramOptions;
use crate::time::Duration;
use std::sync::Arc;

/// Weight of one CPU sample (constant since upstream v1.4.0).
pub const MIN_SAMPLE_WEIGHT: f64 = 0.1;
/// Histogram epsilon: `0.001 * MIN_SAMPLE_WEIGHT`.
pub const EPSILON: f64 = 1e-4;
/// Buckets grow by 5%.
pub const DEFAULT_HISTOGRAM_BUCKET_SIZE_GROWTH: f64 = 0.05;
/// Default memory aggregation interval: 24h.
pub const DEFAULT_MEMORY_AGGREGATION_INTERVAL: Duration = Duration::from_hours(24);
/// Default number of memory aggregation intervals kept: 8.
pub const DEFAULT_MEMORY_AGGREGATION_INTERVAL_COUNT: i64 = 8;
/// Default half-life of both histograms: 24h.
pub const DEFAULT_HISTOGRAM_DECAY_HALF_LIFE: Duration = Duration::from_hours(24);
/// Default OOM bump ratio.
pub const DEFAULT_OOM_BUMP_UP_RATIO: f64 = 1.2;
/// Default minimal OOM bump: 100 MiB.
pub const DEFAULT_OOM_MIN_BUMP_UP: f64 = 100.0 * 1024.0 * 1024.0;
/// The checkpoint format this engine reads and writes.
pub const SUPPORTED_CHECKPOINT_VERSION: &str = "v3";

/// Settings of the aggregation model.
#[derive(Debug, Clone)]
pub struct AggregationsConfig {
    /// Length of one memory peak window.
    pub memory_aggregation_interval: Duration,
    /// How many windows make the history (window = interval × count).
    pub memory_aggregation_interval_count: i64,
    /// Half-life of the memory peaks histogram.
    pub memory_histogram_decay_half_life: Duration,
    /// Half-life of the CPU usage histogram.
    pub cpu_histogram_decay_half_life: Duration,
    /// Multiplier applied to the memory at an OOM kill.
    pub oom_bump_up_ratio: f64,
    /// Minimal bump at an OOM kill, in bytes.
    pub oom_min_bump_up: f64,
    /// CPU histogram layout (cores).
    pub cpu_histogram_options: Arc<HistogramOptions>,
    /// Memory histogram layout (bytes).
    pub memory_histogram_options: Arc<HistogramOptions>,
}

impl AggregationsConfig {
    /// A configuration with the production bucket layouts.
    pub fn new(
        memory_aggregation_interval: Duration,
        memory_aggregation_interval_count: i64,
        memory_histogram_decay_half_life: Duration,
        cpu_histogram_decay_half_life: Duration,
        oom_bump_up_ratio: f64,
        oom_min_bump_up: f64,
    ) -> Self {
        Self {
            memory_aggregation_interval,
            memory_aggregation_interval_count,
            memory_histogram_decay_half_life,
            cpu_histogram_decay_half_life,
            oom_bump_up_ratio,
            oom_min_bump_up,
            cpu_histogram_options: Arc::new(cpu_histogram_options()),
            memory_histogram_options: Arc::new(memory_histogram_options()),
        }
    }

    /// The history window: interval × count.
    pub fn memory_aggregation_window_length(&self) -> Duration {
        self.memory_aggregation_interval
            .mul(self.memory_aggregation_interval_count)
    }
}

impl Default for AggregationsConfig {
    fn default() -> Self {
        Self::new(
            DEFAULT_MEMORY_AGGREGATION_INTERVAL,
            DEFAULT_MEMORY_AGGREGATION_INTERVAL_COUNT,
            DEFAULT_HISTOGRAM_DECAY_HALF_LIFE,
            DEFAULT_HISTOGRAM_DECAY_HALF_LIFE,
            DEFAULT_OOM_BUMP_UP_RATIO,
            DEFAULT_OOM_MIN_BUMP_UP,
        )
    }
}

/// CPU layout: 0.01 core first bucket, up to 1000 cores, 5% growth (176 buckets).
pub fn cpu_histogram_options() -> HistogramOptions {
    HistogramOptions::exponential_trusted(
        1000.0,
        0.01,
        1.0 + DEFAULT_HISTOGRAM_BUCKET_SIZE_GROWTH,
        EPSILON,
    )
}

/// Memory layout: 10 MB first bucket, up to 1 TB, 5% growth (176 buckets).
pub fn memory_histogram_options() -> HistogramOptions {
    HistogramOptions::exponential_trusted(
        1e12,
        1e7,
        1.0 + DEFAULT_HISTOGRAM_BUCKET_SIZE_GROWTH,
        EPSILON,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::approx_constant)]
    use super::*;

    #[test]
    fn production_layouts_have_176_buckets() {
        let cpu = cpu_histogram_options();
        let mem = memory_histogram_options();
        assert_eq!(cpu.num_buckets(), 176);
        assert_eq!(mem.num_buckets(), 176);
        let s = cpu.bucket_starts();
        for (b, want) in [
            (1, 0.01),
            (2, 0.0205),
            (3, 0.031525),
            (10, 0.12578),
            (36, 0.95836),
            (37, 1.01628),
            (174, 972.476),
            (175, 1021.109),
        ] {
            assert!(
                (s[b] - want).abs() < 1e-5 * want,
                "cpu bucket {b}: {}",
                s[b]
            );
        }
        assert_eq!(cpu.find_bucket(0.5), 25);
        assert_eq!(cpu.find_bucket(1.0), 36);
        assert_eq!(cpu.find_bucket(3.14), 57);
        assert_eq!(mem.find_bucket(200.0 * 1024.0 * 1024.0), 14);
        assert!((mem.bucket_start(15).unwrap() - 215_785_635.88).abs() < 0.01);
        assert_eq!(mem.find_bucket(2e9), 49);
        assert!((mem.bucket_start(50).unwrap() - 2_093_479_957.15).abs() < 0.01);
    }
}
