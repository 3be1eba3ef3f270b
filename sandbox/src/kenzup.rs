//! The Kenzup generic sales export simulator, as `docs/connectors/kenzup.md` describes it.
//!
//! It keeps the generated sales *projected* onto what a Kenzup export row can express (the
//! canonical records a faithful connector must read), renders them as export rows, and
//! verifies the `X-SIGNATURE` of every request with the client's RSA public key.
//! Every generated store becomes a shop with a uuid derived from its id; every register a
//! `terminal_id`; every sale a row with `order_id` `{register}-{receipt}`. Every third row has
//! an empty `order_id` and every fifth an empty `terminal_id`, to exercise the fallback rules.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use axum::extract::{Path as UrlPath, RawQuery};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chrono::{DateTime, NaiveDate, Timelike, Utc};
use posbridge_plugin_api::model::{Customer, Loyalty, Party, Payment, Sale, SaleKind, Totals};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use rsa::RsaPublicKey;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::generator::{Country, Dataset};
use crate::registry::SandboxOptions;
use crate::server::Simulator;

/// The registry name, and the `source_system` of the projected sales.
pub const VENDOR: &str = "kenzup";
/// The client id accepted when the options name none.
pub const DEMO_CLIENT_ID: &str = "POS_DEMO";
/// The default currency of the projected sales (the connector's default: Kenz'up is Moroccan).
pub const CURRENCY: &str = "MAD";
/// The vendor's largest `items_per_page`, and its default.
pub const MAX_ITEMS_PER_PAGE: usize = 10_000;
pub const DEFAULT_ITEMS_PER_PAGE: usize = 1000;
/// How far a signature's timestamp may be from the simulator's clock.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;
/// `register_id` of a row whose `terminal_id` is empty (the connector's rule).
pub const DEFAULT_REGISTER: &str = "default";
/// File names of the demo key pair written into the data directory.
pub const PRIVATE_KEY_FILE: &str = "kenzup-demo-private.pem";
pub const PUBLIC_KEY_FILE: &str = "kenzup-demo-public.pem";
/// The request path of the export, with the shop uuid as a path parameter.
const EXPORT_ROUTE: &str = "/api/v1/ledger/export-sales/{shop_uuid}/json";

