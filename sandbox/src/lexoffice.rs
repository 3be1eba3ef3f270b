//! The lexoffice (Lexware Office) Public API simulator, as `docs/connectors/lexoffice.md`
//! describes it: `POST /v1/vouchers`, `GET /v1/vouchers/{id}`, `GET /v1/voucherlist`,
//! `GET /v1/contacts`, `GET /v1/profile`, behind `Authorization: Bearer <key>` and lexoffice's
//! rate limit of 2 requests per second per client (token bucket; 429 past it).
//!
//! Tests read what was booked through [`LexofficeSimulator::vouchers`] and how often the
//! limit was hit through [`LexofficeSimulator::rate_limited`].

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use posbridge_plugin_api::model::{
    decimal_from_json, Customer, Payment, Sale, SaleKind, SaleLine, TaxLine, Totals,
};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::generator::Country;
use crate::local_time;
use crate::registry::SandboxOptions;
use crate::server::Simulator;

/// The registry name.
pub const VENDOR: &str = "lexoffice";
/// The API key accepted when the options name none.
pub const DEFAULT_API_KEY: &str = "lexoffice-demo-key";
/// The simulated organization.
pub const ORGANIZATION_ID: &str = "aa93e8a8-2aa3-470b-b914-caad8a255dd8";
/// The simulated company name (`GET /v1/profile`).
pub const COMPANY_NAME: &str = "posbridge Sandbox GmbH";
/// Posting categories of type income the simulator accepts as `categoryId`.
pub const INCOME_CATEGORIES: &[(&str, &str)] = &[
    ("8f8664a8-fd86-11e1-a21f-0800200c9a66", "Einnahmen"),
    ("8f8664a0-fd86-11e1-a21f-0800200c9a66", "Warenverkäufe"),
    (
        "8f8664a1-fd86-11e1-a21f-0800200c9a66",
        "Warenverkäufe ermäßigt",
    ),
    ("8f8664a2-fd86-11e1-a21f-0800200c9a66", "Erlösschmälerungen"),
];
/// A customer contact (for `mapping.stores`).
pub const CUSTOMER_CONTACT_ID: &str = "be9475f4-ef80-442b-8ab9-3ab8b1a2aeb9";
/// Requests per second per client, and the largest burst (lexoffice: 2 per second).
pub const REQUESTS_PER_SECOND: u32 = 2;
/// Arrival jitter tolerated on top of the token bucket, for requests paced exactly at the limit.
pub const JITTER_TOLERANCE: Duration = Duration::from_millis(100);
/// Page size bounds of the list endpoints.
pub const MAX_PAGE_SIZE: usize = 250;
const DEFAULT_PAGE_SIZE: usize = 25;
const ALL_TYPES: &[&str] = &[
    "salesinvoice",
    "salescreditnote",
    "purchaseinvoice",
    "purchasecreditnote",
    "invoice",
    "downpaymentinvoice",
    "creditnote",
    "orderconfirmation",
    "quotation",
    "deliverynote",
];
const ALL_STATUSES: &[&str] = &[
    "draft",
    "open",
    "paid",
    "paidoff",
    "voided",
    "transferred",
    "sepadebit",
    "overdue",
    "accepted",
    "rejected",
    "unchecked",
];

/// One voucher item as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredItem {
    pub amount: Decimal,
    pub tax_amount: Decimal,
    pub tax_rate_percent: Decimal,
    pub category_id: String,
}

/// One bookkeeping voucher as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVoucher {
    pub id: String,
    pub voucher_type: String,
    pub voucher_status: String,
    pub voucher_number: String,
    /// As sent (`yyyy-MM-ddTHH:mm:ss.SSSXXX`).
    pub voucher_date: String,
    pub voucher_day: NaiveDate,
    pub total_gross_amount: Decimal,
    pub total_tax_amount: Decimal,
    /// `gross` or `net`.
    pub tax_type: String,
    pub use_collective_contact: bool,
    pub contact_id: Option<String>,
    pub remark: Option<String>,
    pub items: Vec<StoredItem>,
    pub created_date: String,
}

impl StoredVoucher {
    /// Net, tax and gross of the voucher items, per rate, positive as booked.
    pub fn per_rate(&self) -> Vec<TaxLine> {
        let mut out: Vec<TaxLine> = Vec::new();
        for i in &self.items {
            let (net, gross) = if self.tax_type == "gross" {
                (i.amount - i.tax_amount, i.amount)
            } else {
                (i.amount, i.amount + i.tax_amount)
            };
            let rate = i.tax_rate_percent.normalize();
            match out.iter_mut().find(|t| t.rate == rate) {
                Some(t) => {
                    t.net += net;
                    t.tax += i.tax_amount;
                    t.gross += gross;
                }
                None => out.push(TaxLine {
                    rate,
                    net,
                    tax: i.tax_amount,
                    gross,
                }),
            }
        }
        out
    }
}

