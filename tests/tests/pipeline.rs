//! Pipelines end to end through `posbridge run`: exactly-once delivery across reruns and
//! SIGKILLs, retries honouring Retry-After, dead letters, daily summaries, clear errors.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use posbridge_e2e::*;
use rust_decimal::Decimal;
use serde_json::{json, Value};

/// Writes a generic → generic pipeline file in `dir` and returns its path.
fn generic_pipeline(
    dir: &Path,
    name: &str,
    input: &Path,
    output: &Path,
    extra: &str,
) -> std::path::PathBuf {
    let p = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &p,
        format!(
            "name: {name}\nsource:\n  connector: generic\n  config: {{path: {}, format: ndjson}}\n  streams: [sales]\nsink:\n  connector: generic\n  config: {{path: {}, format: ndjson}}\n{extra}",
            input.display(),
            output.display()
        ),
    )
    .unwrap();
    p
}

fn run_pipeline(p: &Path, state: &Path, args: &[&str]) -> Ran {
    run(posbridge()
        .arg("run")
        .arg(p)
        .arg("--state")
        .arg(format!("sqlite:{}", state.display()))
        .args(args))
}

fn by_id(records: Vec<Value>) -> BTreeMap<String, Value> {
    let n = records.len();
    let m: BTreeMap<String, Value> = records
        .into_iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r))
        .collect();
    assert_eq!(m.len(), n, "duplicate ids");
    m
}

#[test]
fn hundred_thousand_sales_arrive_exactly_as_read() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in.ndjson");
    let output = d.path().join("out.ndjson");
    generate_sales_file(&input, 100_000, 11);
    let p = generic_pipeline(
        d.path(),
        "big",
        &input,
        &output,
        "delivery: {batch_size: 1000}\n",
    );
    let r = run_pipeline(&p, &d.path().join("s.db"), &["--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let summary: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(summary["read"], 100_000);
    assert_eq!(summary["written"], 100_000);
    let a = by_id(read_ndjson(&input));
    let b = by_id(read_ndjson(&output));
    assert_eq!(a.len(), 100_000);
    assert!(a == b, "output differs from input");
    // Amounts stay exact decimal strings.
    let first = b.values().next().unwrap();
    assert!(first["totals"]["gross"].is_string(), "{first}");
}

#[test]
fn a_second_run_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in.ndjson");
    let output = d.path().join("out.ndjson");
    generate_sales_file(&input, 700, 3);
    let p = generic_pipeline(d.path(), "twice", &input, &output, "");
    let state = d.path().join("s.db");
    let r = run_pipeline(&p, &state, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("read 700, written 700"), "{r:?}");
    let r = run_pipeline(&p, &state, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("written 0"), "{r:?}");
    // A full refresh re-reads everything, and the ledger skips all of it.
    let r = run_pipeline(&p, &state, &["--full-refresh"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("read 700, written 0, skipped as duplicates 700"),
        "{r:?}"
    );
    assert_eq!(read_ndjson(&output).len(), 700);
    // History shows three runs.
    let h = run(posbridge()
        .args(["runs", "--json", "--pipeline", "twice", "--state"])
        .arg(format!("sqlite:{}", state.display())));
    let runs: Vec<Value> = serde_json::from_str(&h.stdout).unwrap();
    assert_eq!(runs.len(), 3, "{h:?}");
    assert!(runs.iter().all(|r| r["status"] == "succeeded"), "{h:?}");
}

/// The state file lost, the same pipeline runs again into the output that has the records:
/// the host sends everything, and the sink's own ledger (the sidecar next to the output) finds
/// every key and writes nothing twice. Each batch's look-up reads on in that ledger from where
/// the last one found its keys; the second half of the input, then the first, checks that it
/// wraps around.
#[test]
fn a_run_without_its_state_writes_nothing_twice_into_an_output_that_has_the_records() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in.ndjson");
    let output = d.path().join("out.ndjson");
    generate_sales_file(&input, 700, 5);
    let p = generic_pipeline(
        d.path(),
        "again",
        &input,
        &output,
        "delivery: {batch_size: 100}\n",
    );
    let r = run_pipeline(&p, &d.path().join("first.db"), &[]);
    assert!(r.stdout.contains("read 700, written 700"), "{r:?}");

    let lines: Vec<String> = std::fs::read_to_string(&input)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let reordered = d.path().join("reordered.ndjson");
    let (first, second) = lines.split_at(350);
    std::fs::write(&reordered, [second, first].concat().join("\n") + "\n").unwrap();
    for (name, from) in [("same", &input), ("reordered", &reordered)] {
        let p = generic_pipeline(
            d.path(),
            "again",
            from,
            &output,
            "delivery: {batch_size: 100}\n",
        );
        let r = run_pipeline(&p, &d.path().join(format!("{name}.db")), &[]);
        assert_eq!(r.code, 0, "{name}: {r:?}");
        assert!(
            r.stdout
                .contains("read 700, written 0, skipped as duplicates 700"),
            "{name}: {r:?}"
        );
    }
    assert_eq!(by_id(read_ndjson(&output)).len(), 700);
}

