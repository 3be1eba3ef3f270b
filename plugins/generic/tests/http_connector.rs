//! The HTTP source and sink against an in-memory endpoint (a closure standing in for the host's
//! HTTP capability): every pagination kind, resuming, the field map, outcomes and signatures.

use std::cell::RefCell;
use std::collections::HashMap;

use posbridge_generic::http::{verify, HttpConfig, HttpSink, HttpSource};
use posbridge_plugin_api::{
    ConnectorError, HttpRequest, HttpResponse, Page, RecordOutcome, WriteRequest,
};
use serde_json::{json, Value};

fn config(v: Value) -> HttpConfig {
    serde_json::from_value(v).expect("http config parses")
}

fn answer(status: u16, body: Value) -> Result<HttpResponse, ConnectorError> {
    Ok(HttpResponse {
        status,
        headers: vec![],
        body: body.to_string().into_bytes(),
    })
}

/// The query parameters of a URL (values are plain in these tests, or percent-encoded tokens).
fn query(url: &str) -> HashMap<String, String> {
    url.split_once('?')
        .map(|(_, q)| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.into(), v.into()))
                .collect()
        })
        .unwrap_or_default()
}

fn vendor_records(n: usize) -> Vec<Value> {
    (0..n).map(|i| json!({ "no": i, "amount": 1.5 })).collect()
}

/// Reads until `has_more` is false, starting at `cursor`; returns the records and the last cursor.
fn drain(
    source: &HttpSource,
    client: &dyn Fn(HttpRequest) -> Result<HttpResponse, ConnectorError>,
    mut cursor: Option<Value>,
    page_size: usize,
) -> (Vec<Value>, Option<Value>) {
    let mut out = Vec::new();
    for _ in 0..100 {
        let Page {
            records,
            cursor: next,
            has_more,
        } = source
            .read_page(&client, "sales", cursor.as_ref(), page_size)
            .unwrap();
        out.extend(records);
        cursor = next;
        if !has_more {
            return (out, cursor);
        }
    }
    panic!("the source never said it was done");
}

fn numbers(records: &[Value]) -> Vec<u64> {
    records.iter().map(|r| r["no"].as_u64().unwrap()).collect()
}

#[test]
fn page_pagination_reads_everything_and_later_picks_up_appended_records() {
    let data = RefCell::new(vendor_records(23));
    let requests = RefCell::new(Vec::<String>::new());
    let api = |r: HttpRequest| {
        requests.borrow_mut().push(r.url.clone());
        let q = query(&r.url);
        let page: usize = q["p"].parse().unwrap();
        let size: usize = q["per_page"].parse().unwrap();
        let items: Vec<Value> = data
            .borrow()
            .iter()
            .skip(page * size)
            .take(size)
            .cloned()
            .collect();
        answer(200, json!({ "data": { "items": items } }))
    };
    let source = HttpSource::new(
        config(
            json!({ "url": "http://api.test/sales?store=1", "pagination": {
            "kind": "page", "page_param": "p", "size_param": "per_page", "page_size": 10,
            "start_page": 0, "records_path": "/data/items" } }),
        ),
        "sales",
        None,
    )
    .unwrap();
    let (records, cursor) = drain(&source, &api, None, 500);
    assert_eq!(numbers(&records), (0..23).collect::<Vec<_>>());
    assert_eq!(
        requests.borrow()[0],
        "http://api.test/sales?store=1&p=0&per_page=10"
    );
    assert_eq!(
        cursor,
        Some(json!({ "page": 2, "page_size": 10, "skip": 3 }))
    );
    // Records appended to the last, partial page and beyond are read on the next run, once.
    data.borrow_mut()
        .extend((23..31).map(|i| json!({ "no": i, "amount": 1 })));
    let (more, _) = drain(&source, &api, cursor, 500);
    assert_eq!(numbers(&more), (23..31).collect::<Vec<_>>());
}

#[test]
fn offset_pagination_with_a_host_page_smaller_than_the_vendors() {
    let data = vendor_records(25);
    let api = |r: HttpRequest| {
        let q = query(&r.url);
        let offset: usize = q["offset"].parse().unwrap();
        let limit: usize = q["limit"].parse().unwrap();
        answer(
            200,
            Value::Array(data.iter().skip(offset).take(limit).cloned().collect()),
        )
    };
    let source = HttpSource::new(
        config(json!({ "url": "http://api.test/sales", "pagination": { "kind": "offset", "page_size": 10 } })),
        "sales",
        None,
    )
    .unwrap();
    let (records, cursor) = drain(&source, &api, None, 4);
    assert_eq!(numbers(&records), (0..25).collect::<Vec<_>>());
    assert_eq!(cursor, Some(json!({ "offset": 25 })));
}

