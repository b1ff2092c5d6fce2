//! Engine hot-path benchmarks: CPU samples, memory peak updates, percentiles, checkpoints.
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use vpa_core::model::{AggregateContainerState, AggregationsConfig, ContainerState, UsageSample};
use vpa_core::time::{Duration, Timestamp};

const N: u64 = 100_000;

fn values(n: usize, lo: i64, hi: i64) -> Vec<i64> {
    // A cheap deterministic spread (xorshift) over [lo, hi).
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            lo + (x % (hi - lo) as u64) as i64
        })
        .collect()
}

fn start() -> Timestamp {
    Timestamp::from_unix_seconds(1_700_000_000)
}

fn bench_samples(c: &mut Criterion) {
    let cfg = Arc::new(AggregationsConfig::default());
    let cpu = values(4096, 1, 4000);
    let mem = values(4096, 50 << 20, 2 << 30);
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(N));

    g.bench_function("cpu_add_sample", |b| {
        b.iter(|| {
            let mut agg = AggregateContainerState::new(&cfg, start());
            let mut container = ContainerState::default();
            let mut t = start();
            for i in 0..N as usize {
                t = t.add(Duration::from_secs(60));
                container.add_sample(&UsageSample::cpu(t, cpu[i & 4095]), &mut agg);
            }
            black_box(agg.total_samples_count)
        })
    });

    g.bench_function("memory_peak_update", |b| {
        b.iter(|| {
            let mut agg = AggregateContainerState::new(&cfg, start());
            let mut container = ContainerState::default();
            let mut t = start();
            for i in 0..N as usize {
                t = t.add(Duration::from_secs(60));
                container.add_sample(&UsageSample::memory(t, mem[i & 4095]), &mut agg);
            }
            black_box(container.memory_peak)
        })
    });

    // Worst case: every sample is a new peak of its window (subtract the old, add the new).
    g.bench_function("memory_peak_update_rising", |b| {
        b.iter(|| {
            let mut agg = AggregateContainerState::new(&cfg, start());
            let mut container = ContainerState::default();
            let mut t = start();
            for i in 0..N as i64 {
                t = t.add(Duration::from_secs(60));
                container.add_sample(&UsageSample::memory(t, (100 << 20) + i * 4096), &mut agg);
            }
            black_box(container.memory_peak)
        })
    });

    g.bench_function("find_bucket", |b| {
        let o = &cfg.cpu_histogram_options;
        let cores: Vec<f64> = cpu.iter().map(|&m| m as f64 / 1000.0).collect();
        b.iter(|| {
            let mut s = 0usize;
            for i in 0..N as usize {
                s += o.find_bucket(cores[i & 4095]);
            }
            black_box(s)
        })
    });
    g.finish();

    // A realistic aggregate: 8 days of one-minute samples.
    let mut agg = AggregateContainerState::new(&cfg, start());
    let mut container = ContainerState::default();
    let mut t = start();
    for i in 0..(8 * 1440) {
        t = t.add(Duration::from_secs(60));
        container.add_sample(&UsageSample::cpu(t, cpu[i & 4095]), &mut agg);
        container.add_sample(&UsageSample::memory(t, mem[i & 4095]), &mut agg);
    }
    let mut g = c.benchmark_group("aggregate");
    g.bench_function("percentile", |b| {
        b.iter(|| black_box(agg.cpu_usage.percentile(black_box(0.9))))
    });
    g.bench_function("checkpoint_save", |b| {
        b.iter(|| black_box(agg.save_to_checkpoint(t)))
    });
    let cp = agg.save_to_checkpoint(t);
    g.bench_function("checkpoint_load", |b| {
        b.iter(|| {
            let mut fresh = AggregateContainerState::new(&cfg, t);
            fresh.load_from_checkpoint(black_box(&cp)).unwrap();
            black_box(fresh.total_samples_count)
        })
    });
    g.bench_function("merge_into_fresh", |b| {
        b.iter(|| {
            let mut fresh = AggregateContainerState::new(&cfg, t);
            let mut src = agg.clone();
            fresh.merge(&mut src).unwrap();
            black_box(fresh.total_samples_count)
        })
    });
    g.finish();
}

criterion_group!(benches, bench_samples);
criterion_main!(benches);
