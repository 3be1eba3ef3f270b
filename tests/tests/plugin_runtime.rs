//! The plugin runtime end to end: libraries loaded from a folder, bad files skipped with a
//! reason, panics contained, configs validated with JSON paths, secrets redacted.

use std::path::Path;

use posbridge::plugins::{OpenOptions, Registry};
use posbridge_e2e::*;
use posbridge_plugin_api::{ConnectorError, ReadRequest, WriteRequest};
use serde_json::json;

fn list(dir: &Path) -> Ran {
    run(std::process::Command::new(posbridge_bin())
        .arg("--plugin-dir")
        .arg(dir)
        .args(["plugins", "list"]))
}

#[test]
fn plugins_list_shows_the_generic_connector() {
    let r = run(posbridge().args(["plugins", "list"]));
    assert_eq!(r.code, 0, "{r:?}");
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("generic "))
        .unwrap_or_else(|| panic!("{r:?}"));
    assert!(line.contains("source,sink"), "{line}");
    assert!(line.contains("sales"), "{line}");
    let j = run(posbridge().args(["plugins", "list", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert!(
        v["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "generic"),
        "{j:?}"
    );
}

#[test]
fn a_junk_file_is_skipped_with_its_name_and_reason() {
    let dir = plugin_dir_with(&["posbridge_generic"]);
    std::fs::write(dir.path().join("libjunk.so"), "this is not a library\n").unwrap();
    let r = list(dir.path());
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.lines().any(|l| l.starts_with("generic ")), "{r:?}");
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains("libjunk.so"))
        .unwrap_or_else(|| panic!("{r:?}"));
    assert!(line.contains("not a loadable library"), "{line}");
    assert_eq!(
        r.stderr
            .lines()
            .filter(|l| l.contains("libjunk.so"))
            .count(),
        1,
        "one line per file: {r:?}"
    );
}

/// A half-finished copy during a deployment crashed every command with SIGBUS inside dlopen.
#[cfg(unix)]
#[test]
fn truncated_libraries_and_broken_symlinks_are_skipped_with_their_names_and_reasons() {
    let dir = plugin_dir_with(&["posbridge_generic"]);
    let whole = std::fs::read(dir.path().join(dylib_file_name("posbridge_generic"))).unwrap();
    let cuts = [
        ("libhalf.so", whole.len() / 2),
        ("libninety.so", whole.len() * 9 / 10),
        ("libalmost.so", whole.len() - 4096),
        ("libheader.so", 64),
        ("libempty.so", 0),
    ];
    for (name, len) in cuts {
        std::fs::write(dir.path().join(name), &whole[..len]).unwrap();
    }
    std::os::unix::fs::symlink(
        dir.path().join("gone.so.1"),
        dir.path().join("libdangling.so"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        dir.path().join("libloop2.so"),
        dir.path().join("libloop1.so"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        dir.path().join("libloop1.so"),
        dir.path().join("libloop2.so"),
    )
    .unwrap();

    let r = list(dir.path());
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.lines().any(|l| l.starts_with("generic ")), "{r:?}");
    let line = |name: &str| {
        let skipped = format!("skipped {}: ", dir.path().join(name).display());
        let lines: Vec<&str> = r.stderr.lines().filter(|l| l.contains(&skipped)).collect();
        assert_eq!(lines.len(), 1, "one line for {name}: {r:?}");
        lines[0].to_string()
    };
    for (name, _) in cuts {
        let l = line(name);
        assert!(l.contains("not a loadable library"), "{l}");
        assert!(l.contains("truncated") || l.contains("empty"), "{l}");
    }
    assert!(line("libdangling.so").contains("dangling symlink"), "{r:?}");
    assert!(line("libdangling.so").contains("gone.so.1"), "{r:?}");
    for name in ["libloop1.so", "libloop2.so"] {
        assert!(line(name).contains("cannot be followed"), "{r:?}");
    }

    // `--json` lists the same skipped files.
    let j = run(std::process::Command::new(posbridge_bin())
        .arg("--plugin-dir")
        .arg(dir.path())
        .args(["plugins", "list", "--json"]));
    assert_eq!(j.code, 0, "{j:?}");
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(
        v["skipped"].as_array().unwrap().len(),
        cuts.len() + 3,
        "{j:?}"
    );
    // The one library that loads, beside the connectors built into the host.
    let libraries = v["plugins"].as_array().unwrap().iter();
    assert_eq!(
        libraries.filter(|p| p["file"] != "built-in").count(),
        1,
        "{j:?}"
    );
}

#[test]
fn a_library_built_against_an_older_interface_is_refused_naming_both_versions() {
    let dir = plugin_dir_with(&["posbridge_generic", "posbridge_fixture_old_interface"]);
    let r = list(dir.path());
    assert_eq!(r.code, 0, "{r:?}");
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains("posbridge_fixture_old_interface"))
        .unwrap_or_else(|| panic!("{r:?}"));
    assert!(line.contains("0.9.0"), "{line}");
    assert!(
        line.contains(posbridge_plugin_api::abi::INTERFACE_VERSION),
        "{line}"
    );
    assert!(r.stdout.lines().any(|l| l.starts_with("generic ")), "{r:?}");
}

#[test]
fn a_library_without_the_root_module_is_skipped() {
    // Any real shared library that is not a posbridge connector: the C math library.
    let libm = [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
        "/lib64/libm.so.6",
        "/usr/lib/libm.so.6",
    ]
    .iter()
    .map(Path::new)
    .find(|p| p.exists())
    .expect("this test needs the system's libm.so.6");
    let dir = plugin_dir_with(&["posbridge_generic"]);
    std::fs::copy(libm, dir.path().join("libforeign.so")).unwrap();
    let r = list(dir.path());
    assert_eq!(r.code, 0, "{r:?}");
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains("libforeign.so"))
        .unwrap_or_else(|| panic!("{r:?}"));
    assert!(line.contains("no posbridge root module"), "{line}");
}

