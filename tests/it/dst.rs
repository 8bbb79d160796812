//! Daylight-saving days through the real binary: `report --window-start` in New York on the
//! 25-hour 2025-11-02, whose windows follow the wall clock (00:00 EDT, 06:00 EST, …).

use crate::common::service::report_dry_run;
use crate::common::{server_uri, TestDb};
use bson::doc;

#[tokio::test(flavor = "multi_thread")]
async fn report_names_and_times_new_york_fall_back_windows() {
    let db = TestDb::new("cli_dst").await;
    let at =
        |s: &str| bson::DateTime::from_chrono(chrono::DateTime::parse_from_rfc3339(s).unwrap());
    db.coll
        .insert_many([
            // Night, 00:00 EDT – 06:00 EST: both passes through 01:30.
            doc! { "createdAt": at("2025-11-02T05:30:00Z"), "utility": "IKEDC", "amount": 100, "status": "fulfilled" },
            doc! { "createdAt": at("2025-11-02T06:30:00Z"), "utility": "IKEDC", "amount": 200, "status": "fulfilled" },
            // Morning, 06:00 – 12:00 EST.
            doc! { "createdAt": at("2025-11-02T13:00:00Z"), "utility": "EKEDC", "amount": 7500, "status": "fulfilled" },
        ])
        .await
        .unwrap();
    let uri = server_uri();
    let env = [
        ("MONGODB_URI", uri.as_str()),
        ("POWER_REVENUE_DATABASE", db.name.as_str()),
        ("POWER_REVENUE_TIMEZONE", "America/New_York"),
    ];
    let report = |start: &str| {
        let (code, stdout, stderr) = report_dry_run(start, &env);
        assert_eq!(code, 0, "{start}: {stderr}");
        stdout
    };

    // 06:00 EST: refused as "not a window start" when windows were cut in elapsed hours.
    let morning = report("2025-11-02T11:00:00Z");
    assert!(
        morning.contains("📅 Period: Morning Period (6:00 AM – 12:00 PM)"),
        "{morning}"
    );
    assert!(
        morning.contains("🕐 Time: 06:00 – 12:00 EST on 2025-11-02"),
        "{morning}"
    );
    assert!(
        morning.contains("• EKEDC: ₦7,500.00 (1 transaction)"),
        "{morning}"
    );

    let night = report("2025-11-02T04:00:00Z");
    assert!(
        night.contains("📅 Period: Night Period (12:00 AM – 6:00 AM)"),
        "{night}"
    );
    assert!(
        night.contains("🕐 Time: 00:00 EDT – 06:00 EST on 2025-11-02"),
        "{night}"
    );
    assert!(
        night.contains("• IKEDC: ₦300.00 (2 transactions)"),
        "{night}"
    );

    // 05:00 EDT: the elapsed-hours rule's boundary, not a wall-clock one.
    let (code, _, stderr) = report_dry_run("2025-11-02T10:00:00Z", &env);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("not a window start") && stderr.contains("2025-11-02T04:00:00+00:00"),
        "{stderr}"
    );
}