/// DEMO KEY — NOT A SECRET. A fixed 2048-bit RSA private key for the sandbox only, so that
/// starting the simulator needs no key generation. Never use it against the real Kenzup.
pub const DEMO_PRIVATE_KEY_PEM: &str = r"-----BEGIN PRIVATE KEY-----
MIIEuQIBADANBgkqhkiG9w0BAQEFAASCBKMwggSfAgEAAoIBAQDenI+WS739R0lq
W0i6XA1psXUR2t60DwNVUL4veRC3l5YtCCtoi5p+pv0Zl5V0+aFG8FhyVdhl0dP9
x94YeDNfTly8utO6M1kN1CJJ1itF1+Yjlzx9vzSkgfvc8/RFKl2FPbqZBCi4xCZy
zHil+XMfk1UfAKlZpKOoMahzBqsfFhBLUmRUMiJD6Z+zCUk7XyGcMpoZljD2jeN0
U732Zwq+k2Dgdzc/EK3AG+1yJbRRxrWK168QLlAJbhkQuDmAQ3BV4lddxb18geAi
mH4HP+WqSkR+EWN5k/QsKf4MLL8mrcXgbyRP2Qu2iphShXqOaXfBsYXRAWGXaEBP
IM1qwm6bAgMBAAECggEAafrOLybrEeg8zuobg0Fsz0tBKVlyWfWlyBmzGYXBDC6a
O+EeTVzdFfvpFiSA7lojylKFQRWWes785l6fYTXkezSi2OT3BLgKZxd9pXpVSqCA
+6O2FEWRydnqLuRjgAQt1s+vBMcineggR9oJfDb4dGlfhm15smg708ikYfKkSB0E
0zepyCY97E7StkCow+gDWM809z8w85gWXAA+qLJ51KJ9+9+/tXDcBGeU2ksTpx8S
Kh6+Wo6kKI+MmGTggLzpNDfqCQRJ+n5H6lu51mU4eWrLaQGIPWaxEHujfmqUl1UD
ZOyqFR7P9DrNyg6O4N9lw2FlJpNE6fKWf3QyeMsdhQKBgQD7fo6MKEUgD2URlLLr
usokKukmM619VM73hxSwZ3yF6miedxtu4VB1OyKz3AkPNAUoq/husjZbNGrBKMna
KgVzStsvl+/VrYUeanOEWLSk729VZBg/7HwTItAz+q/b5xbAbDQ8gryUrS1QVc98
X8CSLc/XoxhT1sNG4zwdSbNmpwKBgQDimYmHBHrnvVFTvDgOS3gA99DLxiNRCcn3
RPkoSmYvMTvRDv63ger9Wun2J5ZJ4hyyfjfMywmi6Wel75ttzz78X5Exs491Gr78
dCHOfFEMNFk243v6U2AzyFD3DT/VkTmE9+hSdr399psLTdwNZAsVufWr7nD3KZHl
7ARPiCMq7QJ/NwN4KzCj7l9vvGjKusYhccfxOGoViVUD8SGbZPs+Qg0E1aU4Wwju
kLZe4PlBAhJfDoaP0acqPMk6kQZbIV4P0yiMydxymkta00x1+H1vBqVZtVQv+cvB
WG5FHRm5XmEumOkShCoVFnDLeMdMm+hWN6PN013Z9H0GOnt6qu10UQJ/GMiyQhI7
Xx1Vx9LOTsHyXii8rYz+T97COElS9xUsF/1KjZMWSPvst8k5zbKGvY39lYg4ki2i
4C6nJ38NgPUp7nCFcOoyxpwmR3ZsPClcs/kFyPsYlEiKPR+ru1m3oaRApkp3Ho3e
Oei/DH13k/9dNwMf2644rM/fJUarMgex0QKBgQDJmY9t96jkEflxoS6w2w30Uj7d
95kMISIO9b/lGIpyLVPtdNiD1JHWdv9JUOaaPUJAjJMpbXaVoGeDTKPlfsav9lMn
vcswQjfVAB/TBkrQfDFKE78lcWSCVO/dKeMApTTD6vso0CQ3G5Lz/T1SScPMf3jU
tD4wuN6NuxO8NrPtZw==
-----END PRIVATE KEY-----";

/// The public half of [`DEMO_PRIVATE_KEY_PEM`]: what the simulator verifies with.
pub const DEMO_PUBLIC_KEY_PEM: &str = r"-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA3pyPlku9/UdJaltIulwN
abF1EdretA8DVVC+L3kQt5eWLQgraIuafqb9GZeVdPmhRvBYclXYZdHT/cfeGHgz
X05cvLrTujNZDdQiSdYrRdfmI5c8fb80pIH73PP0RSpdhT26mQQouMQmcsx4pflz
H5NVHwCpWaSjqDGocwarHxYQS1JkVDIiQ+mfswlJO18hnDKaGZYw9o3jdFO99mcK
vpNg4Hc3PxCtwBvtciW0Uca1itevEC5QCW4ZELg5gENwVeJXXcW9fIHgIph+Bz/l
qkpEfhFjeZP0LCn+DCy/Jq3F4G8kT9kLtoqYUoV6jml3wbGF0QFhl2hATyDNasJu
mwIDAQAB
-----END PUBLIC KEY-----";

/// One export row: the canonical sale a connector must read, and the vendor JSON it renders as.
#[derive(Clone, Debug)]
struct Row {
    sale: Sale,
    item: Value,
}

/// The simulator's data: shops and rows sorted by (timestamp, order_id, id).
#[derive(Default)]
struct Book {
    /// Generated store id → (shop uuid, commercial name).
    shops: BTreeMap<String, (String, String)>,
    store_names: HashMap<String, String>,
    rows: Vec<Row>,
    /// How many generated sales were offered so far (drives the every-n-th rules).
    offered: usize,
    /// The currency the projected sales are re-labelled to (the export names none).
    currency: String,
}

