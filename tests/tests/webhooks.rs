//! End-to-end test of `posbridge webhooks serve` with the stripe connector: the real binary
//! listens on 127.0.0.1, and deliveries signed by the Stripe simulator are POSTed to it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};

use posbridge_e2e::{posbridge, read_ndjson};
use posbridge_sandbox::stripe::{signature_header, StripeSimulator};
use posbridge_sandbox::SandboxOptions;
use reqwest::blocking::Client;
use serde_json::{json, Value};

/// The receiver process; killed when dropped, so a failed assertion does not leave it running.
struct Receiver {
    child: Child,
    url: String,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the receiver on a free port and waits for its `listening on …` line.
fn start_receiver(config: &Path, out: &Path) -> Receiver {
    start_receiver_with(config, out, &[])
}

/// [`start_receiver`] with more command-line arguments.
fn start_receiver_with(config: &Path, out: &Path, extra: &[&str]) -> Receiver {
    let mut child = posbridge()
        .args(["webhooks", "serve", "--connector", "stripe", "--config"])
        .arg(config)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--path",
            "/webhooks/stripe",
            "--out",
        ])
        .arg(out)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("posbridge starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("read the first stdout line");
    let mut receiver = Receiver {
        child,
        url: String::new(),
    };
    receiver.url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string();
    assert!(receiver.url.starts_with("http://127.0.0.1:"), "{line}");
    assert!(receiver.url.ends_with("/webhooks/stripe"), "{line}");
    receiver
}

