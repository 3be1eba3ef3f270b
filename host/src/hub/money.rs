//! Money in export responses: a JSON number with two decimals (as in the BEEP! sample), written
//! from the decimal's text, and the exact amount as a string beside it. No float ever.

use posbridge_plugin_api::json_text::Json;
use rust_decimal::{Decimal, RoundingStrategy};

/// `d` with exactly two decimals (commercial rounding only when it has more).
pub fn two_decimals(d: Decimal) -> Decimal {
    let mut r = d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(2);
    r
}

/// The pair of fields `name` (number, two decimals) and `nameExact` (string, every decimal).
pub fn money_fields(name: &str, d: Decimal) -> [(String, Json); 2] {
    [
        (name.to_string(), Json::Num(two_decimals(d))),
        (format!("{name}Exact"), Json::Str(d.to_string())),
    ]
}

/// A quantity or rate as a JSON number without trailing zeros (`2`, `0.75`).
pub fn plain_number(d: Decimal) -> Json {
    Json::Num(d.normalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn two_decimals_pads_and_rounds_half_away_from_zero() {
        let d = |s| Decimal::from_str(s).unwrap();
        assert_eq!(two_decimals(d("1847.9")).to_string(), "1847.90");
        assert_eq!(two_decimals(d("-3")).to_string(), "-3.00");
        assert_eq!(two_decimals(d("5.925")).to_string(), "5.93");
        assert_eq!(two_decimals(d("-5.925")).to_string(), "-5.93");
        let [(n, v), (e, x)] = money_fields("total", d("0.125"));
        assert_eq!((n.as_str(), e.as_str()), ("total", "totalExact"));
        assert_eq!(v.to_text(), "0.13");
        assert_eq!(x.to_text(), "\"0.125\"");
    }
}
