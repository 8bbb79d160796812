//! Property-based fuzzing of the event decoder: any change event, however malformed (wrong
//! types, huge strings, deep nesting, missing or foreign fields), folds without a panic into
//! exactly one outcome, and only well-formed sales move the totals.

use bson::{doc, Bson, Document, RawDocumentBuf};
use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use power_revenue::config::Fields;
use power_revenue::rules::SkipReason;
use power_revenue::source::{Fold, Folded, Live};
use power_revenue::window::WindowSpec;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};

fn leaf() -> impl Strategy<Value = Bson> {
    prop_oneof![
        Just(Bson::Null),
        any::<bool>().prop_map(Bson::Boolean),
        any::<i32>().prop_map(Bson::Int32),
        any::<i64>().prop_map(Bson::Int64),
        any::<f64>().prop_map(Bson::Double),
        ".{0,40}".prop_map(Bson::String),
        "[0-9₦N, .eE+-]{0,30}".prop_map(Bson::String),
        (0usize..200_000).prop_map(|n| Bson::String("9".repeat(n))),
        any::<[u8; 16]>().prop_map(|b| Bson::Decimal128(bson::Decimal128::from_bytes(b))),
        any::<i64>().prop_map(|ms| Bson::DateTime(bson::DateTime::from_millis(ms))),
        (1_700_000_000_000i64..1_800_000_000_000)
            .prop_map(|ms| Bson::DateTime(bson::DateTime::from_millis(ms))),
        any::<(u32, u32)>()
            .prop_map(|(time, increment)| Bson::Timestamp(bson::Timestamp { time, increment })),
        prop::collection::vec(any::<u8>(), 0..32).prop_map(|bytes| Bson::Binary(bson::Binary {
            subtype: bson::spec::BinarySubtype::Generic,
            bytes
        })),
    ]
}

/// Values nested up to 8 levels deep in documents and arrays.
fn value() -> impl Strategy<Value = Bson> {
    leaf().prop_recursive(8, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Bson::Array),
            prop::collection::btree_map("[a-z]{1,3}|amount|utility|createdAt|status", inner, 0..6)
                .prop_map(|m| Bson::Document(m.into_iter().collect())),
        ]
    })
}

/// A full document: each known field absent, well-formed or anything at all.
fn full_document() -> impl Strategy<Value = Document> {
    let field = |good: BoxedStrategy<Bson>| {
        prop::option::weighted(0.9, prop_oneof![4 => good, 1 => value()])
    };
    (
        field(
            (1_700_000_000_000i64..1_800_000_000_000)
                .prop_map(|ms| Bson::DateTime(bson::DateTime::from_millis(ms)))
                .boxed(),
        ),
        field(
            prop_oneof![
                (0u64..10_000_000).prop_map(|n| Bson::String(format!("₦{n}.50"))),
                (0i64..1_000_000).prop_map(Bson::Int64),
            ]
            .boxed(),
        ),
        field("[ a-zA-Z]{0,8}".prop_map(Bson::String).boxed()),
        prop::collection::btree_map("[a-z]{1,6}", value(), 0..4),
        prop::option::weighted(
            0.95,
            prop_oneof![9 => Just(Bson::String("fulfilled".into())), 1 => value()],
        ),
    )
        .prop_map(|(time, amount, utility, extra, status)| {
            let mut d: Document = extra.into_iter().collect();
            for (k, v) in [
                ("createdAt", time),
                ("amount", amount),
                ("utility", utility),
                ("status", status),
            ] {
                if let Some(v) = v {
                    d.insert(k, v);
                }
            }
            d
        })
}

/// The event: a proper full document, or a wrong type, or none.
fn event() -> impl Strategy<Value = Document> {
    (
        prop_oneof![
            6 => full_document().prop_map(Bson::Document),
            1 => value(),
        ],
        prop::bool::weighted(0.9),
        value(),
    )
        .prop_map(|(full, present, id)| {
            let mut e = doc! { "operationType": "insert", "documentKey": { "_id": id } };
            if present {
                e.insert("fullDocument", full);
            }
            e
        })
}

#[test]
fn any_event_folds_into_exactly_one_outcome() {
    let fields = Fields {
        time: "createdAt".into(),
        amount: "amount".into(),
        utility: "utility".into(),
        status: "status".into(),
    };
    let spec = WindowSpec::new(6 * 3600, Tz::UTC).unwrap();
    let open_from = Utc.timestamp_millis_opt(1_750_000_000_000).unwrap();
    // Every generated date is within reach: none is skipped as dated too far ahead.
    let fold = Fold::new(fields, "fulfilled", spec, open_from)
        .with_max_future(std::time::Duration::from_secs(3650 * 86_400));
    let fold = std::cell::RefCell::new(fold);
    let seen = std::cell::RefCell::new([0u32; 4]);
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&event(), |e| {
            let live = Live::default();
            let raw = RawDocumentBuf::from_document(&e).unwrap();
            fold.borrow_mut().marks = Default::default();
            let outcome = fold.borrow_mut().apply(&raw, open_from, &live);
            let counted: u64 = live.windows.iter().map(|w| w.totals.total().count).sum();
            match outcome {
                Folded::Counted => {
                    prop_assert_eq!(counted, 1);
                    seen.borrow_mut()[0] += 1;
                }
                Folded::Late { delta, .. } => {
                    prop_assert_eq!(counted, 0);
                    prop_assert!(delta >= rust_decimal::Decimal::ZERO);
                    seen.borrow_mut()[1] += 1;
                }
                Folded::Skipped(reason) => {
                    prop_assert_eq!(counted, 0);
                    // A document the generator can make: never "gone" (an insert carries its
                    // document) and never an overflow (amounts are far below the bound).
                    prop_assert!(
                        !matches!(reason, SkipReason::NoDocument | SkipReason::TotalOverflow),
                        "unexpected reason {:?}",
                        reason
                    );
                    seen.borrow_mut()[2] += 1;
                }
                Folded::Ignored => {
                    // Not fulfilled, or no document: nothing counted anywhere.
                    prop_assert_eq!(counted, 0);
                    prop_assert!(fold.borrow().marks.is_empty());
                    seen.borrow_mut()[3] += 1;
                }
                Folded::ChangedSomewhere => {
                    prop_assert!(false, "an insert always knows its window");
                }
            }
            Ok(())
        })
        .unwrap();
    eprintln!(
        "decoder fuzz: counted/late/skipped/ignored = {:?}",
        seen.borrow()
    );
    // Not vacuous: every outcome was reached.
    let seen = seen.into_inner();
    assert!(
        seen.iter().all(|n| *n > 20),
        "counted/late/skipped/ignored: {seen:?}"
    );
}
