//! Python's `repr(float)`.
//!
//! Python prints the shortest digit string that reads back as the same double
//! (as Rust's `{:e}` does), then lays it out with its own rules: positional
//! when the decimal exponent is in `-4..16` (with `.0` added to whole
//! numbers), scientific otherwise (`1e-05`, `1.5e+16`: a sign and at least
//! two exponent digits), and `inf`, `-inf`, `nan` for the specials.

use std::fmt::Write;

/// Python's `repr()` of a double.
pub fn python_float_repr(value: f64) -> String {
    let mut out = Vec::new();
    write_float_repr(&mut out, value);
    // Only ASCII is written; the fallback is unreachable.
    String::from_utf8(out).unwrap_or_default()
}

/// Appends Python's `repr()` of a double.
pub(crate) fn write_float_repr(out: &mut Vec<u8>, value: f64) {
    if value.is_nan() {
        out.extend_from_slice(b"nan");
        return;
    }
    if value.is_infinite() {
        out.extend_from_slice(if value < 0.0 { b"-inf" } else { b"inf" });
        return;
    }
    if write_short_decimal(out, value) {
        return;
    }
    write_shortest(out, value);
}

/// [`write_float_repr`] of a finite value through Rust's shortest
/// round-trip formatting, for every value.
fn write_shortest(out: &mut Vec<u8>, value: f64) {
    // `{:e}` gives the shortest round-trip digits: "-1.2345e-7", "0e0".
    let mut sci = StackBuf::default();
    // StackBuf holds any f64's `{:e}` form (at most 24 bytes); writing cannot fail.
    let _ = write!(sci, "{value:e}");
    let sci = sci.as_str();
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa),
    };
    let mut digits = [0u8; 24];
    let mut n = 0;
    for b in mantissa.bytes().filter(u8::is_ascii_digit) {
        digits[n] = b;
        n += 1;
    }
    let exponent = break_tie_to_even(value.abs(), &mut digits, &mut n, exponent);
    let digits = &digits[..n];
    if negative {
        out.push(b'-');
    }
    if (-4..16).contains(&exponent) {
        write_positional(out, digits, exponent);
    } else {
        write_scientific(out, digits, exponent);
    }
}

/// Python's `repr()` and Rust's shortest formatting agree on the digit
/// count and on the closest candidate, but not on an exact tie: when the
/// value lies exactly halfway between two shortest candidates, CPython's
/// dtoa picks the one whose last digit is even, Rust rounds up
/// (`8796093022208.0625` is `8796093022208.062` in Python). Ties need 16 or
/// more digits (up to 15, the shortest decimal is unique, see
/// [`write_float_literal`]), so only those are checked, exactly, in integer
/// arithmetic. Rewrites `digits[..n]` (ASCII) and returns the exponent.
fn break_tie_to_even(magnitude: f64, digits: &mut [u8; 24], n: &mut usize, exponent: i32) -> i32 {
    if *n < 16 || *n > 17 {
        return exponent;
    }
    let shortest = digits[..*n]
        .iter()
        .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'));
    if shortest % 2 == 0 {
        return exponent;
    }
    // The value is D·10^(e-n+1); D's neighbours' midpoints are (10·D ∓ 5)·10^(e-n).
    let scale = exponent - *n as i32;
    let neighbour = if equals_decimal(magnitude, shortest * 10 - 5, scale) {
        shortest - 1
    } else if equals_decimal(magnitude, shortest * 10 + 5, scale) {
        shortest + 1
    } else {
        return exponent;
    };
    // A tie counts only if the neighbour also reads back as the value (dtoa
    // never leaves the rounding interval, which is lopsided at powers of two).
    let mut spelled = StackBuf::default();
    // StackBuf holds a u64 and an exponent; writing cannot fail.
    let _ = write!(spelled, "{neighbour}e{}", scale + 1);
    if spelled.as_str().parse::<f64>() != Ok(magnitude) {
        return exponent;
    }
    // Re-spell the even neighbour; a carry (…9 + 1) lengthens it by a digit.
    let mut spelled = [0u8; 24];
    let mut len = 0;
    let mut rest = neighbour;
    while rest > 0 {
        spelled[len] = b'0' + (rest % 10) as u8;
        rest /= 10;
        len += 1;
    }
    spelled[..len].reverse();
    let exponent = exponent + len as i32 - *n as i32;
    // A shortest form has no trailing zeros.
    let significant = spelled[..len]
        .iter()
        .rposition(|&d| d != b'0')
        .map_or(1, |i| i + 1);
    digits[..significant].copy_from_slice(&spelled[..significant]);
    *n = significant;
    exponent
}

