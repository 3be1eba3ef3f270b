//! End-to-end tests of `posbridge demo`: the POS simulators, the pipeline files, the real runner,
//! the closures booked in the book simulators (sevdesk, lexoffice), the card payments at the PSP
//! (stripe) and the reconciliation, through the `posbridge` binary with the connectors loaded
//! from a folder.

use std::path::Path;

use posbridge_e2e::{plugin_dir_with, posbridge, run, Ran};
use rust_decimal::Decimal;

/// The pipelines a demo with every vendor runs, in order. kassandro is Austrian (lexoffice),
/// oktopos has a German store (sevdesk) and an Austrian one (lexoffice), kenzup's MAD amounts
/// without taxes are booked nowhere.
const PIPELINES: &[&str] = &[
    "kassandro-to-file",
    "oktopos-to-file",
    "kenzup-to-file",
    "daily-summary",
    "kassandro-to-lexoffice",
    "oktopos-to-sevdesk",
    "oktopos-to-lexoffice",
];

/// What the verdict names when every book and the PSP ran.
const ALL_SIDES: &str = "(files, closures, books: sevdesk + lexoffice, PSP: stripe)";

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

/// The number of totals in the closing `reconciled: all N totals match to the cent (SIDES)` line.
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
        .and_then(|rest| rest.split_once(" totals match to the cent ("))
        .map(|(n, _)| n)
        .unwrap_or_else(|| panic!("the last line is not the reconciled verdict: {r:?}"));
    n.parse().expect("a number of totals")
}

/// One row of the reconciliation table.
#[derive(Debug)]
struct TableRow {
    vendor: String,
    book: String,
    total: String,
    source: String,
    books: String,
    psp: String,
    status: String,
}

/// The rows of the reconciliation table (cells are separated by two spaces or more).
fn table(r: &Ran) -> Vec<TableRow> {
    let mut lines = r
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Reconciliation ("))
        .skip(2); // the title and the header
    let mut out = Vec::new();
    for line in lines.by_ref().take_while(|l| !l.trim().is_empty()) {
        let c: Vec<&str> = line
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(c.len(), 10, "a row has 10 cells: {line:?}");
        out.push(TableRow {
            vendor: c[0].into(),
            book: c[1].into(),
            total: c[3].into(),
            source: c[4].into(),
            books: c[7].into(),
            psp: c[8].into(),
            status: c[9].into(),
        });
    }
    out
}

/// A cell's amount (compared as decimals: `11.9` is `11.90`).
fn amount(cell: &str) -> Decimal {
    cell.parse()
        .unwrap_or_else(|e| panic!("{cell:?} is no amount: {e}"))
}

/// The rows show that `book` booked `vendor`'s closures and that they match the source.
fn assert_booked(rows: &[TableRow], vendor: &str, book: &str) {
    let booked: Vec<&TableRow> = rows
        .iter()
        .filter(|t| t.vendor == vendor && t.book == book && t.books != "-")
        .collect();
    assert!(
        !booked.is_empty(),
        "no {vendor} rows booked in {book}: {rows:?}"
    );
    for t in &booked {
        assert_eq!(amount(&t.books), amount(&t.source), "{t:?}");
        assert_eq!(t.status, "ok", "{t:?}");
    }
    for part in ["gross total", "payment ", "VAT "] {
        assert!(
            booked.iter().any(|t| t.total.starts_with(part)),
            "{vendor} in {book}: no {part} row: {booked:?}"
        );
    }
}

/// The card charges of every vendor are at the PSP, and the demo's own payment reconciles.
fn assert_psp(r: &Ran, rows: &[TableRow]) {
    let charged: Vec<&TableRow> = rows
        .iter()
        .filter(|t| t.total.starts_with("card charged"))
        .collect();
    assert!(!charged.is_empty(), "{r:?}");
    for t in &charged {
        assert_eq!(amount(&t.psp), amount(&t.source), "{t:?}");
    }
    assert!(
        rows.iter()
            .filter(|t| !t.total.starts_with("card charged"))
            .all(|t| t.psp == "-"),
        "only card charges are at the PSP"
    );
    for check in [
        "demo payment: charged (balance transaction)",
        "demo payment: refund (balance transaction)",
        "demo payment: net movement = charge - refund",
        "demo payment: net after stripe's fees of ",
        "account EUR: charges = payments read",
        "account EUR: refunds = refunds read",
    ] {
        let line = r
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with(check))
            .unwrap_or_else(|| panic!("no PSP check {check:?}: {r:?}"));
        assert!(line.ends_with(" ok"), "{line}");
    }
    let movement = r
        .stdout
        .lines()
        .find(|l| l.contains("net movement = charge - refund"))
        .unwrap();
    let amounts: Vec<&str> = movement.split_whitespace().rev().skip(1).take(2).collect();
    assert_eq!(
        amounts,
        ["14.90", "14.90"],
        "24.90 charged - 10.00 refunded"
    );
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
        "kassandro-to-lexoffice.yaml",
        "oktopos-to-sevdesk.yaml",
        "oktopos-to-lexoffice.yaml",
        "books/oktopos-to-sevdesk.ndjson",
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
    assert!(
        r.stdout.lines().last().unwrap().ends_with(ALL_SIDES),
        "{r:?}"
    );

    // Books: each register's closures in one book; the split inputs hold every sale once.
    let rows = table(r);
    assert!(rows.iter().all(|t| t.status == "ok"), "{rows:?}");
    assert_booked(&rows, "kassandro", "lexoffice");
    assert_booked(&rows, "oktopos", "sevdesk");
    assert_booked(&rows, "oktopos", "lexoffice");
    assert!(
        rows.iter()
            .filter(|t| t.vendor == "kenzup")
            .all(|t| t.book == "-" && t.books == "-"),
        "kenzup is booked nowhere"
    );
    assert!(r.stdout.contains("not booking kenzup register"), "{r:?}");
    let split = non_empty_lines(&dir.join("books/oktopos-to-sevdesk.ndjson"))
        + non_empty_lines(&dir.join("books/oktopos-to-lexoffice.ndjson"));
    assert_eq!(split, lines[1], "oktopos's sales are split, none twice");
    assert_eq!(
        counts(r, "oktopos-to-sevdesk").0 + counts(r, "oktopos-to-lexoffice").0,
        lines[1] as u64
    );
    assert_psp(r, &rows);
    (totals, lines)
}