/// A contact as stored.
#[derive(Debug, Clone)]
struct StoredContact {
    id: &'static str,
    customer: bool,
    vendor: bool,
    body: Value,
}

fn seed_contacts() -> Vec<StoredContact> {
    vec![
        StoredContact {
            id: "e9066f04-8cc7-4616-93f8-ac9ecc8479c8",
            customer: false,
            vendor: true,
            body: serde_json::json!({
                "id": "e9066f04-8cc7-4616-93f8-ac9ecc8479c8", "organizationId": ORGANIZATION_ID, "version": 1,
                "roles": {"vendor": {"number": 70001}},
                "company": {"name": "Großhandel Nord GmbH", "vatRegistrationId": "DE123456789", "allowTaxFreeInvoices": false},
                "emailAddresses": {"business": ["einkauf@grosshandel-nord.example"]},
                "archived": false
            }),
        },
        StoredContact {
            id: "313ac6a9-3d8e-4b0b-8c6c-2d0b8f0b4b71",
            customer: false,
            vendor: true,
            body: serde_json::json!({
                "id": "313ac6a9-3d8e-4b0b-8c6c-2d0b8f0b4b71", "organizationId": ORGANIZATION_ID, "version": 3,
                "roles": {"vendor": {"number": 70002}},
                "person": {"salutation": "Frau", "firstName": "Eva", "lastName": "Gruber"},
                "archived": false
            }),
        },
        StoredContact {
            id: CUSTOMER_CONTACT_ID,
            customer: true,
            vendor: false,
            body: serde_json::json!({
                "id": CUSTOMER_CONTACT_ID, "organizationId": ORGANIZATION_ID, "version": 1,
                "roles": {"customer": {"number": 10001}},
                "company": {"name": "Filiale Laufkundschaft"},
                "archived": false
            }),
        },
    ]
}

/// Per-client token buckets as GCRA: each client's theoretical arrival time.
#[derive(Default)]
struct Pacer {
    tat: Mutex<HashMap<String, Instant>>,
    refused: Mutex<u64>,
}

impl Pacer {
    /// Whether a request of `client` arriving now conforms; a conforming one uses a token.
    fn admit(&self, client: &str) -> bool {
        let interval = Duration::from_secs(1) / REQUESTS_PER_SECOND;
        let burst = interval * (REQUESTS_PER_SECOND - 1);
        let now = Instant::now();
        let mut map = self.tat.lock().unwrap_or_else(|e| e.into_inner());
        let tat = map.get(client).copied().unwrap_or(now);
        if tat > now + burst + JITTER_TOLERANCE {
            *self.refused.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            return false;
        }
        map.insert(client.to_string(), tat.max(now) + interval);
        true
    }
}

/// The simulator: vouchers, contacts, the key and the pacer.
pub struct LexofficeSimulator {
    /// List pages carry no `last` (variant): the connector must page on by `totalPages` or
    /// until a short page.
    without_last: bool,
    api_key: String,
    vouchers: RwLock<Vec<StoredVoucher>>,
    contacts: Vec<StoredContact>,
    pacer: Pacer,
}

/// Builds the simulator with the generated German sales booked as vouchers.
pub fn build(opts: &SandboxOptions) -> anyhow::Result<Arc<dyn Simulator>> {
    let sim = LexofficeSimulator::new(
        opts.api_key
            .clone()
            .unwrap_or_else(|| DEFAULT_API_KEY.to_string()),
    );
    sim.add_sales(opts.dataset(Country::De).sales);
    Ok(Arc::new(sim))
}

impl LexofficeSimulator {
    /// An empty account (no vouchers) behind this key.
    pub fn new(api_key: String) -> Self {
        Self {
            without_last: false,
            api_key,
            vouchers: RwLock::new(Vec::new()),
            contacts: seed_contacts(),
            pacer: Pacer::default(),
        }
    }

    /// This simulator answering list pages without `last`.
    pub fn without_last(mut self) -> Self {
        self.without_last = true;
        self
    }

