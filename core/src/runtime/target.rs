//! Resolving a VPA's `spec.targetRef` to the label selector of the pods it controls, and
//! checking that the target is a topmost controller (upstream's target selector fetcher and
//! controller fetcher, `pkg/target`).
//!
//! * **Well-known kinds** (`Deployment`, `StatefulSet`, `DaemonSet`, `ReplicaSet`, `Job`,
//!   `CronJob`, `ReplicationController`) are recognised by kind alone, as upstream does (the
//!   targetRef's apiVersion is not looked at), and read typed from `apps/v1`, `batch/v1` and
//!   `v1`. The selector is `spec.selector`; for a CronJob it is the labels of
//!   `spec.jobTemplate.spec.template`, for a ReplicationController its `spec.selector` map.
//! * **Anything else** (Argo Rollouts, operators' custom resources, …) is found through
//!   discovery of the targetRef's API group, and its `/scale` subresource (`autoscaling/v1`
//!   Scale) is read; the selector is the parsed `status.selector` string, which must not be
//!   empty. Kinds without a scale subresource are [`TargetError::Unsupported`].
//! * **Topmost**: the target's controller owner reference is followed up the chain. A
//!   well-known or scalable ancestor makes the target invalid
//!   ([`TargetError::HasParent`]); an owner without `/scale` ends the walk; a `Node` owner, an
//!   owner kind unknown to discovery and a cycle are errors, all as upstream.
//!
//! Results are cached per (namespace, targetRef apiVersion, kind, name) (see
//! [`ResolverOptions`]): a result younger than `refresh_after` is served without an API
//! call; an older one (younger than `cache_ttl`) is served at once while a background task
//! refreshes it; an older one still is refreshed before answering. A *transient* failure
//! (timeout, connection error, HTTP 401/408/429/5xx) never replaces a good result: the last
//! good selector is kept, however old, until the API answers again (upstream #9891: a
//! briefly unresolvable targetRef must not drop a VPA's pods and history). Permanent
//! failures (the target does not exist, has a parent, has no `/scale`, has a bad selector)
//! are cached for `error_ttl`. Entries not asked for during `forget_after` are dropped.
//!
//! **API calls.** There are no watches or reflectors (they would hold every Deployment,
//! ReplicaSet, … of the cluster in memory). Each refresh of one targetRef costs one GET of
//! the target (the object, or its `/scale`) plus one GET per well-known or scalable ancestor
//! (a Deployment: 1; a ReplicaSet owned by a Deployment: 2). With the defaults that is at
//! most one refresh per targetRef per `refresh_after` (1 min): about N/60 GETs per second
//! for N VPAs (10,000 VPAs on Deployments: ~170 GET/s), plus, for scale-only kinds, one
//! discovery of the group per `discovery_ttl` (5 min) and per miss (at most every
//! `error_ttl`); discovery of a non-core group costs 1 + (number of its versions) GETs.
//!
//! The decision logic (`fetch_target` over the private `Source` trait, the cache state
//! machine `TargetCache`, the selector conversions) is plain code tested without a
//! cluster; `KubeSource` is the only part that talks to the API server.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::labels::{Selector, SelectorError};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v1::CrossVersionObjectReference;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ReplicationController;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::api::{Api, ApiResource, DynamicObject};
use kube::discovery::{ApiGroup, Scope};
use kube::error::DiscoveryError;
use serde::de::DeserializeOwned;

/// What the apiserver answers for a GET of a subresource the resource does not have; upstream
/// shows it as the "last error" of a targetRef without `/scale`.
pub const NO_SCALE_SUBRESOURCE: &str = "the server could not find the requested resource";

/// A VPA's `spec.targetRef`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TargetRef {
    /// `apiVersion` as written (may be empty).
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `name`.
    pub name: String,
}

impl TargetRef {
    /// A targetRef from its three fields.
    pub fn new(
        api_version: impl Into<String>,
        kind: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Self {
            api_version: api_version.into(),
            kind: kind.into(),
            name: name.into(),
        }
    }
}

/// Upstream's rendering in condition messages: `<apiVersion>.<Kind>/<name>`, e.g.
/// `apps/v1.Deployment/web`.
impl fmt::Display for TargetRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}/{}", self.api_version, self.kind, self.name)
    }
}

impl From<&CrossVersionObjectReference> for TargetRef {
    fn from(r: &CrossVersionObjectReference) -> Self {
        Self::new(r.api_version.clone().unwrap_or_default(), &r.kind, &r.name)
    }
}

