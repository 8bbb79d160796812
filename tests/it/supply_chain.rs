//! Supply chain: `Cargo.lock` checked against a RustSec advisory database, offline.
//!
//! The database is the snapshot in `.ci/advisory-db/` (see its `SNAPSHOT.md`), or the
//! directory named by `POWER_REVENUE_ADVISORY_DB` (a fresh `git clone` of
//! <https://github.com/rustsec/advisory-db> for an up-to-date check). Every vulnerability and
//! every informational advisory (unmaintained, unsound, notice) that matches the lockfile must
//! be accepted in `deny.toml` with a reason, the same list `cargo deny check` reads; an accepted
//! advisory that no longer matches is reported too, so the list cannot rot.

use rustsec::advisory::Informational;
use rustsec::report::{Report, Settings};
use rustsec::{Database, Lockfile};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const ADVISORY_DB_ENV: &str = "POWER_REVENUE_ADVISORY_DB";

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn database() -> (PathBuf, Database) {
    let path = std::env::var_os(ADVISORY_DB_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join(".ci/advisory-db"));
    let db = Database::open(&path)
        .unwrap_or_else(|e| panic!("cannot open advisory database {}: {e}", path.display()));
    assert!(
        db.iter().count() > 500,
        "{} holds only {} advisories: not a RustSec database",
        path.display(),
        db.iter().count()
    );
    (path, db)
}

#[derive(Deserialize)]
struct DenyToml {
    advisories: DenyAdvisories,
}

#[derive(Deserialize)]
struct DenyAdvisories {
    #[serde(default)]
    ignore: Vec<Accepted>,
}

#[derive(Deserialize)]
struct Accepted {
    id: String,
    reason: String,
}

/// The advisories `deny.toml` accepts, by id, each with its reason.
fn accepted() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(manifest_dir().join("deny.toml")).expect("read deny.toml");
    let deny: DenyToml = toml::from_str(&text).expect("deny.toml parses");
    let mut out = BTreeMap::new();
    for a in deny.advisories.ignore {
        assert!(
            a.reason.trim().len() >= 10,
            "deny.toml accepts {} without a real reason",
            a.id
        );
        assert!(
            out.insert(a.id.clone(), a.reason).is_none(),
            "{} listed twice",
            a.id
        );
    }
    out
}

/// Every advisory matching `lockfile`: `(id, "crate version: title")`.
fn findings(db: &Database, lockfile: &Lockfile) -> BTreeMap<String, String> {
    let settings = Settings {
        informational_warnings: vec![
            Informational::Unmaintained,
            Informational::Unsound,
            Informational::Notice,
        ],
        ..Settings::default()
    };
    let report = Report::generate(db, lockfile, &settings);
    let mut out = BTreeMap::new();
    for v in &report.vulnerabilities.list {
        let what = format!(
            "{} {}: {}",
            v.package.name, v.package.version, v.advisory.title
        );
        out.insert(v.advisory.id.to_string(), what);
    }
    for (kind, warnings) in &report.warnings {
        for w in warnings {
            if let Some(a) = &w.advisory {
                let what = format!(
                    "{} {} ({kind:?}): {}",
                    w.package.name, w.package.version, a.title
                );
                out.insert(a.id.to_string(), what);
            }
        }
    }
    out
}

/// What is wrong with `found` given `accepted`, one line each.
fn problems(found: &BTreeMap<String, String>, accepted: &BTreeMap<String, String>) -> Vec<String> {
    let mut out: Vec<String> = found
        .iter()
        .filter(|(id, _)| !accepted.contains_key(*id))
        .map(|(id, what)| format!("{id} {what}: not accepted in deny.toml"))
        .collect();
    out.extend(
        accepted
            .keys()
            .filter(|id| !found.contains_key(*id))
            .map(|id| {
                format!("{id}: accepted in deny.toml but no longer matches Cargo.lock; remove it")
            }),
    );
    out
}

#[test]
fn lockfile_has_no_advisory_that_deny_toml_does_not_accept() {
    let (path, db) = database();
    let lockfile = Lockfile::load(manifest_dir().join("Cargo.lock")).expect("Cargo.lock");
    let found = findings(&db, &lockfile);
    let problems = problems(&found, &accepted());
    assert!(
        problems.is_empty(),
        "advisories from {}:\n{}",
        path.display(),
        problems.join("\n")
    );
}

/// The check itself must be able to fail: a lockfile with a crate version that has a known
/// vulnerability is caught, and an accepted advisory that matches nothing is reported.
#[test]
fn the_check_catches_a_known_vulnerability() {
    let (_, db) = database();
    let dir = tempfile::tempdir().expect("tempdir");
    let lock = dir.path().join("Cargo.lock");
    std::fs::write(
        &lock,
        "version = 3\n\n[[package]]\nname = \"smallvec\"\nversion = \"0.6.9\"\n\
         source = \"registry+https://github.com/rust-lang/crates.io-index\"\n",
    )
    .expect("write lockfile");
    let found = findings(&db, &Lockfile::load(Path::new(&lock)).expect("parse"));
    assert!(
        found.contains_key("RUSTSEC-2019-0009"),
        "smallvec 0.6.9 not flagged: {found:?}"
    );
    let stale = BTreeMap::from([("RUSTSEC-2025-0012".to_owned(), "backoff".to_owned())]);
    let problems = problems(&found, &stale);
    assert!(
        problems.iter().any(|p| p.starts_with("RUSTSEC-2019-0009")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("no longer matches")),
        "{problems:?}"
    );
}
