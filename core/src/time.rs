//! Instants and durations for the pure engine, with the Go `time` semantics upstream relies on.
//!
//! A [`Timestamp`] is nanoseconds since the Unix epoch. Go's zero time (0001-01-01T00:00:00Z),
//! which upstream uses for "never", is modelled as `Option<Timestamp>::None`; [`since`]
//! reproduces Go's saturating `Time.Sub` including that zero time, and [`Timestamp::round`]
//! rounds to a multiple of a duration counted from the Go zero time, as `Time.Round` does.

use std::fmt;

/// Nanoseconds from the Go zero time (0001-01-01T00:00:00Z) to the Unix epoch.
const GO_ZERO_TO_UNIX_NANOS: i128 = 62_135_596_800 * 1_000_000_000;

/// A point in time: nanoseconds since the Unix epoch.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Timestamp(i64);

/// A signed span of time in nanoseconds (Go's `time.Duration`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Duration(i64);

impl Timestamp {
    /// The Unix epoch.
    pub const UNIX_EPOCH: Timestamp = Timestamp(0);

    /// From nanoseconds since the Unix epoch.
    pub const fn from_unix_nanos(nanos: i64) -> Self {
        Timestamp(nanos)
    }

    /// From whole seconds since the Unix epoch (saturating).
    pub const fn from_unix_seconds(secs: i64) -> Self {
        Timestamp(secs.saturating_mul(1_000_000_000))
    }

    /// Nanoseconds since the Unix epoch.
    pub const fn unix_nanos(self) -> i64 {
        self.0
    }

