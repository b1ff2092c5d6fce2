//! Webhook self-registration (`--register-webhook`): the MutatingWebhookConfiguration
//! `vpa-webhook-config` with one webhook `vpa.k8s.io`, built by the pure
//! [`webhook_configuration`] and written by [`Registrar`].
//!
//! The object: `admissionReviewVersions: [v1]`; rules CREATE `""/v1/pods` and CREATE/UPDATE
//! `autoscaling.k8s.io/*/verticalpodautoscalers`; `sideEffects: None`; `failurePolicy`
//! Ignore (Fail with `--webhook-failure-policy-fail`); `timeoutSeconds`; the reinvocation
//! policy; labels; `clientConfig` by Service (`<namespace>/<--webhook-service>`, port 443 and
//! path `/` by default, as upstream) or by URL (`<--webhook-address>:<--webhook-port>`,
//! literally, as upstream; the address alone when no port is given) with the caBundle;
//! `namespaceSelector`:
//! * `--vpa-object-namespace=ns` → `kubernetes.io/metadata.name In [ns]`;
//! * else the webhook's own namespace (unless `--webhook-exclude-own-namespace=false`) and
//!   `--ignored-vpa-object-namespaces` → `NotIn [...]` (upstream's `NotIn [""]` for an empty
//!   flag is not reproduced);
//! * else none;
//!
//! and `objectSelector` from `--webhook-object-selector`.
//!
//! It is written with **server-side apply** (field manager `vpa-admission`, forced), not
//! upstream's delete-then-create: one idempotent request whether or not the object exists, no
//! window without a webhook, no race between replicas, and fields this manager stops setting
//! are removed. It needs the `patch` (and, for the first write, `create`) verbs, which
//! upstream's ClusterRole grants. Registration starts as soon as the TLS listener is bound
//! (upstream sleeps 10 s first), is retried with backoff until it succeeds, and is applied
//! again whenever the CA bundle changes.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ServiceReference,
    WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use tokio::sync::watch;
use vpa_core::labels::{Operator, Selector};

use crate::config::{Config, ConfigError, ReinvocationPolicy};
use crate::metrics::AdmissionMetrics;

/// Name of the MutatingWebhookConfiguration.
pub const WEBHOOK_CONFIG_NAME: &str = "vpa-webhook-config";
/// Name of the webhook inside it.
pub const WEBHOOK_NAME: &str = "vpa.k8s.io";
/// Server-side apply field manager.
pub const FIELD_MANAGER: &str = "vpa-admission";
/// The namespace label the namespaceSelector matches on.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// How the API server reaches the webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// Through a Service (port 443, path `/`).
    Service {
        /// The Service's namespace.
        namespace: String,
        /// The Service's name.
        name: String,
    },
    /// Through a URL.
    Url(String),
}

/// Everything the webhook object depends on besides the CA bundle.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookSettings {
    /// How the webhook is reached.
    pub endpoint: Endpoint,
    /// `failurePolicy: Fail` instead of Ignore.
    pub failure_policy_fail: bool,
    /// `timeoutSeconds`.
    pub timeout_seconds: i32,
    /// `reinvocationPolicy`.
    pub reinvocation: ReinvocationPolicy,
    /// Labels of the configuration object.
    pub labels: BTreeMap<String, String>,
    /// Namespaces left out (NotIn), in order, without duplicates.
    pub excluded_namespaces: Vec<String>,
    /// The only namespace handled (In), which takes precedence over the exclusions.
    pub only_namespace: Option<String>,
    /// The objectSelector.
    pub object_selector: Option<Selector>,
    /// The configuration's name (`--webhook-config-name`).
    pub config_name: String,
}

