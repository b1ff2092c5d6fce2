//! Scale run of the recommender cycle in memory (no API server): 10,000 VPAs in 1,000
//! namespaces, 100,000 pods, 200,000 containers, one minute of metrics per cycle.
//!
//! Each cycle does what `controller::Recommender::run_once` does between its API calls:
//! pods from the store (compact `feeder::PodRecord`s) synced, PodMetrics converted
//! (`feeder::usage_from_metrics`) and fed, every VPA's status computed and compared
//! (`Engine::update_vpas`), checkpoints built for `--update-worker-count` × 10 VPAs, GC.
//! VPA objects are parsed from JSON once at start (the controller re-parses only changed
//! objects). Prints per-step medians over the cycles and the peak RSS (VmHWM).
//!
//!   cargo bench -p vpa-recommender --bench cycle -- [CYCLES]

use k8s_openapi::api::core::v1::Pod;
use std::sync::Arc;
use std::time::Instant;
use vpa_core::api::metrics::PodMetrics;
use vpa_core::labels::Selector;
use vpa_core::model::{AggregationsConfig, Resources};
use vpa_core::recommendation::OutputFormat;
use vpa_core::recommender::PodResourceRecommender;
use vpa_core::time::Timestamp;
use vpa_recommender::engine::{Engine, EngineSettings, SelectorState, VpaInput};
use vpa_recommender::feeder;

const NAMESPACES: usize = 1_000;
const VPAS_PER_NS: usize = 10;
const PODS_PER_VPA: usize = 10;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn cpu_seconds() -> f64 {
    // utime + stime of this process, from /proc/self/stat (clock ticks, 100 Hz on Linux).
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let u: f64 = f.get(11)?.parse().ok()?;
            let k: f64 = f.get(12)?.parse().ok()?;
            Some((u + k) / 100.0)
        })
        .unwrap_or(0.0)
}

fn pod_json(ns: usize, vpa: usize, i: usize) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("app-{vpa}-7d9f8c-{i:05}"), "namespace": format!("ns-{ns}"),
            "labels": {"app": format!("app-{vpa}"), "pod-template-hash": "7d9f8c"}},
        "spec": {"containers": [
            {"name": "main", "image": "registry.example/app:1.2.3",
             "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}},
            {"name": "sidecar", "image": "registry.example/proxy:1.0",
             "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}}}]},
        "status": {"phase": "Running"}
    }))
    .unwrap_or_default()
}

