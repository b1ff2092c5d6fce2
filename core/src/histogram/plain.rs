//! The plain weighted histogram (upstream `util/histogram.go`).

use super::options::HistogramOptions;
use std::collections::BTreeMap;
use std::sync::Arc;
use thiserror::Error;

/// The weight of the heaviest bucket in a checkpoint; the rest are scaled to it.
pub const MAX_CHECKPOINT_WEIGHT: u32 = 10_000;

/// A histogram that cannot be restored from a checkpoint.
#[derive(Debug, Error, PartialEq)]
pub enum HistogramError {
    /// Negative total weight.
    #[error("cannot load checkpoint with negative weight {0}")]
    NegativeTotalWeight(f64),
    /// A bucket index beyond this layout.
    #[error("checkpoint has bucket {bucket} that is exceeding histogram buckets {num_buckets}")]
    BucketOutOfRange {
        /// The offending bucket.
        bucket: i64,
        /// Buckets in this layout.
        num_buckets: usize,
    },
    /// A negative bucket index.
    #[error("checkpoint has a negative bucket {0}")]
    NegativeBucket(i64),
    /// Two histograms with different layouts or half-lives.
    #[error("cannot merge histograms with different {0}")]
    Incompatible(&'static str),
}

/// The compact, serialisable form of a histogram (upstream `HistogramCheckpoint`, minus the
/// reference time that only decaying histograms carry).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramCheckpoint {
    /// Bucket index to weight, the heaviest bucket scaled to [`MAX_CHECKPOINT_WEIGHT`].
    /// Indices are `i64` so that corrupt checkpoints (negative indices) can be represented
    /// and rejected on load.
    pub bucket_weights: BTreeMap<i64, u32>,
    /// The histogram's total weight, kept exactly.
    pub total_weight: f64,
}

/// Weighted samples in buckets; percentiles return bucket ends.
#[derive(Debug, Clone)]
pub struct Histogram {
    options: Arc<HistogramOptions>,
    weights: Box<[f64]>,
    total_weight: f64,
    min_bucket: u32,
    max_bucket: u32,
}

/// `x - y`, or 0 when the result is below `epsilon` (upstream `safeSubtract`).
#[inline]
fn safe_subtract(x: f64, y: f64, epsilon: f64) -> f64 {
    let r = x - y;
    if r < epsilon { 0.0 } else { r }
}

impl Histogram {
    /// An empty histogram over `options`.
    pub fn new(options: Arc<HistogramOptions>) -> Self {
        let n = options.num_buckets();
        Self {
            weights: vec![0.0; n].into_boxed_slice(),
            total_weight: 0.0,
            min_bucket: (n - 1) as u32,
            max_bucket: 0,
            options,
        }
    }

    /// The bucket layout.
    pub fn options(&self) -> &Arc<HistogramOptions> {
        &self.options
    }

    /// Sum of all weights.
    pub fn total_weight(&self) -> f64 {
        self.total_weight
    }

    /// Weight of one bucket (0 outside the layout).
    pub fn bucket_weight(&self, bucket: usize) -> f64 {
        self.weights.get(bucket).copied().unwrap_or(0.0)
    }

    /// Lowest bucket whose weight is at least epsilon (or the last bucket when empty).
    pub fn min_bucket(&self) -> usize {
        self.min_bucket as usize
    }

    /// Highest bucket whose weight is at least epsilon (or 0 when empty).
    pub fn max_bucket(&self) -> usize {
        self.max_bucket as usize
    }

    /// Adds `weight` at `value`. A negative or NaN weight is ignored (upstream panics).
    #[inline]
    pub fn add_sample(&mut self, value: f64, weight: f64) {
        if weight.is_nan() || weight < 0.0 {
            return;
        }
        let bucket = self.options.find_bucket(value);
        let eps = self.options.epsilon();
        let w = &mut self.weights[bucket];
        *w += weight;
        let heavy = *w >= eps;
        self.total_weight += weight;
        let b = bucket as u32;
        if b < self.min_bucket && heavy {
            self.min_bucket = b;
        }
        if b > self.max_bucket && heavy {
            self.max_bucket = b;
        }
    }