impl WebhookSettings {
    /// From the flags (see the module docs).
    pub fn from_config(c: &Config) -> Result<Self, ConfigError> {
        let endpoint = if c.register_by_url {
            if c.webhook_address.is_empty() {
                return Err(ConfigError::MissingAddress);
            }
            Endpoint::Url(if c.webhook_port.is_empty() {
                c.webhook_address.clone()
            } else {
                format!("{}:{}", c.webhook_address, c.webhook_port)
            })
        } else {
            Endpoint::Service {
                namespace: c.namespace().to_string(),
                name: c.webhook_service.clone(),
            }
        };
        let mut excluded = Vec::new();
        if c.webhook_exclude_own_namespace {
            excluded.push(c.namespace().to_string());
        }
        for ns in c.ignored_namespaces() {
            if !excluded.contains(&ns) {
                excluded.push(ns);
            }
        }
        Ok(Self {
            endpoint,
            failure_policy_fail: c.webhook_failure_policy_fail,
            timeout_seconds: c.webhook_timeout_seconds,
            reinvocation: c.webhook_reinvocation_policy,
            labels: c.webhook_labels()?,
            excluded_namespaces: excluded,
            only_namespace: (!c.vpa_object_namespace.is_empty())
                .then(|| c.vpa_object_namespace.clone()),
            object_selector: c.object_selector()?,
            config_name: c.webhook_config_name.clone(),
        })
    }
}

fn strings(items: &[&str]) -> Option<Vec<String>> {
    Some(items.iter().map(|s| s.to_string()).collect())
}

fn namespace_selector(s: &WebhookSettings) -> Option<LabelSelector> {
    let (operator, values) = match &s.only_namespace {
        Some(ns) => ("In", vec![ns.clone()]),
        None if !s.excluded_namespaces.is_empty() => ("NotIn", s.excluded_namespaces.clone()),
        None => return None,
    };
    Some(LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: NAMESPACE_NAME_LABEL.to_string(),
            operator: operator.to_string(),
            values: Some(values),
        }]),
        match_labels: None,
    })
}

/// A parsed selector as a LabelSelector: single-value `=` as matchLabels, the rest as
/// matchExpressions.
pub fn label_selector(selector: &Selector) -> LabelSelector {
    let mut labels = BTreeMap::new();
    let mut expressions = Vec::new();
    for r in selector.requirements() {
        let (op, values) = match r.operator {
            Operator::In if r.values.len() == 1 && !labels.contains_key(&r.key) => {
                labels.insert(r.key.clone(), r.values[0].clone());
                continue;
            }
            Operator::In => ("In", Some(r.values.clone())),
            Operator::NotIn => ("NotIn", Some(r.values.clone())),
            Operator::Exists => ("Exists", None),
            Operator::DoesNotExist => ("DoesNotExist", None),
            // Rejected by `Config::object_selector`; kept out of the object if it got here.
            Operator::Gt | Operator::Lt => continue,
        };
        expressions.push(LabelSelectorRequirement {
            key: r.key.clone(),
            operator: op.to_string(),
            values,
        });
    }
    LabelSelector {
        match_labels: (!labels.is_empty()).then_some(labels),
        match_expressions: (!expressions.is_empty()).then_some(expressions),
    }
}

/// The MutatingWebhookConfiguration for `settings` and `ca_bundle` (PEM; empty leaves the
/// caBundle out, so the API server uses its system roots).
pub fn webhook_configuration(
    settings: &WebhookSettings,
    ca_bundle: &[u8],
) -> MutatingWebhookConfiguration {
    let client_config = match &settings.endpoint {
        Endpoint::Service { namespace, name } => WebhookClientConfig {
            ca_bundle: (!ca_bundle.is_empty()).then(|| ByteString(ca_bundle.to_vec())),
            service: Some(ServiceReference {
                namespace: namespace.clone(),
                name: name.clone(),
                path: None,
                port: None,
            }),
            url: None,
        },
        Endpoint::Url(url) => WebhookClientConfig {
            ca_bundle: (!ca_bundle.is_empty()).then(|| ByteString(ca_bundle.to_vec())),
            service: None,
            url: Some(url.clone()),
        },
    };
    let webhook = MutatingWebhook {
        name: WEBHOOK_NAME.to_string(),
        admission_review_versions: vec!["v1".to_string()],
        client_config,
        failure_policy: Some(
            if settings.failure_policy_fail {
                "Fail"
            } else {
                "Ignore"
            }
            .to_string(),
        ),
        match_conditions: None,
        match_policy: None,
        namespace_selector: namespace_selector(settings),
        object_selector: settings.object_selector.as_ref().map(label_selector),
        reinvocation_policy: Some(settings.reinvocation.as_str().to_string()),
        rules: Some(vec![
            RuleWithOperations {
                api_groups: strings(&[""]),
                api_versions: strings(&["v1"]),
                operations: strings(&["CREATE"]),
                resources: strings(&["pods"]),
                scope: None,
            },
            RuleWithOperations {
                api_groups: strings(&["autoscaling.k8s.io"]),
                api_versions: strings(&["*"]),
                operations: strings(&["CREATE", "UPDATE"]),
                resources: strings(&["verticalpodautoscalers"]),
                scope: None,
            },
        ]),
        side_effects: "None".to_string(),
        timeout_seconds: Some(settings.timeout_seconds),
    };
    MutatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(settings.config_name.clone()),
            labels: (!settings.labels.is_empty()).then(|| settings.labels.clone()),
            ..ObjectMeta::default()
        },
        webhooks: Some(vec![webhook]),
    }
}

