//! The payment providers seed 003 names, and which of them posbridge supports.

use super::PaymentError;

/// Providers `configure_psp` accepts, each backed by the connector of the same name.
pub const SUPPORTED_PROVIDERS: &[&str] = &["stripe"];

/// Providers the BEEP! sync API names that have no connector yet.
pub const UNSUPPORTED_PROVIDERS: &[&str] = &[
    "payabl", "adyen", "mollie", "sumup", "payone", "unzer", "custom",
];

/// The connector behind a provider name (any case), or why there is none.
pub fn connector_of(provider: &str) -> Result<&'static str, PaymentError> {
    let wanted = provider.trim().to_ascii_lowercase();
    if let Some(p) = SUPPORTED_PROVIDERS.iter().find(|p| **p == wanted) {
        return Ok(p);
    }
    let supported = SUPPORTED_PROVIDERS.iter().map(|s| s.to_string()).collect();
    if UNSUPPORTED_PROVIDERS.contains(&wanted.as_str()) {
        Err(PaymentError::ProviderNotSupportedYet {
            provider: provider.to_string(),
            supported,
        })
    } else {
        Err(PaymentError::UnknownProvider {
            provider: provider.to_string(),
            supported,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_is_supported_the_others_of_the_seed_are_not_yet_and_the_rest_unknown() {
        assert_eq!(connector_of("stripe").unwrap(), "stripe");
        assert_eq!(connector_of(" Stripe ").unwrap(), "stripe");
        for p in UNSUPPORTED_PROVIDERS {
            let e = connector_of(p).unwrap_err();
            assert!(
                matches!(e, PaymentError::ProviderNotSupportedYet { .. }),
                "{p}"
            );
            let m = e.to_string();
            assert!(
                m.contains(p) && m.contains("not supported yet") && m.contains("stripe"),
                "{m}"
            );
            assert_eq!(e.code(), "provider_not_supported");
        }
        let e = connector_of("paypal").unwrap_err();
        assert!(matches!(e, PaymentError::UnknownProvider { .. }));
        assert!(e.to_string().contains("unknown PSP provider \"paypal\""));
        assert!(e.to_string().contains("stripe"));
        assert_eq!(e.http_status(), 400);
    }
}
