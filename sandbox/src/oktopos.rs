//! The OktoPOS Manager TransactionAPI simulator, as `docs/connectors/oktopos.md` describes it.
//!
//! It keeps the generated sales *projected* onto what the vendor format can express (the
//! canonical records a faithful connector must read) and renders them as vendor JSON on request.
//! Every generated register becomes an integer `cash-register` id (1, 2, … in order of first
//! appearance); every sale a transaction with `referenceNumber` `{cash-register}-{receipt}`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{NaiveDateTime, Utc};
use posbridge_plugin_api::model::{Customer, Party, Sale, SaleKind};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::generator::Country;
use crate::registry::SandboxOptions;
use crate::server::Simulator;

/// The registry name.
pub const VENDOR: &str = "oktopos";
/// The token accepted when the options name none.
pub const DEFAULT_TOKEN: &str = "oktopos-demo-token";
/// The header carrying the token.
pub const AUTH_HEADER: &str = "api_key";
/// The canonical `store_id` the projection uses (the connector's default `store_id`).
pub const STORE_ID: &str = "default";
/// The "system setting" that caps the page size.
pub const MAX_PAGE_SIZE: u64 = 100;
/// The local date-time format of the `from` / `until` segments.
const SEGMENT_DATE_TIME: &str = "%Y-%m-%dT%H:%M:%S";

/// Gives stable small integers to the string ids of the generated data, in order of first use.
#[derive(Default)]
struct Numbering(HashMap<String, u64>);

impl Numbering {
    fn number(&mut self, key: &str) -> u64 {
        let next = self.0.len() as u64 + 1;
        *self.0.entry(key.to_string()).or_insert(next)
    }
}

/// The simulator's data: projected sales sorted by date of sale, and the id numberings.
#[derive(Default)]
struct Book {
    registers: Numbering,
    cashiers: Numbering,
    customers: Numbering,
    products: Numbering,
    /// Projected sales, sorted by (timestamp, receipt number).
    sales: Vec<Sale>,
}

impl Book {
    /// The canonical record a faithful connector reads for a generated sale.
    fn project(&mut self, g: Sale) -> Sale {
        let register = self
            .registers
            .number(&format!("{}\u{1f}{}", g.store_id, g.register_id));
        let receipt = format!("{register}-{}", g.receipt_number);
        let register_id = register.to_string();
        let cashier = g.cashier.map(|c| Party {
            id: Some(
                self.cashiers
                    .number(c.id.as_deref().unwrap_or_default())
                    .to_string(),
            ),
            name: c.name,
        });
        let customer = g.customer.map(|c| Customer {
            id: Some(
                self.customers
                    .number(c.id.as_deref().unwrap_or_default())
                    .to_string(),
            ),
            name: c.name,
            external_id: c.id,
            phone: None,
        });
        let lines = g
            .lines
            .into_iter()
            .map(|mut l| {
                l.product_id = l.product_id.map(|p| self.products.number(&p).to_string());
                l.category = None;
                l
            })
            .collect();
        let payments = g
            .payments
            .into_iter()
            .map(|mut p| {
                p.psp_reference = None;
                p
            })
            .collect();
        Sale {
            id: Sale::make_id(VENDOR, STORE_ID, &register_id, &receipt),
            source_system: VENDOR.into(),
            store_id: STORE_ID.into(),
            register_id,
            receipt_number: receipt.clone(),
            // The format names no cancelled receipt: a cancellation is served as a refund.
            kind: if g.kind == SaleKind::Cancellation {
                SaleKind::Refund
            } else {
                g.kind
            },
            cancels: None,
            business_day: g.business_day,
            timestamp: g.timestamp,
            timezone: g.timezone,
            currency: g.currency,
            cashier,
            customer,
            lines,
            payments,
            taxes: g.taxes,
            totals: g.totals,
            fiscal: None,
            loyalty: None,
            attachments: Vec::new(),
            raw_id: Some(receipt),
        }
    }

    fn add(&mut self, generated: Vec<Sale>) {
        for g in generated {
            let s = self.project(g);
            self.sales.push(s);
        }
        self.sales.sort_by(|a, b| {
            (a.timestamp, &a.receipt_number).cmp(&(b.timestamp, &b.receipt_number))
        });
    }
}

/// The OktoPOS simulator.
pub struct OktoposSimulator {
    token: String,
    book: RwLock<Book>,
}

