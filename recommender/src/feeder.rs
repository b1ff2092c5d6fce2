//! Conversion of Kubernetes objects into the engine's inputs (upstream
//! `input/cluster_feeder.go`, `input/oom/observer.go`, `input/metrics`): VPAs read leniently
//! from raw JSON (a malformed VPA becomes a `ConfigUnsupported` message, never a stalled
//! watch), recommender and namespace selection, pods, PodMetrics, OOM kills from pod updates
//! and eviction events, and HorizontalPodAutoscaler conflicts. Pure: objects in, values out.

use crate::engine::{ContainerUsage, OomEvent, PodInput};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Event, Pod};
use std::collections::{BTreeMap, BTreeSet};
use vpa_core::api::metrics::PodMetrics;
use vpa_core::api::vpa::{VerticalPodAutoscalerSpec, VerticalPodAutoscalerStatus};
use vpa_core::checkpoint::from_time;
use vpa_core::labels::LabelSet;
use vpa_core::model::{ObjectId, PodPhase, Resources};
use vpa_core::policy::PodResourcePolicy;
use vpa_core::quantity;

/// Upstream's default recommender name.
pub const DEFAULT_RECOMMENDER: &str = "default";

/// A VPA object as read from the API, before its target is resolved.
#[derive(Debug, Clone)]
pub struct ParsedVpa {
    /// Namespace and name.
    pub id: ObjectId,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// `metadata.annotations`.
    pub annotations: BTreeMap<String, String>,
    /// The spec, when it could be read.
    pub spec: Option<VerticalPodAutoscalerSpec>,
    /// The converted resource policy.
    pub policy: Option<PodResourcePolicy>,
    /// Why the spec cannot be used (ConfigUnsupported message).
    pub config_error: Option<String>,
    /// The observed status (when it could be read).
    pub status: Option<VerticalPodAutoscalerStatus>,
}

/// Reads a VPA from its JSON form. Never fails: problems are reported in `config_error`.
pub fn parse_vpa(obj: &serde_json::Value) -> Option<ParsedVpa> {
    let meta = obj.get("metadata")?;
    let name = meta.get("name")?.as_str()?;
    let namespace = meta
        .get("namespace")
        .and_then(|n| n.as_str())
        .unwrap_or("default");
    let generation = meta.get("generation").and_then(serde_json::Value::as_i64);
    let annotations = meta
        .get("annotations")
        .and_then(|a| a.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let status = obj
        .get("status")
        .and_then(|s| serde_json::from_value::<VerticalPodAutoscalerStatus>(s.clone()).ok());
    let mut out = ParsedVpa {
        id: ObjectId::new(namespace, name),
        generation,
        annotations,
        spec: None,
        policy: None,
        config_error: None,
        status,
    };
    let spec = match obj.get("spec") {
        None => {
            out.config_error = Some("The VPA has no spec".to_string());
            return Some(out);
        }
        Some(s) => s,
    };
    match serde_json::from_value::<VerticalPodAutoscalerSpec>(spec.clone()) {
        Ok(spec) => {
            if let Some(p) = &spec.resource_policy {
                match vpa_core::api::convert::pod_resource_policy(p) {
                    Ok(p) => out.policy = Some(p),
                    Err(e) => out.config_error = Some(format!("Invalid spec: {e}")),
                }
            }
            out.spec = Some(spec);
        }
        Err(e) => out.config_error = Some(format!("Invalid spec: {e}")),
    }
    Some(out)
}

/// The recommender named in a raw VPA's `spec.recommenders` (first entry), read without
/// requiring the rest of the spec to be valid.
pub fn raw_recommender_name(obj: &serde_json::Value) -> Option<String> {
    obj.pointer("/spec/recommenders/0/name")
        .and_then(|n| n.as_str())
        .map(str::to_string)
}

/// Whether a recommender named `ours` handles a VPA that names `named` (§1.15): the default
/// recommender takes VPAs naming nothing or `default`, others only VPAs naming them.
pub fn selects_recommender(ours: &str, named: Option<&str>) -> bool {
    match named {
        None => ours == DEFAULT_RECOMMENDER,
        Some(n) => n == ours,
    }
}

/// `--vpa-object-namespace` / `--ignored-vpa-object-namespaces`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceFilter {
    /// Only this namespace, when set.
    pub only: Option<String>,
    /// Namespaces to skip.
    pub ignored: BTreeSet<String>,
}

