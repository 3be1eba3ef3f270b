//! The read side: catalogue streams in one page, sales paged through date windows.

use std::sync::Mutex;

use chrono::Duration;
use posbridge_plugin_api::{ConnectorError, Page, ReadRequest};
use serde::Serialize;
use serde_json::Value;

use crate::auth::TokenKind;
use crate::catalog;
use crate::client::Client;
use crate::config::MAX_PAGE_SIZE;
use crate::cursor::{next_window, Bounds, SalesCursor, Window};
use crate::error::KassandroError;
use crate::fields::array_answer;
use crate::receipt::{sale_from_receipt, StoreOfRegister};
use crate::vienna;

/// Reads the streams of one connector instance.
pub struct SalesReader<'a> {
    pub client: &'a Client,
    /// Register → store, loaded on first need and reloaded when a receipt names an unknown register.
    pub stores: &'a Mutex<Option<StoreOfRegister>>,
}

fn to_values<T: Serialize>(records: Vec<T>) -> Result<Vec<Value>, ConnectorError> {
    records
        .into_iter()
        .map(|r| {
            serde_json::to_value(r)
                .map_err(|e| ConnectorError::Bug(format!("record does not serialize: {e}")))
        })
        .collect()
}

fn single_page(records: Vec<Value>) -> Page {
    Page {
        records,
        cursor: None,
        has_more: false,
    }
}

impl SalesReader<'_> {
    /// One page of `request.stream`.
    pub fn read(&self, request: &ReadRequest) -> Result<Page, ConnectorError> {
        let acc = TokenKind::Account;
        match request.stream.as_str() {
            "sales" => self.read_sales(request),
            "registers" => {
                let body = self.client.get(acc, "cashregisters", "cashregisters")?;
                Ok(single_page(to_values(catalog::registers(&body)?)?))
            }
            "products" => {
                let body = self.client.get(acc, "articles", "articles")?;
                Ok(single_page(to_values(catalog::products(&body)?)?))
            }
            "categories" => {
                let body = self.client.get(acc, "articles", "articles")?;
                Ok(single_page(to_values(catalog::categories(&body)?)?))
            }
            "payment_methods" => {
                let body = self.client.get(acc, "paymentmethods", "paymentmethods")?;
                Ok(single_page(to_values(catalog::payment_methods(&body)?)?))
            }
            other => Err(ConnectorError::Config(format!(
                "kassandro has no stream {other:?}"
            ))),
        }
    }

    fn load_stores(&self) -> Result<StoreOfRegister, KassandroError> {
        let body = self
            .client
            .get(TokenKind::Account, "cashregisters", "cashregisters")?;
        let stores = catalog::store_of_register(&catalog::registers(&body)?);
        *self.stores.lock().unwrap_or_else(|p| p.into_inner()) = Some(stores.clone());
        Ok(stores)
    }

    fn stores_for(&self, receipts: &[Value]) -> Result<StoreOfRegister, KassandroError> {
        let cached = self
            .stores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(stores) = cached else {
            return self.load_stores();
        };
        let unknown = receipts.iter().any(|r| {
            r.get("cashRegisterId")
                .and_then(Value::as_u64)
                .is_some_and(|id| !stores.contains_key(&id))
        });
        if unknown {
            self.load_stores()
        } else {
            Ok(stores)
        }
    }

    fn count(&self, w: &Window) -> Result<u64, KassandroError> {
        // The count endpoint spells its parameters in camel case with ISO date-times (document).
        let q = format!(
            "receipts/count?dateFrom={}T00:00:00&dateTo={}T23:59:59",
            w.from, w.to
        );
        let body = self.client.get(TokenKind::Account, &q, "receipts/count")?;
        body.get("count")
            .and_then(Value::as_u64)
            .or_else(|| body.as_u64())
            .ok_or_else(|| KassandroError::bad_field("receipts/count", "count", "an integer"))
    }

    fn read_sales(&self, request: &ReadRequest) -> Result<Page, ConnectorError> {
        let cfg = self.client.config();
        let now = self.client.host().now();
        let today = vienna::today(&now);
        let cursor = SalesCursor::parse(request.cursor.as_ref())?;
        let bounds = Bounds {
            from: request.from,
            to: request.to.unwrap_or(today),
            default_start: cfg.start_date.unwrap_or(today - Duration::days(30)),
            overlap_days: cfg.overlap_days,
        };
        let Some(mut window) = next_window(cursor, bounds) else {
            // Nothing new to ask for: keep the cursor as it was.
            return Ok(Page {
                records: vec![],
                cursor: request.cursor.clone(),
                has_more: false,
            });
        };
        if window.offset == 0 {
            window.total = self.count(&window)?;
        }
        let synced = SalesCursor::Synced {
            synced_through: window.to,
        };
        if window.offset >= window.total {
            return Ok(Page {
                records: vec![],
                cursor: Some(synced.to_json()),
                has_more: false,
            });
        }

        let limit = (cfg.page_size as usize)
            .min(request.page_size.max(1))
            .min(MAX_PAGE_SIZE as usize);
        // The account endpoint spells its parameters in lower case with plain dates (document).
        let q = format!(
            "receipts?datefrom={}&dateto={}&limit={limit}&offset={}&withitems=true",
            window.from, window.to, window.offset
        );
        let page_name = format!(
            "receipts?datefrom={}&dateto={}&offset={}",
            window.from, window.to, window.offset
        );
        let body = self.client.get(TokenKind::Account, &q, &page_name)?;
        let receipts = array_answer(&body, &page_name)?;
        let stores = self.stores_for(receipts)?;
        let mut records = Vec::with_capacity(receipts.len());
        for (i, r) in receipts.iter().enumerate() {
            let sale = sale_from_receipt(r, &stores, &cfg.base_url, &page_name, &format!("[{i}]"))?;
            records.extend(to_values(vec![sale])?);
        }

        window.offset += receipts.len() as u64;
        let done = receipts.len() < limit || window.offset >= window.total;
        let cursor = if done {
            synced
        } else {
            SalesCursor::Paging { window }
        };
        Ok(Page {
            records,
            cursor: Some(cursor.to_json()),
            has_more: !done,
        })
    }
}
