//! `posbridge sandbox`: a simulator started from the command line answers on the URL it
//! prints, and `sandbox generate` writes the data a connector would read.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use posbridge_e2e::*;

#[test]
fn sandbox_prints_a_base_url_that_answers_and_its_credentials() {
    for vendor in ["kassandro", "oktopos", "kenzup"] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = posbridge()
            .args(["sandbox", "--vendor", vendor, "--port", "0", "--data-dir"])
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut printed = Vec::new();
        let mut base_url = None;
        while let Some(Ok(l)) = lines.next() {
            if let Some(u) = l.strip_prefix("base_url: ") {
                base_url = Some(u.trim().to_string());
            }
            let done = l.starts_with("press Ctrl-C");
            printed.push(l);
            if done {
                break;
            }
        }
        let base_url = base_url.unwrap_or_else(|| panic!("{vendor}: no base_url in {printed:?}"));
        assert!(base_url.starts_with("http://127.0.0.1:"), "{base_url}");
        assert!(
            printed.len() >= 4,
            "{vendor}: credentials printed: {printed:?}"
        );
        // The control endpoint answers on the printed URL.
        let body = reqwest::blocking::get(format!("{base_url}/__sandbox/faults"))
            .unwrap()
            .text()
            .unwrap();
        assert!(body.contains("error_rate"), "{body}");
        child.kill().unwrap();
        let _ = child.wait();
    }
}

#[test]
fn sandbox_generate_writes_canonical_sales_that_reconcile() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("k.ndjson");
    let r = run(posbridge()
        .args([
            "sandbox",
            "generate",
            "--vendor",
            "kassandro",
            "--sales",
            "200",
            "--seed",
            "3",
            "--out",
        ])
        .arg(&out));
    assert_eq!(r.code, 0, "{r:?}");
    let sales = read_ndjson(&out);
    assert!(sales.len() >= 200, "{}", sales.len());
    for s in &sales {
        assert_eq!(s["source_system"], "kassandro");
        posbridge::pipeline::check_sale(s).unwrap();
    }
    // Same seed, same data.
    let again = d.path().join("k2.ndjson");
    run(posbridge()
        .args([
            "sandbox",
            "generate",
            "--vendor",
            "kassandro",
            "--sales",
            "200",
            "--seed",
            "3",
            "--out",
        ])
        .arg(&again));
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap());
}
