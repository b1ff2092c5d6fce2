//! Command-line configuration: the upstream recommender flags that shape recommendations,
//! with upstream's names and defaults, shared by `replay` and the in-cluster recommender.

use clap::Args;
use vpa_core::model::{AggregationsConfig, Resources};
use vpa_core::quantity;
use vpa_core::recommendation::OutputFormat;
use vpa_core::recommender::{PodResourceRecommender, RecommenderConfig};
use vpa_core::time::{Duration, parse_go_duration};

fn go_duration(s: &str) -> Result<Duration, String> {
    parse_go_duration(s).map_err(|e| e.to_string())
}

fn percentile(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("{s} is not a percentile in [0, 1]"));
    }
    Ok(v)
}

fn non_negative(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !(v >= 0.0 && v.is_finite()) {
        return Err(format!("{s} must be a finite number >= 0"));
    }
    Ok(v)
}

/// Flags of the recommendation engine (upstream names and defaults).
#[derive(Debug, Clone, Args)]
pub struct EngineFlags {
    /// CPU usage percentile that will be used as a base for CPU target recommendation.
    #[arg(long, default_value = "0.9", value_parser = percentile)]
    pub target_cpu_percentile: f64,
    /// CPU usage percentile that will be used for the lower bound on CPU recommendation.
    #[arg(long, default_value = "0.5", value_parser = percentile)]
    pub recommendation_lower_bound_cpu_percentile: f64,
    /// CPU usage percentile that will be used for the upper bound on CPU recommendation.
    #[arg(long, default_value = "0.95", value_parser = percentile)]
    pub recommendation_upper_bound_cpu_percentile: f64,
    /// Memory usage percentile that will be used as a base for memory target recommendation.
    #[arg(long, default_value = "0.9", value_parser = percentile)]
    pub target_memory_percentile: f64,
    /// Memory usage percentile that will be used for the lower bound on memory recommendation.
    #[arg(long, default_value = "0.5", value_parser = percentile)]
    pub recommendation_lower_bound_memory_percentile: f64,
    /// Memory usage percentile that will be used for the upper bound on memory recommendation.
    #[arg(long, default_value = "0.95", value_parser = percentile)]
    pub recommendation_upper_bound_memory_percentile: f64,
    /// Fraction of usage added as the safety margin to the recommended request.
    #[arg(long, default_value = "0.15", value_parser = non_negative)]
    pub recommendation_margin_fraction: f64,
    /// History length after which the CPU confidence multiplier reaches 1 (Go duration).
    #[arg(long, default_value = "24h", value_parser = go_duration)]
    pub confidence_interval_cpu: Duration,
    /// History length after which the memory confidence multiplier reaches 1 (Go duration).
    #[arg(long, default_value = "24h", value_parser = go_duration)]
    pub confidence_interval_memory: Duration,
    /// Minimum CPU recommendation for a pod, in millicores.
    #[arg(long, default_value = "25", value_parser = non_negative)]
    pub pod_recommendation_min_cpu_millicores: f64,
    /// Minimum memory recommendation for a pod, in MiB.
    #[arg(long, default_value = "250", value_parser = non_negative)]
    pub pod_recommendation_min_memory_mb: f64,
    /// Half-life of the CPU usage histogram decay (Go duration).
    #[arg(long, default_value = "24h", value_parser = go_duration)]
    pub cpu_histogram_decay_half_life: Duration,
    /// Half-life of the memory peaks histogram decay (Go duration).
    #[arg(long, default_value = "24h", value_parser = go_duration)]
    pub memory_histogram_decay_half_life: Duration,
    /// Length of one memory peak aggregation interval (Go duration).
    #[arg(long, default_value = "24h", value_parser = go_duration)]
    pub memory_aggregation_interval: Duration,
    /// Number of memory aggregation intervals in the history window.
    #[arg(long, default_value = "8", value_parser = clap::value_parser!(i64).range(1..))]
    pub memory_aggregation_interval_count: i64,
    /// Ratio by which memory is bumped up after an OOM kill.
    #[arg(long, default_value = "1.2", value_parser = non_negative)]
    pub oom_bump_up_ratio: f64,
    /// Minimal increase of memory after an OOM kill, in bytes.
    #[arg(long, default_value = "104857600", value_parser = non_negative)]
    pub oom_min_bump_up_bytes: f64,
    /// Round CPU recommendations up to a multiple of this many millicores.
    #[arg(long, default_value = "1")]
    pub round_cpu_millicores: i64,
    /// Round memory recommendations up to a multiple of this many bytes.
    #[arg(long, default_value = "1")]
    pub round_memory_bytes: i64,
    /// Deprecated: convert memory recommendations to two-decimal binary units.
    #[arg(long, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub humanize_memory: bool,
    /// Maximum CPU recommendation of a container (a quantity); unset means no cap.
    #[arg(long, value_parser = cpu_quantity)]
    pub container_recommendation_max_allowed_cpu: Option<i64>,
    /// Maximum memory recommendation of a container (a quantity); unset means no cap.
    #[arg(long, value_parser = memory_quantity)]
    pub container_recommendation_max_allowed_memory: Option<i64>,
}

