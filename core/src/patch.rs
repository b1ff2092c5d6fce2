//! The JSON patch the admission controller returns for a new pod: new container requests and
//! limits, the CPU startup boost, and the `vpaUpdates` and `vpaObservedContainers`
//! annotations (upstream `admission-controller/resource/pod/handler.go` and
//! `resource/pod/patch/*.go`).
//!
//! The operations come in upstream's order: `add /metadata/annotations {}` when the pod has no
//! annotations; then for each container in spec order its boost annotation (if any), an empty
//! `resources` / `requests` / `limits` object where one is missing, and one `add` per new
//! value; then `vpaUpdates` if any container changed; then `vpaObservedContainers`. Within a
//! container the resources come in name order (upstream: map order, which tests compare as
//! a set). Init containers and native sidecars are never patched, as in upstream 1.7.
//! Resource names and annotation keys in paths are escaped as JSON pointer tokens
//! (RFC 6901: `~` → `~0`, `/` → `~1`).
//!
//! Two deliberate differences from upstream 1.7.1, neither visible on a well-formed pod
//! CREATE: a container that gets no new value gets no operation at all (1.7.1 adds an empty
//! `resources` object and a bare `container <i>: ` fragment for a container without resources
//! or recommendation; later upstream dropped that), and whether `resources`, `requests` or
//! `limits` must be created is decided from the pod *spec*, which the patch edits (upstream
//! looks at the container status first, which a pod being created never has).
//!
//! [`pod_patch`] is pure. On an error the caller admits the pod unchanged.

use crate::api::vpa::{
    ContainerScalingMode, ControlledValues, GenericStartupBoost, StartupBoostType, UpdateMode,
    VerticalPodAutoscaler, VerticalPodAutoscalerSpec,
};
use crate::limitrange::NamespaceLimits;
use crate::pod::{CPU, ContainerView, MEMORY, PodView, ResourceMap, ResourceRequirements};
use crate::pod_resources::{
    ContainerResources, PodResources, ResourcesError, container_resources, proportional_limits,
};
use crate::quantity::{self, Format, Quantity};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;
use thiserror::Error;

/// Pod annotation that says which resources the VPA changed.
pub const VPA_UPDATES_ANNOTATION: &str = "vpaUpdates";
/// Pod annotation listing the containers the VPA saw when the pod was admitted.
pub const VPA_OBSERVED_CONTAINERS_ANNOTATION: &str = "vpaObservedContainers";
/// Prefix of the per-container pod annotation that records the resources before a CPU
/// startup boost (`vpaCpuStartupBoost/<container>`).
pub const CPU_STARTUP_BOOST_ANNOTATION_PREFIX: &str = "vpaCpuStartupBoost/";
/// Separator of the container names in `vpaObservedContainers`.
pub const OBSERVED_CONTAINERS_SEPARATOR: &str = ", ";

/// The operation of a [`PatchOperation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PatchOp {
    /// RFC 6902 `add` (also used to replace an existing value).
    Add,
    /// RFC 6902 `remove`.
    Remove,
}

/// One RFC 6902 operation, serialised as upstream's `PatchRecord`: `{"op","path","value"}`,
/// with `"value":null` on `remove`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchOperation {
    /// The operation.
    pub op: PatchOp,
    /// The JSON pointer it applies to.
    pub path: String,
    /// The value (`null` for `remove`).
    pub value: Value,
}

impl PatchOperation {
    /// An `add` of `value` at `path`.
    pub fn add(path: impl Into<String>, value: impl Into<Value>) -> PatchOperation {
        PatchOperation {
            op: PatchOp::Add,
            path: path.into(),
            value: value.into(),
        }
    }

    /// A `remove` of `path`.
    pub fn remove(path: impl Into<String>) -> PatchOperation {
        PatchOperation {
            op: PatchOp::Remove,
            path: path.into(),
            value: Value::Null,
        }
    }

    /// An `add` of an annotation (the key escaped into the path).
    pub fn add_annotation(key: &str, value: impl Into<String>) -> PatchOperation {
        PatchOperation::add(annotation_path(key), Value::String(value.into()))
    }

