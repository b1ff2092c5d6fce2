//! Resolution of a VPA's `spec.targetRef` to the label selector of its pods (upstream
//! `target/fetcher.go`, `controller_fetcher.go`): well-known controllers from their spec
//! (`spec.selector`; CronJob: the job template's labels; ReplicationController: its map
//! selector), anything else through its `/scale` subresource (`status.selector`), after
//! checking that the target is a topmost controller. Results are cached: a fresh result is
//! reused for `refresh_after`, a stale one is refreshed, and when a refresh fails for a
//! transient reason the last good result is kept for up to `cache_ttl` (upstream #9891).
//! Permanent failures are cached for `error_ttl`.
//!
//! API calls: one GET per target per `refresh_after` (plus discovery for kinds that are not
//! well-known, cached for 5 minutes as upstream's REST mapper is).

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::discovery::{Discovery, Scope};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;
use vpa_core::labels::Selector;

/// A targetRef.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetRef {
    /// `apiVersion`, e.g. `apps/v1`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `name`.
    pub name: String,
}

impl TargetRef {
    fn group(&self) -> &str {
        self.api_version.rsplit_once('/').map_or("", |(g, _)| g)
    }

    fn describe(&self) -> String {
        format!("{}.{}/{}", self.api_version, self.kind, self.name)
    }
}

/// What a target resolved to.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The pods' selector.
    pub selector: Selector,
    /// Kind.
    pub kind: String,
    /// apiVersion.
    pub api_version: String,
    /// Name.
    pub name: String,
}

/// Why a target cannot be used.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum TargetError {
    /// The target does not exist.
    #[error("{target} not found")]
    NotFound {
        /// The target.
        target: String,
    },
    /// The target is owned by another controller.
    #[error(
        "The target {target} has a parent controller but it should point to a topmost well-known or scalable controller"
    )]
    HasParent {
        /// The target.
        target: String,
    },
    /// Neither well-known nor scalable.
    #[error("{target} is not a well-known controller and has no scale subresource: {detail}")]
    Unsupported {
        /// The target.
        target: String,
        /// Why.
        detail: String,
    },
    /// A timeout, 5xx, 429 or connection error.
    #[error("cannot read {target}: {detail}")]
    Transient {
        /// The target.
        target: String,
        /// Why.
        detail: String,
    },
    /// The selector is missing or does not parse.
    #[error("{target} has an invalid selector: {detail}")]
    Invalid {
        /// The target.
        target: String,
        /// Why.
        detail: String,
    },
}

impl TargetError {
    /// Whether a later attempt may succeed without any change.
    pub fn is_transient(&self) -> bool {
        matches!(self, TargetError::Transient { .. })
    }

    /// The `ConfigUnsupported` message, worded as upstream's.
    pub fn condition_message(&self) -> String {
        match self {
            TargetError::HasParent { .. } => self.to_string(),
            other => format!("Cannot read targetRef. Reason: {other}"),
        }
    }
}

/// Cache timings.
#[derive(Debug, Clone, Copy)]
pub struct ResolverOptions {
    /// How long a good result may be used when refreshes fail transiently.
    pub cache_ttl: Duration,
    /// Age after which a result is refreshed.
    pub refresh_after: Duration,
    /// How long a permanent failure is remembered.
    pub error_ttl: Duration,
}