#[test]
fn killed_with_sigkill_at_random_points_every_record_arrives_once() {
    use rand::{Rng, SeedableRng};
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in.ndjson");
    let output = d.path().join("out.ndjson");
    generate_sales_file(&input, 20_000, 21);
    let p = generic_pipeline(
        d.path(),
        "killed",
        &input,
        &output,
        "delivery: {batch_size: 150}\n",
    );
    let state = d.path().join("s.db");
    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    let mut kills = 0;
    let input_len = std::fs::metadata(&input).unwrap().len();
    for _ in 0..6 {
        // Killed once the output has grown by a random share of what is left to write: a kill
        // lands mid-way however fast the run goes (a fixed delay no longer did once the file
        // pipeline got faster).
        let start_len = std::fs::metadata(&output).map_or(0, |m| m.len());
        let share: f64 = rng.gen_range(0.05..0.9);
        let kill_at = start_len + ((input_len - start_len.min(input_len)) as f64 * share) as u64;
        let mut child = posbridge()
            .arg("run")
            .arg(&p)
            .arg("--state")
            .arg(format!("sqlite:{}", state.display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        while child.try_wait().unwrap().is_none() {
            if std::fs::metadata(&output).map_or(0, |m| m.len()) >= kill_at {
                child.kill().unwrap(); // SIGKILL on Unix
                kills += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = child.wait();
    }
    assert!(
        kills >= 3,
        "the runs finished too fast to be killed mid-way ({kills} kills)"
    );
    let r = run_pipeline(&p, &state, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let out = read_ndjson(&output);
    assert_eq!(
        out.len(),
        20_000,
        "records lost or duplicated after {kills} kills"
    );
    let a = by_id(read_ndjson(&input));
    let b = by_id(out);
    assert!(a == b, "output differs from input after {kills} kills");
    // The killed runs do not stay `running` in the history: the next process marked them.
    let r = run(posbridge().args([
        "runs",
        "--json",
        "--state",
        &format!("sqlite:{}", state.display()),
    ]));
    assert_eq!(r.code, 0, "{r:?}");
    let runs: Vec<Value> = serde_json::from_str(&r.stdout).unwrap();
    let status = |s: &str| runs.iter().filter(|r| r["status"] == s).count();
    assert_eq!(status("running"), 0, "{runs:?}");
    // A kill can land after its run finished, while the process exits: that run succeeded.
    // Every other killed run is marked interrupted, and no run of the six failed.
    assert!(status("interrupted") <= kills, "{runs:?}");
    assert_eq!(
        status("interrupted") + status("succeeded"),
        runs.len(),
        "{runs:?}"
    );
    assert!(status("interrupted") >= 1, "{runs:?}");
}

#[test]
fn a_rate_limited_sink_is_retried_after_retry_after_and_nothing_is_lost() {
    let server = TestHttpServer::start(|n, _req| {
        if n == 0 {
            CannedResponse {
                status: 429,
                headers: vec![("Retry-After".into(), "1".into())],
                body: "slow down".into(),
            }
        } else {
            CannedResponse {
                status: 200,
                headers: vec![],
                body: "{}".into(),
            }
        }
    });
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in.ndjson");
    generate_sales_file(&input, 120, 4);
    let dir = plugin_dir_with(&["posbridge_generic", "posbridge_fixture_http_sink"]);
    let p = d.path().join("p.yaml");
    std::fs::write(
        &p,
        format!(
            "name: limited\nsource: {{connector: generic, config: {{path: {}}}}}\nsink: {{connector: test-http-sink, config: {{url: \"{}/batches\"}}}}\ndelivery: {{batch_size: 50}}\n",
            input.display(),
            server.base_url
        ),
    )
    .unwrap();
    let r = run(std::process::Command::new(posbridge_bin())
        .arg("--plugin-dir")
        .arg(dir.path())
        .arg("run")
        .arg(&p)
        .arg("--state")
        .arg(format!("sqlite:{}", d.path().join("s.db").display()))
        .arg("--json"));
    assert_eq!(r.code, 0, "{r:?}");
    let summary: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(summary["written"], 120, "{r:?}");
    assert_eq!(summary["retries"], 1, "{r:?}");
    let got = server.received();
    assert_eq!(
        got.len(),
        4,
        "one refused and three accepted batches: {got:?}"
    );
    let waited = got[1].at.duration_since(got[0].at);
    assert!(
        waited >= Duration::from_secs(1),
        "Retry-After: 1 not honoured, retried after {waited:?}"
    );
    // The retried batch is the same batch (same keys), and every record arrived once.
    assert_eq!(
        got[0].header("Idempotency-Key"),
        got[1].header("Idempotency-Key")
    );
    let mut ids: Vec<String> = got[1..]
        .iter()
        .flat_map(|r| {
            String::from_utf8_lossy(&r.body)
                .lines()
                .map(|l| {
                    serde_json::from_str::<Value>(l).unwrap()["id"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 120);
}

#[test]
fn a_sale_that_does_not_reconcile_is_dead_lettered_and_the_rest_arrive() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in.ndjson");
    let output = d.path().join("out.ndjson");
    generate_sales_file(&input, 200, 8);
    let mut sales = read_ndjson(&input);
    // Break one sale with lines: its first line's gross no longer matches net + tax.
    let bad = sales
        .iter_mut()
        .find(|s| !s["lines"].as_array().unwrap().is_empty())
        .unwrap();
    let bad_id = bad["id"].as_str().unwrap().to_string();
    let g = Decimal::from_str(bad["lines"][0]["gross"].as_str().unwrap()).unwrap();
    bad["lines"][0]["gross"] = json!((g + Decimal::new(1, 2)).to_string());
    std::fs::write(
        &input,
        sales
            .iter()
            .map(|s| s.to_string() + "\n")
            .collect::<String>(),
    )
    .unwrap();

    let p = generic_pipeline(d.path(), "dlq", &input, &output, "");
    let state = d.path().join("s.db");
    let st = format!("sqlite:{}", state.display());
    let r = run_pipeline(&p, &state, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("written 199") && r.stdout.contains("dead-lettered 1"),
        "{r:?}"
    );
    let out = by_id(read_ndjson(&output));
    assert_eq!(out.len(), 199);
    assert!(!out.contains_key(&bad_id));

    let l = run(posbridge().args(["dlq", "list", "--json", "--state", &st]));
    let letters: Vec<Value> = serde_json::from_str(&l.stdout).unwrap();
    assert_eq!(letters.len(), 1, "{l:?}");
    let reason = letters[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&bad_id)
            && reason.contains("does not reconcile")
            && reason.contains("lines[0]"),
        "{reason}"
    );
    assert_eq!(letters[0]["stage"], "validate");
    let id = letters[0]["id"].to_string();
    let s = run(posbridge().args(["dlq", "show", &id, "--state", &st]));
    assert!(s.stdout.contains(&bad_id), "{s:?}");
    // A rerun does not dead-letter it again.
    let r = run_pipeline(&p, &state, &["--full-refresh"]);
    assert!(r.stdout.contains("dead-lettered 0"), "{r:?}");
    // Retrying it unchanged reports it as still invalid and leaves it open.
    let rt = run(posbridge()
        .args(["dlq", "retry"])
        .arg(&p)
        .args(["--state", &st]));
    assert_eq!(rt.code, 1, "{rt:?}");
    assert!(rt.stdout.contains("still invalid"), "{rt:?}");
    // An operator who accepts it as is retries with validation off: it is delivered once and
    // the dead letter is resolved.
    let p2 = generic_pipeline(
        d.path(),
        "dlq",
        &input,
        &output,
        "delivery: {validate: false}\n",
    );
    let rt = run(posbridge()
        .args(["dlq", "retry"])
        .arg(&p2)
        .args(["--state", &st]));
    assert_eq!(rt.code, 0, "{rt:?}");
    assert!(rt.stdout.contains("delivered"), "{rt:?}");
    let out = by_id(read_ndjson(&output));
    assert_eq!(out.len(), 200);
    assert!(out.contains_key(&bad_id));
    let l = run(posbridge().args(["dlq", "list", "--json", "--state", &st]));
    let open: Vec<Value> = serde_json::from_str(&l.stdout).unwrap();
    assert!(open.is_empty(), "resolved: {l:?}");
}

#[test]
fn daily_summary_books_one_closure_per_day_and_register_exact_to_the_cent() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in.ndjson");
    let output = d.path().join("closures.ndjson");
    generate_sales_file(&input, 1500, 9);
    let p = d.path().join("p.yaml");
    std::fs::write(
        &p,
        format!(
            "name: daily\nsource: {{connector: generic, config: {{path: {}}}}}\nsink: {{connector: generic, mode: daily_summary, config: {{path: {}, stream: closures}}}}\n",
            input.display(),
            output.display()
        ),
    )
    .unwrap();
    let r = run_pipeline(&p, &d.path().join("s.db"), &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let sales = read_ndjson(&input);
    let closures = read_ndjson(&output);
    let dec = |v: &Value| Decimal::from_str(v.as_str().unwrap()).unwrap();
    // Expected sums computed here from the single sales (revenue kinds only).
    let mut want_rate: HashMap<(String, String, String), Decimal> = HashMap::new();
    let mut want_method: HashMap<(String, String, String), Decimal> = HashMap::new();
    let mut days = std::collections::HashSet::new();
    for s in &sales {
        if s["kind"] == "training" || s["kind"] == "null_receipt" {
            continue;
        }
        let k = |x: String| {
            (
                s["register_id"].as_str().unwrap().to_string(),
                s["business_day"].as_str().unwrap().to_string(),
                x,
            )
        };
        // Sales and credits (refunds, cancellations) of a day are closed separately.
        let credit = s["kind"] == "refund" || s["kind"] == "cancellation";
        days.insert(k(if credit { "credits" } else { "sales" }.to_string()));
        for t in s["taxes"].as_array().unwrap() {
            *want_rate
                .entry(k(dec(&t["rate"]).normalize().to_string()))
                .or_default() += dec(&t["gross"]);
        }
        for p in s["payments"].as_array().unwrap() {
            *want_method
                .entry(k(p["method"].as_str().unwrap().to_string()))
                .or_default() += dec(&p["amount"]);
        }
    }
    assert_eq!(
        closures.len(),
        days.len(),
        "one closure per register and day, and one more for a day's credits"
    );
    assert!(
        closures.iter().any(|c| c["kind"] == "credits"),
        "refunds book their own credit closure"
    );
    for c in closures.iter().filter(|c| c["kind"] == "sales") {
        assert!(
            dec(&c["totals"]["gross"]) >= Decimal::ZERO,
            "a sales closure holds no refunds: {c}"
        );
    }
    let mut got_rate: HashMap<(String, String, String), Decimal> = HashMap::new();
    let mut got_method: HashMap<(String, String, String), Decimal> = HashMap::new();
    for c in &closures {
        let k = |x: String| {
            (
                c["register_id"].as_str().unwrap().to_string(),
                c["business_day"].as_str().unwrap().to_string(),
                x,
            )
        };
        for t in c["taxes"].as_array().unwrap() {
            *got_rate
                .entry(k(dec(&t["rate"]).normalize().to_string()))
                .or_default() += dec(&t["gross"]);
            assert_eq!(dec(&t["net"]) + dec(&t["tax"]), dec(&t["gross"]));
        }
        for p in c["payments"].as_array().unwrap() {
            *got_method
                .entry(k(p["method"].as_str().unwrap().to_string()))
                .or_default() += dec(&p["amount"]);
        }
    }
    assert_eq!(got_rate, want_rate);
    assert_eq!(got_method, want_method);
    // A second run books nothing new.
    let r = run_pipeline(&p, &d.path().join("s.db"), &[]);
    assert!(r.stdout.contains("written 0"), "{r:?}");
    assert_eq!(read_ndjson(&output).len(), closures.len());
}

#[test]
fn malformed_pipeline_files_get_clear_errors() {
    let d = tempfile::tempdir().unwrap();
    let validate = |name: &str, text: &str| {
        let p = d.path().join(name);
        std::fs::write(&p, text).unwrap();
        let r = run(posbridge()
            .arg("validate")
            .arg(&p)
            .env_remove("POSBRIDGE_MISSING_TOKEN"));
        assert_eq!(r.code, 1, "{r:?}");
        r.stderr
    };
    let e = validate(
        "bad.yaml",
        "name: x\nsource: {connector: generic\nsink: {connector: generic}\n",
    );
    assert!(
        e.contains("bad.yaml:3:"),
        "bad YAML names line and column: {e}"
    );

    let e = validate("unknown.yaml", "name: x\nsource: {connector: generik, config: {path: a.ndjson}}\nsink: {connector: generic, config: {path: b.ndjson}}\n");
    assert!(e.contains("unknown.yaml:2:"), "{e}");
    assert!(
        e.contains("unknown connector \"generik\"") && e.contains("did you mean \"generic\""),
        "{e}"
    );

    let e = validate("type.yaml", "name: x\nsource: {connector: generic, config: {path: a.ndjson}}\nsink:\n  connector: generic\n  config:\n    path: b.ndjson\n    format: 7\n");
    assert!(e.contains("$.sink.config.format"), "{e}");
    assert!(e.contains("type.yaml:7:"), "{e}");

    let e = validate("env.yaml", "name: x\nsource: {connector: generic, config: {path: a.ndjson}}\nsink: {connector: generic, config: {path: \"${env:POSBRIDGE_MISSING_TOKEN}\"}}\n");
    assert!(e.contains("POSBRIDGE_MISSING_TOKEN is not set"), "{e}");
    assert!(e.contains("env.yaml:3:"), "{e}");

    let e = validate("field.yaml", "name: x\nsource: {connector: generic, config: {path: a.ndjson}, stream: [sales]}\nsink: {connector: generic, config: {path: b.ndjson}}\n");
    assert!(
        e.contains("unknown field `stream`") && e.contains("did you mean `streams`"),
        "{e}"
    );

    let e = validate("stream.yaml", "name: x\nsource: {connector: generic, config: {path: a.ndjson}, streams: [sale]}\nsink: {connector: generic, config: {path: b.ndjson}}\n");
    assert!(
        e.contains("does not read stream \"sale\"") && e.contains("did you mean \"sales\""),
        "{e}"
    );

    // Values that parse but make no sense name their field's JSON path and line.
    let ok = "source: {connector: generic, config: {path: a.ndjson}}\nsink: {connector: generic, config: {path: b.ndjson}}\n";
    let e = validate(
        "zero.yaml",
        &format!("name: x\n{ok}delivery:\n  timeout_secs: 0\n"),
    );
    assert!(
        e.contains("zero.yaml:5:3: $.delivery.timeout_secs: 0 is out of range"),
        "{e}"
    );
    let e = validate(
        "bool.yaml",
        &format!("name: x\n{ok}delivery: {{validate: \"false\"}}\n"),
    );
    assert!(
        e.contains("bool.yaml:4:") && e.contains("$.delivery.validate"),
        "{e}"
    );
    let e = validate("name.yaml", &format!("name: ../../x\n{ok}"));
    assert!(
        e.contains("name.yaml:1:1: $.name: ") && e.contains("not a path"),
        "{e}"
    );

    // A deeply nested document (250 KB) is refused at once, not parsed for half a minute.
    let started = std::time::Instant::now();
    let deep = format!(
        "name: x\n{ok}mapping: {}{}\n",
        "[".repeat(120_000),
        "]".repeat(120_000)
    );
    let e = validate("deep.yaml", &deep);
    assert!(
        e.contains("deep.yaml:") && e.contains("nested deeper than 32 levels"),
        "{e}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn dry_run_writes_nothing_and_shows_no_secret() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in.ndjson");
    generate_sales_file(&input, 50, 2);
    let dir = plugin_dir_with(&["posbridge_generic", "posbridge_fixture_http_sink"]);
    let p = d.path().join("p.yaml");
    std::fs::write(
        &p,
        format!(
            "name: dry\nsource: {{connector: generic, config: {{path: {}}}}}\nsink: {{connector: test-http-sink, config: {{url: \"http://127.0.0.1:9/never\", token: \"${{env:POSBRIDGE_TEST_TOKEN}}\"}}}}\n",
            input.display()
        ),
    )
    .unwrap();
    let r = run(std::process::Command::new(posbridge_bin())
        .arg("--plugin-dir")
        .arg(dir.path())
        .env("POSBRIDGE_TEST_TOKEN", "tok-very-secret-42")
        .arg("run")
        .arg(&p)
        .arg("--dry-run")
        .arg("--state")
        .arg(format!("sqlite:{}", d.path().join("s.db").display())));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        !r.stdout.contains("tok-very-secret-42") && !r.stderr.contains("tok-very-secret-42"),
        "{r:?}"
    );
    assert!(r.stdout.contains("\"token\": \"***\""), "{r:?}");
    assert!(r.stdout.contains("would write 50"), "{r:?}");
}

#[test]
fn ctrl_c_stops_at_a_checkpoint_and_the_next_run_finishes_the_job() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in.ndjson");
    let output = d.path().join("out.ndjson");
    generate_sales_file(&input, 30_000, 31);
    let p = generic_pipeline(
        d.path(),
        "interrupted",
        &input,
        &output,
        "delivery: {batch_size: 100}\n",
    );
    let state = d.path().join("s.db");
    let child = posbridge()
        .arg("run")
        .arg(&p)
        .arg("--state")
        .arg(format!("sqlite:{}", state.display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Interrupted once the first batches are in the output (not after a fixed time: a fast
    // machine finishes the whole file in under a second).
    let started = std::time::Instant::now();
    while std::fs::metadata(&output).map_or(0, |m| m.len()) == 0
        && started.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{stdout}");
    assert!(stdout.contains("cancelled"), "{stdout}");
    let partial = read_ndjson(&output).len();
    assert!(
        partial > 0 && partial < 30_000,
        "stopped mid-way: {partial}"
    );
    let r = run_pipeline(&p, &state, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("skipped as duplicates 0"),
        "resumed at the checkpoint, nothing re-sent: {r:?}"
    );
    assert_eq!(by_id(read_ndjson(&output)).len(), 30_000);
}

#[test]
fn the_examples_validate() {
    let root = workspace_root();
    for entry in std::fs::read_dir(root.join("examples")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let r = run(posbridge()
            .arg("validate")
            .arg(&p)
            .env("KASSANDRO_API_KEY", "demo-key")
            .current_dir(&root));
        assert_eq!(r.code, 0, "{}: {r:?}", p.display());
    }
}

/// The source hands its lines on unchecked (the host parses each one); a line that is not
/// JSON still fails the run with the source's own error, naming the file and the line, after
/// the pages before it were delivered.
#[test]
fn a_broken_line_deep_in_the_file_is_reported_by_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in.ndjson");
    let output = d.path().join("out.ndjson");
    generate_sales_file(&input, 2_500, 5);
    let text = std::fs::read_to_string(&input).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[1_499] = "{\"id\": \"broken\", \"totals\": oops}";
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let p = generic_pipeline(
        d.path(),
        "broken",
        &input,
        &output,
        "delivery: {batch_size: 1000}\n",
    );
    let r = run_pipeline(&p, &d.path().join("s.db"), &[]);
    assert_ne!(r.code, 0, "{r:?}");
    // The run's report (stdout) carries the error.
    assert!(
        r.stdout.contains("in.ndjson, line 1500: not valid JSON"),
        "the source's error names the file and line: {r:?}"
    );
    assert_eq!(
        read_ndjson(&output).len(),
        1_000,
        "the first page went through"
    );
}
