//! [`ServeProcess`]: the real `posbridge serve` on 127.0.0.1 with a port of its own, an admin
//! key, and small blocking helpers to call it. Killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use serde_json::Value;

use crate::{posbridge, run, Ran};

/// A master key for tests (64 hex characters).
pub const TEST_MASTER_KEY: &str =
    "5f1e0c2a9b8d7f6e5d4c3b2a19080706f5e4d3c2b1a09f8e7d6c5b4a39281706";

/// A running `posbridge serve`.
pub struct ServeProcess {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// An admin key made with `posbridge apikey create --admin` before the start.
    pub admin_key: String,
    /// The `--state` value.
    pub state_spec: String,
    /// The master key it runs with.
    pub master_key: String,
    stderr_file: PathBuf,
    client: reqwest::blocking::Client,
}

/// An answer: status, `Retry-After` (if any) and the JSON body (`Null` if not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub content_type: Option<String>,
    pub body: Value,
    pub text: String,
}

impl ServeProcess {
    /// Starts `posbridge serve --listen 127.0.0.1:0 --state sqlite:<state_dir>/posbridge.db
    /// <extra_args>` with [`TEST_MASTER_KEY`] and the test plugin folder.
    pub fn start(state_dir: &Path, extra_args: &[&str]) -> Self {
        Self::start_with_key(state_dir, TEST_MASTER_KEY, extra_args)
    }

    /// [`ServeProcess::start`] with another master key.
    pub fn start_with_key(state_dir: &Path, master_key: &str, extra_args: &[&str]) -> Self {
        Self::start_with_env(state_dir, master_key, extra_args, &[])
    }

    /// [`ServeProcess::start_with_key`] with more environment variables for the server (e.g. a
    /// test clock).
    pub fn start_with_env(
        state_dir: &Path,
        master_key: &str,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let state_spec = format!("sqlite:{}", state_dir.join("posbridge.db").display());
        let created =
            run(posbridge().args(["apikey", "create", "--admin", "--state", &state_spec]));
        assert_eq!(created.code, 0, "apikey create --admin: {created:?}");
        let admin_key = created.stdout.trim().to_string();
        match Self::spawn_with_env(state_dir, &state_spec, master_key, extra_args, env) {
            Ok((child, base_url, stderr_file)) => Self {
                child: Some(child),
                base_url,
                admin_key,
                state_spec,
                master_key: master_key.to_string(),
                stderr_file,
                client: reqwest::blocking::Client::new(),
            },
            Err(ran) => panic!("posbridge serve did not start: {ran:?}"),
        }
    }

    /// Spawns the server and reads `listening on http://ADDR`; a process that exits first is
    /// answered as its output.
    pub fn spawn(
        state_dir: &Path,
        state_spec: &str,
        master_key: &str,
        extra_args: &[&str],
    ) -> Result<(Child, String, PathBuf), Ran> {
        Self::spawn_with_env(state_dir, state_spec, master_key, extra_args, &[])
    }

    /// [`ServeProcess::spawn`] with more environment variables.
    pub fn spawn_with_env(
        state_dir: &Path,
        state_spec: &str,
        master_key: &str,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<(Child, String, PathBuf), Ran> {
        let stderr_file = state_dir.join(format!("serve-{}.stderr", rand::random::<u32>()));
        let mut cmd = posbridge();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--state", state_spec])
            .args(extra_args)
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .env("POSBRIDGE_MASTER_KEY", master_key)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_file).expect("stderr file"));
        let mut child = cmd.spawn().expect("spawn posbridge serve");
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let _ = out.read_line(&mut line);
        if let Some(addr) = line.trim().strip_prefix("listening on ") {
            // Keep reading stdout so the server never blocks on a full pipe.
            std::thread::spawn(move || {
                let mut sink = String::new();
                while out.read_line(&mut sink).unwrap_or(0) > 0 {
                    sink.clear();
                }
            });
            return Ok((child, addr.to_string(), stderr_file));
        }
        let status = child.wait().expect("wait");
        Err(Ran {
            code: status.code().unwrap_or(-1),
            stdout: line,
            stderr: std::fs::read_to_string(&stderr_file).unwrap_or_default(),
        })
    }

    /// `base_url` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// What the server wrote on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_file).unwrap_or_default()
    }

    /// Runs `posbridge apikey <args> --state <this state>`.
    pub fn apikey(&self, args: &[&str]) -> Ran {
        run(posbridge()
            .arg("apikey")
            .args(args)
            .args(["--state", &self.state_spec]))
    }

    /// Creates a store with the admin key (asserting 201).
    pub fn create_store(&self, store_id: &str, name: &str) -> Value {
        let a = self.post(
            "/api/v1/stores",
            Some(&self.admin_key),
            &serde_json::json!({"storeId": store_id, "name": name}),
        );
        assert_eq!(a.status, 201, "create store {store_id}: {a:?}");
        a.body
    }

    /// A new key for `store_id` (which must exist).
    pub fn store_key(&self, store_id: &str) -> String {
        let r = self.apikey(&["create", "--store", store_id]);
        assert_eq!(r.code, 0, "apikey create --store {store_id}: {r:?}");
        r.stdout.trim().to_string()
    }

    /// Sends a request; `key` goes in `Authorization: Bearer`.
    pub fn send(&self, req: reqwest::blocking::RequestBuilder, key: Option<&str>) -> Answer {
        let req = match key {
            Some(k) => req.bearer_auth(k),
            None => req,
        };
        let resp = req.send().expect("request to posbridge serve");
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (retry_after, content_type) = (header("retry-after"), header("content-type"));
        let status = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        Answer {
            status,
            retry_after,
            content_type,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    /// `GET path`.
    pub fn get(&self, path: &str, key: Option<&str>) -> Answer {
        self.send(self.client.get(self.url(path)), key)
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, key: Option<&str>, body: &Value) -> Answer {
        let req = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string());
        self.send(req, key)
    }

    /// `PUT path` with a JSON body.
    pub fn put(&self, path: &str, key: Option<&str>, body: &Value) -> Answer {
        let req = self
            .client
            .put(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string());
        self.send(req, key)
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str, key: Option<&str>) -> Answer {
        self.send(self.client.delete(self.url(path)), key)
    }

    /// The blocking HTTP client, for other requests.
    pub fn client(&self) -> &reqwest::blocking::Client {
        &self.client
    }

    /// Sends SIGTERM (Unix) and waits for the exit; answers its exit code.
    pub fn terminate(mut self) -> i32 {
        let mut child = self.child.take().expect("running");
        #[cfg(unix)]
        {
            let ok = std::process::Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "kill -TERM failed");
        }
        #[cfg(not(unix))]
        let _ = child.kill();
        child.wait().expect("wait").code().unwrap_or(-1)
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
