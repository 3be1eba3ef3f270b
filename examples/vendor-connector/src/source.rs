//! Articles read by offset from `GET /articles`, mapped to canonical products. The cursor is
//! the offset after the last article read: articles are only ever appended (API.md), so the
//! next run starts exactly where this one stopped.

use posbridge_plugin_api::model::Product;
use posbridge_plugin_api::rest::{fetch_page, Offset, Position};
use posbridge_plugin_api::rust_decimal::Decimal;
use posbridge_plugin_api::{ConnectorError, Page, ReadRequest, Source};
use serde_json::{json, Value};

use crate::Tillbox;

/// API.md: `limit` is at most 200.
const MAX_LIMIT: u64 = 200;

impl Source for Tillbox {
    fn read(&self, req: &ReadRequest) -> Result<Page, ConnectorError> {
        let offset = match &req.cursor {
            None => 0,
            Some(c) => c["offset"].as_u64().ok_or_else(|| {
                ConnectorError::Permanent(format!("tillbox: cursor {c} has no offset"))
            })?,
        };
        let limit = (req.page_size as u64).clamp(1, MAX_LIMIT);
        let paging = Offset::new("offset", "limit", limit).total("/total");
        let page = fetch_page(
            self.api.get("/articles").endpoint("articles"),
            &paging,
            &Position::Offset(offset),
            "/articles",
        )?;
        let records = page
            .items
            .iter()
            .map(|a| Ok(serde_json::to_value(to_product(a, &self.cfg.currency)?)?))
            .collect::<Result<Vec<_>, ConnectorError>>()?;
        let after = offset + page.items.len() as u64;
        Ok(Page {
            records,
            cursor: Some(json!({ "offset": after })),
            has_more: page.next.is_some(),
        })
    }
}

/// Maps one Tillbox article to a canonical product. A missing field is `Permanent`.
pub fn to_product(article: &Value, currency: &str) -> Result<Product, ConnectorError> {
    let missing =
        |f: &str| ConnectorError::Permanent(format!("tillbox: article lacks `{f}`: {article}"));
    let text = |f: &str| article.get(f).and_then(Value::as_str).map(str::to_string);
    let cents = article
        .get("price_cents")
        .and_then(Value::as_i64)
        .ok_or_else(|| missing("price_cents"))?;
    let vat: Decimal = text("vat")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| missing("vat"))?;
    Ok(Product {
        id: format!("tillbox:{}", text("sku").ok_or_else(|| missing("sku"))?),
        name: text("title").ok_or_else(|| missing("title"))?,
        short_name: None,
        category_id: None,
        sku: text("sku"),
        barcode: None,
        // Cents to an exact decimal with two places: 340 → 3.40.
        price: Decimal::new(cents, 2),
        currency: currency.to_string(),
        tax_rate: vat,
        active: article
            .get("enabled")
            .and_then(Value::as_bool)
            .unwrap_or(true),
    })
}
