//! The recommender's Prometheus metrics (prometheus-client), with upstream's names where
//! they exist (`vpa_recommender_execution_latency_seconds{step}`,
//! `vpa_recommender_aggregate_container_states_count`, `vpa_recommender_vpa_objects_count`)
//! and ours for what upstream only logs: Metrics API availability, fetch errors, watch
//! errors, samples, OOMs and API writes.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    step: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VpaLabels {
    has_recommendation: String,
}

/// All recommender metrics.
pub struct RecommenderMetrics {
    execution_latency: Family<StepLabels, Histogram>,
    aggregates: Gauge,
    vpa_objects: Family<VpaLabels, Gauge>,
    metrics_api_available: Gauge,
    metrics_errors: Family<ReasonLabels, Counter>,
    watch_errors: Family<ResourceLabels, Counter>,
    samples: Family<ResultLabels, Counter>,
    ooms: Counter,
    ooms_dropped: Counter,
    status_writes: Family<ResultLabels, Counter>,
    checkpoint_writes: Family<ResultLabels, Counter>,
    last_watch_log: Mutex<Option<Instant>>,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
    ])
}

impl RecommenderMetrics {
    /// Creates the metrics and registers them.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self {
            execution_latency: Family::new_with_constructor(latency_histogram),
            aggregates: Gauge::default(),
            vpa_objects: Family::default(),
            metrics_api_available: Gauge::default(),
            metrics_errors: Family::default(),
            watch_errors: Family::default(),
            samples: Family::default(),
            ooms: Counter::default(),
            ooms_dropped: Counter::default(),
            status_writes: Family::default(),
            checkpoint_writes: Family::default(),
            last_watch_log: Mutex::new(None),
        };
        let r = registry.sub_registry_with_prefix("vpa_recommender");
        r.register(
            "execution_latency_seconds",
            "Time spent in each step of the recommender loop",
            m.execution_latency.clone(),
        );
        r.register(
            "aggregate_container_states_count",
            "Number of aggregate container states in the model",
            m.aggregates.clone(),
        );
        r.register(
            "vpa_objects_count",
            "Number of VPA objects handled by this recommender",
            m.vpa_objects.clone(),
        );
        r.register(
            "metrics_api_available",
            "1 when the last read of the Metrics API succeeded, else 0",
            m.metrics_api_available.clone(),
        );
        r.register(
            "metrics_api_errors",
            "Failed reads of the Metrics API, by reason",
            m.metrics_errors.clone(),
        );
        r.register(
            "watch_errors",
            "Errors of the API watches, by resource",
            m.watch_errors.clone(),
        );
        r.register(
            "usage_samples",
            "Usage samples by result (accepted, rejected, unknown container)",
            m.samples.clone(),
        );
        r.register("oom_events", "OOM kills recorded", m.ooms.clone());
        r.register(
            "oom_events_dropped",
            "OOM kills dropped because the buffer was full",
            m.ooms_dropped.clone(),
        );
        r.register(
            "status_writes",
            "VPA status writes by result",
            m.status_writes.clone(),
        );
        r.register(
            "checkpoint_writes",
            "Checkpoint writes by result",
            m.checkpoint_writes.clone(),
        );
        m
    }

    /// Records the duration of a loop step.
    pub fn step(&self, step: &str, seconds: f64) {
        self.execution_latency
            .get_or_create(&StepLabels { step: step.into() })
            .observe(seconds);
    }

    /// Number of aggregates.
    pub fn aggregates(&self, n: usize) {
        self.aggregates.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// VPAs, and how many of them have a recommendation.
    pub fn vpas(&self, total: usize, with_recommendation: usize) {
        let set = |v: &str, n: usize| {
            self.vpa_objects
                .get_or_create(&VpaLabels {
                    has_recommendation: v.into(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        };
        set("true", with_recommendation);
        set("false", total.saturating_sub(with_recommendation));
    }

    /// The result of a Metrics API read.
    pub fn metrics_api(&self, ok: bool, reason: Option<&str>) {
        self.metrics_api_available.set(i64::from(ok));
        if let Some(r) = reason {
            self.metrics_errors
                .get_or_create(&ReasonLabels { reason: r.into() })
                .inc();
        }
    }

    /// A watch error (logged at most every 30 s).
    pub fn watch_error(&self, resource: &str, e: &dyn std::fmt::Display) {
        self.watch_errors
            .get_or_create(&ResourceLabels {
                resource: resource.into(),
            })
            .inc();
        let now = Instant::now();
        if let Ok(mut last) = self.last_watch_log.lock()
            && last.is_none_or(|l| now.duration_since(l) > Duration::from_secs(30))
        {
            *last = Some(now);
            tracing::warn!(resource, "watch failed (retrying with backoff): {e}");
        }
    }

    /// Samples fed.
    pub fn samples(&self, accepted: usize, rejected: usize, unknown: usize) {
        for (r, n) in [
            ("accepted", accepted),
            ("rejected", rejected),
            ("unknown_container", unknown),
        ] {
            self.samples
                .get_or_create(&ResultLabels { result: r.into() })
                .inc_by(n as u64);
        }
    }

    /// OOMs recorded.
    pub fn ooms(&self, n: usize) {
        self.ooms.inc_by(n as u64);
    }

    /// An OOM dropped.
    pub fn oom_dropped(&self) {
        self.ooms_dropped.inc();
    }

    /// Status writes.
    pub fn status_writes(&self, ok: usize, failed: usize) {
        for (r, n) in [("success", ok), ("error", failed)] {
            self.status_writes
                .get_or_create(&ResultLabels { result: r.into() })
                .inc_by(n as u64);
        }
    }

    /// Checkpoint writes of one VPA.
    pub fn checkpoint_writes(&self, n: usize, ok: bool) {
        let r = if ok { "success" } else { "error" };
        self.checkpoint_writes
            .get_or_create(&ResultLabels { result: r.into() })
            .inc_by(n as u64);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_are_upstreams_where_they_exist() {
        let mut registry = Registry::default();
        let m = RecommenderMetrics::new(&mut registry);
        m.step("total", 0.5);
        m.aggregates(3);
        m.vpas(5, 2);
        m.metrics_api(false, Some("unavailable"));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("vpa_recommender_execution_latency_seconds_count{step=\"total\"} 1"),
            "{text}"
        );
        assert!(text.contains("vpa_recommender_aggregate_container_states_count 3"));
        assert!(text.contains("vpa_recommender_vpa_objects_count{has_recommendation=\"true\"} 2"));
        assert!(text.contains("vpa_recommender_metrics_api_available 0"));
        assert!(
            text.contains("vpa_recommender_metrics_api_errors_total{reason=\"unavailable\"} 1")
        );
    }
}
