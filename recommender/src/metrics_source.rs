//! Where container usage comes from: the [`MetricsSource`] trait and its implementations —
//! the Metrics API through the API server (`metrics.k8s.io/v1beta1` PodMetrics, served by
//! metrics-server through the aggregation layer), a direct base URL (`--metrics-url`, with
//! its own CA and token), and a fixed in-memory list for tests and benchmarks. Failures are
//! classified into [`MetricsError`]s whose messages say what to check.

use futures::future::BoxFuture;
use kube::api::{Api, ListParams};
use kube::{Client, Config};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use thiserror::Error;
use vpa_core::api::metrics::PodMetrics;

/// The APIService metrics-server registers.
pub const METRICS_APISERVICE: &str = "v1beta1.metrics.k8s.io";

/// Why usage could not be read.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MetricsError {
    /// The API server answers 503 for the group: the APIService is not available.
    #[error(
        "the Metrics API (metrics.k8s.io/v1beta1) is unavailable: the API server answers 503 for the APIService {METRICS_APISERVICE} ({detail}); check that metrics-server is running and ready (kubectl -n kube-system get pods -l k8s-app=metrics-server) and that the APIService is Available (kubectl get apiservice {METRICS_APISERVICE})"
    )]
    Unavailable {
        /// The API server's message, plus the APIService condition when it could be read.
        detail: String,
    },
    /// The group is not served at all.
    #[error(
        "the Metrics API (metrics.k8s.io/v1beta1) is not served by this cluster ({detail}): install metrics-server, or point the recommender at a metrics endpoint with --metrics-url"
    )]
    NotServed {
        /// The API server's message.
        detail: String,
    },
    /// Authentication or authorisation failed.
    #[error(
        "the recommender may not list pods.metrics.k8s.io ({detail}): check its ClusterRole (get/list on pods in the metrics.k8s.io API group) or the --metrics-token-file"
    )]
    Forbidden {
        /// The API server's message.
        detail: String,
    },
    /// Another error response.
    #[error("the Metrics API answered {code}: {detail}")]
    Api {
        /// HTTP status.
        code: u16,
        /// Message.
        detail: String,
    },
    /// The endpoint could not be reached.
    #[error("cannot reach the Metrics API at {endpoint}: {detail}")]
    Unreachable {
        /// What was dialled.
        endpoint: String,
        /// The transport error (connection refused, TLS, timeout…).
        detail: String,
    },
    /// The answer could not be read.
    #[error("the Metrics API answered with something that is not a PodMetricsList: {0}")]
    Malformed(String),
    /// The source is misconfigured.
    #[error("metrics source configuration: {0}")]
    Config(String),
}

impl MetricsError {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            MetricsError::Unavailable { .. } => "unavailable",
            MetricsError::NotServed { .. } => "not_served",
            MetricsError::Forbidden { .. } => "forbidden",
            MetricsError::Api { .. } => "api_error",
            MetricsError::Unreachable { .. } => "unreachable",
            MetricsError::Malformed(_) => "malformed",
            MetricsError::Config(_) => "config",
        }
    }

    fn classify(e: kube::Error, endpoint: &str) -> Self {
        match e {
            kube::Error::Api(status) => {
                let detail = status.message.clone();
                match status.code {
                    503 => MetricsError::Unavailable { detail },
                    404 => MetricsError::NotServed { detail },
                    401 | 403 => MetricsError::Forbidden { detail },
                    code => MetricsError::Api { code, detail },
                }
            }
            kube::Error::SerdeError(e) => MetricsError::Malformed(e.to_string()),
            other => MetricsError::Unreachable {
                endpoint: endpoint.to_string(),
                detail: error_chain(&other),
            },
        }
    }
}

/// An error and its sources, each once (`a: b: c`).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// A source of PodMetrics.
pub trait MetricsSource: Send + Sync {
    /// All PodMetrics, of one namespace or of all.
    fn pod_metrics<'a>(
        &'a self,
        namespace: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<PodMetrics>, MetricsError>>;
    /// What this source reads from, for logs.
    fn describe(&self) -> String;
}

/// The Metrics API through the API server (the normal path).
#[derive(Clone)]
pub struct ApiServerMetrics {
    client: Client,
}

