//! The durable record of "voucher saved, payment pending": when booking a payment of a saved
//! voucher fails, the voucher's id and how many of its payments were booked are kept in the
//! plugin's key-value state (the host's state store, per connector and account). The next
//! attempt at the record — the host's retry, a re-run, `dlq retry` — finds the voucher there,
//! never saves it again, reads its `paidAmount` from sevDesk and books only what is missing.
//! Without a record (it was never written, or the state is fresh) the voucher is found by the
//! idempotency key in its description instead.

use posbridge_plugin_api::model::Decimal;
use posbridge_plugin_api::Host;
use serde::{Deserialize, Serialize};

use crate::booking::PaymentBooking;

/// A saved voucher whose payments are not all booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingVoucher {
    /// sevDesk's id of the saved voucher.
    pub voucher_id: u64,
    /// How many of the voucher's payments (in booking order) were booked before the failure.
    pub booked: usize,
}

/// The pending vouchers in the plugin state, by idempotency key.
pub struct PendingVouchers<'a> {
    host: &'a Host,
}

impl<'a> PendingVouchers<'a> {
    pub fn new(host: &'a Host) -> Self {
        Self { host }
    }

    fn state_key(key: &str) -> String {
        format!("voucher-pending:{key}")
    }

    /// The pending voucher of this record, if one is recorded.
    pub fn get(&self, key: &str) -> Option<PendingVoucher> {
        let text = self.host.state_get(&Self::state_key(key))?;
        // An empty value is a record cleared after its payments were booked.
        serde_json::from_str(&text).ok()
    }

    /// Records (or updates) the pending voucher of this record.
    pub fn put(&self, key: &str, pending: PendingVoucher) {
        let text = serde_json::to_string(&pending).unwrap_or_default();
        self.host.state_put(&Self::state_key(key), &text);
    }

    /// Clears the record once every payment is booked (the state has no delete: an empty value).
    pub fn clear(&self, key: &str) {
        self.host.state_put(&Self::state_key(key), "");
    }
}

/// How many of `payments` (in booking order) a voucher's `paid` amount covers: `hint` (what
/// the pending record says) when its prefix sums to `paid`, else the longest prefix that does
/// (a booking whose answer was lost did land). `None` when no prefix sums to `paid`: someone
/// booked by hand, and a person has to look.
pub fn payments_covered(
    payments: &[PaymentBooking],
    paid: Decimal,
    hint: Option<usize>,
) -> Option<usize> {
    let prefix = |n: usize| payments[..n].iter().map(|p| p.amount).sum::<Decimal>();
    if let Some(h) = hint.filter(|h| *h <= payments.len()) {
        if prefix(h) == paid {
            return Some(h);
        }
    }
    (0..=payments.len()).rev().find(|n| prefix(*n) == paid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use posbridge_plugin_api::testing::FakeHost;
    use rust_decimal_macros::dec;

    fn pay(amounts: &[Decimal]) -> Vec<PaymentBooking> {
        amounts
            .iter()
            .enumerate()
            .map(|(i, a)| PaymentBooking {
                check_account: i as u64 + 1,
                amount: *a,
            })
            .collect()
    }

    #[test]
    fn the_paid_amount_says_which_payments_landed() {
        let p = pay(&[dec!(5.00), dec!(3.00)]);
        assert_eq!(payments_covered(&p, dec!(0), None), Some(0));
        assert_eq!(
            payments_covered(&p, dec!(5.00), Some(0)),
            Some(1),
            "a lost answer"
        );
        assert_eq!(payments_covered(&p, dec!(8.00), None), Some(2));
        assert_eq!(
            payments_covered(&p, dec!(3.00), None),
            None,
            "booked by hand"
        );
        // Mixed signs (a closure): +5 then -5 sums to 0 twice; the record decides.
        let mixed = pay(&[dec!(5.00), dec!(-5.00)]);
        assert_eq!(payments_covered(&mixed, dec!(0), Some(0)), Some(0));
        assert_eq!(payments_covered(&mixed, dec!(0), None), Some(2));
        assert_eq!(payments_covered(&mixed, dec!(0), Some(2)), Some(2));
        // A refund: negative payments.
        let refund = pay(&[dec!(-3.57)]);
        assert_eq!(payments_covered(&refund, dec!(-3.57), Some(0)), Some(1));
    }

    #[test]
    fn records_are_kept_per_key_and_cleared() {
        let host = FakeHost::new();
        let h = host.host();
        let pending = PendingVouchers::new(&h);
        assert_eq!(pending.get("k1"), None);
        let rec = PendingVoucher {
            voucher_id: 12,
            booked: 1,
        };
        pending.put("k1", rec);
        assert_eq!(pending.get("k1"), Some(rec));
        assert_eq!(pending.get("k2"), None);
        pending.clear("k1");
        assert_eq!(pending.get("k1"), None);
    }
}
