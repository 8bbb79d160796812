//! The integration suite, one binary: its tests run side by side (`.cargo/config.toml` sets
//! the thread count), most of them waiting on wall-clock windows rather than working, and the
//! library and its dependencies are linked once instead of once per file.
//!
//! `common` is the test support: the test server (SecantusDB, or `MONGODB_URI`), the loopback
//! Slack, the service launcher, the browser and the checkers (promtool, an OpenAPI validator),
//! each provisioned once per run.

mod common;

mod chaos;
mod cli;
mod compare;
mod config_bounds;
mod container;
mod decoder_fuzz;
mod deploy;
mod docs;
mod dst;
mod faults;
mod ha_lease;
mod hardening_config;
mod history;
mod hostile_names;
mod http_surface;
mod live_view;
mod monitoring;
mod openapi;
mod pipeline;
mod restart_load;
mod restatements;
mod rules_agree;
mod security;
mod silence;
mod silence_rules;
mod slack_limits;
mod state_dir;
mod summary;
mod supervision;
mod supply_chain;
mod utility_corrections;
