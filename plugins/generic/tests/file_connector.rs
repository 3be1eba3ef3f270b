//! The generic connector driven through its `Source` and `Sink` faces, on files in a temp folder.

use std::fs;
use std::path::Path;

use posbridge_generic::{ledger_path, GenericConfig, GenericConnector};
use posbridge_plugin_api::model::{Party, Sale};
use posbridge_plugin_api::{
    ConnectorError, ReadRequest, RecordOutcome, Sink, Source, WriteRequest,
};
use serde_json::{json, Value};

fn connector(config: Value) -> GenericConnector {
    let config: GenericConfig = serde_json::from_value(config).expect("config parses");
    GenericConnector::new(config).expect("config is valid")
}

fn file_connector(path: &Path) -> GenericConnector {
    connector(json!({ "path": path }))
}

/// Sales with awkward text (commas, quotes, newlines, "null") and decimals with trailing zeros.
fn sales(from: usize, n: usize) -> Vec<Sale> {
    (from..from + n)
        .map(|i| {
            let mut s = Sale::example();
            s.receipt_number = i.to_string();
            s.id = Sale::make_id("demo", "S1", "R1", &s.receipt_number);
            s.cashier = Some(Party {
                id: Some("null".into()),
                name: Some(format!("Müller, \"Kasse {i}\"\nFrüh")),
            });
            s.cancels = (i % 2 == 0).then(String::new);
            s.lines[0].name = format!("Bio-Vollmilch 3,5 % #{i}");
            s
        })
        .collect()
}

fn values(sales: &[Sale]) -> Vec<Value> {
    sales
        .iter()
        .map(|s| serde_json::to_value(s).unwrap())
        .collect()
}

fn write(c: &GenericConnector, records: &[Value]) -> Vec<RecordOutcome> {
    let keys = records
        .iter()
        .map(|r| format!("key:{}", r["id"].as_str().unwrap()))
        .collect();
    let request = WriteRequest {
        stream: "sales".into(),
        idempotency_keys: keys,
        ..WriteRequest::default()
    };
    let outcomes = Sink::write(c, &request, records).expect("batch is written");
    assert_eq!(outcomes.len(), records.len());
    outcomes
}

fn written() -> RecordOutcome {
    RecordOutcome::Written { external_id: None }
}

fn duplicate() -> RecordOutcome {
    RecordOutcome::Duplicate { external_id: None }
}

fn read(
    c: &GenericConnector,
    cursor: Option<Value>,
    page_size: usize,
) -> posbridge_plugin_api::Page {
    let request = ReadRequest {
        stream: "sales".into(),
        cursor,
        page_size,
        ..ReadRequest::default()
    };
    Source::read(c, &request).expect("page is read")
}

/// Reads page by page until `has_more` is false; every page but the last is full.
fn read_all(
    c: &GenericConnector,
    mut cursor: Option<Value>,
    page_size: usize,
) -> (Vec<Value>, Option<Value>) {
    let mut out = Vec::new();
    loop {
        let page = read(c, cursor.clone(), page_size);
        assert!(page.records.len() <= page_size);
        if page.has_more {
            assert_eq!(page.records.len(), page_size);
        }
        out.extend(page.records);
        cursor = page.cursor;
        if !page.has_more {
            return (out, cursor);
        }
    }
}

const FORMATS: [&str; 3] = ["ndjson", "csv", "json"];

#[test]
fn round_trip_is_exact_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    for ext in FORMATS {
        let path = dir.path().join(format!("sales.{ext}"));
        let original = sales(1, 5);
        let sink = file_connector(&path);
        assert_eq!(write(&sink, &values(&original[..2])), vec![written(); 2]);
        assert_eq!(write(&sink, &values(&original[2..])), vec![written(); 3]);

        let (records, _) = read_all(&file_connector(&path), None, 2);
        assert_eq!(records, values(&original), "{ext}: records differ");
        let back: Vec<Sale> = records
            .iter()
            .map(|r| serde_json::from_value(r.clone()).unwrap())
            .collect();
        assert_eq!(back, original, "{ext}: sales differ");
        // Decimals keep their scale as written: "1.00" and "0", never 1.0 or 0.0.
        assert_eq!(records[0]["lines"][1]["net"], json!("1.00"));
        assert_eq!(records[0]["totals"]["discount"], json!("0"));
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("1.00"),
            "{ext}: amounts are written as decimals"
        );
    }
}

