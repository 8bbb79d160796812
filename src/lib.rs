//! power-revenue: live revenue totals from the change stream of `power_transaction_items`,
//! reconciled and posted to Slack once per window.
//!
//! Data flow:
//!
//! ```text
//! MongoDB change stream ──► source::Tailer ──► window totals (source::Live, in memory, live)
//!   (fulfilled sales,          │  a server batch at a time, events read in place (raw);
//!    filtered server-side)     │  rules: what counts, money: exact amounts, change: what an
//!                              │  edit, refund or delete moves; source::closer decides when
//!                              ▼  a window closes and when to checkpoint (pure, clock injected)
//!                          store (sled): resume token + open windows + activity buckets, one
//!                              │  atomic write; window due (end + grace) → outbox, same write
//!                              ▼
//!                          deliver::Deliverer: the one outbox (alerts, reports, summaries;
//!                              │  one delivery machine, one posting loop, one backoff)
//!                              │  ──► reconcile ($facet over the closing window, the truth;
//!                              │       re-run for earlier windows whose sales changed)
//!                              │  ──► the ledger (what the channel was told, per window and
//!                              │       utility): comparisons, summaries, corrections' base
//!                              │  ──► report (all wording: text + Block Kit)
//!                              ▼
//!                          sink (Slack webhook, 2xx) ──► store: Sent + ledger, one write
//! ```
//!
//! Beside them: `import` reads the week before the first start once (ledger + activity);
//! `silence` watches the live totals against baselines read from the activity; `retention`
//! prunes what is past `POWER_REVENUE_RETENTION`; `ha` holds the lease of an active/standby
//! pair (not wired yet).
//!
//! Layers, each using only those before it: the domain (`window`, `period`, `money`, `rules`,
//! `raw`, `change`, `activity`, `display`, `report`), the ports (`store`, `sink`), the workers
//! (`source`, `reconcile`, `deliver`, `alert`, `import`, `silence`, `retention`, `ha`), the
//! adapters (`http`, `status`, `views`, `commands`, `app`):
//! `views` owns every output shape built from the store and the live state (the CLI's status,
//! the API, the dashboard), `status` renders it as text, `http` routes it.
//! `config` validates settings before anything connects; `limits` bounds every command sent to
//! the server; `setup` creates the index and turns on pre-images; `supervisor` owns the tasks
//! `app` starts (one that fails stops the process). With the `demo` feature,
//! `demo` and `devserver` run a local SecantusDB (also used by the tests); with `failpoints`,
//! the tests' crash points are armed.

pub mod activity;
pub mod alert;
pub mod app;
pub mod change;
pub mod commands;
pub mod compare;
pub mod config;
pub mod deliver;
#[cfg(feature = "demo")]
pub mod demo;
#[cfg(feature = "demo")]
pub mod devserver;
pub mod display;
pub(crate) mod failpoint;
pub mod ha;
pub mod http;
pub(crate) mod import;
pub(crate) mod limits;
pub mod money;
pub mod period;
pub mod raw;
pub mod reconcile;
pub mod report;
pub(crate) mod retention;
pub mod rules;
pub mod setup;
pub mod silence;
pub mod sink;
pub mod source;
pub mod status;
pub mod store;
pub(crate) mod supervisor;
pub mod telemetry;
pub(crate) mod views;
pub mod window;
