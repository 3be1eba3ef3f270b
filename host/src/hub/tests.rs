//! Unit tests of the hub: storage idempotency, reading in order, the export figures and formats.

use std::str::FromStr;

use chrono::NaiveDate;
use posbridge_plugin_api::model::{FiscalSignature, Sale, SaleKind, TseSignature};
use posbridge_plugin_api::RecordOutcome;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::*;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn day(n: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 2, n).unwrap()
}

/// `Sale::example()` (milk 2 × 1.19 at 7 %, bag 1 × 1.19 at 19 %: 3.57) with every quantity and
/// amount multiplied by `k`, under another receipt number, day and kind.
fn sale(receipt: &str, on: u32, kind: SaleKind, k: i64) -> Sale {
    let k = Decimal::from(k);
    let mut s = Sale::example();
    s.receipt_number = receipt.into();
    s.id = Sale::make_id("demo", "S1", "R1", receipt);
    s.business_day = day(on);
    s.timestamp = chrono::DateTime::parse_from_rfc3339(&format!("2026-02-{on:02}T10:00:00+01:00"))
        .unwrap()
        + chrono::Duration::minutes(receipt.len() as i64);
    s.kind = kind;
    if kind == SaleKind::Cancellation {
        s.cancels = Some("1".into());
    }
    for l in &mut s.lines {
        l.quantity *= k;
        l.net *= k;
        l.tax *= k;
        l.gross *= k;
    }
    for t in &mut s.taxes {
        t.net *= k;
        t.tax *= k;
        t.gross *= k;
    }
    s.totals.net *= k;
    s.totals.tax *= k;
    s.totals.gross *= k;
    for p in &mut s.payments {
        p.amount *= k;
    }
    assert!(s.validate().is_empty(), "{:?}", s.validate());
    s
}

fn put_sales(
    hub: &HubStore,
    store: Option<&str>,
    sales: &[Sale],
    keys: &[&str],
) -> Vec<RecordOutcome> {
    let records: Vec<Value> = sales
        .iter()
        .map(|s| serde_json::to_value(s).unwrap())
        .collect();
    let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    hub.put("sales", store, &records, &keys).unwrap()
}

fn written(o: &RecordOutcome) -> bool {
    matches!(o, RecordOutcome::Written { .. })
}

fn duplicate(o: &RecordOutcome) -> bool {
    matches!(o, RecordOutcome::Duplicate { .. })
}

#[test]
fn the_same_key_or_the_same_sale_twice_is_stored_once() {
    let hub = HubStore::open_in_memory().unwrap();
    let a = sale("1", 1, SaleKind::Sale, 1);
    let b = sale("2", 1, SaleKind::Sale, 2);
    let out = put_sales(&hub, None, &[a.clone(), b.clone()], &["ka", "kb"]);
    assert!(out.iter().all(written), "{out:?}");
    // Same keys again: duplicates, nothing stored.
    let out = put_sales(&hub, None, &[a.clone(), b.clone()], &["ka", "kb"]);
    assert!(out.iter().all(duplicate), "{out:?}");
    // Another key (another pipeline) with the same content: still one row.
    let out = put_sales(&hub, None, std::slice::from_ref(&a), &["other"]);
    assert!(duplicate(&out[0]), "{out:?}");
    assert_eq!(hub.count("sales", "S1").unwrap(), 2);
    // A changed sale under a new key replaces the row and is read again (higher seq).
    let before = hub.read_page("sales", "S1", 0, 10, None, None).unwrap();
    let mut a2 = a.clone();
    a2.cashier = Some(posbridge_plugin_api::model::Party {
        id: Some("C1".into()),
        name: None,
    });
    let out = put_sales(&hub, None, &[a2.clone()], &["ka2"]);
    assert!(written(&out[0]), "{out:?}");
    let after = hub.read_page("sales", "S1", 0, 10, None, None).unwrap();
    assert_eq!(after.len(), 2);
    assert_eq!(after[1].record["id"], json!(a.id));
    assert!(after[1].seq > before[1].seq);
    assert_eq!(hub.sale_by_id("S1", &a.id).unwrap().unwrap(), a2);
}