#[test]
fn json_output_is_a_valid_array_after_every_batch_and_csv_has_one_header() {
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("out.json");
    let csv_path = dir.path().join("out.csv");
    for batch in 0..3 {
        let records = values(&sales(batch * 10, 2));
        write(&file_connector(&json_path), &records);
        write(&file_connector(&csv_path), &records);
        let array: Vec<Value> = serde_json::from_slice(&fs::read(&json_path).unwrap()).unwrap();
        assert_eq!(array.len(), (batch + 1) * 2);
    }
    let csv = fs::read_to_string(&csv_path).unwrap();
    assert_eq!(csv.lines().filter(|l| l.starts_with("id,")).count(), 1);
    assert!(csv.starts_with("id,attachments,business_day,"));
}

#[test]
fn a_reread_resumes_from_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    for ext in FORMATS {
        let path = dir.path().join(format!("sales.{ext}"));
        let all = values(&sales(1, 5));
        write(&file_connector(&path), &all);

        let first = read(&file_connector(&path), None, 2);
        assert_eq!(first.records, all[..2]);
        assert!(first.has_more);
        let cursor = first.cursor.clone().unwrap();
        assert_eq!(cursor["file"], json!(format!("sales.{ext}")));
        // A fresh connector (a restart) continues where the checkpointed cursor says.
        let (rest, last) = read_all(&file_connector(&path), Some(cursor), 2);
        assert_eq!(rest, all[2..], "{ext}");
        let len = fs::metadata(&path).unwrap().len();
        // Just after the last record: the end of the file, or before the closing `]`.
        let end = if ext == "json" { len - 1 } else { len };
        assert_eq!(
            last.unwrap()["offset"].as_u64().unwrap(),
            end,
            "{ext}: cursor after the last record"
        );
        // Reading at the end returns nothing and keeps the cursor.
        let again = read(
            &file_connector(&path),
            Some(json!({"file": format!("sales.{ext}"), "offset": end})),
            2,
        );
        assert!(again.records.is_empty() && !again.has_more);
        assert_eq!(again.cursor.unwrap()["offset"].as_u64().unwrap(), end);
    }
}

#[test]
fn a_growing_file_is_read_on_from_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    for ext in FORMATS {
        let path = dir.path().join(format!("grow.{ext}"));
        let sink = file_connector(&path);
        let source = file_connector(&path);
        write(&sink, &values(&sales(1, 2)));
        let (seen, cursor) = read_all(&source, None, 10);
        assert_eq!(seen.len(), 2);
        write(&sink, &values(&sales(3, 3)));
        let (more, _) = read_all(&source, cursor, 10);
        assert_eq!(more, values(&sales(3, 3)), "{ext}");
    }
}

#[test]
fn ndjson_written_by_someone_else_grows_line_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed.ndjson");
    let c = file_connector(&path);
    fs::write(
        &path,
        "{\"id\":\"a\",\"amount\":\"1.10\"}\n\n{\"id\":\"b\"}\n{\"id\":\"c\",",
    )
    .unwrap();
    let page = read(&c, None, 10);
    // The last line is still being written: not returned, not passed.
    assert_eq!(
        page.records,
        vec![json!({"id":"a","amount":"1.10"}), json!({"id":"b"})]
    );
    assert!(!page.has_more);
    let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
    std::io::Write::write_all(&mut f, b"\"amount\":\"2.00\"}\n{\"id\":\"d\"}").unwrap();
    let page = read(&c, page.cursor, 10);
    // A complete last line without newline is a record.
    assert_eq!(
        page.records,
        vec![json!({"id":"c","amount":"2.00"}), json!({"id":"d"})]
    );
}

