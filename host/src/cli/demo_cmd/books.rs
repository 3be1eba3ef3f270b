//! The books step: daily closures booked in the bookkeeping simulators (sevDesk, lexoffice)
//! through their connectors, and what the simulators stored read back as sums per day, tax
//! rate and payment method.
//!
//! Which closures go to which book is decided per register: the first book of [`Book::ALL`]
//! that can book every sale of the register ([`Book::refuses`]) books all its closures, so
//! nothing is booked twice. sevDesk's tax rule 1 takes 0, 7 and 19 % only (see
//! `docs/connectors/sevdesk.md`), so Austrian registers (10/13/20 %) go to lexoffice.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context;
use chrono::NaiveDate;
use posbridge_plugin_api::model::{Decimal, Sale};
use posbridge_sandbox::lexoffice::{LexofficeSimulator, StoredVoucher, INCOME_CATEGORIES};
use posbridge_sandbox::sevdesk::{SevdeskSimulator, Voucher};
use posbridge_sandbox::{start, Faults, RunningSandbox, SandboxOptions};
use serde_json::{json, Value};

use super::reconciliation::{add, Measure, RatePart, Sums};

/// A bookkeeping system the demo books daily closures in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Book {
    Sevdesk,
    Lexoffice,
}

impl Book {
    /// Every book, in the order the demo starts them.
    pub const ALL: [Book; 2] = [Book::Sevdesk, Book::Lexoffice];

    /// Simulator and connector name.
    pub fn name(self) -> &'static str {
        match self {
            Book::Sevdesk => "sevdesk",
            Book::Lexoffice => "lexoffice",
        }
    }

    /// Why the book cannot book a sale, if it cannot: sevDesk with tax rule 1 takes EUR and
    /// 0, 7 and 19 %; lexoffice books EUR only; both need a tax breakdown (positions per rate).
    pub fn refuses(self, s: &Sale) -> Option<String> {
        if !s.kind.is_revenue() {
            return None;
        }
        if s.currency != "EUR" {
            return Some(format!("books EUR, not {}", s.currency));
        }
        if s.taxes.is_empty() && !s.totals.gross.is_zero() {
            return Some("no tax breakdown".to_string());
        }
        let german = [0, 7, 19].map(Decimal::from);
        match self {
            Book::Sevdesk => s
                .taxes
                .iter()
                .find(|t| !german.contains(&t.rate.normalize()))
                .map(|t| format!("sevdesk's tax rule 1 has no {} %", t.rate.normalize())),
            Book::Lexoffice => None,
        }
    }

    /// The measures the book's vouchers carry. sevDesk derives each rate's VAT from the gross
    /// (gross positions, `net: false`), so its tax can differ from the POS's by rounding: the
    /// demo does not compare it (the connector's doc, "Tax amounts"). lexoffice stores the
    /// POS's tax as sent.
    pub fn carries(self) -> fn(&Measure) -> bool {
        match self {
            Book::Sevdesk => {
                |m| !matches!(m, Measure::Rate(_, RatePart::Tax) | Measure::CardCharged)
            }
            Book::Lexoffice => |m| *m != Measure::CardCharged,
        }
    }
}

/// The pipeline mapping of the demo's books, built from the payment methods of the POS data
/// (so every method is covered) and read back with the same ids and labels.
#[derive(Debug, Clone)]
pub struct BookMapping {
    /// sevDesk check account per payment method (1, 2, … in sorted order; none shared).
    check_accounts: BTreeMap<String, u64>,
    /// lexoffice's remark label per payment method.
    labels: BTreeMap<String, String>,
}

/// The German labels lexoffice users know; another method is written with its own name.
const LABELS: &[(&str, &str)] = &[
    ("cash", "Bar"),
    ("card", "EC-Karte"),
    ("voucher", "Gutschein"),
    ("invoice", "Rechnung"),
    ("points", "Punkte"),
];

impl BookMapping {
    pub fn new(methods: &BTreeSet<String>) -> Self {
        let check_accounts = methods.iter().cloned().zip(1..).collect();
        let labels = methods
            .iter()
            .map(|m| {
                let label = LABELS
                    .iter()
                    .find(|(k, _)| k == m)
                    .map_or(m.as_str(), |(_, l)| l);
                (m.clone(), label.to_string())
            })
            .collect();
        Self {
            check_accounts,
            labels,
        }
    }

