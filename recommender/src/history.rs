//! Usage history from Prometheus: `--storage=prometheus` (history at start for VPAs without
//! checkpoints) and `vpa-recommender replay --prometheus URL` (replaying real history offline).
//!
//! Queries, labels and flags are upstream's (`input/history/history_provider.go`): a CPU
//! `rate(...)` range query and a memory range query over `[now - history-length, now]` at step
//! `history-resolution`, with container identity from cAdvisor's labels, and pod labels from an
//! instant query of `--metric-for-pod-labels`. Unlike upstream, each range query is split into
//! windows of at most [`MAX_POINTS_PER_SERIES`] steps, so that long histories at a fine
//! resolution stay under Prometheus' per-series limit instead of failing (upstream #2543).
//!
//! The pure part (query text, range splitting, response parsing, assembly into pods) is
//! separate from the one HTTP call, [`PrometheusHistoryProvider::load`].

use crate::history_load::PodHistory;
use crate::metrics_source::error_chain;
use base64::Engine as _;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use thiserror::Error;
use vpa_core::labels::LabelSet;
use vpa_core::model::{ObjectId, UsageSample};
use vpa_core::time::{Duration, Timestamp, parse_go_duration};
use vpa_core::validation::go_quote;

/// Prometheus refuses range queries that would return more than 11,000 points per series.
pub const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// The history of a cluster: per pod, its labels and per-container samples in time order.
pub type ClusterHistory = BTreeMap<ObjectId, PodHistory>;

/// Upstream's Prometheus history flags, names and defaults.
#[derive(Debug, Clone, clap::Args)]
pub struct PrometheusFlags {
    /// Where to reach Prometheus.
    #[arg(long, default_value = "http://prometheus.monitoring.svc")]
    pub prometheus_address: String,
    /// Skip verifying Prometheus' TLS certificate.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub prometheus_insecure: bool,
    /// Name of the Prometheus job that scrapes cAdvisor; empty: no job filter.
    #[arg(long, default_value = "kubernetes-cadvisor")]
    pub prometheus_cadvisor_job_name: String,
    /// How much history to load (Prometheus duration, e.g. 8d).
    #[arg(long, default_value = "8d")]
    pub history_length: String,
    /// Step of the range queries (Prometheus duration, e.g. 1h).
    #[arg(long, default_value = "1h")]
    pub history_resolution: String,
    /// Counter of CPU seconds per container.
    #[arg(long, default_value = "container_cpu_usage_seconds_total")]
    pub history_cpu_metric: String,
    /// Gauge of memory bytes per container.
    #[arg(long, default_value = "container_memory_working_set_bytes")]
    pub history_memory_metric: String,
    /// Timeout of each Prometheus query (Go duration).
    #[arg(long, default_value = "5m")]
    pub prometheus_query_timeout: String,
    /// Prefix of the pod label names in the pod-labels metric.
    #[arg(long, default_value = "pod_label_")]
    pub pod_label_prefix: String,
    /// Metric whose series carry the pod labels.
    #[arg(long, default_value = "up{job=\"kubernetes-pods\"}")]
    pub metric_for_pod_labels: String,
    /// Label with the pod namespace in the pod-labels metric.
    #[arg(long, default_value = "kubernetes_namespace")]
    pub pod_namespace_label: String,
    /// Label with the pod name in the pod-labels metric.
    #[arg(long, default_value = "kubernetes_pod_name")]
    pub pod_name_label: String,
    /// Label with the namespace in the container metrics.
    #[arg(long, default_value = "namespace")]
    pub container_namespace_label: String,
    /// Label with the pod name in the container metrics.
    #[arg(long, default_value = "pod_name")]
    pub container_pod_name_label: String,
    /// Label with the container name in the container metrics.
    #[arg(long, default_value = "name")]
    pub container_name_label: String,
    /// Basic-auth user for Prometheus (else $PROMETHEUS_USERNAME).
    #[arg(long, default_value = "")]
    pub username: String,
    /// Basic-auth password for Prometheus (else $PROMETHEUS_PASSWORD).
    #[arg(long, default_value = "")]
    pub password: String,
    /// Bearer token for Prometheus.
    #[arg(long, default_value = "")]
    pub prometheus_bearer_token: String,
    /// File holding the bearer token for Prometheus.
    #[arg(long, default_value = "")]
    pub prometheus_bearer_token_file: String,
}