#[test]
fn an_unacknowledged_tail_is_cut_before_the_next_batch() {
    let dir = tempfile::tempdir().unwrap();
    for ext in FORMATS {
        let path = dir.path().join(format!("crash.{ext}"));
        let first = values(&sales(1, 2));
        write(&file_connector(&path), &first);
        let acknowledged = fs::read(&path).unwrap();

        // SIGKILL after the data of the next batch reached the file, before its ledger line
        // was complete: a torn data tail (over the JSON closing bracket) and a torn ledger line.
        let mut torn = acknowledged.clone();
        if ext == "json" {
            torn.pop();
            torn.extend_from_slice(b",\n{\"id\":\"demo:S1:R1:99\",\"lin");
        } else {
            torn.extend_from_slice(b"{\"id\":\"demo:S1:R1:99\",\"lin");
        }
        fs::write(&path, &torn).unwrap();
        let mut ledger = fs::read(ledger_path(&path)).unwrap();
        ledger.extend_from_slice(b"{\"end\":99999,\"keys\":[\"key:demo:S1");
        fs::write(ledger_path(&path), &ledger).unwrap();

        // A reader never sees more than the ledger acknowledged.
        let (seen, _) = read_all(&file_connector(&path), None, 10);
        assert_eq!(seen, first, "{ext}: reader stops at the acknowledged end");

        // The host re-sends the unacknowledged batch after the restart.
        let second = values(&sales(3, 2));
        let restarted = file_connector(&path);
        assert_eq!(write(&restarted, &second), vec![written(); 2]);
        let (all, _) = read_all(&file_connector(&path), None, 10);
        assert_eq!(all, [first.clone(), second.clone()].concat(), "{ext}");

        // The result is byte for byte what an uninterrupted run writes.
        let clean = dir.path().join(format!("clean.{ext}"));
        let c = file_connector(&clean);
        write(&c, &first);
        write(&c, &second);
        assert_eq!(fs::read(&path).unwrap(), fs::read(&clean).unwrap(), "{ext}");
        let ledger = fs::read_to_string(ledger_path(&path)).unwrap();
        assert!(
            ledger.ends_with('\n')
                && ledger
                    .lines()
                    .all(|l| serde_json::from_str::<Value>(l).is_ok())
        );
    }
}

#[test]
fn a_resent_batch_is_answered_duplicate_and_not_written_again() {
    let dir = tempfile::tempdir().unwrap();
    for ext in FORMATS {
        let path = dir.path().join(format!("dup.{ext}"));
        let batch = values(&sales(1, 3));
        write(&file_connector(&path), &batch);
        let size = fs::metadata(&path).unwrap().len();

        // Acknowledged but not checkpointed: the host sends the batch again after a restart.
        let restarted = file_connector(&path);
        assert_eq!(write(&restarted, &batch), vec![duplicate(); 3], "{ext}");
        assert_eq!(fs::metadata(&path).unwrap().len(), size);

        // Old and new records mixed, and a key twice in one batch.
        let new = values(&sales(4, 1));
        let mixed = vec![batch[0].clone(), new[0].clone(), new[0].clone()];
        assert_eq!(
            write(&restarted, &mixed),
            vec![duplicate(), written(), duplicate()]
        );
        let (all, _) = read_all(&file_connector(&path), None, 10);
        assert_eq!(all, [batch.clone(), new].concat(), "{ext}");
    }
}

#[test]
fn records_that_cannot_be_written_are_rejected_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let c = file_connector(&path);
    write(&c, &values(&sales(1, 1)));
    let mut odd = values(&sales(2, 1)).remove(0);
    odd["not_in_header"] = json!(1);
    let records = vec![odd, json!("not an object"), values(&sales(3, 1)).remove(0)];
    let request = WriteRequest {
        stream: "sales".into(),
        idempotency_keys: vec!["k2".into(), "k3".into(), "k4".into()],
        ..WriteRequest::default()
    };
    let outcomes = Sink::write(&c, &request, &records).unwrap();
    assert!(
        matches!(&outcomes[0], RecordOutcome::Rejected { reason } if reason.contains("not_in_header"))
    );
    assert!(matches!(&outcomes[1], RecordOutcome::Rejected { .. }));
    assert_eq!(outcomes[2], written());
    // A rejected key is not remembered: a corrected record with it can be written later.
    let fixed = values(&sales(2, 1));
    let request = WriteRequest {
        idempotency_keys: vec!["k2".into()],
        ..request
    };
    assert_eq!(Sink::write(&c, &request, &fixed).unwrap(), vec![written()]);
}

