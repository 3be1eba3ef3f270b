//! End-to-end tests of `posbridge export`: the real binary reads generated sales through the
//! `generic` connector (loaded as a plugin) and writes them as ndjson, json or csv, with the
//! BEEP! summary checked against sums this file computes on its own from the input.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use posbridge_e2e::{posbridge, run, Ran};
use rust_decimal::Decimal;
use serde_json::{json, Value};

/// The sales CSV header the export documents.
const SALES_HEADER: &str =
    "id,store_id,register_id,receipt_number,kind,business_day,timestamp,currency,net,tax,gross,payment_methods";

/// A temporary folder with generated sales (`in.ndjson`, via the binary) and a generic
/// connector config reading them (`source.json`).
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(sales: usize) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("in.ndjson");
        let r = run(posbridge()
            .args([
                "sandbox",
                "generate",
                "--sales",
                &sales.to_string(),
                "--seed",
                "5",
                "--out",
            ])
            .arg(&input));
        assert_eq!(r.code, 0, "{r:?}");
        let config = json!({"path": input, "format": "ndjson"});
        std::fs::write(dir.path().join("source.json"), config.to_string()).expect("write config");
        Fixture { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The input sales, in file order.
    fn input(&self) -> Vec<Value> {
        parse_ndjson(&std::fs::read_to_string(self.path("in.ndjson")).expect("read input"))
    }

    /// Runs `posbridge export --connector generic --config source.json` with more arguments.
    fn export(&self, args: &[&str]) -> Ran {
        run(posbridge()
            .current_dir(self.dir.path())
            .args([
                "export",
                "--connector",
                "generic",
                "--config",
                "source.json",
            ])
            .args(args))
    }
}

