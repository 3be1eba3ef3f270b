//! The source cursor: which file, and the byte offset just after the last record returned.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::FileError;

/// Where a re-read continues: `file` (its name, relative to the folder in folder mode) and
/// `offset`, the byte offset just after the last record returned from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    pub file: String,
    pub offset: u64,
}

impl Cursor {
    /// Reads the cursor the host hands back; `null` or absent means "from the start".
    pub fn from_request(value: Option<&Value>) -> Result<Option<Cursor>, FileError> {
        match value {
            None | Some(Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v.clone()).map(Some).map_err(|e| {
                FileError::BadRequest(format!(
                    "cursor {v} is not {{\"file\": \"...\", \"offset\": N}}: {e}"
                ))
            }),
        }
    }

    /// The cursor as the JSON value returned in a page.
    pub fn to_value(&self) -> Value {
        serde_json::json!({ "file": self.file, "offset": self.offset })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_other_shapes() {
        let c = Cursor {
            file: "a.ndjson".into(),
            offset: 42,
        };
        assert_eq!(Cursor::from_request(Some(&c.to_value())).unwrap(), Some(c));
        assert_eq!(Cursor::from_request(Some(&Value::Null)).unwrap(), None);
        assert!(Cursor::from_request(Some(&serde_json::json!({"page": 2}))).is_err());
    }
}
