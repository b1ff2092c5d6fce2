//! Conformance rows 39–58 (container and aggregate state) and model property tests.
#![allow(clippy::unwrap_used, clippy::approx_constant)]

use super::*;
use crate::policy::{ContainerResourcePolicy, ContainerScalingMode, ControlledResources};
use crate::time::{Duration, Timestamp};
use std::sync::Arc;

const MIB: i64 = 1024 * 1024;

/// The container tests' timestamp, 2017-04-18 17:35:05 UTC.
fn t() -> Timestamp {
    Timestamp::from_unix_seconds(1_492_536_905)
}

fn h(n: i64) -> Duration {
    Duration::from_hours(n)
}

#[derive(Debug, PartialEq)]
enum Call {
    Add(ResourceKind, i64, Timestamp),
    Sub(ResourceKind, i64, Timestamp),
}

/// Records what a container sends to its aggregate.
struct Recorder {
    calls: Vec<Call>,
    interval: Duration,
}

impl Recorder {
    fn new() -> Self {
        Self::with_interval(h(24))
    }
    fn with_interval(interval: Duration) -> Self {
        Self {
            calls: Vec::new(),
            interval,
        }
    }
}

impl Aggregator for Recorder {
    fn add_sample(&mut self, s: &UsageSample) {
        self.calls
            .push(Call::Add(s.resource, s.usage, s.measure_start));
    }
    fn subtract_sample(&mut self, s: &UsageSample) {
        self.calls
            .push(Call::Sub(s.resource, s.usage, s.measure_start));
    }
    fn memory_aggregation_interval(&self) -> Duration {
        self.interval
    }
    fn oom_bump_up_ratio(&self) -> f64 {
        DEFAULT_OOM_BUMP_UP_RATIO
    }
    fn oom_min_bump_up(&self) -> f64 {
        DEFAULT_OOM_MIN_BUMP_UP
    }
}

use Call::{Add, Sub};
use ResourceKind::{Cpu, Memory};

#[test]
fn row_039_cpu_samples_reach_the_aggregate() {
    let mut c = ContainerState::default();
    let mut r = Recorder::new();
    assert!(c.add_sample(&UsageSample::cpu(t(), 3140), &mut r));
    assert!(c.add_sample(&UsageSample::cpu(t().add(h(12)), 6280), &mut r));
    assert!(c.add_sample(&UsageSample::cpu(t().add(h(24)), 1570), &mut r));
    assert_eq!(
        r.calls,
        vec![
            Add(Cpu, 3140, t()),
            Add(Cpu, 6280, t().add(h(12))),
            Add(Cpu, 1570, t().add(h(24)))
        ]
    );
    // And the real aggregate stores them as cores with weight 0.1.
    let cfg = Arc::new(AggregationsConfig::default());
    let mut agg = AggregateContainerState::new(&cfg, t());
    let mut c = ContainerState::default();
    assert!(c.add_sample(&UsageSample::cpu(t(), 3140), &mut agg));
    let hist = agg.cpu_usage.histogram();
    let b = cfg.cpu_histogram_options.find_bucket(3.14);
    assert!(hist.bucket_weight(b) > 0.0);
    assert_eq!(agg.total_samples_count, 1);
}

#[test]
fn row_040_memory_peaks_per_window() {
    let mut c = ContainerState::default();
    let mut r = Recorder::new();
    assert!(c.add_sample(&UsageSample::memory(t(), 5), &mut r));
    assert!(c.add_sample(&UsageSample::memory(t().add(h(12)), 10), &mut r));
    assert!(c.add_sample(&UsageSample::memory(t().add(h(24)), 2), &mut r));
    assert_eq!(
        r.calls,
        vec![
            Add(Memory, 5, t().add(h(24))),
            Sub(Memory, 5, t().add(h(24))),
            Add(Memory, 10, t().add(h(24))),
            Add(Memory, 2, t().add(h(48))),
        ]
    );
}