/// A resolved targetRef.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The pod selector. [`Selector::nothing`] is upstream's `labels.Nothing()` (a
    /// well-known object without a selector, a CronJob whose job template has no labels):
    /// a valid target whose selector matches no pod.
    pub selector: Selector,
    /// The targetRef's kind.
    pub kind: String,
    /// The targetRef's apiVersion, as written.
    pub api_version: String,
    /// The target's name.
    pub name: String,
}

/// Which of upstream's two checks failed; it decides the condition message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading the selector (`Cannot read targetRef. Reason: …`).
    Selector,
    /// Checking that the target is topmost (`Error checking if target … is a topmost …`).
    Topmost,
}

/// Why a targetRef does not resolve. `target` is the targetRef as `apiVersion.Kind/name`;
/// `reason` is the error text upstream puts into the condition message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetError {
    /// The target (or, at [`Stage::Topmost`], a well-known ancestor) does not exist.
    NotFound {
        /// The targetRef.
        target: String,
        /// E.g. `Deployment ns/web does not exist`.
        reason: String,
        /// Where.
        stage: Stage,
    },
    /// The target is owned by a well-known or scalable controller.
    HasParent {
        /// The targetRef.
        target: String,
        /// The topmost such ancestor, `apiVersion.Kind/name`.
        parent: String,
    },
    /// The kind is not well-known and has no `/scale` subresource (or discovery does not
    /// know it).
    Unsupported {
        /// The targetRef.
        target: String,
        /// E.g. `Unhandled targetRef v1 / ConfigMap / x, last error …`.
        reason: String,
    },
    /// The selector (or the targetRef's apiVersion) cannot be parsed, or `/scale` reports an
    /// empty selector.
    Invalid {
        /// The targetRef.
        target: String,
        /// What is wrong.
        reason: String,
    },
    /// Any other permanent failure: the API refused (e.g. 403), a cycle in the owner chain,
    /// a `Node` owner, an owner kind unknown to discovery.
    Failed {
        /// The targetRef.
        target: String,
        /// What is wrong.
        reason: String,
        /// Where.
        stage: Stage,
    },
    /// The API server could not answer now (timeout, connection error, 401, 408, 429, 5xx).
    Transient {
        /// The targetRef.
        target: String,
        /// What happened.
        reason: String,
        /// Where.
        stage: Stage,
    },
}

impl TargetError {
    /// True for failures that say nothing about the target (try again later).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }

    /// The stage whose check failed.
    pub fn stage(&self) -> Stage {
        match self {
            Self::NotFound { stage, .. }
            | Self::Failed { stage, .. }
            | Self::Transient { stage, .. } => *stage,
            Self::Unsupported { .. } | Self::Invalid { .. } => Stage::Selector,
            Self::HasParent { .. } => Stage::Topmost,
        }
    }

    /// The targetRef, `apiVersion.Kind/name`.
    pub fn target(&self) -> &str {
        match self {
            Self::NotFound { target, .. }
            | Self::HasParent { target, .. }
            | Self::Unsupported { target, .. }
            | Self::Invalid { target, .. }
            | Self::Failed { target, .. }
            | Self::Transient { target, .. } => target,
        }
    }

    /// The `ConfigUnsupported` condition message, worded as upstream's recommender does.
    pub fn condition_message(&self) -> String {
        match self {
            Self::HasParent { target, .. } => format!(
                "The target {target} has a parent controller but it should point to a topmost \
                 well-known or scalable controller"
            ),
            Self::NotFound { target, reason, .. }
            | Self::Unsupported { target, reason }
            | Self::Invalid { target, reason }
            | Self::Failed { target, reason, .. }
            | Self::Transient { target, reason, .. } => match self.stage() {
                Stage::Selector => format!("Cannot read targetRef. Reason: {reason}"),
                Stage::Topmost => format!(
                    "Error checking if target {target} is a topmost well-known or scalable \
                     controller: {reason}"
                ),
            },
        }
    }
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.condition_message())
    }
}

impl std::error::Error for TargetError {}

/// Cache timings of a [`TargetResolver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolverOptions {
    /// A result older than this is not served before a refresh was tried (younger ones are
    /// served while a background refresh runs). Default 10 min.
    pub cache_ttl: Duration,
    /// Results younger than this are served without an API call. Default 1 min.
    pub refresh_after: Duration,
    /// How long a permanent failure is served from the cache, and how long to wait after a
    /// transient failure before asking again. Default 10 s.
    pub error_ttl: Duration,
    /// Time limit of each API request. Default 10 s.
    pub request_timeout: Duration,
    /// How long the discovery of an API group is reused. Default 5 min (upstream resets its
    /// REST mapper every 5 minutes).
    pub discovery_ttl: Duration,
    /// Entries not asked for during this long are dropped (the VPA is gone). Default 1 h
    /// (upstream's scale cache lifetime); keep it well above the recommender interval.
    pub forget_after: Duration,
}

