//! End-to-end tests of the BEEP!-shaped endpoints of `posbridge serve`: the real binary on
//! 127.0.0.1, connector plugins from the test folder, the vendor simulators behind it. Every
//! live answer is checked against the served OpenAPI document.

use std::collections::BTreeMap;
use std::sync::Arc;

use posbridge_e2e::{OpenApiChecker, ServeProcess};
use posbridge_plugin_api::model::{Sale, SaleKind};
use posbridge_sandbox::stripe::{PostOutcome, StripeSimulator};
use posbridge_sandbox::{build_simulator, start, Faults, RunningSandbox, SandboxOptions};
use rust_decimal::Decimal;
use serde_json::{json, Value};

fn checker(serve: &ServeProcess) -> OpenApiChecker {
    let doc = serve.get("/api/v1/openapi.json", None);
    assert_eq!(doc.status, 200);
    OpenApiChecker::new(doc.body)
}

fn kassandro_sandbox() -> RunningSandbox {
    let opts = SandboxOptions {
        vendor: "kassandro".into(),
        stores: 1,
        registers_per_store: 1,
        days: 3,
        sales_per_day: 20,
        ..SandboxOptions::default()
    };
    start(
        build_simulator(&opts).expect("simulator"),
        0,
        Faults::default(),
    )
    .expect("starts")
}

fn credential(sb: &RunningSandbox, name: &str) -> String {
    sb.credentials
        .iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("simulator credential {name}"))
        .1
        .clone()
}

/// Figures of one business day, computed here from the simulator's sales.
#[derive(Debug, Default, PartialEq)]
struct DayFigures {
    transactions: u64,
    revenue: Decimal,
}

fn counted(kind: SaleKind) -> bool {
    matches!(
        kind,
        SaleKind::Sale | SaleKind::Refund | SaleKind::Cancellation
    )
}

fn expected_days(sales: &[Sale]) -> BTreeMap<String, DayFigures> {
    let mut days: BTreeMap<String, DayFigures> = BTreeMap::new();
    for s in sales.iter().filter(|s| counted(s.kind)) {
        let d = days.entry(s.business_day.to_string()).or_default();
        d.transactions += 1;
        d.revenue += s.totals.gross;
    }
    days
}

fn dec(v: &Value) -> Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("exact amount as a string: {v}"))
        .parse()
        .unwrap()
}

