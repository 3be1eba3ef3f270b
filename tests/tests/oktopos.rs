//! End-to-end tests of the OktoPOS connector, loaded as a plugin, against its simulator.

use std::collections::BTreeSet;

use posbridge::plugins::{ConnectorHandle, OpenOptions};
use posbridge_plugin_api::model::Sale;
use posbridge_plugin_api::{ConnectorError, ReadRequest};
use posbridge_sandbox::oktopos::{build_variant, PathLayout, TokenPlacement, Variant};
use posbridge_sandbox::{build_simulator, start, Country, Faults, RunningSandbox, SandboxOptions};
use serde_json::{json, Value};

fn options() -> SandboxOptions {
    SandboxOptions {
        vendor: "oktopos".into(),
        stores: 3,
        registers_per_store: 2,
        days: 3,
        sales_per_day: 25,
        ..SandboxOptions::default()
    }
}

fn sandbox(opts: &SandboxOptions, faults: Faults) -> RunningSandbox {
    start(build_simulator(opts).expect("simulator"), 0, faults).expect("sandbox starts")
}

fn token(sb: &RunningSandbox) -> String {
    sb.credentials
        .iter()
        .find(|(k, _)| k == "token")
        .expect("token")
        .1
        .clone()
}

/// Every cash register id the simulator serves, from its canonical sales.
fn register_ids(sb: &RunningSandbox) -> Vec<u64> {
    let ids: BTreeSet<u64> = sb
        .sim
        .canonical_sales()
        .iter()
        .map(|s| s.register_id.parse().expect("integer id"))
        .collect();
    ids.into_iter().collect()
}

fn config(sb: &RunningSandbox, page_size: u32) -> Value {
    json!({
        "base_url": sb.base_url,
        "token": token(sb),
        "cash_register": register_ids(sb),
        "page_size": page_size,
        "overlap_days": 1,
        "start_date": "2026-01-05",
    })
}

fn open(config: &Value) -> ConnectorHandle {
    posbridge_e2e::registry()
        .open("oktopos", config, OpenOptions::default())
        .expect("oktopos opens")
}

fn request(cursor: Option<Value>, to: &str) -> ReadRequest {
    ReadRequest {
        stream: "sales".into(),
        cursor,
        page_size: 500,
        from: Some("2026-01-05".parse().unwrap()),
        to: Some(to.parse().unwrap()),
        ..Default::default()
    }
}

/// Reads until `has_more` is false; returns the sales, the page count and the last cursor.
fn read_all(
    handle: &ConnectorHandle,
    cursor: Option<Value>,
    to: &str,
) -> (Vec<Sale>, usize, Option<Value>) {
    posbridge_e2e::read_all_sales(handle, cursor, |c| request(c, to))
}

use posbridge_e2e::assert_same_sales;

#[test]
fn the_whole_data_set_reads_as_the_simulators_canonical_sales() {
    let opts = options();
    let sb = sandbox(&opts, Faults::default());
    let expected = sb.sim.canonical_sales();
    let registers = register_ids(&sb);
    assert_eq!(registers.len(), 6, "several stores and registers");
    // Page boundaries on both sides of one register's receipt count (a page one short, exactly
    // full, one over), small pages (many of them), and one above the cap (clamped to 100).
    let per_register = (expected.len() / registers.len()) as u32;
    for page_size in [7, per_register - 1, per_register, per_register + 1, 150] {
        let handle = open(&config(&sb, page_size));
        let (sales, pages, _) = read_all(&handle, None, "2026-01-07");
        if page_size < per_register {
            assert!(
                pages > registers.len(),
                "page size {page_size}: only {pages} pages for {per_register} receipts per register"
            );
        } else {
            assert!(
                pages >= registers.len(),
                "page size {page_size}: {pages} pages"
            );
        }
        assert_same_sales(sales, expected.clone());
    }
}

/// A sandbox answering one reading of the document.
fn variant_sandbox(opts: &SandboxOptions, variant: Variant) -> RunningSandbox {
    start(
        build_variant(opts, variant).expect("simulator"),
        0,
        Faults::default(),
    )
    .expect("sandbox starts")
}

/// Reads everything with `cfg` and checks it against the simulator's canonical sales, sale by
/// sale and in total to the cent.
fn assert_reads_everything(sb: &RunningSandbox, cfg: &Value) {
    let expected = sb.sim.canonical_sales();
    let gross = |sales: &[Sale]| {
        sales
            .iter()
            .map(|s| s.totals.gross)
            .sum::<rust_decimal::Decimal>()
    };
    let (sales, pages, _) = read_all(&open(cfg), None, "2026-01-07");
    assert!(pages > 1, "several pages");
    assert_eq!(gross(&sales), gross(&expected), "totals to the cent");
    assert_same_sales(sales, expected);
}

