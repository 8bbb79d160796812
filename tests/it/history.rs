//! The closed windows' history through the real binary against the real server: the range
//! API with its paging, its CSV against the database's own sums after a refund and a
//! back-dated sale, and the dashboard's 7-day chart in headless Chromium against the API
//! (with screenshots at laptop and phone sizes).

use crate::common::browser::Browser;
use crate::common::service::Service;
use crate::common::slack::FakeSlack;
use crate::common::{report_of, spec, upcoming, wait_for, TestDb};
use bson::{doc, Document};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use futures::TryStreamExt;
use power_revenue::window::Window;
use rust_decimal::Decimal;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

const TOKEN: &str = "history-token-for-tests";

fn sale(id: i32, at: DateTime<Utc>, utility: &str, naira: i64) -> Document {
    doc! { "_id": id, "createdAt": bson::DateTime::from_chrono(at), "utility": utility,
    "amount": naira, "status": "fulfilled" }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// (window start, utility) → (revenue, count).
pub(crate) type Rows = BTreeMap<(String, String), (Decimal, u64)>;

/// The database's figures per window and utility now, from its own aggregation (the tests
/// use whole-naira integer amounts and upper-case names, so no rule of the service applies).
pub(crate) async fn database_rows(db: &TestDb, windows: &[Window]) -> Rows {
    let mut rows = Rows::new();
    for w in windows {
        let pipeline = [
            doc! { "$match": { "status": "fulfilled", "createdAt": {
            "$gte": bson::DateTime::from_chrono(w.start), "$lt": bson::DateTime::from_chrono(w.end) } } },
            doc! { "$group": { "_id": "$utility", "revenue": { "$sum": "$amount" }, "count": { "$sum": 1 } } },
        ];
        let groups: Vec<Document> = db
            .coll
            .aggregate(pipeline)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        for g in groups {
            let number = |k: &str| {
                g.get_i64(k)
                    .or_else(|_| g.get_i32(k).map(i64::from))
                    .unwrap()
            };
            rows.insert(
                (rfc3339(w.start), g.get_str("_id").unwrap().to_owned()),
                (Decimal::from(number("revenue")), number("count") as u64),
            );
        }
    }
    rows
}

async fn get(svc: &Service, path: &str, accept: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .get(format!("{}{path}", svc.http()))
        .bearer_auth(TOKEN);
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    req.send().await.unwrap()
}

fn csv_rows(body: &str) -> Rows {
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    assert_eq!(
        reader.headers().unwrap(),
        vec!["start", "end", "utility", "revenue", "count"]
    );
    let mut rows = Rows::new();
    for record in reader.records() {
        let r = record.unwrap();
        // A leading `'` marks a name a spreadsheet would run as a formula.
        let name = r[2].strip_prefix('\'').unwrap_or(&r[2]).to_owned();
        let fresh = rows.insert(
            (r[0].to_owned(), name),
            (r[3].parse().unwrap(), r[4].parse().unwrap()),
        );
        assert!(fresh.is_none(), "one row per window and utility: {body}");
    }
    rows
}

fn json_rows(items: &Value) -> Rows {
    let mut rows = Rows::new();
    for w in items.as_array().unwrap() {
        let start: DateTime<Utc> = w["start"].as_str().unwrap().parse().unwrap();
        for u in w["totals"]["by_utility"].as_array().unwrap() {
            rows.insert(
                (rfc3339(start), u["utility"].as_str().unwrap().to_owned()),
                (
                    u["revenue"].as_str().unwrap().parse().unwrap(),
                    u["count"].as_u64().unwrap(),
                ),
            );
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_rows_sum_to_the_database_after_a_refund_and_a_back_dated_sale() {
    let db = TestDb::new("history_csv").await;
    let slack = FakeSlack::start().await;
    let svc = Service::start(
        &db.name,
        Some(&slack.url),
        &[("POWER_REVENUE_API_TOKEN", TOKEN)],
    );
    svc.wait_connected().await;
    let first = upcoming(5, 1);
    let second = spec(5).next(&first);
    let at = |w: &Window, ms: i64| w.start + TimeDelta::milliseconds(ms);
    db.coll
        .insert_many([
            sale(1, at(&first, 100), "IKEDC", 1_000),
            sale(2, at(&first, 200), "EKEDC", 2_500),
            sale(3, at(&first, 300), "=1+2", 700),
            sale(4, at(&first, 400), "IKEDC", 300),
            sale(5, at(&second, 100), "AEDC", 400),
            sale(6, at(&second, 200), "IKEDC", 600),
        ])
        .await
        .unwrap();
    report_of(&slack, &first, 30).await;
    report_of(&slack, &second, 30).await;

    // After both reports: a refund and a sale back-dated into the first window.
    db.coll
        .update_one(doc! { "_id": 1 }, doc! { "$set": { "status": "refunded" } })
        .await
        .unwrap();
    db.coll
        .insert_one(sale(7, at(&first, 500), "EKEDC", 50))
        .await
        .unwrap();
    let range = format!(
        "/api/v1/windows?from={}&to={}",
        rfc3339(first.start),
        rfc3339(second.end)
    );
    let items = wait_for(
        Duration::from_secs(60),
        "the corrections in the history",
        async || {
            let items: Value = get(&svc, &range, None).await.json().await.ok()?;
            (items[0]["totals"]["revenue"] == "3550.00").then_some(items)
        },
    )
    .await;
    assert_eq!(items[0]["totals_from"], "rechecked", "{items}");
    assert_eq!(items[0]["reconciled"]["revenue"], "4500.00", "{items}");
    let starts: Vec<_> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            w["start"]
                .as_str()
                .unwrap()
                .parse::<DateTime<Utc>>()
                .unwrap()
        })
        .collect();
    assert_eq!(starts, [first.start, second.start], "oldest first: {items}");

    let resp = get(&svc, &range, Some("text/csv")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(resp.headers()["vary"], "Accept");
    // From when the service holds windows: its first closed window (it started mid-way, or
    // before `first`), never later than `first`.
    let data_from: DateTime<Utc> = resp.headers()["data-from"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(data_from <= first.start, "{data_from}");
    let body = resp.text().await.unwrap();
    eprintln!("{body}");
    assert!(body.contains(",'=1+2,700.00,1\n"), "no formula: {body}");
    let csv = csv_rows(&body);
    let database = database_rows(&db, &[first, second]).await;
    assert_eq!(
        csv, database,
        "CSV rows = the database's, per window and utility"
    );
    assert_eq!(json_rows(&items), database);
    let sum = |rows: &Rows| {
        rows.values()
            .fold((Decimal::ZERO, 0), |(r, n), (rev, c)| (r + rev, n + c))
    };
    assert_eq!(sum(&csv), (Decimal::from(4_550), 6));

    // One window per page, the next named by `Link`; the pages make up the whole.
    let mut paged = vec![];
    let mut next = Some(format!("{range}&limit=1"));
    while let Some(path) = next.take() {
        let resp = get(&svc, &path, None).await;
        next = resp
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().to_owned())
            .map(|l| {
                let url = l
                    .strip_prefix('<')
                    .unwrap()
                    .split_once(">; rel=\"next\"")
                    .unwrap()
                    .0;
                url.to_owned()
            });
        let page: Value = resp.json().await.unwrap();
        assert_eq!(page.as_array().unwrap().len(), 1, "{path}: {page}");
        paged.extend(page.as_array().unwrap().iter().cloned());
        assert!(paged.len() <= 2, "{paged:?}");
    }
    assert_eq!(json_rows(&Value::Array(paged)), database);

    // `last` works as before; bad values are one plain line.
    let last: Value = get(&svc, "/api/v1/windows?last=50", None)
        .await
        .json()
        .await
        .unwrap();
    let newest_first: Vec<_> = last
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["start"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = newest_first.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(newest_first, sorted);
    for (query, says) in [
        ("from=yesterday", "from must be an RFC 3339 time"),
        ("to=2025-05-29", "to must be an RFC 3339 time"),
        ("limit=0", "limit must be a number from 1 to 1000"),
        (
            "last=3&from=2025-05-29T00:00:00Z",
            "last cannot be combined",
        ),
        (
            "from=2025-05-29T00:00:00Z&to=2025-05-28T00:00:00Z",
            "to must be later than from",
        ),
    ] {
        let resp = get(&svc, &format!("/api/v1/windows?{query}"), Some("text/csv")).await;
        assert_eq!(resp.status(), 400, "{query}");
        let text = resp.text().await.unwrap();
        assert!(
            text.starts_with(says) && text.lines().count() == 1,
            "{query}: {text}"
        );
    }
}

/// What the chart draws: (window start, utility) → revenue, from the bars' `data-*`.
const CHART_ROWS: &str = "return [...document.querySelectorAll('#chart rect[data-utility]')]
    .map((r) => [r.dataset.start, r.dataset.utility, r.dataset.revenue, r.dataset.open || ''])";

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_chart_matches_the_api_on_a_laptop_and_a_phone() {
    let db = TestDb::new("history_chart").await;
    let slack = FakeSlack::start().await;
    let svc = Service::start(
        &db.name,
        Some(&slack.url),
        &[("POWER_REVENUE_API_TOKEN", TOKEN)],
    );
    svc.wait_connected().await;
    let mut windows = vec![upcoming(5, 1)];
    while windows.len() < 3 {
        windows.push(spec(5).next(windows.last().unwrap()));
    }
    let utilities = ["IKEDC", "EKEDC", "AEDC", "<B>X</B>"];
    let docs: Vec<Document> = windows
        .iter()
        .enumerate()
        .flat_map(|(i, w)| {
            utilities.iter().enumerate().map(move |(j, u)| {
                let id = (10 * i + j) as i32;
                sale(
                    id,
                    w.start + TimeDelta::milliseconds(100 * (j as i64 + 1)),
                    u,
                    1_000 * (i as i64 + 1) + 250 * j as i64,
                )
            })
        })
        .collect();
    db.coll.insert_many(docs).await.unwrap();
    for w in &windows {
        report_of(&slack, w, 30).await;
    }

    let browser = Browser::start(1366, 768).await;
    // The silence contract's field, as `/api/v1/windows/current` will carry it: the page
    // marks the utilities listed there (and works without the field, as now).
    browser
        .goto(&format!("{}/?token={TOKEN}", svc.http()))
        .await;
    let range = format!(
        "/api/v1/windows?from={}&to={}",
        rfc3339(windows[0].start),
        rfc3339(windows[2].end)
    );
    let api: Value = get(&svc, &range, None).await.json().await.unwrap();
    let mut want = BTreeMap::new();
    for w in api.as_array().unwrap() {
        for u in w["totals"]["by_utility"].as_array().unwrap() {
            want.insert(
                (
                    w["start"].as_str().unwrap().to_owned(),
                    u["utility"].as_str().unwrap().to_owned(),
                ),
                u["revenue"].as_str().unwrap().to_owned(),
            );
        }
    }
    assert_eq!(want.len(), 12, "{api}");
    let drawn = wait_for(
        Duration::from_secs(30),
        "the windows on the chart",
        async || {
            let rows = browser.eval(CHART_ROWS).await;
            let drawn: BTreeMap<(String, String), String> = rows
                .as_array()?
                .iter()
                .filter(|r| r[3] == "")
                .map(|r| {
                    (
                        (
                            r[0].as_str().unwrap().to_owned(),
                            r[1].as_str().unwrap().to_owned(),
                        ),
                        r[2].as_str().unwrap().to_owned(),
                    )
                })
                .filter(|(k, _)| want.contains_key(k))
                .collect();
            (drawn.len() == want.len()).then_some(drawn)
        },
    )
    .await;
    assert_eq!(drawn, want, "each bar segment is the API's figure");
    let today = browser
        .eval("const p = document.getElementById('today'); return [p.textContent, p.dataset.today]")
        .await;
    assert!(
        today[0].as_str().unwrap().contains("today so far"),
        "{today}"
    );
    assert!(
        today[1].as_str().unwrap().parse::<Decimal>().is_ok(),
        "{today}"
    );
    // Names are text: the markup-like name is a legend entry's text, never an element.
    let legend = browser
        .eval("return [...document.querySelectorAll('#legend li')].map((li) => li.textContent).join('|')")
        .await;
    assert!(legend.as_str().unwrap().contains("<B>X</B>"), "{legend}");
    assert_eq!(
        browser
            .eval("return document.querySelectorAll('#chart b, #legend b').length")
            .await,
        0
    );

    // A utility the silence detector lists is marked in the legend and on its bars.
    browser
        .eval(
            "const real = window.fetch; window.fetch = async (url, opts) => {
               const r = await real(url, opts);
               if (!String(url).startsWith('/api/v1/windows/current')) return r;
               const cur = await r.json();
               cur.silent = [{ utility: 'AEDC', display: 'AEDC', silent_since: cur.now, silent_for_secs: 7200, usual_sales: 3 }];
               return new Response(JSON.stringify(cur), { status: r.status });
             }; return true",
        )
        .await;
    let marked = wait_for(Duration::from_secs(10), "the silent utility marked", async || {
        let t = browser
            .eval("const li = document.querySelector('#legend li[data-silent=true]'); return li && [li.dataset.utility, li.textContent, document.querySelectorAll('#chart rect[data-silent=true]').length]")
            .await;
        t.is_array().then_some(t)
    })
    .await;
    assert_eq!(marked[0], "AEDC", "{marked}");
    assert!(
        marked[1].as_str().unwrap().contains("silent 2 h"),
        "{marked}"
    );
    assert!(marked[2].as_u64().unwrap() >= 3, "{marked}");

    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let laptop = dir.join("history-laptop.png");
    browser
        .eval("document.getElementById('chart').scrollIntoView(); return true")
        .await;
    std::fs::write(&laptop, browser.screenshot().await).unwrap();
    browser.resize(390, 844).await;
    // Redrawn at the phone's width: one SVG unit is one CSS pixel, so its 11 px labels stay
    // 11 px, and nothing scrolls sideways.
    let fit = wait_for(Duration::from_secs(10), "the chart redrawn for the phone", async || {
        let v = browser
            .eval("const s = document.getElementById('chart-svg'); const r = s.getBoundingClientRect();
                   return [r.width, s.viewBox.baseVal.width, window.innerWidth, document.documentElement.scrollWidth,
                           parseFloat(getComputedStyle(s.querySelector('text')).fontSize)]")
            .await;
        let n = |i: usize| v[i].as_f64().unwrap_or(f64::MAX);
        (n(0) <= n(2) && (n(0) - n(1)).abs() < 2.0).then_some(v)
    })
    .await;
    assert!(
        fit[3].as_f64().unwrap() <= fit[2].as_f64().unwrap(),
        "{fit}"
    );
    assert!(fit[4].as_f64().unwrap() >= 11.0, "{fit}");
    browser
        .eval("document.getElementById('chart').scrollIntoView(); return true")
        .await;
    let phone = dir.join("history-phone.png");
    std::fs::write(&phone, browser.screenshot().await).unwrap();
    eprintln!("screenshots: {} {}", laptop.display(), phone.display());
}
