//! Fold benchmark: raw change events, as the server sends them after our `$project`, folded
//! into window totals on one thread; plus the cost of one checkpoint write (token + totals).
//!
//! `cargo bench --bench fold`. Events per second are criterion's "thrpt" line.

use bson::{doc, oid::ObjectId, rawdoc, Bson, Decimal128, RawDocumentBuf, Timestamp};
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mongodb::change_stream::event::ResumeToken;
use power_revenue::config::Fields;
use power_revenue::source::{Event, Fold, Folded, Live};
use power_revenue::store::{Checkpoint, Store};
use power_revenue::window::{OpenWindow, WindowSpec};
use rand::{rngs::StdRng, Rng, SeedableRng};

const UTILITIES: [&str; 10] = [
    "IKEDC", "EKEDC", "AEDC", "PHED", "IBEDC", "KEDCO", "JEDC", "EEDC", "BEDC", "KAEDCO",
];
const EVENTS: usize = 100_000;
/// Events per change-stream batch (the service's `batch_size`).
const BATCH: usize = 1_000;

fn fields() -> Fields {
    Fields {
        time: "createdAt".into(),
        amount: "amount".into(),
        utility: "utility".into(),
        status: "status".into(),
    }
}

fn window_start() -> DateTime<Utc> {
    // 06:00 in Lagos; 6 h windows.
    Utc.with_ymd_and_hms(2025, 5, 29, 5, 0, 0).unwrap()
}

/// The amount in one of the forms production data holds, in realistic proportions.
fn amount(rng: &mut StdRng) -> Bson {
    let kobo: i64 = rng.random_range(5_000..=5_000_000);
    let naira = kobo / 100;
    let text = format!("{naira}.{:02}", kobo % 100);
    match rng.random_range(0..100) {
        0..40 => Bson::String(text),
        40..50 => Bson::String(format!(
            "₦{},{:03}.{:02}",
            naira / 1000,
            naira % 1000,
            kobo % 100
        )),
        50..75 => Bson::Int32(naira as i32),
        75..85 => Bson::Double(kobo as f64 / 100.0),
        85..90 => Bson::Int64(naira),
        _ => Bson::Decimal128(text.parse::<Decimal128>().unwrap()),
    }
}

/// One insert event as the server sends it through `stream_pipeline`'s `$project`.
fn event(rng: &mut StdRng, i: usize) -> RawDocumentBuf {
    let at = window_start().timestamp_millis() + rng.random_range(0..6 * 3_600_000);
    let utility = UTILITIES[rng.random_range(0..UTILITIES.len())];
    // A few sales carry untidy utility names ("ikedc ").
    let utility = if i % 50 == 0 {
        format!("{} ", utility.to_lowercase())
    } else {
        utility.to_owned()
    };
    let token = format!("8268{:056X}", i);
    let d = doc! {
        "_id": { "_data": token },
        "operationType": "insert",
        "clusterTime": Timestamp { time: (at / 1000) as u32, increment: i as u32 },
        "fullDocument": {
            "createdAt": bson::DateTime::from_millis(at),
            "amount": amount(rng),
            "utility": utility,
            "status": "fulfilled",
        },
        "documentKey": { "_id": ObjectId::new() },
    };
    RawDocumentBuf::from_document(&d).unwrap()
}

fn events() -> Vec<RawDocumentBuf> {
    let mut rng = StdRng::seed_from_u64(7);
    (0..EVENTS).map(|i| event(&mut rng, i)).collect()
}