/// Builds the simulator from generated German and Austrian stores.
pub fn build(opts: &SandboxOptions) -> anyhow::Result<Arc<dyn Simulator>> {
    let token = opts
        .api_key
        .clone()
        .unwrap_or_else(|| DEFAULT_TOKEN.to_string());
    Ok(Arc::new(OktoposSimulator::new(
        token,
        opts.dataset(Country::Mixed).sales,
    )))
}

impl OktoposSimulator {
    /// A simulator serving these generated sales behind this token.
    pub fn new(token: String, sales: Vec<Sale>) -> Self {
        let mut book = Book::default();
        book.add(sales);
        Self {
            token,
            book: RwLock::new(book),
        }
    }

    /// The `cash-register` ids in use, ascending.
    pub fn cash_register_ids(&self) -> Vec<u64> {
        let book = self.book.read().unwrap_or_else(|e| e.into_inner());
        let mut ids: Vec<u64> = book.registers.0.values().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Every projected sale, training ones included (what `include_training: true` reads).
    pub fn all_sales(&self) -> Vec<Sale> {
        self.book
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .sales
            .clone()
    }
}

/// A vendor money object; `decimal` is the float form the vendor also sends.
fn money(amount: Decimal, currency: &str) -> Value {
    json!({"currency": {"code": currency}, "decimal": number(amount), "string": amount.to_string()})
}

/// A decimal as a JSON number (as the vendor writes quantities, rates and `decimal`).
fn number(d: Decimal) -> Value {
    serde_json::from_str(&d.normalize().to_string()).unwrap_or(Value::Null)
}

/// The vendor's tax id of a rate (one id per rate, as an OktoPOS instance configures them).
fn tax_id(rate: Decimal) -> u64 {
    match rate.normalize().to_string().as_str() {
        "0" => 9,
        "7" => 1,
        "19" => 2,
        "10" => 3,
        "13" => 4,
        "20" => 5,
        _ => 8,
    }
}

/// The vendor's method token and name of a canonical method.
fn method(m: &str) -> (&'static str, &'static str) {
    match m {
        "cash" => ("CASH", "Bar"),
        "card" => ("EC", "EC-Karte"),
        "voucher" => ("VOUCHER", "Gutschein"),
        "invoice" => ("INVOICE", "Rechnung"),
        _ => ("OTHER", "Sonstige"),
    }
}

/// A projected sale in the vendor's transaction format.
fn render(s: &Sale) -> Value {
    let cur = s.currency.as_str();
    let id_number = |id: &Option<String>| id.as_deref().and_then(|i| i.parse::<u64>().ok());
    let items: Vec<Value> = s
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            json!({
                "id": i + 1,
                "product": {"id": id_number(&l.product_id), "name": l.name, "externalReference": null, "scannedBarcode": l.barcode},
                "distributionChannel": "INHOUSE",
                "quantity": number(l.quantity),
                "price": money(l.unit_price, cur),
                "discount": money(l.discount, cur),
                "tax": {"id": tax_id(l.tax_rate), "amount": money(l.tax, cur), "turnoverType": "sales"},
                "position": (i + 1).to_string(),
            })
        })
        .collect();
    let payments: Vec<Value> = s
        .payments
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (token, name) = method(&p.method);
            json!({"id": i + 1, "amount": money(p.amount, &p.currency), "method": {"name": name, "token": token}, "subType": null})
        })
        .collect();
    let taxes: Vec<Value> = s
        .taxes
        .iter()
        .map(|t| json!({"gross": money(t.gross, cur), "tax": money(t.tax, cur), "net": money(t.net, cur), "rate": number(t.rate)}))
        .collect();
    json!({
        "referenceNumber": s.receipt_number,
        "type": if s.kind == SaleKind::Refund { "refund" } else { "sales" },
        "training": s.kind == SaleKind::Training,
        "cashier": s.cashier.as_ref().map(|c| json!({"id": id_number(&c.id), "name": c.name})),
        "customer": s.customer.as_ref().map(|c| json!({"id": id_number(&c.id), "name": c.name, "externalIdentifier": c.external_id})),
        "items": items,
        "payments": payments,
        "taxes": taxes,
        "gross": money(s.totals.gross, cur),
        "businessDay": s.business_day.format("%Y-%m-%d").to_string(),
        "transactionDate": {
            "timestamp": s.timestamp.with_timezone(&Utc).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "timezone": s.timezone,
        },
    })
}

/// An error answered in the vendor's shape: `{"errors": [{"code", "message"}]}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"errors": [{"code": self.code, "message": self.message}]});
        (self.status, Json(body)).into_response()
    }
}

fn error(status: StatusCode, code: &'static str, message: &str) -> ApiError {
    ApiError {
        status,
        code,
        message: message.to_string(),
    }
}