    /// Every voucher booked so far, oldest first.
    pub fn vouchers(&self) -> Vec<StoredVoucher> {
        self.vouchers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many requests were answered 429 because they exceeded the rate limit.
    pub fn rate_limited(&self) -> u64 {
        *self.pacer.refused.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn next_id(&self, seq: usize) -> String {
        let n = seq as u64 + 1;
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            0x5a1e_0000u64 + (n >> 48),
            (n >> 32) & 0xffff,
            (n >> 20) & 0xfff,
            (n >> 12) & 0xff,
            n
        )
    }

    /// Rate limit, then key (the gateway's order): the refusal, if any.
    fn gate(&self, headers: &HeaderMap) -> Option<Response> {
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !self.pacer.admit(auth) {
            let mut r = gateway_error(StatusCode::TOO_MANY_REQUESTS, "API rate limit exceeded");
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return Some(r);
        }
        if auth.strip_prefix("Bearer ") != Some(self.api_key.as_str()) {
            return Some(gateway_error(StatusCode::UNAUTHORIZED, "Unauthorized"));
        }
        None
    }

    fn profile(&self, headers: &HeaderMap) -> Response {
        if let Some(r) = self.gate(headers) {
            return r;
        }
        json_response(
            StatusCode::OK,
            J::obj(vec![
                ("organizationId", J::s(ORGANIZATION_ID)),
                ("companyName", J::s(COMPANY_NAME)),
                ("connectionId", J::s("3dea098b-a2fb-4f8f-8b85-4b4b2d6e3d7f")),
                ("taxType", J::s("gross")),
                ("smallBusiness", J::B(false)),
            ]),
        )
    }

    fn create_voucher(&self, headers: &HeaderMap, body: &[u8]) -> Response {
        if let Some(r) = self.gate(headers) {
            return r;
        }
        let body: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => return legacy_error(&[("body", "invalid_value")]),
        };
        let mut voucher = match self.parse_voucher(&body) {
            Ok(v) => v,
            Err(issues) => {
                let issues: Vec<(&str, &str)> =
                    issues.iter().map(|(s, k)| (s.as_str(), *k)).collect();
                return legacy_error(&issues);
            }
        };
        let mut all = self.vouchers.write().unwrap_or_else(|e| e.into_inner());
        voucher.id = self.next_id(all.len());
        let id = voucher.id.clone();
        let created = voucher.created_date.clone();
        all.push(voucher);
        json_response(
            StatusCode::OK,
            J::obj(vec![
                ("id", J::s(&id)),
                (
                    "resourceUri",
                    J::s(format!("https://api.lexware.io/v1/vouchers/{id}")),
                ),
                ("createdDate", J::s(&created)),
                ("updatedDate", J::s(&created)),
                ("version", J::N(Decimal::ONE)),
            ]),
        )
    }

