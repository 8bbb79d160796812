//! Shared by the benchmarks: the database server they run against.

use bson::{doc, Document};
use chrono::{DateTime, Utc};
use power_revenue::devserver::DevServer;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process: `secantusd-rs` if installed, else the Python one.
pub enum Server {
    Rust(Child, u16),
    Python(DevServer),
}

impl Server {
    pub fn start(storage: &Path, oplog_max: u64) -> Server {
        let oplog_max = oplog_max.to_string();
        let retention = [
            "--oplog-max-entries",
            &oplog_max,
            "--oplog-retention-seconds",
            "86400",
        ];
        let cache = std::env::var("E2E_SERVER_CACHE").ok();
        let cache_flag = cache.iter().flat_map(|c| ["--cache-size", c.as_str()]);
        match find_rust_server() {
            Some(exe) => {
                let port = std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port();
                let child = Command::new(exe)
                    .args(["--port", &port.to_string(), "--log-level", "WARNING"])
                    .arg("--storage-path")
                    .arg(storage)
                    .args(retention)
                    .args(cache_flag)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                wait_until(Duration::from_secs(30), "secantusd-rs to listen", || {
                    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                });
                Server::Rust(child, port)
            }
            None => Server::Python(DevServer::start(Some(storage), &retention).unwrap()),
        }
    }

    pub fn uri(&self) -> String {
        match self {
            Server::Rust(_, port) => format!("mongodb://127.0.0.1:{port}/?directConnection=true"),
            Server::Python(s) => s.uri(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Server::Rust(..) => "secantusd-rs 0.5.3-beta.196",
            Server::Python(..) => "secantusd-py 0.7.0b3 (fallback: smaller volume)",
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Server::Rust(child, _) = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn find_rust_server() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin"));
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(home)
        .map(|d| d.join("secantusd-rs"))
        .find(|p| p.is_file())
}

pub fn wait_until(timeout: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One fulfilled sale, `_id` `id`, at `at`: five utilities, amounts in the forms the rules read
/// (strings included: the server's regex is most of a `$facet`'s cost), as in the e2e bench.
pub fn sale(id: i64, at: DateTime<Utc>) -> Document {
    const UTILITIES: [&str; 5] = ["IKEDC", "EKEDC", "AEDC", "PHED", "IBEDC"];
    let naira = 500 + id % 1_000;
    let amount = match id % 10 {
        0..=3 => bson::Bson::String(format!("{naira}.50")),
        4 => bson::Bson::String(format!("₦1,{:03}.00", naira % 1_000)),
        _ => bson::Bson::Int64(naira),
    };
    doc! { "_id": id, "createdAt": bson::DateTime::from_chrono(at),
    "utility": UTILITIES[(id % 5) as usize], "amount": amount, "status": "fulfilled" }
}

/// Runs a bench's `run` on two worker threads and prints its figures: pretty on stderr, and
/// one JSON line on stdout (the last line, for scripts).
pub fn print_figures(run: impl std::future::Future<Output = serde_json::Value>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let result = rt.block_on(run);
    eprintln!("{}", serde_json::to_string_pretty(&result).unwrap());
    println!("{}", serde_json::to_string(&result).unwrap());
}

/// The number in environment variable `name`, else `default`.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A service process (the release binary), killed when dropped.
pub struct Service(pub Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
