//! The resources a VPA gives a pod's containers: the recommendation capped to the pod's and
//! the containers' LimitRanges and to the VPA's resource policy, then turned into new
//! requests and (proportional) limits per container (upstream `utils/vpa/capping.go`,
//! `utils/vpa/limit_and_request_scaling.go`, `admission-controller/resource/pod/
//! recommendation/recommendation_provider.go`).
//!
//! Quantities are kept as [`Quantity`] values rather than plain amounts all the way through,
//! because the text a patch writes depends on the format a value came with (a target of
//! `262144k` stays `262144k`; a limit scaled from `200Mi` stays binary). Scaling follows
//! upstream's integer arithmetic: CPU in millicores, everything else in whole units, products
//! exact, quotients floored (rounded up where upstream rounds up), results that do not fit
//! an `i64` capped to `i64::MAX` with an annotation.
//!
//! Every container's current requests and limits are read from its status when the kubelet
//! reports them (in-place resize), else from its spec.

use crate::api::vpa::{
    self, ContainerResourcePolicy, ControlledValues, RecommendedPodResources, UpdateMode,
    VerticalPodAutoscaler,
};
use crate::limitrange::{LimitRangeItem, NamespaceLimits};
use crate::pod::{CPU, MEMORY, PodView, ResourceMap, ResourceRequirements};
use crate::quantity::{self, Quantity, QuantityError};
use std::collections::BTreeMap;
use thiserror::Error;

/// Annotations per container name: what capping and limit scaling did, in words
/// (`"cpu capped to minAllowed"`), for the `vpaUpdates` pod annotation.
pub type ContainerAnnotations = BTreeMap<String, Vec<String>>;

/// A quantity in the VPA that does not parse. The CRD schema makes this unreachable for
/// objects stored by the API server; it is reported rather than ignored.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ResourcesError {
    /// The quantity at `field` is not a valid quantity.
    #[error("{field}: {source}")]
    Quantity {
        /// Where the value is, e.g. `status.recommendation.containerRecommendations[0].target[cpu]`.
        field: String,
        /// Why it does not parse.
        #[source]
        source: QuantityError,
    },
}

/// One container's recommendation with parsed quantities.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecommendedContainer {
    /// The container the recommendation is for.
    pub container_name: String,
    /// `target`.
    pub target: ResourceMap,
    /// `lowerBound`.
    pub lower_bound: Option<ResourceMap>,
    /// `upperBound`.
    pub upper_bound: Option<ResourceMap>,
    /// `uncappedTarget` (never changed by capping).
    pub uncapped_target: Option<ResourceMap>,
}

/// The recommendation after capping, and what the capping did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CappedRecommendation {
    /// One entry per recommended container that exists in the pod, in recommendation order
    /// (containers inserted for the pod LimitRange come last).
    pub containers: Vec<RecommendedContainer>,
    /// Annotations from capping the targets.
    pub annotations: ContainerAnnotations,
}

impl CappedRecommendation {
    /// The (first) recommendation for a container.
    pub fn container(&self, name: &str) -> Option<&RecommendedContainer> {
        self.containers.iter().find(|c| c.container_name == name)
    }
}

/// The new requests and limits of one container; empty maps mean "leave as is".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerResources {
    /// New requests.
    pub requests: ResourceMap,
    /// New limits.
    pub limits: ResourceMap,
}

/// New resources for every container of a pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodResources {
    /// One entry per `spec.containers` entry, in the same order.
    pub containers: Vec<ContainerResources>,
    /// What capping and limit scaling did, per container name.
    pub annotations: ContainerAnnotations,
}

// ---------------------------------------------------------------------------------------
// Parsing the VPA's quantities.

fn parse_quantity(
    q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity,
    field: impl FnOnce() -> String,
) -> Result<Quantity, ResourcesError> {
    quantity::parse(q.0.trim()).map_err(|source| ResourcesError::Quantity {
        field: field(),
        source,
    })
}

/// Parses a resource list of the VPA object; `field` names it in errors.
pub fn parse_resource_list(
    list: &vpa::ResourceList,
    field: &str,
) -> Result<ResourceMap, ResourcesError> {
    list.iter()
        .map(|(name, q)| {
            Ok((
                name.clone(),
                parse_quantity(q, || format!("{field}[{name}]"))?,
            ))
        })
        .collect()
}

