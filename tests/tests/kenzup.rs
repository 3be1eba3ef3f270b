//! End-to-end tests of the Kenzup connector, loaded as a plugin, against its simulator.
//!
//! The simulator checks the signature's timestamp against the real clock (5 minutes), so these
//! tests do not pin the host clock: the generated data lives in the last days before today.

use std::collections::BTreeSet;
use std::path::Path;

use posbridge::plugins::{ConnectorHandle, OpenOptions};
use posbridge_plugin_api::chrono::{self, Days, NaiveDate, Utc};
use posbridge_plugin_api::model::Sale;
use posbridge_plugin_api::{ConnectorError, ReadRequest};
use posbridge_sandbox::{build_simulator, start, Country, Faults, RunningSandbox, SandboxOptions};
use serde_json::{json, Value};

/// A 2048-bit key the simulator does not know (the connector crate's unit-test key).
const FOREIGN_PRIVATE_KEY: &str =
    include_str!("../../plugins/kenzup/tests/fixtures/test-private.pem");

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn days_ago(n: u64) -> NaiveDate {
    today().checked_sub_days(Days::new(n)).expect("a date")
}

/// Three shops with two terminals each, over the three days before today.
fn options(data_dir: &Path) -> SandboxOptions {
    SandboxOptions {
        vendor: "kenzup".into(),
        stores: 3,
        registers_per_store: 2,
        days: 3,
        sales_per_day: 25,
        start: days_ago(3),
        data_dir: Some(data_dir.to_path_buf()),
        ..SandboxOptions::default()
    }
}

fn sandbox(opts: &SandboxOptions, faults: Faults) -> RunningSandbox {
    start(build_simulator(opts).expect("simulator"), 0, faults).expect("sandbox starts")
}

fn credential(sb: &RunningSandbox, key: &str) -> String {
    sb.credentials
        .iter()
        .find(|(k, _)| k.starts_with(key))
        .unwrap_or_else(|| panic!("credential {key} in {:?}", sb.credentials))
        .1
        .clone()
}

fn shop_uuids(sb: &RunningSandbox) -> Vec<String> {
    credential(sb, "shop_uuids")
        .split(',')
        .map(String::from)
        .collect()
}

/// The connector config for the sandbox, with the demo key read from the file it printed.
fn config(sb: &RunningSandbox, items_per_page: usize) -> Value {
    let key_file = credential(sb, "private_key_file");
    json!({
        "base_url": sb.base_url,
        "client_id": credential(sb, "client_id"),
        "private_key_pem": std::fs::read_to_string(key_file).expect("demo key file"),
        "shop_uuids": shop_uuids(sb),
        "items_per_page": items_per_page,
        "overlap_days": 1,
        "start_date": days_ago(3),
    })
}

fn open(config: &Value) -> ConnectorHandle {
    posbridge_e2e::registry()
        .open("kenzup", config, OpenOptions::default())
        .expect("kenzup opens")
}

fn request(cursor: Option<Value>) -> ReadRequest {
    ReadRequest {
        stream: "sales".into(),
        cursor,
        page_size: 500,
        from: None,
        to: None,
        ..Default::default()
    }
}

/// Reads until `has_more` is false; returns the sales, the page count and the last cursor.
fn read_all(handle: &ConnectorHandle, cursor: Option<Value>) -> (Vec<Sale>, usize, Option<Value>) {
    posbridge_e2e::read_all_sales(handle, cursor, request)
}

use posbridge_e2e::assert_same_sales;

