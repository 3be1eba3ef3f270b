//! The HTTP source: pages of a paginated JSON REST endpoint, mapped to canonical records.

use posbridge_plugin_api::{CheckReport, ConnectorError, HttpResponse, Page};
use serde_json::Value;

use super::client::{request, with_query, HttpClient};
use super::config::{HttpConfig, HttpMethod, PaginationKind};
use super::error::HttpError;
use super::field_map::FieldMap;
use super::position::Position;

/// Reads the configured endpoint; the network is reached through an [`HttpClient`].
#[derive(Debug, Clone)]
pub struct HttpSource {
    config: HttpConfig,
    stream: String,
    page_cap: Option<usize>,
    field_map: Option<FieldMap>,
}

/// One fetched page: its records as the vendor sent them, and the next page's token.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedPage {
    pub records: Vec<Value>,
    pub next_token: Option<String>,
}

impl HttpSource {
    /// Validates `config` for reading `stream`; `page_cap` caps the records per page.
    pub fn new(
        config: HttpConfig,
        stream: &str,
        page_cap: Option<usize>,
    ) -> Result<Self, HttpError> {
        config.validate()?;
        let field_map = config
            .field_map
            .as_ref()
            .map(|m| FieldMap::new(stream, m))
            .transpose()?;
        Ok(Self {
            config,
            stream: stream.to_string(),
            page_cap,
            field_map,
        })
    }

    /// Up to `page_size` records after `cursor` (at most one request).
    ///
    /// The returned cursor names the request of the page the last record came from and how
    /// many of its records were returned; when a page is used up and another may follow, it
    /// names the next page instead and `has_more` is `true`.
    pub fn read_page(
        &self,
        client: &dyn HttpClient,
        stream: &str,
        cursor: Option<&Value>,
        page_size: usize,
    ) -> Result<Page, HttpError> {
        if stream != self.stream {
            return Err(HttpError::Config(format!(
                "this connector carries the stream {:?}, not {stream:?}",
                self.stream
            )));
        }
        let p = &self.config.pagination;
        let limit = page_size.min(self.page_cap.unwrap_or(usize::MAX)).max(1);
        let position = Position::from_cursor(cursor, p)?;
        let fetched = self.fetch(client, &position)?;
        let n = fetched.records.len();
        let skip = position.skip().min(n);
        let take = (n - skip).min(limit);
        let records = fetched.records[skip..skip + take]
            .iter()
            .enumerate()
            .map(|(i, r)| {
                self.to_canonical(r).map_err(|message| HttpError::Mapping {
                    index: skip + i,
                    message,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let page_full = n >= p.page_size;
        let (next, has_more) = if skip + take < n {
            (position.advanced_within(take), true)
        } else {
            match (&position, p.kind) {
                (Position::Page { page, .. }, PaginationKind::Page) if page_full => (
                    Position::Page {
                        page: page + 1,
                        skip: 0,
                    },
                    true,
                ),
                (Position::Offset { .. }, _) => (position.advanced_within(take), page_full),
                (Position::Token { token, .. }, _)
                    if fetched.next_token.is_some() && fetched.next_token != *token =>
                {
                    let token = fetched.next_token.clone();
                    (Position::Token { token, skip: 0 }, true)
                }
                _ => (position.advanced_within(take), false),
            }
        };
        Ok(Page {
            records,
            cursor: Some(next.to_cursor(p)),
            has_more,
        })
    }

    /// Performs the request for `position` and picks the records and the next token out.
    pub fn fetch(
        &self,
        client: &dyn HttpClient,
        position: &Position,
    ) -> Result<FetchedPage, HttpError> {
        let p = &self.config.pagination;
        let size = (p.size_param.as_str(), p.page_size.to_string());
        let params: Vec<(&str, String)> = match position {
            Position::Whole { .. } => vec![],
            Position::Page { page, .. } => vec![(p.page_param.as_str(), page.to_string()), size],
            Position::Offset { offset } => {
                vec![(p.offset_param.as_str(), offset.to_string()), size]
            }
            Position::Token { token, .. } => match token {
                Some(t) => vec![(p.cursor_param.as_str(), t.clone()), size],
                None => vec![size],
            },
        };
        let url = with_query(&self.config.url, &params);
        let method = self.config.method.as_str();
        let mut req = request(&self.config, method, url.clone());
        if let (HttpMethod::Post, Some(body)) = (self.config.method, &self.config.body) {
            req = req.json(body);
        }
        let response: HttpResponse = client.send(req)?;
        response.error_for_status(&format!("{method} {url}"))?;
        let body = response.json()?;
        let records = match body.pointer(&p.records_path) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items.clone(),
            Some(_) => {
                return Err(HttpError::Response {
                    url,
                    message: format!(
                        "records_path {:?} does not point to an array",
                        p.records_path
                    ),
                })
            }
        };
        let next_token = match (p.kind, body.pointer(&p.cursor_path)) {
            (PaginationKind::Cursor, Some(Value::String(s))) if !s.is_empty() => Some(s.clone()),
            (PaginationKind::Cursor, Some(Value::Number(n))) => Some(n.to_string()),
            _ => None,
        };
        Ok(FetchedPage {
            records,
            next_token,
        })
    }

    /// Fetches the first page: proves the URL, the credentials and the answer's shape.
    pub fn check(&self, client: &dyn HttpClient) -> Result<CheckReport, ConnectorError> {
        let method = self.config.method.as_str();
        match self.fetch(client, &Position::start(&self.config.pagination)) {
            Ok(page) => Ok(CheckReport::ok(format!(
                "{method} {} answered with {} record(s) on the first page",
                self.config.url,
                page.records.len()
            ))),
            Err(HttpError::Connector(e)) if e.is_retryable() => Err(e),
            Err(e) => Ok(CheckReport::failed(format!(
                "{method} {}: {e}",
                self.config.url
            ))),
        }
    }

    fn to_canonical(&self, record: &Value) -> Result<Value, String> {
        match &self.field_map {
            Some(map) => map.apply(record),
            None if record.is_object() => Ok(record.clone()),
            None => Err("not a JSON object (set a field_map to build one)".into()),
        }
    }
}