#[test]
fn the_demo_moves_reconciles_and_can_be_run_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let first = demo(&dir, &[]);
    let (totals, lines) = assert_full_demo(&first, &dir);

    // The pipeline files are valid for `posbridge validate` as written.
    for p in [
        "kassandro",
        "oktopos",
        "kenzup",
        "daily-summary",
        "kassandro-to-lexoffice",
        "oktopos-to-sevdesk",
        "oktopos-to-lexoffice",
    ] {
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
    for p in [
        "kassandro-to-file",
        "oktopos-to-file",
        "daily-summary",
        "kassandro-to-lexoffice",
        "oktopos-to-sevdesk",
    ] {
        let (read, written, _, _) = counts(&r, p);
        assert!(read > 0 && written > 0, "{p}: {r:?}");
    }
    assert!(!r.stdout.contains("pipeline kenzup-to-file"), "{r:?}");
    assert!(!r.stdout.contains("not booking kenzup"), "{r:?}");
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
    for v in ["oktopos", "kenzup", "sevdesk", "lexoffice", "stripe"] {
        assert!(
            r.stdout
                .contains(&format!("skipping {v}: its connector is not loaded")),
            "{r:?}"
        );
    }
    let (read, written, _, _) = counts(&r, "kassandro-to-file");
    assert!(read > 0 && written > 0, "{r:?}");
    assert!(r.stdout.contains("not booking kassandro register"), "{r:?}");
    for book in ["sevdesk", "lexoffice"] {
        assert!(
            !r.stdout.contains(&format!("pipeline kassandro-to-{book}")),
            "{r:?}"
        );
    }
    assert!(reconciled_totals(&r) > 0);
    assert!(
        r.stdout
            .lines()
            .last()
            .unwrap()
            .ends_with("(files, closures, books: none, PSP: none)"),
        "{r:?}"
    );
    let rows = table(&r);
    assert!(
        rows.iter().all(|t| t.books == "-" && t.psp == "-"),
        "{rows:?}"
    );
}

#[test]
fn without_lexoffice_only_the_german_store_is_booked_and_it_still_reconciles() {
    let plugins = plugin_dir_with(&[
        "posbridge_generic",
        "posbridge_kassandro",
        "posbridge_oktopos",
        "posbridge_sevdesk",
        "posbridge_stripe",
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let mut cmd = posbridge();
    cmd.env("POSBRIDGE_PLUGIN_DIR", plugins.path())
        .arg("demo")
        .arg("--dir")
        .arg(&dir)
        .args([
            "--days",
            "1",
            "--sales-per-day",
            "4",
            "--vendors",
            "kassandro,oktopos",
        ]);
    let r = run(&mut cmd);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("skipping lexoffice: its connector is not loaded"),
        "{r:?}"
    );
    assert!(r.stdout.contains("not booking kassandro register"), "{r:?}");
    assert!(
        r.stdout.contains("sevdesk: sevdesk's tax rule 1 has no"),
        "{r:?}"
    );
    let rows = table(&r);
    assert_booked(&rows, "oktopos", "sevdesk");
    assert!(rows.iter().all(|t| t.book != "lexoffice"), "{rows:?}");
    assert_psp(&r, &rows);
    assert!(reconciled_totals(&r) > 0);
    assert!(r
        .stdout
        .lines()
        .last()
        .unwrap()
        .ends_with("(files, closures, books: sevdesk, PSP: stripe)"));
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