/// Parses `status.recommendation`.
pub fn parse_recommendation(
    rec: &RecommendedPodResources,
) -> Result<Vec<RecommendedContainer>, ResourcesError> {
    let list = rec.container_recommendations.as_deref().unwrap_or_default();
    let mut out = Vec::with_capacity(list.len());
    for (i, c) in list.iter().enumerate() {
        let field =
            |name: &str| format!("status.recommendation.containerRecommendations[{i}].{name}");
        let optional = |l: Option<&vpa::ResourceList>, name: &str| {
            l.map(|l| parse_resource_list(l, &field(name))).transpose()
        };
        out.push(RecommendedContainer {
            container_name: c.container_name.clone().unwrap_or_default(),
            target: parse_resource_list(&c.target, &field("target"))?,
            lower_bound: optional(c.lower_bound.as_ref(), "lowerBound")?,
            upper_bound: optional(c.upper_bound.as_ref(), "upperBound")?,
            uncapped_target: optional(c.uncapped_target.as_ref(), "uncappedTarget")?,
        });
    }
    Ok(out)
}

/// A container policy's `minAllowed` and `maxAllowed`, parsed.
#[derive(Debug, Default)]
struct PolicyBounds {
    min: ResourceMap,
    max: ResourceMap,
}

impl PolicyBounds {
    fn parse(policy: Option<&ContainerResourcePolicy>) -> Result<PolicyBounds, ResourcesError> {
        let Some(p) = policy else {
            return Ok(PolicyBounds::default());
        };
        let name = p.container_name.as_deref().unwrap_or_default();
        let list = |l: Option<&vpa::ResourceList>, what: &str| {
            l.map(|l| {
                parse_resource_list(
                    l,
                    &format!("spec.resourcePolicy.containerPolicies[{name}].{what}"),
                )
            })
            .transpose()
            .map(Option::unwrap_or_default)
        };
        Ok(PolicyBounds {
            min: list(p.min_allowed.as_ref(), "minAllowed")?,
            max: list(p.max_allowed.as_ref(), "maxAllowed")?,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Integer scaling (upstream `scaleQuantityProportionally{CPU,Mem}`).

/// The outcome of `a × b / c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MulDiv {
    /// The quotient.
    Exact(i64),
    /// The quotient does not fit an `i64`.
    Overflow,
    /// `c` is zero.
    DivisionByZero,
}

/// `a × b / c` with an exact product, floored (Euclidean, as Go's `big.Int.Div`) or, with
/// `round_up`, rounded up.
fn mul_div(a: i64, b: i64, c: i64, round_up: bool) -> MulDiv {
    if c == 0 {
        return MulDiv::DivisionByZero;
    }
    let p = i128::from(a) * i128::from(b);
    let c = i128::from(c);
    let mut q = p.div_euclid(c);
    if round_up && p.rem_euclid(c) != 0 {
        q += 1;
    }
    i64::try_from(q).map_or(MulDiv::Overflow, MulDiv::Exact)
}

/// The amount upstream scales with: millicores for CPU, whole units otherwise.
fn units(resource: &str, q: &Quantity) -> i64 {
    if resource == CPU {
        q.milli_value()
    } else {
        q.value()
    }
}

/// A quantity of `v` [`units`] in `like`'s format.
fn from_units(resource: &str, v: i64, like: &Quantity) -> Quantity {
    if resource == CPU {
        Quantity::new_milli(v, like.format())
    } else {
        Quantity::new(v, like.format())
    }
}

/// How a scaled quantity came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scaled {
    /// The exact (rounded) result.
    Exact(Quantity),
    /// The result did not fit an `i64` and was capped to `i64::MAX` units.
    Capped(Quantity),
    /// The base was zero; the input is returned unchanged.
    DivisionByZero(Quantity),
}

impl Scaled {
    /// The quantity, whatever the outcome.
    pub fn into_quantity(self) -> Quantity {
        match self {
            Scaled::Exact(q) | Scaled::Capped(q) | Scaled::DivisionByZero(q) => q,
        }
    }
}

/// `scaled × result / base`, with `base_units` and `result_units` in the resource's units
/// (millicores for CPU, whole units otherwise), in `scaled`'s format; floored, or for CPU
/// with `round_up` rounded up (upstream's round-up is a no-op for other resources).
pub fn scale_proportionally(
    resource: &str,
    scaled: &Quantity,
    base_units: i64,
    result_units: i64,
    round_up: bool,
) -> Scaled {
    let round_up = round_up && resource == CPU;
    match mul_div(units(resource, scaled), result_units, base_units, round_up) {
        MulDiv::Exact(v) => Scaled::Exact(from_units(resource, v, scaled)),
        MulDiv::Overflow => Scaled::Capped(from_units(resource, i64::MAX, scaled)),
        MulDiv::DivisionByZero => Scaled::DivisionByZero(scaled.clone()),
    }
}

/// Whether a quantity is missing or zero (upstream `q == nil || q.Value() == 0`).
fn unset(q: Option<&Quantity>) -> bool {
    q.is_none_or(|q| q.value() == 0)
}

/// A new limit that keeps the container's limit-to-request ratio for a new request
/// (upstream `getProportionalResourceLimit`), with an annotation when no limit is set or
/// the limit had to be capped.
pub fn proportional_limit(
    resource: &str,
    original_limit: Option<&Quantity>,
    original_request: Option<&Quantity>,
    recommended_request: Option<&Quantity>,
    default_limit: Option<&Quantity>,
) -> (Option<Quantity>, Option<String>) {
    let limit = if unset(original_limit) {
        default_limit
    } else {
        original_limit
    };
    let Some(limit) = limit.filter(|l| l.value() != 0) else {
        return (
            None,
            Some(format!(
                "{resource}: limit NOT set since originalLimit is nil or 0"
            )),
        );
    };
    let Some(rec) = recommended_request.filter(|r| r.value() != 0) else {
        return (
            None,
            Some(format!(
                "{resource}: limit NOT set since recommendedRequest is nil or 0"
            )),
        );
    };
    let Some(request) = original_request.filter(|r| r.value() != 0) else {
        // A limit without a request: Kubernetes treats them as equal.
        return (Some(rec.clone()), None);
    };
    if request.milli_value() == limit.milli_value() {
        return (Some(rec.clone()), None);
    }
    match scale_proportionally(
        resource,
        limit,
        units(resource, request),
        units(resource, rec),
        false,
    ) {
        Scaled::Capped(q) => (
            Some(q),
            Some(format!(
                "{resource}: failed to keep limit to request ratio; capping limit to int64"
            )),
        ),
        other => (Some(other.into_quantity()), None),
    }
}

/// New cpu and memory limits for new requests (upstream `GetProportionalLimit`): `None` when
/// neither gets a limit, else the limits with the annotations of both resources.
pub fn proportional_limits(
    original_limits: Option<&ResourceMap>,
    original_requests: Option<&ResourceMap>,
    recommended_requests: &ResourceMap,
    default_limit: Option<&ResourceMap>,
) -> (Option<ResourceMap>, Vec<String>) {
    let get = |m: Option<&ResourceMap>, r: &str| m.and_then(|m| m.get(r)).cloned();
    let mut limits = ResourceMap::new();
    let mut annotations = Vec::new();
    for resource in [CPU, MEMORY] {
        let (limit, annotation) = proportional_limit(
            resource,
            get(original_limits, resource).as_ref(),
            get(original_requests, resource).as_ref(),
            recommended_requests.get(resource),
            get(default_limit, resource).as_ref(),
        );
        annotations.extend(annotation);
        if let Some(limit) = limit {
            limits.insert(resource.to_string(), limit);
        }
    }
    if limits.is_empty() {
        (None, Vec::new())
    } else {
        (Some(limits), annotations)
    }
}

/// The request that, with the container's limit-to-request ratio, gives a limit of
/// `boundary` (upstream `GetBoundaryRequest`); zero means no bound.
pub fn boundary_request(
    resource: &str,
    original_request: Option<&Quantity>,
    original_limit: Option<&Quantity>,
    boundary: Option<&Quantity>,
    default_limit: Option<&Quantity>,
) -> Quantity {
    let limit = if unset(original_limit) {
        default_limit
    } else {
        original_limit
    };
    let Some(limit) = limit.filter(|l| l.value() != 0) else {
        return Quantity::ZERO;
    };
    let boundary = boundary.cloned().unwrap_or(Quantity::ZERO);
    let Some(request) = original_request.filter(|r| r.value() != 0) else {
        return boundary;
    };
    scale_proportionally(
        resource,
        request,
        units(resource, limit),
        units(resource, &boundary),
        false,
    )
    .into_quantity()
}

// ---------------------------------------------------------------------------------------
// Capping to the pod LimitRange.

/// Which recommendation field a step works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Target,
    LowerBound,
    UpperBound,
}

fn field(rec: &RecommendedContainer, f: Field) -> Option<&ResourceMap> {
    match f {
        Field::Target => Some(&rec.target),
        Field::LowerBound => rec.lower_bound.as_ref(),
        Field::UpperBound => rec.upper_bound.as_ref(),
    }
}

fn field_mut(rec: &mut RecommendedContainer, f: Field) -> Option<&mut ResourceMap> {
    match f {
        Field::Target => Some(&mut rec.target),
        Field::LowerBound => rec.lower_bound.as_mut(),
        Field::UpperBound => rec.upper_bound.as_mut(),
    }
}

/// A quantity in nano units, exact for every parsed value up to 9.2·10^9 units (larger
/// non-integers saturate), so sums of quantities are exact as upstream's `Quantity.Add`.
fn nanos(q: &Quantity) -> i128 {
    match q.as_i64() {
        Some(v) => i128::from(v) * 1_000_000_000,
        None => i128::from(q.scaled_value(-9)),
    }
}

/// The [`units`] of a sum held in nanos, rounded away from zero as `MilliValue`/`Value`.
fn nanos_to_units(resource: &str, n: i128) -> i64 {
    let d: i128 = if resource == CPU {
        1_000_000
    } else {
        1_000_000_000
    };
    let mut q = n / d;
    if n % d != 0 {
        q += n.signum();
    }
    i64::try_from(q).unwrap_or(if q < 0 { i64::MIN } else { i64::MAX })
}

fn find(recs: &[RecommendedContainer], name: &str) -> Option<usize> {
    recs.iter().position(|r| r.container_name == name)
}

fn current<'a>(pod: &'a PodView, name: &str) -> &'a ResourceRequirements {
    const NONE: &ResourceRequirements = &ResourceRequirements {
        requests: None,
        limits: None,
    };
    pod.current_resources(name).unwrap_or(NONE)
}

