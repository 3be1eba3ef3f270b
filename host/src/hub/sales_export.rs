//! `exportSalesData`: the summary and every transaction of a store's period, streamed into a
//! writer as the BEEP! JSON envelope or as CSV (columns in `docs/hub.md`).
//!
//! The summary is computed first (its own streamed passes), then the transactions are written
//! while they are read, so a year of receipts takes flat memory.

use std::io::Write;
use std::str::FromStr;

use posbridge_plugin_api::json_text::Json;
use posbridge_plugin_api::model::Sale;
use rust_decimal::Decimal;

use super::error::HubError;
use super::money::{money_fields, plain_number};
use super::period::Period;
use super::store::{kind_text, HubStore};
use super::summary::{sales_summary, SalesSummary, COUNTED_KINDS};

/// The response format of `exportSalesData`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExportFormat {
    #[default]
    Json,
    Csv,
}

impl FromStr for ExportFormat {
    type Err = HubError;

    fn from_str(s: &str) -> Result<Self, HubError> {
        match s {
            "json" => Ok(Self::Json),
            "csv" => Ok(Self::Csv),
            other => Err(HubError::invalid(
                "format",
                format!("{other:?} is not a format; use \"json\" (default) or \"csv\""),
            )),
        }
    }
}

impl ExportFormat {
    /// The HTTP content type of the format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// The CSV header, one column per transaction field (see `docs/hub.md`).
pub const CSV_COLUMNS: &[&str] = &[
    "id",
    "receipt_number",
    "register_id",
    "business_day",
    "timestamp",
    "kind",
    "cancels",
    "currency",
    "items",
    "net",
    "tax",
    "gross",
    "payment_methods",
];

/// Writes the export of `store` in `period` to `out`. Checks the store's currencies before the
/// first byte, so a refused export writes nothing.
pub fn export_sales_data(
    hub: &HubStore,
    store: &str,
    period: &Period,
    format: ExportFormat,
    out: impl Write,
) -> Result<(), HubError> {
    let summary = sales_summary(hub, store, period)?;
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    match format {
        ExportFormat::Json => write_json(hub, store, period, &summary, &mut out)?,
        ExportFormat::Csv => write_csv(hub, store, period, &mut out)?,
    }
    out.flush()?;
    Ok(())
}

/// The `summary` object.
pub fn summary_json(s: &SalesSummary) -> Json {
    let mut fields: Vec<(String, Json)> = Vec::new();
    fields.extend(money_fields("totalRevenue", s.total_revenue));
    fields.push(("totalTransactions".into(), Json::Int(s.total_transactions)));
    fields.push(("avgBasketSize".into(), Json::Num(s.avg_basket_size)));
    fields.push((
        "currency".into(),
        s.currency.clone().map(Json::Str).unwrap_or(Json::Null),
    ));
    let top = s
        .top_products
        .iter()
        .map(|p| {
            let mut f = vec![
                ("name".to_string(), Json::str(&p.name)),
                ("sold".to_string(), plain_number(p.sold)),
            ];
            f.extend(money_fields("revenue", p.revenue));
            Json::Obj(f)
        })
        .collect();
    fields.push(("topProducts".into(), Json::Arr(top)));
    Json::Obj(fields)
}

/// One entry of `transactions`.
pub fn transaction_json(sale: &Sale) -> Json {
    let mut f: Vec<(String, Json)> = vec![("id".into(), Json::str(&sale.id))];
    f.extend(receipt_fields(sale));
    f.push(("items".into(), plain_number(items(sale))));
    f.extend(money_fields("net", sale.totals.net));
    f.extend(money_fields("tax", sale.totals.tax));
    f.extend(money_fields("total", sale.totals.gross));
    f.push(("payments".into(), payments_json(sale)));
    Json::Obj(f)
}

/// The fields that say which receipt a sale is, shared by the transaction list and the
/// receipt export: number, register, business day, time, kind, what it cancels, currency.
pub(super) fn receipt_fields(sale: &Sale) -> Vec<(String, Json)> {
    vec![
        ("receiptNumber".into(), Json::str(&sale.receipt_number)),
        ("registerId".into(), Json::str(&sale.register_id)),
        (
            "businessDay".into(),
            Json::Str(sale.business_day.to_string()),
        ),
        ("timestamp".into(), Json::Str(sale.timestamp.to_rfc3339())),
        ("kind".into(), Json::str(kind_text(sale.kind))),
        (
            "cancels".into(),
            sale.cancels.clone().map(Json::Str).unwrap_or(Json::Null),
        ),
        ("currency".into(), Json::str(&sale.currency)),
    ]
}

/// The payments of a sale: method and amount (two decimals and exact).
pub(super) fn payments_json(sale: &Sale) -> Json {
    Json::Arr(
        sale.payments
            .iter()
            .map(|p| {
                let mut pf = vec![("method".to_string(), Json::str(&p.method))];
                pf.extend(money_fields("amount", p.amount));
                Json::Obj(pf)
            })
            .collect(),
    )
}

/// The items of a sale: the sum of its line quantities.
fn items(sale: &Sale) -> Decimal {
    sale.lines.iter().map(|l| l.quantity).sum()
}

fn write_json(
    hub: &HubStore,
    store: &str,
    period: &Period,
    summary: &SalesSummary,
    out: &mut impl Write,
) -> Result<(), HubError> {
    let head = Json::obj([
        ("from", Json::Str(period.from.to_string())),
        ("to", Json::Str(period.to.to_string())),
    ]);
    write!(
        out,
        "{{\"success\":true,\"data\":{{\"period\":{},\"summary\":{},\"transactions\":[",
        head.to_text(),
        summary_json(summary).to_text()
    )?;
    let mut first = true;
    hub.for_each_sale(store, period, COUNTED_KINDS, |sale| {
        if !first {
            out.write_all(b",")?;
        }
        first = false;
        out.write_all(transaction_json(&sale).to_text().as_bytes())?;
        Ok(())
    })?;
    out.write_all(b"]}}")?;
    Ok(())
}

fn write_csv(
    hub: &HubStore,
    store: &str,
    period: &Period,
    out: &mut impl Write,
) -> Result<(), HubError> {
    let csv_error = |e: csv::Error| HubError::Output(std::io::Error::other(e));
    let mut w = csv::Writer::from_writer(out);
    w.write_record(CSV_COLUMNS).map_err(csv_error)?;
    hub.for_each_sale(store, period, COUNTED_KINDS, |sale| {
        let methods: Vec<&str> = sale.payments.iter().map(|p| p.method.as_str()).collect();
        w.write_record([
            sale.id.as_str(),
            &sale.receipt_number,
            &sale.register_id,
            &sale.business_day.to_string(),
            &sale.timestamp.to_rfc3339(),
            kind_text(sale.kind),
            sale.cancels.as_deref().unwrap_or(""),
            &sale.currency,
            &items(&sale).normalize().to_string(),
            &sale.totals.net.to_string(),
            &sale.totals.tax.to_string(),
            &sale.totals.gross.to_string(),
            &methods.join(";"),
        ])
        .map_err(csv_error)
    })?;
    w.flush()?;
    Ok(())
}
