//! In-process latency of the pod webhook over an index of 10,000 VPAs (see `fixture`):
//!
//! * `admission/mutator`: [`IndexMutator::mutate_pod`] alone on a decoded pod: index lookup
//!   (owner walk, selector match), pod and LimitRange conversion, the patch, its JSON form.
//! * `admission/review_pod_create`: the whole request path minus HTTP and TLS: body bytes in,
//!   envelope and typed decode, dispatch, mutation, metrics, response bytes out.
//! * `admission/review_no_vpa`: the same for a pod whose Deployment has no VPA (decode cost).
//!
//! Each call takes the next of 1,000 pods spread over all namespaces, so lookups do not hit
//! one warm bucket (`review_one_pod` repeats one pod, in a namespace with a LimitRange, to
//! tell input variety from noise). Before the criterion runs, each path is also timed call by call
//! (100,000 calls under `cargo bench`, 1,000 under `cargo test --benches`) and its p50, p90,
//! p99, p99.9 and maximum are printed: criterion reports means and medians only.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

/// mimalloc: fewer and cheaper allocations on the request path than glibc malloc (see
/// docs/benchmarks.md, Admission controller).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod fixture;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::Criterion;
use k8s_openapi::api::core::v1::Pod;
use vpa_admission::hooks::Hooks;
use vpa_admission::metrics::AdmissionMetrics;
use vpa_admission::mutator::IndexMutator;
use vpa_admission::review::Reviewer;
use vpa_admission::validator::Validator;
use vpa_core::patch::PatchConfig;

/// Distinct pods the calls cycle through.
const PODS: usize = 1_000;

struct Setup {
    mutator: Arc<IndexMutator>,
    reviewer: Reviewer,
    metrics: AdmissionMetrics,
    bodies: Vec<Vec<u8>>,
    pods: Vec<(Pod, String)>,
    no_vpa: Vec<u8>,
}

fn setup() -> Setup {
    let start = Instant::now();
    let index = fixture::index().unwrap();
    let built = start.elapsed();
    let mutator = Arc::new(IndexMutator::new(index.clone(), PatchConfig::default()));
    let hooks = Hooks::new(mutator.clone(), Arc::new(Validator::default()));
    let bodies = fixture::bodies(PODS).unwrap();
    let pods = fixture::pods(&bodies).unwrap();
    let no_vpa =
        serde_json::to_vec(&fixture::review(&fixture::namespace(0), 99, 0).unwrap()).unwrap();
    println!(
        "index: {} VPAs, {} owner records, built in {built:.2?}; request body {} bytes",
        index.read().len(),
        index.read().owner_count(),
        bodies[0].len()
    );
    Setup {
        mutator,
        reviewer: Reviewer::new(hooks),
        metrics: AdmissionMetrics::unregistered(),
        bodies,
        pods,
        no_vpa,
    }
}

impl Setup {
    /// What the HTTP handler does with a body it has read.
    fn review(&self, body: &[u8]) -> Vec<u8> {
        let reviewed = self.reviewer.review(body).unwrap();
        reviewed.record(&self.metrics);
        reviewed.to_json()
    }

    /// The benchmark measures the real path: every pod gets a patch from its VPA, the pod
    /// without a VPA gets none.
    fn check(&self) {
        for (pod, ns) in &self.pods {
            let m = self.mutator.mutate_pod(pod, ns).unwrap();
            assert!(!m.patch.0.is_empty(), "no patch for a pod in {ns}");
        }
        for body in &self.bodies {
            let out: serde_json::Value = serde_json::from_slice(&self.review(body)).unwrap();
            assert_eq!(out["response"]["patchType"], "JSONPatch", "{out}");
        }
        let out: serde_json::Value = serde_json::from_slice(&self.review(&self.no_vpa)).unwrap();
        assert!(out["response"].get("patch").is_none(), "{out}");
    }
}

/// Times `calls` calls one by one and prints the distribution.
fn distribution(name: &str, calls: usize, mut f: impl FnMut(usize)) {
    for k in 0..calls.min(10_000) {
        f(k);
    }
    let mut ns: Vec<u64> = Vec::with_capacity(calls);
    for k in 0..calls {
        let t = Instant::now();
        f(k);
        ns.push(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }
    ns.sort_unstable();
    let at = |p: f64| {
        let i = ((p * calls as f64).ceil() as usize).clamp(1, calls) - 1;
        ns[i] as f64 / 1_000.0
    };
    println!(
        "{name:<28} calls={calls} p50={:.1}µs p90={:.1}µs p99={:.1}µs p99.9={:.1}µs max={:.1}µs",
        at(0.50),
        at(0.90),
        at(0.99),
        at(0.999),
        at(1.0)
    );
}

fn criterion_runs(c: &mut Criterion, s: &Setup) {
    let mut g = c.benchmark_group("admission");
    let mut k = 0;
    g.bench_function("mutator", |b| {
        b.iter(|| {
            k = (k + 1) % PODS;
            let (pod, ns) = &s.pods[k];
            black_box(s.mutator.mutate_pod(pod, ns))
        })
    });
    g.bench_function("review_pod_create", |b| {
        b.iter(|| {
            k = (k + 1) % PODS;
            black_box(s.review(&s.bodies[k]))
        })
    });
    g.bench_function("review_no_vpa", |b| {
        b.iter(|| black_box(s.review(&s.no_vpa)))
    });
    g.finish();
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let calls = if bench_mode { 100_000 } else { 1_000 };
    let s = setup();
    s.check();
    distribution("mutator", calls, |k| {
        let (pod, ns) = &s.pods[k % PODS];
        black_box(s.mutator.mutate_pod(pod, ns).unwrap());
    });
    distribution("review_pod_create", calls, |k| {
        black_box(s.review(&s.bodies[k % PODS]));
    });
    distribution("review_one_pod", calls, |_| {
        black_box(s.review(&s.bodies[0]));
    });
    distribution("review_no_vpa", calls, |_| {
        black_box(s.review(&s.no_vpa));
    });
    let mut c = Criterion::default().configure_from_args();
    criterion_runs(&mut c, &s);
    c.final_summary();
}
