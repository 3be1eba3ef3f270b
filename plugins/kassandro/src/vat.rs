//! Net and tax per rate of a receipt. The document's receipt format has per item only `vat` (a
//! rate) and `priceAll` (the gross), no VAT amounts; when the answer carries none either, they
//! are derived the way a gross-price register computes them: per rate, from the gross sum of
//! that rate, `tax = round(gross × rate / (100 + rate), 2)` (RKSV receipts sum per rate), and
//! that tax is spread over the rate's lines (each line's own rounded tax, the cent left over
//! going to the line with the largest gross), so lines and breakdown reconcile to the cent.
//! VAT amounts the answer does carry (`vatAmount`, `vatSums`) are taken as they are.

use std::collections::BTreeMap;

use posbridge_plugin_api::model::{Decimal, TaxLine};
use rust_decimal::RoundingStrategy;

use crate::config::TaxRounding;
use crate::fields::cents_scale;

/// One item's rate and gross, and its `vatAmount` when the answer has one.
#[derive(Debug, Clone, Copy)]
pub struct ItemVat {
    pub rate: Decimal,
    pub gross: Decimal,
    pub tax: Option<Decimal>,
}

/// The tax of each item (in order) and the breakdown per rate.
#[derive(Debug, PartialEq)]
pub struct Vat {
    pub item_tax: Vec<Decimal>,
    pub taxes: Vec<TaxLine>,
    /// Whether a tax amount was computed from a rate rather than read (sums of read amounts
    /// do not count).
    pub derived: bool,
}

/// The tax contained in a gross amount at `rate` percent, rounded to the cent.
pub fn tax_in(gross: Decimal, rate: Decimal, rounding: TaxRounding) -> Decimal {
    if rate.is_zero() {
        return cents_scale(Decimal::ZERO);
    }
    let strategy = match rounding {
        TaxRounding::HalfUp => RoundingStrategy::MidpointAwayFromZero,
        TaxRounding::HalfEven => RoundingStrategy::MidpointNearestEven,
    };
    cents_scale((gross * rate / (Decimal::ONE_HUNDRED + rate)).round_dp_with_strategy(2, strategy))
}

/// Item taxes and the breakdown; `sums` is the answer's `vatSums`, when it has them.
pub fn receipt_vat(items: &[ItemVat], sums: Option<&[TaxLine]>, rounding: TaxRounding) -> Vat {
    let mut by_rate: BTreeMap<Decimal, Vec<usize>> = BTreeMap::new();
    for (i, it) in items.iter().enumerate() {
        by_rate.entry(it.rate.normalize()).or_default().push(i);
    }
    let mut item_tax: Vec<Decimal> = items.iter().map(|it| it.tax.unwrap_or_default()).collect();
    let mut derived = false;
    let mut taxes = Vec::new();
    for (rate, idx) in &by_rate {
        let gross: Decimal = idx.iter().map(|&i| items[i].gross).sum();
        let all_given = idx.iter().all(|&i| items[i].tax.is_some());
        let given_sum = sums.and_then(|s| s.iter().find(|t| t.rate.normalize() == *rate));
        let tax = match given_sum {
            Some(t) => t.tax,
            None if all_given => idx.iter().map(|&i| item_tax[i]).sum(),
            None => tax_in(gross, *rate, rounding),
        };
        if !all_given {
            derived = true;
            spread(items, idx, tax, rounding, &mut item_tax);
        }
        let rate_as_given = items[idx[0]].rate;
        taxes.push(TaxLine {
            rate: rate_as_given,
            net: cents_scale(gross - tax),
            tax: cents_scale(tax),
            gross: cents_scale(gross),
        });
    }
    Vat {
        item_tax: item_tax.into_iter().map(cents_scale).collect(),
        taxes: sums.map(<[TaxLine]>::to_vec).unwrap_or(taxes),
        derived,
    }
}