fn fold(c: &mut Criterion) {
    let events = events();
    let fields = fields();
    let spec = WindowSpec::new(6 * 3600, "Africa/Lagos".parse::<Tz>().unwrap()).unwrap();
    let start = window_start();
    let mut group = c.benchmark_group("fold");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("change_events_to_window_totals", |b| {
        b.iter_batched_ref(
            Live::default,
            |live| {
                let mut fold = Fold::new(fields.clone(), "fulfilled", spec, start);
                for e in &events {
                    let outcome = fold.apply(e, start, live);
                    debug_assert_eq!(outcome, Folded::Counted);
                }
            },
            BatchSize::LargeInput,
        )
    });
    // As the service sees them: one getMore reply (1,000 events) at a time, just copied out of
    // the socket buffer by the driver and so in cache, rather than 100 k events (~20 MB)
    // streamed from memory as above.
    group.throughput(Throughput::Elements(BATCH as u64));
    let next_batch = std::cell::Cell::new(0);
    group.bench_function("change_events_to_window_totals/per_batch_in_cache", |b| {
        b.iter_batched_ref(
            || {
                let i = next_batch.get();
                next_batch.set((i + BATCH) % EVENTS);
                (Live::default(), events[i..i + BATCH].to_vec())
            },
            |(live, batch)| {
                let mut fold = Fold::new(fields.clone(), "fulfilled", spec, start);
                for e in batch.iter() {
                    let outcome = fold.apply(e, start, live);
                    debug_assert_eq!(outcome, Folded::Counted);
                }
            },
            BatchSize::PerIteration,
        )
    });
    // What the tailer does with a getMore reply: walk its `nextBatch` in place, fold each
    // event, and read the position after the batch at its end.
    let replies: Vec<RawDocumentBuf> = events
        .chunks(BATCH)
        .map(|chunk| {
            let mut batch = bson::RawArrayBuf::new();
            for e in chunk {
                batch.push(e.clone());
            }
            let mut cursor = RawDocumentBuf::new();
            cursor.append("nextBatch", batch);
            cursor.append("postBatchResumeToken", rawdoc! { "_data": "8268FFFF" });
            cursor.append("id", 42i64);
            cursor.append("ns", "shop.power_transaction_items");
            rawdoc! { "cursor": cursor, "ok": 1.0 }
        })
        .collect();
    group.throughput(Throughput::Elements(BATCH as u64));
    let next_reply = std::cell::Cell::new(0);
    group.bench_function("server_reply_to_window_totals", |b| {
        b.iter_batched_ref(
            || {
                let i = next_reply.get();
                next_reply.set((i + 1) % replies.len());
                (Live::default(), &replies[i])
            },
            |(live, reply)| {
                let mut fold = Fold::new(fields.clone(), "fulfilled", spec, start);
                let cursor = reply.get_document("cursor").unwrap();
                let batch = cursor.get_array("nextBatch").unwrap().as_bytes();
                for e in power_revenue::raw::documents(batch) {
                    let outcome = fold.apply(e.unwrap(), start, live);
                    debug_assert_eq!(outcome, Folded::Counted);
                }
                cursor.get("postBatchResumeToken").unwrap()
            },
            BatchSize::PerIteration,
        )
    });
    group.throughput(Throughput::Elements(EVENTS as u64));
    // Where the time goes: reading the event (cluster time, the sale), then applying the rules.
    group.bench_function("stage/read_event", |b| {
        b.iter(|| {
            events
                .iter()
                .filter(|e| Event::read(e).parts.full.is_some())
                .count()
        })
    });
    // The same two fields through `bson`'s own lookups (what `Event::read` replaced).
    group.bench_function("stage/read_event_with_bson_get", |b| {
        b.iter(|| {
            events
                .iter()
                .filter(|e| {
                    e.get_timestamp("clusterTime").is_ok()
                        && matches!(e.get("fullDocument"), Ok(Some(_)))
                })
                .count()
        })
    });
    let docs: Vec<&bson::RawDocument> = events
        .iter()
        .map(|e| e.get_document("fullDocument").unwrap())
        .collect();
    let paths = power_revenue::rules::Paths::new(&fields);
    group.bench_function("stage/classify_sale", |b| {
        b.iter(|| {
            docs.iter()
                .filter(|d| power_revenue::rules::classify_at(d, &paths).is_ok())
                .count()
        })
    });
    group.finish();
}

fn checkpoint(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let spec = WindowSpec::new(6 * 3600, "Africa/Lagos".parse::<Tz>().unwrap()).unwrap();
    let w = spec.window_of(window_start());
    let mut open = OpenWindow::new(w, w.start);
    for (i, u) in UTILITIES.iter().enumerate() {
        for _ in 0..=i {
            open.totals.add(u, "1500.50".parse().unwrap()).unwrap();
        }
    }
    let token: ResumeToken =
        bson::from_bson(Bson::Document(doc! { "_data": format!("8268{:056X}", 42) })).unwrap();
    let cp = Checkpoint {
        token: Some(token),
        open: vec![
            open.clone(),
            OpenWindow::new(spec.next(&w), spec.next(&w).start),
        ],
        next_close: w,
        saved_at: window_start(),
    };
    let late = power_revenue::change::Marks::default();
    let mut activity = power_revenue::activity::Activity::default();
    activity.add(w.start.timestamp_millis(), "IKEDC", 40);
    c.bench_function("checkpoint/token_and_totals_flushed", |b| {
        b.iter(|| {
            rt.block_on(store.save_checkpoint(&cp, &[], &late, &activity))
                .unwrap()
        })
    });
}

criterion_group!(benches, fold, checkpoint);
criterion_main!(benches);
