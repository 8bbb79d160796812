//! The lease in the database: one document per service (`_id`), with its holder, its expiry by
//! the server's clock and its epoch, which grows on every take-over. Taken and renewed by
//! compare-and-set on holder and epoch, after reading the server's time (`hello`'s
//! `localTime`), so no instance's clock decides an expiry.

use super::lease::Outcome;
use crate::limits;
use bson::{doc, Document};
use chrono::{DateTime, Utc};
use mongodb::Collection;
use std::time::Duration;

/// The lease of one service in `coll`, as seen by one instance.
#[derive(Clone)]
pub struct LeaseStore {
    pub coll: Collection<Document>,
    /// The lease document's `_id`.
    pub name: String,
    /// This instance (`POWER_REVENUE_INSTANCE`).
    pub instance: String,
    /// How long a lease lasts.
    pub length: Duration,
}

/// The server's answer never came, or was not what a lease document holds.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("MongoDB: {0}")]
    Mongo(#[from] mongodb::error::Error),
    #[error("the server said no time (hello without localTime)")]
    NoServerTime,
    #[error("the server did not answer within {} s", .0.as_secs())]
    TimedOut(Duration),
}

impl LeaseError {
    /// Every failure is worth another try: the lease machine decides when.
    pub fn is_retryable(&self) -> bool {
        true
    }
}

impl LeaseStore {
    /// The server's time now.
    async fn server_now(&self) -> Result<DateTime<Utc>, LeaseError> {
        let admin = self.coll.client().database("admin");
        let hello = admin
            .run_command(doc! { "hello": 1, "maxTimeMS": limits::max_time_ms(limits::COMMAND) });
        let reply = limits::answer(limits::COMMAND, hello)
            .await
            .map_err(|_| LeaseError::TimedOut(limits::COMMAND))??;
        reply
            .get_datetime("localTime")
            .map(|t| t.to_chrono())
            .map_err(|_| LeaseError::NoServerTime)
    }

    fn expiry(&self, now: DateTime<Utc>) -> bson::DateTime {
        bson::DateTime::from_chrono(crate::window::later_by(now, self.length))
    }

    /// Takes the lease if it is free, expired by the server's clock, or held under this
    /// instance's name (a restarted process: a new epoch fences the one before).
    pub async fn acquire(&self) -> Result<Outcome, LeaseError> {
        let now = self.server_now().await?;
        let current = self.coll.find_one(doc! { "_id": &self.name }).await?;
        let Some(lease) = current else {
            let first = doc! { "_id": &self.name, "holder": &self.instance, "epoch": 1_i64,
            "expires_at": self.expiry(now) };
            return Ok(match self.coll.insert_one(first).await {
                Ok(_) => Outcome::Acquired { epoch: 1 },
                // Another instance created it first.
                Err(e) if is_duplicate(&e) => Outcome::Refused,
                Err(e) => return Err(e.into()),
            });
        };
        let holder = lease.get_str("holder").unwrap_or_default();
        let epoch = lease.get_i64("epoch").unwrap_or_default();
        let expired = lease
            .get_datetime("expires_at")
            .map_or(true, |t| t.to_chrono() <= now);
        if holder != self.instance && !expired {
            return Ok(Outcome::Refused);
        }
        let next = epoch.saturating_add(1);
        let taken = self
            .coll
            .update_one(
                doc! { "_id": &self.name, "holder": holder, "epoch": epoch },
                doc! { "$set": { "holder": &self.instance, "epoch": next,
                "expires_at": self.expiry(now) } },
            )
            .await?;
        Ok(if taken.matched_count == 1 {
            Outcome::Acquired {
                epoch: u64::try_from(next).unwrap_or_default(),
            }
        } else {
            Outcome::Refused
        })
    }

    /// Renews the lease held under `epoch`; refused when another holds it or the epoch moved.
    pub async fn renew(&self, epoch: u64) -> Result<Outcome, LeaseError> {
        let now = self.server_now().await?;
        let renewed = self
            .coll
            .update_one(
                doc! { "_id": &self.name, "holder": &self.instance,
                "epoch": i64::try_from(epoch).unwrap_or(i64::MAX) },
                doc! { "$set": { "expires_at": self.expiry(now) } },
            )
            .await?;
        Ok(if renewed.matched_count == 1 {
            Outcome::Renewed
        } else {
            Outcome::Refused
        })
    }

    /// Hands the lease back (a clean shutdown): it expires now, and the next taker bumps the
    /// epoch.
    pub async fn release(&self, epoch: u64) -> Result<(), LeaseError> {
        self.coll
            .update_one(
                doc! { "_id": &self.name, "holder": &self.instance,
                "epoch": i64::try_from(epoch).unwrap_or(i64::MAX) },
                doc! { "$set": { "expires_at": bson::DateTime::from_millis(0) } },
            )
            .await?;
        Ok(())
    }
}

fn is_duplicate(e: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    matches!(&*e.kind, ErrorKind::Write(WriteFailure::WriteError(w)) if w.code == 11000)
}
