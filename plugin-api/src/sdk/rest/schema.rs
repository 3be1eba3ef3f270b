//! JSON Schema patterns for the config fields every REST connector has, for
//! `#[schemars(regex(pattern = …))]`. A value the schema refuses is reported by the host with
//! its JSON path (`$.base_url: "ftp://x" does not match "^https?://…"`) before `open`.
//!
//! ```
//! use posbridge_plugin_api::rest::schema::HTTP_URL;
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct Config {
//!     #[schemars(regex(pattern = HTTP_URL))]
//!     base_url: String,
//!     #[schemars(length(min = 1))]
//!     api_key: String,
//! }
//! let schema = serde_json::to_value(schemars::schema_for!(Config)).unwrap();
//! assert_eq!(schema["properties"]["base_url"]["pattern"], HTTP_URL);
//! assert_eq!(schema["properties"]["api_key"]["minLength"], 1);
//! ```

/// An absolute `http://` or `https://` URL with a host.
pub const HTTP_URL: &str = r"^https?://[^\s/?#]+[^\s]*$";

/// Not blank: at least one character that is not white space (a secret or a name of spaces
/// is refused, where `minLength: 1` would let it through).
pub const NOT_BLANK: &str = r"\S";

/// An ISO 4217 currency code: three capital letters.
pub const CURRENCY_CODE: &str = r"^[A-Z]{3}$";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid(pattern: &str, value: &str) -> bool {
        jsonschema::is_valid(
            &json!({"type": "string", "pattern": pattern}),
            &json!(value),
        )
    }

    #[test]
    fn urls_need_a_scheme_and_a_host() {
        for ok in [
            "https://api.lexware.io",
            "http://127.0.0.1:9000/",
            "https://h/v1?x=1",
        ] {
            assert!(valid(HTTP_URL, ok), "{ok}");
        }
        for bad in [
            "",
            "api.lexware.io",
            "ftp://h",
            "https://",
            "https:///x",
            "http://h x",
        ] {
            assert!(!valid(HTTP_URL, bad), "{bad}");
        }
    }

    #[test]
    fn not_blank_needs_one_visible_character() {
        assert!(valid(NOT_BLANK, " k "));
        for bad in ["", " ", "\t\n"] {
            assert!(!valid(NOT_BLANK, bad), "{bad:?}");
        }
    }

    #[test]
    fn currency_codes_are_three_capitals() {
        assert!(valid(CURRENCY_CODE, "EUR"));
        for bad in ["eur", "EURO", "", "E1R"] {
            assert!(!valid(CURRENCY_CODE, bad), "{bad}");
        }
    }
}
