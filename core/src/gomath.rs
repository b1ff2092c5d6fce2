//! Floating-point functions that give the same bits as Go's `math` package on amd64.
//!
//! Upstream computes bucket indices with `math.Log`, bucket starts with `math.Pow` and decay
//! factors with `math.Exp2`. Rust's `f64::ln`, `powi` and `exp2` call the platform's libm,
//! whose last-ulp results differ from Go's, and a one-ulp difference at a bucket boundary or
//! in a bucket start changes a recommendation. These functions follow the fdlibm-derived
//! algorithms Go uses (with the same constants and the same order of operations), so our
//! histograms agree with upstream bucket for bucket. Only finite, positive arguments on the
//! hot paths matter; special values are handled as Go does.

/// High part of ln 2.
const LN2_HI: f64 = f64::from_bits(0x3fe62e42fee00000); // 6.93147180369123816490e-01
/// Low part of ln 2.
const LN2_LO: f64 = f64::from_bits(0x3dea39ef35793c76); // 1.90821492927058770002e-10

/// Natural logarithm, bit-identical to Go's `math.Log` on amd64.
pub fn log(x: f64) -> f64 {
    const L1: f64 = f64::from_bits(0x3fe5555555555593); // 6.666666666666735130e-01
    const L2: f64 = f64::from_bits(0x3fd999999997fa04); // 3.999999999940941908e-01
    const L3: f64 = f64::from_bits(0x3fd2492494229359); // 2.857142874366239149e-01
    const L4: f64 = f64::from_bits(0x3fcc71c51d8e78af); // 2.222219843214978396e-01
    const L5: f64 = f64::from_bits(0x3fc7466496cb03de); // 1.818357216161805012e-01
    const L6: f64 = f64::from_bits(0x3fc39a09d078c69f); // 1.531383769920937332e-01
    const L7: f64 = f64::from_bits(0x3fc2f112df3e5244); // 1.479819860511658591e-01

    if x.is_nan() || x == f64::INFINITY {
        return x;
    }
    if x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    let (mut f1, ki) = frexp(x);
    let mut k = f64::from(ki);
    if f1 < std::f64::consts::SQRT_2 / 2.0 {
        f1 *= 2.0;
        k -= 1.0;
    }
    let f = f1 - 1.0;
    let s = f / (2.0 + f);
    let s2 = s * s;
    let s4 = s2 * s2;
    let t1 = s2 * (L1 + s4 * (L3 + s4 * (L5 + s4 * L7)));
    let t2 = s4 * (L2 + s4 * (L4 + s4 * L6));
    let r = t1 + t2;
    let hfsq = 0.5 * f * f;
    k * LN2_HI - ((hfsq - (s * (hfsq + r) + k * LN2_LO)) - f)
}

/// `2^x`, bit-identical to Go's `math.Exp2` on amd64 (which uses the portable algorithm).
pub fn exp2(x: f64) -> f64 {
    const OVERFLOW: f64 = f64::from_bits(0x408fffffffffffff); // 1.0239999999999999e+03
    const UNDERFLOW: f64 = f64::from_bits(0xc090c80000000000); // -1.0740e+03
    if x.is_nan() {
        return x;
    }
    if x > OVERFLOW {
        return f64::INFINITY;
    }
    if x < UNDERFLOW {
        return 0.0;
    }
    // Go converts with truncation toward zero.
    let k: i32 = if x > 0.0 {
        (x + 0.5) as i32
    } else if x < 0.0 {
        (x - 0.5) as i32
    } else {
        0
    };
    let t = x - f64::from(k);
    let hi = t * LN2_HI;
    let lo = -t * LN2_LO;
    expmulti(hi, lo, k)
}

/// `e^r * 2^k` where `r = hi - lo`, the shared kernel of Go's exp functions.
fn expmulti(hi: f64, lo: f64, k: i32) -> f64 {
    const P1: f64 = f64::from_bits(0x3fc5555555555555); // 1.66666666666666657415e-01
    const P2: f64 = f64::from_bits(0xbf66c16c16bebd93); // -2.77777777770155933842e-03
    const P3: f64 = f64::from_bits(0x3f11566aaf25de2c); // 6.61375632143793436117e-05
    const P4: f64 = f64::from_bits(0xbebbbd41c5d26bf1); // -1.65339022054652515390e-06
    const P5: f64 = f64::from_bits(0x3e66376972bea4d0); // 4.13813679705723846039e-08
    let r = hi - lo;
    let t = r * r;
    let c = r - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
    let y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
    ldexp(y, k)
}

/// `x^n` for a non-negative integer exponent, bit-identical to Go's `math.Pow(x, float64(n))`
/// for finite positive `x` whose powers stay in the normal range (Go multiplies the same
/// successive squarings in the same order; its power-of-two bookkeeping is exact).
pub fn powi(x: f64, n: u32) -> f64 {
    if n == 0 || x == 1.0 {
        return 1.0;
    }
    if n == 1 {
        return x;
    }
    let mut acc = 1.0;
    let mut square = x;
    let mut bits = n;
    while bits != 0 {
        if bits & 1 == 1 {
            acc *= square;
        }
        square *= square;
        bits >>= 1;
    }
    acc
}

