//! Payment-provider records: payments, refunds, payouts and balance transactions.

use chrono::{DateTime, FixedOffset};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A payment taken through a PSP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PspPayment {
    pub id: String,
    pub amount: Decimal,
    pub currency: String,
    pub status: String,
    pub created: DateTime<FixedOffset>,
    #[serde(default)]
    pub amount_refunded: Decimal,
    #[serde(default)]
    pub method: Option<String>,
    /// The sale this payment belongs to, when known.
    #[serde(default)]
    pub sale_id: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// A refund of a PSP payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PspRefund {
    pub id: String,
    pub payment_id: String,
    pub amount: Decimal,
    pub currency: String,
    pub status: String,
    pub created: DateTime<FixedOffset>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// A payout from the PSP to the merchant's bank account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PspPayout {
    pub id: String,
    pub amount: Decimal,
    pub currency: String,
    pub status: String,
    pub created: DateTime<FixedOffset>,
    #[serde(default)]
    pub arrival_date: Option<DateTime<FixedOffset>>,
}

/// A movement on the PSP balance (charge, refund, fee, payout …): `net = amount - fee`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BalanceTransaction {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub amount: Decimal,
    pub fee: Decimal,
    pub net: Decimal,
    pub currency: String,
    pub created: DateTime<FixedOffset>,
    #[serde(default)]
    pub source: Option<String>,
}
