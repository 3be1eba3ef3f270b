//! Tillbox's contract against a scripted Tillbox (`testing::FakeHost`) that answers as
//! API.md says: no posbridge host, no network. `posbridge conformance` runs the full suite on
//! the built library.

use posbridge_plugin_api::sdk::export::full_manifest;
use posbridge_plugin_api::testing::{json_response, FakeHost};
use posbridge_plugin_api::*;
use posbridge_tillbox::{Config, Tillbox};
use serde_json::{json, Value};

const TOKEN: &str = "tb-test-token";

fn open_with(host: &FakeHost, token: &str) -> Tillbox {
    let cfg: Config =
        serde_json::from_value(json!({"base_url": "http://tillbox.test/api/v2", "token": token}))
            .unwrap();
    Tillbox::open(cfg, host.host()).unwrap()
}

fn query(url: &str, name: &str) -> Option<u64> {
    url.split(['?', '&'])
        .find_map(|p| p.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
}

/// Five articles (the third disabled), served by offset and limit, behind the token.
fn tillbox() -> FakeHost {
    FakeHost::with_vendor(|req| {
        let token_ok = req
            .headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("x-tillbox-token") && v == TOKEN);
        if !token_ok {
            return Ok(json_response(
                401,
                &json!({"error": {"text": "unknown token"}}),
            ));
        }
        if req.url.contains("/ping") {
            return Ok(json_response(200, &json!({"pong": true})));
        }
        let all: Vec<Value> = (1..=5)
            .map(|n| {
                json!({"sku": format!("A-{n}"), "title": format!("Article {n}"),
                       "price_cents": 100 * n + 5, "vat": "19.00", "enabled": n != 3})
            })
            .collect();
        let offset = query(&req.url, "offset").unwrap_or(0) as usize;
        let limit = query(&req.url, "limit").unwrap_or(50) as usize;
        let page: Vec<Value> = all.iter().skip(offset).take(limit).cloned().collect();
        Ok(json_response(
            200,
            &json!({"articles": page, "total": all.len()}),
        ))
    })
}

fn read(c: &Tillbox, cursor: Option<Value>) -> Page {
    c.read(&ReadRequest {
        stream: "products".into(),
        cursor,
        page_size: 2,
        ..Default::default()
    })
    .unwrap()
}

/// Every id from `cursor` to the end, and the cursors of pages that had more.
fn read_all(c: &Tillbox, mut cursor: Option<Value>) -> (Vec<String>, Vec<Value>) {
    let (mut ids, mut cursors) = (Vec::new(), Vec::new());
    loop {
        let page = read(c, cursor);
        ids.extend(
            page.records
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string()),
        );
        cursor = page.cursor;
        if !page.has_more {
            return (ids, cursors);
        }
        cursors.push(cursor.clone().unwrap());
    }
}

#[test]
fn the_manifest_is_valid_and_marks_the_token_secret() {
    let m = full_manifest::<Tillbox>();
    assert!(m.problems().is_empty(), "{:?}", m.problems());
    assert_eq!(m.secrets, vec!["token".to_string()]);
    assert_eq!(m.config_schema["required"], json!(["token"]));
}

#[test]
fn a_bad_token_is_a_clean_auth_error_naming_tillbox_s_message() {
    let host = tillbox();
    assert!(open_with(&host, TOKEN).check().unwrap().ok);
    let err = open_with(&host, "wrong-token-1").check().unwrap_err();
    assert!(matches!(err, ConnectorError::Auth(_)), "{err:?}");
    assert!(err.to_string().contains("unknown token"), "{err}");
    assert!(!err.to_string().contains("wrong-token-1"), "{err}");
}

#[test]
fn a_read_resumed_from_every_cursor_has_no_gap_and_no_duplicate() {
    let host = tillbox();
    let c = open_with(&host, TOKEN);
    let (ids, cursors) = read_all(&c, None);
    let expected: Vec<String> = (1..=5).map(|n| format!("tillbox:A-{n}")).collect();
    assert_eq!(ids, expected);
    assert_eq!(cursors.len(), 2);
    for (i, cursor) in cursors.iter().enumerate() {
        assert_eq!(
            read_all(&c, Some(cursor.clone())).0,
            expected[(i + 1) * 2..]
        );
    }
    // The last cursor points past the end: the next run reads only what is new.
    let last = read(&c, Some(json!({"offset": 4}))).cursor.unwrap();
    assert_eq!(last, json!({"offset": 5}));
    assert!(read(&c, Some(last)).records.is_empty());
}

#[test]
fn prices_in_cents_become_exact_decimals() {
    let host = tillbox();
    let page = read(&open_with(&host, TOKEN), Some(json!({"offset": 2})));
    let p: model::Product = serde_json::from_value(page.records[0].clone()).unwrap();
    assert_eq!(p.price.to_string(), "3.05");
    assert_eq!(p.tax_rate.to_string(), "19.00");
    assert!(!p.active, "article 3 is disabled");
    assert_eq!(p.currency, "EUR");
}