/// A uuid-shaped id derived from a generated store id (stable across runs).
fn shop_uuid(store_id: &str) -> String {
    let h = hex_digest(format!("kenzup-shop|{store_id}").as_bytes());
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

fn hex_digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A Moroccan-looking mobile number derived from a customer id.
fn mobile_number(customer_id: &str) -> String {
    let h = Sha256::digest(customer_id.as_bytes());
    let n = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) % 100_000_000;
    format!("+2126{n:08}")
}

/// A value's text as the connector hashes it: strings as they are, null as empty.
fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The documented fallback receipt number of a row without `order_id`.
fn derived_receipt_number(item: &Value) -> String {
    let fields = [
        "shop_id",
        "terminal_id",
        "agent_id",
        "sale_timestamp",
        "sale_amount",
        "earn_burn",
        "amount",
        "payment_type",
        "mobile_number",
    ];
    let joined = fields
        .iter()
        .map(|f| text(&item[*f]))
        .collect::<Vec<_>>()
        .join("|");
    format!("kz-{}", &hex_digest(joined.as_bytes())[..16])
}

impl Book {
    fn register_store(&mut self, store_id: &str, name: &str) {
        self.store_names
            .insert(store_id.to_string(), name.to_string());
    }

    fn shop_of(&mut self, store_id: &str) -> (String, String) {
        let name = self
            .store_names
            .get(store_id)
            .cloned()
            .unwrap_or_else(|| store_id.to_string());
        self.shops
            .entry(store_id.to_string())
            .or_insert_with(|| (shop_uuid(store_id), name))
            .clone()
    }

    /// Projects a generated sale onto a Kenzup row, or `None` for kinds Kenzup does not export.
    fn project(&mut self, g: Sale) -> Option<Row> {
        if matches!(g.kind, SaleKind::Training | SaleKind::NullReceipt) {
            return None;
        }
        let n = self.offered;
        self.offered += 1;
        let (shop, shop_name) = self.shop_of(&g.store_id);
        let utc = g.timestamp.with_timezone(&Utc);
        // Kenzup sends microseconds.
        let utc = utc
            .with_nanosecond(utc.nanosecond() / 1000 * 1000)
            .unwrap_or(utc);
        let gross = g.totals.gross;
        let method = g
            .payments
            .iter()
            .fold(None::<&Payment>, |best, p| match best {
                Some(b) if b.amount.abs() >= p.amount.abs() => Some(b),
                _ => Some(p),
            })
            .map_or_else(|| "cash".to_string(), |p| p.method.clone());
        let (earn_burn, points, pending) = match &g.loyalty {
            Some(l) if l.points_burned > Decimal::ZERO => {
                ("burn", l.points_burned, l.pending_approval)
            }
            Some(l) => ("earn", l.points_earned, l.pending_approval),
            None => ("earn", Decimal::ZERO, false),
        };
        let terminal = if n % 5 == 4 {
            String::new()
        } else {
            g.register_id.clone()
        };
        let order_id = if n % 3 == 2 {
            String::new()
        } else {
            format!("{}-{}", g.register_id, g.receipt_number)
        };
        let agent = g.cashier.as_ref().and_then(|c| c.id.clone());
        let mobile = g.customer.as_ref().map(|c| {
            c.phone
                .clone()
                .unwrap_or_else(|| mobile_number(c.id.as_deref().unwrap_or_default()))
        });
        let item = json!({
            "earn_burn": earn_burn,
            "amount": points.to_string(),
            "sale_amount": gross.to_string(),
            "payment_type": method,
            "points_pending_approval": pending,
            "shop_commercial_name": shop_name,
            "shop_id": shop,
            "type": "auto",
            "brand": "posbridge demo",
            "order_id": order_id,
            "terminal_id": terminal,
            "agent_id": agent,
            "sale_timestamp": utc.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            "mobile_number": mobile,
        });
        let register_id = if terminal.is_empty() {
            DEFAULT_REGISTER.to_string()
        } else {
            terminal
        };
        let receipt_number = if order_id.is_empty() {
            derived_receipt_number(&item)
        } else {
            order_id.clone()
        };
        let (points_earned, points_burned) = if earn_burn == "burn" {
            (Decimal::ZERO, points)
        } else {
            (points, Decimal::ZERO)
        };
        let sale = Sale {
            id: Sale::make_id(VENDOR, &shop, &register_id, &receipt_number),
            source_system: VENDOR.to_string(),
            store_id: shop,
            register_id,
            receipt_number,
            kind: if gross < Decimal::ZERO {
                SaleKind::Refund
            } else {
                SaleKind::Sale
            },
            cancels: None,
            business_day: utc.date_naive(),
            timestamp: utc.fixed_offset(),
            timezone: None,
            currency: self.currency.clone(),
            cashier: agent.map(|id| Party {
                id: Some(id),
                name: None,
            }),
            customer: mobile.map(|phone| Customer {
                id: None,
                name: None,
                external_id: None,
                phone: Some(phone),
            }),
            lines: vec![],
            payments: vec![Payment {
                method,
                amount: gross,
                currency: self.currency.clone(),
                psp_reference: None,
                method_raw: None,
            }],
            taxes: vec![],
            totals: Totals {
                net: gross,
                tax: Decimal::ZERO,
                gross,
                discount: Decimal::ZERO,
            },
            fiscal: None,
            loyalty: Some(Loyalty {
                points_earned,
                points_burned,
                pending_approval: pending,
            }),
            attachments: vec![],
            raw_id: (!order_id.is_empty()).then_some(order_id),
        };
        Some(Row { sale, item })
    }

