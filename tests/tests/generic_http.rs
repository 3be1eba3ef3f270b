//! The generic connector's HTTP transport end to end through `posbridge run`: a paginated REST
//! source (page, offset and cursor pagination, with a field map) into a file sink, and a file
//! source into the signed HTTP sink, whose receiver verifies every signature independently.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use posbridge_e2e::*;
use posbridge_plugin_api::model::Sale;
use serde_json::{json, Value};

/// SHA-256 (FIPS 180-4) and HMAC (RFC 2104), written here from the specifications so the
/// receiver checks the connector's signature with code that shares nothing with it.
mod independent_hmac {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];

    pub fn sha256(data: &[u8]) -> [u8; 32] {
        let mut h: [u32; 8] = [
            0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
            0x5be0cd19,
        ];
        let mut msg = data.to_vec();
        msg.push(0x80);
        while msg.len() % 64 != 56 {
            msg.push(0);
        }
        msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
        for block in msg.chunks(64) {
            let mut w = [0u32; 64];
            for i in 0..16 {
                w[i] = u32::from_be_bytes([
                    block[4 * i],
                    block[4 * i + 1],
                    block[4 * i + 2],
                    block[4 * i + 3],
                ]);
            }
            for i in 16..64 {
                let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
                let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
                w[i] = w[i - 16]
                    .wrapping_add(s0)
                    .wrapping_add(w[i - 7])
                    .wrapping_add(s1);
            }
            let mut v = h;
            for i in 0..64 {
                let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
                let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
                let t1 = v[7]
                    .wrapping_add(s1)
                    .wrapping_add(ch)
                    .wrapping_add(K[i])
                    .wrapping_add(w[i]);
                let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
                let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
                let t2 = s0.wrapping_add(maj);
                v = [
                    t1.wrapping_add(t2),
                    v[0],
                    v[1],
                    v[2],
                    v[3].wrapping_add(t1),
                    v[4],
                    v[5],
                    v[6],
                ];
            }
            for (a, b) in h.iter_mut().zip(v) {
                *a = a.wrapping_add(b);
            }
        }
        let mut out = [0u8; 32];
        for (i, word) in h.iter().enumerate() {
            out[4 * i..4 * i + 4].copy_from_slice(&word.to_be_bytes());
        }
        out
    }

    pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
        let mut block = [0u8; 64];
        if key.len() > 64 {
            block[..32].copy_from_slice(&sha256(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
        let mut inner = pad(0x36);
        inner.extend_from_slice(message);
        let mut outer = pad(0x5c);
        outer.extend_from_slice(&sha256(&inner));
        sha256(&outer).iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Verifies `t=<unix>,v1=<hex>` over `"<t>.<body>"` as the connector's documentation says.
fn signature_is_valid(secret: &str, header: &str, body: &[u8]) -> bool {
    let parts: HashMap<&str, &str> = header
        .split(',')
        .filter_map(|p| p.split_once('='))
        .collect();
    let (Some(t), Some(v1)) = (parts.get("t"), parts.get("v1")) else {
        return false;
    };
    let now = chrono::Utc::now().timestamp();
    let Ok(ts) = t.parse::<i64>() else {
        return false;
    };
    if (now - ts).abs() > 300 {
        return false;
    }
    let mut message = format!("{t}.").into_bytes();
    message.extend_from_slice(body);
    independent_hmac::hmac_sha256_hex(secret.as_bytes(), &message) == *v1
}

#[test]
fn the_independent_hmac_matches_rfc_4231() {
    // Test case 2 of RFC 4231.
    assert_eq!(
        independent_hmac::hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

fn ok(body: Value) -> CannedResponse {
    CannedResponse {
        status: 200,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.to_string(),
    }
}

fn status(code: u16, body: &str) -> CannedResponse {
    CannedResponse {
        status: code,
        headers: vec![],
        body: body.into(),
    }
}

fn query(path: &str) -> HashMap<String, String> {
    path.split_once('?')
        .map(|(_, q)| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.into(), v.into()))
                .collect()
        })
        .unwrap_or_default()
}

/// A decimal string as a vendor would send it: a JSON number.
fn number(v: &Value) -> Value {
    serde_json::from_str(v.as_str().expect("a decimal string")).unwrap()
}

/// A canonical sale in a made-up vendor shape: other names, nesting, amounts as numbers.
fn vendor_sale(s: &Value) -> Value {
    let receipt = s["receipt_number"].as_str().unwrap();
    json!({
        "uuid": s["id"], "shop": s["store_id"], "till": s["register_id"],
        "bon": receipt.parse::<u64>().map(Value::from).unwrap_or_else(|_| Value::from(receipt)),
        "type": s["kind"], "orig": s["cancels"], "day": s["business_day"], "ts": s["timestamp"], "cur": s["currency"],
        "sum": { "net": number(&s["totals"]["net"]), "tax": number(&s["totals"]["tax"]),
                 "gross": number(&s["totals"]["gross"]), "discount": number(&s["totals"]["discount"]) },
        "positions": s["lines"].as_array().unwrap().iter().map(|l| json!({
            "sku": l["product_id"], "text": l["name"], "group": l["category"], "ean": l["barcode"],
            "qty": number(&l["quantity"]), "price": number(&l["unit_price"]), "rebate": number(&l["discount"]),
            "vat": number(&l["tax_rate"]), "net": number(&l["net"]), "tax": number(&l["tax"]), "gross": number(&l["gross"]),
        })).collect::<Vec<_>>(),
        "vat": s["taxes"].as_array().unwrap().iter().map(|t| json!({
            "rate": number(&t["rate"]), "net": number(&t["net"]), "tax": number(&t["tax"]), "gross": number(&t["gross"]),
        })).collect::<Vec<_>>(),
        "tenders": s["payments"].as_array().unwrap().iter().map(|p| json!({
            "type": p["method"], "value": number(&p["amount"]), "cur": p["currency"], "ref": p["psp_reference"],
        })).collect::<Vec<_>>(),
        "source": s["source_system"],
    })
}

fn field_map() -> Value {
    json!({
        "id": "/uuid", "source_system": "/source", "store_id": "/shop", "register_id": "/till",
        "receipt_number": "/bon", "kind": "/type", "cancels": "/orig", "business_day": "/day",
        "timestamp": "/ts", "currency": "/cur",
        "totals.net": "/sum/net", "totals.tax": "/sum/tax", "totals.gross": "/sum/gross", "totals.discount": "/sum/discount",
        "lines": { "each": "/positions", "map": {
            "product_id": "/sku", "name": "/text", "category": "/group", "barcode": "/ean", "quantity": "/qty",
            "unit_price": "/price", "discount": "/rebate", "tax_rate": "/vat", "net": "/net", "tax": "/tax", "gross": "/gross" } },
        "taxes": "/vat",
        "payments": { "each": "/tenders", "map": { "method": "/type", "amount": "/value", "currency": "/cur", "psp_reference": "/ref" } }
    })
}

/// Generated canonical sales, and the same sales in the vendor shape.
fn sales(dir: &Path, n: usize, seed: u64) -> (PathBuf, Vec<Value>, Vec<Value>) {
    let file = dir.join("sales.ndjson");
    generate_sales_file(&file, n, seed);
    let canonical = read_ndjson(&file);
    let vendor = canonical.iter().map(vendor_sale).collect();
    (file, canonical, vendor)
}

fn write_pipeline(dir: &Path, name: &str, source: Value, sink: Value, delivery: Value) -> PathBuf {
    let p = dir.join(format!("{name}.yaml"));
    let def = json!({
        "name": name,
        "source": { "connector": "generic", "config": source, "streams": ["sales"] },
        "sink": { "connector": "generic", "config": sink },
        "delivery": delivery,
    });
    // YAML is a superset of JSON.
    std::fs::write(&p, serde_json::to_string_pretty(&def).unwrap()).unwrap();
    p
}

fn run_pipeline(p: &Path, state: &Path) -> (Ran, Value) {
    let r = run(posbridge()
        .arg("run")
        .arg(p)
        .arg("--state")
        .arg(format!("sqlite:{}", state.display()))
        .arg("--json"));
    let summary = serde_json::from_str(&r.stdout).unwrap_or(Value::Null);
    (r, summary)
}

/// Runs an HTTP source with `pagination` against `server` into an NDJSON file, twice, and checks
/// that the output is the canonical sales, valid and exactly once.
fn http_source_into_a_file(
    server: &TestHttpServer,
    pagination: Value,
    canonical: &[Value],
    dir: &Path,
) {
    let out = dir.join("out.ndjson");
    let p = write_pipeline(
        dir,
        "http-in",
        json!({ "http": { "url": format!("{}/api/v2/sales?store=all", server.base_url),
            "auth": { "bearer": "t0ken" }, "pagination": pagination, "field_map": field_map() } }),
        json!({ "path": out }),
        json!({ "batch_size": 30 }),
    );
    let state = dir.join("s.db");
    let (r, summary) = run_pipeline(&p, &state);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(summary["read"], canonical.len(), "{r:?}");
    assert_eq!(summary["written"], canonical.len(), "{r:?}");
    assert_eq!(
        summary["dead_lettered"], 0,
        "every mapped sale validates: {r:?}"
    );
    let written = read_ndjson(&out);
    let by_id: BTreeMap<String, Sale> = written
        .iter()
        .map(|v| {
            let s: Sale = serde_json::from_value(v.clone()).expect("a canonical sale");
            assert!(s.validate().is_empty(), "{}: {:?}", s.id, s.validate());
            assert!(
                v["totals"]["gross"].is_string(),
                "money is a decimal string: {v}"
            );
            (s.id.clone(), s)
        })
        .collect();
    assert_eq!(by_id.len(), canonical.len(), "each sale once");
    for c in canonical {
        let want: Sale = serde_json::from_value(c.clone()).unwrap();
        let got = &by_id[&want.id];
        assert_eq!(
            (
                &got.receipt_number,
                got.kind,
                got.business_day,
                got.timestamp,
                &got.totals,
                &got.lines,
                &got.taxes,
                &got.payments
            ),
            (
                &want.receipt_number,
                want.kind,
                want.business_day,
                want.timestamp,
                &want.totals,
                &want.lines,
                &want.taxes,
                &want.payments
            ),
        );
    }
    assert!(server
        .received()
        .iter()
        .all(|r| r.header("authorization") == Some("Bearer t0ken")));
    // A second run resumes from the checkpoint: nothing new, nothing written twice.
    let (r, summary) = run_pipeline(&p, &state);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(summary["written"], 0, "{r:?}");
    assert_eq!(read_ndjson(&out).len(), canonical.len());
}

#[test]
fn http_source_with_page_pagination() {
    let d = tempfile::tempdir().unwrap();
    let (_, canonical, vendor) = sales(d.path(), 95, 31);
    let server = TestHttpServer::start(move |_, req| {
        let q = query(&req.path);
        let (page, size): (usize, usize) = (q["page"].parse().unwrap(), q["size"].parse().unwrap());
        assert!(page >= 1, "pages count from 1 here");
        let items: Vec<Value> = vendor
            .iter()
            .skip((page - 1) * size)
            .take(size)
            .cloned()
            .collect();
        ok(json!({ "data": { "sales": items }, "page": page }))
    });
    let pagination = json!({ "kind": "page", "size_param": "size", "page_size": 20, "records_path": "/data/sales" });
    http_source_into_a_file(&server, pagination, &canonical, d.path());
    let first = &server.received()[0];
    assert_eq!(first.path, "/api/v2/sales?store=all&page=1&size=20");
}

#[test]
fn http_source_with_offset_pagination() {
    let d = tempfile::tempdir().unwrap();
    let (_, canonical, vendor) = sales(d.path(), 77, 32);
    let server = TestHttpServer::start(move |_, req| {
        let q = query(&req.path);
        let (offset, limit): (usize, usize) =
            (q["offset"].parse().unwrap(), q["limit"].parse().unwrap());
        ok(Value::Array(
            vendor.iter().skip(offset).take(limit).cloned().collect(),
        ))
    });
    let pagination = json!({ "kind": "offset", "page_size": 25 });
    http_source_into_a_file(&server, pagination, &canonical, d.path());
    let paths: Vec<String> = server.received().iter().map(|r| r.path.clone()).collect();
    assert!(
        paths.contains(&"/api/v2/sales?store=all&offset=75&limit=25".to_string()),
        "{paths:?}"
    );
}

#[test]
fn http_source_with_cursor_pagination() {
    let d = tempfile::tempdir().unwrap();
    let (_, canonical, vendor) = sales(d.path(), 64, 33);
    let server = TestHttpServer::start(move |_, req| {
        let q = query(&req.path);
        // Opaque tokens with characters that must be percent-encoded.
        let start: usize = q
            .get("after")
            .map(|t| t.trim_start_matches("pos%3A").parse().unwrap())
            .unwrap_or(0);
        let size: usize = q["first"].parse().unwrap();
        let next = (start + size < vendor.len()).then(|| format!("pos:{}", start + size));
        ok(
            json!({ "items": vendor.iter().skip(start).take(size).cloned().collect::<Vec<_>>(), "paging": { "next": next } }),
        )
    });
    let pagination = json!({ "kind": "cursor", "cursor_param": "after", "size_param": "first",
        "cursor_path": "/paging/next", "records_path": "/items", "page_size": 15 });
    http_source_into_a_file(&server, pagination, &canonical, d.path());
}

/// A receiver that checks signatures, answers `503` to the requests listed in `fail`, and
/// keeps the bodies it accepted.
struct Receiver {
    server: TestHttpServer,
    accepted: Arc<Mutex<Vec<Value>>>,
}

const SECRET: &str = "whsec_7f3a9c";

fn receiver(fail: &'static [usize]) -> Receiver {
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let keep = accepted.clone();
    let server = TestHttpServer::start(move |n, req| {
        let Some(sig) = req.header("x-posbridge-signature") else {
            return status(401, "unsigned");
        };
        if req.method != "POST" || !signature_is_valid(SECRET, sig, &req.body) {
            return status(401, "bad signature");
        }
        if fail.contains(&n) {
            return status(503, "try again");
        }
        keep.lock()
            .unwrap()
            .push(serde_json::from_slice(&req.body).expect("a JSON body"));
        ok(json!({ "received": true }))
    });
    Receiver { server, accepted }
}

fn sink_pipeline(dir: &Path, input: &Path, r: &Receiver) -> PathBuf {
    write_pipeline(
        dir,
        "http-out",
        json!({ "path": input }),
        json!({ "http": { "url": format!("{}/hooks/sales", r.server.base_url), "hmac_secret": SECRET,
            "headers": { "X-Tenant": "demo" } } }),
        json!({ "batch_size": 25, "retry_base_ms": 20, "retry_max_ms": 100 }),
    )
}

/// Every canonical sale arrived in exactly one accepted batch, unchanged, with its key.
fn assert_arrived_once(accepted: &[Value], canonical: &[Value]) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut keys_seen = std::collections::BTreeSet::new();
    for batch in accepted {
        assert_eq!(batch["stream"], "sales");
        let records = batch["records"].as_array().unwrap();
        let keys = batch["idempotency_keys"].as_array().unwrap();
        assert_eq!(records.len(), keys.len());
        for (rec, key) in records.iter().zip(keys) {
            assert!(
                keys_seen.insert(key.as_str().unwrap().to_string()),
                "key {key} sent twice"
            );
            *seen
                .entry(rec["id"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    assert_eq!(seen.len(), canonical.len(), "every sale arrived");
    assert!(seen.values().all(|&n| n == 1), "no sale arrived twice");
    let sent: BTreeMap<&str, &Value> = accepted
        .iter()
        .flat_map(|b| b["records"].as_array().unwrap())
        .map(|r| (r["id"].as_str().unwrap(), r))
        .collect();
    for c in canonical {
        assert_eq!(
            sent[c["id"].as_str().unwrap()],
            c,
            "the record arrives as read"
        );
    }
}

#[test]
fn http_sink_posts_signed_batches_that_arrive_once() {
    let d = tempfile::tempdir().unwrap();
    let (input, canonical, _) = sales(d.path(), 110, 41);
    let r = receiver(&[]);
    let p = sink_pipeline(d.path(), &input, &r);
    let state = d.path().join("s.db");
    let (ran, summary) = run_pipeline(&p, &state);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(summary["written"], 110, "{ran:?}");
    let requests = r.server.received();
    assert_eq!(requests.len(), 5, "110 records in batches of 25");
    assert!(requests
        .iter()
        .all(|q| q.header("x-tenant") == Some("demo") && q.path == "/hooks/sales"));
    assert_arrived_once(&r.accepted.lock().unwrap(), &canonical);
    // Re-runs send nothing again: not incrementally, and not on a full refresh either.
    let (ran, summary) = run_pipeline(&p, &state);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(summary["written"], 0, "{ran:?}");
    assert_eq!(r.server.received().len(), 5);
}

#[test]
fn http_sink_retries_a_5xx_without_losing_or_doubling_records() {
    let d = tempfile::tempdir().unwrap();
    let (input, canonical, _) = sales(d.path(), 60, 42);
    // The second and third requests fail with 503: the same batch twice in a row.
    let r = receiver(&[1, 2]);
    let p = sink_pipeline(d.path(), &input, &r);
    let (ran, summary) = run_pipeline(&p, &d.path().join("s.db"));
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(summary["written"], 60, "{ran:?}");
    let requests = r.server.received();
    assert_eq!(requests.len(), 5, "3 batches + 2 retries");
    // The retried batch is the same records; it is signed afresh each time.
    assert_eq!(requests[1].body.len(), requests[3].body.len());
    let ids = |q: &ReceivedRequest| -> Value {
        serde_json::from_slice::<Value>(&q.body).unwrap()["idempotency_keys"].clone()
    };
    assert_eq!(ids(&requests[1]), ids(&requests[3]));
    assert_arrived_once(&r.accepted.lock().unwrap(), &canonical);
}

#[test]
fn check_refuses_both_transports_and_fetches_the_first_page() {
    let d = tempfile::tempdir().unwrap();
    let server = TestHttpServer::start(|_, _| ok(json!([{ "id": "a" }, { "id": "b" }])));
    let url = format!("{}/api/sales", server.base_url);
    let check = |name: &str, config: Value| {
        let file = d.path().join(name);
        std::fs::write(&file, config.to_string()).unwrap();
        run(posbridge()
            .args(["check", "--connector", "generic", "--config"])
            .arg(&file))
    };
    let r = check(
        "both.json",
        json!({ "path": "x.ndjson", "http": { "url": url } }),
    );
    assert_ne!(r.code, 0, "{r:?}");
    let r = check("http.json", json!({ "http": { "url": url } }));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        format!("{}{}", r.stdout, r.stderr).contains("2 record(s)"),
        "{r:?}"
    );
    assert_eq!(server.received().len(), 1);
}

#[test]
fn a_token_in_a_header_or_the_url_query_never_shows_in_errors_logs_or_the_runs_table() {
    const QUERY_TOKEN: &str = "Qu3ryT0ken-xyz";
    const HEADER_TOKEN: &str = "H3aderT0ken-abc";
    let d = tempfile::tempdir().unwrap();
    // A vendor that fails and echoes what it was sent, as some do in their error bodies.
    let server = TestHttpServer::start(|_, req| {
        status(
            502,
            &format!("upstream failed for {} (key {HEADER_TOKEN})", req.path),
        )
    });
    let p = write_pipeline(
        d.path(),
        "leaky",
        json!({ "http": {
            "url": format!("{}/api/sales?api_key={QUERY_TOKEN}&store=all", server.base_url),
            "headers": { "X-Api-Key": HEADER_TOKEN } } }),
        json!({ "path": d.path().join("out.ndjson") }),
        json!({ "max_retries": 1, "retry_base_ms": 10, "retry_max_ms": 20 }),
    );
    let state = d.path().join("s.db");
    let mut shown = String::new();
    for dry_run in [false, true] {
        let mut cmd = posbridge();
        cmd.env("RUST_LOG", "trace")
            .arg("run")
            .arg(&p)
            .arg("--state")
            .arg(format!("sqlite:{}", state.display()));
        if dry_run {
            cmd.arg("--dry-run");
        }
        let r = run(&mut cmd);
        assert_ne!(r.code, 0, "the vendor fails: {r:?}");
        shown.push_str(&r.stdout);
        shown.push_str(&r.stderr);
    }
    assert!(!server.received().is_empty(), "the requests were made");
    assert!(shown.contains("502"), "the failure is reported: {shown}");
    assert!(shown.contains("***"), "redacted, not dropped: {shown}");
    for token in [QUERY_TOKEN, HEADER_TOKEN] {
        assert!(!shown.contains(token), "{token} shown: {shown}");
        let db = std::fs::read(&state).unwrap();
        assert!(
            !db.windows(token.len()).any(|w| w == token.as_bytes()),
            "{token} stored in the state (runs table)"
        );
    }
}