#[test]
fn a_store_override_files_records_under_that_store() {
    let hub = HubStore::open_in_memory().unwrap();
    let a = sale("1", 1, SaleKind::Sale, 1);
    put_sales(&hub, Some("shop-7"), std::slice::from_ref(&a), &["k"]);
    assert_eq!(hub.count("sales", "S1").unwrap(), 0);
    assert_eq!(hub.count("sales", "shop-7").unwrap(), 1);
    // The canonical record itself is unchanged.
    assert_eq!(hub.sale_by_id("shop-7", &a.id).unwrap().unwrap(), a);
    // The same source record, under the same key, filed under another store is stored there
    // too; again under the first store it is a duplicate.
    let out = put_sales(&hub, Some("shop-8"), std::slice::from_ref(&a), &["k"]);
    assert!(written(&out[0]), "{out:?}");
    assert_eq!(hub.count("sales", "shop-8").unwrap(), 1);
    let out = put_sales(&hub, Some("shop-7"), std::slice::from_ref(&a), &["k"]);
    assert!(duplicate(&out[0]), "{out:?}");
    assert_eq!(hub.count("sales", "shop-7").unwrap(), 1);
}

#[test]
fn records_that_cannot_be_stored_are_rejected_with_the_reason() {
    let hub = HubStore::open_in_memory().unwrap();
    let mut bad = serde_json::to_value(sale("1", 1, SaleKind::Sale, 1)).unwrap();
    bad["totals"]["gross"] = json!("lots");
    let good = serde_json::to_value(sale("2", 1, SaleKind::Sale, 1)).unwrap();
    let out = hub
        .put("sales", None, &[bad, good], &["a".into(), "b".into()])
        .unwrap();
    match &out[0] {
        RecordOutcome::Rejected { reason } => {
            assert!(reason.contains("$.totals.gross"), "{reason}")
        }
        o => panic!("{o:?}"),
    }
    assert!(written(&out[1]));
    // A product names no store: it needs the sink's store_id.
    let product = json!({"id": "P1", "name": "Milch", "price": "1.19"});
    let out = hub
        .put("products", None, std::slice::from_ref(&product), &[])
        .unwrap();
    assert!(
        matches!(&out[0], RecordOutcome::Rejected { reason } if reason.contains("store_id")),
        "{out:?}"
    );
    let out = hub.put("products", Some("S1"), &[product], &[]).unwrap();
    assert!(written(&out[0]));
    let rows = hub.read_page("products", "S1", 0, 10, None, None).unwrap();
    assert_eq!(rows[0].record["name"], "Milch");
    // A stream the hub does not keep is a request error.
    let err = hub
        .put("balance_transactions", None, &[json!({})], &[])
        .unwrap_err();
    assert!(
        matches!(err, HubError::Invalid { ref field, .. } if field == "stream"),
        "{err}"
    );
}

#[test]
fn pages_follow_the_sequence_and_the_day_filter() {
    let hub = HubStore::open_in_memory().unwrap();
    let sales: Vec<Sale> = (1..=5)
        .map(|i| sale(&i.to_string(), i, SaleKind::Sale, 1))
        .collect();
    put_sales(&hub, None, &sales, &[]);
    let p1 = hub.read_page("sales", "S1", 0, 2, None, None).unwrap();
    let p2 = hub
        .read_page("sales", "S1", p1[1].seq, 2, None, None)
        .unwrap();
    let p3 = hub
        .read_page("sales", "S1", p2[1].seq, 2, None, None)
        .unwrap();
    let ids: Vec<&Value> = p1
        .iter()
        .chain(&p2)
        .chain(&p3)
        .map(|r| &r.record["id"])
        .collect();
    assert_eq!(ids.len(), 5);
    assert_eq!(ids[4], &json!(sales[4].id));
    let mid = hub
        .read_page("sales", "S1", 0, 10, Some(day(2)), Some(day(3)))
        .unwrap();
    assert_eq!(mid.len(), 2);
    assert!(hub
        .read_page("sales", "S2", 0, 10, None, None)
        .unwrap()
        .is_empty());
}

