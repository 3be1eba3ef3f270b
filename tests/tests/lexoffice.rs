//! End-to-end tests of the lexoffice connector, loaded as a plugin, against its simulator:
//! pipelines generic → lexoffice (per sale and daily summary) that reconcile to the cent, the
//! rate limit of 2 requests per second measured at the simulator, idempotent re-runs, dead
//! letters for unmapped tax rates, auth errors, and the source side.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use posbridge::plugins::OpenOptions;
use posbridge_e2e::{generate_sales_file, posbridge, read_ndjson, registry, run};
use posbridge_plugin_api::model::{Decimal, Sale, SaleKind};
use posbridge_plugin_api::{ConnectorError, ReadRequest};
use posbridge_sandbox::lexoffice::{LexofficeSimulator, StoredVoucher, INCOME_CATEGORIES};
use posbridge_sandbox::{start, Faults, RunningSandbox};
use serde_json::{json, Value};

const KEY: &str = "lexoffice-e2e-key";

fn sandbox(key: &str) -> (Arc<LexofficeSimulator>, RunningSandbox) {
    let sim = Arc::new(LexofficeSimulator::new(key.to_string()));
    let sb = start(sim.clone(), 0, Faults::default()).expect("sandbox starts");
    (sim, sb)
}

fn config(sb: &RunningSandbox, key: &str) -> Value {
    json!({"base_url": sb.base_url, "api_key": key, "page_size": 3})
}

/// The mapping label of each payment method (written into the voucher remark).
fn labels() -> BTreeMap<&'static str, &'static str> {
    [
        ("cash", "Bar"),
        ("card", "EC-Karte"),
        ("voucher", "Gutschein"),
        ("invoice", "Rechnung"),
        ("points", "Punkte"),
    ]
    .into()
}

