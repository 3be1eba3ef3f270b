use std::sync::Arc;

use chrono::{Duration, TimeZone};
use tokio::sync::{mpsc, Semaphore};

use super::*;
use crate::schedule::ManualClock;
use crate::state::SqliteStore;

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, h, m, s).unwrap()
}

fn every_5_minutes(name: &str) -> ScheduledPipeline {
    ScheduledPipeline {
        name: name.into(),
        schedule: CronSchedule::parse("*/5 * * * *").unwrap(),
    }
}

/// A callback that reports each start on a channel, and ends each run when the gate lets it.
fn recorder(gate: Option<Arc<Semaphore>>) -> (RunPipeline, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let run: RunPipeline = Arc::new(move |name: String| {
        let (tx, gate) = (tx.clone(), gate.clone());
        Box::pin(async move {
            tx.send(name).unwrap();
            if let Some(g) = gate {
                g.acquire().await.unwrap().forget();
            }
        })
    });
    (run, rx)
}

fn scheduler(
    clock: &Arc<ManualClock>,
    state: &Arc<SqliteStore>,
    run: RunPipeline,
    pipelines: Vec<ScheduledPipeline>,
) -> Scheduler {
    Scheduler::new(pipelines, clock.clone(), state.clone(), run).unwrap()
}

fn started(outcomes: &HashMap<String, TickOutcome>, name: &str) -> Option<DateTime<Utc>> {
    match outcomes.get(name) {
        Some(TickOutcome::Started { tick }) => Some(*tick),
        _ => None,
    }
}

#[tokio::test]
async fn each_pipeline_fires_on_its_ticks_and_not_between() {
    let clock = Arc::new(ManualClock::new(at(10, 0, 30)));
    let state = Arc::new(SqliteStore::open_in_memory().unwrap());
    let (run, mut starts) = recorder(None);
    let hourly = ScheduledPipeline {
        name: "hourly".into(),
        schedule: CronSchedule::parse("0 * * * *").unwrap(),
    };
    let s = scheduler(&clock, &state, run, vec![every_5_minutes("p"), hourly]);

    let first = s.step();
    assert_eq!(first.get("p"), Some(&TickOutcome::Registered));
    assert_eq!(first.get("hourly"), Some(&TickOutcome::Registered));
    assert_eq!(s.next_tick(), Some(at(10, 5, 0)));

    clock.set(at(10, 4, 59));
    assert!(s.step().is_empty(), "nothing is due before 10:05");
    clock.set(at(10, 5, 0));
    let out = s.step();
    assert_eq!(started(&out, "p"), Some(at(10, 5, 0)));
    assert!(!out.contains_key("hourly"));
    s.wait_for_runs().await;
    assert_eq!(starts.recv().await.as_deref(), Some("p"));

    clock.set(at(11, 0, 1));
    let out = s.step();
    assert_eq!(
        started(&out, "p"),
        Some(at(10, 10, 0)),
        "the first tick missed"
    );
    assert_eq!(started(&out, "hourly"), Some(at(11, 0, 0)));
    s.wait_for_runs().await;
    let mut names = vec![starts.recv().await.unwrap(), starts.recv().await.unwrap()];
    names.sort();
    assert_eq!(names, vec!["hourly", "p"]);
    assert!(s.step().is_empty(), "a tick is handled once");
    assert!(starts.try_recv().is_err());
}

#[tokio::test]
async fn a_tick_while_the_pipeline_runs_is_skipped_not_queued() {
    let clock = Arc::new(ManualClock::new(at(10, 0, 30)));
    let state = Arc::new(SqliteStore::open_in_memory().unwrap());
    let gate = Arc::new(Semaphore::new(0));
    let (run, mut starts) = recorder(Some(gate.clone()));
    let s = scheduler(&clock, &state, run, vec![every_5_minutes("p")]);
    s.step();

    clock.set(at(10, 5, 0));
    assert!(started(&s.step(), "p").is_some());
    assert_eq!(starts.recv().await.as_deref(), Some("p"));
    assert!(s.is_running("p"));

    // Two more ticks pass while the run hangs: each is skipped.
    for minute in [10, 15] {
        clock.set(at(10, minute, 0));
        assert_eq!(
            s.step().get("p"),
            Some(&TickOutcome::SkippedRunning {
                tick: at(10, minute, 0)
            })
        );
    }
    gate.add_permits(1);
    s.wait_for_runs().await;
    assert!(!s.is_running("p"));
    assert!(
        s.step().is_empty(),
        "skipped ticks are not run after the run ends"
    );
    assert!(starts.try_recv().is_err(), "one run only");

    clock.set(at(10, 20, 0));
    assert!(started(&s.step(), "p").is_some());
    assert_eq!(starts.recv().await.as_deref(), Some("p"));
    gate.add_permits(1);
    s.wait_for_runs().await;
}

