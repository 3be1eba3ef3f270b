//! The built-in canonical hub end to end: generated sales go generic → hub with the real binary
//! (exactly once across reruns), the export figures per store and day equal figures computed
//! here from the generated file (to the cent; JSON and CSV agree), and hub → generic gives the
//! same sales back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr;

use posbridge::hub::{export_sales_data, ExportFormat, HubStore, Period};
use posbridge_e2e::*;
use posbridge_plugin_api::model::Sale;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;

fn write_pipeline(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let p = dir.join(format!("{name}.yaml"));
    std::fs::write(&p, format!("name: {name}\n{body}")).unwrap();
    p
}

fn run_json(pipeline: &Path, state: &Path) -> Value {
    let r = run(posbridge()
        .arg("run")
        .arg(pipeline)
        .arg("--state")
        .arg(format!("sqlite:{}", state.display()))
        .arg("--json"));
    assert_eq!(r.code, 0, "{r:?}");
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"))
}

fn dec(v: &Value) -> Decimal {
    Decimal::from_str(
        v.as_str()
            .unwrap_or_else(|| panic!("not a decimal string: {v}")),
    )
    .unwrap()
}

/// The figures of one store's day, computed from the generated records alone.
#[derive(Debug, Default)]
struct Expected {
    ids: BTreeSet<String>,
    revenue: Decimal,
    sales: u64,
    items: Decimal,
    products: BTreeMap<String, (Decimal, Decimal)>,
}

/// The raw JSON number text after `"key":` (so no float is involved in the comparison).
fn number_text<'a>(json: &'a str, key: &str) -> &'a str {
    let start = json.find(&format!("\"{key}\":")).unwrap() + key.len() + 3;
    let rest = &json[start..];
    &rest[..rest.find([',', '}']).unwrap()]
}

