//! The conformance suite (`posbridge::conformance`) end to end: each check fails on the
//! deliberately broken fixture (`tests/fixtures/broken`, whose config's `break` picks the
//! defect) and only that check, the sane fixture passes, the CLI prints pass/fail and exits
//! non-zero on failure, and every connector of the repository passes against its simulator.

use std::path::PathBuf;

use posbridge::conformance::{Check, Report, Status, Suite, SuiteConfig, WriteBatch};
use posbridge_e2e::{
    artifacts_dir, build_all, dylib_file_name, run, CannedResponse, TestHttpServer,
};
use serde_json::{json, Value};

const GOOD_KEY: &str = "good-key-1234";

fn library(lib: &str) -> PathBuf {
    build_all();
    artifacts_dir().join(dylib_file_name(lib))
}

/// A vendor for the fixture: 200 for the good key, 401 for anything else.
fn fixture_vendor() -> TestHttpServer {
    TestHttpServer::start(|_, req| {
        let ok = req.header("Authorization") == Some(&format!("Bearer {GOOD_KEY}"));
        CannedResponse {
            status: if ok { 200 } else { 401 },
            headers: vec![],
            body: if ok {
                "{}".into()
            } else {
                r#"{"error":"bad key"}"#.into()
            },
        }
    })
}

/// The suite config of the fixture with this defect (`None`: the sane fixture).
fn fixture_suite(breakage: Option<&str>) -> SuiteConfig {
    let mut config = json!({
        "base_url": "${sandbox_url}",
        "api_key": GOOD_KEY,
        "account": "acct-1234",
        "region": "eu-west",
    });
    if let Some(b) = breakage {
        config["break"] = json!(b);
    }
    let mut bad = config.clone();
    bad["api_key"] = json!("wrong-key-5678");
    let mut s = SuiteConfig::new(config);
    s.bad_config = Some(bad);
    s.write = Some(WriteBatch {
        stream: "sales".into(),
        mode: None,
        mapping: Value::Null,
        records: (0..3)
            .map(|i| json!({"id": format!("w{i}"), "n": i}))
            .collect(),
        records_file: None,
    });
    s
}

fn run_fixture(breakage: Option<&str>) -> Report {
    let vendor = fixture_vendor();
    let cfg = fixture_suite(breakage).with_sandbox_url(&vendor.base_url);
    Suite::new(library("posbridge_fixture_broken"), cfg)
        .run()
        .expect("the fixture loads")
}

fn assert_only_fails(breakage: &str, check: Check) {
    let report = run_fixture(Some(breakage));
    assert_eq!(report.failed(), vec![check], "break {breakage}:\n{report}");
    let details = &report.result(check).unwrap().details;
    assert!(!details.is_empty(), "a failure says why:\n{report}");
}

#[test]
fn the_sane_fixture_passes_every_check() {
    let report = run_fixture(None);
    assert!(report.passed(), "{report}");
    assert!(
        report.results.iter().all(|r| r.status == Status::Pass),
        "nothing skipped: {report}"
    );
    assert_eq!(report.results.len(), Check::ALL.len());
}

#[test]
fn a_credential_from_a_field_not_marked_secret_fails_manifest() {
    assert_only_fails("unmarked_secret", Check::Manifest);
}

#[test]
fn a_field_the_connector_needs_but_the_schema_leaves_optional_fails_config_schema() {
    assert_only_fails("optional_in_schema", Check::ConfigSchema);
}

#[test]
fn a_check_that_accepts_bad_credentials_fails_check_bad_credentials() {
    assert_only_fails("check_accepts_bad_credentials", Check::CheckBadCredentials);
}

#[test]
fn cursors_one_record_back_or_ahead_fail_resume() {
    assert_only_fails("duplicate_on_resume", Check::Resume);
    assert_only_fails("gap_on_resume", Check::Resume);
    let dup = run_fixture(Some("duplicate_on_resume"));
    let why = dup.result(Check::Resume).unwrap().details.join("\n");
    assert!(why.contains("twice"), "{why}");
    let gap = run_fixture(Some("gap_on_resume"));
    let why = gap.result(Check::Resume).unwrap().details.join("\n");
    assert!(why.contains("loses"), "{why}");
}

#[test]
fn a_sale_a_cent_off_fails_records() {
    assert_only_fails("invalid_record", Check::Records);
    let why = run_fixture(Some("invalid_record"))
        .result(Check::Records)
        .unwrap()
        .details
        .join("\n");
    assert!(why.contains("broken:s1:r1:3"), "names the record: {why}");
}

