//! Interface evolution: a library built against the previous interface minor (1.0, from a frozen
//! copy of its ABI) loads and runs in this host; one needing a newer interface is refused with
//! both versions named. Fixtures: `tests/standalone/interface-prev-minor` (a Cargo project of
//! its own, built here: see its Cargo.toml) and `tests/fixtures/interface-newer`.

use std::path::{Path, PathBuf};
use std::process::Command;

use posbridge::plugins::Registry;
use posbridge_e2e::*;
use posbridge_plugin_api::abi::{migration_kind, INTERFACE_VERSION};
use serde_json::{json, Value};

const PREV_MINOR: &str = "posbridge_fixture_interface_prev_minor";

/// Builds the previous-minor fixture into the shared out-of-tree target folder (the one
/// `vendor_path.rs` uses too, so its registry crates are compiled once); answers the library.
fn build_prev_minor() -> PathBuf {
    let project = workspace_root().join("tests/standalone/interface-prev-minor");
    let target = target_dir().join("out-of-tree");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let r = run(Command::new(cargo)
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", &target)
        .args(["build", "--quiet"]));
    assert_eq!(r.code, 0, "{r:?}");
    target.join("debug").join(dylib_file_name(PREV_MINOR))
}
const NEWER: &str = "posbridge_fixture_interface_newer";

fn posbridge_in(dir: &Path) -> Command {
    let mut c = Command::new(posbridge_bin());
    c.arg("--plugin-dir")
        .arg(dir)
        .env("RUST_LOG", "warn")
        .env_remove("POSBRIDGE_NOW");
    c
}

#[test]
fn this_host_is_interface_1_1() {
    // The fixtures below model 1.0 (one minor back) and 1.2 (one minor ahead).
    assert_eq!(INTERFACE_VERSION, "1.1.0");
}

#[test]
fn a_library_built_against_the_previous_minor_loads_and_runs_a_pipeline() {
    let dir = plugin_dir_with(&["posbridge_generic"]);
    let lib = build_prev_minor();
    std::fs::copy(&lib, dir.path().join(lib.file_name().unwrap())).unwrap();
    let r = run(posbridge_in(dir.path()).args(["plugins", "list", "--json"]));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stderr.contains(PREV_MINOR), "not skipped: {r:?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(
        v["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "prev-minor"),
        "{r:?}"
    );

    // Its 1.0 manifest lacks the 1.1 fields: both versions read as 1.
    let reg = Registry::load(&[dir.path().to_path_buf()]);
    let entry = reg.get("prev-minor").expect("loaded");
    assert_eq!(entry.manifest.interface_version, "1.0.0");
    assert_eq!(
        (entry.manifest.config_version, entry.manifest.cursor_version),
        (1, 1)
    );
    // The appended `migrate` field is missing from its root module: nothing to migrate is fine,
    // anything else is a clear refusal rather than a call into memory that is not there.
    let cursor = json!({"offset": 3});
    assert_eq!(
        reg.migrate("prev-minor", migration_kind::CURSOR, 1, &cursor)
            .unwrap(),
        cursor
    );
    let err = reg
        .migrate("prev-minor", migration_kind::CURSOR, 2, &cursor)
        .unwrap_err()
        .to_string();
    assert!(err.contains("predates plugin interface 1.1"), "{err}");

    // And a whole pipeline runs from it through this host.
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out.ndjson");
    let file = work.path().join("old.yaml");
    std::fs::write(
        &file,
        format!(
            "name: old\nsource:\n  connector: prev-minor\n  config: {{}}\n  streams: [registers]\n\
             sink:\n  connector: generic\n  config: {{path: {}, format: ndjson, stream: registers}}\n",
            out.display()
        ),
    )
    .unwrap();
    let state = format!("sqlite:{}", work.path().join("state.db").display());
    let r = run(posbridge_in(dir.path())
        .arg("run")
        .arg(&file)
        .args(["--state", &state]));
    assert_eq!(r.code, 0, "{r:?}");
    let ids: Vec<String> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids, ["old-1", "old-2", "old-3"]);
}

#[test]
fn a_library_needing_a_newer_interface_is_refused_naming_both_versions() {
    let dir = plugin_dir_with(&["posbridge_generic", NEWER]);
    let r = run(posbridge_in(dir.path()).args(["plugins", "list"]));
    assert_eq!(r.code, 0, "{r:?}");
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains(NEWER))
        .unwrap_or_else(|| panic!("{r:?}"));
    assert!(
        line.contains("built against plugin interface 1.2.0")
            && line.contains(&format!("this host supports interface {INTERFACE_VERSION}")),
        "{line}"
    );
    assert!(r.stdout.lines().any(|l| l.starts_with("generic ")), "{r:?}");
}
