//! A scheduled pipeline run by the real runner (generic connector plugins from a folder), on a
//! controllable clock: it runs on its ticks, is recorded with the trigger `schedule`, and
//! delivers every record once.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use posbridge::jobs::JobRunner;
use posbridge::pipeline::parse_pipeline;
use posbridge::runtime::CancelFlag;
use posbridge::schedule::{ManualClock, Scheduler, TickOutcome};
use posbridge::state::{SqliteStore, StateStore};
use posbridge_e2e::{generate_sales_file, read_ndjson, registry};

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
