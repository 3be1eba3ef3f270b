//! The connector's configuration, as the pipeline gives it.

use posbridge_plugin_api::rest::schema::{HTTP_URL, NOT_BLANK};
use serde::Deserialize;

/// The production API root (spec `servers[0]`).
pub const PRODUCTION_BASE_URL: &str = "https://my.sevdesk.de/api/v1";
/// The host of [`PRODUCTION_BASE_URL`], for the egress allow-list.
pub const PRODUCTION_HOST: &str = "my.sevdesk.de";
/// The largest `limit` a list accepts (spec: "The limit must be between 1 and 1000").
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Whether new vouchers stay drafts or are opened (and then booked with their payments).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VoucherStatus {
    /// Status 50: saved for review; payments are not booked (sevDesk books open vouchers only).
    Draft,
    /// Status 100: open; each payment is then booked with `bookAmount`.
    Open,
}

impl VoucherStatus {
    /// sevDesk's status code.
    pub fn code(self) -> u32 {
        match self {
            Self::Draft => 50,
            Self::Open => 100,
        }
    }
}

/// Whether `saveVoucher` bodies carry the `voucherPos` key. The spec lists it as required
/// but never defines it (the positions travel in `voucherPosSave`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VoucherPosKey {
    /// Left out: no key the spec does not define (a strict sevDesk refuses undefined keys).
    Omit,
    /// Sent as `null`, for an instance that enforces the `required` list as written.
    Null,
}

/// What the sink answers when sevDesk refuses (4xx) booking the payment of a voucher it saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentRefused {
    /// `retry`: the host sends the record again after its backoff; the voucher is never saved
    /// again and only the missing payments are booked. If the refusal stays, the run fails
    /// naming the voucher and the payment, and the next run tries again.
    Retry,
    /// `rejected` with a reason saying the voucher is saved and which payment is pending; the
    /// run goes on, and `posbridge dlq retry` books only the missing payments.
    DeadLetter,
}

/// Configuration of the sevDesk connector.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// API root including `/api/v1`.
    #[serde(default = "default_base_url")]
    #[schemars(regex(pattern = HTTP_URL))]
    pub base_url: String,
    /// The 32-character API token of a sevDesk administrator (sent as `Authorization: <token>`).
    #[schemars(extend("x-secret" = true), regex(pattern = NOT_BLANK))]
    pub api_token: String,
    /// Status of new vouchers: `open` (default; payments are booked) or `draft`.
    #[serde(default = "default_status")]
    pub voucher_status: VoucherStatus,
    /// Currency of parts (sevDesk parts carry no currency): the account's default currency.
    #[serde(default = "default_currency")]
    pub currency: String,
    /// The contact category id of suppliers (sevDesk's standard category "Lieferant" is 2).
    #[serde(default = "default_supplier_category")]
    pub supplier_category_id: u64,
    /// `limit` of list requests, 1 to 1000.
    #[serde(default = "default_page_size")]
    #[schemars(range(min = 1, max = MAX_PAGE_SIZE))]
    pub page_size: u32,
    /// `supplierName` of vouchers without a named customer (every daily closure, and sales
    /// without a customer name): the spec requires "either the supplier object or a
    /// supplierName". `{store}` and `{register}` are replaced by the record's ids; a fixed name
    /// such as `Barverkauf` works too.
    #[serde(default = "default_counterparty_name")]
    pub counterparty_name: String,
    /// A sevDesk contact (e.g. a collective "Barverkauf" contact created once in sevDesk) sent as
    /// the `supplier` object instead of `counterparty_name`.
    #[serde(default)]
    pub counterparty_contact_id: Option<u64>,
    /// `omit` (default) or `null`: the `voucherPos` key of `saveVoucher` bodies.
    #[serde(default = "default_voucher_pos")]
    pub voucher_pos: VoucherPosKey,
    /// `retry` (default) or `dead_letter`: what a refused payment booking of a saved voucher
    /// answers.
    #[serde(default = "default_payment_refused")]
    pub payment_refused: PaymentRefused,
}

fn default_base_url() -> String {
    PRODUCTION_BASE_URL.into()
}

fn default_status() -> VoucherStatus {
    VoucherStatus::Open
}

fn default_currency() -> String {
    "EUR".into()
}

fn default_supplier_category() -> u64 {
    2
}

fn default_page_size() -> u32 {
    100
}

fn default_counterparty_name() -> String {
    "Kasse {store}/{register}".into()
}

fn default_voucher_pos() -> VoucherPosKey {
    VoucherPosKey::Omit
}

fn default_payment_refused() -> PaymentRefused {
    PaymentRefused::Retry
}

impl Config {
    /// The full URL of a resource path such as `Voucher?limit=1`.
    pub fn endpoint(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.base_url.trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }

    /// The `supplierName` of a voucher of this register without a named customer.
    pub fn counterparty_name_for(&self, store: &str, register: &str) -> String {
        self.counterparty_name
            .replace("{store}", store)
            .replace("{register}", register)
    }

    /// Checks what the schema cannot express (the host has already checked `base_url` against
    /// its URL pattern, `api_token` against blank and `page_size` against its range).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.counterparty_contact_id.is_none() && self.counterparty_name.trim().is_empty() {
            p.push("counterparty_name is empty and no counterparty_contact_id is given: open vouchers need a supplier or a supplierName".into());
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_endpoint_and_unknown_fields() {
        let c: Config = serde_json::from_value(json!({"api_token": "t"})).unwrap();
        assert_eq!(c.base_url, PRODUCTION_BASE_URL);
        assert_eq!(c.voucher_status, VoucherStatus::Open);
        assert_eq!(c.voucher_status.code(), 100);
        assert_eq!(c.voucher_pos, VoucherPosKey::Omit);
        assert_eq!(c.payment_refused, PaymentRefused::Retry);
        assert_eq!(c.counterparty_name_for("S01", "R2"), "Kasse S01/R2");
        assert_eq!(c.counterparty_contact_id, None);
        assert!(c.problems().is_empty());
        assert_eq!(
            c.endpoint("/Voucher?limit=1"),
            "https://my.sevdesk.de/api/v1/Voucher?limit=1"
        );
        assert!(serde_json::from_value::<Config>(json!({"api_token": "t", "token": "x"})).is_err());
        let bad: Config = serde_json::from_value(
            json!({"api_token": " ", "page_size": 0, "counterparty_name": ""}),
        )
        .unwrap();
        assert_eq!(bad.problems().len(), 1, "{:?}", bad.problems());
        let named: Config = serde_json::from_value(json!({"api_token": "t",
            "counterparty_name": "Barverkauf", "voucher_pos": "null", "payment_refused": "dead_letter"}))
        .unwrap();
        assert_eq!(named.counterparty_name_for("S01", "R2"), "Barverkauf");
        assert_eq!(named.voucher_pos, VoucherPosKey::Null);
        assert_eq!(named.payment_refused, PaymentRefused::DeadLetter);
    }
}
