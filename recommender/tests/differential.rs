//! Differential test: our replay against upstream VPA 1.7.1's own recommender code (the Go
//! oracle in `tests/oracle`), on generated traces with several workloads and containers, gaps,
//! restarts, OOM kills, idle periods, level shifts and values at bucket boundaries. Every
//! target, lower bound, upper bound and uncapped target must be identical at every point.
//!
//! The oracle binary is `tools/bin/vpa-oracle` (built by `tests/oracle/build.sh`, which
//! `scripts/test` runs), or `$VPA_ORACLE`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use vpa_core::model::{cpu_histogram_options, memory_histogram_options};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn oracle() -> PathBuf {
    if let Ok(p) = std::env::var("VPA_ORACLE") {
        return PathBuf::from(p);
    }
    let p = workspace().join("tools/bin/vpa-oracle");
    assert!(
        p.exists(),
        "the upstream oracle {} is missing: build it with tests/oracle/build.sh (scripts/test does)",
        p.display()
    );
    p
}

fn ours() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vpa-recommender"))
}

/// A tiny deterministic generator (splitmix64), so a failing case is reproducible from its seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Values exactly at, just below and just above bucket starts.
fn boundary_values(starts: &[f64], scale: f64, rng: &mut Rng) -> i64 {
    let b = 1 + rng.below(starts.len() as u64 - 2) as usize;
    let v = starts[b] * scale;
    let base = match rng.below(3) {
        0 => v.floor(),
        1 => v.ceil(),
        _ => v.round(),
    };
    (base as i64 + rng.below(3) as i64 - 1).max(0)
}

fn generate(seed: u64) -> String {
    let mut rng = Rng(seed);
    let cpu_starts = cpu_histogram_options().bucket_starts().to_vec();
    let mem_starts = memory_histogram_options().bucket_starts().to_vec();
    let mut out =
        String::from("timestamp,namespace,workload,pod,container,cpu_cores,memory_bytes,event\n");
    let start: i64 = 1_767_225_600 + rng.below(86_400) as i64; // 2026-01-01 plus up to a day
    let workloads = 1 + rng.below(3);
    struct C {
        ns: String,
        wl: String,
        pod: String,
        name: String,
        cpu: i64,
        mem: i64,
        step: i64,
        next: i64,
        restarts: u32,
        idle_until: i64,
        request: i64,
        boundary: bool,
    }
    let mut cs: Vec<C> = Vec::new();
    for w in 0..workloads {
        let containers = 1 + rng.below(3);
        let pods = 1 + rng.below(3);
        for p in 0..pods {
            for c in 0..containers {
                cs.push(C {
                    ns: format!("ns{}", w % 2),
                    wl: format!("w{w}"),
                    pod: format!("w{w}-p{p}"),
                    name: format!("c{c}"),
                    cpu: 1 + rng.below(3000) as i64,
                    mem: (20 << 20) + rng.below(3 << 30) as i64,
                    step: [30, 60, 60, 60, 300, 900][rng.below(6) as usize],
                    next: start + rng.below(600) as i64,
                    restarts: 0,
                    idle_until: 0,
                    request: (64 << 20) + rng.below(2 << 30) as i64,
                    boundary: rng.chance(30),
                });
            }
        }
    }
    let span = [6 * 3600, 30 * 3600, 3 * 86_400, 9 * 86_400][rng.below(4) as usize];
    let end = start + span;
    // Emit rows in global time order (ties by container index), as a recording would.
    while let Some((i, t)) = cs
        .iter()
        .enumerate()
        .filter(|(_, c)| c.next <= end)
        .map(|(i, c)| (i, c.next))
        .min_by_key(|&(i, t)| (t, i))
    {
        let c = &mut cs[i];
        // Level shifts, idle periods, gaps, restarts, OOM kills.
        if rng.chance(1) {
            c.cpu = 1 + rng.below(6000) as i64;
            c.mem = (10 << 20) + rng.below(4 << 30) as i64;
        }
        if rng.chance(1) {
            c.next = t + 3600 * (1 + rng.below(30) as i64); // a gap
            continue;
        }
        if rng.chance(1) {
            c.restarts += 1;
            c.pod = format!(
                "{}-r{}",
                c.pod.split("-r").next().unwrap_or("p"),
                c.restarts
            );
        }
        // Long idle periods: hours of near-zero CPU, still reporting.
        if rng.chance(1) {
            c.idle_until = t + 3600 * (2 + rng.below(48) as i64);
        }
        let idle = t < c.idle_until || rng.chance(2);
        let cpu = if c.boundary && rng.chance(50) {
            boundary_values(&cpu_starts, 1000.0, &mut rng)
        } else if idle {
            rng.below(3) as i64
        } else {
            (c.cpu + rng.below(c.cpu as u64 / 2 + 1) as i64 - c.cpu / 4).max(0)
        };
        let mem = if c.boundary && rng.chance(50) {
            boundary_values(&mem_starts, 1.0, &mut rng)
        } else {
            (c.mem + rng.below(c.mem as u64 / 4 + 1) as i64 - c.mem / 8).max(0)
        };
        let ts = if rng.chance(50) {
            t.to_string()
        } else {
            chrono::DateTime::from_timestamp(t, 0)
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        };
        if rng.chance(1) {
            let _ = writeln!(
                out,
                "{ts},{},{},{},{},,{},oom",
                c.ns, c.wl, c.pod, c.name, c.request
            );
        } else {
            let cpu_field = match rng.below(10) {
                0 => String::new(),
                1 => format!("{cpu}m"),
                _ => format!("{}.{:03}", cpu / 1000, cpu % 1000),
            };
            let mem_field = if cpu_field.is_empty() || rng.below(20) != 0 {
                mem.to_string()
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "{ts},{},{},{},{},{cpu_field},{mem_field},",
                c.ns, c.wl, c.pod, c.name
            );
        }
        c.next = t + c.step;
    }
    out
}

