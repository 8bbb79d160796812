use super::*;
use std::str::FromStr;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn pct(now: Decimal, before: Decimal) -> String {
    Change::between(now, before).to_string()
}

#[test]
fn one_decimal_with_the_sign_always_shown() {
    assert_eq!(pct(d("45750"), d("40100")), "+14.1%");
    assert_eq!(pct(d("45750"), d("50000")), "-8.5%");
    assert_eq!(pct(d("45750"), d("45000")), "+1.7%");
    assert_eq!(pct(d("200"), d("100")), "+100.0%");
    assert_eq!(pct(d("0"), d("100")), "-100.0%");
    assert_eq!(pct(d("100"), d("100")), "+0.0%");
}

#[test]
fn rounds_half_away_from_zero_and_never_shows_minus_zero() {
    // 1.05 % and -1.05 %: exactly on the midpoint.
    assert_eq!(pct(d("101.05"), d("100")), "+1.1%");
    assert_eq!(pct(d("98.95"), d("100")), "-1.1%");
    assert_eq!(pct(d("101.04"), d("100")), "+1.0%");
    // -0.04 % rounds to zero: shown as +0.0%.
    assert_eq!(pct(d("99.96"), d("100")), "+0.0%");
    // Thirds: no float error creeps in.
    assert_eq!(pct(d("400"), d("300")), "+33.3%");
    assert_eq!(pct(d("200"), d("300")), "-33.3%");
}

#[test]
fn no_percentage_against_zero_or_unknown() {
    assert_eq!(pct(d("100"), d("0")), "n/a");
    assert_eq!(pct(d("0"), d("0")), "n/a");
    assert_eq!(Change::against(d("5"), None).to_string(), "n/a");
}

#[test]
fn large_values_stay_exact_or_say_n_a() {
    assert_eq!(
        pct(d("2000000000000.00"), d("0.01")),
        "+19999999999999900.0%"
    );
    assert_eq!(pct(d("123456789012.34"), d("123456789012.33")), "+0.0%");
    // Beyond Decimal's range: never a panic, never a wrong figure.
    assert_eq!(
        Change::between(Decimal::MAX, d("0.0001")),
        Change::OutOfRange
    );
    assert_eq!(pct(Decimal::MAX, d("0.0001")), "n/a");
    assert_eq!(pct(Decimal::MIN, Decimal::MAX), "n/a");
    assert_eq!(pct(d("-50"), d("100")), "-150.0%");
}