#[test]
fn the_whole_data_set_reads_as_the_simulators_canonical_sales() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(&options(dir.path()), Faults::default());
    let expected = sb.sim.canonical_sales();
    let shops = shop_uuids(&sb);
    assert_eq!(shops.len(), 3, "several shops");
    let terminals: BTreeSet<&str> = expected.iter().map(|s| s.register_id.as_str()).collect();
    assert!(
        terminals.len() > shops.len(),
        "several terminals per shop: {terminals:?}"
    );
    assert!(expected.iter().any(|s| s
        .loyalty
        .as_ref()
        .is_some_and(|l| !l.points_earned.is_zero())));

    // Page sizes around the first shop's row count put the page boundary on both sides of it.
    let first_shop = expected.iter().filter(|s| s.store_id == shops[0]).count();
    for items_per_page in [7, first_shop - 1, first_shop, first_shop + 1, 10_000] {
        let handle = open(&config(&sb, items_per_page));
        let (sales, pages, _) = read_all(&handle, None);
        let min_pages: usize = shops
            .iter()
            .map(|shop| {
                expected
                    .iter()
                    .filter(|s| &s.store_id == shop)
                    .count()
                    .div_ceil(items_per_page)
            })
            .sum();
        assert!(
            pages >= min_pages,
            "items_per_page {items_per_page}: only {pages} pages"
        );
        assert_same_sales(sales, expected.clone());
    }
    // The vendor's maximum is enforced before any request.
    assert!(posbridge_e2e::registry()
        .open("kenzup", &config(&sb, 10_001), OpenOptions::default())
        .is_err());
}

#[test]
fn a_configured_currency_yields_sales_in_it_that_reconcile() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path());
    let sim = posbridge_sandbox::kenzup::build_in_currency(&opts, "EUR").expect("simulator");
    let sb = start(sim, 0, Faults::default()).expect("sandbox starts");
    let expected = sb.sim.canonical_sales();
    assert!(!expected.is_empty());
    assert!(expected.iter().all(|s| s.currency == "EUR"));
    let gross = |sales: &[Sale]| {
        sales
            .iter()
            .map(|s| s.totals.gross)
            .sum::<rust_decimal::Decimal>()
    };

    let mut cfg = config(&sb, 1000);
    cfg["currency"] = json!("EUR");
    let (sales, _, _) = read_all(&open(&cfg), None);
    assert!(sales
        .iter()
        .all(|s| s.currency == "EUR" && s.payments.iter().all(|p| p.currency == "EUR")));
    assert_eq!(gross(&sales), gross(&expected), "totals to the cent");
    assert_same_sales(sales, expected);

    // Left at its default, the same shop reads as dirhams: the option is what changes the currency.
    let (default_read, _, _) = read_all(&open(&config(&sb, 1000)), None);
    assert!(!default_read.is_empty());
    assert!(default_read.iter().all(|s| s.currency == "MAD"));
}

#[test]
fn every_request_is_signed_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(&options(dir.path()), Faults::default());
    let handle = open(&config(&sb, 1000));
    assert!(handle.check().expect("check passes").ok);
    read_all(&handle, None);
    let requests = sb.requests();
    assert!(requests.len() > 3);
    for r in &requests {
        assert_eq!(r.status, 200, "{r:?}");
        assert!(
            r.path.starts_with("/api/v1/ledger/export-sales/") && r.path.ends_with("/json"),
            "{r:?}"
        );
        let q = r.query.as_deref().unwrap_or_default();
        for p in ["start=", "end=", "page=", "items_per_page="] {
            assert!(q.contains(p), "{q}");
        }
    }
}