#[test]
fn an_existing_file_is_appended_to_not_cut() {
    let dir = tempfile::tempdir().unwrap();
    let ndjson = dir.path().join("old.ndjson");
    fs::write(&ndjson, "{\"id\":\"old\"}").unwrap();
    let json_path = dir.path().join("old.json");
    fs::write(&json_path, "[\n  {\"id\": \"old\"}\n]\n\n").unwrap();
    for path in [&ndjson, &json_path] {
        let new = values(&sales(1, 1));
        write(&file_connector(path), &new);
        let (all, _) = read_all(&file_connector(path), None, 10);
        assert_eq!(
            all,
            vec![json!({"id": "old"}), new[0].clone()],
            "{}",
            path.display()
        );
    }
}

#[test]
fn a_folder_is_read_file_by_file_in_sorted_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("day-02.ndjson"), "{\"id\":\"3\"}\n{\"id\":\"4\"}\n").unwrap();
    fs::write(d.join("day-01.ndjson"), "{\"id\":\"1\"}\n{\"id\":\"2\"}\n").unwrap();
    fs::write(d.join("day-03.ndjson"), "{\"id\":\"5\"}\n").unwrap();
    fs::write(d.join("other.ndjson"), "{\"id\":\"x\"}\n").unwrap();
    fs::write(d.join("day-04.csv"), "id\ny\n").unwrap();
    fs::write(ledger_path(&d.join("day-01.ndjson")), "").unwrap();
    let c = connector(json!({ "path": d, "glob": "day-*.ndjson" }));

    let page = read(&c, None, 3);
    let ids: Vec<&str> = page
        .records
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["1", "2", "3"]);
    assert!(page.has_more);
    assert_eq!(
        page.cursor,
        Some(json!({"file": "day-02.ndjson", "offset": 11}))
    );
    let (rest, cursor) = read_all(&c, page.cursor, 3);
    assert_eq!(rest, vec![json!({"id": "4"}), json!({"id": "5"})]);
    assert_eq!(cursor, Some(json!({"file": "day-03.ndjson", "offset": 11})));

    // A new file sorting later is picked up; the cursor's file may have been removed.
    fs::write(d.join("day-05.ndjson"), "{\"id\":\"6\"}\n").unwrap();
    fs::remove_file(d.join("day-03.ndjson")).unwrap();
    let (new, _) = read_all(&c, cursor, 3);
    assert_eq!(new, vec![json!({"id": "6"})]);

    // Without a glob a folder means every file with the format's extensions.
    let all = connector(json!({ "path": d }));
    let (every, _) = read_all(&all, None, 100);
    assert_eq!(every.len(), 6);
}

#[test]
fn a_bad_record_is_reported_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "bad.ndjson",
            "{\"id\":\"1\"}\n\n{\"id\": oops}\n{\"id\":\"3\"}\n",
            3,
        ),
        ("bad.csv", "id,totals\n1,{}\n2,{oops}\n", 3),
        (
            "bad.json",
            "[\n{\"id\":\"1\"},\n{\"id\":\"2\"}\n,\n\n{\"id\":tru}]",
            6,
        ),
        ("notarray.json", "\n{\"id\":\"1\"}", 2),
        ("scalar.ndjson", "{\"id\":\"1\"}\n[1,2]\n", 2),
    ];
    for (name, content, line) in cases {
        let path = dir.path().join(name);
        fs::write(&path, content).unwrap();
        let c = file_connector(&path);
        let err = Source::read(
            &c,
            &ReadRequest {
                stream: "sales".into(),
                page_size: 10,
                ..ReadRequest::default()
            },
        )
        .unwrap_err();
        let ConnectorError::Permanent(message) = err else {
            panic!("{name}: expected a permanent error, got {err:?}");
        };
        assert!(message.contains(name), "{message}");
        assert!(
            message.contains(&format!("line {line}:")),
            "{name}: {message}"
        );
    }
}

