//! What the loop does to the cluster, behind the [`Actuator`] trait: evict a pod (Eviction
//! API, so the API server enforces PodDisruptionBudgets), resize a pod in place
//! (`pods/resize`, then the `vpaInPlaceUpdated` annotation), each with an Event on the pod and
//! on its VPA; plus the clock and the waits of the rate limiters, so that a test double can
//! run the loop without an API server or real time.
//!
//! [`KubeActuator`] is the real one. The request bodies ([`resize_body`],
//! [`annotation_body`]) and the event notes are pure functions.

use crate::action::{ContainerChange, EvictReason, ResizePatch, ResizeReason};
use crate::view::{IN_PLACE_UPDATED_ANNOTATION, PodView, STARTUP_BOOST_ANNOTATION_PREFIX, VpaView};
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{Api, EvictParams, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::{Map, Value, json};
use vpa_core::model::Resources;
use vpa_core::quantity::Quantity;
use vpa_core::time::Timestamp;

/// A refused or failed API call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiFailure {
    /// The HTTP status code; `None` when no response came.
    pub code: Option<u16>,
    /// The Status `reason` (`TooManyRequests`, `Forbidden`, …).
    pub reason: String,
    /// The `details.causes[].reason` values (the Go `CauseType`s).
    pub causes: Vec<String>,
    /// The message.
    pub message: String,
}

impl ApiFailure {
    /// From a kube error.
    pub fn from_kube(e: &kube::Error) -> Self {
        match e {
            kube::Error::Api(s) => ApiFailure {
                code: Some(s.code),
                reason: s.reason.clone(),
                causes: s
                    .details
                    .iter()
                    .flat_map(|d| d.causes.iter())
                    .map(|c| c.reason.clone())
                    .collect(),
                message: s.message.clone(),
            },
            other => ApiFailure {
                message: other.to_string(),
                ..ApiFailure::default()
            },
        }
    }

