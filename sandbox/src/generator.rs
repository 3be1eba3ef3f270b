//! The seeded generator of realistic canonical retail data: stores, registers, cashiers, a
//! product catalogue and sales that reconcile to the cent.
//!
//! Everything is drawn from one `ChaCha8Rng` stream seeded with [`GenSpec::seed`], in a fixed
//! order (catalogue, then day by day, store by store, register by register), so the same spec
//! always gives the same data and [`Dataset::extend_days`] continues exactly where a longer
//! [`Dataset::generate`] would have gone on.

use std::collections::BTreeMap;
use std::io::Write;

use base64::Engine;
use chrono::{DateTime, Duration, FixedOffset, NaiveDate};
use posbridge_plugin_api::model::{
    round_money, Category, Customer, FiscalSignature, Loyalty, Party, Payment, PaymentMethod,
    Product, Register, RksvSignature, Sale, SaleKind, SaleLine, TaxLine, Totals, TseSignature,
};
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::local_time::{self, Tz};

/// The `source_system` of generated sales; vendor simulators re-label them.
pub const SOURCE_SYSTEM: &str = "generated";

/// Which country's fiscal rules the stores follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Country {
    /// Germany: EUR, 7/19 % VAT, TSE signatures, Europe/Berlin.
    De,
    /// Austria: EUR, 10/13/20 % VAT, RKSV fields, Europe/Vienna.
    At,
    /// Stores alternate: even store indexes German, odd ones Austrian.
    Mixed,
}

impl Country {
    /// The country of the store with this 0-based index.
    fn of_store(self, index: u32) -> Country {
        match self {
            Country::Mixed if index % 2 == 1 => Country::At,
            Country::Mixed => Country::De,
            c => c,
        }
    }

    fn iso(self) -> &'static str {
        match self {
            Country::At => "AT",
            _ => "DE",
        }
    }

    fn zone(self) -> Tz {
        match self {
            Country::At => local_time::Vienna,
            _ => local_time::Berlin,
        }
    }
}

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenSpec {
    pub seed: u64,
    pub stores: u32,
    pub registers_per_store: u32,
    pub days: u32,
    /// Receipts per register and day.
    pub sales_per_day: u32,
    /// The first business day.
    pub start: NaiveDate,
    pub country: Country,
}

impl Default for GenSpec {
    fn default() -> Self {
        Self {
            seed: 42,
            stores: 2,
            registers_per_store: 2,
            days: 3,
            sales_per_day: 20,
            start: NaiveDate::from_ymd_opt(2026, 1, 5).expect("valid date"),
            country: Country::De,
        }
    }
}

/// A store (branch).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Store {
    pub id: String,
    pub name: String,
    /// ISO 3166 code: `DE` or `AT`.
    pub country: String,
    pub currency: String,
    /// IANA time zone of the business day.
    pub timezone: String,
}

/// A generated data set: master data and sales (ordered by day, store, register, time).
#[derive(Clone, Debug)]
pub struct Dataset {
    pub spec: GenSpec,
    pub stores: Vec<Store>,
    pub registers: Vec<Register>,
    pub cashiers: Vec<Party>,
    pub categories: Vec<Category>,
    /// One catalogue per country present; ids start with the country code (`DE-P0001`).
    pub products: Vec<Product>,
    pub payment_methods: Vec<PaymentMethod>,
    pub sales: Vec<Sale>,
    state: GenState,
}

/// Where the generator stands, so that more days can follow.
#[derive(Clone, Debug)]
struct GenState {
    rng: ChaCha8Rng,
    days_done: u32,
    registers: Vec<RegisterState>,
    catalogue_de: std::ops::Range<usize>,
    catalogue_at: std::ops::Range<usize>,
    /// The index into `CATEGORIES` of each product.
    product_category: Vec<usize>,
}

/// The running counters of one register.
#[derive(Clone, Debug)]
struct RegisterState {
    store: usize,
    country: Country,
    next_receipt: u64,
    tse_serial: String,
    tse_signature_counter: u64,
    tse_transaction: u64,
    /// RKSV turnover counter in cents.
    rksv_turnover_cents: i64,
    rksv_last_signature: String,
    /// Indexes into `Dataset::sales` of today's plain sales that may still be cancelled.
    cancellable: Vec<usize>,
}

/// Tax classes of the catalogue, mapped to each country's rates.
#[derive(Clone, Copy, Debug)]
enum TaxClass {
    Food,
    General,
    Plants,
}

impl TaxClass {
    fn rate(self, country: Country) -> Decimal {
        let pct = match (country, self) {
            (Country::At, TaxClass::Food) => 10,
            (Country::At, TaxClass::Plants) => 13,
            (Country::At, TaxClass::General) => 20,
            (_, TaxClass::Food | TaxClass::Plants) => 7,
            (_, TaxClass::General) => 19,
        };
        Decimal::from(pct)
    }
}