#[test]
fn a_sink_ignoring_idempotency_keys_fails_write_idempotent() {
    assert_only_fails("write_not_idempotent", Check::WriteIdempotent);
}

#[test]
fn a_401_answered_as_a_bug_fails_typed_errors() {
    assert_only_fails("bug_on_401", Check::TypedErrors);
}

#[test]
fn a_panic_caught_at_the_boundary_fails_no_panic() {
    assert_only_fails("panic", Check::NoPanic);
}

#[test]
fn a_logged_api_key_fails_secrets_in_logs() {
    assert_only_fails("leak_secret", Check::SecretsInLogs);
    let why = run_fixture(Some("leak_secret"))
        .result(Check::SecretsInLogs)
        .unwrap()
        .details
        .join("\n");
    assert!(
        !why.contains(GOOD_KEY),
        "the report itself blanks the key: {why}"
    );
}

#[test]
fn the_cli_prints_pass_and_fail_per_check_and_exits_non_zero_on_failure() {
    let vendor = fixture_vendor();
    let dir = tempfile::tempdir().unwrap();
    let write_suite = |name: &str, breakage: Option<&str>| {
        let s = fixture_suite(breakage);
        let mut file = json!({"config": s.config, "bad_config": s.bad_config});
        std::fs::write(
            dir.path().join("batch.ndjson"),
            "{\"id\": \"w1\"}\n{\"id\": \"w2\"}\n",
        )
        .unwrap();
        file["write"] = json!({"stream": "sales", "records_file": "batch.ndjson"});
        let path = dir.path().join(name);
        std::fs::write(&path, serde_json::to_string_pretty(&file).unwrap()).unwrap();
        path
    };
    let lib = library("posbridge_fixture_broken");
    let conformance = |suite: &PathBuf| {
        run(posbridge_e2e::posbridge()
            .arg("conformance")
            .arg(&lib)
            .arg("--config")
            .arg(suite)
            .args(["--sandbox-url", &vendor.base_url]))
    };
    let ok = conformance(&write_suite("sane.json", None));
    assert_eq!(ok.code, 0, "{ok:?}");
    for c in Check::ALL {
        assert!(ok.stdout.contains(&format!("pass  {c}\n")), "{ok:?}");
    }
    assert!(ok.stdout.contains("all 9 checks passed"), "{ok:?}");

    let bad = conformance(&write_suite("leaky.json", Some("leak_secret")));
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(bad.stdout.contains("FAIL  secrets_in_logs"), "{bad:?}");
    assert!(
        bad.stdout.contains("1 check(s) failed: secrets_in_logs"),
        "{bad:?}"
    );

    // A broken suite file is named with its line and column.
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"config\": {\n  \"base_url\": }").unwrap();
    let r = conformance(&broken);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("broken.json:2:"), "{r:?}");
}

#[test]
fn a_file_that_is_not_a_connector_is_refused_with_the_loaders_reason() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join(dylib_file_name("not_a_plugin"));
    std::fs::write(&fake, b"").unwrap();
    let err = Suite::new(&fake, SuiteConfig::new(json!({})))
        .run()
        .expect_err("refused");
    assert!(err.to_string().contains("the file is empty"), "{err}");
}

// ---- the connectors of this repository, each against its simulator -----------------------

mod connectors {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    use chrono::{Days, Utc};
    use posbridge::conformance::{StreamRead, Suite, SuiteConfig, WriteBatch};
    use posbridge_plugin_api::model::{Decimal, Sale, SaleKind};
    use posbridge_sandbox::lexoffice::{LexofficeSimulator, INCOME_CATEGORIES};
    use posbridge_sandbox::sevdesk::SevdeskSimulator;
    use posbridge_sandbox::stripe::StripeSimulator;
    use posbridge_sandbox::{
        build_simulator, start, Country, Dataset, Faults, GenSpec, RunningSandbox, SandboxOptions,
    };
    use serde_json::{json, Value};

    use super::library;

    /// A small data set: one store, one register, two days of six receipts.
    fn small(vendor: &str) -> SandboxOptions {
        SandboxOptions {
            vendor: vendor.into(),
            stores: 1,
            registers_per_store: 1,
            days: 2,
            sales_per_day: 6,
            ..SandboxOptions::default()
        }
    }

    fn sandbox(opts: &SandboxOptions) -> RunningSandbox {
        start(
            build_simulator(opts).expect("simulator"),
            0,
            Faults::default(),
        )
        .expect("sandbox starts")
    }

