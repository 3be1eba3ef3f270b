//! Declarative paginators: how a list endpoint is asked for a page, and how its answer says
//! where the next page is. A connector's `read` fetches one page per call and keeps the
//! [`Position`] in its cursor.
//!
//! Field locations are JSON pointers (`/meta/total_pages`); `""` is the body itself.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::answer::RestError;
use super::client::RequestBuilder;

/// Where a paged read stands: what the next request asks for. Serialises as `{"page": 2}`,
/// `{"offset": 200}` or `{"token": "abc"}` (`{"token": null}` is the first page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    /// A page number.
    Page(u64),
    /// An item offset.
    Offset(u64),
    /// A continuation token; `None` for the first page.
    Token(Option<String>),
}

/// A way of paging a list endpoint. The toolkit has [`PageNumber`], [`Offset`],
/// [`CursorToken`] and [`HasMore`]; a vendor with another scheme implements this.
///
/// ```
/// use posbridge_plugin_api::rest::{Paginator, Position};
/// use serde_json::{json, Value};
///
/// /// Pages named by the id of the last item seen: `?after=<id>`, until a page comes back empty.
/// struct After;
///
/// impl Paginator for After {
///     fn first(&self) -> Position { Position::Token(None) }
///     fn query(&self, at: &Position) -> Vec<(String, String)> {
///         match at {
///             Position::Token(Some(id)) => vec![("after".into(), id.clone())],
///             _ => vec![],
///         }
///     }
///     fn next(&self, _at: &Position, _body: &Value, items: &[Value]) -> Option<Position> {
///         let last = items.last()?["id"].as_str()?.to_string();
///         Some(Position::Token(Some(last)))
///     }
/// }
///
/// let next = After.next(&After.first(), &json!({}), &[json!({"id": "a7"})]).unwrap();
/// assert_eq!(After.query(&next), vec![("after".to_string(), "a7".to_string())]);
/// assert_eq!(After.next(&next, &json!({}), &[]), None);
/// ```
pub trait Paginator {
    /// The position of the first page.
    fn first(&self) -> Position;
    /// The query parameters that ask for the page at `at`.
    fn query(&self, at: &Position) -> Vec<(String, String)>;
    /// Where the page after `at` is, from its answer (`body`) and its `items`; `None` when `at`
    /// was the last page.
    fn next(&self, at: &Position, body: &Value, items: &[Value]) -> Option<Position>;
}

/// One page as read: its items, the whole body (for envelope fields) and the next position.
#[derive(Debug, Clone, PartialEq)]
pub struct PageOf {
    /// The page's items.
    pub items: Vec<Value>,
    /// The whole answer, for envelope fields.
    pub body: Value,
    /// Where the next page is; `None` after the last.
    pub next: Option<Position>,
}

/// Sends `request` for the page at `at` and reads it: the items are the array at `items`
/// (a JSON pointer; `""` for a bare array). Liberal where the shape is open: a bare object
/// where an array was expected is one item, and a missing or `null` array is no items.
///
/// ```
/// # #[cfg(feature = "testing")] fn main() {
/// use posbridge_plugin_api::rest::{fetch_page, PageNumber, Paginator, Position, RestClient};
/// use posbridge_plugin_api::testing::{json_response, FakeHost};
/// use serde_json::json;
///
/// let vendor = FakeHost::with_vendor(|req| {
///     let page: u64 = req.url.split("page=").nth(1).unwrap()[..1].parse().unwrap();
///     Ok(json_response(200, &json!({"data": [page], "total_pages": 2})))
/// });
/// let api = RestClient::new(vendor.host(), "acme", "http://h");
/// let pages = PageNumber::new("page", 1).size("per_page", 1).total_pages("/total_pages");
/// let mut at = Some(pages.first());
/// let mut seen = vec![];
/// while let Some(pos) = at {
///     let page = fetch_page(api.get("sales"), &pages, &pos, "/data").unwrap();
///     seen.extend(page.items);
///     at = page.next;
/// }
/// assert_eq!(seen, vec![json!(1), json!(2)]);
/// assert_eq!(vendor.requests()[1].url, "http://h/sales?page=2&per_page=1");
/// # }
/// # #[cfg(not(feature = "testing"))] fn main() {}
/// ```
pub fn fetch_page(
    request: RequestBuilder<'_>,
    paginator: &dyn Paginator,
    at: &Position,
    items: &str,
) -> Result<PageOf, RestError> {
    let context = request.context();
    let body = request.query_pairs(&paginator.query(at)).send_json()?;
    let list = items_at(&body, items)
        .ok_or_else(|| RestError::bad_field(context, pointer_name(items), "an array of objects"))?;
    let next = paginator.next(at, &body, &list);
    Ok(PageOf {
        items: list,
        body,
        next,
    })
}

