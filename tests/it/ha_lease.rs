//! The lease of an active/standby pair against a real server: one holder at a time, taken
//! over only once expired by the server's clock, with an epoch that grows on every take-over
//! so that a stale holder can renew nothing; handed back on a clean shutdown.

use crate::common::{wait_for, TestDb};
use bson::Document;
use power_revenue::ha::lease::Outcome;
use power_revenue::ha::store::LeaseStore;
use std::time::Duration;

fn instance(db: &TestDb, name: &str) -> LeaseStore {
    LeaseStore {
        coll: db
            .client
            .database(&db.name)
            .collection::<Document>("power_revenue_leases"),
        name: "power-revenue".into(),
        instance: name.into(),
        length: Duration::from_secs(2),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_holder_at_a_time_and_a_stale_epoch_renews_nothing() {
    let db = TestDb::new("ha_lease").await;
    let (a, b) = (instance(&db, "a"), instance(&db, "b"));
    assert_eq!(a.acquire().await.unwrap(), Outcome::Acquired { epoch: 1 });
    assert_eq!(b.acquire().await.unwrap(), Outcome::Refused);
    assert_eq!(a.renew(1).await.unwrap(), Outcome::Renewed);
    // `a` stops renewing (paused, cut off): once expired by the server's clock, `b` takes it
    // under a new epoch.
    let epoch = wait_for(Duration::from_secs(10), "b to take over", async || match b
        .acquire()
        .await
        .ok()?
    {
        Outcome::Acquired { epoch } => Some(epoch),
        _ => None,
    })
    .await;
    assert_eq!(epoch, 2);
    // The zombie wakes up: its renewals and a take-over attempt are refused.
    assert_eq!(a.renew(1).await.unwrap(), Outcome::Refused);
    assert_eq!(a.acquire().await.unwrap(), Outcome::Refused);
    // A restarted `b` (same name, new process) takes a new epoch: the old one is fenced.
    assert_eq!(b.acquire().await.unwrap(), Outcome::Acquired { epoch: 3 });
    assert_eq!(b.renew(2).await.unwrap(), Outcome::Refused);
    // A clean shutdown hands it back: `a` takes it at once.
    b.release(3).await.unwrap();
    assert_eq!(a.acquire().await.unwrap(), Outcome::Acquired { epoch: 4 });
}
