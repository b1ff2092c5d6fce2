//! One usage measurement of one container (upstream `ContainerUsageSample`).

use super::resources::{ResourceAmount, ResourceKind};
use crate::time::Timestamp;

/// A CPU or memory measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageSample {
    /// Start of the measurement window (upstream feeds the PodMetrics timestamp, the window end).
    pub measure_start: Timestamp,
    /// Millicores or bytes.
    pub usage: ResourceAmount,
    /// The container's request of that resource at the time.
    pub request: ResourceAmount,
    /// Which resource.
    pub resource: ResourceKind,
}

impl UsageSample {
    /// A CPU sample.
    pub const fn cpu(measure_start: Timestamp, millicores: ResourceAmount) -> Self {
        Self {
            measure_start,
            usage: millicores,
            request: 0,
            resource: ResourceKind::Cpu,
        }
    }

    /// A memory sample.
    pub const fn memory(measure_start: Timestamp, bytes: ResourceAmount) -> Self {
        Self {
            measure_start,
            usage: bytes,
            request: 0,
            resource: ResourceKind::Memory,
        }
    }

    /// Non-negative usage of the expected resource.
    pub fn is_valid(&self, expected: ResourceKind) -> bool {
        self.usage >= 0 && self.resource == expected
    }
}
