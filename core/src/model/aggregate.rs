//! The aggregated usage of all containers sharing one aggregation key
//! (upstream `model/aggregate_container_state.go`).

use super::config::{AggregationsConfig, MIN_SAMPLE_WEIGHT, SUPPORTED_CHECKPOINT_VERSION};
use super::resources::{ResourceKind, bytes_from_memory_amount, cores_from_cpu_amount};
use super::sample::UsageSample;
use crate::histogram::{DecayingHistogram, HistogramCheckpoint, HistogramError};
use crate::policy::{ContainerResourcePolicy, ContainerScalingMode, ControlledResources};
use crate::time::{self, Duration, Timestamp};
use std::sync::Arc;
use thiserror::Error;

/// A checkpoint that cannot be restored.
#[derive(Debug, Error, PartialEq)]
pub enum CheckpointError {
    /// Another format version.
    #[error("unsupported checkpoint version {0}")]
    UnsupportedVersion(String),
    /// A histogram is corrupt.
    #[error("{resource} histogram: {source}")]
    Histogram {
        /// Which histogram.
        resource: &'static str,
        /// Why.
        source: HistogramError,
    },
}

/// The content of a `VerticalPodAutoscalerCheckpoint` status, as plain values.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AggregateCheckpoint {
    /// When it was written.
    pub last_update_time: Option<Timestamp>,
    /// Format version, `"v3"`.
    pub version: String,
    /// CPU histogram.
    pub cpu_histogram: HistogramCheckpoint,
    /// CPU histogram reference time.
    pub cpu_reference: Option<Timestamp>,
    /// Memory peaks histogram.
    pub memory_histogram: HistogramCheckpoint,
    /// Memory histogram reference time.
    pub memory_reference: Option<Timestamp>,
    /// First CPU sample.
    pub first_sample_start: Option<Timestamp>,
    /// Last CPU sample.
    pub last_sample_start: Option<Timestamp>,
    /// Number of CPU samples.
    pub total_samples_count: i64,
}

/// Per-VPA settings that override the global configuration (PerVPAConfig gate).
#[derive(Debug, Clone, Default, PartialEq)]
struct Overrides {
    oom_bump_up_ratio: Option<f64>,
    oom_min_bump_up: Option<f64>,
    memory_aggregation_interval: Option<Duration>,
    memory_aggregation_interval_count: Option<i64>,
}

/// Usage histograms and counters of one aggregation key.
#[derive(Debug, Clone)]
pub struct AggregateContainerState {
    /// Decaying histogram of CPU usage samples, in cores.
    pub cpu_usage: DecayingHistogram,
    /// Decaying histogram of per-window memory peaks, in bytes.
    pub memory_peaks: DecayingHistogram,
    /// Start of the first CPU sample (memory samples do not count).
    pub first_sample_start: Option<Timestamp>,
    /// Start of the last CPU sample.
    pub last_sample_start: Option<Timestamp>,
    /// Number of CPU samples.
    pub total_samples_count: i64,
    /// When this state was created.
    pub creation_time: Timestamp,
    /// A VPA selects this aggregation.
    pub is_under_vpa: bool,
    /// The container policy's mode.
    pub scaling_mode: ContainerScalingMode,
    /// The container policy's controlled resources.
    pub controlled_resources: ControlledResources,
    overrides: Option<Box<Overrides>>,
    config: Arc<AggregationsConfig>,
}

impl AggregateContainerState {
    /// An empty state created at `now`.
    pub fn new(config: &Arc<AggregationsConfig>, now: Timestamp) -> Self {
        Self {
            cpu_usage: DecayingHistogram::new(
                config.cpu_histogram_options.clone(),
                config.cpu_histogram_decay_half_life,
            ),
            memory_peaks: DecayingHistogram::new(
                config.memory_histogram_options.clone(),
                config.memory_histogram_decay_half_life,
            ),
            first_sample_start: None,
            last_sample_start: None,
            total_samples_count: 0,
            creation_time: now,
            is_under_vpa: false,
            scaling_mode: ContainerScalingMode::Auto,
            controlled_resources: ControlledResources::default(),
            overrides: None,
            config: config.clone(),
        }
    }