impl NamespaceFilter {
    /// Whether objects in `ns` are handled.
    pub fn allows(&self, ns: &str) -> bool {
        self.only.as_deref().is_none_or(|o| o == ns) && !self.ignored.contains(ns)
    }
}

fn resource_amounts(
    list: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
) -> Resources {
    let mut r = Resources::default();
    if let Some(list) = list {
        if let Some(q) = list.get("cpu").and_then(|q| quantity::parse(&q.0).ok()) {
            r.cpu = Some(q.milli_value());
        }
        if let Some(q) = list.get("memory").and_then(|q| quantity::parse(&q.0).ok()) {
            r.memory = Some(q.value());
        }
    }
    r
}

fn spec_requests(c: &Container) -> Resources {
    resource_amounts(c.resources.as_ref().and_then(|r| r.requests.as_ref()))
}

fn status_requests(s: &ContainerStatus) -> Option<Resources> {
    s.resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .map(|r| resource_amounts(Some(r)))
}

/// The requests of a container: the status (actual, after in-place resizes) when the kubelet
/// reports them, else the spec.
pub fn container_requests(pod: &Pod, container: &str) -> Resources {
    let status = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == container))
        .and_then(status_requests);
    status.unwrap_or_else(|| {
        pod.spec
            .as_ref()
            .and_then(|s| s.containers.iter().find(|c| c.name == container))
            .map(spec_requests)
            .unwrap_or_default()
    })
}

/// The phase of a pod as the model sees it (Unknown and missing count as running).
pub fn pod_phase(pod: &Pod) -> PodPhase {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") => PodPhase::Pending,
        Some("Succeeded") => PodPhase::Succeeded,
        Some("Failed") => PodPhase::Failed,
        _ => PodPhase::Running,
    }
}

/// A pod as the engine's input (`None` without a name).
pub fn pod_input(pod: &Pod) -> Option<PodInput> {
    let name = pod.metadata.name.as_deref()?;
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let labels: LabelSet = pod
        .metadata
        .labels
        .as_ref()
        .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let containers = pod
        .spec
        .as_ref()
        .map(|s| {
            s.containers
                .iter()
                .map(|c| (c.name.clone(), container_requests(pod, &c.name)))
                .collect()
        })
        .unwrap_or_default();
    Some(PodInput {
        id: ObjectId::new(namespace, name),
        labels,
        phase: pod_phase(pod),
        containers,
    })
}

/// Names of a pod's init containers (their samples are dropped, as upstream does).
pub fn init_container_names(pod: &Pod) -> BTreeSet<String> {
    pod.spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .map(|ics| ics.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default()
}

/// Why a PodMetrics item could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageProblem {
    /// The pod.
    pub pod: String,
    /// What is wrong.
    pub message: String,
}

/// The container usage in PodMetrics items. CPU in millicores, memory in bytes, both at the
/// item's timestamp; items without a timestamp and unparseable quantities are reported.
pub fn usage_from_metrics(items: &[PodMetrics]) -> (Vec<ContainerUsage>, Vec<UsageProblem>) {
    let mut usage = Vec::with_capacity(items.len() * 2);
    let mut problems = Vec::new();
    for item in items {
        let name = item.metadata.name.as_deref().unwrap_or_default();
        let namespace = item.metadata.namespace.as_deref().unwrap_or("default");
        let Some(ts) = from_time(item.timestamp.as_ref()) else {
            problems.push(UsageProblem {
                pod: format!("{namespace}/{name}"),
                message: "PodMetrics has no timestamp".into(),
            });
            continue;
        };
        let pod = ObjectId::new(namespace, name);
        for c in &item.containers {
            let mut parse = |res: &str| -> Option<i64> {
                let q = c.usage.get(res)?;
                match quantity::parse(&q.0) {
                    Ok(v) => Some(if res == "cpu" {
                        v.milli_value()
                    } else {
                        v.value()
                    }),
                    Err(e) => {
                        problems.push(UsageProblem {
                            pod: format!("{namespace}/{name}"),
                            message: format!("container {}: {res} usage {:?}: {e}", c.name, q.0),
                        });
                        None
                    }
                }
            };
            let cpu = parse("cpu");
            let memory = parse("memory");
            usage.push(ContainerUsage {
                pod: pod.clone(),
                container: c.name.clone(),
                timestamp: ts,
                cpu_millis: cpu,
                memory_bytes: memory,
            });
        }
    }
    (usage, problems)
}

