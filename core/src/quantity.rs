//! Kubernetes resource quantities, exactly as apimachinery's `resource.Quantity` handles them.
//!
//! This module owns the [`Quantity`] value type and everything about its text form: parsing
//! (`ParseQuantity`), the canonical string (`Quantity.String` / `CanonicalizeBytes`), the
//! rounded integer accessors (`Value`, `MilliValue`, `ScaledValue`), comparison by value, and
//! serde as the canonical string. It also has the helpers the VPA uses to write CPU
//! (millicores) and memory (bytes) as quantities. It is pure: no I/O, no panics, no kube types
//! (conversion to and from `k8s_openapi` types is done elsewhere, through the string form).
//!
//! Semantics, following `k8s.io/apimachinery/pkg/api/resource`:
//! * A quantity holds an exact decimal value (a sign, a magnitude of any number of digits and a
//!   power-of-ten exponent) plus the [`Format`] its suffix had.
//! * Parsing rounds a non-zero value that is finer than nano (10^-9) away from zero to the
//!   next nano, so `"0.9n"` is `1n` and `"1e-100"` is `1e-9`. A `BinarySI` value is capped at
//!   ±(2^63-1) (`"8Ei"` is 9223372036854775807). A `BinarySI` value with magnitude below one
//!   becomes `DecimalSI`. Decimal values are not capped.
//! * The exponent of `e`/`E` forms is read as a 64-bit integer and then truncated to 32 bits,
//!   as Go's `int32(parsed)` does (`"1e4294967297"` is 10).
//! * [`Quantity::value`], [`Quantity::milli_value`] and [`Quantity::scaled_value`] round away
//!   from zero (upstream documents this as "ceil"; the two agree for non-negative values) and
//!   saturate at `i64::MIN` / `i64::MAX`.
//! * The canonical form has no fraction, and the largest exponent that is a multiple of three
//!   (`1.5` is `1500m`). `BinarySI` uses the largest power of 1024 that divides the value
//!   (`1536Mi`, `250Mi`), falling back to the decimal form for a non-integer or a magnitude
//!   below 1024. A `DecimalSI` exponent without an SI suffix (above `E` or below `n`) is written
//!   in `e` notation (`1e21`), as current apimachinery does.
//!
//! Checked against apimachinery v0.37.2 (differential run over a million generated strings:
//! same accept/reject and error kind, same format, same canonical string, same rounded
//! accessors wherever Go's result is defined). Where released apimachinery is buggy this
//! follows the fixes in upstream master instead:
//! * `DecimalSI` beyond `E`: v0.37 drops the suffix (`"1000E"` prints `"1"`); here `1e21`.
//! * Overflowing accessors: v0.37 wraps (`MilliValue` of `"8Ei"` is -1000); here they
//!   saturate. v0.37 also mis-rounds negative values held as big decimals; here every
//!   negative value rounds away from zero, like Go's int64 path.
//! * Exponents so large that Go would build a gigantic `big.Int` (`"1e-2147483647"`, which
//!   hangs Go) are handled symbolically.
//!
//! Deliberately not mirrored: Go caches the *input* string when it parses something it thinks
//! is canonical, so Go prints `"1.441"`, `"+1"` or `"01"` back verbatim; here printing always
//! gives the canonical form (`1441m`, `1`, `1`), which is what upstream is moving to
//! (kubernetes#138166). Arithmetic (`Add`, `Sub`, ...) is not provided.

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt::{self, Write as _};
use std::hash::{Hash, Hasher};
use std::str::FromStr;

/// Why a string is not a quantity. The message names the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuantityError {
    /// The input does not have the shape of a quantity (apimachinery `ErrFormatWrong`).
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {input:?}"
    )]
    FormatWrong {
        /// The rejected input.
        input: String,
    },
    /// The input has an unknown suffix (apimachinery `ErrSuffix`).
    #[error("unable to parse quantity's suffix: {input:?}")]
    Suffix {
        /// The rejected input.
        input: String,
    },
    /// The number has no digits and Go's slow path rejects it (apimachinery `ErrNumeric`):
    /// `"Pi"`, `"-.Ei"`, `"e-10"` (while `"Ki"`, `"."` and `"e-9"` are zero).
    #[error("unable to parse numeric part of quantity: {input:?}")]
    Numeric {
        /// The rejected input.
        input: String,
    },
}

/// How a quantity is written: the kind of suffix it was parsed with or built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// Decimal SI suffixes: `n u m "" k M G T P E` (e.g. `12M`).
    #[default]
    DecimalSI,
    /// Binary SI suffixes: `Ki Mi Gi Ti Pi Ei` (e.g. `12Mi`).
    BinarySI,
    /// Decimal exponent: `e<n>` / `E<n>` (e.g. `12e6`).
    DecimalExponent,
}

impl Format {
    /// The Go name of the format (`"DecimalSI"`, `"BinarySI"`, `"DecimalExponent"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::DecimalSI => "DecimalSI",
            Format::BinarySI => "BinarySI",
            Format::DecimalExponent => "DecimalExponent",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Most significant digits held inline: every 38-digit number is below `u128::MAX`.
const SMALL_DIGITS: usize = 38;

/// Powers of ten that fit a `u128`: `10^0 ..= 10^38`.
const POW10: [u128; 39] = {
    let mut t = [1_u128; 39];
    let mut i = 1;
    while i < t.len() {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// 2^63 - 1, the cap of parsed `BinarySI` magnitudes.
const MAX_I64_U128: u128 = i64::MAX as u128;

/// The magnitude of a quantity, without trailing zeros (those live in the exponent).
#[derive(Clone, PartialEq, Eq, Hash)]
enum Mag {
    /// At most 38 significant digits (zero only for the zero quantity).
    Small(u128),
    /// More than 38 ASCII digits, the first and the last non-zero.
    Big(Box<[u8]>),
}

/// A Kubernetes quantity: an exact decimal number and the [`Format`] it is written in.
///
/// Equality, ordering and hashing are by numeric value only (`"1000m" == "1"`, and a
/// `BinarySI` 1024 equals a `DecimalSI` 1024).
#[derive(Clone)]
pub struct Quantity {
    /// Negative (never set for zero).
    neg: bool,
    /// Normalised magnitude.
    mag: Mag,
    /// Power of ten the magnitude is scaled by (0 for zero).
    exp: i64,
    /// How the quantity is written.
    format: Format,
}

impl Quantity {
    /// Zero, `DecimalSI`.
    pub const ZERO: Quantity = Quantity {
        neg: false,
        mag: Mag::Small(0),
        exp: 0,
        format: Format::DecimalSI,
    };

    /// `value` in the given format (Go `NewQuantity`).
    pub fn new(value: i64, format: Format) -> Quantity {
        Quantity::from_signed(value < 0, u128::from(value.unsigned_abs()), 0, format)
    }

    /// `value / 1000` in the given format (Go `NewMilliQuantity`).
    pub fn new_milli(value: i64, format: Format) -> Quantity {
        Quantity::from_signed(value < 0, u128::from(value.unsigned_abs()), -3, format)
    }

    /// `value * 10^scale`, `DecimalSI` (Go `NewScaledQuantity`). The value is kept exactly,
    /// even below nano.
    pub fn new_scaled(value: i64, scale: i32) -> Quantity {
        Quantity::from_signed(
            value < 0,
            u128::from(value.unsigned_abs()),
            i64::from(scale),
            Format::DecimalSI,
        )
    }

    /// A CPU amount in millicores, as the VPA writes it (`NewScaledQuantity(milli, -3)`).
    pub fn from_millis(milli: i64) -> Quantity {
        Quantity::new_scaled(milli, -3)
    }

    /// A memory amount in bytes, as the VPA writes it (`NewQuantity(bytes, BinarySI)`).
    pub fn from_bytes(bytes: i64) -> Quantity {
        Quantity::new(bytes, Format::BinarySI)
    }

    /// Parses a quantity (Go `ParseQuantity`); see [`parse`].
    pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
        parse(s)
    }

    /// `(-1)^neg * m * 10^exp`, normalised.
    fn from_signed(neg: bool, m: u128, exp: i64, format: Format) -> Quantity {
        let (mag, exp) = mag_from_u128(m, exp);
        Quantity {
            neg: neg && m != 0,
            mag,
            exp,
            format,
        }
    }

    /// The format the quantity is written in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        matches!(self.mag, Mag::Small(0))
    }

    /// Whether the value is below zero.
    pub fn is_negative(&self) -> bool {
        self.neg
    }

    /// -1, 0 or 1 as the value is negative, zero or positive (Go `Sign`).
    pub fn signum(&self) -> i32 {
        if self.is_zero() {
            0
        } else if self.neg {
            -1
        } else {
            1
        }
    }

    /// The value rounded away from zero to an integer, saturating at the `i64` range
    /// (Go `Value`).
    pub fn value(&self) -> i64 {
        self.scaled_value(0)
    }

    /// The value in thousandths, rounded away from zero, saturating at the `i64` range
    /// (Go `MilliValue`).
    pub fn milli_value(&self) -> i64 {
        self.scaled_value(-3)
    }

    /// The value in units of `10^scale`, rounded away from zero, saturating at the `i64`
    /// range (Go `ScaledValue`): `parse("1")?.scaled_value(-3) == 1000`.
    pub fn scaled_value(&self, scale: i32) -> i64 {
        if self.is_zero() {
            return 0;
        }
        let shift = self.exp.saturating_sub(i64::from(scale));
        let magnitude = match &self.mag {
            Mag::Small(m) => {
                if shift >= 0 {
                    pow10(shift).and_then(|p| m.checked_mul(p))
                } else {
                    match pow10(shift.saturating_neg()) {
                        Some(p) => Some(div_round_up(*m, p)),
                        // The magnitude has at most 38 digits, so it is below 10^shift.
                        None => Some(1),
                    }
                }
            }
            Mag::Big(d) => {
                // More than 38 digits and the last one non-zero: any whole part that fits
                // an i64 leaves a non-zero fraction.
                let whole = len_i64(d.len()).saturating_add(shift);
                if shift >= 0 || whole > 19 {
                    None
                } else if whole <= 0 {
                    Some(1)
                } else {
                    let whole = usize::try_from(whole).unwrap_or(0);
                    Some(digits_to_u128(d.get(..whole).unwrap_or(&[])) + 1)
                }
            }
        };
        saturate(self.neg, magnitude)
    }

    /// The exact value as an `i64`, if it is a whole number in range.
    pub fn as_i64(&self) -> Option<i64> {
        match self.mag {
            Mag::Small(m) if self.exp >= 0 => {
                let v = pow10(self.exp).and_then(|p| m.checked_mul(p))?;
                if self.neg {
                    0_i64.checked_sub_unsigned(u64::try_from(v).ok()?)
                } else {
                    i64::try_from(v).ok()
                }
            }
            _ => None,
        }
    }

    /// The nearest `f64` (correctly rounded; infinite when out of range). Not bit-identical to
    /// Go's `AsApproximateFloat64`, which multiplies by an inexact power of ten.
    pub fn as_f64(&self) -> f64 {
        const P10: [f64; 23] = [
            1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
            1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
        ];
        if let Mag::Small(m) = self.mag
            && m < 1 << 53
        {
            // Exact operands, one rounding: correctly rounded.
            #[allow(clippy::cast_precision_loss)]
            let x = m as f64;
            let fast = if self.exp >= 0 {
                usize::try_from(self.exp)
                    .ok()
                    .and_then(|e| P10.get(e))
                    .map(|p| x * p)
            } else {
                usize::try_from(self.exp.saturating_neg())
                    .ok()
                    .and_then(|e| P10.get(e))
                    .map(|p| x / p)
            };
            if let Some(v) = fast {
                return if self.neg { -v } else { v };
            }
        }
        let mut s = String::with_capacity(48);
        if self.neg {
            s.push('-');
        }
        with_digits(&self.mag, |d| d.iter().for_each(|&c| s.push(char::from(c))));
        let _ = write!(s, "e{}", self.exp);
        s.parse::<f64>().unwrap_or(f64::NAN)
    }

    /// The canonical string (Go `Quantity.String` without its input cache).
    pub fn to_canonical_string(&self) -> String {
        let mut s = String::with_capacity(24);
        // Writing to a String cannot fail.
        let _ = self.write_canonical(&mut s);
        s
    }

    /// Writes the canonical form (Go `CanonicalizeBytes`).
    fn write_canonical<W: fmt::Write>(&self, w: &mut W) -> fmt::Result {
        if self.is_zero() {
            return w.write_str("0");
        }
        let mut buf = [0_u8; 40];
        if self.format == Format::BinarySI
            && let Some(n) = self.binary_whole()
        {
            // Largest power of 1024 dividing the value. Go's int64 path cannot negate
            // -2^63, finds no factor and prints it in full; do the same.
            let (mut n, mut k) = (n, 0_usize);
            let go_min_int64 = self.neg && n == 1 << 63;
            while !go_min_int64 && n >= 1024 && n & 1023 == 0 {
                n >>= 10;
                k += 1;
            }
            // Unreachable for |v| <= 2^63 (k <= 6); keeps the value right regardless.
            while k > 6 {
                n <<= 10;
                k -= 1;
            }
            if self.neg {
                w.write_char('-')?;
            }
            let start = fmt_u128(&mut buf, n);
            w.write_str(ascii(buf.get(start..).unwrap_or(&[]))?)?;
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"].get(k).copied();
            return w.write_str(suffix.unwrap_or(""));
        }
        let format = match self.format {
            Format::BinarySI => Format::DecimalSI,
            other => other,
        };
        let pad = self.exp.rem_euclid(3);
        let e3 = self.exp.saturating_sub(pad);
        if self.neg {
            w.write_char('-')?;
        }
        match &self.mag {
            Mag::Small(m) => {
                let start = fmt_u128(&mut buf, *m);
                w.write_str(ascii(buf.get(start..).unwrap_or(&[]))?)?;
            }
            Mag::Big(d) => w.write_str(ascii(d)?)?,
        }
        w.write_str(["", "0", "00"][usize::try_from(pad).unwrap_or(0)])?;
        let si = match (format, e3) {
            (Format::DecimalSI, -9) => Some("n"),
            (Format::DecimalSI, -6) => Some("u"),
            (Format::DecimalSI, -3) => Some("m"),
            (_, 0) => Some(""),
            (Format::DecimalSI, 3) => Some("k"),
            (Format::DecimalSI, 6) => Some("M"),
            (Format::DecimalSI, 9) => Some("G"),
            (Format::DecimalSI, 12) => Some("T"),
            (Format::DecimalSI, 15) => Some("P"),
            (Format::DecimalSI, 18) => Some("E"),
            _ => None,
        };
        match si {
            Some(s) => w.write_str(s),
            None => write!(w, "e{e3}"),
        }
    }

    /// The magnitude as a whole number of at least 1024, if it is one and fits a `u128`.
    fn binary_whole(&self) -> Option<u128> {
        match self.mag {
            Mag::Small(m) if self.exp >= 0 => {
                let n = pow10(self.exp).and_then(|p| m.checked_mul(p))?;
                (n >= 1024).then_some(n)
            }
            _ => None,
        }
    }
}

impl Default for Quantity {
    fn default() -> Self {
        Quantity::ZERO
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        // The representation is normalised, so equal values have equal parts.
        self.neg == other.neg && self.exp == other.exp && self.mag == other.mag
    }
}

impl Eq for Quantity {}

impl Hash for Quantity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.neg.hash(state);
        self.exp.hash(state);
        self.mag.hash(state);
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        match self.signum().cmp(&other.signum()) {
            Ordering::Equal => {}
            unequal => return unequal,
        }
        let by_magnitude = cmp_mag(&self.mag, self.exp, &other.mag, other.exp);
        if self.neg {
            by_magnitude.reverse()
        } else {
            by_magnitude
        }
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_canonical(f)
    }
}

