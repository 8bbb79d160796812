//! Deployment: the Kubernetes manifests and the Containerfiles checked by their ecosystems' own
//! tools (`kubernetes-validate`, `kubectl kustomize`, `hadolint`), the `healthcheck` command
//! against a running service, and the Lambda's Secrets Manager JSON in `_FILE` secrets.
//! The image itself is built and run in `container.rs`.

use crate::common::deploy_tools::{hadolint, kubernetes_validate, output_of, repo_root, tools_bin};
use crate::common::service::{run_cli, Service};
use crate::common::slack::FakeSlack;
use crate::common::{server_uri, spec, wait_for, TestDb};
use bson::doc;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use power_revenue::report::time_line;
use std::process::Command;
use std::time::Duration;

/// Every manifest passes Kubernetes' schemas strictly (unknown fields refused), alone and as
/// kustomize renders them; the rendered StatefulSet has what the deployment relies on.
#[test]
fn kubernetes_manifests_validate() {
    let bin = tools_bin();
    let dir = repo_root().join("deploy/kubernetes");
    // The files the kustomization lists, read with the venv's PyYAML, plus the example Secret.
    let (code, listed) = output_of(Command::new(bin.join("python")).args([
        "-c",
        "import sys, yaml; print('\\n'.join(yaml.safe_load(open(sys.argv[1]))['resources']))",
        &dir.join("kustomization.yaml").display().to_string(),
    ]));
    assert_eq!(code, 0, "{listed}");
    let mut files: Vec<String> = listed.lines().map(str::to_owned).collect();
    files.push("secret.example.yaml".into());
    for file in &files {
        let (code, out) = output_of(kubernetes_validate().arg(file).current_dir(&dir));
        eprintln!("kubernetes-validate --strict {file}: {}", out.trim());
        assert_eq!(code, 0, "{file}: {out}");
        assert!(
            out.contains("passed") && !out.contains("WARN"),
            "{file}: {out}"
        );
    }
    // Every YAML file in the directory is accounted for.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            name == "kustomization.yaml" || files.contains(&name),
            "{name} is neither in kustomization.yaml nor the example Secret"
        );
    }

    // The validator can fail: a StatefulSet with a misspelt field is refused.
    let bad = tempfile::tempdir().unwrap();
    let bad_file = bad.path().join("statefulset.yaml");
    let text = std::fs::read_to_string(dir.join("statefulset.yaml")).unwrap();
    std::fs::write(
        &bad_file,
        text.replace("terminationGracePeriodSeconds", "terminationGraceSeconds"),
    )
    .unwrap();
    let (code, out) = output_of(kubernetes_validate().arg(&bad_file));
    assert_ne!(code, 0, "a misspelt field passed: {out}");

    // Rendered by kustomize (kubectl's, where installed).
    let rendered = match Command::new("kubectl").arg("kustomize").arg(&dir).output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("kubectl is not installed: the kustomization's files were validated one by one, not rendered");
            return;
        }
        Err(e) => panic!("kubectl did not start: {e}"),
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success(),
                "kubectl kustomize failed: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            text
        }
    };
    let rendered_file = bad.path().join("rendered.yaml");
    std::fs::write(&rendered_file, &rendered).unwrap();
    let (code, out) = output_of(kubernetes_validate().arg(&rendered_file));
    eprintln!(
        "kubectl kustomize | kubernetes-validate --strict: {}",
        out.trim()
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("passed").count(), 4, "{out}");

    // What the deployment relies on, read from the rendered StatefulSet.
    let (code, out) = output_of(
        Command::new(bin.join("python"))
            .args(["-c", CHECK_STATEFULSET])
            .arg(&rendered_file),
    );
    assert_eq!(code, 0, "{out}");
}

