//! One `admission.k8s.io/v1` AdmissionReview in, one out: decoding, dispatch by
//! `request.resource` to the [`Hooks`], and the response (no I/O, no clock).
//!
//! Decoding is two passes over the body. The first reads only the envelope (`kind`,
//! `apiVersion`, `request.uid`, `request.resource`, `request.operation`); a body that is not a
//! JSON object of kind `AdmissionReview`, version `admission.k8s.io/v1`, with a request and a
//! uid is a [`ReviewError`] (HTTP 400 — upstream answers such bodies with `allowed: true`).
//! The second decodes the whole review with the typed object (`Pod` or the v1
//! `VerticalPodAutoscaler`); a review that fails there is a problem we cannot handle, and is
//! admitted unchanged with a warning.
//!
//! Dispatch (by group and resource, any version, as upstream):
//! * `""/pods`, CREATE, no subresource → [`PodMutator`]. Never denied: errors and panics of
//!   the mutator admit the pod unchanged with a warning.
//! * `autoscaling.k8s.io/verticalpodautoscalers`, CREATE or UPDATE, no subresource →
//!   [`VpaValidator`]; a denial is a 422 `Invalid` Status. A VPA that does not decode into the
//!   v1 type is admitted with a warning (upstream denies it): the API server's CRD schema
//!   validation, which runs after mutating webhooks, rejects it with a clearer message.
//! * Anything else, or a resource without a hook, is admitted unchanged.

use std::panic::{AssertUnwindSafe, catch_unwind};

use base64::Engine as _;
use k8s_openapi::api::core::v1::Pod;
use kube::api::DynamicObject;
use kube::core::Status;
use kube::core::admission::{AdmissionRequest, AdmissionReview};
use kube::core::response::{StatusCause, StatusDetails, StatusSummary};
use serde::{Deserialize, Serialize};

use crate::hooks::{Hooks, Mutation, Verdict};
use crate::metrics::{AdmissionMetrics, AdmissionResource, AdmissionStatus};

/// Largest accepted request body (upstream's limit).
pub const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;

/// The only review version served.
pub const API_VERSION: &str = "admission.k8s.io/v1";
/// The review kind.
pub const KIND: &str = "AdmissionReview";
/// The VPA API group.
pub const VPA_GROUP: &str = "autoscaling.k8s.io";

/// Longest warning we produce ourselves (the API server may truncate longer ones).
const MAX_WARNING_CHARS: usize = 256;

/// A body that is not a usable AdmissionReview (answered with HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    /// Not JSON, or not an object with the expected field types.
    #[error("the body is not a JSON AdmissionReview: {0}")]
    Json(String),
    /// `kind` is not AdmissionReview.
    #[error("kind is {0:?}; expected \"AdmissionReview\"")]
    Kind(String),
    /// `apiVersion` is not admission.k8s.io/v1.
    #[error("apiVersion is {0:?}; only \"admission.k8s.io/v1\" is served")]
    ApiVersion(String),
    /// No `request`.
    #[error("the AdmissionReview has no request")]
    MissingRequest,
    /// No `request.uid`.
    #[error("request.uid is missing or empty")]
    MissingUid,
}

/// The envelope read by the first pass. Unknown fields are skipped without allocating.
#[derive(Deserialize)]
struct Head {
    kind: Option<String>,
    #[serde(rename = "apiVersion")]
    api_version: Option<String>,
    request: Option<RequestHead>,
}

#[derive(Deserialize)]
struct RequestHead {
    uid: Option<String>,
    resource: Option<serde_json::Value>,
    #[serde(rename = "subResource")]
    sub_resource: Option<serde_json::Value>,
    operation: Option<serde_json::Value>,
}

/// The facts dispatch needs, from the envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// `request.uid`.
    pub uid: String,
    /// `request.resource.group` (empty if absent or not a string).
    pub group: String,
    /// `request.resource.resource`.
    pub resource: String,
    /// `request.subResource` (empty if absent).
    pub sub_resource: String,
    /// `request.operation`.
    pub operation: String,
}