#[test]
fn a_second_connector_with_the_same_name_is_skipped() {
    let dir = plugin_dir_with(&["posbridge_generic"]);
    std::fs::copy(
        dir.path().join(dylib_file_name("posbridge_generic")),
        dir.path().join(dylib_file_name("posbridge_generic_copy")),
    )
    .unwrap();
    let r = list(dir.path());
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stdout
            .lines()
            .filter(|l| l.starts_with("generic "))
            .count(),
        1,
        "{r:?}"
    );
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains("posbridge_generic_copy"))
        .unwrap_or_else(|| panic!("{r:?}"));
    assert!(line.contains("already loaded"), "{line}");
}

#[test]
fn a_panicking_plugin_does_not_take_the_host_down() {
    let dir = plugin_dir_with(&["posbridge_generic", "posbridge_fixture_panicking"]);
    let reg = Registry::load(&[dir.path().to_path_buf()]);
    assert!(reg.skipped().is_empty(), "{:?}", reg.skipped());
    let bad = reg
        .open("test-panicking", &json!({}), OpenOptions::default())
        .unwrap();
    let err = bad
        .read(&ReadRequest {
            stream: "sales".into(),
            page_size: 10,
            ..Default::default()
        })
        .unwrap_err();
    match &err {
        ConnectorError::Bug(m) => {
            assert!(m.contains("test-panicking"), "{m}");
            assert!(m.contains("panicked in read"), "{m}");
            assert!(m.contains("fixture: read always panics"), "{m}");
        }
        other => panic!("expected a Bug error, got {other:?}"),
    }
    // Again, and through write: the process is still here and the plugin still answers.
    let err = bad
        .write(
            &WriteRequest {
                stream: "sales".into(),
                ..Default::default()
            },
            &[json!({"id": "1"})],
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("write of 1 records panics"),
        "{err}"
    );
    assert!(bad.check().unwrap().ok);

    // The other plugin keeps serving.
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("in.ndjson");
    std::fs::write(&file, "{\"id\":\"a\"}\n{\"id\":\"b\"}\n").unwrap();
    let good = reg
        .open(
            "generic",
            &json!({"path": file, "format": "ndjson"}),
            OpenOptions::default(),
        )
        .unwrap();
    let page = good
        .read(&ReadRequest {
            stream: "sales".into(),
            page_size: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.records.len(), 2);
}

#[test]
fn a_config_with_a_wrong_type_names_the_json_path() {
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("bad.json");
    std::fs::write(&cfg, r#"{"path": 42, "format": "ndjson"}"#).unwrap();
    let r = run(posbridge()
        .args(["check", "--connector", "generic", "--config"])
        .arg(&cfg));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("$.path"), "{r:?}");
    assert!(r.stdout.contains("not of type"), "{r:?}");

    // YAML configs work too, and an unknown field is named.
    let cfg = cfg_dir.path().join("bad.yaml");
    std::fs::write(&cfg, "path: /tmp/x.ndjson\nformatt: csv\n").unwrap();
    let r = run(posbridge()
        .args(["check", "--connector", "generic", "--config"])
        .arg(&cfg));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("$.formatt"), "{r:?}");
}

#[test]
fn check_runs_the_connectors_own_check() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("sales.ndjson");
    std::fs::write(&data, "").unwrap();
    let cfg = d.path().join("ok.json");
    std::fs::write(&cfg, json!({"path": data, "format": "ndjson"}).to_string()).unwrap();
    let r = run(posbridge()
        .args(["check", "--connector", "generic", "--config"])
        .arg(&cfg));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("check generic: ok"), "{r:?}");
    // An unknown connector gets a suggestion.
    let r = run(posbridge()
        .args(["check", "--connector", "generik", "--config"])
        .arg(&cfg));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("did you mean \"generic\""), "{r:?}");
}

#[test]
fn secrets_are_redacted_in_errors_logs_and_inspect() {
    let dir = plugin_dir_with(&["posbridge_fixture_panicking"]);
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("c.json");
    std::fs::write(&cfg, r#"{"token": "sup3r-s3cret-value"}"#).unwrap();
    let r = run(std::process::Command::new(posbridge_bin())
        .arg("--plugin-dir")
        .arg(dir.path())
        .args([
            "--log-format",
            "text",
            "check",
            "--connector",
            "test-panicking",
            "--config",
        ])
        .arg(&cfg));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        !r.stdout.contains("sup3r-s3cret-value") && !r.stderr.contains("sup3r-s3cret-value"),
        "{r:?}"
    );
    assert!(r.stdout.contains("token *** was refused"), "{r:?}");
    assert!(
        r.stderr.contains("checking with token ***"),
        "the plugin's log line reaches the host's log: {r:?}"
    );

    let r = run(std::process::Command::new(posbridge_bin())
        .arg("--plugin-dir")
        .arg(dir.path())
        .args(["plugins", "inspect", "test-panicking", "--json"]));
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["secrets"], json!(["token"]));
    assert_eq!(
        v["config_schema"]["properties"]["token"]["x-secret"],
        json!(true)
    );
}