/// Receipts of one day: 2 sales (3.57 and 7.14), a refund (-3.57), a cancellation (-3.57),
/// a training receipt (10.71) and a null receipt; and a sale of the next day (3.57).
fn day_of_receipts(hub: &HubStore) -> Vec<Sale> {
    let mut null = sale("6", 1, SaleKind::NullReceipt, 0);
    null.lines.clear();
    null.taxes.clear();
    null.payments.clear();
    let sales = vec![
        sale("1", 1, SaleKind::Sale, 1),
        sale("22", 1, SaleKind::Sale, 2),
        sale("333", 1, SaleKind::Refund, -1),
        sale("4444", 1, SaleKind::Cancellation, -1),
        sale("55555", 1, SaleKind::Training, 3),
        null,
        sale("7", 2, SaleKind::Sale, 1),
    ];
    put_sales(hub, None, &sales, &[]);
    sales
}

#[test]
fn summary_figures_follow_the_definitions() {
    let hub = HubStore::open_in_memory().unwrap();
    day_of_receipts(&hub);
    let s = sales_summary(&hub, "S1", &Period::days(day(1), day(1))).unwrap();
    // Sales, refund and cancellation; not training, not the null receipt.
    assert_eq!(s.total_transactions, 4);
    assert_eq!(s.total_revenue, d("3.57")); // 3.57 + 7.14 - 3.57 - 3.57
                                            // Items per sale over the 2 sales: (3 + 6) / 2.
    assert_eq!((s.sales, s.items), (2, d("9")));
    assert_eq!(s.avg_basket_size, d("4.50"));
    assert_eq!(s.currency.as_deref(), Some("EUR"));
    // Milk: 2 + 4 - 2 - 2 = 2 sold, 2.38 + 4.76 - 2.38 - 2.38 = 2.38; bag: 1 sold, 1.19.
    assert_eq!(s.top_products.len(), 2);
    assert_eq!(s.top_products[0].name, "Bio-Vollmilch");
    assert_eq!(
        (s.top_products[0].sold, s.top_products[0].revenue),
        (d("2"), d("2.38"))
    );
    assert_eq!(
        (s.top_products[1].sold, s.top_products[1].revenue),
        (d("1"), d("1.19"))
    );
    // Both days.
    let s = sales_summary(&hub, "S1", &Period::days(day(1), day(2))).unwrap();
    assert_eq!((s.total_transactions, s.total_revenue), (5, d("7.14")));
    // An instant bound: the first day's receipts are at 10:00 + n minutes (+01:00).
    let p = Period::parse("2026-02-01T09:02:00Z", "2026-02-01T09:02:59Z").unwrap();
    let s = sales_summary(&hub, "S1", &p).unwrap();
    assert_eq!((s.total_transactions, s.total_revenue), (1, d("7.14")));
    // An empty period.
    let s = sales_summary(&hub, "S1", &Period::days(day(9), day(9))).unwrap();
    assert_eq!(
        (s.total_transactions, s.avg_basket_size),
        (0, Decimal::ZERO)
    );
}

#[test]
fn several_currencies_in_a_period_are_refused() {
    let hub = HubStore::open_in_memory().unwrap();
    let mut chf = sale("9", 1, SaleKind::Sale, 1);
    chf.currency = "CHF".into();
    chf.payments[0].currency = "CHF".into();
    put_sales(&hub, None, &[sale("1", 1, SaleKind::Sale, 1), chf], &[]);
    let err = sales_summary(&hub, "S1", &Period::days(day(1), day(1))).unwrap_err();
    assert!(err.to_string().contains("CHF, EUR"), "{err}");
}

