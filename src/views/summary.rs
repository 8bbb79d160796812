//! The last period summary as `status` shows it.

use crate::store::Outboxed;
use crate::store::{DeliveryStatus, SummaryRecord};
use crate::window::{Tally, Window};
use serde::{Deserialize, Serialize};

/// The latest period's summary (`POWER_REVENUE_SUMMARY`) and where it is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SummaryStatus {
    pub period: Window,
    /// `closed` (queued), `ready`, `sent` (with `at`) or `undeliverable` (with `reason`).
    pub delivery: DeliveryStatus,
    /// The period's total as posted; `None` until its figures are in.
    pub total: Option<Tally>,
    pub attempts: u32,
    pub last_error: Option<String>,
}

impl SummaryStatus {
    pub fn of(s: &SummaryRecord) -> SummaryStatus {
        SummaryStatus {
            period: s.period,
            delivery: s.status(),
            total: s.total(),
            attempts: s.attempts,
            last_error: s.last_error.clone(),
        }
    }
}