#[test]
fn row_041_invalid_and_duplicate_samples_are_rejected() {
    let mut c = ContainerState::default();
    let mut r = Recorder::new();
    assert!(c.add_sample(&UsageSample::cpu(t(), 1000), &mut r));
    assert!(
        !c.add_sample(&UsageSample::cpu(t(), 2000), &mut r),
        "same timestamp"
    );
    assert!(
        !c.add_sample(&UsageSample::cpu(t().add(h(1)), -1000), &mut r),
        "negative cpu"
    );
    assert!(
        !c.add_sample(&UsageSample::memory(t(), -1000), &mut r),
        "negative memory"
    );
    assert_eq!(r.calls.len(), 1);
}

#[test]
fn row_042_oom_bumped_by_ratio() {
    let mut c = ContainerState::default();
    let mut r = Recorder::new();
    c.record_oom(t(), 1000 * MIB, &mut r).unwrap();
    assert_eq!(r.calls, vec![Add(Memory, 1200 * MIB, t().add(h(24)))]);
}

#[test]
fn row_043_oom_bumped_by_minimum() {
    let mut c = ContainerState::default();
    let mut r = Recorder::new();
    c.record_oom(t(), MIB, &mut r).unwrap();
    assert_eq!(r.calls, vec![Add(Memory, 101 * MIB, t().add(h(24)))]);
}

#[test]
fn row_044_oom_maxed_with_known_usage() {
    let mut c = ContainerState::default();
    let mut r = Recorder::new();
    assert!(c.add_sample(&UsageSample::memory(t(), 3000 * MIB), &mut r));
    c.record_oom(t(), 1000 * MIB, &mut r).unwrap();
    assert_eq!(
        r.calls,
        vec![
            Add(Memory, 3000 * MIB, t().add(h(24))),
            Sub(Memory, 3000 * MIB, t().add(h(24))),
            Add(Memory, 3600 * MIB, t().add(h(24))),
        ]
    );
}

#[test]
fn row_045_repeated_ooms_do_not_run_away() {
    let mut c = ContainerState::default();
    let mut r = Recorder::new();
    c.record_oom(t(), 1000 * MIB, &mut r).unwrap();
    c.record_oom(t(), 999 * MIB, &mut r).unwrap();
    c.record_oom(t(), 999 * MIB, &mut r).unwrap();
    c.record_oom(t(), 2000 * MIB, &mut r).unwrap();
    let end = t().add(h(24));
    assert_eq!(
        r.calls,
        vec![
            Add(Memory, 1200 * MIB, end),
            Sub(Memory, 1200 * MIB, end),
            Add(Memory, 2400 * MIB, end),
        ]
    );
}

#[test]
fn row_046_old_oom_is_discarded() {
    let mut c = ContainerState::default();
    let mut r = Recorder::new();
    assert!(c.add_sample(&UsageSample::memory(t(), 1000 * MIB), &mut r));
    let before = c.clone();
    assert_eq!(
        c.record_oom(t().sub(h(30)), 1000 * MIB, &mut r),
        Err(OomError::TooOld(t().sub(h(30))))
    );
    assert_eq!(c, before);
    assert_eq!(r.calls.len(), 1);
}

#[test]
fn row_047_oom_in_new_window() {
    let mut c = ContainerState::default();
    let mut r = Recorder::new();
    assert!(c.add_sample(&UsageSample::memory(t(), 2000 * MIB), &mut r));
    c.record_oom(t().add(h(48)), 1000 * MIB, &mut r).unwrap();
    assert_eq!(
        r.calls,
        vec![
            Add(Memory, 2000 * MIB, t().add(h(24))),
            Add(Memory, 2400 * MIB, t().add(h(72))),
        ]
    );
}

/// Row 48 is upstream master's fix (#8548); v1.7.1, which we match, discards this OOM
/// because it is older than `window_end - interval`. See docs/compatibility.md.
#[test]
fn row_048_fresh_oom_near_window_boundary_follows_v1_7_1() {
    let mut c = ContainerState::default();
    let mut r = Recorder::new();
    assert!(c.add_sample(&UsageSample::memory(t(), 100 * MIB), &mut r));
    assert!(c.add_sample(&UsageSample::memory(t().add(h(24)), 2000 * MIB), &mut r));
    let oom_at = t().add(h(24)).sub(Duration::from_secs(1));
    assert_eq!(
        c.record_oom(oom_at, 1000 * MIB, &mut r),
        Err(OomError::TooOld(oom_at))
    );
}