impl Default for ResolverOptions {
    fn default() -> Self {
        Self {
            cache_ttl: Duration::from_secs(600),
            refresh_after: Duration::from_secs(60),
            error_ttl: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            discovery_ttl: Duration::from_secs(300),
            forget_after: Duration::from_secs(3600),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Pure pieces: kinds, selectors, owner references.

/// The kinds upstream reads from informers, recognised by kind alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WellKnownKind {
    /// apps/v1 DaemonSet.
    DaemonSet,
    /// apps/v1 Deployment.
    Deployment,
    /// apps/v1 ReplicaSet.
    ReplicaSet,
    /// apps/v1 StatefulSet.
    StatefulSet,
    /// v1 ReplicationController.
    ReplicationController,
    /// batch/v1 Job.
    Job,
    /// batch/v1 CronJob.
    CronJob,
}

impl WellKnownKind {
    /// The well-known kind of this name, if it is one.
    pub fn from_kind(kind: &str) -> Option<Self> {
        Some(match kind {
            "DaemonSet" => Self::DaemonSet,
            "Deployment" => Self::Deployment,
            "ReplicaSet" => Self::ReplicaSet,
            "StatefulSet" => Self::StatefulSet,
            "ReplicationController" => Self::ReplicationController,
            "Job" => Self::Job,
            "CronJob" => Self::CronJob,
            _ => return None,
        })
    }

    /// The kind's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DaemonSet => "DaemonSet",
            Self::Deployment => "Deployment",
            Self::ReplicaSet => "ReplicaSet",
            Self::StatefulSet => "StatefulSet",
            Self::ReplicationController => "ReplicationController",
            Self::Job => "Job",
            Self::CronJob => "CronJob",
        }
    }
}

/// `metav1.LabelSelectorAsSelector`: `None` (no selector) is [`Selector::nothing`]; an
/// empty selector matches everything.
pub fn selector_from_label_selector(
    selector: Option<&LabelSelector>,
) -> Result<Selector, SelectorError> {
    let Some(ls) = selector else {
        return Ok(Selector::nothing());
    };
    let labels = ls
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str()));
    let expressions = ls.match_expressions.iter().flatten().map(|e| {
        (
            e.key.as_str(),
            e.operator.as_str(),
            e.values.clone().unwrap_or_default(),
        )
    });
    Selector::new(labels, expressions)
}

/// `LabelSelectorAsSelector(SetAsLabelSelector(set))`: a missing or empty map is
/// [`Selector::nothing`] (the API omits empty maps, and upstream's nil map gives Nothing).
pub fn selector_from_set(
    set: Option<&BTreeMap<String, String>>,
) -> Result<Selector, SelectorError> {
    match set {
        Some(m) if !m.is_empty() => {
            Selector::new(m.iter().map(|(k, v)| (k.as_str(), v.as_str())), [])
        }
        _ => Ok(Selector::nothing()),
    }
}

/// An object named by an owner reference (or the target itself).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ObjectRef {
    api_version: String,
    kind: String,
    name: String,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}/{}", self.api_version, self.kind, self.name)
    }
}

/// The first owner reference with `controller: true`.
fn controller_of(owners: Option<&[OwnerReference]>) -> Option<ObjectRef> {
    owners?
        .iter()
        .find(|o| o.controller == Some(true))
        .map(|o| ObjectRef {
            api_version: o.api_version.clone(),
            kind: o.kind.clone(),
            name: o.name.clone(),
        })
}

/// What the resolver needs from a well-known object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectInfo {
    /// The pod selector, or why it is invalid.
    selector: Result<Selector, String>,
    /// The controller owner reference.
    controller: Option<ObjectRef>,
}

impl ObjectInfo {
    fn new(meta: &ObjectMeta, selector: Result<Selector, SelectorError>) -> Self {
        Self {
            selector: selector.map_err(|e| e.to_string()),
            controller: controller_of(meta.owner_references.as_deref()),
        }
    }
}

fn deployment_info(o: &Deployment) -> ObjectInfo {
    let sel = o.spec.as_ref().map(|s| &s.selector);
    ObjectInfo::new(&o.metadata, selector_from_label_selector(sel))
}

fn stateful_set_info(o: &StatefulSet) -> ObjectInfo {
    let sel = o.spec.as_ref().map(|s| &s.selector);
    ObjectInfo::new(&o.metadata, selector_from_label_selector(sel))
}

fn daemon_set_info(o: &DaemonSet) -> ObjectInfo {
    let sel = o.spec.as_ref().map(|s| &s.selector);
    ObjectInfo::new(&o.metadata, selector_from_label_selector(sel))
}

