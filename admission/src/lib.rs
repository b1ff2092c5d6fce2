//! vpa-admission: the admission controller of vpa-rs, an HTTPS mutating webhook that sets pod
//! requests and limits from VPA recommendations and validates VPA objects.
//!
//! * [`config`]: the flags.
//! * [`hooks`]: the [`hooks::PodMutator`] and [`hooks::VpaValidator`] extension points.
//! * [`mutator`]: the pod mutator (VPA index + patch builder).
//! * [`validator`]: the VPA validator.
//! * [`review`]: AdmissionReview decoding, dispatch and response (pure).
//! * [`server`]: the axum router and the TLS accept loop.
//! * [`tls`]: rustls configuration, certificate loading, generation and reloading.
//! * [`registration`]: the MutatingWebhookConfiguration.
//! * [`status_lease`]: the Lease the updater checks.
//! * [`metrics`]: Prometheus metrics.
//! * [`run`]: wiring and shutdown.

pub mod config;
pub mod hooks;
pub mod metrics;
pub mod mutator;
pub mod registration;
pub mod review;
pub mod run;
pub mod server;
pub mod status_lease;
pub mod tls;
pub mod validator;