/// Why history could not be loaded.
#[derive(Debug, Error)]
pub enum HistoryError {
    /// A flag has a value that cannot be used.
    #[error("{0}")]
    Config(String),
    /// Prometheus could not be reached or answered with an HTTP error.
    #[error("Prometheus at {address}: {reason}")]
    Unavailable {
        /// The configured address.
        address: String,
        /// What went wrong.
        reason: String,
    },
    /// Prometheus answered, but the query failed or the answer is not what was asked for.
    #[error("Prometheus query {query:?}: {reason}")]
    Query {
        /// The PromQL query.
        query: String,
        /// What went wrong.
        reason: String,
    },
}

/// Parses a Prometheus duration (`8d`, `1h30m`, `90s`, `500ms`, `1w`, `1y`).
pub fn parse_prometheus_duration(s: &str) -> Result<Duration, String> {
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut total: i64 = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(format!("{s:?}: expected a number at offset {start}"));
        }
        let n: i64 = s[start..i]
            .parse()
            .map_err(|_| format!("{s:?}: number too large"))?;
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit_nanos: i64 = match &s[unit_start..i] {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "d" => 86_400 * 1_000_000_000,
            "w" => 7 * 86_400 * 1_000_000_000,
            "y" => 365 * 86_400 * 1_000_000_000,
            "" => return Err(format!("{s:?}: missing unit (ms, s, m, h, d, w or y)")),
            u => return Err(format!("{s:?}: unknown unit {u:?}")),
        };
        total = n
            .checked_mul(unit_nanos)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("{s:?}: duration too large"))?;
    }
    if total <= 0 {
        return Err(format!("{s:?}: must be positive"));
    }
    Ok(Duration::from_nanos(total))
}

/// Formats a duration for PromQL (whole seconds, as Prometheus accepts everywhere).
fn promql_duration(d: Duration) -> String {
    let ms = d.as_nanos() / 1_000_000;
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// The validated settings of the provider (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQueries {
    /// Job filter; empty: none.
    pub cadvisor_job: String,
    /// `--history-length`.
    pub length: Duration,
    /// `--history-resolution`, the step.
    pub resolution: Duration,
    /// `--history-cpu-metric`.
    pub cpu_metric: String,
    /// `--history-memory-metric`.
    pub memory_metric: String,
    /// `--metric-for-pod-labels`.
    pub pod_labels_metric: String,
    /// `--pod-label-prefix`.
    pub pod_label_prefix: String,
    /// `--pod-namespace-label`.
    pub pod_namespace_label: String,
    /// `--pod-name-label`.
    pub pod_name_label: String,
    /// `--container-namespace-label`.
    pub container_namespace_label: String,
    /// `--container-pod-name-label`.
    pub container_pod_name_label: String,
    /// `--container-name-label`.
    pub container_name_label: String,
    /// Only this namespace (`--vpa-object-namespace`); empty: all.
    pub namespace: String,
}

impl HistoryQueries {
    /// Validates the flags.
    pub fn from_flags(flags: &PrometheusFlags, namespace: &str) -> Result<Self, HistoryError> {
        let length = parse_prometheus_duration(&flags.history_length)
            .map_err(|e| HistoryError::Config(format!("--history-length: {e}")))?;
        let resolution = parse_prometheus_duration(&flags.history_resolution)
            .map_err(|e| HistoryError::Config(format!("--history-resolution: {e}")))?;
        if resolution.as_nanos() < 1_000_000_000 {
            return Err(HistoryError::Config(format!(
                "--history-resolution {:?}: must be at least 1s",
                flags.history_resolution
            )));
        }
        Ok(Self {
            cadvisor_job: flags.prometheus_cadvisor_job_name.clone(),
            length,
            resolution,
            cpu_metric: flags.history_cpu_metric.clone(),
            memory_metric: flags.history_memory_metric.clone(),
            pod_labels_metric: flags.metric_for_pod_labels.clone(),
            pod_label_prefix: flags.pod_label_prefix.clone(),
            pod_namespace_label: flags.pod_namespace_label.clone(),
            pod_name_label: flags.pod_name_label.clone(),
            container_namespace_label: flags.container_namespace_label.clone(),
            container_pod_name_label: flags.container_pod_name_label.clone(),
            container_name_label: flags.container_name_label.clone(),
            namespace: namespace.to_string(),
        })
    }

