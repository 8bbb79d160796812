//! The service under test as an operator runs it, and what it costs (`/proc`).

use super::*;

/// `power-revenue serve`, as an operator runs it.
pub(crate) struct Service {
    pub(crate) child: Child,
    pub(crate) http: String,
}

impl Service {
    pub(crate) fn start(uri: &str, state: &Path, slack: &str, window: &str) -> Service {
        let log_path = state.with_extension("log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(bin())
            .arg("serve")
            .env("MONGODB_URI", uri)
            .env("POWER_REVENUE_DATABASE", DATABASE)
            .env("POWER_REVENUE_WINDOW", window)
            .env("POWER_REVENUE_GRACE", "1s")
            .env("POWER_REVENUE_STATE_DIR", state)
            // The service binds a free port itself and logs it (app's start line).
            .env("POWER_REVENUE_HTTP_ADDR", "127.0.0.1:0")
            .env("SLACK_WEBHOOK_URL", slack)
            .env("RUST_LOG", "warn,power_revenue::app=info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let http = loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let addr = text
                .lines()
                .find(|l| l.contains("power-revenue running."))
                .and_then(|l| l.split("http=").nth(1)?.split_whitespace().next())
                .map(str::to_owned);
            if let Some(addr) = addr {
                break format!("http://{addr}");
            }
            assert!(Instant::now() < deadline, "the service did not start:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        };
        Service { child, http }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then wait: the service saves its checkpoint and exits.
    pub(crate) fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU seconds (user + system) and RSS / peak RSS in MB of a process, from `/proc`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Usage {
    pub(crate) cpu_secs: f64,
    pub(crate) rss_mb: f64,
    pub(crate) peak_rss_mb: f64,
}

pub(crate) fn usage(pid: u32) -> Usage {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the command name: state is field 3, utime 14, stime 15 (1-based, man proc).
    let cpu_secs = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Usage {
        cpu_secs,
        rss_mb: kb("VmRSS:") / 1024.0,
        peak_rss_mb: kb("VmHWM:") / 1024.0,
    }
}