fn str_field(v: Option<&serde_json::Value>, key: &str) -> String {
    v.and_then(|v| v.get(key))
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string()
}

/// First pass: the envelope, or why the body is not a usable review.
pub fn decode_envelope(body: &[u8]) -> Result<Envelope, ReviewError> {
    let head: Head = serde_json::from_slice(body).map_err(|e| ReviewError::Json(e.to_string()))?;
    let kind = head.kind.unwrap_or_default();
    if kind != KIND {
        return Err(ReviewError::Kind(kind));
    }
    let api_version = head.api_version.unwrap_or_default();
    if api_version != API_VERSION {
        return Err(ReviewError::ApiVersion(api_version));
    }
    let request = head.request.ok_or(ReviewError::MissingRequest)?;
    let uid = request
        .uid
        .filter(|u| !u.is_empty())
        .ok_or(ReviewError::MissingUid)?;
    Ok(Envelope {
        uid,
        group: str_field(request.resource.as_ref(), "group"),
        resource: str_field(request.resource.as_ref(), "resource"),
        sub_resource: request
            .sub_resource
            .as_ref()
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string(),
        operation: request
            .operation
            .as_ref()
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string(),
    })
}

/// The `response` of the outgoing AdmissionReview.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewResponse {
    /// The request's uid.
    pub uid: String,
    /// Whether the object is admitted.
    pub allowed: bool,
    /// Why not (denials only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Base64 of the JSON patch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    /// `JSONPatch` when there is a patch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<&'static str>,
    /// Warnings for the client.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl ReviewResponse {
    fn allowed(uid: &str) -> Self {
        Self {
            uid: uid.to_string(),
            allowed: true,
            status: None,
            patch: None,
            patch_type: None,
            warnings: Vec::new(),
        }
    }
}

#[derive(Serialize)]
struct ReviewOut<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    response: &'a ReviewResponse,
}

/// The outcome of one review, with its metric labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Reviewed {
    /// The response.
    pub response: ReviewResponse,
    /// Latency `status` label.
    pub status: AdmissionStatus,
    /// Latency `resource` label.
    pub resource: AdmissionResource,
    /// True when the object was admitted unchanged because of an internal problem.
    pub hook_error: bool,
    /// True when a pod reached the mutator (counted in `admission_pods_total`).
    pub pod_handled: bool,
}

impl Reviewed {
    /// The whole outgoing AdmissionReview as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        let out = ReviewOut {
            api_version: API_VERSION,
            kind: KIND,
            response: &self.response,
        };
        match serde_json::to_vec(&out) {
            Ok(v) => v,
            // Unreachable for these types; still answer with a valid review.
            Err(_) => format!(
                "{{\"apiVersion\":\"{API_VERSION}\",\"kind\":\"{KIND}\",\"response\":{{\"uid\":{},\"allowed\":true}}}}",
                serde_json::Value::String(self.response.uid.clone())
            )
            .into_bytes(),
        }
    }

    /// Updates the metrics of this outcome except the latency (the caller times the request).
    pub fn record(&self, metrics: &AdmissionMetrics) {
        if self.pod_handled {
            metrics.pod_admitted(self.status == AdmissionStatus::Applied);
        }
        if self.hook_error {
            metrics.hook_error(self.resource);
        }
        if self.resource == AdmissionResource::Vpa && !self.response.allowed {
            metrics.vpa_denied();
        }
        metrics.warnings(self.resource, self.response.warnings.len());
    }
}

fn truncate(mut s: String) -> String {
    if let Some((i, _)) = s.char_indices().nth(MAX_WARNING_CHARS) {
        s.truncate(i);
    }
    s
}

/// Dispatches reviews to the hooks.
#[derive(Clone, Debug, Default)]
pub struct Reviewer {
    hooks: Hooks,
}

impl Reviewer {
    /// A reviewer calling these hooks.
    pub fn new(hooks: Hooks) -> Self {
        Self { hooks }
    }

