//! An OpenAPI 3.1 checker: PyPI's `openapi-spec-validator` (and the `jsonschema` it brings) in
//! a venv cached under `~/.cache/power-revenue/` (like the test server's), created once per
//! machine by this fixture: built aside and renamed into place, so concurrent runs never see
//! half an install. [`check`] runs `openapi_check.py` in it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Pinned so every machine checks with the same rules.
const VALIDATOR: &str = "openapi-spec-validator==0.9.0";
const SCRIPT: &str = include_str!("openapi_check.py");

fn venv_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache
        .join("power-revenue")
        .join(VALIDATOR.replace("==", "-"))
}

fn run(cmd: &mut Command) {
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The venv's python, installing the venv first if needed (once per process).
fn python() -> PathBuf {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let dir = venv_dir();
            let python = dir.join("bin").join("python");
            if dir.join(".installed").exists() {
                return python;
            }
            let parent = dir.parent().expect("a parent");
            std::fs::create_dir_all(parent).expect("cache directory");
            let staging = tempfile::Builder::new()
                .prefix("openapi-venv.tmp")
                .tempdir_in(parent)
                .expect("staging directory")
                .keep();
            run(Command::new("python3").args(["-m", "venv"]).arg(&staging));
            run(Command::new(staging.join("bin").join("pip")).args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                VALIDATOR,
            ]));
            std::fs::write(staging.join(".installed"), VALIDATOR).expect("marker");
            if std::fs::rename(&staging, &dir).is_err() {
                let _ = std::fs::remove_dir_all(&staging); // another run won the race
            }
            assert!(dir.join(".installed").exists(), "{VALIDATOR} not installed");
            python
        })
        .clone()
}

/// What the checker said, and whether everything passed.
pub struct Verdict {
    pub ok: bool,
    pub said: String,
}

/// Validates the document at `doc` (openapi-spec-validator), then each exchange in
/// `exchanges` (a JSON file: `[{"path", "status", "content_type", "headers", "body"}]`)
/// against the response the document gives for that path and status.
pub fn check(doc: &Path, exchanges: &Path) -> Verdict {
    let out = Command::new(python())
        .arg("-c")
        .arg(SCRIPT)
        .arg(doc)
        .arg(exchanges)
        .output()
        .expect("the checker runs");
    Verdict {
        ok: out.status.success(),
        said: String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr),
    }
}