#[test]
fn sync_pos_fills_the_hub_and_the_exports_match_the_source_to_the_cent() {
    let sb = kassandro_sandbox();
    let expected = sb.sim.canonical_sales();
    let dir = tempfile::tempdir().unwrap();
    let serve = ServeProcess::start(dir.path(), &[]);
    let api = checker(&serve);
    serve.create_store("wien-1", "Wien 1");
    let key = serve.store_key("wien-1");
    let credentials = json!({
        "base_url": sb.base_url,
        "api_key": credential(&sb, "api_key"),
        "cash_register_id": 1,
        "start_date": "2026-01-05",
    });
    let call = json!({"system": "kassandro", "storeId": "wien-1", "credentials": credentials});

    let synced = serve.post("/api/v1/syncPOS", Some(&key), &call);
    assert_eq!(synced.status, 200, "{synced:?}");
    api.assert_valid("post", "/api/v1/syncPOS", 200, &synced.body);
    assert_eq!(
        synced.body["system"], "kassandro",
        "the seed's top-level fields"
    );
    assert_eq!(synced.body["synced"]["sales"], expected.len() as u64);
    assert!(synced.body["synced"]["products"].as_u64().unwrap() > 0);
    assert!(synced.body["synced"]["categories"].as_u64().unwrap() > 0);
    assert_eq!(synced.body["synced"]["priceUpdates"], 0);

    // Nothing twice: the same sync again brings no sale.
    let again = serve.post("/api/v1/syncPOS", Some(&key), &call);
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.body["synced"]["sales"], 0);
    assert_eq!(again.body["synced"]["products"], 0);

    // Per day, to the cent, JSON and CSV alike.
    let days = expected_days(&expected);
    assert!(days.len() >= 3, "{days:?}");
    for (day, want) in &days {
        let body = json!({"storeId": "wien-1", "from": day, "to": day});
        let j = serve.post("/api/v1/exportSalesData", Some(&key), &body);
        assert_eq!(j.status, 200, "{j:?}");
        api.assert_valid("post", "/api/v1/exportSalesData", 200, &j.body);
        let data = &j.body["data"];
        assert_eq!(data["period"], json!({"from": day, "to": day}));
        assert_eq!(
            data["summary"]["totalTransactions"], want.transactions,
            "{day}"
        );
        assert_eq!(
            dec(&data["summary"]["totalRevenueExact"]),
            want.revenue,
            "{day}"
        );
        let rows = data["transactions"].as_array().unwrap();
        assert_eq!(rows.len() as u64, want.transactions);
        let sum: Decimal = rows.iter().map(|t| dec(&t["totalExact"])).sum();
        assert_eq!(sum, want.revenue);

        let csv_body = json!({"storeId": "wien-1", "from": day, "to": day, "format": "csv"});
        let c = serve.post("/api/v1/exportSalesData", Some(&key), &csv_body);
        assert_eq!(c.status, 200);
        assert!(c
            .content_type
            .as_deref()
            .unwrap_or("")
            .starts_with("text/csv"));
        let mut reader = csv::Reader::from_reader(c.text.as_bytes());
        let headers = reader.headers().unwrap().clone();
        let gross_col = headers
            .iter()
            .position(|h| h == "gross")
            .expect("gross column");
        let mut csv_sum = Decimal::ZERO;
        let mut csv_rows = 0;
        for r in reader.records() {
            csv_sum += r.unwrap()[gross_col].parse::<Decimal>().unwrap();
            csv_rows += 1;
        }
        assert_eq!(
            (csv_rows, csv_sum),
            (want.transactions, want.revenue),
            "{day} csv"
        );
    }

    // One receipt, by canonical id and by receipt number, with its tax breakdown.
    let sale = expected.iter().find(|s| s.kind == SaleKind::Sale).unwrap();
    let r = serve.post(
        "/api/v1/exportReceiptData",
        Some(&key),
        &json!({"receiptId": sale.id}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    api.assert_valid("post", "/api/v1/exportReceiptData", 200, &r.body);
    // As in the BEEP! sample, `tse` and `taxBreakdown` are at the top too.
    assert_eq!(r.body["taxBreakdown"], r.body["data"]["taxBreakdown"]);
    assert_eq!(r.body["tse"], r.body["data"]["tse"]);
    let breakdown = r.body["data"]["taxBreakdown"].as_array().unwrap();
    let gross: Decimal = breakdown.iter().map(|t| dec(&t["grossExact"])).sum();
    assert_eq!(gross, sale.totals.gross);

    // Errors, each in the envelope and as documented.
    let cases = [
        (
            "/api/v1/exportSalesData",
            json!({"storeId": "wien-1", "from": "2026-01-07", "to": "2026-01-05"}),
            400,
        ),
        (
            "/api/v1/exportSalesData",
            json!({"storeId": "wien-1", "from": "yesterday", "to": "2026-01-05"}),
            400,
        ),
        (
            "/api/v1/exportSalesData",
            json!({"storeId": "wien-1", "to": "2026-01-05"}),
            400,
        ),
        (
            "/api/v1/exportSalesData",
            json!({"storeId": "graz-9", "from": "2026-01-05", "to": "2026-01-05"}),
            403,
        ),
        (
            "/api/v1/exportReceiptData",
            json!({"receiptId": "no-such-receipt"}),
            404,
        ),
        (
            "/api/v1/syncPOS",
            json!({"system": "korona", "storeId": "wien-1", "credentials": {}}),
            400,
        ),
        (
            "/api/v1/syncPOS",
            json!({"system": "kassandro", "storeId": "wien-1", "credentials": {"base_url": sb.base_url}}),
            400,
        ),
        (
            "/api/v1/syncPOS",
            json!({"system": "kassandro", "storeId": "wien-1",
            "credentials": {"base_url": sb.base_url, "api_key": "wrong", "cash_register_id": 1}}),
            422,
        ),
    ];
    for (path, body, status) in cases {
        let a = serve.post(path, Some(&key), &body);
        assert_eq!(a.status, status, "{path} {body}: {a:?}");
        assert_eq!(a.body["success"], false);
        api.assert_valid("post", path, status, &a.body);
    }
    let unknown = serve.post(
        "/api/v1/syncPOS",
        Some(&key),
        &json!({"system": "korona", "storeId": "wien-1", "credentials": {}}),
    );
    assert_eq!(unknown.body["error"]["code"], "unknown_system");
    assert!(
        unknown.text.contains("kassandro"),
        "lists what can: {unknown:?}"
    );
    let schema = serve.post("/api/v1/syncPOS", Some(&key), &json!({"system": "kassandro", "storeId": "wien-1", "credentials": {"base_url": sb.base_url}}));
    assert!(
        schema.text.contains("api_key"),
        "names the missing field: {schema:?}"
    );
    let refused = serve.post("/api/v1/syncPOS", Some(&key), &json!({"system": "kassandro", "storeId": "wien-1",
            "credentials": {"base_url": sb.base_url, "api_key": "wrong-key", "cash_register_id": 1}}));
    assert!(
        !refused.text.contains("wrong-key"),
        "the credential is not echoed: {refused:?}"
    );

    // The sync is a held pipeline: listed (never its credentials), with its runs.
    let pipelines = serve.get("/api/v1/pipelines", Some(&key));
    api.assert_valid("get", "/api/v1/pipelines", 200, &pipelines.body);
    assert_eq!(
        pipelines.body["data"][0]["name"],
        "syncPOS:wien-1:kassandro"
    );
    assert!(!pipelines.text.contains(&credential(&sb, "api_key")));
    let runs = serve.get("/api/v1/runs", Some(&key));
    api.assert_valid("get", "/api/v1/runs", 200, &runs.body);
    let runs = runs.body["data"].as_array().unwrap().clone();
    assert_eq!(runs.len(), 2, "two sync runs: {runs:?}");
    assert!(runs
        .iter()
        .all(|r| r["trigger"] == "api" && r["status"] == "succeeded"));
    let one = serve.get(&format!("/api/v1/runs/{}", runs[0]["id"]), Some(&key));
    assert_eq!(one.status, 200);
    api.assert_valid("get", "/api/v1/runs/{id}", 200, &one.body);
    // The runs and the vendor calls are counted.
    let metrics = serve.get("/metrics", None).text;
    assert!(
        metrics.contains(
            "posbridge_runs_total{pipeline=\"syncPOS:wien-1:kassandro\",status=\"succeeded\"} 2"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("posbridge_vendor_http_requests_total{connector=\"kassandro\""),
        "{metrics}"
    );
    // Another store's key sees none of it.
    serve.create_store("graz-1", "Graz 1");
    let other = serve.store_key("graz-1");
    assert_eq!(
        serve.get("/api/v1/runs", Some(&other)).body["data"],
        json!([])
    );
    assert_eq!(
        serve.get("/api/v1/pipelines", Some(&other)).body["data"],
        json!([])
    );
    let hidden = serve.get(&format!("/api/v1/runs/{}", runs[0]["id"]), Some(&other));
    assert_eq!(hidden.status, 404);
    let theirs = serve.post(
        "/api/v1/exportReceiptData",
        Some(&other),
        &json!({"receiptId": sale.id}),
    );
    assert_eq!(
        theirs.status, 404,
        "a receipt of another store does not exist for it"
    );
}

#[test]
fn the_receipt_export_carries_the_tse_block_of_the_source_receipt_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sales.ndjson");
    posbridge_e2e::generate_sales_file(&file, 60, 11);
    let sales: Vec<Sale> = posbridge_e2e::read_ndjson(&file)
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
    let serve = ServeProcess::start(dir.path(), &[]);
    serve.create_store("berlin-1", "Berlin 1");
    let admin = serve.admin_key.clone();
    let call = json!({"system": "generic", "storeId": "berlin-1", "streams": ["sales"],
        "credentials": {"path": file, "format": "ndjson"}});
    let synced = serve.post("/api/v1/syncPOS", Some(&admin), &call);
    assert_eq!(synced.status, 200, "{synced:?}");
    assert_eq!(synced.body["synced"]["sales"], sales.len() as u64);
    let with_tse: Vec<&Sale> = sales
        .iter()
        .filter(|s| s.fiscal.as_ref().is_some_and(|f| f.tse.is_some()))
        .take(5)
        .collect();
    assert!(!with_tse.is_empty(), "the generator signs German receipts");
    for sale in with_tse {
        let tse = sale.fiscal.as_ref().unwrap().tse.as_ref().unwrap();
        let r = serve.post(
            "/api/v1/exportReceiptData",
            Some(&admin),
            &json!({"receiptId": sale.id}),
        );
        assert_eq!(r.status, 200, "{r:?}");
        let got = &r.body["data"]["tse"];
        assert_eq!(got["serialNumber"], tse.serial_number);
        assert_eq!(got["signature"], tse.signature);
        assert_eq!(got["transactionNumber"], tse.transaction_number);
        assert_eq!(got["signatureCounter"], tse.signature_counter);
    }
}

#[test]
fn process_payment_twice_with_one_key_charges_once() {
    let sim = Arc::new(StripeSimulator::from_options(&SandboxOptions {
        vendor: "stripe".into(),
        stores: 1,
        registers_per_store: 1,
        days: 1,
        sales_per_day: 2,
        ..SandboxOptions::default()
    }));
    let sb = start(sim.clone(), 0, Faults::default()).expect("sandbox starts");
    let dir = tempfile::tempdir().unwrap();
    let serve = ServeProcess::start(dir.path(), &[]);
    let api = checker(&serve);
    serve.create_store("shop-1", "Shop 1");
    let key = serve.store_key("shop-1");
    let config = json!({"base_url": sb.base_url, "secret_key": sim.secret_key(),
        "default_payment_method": "pm_card_visa"});

    let other = serve.post(
        "/api/v1/configurePSP",
        Some(&key),
        &json!({"provider": "adyen", "storeId": "shop-1", "config": {}}),
    );
    assert_eq!(other.status, 400, "{other:?}");
    assert_eq!(other.body["error"]["code"], "provider_not_supported");
    assert!(other.text.contains("stripe"), "lists what is: {other:?}");

    let configured = serve.post(
        "/api/v1/configurePSP",
        Some(&key),
        &json!({"provider": "stripe", "storeId": "shop-1", "config": config}),
    );
    assert_eq!(configured.status, 200, "{configured:?}");
    api.assert_valid("post", "/api/v1/configurePSP", 200, &configured.body);
    assert!(
        !configured.text.contains(sim.secret_key()),
        "never the secret"
    );

    let pay = |idem: &str| {
        let req = serve
            .client()
            .post(serve.url("/api/v1/processPayment"))
            .header("content-type", "application/json")
            .header("Idempotency-Key", idem)
            .body(json!({"storeId": "shop-1", "amount": "23.40", "currency": "EUR"}).to_string());
        serve.send(req, Some(&key))
    };
    let before = sim.payment_intents().len();
    let first = pay("bon-4711");
    assert_eq!(first.status, 200, "{first:?}");
    api.assert_valid("post", "/api/v1/processPayment", 200, &first.body);
    let second = pay("bon-4711");
    assert_eq!(second.status, 200, "{second:?}");
    assert_eq!(second.body, first.body, "the first result, answered again");
    assert_eq!(sim.payment_intents().len(), before + 1, "charged once");
    let executed = sim
        .posts()
        .iter()
        .filter(|p| p.path.ends_with("payment_intents") && p.outcome == PostOutcome::Executed)
        .count();
    assert_eq!(executed, 1);
    let missing = serve.post(
        "/api/v1/processPayment",
        Some(&key),
        &json!({"storeId": "shop-1", "amount": "1.00", "currency": "EUR"}),
    );
    assert_eq!(missing.status, 400, "no Idempotency-Key: {missing:?}");
}

#[test]
fn a_pipeline_created_over_the_api_runs_and_its_dead_letters_are_listed_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    posbridge_e2e::generate_sales_file(&input, 30, 5);
    // One sale that does not reconcile: it is dead-lettered, the others arrive.
    let mut lines: Vec<Value> = posbridge_e2e::read_ndjson(&input);
    lines[3]["totals"]["gross"] = json!("999.99");
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&input, text).unwrap();
    let output = dir.path().join("out.ndjson");
    let serve = ServeProcess::start(dir.path(), &[]);
    let api = checker(&serve);
    serve.create_store("s1", "Store 1");
    let admin = serve.admin_key.clone();
    let pipeline = json!({
        "name": "files",
        "source": {"connector": "generic", "config": {"path": input, "format": "ndjson"}},
        "sink": {"connector": "generic", "config": {"path": output, "format": "ndjson"}},
    });
    let bad = serve.post(
        "/api/v1/pipelines",
        Some(&admin),
        &json!({"storeId": "s1", "pipeline": {"name": "x", "source": {"connector": "generic", "streams": 5}}}),
    );
    assert_eq!(bad.status, 400, "{bad:?}");
    assert!(bad.text.contains("$.pipeline.source.streams"), "{bad:?}");
    let store_key = serve.store_key("s1");
    let refused = serve.post(
        "/api/v1/pipelines",
        Some(&store_key),
        &json!({"storeId": "s1", "pipeline": pipeline}),
    );
    assert_eq!(refused.status, 403, "admin keys create pipelines");
    let created = serve.post(
        "/api/v1/pipelines",
        Some(&admin),
        &json!({"storeId": "s1", "pipeline": pipeline}),
    );
    assert_eq!(created.status, 201, "{created:?}");
    api.assert_valid("post", "/api/v1/pipelines", 201, &created.body);

    let ran = serve.post("/api/v1/pipelines/files/run", Some(&store_key), &json!({}));
    assert_eq!(ran.status, 200, "{ran:?}");
    api.assert_valid("post", "/api/v1/pipelines/{name}/run", 200, &ran.body);
    assert_eq!(ran.body["data"]["status"], "succeeded");
    assert_eq!(posbridge_e2e::read_ndjson(&output).len(), 29);

    let letters = serve.get("/api/v1/deadletters", Some(&store_key));
    api.assert_valid("get", "/api/v1/deadletters", 200, &letters.body);
    let letters = letters.body["data"].as_array().unwrap().clone();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(letters[0]["reason"].as_str().unwrap().contains("gross"));
    let retried = serve.post(
        &format!("/api/v1/deadletters/{}/retry", letters[0]["id"]),
        Some(&store_key),
        &json!({}),
    );
    assert_eq!(retried.status, 200, "{retried:?}");
    api.assert_valid("post", "/api/v1/deadletters/{id}/retry", 200, &retried.body);
    assert_eq!(retried.body["data"]["outcome"], "still_invalid");
    assert_eq!(
        posbridge_e2e::read_ndjson(&output).len(),
        29,
        "nothing twice"
    );
}