    /// Removes `weight` at `value`, flooring at zero below epsilon. A negative or NaN weight
    /// is ignored (upstream panics).
    pub fn subtract_sample(&mut self, value: f64, weight: f64) {
        if weight.is_nan() || weight < 0.0 {
            return;
        }
        let bucket = self.options.find_bucket(value);
        let eps = self.options.epsilon();
        self.total_weight = safe_subtract(self.total_weight, weight, eps);
        self.weights[bucket] = safe_subtract(self.weights[bucket], weight, eps);
        self.update_min_and_max_bucket();
    }

    /// Adds every bucket of `other`. Both must share one layout.
    pub fn merge(&mut self, other: &Histogram) -> Result<(), HistogramError> {
        if !Arc::ptr_eq(&self.options, &other.options) && *self.options != *other.options {
            return Err(HistogramError::Incompatible("bucket layouts"));
        }
        for b in other.min_bucket..=other.max_bucket {
            self.weights[b as usize] += other.weights[b as usize];
        }
        self.total_weight += other.total_weight;
        self.min_bucket = self.min_bucket.min(other.min_bucket);
        self.max_bucket = self.max_bucket.max(other.max_bucket);
        Ok(())
    }

    /// True when the lowest tracked bucket is below epsilon, i.e. nothing counts.
    pub fn is_empty(&self) -> bool {
        self.weights[self.min_bucket as usize] < self.options.epsilon()
    }

    /// The end of the first bucket at which the cumulative weight reaches `p * total`
    /// (the start of the last bucket, which has no end). 0 for an empty histogram.
    /// Any `p` is accepted: `p <= 0` gives the end of the lowest bucket.
    pub fn percentile(&self, p: f64) -> f64 {
        let Some(bucket) = self.percentile_bucket(p) else {
            return 0.0;
        };
        let starts = self.options.bucket_starts();
        if bucket < starts.len() - 1 {
            starts[bucket + 1]
        } else {
            starts[bucket]
        }
    }

    /// The bucket [`Histogram::percentile`] reports the end of; `None` when empty.
    pub fn percentile_bucket(&self, p: f64) -> Option<usize> {
        if self.is_empty() {
            return None;
        }
        let threshold = p * self.total_weight;
        let mut partial = 0.0;
        let mut bucket = self.min_bucket as usize;
        let max = self.max_bucket as usize;
        while bucket < max {
            partial += self.weights[bucket];
            if partial >= threshold {
                break;
            }
            bucket += 1;
        }
        Some(bucket)
    }

    /// Multiplies every weight by `factor` (>= 0; others are ignored), then drops buckets that
    /// fell below epsilon from the tracked range.
    pub fn scale(&mut self, factor: f64) {
        if factor.is_nan() || factor < 0.0 {
            return;
        }
        for b in self.min_bucket..=self.max_bucket {
            self.weights[b as usize] *= factor;
        }
        self.total_weight *= factor;
        self.update_min_and_max_bucket();
    }

    fn update_min_and_max_bucket(&mut self) {
        let eps = self.options.epsilon();
        let last = (self.options.num_buckets() - 1) as u32;
        while self.weights[self.min_bucket as usize] < eps && self.min_bucket < last {
            self.min_bucket += 1;
        }
        while self.weights[self.max_bucket as usize] < eps && self.max_bucket > 0 {
            self.max_bucket -= 1;
        }
    }

    /// Same layout, same tracked range and bucket weights within 1e-15 (upstream `Equals`).
    pub fn equals(&self, other: &Histogram) -> bool {
        if *self.options != *other.options
            || self.min_bucket != other.min_bucket
            || self.max_bucket != other.max_bucket
        {
            return false;
        }
        (self.min_bucket..=self.max_bucket).all(|b| {
            let (a, o) = (self.weights[b as usize], other.weights[b as usize]);
            (a - o).abs() <= 1e-15
        })
    }

