//! Money: how one sale's amount becomes an exact `Decimal`, and how money is displayed.
//!
//! Every amount, whatever its BSON type, is reduced to *sign, decimal digits, exponent* and then
//! to naira rounded to the kobo (2 places, ties to even). The server-side twin of these rules is
//! [`crate::rules::amount_expr`]; `tests/it/rules_agree.rs` proves the two agree on random input.

use rust_decimal::{Decimal, RoundingStrategy};
use std::io::Write;

/// The largest amount one sale may carry (₦1,000,000,000,000). Anything above is a data error;
/// the bound also keeps every sum exact in both `rust_decimal` and Decimal128.
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(0xD4A5_1000, 0xE8, 0, false, 0);

/// Why an amount does not count. The names are metric labels and log fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    Missing,
    WrongType,
    Unparseable,
    NotFinite,
    Negative,
    TooLarge,
}

impl Rejection {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "amount_missing",
            Self::WrongType => "amount_wrong_type",
            Self::Unparseable => "amount_unparseable",
            Self::NotFinite => "amount_not_finite",
            Self::Negative => "amount_negative",
            Self::TooLarge => "amount_too_large",
        }
    }
}

/// The value `(-1)^negative × digits × 10^exponent`, rounded to the kobo.
///
/// Only the integer part, three fraction digits and a sticky digit (any non-zero digit beyond)
/// are kept: that is enough to round half-to-even exactly and to compare with [`MAX_AMOUNT`],
/// whatever the exponent, without ever building a number `rust_decimal` cannot hold.
pub fn from_digits(negative: bool, digits: &str, exponent: i64) -> Result<Decimal, Rejection> {
    from_digit_bytes(negative, digits.bytes(), exponent)
}

/// [`from_digits`] over ASCII digits in any container, without allocating (the hot path).
fn from_digit_bytes(
    negative: bool,
    digits: impl Iterator<Item = u8> + Clone,
    exponent: i64,
) -> Result<Decimal, Rejection> {
    let digits = digits.skip_while(|&b| b == b'0').fuse();
    let len = digits.clone().count() as i64;
    if len == 0 {
        return Ok(Decimal::new(0, 2)); // -0 counts as zero, as on the server.
    }
    if negative {
        return Err(Rejection::Negative);
    }
    let int_len = len + exponent;
    if int_len > 13 {
        return Err(Rejection::TooLarge); // ≥ 10^13 > MAX_AMOUNT
    }
    // The value in thousandths (at most 16 digits), and whether anything non-zero lies beyond.
    let (mut milli, sticky) = (0u64, true);
    let sticky = if int_len + 3 <= 0 {
        sticky
    } else {
        let mut rest = digits;
        for _ in 0..int_len + 3 {
            milli = milli * 10 + u64::from(rest.next().map_or(0, |b| b - b'0'));
        }
        rest.any(|b| b != b'0')
    };
    from_milli(u128::from(milli), sticky)
}

/// Thousandths of a naira, and whether anything non-zero lies beyond, rounded to the kobo.
fn from_milli(milli: u128, sticky: bool) -> Result<Decimal, Rejection> {
    if milli > MAX_MILLI || (milli == MAX_MILLI && sticky) {
        return Err(Rejection::TooLarge);
    }
    // Half to even on the third decimal, the sticky digit breaking ties.
    let (kobo, last) = (milli / 10, milli % 10);
    let up = last > 5 || (last == 5 && (sticky || kobo % 2 == 1));
    Ok(Decimal::new((kobo + u128::from(up)) as i64, 2))
}

/// [`MAX_AMOUNT`] in thousandths of a naira.
const MAX_MILLI: u128 = 1_000_000_000_000_000;

/// A string already matched by [`crate::rules::AMOUNT_PATTERN`]: integer part (commas allowed)
/// and optional fraction digits.
pub(crate) fn from_captures(int_part: &str, frac_part: &str) -> Result<Decimal, Rejection> {
    let digits = int_part.bytes().filter(|&b| b != b',');
    from_digit_bytes(
        false,
        digits.chain(frac_part.bytes()),
        -(frac_part.len() as i64),
    )
}