#[test]
fn named_segments_with_a_bearer_token_read_everything() {
    let opts = options();
    let sb = variant_sandbox(
        &opts,
        Variant {
            auth: TokenPlacement::Bearer,
            layout: PathLayout::Named,
            ..Variant::default()
        },
    );
    let mut cfg = config(&sb, 40);
    cfg["auth"] = json!("bearer");
    cfg["path_layout"] = json!("named");
    assert_reads_everything(&sb, &cfg);
    let requests = sb.requests();
    assert!(requests.iter().all(|r| r.status == 200
        && r.path.starts_with("/api/transactions/from/")
        && r.path.contains("/until/")
        && r.path.contains("/cash-register/")));
}

#[test]
fn positional_segments_with_the_default_header_read_everything() {
    let opts = options();
    let sb = variant_sandbox(&opts, Variant::default());
    // Nothing configured but the token: the defaults are the positional layout and `api_key`.
    let cfg = config(&sb, 40);
    assert!(cfg.get("auth").is_none() && cfg.get("path_layout").is_none());
    assert_reads_everything(&sb, &cfg);
    assert!(sb
        .requests()
        .iter()
        .all(|r| r.status == 200 && r.path.starts_with("/api/transactions/2026-01-0")));
}

#[test]
fn a_query_token_under_another_prefix_reads_everything() {
    let opts = options();
    let sb = variant_sandbox(
        &opts,
        Variant {
            auth: TokenPlacement::Query("apiKey".into()),
            api_prefix: "/manager/api/v1".into(),
            ..Variant::default()
        },
    );
    let mut cfg = config(&sb, 40);
    cfg["auth"] = json!("query:apiKey");
    cfg["api_prefix"] = json!("manager/api/v1/");
    assert_reads_everything(&sb, &cfg);
    let requests = sb.requests();
    assert!(requests.iter().all(|r| r.status == 200
        && r.path.starts_with("/manager/api/v1/transactions/")
        && r.query.as_deref().is_some_and(|q| q.starts_with("apiKey="))));
}

#[test]
fn a_header_of_another_name_reads_everything() {
    let opts = options();
    let sb = variant_sandbox(
        &opts,
        Variant {
            auth: TokenPlacement::Header("X-Okto-Token".into()),
            ..Variant::default()
        },
    );
    let mut cfg = config(&sb, 40);
    cfg["auth"] = json!("header:X-Okto-Token");
    assert_reads_everything(&sb, &cfg);
}

#[test]
fn a_bearer_token_where_a_header_is_expected_is_a_clear_auth_error() {
    let opts = options();
    let sb = variant_sandbox(&opts, Variant::default());
    let mut cfg = config(&sb, 40);
    cfg["auth"] = json!("bearer");
    let handle = open(&cfg);
    match handle.check() {
        Err(ConnectorError::Auth(m)) => {
            assert!(
                m.contains("oktopos") && m.contains("bearer") && m.contains("`auth`"),
                "{m}"
            );
            assert!(
                !m.contains(&token(&sb)),
                "the message does not leak the token: {m}"
            );
        }
        other => panic!("expected an auth error, got {other:?}"),
    }
    assert!(matches!(
        handle.read(&request(None, "2026-01-07")),
        Err(ConnectorError::Auth(_))
    ));
    assert_eq!(sb.requests().len(), 2, "one request each, no retry loop");
}

#[test]
fn without_a_cash_register_everything_is_read_as_one_partition() {
    let opts = options();
    let sb = sandbox(&opts, Faults::default());
    let mut cfg = config(&sb, 40);
    cfg.as_object_mut().unwrap().remove("cash_register");
    let (sales, _, _) = read_all(&open(&cfg), None, "2026-01-07");
    assert_eq!(sales.len(), sb.sim.canonical_sales().len());
    assert!(sales
        .iter()
        .all(|s| s.register_id == "all" && s.id.starts_with("oktopos:default:all:")));
}

#[test]
fn an_incremental_read_from_the_saved_cursor_finds_the_new_receipts() {
    let opts = options();
    let sb = sandbox(&opts, Faults::default());
    let handle = open(&config(&sb, 30));
    let (first, _, cursor) = read_all(&handle, None, "2026-01-08");
    assert_eq!(first.len(), sb.sim.canonical_sales().len());

    // One more day of receipts appears (2026-01-08).
    let mut data = opts.dataset(Country::Mixed);
    let new = data.extend_days(1);
    sb.sim.add_sales(new);
    let before: BTreeSet<String> = first.iter().map(|s| s.id.clone()).collect();
    let added: BTreeSet<String> = sb
        .sim
        .canonical_sales()
        .into_iter()
        .map(|s| s.id)
        .filter(|id| !before.contains(id))
        .collect();
    assert!(!added.is_empty());

    let (second, _, _) = read_all(&handle, cursor, "2026-01-08");
    let second_ids: BTreeSet<String> = second.iter().map(|s| s.id.clone()).collect();
    assert!(added.is_subset(&second_ids), "every new receipt is read");
    // Nothing older than the overlap (one day before the last synced day, 2026-01-08) is re-read.
    let oldest_reread = second
        .iter()
        .filter(|s| before.contains(&s.id))
        .map(|s| s.business_day)
        .min();
    assert!(
        oldest_reread.is_none_or(|d| d >= "2026-01-07".parse().unwrap()),
        "re-read from {oldest_reread:?}"
    );
}

