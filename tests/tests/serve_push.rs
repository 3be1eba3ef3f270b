//! End-to-end tests of the BEEP! sync endpoints of `posbridge serve` that move data out of the
//! hub or in from the books: `pushToERP` (sevDesk, per sale and as daily closures), `pushToPOS`
//! (Kassandro), `syncERP` (sevDesk), and the `202` answer of a sync that outlasts
//! `--job-wait-secs`. The real binary on 127.0.0.1, the plugins from the test folder, the
//! simulators over HTTP; every live answer is checked against the served OpenAPI document.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use posbridge_e2e::{OpenApiChecker, ServeProcess};
use posbridge_plugin_api::model::{Closure, Sale, SaleKind};
use posbridge_sandbox::sevdesk::SevdeskSimulator;
use posbridge_sandbox::{
    build_simulator, start, Country, Dataset, Faults, GenSpec, RunningSandbox, SandboxOptions,
};
use rust_decimal::Decimal;
use serde_json::{json, Value};

fn checker(serve: &ServeProcess) -> OpenApiChecker {
    let doc = serve.get("/api/v1/openapi.json", None);
    assert_eq!(doc.status, 200);
    OpenApiChecker::new(doc.body)
}

fn credential(sb: &RunningSandbox, name: &str) -> String {
    sb.credentials
        .iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("simulator credential {name}"))
        .1
        .clone()
}

fn dec(v: &Value) -> Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("exact amount as a string: {v}"))
        .parse()
        .unwrap()
}

fn write_ndjson(path: &Path, sales: &[Sale]) {
    let text: String = sales
        .iter()
        .map(|s| serde_json::to_string(s).unwrap() + "\n")
        .collect();
    std::fs::write(path, text).unwrap();
}

/// Generated sales of German stores only (sevDesk's tax rule 1 allows 0, 7 and 19 %).
fn german_sales(dir: &Path, n: usize, seed: u64) -> Vec<Sale> {
    let all = dir.join(format!("all-{seed}.ndjson"));
    posbridge_e2e::generate_sales_file(&all, n, seed);
    posbridge_e2e::read_ndjson(&all)
        .into_iter()
        .map(|v| serde_json::from_value::<Sale>(v).expect("a canonical sale"))
        .filter(|s| {
            s.taxes
                .iter()
                .all(|t| [7, 19].iter().any(|r| Decimal::from(*r) == t.rate))
        })
        .collect()
}

/// Count and Σ gross of the revenue sales (what the books and the exports count).
fn revenue(sales: &[Sale]) -> (u64, Decimal) {
    let revenue: Vec<&Sale> = sales.iter().filter(|s| s.kind.is_revenue()).collect();
    (
        revenue.len() as u64,
        revenue.iter().map(|s| s.totals.gross).sum(),
    )
}

/// Fills `store`'s hub with `sales` through `syncPOS` from a `generic` NDJSON file.
fn fill_hub(serve: &ServeProcess, api: &OpenApiChecker, key: &str, store: &str, file: &Path) {
    let call = json!({"system": "generic", "storeId": store, "streams": ["sales"],
        "credentials": {"path": file, "format": "ndjson"}});
    let synced = serve.post("/api/v1/syncPOS", Some(key), &call);
    assert_eq!(synced.status, 200, "{synced:?}");
    api.assert_valid("post", "/api/v1/syncPOS", 200, &synced.body);
    assert_eq!(
        synced.body["synced"]["sales"],
        posbridge_e2e::read_ndjson(file).len() as u64
    );
    assert_eq!(synced.body["synced"]["deadLettered"], 0);
}

/// Count and Σ gross of `store`'s hub sales over the business days of `sales`, as
/// `exportSalesData` answers them.
fn hub_figures(
    serve: &ServeProcess,
    api: &OpenApiChecker,
    key: &str,
    store: &str,
    sales: &[Sale],
) -> (u64, Decimal) {
    let days: BTreeSet<String> = sales.iter().map(|s| s.business_day.to_string()).collect();
    let (from, to) = (days.first().unwrap(), days.last().unwrap());
    let body = json!({"storeId": store, "from": from, "to": to});
    let a = serve.post("/api/v1/exportSalesData", Some(key), &body);
    assert_eq!(a.status, 200, "{a:?}");
    api.assert_valid("post", "/api/v1/exportSalesData", 200, &a.body);
    let summary = &a.body["data"]["summary"];
    (
        summary["totalTransactions"].as_u64().unwrap(),
        dec(&summary["totalRevenueExact"]),
    )
}