#[test]
fn another_stream_or_a_stale_cursor_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.ndjson");
    fs::write(&path, "{\"id\":\"1\"}\n").unwrap();
    let c = connector(json!({ "path": path, "stream": "products" }));
    let wrong = ReadRequest {
        stream: "sales".into(),
        page_size: 1,
        ..ReadRequest::default()
    };
    assert!(matches!(
        Source::read(&c, &wrong),
        Err(ConnectorError::Config(_))
    ));
    let request = WriteRequest {
        stream: "sales".into(),
        ..WriteRequest::default()
    };
    assert!(matches!(
        Sink::write(&c, &request, &[json!({})]),
        Err(ConnectorError::Config(_))
    ));
    let right = ReadRequest {
        stream: "products".into(),
        page_size: 1,
        ..ReadRequest::default()
    };
    assert_eq!(Source::read(&c, &right).unwrap().records.len(), 1);
    let beyond = ReadRequest {
        cursor: Some(json!({"file": "p.ndjson", "offset": 999})),
        ..right.clone()
    };
    assert!(matches!(
        Source::read(&c, &beyond),
        Err(ConnectorError::Permanent(_))
    ));
    let other = ReadRequest {
        cursor: Some(json!({"file": "q.ndjson", "offset": 0})),
        ..right
    };
    assert!(matches!(
        Source::read(&c, &other),
        Err(ConnectorError::Permanent(_))
    ));
}

#[test]
fn page_size_in_the_config_caps_the_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.ndjson");
    write(&file_connector(&path), &values(&sales(1, 5)));
    let c = connector(json!({ "path": path, "page_size": 2 }));
    let page = read(&c, None, 500);
    assert_eq!(page.records.len(), 2);
    assert!(page.has_more);
}

#[test]
fn csv_flattening_is_readable_for_people() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("look.csv");
    write(&file_connector(&path), &values(&sales(7, 1)));
    let mut rows = csv::Reader::from_path(&path).unwrap();
    let header = rows.headers().unwrap().clone();
    let row = rows.records().next().unwrap().unwrap();
    let cell = |name: &str| row[header.iter().position(|h| h == name).unwrap()].to_string();
    assert_eq!(cell("id"), "demo:S1:R1:7");
    assert_eq!(cell("business_day"), "2026-02-01");
    assert_eq!(cell("currency"), "EUR");
    assert_eq!(cell("cancels"), "null");
    assert_eq!(cell("raw_id"), "null");
    let totals: Value = serde_json::from_str(&cell("totals")).unwrap();
    assert_eq!(totals["gross"], json!("3.57"));
}

fn write_err(c: &GenericConnector, records: &[Value]) -> ConnectorError {
    let request = WriteRequest {
        stream: "sales".into(),
        idempotency_keys: records
            .iter()
            .map(|r| format!("key:{}", r["id"].as_str().unwrap()))
            .collect(),
        ..WriteRequest::default()
    };
    Sink::write(c, &request, records).expect_err("the output is refused")
}

#[test]
fn a_deleted_output_with_its_ledger_left_behind_starts_afresh_and_keeps_the_old_ledger() {
    for format in ["ndjson", "csv", "json"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("out.{format}"));
        let batch = values(&sales(1, 3));
        assert_eq!(write(&file_connector(&path), &batch), vec![written(); 3]);

        // The user deletes the output (and the pipeline's state), not the sidecar.
        fs::remove_file(&path).unwrap();
        let c = file_connector(&path);
        assert_eq!(
            write(&c, &batch),
            vec![written(); 3],
            "{format}: written again"
        );
        assert_eq!(read_all(&c, None, 10).0.len(), 3, "{format}");
        let stale: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with(&format!("out.{format}.posbridge-ledger.stale-")))
            .collect();
        assert_eq!(
            stale.len(),
            1,
            "{format}: the old ledger is kept: {stale:?}"
        );
        // And from then on, the fresh ledger dedups as before.
        assert_eq!(write(&c, &batch), vec![duplicate(); 3]);
    }
}

