//! End-to-end tests of the PSP payments (`posbridge::payments`): the stripe connector, loaded as
//! a plugin, against its simulator over HTTP on 127.0.0.1, with the state in SQLite.

use std::sync::Arc;

use posbridge::payments::{MemorySealedStore, PaymentError, Payments, SealedStore, PSP_PURPOSE};
use posbridge::state::SqliteStore;
use posbridge_sandbox::stripe::{PostOutcome, StripeSimulator};
use posbridge_sandbox::{start, Faults, RunningSandbox, SandboxOptions};
use serde_json::{json, Value};

struct Fixture {
    sim: Arc<StripeSimulator>,
    sb: RunningSandbox,
    sealed: Arc<MemorySealedStore>,
    payments: Payments,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
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
    let state = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let sealed = Arc::new(MemorySealedStore::default());
    let payments = Payments::new(Arc::new(posbridge_e2e::registry()), sealed.clone(), state);
    Fixture {
        sim,
        sb,
        sealed,
        payments,
        _dir: dir,
    }
}

impl Fixture {
    fn config(&self) -> Value {
        json!({"base_url": self.sb.base_url, "secret_key": self.sim.secret_key(),
               "default_payment_method": "pm_card_visa"})
    }

    fn configured(self) -> Self {
        let done = self
            .payments
            .configure_psp("store-a", "stripe", &self.config())
            .expect("configured");
        assert_eq!(done.provider, "stripe");
        assert!(done.check.contains("secret key accepted"), "{done:?}");
        self
    }

    /// Payment intents at the simulator created for this store's key `key`.
    fn charges_for(&self, key: &str) -> usize {
        self.sim
            .posts()
            .iter()
            .filter(|p| {
                p.path.ends_with("payment_intents")
                    && p.outcome == PostOutcome::Executed
                    && p.idempotency_key.as_deref() == Some(&format!("store-a:{key}"))
            })
            .count()
    }
}

#[test]
fn the_same_key_twice_charges_once_and_answers_the_first_result() {
    let f = fixture().configured();
    let before = f.sim.payment_intents().len();
    let input = json!({"amount": "12.50", "currency": "EUR", "description": "Bon 77"});
    let first = f
        .payments
        .process_payment("store-a", "pos-1:77", &input)
        .expect("paid");
    assert!(!first.replayed);
    assert_eq!(first.answer["status"], "succeeded");
    assert_eq!(first.answer["amount"], "12.50");
    let again = f
        .payments
        .process_payment("store-a", "pos-1:77", &input)
        .expect("answered again");
    assert!(again.replayed);
    assert_eq!(again.answer, first.answer);
    assert_eq!(f.sim.payment_intents().len(), before + 1, "one charge");
    assert_eq!(f.charges_for("pos-1:77"), 1);
    let pi = f
        .sim
        .payment_intents()
        .into_iter()
        .find(|p| p["id"] == first.answer["id"])
        .unwrap();
    assert_eq!(pi["amount"], 1250);

    // The same key for another request is refused, and charges nothing.
    let e = f
        .payments
        .process_payment(
            "store-a",
            "pos-1:77",
            &json!({"amount": "99.00", "currency": "EUR"}),
        )
        .unwrap_err();
    assert!(matches!(e, PaymentError::KeyReused { .. }), "{e:?}");
    assert_eq!(e.http_status(), 409);
    assert_eq!(f.sim.payment_intents().len(), before + 1);

    // A new key is a new payment.
    f.payments
        .process_payment("store-a", "pos-1:78", &input)
        .expect("second payment");
    assert_eq!(f.sim.payment_intents().len(), before + 2);

    // The refund, idempotent the same way.
    let refund_input = json!({"payment_id": first.answer["id"], "amount": "2.50"});
    let r1 = f
        .payments
        .refund_payment("store-a", "pos-1:77-r", &refund_input)
        .expect("refunded");
    let r2 = f
        .payments
        .refund_payment("store-a", "pos-1:77-r", &refund_input)
        .expect("answered again");
    assert_eq!((r1.replayed, r2.replayed), (false, true));
    assert_eq!(r2.answer, r1.answer);
    let refunds: Vec<Value> = f
        .sim
        .refunds()
        .into_iter()
        .filter(|r| r["payment_intent"] == first.answer["id"])
        .collect();
    assert_eq!(refunds.len(), 1, "refunded once");
    assert_eq!(refunds[0]["amount"], 250);
}

