//! vpa-updater: decides which pods of which VPAs to evict or resize in place, as upstream
//! VPA 1.7's updater does.
//!
//! The decision logic is pure: it takes plain values ([`view`]) and an explicit `now`, and
//! never reads a clock, the network or the API. The kube-facing edge converts VPA objects,
//! pods and their owners into views (calling vpa-core's capping for each pod's
//! recommendation), drives a [`plan::VpaRound`] per VPA, executes its actions (Eviction API,
//! `pods/resize`) under the [`rate_limit`] buckets, and reports each outcome back.
//!
//! * [`view`]: the input types; [`settings`]: flags and feature gates as plain values.
//! * [`selection`]: which VPAs the loop handles and which VPA controls a pod.
//! * [`restriction`]: replica groups, `minReplicas`, the eviction tolerance and its accounting.
//! * [`priority`]: the update priority of a pod and whether it needs an update at all.
//! * [`eviction_requirements`]: the VPA's `updatePolicy.evictionRequirements`.
//! * [`in_place`]: in-place decisions, the per-pod fallback state and resize rejections.
//! * [`startup_boost`]: the CPU startup boost unboost decision.
//! * [`action`] and [`plan`]: the ordered actions of one loop.
//! * [`rate_limit`]: the token bucket of `--eviction-rate-limit`/`--eviction-rate-burst`.
//! * [`liveness`]: the admission-controller status Lease check that gates each loop.
//! * [`config`]: the command line (upstream flag names and defaults).
//!
//! The edge: [`convert`] (API objects to views, the per-pod recommendation), [`stores`] (the
//! watched caches), [`snapshot`] (one loop's inputs), [`actuator`] (evictions, resizes,
//! events, behind a trait), [`cycle`] (the loop over [`plan::VpaRound`]s), [`metrics`], and
//! [`run`] (the process: admin server, leader election, the interval loop, shutdown).

pub mod action;
pub mod actuator;
pub mod config;
pub mod convert;
pub mod cycle;
pub mod eviction_requirements;
pub mod in_place;
pub mod liveness;
pub mod metrics;
pub mod plan;
pub mod priority;
pub mod rate_limit;
pub mod restriction;
pub mod run;
pub mod selection;
pub mod settings;
pub mod snapshot;
pub mod startup_boost;
pub mod stores;
pub mod view;

#[cfg(test)]
pub(crate) mod testutil;