    fn add(&mut self, generated: Vec<Sale>) {
        for g in generated {
            if let Some(row) = self.project(g) {
                self.rows.push(row);
            }
        }
        self.rows.sort_by(|a, b| {
            (a.sale.timestamp, text(&a.item["order_id"]), &a.sale.id).cmp(&(
                b.sale.timestamp,
                text(&b.item["order_id"]),
                &b.sale.id,
            ))
        });
    }
}

/// The Kenzup simulator: one client (id + public key), its shops and their export rows.
/// The defensible readings of the document the simulator answers; [`Variant::default`] is this
/// repository's first reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Variant {
    /// Export pages carry no `current_page` and `total_pages` (only `total_items` and `items`):
    /// the connector must page on until a short or empty page.
    pub without_page_numbers: bool,
}

pub struct KenzupSimulator {
    variant: Variant,
    client_id: String,
    public_key: VerifyingKey<Sha256>,
    book: RwLock<Book>,
    key_files: Option<(PathBuf, PathBuf)>,
}

/// Builds the simulator from German generated data (re-labelled to MAD) and writes the demo key
/// pair into the data directory (or a temporary folder when the options name none).
pub fn build(opts: &SandboxOptions) -> anyhow::Result<Arc<dyn Simulator>> {
    build_in_currency(opts, CURRENCY)
}

/// [`build`], with the sales re-labelled to `currency` (a shop that does not trade in dirhams).
pub fn build_in_currency(
    opts: &SandboxOptions,
    currency: &str,
) -> anyhow::Result<Arc<dyn Simulator>> {
    build_variant(opts, currency, Variant::default())
}

/// [`build_in_currency`], answering `variant`'s reading of the document.
pub fn build_variant(
    opts: &SandboxOptions,
    currency: &str,
    variant: Variant,
) -> anyhow::Result<Arc<dyn Simulator>> {
    let dir = opts
        .data_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("posbridge-kenzup-demo"));
    let key_files = write_demo_keys(&dir)?;
    let client_id = opts
        .api_key
        .clone()
        .unwrap_or_else(|| DEMO_CLIENT_ID.to_string());
    let mut sim = KenzupSimulator::new_in_currency(
        client_id,
        DEMO_PUBLIC_KEY_PEM,
        opts.dataset(Country::De),
        currency,
    )?;
    sim.key_files = Some(key_files);
    sim.variant = variant;
    Ok(Arc::new(sim))
}