/// How a container was terminated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Termination {
    /// `reason`, e.g. OOMKilled.
    pub reason: Option<String>,
    /// `finishedAt`.
    pub finished_at: Option<vpa_core::time::Timestamp>,
}

/// The part of a container status the OOM observer reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStatusRecord {
    /// Container name.
    pub name: String,
    /// Restarts.
    pub restart_count: i32,
    /// State is running.
    pub running: bool,
    /// State is terminated.
    pub terminated: Option<Termination>,
    /// Last state is terminated.
    pub last_terminated: Option<Termination>,
}

/// A pod as the recommender keeps it: the engine input plus what the metrics and OOM steps
/// need. A few hundred bytes, where a full `Pod` object takes several kilobytes.
#[derive(Debug, Clone)]
pub struct PodRecord {
    /// The engine's view.
    pub input: PodInput,
    /// Init container names (their metrics are dropped).
    pub init_containers: BTreeSet<String>,
    /// Container statuses.
    pub statuses: Vec<ContainerStatusRecord>,
}

fn termination(
    t: Option<&k8s_openapi::api::core::v1::ContainerStateTerminated>,
) -> Option<Termination> {
    t.map(|t| Termination {
        reason: t.reason.clone(),
        finished_at: from_time(t.finished_at.as_ref()),
    })
}

/// The record of a pod (`None` without a name).
pub fn pod_record(pod: &Pod) -> Option<PodRecord> {
    let input = pod_input(pod)?;
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| {
            cs.iter()
                .map(|c| ContainerStatusRecord {
                    name: c.name.clone(),
                    restart_count: c.restart_count,
                    running: c.state.as_ref().is_some_and(|s| s.running.is_some()),
                    terminated: termination(c.state.as_ref().and_then(|s| s.terminated.as_ref())),
                    last_terminated: termination(
                        c.last_state.as_ref().and_then(|s| s.terminated.as_ref()),
                    ),
                })
                .collect()
        })
        .unwrap_or_default();
    Some(PodRecord {
        input,
        init_containers: init_container_names(pod),
        statuses,
    })
}

impl PodRecord {
    fn memory_request(&self, container: &str) -> i64 {
        self.input
            .containers
            .iter()
            .find(|(n, _)| n == container)
            .and_then(|(_, r)| r.memory)
            .unwrap_or(0)
    }

    fn status(&self, container: &str) -> Option<&ContainerStatusRecord> {
        self.statuses.iter().find(|s| s.name == container)
    }
}

fn is_oom(t: Option<&Termination>) -> bool {
    t.is_some_and(|t| t.reason.as_deref() == Some("OOMKilled"))
}

/// OOM kills visible between two versions of a pod (upstream `OnUpdate`): a container newly
/// terminated with reason OOMKilled (memory = its request in the new pod, time =
/// finishedAt), or one that restarted and whose last termination was an OOM kill (request in
/// the old pod).
pub fn ooms_between(old: &PodRecord, new: &PodRecord) -> Vec<OomEvent> {
    let mut out = Vec::new();
    let id = &new.input.id;
    for cs in &new.statuses {
        let old_cs = old.status(&cs.name);
        if is_oom(cs.terminated.as_ref()) {
            let was_terminated = old_cs.is_some_and(|o| o.terminated.is_some());
            let restarted = old_cs.is_some_and(|o| cs.restart_count > o.restart_count);
            if (!was_terminated || restarted)
                && let Some(ts) = cs.terminated.as_ref().and_then(|t| t.finished_at)
            {
                out.push(OomEvent {
                    pod: id.clone(),
                    container: cs.name.clone(),
                    timestamp: ts,
                    memory: new.memory_request(&cs.name),
                });
            }
            continue;
        }
        if let Some(o) = old_cs
            && o.running
            && cs.running
            && cs.restart_count > o.restart_count
            && is_oom(cs.last_terminated.as_ref())
            && let Some(ts) = cs.last_terminated.as_ref().and_then(|t| t.finished_at)
        {
            out.push(OomEvent {
                pod: id.clone(),
                container: cs.name.clone(),
                timestamp: ts,
                memory: old.memory_request(&cs.name),
            });
        }
    }
    out
}