pub(crate) fn from_i64(n: i64) -> Result<Decimal, Rejection> {
    if n < 0 {
        Err(Rejection::Negative)
    } else if n > MAX_NAIRA {
        Err(Rejection::TooLarge)
    } else {
        Ok(Decimal::new(n * 100, 2))
    }
}

/// [`MAX_AMOUNT`] as an integer.
const MAX_NAIRA: i64 = 1_000_000_000_000;

/// A double as the server's `$toDecimal` sees it: rounded to 15 significant digits.
pub(crate) fn from_f64(x: f64) -> Result<Decimal, Rejection> {
    if !x.is_finite() {
        return Err(Rejection::NotFinite);
    }
    if x == 0.0 {
        return Ok(Decimal::new(0, 2));
    }
    if x.fract() == 0.0 && x.abs() < 1e15 {
        // A whole number of at most 15 digits: the 15-digit rounding leaves it as it is.
        return from_i64(x as i64);
    }
    // On the stack: at most 22 bytes ("-1.23456789012345e-308").
    let mut buf = [0u8; 32];
    let mut out = std::io::Cursor::new(&mut buf[..]);
    write!(out, "{x:.14e}").map_err(|_| Rejection::Unparseable)?; // e.g. "2.50000000000000e-3"
    let len = out.position() as usize;
    let sci = std::str::from_utf8(&buf[..len]).map_err(|_| Rejection::Unparseable)?;
    let (mantissa, exp) = sci.split_once('e').ok_or(Rejection::Unparseable)?;
    let exp: i64 = exp.parse().map_err(|_| Rejection::Unparseable)?;
    let negative = mantissa.starts_with('-');
    let digits = mantissa.bytes().filter(u8::is_ascii_digit);
    from_digit_bytes(negative, digits, exp - 14)
}

/// A Decimal128 from its bits (IEEE 754-2008 BID): `coefficient × 10^(exponent − 6176)`, read
/// as `bson` reads it (a coefficient above 34 digits is zero), without formatting it as text.
/// Tested against the text route (`to_string`, then the digit rules) in the tests below.
pub(crate) fn from_decimal128(d: &bson::Decimal128) -> Result<Decimal, Rejection> {
    const BIAS: i64 = 6176;
    const MAX_COEFFICIENT: u128 = 10u128.pow(34) - 1;
    let bits = u128::from_le_bytes(d.bytes());
    let negative = bits >> 127 == 1;
    let (exponent, coefficient) = if (bits >> 123) & 0xF == 0xF {
        return Err(Rejection::NotFinite); // NaN or Infinity
    } else if (bits >> 125) & 0b11 == 0b11 {
        // Coefficient with an implied `100` prefix: always above 34 digits, so zero.
        ((bits >> 111) & 0x3FFF, 0)
    } else {
        ((bits >> 113) & 0x3FFF, bits & ((1 << 113) - 1))
    };
    if coefficient == 0 || coefficient > MAX_COEFFICIENT {
        return Ok(Decimal::new(0, 2)); // -0 counts as zero, as on the server.
    }
    if negative {
        return Err(Rejection::Negative);
    }
    // The value in thousandths is coefficient × 10^shift.
    let shift = exponent as i64 - BIAS + 3;
    let (milli, sticky) = match shift {
        // coefficient ≥ 1, so 10^20 thousandths and more are far above MAX_AMOUNT.
        20.. => return Err(Rejection::TooLarge),
        0.. => (
            coefficient
                .checked_mul(10u128.pow(shift as u32))
                .ok_or(Rejection::TooLarge)?,
            false,
        ),
        // 10^38 still fits a u128 and exceeds any 34-digit coefficient.
        -38.. => {
            let p = 10u128.pow(shift.unsigned_abs() as u32);
            (coefficient / p, coefficient % p != 0)
        }
        _ => (0, true),
    };
    from_milli(milli, sticky)
}

/// Decimal128 sums from the server (always finite, at most kobo precision) into `Decimal`.
pub(crate) fn sum_from_decimal128(d: &bson::Decimal128) -> Option<Decimal> {
    let s = d.to_string();
    Decimal::from_str_exact(&s)
        .or_else(|_| Decimal::from_scientific(&s))
        .ok()
}

