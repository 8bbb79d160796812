//! Reading figures: `/metrics` samples, percentiles, the server's cluster time.

use super::*;

pub(crate) async fn metrics(http: &reqwest::Client, base: &str) -> Option<String> {
    http.get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()
}

pub(crate) fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

pub(crate) async fn metric(http: &reqwest::Client, base: &str, name: &str) -> Option<f64> {
    sample(&metrics(http, base).await?, name)
}

/// Sales the service has taken in: counted in the live totals, or recorded as late.
pub(crate) async fn applied(http: &reqwest::Client, base: &str) -> Option<u64> {
    let text = metrics(http, base).await?;
    let counted = sample(&text, "power_revenue_events_applied_total")?;
    let late = sample(&text, "power_revenue_events_late_total").unwrap_or(0.0);
    Some((counted + late) as u64)
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub(crate) fn round(x: f64, places: i32) -> f64 {
    let m = 10f64.powi(places);
    (x * m).round() / m
}

pub(crate) async fn cluster_time(client: &Client) -> bson::Timestamp {
    let reply = client
        .database("admin")
        .run_command(doc! { "ping": 1 })
        .await
        .unwrap();
    reply
        .get_timestamp("operationTime")
        .or_else(|_| {
            reply
                .get_document("$clusterTime")
                .and_then(|c| c.get_timestamp("clusterTime"))
        })
        .unwrap()
}

pub(crate) fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}