#[test]
fn a_deleted_output_is_noticed_by_an_open_sink_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.ndjson");
    let c = file_connector(&path);
    assert_eq!(write(&c, &values(&sales(1, 2))), vec![written(); 2]);
    fs::remove_file(&path).unwrap();
    assert_eq!(write(&c, &values(&sales(1, 2))), vec![written(); 2]);
    assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 2);
}

#[test]
fn an_output_shorter_than_its_ledger_says_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.ndjson");
    write(&file_connector(&path), &values(&sales(1, 3)));
    let text = fs::read_to_string(&path).unwrap();
    let first_line = text.lines().next().unwrap().len() + 1;
    fs::write(&path, &text[..first_line]).unwrap();
    let before = fs::read(&path).unwrap();

    let e = write_err(&file_connector(&path), &values(&sales(1, 4)));
    let ConnectorError::Permanent(m) = &e else {
        panic!("expected a permanent error, got {e:?}")
    };
    assert!(
        m.contains(&format!("the file has {first_line} bytes")),
        "{m}"
    );
    assert!(
        m.contains("posbridge-ledger") && m.contains("Restore the file") && m.contains("delete it"),
        "{m}"
    );
    assert_eq!(
        fs::read(&path).unwrap(),
        before,
        "nothing was written or cut"
    );
}

#[test]
fn an_output_whose_content_differs_from_what_was_written_is_refused() {
    for format in ["ndjson", "json"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("out.{format}"));
        write(&file_connector(&path), &values(&sales(1, 2)));
        write(&file_connector(&path), &values(&sales(3, 2)));
        // Someone replaces the file with one of the same length or longer.
        let mut other = fs::read(&path).unwrap();
        let n = other.len();
        other[n - 5] ^= 0x20;
        other.extend_from_slice(b"\n");
        fs::write(&path, &other).unwrap();

        let e = write_err(&file_connector(&path), &values(&sales(5, 1)));
        assert!(
            matches!(&e, ConnectorError::Permanent(m) if m.contains("differ from what posbridge wrote")),
            "{format}: {e:?}"
        );
        assert_eq!(
            fs::read(&path).unwrap(),
            other,
            "{format}: the foreign file is not cut"
        );
    }
}

#[test]
fn ndjson_lines_pass_through_the_source_and_the_sink_unparsed() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    // Keys out of order, spaces and a CRLF: the lines are handed on as they are, trimmed.
    let lines = [
        r#"{"z":1, "id":"a","totals":{"gross":"1.10"}}"#,
        r#"{"id":"b","note":"Ä \"q\""}"#,
        r#"{"id":"c"}"#,
    ];
    fs::write(
        &input,
        format!("{}\r\n\n{}\n{}\n", lines[0], lines[1], lines[2]),
    )
    .unwrap();
    let source = file_connector(&input);
    let request = ReadRequest {
        stream: "sales".into(),
        page_size: 2,
        ..ReadRequest::default()
    };
    let page = source.read_ndjson(&request).unwrap();
    assert_eq!(page.count, 2);
    assert!(page.has_more);
    assert_eq!(
        page.records,
        format!("{}\n{}\n", lines[0], lines[1]).as_bytes()
    );
    // The same cursor as the parsed read.
    assert_eq!(page.cursor, Source::read(&source, &request).unwrap().cursor);
    let rest = source
        .read_ndjson(&ReadRequest {
            cursor: page.cursor.clone(),
            ..request.clone()
        })
        .unwrap();
    assert_eq!((rest.count, rest.has_more), (1, false));
    assert_eq!(rest.records, format!("{}\n", lines[2]).as_bytes());

    // The sink writes the lines through; a line that is no object is refused on its own.
    let output = dir.path().join("out.ndjson");
    let batch = format!("{}\n{}\n[1]\n", lines[0], lines[1]);
    let request = WriteRequest {
        stream: "sales".into(),
        idempotency_keys: vec!["k1".into(), "k2".into(), "k3".into()],
        ..WriteRequest::default()
    };
    let outcomes = file_connector(&output)
        .write_ndjson(&request, batch.as_bytes())
        .unwrap();
    assert_eq!(outcomes[..2], [written(), written()]);
    assert!(matches!(outcomes[2], RecordOutcome::Rejected { .. }));
    let expected = format!("{}\n{}\n", lines[0], lines[1]);
    assert_eq!(fs::read_to_string(&output).unwrap(), expected);

    // After a restart the keys are found again (filter, then the ledger): nothing twice.
    let again = file_connector(&output)
        .write_ndjson(&request, batch.as_bytes())
        .unwrap();
    assert_eq!(again[..2], [duplicate(), duplicate()]);
    assert_eq!(fs::read_to_string(&output).unwrap(), expected);
}

