//! The real `power-revenue` binary as an operator runs it: env config, signals, logs.

use chrono::{DateTime, Utc};
use power_revenue::window::Window;
use serde_json::Value;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_power-revenue");

pub struct Service {
    child: Option<Child>,
    env: Vec<(String, String)>,
    pub dir: tempfile::TempDir,
    runs: u32,
}

impl Service {
    /// Starts `serve` on `database` with short windows; `extra` env overrides the defaults.
    pub fn start(database: &str, slack_url: Option<&str>, extra: &[(&str, &str)]) -> Service {
        let dir = tempfile::tempdir().unwrap();
        let mut env: Vec<(String, String)> = vec![
            ("MONGODB_URI".into(), super::server_uri()),
            ("POWER_REVENUE_DATABASE".into(), database.into()),
            ("POWER_REVENUE_WINDOW".into(), "5s".into()),
            ("POWER_REVENUE_GRACE".into(), "1s".into()),
            (
                "POWER_REVENUE_STATE_DIR".into(),
                dir.path().join("state").display().to_string(),
            ),
            // The service binds a free port itself and logs it: never picked here and
            // released (another process could take it in between).
            ("POWER_REVENUE_HTTP_ADDR".into(), "127.0.0.1:0".into()),
            ("RUST_LOG".into(), "info,mongodb=warn".into()),
            // Daily summaries would add a message to any test that runs across midnight UTC;
            // the summary tests turn them on.
            ("POWER_REVENUE_SUMMARY".into(), "off".into()),
        ];
        if let Some(url) = slack_url {
            env.push(("SLACK_WEBHOOK_URL".into(), url.into()));
        }
        for (k, v) in extra {
            env.retain(|(key, _)| key != k);
            env.push((k.to_string(), v.to_string()));
        }
        let mut s = Service {
            child: None,
            env,
            dir,
            runs: 0,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        self.runs += 1;
        let out = File::create(self.log_path("out")).unwrap();
        let err = File::create(self.log_path("err")).unwrap();
        let child = Command::new(BIN)
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("power-revenue starts");
        self.child = Some(child);
    }

    fn log_path(&self, kind: &str) -> PathBuf {
        self.dir.path().join(format!("run{}.{kind}", self.runs))
    }

    /// What the current (or last) run printed on stderr: its log.
    pub fn current_log(&self) -> String {
        std::fs::read_to_string(self.log_path("err")).unwrap_or_default()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// Everything every run printed (stdout and stderr).
    pub fn output(&self) -> String {
        let mut all = String::new();
        for run in 1..=self.runs {
            for kind in ["out", "err"] {
                all.push_str(
                    &std::fs::read_to_string(self.dir.path().join(format!("run{run}.{kind}")))
                        .unwrap_or_default(),
                );
            }
        }
        all
    }

    /// The HTTP address of the current run, once it has logged it.
    pub fn try_http(&self) -> Option<String> {
        let log = std::fs::read_to_string(self.log_path("err")).ok()?;
        let line = log.lines().find(|l| l.contains("power-revenue running."))?;
        let addr = line.split("http=").nth(1)?.split_whitespace().next()?;
        Some(format!("http://{addr}"))
    }

    /// The HTTP address of the current run: waits (up to a minute) until it is logged.
    pub fn http(&self) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(http) = self.try_http() {
                return http;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the service did not start listening within a minute:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub async fn status(&self) -> Option<Value> {
        self.get_json("/api/v1/status").await
    }

    /// A JSON endpoint of the running service (with its API token, if it has one).
    pub async fn get_json(&self, path: &str) -> Option<Value> {
        self.get(path).await?.json().await.ok()
    }

    /// A text endpoint of the running service (with its API token, if it has one).
    pub async fn get_text(&self, path: &str) -> Option<String> {
        let resp = self.get(path).await?;
        resp.text().await.ok()
    }

    async fn get(&self, path: &str) -> Option<reqwest::Response> {
        let mut req = reqwest::Client::new().get(format!("{}{path}", self.try_http()?));
        if let Some((_, token)) = self
            .env
            .iter()
            .find(|(k, _)| k == "POWER_REVENUE_API_TOKEN")
        {
            req = req.bearer_auth(token);
        }
        req.send().await.ok()
    }

    /// `w`'s item in `GET /api/v1/windows`, waited for up to `timeout`.
    pub async fn closed_window(&self, w: &Window, timeout: Duration) -> Value {
        super::wait_for(timeout, "the window in the API", async || {
            let all = self.get_json("/api/v1/windows").await?;
            all.as_array()?
                .iter()
                .find(|x| {
                    x["start"]
                        .as_str()
                        .and_then(|s| s.parse::<DateTime<Utc>>().ok())
                        == Some(w.start)
                })
                .cloned()
        })
        .await
    }

    /// Waits until the change stream is open (sales inserted before that are not streamed).
    pub async fn wait_connected(&self) {
        super::wait_for(
            Duration::from_secs(60),
            "the change stream to open",
            async || {
                let s = self.status().await?;
                s["counters"]["stream_connected"].as_bool().filter(|c| *c)
            },
        )
        .await;
    }

    /// SIGTERM, then wait for exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait().unwrap()
    }

    /// SIGKILL: no chance to checkpoint.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        let _ = child.kill();
        let _ = child.wait();
    }

    pub fn restart(&mut self) {
        self.restart_with(&[]);
    }

    /// Restarts with extra env for this run only (e.g. a failpoint).
    pub fn restart_with(&mut self, extra: &[(&str, &str)]) {
        assert!(self.child.is_none(), "stop it first");
        let saved = self.env.clone();
        for (k, v) in extra {
            self.env.retain(|(key, _)| key != k);
            self.env.push((k.to_string(), v.to_string()));
        }
        self.spawn();
        self.env = saved;
    }

    /// Waits for the process to exit by itself (e.g. at a failpoint).
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "process did not exit within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- power-revenue output ---\n{}", self.output());
        }
    }
}

/// Runs the binary once with `args` and `env` (nothing inherited but PATH). A run that has not
/// ended after a minute is killed and reported as exit code -1, so a regression fails the test
/// instead of hanging it.
pub fn run_cli(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let (dir, mut child) = spawn_cli(args, env);
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code().unwrap_or(-1);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break -1;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    (code, read(&out), read(&err))
}

/// `report --window-start START --dry-run`: one window's report, printed instead of posted.
pub fn report_dry_run(start: &str, env: &[(&str, &str)]) -> (i32, String, String) {
    run_cli(&["report", "--window-start", start, "--dry-run"], env)
}

/// The binary with `args` and `env` (nothing inherited but PATH), its stdout and stderr in
/// `out` and `err` of the returned directory.
pub fn spawn_cli(args: &[&str], env: &[(&str, &str)]) -> (tempfile::TempDir, Child) {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(File::create(dir.path().join("out")).unwrap())
        .stderr(File::create(dir.path().join("err")).unwrap())
        .spawn()
        .unwrap();
    (dir, child)
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}
