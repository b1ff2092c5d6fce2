//! Resource amounts: CPU in millicores and memory in bytes, as integers (upstream `model/types.go`).

use thiserror::Error;

/// An amount of CPU (millicores) or memory (bytes).
pub type ResourceAmount = i64;

/// The largest amount the engine produces (1e14).
pub const MAX_RESOURCE_AMOUNT: ResourceAmount = 100_000_000_000_000;

/// The two resources the recommender models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    /// CPU, in millicores.
    Cpu,
    /// Memory, in bytes.
    Memory,
}

impl ResourceKind {
    /// The Kubernetes resource name.
    pub const fn name(self) -> &'static str {
        match self {
            ResourceKind::Cpu => "cpu",
            ResourceKind::Memory => "memory",
        }
    }

    /// Parses a Kubernetes resource name; other resources are not modelled.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "cpu" => Some(ResourceKind::Cpu),
            "memory" => Some(ResourceKind::Memory),
            _ => None,
        }
    }
}

/// A CPU and/or memory amount, each optional (upstream's `map[ResourceName]ResourceAmount`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resources {
    /// Millicores.
    pub cpu: Option<ResourceAmount>,
    /// Bytes.
    pub memory: Option<ResourceAmount>,
}

impl Resources {
    /// Both resources set.
    pub const fn new(cpu: ResourceAmount, memory: ResourceAmount) -> Self {
        Self {
            cpu: Some(cpu),
            memory: Some(memory),
        }
    }

    /// The amount of one resource.
    pub fn get(&self, kind: ResourceKind) -> Option<ResourceAmount> {
        match kind {
            ResourceKind::Cpu => self.cpu,
            ResourceKind::Memory => self.memory,
        }
    }

    /// Sets the amount of one resource.
    pub fn set(&mut self, kind: ResourceKind, value: Option<ResourceAmount>) {
        match kind {
            ResourceKind::Cpu => self.cpu = value,
            ResourceKind::Memory => self.memory = value,
        }
    }

    /// Applies `f` to each present amount.
    pub fn map(self, mut f: impl FnMut(ResourceKind, ResourceAmount) -> ResourceAmount) -> Self {
        Self {
            cpu: self.cpu.map(|v| f(ResourceKind::Cpu, v)),
            memory: self.memory.map(|v| f(ResourceKind::Memory, v)),
        }
    }

    /// True when neither resource is set.
    pub fn is_empty(&self) -> bool {
        self.cpu.is_none() && self.memory.is_none()
    }
}

/// Converts a float to an amount: above 1e14 saturates, negative becomes 0, otherwise
/// truncates toward zero. NaN becomes 0 (Go's result is platform-defined; see
/// docs/compatibility.md).
#[inline]
pub fn resource_amount_from_float(amount: f64) -> ResourceAmount {
    if amount > MAX_RESOURCE_AMOUNT as f64 {
        MAX_RESOURCE_AMOUNT
    } else if amount < 0.0 || amount.is_nan() {
        0
    } else {
        amount as ResourceAmount
    }
}

/// Cores to millicores.
#[inline]
pub fn cpu_amount_from_cores(cores: f64) -> ResourceAmount {
    resource_amount_from_float(cores * 1000.0)
}

/// Millicores to cores.
#[inline]
pub fn cores_from_cpu_amount(cpu: ResourceAmount) -> f64 {
    cpu as f64 / 1000.0
}

/// Bytes (float) to a memory amount.
#[inline]
pub fn memory_amount_from_bytes(bytes: f64) -> ResourceAmount {
    resource_amount_from_float(bytes)
}

/// A memory amount as float bytes.
#[inline]
pub fn bytes_from_memory_amount(memory: ResourceAmount) -> f64 {
    memory as f64
}

/// `amount * factor`, converted back with [`resource_amount_from_float`].
#[inline]
pub fn scale_resource(amount: ResourceAmount, factor: f64) -> ResourceAmount {
    resource_amount_from_float(amount as f64 * factor)
}

/// A rounding scale that is not positive.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("scale must be greater than zero")]
pub struct ScaleError;

/// Rounds `value` up to a multiple of `scale` (float arithmetic, as upstream).
pub fn round_up_to_scale(value: ResourceAmount, scale: i64) -> Result<ResourceAmount, ScaleError> {
    if scale <= 0 {
        return Err(ScaleError);
    }
    let rounded = (value as f64 / scale as f64).ceil() as i64;
    Ok(rounded.saturating_mul(scale))
}

