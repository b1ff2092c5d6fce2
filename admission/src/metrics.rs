//! The admission controller's Prometheus metrics (prometheus-client), under upstream's prefix
//! `vpa_admission_controller_`:
//!
//! * `admission_latency_seconds{status,resource}`: upstream's histogram; `status` is `applied`
//!   (a patch was returned), `skipped` (admitted unchanged) or `error` (bad request, internal
//!   error, denial, unsupported resource), `resource` is `Pod`, `VPA` or `unknown`. Upstream's
//!   buckets, with four finer ones below 10 ms added.
//! * `admission_pods_total{applied}`: upstream's count of pods handled.
//! * vpa-rs: `rejected_requests_total{reason}` (HTTP 4xx), `hook_errors_total{resource}`
//!   (admitted unchanged because of an internal problem), `warnings_total{resource}`,
//!   `vpa_denials_total`, `tls_handshake_failures_total`, `cert_reloads_total{result}`,
//!   `webhook_registrations_total{result}`, `status_lease_renewals_total{result}`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// `status` label of the latency histogram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AdmissionStatus {
    /// A patch was returned.
    Applied,
    /// Admitted without a patch.
    Skipped,
    /// Bad request, internal error, denial or unsupported resource.
    Error,
}

impl AdmissionStatus {
    /// Upstream's label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Skipped => "skipped",
            Self::Error => "error",
        }
    }
}

/// `resource` label of the latency histogram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AdmissionResource {
    /// A pod.
    Pod,
    /// A VerticalPodAutoscaler.
    Vpa,
    /// Not known (bad request) or not handled.
    Unknown,
}

impl AdmissionResource {
    /// Upstream's label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pod => "Pod",
            Self::Vpa => "VPA",
            Self::Unknown => "unknown",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    status: &'static str,
    resource: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppliedLabels {
    applied: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    resource: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// Why a request got an HTTP error instead of an AdmissionReview.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Content-Type is not application/json (400).
    ContentType,
    /// Body over 5 MiB (413).
    TooLarge,
    /// Body not received in time (408).
    BodyTimeout,
    /// The body could not be read (400).
    BodyError,
    /// Not an admission.k8s.io/v1 AdmissionReview with a request (400).
    Malformed,
}

impl Rejection {
    fn as_str(self) -> &'static str {
        match self {
            Self::ContentType => "content_type",
            Self::TooLarge => "too_large",
            Self::BodyTimeout => "body_timeout",
            Self::BodyError => "body_error",
            Self::Malformed => "malformed",
        }
    }
}

fn result(ok: bool) -> ResultLabels {
    ResultLabels {
        result: if ok { "success" } else { "error" },
    }
}

/// All admission controller metrics. Cheap to update from any thread.
#[derive(Debug)]
pub struct AdmissionMetrics {
    latency: Family<LatencyLabels, Histogram>,
    pods: Family<AppliedLabels, Counter>,
    rejected: Family<ReasonLabels, Counter>,
    hook_errors: Family<ResourceLabels, Counter>,
    warnings: Family<ResourceLabels, Counter>,
    denials: Counter,
    handshake_failures: Counter,
    cert_reloads: Family<ResultLabels, Counter>,
    registrations: Family<ResultLabels, Counter>,
    lease_renewals: Family<ResultLabels, Counter>,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0,
        30.0, 60.0, 120.0, 300.0,
    ])
}

impl AdmissionMetrics {
    /// Metrics that are not registered anywhere (tests, benchmarks).
    pub fn unregistered() -> Self {
        Self {
            latency: Family::new_with_constructor(latency_histogram),
            pods: Family::default(),
            rejected: Family::default(),
            hook_errors: Family::default(),
            warnings: Family::default(),
            denials: Counter::default(),
            handshake_failures: Counter::default(),
            cert_reloads: Family::default(),
            registrations: Family::default(),
            lease_renewals: Family::default(),
        }
    }