fn sevdesk_sandbox() -> (Arc<SevdeskSimulator>, RunningSandbox) {
    let opts = SandboxOptions {
        vendor: "sevdesk".into(),
        ..SandboxOptions::default()
    };
    let sim = Arc::new(SevdeskSimulator::from_options(&opts).expect("simulator"));
    let sb = start(sim.clone(), 0, Faults::default()).expect("sandbox starts");
    (sim, sb)
}

fn sevdesk_credentials(sb: &RunningSandbox) -> Value {
    json!({"base_url": format!("{}/api/v1", sb.base_url), "api_token": credential(sb, "api_token")})
}

/// sevDesk ids for the sales: tax rule 1, revenue accounts per rate, a check account per
/// payment method.
fn sevdesk_mapping(sales: &[Sale]) -> Value {
    let methods: BTreeSet<String> = sales
        .iter()
        .flat_map(|s| s.payments.iter().map(|p| p.method.clone()))
        .collect();
    let accounts: BTreeMap<String, u64> = methods.into_iter().zip(1..).collect();
    json!({
        "tax_rule": 1,
        "accounting_type": 26,
        "tax_rates": {"19": 8400, "7": 8300, "0": 8200},
        "payment_methods": accounts,
        "refund_kinds": {
            "refund": {"19": 8720, "7": 8710},
            "cancellation": {"19": 8400, "7": 8300},
        },
    })
}

/// Σ gross the simulator booked, signed by debit / credit.
fn booked_gross(sim: &SevdeskSimulator) -> Decimal {
    sim.vouchers()
        .iter()
        .map(|v| v.sign() * v.sum_gross())
        .sum()
}

#[test]
fn push_to_erp_books_the_hubs_sales_in_sevdesk_to_the_cent_and_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let sales = german_sales(dir.path(), 90, 17);
    assert!(sales.len() >= 20, "enough German sales ({})", sales.len());
    let (count, gross) = revenue(&sales);
    let file = dir.path().join("sales.ndjson");
    write_ndjson(&file, &sales);
    let mapping = sevdesk_mapping(&sales);
    let serve = ServeProcess::start(dir.path(), &[]);
    let api = checker(&serve);
    let admin = serve.admin_key.clone();

    // The same sales in two stores (the hub keeps them apart): daily closures from one, each
    // sale from the other, into a simulator each.
    for (store, mode) in [("koeln-1", "daily_summary"), ("koeln-2", "per_sale")] {
        serve.create_store(store, store);
        let key = serve.store_key(store);
        fill_hub(&serve, &api, &key, store, &file);
        assert_eq!(
            hub_figures(&serve, &api, &key, store, &sales),
            (count, gross),
            "{store}: the hub holds the file's sales"
        );

        let (sim, sb) = sevdesk_sandbox();
        let call = json!({"system": "sevdesk", "storeId": store, "mode": mode,
            "credentials": sevdesk_credentials(&sb), "mapping": mapping});
        let pushed = serve.post("/api/v1/pushToERP", Some(&key), &call);
        assert_eq!(pushed.status, 200, "{mode}: {pushed:?}");
        api.assert_valid("post", "/api/v1/pushToERP", 200, &pushed.body);
        assert_eq!(pushed.body["system"], "sevdesk");
        assert_eq!(pushed.body["data"]["status"], "succeeded");
        assert_eq!(pushed.body["synced"]["deadLettered"], 0, "{pushed:?}");
        let vouchers = sim.vouchers();
        assert!(!vouchers.is_empty(), "{mode}: vouchers were booked");
        assert_eq!(booked_gross(&sim), gross, "{mode}: booked to the cent");
        if mode == "per_sale" {
            assert_eq!(vouchers.len() as u64, count, "one voucher per sale");
            assert_eq!(pushed.body["synced"]["sales"], count);
        } else {
            let closures = Closure::from_sales(&sales);
            assert!(closures.len() >= 2, "several days and registers");
            assert_eq!(vouchers.len(), closures.len(), "one voucher per closure");
            // In this mode the run books closures; `sales` counts the sales summed into them.
            assert_eq!(pushed.body["synced"]["closures"], closures.len() as u64);
            assert_eq!(pushed.body["synced"]["sales"], count);
        }

        // The same push again books nothing more.
        let again = serve.post("/api/v1/pushToERP", Some(&key), &call);
        assert_eq!(again.status, 200, "{mode}: {again:?}");
        api.assert_valid("post", "/api/v1/pushToERP", 200, &again.body);
        assert_eq!(again.body["synced"]["sales"], 0, "{mode}: {again:?}");
        assert_eq!(again.body["synced"]["closures"], 0, "{mode}: {again:?}");
        assert_eq!(sim.vouchers(), vouchers, "{mode}: nothing booked twice");
    }
    let runs = serve.get(
        "/api/v1/runs?pipeline=pushToERP:koeln-1:sevdesk",
        Some(&admin),
    );
    api.assert_valid("get", "/api/v1/runs", 200, &runs.body);
    let runs = runs.body["data"].as_array().unwrap().clone();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs
        .iter()
        .all(|r| r["trigger"] == "api" && r["status"] == "succeeded"));
}