#[test]
fn json_export_is_the_envelope_with_exact_money_and_csv_agrees() {
    let hub = HubStore::open_in_memory().unwrap();
    day_of_receipts(&hub);
    let period = Period::parse("2026-02-01", "2026-02-01").unwrap();
    let mut buf = Vec::new();
    export_sales_data(&hub, "S1", &period, ExportFormat::Json, &mut buf).unwrap();
    let text = String::from_utf8(buf).unwrap();
    // Numbers with two decimals, written as text.
    assert!(
        text.contains("\"totalRevenue\":3.57,\"totalRevenueExact\":\"3.57\""),
        "{text}"
    );
    assert!(text.contains("\"avgBasketSize\":4.50"), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["success"], true);
    assert_eq!(
        v["data"]["period"],
        json!({"from": "2026-02-01", "to": "2026-02-01"})
    );
    assert_eq!(v["data"]["summary"]["totalTransactions"], 4);
    assert_eq!(
        v["data"]["summary"]["topProducts"][0]["name"],
        "Bio-Vollmilch"
    );
    let tx = v["data"]["transactions"].as_array().unwrap();
    assert_eq!(tx.len(), 4);
    let sum: Decimal = tx
        .iter()
        .map(|t| d(t["totalExact"].as_str().unwrap()))
        .sum();
    assert_eq!(sum, d("3.57"));
    assert!(tx
        .iter()
        .all(|t| t["kind"] != "training" && t["kind"] != "null_receipt"));

    let mut buf = Vec::new();
    export_sales_data(&hub, "S1", &period, ExportFormat::Csv, &mut buf).unwrap();
    let mut r = csv::Reader::from_reader(buf.as_slice());
    assert_eq!(r.headers().unwrap().iter().collect::<Vec<_>>(), CSV_COLUMNS);
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 4);
    for (row, t) in rows.iter().zip(tx) {
        assert_eq!(row.get(0), t["id"].as_str());
        assert_eq!(row.get(11), t["totalExact"].as_str());
    }
    assert_eq!(
        ExportFormat::from_str("xml")
            .unwrap_err()
            .to_string()
            .split(':')
            .next(),
        Some("format")
    );
}

#[test]
fn receipts_are_found_by_id_or_unique_number_with_their_tse_block() {
    let hub = HubStore::open_in_memory().unwrap();
    let mut signed = sale("100", 1, SaleKind::Sale, 1);
    signed.fiscal = Some(FiscalSignature {
        tse: Some(TseSignature {
            serial_number: "SANDBOX-TSE-001".into(),
            signature: "c2lnbmF0dXJl".into(),
            signature_counter: 1337,
            transaction_number: 42,
            start: None,
            end: None,
        }),
        rksv: None,
    });
    let mut twin = sale("200", 1, SaleKind::Sale, 1);
    twin.register_id = "R2".into();
    twin.id = Sale::make_id("demo", "S1", "R2", "200");
    put_sales(
        &hub,
        None,
        &[
            signed.clone(),
            sale("200", 1, SaleKind::Sale, 1),
            twin.clone(),
        ],
        &[],
    );
    put_sales(&hub, Some("S2"), &[sale("300", 1, SaleKind::Sale, 1)], &[]);

    let all = StoreScope::All;
    let r = export_receipt_data(&hub, &all, &signed.id).unwrap();
    let v: Value = serde_json::from_str(&r.to_text()).unwrap();
    assert_eq!(v["receiptId"], json!(signed.id));
    assert_eq!(
        v["tse"],
        json!({"serialNumber": "SANDBOX-TSE-001", "signature": "c2lnbmF0dXJl",
               "transactionNumber": 42, "signatureCounter": 1337, "start": null, "end": null})
    );
    assert!(
        r.to_text()
            .contains("{\"rate\":7,\"net\":2.22,\"netExact\":\"2.22\",\"tax\":0.16"),
        "{}",
        r.to_text()
    );
    // By receipt number, unique in the scope.
    let v: Value =
        serde_json::from_str(&export_receipt_data(&hub, &all, "100").unwrap().to_text()).unwrap();
    assert_eq!(v["receiptId"], json!(signed.id));
    // No TSE: null with a reason.
    let v: Value =
        serde_json::from_str(&export_receipt_data(&hub, &all, "300").unwrap().to_text()).unwrap();
    assert_eq!(v["tse"], Value::Null);
    assert!(v["tseMissingReason"].is_string());
    assert_eq!(v["storeId"], "S2");
    // Two registers used the number 200: ambiguous, naming both ids.
    match export_receipt_data(&hub, &all, "200").unwrap_err() {
        HubError::Ambiguous { ids, .. } => assert_eq!(ids.len(), 2, "{ids:?}"),
        e => panic!("{e}"),
    }
    // Outside the caller's stores there is nothing.
    let only_s2 = StoreScope::Stores(vec!["S2".into()]);
    assert!(matches!(
        export_receipt_data(&hub, &only_s2, &signed.id),
        Err(HubError::NotFound(_))
    ));
    assert!(matches!(
        export_receipt_data(&hub, &all, "nope"),
        Err(HubError::NotFound(_))
    ));
    assert!(matches!(
        export_receipt_data(&hub, &all, " "),
        Err(HubError::Invalid { .. })
    ));
}