/// [`ooms_between`] for two pod objects.
pub fn ooms_from_pod_update(old: &Pod, new: &Pod) -> Vec<OomEvent> {
    match (pod_record(old), pod_record(new)) {
        (Some(o), Some(n)) => ooms_between(&o, &n),
        _ => Vec::new(),
    }
}

/// OOMs from a kubelet eviction event (`reason=Evicted` on a Pod) whose starved resource is
/// memory: memory = the offending container's usage, time = the event's creation.
pub fn ooms_from_eviction_event(event: &Event) -> Vec<OomEvent> {
    let mut out = Vec::new();
    if event.involved_object.kind.as_deref() != Some("Pod") {
        return out;
    }
    let (Some(ns), Some(name)) = (
        event.involved_object.namespace.as_deref(),
        event.involved_object.name.as_deref(),
    ) else {
        return out;
    };
    let Some(ann) = event.metadata.annotations.as_ref() else {
        return out;
    };
    let split = |k: &str| -> Vec<&str> {
        ann.get(k)
            .map(|v| v.split(',').collect())
            .unwrap_or_default()
    };
    let containers = split("offending_containers");
    let usages = split("offending_containers_usage");
    let starved = split("starved_resource");
    if containers.len() != usages.len() || containers.len() != starved.len() {
        return out;
    }
    let Some(ts) = from_time(event.metadata.creation_timestamp.as_ref()) else {
        return out;
    };
    for ((c, u), r) in containers.iter().zip(&usages).zip(&starved) {
        if *r != "memory" {
            continue;
        }
        if let Ok(q) = quantity::parse(u) {
            out.push(OomEvent {
                pod: ObjectId::new(ns, name),
                container: (*c).to_string(),
                timestamp: ts,
                memory: q.value(),
            });
        }
    }
    out
}

fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// The HorizontalPodAutoscalers that scale the VPA's target on CPU or memory, as the
/// `HPAConflict` condition message (`None` without conflict). An HPA without metrics scales
/// on CPU (its default of 80 % utilisation).
pub fn hpa_conflict(
    namespace: &str,
    target_api_version: &str,
    target_kind: &str,
    target_name: &str,
    hpas: &[&HorizontalPodAutoscaler],
    vpa_controls: impl Fn(&str) -> bool,
) -> Option<String> {
    let mut found = Vec::new();
    for hpa in hpas {
        if hpa.metadata.namespace.as_deref() != Some(namespace) {
            continue;
        }
        let Some(spec) = hpa.spec.as_ref() else {
            continue;
        };
        let r = &spec.scale_target_ref;
        if r.kind != target_kind
            || r.name != target_name
            || group_of(r.api_version.as_deref().unwrap_or_default())
                != group_of(target_api_version)
        {
            continue;
        }
        let mut resources = BTreeSet::new();
        match spec.metrics.as_deref() {
            None | Some([]) => {
                if vpa_controls("cpu") {
                    resources.insert("cpu".to_string());
                }
            }
            Some(metrics) => {
                for m in metrics {
                    let name = match m.type_.as_str() {
                        "Resource" => m.resource.as_ref().map(|r| r.name.clone()),
                        "ContainerResource" => {
                            m.container_resource.as_ref().map(|r| r.name.clone())
                        }
                        _ => None,
                    };
                    if let Some(n) =
                        name.filter(|n| (n == "cpu" || n == "memory") && vpa_controls(n))
                    {
                        resources.insert(n);
                    }
                }
            }
        }
        if !resources.is_empty() {
            let list = resources.into_iter().collect::<Vec<_>>().join(" and ");
            found.push(format!(
                "HorizontalPodAutoscaler {} scales {target_kind}/{target_name} on {list}",
                hpa.metadata.name.as_deref().unwrap_or_default()
            ));
        }
    }
    if found.is_empty() {
        return None;
    }
    Some(format!(
        "{}; a VPA that sets the same resource makes the two autoscalers work against each other: scale the HPA on another metric or limit the VPA with controlledResources",
        found.join("; ")
    ))
}

#[cfg(test)]
mod tests;
