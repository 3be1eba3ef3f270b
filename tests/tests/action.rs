//! End-to-end tests of `posbridge action`: the stripe connector, loaded as a plugin, against its
//! simulator over HTTP on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use posbridge_e2e::{posbridge, run, Ran};
use posbridge_sandbox::stripe::StripeSimulator;
use posbridge_sandbox::{start, Faults, RunningSandbox, SandboxOptions};
use serde_json::{json, Value};

fn sandbox() -> (Arc<StripeSimulator>, RunningSandbox) {
    let sim = Arc::new(StripeSimulator::from_options(&SandboxOptions {
        vendor: "stripe".into(),
        stores: 1,
        registers_per_store: 1,
        days: 1,
        sales_per_day: 4,
        ..SandboxOptions::default()
    }));
    let sb = start(sim.clone(), 0, Faults::default()).expect("sandbox starts");
    (sim, sb)
}

fn config(sb: &RunningSandbox, secret_key: &str) -> Value {
    json!({
        "base_url": sb.base_url,
        "secret_key": secret_key,
        "default_payment_method": "pm_card_visa",
    })
}

fn write_json(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
    p
}

fn action(config: &Path, name: &str, input: &str) -> Ran {
    run(posbridge()
        .args(["action", "stripe", name, "--config"])
        .arg(config)
        .args(["--input", input]))
}

fn answer(r: &Ran) -> Value {
    assert_eq!(r.code, 0, "{r:?}");
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {r:?}"))
}

#[test]
fn a_payment_and_its_refund_are_taken_through_the_cli_and_found_at_stripe() {
    let (sim, sb) = sandbox();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_json(dir.path(), "stripe.json", &config(&sb, sim.secret_key()));
    let before = sim.payment_intents().len();

    let paid = answer(&action(
        &cfg,
        "process_payment",
        r#"{"amount": "23.45", "currency": "EUR", "idempotency_key": "till-7:0001", "description": "Bon 1"}"#,
    ));
    assert_eq!(paid["status"], "succeeded");
    assert_eq!(paid["amount"], "23.45");
    let pi = paid["id"].as_str().unwrap().to_string();
    let intents = sim.payment_intents();
    assert_eq!(intents.len(), before + 1);
    let at_stripe = intents.iter().find(|p| p["id"] == pi.as_str()).unwrap();
    assert_eq!(at_stripe["amount"], 2345);
    assert_eq!(at_stripe["currency"], "eur");
    let post = sim.posts().pop().unwrap();
    assert_eq!(post.idempotency_key.as_deref(), Some("till-7:0001"));

    // The refund's input from a file, a partial amount with its own reference.
    let input = write_json(
        dir.path(),
        "refund.json",
        &json!({"payment_id": pi, "amount": "3.45", "reference": "R-1"}),
    );
    let refunded = answer(&action(
        &cfg,
        "refund_payment",
        &format!("@{}", input.display()),
    ));
    assert_eq!(refunded["amount"], "3.45");
    assert_eq!(refunded["payment_id"], pi.as_str());
    let refunds = sim.refunds();
    let at_stripe = refunds
        .iter()
        .find(|r| r["id"] == refunded["id"])
        .expect("the refund is at stripe");
    assert_eq!(at_stripe["amount"], 345);
    assert_eq!(at_stripe["payment_intent"], pi.as_str());

    // More than what remains: Stripe's refusal, exit 5.
    let r = action(
        &cfg,
        "refund_payment",
        &json!({"payment_id": pi, "amount": "30.00", "reference": "R-2"}).to_string(),
    );
    assert_eq!(r.code, 5, "{r:?}");
    assert!(r.stderr.contains("amount_too_large"), "{r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");
}

#[test]
fn unknown_actions_bad_input_bad_config_and_a_refused_key_are_clear_errors() {
    let (sim, sb) = sandbox();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_json(dir.path(), "stripe.json", &config(&sb, sim.secret_key()));

    let r = action(&cfg, "process_paymnt", "{}");
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("has no action \"process_paymnt\"")
            && r.stderr.contains("did you mean \"process_payment\"")
            && r.stderr
                .contains("process_payment, refund_payment, verify_webhook"),
        "{r:?}"
    );

    let r = action(&cfg, "process_payment", "{\"amount\": ");
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--input:1:"), "{r:?}");

    // The input is the connector's to judge: refused before anything reaches Stripe.
    let posts = sim.posts().len();
    let r = action(
        &cfg,
        "process_payment",
        r#"{"amount": "4.50", "currency": "EUR"}"#,
    );
    assert_eq!(r.code, 5, "{r:?}");
    assert!(r.stderr.contains("idempotency_key"), "{r:?}");
    assert_eq!(sim.posts().len(), posts);

    let bad = write_json(
        dir.path(),
        "bad.json",
        &json!({"base_url": sb.base_url, "secret_key": "", "page_size": 0}),
    );
    let r = action(&bad, "process_payment", "{}");
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("$.secret_key") && r.stderr.contains("$.page_size"),
        "{r:?}"
    );

    let wrong_key = "sk_test_wrong_but_secret_4711";
    let wrong = write_json(dir.path(), "wrong.json", &config(&sb, wrong_key));
    let r = action(
        &wrong,
        "process_payment",
        r#"{"amount": "4.50", "currency": "EUR", "idempotency_key": "k-1"}"#,
    );
    assert_eq!(r.code, 3, "{r:?}");
    assert!(!r.stderr.contains(wrong_key), "the key is redacted: {r:?}");
    assert!(!r.stdout.contains(wrong_key), "{r:?}");

    let r = run(posbridge()
        .args(["action", "stripe", "process_payment", "--config"])
        .arg(dir.path().join("missing.json")));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("missing.json"), "{r:?}");
}

#[test]
fn a_payment_taken_by_action_arrives_through_a_cli_run_recorded_with_its_trigger() {
    let (sim, sb) = sandbox();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_json(dir.path(), "stripe.json", &config(&sb, sim.secret_key()));
    let paid = answer(&action(
        &cfg,
        "process_payment",
        r#"{"amount": "7.10", "currency": "EUR", "sale_id": "S-9"}"#,
    ));
    let out = dir.path().join("payments.ndjson");
    let pipeline = write_json(
        dir.path(),
        "p.yaml",
        &json!({
            "name": "stripe-payments",
            "source": {"connector": "stripe", "config": config(&sb, sim.secret_key()), "streams": ["payments"]},
            "sink": {"connector": "generic", "config": {"path": out, "format": "ndjson", "stream": "payments"}},
        }),
    );
    let state = format!("sqlite:{}", dir.path().join("state.db").display());
    let r = run(posbridge()
        .arg("run")
        .arg(&pipeline)
        .args(["--state", &state]));
    assert_eq!(r.code, 0, "{r:?}");
    let delivered = posbridge_e2e::read_ndjson(&out);
    assert_eq!(delivered.len(), sim.payment_intents().len());
    let mine = delivered.iter().find(|p| p["id"] == paid["id"]).unwrap();
    assert_eq!(mine["amount"], "7.10");

    let r = run(posbridge().args(["runs", "--state", &state]));
    assert_eq!(r.code, 0, "{r:?}");
    let mut lines = r.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    let col = header
        .iter()
        .position(|h| *h == "TRIGGER")
        .expect("a TRIGGER column");
    assert_eq!(row[col], "cli", "{}", r.stdout);
    let r = run(posbridge().args(["runs", "--json", "--state", &state]));
    let runs: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(runs[0]["trigger"], "cli");
    assert_eq!(runs[0]["pipeline"], "stripe-payments");
}
