//! Command-line configuration of `vpa-admission`: upstream 1.7's admission-controller flags
//! (names and defaults, except `--webhook-timeout-seconds`), the common client and logging
//! flags, and vpa-rs's own flags for TLS reloading, read timeouts and the webhook selectors.
//!
//! Differences from upstream, on purpose:
//! * `--webhook-timeout-seconds` defaults to **5** (upstream 30, the chart 5): with
//!   `failurePolicy: Ignore` a slow webhook should cost a pod creation seconds, not half a
//!   minute.
//! * Certificates are always reloaded by content every `--tls-reload-interval`;
//!   `--reload-cert` is accepted and has no further effect.
//! * A malformed `--webhook-labels` is an error at start-up (upstream logs it and registers
//!   without labels).

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Parser;
use vpa_core::labels::{Operator, Selector};
use vpa_core::runtime::client::KubeArgs;
use vpa_core::runtime::telemetry::LogArgs;

/// Namespace used when neither a flag nor `$NAMESPACE` names one (upstream's deployment
/// namespace).
pub const DEFAULT_NAMESPACE: &str = "kube-system";

/// A Go duration flag value (`10s`, `1m30s`) as a non-negative std duration.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = vpa_core::time::parse_go_duration(s).map_err(|e| e.to_string())?;
    u64::try_from(d.as_nanos())
        .map(Duration::from_nanos)
        .map_err(|_| format!("duration {s:?} must not be negative"))
}

fn positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(format!("duration {s:?} must be positive"));
    }
    Ok(d)
}

fn cpu_quantity(s: &str) -> Result<i64, String> {
    vpa_core::quantity::parse(s)
        .map(|q| q.milli_value())
        .map_err(|e| e.to_string())
}

/// `--min-tls-version`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum MinTlsVersion {
    /// TLS 1.2 and 1.3.
    #[default]
    #[value(name = "tls1_2")]
    Tls12,
    /// TLS 1.3 only.
    #[value(name = "tls1_3")]
    Tls13,
}

/// `--webhook-reinvocation-policy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ReinvocationPolicy {
    /// Called once per admission (the chart's value).
    #[default]
    #[value(name = "Never")]
    Never,
    /// Called again if a later webhook changed the pod.
    #[value(name = "IfNeeded")]
    IfNeeded,
}

impl ReinvocationPolicy {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Never => "Never",
            Self::IfNeeded => "IfNeeded",
        }
    }
}

/// Every flag of `vpa-admission`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "vpa-admission",
    version,
    about = "vpa-rs admission controller: sets pod requests and limits from VPA recommendations \
             and validates VPA objects (an HTTPS mutating webhook)"
)]
pub struct Config {
    /// PEM CA certificate(s) that signed the serving certificate: the webhook's caBundle.
    #[arg(long, default_value = "/etc/tls-certs/caCert.pem")]
    pub client_ca_file: String,
    /// PEM serving certificate (chain). If it and the key do not exist (or are given as ""),
    /// a CA and a serving certificate are generated in memory at start-up.
    #[arg(long, default_value = "/etc/tls-certs/serverCert.pem")]
    pub tls_cert_file: String,
    /// PEM private key of the serving certificate.
    #[arg(long, default_value = "/etc/tls-certs/serverKey.pem")]
    pub tls_private_key: String,
    /// Accepted for compatibility: vpa-rs always reloads the certificate files by content.
    #[arg(long, default_value_t = false, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub reload_cert: bool,
    /// How often the certificate, key and CA files are read again; a changed content is served
    /// to new connections (and the caBundle re-registered) without dropping open ones (vpa-rs).
    #[arg(long, default_value = "30s", value_parser = positive_duration)]
    pub tls_reload_interval: Duration,
    /// Comma- or colon-separated Go names of the TLS 1.2 cipher suites to allow (unknown or
    /// unsupported names are ignored; TLS 1.3 suites are always enabled, as in Go).
    #[arg(long, default_value = "")]
    pub tls_ciphers: String,
    /// Minimum TLS version: tls1_2 or tls1_3.
    #[arg(long, value_enum, default_value_t = MinTlsVersion::Tls12)]
    pub min_tls_version: MinTlsVersion,
    /// HTTPS port of the webhook.
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Address of the admin server: /healthz, /health-check, /readyz, /metrics.
    #[arg(long, default_value = ":8944")]
    pub address: String,