#[test]
fn cursor_pagination_follows_tokens_and_resumes_inside_the_last_page() {
    // Pages of 4 with opaque tokens that need encoding.
    let data = RefCell::new(vendor_records(10));
    let api = |r: HttpRequest| {
        let q = query(&r.url);
        let start: usize = match q.get("after") {
            None => 0,
            Some(t) => t.trim_start_matches("tok%2B").parse().unwrap(),
        };
        let all = data.borrow();
        let items: Vec<Value> = all.iter().skip(start).take(4).cloned().collect();
        let next = (start + 4 < all.len()).then(|| format!("tok+{}", start + 4));
        answer(200, json!({ "results": items, "meta": { "next": next } }))
    };
    let source = HttpSource::new(
        config(json!({ "url": "http://api.test/sales", "pagination": {
            "kind": "cursor", "cursor_param": "after", "cursor_path": "/meta/next",
            "records_path": "/results", "page_size": 4 } })),
        "sales",
        None,
    )
    .unwrap();
    let (records, cursor) = drain(&source, &api, None, 3);
    assert_eq!(numbers(&records), (0..10).collect::<Vec<_>>());
    assert_eq!(cursor, Some(json!({ "cursor": "tok+8", "skip": 2 })));
    data.borrow_mut()
        .extend((10..13).map(|i| json!({ "no": i })));
    let (more, _) = drain(&source, &api, cursor, 100);
    assert_eq!(numbers(&more), vec![10, 11, 12]);
}

#[test]
fn the_field_map_builds_canonical_sales_that_validate() {
    let api = |_r: HttpRequest| {
        answer(
            200,
            serde_json::from_str(
                r#"[{"uuid": "r-1", "store": "S1", "till": "K2", "no": 77, "at": "2026-02-01T10:00:00+01:00",
                    "day": "2026-02-01", "sum": {"net": 3.22, "tax": 0.35, "gross": 3.57},
                    "items": [{"title": "Milch", "qty": 2, "price": 1.19, "vat": 7, "net": 2.22, "tax": 0.16, "gross": 2.38},
                              {"title": "Tasche", "qty": 1, "price": 1.19, "vat": 19, "net": 1.00, "tax": 0.19, "gross": 1.19}],
                    "vat": [{"rate": 7, "net": 2.22, "tax": 0.16, "gross": 2.38}, {"rate": 19, "net": 1.00, "tax": 0.19, "gross": 1.19}],
                    "paid": [{"how": "cash", "amount": 3.57}]}]"#,
            )
            .unwrap(),
        )
    };
    let source = HttpSource::new(
        config(json!({ "url": "http://api.test/receipts", "field_map": {
            "id": "/uuid", "source_system": { "const": "acme" }, "store_id": "/store", "register_id": "/till",
            "receipt_number": "/no", "kind": { "const": "sale" }, "business_day": "/day", "timestamp": "/at",
            "currency": { "const": "EUR" },
            "totals.net": "/sum/net", "totals.tax": "/sum/tax", "totals.gross": "/sum/gross",
            "lines": { "each": "/items", "map": { "name": "/title", "product_id": "/nope", "quantity": "/qty",
                "unit_price": "/price", "tax_rate": "/vat", "net": "/net", "tax": "/tax", "gross": "/gross" } },
            "taxes": "/vat",
            "payments": { "each": "/paid", "map": { "method": "/how", "amount": "/amount", "currency": { "const": "EUR" } } }
        } })),
        "sales",
        None,
    )
    .unwrap();
    let page = source.read_page(&api, "sales", None, 10).unwrap();
    assert_eq!(page.records.len(), 1);
    assert_eq!(page.records[0]["totals"]["gross"], json!("3.57"));
    assert_eq!(page.records[0]["lines"][1]["net"], json!("1.0"));
    let sale: posbridge_plugin_api::model::Sale =
        serde_json::from_value(page.records[0].clone()).expect("a canonical sale");
    assert!(sale.validate().is_empty(), "{:?}", sale.validate());
    assert_eq!(sale.receipt_number, "77");
}

#[test]
fn error_statuses_and_bad_shapes_are_typed() {
    let source = HttpSource::new(
        config(json!({ "url": "http://api.test/x", "pagination": { "records_path": "/data" } })),
        "sales",
        None,
    )
    .unwrap();
    let read = |status: u16, body: Value| {
        source
            .read_page(
                &move |_r: HttpRequest| answer(status, body.clone()),
                "sales",
                None,
                10,
            )
            .map_err(ConnectorError::from)
    };
    assert!(matches!(
        read(503, json!({})),
        Err(ConnectorError::Transient(_))
    ));
    assert!(matches!(
        read(429, json!({})),
        Err(ConnectorError::RateLimited { .. })
    ));
    assert!(matches!(read(401, json!({})), Err(ConnectorError::Auth(_))));
    assert!(matches!(
        read(404, json!({})),
        Err(ConnectorError::Permanent(_))
    ));
    assert!(matches!(
        read(200, json!({ "data": 5 })),
        Err(ConnectorError::Permanent(_))
    ));
    assert!(matches!(
        read(200, json!({ "data": [1] })),
        Err(ConnectorError::Permanent(_))
    ));
    assert_eq!(read(200, json!({})).unwrap().records, Vec::<Value>::new());
}