/// Gives containers without a recommendation but with requests a recommendation with
/// `target = requests`, so the pod's sum stays within the pod LimitRange.
fn insert_requests_for_missing(recs: &mut Vec<RecommendedContainer>, pod: &PodView) {
    for c in &pod.containers {
        if find(recs, &c.name).is_some() {
            continue;
        }
        match &current(pod, &c.name).requests {
            Some(requests) if !requests.is_empty() => recs.push(RecommendedContainer {
                container_name: c.name.clone(),
                target: requests.clone(),
                ..Default::default()
            }),
            _ => {}
        }
    }
}

/// Scales one field and resource of the pod's recommendations so that their sum (of
/// requests, and of the limits they imply) fits the pod LimitRange item.
fn apply_pod_limit_range(
    recs: &mut [RecommendedContainer],
    pod: &PodView,
    lr: &LimitRangeItem,
    resource: &str,
    f: Field,
) {
    let zero = Quantity::ZERO;
    let min = lr.min_of(resource).unwrap_or(&zero);
    let max = lr.max_of(resource).unwrap_or(&zero);
    let default = lr.default_of(resource);

    let mut sum_limit: i128 = 0;
    let mut sum_rec: i128 = 0;
    for c in &pod.containers {
        let cur = current(pod, &c.name);
        let rec = match find(recs, &c.name) {
            Some(i) => recs
                .get(i)
                .and_then(|r| field(r, f))
                .and_then(|m| m.get(resource)),
            None => cur.request(resource),
        };
        let (limit, _) = proportional_limit(
            resource,
            cur.limit(resource),
            cur.request(resource),
            rec,
            default,
        );
        if let Some(limit) = limit {
            sum_limit = sum_limit.saturating_add(nanos(&limit));
        }
        sum_rec = sum_rec.saturating_add(rec.map_or(0, nanos));
    }
    let (min_n, max_n) = (nanos(min), nanos(max));
    if min_n <= sum_limit && min_n <= sum_rec && (max_n == 0 || max_n >= sum_limit) {
        return;
    }
    let (numerator, base, round_up) = if min_n > sum_rec && sum_limit != 0 {
        (min, sum_rec, true)
    } else if sum_limit == 0 {
        return;
    } else {
        let target = if max_n != 0 && max_n < sum_limit {
            max
        } else if min_n > sum_limit {
            min
        } else {
            &zero
        };
        (target, sum_limit, false)
    };
    let base_units = nanos_to_units(resource, base);
    let result_units = units(resource, numerator);
    for c in &pod.containers {
        // Containers with neither a recommendation nor requests have nothing to scale
        // (upstream would dereference a nil recommendation here).
        let Some(i) = find(recs, &c.name) else {
            continue;
        };
        let Some(value) = recs
            .get_mut(i)
            .and_then(|r| field_mut(r, f))
            .and_then(|m| m.get_mut(resource))
        else {
            continue;
        };
        *value = scale_proportionally(resource, value, base_units, result_units, round_up)
            .into_quantity();
    }
}