/// The deprecated `--humanize-memory` text: two decimals in the largest binary unit not above
/// the value (`"1.50Gi"`), or plain digits below 1 KiB.
pub fn humanize_memory_quantity(bytes: i64) -> String {
    const KIB: i64 = 1024;
    const MIB: i64 = 1024 * KIB;
    const GIB: i64 = 1024 * MIB;
    const TIB: i64 = 1024 * GIB;
    let b = bytes as f64;
    if bytes >= TIB {
        format!("{:.2}Ti", b / TIB as f64)
    } else if bytes >= GIB {
        format!("{:.2}Gi", b / GIB as f64)
    } else if bytes >= MIB {
        format!("{:.2}Mi", b / MIB as f64)
    } else if bytes >= KIB {
        format!("{:.2}Ki", b / KIB as f64)
    } else {
        format!("{bytes}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_026_cpu_amount_from_cores() {
        let cases = [
            (0.069946, 69),
            (0.61535112, 615),
            (0.0172071, 17),
            (0.00455, 4),
            (0.0123456789, 12),
            (0.00123456789, 1),
        ];
        for (cores, milli) in cases {
            assert_eq!(cpu_amount_from_cores(cores), milli, "{cores}");
        }
    }

    #[test]
    fn row_027_memory_amount_from_bytes() {
        let cases = [
            (69.669, 69),
            (12.333, 12),
            (17.357, 17),
            (4.0, 4),
            (12.123456, 12),
            (1.0, 1),
        ];
        for (b, m) in cases {
            assert_eq!(memory_amount_from_bytes(b), m, "{b}");
        }
    }

    #[test]
    fn row_028_scale_resource() {
        let cases = [
            ((69, 1.0), 69),
            ((4, 2.124), 8),
            ((12, 1.1), 13),
            ((1213, 1.2414), 1505),
            ((0, 1.0), 0),
            ((11, 0.0), 0),
            ((41208, 1e-6), 0),
        ];
        for ((a, f), want) in cases {
            assert_eq!(scale_resource(a, f), want, "{a} * {f}");
        }
    }

    #[test]
    fn row_029_resource_amount_from_float() {
        let cases = [
            (100.5, 100),
            (0.0, 0),
            (-50.5, 0),
            (1e14 + 100.0, MAX_RESOURCE_AMOUNT),
            (1e14, MAX_RESOURCE_AMOUNT),
            (0.125, 0),
            (-0.0001, 0),
        ];
        for (f, want) in cases {
            assert_eq!(resource_amount_from_float(f), want, "{f}");
        }
        assert_eq!(resource_amount_from_float(f64::NAN), 0);
    }

    #[test]
    fn row_030_round_up_to_scale() {
        assert_eq!(round_up_to_scale(100, 7), Ok(105));
        assert_eq!(round_up_to_scale(100, 10), Ok(100));
        assert_eq!(round_up_to_scale(0, 5), Ok(0));
        assert_eq!(round_up_to_scale(100, -5), Err(ScaleError));
        assert_eq!(round_up_to_scale(100, 0), Err(ScaleError));
        assert_eq!(ScaleError.to_string(), "scale must be greater than zero");
    }

    #[test]
    fn row_031_humanize_memory_quantity() {
        let cases = [
            (1024, "1.00Ki"),
            (1_048_576, "1.00Mi"),
            (1_073_741_824, "1.00Gi"),
            (1_099_511_627_776, "1.00Ti"),
            (268_435_456, "256.00Mi"),
            (1_610_612_736, "1.50Gi"),
        ];
        for (b, s) in cases {
            assert_eq!(humanize_memory_quantity(b), s);
        }
    }

    #[test]
    fn row_032_humanize_memory_quantity_rounding() {
        let cases = [
            (1_050_000, "1.00Mi"),
            (1537, "1.50Ki"),
            (4_992_073_454, "4.65Gi"),
            (6_499_152_537, "6.05Gi"),
            (16_357_476_492, "15.23Gi"),
            (4_022_251_530, "3.75Gi"),
            (13_580_968_030, "12.65Gi"),
            (15_530_468_536, "14.46Gi"),
        ];
        for (b, s) in cases {
            assert_eq!(humanize_memory_quantity(b), s, "{b}");
        }
        assert_eq!(humanize_memory_quantity(512), "512");
    }
}