impl ApiServerMetrics {
    /// Uses this API client (it should not retry 503s itself: kube's default retry would
    /// hide an unavailable Metrics API for minutes).
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The APIService's Available condition, when it can be read.
    async fn apiservice_condition(&self) -> Option<String> {
        let ar = kube::api::ApiResource {
            group: "apiregistration.k8s.io".into(),
            version: "v1".into(),
            api_version: "apiregistration.k8s.io/v1".into(),
            kind: "APIService".into(),
            plural: "apiservices".into(),
        };
        let api: Api<kube::api::DynamicObject> = Api::all_with(self.client.clone(), &ar);
        let obj = api.get(METRICS_APISERVICE).await.ok()?;
        let conds = obj.data.pointer("/status/conditions")?.as_array()?;
        let c = conds
            .iter()
            .find(|c| c.get("type").and_then(|t| t.as_str()) == Some("Available"))?;
        Some(format!(
            "APIService {METRICS_APISERVICE} Available={}: {}: {}",
            c.get("status").and_then(|s| s.as_str()).unwrap_or("?"),
            c.get("reason").and_then(|s| s.as_str()).unwrap_or(""),
            c.get("message").and_then(|s| s.as_str()).unwrap_or("")
        ))
    }
}

/// Longest wait for one PodMetrics list.
pub const LIST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn list_params() -> ListParams {
    ListParams::default()
}

async fn list_with_timeout(
    api: &Api<PodMetrics>,
    endpoint: &str,
) -> Result<Vec<PodMetrics>, Result<kube::Error, MetricsError>> {
    match tokio::time::timeout(LIST_TIMEOUT, api.list(&list_params())).await {
        Ok(Ok(list)) => Ok(list.items),
        Ok(Err(e)) => Err(Ok(e)),
        Err(_) => Err(Err(MetricsError::Unreachable {
            endpoint: endpoint.to_string(),
            detail: format!("no answer within {}s", LIST_TIMEOUT.as_secs()),
        })),
    }
}

impl MetricsSource for ApiServerMetrics {
    fn pod_metrics<'a>(
        &'a self,
        namespace: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<PodMetrics>, MetricsError>> {
        Box::pin(async move {
            let api: Api<PodMetrics> = match namespace {
                Some(ns) => Api::namespaced(self.client.clone(), ns),
                None => Api::all(self.client.clone()),
            };
            match list_with_timeout(&api, "the API server").await {
                Ok(items) => Ok(items),
                Err(Err(e)) => Err(e),
                Err(Ok(e)) => {
                    let mut err = MetricsError::classify(e, "the API server");
                    if let MetricsError::Unavailable { detail } | MetricsError::NotServed { detail } =
                        &mut err
                        && let Some(cond) = self.apiservice_condition().await
                    {
                        detail.push_str("; ");
                        detail.push_str(&cond);
                    }
                    Err(err)
                }
            }
        })
    }

    fn describe(&self) -> String {
        "metrics.k8s.io/v1beta1 through the API server".into()
    }
}

/// Settings of a direct metrics endpoint.
#[derive(Debug, Clone)]
pub struct DirectSettings {
    /// Base URL, e.g. `https://metrics-server.kube-system.svc` (the REST paths are appended).
    pub url: String,
    /// PEM CA bundle to trust (else the system roots… of the kube client: none, so required
    /// for private CAs).
    pub ca_file: Option<PathBuf>,
    /// Bearer token file (re-read by the client as it changes).
    pub token_file: Option<PathBuf>,
    /// Skip TLS verification (tests only).
    pub insecure: bool,
}

/// The Metrics API at a base URL of its own.
#[derive(Clone)]
pub struct DirectMetrics {
    client: Client,
    url: String,
}

impl DirectMetrics {
    /// A client for the endpoint.
    pub fn new(settings: &DirectSettings) -> Result<Self, MetricsError> {
        let uri: http::Uri = settings
            .url
            .parse()
            .map_err(|e| MetricsError::Config(format!("--metrics-url {:?}: {e}", settings.url)))?;
        let mut config = Config::new(uri);
        config.accept_invalid_certs = settings.insecure;
        // Fail fast: the loop tries again next cycle (kube's retry would hide a 503 for
        // about five minutes).
        config.default_retry = false;
        config.connect_timeout = Some(std::time::Duration::from_secs(5));
        config.read_timeout = Some(LIST_TIMEOUT);
        if let Some(ca) = &settings.ca_file {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject as _;
            let certs = CertificateDer::pem_file_iter(ca)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    MetricsError::Config(format!("--metrics-ca-file {}: {e}", ca.display()))
                })?;
            if certs.is_empty() {
                return Err(MetricsError::Config(format!(
                    "--metrics-ca-file {}: no certificate in it",
                    ca.display()
                )));
            }
            config.root_cert = Some(certs.into_iter().map(|c| c.to_vec()).collect());
        }
        if let Some(token) = &settings.token_file {
            config.auth_info.token_file = Some(token.display().to_string());
        }
        let client = Client::try_from(config)
            .map_err(|e| MetricsError::Config(format!("--metrics-url {}: {e}", settings.url)))?;
        Ok(Self {
            client,
            url: settings.url.clone(),
        })
    }
}

