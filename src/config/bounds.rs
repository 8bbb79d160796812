//! Duration settings: parsing, and the bounds each is checked against at start. With every
//! span bounded (a day, a week, a year), no later arithmetic on them can overflow: chrono's
//! range is ±262 000 years, and what is added to an instant is at most 366 days.

use super::ConfigError;
use crate::period::PeriodSpec;
use crate::window::WindowSpec;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);
/// Catch-up and horizons: a year (and the odd leap day).
pub const MAX_HORIZON: Duration = Duration::from_secs(366 * 86_400);
/// Alert thresholds: a week; an alert later than that alerts nobody.
pub const MAX_ALERT: Duration = Duration::from_secs(7 * 86_400);
/// Windows divide a day, so none is longer.
pub const MAX_WINDOW: Duration = DAY;
/// The grace when none is given, unless the window is too short for it (see [`grace`]).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(60);

/// Retention: ten years at most.
pub const MAX_RETENTION: Duration = Duration::from_secs(3653 * 86_400);
/// Retention when none is given (unless the floor is longer).
const DEFAULT_RETENTION: Duration = Duration::from_secs(90 * 86_400);
/// What comparisons reach back: the same window a week ago.
const WEEK: Duration = Duration::from_secs(7 * 86_400);

/// `POWER_REVENUE_RETENTION` [default 90d, or the floor if that is longer]: never shorter than
/// what a later message may still need of a window (the floor): the restatement horizon
/// (corrections), and a week plus the longest of a window and a summary period (`reach`:
/// comparisons and a summary's previous period) plus a day. A value given below it is
/// refused.
pub(super) fn retention(
    value: Option<&str>,
    restate_horizon: Duration,
    reach: Duration,
) -> Result<Duration, ConfigError> {
    const NAME: &str = "POWER_REVENUE_RETENTION";
    // A day more than they reach: a report is prepared after its window ends, and pruning
    // runs hourly.
    let comparisons = WEEK.saturating_add(reach).saturating_add(DAY);
    let (floor, why) = if restate_horizon > comparisons {
        (restate_horizon, "POWER_REVENUE_RESTATE_HORIZON")
    } else {
        (
            comparisons,
            "what comparisons and summaries reach back (a week, a period and a day)",
        )
    };
    let Some(value) = value else {
        return Ok(DEFAULT_RETENTION.max(floor));
    };
    let d = bounded(NAME, value, MAX_RETENTION)?;
    if d < floor {
        return Err(ConfigError::BelowFloor {
            name: NAME,
            value: value.to_owned(),
            why,
            min: show(floor),
        });
    }
    Ok(d)
}

/// A duration setting, checked against its largest value.
pub(super) fn bounded(
    name: &'static str,
    value: &str,
    max: Duration,
) -> Result<Duration, ConfigError> {
    let out_of_bounds = || ConfigError::OutOfBounds {
        name,
        value: value.to_owned(),
        max: show(max),
    };
    match humantime::parse_duration(value.trim()) {
        Ok(d) if d <= max => Ok(d),
        // `400000000y` fits no u64 of seconds: too long, not malformed.
        Ok(_) | Err(humantime::DurationError::NumberOverflow) => Err(out_of_bounds()),
        Err(_) => Err(ConfigError::BadDuration {
            name,
            value: value.to_owned(),
        }),
    }
}

/// The grace: shorter than the window, or the next window would be due before this one closed.
/// Unset, it is a minute, or half the window where a minute would not fit (20 s windows).
pub(super) fn grace(value: Option<&str>, window: Duration) -> Result<Duration, ConfigError> {
    let Some(value) = value else {
        return Ok(DEFAULT_GRACE.min(window / 2));
    };
    let too_long = || ConfigError::GraceNotBelowWindow {
        value: value.to_owned(),
        window: show(window),
    };
    match bounded("POWER_REVENUE_GRACE", value, MAX_WINDOW) {
        Ok(d) if d < window => Ok(d),
        Ok(_) | Err(ConfigError::OutOfBounds { .. }) => Err(too_long()),
        Err(e) => Err(e),
    }
}

/// The longest silence period: a utility quiet for a day is no longer news at this hour.
pub const MAX_SILENCE: Duration = DAY;
/// The largest minimum of usual sales per silence period.
pub const MAX_SILENCE_MIN_SALES: u32 = 1_000_000;

/// `POWER_REVENUE_SILENCE` (`off`, or 1 s – 1 d; default 30m) and
/// `POWER_REVENUE_SILENCE_MIN_SALES` (1 – 1 000 000; default 5).
pub(super) fn silence(
    period: Option<&str>,
    min_sales: Option<&str>,
) -> Result<super::Silence, ConfigError> {
    const NAME: &str = "POWER_REVENUE_SILENCE";
    const MIN_NAME: &str = "POWER_REVENUE_SILENCE_MIN_SALES";
    let min_value = min_sales.unwrap_or("5");
    let min_sales = match min_value.trim().parse::<u32>() {
        Ok(n) if (1..=MAX_SILENCE_MIN_SALES).contains(&n) => n,
        _ => {
            return Err(ConfigError::BadCount {
                name: MIN_NAME,
                value: min_value.to_owned(),
                min: 1,
                max: MAX_SILENCE_MIN_SALES,
            })
        }
    };
    let value = period.unwrap_or("30m");
    if value.trim().eq_ignore_ascii_case("off") {
        return Ok(super::Silence::Off);
    }
    let period = bounded(NAME, value, MAX_SILENCE)?;
    if period < Duration::from_secs(1) {
        return Err(ConfigError::TooShort {
            name: NAME,
            value: value.to_owned(),
            min: "1s (or off)",
        });
    }
    Ok(super::Silence::After { period, min_sales })
}

/// `366d`, `7d`, `6h`, `20s`: as an operator would write it back.
pub(super) fn show(d: Duration) -> String {
    if d >= DAY && d.as_secs() % DAY.as_secs() == 0 && d.subsec_nanos() == 0 {
        format!("{}d", d.as_secs() / DAY.as_secs())
    } else {
        humantime::format_duration(d).to_string()
    }
}

/// `POWER_REVENUE_SUMMARY`: `off`, or a period that is a multiple of the window and divides a
/// day (at most a day, whole seconds).
pub(super) fn summary(
    value: Option<&str>,
    window: WindowSpec,
) -> Result<Option<PeriodSpec>, ConfigError> {
    const NAME: &str = "POWER_REVENUE_SUMMARY";
    let value = value.unwrap_or("1d");
    if value.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let d = bounded(NAME, value, MAX_WINDOW)?;
    if d.subsec_nanos() != 0 {
        return Err(ConfigError::BadSummary(
            "the period must be whole seconds; use e.g. 1d, or off".into(),
        ));
    }
    PeriodSpec::new(d.as_secs(), window)
        .map(Some)
        .map_err(ConfigError::BadSummary)
}
