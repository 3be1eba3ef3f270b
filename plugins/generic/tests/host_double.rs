//! The connector as the host builds it: manifest, `Connector::open` with a host double, check,
//! and a recovery reported through the host's log.

use std::fs;
use std::sync::{Arc, Mutex};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RResult, RStr, RString};
use posbridge_generic::{ledger_path, GenericConfig, GenericConnector};
use posbridge_plugin_api::abi::{FfiError, FfiHttpRequest, FfiHttpResponse, HostFfi, HostFfi_TO};
use posbridge_plugin_api::model::{Sale, STREAMS};
use posbridge_plugin_api::sdk::export::full_manifest;
use posbridge_plugin_api::{Connector, Host, ReadRequest, RecordOutcome, WriteRequest};
use serde_json::json;

/// Records log lines; refuses HTTP (the file connector must never ask for it).
#[derive(Clone, Default)]
struct RecordingHost {
    logs: Arc<Mutex<Vec<(u8, String, String)>>>,
}

impl HostFfi for RecordingHost {
    fn http(&self, _request: FfiHttpRequest) -> RResult<FfiHttpResponse, FfiError> {
        // A panic may not unwind through the ABI: answer with an error the test would see.
        RResult::RErr(FfiError {
            kind: posbridge_plugin_api::abi::error_kind::BUG,
            message: RString::from("the file connector must not make HTTP calls"),
            retry_after_ms: 0,
        })
    }
    fn log(&self, level: u8, _target: RStr<'_>, message: RStr<'_>, fields_json: RStr<'_>) {
        self.logs
            .lock()
            .unwrap()
            .push((level, message.to_string(), fields_json.to_string()));
    }
    fn now_millis(&self) -> i64 {
        0
    }
    fn is_cancelled(&self) -> bool {
        false
    }
    fn state_get(&self, _key: RStr<'_>) -> ROption<RString> {
        ROption::RNone
    }
    fn state_put(&self, _key: RStr<'_>, _value: RStr<'_>) {}
}

fn open(config: serde_json::Value, host: &RecordingHost) -> GenericConnector {
    let config: GenericConfig = serde_json::from_value(config).unwrap();
    let host = Host::from_ffi(HostFfi_TO::from_value(host.clone(), TD_Opaque));
    GenericConnector::open(config, host).expect("opens")
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
    let host = RecordingHost::default();
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
    let host = RecordingHost::default();
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
    assert!(host.logs.lock().unwrap().is_empty());

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
    let logs = host.logs.lock().unwrap().clone();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].0, 2, "a warning");
    let fields: serde_json::Value = serde_json::from_str(&logs[0].2).unwrap();
    assert_eq!(fields["truncated_bytes"], json!("{\"id\":\"torn".len()));
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
