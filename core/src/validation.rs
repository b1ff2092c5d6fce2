//! Validation and defaulting of `VerticalPodAutoscaler` objects by the admission controller
//! (upstream `admission-controller/resource/vpa/handler.go` and `validation.go`), with
//! upstream's field paths and message texts.
//!
//! The webhook sees objects before the API server checks them against the CRD schema, so
//! enum fields may hold any text. [`SubmittedVpa`] therefore keeps them as strings (an
//! unknown `updateMode` gets upstream's "Unsupported value" error, not a decoding error);
//! quantities and integers are decoded as upstream decodes them, and a value that does not
//! decode is an internal error, as upstream's.
//!
//! [`FieldError`] displays exactly as apimachinery's `field.Error`
//! (`spec.updatePolicy.minReplicas: Invalid value: 0: minReplicas has to be positive`);
//! [`aggregate_message`] joins several as `errors.NewAggregate` does.

use crate::api::vpa::VerticalPodAutoscaler;
use crate::patch::PatchOperation;
use crate::quantity::Quantity;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

// ---------------------------------------------------------------------------------------
// Field errors.

/// The kind of a field error (apimachinery `field.ErrorType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldErrorKind {
    /// A required field is missing.
    Required,
    /// The value is not valid.
    Invalid,
    /// The value is not one of the supported ones.
    NotSupported,
    /// The field may not be used.
    Forbidden,
    /// A list has too many items.
    TooMany,
    /// The object could not be processed.
    Internal,
}

impl FieldErrorKind {
    /// The text in messages (`"Required value"`, `"Invalid value"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "Required value",
            FieldErrorKind::Invalid => "Invalid value",
            FieldErrorKind::NotSupported => "Unsupported value",
            FieldErrorKind::Forbidden => "Forbidden",
            FieldErrorKind::TooMany => "Too many",
            FieldErrorKind::Internal => "Internal error",
        }
    }

    /// The `reason` of a `StatusCause` for this kind (`"FieldValueInvalid"`, …).
    pub fn reason(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::NotSupported => "FieldValueNotSupported",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::TooMany => "FieldValueTooMany",
            FieldErrorKind::Internal => "InternalError",
        }
    }

    /// Whether messages of this kind show the bad value.
    fn shows_value(self) -> bool {
        !matches!(
            self,
            FieldErrorKind::Required | FieldErrorKind::Forbidden | FieldErrorKind::Internal
        )
    }
}

/// The offending value of a field error, printed as Go prints it.
#[derive(Debug, Clone, PartialEq)]
pub enum BadValue {
    /// A string, printed quoted (`"bad"`).
    Str(String),
    /// An integer.
    Int(i64),
    /// A float, printed as Go's `%v` (`0.5`, `-1`, `1e+06`).
    Float(f64),
    /// No value.
    None,
}

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadValue::Str(s) => f.write_str(&go_quote(s)),
            BadValue::Int(v) => write!(f, "{v}"),
            BadValue::Float(v) => f.write_str(&go_float(*v)),
            BadValue::None => f.write_str("null"),
        }
    }
}

/// One validation error: a field path, a kind, the bad value and a detail.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// What is wrong.
    pub kind: FieldErrorKind,
    /// The field path (`spec.resourcePolicy.containerPolicies[0].maxAllowed[cpu]`).
    pub field: String,
    /// The offending value.
    pub bad_value: BadValue,
    /// The explanation (may be empty).
    pub detail: String,
}

impl FieldError {
    fn new(kind: FieldErrorKind, field: &str, bad_value: BadValue, detail: &str) -> FieldError {
        FieldError {
            kind,
            field: field.to_string(),
            bad_value,
            detail: detail.to_string(),
        }
    }

    /// `field.Required`.
    pub fn required(field: &str, detail: &str) -> FieldError {
        FieldError::new(FieldErrorKind::Required, field, BadValue::None, detail)
    }

    /// `field.Invalid`.
    pub fn invalid(field: &str, value: BadValue, detail: &str) -> FieldError {
        FieldError::new(FieldErrorKind::Invalid, field, value, detail)
    }

