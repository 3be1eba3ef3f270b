//! End-to-end tests of `posbridge demo`: the simulators, the pipeline files, the real runner and
//! the reconciliation, through the `posbridge` binary with the connectors loaded from a folder.

use std::path::Path;

use posbridge_e2e::{plugin_dir_with, posbridge, run, Ran};

/// The pipelines a demo with every vendor runs, in order.
const PIPELINES: &[&str] = &[
    "kassandro-to-file",
    "oktopos-to-file",
    "kenzup-to-file",
    "daily-summary",
];

/// Runs a small demo in `dir` (small so it is quick; the defaults only make it bigger).
fn demo(dir: &Path, extra: &[&str]) -> Ran {
    let mut cmd = posbridge();
    cmd.arg("demo")
        .arg("--dir")
        .arg(dir)
        .args(["--days", "2", "--sales-per-day", "3", "--seed", "7"])
        .args(extra);
    run(&mut cmd)
}

/// The counts of a pipeline's line `pipeline NAME: read R, written W, duplicates D, dead-lettered X (...)`.
fn counts(r: &Ran, pipeline: &str) -> (u64, u64, u64, u64) {
    let prefix = format!("pipeline {pipeline}: ");
    let line = r
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no line for {pipeline}: {r:?}"));
    let number = |label: &str| -> u64 {
        line.split(", ")
            .find_map(|part| part.strip_prefix(label))
            .and_then(|n| n.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {label:?} count in {line:?}"))
    };
    (
        number("read "),
        number("written "),
        number("duplicates "),
        number("dead-lettered "),
    )
}

/// The number of totals in the closing `reconciled: all N totals match to the cent` line.
fn reconciled_totals(r: &Ran) -> usize {
    let verdicts = r
        .stdout
        .lines()
        .filter(|l| l.contains("reconciled:"))
        .count();
    assert_eq!(verdicts, 1, "exactly one verdict line: {r:?}");
    let last = r.stdout.lines().last().unwrap_or_default();
    let n = last
        .strip_prefix("reconciled: all ")
        .and_then(|rest| rest.strip_suffix(" totals match to the cent"))
        .unwrap_or_else(|| panic!("the last line is not the reconciled verdict: {r:?}"));
    n.parse().expect("a number of totals")
}

fn non_empty_lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

/// Checks one full demo run and returns (totals reconciled, lines of each sales file).
fn assert_full_demo(r: &Ran, dir: &Path) -> (usize, Vec<usize>) {
    assert_eq!(r.code, 0, "{r:?}");
    let totals = reconciled_totals(r);
    assert!(totals > 0, "{r:?}");
    assert!(!r.stdout.contains("DIFFERS"), "{r:?}");
    for p in PIPELINES {
        let (read, written, duplicates, dead) = counts(r, p);
        assert!(read > 0 && written > 0, "{p} moved nothing: {r:?}");
        assert_eq!((duplicates, dead), (0, 0), "{p}: {r:?}");
    }
    for f in [
        "README.txt",
        "kassandro.yaml",
        "oktopos.yaml",
        "kenzup.yaml",
        "daily-summary.yaml",
        "posbridge.db",
        "keys/kenzup-demo-private.pem",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing in {}", dir.display());
    }
    let mut lines = Vec::new();
    for v in ["kassandro", "oktopos", "kenzup"] {
        let file = dir.join("sales").join(format!("{v}.ndjson"));
        let n = non_empty_lines(&file);
        let (_, written, _, _) = counts(r, &format!("{v}-to-file"));
        assert_eq!(n as u64, written, "{v}: the file holds what the run wrote");
        lines.push(n);
    }
    let closures = non_empty_lines(&dir.join("closures.ndjson"));
    assert_eq!(closures as u64, counts(r, "daily-summary").1);
    (totals, lines)
}

#[test]
fn the_demo_moves_reconciles_and_can_be_run_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let first = demo(&dir, &[]);
    let (totals, lines) = assert_full_demo(&first, &dir);

    // The pipeline files are valid for `posbridge validate` as written.
    for p in ["kassandro", "oktopos", "kenzup", "daily-summary"] {
        let v = run(posbridge()
            .arg("validate")
            .arg(dir.join(format!("{p}.yaml"))));
        assert_eq!(v.code, 0, "{p}: {v:?}");
    }
    // Re-running the daily summary moves nothing new: the state remembers.
    let state = format!("sqlite:{}", dir.join("posbridge.db").display());
    let again = run(posbridge()
        .arg("run")
        .arg(dir.join("daily-summary.yaml"))
        .args(["--state", &state]));
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stdout.contains("written 0"), "{again:?}");

    // The demo is repeatable: the folder is wiped, the same data moves again, nothing doubles.
    let second = demo(&dir, &[]);
    let (totals2, lines2) = assert_full_demo(&second, &dir);
    assert_eq!(totals2, totals, "{second:?}");
    assert_eq!(lines2, lines, "{second:?}");
}

#[test]
fn vendors_can_be_chosen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let r = demo(&dir, &["--vendors", "kassandro,oktopos"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(reconciled_totals(&r) > 0);
    for p in ["kassandro-to-file", "oktopos-to-file", "daily-summary"] {
        let (read, written, _, _) = counts(&r, p);
        assert!(read > 0 && written > 0, "{p}: {r:?}");
    }
    assert!(!r.stdout.contains("pipeline kenzup-to-file"), "{r:?}");
    assert!(!dir.join("kenzup.yaml").exists());
    assert!(
        !r.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("kenzup ")),
        "no kenzup rows: {r:?}"
    );

    let bad = demo(&dir, &["--vendors", "kassandro,nope"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("nope"), "{bad:?}");
}

#[test]
fn a_vendor_without_its_connector_is_skipped() {
    let plugins = plugin_dir_with(&["posbridge_generic", "posbridge_kassandro"]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let mut cmd = posbridge();
    cmd.env("POSBRIDGE_PLUGIN_DIR", plugins.path())
        .arg("demo")
        .arg("--dir")
        .arg(&dir)
        .args(["--days", "1", "--sales-per-day", "2"]);
    let r = run(&mut cmd);
    assert_eq!(r.code, 0, "{r:?}");
    for v in ["oktopos", "kenzup"] {
        assert!(
            r.stdout
                .contains(&format!("skipping {v}: its connector is not loaded")),
            "{r:?}"
        );
    }
    let (read, written, _, _) = counts(&r, "kassandro-to-file");
    assert!(read > 0 && written > 0, "{r:?}");
    assert!(reconciled_totals(&r) > 0);
}

#[test]
fn a_folder_the_demo_did_not_write_is_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("precious.txt"), "keep me").unwrap();
    let r = demo(tmp.path(), &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("not a posbridge demo folder"), "{r:?}");
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("precious.txt")).unwrap(),
        "keep me"
    );
}
