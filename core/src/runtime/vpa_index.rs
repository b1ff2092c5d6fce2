//! The in-memory VPA index the admission controller answers from: a [`VpaMatcher`] fed by
//! watches (VPAs, the controller owners of ReplicaSets and Jobs, LimitRanges) and by a
//! background loop that resolves each VPA's targetRef to a pod selector through
//! [`TargetResolver`] (cached; a transient failure keeps the last selector). Lookups take a
//! read lock and never call the API server.

use crate::api::vpa::{UpdateMode, VerticalPodAutoscaler};
use crate::checkpoint::from_time;
use crate::labels::LabelSet;
use crate::matcher::{ControllerRef, NoMatch, VpaMatcher, VpaRecord, is_well_known};
use crate::model::ObjectId;
use crate::runtime::target::{TargetRef, TargetResolver};
use crate::runtime::watch::{WatchBackoff, scoped};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::LimitRange;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The matcher's payload: the whole VPA object.
pub type Matcher = VpaMatcher<Arc<VerticalPodAutoscaler>>;

/// How often every VPA's selector is resolved again (the resolver's cache decides whether
/// that calls the API server).
pub const RESOLVE_INTERVAL: Duration = Duration::from_secs(10);

/// What must have happened before the index is ready: the VPA, ReplicaSet, Job and
/// LimitRange watches have listed, and every listed VPA's selector has been resolved once.
const READY_STEPS: usize = 5;

#[derive(Default)]
struct Shared {
    matcher: RwLock<Matcher>,
    limit_ranges: RwLock<HashMap<String, Arc<Vec<LimitRange>>>>,
    synced: AtomicUsize,
    vpas_listed: std::sync::atomic::AtomicBool,
    changed: Notify,
}

/// A cheap-to-clone handle on the index.
#[derive(Clone, Default)]
pub struct VpaIndex {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for VpaIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VpaIndex")
            .field("vpas", &self.read().len())
            .field("synced", &self.is_synced())
            .finish()
    }
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The controller owner reference of an object, if any.
pub fn controller_of(owners: Option<&[OwnerReference]>) -> Option<ControllerRef> {
    owners?
        .iter()
        .find(|o| o.controller == Some(true))
        .map(|o| ControllerRef::new(&o.kind, &o.name))
}

/// The matcher's view of a VPA: active unless its mode is `Off` without a startup boost.
pub fn record_of(vpa: VerticalPodAutoscaler) -> Option<VpaRecord<Arc<VerticalPodAutoscaler>>> {
    let ns = vpa.metadata.namespace.clone()?;
    let name = vpa.metadata.name.clone()?;
    let boost = vpa.spec.startup_boost.is_some()
        || vpa
            .spec
            .resource_policy
            .as_ref()
            .and_then(|p| p.container_policies.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.startup_boost.is_some()));
    let created = from_time(vpa.metadata.creation_timestamp.as_ref())
        .map(|t| t.unix_seconds())
        .unwrap_or(i64::MAX);
    Some(VpaRecord {
        id: ObjectId::new(ns.as_str(), name.as_str()),
        created,
        target: ControllerRef::new(&vpa.spec.target_ref.kind, &vpa.spec.target_ref.name),
        active: vpa.update_mode() != UpdateMode::Off || boost,
        data: Arc::new(vpa),
    })
}

impl VpaIndex {
    /// An empty index (fed by [`start`], or by hand in tests).
    pub fn new() -> Self {
        Self::default()
    }