#[test]
fn an_incremental_read_from_the_saved_cursor_finds_the_new_receipts() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path());
    let sb = sandbox(&opts, Faults::default());
    let handle = open(&config(&sb, 40));
    let (first, _, cursor) = read_all(&handle, None);
    assert_same_sales(first.clone(), sb.sim.canonical_sales());

    // Today's receipts appear.
    let mut data = opts.dataset(Country::De);
    sb.sim.add_sales(data.extend_days(1));
    let before: BTreeSet<String> = first.iter().map(|s| s.id.clone()).collect();
    let added: BTreeSet<String> = sb
        .sim
        .canonical_sales()
        .into_iter()
        .map(|s| s.id)
        .filter(|id| !before.contains(id))
        .collect();
    assert!(!added.is_empty());

    let (second, _, _) = read_all(&handle, cursor);
    let second_ids: BTreeSet<String> = second.iter().map(|s| s.id.clone()).collect();
    assert!(added.is_subset(&second_ids), "every new receipt is read");
    // Nothing older than the overlap (one day before the last synced day, today) is re-read.
    let oldest_reread = second
        .iter()
        .filter(|s| before.contains(&s.id))
        .map(|s| s.business_day)
        .min();
    assert!(
        oldest_reread.is_none_or(|d| d >= days_ago(1)),
        "re-read from {oldest_reread:?}"
    );
    assert!(second.len() < first.len(), "the second pass is incremental");
}

#[test]
fn wrong_credentials_are_a_clear_auth_error_without_retries() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(&options(dir.path()), Faults::default());
    for (field, value) in [
        ("private_key_pem", FOREIGN_PRIVATE_KEY),
        ("client_id", "POS_SOMEONE_ELSE"),
    ] {
        let mut cfg = config(&sb, 100);
        cfg[field] = json!(value);
        let handle = open(&cfg);
        sb.clear_requests();
        match handle.check() {
            Err(ConnectorError::Auth(m)) => assert!(m.contains("kenzup"), "{m}"),
            other => panic!("{field}: expected an auth error, got {other:?}"),
        }
        assert_eq!(sb.requests().len(), 1, "check made one request");
        assert_eq!(sb.requests()[0].status, 401);
        assert!(matches!(
            handle.read(&request(None)),
            Err(ConnectorError::Auth(_))
        ));
        assert_eq!(
            sb.requests().len(),
            2,
            "read made one request, no retry loop"
        );
    }
    // A key that is not a key never reaches the network.
    let mut cfg = config(&sb, 100);
    cfg["private_key_pem"] = json!("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----");
    assert!(posbridge_e2e::registry()
        .open("kenzup", &cfg, OpenOptions::default())
        .is_err());
}

/// Runs `posbridge run` for a kenzup → generic pipeline; returns the sale ids written.
fn run_pipeline(
    sb: &RunningSandbox,
    dir: &Path,
    name: &str,
    now: Option<&str>,
) -> Result<Vec<String>, String> {
    let out = dir.join(format!("{name}.ndjson"));
    let yaml = dir.join(format!("{name}.yaml"));
    let pipeline = json!({
        "name": "kenzup-to-file",
        "source": {"connector": "kenzup", "config": config(sb, 40), "streams": ["sales"]},
        "sink": {"connector": "generic", "config": {"path": out, "format": "ndjson"}},
    });
    std::fs::write(&yaml, serde_json::to_string_pretty(&pipeline).unwrap()).unwrap(); // JSON is YAML
    let state = format!("sqlite:{}", dir.join("state.sqlite").display());
    let mut cmd = posbridge_e2e::posbridge();
    if let Some(now) = now {
        cmd.env("POSBRIDGE_NOW", now);
    }
    let result = cmd
        .arg("run")
        .arg(&yaml)
        .args(["--state", &state])
        .output()
        .expect("posbridge runs");
    if !result.status.success() {
        return Err(format!(
            "{}\n{}",
            String::from_utf8_lossy(&result.stdout),
            String::from_utf8_lossy(&result.stderr)
        ));
    }
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("ndjson")["id"]
                .as_str()
                .expect("id")
                .to_string()
        })
        .collect())
}

