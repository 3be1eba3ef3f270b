//! The pipeline's `mapping:` section: tax rates, payment methods, registers and refund kinds
//! to sevDesk ids. A lookup that finds nothing names the missing key, so the record can be
//! rejected with it instead of being booked to a guessed account.

use posbridge_plugin_api::model::{Decimal, SaleKind};
use serde_json::Value;

/// sevDesk's default tax rule: "Umsatzsteuerpflichtige Umsätze".
pub const DEFAULT_TAX_RULE: u64 = 1;

/// Read access to the mapping of one write request.
pub struct Mapping<'a> {
    raw: &'a Value,
}

/// The text of a rate as mapping keys spell it: `19`, `7`, `5.5`.
pub fn rate_key(rate: Decimal) -> String {
    rate.normalize().to_string()
}

/// The snake-case name of a sale kind, as mapping keys spell it.
pub fn kind_key(kind: SaleKind) -> &'static str {
    match kind {
        SaleKind::Sale => "sale",
        SaleKind::Refund => "refund",
        SaleKind::Cancellation => "cancellation",
        SaleKind::NullReceipt => "null_receipt",
        SaleKind::Training => "training",
    }
}

impl<'a> Mapping<'a> {
    pub fn new(raw: &'a Value) -> Self {
        Self { raw }
    }

    /// An id under `path`; `what` describes it in the error.
    fn id_at(&self, path: &[&str], what: &str) -> Result<u64, String> {
        let mut node = self.raw;
        for p in path {
            node = node.get(p).unwrap_or(&Value::Null);
        }
        let shown = path
            .iter()
            .enumerate()
            .map(|(i, p)| {
                if i == 0 {
                    p.to_string()
                } else {
                    format!("{p:?}")
                }
            })
            .collect::<Vec<_>>()
            .join(".");
        match node {
            Value::Null => Err(format!("no mapping for {what} (mapping.{shown})")),
            Value::Number(n) if n.as_u64().is_some() => Ok(n.as_u64().unwrap_or_default()),
            Value::String(s) if s.trim().parse::<u64>().is_ok() => {
                Ok(s.trim().parse().unwrap_or_default())
            }
            other => Err(format!(
                "mapping.{shown} must be a sevDesk id (a positive integer), not {other}"
            )),
        }
    }

    /// The voucher's `taxRule` id (`mapping.tax_rule`, default 1).
    pub fn tax_rule(&self) -> Result<u64, String> {
        match self.raw.get("tax_rule") {
            None | Some(Value::Null) => Ok(DEFAULT_TAX_RULE),
            Some(_) => self.id_at(&["tax_rule"], "the tax rule"),
        }
    }

    /// The legacy `accountingType` id each position must still carry (spec: required).
    pub fn accounting_type(&self) -> Result<u64, String> {
        self.id_at(&["accounting_type"], "the accounting type of positions")
    }

    /// The `accountDatev` of revenue at this rate.
    pub fn revenue_account(&self, rate: Decimal) -> Result<u64, String> {
        let key = rate_key(rate);
        self.id_at(&["tax_rates", &key], &format!("tax rate {key} %"))
    }

    /// The `accountDatev` a refund or cancellation at this rate is booked to.
    pub fn refund_account(&self, kind: SaleKind, rate: Decimal) -> Result<u64, String> {
        let key = rate_key(rate);
        let k = kind_key(kind);
        self.id_at(
            &["refund_kinds", k, &key],
            &format!("refund kind {k} at tax rate {key} %"),
        )
    }

    /// The `CheckAccount` a payment method is booked on.
    pub fn check_account(&self, method: &str) -> Result<u64, String> {
        self.id_at(
            &["payment_methods", method],
            &format!("payment method {method:?}"),
        )
    }

    /// The cost centre of a register: `None` when the mapping has no `registers` section.
    pub fn cost_centre(&self, store: &str, register: &str) -> Result<Option<u64>, String> {
        if self.raw.get("registers").is_none_or(Value::is_null) {
            return Ok(None);
        }
        let key = format!("{store}/{register}");
        self.id_at(&["registers", &key], &format!("register {key}"))
            .map(Some)
    }
}

/// A revenue tax rule of the spec's tables ("sevdesk-Update 2.0" → "Tax Rules", the revenue
/// tables of "Regelbesteuerung" and "Kleinunternehmer"): the rates its positions may carry and
/// the deprecated `taxType` it replaces.
struct RevenueRule {
    id: u64,
    rates: &'static [u32],
    tax_type: Option<&'static str>,
}