/// A batch whose lines the host parsed already (`lines_checked`) is written through unchecked;
/// without the promise every line is checked, and one that is no JSON object is refused.
#[test]
fn lines_the_host_checked_are_not_checked_again() {
    let dir = tempfile::tempdir().unwrap();
    // Not JSON at all: only a sink that checks can tell.
    let batch = "{\"id\":\"a\"}\n{oops\n";
    let request = WriteRequest {
        stream: "sales".into(),
        idempotency_keys: vec!["k1".into(), "k2".into()],
        ..WriteRequest::default()
    };
    let checked = dir.path().join("checked.ndjson");
    let outcomes = file_connector(&checked)
        .write_ndjson(&request, batch.as_bytes())
        .unwrap();
    assert_eq!(outcomes[0], written());
    assert!(
        matches!(&outcomes[1], RecordOutcome::Rejected { reason } if reason.contains("not valid JSON")),
        "{outcomes:?}"
    );
    assert_eq!(fs::read_to_string(&checked).unwrap(), "{\"id\":\"a\"}\n");

    let trusted = dir.path().join("trusted.ndjson");
    let request = WriteRequest {
        lines_checked: true,
        ..request
    };
    let outcomes = file_connector(&trusted)
        .write_ndjson(&request, batch.as_bytes())
        .unwrap();
    assert_eq!(outcomes, [written(), written()]);
    assert_eq!(fs::read_to_string(&trusted).unwrap(), batch);
}

/// A batch that is exactly its lines, each with its newline, is appended as it came; any other
/// (a blank line, spaces or `\r` around a line, a record not written, an output that does not
/// end with a newline) is joined line by line. Either way the file and its ledger agree: a
/// restart finds every key and cuts nothing off.
#[test]
fn batches_are_appended_as_sent_or_joined_line_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.ndjson");
    // A foreign file without its last newline.
    fs::write(&output, "{\"id\":\"old\"}").unwrap();
    let request = |keys: &[&str]| WriteRequest {
        stream: "sales".into(),
        idempotency_keys: keys.iter().map(|k| k.to_string()).collect(),
        lines_checked: true,
        ..WriteRequest::default()
    };
    let mut expected = String::from("{\"id\":\"old\"}\n");
    let batches: [(&[&str], &str, &str); 5] = [
        // After the foreign tail: joined, with the newline it lacked.
        (&["a"], "{\"id\":\"a\"}\n", "{\"id\":\"a\"}\n"),
        // Exactly its lines: as it came.
        (
            &["b", "c"],
            "{\"id\":\"b\"}\n{\"id\":\"c\"}\n",
            "{\"id\":\"b\"}\n{\"id\":\"c\"}\n",
        ),
        // A blank line, a `\r`, spaces: the lines alone.
        (
            &["d", "e"],
            "{\"id\":\"d\"}\r\n\n  {\"id\":\"e\"}\n",
            "{\"id\":\"d\"}\n{\"id\":\"e\"}\n",
        ),
        // One written before, one twice in the batch: the new one once.
        (
            &["c", "f", "f"],
            "{\"id\":\"c\"}\n{\"id\":\"f\"}\n{\"id\":\"f\"}\n",
            "{\"id\":\"f\"}\n",
        ),
        // No newline after the last line.
        (&["g"], "{\"id\":\"g\"}", "{\"id\":\"g\"}\n"),
    ];
    for (keys, batch, appended) in batches {
        file_connector(&output)
            .write_ndjson(&request(keys), batch.as_bytes())
            .unwrap();
        expected.push_str(appended);
        assert_eq!(fs::read_to_string(&output).unwrap(), expected, "{batch:?}");
    }
    let keys = ["a", "b", "c", "d", "e", "f", "g"];
    let again = file_connector(&output)
        .write_ndjson(&request(&keys), "{}\n".repeat(keys.len()).as_bytes())
        .unwrap();
    assert_eq!(again, vec![duplicate(); keys.len()]);
    assert_eq!(fs::read_to_string(&output).unwrap(), expected);
}