/// Writes the demo key pair (private key readable by the owner only) and returns both paths.
pub fn write_demo_keys(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let private = dir.join(PRIVATE_KEY_FILE);
    let public = dir.join(PUBLIC_KEY_FILE);
    std::fs::write(&private, format!("{DEMO_PRIVATE_KEY_PEM}\n"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::write(&public, format!("{DEMO_PUBLIC_KEY_PEM}\n"))?;
    Ok((private, public))
}

impl KenzupSimulator {
    /// A simulator accepting `client_id` signed with the private half of `public_key_pem`.
    pub fn new(client_id: String, public_key_pem: &str, dataset: Dataset) -> anyhow::Result<Self> {
        Self::new_in_currency(client_id, public_key_pem, dataset, CURRENCY)
    }

    /// [`KenzupSimulator::new`], with every sale in `currency` instead of MAD.
    pub fn new_in_currency(
        client_id: String,
        public_key_pem: &str,
        dataset: Dataset,
        currency: &str,
    ) -> anyhow::Result<Self> {
        let key = RsaPublicKey::from_public_key_pem(public_key_pem.trim())
            .map_err(|e| anyhow::anyhow!("kenzup simulator: bad public key: {e}"))?;
        let mut book = Book {
            currency: currency.to_string(),
            ..Book::default()
        };
        for s in &dataset.stores {
            book.register_store(&s.id, &s.name);
        }
        // Shops exist from the start, even before they have sales.
        for s in &dataset.stores {
            book.shop_of(&s.id);
        }
        book.add(dataset.sales);
        Ok(Self {
            variant: Variant::default(),
            client_id,
            public_key: VerifyingKey::new(key),
            book: RwLock::new(book),
            key_files: None,
        })
    }

    /// The client id the simulator accepts.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The shop uuids, in the order of the generated stores' ids.
    pub fn shop_uuids(&self) -> Vec<String> {
        let book = self.book.read().unwrap_or_else(|e| e.into_inner());
        book.shops.values().map(|(uuid, _)| uuid.clone()).collect()
    }

    /// The rendered export rows (all shops), in export order: for tests.
    pub fn items(&self) -> Vec<Value> {
        let book = self.book.read().unwrap_or_else(|e| e.into_inner());
        book.rows.iter().map(|r| r.item.clone()).collect()
    }

    /// Checks the `X-SIGNATURE` header against the request; the error says why it is refused.
    fn verify_signature(&self, headers: &HeaderMap, path: &str) -> Result<(), String> {
        let header = headers
            .get("x-signature")
            .ok_or("the X-SIGNATURE header is missing")?
            .to_str()
            .map_err(|_| "the X-SIGNATURE header is not ASCII")?;
        let (content, signature) = header
            .rsplit_once(",signature=")
            .ok_or("the X-SIGNATURE header has no signature= field")?;
        let fields: Vec<(&str, &str)> = content
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let names: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
        if names != ["client_id", "host", "method", "timestamp", "uri", "payload"] {
            return Err(format!(
                "the signed fields must be client_id,host,method,timestamp,uri,payload in this order, got {}",
                names.join(",")
            ));
        }
        let get = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| *k == name)
                .map_or("", |(_, v)| *v)
        };
        if get("client_id") != self.client_id {
            return Err(format!("unknown client_id {:?}", get("client_id")));
        }
        let host = headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        if get("host") != host {
            return Err(format!(
                "host {:?} is not the requested host {host:?}",
                get("host")
            ));
        }
        if get("method") != "GET" {
            return Err(format!(
                "method {:?} is not the request's GET",
                get("method")
            ));
        }
        if get("uri") != path {
            return Err(format!(
                "uri {:?} is not the requested path {path:?}",
                get("uri")
            ));
        }
        if !get("payload").is_empty() {
            return Err("payload must be empty for GET".into());
        }
        let ts = DateTime::parse_from_rfc3339(get("timestamp"))
            .map_err(|e| format!("timestamp {:?} is not RFC 3339: {e}", get("timestamp")))?;
        let skew = (Utc::now() - ts.with_timezone(&Utc)).num_seconds().abs();
        if skew > MAX_CLOCK_SKEW_SECS {
            return Err(format!(
                "timestamp {} is {skew} s away from the server clock (max {MAX_CLOCK_SKEW_SECS})",
                get("timestamp")
            ));
        }
        let bytes = BASE64
            .decode(signature)
            .map_err(|_| "the signature is not base64")?;
        let signature =
            Signature::try_from(bytes.as_slice()).map_err(|_| "the signature is malformed")?;
        self.public_key
            .verify(content.as_bytes(), &signature)
            .map_err(|_| "the signature does not verify with the client's public key".to_string())
    }

    /// Answers one export request.
    fn export(&self, headers: &HeaderMap, uri: &Uri, shop: &str, query: Option<&str>) -> Response {
        if let Err(why) = self.verify_signature(headers, uri.path()) {
            return error(StatusCode::UNAUTHORIZED, "invalid_signature", &why);
        }
        let book = self.book.read().unwrap_or_else(|e| e.into_inner());
        if !book.shops.values().any(|(uuid, _)| uuid == shop) {
            return error(
                StatusCode::NOT_FOUND,
                "shop_not_found",
                &format!("no shop {shop}"),
            );
        }
        let q = match ExportParams::parse(query.unwrap_or_default()) {
            Ok(q) => q,
            Err(why) => return error(StatusCode::BAD_REQUEST, "bad_request", &why),
        };
        let matching: Vec<&Row> = book
            .rows
            .iter()
            .filter(|r| r.sale.store_id == shop && (q.start..=q.end).contains(&r.sale.business_day))
            .collect();
        let total_items = matching.len();
        let total_pages = total_items.div_ceil(q.items_per_page);
        let from = (q.page - 1)
            .saturating_mul(q.items_per_page)
            .min(total_items);
        let to = from.saturating_add(q.items_per_page).min(total_items);
        let items: Vec<&Value> = matching[from..to].iter().map(|r| &r.item).collect();
        let mut page = json!({
            "total_items": total_items,
            "total_pages": total_pages,
            "current_page": q.page,
            "items": items,
        });
        if self.variant.without_page_numbers {
            if let Some(o) = page.as_object_mut() {
                o.remove("total_pages");
                o.remove("current_page");
            }
        }
        Json(page).into_response()
    }
}

