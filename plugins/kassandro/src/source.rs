//! The read side: catalogue streams in one page, sales paged through date windows.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use chrono::{Duration, NaiveDate};
use posbridge_plugin_api::model::Sale;
use posbridge_plugin_api::sdk::export::{sales_to_ndjson, to_ndjson};
use posbridge_plugin_api::{ConnectorError, NdjsonPage, Page, ReadRequest};
use serde::Serialize;
use serde_json::Value;

use crate::auth::TokenKind;
use crate::catalog;
use crate::client::Client;
use crate::config::MAX_PAGE_SIZE;
use crate::cursor::{next_window, read_cursor, Bounds, SalesCursor, Window};
use crate::error::KassandroError;
use crate::fields::array_answer;
use crate::http::Body;
use crate::receipt::{map_receipt, StoreOfRegister};
use crate::receipt_in::{page_from_text, receipt_from_value, Obj, Receipt, Scalar};
use crate::vienna;

/// Reads the streams of one connector instance.
pub struct SalesReader<'a> {
    pub client: &'a Client,
    /// Register → store, loaded on first need and reloaded when a receipt names an unknown register.
    pub stores: &'a Mutex<Option<StoreOfRegister>>,
    pub fetched: &'a Fetched,
}

/// What a `read` of sales fetched before a later request of the same read failed: the count of
/// the cursor's window and the page. A retried `read` of the same request (the host's, after
/// a 5xx on the registers, say) resumes where it failed instead of paying for the whole chain
/// again. The registers are kept in `SalesReader::stores`, the tokens in the host's state.
#[derive(Default)]
pub struct Fetched {
    /// `(from, to)` of a window → its `/receipts/count`.
    count: Mutex<Option<((NaiveDate, NaiveDate), u64)>>,
    /// The query of a page → its answer, until the page is handed out, for a read asked again
    /// after an error; then the page read ahead, for the next read (shared, not copied: a page
    /// is a thousand receipts).
    page: Mutex<Option<KeptPage>>,
    /// The next page, read ahead while `page` was mapped (`Config::read_ahead`).
    next: Mutex<Option<KeptPage>>,
}

/// A page's query, its answer, and when it arrived (host clock, milliseconds).
type KeptPage = (String, Arc<Body>, i64);

/// How long a kept page answers for its query: a read that comes later (a connector kept
/// between runs, `posbridge serve`) asks the vendor again.
const KEPT_PAGE_MILLIS: i64 = 60_000;