static ROWS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn recommendations(json: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(json).expect("JSON output");
    v["recommendations"]
        .as_array()
        .expect("recommendations array")
        .clone()
}

fn run(bin: &PathBuf, args: &[&str]) -> String {
    let out = Command::new(bin).args(args).output().expect("run binary");
    assert!(
        out.status.success(),
        "{} {:?} failed: {}",
        bin.display(),
        args,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn compare(seed: u64, extra: &[&str]) -> Result<usize, String> {
    let dir = workspace().join("target/differential");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join(format!("trace-{seed:016x}.csv"));
    std::fs::write(&path, generate(seed)).map_err(|e| e.to_string())?;
    let p = path.to_string_lossy().to_string();
    let mut ours_args = vec![
        "replay",
        "--trace",
        p.as_str(),
        "--output",
        "json",
        "--every",
        "6h",
    ];
    ours_args.extend_from_slice(extra);
    let mut oracle_args = vec!["--trace", p.as_str(), "--every", "6h"];
    oracle_args.extend_from_slice(extra);
    let a = recommendations(&run(&ours(), &ours_args));
    let b = recommendations(&run(&oracle(), &oracle_args));
    if a.len() != b.len() {
        return Err(format!(
            "{}: {} recommendations here, {} upstream",
            path.display(),
            a.len(),
            b.len()
        ));
    }
    for (x, y) in a.iter().zip(&b) {
        if x != y {
            return Err(format!(
                "{}: first difference\n  ours:     {x}\n  upstream: {y}",
                path.display()
            ));
        }
    }
    let rows = std::fs::read_to_string(&path)
        .map(|t| t.lines().count())
        .unwrap_or(0);
    ROWS.fetch_add(rows, std::sync::atomic::Ordering::Relaxed);
    let _ = std::fs::remove_file(&path);
    Ok(a.len())
}

#[test]
fn replay_equals_upstream_on_generated_traces() {
    let mut runner = TestRunner::new(Config {
        cases: 60,
        failure_persistence: None,
        ..Config::default()
    });
    let compared = std::cell::Cell::new(0usize);
    let result = runner.run(&any::<u64>(), |seed| {
        let n = compare(seed, &[]).map_err(TestCaseError::fail)?;
        compared.set(compared.get() + n);
        Ok(())
    });
    let compared = compared.get();
    if let Err(e) = result {
        panic!("{e}");
    }
    eprintln!(
        "differential: {compared} container recommendations identical to upstream over 60 traces ({} rows in all)",
        ROWS.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert!(compared > 60, "only {compared} recommendations compared");
}

#[test]
fn replay_equals_upstream_with_non_default_flags() {
    let flags: [&[&str]; 3] = [
        &[
            "--target-cpu-percentile=0.95",
            "--recommendation-margin-fraction=0.3",
            "--round-cpu-millicores=5",
        ],
        &[
            "--memory-aggregation-interval=1h",
            "--memory-aggregation-interval-count=12",
            "--cpu-histogram-decay-half-life=6h",
        ],
        &[
            "--oom-bump-up-ratio=1.5",
            "--oom-min-bump-up-bytes=52428800",
            "--confidence-interval-cpu=12h",
            "--pod-recommendation-min-memory-mb=100",
        ],
    ];
    for (i, f) in flags.iter().enumerate() {
        for seed in 0..4u64 {
            compare(seed * 7919 + i as u64, f).unwrap_or_else(|e| panic!("flags {f:?}: {e}"));
        }
    }
}

#[test]
fn bucket_starts_equal_upstream_bit_for_bit() {
    let out = run(&oracle(), &["--dump-buckets"]);
    let v: Value = serde_json::from_str(&out).expect("dump-buckets JSON");
    for (name, ours) in [
        ("cpu", cpu_histogram_options()),
        ("memory", memory_histogram_options()),
    ] {
        let theirs = v[name]
            .as_array()
            .unwrap_or_else(|| panic!("no {name} in {out}"));
        assert_eq!(theirs.len(), ours.num_buckets(), "{name} bucket count");
        for (b, t) in theirs.iter().enumerate() {
            let hex = t["bits"]
                .as_str()
                .or_else(|| t.as_str())
                .unwrap_or_default();
            let bits = u64::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("{name}[{b}]: {t}"));
            assert_eq!(
                ours.bucket_starts()[b].to_bits(),
                bits,
                "{name} bucket {b}: ours {} upstream {}",
                ours.bucket_starts()[b],
                f64::from_bits(bits)
            );
        }
    }
}

/// Values at bucket boundaries, one ulp either side, and every millicore/byte amount next to
/// a boundary: our bucket lookup must give upstream's bucket for each.
#[test]
fn bucket_lookup_equals_upstream_at_boundaries() {
    let cpu = cpu_histogram_options();
    let memory = memory_histogram_options();
    let mut values: Vec<f64> = Vec::new();
    for starts in [cpu.bucket_starts(), memory.bucket_starts()] {
        for &s in starts {
            for bits in [s.to_bits().saturating_sub(1), s.to_bits(), s.to_bits() + 1] {
                values.push(f64::from_bits(bits));
            }
        }
    }
    for &s in cpu.bucket_starts() {
        // What a CPU sample really is: whole millicores / 1000.
        let m = (s * 1000.0).floor();
        for d in [-1.0, 0.0, 1.0, 2.0] {
            values.push((m + d).max(0.0) / 1000.0);
        }
    }
    for &s in memory.bucket_starts() {
        for d in [-1.0, 0.0, 1.0] {
            values.push((s.floor() + d).max(0.0));
        }
    }
    let dir = workspace().join("target/differential");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("find-bucket-values.txt");
    let text: String = values.iter().map(|v| format!("{v:?}\n")).collect();
    std::fs::write(&path, text).unwrap();
    let out = run(&oracle(), &["--dump-find-bucket", path.to_str().unwrap()]);
    let v: Value = serde_json::from_str(&out).expect("dump-find-bucket JSON");
    let results = v["results"].as_array().expect("results");
    assert_eq!(results.len(), values.len());
    let mut mismatches = Vec::new();
    for (value, r) in values.iter().zip(results) {
        let bits = u64::from_str_radix(r["bits"].as_str().unwrap_or_default(), 16).unwrap();
        assert_eq!(
            bits,
            value.to_bits(),
            "value {value:?} did not reach the oracle exactly"
        );
        let (c, m) = (cpu.find_bucket(*value), memory.find_bucket(*value));
        if r["cpu"].as_u64() != Some(c as u64) || r["memory"].as_u64() != Some(m as u64) {
            mismatches.push(format!("{value:?}: ours cpu {c} memory {m}, upstream {r}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    eprintln!(
        "find-bucket: {} boundary values, all equal to upstream",
        values.len()
    );
}
