//! power-revenue: live revenue totals from the change stream of `power_transaction_items`,
//! reconciled and posted to Slack once per window.
//!
//! Data flow:
//!
//! ```text
//! MongoDB change stream ──► source::Tailer ──► window totals (source::Live, in memory, live)
//!   (fulfilled sales,          │  a server batch at a time, events read in place (raw);
//!    filtered server-side)     │  rules::classify: what counts, money: exact amounts
//!                              ▼
//!                          store (sled): resume token + open windows, one atomic write
//!                              │  window due (end + grace) → outbox record, same write
//!                              ▼
//!                          deliver::Deliverer ──► reconcile ($facet, the source of truth;
//!                              │                    re-run for earlier windows with late sales)
//!                              │                ──► report::render (text + Block Kit)
//!                              ▼
//!                          sink::slack (2xx) ──► store: marked sent, never posted twice
//! ```
//!
//! `config` validates settings before anything connects; `display` makes names from the
//! database safe to show; `app` wires the tasks; `http` and `status` show the live state;
//! `limits` bounds every command sent to the server; `raw` walks a batch and an event's few
//! fields fast for
//! `source` and `rules`; `commands` holds the one-shot commands; `devserver` runs a local
//! SecantusDB for the demo and the tests.

pub mod alert;
pub mod app;
pub mod change;
pub mod commands;
pub mod config;
pub mod deliver;
#[cfg(feature = "demo")]
pub mod demo;
#[cfg(feature = "demo")]
pub mod devserver;
pub mod display;
pub(crate) mod failpoint;
pub mod http;
pub(crate) mod limits;
pub mod money;
pub mod raw;
pub mod reconcile;
pub mod report;
pub mod rules;
pub mod setup;
pub mod sink;
pub mod source;
pub mod status;
pub mod store;
pub mod telemetry;
pub mod window;