fn replica_set_info(o: &ReplicaSet) -> ObjectInfo {
    let sel = o.spec.as_ref().map(|s| &s.selector);
    ObjectInfo::new(&o.metadata, selector_from_label_selector(sel))
}

fn job_info(o: &Job) -> ObjectInfo {
    let sel = o.spec.as_ref().and_then(|s| s.selector.as_ref());
    ObjectInfo::new(&o.metadata, selector_from_label_selector(sel))
}

fn cron_job_info(o: &CronJob) -> ObjectInfo {
    let labels = o
        .spec
        .as_ref()
        .and_then(|s| s.job_template.spec.as_ref())
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.as_ref());
    ObjectInfo::new(&o.metadata, selector_from_set(labels))
}

fn replication_controller_info(o: &ReplicationController) -> ObjectInfo {
    let set = o.spec.as_ref().and_then(|s| s.selector.as_ref());
    ObjectInfo::new(&o.metadata, selector_from_set(set))
}

/// What the resolver needs from a `/scale` subresource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScaleInfo {
    /// `status.selector`.
    selector: Option<String>,
    /// The Scale object's controller owner reference.
    controller: Option<ObjectRef>,
}

/// A failed GET, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FetchError {
    /// HTTP 404; the server's message.
    NotFound(String),
    /// Worth retrying; what happened.
    Transient(String),
    /// Anything else; what happened.
    Failed(String),
}

/// A failed `/scale` lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScaleError {
    /// Discovery does not know the group/kind; upstream's REST mapper message.
    NoKind(String),
    /// The resource has no `scale` subresource (or is cluster-scoped).
    NoScale,
    /// The GET of discovery or of `/scale` failed.
    Fetch(FetchError),
}

/// Where objects come from: the API server ([`KubeSource`]) or, in tests, a table.
pub(crate) trait Source: Clone + Send + Sync + 'static {
    /// GET a well-known object.
    fn object(
        &self,
        namespace: &str,
        kind: WellKnownKind,
        name: &str,
        now: Instant,
    ) -> impl Future<Output = Result<ObjectInfo, FetchError>> + Send;

    /// Discover `group`/`kind` and GET the object's `/scale`.
    fn scale(
        &self,
        namespace: &str,
        group: &str,
        kind: &str,
        name: &str,
        now: Instant,
    ) -> impl Future<Output = Result<ScaleInfo, ScaleError>> + Send;
}

/// `schema.ParseGroupVersion(apiVersion).Group`.
fn parse_group(api_version: &str) -> Result<&str, String> {
    if api_version.is_empty() || api_version == "/" {
        return Ok("");
    }
    match api_version.matches('/').count() {
        0 => Ok(""),
        1 => Ok(api_version.split('/').next().unwrap_or_default()),
        _ => Err(format!("unexpected GroupVersion string: {api_version}")),
    }
}

/// The error of reading a well-known object, at `stage`.
fn well_known_error(
    err: FetchError,
    kind: WellKnownKind,
    namespace: &str,
    name: &str,
    target: &str,
    stage: Stage,
) -> TargetError {
    let target = target.to_string();
    let kind = kind.as_str();
    match err {
        FetchError::NotFound(_) => TargetError::NotFound {
            target,
            reason: format!("{kind} {namespace}/{name} does not exist"),
            stage,
        },
        FetchError::Transient(m) => TargetError::Transient {
            target,
            reason: format!("{kind} {namespace}/{name} could not be read: {m}"),
            stage,
        },
        FetchError::Failed(m) => TargetError::Failed {
            target,
            reason: format!("{kind} {namespace}/{name} could not be read: {m}"),
            stage,
        },
    }
}

/// Upstream's wrapper of every `/scale` failure.
fn unhandled(api_version: &str, kind: &str, name: &str, last_error: &str) -> String {
    format!("Unhandled targetRef {api_version} / {kind} / {name}, last error {last_error}")
}