#[tokio::test]
async fn ticks_missed_while_down_make_one_run_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let clock = Arc::new(ManualClock::new(at(10, 0, 30)));
    let (run, mut starts) = recorder(None);
    {
        let state = Arc::new(SqliteStore::open(&path).unwrap());
        let s = scheduler(&clock, &state, run.clone(), vec![every_5_minutes("p")]);
        s.step();
        clock.set(at(10, 5, 0));
        assert!(started(&s.step(), "p").is_some());
        s.wait_for_runs().await;
        assert_eq!(starts.recv().await.as_deref(), Some("p"));
    }
    // posbridge is down from 10:05 to 12:02: 23 ticks missed.
    clock.set(at(12, 2, 0));
    let state = Arc::new(SqliteStore::open(&path).unwrap());
    let s = scheduler(&clock, &state, run, vec![every_5_minutes("p")]);
    let out = s.step();
    assert_eq!(
        started(&out, "p"),
        Some(at(10, 10, 0)),
        "one run for all the missed ticks"
    );
    s.wait_for_runs().await;
    assert_eq!(starts.recv().await.as_deref(), Some("p"));
    assert!(s.step().is_empty());
    assert!(starts.try_recv().is_err(), "not one run per missed tick");
    assert_eq!(s.next_tick(), Some(at(12, 5, 0)));
}

#[tokio::test]
async fn spawned_it_wakes_on_the_clock_and_stops_on_cancel() {
    let clock = Arc::new(ManualClock::new(at(10, 0, 30)));
    let state = Arc::new(SqliteStore::open_in_memory().unwrap());
    let (run, mut starts) = recorder(None);
    let s = Arc::new(scheduler(&clock, &state, run, vec![every_5_minutes("p")]));
    let cancel = CancelFlag::new();
    let handle = s.clone().spawn(cancel.clone());
    // Wait until the scheduler registered the pipeline (its first look at the clock).
    while state.schedule_handled_until("p").unwrap().is_none() {
        tokio::task::yield_now().await;
    }
    clock.advance(Duration::minutes(5));
    assert_eq!(starts.recv().await.as_deref(), Some("p"));
    cancel.cancel();
    handle.await.unwrap();
    assert!(starts.try_recv().is_err());
}

#[test]
fn a_bad_schedule_or_a_pipeline_scheduled_twice_is_refused() {
    let def = crate::pipeline::parse_pipeline(
        "name: p\nsource: {connector: a}\nsink: {connector: b}\nschedule: \"*/5 * * * *\"\n",
        std::path::Path::new("p.yaml"),
    )
    .unwrap();
    let p = ScheduledPipeline::from_def(&def).unwrap().unwrap();
    assert_eq!(p.schedule.expression(), "*/5 * * * *");
    let mut unscheduled = def.clone();
    unscheduled.schedule = None;
    assert!(ScheduledPipeline::from_def(&unscheduled).unwrap().is_none());
    let mut bad = def.clone();
    bad.schedule = Some("*/5 * *".into());
    assert!(ScheduledPipeline::from_def(&bad).is_err());

    let state = Arc::new(SqliteStore::open_in_memory().unwrap());
    let clock = Arc::new(ManualClock::new(at(10, 0, 0)));
    let (run, _rx) = recorder(None);
    let e = Scheduler::new(vec![p.clone(), p], clock, state, run)
        .err()
        .unwrap();
    assert!(e.to_string().contains("scheduled twice"), "{e}");
}