    /// The pipeline's `mapping:` section for a book (see each connector's doc page).
    pub fn for_book(&self, book: Book) -> Value {
        match book {
            Book::Sevdesk => json!({
                "tax_rule": 1,
                "accounting_type": 26,
                "tax_rates": {"19": 8400, "7": 8300, "0": 8200},
                "payment_methods": self.check_accounts,
                "refund_kinds": {
                    "refund": {"19": 8720, "7": 8710},
                    "cancellation": {"19": 8400, "7": 8300},
                },
            }),
            Book::Lexoffice => {
                let category = |name: &str| {
                    INCOME_CATEGORIES
                        .iter()
                        .find(|(_, n)| *n == name)
                        .map_or("", |(id, _)| id)
                };
                let (full, reduced, free, reductions) = (
                    category("Warenverkäufe"),
                    category("Warenverkäufe ermäßigt"),
                    category("Einnahmen"),
                    category("Erlösschmälerungen"),
                );
                json!({
                    "tax_rates": {
                        "19": full, "20": full,
                        "7": reduced, "10": reduced, "13": reduced,
                        "0": free,
                    },
                    "refund_kinds": {
                        "refund": {"19": reductions, "20": reductions, "7": reductions,
                                   "10": reductions, "13": reductions, "0": reductions},
                    },
                    "payment_methods": self.labels,
                })
            }
        }
    }

    fn method_of_account(&self, account: u64) -> String {
        self.check_accounts
            .iter()
            .find(|(_, a)| **a == account)
            .map_or_else(|| format!("check account {account}"), |(m, _)| m.clone())
    }

    fn method_of_label(&self, label: &str) -> String {
        self.labels
            .iter()
            .find(|(_, l)| *l == label)
            .map_or_else(|| format!("label {label}"), |(m, _)| m.clone())
    }
}

/// A book's simulator, typed so that the demo can read what it stored.
enum BookSim {
    Sevdesk(Arc<SevdeskSimulator>),
    Lexoffice(Arc<LexofficeSimulator>),
}

/// A book simulator running on 127.0.0.1 for the demo.
pub struct RunningBook {
    pub book: Book,
    sim: BookSim,
    sandbox: RunningSandbox,
}

impl RunningBook {
    /// Starts the book's simulator on a free port; `data_dir` is where sevDesk's simulator
    /// looks for its OpenAPI file first (else next to the workspace).
    pub fn start(book: Book, data_dir: &Path) -> anyhow::Result<Self> {
        let opts = SandboxOptions {
            vendor: book.name().to_string(),
            data_dir: Some(data_dir.to_path_buf()),
            ..SandboxOptions::default()
        };
        let (sim, sandbox) = match book {
            Book::Sevdesk => {
                let sim = Arc::new(SevdeskSimulator::from_options(&opts)?);
                let sb = start(sim.clone(), 0, Faults::default())?;
                (BookSim::Sevdesk(sim), sb)
            }
            Book::Lexoffice => {
                let sim = Arc::new(LexofficeSimulator::new(
                    posbridge_sandbox::lexoffice::DEFAULT_API_KEY.to_string(),
                ));
                let sb = start(sim.clone(), 0, Faults::default())?;
                (BookSim::Lexoffice(sim), sb)
            }
        };
        Ok(Self { book, sim, sandbox })
    }

    pub fn base_url(&self) -> &str {
        &self.sandbox.base_url
    }

    fn credential(&self, name: &str) -> anyhow::Result<String> {
        self.sandbox
            .credentials
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .with_context(|| format!("the {} simulator gives no {name}", self.book.name()))
    }

    /// The sink config that books into this simulator.
    pub fn sink_config(&self) -> anyhow::Result<Value> {
        Ok(match self.book {
            Book::Sevdesk => json!({
                "base_url": format!("{}/api/v1", self.sandbox.base_url),
                "api_token": self.credential("api_token")?,
            }),
            Book::Lexoffice => json!({
                "base_url": self.sandbox.base_url,
                "api_key": self.credential("api_key")?,
            }),
        })
    }

    /// How many vouchers the simulator holds (to tell which ones a pipeline booked).
    pub fn voucher_count(&self) -> usize {
        match &self.sim {
            BookSim::Sevdesk(s) => s.vouchers().len(),
            BookSim::Lexoffice(s) => s.vouchers().len(),
        }
    }

    /// The sums of the vouchers stored after the first `from`, signed (credit vouchers and
    /// credit notes negative), per voucher day, tax rate and payment method.
    pub fn sums_since(&self, from: usize, mapping: &BookMapping) -> anyhow::Result<Sums> {
        let mut sums = Sums::new();
        match &self.sim {
            BookSim::Sevdesk(s) => {
                for v in s.vouchers().iter().skip(from) {
                    add_sevdesk(&mut sums, v, mapping)?;
                }
            }
            BookSim::Lexoffice(s) => {
                for v in s.vouchers().iter().skip(from) {
                    add_lexoffice(&mut sums, v, mapping)?;
                }
            }
        }
        Ok(sums)
    }
}

/// The day of an ISO 8601 date or date-time (`2025-01-06T12:00:00+00:00`).
fn day_of(date: &str) -> anyhow::Result<NaiveDate> {
    date.get(..10)
        .and_then(|d| NaiveDate::from_str(d).ok())
        .with_context(|| format!("the voucher date {date:?} is not ISO 8601"))
}

