//! End-to-end tests of the sevDesk connector, loaded as a plugin, against its simulator in every
//! reading of the document (lenient, strict, `required` as listed): sales (with refunds and
//! cancellations) and daily closures booked as vouchers reconcile with the input to the cent,
//! every request validates against sevDesk's OpenAPI file under the simulator's reading (the cut
//! embedded in the simulator, and the vendor's full file too when it lies beside the repository
//! in `../shared/specs`), nothing is booked twice, a payment that fails after its voucher was
//! saved is booked once without saving the voucher again, unmapped tax rates are
//! dead-lettered, and a wrong token is a clear auth error.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use posbridge::plugins::{ConnectorHandle, OpenOptions};
use posbridge_e2e::{generate_sales_file, posbridge, read_ndjson, run};
use posbridge_plugin_api::model::{Closure, ClosureKind, Decimal, Sale, SaleKind};
use posbridge_plugin_api::{ConnectorError, ReadRequest};
use posbridge_sandbox::sevdesk::{
    vendor_spec_or_report_skip, PaymentFaults, SevdeskSimulator, SpecValidator, Variant, Voucher,
};
use posbridge_sandbox::{start, Faults, RunningSandbox, SandboxOptions};
use serde_json::{json, Value};

/// The simulator (typed, for its stored vouchers) and its running server.
fn sandbox() -> (Arc<SevdeskSimulator>, RunningSandbox) {
    sandbox_as(Variant::default())
}

/// [`sandbox`], answering `variant`'s reading of the document.
fn sandbox_as(variant: Variant) -> (Arc<SevdeskSimulator>, RunningSandbox) {
    let opts = SandboxOptions {
        vendor: "sevdesk".into(),
        ..SandboxOptions::default()
    };
    let sim = Arc::new(SevdeskSimulator::from_options_as(&opts, variant).expect("simulator"));
    let sb = start(sim.clone(), 0, Faults::default()).expect("sandbox starts");
    (sim, sb)
}

fn config(sb: &RunningSandbox, token: &str) -> Value {
    json!({"base_url": format!("{}/api/v1", sb.base_url), "api_token": token})
}

fn token(sb: &RunningSandbox) -> String {
    sb.credentials
        .iter()
        .find(|(k, _)| k == "api_token")
        .expect("api_token")
        .1
        .clone()
}

fn open(config: &Value) -> ConnectorHandle {
    posbridge_e2e::registry()
        .open("sevdesk", config, OpenOptions::default())
        .expect("sevdesk opens")
}

/// Generated sales of German stores only (sevDesk's tax rule 1 allows 0, 7 and 19 %).
fn german_sales(n: usize, seed: u64, dir: &Path) -> Vec<Sale> {
    let all = dir.join("all.ndjson");
    generate_sales_file(&all, n, seed);
    read_ndjson(&all)
        .into_iter()
        .map(|v| serde_json::from_value::<Sale>(v).expect("a canonical sale"))
        .filter(|s| {
            s.taxes
                .iter()
                .all(|t| [7, 19].iter().any(|r| Decimal::from(*r) == t.rate))
        })
        .collect()
}

fn write_input(dir: &Path, name: &str, sales: &[Sale]) -> PathBuf {
    let path = dir.join(name);
    let text: String = sales
        .iter()
        .map(|s| serde_json::to_string(s).unwrap() + "\n")
        .collect();
    std::fs::write(&path, text).unwrap();
    path
}

/// Check account ids per payment method of the input (1, 2, … in sorted order).
fn check_accounts(sales: &[Sale]) -> BTreeMap<String, u64> {
    let methods: BTreeSet<String> = sales
        .iter()
        .flat_map(|s| s.payments.iter().map(|p| p.method.clone()))
        .collect();
    methods.into_iter().zip(1..).collect()
}

