//! A sink slower than `delivery.timeout_secs`: the host cancels the write that runs past its
//! timeout (aborting its in-flight request), waits for it to stop, keeps what it finished and
//! sends only the rest again. Every sale reaches the vendor exactly once, and the run says so.
//!
//! lexoffice is the slow sink: its 2 requests per second (paced by the host) make a batch of 20
//! vouchers take about ten seconds, five times the timeout of this pipeline.

use std::collections::BTreeSet;
use std::sync::Arc;

use posbridge_e2e::{generate_sales_file, posbridge, read_ndjson, run};
use posbridge_plugin_api::model::{Decimal, Sale};
use posbridge_sandbox::lexoffice::{LexofficeSimulator, INCOME_CATEGORIES};
use posbridge_sandbox::{start, Faults};
use serde_json::{json, Value};

const KEY: &str = "slow-sink-key";

#[test]
fn a_sink_slower_than_the_timeout_books_every_sale_once() {
    let sim = Arc::new(LexofficeSimulator::new(KEY.to_string()));
    let sb = start(sim.clone(), 0, Faults::default()).expect("sandbox starts");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("sales.ndjson");
    generate_sales_file(&input, 20, 17);
    let sales: Vec<Sale> = read_ndjson(&input)
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
    let rates: BTreeSet<String> = sales
        .iter()
        .flat_map(|s| s.taxes.iter().map(|t| t.rate.normalize().to_string()))
        .collect();
    let mut tax_rates = serde_json::Map::new();
    for (i, r) in rates.into_iter().enumerate() {
        tax_rates.insert(r, json!(INCOME_CATEGORIES[i % INCOME_CATEGORIES.len()].0));
    }
    let pipeline = json!({
        "name": "slow-lexoffice",
        "source": {"connector": "generic", "config": {"path": input, "format": "ndjson"}, "streams": ["sales"]},
        "sink": {"connector": "lexoffice", "config": {"base_url": sb.base_url, "api_key": KEY}, "mode": "per_sale"},
        "mapping": {
            "tax_rates": tax_rates,
            "refund_kinds": {"cancellation": {"19": INCOME_CATEGORIES[3].0}},
            "payment_methods": {"cash": "Bar", "card": "EC-Karte", "voucher": "Gutschein", "invoice": "Rechnung", "points": "Punkte"},
        },
        "delivery": {"timeout_secs": 2, "batch_size": 20},
    });
    let yaml = dir.path().join("p.yaml");
    std::fs::write(&yaml, serde_json::to_string_pretty(&pipeline).unwrap()).unwrap();
    let state = format!("sqlite:{}", dir.path().join("s.db").display());
    let r = run(posbridge()
        .arg("run")
        .arg(&yaml)
        .args(["--state", &state, "--json"]));
    assert_eq!(r.code, 0, "{r:?}");
    let report: Value = serde_json::from_str(&r.stdout).expect("--json report");

    let revenue: Vec<&Sale> = sales.iter().filter(|s| s.kind.is_revenue()).collect();
    let vouchers = sim.vouchers();
    let numbers: BTreeSet<&str> = vouchers.iter().map(|v| v.voucher_number.as_str()).collect();
    assert_eq!(
        numbers.len(),
        vouchers.len(),
        "a voucher was booked twice: {:?}",
        vouchers
            .iter()
            .map(|v| v.voucher_number.as_str())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        vouchers.len(),
        revenue.len(),
        "every sale at the vendor exactly once"
    );
    // The counts tell the truth: every record is either written now or found already booked.
    let written = report["written"].as_u64().unwrap();
    let duplicates = report["duplicates"].as_u64().unwrap();
    assert_eq!(report["dead_lettered"], 0, "{report}");
    assert_eq!(written + duplicates, sales.len() as u64, "{report}");
    assert!(
        report["retries"].as_u64().unwrap() > 0,
        "the writes did time out: {report}"
    );
    let booked: Decimal = vouchers
        .iter()
        .map(|v| {
            let sign = if v.voucher_type == "salescreditnote" {
                -Decimal::ONE
            } else {
                Decimal::ONE
            };
            v.per_rate().iter().map(|t| t.gross).sum::<Decimal>() * sign
        })
        .sum();
    let expected: Decimal = revenue.iter().map(|s| s.totals.gross).sum();
    assert_eq!(booked, expected);
}
