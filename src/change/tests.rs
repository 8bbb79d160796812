use super::*;
use crate::config::Fields;
use bson::{rawdoc, RawDocumentBuf};
use rust_decimal::Decimal;

const AT: i64 = 1_748_520_000_000;

fn judge(status: &str) -> Judge {
    Judge {
        paths: Paths::new(&Fields {
            time: "createdAt".into(),
            amount: "amount".into(),
            utility: "utility".into(),
            status: status.into(),
        }),
        fulfilled: "fulfilled".into(),
        latest_ms: AT + 86_400_000,
    }
}

fn sale_doc(status: &str, amount: i32) -> RawDocumentBuf {
    rawdoc! { "createdAt": bson::DateTime::from_millis(AT), "amount": amount, "utility": "ikedc",
    "status": status, "meta": { "status": status } }
}

fn parts<'a>(
    op: Op,
    full: Option<&'a RawDocumentBuf>,
    before: Option<&'a RawDocumentBuf>,
    update: Option<&'a RawDocumentBuf>,
) -> Parts<'a> {
    Parts {
        op,
        full: full.map(|d| d.as_ref()),
        before: before.map(|d| d.as_ref()),
        update: update.map(|d| d.as_ref()),
    }
}

fn amount(image: &Image<'_>) -> Option<Decimal> {
    match image {
        Image::Sale(s) => Some(s.amount),
        _ => None,
    }
}

#[test]
fn inserts_know_both_sides() {
    let doc = sale_doc("fulfilled", 1500);
    let Effect::Exact { before, after } =
        judge("status").effect(&parts(Op::Insert, Some(&doc), None, None))
    else {
        panic!("an insert is exact");
    };
    assert_eq!(before, Image::NotASale);
    assert_eq!(amount(&after), Some(Decimal::from(1500)));
    let pending = sale_doc("pending", 1500);
    let effect = judge("status").effect(&parts(Op::Insert, Some(&pending), None, None));
    assert!(matches!(
        effect,
        Effect::Exact {
            after: Image::NotASale,
            ..
        }
    ));
}

#[test]
fn pre_images_give_the_exact_after_side_whatever_the_lookup_says() {
    let pre = sale_doc("fulfilled", 1500);
    // The looked-up document is already newer than this update: it must not be used.
    let newer = sale_doc("fulfilled", 9999);
    let edit = rawdoc! { "updatedFields": { "amount": 2000 }, "removedFields": [] };
    let Effect::Exact { before, after } =
        judge("status").effect(&parts(Op::Update, Some(&newer), Some(&pre), Some(&edit)))
    else {
        panic!("exact with a pre-image");
    };
    assert_eq!(
        (amount(&before), amount(&after)),
        (Some(1500.into()), Some(2000.into()))
    );

    // A refund through the dotted key of a nested status field, and through its parent.
    let dotted = rawdoc! { "updatedFields": { "meta.status": "refunded" } };
    let parent = rawdoc! { "updatedFields": { "meta": { "status": "refunded" } } };
    for update in [&dotted, &parent] {
        let effect =
            judge("meta.status").effect(&parts(Op::Update, None, Some(&pre), Some(update)));
        assert!(
            matches!(
                effect,
                Effect::Exact {
                    before: Image::Sale(_),
                    after: Image::NotASale
                }
            ),
            "{effect:?}"
        );
    }
    // Removing the amount: the sale is skipped afterwards, not counted.
    let removed = rawdoc! { "updatedFields": {}, "removedFields": ["amount"] };
    let effect = judge("status").effect(&parts(Op::Update, None, Some(&pre), Some(&removed)));
    assert!(
        matches!(
            effect,
            Effect::Exact {
                after: Image::Skipped(_),
                ..
            }
        ),
        "{effect:?}"
    );
    // A change below one of our fields cannot be rebuilt from the event.
    let below = rawdoc! { "updatedFields": { "amount.value": 5 } };
    let effect = judge("status").effect(&parts(Op::Update, None, Some(&pre), Some(&below)));
    assert!(
        matches!(
            effect,
            Effect::Unknown {
                window: OldWindow::Any,
                ..
            }
        ),
        "{effect:?}"
    );
    let delete = judge("status").effect(&parts(Op::Delete, None, Some(&pre), None));
    assert!(matches!(
        delete,
        Effect::Exact {
            before: Image::Sale(_),
            after: Image::NotASale
        }
    ));
}

#[test]
fn without_pre_images_the_old_window_is_told_only_when_the_time_stayed() {
    let now = sale_doc("refunded", 1500);
    let refund = rawdoc! { "updatedFields": { "status": "refunded" } };
    let effect = judge("status").effect(&parts(Op::Update, Some(&now), None, Some(&refund)));
    assert_eq!(
        effect,
        Effect::Unknown {
            after: Image::NotASale,
            window: OldWindow::At(AT)
        }
    );
    let moved = rawdoc! { "updatedFields": { "createdAt": bson::DateTime::from_millis(AT) } };
    let effect = judge("status").effect(&parts(Op::Update, Some(&now), None, Some(&moved)));
    assert!(matches!(
        effect,
        Effect::Unknown {
            window: OldWindow::Any,
            ..
        }
    ));
    for op in [Op::Delete, Op::Replace] {
        let effect = judge("status").effect(&parts(op, None, None, None));
        assert!(matches!(
            effect,
            Effect::Unknown {
                window: OldWindow::Any,
                ..
            }
        ));
    }
    // Setting the fulfilled status (here through the dotted key) counts the sale as new.
    let fulfilled = sale_doc("fulfilled", 1500);
    let set = rawdoc! { "updatedFields": { "meta.status": "fulfilled" } };
    let effect =
        judge("meta.status").effect(&parts(Op::Update, Some(&fulfilled), None, Some(&set)));
    assert!(
        matches!(
            effect,
            Effect::Fulfilled {
                after: Image::Sale(_)
            }
        ),
        "{effect:?}"
    );
}

#[test]
fn odd_shapes_are_skipped_not_counted() {
    let j = judge("status");
    let array = rawdoc! { "createdAt": [bson::DateTime::from_millis(0), bson::DateTime::from_millis(AT)],
    "amount": 5, "status": "fulfilled" };
    assert_eq!(
        j.judge(rules::lookup4(&array, &j.paths)),
        Image::Skipped(SkipReason::TimeNotDate)
    );
    let far = rawdoc! { "createdAt": bson::DateTime::from_millis(AT + 2 * 86_400_000),
    "amount": 5, "status": "fulfilled" };
    assert_eq!(
        j.judge(rules::lookup4(&far, &j.paths)),
        Image::Skipped(SkipReason::TimeInFuture)
    );
    let extreme = rawdoc! { "createdAt": bson::DateTime::MAX, "amount": 5, "status": "fulfilled" };
    assert!(matches!(
        j.judge(rules::lookup4(&extreme, &j.paths)),
        Image::Skipped(_)
    ));
    let status_array = rawdoc! { "createdAt": bson::DateTime::from_millis(AT), "amount": 5,
    "status": ["fulfilled"] };
    assert_eq!(
        j.judge(rules::lookup4(&status_array, &j.paths)),
        Image::NotASale
    );
    assert_eq!(
        latest_ms(DateTime::<Utc>::MAX_UTC, std::time::Duration::MAX),
        i64::MAX
    );
}
