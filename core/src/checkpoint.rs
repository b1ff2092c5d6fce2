//! Conversion between the engine's checkpoint ([`AggregateCheckpoint`]) and the
//! `VerticalPodAutoscalerCheckpoint` status of the API (format `v3`, readable by upstream).
//!
//! Times are `metav1.Time`, which keeps whole seconds: they are truncated on the way out, and
//! a missing (`null`) time is upstream's zero time, `None` here.

use crate::api::checkpoint::{
    HistogramCheckpoint as ApiHistogram, VerticalPodAutoscalerCheckpointStatus,
};
use crate::histogram::HistogramCheckpoint;
use crate::model::AggregateCheckpoint;
use crate::time::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff;

/// An engine time as `metav1.Time` (whole seconds, truncated).
pub fn to_time(t: Option<Timestamp>) -> Option<Time> {
    let t = t?;
    jiff::Timestamp::from_second(t.unix_seconds())
        .ok()
        .map(Time)
}

/// A `metav1.Time` as an engine time.
pub fn from_time(t: Option<&Time>) -> Option<Timestamp> {
    let t = t?;
    Some(Timestamp::from_unix_nanos(
        i64::try_from(t.0.as_nanosecond()).unwrap_or(i64::MAX),
    ))
}

fn to_api_histogram(h: &HistogramCheckpoint, reference: Option<Timestamp>) -> ApiHistogram {
    ApiHistogram {
        reference_timestamp: to_time(reference),
        bucket_weights: Some(
            h.bucket_weights
                .iter()
                .filter_map(|(&b, &w)| u32::try_from(b).ok().map(|b| (b, w)))
                .collect(),
        ),
        total_weight: Some(h.total_weight),
    }
}

fn from_api_histogram(h: Option<&ApiHistogram>) -> (HistogramCheckpoint, Option<Timestamp>) {
    match h {
        None => (HistogramCheckpoint::default(), None),
        Some(h) => (
            HistogramCheckpoint {
                bucket_weights: h
                    .bucket_weights
                    .iter()
                    .flatten()
                    .map(|(&b, &w)| (i64::from(b), w))
                    .collect(),
                total_weight: h.total_weight.unwrap_or(0.0),
            },
            from_time(h.reference_timestamp.as_ref()),
        ),
    }
}

/// The API status for an engine checkpoint.
pub fn to_api_status(cp: &AggregateCheckpoint) -> VerticalPodAutoscalerCheckpointStatus {
    VerticalPodAutoscalerCheckpointStatus {
        last_update_time: to_time(cp.last_update_time),
        version: Some(cp.version.clone()),
        cpu_histogram: Some(to_api_histogram(&cp.cpu_histogram, cp.cpu_reference)),
        memory_histogram: Some(to_api_histogram(&cp.memory_histogram, cp.memory_reference)),
        first_sample_start: to_time(cp.first_sample_start),
        last_sample_start: to_time(cp.last_sample_start),
        total_samples_count: Some(cp.total_samples_count),
    }
}

/// The engine checkpoint for an API status. Missing fields read as upstream's zero values;
/// the version is checked when the checkpoint is loaded into an aggregate.
pub fn from_api_status(status: &VerticalPodAutoscalerCheckpointStatus) -> AggregateCheckpoint {
    let (cpu_histogram, cpu_reference) = from_api_histogram(status.cpu_histogram.as_ref());
    let (memory_histogram, memory_reference) = from_api_histogram(status.memory_histogram.as_ref());
    AggregateCheckpoint {
        last_update_time: from_time(status.last_update_time.as_ref()),
        version: status.version.clone().unwrap_or_default(),
        cpu_histogram,
        cpu_reference,
        memory_histogram,
        memory_reference,
        first_sample_start: from_time(status.first_sample_start.as_ref()),
        last_sample_start: from_time(status.last_sample_start.as_ref()),
        total_samples_count: status.total_samples_count.unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::{AggregateContainerState, AggregationsConfig, ContainerState, UsageSample};
    use crate::time::Duration;
    use std::sync::Arc;

    #[test]
    fn upstream_checkpoint_json_loads() {
        // The shape upstream writes (behaviour file §4.2).
        let json = serde_json::json!({
            "lastUpdateTime": "2026-11-01T10:00:00Z",
            "version": "v3",
            "cpuHistogram": {"referenceTimestamp": "2026-11-01T00:00:00Z", "bucketWeights": {"25": 10000, "26": 137}, "totalWeight": 123.4},
            "memoryHistogram": {"referenceTimestamp": null, "bucketWeights": {}, "totalWeight": 0},
            "firstSampleStart": "2026-10-31T10:00:00Z",
            "lastSampleStart": "2026-11-01T09:59:00Z",
            "totalSamplesCount": 1440
        });
        let status: VerticalPodAutoscalerCheckpointStatus =
            serde_json::from_value(json.clone()).unwrap();
        let cp = from_api_status(&status);
        assert_eq!(cp.version, "v3");
        assert_eq!(cp.cpu_histogram.bucket_weights.get(&25), Some(&10_000));
        assert_eq!(cp.memory_reference, None);
        let cfg = Arc::new(AggregationsConfig::default());
        let mut s = AggregateContainerState::new(&cfg, Timestamp::UNIX_EPOCH);
        s.load_from_checkpoint(&cp).unwrap();
        assert_eq!(s.total_samples_count, 1440);
        assert!((s.cpu_usage.histogram().total_weight() - 123.4).abs() < 1e-9);
        // And back: the same JSON.
        assert_eq!(serde_json::to_value(to_api_status(&cp)).unwrap(), json);
    }

    #[test]
    fn save_then_load_through_the_api_type() {
        let cfg = Arc::new(AggregationsConfig::default());
        let start = Timestamp::from_unix_nanos(1_700_000_000_123_456_789);
        let mut s = AggregateContainerState::new(&cfg, start);
        let mut c = ContainerState::default();
        for i in 0..600 {
            let t = start.add(Duration::from_minutes(i));
            c.add_sample(&UsageSample::cpu(t, 100 + i % 300), &mut s);
            c.add_sample(&UsageSample::memory(t, (300 + i % 50) << 20), &mut s);
        }
        let saved = to_api_status(&s.save_to_checkpoint(start.add(Duration::from_hours(10))));
        let text = serde_json::to_string(&saved).unwrap();
        let back: VerticalPodAutoscalerCheckpointStatus = serde_json::from_str(&text).unwrap();
        let mut loaded = AggregateContainerState::new(&cfg, start);
        loaded
            .load_from_checkpoint(&from_api_status(&back))
            .unwrap();
        assert_eq!(loaded.total_samples_count, 600);
        // metav1.Time keeps seconds only.
        assert_eq!(loaded.first_sample_start, Some(start.truncate_to_seconds()));
        for p in [0.5, 0.9, 0.95] {
            let (a, b) = (
                s.cpu_usage.histogram().percentile_bucket(p),
                loaded.cpu_usage.histogram().percentile_bucket(p),
            );
            assert!(a.unwrap().abs_diff(b.unwrap()) <= 1);
        }
    }
}
