//! The updater's caches of live objects, fed by watches (kube reflectors): the pods it may
//! update (upstream's field selector: scheduled, neither Succeeded nor Failed; managedFields
//! dropped) and the owners whose replica counts size the replica groups (ReplicaSets,
//! StatefulSets, ReplicationControllers and DaemonSets, their pod templates dropped). The VPAs,
//! their selectors and the LimitRanges come from vpa-core's VPA index.

use crate::view::OwnerRef;
use k8s_openapi::api::apps::v1::{DaemonSet, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::Client;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;
use std::future::Future;
use vpa_core::runtime::watch::scoped;

/// Upstream's pod field selector.
pub const POD_FIELD_SELECTOR: &str = "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed";

/// Read handles on the caches.
#[derive(Clone)]
pub struct Stores {
    /// Live pods.
    pub pods: Store<Pod>,
    replica_sets: Store<ReplicaSet>,
    stateful_sets: Store<StatefulSet>,
    controllers: Store<ReplicationController>,
    daemon_sets: Store<DaemonSet>,
}

fn reflect<K, F>(
    api: kube::Api<K>,
    config: watcher::Config,
    what: &'static str,
    strip: F,
) -> (Store<K>, impl Future<Output = ()> + Send + 'static)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
    F: FnMut(&mut K) + Send + 'static,
{
    let (reader, writer) = reflector::store();
    let run = vpa_core::runtime::watch::reflect(api, config, writer, strip, move |e| {
        tracing::warn!(what, "watch error (retrying): {e}");
    });
    (reader, run)
}

impl Stores {
    /// Starts the watches (in `namespace`, or all); returns the handles and the future that
    /// runs them (spawn it).
    pub fn start(
        client: &Client,
        namespace: Option<&str>,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (pods, p) = reflect(
            scoped::<Pod>(client, namespace),
            watcher::Config::default().fields(POD_FIELD_SELECTOR),
            "pods",
            |p: &mut Pod| p.metadata.managed_fields = None,
        );
        let (replica_sets, rs) = reflect(
            scoped::<ReplicaSet>(client, namespace),
            watcher::Config::default(),
            "replicasets",
            |o: &mut ReplicaSet| {
                o.metadata.managed_fields = None;
                if let Some(s) = o.spec.as_mut() {
                    s.template = None;
                }
            },
        );
        let (stateful_sets, ss) = reflect(
            scoped::<StatefulSet>(client, namespace),
            watcher::Config::default(),
            "statefulsets",
            |o: &mut StatefulSet| {
                o.metadata.managed_fields = None;
                if let Some(s) = o.spec.as_mut() {
                    s.template = Default::default();
                    s.volume_claim_templates = None;
                }
            },
        );
        let (controllers, rc) = reflect(
            scoped::<ReplicationController>(client, namespace),
            watcher::Config::default(),
            "replicationcontrollers",
            |o: &mut ReplicationController| {
                o.metadata.managed_fields = None;
                if let Some(s) = o.spec.as_mut() {
                    s.template = None;
                }
            },
        );
        let (daemon_sets, ds) = reflect(
            scoped::<DaemonSet>(client, namespace),
            watcher::Config::default(),
            "daemonsets",
            |o: &mut DaemonSet| {
                o.metadata.managed_fields = None;
                if let Some(s) = o.spec.as_mut() {
                    s.template = Default::default();
                }
            },
        );
        let run = async move {
            tokio::join!(p, rs, ss, rc, ds);
        };
        (
            Stores {
                pods,
                replica_sets,
                stateful_sets,
                controllers,
                daemon_sets,
            },
            run,
        )
    }

    /// Waits until every cache has listed once.
    pub async fn wait_synced(&self) -> Result<(), reflector::store::WriterDropped> {
        self.pods.wait_until_ready().await?;
        self.replica_sets.wait_until_ready().await?;
        self.stateful_sets.wait_until_ready().await?;
        self.controllers.wait_until_ready().await?;
        self.daemon_sets.wait_until_ready().await
    }

    /// The replica count of an owner, as [`crate::view::OwnerReplicas::count`] wants it.
    pub fn replicas(&self, namespace: &str, owner: &OwnerRef) -> Option<i32> {
        match owner.kind.as_str() {
            "ReplicaSet" => {
                self.replica_sets
                    .get(&ObjectRef::new(&owner.name).within(namespace))?
                    .spec
                    .as_ref()?
                    .replicas
            }
            "StatefulSet" => {
                self.stateful_sets
                    .get(&ObjectRef::new(&owner.name).within(namespace))?
                    .spec
                    .as_ref()?
                    .replicas
            }
            "ReplicationController" => {
                self.controllers
                    .get(&ObjectRef::new(&owner.name).within(namespace))?
                    .spec
                    .as_ref()?
                    .replicas
            }
            "DaemonSet" => Some(
                self.daemon_sets
                    .get(&ObjectRef::new(&owner.name).within(namespace))?
                    .status
                    .as_ref()?
                    .number_ready,
            ),
            _ => None,
        }
    }
}
