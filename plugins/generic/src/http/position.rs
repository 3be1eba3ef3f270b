//! The HTTP source's cursor: which request fetches the current page, and how many of its
//! records were already returned.
//!
//! | kind     | cursor                                           |
//! |----------|--------------------------------------------------|
//! | `none`   | `{"skip": 20}`                                    |
//! | `page`   | `{"page": 3, "page_size": 100, "skip": 20}`       |
//! | `offset` | `{"offset": 240}`                                 |
//! | `cursor` | `{"cursor": "abc" or null, "skip": 20}`           |
//!
//! Keeping the position *inside* the last page (instead of jumping to the next one) lets a
//! later run pick up records that were appended to a page that was not full yet.

use serde_json::{json, Value};

use super::config::{Pagination, PaginationKind};
use super::error::HttpError;

/// Where the source goes on from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// The single request, after `skip` records.
    Whole { skip: usize },
    /// Page number `page`, after `skip` of its records.
    Page { page: u64, skip: usize },
    /// After `offset` records.
    Offset { offset: u64 },
    /// The page fetched with `token` (`None`: the first page), after `skip` of its records.
    Token { token: Option<String>, skip: usize },
}

impl Position {
    /// The start of the data for this pagination.
    pub fn start(p: &Pagination) -> Position {
        match p.kind {
            PaginationKind::None => Position::Whole { skip: 0 },
            PaginationKind::Page => Position::Page {
                page: p.start_page,
                skip: 0,
            },
            PaginationKind::Offset => Position::Offset { offset: 0 },
            PaginationKind::Cursor => Position::Token {
                token: None,
                skip: 0,
            },
        }
    }

    /// The position of a cursor the host handed back (`None`: the start).
    ///
    /// A page cursor written with another `page_size` is converted through its record index,
    /// so changing `page_size` under a checkpoint neither skips nor repeats records.
    pub fn from_cursor(cursor: Option<&Value>, p: &Pagination) -> Result<Position, HttpError> {
        let Some(c) = cursor.filter(|c| !c.is_null()) else {
            return Ok(Position::start(p));
        };
        let malformed = || HttpError::BadRequest(format!("malformed HTTP source cursor {c}"));
        let Some(obj) = c.as_object() else {
            return Err(malformed());
        };
        let uint = |k: &str| obj.get(k).and_then(Value::as_u64);
        let skip = || uint("skip").map(|s| s as usize).ok_or_else(malformed);
        let position = match p.kind {
            PaginationKind::None if obj.len() == 1 => Position::Whole { skip: skip()? },
            PaginationKind::Page if obj.contains_key("page") => {
                let page = uint("page").ok_or_else(malformed)?;
                let size = uint("page_size").ok_or_else(malformed)?.max(1);
                let skip = skip()? as u64;
                let want = p.page_size as u64;
                if size == want || page < p.start_page {
                    Position::Page {
                        page,
                        skip: skip as usize,
                    }
                } else {
                    let index = (page - p.start_page) * size + skip;
                    Position::Page {
                        page: p.start_page + index / want,
                        skip: (index % want) as usize,
                    }
                }
            }
            PaginationKind::Offset if obj.contains_key("offset") => Position::Offset {
                offset: uint("offset").ok_or_else(malformed)?,
            },
            PaginationKind::Cursor if obj.contains_key("cursor") => Position::Token {
                token: match &obj["cursor"] {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    _ => return Err(malformed()),
                },
                skip: skip()?,
            },
            _ => {
                return Err(HttpError::Config(format!(
                    "the checkpointed cursor {c} does not fit pagination kind {:?}; was the pagination changed?",
                    p.kind
                )))
            }
        };
        Ok(position)
    }

    /// The cursor handed to the host.
    pub fn to_cursor(&self, p: &Pagination) -> Value {
        match self {
            Position::Whole { skip } => json!({ "skip": skip }),
            Position::Page { page, skip } => {
                json!({ "page": page, "page_size": p.page_size, "skip": skip })
            }
            Position::Offset { offset } => json!({ "offset": offset }),
            Position::Token { token, skip } => json!({ "cursor": token, "skip": skip }),
        }
    }

    /// How many records of the fetched page were already returned.
    pub fn skip(&self) -> usize {
        match self {
            Position::Whole { skip }
            | Position::Page { skip, .. }
            | Position::Token { skip, .. } => *skip,
            Position::Offset { .. } => 0,
        }
    }

    /// The same request with `n` more of its records returned.
    pub fn advanced_within(&self, n: usize) -> Position {
        match self.clone() {
            Position::Whole { skip } => Position::Whole { skip: skip + n },
            Position::Page { page, skip } => Position::Page {
                page,
                skip: skip + n,
            },
            Position::Offset { offset } => Position::Offset {
                offset: offset + n as u64,
            },
            Position::Token { token, skip } => Position::Token {
                token,
                skip: skip + n,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pagination(kind: PaginationKind, page_size: usize) -> Pagination {
        Pagination {
            kind,
            page_size,
            ..Pagination::default()
        }
    }

    #[test]
    fn round_trips_through_the_cursor() {
        for (kind, pos) in [
            (PaginationKind::None, Position::Whole { skip: 3 }),
            (PaginationKind::Page, Position::Page { page: 4, skip: 2 }),
            (PaginationKind::Offset, Position::Offset { offset: 41 }),
            (
                PaginationKind::Cursor,
                Position::Token {
                    token: Some("a+b/=".into()),
                    skip: 1,
                },
            ),
            (
                PaginationKind::Cursor,
                Position::Token {
                    token: None,
                    skip: 0,
                },
            ),
        ] {
            let p = pagination(kind, 10);
            let back = Position::from_cursor(Some(&pos.to_cursor(&p)), &p).unwrap();
            assert_eq!(back, pos);
        }
    }

    #[test]
    fn a_page_cursor_survives_a_changed_page_size() {
        let old = pagination(PaginationKind::Page, 10);
        // Page 3 of 10 (1-based) after 4 records: record index 24.
        let c = Position::Page { page: 3, skip: 4 }.to_cursor(&old);
        let new = pagination(PaginationKind::Page, 7);
        assert_eq!(
            Position::from_cursor(Some(&c), &new).unwrap(),
            Position::Page { page: 4, skip: 3 }
        );
    }

    #[test]
    fn a_cursor_of_another_kind_or_shape_is_refused() {
        let offset = pagination(PaginationKind::Offset, 10);
        let page = pagination(PaginationKind::Page, 10);
        let c = Position::Offset { offset: 5 }.to_cursor(&offset);
        assert!(matches!(
            Position::from_cursor(Some(&c), &page),
            Err(HttpError::Config(_))
        ));
        assert!(matches!(
            Position::from_cursor(Some(&json!({ "offset": "x" })), &offset),
            Err(HttpError::BadRequest(_))
        ));
        assert!(matches!(
            Position::from_cursor(Some(&json!(7)), &offset),
            Err(HttpError::BadRequest(_))
        ));
    }
}
