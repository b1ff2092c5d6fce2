//! Bucket layouts: exponential (production) and linear (tests), with upstream's formulas.

use crate::gomath;
use thiserror::Error;

/// An invalid bucket layout.
#[derive(Debug, Error, PartialEq)]
pub enum OptionsError {
    /// A parameter is out of its range.
    #[error("invalid histogram options: {0}")]
    Invalid(&'static str),
}

/// How values map to buckets. Immutable once built; histograms share it through an `Arc`.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramOptions {
    layout: Layout,
    num_buckets: usize,
    epsilon: f64,
    /// `starts[b]` is the start of bucket `b`, precomputed with upstream's formula.
    starts: Box<[f64]>,
}

#[derive(Debug, Clone, PartialEq)]
enum Layout {
    Linear {
        bucket_size: f64,
    },
    Exponential {
        first_bucket_size: f64,
        ratio_minus_one: f64,
        log_ratio: f64,
    },
}

impl HistogramOptions {
    /// Buckets of equal size: `[0, size), [size, 2 size), …`, the last one unbounded.
    pub fn linear(max_value: f64, bucket_size: f64, epsilon: f64) -> Result<Self, OptionsError> {
        if !(max_value > 0.0 && bucket_size > 0.0 && epsilon > 0.0) {
            return Err(OptionsError::Invalid(
                "maxValue, bucketSize and epsilon must be > 0",
            ));
        }
        let n = (max_value / bucket_size).ceil();
        if !(n.is_finite() && n < 1e6) {
            return Err(OptionsError::Invalid("too many buckets"));
        }
        let num_buckets = n as usize + 1;
        let starts = (0..num_buckets)
            .map(|b| bucket_size * b as f64)
            .collect::<Vec<_>>()
            .into_boxed_slice();
        Ok(Self {
            layout: Layout::Linear { bucket_size },
            num_buckets,
            epsilon,
            starts,
        })
    }

    /// Buckets growing by `ratio`: bucket `n >= 1` starts at
    /// `first_bucket_size * (ratio^n - 1) / (ratio - 1)`; bucket 0 starts at 0.
    pub fn exponential(
        max_value: f64,
        first_bucket_size: f64,
        ratio: f64,
        epsilon: f64,
    ) -> Result<Self, OptionsError> {
        if !(max_value > 0.0 && first_bucket_size > 0.0 && ratio > 1.0 && epsilon > 0.0) {
            return Err(OptionsError::Invalid(
                "maxValue, firstBucketSize and epsilon must be > 0 and ratio > 1",
            ));
        }
        let n = (gomath::log(max_value * (ratio - 1.0) / first_bucket_size + 1.0)
            / gomath::log(ratio))
        .ceil();
        if !(n.is_finite() && n < 1e6) {
            return Err(OptionsError::Invalid("too many buckets"));
        }
        Ok(Self::exponential_trusted(
            max_value,
            first_bucket_size,
            ratio,
            epsilon,
        ))
    }

    /// [`HistogramOptions::exponential`] for parameters known to be valid (the production
    /// constants). Invalid ones give a one-bucket layout instead of an error.
    pub(crate) fn exponential_trusted(
        max_value: f64,
        first_bucket_size: f64,
        ratio: f64,
        epsilon: f64,
    ) -> Self {
        let ratio_minus_one = ratio - 1.0;
        let log_ratio = gomath::log(ratio);
        let n =
            (gomath::log(max_value * ratio_minus_one / first_bucket_size + 1.0) / log_ratio).ceil();
        let num_buckets = if n.is_finite() && (0.0..1e6).contains(&n) {
            n as usize + 1
        } else {
            1
        };
        let starts = (0..num_buckets)
            .map(|b| {
                if b == 0 {
                    0.0
                } else {
                    first_bucket_size * (gomath::powi(ratio, b as u32) - 1.0) / ratio_minus_one
                }
            })
            .collect::<Vec<_>>()
            .into_boxed_slice();
        Self {
            layout: Layout::Exponential {
                first_bucket_size,
                ratio_minus_one,
                log_ratio,
            },
            num_buckets,
            epsilon,
            starts,
        }
    }

    /// Number of buckets.
    pub fn num_buckets(&self) -> usize {
        self.num_buckets
    }

    /// Weights below this count as zero.
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// The bucket a value falls into, clamped to `[0, num_buckets - 1]`.
    #[inline]
    pub fn find_bucket(&self, value: f64) -> usize {
        let last = self.num_buckets - 1;
        match self.layout {
            Layout::Linear { bucket_size } => {
                let b = value / bucket_size;
                // Go converts with truncation; negatives (and NaN) go to bucket 0.
                if b.is_nan() || b < 1.0 {
                    0
                } else {
                    (b as usize).min(last)
                }
            }
            Layout::Exponential {
                first_bucket_size,
                ratio_minus_one,
                log_ratio,
            } => {
                // NaN compares false: treat it like a tiny value.
                if value.is_nan() || value < first_bucket_size {
                    return 0;
                }
                let b = gomath::log(value * ratio_minus_one / first_bucket_size + 1.0) / log_ratio;
                (b as usize).min(last)
            }
        }
    }

    /// Start of `bucket`, or `None` outside `[0, num_buckets - 1]`.
    #[inline]
    pub fn bucket_start(&self, bucket: usize) -> Option<f64> {
        self.starts.get(bucket).copied()
    }

    /// All bucket starts.
    pub fn bucket_starts(&self) -> &[f64] {
        &self.starts
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    // Conformance row 1.
    #[test]
    fn row_001_linear_options() {
        let o = HistogramOptions::linear(5.0, 0.3, 0.001).unwrap();
        assert_eq!(o.num_buckets(), 18);
        assert_eq!(o.bucket_start(0), Some(0.0));
        assert!(close(o.bucket_start(17).unwrap(), 5.1));
        assert_eq!(o.find_bucket(-1.0), 0);
        assert_eq!(o.find_bucket(0.0), 0);
        assert_eq!(o.find_bucket(1.3), 4);
        assert_eq!(o.find_bucket(100.0), 17);
    }

    // Conformance row 2.
    #[test]
    fn row_002_exponential_options_starts() {
        let o = HistogramOptions::exponential(500.0, 40.0, 1.5, 0.001).unwrap();
        assert_eq!(o.num_buckets(), 6);
        let want = [0.0, 40.0, 100.0, 190.0, 325.0, 527.5];
        for (b, w) in want.iter().enumerate() {
            assert!(close(o.bucket_start(b).unwrap(), *w), "bucket {b}");
        }
        assert_eq!(o.bucket_start(6), None);
    }

    // Conformance row 3.
    #[test]
    fn row_003_exponential_find_bucket() {
        let o = HistogramOptions::exponential(500.0, 40.0, 1.5, 0.001).unwrap();
        assert_eq!(o.find_bucket(-1.0), 0);
        assert_eq!(o.find_bucket(39.99), 0);
        assert_eq!(o.find_bucket(40.0), 1);
        assert_eq!(o.find_bucket(100.0), 2);
        assert_eq!(o.find_bucket(900.0), 5);
    }

    #[test]
    fn invalid_options_are_errors() {
        assert!(HistogramOptions::linear(0.0, 1.0, 1.0).is_err());
        assert!(HistogramOptions::exponential(1.0, 1.0, 1.0, 1.0).is_err());
        assert!(HistogramOptions::exponential(f64::NAN, 1.0, 2.0, 1.0).is_err());
    }
}