#[test]
fn a_bad_line_read_as_ndjson_is_reported_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    for (content, line, what) in [
        ("{\"id\":\"1\"}\n\n{\"id\": oops}\n", 3, "not valid JSON"),
        ("{\"id\":\"1\"}\n[1,2]\n", 2, "found an array"),
    ] {
        let path = dir.path().join("bad.ndjson");
        fs::write(&path, content).unwrap();
        let err = file_connector(&path)
            .read_ndjson(&ReadRequest {
                stream: "sales".into(),
                page_size: 10,
                ..ReadRequest::default()
            })
            .unwrap_err();
        let ConnectorError::Permanent(message) = err else {
            panic!("expected a permanent error, got {err:?}");
        };
        assert!(message.contains("bad.ndjson"), "{message}");
        assert!(message.contains(&format!("line {line}:")), "{message}");
        assert!(message.contains(what), "{message}");
    }
}

/// When the host says it parses every line (`host_checks_lines`), a terminated line that opens
/// an object is handed on unchecked; what the check is still needed for keeps it: a last line
/// without its newline (complete or not), and a line that does not open an object.
#[test]
fn lines_the_host_checks_are_handed_on_unchecked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.ndjson");
    let request = |host_checks_lines| ReadRequest {
        stream: "sales".into(),
        page_size: 10,
        host_checks_lines,
        ..ReadRequest::default()
    };
    let read = |content: &str, host_checks_lines| {
        fs::write(&path, content).unwrap();
        file_connector(&path).read_ndjson(&request(host_checks_lines))
    };

    // Broken inside an object: the source's own check reports it, the unchecked read hands
    // it on for the host to refuse.
    let broken = "{\"id\":\"1\"}\n{\"id\": oops}\n";
    let message = read(broken, false).unwrap_err().to_string();
    assert!(
        message.contains("line 2:") && message.contains("not valid JSON"),
        "{message}"
    );
    let page = read(broken, true).unwrap();
    assert_eq!(
        (page.count, page.records.as_slice()),
        (2, broken.as_bytes())
    );

    // A last line still being written waits in both readings; once whole, it comes.
    for host_checks_lines in [false, true] {
        let page = read("{\"id\":\"1\"}\n{\"id\": \"2", host_checks_lines).unwrap();
        assert_eq!(page.count, 1, "host_checks_lines {host_checks_lines}");
        let page = read("{\"id\":\"1\"}\n{\"id\": \"2\"}", host_checks_lines).unwrap();
        assert_eq!(page.count, 2, "host_checks_lines {host_checks_lines}");
    }

    // A line that does not open an object gets the same error either way.
    for (content, what) in [
        ("{\"id\":\"1\"}\n[1,2]\n", "found an array"),
        ("{\"id\":\"1\"}\noops\n", "not valid JSON"),
    ] {
        for host_checks_lines in [false, true] {
            let message = read(content, host_checks_lines).unwrap_err().to_string();
            assert!(
                message.contains("line 2:") && message.contains(what),
                "host_checks_lines {host_checks_lines}: {message}"
            );
        }
    }
}