    /// Creates the metrics and registers them under `vpa_admission_controller_`.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self::unregistered();
        let r = registry.sub_registry_with_prefix("vpa_admission_controller");
        r.register(
            "admission_latency_seconds",
            "Time spent in VPA Admission Controller.",
            m.latency.clone(),
        );
        r.register(
            "admission_pods",
            "Number of Pods processed by VPA Admission Controller.",
            m.pods.clone(),
        );
        r.register(
            "rejected_requests",
            "Requests answered with an HTTP error instead of an AdmissionReview, by reason.",
            m.rejected.clone(),
        );
        r.register(
            "hook_errors",
            "Objects admitted unchanged because of an internal problem, by resource.",
            m.hook_errors.clone(),
        );
        r.register(
            "warnings",
            "Warnings returned to API clients, by resource.",
            m.warnings.clone(),
        );
        r.register(
            "vpa_denials",
            "VerticalPodAutoscaler objects rejected as invalid.",
            m.denials.clone(),
        );
        r.register(
            "tls_handshake_failures",
            "TLS connections that failed or timed out in the handshake.",
            m.handshake_failures.clone(),
        );
        r.register(
            "cert_reloads",
            "Changed certificate files loaded (success) or rejected (error).",
            m.cert_reloads.clone(),
        );
        r.register(
            "webhook_registrations",
            "Applies of the MutatingWebhookConfiguration, by result.",
            m.registrations.clone(),
        );
        r.register(
            "status_lease_renewals",
            "Renewals of the admission controller status Lease, by result.",
            m.lease_renewals.clone(),
        );
        m
    }

    /// Records one admission's latency.
    pub fn observe(&self, status: AdmissionStatus, resource: AdmissionResource, seconds: f64) {
        self.latency
            .get_or_create(&LatencyLabels {
                status: status.as_str(),
                resource: resource.as_str(),
            })
            .observe(seconds);
    }

    /// Counts a pod handled (upstream's `admission_pods_total`).
    pub fn pod_admitted(&self, applied: bool) {
        self.pods
            .get_or_create(&AppliedLabels {
                applied: if applied { "true" } else { "false" },
            })
            .inc();
    }

    /// Counts a request answered with an HTTP error.
    pub fn rejected(&self, reason: Rejection) {
        self.rejected
            .get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            })
            .inc();
    }

    /// Counts an object admitted unchanged because of an internal problem.
    pub fn hook_error(&self, resource: AdmissionResource) {
        self.hook_errors
            .get_or_create(&ResourceLabels {
                resource: resource.as_str(),
            })
            .inc();
    }

    /// Counts warnings returned to a client.
    pub fn warnings(&self, resource: AdmissionResource, n: usize) {
        if n > 0 {
            self.warnings
                .get_or_create(&ResourceLabels {
                    resource: resource.as_str(),
                })
                .inc_by(n as u64);
        }
    }

    /// Counts a VPA denial.
    pub fn vpa_denied(&self) {
        self.denials.inc();
    }

    /// Counts a failed TLS handshake.
    pub fn handshake_failed(&self) {
        self.handshake_failures.inc();
    }

    /// Counts a certificate reload.
    pub fn cert_reload(&self, ok: bool) {
        self.cert_reloads.get_or_create(&result(ok)).inc();
    }

    /// Counts a webhook registration.
    pub fn registration(&self, ok: bool) {
        self.registrations.get_or_create(&result(ok)).inc();
    }

    /// Counts a status Lease renewal.
    pub fn lease_renewal(&self, ok: bool) {
        self.lease_renewals.get_or_create(&result(ok)).inc();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn names_and_labels_follow_upstream() {
        let mut registry = Registry::default();
        let m = AdmissionMetrics::new(&mut registry);
        m.observe(AdmissionStatus::Applied, AdmissionResource::Pod, 0.003);
        m.observe(AdmissionStatus::Error, AdmissionResource::Unknown, 0.2);
        m.pod_admitted(true);
        m.rejected(Rejection::TooLarge);
        m.hook_error(AdmissionResource::Vpa);
        m.warnings(AdmissionResource::Pod, 2);
        m.cert_reload(true);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for needle in [
            "vpa_admission_controller_admission_latency_seconds_bucket{le=\"0.005\",status=\"applied\",resource=\"Pod\"} 1",
            "vpa_admission_controller_admission_latency_seconds_count{status=\"error\",resource=\"unknown\"} 1",
            "vpa_admission_controller_admission_pods_total{applied=\"true\"} 1",
            "vpa_admission_controller_rejected_requests_total{reason=\"too_large\"} 1",
            "vpa_admission_controller_hook_errors_total{resource=\"VPA\"} 1",
            "vpa_admission_controller_warnings_total{resource=\"Pod\"} 2",
            "vpa_admission_controller_cert_reloads_total{result=\"success\"} 1",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }
}
