//! The reconciliation table: per vendor, business day, currency and measure (gross, each tax
//! rate, each payment method, card charges), the POS's amounts (source) against every step that
//! carried them: the sales files, the closures, the books and the PSP. Sums are exact decimals.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use posbridge_plugin_api::model::{Closure, Decimal, Sale, SaleKind};

/// The payment method a PSP takes.
pub const CARD: &str = "card";

/// What one row sums up, within one vendor, day and currency.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Measure {
    /// Gross of every revenue sale.
    Gross,
    /// The gross or the tax at one tax rate (percent, normalized).
    Rate(Decimal, RatePart),
    /// The amount paid with one method (refunds negative).
    Payment(String),
    /// What card terminals charged: the positive card payments of plain sales, i.e. what the
    /// PSP captured (refunds at the till are not linked to a PSP payment, so they are left out).
    CardCharged,
}

/// Which amount of a tax rate a row sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RatePart {
    Gross,
    Tax,
}

impl std::fmt::Display for Measure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Gross => write!(f, "gross total"),
            Self::Rate(r, RatePart::Gross) => write!(f, "VAT {r}% gross"),
            Self::Rate(r, RatePart::Tax) => write!(f, "VAT {r}% tax"),
            Self::Payment(m) => write!(f, "payment {m}"),
            Self::CardCharged => write!(f, "card charged"),
        }
    }
}

/// Sums by business day, currency and measure.
pub type Sums = BTreeMap<(NaiveDate, String, Measure), Decimal>;

/// Adds an amount to a sum.
pub fn add(sums: &mut Sums, day: NaiveDate, currency: &str, m: Measure, d: Decimal) {
    *sums.entry((day, currency.to_string(), m)).or_default() += d;
}

/// Sums of the revenue sales (training and null receipts are no revenue, as in closures).
pub fn sale_sums<'a>(sales: impl IntoIterator<Item = &'a Sale>) -> Sums {
    let mut sums = Sums::new();
    for s in sales.into_iter().filter(|s| s.kind.is_revenue()) {
        let (day, cur) = (s.business_day, s.currency.as_str());
        add(&mut sums, day, cur, Measure::Gross, s.totals.gross);
        for t in &s.taxes {
            let rate = t.rate.normalize();
            add(
                &mut sums,
                day,
                cur,
                Measure::Rate(rate, RatePart::Gross),
                t.gross,
            );
            add(
                &mut sums,
                day,
                cur,
                Measure::Rate(rate, RatePart::Tax),
                t.tax,
            );
        }
        for p in &s.payments {
            add(
                &mut sums,
                day,
                cur,
                Measure::Payment(p.method.clone()),
                p.amount,
            );
            if s.kind == SaleKind::Sale && p.method == CARD && p.amount > Decimal::ZERO {
                add(&mut sums, day, &p.currency, Measure::CardCharged, p.amount);
            }
        }
    }
    sums
}

/// The same sums, from closures (which carry no card charges).
pub fn closure_sums<'a>(closures: impl IntoIterator<Item = &'a Closure>) -> Sums {
    let mut sums = Sums::new();
    for c in closures {
        let (day, cur) = (c.business_day, c.currency.as_str());
        add(&mut sums, day, cur, Measure::Gross, c.totals.gross);
        for t in &c.taxes {
            let rate = t.rate.normalize();
            add(
                &mut sums,
                day,
                cur,
                Measure::Rate(rate, RatePart::Gross),
                t.gross,
            );
            add(
                &mut sums,
                day,
                cur,
                Measure::Rate(rate, RatePart::Tax),
                t.tax,
            );
        }
        for p in &c.payments {
            add(
                &mut sums,
                day,
                cur,
                Measure::Payment(p.method.clone()),
                p.amount,
            );
        }
    }
    sums
}

/// What one step produced for one vendor, and which measures it carries at all (a step that
/// does not carry a measure shows `-` there instead of a zero).
pub struct Column {
    pub sums: Sums,
    pub carries: fn(&Measure) -> bool,
}

impl Column {
    fn cell(&self, key: &(NaiveDate, String, Measure)) -> Option<Decimal> {
        (self.carries)(&key.2).then(|| self.sums.get(key).copied().unwrap_or_default())
    }
}

/// Whether a step carries a measure: files carry everything.
pub fn carries_all(_: &Measure) -> bool {
    true
}

/// Closures and books carry everything but card charges.
pub fn carries_booked(m: &Measure) -> bool {
    *m != Measure::CardCharged
}

/// A PSP carries card charges only.
pub fn carries_card_charges(m: &Measure) -> bool {
    *m == Measure::CardCharged
}