/// The revenue rules usable in vouchers. Every voucher of this connector is revenue
/// (`creditDebit: D`): sales, and refunds and cancellations as negative revenue. Left out:
/// rule 21 and the One Stop Shop rules 18–20 (the tables list "Usage in vouchers" as
/// unsupported) and the expense rules 8, 9, 10, 12, 13, 14.
const REVENUE_RULES: &[RevenueRule] = &[
    RevenueRule {
        id: 1,
        rates: &[0, 7, 19],
        tax_type: Some("default"),
    },
    RevenueRule {
        id: 2,
        rates: &[0],
        tax_type: None,
    },
    RevenueRule {
        id: 3,
        rates: &[0, 7, 19],
        tax_type: Some("eu"),
    },
    RevenueRule {
        id: 4,
        rates: &[0],
        tax_type: None,
    },
    RevenueRule {
        id: 5,
        rates: &[0],
        tax_type: None,
    },
    RevenueRule {
        id: 17,
        rates: &[0],
        tax_type: Some("noteu"),
    },
    RevenueRule {
        id: 11,
        rates: &[0],
        tax_type: Some("ss"),
    },
];

/// The tax rules the tables list for expenses (`creditDebit: C`) only.
const EXPENSE_RULES: &[u64] = &[8, 9, 10, 12, 13, 14];

/// The tax rates a revenue voucher may carry under a tax rule; `Err` says why the rule cannot
/// book revenue in a voucher.
pub fn allowed_rates(tax_rule: u64) -> Result<&'static [u32], String> {
    if let Some(r) = REVENUE_RULES.iter().find(|r| r.id == tax_rule) {
        return Ok(r.rates);
    }
    let usable: Vec<String> = REVENUE_RULES.iter().map(|r| r.id.to_string()).collect();
    let why = if EXPENSE_RULES.contains(&tax_rule) {
        "is an expense rule (creditDebit C); sales, refunds and cancellations are revenue"
    } else if (18..=21).contains(&tax_rule) {
        "cannot be used in vouchers (spec's tax-rule tables)"
    } else {
        "is not in the spec's tax-rule tables"
    };
    Err(format!(
        "taxRule {tax_rule} {why}; revenue vouchers take one of {} (mapping.tax_rule)",
        usable.join(", ")
    ))
}

/// The deprecated `taxType` a tax rule replaces. The spec still requires a non-null `taxType`
/// string; rules that replace none get `default` (in Update 2.0 the `taxRule` decides).
pub fn tax_type(tax_rule: u64) -> &'static str {
    REVENUE_RULES
        .iter()
        .find(|r| r.id == tax_rule)
        .and_then(|r| r.tax_type)
        .unwrap_or("default")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;
    use serde_json::json;

    #[test]
    fn looks_up_ids_and_names_missing_keys() {
        let raw = json!({
            "accounting_type": 26,
            "tax_rates": {"19": 8400, "7": "8300"},
            "payment_methods": {"cash": 11},
            "refund_kinds": {"refund": {"19": 8700}},
        });
        let m = Mapping::new(&raw);
        assert_eq!(m.tax_rule(), Ok(1));
        assert_eq!(m.accounting_type(), Ok(26));
        assert_eq!(m.revenue_account(dec!(19.00)), Ok(8400));
        assert_eq!(m.revenue_account(dec!(7)), Ok(8300));
        assert_eq!(
            m.revenue_account(dec!(13)),
            Err("no mapping for tax rate 13 % (mapping.tax_rates.\"13\")".to_string())
        );
        assert_eq!(m.check_account("cash"), Ok(11));
        assert!(m
            .check_account("card")
            .unwrap_err()
            .contains("mapping.payment_methods.\"card\""));
        assert_eq!(m.refund_account(SaleKind::Refund, dec!(19)), Ok(8700));
        assert!(m
            .refund_account(SaleKind::Cancellation, dec!(19))
            .unwrap_err()
            .contains("mapping.refund_kinds.\"cancellation\".\"19\""));
        assert_eq!(m.cost_centre("S1", "R1"), Ok(None));
        let with_registers = json!({"registers": {"S1/R1": 3}, "tax_rule": "x"});
        let m = Mapping::new(&with_registers);
        assert_eq!(m.cost_centre("S1", "R1"), Ok(Some(3)));
        assert!(m.cost_centre("S1", "R2").unwrap_err().contains("\"S1/R2\""));
        assert!(m.tax_rule().unwrap_err().contains("positive integer"));
    }

    #[test]
    fn tax_rules_follow_the_revenue_tables() {
        for (rule, rates, tax_type_) in [
            (1, &[0, 7, 19][..], "default"),
            (2, &[0][..], "default"),
            (3, &[0, 7, 19][..], "eu"),
            (4, &[0][..], "default"),
            (5, &[0][..], "default"),
            (17, &[0][..], "noteu"),
            (11, &[0][..], "ss"),
        ] {
            assert_eq!(allowed_rates(rule), Ok(rates), "rule {rule}");
            assert_eq!(tax_type(rule), tax_type_, "rule {rule}");
        }
        for expense in [8, 9, 10, 12, 13, 14] {
            let err = allowed_rates(expense).unwrap_err();
            assert!(err.contains("expense rule"), "{err}");
        }
        for unusable in [18, 19, 20, 21] {
            let err = allowed_rates(unusable).unwrap_err();
            assert!(err.contains("cannot be used in vouchers"), "{err}");
        }
        assert!(allowed_rates(99)
            .unwrap_err()
            .contains("not in the spec's tax-rule tables"));
    }
}