impl MetricsSource for DirectMetrics {
    fn pod_metrics<'a>(
        &'a self,
        namespace: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<PodMetrics>, MetricsError>> {
        Box::pin(async move {
            let api: Api<PodMetrics> = match namespace {
                Some(ns) => Api::namespaced(self.client.clone(), ns),
                None => Api::all(self.client.clone()),
            };
            list_with_timeout(&api, &self.url).await.map_err(|e| {
                match e
                    .map(|e| MetricsError::classify(e, &self.url))
                    .unwrap_or_else(|e| e)
                {
                    // A direct endpoint has no APIService: say so.
                    MetricsError::Unavailable { detail } => MetricsError::Api { code: 503, detail },
                    MetricsError::NotServed { detail } => MetricsError::Api { code: 404, detail },
                    other => other,
                }
            })
        })
    }

    fn describe(&self) -> String {
        format!("metrics.k8s.io/v1beta1 at {}", self.url)
    }
}

/// A fixed list of PodMetrics (tests, benchmarks), which can be switched to fail.
#[derive(Clone)]
pub struct StaticMetrics {
    inner: Arc<Mutex<Result<Vec<PodMetrics>, MetricsError>>>,
}

impl StaticMetrics {
    /// Serves these items.
    pub fn new(items: Vec<PodMetrics>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Ok(items))),
        }
    }

    /// Replaces what is served.
    pub fn set(&self, value: Result<Vec<PodMetrics>, MetricsError>) {
        if let Ok(mut g) = self.inner.lock() {
            *g = value;
        }
    }
}

impl MetricsSource for StaticMetrics {
    fn pod_metrics<'a>(
        &'a self,
        namespace: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<PodMetrics>, MetricsError>> {
        let value = self
            .inner
            .lock()
            .map(|g| g.clone())
            .unwrap_or_else(|_| Err(MetricsError::Config("poisoned".into())));
        Box::pin(async move {
            let items = value?;
            Ok(items
                .into_iter()
                .filter(|m| namespace.is_none_or(|ns| m.metadata.namespace.as_deref() == Some(ns)))
                .collect())
        })
    }

    fn describe(&self) -> String {
        "a static list".into()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn api_error(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(
            serde_json::from_value(serde_json::json!({
                "status": "Failure", "message": message, "reason": "ServiceUnavailable", "code": code
            }))
            .unwrap(),
        )
    }

    #[test]
    fn errors_say_what_to_check() {
        let e = MetricsError::classify(
            api_error(503, "the server is currently unable to handle the request"),
            "x",
        );
        assert_eq!(e.reason(), "unavailable");
        let text = e.to_string();
        assert!(text.contains("v1beta1.metrics.k8s.io"), "{text}");
        assert!(text.contains("metrics-server is running"), "{text}");
        assert!(text.contains("unable to handle the request"), "{text}");
        let e = MetricsError::classify(
            api_error(404, "the server could not find the requested resource"),
            "x",
        );
        assert!(e.to_string().contains("install metrics-server"));
        let e = MetricsError::classify(api_error(403, "forbidden"), "x");
        assert!(e.to_string().contains("ClusterRole"));
        assert_eq!(
            MetricsError::classify(api_error(500, "boom"), "x").reason(),
            "api_error"
        );
    }

    #[tokio::test]
    async fn static_source_filters_namespace_and_fails_on_demand() {
        let item = |ns: &str| {
            serde_json::from_value::<PodMetrics>(serde_json::json!({
                "metadata": {"name": "p", "namespace": ns}, "timestamp": "2026-12-02T10:00:00Z",
                "window": "30s", "containers": []
            }))
            .unwrap()
        };
        let s = StaticMetrics::new(vec![item("a"), item("b")]);
        assert_eq!(s.pod_metrics(None).await.unwrap().len(), 2);
        assert_eq!(s.pod_metrics(Some("a")).await.unwrap().len(), 1);
        s.set(Err(MetricsError::Unavailable {
            detail: "down".into(),
        }));
        assert!(s.pod_metrics(None).await.is_err());
    }

    #[test]
    fn direct_source_config_errors_name_the_flag() {
        let e = DirectMetrics::new(&DirectSettings {
            url: "https://127.0.0.1:1".into(),
            ca_file: Some("/nonexistent/ca.pem".into()),
            token_file: None,
            insecure: false,
        })
        .err()
        .unwrap();
        assert!(
            e.to_string()
                .contains("--metrics-ca-file /nonexistent/ca.pem"),
            "{e}"
        );
    }
}