    fn credential(sb: &RunningSandbox, key: &str) -> String {
        sb.credentials
            .iter()
            .find(|(k, _)| k.starts_with(key))
            .unwrap_or_else(|| panic!("credential {key} in {:?}", sb.credentials))
            .1
            .clone()
    }

    fn with(config: &Value, field: &str, value: Value) -> Value {
        let mut c = config.clone();
        c[field] = value;
        c
    }

    fn sales_read(opts: &SandboxOptions) -> StreamRead {
        StreamRead {
            stream: "sales".into(),
            page_size: 5,
            from: Some(opts.start),
            to: opts
                .start
                .checked_add_days(Days::new(u64::from(opts.days) - 1)),
        }
    }

    fn stream(name: &str) -> StreamRead {
        StreamRead {
            stream: name.into(),
            page_size: 5,
            from: None,
            to: None,
        }
    }

    fn generated(country: Country, seed: u64) -> Vec<Sale> {
        Dataset::generate(GenSpec {
            seed,
            country,
            days: 1,
            sales_per_day: 10,
            ..GenSpec::default()
        })
        .sales
    }

    fn assert_passes(lib: &str, suite: SuiteConfig) {
        let report = Suite::new(library(lib), suite).run().expect("loads");
        assert!(report.passed(), "{report}");
    }

    #[test]
    fn kassandro() {
        let opts = small("kassandro");
        let sb = sandbox(&opts);
        let config = json!({
            "base_url": sb.base_url,
            "api_key": credential(&sb, "api_key"),
            "cash_register_id": 1,
            "page_size": 5,
            "overlap_days": 0,
            "start_date": opts.start,
        });
        let mut suite = SuiteConfig::new(config.clone());
        suite.bad_config = Some(with(&config, "api_key", json!("wrong-key-1234")));
        suite.streams = vec![sales_read(&opts), stream("payment_methods")];
        let to_write: Vec<Value> = generated(Country::At, 99)
            .into_iter()
            .filter(|s| s.kind == SaleKind::Sale)
            .take(2)
            .map(|s| serde_json::to_value(s).unwrap())
            .collect();
        suite.write = Some(WriteBatch {
            stream: "sales".into(),
            mode: None,
            mapping: Value::Null,
            records: to_write,
            records_file: None,
        });
        assert_passes("posbridge_kassandro", suite);
    }

    #[test]
    fn oktopos() {
        let opts = small("oktopos");
        let sb = sandbox(&opts);
        let registers: BTreeSet<u64> = sb
            .sim
            .canonical_sales()
            .iter()
            .map(|s| s.register_id.parse().expect("integer id"))
            .collect();
        let config = json!({
            "base_url": sb.base_url,
            "token": credential(&sb, "token"),
            "cash_register": registers,
            "page_size": 5,
            "overlap_days": 0,
            "start_date": opts.start,
        });
        let mut suite = SuiteConfig::new(config.clone());
        suite.bad_config = Some(with(&config, "token", json!("wrong-token-1234")));
        suite.streams = vec![sales_read(&opts)];
        assert_passes("posbridge_oktopos", suite);
    }

    #[test]
    fn kenzup() {
        let dir = tempfile::tempdir().unwrap();
        let today = Utc::now().date_naive();
        let opts = SandboxOptions {
            start: today.checked_sub_days(Days::new(2)).unwrap(),
            data_dir: Some(dir.path().to_path_buf()),
            ..small("kenzup")
        };
        let sb = sandbox(&opts);
        let shops: Vec<String> = credential(&sb, "shop_uuids")
            .split(',')
            .map(String::from)
            .collect();
        let key = std::fs::read_to_string(credential(&sb, "private_key_file")).expect("demo key");
        let config = json!({
            "base_url": sb.base_url,
            "client_id": credential(&sb, "client_id"),
            "private_key_pem": key,
            "shop_uuids": shops,
            "items_per_page": 5,
            "overlap_days": 0,
            "start_date": opts.start,
        });
        let mut suite = SuiteConfig::new(config.clone());
        suite.bad_config = Some(with(&config, "client_id", json!("POS_SOMEONE_ELSE")));
        suite.streams = vec![StreamRead {
            from: None,
            to: None,
            ..sales_read(&opts)
        }];
        assert_passes("posbridge_kenzup", suite);
    }