/// Generated Austrian sales (Kassandro is an Austrian POS), of the kinds it takes as receipts.
fn austrian_sales(n: usize) -> Vec<Sale> {
    let ds = Dataset::generate(GenSpec {
        seed: 31,
        country: Country::At,
        stores: 1,
        registers_per_store: 1,
        days: 2,
        sales_per_day: 20,
        ..GenSpec::default()
    });
    ds.sales
        .into_iter()
        .filter(|s| {
            matches!(
                s.kind,
                SaleKind::Sale | SaleKind::Refund | SaleKind::NullReceipt
            )
        })
        .take(n)
        .collect()
}

#[test]
fn push_to_pos_writes_the_hubs_sales_as_kassandro_receipts_once() {
    let sb = start(
        build_simulator(&SandboxOptions {
            vendor: "kassandro".into(),
            stores: 1,
            registers_per_store: 1,
            days: 1,
            sales_per_day: 5,
            ..SandboxOptions::default()
        })
        .expect("simulator"),
        0,
        Faults::default(),
    )
    .expect("starts");
    let before: BTreeSet<String> = sb.sim.canonical_sales().into_iter().map(|s| s.id).collect();
    let dir = tempfile::tempdir().unwrap();
    let sales = austrian_sales(30);
    assert_eq!(sales.len(), 30);
    let file = dir.path().join("sales.ndjson");
    write_ndjson(&file, &sales);
    let serve = ServeProcess::start(dir.path(), &[]);
    let api = checker(&serve);
    serve.create_store("wien-2", "Wien 2");
    let key = serve.store_key("wien-2");
    fill_hub(&serve, &api, &key, "wien-2", &file);
    let hub = hub_figures(&serve, &api, &key, "wien-2", &sales);
    assert_eq!(hub, revenue(&sales));

    let call = json!({"system": "kassandro", "storeId": "wien-2", "credentials": {
        "base_url": sb.base_url, "api_key": credential(&sb, "api_key"), "cash_register_id": 1}});
    let pushed = serve.post("/api/v1/pushToPOS", Some(&key), &call);
    assert_eq!(pushed.status, 200, "{pushed:?}");
    api.assert_valid("post", "/api/v1/pushToPOS", 200, &pushed.body);
    assert_eq!(pushed.body["synced"]["sales"], sales.len() as u64);
    assert_eq!(pushed.body["synced"]["deadLettered"], 0);
    let written: Vec<Sale> = sb
        .sim
        .canonical_sales()
        .into_iter()
        .filter(|s| !before.contains(&s.id))
        .collect();
    assert_eq!(written.len(), sales.len(), "one receipt per hub sale");
    assert_eq!(revenue(&written), hub, "count and gross of the receipts");

    let again = serve.post("/api/v1/pushToPOS", Some(&key), &call);
    assert_eq!(again.status, 200, "{again:?}");
    api.assert_valid("post", "/api/v1/pushToPOS", 200, &again.body);
    assert_eq!(again.body["synced"]["sales"], 0);
    assert_eq!(
        sb.sim.canonical_sales().len(),
        before.len() + sales.len(),
        "nothing written twice"
    );
}

