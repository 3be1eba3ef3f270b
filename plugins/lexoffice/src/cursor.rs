//! The read cursor, on the SDK's partitioned cursor: one partition per list (`voucherlist` for
//! sales, `contacts` for suppliers), holding the zero-based page the next read asks for and how
//! many entries of it were already read.
//!
//! ```json
//! {"version": 2, "partitions": {"voucherlist": {"page": 3, "offset": 7}}}
//! ```
//!
//! The cursor of earlier versions (`{"page": 3, "offset": 7}`, before the toolkit) is still
//! read, as the state of the list being read, so a saved cursor survives the upgrade.

use posbridge_plugin_api::rest::PartitionedCursor;
use posbridge_plugin_api::ConnectorError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The cursor format version (1 was the private `{"page", "offset"}`).
pub const CURSOR_VERSION: u32 = 2;

/// Where the read of one list resumes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListAt {
    /// The zero-based page to ask for.
    pub page: u64,
    /// Entries of that page already read.
    #[serde(default)]
    pub offset: usize,
}

/// The connector's cursor, as JSON in `Page::cursor`.
pub type Cursor = PartitionedCursor<ListAt>;

/// Reads the cursor of `list` the host hands back; `None` starts afresh.
pub fn read_cursor(value: Option<&Value>, list: &str) -> Result<Cursor, ConnectorError> {
    Ok(Cursor::read(value, CURSOR_VERSION, "lexoffice", |old| {
        let at: ListAt = serde_json::from_value(old.clone()).ok()?;
        let mut c = Cursor::new(CURSOR_VERSION);
        c.partitions.insert(list.into(), at);
        Some(c)
    })?)
}

/// Where the read of `list` resumes (the first page when the cursor has nothing for it).
pub fn list_at(cursor: &Cursor, list: &str) -> ListAt {
    cursor.partitions.get(list).copied().unwrap_or_default()
}

/// A cursor that resumes `list` at `at`.
pub fn cursor_at(list: &str, at: ListAt) -> Cursor {
    let mut c = Cursor::new(CURSOR_VERSION);
    c.partitions.insert(list.into(), at);
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_cursor_round_trips_and_none_is_the_first_page() {
        let at = ListAt { page: 3, offset: 7 };
        let j = cursor_at("voucherlist", at).to_json();
        assert_eq!(
            j,
            json!({"version": 2, "partitions": {"voucherlist": {"page": 3, "offset": 7}}})
        );
        let c = read_cursor(Some(&j), "voucherlist").unwrap();
        assert_eq!(list_at(&c, "voucherlist"), at);
        assert_eq!(list_at(&c, "contacts"), ListAt::default());
        let fresh = read_cursor(None, "voucherlist").unwrap();
        assert_eq!(
            list_at(&fresh, "voucherlist"),
            ListAt { page: 0, offset: 0 }
        );
    }

    #[test]
    fn the_cursor_of_earlier_versions_is_upgraded() {
        let c = read_cursor(Some(&json!({"page": 3, "offset": 7})), "voucherlist").unwrap();
        assert_eq!(c.version, CURSOR_VERSION);
        assert_eq!(list_at(&c, "voucherlist"), ListAt { page: 3, offset: 7 });
        let c = read_cursor(Some(&json!({"page": 2, "offset": 0})), "contacts").unwrap();
        assert_eq!(list_at(&c, "contacts").page, 2);
        // Not a cursor of this connector: refused, naming it.
        let e = read_cursor(Some(&json!({"next": "x"})), "voucherlist").unwrap_err();
        assert!(
            matches!(&e, ConnectorError::Permanent(m) if m.starts_with("lexoffice: cursor")),
            "{e:?}"
        );
        assert!(read_cursor(Some(&json!({"version": 3})), "voucherlist").is_err());
    }
}