    /// Checks a voucher body the way the vouchers endpoint does; the issues otherwise.
    fn parse_voucher(&self, b: &Value) -> Result<StoredVoucher, Vec<(String, &'static str)>> {
        let mut issues: Vec<(String, &'static str)> = Vec::new();
        let text = |k: &str| b.get(k).and_then(Value::as_str).map(str::to_string);
        let voucher_type = text("type").unwrap_or_default();
        if voucher_type.is_empty() {
            issues.push(("type".into(), "missing_entity"));
        } else if voucher_type != "salesinvoice" && voucher_type != "salescreditnote" {
            // Write access is restricted to sales vouchers.
            issues.push(("type".into(), "invalid_value"));
        }
        let number = text("voucherNumber").unwrap_or_default();
        if number.trim().is_empty() {
            issues.push(("voucherNumber".into(), "missing_entity"));
        }
        let date = text("voucherDate").unwrap_or_default();
        let day = parse_day(&date);
        if day.is_none() {
            issues.push(("voucherDate".into(), "invalid_value"));
        }
        let tax_type = text("taxType").unwrap_or_default();
        if tax_type != "gross" && tax_type != "net" {
            issues.push(("taxType".into(), "invalid_value"));
        }
        let collective = b
            .get("useCollectiveContact")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let contact_id = if collective { None } else { text("contactId") };
        if !collective {
            match &contact_id {
                Some(c) if self.contacts.iter().any(|x| x.id == c) => {}
                Some(_) => issues.push(("contactId".into(), "missing_entity")),
                None => issues.push(("contactId".into(), "missing_entity")),
            }
        }
        let total_gross = b.get("totalGrossAmount").and_then(decimal_from_json);
        let total_tax = b.get("totalTaxAmount").and_then(decimal_from_json);
        if total_gross.is_none() {
            issues.push(("totalGrossAmount".into(), "missing_entity"));
        }
        if total_tax.is_none() {
            issues.push(("totalTaxAmount".into(), "missing_entity"));
        }
        let mut items = Vec::new();
        match b.get("voucherItems").and_then(Value::as_array) {
            Some(list) if !list.is_empty() => {
                for (i, it) in list.iter().enumerate() {
                    let num = |k: &str| it.get(k).and_then(decimal_from_json);
                    let (amount, tax, rate) =
                        (num("amount"), num("taxAmount"), num("taxRatePercent"));
                    let category = it.get("categoryId").and_then(Value::as_str);
                    let src = |k: &str| format!("voucherItems[{i}].{k}");
                    match amount {
                        Some(a) if a > Decimal::ZERO => {}
                        Some(_) => issues.push((src("amount"), "invalid_value")),
                        None => issues.push((src("amount"), "missing_entity")),
                    }
                    match tax {
                        Some(t) if t >= Decimal::ZERO => {}
                        Some(_) => issues.push((src("taxAmount"), "invalid_value")),
                        None => issues.push((src("taxAmount"), "missing_entity")),
                    }
                    match rate {
                        Some(r) if r >= Decimal::ZERO && r <= Decimal::ONE_HUNDRED => {}
                        Some(_) => issues.push((src("taxRatePercent"), "invalid_value")),
                        None => issues.push((src("taxRatePercent"), "missing_entity")),
                    }
                    match category {
                        Some(c) if INCOME_CATEGORIES.iter().any(|(id, _)| *id == c) => {}
                        _ => issues.push((src("categoryId"), "missing_entity")),
                    }
                    if let (Some(amount), Some(tax_amount), Some(rate), Some(c)) =
                        (amount, tax, rate, category)
                    {
                        items.push(StoredItem {
                            amount,
                            tax_amount,
                            tax_rate_percent: rate,
                            category_id: c.to_string(),
                        });
                    }
                }
            }
            _ => issues.push(("voucherItems".into(), "missing_entity")),
        }
        if let (Some(g), Some(t)) = (total_gross, total_tax) {
            if issues.is_empty() {
                let tax_sum: Decimal = items.iter().map(|i| i.tax_amount).sum();
                let gross_sum: Decimal = items
                    .iter()
                    .map(|i| {
                        if tax_type == "gross" {
                            i.amount
                        } else {
                            i.amount + i.tax_amount
                        }
                    })
                    .sum();
                if gross_sum != g {
                    issues.push(("totalGrossAmount".into(), "invalid_value"));
                }
                if tax_sum != t {
                    issues.push(("totalTaxAmount".into(), "invalid_value"));
                }
            }
        }
        if !issues.is_empty() {
            return Err(issues);
        }
        Ok(StoredVoucher {
            id: String::new(),
            voucher_type,
            voucher_status: "open".into(),
            voucher_number: number,
            voucher_date: date,
            voucher_day: day.unwrap_or_default(),
            total_gross_amount: total_gross.unwrap_or_default(),
            total_tax_amount: total_tax.unwrap_or_default(),
            tax_type,
            use_collective_contact: collective,
            contact_id,
            remark: text("remark"),
            items,
            created_date: lexoffice_time(Utc::now()),
        })
    }

    fn get_voucher(&self, headers: &HeaderMap, id: &str) -> Response {
        if let Some(r) = self.gate(headers) {
            return r;
        }
        let all = self.vouchers.read().unwrap_or_else(|e| e.into_inner());
        match all.iter().find(|v| v.id == id) {
            Some(v) => json_response(StatusCode::OK, render_voucher(v)),
            None => regular_error(
                StatusCode::NOT_FOUND,
                "/v1/vouchers",
                "Resource not found",
                None,
            ),
        }
    }

    fn voucherlist(&self, headers: &HeaderMap, q: &HashMap<String, String>) -> Response {
        if let Some(r) = self.gate(headers) {
            return r;
        }
        let path = "/v1/voucherlist";
        let types = match list_param(q, "voucherType", ALL_TYPES) {
            Ok(t) => t,
            Err(msg) => {
                return regular_error(StatusCode::BAD_REQUEST, path, &msg, Some("voucherType"))
            }
        };
        let statuses = match list_param(q, "voucherStatus", ALL_STATUSES) {
            Ok(s) => s,
            Err(msg) => {
                return regular_error(StatusCode::BAD_REQUEST, path, &msg, Some("voucherStatus"))
            }
        };
        let (page, size) = match page_params(q) {
            Ok(p) => p,
            Err(msg) => return regular_error(StatusCode::BAD_REQUEST, path, &msg, Some("size")),
        };
        let day = |k: &str| q.get(k).map(|v| NaiveDate::from_str(v));
        let (from, to) = match (day("voucherDateFrom"), day("voucherDateTo")) {
            (Some(Err(_)), _) | (_, Some(Err(_))) => {
                return regular_error(
                    StatusCode::BAD_REQUEST,
                    path,
                    "voucherDateFrom and voucherDateTo must be yyyy-MM-dd",
                    Some("voucherDateFrom"),
                )
            }
            (f, t) => (f.and_then(Result::ok), t.and_then(Result::ok)),
        };
        let all = self.vouchers.read().unwrap_or_else(|e| e.into_inner());
        let mut hits: Vec<(usize, &StoredVoucher)> = all
            .iter()
            .enumerate()
            .filter(|(_, v)| types.iter().any(|t| *t == v.voucher_type))
            .filter(|(_, v)| statuses.iter().any(|s| *s == v.voucher_status))
            .filter(|(_, v)| {
                q.get("voucherNumber")
                    .is_none_or(|n| *n == v.voucher_number)
            })
            .filter(|(_, v)| from.is_none_or(|f| v.voucher_day >= f))
            .filter(|(_, v)| to.is_none_or(|t| v.voucher_day <= t))
            .collect();
        let sort = q
            .get("sort")
            .map(|s| s.to_ascii_lowercase())
            .unwrap_or_else(|| "voucherdate,desc".into());
        match sort.as_str() {
            "createddate,asc" => {}
            "createddate,desc" => hits.reverse(),
            "voucherdate,asc" => hits.sort_by_key(|(i, v)| (v.voucher_day, *i)),
            "voucherdate,desc" => {
                hits.sort_by_key(|(i, v)| (std::cmp::Reverse(v.voucher_day), std::cmp::Reverse(*i)))
            }
            _ => {
                return regular_error(
                    StatusCode::BAD_REQUEST,
                    path,
                    "sort must be createdDate or voucherDate, ASC or DESC",
                    Some("sort"),
                )
            }
        }
        let content: Vec<J> = hits
            .iter()
            .skip(page * size)
            .take(size)
            .map(|(_, v)| {
                J::obj(vec![
                    ("id", J::s(&v.id)),
                    ("voucherType", J::s(&v.voucher_type)),
                    ("voucherStatus", J::s(&v.voucher_status)),
                    ("voucherNumber", J::s(&v.voucher_number)),
                    ("voucherDate", J::s(&v.voucher_date)),
                    ("createdDate", J::s(&v.created_date)),
                    ("updatedDate", J::s(&v.created_date)),
                    ("dueDate", J::Null),
                    ("contactId", v.contact_id.as_deref().map_or(J::Null, J::s)),
                    ("contactName", J::s(contact_name(v))),
                    ("totalAmount", J::N(v.total_gross_amount)),
                    ("openAmount", J::N(v.total_gross_amount)),
                    ("currency", J::s("EUR")),
                    ("archived", J::B(false)),
                ])
            })
            .collect();
        json_response(
            StatusCode::OK,
            page_body(content, hits.len(), page, size, !self.without_last),
        )
    }

    fn contacts(&self, headers: &HeaderMap, q: &HashMap<String, String>) -> Response {
        if let Some(r) = self.gate(headers) {
            return r;
        }
        let (page, size) = match page_params(q) {
            Ok(p) => p,
            Err(msg) => {
                return regular_error(StatusCode::BAD_REQUEST, "/v1/contacts", &msg, Some("size"))
            }
        };
        let flag = |k: &str| q.get(k).map(|v| v.eq_ignore_ascii_case("true"));
        let hits: Vec<&StoredContact> = self
            .contacts
            .iter()
            .filter(|c| flag("vendor").is_none_or(|f| c.vendor == f))
            .filter(|c| flag("customer").is_none_or(|f| c.customer == f))
            .collect();
        let content = hits
            .iter()
            .skip(page * size)
            .take(size)
            .map(|c| J::Raw(c.body.to_string()))
            .collect();
        json_response(
            StatusCode::OK,
            page_body(content, hits.len(), page, size, !self.without_last),
        )
    }
}

fn contact_name(v: &StoredVoucher) -> &'static str {
    if v.use_collective_contact {
        "Sammelkunde"
    } else {
        "Kunde"
    }
}