impl Default for ResolverOptions {
    fn default() -> Self {
        Self {
            cache_ttl: Duration::from_secs(600),
            refresh_after: Duration::from_secs(60),
            error_ttl: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone)]
enum Entry {
    Good { resolved: Resolved, at: Instant },
    Failed { error: TargetError, at: Instant },
}

/// What the cache says for a key at a time.
#[derive(Debug, Clone, PartialEq)]
enum Lookup {
    /// Use this, no refresh needed.
    Fresh(Result<Resolved, TargetError>),
    /// Refresh; on a transient failure fall back to this.
    Stale(Option<Resolved>),
}

fn lookup(entry: Option<&Entry>, now: Instant, o: &ResolverOptions) -> Lookup {
    match entry {
        None => Lookup::Stale(None),
        Some(Entry::Good { resolved, at }) => {
            let age = now.saturating_duration_since(*at);
            if age < o.refresh_after {
                Lookup::Fresh(Ok(resolved.clone()))
            } else if age < o.cache_ttl {
                Lookup::Stale(Some(resolved.clone()))
            } else {
                Lookup::Stale(None)
            }
        }
        Some(Entry::Failed { error, at }) => {
            if now.saturating_duration_since(*at) < o.error_ttl {
                Lookup::Fresh(Err(error.clone()))
            } else {
                Lookup::Stale(None)
            }
        }
    }
}

type Key = (String, TargetRef);

struct Inner {
    client: Client,
    options: ResolverOptions,
    cache: Mutex<HashMap<Key, Entry>>,
    discovery: tokio::sync::Mutex<Option<(Instant, Arc<Discovery>)>>,
}

/// The resolver (cheap to clone).
#[derive(Clone)]
pub struct TargetResolver {
    inner: Arc<Inner>,
}

const DISCOVERY_TTL: Duration = Duration::from_secs(300);

fn well_known(group: &str, kind: &str) -> Option<ApiResource> {
    let (g, v, plural) = match (group, kind) {
        ("apps", "Deployment") => ("apps", "v1", "deployments"),
        ("apps", "StatefulSet") => ("apps", "v1", "statefulsets"),
        ("apps", "DaemonSet") => ("apps", "v1", "daemonsets"),
        ("apps", "ReplicaSet") => ("apps", "v1", "replicasets"),
        ("batch", "Job") => ("batch", "v1", "jobs"),
        ("batch", "CronJob") => ("batch", "v1", "cronjobs"),
        ("", "ReplicationController") => ("", "v1", "replicationcontrollers"),
        _ => return None,
    };
    Some(ApiResource {
        group: g.into(),
        version: v.into(),
        api_version: if g.is_empty() {
            v.into()
        } else {
            format!("{g}/{v}")
        },
        kind: kind.into(),
        plural: plural.into(),
    })
}

/// The selector of a well-known controller from its JSON.
pub fn well_known_selector(kind: &str, obj: &serde_json::Value) -> Result<Selector, String> {
    match kind {
        "CronJob" => {
            let labels = obj
                .pointer("/spec/jobTemplate/spec/template/metadata/labels")
                .and_then(|l| l.as_object())
                .ok_or("spec.jobTemplate.spec.template.metadata.labels is missing")?;
            let pairs: Vec<(&str, &str)> = labels
                .iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
                .collect();
            Selector::new(pairs, []).map_err(|e| e.to_string())
        }
        "ReplicationController" => {
            let sel = obj
                .pointer("/spec/selector")
                .and_then(|l| l.as_object())
                .ok_or("spec.selector is missing")?;
            let pairs: Vec<(&str, &str)> = sel
                .iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
                .collect();
            Selector::new(pairs, []).map_err(|e| e.to_string())
        }
        _ => {
            let sel = obj
                .pointer("/spec/selector")
                .ok_or("spec.selector is missing")?;
            label_selector(sel)
        }
    }
}

/// A `metav1.LabelSelector` (matchLabels and matchExpressions) from its JSON.
pub fn label_selector(sel: &serde_json::Value) -> Result<Selector, String> {
    let labels: Vec<(&str, &str)> = sel
        .get("matchLabels")
        .and_then(|m| m.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
                .collect()
        })
        .unwrap_or_default();
    let mut exprs = Vec::new();
    for e in sel
        .get("matchExpressions")
        .and_then(|m| m.as_array())
        .into_iter()
        .flatten()
    {
        let key = e
            .get("key")
            .and_then(|k| k.as_str())
            .ok_or("matchExpressions[].key is missing")?;
        let op = e
            .get("operator")
            .and_then(|k| k.as_str())
            .ok_or("matchExpressions[].operator is missing")?;
        let values: Vec<String> = e
            .get("values")
            .and_then(|v| v.as_array())
            .map(|v| {
                v.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        exprs.push((key, op, values));
    }
    Selector::new(labels, exprs).map_err(|e| e.to_string())
}

/// Whether an object's controller owner makes it a non-topmost target: any controller
/// owner counts (upstream walks to the topmost well-known or scalable owner; an owner of
/// another kind without scale, which is rare, would be accepted there).
pub fn parent_controller(obj: &serde_json::Value) -> Option<String> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(|o| o.as_array())
        .into_iter()
        .flatten()
        .find(|o| o.get("controller").and_then(|c| c.as_bool()) == Some(true))
        .and_then(|o| {
            let kind = o.get("kind")?.as_str()?;
            let name = o.get("name")?.as_str()?;
            (kind != "Node").then(|| format!("{kind}/{name}"))
        })
}

fn classify(e: kube::Error, target: &TargetRef) -> TargetError {
    let t = target.describe();
    match e {
        kube::Error::Api(s) if s.code == 404 => TargetError::NotFound { target: t },
        kube::Error::Api(s) if s.code == 429 || s.code >= 500 => TargetError::Transient {
            target: t,
            detail: s.message,
        },
        kube::Error::Api(s) => TargetError::Unsupported {
            target: t,
            detail: s.message,
        },
        other => TargetError::Transient {
            target: t,
            detail: other.to_string(),
        },
    }
}

impl TargetResolver {
    /// A resolver using `client`.
    pub fn new(client: Client, options: ResolverOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                options,
                cache: Mutex::new(HashMap::new()),
                discovery: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// The selector of the target (from cache when fresh).
    pub async fn resolve(
        &self,
        namespace: &str,
        target: &TargetRef,
        now: Instant,
    ) -> Result<Resolved, TargetError> {
        let key = (namespace.to_string(), target.clone());
        let state = {
            let cache = self
                .inner
                .cache
                .lock()
                .map_err(|_| TargetError::Transient {
                    target: target.describe(),
                    detail: "cache poisoned".into(),
                })?;
            lookup(cache.get(&key), now, &self.inner.options)
        };
        let fallback = match state {
            Lookup::Fresh(r) => return r,
            Lookup::Stale(f) => f,
        };
        let result = self.fetch(namespace, target).await;
        let entry = match (&result, &fallback) {
            (Ok(r), _) => Some(Entry::Good {
                resolved: r.clone(),
                at: now,
            }),
            (Err(e), _) if e.is_transient() => None,
            (Err(e), _) => Some(Entry::Failed {
                error: e.clone(),
                at: now,
            }),
        };
        if let Some(e) = entry
            && let Ok(mut cache) = self.inner.cache.lock()
        {
            cache.insert(key, e);
        }
        match (result, fallback) {
            (Err(e), Some(good)) if e.is_transient() => {
                tracing::debug!(target = %target.describe(), "keeping the last selector: {e}");
                Ok(good)
            }
            (r, _) => r,
        }
    }

    /// Whether the target is known to exist (cache only).
    pub fn exists_cached(&self, namespace: &str, target: &TargetRef) -> Option<bool> {
        let cache = self.inner.cache.lock().ok()?;
        match cache.get(&(namespace.to_string(), target.clone()))? {
            Entry::Good { .. } => Some(true),
            Entry::Failed {
                error: TargetError::NotFound { .. },
                ..
            } => Some(false),
            Entry::Failed { .. } => Some(true),
        }
    }

    async fn discovery(&self) -> Result<Arc<Discovery>, kube::Error> {
        let mut d = self.inner.discovery.lock().await;
        if let Some((at, disc)) = d.as_ref()
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok(disc.clone());
        }
        let disc = Arc::new(Discovery::new(self.inner.client.clone()).run().await?);
        *d = Some((Instant::now(), disc.clone()));
        Ok(disc)
    }