/// The filter of the list endpoint, from its positional segments.
#[derive(Debug, PartialEq, Eq)]
struct Filter {
    from: Option<NaiveDateTime>,
    until: Option<NaiveDateTime>,
    page: u64,
    size: u64,
    cash_register: Option<u64>,
}

/// Parses `{from}/{until}/{page}/{size}/{cash-register}`, trailing segments optional.
fn parse_filter(rest: &str) -> Result<Filter, ApiError> {
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    if segs.len() > 5 {
        return Err(error(
            StatusCode::NOT_FOUND,
            "not_found",
            "too many path segments",
        ));
    }
    let bad = |name: &str, v: &str| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            &format!("invalid {name}: {v:?}"),
        )
    };
    let date = |i: usize, name: &str| -> Result<Option<NaiveDateTime>, ApiError> {
        segs.get(i)
            .map(|v| NaiveDateTime::parse_from_str(v, SEGMENT_DATE_TIME).map_err(|_| bad(name, v)))
            .transpose()
    };
    let positive = |i: usize, name: &str, default: Option<u64>| -> Result<Option<u64>, ApiError> {
        match segs.get(i) {
            None => Ok(default),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if n >= 1 => Ok(Some(n)),
                _ => Err(bad(name, v)),
            },
        }
    };
    Ok(Filter {
        from: date(0, "from")?,
        until: date(1, "until")?,
        page: positive(2, "page", Some(1))?.unwrap_or(1),
        size: positive(3, "size", Some(50))?.unwrap_or(50),
        cash_register: positive(4, "cash-register", None)?,
    })
}

impl OktoposSimulator {
    fn authorized(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        match headers.get(AUTH_HEADER).and_then(|v| v.to_str().ok()) {
            Some(t) if t == self.token => Ok(()),
            _ => Err(error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or invalid authentication token",
            )),
        }
    }

    fn list(&self, headers: &HeaderMap, rest: &str) -> Response {
        if let Err(e) = self.authorized(headers) {
            return e.into_response();
        }
        let f = match parse_filter(rest) {
            Ok(f) => f,
            Err(e) => return e.into_response(),
        };
        let book = self.book.read().unwrap_or_else(|e| e.into_inner());
        let register = f.cash_register.map(|id| id.to_string());
        if let Some(r) = &register {
            if !book.registers.0.values().any(|v| v.to_string() == *r) {
                return error(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    &format!("unknown cash register {r}"),
                )
                .into_response();
            }
        }
        let matching: Vec<&Sale> = book
            .sales
            .iter()
            .filter(|s| register.as_ref().is_none_or(|r| &s.register_id == r))
            .filter(|s| {
                let local = s.timestamp.naive_local();
                f.from.is_none_or(|from| local >= from)
                    && f.until.is_none_or(|until| local <= until)
            })
            .collect();
        let size = f.size.min(MAX_PAGE_SIZE);
        let count = matching.len() as u64;
        let last_page = count.div_ceil(size).max(1);
        let start = ((f.page - 1).saturating_mul(size)).min(count) as usize;
        let end = (start as u64 + size).min(count) as usize;
        let fmt = |d: Option<NaiveDateTime>| d.map(|d| d.format(SEGMENT_DATE_TIME).to_string());
        Json(json!([{
            "fromDate": fmt(f.from),
            "untilDate": fmt(f.until),
            "cashRegisterId": f.cash_register,
            "actualPage": f.page,
            "transactionsPerPage": size,
            "lastPage": last_page,
            "transactionCount": count,
            "transactions": matching[start..end].iter().map(|s| render(s)).collect::<Vec<_>>(),
        }]))
        .into_response()
    }

    fn one(&self, headers: &HeaderMap, identifier: &str) -> Response {
        if let Err(e) = self.authorized(headers) {
            return e.into_response();
        }
        let book = self.book.read().unwrap_or_else(|e| e.into_inner());
        match book.sales.iter().find(|s| s.receipt_number == identifier) {
            Some(s) => Json(json!([render(s)])).into_response(),
            None => error(
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("no transaction {identifier:?}"),
            )
            .into_response(),
        }
    }
}

