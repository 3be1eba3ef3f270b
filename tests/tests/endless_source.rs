//! A source that never ends: HTTP servers on 127.0.0.1 that alternate two cursor tokens, ignore
//! the page parameter, or answer empty pages for ever, read by the generic connector (loaded
//! from a folder) through the real `posbridge run` and `posbridge export`. Each must stop with
//! a non-zero exit after a handful of requests, naming the connector, the stream and the cursor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use posbridge_e2e::*;
use serde_json::{json, Value};

/// More requests than any of these servers should see before the host gives up.
const REQUEST_BOUND: usize = 20;

/// After this many requests the servers end the stream, so that a host without the guard
/// fails these tests (a run that succeeds, after too many requests) instead of hanging them.
const SERVER_GIVES_UP_AFTER: usize = 200;

fn ok(body: Value) -> CannedResponse {
    CannedResponse {
        status: 200,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.to_string(),
    }
}

fn query(path: &str) -> HashMap<String, String> {
    path.split_once('?')
        .map(|(_, q)| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.into(), v.into()))
                .collect()
        })
        .unwrap_or_default()
}

/// Generated canonical sales (seeded), as the server hands them out.
fn sales(dir: &Path, n: usize) -> Vec<Value> {
    let file = dir.join("sales.ndjson");
    generate_sales_file(&file, n, 77);
    read_ndjson(&file)
}

/// Page `n` of `size` sales, wrapping round so that every page has records of its own.
fn slice(sales: &[Value], n: usize, size: usize) -> Vec<Value> {
    (0..size)
        .map(|i| sales[(n * size + i) % sales.len()].clone())
        .collect()
}

/// A server whose cursor tokens go A, B, A, B, …: each answer has new sales, and the next
/// token is whichever of the two it was not asked with.
fn alternating_tokens(dir: &Path) -> TestHttpServer {
    let sales = sales(dir, 200);
    TestHttpServer::start(move |n, req| {
        let next = match query(&req.path).get("after").map(String::as_str) {
            _ if n >= SERVER_GIVES_UP_AFTER => None,
            Some("A") => Some("B"),
            _ => Some("A"),
        };
        ok(json!({ "items": slice(&sales, n, 5), "paging": { "next": next } }))
    })
}

fn cursor_pagination() -> Value {
    json!({ "kind": "cursor", "cursor_param": "after", "size_param": "first",
        "cursor_path": "/paging/next", "records_path": "/items", "page_size": 5 })
}

/// A server that ignores `page` and answers the same full page every time.
fn ignores_the_page(dir: &Path) -> TestHttpServer {
    let sales = sales(dir, 20);
    TestHttpServer::start(move |n, _| {
        let data = if n >= SERVER_GIVES_UP_AFTER {
            &[][..]
        } else {
            &sales[..]
        };
        ok(json!({ "data": data }))
    })
}

fn page_pagination() -> Value {
    json!({ "kind": "page", "size_param": "size", "page_size": 20, "records_path": "/data" })
}

/// A server that answers no records but a fresh token every time.
fn empty_for_ever() -> TestHttpServer {
    TestHttpServer::start(|n, _| {
        let next = (n < SERVER_GIVES_UP_AFTER).then(|| format!("t{n}"));
        ok(json!({ "items": [], "paging": { "next": next } }))
    })
}

/// The generic connector's HTTP source config for `server` with `pagination`.
fn source_config(server: &TestHttpServer, pagination: Value) -> Value {
    json!({ "http": { "url": format!("{}/api/sales", server.base_url), "pagination": pagination } })
}

/// A pipeline from `source` into an NDJSON file.
fn pipeline(dir: &Path, source: Value, delivery: Value) -> PathBuf {
    let p = dir.join("endless.yaml");
    let def = json!({
        "name": "endless",
        "source": { "connector": "generic", "config": source, "streams": ["sales"] },
        "sink": { "connector": "generic", "config": { "path": dir.join("out.ndjson") } },
        "delivery": delivery,
    });
    std::fs::write(&p, serde_json::to_string_pretty(&def).unwrap()).unwrap();
    p
}

/// `posbridge run --json` of the pipeline; its summary.
fn run_pipeline(dir: &Path, source: Value, delivery: Value) -> (Ran, Value) {
    let p = pipeline(dir, source, delivery);
    let r = run(posbridge()
        .arg("run")
        .arg(&p)
        .arg("--state")
        .arg(format!("sqlite:{}", dir.join("s.db").display()))
        .arg("--json"));
    let summary = serde_json::from_str(&r.stdout).unwrap_or(Value::Null);
    (r, summary)
}

/// `posbridge export` of the `sales` stream of `source` into `out.ndjson`.
fn export(dir: &Path, source: Value, extra: &[&str]) -> Ran {
    let config = dir.join("source.json");
    std::fs::write(&config, source.to_string()).unwrap();
    run(posbridge()
        .args([
            "export",
            "--connector",
            "generic",
            "--stream",
            "sales",
            "--config",
        ])
        .arg(&config)
        .arg("--output")
        .arg(dir.join("out.ndjson"))
        .args(extra))
}