/// The items at a JSON pointer: an array, one object (one item), or nothing (`null` or absent).
/// `None` for anything else (a number, a string).
pub fn items_at(body: &Value, pointer: &str) -> Option<Vec<Value>> {
    match body.pointer(pointer) {
        Some(Value::Array(a)) => Some(a.clone()),
        Some(o @ Value::Object(_)) => Some(vec![o.clone()]),
        Some(Value::Null) | None => Some(Vec::new()),
        Some(_) => None,
    }
}

/// A pointer as a field name for messages (`/meta/total` → `meta.total`).
fn pointer_name(pointer: &str) -> String {
    match pointer.trim_start_matches('/').replace('/', ".") {
        s if s.is_empty() => "(body)".into(),
        s => s,
    }
}

/// A non-negative integer at a pointer, written as a number or a numeric string.
fn count_at(body: &Value, pointer: &str) -> Option<u64> {
    match body.pointer(pointer)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A boolean at a pointer, written as `true` or `"true"`.
fn flag_at(body: &Value, pointer: &str) -> Option<bool> {
    match body.pointer(pointer)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `?page=N` (plus an optional page size). The last page is the one that says so (a
/// total-pages field or a "last" flag, when configured and present), else a short or empty page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageNumber {
    /// The query parameter of the page number.
    pub param: String,
    /// The number of the first page (0 or 1).
    pub first_page: u64,
    /// The page size parameter and value.
    pub size: Option<(String, u64)>,
    /// Pointer to the number of pages.
    pub total_pages: Option<String>,
    /// Pointer to a flag that is true on the last page.
    pub last_flag: Option<String>,
}

impl PageNumber {
    /// Pages numbered from `first_page` in the query parameter `param`.
    pub fn new(param: &str, first_page: u64) -> Self {
        Self {
            param: param.into(),
            first_page,
            size: None,
            total_pages: None,
            last_flag: None,
        }
    }
    /// Asks for `size` items per page in the query parameter `param`.
    pub fn size(mut self, param: &str, size: u64) -> Self {
        self.size = Some((param.into(), size));
        self
    }
    /// The answer gives the number of pages at this JSON pointer.
    pub fn total_pages(mut self, pointer: &str) -> Self {
        self.total_pages = Some(pointer.into());
        self
    }
    /// The answer flags the last page at this JSON pointer.
    pub fn last_flag(mut self, pointer: &str) -> Self {
        self.last_flag = Some(pointer.into());
        self
    }
    /// Whether page `n` is the last, by the answer alone (for connectors that put the page in
    /// the path and so do not use [`fetch_page`]).
    pub fn is_last(&self, n: u64, body: &Value, items: usize) -> bool {
        if items == 0 {
            return true;
        }
        if let Some(total) = self.total_pages.as_deref().and_then(|p| count_at(body, p)) {
            return n + 1 >= self.first_page + total;
        }
        if let Some(last) = self.last_flag.as_deref().and_then(|p| flag_at(body, p)) {
            return last;
        }
        self.size
            .as_ref()
            .is_some_and(|(_, size)| (items as u64) < *size)
    }
}

impl Paginator for PageNumber {
    fn first(&self) -> Position {
        Position::Page(self.first_page)
    }
    fn query(&self, at: &Position) -> Vec<(String, String)> {
        let n = match at {
            Position::Page(n) => *n,
            _ => self.first_page,
        };
        let mut q = vec![(self.param.clone(), n.to_string())];
        if let Some((p, size)) = &self.size {
            q.push((p.clone(), size.to_string()));
        }
        q
    }
    fn next(&self, at: &Position, body: &Value, items: &[Value]) -> Option<Position> {
        let n = match at {
            Position::Page(n) => *n,
            _ => self.first_page,
        };
        (!self.is_last(n, body, items.len())).then_some(Position::Page(n + 1))
    }
}

/// `?offset=N&limit=L`. Done when the offset reaches a total field (when configured and
/// present), else at a short or empty page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offset {
    /// The query parameter of the offset.
    pub param: String,
    /// The query parameter of the page size.
    pub limit_param: String,
    /// Items per page.
    pub limit: u64,
    /// Pointer to the total number of items.
    pub total: Option<String>,
}

impl Offset {
    /// Offsets in `param`, `limit` items per page in `limit_param`.
    pub fn new(param: &str, limit_param: &str, limit: u64) -> Self {
        Self {
            param: param.into(),
            limit_param: limit_param.into(),
            limit,
            total: None,
        }
    }
    /// The answer gives the total number of items at this JSON pointer.
    pub fn total(mut self, pointer: &str) -> Self {
        self.total = Some(pointer.into());
        self
    }
}

impl Paginator for Offset {
    fn first(&self) -> Position {
        Position::Offset(0)
    }
    fn query(&self, at: &Position) -> Vec<(String, String)> {
        let offset = match at {
            Position::Offset(o) => *o,
            _ => 0,
        };
        vec![
            (self.param.clone(), offset.to_string()),
            (self.limit_param.clone(), self.limit.to_string()),
        ]
    }
    fn next(&self, at: &Position, body: &Value, items: &[Value]) -> Option<Position> {
        let offset = match at {
            Position::Offset(o) => *o,
            _ => 0,
        };
        if items.is_empty() {
            return None;
        }
        let next = offset + items.len() as u64;
        let more = match self.total.as_deref().and_then(|p| count_at(body, p)) {
            Some(total) => next < total,
            None => (items.len() as u64) >= self.limit,
        };
        more.then_some(Position::Offset(next))
    }
}

/// A continuation token from the answer (`next_cursor`, `nextPageToken`), sent back as a query
/// parameter. Done when the answer has no (or an empty) token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorToken {
    /// The query parameter the token goes in.
    pub param: String,
    /// Pointer to the next token in the answer.
    pub next_token: String,
    /// The page size parameter and value.
    pub size: Option<(String, u64)>,
}