/// Resolves one targetRef without a cache: the selector, then the topmost check.
pub(crate) async fn fetch_target<S: Source>(
    source: &S,
    namespace: &str,
    target: &TargetRef,
    now: Instant,
) -> Result<Resolved, TargetError> {
    let shown = target.to_string();
    let (selector, mut next) = match WellKnownKind::from_kind(&target.kind) {
        Some(kind) => {
            let info = source
                .object(namespace, kind, &target.name, now)
                .await
                .map_err(|e| {
                    well_known_error(e, kind, namespace, &target.name, &shown, Stage::Selector)
                })?;
            let selector = info.selector.map_err(|reason| TargetError::Invalid {
                target: shown.clone(),
                reason,
            })?;
            (selector, info.controller)
        }
        None => {
            let wrap = |m: &str| unhandled(&target.api_version, &target.kind, &target.name, m);
            let group =
                parse_group(&target.api_version).map_err(|reason| TargetError::Invalid {
                    target: shown.clone(),
                    reason,
                })?;
            let scale = source
                .scale(namespace, group, &target.kind, &target.name, now)
                .await
                .map_err(|e| {
                    let target = shown.clone();
                    match e {
                        ScaleError::NoKind(m) => TargetError::Unsupported {
                            target,
                            reason: wrap(&m),
                        },
                        ScaleError::NoScale => TargetError::Unsupported {
                            target,
                            reason: wrap(NO_SCALE_SUBRESOURCE),
                        },
                        ScaleError::Fetch(FetchError::NotFound(m)) => TargetError::NotFound {
                            target,
                            reason: wrap(&m),
                            stage: Stage::Selector,
                        },
                        ScaleError::Fetch(FetchError::Transient(m)) => TargetError::Transient {
                            target,
                            reason: wrap(&m),
                            stage: Stage::Selector,
                        },
                        ScaleError::Fetch(FetchError::Failed(m)) => TargetError::Failed {
                            target,
                            reason: wrap(&m),
                            stage: Stage::Selector,
                        },
                    }
                })?;
            let text = scale.selector.unwrap_or_default();
            if text.is_empty() {
                return Err(TargetError::Invalid {
                    target: shown,
                    reason: wrap(&format!(
                        "Resource {namespace}/{} has an empty selector for scale sub-resource",
                        target.name
                    )),
                });
            }
            let selector = Selector::parse(&text).map_err(|e| TargetError::Invalid {
                target: shown.clone(),
                reason: wrap(&e.to_string()),
            })?;
            (selector, scale.controller)
        }
    };

    // The topmost check: walk the controller owner references.
    let topmost_failed = |reason: String| TargetError::Failed {
        target: shown.clone(),
        reason,
        stage: Stage::Topmost,
    };
    let mut top: Option<ObjectRef> = None;
    let mut visited: HashSet<ObjectRef> = HashSet::new();
    visited.insert(ObjectRef {
        api_version: target.api_version.clone(),
        kind: target.kind.clone(),
        name: target.name.clone(),
    });
    while let Some(owner) = next.take() {
        if !visited.insert(owner.clone()) {
            return Err(topmost_failed(
                "Cycle detected in ownership chain".to_string(),
            ));
        }
        if let Some(kind) = WellKnownKind::from_kind(&owner.kind) {
            let info = source
                .object(namespace, kind, &owner.name, now)
                .await
                .map_err(|e| {
                    well_known_error(e, kind, namespace, &owner.name, &shown, Stage::Topmost)
                })?;
            next = info.controller;
            top = Some(owner);
            continue;
        }
        let wrap = |m: &str| unhandled(&owner.api_version, &owner.kind, &owner.name, m);
        if owner.kind == "Node" {
            return Err(topmost_failed(wrap("node is not a valid owner")));
        }
        let group = parse_group(&owner.api_version).map_err(&topmost_failed)?;
        match source
            .scale(namespace, group, &owner.kind, &owner.name, now)
            .await
        {
            Ok(scale) => {
                next = scale.controller;
                top = Some(owner);
            }
            // Upstream: a 404 of the owner's /scale ends the walk (the owner is neither
            // well-known nor scalable, or it is gone).
            Err(ScaleError::NoScale | ScaleError::Fetch(FetchError::NotFound(_))) => {}
            Err(ScaleError::NoKind(m) | ScaleError::Fetch(FetchError::Failed(m))) => {
                return Err(topmost_failed(wrap(&m)));
            }
            Err(ScaleError::Fetch(FetchError::Transient(m))) => {
                return Err(TargetError::Transient {
                    target: shown.clone(),
                    reason: wrap(&m),
                    stage: Stage::Topmost,
                });
            }
        }
    }
    if let Some(parent) = top {
        return Err(TargetError::HasParent {
            target: shown,
            parent: parent.to_string(),
        });
    }
    Ok(Resolved {
        selector,
        kind: target.kind.clone(),
        api_version: target.api_version.clone(),
        name: target.name.clone(),
    })
}

// ---------------------------------------------------------------------------------------
// The cache state machine (pure: explicit `now`).

/// Cache key: (namespace, apiVersion, kind, name).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    namespace: String,
    target: TargetRef,
}