#[test]
fn row_049_custom_interval_windows() {
    let mut c = ContainerState::default();
    let mut r = Recorder::with_interval(h(1));
    assert!(c.add_sample(&UsageSample::memory(t(), 5), &mut r));
    assert!(c.add_sample(&UsageSample::memory(t().add(h(2)), 10), &mut r));
    assert_eq!(
        r.calls,
        vec![
            Add(Memory, 5, t().add(h(1))),
            Add(Memory, 10, t().add(h(3)))
        ]
    );
}

#[test]
fn row_050_peak_update_within_custom_interval() {
    let mut c = ContainerState::default();
    let mut r = Recorder::with_interval(h(1));
    assert!(c.add_sample(&UsageSample::memory(t(), 5), &mut r));
    assert!(c.add_sample(
        &UsageSample::memory(t().add(Duration::from_minutes(30)), 10),
        &mut r
    ));
    assert_eq!(
        r.calls,
        vec![
            Add(Memory, 5, t().add(h(1))),
            Sub(Memory, 5, t().add(h(1))),
            Add(Memory, 10, t().add(h(1))),
        ]
    );
}

#[test]
fn row_051_old_oom_discarded_with_custom_interval() {
    let mut c = ContainerState::default();
    let mut r = Recorder::with_interval(h(1));
    assert!(c.add_sample(&UsageSample::memory(t(), 1000 * MIB), &mut r));
    assert!(c.record_oom(t().sub(h(2)), 1000 * MIB, &mut r).is_err());
}

#[test]
fn row_052_is_expired() {
    let cfg = Arc::new(AggregationsConfig::default());
    let mut s = AggregateContainerState::new(&cfg, t());
    s.last_sample_start = Some(t());
    s.total_samples_count = 1;
    assert!(!s.is_expired(t().add(h(7 * 24))));
    assert!(s.is_expired(t().add(h(8 * 24))));
    let empty = AggregateContainerState::new(&cfg, t());
    assert!(!empty.is_expired(t().add(h(7 * 24))));
    assert!(empty.is_expired(t().add(h(8 * 24))));
}

#[test]
fn row_053_is_expired_with_custom_interval_count() {
    let cfg = Arc::new(AggregationsConfig::default());
    let mut s = AggregateContainerState::new(&cfg, t());
    s.update_from_policy(
        Some(&ContainerResourcePolicy {
            container_name: "c".into(),
            memory_aggregation_interval_count: Some(4),
            ..Default::default()
        }),
        true,
    );
    s.last_sample_start = Some(t());
    s.total_samples_count = 1;
    assert!(!s.is_expired(t().add(h(95))));
    assert!(s.is_expired(t().add(h(96))));
}

#[test]
fn row_054_save_to_checkpoint() {
    let cfg = Arc::new(AggregationsConfig::default());
    let mut s = AggregateContainerState::new(&cfg, t());
    s.cpu_usage.add_sample(1.0, 33.0, t());
    s.memory_peaks.add_sample(1.0, 55.0, t());
    s.memory_peaks.add_sample(1e7, 55.0, t());
    s.total_samples_count = 7;
    let cp = s.save_to_checkpoint(t());
    assert_eq!(cp.version, "v3");
    assert_eq!(cp.cpu_histogram.bucket_weights.len(), 1);
    assert_eq!(cp.memory_histogram.bucket_weights.len(), 2);
    assert_eq!(cp.total_samples_count, 7);
    assert_eq!(cp.last_update_time, Some(t()));
}

#[test]
fn row_055_load_fails_for_version_mismatch() {
    let cfg = Arc::new(AggregationsConfig::default());
    let mut s = AggregateContainerState::new(&cfg, t());
    let cp = AggregateCheckpoint {
        version: "foo".into(),
        ..Default::default()
    };
    assert_eq!(
        s.load_from_checkpoint(&cp),
        Err(CheckpointError::UnsupportedVersion("foo".into()))
    );
}

