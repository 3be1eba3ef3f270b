//! Harness for posbridge's end-to-end tests: builds the host and every connector library once
//! per test process, copies the libraries into a folder of their own, and runs the real
//! `posbridge` binary or loads the folder through the host library.
//!
//! Tests never link a connector crate: they see connectors only as files in a folder.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use posbridge::plugins::Registry;

pub mod openapi_check;
pub mod serve_process;
pub use openapi_check::OpenApiChecker;
pub use serve_process::{Answer, ServeProcess, TEST_MASTER_KEY};

/// The workspace root (one level above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Cargo's target folder for this build.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| {
            if p.is_absolute() {
                p
            } else {
                workspace_root().join(p)
            }
        })
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The folder of the debug artifacts.
pub fn artifacts_dir() -> PathBuf {
    target_dir().join("debug")
}

/// Package and library names of every crate in a folder of crates (`plugins/`, `tests/fixtures/`).
fn crates_in(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.filter_map(Result::ok) {
        let Ok(toml) = std::fs::read_to_string(e.path().join("Cargo.toml")) else {
            continue;
        };
        let mut package = None;
        let mut lib = None;
        let mut section = String::new();
        for line in toml.lines() {
            let l = line.trim();
            if l.starts_with('[') {
                section = l.to_string();
            } else if let Some(v) = l.strip_prefix("name") {
                let v = v
                    .trim_start()
                    .trim_start_matches('=')
                    .trim()
                    .trim_matches('"')
                    .to_string();
                match section.as_str() {
                    "[package]" => package = Some(v),
                    "[lib]" => lib = Some(v),
                    _ => {}
                }
            }
        }
        if let Some(p) = package {
            let l = lib.unwrap_or_else(|| p.replace('-', "_"));
            out.push((p, l));
        }
    }
    out.sort();
    out
}

/// File name of a cdylib on this platform.
pub fn dylib_file_name(lib: &str) -> String {
    format!(
        "{}{lib}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

/// Builds the host binary, every connector and the test fixtures (once per process).
pub fn build_all() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace_root())
            .args(["build", "--quiet", "-p", "posbridge"]);
        for (pkg, _) in crates_in(&workspace_root().join("plugins"))
            .into_iter()
            .chain(crates_in(&workspace_root().join("tests/fixtures")))
        {
            cmd.args(["-p", &pkg]);
        }
        let status = cmd.status().expect("cannot run cargo build");
        assert!(
            status.success(),
            "cargo build of the host and plugins failed"
        );
    });
}

/// A folder holding a fresh copy of every connector library (not the test fixtures).
pub fn plugin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        build_all();
        let dir = target_dir().join(format!("e2e-plugins-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create plugin dir");
        for (pkg, lib) in crates_in(&workspace_root().join("plugins")) {
            let name = dylib_file_name(&lib);
            let built = artifacts_dir().join(&name);
            if !built.exists() {
                // cargo built the package, so it is not a cdylib (yet): nothing to load.
                eprintln!("note: {pkg} produced no {name}; not in the plugin folder");
                continue;
            }
            std::fs::copy(&built, dir.join(&name)).unwrap_or_else(|e| panic!("copy {name}: {e}"));
        }
        dir
    })
}

/// A new temporary folder with copies of the given connector libraries (by lib name, e.g.
/// `posbridge_generic`) and fixtures (e.g. `posbridge_fixture_panicking`).
pub fn plugin_dir_with(libs: &[&str]) -> tempfile::TempDir {
    build_all();
    let dir = tempfile::tempdir().expect("tempdir");
    for lib in libs {
        let name = dylib_file_name(lib);
        std::fs::copy(artifacts_dir().join(&name), dir.path().join(&name))
            .unwrap_or_else(|e| panic!("copy {name}: {e}"));
    }
    dir
}

/// The `posbridge` binary.
pub fn posbridge_bin() -> PathBuf {
    build_all();
    artifacts_dir().join(format!("posbridge{}", std::env::consts::EXE_SUFFIX))
}

/// A `posbridge` command that loads connectors from [`plugin_dir`].
pub fn posbridge() -> Command {
    let mut c = Command::new(posbridge_bin());
    c.env("POSBRIDGE_PLUGIN_DIR", plugin_dir())
        .env("RUST_LOG", "warn")
        .env_remove("POSBRIDGE_NOW");
    c
}

/// The connectors of [`plugin_dir`], loaded through the host library.
pub fn registry() -> Registry {
    Registry::load(&[plugin_dir().to_path_buf()])
}

/// Output of a finished command, as text, for assertions with useful failure messages.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs a command to completion.
pub fn run(cmd: &mut Command) -> Ran {
    let out = cmd.output().expect("cannot run command");
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A request received by [`TestHttpServer`].
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: std::time::Instant,
}

impl ReceivedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A canned answer of [`TestHttpServer`].
pub struct CannedResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

type Handler = dyn Fn(usize, &ReceivedRequest) -> CannedResponse + Send + Sync;