    /// Read access to the matcher.
    pub fn read(&self) -> RwLockReadGuard<'_, Matcher> {
        read(&self.shared.matcher)
    }

    /// Write access to the matcher (tests, benchmarks; the watches otherwise).
    pub fn write(&self) -> RwLockWriteGuard<'_, Matcher> {
        write(&self.shared.matcher)
    }

    /// The VPA for a pod: see [`VpaMatcher::find`].
    pub fn find(
        &self,
        namespace: &str,
        labels: &LabelSet,
        controller: Option<&ControllerRef>,
    ) -> Result<Arc<VerticalPodAutoscaler>, NoMatch> {
        self.find_where(namespace, labels, controller, |_| true)
    }

    /// The VPA for a pod among those `keep` accepts: see [`VpaMatcher::find_where`].
    pub fn find_where(
        &self,
        namespace: &str,
        labels: &LabelSet,
        controller: Option<&ControllerRef>,
        keep: impl Fn(&VerticalPodAutoscaler) -> bool,
    ) -> Result<Arc<VerticalPodAutoscaler>, NoMatch> {
        self.read()
            .find_where(namespace, labels, controller, |r| keep(&r.data))
            .map(|r| r.data.clone())
    }

    /// The LimitRanges of a namespace.
    pub fn limit_ranges(&self, namespace: &str) -> Arc<Vec<LimitRange>> {
        read(&self.shared.limit_ranges)
            .get(namespace)
            .cloned()
            .unwrap_or_default()
    }

    /// Replaces the LimitRanges of a namespace (tests and the watch).
    pub fn set_limit_ranges(&self, namespace: &str, items: Vec<LimitRange>) {
        let mut l = write(&self.shared.limit_ranges);
        if items.is_empty() {
            l.remove(namespace);
        } else {
            l.insert(namespace.to_string(), Arc::new(items));
        }
    }

    /// Every watch has listed once.
    pub fn is_synced(&self) -> bool {
        self.shared.synced.load(Ordering::Acquire) >= READY_STEPS
    }

    fn mark_synced(&self) {
        self.shared.synced.fetch_add(1, Ordering::AcqRel);
    }
}

/// Where to watch.
#[derive(Debug, Clone, Default)]
pub struct IndexOptions {
    /// Only this namespace (`--vpa-object-namespace`); `None`: all.
    pub namespace: Option<String>,
}

/// Starts the index: returns it and the future that runs its watches and the selector loop
/// (spawn it; it ends only when dropped).
pub fn start(
    client: &Client,
    resolver: TargetResolver,
    opts: &IndexOptions,
) -> (
    VpaIndex,
    impl std::future::Future<Output = ()> + Send + 'static,
) {
    let index = VpaIndex::new();
    let ns = opts.namespace.as_deref();
    let vpa_api: Api<DynamicObject> = {
        let ar = ApiResource::erase::<VerticalPodAutoscaler>(&());
        match ns {
            Some(n) => Api::namespaced_with(client.clone(), n, &ar),
            None => Api::all_with(client.clone(), &ar),
        }
    };
    let vpas = watch_vpas(vpa_api, index.clone());
    let rs = watch_owners(
        scoped::<PartialObjectMeta<ReplicaSet>>(client, ns),
        "ReplicaSet",
        index.clone(),
    );
    let jobs = watch_owners(
        scoped::<PartialObjectMeta<Job>>(client, ns),
        "Job",
        index.clone(),
    );
    let lrs = watch_limit_ranges(scoped::<LimitRange>(client, ns), index.clone());
    let selectors = resolve_loop(resolver, index.clone());
    let run = async move {
        tokio::join!(vpas, rs, jobs, lrs, selectors);
    };
    (index, run)
}

/// Folds a watch's events: `apply` per object, `delete` per object, and after a (re)list
/// `retain` with the names seen. The first completed list marks the watch synced.
async fn fold_events<K, A, D, R>(
    stream: impl futures::Stream<Item = Result<Event<K>, watcher::Error>>,
    index: VpaIndex,
    what: &'static str,
    mut apply: A,
    mut delete: D,
    mut retain: R,
) where
    A: FnMut(K),
    D: FnMut(K),
    R: FnMut(HashSet<(String, String)>),
    K: kube::Resource,
{
    let mut listing: HashSet<(String, String)> = HashSet::new();
    let mut synced = false;
    futures::pin_mut!(stream);
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(Event::Apply(o)) => apply(o),
            Ok(Event::Delete(o)) => delete(o),
            Ok(Event::Init) => listing.clear(),
            Ok(Event::InitApply(o)) => {
                let m = o.meta();
                listing.insert((
                    m.namespace.clone().unwrap_or_default(),
                    m.name.clone().unwrap_or_default(),
                ));
                apply(o);
            }
            Ok(Event::InitDone) => {
                retain(std::mem::take(&mut listing));
                if !synced {
                    synced = true;
                    index.mark_synced();
                    tracing::debug!(what, "index watch synced");
                }
            }
            Err(e) => tracing::warn!(what, "watch error (retrying): {e}"),
        }
    }
}

