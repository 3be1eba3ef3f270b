//! The harness over real HTTP on 127.0.0.1: the demo vendor, every fault knob, the control
//! endpoints, token expiry through `RequestContext`, and shutdown.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use posbridge_plugin_api::model::Sale;
use posbridge_sandbox::registry::demo::DEFAULT_API_KEY;
use posbridge_sandbox::{
    build_simulator, start, FaultKind, Faults, RequestContext, RequestLogEntry, RunningSandbox,
    SandboxOptions, Simulator,
};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn demo(faults: Faults) -> RunningSandbox {
    let opts = SandboxOptions {
        days: 1,
        sales_per_day: 10,
        ..SandboxOptions::default()
    };
    start(build_simulator(&opts).unwrap(), 0, faults).unwrap()
}

async fn get_sales(
    c: &reqwest::Client,
    sb: &RunningSandbox,
    query: &str,
) -> reqwest::Result<reqwest::Response> {
    c.get(format!("{}/sales{query}", sb.base_url))
        .header("X-Api-Key", DEFAULT_API_KEY)
        .send()
        .await
}

#[tokio::test]
async fn demo_vendor_serves_pages_and_checks_the_key() {
    let sb = demo(Faults::default());
    assert!(sb.port() > 0);
    assert_eq!(sb.base_url, format!("http://127.0.0.1:{}", sb.port()));
    let c = client();
    let expected = sb.sim.canonical_sales();
    let mut got: Vec<Sale> = Vec::new();
    for page in 1.. {
        let body: serde_json::Value = get_sales(&c, &sb, &format!("?page={page}&size=7"))
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["total"], expected.len());
        let sales: Vec<Sale> = serde_json::from_value(body["sales"].clone()).unwrap();
        if sales.is_empty() {
            break;
        }
        got.extend(sales);
    }
    assert_eq!(got, expected);

    let unauthorized = c
        .get(format!("{}/sales", sb.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    let wrong = c
        .get(format!("{}/sales", sb.base_url))
        .header("X-Api-Key", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    // Incremental: new receipts appear.
    let more = posbridge_sandbox::generate_sales(3, 99);
    sb.sim.add_sales(more);
    let body: serde_json::Value = get_sales(&c, &sb, "?size=1000")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["total"], expected.len() + 3);

    let log = sb.requests();
    assert_eq!(log.len() as u64, log.last().unwrap().request_no);
    let first = &log[0];
    assert_eq!(
        (first.method.as_str(), first.path.as_str()),
        ("GET", "/sales")
    );
    assert_eq!(first.query.as_deref(), Some("page=1&size=7"));
    assert_eq!(first.status, 200);
    let key = first
        .headers
        .iter()
        .find(|(k, _)| k == "x-api-key")
        .unwrap();
    assert_eq!(key.1, "***");
    assert!(log.iter().any(|e| e.status == 401));
    sb.shutdown();
}

#[tokio::test]
async fn server_errors_come_in_the_configured_share() {
    let sb = demo(Faults {
        error_rate: 0.3,
        seed: 1,
        ..Faults::default()
    });
    let c = client();
    let mut errors = 0;
    let n = 300;
    for _ in 0..n {
        let r = get_sales(&c, &sb, "?size=1").await.unwrap();
        if r.status().is_server_error() {
            errors += 1;
            let body: serde_json::Value = r.json().await.unwrap();
            assert!(body["error"].is_string());
        } else {
            assert_eq!(r.status(), 200);
        }
    }
    let share = f64::from(errors) / f64::from(n);
    assert!((0.2..0.4).contains(&share), "5xx share {share}");
    let log = sb.requests();
    assert_eq!(
        log.iter()
            .filter(|e| e.fault == Some(FaultKind::ServerError))
            .count(),
        errors as usize
    );
}

#[tokio::test]
async fn rate_limits_carry_retry_after() {
    let sb = demo(Faults {
        rate_limit_rate: 1.0,
        retry_after_secs: 7,
        ..Faults::default()
    });
    let r = get_sales(&client(), &sb, "").await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
}

#[tokio::test]
async fn a_dropped_connection_is_a_client_error_not_a_response() {
    let sb = demo(Faults {
        drop_rate: 1.0,
        ..Faults::default()
    });
    let c = client();
    let err = get_sales(&c, &sb, "")
        .await
        .expect_err("the connection must drop");
    assert!(err.status().is_none(), "{err:?}");
    assert!(err.is_request(), "{err:?}");
    assert!(!err.is_timeout(), "{err:?}");
    let log = sb.requests();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!((log[0].status, log[0].fault), (0, Some(FaultKind::Drop)));

    // The server stays up: with the knob off again the next request is answered.
    sb.set_faults(Faults::default());
    assert_eq!(get_sales(&c, &sb, "").await.unwrap().status(), 200);
}

#[tokio::test]
async fn malformed_bodies_are_truncated_json() {
    let sb = demo(Faults {
        malformed_rate: 1.0,
        ..Faults::default()
    });
    // Even a 401 becomes a 200 with a broken body.
    let r = client()
        .get(format!("{}/sales", sb.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(!text.is_empty());
    assert!(
        serde_json::from_str::<serde_json::Value>(&text).is_err(),
        "{text}"
    );
    let r = get_sales(&client(), &sb, "?size=5").await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.starts_with("{\""));
    assert!(serde_json::from_str::<serde_json::Value>(&text).is_err());
}

#[tokio::test]
async fn latency_delays_answers() {
    let sb = demo(Faults {
        latency_ms: 150,
        ..Faults::default()
    });
    let t = Instant::now();
    assert_eq!(get_sales(&client(), &sb, "").await.unwrap().status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn same_seed_same_faults() {
    let faults = Faults {
        error_rate: 0.2,
        rate_limit_rate: 0.2,
        malformed_rate: 0.1,
        seed: 5,
        ..Faults::default()
    };
    let mut runs = Vec::new();
    for _ in 0..2 {
        let sb = demo(faults.clone());
        let c = client();
        let mut statuses = Vec::new();
        for _ in 0..40 {
            statuses.push(
                get_sales(&c, &sb, "?size=1")
                    .await
                    .unwrap()
                    .status()
                    .as_u16(),
            );
        }
        let kinds: Vec<Option<FaultKind>> = sb.requests().iter().map(|e| e.fault).collect();
        runs.push((statuses, kinds));
        sb.shutdown();
    }
    assert_eq!(runs[0], runs[1]);
    assert!(runs[0].0.contains(&429) && runs[0].0.contains(&200));
}

#[tokio::test]
async fn control_endpoints_change_knobs_and_show_the_log() {
    // Control endpoints are never faulted, even when every vendor request fails.
    let sb = demo(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    let c = client();
    let url = format!("{}/__sandbox/faults", sb.base_url);
    let f: Faults = c.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(f.error_rate, 1.0);
    assert_eq!(
        get_sales(&c, &sb, "").await.unwrap().status().as_u16() / 100,
        5
    );

    let put: Faults = c
        .put(&url)
        .json(&serde_json::json!({ "rate_limit_rate": 0.5, "retry_after_secs": 2 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (put.error_rate, put.rate_limit_rate, put.retry_after_secs),
        (0.0, 0.5, 2)
    );
    assert_eq!(sb.faults(), put);

    let patched: Faults = c
        .patch(&url)
        .json(&serde_json::json!({ "latency_ms": 5 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((patched.rate_limit_rate, patched.latency_ms), (0.5, 5));

    let bad = c
        .put(&url)
        .json(&serde_json::json!({ "drop_rate": 2.0 }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(sb.faults(), patched);

    let log: Vec<RequestLogEntry> = c
        .get(format!("{}/__sandbox/requests", sb.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log.len(), 1, "only vendor requests are logged: {log:?}");
    assert!(log[0].timestamp_ms > 1_600_000_000_000);
    assert_eq!(sb.request_count(), 1);
    assert_eq!(get_sales(&c, &sb, "").await.unwrap().status(), 429);
    let since: Vec<RequestLogEntry> = c
        .get(format!("{}/__sandbox/requests?since=1", sb.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(since.iter().map(|e| e.request_no).collect::<Vec<_>>(), [2]);
    let cleared = c
        .delete(format!("{}/__sandbox/requests", sb.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), 204);
    assert!(sb.requests().is_empty());
}

/// A vendor that issues tokens and answers expired ones with its own error.
struct TokenVendor {
    issued: Mutex<Vec<u64>>,
}

impl Simulator for TokenVendor {
    fn vendor(&self) -> &'static str {
        "token-test"
    }

    fn router(self: Arc<Self>) -> Router {
        let me = self.clone();
        Router::new()
            .route(
                "/token",
                post(move |ctx: RequestContext| async move {
                    let mut issued = me.issued.lock().unwrap();
                    issued.push(ctx.request_no);
                    Json(serde_json::json!({ "token": issued.len() - 1 }))
                }),
            )
            .route(
                "/data/{token}",
                get(move |ctx: RequestContext, axum::extract::Path(token): axum::extract::Path<usize>| async move {
                    let issued_at = self.issued.lock().unwrap()[token];
                    let r: Response = if ctx.token_expired(issued_at) {
                        (StatusCode::UNAUTHORIZED, "token expired").into_response()
                    } else {
                        "ok".into_response()
                    };
                    r
                }),
            )
    }

    fn credentials(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    fn canonical_sales(&self) -> Vec<Sale> {
        Vec::new()
    }

    fn add_sales(&self, _sales: Vec<Sale>) {}
}

#[tokio::test]
async fn vendors_see_expired_tokens_through_the_request_context() {
    let sim = Arc::new(TokenVendor {
        issued: Mutex::new(Vec::new()),
    });
    let sb = start(
        sim,
        0,
        Faults {
            expire_token_after: Some(2),
            ..Faults::default()
        },
    )
    .unwrap();
    let c = client();
    let token: serde_json::Value = c
        .post(format!("{}/token", sb.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let data = format!("{}/data/{}", sb.base_url, token["token"]);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(c.get(&data).send().await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 401]);
    // A new token works again.
    let token: serde_json::Value = c
        .post(format!("{}/token", sb.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let data = format!("{}/data/{}", sb.base_url, token["token"]);
    assert_eq!(c.get(&data).send().await.unwrap().status(), 200);
}

/// A raw HTTP/1.1 GET over std networking, for use without any runtime.
fn raw_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Api-Key: {DEFAULT_API_KEY}\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[test]
fn works_from_a_plain_thread_and_shutdown_frees_the_port() {
    let sb = demo(Faults::default());
    let port = sb.port();
    let answer = raw_get(port, "/sales?size=2").unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // A keep-alive connection left open must not keep the server alive.
    let idle = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    sb.shutdown();
    drop(idle);
    assert!(
        raw_get(port, "/sales").is_err(),
        "nothing listens after shutdown"
    );
    let again =
        std::net::TcpListener::bind(("127.0.0.1", port)).expect("port is free after shutdown");
    drop(again);

    // And a new sandbox can take that very port.
    let opts = SandboxOptions::default();
    let sb = start(build_simulator(&opts).unwrap(), port, Faults::default()).unwrap();
    assert_eq!(sb.port(), port);
    assert!(raw_get(port, "/sales?size=1")
        .unwrap()
        .starts_with("HTTP/1.1 200"));
}

#[test]
fn invalid_faults_and_busy_ports_are_errors() {
    let sim = build_simulator(&SandboxOptions::default()).unwrap();
    assert!(start(
        sim.clone(),
        0,
        Faults {
            error_rate: -0.1,
            ..Faults::default()
        }
    )
    .is_err());
    let sb = start(sim.clone(), 0, Faults::default()).unwrap();
    let err = start(sim, sb.port(), Faults::default()).unwrap_err();
    assert!(err.to_string().contains(&sb.port().to_string()), "{err}");
}

#[tokio::test]
async fn unknown_vendor_paths_are_logged_and_faulted_too() {
    let sb = demo(Faults::default());
    let c = client();
    assert_eq!(
        c.get(format!("{}/nope", sb.base_url))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    sb.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    let r = c.get(format!("{}/nope", sb.base_url)).send().await.unwrap();
    assert!(r.status().is_server_error());
    let statuses: Vec<u16> = sb.requests().iter().map(|e| e.status).collect();
    assert_eq!(statuses.len(), 2);
    assert_eq!(statuses[0], 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_get_distinct_numbers() {
    let sb = demo(Faults {
        latency_ms: 20,
        ..Faults::default()
    });
    let c = client();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let c = c.clone();
        let url = format!("{}/sales?size=1", sb.base_url);
        tasks.spawn(async move {
            c.get(url)
                .header("X-Api-Key", DEFAULT_API_KEY)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    // Served concurrently: far less than 40 × 20 ms.
    assert!(
        started.elapsed() < Duration::from_millis(40 * 20),
        "{:?}",
        started.elapsed()
    );
    let mut numbers: Vec<u64> = sb.requests().iter().map(|e| e.request_no).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=40).collect::<Vec<u64>>());
    let log = sb.requests();
    let span = log.iter().map(|e| e.timestamp_ms).max().unwrap()
        - log.iter().map(|e| e.timestamp_ms).min().unwrap();
    assert!(span < 5_000, "arrival timestamps span {span} ms");
}
