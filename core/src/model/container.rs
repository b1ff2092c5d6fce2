//! The state of one container of one pod: CPU sample de-duplication, the memory peak of the
//! current aggregation window and OOM handling (upstream `model/container.go`).
//!
//! A container does not own its aggregate: the caller passes the aggregate of the container's
//! aggregation key to every call (an [`Aggregator`]), so many containers can share one
//! aggregate without shared mutable references.

use super::aggregate::AggregateContainerState;
use super::resources::{
    ResourceAmount, ResourceKind, Resources, memory_amount_from_bytes, scale_resource,
};
use super::sample::UsageSample;
use crate::time::{Duration, Timestamp};
use thiserror::Error;

/// Where a container's samples go (upstream `ContainerStateAggregator`).
pub trait Aggregator {
    /// Adds a sample.
    fn add_sample(&mut self, sample: &UsageSample);
    /// Removes a memory sample.
    fn subtract_sample(&mut self, sample: &UsageSample);
    /// Length of one memory peak window.
    fn memory_aggregation_interval(&self) -> Duration;
    /// OOM bump ratio.
    fn oom_bump_up_ratio(&self) -> f64;
    /// Minimal OOM bump in bytes.
    fn oom_min_bump_up(&self) -> f64;
}

impl Aggregator for AggregateContainerState {
    #[inline]
    fn add_sample(&mut self, sample: &UsageSample) {
        AggregateContainerState::add_sample(self, sample);
    }
    fn subtract_sample(&mut self, sample: &UsageSample) {
        AggregateContainerState::subtract_sample(self, sample);
    }
    fn memory_aggregation_interval(&self) -> Duration {
        AggregateContainerState::memory_aggregation_interval(self)
    }
    fn oom_bump_up_ratio(&self) -> f64 {
        AggregateContainerState::oom_bump_up_ratio(self)
    }
    fn oom_min_bump_up(&self) -> f64 {
        AggregateContainerState::oom_min_bump_up(self)
    }
}

/// An OOM event that was not recorded.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum OomError {
    /// Older than the previous memory window.
    #[error("OOM event will be discarded - it is too old ({0})")]
    TooOld(Timestamp),
    /// The derived memory sample was rejected.
    #[error("adding OOM sample failed")]
    Rejected,
}

/// Per-container state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerState {
    /// The container's requests.
    pub request: Resources,
    /// Start of the last accepted CPU sample.
    pub last_cpu_sample_start: Option<Timestamp>,
    /// Peak memory usage in the current window.
    pub memory_peak: ResourceAmount,
    /// OOM-derived peak in the current window.
    pub oom_peak: ResourceAmount,
    /// End of the current memory window.
    pub window_end: Option<Timestamp>,
    /// Time of the last memory sample.
    pub last_memory_sample_start: Option<Timestamp>,
}

impl ContainerState {
    /// A container with the given requests and no samples.
    pub fn new(request: Resources) -> Self {
        Self {
            request,
            ..Self::default()
        }
    }

    /// Feeds a sample; returns false when it is invalid, a duplicate or out of order.
    #[inline]
    pub fn add_sample(&mut self, sample: &UsageSample, aggregator: &mut impl Aggregator) -> bool {
        match sample.resource {
            ResourceKind::Cpu => self.add_cpu_sample(sample, aggregator),
            ResourceKind::Memory => self.add_memory_sample(sample, false, aggregator),
        }
    }

    #[inline]
    fn add_cpu_sample(&mut self, sample: &UsageSample, aggregator: &mut impl Aggregator) -> bool {
        if !sample.is_valid(ResourceKind::Cpu)
            || self
                .last_cpu_sample_start
                .is_some_and(|last| sample.measure_start <= last)
        {
            return false;
        }
        aggregator.add_sample(sample);
        self.last_cpu_sample_start = Some(sample.measure_start);
        true
    }

    /// The current window's peak, which the aggregate holds at `window_end`.
    pub fn current_peak(&self) -> ResourceAmount {
        self.memory_peak.max(self.oom_peak)
    }

    fn add_memory_sample(
        &mut self,
        sample: &UsageSample,
        is_oom: bool,
        aggregator: &mut impl Aggregator,
    ) -> bool {
        let ts = sample.measure_start;
        if !sample.is_valid(ResourceKind::Memory)
            || (!is_oom && self.last_memory_sample_start.is_some_and(|l| ts < l))
        {
            return false;
        }
        self.last_memory_sample_start = Some(ts);
        let window_end = *self.window_end.get_or_insert(ts);

        let mut add_new_peak = false;
        if ts < window_end {
            let old = self.current_peak();
            if old != 0 && sample.usage > old {
                aggregator.subtract_sample(&UsageSample {
                    measure_start: window_end,
                    usage: old,
                    request: sample.request,
                    resource: ResourceKind::Memory,
                });
                add_new_peak = true;
            }
        } else {
            let interval = aggregator.memory_aggregation_interval();
            let shift = ts.since(window_end).truncate(interval).plus(interval);
            self.window_end = Some(window_end.add(shift));
            self.memory_peak = 0;
            self.oom_peak = 0;
            add_new_peak = true;
        }
        if add_new_peak {
            aggregator.add_sample(&UsageSample {
                measure_start: self.window_end.unwrap_or(window_end),
                usage: sample.usage,
                request: sample.request,
                resource: ResourceKind::Memory,
            });
            if is_oom {
                self.oom_peak = sample.usage;
            } else {
                self.memory_peak = sample.usage;
            }
        }
        true
    }

    /// Records an OOM kill at `ts` of a container that requested `requested_memory` bytes:
    /// a memory sample of `max(used + min bump, used × ratio)` where `used` is the larger of
    /// the request and this window's usage peak. Discards events older than the previous
    /// window (upstream v1.7.1: `ts < window_end - interval`).
    pub fn record_oom(
        &mut self,
        ts: Timestamp,
        requested_memory: ResourceAmount,
        aggregator: &mut impl Aggregator,
    ) -> Result<(), OomError> {
        let interval = aggregator.memory_aggregation_interval();
        if let Some(end) = self.window_end
            && ts < end.sub(interval)
        {
            return Err(OomError::TooOld(ts));
        }
        let used = requested_memory.max(self.memory_peak);
        let needed = (used + memory_amount_from_bytes(aggregator.oom_min_bump_up()))
            .max(scale_resource(used, aggregator.oom_bump_up_ratio()));
        let sample = UsageSample {
            measure_start: ts,
            usage: needed,
            request: requested_memory,
            resource: ResourceKind::Memory,
        };
        if self.add_memory_sample(&sample, true, aggregator) {
            Ok(())
        } else {
            Err(OomError::Rejected)
        }
    }
}