impl fmt::Debug for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Quantity({self}, {:?})", self.format)
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(QuantityVisitor)
    }
}

/// Accepts what apimachinery's `UnmarshalJSON` accepts: a string (trimmed), a number, or null
/// (zero).
struct QuantityVisitor;

impl<'de> Visitor<'de> for QuantityVisitor {
    type Value = Quantity;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kubernetes quantity (a string such as \"100m\" or \"1Gi\", or a number)")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity, E> {
        parse(v.trim()).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quantity, E> {
        Ok(Quantity::new(v, Format::DecimalSI))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quantity, E> {
        Ok(Quantity::from_signed(
            false,
            u128::from(v),
            0,
            Format::DecimalSI,
        ))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Quantity, E> {
        Ok(Quantity::from_signed(
            v < 0,
            v.unsigned_abs(),
            0,
            Format::DecimalSI,
        ))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Quantity, E> {
        Ok(Quantity::from_signed(false, v, 0, Format::DecimalSI))
    }

    /// Go parses the number's literal text; only the value is available here, so this parses
    /// its shortest round-trip decimal form (`1.5` -> `1500m`). A literal in exponent form
    /// (`1e3`) therefore comes out `DecimalSI` rather than `DecimalExponent`.
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Quantity, E> {
        if !v.is_finite() {
            return Err(E::custom(format_args!(
                "a quantity must be finite, got {v}"
            )));
        }
        parse(&v.to_string()).map_err(E::custom)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Quantity, E> {
        Ok(Quantity::ZERO)
    }

    fn visit_none<E: de::Error>(self) -> Result<Quantity, E> {
        Ok(Quantity::ZERO)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Quantity, D::Error> {
        deserializer.deserialize_any(QuantityVisitor)
    }
}

/// Parses a quantity exactly as apimachinery's `ParseQuantity` does.
///
/// Grammar: an optional sign, digits with an optional fraction (`1`, `1.5`, `.5`, and also
/// `1.` and `.`, which Go accepts), then one suffix: binary `Ki Mi Gi Ti Pi Ei`, decimal
/// `n u m "" k M G T P E`, or an exponent `e<n>` / `E<n>` (`<n>` signed). No whitespace.
/// A lone sign (`"-"`) or a bare `"."` is zero, as in Go.
pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Err(QuantityError::FormatWrong {
            input: String::new(),
        });
    }
    if b == b"0" {
        return Ok(Quantity::ZERO);
    }
    let scanned = scan(b).ok_or_else(|| QuantityError::FormatWrong {
        input: s.to_owned(),
    })?;
    let (unit, format) = interpret(scanned.suffix).ok_or_else(|| QuantityError::Suffix {
        input: s.to_owned(),
    })?;
    if !scanned.has_digits && takes_slow_path(unit) {
        // Go hands the digit-less text to `inf.Dec.SetString`, which fails.
        return Err(QuantityError::Numeric {
            input: s.to_owned(),
        });
    }
    Ok(build(&scanned, unit, format))
}

/// The canonical string of a CPU amount in millicores: `587m`, `2`, `100G`, `0`.
pub fn format_cpu_millis(milli: i64) -> String {
    Quantity::from_millis(milli).to_canonical_string()
}

/// The canonical string of a memory amount in bytes: `250Mi`, `248153480`, `1Gi`, `0`.
pub fn format_memory_bytes(bytes: i64) -> String {
    Quantity::from_bytes(bytes).to_canonical_string()
}

/// Parses a quantity and returns its [`Quantity::milli_value`].
pub fn parse_cpu_millis(s: &str) -> Result<i64, QuantityError> {
    parse(s).map(|q| q.milli_value())
}

/// Parses a quantity and returns its [`Quantity::value`].
pub fn parse_memory_bytes(s: &str) -> Result<i64, QuantityError> {
    parse(s).map(|q| q.value())
}

// ---------------------------------------------------------------------------------------
// Parsing.

/// The pieces of a quantity string (Go `parseQuantityString`).
struct Scanned<'a> {
    /// A `-` sign was given.
    neg: bool,
    /// The number has at least one digit (possibly a stripped leading zero).
    has_digits: bool,
    /// Whole digits, without leading zeros.
    int: &'a [u8],
    /// Fraction digits, as written.
    frac: &'a [u8],
    /// Everything after the number.
    suffix: &'a [u8],
}

/// Letters a suffix may be made of (Go's scanner is this permissive; `interpret` decides).
const SUFFIX_LETTERS: &[u8] = b"eEinumkKMGTP";

/// Splits `b` into sign, whole digits, fraction digits and suffix; `None` is `ErrFormatWrong`.
fn scan(b: &[u8]) -> Option<Scanned<'_>> {
    let end = b.len();
    let mut pos = 0;
    let mut out = Scanned {
        neg: false,
        has_digits: false,
        int: &[],
        frac: &[],
        suffix: &[],
    };
    match b.first() {
        Some(b'-') => {
            out.neg = true;
            pos = 1;
        }
        Some(b'+') => pos = 1,
        _ => {}
    }
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let number_start = pos;
    while pos < end && at(pos) == b'0' {
        pos += 1;
    }
    let start = pos;
    while pos < end && at(pos).is_ascii_digit() {
        pos += 1;
    }
    out.int = b.get(start..pos)?;
    out.has_digits = pos > number_start;
    if pos < end && at(pos) == b'.' {
        pos += 1;
        let start = pos;
        while pos < end && at(pos).is_ascii_digit() {
            pos += 1;
        }
        out.frac = b.get(start..pos)?;
        out.has_digits |= !out.frac.is_empty();
    }
    let start = pos;
    while pos < end && SUFFIX_LETTERS.contains(&at(pos)) {
        pos += 1;
    }
    if pos < end && matches!(at(pos), b'+' | b'-') {
        pos += 1;
    }
    while pos < end && at(pos).is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return None;
    }
    out.suffix = b.get(start..)?;
    Some(out)
}

/// What a suffix multiplies by.
#[derive(Clone, Copy)]
enum Unit {
    /// `10^n`.
    Ten(i32),
    /// `2^n`.
    Two(u32),
}

/// The unit and format of a suffix; `None` is `ErrSuffix`.
fn interpret(suffix: &[u8]) -> Option<(Unit, Format)> {
    use Format::{BinarySI, DecimalExponent, DecimalSI};
    Some(match suffix {
        b"" => (Unit::Ten(0), DecimalSI),
        b"n" => (Unit::Ten(-9), DecimalSI),
        b"u" => (Unit::Ten(-6), DecimalSI),
        b"m" => (Unit::Ten(-3), DecimalSI),
        b"k" => (Unit::Ten(3), DecimalSI),
        b"M" => (Unit::Ten(6), DecimalSI),
        b"G" => (Unit::Ten(9), DecimalSI),
        b"T" => (Unit::Ten(12), DecimalSI),
        b"P" => (Unit::Ten(15), DecimalSI),
        b"E" => (Unit::Ten(18), DecimalSI),
        b"Ki" => (Unit::Two(10), BinarySI),
        b"Mi" => (Unit::Two(20), BinarySI),
        b"Gi" => (Unit::Two(30), BinarySI),
        b"Ti" => (Unit::Two(40), BinarySI),
        b"Pi" => (Unit::Two(50), BinarySI),
        b"Ei" => (Unit::Two(60), BinarySI),
        [b'e' | b'E', rest @ ..] if !rest.is_empty() => {
            // Go: int32(strconv.ParseInt(rest, 10, 64)), truncating.
            #[allow(clippy::cast_possible_truncation)]
            let exponent = parse_i64(rest)? as i32;
            (Unit::Ten(exponent), DecimalExponent)
        }
        _ => return None,
    })
}

/// Whether Go's `ParseQuantity` leaves its int64 fast path for a digit-less number with this
/// unit: a scale below nano, or a binary suffix whose precision estimate
/// (`15 - 1 - exponent*3/10 - 1`) is negative (`Pi`, `Ei`).
fn takes_slow_path(unit: Unit) -> bool {
    match unit {
        Unit::Ten(e) => e < -9,
        Unit::Two(k) => k * 3 / 10 > 13,
    }
}

/// Go's `strconv.ParseInt(s, 10, 64)`: optional sign, at least one digit, in range.
fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if neg {
        0_i64.checked_sub_unsigned(v)
    } else {
        i64::try_from(v).ok()
    }
}