fn cpu_quantity(s: &str) -> Result<i64, String> {
    quantity::parse(s)
        .map(|q| q.milli_value())
        .map_err(|e| e.to_string())
}

fn memory_quantity(s: &str) -> Result<i64, String> {
    quantity::parse(s)
        .map(|q| q.value())
        .map_err(|e| e.to_string())
}

impl EngineFlags {
    /// The aggregation model settings.
    pub fn aggregations(&self) -> AggregationsConfig {
        AggregationsConfig::new(
            self.memory_aggregation_interval,
            self.memory_aggregation_interval_count,
            self.memory_histogram_decay_half_life,
            self.cpu_histogram_decay_half_life,
            self.oom_bump_up_ratio,
            self.oom_min_bump_up_bytes,
        )
    }

    /// The estimator settings, validated as upstream does at start-up.
    pub fn recommender(&self) -> Result<PodResourceRecommender, String> {
        let cfg = RecommenderConfig {
            target_cpu_percentile: self.target_cpu_percentile,
            lower_bound_cpu_percentile: self.recommendation_lower_bound_cpu_percentile,
            upper_bound_cpu_percentile: self.recommendation_upper_bound_cpu_percentile,
            target_memory_percentile: self.target_memory_percentile,
            lower_bound_memory_percentile: self.recommendation_lower_bound_memory_percentile,
            upper_bound_memory_percentile: self.recommendation_upper_bound_memory_percentile,
            margin_fraction: self.recommendation_margin_fraction,
            confidence_interval_cpu: self.confidence_interval_cpu,
            confidence_interval_memory: self.confidence_interval_memory,
            pod_min_cpu_millicores: self.pod_recommendation_min_cpu_millicores,
            pod_min_memory_mb: self.pod_recommendation_min_memory_mb,
        };
        cfg.validate().map_err(|e| e.to_string())?;
        if self.memory_aggregation_interval.as_nanos() <= 0 {
            return Err("--memory-aggregation-interval must be positive".into());
        }
        if self.cpu_histogram_decay_half_life.as_nanos() <= 0
            || self.memory_histogram_decay_half_life.as_nanos() <= 0
        {
            return Err("histogram decay half-lives must be positive".into());
        }
        Ok(PodResourceRecommender::new(cfg))
    }

    /// How amounts become quantities.
    pub fn output_format(&self) -> OutputFormat {
        OutputFormat {
            round_cpu_millicores: self.round_cpu_millicores,
            round_memory_bytes: self.round_memory_bytes,
            humanize_memory: self.humanize_memory,
        }
    }

    /// The global max-allowed caps.
    pub fn global_max_allowed(&self) -> Resources {
        Resources {
            cpu: self.container_recommendation_max_allowed_cpu,
            memory: self.container_recommendation_max_allowed_memory,
        }
    }
}
