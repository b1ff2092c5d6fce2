//! vpa-recommender: turns container usage into VPA recommendations.
//!
//! This crate holds the command-line configuration, the CSV trace reader and the offline
//! replay (`vpa-recommender replay`) over the pure engine in `vpa-core`; the in-cluster
//! recommender loop builds on the same pieces.

pub mod cli;
pub mod config;
pub mod controller;
pub mod engine;
pub mod feeder;
pub mod history;
pub mod history_load;
pub mod metrics;
pub mod metrics_source;
pub mod output;
pub mod plot;
pub mod pod_store;
pub mod replay;
pub mod run;
pub mod status;
pub mod trace;

/// The example trace shipped in the binary: several workloads over 8.5 days.
pub const EXAMPLE_TRACE: &str = include_str!("../../examples/trace.csv");