#[test]
fn generated_sales_through_the_hub_give_the_same_figures_and_sales_back() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in.ndjson");
    let state = d.path().join("s.db");
    generate_sales_file(&input, 300, 7);
    let generated = read_ndjson(&input);

    // The hub is listed as built-in and accepted by `validate`.
    let r = run(posbridge().args(["plugins", "list"]));
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("hub "))
        .unwrap_or_else(|| panic!("{r:?}"));
    assert!(
        line.contains("built-in") && line.contains("source,sink"),
        "{line}"
    );
    let into_hub = write_pipeline(
        d.path(),
        "into-hub",
        &format!(
            "source:\n  connector: generic\n  config: {{path: {}, format: ndjson}}\n  streams: [sales]\nsink:\n  connector: hub\n  config: {{}}\n",
            input.display()
        ),
    );
    let r = run(posbridge().arg("validate").arg(&into_hub));
    assert_eq!(r.code, 0, "{r:?}");
    // Its config is checked by its schema, naming the JSON path.
    let bad = write_pipeline(
        d.path(),
        "bad",
        &format!(
            "source:\n  connector: generic\n  config: {{path: {}, format: ndjson}}\n  streams: [sales]\nsink:\n  connector: hub\n  config: {{store_id: 7}}\n",
            input.display()
        ),
    );
    let r = run(posbridge().arg("validate").arg(&bad));
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("$.sink.config.store_id"), "{r:?}");

    // Into the hub, twice: nothing twice.
    let first = run_json(&into_hub, &state);
    assert_eq!(
        (first["read"].as_u64(), first["written"].as_u64()),
        (Some(300), Some(300)),
        "{first}"
    );
    let second = run_json(&into_hub, &state);
    assert_eq!(second["written"], 0, "{second}");
    let hub = HubStore::open_sqlite(&state).unwrap();
    let stores: BTreeSet<String> = generated
        .iter()
        .map(|s| s["store_id"].as_str().unwrap().to_string())
        .collect();
    let stored: u64 = stores.iter().map(|s| hub.count("sales", s).unwrap()).sum();
    assert_eq!(stored, 300);

    // Figures per store and business day, from the generated file alone.
    let mut expected: BTreeMap<(String, String), Expected> = BTreeMap::new();
    for s in &generated {
        let kind = s["kind"].as_str().unwrap();
        let e = expected
            .entry((
                s["store_id"].as_str().unwrap().to_string(),
                s["business_day"].as_str().unwrap().to_string(),
            ))
            .or_default();
        if !["sale", "refund", "cancellation"].contains(&kind) {
            continue;
        }
        e.ids.insert(s["id"].as_str().unwrap().to_string());
        e.revenue += dec(&s["totals"]["gross"]);
        let lines = s["lines"].as_array().unwrap();
        if kind == "sale" {
            e.sales += 1;
            e.items += lines.iter().map(|l| dec(&l["quantity"])).sum::<Decimal>();
        }
        for l in lines {
            let p = e
                .products
                .entry(l["name"].as_str().unwrap().to_string())
                .or_default();
            p.0 += dec(&l["quantity"]);
            p.1 += dec(&l["gross"]);
        }
    }
    assert!(expected.len() > 1, "the test needs several store days");
    for ((store, day), e) in &expected {
        let period = Period::parse(day, day).unwrap();
        let mut json = Vec::new();
        export_sales_data(&hub, store, &period, ExportFormat::Json, &mut json).unwrap();
        let text = String::from_utf8(json).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        let summary = &v["data"]["summary"];
        let at = format!("{store} {day}");
        assert_eq!(summary["totalTransactions"], e.ids.len(), "{at}");
        assert_eq!(dec(&summary["totalRevenueExact"]), e.revenue, "{at}");
        assert_eq!(
            number_text(&text, "totalRevenue"),
            format!("{:.2}", e.revenue),
            "{at}"
        );
        let avg = if e.sales == 0 {
            Decimal::ZERO
        } else {
            (e.items / Decimal::from(e.sales))
                .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
        };
        assert_eq!(
            Decimal::from_str(number_text(&text, "avgBasketSize")).unwrap(),
            avg,
            "{at}"
        );
        let mut top: Vec<(&String, &(Decimal, Decimal))> = e.products.iter().collect();
        top.sort_by(|a, b| b.1 .1.cmp(&a.1 .1).then(a.0.cmp(b.0)));
        top.truncate(10);
        let got = summary["topProducts"].as_array().unwrap();
        assert_eq!(got.len(), top.len(), "{at}");
        for (g, (name, (sold, revenue))) in got.iter().zip(top) {
            assert_eq!(g["name"].as_str(), Some(name.as_str()), "{at}");
            assert_eq!(dec(&g["revenueExact"]), *revenue, "{at} {name}");
            assert_eq!(
                Decimal::from_str(&g["sold"].to_string()).unwrap(),
                *sold,
                "{at} {name}"
            );
        }
        let tx = v["data"]["transactions"].as_array().unwrap();
        let ids: BTreeSet<String> = tx
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(&ids, &e.ids, "{at}");

        // The CSV lists the same transactions with the same amounts.
        let mut csv_out = Vec::new();
        export_sales_data(&hub, store, &period, ExportFormat::Csv, &mut csv_out).unwrap();
        let csv_text = String::from_utf8(csv_out).unwrap();
        let mut rows = csv_text.lines();
        let header: Vec<&str> = rows.next().unwrap().split(',').collect();
        let (id_col, gross_col) = (
            header.iter().position(|h| *h == "id").unwrap(),
            header.iter().position(|h| *h == "gross").unwrap(),
        );
        let mut csv_total = Decimal::ZERO;
        let mut csv_ids = BTreeSet::new();
        for row in rows {
            let cells: Vec<&str> = row.split(',').collect();
            csv_ids.insert(cells[id_col].to_string());
            csv_total += Decimal::from_str(cells[gross_col]).unwrap();
        }
        assert_eq!((&csv_ids, csv_total), (&e.ids, e.revenue), "{at} csv");
    }

    // Back out of the hub, store by store: the same sales.
    let mut back: Vec<Sale> = Vec::new();
    for store in &stores {
        let out = d.path().join(format!("out-{store}.ndjson"));
        let p = write_pipeline(
            d.path(),
            &format!("from-hub-{store}"),
            &format!(
                "source:\n  connector: hub\n  config: {{store_id: {store}}}\n  streams: [sales]\nsink:\n  connector: generic\n  config: {{path: {}, format: ndjson}}\n",
                out.display()
            ),
        );
        let r = run_json(&p, &state);
        assert_eq!(
            r["written"].as_u64(),
            Some(hub.count("sales", store).unwrap()),
            "{r}"
        );
        back.extend(
            read_ndjson(&out)
                .into_iter()
                .map(|v| serde_json::from_value::<Sale>(v).unwrap()),
        );
    }
    let original: Vec<Sale> = generated
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
    assert_same_sales(back, original);
}