// ---------------------------------------------------------------------------------------
// Capping one container.

fn capping_annotation(resource: &str, action: &str) -> String {
    format!("{resource} {action}")
}

/// `{cpu, memory}` boundary requests for the container's limit ratio, or nothing without a
/// boundary map.
fn boundary_map(
    cur: &ResourceRequirements,
    boundary: Option<&ResourceMap>,
    default: Option<&ResourceMap>,
) -> ResourceMap {
    let Some(boundary) = boundary else {
        return ResourceMap::new();
    };
    [CPU, MEMORY]
        .into_iter()
        .map(|r| {
            let q = boundary_request(
                r,
                cur.request(r),
                cur.limit(r),
                boundary.get(r),
                default.and_then(|d| d.get(r)),
            );
            (r.to_string(), q)
        })
        .collect()
}

/// Caps one recommendation map to the container LimitRange item: requests whose limit (at
/// the container's ratio) would fall outside `[min, max]`, and requests below `min`.
fn apply_container_limit_range(
    rec: &mut ResourceMap,
    cur: &ResourceRequirements,
    clr: Option<&LimitRangeItem>,
) -> Vec<String> {
    let Some(clr) = clr else {
        return Vec::new();
    };
    let max = boundary_map(cur, clr.max.as_ref(), clr.default.as_ref());
    let mut min = boundary_map(cur, clr.min.as_ref(), clr.default.as_ref());
    if let Some(min_request) = clr.min.as_ref() {
        for r in [CPU, MEMORY] {
            if let Some(m) = min_request.get(r)
                && min.get(r).is_none_or(|cur| m > cur)
            {
                min.insert(r.to_string(), m.clone());
            }
        }
    }
    let mut annotations = Vec::new();
    for (resource, value) in rec.iter_mut() {
        if let Some(m) = min.get(resource)
            && !m.is_zero()
            && *value < *m
        {
            *value = m.clone();
            annotations.push(capping_annotation(
                resource,
                "capped to fit Min in container LimitRange",
            ));
        }
        if let Some(m) = max.get(resource)
            && !m.is_zero()
            && *value > *m
        {
            *value = m.clone();
            annotations.push(capping_annotation(
                resource,
                "capped to fit Max in container LimitRange",
            ));
        }
    }
    annotations
}

