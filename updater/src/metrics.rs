//! The updater's Prometheus metrics (prometheus-client), under upstream's prefix
//! `vpa_updater_`:
//!
//! * `evicted_pods_total`, `failed_eviction_attempts_total`: evictions the API server
//!   accepted, and those it refused (a PodDisruptionBudget's 429 included);
//! * `in_place_updated_pods_total`, `failed_in_place_update_attempts_total{reason}`: resizes
//!   through `pods/resize` (`reason` is `infeasible` or `error`);
//! * `controlled_pods_count`, `evictable_pods_count`, `in_place_updatable_pods_count`: gauges
//!   of the last loop, summed over its VPAs;
//! * `execution_latency_seconds{step}`: the duration of each step of a loop (`total`,
//!   `snapshot`, `act`).
//! * vpa-rs: `loops_total{result}` (`done`, `skipped`: the admission-controller status was
//!   not fresh, `aborted`: the rate limiter hit the loop's deadline).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    step: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
    ])
}

/// The metrics, registered once.
#[derive(Debug)]
pub struct UpdaterMetrics {
    evicted: Counter,
    failed_evictions: Counter,
    in_place_updated: Counter,
    failed_in_place: Family<ReasonLabels, Counter>,
    controlled: Gauge,
    evictable: Gauge,
    in_place_updatable: Gauge,
    latency: Family<StepLabels, Histogram, fn() -> Histogram>,
    loops: Family<ResultLabels, Counter>,
}

/// How a loop ended, for `loops_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopResult {
    /// Every VPA was processed.
    Done,
    /// The admission-controller status Lease was not fresh: nothing was done.
    Skipped,
    /// The rate limiter could not give a token before the deadline.
    Aborted,
}

impl UpdaterMetrics {
    /// Registers the metrics in `registry` under `vpa_updater_`.
    pub fn new(registry: &mut Registry) -> Self {
        let r = registry.sub_registry_with_prefix("vpa_updater");
        let m = Self {
            evicted: Counter::default(),
            failed_evictions: Counter::default(),
            in_place_updated: Counter::default(),
            failed_in_place: Family::default(),
            controlled: Gauge::default(),
            evictable: Gauge::default(),
            in_place_updatable: Gauge::default(),
            latency: Family::new_with_constructor(latency_histogram),
            loops: Family::default(),
        };
        r.register(
            "evicted_pods",
            "Pods evicted through the Eviction API",
            m.evicted.clone(),
        );
        r.register(
            "failed_eviction_attempts",
            "Evictions the API server refused (PodDisruptionBudget, errors)",
            m.failed_evictions.clone(),
        );
        r.register(
            "in_place_updated_pods",
            "Pods resized in place through pods/resize",
            m.in_place_updated.clone(),
        );
        r.register(
            "failed_in_place_update_attempts",
            "Resizes the API server refused",
            m.failed_in_place.clone(),
        );
        r.register(
            "controlled_pods_count",
            "Live pods controlled by a handled VPA, in the last loop",
            m.controlled.clone(),
        );
        r.register(
            "evictable_pods_count",
            "Pods ordered for eviction in the last loop",
            m.evictable.clone(),
        );
        r.register(
            "in_place_updatable_pods_count",
            "Pods ordered for an in-place update in the last loop",
            m.in_place_updatable.clone(),
        );
        r.register(
            "execution_latency_seconds",
            "Duration of the steps of an updater loop",
            m.latency.clone(),
        );
        r.register("loops", "Updater loops by how they ended", m.loops.clone());
        m
    }

    /// One eviction accepted.
    pub fn evicted(&self) {
        self.evicted.inc();
    }

    /// One eviction refused.
    pub fn eviction_failed(&self) {
        self.failed_evictions.inc();
    }

    /// One resize accepted.
    pub fn resized(&self) {
        self.in_place_updated.inc();
    }

    /// One resize refused.
    pub fn resize_failed(&self, infeasible: bool) {
        let reason = if infeasible { "infeasible" } else { "error" };
        self.failed_in_place
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// The gauges of a loop.
    pub fn set_counts(&self, controlled: usize, evictable: usize, in_place_updatable: usize) {
        let g = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.controlled.set(g(controlled));
        self.evictable.set(g(evictable));
        self.in_place_updatable.set(g(in_place_updatable));
    }

    /// The duration of one step.
    pub fn observe_step(&self, step: &'static str, seconds: f64) {
        self.latency
            .get_or_create(&StepLabels { step })
            .observe(seconds);
    }

    /// A loop ended.
    pub fn loop_ended(&self, result: LoopResult) {
        let result = match result {
            LoopResult::Done => "done",
            LoopResult::Skipped => "skipped",
            LoopResult::Aborted => "aborted",
        };
        self.loops.get_or_create(&ResultLabels { result }).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_upstreams_prefix() {
        let mut registry = Registry::default();
        let m = UpdaterMetrics::new(&mut registry);
        m.evicted();
        m.eviction_failed();
        m.resize_failed(true);
        m.set_counts(3, 2, 0);
        m.observe_step("total", 0.2);
        m.loop_ended(LoopResult::Skipped);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap_or_default();
        for name in [
            "vpa_updater_evicted_pods_total 1",
            "vpa_updater_failed_eviction_attempts_total 1",
            "vpa_updater_failed_in_place_update_attempts_total{reason=\"infeasible\"} 1",
            "vpa_updater_controlled_pods_count 3",
            "vpa_updater_evictable_pods_count 2",
            "vpa_updater_execution_latency_seconds_count{step=\"total\"} 1",
            "vpa_updater_loops_total{result=\"skipped\"} 1",
        ] {
            assert!(out.contains(name), "{name} missing in\n{out}");
        }
    }
}