    /// The series selector of the container metrics (upstream's, term for term).
    pub fn selector(&self) -> String {
        let mut s = String::new();
        if !self.cadvisor_job.is_empty() {
            let _ = write!(s, "job={}, ", go_quote(&self.cadvisor_job));
        }
        let _ = write!(
            s,
            "{p}=~\".+\", {c}!=\"POD\", {c}!=\"\"",
            p = self.container_pod_name_label,
            c = self.container_name_label
        );
        if !self.namespace.is_empty() {
            let _ = write!(
                s,
                ", {}={}",
                self.container_namespace_label,
                go_quote(&self.namespace)
            );
        }
        s
    }

    /// The CPU query: cores, as the rate of the CPU counter over one step.
    pub fn cpu_query(&self) -> String {
        format!(
            "rate({}{{{}}}[{}])",
            self.cpu_metric,
            self.selector(),
            promql_duration(self.resolution)
        )
    }

    /// The memory query: bytes.
    pub fn memory_query(&self) -> String {
        format!("{}{{{}}}", self.memory_metric, self.selector())
    }

    /// The range windows for `now`, each at most [`MAX_POINTS_PER_SERIES`] steps. The end is
    /// `now` rounded down to a multiple of the step (since the Unix epoch), so that the
    /// evaluation times do not depend on when the recommender started (and match Prometheus'
    /// step-aligned result cache).
    pub fn windows(&self, now: Timestamp) -> Vec<(Timestamp, Timestamp)> {
        let step = self.resolution.as_nanos().max(1);
        let end = Timestamp::from_unix_nanos(now.unix_nanos() - now.unix_nanos().rem_euclid(step));
        split_range(end.sub(self.length), end, self.resolution)
    }
}

/// Splits `[start, end]` at `step` into consecutive windows of at most
/// [`MAX_POINTS_PER_SERIES`] evaluation points each. Prometheus evaluates a range query at
/// `start, start + step, ...` up to and including `end`, so the windows do not overlap and
/// together evaluate exactly the points of the unsplit query.
pub fn split_range(
    start: Timestamp,
    end: Timestamp,
    step: Duration,
) -> Vec<(Timestamp, Timestamp)> {
    let step_ns = step.as_nanos().max(1);
    let span = end.unix_nanos().saturating_sub(start.unix_nanos());
    if span < 0 {
        return Vec::new();
    }
    let points = span / step_ns + 1;
    let mut out = Vec::new();
    let mut first = 0i64;
    while first < points {
        let last = (first + MAX_POINTS_PER_SERIES - 1).min(points - 1);
        out.push((
            start.add(Duration::from_nanos(first * step_ns)),
            start.add(Duration::from_nanos(last * step_ns)),
        ));
        first = last + 1;
    }
    out
}

#[derive(Debug, Deserialize)]
struct ApiResponse {
    status: String,
    #[serde(default)]
    data: Option<ApiData>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ApiData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct RawSeries {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, String)>,
    #[serde(default)]
    value: Option<(f64, String)>,
}

/// One series of an answer: its labels and `(time, value)` points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series labels.
    pub labels: BTreeMap<String, String>,
    /// Points in the order Prometheus returned them.
    pub points: Vec<(Timestamp, f64)>,
}

fn seconds_to_timestamp(t: f64) -> Option<Timestamp> {
    if !t.is_finite() || t.abs() > 9.0e9 {
        return None;
    }
    Some(Timestamp::from_unix_nanos((t * 1e9).round() as i64))
}

/// Parses a `/api/v1/query` or `/api/v1/query_range` answer (a matrix or a vector; a vector
/// becomes one point per series). A `status: error` answer becomes its error text.
pub fn parse_response(body: &str) -> Result<Vec<Series>, String> {
    let resp: ApiResponse =
        serde_json::from_str(body).map_err(|e| format!("not a Prometheus API answer: {e}"))?;
    if resp.status != "success" {
        return Err(format!(
            "{}: {}",
            resp.error_type.as_deref().unwrap_or("error"),
            resp.error.as_deref().unwrap_or("no error text")
        ));
    }
    let data = resp
        .data
        .ok_or_else(|| "the answer has no data".to_string())?;
    if data.result_type != "matrix" && data.result_type != "vector" {
        return Err(format!(
            "expected a matrix or a vector, got a {}",
            data.result_type
        ));
    }
    let raw: Vec<RawSeries> =
        serde_json::from_value(data.result).map_err(|e| format!("malformed result: {e}"))?;
    let mut out = Vec::with_capacity(raw.len());
    for s in raw {
        let mut points = Vec::with_capacity(s.values.len() + 1);
        for (t, v) in s.values.into_iter().chain(s.value) {
            let ts = seconds_to_timestamp(t).ok_or_else(|| format!("bad timestamp {t}"))?;
            // "NaN", "+Inf" and friends are valid Prometheus values; they are not usage.
            let value: f64 = v.parse().map_err(|_| format!("bad sample value {v:?}"))?;
            if value.is_finite() {
                points.push((ts, value));
            }
        }
        out.push(Series {
            labels: s.metric,
            points,
        });
    }
    Ok(out)
}