    /// The configuration this state was built with.
    pub fn config(&self) -> &Arc<AggregationsConfig> {
        &self.config
    }

    /// Adds a usage sample: CPU samples weigh 0.1 and count towards the sample counters;
    /// memory samples (per-window peaks) weigh 1.
    #[inline]
    pub fn add_sample(&mut self, sample: &UsageSample) {
        match sample.resource {
            ResourceKind::Cpu => {
                self.cpu_usage.add_sample(
                    cores_from_cpu_amount(sample.usage),
                    MIN_SAMPLE_WEIGHT,
                    sample.measure_start,
                );
                let t = sample.measure_start;
                if self.last_sample_start.is_none_or(|l| t > l) {
                    self.last_sample_start = Some(t);
                }
                if self.first_sample_start.is_none_or(|f| t < f) {
                    self.first_sample_start = Some(t);
                }
                self.total_samples_count += 1;
            }
            ResourceKind::Memory => {
                self.memory_peaks.add_sample(
                    bytes_from_memory_amount(sample.usage),
                    1.0,
                    sample.measure_start,
                );
            }
        }
    }

    /// Removes a memory peak. CPU samples cannot be removed (upstream logs an error).
    pub fn subtract_sample(&mut self, sample: &UsageSample) {
        if sample.resource == ResourceKind::Memory {
            self.memory_peaks.subtract_sample(
                bytes_from_memory_amount(sample.usage),
                1.0,
                sample.measure_start,
            );
        }
    }

    /// Adds `other` into this state (both histograms and the counters). `other`'s
    /// histograms may be moved to this state's reference time, as upstream does.
    pub fn merge(&mut self, other: &mut AggregateContainerState) -> Result<(), HistogramError> {
        self.cpu_usage.merge(&mut other.cpu_usage)?;
        self.memory_peaks.merge(&mut other.memory_peaks)?;
        if self.first_sample_start.is_none()
            || other
                .first_sample_start
                .is_some_and(|o| self.first_sample_start.is_some_and(|s| o < s))
        {
            self.first_sample_start = other.first_sample_start;
        }
        if let Some(o) = other.last_sample_start
            && self.last_sample_start.is_none_or(|s| o > s)
        {
            self.last_sample_start = Some(o);
        }
        self.total_samples_count += other.total_samples_count;
        Ok(())
    }

    /// No CPU sample has been seen.
    pub fn is_empty(&self) -> bool {
        self.total_samples_count == 0
    }

    /// The length of one memory window (per-VPA override, else the global setting).
    pub fn memory_aggregation_interval(&self) -> Duration {
        self.overrides
            .as_ref()
            .and_then(|o| o.memory_aggregation_interval)
            .unwrap_or(self.config.memory_aggregation_interval)
    }

    /// How many windows the history keeps.
    pub fn memory_aggregation_interval_count(&self) -> i64 {
        self.overrides
            .as_ref()
            .and_then(|o| o.memory_aggregation_interval_count)
            .unwrap_or(self.config.memory_aggregation_interval_count)
    }

    /// interval × count.
    pub fn memory_aggregation_window_length(&self) -> Duration {
        self.memory_aggregation_interval()
            .mul(self.memory_aggregation_interval_count())
    }

    /// OOM bump ratio.
    pub fn oom_bump_up_ratio(&self) -> f64 {
        self.overrides
            .as_ref()
            .and_then(|o| o.oom_bump_up_ratio)
            .unwrap_or(self.config.oom_bump_up_ratio)
    }

    /// Minimal OOM bump in bytes.
    pub fn oom_min_bump_up(&self) -> f64 {
        self.overrides
            .as_ref()
            .and_then(|o| o.oom_min_bump_up)
            .unwrap_or(self.config.oom_min_bump_up)
    }