    /// Name of the Service in front of the webhook (registration by Service).
    #[arg(long, default_value = "vpa-webhook")]
    pub webhook_service: String,
    /// Name of the MutatingWebhookConfiguration to register (vpa-rs; upstream's is fixed).
    #[arg(long, default_value = crate::registration::WEBHOOK_CONFIG_NAME)]
    pub webhook_config_name: String,
    /// Address of the webhook for --register-by-url, e.g. https://vpa.example.com; also a SAN
    /// of a generated serving certificate.
    #[arg(long, default_value = "")]
    pub webhook_address: String,
    /// Port appended to --webhook-address (as ":<port>") for --register-by-url.
    #[arg(long, default_value = "")]
    pub webhook_port: String,
    /// timeoutSeconds of the registered webhook, 1 to 30 (vpa-rs default 5; upstream 30).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(i32).range(1..=30))]
    pub webhook_timeout_seconds: i32,
    /// Register the webhook with failurePolicy Fail instead of Ignore.
    #[arg(long, default_value_t = false, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub webhook_failure_policy_fail: bool,
    /// Create or update the MutatingWebhookConfiguration vpa-webhook-config.
    #[arg(long, default_value_t = true, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub register_webhook: bool,
    /// Labels of the MutatingWebhookConfiguration, "k1:v1,k2:v2".
    #[arg(long, default_value = "")]
    pub webhook_labels: String,
    /// Register the webhook by URL (--webhook-address, --webhook-port) instead of by Service.
    #[arg(long, default_value_t = false, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub register_by_url: bool,
    /// reinvocationPolicy of the registered webhook: Never or IfNeeded (vpa-rs).
    #[arg(long, value_enum, default_value_t = ReinvocationPolicy::Never)]
    pub webhook_reinvocation_policy: ReinvocationPolicy,
    /// objectSelector of the registered webhook, as a label selector string such as
    /// "team=a,tier notin (batch)"; empty selects every object (vpa-rs).
    #[arg(long, default_value = "")]
    pub webhook_object_selector: String,
    /// Leave the webhook's own namespace (--namespace) out of its namespaceSelector, so the
    /// admission controller never waits on itself (vpa-rs).
    #[arg(long, default_value_t = true, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub webhook_exclude_own_namespace: bool,
    /// Namespace the admission controller runs in: the Service's namespace and the default of
    /// --status-lease-namespace (vpa-rs flag; upstream reads only $NAMESPACE).
    #[arg(long, env = "NAMESPACE", default_value = DEFAULT_NAMESPACE)]
    pub namespace: String,

    /// Name of the Lease renewed to tell the updater that the webhook is alive.
    #[arg(long, default_value = "vpa-admission-controller")]
    pub status_lease_name: String,
    /// Namespace of the status Lease; empty means --namespace ($NAMESPACE, else kube-system).
    #[arg(long, default_value = "")]
    pub status_lease_namespace: String,
    /// How often the status Lease is renewed.
    #[arg(long, default_value = "10s", value_parser = positive_duration)]
    pub status_lease_update_interval: Duration,