fn sink(extra: Value) -> HttpSink {
    let mut c = json!({ "url": "http://hooks.test/in", "hmac_secret": "s3cret", "auth": { "bearer": "tok" } });
    c.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    HttpSink::new(config(c), "sales").unwrap()
}

fn batch() -> (WriteRequest, Vec<Value>) {
    let request = WriteRequest {
        stream: "sales".into(),
        idempotency_keys: vec!["k1".into(), "k2".into()],
        ..WriteRequest::default()
    };
    (request, vec![json!({ "id": "a" }), json!({ "id": "b" })])
}

#[test]
fn the_sink_posts_a_signed_batch_a_receiver_can_verify() {
    let seen = RefCell::new(Vec::<HttpRequest>::new());
    let api = |r: HttpRequest| {
        seen.borrow_mut().push(r);
        answer(200, json!({ "ok": true }))
    };
    let (request, records) = batch();
    let out = sink(json!({ "signature_header": "X-Sig" }))
        .write(&api, &request, &records, 1_770_000_000)
        .unwrap();
    assert_eq!(out, vec![RecordOutcome::Written { external_id: None }; 2]);
    let r = &seen.borrow()[0];
    assert_eq!(r.method, "POST");
    let header = |n: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("Authorization").as_deref(), Some("Bearer tok"));
    assert_eq!(header("Content-Type").as_deref(), Some("application/json"));
    let sig = header("X-Sig").expect("signed");
    assert!(sig.starts_with("t=1770000000,v1="), "{sig}");
    assert_eq!(verify("s3cret", &sig, &r.body, 1_770_000_010, 300), Ok(()));
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        body,
        json!({ "stream": "sales", "records": records, "idempotency_keys": ["k1", "k2"] })
    );
}

#[test]
fn the_receivers_answer_decides_the_outcomes() {
    let (request, records) = batch();
    let write = |status: u16, body: Value| {
        sink(json!({}))
            .write(
                &move |_r: HttpRequest| answer(status, body.clone()),
                &request,
                &records,
                0,
            )
            .map_err(ConnectorError::from)
    };
    assert_eq!(
        write(409, json!({})).unwrap(),
        vec![RecordOutcome::Duplicate { external_id: None }; 2]
    );
    let rejected = write(422, json!({ "error": "bad totals" })).unwrap();
    assert!(
        matches!(&rejected[0], RecordOutcome::Rejected { reason } if reason.contains("422") && reason.contains("bad totals"))
    );
    let per_record = write(
        207,
        json!({ "results": [{ "status": "written", "external_id": "x-1" }, { "status": "rejected", "reason": "no store" }] }),
    )
    .unwrap();
    assert_eq!(
        per_record,
        vec![
            RecordOutcome::Written {
                external_id: Some("x-1".into())
            },
            RecordOutcome::Rejected {
                reason: "no store".into()
            }
        ]
    );
    assert!(matches!(
        write(200, json!({ "results": [{ "status": "written" }] })),
        Err(ConnectorError::Permanent(_))
    ));
    // A receiver that is down or rate limiting: every record is sent again, none rejected.
    let down = write(500, json!({})).unwrap();
    assert_eq!(down.len(), 2);
    assert!(
        matches!(&down[0], RecordOutcome::Retry { reason, retry_after_ms: None } if reason.contains("500")),
        "{down:?}"
    );
    assert!(down.iter().all(RecordOutcome::is_retry));
    let limited = write(429, json!({})).unwrap();
    assert!(limited.iter().all(RecordOutcome::is_retry), "{limited:?}");
    // A receiver may ask for single records again.
    let partial = write(
        207,
        json!({ "results": [{ "status": "written" }, { "status": "retry", "reason": "busy", "retry_after_ms": 500 }] }),
    )
    .unwrap();
    assert_eq!(
        partial[1],
        RecordOutcome::Retry {
            reason: "busy".into(),
            retry_after_ms: Some(500)
        }
    );
    assert!(matches!(
        write(401, json!({})),
        Err(ConnectorError::Auth(_))
    ));
    assert!(matches!(
        write(302, json!({})),
        Err(ConnectorError::Permanent(_))
    ));
}

#[test]
fn the_sink_needs_a_secret_and_matching_keys() {
    let never =
        |_r: HttpRequest| -> Result<HttpResponse, ConnectorError> { panic!("no request expected") };
    let unsigned =
        HttpSink::new(config(json!({ "url": "http://hooks.test/in" })), "sales").unwrap();
    let (request, records) = batch();
    assert!(matches!(
        unsigned
            .write(&never, &request, &records, 0)
            .map_err(ConnectorError::from),
        Err(ConnectorError::Config(_))
    ));
    let mut short = request.clone();
    short.idempotency_keys.pop();
    assert!(matches!(
        sink(json!({}))
            .write(&never, &short, &records, 0)
            .map_err(ConnectorError::from),
        Err(ConnectorError::Bug(_))
    ));
    let empty = WriteRequest {
        stream: "sales".into(),
        ..WriteRequest::default()
    };
    assert_eq!(
        sink(json!({})).write(&never, &empty, &[], 0).unwrap(),
        vec![]
    );
}
