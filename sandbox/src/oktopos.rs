//! The OktoPOS Manager TransactionAPI simulator, as `docs/connectors/oktopos.md` describes it.
//!
//! It keeps the generated sales *projected* onto what the vendor format can express (the
//! canonical records a faithful connector must read) and renders them as vendor JSON on request.
//! Every generated register becomes an integer `cash-register` id (1, 2, … in order of first
//! appearance); every sale a transaction with `referenceNumber` `{cash-register}-{receipt}`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::extract::{Path, Query};
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
/// The header carrying the token in the default variant.
pub const AUTH_HEADER: &str = "api_key";
/// The path before `transactions` in the default variant.
pub const DEFAULT_API_PREFIX: &str = "/api";
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
                // The connector keeps the vendor's token beside the canonical method.
                p.method_raw = Some(method(&p.method).0.to_string());
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

/// Where the simulated instance expects the token (the document names only the scheme `api_key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenPlacement {
    /// `NAME: <token>`.
    Header(String),
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `?NAME=<token>`.
    Query(String),
}

/// How the simulated instance reads the filter from the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathLayout {
    /// `/{from}/{until}/{page}/{size}/{cash-register}`, trailing segments optional.
    Positional,
    /// `/from/{from}/until/{until}/page/{page}/size/{size}/cash-register/{id}`, any pair optional.
    Named,
}

/// The defensible readings of the document one simulator answers. Each variant accepts only its
/// own reading, as a real instance would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    pub auth: TokenPlacement,
    pub layout: PathLayout,
    /// The path before `transactions` / `transaction`, e.g. `/api` or `/manager/api/v1`.
    pub api_prefix: String,
    /// Pages carry no `lastPage` (the document shows it, an instance may leave it out): the
    /// connector must page on until a short or empty page.
    pub without_last_page: bool,
}

impl Default for Variant {
    /// This repository's first reading: an `api_key` header, positional segments, `/api`.
    fn default() -> Self {
        Self {
            auth: TokenPlacement::Header(AUTH_HEADER.into()),
            layout: PathLayout::Positional,
            api_prefix: DEFAULT_API_PREFIX.into(),
            without_last_page: false,
        }
    }
}

/// The OktoPOS simulator.
pub struct OktoposSimulator {
    token: String,
    variant: Variant,
    book: RwLock<Book>,
}

/// Builds the simulator from generated German and Austrian stores.
pub fn build(opts: &SandboxOptions) -> anyhow::Result<Arc<dyn Simulator>> {
    build_variant(opts, Variant::default())
}

/// [`build`], answering another reading of the document.
pub fn build_variant(
    opts: &SandboxOptions,
    variant: Variant,
) -> anyhow::Result<Arc<dyn Simulator>> {
    let token = opts
        .api_key
        .clone()
        .unwrap_or_else(|| DEFAULT_TOKEN.to_string());
    Ok(Arc::new(OktoposSimulator::with_variant(
        token,
        opts.dataset(Country::Mixed).sales,
        variant,
    )))
}

impl OktoposSimulator {
    /// A simulator serving these generated sales behind this token (the default variant).
    pub fn new(token: String, sales: Vec<Sale>) -> Self {
        Self::with_variant(token, sales, Variant::default())
    }

