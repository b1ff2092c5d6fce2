//! The token bucket behind `--eviction-rate-limit` and `--eviction-rate-burst` (Go's
//! `golang.org/x/time/rate` limiter as upstream uses it), with an explicit `now`.
//!
//! A limit ≤ 0 (the default −1) means unlimited. Otherwise the bucket holds up to `burst`
//! tokens, starts full and refills at `limit` tokens per second; every action takes one
//! token and waits while the bucket is in debt. A wait that would end after the loop's
//! deadline fails without taking a token (upstream then ends the loop), and so does every
//! wait when the burst is below one. The updater keeps one bucket for evictions and a
//! separate one, with the same settings, for in-place resizes.

use thiserror::Error;
use vpa_core::time::{Duration, Timestamp, since};

/// Why a wait is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RateLimitError {
    /// The burst is below one, so no action can ever pass.
    #[error("rate: Wait(n=1) exceeds limiter's burst {0}")]
    ExceedsBurst(i64),
    /// The deadline has passed.
    #[error("context deadline exceeded")]
    DeadlineExceeded,
    /// The wait would end after the deadline.
    #[error("rate: Wait(n=1) would exceed context deadline")]
    WouldExceedDeadline,
}

/// A token bucket with an explicit clock.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBucket {
    /// Tokens per second; `None` when unlimited.
    limit: Option<f64>,
    burst: i64,
    tokens: f64,
    last: Option<Timestamp>,
}

impl TokenBucket {
    /// A bucket for `--eviction-rate-limit` and `--eviction-rate-burst`.
    pub fn new(limit: f64, burst: i64) -> Self {
        let limit = (limit > 0.0 && limit.is_finite()).then_some(limit);
        Self {
            limit,
            burst,
            tokens: 0.0,
            last: None,
        }
    }

    /// True when the limit is off.
    pub fn is_unlimited(&self) -> bool {
        self.limit.is_none()
    }

    /// Takes a token at `now`: how long to wait before acting, or why the action may not
    /// happen before `deadline` (nothing is taken then).
    pub fn reserve(
        &mut self,
        now: Timestamp,
        deadline: Option<Timestamp>,
    ) -> Result<Duration, RateLimitError> {
        let Some(limit) = self.limit else {
            return Ok(Duration::ZERO);
        };
        if self.burst < 1 {
            return Err(RateLimitError::ExceedsBurst(self.burst));
        }
        if deadline.is_some_and(|d| d <= now) {
            return Err(RateLimitError::DeadlineExceeded);
        }
        let burst = self.burst as f64;
        let available = match self.last {
            // A fresh bucket is full.
            None => burst,
            Some(last) => {
                let last = last.min(now);
                let elapsed = since(Some(now), Some(last)).as_nanos_f64() / 1e9;
                (self.tokens + elapsed * limit).min(burst)
            }
        };
        let tokens = available - 1.0;
        let wait = if tokens < 0.0 {
            Duration::from_nanos((-tokens / limit * 1e9) as i64)
        } else {
            Duration::ZERO
        };
        if let Some(d) = deadline
            && wait > since(Some(d), Some(now))
        {
            return Err(RateLimitError::WouldExceedDeadline);
        }
        self.tokens = tokens;
        self.last = Some(now);
        Ok(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_unix_nanos(1_700_000_000_000_000_000 + ms * 1_000_000)
    }

    fn ms(d: Duration) -> i64 {
        d.as_nanos() / 1_000_000
    }

    #[test]
    fn default_is_unlimited() {
        let mut b = TokenBucket::new(-1.0, 1);
        assert!(b.is_unlimited());
        for _ in 0..1000 {
            assert_eq!(b.reserve(t(0), Some(t(0))), Ok(Duration::ZERO));
        }
        assert!(TokenBucket::new(0.0, 0).is_unlimited());
        assert!(TokenBucket::new(f64::NAN, 1).is_unlimited());
        assert!(TokenBucket::new(f64::INFINITY, 1).is_unlimited());
    }

    #[test]
    fn starts_full_then_spaces_actions() {
        let mut b = TokenBucket::new(2.0, 1);
        assert_eq!(b.reserve(t(0), None).map(ms), Ok(0));
        assert_eq!(b.reserve(t(0), None).map(ms), Ok(500));
        assert_eq!(b.reserve(t(0), None).map(ms), Ok(1000));
        // After the debt is paid the bucket refills, up to the burst only.
        assert_eq!(b.reserve(t(10_000), None).map(ms), Ok(0));
        assert_eq!(b.reserve(t(10_000), None).map(ms), Ok(500));
    }

    #[test]
    fn burst_allows_that_many_at_once() {
        let mut b = TokenBucket::new(1.0, 3);
        for _ in 0..3 {
            assert_eq!(b.reserve(t(0), None).map(ms), Ok(0));
        }
        assert_eq!(b.reserve(t(0), None).map(ms), Ok(1000));
        assert_eq!(b.reserve(t(250), None).map(ms), Ok(1750));
    }

    #[test]
    fn a_wait_past_the_deadline_takes_nothing() {
        let mut b = TokenBucket::new(1.0, 1);
        assert_eq!(b.reserve(t(0), Some(t(500))).map(ms), Ok(0));
        assert_eq!(
            b.reserve(t(0), Some(t(500))),
            Err(RateLimitError::WouldExceedDeadline)
        );
        // Nothing was taken: the next second's token is still there.
        assert_eq!(b.reserve(t(0), Some(t(1000))).map(ms), Ok(1000));
        assert_eq!(
            b.reserve(t(2000), Some(t(2000))),
            Err(RateLimitError::DeadlineExceeded)
        );
    }

    #[test]
    fn zero_burst_refuses_everything_when_limited() {
        let mut b = TokenBucket::new(5.0, 0);
        assert_eq!(b.reserve(t(0), None), Err(RateLimitError::ExceedsBurst(0)));
        assert_eq!(
            RateLimitError::ExceedsBurst(0).to_string(),
            "rate: Wait(n=1) exceeds limiter's burst 0"
        );
    }

    #[test]
    fn a_clock_going_backwards_does_not_mint_tokens() {
        let mut b = TokenBucket::new(1.0, 1);
        assert_eq!(b.reserve(t(5000), None).map(ms), Ok(0));
        assert_eq!(b.reserve(t(1000), None).map(ms), Ok(1000));
    }
}