/// Spreads a rate's `tax` over its items `idx`: each its own rounded tax, the rest to the item
/// with the largest gross (the first of equals).
fn spread(
    items: &[ItemVat],
    idx: &[usize],
    tax: Decimal,
    rounding: TaxRounding,
    out: &mut [Decimal],
) {
    for &i in idx {
        out[i] = tax_in(items[i].gross, items[i].rate, rounding);
    }
    let rest = tax - idx.iter().map(|&i| out[i]).sum::<Decimal>();
    if let Some(&largest) = idx.iter().rev().max_by_key(|&&i| items[i].gross.abs()) {
        out[largest] += rest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn item(rate: Decimal, gross: Decimal) -> ItemVat {
        ItemVat {
            rate,
            gross,
            tax: None,
        }
    }

    #[test]
    fn rounds_half_up_by_default_and_half_even_on_request() {
        // 0.55 × 10/110 = 0.05 exactly; 1.155 is not reachable with cents, so use 20 %:
        // 0.03 × 20/120 = 0.005 → 0.01 half up, 0.00 half even.
        assert_eq!(
            tax_in(dec!(0.03), dec!(20), TaxRounding::HalfUp),
            dec!(0.01)
        );
        assert_eq!(
            tax_in(dec!(0.03), dec!(20), TaxRounding::HalfEven),
            dec!(0.00)
        );
        assert_eq!(
            tax_in(dec!(-0.03), dec!(20), TaxRounding::HalfUp),
            dec!(-0.01)
        );
        assert_eq!(
            tax_in(dec!(8.40), dec!(10), TaxRounding::HalfUp),
            dec!(0.76)
        );
        assert_eq!(
            tax_in(dec!(5), dec!(0), TaxRounding::HalfUp).to_string(),
            "0.00"
        );
    }

    #[test]
    fn derives_per_rate_from_the_gross_sum_and_spreads_it_over_the_lines() {
        // Three lines at 20 %: per line 0.17 each (1.00 × 1/6 = 0.1666…), 0.51 together, but
        // the rate's 3.00 gross holds 0.50: the line with the largest gross gives a cent back.
        let items = [
            item(dec!(20), dec!(1.00)),
            item(dec!(20), dec!(1.00)),
            item(dec!(10), dec!(4.40)),
            item(dec!(20), dec!(1.00)),
        ];
        let v = receipt_vat(&items, None, TaxRounding::HalfUp);
        assert!(v.derived);
        assert_eq!(
            v.item_tax,
            vec![dec!(0.16), dec!(0.17), dec!(0.40), dec!(0.17)]
        );
        assert_eq!(
            v.taxes,
            vec![
                TaxLine {
                    rate: dec!(10),
                    net: dec!(4.00),
                    tax: dec!(0.40),
                    gross: dec!(4.40)
                },
                TaxLine {
                    rate: dec!(20),
                    net: dec!(2.50),
                    tax: dec!(0.50),
                    gross: dec!(3.00)
                },
            ]
        );
    }

    #[test]
    fn amounts_the_answer_carries_are_taken_as_they_are() {
        let mut items = [item(dec!(10), dec!(8.40)), item(dec!(20), dec!(4.40))];
        items[0].tax = Some(dec!(0.76));
        items[1].tax = Some(dec!(0.73));
        let v = receipt_vat(&items, None, TaxRounding::HalfUp);
        assert!(!v.derived);
        assert_eq!(v.item_tax, vec![dec!(0.76), dec!(0.73)]);
        assert_eq!(v.taxes[1].net, dec!(3.67));
        let sums = [TaxLine {
            rate: dec!(10),
            net: dec!(7.63),
            tax: dec!(0.77),
            gross: dec!(8.40),
        }];
        let v = receipt_vat(&items[..1], Some(&sums), TaxRounding::HalfUp);
        assert_eq!(v.taxes, sums.to_vec(), "given sums are kept, not repaired");
    }
}
