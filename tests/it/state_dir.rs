//! Bad state directories: the binary refuses with one clear line before connecting, never
//! panics and never overwrites what it found. (Two processes on one directory: `tests/it/cli.rs`.)

use crate::common::service::run_cli;
use power_revenue::store::{Store, StoreError};
use std::path::Path;
use std::time::Duration;

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

/// State of another format (an earlier build's, or a later one's after a rollback) is never
/// read as this build's: one line says what to do, and the directory is left as it was.
#[test]
fn state_of_another_format_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    drop(Store::open(&state).unwrap());
    {
        let db = sled_when_released(&state);
        db.open_tree("state")
            .unwrap()
            .insert("format", "power-revenue/1")
            .unwrap();
        db.flush().unwrap();
    }
    assert_refused(
        &state,
        &format!(
            "state directory {} holds power-revenue state of format 1, this build reads format 3; move it aside (the service then starts at the current window)",
            state.display()
        ),
    );
    let db = sled_when_released(&state);
    let format = db.open_tree("state").unwrap().get("format").unwrap();
    assert_eq!(format.as_deref(), Some(&b"power-revenue/1"[..]));
    drop(db);
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

/// Every directory under `dir` (itself included) and every file, with its mode.
fn modes(dir: &Path) -> Vec<(std::path::PathBuf, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = vec![(
        dir.to_owned(),
        std::fs::metadata(dir).unwrap().permissions().mode() & 0o777,
    )];
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            out.extend(modes(&entry.path()));
        } else {
            let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
            out.push((entry.path(), mode));
        }
    }
    out
}

fn assert_private(dir: &Path) {
    let modes = modes(dir);
    assert!(modes.len() > 3, "sled wrote its files: {modes:?}");
    for (path, mode) in &modes {
        let expected = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(
            *mode,
            expected,
            "{} is {mode:04o}: {modes:?}",
            path.display()
        );
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The state holds every report's revenue: a fresh directory is 0700 and every file sled
/// writes in it 0600, also under a permissive umask (0002), after a run that opened its
/// stream and saved its final checkpoint.
#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_state_directory_is_private_whatever_the_umask() {
    use crate::common::service::BIN;
    use crate::common::{server_uri, wait_for, TestDb};
    let db = TestDb::new("state_perms").await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let log = dir.path().join("log");
    let uri = server_uri();
    let mut child = std::process::Command::new("sh")
        .args(["-c", "umask 0002 && exec \"$0\" serve", BIN])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("MONGODB_URI", &uri)
        .env("POWER_REVENUE_DATABASE", &db.name)
        .env("POWER_REVENUE_STATE_DIR", &state)
        .env("POWER_REVENUE_HTTP_ADDR", "127.0.0.1:0")
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(dir.path().join("err")).unwrap())
        .spawn()
        .unwrap();
    let printed = || std::fs::read_to_string(dir.path().join("err")).unwrap_or_default();
    wait_for(
        Duration::from_secs(60),
        "the change stream to open",
        async || printed().contains("Change stream open.").then_some(()),
    )
    .await;
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success(), "{}", printed());
    assert!(
        printed().contains("final checkpoint saved"),
        "{}",
        printed()
    );
    assert_private(&state);
}

#[test]
fn a_state_directory_others_can_write_to_is_refused() {
    for mode in [0o777, 0o770, 0o702] {
        let dir = tempfile::tempdir().unwrap();
        set_mode(dir.path(), mode);
        let (code, line) = serve_on(dir.path());
        assert_eq!(code, 1, "{line}");
        assert!(
            line.contains(&format!("is writable by group or others (mode {mode:04o})"))
                && line.contains(&format!("run `chmod 700 {:?}`", dir.path())),
            "{line}"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing written"
        );
        assert_eq!(modes(dir.path())[0].1, mode, "left as it was");
    }
}

/// A directory only readable by others (the 0755/0644 of earlier versions) is tightened to
/// 0700/0600, and the log says so.
#[test]
fn a_readable_state_directory_is_tightened_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    set_mode(dir.path(), 0o755);
    for (path, _) in modes(dir.path()).into_iter().skip(1) {
        set_mode(&path, if path.is_dir() { 0o755 } else { 0o644 });
    }
    let (code, stdout, stderr) = run_cli(
        &["status"],
        &[("POWER_REVENUE_STATE_DIR", dir.path().to_str().unwrap())],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("not running"), "{stdout}");
    assert!(
        stderr.contains("Tightened state permissions") && stderr.contains("from=\"0755\""),
        "{stderr}"
    );
    assert_private(dir.path());
}

/// State written with other windows (5 s in UTC) is refused when the settings now say others
/// (the default 6 h): its window ids, totals and checkpoint belong to those, and reading them
/// as these would count sales twice. One line, exit 2, before connecting; with the windows it
/// was written with, it opens.
#[test]
fn state_of_other_windows_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    {
        let store = Store::open(&state).unwrap();
        let five = power_revenue::window::WindowSpec::new(5, chrono_tz::Tz::UTC).unwrap();
        store.check_windows(&five, &state).unwrap();
        store.check_windows(&five, &state).unwrap();
    }
    let (code, err) = serve_on(&state);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("holds windows of 5s in UTC; POWER_REVENUE_WINDOW and POWER_REVENUE_TIMEZONE now say 21600s in UTC")
            && err.contains("set them back, or point POWER_REVENUE_STATE_DIR at an empty directory"),
        "{err}"
    );
    assert!(!err.contains("hunter2secret"), "{err}");
}