impl Simulator for OktoposSimulator {
    fn vendor(&self) -> &'static str {
        VENDOR
    }

    fn router(self: Arc<Self>) -> Router {
        let (a, b, c) = (self.clone(), self.clone(), self);
        Router::new()
            .route(
                "/api/transactions",
                get(move |h: HeaderMap| async move { a.list(&h, "") }),
            )
            .route(
                "/api/transactions/{*rest}",
                get(move |h: HeaderMap, Path(rest): Path<String>| async move { b.list(&h, &rest) }),
            )
            .route(
                "/api/transaction/{identifier}",
                get(move |h: HeaderMap, Path(id): Path<String>| async move { c.one(&h, &id) }),
            )
    }

    fn credentials(&self) -> Vec<(String, String)> {
        vec![("token".to_string(), self.token.clone())]
    }

    /// What the connector reads with every cash register configured, `store_id: "default"`
    /// and training transactions excluded (the default).
    fn canonical_sales(&self) -> Vec<Sale> {
        let book = self.book.read().unwrap_or_else(|e| e.into_inner());
        book.sales
            .iter()
            .filter(|s| s.kind != SaleKind::Training)
            .cloned()
            .collect()
    }

    fn add_sales(&self, sales: Vec<Sale>) {
        self.book
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .add(sales);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    fn sim() -> Arc<OktoposSimulator> {
        let opts = SandboxOptions {
            stores: 2,
            registers_per_store: 2,
            days: 2,
            sales_per_day: 30,
            ..SandboxOptions::default()
        };
        Arc::new(OktoposSimulator::new(
            "tok".into(),
            opts.dataset(Country::Mixed).sales,
        ))
    }

    async fn get_json(
        sim: Arc<OktoposSimulator>,
        path: &str,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = Request::get(path);
        if let Some(t) = token {
            req = req.header(AUTH_HEADER, t);
        }
        let resp = sim
            .router()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn auth_is_enforced_with_the_vendor_error_body() {
        let (status, body) = get_json(sim(), "/api/transactions", Some("wrong")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["errors"][0]["code"], "unauthorized");
    }

    #[tokio::test]
    async fn pages_follow_size_cap_and_last_page() {
        let s = sim();
        let total = s.all_sales().len() as u64;
        let (status, body) = get_json(
            s.clone(),
            "/api/transactions/2020-01-01T00:00:00/2100-01-01T00:00:00/1/500",
            Some("tok"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let page = &body[0];
        assert_eq!(page["transactionsPerPage"], MAX_PAGE_SIZE);
        assert_eq!(page["transactionCount"], total);
        assert_eq!(page["lastPage"], total.div_ceil(MAX_PAGE_SIZE));
        assert_eq!(page["cashRegisterId"], Value::Null);
        assert_eq!(
            page["transactions"].as_array().unwrap().len() as u64,
            MAX_PAGE_SIZE.min(total)
        );
        let (_, beyond) = get_json(
            s,
            "/api/transactions/2020-01-01T00:00:00/2100-01-01T00:00:00/99/100",
            Some("tok"),
        )
        .await;
        assert!(beyond[0]["transactions"].as_array().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_register_segment_filters_and_bad_segments_are_400() {
        let s = sim();
        let (_, body) = get_json(
            s.clone(),
            "/api/transactions/2020-01-01T00:00:00/2100-01-01T00:00:00/1/100/2",
            Some("tok"),
        )
        .await;
        let txs = body[0]["transactions"].as_array().unwrap();
        assert!(!txs.is_empty());
        assert!(txs
            .iter()
            .all(|t| t["referenceNumber"].as_str().unwrap().starts_with("2-")));
        let (status, _) = get_json(
            s.clone(),
            "/api/transactions/2020-01-01/2100-01-01T00:00:00",
            Some("tok"),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = get_json(
            s,
            "/api/transactions/2020-01-01T00:00:00/2100-01-01T00:00:00/0",
            Some("tok"),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn one_transaction_by_identifier_renders_money_objects() {
        let s = sim();
        let first = s
            .canonical_sales()
            .into_iter()
            .find(|x| !x.lines.is_empty())
            .unwrap();
        let (status, body) = get_json(
            s.clone(),
            &format!("/api/transaction/{}", first.receipt_number),
            Some("tok"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body[0]["referenceNumber"], first.receipt_number.as_str());
        assert_eq!(body[0]["gross"]["string"], first.totals.gross.to_string());
        assert_eq!(body[0]["gross"]["currency"]["code"], "EUR");
        let (status, _) = get_json(s, "/api/transaction/nope", Some("tok")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[test]
    fn the_projection_reconciles_and_keeps_no_cancellations() {
        let s = sim();
        let sales = s.canonical_sales();
        assert!(sales.iter().all(|x| x.validate().is_empty()));
        assert!(sales
            .iter()
            .all(|x| x.kind != SaleKind::Cancellation && x.kind != SaleKind::Training));
        assert_eq!(s.cash_register_ids(), vec![1, 2, 3, 4]);
    }
}
