//! Payment-provider records: payments, refunds, payouts and balance transactions.

use chrono::{DateTime, FixedOffset};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A payment taken through a PSP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PspPayment {
    /// The PSP's payment id.
    pub id: String,
    /// The amount taken.
    pub amount: Decimal,
    /// ISO 4217 currency code.
    pub currency: String,
    /// The PSP's status (`succeeded`, …).
    pub status: String,
    /// When it was created.
    pub created: DateTime<FixedOffset>,
    /// How much of it was refunded so far.
    #[serde(default)]
    pub amount_refunded: Decimal,
    /// The payment method (`card`, …).
    #[serde(default)]
    pub method: Option<String>,
    /// The sale this payment belongs to, when known.
    #[serde(default)]
    pub sale_id: Option<String>,
    /// The description given with the payment.
    #[serde(default)]
    pub description: Option<String>,
}

/// A refund of a PSP payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PspRefund {
    /// The PSP's refund id.
    pub id: String,
    /// The payment refunded.
    pub payment_id: String,
    /// The amount refunded.
    pub amount: Decimal,
    /// ISO 4217 currency code.
    pub currency: String,
    /// The PSP's status.
    pub status: String,
    /// When it was created.
    pub created: DateTime<FixedOffset>,
    /// Why, as given.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A payout from the PSP to the merchant's bank account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PspPayout {
    /// The PSP's payout id.
    pub id: String,
    /// The amount paid out.
    pub amount: Decimal,
    /// ISO 4217 currency code.
    pub currency: String,
    /// The PSP's status.
    pub status: String,
    /// When it was created.
    pub created: DateTime<FixedOffset>,
    /// When it is expected on the bank account.
    #[serde(default)]
    pub arrival_date: Option<DateTime<FixedOffset>>,
}

/// A movement on the PSP balance (charge, refund, fee, payout …): `net = amount - fee`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BalanceTransaction {
    /// The PSP's id of the movement.
    pub id: String,
    /// Its type (`charge`, `refund`, `stripe_fee`, `payout`, …), serialized as `type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Gross amount (negative for money leaving the balance).
    pub amount: Decimal,
    /// The PSP's fee.
    pub fee: Decimal,
    /// `amount - fee`.
    pub net: Decimal,
    /// ISO 4217 currency code.
    pub currency: String,
    /// When it was booked.
    pub created: DateTime<FixedOffset>,
    /// The id of the object that caused it (payment, refund, payout).
    #[serde(default)]
    pub source: Option<String>,
}