/// A sevDesk voucher: positions per rate (gross), payments per check account.
fn add_sevdesk(sums: &mut Sums, v: &Voucher, mapping: &BookMapping) -> anyhow::Result<()> {
    let day = day_of(&v.voucher_date)?;
    let (cur, sign) = (v.currency.as_str(), v.sign());
    add(sums, day, cur, Measure::Gross, sign * v.sum_gross());
    for p in &v.positions {
        let rate = p.tax_rate.normalize();
        add(
            sums,
            day,
            cur,
            Measure::Rate(rate, RatePart::Gross),
            sign * p.sum_gross,
        );
        add(
            sums,
            day,
            cur,
            Measure::Rate(rate, RatePart::Tax),
            sign * p.sum_tax,
        );
    }
    for p in &v.payments {
        let method = mapping.method_of_account(p.check_account);
        add(sums, day, cur, Measure::Payment(method), sign * p.amount);
    }
    Ok(())
}

/// A lexoffice voucher: items per rate (positive, signed by the voucher type) and the
/// payments the connector wrote into the remark (`Zahlungen: Bar=12.34; EC-Karte=-5.00`,
/// signed as the POS has them). lexoffice books in EUR only.
fn add_lexoffice(sums: &mut Sums, v: &StoredVoucher, mapping: &BookMapping) -> anyhow::Result<()> {
    const CURRENCY: &str = "EUR";
    let day = v.voucher_day;
    let sign = if v.voucher_type == "salescreditnote" {
        -Decimal::ONE
    } else {
        Decimal::ONE
    };
    for t in v.per_rate() {
        add(sums, day, CURRENCY, Measure::Gross, sign * t.gross);
        add(
            sums,
            day,
            CURRENCY,
            Measure::Rate(t.rate, RatePart::Gross),
            sign * t.gross,
        );
        add(
            sums,
            day,
            CURRENCY,
            Measure::Rate(t.rate, RatePart::Tax),
            sign * t.tax,
        );
    }
    let remark = v.remark.as_deref().unwrap_or_default();
    for line in remark.lines() {
        let Some(list) = line.strip_prefix("Zahlungen: ") else {
            continue;
        };
        for part in list.split("; ").filter(|p| !p.is_empty()) {
            let (label, amount) = part
                .rsplit_once('=')
                .with_context(|| format!("lexoffice voucher {}: payment {part:?}", v.id))?;
            let amount = Decimal::from_str(amount)
                .with_context(|| format!("lexoffice voucher {}: amount {amount:?}", v.id))?;
            let method = mapping.method_of_label(label);
            add(sums, day, CURRENCY, Measure::Payment(method), amount);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_gets_its_own_account_and_label_and_reads_back() {
        let methods: BTreeSet<String> = ["card", "cash", "twint"].map(String::from).into();
        let m = BookMapping::new(&methods);
        let sevdesk = m.for_book(Book::Sevdesk);
        assert_eq!(sevdesk["payment_methods"]["card"], 1);
        assert_eq!(sevdesk["payment_methods"]["twint"], 3);
        assert_eq!(m.method_of_account(2), "cash");
        let lexoffice = m.for_book(Book::Lexoffice);
        assert_eq!(lexoffice["payment_methods"]["card"], "EC-Karte");
        assert_eq!(lexoffice["payment_methods"]["twint"], "twint");
        assert_eq!(m.method_of_label("Bar"), "cash");
        // Austrian rates are mapped for lexoffice only.
        assert!(lexoffice["tax_rates"]["13"]
            .as_str()
            .is_some_and(|c| !c.is_empty()));
        assert!(sevdesk["tax_rates"].get("13").is_none());
    }

    #[test]
    fn sevdesk_does_not_carry_its_derived_tax() {
        let tax = Measure::Rate(Decimal::from(19), RatePart::Tax);
        assert!(!(Book::Sevdesk.carries())(&tax));
        assert!((Book::Lexoffice.carries())(&tax));
        assert!((Book::Sevdesk.carries())(&Measure::Payment("card".into())));
        assert!(!(Book::Lexoffice.carries())(&Measure::CardCharged));
    }

    #[test]
    fn austrian_rates_and_other_currencies_are_refused_with_the_reason() {
        let mut s = Sale::example();
        assert_eq!(Book::Sevdesk.refuses(&s), None, "{:?}", s.taxes);
        s.taxes[0].rate = Decimal::from(13);
        let why = Book::Sevdesk.refuses(&s).expect("13 % refused");
        assert!(why.contains("13 %"), "{why}");
        assert_eq!(Book::Lexoffice.refuses(&s), None);
        s.currency = "MAD".into();
        assert!(Book::Lexoffice.refuses(&s).unwrap().contains("MAD"));
        s.currency = "EUR".into();
        s.taxes.clear();
        assert_eq!(
            Book::Lexoffice.refuses(&s).as_deref(),
            Some("no tax breakdown")
        );
    }

    #[test]
    fn voucher_dates_give_the_day() {
        assert_eq!(
            day_of("2025-01-06T12:00:00+00:00").unwrap(),
            NaiveDate::from_ymd_opt(2025, 1, 6).unwrap()
        );
        assert!(day_of("06.01.2025").is_err());
    }
}
