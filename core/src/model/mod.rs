//! The recommender's data model: resource amounts, usage samples, per-container state and
//! aggregated state per aggregation key (pure; upstream `pkg/recommender/model`).

mod aggregate;
mod cluster;
mod config;
mod container;
mod resources;
mod sample;

pub use aggregate::{AggregateCheckpoint, AggregateContainerState, CheckpointError};
pub use cluster::{ClusterModel, ModelError, ObjectId, PodPhase, Vpa};
pub use config::{
    AggregationsConfig, DEFAULT_HISTOGRAM_BUCKET_SIZE_GROWTH, DEFAULT_HISTOGRAM_DECAY_HALF_LIFE,
    DEFAULT_MEMORY_AGGREGATION_INTERVAL, DEFAULT_MEMORY_AGGREGATION_INTERVAL_COUNT,
    DEFAULT_OOM_BUMP_UP_RATIO, DEFAULT_OOM_MIN_BUMP_UP, EPSILON, MIN_SAMPLE_WEIGHT,
    SUPPORTED_CHECKPOINT_VERSION, cpu_histogram_options, memory_histogram_options,
};
pub use container::{Aggregator, ContainerState, OomError};
pub use resources::{
    MAX_RESOURCE_AMOUNT, ResourceAmount, ResourceKind, Resources, ScaleError,
    bytes_from_memory_amount, cores_from_cpu_amount, cpu_amount_from_cores,
    humanize_memory_quantity, memory_amount_from_bytes, resource_amount_from_float,
    round_up_to_scale, scale_resource,
};
pub use sample::UsageSample;

#[cfg(test)]
mod tests;