impl CursorToken {
    /// The token from `next_token` (a JSON pointer) goes back in `param`.
    pub fn new(param: &str, next_token: &str) -> Self {
        Self {
            param: param.into(),
            next_token: next_token.into(),
            size: None,
        }
    }
    /// Asks for `size` items per page in the query parameter `param`.
    pub fn size(mut self, param: &str, size: u64) -> Self {
        self.size = Some((param.into(), size));
        self
    }
}

fn token_query(param: &str, size: &Option<(String, u64)>, at: &Position) -> Vec<(String, String)> {
    let mut q = Vec::new();
    if let Some((p, n)) = size {
        q.push((p.clone(), n.to_string()));
    }
    if let Position::Token(Some(t)) = at {
        q.push((param.into(), t.clone()));
    }
    q
}

impl Paginator for CursorToken {
    fn first(&self) -> Position {
        Position::Token(None)
    }
    fn query(&self, at: &Position) -> Vec<(String, String)> {
        token_query(&self.param, &self.size, at)
    }
    fn next(&self, _at: &Position, body: &Value, _items: &[Value]) -> Option<Position> {
        let token = match body.pointer(&self.next_token)? {
            Value::String(s) if !s.is_empty() => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        Some(Position::Token(Some(token)))
    }
}

/// A "has more" flag plus the last item's id sent back (Stripe's `has_more` and
/// `starting_after`). Without the flag in an answer, a non-empty page means there may be more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HasMore {
    /// The query parameter the last id goes in (`starting_after`).
    pub param: String,
    /// Pointer to the flag.
    pub has_more: String,
    /// Pointer, inside an item, to its id.
    pub id: String,
    /// The page size parameter and value.
    pub size: Option<(String, u64)>,
}

