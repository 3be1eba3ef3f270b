//! End-to-end tests of the Stripe connector, loaded as a plugin, against its simulator.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use posbridge::plugins::{ConnectorHandle, OpenOptions};
use posbridge_plugin_api::model::{decimal_from_json, decimal_from_minor_units, Decimal};
use posbridge_plugin_api::{ConnectorError, ReadRequest};
use posbridge_sandbox::stripe::{signature_header, PostOutcome, StripeSimulator};
use posbridge_sandbox::{start, Faults, RunningSandbox, SandboxOptions};
use serde_json::{json, Value};

fn options() -> SandboxOptions {
    SandboxOptions {
        vendor: "stripe".into(),
        stores: 2,
        registers_per_store: 2,
        days: 3,
        sales_per_day: 12,
        ..SandboxOptions::default()
    }
}

fn sandbox() -> (Arc<StripeSimulator>, RunningSandbox) {
    let sim = Arc::new(StripeSimulator::from_options(&options()));
    let sb = start(sim.clone(), 0, Faults::default()).expect("sandbox starts");
    (sim, sb)
}

fn config(sb: &RunningSandbox, sim: &StripeSimulator, page_size: u32) -> Value {
    json!({
        "base_url": sb.base_url,
        "secret_key": sim.secret_key(),
        "webhook_secret": sim.webhook_secret(),
        "page_size": page_size,
        "default_payment_method": "pm_card_visa",
    })
}

fn open(config: &Value) -> ConnectorHandle {
    posbridge_e2e::registry()
        .open("stripe", config, OpenOptions::default())
        .expect("stripe opens")
}

/// Reads a stream until `has_more` is false; returns the records and the page count.
fn read_all(handle: &ConnectorHandle, stream: &str) -> (Vec<Value>, usize) {
    let (mut out, mut pages, mut cursor) = (Vec::new(), 0, None);
    loop {
        let page = handle
            .read(&ReadRequest {
                stream: stream.into(),
                cursor: cursor.clone(),
                page_size: 1000,
                from: None,
                to: None,
                ..Default::default()
            })
            .expect("page reads");
        pages += 1;
        out.extend(page.records);
        cursor = page.cursor;
        if !page.has_more {
            return (out, pages);
        }
        assert!(pages < 10_000, "the connector never finishes");
    }
}

fn dec(v: &Value) -> Decimal {
    decimal_from_json(v).unwrap_or_else(|| panic!("not a decimal: {v}"))
}

/// Sum of a canonical amount field per currency.
fn canonical_sums(records: &[Value], field: &str) -> BTreeMap<String, Decimal> {
    let mut m = BTreeMap::new();
    for r in records {
        *m.entry(r["currency"].as_str().unwrap().to_string())
            .or_insert(Decimal::ZERO) += dec(&r[field]);
    }
    m
}

/// Sum of a Stripe integer amount field per currency, converted in the test by ISO decimals.
fn stripe_sums(objects: &[Value], field: &str) -> BTreeMap<String, Decimal> {
    let mut m = BTreeMap::new();
    for o in objects {
        let c = o["currency"].as_str().unwrap().to_ascii_uppercase();
        *m.entry(c.clone()).or_insert(Decimal::ZERO) +=
            decimal_from_minor_units(o[field].as_i64().unwrap(), &c);
    }
    m
}