    /// `field.NotSupported` with the supported values listed.
    pub fn not_supported(field: &str, value: &str, supported: &[&str]) -> FieldError {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        FieldError::new(
            FieldErrorKind::NotSupported,
            field,
            BadValue::Str(value.to_string()),
            &detail,
        )
    }

    /// `field.Forbidden`.
    pub fn forbidden(field: &str, detail: &str) -> FieldError {
        FieldError::new(FieldErrorKind::Forbidden, field, BadValue::None, detail)
    }

    /// `field.TooMany`.
    pub fn too_many(field: &str, actual: usize, max: usize) -> FieldError {
        let items = if max == 1 { "item" } else { "items" };
        FieldError::new(
            FieldErrorKind::TooMany,
            field,
            BadValue::Int(i64::try_from(actual).unwrap_or(i64::MAX)),
            &format!("must have at most {max} {items}"),
        )
    }

    /// `field.InternalError`.
    pub fn internal(field: &str, error: &str) -> FieldError {
        FieldError::new(FieldErrorKind::Internal, field, BadValue::None, error)
    }

    /// The message without the field path (apimachinery `ErrorBody`), as in a `StatusCause`.
    pub fn body(&self) -> String {
        let mut s = self.kind.as_str().to_string();
        if self.kind.shows_value() {
            s.push_str(": ");
            s.push_str(&self.bad_value.to_string());
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

impl std::error::Error for FieldError {}

/// Several errors in one message, as apimachinery's `NewAggregate(...).Error()`: one error
/// alone, else `[a, b]` with duplicates dropped.
pub fn aggregate_message(errors: &[FieldError]) -> String {
    let mut seen = BTreeSet::new();
    let mut parts = Vec::new();
    for e in errors {
        let msg = e.to_string();
        if seen.insert(msg.clone()) {
            parts.push(msg);
        }
    }
    match parts.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        _ => format!("[{}]", parts.join(", ")),
    }
}

/// The message of a 422 `Invalid` status for these errors (apimachinery `NewInvalid`):
/// `VerticalPodAutoscaler.autoscaling.k8s.io "name" is invalid: …`.
pub fn invalid_status_message(qualified_kind: &str, name: &str, errors: &[FieldError]) -> String {
    format!(
        "{qualified_kind} {} is invalid: {}",
        go_quote(name),
        aggregate_message(errors)
    )
}

/// A string quoted as Go's `strconv.Quote` (also a valid PromQL string literal, whose
/// escapes are Go's).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                let v = c as u32;
                if v <= 0xffff {
                    out.push_str(&format!("\\u{v:04x}"));
                } else {
                    out.push_str(&format!("\\U{v:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A float as Go's `%v`: the shortest representation, in exponent form when the decimal
/// exponent is below -4 or at least 6 (`1e+06`, `1.5e-05`).
fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust's `{:e}` is the shortest round-tripping form: `-1.5e-5`, `1e6`.
    let e = format!("{v:e}");
    let Some((mantissa, exp)) = e.split_once('e') else {
        return e;
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.unsigned_abs());
    }
    if exp < 0 {
        let zeros = "0".repeat(usize::try_from(-exp - 1).unwrap_or(0));
        return format!("{sign}0.{zeros}{digits}");
    }
    let int_len = usize::try_from(exp + 1).unwrap_or(0);
    if digits.len() <= int_len {
        format!("{sign}{digits}{}", "0".repeat(int_len - digits.len()))
    } else {
        let (int, frac) = digits.split_at(int_len);
        format!("{sign}{int}.{frac}")
    }
}

// ---------------------------------------------------------------------------------------
// The object as submitted.

/// Decodes `null` as the default, as Go's `encoding/json` does for non-pointer fields.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

/// A `VerticalPodAutoscaler` as submitted to the webhook: the fields validation looks at,
/// with enum values kept as text.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmittedVpa {
    /// `spec`.
    #[serde(default, deserialize_with = "null_default")]
    pub spec: SubmittedSpec,
}

/// `spec` of a [`SubmittedVpa`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmittedSpec {
    /// `targetRef`.
    #[serde(default)]
    pub target_ref: Option<Value>,
    /// `updatePolicy`.
    #[serde(default)]
    pub update_policy: Option<SubmittedUpdatePolicy>,
    /// `resourcePolicy`.
    #[serde(default)]
    pub resource_policy: Option<SubmittedResourcePolicy>,
    /// `recommenders` (only counted).
    #[serde(default)]
    pub recommenders: Option<Vec<Value>>,
    /// `startupBoost`.
    #[serde(default)]
    pub startup_boost: Option<SubmittedStartupBoost>,
}

/// `spec.updatePolicy` of a [`SubmittedVpa`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmittedUpdatePolicy {
    /// `updateMode`.
    #[serde(default)]
    pub update_mode: Option<String>,
    /// `minReplicas`.
    #[serde(default)]
    pub min_replicas: Option<i32>,
    /// `evictAfterOOMSeconds`.
    #[serde(default, rename = "evictAfterOOMSeconds")]
    pub evict_after_oom_seconds: Option<i32>,
}