/// Asserts on the rendered StatefulSet; prints nothing when all hold.
const CHECK_STATEFULSET: &str = r#"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
sts = next(d for d in docs if d["kind"] == "StatefulSet")
spec = sts["spec"]; pod = spec["template"]["spec"]
assert spec["replicas"] == 1, "one replica"
assert spec["volumeClaimTemplates"][0]["spec"]["accessModes"] == ["ReadWriteOnce"]
assert pod["securityContext"]["runAsNonRoot"] is True
assert pod["terminationGracePeriodSeconds"] >= 30
(init,) = pod["initContainers"]
assert init["args"] == ["init-indexes"]
(main,) = pod["containers"]
assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
assert main["readinessProbe"]["exec"]["command"][1:] == ["healthcheck", "--ready"]
for c in (init, main):
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["capabilities"]["drop"] == ["ALL"]
    assert sc["allowPrivilegeEscalation"] is False
    env = {e["name"]: e["value"] for e in c["env"]}
    for var in ("MONGODB_URI_FILE", "SLACK_WEBHOOK_URL_FILE", "POWER_REVENUE_API_TOKEN_FILE"):
        assert env[var].startswith("/run/secrets/power-revenue/"), var
    assert env["POWER_REVENUE_CONFIG"] == "/etc/power-revenue/power-revenue.toml"
    assert env["POWER_REVENUE_STATE_DIR"].startswith("/var/lib/power-revenue/")
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["secrets"]["readOnly"] and mounts["config"]["readOnly"]
kinds = sorted(d["kind"] for d in docs)
assert kinds == ["ConfigMap", "NetworkPolicy", "Service", "StatefulSet"], kinds
"#;

/// Both Containerfiles pass hadolint, and the offline one's runtime metadata is the user-facing
/// one's, line for line (one image, two ways to build it).
#[test]
fn containerfiles_lint_and_agree() {
    let dir = repo_root().join("deploy/container");
    for file in ["Containerfile", "Containerfile.offline"] {
        let (code, out) = output_of(hadolint().arg(file).current_dir(&dir));
        eprintln!("hadolint {file}: exit {code} {}", out.trim());
        assert_eq!(code, 0, "hadolint {file}: {out}");
    }
    let metadata = |file: &str| {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let start = text
            .find("# --- runtime metadata")
            .expect("metadata marker");
        let end = text
            .find("# --- end of runtime metadata")
            .expect("end marker");
        text[start..end].to_owned()
    };
    assert_eq!(metadata("Containerfile"), metadata("Containerfile.offline"));
}