/// The export's query parameters, checked as documented.
#[derive(Debug, PartialEq, Eq)]
struct ExportParams {
    start: NaiveDate,
    end: NaiveDate,
    page: usize,
    items_per_page: usize,
}

impl ExportParams {
    fn parse(query: &str) -> Result<Self, String> {
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if !matches!(k, "start" | "end" | "page" | "items_per_page") {
                return Err(format!(
                    "unknown parameter {k:?} (expected start, end, page, items_per_page)"
                ));
            }
            if seen.insert(k, v).is_some() {
                return Err(format!("parameter {k:?} given twice"));
            }
        }
        let date = |name: &str| -> Result<NaiveDate, String> {
            let v = seen
                .get(name)
                .ok_or_else(|| format!("{name} is required (YYYY-MM-DD)"))?;
            if v.len() != 10 {
                return Err(format!("{name}={v} is not YYYY-MM-DD"));
            }
            NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map_err(|_| format!("{name}={v} is not YYYY-MM-DD"))
        };
        let int = |name: &str, default: usize| -> Result<usize, String> {
            seen.get(name).map_or(Ok(default), |v| {
                v.parse()
                    .map_err(|_| format!("{name}={v} is not an integer"))
            })
        };
        let (start, end) = (date("start")?, date("end")?);
        if start > end {
            return Err(format!("start {start} is after end {end}"));
        }
        let page = int("page", 1)?;
        if page == 0 {
            return Err("page must be at least 1".into());
        }
        let items_per_page = int("items_per_page", DEFAULT_ITEMS_PER_PAGE)?;
        if !(1..=MAX_ITEMS_PER_PAGE).contains(&items_per_page) {
            return Err(format!(
                "items_per_page must be between 1 and {MAX_ITEMS_PER_PAGE}"
            ));
        }
        Ok(Self {
            start,
            end,
            page,
            items_per_page,
        })
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": code, "message": message }))).into_response()
}