    /// A 429: a PodDisruptionBudget (or the API server's rate limit) says "not now".
    pub fn is_too_many_requests(&self) -> bool {
        self.code == Some(429)
    }
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.code {
            Some(c) => write!(f, "{c} {}: {}", self.reason, self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// The loop's outside world.
#[allow(async_fn_in_trait)]
pub trait Actuator {
    /// The current time.
    fn now(&self) -> Timestamp;
    /// Waits (a rate limiter's delay).
    async fn wait(&self, d: vpa_core::time::Duration);
    /// Evicts `pod` of `vpa`.
    async fn evict(
        &self,
        pod: &PodView,
        vpa: &VpaView,
        reason: EvictReason,
        changes: &[ContainerChange],
    ) -> Result<(), ApiFailure>;
    /// Resizes `pod` of `vpa` in place.
    async fn resize(
        &self,
        pod: &PodView,
        vpa: &VpaView,
        reason: ResizeReason,
        patch: &ResizePatch,
    ) -> Result<(), ApiFailure>;
}

fn cpu_text(m: i64) -> String {
    Quantity::from_millis(m).to_string()
}

fn memory_text(b: i64) -> String {
    Quantity::from_bytes(b).to_string()
}

fn resource_list(r: &Resources) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(c) = r.cpu {
        m.insert("cpu".into(), Value::String(cpu_text(c)));
    }
    if let Some(b) = r.memory {
        m.insert("memory".into(), Value::String(memory_text(b)));
    }
    m
}

/// The strategic-merge patch for `pods/resize`: the new requests and limits of each patched
/// container, by name (regular and init containers apart).
pub fn resize_body(patch: &ResizePatch) -> Value {
    let mut containers = Vec::new();
    let mut init = Vec::new();
    for c in &patch.containers {
        let mut resources = Map::new();
        if !c.resources.requests.is_empty() {
            resources.insert(
                "requests".into(),
                Value::Object(resource_list(&c.resources.requests)),
            );
        }
        if !c.resources.limits.is_empty() {
            resources.insert(
                "limits".into(),
                Value::Object(resource_list(&c.resources.limits)),
            );
        }
        let entry = json!({"name": c.container_name, "resources": resources});
        if c.init {
            init.push(entry);
        } else {
            containers.push(entry);
        }
    }
    let mut spec = Map::new();
    if !containers.is_empty() {
        spec.insert("containers".into(), Value::Array(containers));
    }
    if !init.is_empty() {
        spec.insert("initContainers".into(), Value::Array(init));
    }
    json!({ "spec": spec })
}

/// The merge patch on the pod after a resize: `vpaInPlaceUpdated: "true"`, and the expired
/// boost annotations removed.
pub fn annotation_body(patch: &ResizePatch) -> Value {
    let mut annotations = Map::new();
    annotations.insert(
        IN_PLACE_UPDATED_ANNOTATION.into(),
        Value::String("true".into()),
    );
    for c in &patch.remove_boost_annotations {
        annotations.insert(format!("{STARTUP_BOOST_ANNOTATION_PREFIX}{c}"), Value::Null);
    }
    json!({"metadata": {"annotations": annotations}})
}

fn amounts(r: &Resources) -> String {
    let cpu = r.cpu.map(cpu_text).unwrap_or_else(|| "-".into());
    let mem = r.memory.map(memory_text).unwrap_or_else(|| "-".into());
    format!("cpu {cpu}, memory {mem}")
}

/// `container: requests old → new` for each change, `; `-separated.
pub fn changes_note(changes: &[ContainerChange]) -> String {
    changes
        .iter()
        .map(|c| {
            format!(
                "{}: requests {} -> {}",
                c.container_name,
                amounts(&c.requests),
                amounts(&c.target)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The changes a resize makes, for its events.
pub fn resize_changes(pod: &PodView, patch: &ResizePatch) -> Vec<ContainerChange> {
    patch
        .containers
        .iter()
        .map(|c| ContainerChange {
            container_name: c.container_name.clone(),
            requests: pod
                .containers
                .iter()
                .find(|p| p.name == c.container_name && p.init == c.init)
                .map(|p| p.current().requests)
                .unwrap_or_default(),
            target: c.resources.requests,
        })
        .collect()
}

fn note(fixed: &str, changes: &[ContainerChange]) -> String {
    let extra = changes_note(changes);
    let mut s = if extra.is_empty() {
        fixed.to_string()
    } else {
        format!("{fixed} {extra}")
    };
    // Events API: a note is at most 1 kB.
    if s.len() > 1024 {
        let mut cut = 1021;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// The real actuator: the API server, tokio's clock.
pub struct KubeActuator {
    client: kube::Client,
    recorder: Recorder,
}

impl KubeActuator {
    /// Events are reported by `vpa-updater` on `instance` (the host name).
    pub fn new(client: kube::Client, instance: Option<String>) -> Self {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: "vpa-updater".into(),
                instance,
            },
        );
        Self { client, recorder }
    }

    fn pod_ref(pod: &PodView) -> ObjectReference {
        ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            namespace: Some(pod.namespace.clone()),
            name: Some(pod.name.clone()),
            uid: (!pod.uid.is_empty()).then(|| pod.uid.clone()),
            ..ObjectReference::default()
        }
    }

    fn vpa_ref(vpa: &VpaView) -> ObjectReference {
        ObjectReference {
            api_version: Some("autoscaling.k8s.io/v1".into()),
            kind: Some("VerticalPodAutoscaler".into()),
            namespace: Some(vpa.namespace.clone()),
            name: Some(vpa.name.clone()),
            ..ObjectReference::default()
        }
    }

    async fn publish(&self, reference: &ObjectReference, reason: &str, action: &str, note: String) {
        let ev = Event {
            type_: EventType::Normal,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, reference).await {
            tracing::warn!(reason, "cannot publish the event: {e}");
        }
    }
}

impl Actuator for KubeActuator {
    fn now(&self) -> Timestamp {
        wall_clock()
    }

    async fn wait(&self, d: vpa_core::time::Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(0);
        tokio::time::sleep(std::time::Duration::from_nanos(nanos)).await;
    }

    async fn evict(
        &self,
        pod: &PodView,
        vpa: &VpaView,
        _reason: EvictReason,
        changes: &[ContainerChange],
    ) -> Result<(), ApiFailure> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace);
        pods.evict(&pod.name, &EvictParams::default())
            .await
            .map_err(|e| ApiFailure::from_kube(&e))?;
        self.publish(
            &Self::pod_ref(pod),
            "EvictedByVPA",
            "Evict",
            note(
                "Pod was evicted by VPA Updater to apply resource recommendation.",
                changes,
            ),
        )
        .await;
        self.publish(
            &Self::vpa_ref(vpa),
            "EvictedPod",
            "Evict",
            note(
                &format!(
                    "VPA Updater evicted Pod {} to apply resource recommendation.",
                    pod.name
                ),
                changes,
            ),
        )
        .await;
        Ok(())
    }

    async fn resize(
        &self,
        pod: &PodView,
        vpa: &VpaView,
        _reason: ResizeReason,
        patch: &ResizePatch,
    ) -> Result<(), ApiFailure> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace);
        pods.patch_subresource(
            "resize",
            &pod.name,
            &PatchParams::default(),
            &Patch::Strategic(resize_body(patch)),
        )
        .await
        .map_err(|e| ApiFailure::from_kube(&e))?;
        // Upstream only logs a failure of the annotation patch.
        if let Err(e) = pods
            .patch(
                &pod.name,
                &PatchParams::default(),
                &Patch::Merge(annotation_body(patch)),
            )
            .await
        {
            tracing::warn!(pod = %pod.key(), "cannot annotate the resized pod: {e}");
        }
        let changes = resize_changes(pod, patch);
        self.publish(
            &Self::pod_ref(pod),
            "InPlaceResizedByVPA",
            "Resize",
            note("Pod was resized in place by VPA Updater.", &changes),
        )
        .await;
        self.publish(
            &Self::vpa_ref(vpa),
            "InPlaceResizedPod",
            "Resize",
            note(
                &format!("VPA Updater resized Pod {} in place.", pod.name),
                &changes,
            ),
        )
        .await;
        Ok(())
    }
}

/// The wall clock as a [`Timestamp`].
pub fn wall_clock() -> Timestamp {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Timestamp::from_unix_nanos(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::ContainerPatch;
    use crate::view::{ContainerResources, ContainerView};

    fn patch() -> ResizePatch {
        ResizePatch {
            containers: vec![
                ContainerPatch {
                    index: 0,
                    container_name: "app".into(),
                    init: false,
                    resources: ContainerResources {
                        requests: Resources::new(1500, 256 * 1024 * 1024),
                        limits: Resources {
                            cpu: Some(3000),
                            memory: None,
                        },
                    },
                },
                ContainerPatch {
                    index: 1,
                    container_name: "side".into(),
                    init: true,
                    resources: ContainerResources {
                        requests: Resources {
                            cpu: Some(100),
                            memory: None,
                        },
                        limits: Resources::default(),
                    },
                },
            ],
            remove_boost_annotations: vec!["app".into()],
        }
    }

    #[test]
    fn resize_body_patches_containers_by_name() {
        assert_eq!(
            resize_body(&patch()),
            json!({"spec": {
                "containers": [{"name": "app", "resources": {
                    "requests": {"cpu": "1500m", "memory": "256Mi"},
                    "limits": {"cpu": "3"}}}],
                "initContainers": [{"name": "side", "resources": {"requests": {"cpu": "100m"}}}]
            }})
        );
    }

    #[test]
    fn annotation_body_marks_and_unboosts() {
        assert_eq!(
            annotation_body(&patch()),
            json!({"metadata": {"annotations": {
                "vpaInPlaceUpdated": "true", "vpaCpuStartupBoost/app": null}}})
        );
    }

    #[test]
    fn notes_name_old_and_new_requests() {
        let pod = PodView {
            containers: vec![ContainerView {
                name: "app".into(),
                spec: ContainerResources {
                    requests: Resources::new(100, 1024),
                    limits: Resources::default(),
                },
                ..ContainerView::default()
            }],
            ..PodView::default()
        };
        let changes = resize_changes(&pod, &patch());
        assert_eq!(
            changes_note(&changes[..1]),
            "app: requests cpu 100m, memory 1Ki -> cpu 1500m, memory 256Mi"
        );
        assert_eq!(changes[1].requests, Resources::default());
        let long = note("x", &vec![changes[0].clone(); 40]);
        assert!(long.len() <= 1024 && long.ends_with("..."));
    }

    #[test]
    fn api_failures_keep_code_reason_and_causes() {
        let status: kube::core::Status = serde_json::from_value(json!({
            "status": "Failure", "code": 403, "reason": "Forbidden", "message": "no room",
            "details": {"causes": [{"reason": "NodeCapacity", "message": "m"}]}
        }))
        .unwrap_or_else(|_| kube::core::Status::failure("bad", "bad"));
        let f = ApiFailure::from_kube(&kube::Error::Api(Box::new(status)));
        assert_eq!(f.code, Some(403));
        assert_eq!(f.causes, vec!["NodeCapacity"]);
        assert!(!f.is_too_many_requests());
        assert_eq!(f.to_string(), "403 Forbidden: no room");
    }
}