/// `healthcheck` asks the running service: 0 while it answers, 1 with one line when it does
/// not; it needs neither MongoDB nor the webhook, and `--ready` carries the API token.
#[tokio::test(flavor = "multi_thread")]
async fn healthcheck_probes_the_running_service() {
    let db = TestDb::new("health").await;
    let token = "health-token-2f6c1b9e";
    let mut svc = Service::start(&db.name, None, &[("POWER_REVENUE_API_TOKEN", token)]);
    let http = svc.http();
    svc.wait_connected().await;
    let state = svc.state_dir().display().to_string();
    let empty = tempfile::tempdir().unwrap();
    let nowhere = empty.path().join("state").display().to_string();

    // The address the service recorded in its state directory; nothing else configured.
    let (code, out, err) = run_cli(&["healthcheck"], &[("POWER_REVENUE_STATE_DIR", &state)]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    // A wildcard address is reached on loopback.
    let port = http.rsplit(':').next().unwrap();
    let wildcard = format!("0.0.0.0:{port}");
    let (code, _, err) = run_cli(
        &["healthcheck"],
        &[
            ("POWER_REVENUE_STATE_DIR", &nowhere),
            ("POWER_REVENUE_HTTP_ADDR", &wildcard),
        ],
    );
    assert_eq!(code, 0, "{err}");
    // Readiness, with the token from the configuration (the service may still be catching up).
    let ready_env = [
        ("POWER_REVENUE_STATE_DIR", state.as_str()),
        ("POWER_REVENUE_API_TOKEN", token),
    ];
    wait_for(
        Duration::from_secs(30),
        "healthcheck --ready to pass",
        async || (run_cli(&["healthcheck", "--ready"], &ready_env).0 == 0).then_some(()),
    )
    .await;
    // Without the token /readyz is refused, and says so in one line.
    let (code, _, err) = run_cli(
        &["healthcheck", "--ready"],
        &[("POWER_REVENUE_STATE_DIR", &state)],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("401") && err.trim().lines().count() == 1,
        "{err}"
    );
    assert!(!err.contains(token));

    // Stopped: unhealthy, one line, exit 1.
    assert!(svc.terminate().success());
    let (code, _, err) = run_cli(&["healthcheck"], &[("POWER_REVENUE_STATE_DIR", &state)]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.starts_with("power-revenue: unhealthy:") && err.contains("did not answer"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // Settings it cannot read: unhealthy too (exit 1; Docker reserves 2), one line.
    let (code, _, err) = run_cli(&["healthcheck"], &[("POWER_REVENUE_HTTP_ADDR", "nowhere")]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("POWER_REVENUE_HTTP_ADDR") && err.trim().lines().count() == 1,
        "{err}"
    );
}

/// The Lambda's secrets as AWS Secrets Manager holds them (and a CSI mount or External Secrets
/// writes them): `{"connection_string": …}` and `{"webhook_url": …}` files work unchanged;
/// any other JSON is one line, exit 2, without any of its content.
#[tokio::test(flavor = "multi_thread")]
async fn secrets_manager_json_files_are_accepted() {
    let db = TestDb::new("smjson").await;
    let start: DateTime<Utc> = "2025-05-29T12:00:00Z".parse().unwrap();
    db.coll
        .insert_one(
            doc! { "createdAt": bson::DateTime::from_chrono(start + chrono::TimeDelta::minutes(30)),
            "utility": "IKEDC", "amount": "1500", "status": "fulfilled" },
        )
        .await
        .unwrap();
    let slack = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    // Pretty-printed, as the Secrets Manager console shows it.
    let mongo = file(
        "mongo.json",
        &format!(
            "{{\n  \"connection_string\": {}\n}}\n",
            serde_json::json!(server_uri())
        ),
    );
    let webhook = file(
        "webhook.json",
        &format!("{{\"webhook_url\": \"{}\"}}", slack.url),
    );
    let (code, out, err) = run_cli(
        &["report", "--window-start", "2025-05-29T12:00:00Z"],
        &[
            ("MONGODB_URI_FILE", &mongo),
            ("SLACK_WEBHOOK_URL_FILE", &webhook),
            ("POWER_REVENUE_DATABASE", &db.name),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let w = spec(6 * 3600).window_of(start);
    let posted = slack.messages_about(&time_line(&w, Tz::UTC));
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert!(
        posted[0].contains("• IKEDC: ₦1,500.00 (1 transaction"),
        "{}",
        posted[0]
    );

    let secret = "hunter2secret";
    let uri = format!("mongodb://ops:{secret}@127.0.0.1:1/power");
    let cases: &[(&str, String, &str)] = &[
        (
            "MONGODB_URI_FILE",
            format!(r#"{{"connection_string": "{uri}", "password": "{secret}"}}"#),
            "1 other key(s)",
        ),
        (
            "MONGODB_URI_FILE",
            format!(r#"{{"uri": "{uri}"}}"#),
            "without the key \"connection_string\"",
        ),
        (
            "MONGODB_URI_FILE",
            format!(r#"{{"connection_string": ["{uri}"]}}"#),
            "as an array, not a string",
        ),
        (
            "MONGODB_URI_FILE",
            format!(r#"{{"connection_string": "{uri}""#),
            "not valid JSON",
        ),
        (
            "SLACK_WEBHOOK_URL_FILE",
            format!(r#"{{"connection_string": "https://hooks.slack.com/services/T/B/{secret}"}}"#),
            "without the key \"webhook_url\"",
        ),
        // The string inside is then a secret like any other, under the same rules.
        (
            "MONGODB_URI_FILE",
            format!(r#"{{"connection_string": "mongodb://ops:{secret}?x@127.0.0.1:1/power"}}"#),
            "percent-encoded",
        ),
        (
            "SLACK_WEBHOOK_URL_FILE",
            format!(r#"{{"webhook_url": "http://hooks.slack.com/services/T/B/{secret}"}}"#),
            "must use https",
        ),
    ];
    for (var, text, expected) in cases {
        let path = file("case.json", text);
        let mut env = vec![(*var, path.as_str())];
        if *var != "MONGODB_URI_FILE" {
            env.push(("MONGODB_URI", "mongodb://127.0.0.1:1/power"));
        }
        let (code, out, err) = run_cli(&["serve"], &env);
        assert_eq!(code, 2, "{text}: {err}");
        let setting = var.trim_end_matches("_FILE");
        assert!(
            err.contains(expected) && err.contains(setting),
            "{text}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!err.contains(secret) && !out.contains(secret), "{err}");
    }
}
