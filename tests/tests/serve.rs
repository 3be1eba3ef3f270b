//! `posbridge serve` end to end: the real binary on 127.0.0.1, keys from `posbridge apikey`,
//! answers checked against the OpenAPI document it serves.

use posbridge_e2e::{posbridge, registry, run, OpenApiChecker, ServeProcess, TEST_MASTER_KEY};
use serde_json::{json, Value};

fn error_code(body: &Value) -> &str {
    assert_eq!(body["success"], false, "{body}");
    body["error"]["code"].as_str().unwrap_or_default()
}

#[test]
fn serve_refuses_to_start_without_a_usable_master_key_and_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("sqlite:{}", dir.path().join("p.db").display());
    let start = |key: Option<&str>, extra: &[&str]| {
        let mut cmd = posbridge();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--state", &spec])
            .args(extra)
            .env_remove("POSBRIDGE_MASTER_KEY");
        if let Some(k) = key {
            cmd.env("POSBRIDGE_MASTER_KEY", k);
        }
        run(&mut cmd)
    };
    let key_file = dir.path().join("master.key");
    std::fs::write(&key_file, "not a key\n").unwrap();
    let key_file = key_file.display().to_string();
    for (key, extra) in [
        (None, vec![]),
        (Some("abc123"), vec![]),
        (Some(&"zz".repeat(32)[..]), vec![]),
        (None, vec!["--master-key-file", key_file.as_str()]),
    ] {
        let ran = start(key, &extra);
        assert_ne!(ran.code, 0, "{ran:?}");
        assert!(
            ran.stderr.contains("openssl rand -hex 32"),
            "the refusal says how to make a key: {ran:?}"
        );
        assert!(!ran.stdout.contains("listening"), "{ran:?}");
    }

    // A state whose secrets were sealed under one key refuses another key.
    let first = ServeProcess::start(dir.path(), &[]);
    assert_eq!(first.terminate(), 0);
    let other_key = "ab".repeat(32);
    let spec = format!("sqlite:{}", dir.path().join("posbridge.db").display());
    let refused = ServeProcess::spawn(dir.path(), &spec, &other_key, &[]).err();
    let ran = refused.expect("a wrong master key must be refused");
    assert_ne!(ran.code, 0);
    assert!(ran.stderr.contains("another key"), "{ran:?}");
    // The right key still starts.
    let again = ServeProcess::start_with_key(dir.path(), TEST_MASTER_KEY, &[]);
    assert_eq!(again.get("/healthz", None).status, 200);
}

#[test]
fn api_keys_are_shown_once_listed_without_secrets_and_revocable() {
    let dir = tempfile::tempdir().unwrap();
    let serve = ServeProcess::start(dir.path(), &[]);

    let created = serve.apikey(&["create", "--admin", "--json"]);
    assert_eq!(created.code, 0, "{created:?}");
    let created: Value = serde_json::from_str(&created.stdout).unwrap();
    let key = created["key"].as_str().unwrap().to_string();
    assert_eq!(created["role"], "admin");
    assert!(key.starts_with(&format!("pbk_{}_", created["id"].as_str().unwrap())));

    let listed = serve.apikey(&["list", "--json"]);
    assert_eq!(listed.code, 0, "{listed:?}");
    let secret = key.rsplit('_').next().unwrap();
    assert!(!listed.stdout.contains(secret), "list never shows a secret");
    let keys: Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 2, "{keys}");
    let db = std::fs::read(dir.path().join("posbridge.db")).unwrap();
    assert!(
        !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the database holds no secret"
    );

    assert_eq!(serve.get("/api/v1/stores", Some(&key)).status, 200);
    let no_key = serve.get("/api/v1/stores", None);
    assert_eq!(no_key.status, 401);
    assert_eq!(error_code(&no_key.body), "unauthorized");
    let forged = format!(
        "{}{}",
        &key[..key.len() - 1],
        if key.ends_with('0') { '1' } else { '0' }
    );
    assert_eq!(serve.get("/api/v1/stores", Some(&forged)).status, 401);
    assert_eq!(serve.get("/api/v1/stores", Some("nonsense")).status, 401);

    let revoked = serve.apikey(&["revoke", created["id"].as_str().unwrap()]);
    assert_eq!(revoked.code, 0, "{revoked:?}");
    let after = serve.get("/api/v1/stores", Some(&key));
    assert_eq!(after.status, 401, "{after:?}");
    assert_eq!(error_code(&after.body), "unauthorized");
    // The other admin key still works.
    assert_eq!(
        serve.get("/api/v1/stores", Some(&serve.admin_key)).status,
        200
    );

    let unknown = serve.apikey(&["create", "--store", "nowhere"]);
    assert_ne!(
        unknown.code, 0,
        "a store key needs an existing store: {unknown:?}"
    );
    assert!(unknown.stderr.contains("nowhere"), "{unknown:?}");
    assert!(unknown.stdout.trim().is_empty());
}

