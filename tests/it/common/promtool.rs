//! `promtool`, Prometheus's own checker (rules, rule unit tests, configs, exposition text).
//! Provisioned by this fixture, once per machine, from Debian's `prometheus` package (like the
//! browser), so a fresh clone needs no manual step and no test body installs anything.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn installed() -> bool {
    Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Once per process (and a no-op once the package is there).
fn ensure_installed() {
    static INSTALLED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    INSTALLED.get_or_init(|| {
        super::apt::ensure(
            &["prometheus"],
            installed,
            "the monitoring tests need promtool",
        )
    });
}

/// What one promtool run said (stdout and stderr together), and whether it succeeded.
pub struct Verdict {
    pub ok: bool,
    pub said: String,
}

/// `promtool <args>` in `dir`, with `stdin` on its standard input.
pub fn run(dir: &Path, args: &[&str], stdin: &str) -> Verdict {
    ensure_installed();
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(stdin.as_bytes())
        .expect("promtool reads its input");
    let out = child.wait_with_output().expect("promtool runs");
    Verdict {
        ok: out.status.success(),
        said: String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr),
    }
}

/// promtool's version line, for the record.
pub fn version() -> String {
    let v = run(Path::new("."), &["--version"], "");
    v.said.lines().next().unwrap_or_default().to_owned()
}