    /// Old enough to be garbage collected: with no CPU samples, created a whole history
    /// window ago; otherwise the last sample is a whole window old.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        let window = self.memory_aggregation_window_length();
        if self.is_empty() {
            return now.since(self.creation_time) >= window;
        }
        time::since(Some(now), self.last_sample_start) >= window
    }

    /// Takes the mode and controlled resources from the container policy (`None`: Auto,
    /// cpu and memory). With `per_vpa_config` (the PerVPAConfig gate), also the OOM bump
    /// and memory window overrides.
    pub fn update_from_policy(
        &mut self,
        policy: Option<&ContainerResourcePolicy>,
        per_vpa_config: bool,
    ) {
        self.scaling_mode = policy.and_then(|p| p.mode).unwrap_or_default();
        self.controlled_resources = policy
            .and_then(|p| p.controlled_resources)
            .unwrap_or_default();
        let overrides = match policy {
            Some(p) if per_vpa_config => Overrides {
                oom_bump_up_ratio: p.oom_bump_up_ratio,
                oom_min_bump_up: p.oom_min_bump_up,
                memory_aggregation_interval: p.memory_aggregation_interval,
                memory_aggregation_interval_count: p.memory_aggregation_interval_count,
            },
            _ => Overrides::default(),
        };
        self.overrides = if overrides == Overrides::default() {
            None
        } else {
            Some(Box::new(overrides))
        };
    }

    /// Under a VPA and not switched off (used for metrics).
    pub fn needs_recommendation(&self) -> bool {
        self.is_under_vpa && self.scaling_mode != ContainerScalingMode::Off
    }

    /// The checkpoint form of this state, stamped `now`.
    pub fn save_to_checkpoint(&self, now: Timestamp) -> AggregateCheckpoint {
        let (cpu_histogram, cpu_reference) = self.cpu_usage.save_to_checkpoint();
        let (memory_histogram, memory_reference) = self.memory_peaks.save_to_checkpoint();
        AggregateCheckpoint {
            last_update_time: Some(now),
            version: SUPPORTED_CHECKPOINT_VERSION.to_string(),
            cpu_histogram,
            cpu_reference,
            memory_histogram,
            memory_reference,
            first_sample_start: self.first_sample_start,
            last_sample_start: self.last_sample_start,
            total_samples_count: self.total_samples_count,
        }
    }

    /// Restores counters and histograms from a checkpoint (histograms are added to, as
    /// upstream does). Fails on another version or a corrupt histogram.
    pub fn load_from_checkpoint(
        &mut self,
        cp: &AggregateCheckpoint,
    ) -> Result<(), CheckpointError> {
        if cp.version != SUPPORTED_CHECKPOINT_VERSION {
            return Err(CheckpointError::UnsupportedVersion(cp.version.clone()));
        }
        self.total_samples_count = cp.total_samples_count;
        self.first_sample_start = cp.first_sample_start;
        self.last_sample_start = cp.last_sample_start;
        self.memory_peaks
            .load_from_checkpoint(&cp.memory_histogram, cp.memory_reference)
            .map_err(|source| CheckpointError::Histogram {
                resource: "memory",
                source,
            })?;
        self.cpu_usage
            .load_from_checkpoint(&cp.cpu_histogram, cp.cpu_reference)
            .map_err(|source| CheckpointError::Histogram {
                resource: "cpu",
                source,
            })?;
        Ok(())
    }

    /// Bytes this state occupies, heap included (for the memory budget).
    pub fn memory_footprint(&self) -> usize {
        let buckets = self.cpu_usage.histogram().options().num_buckets()
            + self.memory_peaks.histogram().options().num_buckets();
        std::mem::size_of::<Self>()
            + buckets * std::mem::size_of::<f64>()
            + self
                .overrides
                .as_ref()
                .map_or(0, |_| std::mem::size_of::<Overrides>())
    }
}