/// `₦45,750.00`: naira sign, thousands separators, always two decimals.
pub fn format_naira(amount: Decimal) -> String {
    let rounded = amount.round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven);
    let plain = format!("{:.2}", rounded.abs());
    let (int_part, frac) = plain.split_once('.').unwrap_or((&plain, "00"));
    let mut grouped = String::with_capacity(int_part.len() + int_part.len() / 3);
    for (i, c) in int_part.chars().enumerate() {
        if i > 0 && (int_part.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if rounded.is_sign_negative() && !rounded.is_zero() {
        "-"
    } else {
        ""
    };
    format!("{sign}₦{grouped}.{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    /// The text route [`from_decimal128`] replaced: bson's canonical string, then the digits.
    fn decimal128_by_text(d: &bson::Decimal128) -> Result<Decimal, Rejection> {
        let s = d.to_string();
        let (negative, body) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.as_str()),
        };
        if !body.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(Rejection::NotFinite);
        }
        let (coef, exp) = match body.split_once(['E', 'e']) {
            Some((c, e)) => (c, e.parse::<i64>().map_err(|_| Rejection::Unparseable)?),
            None => (body, 0),
        };
        let (int_part, frac_part) = coef.split_once('.').unwrap_or((coef, ""));
        reference(
            negative,
            &format!("{int_part}{frac_part}"),
            exp - frac_part.len() as i64,
        )
    }

    /// Decimal128 bits built from parts: sign, biased exponent, coefficient (may be oversized).
    fn d128(negative: bool, exponent: u128, coefficient: u128) -> bson::Decimal128 {
        let bits = (u128::from(negative) << 127)
            | ((exponent & 0x3FFF) << 113)
            | (coefficient & ((1 << 113) - 1));
        bson::Decimal128::from_bytes(bits.to_le_bytes())
    }

    /// The straightforward version (strings and `rust_decimal` rounding) that the allocation-
    /// free [`from_digits`] replaced; kept as its oracle.
    fn reference(negative: bool, digits: &str, exponent: i64) -> Result<Decimal, Rejection> {
        let digits = digits.trim_start_matches('0');
        if digits.is_empty() {
            return Ok(Decimal::new(0, 2));
        }
        if negative {
            return Err(Rejection::Negative);
        }
        let int_len = digits.len() as i64 + exponent;
        if int_len > 13 {
            return Err(Rejection::TooLarge);
        }
        let mut s = String::new();
        let split = int_len.clamp(0, digits.len() as i64) as usize;
        if int_len <= 0 {
            s.push('0');
        } else {
            s.push_str(&digits[..split]);
            for _ in digits.len() as i64..int_len {
                s.push('0');
            }
        }
        s.push('.');
        let lead_zeros = (-int_len).clamp(0, 4) as usize;
        let mut frac = std::iter::repeat_n(b'0', lead_zeros).chain(digits[split..].bytes());
        for _ in 0..3 {
            s.push(frac.next().unwrap_or(b'0') as char);
        }
        if frac.any(|b| b != b'0') {
            s.push('1');
        }
        let value = Decimal::from_str_exact(&s).unwrap();
        if value > MAX_AMOUNT {
            return Err(Rejection::TooLarge);
        }
        let mut d = value.round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven);
        d.rescale(2);
        Ok(d)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]

        #[test]
        fn digits_agree_with_the_reference(
            negative: bool,
            digits in "0{0,3}[0-9]{0,18}(5|50|500)?0{0,3}",
            exponent in -25i64..15,
        ) {
            let (fast, slow) = (from_digits(negative, &digits, exponent), reference(negative, &digits, exponent));
            proptest::prop_assert_eq!(fast, slow);
            if let (Ok(a), Ok(b)) = (fast, slow) {
                proptest::prop_assert_eq!(a.to_string(), b.to_string());
            }
        }

        #[test]
        fn decimal128_bits_agree_with_its_text(
            negative in proptest::bool::weighted(0.1),
            exponent in 6176u128 - 45..6176 + 25,
            coefficient in proptest::prop_oneof![0u128..100_000_000, 0u128..1 << 113, proptest::strategy::Just(10u128.pow(34) - 1), proptest::strategy::Just(10u128.pow(34))],
            raw: u128,
        ) {
            let d = d128(negative, exponent, coefficient);
            proptest::prop_assert_eq!(from_decimal128(&d), decimal128_by_text(&d), "{}", d);
            let any = bson::Decimal128::from_bytes(raw.to_le_bytes());
            proptest::prop_assert_eq!(from_decimal128(&any), decimal128_by_text(&any), "{}", any);
        }

        #[test]
        fn doubles_agree_with_fifteen_digit_formatting(x in proptest::num::f64::ANY) {
            let sci = format!("{x:.14e}");
            let (mantissa, exp) = sci.split_once('e').unwrap_or(("", "0"));
            let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
            let expected = if x.is_finite() {
                reference(mantissa.starts_with('-'), &digits, exp.parse::<i64>().unwrap() - 14)
            } else {
                Err(Rejection::NotFinite)
            };
            proptest::prop_assert_eq!(from_f64(x), expected);
        }
    }

    #[test]
    fn max_amount_is_one_trillion() {
        assert_eq!(MAX_AMOUNT, d("1000000000000"));
    }

    #[test]
    fn digits_round_half_even_to_the_kobo() {
        assert_eq!(from_digits(false, "125", -3), Ok(d("0.12")));
        assert_eq!(from_digits(false, "15", -3), Ok(d("0.02")));
        assert_eq!(
            from_digits(false, "50000000000000000000000000000001", -34),
            Ok(d("0.01"))
        );
        assert_eq!(from_digits(false, "1", -6000), Ok(d("0.00")));
        assert_eq!(from_digits(false, "15005", -1), Ok(d("1500.50")));
        assert_eq!(from_i64(2000).unwrap().to_string(), "2000.00");
        assert_eq!(from_digits(false, "7", 2).unwrap().to_string(), "700.00");
        assert_eq!(from_digits(false, "7", 2), Ok(d("700")));
    }

    #[test]
    fn digits_bounds_and_sign() {
        assert_eq!(from_digits(true, "000", 0), Ok(Decimal::ZERO));
        assert_eq!(from_digits(true, "1", -9), Err(Rejection::Negative));
        assert_eq!(from_digits(false, "1", 12), Ok(MAX_AMOUNT));
        assert_eq!(
            from_digits(false, "10000000000001", -1),
            Err(Rejection::TooLarge)
        );
        assert_eq!(from_digits(false, "1", 400), Err(Rejection::TooLarge));
    }

    #[test]
    fn doubles_follow_the_servers_fifteen_digits() {
        assert_eq!(from_f64(2.5), Ok(d("2.50")));
        assert_eq!(from_f64(0.125), Ok(d("0.12")));
        assert_eq!(from_f64(1652185258.8058286), Ok(d("1652185258.81")));
        assert_eq!(from_f64(-0.0), Ok(Decimal::ZERO));
        assert_eq!(from_f64(1e-300), Ok(Decimal::ZERO));
        assert_eq!(from_f64(f64::NAN), Err(Rejection::NotFinite));
        assert_eq!(from_f64(-3.0), Err(Rejection::Negative));
    }

    #[test]
    fn decimal128_forms() {
        let p = |s: &str| from_decimal128(&s.parse::<bson::Decimal128>().unwrap());
        assert_eq!(p("1500.50"), Ok(d("1500.50")));
        assert_eq!(p("1.05E+3"), Ok(d("1050")));
        assert_eq!(p("NaN"), Err(Rejection::NotFinite));
        assert_eq!(p("-Infinity"), Err(Rejection::NotFinite));
        assert_eq!(p("-0"), Ok(Decimal::ZERO));
        assert_eq!(p("1E-6000"), Ok(Decimal::ZERO));
        assert_eq!(p("-0.001"), Err(Rejection::Negative));
    }

    #[test]
    fn naira_display() {
        assert_eq!(format_naira(d("45750")), "₦45,750.00");
        assert_eq!(format_naira(d("7500.5")), "₦7,500.50");
        assert_eq!(format_naira(d("0")), "₦0.00");
        assert_eq!(format_naira(d("999")), "₦999.00");
        assert_eq!(format_naira(d("1234567.891")), "₦1,234,567.89");
        assert_eq!(format_naira(d("-1500")), "-₦1,500.00");
    }
}