#[test]
fn pipelines_are_read_replaced_and_deleted_by_name_within_their_store() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    posbridge_e2e::generate_sales_file(&input, 20, 3);
    let (first_out, second_out) = (
        dir.path().join("out1.ndjson"),
        dir.path().join("out2.ndjson"),
    );
    let serve = ServeProcess::start(dir.path(), &[]);
    let api = checker(&serve);
    serve.create_store("s1", "Store 1");
    serve.create_store("s2", "Store 2");
    let admin = serve.admin_key.clone();
    let (own, other) = (serve.store_key("s1"), serve.store_key("s2"));
    let files = |out: &std::path::Path| {
        json!({
            "source": {"connector": "generic", "config": {"path": input, "format": "ndjson"}},
            "sink": {"connector": "generic", "config": {"path": out, "format": "ndjson"}},
        })
    };
    let mut first = files(&first_out);
    first["name"] = json!("files");
    let created = serve.post(
        "/api/v1/pipelines",
        Some(&admin),
        &json!({"storeId": "s1", "pipeline": first}),
    );
    assert_eq!(created.status, 201, "{created:?}");

    // Read: its store's key and admins; never the configs.
    let got = serve.get("/api/v1/pipelines/files", Some(&own));
    assert_eq!(got.status, 200, "{got:?}");
    api.assert_valid("get", "/api/v1/pipelines/{name}", 200, &got.body);
    let data = &got.body["data"];
    assert_eq!(
        (&data["name"], &data["storeId"], &data["sourceConnector"]),
        (&json!("files"), &json!("s1"), &json!("generic"))
    );
    assert_eq!(data["configsSealed"], true);
    assert_eq!(data["schedule"], Value::Null);
    assert!(
        !got.text.contains("out1.ndjson"),
        "configs are never answered: {got:?}"
    );
    // Another store's key: one 403, the same whether the pipeline exists or not.
    let theirs = serve.get("/api/v1/pipelines/files", Some(&other));
    let missing = serve.get("/api/v1/pipelines/no-such", Some(&other));
    assert_eq!(theirs.status, 403, "{theirs:?}");
    api.assert_valid("get", "/api/v1/pipelines/{name}", 403, &theirs.body);
    assert_eq!(
        theirs.body, missing.body,
        "learns nothing about other stores"
    );
    assert_eq!(
        theirs.body["error"]["message"],
        "this API key has no access to that store"
    );
    let unknown = serve.get("/api/v1/pipelines/no-such", Some(&admin));
    assert_eq!(unknown.status, 404, "{unknown:?}");
    api.assert_valid("get", "/api/v1/pipelines/{name}", 404, &unknown.body);

    // Replace: the new definition (name from the path) with a schedule and another sink.
    let mut second = files(&second_out);
    second["schedule"] = json!("0 3 * * *");
    let put = |key: &str, body: &Value| serve.put("/api/v1/pipelines/files", Some(key), body);
    let replaced = put(&own, &json!({"pipeline": second}));
    assert_eq!(replaced.status, 200, "{replaced:?}");
    api.assert_valid("put", "/api/v1/pipelines/{name}", 200, &replaced.body);
    assert_eq!(replaced.body["data"]["schedule"], "0 3 * * *");
    assert_eq!(
        serve.get("/api/v1/pipelines/files", Some(&admin)).body["data"]["schedule"],
        "0 3 * * *"
    );
    // The re-sealed configs are the ones a run uses.
    let ran = serve.post("/api/v1/pipelines/files/run", Some(&own), &json!({}));
    assert_eq!(ran.body["data"]["status"], "succeeded", "{ran:?}");
    assert_eq!(posbridge_e2e::read_ndjson(&second_out).len(), 20);
    assert!(!first_out.exists(), "the old sink is not used");

    let mut renamed = second.clone();
    renamed["name"] = json!("other-name");
    let cases = [
        (&own, json!({"pipeline": renamed}), 400, "$.pipeline.name"),
        (
            &own,
            json!({"pipeline": {"source": {"connector": "generic", "streams": 5}}}),
            400,
            "$.pipeline.source.streams",
        ),
        (
            &own,
            json!({"storeId": "s2", "pipeline": second}),
            403,
            "no access",
        ),
        (&other, json!({"pipeline": second}), 403, "no access"),
        (
            &admin,
            json!({"storeId": "s9", "pipeline": second}),
            404,
            "s9",
        ),
    ];
    for (key, body, status, says) in cases {
        let a = put(key, &body);
        assert_eq!(a.status, status, "{body}: {a:?}");
        api.assert_valid("put", "/api/v1/pipelines/{name}", status, &a.body);
        assert!(a.text.contains(says), "{body}: {a:?}");
    }
    let nothing = serve.put(
        "/api/v1/pipelines/no-such",
        Some(&admin),
        &json!({"pipeline": second}),
    );
    assert_eq!(nothing.status, 404, "a PUT does not create: {nothing:?}");
    assert_eq!(
        serve.get("/api/v1/pipelines/files", Some(&own)).body["data"]["storeId"],
        "s1",
        "refused replacements changed nothing"
    );

    // Delete: another store's key cannot; its own can; the run history stays.
    let refused = serve.delete("/api/v1/pipelines/files", Some(&other));
    assert_eq!(refused.status, 403, "{refused:?}");
    api.assert_valid("delete", "/api/v1/pipelines/{name}", 403, &refused.body);
    let deleted = serve.delete("/api/v1/pipelines/files", Some(&own));
    assert_eq!(deleted.status, 200, "{deleted:?}");
    api.assert_valid("delete", "/api/v1/pipelines/{name}", 200, &deleted.body);
    assert_eq!(deleted.body["data"]["name"], "files");
    assert_eq!(deleted.body["data"]["schedule"], "0 3 * * *");
    let gone = serve.get("/api/v1/pipelines/files", Some(&admin));
    assert_eq!(gone.status, 404, "{gone:?}");
    let again = serve.delete("/api/v1/pipelines/files", Some(&admin));
    assert_eq!(again.status, 404, "{again:?}");
    api.assert_valid("delete", "/api/v1/pipelines/{name}", 404, &again.body);
    assert_eq!(
        serve.get("/api/v1/pipelines", Some(&admin)).body["data"],
        json!([])
    );
    let runs = serve.get("/api/v1/runs?pipeline=files", Some(&admin));
    assert_eq!(
        runs.body["data"].as_array().map(Vec::len),
        Some(1),
        "{runs:?}"
    );
    // Its sealed configs went with it.
    let sealed = serve.get("/api/v1/stores/s1/credentials", Some(&admin));
    assert_eq!(sealed.body["data"], json!([]), "{sealed:?}");
}

