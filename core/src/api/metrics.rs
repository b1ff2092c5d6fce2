//! Pod usage from the resource metrics API (`metrics.k8s.io/v1beta1`, served by metrics-server).
//!
//! These types are read-only views of `PodMetrics`: `Api::<PodMetrics>::namespaced(client, ns)`
//! or `Api::<PodMetrics>::all(client)` then `list` or `get`, as for any other resource. The
//! metrics API cannot be watched, and it is not a CRD, so nothing here has a schema.

use std::borrow::Cow;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Resource;
use kube::core::ObjectList;
use serde::{Deserialize, Serialize, Serializer};

use super::vpa::{RESOURCE_CPU, RESOURCE_MEMORY, ResourceList};

/// The API group of the resource metrics API.
pub const METRICS_GROUP: &str = "metrics.k8s.io";
/// The version of the resource metrics API that metrics-server serves.
pub const METRICS_VERSION: &str = "v1beta1";

/// The resource usage of the containers of one pod, averaged over a short window.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodMetrics {
    /// The pod's name, namespace and labels (metrics-server copies the pod's labels).
    #[serde(default)]
    pub metadata: ObjectMeta,

    /// The end of the window the usage was measured over.
    #[serde(default)]
    pub timestamp: Option<Time>,

    /// The length of the window the usage was averaged over, such as `30s`.
    #[serde(default)]
    pub window: Option<kube::core::Duration>,

    /// The usage of each container of the pod.
    #[serde(default)]
    pub containers: Vec<ContainerMetrics>,
}

/// A list of [`PodMetrics`], as a `list` call returns it.
pub type PodMetricsList = ObjectList<PodMetrics>;

impl PodMetrics {
    /// The measurement window as a [`Duration`], if it is set and not negative.
    pub fn window_duration(&self) -> Option<Duration> {
        self.window
            .filter(|window| !window.is_negative())
            .map(Duration::from)
    }

    /// The usage of the container with this name, if the pod has one.
    pub fn container(&self, name: &str) -> Option<&ContainerMetrics> {
        self.containers
            .iter()
            .find(|container| container.name == name)
    }
}

impl Serialize for PodMetrics {
    /// Writes the object with its `apiVersion` and `kind`, as the metrics API does for a `get`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Repr<'a> {
            api_version: &'a str,
            kind: &'a str,
            metadata: &'a ObjectMeta,
            #[serde(skip_serializing_if = "Option::is_none")]
            timestamp: Option<&'a Time>,
            #[serde(skip_serializing_if = "Option::is_none")]
            window: Option<&'a kube::core::Duration>,
            containers: &'a [ContainerMetrics],
        }
        let api_version = PodMetrics::api_version(&());
        let kind = PodMetrics::kind(&());
        Repr {
            api_version: &api_version,
            kind: &kind,
            metadata: &self.metadata,
            timestamp: self.timestamp.as_ref(),
            window: self.window.as_ref(),
            containers: &self.containers,
        }
        .serialize(serializer)
    }
}

impl Resource for PodMetrics {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "PodMetrics".into()
    }

    fn group(_: &()) -> Cow<'_, str> {
        METRICS_GROUP.into()
    }

    fn version(_: &()) -> Cow<'_, str> {
        METRICS_VERSION.into()
    }

    fn plural(_: &()) -> Cow<'_, str> {
        "pods".into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The resource usage of one container.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerMetrics {
    /// The container's name.
    #[serde(default)]
    pub name: String,

    /// The usage per resource: `cpu` in cores, `memory` (the working set) in bytes.
    #[serde(default)]
    pub usage: ResourceList,
}

impl ContainerMetrics {
    /// The CPU usage, if reported.
    pub fn cpu(&self) -> Option<&Quantity> {
        self.usage.get(RESOURCE_CPU)
    }

    /// The memory usage (working set), if reported.
    pub fn memory(&self) -> Option<&Quantity> {
        self.usage.get(RESOURCE_MEMORY)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde_json::json;

    #[test]
    fn resource_identity() {
        assert_eq!(PodMetrics::group(&()), "metrics.k8s.io");
        assert_eq!(PodMetrics::version(&()), "v1beta1");
        assert_eq!(PodMetrics::api_version(&()), "metrics.k8s.io/v1beta1");
        assert_eq!(PodMetrics::plural(&()), "pods");
        assert_eq!(
            PodMetrics::url_path(&(), Some("default")),
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods"
        );
        assert_eq!(
            PodMetrics::url_path(&(), None),
            "/apis/metrics.k8s.io/v1beta1/pods"
        );
    }

    #[test]
    fn reads_a_metrics_server_list() {
        // The shape metrics-server returns for `GET /apis/metrics.k8s.io/v1beta1/pods`.
        let list: PodMetricsList = serde_json::from_value(json!({
            "kind": "PodMetricsList",
            "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {},
            "items": [{
                "metadata": {
                    "name": "hamster-7d9f",
                    "namespace": "default",
                    "creationTimestamp": "2025-06-01T12:00:05Z",
                    "labels": {"app": "hamster"}
                },
                "timestamp": "2025-06-01T12:00:00Z",
                "window": "10.5s",
                "containers": [{"name": "hamster", "usage": {"cpu": "501234n", "memory": "5480Ki"}}]
            }]
        }))
        .unwrap();
        let pod = &list.items[0];
        assert_eq!(pod.window_duration(), Some(Duration::from_millis(10_500)));
        let container = pod.container("hamster").unwrap();
        assert_eq!(container.cpu(), Some(&Quantity("501234n".into())));
        assert_eq!(container.memory(), Some(&Quantity("5480Ki".into())));
        assert!(pod.container("other").is_none());

        let written = serde_json::to_value(pod).unwrap();
        assert_eq!(written["apiVersion"], "metrics.k8s.io/v1beta1");
        assert_eq!(written["kind"], "PodMetrics");
        let reread: PodMetrics = serde_json::from_value(written).unwrap();
        assert_eq!(&reread, pod);
    }
}