/// A tiny HTTP/1.1 server on 127.0.0.1 for tests of host behaviour against odd answers
/// (429s, 5xx). The handler gets the request number (0-based) and the request.
pub struct TestHttpServer {
    pub base_url: String,
    received: std::sync::Arc<std::sync::Mutex<Vec<ReceivedRequest>>>,
}

impl TestHttpServer {
    pub fn start(
        handler: impl Fn(usize, &ReceivedRequest) -> CannedResponse + Send + Sync + 'static,
    ) -> Self {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let rec = received.clone();
        let handler: std::sync::Arc<Handler> = std::sync::Arc::new(handler);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or_default().to_string();
                let path = parts.next().unwrap_or_default().to_string();
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" || h == "\n" {
                        break;
                    }
                    if let Some((k, v)) = h.trim_end().split_once(':') {
                        headers.push((k.trim().to_string(), v.trim().to_string()));
                    }
                }
                let len = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.parse::<usize>().ok())
                    .unwrap_or(0);
                let mut body = vec![0u8; len];
                let _ = reader.read_exact(&mut body);
                let req = ReceivedRequest {
                    method,
                    path,
                    headers,
                    body,
                    at: std::time::Instant::now(),
                };
                let n = {
                    let mut r = rec.lock().unwrap();
                    r.push(req.clone());
                    r.len() - 1
                };
                let resp = handler(n, &req);
                let mut out = format!(
                    "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                    resp.status,
                    resp.body.len()
                );
                for (k, v) in &resp.headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                out.push_str(&resp.body);
                let _ = stream.write_all(out.as_bytes());
                let _ = stream.flush();
            }
        });
        Self { base_url, received }
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<ReceivedRequest> {
        self.received.lock().unwrap().clone()
    }
}

/// Reads an NDJSON file into JSON values.
pub fn read_ndjson(path: &Path) -> Vec<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("bad line in {}: {e}: {l}", path.display()))
        })
        .collect()
}

/// Writes `n` generated canonical sales (seeded) to `path` with the real binary.
pub fn generate_sales_file(path: &Path, n: usize, seed: u64) {
    let r = run(posbridge()
        .args([
            "sandbox",
            "generate",
            "--sales",
            &n.to_string(),
            "--seed",
            &seed.to_string(),
            "--out",
        ])
        .arg(path));
    assert_eq!(r.code, 0, "{r:?}");
}

/// Reads a source's `sales` until `has_more` is false, asking for each page with
/// `request(cursor)`; returns the sales, the page count and the last cursor.
pub fn read_all_sales(
    handle: &posbridge::plugins::ConnectorHandle,
    cursor: Option<serde_json::Value>,
    request: impl Fn(Option<serde_json::Value>) -> posbridge_plugin_api::ReadRequest,
) -> (
    Vec<posbridge_plugin_api::model::Sale>,
    usize,
    Option<serde_json::Value>,
) {
    let (mut sales, mut pages, mut cursor) = (Vec::new(), 0, cursor);
    loop {
        let page = handle.read(&request(cursor.clone())).expect("page reads");
        pages += 1;
        sales.extend(page.records.into_iter().map(|r| {
            serde_json::from_value::<posbridge_plugin_api::model::Sale>(r)
                .expect("a canonical sale")
        }));
        cursor = page.cursor;
        if !page.has_more {
            return (sales, pages, cursor);
        }
        assert!(pages < 10_000, "the connector never finishes");
    }
}

/// Sales keyed by id; a sale read twice fails the test.
pub fn sales_by_id(
    sales: Vec<posbridge_plugin_api::model::Sale>,
) -> std::collections::BTreeMap<String, posbridge_plugin_api::model::Sale> {
    let n = sales.len();
    let map: std::collections::BTreeMap<_, _> =
        sales.into_iter().map(|s| (s.id.clone(), s)).collect();
    assert_eq!(map.len(), n, "a sale was read twice");
    map
}

/// The sales read equal the expected ones (same ids, field for field), and each reconciles.
pub fn assert_same_sales(
    read: Vec<posbridge_plugin_api::model::Sale>,
    expected: Vec<posbridge_plugin_api::model::Sale>,
) {
    let (read, expected) = (sales_by_id(read), sales_by_id(expected));
    assert_eq!(
        read.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (id, sale) in &read {
        assert_eq!(sale, &expected[id], "sale {id} differs");
        let violations = sale.validate();
        assert!(
            violations.is_empty(),
            "sale {id} does not reconcile: {violations:?}"
        );
    }
}

/// Asserts that opening `connector` with `config` is refused by the host's schema check, naming
/// each of `paths` (`$.base_url`, `$.shop_uuids[1]`, …).
pub fn assert_config_refused_at(connector: &str, config: &serde_json::Value, paths: &[&str]) {
    let err = match registry().open(
        connector,
        config,
        posbridge::plugins::OpenOptions::default(),
    ) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("{connector} opened a bad config"),
    };
    assert!(err.contains("invalid config"), "{err}");
    for path in paths {
        assert!(err.contains(&format!("{path}: ")), "{path} in {err}");
    }
}