async fn watch_vpas(api: Api<DynamicObject>, index: VpaIndex) {
    let stream = watcher::watcher(api, watcher::Config::default()).backoff(WatchBackoff::default());
    let (a, d, r) = (index.clone(), index.clone(), index.clone());
    fold_events(
        stream,
        index,
        "verticalpodautoscalers",
        move |o: DynamicObject| {
            let id = ObjectId::new(
                o.metadata.namespace.as_deref().unwrap_or_default(),
                o.metadata.name.as_deref().unwrap_or_default(),
            );
            let parsed = serde_json::to_value(&o)
                .and_then(serde_json::from_value::<VerticalPodAutoscaler>);
            match parsed.ok().and_then(record_of) {
                Some(rec) => a.write().upsert_vpa(rec),
                None => {
                    tracing::warn!(vpa = %format!("{}/{}", id.namespace, id.name),
                        "VPA cannot be read (invalid spec); pods of its target are admitted unchanged");
                    a.write().remove_vpa(&id);
                }
            }
            a.shared.changed.notify_one();
        },
        move |o: DynamicObject| {
            d.write().remove_vpa(&ObjectId::new(
                o.metadata.namespace.as_deref().unwrap_or_default(),
                o.metadata.name.as_deref().unwrap_or_default(),
            ));
        },
        move |seen| {
            r.write()
                .retain_vpas(|id| seen.contains(&(id.namespace.to_string(), id.name.to_string())));
            r.shared.vpas_listed.store(true, Ordering::Release);
            r.shared.changed.notify_one();
        },
    )
    .await;
}

fn meta_key(m: &ObjectMeta) -> (String, String) {
    (
        m.namespace.clone().unwrap_or_default(),
        m.name.clone().unwrap_or_default(),
    )
}

async fn watch_owners<K>(api: Api<PartialObjectMeta<K>>, kind: &'static str, index: VpaIndex)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let stream = watcher::watcher(api, watcher::Config::default()).backoff(WatchBackoff::default());
    let (a, d, r) = (index.clone(), index.clone(), index.clone());
    fold_events(
        stream,
        index,
        kind,
        move |o: PartialObjectMeta<K>| {
            let (ns, name) = meta_key(&o.metadata);
            let owner = controller_of(o.metadata.owner_references.as_deref());
            a.write()
                .set_owner(&ns, ControllerRef::new(kind, name), owner);
        },
        move |o: PartialObjectMeta<K>| {
            let (ns, name) = meta_key(&o.metadata);
            d.write().remove_owner(&ns, &ControllerRef::new(kind, name));
        },
        move |seen| {
            r.write().retain_owners(kind, |ns, name| {
                seen.contains(&(ns.to_string(), name.to_string()))
            });
        },
    )
    .await;
}

async fn watch_limit_ranges(api: Api<LimitRange>, index: VpaIndex) {
    // Small objects, few per namespace: keep them per namespace, replaced on every change.
    let stream = watcher::watcher(api, watcher::Config::default()).backoff(WatchBackoff::default());
    let all: Arc<std::sync::Mutex<HashMap<(String, String), LimitRange>>> = Arc::default();
    let publish = |index: &VpaIndex, all: &HashMap<(String, String), LimitRange>, ns: &str| {
        // By name, so that "the last default seen" (upstream's merge rule) is stable.
        let mut named: Vec<(&String, &LimitRange)> = all
            .iter()
            .filter(|((n, _), _)| n == ns)
            .map(|((_, name), lr)| (name, lr))
            .collect();
        named.sort_by(|a, b| a.0.cmp(b.0));
        let items: Vec<LimitRange> = named.into_iter().map(|(_, lr)| lr.clone()).collect();
        index.set_limit_ranges(ns, items);
    };
    let (a, d, r) = (index.clone(), index.clone(), index.clone());
    let (all_a, all_d, all_r) = (all.clone(), all.clone(), all.clone());
    fold_events(
        stream,
        index,
        "limitranges",
        move |o: LimitRange| {
            let key = meta_key(&o.metadata);
            let mut m = all_a
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let ns = key.0.clone();
            m.insert(key, o);
            publish(&a, &m, &ns);
        },
        move |o: LimitRange| {
            let key = meta_key(&o.metadata);
            let mut m = all_d
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let ns = key.0.clone();
            m.remove(&key);
            publish(&d, &m, &ns);
        },
        move |seen| {
            let mut m = all_r
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let namespaces: HashSet<String> = m.keys().map(|k| k.0.clone()).collect();
            m.retain(|k, _| seen.contains(k));
            for ns in namespaces {
                publish(&r, &m, &ns);
            }
        },
    )
    .await;
}