/// POSTs `payload` with an optional `Stripe-Signature`; returns the status and the JSON answer.
fn deliver(client: &Client, url: &str, payload: &str, signature: Option<&str>) -> (u16, Value) {
    let mut req = client.post(url).body(payload.to_string());
    if let Some(s) = signature {
        req = req.header("Stripe-Signature", s);
    }
    let resp = req.send().expect("the receiver answers");
    let status = resp.status().as_u16();
    let text = resp.text().expect("a body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn stored_ids(out: &Path) -> Vec<String> {
    if !out.exists() {
        return Vec::new();
    }
    read_ndjson(out)
        .iter()
        .map(|e| e["id"].as_str().expect("an event id").to_string())
        .collect()
}

#[test]
fn the_receiver_stores_verified_events_once_and_refuses_the_rest() {
    let sim = StripeSimulator::from_options(&SandboxOptions {
        vendor: "stripe".into(),
        stores: 1,
        registers_per_store: 1,
        days: 1,
        sales_per_day: 8,
        ..SandboxOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("stripe.json");
    std::fs::write(
        &config,
        json!({
            // Never called: verifying a webhook needs no request to Stripe.
            "base_url": "http://127.0.0.1:9",
            "secret_key": sim.secret_key(),
            "webhook_secret": sim.webhook_secret(),
        })
        .to_string(),
    )
    .unwrap();
    let out = dir.path().join("events.ndjson");
    let client = Client::new();

    // Started before anything is signed: the first start builds the binaries, which may take
    // longer than Stripe's 300 s tolerance.
    let rx = start_receiver(&config, &out);
    let now = chrono::Utc::now().timestamp();
    let events = sim.signed_events(now);
    assert!(events.len() >= 2, "the simulator has events to deliver");
    let (first, second) = (&events[0], &events[1]);
    let first_id = serde_json::from_str::<Value>(&first.payload).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let second_id = serde_json::from_str::<Value>(&second.payload).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    {
        let url = rx.url.as_str();

        // A genuine delivery is stored.
        let (status, body) = deliver(&client, url, &first.payload, Some(&first.signature_header));
        assert_eq!((status, &body), (200, &json!({"received": true})));
        assert_eq!(stored_ids(&out), vec![first_id.clone()]);
        let stored = read_ndjson(&out);
        assert_eq!(
            stored[0],
            serde_json::from_str::<Value>(&first.payload).unwrap()
        );

        // Stripe's retry of the same event: acknowledged, not stored twice.
        let (status, _) = deliver(&client, url, &first.payload, Some(&first.signature_header));
        assert_eq!(status, 200);
        assert_eq!(stored_ids(&out), vec![first_id.clone()]);

        // Signed with another secret.
        let forged = signature_header("whsec_not_the_secret", now, &second.payload);
        let (status, body) = deliver(&client, url, &second.payload, Some(&forged));
        assert_eq!(status, 400, "{body}");
        let reason = body["error"].as_str().expect("an error text");
        assert!(reason.contains("no v1 signature matches"), "{reason}");
        assert!(!reason.contains(sim.webhook_secret()), "{reason}");

        // Signed correctly, but ten minutes ago.
        let stale = sim.sign_webhook(&second.payload, now - 600);
        let (status, body) = deliver(&client, url, &stale.payload, Some(&stale.signature_header));
        assert_eq!(status, 400, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("outside the 300 s tolerance"),
            "{body}"
        );

        // No signature header at all.
        let (status, body) = deliver(&client, url, &second.payload, None);
        assert_eq!(status, 400, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("missing Stripe-Signature header"),
            "{body}"
        );
        assert_eq!(
            stored_ids(&out),
            vec![first_id.clone()],
            "nothing refused is stored"
        );

        // Other paths, other methods and oversized bodies.
        let base = url.trim_end_matches("/webhooks/stripe");
        let other = client.post(format!("{base}/elsewhere")).send().unwrap();
        assert_eq!(other.status().as_u16(), 404);
        let get = client.get(url).send().unwrap();
        assert_eq!(get.status().as_u16(), 405);
        let big = "x".repeat((1 << 20) + 1);
        let (status, _) = deliver(&client, url, &big, Some(&first.signature_header));
        assert_eq!(status, 413);
    }
    drop(rx);

    // A restarted receiver reads the ids already stored and still stores new events.
    let rx = start_receiver(&config, &out);
    let (status, _) = deliver(
        &client,
        &rx.url,
        &first.payload,
        Some(&first.signature_header),
    );
    assert_eq!(status, 200);
    let (status, _) = deliver(
        &client,
        &rx.url,
        &second.payload,
        Some(&second.signature_header),
    );
    assert_eq!(status, 200);
    assert_eq!(stored_ids(&out), vec![first_id, second_id]);
}

/// Slow-header clients ("slowloris") held every connection open forever: now each must send
/// its request head within `--header-timeout-secs`, and at most `--max-connections` are
/// served at once while the rest wait in the backlog.
#[test]
fn slow_clients_are_closed_after_the_header_timeout_and_connections_are_bounded() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    let sim = StripeSimulator::from_options(&SandboxOptions {
        vendor: "stripe".into(),
        stores: 1,
        registers_per_store: 1,
        days: 1,
        sales_per_day: 2,
        ..SandboxOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("stripe.json");
    std::fs::write(
        &config,
        json!({
            "base_url": "http://127.0.0.1:9",
            "secret_key": sim.secret_key(),
            "webhook_secret": sim.webhook_secret(),
        })
        .to_string(),
    )
    .unwrap();
    let out = dir.path().join("events.ndjson");
    let rx = start_receiver_with(
        &config,
        &out,
        &["--header-timeout-secs", "2", "--max-connections", "8"],
    );
    let addr = rx
        .url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();

    // 10 clients send half a request line and stall; 2 more connect and send nothing.
    let started = Instant::now();
    let mut stalled: Vec<TcpStream> = (0..12)
        .map(|i| {
            let mut s = TcpStream::connect(&addr).unwrap();
            if i < 10 {
                s.write_all(b"POST /webhooks/str").unwrap();
            }
            s
        })
        .collect();

    // A real delivery behind them: it waits for a free slot (8 are taken until the stalled
    // clients time out), and is then answered.
    let event = &sim.signed_events(chrono::Utc::now().timestamp())[0];
    // A new connection per delivery: a kept-alive one is itself closed by the header timeout
    // about when the last delivery below is sent, and reusing it raced that close.
    let client = Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let (status, body) = deliver(
        &client,
        &rx.url,
        &event.payload,
        Some(&event.signature_header),
    );
    let answered = started.elapsed();
    assert_eq!((status, &body), (200, &json!({"received": true})));
    assert_eq!(stored_ids(&out).len(), 1);
    assert!(
        answered >= Duration::from_millis(1500),
        "answered after {answered:?}: the 8 connection slots were not a limit"
    );
    assert!(
        answered < Duration::from_secs(15),
        "answered after {answered:?}"
    );

    // Every stalled connection has been closed by the server (end of stream or a reset; a
    // read that times out means the connection is still held open).
    for (i, s) in stalled.iter_mut().enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut rest = Vec::new();
        match s.read_to_end(&mut rest) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!(
                "stalled connection {i} still open after {:?}: {e}",
                started.elapsed()
            ),
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );

    // And the receiver still answers.
    let (status, _) = deliver(
        &client,
        &rx.url,
        &event.payload,
        Some(&event.signature_header),
    );
    assert_eq!(status, 200);
}
