//! The two extension points of the webhook: [`PodMutator`] (pod CREATE → JSON patch) and
//! [`VpaValidator`] (VPA CREATE/UPDATE → allow, possibly with a defaulting patch, or deny),
//! and [`Hooks`], the pair handed to the server.
//!
//! Both are synchronous and must not do I/O: they answer from in-memory state (the VPA index)
//! on the request path. [`crate::review`] calls them inside `catch_unwind`, so a panic is
//! treated as an internal error, never as a crash of the connection.
//!
//! Contract, enforced by the caller rather than the implementations:
//! * A pod is never denied: a [`MutationError`] becomes "allowed, unchanged" plus a warning and
//!   a metric.
//! * A [`Verdict::Deny`] becomes a `422 Invalid` Status whose message has upstream's form
//!   `VerticalPodAutoscaler.autoscaling.k8s.io "<name>" is invalid: <errors>`.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::api::DynamicObject;
use kube::core::admission::AdmissionRequest;

/// What a hook wants done to an admitted object: JSON patch operations (RFC 6902, applied by
/// the API server to the object as sent) and warnings for the client.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mutation {
    /// The patch; empty means "unchanged".
    pub patch: json_patch::Patch,
    /// Warnings returned to the API client (kubectl prints them).
    pub warnings: Vec<String>,
}

impl Mutation {
    /// No change, no warning.
    pub fn unchanged() -> Self {
        Self::default()
    }

    /// A mutation with these operations.
    pub fn with_patch(ops: Vec<json_patch::PatchOperation>) -> Self {
        Self {
            patch: json_patch::Patch(ops),
            warnings: Vec::new(),
        }
    }

    /// Adds a warning.
    #[must_use]
    pub fn warn(mut self, warning: impl Into<String>) -> Self {
        self.warnings.push(warning.into());
        self
    }
}

/// An internal failure of a [`PodMutator`]: the pod is admitted unchanged and the message is
/// returned as a warning.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MutationError(pub String);

impl MutationError {
    /// From anything displayable.
    pub fn new(message: impl std::fmt::Display) -> Self {
        Self(message.to_string())
    }
}

/// Computes the patch for a pod being created. `req.object` is the pod; `req.namespace` its
/// namespace (a pod created with `generateName` has an empty `req.name`).
pub trait PodMutator: Send + Sync {
    /// The mutation for this pod, or an internal error (never a denial).
    fn mutate(&self, req: &AdmissionRequest<Pod>) -> Result<Mutation, MutationError>;
}

/// The answer of a [`VpaValidator`].
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Admit the VPA, with an optional defaulting patch and warnings.
    Allow(Mutation),
    /// Reject the VPA.
    Deny {
        /// Field errors in apimachinery's form, e.g.
        /// `spec.updatePolicy.minReplicas: Invalid value: 0: minReplicas has to be positive`.
        errors: Vec<String>,
        /// Warnings returned with the denial.
        warnings: Vec<String>,
    },
}

/// Validates (and defaults) a VPA being created or updated. `req.object` is the new VPA,
/// `req.old_object` the stored one on UPDATE, both untyped: the validator must see (and
/// explain) objects that do not decode into the typed API, e.g. an unknown `updateMode`.
pub trait VpaValidator: Send + Sync {
    /// The verdict for this VPA.
    fn validate(&self, req: &AdmissionRequest<DynamicObject>) -> Verdict;
}

/// The hooks the webhook dispatches to. A missing hook admits its resource unchanged, as an
/// unregistered resource handler does upstream.
#[derive(Clone, Default)]
pub struct Hooks {
    /// Called for `""/pods` CREATE.
    pub pods: Option<Arc<dyn PodMutator>>,
    /// Called for `autoscaling.k8s.io/verticalpodautoscalers` CREATE and UPDATE.
    pub vpas: Option<Arc<dyn VpaValidator>>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("pods", &self.pods.is_some())
            .field("vpas", &self.vpas.is_some())
            .finish()
    }
}

impl Hooks {
    /// Both hooks.
    pub fn new(pods: Arc<dyn PodMutator>, vpas: Arc<dyn VpaValidator>) -> Self {
        Self {
            pods: Some(pods),
            vpas: Some(vpas),
        }
    }
}