impl HasMore {
    /// The flag at `has_more`, the id at `id` inside an item, sent back in `param`.
    pub fn new(param: &str, has_more: &str, id: &str) -> Self {
        Self {
            param: param.into(),
            has_more: has_more.into(),
            id: id.into(),
            size: None,
        }
    }
    /// Asks for `size` items per page in the query parameter `param`.
    pub fn size(mut self, param: &str, size: u64) -> Self {
        self.size = Some((param.into(), size));
        self
    }
}

impl Paginator for HasMore {
    fn first(&self) -> Position {
        Position::Token(None)
    }
    fn query(&self, at: &Position) -> Vec<(String, String)> {
        token_query(&self.param, &self.size, at)
    }
    fn next(&self, _at: &Position, body: &Value, items: &[Value]) -> Option<Position> {
        if !flag_at(body, &self.has_more).unwrap_or(!items.is_empty()) {
            return None;
        }
        let last = items.last()?.pointer(&self.id)?;
        let id = match last {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        Some(Position::Token(Some(id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(feature = "testing")]
    use crate::rest::RestClient;
    #[cfg(feature = "testing")]
    use crate::testing::{json_response, FakeHost};
    use serde_json::json;

    fn items(n: usize) -> Vec<Value> {
        (0..n).map(|i| json!({"id": format!("x{i}")})).collect()
    }

    #[test]
    fn page_numbers_stop_at_the_total_the_flag_or_a_short_page() {
        let p = PageNumber::new("page", 0)
            .size("size", 2)
            .total_pages("/totalPages");
        assert_eq!(p.first(), Position::Page(0));
        assert_eq!(
            p.query(&Position::Page(3)),
            vec![("page".into(), "3".into()), ("size".into(), "2".into())]
        );
        let total3 = json!({"totalPages": 3});
        assert_eq!(
            p.next(&Position::Page(1), &total3, &items(2)),
            Some(Position::Page(2))
        );
        assert_eq!(p.next(&Position::Page(2), &total3, &items(2)), None);
        // A numeric string counts; without the field, a short page ends it.
        assert_eq!(
            p.next(&Position::Page(0), &json!({"totalPages": "1"}), &items(2)),
            None
        );
        assert_eq!(
            p.next(&Position::Page(0), &json!({}), &items(2)),
            Some(Position::Page(1))
        );
        assert_eq!(p.next(&Position::Page(0), &json!({}), &items(1)), None);
        assert_eq!(p.next(&Position::Page(0), &total3, &[]), None);
        let flagged = PageNumber::new("page", 0).last_flag("/last");
        assert_eq!(
            flagged.next(&Position::Page(0), &json!({"last": true}), &items(5)),
            None
        );
        assert_eq!(
            flagged.next(&Position::Page(0), &json!({"last": false}), &items(5)),
            Some(Position::Page(1))
        );
        // One-based pages with a total.
        let one = PageNumber::new("page", 1).total_pages("/total_pages");
        assert!(!one.is_last(1, &json!({"total_pages": 2}), 3));
        assert!(one.is_last(2, &json!({"total_pages": 2}), 3));
    }

    #[test]
    fn offsets_advance_by_the_items_read_until_the_total() {
        let o = Offset::new("offset", "limit", 2).total("/total");
        assert_eq!(
            o.query(&o.first()),
            vec![("offset".into(), "0".into()), ("limit".into(), "2".into())]
        );
        let body = json!({"total": 5});
        assert_eq!(
            o.next(&Position::Offset(0), &body, &items(2)),
            Some(Position::Offset(2))
        );
        assert_eq!(o.next(&Position::Offset(4), &body, &items(1)), None);
        let no_total = Offset::new("offset", "limit", 2);
        assert_eq!(
            no_total.next(&Position::Offset(2), &json!([]), &items(2)),
            Some(Position::Offset(4))
        );
        assert_eq!(
            no_total.next(&Position::Offset(4), &json!([]), &items(1)),
            None
        );
    }

    #[test]
    fn tokens_come_from_the_answer_or_the_last_item() {
        let t = CursorToken::new("cursor", "/meta/next").size("limit", 10);
        assert_eq!(t.query(&t.first()), vec![("limit".into(), "10".into())]);
        let at = t.next(&t.first(), &json!({"meta": {"next": "abc"}}), &items(1));
        assert_eq!(at, Some(Position::Token(Some("abc".into()))));
        assert_eq!(
            t.query(at.as_ref().unwrap()),
            vec![
                ("limit".into(), "10".into()),
                ("cursor".into(), "abc".into())
            ]
        );
        assert_eq!(
            t.next(&t.first(), &json!({"meta": {"next": ""}}), &items(1)),
            None
        );
        assert_eq!(
            t.next(&t.first(), &json!({"meta": {"next": null}}), &items(1)),
            None
        );

        let h = HasMore::new("starting_after", "/has_more", "/id");
        assert_eq!(
            h.next(&h.first(), &json!({"has_more": true}), &items(3)),
            Some(Position::Token(Some("x2".into())))
        );
        assert_eq!(
            h.next(&h.first(), &json!({"has_more": false}), &items(3)),
            None
        );
        // No flag: a non-empty page may have a successor, an empty one has none.
        assert!(h.next(&h.first(), &json!({}), &items(1)).is_some());
        assert_eq!(h.next(&h.first(), &json!({}), &[]), None);
    }

    #[test]
    fn positions_serialise_for_cursors() {
        for (p, j) in [
            (Position::Page(2), json!({"page": 2})),
            (Position::Offset(7), json!({"offset": 7})),
            (Position::Token(Some("t".into())), json!({"token": "t"})),
            (Position::Token(None), json!({"token": null})),
        ] {
            assert_eq!(serde_json::to_value(&p).unwrap(), j);
            assert_eq!(serde_json::from_value::<Position>(j).unwrap(), p);
        }
    }

    #[cfg(feature = "testing")]
    #[test]
    fn a_has_more_list_is_read_to_its_end_through_the_client() {
        let vendor = FakeHost::with_vendor(|req| {
            let after = req.url.split("starting_after=").nth(1);
            Ok(json_response(
                200,
                &match after {
                    None => json!({"data": [{"id": "a"}, {"id": "b"}], "has_more": true}),
                    Some("b") => json!({"data": [{"id": "c"}], "has_more": false}),
                    Some(other) => panic!("{other}"),
                },
            ))
        });
        let api = RestClient::new(vendor.host(), "acme", "http://h/v1");
        let pages = HasMore::new("starting_after", "/has_more", "/id").size("limit", 2);
        let mut at = Some(pages.first());
        let mut ids = Vec::new();
        while let Some(pos) = at {
            let page = fetch_page(api.get("charges"), &pages, &pos, "/data").unwrap();
            ids.extend(
                page.items
                    .iter()
                    .map(|i| i["id"].as_str().unwrap().to_string()),
            );
            at = page.next;
        }
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(
            vendor.requests()[1].url,
            "http://h/v1/charges?limit=2&starting_after=b"
        );
    }

    #[test]
    fn items_are_read_liberally() {
        assert_eq!(items_at(&json!([1, 2]), ""), Some(vec![json!(1), json!(2)]));
        assert_eq!(
            items_at(&json!({"data": {"id": 1}}), "/data"),
            Some(vec![json!({"id": 1})])
        );
        assert_eq!(items_at(&json!({"data": null}), "/data"), Some(vec![]));
        assert_eq!(items_at(&json!({}), "/data"), Some(vec![]));
        assert_eq!(items_at(&json!({"data": 3}), "/data"), None);
    }

    #[cfg(feature = "testing")]
    #[test]
    fn items_of_a_wrong_type_are_a_bad_field() {
        let vendor = FakeHost::with_vendor(|_| Ok(json_response(200, &json!({"data": 3}))));
        let api = RestClient::new(vendor.host(), "acme", "http://h");
        let p = PageNumber::new("page", 1);
        let e = fetch_page(api.get("x"), &p, &p.first(), "/data").unwrap_err();
        assert_eq!(
            e.to_string(),
            "acme: GET x: field `data` is missing or not an array of objects"
        );
    }
}