    #[test]
    fn stripe() {
        let sim = Arc::new(StripeSimulator::from_options(&SandboxOptions {
            days: 1,
            ..small("stripe")
        }));
        let sb = start(sim.clone(), 0, Faults::default()).expect("sandbox starts");
        let config = json!({
            "base_url": sb.base_url,
            "secret_key": sim.secret_key(),
            "webhook_secret": sim.webhook_secret(),
            "page_size": 5,
        });
        let mut suite = SuiteConfig::new(config.clone());
        suite.bad_config = Some(with(&config, "secret_key", json!("sk_test_wrong_1234")));
        assert_passes("posbridge_stripe", suite);
    }

    /// German sales at 7 and 19 % (sevDesk's tax rule 1 and lexoffice's categories).
    fn german_sales(n: usize) -> Vec<Sale> {
        generated(Country::De, 7)
            .into_iter()
            .filter(|s| s.kind == SaleKind::Sale)
            .filter(|s| {
                s.taxes
                    .iter()
                    .all(|t| [7, 19].iter().any(|r| Decimal::from(*r) == t.rate))
            })
            .take(n)
            .collect()
    }

    fn methods(sales: &[Sale]) -> BTreeSet<String> {
        sales
            .iter()
            .flat_map(|s| s.payments.iter().map(|p| p.method.clone()))
            .collect()
    }

    #[test]
    fn sevdesk() {
        let opts = SandboxOptions {
            vendor: "sevdesk".into(),
            ..SandboxOptions::default()
        };
        let sim = Arc::new(
            SevdeskSimulator::from_options_as(&opts, Default::default()).expect("simulator"),
        );
        let sb = start(sim, 0, Faults::default()).expect("sandbox starts");
        let config = json!({
            "base_url": format!("{}/api/v1", sb.base_url),
            "api_token": credential(&sb, "api_token"),
        });
        let sales = german_sales(2);
        let accounts: BTreeMap<String, u64> = methods(&sales).into_iter().zip(1..).collect();
        let mut suite = SuiteConfig::new(config.clone());
        suite.bad_config = Some(with(&config, "api_token", json!("wrong-token-1234")));
        suite.streams = ["orders", "products", "inventory", "suppliers"]
            .map(stream)
            .to_vec();
        suite.write = Some(WriteBatch {
            stream: "sales".into(),
            mode: Some("per_sale".into()),
            mapping: json!({
                "tax_rule": 1,
                "accounting_type": 26,
                "tax_rates": {"19": 8400, "7": 8300, "0": 8200},
                "payment_methods": accounts,
            }),
            records: sales
                .iter()
                .map(|s| serde_json::to_value(s).unwrap())
                .collect(),
            records_file: None,
        });
        assert_passes("posbridge_sevdesk", suite);
    }

    #[test]
    fn lexoffice() {
        let key = "lexoffice-conformance-key";
        let sim = Arc::new(LexofficeSimulator::new(key.to_string()));
        let sb = start(sim, 0, Faults::default()).expect("sandbox starts");
        let config = json!({"base_url": sb.base_url, "api_key": key, "page_size": 3});
        let sales = german_sales(1);
        let labels: BTreeMap<String, &str> =
            methods(&sales).into_iter().map(|m| (m, "Bar")).collect();
        let mut suite = SuiteConfig::new(config.clone());
        suite.bad_config = Some(with(&config, "api_key", json!("wrong-key-1234")));
        suite.streams = vec![stream("sales"), stream("suppliers")];
        suite.write = Some(WriteBatch {
            stream: "sales".into(),
            mode: Some("per_sale".into()),
            mapping: json!({
                "tax_rates": {"19": INCOME_CATEGORIES[0].0, "7": INCOME_CATEGORIES[1].0},
                "payment_methods": labels,
            }),
            records: sales
                .iter()
                .map(|s| serde_json::to_value(s).unwrap())
                .collect(),
            records_file: None,
        });
        assert_passes("posbridge_lexoffice", suite);
    }

    #[test]
    fn generic() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sales.ndjson");
        let sales = generated(Country::De, 3);
        let text: String = sales
            .iter()
            .take(12)
            .map(|s| serde_json::to_string(s).unwrap() + "\n")
            .collect();
        std::fs::write(&file, text).unwrap();
        let mut suite = SuiteConfig::new(json!({"path": file, "format": "ndjson"}));
        suite.streams = vec![stream("sales")];
        suite.write = Some(WriteBatch {
            stream: "sales".into(),
            mode: None,
            mapping: Value::Null,
            records: sales[12..14]
                .iter()
                .map(|s| serde_json::to_value(s).unwrap())
                .collect(),
            records_file: None,
        });
        assert_passes("posbridge_generic", suite);
    }
}