#[test]
fn row_056_update_from_policy() {
    let cfg = Arc::new(AggregationsConfig::default());
    let mut s = AggregateContainerState::new(&cfg, t());
    s.update_from_policy(None, false);
    assert_eq!(s.scaling_mode, ContainerScalingMode::Auto);
    assert_eq!(s.controlled_resources, ControlledResources::default());
    s.update_from_policy(Some(&ContainerResourcePolicy::default()), false);
    assert_eq!(s.scaling_mode, ContainerScalingMode::Auto);
    let off = ContainerResourcePolicy {
        mode: Some(ContainerScalingMode::Off),
        ..Default::default()
    };
    s.update_from_policy(Some(&off), false);
    assert_eq!(s.scaling_mode, ContainerScalingMode::Off);
    let none = ContainerResourcePolicy {
        controlled_resources: Some(ControlledResources::NONE),
        ..Default::default()
    };
    s.update_from_policy(Some(&none), false);
    assert_eq!(s.controlled_resources, ControlledResources::NONE);
    let mem = ContainerResourcePolicy {
        controlled_resources: Some(ControlledResources::from_names(["memory"])),
        ..Default::default()
    };
    s.update_from_policy(Some(&mem), false);
    assert_eq!(
        s.controlled_resources,
        ControlledResources {
            cpu: false,
            memory: true
        }
    );
}

#[test]
fn row_057_memory_aggregation_interval_needs_the_gate() {
    let cfg = Arc::new(AggregationsConfig::default());
    let mut s = AggregateContainerState::new(&cfg, t());
    let p = ContainerResourcePolicy {
        memory_aggregation_interval: Some(h(1)),
        ..Default::default()
    };
    s.update_from_policy(Some(&p), true);
    assert_eq!(s.memory_aggregation_interval(), h(1));
    s.update_from_policy(Some(&p), false);
    assert_eq!(s.memory_aggregation_interval(), h(24));
}

#[test]
fn row_058_aggregate_state_by_container_name() {
    // Two pods: p1 {A, B}, p2 {A, C}, one CPU and one memory sample per container;
    // merged by container name, A has two samples and two memory peaks.
    let cfg = Arc::new(AggregationsConfig::default());
    let mut p1a = AggregateContainerState::new(&cfg, t());
    let mut p1b = AggregateContainerState::new(&cfg, t());
    let mut p2a = AggregateContainerState::new(&cfg, t());
    let mut p2c = AggregateContainerState::new(&cfg, t());
    for (agg, mem) in [
        (&mut p1a, 2e9 as i64),
        (&mut p1b, 1e9 as i64),
        (&mut p2a, 4e9 as i64),
        (&mut p2c, 1e9 as i64),
    ] {
        let mut c = ContainerState::default();
        assert!(c.add_sample(&UsageSample::cpu(t(), 1000), agg));
        assert!(c.add_sample(&UsageSample::memory(t(), mem), agg));
    }
    let mut a = AggregateContainerState::new(&cfg, t());
    a.merge(&mut p1a).unwrap();
    a.merge(&mut p2a).unwrap();
    let mut b = AggregateContainerState::new(&cfg, t());
    b.merge(&mut p1b).unwrap();
    let mut c = AggregateContainerState::new(&cfg, t());
    c.merge(&mut p2c).unwrap();
    assert_eq!(a.total_samples_count, 2);
    assert_eq!(b.total_samples_count, 1);
    assert_eq!(c.total_samples_count, 1);
    let mem = a.memory_peaks.histogram();
    let o = &cfg.memory_histogram_options;
    assert!(mem.bucket_weight(o.find_bucket(2e9)) > 0.0);
    assert!(mem.bucket_weight(o.find_bucket(4e9)) > 0.0);
    let occupied = (0..o.num_buckets())
        .filter(|&i| mem.bucket_weight(i) > 0.0)
        .count();
    assert_eq!(occupied, 2);
}

