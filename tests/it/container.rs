//! The container image, built offline by `deploy/container/build-offline.sh` (FROM scratch,
//! this build's binary) with buildah, and run as its default user against the test server and
//! the loopback Slack: ready, a sale in and its report out, SIGTERM → final checkpoint, exit 0.
//!
//! buildah is provisioned once by the fixture; its images live in a storage of this test's
//! own (vfs, no kernel overlay needed), removed afterwards. A machine that cannot build or run
//! containers fails here, saying why: it never passes without having run the image.

use crate::common::deploy_tools::{ensure_buildah, output_of, repo_root};
use crate::common::service::BIN;
use crate::common::slack::FakeSlack;
use crate::common::{report_of, server_uri, upcoming, wait_for, TestDb};
use bson::doc;
use chrono::TimeDelta;
use serde_json::Value;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TAG: &str = "power-revenue:dev";
const STATE: &str = "/var/lib/power-revenue";
const UID: u32 = 65532;

/// buildah with this test's storage (`CONTAINERS_STORAGE_CONF`).
struct Buildah {
    conf: PathBuf,
}

impl Buildah {
    fn cmd(&self) -> Command {
        let mut cmd = Command::new("buildah");
        cmd.env("CONTAINERS_STORAGE_CONF", &self.conf);
        cmd
    }

    /// Runs buildah with `args`; panics loudly with its output if it fails.
    fn ok(&self, args: &[&str]) -> String {
        let (code, out) = output_of(self.cmd().args(args));
        assert_eq!(
            code, 0,
            "`buildah {}` failed (exit {code}): this machine cannot build or run the container image:\n{out}",
            args.join(" ")
        );
        out
    }
}

/// The process named `power-revenue` among `root`'s descendants (buildah runs it two levels
/// down), as `(pid, real uid)`.
fn service_process(root: u32) -> Option<(u32, u32)> {
    let mut parents = std::collections::HashMap::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid …": comm may hold spaces, so read after the last ')'.
        let Some((head, tail)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map_or("", |(_, c)| c);
        let ppid = tail
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parents.insert(pid, (ppid, comm == "power-revenue"));
        }
    }
    let descends = |mut pid: u32| {
        while let Some((ppid, _)) = parents.get(&pid) {
            if *ppid == root {
                return true;
            }
            pid = *ppid;
        }
        false
    };
    let pid = parents
        .iter()
        .find(|(pid, (_, named))| *named && descends(**pid))
        .map(|(pid, _)| *pid)?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some((pid, uid))
}