impl Simulator for KenzupSimulator {
    fn vendor(&self) -> &'static str {
        VENDOR
    }

    fn router(self: Arc<Self>) -> Router {
        Router::new().route(
            EXPORT_ROUTE,
            get(
                move |UrlPath(shop): UrlPath<String>,
                      RawQuery(query): RawQuery,
                      uri: Uri,
                      headers: HeaderMap| async move {
                    self.export(&headers, &uri, &shop, query.as_deref())
                },
            ),
        )
    }

    fn credentials(&self) -> Vec<(String, String)> {
        let mut c = vec![
            ("client_id".to_string(), self.client_id.clone()),
            ("shop_uuids".to_string(), self.shop_uuids().join(",")),
        ];
        if let Some((private, public)) = &self.key_files {
            c.push((
                "private_key_file (DEMO key)".to_string(),
                private.display().to_string(),
            ));
            c.push(("public_key_file".to_string(), public.display().to_string()));
        }
        c
    }

    fn canonical_sales(&self) -> Vec<Sale> {
        let book = self.book.read().unwrap_or_else(|e| e.into_inner());
        book.rows.iter().map(|r| r.sale.clone()).collect()
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
    use crate::generator::GenSpec;
    use rsa::pkcs1v15::SigningKey;
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::{SignatureEncoding, Signer};
    use rsa::RsaPrivateKey;

    fn sim() -> KenzupSimulator {
        let spec = GenSpec {
            days: 2,
            sales_per_day: 6,
            ..GenSpec::default()
        };
        KenzupSimulator::new(
            DEMO_CLIENT_ID.into(),
            DEMO_PUBLIC_KEY_PEM,
            Dataset::generate(spec),
        )
        .unwrap()
    }

    fn signed_headers(client: &str, host: &str, path: &str, ts: DateTime<Utc>) -> HeaderMap {
        let key = RsaPrivateKey::from_pkcs8_pem(DEMO_PRIVATE_KEY_PEM).unwrap();
        let content = format!(
            "client_id={client},host={host},method=GET,timestamp={},uri={path},payload=",
            ts.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
        );
        let sig = SigningKey::<Sha256>::new(key).sign(content.as_bytes());
        let mut h = HeaderMap::new();
        h.insert("host", host.parse().unwrap());
        h.insert(
            "x-signature",
            format!("{content},signature={}", BASE64.encode(sig.to_bytes()))
                .parse()
                .unwrap(),
        );
        h
    }

    fn call(
        sim: &KenzupSimulator,
        headers: &HeaderMap,
        shop: &str,
        query: &str,
    ) -> (StatusCode, Value) {
        let path = format!("/api/v1/ledger/export-sales/{shop}/json");
        let uri: Uri = format!("{path}?{query}").parse().unwrap();
        let resp = sim.export(headers, &uri, shop, Some(query));
        let status = resp.status();
        let body = body_json(resp);
        (status, body)
    }

    fn body_json(resp: Response) -> Value {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = rt
            .block_on(axum::body::to_bytes(resp.into_body(), usize::MAX))
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn signed_requests_page_through_a_shop() {
        let sim = sim();
        let shop = sim.shop_uuids()[0].clone();
        let path = format!("/api/v1/ledger/export-sales/{shop}/json");
        let h = signed_headers(DEMO_CLIENT_ID, "127.0.0.1:9", &path, Utc::now());
        let all = sim
            .canonical_sales()
            .into_iter()
            .filter(|s| s.store_id == shop)
            .count();
        let (st, body) = call(
            &sim,
            &h,
            &shop,
            "start=2026-01-01&end=2026-12-31&page=1&items_per_page=5",
        );
        assert_eq!(st, StatusCode::OK, "{body}");
        assert_eq!(body["total_items"], all);
        assert_eq!(body["total_pages"], all.div_ceil(5));
        assert_eq!(body["items"].as_array().unwrap().len(), 5);
        let last = all.div_ceil(5);
        let (_, body) = call(
            &sim,
            &h,
            &shop,
            &format!("start=2026-01-01&end=2026-12-31&page={last}&items_per_page=5"),
        );
        assert_eq!(
            body["items"].as_array().unwrap().len(),
            all - 5 * (last - 1)
        );
        let (_, body) = call(
            &sim,
            &h,
            &shop,
            &format!(
                "start=2026-01-01&end=2026-12-31&page={}&items_per_page=5",
                last + 1
            ),
        );
        assert!(body["items"].as_array().unwrap().is_empty());
    }

    #[test]
    fn bad_signatures_are_401_and_bad_parameters_400() {
        let sim = sim();
        let shop = sim.shop_uuids()[0].clone();
        let path = format!("/api/v1/ledger/export-sales/{shop}/json");
        let q = "start=2026-01-01&end=2026-01-31";
        let stale = signed_headers(
            DEMO_CLIENT_ID,
            "h",
            &path,
            Utc::now() - chrono::Duration::minutes(6),
        );
        let (st, body) = call(&sim, &stale, &shop, q);
        assert_eq!(
            (st, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_signature"))
        );
        let other_client = signed_headers("POS_X", "h", &path, Utc::now());
        assert_eq!(
            call(&sim, &other_client, &shop, q).0,
            StatusCode::UNAUTHORIZED
        );
        let wrong_uri = signed_headers(
            DEMO_CLIENT_ID,
            "h",
            "/api/v1/ledger/export_sales/x/json",
            Utc::now(),
        );
        assert_eq!(call(&sim, &wrong_uri, &shop, q).0, StatusCode::UNAUTHORIZED);
        let mut tampered = signed_headers(DEMO_CLIENT_ID, "h", &path, Utc::now());
        let v = tampered["x-signature"]
            .to_str()
            .unwrap()
            .replace("method=GET", "method=PUT");
        tampered.insert("x-signature", v.parse().unwrap());
        assert_eq!(call(&sim, &tampered, &shop, q).0, StatusCode::UNAUTHORIZED);
        assert_eq!(
            call(&sim, &HeaderMap::new(), &shop, q).0,
            StatusCode::UNAUTHORIZED
        );

        let ok = signed_headers(DEMO_CLIENT_ID, "h", &path, Utc::now());
        for bad in [
            "start=2026-01-01",
            "Start=2026-01-01&end=2026-01-02",
            "start=2026-1-1&end=2026-01-02",
            "start=2026-01-03&end=2026-01-02",
            "start=2026-01-01&end=2026-01-02&items_per_page=10001",
            "start=2026-01-01&end=2026-01-02&page=0",
        ] {
            let (st, body) = call(&sim, &ok, &shop, bad);
            assert_eq!(
                (st, body["error"].as_str()),
                (StatusCode::BAD_REQUEST, Some("bad_request")),
                "{bad}"
            );
        }
        let other_path = "/api/v1/ledger/export-sales/nope/json";
        let h = signed_headers(DEMO_CLIENT_ID, "h", other_path, Utc::now());
        assert_eq!(call(&sim, &h, "nope", q).0, StatusCode::NOT_FOUND);
    }

    #[test]
    fn the_projection_reconciles_and_uses_both_fallbacks() {
        let sim = sim();
        let sales = sim.canonical_sales();
        assert!(!sales.is_empty());
        assert!(sales
            .iter()
            .all(|s| s.validate().is_empty() && s.currency == CURRENCY));
        assert!(sales.iter().any(|s| s.register_id == DEFAULT_REGISTER));
        assert!(sales.iter().any(|s| s.receipt_number.starts_with("kz-")));
        let ids: std::collections::HashSet<_> = sales.iter().map(|s| &s.id).collect();
        assert_eq!(ids.len(), sales.len(), "ids are unique");
        assert!(sim.shop_uuids().len() >= 2);
        let items = sim.items();
        assert_eq!(items.len(), sales.len());
        assert!(items.iter().all(|i| i["sale_amount"].is_string()));
    }

    #[test]
    fn another_currency_relabels_every_sale_and_payment() {
        let spec = GenSpec {
            days: 1,
            sales_per_day: 4,
            ..GenSpec::default()
        };
        let sim = KenzupSimulator::new_in_currency(
            DEMO_CLIENT_ID.into(),
            DEMO_PUBLIC_KEY_PEM,
            Dataset::generate(spec),
            "EUR",
        )
        .unwrap();
        let sales = sim.canonical_sales();
        assert!(!sales.is_empty());
        assert!(sales.iter().all(|s| s.validate().is_empty()
            && s.currency == "EUR"
            && s.payments.iter().all(|p| p.currency == "EUR")));
    }
}
