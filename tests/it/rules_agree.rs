//! One rule set, two implementations: random documents go into the real server; the change
//! stream folded by the Rust rules must equal the `$facet` pipeline's result, to the kobo.

use crate::common::TestDb;
use bson::{doc, Bson, Document, RawDocumentBuf};
use chrono::{TimeZone, Utc};
use futures::StreamExt;
use mongodb::options::FullDocumentType;
use power_revenue::config::{Config, Settings};
use power_revenue::source::stream_pipeline;
use power_revenue::window::Totals;
use power_revenue::{reconcile, rules};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as PtConfig, TestRunner};

fn amount() -> impl Strategy<Value = Bson> {
    let money = (0u64..5_000_000, 0u32..100).prop_map(|(n, k)| format!("{n}.{k:02}"));
    let grouped =
        (1u64..999, 0u64..999, 0u32..100).prop_map(|(a, b, k)| format!("{a},{b:03}.{k:02}"));
    prop_oneof![
        money.clone().prop_map(Bson::String),
        grouped.clone().prop_map(|s| Bson::String(format!("₦{s}"))),
        grouped.prop_map(|s| Bson::String(format!("  NGN {s} "))),
        (0u64..10_000_000).prop_map(|n| Bson::String(format!("{n}"))),
        // Many fraction digits: kobo rounding, ties to even.
        (0u64..1000, 0u64..100_000_000).prop_map(|(n, f)| Bson::String(format!("{n}.{f:08}"))),
        (0u32..1000).prop_map(|n| Bson::String(format!("{n}.125"))),
        any::<i32>().prop_map(Bson::Int32),
        (-1_000i64..2_000_000_000_000).prop_map(Bson::Int64),
        (-10.0f64..1e7).prop_map(Bson::Double),
        any::<f64>().prop_map(Bson::Double),
        (0.0f64..1000.0).prop_map(|x| Bson::Double((x * 1000.0).round() / 1000.0)),
        money.prop_map(|s| Bson::Decimal128(s.parse().unwrap())),
        (any::<u32>(), -40i32..20)
            .prop_map(|(c, e)| Bson::Decimal128(format!("{c}E{e}").parse().unwrap())),
        prop::sample::select(vec![
            "abc",
            "1,2,3",
            "--5",
            "-5",
            "",
            " ",
            "1e3",
            "NaN",
            "inf",
            "-0",
            "0",
            "1_000",
            ".5",
            "5.",
            "12,34.5",
            "₦",
            "NGN",
            "1500.123456789012345678901",
            "99999999999999999999999999999999999999",
            "1000000000000",
            "1000000000000.01",
            "0.005",
            "0.015",
            "１２",
        ])
        .prop_map(|s| Bson::String(s.to_owned())),
        prop::sample::select(vec![
            "NaN",
            "Infinity",
            "-Infinity",
            "-0",
            "1E-6000",
            "1E+6000",
            "0.0050000000000000000000000000000001"
        ])
        .prop_map(|s| Bson::Decimal128(s.parse().unwrap())),
        Just(Bson::Double(f64::NAN)),
        Just(Bson::Double(f64::INFINITY)),
        Just(Bson::Null),
        Just(Bson::Boolean(true)),
        Just(Bson::Document(doc! { "value": 5 })),
        Just(Bson::Array(vec![Bson::Int32(5)])),
    ]
}

fn utility() -> impl Strategy<Value = Option<Bson>> {
    prop_oneof![
        prop::sample::select(vec![
            "IKEDC", "ikedc", " EKEDC\t", "aedc\n", "", "   ", "Ibedc", "ikédc", "PHED "
        ])
        .prop_map(|s| Some(Bson::String(s.to_owned()))),
        Just(None),
        Just(Some(Bson::Int32(7))),
        Just(Some(Bson::Null)),
    ]
}

fn sale_doc() -> impl Strategy<Value = Document> {
    (
        amount(),
        utility(),
        prop::bool::weighted(0.9),
        0i64..3_600_000,
    )
        .prop_map(|(amount, utility, date, offset_ms)| {
            let at = Utc.with_ymd_and_hms(2025, 5, 29, 12, 0, 0).unwrap()
                + chrono::TimeDelta::milliseconds(offset_ms);
            let mut d = doc! { "status": "fulfilled", "amount": amount };
            d.insert(
                "createdAt",
                if date {
                    Bson::DateTime(bson::DateTime::from_chrono(at))
                } else {
                    Bson::String(at.to_rfc3339())
                },
            );
            if let Some(u) = utility {
                d.insert("utility", u);
            }
            d
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn stream_fold_equals_facet() {
    let config = Config::from_settings(Settings {
        window: Some("1h".into()),
        ..Default::default()
    })
    .unwrap();
    let window = config
        .window
        .window_of(Utc.with_ymd_and_hms(2025, 5, 29, 12, 30, 0).unwrap());
    let cases: Vec<Vec<Document>> = {
        let mut runner = TestRunner::new(PtConfig {
            cases: 64,
            ..PtConfig::default()
        });
        (0..64)
            .map(|_| {
                prop::collection::vec(sale_doc(), 1..60)
                    .new_tree(&mut runner)
                    .unwrap()
                    .current()
            })
            .collect()
    };
    let (mut counted, mut skipped) = (0u64, 0u64);
    for (i, docs) in cases.into_iter().enumerate() {
        let db = TestDb::new("agree").await;
        let mut stream = db
            .coll
            .watch()
            .pipeline(stream_pipeline(&config.fields, &config.fulfilled_status))
            .full_document(FullDocumentType::UpdateLookup)
            .await
            .unwrap()
            .with_type::<RawDocumentBuf>();
        db.coll.insert_many(docs.clone()).await.unwrap();

        let mut streamed = Totals::default();
        for _ in 0..docs.len() {
            let event = stream
                .next()
                .await
                .expect("one event per fulfilled insert")
                .unwrap();
            let full = event.get_document("fullDocument").unwrap();
            match rules::classify(full, &config.fields) {
                Ok(sale) if window.contains(sale.at()) => {
                    streamed.add(&sale.utility, sale.amount).unwrap()
                }
                Ok(_) => {}
                Err(_) => skipped += 1,
            }
        }
        let database = reconcile::query(&db.coll, &config, &window).await.unwrap();
        assert_eq!(
            streamed, database,
            "case {i} disagrees; documents: {docs:#?}"
        );
        counted += database.total().count;
        db.client.database(&db.name).drop().await.unwrap();
    }
    // Guard against a vacuous pass: both outcomes must have been exercised.
    assert!(
        counted > 100 && skipped > 50,
        "counted {counted}, skipped {skipped}"
    );
}

// Shrinkable, server-free check of the client parser alone: never panics, and every accepted
// amount is a non-negative kobo value within the bound.
proptest! {
    #[test]
    fn parser_is_total_and_bounded(value in amount()) {
        let raw = RawDocumentBuf::from_document(&doc! { "a": value }).unwrap();
        if let Ok(d) = rules::parse_amount(raw.get("a").unwrap()) {
            prop_assert!(d >= rust_decimal::Decimal::ZERO && d <= power_revenue::money::MAX_AMOUNT);
            prop_assert!(d.scale() <= 2);
        }
    }

    #[test]
    fn any_string_never_panics(s in ".{0,64}") {
        let _ = rules::parse_amount_str(&s);
    }
}
