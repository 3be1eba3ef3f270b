//! The connector as the host builds it: manifest, `Connector::open` with a `FakeHost`, check,
//! and a recovery reported through the host's log.

use std::fs;

use posbridge_generic::{ledger_path, GenericConfig, GenericConnector};
use posbridge_plugin_api::model::{Sale, STREAMS};
use posbridge_plugin_api::sdk::export::full_manifest;
use posbridge_plugin_api::testing::FakeHost;
use posbridge_plugin_api::{Connector, LogLevel, ReadRequest, RecordOutcome, WriteRequest};
use serde_json::json;

/// A host with nothing scripted: any HTTP request fails (the file connector must never ask).
fn host() -> FakeHost {
    FakeHost::new()
}

fn open(config: serde_json::Value, host: &FakeHost) -> GenericConnector {
    let config: GenericConfig = serde_json::from_value(config).unwrap();
    GenericConnector::open(config, host.host()).expect("opens")
}

#[test]
fn manifest_declares_every_canonical_stream_read_write_and_a_strict_schema() {
    let m = full_manifest::<GenericConnector>();
    assert!(m.problems().is_empty(), "{:?}", m.problems());
    assert_eq!(m.name, "generic");
    assert_eq!(m.streams.len(), STREAMS.len());
    assert!(m
        .streams
        .iter()
        .all(|s| s.read && s.write && STREAMS.contains(&s.name.as_str())));
    assert!(m.egress_hosts.is_empty());
    assert_eq!(m.egress_config_fields, vec!["http.url"]);
    assert_eq!(m.config_schema["additionalProperties"], json!(false));
    // Exactly one transport: files (`path`) or an HTTP endpoint (`http`).
    assert_eq!(
        m.config_schema["oneOf"],
        json!([{ "required": ["path"] }, { "required": ["http"] }])
    );
    assert_eq!(
        m.secrets,
        vec![
            "http.headers.*",
            "http.url?*",
            "http.auth.basic.password",
            "http.auth.bearer",
            "http.auth.header.value",
            "http.hmac_secret"
        ]
    );
}

#[test]
fn check_tells_a_usable_path_from_an_unusable_one() {
    let dir = tempfile::tempdir().unwrap();
    let host = host();
    let file = dir.path().join("in.csv");
    fs::write(&file, "id\n1\n").unwrap();
    for path in [
        file.clone(),
        dir.path().to_path_buf(),
        dir.path().join("new.ndjson"),
    ] {
        let report = open(json!({ "path": path }), &host).check().unwrap();
        assert!(report.ok, "{}: {}", path.display(), report.message);
    }
    let missing = dir.path().join("no/such/folder/out.json");
    let report = open(json!({ "path": missing }), &host).check().unwrap();
    assert!(!report.ok);
    assert!(
        report.message.contains("no/such/folder"),
        "{}",
        report.message
    );
    let bad = serde_json::from_value::<GenericConfig>(json!({ "path": "x", "format": "xml" }));
    assert!(bad.is_err());
}

#[test]
fn opened_through_the_sdk_it_reads_writes_and_logs_a_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.ndjson");
    let host = host();
    let record = serde_json::to_value(Sale::example()).unwrap();
    let request = WriteRequest {
        stream: "sales".into(),
        idempotency_keys: vec!["k1".into()],
        ..WriteRequest::default()
    };
    let c = open(json!({ "path": path }), &host);
    let outcomes = c
        .sink()
        .unwrap()
        .write(&request, std::slice::from_ref(&record))
        .unwrap();
    assert_eq!(outcomes, vec![RecordOutcome::Written { external_id: None }]);
    assert!(host.log_lines().is_empty());

    // A torn batch left behind by a killed process.
    let mut data = fs::read(&path).unwrap();
    data.extend_from_slice(b"{\"id\":\"torn");
    fs::write(&path, data).unwrap();
    let c = open(json!({ "path": path }), &host);
    let again = c
        .sink()
        .unwrap()
        .write(&request, std::slice::from_ref(&record))
        .unwrap();
    assert_eq!(again, vec![RecordOutcome::Duplicate { external_id: None }]);
    let logs = host.log_lines();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].level, LogLevel::Warn);
    assert_eq!(
        logs[0].fields["truncated_bytes"],
        json!("{\"id\":\"torn".len())
    );
    assert!(
        fs::read_to_string(ledger_path(&path))
            .unwrap()
            .lines()
            .count()
            >= 2
    );

    let page = c
        .source()
        .unwrap()
        .read(&ReadRequest {
            stream: "sales".into(),
            page_size: 10,
            ..ReadRequest::default()
        })
        .unwrap();
    assert_eq!(page.records, vec![record]);
    assert!(!page.has_more);
}