/// The value of a scanned quantity (the arithmetic half of Go `ParseQuantity`).
fn build(s: &Scanned<'_>, unit: Unit, format: Format) -> Quantity {
    // Go shifts the exponent by the fraction length in 32-bit arithmetic.
    #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
    let frac_len_i32 = s.frac.len() as i32;
    let mut exp = match unit {
        Unit::Ten(e) => i64::from(e.wrapping_sub(frac_len_i32)),
        Unit::Two(_) => len_i64(s.frac.len()).saturating_neg(),
    };
    // Significant digits: `hi` then `lo`, no leading or trailing zeros.
    let (mut hi, mut lo) = if s.int.is_empty() {
        (&[][..], trim_leading_zeros(s.frac))
    } else {
        (s.int, s.frac)
    };
    let lo_kept = lo.len() - trailing_zeros(lo);
    if lo_kept == 0 {
        exp = exp.saturating_add(len_i64(lo.len()));
        lo = &[];
        let hi_kept = hi.len() - trailing_zeros(hi);
        exp = exp.saturating_add(len_i64(hi.len() - hi_kept));
        hi = hi.get(..hi_kept).unwrap_or(&[]);
    } else {
        exp = exp.saturating_add(len_i64(lo.len() - lo_kept));
        lo = lo.get(..lo_kept).unwrap_or(&[]);
    }
    let count = hi.len() + lo.len();
    if count == 0 {
        return Quantity {
            format,
            ..Quantity::ZERO
        };
    }
    let mut mag = if count <= SMALL_DIGITS {
        Mag::Small(digits_to_u128(hi) * POW10[lo.len()] + digits_to_u128(lo))
    } else {
        let mut v = Vec::with_capacity(count);
        v.extend_from_slice(hi);
        v.extend_from_slice(lo);
        Mag::Big(v.into_boxed_slice())
    };
    if let Unit::Two(k) = unit {
        (mag, exp) = mul_pow2(mag, exp, k);
    }
    if exp < -9 {
        (mag, exp) = round_to_nano(&mag, exp);
    }
    let mut format = format;
    if format == Format::BinarySI {
        if cmp_mag(&mag, exp, &Mag::Small(MAX_I64_U128), 0) == Ordering::Greater {
            mag = Mag::Small(MAX_I64_U128);
            exp = 0;
        }
        if digit_count(&mag).saturating_add(exp) <= 0 {
            // A non-zero magnitude below one is shown as DecimalSI.
            format = Format::DecimalSI;
        }
    }
    Quantity {
        neg: s.neg,
        mag,
        exp,
        format,
    }
}

/// Multiplies a magnitude by `2^k` (k <= 60).
fn mul_pow2(mag: Mag, exp: i64, k: u32) -> (Mag, i64) {
    let mut digits = match mag {
        Mag::Small(m) => {
            if let Some(v) = 1_u128.checked_shl(k).and_then(|f| m.checked_mul(f)) {
                return mag_from_u128(v, exp);
            }
            let mut buf = [0_u8; 40];
            let start = fmt_u128(&mut buf, m);
            buf.get(start..).unwrap_or(&[]).to_vec()
        }
        Mag::Big(d) => d.into_vec(),
    };
    let mut k = k;
    while k > 0 {
        let step = k.min(32);
        k -= step;
        let factor = 1_u64 << step;
        let mut carry = 0_u64;
        for c in digits.iter_mut().rev() {
            let v = u64::from(*c - b'0') * factor + carry;
            *c = b'0' + digit(v % 10);
            carry = v / 10;
        }
        let mut head = Vec::new();
        while carry > 0 {
            head.push(b'0' + digit(carry % 10));
            carry /= 10;
        }
        head.reverse();
        head.extend_from_slice(&digits);
        digits = head;
    }
    mag_from_digits(&digits, exp)
}

/// Rounds a non-zero magnitude with `exp < -9` away from zero to a whole number of nanos.
fn round_to_nano(mag: &Mag, exp: i64) -> (Mag, i64) {
    let drop = (-9_i64).saturating_sub(exp);
    match mag {
        Mag::Small(m) => {
            let q = match pow10(drop) {
                Some(p) => div_round_up(*m, p),
                // At most 38 digits: below one nano, which rounds up to one.
                None => 1,
            };
            mag_from_u128(q, -9)
        }
        Mag::Big(d) => {
            let keep = len_i64(d.len()).saturating_sub(drop);
            let Ok(keep) = usize::try_from(keep) else {
                return (Mag::Small(1), -9);
            };
            if keep == 0 {
                return (Mag::Small(1), -9);
            }
            let (kept, dropped) = d.split_at(keep.min(d.len()));
            let mut v = kept.to_vec();
            if dropped.iter().any(|&c| c != b'0') {
                increment(&mut v);
            }
            mag_from_digits(&v, -9)
        }
    }
}

/// Adds one to an ASCII digit string.
fn increment(v: &mut Vec<u8>) {
    for c in v.iter_mut().rev() {
        if *c == b'9' {
            *c = b'0';
        } else {
            *c += 1;
            return;
        }
    }
    v.insert(0, b'1');
}

// ---------------------------------------------------------------------------------------
// Magnitudes.

/// Normalises `m * 10^exp`.
fn mag_from_u128(m: u128, exp: i64) -> (Mag, i64) {
    if m == 0 {
        return (Mag::Small(0), 0);
    }
    let (m, zeros) = strip_trailing_zeros(m);
    let exp = exp.saturating_add(zeros);
    if m < POW10[SMALL_DIGITS] {
        (Mag::Small(m), exp)
    } else {
        let mut buf = [0_u8; 40];
        let start = fmt_u128(&mut buf, m);
        (Mag::Big(buf.get(start..).unwrap_or(&[]).into()), exp)
    }
}

/// Normalises an ASCII digit string times `10^exp`.
fn mag_from_digits(d: &[u8], exp: i64) -> (Mag, i64) {
    let Some(first) = d.iter().position(|&c| c != b'0') else {
        return (Mag::Small(0), 0);
    };
    let last = d.iter().rposition(|&c| c != b'0').unwrap_or(first);
    let exp = exp.saturating_add(len_i64(d.len() - 1 - last));
    let sig = d.get(first..=last).unwrap_or(&[]);
    if sig.len() <= SMALL_DIGITS {
        (Mag::Small(digits_to_u128(sig)), exp)
    } else {
        (Mag::Big(sig.into()), exp)
    }
}

/// `(m without trailing zeros, number of zeros removed)`, for `m != 0`.
fn strip_trailing_zeros(m: u128) -> (u128, i64) {
    let mut zeros = 0;
    if let Ok(mut x) = u64::try_from(m) {
        while x.is_multiple_of(10) && x != 0 {
            x /= 10;
            zeros += 1;
        }
        return (u128::from(x), zeros);
    }
    let mut x = m;
    while x.is_multiple_of(10) && x != 0 {
        x /= 10;
        zeros += 1;
    }
    (x, zeros)
}

/// `ceil(m / p)`, in 64-bit arithmetic when the operands allow (u128 division is slow).
fn div_round_up(m: u128, p: u128) -> u128 {
    if let (Ok(m), Ok(p)) = (u64::try_from(m), u64::try_from(p)) {
        return u128::from(m.div_ceil(p));
    }
    m.div_ceil(p)
}

/// Number of digits of a magnitude (0 for zero).
fn digit_count(mag: &Mag) -> i64 {
    match mag {
        Mag::Small(m) => match u64::try_from(*m) {
            Ok(m) => m.checked_ilog10().map_or(0, |l| i64::from(l) + 1),
            Err(_) => m.checked_ilog10().map_or(0, |l| i64::from(l) + 1),
        },
        Mag::Big(d) => len_i64(d.len()),
    }
}

/// Compares two normalised magnitudes `a * 10^ea` and `b * 10^eb`.
fn cmp_mag(a: &Mag, ea: i64, b: &Mag, eb: i64) -> Ordering {
    let (za, zb) = (matches!(a, Mag::Small(0)), matches!(b, Mag::Small(0)));
    if za || zb {
        return zb.cmp(&za);
    }
    if ea == eb
        && let (Mag::Small(x), Mag::Small(y)) = (a, b)
    {
        return x.cmp(y);
    }
    // Position of the leading digit.
    let la = digit_count(a).saturating_add(ea);
    let lb = digit_count(b).saturating_add(eb);
    if la != lb {
        return la.cmp(&lb);
    }
    if let (Mag::Small(x), Mag::Small(y)) = (a, b) {
        // Same leading position, so the shifted one has as many digits as the other.
        let aligned = if ea >= eb {
            pow10(ea - eb)
                .and_then(|p| x.checked_mul(p))
                .map(|x| x.cmp(y))
        } else {
            pow10(eb - ea)
                .and_then(|p| y.checked_mul(p))
                .map(|y| x.cmp(&y))
        };
        if let Some(o) = aligned {
            return o;
        }
    }
    with_digits(a, |da| {
        with_digits(b, |db| {
            let n = da.len().max(db.len());
            (0..n)
                .map(|i| {
                    let x = da.get(i).copied().unwrap_or(b'0');
                    let y = db.get(i).copied().unwrap_or(b'0');
                    x.cmp(&y)
                })
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        })
    })
}

/// Calls `f` with the ASCII digits of a magnitude.
fn with_digits<R>(mag: &Mag, f: impl FnOnce(&[u8]) -> R) -> R {
    match mag {
        Mag::Small(m) => {
            let mut buf = [0_u8; 40];
            let start = fmt_u128(&mut buf, *m);
            f(buf.get(start..).unwrap_or(&[]))
        }
        Mag::Big(d) => f(d),
    }
}