    /// The compact form: the heaviest bucket becomes [`MAX_CHECKPOINT_WEIGHT`], buckets that
    /// round to 0 are dropped, the total weight is kept exactly.
    pub fn save_to_checkpoint(&self) -> HistogramCheckpoint {
        let mut out = HistogramCheckpoint {
            bucket_weights: BTreeMap::new(),
            total_weight: self.total_weight,
        };
        let mut max = 0.0_f64;
        for b in self.min_bucket..=self.max_bucket {
            if self.weights[b as usize] > max {
                max = self.weights[b as usize];
            }
        }
        if max <= 0.0 {
            return out;
        }
        let ratio = f64::from(MAX_CHECKPOINT_WEIGHT) / max;
        for b in self.min_bucket..=self.max_bucket {
            let w = (self.weights[b as usize] * ratio + 0.5).floor();
            // Go's uint32(float) conversion of an in-range value.
            let n = if w >= 1.0 {
                w.min(f64::from(u32::MAX)) as u32
            } else {
                0
            };
            if n > 0 {
                out.bucket_weights.insert(i64::from(b), n);
            }
        }
        out
    }

    /// Adds the content of a checkpoint to this histogram (upstream appends rather than
    /// replaces). Nothing changes on error.
    pub fn load_from_checkpoint(&mut self, cp: &HistogramCheckpoint) -> Result<(), HistogramError> {
        if cp.total_weight < 0.0 {
            return Err(HistogramError::NegativeTotalWeight(cp.total_weight));
        }
        let n = self.options.num_buckets();
        let mut sum: i64 = 0;
        for (&bucket, &w) in &cp.bucket_weights {
            sum += i64::from(w);
            if bucket >= n as i64 {
                return Err(HistogramError::BucketOutOfRange {
                    bucket,
                    num_buckets: n,
                });
            }
            if bucket < 0 {
                return Err(HistogramError::NegativeBucket(bucket));
            }
        }
        if sum == 0 {
            return Ok(());
        }
        let ratio = cp.total_weight / sum as f64;
        for (&bucket, &w) in &cp.bucket_weights {
            let b = bucket as u32;
            if b < self.min_bucket {
                self.min_bucket = b;
            }
            if b > self.max_bucket {
                self.max_bucket = b;
            }
            self.weights[bucket as usize] += f64::from(w) * ratio;
        }
        self.total_weight += cp.total_weight;
        self.update_min_and_max_bucket();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn lin(max: f64, size: f64, eps: f64) -> Arc<HistogramOptions> {
        Arc::new(HistogramOptions::linear(max, size, eps).unwrap())
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn row_004_percentiles_of_empty_histogram() {
        let h = Histogram::new(lin(10.0, 1.0, 1e-15));
        for p in [-0.5, 0.0, 0.5, 1.0, 1.5] {
            assert_eq!(h.percentile(p), 0.0);
        }
    }

    #[test]
    fn row_005_percentiles() {
        let mut h = Histogram::new(lin(10.0, 1.0, 1e-15));
        for i in 1..=4 {
            h.add_sample(f64::from(i), f64::from(i));
        }
        let want = [
            (0.0, 2.0),
            (0.1, 2.0),
            (0.2, 3.0),
            (0.3, 3.0),
            (0.4, 4.0),
            (0.5, 4.0),
            (0.6, 4.0),
            (0.7, 5.0),
            (0.8, 5.0),
            (0.9, 5.0),
            (1.0, 5.0),
        ];
        for (p, v) in want {
            assert!(close(h.percentile(p), v), "P{p} = {}", h.percentile(p));
        }
    }

    #[test]
    fn row_006_007_percentile_out_of_bounds() {
        let mut h = Histogram::new(lin(1.0, 0.1, 1e-15));
        h.add_sample(0.1, 0.1);
        h.add_sample(0.2, 0.2);
        assert!(close(h.percentile(-0.1), 0.2));
        assert!(close(h.percentile(1.1), 0.3));
        h.add_sample(0.0, 0.1);
        h.add_sample(1.0, 0.2);
        assert!(close(h.percentile(-0.1), 0.1));
        assert!(close(h.percentile(1.1), 1.0));
    }

    #[test]
    fn row_008_empty_after_subtracting_below_epsilon() {
        let mut h = Histogram::new(lin(1.0, 0.1, 1e-15));
        h.add_sample(0.1, 2.5e-15);
        assert!(!h.is_empty());
        h.subtract_sample(0.1, 1e-15);
        assert!(!h.is_empty());
        h.subtract_sample(0.1, 1e-15);
        assert!(h.is_empty());
    }

    #[test]
    fn row_009_non_empty_on_epsilon_addition() {
        let mut h = Histogram::new(lin(1000.0, 1.0, 1e-15));
        h.add_sample(9.9, 3e-15);
        assert!(!h.is_empty());
        h.add_sample(0.1, 0.3e-15);
        assert!(!h.is_empty());
        h.add_sample(999.9, 0.3e-15);
        assert!(!h.is_empty());
    }

    #[test]
    fn row_010_merge() {
        let o = lin(10.0, 1.0, 1e-15);
        let mut h1 = Histogram::new(o.clone());
        h1.add_sample(1.0, 1.0);
        h1.add_sample(2.0, 1.0);
        let mut h2 = Histogram::new(o.clone());
        h2.add_sample(2.0, 1.0);
        h2.add_sample(3.0, 1.0);
        let mut want = Histogram::new(o);
        want.add_sample(1.0, 1.0);
        want.add_sample(2.0, 2.0);
        want.add_sample(3.0, 1.0);
        h1.merge(&h2).unwrap();
        assert!(h1.equals(&want));
    }

    #[test]
    fn row_011_checkpoint_of_empty() {
        let h = Histogram::new(lin(10.0, 1.0, 1e-15));
        let cp = h.save_to_checkpoint();
        assert_eq!(cp.total_weight, 0.0);
        assert!(cp.bucket_weights.is_empty());
    }

    #[test]
    fn row_012_checkpoint_one_sample() {
        let o = lin(10.0, 1.0, 1e-15);
        let mut h = Histogram::new(o.clone());
        h.add_sample(1.0, 1.0);
        let cp = h.save_to_checkpoint();
        assert_eq!(cp.total_weight, 1.0);
        let b = o.find_bucket(1.0) as i64;
        assert_eq!(cp.bucket_weights, BTreeMap::from([(b, 10_000)]));
    }

    #[test]
    fn row_013_checkpoint_drops_relatively_small_values() {
        let o = lin(10.0, 1.0, 1e-15);
        let mut h = Histogram::new(o.clone());
        h.add_sample(1.0, 1.0);
        h.add_sample(2.0, 100_000.0);
        let cp = h.save_to_checkpoint();
        assert_eq!(cp.total_weight, 100_001.0);
        assert_eq!(
            cp.bucket_weights,
            BTreeMap::from([(o.find_bucket(2.0) as i64, 10_000)])
        );
    }

    #[test]
    fn row_014_checkpoint_multiple_values() {
        let o = lin(10.0, 1.0, 1e-15);
        let mut h = Histogram::new(o.clone());
        h.add_sample(1.0, 1.0);
        h.add_sample(2.0, 10_000.0);
        h.add_sample(3.0, 50.0);
        let cp = h.save_to_checkpoint();
        assert_eq!(cp.total_weight, 10_051.0);
        assert_eq!(
            cp.bucket_weights,
            BTreeMap::from([(1, 1), (2, 10_000), (3, 50)])
        );
    }

    #[test]
    fn row_015_load_from_checkpoint() {
        let mut h = Histogram::new(lin(10.0, 1.0, 1e-15));
        let cp = HistogramCheckpoint {
            total_weight: 6.0,
            bucket_weights: BTreeMap::from([(0, 1), (1, 2)]),
        };
        h.load_from_checkpoint(&cp).unwrap();
        assert_eq!(h.total_weight(), 6.0);
        assert_eq!(h.bucket_weight(0), 2.0);
        assert_eq!(h.bucket_weight(1), 4.0);
    }

    #[test]
    fn row_016_load_errors() {
        let mut h = Histogram::new(lin(10.0, 1.0, 1e-15));
        let bad = |b: i64, t: f64| HistogramCheckpoint {
            total_weight: t,
            bucket_weights: BTreeMap::from([(b, 1)]),
        };
        assert_eq!(
            h.load_from_checkpoint(&bad(-1, 1.0)),
            Err(HistogramError::NegativeBucket(-1))
        );
        assert!(matches!(
            h.load_from_checkpoint(&bad(99, 1.0)),
            Err(HistogramError::BucketOutOfRange { bucket: 99, .. })
        ));
        assert_eq!(
            h.load_from_checkpoint(&bad(0, -1.0)),
            Err(HistogramError::NegativeTotalWeight(-1.0))
        );
        // The "nil checkpoint" case of upstream is unrepresentable here: the type system
        // requires a checkpoint. Nothing was loaded by the failed calls:
        assert!(h.is_empty());
        assert_eq!(h.total_weight(), 0.0);
    }

    #[test]
    fn row_017_checkpoint_boundary_values_survive() {
        let o = lin(10.0, 1.0, 1e-15);
        let mut h = Histogram::new(o.clone());
        h.add_sample(1.0, 1e-15);
        h.add_sample(2.0, 9999e-15);
        let cp = h.save_to_checkpoint();
        let mut loaded = Histogram::new(o);
        loaded.load_from_checkpoint(&cp).unwrap();
        assert!(!loaded.is_empty());
    }

    #[test]
    fn negative_weights_are_ignored() {
        let mut h = Histogram::new(lin(10.0, 1.0, 1e-15));
        h.add_sample(1.0, -1.0);
        h.subtract_sample(1.0, -1.0);
        h.scale(-2.0);
        assert!(h.is_empty());
    }

    fn exp_opts() -> Arc<HistogramOptions> {
        Arc::new(HistogramOptions::exponential(1000.0, 0.01, 1.05, 1e-4).unwrap())
    }

    proptest! {
        #[test]
        fn percentile_is_monotone_in_p(
            samples in proptest::collection::vec((0.0f64..2000.0, 0.0f64..10.0), 1..60),
            p1 in -0.5f64..1.5, p2 in -0.5f64..1.5,
        ) {
            let mut h = Histogram::new(exp_opts());
            for (v, w) in &samples {
                h.add_sample(*v, *w);
            }
            let (lo, hi) = if p1 <= p2 { (p1, p2) } else { (p2, p1) };
            prop_assert!(h.percentile(lo) <= h.percentile(hi));
        }

        #[test]
        fn merging_is_order_independent(
            a in proptest::collection::vec((0.0f64..2000.0, 0.001f64..10.0), 0..30),
            b in proptest::collection::vec((0.0f64..2000.0, 0.001f64..10.0), 0..30),
            c in proptest::collection::vec((0.0f64..2000.0, 0.001f64..10.0), 0..30),
        ) {
            let build = |s: &[(f64, f64)]| {
                let mut h = Histogram::new(exp_opts());
                for (v, w) in s { h.add_sample(*v, *w); }
                h
            };
            let (ha, hb, hc) = (build(&a), build(&b), build(&c));
            let mut abc = ha.clone();
            abc.merge(&hb).unwrap();
            abc.merge(&hc).unwrap();
            let mut cba = hc.clone();
            cba.merge(&hb).unwrap();
            cba.merge(&ha).unwrap();
            for p in [0.0, 0.1, 0.5, 0.9, 0.95, 1.0] {
                prop_assert_eq!(abc.percentile(p), cba.percentile(p));
            }
            prop_assert!((abc.total_weight() - cba.total_weight()).abs() <= 1e-9 * abc.total_weight().max(1.0));
        }

        #[test]
        fn checkpoint_round_trip_keeps_percentiles_within_one_bucket(
            samples in proptest::collection::vec((0.0f64..2000.0, 1.0f64..10.0), 1..60),
            p in 0.0f64..1.0,
        ) {
            // "Within one bucket" means the same occupied bucket or its occupied neighbour:
            // the checkpoint rounds weights to 1/10000 of the heaviest, so the cumulative
            // weight can cross the threshold one occupied bucket earlier or later.
            let o = exp_opts();
            let mut h = Histogram::new(o.clone());
            for (v, w) in &samples { h.add_sample(*v, *w); }
            let mut loaded = Histogram::new(o.clone());
            loaded.load_from_checkpoint(&h.save_to_checkpoint()).unwrap();
            let occupied: Vec<usize> = (0..o.num_buckets())
                .filter(|&b| h.bucket_weight(b) >= o.epsilon())
                .collect();
            let rank = |h: &Histogram| {
                let b = h.percentile_bucket(p).unwrap_or(usize::MAX);
                occupied.iter().position(|&x| x == b).map(|i| i as i64).unwrap_or(-100)
            };
            let (before, after) = (rank(&h), rank(&loaded));
            prop_assert!(before >= 0 && after >= 0, "percentile outside occupied buckets");
            prop_assert!((before - after).abs() <= 1, "occupied rank {} vs {}", before, after);
        }
    }
}