    async fn fetch(&self, namespace: &str, target: &TargetRef) -> Result<Resolved, TargetError> {
        let client = self.inner.client.clone();
        let describe = target.describe();
        let resolved = |selector| Resolved {
            selector,
            kind: target.kind.clone(),
            api_version: target.api_version.clone(),
            name: target.name.clone(),
        };
        if let Some(ar) = well_known(target.group(), &target.kind) {
            let api: Api<DynamicObject> = Api::namespaced_with(client, namespace, &ar);
            let obj = api
                .get(&target.name)
                .await
                .map_err(|e| classify(e, target))?;
            let json = serde_json::to_value(&obj).unwrap_or_default();
            if parent_controller(&json).is_some() {
                return Err(TargetError::HasParent { target: describe });
            }
            let selector = well_known_selector(&target.kind, &json).map_err(|detail| {
                TargetError::Invalid {
                    target: describe.clone(),
                    detail,
                }
            })?;
            return Ok(resolved(selector));
        }
        // Anything else: through discovery and /scale.
        let disc = self.discovery().await.map_err(|e| classify(e, target))?;
        let found = disc
            .groups()
            .find(|g| g.name() == target.group())
            .and_then(|g| {
                g.recommended_resources()
                    .into_iter()
                    .find(|(ar, _)| ar.kind == target.kind)
            });
        let Some((ar, caps)) = found else {
            return Err(TargetError::Unsupported {
                target: describe,
                detail: "the API server does not serve this kind".into(),
            });
        };
        if caps.scope != Scope::Namespaced
            || !caps
                .subresources
                .iter()
                .any(|(s, _)| s.plural == "scale" || s.plural.ends_with("/scale"))
        {
            return Err(TargetError::Unsupported {
                target: describe,
                detail: "no scale subresource".into(),
            });
        }
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
        let obj = api
            .get(&target.name)
            .await
            .map_err(|e| classify(e, target))?;
        let json = serde_json::to_value(&obj).unwrap_or_default();
        if parent_controller(&json).is_some() {
            return Err(TargetError::HasParent { target: describe });
        }
        let scale: k8s_openapi::api::autoscaling::v1::Scale = api
            .get_subresource("scale", &target.name)
            .await
            .map_err(|e| classify(e, target))
            .and_then(|o| {
                serde_json::to_value(o)
                    .and_then(serde_json::from_value)
                    .map_err(|e| TargetError::Invalid {
                        target: describe.clone(),
                        detail: e.to_string(),
                    })
            })?;
        let sel = scale
            .status
            .and_then(|s| s.selector)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| TargetError::Invalid {
                target: describe.clone(),
                detail: "the scale subresource has no status.selector".into(),
            })?;
        let selector = Selector::parse(&sel).map_err(|e| TargetError::Invalid {
            target: describe.clone(),
            detail: e.to_string(),
        })?;
        Ok(resolved(selector))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> vpa_core::labels::LabelSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors_of_well_known_kinds() {
        let d = json!({"spec": {"selector": {"matchLabels": {"app": "a"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]}}});
        let s = well_known_selector("Deployment", &d).unwrap();
        assert!(s.matches(&labels(&[("app", "a"), ("tier", "web")])));
        assert!(!s.matches(&labels(&[("app", "a")])));
        let cj = json!({"spec": {"jobTemplate": {"spec": {"template": {"metadata": {"labels": {"job": "x"}}}}}}});
        assert!(
            well_known_selector("CronJob", &cj)
                .unwrap()
                .matches(&labels(&[("job", "x")]))
        );
        let rc = json!({"spec": {"selector": {"app": "r"}}});
        assert!(
            well_known_selector("ReplicationController", &rc)
                .unwrap()
                .matches(&labels(&[("app", "r")]))
        );
        assert!(well_known_selector("Deployment", &json!({"spec": {}})).is_err());
        let bad =
            json!({"spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}}});
        assert!(well_known_selector("Deployment", &bad).is_err());
    }

    #[test]
    fn parents_and_messages() {
        let owned = json!({"metadata": {"ownerReferences": [{"kind": "Deployment", "name": "d", "controller": true}]}});
        assert_eq!(parent_controller(&owned).as_deref(), Some("Deployment/d"));
        assert!(parent_controller(&json!({"metadata": {}})).is_none());
        let e = TargetError::HasParent {
            target: "apps/v1.ReplicaSet/rs".into(),
        };
        assert_eq!(
            e.condition_message(),
            "The target apps/v1.ReplicaSet/rs has a parent controller but it should point to a topmost well-known or scalable controller"
        );
        let e = TargetError::NotFound {
            target: "apps/v1.Deployment/x".into(),
        };
        assert_eq!(
            e.condition_message(),
            "Cannot read targetRef. Reason: apps/v1.Deployment/x not found"
        );
        assert!(!e.is_transient());
    }

    #[test]
    fn cache_states() {
        let o = ResolverOptions::default();
        let t0 = Instant::now();
        let good = Resolved {
            selector: Selector::new([("a", "b")], []).unwrap(),
            kind: "Deployment".into(),
            api_version: "apps/v1".into(),
            name: "d".into(),
        };
        let entry = Entry::Good {
            resolved: good.clone(),
            at: t0,
        };
        assert_eq!(lookup(None, t0, &o), Lookup::Stale(None));
        assert_eq!(
            lookup(Some(&entry), t0 + Duration::from_secs(5), &o),
            Lookup::Fresh(Ok(good.clone()))
        );
        assert_eq!(
            lookup(Some(&entry), t0 + Duration::from_secs(61), &o),
            Lookup::Stale(Some(good))
        );
        assert_eq!(
            lookup(Some(&entry), t0 + Duration::from_secs(601), &o),
            Lookup::Stale(None)
        );
        let failed = Entry::Failed {
            error: TargetError::NotFound { target: "x".into() },
            at: t0,
        };
        assert!(matches!(
            lookup(Some(&failed), t0 + Duration::from_secs(5), &o),
            Lookup::Fresh(Err(_))
        ));
        assert_eq!(
            lookup(Some(&failed), t0 + Duration::from_secs(11), &o),
            Lookup::Stale(None)
        );
    }
}