/// `spec.resourcePolicy` of a [`SubmittedVpa`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmittedResourcePolicy {
    /// `containerPolicies`.
    #[serde(default)]
    pub container_policies: Option<Vec<SubmittedContainerPolicy>>,
}

/// One `containerPolicies` entry of a [`SubmittedVpa`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmittedContainerPolicy {
    /// `containerName` (empty when absent).
    #[serde(default, deserialize_with = "null_default")]
    pub container_name: String,
    /// `mode`.
    #[serde(default)]
    pub mode: Option<String>,
    /// `minAllowed`.
    #[serde(default)]
    pub min_allowed: Option<BTreeMap<String, Quantity>>,
    /// `maxAllowed`.
    #[serde(default)]
    pub max_allowed: Option<BTreeMap<String, Quantity>>,
    /// `controlledResources`.
    #[serde(default)]
    pub controlled_resources: Option<Vec<String>>,
    /// `controlledValues`.
    #[serde(default)]
    pub controlled_values: Option<String>,
    /// `oomBumpUpRatio`.
    #[serde(default)]
    pub oom_bump_up_ratio: Option<Quantity>,
    /// `oomMinBumpUp`.
    #[serde(default)]
    pub oom_min_bump_up: Option<Quantity>,
    /// `memoryAggregationIntervalSeconds`.
    #[serde(default)]
    pub memory_aggregation_interval_seconds: Option<i32>,
    /// `memoryAggregationIntervalCount`.
    #[serde(default)]
    pub memory_aggregation_interval_count: Option<i64>,
    /// `startupBoost`.
    #[serde(default)]
    pub startup_boost: Option<SubmittedStartupBoost>,
}

/// `startupBoost` of a [`SubmittedVpa`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmittedStartupBoost {
    /// `cpu`.
    #[serde(default)]
    pub cpu: Option<SubmittedCpuBoost>,
}

/// `startupBoost.cpu` of a [`SubmittedVpa`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmittedCpuBoost {
    /// `type` (empty when absent).
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub type_: String,
    /// `factor`.
    #[serde(default)]
    pub factor: Option<i32>,
    /// `quantity`.
    #[serde(default)]
    pub quantity: Option<Quantity>,
    /// `durationSeconds`.
    #[serde(default)]
    pub duration_seconds: Option<i32>,
}

impl SubmittedVpa {
    /// Decodes the object of an admission request.
    pub fn from_json(object: &Value) -> Result<SubmittedVpa, serde_json::Error> {
        SubmittedVpa::deserialize(object)
    }

    fn container_policies(&self) -> &[SubmittedContainerPolicy] {
        self.spec
            .resource_policy
            .as_ref()
            .and_then(|p| p.container_policies.as_deref())
            .unwrap_or_default()
    }
}