fn parse_ndjson(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Records by their `id`; fails on a duplicate id.
fn by_id(records: &[Value]) -> BTreeMap<String, Value> {
    let mut m = BTreeMap::new();
    for r in records {
        let id = r["id"].as_str().expect("a string id").to_string();
        assert!(
            m.insert(id.clone(), r.clone()).is_none(),
            "duplicate id {id}"
        );
    }
    m
}

fn dec(v: &Value) -> Decimal {
    Decimal::from_str(
        v.as_str()
            .unwrap_or_else(|| panic!("{v} is not a decimal string")),
    )
    .unwrap_or_else(|e| panic!("{v}: {e}"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[test]
fn ndjson_export_equals_the_input_field_for_field() {
    let f = Fixture::new(300);
    // A small page size makes the export follow the source's cursor across many pages.
    let r = f.export(&[
        "--format",
        "ndjson",
        "--page-size",
        "7",
        "--output",
        "out.ndjson",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.is_empty(),
        "records went to the file, not stdout: {r:?}"
    );
    let input = f.input();
    assert_eq!(input.len(), 300);
    let out = parse_ndjson(&read(&f.path("out.ndjson")));
    assert_eq!(out.len(), input.len());
    assert_eq!(by_id(&out), by_id(&input));
    assert!(r.stderr.contains("exported 300 sales records"), "{r:?}");
}

#[test]
fn ndjson_goes_to_stdout_without_output() {
    let f = Fixture::new(300);
    let r = f.export(&[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(by_id(&parse_ndjson(&r.stdout)), by_id(&f.input()));
}

#[test]
fn json_export_is_one_array_of_the_same_records() {
    let f = Fixture::new(300);
    let r = f.export(&["--format", "json", "--page-size", "64", "-o", "out.json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let out: Value = serde_json::from_str(&read(&f.path("out.json"))).expect("valid JSON");
    let arr = out.as_array().expect("a top-level array");
    assert_eq!(arr.len(), 300);
    assert_eq!(by_id(arr), by_id(&f.input()));
}

#[test]
fn csv_export_has_the_header_and_one_row_per_sale() {
    let f = Fixture::new(300);
    let r = f.export(&["--format", "csv", "-o", "out.csv"]);
    assert_eq!(r.code, 0, "{r:?}");
    let text = read(&f.path("out.csv"));
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(SALES_HEADER));
    // None of these generated cells holds a comma or a quote, so a plain split is a full parse.
    assert!(!text.contains('"'), "unexpected quoting in {text}");
    let input = by_id(&f.input());
    let mut seen = BTreeMap::new();
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells.len(), 12, "{line}");
        let sale = input
            .get(cells[0])
            .unwrap_or_else(|| panic!("unknown id in {line}"));
        assert_eq!(cells[1], sale["store_id"]);
        assert_eq!(cells[3], sale["receipt_number"]);
        assert_eq!(cells[4], sale["kind"]);
        assert_eq!(cells[5], sale["business_day"]);
        assert_eq!(cells[7], sale["currency"]);
        assert_eq!(
            Decimal::from_str(cells[10]).unwrap(),
            dec(&sale["totals"]["gross"]),
            "{line}"
        );
        let mut methods: Vec<&str> = Vec::new();
        for p in sale["payments"].as_array().unwrap() {
            let m = p["method"].as_str().unwrap();
            if !methods.contains(&m) {
                methods.push(m);
            }
        }
        assert_eq!(cells[11], methods.join("|"), "{line}");
        assert!(
            seen.insert(cells[0].to_string(), ()).is_none(),
            "row twice: {line}"
        );
    }
    assert_eq!(seen.len(), input.len());
}

/// The BEEP! summary, worked out here from the input file: revenue receipts are kinds sale,
/// refund and cancellation; the average is rounded half away from zero to the cent in integer
/// cents; top products are the 10 names with the highest summed line gross.
fn expected_summary(input: &[Value]) -> (Decimal, u64, Decimal, Vec<(String, Decimal, Decimal)>) {
    let mut revenue = Decimal::ZERO;
    let mut count = 0u64;
    let mut products: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
    for s in input {
        if !matches!(s["kind"].as_str(), Some("sale" | "refund" | "cancellation")) {
            continue;
        }
        revenue += dec(&s["totals"]["gross"]);
        count += 1;
        for l in s["lines"].as_array().unwrap() {
            let e = products
                .entry(l["name"].as_str().unwrap().to_string())
                .or_default();
            e.0 += dec(&l["quantity"]);
            e.1 += dec(&l["gross"]);
        }
    }
    let mut cents = revenue;
    cents.rescale(2);
    assert_eq!(cents, revenue, "revenue has no more than 2 decimals");
    let (c, n) = (cents.mantissa(), i128::from(count));
    let avg_cents = c.signum() * ((2 * c.abs() + n) / (2 * n));
    let avg = Decimal::from_i128_with_scale(avg_cents, 2);
    let mut top: Vec<(String, Decimal, Decimal)> = products
        .into_iter()
        .map(|(name, (sold, rev))| (name, sold, rev))
        .collect();
    top.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    top.truncate(10);
    (revenue, count, avg, top)
}

fn assert_summary_matches(summary: &Value, input: &[Value]) {
    assert_eq!(summary["success"], true, "{summary}");
    let s = &summary["data"]["summary"];
    let (revenue, count, avg, top) = expected_summary(input);
    assert!(count > 0);
    assert_eq!(dec(&s["totalRevenue"]), revenue, "{s}");
    assert_eq!(s["totalTransactions"], json!(count), "{s}");
    assert_eq!(dec(&s["avgBasketSize"]), avg, "{s}");
    // Money is exact: JSON strings with cents.
    for money in [&s["totalRevenue"], &s["avgBasketSize"]] {
        let text = money.as_str().expect("money as a string");
        assert_eq!(text.split('.').nth(1).map(str::len), Some(2), "{text}");
    }
    let got: Vec<(String, Decimal, Decimal)> = s["topProducts"]
        .as_array()
        .expect("topProducts")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                dec(&p["sold"]),
                dec(&p["revenue"]),
            )
        })
        .collect();
    assert_eq!(got, top);
}

#[test]
fn summary_totals_equal_sums_computed_from_the_input() {
    let f = Fixture::new(300);
    let input = f.input();
    // Some receipts are not revenue, so the test tells the two apart.
    assert!(
        input.iter().any(|s| s["kind"] != "sale"),
        "the generator makes other kinds too"
    );

    let only = f.export(&["--summary-only"]);
    assert_eq!(only.code, 0, "{only:?}");
    let summary: Value = serde_json::from_str(&only.stdout).expect("summary JSON on stdout");
    assert_summary_matches(&summary, &input);
    let period = &summary["data"]["period"];
    let days: Vec<&str> = input
        .iter()
        .map(|s| s["business_day"].as_str().unwrap())
        .collect();
    assert_eq!(period["from"], *days.iter().min().unwrap());
    assert_eq!(period["to"], *days.iter().max().unwrap());

    // Records to a file: the summary is on stdout.
    let to_file = f.export(&["--summary", "-o", "out.ndjson"]);
    assert_eq!(to_file.code, 0, "{to_file:?}");
    assert_eq!(
        serde_json::from_str::<Value>(&to_file.stdout).unwrap(),
        summary
    );
    assert_eq!(
        parse_ndjson(&read(&f.path("out.ndjson"))).len(),
        input.len()
    );

    // Records on stdout: stdout holds only records, the summary goes to --summary-output.
    let to_stdout = f.export(&["--summary-output", "summary.json"]);
    assert_eq!(to_stdout.code, 0, "{to_stdout:?}");
    assert_eq!(by_id(&parse_ndjson(&to_stdout.stdout)), by_id(&input));
    let file: Value = serde_json::from_str(&read(&f.path("summary.json"))).unwrap();
    assert_eq!(file, summary);
}

#[test]
fn from_and_to_limit_the_export_and_the_period() {
    // 1000 generated sales span three business days.
    let f = Fixture::new(1000);
    let input = f.input();
    let day = "2025-01-07";
    let in_window: Vec<Value> = input
        .iter()
        .filter(|s| s["business_day"] == day)
        .cloned()
        .collect();
    assert!(!in_window.is_empty() && in_window.len() < input.len());

    let r = f.export(&["--from", day, "--to", day, "--summary", "-o", "day.ndjson"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        by_id(&parse_ndjson(&read(&f.path("day.ndjson")))),
        by_id(&in_window)
    );
    let summary: Value = serde_json::from_str(&r.stdout).expect("summary JSON");
    assert_eq!(summary["data"]["period"], json!({"from": day, "to": day}));
    assert_summary_matches(&summary, &in_window);
}

#[test]
fn a_bad_config_fails_with_the_json_path_and_writes_nothing() {
    let f = Fixture::new(10);
    let bad = json!({"path": f.path("in.ndjson"), "page_size": "ten"});
    std::fs::write(f.path("bad.json"), bad.to_string()).unwrap();
    let r = run(posbridge().current_dir(f.dir.path()).args([
        "export",
        "--connector",
        "generic",
        "--config",
        "bad.json",
        "-o",
        "out.ndjson",
    ]));
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("$.page_size"), "{r:?}");
    assert!(!f.path("out.ndjson").exists());
    let leftovers: Vec<_> = std::fs::read_dir(f.dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("out.ndjson"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_summary_of_another_stream_is_refused() {
    let f = Fixture::new(10);
    let r = f.export(&["--stream", "products", "--summary"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("summary"), "{r:?}");
}
