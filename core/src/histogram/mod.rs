//! Usage histograms: bucket layouts, the plain weighted histogram and its decaying variant.
//!
//! Bucket layouts, percentiles, epsilon handling and the checkpoint encoding follow upstream
//! exactly (behaviour file §1.2–§1.4), down to the floating-point operations, so a checkpoint
//! written here loads in upstream and the same samples give the same recommendation.

mod decaying;
mod options;
mod plain;

pub use decaying::DecayingHistogram;
pub use options::{HistogramOptions, OptionsError};
pub use plain::{Histogram, HistogramCheckpoint, HistogramError, MAX_CHECKPOINT_WEIGHT};
