//! The exponentially decaying histogram (upstream `util/decaying_histogram.go`).
//!
//! A sample's weight is multiplied by `2^((t - reference) / half_life)`, so every half-life
//! the relative weight of older samples halves. The reference time only moves forward, in
//! whole half-lives counted from the Go zero time, when the exponent would pass 100.

use super::options::HistogramOptions;
use super::plain::{Histogram, HistogramCheckpoint, HistogramError};
use crate::gomath;
use crate::time::{self, Duration, Timestamp};
use std::sync::Arc;

/// Exponent beyond which the reference time is moved forward.
const MAX_DECAY_EXPONENT: i64 = 100;

/// A histogram whose samples lose half their weight every `half_life`.
#[derive(Debug, Clone)]
pub struct DecayingHistogram {
    histogram: Histogram,
    half_life: Duration,
    /// `None` is upstream's zero time: no sample yet.
    reference: Option<Timestamp>,
}

impl DecayingHistogram {
    /// An empty histogram. `half_life` must be positive; a non-positive one is treated as
    /// one nanosecond so that nothing divides by zero.
    pub fn new(options: Arc<HistogramOptions>, half_life: Duration) -> Self {
        let half_life = if half_life.as_nanos() <= 0 {
            Duration::from_nanos(1)
        } else {
            half_life
        };
        Self {
            histogram: Histogram::new(options),
            half_life,
            reference: None,
        }
    }

    /// The decayed weights.
    pub fn histogram(&self) -> &Histogram {
        &self.histogram
    }

    /// The half-life.
    pub fn half_life(&self) -> Duration {
        self.half_life
    }

    /// The current reference time (`None` before the first sample).
    pub fn reference(&self) -> Option<Timestamp> {
        self.reference
    }

    /// Adds a sample of `weight` observed at `t`.
    #[inline]
    pub fn add_sample(&mut self, value: f64, weight: f64, t: Timestamp) {
        let factor = self.decay_factor(t);
        self.histogram.add_sample(value, weight * factor);
    }

    /// Removes a sample of `weight` observed at `t`.
    pub fn subtract_sample(&mut self, value: f64, weight: f64, t: Timestamp) {
        let factor = self.decay_factor(t);
        self.histogram.subtract_sample(value, weight * factor);
    }

    /// Adds `other`. The one with the older reference is first moved to the newer reference
    /// (which changes `other` when it is the older one, as upstream does).
    pub fn merge(&mut self, other: &mut DecayingHistogram) -> Result<(), HistogramError> {
        if self.half_life != other.half_life {
            return Err(HistogramError::Incompatible("half-lives"));
        }
        match (self.reference, other.reference) {
            (mine, Some(theirs)) if is_before(mine, Some(theirs)) => self.shift_reference(theirs),
            (Some(mine), theirs) if is_before(theirs, Some(mine)) => other.shift_reference(mine),
            _ => {}
        }
        self.histogram.merge(&other.histogram)
    }

    /// See [`Histogram::percentile`].
    pub fn percentile(&self, p: f64) -> f64 {
        self.histogram.percentile(p)
    }

    /// See [`Histogram::is_empty`].
    pub fn is_empty(&self) -> bool {
        self.histogram.is_empty()
    }

    /// Upstream `Equals`: same half-life and reference, equal plain histograms.
    pub fn equals(&self, other: &DecayingHistogram) -> bool {
        self.half_life == other.half_life
            && self.reference == other.reference
            && self.histogram.equals(&other.histogram)
    }

    /// The compact form and the reference time.
    pub fn save_to_checkpoint(&self) -> (HistogramCheckpoint, Option<Timestamp>) {
        (self.histogram.save_to_checkpoint(), self.reference)
    }

    /// Adds a checkpoint's content and then *sets* the reference time to the checkpoint's.
    pub fn load_from_checkpoint(
        &mut self,
        cp: &HistogramCheckpoint,
        reference: Option<Timestamp>,
    ) -> Result<(), HistogramError> {
        self.histogram.load_from_checkpoint(cp)?;
        self.reference = reference;
        Ok(())
    }

    #[inline]
    fn decay_factor(&mut self, t: Timestamp) -> f64 {
        let hl = self.half_life.as_nanos();
        // Go: reference.Add(halfLife * 100); from the zero time that is still far in the
        // past for any real timestamp, so the first sample always renormalises.
        let max_allowed = self
            .reference
            .map(|r| r.add(Duration::from_nanos(hl.saturating_mul(MAX_DECAY_EXPONENT))));
        let after = max_allowed.is_none_or(|m| t > m);
        if after {
            self.shift_reference(t);
        }
        let delta = time::since(Some(t), self.reference);
        gomath::exp2(delta.as_nanos_f64() / self.half_life.as_nanos_f64())
    }

    fn shift_reference(&mut self, new_reference: Timestamp) {
        let new_reference = new_reference.round(self.half_life);
        let delta = time::since(self.reference, Some(new_reference));
        let exponent = (delta.as_nanos_f64() / self.half_life.as_nanos_f64() + 0.5).floor();
        let exponent = exponent.clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32;
        self.histogram.scale(gomath::ldexp(1.0, exponent));
        self.reference = Some(new_reference);
    }
}