/// Whether the positive double `value` equals `t·10^s` exactly.
fn equals_decimal(value: f64, t: u64, s: i32) -> bool {
    let bits = value.to_bits();
    let biased = ((bits >> 52) & 0x7FF) as i32;
    let fraction = bits & ((1 << 52) - 1);
    // value = m·2^q
    let (mut m, mut q) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1 << 52), biased - 1075)
    };
    if m == 0 || t == 0 {
        return m == t;
    }
    let zeros = m.trailing_zeros();
    m >>= zeros;
    q += zeros as i32;
    let t_zeros = t.trailing_zeros();
    let t_odd = t >> t_zeros;
    // m·2^q = t_odd·2^(t_zeros + s)·5^s with m, t_odd odd: the powers of two
    // match, and so do the odd parts.
    if q != t_zeros as i32 + s {
        return false;
    }
    let five = |k: i32| 5u128.checked_pow(k.unsigned_abs());
    if s >= 0 {
        five(s).and_then(|p| p.checked_mul(u128::from(t_odd))) == Some(u128::from(m))
    } else {
        five(s).and_then(|p| p.checked_mul(u128::from(m))) == Some(u128::from(t_odd))
    }
}

/// Appends `repr(value)` when `value` is a decimal of at most 15 significant
/// digits with a decimal exponent in `-4..16` (most floats in webhooks:
/// `3748.5`, `0.1`, `12.0`); returns false, writing nothing, otherwise.
///
/// For k = 0, 1, … it takes N = round(|value| · 10^k) while N <= 10^15 and
/// checks that N / 10^k, computed in one correctly rounded division of two
/// exactly representable numbers (N <= 10^15 < 2^53, 10^k for k <= 22), gives back
/// `value`. That is the double nearest the decimal N·10^-k, so that decimal
/// reads back as `value`; having at most 15 significant digits it is the
/// only such decimal in `value`'s rounding interval (see
/// [`write_float_literal`]), hence the shortest one, which `repr()` prints.
fn write_short_decimal(out: &mut Vec<u8>, value: f64) -> bool {
    const LIMIT: f64 = 1e15;
    let magnitude = value.abs();
    if magnitude == 0.0 {
        out.extend_from_slice(if value.is_sign_negative() {
            b"-0.0"
        } else {
            b"0.0"
        });
        return true;
    }
    if !(1e-4..1e16).contains(&magnitude) {
        return false;
    }
    let mut scale = 1.0f64;
    for k in 0..=19 {
        let scaled = magnitude * scale;
        // N <= 10^15: at most 15 significant digits (10^15 itself has one).
        if scaled > LIMIT {
            return false;
        }
        let n = scaled.round();
        if n / scale == magnitude {
            // N <= 10^15 fits in u64 exactly.
            let mut digits = [0u8; 20];
            let mut len = 0;
            let mut rest = n as u64;
            while rest > 0 {
                digits[len] = b'0' + (rest % 10) as u8;
                rest /= 10;
                len += 1;
            }
            digits[..len].reverse();
            // N·10^-k = d1.d2… × 10^(len - 1 - k); drop N's trailing zeros.
            let exponent = len as i32 - 1 - k;
            let significant = digits[..len]
                .iter()
                .rposition(|&d| d != b'0')
                .map_or(1, |i| i + 1);
            if !(-4..16).contains(&exponent) {
                return false;
            }
            if value < 0.0 {
                out.push(b'-');
            }
            write_positional(out, &digits[..significant], exponent);
            return true;
        }
        scale *= 10.0;
    }
    false
}

