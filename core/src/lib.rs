//! vpa-core: the shared library of vpa-rs.
//!
//! Pure modules (`quantity`, `time`, `gomath`, `histogram`, `model`, `estimator`, `recommender`,
//! `recommendation`, `policy`, `labels`, `conditions`) take plain values and an explicit `now`: no kube types, no clock
//! reads, no I/O. `api` holds the Kubernetes-facing CRD types; `checkpoint` and `api::convert`
//! convert between the API's types and the engine's.

pub mod api;
pub mod checkpoint;
pub mod conditions;
pub mod estimator;
pub mod gomath;
pub mod histogram;
pub mod labels;
pub mod model;
pub mod policy;
pub mod quantity;
pub mod recommendation;
pub mod recommender;
pub mod time;