#[test]
fn stores_are_created_by_admins_and_a_store_key_sees_only_its_store() {
    let dir = tempfile::tempdir().unwrap();
    let serve = ServeProcess::start(dir.path(), &[]);
    let admin = Some(serve.admin_key.as_str());
    serve.create_store("berlin", "Berlin Mitte");
    serve.create_store("hamburg", "Hamburg");
    let key_a = serve.store_key("berlin");
    let a = Some(key_a.as_str());

    let dup = serve.post(
        "/api/v1/stores",
        admin,
        &json!({"storeId": "berlin", "name": "x"}),
    );
    assert_eq!((dup.status, error_code(&dup.body)), (409, "conflict"));
    let missing = serve.post("/api/v1/stores", admin, &json!({"name": "x"}));
    assert_eq!(missing.status, 400, "{missing:?}");
    assert!(
        missing.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("storeId"),
        "{missing:?}"
    );
    let bad_id = serve.post(
        "/api/v1/stores",
        admin,
        &json!({"storeId": "a b", "name": "x"}),
    );
    assert_eq!(bad_id.status, 400, "{bad_id:?}");
    assert!(bad_id.text.contains("$.storeId"), "{bad_id:?}");
    let not_json = serve.send(
        serve
            .client()
            .post(serve.url("/api/v1/stores"))
            .body("storeId=x"),
        admin,
    );
    assert_eq!(
        (not_json.status, error_code(&not_json.body)),
        (415, "unsupported_media_type")
    );

    let by_store = serve.post("/api/v1/stores", a, &json!({"storeId": "c", "name": "C"}));
    assert_eq!(
        (by_store.status, error_code(&by_store.body)),
        (403, "forbidden")
    );

    let all = serve.get("/api/v1/stores", admin);
    let ids = |b: &Value| -> Vec<String> {
        b["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["storeId"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&all.body), ["berlin", "hamburg"]);
    assert_eq!(ids(&serve.get("/api/v1/stores", a).body), ["berlin"]);

    let own = serve.get("/api/v1/stores/berlin", a);
    assert_eq!(
        (own.status, own.body["data"]["name"].clone()),
        (200, json!("Berlin Mitte"))
    );
    let other = serve.get("/api/v1/stores/hamburg", a);
    let unknown = serve.get("/api/v1/stores/atlantis", a);
    assert_eq!(other.status, 403);
    assert_eq!(
        other.text, unknown.text,
        "403 says the same for an existing and an unknown store"
    );
    assert_eq!(unknown.status, 403);
    assert!(!other.text.contains("hamburg") && !other.text.contains("Hamburg"));
    let admin_unknown = serve.get("/api/v1/stores/atlantis", admin);
    assert_eq!(
        (admin_unknown.status, error_code(&admin_unknown.body)),
        (404, "not_found")
    );
}

#[test]
fn limits_and_framework_errors_answer_in_the_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let serve = ServeProcess::start(
        dir.path(),
        &["--max-body-bytes", "1024", "--rate-limit", "2"],
    );
    let admin = Some(serve.admin_key.as_str());

    let big = json!({"storeId": "s", "name": "x".repeat(2000)});
    let too_big = serve.post("/api/v1/stores", admin, &big);
    assert_eq!(
        (too_big.status, error_code(&too_big.body)),
        (413, "payload_too_large")
    );
    // A chunked body (no Content-Length: the reader's size is unknown) is cut at the limit
    // while it is read.
    let chunked = serve.send(
        serve
            .client()
            .post(serve.url("/api/v1/stores"))
            .header("content-type", "application/json")
            .body(reqwest::blocking::Body::new(std::io::Cursor::new(
                big.to_string().into_bytes(),
            ))),
        admin,
    );
    assert_eq!(chunked.status, 413, "{chunked:?}");

    let nowhere = serve.get("/api/v1/nowhere", None);
    assert_eq!(
        (nowhere.status, error_code(&nowhere.body)),
        (404, "not_found")
    );
    let wrong_method = serve.send(serve.client().delete(serve.url("/api/v1/stores")), None);
    assert_eq!(
        (wrong_method.status, error_code(&wrong_method.body)),
        (405, "method_not_allowed")
    );

    // Burst 2, then 2 a second: a quick series of requests meets 429 with Retry-After.
    let answers: Vec<_> = (0..20)
        .map(|_| serve.get("/api/v1/stores", admin))
        .collect();
    let limited = answers
        .iter()
        .find(|a| a.status == 429)
        .expect("some request gets 429");
    assert_eq!(error_code(&limited.body), "rate_limited");
    let retry: u64 = limited
        .retry_after
        .as_deref()
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(retry >= 1, "{limited:?}");
    assert_eq!(answers[0].status, 200);
    // Limits are per key: another key gets answers while the first one is limited.
    let other = serve.apikey(&["create", "--admin"]);
    assert_eq!(
        serve
            .get("/api/v1/stores", Some(other.stdout.trim()))
            .status,
        200
    );
}

#[test]
fn health_metrics_connectors_and_answers_match_the_openapi_document() {
    let dir = tempfile::tempdir().unwrap();
    let serve = ServeProcess::start(dir.path(), &[]);
    let admin = Some(serve.admin_key.as_str());

    let doc = serve.get("/api/v1/openapi.json", None);
    assert_eq!(doc.status, 200);
    let api = OpenApiChecker::new(doc.body.clone());
    assert_eq!(
        api.doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    let health = serve.get("/healthz", None);
    assert_eq!(health.body["data"]["status"], "ok");
    api.assert_valid("get", "/healthz", health.status, &health.body);
    let ready = serve.get("/readyz", None);
    assert_eq!(ready.status, 200);
    api.assert_valid("get", "/readyz", ready.status, &ready.body);

    let created = serve.post(
        "/api/v1/stores",
        admin,
        &json!({"storeId": "s1", "name": "One"}),
    );
    api.assert_valid("post", "/api/v1/stores", created.status, &created.body);
    let key = serve.store_key("s1");
    // Refusals: 409, 400, 403, 401.
    for (k, body) in [
        (admin, json!({"storeId": "s1", "name": "x"})),
        (admin, json!({"storeId": 5})),
        (Some(key.as_str()), json!({"storeId": "s2", "name": "x"})),
        (None, json!({})),
    ] {
        let a = serve.post("/api/v1/stores", k, &body);
        assert!(a.status >= 400, "{a:?}");
        api.assert_valid("post", "/api/v1/stores", a.status, &a.body);
    }
    for (path, template, k) in [
        ("/api/v1/stores", "/api/v1/stores", admin),
        ("/api/v1/stores", "/api/v1/stores", None),
        (
            "/api/v1/stores/s1",
            "/api/v1/stores/{storeId}",
            Some(key.as_str()),
        ),
        (
            "/api/v1/stores/s2",
            "/api/v1/stores/{storeId}",
            Some(key.as_str()),
        ),
        ("/api/v1/stores/s2", "/api/v1/stores/{storeId}", admin),
        (
            "/api/v1/connectors",
            "/api/v1/connectors",
            Some(key.as_str()),
        ),
    ] {
        let a = serve.get(path, k);
        api.assert_valid("get", template, a.status, &a.body);
    }

    let connectors = serve.get("/api/v1/connectors", admin).body;
    let mut names: Vec<&str> = connectors["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    names.sort();
    let expected = registry().names();
    assert_eq!(names, expected);
    let reg = registry();
    for c in connectors["data"].as_array().unwrap() {
        let entry = reg.get(c["name"].as_str().unwrap()).unwrap();
        assert_eq!(c["configSchema"], entry.manifest.config_schema);
        assert_eq!(c["version"], entry.manifest.version);
    }

    let metrics = serve.get("/metrics", None);
    assert_eq!(metrics.status, 200);
    assert!(metrics
        .content_type
        .as_deref()
        .unwrap_or("")
        .starts_with("text/plain"));
    let line = metrics
        .text
        .lines()
        .find(|l| {
            l.starts_with("posbridge_http_requests_total{")
                && l.contains("route=\"/api/v1/stores/{storeId}\"")
                && l.contains("status=\"403\"")
        })
        .unwrap_or_else(|| panic!("no counter of the 403 answers:\n{}", metrics.text));
    assert!(line.ends_with(" 1"), "{line}");
    assert!(metrics
        .text
        .contains("# TYPE posbridge_http_request_duration_seconds histogram"));

    // SIGTERM: the server stops accepting and exits cleanly.
    assert_eq!(serve.terminate(), 0);
}

/// A real slow path: `syncPOS` first has the vendor check the credentials, and the simulator
/// answers every request after 3 s. With `--request-timeout-secs 1` the call is answered 503
/// `timeout` in the envelope after 1 s (not when the vendor answers), and the server goes on.
#[test]
fn a_request_that_outlasts_the_request_timeout_answers_503_in_the_envelope() {
    use posbridge_sandbox::{build_simulator, start, Faults, SandboxOptions};
    let latency = std::time::Duration::from_secs(3);
    let opts = SandboxOptions {
        vendor: "kassandro".into(),
        stores: 1,
        registers_per_store: 1,
        days: 1,
        sales_per_day: 2,
        ..SandboxOptions::default()
    };
    let faults = Faults {
        latency_ms: latency.as_millis() as u64,
        ..Faults::default()
    };
    let sb = start(build_simulator(&opts).expect("simulator"), 0, faults).expect("starts");
    let api_key = sb
        .credentials
        .iter()
        .find(|(k, _)| k == "api_key")
        .expect("simulator api_key")
        .1
        .clone();
    let dir = tempfile::tempdir().unwrap();
    let serve = ServeProcess::start(
        dir.path(),
        &["--request-timeout-secs", "1", "--job-wait-secs", "20"],
    );
    let api = OpenApiChecker::new(serve.get("/api/v1/openapi.json", None).body);
    serve.create_store("slow-1", "Slow 1");
    let key = serve.store_key("slow-1");
    let call = json!({"system": "kassandro", "storeId": "slow-1", "credentials": {
        "base_url": sb.base_url, "api_key": api_key, "cash_register_id": 1,
        "start_date": "2026-01-05"}});

    let asked = std::time::Instant::now();
    let slow = serve.post("/api/v1/syncPOS", Some(&key), &call);
    let took = asked.elapsed();
    assert_eq!(slow.status, 503, "{slow:?}");
    assert_eq!(error_code(&slow.body), "timeout");
    assert_eq!(
        slow.body["error"]["message"],
        "the request took longer than 1 s"
    );
    api.assert_valid("post", "/api/v1/syncPOS", 503, &slow.body);
    assert!(
        took < latency,
        "answered by the timeout, not by the vendor's answer: {took:?}"
    );
    // The server goes on answering, and counts the 503.
    assert_eq!(serve.get("/healthz", None).status, 200);
    let metrics = serve.get("/metrics", None).text;
    assert!(
        metrics.contains(
            r#"posbridge_http_requests_total{method="POST",route="/api/v1/syncPOS",status="503"} 1"#
        ),
        "{metrics}"
    );
}
