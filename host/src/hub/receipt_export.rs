//! `exportReceiptData`: one receipt with its lines, payments, tax breakdown and TSE block.
//!
//! The receipt is found by its canonical sale id, or by the vendor's receipt number when that
//! names exactly one sale in the stores the caller may see. The `tse` block is the sale's fiscal
//! TSE signature unchanged; a sale without one answers `"tse": null` and says why in
//! `tseMissingReason`.

use posbridge_plugin_api::json_text::Json;
use posbridge_plugin_api::model::Sale;

use super::error::HubError;
use super::money::{money_fields, plain_number};
use super::sales_export::{payments_json, receipt_fields};
use super::store::HubStore;

/// The stores a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreScope {
    /// Every store (an admin key).
    All,
    /// Only these stores (a store key).
    Stores(Vec<String>),
}

impl StoreScope {
    /// Whether the caller may see `store`.
    pub fn contains(&self, store: &str) -> bool {
        match self {
            Self::All => true,
            Self::Stores(stores) => stores.iter().any(|s| s == store),
        }
    }
}

/// Finds the receipt `receipt_id` in `scope` and answers it as the `data` of the response.
pub fn export_receipt_data(
    hub: &HubStore,
    scope: &StoreScope,
    receipt_id: &str,
) -> Result<Json, HubError> {
    let (store, sale) = find_receipt(hub, scope, receipt_id)?;
    Ok(receipt_json(&store, &sale))
}

/// The store and sale that `receipt_id` names in `scope`.
pub fn find_receipt(
    hub: &HubStore,
    scope: &StoreScope,
    receipt_id: &str,
) -> Result<(String, Sale), HubError> {
    if receipt_id.trim().is_empty() {
        return Err(HubError::invalid("receiptId", "is empty"));
    }
    let by_id: Vec<(String, String)> = hub
        .stores_with_sale(receipt_id)?
        .into_iter()
        .filter(|s| scope.contains(s))
        .map(|s| (s, receipt_id.to_string()))
        .collect();
    let mut found = if by_id.is_empty() {
        hub.sales_with_receipt_number(receipt_id)?
            .into_iter()
            .filter(|(s, _)| scope.contains(s))
            .collect()
    } else {
        by_id
    };
    match found.len() {
        0 => Err(HubError::NotFound(format!(
            "no receipt {receipt_id:?} (neither a sale id nor a receipt number)"
        ))),
        1 => {
            let (store, id) = found.remove(0);
            let sale = hub.sale_by_id(&store, &id)?.ok_or_else(|| {
                HubError::NotFound(format!("receipt {receipt_id:?} was removed meanwhile"))
            })?;
            Ok((store, sale))
        }
        _ => {
            let mut stores: Vec<String> = found.iter().map(|(s, _)| s.clone()).collect();
            stores.dedup();
            let several = stores.len() > 1;
            Err(HubError::Ambiguous {
                store: stores.join(", "),
                receipt: receipt_id.to_string(),
                ids: found
                    .into_iter()
                    .map(|(s, id)| {
                        if several {
                            format!("{id} (store {s})")
                        } else {
                            id
                        }
                    })
                    .collect(),
            })
        }
    }
}

/// The receipt as `exportReceiptData` answers it.
pub fn receipt_json(store: &str, sale: &Sale) -> Json {
    let mut f: Vec<(String, Json)> = vec![
        ("receiptId".into(), Json::str(&sale.id)),
        ("storeId".into(), Json::str(store)),
    ];
    f.extend(receipt_fields(sale));
    let lines = sale
        .lines
        .iter()
        .map(|l| {
            let mut lf = vec![
                ("name".to_string(), Json::str(&l.name)),
                (
                    "productId".to_string(),
                    l.product_id.clone().map(Json::Str).unwrap_or(Json::Null),
                ),
                ("quantity".to_string(), plain_number(l.quantity)),
                ("taxRate".to_string(), plain_number(l.tax_rate)),
            ];
            lf.extend(money_fields("unitPrice", l.unit_price));
            lf.extend(money_fields("discount", l.discount));
            lf.extend(money_fields("net", l.net));
            lf.extend(money_fields("tax", l.tax));
            lf.extend(money_fields("gross", l.gross));
            Json::Obj(lf)
        })
        .collect();
    f.push(("lines".into(), Json::Arr(lines)));
    f.push(("payments".into(), payments_json(sale)));
    let mut totals = Vec::new();
    totals.extend(money_fields("net", sale.totals.net));
    totals.extend(money_fields("tax", sale.totals.tax));
    totals.extend(money_fields("gross", sale.totals.gross));
    f.push(("totals".into(), Json::Obj(totals)));
    let breakdown = sale
        .taxes
        .iter()
        .map(|t| {
            let mut tf = vec![("rate".to_string(), plain_number(t.rate))];
            tf.extend(money_fields("net", t.net));
            tf.extend(money_fields("tax", t.tax));
            tf.extend(money_fields("gross", t.gross));
            Json::Obj(tf)
        })
        .collect();
    f.push(("taxBreakdown".into(), Json::Arr(breakdown)));
    match sale.fiscal.as_ref().and_then(|x| x.tse.as_ref()) {
        Some(tse) => {
            let opt_time = |t: Option<chrono::DateTime<chrono::FixedOffset>>| {
                t.map(|t| Json::Str(t.to_rfc3339())).unwrap_or(Json::Null)
            };
            f.push((
                "tse".into(),
                Json::obj([
                    ("serialNumber", Json::str(&tse.serial_number)),
                    ("signature", Json::str(&tse.signature)),
                    ("transactionNumber", Json::Int(tse.transaction_number)),
                    ("signatureCounter", Json::Int(tse.signature_counter)),
                    ("start", opt_time(tse.start)),
                    ("end", opt_time(tse.end)),
                ]),
            ));
        }
        None => {
            let reason = if sale.fiscal.as_ref().is_some_and(|x| x.rksv.is_some()) {
                "the receipt carries an RKSV signature (Austria), not a TSE signature"
            } else {
                "the source system delivered no TSE signature for this receipt"
            };
            f.push(("tse".into(), Json::Null));
            f.push(("tseMissingReason".into(), Json::str(reason)));
        }
    }
    Json::Obj(f)
}