#[test]
fn a_stores_sealed_credentials_are_listed_without_values_and_deleted() {
    let sim = Arc::new(StripeSimulator::from_options(&SandboxOptions {
        vendor: "stripe".into(),
        stores: 1,
        registers_per_store: 1,
        days: 1,
        sales_per_day: 2,
        ..SandboxOptions::default()
    }));
    let sb = start(sim.clone(), 0, Faults::default()).expect("sandbox starts");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sales.ndjson");
    posbridge_e2e::generate_sales_file(&file, 10, 4);
    let serve = ServeProcess::start(dir.path(), &[]);
    let api = checker(&serve);
    serve.create_store("shop-1", "Shop 1");
    serve.create_store("shop-2", "Shop 2");
    let (key, other) = (serve.store_key("shop-1"), serve.store_key("shop-2"));
    let sync = json!({"system": "generic", "storeId": "shop-1", "streams": ["sales"],
        "credentials": {"path": file, "format": "ndjson"}});
    let synced = serve.post("/api/v1/syncPOS", Some(&key), &sync);
    assert_eq!(synced.status, 200, "{synced:?}");
    let configured = serve.post(
        "/api/v1/configurePSP",
        Some(&key),
        &json!({"provider": "stripe", "storeId": "shop-1", "config": {"base_url": sb.base_url,
            "secret_key": sim.secret_key(), "default_payment_method": "pm_card_visa"}}),
    );
    assert_eq!(configured.status, 200, "{configured:?}");

    let path = "/api/v1/stores/shop-1/credentials";
    let listed = serve.get(path, Some(&key));
    assert_eq!(listed.status, 200, "{listed:?}");
    api.assert_valid(
        "get",
        "/api/v1/stores/{storeId}/credentials",
        200,
        &listed.body,
    );
    let pipeline = "syncPOS:shop-1:generic";
    let purpose = format!("pipeline:{pipeline}");
    let rows = listed.body["data"].as_array().unwrap();
    let kinds: Vec<(&str, &str, &Value)> = rows
        .iter()
        .map(|r| {
            (
                r["purpose"].as_str().unwrap(),
                r["kind"].as_str().unwrap(),
                &r["pipeline"],
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (purpose.as_str(), "pipeline", &json!(pipeline)),
            ("psp", "psp", &Value::Null)
        ]
    );
    assert!(rows.iter().all(|r| r["createdAt"].is_string()));
    assert!(!listed.text.contains(sim.secret_key()), "never a secret");
    assert!(
        !listed.text.contains("sales.ndjson"),
        "never a config value"
    );
    let theirs = serve.get(path, Some(&other));
    assert_eq!(theirs.status, 403, "{theirs:?}");
    api.assert_valid(
        "get",
        "/api/v1/stores/{storeId}/credentials",
        403,
        &theirs.body,
    );
    let unknown = serve.get("/api/v1/stores/nowhere/credentials", Some(&serve.admin_key));
    assert_eq!(unknown.status, 404, "{unknown:?}");
    let refused = serve.delete(path, Some(&other));
    assert_eq!(refused.status, 403, "{refused:?}");
    api.assert_valid(
        "delete",
        "/api/v1/stores/{storeId}/credentials",
        403,
        &refused.body,
    );

    // One purpose: the sync's pipeline stays held but cannot run, and says why.
    let one = format!("{path}/{purpose}");
    let deleted = serve.delete(&one, Some(&key));
    assert_eq!(deleted.status, 200, "{deleted:?}");
    let one_template = "/api/v1/stores/{storeId}/credentials/{purpose}";
    api.assert_valid("delete", one_template, 200, &deleted.body);
    assert_eq!(deleted.body["data"]["deleted"], json!([purpose]));
    let held = serve.get(&format!("/api/v1/pipelines/{pipeline}"), Some(&key));
    assert_eq!(held.body["data"]["configsSealed"], false, "{held:?}");
    let run_path = format!("/api/v1/pipelines/{pipeline}/run");
    let cannot = serve.post(&run_path, Some(&key), &json!({}));
    assert_eq!(cannot.status, 409, "{cannot:?}");
    api.assert_valid("post", "/api/v1/pipelines/{name}/run", 409, &cannot.body);
    assert_eq!(cannot.body["error"]["code"], "credentials_missing");
    assert!(cannot.text.contains("were deleted"), "{cannot:?}");
    assert!(cannot.text.contains("PUT /api/v1/pipelines/"), "{cannot:?}");
    // Another store's key learns nothing about it: 404 as for any pipeline not its own.
    assert_eq!(serve.post(&run_path, Some(&other), &json!({})).status, 404);
    assert_eq!(serve.get("/healthz", None).status, 200);
    let twice = serve.delete(&one, Some(&key));
    assert_eq!(twice.status, 404, "{twice:?}");
    api.assert_valid("delete", one_template, 404, &twice.body);
    // The same sync call seals them again, and the pipeline runs.
    assert_eq!(serve.post("/api/v1/syncPOS", Some(&key), &sync).status, 200);
    let ran = serve.post(&run_path, Some(&key), &json!({}));
    assert_eq!(ran.status, 200, "{ran:?}");

    // All of them: payments then need a PSP again.
    let all = serve.delete(path, Some(&key));
    assert_eq!(all.status, 200, "{all:?}");
    api.assert_valid(
        "delete",
        "/api/v1/stores/{storeId}/credentials",
        200,
        &all.body,
    );
    assert_eq!(all.body["data"]["deleted"], json!([purpose, "psp"]));
    assert_eq!(serve.get(path, Some(&key)).body["data"], json!([]));
    let pay = serve.send(
        serve
            .client()
            .post(serve.url("/api/v1/processPayment"))
            .header("content-type", "application/json")
            .header("Idempotency-Key", "after-delete")
            .body(json!({"storeId": "shop-1", "amount": "5.00", "currency": "EUR"}).to_string()),
        Some(&key),
    );
    assert_eq!(pay.status, 409, "{pay:?}");
    assert_eq!(pay.body["error"]["code"], "psp_not_configured");
}