    /// Reviews one request body.
    pub fn review(&self, body: &[u8]) -> Result<Reviewed, ReviewError> {
        let env = decode_envelope(body)?;
        if !env.sub_resource.is_empty() {
            return Ok(self.unhandled(&env, AdmissionResource::Unknown));
        }
        match (env.group.as_str(), env.resource.as_str()) {
            ("", "pods") => Ok(self.pod(&env, body)),
            (VPA_GROUP, "verticalpodautoscalers") => Ok(self.vpa(&env, body)),
            _ => Ok(self.unhandled(&env, AdmissionResource::Unknown)),
        }
    }

    /// Admitted unchanged: not ours (upstream counts this as `error`/`unknown`), or an
    /// operation we do not handle.
    fn unhandled(&self, env: &Envelope, resource: AdmissionResource) -> Reviewed {
        Reviewed {
            response: ReviewResponse::allowed(&env.uid),
            status: if resource == AdmissionResource::Unknown {
                AdmissionStatus::Error
            } else {
                AdmissionStatus::Skipped
            },
            resource,
            hook_error: false,
            pod_handled: false,
        }
    }

    /// Admitted unchanged with a warning, because of a problem on our side.
    fn trouble(env: &Envelope, resource: AdmissionResource, warning: String) -> Reviewed {
        tracing::warn!(uid = %env.uid, resource = resource.as_str(), "{warning}");
        let mut response = ReviewResponse::allowed(&env.uid);
        response.warnings.push(truncate(warning));
        Reviewed {
            response,
            status: AdmissionStatus::Error,
            resource,
            hook_error: true,
            pod_handled: resource == AdmissionResource::Pod,
        }
    }

    fn mutated(env: &Envelope, resource: AdmissionResource, m: Mutation) -> Reviewed {
        let mut response = ReviewResponse::allowed(&env.uid);
        response.warnings = m.warnings;
        if m.patch.0.is_empty() {
            return Reviewed {
                response,
                status: AdmissionStatus::Skipped,
                resource,
                hook_error: false,
                pod_handled: resource == AdmissionResource::Pod,
            };
        }
        match serde_json::to_vec(&m.patch) {
            Ok(json) => {
                response.patch = Some(base64::engine::general_purpose::STANDARD.encode(json));
                response.patch_type = Some("JSONPatch");
                Reviewed {
                    response,
                    status: AdmissionStatus::Applied,
                    resource,
                    hook_error: false,
                    pod_handled: resource == AdmissionResource::Pod,
                }
            }
            Err(e) => Self::trouble(
                env,
                resource,
                format!("vpa-admission: cannot encode the patch ({e}); object not changed"),
            ),
        }
    }

    fn pod(&self, env: &Envelope, body: &[u8]) -> Reviewed {
        let resource = AdmissionResource::Pod;
        let Some(mutator) = &self.hooks.pods else {
            return self.unhandled(env, resource);
        };
        if env.operation != "CREATE" {
            return self.unhandled(env, resource);
        }
        let req = match decode_request::<Pod>(body) {
            Ok(req) => req,
            Err(e) => {
                return Self::trouble(
                    env,
                    resource,
                    format!("vpa-admission: cannot read the pod ({e}); resources not changed"),
                );
            }
        };
        if req.object.is_none() {
            return Self::trouble(
                env,
                resource,
                "vpa-admission: the review carries no pod; resources not changed".into(),
            );
        }
        match catch_unwind(AssertUnwindSafe(|| mutator.mutate(&req))) {
            Ok(Ok(m)) => Self::mutated(env, resource, m),
            Ok(Err(e)) => Self::trouble(
                env,
                resource,
                format!("vpa-admission: {e}; resources not changed"),
            ),
            Err(_) => Self::trouble(
                env,
                resource,
                "vpa-admission: internal error (panic) computing the patch; resources not changed"
                    .into(),
            ),
        }
    }