#[test]
fn aggregate_fits_the_memory_budget() {
    let cfg = Arc::new(AggregationsConfig::default());
    let s = AggregateContainerState::new(&cfg, t());
    let bytes = s.memory_footprint();
    eprintln!(
        "aggregate: {bytes} bytes ({} inline + {} of bucket weights)",
        std::mem::size_of::<AggregateContainerState>(),
        bytes - std::mem::size_of::<AggregateContainerState>()
    );
    assert!(bytes <= 3 * 1024, "aggregate uses {bytes} bytes");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Merging per-pod aggregates in any order gives the same percentiles.
        #[test]
        fn merge_is_order_independent(
            pods in proptest::collection::vec(
                proptest::collection::vec((0i64..10_000_000, 1i64..4_000_000_000, 1u32..600), 1..20),
                1..5),
        ) {
            let cfg = Arc::new(AggregationsConfig::default());
            let build = || -> Vec<AggregateContainerState> {
                pods.iter().map(|samples| {
                    let mut agg = AggregateContainerState::new(&cfg, t());
                    let mut c = ContainerState::default();
                    let mut ts = t();
                    for (cpu, mem, gap) in samples {
                        ts = ts.add(Duration::from_minutes(i64::from(*gap)));
                        c.add_sample(&UsageSample::cpu(ts, *cpu), &mut agg);
                        c.add_sample(&UsageSample::memory(ts, *mem), &mut agg);
                    }
                    agg
                }).collect()
            };
            let mut forward = AggregateContainerState::new(&cfg, t());
            for mut p in build() { forward.merge(&mut p).unwrap(); }
            let mut backward = AggregateContainerState::new(&cfg, t());
            for mut p in build().into_iter().rev() { backward.merge(&mut p).unwrap(); }
            for p in [0.5, 0.9, 0.95] {
                prop_assert_eq!(forward.cpu_usage.histogram().percentile_bucket(p), backward.cpu_usage.histogram().percentile_bucket(p));
                prop_assert_eq!(forward.memory_peaks.histogram().percentile_bucket(p), backward.memory_peaks.histogram().percentile_bucket(p));
            }
            prop_assert_eq!(forward.total_samples_count, backward.total_samples_count);
            prop_assert_eq!(forward.first_sample_start, backward.first_sample_start);
            prop_assert_eq!(forward.last_sample_start, backward.last_sample_start);
        }

        /// Save then load keeps each percentile within one occupied bucket.
        #[test]
        fn checkpoint_round_trip_within_one_bucket(
            samples in proptest::collection::vec((0i64..10_000_000, 1i64..4_000_000_000, 1u32..60), 1..80),
            p in 0.0f64..1.0,
        ) {
            let cfg = Arc::new(AggregationsConfig::default());
            let mut agg = AggregateContainerState::new(&cfg, t());
            let mut c = ContainerState::default();
            let mut ts = t();
            for (cpu, mem, gap) in &samples {
                ts = ts.add(Duration::from_minutes(i64::from(*gap)));
                c.add_sample(&UsageSample::cpu(ts, *cpu), &mut agg);
                c.add_sample(&UsageSample::memory(ts, *mem), &mut agg);
            }
            let cp = agg.save_to_checkpoint(ts);
            let mut loaded = AggregateContainerState::new(&cfg, ts);
            loaded.load_from_checkpoint(&cp).unwrap();
            for (orig, back) in [
                (agg.cpu_usage.histogram(), loaded.cpu_usage.histogram()),
                (agg.memory_peaks.histogram(), loaded.memory_peaks.histogram()),
            ] {
                // Buckets the checkpoint keeps (weight rounds to >= 1 of 10000).
                let occupied: Vec<usize> = (0..orig.options().num_buckets())
                    .filter(|&b| back.bucket_weight(b) >= orig.options().epsilon() || orig.bucket_weight(b) >= orig.options().epsilon())
                    .collect();
                let rank = |hist: &crate::histogram::Histogram| hist
                    .percentile_bucket(p)
                    .and_then(|b| occupied.iter().position(|&x| x == b))
                    .map(|i| i as i64);
                let (a, b) = (rank(orig), rank(back));
                prop_assert!(a.is_some() && b.is_some());
                let (a, b) = (a.unwrap_or(0), b.unwrap_or(0));
                prop_assert!((a - b).abs() <= 1, "rank {} vs {}", a, b);
            }
        }
    }
}