    /// Time allowed to complete the TLS handshake of a new connection (vpa-rs).
    #[arg(long, default_value = "10s", value_parser = positive_duration)]
    pub tls_handshake_timeout: Duration,
    /// Time allowed to read the request headers, HTTP/1.1 (vpa-rs). It also closes an idle
    /// keep-alive connection after this long; HTTP/2 connections are kept alive by pings.
    #[arg(long, default_value = "30s", value_parser = positive_duration)]
    pub header_read_timeout: Duration,
    /// Time allowed to read the request body (vpa-rs).
    #[arg(long, default_value = "10s", value_parser = positive_duration)]
    pub body_read_timeout: Duration,
    /// On SIGTERM, report not ready and keep serving this long before closing the listener,
    /// so endpoints stop routing here first (vpa-rs).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub shutdown_delay: Duration,
    /// How long in-flight requests may take to finish once the listener is closed (vpa-rs).
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// Upper bound of the CPU a startup boost may give a container (a quantity); unset means
    /// no bound. Stored in millicores.
    #[arg(long, value_parser = cpu_quantity)]
    pub max_allowed_cpu_boost: Option<i64>,
    /// Feature gates, e.g. "InPlace=true,CPUStartupBoost=false".
    #[arg(long, default_value = "")]
    pub feature_gates: String,
    /// Only handle VPAs and pods of this namespace (registration: namespaceSelector In).
    #[arg(long, default_value = "")]
    pub vpa_object_namespace: String,
    /// Comma-separated namespaces whose pods and VPAs are ignored (registration:
    /// namespaceSelector NotIn).
    #[arg(long, default_value = "")]
    pub ignored_vpa_object_namespaces: String,
    /// Accepted for compatibility; ignored.
    #[arg(long, default_value_t = false, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub profiling: bool,

    /// API client flags.
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Logging flags.
    #[command(flatten)]
    pub log: LogArgs,
}

/// A flag value that is invalid together with the others.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// Both namespace filters are set (upstream: fatal).
    #[error("--vpa-object-namespace and --ignored-vpa-object-namespaces are mutually exclusive")]
    NamespaceFilters,
    /// `--webhook-labels` is not `k1:v1,k2:v2`.
    #[error("--webhook-labels={value:?}: {why}")]
    Labels {
        /// The flag value.
        value: String,
        /// What is wrong.
        why: String,
    },
    /// `--webhook-object-selector` does not parse or uses `<`/`>`.
    #[error("--webhook-object-selector={value:?}: {why}")]
    ObjectSelector {
        /// The flag value.
        value: String,
        /// What is wrong.
        why: String,
    },
    /// `--register-by-url` without `--webhook-address`.
    #[error("--register-by-url needs --webhook-address")]
    MissingAddress,
}

impl Config {
    /// The namespace the controller runs in (`--namespace`, `$NAMESPACE`, else kube-system).
    pub fn namespace(&self) -> &str {
        if self.namespace.is_empty() {
            DEFAULT_NAMESPACE
        } else {
            &self.namespace
        }
    }

    /// The status Lease's namespace.
    pub fn status_lease_namespace(&self) -> &str {
        if self.status_lease_namespace.is_empty() {
            self.namespace()
        } else {
            &self.status_lease_namespace
        }
    }

    /// `--ignored-vpa-object-namespaces` as a list (empty items dropped).
    pub fn ignored_namespaces(&self) -> Vec<String> {
        split_list(&self.ignored_vpa_object_namespaces, &[','])
    }

    /// `--webhook-labels` parsed.
    pub fn webhook_labels(&self) -> Result<BTreeMap<String, String>, ConfigError> {
        parse_labels(&self.webhook_labels)
    }

    /// `--webhook-object-selector` parsed (`None` when empty).
    pub fn object_selector(&self) -> Result<Option<Selector>, ConfigError> {
        let value = self.webhook_object_selector.trim();
        if value.is_empty() {
            return Ok(None);
        }
        let bad = |why: String| ConfigError::ObjectSelector {
            value: value.to_string(),
            why,
        };
        let selector = Selector::parse(value).map_err(|e| bad(e.to_string()))?;
        if selector
            .requirements()
            .iter()
            .any(|r| matches!(r.operator, Operator::Gt | Operator::Lt))
        {
            return Err(bad(
                "'<' and '>' cannot be expressed in a webhook objectSelector".into(),
            ));
        }
        Ok(Some(selector))
    }

