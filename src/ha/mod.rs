//! High availability (`POWER_REVENUE_HA`): an active/standby pair, fenced by a lease with an
//! epoch. This holds its pure core ([`lease`]: when to take, renew and stop) and the lease's
//! document in the database ([`store`]), for the pair the next change wires into the service;
//! with one instance (the only mode today) nothing here runs.

pub mod lease;
pub mod store;