/// Which resource a series measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// CPU in cores.
    Cpu,
    /// Memory in bytes.
    Memory,
}

impl HistoryQueries {
    /// Adds the samples of container-metric series to `history`; series without the
    /// namespace, pod or container label are skipped. Returns the number of samples added.
    pub fn add_series(&self, history: &mut ClusterHistory, series: &[Series], m: Measure) -> usize {
        let mut added = 0;
        for s in series {
            let (Some(ns), Some(pod), Some(container)) = (
                s.labels.get(&self.container_namespace_label),
                s.labels.get(&self.container_pod_name_label),
                s.labels.get(&self.container_name_label),
            ) else {
                continue;
            };
            if ns.is_empty() || pod.is_empty() || container.is_empty() || container == "POD" {
                continue;
            }
            let samples = history
                .entry(ObjectId::new(ns.as_str(), pod.as_str()))
                .or_default()
                .containers
                .entry(container.clone())
                .or_default();
            for &(t, v) in &s.points {
                if v < 0.0 {
                    continue;
                }
                samples.push(match m {
                    Measure::Cpu => UsageSample::cpu(t, (v * 1000.0).round() as i64),
                    Measure::Memory => UsageSample::memory(t, v.round() as i64),
                });
                added += 1;
            }
        }
        added
    }

    /// Sets the pods' labels from the pod-labels series (the series seen last at the latest
    /// time wins; label names lose the prefix). Pods without usage history are not added.
    pub fn add_pod_labels(&self, history: &mut ClusterHistory, series: &[Series]) {
        let mut latest: BTreeMap<ObjectId, Timestamp> = BTreeMap::new();
        for s in series {
            let (Some(ns), Some(pod)) = (
                s.labels.get(&self.pod_namespace_label),
                s.labels.get(&self.pod_name_label),
            ) else {
                continue;
            };
            let id = ObjectId::new(ns.as_str(), pod.as_str());
            let Some(entry) = history.get_mut(&id) else {
                continue;
            };
            let at = s
                .points
                .iter()
                .map(|p| p.0)
                .max()
                .unwrap_or(Timestamp::UNIX_EPOCH);
            if latest.get(&id).is_some_and(|&seen| seen > at) {
                continue;
            }
            latest.insert(id, at);
            entry.labels = s
                .labels
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix(self.pod_label_prefix.as_str())
                        .map(|name| (name.to_string(), v.clone()))
                })
                .collect::<LabelSet>();
        }
    }
}

/// Sorts every container's samples by time (CPU before memory at equal times).
pub fn sort_samples(history: &mut ClusterHistory) {
    for pod in history.values_mut() {
        for samples in pod.containers.values_mut() {
            samples.sort_by_key(|s| (s.measure_start, s.resource));
        }
    }
}

/// The workload a pod most likely belongs to, from its name alone (for `replay`, which
/// aggregates by workload): a Deployment's `<name>-<rs hash>-<suffix>`, a ReplicaSet's,
/// DaemonSet's or Job's `<name>-<suffix>`, a StatefulSet's `<name>-<ordinal>`. Anything
/// else is its own workload.
pub fn workload_of(pod: &str) -> &str {
    fn is_suffix(s: &str) -> bool {
        s.len() == 5
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    }
    fn is_hash(s: &str) -> bool {
        (6..=10).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    }
    let mut parts: Vec<&str> = pod.split('-').collect();
    if parts.len() >= 2 {
        let last = parts[parts.len() - 1];
        if last.bytes().all(|b| b.is_ascii_digit()) && !last.is_empty() {
            parts.pop();
        } else if is_suffix(last) {
            parts.pop();
            if parts.len() >= 2 && is_hash(parts[parts.len() - 1]) {
                parts.pop();
            }
        }
    }
    let keep: usize = parts.iter().map(|p| p.len()).sum::<usize>() + parts.len().saturating_sub(1);
    &pod[..keep.min(pod.len())]
}