#[test]
fn a_second_connection_reads_while_the_first_is_busy_exporting() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubStore::open_sqlite(&dir.path().join("s.db")).unwrap();
    day_of_receipts(&hub);
    let other = hub.try_clone().unwrap();
    let period = Period::days(day(1), day(2));
    // While the first connection streams the transactions, the second one answers.
    let mut seen = 0;
    hub.for_each_sale("S1", &period, COUNTED_KINDS, |_| {
        seen += 1;
        assert_eq!(other.count("sales", "S1").unwrap(), 7);
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, 5);
    assert!(HubStore::open_in_memory().unwrap().try_clone().is_err());
}

#[test]
fn the_registry_opens_the_built_in_hub_on_the_state_database() {
    use crate::plugins::{OpenError, OpenOptions, Registry};
    use crate::state::StateLocation;
    use posbridge_plugin_api::{ReadRequest, WriteRequest};

    let reg = Registry::load(&[]);
    let entry = reg.entry("hub").unwrap();
    assert!(entry.is_built_in());
    assert_eq!(entry.manifest.kinds(), vec!["source", "sink"]);
    // The config is checked by its schema, with JSON paths.
    match reg.open(
        "hub",
        &json!({"store_id": 7, "colour": "red"}),
        OpenOptions::default(),
    ) {
        Err(OpenError::InvalidConfig { violations, .. }) => {
            let paths: Vec<&str> = violations.iter().map(|v| v.path.as_str()).collect();
            assert!(paths.contains(&"$.store_id"), "{paths:?}");
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a bad config opened"),
    }

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let opts = OpenOptions {
        state: Some(StateLocation::Sqlite(db.clone())),
        ..OpenOptions::default()
    };
    let sink = reg
        .open("hub", &json!({"store_id": "berlin"}), opts.clone())
        .unwrap();
    let records = vec![
        serde_json::to_value(sale("1", 1, SaleKind::Sale, 1)).unwrap(),
        serde_json::to_value(sale("2", 1, SaleKind::Refund, -1)).unwrap(),
    ];
    let req = WriteRequest {
        stream: "sales".into(),
        idempotency_keys: vec!["k1".into(), "k2".into()],
        ..WriteRequest::default()
    };
    let out = sink.write(&req, &records).unwrap();
    assert!(out.iter().all(written), "{out:?}");
    assert!(sink.write(&req, &records).unwrap().iter().all(duplicate));
    assert!(sink.check().unwrap().message.contains("2 sales"));

    // Read back page by page from the same database file.
    let source = reg
        .open("hub", &json!({"store_id": "berlin"}), opts.clone())
        .unwrap();
    let read = |cursor| {
        source
            .read(&ReadRequest {
                stream: "sales".into(),
                cursor,
                page_size: 1,
                from: None,
                to: None,
                ..Default::default()
            })
            .unwrap()
    };
    let p1 = read(None);
    assert!(p1.has_more);
    let p2 = read(p1.cursor.clone());
    let p3 = read(p2.cursor.clone());
    assert_eq!(p1.records[0], records[0]);
    assert_eq!(p2.records[0], records[1]);
    assert!(p3.records.is_empty() && !p3.has_more);
    assert_eq!(p3.cursor, p2.cursor);
    // Reading needs a store.
    let no_store = reg.open("hub", &json!({}), opts).unwrap();
    let err = no_store.read(&ReadRequest::default()).unwrap_err();
    assert!(err.to_string().contains("store_id"), "{err}");
    // The rows are in the database file.
    assert_eq!(
        HubStore::open_sqlite(&db)
            .unwrap()
            .count("sales", "berlin")
            .unwrap(),
        2
    );
}