/// Caps one recommendation map to the container policy's `minAllowed` and `maxAllowed`.
fn apply_vpa_policy(rec: &mut ResourceMap, bounds: &PolicyBounds) -> Vec<String> {
    let mut annotations = Vec::new();
    for (resource, value) in rec.iter_mut() {
        if let Some(m) = bounds.min.get(resource)
            && !m.is_zero()
            && *value < *m
        {
            *value = m.clone();
            annotations.push(capping_annotation(resource, "capped to minAllowed"));
        }
        if let Some(m) = bounds.max.get(resource)
            && !m.is_zero()
            && *value > *m
        {
            *value = m.clone();
            annotations.push(capping_annotation(resource, "capped to maxAllowed"));
        }
    }
    annotations
}

/// Caps one recommendation map to the container's current limits (`RequestsOnly`).
fn cap_to_container_limits(rec: &mut ResourceMap, cur: &ResourceRequirements) -> Vec<String> {
    let mut annotations = Vec::new();
    for (resource, limit) in cur.limits.iter().flatten() {
        if let Some(value) = rec.get_mut(resource)
            && value.milli_value() > limit.milli_value()
        {
            *value = limit.clone();
            annotations.push(capping_annotation(resource, "capped to container limit"));
        }
    }
    annotations
}

/// The capping processor (upstream `cappingRecommendationProcessor.Apply`): the
/// recommendation adjusted to the pod LimitRange, the container LimitRange, the VPA's
/// policy and, with `RequestsOnly`, the containers' limits.
///
/// `None` when there is neither a recommendation nor a policy. Recommendations for
/// containers the pod does not have are dropped; `uncapped_target` is never changed.
pub fn cap_recommendation(
    pod: &PodView,
    policy: Option<&vpa::PodResourcePolicy>,
    recommendation: Option<&[RecommendedContainer]>,
    limits: &NamespaceLimits,
) -> Result<Option<CappedRecommendation>, ResourcesError> {
    if recommendation.is_none() && policy.is_none() {
        return Ok(None);
    }
    let mut recs = recommendation.map(<[_]>::to_vec).unwrap_or_default();
    if let Some(pod_lr) = limits.pod.as_ref() {
        insert_requests_for_missing(&mut recs, pod);
        for f in [Field::UpperBound, Field::Target, Field::LowerBound] {
            for resource in [CPU, MEMORY] {
                apply_pod_limit_range(&mut recs, pod, pod_lr, resource, f);
            }
        }
    }
    let mut out = CappedRecommendation::default();
    for mut rec in recs {
        if pod.container(&rec.container_name).is_none() {
            continue;
        }
        let cur = current(pod, &rec.container_name);
        let container_policy = policy.and_then(|p| p.container_policy(&rec.container_name));
        let bounds = PolicyBounds::parse(container_policy)?;
        let requests_only = container_policy.map(ContainerResourcePolicy::controlled_values)
            == Some(ControlledValues::RequestsOnly);
        let mut annotations = Vec::new();
        for f in [Field::Target, Field::LowerBound, Field::UpperBound] {
            let Some(map) = field_mut(&mut rec, f) else {
                continue;
            };
            let mut step = apply_container_limit_range(map, cur, limits.container.as_ref());
            step.extend(apply_vpa_policy(map, &bounds));
            if requests_only {
                step.extend(cap_to_container_limits(map, cur));
            }
            if f == Field::Target {
                annotations = step;
            }
        }
        if !annotations.is_empty() {
            out.annotations
                .insert(rec.container_name.clone(), annotations);
        }
        out.containers.push(rec);
    }
    Ok(Some(out))
}