/// Appends `repr(float(literal))` for a JSON float literal written in plain
/// decimal (`-?\d+\.\d+`, no exponent) with at most 15 significant digits
/// and a decimal exponent in `-4..16`; returns false, writing nothing, for
/// any other literal.
///
/// Why that is exact without converting: a decimal of at most 15 significant
/// digits is the only such decimal in its double's rounding interval (two of
/// them are at least 10^-14 apart relative to their magnitude, an interval is
/// at most 2^-52 ≈ 2.2·10^-16 wide), so the shortest digit string that reads
/// back as the same double, which `repr()` prints, is the literal's own
/// significant digits. In `-4..16` `repr()` lays them out positionally: the
/// literal as written, with trailing fraction zeros dropped (one kept).
pub(crate) fn write_float_literal(out: &mut Vec<u8>, literal: &str) -> bool {
    let bytes = literal.as_bytes();
    let unsigned = bytes.strip_prefix(b"-").unwrap_or(bytes);
    let Some(dot) = unsigned.iter().position(|&b| b == b'.') else {
        return false;
    };
    let (int, frac) = (&unsigned[..dot], &unsigned[dot + 1..]);
    if int.is_empty() || frac.is_empty() || !int.iter().chain(frac).all(u8::is_ascii_digit) {
        return false;
    }
    let frac_end = frac.iter().rposition(|&d| d != b'0').map_or(0, |i| i + 1);
    let frac = &frac[..frac_end];
    if int == b"0" {
        // 0.000ddd: the exponent is -(leading zeros + 1), at least -4.
        let zeros = frac.iter().take_while(|&&d| d == b'0').count();
        if !frac.is_empty() && (zeros > 3 || frac.len() - zeros > 15) {
            return false;
        }
    } else {
        // JSON integer parts have no leading zeros: the exponent is len - 1.
        let significant = if frac.is_empty() {
            int.iter().rposition(|&d| d != b'0').map_or(0, |i| i + 1)
        } else {
            int.len() + frac.len()
        };
        if int.len() > 16 || significant > 15 {
            return false;
        }
    }
    out.extend_from_slice(&bytes[..bytes.len() - unsigned.len() + dot + 1]);
    if frac.is_empty() {
        out.push(b'0');
    } else {
        out.extend_from_slice(frac);
    }
    true
}

fn push_digits(out: &mut Vec<u8>, digits: &[u8]) {
    out.extend_from_slice(digits);
}

/// `digits` = d1 d2 … dn meaning d1.d2…dn × 10^exponent.
fn write_positional(out: &mut Vec<u8>, digits: &[u8], exponent: i32) {
    if exponent < 0 {
        out.extend_from_slice(b"0.");
        for _ in 0..(-exponent - 1) {
            out.push(b'0');
        }
        push_digits(out, digits);
        return;
    }
    let int_len = exponent as usize + 1;
    if digits.len() <= int_len {
        push_digits(out, digits);
        for _ in digits.len()..int_len {
            out.push(b'0');
        }
        out.extend_from_slice(b".0");
    } else {
        push_digits(out, &digits[..int_len]);
        out.push(b'.');
        push_digits(out, &digits[int_len..]);
    }
}

fn write_scientific(out: &mut Vec<u8>, digits: &[u8], exponent: i32) {
    push_digits(out, &digits[..1]);
    if digits.len() > 1 {
        out.push(b'.');
        push_digits(out, &digits[1..]);
    }
    out.push(b'e');
    out.push(if exponent < 0 { b'-' } else { b'+' });
    // At least two digits; a double's decimal exponent has at most three.
    let magnitude = exponent.unsigned_abs();
    if magnitude >= 100 {
        out.push(b'0' + (magnitude / 100) as u8);
    }
    out.push(b'0' + (magnitude / 10 % 10) as u8);
    out.push(b'0' + (magnitude % 10) as u8);
}

/// A fixed buffer for one formatted float, so formatting never allocates.
#[derive(Default)]
struct StackBuf {
    bytes: [u8; 32],
    len: usize,
}