/// Writes `m` in decimal at the end of `buf`; returns where the digits start.
fn fmt_u128(buf: &mut [u8; 40], m: u128) -> usize {
    const TEN19: u128 = 10_000_000_000_000_000_000;
    let mut i = buf.len();
    let mut put = |i: &mut usize, d: u8| {
        *i -= 1;
        if let Some(slot) = buf.get_mut(*i) {
            *slot = b'0' + d;
        }
    };
    let mut m = m;
    while m > u128::from(u64::MAX) {
        let mut chunk = u64::try_from(m % TEN19).unwrap_or(0);
        m /= TEN19;
        for _ in 0..19 {
            put(&mut i, digit(chunk % 10));
            chunk /= 10;
        }
    }
    let mut x = u64::try_from(m).unwrap_or(0);
    loop {
        put(&mut i, digit(x % 10));
        x /= 10;
        if x == 0 {
            return i;
        }
    }
}

/// ASCII digits as a `str`.
fn ascii(d: &[u8]) -> Result<&str, fmt::Error> {
    std::str::from_utf8(d).map_err(|_| fmt::Error)
}

/// The value of at most 38 ASCII digits.
fn digits_to_u128(d: &[u8]) -> u128 {
    d.iter().fold(0_u128, |acc, &c| {
        acc * 10 + u128::from(c.wrapping_sub(b'0'))
    })
}

/// `10^n` if it fits a `u128`.
fn pow10(n: i64) -> Option<u128> {
    usize::try_from(n).ok().and_then(|n| POW10.get(n)).copied()
}

/// A value below ten as a digit.
fn digit(v: u64) -> u8 {
    u8::try_from(v).unwrap_or(0)
}

/// A length as an `i64`.
fn len_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn trim_leading_zeros(d: &[u8]) -> &[u8] {
    let n = d.iter().take_while(|&&c| c == b'0').count();
    d.get(n..).unwrap_or(&[])
}

fn trailing_zeros(d: &[u8]) -> usize {
    d.iter().rev().take_while(|&&c| c == b'0').count()
}

