use super::{documents, find};
use bson::spec::BinarySubtype;
use bson::{
    Binary, Decimal128, JavaScriptCodeWithScope, RawBson, RawDocument, RawDocumentBuf, Regex,
    Timestamp,
};
use proptest::prelude::*;

const KEYS: [&str; 5] = ["amount", "createdAt", "utility", "fullDocument", "x"];

fn value() -> impl Strategy<Value = bson::Bson> {
    use bson::Bson;
    let leaf = prop_oneof![
        any::<f64>().prop_map(Bson::Double),
        ".{0,12}".prop_map(Bson::String),
        any::<i32>().prop_map(Bson::Int32),
        any::<i64>().prop_map(Bson::Int64),
        any::<i64>().prop_map(|ms| Bson::DateTime(bson::DateTime::from_millis(ms))),
        any::<[u8; 16]>().prop_map(|b| Bson::Decimal128(Decimal128::from_bytes(b))),
        (any::<u32>(), any::<u32>())
            .prop_map(|(time, increment)| Bson::Timestamp(Timestamp { time, increment })),
        Just(Bson::Null),
        Just(Bson::Undefined),
        Just(Bson::MinKey),
        Just(Bson::MaxKey),
        any::<bool>().prop_map(Bson::Boolean),
        any::<[u8; 12]>().prop_map(|b| Bson::ObjectId(bson::oid::ObjectId::from_bytes(b))),
        proptest::collection::vec(any::<u8>(), 0..6).prop_map(|bytes| Bson::Binary(Binary {
            subtype: BinarySubtype::Generic,
            bytes
        })),
        ("[a-z]{0,4}", "[imsx]{0,2}").prop_map(|(p, o)| Bson::RegularExpression(Regex {
            pattern: p,
            options: o
        })),
        "[a-z]{0,6}".prop_map(Bson::JavaScriptCode),
        "[a-z]{0,6}".prop_map(
            |code| Bson::JavaScriptCodeWithScope(JavaScriptCodeWithScope {
                code,
                scope: bson::doc! { "a": 1 },
            })
        ),
        "[a-z]{0,6}".prop_map(Bson::Symbol),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(bson::Bson::Array),
            proptest::collection::vec((proptest::sample::select(&KEYS[..]), inner), 0..4).prop_map(
                |kv| {
                    bson::Bson::Document(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                }
            ),
        ]
    })
}

/// A raw document with possibly repeated keys, from (key, value) pairs.
fn raw_doc() -> impl Strategy<Value = RawDocumentBuf> {
    proptest::collection::vec(
        (
            proptest::sample::select(
                &[
                    "a",
                    "amount",
                    "createdAt",
                    "utility",
                    "fullDocument",
                    "x",
                    "é",
                ][..],
            ),
            value(),
        ),
        0..8,
    )
    .prop_map(|pairs| {
        let mut doc = RawDocumentBuf::new();
        for (k, v) in pairs {
            doc.append(k, RawBson::try_from(v).expect("converts"));
        }
        doc
    })
}

fn by_bson<'a>(doc: &'a RawDocument) -> [Option<bson::RawBsonRef<'a>>; 5] {
    KEYS.map(|k| doc.get(k).ok().flatten())
}

/// Every element of the document (not its embedded ones) reads cleanly with `bson`.
fn valid_for_bson(doc: &RawDocument) -> bool {
    doc.iter().all(|e| e.is_ok())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn finds_what_bson_finds(doc in raw_doc()) {
        prop_assert_eq!(find(&doc, KEYS), by_bson(&doc));
    }

    /// Corrupted bytes never panic; while `bson` still reads the document, the answers agree.
    #[test]
    fn corrupted_documents_never_panic(doc in raw_doc(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut bytes = doc.into_bytes();
        let interior = bytes.len() - 5;
        if interior > 0 {
            for (i, b) in flips {
                bytes[4 + i.index(interior)] = b;
            }
        }
        if let Ok(doc) = RawDocument::from_bytes(&bytes) {
            let fast = find(doc, KEYS);
            if valid_for_bson(doc) {
                prop_assert_eq!(fast, by_bson(doc));
            }
        }
    }
}

/// `bson`'s reading of an array as documents: each element a document until the first that
/// is not (or cannot be read), which is reported as `None` and ends it.
fn documents_by_bson<'a, E>(
    elements: impl IntoIterator<Item = Result<bson::RawBsonRef<'a>, E>>,
) -> Vec<Option<&'a RawDocument>> {
    let mut out = Vec::new();
    for e in elements {
        let doc = e.ok().and_then(|v| v.as_document());
        out.push(doc);
        if doc.is_none() {
            break;
        }
    }
    out
}

fn array_of(docs: Vec<RawDocumentBuf>, extra: Option<bson::Bson>) -> bson::RawArrayBuf {
    let mut array = bson::RawArrayBuf::new();
    for d in docs {
        array.push(d);
    }
    if let Some(v) = extra {
        array.push(RawBson::try_from(v).expect("converts"));
    }
    array
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn walks_a_batch_as_bson_does(
        docs in proptest::collection::vec(raw_doc(), 0..6),
        extra in proptest::option::of(value()),
    ) {
        let array = array_of(docs, extra);
        let fast: Vec<_> = documents(array.as_bytes()).collect();
        prop_assert_eq!(fast, documents_by_bson(&*array));
    }

    /// Corrupted batches never panic, and agree with `bson` on what is still readable.
    #[test]
    fn corrupted_batches_never_panic(
        docs in proptest::collection::vec(raw_doc(), 1..4),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = array_of(docs, None).as_bytes().to_vec();
        let interior = bytes.len() - 5;
        for (i, b) in flips {
            bytes[4 + i.index(interior)] = b;
        }
        let fast: Vec<_> = documents(&bytes).collect();
        if let Ok(array) = bson::RawDocument::from_bytes(&bytes) {
            if array.iter().all(|e| e.is_ok()) {
                let elements = array.iter().map(|e| e.map(|(_, v)| v));
                prop_assert_eq!(fast, documents_by_bson(elements));
            }
        }
    }
}

#[test]
fn first_of_repeated_keys_and_missing_keys() {
    let mut doc = RawDocumentBuf::new();
    doc.append("amount", 1);
    doc.append("amount", 2);
    doc.append("utility", "IKEDC");
    let [amount, time, utility, full, x] = find(&doc, KEYS);
    assert_eq!(amount, Some(bson::RawBsonRef::Int32(1)));
    assert_eq!(utility, Some(bson::RawBsonRef::String("IKEDC")));
    assert_eq!((time, full, x), (None, None, None));
}

#[test]
fn a_truncated_element_ends_the_walk_but_keeps_what_was_found() {
    let mut doc = RawDocumentBuf::new();
    doc.append("amount", 7);
    doc.append("utility", "IKEDC");
    let mut bytes = doc.into_bytes();
    // Make the string's length run past the end.
    let at = bytes.len() - 1 - 6 - 4;
    bytes[at..at + 4].copy_from_slice(&100i32.to_le_bytes());
    let doc = RawDocument::from_bytes(&bytes).unwrap();
    let [amount, _, utility, _, _] = find(doc, KEYS);
    assert_eq!(amount, Some(bson::RawBsonRef::Int32(7)));
    assert_eq!(utility, None);
}
