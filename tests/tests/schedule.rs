//! Scheduled pipelines on a controllable clock: run by the real runner in-process (generic
//! connector plugins from a folder), and inside a real `posbridge serve` whose scheduler
//! follows a test clock file (`POSBRIDGE_SCHEDULER_CLOCK_FILE`): a pipeline runs on its ticks
//! with the trigger `schedule`, never twice at once, once after a restart, and delivers every
//! record once.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};
use posbridge::jobs::JobRunner;
use posbridge::pipeline::parse_pipeline;
use posbridge::runtime::CancelFlag;
use posbridge::schedule::{ManualClock, Scheduler, TickOutcome, CLOCK_FILE_VAR};
use posbridge::state::{SqliteStore, StateStore};
use posbridge_e2e::{
    generate_sales_file, read_ndjson, registry, OpenApiChecker, ServeProcess, TEST_MASTER_KEY,
};
use posbridge_sandbox::{build_simulator, start, Faults, SandboxOptions};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_pipeline_runs_on_its_ticks_with_the_schedule_trigger() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    let output = dir.path().join("out.ndjson");
    generate_sales_file(&input, 120, 7);
    let text = format!(
        "name: nightly\nschedule: \"0 3 * * *\"\nsource:\n  connector: generic\n  config: {{path: {}, format: ndjson}}\nsink:\n  connector: generic\n  config: {{path: {}, format: ndjson}}\n",
        input.display(),
        output.display()
    );
    let def = parse_pipeline(&text, &dir.path().join("nightly.yaml")).unwrap();
    let unscheduled = parse_pipeline(
        &text.replace(
            "name: nightly\nschedule: \"0 3 * * *\"\n",
            "name: by-hand\n",
        ),
        &dir.path().join("by-hand.yaml"),
    )
    .unwrap();
    let state: Arc<dyn StateStore> =
        Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0).unwrap(),
    ));
    // The server's own path: runs go through its JobRunner.
    let jobs = JobRunner::new(Arc::new(registry()), state.clone(), CancelFlag::new());
    let scheduler =
        Scheduler::for_definitions(vec![def, unscheduled], &jobs, clock.clone()).unwrap();
    let names: Vec<&str> = scheduler
        .pipelines()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, vec!["nightly"], "only pipelines with a schedule");

    assert_eq!(
        scheduler.step().get("nightly"),
        Some(&TickOutcome::Registered)
    );
    clock.advance(Duration::hours(14)); // 02:00 the next day: not yet
    assert!(scheduler.step().is_empty());
    clock.advance(Duration::hours(1));
    assert!(matches!(
        scheduler.step().get("nightly"),
        Some(TickOutcome::Started { .. })
    ));
    scheduler.wait_for_runs().await;
    assert_eq!(read_ndjson(&output).len(), 120);

    // The next night: a second run, which finds nothing new.
    clock.advance(Duration::days(1));
    assert!(matches!(
        scheduler.step().get("nightly"),
        Some(TickOutcome::Started { .. })
    ));
    scheduler.wait_for_runs().await;
    assert_eq!(read_ndjson(&output).len(), 120, "nothing twice");

    let runs = state.runs(Some("nightly"), 10).unwrap();
    assert_eq!(runs.len(), 2);
    for r in &runs {
        assert_eq!(
            (r.trigger.as_str(), r.status.as_str()),
            ("schedule", "succeeded")
        );
    }
    assert_eq!(runs[1].written, 120);
    assert_eq!(runs[0].written, 0);
}

/// Sets the test clock: written beside and renamed over, so the server never reads half a time.
fn set_clock(file: &Path, at: &str) {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, at).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}

/// Polls `what` every 50 ms until it answers `Some`, for at most 60 s.
fn wait_for<T>(doing: &str, mut what: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Some(v) = what() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {doing}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn runs_of(serve: &ServeProcess, api: &OpenApiChecker, pipeline: &str) -> Vec<Value> {
    let a = serve.get(
        &format!("/api/v1/runs?pipeline={pipeline}"),
        Some(&serve.admin_key),
    );
    assert_eq!(a.status, 200, "{a:?}");
    api.assert_valid("get", "/api/v1/runs", 200, &a.body);
    a.body["data"].as_array().unwrap().clone()
}

/// A few polls of the test clock: long enough for the scheduler to act on a time it was given.
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(400));
}