/// Writes the history as a replay trace (see [`crate::trace`]), one row per sample in time
/// order, workloads from [`workload_of`].
pub fn to_trace_csv(history: &ClusterHistory) -> String {
    let mut rows: Vec<(Timestamp, &ObjectId, &str, &UsageSample)> = Vec::new();
    for (id, pod) in history {
        for (container, samples) in &pod.containers {
            for s in samples {
                rows.push((s.measure_start, id, container.as_str(), s));
            }
        }
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)).then(a.2.cmp(b.2)));
    let mut out = String::with_capacity(64 * rows.len() + 80);
    out.push_str(crate::trace::HEADER);
    out.push('\n');
    for (t, id, container, s) in rows {
        let (cpu, mem) = match s.resource {
            vpa_core::model::ResourceKind::Cpu => (format!("{}m", s.usage), String::new()),
            vpa_core::model::ResourceKind::Memory => (String::new(), s.usage.to_string()),
        };
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},",
            t.to_rfc3339(),
            id.namespace,
            workload_of(&id.name),
            id.name,
            container,
            cpu,
            mem
        );
    }
    out
}

/// Loads history from a Prometheus server.
pub struct PrometheusHistoryProvider {
    client: kube::Client,
    address: String,
    authorization: Option<String>,
    timeout: std::time::Duration,
    queries: HistoryQueries,
}

impl std::fmt::Debug for PrometheusHistoryProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusHistoryProvider")
            .field("address", &self.address)
            .field("queries", &self.queries)
            .finish_non_exhaustive()
    }
}