impl TryFrom<&VerticalPodAutoscaler> for SubmittedVpa {
    type Error = serde_json::Error;

    fn try_from(vpa: &VerticalPodAutoscaler) -> Result<SubmittedVpa, serde_json::Error> {
        SubmittedVpa::from_json(&serde_json::to_value(vpa)?)
    }
}

// ---------------------------------------------------------------------------------------
// Options.

pub use crate::features::FeatureGates;

/// What validation allows (upstream `VPAValidationOptions`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationOptions {
    /// The object is being created (enables the `targetRef` check).
    pub is_create: bool,
    /// `startupBoost` may be used.
    pub allow_cpu_startup_boost: bool,
    /// The per-VPA settings (`evictAfterOOMSeconds`, OOM bump, memory aggregation) may be
    /// used.
    pub allow_per_vpa_config: bool,
    /// `updateMode: InPlace` may be used.
    pub allow_in_place: bool,
    /// Controlled resources the old object already had: still accepted, with a warning.
    pub existing_controlled_resources: BTreeSet<String>,
}

impl ValidationOptions {
    /// The options upstream's handler uses for a request: a gated field is allowed when its
    /// gate is on or the old object already uses it.
    ///
    /// Like upstream, the handler passes an empty old object on CREATE, so `is_create` is
    /// never set and the `targetRef` check never fires (the CRD schema requires `targetRef`
    /// anyway).
    pub fn for_request(old: Option<&SubmittedVpa>, gates: &FeatureGates) -> ValidationOptions {
        let empty = SubmittedVpa::default();
        let old = old.unwrap_or(&empty);
        let policies = old.container_policies();
        let old_policy = old.spec.update_policy.as_ref();
        ValidationOptions {
            is_create: false,
            allow_cpu_startup_boost: gates.cpu_startup_boost
                || old
                    .spec
                    .startup_boost
                    .as_ref()
                    .is_some_and(|b| b.cpu.is_some())
                || policies.iter().any(|p| p.startup_boost.is_some()),
            allow_per_vpa_config: gates.per_vpa_config
                || old_policy.is_some_and(|p| p.evict_after_oom_seconds.is_some())
                || policies.iter().any(|p| {
                    p.oom_bump_up_ratio.is_some()
                        || p.oom_min_bump_up.is_some()
                        || p.memory_aggregation_interval_count.is_some()
                        || p.memory_aggregation_interval_seconds.is_some()
                }),
            allow_in_place: gates.in_place
                || old_policy.and_then(|p| p.update_mode.as_deref()) == Some(MODE_IN_PLACE),
            existing_controlled_resources: policies
                .iter()
                .flat_map(|p| p.controlled_resources.iter().flatten().cloned())
                .collect(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Validation.

const MODE_AUTO: &str = "Auto";
const MODE_IN_PLACE: &str = "InPlace";
/// The update modes upstream lists as supported (sorted; `Auto` is accepted but not listed).
pub const LISTED_UPDATE_MODES: [&str; 5] =
    ["InPlace", "InPlaceOrRecreate", "Initial", "Off", "Recreate"];
const SCALING_MODES: [&str; 2] = ["Auto", "Off"];
const BOOST_TYPES: [&str; 2] = ["Factor", "Quantity"];

/// The result of validating one object: errors reject it, warnings go back to the client.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Validation {
    /// Field errors; the object is rejected when there are any.
    pub errors: Vec<FieldError>,
    /// Warnings for the client (`kubectl` prints them).
    pub warnings: Vec<String>,
}

impl Validation {
    /// Whether the object is accepted.
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Whether `q` is a whole number of `10^scale` units (apimachinery `AsScale`'s exactness).
/// Values beyond the `i64` range at that scale count as whole.
fn is_whole_at(q: &Quantity, scale: i32) -> bool {
    let v = q.scaled_value(scale);
    v == i64::MAX || v == i64::MIN || Quantity::new_scaled(v, scale) == *q
}

fn validate_cpu_resolution(q: &Quantity, field: &str, errors: &mut Vec<FieldError>) {
    if !is_whole_at(q, -3) {
        errors.push(FieldError::invalid(
            field,
            BadValue::Str(q.to_canonical_string()),
            "must be a whole number of milli CPUs",
        ));
    }
}

fn validate_resource_resolution(
    resource: &str,
    q: &Quantity,
    field: &str,
    errors: &mut Vec<FieldError>,
) {
    match resource {
        "cpu" => validate_cpu_resolution(q, field, errors),
        "memory" if !is_whole_at(q, 0) => errors.push(FieldError::invalid(
            field,
            BadValue::Str(q.to_canonical_string()),
            "must be a whole number of bytes",
        )),
        _ => {}
    }
}

fn per_vpa_forbidden(field: &str) -> FieldError {
    FieldError::forbidden(
        field,
        "not supported when feature flag PerVPAConfig is disabled",
    )
}

fn validate_update_policy(
    p: &SubmittedUpdatePolicy,
    path: &str,
    opts: &ValidationOptions,
    out: &mut Validation,
) {
    let mode_path = format!("{path}.updateMode");
    match p.update_mode.as_deref() {
        None => out.errors.push(FieldError::required(
            &mode_path,
            "updateMode is required if UpdatePolicy is used",
        )),
        Some(mode) => {
            if mode != MODE_AUTO && !LISTED_UPDATE_MODES.contains(&mode) {
                out.errors.push(FieldError::not_supported(
                    &mode_path,
                    mode,
                    &LISTED_UPDATE_MODES,
                ));
            }
            if mode == MODE_AUTO {
                out.warnings.push(format!(
                    "{path}: {} mode is deprecated and will be removed in a future API version. \
                     Use explicit update modes like: [{}]. See \
                     https://github.com/kubernetes/autoscaler/issues/8424 for more details.",
                    go_quote(mode),
                    LISTED_UPDATE_MODES.join(" ")
                ));
            }
            if mode == MODE_IN_PLACE && !opts.allow_in_place {
                out.errors.push(FieldError::forbidden(
                    &mode_path,
                    "in order to use UpdateMode InPlace, you must enable feature gate InPlace \
                     in the admission-controller args",
                ));
            }
        }
    }
    if let Some(min) = p.min_replicas
        && min <= 0
    {
        out.errors.push(FieldError::invalid(
            &format!("{path}.minReplicas"),
            BadValue::Int(i64::from(min)),
            "minReplicas has to be positive",
        ));
    }
    if let Some(seconds) = p.evict_after_oom_seconds {
        let field = format!("{path}.evictAfterOOMSeconds");
        if !opts.allow_per_vpa_config {
            out.errors.push(per_vpa_forbidden(&field));
        } else if seconds < 1 {
            out.errors.push(FieldError::invalid(
                &field,
                BadValue::Int(i64::from(seconds)),
                "must be greater than or equal to 1",
            ));
        }
    }
}

fn validate_container_policy(
    p: &SubmittedContainerPolicy,
    path: &str,
    opts: &ValidationOptions,
    out: &mut Validation,
) {
    let errors = &mut out.errors;
    if p.container_name.is_empty() {
        errors.push(FieldError::required(&format!("{path}.containerName"), ""));
    }
    if let Some(mode) = p.mode.as_deref()
        && !SCALING_MODES.contains(&mode)
    {
        errors.push(FieldError::not_supported(
            &format!("{path}.mode"),
            mode,
            &SCALING_MODES,
        ));
    }
    let max_allowed = p.max_allowed.as_ref();
    for (resource, min) in p.min_allowed.iter().flatten() {
        validate_resource_resolution(
            resource,
            min,
            &format!("{path}.minAllowed[{resource}]"),
            errors,
        );
        if let Some(max) = max_allowed.and_then(|m| m.get(resource))
            && max < min
        {
            errors.push(FieldError::invalid(
                &format!("{path}.maxAllowed[{resource}]"),
                BadValue::Str(max.to_canonical_string()),
                &format!(
                    "max resource for {resource} is lower than min of \"{}\"",
                    min.to_canonical_string()
                ),
            ));
        }
    }
    for (resource, max) in max_allowed.into_iter().flatten() {
        validate_resource_resolution(
            resource,
            max,
            &format!("{path}.maxAllowed[{resource}]"),
            errors,
        );
    }
    if p.mode.as_deref() == Some("Off")
        && p.controlled_values.as_deref() == Some("RequestsAndLimits")
    {
        errors.push(FieldError::forbidden(
            &format!("{path}.controlledValues"),
            "controlledValues shouldn't be specified if container scaling mode is off",
        ));
    }
    for (j, resource) in p.controlled_resources.iter().flatten().enumerate() {
        if resource == "cpu" || resource == "memory" {
            continue;
        }
        let field = format!("{path}.controlledResources[{j}]");
        if opts.existing_controlled_resources.contains(resource) {
            out.warnings.push(format!(
                "{field}: unsupported value {} is allowed only because it is present in the \
                 existing VPA object; supported values: \"cpu\", \"memory\"",
                go_quote(resource)
            ));
        } else {
            errors.push(FieldError::not_supported(
                &field,
                resource,
                &["cpu", "memory"],
            ));
        }
    }
    if let Some(ratio) = &p.oom_bump_up_ratio {
        let field = format!("{path}.oomBumpUpRatio");
        #[allow(clippy::cast_precision_loss)]
        let ratio = ratio.milli_value() as f64 / 1000.0;
        if !opts.allow_per_vpa_config {
            errors.push(per_vpa_forbidden(&field));
        } else if ratio < 1.0 {
            errors.push(FieldError::invalid(
                &field,
                BadValue::Float(ratio),
                "must be greater than or equal to 1.0",
            ));
        }
    }
    if let Some(bump) = &p.oom_min_bump_up {
        let field = format!("{path}.oomMinBumpUp");
        if !opts.allow_per_vpa_config {
            errors.push(per_vpa_forbidden(&field));
        } else if bump.value() < 0 {
            errors.push(FieldError::invalid(
                &field,
                BadValue::Int(bump.value()),
                "must be greater than or equal to 0",
            ));
        }
    }
    for (name, value) in [
        (
            "memoryAggregationIntervalSeconds",
            p.memory_aggregation_interval_seconds.map(i64::from),
        ),
        (
            "memoryAggregationIntervalCount",
            p.memory_aggregation_interval_count,
        ),
    ] {
        let Some(value) = value else { continue };
        let field = format!("{path}.{name}");
        if !opts.allow_per_vpa_config {
            errors.push(per_vpa_forbidden(&field));
        } else if value < 1 {
            errors.push(FieldError::invalid(
                &field,
                BadValue::Int(value),
                "must be greater than or equal to 1",
            ));
        }
    }
    if let Some(boost) = &p.startup_boost {
        validate_startup_boost(boost, &format!("{path}.startupBoost"), opts, errors);
    }
}

fn validate_startup_boost(
    boost: &SubmittedStartupBoost,
    path: &str,
    opts: &ValidationOptions,
    errors: &mut Vec<FieldError>,
) {
    if !opts.allow_cpu_startup_boost {
        errors.push(FieldError::forbidden(
            path,
            "in order to use startupBoost, you must enable feature gate CPUStartupBoost in the \
             admission-controller args",
        ));
        return;
    }
    let Some(cpu) = &boost.cpu else { return };
    let cpu_path = format!("{path}.cpu");
    match cpu.type_.as_str() {
        "" => errors.push(FieldError::required(
            &format!("{cpu_path}.type"),
            "must be either Factor or Quantity",
        )),
        "Factor" => match cpu.factor {
            None => errors.push(FieldError::required(
                &format!("{cpu_path}.factor"),
                "required when type is Factor",
            )),
            Some(f) if f < 1 => errors.push(FieldError::invalid(
                &format!("{cpu_path}.factor"),
                BadValue::Int(i64::from(f)),
                "must be >= 1 for type Factor",
            )),
            Some(_) => {}
        },
        "Quantity" => match &cpu.quantity {
            None => errors.push(FieldError::required(
                &format!("{cpu_path}.quantity"),
                "required when type is Quantity",
            )),
            Some(q) => validate_cpu_resolution(q, &format!("{cpu_path}.quantity"), errors),
        },
        other => errors.push(FieldError::not_supported(
            &format!("{cpu_path}.type"),
            other,
            &BOOST_TYPES,
        )),
    }
}

/// Validates an object with the given options (upstream `validateVPA`), in upstream's order.
pub fn validate(vpa: &SubmittedVpa, opts: &ValidationOptions) -> Validation {
    let mut out = Validation::default();
    let spec = &vpa.spec;
    if spec.target_ref.as_ref().is_none_or(Value::is_null) && opts.is_create {
        out.errors.push(FieldError::required(
            "spec.targetRef",
            "If you're using v1beta1 version of the API, please migrate to v1",
        ));
    }
    if let Some(p) = &spec.update_policy {
        validate_update_policy(p, "spec.updatePolicy", opts, &mut out);
    }
    for (i, p) in vpa.container_policies().iter().enumerate() {
        validate_container_policy(
            p,
            &format!("spec.resourcePolicy.containerPolicies[{i}]"),
            opts,
            &mut out,
        );
    }
    if let Some(boost) = &spec.startup_boost {
        validate_startup_boost(boost, "spec.startupBoost", opts, &mut out.errors);
    }
    let recommenders = spec.recommenders.as_ref().map_or(0, Vec::len);
    if recommenders > 1 {
        out.errors
            .push(FieldError::too_many("spec.recommenders", recommenders, 1));
    }
    out
}

/// Validates an object being created (`old: None`) or updated, as upstream's handler does.
pub fn validate_vpa(
    new: &SubmittedVpa,
    old: Option<&SubmittedVpa>,
    gates: &FeatureGates,
) -> Validation {
    validate(new, &ValidationOptions::for_request(old, gates))
}

/// The defaulting patch: `add /spec/updatePolicy {"updateMode":"Recreate"}` when the object
/// has no update policy.
pub fn default_patches(vpa: &SubmittedVpa) -> Vec<PatchOperation> {
    if vpa.spec.update_policy.is_some() {
        return Vec::new();
    }
    vec![PatchOperation::add(
        "/spec/updatePolicy",
        serde_json::json!({"updateMode": "Recreate"}),
    )]
}

/// The webhook's answer for one VPA object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VpaReview {
    /// Field errors; when not empty the object is rejected and `patches` is empty.
    pub errors: Vec<FieldError>,
    /// Warnings for the client.
    pub warnings: Vec<String>,
    /// Defaulting patches for an accepted object.
    pub patches: Vec<PatchOperation>,
}

impl VpaReview {
    /// Whether the object is accepted.
    pub fn allowed(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Everything upstream's VPA handler does with a CREATE or UPDATE request: decode the object
/// (and the old one on UPDATE), validate, and default. An object that does not decode gives
/// one internal error at field `.`, as upstream's.
pub fn review_vpa(object: &Value, old_object: Option<&Value>, gates: &FeatureGates) -> VpaReview {
    let decode_error = |e: serde_json::Error| VpaReview {
        errors: vec![FieldError::internal(".", &e.to_string())],
        ..Default::default()
    };
    let new = match SubmittedVpa::from_json(object) {
        Ok(v) => v,
        Err(e) => return decode_error(e),
    };
    let old = match old_object.map(SubmittedVpa::from_json).transpose() {
        Ok(v) => v,
        Err(e) => return decode_error(e),
    };
    let Validation { errors, warnings } = validate_vpa(&new, old.as_ref(), gates);
    let patches = if errors.is_empty() {
        default_patches(&new)
    } else {
        Vec::new()
    };
    VpaReview {
        errors,
        warnings,
        patches,
    }
}

#[cfg(test)]
mod tests;