impl CacheKey {
    fn new(namespace: &str, target: &TargetRef) -> Self {
        Self {
            namespace: namespace.to_string(),
            target: target.clone(),
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    /// The last good result and when it was fetched.
    good: Option<(Resolved, Instant)>,
    /// The last failure since then and when it happened.
    failure: Option<(TargetError, Instant)>,
    /// When it was last asked for.
    last_used: Instant,
    /// When a background refresh was started, if one runs.
    refreshing: Option<Instant>,
}

/// What to do for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Answer from the cache, no API call.
    Cached(Result<Resolved, TargetError>),
    /// Answer with this (stale) result now; refresh in the background.
    ServeStaleAndRefresh(Resolved),
    /// Fetch now; answer with [`TargetCache::record`]'s result.
    Fetch,
}

/// Results per targetRef; see the module documentation for the rules.
#[derive(Debug)]
pub(crate) struct TargetCache {
    opts: ResolverOptions,
    entries: HashMap<CacheKey, Entry>,
    last_prune: Option<Instant>,
}

impl TargetCache {
    pub(crate) fn new(opts: ResolverOptions) -> Self {
        Self {
            opts,
            entries: HashMap::new(),
            last_prune: None,
        }
    }

    /// Decides how to answer a request at `now` (and notes the use).
    pub(crate) fn plan(&mut self, key: &CacheKey, now: Instant) -> Plan {
        self.prune(now);
        let opts = self.opts;
        let Some(e) = self.entries.get_mut(key) else {
            return Plan::Fetch;
        };
        e.last_used = now;
        if let Some((err, at)) = &e.failure
            && now.saturating_duration_since(*at) < opts.error_ttl
        {
            return Plan::Cached(match (&e.good, err.is_transient()) {
                (Some((good, _)), true) => Ok(good.clone()),
                _ => Err(err.clone()),
            });
        }
        let Some((good, at)) = &e.good else {
            return Plan::Fetch;
        };
        let age = now.saturating_duration_since(*at);
        if age < opts.refresh_after {
            return Plan::Cached(Ok(good.clone()));
        }
        if age < opts.cache_ttl {
            let busy = e
                .refreshing
                .is_some_and(|t| now.saturating_duration_since(t) < opts.refresh_after);
            if busy {
                return Plan::Cached(Ok(good.clone()));
            }
            e.refreshing = Some(now);
            return Plan::ServeStaleAndRefresh(good.clone());
        }
        Plan::Fetch
    }

    /// Records the outcome of a fetch started at `now`; returns the answer: the new result,
    /// or on a transient failure the last good result if there is one.
    pub(crate) fn record(
        &mut self,
        key: &CacheKey,
        outcome: Result<Resolved, TargetError>,
        now: Instant,
    ) -> Result<Resolved, TargetError> {
        let e = self.entries.entry(key.clone()).or_insert(Entry {
            good: None,
            failure: None,
            last_used: now,
            refreshing: None,
        });
        e.refreshing = None;
        e.last_used = e.last_used.max(now);
        match outcome {
            Ok(r) => {
                e.good = Some((r.clone(), now));
                e.failure = None;
                Ok(r)
            }
            Err(err) if err.is_transient() => {
                e.failure = Some((err.clone(), now));
                match &e.good {
                    Some((good, _)) => {
                        tracing::warn!(
                            namespace = %key.namespace,
                            target = %key.target,
                            error = %err,
                            "targetRef could not be refreshed; keeping the last good selector"
                        );
                        Ok(good.clone())
                    }
                    None => Err(err),
                }
            }
            Err(err) => {
                e.good = None;
                e.failure = Some((err.clone(), now));
                Err(err)
            }
        }
    }

    /// `Some(true)`: the last answer was good (possibly kept over transient failures);
    /// `Some(false)`: the last answer was a permanent failure; `None`: not known.
    pub(crate) fn exists(&self, key: &CacheKey) -> Option<bool> {
        let e = self.entries.get(key)?;
        if e.good.is_some() {
            return Some(true);
        }
        match &e.failure {
            Some((err, _)) if !err.is_transient() => Some(false),
            _ => None,
        }
    }

