//! The phases beside the live run: the stream's ceiling, the `$facet`'s scaling, the Python peer.

use super::*;

/// How fast the server hands out the change stream to a consumer that does nothing but count:
/// the most any consumer could apply.
pub(crate) async fn stream_ceiling(
    coll: &Collection<Document>,
    config: &Config,
    start: bson::Timestamp,
    events: u64,
) -> f64 {
    use futures::TryStreamExt;
    let began = Instant::now();
    let mut stream = coll
        .watch()
        .pipeline(power_revenue::source::stream_pipeline(
            &config.fields,
            "fulfilled",
        ))
        .start_at_operation_time(start)
        .batch_size(1000)
        .await
        .unwrap()
        .with_type::<bson::RawDocumentBuf>();
    let mut n = 0;
    while n < events {
        stream.try_next().await.unwrap().expect("stream goes on");
        n += 1;
    }
    events as f64 / began.elapsed().as_secs_f64()
}

/// The window query over the first 10 k / 100 k / 1 M sales, with the index and without.
pub(crate) async fn facet_scaling(
    coll: &Collection<Document>,
    config: &Config,
    acks: &[(Instant, u64)],
    started: Instant,
) -> Value {
    // Sales were stamped with the wall clock at insert: a range from the first insert to the
    // moment the n-th was acknowledged holds about n sales.
    let t0 = Utc::now() - chrono::TimeDelta::from_std(started.elapsed()).unwrap();
    let t0 = t0 - chrono::TimeDelta::seconds(1);
    let mut rows = Vec::new();
    for indexed in [true, false] {
        if !indexed {
            coll.drop_index("power_revenue_status_time").await.unwrap();
        }
        // Larger windows cost proportionally more (see benches/README.md); 100 k keeps the run
        // short on servers whose aggregation is slow.
        for n in [10_000u64, 100_000] {
            let Some((at, _)) = acks.iter().find(|(_, c)| *c >= n) else {
                continue;
            };
            let end = Utc::now() - chrono::TimeDelta::from_std(at.elapsed()).unwrap();
            let w = Window { start: t0, end };
            let began = Instant::now();
            let reading = reconcile::query(coll, config, &w).await.unwrap();
            let secs = began.elapsed().as_secs_f64();
            let count = reading.total().count;
            eprintln!("e2e: $facet over {count} sales (index: {indexed}): {secs:.3} s");
            rows.push(json!({ "sales": count, "indexed": indexed, "secs": round(secs, 3) }));
        }
    }
    coll.create_index(reconcile::window_index(config))
        .await
        .unwrap();
    Value::Array(rows)
}

/// Runs benches/peers/consumer.py from a venv with pymongo (made once, cached).
pub(crate) fn python_peer(uri: &str, start: bson::Timestamp, events: u64) -> Value {
    let venv = devserver::venv_dir().with_file_name("bench-peer");
    let python = venv.join("bin/python");
    if !python.exists() {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .unwrap();
        assert!(ok.success());
        let ok = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "pymongo"])
            .status()
            .unwrap();
        assert!(ok.success(), "pip install pymongo failed");
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers/consumer.py");
    eprintln!("e2e: python peer replaying {events} sales…");
    let out = Command::new(python)
        .arg(script)
        .args([
            uri,
            DATABASE,
            &start.time.to_string(),
            &start.increment.to_string(),
        ])
        .arg(events.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or("null")).unwrap_or_else(|_| {
        json!({ "error": String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("").to_owned() })
    })
}