    /// A simulator answering `variant`'s reading of the document.
    pub fn with_variant(token: String, sales: Vec<Sale>, variant: Variant) -> Self {
        let mut book = Book::default();
        book.add(sales);
        Self {
            token,
            variant,
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

/// The segment names of the named layout, in the positional order.
const SEGMENT_NAMES: [&str; 5] = ["from", "until", "page", "size", "cash-register"];

/// Parses the path after `transactions` in the given layout.
fn parse_filter(rest: &str, layout: PathLayout) -> Result<Filter, ApiError> {
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    match layout {
        PathLayout::Positional => parse_positional(&segs),
        PathLayout::Named => parse_named(&segs),
    }
}

/// `/from/{from}/until/{until}/…`: name-value pairs, each name at most once, any left out.
fn parse_named(segs: &[&str]) -> Result<Filter, ApiError> {
    let not_found = |m: String| error(StatusCode::NOT_FOUND, "not_found", &m);
    if !segs.len().is_multiple_of(2) {
        return Err(not_found(
            "path segments must come in name/value pairs".into(),
        ));
    }
    let mut values: [Option<&str>; 5] = [None; 5];
    for pair in segs.chunks(2) {
        let i = SEGMENT_NAMES
            .iter()
            .position(|n| *n == pair[0])
            .ok_or_else(|| not_found(format!("unknown path segment {:?}", pair[0])))?;
        if values[i].replace(pair[1]).is_some() {
            return Err(not_found(format!("path segment {:?} given twice", pair[0])));
        }
    }
    // The same value checks as the positional layout: hand the values over in its order.
    parse_values(|i| values[i])
}

/// `{from}/{until}/{page}/{size}/{cash-register}`, trailing segments optional.
fn parse_positional(segs: &[&str]) -> Result<Filter, ApiError> {
    if segs.len() > 5 {
        return Err(error(
            StatusCode::NOT_FOUND,
            "not_found",
            "too many path segments",
        ));
    }
    parse_values(|i| segs.get(i).copied())
}

/// The filter from its five values, by positional index (`None`: left out).
fn parse_values<'a>(value: impl Fn(usize) -> Option<&'a str>) -> Result<Filter, ApiError> {
    let bad = |name: &str, v: &str| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            &format!("invalid {name}: {v:?}"),
        )
    };
    let date = |i: usize, name: &str| -> Result<Option<NaiveDateTime>, ApiError> {
        value(i)
            .map(|v| NaiveDateTime::parse_from_str(v, SEGMENT_DATE_TIME).map_err(|_| bad(name, v)))
            .transpose()
    };
    let positive = |i: usize, name: &str, default: Option<u64>| -> Result<Option<u64>, ApiError> {
        match value(i) {
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

/// What a handler needs of a request besides its path: the headers and the query parameters.
struct Call {
    headers: HeaderMap,
    query: HashMap<String, String>,
}

impl OktoposSimulator {
    /// Accepts the token only where this variant expects it.
    fn authorized(&self, req: &Call) -> Result<(), ApiError> {
        let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
        let given = match &self.variant.auth {
            TokenPlacement::Header(name) => header(name),
            TokenPlacement::Bearer => {
                header("authorization").and_then(|v| v.strip_prefix("Bearer "))
            }
            TokenPlacement::Query(name) => req.query.get(name).map(String::as_str),
        };
        match given {
            Some(t) if t == self.token => Ok(()),
            _ => Err(error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or invalid authentication token",
            )),
        }
    }

    fn list(&self, req: &Call, rest: &str) -> Response {
        if let Err(e) = self.authorized(req) {
            return e.into_response();
        }
        let f = match parse_filter(rest, self.variant.layout) {
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
        let mut page = json!({
            "fromDate": fmt(f.from),
            "untilDate": fmt(f.until),
            "cashRegisterId": f.cash_register,
            "actualPage": f.page,
            "transactionsPerPage": size,
            "lastPage": last_page,
            "transactionCount": count,
            "transactions": matching[start..end].iter().map(|s| render(s)).collect::<Vec<_>>(),
        });
        if self.variant.without_last_page {
            if let Some(o) = page.as_object_mut() {
                o.remove("lastPage");
            }
        }
        Json(json!([page])).into_response()
    }

    fn one(&self, req: &Call, identifier: &str) -> Response {
        if let Err(e) = self.authorized(req) {
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
        let prefix = match self.variant.api_prefix.trim_matches('/') {
            "" => String::new(),
            p => format!("/{p}"),
        };
        let (a, b, c) = (self.clone(), self.clone(), self);
        let call = |headers, Query(query)| Call { headers, query };
        Router::new()
            .route(
                &format!("{prefix}/transactions"),
                get(
                    move |h: HeaderMap, q: Query<HashMap<String, String>>| async move {
                        a.list(&call(h, q), "")
                    },
                ),
            )
            .route(
                &format!("{prefix}/transactions/{{*rest}}"),
                get(
                    move |h: HeaderMap,
                          q: Query<HashMap<String, String>>,
                          Path(rest): Path<String>| async move {
                        b.list(&call(h, q), &rest)
                    },
                ),
            )
            .route(
                &format!("{prefix}/transaction/{{identifier}}"),
                get(
                    move |h: HeaderMap,
                          q: Query<HashMap<String, String>>,
                          Path(id): Path<String>| async move {
                        c.one(&call(h, q), &id)
                    },
                ),
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
        let headers: Vec<(&str, String)> = token
            .map(|t| vec![(AUTH_HEADER, t.to_string())])
            .unwrap_or_default();
        get_with(sim, path, &headers).await
    }

    async fn get_with(
        sim: Arc<OktoposSimulator>,
        path: &str,
        headers: &[(&str, String)],
    ) -> (StatusCode, Value) {
        let mut req = Request::get(path);
        for (name, value) in headers {
            req = req.header(*name, value);
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

    fn variant_sim(variant: Variant) -> Arc<OktoposSimulator> {
        Arc::new(OktoposSimulator::with_variant(
            "tok".into(),
            sim().all_sales(),
            variant,
        ))
    }

    fn count(body: &Value) -> u64 {
        body[0]["transactionCount"].as_u64().unwrap()
    }

    #[tokio::test]
    async fn the_named_layout_with_a_bearer_token_filters_by_any_pair() {
        let s = variant_sim(Variant {
            auth: TokenPlacement::Bearer,
            layout: PathLayout::Named,
            ..Variant::default()
        });
        let bearer = [("authorization", "Bearer tok".to_string())];
        let (status, all) = get_with(s.clone(), "/api/transactions", &bearer).await;
        assert_eq!(status, StatusCode::OK);
        let total = count(&all);
        assert_eq!(total, s.all_sales().len() as u64);
        // `from` without `until`, and `cash-register` alone: only named segments can say these.
        let last_day = s.all_sales().last().unwrap().timestamp.naive_local().date();
        let (status, late) = get_with(
            s.clone(),
            &format!("/api/transactions/from/{last_day}T00:00:00/size/100"),
            &bearer,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(count(&late) > 0 && count(&late) < total);
        assert_eq!(late[0]["untilDate"], Value::Null);
        let (_, reg) = get_with(s.clone(), "/api/transactions/cash-register/2", &bearer).await;
        assert!(reg[0]["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["referenceNumber"].as_str().unwrap().starts_with("2-")));
        // A positional path, a repeated name, or the token in the default header are refused.
        let positional = "/api/transactions/2020-01-01T00:00:00/2100-01-01T00:00:00/1/100";
        assert_eq!(
            get_with(s.clone(), positional, &bearer).await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            get_with(s.clone(), "/api/transactions/page/1/page/2", &bearer)
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        let header = [(AUTH_HEADER, "tok".to_string())];
        assert_eq!(
            get_with(s, "/api/transactions", &header).await.0,
            StatusCode::UNAUTHORIZED
        );
    }

    #[tokio::test]
    async fn a_query_token_under_another_prefix_is_the_only_way_in() {
        let s = variant_sim(Variant {
            auth: TokenPlacement::Query("api_key".into()),
            api_prefix: "/manager/api/v1/".into(),
            ..Variant::default()
        });
        let (status, body) = get_with(
            s.clone(),
            "/manager/api/v1/transactions/2020-01-01T00:00:00/2100-01-01T00:00:00/1/100?api_key=tok",
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(count(&body), s.all_sales().len() as u64);
        let header = [(AUTH_HEADER, "tok".to_string())];
        assert_eq!(
            get_with(s.clone(), "/manager/api/v1/transactions", &header)
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            get_with(s, "/api/transactions?api_key=tok", &[]).await.0,
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn a_header_of_another_name_replaces_api_key() {
        let s = variant_sim(Variant {
            auth: TokenPlacement::Header("X-Okto-Token".into()),
            ..Variant::default()
        });
        let named = [("x-okto-token", "tok".to_string())];
        assert_eq!(
            get_with(s.clone(), "/api/transactions", &named).await.0,
            StatusCode::OK
        );
        assert_eq!(
            get_json(s, "/api/transactions", Some("tok")).await.0,
            StatusCode::UNAUTHORIZED
        );
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