    fn vpa(&self, env: &Envelope, body: &[u8]) -> Reviewed {
        let resource = AdmissionResource::Vpa;
        let Some(validator) = &self.hooks.vpas else {
            return self.unhandled(env, resource);
        };
        if env.operation != "CREATE" && env.operation != "UPDATE" {
            return self.unhandled(env, resource);
        }
        let req = match decode_request::<DynamicObject>(body) {
            Ok(req) => req,
            Err(e) => {
                return Self::trouble(
                    env,
                    resource,
                    format!(
                        "vpa-admission: cannot read the VerticalPodAutoscaler ({e}); not validated"
                    ),
                );
            }
        };
        let Some(object) = &req.object else {
            return Self::trouble(
                env,
                resource,
                "vpa-admission: the review carries no VerticalPodAutoscaler; not validated".into(),
            );
        };
        let name = object
            .metadata
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| req.name.clone());
        let kind = if req.kind.kind.is_empty() {
            "VerticalPodAutoscaler".to_string()
        } else {
            req.kind.kind.clone()
        };
        match catch_unwind(AssertUnwindSafe(|| validator.validate(&req))) {
            Ok(Verdict::Allow(m)) => Self::mutated(env, resource, m),
            Ok(Verdict::Deny { errors, warnings }) => {
                let mut response = ReviewResponse::allowed(&env.uid);
                response.allowed = false;
                response.status = Some(invalid_status(&kind, &name, &errors));
                response.warnings = warnings;
                Reviewed {
                    response,
                    status: AdmissionStatus::Error,
                    resource,
                    hook_error: false,
                    pod_handled: false,
                }
            }
            Err(_) => Self::trouble(
                env,
                resource,
                "vpa-admission: internal error (panic) validating the VerticalPodAutoscaler; not validated"
                    .into(),
            ),
        }
    }
}

/// Second pass: the typed request.
fn decode_request<T>(body: &[u8]) -> Result<AdmissionRequest<T>, String>
where
    T: kube::Resource + serde::de::DeserializeOwned,
{
    let review: AdmissionReview<T> = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    review
        .try_into()
        .map_err(|e: kube::core::admission::ConvertAdmissionReviewError| e.to_string())
}

/// apimachinery's `NewInvalid` Status: 422, reason `Invalid`, the message
/// `<Kind>.<group> "<name>" is invalid: <errors>` (a single error bare, several as `[a, b]`),
/// one cause per error.
pub fn invalid_status(kind: &str, name: &str, errors: &[String]) -> Status {
    let aggregate = match errors {
        [] => "unknown error".to_string(),
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    };
    let name_json = serde_json::Value::String(name.to_string()).to_string();
    Status {
        status: Some(StatusSummary::Failure),
        code: 422,
        message: format!("{kind}.{VPA_GROUP} {name_json} is invalid: {aggregate}"),
        metadata: None,
        reason: "Invalid".to_string(),
        details: Some(StatusDetails {
            name: name.to_string(),
            group: VPA_GROUP.to_string(),
            kind: kind.to_string(),
            uid: String::new(),
            causes: errors.iter().map(|e| cause(e)).collect(),
            retry_after_seconds: 0,
        }),
    }
}

/// A field error `"<field>: <Type>: <detail>"` as a StatusCause.
fn cause(error: &str) -> StatusCause {
    const TYPES: [(&str, &str); 8] = [
        ("Required value", "FieldValueRequired"),
        ("Invalid value", "FieldValueInvalid"),
        ("Unsupported value", "FieldValueNotSupported"),
        ("Forbidden", "FieldValueForbidden"),
        ("Too many", "FieldValueTooMany"),
        ("Too long", "FieldValueTooLong"),
        ("Duplicate value", "FieldValueDuplicate"),
        ("Not found", "FieldValueNotFound"),
    ];
    let (field, rest) = error.split_once(": ").unwrap_or(("", error));
    let reason = TYPES
        .iter()
        .find(|(t, _)| rest.starts_with(t))
        .map_or("FieldValueInvalid", |(_, r)| r);
    StatusCause {
        reason: reason.to_string(),
        message: rest.to_string(),
        field: field.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests;