/// Everything the demo knows about one share of a vendor's money (the registers one book
/// books); a step that did not run is `None`.
pub struct VendorSides {
    pub vendor: String,
    /// The book these registers' closures go to, if any.
    pub book: Option<String>,
    pub source: Sums,
    pub file: Option<Column>,
    pub closures: Option<Column>,
    pub books: Option<Column>,
    pub psp: Option<Column>,
}

/// One reconciled total: the source's sum against every step that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub vendor: String,
    pub book: Option<String>,
    pub day: NaiveDate,
    pub currency: String,
    pub measure: Measure,
    pub source: Decimal,
    pub file: Option<Decimal>,
    pub closures: Option<Decimal>,
    pub books: Option<Decimal>,
    pub psp: Option<Decimal>,
}

impl Row {
    /// Whether every step that carries this total holds exactly the source's amount.
    pub fn matches(&self) -> bool {
        [self.file, self.closures, self.books, self.psp]
            .into_iter()
            .flatten()
            .all(|v| v == self.source)
    }
}

/// One row per (day, currency, measure) any side has; a side without it counts as zero.
pub fn rows(v: &VendorSides) -> Vec<Row> {
    let columns = [&v.file, &v.closures, &v.books, &v.psp];
    let mut keys: BTreeSet<&(NaiveDate, String, Measure)> = v.source.keys().collect();
    for c in columns.iter().copied().flatten() {
        keys.extend(c.sums.keys().filter(|k| (c.carries)(&k.2)));
    }
    let cell = |c: &Option<Column>, k| c.as_ref().and_then(|c| c.cell(k));
    keys.into_iter()
        .map(|k| Row {
            vendor: v.vendor.clone(),
            book: v.book.clone(),
            day: k.0,
            currency: k.1.clone(),
            measure: k.2.clone(),
            source: v.source.get(k).copied().unwrap_or_default(),
            file: cell(&v.file, k),
            closures: cell(&v.closures, k),
            books: cell(&v.books, k),
            psp: cell(&v.psp, k),
        })
        .collect()
}

/// A single expected amount checked against what a system reports (the PSP's own figures).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub what: String,
    pub expected: Decimal,
    pub found: Decimal,
}

impl Check {
    pub fn matches(&self) -> bool {
        self.expected == self.found
    }
}

/// Prints a table: a header and rows of cells, the first `left` columns left-aligned.
fn print_table<const N: usize>(header: [&str; N], cells: &[[String; N]], left: usize) {
    let mut width = header.map(str::len);
    for row in cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |c: [&str; N]| {
        let mut out = String::from(" ");
        for (i, (text, w)) in c.iter().zip(width).enumerate() {
            out.push(' ');
            if i < left || i == N - 1 {
                out.push_str(&format!("{text:<w$}"));
            } else {
                out.push_str(&format!("{text:>w$}"));
            }
            out.push(' ');
        }
        out.trim_end().to_string()
    };
    println!("{}", line(header));
    for row in cells {
        println!("{}", line(row.each_ref().map(String::as_str)));
    }
}

/// An amount with at least two decimals (books may store `11.9` for `11.90`), or `-`.
fn show(d: Option<Decimal>) -> String {
    d.map_or_else(
        || "-".to_string(),
        |mut d| {
            if d.scale() < 2 {
                d.rescale(2);
            }
            d.to_string()
        },
    )
}

fn status(ok: bool) -> String {
    if ok { "ok" } else { "DIFFERS" }.to_string()
}

/// Prints the reconciliation table of the totals.
pub fn print_rows(rows: &[Row]) {
    println!();
    println!(
        "Reconciliation (source = the POS simulator's sales; file = sales/VENDOR.ndjson; \
         closures = closures.ndjson; books = the vouchers the book's simulator stored for \
         these registers; PSP = stripe's payments of the POS sales; - = not carried by that \
         step):"
    );
    let header = [
        "vendor", "book", "day", "total", "source", "file", "closures", "books", "PSP", "",
    ];
    let cells: Vec<[String; 10]> = rows
        .iter()
        .map(|r| {
            [
                r.vendor.clone(),
                r.book.clone().unwrap_or_else(|| "-".into()),
                r.day.to_string(),
                format!("{} ({})", r.measure, r.currency),
                show(Some(r.source)),
                show(r.file),
                show(r.closures),
                show(r.books),
                show(r.psp),
                status(r.matches()),
            ]
        })
        .collect();
    print_table(header, &cells, 4);
}

