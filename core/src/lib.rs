//! vpa-core: the shared library of vpa-rs.
//!
//! Pure modules (`quantity`, `time`, `gomath`, `histogram`, `model`, `estimator`, `recommender`,
//! `recommendation`, `policy`, `labels`, `conditions`, `pod`, `limitrange`, `pod_resources`,
//! `patch`, `validation`) take plain values and an explicit `now`: no kube types, no clock
//! reads, no I/O. `api` holds the Kubernetes-facing CRD types; `checkpoint` and `api::convert`
//! convert between the API's types and the engine's.
//!
//! `runtime` (cargo feature `runtime`) is the shared I/O glue of the three binaries: common
//! flags, telemetry, the kube client, the admin server, shutdown and leader election.

pub mod api;
pub mod checkpoint;
pub mod conditions;
pub mod estimator;
pub mod features;
pub mod gomath;
pub mod histogram;
pub mod labels;
pub mod limitrange;
pub mod matcher;
pub mod model;
pub mod patch;
pub mod pod;
pub mod pod_resources;
pub mod policy;
pub mod quantity;
pub mod recommendation;
pub mod recommender;
#[cfg(feature = "runtime")]
pub mod runtime;
pub mod time;
pub mod validation;
