//! The vendor's path, as one test: `posbridge new connector` → `cargo test` of the generated
//! project (its conformance test; it also builds the cdylib) → `posbridge conformance` when this
//! host has it → the library dropped into a plugin folder → `posbridge plugins list` shows it →
//! a pipeline from it to the generic sink. And the same for `examples/vendor-connector`, the
//! out-of-tree connector written from its `API.md` and the scaffold.
//!
//! The projects are built with `CARGO_TARGET_DIR=target/out-of-tree` (under this workspace's
//! target folder) and this workspace's `Cargo.lock`, so the registry crates are compiled once
//! and reused by every later run, and nothing is fetched.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use posbridge_e2e::*;
use serde_json::{json, Value};

/// The shared target folder of the out-of-tree builds.
fn vendor_target() -> PathBuf {
    target_dir().join("out-of-tree")
}

/// `cargo test`, then `cargo build` (`cargo test` leaves the cdylib in `deps/` only) in
/// `project`; answers the library file.
fn cargo_test(project: &Path, lib: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let started = Instant::now();
    let r = run(Command::new(&cargo)
        .current_dir(project)
        .env("CARGO_TARGET_DIR", vendor_target())
        .args(["test", "--quiet"]));
    assert_eq!(r.code, 0, "{r:?}");
    let r = run(Command::new(&cargo)
        .current_dir(project)
        .env("CARGO_TARGET_DIR", vendor_target())
        .args(["build", "--quiet"]));
    eprintln!(
        "cargo test of {} took {:.1} s",
        project.display(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(r.code, 0, "{r:?}");
    let file = vendor_target().join("debug").join(dylib_file_name(lib));
    assert!(file.is_file(), "no {}", file.display());
    file
}

/// `posbridge conformance LIB --config FILE`, where this host has the command: the suite config
/// holds the connector's `config` and a `bad_config` whose credentials the vendor refuses.
fn conformance(lib: &Path, config: &Value, bad_config: &Value, write: Option<Value>) {
    let help = run(Command::new(posbridge_bin()).args(["conformance", "--help"]));
    if help.code != 0 {
        eprintln!("note: this host has no `posbridge conformance`; the suite is not run");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.json");
    let mut suite = json!({"config": config, "bad_config": bad_config});
    if let Some(write) = write {
        suite["write"] = write;
    }
    std::fs::write(&file, suite.to_string()).unwrap();
    let r = run(Command::new(posbridge_bin())
        .arg("conformance")
        .arg(lib)
        .arg("--config")
        .arg(&file));
    assert_eq!(r.code, 0, "{r:?}");
}

/// A plugin folder with the generic connector and `lib`; `plugins list` must show `name`.
fn install(lib: &Path, name: &str) -> tempfile::TempDir {
    let folder = plugin_dir_with(&["posbridge_generic"]);
    std::fs::copy(lib, folder.path().join(lib.file_name().unwrap())).unwrap();
    let r = run(Command::new(posbridge_bin())
        .arg("--plugin-dir")
        .arg(folder.path())
        .args(["plugins", "list"]));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.lines().any(|l| l.starts_with(&format!("{name} "))),
        "{r:?}"
    );
    assert!(!r.stderr.contains("skipped"), "{r:?}");
    folder
}

/// Runs `source (config) → generic file sink` for `stream`; answers the records written.
fn pipeline(folder: &Path, source: &str, config: &Value, stream: &str) -> Vec<Value> {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out.ndjson");
    let file = work.path().join("p.yaml");
    std::fs::write(
        &file,
        format!(
            "name: vendor\nsource:\n  connector: {source}\n  config: {config}\n  streams: [{stream}]\n\
             sink:\n  connector: generic\n  config: {{path: {}, format: ndjson, stream: {stream}}}\n",
            out.display()
        ),
    )
    .unwrap();
    let r = run(Command::new(posbridge_bin())
        .arg("--plugin-dir")
        .arg(folder)
        .env("RUST_LOG", "warn")
        .arg("run")
        .arg(&file)
        .arg("--state")
        .arg(format!("sqlite:{}", work.path().join("state.db").display())));
    assert_eq!(r.code, 0, "{r:?}");
    read_ndjson(&out)
}

fn json_answer(status: u16, body: Value) -> CannedResponse {
    CannedResponse {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.to_string(),
    }
}

#[test]
fn scaffold_build_conformance_install_and_run() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("vendor-path-demo");
    let r = run(Command::new(posbridge_bin())
        .args([
            "new",
            "connector",
            "vendor-path-demo",
            "--source",
            "--sink",
            "--path",
        ])
        .arg(&project)
        .arg("--sdk")
        .arg(workspace_root().join("plugin-api")));
    assert_eq!(r.code, 0, "{r:?}");
    // The same crate versions as this workspace: reused from the shared target, not fetched.
    std::fs::copy(
        workspace_root().join("Cargo.lock"),
        project.join("Cargo.lock"),
    )
    .unwrap();
    let lib = cargo_test(&project, "posbridge_vendor_path_demo");

    // The placeholder API of the generated README, on 127.0.0.1.
    // Products posted are kept by idempotency key; a key seen before answers 409.
    let stored = std::sync::Mutex::new(std::collections::BTreeSet::<String>::new());
    let server = TestHttpServer::start(move |_, req| {
        if req.header("authorization") != Some("Bearer key-0123456") {
            return json_answer(401, json!({"message": "bad key"}));
        }
        if req.method == "POST" && req.path.starts_with("/v1/products") {
            let key = req
                .header("idempotency-key")
                .unwrap_or_default()
                .to_string();
            let mut stored = stored.lock().unwrap();
            if !stored.insert(key) {
                return json_answer(409, json!({"message": "duplicate key"}));
            }
            return json_answer(201, json!({"id": format!("p{}", stored.len())}));
        }
        if req.path.starts_with("/v1/me") {
            return json_answer(200, json!({"account": "demo"}));
        }
        json_answer(
            200,
            json!({"data": [
                {"id": 1, "name": "Espresso", "price": "2.50", "vat_rate": "19"},
                {"id": 2, "name": "Croissant", "price": "1.90", "vat_rate": "7"},
            ], "meta": {"pages": 1}}),
        )
    });
    let config = json!({"base_url": server.base_url, "api_key": "key-0123456"});
    let bad = json!({"base_url": server.base_url, "api_key": "key-refused"});
    let write = json!({"stream": "products", "records": [
        {"id": "a", "name": "A", "price": "1.10", "currency": "EUR", "tax_rate": "7"},
        {"id": "b", "name": "B", "price": "2.20", "currency": "EUR", "tax_rate": "19"},
    ]});
    conformance(&lib, &config, &bad, Some(write));
    let folder = install(&lib, "vendor-path-demo");
    let records = pipeline(folder.path(), "vendor-path-demo", &config, "products");
    let got: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["price"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("vendor-path-demo:1", "2.50"),
            ("vendor-path-demo:2", "1.90")
        ]
    );
    eprintln!(
        "the vendor path took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn the_out_of_tree_example_builds_passes_its_tests_and_runs_from_a_folder() {
    let project = workspace_root().join("examples/vendor-connector");
    let lib = cargo_test(&project, "posbridge_tillbox");
    // Tillbox as its API.md describes it: token header, articles by offset, prices in cents.
    let server = TestHttpServer::start(|_, req| {
        if req.header("x-tillbox-token") != Some("tb-secret-42") {
            return json_answer(401, json!({"error": {"text": "unknown token"}}));
        }
        if req.path.starts_with("/api/v2/ping") {
            return json_answer(200, json!({"pong": true}));
        }
        let offset: usize = req
            .path
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("offset="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let all = [
            json!({"sku": "A-1", "title": "Flat white", "price_cents": 340, "vat": "19.00"}),
            json!({"sku": "A-2", "title": "Bagel", "price_cents": 295, "vat": "7.00", "enabled": false}),
            json!({"sku": "A-3", "title": "Water", "price_cents": 150, "vat": "19.00"}),
        ];
        let page: Vec<Value> = all.iter().skip(offset).take(2).cloned().collect();
        json_answer(200, json!({"articles": page, "total": all.len()}))
    });
    let config = json!({"base_url": server.base_url, "token": "tb-secret-42"});
    let bad = json!({"base_url": server.base_url, "token": "tb-refused-00"});
    conformance(&lib, &config, &bad, None);
    let folder = install(&lib, "tillbox");
    let records = pipeline(folder.path(), "tillbox", &config, "products");
    let got: Vec<(&str, &str, bool)> = records
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap(),
                r["price"].as_str().unwrap(),
                r["active"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("tillbox:A-1", "3.40", true),
            ("tillbox:A-2", "2.95", false),
            ("tillbox:A-3", "1.50", true)
        ]
    );
}
