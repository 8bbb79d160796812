//! A local SecantusDB (MongoDB-wire-compatible, GPL-2.0) for the demo and the test suite.
//! It always runs as a separate process from a cached Python venv; nothing of it is linked.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

/// Pinned so every machine tests against the same server.
pub(crate) const SECANTUS_VERSION: &str = "0.7.0b3";

/// `$POWER_REVENUE_SECANTUS_VENV`, else `~/.cache/power-revenue/secantusdb-<version>`.
pub fn venv_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("POWER_REVENUE_SECANTUS_VENV") {
        return dir.into();
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache
        .join("power-revenue")
        .join(format!("secantusdb-{SECANTUS_VERSION}"))
}

/// Creates the venv once (built aside, then renamed into place, so concurrent callers never
/// see half an install). Returns the server executable.
pub fn ensure_installed() -> std::io::Result<PathBuf> {
    let dir = venv_dir();
    let exe = dir.join("bin").join("python");
    let marker = dir.join(".installed");
    if marker.exists() {
        return Ok(exe);
    }
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    // Unique per caller: tests in one process install concurrently on a fresh machine.
    let staging = tempfile::Builder::new()
        .prefix(&format!("secantusdb-{SECANTUS_VERSION}.tmp"))
        .tempdir_in(parent)?
        .keep();
    run(Command::new("python3").args(["-m", "venv"]).arg(&staging))?;
    run(Command::new(staging.join("bin").join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .arg(format!("SecantusDB=={SECANTUS_VERSION}")))?;
    std::fs::write(staging.join(".installed"), SECANTUS_VERSION)?;
    if std::fs::rename(&staging, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&staging); // another process won the race
    }
    if marker.exists() {
        Ok(exe)
    } else {
        Err(std::io::Error::other("SecantusDB install did not complete"))
    }
}

fn run(cmd: &mut Command) -> std::io::Result<()> {
    let out = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "{:?} failed: {}",
            cmd,
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

/// Runs the server module, and stops it gracefully once its stdin closes: the pipe's other end
/// is held by this process, so the server never outlives us, not even after SIGKILL.
const WATCHDOG: &str = "import os, signal, sys, threading, runpy\n\
def watch():\n    sys.stdin.buffer.read()\n    os.kill(os.getpid(), signal.SIGTERM)\n\
threading.Thread(target=watch, daemon=True).start()\n\
sys.argv = ['secantusd-py'] + sys.argv[1:]\n\
runpy.run_module('secantus', run_name='__main__')\n";

/// A running server; killed on drop.
pub struct DevServer {
    child: Child,
    pub port: u16,
    storage: Option<PathBuf>,
}

impl DevServer {
    /// Starts a server on a free loopback port, in memory or on `storage`, with extra flags.
    /// The server binds port 0 itself and says which port it got: a port picked here and
    /// released could be taken by another process in between.
    pub fn start(storage: Option<&Path>, extra_args: &[&str]) -> std::io::Result<DevServer> {
        Self::launch(0, storage, extra_args)
    }

    /// Starts on a given port (used to bring a stopped server back at the same address).
    pub fn start_on(
        port: u16,
        storage: Option<&Path>,
        extra_args: &[&str],
    ) -> std::io::Result<DevServer> {
        Self::launch(port, storage, extra_args)
    }

    fn launch(
        port: u16,
        storage: Option<&Path>,
        extra_args: &[&str],
    ) -> std::io::Result<DevServer> {
        let exe = ensure_installed()?;
        let storage_arg =
            storage.map_or_else(|| ":memory:".to_owned(), |p| p.display().to_string());
        let mut child = Command::new(exe)
            .args([
                "-c",
                WATCHDOG,
                "--port",
                &port.to_string(),
                "--storage-path",
                &storage_arg,
            ])
            .args(extra_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().expect("piped");
        let port = match listening_port(stderr, Duration::from_secs(60)) {
            Ok(port) => port,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        Ok(DevServer {
            child,
            port,
            storage: storage.map(Path::to_path_buf),
        })
    }

    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.port)
    }

    pub fn storage(&self) -> Option<&Path> {
        self.storage.as_deref()
    }

    /// Stops the server the way an operator would (SIGTERM via the stdin watchdog), so it
    /// flushes its storage, and waits for it.
    pub fn shutdown(&mut self) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop();
    }

    /// Stops the process (SIGKILL) and waits for it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the server's log until it says where it listens ("… listening on 127.0.0.1:PORT"),
/// then keeps draining it on a thread of its own so the server never blocks on a full pipe.
fn listening_port(stderr: ChildStderr, timeout: Duration) -> std::io::Result<u16> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut told = false;
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if !told {
                let port = line
                    .split_once(" listening on ")
                    .and_then(|(_, addr)| addr.trim().rsplit_once(':'))
                    .and_then(|(_, port)| port.parse::<u16>().ok());
                if let Some(port) = port {
                    told = true;
                    let _ = tx.send(port);
                }
            }
        }
    });
    rx.recv_timeout(timeout).map_err(|_| {
        std::io::Error::other(format!(
            "SecantusDB did not say it was listening within {timeout:?}"
        ))
    })
}

impl Drop for DevServer {
    fn drop(&mut self) {
        self.stop();
    }
}