/// Writes the webhook configuration and keeps its caBundle current.
pub struct Registrar {
    api: Api<MutatingWebhookConfiguration>,
    settings: WebhookSettings,
    metrics: std::sync::Arc<AdmissionMetrics>,
}

/// First and largest retry delay of a failed registration.
const BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));

impl Registrar {
    /// A registrar writing through `client`.
    pub fn new(
        client: Client,
        settings: WebhookSettings,
        metrics: std::sync::Arc<AdmissionMetrics>,
    ) -> Self {
        Self {
            api: Api::all(client),
            settings,
            metrics,
        }
    }

    /// One server-side apply of the configuration with `ca_bundle`.
    pub async fn apply(&self, ca_bundle: &[u8]) -> Result<(), kube::Error> {
        let object = webhook_configuration(&self.settings, ca_bundle);
        let result = self
            .api
            .patch(
                &self.settings.config_name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&object),
            )
            .await;
        self.metrics.registration(result.is_ok());
        result.map(|_| ())
    }

    /// Applies until it succeeds (doubling delays from 1 s to 60 s). False if `stop`
    /// resolved first.
    pub async fn register(&self, ca_bundle: &[u8], stop: impl Future<Output = ()>) -> bool {
        tokio::pin!(stop);
        let mut delay = BACKOFF.0;
        loop {
            match self.apply(ca_bundle).await {
                Ok(()) => {
                    tracing::info!(
                        name = %self.settings.config_name,
                        "registered the MutatingWebhookConfiguration"
                    );
                    return true;
                }
                Err(e) => tracing::error!(
                    name = %self.settings.config_name,
                    error = %e,
                    retry_in = ?delay,
                    "cannot register the MutatingWebhookConfiguration"
                ),
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = &mut stop => return false,
            }
            delay = (delay * 2).min(BACKOFF.1);
        }
    }

    /// Re-applies the configuration whenever the CA bundle changes, until `stop` resolves or
    /// the bundle's sender is gone. A failed apply is retried with backoff, always with the
    /// newest bundle (a change during the backoff is applied at once).
    pub async fn follow(
        self,
        mut ca_bundle: watch::Receiver<Vec<u8>>,
        stop: impl Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                changed = ca_bundle.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                () = &mut stop => return,
            }
            tracing::info!("the CA bundle changed: updating the webhook caBundle");
            let mut delay = BACKOFF.0;
            loop {
                let ca = ca_bundle.borrow_and_update().clone();
                match self.apply(&ca).await {
                    Ok(()) => {
                        tracing::info!(name = %self.settings.config_name, "updated the webhook caBundle");
                        break;
                    }
                    Err(e) => tracing::error!(
                        name = %self.settings.config_name,
                        error = %e,
                        retry_in = ?delay,
                        "cannot update the webhook caBundle"
                    ),
                }
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    changed = ca_bundle.changed() => {
                        if changed.is_err() {
                            return;
                        }
                    }
                    () = &mut stop => return,
                }
                delay = (delay * 2).min(BACKOFF.1);
            }
        }
    }
}

#[cfg(test)]
mod tests;