    /// Drops entries not asked for during `forget_after` (at most once per `refresh_after`).
    fn prune(&mut self, now: Instant) {
        if self
            .last_prune
            .is_some_and(|t| now.saturating_duration_since(t) < self.opts.refresh_after)
        {
            return;
        }
        self.last_prune = Some(now);
        let ttl = self.opts.forget_after;
        self.entries.retain(|_, e| {
            e.refreshing.is_some() || now.saturating_duration_since(e.last_used) < ttl
        });
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

// ---------------------------------------------------------------------------------------
// The resolver: cache + source.

struct Core<S> {
    source: S,
    cache: Mutex<TargetCache>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<S: Source> Core<S> {
    fn new(source: S, opts: ResolverOptions) -> Self {
        Self {
            source,
            cache: Mutex::new(TargetCache::new(opts)),
        }
    }

    async fn resolve(
        self: &Arc<Self>,
        namespace: &str,
        target: &TargetRef,
        now: Instant,
    ) -> Result<Resolved, TargetError> {
        let key = CacheKey::new(namespace, target);
        let plan = lock(&self.cache).plan(&key, now);
        match plan {
            Plan::Cached(answer) => answer,
            Plan::ServeStaleAndRefresh(stale) => match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    let core = Arc::clone(self);
                    handle.spawn(async move {
                        let outcome =
                            fetch_target(&core.source, &key.namespace, &key.target, now).await;
                        let _ = lock(&core.cache).record(&key, outcome, now);
                    });
                    Ok(stale)
                }
                Err(_) => {
                    let outcome = fetch_target(&self.source, namespace, target, now).await;
                    lock(&self.cache).record(&key, outcome, now)
                }
            },
            Plan::Fetch => {
                let outcome = fetch_target(&self.source, namespace, target, now).await;
                lock(&self.cache).record(&key, outcome, now)
            }
        }
    }

    fn exists_cached(&self, namespace: &str, target: &TargetRef) -> Option<bool> {
        lock(&self.cache).exists(&CacheKey::new(namespace, target))
    }
}

/// Resolves targetRefs to pod selectors through the API server, with the cache described in
/// the module documentation. Cheap to clone (shared state).
#[derive(Clone)]
pub struct TargetResolver {
    core: Arc<Core<KubeSource>>,
}

impl TargetResolver {
    /// A resolver using `client` (its RBAC needs `get` on the well-known kinds, on
    /// `*/scale` of scalable kinds, and discovery).
    pub fn new(client: kube::Client, opts: ResolverOptions) -> Self {
        let source = KubeSource {
            inner: Arc::new(KubeInner {
                client,
                opts,
                groups: Mutex::new(HashMap::new()),
            }),
        };
        Self {
            core: Arc::new(Core::new(source, opts)),
        }
    }

    /// The selector of `target` (in `namespace`), after checking that the target is a
    /// topmost well-known or scalable controller; from the cache when fresh. On a transient
    /// failure the last good result is returned if there is one.
    pub async fn resolve(
        &self,
        namespace: &str,
        target: &TargetRef,
        now: Instant,
    ) -> Result<Resolved, TargetError> {
        self.core.resolve(namespace, target, now).await
    }

    /// Whether the target is known to exist as a valid target, from the cache only (no API
    /// call): `Some(true)` after a good answer (kept over transient failures), `Some(false)`
    /// after a permanent failure, `None` when never resolved or only transient failures.
    pub fn exists_cached(&self, namespace: &str, target: &TargetRef) -> Option<bool> {
        self.core.exists_cached(namespace, target)
    }
}

// ---------------------------------------------------------------------------------------
// The API server source.

/// Discovered API groups by name, with the time of discovery.
type GroupCache = HashMap<String, (Option<Arc<ApiGroup>>, Instant)>;

struct KubeInner {
    client: kube::Client,
    opts: ResolverOptions,
    /// Discovery per API group: the group, or `None` when the server does not serve it.
    groups: Mutex<GroupCache>,
}

#[derive(Clone)]
struct KubeSource {
    inner: Arc<KubeInner>,
}

/// Classifies a client error; the message is the server's (Go's `StatusError.Error()`).
fn classify(err: kube::Error) -> FetchError {
    match err {
        kube::Error::Api(s) => {
            let message = if s.message.is_empty() {
                format!("the server responded with HTTP {}", s.code)
            } else {
                s.message.clone()
            };
            match s.code {
                404 => FetchError::NotFound(message),
                401 | 408 | 429 | 500..=599 => FetchError::Transient(message),
                _ => FetchError::Failed(message),
            }
        }
        e @ (kube::Error::HyperError(_)
        | kube::Error::Service(_)
        | kube::Error::ReadEvents(_)
        | kube::Error::Auth(_)) => FetchError::Transient(e.to_string()),
        e => FetchError::Failed(e.to_string()),
    }
}

async fn with_timeout<T>(
    limit: Duration,
    what: &str,
    fut: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, FetchError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(classify(e)),
        Err(_) => Err(FetchError::Transient(format!(
            "{what}: no answer within {limit:?}"
        ))),
    }
}

async fn get_typed<K>(
    client: kube::Client,
    namespace: &str,
    name: &str,
    limit: Duration,
) -> Result<K, FetchError>
where
    K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client, namespace);
    with_timeout(limit, "GET", api.get(name)).await
}