/// The `Authorization` header for the flags (upstream's precedence: a bearer token, else
/// basic auth, with the user and password falling back to `$PROMETHEUS_USERNAME` and
/// `$PROMETHEUS_PASSWORD`).
pub fn authorization(
    flags: &PrometheusFlags,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<String>, HistoryError> {
    let token_set = !flags.prometheus_bearer_token.is_empty();
    let file_set = !flags.prometheus_bearer_token_file.is_empty();
    let user_set = !flags.username.is_empty();
    if (token_set as u8 + file_set as u8 + user_set as u8) > 1 {
        return Err(HistoryError::Config(
            "--prometheus-bearer-token, --prometheus-bearer-token-file and --username are mutually exclusive".into(),
        ));
    }
    if token_set {
        return Ok(Some(format!(
            "Bearer {}",
            flags.prometheus_bearer_token.trim()
        )));
    }
    if file_set {
        let path = PathBuf::from(&flags.prometheus_bearer_token_file);
        let token = std::fs::read_to_string(&path).map_err(|e| {
            HistoryError::Config(format!(
                "--prometheus-bearer-token-file {}: {e}",
                path.display()
            ))
        })?;
        return Ok(Some(format!("Bearer {}", token.trim())));
    }
    let user = if user_set {
        Some(flags.username.clone())
    } else {
        env("PROMETHEUS_USERNAME").filter(|u| !u.is_empty())
    };
    let Some(user) = user else {
        return Ok(None);
    };
    let password = if flags.password.is_empty() {
        env("PROMETHEUS_PASSWORD").unwrap_or_default()
    } else {
        flags.password.clone()
    };
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    Ok(Some(format!("Basic {encoded}")))
}

impl PrometheusHistoryProvider {
    /// A provider for the flags; `namespace` limits history to one namespace (empty: all).
    /// Must be called within a Tokio runtime (the HTTP client's buffer task lives there).
    pub fn new(flags: &PrometheusFlags, namespace: &str) -> Result<Self, HistoryError> {
        let queries = HistoryQueries::from_flags(flags, namespace)?;
        let timeout = parse_go_duration(&flags.prometheus_query_timeout)
            .ok()
            .filter(|d| d.as_nanos() > 0)
            .ok_or_else(|| {
                HistoryError::Config(format!(
                    "--prometheus-query-timeout {:?}: expected a positive Go duration such as 5m",
                    flags.prometheus_query_timeout
                ))
            })?;
        let timeout = std::time::Duration::from_nanos(timeout.as_nanos().unsigned_abs());
        let address = flags.prometheus_address.trim_end_matches('/').to_string();
        let uri: http::Uri = address
            .parse()
            .map_err(|e| HistoryError::Config(format!("--prometheus-address {address:?}: {e}")))?;
        if uri.scheme().is_none() || uri.host().is_none() {
            return Err(HistoryError::Config(format!(
                "--prometheus-address {address:?}: expected a URL such as http://prometheus.monitoring.svc:9090"
            )));
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(HistoryError::Config(
                "the Prometheus client needs a Tokio runtime: create it inside one".into(),
            ));
        }
        let mut config = kube::Config::new(uri);
        config.accept_invalid_certs = flags.prometheus_insecure;
        config.default_retry = false;
        config.connect_timeout = Some(std::time::Duration::from_secs(10));
        config.read_timeout = Some(timeout);
        let client = kube::Client::try_from(config)
            .map_err(|e| HistoryError::Config(format!("--prometheus-address {address:?}: {e}")))?;
        Ok(Self {
            client,
            authorization: authorization(flags, |k| std::env::var(k).ok())?,
            address,
            timeout,
            queries,
        })
    }

    /// The validated query settings.
    pub fn queries(&self) -> &HistoryQueries {
        &self.queries
    }

    async fn get(&self, path_and_query: String, query: &str) -> Result<Vec<Series>, HistoryError> {
        let mut req = http::Request::get(path_and_query);
        if let Some(auth) = &self.authorization {
            req = req.header(http::header::AUTHORIZATION, auth);
        }
        let req = req.body(Vec::new()).map_err(|e| HistoryError::Query {
            query: query.to_string(),
            reason: e.to_string(),
        })?;
        let text = match tokio::time::timeout(self.timeout, self.client.request_text(req)).await {
            Err(_) => {
                return Err(HistoryError::Unavailable {
                    address: self.address.clone(),
                    reason: format!(
                        "no answer within --prometheus-query-timeout ({:?})",
                        self.timeout
                    ),
                });
            }
            Ok(Ok(text)) => text,
            // Prometheus reports bad queries with 400/422 and a JSON error body.
            Ok(Err(kube::Error::Api(status))) if status.code == 400 || status.code == 422 => {
                return Err(HistoryError::Query {
                    query: query.to_string(),
                    reason: status.message,
                });
            }
            Ok(Err(e)) => {
                return Err(HistoryError::Unavailable {
                    address: self.address.clone(),
                    reason: error_chain(&e),
                });
            }
        };
        parse_response(&text).map_err(|reason| HistoryError::Query {
            query: query.to_string(),
            reason,
        })
    }

    async fn range(
        &self,
        query: &str,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<Series>, HistoryError> {
        let q = form_urlencoded::Serializer::new(String::new())
            .append_pair("query", query)
            .append_pair("start", &seconds(start))
            .append_pair("end", &seconds(end))
            .append_pair("step", &promql_duration(self.queries.resolution))
            .finish();
        self.get(format!("/api/v1/query_range?{q}"), query).await
    }

    /// Loads the history as of `now`: both usage queries window by window, then the pod
    /// labels. Samples are in time order per container.
    pub async fn load(&self, now: Timestamp) -> Result<ClusterHistory, HistoryError> {
        let mut history = ClusterHistory::new();
        let windows = self.queries.windows(now);
        for (m, query) in [
            (Measure::Cpu, self.queries.cpu_query()),
            (Measure::Memory, self.queries.memory_query()),
        ] {
            for &(start, end) in &windows {
                let series = self.range(&query, start, end).await?;
                self.queries.add_series(&mut history, &series, m);
            }
        }
        let q = form_urlencoded::Serializer::new(String::new())
            .append_pair("query", &self.queries.pod_labels_metric)
            .append_pair("time", &seconds(now))
            .finish();
        let labels_query = self.queries.pod_labels_metric.clone();
        let series = self
            .get(format!("/api/v1/query?{q}"), &labels_query)
            .await?;
        self.queries.add_pod_labels(&mut history, &series);
        sort_samples(&mut history);
        Ok(history)
    }
}

fn seconds(t: Timestamp) -> String {
    let ns = t.unix_nanos();
    if ns % 1_000_000_000 == 0 {
        (ns / 1_000_000_000).to_string()
    } else {
        format!("{:.3}", ns as f64 / 1e9)
    }
}

#[cfg(test)]
mod tests;