fn metrics_json(pod: &vpa_core::model::ObjectId, minute: i64, seed: u64) -> PodMetrics {
    let ts = Timestamp::from_unix_seconds(1_800_000_000 + minute * 60);
    let secs = ts.unix_seconds();
    let time = k8s_openapi::jiff::Timestamp::from_second(secs).unwrap_or_default();
    let cpu = 100 + (seed % 400);
    let mem = 100 + (seed % 200);
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": &*pod.name, "namespace": &*pod.namespace},
        "timestamp": time.to_string(), "window": "30s",
        "containers": [
            {"name": "main", "usage": {"cpu": format!("{cpu}m"), "memory": format!("{mem}Mi")}},
            {"name": "sidecar", "usage": {"cpu": format!("{}m", cpu / 10), "memory": "40Mi"}}]
    }))
    .unwrap_or_else(|_| PodMetrics {
        metadata: Default::default(),
        timestamp: None,
        window: None,
        containers: vec![],
    })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let cycles: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10);
    let settings = EngineSettings {
        aggregations: Arc::new(AggregationsConfig::default()),
        recommender: PodResourceRecommender::default(),
        format: OutputFormat::default(),
        global_max_allowed: Resources::default(),
        integer_cpu: false,
        memory_saver: false,
        per_vpa_config: false,
    };
    let mut engine = Engine::new(settings);

    let setup = Instant::now();
    let mut vpa_inputs = Vec::with_capacity(NAMESPACES * VPAS_PER_NS);
    for ns in 0..NAMESPACES {
        for v in 0..VPAS_PER_NS {
            let raw = serde_json::json!({
                "apiVersion": "autoscaling.k8s.io/v1", "kind": "VerticalPodAutoscaler",
                "metadata": {"name": format!("vpa-{v}"), "namespace": format!("ns-{ns}"), "generation": 1},
                "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": format!("app-{v}")},
                         "resourcePolicy": {"containerPolicies": [{"containerName": "*", "maxAllowed": {"cpu": "4", "memory": "8Gi"}}]}}
            });
            let Some(p) = feeder::parse_vpa(&raw) else {
                continue;
            };
            let app = format!("app-{v}");
            let selector = Selector::new([("app", app.as_str())], [])
                .map(SelectorState::Resolved)
                .unwrap_or(SelectorState::Unsupported(String::new()));
            vpa_inputs.push(VpaInput {
                id: p.id,
                generation: p.generation,
                selector,
                policy: p.policy,
                config_error: p.config_error,
                annotations: p.annotations,
                observed: p.status,
                hpa_conflict: None,
            });
        }
    }
    // The pod store holds compact records, built from each Pod object as the watch
    // delivers it.
    let mut records = Vec::with_capacity(NAMESPACES * VPAS_PER_NS * PODS_PER_VPA);
    for ns in 0..NAMESPACES {
        for v in 0..VPAS_PER_NS {
            for i in 0..PODS_PER_VPA {
                records.extend(feeder::pod_record(&pod_json(ns, v, i)));
            }
        }
    }
    eprintln!(
        "setup: {} VPAs, {} pods in {:.1} s (RSS {} MiB)",
        vpa_inputs.len(),
        records.len(),
        setup.elapsed().as_secs_f64(),
        peak_rss_kib() / 1024
    );
    let rss_before = peak_rss_kib();

    let (mut t_vpas, mut t_pods, mut t_metrics, mut t_update, mut t_cp, mut t_total, mut t_cpu) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut writes = 0;
    for cycle in 0..cycles {
        // Metrics for this minute, as the Metrics API would return them (built outside the
        // timed part: that is the API's work).
        let items: Vec<PodMetrics> = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                metrics_json(
                    &r.input.id,
                    cycle as i64,
                    (i as u64).wrapping_mul(2654435761) ^ cycle as u64,
                )
            })
            .collect();
        let now = Timestamp::from_unix_seconds(1_800_000_000 + cycle as i64 * 60 + 30);
        let cpu0 = cpu_seconds();
        let t0 = Instant::now();
        engine.sync_vpas(vpa_inputs.clone());
        let t1 = Instant::now();
        engine.sync_pods(records.iter().map(|r| &r.input), now);
        let t2 = Instant::now();
        let (usage, _problems) = feeder::usage_from_metrics(&items);
        let covered: std::collections::HashSet<_> = usage.iter().map(|u| u.pod.clone()).collect();
        engine.note_metrics_coverage(&covered, now);
        let stats = engine.add_usage(&usage);
        assert_eq!(stats.accepted, 400_000, "every sample accepted");
        let t3 = Instant::now();
        let out = engine.update_vpas(now);
        writes += out.writes.len();
        // Feed the written statuses back as observed, as the watch would.
        let by_id: std::collections::HashMap<_, _> =
            out.writes.into_iter().map(|w| (w.id, w.status)).collect();
        for v in &mut vpa_inputs {
            if let Some(s) = by_id.get(&v.id) {
                v.observed = Some(s.clone());
            }
        }
        let t4 = Instant::now();
        let order = engine.checkpoint_order();
        for id in order.iter().take(100) {
            let cps = engine.checkpoints_for(id, now);
            std::hint::black_box(&cps);
            engine.checkpoint_written(id, now);
        }
        engine.garbage_collect(now, |_| true);
        let t5 = Instant::now();
        let cpu1 = cpu_seconds();
        t_vpas.push((t1 - t0).as_secs_f64());
        t_pods.push((t2 - t1).as_secs_f64());
        t_metrics.push((t3 - t2).as_secs_f64());
        t_update.push((t4 - t3).as_secs_f64());
        t_cp.push((t5 - t4).as_secs_f64());
        t_total.push((t5 - t0).as_secs_f64());
        t_cpu.push(cpu1 - cpu0);
        drop(items);
    }
    println!(
        "cycles {cycles}: median per cycle (s): total {:.3}, cpu {:.2}, sync_vpas {:.3}, pods {:.3}, metrics {:.3}, update_vpas {:.3}, checkpoints(100 VPAs)+gc {:.3}",
        median(&mut t_total),
        median(&mut t_cpu),
        median(&mut t_vpas),
        median(&mut t_pods),
        median(&mut t_metrics),
        median(&mut t_update),
        median(&mut t_cp)
    );
    println!(
        "status writes over all cycles: {writes}; aggregates {}; peak RSS {} MiB (after setup {} MiB)",
        engine.model().aggregation_count(),
        peak_rss_kib() / 1024,
        rss_before / 1024
    );
}