/// Prints the checks of one system under a title.
pub fn print_checks(title: &str, checks: &[Check]) {
    println!();
    println!("{title}");
    let header = ["check", "expected", "found", ""];
    let cells: Vec<[String; 4]> = checks
        .iter()
        .map(|c| {
            [
                c.what.clone(),
                show(Some(c.expected)),
                show(Some(c.found)),
                status(c.matches()),
            ]
        })
        .collect();
    print_table(header, &cells, 1);
}

/// The one closing line; `sides` names what the totals were checked across.
pub fn verdict(rows: &[Row], checks: &[Check], sides: &str) -> String {
    let total = rows.len() + checks.len();
    let differ = rows.iter().filter(|r| !r.matches()).count()
        + checks.iter().filter(|c| !c.matches()).count();
    if differ == 0 && total > 0 {
        format!("reconciled: all {total} totals match to the cent ({sides})")
    } else {
        format!("NOT reconciled: {differ} of {total} totals differ ({sides})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sales() -> Vec<Sale> {
        let a = Sale::example();
        let mut b = Sale::example();
        b.id.push_str("-2");
        b.receipt_number.push_str("-2");
        let mut training = Sale::example();
        training.id.push_str("-t");
        training.kind = SaleKind::Training;
        vec![a, b, training]
    }

    fn sides(source: Sums, file: Sums, closures: Sums) -> VendorSides {
        VendorSides {
            vendor: "demo".into(),
            book: None,
            source,
            file: Some(Column {
                sums: file,
                carries: carries_all,
            }),
            closures: Some(Column {
                sums: closures,
                carries: carries_booked,
            }),
            books: None,
            psp: None,
        }
    }

    #[test]
    fn closures_of_the_sales_reconcile_and_training_is_left_out() {
        let s = sales();
        let source = sale_sums(&s);
        let booked = closure_sums(&Closure::from_sales(&s));
        let rows = rows(&sides(source.clone(), source, booked));
        assert!(rows.iter().all(Row::matches), "{rows:?}");
        let gross = rows.iter().find(|r| r.measure == Measure::Gross).unwrap();
        assert_eq!(gross.source, s[0].totals.gross + s[1].totals.gross);
        assert_eq!(gross.day, s[0].business_day);
        assert!(rows
            .iter()
            .any(|r| matches!(r.measure, Measure::Rate(_, RatePart::Tax))));
        assert!(rows
            .iter()
            .any(|r| matches!(r.measure, Measure::Payment(_))));
        // Closures do not carry card charges: shown as "-", not as a difference.
        for r in rows.iter().filter(|r| r.measure == Measure::CardCharged) {
            assert_eq!(r.closures, None);
            assert_eq!(r.file, Some(r.source));
        }
        assert_eq!(
            verdict(&rows, &[], "x"),
            format!(
                "reconciled: all {} totals match to the cent (x)",
                rows.len()
            )
        );
    }

    #[test]
    fn card_charges_are_the_positive_card_payments_of_plain_sales() {
        let mut s = sales();
        s[0].payments[0].method = CARD.into();
        s[1].payments[0].method = "cash".into();
        s[2].payments[0].method = CARD.into(); // training: no revenue
        let sums = sale_sums(&s);
        let key = (
            s[0].business_day,
            s[0].currency.clone(),
            Measure::CardCharged,
        );
        assert_eq!(sums[&key], s[0].payments[0].amount);
        let mut refund = s[0].clone();
        refund.kind = SaleKind::Refund;
        refund.payments[0].amount = -refund.payments[0].amount;
        let with_refund = sale_sums(s.iter().chain([&refund]));
        assert_eq!(
            with_refund[&key], s[0].payments[0].amount,
            "refunds are not charges"
        );
    }

    #[test]
    fn a_missing_sale_and_a_wrong_check_are_reported() {
        let s = sales();
        let source = sale_sums(&s);
        let file = sale_sums(&s[1..]);
        let booked = closure_sums(&Closure::from_sales(&s));
        let rows = rows(&sides(source, file, booked));
        let differ = rows.iter().filter(|r| !r.matches()).count();
        assert!(differ > 0);
        let check = Check {
            what: "net".into(),
            expected: Decimal::ONE,
            found: Decimal::TWO,
        };
        assert_eq!(
            verdict(&rows, &[check], "x"),
            format!(
                "NOT reconciled: {} of {} totals differ (x)",
                differ + 1,
                rows.len() + 1
            )
        );
    }

    #[test]
    fn a_step_that_did_not_run_is_not_compared() {
        let s = sales();
        let source = sale_sums(&s);
        let mut v = sides(source.clone(), source, Sums::new());
        v.closures = None;
        let rows = rows(&v);
        assert!(rows.iter().all(|r| r.closures.is_none() && r.matches()));
    }
}