/// `yyyy-MM-ddTHH:mm:ss.SSSXXX` or `yyyy-MM-dd` → the voucher's day.
fn parse_day(s: &str) -> Option<NaiveDate> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.date_naive())
        .ok()
        .or_else(|| NaiveDate::from_str(s).ok())
}

fn lexoffice_time(t: DateTime<Utc>) -> String {
    let off = FixedOffset::east_opt(3600).expect("valid offset");
    t.with_timezone(&off)
        .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

/// A comma-separated enum parameter that is required; `any` means all values.
fn list_param<'a>(
    q: &'a HashMap<String, String>,
    name: &str,
    allowed: &[&'a str],
) -> Result<Vec<&'a str>, String> {
    let raw = q
        .get(name)
        .ok_or_else(|| format!("Missing required parameter {name}"))?;
    if raw.eq_ignore_ascii_case("any") {
        return Ok(allowed.to_vec());
    }
    let mut out = Vec::new();
    for v in raw.split(',') {
        match allowed.iter().find(|a| a.eq_ignore_ascii_case(v.trim())) {
            Some(a) => out.push(*a),
            None => return Err(format!("{name}: unknown value {v:?}")),
        }
    }
    Ok(out)
}

/// Zero-based `page` (default 0) and `size` (default 25, 1 to 250).
fn page_params(q: &HashMap<String, String>) -> Result<(usize, usize), String> {
    let num = |k: &str, d: usize| match q.get(k) {
        None => Ok(d),
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| format!("{k} must be a non-negative integer")),
    };
    let (page, size) = (num("page", 0)?, num("size", DEFAULT_PAGE_SIZE)?);
    if !(1..=MAX_PAGE_SIZE).contains(&size) {
        return Err(format!("size must be between 1 and {MAX_PAGE_SIZE}"));
    }
    Ok((page, size))
}