/// Go's `a.Before(b)` with `None` as the zero time.
fn is_before(a: Option<Timestamp>, b: Option<Timestamp>) -> bool {
    match (a, b) {
        (None, Some(_)) => true,
        (Some(x), Some(y)) => x < y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn lin() -> Arc<HistogramOptions> {
        Arc::new(HistogramOptions::linear(10.0, 1.0, 1e-15).unwrap())
    }

    fn t0() -> Timestamp {
        Timestamp::from_unix_seconds(1_234_567_890)
    }

    fn hours(h: i64) -> Duration {
        Duration::from_hours(h)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn row_018_empty_decaying_histogram() {
        let h = DecayingHistogram::new(lin(), hours(1));
        for p in [0.0, 0.5, 1.0] {
            assert_eq!(h.percentile(p), 0.0);
        }
    }

    #[test]
    fn row_019_simple_decay() {
        let mut h = DecayingHistogram::new(lin(), hours(1));
        h.add_sample(2.0, 1000.0, t0());
        h.add_sample(1.0, 1.0, t0().add(hours(20)));
        assert!(close(h.percentile(0.999), 2.0));
        assert!(close(h.percentile(1.0), 3.0));
    }

    #[test]
    fn row_020_longterm_decay() {
        let mut h = DecayingHistogram::new(lin(), hours(1));
        h.add_sample(2.0, 1.0, t0());
        h.add_sample(1.0, 1.0, t0().add(hours(101)));
        assert!(close(h.percentile(1.0), 2.0));
    }

    #[test]
    fn row_021_decaying_percentiles() {
        let mut h = DecayingHistogram::new(lin(), hours(1));
        for i in 1..=4 {
            h.add_sample(
                f64::from(i),
                f64::from(i),
                t0().add(hours(i64::from(i) - 1)),
            );
        }
        let want = [
            (0.0, 2.0),
            (0.02, 2.0),
            (0.03, 3.0),
            (0.10, 3.0),
            (0.11, 4.0),
            (0.34, 4.0),
            (0.35, 5.0),
            (1.0, 5.0),
        ];
        for (p, v) in want {
            assert!(close(h.percentile(p), v), "P{p} = {}", h.percentile(p));
        }
    }

    #[test]
    fn row_022_no_decay() {
        let mut h = DecayingHistogram::new(lin(), hours(1));
        for i in 1..=4 {
            h.add_sample(f64::from(i), f64::from(i), t0());
        }
        for (p, v) in [(0.0, 2.0), (0.2, 3.0), (0.5, 4.0), (0.7, 5.0), (1.0, 5.0)] {
            assert!(close(h.percentile(p), v), "P{p}");
        }
    }

    #[test]
    fn row_023_merge_equals_all_samples() {
        let mut h1 = DecayingHistogram::new(lin(), hours(1));
        h1.add_sample(1.0, 1.0, t0());
        h1.add_sample(2.0, 1.0, t0().add(hours(1)));
        let mut h2 = DecayingHistogram::new(lin(), hours(1));
        h2.add_sample(2.0, 1.0, t0().add(hours(2)));
        h2.add_sample(3.0, 1.0, t0().add(hours(1)));
        let mut all = DecayingHistogram::new(lin(), hours(1));
        // Upstream's order: the latest sample first, so that the reference matches.
        all.add_sample(2.0, 1.0, t0().add(hours(2)));
        all.add_sample(2.0, 1.0, t0().add(hours(1)));
        all.add_sample(3.0, 1.0, t0().add(hours(1)));
        all.add_sample(1.0, 1.0, t0());
        h1.merge(&mut h2).unwrap();
        assert!(h1.equals(&all));
    }

    #[test]
    fn row_024_checkpoint_keeps_reference() {
        let mut h = DecayingHistogram::new(lin(), hours(1));
        let t = t0().add(hours(100));
        h.add_sample(2.0, 1.0, t);
        let (cp, reference) = h.save_to_checkpoint();
        assert_eq!(reference, h.reference());
        assert_eq!(reference.unwrap().to_rfc3339(), "2009-02-18T04:00:00Z");
        assert!(!cp.bucket_weights.is_empty());
        assert_ne!(cp.total_weight, 0.0);
    }

    #[test]
    fn row_025_load_from_checkpoint() {
        let mut h = DecayingHistogram::new(lin(), hours(1));
        let reference = Timestamp::from_unix_seconds(1_514_862_245); // 2018-01-02T03:04:05Z
        let cp = HistogramCheckpoint {
            total_weight: 6.0,
            bucket_weights: [(0, 1)].into_iter().collect(),
        };
        h.load_from_checkpoint(&cp, Some(reference)).unwrap();
        assert!(!h.is_empty());
        assert_eq!(h.reference(), Some(reference));
        assert_eq!(reference.to_rfc3339(), "2018-01-02T03:04:05Z");
    }

    #[test]
    fn merge_rejects_different_half_lives() {
        let mut a = DecayingHistogram::new(lin(), hours(1));
        let mut b = DecayingHistogram::new(lin(), hours(2));
        assert!(a.merge(&mut b).is_err());
    }

    proptest::proptest! {
        /// Decay halves a sample's relative weight per half-life.
        #[test]
        fn decay_halves_relative_weight_per_half_life(k in 0i64..60, w in 0.5f64..100.0) {
            let mut h = DecayingHistogram::new(lin(), hours(1));
            h.add_sample(1.0, w, t0());
            let before = h.histogram().bucket_weight(1);
            h.add_sample(5.0, w, t0().add(hours(k)));
            let after_old = h.histogram().bucket_weight(1);
            let newer = h.histogram().bucket_weight(5);
            // The old sample keeps its stored weight; the newer one weighs 2^k times more.
            let ratio = newer / after_old;
            proptest::prop_assert!((ratio - 2f64.powi(k as i32)).abs() <= 1e-9 * ratio);
            proptest::prop_assert_eq!(before, after_old);
        }
    }
}
