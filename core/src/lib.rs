//! vpa-core: the shared library of vpa-rs.
//!
//! Pure modules (`quantity`, `time`, `gomath`, `histogram`, `model`, `estimator`, `recommender`,
//! `recommendation`, `policy`) take plain values and an explicit `now`: no kube types, no clock
//! reads, no I/O. `api` holds the Kubernetes-facing CRD types; `checkpoint` converts between
//! the engine's checkpoints and the API's.

pub mod api;
pub mod checkpoint;
pub mod estimator;
pub mod gomath;
pub mod histogram;
pub mod model;
pub mod policy;
pub mod quantity;
pub mod recommendation;
pub mod recommender;
pub mod time;