/// A signed magnitude (`None`: too large) as an `i64`, saturating.
fn saturate(neg: bool, magnitude: Option<u128>) -> i64 {
    match (neg, magnitude) {
        (false, Some(m)) => i64::try_from(m).unwrap_or(i64::MAX),
        (false, None) => i64::MAX,
        (true, Some(m)) => u64::try_from(m)
            .ok()
            .and_then(|m| 0_i64.checked_sub_unsigned(m))
            .unwrap_or(i64::MIN),
        (true, None) => i64::MIN,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use Format::{BinarySI, DecimalExponent, DecimalSI};
    use proptest::prelude::*;

    /// `v * 10^exp` in `format` (Go's test helper `decQuantity`).
    fn dq(v: i128, exp: i64, format: Format) -> Quantity {
        Quantity::from_signed(v < 0, v.unsigned_abs(), exp, format)
    }

    fn p(s: &str) -> Quantity {
        parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn canon(s: &str) -> String {
        p(s).to_canonical_string()
    }

    #[test]
    fn the_vpa_strings() {
        for (m, s) in [
            (587, "587m"),
            (2000, "2"),
            (100_000_000_000_000, "100G"),
            (1500, "1500m"),
            (0, "0"),
            (1, "1m"),
            (1000, "1"),
            (100, "100m"),
            (10, "10m"),
            (25_000, "25"),
            (1_000_000, "1k"),
            (1_500_000, "1500"),
            (-250, "-250m"),
        ] {
            assert_eq!(format_cpu_millis(m), s, "{m}");
            assert_eq!(parse_cpu_millis(s).unwrap(), m, "{s}");
        }
        for (b, s) in [
            (262_144_000, "250Mi"),
            (248_153_480, "248153480"),
            (1_073_741_824, "1Gi"),
            (0, "0"),
            (1024, "1Ki"),
            (1023, "1023"),
            (1000, "1k"),
            (2048, "2Ki"),
            (1_000_000, "1000000"),
            (1_048_576, "1Mi"),
            (1_610_612_736, "1536Mi"),
            (1_099_511_627_776, "1Ti"),
            (i64::MAX, "9223372036854775807"),
            (-1024, "-1Ki"),
        ] {
            assert_eq!(format_memory_bytes(b), s, "{b}");
            assert_eq!(parse_memory_bytes(s).unwrap(), b, "{s}");
        }
        assert_eq!(format_memory_bytes(i64::MIN), "-9223372036854775808");
        assert_eq!(format_memory_bytes(i64::MIN + 1), "-9223372036854775807");
        // The re-parse of a BinarySI string without suffix is DecimalSI.
        assert_eq!(canon("1000000"), "1M");
    }

    #[test]
    fn brief_examples() {
        for (i, o) in [
            ("1.5", "1500m"),
            ("0.1", "100m"),
            ("1000m", "1"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("100M", "100M"),
            ("1e3", "1e3"),
            ("1.5Gi", "1536Mi"),
        ] {
            assert_eq!(canon(i), o, "{i}");
        }
        assert_eq!(Quantity::new(262_144_000, BinarySI).to_string(), "250Mi");
        assert_eq!(
            Quantity::new(248_153_480, BinarySI).to_string(),
            "248153480"
        );
        assert_eq!(Quantity::new(1000, BinarySI).to_string(), "1k");
        assert_eq!(canon("100.5Ki"), "102912");
        assert_eq!(canon("100.25Ki"), "102656");
        assert_eq!(canon("1.0001Ki"), "1024102400u");
        assert_eq!(canon("0.1n"), "1n");
    }

    /// apimachinery `TestQuantityParse`, run as is, with `-` and with `+`.
    #[test]
    fn parse_table() {
        let max = dq(i128::from(i64::MAX), 0, BinarySI);
        let table = [
            ("0", dq(0, 0, DecimalSI)),
            ("0n", dq(0, 0, DecimalSI)),
            ("0u", dq(0, 0, DecimalSI)),
            ("0m", dq(0, 0, DecimalSI)),
            ("0Ki", dq(0, 0, BinarySI)),
            ("0k", dq(0, 0, DecimalSI)),
            ("0Mi", dq(0, 0, BinarySI)),
            ("0M", dq(0, 0, DecimalSI)),
            ("0Gi", dq(0, 0, BinarySI)),
            ("0G", dq(0, 0, DecimalSI)),
            ("0Ti", dq(0, 0, BinarySI)),
            ("0T", dq(0, 0, DecimalSI)),
            ("1", dq(1, 0, DecimalSI)),
            ("1Ki", dq(1024, 0, BinarySI)),
            ("8Ki", dq(8 * 1024, 0, BinarySI)),
            ("7Mi", dq(7 << 20, 0, BinarySI)),
            ("6Gi", dq(6 << 30, 0, BinarySI)),
            ("5Ti", dq(5 << 40, 0, BinarySI)),
            ("4Pi", dq(4 << 50, 0, BinarySI)),
            ("3Ei", dq(3 << 60, 0, BinarySI)),
            ("10Ti", dq(10 << 40, 0, BinarySI)),
            ("100Ti", dq(100 << 40, 0, BinarySI)),
            ("5n", dq(5, -9, DecimalSI)),
            ("4u", dq(4, -6, DecimalSI)),
            ("3m", dq(3, -3, DecimalSI)),
            ("9", dq(9, 0, DecimalSI)),
            ("8k", dq(8, 3, DecimalSI)),
            ("50k", dq(5, 4, DecimalSI)),
            ("7M", dq(7, 6, DecimalSI)),
            ("6G", dq(6, 9, DecimalSI)),
            ("5T", dq(5, 12, DecimalSI)),
            ("40T", dq(4, 13, DecimalSI)),
            ("300T", dq(3, 14, DecimalSI)),
            ("2P", dq(2, 15, DecimalSI)),
            ("1E", dq(1, 18, DecimalSI)),
            ("1E-3", dq(1, -3, DecimalExponent)),
            ("1e3", dq(1, 3, DecimalExponent)),
            ("1E6", dq(1, 6, DecimalExponent)),
            ("1e9", dq(1, 9, DecimalExponent)),
            ("1E12", dq(1, 12, DecimalExponent)),
            ("1e15", dq(1, 15, DecimalExponent)),
            ("1E18", dq(1, 18, DecimalExponent)),
            ("1e14", dq(1, 14, DecimalExponent)),
            ("1e13", dq(1, 13, DecimalExponent)),
            ("100.035k", dq(100_035, 0, DecimalSI)),
            ("0.001", dq(1, -3, DecimalSI)),
            ("0.0005k", dq(5, -1, DecimalSI)),
            ("0.005", dq(5, -3, DecimalSI)),
            ("0.05", dq(5, -2, DecimalSI)),
            ("0.5", dq(5, -1, DecimalSI)),
            ("0.00050k", dq(5, -1, DecimalSI)),
            ("0.00500", dq(5, -3, DecimalSI)),
            ("0.05000", dq(5, -2, DecimalSI)),
            ("0.50000", dq(5, -1, DecimalSI)),
            ("0.5e0", dq(5, -1, DecimalExponent)),
            ("0.5e-1", dq(5, -2, DecimalExponent)),
            ("0.5e-2", dq(5, -3, DecimalExponent)),
            ("10.035M", dq(10_035, 3, DecimalSI)),
            ("1.2e3", dq(12, 2, DecimalExponent)),
            ("1.3E+6", dq(13, 5, DecimalExponent)),
            ("1.40e9", dq(14, 8, DecimalExponent)),
            ("1.53E12", dq(153, 10, DecimalExponent)),
            ("1.6e15", dq(16, 14, DecimalExponent)),
            ("1.7E18", dq(17, 17, DecimalExponent)),
            ("9.01", dq(901, -2, DecimalSI)),
            ("8.1k", dq(81, 2, DecimalSI)),
            ("7.123456M", dq(7_123_456, 0, DecimalSI)),
            ("6.987654321G", dq(6_987_654_321, 0, DecimalSI)),
            ("5.444T", dq(5444, 9, DecimalSI)),
            ("40.1T", dq(401, 11, DecimalSI)),
            ("300.2T", dq(3002, 11, DecimalSI)),
            ("2.5P", dq(25, 14, DecimalSI)),
            ("1.01E", dq(101, 16, DecimalSI)),
            ("3.001n", dq(4, -9, DecimalSI)),
            ("1.1E-9", dq(2, -9, DecimalExponent)),
            ("0.0000000001", dq(1, -9, DecimalSI)),
            ("0.0000000005", dq(1, -9, DecimalSI)),
            ("0.00000000050", dq(1, -9, DecimalSI)),
            ("0.5e-9", dq(1, -9, DecimalExponent)),
            ("0.9n", dq(1, -9, DecimalSI)),
            ("0.00000012345", dq(124, -9, DecimalSI)),
            ("0.00000012354", dq(124, -9, DecimalSI)),
            ("9Ei", max.clone()),
            ("9223372036854775807Ki", max),
            ("12E", dq(12, 18, DecimalSI)),
            ("100.035Ki", dq(10_243_584, -2, BinarySI)),
            ("0.5Mi", dq(512 * 1024, 0, BinarySI)),
            ("0.05Gi", dq(536_870_912, -1, BinarySI)),
            ("0.025Ti", dq(274_877_906_944, -1, BinarySI)),
            ("0.000000000001Ki", dq(2, -9, DecimalSI)),
            (".001", dq(1, -3, DecimalSI)),
            (".0001k", dq(100, -3, DecimalSI)),
            ("1.", dq(1, 0, DecimalSI)),
            ("1.G", dq(1, 9, DecimalSI)),
        ];
        for (input, want) in &table {
            let got = p(input);
            assert_eq!(got, *want, "{input}");
            assert_eq!(got.format(), want.format(), "{input}");
            let neg = p(&format!("-{input}"));
            let want_neg = dq(0, 0, DecimalSI).cmp(want);
            assert_eq!(neg.cmp(&Quantity::ZERO), want_neg, "-{input}");
            assert_eq!(neg.format(), want.format(), "-{input}");
            assert_eq!(
                neg.to_string().trim_start_matches('-'),
                got.to_string(),
                "-{input}"
            );
            let plus = p(&format!("+{input}"));
            assert_eq!(plus, *want, "+{input}");
            assert_eq!(plus.format(), want.format(), "+{input}");
        }
    }

    #[test]
    fn parse_errors() {
        let format_wrong = [
            "",
            "1.1.M",
            "1+1.0M",
            "0.1am",
            "aoeu",
            "abc",
            " 1",
            "1 ",
            "1 Mi",
            "1MB",
            "1e3k",
            "1e-3.5",
            "1.5.",
            "1Mi ",
            "1KI",
            "1e3e",
            "Non-Numeric",
            "1٣",
            "\u{0}",
            "1,5",
        ];
        for s in format_wrong {
            let err = parse(s).unwrap_err();
            assert!(
                matches!(err, QuantityError::FormatWrong { .. }),
                "{s:?}: {err:?}"
            );
            assert!(err.to_string().contains(&format!("{s:?}")), "{err}");
        }
        let suffix = [
            "0.1mi",
            ".5i",
            "1i",
            "-3.01i",
            "-3.01e-",
            "1e",
            "1e+",
            "1E-",
            "1ee5",
            "1ki",
            "--1",
            "+-1",
            "1Mi5",
            "1k-3",
            "1+5",
            "1-",
            "1eKi",
            "1e9223372036854775808",
            "1mm",
            "1Kii",
        ];
        for s in suffix {
            let err = parse(s).unwrap_err();
            assert!(
                matches!(err, QuantityError::Suffix { .. }),
                "{s:?}: {err:?}"
            );
            assert!(err.to_string().contains(&format!("{s:?}")), "{err}");
        }
        for s in [
            "Pi", "Ei", ".Pi", "-Pi", "+.Ei", "e-10", ".e-10", "+e-26", "E-50", "-e-48",
        ] {
            let err = parse(s).unwrap_err();
            assert!(
                matches!(err, QuantityError::Numeric { .. }),
                "{s:?}: {err:?}"
            );
            assert!(err.to_string().contains(&format!("{s:?}")), "{err}");
        }
        for s in [
            "Ki", "Mi", "Gi", "Ti", "e-9", "n", "0Pi", "0Ei", "0e-10", "1.e-10", "e9", ".",
        ] {
            assert!(parse(s).is_ok(), "{s:?}");
        }
        assert_eq!(
            parse("abc").unwrap_err().to_string(),
            "quantities must match the regular expression \
             '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': \"abc\""
        );
        assert_eq!(
            parse("1e").unwrap_err().to_string(),
            "unable to parse quantity's suffix: \"1e\""
        );
    }

    /// Inputs Go accepts that look wrong.
    #[test]
    fn go_accepts_these() {
        for (s, want, format) in [
            ("1.", "1", DecimalSI),
            (".", "0", DecimalSI),
            ("-.", "0", DecimalSI),
            ("+", "0", DecimalSI),
            ("-", "0", DecimalSI),
            ("-0", "0", DecimalSI),
            ("+0", "0", DecimalSI),
            ("00", "0", DecimalSI),
            ("0.", "0", DecimalSI),
            ("0.0", "0", DecimalSI),
            ("-0Ki", "0", BinarySI),
            ("0e3", "0", DecimalExponent),
            (".Ki", "0", BinarySI),
            ("1.G", "1G", DecimalSI),
            ("+1", "1", DecimalSI),
            ("01", "1", DecimalSI),
            ("007", "7", DecimalSI),
            ("1.441", "1441m", DecimalSI),
            ("1.500", "1500m", DecimalSI),
            ("1e05", "100e3", DecimalExponent),
            ("1e+3", "1e3", DecimalExponent),
            ("1E3", "1e3", DecimalExponent),
            ("1e-0", "1", DecimalExponent),
            ("+.5", "500m", DecimalSI),
            ("1e-9223372036854775808", "1", DecimalExponent),
        ] {
            let q = p(s);
            assert_eq!(q.to_string(), want, "{s:?}");
            assert_eq!(q.format(), format, "{s:?}");
        }
        assert!(!p("-0").is_negative());
    }

    /// apimachinery `TestQuantityString`: canonical form, alternate spellings, negatives.
    #[test]
    fn canonical_table() {
        let table = [
            (dq(1024 * 1024 * 1024, 0, BinarySI), "1Gi", "1024Mi"),
            (dq(300 * 1024 * 1024, 0, BinarySI), "300Mi", "307200Ki"),
            (dq(6 * 1024, 0, BinarySI), "6Ki", ""),
            (
                dq(1001 * 1024 * 1024 * 1024, 0, BinarySI),
                "1001Gi",
                "1025024Mi",
            ),
            (dq(1024 * 1024 * 1024 * 1024, 0, BinarySI), "1Ti", "1024Gi"),
            (dq(5, 0, BinarySI), "5", "5000m"),
            (dq(500, -3, BinarySI), "500m", "0.5"),
            (dq(1, 9, DecimalSI), "1G", "1000M"),
            (dq(1000, 6, DecimalSI), "1G", "0.001T"),
            (dq(1_000_000, 3, DecimalSI), "1G", ""),
            (dq(1_000_000_000, 0, DecimalSI), "1G", ""),
            (dq(1, -3, DecimalSI), "1m", "1000u"),
            (dq(80, -3, DecimalSI), "80m", ""),
            (dq(1080, -3, DecimalSI), "1080m", "1.08"),
            (dq(108, -2, DecimalSI), "1080m", "1080000000n"),
            (dq(10800, -4, DecimalSI), "1080m", ""),
            (dq(300, 6, DecimalSI), "300M", ""),
            (dq(1, 12, DecimalSI), "1T", ""),
            (dq(1, 18, DecimalSI), "1E", ""),
            (dq(1, 21, DecimalSI), "1e21", "1000E"),
            (dq(5, 21, DecimalSI), "5e21", "5000E"),
            (dq(1, 24, DecimalSI), "1e24", "1000000E"),
            (dq(1_234_567, 6, DecimalSI), "1234567M", ""),
            (dq(1_234_567, -3, BinarySI), "1234567m", ""),
            (dq(3, 3, DecimalSI), "3k", ""),
            (dq(1025, 0, BinarySI), "1025", ""),
            (dq(0, 0, DecimalSI), "0", ""),
            (dq(0, 0, BinarySI), "0", ""),
            (dq(1, 9, DecimalExponent), "1e9", ".001e12"),
            (dq(1, -3, DecimalExponent), "1e-3", "0.001e0"),
            (dq(1, -9, DecimalExponent), "1e-9", "1000e-12"),
            (dq(80, -3, DecimalExponent), "80e-3", ""),
            (dq(300, 6, DecimalExponent), "300e6", ""),
            (dq(1, 12, DecimalExponent), "1e12", ""),
            (dq(1, 3, DecimalExponent), "1e3", ""),
            (dq(3, 3, DecimalExponent), "3e3", ""),
            (dq(0, 0, DecimalExponent), "0", "00"),
            (dq(1, -9, DecimalSI), "1n", ""),
            (dq(80, -9, DecimalSI), "80n", ""),
            (dq(1080, -9, DecimalSI), "1080n", ""),
            (dq(108, -8, DecimalSI), "1080n", ""),
            (dq(10800, -10, DecimalSI), "1080n", ""),
            (dq(1, -6, DecimalSI), "1u", ""),
            (dq(80, -6, DecimalSI), "80u", ""),
            (dq(1080, -6, DecimalSI), "1080u", ""),
        ];
        for (q, want, alternate) in &table {
            assert_eq!(q.to_string(), *want, "{q:?}");
            assert_eq!(canon(want), *want, "{want} re-parsed");
            if !alternate.is_empty() {
                assert_eq!(canon(alternate), *want, "{alternate}");
            }
            if !q.is_zero() {
                let neg = Quantity {
                    neg: true,
                    ..q.clone()
                };
                assert_eq!(neg.to_string(), format!("-{want}"));
            }
        }
    }

    /// apimachinery `TestQuantityParseEmit`, and negated.
    #[test]
    fn parse_emit_table() {
        for (i, o) in [
            ("1Ki", "1Ki"),
            ("1Mi", "1Mi"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1000M", "1G"),
            (".001Ki", "1024m"),
            (".000001Ki", "1024u"),
            (".000000001Ki", "1024n"),
            (".000000000001Ki", "2n"),
        ] {
            assert_eq!(canon(i), o, "{i}");
            assert_eq!(canon(&format!("-{i}")), format!("-{o}"), "-{i}");
        }
    }

    /// apimachinery `TestParseQuantity` (19/20-digit and int64 boundaries).
    #[test]
    fn long_numbers_table() {
        for (input, canonical) in [
            ("-999999999999999999", ""),
            ("999999999999999999", ""),
            ("-999999999999999999.0", "-999999999999999999"),
            ("999999999999999999.0", "999999999999999999"),
            ("-999999999999999999.1", "-999999999999999999100m"),
            ("999999999999999999.1", "999999999999999999100m"),
            ("-9999999999999999999", ""),
            ("9999999999999999999", ""),
            ("-1E", ""),
            ("1E", ""),
            ("-1000000000000000000", "-1E"),
            ("1000000000000000000", "1E"),
            ("-9999999999999999999.0", "-9999999999999999999"),
            ("9999999999999999999.0", "9999999999999999999"),
            ("-1.0E", "-1E"),
            ("1.0E", "1E"),
            ("-1000000000000000000.0", "-1E"),
            ("1000000000000000000.0", "1E"),
            ("-9999999999999999999000m", "-9999999999999999999"),
            ("9999999999999999999000m", "9999999999999999999"),
            ("-9999999999999999999.1", "-9999999999999999999100m"),
            ("9999999999999999999.1", "9999999999999999999100m"),
            ("-1.0000000000000000001E", "-1000000000000000000100m"),
            ("1.0000000000000000001E", "1000000000000000000100m"),
            ("-1000000000000000000.1", "-1000000000000000000100m"),
            ("1000000000000000000.1", "1000000000000000000100m"),
            ("-1.000000000000000001E", "-1000000000000000001"),
            ("1.000000000000000001E", "1000000000000000001"),
            ("-1000000000000000001", ""),
            ("1000000000000000001", ""),
            ("-10E", ""),
            ("10E", ""),
            ("-10000000000000000000", "-10E"),
            ("10000000000000000000", "10E"),
            ("-10.0E", "-10E"),
            ("10.0E", "10E"),
            ("-10000000000000000000.0", "-10E"),
            ("10000000000000000000.0", "10E"),
            ("-10000000000000000000000m", "-10E"),
            ("10000000000000000000000m", "10E"),
            ("-10.0000000000000000001E", "-10000000000000000000100m"),
            ("10.0000000000000000001E", "10000000000000000000100m"),
            ("-10000000000000000000.1", "-10000000000000000000100m"),
            ("10000000000000000000.1", "10000000000000000000100m"),
            ("-10.000000000000000001E", "-10000000000000000001"),
            ("10.000000000000000001E", "10000000000000000001"),
            ("-10000000000000000001", ""),
            ("10000000000000000001", ""),
            ("-9223372036854775809", ""),
            ("9223372036854775806", ""),
            ("-9223372036854775809.0", "-9223372036854775809"),
            ("9223372036854775806.0", "9223372036854775806"),
            ("-9223372036854775809000m", "-9223372036854775809"),
            ("9223372036854775806000m", "9223372036854775806"),
            ("-9223372036854775809.1", "-9223372036854775809100m"),
            ("9223372036854775806.1", "9223372036854775806100m"),
            ("-9223372036854775808", ""),
            ("9223372036854775807", ""),
            ("-9223372036854775808.0", "-9223372036854775808"),
            ("9223372036854775807.0", "9223372036854775807"),
            ("-9223372036854775808000m", "-9223372036854775808"),
            ("9223372036854775807000m", "9223372036854775807"),
            ("-9223372036854775808.1", "-9223372036854775808100m"),
            ("9223372036854775807.1", "9223372036854775807100m"),
            ("-9223372036854775807", ""),
            ("9223372036854775808", ""),
            ("-9223372036854775807.0", "-9223372036854775807"),
            ("9223372036854775808.0", "9223372036854775808"),
            ("-9223372036854775807000m", "-9223372036854775807"),
            ("9223372036854775808000m", "9223372036854775808"),
            ("-9223372036854775807.1", "-9223372036854775807100m"),
            ("9223372036854775808.1", "9223372036854775808100m"),
        ] {
            let want = if canonical.is_empty() {
                input
            } else {
                canonical
            };
            assert_eq!(canon(input), want, "{input}");
        }
        assert_eq!(p("9223372036854775807").as_i64(), Some(i64::MAX));
        assert_eq!(p("-9223372036854775808").as_i64(), Some(i64::MIN));
        assert_eq!(p("9223372036854775808").as_i64(), None);
        assert_eq!(p("1.5").as_i64(), None);
        assert_eq!(p("1k").as_i64(), Some(1000));
    }

    /// apimachinery `quantity_overflow_test.go` accessor rows:
    /// (quantity, sign, Value, MilliValue, ScaledValue(Kilo), String).
    #[test]
    fn accessor_table() {
        let rows: Vec<(Quantity, i32, i64, i64, i64, &str)> = vec![
            (
                p("9223372036854775807"),
                1,
                i64::MAX,
                i64::MAX,
                9_223_372_036_854_776,
                "9223372036854775807",
            ),
            (
                Quantity::new(i64::MAX, DecimalSI),
                1,
                i64::MAX,
                i64::MAX,
                9_223_372_036_854_776,
                "9223372036854775807",
            ),
            (
                Quantity::new(i64::MIN, DecimalSI),
                -1,
                i64::MIN,
                i64::MIN,
                -9_223_372_036_854_776,
                "-9223372036854775808",
            ),
            (
                p("1E"),
                1,
                1_000_000_000_000_000_000,
                i64::MAX,
                1_000_000_000_000_000,
                "1E",
            ),
            (
                p("8Ei"),
                1,
                i64::MAX,
                i64::MAX,
                9_223_372_036_854_776,
                "9223372036854775807",
            ),
            (
                p("-8Ei"),
                -1,
                -i64::MAX,
                i64::MIN,
                -9_223_372_036_854_776,
                "-9223372036854775807",
            ),
            (
                p("20Ei"),
                1,
                i64::MAX,
                i64::MAX,
                9_223_372_036_854_776,
                "9223372036854775807",
            ),
            (
                p("-20Ei"),
                -1,
                -i64::MAX,
                i64::MIN,
                -9_223_372_036_854_776,
                "-9223372036854775807",
            ),
            (
                p("9223372036854775808"),
                1,
                i64::MAX,
                i64::MAX,
                9_223_372_036_854_776,
                "9223372036854775808",
            ),
            (
                p("18446744073709551616"),
                1,
                i64::MAX,
                i64::MAX,
                18_446_744_073_709_552,
                "18446744073709551616",
            ),
            (
                p("100E"),
                1,
                i64::MAX,
                i64::MAX,
                100_000_000_000_000_000,
                "100E",
            ),
            (
                p("1000E"),
                1,
                i64::MAX,
                i64::MAX,
                1_000_000_000_000_000_000,
                "1e21",
            ),
            (
                p("5000E"),
                1,
                i64::MAX,
                i64::MAX,
                5_000_000_000_000_000_000,
                "5e21",
            ),
            (p("1e100"), 1, i64::MAX, i64::MAX, i64::MAX, "10e99"),
            (
                Quantity::new_scaled(1, 21),
                1,
                i64::MAX,
                i64::MAX,
                1_000_000_000_000_000_000,
                "1e21",
            ),
            (
                Quantity::new_scaled(i64::MAX, 1),
                1,
                i64::MAX,
                i64::MAX,
                92_233_720_368_547_759,
                "92233720368547758070",
            ),
            (
                p("-9223372036854775808"),
                -1,
                i64::MIN,
                i64::MIN,
                -9_223_372_036_854_776,
                "-9223372036854775808",
            ),
            (
                p("-9223372036854775807"),
                -1,
                i64::MIN + 1,
                i64::MIN,
                -9_223_372_036_854_776,
                "-9223372036854775807",
            ),
            (p("-1e30"), -1, i64::MIN, i64::MIN, i64::MIN, "-1e30"),
            (
                p("-100E"),
                -1,
                i64::MIN,
                i64::MIN,
                -100_000_000_000_000_000,
                "-100E",
            ),
            (
                p("-1000E"),
                -1,
                i64::MIN,
                i64::MIN,
                -1_000_000_000_000_000_000,
                "-1e21",
            ),
            (
                p("-9.5Gi"),
                -1,
                -10_200_547_328,
                -10_200_547_328_000,
                -10_200_548,
                "-9728Mi",
            ),
            (
                p("-9.5000000001Gi"),
                -1,
                -10_200_547_329,
                -10_200_547_328_108,
                -10_200_548,
                "-10200547328107374183n",
            ),
            (
                Quantity::new_milli(i64::MAX, DecimalSI),
                1,
                9_223_372_036_854_776,
                i64::MAX,
                9_223_372_036_855,
                "9223372036854775807m",
            ),
            (
                Quantity::new_milli(i64::MIN, DecimalSI),
                -1,
                -9_223_372_036_854_776,
                i64::MIN,
                -9_223_372_036_855,
                "-9223372036854775808m",
            ),
            (Quantity::new_scaled(0, 500), 0, 0, 0, 0, "0"),
            (Quantity::new_scaled(0, -500), 0, 0, 0, 0, "0"),
            (
                p("18446744073709551614"),
                1,
                i64::MAX,
                i64::MAX,
                18_446_744_073_709_552,
                "18446744073709551614",
            ),
            (
                p("1e19"),
                1,
                i64::MAX,
                i64::MAX,
                10_000_000_000_000_000,
                "10e18",
            ),
        ];
        for (q, sign, value, milli, kilo, s) in rows {
            assert_eq!(q.signum(), sign, "{s}");
            assert_eq!(q.value(), value, "{s}");
            assert_eq!(q.scaled_value(0), value, "{s}");
            assert_eq!(q.milli_value(), milli, "{s}");
            assert_eq!(q.scaled_value(-3), milli, "{s}");
            assert_eq!(q.scaled_value(3), kilo, "{s}");
            assert_eq!(q.to_string(), s);
        }
    }

    /// apimachinery `checked_accessors_test.go` and `TestScaledValue`/`TestNewScaledSet`.
    #[test]
    fn scaled_value_table() {
        for (v, scale, target, want) in [
            (i64::MAX, 1, 0, i64::MAX),
            (i64::MIN, 1, 0, i64::MIN),
            (12345, 0, 0, 12345),
            (5, 0, -3, 5000),
            (i64::MAX, 0, -3, i64::MAX),
            (i64::MIN, 0, -3, i64::MIN),
            (95, -1, 0, 10),
            (-95, -1, 0, -10),
            (100, -1, 0, 10),
            (-100, -1, 0, -10),
            (1, -3, 0, 1),
            (-1, -3, 0, -1),
            (7, 0, 2_000_000_000, 1),
            (-7, 0, 2_000_000_000, -1),
            (7, 0, -2_000_000_000, i64::MAX),
            (-7, 0, -2_000_000_000, i64::MIN),
            (0, 0, 2_000_000_000, 0),
            (7, -2_000_000_000, 2_000_000_000, 1),
            (-7, -2_000_000_000, 2_000_000_000, -1),
            (7, 2_000_000_000, -2_000_000_000, i64::MAX),
            (-7, 2_000_000_000, -2_000_000_000, i64::MIN),
            (7, 0, i32::MIN, i64::MAX),
            (7, 0, i32::MAX, 1),
            (1, i32::MIN, 0, 1),
            (0, i32::MIN, i32::MAX, 0),
            (1, -9, -9, 1),
            (1, -9, -6, 1),
            (1, -9, -3, 1),
            (1, -9, 0, 1),
            (1, -6, -9, 1000),
            (1, -6, -6, 1),
            (1, -6, -3, 1),
            (1, -6, 0, 1),
            (1, -3, -9, 1_000_000),
            (1, -3, -6, 1000),
            (1, -3, -3, 1),
            (1, -3, 0, 1),
            (1, 0, -9, 1_000_000_000),
            (1, 0, -6, 1_000_000),
            (1, 0, -3, 1000),
            (1, 0, 0, 1),
            (1, 2, -2, 10_000),
            (1, 18, 0, 1_000_000_000_000_000_000),
            (-1, 18, 0, -1_000_000_000_000_000_000),
            (-1, 19, 0, i64::MIN),
            (5, 20, 0, i64::MAX),
        ] {
            assert_eq!(
                Quantity::new_scaled(v, scale).scaled_value(target),
                want,
                "{v}e{scale} at {target}"
            );
        }
        // Big magnitudes (more than 38 digits).
        let big = p("100000000000000000005e-5");
        assert_eq!(big.value(), 1_000_000_000_000_001);
        assert_eq!(
            p("-100000000000000000005e-5").value(),
            -1_000_000_000_000_001
        );
        let forty = p("1234567890123456789012345678901234567891e-30");
        assert_eq!(forty.value(), 1_234_567_891);
        assert_eq!(forty.scaled_value(10), 1);
        assert_eq!(forty.scaled_value(-20), i64::MAX);
        assert_eq!(
            p("-1234567890123456789012345678901234567891e-30").milli_value(),
            -1_234_567_890_124
        );
        for (v, scale, s) in [
            (1, -9, "1n"),
            (1000, -9, "1u"),
            (1, -6, "1u"),
            (1000, -6, "1m"),
            (1, -3, "1m"),
            (1000, -3, "1"),
            (1, 0, "1"),
            (0, -9, "0"),
            (0, -6, "0"),
            (0, -3, "0"),
            (0, 0, "0"),
            (3, 1, "30"),
        ] {
            let q = Quantity::new_scaled(v, scale);
            assert_eq!(q.to_string(), s);
            assert_eq!(p(s).scaled_value(scale), v, "{s}");
        }
        // Constructed values keep sub-nano precision; parsing rounds it away.
        assert_eq!(Quantity::new_scaled(1, -12).to_string(), "1e-12");
        assert_eq!(Quantity::new_scaled(1500, -12).to_string(), "1500e-12");
        assert_eq!(Quantity::new_scaled(1500, -12).scaled_value(-12), 1500);
        assert_eq!(canon("1e-12"), "1e-9");
    }

    /// apimachinery `TestNewSet` and `TestMilliNewSet`.
    #[test]
    fn constructors() {
        for (v, format, s) in [
            (1, DecimalSI, "1"),
            (1000, DecimalSI, "1k"),
            (1_234_000, DecimalSI, "1234k"),
            (1024, BinarySI, "1Ki"),
            (1_000_000, DecimalExponent, "1e6"),
            (1024 * 1024, BinarySI, "1Mi"),
        ] {
            let q = Quantity::new(v, format);
            assert_eq!(q.to_string(), s);
            assert_eq!(p(s).value(), v);
        }
        for (v, format, s) in [
            (1, DecimalSI, "1m"),
            (1000, DecimalSI, "1"),
            (1_234_000, DecimalSI, "1234"),
            (1024, BinarySI, "1024m"),
            (1_000_000, DecimalExponent, "1e3"),
            (1024 * 1024, BinarySI, "1048576m"),
        ] {
            let q = Quantity::new_milli(v, format);
            assert_eq!(q.to_string(), s);
            assert_eq!(p(s).milli_value(), v);
        }
        assert_eq!(Quantity::default(), Quantity::ZERO);
        assert_eq!(Quantity::default().format(), DecimalSI);
        assert_eq!(Quantity::from_millis(1441).to_string(), "1441m");
        assert_eq!(Quantity::from_bytes(0).format(), BinarySI);
        assert_eq!(Quantity::from_bytes(0).to_string(), "0");
    }

    /// apimachinery `TestQuantityCmp`, `TestQuantityCmpInt64AndDec` and equality by value.
    #[test]
    fn comparison() {
        use Ordering::{Equal, Greater, Less};
        for (a, b, want) in [
            ("0", "0", Equal),
            ("100m", "50m", Greater),
            ("50m", "100m", Less),
            ("10000T", "100Gi", Greater),
            ("1000m", "1", Equal),
            ("1Ki", "1024", Equal),
            ("1Ki", "1.024k", Equal),
            ("1e3", "1k", Equal),
            ("0Ki", "0", Equal),
            ("-0", "0", Equal),
            ("-1", "0", Less),
            ("-1", "-2", Greater),
            ("-1m", "-1n", Less),
            ("1n", "0", Greater),
            ("8Ei", "9223372036854775807", Equal),
            ("9223372036854775808", "8Ei", Greater),
            ("1e100", "1e99", Greater),
            ("-1e100", "-1e99", Less),
            ("1e-100", "1n", Equal),
            (
                "1234567890123456789012345678901234567890",
                "1234567890123456789012345678901234567891",
                Less,
            ),
            (
                "1234567890123456789012345678901234567890123",
                "1234567890123456789012345678901234567890.123k",
                Equal,
            ),
            (
                "12345678901234567890123456789012345678901",
                "12345678901234567890123456789012345678.9",
                Greater,
            ),
            ("99999999999999999999999999999999999999", "1e38", Less),
        ] {
            let (x, y) = (p(a), p(b));
            assert_eq!(x.cmp(&y), want, "{a} vs {b}");
            assert_eq!(y.cmp(&x), want.reverse(), "{b} vs {a}");
            assert_eq!(x == y, want == Equal, "{a} == {b}");
        }
        let m = i64::MAX;
        let n = i64::MIN;
        for (a, b, want) in [
            ((901, -2), (901, -2), Equal),
            ((90, -1), (901, -2), Less),
            ((901, -2), (900, -2), Greater),
            ((0, 0), (0, 0), Equal),
            ((0, 1), (0, -1), Equal),
            ((800, -3), (1, 0), Less),
            ((800, -3), (79, -2), Greater),
            ((m, 0), (1, -1), Greater),
            ((m, 1), (1, 0), Greater),
            ((m, 1), (1, 1), Greater),
            ((m, 1), (0, 1), Greater),
            ((m, -16), (1, 3), Less),
            ((n, 0), (0, 0), Less),
            ((n, -18), (-1, 0), Less),
            ((n, -19), (-1, 0), Greater),
            ((1_000_000_000_000_000_000, -17), (1, 1), Equal),
            ((1_000_000_000_000_000_000, -17), (-10, 0), Greater),
            ((-1_000_000_000_000_000_000, -17), (-10, 0), Equal),
            ((1_000_000_000_000_000_000, -17), (1, 0), Greater),
            ((1_000_000_000_000_000_001, -17), (1, 1), Greater),
            ((999_999_999_999_999_999, -17), (1, 1), Less),
        ] {
            let x = Quantity::new_scaled(a.0, a.1);
            let y = Quantity::new_scaled(b.0, b.1);
            assert_eq!(x.cmp(&y), want, "{a:?} vs {b:?}");
            assert_eq!(y.cmp(&x), want.reverse(), "{b:?} vs {a:?}");
        }
        let hash = |q: &Quantity| {
            use std::collections::hash_map::DefaultHasher;
            let mut h = DefaultHasher::new();
            q.hash(&mut h);
            h.finish()
        };
        assert_eq!(hash(&p("1000m")), hash(&p("1")));
        assert_eq!(hash(&p("1Ki")), hash(&p("1024")));
        assert_eq!(p("1Ki").format(), BinarySI);
        assert!(p("1") < p("1001m"));
        let mut v = [p("1Gi"), p("-1"), p("500m"), p("1e-9"), p("0")];
        v.sort();
        let s: Vec<String> = v.iter().map(Quantity::to_string).collect();
        assert_eq!(s, ["-1", "0", "1e-9", "500m", "1Gi"]);
    }

    /// apimachinery `quantity_subnano_test.go`.
    #[test]
    fn sub_nano() {
        for (i, o) in [
            ("1e-2147483647", "1n"),
            ("-1e-2147483647", "-1n"),
            ("1e-100", "1n"),
            ("-1e-100", "-1n"),
            ("1e-10", "1n"),
            ("9e-10", "1n"),
            ("-9e-10", "-1n"),
            ("1e-9", "1n"),
            ("-1e-9", "-1n"),
            ("2e-9", "2n"),
            ("15e-10", "2n"),
            ("1000000000000000000000e-30", "1n"),
            ("1000000000000000000001e-30", "2n"),
            ("999999999999999999999e-30", "1n"),
            ("0e-2147483647", "0"),
            ("0.0e-100", "0"),
            ("0.00000000000000000000001Ki", "1n"),
            (
                "0.000000000000000000000000000000000000000000000000001",
                "1n",
            ),
            (
                "1.0000000000000000000000000000000000000000000000000001",
                "1000000001n",
            ),
            (
                "-1.0000000000000000000000000000000000000000000000000001",
                "-1000000001n",
            ),
            (
                "0.9999999999999999999999999999999999999999999999999999",
                "1",
            ),
            (
                "1.9999999999999999999999999999999999999999999999999999Ki",
                "2Ki",
            ),
        ] {
            assert_eq!(p(i), p(o), "{i}");
        }
        for (i, s, format) in [
            ("1e-100", "1e-9", DecimalExponent),
            ("0.0000000000001", "1n", DecimalSI),
            ("-0.0000000000001", "-1n", DecimalSI),
            ("0.00000000000000000000001Ki", "1n", DecimalSI),
        ] {
            assert_eq!(p(i).to_string(), s, "{i}");
            assert_eq!(p(i).format(), format, "{i}");
        }
        for (a, b) in [
            ("1e-100", "9e-10"),
            ("-1e-2147483647", "-9e-10"),
            ("0.0000000000001", "0.0000000009"),
        ] {
            assert_eq!(p(a), p(b));
            assert_eq!(p(a).format(), p(b).format());
        }
    }

    /// apimachinery `quantity_golden_test.go` (the canonical column).
    #[test]
    fn golden_serialisation() {
        let rows: Vec<(Quantity, &str)> = vec![
            (Quantity::default(), "0"),
            (p("1"), "1"),
            (p("-1"), "-1"),
            (p("1Ki"), "1Ki"),
            (p("1024Mi"), "1Gi"),
            (p("1000M"), "1G"),
            (p("1e3"), "1e3"),
            (p("0.1"), "100m"),
            (Quantity::new_milli(1441, DecimalSI), "1441m"),
            (p("0.000000000000001"), "1n"),
            (p("1.441"), "1441m"),
            (p("1.000001"), "1000001u"),
            (p("1.000000001"), "1000000001n"),
            (p("1.5"), "1500m"),
            (p("9223372036854775807"), "9223372036854775807"),
            (Quantity::new(i64::MIN, DecimalSI), "-9223372036854775808"),
            (p("9223372036854775808"), "9223372036854775808"),
            (p("18446744073709551616"), "18446744073709551616"),
            (Quantity::new_scaled(i64::MAX, 1), "92233720368547758070"),
            (p("1E"), "1E"),
            (p("100E"), "100E"),
            (p("1000E"), "1e21"),
            (p("1e100"), "10e99"),
            (Quantity::new_scaled(1, 21), "1e21"),
            (p("8Ei"), "9223372036854775807"),
            (p("-20Ei"), "-9223372036854775807"),
            (p("-9.5Gi"), "-9728Mi"),
            (p("-9.5000000001Gi"), "-10200547328107374183n"),
        ];
        for (q, s) in rows {
            assert_eq!(q.to_string(), s);
            assert_eq!(q.to_canonical_string(), s);
            assert_eq!(serde_json::to_string(&q).unwrap(), format!("\"{s}\""));
            let back: Quantity = serde_json::from_str(&format!("\"{s}\"")).unwrap();
            assert_eq!(serde_json::to_string(&back).unwrap(), format!("\"{s}\""));
            assert_eq!(back, q);
        }
    }

    /// apimachinery `quantity_compat_test.go`: the exponent is truncated to 32 bits. (Go
    /// prints the first, fourth and fifth back verbatim from its input cache.)
    #[test]
    fn exponent_truncated_to_32_bits() {
        for (i, value, s) in [
            ("1e4294967296", Some(1), "1"),
            ("1e4294967297", Some(10), "10"),
            ("-1e4294967296", Some(-1), "-1"),
            ("1e-4294967296", Some(1), "1"),
            ("1e8589934592", Some(1), "1"),
            ("1.25e2147483648", None, "125e2147483646"),
            ("1.5e2147483648", None, "150e2147483646"),
            ("1.25e-2147483648", None, "125e2147483646"),
            ("0.5e2147483648", None, "50e2147483646"),
        ] {
            let q = p(i);
            assert_eq!(q.as_i64(), value, "{i}");
            assert_eq!(q.to_string(), s, "{i}");
        }
    }

    #[test]
    fn big_values() {
        let s = "1234567890123456789012345678901234567890123456789012345678901";
        assert_eq!(canon(s), s);
        assert_eq!(canon(&format!("-{s}")), format!("-{s}"));
        assert_eq!(canon(&format!("{s}.5")), format!("{s}500m"));
        assert_eq!(canon(&format!("{s}k")), format!("{s}k"));
        assert_eq!(canon(&format!("{s}0")), format!("{s}0"));
        assert_eq!(canon(&format!("{s}00")), format!("{s}00"));
        assert_eq!(canon(&format!("{s}000")), format!("{s}k"));
        assert_eq!(canon(&format!("{s}Ki")), "9223372036854775807");
        assert_eq!(canon(&format!("-{s}Ki")), "-9223372036854775807");
        assert_eq!(canon(&format!("0.{s}Ki")), "126419751949n");
        assert_eq!(canon(&format!("0.{s}")), "123456790n");
        assert_eq!(p(&format!("0.{s}")).format(), DecimalSI);
        assert_eq!(p(&format!("0.{s}Ki")).format(), BinarySI);
        assert_eq!(
            canon("12345678901234567890123456789.5Ki"),
            "9223372036854775807"
        );
        assert_eq!(
            canon("1234567.890123456789012345678901234567890123Ki"),
            "1264197519486419752n"
        );
        assert_eq!(canon("1.5Ei"), "1536Pi");
        assert_eq!(
            canon("7.99999999999999999999999999Ei"),
            "9223372036854775807"
        );
        assert_eq!(
            canon("7.9999999999999999Ei"),
            "9223372036854775692707849540n"
        );
        assert_eq!(
            canon("7.999999999999999Ei"),
            "9223372036854774655078495394n"
        );
        assert_eq!(canon(&"9".repeat(50)), "9".repeat(50));
        assert_eq!(
            canon(&format!("{}e-9", "9".repeat(50))),
            format!("{}e-9", "9".repeat(50))
        );
        assert_eq!(
            canon(&format!("{}n", "9".repeat(50))),
            format!("{}n", "9".repeat(50))
        );
        assert_eq!(canon(&format!("{}e-10", "9".repeat(50))), "10e39");
        assert_eq!(p(&"9".repeat(50)).value(), i64::MAX);
        assert_eq!(p(&format!("-{}", "9".repeat(50))).milli_value(), i64::MIN);
        let forty = "1".repeat(40);
        assert!(p(&forty) > p(&"1".repeat(39)));
        assert!(p(&forty) < p("1e40"));
        assert!(p(&forty) > p("1e39"));
        assert_eq!(canon(&format!("{forty}e3")), format!("{forty}e3"));
        assert_eq!(canon(&format!("{forty}k")), format!("{forty}k"));
        assert_eq!(canon(&format!("{forty}m")), format!("{forty}m"));
        assert_eq!(canon(&format!("{forty}e-2")), format!("{forty}0e-3"));
        assert_eq!(canon(&format!("{forty}0u")), format!("{forty}0u"));
        assert_eq!(canon(&format!("{forty}00u")), format!("{forty}00u"));
        assert_eq!(canon(&format!("{forty}000u")), format!("{forty}m"));
        let q = Quantity::from_signed(false, u128::MAX, 0, DecimalSI);
        assert_eq!(q.to_string(), u128::MAX.to_string());
        assert_eq!(p(&u128::MAX.to_string()), q);
    }

    #[test]
    fn floats() {
        for (s, f) in [
            ("1.5", 1.5),
            ("100m", 0.1),
            ("-1Gi", -1_073_741_824.0),
            ("1e100", 1e100),
            ("1n", 1e-9),
            ("0", 0.0),
            ("1e400", f64::INFINITY),
            ("-1e400", f64::NEG_INFINITY),
            ("2Ki", 2048.0),
            ("1.1Ki", 1126.4),
            ("1Mi", 1.048_576e6),
            ("12E", 1.2e19),
            (
                "123456789012345678901234567890123456789012345",
                1.234_567_890_123_456_7e44,
            ),
        ] {
            assert_eq!(p(s).as_f64(), f, "{s}");
        }
    }

    #[test]
    fn serde_forms() {
        for (json, s, format) in [
            (r#"" 1""#, "1", DecimalSI),
            (r#""1 ""#, "1", DecimalSI),
            ("1", "1", DecimalSI),
            (" 1", "1", DecimalSI),
            ("1 ", "1", DecimalSI),
            ("10", "10", DecimalSI),
            ("-1", "-1", DecimalSI),
            (" -1", "-1", DecimalSI),
            ("1000", "1k", DecimalSI),
            ("1.5", "1500m", DecimalSI),
            ("0.1", "100m", DecimalSI),
            ("-0.25", "-250m", DecimalSI),
            ("1e3", "1k", DecimalSI),
            ("18446744073709551615", "18446744073709551615", DecimalSI),
            ("null", "0", DecimalSI),
            (r#""1Gi""#, "1Gi", BinarySI),
            (r#""\t250Mi\n""#, "250Mi", BinarySI),
            (r#""1e3""#, "1e3", DecimalExponent),
        ] {
            let q: Quantity = serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"));
            assert_eq!(q.to_string(), s, "{json}");
            assert_eq!(q.format(), format, "{json}");
        }
        for json in [r#""""#, r#""1 Mi""#, "true", "[]", "{}", r#""abc""#] {
            let err = serde_json::from_str::<Quantity>(json).unwrap_err();
            assert!(!err.to_string().is_empty(), "{json}");
        }
        let err = serde_json::from_str::<Quantity>(r#""1MB""#).unwrap_err();
        assert!(err.to_string().contains("\"1MB\""), "{err}");
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct S {
            cpu: Quantity,
            memory: Option<Quantity>,
        }
        let v = S {
            cpu: Quantity::from_millis(1500),
            memory: Some(Quantity::from_bytes(262_144_000)),
        };
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(text, r#"{"cpu":"1500m","memory":"250Mi"}"#);
        assert_eq!(serde_json::from_str::<S>(&text).unwrap(), v);
        let none: S = serde_json::from_str(r#"{"cpu":2,"memory":null}"#).unwrap();
        assert_eq!(none.cpu.to_string(), "2");
        assert_eq!(none.memory, None);
    }

    #[test]
    fn debug_and_from_str() {
        let q: Quantity = "1.5Gi".parse().unwrap();
        assert_eq!(format!("{q:?}"), "Quantity(1536Mi, BinarySI)");
        assert_eq!(Format::DecimalExponent.to_string(), "DecimalExponent");
        assert!("x".parse::<Quantity>().is_err());
        assert_eq!(Quantity::parse("2").unwrap().value(), 2);
    }

    /// A quantity whose canonical form is its own fixpoint under parse.
    fn arb_quantity() -> impl Strategy<Value = Quantity> {
        let decimal = (
            any::<i64>(),
            -9_i64..=40,
            prop_oneof![Just(DecimalSI), Just(DecimalExponent)],
        )
            .prop_map(|(v, e, f)| dq(i128::from(v), e, f));
        let wide = (any::<i128>(), -9_i64..=60).prop_map(|(v, e)| dq(v, e, DecimalSI));
        let binary = (-i64::MAX..=i64::MAX, -9_i64..=0).prop_map(|(v, e)| {
            let q = dq(i128::from(v), e, BinarySI);
            if q.digits_plus_exp() <= 0 {
                Quantity {
                    format: DecimalSI,
                    ..q
                }
            } else {
                q
            }
        });
        let round_binary = (-8_388_607_i64..=8_388_607, 0_u32..=40)
            .prop_map(|(v, k)| Quantity::new(v << k, BinarySI));
        prop_oneof![decimal, wide, binary, round_binary]
    }

    impl Quantity {
        fn digits_plus_exp(&self) -> i64 {
            digit_count(&self.mag) + self.exp
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn canonical_strings_round_trip(q in arb_quantity()) {
            let s = q.to_canonical_string();
            let back = parse(&s).unwrap();
            prop_assert_eq!(&back, &q, "{}", s);
            let again = back.to_canonical_string();
            // A BinarySI string without suffix re-parses as DecimalSI (as in Go), which writes
            // three or more trailing zeros as a suffix: only then does the string change.
            if q.format() == BinarySI && s.ends_with("000") {
                prop_assert_eq!(back.format(), DecimalSI);
                prop_assert_eq!(parse(&again).unwrap().to_canonical_string(), again);
            } else {
                prop_assert_eq!(again, s);
            }
        }

        #[test]
        fn cpu_millis_round_trip(m in 0_i64..=100_000_000_000_000) {
            let s = format_cpu_millis(m);
            prop_assert_eq!(parse_cpu_millis(&s).unwrap(), m, "{}", s);
            prop_assert_eq!(parse(&s).unwrap().to_canonical_string(), s);
        }

        #[test]
        fn memory_bytes_round_trip(b in 0_i64..=1_000_000_000_000_000) {
            let s = format_memory_bytes(b);
            prop_assert_eq!(parse_memory_bytes(&s).unwrap(), b, "{}", s);
        }

        #[test]
        fn memory_bytes_round_trip_binary_multiples(v in 0_i64..=1_000_000, k in 0_u32..=40) {
            let b = v << k;
            let s = format_memory_bytes(b);
            prop_assert_eq!(parse_memory_bytes(&s).unwrap(), b, "{}", s);
        }

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = parse(&s);
        }

        #[test]
        fn parse_never_panics_on_quantity_like_text(
            s in "[+-]?[0-9]{0,45}(\\.[0-9]{0,45})?([eEinumkKMGTP]{0,3}[+-]?[0-9]{0,12})?"
        ) {
            if let Ok(q) = parse(&s) {
                let c = q.to_canonical_string();
                let _ = (q.value(), q.milli_value(), q.as_f64(), q.as_i64());
                // Exponents past 32 bits do not survive a re-parse (Go truncates them).
                if q.exp.abs() < 2_000_000_000 {
                    prop_assert_eq!(parse(&c).unwrap(), q, "{} -> {}", s, c);
                }
            }
        }

        #[test]
        fn milli_value_matches_exact_arithmetic(v in any::<i64>(), e in -12_i32..=6) {
            let q = Quantity::new_scaled(v, e);
            // Exact: v * 10^(e+3), rounded away from zero, saturated.
            let shift = e + 3;
            let exact: i128 = if shift >= 0 {
                i128::from(v).saturating_mul(10_i128.pow(shift.unsigned_abs()))
            } else {
                let d = 10_i128.pow(shift.unsigned_abs());
                let (quot, rem) = (i128::from(v) / d, i128::from(v) % d);
                quot + rem.signum()
            };
            let want = i64::try_from(exact).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX });
            prop_assert_eq!(q.milli_value(), want);
        }

        #[test]
        fn ordering_matches_integers(a in any::<i64>(), b in any::<i64>(), ea in -3_i32..=3, eb in -3_i32..=3) {
            let x = Quantity::new_scaled(a, ea);
            let y = Quantity::new_scaled(b, eb);
            let scale = |v: i64, e: i32| i128::from(v) * 10_i128.pow((e + 3).unsigned_abs());
            prop_assert_eq!(x.cmp(&y), scale(a, ea).cmp(&scale(b, eb)));
            prop_assert_eq!(x == y, scale(a, ea) == scale(b, eb));
        }
    }
}
