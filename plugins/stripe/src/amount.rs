//! Stripe's amounts: integers in the currency's smallest unit, by Stripe's own table of
//! decimals (which differs from ISO 4217 for a few currencies, e.g. ISK and MGA).

use posbridge_plugin_api::model::Decimal;

/// Currencies Stripe treats as zero-decimal (stripe.com/docs/currencies#zero-decimal).
const ZERO_DECIMAL: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];
/// Currencies Stripe treats as three-decimal.
const THREE_DECIMAL: &[&str] = &["BHD", "JOD", "KWD", "OMR", "TND"];

/// How many decimals Stripe's integer amounts carry for `currency` (any case). ISK, HUF and
/// TWD stay two-decimal in the API (Stripe's "special cases": whole units only, as multiples of 100).
pub fn stripe_decimals(currency: &str) -> u32 {
    let c = currency.to_ascii_uppercase();
    if ZERO_DECIMAL.contains(&c.as_str()) {
        0
    } else if THREE_DECIMAL.contains(&c.as_str()) {
        3
    } else {
        2
    }
}

/// An integer amount from Stripe as an exact decimal of its currency.
pub fn from_minor(minor: i64, currency: &str) -> Decimal {
    Decimal::new(minor, stripe_decimals(currency))
}

/// Why a decimal amount cannot be sent to Stripe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount {amount} has more decimals than Stripe allows for {currency} ({decimals})")]
    TooPrecise {
        amount: Decimal,
        currency: String,
        decimals: u32,
    },
    #[error("amount {0} does not fit Stripe's integer amounts")]
    TooLarge(Decimal),
}

/// A decimal amount as Stripe's integer in the smallest unit, refusing any rounding.
pub fn to_minor(amount: Decimal, currency: &str) -> Result<i64, AmountError> {
    let decimals = stripe_decimals(currency);
    let scaled = amount * Decimal::from(10i64.pow(decimals));
    if scaled.fract() != Decimal::ZERO {
        return Err(AmountError::TooPrecise {
            amount,
            currency: currency.to_ascii_uppercase(),
            decimals,
        });
    }
    i64::try_from(scaled.trunc()).map_err(|_| AmountError::TooLarge(amount))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn converts_both_ways_per_currency() {
        assert_eq!(from_minor(1999, "eur").to_string(), "19.99");
        assert_eq!(from_minor(500, "jpy").to_string(), "500");
        assert_eq!(from_minor(1500, "kwd").to_string(), "1.500");
        assert_eq!(from_minor(-250, "usd").to_string(), "-2.50");
        // Stripe keeps ISK two-decimal and MGA zero-decimal, unlike ISO 4217.
        assert_eq!(from_minor(10000, "isk").to_string(), "100.00");
        assert_eq!(from_minor(700, "mga").to_string(), "700");
        assert_eq!(to_minor(d("19.99"), "EUR"), Ok(1999));
        assert_eq!(to_minor(d("19.9"), "EUR"), Ok(1990));
        assert_eq!(to_minor(d("500"), "JPY"), Ok(500));
        assert_eq!(to_minor(d("1.234"), "BHD"), Ok(1234));
        assert!(matches!(
            to_minor(d("12.345"), "EUR"),
            Err(AmountError::TooPrecise { decimals: 2, .. })
        ));
        assert!(to_minor(d("1.5"), "JPY").is_err());
        assert_eq!(to_minor(d("1.50"), "EUR"), Ok(150));
    }
}
