//! Debian packages the suite needs (Chromium, promtool, buildah), installed once per machine.
//! Fixtures run on parallel test threads, and dpkg takes one installer at a time: calls are
//! serialised here, and apt also waits for a lock held by another process.

use std::process::Command;
use std::sync::Mutex;

static APT: Mutex<()> = Mutex::new(());

/// Installs `packages` unless `present()` says they are there; panics with `why` if that fails.
pub fn ensure(packages: &[&str], present: impl Fn() -> bool, why: &str) {
    let _one_at_a_time = APT.lock().unwrap_or_else(|e| e.into_inner());
    if present() {
        return;
    }
    let script = format!(
        "apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive \
         apt-get -o DPkg::Lock::Timeout=600 install -y -qq {} >/dev/null",
        packages.join(" ")
    );
    let status = Command::new("sh")
        .args(["-c", &script])
        .status()
        .expect("apt-get runs");
    assert!(
        status.success() && present(),
        "installing {} from Debian failed: {why}",
        packages.join(", ")
    );
}
