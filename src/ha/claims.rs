//! Fenced delivery: before a post, the leader claims the message (its id) in the deliveries
//! collection, and after Slack's 2xx marks it sent, each in a transaction that also reads the
//! lease, so only while its epoch is still the lease's: an old leader that wakes up (paused,
//! partitioned) can claim or mark nothing. A claim carries what the message says, so every
//! instance can learn what the channel was told. A message claimed and never marked is claimed
//! again by the next leader and re-posted: the one duplicate, as after a crash after a 2xx.

use super::store::LeaseStore;
use bson::{doc, Document};
use mongodb::Collection;

/// How a claim went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Ours to post.
    Claimed,
    /// Claimed by an earlier leader and never marked sent: ours to post again (the post may
    /// have gone out: the documented duplicate).
    Reclaimed { by_epoch: i64 },
    /// Marked sent already: skip it.
    AlreadySent,
    /// Our epoch is not the lease's: step down, post nothing.
    Stale,
}

/// The deliveries of one service.
#[derive(Clone)]
pub struct Claims {
    pub deliveries: Collection<Document>,
    pub lease: LeaseStore,
}

impl Claims {
    /// Whether the lease is still ours under `epoch`, read in `session`'s transaction.
    async fn ours(
        &self,
        epoch: i64,
        session: &mut mongodb::ClientSession,
    ) -> mongodb::error::Result<bool> {
        let filter =
            doc! { "_id": &self.lease.name, "holder": &self.lease.instance, "epoch": epoch };
        Ok(self
            .lease
            .coll
            .find_one(filter)
            .session(&mut *session)
            .await?
            .is_some())
    }

    /// Claims message `id` under `epoch`, with `what` it says.
    pub async fn claim(
        &self,
        id: &str,
        epoch: u64,
        what: Document,
    ) -> mongodb::error::Result<Claim> {
        let epoch = i64::try_from(epoch).unwrap_or(i64::MAX);
        let mut session = self.deliveries.client().start_session().await?;
        session.start_transaction().await?;
        if !self.ours(epoch, &mut session).await? {
            session.abort_transaction().await?;
            return Ok(Claim::Stale);
        }
        let found = self
            .deliveries
            .find_one(doc! { "_id": id })
            .session(&mut session)
            .await?;
        let claim = match found {
            Some(d) if d.get_str("state") == Ok("sent") => Claim::AlreadySent,
            Some(d) => {
                let by_epoch = d.get_i64("epoch").unwrap_or_default();
                self.deliveries
                    .update_one(
                        doc! { "_id": id },
                        doc! { "$set": { "epoch": epoch, "holder": &self.lease.instance, "what": what } },
                    )
                    .session(&mut session)
                    .await?;
                Claim::Reclaimed { by_epoch }
            }
            None => {
                let claim = doc! { "_id": id, "state": "claimed", "epoch": epoch,
                "holder": &self.lease.instance, "what": what };
                self.deliveries
                    .insert_one(claim)
                    .session(&mut session)
                    .await?;
                Claim::Claimed
            }
        };
        if claim == Claim::AlreadySent {
            session.abort_transaction().await?;
        } else {
            session.commit_transaction().await?;
        }
        Ok(claim)
    }

    /// Marks message `id` sent under `epoch`; `false` when the epoch is no longer the lease's
    /// (or another leader claimed it since): nothing is written.
    pub async fn mark_sent(&self, id: &str, epoch: u64) -> mongodb::error::Result<bool> {
        let epoch = i64::try_from(epoch).unwrap_or(i64::MAX);
        let mut session = self.deliveries.client().start_session().await?;
        session.start_transaction().await?;
        if !self.ours(epoch, &mut session).await? {
            session.abort_transaction().await?;
            return Ok(false);
        }
        let marked = self
            .deliveries
            .update_one(
                doc! { "_id": id, "epoch": epoch },
                doc! { "$set": { "state": "sent" } },
            )
            .session(&mut session)
            .await?;
        session.commit_transaction().await?;
        Ok(marked.matched_count == 1)
    }
}
