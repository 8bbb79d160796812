//! No one gets in, nothing leaks: a server with SCRAM authentication behind TLS (CA file from
//! the URI, verified by rustls), a recognisable password and webhook token, and every byte
//! the binary printed searched for them.

use crate::common::service::{report_dry_run, run_cli, Service};
use crate::common::slack::FakeSlack;
use crate::common::wait_for;
use bson::doc;
use chrono::Utc;
use mongodb::Client;
use power_revenue::devserver::DevServer;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const PASSWORD: &str = "Hunter2-Pa55w0rd-XYZZY";
const WEBHOOK_TOKEN: &str = "SECRETWEBHOOKTOKEN";

/// A CA and a server certificate for 127.0.0.1/localhost, made with the openssl CLI.
fn make_certs(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl is installed");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.pem",
    ]);
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_and_auth_work_and_no_secret_is_ever_printed() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let storage = dir.path().join("db");
    std::fs::create_dir_all(&storage).unwrap();

    // Provision the user without auth, then restart the server with --auth and TLS.
    let mut plain = DevServer::start(Some(&storage), &[]).unwrap();
    let port = plain.port;
    let admin = Client::with_uri_str(plain.uri()).await.unwrap();
    admin
        .database("admin")
        .run_command(doc! { "createUser": "ops", "pwd": PASSWORD, "roles": [ { "role": "readWrite", "db": "power" } ] })
        .await
        .unwrap();
    drop(admin);
    plain.shutdown();
    let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    let _server = DevServer::start_on(
        port,
        Some(&storage),
        &[
            "--auth",
            "--tls-cert-file",
            cert.to_str().unwrap(),
            "--tls-key-file",
            key.to_str().unwrap(),
        ],
    )
    .unwrap();
    let ca = dir.path().join("ca.pem");
    let uri_with = |password: &str| {
        format!(
            "mongodb://ops:{password}@127.0.0.1:{port}/power?directConnection=true&authSource=admin&tls=true&tlsCAFile={}",
            ca.display()
        )
    };
    let uri = uri_with(PASSWORD);

    let client = Client::with_uri_str(&uri).await.unwrap();
    let coll = client
        .database("power")
        .collection("power_transaction_items");
    coll.insert_one(doc! { "seed": true }).await.unwrap();

    // The service streams through TLS + SCRAM and posts a report.
    let slack = FakeSlack::start().await;
    assert!(slack.url.contains(WEBHOOK_TOKEN));
    let mut svc = Service::start("power", Some(&slack.url), &[("MONGODB_URI", &uri)]);
    svc.wait_connected().await;
    coll.insert_one(doc! { "createdAt": bson::DateTime::from_chrono(Utc::now()), "utility": "IKEDC", "amount": "₦1,500.50", "status": "fulfilled" })
        .await
        .unwrap();
    wait_for(
        Duration::from_secs(40),
        "a report with the sale",
        async || {
            slack
                .messages_about("• IKEDC: ₦1,500.50 (1 transaction)")
                .first()
                .cloned()
        },
    )
    .await;

    let mut printed = String::new();
    let owned = svc.env().to_vec();
    let env: Vec<(&str, &str)> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    for args in [&["status"][..], &["status", "--json"]] {
        let (code, out, err) = run_cli(args, &env);
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("ops:****@127.0.0.1"),
            "status names the server, redacted: {out}"
        );
        printed += &(out + &err);
    }
    assert!(svc.terminate().success());
    let (code, out, err) = run_cli(&["status"], &env);
    assert_eq!(code, 0, "{err}");
    printed += &(out + &err);

    // A wrong password: `report` fails with a clear line, `serve` keeps retrying, and says why.
    let wrong = uri_with("Wr0ng-Secret-QUUX");
    let report_env = [
        ("MONGODB_URI", wrong.as_str()),
        ("POWER_REVENUE_HTTP_ADDR", "127.0.0.1:0"),
    ];
    let (code, out, err) = report_dry_run("2025-05-29T12:00:00Z", &report_env);
    assert_ne!(code, 0);
    assert!(err.to_lowercase().contains("auth"), "{err}");
    assert!(
        !format!("{out}{err}").contains("Wr0ng-Secret-QUUX"),
        "{err}"
    );
    printed += &(out + &err);
    svc.restart_with(&[("MONGODB_URI", &wrong)]);
    wait_for(
        Duration::from_secs(60),
        "the authentication failure in the log",
        async || svc.output().to_lowercase().contains("auth").then_some(()),
    )
    .await;
    assert!(svc.is_running(), "an auth failure is retried, not fatal");
    svc.kill9();

    printed += &svc.output();
    for secret in [PASSWORD, WEBHOOK_TOKEN, "Wr0ng-Secret-QUUX"] {
        assert!(!printed.contains(secret), "{secret} leaked:\n{printed}");
    }
    assert!(
        printed.contains("Report posted."),
        "the outputs were captured: {printed}"
    );
}
