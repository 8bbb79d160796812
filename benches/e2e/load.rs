//! The load: sales in the forms production sees, inserted as fast as the server takes them.

use super::*;

/// One sale: its document, and its value in kobo (computed here, independently of our rules).
pub(crate) fn sale(rng: &mut StdRng, at: DateTime<Utc>, n: u64) -> (Document, &'static str, i64) {
    let kobo: i64 = rng.random_range(5_000..=5_000_000);
    let naira = kobo / 100;
    let text = format!("{naira}.{:02}", kobo % 100);
    let (amount, kobo) = match rng.random_range(0..100) {
        0..40 => (Bson::String(text), kobo),
        40..50 => (
            Bson::String(format!(
                "₦{},{:03}.{:02}",
                naira / 1000,
                naira % 1000,
                kobo % 100
            )),
            kobo,
        ),
        50..75 => (Bson::Int32(naira as i32), naira * 100),
        75..85 => (Bson::Double(kobo as f64 / 100.0), kobo),
        85..90 => (Bson::Int64(naira), naira * 100),
        _ => (Bson::Decimal128(text.parse().unwrap()), kobo),
    };
    let utility = UTILITIES[rng.random_range(0..UTILITIES.len())];
    let doc = doc! {
        "reference": format!("PT-{n:010}"),
        "status": "fulfilled",
        "createdAt": bson::DateTime::from_chrono(at),
        "amount": amount,
        "utility": utility,
        "meter": format!("0101{:08}", rng.random_range(0..100_000_000u32)),
    };
    (doc, utility, kobo)
}

/// Inserts `total` sales as fast as the server takes them; records (ack time, acked so far)
/// after each batch for the lag curve, and the wall time at which each count was reached.
pub(crate) async fn insert(
    coll: &Collection<Document>,
    spec: WindowSpec,
    total: u64,
    seed: u64,
    late_percent: u32,
    acks: Arc<Mutex<Vec<(Instant, u64)>>>,
) -> Expected {
    let expected = Arc::new(Mutex::new(Expected::new()));
    // Late sales go only into windows the service reports (those from the first insert on).
    let first = spec.window_of(Utc::now()).start;
    // `E2E_RATE` caps the insert rate (sales/s, all inserters together); default: flat out.
    let rate = std::env::var("E2E_RATE")
        .ok()
        .and_then(|v| v.parse::<f64>().ok());
    let began = Instant::now();
    let per_task = total / INSERTERS as u64;
    let mut tasks = Vec::new();
    for t in 0..INSERTERS as u64 {
        let coll = coll.clone();
        let acks = acks.clone();
        let expected = expected.clone();
        let n = if t == INSERTERS as u64 - 1 {
            total - per_task * t
        } else {
            per_task
        };
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed * 100 + t);
            let mut done = 0;
            while done < n {
                let size = (n - done).min(BATCH as u64);
                let now = Utc::now();
                let mut docs = Vec::with_capacity(size as usize);
                let mut local = Expected::new();
                // Three windows back: closed and reported already.
                let w = spec.window_of(now);
                let back = now - (w.end - w.start) * 3;
                for i in 0..size {
                    let at = if back >= first && rng.random_range(0..100) < late_percent {
                        back
                    } else {
                        now
                    };
                    let (d, _, kobo) = sale(&mut rng, at, t * n + done + i);
                    let e = local.entry(spec.window_of(at).id()).or_default();
                    e.0 += kobo;
                    e.1 += 1;
                    docs.push(d);
                }
                coll.insert_many(docs).ordered(false).await.unwrap();
                done += size;
                if let Some(rate) = rate {
                    let due = Duration::from_secs_f64(done as f64 * INSERTERS as f64 / rate);
                    tokio::time::sleep(due.saturating_sub(began.elapsed())).await;
                }
                let mut all = expected.lock().unwrap();
                for (w, (k, c)) in local {
                    let e = all.entry(w).or_default();
                    e.0 += k;
                    e.1 += c;
                }
                let mut a = acks.lock().unwrap();
                let so_far = a.last().map_or(0, |x| x.1) + size;
                a.push((Instant::now(), so_far));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let e = expected.lock().unwrap().clone();
    e
}
