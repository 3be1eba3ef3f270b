//! sevDesk's failures: the REST toolkit's typed [`RestError`] (statuses mapped to the host's
//! kinds by its one answer handler; sevDesk's error body `{"objects": null, "error":
//! {"message", "exceptionUUID"}}` (spec `validationError`) is one of the shapes it reads).

pub use posbridge_plugin_api::rest::RestError;

/// A missing or mistyped field of an answer of `endpoint` (`GET Part`).
pub fn bad_field(endpoint: &str, field: impl Into<String>, expected: &'static str) -> RestError {
    RestError::bad_field(format!("sevdesk: {endpoint}"), field, expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use posbridge_plugin_api::ConnectorError;

    #[test]
    fn a_bad_field_names_sevdesk_the_call_and_the_field() {
        let field: ConnectorError = bad_field("GET Part", "objects", "an array").into();
        assert!(
            matches!(&field, ConnectorError::Permanent(m) if m.starts_with("sevdesk: GET Part") && m.contains("objects")),
            "{field:?}"
        );
    }
}
