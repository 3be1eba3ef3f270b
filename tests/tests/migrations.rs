//! Config and cursor migrations: a pipeline syncs from version 1 of a connector, the library is
//! replaced by version 2 (new config and cursor shapes) in the folder part way through, and the
//! sync goes on from the migrated cursor with the migrated config: no gap, no duplicate.
//! Fixtures: `tests/fixtures/migrating-v1`, `migrating-v2` (record n appears n minutes after
//! 2026-01-01T00:00Z on the host clock, which `POSBRIDGE_NOW` pins).

use std::path::{Path, PathBuf};
use std::process::Command;

use posbridge::pipeline::{recorded_versions, VERSIONS_NAMESPACE};
use posbridge::state::{SqliteStore, StateStore};
use posbridge_e2e::*;
use serde_json::{json, Value};

/// The file name both versions are installed under: an upgrade replaces the file.
fn installed_name() -> String {
    dylib_file_name("posbridge_fixture_migrating")
}

fn install(folder: &Path, version: u32) {
    let built = artifacts_dir().join(dylib_file_name(&format!(
        "posbridge_fixture_migrating_v{version}"
    )));
    let target = folder.join(installed_name());
    // As a deployment should: a copy under another name, renamed into place.
    let tmp = folder.join("upgrade.tmp");
    std::fs::copy(built, &tmp).unwrap();
    std::fs::rename(&tmp, target).unwrap();
}

struct Setup {
    _work: tempfile::TempDir,
    plugins: tempfile::TempDir,
    pipeline: PathBuf,
    output: PathBuf,
    state: PathBuf,
}

fn setup(name: &str, source_config: &str) -> Setup {
    let plugins = plugin_dir_with(&["posbridge_generic"]);
    let work = tempfile::tempdir().unwrap();
    let output = work.path().join("out.ndjson");
    let pipeline = work.path().join(format!("{name}.yaml"));
    std::fs::write(
        &pipeline,
        format!(
            "name: {name}\nsource:\n  connector: migrating\n  config: {source_config}\n  \
             streams: [registers]\n  page_size: 5\nsink:\n  connector: generic\n  \
             config: {{path: {}, format: ndjson, stream: registers}}\n",
            output.display()
        ),
    )
    .unwrap();
    Setup {
        state: work.path().join("state.db"),
        _work: work,
        plugins,
        pipeline,
        output,
    }
}

impl Setup {
    fn run_at(&self, now: &str) -> Ran {
        run(Command::new(posbridge_bin())
            .arg("--plugin-dir")
            .arg(self.plugins.path())
            .env("RUST_LOG", "warn")
            .env("POSBRIDGE_NOW", now)
            .arg("run")
            .arg(&self.pipeline)
            .arg("--state")
            .arg(format!("sqlite:{}", self.state.display())))
    }

    /// (id, which version read it) of every record in the sink's file, in order.
    fn delivered(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(&self.output)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (
                    v["id"].as_str().unwrap().to_string(),
                    v["read_by"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn store(&self) -> SqliteStore {
        SqliteStore::open(&self.state).unwrap()
    }
}

fn ids(from: u64, to: u64) -> Vec<String> {
    (from..=to).map(|n| format!("r-{n:04}")).collect()
}

#[test]
fn upgrading_the_source_mid_sync_keeps_cursor_and_config_with_no_gap_and_no_duplicate() {
    let s = setup("upgrade", "{count: 30}");
    install(s.plugins.path(), 1);
    let r = s.run_at("2026-01-01T00:12:00Z");
    assert_eq!(r.code, 0, "{r:?}");
    let first = s.delivered();
    assert_eq!(
        first.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
        ids(1, 12)
    );
    assert!(first.iter().all(|(_, by)| by == "v1"));
    assert_eq!(
        s.store().cursor("upgrade", "registers").unwrap(),
        Some(json!({"offset": 12}))
    );

    // Version 2 replaces version 1 in the folder; the pipeline file keeps its v1 config.
    install(s.plugins.path(), 2);
    let r = s.run_at("2026-01-01T00:30:00Z");
    assert_eq!(r.code, 0, "{r:?}");
    let all = s.delivered();
    assert_eq!(
        all.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
        ids(1, 30),
        "every record once, in order: no gap, no duplicate"
    );
    assert!(all[12..].iter().all(|(_, by)| by == "v2"), "{all:?}");

    // The cursor was migrated once, and the versions it was written with are recorded.
    let store = s.store();
    assert_eq!(
        store.cursor("upgrade", "registers").unwrap(),
        Some(json!({"after_id": "r-0030"}))
    );
    let rec = recorded_versions(&store, "upgrade").unwrap();
    let source = rec.source.unwrap();
    assert_eq!(
        (
            source.plugin_version.as_str(),
            source.cursor_version,
            source.config_version
        ),
        ("2.0.0", 2, 1),
        "the file still holds a version 1 config, migrated in memory on each run"
    );
    assert!(rec.pending.is_none());
    assert!(store
        .kv_get(VERSIONS_NAMESPACE, "upgrade")
        .unwrap()
        .is_some());
    drop(store);

    // A later run finds nothing new and does not migrate the version 2 cursor again.
    let r = s.run_at("2026-01-01T00:45:00Z");
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(s.delivered().len(), 30);
}

#[test]
fn version_2_refuses_version_1_shapes_without_the_host_s_migration() {
    // A new pipeline is taken to be written for the installed version: its v1 config is not
    // migrated, and version 2 refuses it. This is what an upgrade without migrations would do.
    let s = setup("fresh", "{count: 30}");
    install(s.plugins.path(), 2);
    let r = s.run_at("2026-01-01T00:30:00Z");
    assert_ne!(r.code, 0, "{r:?}");
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(all.contains("last_id") || all.contains("count"), "{r:?}");
    assert!(s.delivered().is_empty());
}

#[test]
fn going_back_to_version_1_after_the_upgrade_is_refused_naming_both_cursor_versions() {
    let s = setup("downgrade", "{count: 30}");
    install(s.plugins.path(), 1);
    assert_eq!(s.run_at("2026-01-01T00:05:00Z").code, 0);
    install(s.plugins.path(), 2);
    assert_eq!(s.run_at("2026-01-01T00:10:00Z").code, 0);
    install(s.plugins.path(), 1);
    let r = s.run_at("2026-01-01T00:20:00Z");
    assert_ne!(r.code, 0, "{r:?}");
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(
        all.contains("cursor is version 2, newer than this connector's 1"),
        "{r:?}"
    );
    assert_eq!(s.delivered().len(), 10, "nothing read by the refused run");
    assert_eq!(
        s.store().cursor("downgrade", "registers").unwrap(),
        Some(json!({"after_id": "r-0010"})),
        "the cursor is left as version 2 wrote it"
    );
}