    /// Whole seconds since the Unix epoch, rounded toward negative infinity.
    pub const fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1_000_000_000)
    }

    /// This instant truncated to whole seconds (what a `metav1.Time` keeps).
    pub const fn truncate_to_seconds(self) -> Self {
        Timestamp(self.0 - self.0.rem_euclid(1_000_000_000))
    }

    /// `self + d`, saturating.
    pub const fn add(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(d.0))
    }

    /// `self - d`, saturating.
    pub const fn sub(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_sub(d.0))
    }

    /// `self - earlier` as a duration, saturating like Go's `Time.Sub`.
    pub fn since(self, earlier: Timestamp) -> Duration {
        since(Some(self), Some(earlier))
    }

    /// Rounds to the nearest multiple of `d` counted from the Go zero time; halfway rounds
    /// up. `d <= 0` returns `self` unchanged. Same as Go's `Time.Round`.
    pub fn round(self, d: Duration) -> Self {
        if d.0 <= 0 {
            return self;
        }
        let abs = i128::from(self.0) + GO_ZERO_TO_UNIX_NANOS;
        let d128 = i128::from(d.0);
        let r = abs.rem_euclid(d128);
        let rounded = if r + r < d128 {
            abs - r
        } else {
            abs + (d128 - r)
        };
        let unix = rounded - GO_ZERO_TO_UNIX_NANOS;
        Timestamp(unix.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
    }

    /// RFC 3339 in UTC with `Z`, fractional seconds only when non-zero and without trailing
    /// zeros (Go's `time.RFC3339Nano` layout).
    pub fn to_rfc3339(self) -> String {
        let secs = self.0.div_euclid(1_000_000_000);
        let nanos = self.0.rem_euclid(1_000_000_000) as u32;
        match chrono::DateTime::from_timestamp(secs, nanos) {
            Some(t) => {
                let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
                if nanos == 0 {
                    format!("{base}Z")
                } else {
                    let frac = format!("{nanos:09}");
                    format!("{base}.{}Z", frac.trim_end_matches('0'))
                }
            }
            None => format!("@{}ns", self.0),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Go's `a.Sub(b)` where either side may be the zero time (`None`), saturating at the
/// limits of a 64-bit nanosecond duration.
pub fn since(a: Option<Timestamp>, b: Option<Timestamp>) -> Duration {
    let abs = |t: Option<Timestamp>| match t {
        Some(t) => i128::from(t.0) + GO_ZERO_TO_UNIX_NANOS,
        None => 0,
    };
    let diff = abs(a) - abs(b);
    Duration(diff.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
}

impl Duration {
    /// Zero length.
    pub const ZERO: Duration = Duration(0);

    /// From nanoseconds.
    pub const fn from_nanos(n: i64) -> Self {
        Duration(n)
    }

    /// From whole seconds (saturating).
    pub const fn from_secs(s: i64) -> Self {
        Duration(s.saturating_mul(1_000_000_000))
    }

    /// From whole minutes (saturating).
    pub const fn from_minutes(m: i64) -> Self {
        Duration(m.saturating_mul(60_000_000_000))
    }

    /// From whole hours (saturating).
    pub const fn from_hours(h: i64) -> Self {
        Duration(h.saturating_mul(3_600_000_000_000))
    }

    /// Nanoseconds.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// The duration in nanoseconds as a float (Go's `float64(d)`).
    pub const fn as_nanos_f64(self) -> f64 {
        self.0 as f64
    }

    /// Minutes as a float (Go's `Duration.Minutes`).
    pub fn as_minutes_f64(self) -> f64 {
        let min = self.0 / 60_000_000_000;
        let nsec = self.0 % 60_000_000_000;
        min as f64 + nsec as f64 / 60e9
    }

    /// `self * n`, saturating.
    pub const fn mul(self, n: i64) -> Self {
        Duration(self.0.saturating_mul(n))
    }

    /// `self + o`, saturating.
    pub const fn plus(self, o: Duration) -> Self {
        Duration(self.0.saturating_add(o.0))
    }

    /// Go's `Duration.Truncate(m)`: rounds toward zero to a multiple of `m`; `m <= 0` keeps `self`.
    pub const fn truncate(self, m: Duration) -> Self {
        if m.0 <= 0 {
            return self;
        }
        Duration(self.0 - self.0 % m.0)
    }

    /// From a `std::time::Duration` (saturating).
    pub fn from_std(d: std::time::Duration) -> Self {
        Duration(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Go's Duration.String for the common whole-unit cases: 24h0m0s, 1m0s, 30s.
        let n = self.0;
        if n == 0 {
            return f.write_str("0s");
        }
        let neg = n < 0;
        let u = n.unsigned_abs();
        let sign = if neg { "-" } else { "" };
        if u < 1_000_000_000 {
            return write!(f, "{sign}{}ns", u);
        }
        let secs = u / 1_000_000_000;
        let frac = u % 1_000_000_000;
        let h = secs / 3600;
        let m = (secs % 3600) / 60;
        let s = secs % 60;
        let s_str = if frac == 0 {
            format!("{s}")
        } else {
            let fs = format!("{frac:09}");
            format!("{s}.{}", fs.trim_end_matches('0'))
        };
        if h > 0 {
            write!(f, "{sign}{h}h{m}m{s_str}s")
        } else if m > 0 {
            write!(f, "{sign}{m}m{s_str}s")
        } else {
            write!(f, "{sign}{s_str}s")
        }
    }
}

/// A string that is not a Go duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}: expected a Go duration such as 24h, 1m30s or 500ms")]
pub struct DurationParseError(pub String);

/// Parses a Go duration string (`time.ParseDuration`): an optional sign, then one or more
/// decimal numbers each followed by a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`); `"0"` alone
/// is allowed. Values beyond ±292 years are errors.
pub fn parse_go_duration(input: &str) -> Result<Duration, DurationParseError> {
    let err = || DurationParseError(input.to_string());
    let mut s = input;
    let mut negative = false;
    if let Some(rest) = s.strip_prefix('-') {
        negative = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(err());
    }
    let mut total: i128 = 0;
    while !s.is_empty() {
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &s[..int_len];
        s = &s[int_len..];
        let mut frac_part = "";
        if let Some(rest) = s.strip_prefix('.') {
            let frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &rest[..frac_len];
            s = &rest[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(err());
        }
        let unit_len = s
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(s.len(), |(i, _)| i);
        let unit: i128 = match &s[..unit_len] {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(err()),
        };
        s = &s[unit_len..];
        let whole: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse::<i128>().map_err(|_| err())?
        };
        let mut value = whole.checked_mul(unit).ok_or_else(err)?;
        if !frac_part.is_empty() {
            // Keep at most 30 digits; Go truncates the fraction the same way (toward zero).
            let digits = &frac_part[..frac_part.len().min(30)];
            let frac: i128 = digits.parse::<i128>().map_err(|_| err())?;
            let scale = 10_i128.pow(digits.len() as u32);
            value += frac * unit / scale;
        }
        total = total.checked_add(value).ok_or_else(err)?;
        if total > i128::from(i64::MAX) {
            return Err(err());
        }
    }
    let total = if negative { -total } else { total };
    i64::try_from(total).map(Duration).map_err(|_| err())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_counts_from_go_zero_time() {
        // 2009-02-18T03:31:30Z rounded to 1h is 04:00 (row 24 of the conformance table).
        let t = Timestamp::from_unix_seconds(1_234_567_890 + 100 * 3600);
        assert_eq!(t.to_rfc3339(), "2009-02-18T03:31:30Z");
        assert_eq!(
            t.round(Duration::from_hours(1)).to_rfc3339(),
            "2009-02-18T04:00:00Z"
        );
        // Halfway rounds up.
        let half = Timestamp::from_unix_seconds(1800);
        assert_eq!(
            half.round(Duration::from_hours(1)),
            Timestamp::from_unix_seconds(3600)
        );
        // 7h does not divide a day: the Go zero time, not the Unix epoch, is the origin.
        let d = Duration::from_hours(7);
        let r = Timestamp::UNIX_EPOCH.round(d);
        let from_zero =
            (i128::from(r.unix_nanos()) + GO_ZERO_TO_UNIX_NANOS) % i128::from(d.as_nanos());
        assert_eq!(from_zero, 0);
        assert_ne!(r, Timestamp::UNIX_EPOCH);
    }

    #[test]
    fn sub_saturates_with_zero_time() {
        let t = Timestamp::from_unix_seconds(1_700_000_000);
        assert_eq!(since(None, Some(t)).as_nanos(), i64::MIN);
        assert_eq!(since(Some(t), None).as_nanos(), i64::MAX);
        assert_eq!(since(None, None), Duration::ZERO);
        assert_eq!(
            t.since(t.sub(Duration::from_secs(5))),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn truncate_and_display() {
        let d = Duration::from_hours(50);
        assert_eq!(
            d.truncate(Duration::from_hours(24)),
            Duration::from_hours(48)
        );
        assert_eq!(Duration::from_hours(24).to_string(), "24h0m0s");
        assert_eq!(Duration::from_minutes(1).to_string(), "1m0s");
        assert_eq!(Duration::from_nanos(1_500_000_000).to_string(), "1.5s");
        assert_eq!(Duration::from_minutes(18).as_minutes_f64(), 18.0);
    }

    #[test]
    fn go_durations_parse() {
        let ok = [
            ("24h", Duration::from_hours(24)),
            ("1m0s", Duration::from_minutes(1)),
            ("1h30m", Duration::from_minutes(90)),
            ("500ms", Duration::from_nanos(500_000_000)),
            ("1.5s", Duration::from_nanos(1_500_000_000)),
            ("0", Duration::ZERO),
            ("-2m", Duration::from_minutes(-2)),
            (".5h", Duration::from_minutes(30)),
            ("10us", Duration::from_nanos(10_000)),
        ];
        for (s, d) in ok {
            assert_eq!(parse_go_duration(s), Ok(d), "{s}");
        }
        for bad in ["", "24", "1d", "h", "1.h2", "-", "3000000h", "1hh"] {
            let e = parse_go_duration(bad);
            assert!(e.is_err(), "{bad} parsed as {e:?}");
        }
        assert!(
            parse_go_duration("1d")
                .unwrap_err()
                .to_string()
                .contains("\"1d\"")
        );
    }

    #[test]
    fn rfc3339_trims_fraction() {
        let t = Timestamp::from_unix_nanos(1_500_000_000);
        assert_eq!(t.to_rfc3339(), "1970-01-01T00:00:01.5Z");
    }
}