    /// A `remove` of an annotation.
    pub fn remove_annotation(key: &str) -> PatchOperation {
        PatchOperation::remove(annotation_path(key))
    }
}

/// `/metadata/annotations/<escaped key>`.
pub fn annotation_path(key: &str) -> String {
    format!("/metadata/annotations/{}", escape_json_pointer(key))
}

/// Escapes one JSON pointer reference token (RFC 6901): `~` → `~0`, `/` → `~1`.
pub fn escape_json_pointer(token: &str) -> Cow<'_, str> {
    if token.contains(['~', '/']) {
        Cow::Owned(token.replace('~', "~0").replace('/', "~1"))
    } else {
        Cow::Borrowed(token)
    }
}

/// Errors from converting operations to `json_patch` types or applying them.
#[derive(Debug, Error)]
pub enum PatchApplyError {
    /// An operation's path is not a valid JSON pointer.
    #[error("invalid JSON pointer {path:?}")]
    Pointer {
        /// The path.
        path: String,
    },
    /// The patch does not apply to the document.
    #[error("the patch does not apply: {0}")]
    Apply(#[from] json_patch::PatchError),
    /// The patched document is not a pod.
    #[error("the patched document is not a pod: {0}")]
    NotAPod(#[from] serde_json::Error),
    /// The patched pod has a quantity that does not parse.
    #[error("the patched pod is invalid: {0}")]
    Conversion(#[from] crate::api::pod_view::ConversionError),
}

/// What the admission controller does to one pod.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodPatch {
    /// The operations, in order; empty means "admit unchanged".
    pub operations: Vec<PatchOperation>,
    /// The per-container fragments of the `vpaUpdates` annotation
    /// (`"container 0: cpu capped to minAllowed, cpu request"`), one per changed container.
    pub updates: Vec<String>,
    /// The values the patch sets, one entry per `spec.containers` entry (empty maps for
    /// containers it leaves alone).
    pub resources: Vec<ContainerResources>,
}

impl PodPatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    /// The operations as the JSON array sent in an `AdmissionResponse`.
    pub fn to_json(&self) -> Value {
        Value::Array(
            self.operations
                .iter()
                .map(|op| serde_json::json!({"op": op.op, "path": op.path, "value": op.value}))
                .collect(),
        )
    }

    /// The operations as a `json_patch::Patch` (as `kube`'s `AdmissionResponse::with_patch`
    /// takes them).
    pub fn to_json_patch(&self) -> Result<json_patch::Patch, PatchApplyError> {
        to_json_patch(&self.operations)
    }
}

/// Operations as a `json_patch::Patch`.
pub fn to_json_patch(ops: &[PatchOperation]) -> Result<json_patch::Patch, PatchApplyError> {
    ops.iter()
        .map(|op| {
            let path = json_patch::jsonptr::Pointer::parse(op.path.as_str())
                .map_err(|_| PatchApplyError::Pointer {
                    path: op.path.clone(),
                })?
                .to_buf();
            Ok(match op.op {
                PatchOp::Add => json_patch::PatchOperation::Add(json_patch::AddOperation {
                    path,
                    value: op.value.clone(),
                }),
                PatchOp::Remove => {
                    json_patch::PatchOperation::Remove(json_patch::RemoveOperation { path })
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(json_patch::Patch)
}

/// Why no patch could be computed. The pod is then admitted unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PatchError {
    /// A quantity of the VPA does not parse.
    #[error(transparent)]
    Resources(#[from] ResourcesError),
    /// A `Factor` startup boost without `factor`.
    #[error("startupBoost.CPU.Factor is required when Type is Factor or not specified")]
    BoostFactorMissing,
    /// A `Factor` startup boost below 1.
    #[error("boost factor must be >= 1")]
    BoostFactorBelowOne,
    /// A `Quantity` startup boost without `quantity`.
    #[error("startupBoost.CPU.Quantity is required when Type is Quantity")]
    BoostQuantityMissing,
    /// A `Quantity` startup boost whose quantity does not parse.
    #[error("startupBoost.cpu.quantity: {0}")]
    BoostQuantity(quantity::QuantityError),
}

/// Admission-controller settings that change the patch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatchConfig {
    /// Feature gate `CPUStartupBoost`.
    pub cpu_startup_boost: bool,
    /// `--max-allowed-cpu-boost`: the most a boosted CPU request may be (unset or zero: no
    /// maximum).
    pub max_allowed_cpu_boost: Option<Quantity>,
}

/// Whether the VPA configures a CPU startup boost, at the top level or for any container.
pub fn has_startup_boost(spec: &VerticalPodAutoscalerSpec) -> bool {
    spec.startup_boost.as_ref().is_some_and(|b| b.cpu.is_some())
        || spec
            .resource_policy
            .iter()
            .flat_map(|p| p.container_policies.iter().flatten())
            .any(|p| p.startup_boost.is_some())
}

/// The JSON patch for a pod being created under `vpa` (upstream's pod handler with the
/// resource-updates and observed-containers calculators).
///
/// A VPA in mode `Off` without a startup boost gives an empty patch (upstream does not match
/// such VPAs to pods). Otherwise the patch always carries the annotations, and in mode `Off`
/// only the boost changes resources.
pub fn pod_patch(
    pod: &PodView,
    vpa: &VerticalPodAutoscaler,
    limits: &NamespaceLimits,
    config: &PatchConfig,
) -> Result<PodPatch, PatchError> {
    if vpa.update_mode() == UpdateMode::Off && !has_startup_boost(&vpa.spec) {
        return Ok(PodPatch::default());
    }
    let computed = container_resources(pod, vpa, limits)?;
    let updates = resource_updates(pod, vpa, computed, config)?;
    let mut operations = Vec::with_capacity(updates.operations.len() + 2);
    if pod.annotations.is_none() {
        operations.push(PatchOperation::add(
            "/metadata/annotations",
            Value::Object(serde_json::Map::new()),
        ));
    }
    operations.extend(updates.operations);
    operations.push(PatchOperation::add_annotation(
        VPA_OBSERVED_CONTAINERS_ANNOTATION,
        observed_containers(pod),
    ));
    Ok(PodPatch {
        operations,
        ..updates
    })
}

/// The resource-updates part of the patch (upstream `resourcesUpdatesPatchCalculator`) for
/// the provider's `computed` resources: boosts, container values and `vpaUpdates`.
fn resource_updates(
    pod: &PodView,
    vpa: &VerticalPodAutoscaler,
    mut computed: PodResources,
    config: &PatchConfig,
) -> Result<PodPatch, PatchError> {
    if vpa.update_mode() == UpdateMode::Off {
        // Mode Off applies no recommendation, only the boost.
        computed.containers.fill(ContainerResources::default());
        computed.annotations.clear();
    }
    let mut out = PodPatch::default();
    for (i, container) in pod.containers.iter().enumerate() {
        let mut resources = computed.containers.get(i).cloned().unwrap_or_default();
        if config.cpu_startup_boost {
            let mode = vpa
                .spec
                .container_policy(&container.name)
                .and_then(|p| p.mode);
            if mode == Some(ContainerScalingMode::Off) {
                out.resources.push(ContainerResources::default());
                continue;
            }
            if let Some(op) = apply_startup_boost(container, &vpa.spec, &mut resources, config)? {
                out.operations.push(op);
            }
        }
        let annotations = computed.annotations.get(&container.name);
        match container_patch(i, container, annotations, &resources) {
            Some((ops, fragment)) => {
                out.operations.extend(ops);
                out.updates.push(fragment);
                out.resources.push(resources);
            }
            None => out.resources.push(ContainerResources::default()),
        }
    }
    if !out.updates.is_empty() {
        let vpa_name = vpa.metadata.name.as_deref().unwrap_or_default();
        let value = format!(
            "Pod resources updated by {vpa_name}: {}",
            out.updates.join("; ")
        );
        out.operations.push(PatchOperation::add_annotation(
            VPA_UPDATES_ANNOTATION,
            value,
        ));
    }
    Ok(out)
}

/// The patch of one container and its `vpaUpdates` fragment, or `None` when it gets no new
/// value.
fn container_patch(
    index: usize,
    container: &ContainerView,
    annotations: Option<&Vec<String>>,
    resources: &ContainerResources,
) -> Option<(Vec<PatchOperation>, String)> {
    if resources.requests.is_empty() && resources.limits.is_empty() {
        return None;
    }
    let base = format!("/spec/containers/{index}/resources");
    let current = &container.resources;
    let mut ops = Vec::new();
    if current.requests.is_none() && current.limits.is_none() {
        ops.push(PatchOperation::add(
            base.clone(),
            Value::Object(serde_json::Map::new()),
        ));
    }
    let mut words = annotations.cloned().unwrap_or_default();
    for (field, word, current, new) in [
        (
            "requests",
            "request",
            &current.requests,
            &resources.requests,
        ),
        ("limits", "limit", &current.limits, &resources.limits),
    ] {
        if current.is_none() && !new.is_empty() {
            ops.push(PatchOperation::add(
                format!("{base}/{field}"),
                Value::Object(serde_json::Map::new()),
            ));
        }
        for (name, q) in new {
            ops.push(PatchOperation::add(
                format!("{base}/{field}/{}", escape_json_pointer(name)),
                Value::String(q.to_canonical_string()),
            ));
            words.push(format!("{name} {word}"));
        }
    }
    Some((ops, format!("container {index}: {}", words.join(", "))))
}

/// The `vpaObservedContainers` value: the spec container names joined by `", "`.
pub fn observed_containers(pod: &PodView) -> String {
    pod.containers
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(OBSERVED_CONTAINERS_SEPARATOR)
}

/// Parses a `vpaObservedContainers` value; `None` when a name is not a DNS-1123 label (the
/// annotation then counts as absent).
pub fn parse_observed_containers(value: &str) -> Option<Vec<String>> {
    if value.is_empty() {
        return Some(Vec::new());
    }
    value
        .split(OBSERVED_CONTAINERS_SEPARATOR)
        .map(|name| is_dns1123_label(name).then(|| name.to_string()))
        .collect()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 63
        && b.first().is_some_and(alnum)
        && b.last().is_some_and(alnum)
        && b.iter().all(|c| alnum(c) || *c == b'-')
}

// ---------------------------------------------------------------------------------------
// CPU startup boost.

/// The JSON recorded in `vpaCpuStartupBoost/<container>`: the container's spec cpu and
/// memory requests and limits before the boost.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginalResources {
    /// Requests (cpu and memory only).
    pub requests: BTreeMap<String, String>,
    /// Limits (cpu and memory only).
    pub limits: BTreeMap<String, String>,
}

impl OriginalResources {
    /// The cpu and memory values of a container's spec resources.
    pub fn of(resources: &ResourceRequirements) -> OriginalResources {
        let pick = |m: &Option<ResourceMap>| {
            [CPU, MEMORY]
                .into_iter()
                .filter_map(|r| {
                    m.as_ref()
                        .and_then(|m| m.get(r))
                        .map(|q| (r.to_string(), q.to_canonical_string()))
                })
                .collect()
        };
        OriginalResources {
            requests: pick(&resources.requests),
            limits: pick(&resources.limits),
        }
    }

    /// The annotation value (`{"requests":{…},"limits":{…}}`).
    pub fn to_annotation(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The boosted CPU request for a base request.
fn boosted_cpu(
    base: &Quantity,
    boost: &GenericStartupBoost,
    max: Option<&Quantity>,
) -> Result<Quantity, PatchError> {
    let boosted = match boost.type_ {
        StartupBoostType::Factor => {
            let factor = boost.factor.ok_or(PatchError::BoostFactorMissing)?;
            if factor < 1 {
                return Err(PatchError::BoostFactorBelowOne);
            }
            // Upstream multiplies in float64 and truncates (saturating here).
            let milli = (base.milli_value() as f64 * f64::from(factor)) as i64;
            Quantity::new_milli(milli, Format::DecimalSI)
        }
        StartupBoostType::Quantity => {
            let q = boost
                .quantity
                .as_ref()
                .ok_or(PatchError::BoostQuantityMissing)?;
            let q = quantity::parse(q.0.trim()).map_err(PatchError::BoostQuantity)?;
            Quantity::new_milli(
                base.milli_value().saturating_add(q.milli_value()),
                Format::DecimalSI,
            )
        }
    };
    Ok(match max {
        Some(max) if !max.is_zero() && boosted > *max => max.clone(),
        _ => boosted,
    })
}

/// Applies the container's CPU startup boost (if it has one) to its new resources and
/// returns the annotation patch recording the original resources.
fn apply_startup_boost(
    container: &ContainerView,
    spec: &VerticalPodAutoscalerSpec,
    resources: &mut ContainerResources,
    config: &PatchConfig,
) -> Result<Option<PatchOperation>, PatchError> {
    let policy = spec.container_policy(&container.name);
    let boost = match policy.and_then(|p| p.startup_boost.as_ref()) {
        Some(own) => Some(own),
        None => spec.startup_boost.as_ref(),
    };
    // A boost without a cpu part boosts nothing (upstream would dereference nil).
    let Some(cpu_boost) = boost.and_then(|b| b.cpu.as_ref()) else {
        return Ok(None);
    };
    let original = &container.resources;
    let base = match resources.requests.get(CPU) {
        Some(rec) if !rec.is_zero() => rec.clone(),
        _ => original.request(CPU).cloned().unwrap_or(Quantity::ZERO),
    };
    let boosted = boosted_cpu(&base, cpu_boost, config.max_allowed_cpu_boost.as_ref())?;
    resources.requests.insert(CPU.to_string(), boosted.clone());

    let controlled = policy.map(|p| p.controlled_values()).unwrap_or_default();
    match controlled {
        ControlledValues::RequestsOnly => {
            // Keep the request below the limit so the pod stays Burstable.
            if let Some(limit) = original.limit(CPU)
                && boosted.milli_value() > limit.milli_value()
            {
                let one_milli = Quantity::from_millis(1);
                let capped = if *limit > one_milli {
                    Quantity::new_milli(limit.milli_value().saturating_sub(1), limit.format())
                } else {
                    limit.clone()
                };
                resources.requests.insert(CPU.to_string(), capped);
            }
        }
        ControlledValues::RequestsAndLimits => {
            let boosted_requests = ResourceMap::from([(CPU.to_string(), boosted)]);
            let (limits, _) = proportional_limits(
                original.limits.as_ref(),
                original.requests.as_ref(),
                &boosted_requests,
                None,
            );
            if let Some(limit) = limits.and_then(|mut l| l.remove(CPU)) {
                resources.limits.insert(CPU.to_string(), limit);
            }
        }
    }
    let key = format!("{CPU_STARTUP_BOOST_ANNOTATION_PREFIX}{}", container.name);
    Ok(Some(PatchOperation::add_annotation(
        &key,
        OriginalResources::of(original).to_annotation(),
    )))
}

// ---------------------------------------------------------------------------------------
// Applying a patch (for tests of this module and of the webhook).

/// Applies operations to a JSON document, all or nothing.
pub fn apply_patch(doc: &Value, ops: &[PatchOperation]) -> Result<Value, PatchApplyError> {
    let patch = to_json_patch(ops)?;
    let mut out = doc.clone();
    json_patch::patch(&mut out, &patch.0)?;
    Ok(out)
}

/// The resources of each `spec.containers` entry of a pod in JSON form (for checking a
/// patched pod).
pub fn containers_resources(pod: &Value) -> Result<Vec<ResourceRequirements>, PatchApplyError> {
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod.clone())?;
    let view = PodView::try_from(&pod)?;
    Ok(view.containers.into_iter().map(|c| c.resources).collect())
}

#[cfg(test)]
mod tests;