/// A mapping covering every rate of the input except `leave_out`.
fn mapping(sales: &[Sale], leave_out: Option<&str>) -> Value {
    let mut rates = serde_json::Map::new();
    for (i, rate) in sales
        .iter()
        .flat_map(|s| s.taxes.iter().map(|t| t.rate.normalize().to_string()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|r| Some(r.as_str()) != leave_out)
        .enumerate()
    {
        rates.insert(
            rate,
            json!(INCOME_CATEGORIES[i % INCOME_CATEGORIES.len()].0),
        );
    }
    json!({
        "tax_rates": rates,
        "refund_kinds": {"cancellation": {"19": INCOME_CATEGORIES[3].0}},
        "payment_methods": labels(),
    })
}

/// Appends a full refund of the first plain sale (so credit notes are booked too) and rewrites
/// the file.
fn add_refund(path: &Path) {
    let mut sales = read_sales(path);
    let mut r = sales
        .iter()
        .find(|s| s.kind == SaleKind::Sale)
        .unwrap()
        .clone();
    r.kind = SaleKind::Refund;
    r.id = format!("{}-refund", r.id);
    r.receipt_number = format!("{}-refund", r.receipt_number);
    for l in &mut r.lines {
        (l.quantity, l.net, l.tax, l.gross) = (-l.quantity, -l.net, -l.tax, -l.gross);
    }
    for t in &mut r.taxes {
        (t.net, t.tax, t.gross) = (-t.net, -t.tax, -t.gross);
    }
    (r.totals.net, r.totals.tax, r.totals.gross) = (-r.totals.net, -r.totals.tax, -r.totals.gross);
    r.totals.discount = -r.totals.discount;
    for p in &mut r.payments {
        p.amount = -p.amount;
    }
    assert!(r.validate().is_empty(), "{:?}", r.validate());
    sales.push(r);
    let text: String = sales
        .iter()
        .map(|s| serde_json::to_string(s).unwrap() + "\n")
        .collect();
    std::fs::write(path, text).unwrap();
}

fn read_sales(path: &Path) -> Vec<Sale> {
    read_ndjson(path)
        .into_iter()
        .map(|v| serde_json::from_value(v).expect("a canonical sale"))
        .collect()
}

/// Runs a pipeline file (JSON is YAML) with a state file; asserts success.
fn run_pipeline(dir: &Path, name: &str, pipeline: &Value, state: &str) {
    let yaml = dir.join(format!("{name}.yaml"));
    std::fs::write(&yaml, serde_json::to_string_pretty(pipeline).unwrap()).unwrap();
    let r = run(posbridge()
        .arg("run")
        .arg(&yaml)
        .args(["--state", &format!("sqlite:{}", dir.join(state).display())]));
    assert_eq!(r.code, 0, "{r:?}");
}

fn dead_letters(dir: &Path, state: &str) -> Vec<Value> {
    let st = format!("sqlite:{}", dir.join(state).display());
    let r = run(posbridge().args(["dlq", "list", "--json", "--state", &st]));
    assert_eq!(r.code, 0, "{r:?}");
    serde_json::from_str::<Vec<Value>>(&r.stdout).expect("dlq list --json")
}

fn pipeline(sb: &RunningSandbox, input: &Path, mode: &str, mapping: Value) -> Value {
    json!({
        "name": format!("file-to-lexoffice-{mode}"),
        "source": {"connector": "generic", "config": {"path": input, "format": "ndjson"}, "streams": ["sales"]},
        "sink": {"connector": "lexoffice", "config": config(sb, KEY), "mode": mode},
        "mapping": mapping,
    })
}

/// Net, tax and gross per rate, and amount per payment label, signed.
#[derive(Debug, Default, PartialEq)]
struct Sums {
    rates: BTreeMap<Decimal, (Decimal, Decimal, Decimal)>,
    payments: BTreeMap<String, Decimal>,
}

/// What the input sales must add up to (revenue only; zero entries dropped).
fn expected_sums(sales: &[Sale]) -> Sums {
    let mut s = Sums::default();
    for sale in sales.iter().filter(|s| s.kind.is_revenue()) {
        for t in &sale.taxes {
            let e = s.rates.entry(t.rate.normalize()).or_default();
            e.0 += t.net;
            e.1 += t.tax;
            e.2 += t.gross;
        }
        for p in &sale.payments {
            *s.payments
                .entry(labels()[p.method.as_str()].to_string())
                .or_default() += p.amount;
        }
    }
    s.rates.retain(|_, v| *v != Default::default());
    s.payments.retain(|_, v| !v.is_zero());
    s
}

/// What the booked vouchers add up to: credit notes negative, payments from the remarks.
fn booked_sums(vouchers: &[StoredVoucher]) -> Sums {
    let mut s = Sums::default();
    for v in vouchers {
        let sign = if v.voucher_type == "salescreditnote" {
            -Decimal::ONE
        } else {
            Decimal::ONE
        };
        for t in v.per_rate() {
            let e = s.rates.entry(t.rate).or_default();
            e.0 += t.net * sign;
            e.1 += t.tax * sign;
            e.2 += t.gross * sign;
        }
        let remark = v.remark.as_deref().unwrap_or_default();
        if let Some(line) = remark.lines().find_map(|l| l.strip_prefix("Zahlungen: ")) {
            for part in line.split("; ").filter(|p| !p.is_empty()) {
                let (label, amount) = part.split_once('=').expect("label=amount");
                *s.payments.entry(label.to_string()).or_default() +=
                    amount.parse::<Decimal>().expect("a decimal amount");
            }
        }
    }
    s.rates.retain(|_, v| *v != Default::default());
    s.payments.retain(|_, v| !v.is_zero());
    s
}

/// Asserts lexoffice's limit from the simulator's arrival times: never more than 2 requests
/// in any one-second window (the host's limiter is a sliding window), so k requests span at
/// least (k - 1) / 2 s rounded down to whole windows. 50 ms of arrival jitter is allowed.
fn assert_paced(sb: &RunningSandbox) -> usize {
    let times: Vec<u64> = sb.requests().iter().map(|r| r.timestamp_ms).collect();
    for i in 0..times.len() {
        // The request two after this one must come a full second later.
        if let Some(t) = times.get(i + 2) {
            let span = t - times[i];
            assert!(
                span + 50 >= 1000,
                "requests {i}..={} arrived within {span} ms: 3 in one second",
                i + 2
            );
        }
        for j in i..times.len() {
            let k = (j - i + 1) as u64;
            let span = times[j] - times[i];
            assert!(
                span + 50 >= (k - 1) / 2 * 1000,
                "requests {i}..={j} ({k}) arrived within {span} ms"
            );
        }
    }
    times.len()
}

#[test]
fn per_sale_run_reconciles_keeps_two_requests_per_second_and_books_nothing_twice() {
    let (sim, sb) = sandbox(KEY);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("sales.ndjson");
    generate_sales_file(&input, 48, 5);
    add_refund(&input);
    let sales = read_sales(&input);
    let p = pipeline(&sb, &input, "per_sale", mapping(&sales, None));

    let started = std::time::Instant::now();
    run_pipeline(dir.path(), "first", &p, "state.sqlite");
    let took = started.elapsed();

    assert!(dead_letters(dir.path(), "state.sqlite").is_empty());
    let vouchers = sim.vouchers();
    let revenue = sales.iter().filter(|s| s.kind.is_revenue()).count();
    assert!(
        vouchers.len() >= revenue,
        "{} vouchers for {revenue} sales",
        vouchers.len()
    );
    assert_eq!(booked_sums(&vouchers), expected_sums(&sales));
    let refunds = sales
        .iter()
        .filter(|s| matches!(s.kind, SaleKind::Refund | SaleKind::Cancellation))
        .count();
    assert!(refunds > 0, "the input has refunds or cancellations");
    assert!(vouchers.iter().any(|v| v.voucher_type == "salescreditnote"));
    assert!(vouchers
        .iter()
        .all(|v| v.voucher_number.starts_with("PB-") && v.use_collective_contact));

    // The rate limit, measured where lexoffice would measure it.
    assert_eq!(sim.rate_limited(), 0, "the simulator answered 429");
    assert!(sb.requests().iter().all(|r| r.status != 429));
    let n = assert_paced(&sb);
    assert!(
        n > revenue,
        "one voucherlist lookup plus one POST per voucher ({n})"
    );
    assert!(
        took.as_millis() as u64 + 100 >= (n as u64 - 2) * 500,
        "{n} requests took {took:?}"
    );

    // Same state: the host's ledger already has every key; nothing reaches lexoffice.
    sb.clear_requests();
    run_pipeline(dir.path(), "again", &p, "state.sqlite");
    assert_eq!(sim.vouchers().len(), vouchers.len());
    assert!(sb.requests().iter().all(|r| r.method != "POST"));

    // A fresh state: every record is sent again and found by its voucher number.
    run_pipeline(dir.path(), "fresh", &p, "fresh.sqlite");
    assert_eq!(sim.vouchers(), vouchers, "nothing was booked twice");
    assert!(sb.requests().iter().all(|r| r.method != "POST"));
    assert!(sb.requests().iter().any(|r| r.path == "/v1/voucherlist"
        && r.query
            .as_deref()
            .is_some_and(|q| q.contains("voucherStatus=any"))));
    assert!(dead_letters(dir.path(), "fresh.sqlite").is_empty());
}

#[test]
fn daily_summary_books_one_voucher_per_day_and_register_to_the_cent() {
    let (sim, sb) = sandbox(KEY);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("sales.ndjson");
    generate_sales_file(&input, 40, 9);
    let sales = read_sales(&input);
    let p = pipeline(&sb, &input, "daily_summary", mapping(&sales, None));
    run_pipeline(dir.path(), "summary", &p, "state.sqlite");

    assert!(dead_letters(dir.path(), "state.sqlite").is_empty());
    let vouchers = sim.vouchers();
    assert_eq!(booked_sums(&vouchers), expected_sums(&sales));
    // One closure per business day and register, and one more for a day's refunds and
    // cancellations, which is booked as its own credit note.
    let closures = posbridge_plugin_api::model::Closure::from_sales(&sales);
    let days: BTreeSet<String> = closures.iter().map(|c| c.id.clone()).collect();
    let referenced: BTreeSet<String> = vouchers
        .iter()
        .filter_map(|v| {
            v.remark
                .as_deref()?
                .lines()
                .next()?
                .strip_prefix("posbridge ")
        })
        .map(|r| r.trim_end_matches(" (Gutschrift-Teil)").to_string())
        .collect();
    assert_eq!(referenced, days, "one booking per closure");
    let sales_closures = closures
        .iter()
        .filter(|c| c.kind == posbridge_plugin_api::model::ClosureKind::Sales)
        .count();
    let credit_closures = closures.len() - sales_closures;
    assert!(credit_closures > 0, "the data has refunds");
    let invoices = vouchers
        .iter()
        .filter(|v| v.voucher_type == "salesinvoice")
        .count();
    let credit_notes = vouchers
        .iter()
        .filter(|v| v.voucher_type == "salescreditnote")
        .count();
    assert_eq!(invoices, sales_closures);
    assert!(
        credit_notes >= credit_closures,
        "{credit_notes} credit notes for {credit_closures} credit closures"
    );
    assert_eq!(sim.rate_limited(), 0);
    assert_paced(&sb);

    run_pipeline(dir.path(), "summary-fresh", &p, "fresh.sqlite");
    assert_eq!(
        sim.vouchers(),
        vouchers,
        "a re-sent closure is not booked twice"
    );
}

#[test]
fn a_sale_with_an_unmapped_tax_rate_is_dead_lettered_naming_the_key() {
    let (sim, sb) = sandbox(KEY);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("sales.ndjson");
    generate_sales_file(&input, 10, 3);
    let mut sales = read_sales(&input);
    // One sale more at 13 % (its amounts stay consistent: only the rate moves).
    let mut odd = sales
        .iter()
        .find(|s| s.kind == SaleKind::Sale)
        .unwrap()
        .clone();
    odd.id = format!("{}-13", odd.id);
    odd.receipt_number = format!("{}-13", odd.receipt_number);
    for l in &mut odd.lines {
        l.tax_rate = Decimal::from(13);
    }
    odd.taxes.truncate(1);
    odd.taxes[0].rate = Decimal::from(13);
    (odd.taxes[0].net, odd.taxes[0].tax, odd.taxes[0].gross) =
        (odd.totals.net, odd.totals.tax, odd.totals.gross);
    assert!(odd.validate().is_empty(), "{:?}", odd.validate());
    sales.push(odd);
    let text: String = sales
        .iter()
        .map(|s| serde_json::to_string(s).unwrap() + "\n")
        .collect();
    std::fs::write(&input, text).unwrap();

    let p = pipeline(&sb, &input, "per_sale", mapping(&sales, Some("13")));
    run_pipeline(dir.path(), "unmapped", &p, "state.sqlite");
    let dlq = dead_letters(dir.path(), "state.sqlite");
    let at_13 = sales
        .iter()
        .filter(|s| {
            s.kind.is_revenue()
                && s.taxes
                    .iter()
                    .any(|t| t.rate == Decimal::from(13) && !t.gross.is_zero())
        })
        .count();
    assert!(at_13 >= 1);
    assert_eq!(dlq.len(), at_13, "{dlq:#?}");
    for d in &dlq {
        let reason = d["reason"].as_str().unwrap();
        assert!(
            reason.contains("no mapping for tax rate 13 % (mapping.tax_rates.\"13\")"),
            "{reason}"
        );
    }
    assert!(sim.vouchers().iter().all(|v| v
        .items
        .iter()
        .all(|i| i.tax_rate_percent != Decimal::from(13))));
}

#[test]
fn wrong_credentials_are_a_clear_auth_error() {
    let (_sim, sb) = sandbox("the-right-key");
    let wrong = registry()
        .open(
            "lexoffice",
            &config(&sb, "not-the-key"),
            OpenOptions::default(),
        )
        .expect("opens");
    match wrong.check() {
        Err(ConnectorError::Auth(m)) => {
            assert!(m.contains("lexoffice") && m.contains("Unauthorized"), "{m}")
        }
        other => panic!("expected an auth error, got {other:?}"),
    }
    assert_eq!(sb.requests().len(), 1, "one request, no retries");
    assert_eq!(sb.requests()[0].path, "/v1/profile");
    let right = registry()
        .open(
            "lexoffice",
            &config(&sb, "the-right-key"),
            OpenOptions::default(),
        )
        .expect("opens");
    let report = right.check().expect("check passes");
    assert!(
        report.ok && report.message.contains("posbridge Sandbox GmbH"),
        "{report:?}"
    );
}

#[test]
fn the_source_reads_vouchers_and_vendor_contacts() {
    let key = "lexoffice-source-key";
    let (sim, sb) = sandbox(key);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("sales.ndjson");
    generate_sales_file(&input, 8, 21);
    posbridge_sandbox::Simulator::add_sales(sim.as_ref(), read_sales(&input));
    let expected = posbridge_sandbox::Simulator::canonical_sales(sim.as_ref());
    assert!(expected.len() >= 5, "{}", expected.len());

    let handle = registry()
        .open("lexoffice", &config(&sb, key), OpenOptions::default())
        .expect("opens");
    let (mut read, mut cursor, mut pages) = (Vec::new(), None, 0);
    loop {
        let page = handle
            .read(&ReadRequest {
                stream: "sales".into(),
                cursor: cursor.clone(),
                page_size: 100,
                from: None,
                to: None,
                ..Default::default()
            })
            .expect("page reads");
        pages += 1;
        read.extend(
            page.records
                .into_iter()
                .map(|r| serde_json::from_value::<Sale>(r).unwrap()),
        );
        cursor = page.cursor;
        if !page.has_more {
            break;
        }
    }
    assert_eq!(pages, expected.len().div_ceil(3), "pages of 3");
    assert_eq!(read, expected);
    assert!(read.iter().all(|s| s.validate().is_empty()));

    // Resuming from the saved cursor reads nothing again.
    let again = handle
        .read(&ReadRequest {
            stream: "sales".into(),
            cursor,
            page_size: 100,
            from: None,
            to: None,
            ..Default::default()
        })
        .expect("page reads");
    assert!(again.records.is_empty());

    let suppliers = handle
        .read(&ReadRequest {
            stream: "suppliers".into(),
            cursor: None,
            page_size: 100,
            from: None,
            to: None,
            ..Default::default()
        })
        .expect("suppliers read");
    let mut names: Vec<String> = Vec::new();
    let mut page = suppliers;
    loop {
        names.extend(
            page.records
                .iter()
                .map(|r| r["name"].as_str().unwrap().to_string()),
        );
        if !page.has_more {
            break;
        }
        page = handle
            .read(&ReadRequest {
                stream: "suppliers".into(),
                cursor: page.cursor,
                page_size: 100,
                from: None,
                to: None,
                ..Default::default()
            })
            .expect("suppliers read");
    }
    assert_eq!(names, vec!["Großhandel Nord GmbH", "Eva Gruber"]);
    assert_eq!(sim.rate_limited(), 0);
}

/// Values a JSON Schema can check are the schema's: the host refuses them before `open`, naming
/// each by its JSON path.
#[test]
fn config_values_the_schema_refuses_are_named_by_their_json_path() {
    posbridge_e2e::assert_config_refused_at(
        "lexoffice",
        &serde_json::from_str(r#"{"api_key": "", "base_url": "api.lexware.io", "page_size": 251}"#)
            .unwrap(),
        &["$.api_key", "$.base_url", "$.page_size"],
    );
}

#[test]
fn list_pages_without_last_are_read_to_the_end() {
    // Few vouchers: lexoffice allows two requests a second, one per voucher. Without `last` the
    // connector pages on until a short or empty page.
    let key = "lexoffice-no-last-key";
    let sim = Arc::new(LexofficeSimulator::new(key.to_string()).without_last());
    let sb = start(sim.clone(), 0, Faults::default()).expect("sandbox starts");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("sales.ndjson");
    generate_sales_file(&input, 6, 22);
    posbridge_sandbox::Simulator::add_sales(sim.as_ref(), read_sales(&input));
    let expected = posbridge_sandbox::Simulator::canonical_sales(sim.as_ref());
    assert!(expected.len() >= 4, "{}", expected.len());

    let handle = registry()
        .open("lexoffice", &config(&sb, key), OpenOptions::default())
        .expect("opens");
    let (mut read, mut cursor, mut pages) = (Vec::new(), None, 0);
    loop {
        let page = handle
            .read(&ReadRequest {
                stream: "sales".into(),
                cursor: cursor.clone(),
                page_size: 100,
                from: None,
                to: None,
                ..Default::default()
            })
            .expect("page reads");
        pages += 1;
        read.extend(
            page.records
                .into_iter()
                .map(|r| serde_json::from_value::<Sale>(r).unwrap()),
        );
        cursor = page.cursor;
        if !page.has_more {
            break;
        }
        assert!(pages < 100, "the connector never finishes");
    }
    // Pages of 3, and after a full last page one empty page.
    assert_eq!(pages, expected.len() / 3 + 1);
    let gross = |s: &[Sale]| {
        s.iter()
            .map(|s| s.totals.gross)
            .sum::<rust_decimal::Decimal>()
    };
    assert_eq!(gross(&read), gross(&expected), "to the cent");
    assert_eq!(read, expected);
    assert_eq!(sim.rate_limited(), 0);
}