/// The paging envelope of the list endpoints; `with_last: false` leaves out `last` (variant).
fn page_body(content: Vec<J>, total: usize, page: usize, size: usize, with_last: bool) -> J {
    let pages = total.div_ceil(size);
    let n = content.len();
    let mut fields = vec![
        ("content", J::A(content)),
        ("first", J::B(page == 0)),
        ("last", J::B(page + 1 >= pages)),
    ];
    if !with_last {
        fields.pop();
    }
    fields.extend([
        ("totalPages", J::N(Decimal::from(pages))),
        ("totalElements", J::N(Decimal::from(total))),
        ("numberOfElements", J::N(Decimal::from(n))),
        ("size", J::N(Decimal::from(size))),
        ("number", J::N(Decimal::from(page))),
    ]);
    J::obj(fields)
}

fn render_voucher(v: &StoredVoucher) -> J {
    let items = v
        .items
        .iter()
        .map(|i| {
            J::obj(vec![
                ("amount", J::N(i.amount)),
                ("taxAmount", J::N(i.tax_amount)),
                ("taxRatePercent", J::N(i.tax_rate_percent)),
                ("categoryId", J::s(&i.category_id)),
            ])
        })
        .collect();
    J::obj(vec![
        ("id", J::s(&v.id)),
        ("organizationId", J::s(ORGANIZATION_ID)),
        ("type", J::s(&v.voucher_type)),
        ("voucherStatus", J::s(&v.voucher_status)),
        ("voucherNumber", J::s(&v.voucher_number)),
        ("voucherDate", J::s(&v.voucher_date)),
        ("dueDate", J::Null),
        ("totalGrossAmount", J::N(v.total_gross_amount)),
        ("totalTaxAmount", J::N(v.total_tax_amount)),
        ("taxType", J::s(&v.tax_type)),
        ("useCollectiveContact", J::B(v.use_collective_contact)),
        ("contactId", v.contact_id.as_deref().map_or(J::Null, J::s)),
        ("remark", v.remark.as_deref().map_or(J::Null, J::s)),
        ("voucherItems", J::A(items)),
        ("files", J::A(Vec::new())),
        ("createdDate", J::s(&v.created_date)),
        ("updatedDate", J::s(&v.created_date)),
        ("version", J::N(Decimal::ONE)),
    ])
}