#[test]
fn the_pipeline_to_generic_delivers_every_sale_once_and_then_only_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path());
    let sb = sandbox(&opts, Faults::default());
    let ids = run_pipeline(&sb, dir.path(), "first", None).expect("first run");
    let expected: BTreeSet<String> = sb.sim.canonical_sales().into_iter().map(|s| s.id).collect();
    assert_eq!(ids.len(), expected.len(), "no duplicates");
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), expected);

    let mut data = opts.dataset(Country::De);
    sb.sim.add_sales(data.extend_days(1));
    let added: BTreeSet<String> = sb
        .sim
        .canonical_sales()
        .into_iter()
        .map(|s| s.id)
        .filter(|id| !expected.contains(id))
        .collect();
    assert!(!added.is_empty());
    let second = run_pipeline(&sb, dir.path(), "second", None).expect("second run");
    assert_eq!(
        second.into_iter().collect::<BTreeSet<_>>(),
        added,
        "the second run delivers only the new receipts"
    );
}

#[test]
fn faults_are_survived_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults {
        error_rate: 0.10,
        rate_limit_rate: 0.05,
        retry_after_secs: 1,
        drop_rate: 0.05,
        seed: 11,
        ..Faults::default()
    };
    let sb = sandbox(&options(dir.path()), faults);
    let ids = run_pipeline(&sb, dir.path(), "faulty", None).expect("the run survives the faults");
    let expected: BTreeSet<String> = sb.sim.canonical_sales().into_iter().map(|s| s.id).collect();
    assert_eq!(ids.len(), expected.len(), "no duplicates, nothing lost");
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), expected);
    assert!(
        sb.requests().iter().any(|r| r.fault.is_some()),
        "faults were injected"
    );
}

#[test]
fn a_stale_clock_fails_the_run_with_an_auth_error_and_no_retry_loop() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(&options(dir.path()), Faults::default());
    // Ten minutes behind: the simulator refuses signatures older than five.
    let stale = (Utc::now() - chrono::Duration::minutes(10)).to_rfc3339();
    let err = run_pipeline(&sb, dir.path(), "stale", Some(&stale)).expect_err("the run fails");
    assert!(
        err.contains("kenzup: the request signature was refused"),
        "{err}"
    );
    let requests = sb.requests();
    assert!(
        !requests.is_empty() && requests.len() <= 2,
        "{} requests",
        requests.len()
    );
    assert!(requests.iter().all(|r| r.status == 401));
}

/// Values a JSON Schema can check are the schema's: the host refuses them before `open`, naming
/// each by its JSON path.
#[test]
fn config_values_the_schema_refuses_are_named_by_their_json_path() {
    posbridge_e2e::assert_config_refused_at(
        "kenzup",
        &json!({"client_id": "", "private_key_pem": "", "shop_uuids": ["ok", "has space"], "currency": "eur", "base_url": "ftp://app.kenzup.com"}),
        &[
            "$.client_id",
            "$.private_key_pem",
            "$.shop_uuids[1]",
            "$.currency",
            "$.base_url",
        ],
    );
}

#[test]
fn pages_without_page_numbers_are_read_to_the_end() {
    // ~100 sales in 2 shops; without `current_page`/`total_pages` the connector pages on to a
    // short page.
    let dir = tempfile::tempdir().unwrap();
    let opts = SandboxOptions {
        stores: 2,
        registers_per_store: 1,
        days: 2,
        ..options(dir.path())
    };
    let variant = posbridge_sandbox::kenzup::Variant {
        without_page_numbers: true,
    };
    let sim = posbridge_sandbox::kenzup::build_variant(&opts, "MAD", variant).expect("simulator");
    let sb = start(sim, 0, Faults::default()).expect("sandbox starts");
    let expected = sb.sim.canonical_sales();
    assert!(expected.len() >= 50, "{}", expected.len());
    let (sales, pages, _) = read_all(&open(&config(&sb, 15)), None);
    assert!(pages > 2, "{pages} pages");
    let gross = |sales: &[Sale]| {
        sales
            .iter()
            .map(|s| s.totals.gross)
            .sum::<rust_decimal::Decimal>()
    };
    assert_eq!(gross(&sales), gross(&expected), "totals to the cent");
    assert_same_sales(sales, expected);
}
