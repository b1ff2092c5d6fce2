//! Which VPA governs a pod (upstream's admission matcher, `resource/vpa/matcher.go`): walk the
//! pod's controller owners up to the topmost well-known or scalable controller, take the VPAs
//! whose targetRef names it, keep those whose resolved selector matches the pod's labels, and
//! choose the oldest. Pure: the edge feeds VPAs, resolved selectors and controller owner
//! references in from watches; lookups never call the API server.

use crate::labels::{LabelSet, Selector};
use crate::model::ObjectId;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Upstream's well-known controller kinds (read from informers, not through `/scale`).
pub const WELL_KNOWN_KINDS: [&str; 7] = [
    "DaemonSet",
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "ReplicationController",
    "Job",
    "CronJob",
];

/// The longest owner chain followed; longer chains are treated as cycles.
const MAX_OWNER_DEPTH: usize = 16;

/// A controller owner reference: the kind and name of an object in the pod's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ControllerRef {
    /// `kind`.
    pub kind: String,
    /// `name`.
    pub name: String,
}

impl ControllerRef {
    /// A reference from kind and name.
    pub fn new(kind: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            name: name.into(),
        }
    }
}

/// One VPA as the matcher sees it, carrying the caller's data (e.g. the whole object).
#[derive(Debug, Clone)]
pub struct VpaRecord<T> {
    /// Namespace and name.
    pub id: ObjectId,
    /// `metadata.creationTimestamp` in Unix seconds (older wins).
    pub created: i64,
    /// `spec.targetRef` kind and name (the API version is not compared, as upstream).
    pub target: ControllerRef,
    /// Whether it can change pods at admission: update mode other than `Off`, or a startup
    /// boost.
    pub active: bool,
    /// The caller's data.
    pub data: T,
}

/// Why a pod has no VPA (for debug logs and counters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoMatch {
    /// The pod has no controller owner reference.
    NoController,
    /// The owner chain loops or is implausibly long.
    OwnerCycle,
    /// An owner of kind `Node` (static/mirror pods).
    NodeOwner,
    /// No VPA targets the pod's topmost controller.
    NoVpaForTarget(ControllerRef),
    /// VPAs target it, but none is active with a resolved selector that matches the pod.
    NoSelectorMatch(ControllerRef),
}

/// The index: VPAs by namespace and target, their selectors, and the controller owners of the
/// well-known objects.
#[derive(Debug, Clone)]
pub struct VpaMatcher<T> {
    vpas: HashMap<ObjectId, Arc<VpaRecord<T>>>,
    by_target: HashMap<(Arc<str>, ControllerRef), Vec<ObjectId>>,
    selectors: HashMap<ObjectId, Selector>,
    /// Controller owner of each known well-known object, by namespace, kind and name.
    owners: HashMap<(Arc<str>, ControllerRef), Option<ControllerRef>>,
    /// Kinds outside [`WELL_KNOWN_KINDS`] known to have `/scale` (e.g. Argo `Rollout`).
    scalable: HashSet<String>,
}

impl<T> Default for VpaMatcher<T> {
    fn default() -> Self {
        Self {
            vpas: HashMap::new(),
            by_target: HashMap::new(),
            selectors: HashMap::new(),
            owners: HashMap::new(),
            scalable: HashSet::new(),
        }
    }
}

/// Whether upstream reads this kind from an informer.
pub fn is_well_known(kind: &str) -> bool {
    WELL_KNOWN_KINDS.contains(&kind)
}

impl<T> VpaMatcher<T> {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of VPAs.
    pub fn len(&self) -> usize {
        self.vpas.len()
    }

    /// No VPAs.
    pub fn is_empty(&self) -> bool {
        self.vpas.is_empty()
    }

    /// The VPA with this id.
    pub fn get(&self, id: &ObjectId) -> Option<&Arc<VpaRecord<T>>> {
        self.vpas.get(id)
    }

    /// Every VPA.
    pub fn vpas(&self) -> impl Iterator<Item = &Arc<VpaRecord<T>>> {
        self.vpas.values()
    }

    /// Adds or replaces a VPA. A changed target drops the resolved selector.
    pub fn upsert_vpa(&mut self, record: VpaRecord<T>) {
        let id = record.id.clone();
        if let Some(old) = self.vpas.get(&id)
            && old.target != record.target
        {
            let key = (old.id.namespace.clone(), old.target.clone());
            self.unlink(&key, &id);
            self.selectors.remove(&id);
        }
        let key = (id.namespace.clone(), record.target.clone());
        let ids = self.by_target.entry(key).or_default();
        if !ids.contains(&id) {
            ids.push(id.clone());
        }
        self.vpas.insert(id, Arc::new(record));
    }

    fn unlink(&mut self, key: &(Arc<str>, ControllerRef), id: &ObjectId) {
        if let Some(ids) = self.by_target.get_mut(key) {
            ids.retain(|x| x != id);
            if ids.is_empty() {
                self.by_target.remove(key);
            }
        }
    }

    /// Removes a VPA.
    pub fn remove_vpa(&mut self, id: &ObjectId) {
        if let Some(old) = self.vpas.remove(id) {
            let key = (old.id.namespace.clone(), old.target.clone());
            self.unlink(&key, id);
        }
        self.selectors.remove(id);
    }

    /// Keeps only the VPAs `keep` accepts (after a relist).
    pub fn retain_vpas(&mut self, keep: impl Fn(&ObjectId) -> bool) {
        let gone: Vec<ObjectId> = self.vpas.keys().filter(|id| !keep(id)).cloned().collect();
        for id in gone {
            self.remove_vpa(&id);
        }
    }