/// Resolves the selectors of every VPA: at once after VPA changes, and every
/// [`RESOLVE_INTERVAL`]. The first full pass after the VPA watch has listed counts towards
/// readiness.
async fn resolve_loop(resolver: TargetResolver, index: VpaIndex) {
    let mut counted = false;
    loop {
        if index.shared.vpas_listed.load(Ordering::Acquire) {
            let vpas: Vec<(ObjectId, TargetRef)> = index
                .read()
                .vpas()
                .map(|r| (r.id.clone(), TargetRef::from(&r.data.spec.target_ref)))
                .collect();
            for (id, target) in vpas {
                let result = resolver
                    .resolve(&id.namespace, &target, Instant::now())
                    .await;
                let mut m = index.write();
                match result {
                    Ok(resolved) => {
                        if !is_well_known(&resolved.kind) {
                            m.mark_scalable(&resolved.kind);
                        }
                        m.set_selector(&id, Some(resolved.selector));
                    }
                    // The resolver hands back the last good selector when it has one.
                    Err(e) if e.is_transient() => {
                        tracing::debug!(vpa = %format!("{}/{}", id.namespace, id.name), "target not resolved for now: {}", e.condition_message());
                    }
                    Err(e) => {
                        tracing::debug!(vpa = %format!("{}/{}", id.namespace, id.name), "target not resolvable: {}", e.condition_message());
                        m.set_selector(&id, None);
                    }
                }
            }
            if !counted {
                counted = true;
                index.mark_synced();
            }
        }
        tokio::select! {
            () = index.shared.changed.notified() => {}
            () = tokio::time::sleep(RESOLVE_INTERVAL) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn vpa(mode: &str, boost: bool) -> VerticalPodAutoscaler {
        let mut spec = json!({
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "updatePolicy": {"updateMode": mode}
        });
        if boost {
            spec["startupBoost"] = json!({"cpu": {"type": "Factor", "factor": 2}});
        }
        serde_json::from_value(json!({
            "apiVersion": "autoscaling.k8s.io/v1", "kind": "VerticalPodAutoscaler",
            "metadata": {"name": "v", "namespace": "ns", "creationTimestamp": "2026-01-02T03:04:05Z"},
            "spec": spec
        }))
        .unwrap()
    }

    #[test]
    fn records_know_when_a_vpa_acts_at_admission() {
        let r = record_of(vpa("Initial", false)).unwrap();
        assert!(r.active);
        assert_eq!(r.target, ControllerRef::new("Deployment", "web"));
        assert_eq!(r.created, 1_767_323_045);
        assert!(!record_of(vpa("Off", false)).unwrap().active);
        assert!(
            record_of(vpa("Off", true)).unwrap().active,
            "Off with a startup boost acts"
        );
        let mut nameless = vpa("Initial", false);
        nameless.metadata.namespace = None;
        assert!(record_of(nameless).is_none());
    }

    #[test]
    fn only_the_controller_owner_counts() {
        let refs: Vec<OwnerReference> = serde_json::from_value(json!([
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "1"},
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "2", "controller": true}
        ]))
        .unwrap();
        assert_eq!(
            controller_of(Some(&refs)),
            Some(ControllerRef::new("ReplicaSet", "web-1"))
        );
        assert_eq!(controller_of(Some(&refs[..1])), None);
        assert_eq!(controller_of(None), None);
    }

    #[test]
    fn the_index_answers_from_memory() {
        let index = VpaIndex::new();
        assert!(!index.is_synced());
        index
            .write()
            .upsert_vpa(record_of(vpa("Recreate", false)).unwrap());
        index.write().set_selector(
            &ObjectId::new("ns", "v"),
            Some(crate::labels::Selector::new([("app", "web")], []).unwrap()),
        );
        index.write().set_owner(
            "ns",
            ControllerRef::new("ReplicaSet", "web-1"),
            Some(ControllerRef::new("Deployment", "web")),
        );
        let labels: LabelSet = [("app".to_string(), "web".to_string())]
            .into_iter()
            .collect();
        let found = index
            .find(
                "ns",
                &labels,
                Some(&ControllerRef::new("ReplicaSet", "web-1")),
            )
            .unwrap();
        assert_eq!(found.metadata.name.as_deref(), Some("v"));
        assert!(index.limit_ranges("ns").is_empty());
        index.set_limit_ranges("ns", vec![LimitRange::default()]);
        assert_eq!(index.limit_ranges("ns").len(), 1);
        index.set_limit_ranges("ns", vec![]);
        assert!(index.limit_ranges("ns").is_empty());
    }
}