#[test]
fn serve_runs_a_scheduled_pipeline_on_its_ticks_never_twice_at_once_and_once_after_a_restart() {
    // Every vendor answer takes 700 ms, so a run lasts a few seconds: long enough to see
    // what the scheduler does with a tick while it goes on.
    let opts = SandboxOptions {
        vendor: "kassandro".into(),
        stores: 1,
        registers_per_store: 1,
        days: 2,
        sales_per_day: 5,
        ..SandboxOptions::default()
    };
    let faults = Faults {
        latency_ms: 700,
        ..Faults::default()
    };
    let sb = start(build_simulator(&opts).expect("simulator"), 0, faults).expect("starts");
    let expected = sb.sim.canonical_sales().len();
    let api_key = sb
        .credentials
        .iter()
        .find(|(k, _)| k == "api_key")
        .unwrap()
        .1
        .clone();
    let dir = tempfile::tempdir().unwrap();
    let clock = dir.path().join("now");
    let output = dir.path().join("sales.ndjson");
    set_clock(&clock, "2026-03-02T12:00:30Z");
    let clock_env = [(CLOCK_FILE_VAR, clock.to_str().unwrap())];
    let serve = ServeProcess::start_with_env(dir.path(), TEST_MASTER_KEY, &[], &clock_env);
    let api = OpenApiChecker::new(serve.get("/api/v1/openapi.json", None).body);
    serve.create_store("s1", "Store 1");
    let admin = serve.admin_key.clone();
    let pipeline = json!({
        "name": "every-5",
        "schedule": "*/5 * * * *",
        "source": {"connector": "kassandro", "streams": ["sales"], "config": {
            "base_url": sb.base_url, "api_key": api_key, "cash_register_id": 1,
            "start_date": "2026-01-05"}},
        "sink": {"connector": "generic", "config": {"path": output, "format": "ndjson"}},
    });
    let created = serve.post(
        "/api/v1/pipelines",
        Some(&admin),
        &json!({"storeId": "s1", "pipeline": pipeline}),
    );
    assert_eq!(created.status, 201, "{created:?}");

    // Registered at 12:00:30: nothing runs before the 12:05 tick.
    set_clock(&clock, "2026-03-02T12:04:59Z");
    settle();
    assert!(runs_of(&serve, &api, "every-5").is_empty());

    // The tick: a run with the trigger `schedule`, visible (live) while it goes on.
    set_clock(&clock, "2026-03-02T12:05:00Z");
    let first = wait_for("the 12:05 tick starts a run", || {
        runs_of(&serve, &api, "every-5").into_iter().next()
    });
    assert_eq!(first["trigger"], "schedule", "{first}");
    assert_eq!(first["status"], "running", "a run lasts seconds: {first}");
    // Never twice at once: not by hand, not by the next tick; and it cannot be deleted now.
    let by_hand = serve.post("/api/v1/pipelines/every-5/run", Some(&admin), &json!({}));
    assert_eq!(by_hand.status, 409, "{by_hand:?}");
    let delete = serve.delete("/api/v1/pipelines/every-5", Some(&admin));
    assert_eq!(delete.status, 409, "{delete:?}");
    api.assert_valid("delete", "/api/v1/pipelines/{name}", 409, &delete.body);
    set_clock(&clock, "2026-03-02T12:10:00Z");
    wait_for("the 12:10 tick is skipped", || {
        serve
            .stderr()
            .contains("tick skipped, the previous run is still going")
            .then_some(())
    });
    let first_id = first["id"].as_i64().unwrap();
    let done = wait_for("the first run ends", || {
        let a = serve.get(&format!("/api/v1/runs/{first_id}"), Some(&admin));
        (a.body["data"]["status"] != "running").then(|| a.body["data"].clone())
    });
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["written"], expected as u64, "{done}");
    settle();
    let runs = runs_of(&serve, &api, "every-5");
    assert_eq!(runs.len(), 1, "the skipped tick is not queued: {runs:?}");
    assert_eq!(serve.terminate(), 0);

    // Down over six ticks (12:15 … 12:40): one catch-up run after the start, not six.
    set_clock(&clock, "2026-03-02T12:40:00Z");
    let serve = ServeProcess::start_with_env(dir.path(), TEST_MASTER_KEY, &[], &clock_env);
    let caught_up = wait_for("the catch-up run ends", || {
        let runs = runs_of(&serve, &api, "every-5");
        (runs.len() >= 2 && runs[0]["status"] != "running").then_some(runs)
    });
    settle();
    let runs = runs_of(&serve, &api, "every-5");
    assert_eq!(runs.len(), 2, "exactly one catch-up run: {runs:?}");
    assert_eq!(runs, caught_up, "nothing started since");
    assert_eq!(
        (&runs[0]["trigger"], &runs[0]["status"]),
        (&json!("schedule"), &json!("succeeded"))
    );
    assert_eq!(runs[0]["written"], 0, "nothing twice: {}", runs[0]);
    assert_eq!(read_ndjson(&output).len(), expected);

    // Deleted: its schedule goes (no run on the next tick), its history stays.
    let deleted = serve.delete("/api/v1/pipelines/every-5", Some(&admin));
    assert_eq!(deleted.status, 200, "{deleted:?}");
    set_clock(&clock, "2026-03-02T12:45:00Z");
    settle();
    assert_eq!(runs_of(&serve, &api, "every-5").len(), 2);
}
