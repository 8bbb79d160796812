//! Bad state directories: the binary refuses with one clear line before connecting, never
//! panics and never overwrites what it found. (Two processes on one directory: `tests/cli.rs`.)

mod common;

use common::service::run_cli;
use power_revenue::store::{Store, StoreError};
use std::path::Path;

const URI: &str = "mongodb://ops:hunter2secret@127.0.0.1:1/power";

/// `serve` on `dir`: the exit code and stderr; it must stop before any connection attempt.
fn serve_on(dir: &Path) -> (i32, String) {
    let (code, stdout, stderr) = run_cli(
        &["serve"],
        &[
            ("MONGODB_URI", URI),
            ("POWER_REVENUE_STATE_DIR", dir.to_str().unwrap()),
            ("POWER_REVENUE_HTTP_ADDR", "127.0.0.1:0"),
        ],
    );
    let all = format!("{stdout}{stderr}");
    assert!(!all.contains("panicked"), "{all}");
    assert!(!all.contains("hunter2secret"), "{all}");
    assert!(
        !all.contains("Change stream"),
        "it went on to connect: {all}"
    );
    (code, stderr.lines().last().unwrap_or_default().to_owned())
}

fn assert_refused(dir: &Path, expected: &str) {
    let (code, line) = serve_on(dir);
    assert_eq!(code, 1, "{line}");
    assert!(line.starts_with("power-revenue: "), "{line}");
    assert!(line.contains(expected), "{line}");
}

#[test]
fn a_directory_of_other_files_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("passwd"), "root:x:0:0").unwrap();
    assert_refused(
        dir.path(),
        "contains \"passwd\", which is not power-revenue state",
    );
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "nothing was written next to it");
}

#[test]
fn sled_data_of_another_program_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled_when_released(dir.path());
        db.insert("their-key", "their-value").unwrap();
        db.flush().unwrap();
    }
    assert_refused(dir.path(), "data of another program");
    let db = sled_when_released(dir.path());
    assert_eq!(
        db.get("their-key").unwrap().as_deref(),
        Some(&b"their-value"[..])
    );
}

#[tokio::test]
async fn damaged_state_is_refused_rather_than_silently_started_fresh() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    drop(Store::open(&state).unwrap());
    // A disk or a careless copy destroyed sled's files; the marker says state was there.
    std::fs::write(state.join("conf"), b"garbage").unwrap();
    std::fs::write(state.join("db"), vec![0xA5u8; 4096]).unwrap();
    assert_refused(&state, "its data is gone or damaged; move it aside");
}

#[test]
fn an_unwritable_state_directory_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    assert_refused(&file.join("state"), "cannot open state directory");
    assert_refused(&file, "cannot open state directory");
}

#[test]
fn a_placeholder_dotfile_is_fine_and_state_reopens() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".gitkeep"), "").unwrap();
    drop(Store::open(dir.path()).unwrap());
    // sled releases its lock from a background thread after the last handle is dropped.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let reopened = loop {
        match Store::open(dir.path()) {
            Err(StoreError::Locked(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            other => break other,
        }
    };
    drop(reopened.expect("reopens its own state"));
}

/// sled releases its file lock from a background thread some time after the last handle is
/// dropped: wait for that, up to a bound, instead of racing it.
fn sled_when_released(dir: &std::path::Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match sled::open(dir) {
            Err(sled::Error::Io(e))
                if e.to_string().contains("lock") && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other.expect("sled opens once the lock is released"),
        }
    }
}