#[test]
fn concurrent_requests_with_one_key_charge_once() {
    let f = Arc::new(fixture().configured());
    let before = f.sim.payment_intents().len();
    let input = json!({"amount": "5.00", "currency": "EUR"});
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (f, input) = (f.clone(), input.clone());
            std::thread::spawn(move || f.payments.process_payment("store-a", "race-1", &input))
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for r in &results {
        match r {
            Ok(a) => assert_eq!(a.answer["amount"], "5.00"),
            Err(PaymentError::InProgress { .. }) => {}
            Err(e) => panic!("unexpected: {e:?}"),
        }
    }
    assert!(results.iter().any(Result::is_ok));
    assert_eq!(f.sim.payment_intents().len(), before + 1, "one charge");
    assert_eq!(f.charges_for("race-1"), 1);
}

#[test]
fn configure_psp_refuses_other_providers_invalid_configs_and_refused_keys() {
    let f = fixture();
    let e = f
        .payments
        .configure_psp("store-a", "adyen", &f.config())
        .unwrap_err();
    assert_eq!(e.code(), "provider_not_supported");
    assert!(
        e.to_string()
            .contains("\"adyen\" is not supported yet; supported: stripe"),
        "{e}"
    );
    let e = f
        .payments
        .configure_psp("store-a", "bitcoin", &f.config())
        .unwrap_err();
    assert_eq!(e.code(), "unknown_provider");

    let e = f
        .payments
        .configure_psp(
            "store-a",
            "stripe",
            &json!({"base_url": f.sb.base_url, "secret_key": "", "page_size": 500}),
        )
        .unwrap_err();
    let PaymentError::InvalidConfig { violations } = &e else {
        panic!("{e:?}")
    };
    let paths: Vec<&str> = violations.iter().map(|v| v.path.as_str()).collect();
    assert!(
        paths.contains(&"$.secret_key") && paths.contains(&"$.page_size"),
        "{paths:?}"
    );

    let wrong = "sk_test_not_the_key_0815";
    let e = f
        .payments
        .configure_psp(
            "store-a",
            "stripe",
            &json!({"base_url": f.sb.base_url, "secret_key": wrong}),
        )
        .unwrap_err();
    assert_eq!(e.code(), "psp_auth", "{e:?}");
    assert!(!e.to_string().contains(wrong), "{e}");
    assert!(
        f.sealed.get("store-a", PSP_PURPOSE).unwrap().is_none(),
        "nothing refused is stored"
    );

    // Without a configured PSP nothing is charged.
    let e = f
        .payments
        .process_payment(
            "store-a",
            "k",
            &json!({"amount": "1.00", "currency": "EUR"}),
        )
        .unwrap_err();
    assert_eq!(e.code(), "psp_not_configured");
    let f = f.configured();
    assert_eq!(
        f.payments.provider("store-a").unwrap().as_deref(),
        Some("stripe")
    );
    assert_eq!(
        f.sealed.get("store-a", PSP_PURPOSE).unwrap().unwrap()["config"]["secret_key"],
        f.sim.secret_key()
    );
    let e = f
        .payments
        .process_payment(
            "store-a",
            "k",
            &json!({"amount": "1.00", "currency": "EUR", "idempotency_key": "x"}),
        )
        .unwrap_err();
    assert_eq!(e.code(), "invalid_input");
    let e = f
        .payments
        .process_payment(
            "store-a",
            " ",
            &json!({"amount": "1.00", "currency": "EUR"}),
        )
        .unwrap_err();
    assert_eq!(e.code(), "invalid_idempotency_key");
}
