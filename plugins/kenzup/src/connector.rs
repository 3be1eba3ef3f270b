//! The [`Connector`] and [`Source`] implementation: passes over the shops, one Kenzup page per read.

use posbridge_plugin_api::model::Sale;
use posbridge_plugin_api::{
    CheckReport, Connector, ConnectorError, Host, LogLevel, Manifest, Page, ReadRequest, Source,
    StreamDecl,
};
use serde_json::{json, Value};

use crate::client::{ExportQuery, KenzupClient};
use crate::config::{KenzupConfig, PRODUCTION_HOST};
use crate::cursor::{current_pass, finish_shop, page_of, read_cursor, WindowRules};
use crate::mapping::sale_from_row;
use crate::signature::RequestSigner;
use posbridge_plugin_api::rest::Position;

/// The Kenzup connector: reads the `sales` stream.
pub struct KenzupConnector {
    client: KenzupClient,
}

impl KenzupConnector {
    fn config(&self) -> &KenzupConfig {
        self.client.config()
    }

    fn host(&self) -> &Host {
        self.client.host()
    }

    fn rules(&self, req: &ReadRequest) -> WindowRules {
        WindowRules {
            overlap_days: self.config().overlap_days,
            start_date: self.config().start_date,
            from: req.from,
            to: req.to,
            today: self.host().now().date_naive(),
        }
    }

    /// Maps a page's rows; a row that cannot be mapped fails the page, naming shop, page and field.
    fn map_items(
        &self,
        items: &[Value],
        q: &ExportQuery<'_>,
    ) -> Result<Vec<Value>, ConnectorError> {
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let mapped = sale_from_row(item, &self.config().currency).map_err(|e| {
                ConnectorError::Permanent(format!(
                    "kenzup: sales export of shop {} page {} item {i}: {e}",
                    q.shop_uuid, q.page
                ))
            })?;
            if let Some(w) = &mapped.warning {
                self.host()
                    .log(LogLevel::Warn, w, json!({"sale": mapped.sale.id}));
            }
            out.push(sale_to_value(&mapped.sale)?);
        }
        Ok(out)
    }

    fn read_sales(&self, req: &ReadRequest) -> Result<Page, ConnectorError> {
        let shops = &self.config().shop_uuids;
        let rules = self.rules(req);
        let mut cursor = read_cursor(req.cursor.as_ref())?;
        let mut pass = current_pass(&cursor, shops, &rules);
        // Shops whose window is empty (from after to) need no request.
        while let Some(p) = pass.clone().filter(|p| p.window.start > p.window.end) {
            pass = finish_shop(&mut cursor, shops, &p, &rules);
        }
        let Some(mut pass) = pass else {
            cursor.pass = None;
            return Ok(Page {
                records: vec![],
                cursor: Some(cursor.to_json()),
                has_more: false,
            });
        };
        let q = ExportQuery {
            shop_uuid: &pass.key,
            start: pass.window.start,
            end: pass.window.end,
            page: page_of(&pass),
            items_per_page: self.config().items_per_page,
        };
        let page = self.client.export_sales(&q)?;
        let records = self.map_items(&page.items, &q)?;
        let has_more = if let Some(next) = page.next_page {
            pass.at = Position::Page(next);
            cursor.pass = Some(pass);
            true
        } else {
            finish_shop(&mut cursor, shops, &pass, &rules).is_some()
        };
        Ok(Page {
            records,
            cursor: Some(cursor.to_json()),
            has_more,
        })
    }
}

fn sale_to_value(sale: &Sale) -> Result<Value, ConnectorError> {
    serde_json::to_value(sale)
        .map_err(|e| ConnectorError::Bug(format!("kenzup: sale does not serialize: {e}")))
}

impl Connector for KenzupConnector {
    type Config = KenzupConfig;

    fn manifest() -> Manifest {
        Manifest::new(
            "kenzup",
            env!("CARGO_PKG_VERSION"),
            "Kenz'up",
            "Kenzup generic sales export: loyalty earn/burn sales per shop, RSA-signed requests",
        )
        .stream(StreamDecl::read("sales"))
        .egress_host(PRODUCTION_HOST)
        .egress_config_field("base_url")
    }

    fn open(config: KenzupConfig, host: Host) -> Result<Self, ConnectorError> {
        // Field checks are the schema's: the host reports them by JSON path before `open`.
        let signer = RequestSigner::from_pem(&config.private_key_pem)
            .map_err(|e| ConnectorError::Config(format!("kenzup: {e}")))?;
        Ok(Self {
            client: KenzupClient::new(host, config, signer),
        })
    }

    fn check(&self) -> Result<CheckReport, ConnectorError> {
        let today = self.host().now().date_naive();
        for shop in &self.config().shop_uuids {
            self.client.export_sales(&ExportQuery {
                shop_uuid: shop,
                start: today,
                end: today,
                page: 1,
                items_per_page: 1,
            })?;
        }
        Ok(CheckReport::ok(format!(
            "kenzup: signature accepted for client {} and {} shop(s)",
            self.config().client_id,
            self.config().shop_uuids.len()
        )))
    }

    fn source(&self) -> Option<&dyn Source> {
        Some(self)
    }
}

impl Source for KenzupConnector {
    fn read(&self, req: &ReadRequest) -> Result<Page, ConnectorError> {
        match req.stream.as_str() {
            "sales" => self.read_sales(req),
            other => Err(ConnectorError::Config(format!(
                "kenzup: unknown stream {other:?} (only `sales`)"
            ))),
        }
    }
}