/// `x^y` restricted to the exponents the estimator chain uses: exactly Go's `math.Pow`
/// for integer `y` (positive or negative) and for the infinities; other exponents fall
/// back to the same split Go uses (`x^frac * x^int`).
pub fn pow(x: f64, y: f64) -> f64 {
    if y == 0.0 || x == 1.0 {
        return 1.0;
    }
    if y == 1.0 {
        return x;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 {
        return if y < 0.0 { f64::INFINITY } else { 0.0 };
    }
    if y.is_infinite() {
        return if (x.abs() < 1.0) == (y > 0.0) {
            0.0
        } else {
            f64::INFINITY
        };
    }
    if x.is_infinite() {
        // Only +Inf reaches here on our paths (1 + m/0).
        return if y < 0.0 { 0.0 } else { f64::INFINITY };
    }
    if y == 0.5 {
        return x.sqrt();
    }
    if y == -0.5 {
        return 1.0 / x.sqrt();
    }
    let ay = y.abs();
    let mut yi = ay.trunc();
    let mut yf = ay - yi;
    if yf != 0.0 && x < 0.0 {
        return f64::NAN;
    }
    let mut a1 = 1.0;
    if yf != 0.0 {
        if yf > 0.5 {
            yf -= 1.0;
            yi += 1.0;
        }
        // Go uses math.Exp here; only reached for non-integer exponents, which the
        // engine never uses with default or upstream-documented settings.
        a1 = (yf * log(x)).exp();
    }
    let (mut x1, xe32) = frexp(x);
    let mut xe = i64::from(xe32);
    let mut ae: i64 = 0;
    let mut i = yi as i64;
    while i != 0 {
        if !(-(1 << 12)..=(1 << 12)).contains(&xe) {
            ae += xe;
            break;
        }
        if i & 1 == 1 {
            a1 *= x1;
            ae += xe;
        }
        x1 *= x1;
        xe <<= 1;
        if x1 < 0.5 {
            x1 += x1;
            xe -= 1;
        }
        i >>= 1;
    }
    if y < 0.0 {
        a1 = 1.0 / a1;
        ae = -ae;
    }
    ldexp(
        a1,
        ae.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
    )
}

/// `frexp` for normal and subnormal numbers: `x = m * 2^e` with `0.5 <= |m| < 1`.
pub fn frexp(x: f64) -> (f64, i32) {
    if x == 0.0 || x.is_nan() || x.is_infinite() {
        return (x, 0);
    }
    let mut bits = x.to_bits();
    let mut exp_adjust = 0;
    if (bits >> 52) & 0x7ff == 0 {
        // Subnormal: normalise first.
        let scaled = x * f64::from_bits(0x4350_0000_0000_0000); // 2^54
        bits = scaled.to_bits();
        exp_adjust = -54;
    }
    let exp = ((bits >> 52) & 0x7ff) as i32 - 1022 + exp_adjust;
    let mantissa_bits = (bits & !(0x7ff_u64 << 52)) | (1022_u64 << 52);
    (f64::from_bits(mantissa_bits), exp)
}

/// `x * 2^e`, exact whenever the result is a normal number (as Go's `math.Ldexp`);
/// a subnormal result is rounded once.
pub fn ldexp(x: f64, e: i32) -> f64 {
    if x == 0.0 || x.is_nan() || x.is_infinite() {
        return x;
    }
    let (m, me) = frexp(x);
    let target = i64::from(me) + i64::from(e);
    if target > 1024 {
        return f64::INFINITY.copysign(x);
    }
    let mantissa = m.to_bits() & !(0x7ff_u64 << 52);
    if target >= -1021 {
        return f64::from_bits(mantissa | (((target + 1022) as u64) << 52));
    }
    let shift = -1021 - target;
    if shift > 60 {
        return 0.0_f64.copysign(x);
    }
    let at_min_normal = f64::from_bits(mantissa | (1_u64 << 52));
    at_min_normal * f64::from_bits(((1023 - shift) as u64) << 52)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_matches_known_values() {
        assert_eq!(log(1.0), 0.0);
        assert!((log(std::f64::consts::E) - 1.0).abs() < 1e-15);
        assert!((log(1.05) - 0.048_790_164_169_432_0).abs() < 1e-15);
        assert_eq!(log(0.0), f64::NEG_INFINITY);
        assert!(log(-1.0).is_nan());
    }

    #[test]
    fn exp2_is_exact_on_integers() {
        for k in -1000..1000 {
            assert_eq!(exp2(f64::from(k)), ldexp(1.0, k), "2^{k}");
        }
        assert!((exp2(0.5) - std::f64::consts::SQRT_2).abs() < 1e-15);
    }

    #[test]
    fn powi_agrees_with_libm_closely() {
        for n in 0..200 {
            let ours = powi(1.05, n);
            let libm = 1.05_f64.powi(n as i32);
            assert!((ours - libm).abs() <= libm * 1e-14, "1.05^{n}");
        }
    }

    #[test]
    fn pow_special_cases_used_by_the_estimators() {
        assert_eq!(pow(f64::INFINITY, 1.0), f64::INFINITY);
        assert_eq!(pow(f64::INFINITY, -2.0), 0.0);
        assert_eq!(pow(2.0, -2.0), 0.25);
        assert_eq!(pow(3.0, 2.0), 9.0);
        let x = 1.0 + 0.001 / 0.999_305_555_555_555_6;
        assert_eq!(pow(x, -2.0), 1.0 / (x * x));
    }

    #[test]
    fn frexp_and_ldexp_round_trip() {
        for &x in &[1.0, 0.75, 3.5, 1e-310, 1e300, 123_456.789] {
            let (m, e) = frexp(x);
            assert!((0.5..1.0).contains(&m), "{x}");
            assert_eq!(ldexp(m, e), x);
        }
        assert_eq!(ldexp(1.0, -1080), 0.0);
        assert_eq!(ldexp(1.0, 2000), f64::INFINITY);
        assert_eq!(ldexp(1.0, -1074), f64::from_bits(1));
    }
}
