//! A sale whose id comes again with other amounts is not a duplicate: it is parked as a
//! conflict, naming both versions, once — within one page and across runs.

use std::path::Path;

use posbridge_e2e::*;
use serde_json::Value;

fn write_ndjson(path: &Path, records: &[Value]) {
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(path, text).unwrap();
}

fn pipeline(dir: &Path, input: &Path, output: &Path) -> std::path::PathBuf {
    let p = dir.join("p.yaml");
    std::fs::write(
        &p,
        format!(
            "name: conflicts\nsource: {{connector: generic, config: {{path: {}}}}}\nsink: {{connector: generic, config: {{path: {}}}}}\n",
            input.display(),
            output.display()
        ),
    )
    .unwrap();
    p
}

fn run_it(p: &Path, state: &Path, extra: &[&str]) -> Ran {
    let r = run(posbridge()
        .arg("run")
        .arg(p)
        .args(["--state", &format!("sqlite:{}", state.display())])
        .args(extra));
    assert_eq!(r.code, 0, "{r:?}");
    r
}

fn conflicts(state: &Path) -> Vec<Value> {
    let r = run(posbridge().args([
        "dlq",
        "list",
        "--json",
        "--state",
        &format!("sqlite:{}", state.display()),
    ]));
    assert_eq!(r.code, 0, "{r:?}");
    serde_json::from_str::<Vec<Value>>(&r.stdout)
        .unwrap()
        .into_iter()
        .filter(|d| d["stage"] == "conflict")
        .collect()
}

/// The same sale paid another way: it still reconciles, but it is not the sale delivered.
fn paid_otherwise(sale: &Value) -> Value {
    let mut other = sale.clone();
    let method = other["payments"][0]["method"].as_str().unwrap().to_string();
    other["payments"][0]["method"] = Value::from(if method == "cash" { "card" } else { "cash" });
    other
}

#[test]
fn the_same_id_with_other_content_in_one_page_is_parked_naming_both() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in.ndjson");
    generate_sales_file(&input, 30, 3);
    let mut sales = read_ndjson(&input);
    let sale = sales
        .iter()
        .find(|s| s["kind"] == "sale" && !s["payments"].as_array().unwrap().is_empty())
        .unwrap()
        .clone();
    sales.push(paid_otherwise(&sale));
    // An identical repeat is a plain duplicate, not a conflict.
    sales.push(sale.clone());
    write_ndjson(&input, &sales);
    let output = d.path().join("out.ndjson");
    let state = d.path().join("s.db");
    let p = pipeline(d.path(), &input, &output);
    let r = run_it(&p, &state, &[]);
    assert!(r.stdout.contains("dead-lettered 1"), "{r:?}");
    let parked = conflicts(&state);
    assert_eq!(parked.len(), 1, "{parked:?}");
    let reason = parked[0]["reason"].as_str().unwrap();
    let id = sale["id"].as_str().unwrap();
    assert!(reason.contains(id), "{reason}");
    assert!(
        reason.contains("first version") && reason.contains("this one"),
        "{reason}"
    );
    assert_eq!(parked[0]["record"], paid_otherwise(&sale));
    // The first version was delivered, once.
    let out = read_ndjson(&output);
    assert_eq!(out.iter().filter(|s| s["id"] == sale["id"]).count(), 1);
    assert_eq!(out.iter().find(|s| s["id"] == sale["id"]).unwrap(), &sale);
}

#[test]
fn the_same_id_with_other_content_in_a_later_run_is_parked_once() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in.ndjson");
    generate_sales_file(&input, 30, 4);
    let output = d.path().join("out.ndjson");
    let state = d.path().join("s.db");
    let p = pipeline(d.path(), &input, &output);
    run_it(&p, &state, &[]);
    let delivered = read_ndjson(&output);

    let mut sales = read_ndjson(&input);
    let i = sales
        .iter()
        .position(|s| s["kind"] == "sale" && !s["payments"].as_array().unwrap().is_empty())
        .unwrap();
    sales[i] = paid_otherwise(&sales[i]);
    write_ndjson(&input, &sales);
    let r = run_it(&p, &state, &["--full-refresh"]);
    assert!(r.stdout.contains("written 0"), "{r:?}");
    assert!(r.stdout.contains("dead-lettered 1"), "{r:?}");
    let parked = conflicts(&state);
    assert_eq!(parked.len(), 1, "{parked:?}");
    let reason = parked[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("delivered before with other content"),
        "{reason}"
    );
    assert!(
        reason.contains(sales[i]["id"].as_str().unwrap()),
        "{reason}"
    );
    assert_eq!(read_ndjson(&output), delivered, "nothing was written twice");

    // Read again: the same conflicting version is not parked a second time.
    let r = run_it(&p, &state, &["--full-refresh"]);
    assert!(r.stdout.contains("dead-lettered 0"), "{r:?}");
    assert_eq!(conflicts(&state).len(), 1);
}
