//! Finding a line's tax rate. A line names its tax only by `tax.id`, while the `taxes`
//! breakdown carries rates and no ids, so the rate is derived from amounts — by the documented
//! steps, never by a silent guess (see `docs/connectors/oktopos.md`).

use std::collections::BTreeMap;

use posbridge_plugin_api::model::{round_money, TaxLine};
use rust_decimal::Decimal;

/// What the rate finder needs to know about one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineTax {
    /// The vendor's tax id (`items[].tax.id`), as text; `None` when absent.
    pub tax_id: Option<String>,
    pub gross: Decimal,
    pub tax: Decimal,
}

/// The rate of each line, in order; `None` where no documented step decides it.
pub fn resolve_rates(
    lines: &[LineTax],
    breakdown: &[TaxLine],
    currency: &str,
) -> Vec<Option<Decimal>> {
    // Step 1: a single rate applies to every line.
    let mut rates: Vec<Decimal> = breakdown.iter().map(|t| t.rate.normalize()).collect();
    rates.sort();
    rates.dedup();
    if rates.len() == 1 {
        return vec![Some(rates[0]); lines.len()];
    }

    // Step 2: lines grouped by tax id whose sums match exactly one breakdown entry.
    let mut groups: BTreeMap<&str, (Decimal, Decimal)> = BTreeMap::new();
    for l in lines {
        if let Some(id) = l.tax_id.as_deref() {
            let e = groups.entry(id).or_default();
            e.0 += l.gross;
            e.1 += l.tax;
        }
    }
    let group_rate: BTreeMap<&str, Decimal> = groups
        .iter()
        .filter_map(|(id, (gross, tax))| {
            let mut fits = breakdown
                .iter()
                .filter(|t| t.gross == *gross && t.tax == *tax)
                .map(|t| t.rate.normalize());
            let first = fits.next()?;
            fits.all(|r| r == first).then_some((*id, first))
        })
        .collect();

    lines
        .iter()
        .map(|l| {
            if let Some(r) = l.tax_id.as_deref().and_then(|id| group_rate.get(id)) {
                return Some(*r);
            }
            // Step 3: exactly one breakdown rate reproduces the line's tax from its gross, with
            // the tax rounded directly or as gross minus the rounded net (both are in use).
            let hundred = Decimal::ONE_HUNDRED;
            let mut fits = rates.iter().filter(|r| {
                let direct = round_money(l.gross * **r / (hundred + **r), currency);
                let from_net = l.gross - round_money(l.gross * hundred / (hundred + **r), currency);
                direct == l.tax || from_net == l.tax
            });
            match (fits.next(), fits.next()) {
                (Some(r), None) => Some(*r),
                _ => None,
            }
        })
        .collect()
}

/// The rate a line's own amounts imply (`tax / net × 100`, 2 decimals): used only to report a
/// line whose rate could not be found, so that validation names the mismatch.
pub fn implied_rate(net: Decimal, tax: Decimal) -> Decimal {
    if net.is_zero() {
        return Decimal::ZERO;
    }
    (tax / net * Decimal::ONE_HUNDRED).round_dp(2).normalize()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn line(id: &str, gross: Decimal, tax: Decimal) -> LineTax {
        LineTax {
            tax_id: Some(id.into()),
            gross,
            tax,
        }
    }

    fn entry(rate: Decimal, gross: Decimal, tax: Decimal) -> TaxLine {
        TaxLine {
            rate,
            net: gross - tax,
            tax,
            gross,
        }
    }

    #[test]
    fn a_single_breakdown_rate_applies_to_all_lines() {
        let lines = [
            line("1", dec!(2.38), dec!(0.16)),
            line("9", dec!(1.07), dec!(0.07)),
        ];
        let got = resolve_rates(&lines, &[entry(dec!(7), dec!(3.45), dec!(0.23))], "EUR");
        assert_eq!(got, vec![Some(dec!(7)), Some(dec!(7))]);
    }

    #[test]
    fn tax_id_groups_match_breakdown_sums() {
        // Two 7 % lines under id 1 and one 19 % line under id 2.
        let lines = [
            line("1", dec!(2.38), dec!(0.16)),
            line("2", dec!(1.19), dec!(0.19)),
            line("1", dec!(1.07), dec!(0.07)),
        ];
        let breakdown = [
            entry(dec!(7), dec!(3.45), dec!(0.23)),
            entry(dec!(19), dec!(1.19), dec!(0.19)),
        ];
        let got = resolve_rates(&lines, &breakdown, "EUR");
        assert_eq!(got, vec![Some(dec!(7)), Some(dec!(19)), Some(dec!(7))]);
    }

    #[test]
    fn per_line_rounding_decides_when_ids_do_not() {
        // Both lines share tax id 5 although their rates differ: step 2 fails, step 3 decides.
        let lines = [
            line("5", dec!(2.38), dec!(0.16)),
            line("5", dec!(1.19), dec!(0.19)),
        ];
        let breakdown = [
            entry(dec!(7), dec!(2.38), dec!(0.16)),
            entry(dec!(19), dec!(1.19), dec!(0.19)),
        ];
        let got = resolve_rates(&lines, &breakdown, "EUR");
        assert_eq!(got, vec![Some(dec!(7)), Some(dec!(19))]);
    }

    #[test]
    fn an_ambiguous_line_stays_unresolved() {
        // A zero line fits 0 % and 7 % alike (tax 0.00 either way at 0.01 gross).
        let lines = [
            line("5", dec!(0.01), dec!(0.00)),
            line("5", dec!(1.07), dec!(0.07)),
            line("5", dec!(1.00), dec!(0.00)),
        ];
        let breakdown = [
            entry(dec!(0), dec!(1.00), dec!(0)),
            entry(dec!(7), dec!(1.08), dec!(0.07)),
        ];
        let got = resolve_rates(&lines, &breakdown, "EUR");
        assert_eq!(got, vec![None, Some(dec!(7)), Some(dec!(0))]);
    }

    #[test]
    fn implied_rate_reports_the_lines_own_ratio() {
        assert_eq!(implied_rate(dec!(1.00), dec!(0.19)), dec!(19));
        assert_eq!(implied_rate(dec!(0), dec!(0)), dec!(0));
    }
}