/// The recommendation provider (upstream `GetContainersResourcesForPod`): new requests (the
/// capped target) and, with `RequestsAndLimits`, proportional limits for every container of
/// the pod that has a recommendation. Containers without one get empty maps.
pub fn container_resources(
    pod: &PodView,
    vpa: &VerticalPodAutoscaler,
    limits: &NamespaceLimits,
) -> Result<PodResources, ResourcesError> {
    let mut capped = CappedRecommendation::default();
    if let Some(rec) = vpa.status.as_ref().and_then(|s| s.recommendation.as_ref()) {
        let parsed = parse_recommendation(rec)?;
        capped = cap_recommendation(
            pod,
            vpa.spec.resource_policy.as_ref(),
            Some(&parsed),
            limits,
        )?
        .unwrap_or_default();
    }
    // With mode Off the policy is ignored when choosing the controlled values.
    let policy = match vpa.update_mode() {
        UpdateMode::Off => None,
        _ => vpa.spec.resource_policy.as_ref(),
    };
    let default_limit = limits.container.as_ref().and_then(|c| c.default.as_ref());
    let mut annotations = capped.annotations.clone();
    let mut containers = Vec::with_capacity(pod.containers.len());
    for c in &pod.containers {
        let Some(rec) = capped.container(&c.name) else {
            containers.push(ContainerResources::default());
            continue;
        };
        let mut resources = ContainerResources {
            requests: rec.target.clone(),
            limits: ResourceMap::new(),
        };
        let controlled = policy
            .and_then(|p| p.container_policy(&c.name))
            .map(ContainerResourcePolicy::controlled_values)
            .unwrap_or_default();
        if controlled == ControlledValues::RequestsAndLimits {
            let cur = current(pod, &c.name);
            let (new_limits, limit_annotations) = proportional_limits(
                cur.limits.as_ref(),
                cur.requests.as_ref(),
                &resources.requests,
                default_limit,
            );
            if let Some(new_limits) = new_limits {
                resources.limits = new_limits;
                if !limit_annotations.is_empty() {
                    annotations
                        .entry(c.name.clone())
                        .or_default()
                        .extend(limit_annotations);
                }
            }
        }
        // An empty resource name would make an invalid patch path.
        resources.requests.remove("");
        resources.limits.remove("");
        containers.push(resources);
    }
    Ok(PodResources {
        containers,
        annotations,
    })
}

#[cfg(test)]
pub(crate) mod tests;
