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

/// Fenced delivery: a message is claimed and marked sent only under the lease's epoch; the
/// next leader skips what is marked sent, claims again what was claimed and never marked (the
/// one duplicate), and the old leader can claim and mark nothing once it is stale.
#[tokio::test(flavor = "multi_thread")]
async fn claims_and_marks_only_under_the_current_epoch() {
    use bson::doc;
    use power_revenue::ha::claims::{Claim, Claims};
    let db = TestDb::new("ha_claims").await;
    let deliveries = db
        .client
        .database(&db.name)
        .collection::<Document>("power_revenue_deliveries");
    let claims = |lease: LeaseStore| Claims {
        deliveries: deliveries.clone(),
        lease,
    };
    let (a, b) = (claims(instance(&db, "a")), claims(instance(&db, "b")));
    assert_eq!(
        a.lease.acquire().await.unwrap(),
        Outcome::Acquired { epoch: 1 }
    );
    let figures = doc! { "window": "2025-05-29T12:00:00Z", "revenue": "1500.00" };
    assert_eq!(
        a.claim("report/1/1", 1, figures.clone()).await.unwrap(),
        Claim::Claimed
    );
    assert!(a.mark_sent("report/1/1", 1).await.unwrap());
    assert_eq!(
        a.claim("report/2/1", 1, figures.clone()).await.unwrap(),
        Claim::Claimed
    );
    // `b` is no leader: it claims nothing.
    assert_eq!(
        b.claim("report/3/1", 1, figures.clone()).await.unwrap(),
        Claim::Stale
    );
    // `a` is lost; `b` takes over under epoch 2.
    let epoch = wait_for(Duration::from_secs(10), "b to take over", async || match b
        .lease
        .acquire()
        .await
        .ok()?
    {
        Outcome::Acquired { epoch } => Some(epoch),
        _ => None,
    })
    .await;
    assert_eq!(
        b.claim("report/1/1", epoch, figures.clone()).await.unwrap(),
        Claim::AlreadySent
    );
    assert_eq!(
        b.claim("report/2/1", epoch, figures.clone()).await.unwrap(),
        Claim::Reclaimed { by_epoch: 1 }
    );
    // The old leader wakes up: nothing it claims or marks takes.
    assert_eq!(
        a.claim("report/4/1", 1, figures.clone()).await.unwrap(),
        Claim::Stale
    );
    assert!(!a.mark_sent("report/2/1", 1).await.unwrap());
    assert!(b.mark_sent("report/2/1", epoch).await.unwrap());
    let sent = deliveries
        .count_documents(doc! { "state": "sent" })
        .await
        .unwrap();
    assert_eq!(sent, 2);
}

/// Two instances' lease loops: exactly one leads; the leader lost without a word (its task
/// gone), the other leads once the lease expires; the lost one's own fence had run out.
#[tokio::test(flavor = "multi_thread")]
async fn one_of_two_lease_loops_leads_and_the_other_takes_over() {
    use power_revenue::ha::leader::{self, Fence};
    use tokio::sync::watch;
    use tokio_util::sync::CancellationToken;
    let db = TestDb::new("ha_loops").await;
    let start = |name: &str| {
        let mut store = instance(&db, name);
        store.length = Duration::from_secs(3);
        let (tx, rx) = watch::channel(None::<Fence>);
        let stop = CancellationToken::new();
        let task = tokio::spawn(leader::run(store, tx, stop.clone()));
        (rx, stop, task)
    };
    let (a, a_stop, a_task) = start("a");
    let (b, b_stop, b_task) = start("b");
    let leads = |rx: &watch::Receiver<Option<Fence>>| Fence::epoch_now(&rx.borrow());
    let first = wait_for(Duration::from_secs(10), "a leader", async || {
        match (leads(&a), leads(&b)) {
            (Some(_), Some(_)) => panic!("two leaders"),
            (Some(e), None) => Some(("a", e)),
            (None, Some(e)) => Some(("b", e)),
            (None, None) => None,
        }
    })
    .await;
    // The leader vanishes without handing the lease back (as a killed process would).
    let (gone, gone_task, other, other_stop, other_task) = if first.0 == "a" {
        (a, a_task, b, b_stop, b_task)
    } else {
        (b, b_task, a, a_stop, a_task)
    };
    gone_task.abort();
    let lost = std::time::Instant::now();
    let epoch = wait_for(Duration::from_secs(10), "the other to lead", async || {
        leads(&other)
    })
    .await;
    assert!(epoch > first.1, "a new epoch: {epoch} after {}", first.1);
    // The lease (3 s), a standby's try every third, and room for a busy test server.
    assert!(
        lost.elapsed() < Duration::from_secs(8),
        "took over in {:?}",
        lost.elapsed()
    );
    assert_eq!(leads(&gone), None, "the lost leader's own fence ran out");
    // A clean stop hands the lease back.
    other_stop.cancel();
    other_task.await.unwrap();
}
