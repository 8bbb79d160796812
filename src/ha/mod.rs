//! High availability (`POWER_REVENUE_HA`): an active/standby pair, fenced by a lease with an
//! epoch. This holds its pure core ([`lease`]: when to take, renew and stop), the lease's
//! document in the database ([`store`]), the loop that drives them and publishes whether this
//! instance may post ([`leader`]), and fenced delivery ([`claims`]: a message claimed and
//! marked sent only under the lease's epoch), for the pair the next change wires into the
//! service; with one instance (the only mode today) nothing here runs.

pub mod claims;
pub mod leader;
pub mod lease;
pub mod store;