fn mapping(accounts: &BTreeMap<String, u64>) -> Value {
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

fn pipeline(input: &Path, cfg: Value, mapping: Value, mode: &str) -> Value {
    json!({
        "name": "file-to-sevdesk",
        "source": {"connector": "generic", "config": {"path": input, "format": "ndjson"}, "streams": ["sales"]},
        "sink": {"connector": "sevdesk", "config": cfg, "mode": mode},
        "mapping": mapping,
    })
}

/// Writes the pipeline and runs it with this state database.
fn run_pipeline(dir: &Path, name: &str, pipeline: &Value, state: &str) {
    let r = try_pipeline(dir, name, pipeline, state);
    assert_eq!(r.code, 0, "{r:?}");
}

/// Writes the pipeline (as `name.yaml`) and runs it; the run's result, whatever it is.
fn try_pipeline(dir: &Path, name: &str, pipeline: &Value, state: &str) -> posbridge_e2e::Ran {
    let yaml = dir.join(format!("{name}.yaml"));
    std::fs::write(&yaml, serde_json::to_string_pretty(pipeline).unwrap()).unwrap(); // JSON is YAML
    let state = format!("sqlite:{}", dir.join(state).display());
    run(posbridge().arg("run").arg(&yaml).args(["--state", &state]))
}

/// The readings the connector is run against, with the connector config each needs: the
/// defaults for the lenient and the strict sevDesk, `voucher_pos: null` for one that enforces
/// the spec's `required` list as written.
fn variants() -> Vec<(&'static str, Variant, Value)> {
    vec![
        ("lenient", Variant::lenient(), json!({})),
        ("strict", Variant::strict(), json!({})),
        (
            "required-as-listed",
            Variant::required_as_listed(),
            json!({"voucher_pos": "null"}),
        ),
    ]
}

/// `base` with the keys of `extra` set.
fn with(mut base: Value, extra: &Value) -> Value {
    for (k, v) in extra.as_object().into_iter().flatten() {
        base[k] = v.clone();
    }
    base
}

/// Σ gross per tax rate and Σ payments per check account of the revenue sales.
fn expected_sums(
    sales: &[Sale],
    accounts: &BTreeMap<String, u64>,
) -> (BTreeMap<Decimal, Decimal>, BTreeMap<u64, Decimal>) {
    let mut per_rate: BTreeMap<Decimal, Decimal> = BTreeMap::new();
    let mut per_account: BTreeMap<u64, Decimal> = BTreeMap::new();
    for s in sales.iter().filter(|s| s.kind.is_revenue()) {
        for t in &s.taxes {
            *per_rate.entry(t.rate.normalize()).or_default() += t.gross;
        }
        for p in &s.payments {
            *per_account.entry(accounts[&p.method]).or_default() += p.amount;
        }
    }
    per_rate.retain(|_, v| !v.is_zero());
    per_account.retain(|_, v| !v.is_zero());
    (per_rate, per_account)
}

/// The same sums over the stored vouchers, signed by debit / credit.
fn booked_sums(vouchers: &[Voucher]) -> (BTreeMap<Decimal, Decimal>, BTreeMap<u64, Decimal>) {
    let mut per_rate: BTreeMap<Decimal, Decimal> = BTreeMap::new();
    let mut per_account: BTreeMap<u64, Decimal> = BTreeMap::new();
    for v in vouchers {
        for p in &v.positions {
            assert_eq!(p.sum_net + p.sum_tax, p.sum_gross, "voucher {}", v.id);
            *per_rate.entry(p.tax_rate.normalize()).or_default() += v.sign() * p.sum_gross;
        }
        for p in &v.payments {
            *per_account.entry(p.check_account).or_default() += v.sign() * p.amount;
        }
    }
    per_rate.retain(|_, v| !v.is_zero());
    per_account.retain(|_, v| !v.is_zero());
    (per_rate, per_account)
}

/// Every body the connector sent validates against the simulator's spec and was accepted; and
/// against the vendor's full file when it is beside the repository.
fn assert_requests_follow_the_spec(sim: &SevdeskSimulator) {
    let bodies = sim.request_bodies();
    assert!(!bodies.is_empty(), "bodies were sent");
    let full = vendor_spec_or_report_skip("bodies are checked against the embedded cut only").map(
        |path| {
            SpecValidator::load_as(&path, sim.variant().schema)
                .expect("the vendor's full spec loads")
        },
    );
    for b in &bodies {
        for spec in std::iter::once(sim.spec()).chain(full.as_ref()) {
            assert!(
                spec.operation(&b.method, &b.path).is_some(),
                "{} {} is an operation of the spec",
                b.method,
                b.path
            );
            assert_eq!(
                spec.validate(&b.method, &b.path, &b.body),
                Ok(()),
                "{} {}: {}",
                b.method,
                b.path,
                b.body
            );
        }
        assert!(
            b.status < 300,
            "{} {} answered {}",
            b.method,
            b.path,
            b.status
        );
    }
    // Every voucher is revenue with a counterparty (the spec: "either the supplier object or a
    // supplierName").
    for v in sim.vouchers() {
        assert_eq!(v.credit_debit, "D", "{}", v.description);
        assert!(
            v.supplier_name.as_deref().is_some_and(|n| !n.is_empty()),
            "{}",
            v.description
        );
    }
}

fn save_count(sim: &SevdeskSimulator) -> usize {
    sim.request_bodies()
        .iter()
        .filter(|b| b.path.ends_with("/saveVoucher"))
        .count()
}

#[test]
fn per_sale_vouchers_reconcile_follow_the_spec_and_are_booked_once_in_every_reading() {
    let dir = tempfile::tempdir().unwrap();
    let mut sales = german_sales(240, 7, dir.path());
    assert!(sales.len() > 80, "enough German sales ({})", sales.len());
    // The generator gives refunds; a copy of one as a cancellation (same signs, a receipt of
    // its own) lets both kinds reach sevDesk.
    if !sales.iter().any(|s| s.kind == SaleKind::Cancellation) {
        let mut c = sales
            .iter()
            .find(|s| s.kind == SaleKind::Refund)
            .expect("a refund")
            .clone();
        c.kind = SaleKind::Cancellation;
        c.cancels = Some(c.receipt_number.clone());
        c.receipt_number = format!("{}-ST", c.receipt_number);
        c.id = Sale::make_id(
            &c.source_system,
            &c.store_id,
            &c.register_id,
            &c.receipt_number,
        );
        sales.push(c);
    }
    let kinds: BTreeSet<String> = sales.iter().map(|s| format!("{:?}", s.kind)).collect();
    assert!(
        kinds.contains("Refund") && kinds.contains("Cancellation"),
        "{kinds:?}"
    );
    let input = write_input(dir.path(), "sales.ndjson", &sales);
    let accounts = check_accounts(&sales);
    for (name, variant, extra) in variants() {
        let (sim, sb) = sandbox_as(variant);
        let p = pipeline(
            &input,
            with(config(&sb, &token(&sb)), &extra),
            mapping(&accounts),
            "per_sale",
        );
        run_pipeline(
            dir.path(),
            &format!("{name}-first"),
            &p,
            &format!("{name}.sqlite"),
        );

        let vouchers = sim.vouchers();
        let revenue: Vec<&Sale> = sales.iter().filter(|s| s.kind.is_revenue()).collect();
        assert_eq!(
            vouchers.len(),
            revenue.len(),
            "{name}: one voucher per revenue sale"
        );
        assert_eq!(
            booked_sums(&vouchers),
            expected_sums(&sales, &accounts),
            "{name}"
        );
        // Refunds and cancellations are credit notes on the revenue side: negative revenue
        // vouchers under tax rule 1, paid out in full.
        let negative = vouchers
            .iter()
            .filter(|v| v.sum_gross() < Decimal::ZERO)
            .count();
        let refunds = revenue
            .iter()
            .filter(|s| matches!(s.kind, SaleKind::Refund | SaleKind::Cancellation))
            .count();
        assert_eq!(negative, refunds, "{name}");
        assert!(vouchers.iter().all(|v| v.tax_rule == 1), "{name}");
        assert!(
            vouchers
                .iter()
                .all(|v| v.status == 1000 && v.paid() == v.sum_gross()),
            "{name}: everything is paid"
        );
        // The net the connector sent per rate is the POS's net to the cent.
        let mut sent_net: BTreeMap<String, Decimal> = BTreeMap::new();
        for b in sim
            .request_bodies()
            .iter()
            .filter(|b| b.path.ends_with("/saveVoucher"))
        {
            for pos in b.body["voucherPosSave"].as_array().unwrap() {
                let net = posbridge_plugin_api::model::decimal_from_json(&pos["sumNet"]).unwrap();
                *sent_net.entry(pos["taxRate"].to_string()).or_default() += net;
            }
        }
        let mut input_net: BTreeMap<String, Decimal> = BTreeMap::new();
        for s in &revenue {
            for t in &s.taxes {
                *input_net.entry(t.rate.normalize().to_string()).or_default() += t.net;
            }
        }
        assert_eq!(sent_net, input_net, "{name}");
        assert_requests_follow_the_spec(&sim);

        // The same pipeline again: the ledger skips everything.
        let saved = save_count(&sim);
        run_pipeline(
            dir.path(),
            &format!("{name}-again"),
            &p,
            &format!("{name}.sqlite"),
        );
        assert_eq!(sim.vouchers().len(), vouchers.len(), "{name}");
        // With a fresh state the sink sees every key again and finds the vouchers by description.
        run_pipeline(
            dir.path(),
            &format!("{name}-fresh"),
            &p,
            &format!("{name}-fresh.sqlite"),
        );
        assert_eq!(sim.vouchers(), vouchers, "{name}: nothing booked twice");
        assert_eq!(save_count(&sim), saved, "{name}: no voucher saved again");
    }
}

#[test]
fn daily_summaries_book_one_voucher_per_day_and_register_in_every_reading() {
    let dir = tempfile::tempdir().unwrap();
    let sales = german_sales(480, 21, dir.path());
    let input = write_input(dir.path(), "sales.ndjson", &sales);
    let accounts = check_accounts(&sales);
    let closures = Closure::from_sales(&sales);
    assert!(closures.len() >= 4, "several registers and days");
    assert!(
        closures.iter().any(|c| c.kind == ClosureKind::Credits),
        "the data has refunds, booked as their own credit closures"
    );
    for (name, variant, extra) in variants() {
        let (sim, sb) = sandbox_as(variant);
        let p = pipeline(
            &input,
            with(config(&sb, &token(&sb)), &extra),
            mapping(&accounts),
            "daily_summary",
        );
        run_pipeline(
            dir.path(),
            &format!("{name}-summary"),
            &p,
            &format!("{name}.sqlite"),
        );

        let vouchers = sim.vouchers();
        assert_eq!(
            vouchers.len(),
            closures.len(),
            "{name}: one voucher per closure"
        );
        assert_eq!(
            booked_sums(&vouchers),
            expected_sums(&sales, &accounts),
            "{name}"
        );
        for c in &closures {
            let title = match c.kind {
                ClosureKind::Credits => "Tagesabschluss Gutschriften",
                ClosureKind::Sales => "Tagesabschluss",
            };
            let v = vouchers
                .iter()
                .find(|v| {
                    v.description.starts_with(&format!(
                        "{title} {}/{} {}",
                        c.store_id,
                        c.register_id,
                        c.business_day.format("%d.%m.%Y")
                    ))
                })
                .expect("a voucher per register and day, and per day's credits");
            // Credits stay revenue: a negative voucher, never an expense.
            assert_eq!(v.credit_debit, "D", "{name}: {}", c.id);
            assert_eq!(v.sum_gross(), c.totals.gross, "{name}: {}", c.id);
            assert_eq!(
                v.supplier_name.as_deref(),
                Some(format!("Kasse {}/{}", c.store_id, c.register_id).as_str()),
                "{name}: the register is the counterparty"
            );
        }
        assert_requests_follow_the_spec(&sim);

        run_pipeline(
            dir.path(),
            &format!("{name}-summary-fresh"),
            &p,
            &format!("{name}-fresh.sqlite"),
        );
        assert_eq!(
            sim.vouchers(),
            vouchers,
            "{name}: the day is not booked twice"
        );
    }
}

/// How many dead letters the state holds.
fn dead_letters(state: &str) -> usize {
    let r = run(posbridge().args(["dlq", "list", "--json", "--state", state]));
    assert_eq!(r.code, 0, "{r:?}");
    let list: Value = serde_json::from_str(&r.stdout).expect("JSON");
    list.as_array().map_or(0, Vec::len)
}

/// Fast retries, so that a test of payments that fail does not wait for the default backoff.
fn quick_retries(mut p: Value, max_retries: u32) -> Value {
    p["delivery"] = json!({"retry_base_ms": 1, "retry_max_ms": 5, "max_retries": max_retries});
    p
}

/// Each revenue sale has exactly one voucher, saved once, and its payments booked once each:
/// as many successful bookings as payments, summing to the voucher's gross.
fn assert_each_voucher_saved_and_paid_once(sim: &SevdeskSimulator, sales: &[Sale], what: &str) {
    let vouchers = sim.vouchers();
    let revenue = sales.iter().filter(|s| s.kind.is_revenue()).count();
    assert_eq!(vouchers.len(), revenue, "{what}: one voucher per sale");
    let saves = sim
        .request_bodies()
        .iter()
        .filter(|b| b.path.ends_with("/saveVoucher") && b.status < 300)
        .count();
    assert_eq!(saves, revenue, "{what}: each voucher saved once");
    let mut keys = BTreeSet::new();
    for v in &vouchers {
        assert!(
            keys.insert(v.description.clone()),
            "{what}: {}",
            v.description
        );
        assert_eq!(v.paid(), v.sum_gross(), "{what}: {} paid", v.description);
        assert_eq!(v.status, 1000, "{what}: {}", v.description);
        let accounts: BTreeSet<u64> = v.payments.iter().map(|p| p.check_account).collect();
        assert_eq!(
            accounts.len(),
            v.payments.len(),
            "{what}: {} booked once per check account",
            v.description
        );
    }
}

/// The case: the voucher is saved, booking its payment fails. Under a 503 (the booking
/// did not happen) and a lost answer (it did), the host's retry books it once; under a refusal
/// the run fails without dead-lettering the voucher, and the re-run after the cause is gone
/// books the payments only (`payment_refused: retry`), or the refusal is parked as a pending
/// payment and `dlq retry` books it (`payment_refused: dead_letter`). Strict sevDesk throughout.
#[test]
fn a_payment_that_fails_after_the_voucher_was_saved_is_booked_once() {
    let dir = tempfile::tempdir().unwrap();
    let sales: Vec<Sale> = german_sales(120, 11, dir.path())
        .into_iter()
        .take(40)
        .collect();
    assert!(
        sales
            .iter()
            .any(|s| matches!(s.kind, SaleKind::Refund | SaleKind::Cancellation)),
        "refunds are paid out too"
    );
    let input = write_input(dir.path(), "sales.ndjson", &sales);
    let accounts = check_accounts(&sales);

    for (name, faults) in [
        ("unavailable", PaymentFaults::unavailable_once()),
        ("answer-lost", PaymentFaults::answer_lost_once()),
    ] {
        let (sim, sb) = sandbox_as(Variant::strict());
        sim.set_payment_faults(faults);
        let p = quick_retries(
            pipeline(
                &input,
                config(&sb, &token(&sb)),
                mapping(&accounts),
                "per_sale",
            ),
            8,
        );
        run_pipeline(dir.path(), name, &p, &format!("{name}.sqlite"));
        assert_each_voucher_saved_and_paid_once(&sim, &sales, name);
        assert_eq!(
            booked_sums(&sim.vouchers()),
            expected_sums(&sales, &accounts),
            "{name}"
        );
        let state = format!(
            "sqlite:{}",
            dir.path().join(format!("{name}.sqlite")).display()
        );
        assert_eq!(dead_letters(&state), 0, "{name}: nothing dead-lettered");
    }

    // Refused until the operator fixes it; the run fails naming the voucher and the payment.
    let (sim, sb) = sandbox_as(Variant::strict());
    sim.set_payment_faults(PaymentFaults::refused());
    let p = quick_retries(
        pipeline(
            &input,
            config(&sb, &token(&sb)),
            mapping(&accounts),
            "per_sale",
        ),
        1,
    );
    let r = try_pipeline(dir.path(), "refused", &p, "refused.sqlite");
    assert_ne!(r.code, 0, "{r:?}");
    let said = format!("{}{}", r.stdout, r.stderr);
    assert!(
        said.contains("is saved, but booking payment") && said.contains("HTTP 422"),
        "{said}"
    );
    assert!(!sim.vouchers().is_empty(), "a voucher was saved");
    assert!(sim.vouchers().iter().all(|v| v.payments.is_empty()));
    let state = format!("sqlite:{}", dir.path().join("refused.sqlite").display());
    assert_eq!(dead_letters(&state), 0, "not dead-lettered as refused");
    sim.set_payment_faults(PaymentFaults::default());
    run_pipeline(dir.path(), "refused", &p, "refused.sqlite");
    assert_each_voucher_saved_and_paid_once(&sim, &sales, "refused, then re-run");
    assert_eq!(
        booked_sums(&sim.vouchers()),
        expected_sums(&sales, &accounts)
    );
    // Another re-run books nothing.
    let before = sim.request_bodies().len();
    run_pipeline(dir.path(), "refused", &p, "refused.sqlite");
    assert_eq!(sim.request_bodies().len(), before);

    // `payment_refused: dead_letter`: the run goes on; each refused payment is parked as a
    // pending payment of a saved voucher, and `dlq retry` books it.
    let (sim, sb) = sandbox_as(Variant::strict());
    sim.set_payment_faults(PaymentFaults::refused());
    let cfg = with(
        config(&sb, &token(&sb)),
        &json!({"payment_refused": "dead_letter"}),
    );
    let p = quick_retries(pipeline(&input, cfg, mapping(&accounts), "per_sale"), 1);
    run_pipeline(dir.path(), "parked", &p, "parked.sqlite");
    let state = format!("sqlite:{}", dir.path().join("parked.sqlite").display());
    let r = run(posbridge().args(["dlq", "list", "--json", "--state", &state]));
    let letters: Value = serde_json::from_str(&r.stdout).expect("JSON");
    let revenue = sales.iter().filter(|s| s.kind.is_revenue()).count();
    assert_eq!(letters.as_array().map(Vec::len), Some(revenue), "{letters}");
    assert!(
        letters
            .to_string()
            .contains("payment pending, the voucher is not refused"),
        "{letters}"
    );
    sim.set_payment_faults(PaymentFaults::default());
    let r = run(posbridge()
        .args(["dlq", "retry"])
        .arg(dir.path().join("parked.yaml"))
        .args(["--state", &state]));
    assert_eq!(r.code, 0, "{r:?}");
    assert_each_voucher_saved_and_paid_once(&sim, &sales, "parked, then dlq retry");
    assert_eq!(
        booked_sums(&sim.vouchers()),
        expected_sums(&sales, &accounts)
    );
}

#[test]
fn a_sale_with_an_unmapped_tax_rate_is_dead_lettered_with_the_missing_key() {
    let (sim, sb) = sandbox();
    let dir = tempfile::tempdir().unwrap();
    let all = dir.path().join("all.ndjson");
    generate_sales_file(&all, 400, 5);
    let sales: Vec<Sale> = read_ndjson(&all)
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
    let austrian = sales
        .iter()
        .find(|s| s.kind == SaleKind::Sale && s.taxes.iter().any(|t| t.rate == Decimal::from(13)))
        .expect("an Austrian sale at 13 %")
        .clone();
    let german: Vec<Sale> = sales
        .iter()
        .filter(|s| s.kind == SaleKind::Sale && s.taxes.iter().all(|t| t.rate == Decimal::from(19)))
        .take(3)
        .cloned()
        .collect();
    let mut input_sales = german.clone();
    input_sales.push(austrian.clone());
    let input = write_input(dir.path(), "mixed.ndjson", &input_sales);
    let accounts = check_accounts(&input_sales);
    let p = pipeline(
        &input,
        config(&sb, &token(&sb)),
        mapping(&accounts),
        "per_sale",
    );
    run_pipeline(dir.path(), "mixed", &p, "state.sqlite");
    assert_eq!(
        sim.vouchers().len(),
        german.len(),
        "the mapped sales are booked"
    );

    let state = format!("sqlite:{}", dir.path().join("state.sqlite").display());
    let r = run(posbridge().args(["dlq", "list", "--json", "--state", &state]));
    assert_eq!(r.code, 0, "{r:?}");
    let list: Value = serde_json::from_str(&r.stdout).expect("JSON");
    let entries = list.as_array().expect("a list");
    assert_eq!(entries.len(), 1, "{list}");
    let text = entries[0].to_string();
    assert!(text.contains("mapping.tax_rates"), "{text}");
    assert!(text.contains("no mapping for tax rate 13 %"), "{text}");
    assert!(!sim
        .vouchers()
        .iter()
        .any(|v| v.description.contains(&austrian.receipt_number)
            && v.description.contains(&austrian.store_id)));
}

#[test]
fn a_wrong_token_is_a_clear_auth_error() {
    let (_sim, sb) = sandbox();
    let handle = open(&config(&sb, "0000000000000000000000000000000f"));
    sb.clear_requests();
    match handle.check() {
        Err(ConnectorError::Auth(m)) => {
            assert!(
                m.contains("sevdesk") && m.contains("Authentication required"),
                "{m}"
            )
        }
        other => panic!("expected an auth error, got {other:?}"),
    }
    assert_eq!(sb.requests().len(), 1, "one request, no retries");
    let report = open(&config(&sb, &token(&sb)))
        .check()
        .expect("check passes");
    assert!(report.ok && report.message.contains("2.0"), "{report:?}");
}

#[test]
fn parts_orders_and_suppliers_are_read_for_sync_erp() {
    let (sim, sb) = sandbox();
    let handle = open(&config(&sb, &token(&sb)));
    let read_all = |stream: &str, page_size: usize| {
        let mut records = Vec::new();
        let mut cursor = None;
        loop {
            let page = handle
                .read(&ReadRequest {
                    stream: stream.into(),
                    cursor: cursor.clone(),
                    page_size,
                    from: None,
                    to: None,
                    ..Default::default()
                })
                .expect("page reads");
            records.extend(page.records);
            cursor = page.cursor;
            if !page.has_more {
                return records;
            }
        }
    };
    let products = read_all("products", 7);
    assert_eq!(products.len(), sim.parts().len());
    assert!(!products.is_empty());
    for (p, part) in products.iter().zip(sim.parts()) {
        assert_eq!(p["price"], part["priceGross"]);
        assert_eq!(p["tax_rate"], part["taxRate"]);
    }
    let inventory = read_all("inventory", 50);
    assert_eq!(inventory.len(), sim.parts().len());
    assert_eq!(inventory[3]["quantity"], sim.parts()[3]["stock"]);
    let orders = read_all("orders", 2);
    assert_eq!(orders.len(), sim.orders().len());
    assert_eq!(orders[0]["gross"], sim.orders()[0]["sumGross"]);
    let suppliers = read_all("suppliers", 100);
    let expected = sim
        .contacts()
        .iter()
        .filter(|c| c["category"]["id"] == "2")
        .count();
    assert_eq!(suppliers.len(), expected);
    assert!(suppliers.iter().any(|s| s["vat_id"] == "DE123456789"));
}

/// Checks a JSON Schema can express are in the config schema: the host refuses bad values before
/// `open`, each by its JSON path.
#[test]
fn config_values_the_schema_refuses_are_named_by_their_json_path() {
    posbridge_e2e::assert_config_refused_at(
        "sevdesk",
        &json!({"api_token": "  ", "base_url": "my.sevdesk.de", "page_size": 0}),
        &["$.api_token", "$.base_url", "$.page_size"],
    );
}