impl Fetched {
    fn count(&self, w: &Window) -> Option<u64> {
        let c = self.count.lock().unwrap_or_else(|p| p.into_inner());
        c.filter(|(k, _)| *k == (w.from, w.to)).map(|(_, n)| n)
    }
    fn keep_count(&self, w: &Window, n: u64) {
        *self.count.lock().unwrap_or_else(|p| p.into_inner()) = Some(((w.from, w.to), n));
    }
    fn page(&self, q: &str, now: i64) -> Option<Arc<Body>> {
        let p = self.page.lock().unwrap_or_else(|p| p.into_inner());
        p.as_ref()
            .filter(|(k, _, at)| k == q && now.saturating_sub(*at) <= KEPT_PAGE_MILLIS)
            .map(|(_, v, _)| Arc::clone(v))
    }
    fn keep_page(&self, q: &str, body: &Arc<Body>, now: i64) {
        *self.page.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((q.to_string(), Arc::clone(body), now));
    }
    /// The page read ahead, kept for the read that asks for it once this one is handed out.
    fn keep_next(&self, q: &str, body: Arc<Body>, now: i64) {
        *self.next.lock().unwrap_or_else(|p| p.into_inner()) = Some((q.to_string(), body, now));
    }
    /// The page was handed out: a later read asks afresh, unless it asks for the page read
    /// ahead.
    fn handed_out(&self) {
        let next = self.next.lock().unwrap_or_else(|p| p.into_inner()).take();
        *self.count.lock().unwrap_or_else(|p| p.into_inner()) = None;
        *self.page.lock().unwrap_or_else(|p| p.into_inner()) = next;
    }
    /// The window ended: nothing kept is asked for again.
    fn forget(&self) {
        *self.count.lock().unwrap_or_else(|p| p.into_inner()) = None;
        *self.page.lock().unwrap_or_else(|p| p.into_inner()) = None;
        *self.next.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

fn to_values<T: Serialize>(records: Vec<T>) -> Result<Vec<Value>, ConnectorError> {
    records
        .into_iter()
        .map(|r| {
            serde_json::to_value(r)
                .map_err(|e| ConnectorError::Bug(format!("record does not serialize: {e}")))
        })
        .collect()
}

fn single_page(records: Vec<Value>) -> Page {
    Page {
        records,
        cursor: None,
        has_more: false,
    }
}

/// A page of sales as the read hands it on: `sales` is what [`SalesReader::read_sales`]'s
/// `finish` made of them (values, or NDJSON).
struct SalesPage<T> {
    sales: T,
    cursor: Option<Value>,
    has_more: bool,
}

impl SalesReader<'_> {
    /// One page of `request.stream` as NDJSON: sales are written straight from the typed
    /// records (no `Value` per sale), the catalogue streams as [`SalesReader::read`] has them.
    pub fn read_ndjson(&self, request: &ReadRequest) -> Result<NdjsonPage, ConnectorError> {
        if request.stream != "sales" {
            let page = self.read(request)?;
            return Ok(NdjsonPage {
                count: page.records.len() as u64,
                records: to_ndjson(&page.records)?,
                cursor: page.cursor,
                has_more: page.has_more,
            });
        }
        // Written while the next page is fetched (see `read_sales`).
        let page = self.read_sales(request, |sales| {
            Ok((sales.len() as u64, sales_to_ndjson(&sales)?))
        })?;
        let (count, records) = page.sales;
        Ok(NdjsonPage {
            count,
            records,
            cursor: page.cursor,
            has_more: page.has_more,
        })
    }

    /// One page of `request.stream`.
    pub fn read(&self, request: &ReadRequest) -> Result<Page, ConnectorError> {
        let acc = TokenKind::Account;
        match request.stream.as_str() {
            "sales" => {
                let page = self.read_sales(request, to_values)?;
                Ok(Page {
                    records: page.sales,
                    cursor: page.cursor,
                    has_more: page.has_more,
                })
            }
            "registers" => {
                let body = self
                    .client
                    .get(acc, "cashregisters", &[], "cashregisters")?;
                let cfg = self.client.config();
                Ok(single_page(to_values(catalog::registers(&body, cfg)?)?))
            }
            "products" => {
                let body = self.client.get(acc, "articles", &[], "articles")?;
                Ok(single_page(to_values(catalog::products(&body)?)?))
            }
            "categories" => {
                let body = self.client.get(acc, "articles", &[], "articles")?;
                Ok(single_page(to_values(catalog::categories(&body)?)?))
            }
            "payment_methods" => {
                let body = self
                    .client
                    .get(acc, "paymentmethods", &[], "paymentmethods")?;
                Ok(single_page(to_values(catalog::payment_methods(&body)?)?))
            }
            other => Err(ConnectorError::Config(format!(
                "kassandro has no stream {other:?}"
            ))),
        }
    }

    fn load_stores(&self) -> Result<StoreOfRegister, KassandroError> {
        let body = self
            .client
            .get(TokenKind::Account, "cashregisters", &[], "cashregisters")?;
        let registers = catalog::registers(&body, self.client.config())?;
        let stores = catalog::store_of_register(&registers);
        *self.stores.lock().unwrap_or_else(|p| p.into_inner()) = Some(stores.clone());
        Ok(stores)
    }

    fn stores_for(&self, receipts: &[Obj<Receipt<'_>>]) -> Result<StoreOfRegister, KassandroError> {
        let cached = self
            .stores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(stores) = cached else {
            return self.load_stores();
        };
        // A register id given as a string is looked up by the mapping, not here (as before).
        let unknown = receipts.iter().any(|r| match r {
            Obj::Is(Receipt {
                cash_register_id: Scalar::Num(n),
                ..
            }) => n.as_u64().is_some_and(|id| !stores.contains_key(&id)),
            _ => false,
        });
        if unknown {
            self.load_stores()
        } else {
            Ok(stores)
        }
    }

    fn count(&self, w: &Window) -> Result<u64, KassandroError> {
        // The count endpoint spells its parameters in camel case with ISO date-times (document).
        let q = [
            ("dateFrom", format!("{}T00:00:00", w.from)),
            ("dateTo", format!("{}T23:59:59", w.to)),
        ];
        let body = self
            .client
            .get(TokenKind::Account, "receipts/count", &q, "receipts/count")?;
        body.get("count")
            .and_then(Value::as_u64)
            .or_else(|| body.as_u64())
            .ok_or_else(|| KassandroError::bad_field("receipts/count", "count", "an integer"))
    }

    /// One page of sales, handed to `finish` (turning them into what the host gets) while the
    /// next page is read ahead: the vendor is asked for the next page during the mapping and
    /// the writing of this one, not after.
    fn read_sales<T>(
        &self,
        request: &ReadRequest,
        finish: impl FnOnce(Vec<Sale>) -> Result<T, ConnectorError>,
    ) -> Result<SalesPage<T>, ConnectorError> {
        let cfg = self.client.config();
        let now = self.client.host().now();
        let today = vienna::today(&now);
        let mut cursor = read_cursor(request.cursor.as_ref())?;
        let bounds = Bounds {
            from: request.from,
            to: request.to.unwrap_or(today),
            default_start: cfg.start_date.unwrap_or(today - Duration::days(30)),
            overlap_days: cfg.overlap_days,
        };
        let Some(mut window) = next_window(&cursor, bounds) else {
            // Nothing new to ask for: keep the cursor as it was.
            return Ok(SalesPage {
                sales: finish(vec![])?,
                cursor: request.cursor.clone(),
                has_more: false,
            });
        };
        if window.offset == 0 {
            window.total = match self.fetched.count(&window) {
                Some(n) => n,
                None => {
                    let n = self.count(&window)?;
                    self.fetched.keep_count(&window, n);
                    n
                }
            };
        }
        if window.offset >= window.total {
            self.fetched.forget();
            cursor.set_synced(window.to);
            return Ok(SalesPage {
                sales: finish(vec![])?,
                cursor: Some(cursor.to_json()),
                has_more: false,
            });
        }

        let limit = (cfg.page_size as usize)
            .min(request.page_size.max(1))
            .min(MAX_PAGE_SIZE as usize);
        // The account endpoint spells its parameters in lower case with plain dates (document).
        let q = [
            ("datefrom", window.from.to_string()),
            ("dateto", window.to.to_string()),
            ("limit", limit.to_string()),
            ("offset", window.offset.to_string()),
            ("withitems", "true".to_string()),
        ];
        let page_name = format!(
            "receipts?datefrom={}&dateto={}&offset={}",
            window.from, window.to, window.offset
        );
        // The page as asked (the name leaves out `limit`, which may change with the request).
        let asked = format!("{page_name}&limit={limit}");
        let (body, fresh) = match self.fetched.page(&asked, self.client.host().now_millis()) {
            Some(body) => (body, false),
            None => {
                let body = self
                    .client
                    .get_array(TokenKind::Account, "receipts", &q, &page_name)?;
                (Arc::new(body), true)
            }
        };
        if fresh {
            self.fetched
                .keep_page(&asked, &body, self.client.host().now_millis());
        }
        // The next page of the window, if this one is full, is asked for while this one is read
        // and mapped, on a thread of this read's own (joined before the read returns).
        let next_offset = window.offset + limit as u64;
        let ahead = (cfg.read_ahead && next_offset < window.total).then(|| {
            let mut q = q.clone();
            for (name, value) in &mut q {
                if *name == "offset" {
                    *value = next_offset.to_string();
                }
            }
            let page_name = format!(
                "receipts?datefrom={}&dateto={}&offset={next_offset}",
                window.from, window.to
            );
            (q, page_name)
        });
        let mapped = std::thread::scope(|scope| {
            let fetching = ahead.map(|(q, page_name)| {
                scope.spawn(move || {
                    let body =
                        self.client
                            .get_array(TokenKind::Account, "receipts", &q, &page_name);
                    (format!("{page_name}&limit={limit}"), body)
                })
            });
            let mapped = self
                .map_page(&body, &page_name)
                .and_then(|(received, sales)| Ok((received, finish(sales)?)));
            // A failed read-ahead is dropped: the next read asks again and reports it then.
            if let Some(Ok((asked, Ok(next)))) = fetching.map(|f| f.join()) {
                let now = self.client.host().now_millis();
                self.fetched.keep_next(&asked, Arc::new(next), now);
            }
            mapped
        });
        // On an error the page stays kept, for the read that asks for it again.
        let (received, sales) = mapped?;

        self.fetched.handed_out();
        window.offset += received as u64;
        let done = received < limit || window.offset >= window.total;
        if done {
            cursor.set_synced(window.to);
        } else {
            cursor.set_window(window);
        }
        Ok(SalesPage {
            sales,
            cursor: Some(cursor.to_json()),
            has_more: !done,
        })
    }

    /// The receipts of one page as sales: how many receipts it held, and the sales.
    fn map_page(&self, body: &Body, page_name: &str) -> Result<(usize, Vec<Sale>), ConnectorError> {
        let cfg = self.client.config();
        // The page's text read into the receipts' own types; a page that is no JSON array, or
        // a one-element array (which may be the vendor's error body), read as a `Value` as
        // before, with the same errors.
        let fallback: Value;
        let read = match body {
            Body::Array(a) => match page_from_text(a.text()).filter(|p| p.len() != 1) {
                Some(receipts) => Ok(receipts),
                None => {
                    fallback = a.json()?;
                    Err(&fallback)
                }
            },
            Body::Json(v) => Err(v),
        };
        let receipts = match read {
            Ok(receipts) => receipts,
            Err(v) => array_answer(v, page_name)?
                .iter()
                .map(receipt_from_value)
                .collect(),
        };
        let stores = self.stores_for(&receipts)?;
        let mut sales = Vec::with_capacity(receipts.len());
        let mut warnings = BTreeSet::new();
        for (i, r) in receipts.iter().enumerate() {
            let mapped = map_receipt(r, &stores, cfg, page_name, &format!("[{i}]"))?;
            warnings.extend(mapped.warnings);
            sales.push(mapped.sale);
        }
        // Once per page and kind, not once per receipt.
        for w in warnings {
            self.client
                .host()
                .warn(&format!("kassandro: {page_name}: {w}"));
        }
        Ok((receipts.len(), sales))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use posbridge_plugin_api::testing::{json_response, FakeHost};
    use posbridge_plugin_api::{HttpRequest, HttpResponse};
    use serde_json::json;

    use super::*;
    use crate::receipt::tests::receipt;

    /// A Kassandro whose requests to `fail_path` (the path after `/v1.0/`, up to `?`) answer
    /// 503 the first `times` times.
    fn kassandro(fail_path: &'static str, times: usize) -> FakeHost {
        kassandro_with(fail_path, times, json!([receipt()]))
    }

    /// [`kassandro`] answering `receipts` as the page.
    fn kassandro_with(fail_path: &'static str, times: usize, receipts: Value) -> FakeHost {
        let failures = Arc::new(AtomicUsize::new(times));
        FakeHost::with_vendor(move |req| {
            let rest = req.url.split("/v1.0/").nth(1).unwrap_or_default();
            let path = rest.split('?').next().unwrap_or_default();
            if path == fail_path && failures.load(Ordering::SeqCst) > 0 {
                failures.fetch_sub(1, Ordering::SeqCst);
                return Ok(HttpResponse {
                    status: 503,
                    headers: vec![],
                    body: b"busy".to_vec(),
                });
            }
            Ok(match path {
                "gettoken" => json_response(200, &json!([{"error": false, "accountToken": "acc"}])),
                "receipts/count" => json_response(
                    200,
                    &json!({"count": receipts.as_array().map_or(1, Vec::len)}),
                ),
                "receipts" => json_response(200, &receipts),
                "cashregisters" => json_response(
                    200,
                    &json!([
                    {"_id": "a", "cashRegisterId": 2, "name": "Kassa 2", "locationId": "graz"}]),
                ),
                _ => json_response(404, &json!({"error": true, "msg": "no route"})),
            })
        })
    }

    fn requests_to(host: &FakeHost, path: &str) -> usize {
        host.requests()
            .iter()
            .filter(|r| {
                let rest = r.url.split("/v1.0/").nth(1).unwrap_or_default();
                rest.split('?').next() == Some(path)
            })
            .count()
    }

    /// A client of the fake host, reading from 2026-02-01.
    fn test_client(host: &FakeHost) -> Client {
        let cfg: crate::config::Config = serde_json::from_value(json!({
            "base_url": "http://127.0.0.1:9", "api_key": "key", "start_date": "2026-02-01"
        }))
        .unwrap();
        Client::new(host.host(), cfg)
    }

    /// The sales up to 2026-02-02.
    fn sales_until_feb_2() -> ReadRequest {
        ReadRequest {
            stream: "sales".into(),
            to: NaiveDate::from_ymd_opt(2026, 2, 2),
            ..ReadRequest::default()
        }
    }

    fn read_twice(fail_path: &'static str) -> FakeHost {
        let host = kassandro(fail_path, 1);
        let client = test_client(&host);
        let stores = Mutex::new(None);
        let fetched = Fetched::default();
        let reader = SalesReader {
            client: &client,
            stores: &stores,
            fetched: &fetched,
        };
        let request = sales_until_feb_2();
        let e = reader.read(&request).unwrap_err();
        assert!(matches!(e, ConnectorError::Transient(_)), "{e:?}");
        // The host's retry of the same request.
        let page = reader.read(&request).unwrap();
        assert_eq!(page.records.len(), 1);
        assert_eq!(page.records[0]["id"], "kassandro:graz:2:2-000017");
        host
    }

    #[test]
    fn a_read_retried_after_the_registers_failed_fetches_only_the_registers_again() {
        let host = read_twice("cashregisters");
        assert_eq!(requests_to(&host, "gettoken"), 1);
        assert_eq!(requests_to(&host, "receipts/count"), 1);
        assert_eq!(requests_to(&host, "receipts"), 1);
        assert_eq!(requests_to(&host, "cashregisters"), 2);
        assert_eq!(host.request_count(), 5);
    }

    #[test]
    fn a_read_retried_after_the_page_failed_does_not_count_again() {
        let host = read_twice("receipts");
        assert_eq!(requests_to(&host, "gettoken"), 1);
        assert_eq!(requests_to(&host, "receipts/count"), 1);
        assert_eq!(requests_to(&host, "receipts"), 2);
        assert_eq!(requests_to(&host, "cashregisters"), 1);
    }

    /// A Kassandro holding `n` receipts (numbers `2-000000`…), paged by `offset` and `limit`.
    fn paged_kassandro(n: usize) -> FakeHost {
        FakeHost::with_vendor(paged_vendor(n))
    }

    /// What [`paged_kassandro`] answers.
    fn paged_vendor(
        n: usize,
    ) -> impl Fn(&HttpRequest) -> Result<HttpResponse, ConnectorError> + Send + Sync + 'static {
        let receipts: Vec<Value> = (0..n)
            .map(|i| {
                let mut r = receipt();
                r["receiptNumber"] = json!(format!("2-{i:06}"));
                r
            })
            .collect();
        move |req: &HttpRequest| {
            let rest = req.url.split("/v1.0/").nth(1).unwrap_or_default();
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            let param = |name: &str| {
                query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                    .and_then(|v| v.parse::<usize>().ok())
            };
            Ok(match path {
                "gettoken" => json_response(200, &json!([{"error": false, "accountToken": "acc"}])),
                "receipts/count" => json_response(200, &json!({"count": receipts.len()})),
                "receipts" => {
                    let offset = param("offset").unwrap_or(0).min(receipts.len());
                    let end = (offset + param("limit").unwrap_or(1000)).min(receipts.len());
                    json_response(200, &json!(receipts[offset..end]))
                }
                "cashregisters" => json_response(
                    200,
                    &json!([
                    {"_id": "a", "cashRegisterId": 2, "name": "Kassa 2", "locationId": "graz"}]),
                ),
                _ => json_response(404, &json!({"error": true, "msg": "no route"})),
            })
        }
    }

    /// Runs `test` with a reader of `client` that has its own caches of stores and pages.
    fn with_reader<R>(client: &Client, test: impl FnOnce(&SalesReader<'_>) -> R) -> R {
        let (stores, fetched) = (Mutex::new(None), Fetched::default());
        test(&SalesReader {
            client,
            stores: &stores,
            fetched: &fetched,
        })
    }

    /// A client of `host` asking for pages of 2 receipts.
    fn paged_client(host: &FakeHost, read_ahead: bool) -> Client {
        let cfg: crate::config::Config = serde_json::from_value(json!({
            "base_url": "http://127.0.0.1:9", "api_key": "key", "start_date": "2026-02-01",
            "page_size": 2, "read_ahead": read_ahead
        }))
        .unwrap();
        Client::new(host.host(), cfg)
    }

    /// Reads every page, following the cursor; answers the sales' ids and the offsets asked.
    fn read_all(host: &FakeHost, read_ahead: bool) -> (Vec<String>, Vec<String>) {
        let client = paged_client(host, read_ahead);
        with_reader(&client, |reader| {
            let mut request = ReadRequest {
                page_size: 1000,
                ..sales_until_feb_2()
            };
            let mut ids = Vec::new();
            loop {
                let page = reader.read(&request).unwrap();
                ids.extend(
                    page.records
                        .iter()
                        .map(|r| r["id"].as_str().unwrap().to_string()),
                );
                request.cursor = page.cursor;
                if !page.has_more {
                    break;
                }
            }
            let mut offsets: Vec<String> = host
                .requests()
                .iter()
                .filter(|r| r.url.contains("/v1.0/receipts?"))
                .filter_map(|r| {
                    r.url
                        .split('&')
                        .find(|kv| kv.starts_with("offset="))
                        .map(str::to_string)
                })
                .collect();
            offsets.sort();
            (ids, offsets)
        })
    }

    #[test]
    fn reading_ahead_gives_the_same_sales_and_asks_for_each_page_once() {
        let (with, with_asked) = read_all(&paged_kassandro(7), true);
        let (without, without_asked) = read_all(&paged_kassandro(7), false);
        let expected: Vec<String> = (0..7)
            .map(|i| format!("kassandro:graz:2:2-{i:06}"))
            .collect();
        assert_eq!(with, expected);
        assert_eq!(without, expected);
        let pages = ["offset=0", "offset=2", "offset=4", "offset=6"];
        assert_eq!(with_asked, pages);
        assert_eq!(without_asked, pages);
    }

    /// The vendor is asked for the next page while this one is still being turned into what
    /// the host gets, so the server is not idle while the connector writes.
    #[test]
    fn the_next_page_is_asked_for_while_this_one_is_written() {
        use std::sync::atomic::AtomicBool;
        use std::time::{Duration, Instant};
        let writing = Arc::new(AtomicBool::new(false));
        let answered_while_writing = Arc::new(AtomicBool::new(false));
        let (seen, answered) = (writing.clone(), answered_while_writing.clone());
        let vendor = paged_vendor(4);
        let host = FakeHost::with_vendor(move |req| {
            if req.url.contains("/v1.0/receipts?") && req.url.contains("offset=2") {
                // The page ahead is answered once this page is being written; if that only
                // starts after the answer (no overlap), this gives up after a while.
                let deadline = Instant::now() + Duration::from_secs(10);
                while !seen.load(Ordering::SeqCst) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(2));
                }
                answered.store(seen.load(Ordering::SeqCst), Ordering::SeqCst);
            }
            vendor(req)
        });
        let client = paged_client(&host, true);
        with_reader(&client, |reader| {
            let request = ReadRequest {
                page_size: 1000,
                ..sales_until_feb_2()
            };
            let page = reader
                .read_sales(&request, |sales| {
                    writing.store(true, Ordering::SeqCst);
                    Ok(sales.len())
                })
                .unwrap();
            assert_eq!(page.sales, 2);
            assert!(page.has_more);
            assert!(
                answered_while_writing.load(Ordering::SeqCst),
                "the next page was asked for only after this one was written"
            );
        })
    }

    #[test]
    fn a_page_read_ahead_is_not_used_a_minute_later() {
        let host = paged_kassandro(4);
        let client = paged_client(&host, true);
        with_reader(&client, |reader| {
            let request = ReadRequest {
                page_size: 1000,
                ..sales_until_feb_2()
            };
            let first = reader.read(&request).unwrap();
            assert_eq!(
                requests_to(&host, "receipts"),
                2,
                "the first page and the one ahead"
            );
            host.advance(std::time::Duration::from_secs(61));
            let second = reader
                .read(&ReadRequest {
                    cursor: first.cursor,
                    ..request
                })
                .unwrap();
            assert_eq!(second.records.len(), 2);
            assert_eq!(
                requests_to(&host, "receipts"),
                3,
                "the second page asked again"
            );
        })
    }

    #[test]
    fn the_next_page_is_asked_afresh() {
        let host = kassandro("none", 0);
        let client = test_client(&host);
        with_reader(&client, |reader| {
            let request = sales_until_feb_2();
            reader.read(&request).unwrap();
            reader.read(&request).unwrap();
            assert_eq!(
                requests_to(&host, "receipts/count"),
                2,
                "a new read counts again"
            );
            assert_eq!(requests_to(&host, "receipts"), 2);
        })
    }

    #[test]
    fn sales_reach_the_host_as_their_values_would_have_written_them() {
        let mut second = receipt();
        second["receiptNumber"] = json!("2-000018");
        second["_id"] = json!(18);
        // An unknown register (a warning) given as a string, without VAT amounts (derived).
        second["cashRegisterId"] = json!("7");
        second.as_object_mut().unwrap().remove("vatSums");
        second["signature"] = json!("_R1-AT1_K7_2-000018_2026-02-01T10:00:00_sig");
        let host = kassandro_with("none", 0, json!([receipt(), second]));
        let client = test_client(&host);
        with_reader(&client, |reader| {
            let request = sales_until_feb_2();
            let ndjson = reader.read_ndjson(&request).unwrap();
            let page = reader.read(&request).unwrap();
            assert_eq!(page.records.len(), 2);
            assert_eq!(page.records[1]["store_id"], "default");
            assert_eq!(
                String::from_utf8(ndjson.records).unwrap(),
                String::from_utf8(to_ndjson(&page.records).unwrap()).unwrap()
            );
            assert_eq!(ndjson.count, 2);
            assert_eq!(
                (ndjson.cursor, ndjson.has_more),
                (page.cursor, page.has_more)
            );
        })
    }
}