#[test]
fn a_wrong_token_is_a_clear_auth_error_without_retries() {
    let opts = options();
    let sb = sandbox(&opts, Faults::default());
    let mut cfg = config(&sb, 50);
    cfg["token"] = json!("not-the-token");
    let handle = open(&cfg);
    sb.clear_requests();
    match handle.check() {
        Err(ConnectorError::Auth(m)) => assert!(m.contains("oktopos"), "{m}"),
        other => panic!("expected an auth error, got {other:?}"),
    }
    assert_eq!(sb.requests().len(), 1, "check made one request");
    assert!(matches!(
        handle.read(&request(None, "2026-01-07")),
        Err(ConnectorError::Auth(_))
    ));
    assert_eq!(
        sb.requests().len(),
        2,
        "read made one request, no retry loop"
    );
}

/// Runs `posbridge run` for an oktopos → generic pipeline with the host clock pinned to `now`
/// (the generated data lives in January 2026); returns the sale ids written.
fn run_pipeline(sb: &RunningSandbox, dir: &std::path::Path, name: &str, now: &str) -> Vec<String> {
    let out = dir.join(format!("{name}.ndjson"));
    let yaml = dir.join(format!("{name}.yaml"));
    let pipeline = json!({
        "name": "oktopos-to-file",
        "source": {"connector": "oktopos", "config": config(sb, 40), "streams": ["sales"]},
        "sink": {"connector": "generic", "config": {"path": out, "format": "ndjson"}},
    });
    std::fs::write(&yaml, serde_json::to_string_pretty(&pipeline).unwrap()).unwrap(); // JSON is YAML
    let state = format!("sqlite:{}", dir.join("state.sqlite").display());
    let result = posbridge_e2e::posbridge()
        .env("POSBRIDGE_NOW", now)
        .arg("run")
        .arg(&yaml)
        .args(["--state", &state])
        .output()
        .expect("posbridge runs");
    assert!(
        result.status.success(),
        "posbridge run failed: {}\n{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("ndjson")["id"]
                .as_str()
                .expect("id")
                .to_string()
        })
        .collect()
}

#[test]
fn the_pipeline_to_generic_delivers_every_sale_once_and_then_only_new_ones() {
    let opts = options();
    let sb = sandbox(&opts, Faults::default());
    let dir = tempfile::tempdir().unwrap();
    let ids = run_pipeline(&sb, dir.path(), "first", "2026-01-07T21:00:00+01:00");
    let expected: BTreeSet<String> = sb.sim.canonical_sales().into_iter().map(|s| s.id).collect();
    assert_eq!(ids.len(), expected.len(), "no duplicates");
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), expected);

    let mut data = opts.dataset(Country::Mixed);
    sb.sim.add_sales(data.extend_days(1));
    let added: BTreeSet<String> = sb
        .sim
        .canonical_sales()
        .into_iter()
        .map(|s| s.id)
        .filter(|id| !expected.contains(id))
        .collect();
    let second = run_pipeline(&sb, dir.path(), "second", "2026-01-08T21:00:00+01:00");
    assert_eq!(
        second.into_iter().collect::<BTreeSet<_>>(),
        added,
        "the second run delivers only the new receipts"
    );
}

#[test]
fn faults_are_survived_without_duplicates() {
    let opts = options();
    let faults = Faults {
        error_rate: 0.10,
        rate_limit_rate: 0.05,
        retry_after_secs: 1,
        drop_rate: 0.05,
        seed: 7,
        ..Faults::default()
    };
    let sb = sandbox(&opts, faults);
    let dir = tempfile::tempdir().unwrap();
    let ids = run_pipeline(&sb, dir.path(), "faulty", "2026-01-07T21:00:00+01:00");
    let expected: BTreeSet<String> = sb.sim.canonical_sales().into_iter().map(|s| s.id).collect();
    assert_eq!(ids.len(), expected.len(), "no duplicates, nothing lost");
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), expected);
    assert!(
        sb.requests().iter().any(|r| r.fault.is_some()),
        "faults were injected"
    );
}

/// Values a JSON Schema can check are the schema's: the host refuses them before `open`, naming
/// each by its JSON path.
#[test]
fn config_values_the_schema_refuses_are_named_by_their_json_path() {
    posbridge_e2e::assert_config_refused_at(
        "oktopos",
        &json!({"token": "", "base_url": "manager.oktopos.com", "auth": "cookie:x", "page_size": 0}),
        &["$.token", "$.base_url", "$.auth", "$.page_size"],
    );
}

#[test]
fn pages_without_last_page_are_read_to_the_end() {
    // ~100 sales on 2 registers; without `lastPage` the connector pages on to a short page.
    let opts = SandboxOptions {
        stores: 2,
        registers_per_store: 1,
        days: 2,
        sales_per_day: 25,
        ..options()
    };
    let sb = variant_sandbox(
        &opts,
        Variant {
            without_last_page: true,
            ..Variant::default()
        },
    );
    assert_reads_everything(&sb, &config(&sb, 10));
    let pages = sb.requests();
    assert!(pages.len() > 10 && pages.iter().all(|r| r.status == 200));
}