    /// The checks clap cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.vpa_object_namespace.is_empty() && !self.ignored_namespaces().is_empty() {
            return Err(ConfigError::NamespaceFilters);
        }
        self.webhook_labels()?;
        self.object_selector()?;
        if self.register_webhook && self.register_by_url && self.webhook_address.is_empty() {
            return Err(ConfigError::MissingAddress);
        }
        Ok(())
    }
}

/// Splits on any of `separators`, trimming items and dropping empty ones.
pub fn split_list(value: &str, separators: &[char]) -> Vec<String> {
    value
        .split(separators)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `k1:v1,k2:v2` → labels. Keys and values are checked as Kubernetes label keys and values.
pub fn parse_labels(value: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let bad = |why: String| ConfigError::Labels {
        value: value.to_string(),
        why,
    };
    let mut labels = BTreeMap::new();
    for item in split_list(value, &[',']) {
        let (k, v) = item
            .split_once(':')
            .ok_or_else(|| bad(format!("{item:?} is not key:value")))?;
        let (k, v) = (k.trim(), v.trim());
        vpa_core::labels::validate_label_key(k).map_err(|e| bad(format!("key {k:?}: {e}")))?;
        vpa_core::labels::validate_label_value(v).map_err(|e| bad(format!("value {v:?}: {e}")))?;
        labels.insert(k.to_string(), v.to_string());
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("vpa-admission").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_are_upstreams_except_the_timeout() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.client_ca_file, "/etc/tls-certs/caCert.pem");
        assert_eq!(c.tls_cert_file, "/etc/tls-certs/serverCert.pem");
        assert_eq!(c.tls_private_key, "/etc/tls-certs/serverKey.pem");
        assert!(!c.reload_cert);
        assert_eq!(c.tls_ciphers, "");
        assert_eq!(c.min_tls_version, MinTlsVersion::Tls12);
        assert_eq!(c.port, 8000);
        assert_eq!(c.address, ":8944");
        assert_eq!(c.webhook_service, "vpa-webhook");
        assert_eq!(c.webhook_address, "");
        assert_eq!(c.webhook_port, "");
        assert_eq!(c.webhook_timeout_seconds, 5);
        assert!(!c.webhook_failure_policy_fail);
        assert!(c.register_webhook);
        assert_eq!(c.webhook_labels, "");
        assert!(!c.register_by_url);
        assert_eq!(c.status_lease_name, "vpa-admission-controller");
        assert_eq!(c.status_lease_namespace, "");
        assert_eq!(c.status_lease_update_interval, Duration::from_secs(10));
        assert_eq!(c.max_allowed_cpu_boost, None);
        assert_eq!(c.kube.kube_api_qps, 50.0);
        assert_eq!(c.log.verbosity, 4);
        assert_eq!(c.tls_reload_interval, Duration::from_secs(30));
        assert_eq!(c.webhook_reinvocation_policy, ReinvocationPolicy::Never);
        c.validate().unwrap();
    }

    #[test]
    fn upstream_manifest_args_parse() {
        let c = parse(&[
            "--v=4",
            "--stderrthreshold=info",
            "--reload-cert",
            "--register-webhook=false",
            "--webhook-failure-policy-fail",
            "--min-tls-version=tls1_3",
            "--tls-ciphers=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "--port=8443",
            "--status-lease-update-interval=1m30s",
            "--max-allowed-cpu-boost=2",
            "--webhook-timeout-seconds=30",
        ])
        .unwrap();
        assert!(c.reload_cert);
        assert!(!c.register_webhook);
        assert!(c.webhook_failure_policy_fail);
        assert_eq!(c.min_tls_version, MinTlsVersion::Tls13);
        assert_eq!(c.port, 8443);
        assert_eq!(c.status_lease_update_interval, Duration::from_secs(90));
        assert_eq!(c.max_allowed_cpu_boost, Some(2000));
        assert_eq!(c.webhook_timeout_seconds, 30);
    }

    #[test]
    fn out_of_range_values_are_rejected() {
        assert!(parse(&["--min-tls-version=tls1_1"]).is_err());
        assert!(parse(&["--webhook-timeout-seconds=31"]).is_err());
        assert!(parse(&["--webhook-timeout-seconds=0"]).is_err());
        assert!(parse(&["--status-lease-update-interval=0s"]).is_err());
        assert!(parse(&["--tls-reload-interval=-1s"]).is_err());
        assert!(parse(&["--max-allowed-cpu-boost=lots"]).is_err());
        assert!(parse(&["--webhook-reinvocation-policy=Sometimes"]).is_err());
    }

    #[test]
    fn lease_namespace_falls_back_to_the_controller_namespace() {
        let c = parse(&["--namespace=vpa"]).unwrap();
        assert_eq!(c.status_lease_namespace(), "vpa");
        let c = parse(&["--namespace=vpa", "--status-lease-namespace=other"]).unwrap();
        assert_eq!(c.status_lease_namespace(), "other");
        let c = parse(&["--namespace="]).unwrap();
        assert_eq!(c.namespace(), "kube-system");
        assert_eq!(c.status_lease_namespace(), "kube-system");
    }

    #[test]
    fn namespace_filters_are_mutually_exclusive() {
        let c = parse(&[
            "--vpa-object-namespace=a",
            "--ignored-vpa-object-namespaces=b",
        ])
        .unwrap();
        assert_eq!(c.validate(), Err(ConfigError::NamespaceFilters));
        // An empty list (upstream's `[""]`) does not count.
        let c = parse(&[
            "--vpa-object-namespace=a",
            "--ignored-vpa-object-namespaces=,",
        ])
        .unwrap();
        c.validate().unwrap();
        let c = parse(&["--ignored-vpa-object-namespaces=a, b,,c"]).unwrap();
        assert_eq!(c.ignored_namespaces(), ["a", "b", "c"]);
    }

    #[test]
    fn webhook_labels_parse_or_name_the_problem() {
        assert_eq!(
            parse_labels("team:vpa, app.kubernetes.io/part-of:vpa-rs").unwrap(),
            BTreeMap::from([
                ("team".to_string(), "vpa".to_string()),
                (
                    "app.kubernetes.io/part-of".to_string(),
                    "vpa-rs".to_string()
                ),
            ])
        );
        assert!(parse_labels("").unwrap().is_empty());
        let err = parse_labels("team=vpa").unwrap_err().to_string();
        assert!(err.contains("\"team=vpa\" is not key:value"), "{err}");
        assert!(parse_labels("bad key:v").is_err());
        assert!(parse_labels("k:bad value").is_err());
    }

    #[test]
    fn object_selector_parses_and_rejects_comparisons() {
        let c = parse(&["--webhook-object-selector=team=a,tier notin (batch),!legacy"]).unwrap();
        let s = c.object_selector().unwrap().unwrap();
        assert_eq!(s.requirements().len(), 3);
        let c = parse(&["--webhook-object-selector=gen>3"]).unwrap();
        assert!(matches!(
            c.validate(),
            Err(ConfigError::ObjectSelector { .. })
        ));
        let c = parse(&["--webhook-object-selector=a in ("]).unwrap();
        assert!(c.validate().is_err());
    }

    #[test]
    fn register_by_url_needs_an_address() {
        let c = parse(&["--register-by-url"]).unwrap();
        assert_eq!(c.validate(), Err(ConfigError::MissingAddress));
        let c = parse(&["--register-by-url", "--register-webhook=false"]).unwrap();
        c.validate().unwrap();
    }
}