/// The address the service logged ("power-revenue running. … http=ADDR"), on loopback.
fn logged_http(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text
        .lines()
        .find(|l| l.contains("power-revenue running."))?;
    let addr = line.split("http=").nth(1)?.split_whitespace().next()?;
    let port = addr.rsplit(':').next()?;
    Some(format!("http://127.0.0.1:{port}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_offline_image_runs_as_65532_against_the_test_server() {
    ensure_buildah();
    let work = tempfile::tempdir().unwrap();
    let conf = work.path().join("storage.conf");
    std::fs::write(
        &conf,
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{0}/storage\"\nrunroot = \"{0}/run\"\n",
            work.path().display()
        ),
    )
    .unwrap();
    let buildah = Buildah { conf };

    // Build: from the test binary (the script's default is the release build), or from
    // `POWER_REVENUE_IMAGE_BINARY` (to measure the release image: README, Deploy).
    let binary = std::env::var("POWER_REVENUE_IMAGE_BINARY").unwrap_or_else(|_| BIN.to_owned());
    let built = Instant::now();
    let (code, out) = output_of(
        Command::new(repo_root().join("deploy/container/build-offline.sh"))
            .arg(&binary)
            .env("CONTAINERS_STORAGE_CONF", &buildah.conf)
            .env("IMAGE_TAG", TAG),
    );
    assert_eq!(
        code, 0,
        "build-offline.sh failed: this machine cannot build the container image:\n{out}"
    );
    eprintln!(
        "image built from {binary} in {:.1} s",
        built.elapsed().as_secs_f64()
    );

    // What the image declares.
    let inspect: Value =
        serde_json::from_str(&buildah.ok(&["inspect", "--type", "image", TAG])).unwrap();
    let config = &inspect["Docker"]["config"];
    assert_eq!(config["User"], "65532:65532");
    assert_eq!(config["StopSignal"], "SIGTERM");
    assert!(config["Volumes"].get(STATE).is_some(), "{config}");
    let env: Vec<&str> = config["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        env.contains(&"POWER_REVENUE_HTTP_ADDR=0.0.0.0:9464"),
        "{env:?}"
    );
    assert!(
        env.contains(&"POWER_REVENUE_STATE_DIR=/var/lib/power-revenue"),
        "{env:?}"
    );
    assert_eq!(
        config["Healthcheck"]["Test"],
        serde_json::json!(["CMD", "/usr/local/bin/power-revenue", "healthcheck"])
    );
    assert_eq!(
        config["Labels"]["org.opencontainers.image.title"],
        "power-revenue"
    );
    let size = buildah.ok(&["images", "--format", "{{.Size}}", TAG]);
    eprintln!("image size: {}", size.trim());

    // Run it as its default user against the test server, with host networking (the
    // server and Slack listen on loopback).
    let db = TestDb::new("container").await;
    let slack = FakeSlack::start().await;
    let container = buildah.ok(&["from", "--pull-never", TAG]).trim().to_owned();
    let log = work.path().join("serve.log");
    let envs = [
        format!("MONGODB_URI={}", server_uri()),
        format!("POWER_REVENUE_DATABASE={}", db.name),
        format!("SLACK_WEBHOOK_URL={}", slack.url),
        "POWER_REVENUE_WINDOW=5s".into(),
        "POWER_REVENUE_GRACE=1s".into(),
        // Port 0 on every interface: the image's wildcard host, on a free port.
        "POWER_REVENUE_HTTP_ADDR=0.0.0.0:0".into(),
        "RUST_LOG=info,mongodb=warn".into(),
    ];
    let mut run = buildah.cmd();
    run.args(["run", "--isolation", "chroot", "--network", "host"]);
    for e in &envs {
        run.args(["--env", e]);
    }
    let started = Instant::now();
    let mut child: Child = run
        .args([&container, "--", "/usr/local/bin/power-revenue", "serve"])
        .stdin(Stdio::null())
        .stdout(File::create(work.path().join("serve.out")).unwrap())
        .stderr(File::create(&log).unwrap())
        .spawn()
        .expect("buildah runs");
    let show = |what: &str| {
        format!(
            "{what}\n--- container log ---\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    };

    let http = wait_for(
        Duration::from_secs(60),
        "the container to listen",
        async || logged_http(&log),
    )
    .await;
    let client = reqwest::Client::new();
    wait_for(
        Duration::from_secs(60),
        "/readyz 200 from the container",
        async || {
            let r = client.get(format!("{http}/readyz")).send().await.ok()?;
            (r.status() == 200).then_some(())
        },
    )
    .await;
    let ready_secs = started.elapsed().as_secs_f64();
    eprintln!("container start to /readyz 200: {ready_secs:.2} s");
    let (pid, uid) = service_process(child.id())
        .unwrap_or_else(|| panic!("{}", show("no power-revenue process under buildah")));
    assert_eq!(uid, UID, "the service runs as the image's user");

    // The healthcheck, inside the container as HEALTHCHECK runs it.
    let (code, out) = output_of(buildah.cmd().args([
        "run",
        "--isolation",
        "chroot",
        "--network",
        "host",
        &container,
        "--",
        "/usr/local/bin/power-revenue",
        "healthcheck",
    ]));
    assert_eq!(
        code,
        0,
        "{}",
        show(&format!("healthcheck in the container: {out}"))
    );

    // A sale in, its report out.
    let w = upcoming(5, 2);
    db.coll
        .insert_one(
            doc! { "createdAt": bson::DateTime::from_chrono(w.start + TimeDelta::seconds(1)),
            "utility": "IKEDC", "amount": "1500.50", "status": "fulfilled" },
        )
        .await
        .unwrap();
    let report = report_of(&slack, &w, 30).await;
    assert!(
        report.contains("• IKEDC: ₦1,500.50 (1 transaction"),
        "{report}"
    );

    // SIGTERM to the service: final checkpoint, exit 0 (buildah passes the status on).
    let stopping = Instant::now();
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let status = wait_for(
        Duration::from_secs(30),
        "the container to exit",
        async || child.try_wait().ok().flatten(),
    )
    .await;
    eprintln!("SIGTERM to exit: {:.2} s", stopping.elapsed().as_secs_f64());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{}", show(&format!("exit: {status}")));
    assert!(
        text.contains("final checkpoint saved"),
        "{}",
        show("no final checkpoint")
    );
    assert!(!text.contains("ERROR"), "{}", show("errors logged"));
    // The image's state directory was already 65532's and 0700: nothing to tighten.
    assert!(
        !text.contains("Tightened"),
        "{}",
        show("the image's state directory was not 0700")
    );

    // The state is on the image's volume: `status` in a new run of the container reads the
    // checkpoint and the report the service left there.
    let out = buildah
        .cmd()
        .args([
            "run",
            "--isolation",
            "chroot",
            &container,
            "--",
            "/usr/local/bin/power-revenue",
            "status",
            "--json",
        ])
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "status --json from the volume: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(status["has_resume_token"], true, "{status}");
    assert!(!status["last_reported"].is_null(), "{status}");
    let _ = output_of(buildah.cmd().args(["rm", &container]));
}