/// Finds `kind` in a discovered group: the preferred version first, then the others (as a
/// REST mapper does); returns the resource and whether it has a namespaced `/scale`.
fn find_kind(group: &ApiGroup, kind: &str) -> Option<(ApiResource, bool)> {
    let found = group.recommended_kind(kind).or_else(|| {
        group.versions().find_map(|v| {
            group
                .versioned_resources(v)
                .into_iter()
                .find(|(ar, _)| ar.kind == kind)
        })
    })?;
    let (ar, caps) = found;
    let scalable = caps.scope == Scope::Namespaced
        && caps
            .subresources
            .iter()
            .any(|(sub, _)| sub.plural == "scale");
    Some((ar, scalable))
}

impl KubeInner {
    /// Discovery of `group`, cached for `discovery_ttl`; a kind missing from a cached group
    /// refreshes it if it is older than `error_ttl` (a CRD may just have been installed).
    async fn discover(
        &self,
        group: &str,
        kind: &str,
        now: Instant,
    ) -> Result<(ApiResource, bool), ScaleError> {
        let cached = lock(&self.groups).get(group).cloned();
        if let Some((g, at)) = &cached {
            let age = now.saturating_duration_since(*at);
            let hit = g.as_ref().and_then(|g| find_kind(g, kind));
            match hit {
                Some(found) if age < self.opts.discovery_ttl => return Ok(found),
                None if age < self.opts.error_ttl => return Err(no_kind(group, kind)),
                _ => {}
            }
        }
        let limit = self.opts.request_timeout;
        let fetched =
            tokio::time::timeout(limit, kube::discovery::group(&self.client, group)).await;
        let g = match fetched {
            Ok(Ok(g)) => Some(Arc::new(g)),
            Ok(Err(kube::Error::Discovery(
                DiscoveryError::MissingApiGroup(_) | DiscoveryError::EmptyApiGroup(_),
            ))) => None,
            Ok(Err(e)) => match classify(e) {
                FetchError::NotFound(_) => None,
                other => return Err(ScaleError::Fetch(other)),
            },
            Err(_) => {
                return Err(ScaleError::Fetch(FetchError::Transient(format!(
                    "discovery of group {group:?}: no answer within {limit:?}"
                ))));
            }
        };
        lock(&self.groups).insert(group.to_string(), (g.clone(), now));
        g.and_then(|g| find_kind(&g, kind))
            .ok_or_else(|| no_kind(group, kind))
    }
}

/// Upstream's REST mapper message for an unknown group/kind.
fn no_kind(group: &str, kind: &str) -> ScaleError {
    ScaleError::NoKind(format!("no matches for kind {kind:?} in group {group:?}"))
}

impl Source for KubeSource {
    async fn object(
        &self,
        namespace: &str,
        kind: WellKnownKind,
        name: &str,
        _now: Instant,
    ) -> Result<ObjectInfo, FetchError> {
        let c = self.inner.client.clone();
        let t = self.inner.opts.request_timeout;
        tracing::debug!(
            namespace,
            kind = kind.as_str(),
            name,
            "GET targetRef object"
        );
        Ok(match kind {
            WellKnownKind::Deployment => {
                deployment_info(&get_typed::<Deployment>(c, namespace, name, t).await?)
            }
            WellKnownKind::StatefulSet => {
                stateful_set_info(&get_typed::<StatefulSet>(c, namespace, name, t).await?)
            }
            WellKnownKind::DaemonSet => {
                daemon_set_info(&get_typed::<DaemonSet>(c, namespace, name, t).await?)
            }
            WellKnownKind::ReplicaSet => {
                replica_set_info(&get_typed::<ReplicaSet>(c, namespace, name, t).await?)
            }
            WellKnownKind::Job => job_info(&get_typed::<Job>(c, namespace, name, t).await?),
            WellKnownKind::CronJob => {
                cron_job_info(&get_typed::<CronJob>(c, namespace, name, t).await?)
            }
            WellKnownKind::ReplicationController => replication_controller_info(
                &get_typed::<ReplicationController>(c, namespace, name, t).await?,
            ),
        })
    }

    async fn scale(
        &self,
        namespace: &str,
        group: &str,
        kind: &str,
        name: &str,
        now: Instant,
    ) -> Result<ScaleInfo, ScaleError> {
        let (ar, scalable) = self.inner.discover(group, kind, now).await?;
        if !scalable {
            return Err(ScaleError::NoScale);
        }
        tracing::debug!(namespace, group, kind, name, "GET targetRef /scale");
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.inner.client.clone(), namespace, &ar);
        let scale = with_timeout(
            self.inner.opts.request_timeout,
            "GET /scale",
            api.get_scale(name),
        )
        .await
        .map_err(ScaleError::Fetch)?;
        Ok(ScaleInfo {
            selector: scale.status.and_then(|s| s.selector),
            controller: controller_of(scale.metadata.owner_references.as_deref()),
        })
    }
}

#[cfg(test)]
mod tests;
