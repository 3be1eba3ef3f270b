//! The `sales` source: one vendor page per `read`, partition after partition, window by window.

use chrono::{Days, NaiveDate, NaiveTime};
use chrono_tz::Tz;
use posbridge_plugin_api::{ConnectorError, Host, LogLevel, Page, ReadRequest};
use serde_json::json;

use crate::api::{parse_page, Api, TransactionFilter, TransactionPage};
use crate::config::Config;
use crate::cursor::{page_of, read_cursor, start_for, Cursor, Synced, Window};
use crate::mapping::{is_training, map_transaction, reference_number, Origin};
use posbridge_plugin_api::rest::{Pass, Position};

/// How far back a first read goes when neither the request nor `start_date` says.
const DEFAULT_LOOKBACK_DAYS: u64 = 30;

/// The partition key (and canonical `register_id`) when no cash register is configured.
pub const ALL_REGISTERS: &str = "all";

/// One slice of the API the cursor tracks on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub key: String,
    pub cash_register: Option<u64>,
}

/// The partitions a configuration reads, in order.
pub fn partitions(cfg: &Config) -> Vec<Partition> {
    match &cfg.cash_register {
        Some(regs) => regs
            .ids()
            .into_iter()
            .map(|id| Partition {
                key: id.to_string(),
                cash_register: Some(id),
            })
            .collect(),
        None => vec![Partition {
            key: ALL_REGISTERS.into(),
            cash_register: None,
        }],
    }
}

/// Reads pages of sales through the host.
pub struct SalesSource<'a> {
    pub cfg: &'a Config,
    pub host: &'a Host,
    pub tz: Tz,
    pub api: &'a Api,
}

impl SalesSource<'_> {
    /// Today in the instance's time zone, by the host's clock.
    pub fn today(&self) -> NaiveDate {
        self.host.now().with_timezone(&self.tz).date_naive()
    }

    fn base_start(&self, req: &ReadRequest, today: NaiveDate) -> NaiveDate {
        req.from.or(self.cfg.start_date).unwrap_or_else(|| {
            today
                .checked_sub_days(Days::new(DEFAULT_LOOKBACK_DAYS))
                .unwrap_or(today)
        })
    }

    fn pass_at(
        &self,
        cursor: &Cursor,
        parts: &[Partition],
        index: usize,
        to: NaiveDate,
        base: NaiveDate,
    ) -> Option<Pass<Window>> {
        let p = parts.get(index)?;
        Some(Pass {
            partition: index,
            key: p.key.clone(),
            window: Window {
                from: start_for(cursor, &p.key, base, self.cfg.overlap_days),
                to,
            },
            at: Position::Page(1),
        })
    }

    /// Fetches one page of a filter.
    fn page(
        &self,
        filter: &TransactionFilter,
    ) -> Result<(String, TransactionPage), ConnectorError> {
        let url = self
            .api
            .list_url(filter)
            .map_err(|e| ConnectorError::Config(format!("oktopos: {e}")))?;
        let page = parse_page(&self.api.get_json(&url)?, &url)?;
        Ok((url, page))
    }

    /// Reads the next page.
    pub fn read(&self, req: &ReadRequest) -> Result<Page, ConnectorError> {
        let parts = partitions(self.cfg);
        let mut cursor = read_cursor(req.cursor.as_ref())?;
        let today = self.today();
        let base = self.base_start(req, today);
        // Go on with the pass in progress, unless it belongs to another configuration.
        let keys: Vec<String> = parts.iter().map(|p| p.key.clone()).collect();
        let mut pass = match cursor.pass.take() {
            Some(p) if p.fits(&keys) => Some(p),
            _ => self.pass_at(&cursor, &parts, 0, req.to.unwrap_or(today), base),
        };
        let mut records = Vec::new();
        while let Some(mut current) = pass.take() {
            let Window { from, to } = current.window;
            if from > to {
                pass = self.pass_at(&cursor, &parts, current.partition + 1, to, base);
                continue;
            }
            let part = &parts[current.partition];
            let filter = TransactionFilter {
                from: Some(from.and_time(NaiveTime::MIN)),
                until: Some(to.and_hms_opt(23, 59, 59).expect("valid time")),
                page: Some(page_of(&current)),
                size: Some(self.cfg.page_size),
                cash_register: part.cash_register,
            };
            let (url, page) = self.page(&filter)?;
            let origin = Origin {
                store_id: &self.cfg.store_id,
                register_id: &part.key,
                default_timezone: self.tz,
            };
            for tx in page
                .transactions
                .iter()
                .filter(|t| self.cfg.include_training || !is_training(t))
            {
                let mapped = map_transaction(tx, &origin).map_err(|e| {
                    let reference = reference_number(tx).unwrap_or_else(|| "?".into());
                    ConnectorError::Permanent(format!(
                        "oktopos: transaction {reference} on page {url}: {e}"
                    ))
                })?;
                if !mapped.unresolved_rate_lines.is_empty() {
                    self.host.log(
                        LogLevel::Warn,
                        "oktopos: tax rate of some lines not found in the breakdown; sale will not validate",
                        json!({"sale": mapped.sale.id, "lines": mapped.unresolved_rate_lines}),
                    );
                }
                records.push(serde_json::to_value(&mapped.sale)?);
            }
            if page.has_next(u64::from(page_of(&current)), self.cfg.page_size) {
                current.at = Position::Page(u64::from(page_of(&current)) + 1);
                pass = Some(current);
            } else {
                cursor
                    .partitions
                    .insert(part.key.clone(), Synced { synced_through: to });
                pass = self.pass_at(&cursor, &parts, current.partition + 1, to, base);
            }
            break;
        }
        let has_more = pass.is_some();
        cursor.pass = pass;
        Ok(Page {
            records,
            cursor: Some(cursor.to_json()),
            has_more,
        })
    }

    /// The cheapest real call: page 1 of size 1 for today.
    pub fn check(&self) -> Result<(), ConnectorError> {
        let today = self.today();
        let filter = TransactionFilter {
            from: Some(today.and_time(NaiveTime::MIN)),
            until: Some(today.and_hms_opt(23, 59, 59).expect("valid time")),
            page: Some(1),
            size: Some(1),
            cash_register: partitions(self.cfg)[0].cash_register,
        };
        self.page(&filter).map(|_| ())
    }
}