impl StackBuf {
    fn as_str(&self) -> &str {
        // Only `write_str` fills the buffer, and it copies whole `&str`s.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("0e0")
    }
}

impl Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.bytes.len() {
            return Err(std::fmt::Error);
        }
        self.bytes[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::python_float_repr as r;
    use super::{write_short_decimal, write_shortest};

    /// The short-decimal path agrees with the general one wherever it answers.
    fn check_short(value: f64) -> bool {
        let mut short = Vec::new();
        if !write_short_decimal(&mut short, value) {
            assert!(short.is_empty());
            return false;
        }
        let mut general = Vec::new();
        write_shortest(&mut general, value);
        assert_eq!(
            String::from_utf8(short).unwrap(),
            String::from_utf8(general).unwrap(),
            "{value:e}"
        );
        true
    }

    #[test]
    // The literals are the exact binary values, written out to show the tie.
    #[allow(clippy::excessive_precision)]
    fn exact_ties_go_to_the_even_digit_as_in_python() {
        // (value, Python 3.11's repr): each value lies exactly halfway between
        // two shortest candidates.
        let cases: &[(f64, &str)] = &[
            (8796093022208.0625, "8796093022208.062"),
            (1410136567754626.25, "1410136567754626.2"),
            (1755430989546619.25, "1755430989546619.2"),
            (129749159896432.375, "129749159896432.38"),
            (1815433045617138.75, "1815433045617138.8"),
            (177583739449041.125, "177583739449041.12"),
            (2144464366686936.75, "2144464366686936.8"),
            (-8796093022208.0625, "-8796093022208.062"),
            (0.5000000000000001, "0.5000000000000001"),
            (9007199254740993.0, "9007199254740992.0"),
            (1.2345678901234567e+200, "1.2345678901234567e+200"),
            // Powers of two: the interval below is half as wide, so the lower
            // "tie" does not read back and the odd digit stays.
            (5.960464477539063e-08, "5.960464477539063e-08"),
            (2f64.powi(-24), "5.960464477539063e-08"),
            (2f64.powi(-30), "9.313225746154785e-10"),
            (2f64.powi(70), "1.1805916207174113e+21"),
        ];
        for &(value, expected) in cases {
            assert_eq!(r(value), expected, "repr({value:e})");
        }
    }

    #[test]
    fn short_decimals_at_the_edges() {
        for value in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            0.2,
            0.3,
            0.1 + 0.2,
            3748.5,
            4012.25,
            1e-4,
            1.5e-4,
            9.99e-5,
            1e15,
            1e16,
            9999999999999998.0,
            999999999999999.9,
            123456789012345.6,
            0.123456789012345,
            0.1234567890123456,
            1.7976931348623157e308,
            5e-324,
            2.5e-7,
            100.0,
            1e14,
            4.35,
            0.07,
            12345.678,
            2f64.powi(52),
            2f64.powi(53) - 1.0,
        ] {
            check_short(value);
        }
        assert!(check_short(3748.5) && check_short(0.1) && check_short(1e15));
        assert!(!check_short(0.1 + 0.2) && !check_short(1e16) && !check_short(9.99e-5));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

        #[test]
        fn short_path_matches_the_general_path_on_any_double(bits: u64) {
            check_short(f64::from_bits(bits));
        }

        #[test]
        fn short_path_matches_on_short_decimals(n in 0u64..10_000_000_000_000_000, k in 0i32..25, negative: bool) {
            let value = n as f64 / 10f64.powi(k) * if negative { -1.0 } else { 1.0 };
            check_short(value);
        }
    }

    #[test]
    fn matches_python_repr() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (9999999999999998.0, "9999999999999998.0"),
            (1e15, "1000000000000000.0"),
            (1.5e16, "1.5e+16"),
            (123456.789, "123456.789"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (1e22, "1e+22"),
            (-2.5e-7, "-2.5e-07"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
            (100.0, "100.0"),
            (0.00012345, "0.00012345"),
        ];
        for &(value, expected) in cases {
            assert_eq!(r(value), expected, "repr({value:?})");
        }
    }
}