/// Category name, tax class, sold by weight, and its items with a typical shelf price in cents
/// (per kg for weighed items).
type CategorySeed = (&'static str, TaxClass, bool, &'static [(&'static str, i64)]);

#[rustfmt::skip]
const CATEGORIES: &[CategorySeed] = &[
    ("Obst & Gemüse", TaxClass::Food, true, &[
        ("Äpfel Elstar", 249), ("Bananen", 169), ("Tomaten", 349), ("Karotten", 129),
        ("Zwiebeln", 149), ("Paprika rot", 499), ("Kartoffeln festkochend", 119), ("Birnen", 299),
    ]),
    ("Molkerei", TaxClass::Food, false, &[
        ("Vollmilch 3,5 %", 119), ("Joghurt natur", 79), ("Butter", 229), ("Gouda jung", 249),
        ("Emmentaler", 299), ("Schlagsahne", 99), ("Speisequark", 89),
    ]),
    ("Backwaren", TaxClass::Food, false, &[
        ("Semmel", 39), ("Bauernbrot", 349), ("Croissant", 89), ("Vollkornbrot", 299),
        ("Laugenbreze", 69), ("Apfelstrudel", 249),
    ]),
    ("Getränke", TaxClass::General, false, &[
        ("Mineralwasser 1,5 l", 59), ("Apfelsaft 1 l", 169), ("Orangensaft 1 l", 219),
        ("Cola 1,25 l", 149), ("Bier 0,5 l", 99), ("Rotwein 0,75 l", 699),
    ]),
    ("Kaffee & Tee", TaxClass::Food, false, &[
        ("Kaffee gemahlen 500 g", 599), ("Espressobohnen 1 kg", 1399), ("Schwarztee", 249),
        ("Kräutertee", 199), ("Kakao", 329),
    ]),
    ("Süßwaren", TaxClass::Food, false, &[
        ("Schokolade Vollmilch", 119), ("Gummibärchen", 109), ("Butterkekse", 149),
        ("Nougatcreme", 329), ("Marzipanbrot", 199),
    ]),
    ("Drogerie", TaxClass::General, false, &[
        ("Zahnpasta", 189), ("Duschgel", 149), ("Shampoo", 299), ("Handcreme", 249),
        ("Taschentücher", 179), ("Deospray", 229),
    ]),
    ("Haushalt", TaxClass::General, false, &[
        ("Spülmittel", 129), ("Küchenrolle", 279), ("Müllbeutel", 199), ("Batterien AA", 599),
        ("Glühbirne LED", 449), ("Tragetasche", 29),
    ]),
    ("Blumen & Pflanzen", TaxClass::Plants, false, &[
        ("Tulpenstrauß", 499), ("Rosen 10 Stück", 1299), ("Basilikum im Topf", 229),
        ("Orchidee", 1499), ("Blumenerde 20 l", 599),
    ]),
];

/// Variants of each item: name prefix and price factor in percent.
const VARIANTS: &[(&str, i64)] = &[("", 100), ("Bio ", 135), ("Premium ", 160)];

const CITIES_DE: &[&str] = &[
    "Berlin Mitte",
    "Hamburg Altona",
    "München Schwabing",
    "Köln Ehrenfeld",
    "Leipzig Zentrum",
    "Frankfurt Bornheim",
];
const CITIES_AT: &[&str] = &[
    "Wien Neubau",
    "Graz Lend",
    "Linz Urfahr",
    "Salzburg Lehen",
    "Innsbruck Wilten",
];
const FIRST_NAMES: &[&str] = &[
    "Anna", "Lukas", "Marie", "Jonas", "Sophie", "Felix", "Laura", "Paul", "Lena", "Elias",
    "Hannah", "Tobias",
];
const LAST_NAMES: &[&str] = &[
    "Müller", "Schmidt", "Gruber", "Huber", "Weber", "Wagner", "Becker", "Pichler", "Hofmann",
    "Steiner", "Bauer",
];

/// Normalized payment method ids with their display names.
const PAYMENT_METHODS: &[(&str, &str, &str)] = &[
    ("PM-CASH", "Bar", "cash"),
    ("PM-CARD", "EC-Karte", "card"),
    ("PM-CREDIT", "Kreditkarte", "card"),
    ("PM-VOUCHER", "Gutschein", "voucher"),
    ("PM-INVOICE", "Rechnung", "invoice"),
];

/// Opening hours (local seconds after midnight) in which receipts are issued.
const OPEN_SECS: u32 = 8 * 3600;
const CLOSE_SECS: u32 = 20 * 3600;

fn cents(c: i64) -> Decimal {
    Decimal::new(c, 2)
}

/// An EAN-13 with a correct check digit.
fn ean13(prefix: &str, number: u64) -> String {
    let body = format!("{prefix}{:0width$}", number, width = 12 - prefix.len());
    let sum: u32 = body
        .bytes()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

fn random_base64(rng: &mut ChaCha8Rng, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rng.fill_bytes(&mut buf);
    base64::engine::general_purpose::STANDARD.encode(buf)
}

fn random_hex(rng: &mut ChaCha8Rng, bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rng.gen::<u8>()))
        .collect()
}

/// A shelf price in cents near a typical one (±15 %), ending in 9 (x.x9).
fn shelf_price(rng: &mut ChaCha8Rng, typical: i64) -> i64 {
    let p = typical * rng.gen_range(85..=115) / 100;
    ((p / 10) * 10 + 9).max(9)
}

/// Splits `gross` into net and tax at `rate` %: `net = round(gross / (1 + rate/100), 2)`.
fn net_and_tax(gross: Decimal, rate: Decimal, currency: &str) -> (Decimal, Decimal) {
    let net = round_money(
        gross / (Decimal::ONE + rate / Decimal::ONE_HUNDRED),
        currency,
    );
    (net, gross - net)
}

/// A line sold: the product, how many and the gross discount on the line.
fn make_line(product: &Product, category: &str, quantity: Decimal, discount: Decimal) -> SaleLine {
    let gross = round_money(quantity * product.price - discount, &product.currency);
    let (net, tax) = net_and_tax(gross, product.tax_rate, &product.currency);
    SaleLine {
        product_id: Some(product.id.clone()),
        name: product.name.clone(),
        category: Some(category.to_string()),
        barcode: product.barcode.clone(),
        quantity,
        unit_price: product.price,
        discount,
        tax_rate: product.tax_rate,
        net,
        tax,
        gross,
    }
}

/// The tax breakdown per rate (ascending), summed from the lines.
fn tax_breakdown(lines: &[SaleLine]) -> Vec<TaxLine> {
    let mut per_rate: BTreeMap<Decimal, TaxLine> = BTreeMap::new();
    for l in lines {
        let t = per_rate.entry(l.tax_rate).or_insert_with(|| TaxLine {
            rate: l.tax_rate,
            net: Decimal::ZERO,
            tax: Decimal::ZERO,
            gross: Decimal::ZERO,
        });
        t.net += l.net;
        t.tax += l.tax;
        t.gross += l.gross;
    }
    per_rate.into_values().collect()
}

fn totals_of(taxes: &[TaxLine], lines: &[SaleLine]) -> Totals {
    Totals {
        net: taxes.iter().map(|t| t.net).sum(),
        tax: taxes.iter().map(|t| t.tax).sum(),
        gross: taxes.iter().map(|t| t.gross).sum(),
        discount: lines.iter().map(|l| l.discount).sum(),
    }
}

/// A receipt amount in RKSV's QR format: comma decimals, two places.
fn rksv_amount(d: Decimal) -> String {
    format!("{:.2}", d).replace('.', ",")
}

impl Dataset {
    /// Generates master data and `spec.days` days of sales.
    pub fn generate(spec: GenSpec) -> Dataset {
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        let mut stores = Vec::new();
        let mut registers = Vec::new();
        let mut cashiers = Vec::new();
        let mut register_states = Vec::new();
        let (mut de_count, mut at_count) = (0usize, 0usize);
        for s in 0..spec.stores {
            let country = spec.country.of_store(s);
            let (cities, n) = match country {
                Country::At => (CITIES_AT, &mut at_count),
                _ => (CITIES_DE, &mut de_count),
            };
            let city = cities[*n % cities.len()];
            let name = if *n < cities.len() {
                format!("Filiale {city}")
            } else {
                format!("Filiale {city} {}", *n / cities.len() + 1)
            };
            *n += 1;
            let store_id = format!("S{:03}", s + 1);
            stores.push(Store {
                id: store_id.clone(),
                name,
                country: country.iso().to_string(),
                currency: "EUR".to_string(),
                timezone: country.zone().name().to_string(),
            });
            for c in 0..3 {
                let first = FIRST_NAMES.choose(&mut rng).expect("names");
                let last = LAST_NAMES.choose(&mut rng).expect("names");
                cashiers.push(Party {
                    id: Some(format!("{store_id}-C{}", c + 1)),
                    name: Some(format!("{first} {last}")),
                });
            }
            for r in 0..spec.registers_per_store {
                let register_id = format!("{store_id}-K{}", r + 1);
                let tse_serial = random_hex(&mut rng, 32);
                let serial = match country {
                    Country::At => format!("RKSV-{register_id}"),
                    _ => tse_serial.clone(),
                };
                registers.push(Register {
                    id: register_id,
                    store_id: store_id.clone(),
                    name: format!("Kasse {}", r + 1),
                    serial_number: Some(serial),
                });
                let tse_transaction = rng.gen_range(1_000..50_000);
                register_states.push(RegisterState {
                    store: s as usize,
                    country,
                    next_receipt: 1,
                    tse_serial,
                    tse_signature_counter: tse_transaction * 2 + rng.gen_range(0..10),
                    tse_transaction,
                    rksv_turnover_cents: 0,
                    rksv_last_signature: random_base64(&mut rng, 8),
                    cancellable: Vec::new(),
                });
            }
        }

        let categories: Vec<Category> = CATEGORIES
            .iter()
            .enumerate()
            .map(|(i, (name, ..))| Category {
                id: format!("CAT-{:02}", i + 1),
                name: name.to_string(),
                parent_id: None,
            })
            .collect();

        // One shelf price per item and variant, shared by the countries' catalogues.
        let mut base: Vec<(usize, String, i64)> = Vec::new();
        for (ci, (_, _, weighed, items)) in CATEGORIES.iter().enumerate() {
            for (item, typical) in items.iter() {
                let price = shelf_price(&mut rng, *typical);
                for (prefix, factor) in VARIANTS {
                    let name = if *weighed {
                        format!("{prefix}{item}, lose je kg")
                    } else {
                        format!("{prefix}{item}")
                    };
                    base.push((ci, name, (price * factor / 100 / 10) * 10 + 9));
                }
            }
        }
        let countries: Vec<Country> = [Country::De, Country::At]
            .into_iter()
            .filter(|c| (0..spec.stores).any(|s| spec.country.of_store(s) == *c))
            .collect();
        let mut products = Vec::new();
        let (mut catalogue_de, mut catalogue_at) = (0..0, 0..0);
        let mut product_category = Vec::new();
        for country in countries {
            let range = products.len()..products.len() + base.len();
            match country {
                Country::At => catalogue_at = range,
                _ => catalogue_de = range,
            }
            let iso = country.iso();
            let ean_prefix = if country == Country::At { "900" } else { "400" };
            for (i, (ci, name, price)) in base.iter().enumerate() {
                let n = i + 1;
                product_category.push(*ci);
                products.push(Product {
                    id: format!("{iso}-P{n:04}"),
                    name: name.clone(),
                    short_name: Some(name.chars().take(20).collect()),
                    category_id: Some(categories[*ci].id.clone()),
                    sku: Some(format!("A-{n:05}")),
                    barcode: Some(ean13(ean_prefix, 100_000 + n as u64)),
                    price: cents(*price),
                    currency: "EUR".to_string(),
                    tax_rate: CATEGORIES[*ci].1.rate(country),
                    active: true,
                });
            }
        }

        let payment_methods = PAYMENT_METHODS
            .iter()
            .map(|(id, name, method)| PaymentMethod {
                id: id.to_string(),
                name: name.to_string(),
                method: Some(method.to_string()),
            })
            .collect();

        let days = spec.days;
        let mut ds = Dataset {
            spec: GenSpec { days: 0, ..spec },
            stores,
            registers,
            cashiers,
            categories,
            products,
            payment_methods,
            sales: Vec::new(),
            state: GenState {
                rng,
                days_done: 0,
                registers: register_states,
                catalogue_de,
                catalogue_at,
                product_category,
            },
        };
        ds.sales.reserve(
            (days as usize)
                .saturating_mul(ds.state.registers.len())
                .saturating_mul(ds.spec.sales_per_day as usize),
        );
        ds.generate_days(days);
        ds
    }

    /// Generates `days` more days after the last one (same seed stream, continuing receipt
    /// numbers and fiscal counters), appends them to `sales` and returns them: for
    /// incremental tests.
    pub fn extend_days(&mut self, days: u32) -> Vec<Sale> {
        let first_new = self.sales.len();
        self.generate_days(days);
        self.sales[first_new..].to_vec()
    }

    /// Appends `days` more days of sales.
    fn generate_days(&mut self, days: u32) {
        for _ in 0..days {
            let day = self.spec.start + Duration::days(i64::from(self.state.days_done));
            for r in 0..self.state.registers.len() {
                self.generate_register_day(r, day);
            }
            self.state.days_done += 1;
        }
        self.spec.days += days;
    }

    /// The index range of one country's catalogue in `products`.
    fn catalogue(&self, country: Country) -> std::ops::Range<usize> {
        match country {
            Country::At => self.state.catalogue_at.clone(),
            _ => self.state.catalogue_de.clone(),
        }
    }

    fn generate_register_day(&mut self, r: usize, day: NaiveDate) {
        let per_day = self.spec.sales_per_day as usize;
        let zone = self.state.registers[r].country.zone();
        let mut times: Vec<u32> = (0..per_day)
            .map(|_| self.state.rng.gen_range(OPEN_SECS..CLOSE_SECS))
            .collect();
        times.sort_unstable();
        self.state.registers[r].cancellable.clear();
        for secs in times {
            let local =
                day.and_hms_opt(0, 0, 0).expect("midnight") + Duration::seconds(i64::from(secs));
            // Opening hours never touch the hour of a summer-time switch.
            let timestamp = local_time::from_local(zone, local);
            let sale = self.generate_sale(r, day, timestamp);
            if sale.kind == SaleKind::Sale {
                let idx = self.sales.len();
                self.state.registers[r].cancellable.push(idx);
            }
            self.sales.push(sale);
        }
    }

    fn generate_sale(
        &mut self,
        r: usize,
        day: NaiveDate,
        timestamp: DateTime<FixedOffset>,
    ) -> Sale {
        let (store_idx, country) = {
            let st = &self.state.registers[r];
            (st.store, st.country)
        };
        let store = self.stores[store_idx].clone();
        let register_id = self.registers[r].id.clone();
        let receipt_no = self.state.registers[r].next_receipt;
        self.state.registers[r].next_receipt += 1;
        let receipt_number = receipt_no.to_string();
        let currency = store.currency.clone();
        let cashier = {
            let start = store_idx * 3;
            let pick = self.state.rng.gen_range(0..3);
            self.cashiers[start + pick].clone()
        };

        let draw: f64 = self.state.rng.gen();
        let mut sale = Sale {
            id: Sale::make_id(SOURCE_SYSTEM, &store.id, &register_id, &receipt_number),
            source_system: SOURCE_SYSTEM.to_string(),
            store_id: store.id.clone(),
            register_id: register_id.clone(),
            receipt_number,
            kind: SaleKind::Sale,
            cancels: None,
            business_day: day,
            timestamp,
            timezone: Some(store.timezone.clone()),
            currency: currency.clone(),
            cashier: Some(cashier),
            customer: None,
            lines: Vec::new(),
            payments: Vec::new(),
            taxes: Vec::new(),
            totals: Totals::default(),
            fiscal: None,
            loyalty: None,
            attachments: Vec::new(),
            raw_id: None,
        };

        let cancellable = !self.state.registers[r].cancellable.is_empty();
        if draw < 0.005 {
            sale.kind = SaleKind::NullReceipt;
        } else if draw < 0.015 {
            sale.kind = SaleKind::Training;
            self.fill_basket(&mut sale, country);
            self.fill_payments(&mut sale);
        } else if draw < 0.035 {
            sale.kind = SaleKind::Refund;
            self.fill_refund(&mut sale, country);
        } else if draw < 0.045 && cancellable {
            self.fill_cancellation(&mut sale, r);
        } else {
            self.fill_basket(&mut sale, country);
            self.fill_customer(&mut sale);
            self.fill_payments(&mut sale);
        }
        sale.fiscal = Some(self.sign(&mut sale, r, country));
        sale
    }

    /// 1–N lines from the country's catalogue, ~15 % of them discounted.
    fn fill_basket(&mut self, sale: &mut Sale, country: Country) {
        let range = self.catalogue(country);
        // Mostly small baskets, sometimes a big shop.
        let n_lines = match self.state.rng.gen_range(0..100) {
            0..=34 => 1,
            35..=59 => 2,
            60..=74 => 3,
            75..=84 => 4,
            85..=94 => self.state.rng.gen_range(5..=8),
            _ => self.state.rng.gen_range(9..=15),
        };
        for _ in 0..n_lines {
            let pi = self.state.rng.gen_range(range.clone());
            let p = &self.products[pi];
            let ci = self.state.product_category[pi];
            let weighed = CATEGORIES[ci].2;
            let category = CATEGORIES[ci].0;
            let quantity = if weighed {
                Decimal::new(self.state.rng.gen_range(150..2500), 3)
            } else if self.state.rng.gen_bool(0.8) {
                Decimal::ONE
            } else {
                Decimal::from(self.state.rng.gen_range(2..=6))
            };
            let amount = round_money(quantity * p.price, &p.currency);
            let discount = if amount >= cents(20) && self.state.rng.gen_bool(0.15) {
                let pct = *[10i64, 20, 25, 30, 50]
                    .choose(&mut self.state.rng)
                    .expect("pcts");
                round_money(amount * Decimal::new(pct, 2), &p.currency)
            } else {
                Decimal::ZERO
            };
            sale.lines.push(make_line(p, category, quantity, discount));
        }
        sale.taxes = tax_breakdown(&sale.lines);
        sale.totals = totals_of(&sale.taxes, &sale.lines);
    }

    /// A return of one or two articles: negative quantities and amounts, paid back in cash or to the card.
    fn fill_refund(&mut self, sale: &mut Sale, country: Country) {
        let range = self.catalogue(country);
        for _ in 0..self.state.rng.gen_range(1..=2) {
            let pi = self.state.rng.gen_range(range.clone());
            let p = &self.products[pi];
            let category = CATEGORIES[self.state.product_category[pi]].0;
            let quantity = -Decimal::from(self.state.rng.gen_range(1..=2));
            sale.lines
                .push(make_line(p, category, quantity, Decimal::ZERO));
        }
        sale.taxes = tax_breakdown(&sale.lines);
        sale.totals = totals_of(&sale.taxes, &sale.lines);
        let method = if self.state.rng.gen_bool(0.6) {
            "cash"
        } else {
            "card"
        };
        sale.payments
            .push(self.payment(method, sale.totals.gross, &sale.currency));
    }

    /// The exact negation of one of today's earlier plain sales of the same register.
    fn fill_cancellation(&mut self, sale: &mut Sale, r: usize) {
        let cands = &mut self.state.registers[r].cancellable;
        // Mostly the receipt just before; sometimes one a little earlier.
        let back = self.state.rng.gen_range(0..cands.len().min(3));
        let idx = cands.remove(cands.len() - 1 - back);
        let original = &self.sales[idx];
        sale.kind = SaleKind::Cancellation;
        sale.cancels = Some(original.receipt_number.clone());
        sale.customer = original.customer.clone();
        sale.lines = original
            .lines
            .iter()
            .map(|l| SaleLine {
                quantity: -l.quantity,
                discount: -l.discount,
                net: -l.net,
                tax: -l.tax,
                gross: -l.gross,
                ..l.clone()
            })
            .collect();
        sale.taxes = original
            .taxes
            .iter()
            .map(|t| TaxLine {
                rate: t.rate,
                net: -t.net,
                tax: -t.tax,
                gross: -t.gross,
            })
            .collect();
        let t = &original.totals;
        sale.totals = Totals {
            net: -t.net,
            tax: -t.tax,
            gross: -t.gross,
            discount: -t.discount,
        };
        sale.payments = original
            .payments
            .iter()
            .map(|p| Payment {
                amount: -p.amount,
                ..p.clone()
            })
            .collect();
    }

    /// ~12 % of sales name a loyalty customer, who earns a point per full euro.
    fn fill_customer(&mut self, sale: &mut Sale) {
        if !self.state.rng.gen_bool(0.12) {
            return;
        }
        let n = self
            .state
            .rng
            .gen_range(1..=(200 * self.spec.stores.max(1)) as u64);
        let first = FIRST_NAMES[(n as usize * 7) % FIRST_NAMES.len()];
        let last = LAST_NAMES[(n as usize * 13) % LAST_NAMES.len()];
        sale.customer = Some(Customer {
            id: Some(format!("KD{n:06}")),
            name: Some(format!("{first} {last}")),
            external_id: None,
            phone: None,
        });
        let earned = sale.totals.gross.max(Decimal::ZERO).floor();
        let burned = if self.state.rng.gen_bool(0.05) {
            Decimal::from(self.state.rng.gen_range(1..=5) * 100)
        } else {
            Decimal::ZERO
        };
        sale.loyalty = Some(Loyalty {
            points_earned: earned,
            points_burned: burned,
            pending_approval: false,
        });
    }

    /// One payment, or (~10 %) two that sum exactly to the gross total.
    fn fill_payments(&mut self, sale: &mut Sale) {
        let gross = sale.totals.gross;
        let currency = sale.currency.clone();
        if gross >= cents(2) && self.state.rng.gen_bool(0.10) {
            let (a, b) = *[("voucher", "cash"), ("voucher", "card"), ("cash", "card")]
                .choose(&mut self.state.rng)
                .expect("pairs");
            let share = self.state.rng.gen_range(10..=90);
            let first = round_money(gross * Decimal::new(share, 2), &currency)
                .max(cents(1))
                .min(gross - cents(1));
            sale.payments.push(self.payment(a, first, &currency));
            sale.payments
                .push(self.payment(b, gross - first, &currency));
            return;
        }
        let method = match self.state.rng.gen_range(0..100) {
            0..=49 => "cash",
            50..=89 => "card",
            90..=94 => "voucher",
            _ => "invoice",
        };
        sale.payments.push(self.payment(method, gross, &currency));
    }

    fn payment(&mut self, method: &str, amount: Decimal, currency: &str) -> Payment {
        let psp_reference = (method == "card")
            .then(|| format!("TID{:08}", self.state.rng.gen_range(0..100_000_000u32)));
        Payment {
            method: method.to_string(),
            amount,
            currency: currency.to_string(),
            psp_reference,
            method_raw: None,
        }
    }

    /// The fiscal signature: TSE for German registers, RKSV for Austrian ones.
    fn sign(&mut self, sale: &mut Sale, r: usize, country: Country) -> FiscalSignature {
        let rng = &mut self.state.rng;
        let st = &mut self.state.registers[r];
        match country {
            Country::At => {
                // Training receipts do not move the turnover counter.
                if sale.kind != SaleKind::Training {
                    st.rksv_turnover_cents += (sale.totals.gross * Decimal::ONE_HUNDRED)
                        .trunc()
                        .try_into()
                        .unwrap_or(0i64);
                }
                let by_rate = |pct: i64| {
                    sale.taxes
                        .iter()
                        .filter(|t| t.rate == Decimal::from(pct))
                        .map(|t| t.gross)
                        .sum::<Decimal>()
                };
                let signature = random_base64(rng, 64);
                let qr = format!(
                    "_R1-AT1_{reg}_{no}_{ts}_{n}_{e1}_{e2}_{zero}_{special}_{counter}_{cert}_{prev}_{sig}",
                    reg = sale.register_id,
                    no = sale.receipt_number,
                    ts = sale.timestamp.format("%Y-%m-%dT%H:%M:%S"),
                    n = rksv_amount(by_rate(20)),
                    e1 = rksv_amount(by_rate(10)),
                    e2 = rksv_amount(by_rate(13)),
                    zero = rksv_amount(Decimal::ZERO),
                    special = rksv_amount(Decimal::ZERO),
                    counter = random_base64(rng, 8),
                    cert = &st.tse_serial[..16],
                    prev = st.rksv_last_signature,
                    sig = signature,
                );
                st.rksv_last_signature = signature[..12].to_string();
                FiscalSignature {
                    tse: None,
                    rksv: Some(RksvSignature {
                        cash_register_id: sale.register_id.clone(),
                        receipt_number: sale.receipt_number.clone(),
                        signature: Some(signature),
                        qr_code: Some(qr),
                    }),
                }
            }
            _ => {
                st.tse_transaction += 1;
                st.tse_signature_counter += 2;
                let start = sale.timestamp - Duration::seconds(rng.gen_range(8..180));
                FiscalSignature {
                    tse: Some(TseSignature {
                        serial_number: st.tse_serial.clone(),
                        signature: random_base64(rng, 64),
                        signature_counter: st.tse_signature_counter,
                        transaction_number: st.tse_transaction,
                        start: Some(start),
                        end: Some(sale.timestamp),
                    }),
                    rksv: None,
                }
            }
        }
    }
}

/// About `n` sales (exactly `n`) spread over 4 stores (German and Austrian), 2 registers each
/// and as many days as needed: for `posbridge sandbox generate --sales N --seed S`.
pub fn generate_sales(n: usize, seed: u64) -> Vec<Sale> {
    let registers = 8usize;
    let (per_day, days) = if n <= registers * 60 {
        (n.div_ceil(registers).max(1), 1)
    } else {
        (60, n.div_ceil(registers * 60))
    };
    let spec = GenSpec {
        seed,
        stores: 4,
        registers_per_store: 2,
        days: days as u32,
        sales_per_day: per_day as u32,
        start: NaiveDate::from_ymd_opt(2025, 1, 6).expect("valid date"),
        country: Country::Mixed,
    };
    let mut sales = Dataset::generate(spec).sales;
    // Generation order is chronological per register, so a cut keeps every cancelled receipt.
    sales.truncate(n);
    sales
}

/// Writes sales as NDJSON: one JSON object per line.
pub fn write_ndjson(sales: &[Sale], out: &mut dyn Write) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(out);
    for s in sales {
        serde_json::to_writer(&mut w, s)?;
        w.write_all(b"\n")?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn spec(country: Country) -> GenSpec {
        GenSpec {
            seed: 7,
            stores: 3,
            registers_per_store: 2,
            days: 10,
            sales_per_day: 120,
            start: NaiveDate::from_ymd_opt(2026, 3, 25).unwrap(),
            country,
        }
    }

    #[test]
    fn same_seed_same_data_other_seed_other_data() {
        let a = Dataset::generate(spec(Country::Mixed));
        let b = Dataset::generate(spec(Country::Mixed));
        assert_eq!(a.sales, b.sales);
        assert_eq!(a.products, b.products);
        assert_eq!(a.registers, b.registers);
        let c = Dataset::generate(GenSpec {
            seed: 8,
            ..spec(Country::Mixed)
        });
        assert_ne!(a.sales, c.sales);
        assert_eq!(a.sales.len(), 3 * 2 * 10 * 120);
    }

    #[test]
    fn extend_days_continues_like_a_longer_run() {
        let long = Dataset::generate(GenSpec {
            days: 5,
            ..spec(Country::De)
        });
        let mut short = Dataset::generate(GenSpec {
            days: 3,
            ..spec(Country::De)
        });
        let before = short.sales.len();
        let new = short.extend_days(2);
        assert_eq!(new.len(), short.sales.len() - before);
        assert_eq!(short.sales, long.sales);
        assert_eq!(short.spec, long.spec);
        assert!(new
            .iter()
            .all(|s| s.business_day > spec(Country::De).start + Duration::days(2)));
    }

    #[test]
    fn every_sale_of_a_large_set_validates() {
        let sales = generate_sales(100_000, 3);
        assert_eq!(sales.len(), 100_000);
        for s in &sales {
            let v = s.validate();
            assert!(v.is_empty(), "{}: {:?}", s.id, v);
        }
    }

    #[test]
    fn ids_receipts_and_fiscal_counters_are_sequential_per_register() {
        let ds = Dataset::generate(spec(Country::Mixed));
        let mut last: HashMap<&str, (u64, u64)> = HashMap::new();
        let mut ids = HashSet::new();
        for s in &ds.sales {
            assert!(ids.insert(s.id.clone()), "duplicate id {}", s.id);
            assert_eq!(
                s.id,
                Sale::make_id("generated", &s.store_id, &s.register_id, &s.receipt_number)
            );
            let no: u64 = s.receipt_number.parse().unwrap();
            let tse = s
                .fiscal
                .as_ref()
                .unwrap()
                .tse
                .as_ref()
                .map(|t| t.signature_counter)
                .unwrap_or(0);
            if let Some((prev_no, prev_tse)) = last.get(s.register_id.as_str()) {
                assert_eq!(no, prev_no + 1, "{}", s.id);
                assert!(tse == 0 || tse > *prev_tse);
            } else {
                assert_eq!(no, 1);
            }
            last.insert(&s.register_id, (no, tse));
        }
    }

    #[test]
    fn countries_rates_time_zones_and_signatures() {
        let ds = Dataset::generate(spec(Country::Mixed));
        let stores: HashMap<_, _> = ds.stores.iter().map(|s| (s.id.clone(), s)).collect();
        assert_eq!(stores["S001"].country, "DE");
        assert_eq!(stores["S002"].country, "AT");
        for s in &ds.sales {
            let store = stores[&s.store_id];
            assert_eq!(s.timezone.as_deref(), Some(store.timezone.as_str()));
            assert_eq!(s.timestamp.date_naive(), s.business_day);
            let hour = s.timestamp.format("%H").to_string().parse::<u32>().unwrap();
            assert!((8..20).contains(&hour));
            // 2026-03-29 is the switch to summer time.
            let expected = if s.business_day >= NaiveDate::from_ymd_opt(2026, 3, 29).unwrap() {
                7200
            } else {
                3600
            };
            assert_eq!(s.timestamp.offset().local_minus_utc(), expected);
            let fiscal = s.fiscal.as_ref().unwrap();
            let allowed: &[i64] = if store.country == "DE" {
                let tse = fiscal.tse.as_ref().expect("TSE for German stores");
                assert_eq!(tse.serial_number.len(), 64);
                assert!(base64::engine::general_purpose::STANDARD
                    .decode(&tse.signature)
                    .is_ok());
                assert!(tse.start.unwrap() < tse.end.unwrap());
                &[7, 19]
            } else {
                let rksv = fiscal.rksv.as_ref().expect("RKSV for Austrian stores");
                assert!(rksv.qr_code.as_ref().unwrap().starts_with("_R1-AT1_"));
                assert_eq!(rksv.receipt_number, s.receipt_number);
                &[10, 13, 20]
            };
            for l in &s.lines {
                assert!(
                    allowed.iter().any(|r| Decimal::from(*r) == l.tax_rate),
                    "{}",
                    l.tax_rate
                );
                assert_eq!(
                    l.gross,
                    round_money(l.quantity * l.unit_price - l.discount, "EUR")
                );
            }
        }
    }

    #[test]
    fn shares_of_kinds_payments_and_discounts() {
        let sales = generate_sales(40_000, 11);
        let n = sales.len() as f64;
        let share = |k: SaleKind| sales.iter().filter(|s| s.kind == k).count() as f64 / n;
        let near = |got: f64, want: f64| (got - want).abs() <= want * 0.35;
        assert!(
            near(share(SaleKind::Refund), 0.02),
            "refunds {}",
            share(SaleKind::Refund)
        );
        assert!(
            near(share(SaleKind::Cancellation), 0.01),
            "cancellations {}",
            share(SaleKind::Cancellation)
        );
        assert!(
            near(share(SaleKind::NullReceipt), 0.005),
            "null {}",
            share(SaleKind::NullReceipt)
        );
        assert!(
            near(share(SaleKind::Training), 0.01),
            "training {}",
            share(SaleKind::Training)
        );

        let plain: Vec<&Sale> = sales.iter().filter(|s| s.kind == SaleKind::Sale).collect();
        let split =
            plain.iter().filter(|s| s.payments.len() > 1).count() as f64 / plain.len() as f64;
        assert!(near(split, 0.10), "split {split}");
        let methods: HashSet<&str> = plain
            .iter()
            .flat_map(|s| s.payments.iter().map(|p| p.method.as_str()))
            .collect();
        for m in ["cash", "card", "voucher", "invoice"] {
            assert!(methods.contains(m), "{m}");
        }
        let lines: Vec<&SaleLine> = plain.iter().flat_map(|s| s.lines.iter()).collect();
        let discounted =
            lines.iter().filter(|l| !l.discount.is_zero()).count() as f64 / lines.len() as f64;
        assert!(
            (0.12..0.18).contains(&discounted),
            "discounted {discounted}"
        );
        assert!(
            plain.iter().any(|s| s.lines.len() == 1) && plain.iter().any(|s| s.lines.len() >= 5)
        );
        let customers =
            plain.iter().filter(|s| s.customer.is_some()).count() as f64 / plain.len() as f64;
        assert!(near(customers, 0.12), "customers {customers}");
        assert!(plain.iter().any(|s| s
            .loyalty
            .as_ref()
            .is_some_and(|l| l.points_earned > Decimal::ZERO)));
    }

    #[test]
    fn special_receipts_have_their_shape() {
        let sales = generate_sales(20_000, 5);
        let by_key: HashMap<(&str, &str), &Sale> = sales
            .iter()
            .map(|s| ((s.register_id.as_str(), s.receipt_number.as_str()), s))
            .collect();
        let mut cancelled = HashSet::new();
        for s in &sales {
            match s.kind {
                SaleKind::NullReceipt => {
                    assert!(s.lines.is_empty() && s.payments.is_empty() && s.taxes.is_empty());
                    assert_eq!(s.totals, Totals::default());
                }
                SaleKind::Refund => {
                    assert!(s.totals.gross < Decimal::ZERO);
                    assert!(s.payments.iter().all(|p| p.amount < Decimal::ZERO));
                }
                SaleKind::Cancellation => {
                    let target = s.cancels.as_deref().unwrap();
                    assert!(
                        target.parse::<u64>().unwrap() < s.receipt_number.parse::<u64>().unwrap()
                    );
                    assert!(
                        cancelled.insert((s.register_id.clone(), target.to_string())),
                        "cancelled twice"
                    );
                    let original = by_key[&(s.register_id.as_str(), target)];
                    assert_eq!(original.kind, SaleKind::Sale);
                    assert_eq!(s.totals.gross, -original.totals.gross);
                    assert_eq!(s.totals.net, -original.totals.net);
                    assert_eq!(s.totals.discount, -original.totals.discount);
                    assert_eq!(s.lines.len(), original.lines.len());
                    for (c, o) in s.lines.iter().zip(&original.lines) {
                        assert_eq!(
                            (c.net, c.tax, c.gross, c.quantity),
                            (-o.net, -o.tax, -o.gross, -o.quantity)
                        );
                    }
                    for (c, o) in s.payments.iter().zip(&original.payments) {
                        assert_eq!((c.amount, &c.method), (-o.amount, &o.method));
                    }
                }
                _ => {}
            }
        }
        assert!(!cancelled.is_empty());
    }

    #[test]
    fn products_and_master_data_are_consistent() {
        let ds = Dataset::generate(spec(Country::At));
        assert!(ds.products.iter().all(|p| p.id.starts_with("AT-")));
        assert!(ds.products.len() > 100);
        let cats: HashSet<_> = ds.categories.iter().map(|c| c.id.clone()).collect();
        for p in &ds.products {
            assert!(cats.contains(p.category_id.as_ref().unwrap()));
            let ean = p.barcode.as_ref().unwrap();
            assert_eq!(ean.len(), 13);
            assert_eq!(ean13(&ean[..3], ean[3..12].parse().unwrap()), *ean);
        }
        assert_eq!(ds.registers.len(), 6);
        assert_eq!(ds.cashiers.len(), 9);
        assert_eq!(ds.payment_methods.len(), 5);
        let products: HashSet<_> = ds.products.iter().map(|p| p.id.clone()).collect();
        assert!(ds
            .sales
            .iter()
            .flat_map(|s| &s.lines)
            .all(|l| products.contains(l.product_id.as_ref().unwrap())));
    }

    #[test]
    fn ndjson_round_trips() {
        let sales = generate_sales(50, 1);
        let mut buf = Vec::new();
        write_ndjson(&sales, &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let back: Vec<Sale> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, sales);
    }

    #[test]
    fn ean13_check_digit() {
        // A well-known valid EAN-13.
        assert_eq!(ean13("400", 638133393), "4006381333931");
        assert_eq!(ean13("978", 30640615), "9780306406157");
    }
}
