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

fn positive_go_duration(s: &str) -> Result<Duration, String> {
    let d = parse_go_duration(s).map_err(|e| e.to_string())?;
    if d.as_nanos() <= 0 {
        return Err(format!("{s} must be positive"));
    }
    Ok(d)
}

/// Flags of the in-cluster recommender loop (upstream names and defaults, §1.16), besides
/// the engine flags.
#[derive(Debug, Clone, Args)]
pub struct LoopFlags {
    /// Name of this recommender: it handles the VPAs whose spec.recommenders names it (the
    /// default recommender also takes VPAs naming none).
    #[arg(long, default_value = "default")]
    pub recommender_name: String,
    /// How often the recommender loop runs (Go duration).
    #[arg(long, default_value = "1m0s", value_parser = positive_go_duration)]
    pub recommender_interval: Duration,
    /// How often checkpoints of deleted VPAs are garbage-collected (Go duration).
    #[arg(long, default_value = "10m0s", value_parser = positive_go_duration)]
    pub checkpoints_gc_interval: Duration,
    /// Time budget of checkpoint writing per loop (Go duration).
    #[arg(long, default_value = "1m0s", value_parser = positive_go_duration)]
    pub checkpoints_timeout: Duration,
    /// Address of the admin HTTP server: /healthz, /readyz, /metrics (upstream: health
    /// check and metrics).
    #[arg(long, default_value = ":8942")]
    pub address: String,
    /// Where history comes from at start: "" or "checkpoint" (VPA checkpoints), or
    /// "prometheus" (Prometheus, for VPAs that have no checkpoint yet).
    #[arg(long, default_value = "")]
    pub storage: String,
    /// Model only the pods some VPA selects.
    #[arg(long, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub memory_saver: bool,
    /// Parallel workers for status and checkpoint writes.
    #[arg(long, default_value = "10", value_parser = clap::value_parser!(u32).range(1..))]
    pub update_worker_count: u32,
    /// Deprecated, no effect (as upstream).
    #[arg(long, default_value = "10")]
    pub min_checkpoints: i64,
    /// Only handle VPAs (and pods) of this namespace.
    #[arg(long, default_value = "")]
    pub vpa_object_namespace: String,
    /// Comma-separated namespaces whose VPAs are ignored.
    #[arg(long, default_value = "")]
    pub ignored_vpa_object_namespaces: String,
    /// Round CPU up to whole cores for containers whose VPA has the annotation
    /// vpa-post-processor.kubernetes.io/<container>_integerCPU=true.
    #[arg(long, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub cpu_integer_post_processor_enabled: bool,
    /// Alpha upstream: external metrics instead of metrics.k8s.io (not supported by vpa-rs).
    #[arg(long, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub use_external_metrics: bool,
    /// Feature gates, e.g. PerVPAConfig=true,InPlace=false.
    #[arg(long, default_value = "")]
    pub feature_gates: String,
    /// Read PodMetrics from this base URL (same REST paths as metrics.k8s.io) instead of
    /// through the API server (vpa-rs).
    #[arg(long, default_value = "")]
    pub metrics_url: String,
    /// PEM CA bundle for --metrics-url.
    #[arg(long)]
    pub metrics_ca_file: Option<std::path::PathBuf>,
    /// Bearer token file for --metrics-url.
    #[arg(long)]
    pub metrics_token_file: Option<std::path::PathBuf>,
    /// Skip TLS verification of --metrics-url (tests only).
    #[arg(long, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub metrics_insecure: bool,
}

pub use vpa_core::features::FeatureGates;

/// Parses `--feature-gates` (see [`FeatureGates::parse`]).
pub fn parse_feature_gates(s: &str) -> Result<FeatureGates, String> {
    FeatureGates::parse(s)
}

impl LoopFlags {
    /// Checks the combinations upstream refuses at start-up.
    pub fn validate(&self) -> Result<(), String> {
        if !self.vpa_object_namespace.is_empty() && !self.ignored_vpa_object_namespaces.is_empty() {
            return Err("--vpa-object-namespace and --ignored-vpa-object-namespaces are mutually exclusive and can't be set together.".into());
        }
        match self.storage.as_str() {
            "" | "checkpoint" | "prometheus" => {}
            other => {
                return Err(format!(
                    "--storage={other:?}: expected \"\", \"checkpoint\" or \"prometheus\""
                ));
            }
        }
        if self.use_external_metrics {
            return Err("--use-external-metrics is not supported by vpa-rs: use metrics.k8s.io (metrics-server) or --metrics-url".into());
        }
        parse_feature_gates(&self.feature_gates)?;
        Ok(())
    }

    /// The namespace filter.
    pub fn namespace_filter(&self) -> crate::feeder::NamespaceFilter {
        crate::feeder::NamespaceFilter {
            only: (!self.vpa_object_namespace.is_empty())
                .then(|| self.vpa_object_namespace.clone()),
            ignored: self
                .ignored_vpa_object_namespaces
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }
}