fn ids(v: &[Value]) -> BTreeSet<String> {
    v.iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_stream_reads_as_canonical_records_that_reconcile_with_the_account() {
    let (sim, sb) = sandbox();
    let handle = open(&config(&sb, &sim, 2));
    let cases: [(&str, Vec<Value>, &[&str]); 4] = [
        ("payments", sim.payment_intents(), &["amount"]),
        ("refunds", sim.refunds(), &["amount"]),
        ("payouts", sim.payouts(), &["amount"]),
        (
            "balance_transactions",
            sim.balance_transactions(),
            &["amount", "fee", "net"],
        ),
    ];
    for (stream, objects, fields) in cases {
        assert!(
            objects.len() > 2,
            "{stream}: enough objects for several pages"
        );
        let (records, pages) = read_all(&handle, stream);
        assert_eq!(pages, objects.len().div_ceil(2), "{stream} pages");
        assert_eq!(records.len(), objects.len(), "{stream}: nothing twice");
        assert_eq!(ids(&records), ids(&objects), "{stream} ids");
        for f in fields {
            assert_eq!(
                canonical_sums(&records, f),
                stripe_sums(&objects, f),
                "{stream}.{f} per currency"
            );
        }
    }
    // amount_refunded on the payments equals the refunds, to the cent.
    let (payments, _) = read_all(&handle, "payments");
    assert_eq!(
        canonical_sums(&payments, "amount_refunded"),
        stripe_sums(&sim.refunds(), "amount")
    );
    assert!(payments
        .iter()
        .all(|p| p["sale_id"].is_string() && p["method"] == "card"));
    // The documented spelling: limit, starting_after, expand[] (form-encoded brackets).
    let lists: Vec<_> = sb
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/payment_intents")
        .collect();
    assert_eq!(
        lists[0].query.as_deref(),
        Some("limit=2&expand%5B%5D=data.latest_charge")
    );
    assert!(lists[1]
        .query
        .as_deref()
        .unwrap()
        .contains("&starting_after=pi_"));
}

#[test]
fn a_read_with_days_sends_created_bounds_in_utc() {
    let (sim, sb) = sandbox();
    let handle = open(&config(&sb, &sim, 100));
    let first_day = options().start;
    let page = handle
        .read(&ReadRequest {
            stream: "refunds".into(),
            cursor: None,
            page_size: 100,
            from: Some(first_day),
            to: Some(first_day),
            ..Default::default()
        })
        .expect("reads");
    let start = first_day
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp();
    let q = sb.requests().last().unwrap().query.clone().unwrap();
    assert_eq!(
        q,
        format!(
            "limit=100&created%5Bgte%5D={start}&created%5Blte%5D={}",
            start + 86_399
        )
    );
    let expected: Vec<Value> = sim
        .refunds()
        .into_iter()
        .filter(|r| (start..start + 86_400).contains(&r["created"].as_i64().unwrap()))
        .collect();
    assert_eq!(ids(&page.records), ids(&expected));
}

fn charges(sim: &StripeSimulator) -> usize {
    sim.charges().len()
}

#[test]
fn a_payment_retried_after_a_dropped_connection_is_charged_once() {
    let (sim, sb) = sandbox();
    let handle = open(&config(&sb, &sim, 100));
    let before = charges(&sim);
    let input = json!({"amount": "12.34", "currency": "EUR", "sale_id": "demo:S1:R1:42",
                       "description": "Bon 42"});

    // The answer is lost after Stripe charged: the connector sends once and reports a
    // retryable error; retrying is the host's job.
    sim.drop_responses_after_processing(1);
    assert!(matches!(
        handle.action("process_payment", &input),
        Err(ConnectorError::Transient(_))
    ));
    assert_eq!(charges(&sim), before + 1, "the lost answer had charged");
    assert_eq!(sim.posts().len(), 1, "no retry loop inside the connector");

    // The host's retry sends the same key: Stripe replays, nothing is charged again.
    let out = handle.action("process_payment", &input).expect("retry");
    assert_eq!(out["status"], "succeeded");
    assert_eq!(out["amount"], "12.34");
    assert_eq!(out["payment"]["sale_id"], "demo:S1:R1:42");
    assert_eq!(out["replayed"], true, "{out}");
    assert_eq!(charges(&sim), before + 1, "charged once");
    let posts = sim.posts();
    let [first, second] = &posts[posts.len() - 2..] else {
        unreachable!()
    };
    assert_eq!((first.outcome, first.status), (PostOutcome::Executed, 0));
    assert_eq!(second.outcome, PostOutcome::Replayed);
    assert_eq!(first.idempotency_key, second.idempotency_key);
    assert_eq!(
        first.idempotency_key.as_deref(),
        out["idempotency_key"].as_str()
    );
    let pi = sim
        .payment_intents()
        .into_iter()
        .find(|p| p["id"] == out["id"])
        .unwrap();
    assert_eq!(
        (pi["amount"].as_i64(), pi["currency"].as_str()),
        (Some(1234), Some("eur"))
    );
}

#[test]
fn two_identical_payments_are_two_charges_and_a_payment_without_a_key_is_refused() {
    let (sim, sb) = sandbox();
    let handle = open(&config(&sb, &sim, 100));
    let before = charges(&sim);
    match handle.action(
        "process_payment",
        &json!({"amount": "4.50", "currency": "EUR"}),
    ) {
        Err(ConnectorError::Permanent(m)) => {
            assert!(
                m.contains("idempotency_key") && m.contains("sale_id"),
                "{m}"
            )
        }
        other => panic!("expected a refusal naming idempotency_key, got {other:?}"),
    }
    for key in ["till-1:0001", "till-1:0002"] {
        let out = handle
            .action(
                "process_payment",
                &json!({"amount": "4.50", "currency": "EUR", "idempotency_key": key}),
            )
            .expect("paid");
        assert_eq!(out["replayed"], false);
    }
    assert_eq!(charges(&sim), before + 2, "two customers, two charges");
}

#[test]
fn a_refund_larger_than_what_remains_is_refused_with_stripes_error() {
    let (sim, sb) = sandbox();
    let handle = open(&config(&sb, &sim, 100));
    let paid = handle
        .action(
            "process_payment",
            &json!({"amount": "10.00", "currency": "EUR", "sale_id": "r-1"}),
        )
        .expect("paid");
    let pi = paid["id"].as_str().unwrap();
    let refund = |amount: Option<&str>, reference: &str| {
        let mut input = json!({"payment_id": pi, "reference": reference});
        if let Some(a) = amount {
            input["amount"] = json!(a);
        }
        handle.action("refund_payment", &input)
    };
    let first = refund(Some("6.00"), "a").expect("first refund");
    assert_eq!(
        (first["amount"].as_str(), first["payment_id"].as_str()),
        (Some("6.00"), Some(pi))
    );
    match refund(Some("5.00"), "b") {
        Err(ConnectorError::Permanent(m)) => assert!(
            m.contains("amount_too_large")
                && m.contains("Refund amount (5.00 EUR) is greater than unrefunded amount on charge (4.00 EUR)")
                && m.contains("[param amount]"),
            "{m}"
        ),
        other => panic!("expected Stripe's refusal, got {other:?}"),
    }
    refund(Some("4.00"), "c").expect("the rest");
    match refund(None, "d") {
        Err(ConnectorError::Permanent(m)) => assert!(m.contains("charge_already_refunded"), "{m}"),
        other => panic!("expected charge_already_refunded, got {other:?}"),
    }
    let charge = sim
        .charges()
        .into_iter()
        .find(|c| c["payment_intent"] == pi)
        .unwrap();
    assert_eq!(charge["amount_refunded"], 1000);
    assert_eq!(charge["refunded"], true);
    assert_eq!(
        sim.refunds()
            .iter()
            .filter(|r| r["payment_intent"] == pi)
            .count(),
        2
    );
}

#[test]
fn a_key_reused_with_other_parameters_is_an_idempotency_error() {
    let (sim, sb) = sandbox();
    let handle = open(&config(&sb, &sim, 100));
    let before = charges(&sim);
    handle
        .action(
            "process_payment",
            &json!({"amount": "5.00", "currency": "EUR", "idempotency_key": "order-1"}),
        )
        .expect("first");
    match handle.action(
        "process_payment",
        &json!({"amount": "6.00", "currency": "EUR", "idempotency_key": "order-1"}),
    ) {
        Err(ConnectorError::Permanent(m)) => assert!(
            m.contains("idempotency_error") && m.contains("order-1"),
            "{m}"
        ),
        other => panic!("expected idempotency_error, got {other:?}"),
    }
    assert_eq!(charges(&sim), before + 1);
}

#[test]
fn a_stored_500_is_replayed_for_the_same_key_and_charges_nothing() {
    let (sim, sb) = sandbox();
    let handle = open(&config(&sb, &sim, 100));
    let before = (charges(&sim), sim.posts().len());
    sim.fail_next_posts_with_500(1);
    let input = json!({"amount": "3.00", "currency": "EUR", "sale_id": "s-500"});
    let e = handle.action("process_payment", &input).unwrap_err();
    assert!(
        matches!(&e, ConnectorError::Permanent(m) if m.contains("HTTP 500: api_error")),
        "{e:?}"
    );
    assert_eq!(
        sim.posts().len(),
        before.1 + 1,
        "Stripe-Should-Retry: false is obeyed"
    );
    let e2 = handle.action("process_payment", &input).unwrap_err();
    assert_eq!(e2, e, "the same stored 500");
    assert_eq!(sim.posts().last().unwrap().outcome, PostOutcome::Replayed);
    assert_eq!(charges(&sim), before.0);
}

#[test]
fn zero_decimal_currencies_go_out_and_come_back_exactly() {
    let (sim, sb) = sandbox();
    let handle = open(&config(&sb, &sim, 100));
    let out = handle
        .action(
            "process_payment",
            &json!({"amount": "500", "currency": "jpy", "sale_id": "jp-1"}),
        )
        .expect("yen");
    let pi = sim
        .payment_intents()
        .into_iter()
        .find(|p| p["id"] == out["id"])
        .unwrap();
    assert_eq!(
        (pi["amount"].as_i64(), pi["currency"].as_str()),
        (Some(500), Some("jpy"))
    );
    let (payments, _) = read_all(&handle, "payments");
    let read = payments.iter().find(|p| p["id"] == out["id"]).unwrap();
    assert_eq!(
        (read["amount"].as_str(), read["currency"].as_str()),
        (Some("500"), Some("JPY"))
    );

    let posts = sim.posts().len();
    for (amount, currency) in [("12.345", "EUR"), ("1.5", "JPY")] {
        match handle.action(
            "process_payment",
            &json!({"amount": amount, "currency": currency}),
        ) {
            Err(ConnectorError::Permanent(m)) => assert!(m.contains("more decimals"), "{m}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    assert_eq!(sim.posts().len(), posts, "nothing was sent");
}

#[test]
fn a_forged_or_stale_webhook_signature_is_rejected() {
    let (sim, sb) = sandbox();
    let handle = open(&config(&sb, &sim, 100));
    let now = chrono::Utc::now().timestamp();
    let event = sim.signed_events(now).pop().expect("an event");
    let verified = handle
        .action(
            "verify_webhook",
            &json!({"payload": event.payload, "signature_header": event.signature_header}),
        )
        .expect("a genuine event passes");
    assert_eq!(
        verified,
        serde_json::from_str::<Value>(&event.payload).unwrap()
    );

    let refused = |payload: &str, header: Option<&str>| -> String {
        let mut input = json!({"payload": payload});
        if let Some(h) = header {
            input["signature_header"] = json!(h);
        }
        match handle.action("verify_webhook", &input) {
            Err(ConnectorError::Permanent(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    };
    let p = event.payload.as_str();
    let forged = signature_header("whsec_not_the_secret", now, p);
    assert!(refused(p, Some(&forged)).contains("no v1 signature matches"));
    let tampered = p.replacen("\"livemode\":false", "\"livemode\":true", 1);
    assert_ne!(tampered, p);
    assert!(refused(&tampered, Some(&event.signature_header)).contains("no v1 signature matches"));
    let stale = sim.sign_webhook(p, now - 301).signature_header;
    assert!(refused(p, Some(&stale)).contains("outside the 300 s tolerance"));
    assert!(refused(p, None).contains("missing Stripe-Signature header"));
    assert!(refused(p, Some(&format!("t={now}"))).contains("no v1 signature"));
    // The simulator serves the same signed events over HTTP.
    let served: Vec<Value> = serde_json::from_str(
        &reqwest::blocking::get(format!("{}/__stripe/events?timestamp={now}", sb.base_url))
            .unwrap()
            .text()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(served.len(), sim.events().len());
    assert_eq!(
        served.last().unwrap()["signature_header"],
        json!(event.signature_header)
    );
}

#[test]
fn wrong_credentials_are_a_clear_auth_error_and_the_right_key_passes_check() {
    let (sim, sb) = sandbox();
    let mut cfg = config(&sb, &sim, 100);
    cfg["secret_key"] = json!("sk_test_wrong_key_1234");
    let handle = open(&cfg);
    sb.clear_requests();
    match handle.check() {
        Err(ConnectorError::Auth(m)) => assert!(
            m.contains("stripe")
                && m.contains("Invalid API Key provided")
                && !m.contains("wrong_key"),
            "{m}"
        ),
        other => panic!("expected an auth error, got {other:?}"),
    }
    assert_eq!(sb.requests().len(), 1, "one request, no retry loop");
    assert!(matches!(
        handle.action(
            "process_payment",
            &json!({"amount": "1.00", "currency": "EUR", "idempotency_key": "auth-1"})
        ),
        Err(ConnectorError::Auth(_))
    ));
    let report = open(&config(&sb, &sim, 100)).check().expect("check passes");
    assert!(report.ok && report.message.contains("EUR"), "{report:?}");
}

/// Runs a pipeline file with `posbridge run` and the given state.
fn run(dir: &Path, name: &str, pipeline: Value) {
    let yaml = dir.join(format!("{name}.yaml"));
    std::fs::write(&yaml, serde_json::to_string_pretty(&pipeline).unwrap()).unwrap(); // JSON is YAML
    let state = format!("sqlite:{}", dir.join("state.sqlite").display());
    let r = posbridge_e2e::run(
        posbridge_e2e::posbridge()
            .arg("run")
            .arg(&yaml)
            .args(["--state", &state]),
    );
    assert_eq!(r.code, 0, "{r:?}");
}

fn run_payments_to_file(
    sb: &RunningSandbox,
    sim: &StripeSimulator,
    dir: &Path,
    name: &str,
) -> Vec<Value> {
    let out = dir.join(format!("{name}.ndjson"));
    run(
        dir,
        name,
        json!({
            "name": "stripe-payments-to-file",
            "source": {"connector": "stripe", "config": config(sb, sim, 25), "streams": ["payments"]},
            "sink": {"connector": "generic", "config": {"path": out, "format": "ndjson", "stream": "payments"}},
        }),
    );
    if out.exists() {
        posbridge_e2e::read_ndjson(&out)
    } else {
        Vec::new()
    }
}

#[test]
fn the_pipeline_to_generic_delivers_every_payment_once_and_then_only_new_ones() {
    let (sim, sb) = sandbox();
    let dir = tempfile::tempdir().unwrap();
    let first = run_payments_to_file(&sb, &sim, dir.path(), "first");
    let expected = sim.payment_intents();
    assert_eq!(first.len(), expected.len(), "no duplicates");
    assert_eq!(ids(&first), ids(&expected));
    assert_eq!(
        canonical_sums(&first, "amount"),
        stripe_sums(&expected, "amount")
    );

    let second = run_payments_to_file(&sb, &sim, dir.path(), "second");
    assert!(
        second.is_empty(),
        "a re-run delivers nothing twice: {second:?}"
    );

    let handle = open(&config(&sb, &sim, 100));
    let new = handle
        .action(
            "process_payment",
            &json!({"amount": "19.99", "currency": "EUR", "sale_id": "new-1"}),
        )
        .expect("new payment");
    let third = run_payments_to_file(&sb, &sim, dir.path(), "third");
    assert_eq!(
        ids(&third),
        BTreeSet::from([new["id"].as_str().unwrap().to_string()])
    );
    assert_eq!(third[0]["amount"], "19.99");
}

/// Values a JSON Schema can check are the schema's: the host refuses them before `open`, naming
/// each by its JSON path.
#[test]
fn config_values_the_schema_refuses_are_named_by_their_json_path() {
    posbridge_e2e::assert_config_refused_at(
        "stripe",
        &serde_json::from_str(r#"{"secret_key": "", "base_url": "https://", "page_size": 0}"#)
            .unwrap(),
        &["$.secret_key", "$.base_url", "$.page_size"],
    );
}

#[test]
fn lists_without_has_more_are_read_to_the_end() {
    // Without `has_more` the connector pages on until a short page.
    let sim = Arc::new(StripeSimulator::from_options(&options()).without_has_more());
    let sb = start(sim.clone(), 0, Faults::default()).expect("sandbox starts");
    let handle = open(&config(&sb, &sim, 3));
    let objects = sim.payment_intents();
    assert!(objects.len() > 6, "several pages");
    let (records, pages) = read_all(&handle, "payments");
    assert!(pages >= objects.len().div_ceil(3), "{pages} pages");
    assert_eq!(records.len(), objects.len(), "nothing twice");
    assert_eq!(ids(&records), ids(&objects));
    assert_eq!(
        canonical_sums(&records, "amount"),
        stripe_sums(&objects, "amount"),
        "to the cent"
    );
    assert!(sb.requests().iter().all(|r| r.status == 200));
}