    /// Sets (`Some`) or clears (`None`: not resolvable) a VPA's pod selector. A VPA
    /// without a selector matches no pod.
    pub fn set_selector(&mut self, id: &ObjectId, selector: Option<Selector>) {
        match selector {
            Some(s) if self.vpas.contains_key(id) => {
                self.selectors.insert(id.clone(), s);
            }
            _ => {
                self.selectors.remove(id);
            }
        }
    }

    /// The resolved selector of a VPA.
    pub fn selector(&self, id: &ObjectId) -> Option<&Selector> {
        self.selectors.get(id)
    }

    /// Records a well-known object and its controller owner (`None`: it has none).
    pub fn set_owner(
        &mut self,
        namespace: &str,
        object: ControllerRef,
        owner: Option<ControllerRef>,
    ) {
        self.owners.insert((Arc::from(namespace), object), owner);
    }

    /// Forgets a well-known object.
    pub fn remove_owner(&mut self, namespace: &str, object: &ControllerRef) {
        self.owners.remove(&(Arc::from(namespace), object.clone()));
    }

    /// Keeps only the owner records of `kind` that `keep` accepts (after a relist).
    pub fn retain_owners(&mut self, kind: &str, keep: impl Fn(&str, &str) -> bool) {
        self.owners
            .retain(|(ns, obj), _| obj.kind != kind || keep(ns, &obj.name));
    }

    /// Number of owner records.
    pub fn owner_count(&self) -> usize {
        self.owners.len()
    }

    /// Marks a custom kind as having `/scale` (learned when a targetRef of that kind
    /// resolved through it).
    pub fn mark_scalable(&mut self, kind: &str) {
        if !is_well_known(kind) {
            self.scalable.insert(kind.to_string());
        }
    }

    fn counts_as_controller(&self, kind: &str) -> bool {
        is_well_known(kind) || self.scalable.contains(kind)
    }

    /// The topmost well-known or scalable controller above `owner`, following the recorded
    /// owners. An object missing from the index ends the walk there, except a ReplicaSet
    /// named `<deployment>-<pod-template-hash>` (a Deployment's ReplicaSet not seen yet),
    /// whose Deployment is inferred from the pod's `pod-template-hash` label.
    pub fn topmost(
        &self,
        namespace: &str,
        owner: &ControllerRef,
        pod_template_hash: Option<&str>,
    ) -> Result<ControllerRef, NoMatch> {
        let ns: Arc<str> = Arc::from(namespace);
        let mut current = owner.clone();
        let mut seen = HashSet::new();
        for _ in 0..MAX_OWNER_DEPTH {
            if current.kind == "Node" {
                return Err(NoMatch::NodeOwner);
            }
            if !seen.insert(current.clone()) {
                return Err(NoMatch::OwnerCycle);
            }
            let parent = match self.owners.get(&(ns.clone(), current.clone())) {
                Some(p) => p.clone(),
                None if current.kind == "ReplicaSet" => pod_template_hash
                    .filter(|h| !h.is_empty())
                    .and_then(|h| current.name.strip_suffix(h))
                    .and_then(|n| n.strip_suffix('-'))
                    .filter(|n| !n.is_empty())
                    .map(|n| ControllerRef::new("Deployment", n)),
                None => None,
            };
            match parent {
                Some(p) if p.kind == "Node" => return Err(NoMatch::NodeOwner),
                Some(p) if self.counts_as_controller(&p.kind) => current = p,
                _ => return Ok(current),
            }
        }
        Err(NoMatch::OwnerCycle)
    }

    /// The VPA for a pod in `namespace` with `labels` and controller owner `controller`:
    /// among the active VPAs targeting the topmost controller whose selector matches the
    /// labels, the oldest (then the smallest name).
    pub fn find(
        &self,
        namespace: &str,
        labels: &LabelSet,
        controller: Option<&ControllerRef>,
    ) -> Result<&Arc<VpaRecord<T>>, NoMatch> {
        self.find_where(namespace, labels, controller, |_| true)
    }

    /// As [`VpaMatcher::find`], among the active VPAs that `keep` also accepts (the updater
    /// only considers VPAs in an updating mode, as upstream's `GetControllingVPAForPod` does
    /// over its filtered list).
    pub fn find_where(
        &self,
        namespace: &str,
        labels: &LabelSet,
        controller: Option<&ControllerRef>,
        keep: impl Fn(&VpaRecord<T>) -> bool,
    ) -> Result<&Arc<VpaRecord<T>>, NoMatch> {
        let owner = controller.ok_or(NoMatch::NoController)?;
        let hash = labels.get("pod-template-hash").map(String::as_str);
        let top = self.topmost(namespace, owner, hash)?;
        let key = (Arc::<str>::from(namespace), top);
        let Some(ids) = self.by_target.get(&key) else {
            return Err(NoMatch::NoVpaForTarget(key.1));
        };
        ids.iter()
            .filter_map(|id| self.vpas.get(id))
            .filter(|v| v.active && keep(v))
            .filter(|v| self.selectors.get(&v.id).is_some_and(|s| s.matches(labels)))
            .min_by(|a, b| {
                a.created
                    .cmp(&b.created)
                    .then_with(|| a.id.name.cmp(&b.id.name))
            })
            .ok_or(NoMatch::NoSelectorMatch(key.1))
    }
}

#[cfg(test)]
mod tests;