/// A JSON tree whose numbers are written from the decimal's text (no float on the way out).
enum J {
    N(Decimal),
    S(String),
    B(bool),
    Null,
    A(Vec<J>),
    O(Vec<(&'static str, J)>),
    /// Already serialized JSON.
    Raw(String),
}

impl J {
    fn s(v: impl Into<String>) -> J {
        J::S(v.into())
    }

    fn obj(fields: Vec<(&'static str, J)>) -> J {
        J::O(fields)
    }

    fn write(&self, out: &mut String) {
        match self {
            J::N(d) => out.push_str(&d.to_string()),
            J::S(s) => out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())),
            J::B(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Null => out.push_str("null"),
            J::Raw(r) => out.push_str(r),
            J::A(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write(out);
                }
                out.push(']');
            }
            J::O(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&format!("\"{k}\":"));
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

fn json_response(status: StatusCode, body: J) -> Response {
    let mut text = String::new();
    body.write(&mut text);
    (status, [(header::CONTENT_TYPE, "application/json")], text).into_response()
}

/// The gateway's short error body (401, 429).
fn gateway_error(status: StatusCode, message: &str) -> Response {
    json_response(status, J::obj(vec![("message", J::s(message))]))
}

/// The legacy error body of the vouchers endpoint: `{"requestId", "IssueList": [...]}`.
fn legacy_error(issues: &[(&str, &str)]) -> Response {
    let list = issues
        .iter()
        .map(|(source, key)| {
            J::obj(vec![
                ("i18nKey", J::s(*key)),
                ("source", J::s(*source)),
                ("type", J::s("validation_failure")),
            ])
        })
        .collect();
    json_response(
        StatusCode::BAD_REQUEST,
        J::obj(vec![
            ("requestId", J::s("75d4dad6-6ccb-40fd-8c22-797f2d421d98")),
            ("IssueList", J::A(list)),
        ]),
    )
}

/// The regular error body: status, error, path, traceId, timestamp, message, details.
fn regular_error(status: StatusCode, path: &str, message: &str, field: Option<&str>) -> Response {
    let details = field
        .map(|f| {
            vec![J::obj(vec![
                ("violation", J::s("NOTVALID")),
                ("field", J::s(f)),
                ("message", J::s(message)),
            ])]
        })
        .unwrap_or_default();
    json_response(
        status,
        J::obj(vec![
            ("timestamp", J::s(lexoffice_time(Utc::now()))),
            ("status", J::N(Decimal::from(status.as_u16()))),
            ("error", J::s(status.canonical_reason().unwrap_or(""))),
            ("path", J::s(path)),
            ("traceId", J::s("90d78d0777be")),
            ("message", J::s(message)),
            ("details", J::A(details)),
        ]),
    )
}

/// Midnight of the day in Berlin (winter or summer time).
fn berlin_midnight(day: NaiveDate) -> String {
    local_time::from_local(
        local_time::Berlin,
        day.and_hms_opt(0, 0, 0).expect("midnight"),
    )
    .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
    .to_string()
}

impl Simulator for LexofficeSimulator {
    fn vendor(&self) -> &'static str {
        VENDOR
    }

    fn router(self: Arc<Self>) -> Router {
        let (a, b, c, d, e) = (self.clone(), self.clone(), self.clone(), self.clone(), self);
        Router::new()
            .route(
                "/v1/profile",
                get(move |h: HeaderMap| async move { a.profile(&h) }),
            )
            .route(
                "/v1/vouchers",
                axum::routing::post(move |h: HeaderMap, body: axum::body::Bytes| async move {
                    b.create_voucher(&h, &body)
                }),
            )
            .route(
                "/v1/vouchers/{id}",
                get(move |h: HeaderMap, Path(id): Path<String>| async move { c.get_voucher(&h, &id) }),
            )
            .route(
                "/v1/voucherlist",
                get(
                    move |h: HeaderMap, Query(q): Query<HashMap<String, String>>| async move {
                        d.voucherlist(&h, &q)
                    },
                ),
            )
            .route(
                "/v1/contacts",
                get(
                    move |h: HeaderMap, Query(q): Query<HashMap<String, String>>| async move {
                        e.contacts(&h, &q)
                    },
                ),
            )
    }

    fn credentials(&self) -> Vec<(String, String)> {
        vec![("api_key".to_string(), self.api_key.clone())]
    }

    /// The sales a connector reading every non-voided sales voucher produces: one line per
    /// item, credit notes as refunds with negative amounts, paid as an open item (`invoice`).
    fn canonical_sales(&self) -> Vec<Sale> {
        self.vouchers()
            .iter()
            .filter(|v| v.voucher_status != "voided")
            .filter(|v| v.voucher_type == "salesinvoice" || v.voucher_type == "salescreditnote")
            .filter_map(voucher_as_sale)
            .collect()
    }

    /// Books generated sales as vouchers: one per EUR revenue sale whose rates share one sign,
    /// items per rate on the first income category, collective contact.
    fn add_sales(&self, sales: Vec<Sale>) {
        let mut all = self.vouchers.write().unwrap_or_else(|e| e.into_inner());
        for s in sales {
            if !s.kind.is_revenue() || s.currency != "EUR" || s.taxes.is_empty() {
                continue;
            }
            let credit = s.totals.gross < Decimal::ZERO;
            let sign = if credit { -Decimal::ONE } else { Decimal::ONE };
            if s.taxes.iter().any(|t| t.gross * sign <= Decimal::ZERO) {
                continue;
            }
            let items: Vec<StoredItem> = s
                .taxes
                .iter()
                .map(|t| StoredItem {
                    amount: t.gross * sign,
                    tax_amount: t.tax * sign,
                    tax_rate_percent: t.rate.normalize(),
                    category_id: INCOME_CATEGORIES[0].0.to_string(),
                })
                .collect();
            let id = self.next_id(all.len());
            all.push(StoredVoucher {
                id,
                voucher_type: if credit {
                    "salescreditnote"
                } else {
                    "salesinvoice"
                }
                .into(),
                voucher_status: "open".into(),
                voucher_number: format!("{}-{}-{}", s.store_id, s.register_id, s.receipt_number),
                voucher_date: berlin_midnight(s.business_day),
                voucher_day: s.business_day,
                total_gross_amount: s.totals.gross * sign,
                total_tax_amount: s.totals.tax * sign,
                tax_type: "gross".into(),
                use_collective_contact: true,
                contact_id: None,
                remark: Some(format!("Beleg {}", s.id)),
                items,
                created_date: lexoffice_time(s.timestamp.with_timezone(&Utc)),
            });
        }
    }
}

/// A stored voucher read the way the connector reads it.
fn voucher_as_sale(v: &StoredVoucher) -> Option<Sale> {
    let credit = v.voucher_type == "salescreditnote";
    let sign = if credit { -Decimal::ONE } else { Decimal::ONE };
    let timestamp = DateTime::parse_from_rfc3339(&v.voucher_date).ok()?;
    let lines: Vec<SaleLine> = v
        .items
        .iter()
        .map(|i| {
            let rate = i.tax_rate_percent.normalize();
            let (net, gross) = if v.tax_type == "gross" {
                (i.amount - i.tax_amount, i.amount)
            } else {
                (i.amount, i.amount + i.tax_amount)
            };
            SaleLine {
                product_id: None,
                name: format!("Umsatz {rate} %"),
                category: Some(i.category_id.clone()),
                barcode: None,
                quantity: Decimal::ONE,
                unit_price: gross * sign,
                discount: Decimal::ZERO,
                tax_rate: rate,
                net: net * sign,
                tax: i.tax_amount * sign,
                gross: gross * sign,
            }
        })
        .collect();
    let mut taxes: Vec<TaxLine> = v
        .per_rate()
        .into_iter()
        .map(|t| TaxLine {
            rate: t.rate,
            net: t.net * sign,
            tax: t.tax * sign,
            gross: t.gross * sign,
        })
        .collect();
    taxes.sort_by_key(|t| t.rate);
    let totals = Totals {
        net: taxes.iter().map(|t| t.net).sum(),
        tax: taxes.iter().map(|t| t.tax).sum(),
        gross: taxes.iter().map(|t| t.gross).sum(),
        discount: Decimal::ZERO,
    };
    Some(Sale {
        id: Sale::make_id(VENDOR, "lexoffice", "vouchers", &v.id),
        source_system: VENDOR.into(),
        store_id: "lexoffice".into(),
        register_id: "vouchers".into(),
        receipt_number: v.voucher_number.clone(),
        kind: if credit {
            SaleKind::Refund
        } else {
            SaleKind::Sale
        },
        cancels: None,
        business_day: timestamp.date_naive(),
        timestamp,
        timezone: Some("Europe/Berlin".into()),
        currency: "EUR".into(),
        cashier: None,
        customer: v.contact_id.as_ref().map(|c| Customer {
            id: Some(c.clone()),
            name: None,
            external_id: None,
            phone: None,
        }),
        lines,
        payments: vec![Payment {
            method: "invoice".into(),
            amount: totals.gross,
            currency: "EUR".into(),
            psp_reference: None,
            method_raw: None,
        }],
        taxes,
        totals,
        fiscal: None,
        loyalty: None,
        attachments: Vec::new(),
        raw_id: Some(v.id.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pacer_allows_a_burst_of_two_then_two_per_second() {
        let p = Pacer::default();
        assert!(p.admit("a"));
        assert!(p.admit("a"));
        assert!(!p.admit("a"), "a third request at once is over the limit");
        assert!(p.admit("b"), "clients have buckets of their own");
        std::thread::sleep(Duration::from_millis(520));
        assert!(p.admit("a"));
        assert!(!p.admit("a"));
        assert_eq!(*p.refused.lock().unwrap(), 2);
    }

    #[test]
    fn generated_sales_read_back_as_reconciling_vouchers() {
        let sim = LexofficeSimulator::new("k".into());
        let opts = SandboxOptions {
            days: 3,
            sales_per_day: 30,
            ..SandboxOptions::default()
        };
        sim.add_sales(opts.dataset(Country::De).sales);
        let sales = sim.canonical_sales();
        assert!(!sales.is_empty());
        for s in &sales {
            assert!(s.validate().is_empty(), "{:?}", s.validate());
        }
        assert!(sales.iter().any(|s| s.kind == SaleKind::Refund));
        assert_eq!(
            berlin_midnight(NaiveDate::from_ymd_opt(2025, 3, 30).unwrap()),
            "2025-03-30T00:00:00.000+01:00"
        );
        assert_eq!(
            berlin_midnight(NaiveDate::from_ymd_opt(2025, 3, 31).unwrap()),
            "2025-03-31T00:00:00.000+02:00"
        );
    }

    #[test]
    fn list_parameters_are_checked() {
        let q: HashMap<String, String> = [(
            "voucherType".to_string(),
            "salesinvoice,salescreditnote".to_string(),
        )]
        .into();
        assert_eq!(
            list_param(&q, "voucherType", ALL_TYPES).unwrap(),
            vec!["salesinvoice", "salescreditnote"]
        );
        assert!(list_param(&q, "voucherStatus", ALL_STATUSES)
            .unwrap_err()
            .contains("voucherStatus"));
        let big: HashMap<String, String> = [("size".to_string(), "251".to_string())].into();
        assert!(page_params(&big).is_err());
        assert_eq!(page_params(&HashMap::new()).unwrap(), (0, 25));
    }
}