#[test]
fn sync_erp_imports_what_the_sevdesk_simulator_serves() {
    let (sim, sb) = sevdesk_sandbox();
    let dir = tempfile::tempdir().unwrap();
    let serve = ServeProcess::start(dir.path(), &[]);
    let api = checker(&serve);
    serve.create_store("bonn-1", "Bonn 1");
    let key = serve.store_key("bonn-1");
    let call =
        json!({"system": "sevdesk", "storeId": "bonn-1", "credentials": sevdesk_credentials(&sb)});
    let synced = serve.post("/api/v1/syncERP", Some(&key), &call);
    assert_eq!(synced.status, 200, "{synced:?}");
    api.assert_valid("post", "/api/v1/syncERP", 200, &synced.body);
    let suppliers = sim
        .contacts()
        .iter()
        .filter(|c| c["category"]["id"] == "2")
        .count() as u64;
    assert!(suppliers > 0 && !sim.orders().is_empty() && !sim.parts().is_empty());
    let s = &synced.body["synced"];
    assert_eq!(s["products"], sim.parts().len() as u64, "{s}");
    assert_eq!(s["inventory"], sim.parts().len() as u64, "{s}");
    assert_eq!(s["orders"], sim.orders().len() as u64, "{s}");
    assert_eq!(s["suppliers"], suppliers, "{s}");
    assert_eq!(s["sales"], 0);
    assert_eq!(s["deadLettered"], 0);

    // Nothing changed at the simulator: the second sync writes nothing.
    let again = serve.post("/api/v1/syncERP", Some(&key), &call);
    assert_eq!(again.status, 200, "{again:?}");
    api.assert_valid("post", "/api/v1/syncERP", 200, &again.body);
    for kind in [
        "products",
        "inventory",
        "orders",
        "suppliers",
        "priceUpdates",
    ] {
        assert_eq!(again.body["synced"][kind], 0, "{kind}: {again:?}");
    }

    // The same books for another store fill that store's hub too.
    serve.create_store("bonn-2", "Bonn 2");
    let other = serve.post(
        "/api/v1/syncERP",
        Some(&serve.admin_key),
        &json!({"system": "sevdesk", "storeId": "bonn-2", "credentials": sevdesk_credentials(&sb)}),
    );
    assert_eq!(other.status, 200, "{other:?}");
    assert_eq!(other.body["synced"], synced.body["synced"], "{other:?}");
}

#[test]
fn a_sync_that_outlasts_the_wait_answers_202_and_its_run_can_be_polled_to_the_end() {
    // Slow answers make the run outlast the zero wait for certain.
    let faults = Faults {
        latency_ms: 20,
        ..Faults::default()
    };
    let opts = SandboxOptions {
        vendor: "kassandro".into(),
        stores: 1,
        registers_per_store: 1,
        days: 2,
        sales_per_day: 10,
        ..SandboxOptions::default()
    };
    let sb = start(build_simulator(&opts).expect("simulator"), 0, faults).expect("starts");
    let (expected, _) = revenue(&sb.sim.canonical_sales());
    let dir = tempfile::tempdir().unwrap();
    let serve = ServeProcess::start(dir.path(), &["--job-wait-secs", "0"]);
    let api = checker(&serve);
    serve.create_store("linz-1", "Linz 1");
    let key = serve.store_key("linz-1");
    let call = json!({"system": "kassandro", "storeId": "linz-1", "credentials": {
        "base_url": sb.base_url, "api_key": credential(&sb, "api_key"),
        "cash_register_id": 1, "start_date": "2026-01-05"}});

    let accepted = serve.post("/api/v1/syncPOS", Some(&key), &call);
    assert_eq!(accepted.status, 202, "{accepted:?}");
    api.assert_valid("post", "/api/v1/syncPOS", 202, &accepted.body);
    let data = &accepted.body["data"];
    assert_eq!(data["status"], "running");
    let run_id = data["runId"].as_i64().expect("a run id");
    let poll = data["poll"].as_str().unwrap().to_string();
    assert_eq!(poll, format!("/api/v1/runs/{run_id}"));

    let deadline = Instant::now() + Duration::from_secs(30);
    let run = loop {
        let a = serve.get(&poll, Some(&key));
        assert_eq!(a.status, 200, "{a:?}");
        api.assert_valid("get", "/api/v1/runs/{id}", 200, &a.body);
        if a.body["data"]["status"] != "running" {
            break a.body["data"].clone();
        }
        assert!(Instant::now() < deadline, "the run never ended: {a:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["id"], run_id);
    let exported = serve.post(
        "/api/v1/exportSalesData",
        Some(&key),
        &json!({"storeId": "linz-1", "from": "2026-01-01", "to": "2026-01-31"}),
    );
    assert_eq!(exported.status, 200, "{exported:?}");
    assert_eq!(
        exported.body["data"]["transactions"]
            .as_array()
            .unwrap()
            .len() as u64,
        expected,
        "the run brought every sale into the hub"
    );

    // A POS that cannot take sales.
    let refused = serve.post(
        "/api/v1/pushToPOS",
        Some(&key),
        &json!({"system": "oktopos", "storeId": "linz-1", "credentials": {}}),
    );
    assert_eq!(refused.status, 400, "{refused:?}");
    api.assert_valid("post", "/api/v1/pushToPOS", 400, &refused.body);
    assert_eq!(refused.body["error"]["code"], "not_supported");
    assert!(
        refused.text.contains("kassandro"),
        "lists what can: {refused:?}"
    );
}