/// The run failed, said why with connector, stream and `cursor`, and the server was asked
/// only a few times.
fn assert_run_stopped(r: &Ran, summary: &Value, server: &TestHttpServer, cursor: &str, why: &str) {
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(summary["status"], "failed", "{r:?}");
    let error = summary["error"].as_str().unwrap_or_default();
    for part in ["connector generic", "stream sales", cursor, why] {
        assert!(error.contains(part), "{part:?} not in the error {error:?}");
    }
    let requests = server.received().len();
    assert!(requests < REQUEST_BOUND, "{requests} requests: {r:?}");
}

/// The export failed with an error naming connector, stream and `cursor`, left no file, and
/// the server was asked only a few times.
fn assert_export_stopped(r: &Ran, dir: &Path, server: &TestHttpServer, cursor: &str, why: &str) {
    assert_eq!(r.code, 1, "{r:?}");
    for part in ["connector generic", "stream sales", cursor, why] {
        assert!(r.stderr.contains(part), "{part:?} not in stderr: {r:?}");
    }
    assert!(
        !dir.join("out.ndjson").exists(),
        "a failed export leaves no file"
    );
    let requests = server.received().len();
    assert!(requests < REQUEST_BOUND, "{requests} requests: {r:?}");
}

#[test]
fn run_stops_a_source_whose_cursor_tokens_alternate() {
    let d = tempfile::tempdir().unwrap();
    let server = alternating_tokens(d.path());
    let (r, summary) = run_pipeline(
        d.path(),
        source_config(&server, cursor_pagination()),
        json!({}),
    );
    assert_run_stopped(
        &r,
        &summary,
        &server,
        r#"{"cursor":"A","skip":0}"#,
        "already followed",
    );
    // Start, A, B: the third answer hands back A.
    assert_eq!(server.received().len(), 3, "{r:?}");
    // The two pages before the loop closed are delivered, and no page twice.
    assert_eq!(summary["written"], 10, "{r:?}");
}

#[test]
fn run_stops_a_source_that_ignores_the_page_parameter() {
    let d = tempfile::tempdir().unwrap();
    let server = ignores_the_page(d.path());
    let (r, summary) = run_pipeline(
        d.path(),
        source_config(&server, page_pagination()),
        json!({}),
    );
    assert_run_stopped(
        &r,
        &summary,
        &server,
        r#"{"page":2,"page_size":20,"skip":0}"#,
        "same records as page 1",
    );
    assert_eq!(server.received().len(), 2, "{r:?}");
    assert_eq!(summary["written"], 20, "{r:?}");
    let paths: Vec<String> = server.received().iter().map(|q| q.path.clone()).collect();
    assert_eq!(paths[1], "/api/sales?page=2&size=20", "{paths:?}");
}

#[test]
fn run_stops_after_max_empty_pages_in_a_row() {
    let d = tempfile::tempdir().unwrap();
    let server = empty_for_ever();
    let (r, summary) = run_pipeline(
        d.path(),
        source_config(&server, cursor_pagination()),
        json!({ "max_empty_pages": 6 }),
    );
    // The sixth empty page was read at the token the fifth handed back, t4.
    assert_run_stopped(
        &r,
        &summary,
        &server,
        r#"{"cursor":"t4","skip":0}"#,
        "6 pages in a row without records",
    );
    assert_eq!(server.received().len(), 6, "{r:?}");
}

#[test]
fn a_pipeline_refuses_zero_max_empty_pages() {
    let d = tempfile::tempdir().unwrap();
    let server = empty_for_ever();
    let (r, _) = run_pipeline(
        d.path(),
        source_config(&server, cursor_pagination()),
        json!({ "max_empty_pages": 0 }),
    );
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        format!("{}{}", r.stdout, r.stderr).contains("max_empty_pages"),
        "{r:?}"
    );
    assert_eq!(server.received().len(), 0, "nothing is read");
}

#[test]
fn export_stops_a_source_whose_cursor_tokens_alternate() {
    let d = tempfile::tempdir().unwrap();
    let server = alternating_tokens(d.path());
    let r = export(d.path(), source_config(&server, cursor_pagination()), &[]);
    assert_export_stopped(
        &r,
        d.path(),
        &server,
        r#"{"cursor":"A","skip":0}"#,
        "already followed",
    );
    assert_eq!(server.received().len(), 3, "{r:?}");
}

#[test]
fn export_stops_a_source_that_ignores_the_page_parameter() {
    let d = tempfile::tempdir().unwrap();
    let server = ignores_the_page(d.path());
    let r = export(d.path(), source_config(&server, page_pagination()), &[]);
    assert_export_stopped(
        &r,
        d.path(),
        &server,
        r#"{"page":2,"page_size":20,"skip":0}"#,
        "same records as page 1",
    );
    assert_eq!(server.received().len(), 2, "{r:?}");
}

#[test]
fn export_stops_after_max_empty_pages_in_a_row() {
    let d = tempfile::tempdir().unwrap();
    let server = empty_for_ever();
    let r = export(
        d.path(),
        source_config(&server, cursor_pagination()),
        &["--max-empty-pages", "4"],
    );
    assert_export_stopped(
        &r,
        d.path(),
        &server,
        r#"{"cursor":"t2","skip":0}"#,
        "4 pages in a row without records",
    );
    assert_eq!(server.received().len(), 4, "{r:?}");
}
