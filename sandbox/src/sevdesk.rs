//! The sevDesk API v1 simulator, as `docs/connectors/sevdesk.md` describes it.
//!
//! Every request body is validated against sevDesk's OpenAPI file: by default the cut of it
//! compiled into this crate (`sandbox/specs/sevdesk-openapi.trimmed.yaml`, the operations in
//! [`VALIDATED_OPERATIONS`] and the schemas they reference, verbatim), or a whole spec file
//! named `sevdesk-openapi.yaml` in the options' `data_dir`. The request schema of the operation is
//! converted from OpenAPI 3.0 to JSON Schema (`nullable` → a `null` type, read-only properties
//! no longer required in requests) and checked with `jsonschema`; a violation is answered 422
//! with sevDesk's error body `{"error": {"message": …, "exceptionUUID": …}}`. Behind that, the
//! simulator keeps vouchers with their positions and booked payments (readable through
//! [`SevdeskSimulator::vouchers`]), and serves parts, orders and contacts.
//!
//! A [`Variant`] picks the reading of the document the simulator answers: the lenient default,
//! or a strict sevDesk ([`Variant::strict`]) that refuses keys the spec does not define, `null`
//! for optional objects, open vouchers without `supplier`/`supplierName` and tax rule /
//! `creditDebit` combinations the spec's tax-rule tables ([`TAX_RULES`]) do not list, or one that
//! enforces the spec's `required` list as written ([`Variant::required_as_listed`]).
//! [`PaymentFaults`] fail `bookAmount` after the voucher was saved.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use posbridge_plugin_api::model::{decimal_from_json, round_money, Decimal, Product, Sale};
use serde_json::{json, Map, Value};

use crate::generator::Country;
use crate::registry::SandboxOptions;
use crate::server::Simulator;

/// The registry name.
pub const VENDOR: &str = "sevdesk";
/// The API token accepted when the options name none (32 hex characters, like sevDesk's).
pub const DEFAULT_TOKEN: &str = "b7794de0085f5cd00560f160f290af38";
/// The part of sevDesk's OpenAPI file the simulator validates with, compiled in so that nothing
/// depends on the working directory. Its header says where it comes from and how it was cut.
pub const EMBEDDED_SPEC: &str = include_str!("../specs/sevdesk-openapi.trimmed.yaml");
/// The operations with a JSON body that the simulator serves, as (method, path template): the
/// embedded cut holds exactly these, with every schema they reference.
pub const VALIDATED_OPERATIONS: &[(&str, &str)] = &[
    ("POST", "/Voucher/Factory/saveVoucher"),
    ("PUT", "/Voucher/{voucherId}/bookAmount"),
];
/// A spec file of this name in the options' `data_dir` replaces the embedded cut.
pub const SPEC_OVERRIDE_FILE: &str = "sevdesk-openapi.yaml";
/// Where the vendor's full file lies beside a checkout: `<workspace>/../shared/specs/…`.
const VENDOR_SPEC_BESIDE_WORKSPACE: &str = "../shared/specs/sevdesk-openapi.yaml";
/// The contact category of suppliers ("Lieferant") and of customers ("Kunde").
pub const SUPPLIER_CATEGORY: u64 = 2;
pub const CUSTOMER_CATEGORY: u64 = 3;
/// The largest `limit` of a list (spec: between 1 and 1000).
const MAX_LIMIT: usize = 1000;

// ---------------------------------------------------------------------------------------------
// The OpenAPI request validator
// ---------------------------------------------------------------------------------------------

/// One operation of the spec that takes a JSON body.
struct Operation {
    method: String,
    /// Path segments; `None` for a `{parameter}`.
    segments: Vec<Option<String>>,
    template: String,
    schema: Value,
}

/// Validates request bodies against the JSON request schemas of sevDesk's OpenAPI file.
pub struct SpecValidator {
    operations: Vec<Operation>,
    components: Value,
    compiled: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

/// Parses an OpenAPI document (YAML, or JSON, which is YAML too) into a JSON value.
pub fn parse_spec(text: &str) -> Result<Value, serde_saphyr::Error> {
    serde_saphyr::from_str(text)
}

/// The vendor's full OpenAPI file when it lies beside the workspace (`../shared/specs/…`), for
/// the checks that additionally validate against it; on a clean clone `None`, after saying on
/// stderr `skipped: …` and what (`skipped_check`) is not done. Only tests call this; the
/// simulator itself validates with the embedded cut and never reads beside the repository.
///
/// The line goes to the process's stderr directly, not through `eprintln!`, so the test harness
/// does not swallow it with the output of a passing test: a clean-clone run shows the skip.
pub fn vendor_spec_or_report_skip(skipped_check: &str) -> Option<PathBuf> {
    let found = vendor_spec_beside_workspace();
    if found.is_none() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr().lock(),
            "skipped: the vendor's full sevDesk spec is not beside the repository \
             ({VENDOR_SPEC_BESIDE_WORKSPACE}); {skipped_check}"
        );
    }
    found
}

fn vendor_spec_beside_workspace() -> Option<PathBuf> {
    // The sandbox crate sits one level below the workspace root.
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(VENDOR_SPEC_BESIDE_WORKSPACE);
    path.is_file()
        .then(|| path.canonicalize().unwrap_or(path.clone()))
}

impl SpecValidator {
    /// The validator of the embedded cut ([`EMBEDDED_SPEC`]).
    pub fn embedded() -> Self {
        Self::embedded_as(SchemaReading::default())
    }

    /// The validator of the embedded cut under a [`SchemaReading`].
    pub fn embedded_as(reading: SchemaReading) -> Self {
        let spec = parse_spec(EMBEDDED_SPEC).expect("the embedded sevDesk spec is valid YAML");
        Self::from_spec_as(&spec, reading)
    }

    /// `data_dir/sevdesk-openapi.yaml` when that file exists, else the embedded cut.
    pub fn for_data_dir(data_dir: Option<&Path>) -> anyhow::Result<Self> {
        Self::for_data_dir_as(data_dir, SchemaReading::default())
    }

    /// [`SpecValidator::for_data_dir`] under a [`SchemaReading`].
    pub fn for_data_dir_as(
        data_dir: Option<&Path>,
        reading: SchemaReading,
    ) -> anyhow::Result<Self> {
        match data_dir.map(|d| d.join(SPEC_OVERRIDE_FILE)) {
            Some(path) if path.is_file() => Self::load_as(&path, reading),
            _ => Ok(Self::embedded_as(reading)),
        }
    }

    /// Loads and converts a spec file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        Self::load_as(path, SchemaReading::default())
    }

    /// Loads and converts a spec file under a [`SchemaReading`].
    pub fn load_as(path: &Path, reading: SchemaReading) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the sevDesk spec {}", path.display()))?;
        let spec =
            parse_spec(&text).with_context(|| format!("{} is not valid YAML", path.display()))?;
        Ok(Self::from_spec_as(&spec, reading))
    }

    /// Converts a parsed spec.
    pub fn from_spec(spec: &Value) -> Self {
        Self::from_spec_as(spec, SchemaReading::default())
    }

    /// Converts a parsed spec under a [`SchemaReading`].
    pub fn from_spec_as(spec: &Value, reading: SchemaReading) -> Self {
        let mut components = spec
            .pointer("/components/schemas")
            .cloned()
            .unwrap_or_else(|| json!({}));
        to_json_schema_as(&mut components, reading);
        let mut operations = Vec::new();
        for (template, item) in spec
            .get("paths")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            for (method, op) in item.as_object().into_iter().flatten() {
                let Some(schema) = op.pointer("/requestBody/content/application~1json/schema")
                else {
                    continue;
                };
                let mut schema = schema.clone();
                to_json_schema_as(&mut schema, reading);
                operations.push(Operation {
                    method: method.to_ascii_uppercase(),
                    segments: template
                        .trim_matches('/')
                        .split('/')
                        .map(|s| (!s.starts_with('{')).then(|| s.to_string()))
                        .collect(),
                    template: template.clone(),
                    schema,
                });
            }
        }
        Self {
            operations,
            components,
            compiled: Mutex::new(HashMap::new()),
        }
    }

    /// Every operation with a JSON body schema, as (method, path template).
    pub fn operations(&self) -> Vec<(String, String)> {
        self.operations
            .iter()
            .map(|o| (o.method.clone(), o.template.clone()))
            .collect()
    }

    /// The spec's path template of a request with a JSON body, e.g. `/Voucher/{voucherId}/bookAmount`.
    pub fn operation(&self, method: &str, path: &str) -> Option<&str> {
        self.find(method, path).map(|o| o.template.as_str())
    }

    fn find(&self, method: &str, path: &str) -> Option<&Operation> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let matches = |o: &&Operation| {
            o.method.eq_ignore_ascii_case(method)
                && o.segments.len() == parts.len()
                && o.segments
                    .iter()
                    .zip(&parts)
                    .all(|(s, p)| s.as_deref().is_none_or(|s| s == *p))
        };
        // A literal segment beats a parameter (`/Voucher/Factory/…` before `/Voucher/{id}/…`).
        self.operations
            .iter()
            .filter(matches)
            .max_by_key(|o| o.segments.iter().filter(|s| s.is_some()).count())
    }

    /// Checks a body against its operation's schema; every violation as `path: message`.
    /// Requests of operations without a JSON body schema pass.
    pub fn validate(&self, method: &str, path: &str, body: &Value) -> Result<(), Vec<String>> {
        let Some(op) = self.find(method, path) else {
            return Ok(());
        };
        let validator = self.compiled(op).map_err(|e| vec![e])?;
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| {
                let at = e.instance_path().to_string();
                format!("{}: {e}", if at.is_empty() { "/" } else { &at })
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn compiled(&self, op: &Operation) -> Result<Arc<jsonschema::Validator>, String> {
        let key = format!("{} {}", op.method, op.template);
        let mut cache = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = cache.get(&key) {
            return Ok(v.clone());
        }
        // The components travel with the schema so that `#/components/schemas/…` resolves.
        let mut root = match &op.schema {
            Value::Object(o) => o.clone(),
            other => {
                let mut m = Map::new();
                m.insert("allOf".into(), json!([other]));
                m
            }
        };
        root.insert("components".into(), json!({ "schemas": self.components }));
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .should_ignore_unknown_formats(true)
            .build(&Value::Object(root))
            .map_err(|e| format!("the spec's schema of {key} does not compile: {e}"))?;
        let v = Arc::new(validator);
        cache.insert(key, v.clone());
        Ok(v)
    }
}

/// How the simulator reads the spec's request schemas where a real sevDesk may differ.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchemaReading {
    /// An object with `properties` takes no other key (`additionalProperties: false`), and an
    /// optional (not required) object property takes no `null`, whatever `nullable` says.
    pub closed: bool,
    /// `required` names that the object's `properties` do not define are enforced as well (the
    /// spec's `saveVoucher` requires a `voucherPos` it never defines); otherwise they are left
    /// out, since nothing could satisfy them under `closed`.
    pub required_as_listed: bool,
}

/// Converts an OpenAPI 3.0 schema (in place) to JSON Schema as used for request bodies:
/// `nullable: true` adds `null` to the type (and enum); read-only properties stay allowed but
/// are no longer required (OpenAPI: "required … on the response only"). Required names the
/// properties do not define are dropped (the lenient reading, [`SchemaReading::default`]).
pub fn to_json_schema(v: &mut Value) {
    to_json_schema_as(v, SchemaReading::default())
}

/// [`to_json_schema`] under a [`SchemaReading`].
pub fn to_json_schema_as(v: &mut Value, reading: SchemaReading) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(|i| to_json_schema_as(i, reading)),
        Value::Object(o) => {
            let nullable = o.remove("nullable").and_then(|n| n.as_bool()) == Some(true);
            if nullable {
                match o.get("type").cloned() {
                    Some(Value::String(t)) => {
                        o.insert("type".into(), json!([t, "null"]));
                    }
                    _ if o.contains_key("$ref") => {
                        let r = o.remove("$ref").unwrap_or(Value::Null);
                        o.insert("anyOf".into(), json!([{ "$ref": r }, { "type": "null" }]));
                    }
                    _ => {}
                }
                if let Some(Value::Array(e)) = o.get_mut("enum") {
                    if !e.contains(&Value::Null) {
                        e.push(Value::Null);
                    }
                }
            }
            let props = o.get("properties").and_then(Value::as_object);
            let read_only: Vec<String> = props
                .map(|props| {
                    props
                        .iter()
                        .filter(|(_, p)| p.get("readOnly").and_then(Value::as_bool) == Some(true))
                        .map(|(k, _)| k.clone())
                        .collect()
                })
                .unwrap_or_default();
            let defined: Option<Vec<String>> = props.map(|p| p.keys().cloned().collect());
            if let Some(Value::Array(req)) = o.get_mut("required") {
                req.retain(|r| !r.as_str().is_some_and(|r| read_only.iter().any(|x| x == r)));
                if let (Some(defined), false) = (&defined, reading.required_as_listed) {
                    req.retain(|r| r.as_str().is_some_and(|r| defined.iter().any(|d| d == r)));
                }
            }
            if reading.closed && defined.is_some() {
                o.entry("additionalProperties")
                    .or_insert(Value::Bool(false));
                let required: Vec<String> = o
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| {
                        r.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                if let Some(Value::Object(props)) = o.get_mut("properties") {
                    for (name, p) in props.iter_mut() {
                        if !required.contains(name) && is_object_schema(p) {
                            if let Some(p) = p.as_object_mut() {
                                p.remove("nullable");
                            }
                        }
                    }
                }
            }
            for (k, child) in o.iter_mut() {
                if k == "properties" {
                    // A map of names to schemas, not a schema: convert each schema.
                    if let Value::Object(props) = child {
                        props
                            .values_mut()
                            .for_each(|p| to_json_schema_as(p, reading));
                    }
                } else if k != "example" && k != "examples" && k != "default" && k != "enum" {
                    to_json_schema_as(child, reading);
                }
            }
        }
        _ => {}
    }
}

/// Whether a property schema describes an object (the spec's `$ref`s all name objects).
fn is_object_schema(p: &Value) -> bool {
    p.get("type").and_then(Value::as_str) == Some("object")
        || p.get("properties").is_some()
        || p.get("$ref").is_some()
}

// ---------------------------------------------------------------------------------------------
// Readings of the document, tax-rule tables, payment faults
// ---------------------------------------------------------------------------------------------

/// The defensible readings of sevDesk's document one simulator answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Variant {
    /// How request schemas are read (closed objects, `required` as listed).
    pub schema: SchemaReading,
    /// An open voucher (status 100) needs a `supplier` object or a non-empty `supplierName`
    /// (Voucher attribute table: "you must provide either the supplier object or a supplierName").
    pub counterparty_required: bool,
    /// `creditDebit` and `taxRule` must be a combination of the spec's tax-rule tables
    /// ([`TAX_RULES`]): `D` (revenue) with a revenue rule usable in vouchers, `C` (expense) with an
    /// expense rule, and `taxType` as the "old property" its rule replaces (when it has one).
    pub tax_rule_tables: bool,
}

impl Variant {
    /// The lenient default: open objects, the spec's `required` minus names it never defines,
    /// no counterparty or side check (rates per tax rule are always checked).
    pub fn lenient() -> Self {
        Self::default()
    }

    /// A strict sevDesk: no undefined keys, no `null` for optional objects, a counterparty on
    /// every open voucher, tax rule and `creditDebit` as the tables list them.
    pub fn strict() -> Self {
        Self {
            schema: SchemaReading {
                closed: true,
                required_as_listed: false,
            },
            counterparty_required: true,
            tax_rule_tables: true,
        }
    }

    /// A sevDesk that enforces `required` as written: `saveVoucher` must carry `voucherPos`.
    pub fn required_as_listed() -> Self {
        Self {
            schema: SchemaReading {
                closed: false,
                required_as_listed: true,
            },
            ..Self::default()
        }
    }
}

/// Which side of the books a tax rule belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Revenue: `creditDebit: D` ("You sold something").
    Revenue,
    /// Expense: `creditDebit: C` ("You bought something").
    Expense,
}

/// One row of the spec's tax-rule tables ("sevdesk-Update 2.0" → "Tax Rules").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaxRuleRow {
    pub id: u64,
    pub side: Side,
    /// The allowed `taxRate`s of positions; empty: "depending on country".
    pub rates: &'static [u32],
    /// The deprecated `taxType` values the rule replaces ("Old property").
    pub tax_types: &'static [&'static str],
    /// `false` where the table lists "Usage in vouchers" as unsupported.
    pub in_vouchers: bool,
}

const fn rule(
    id: u64,
    side: Side,
    rates: &'static [u32],
    tax_types: &'static [&'static str],
    in_vouchers: bool,
) -> TaxRuleRow {
    TaxRuleRow {
        id,
        side,
        rates,
        tax_types,
        in_vouchers,
    }
}

const STANDARD: &[u32] = &[0, 7, 19];
const ZERO: &[u32] = &[0];

/// The spec's tax-rule tables: Regelbesteuerung revenue and expense, Kleinunternehmer revenue
/// and expense (rules 10 and 13 appear in both expense tables; 10 replaces `ss` there).
pub const TAX_RULES: &[TaxRuleRow] = &[
    rule(1, Side::Revenue, STANDARD, &["default"], true),
    rule(2, Side::Revenue, ZERO, &[], true),
    rule(3, Side::Revenue, STANDARD, &["eu"], true),
    rule(4, Side::Revenue, ZERO, &[], true),
    rule(5, Side::Revenue, ZERO, &[], true),
    rule(21, Side::Revenue, ZERO, &[], false),
    rule(17, Side::Revenue, ZERO, &["noteu"], true),
    rule(18, Side::Revenue, &[], &[], false),
    rule(19, Side::Revenue, &[], &[], false),
    rule(20, Side::Revenue, &[], &[], false),
    rule(11, Side::Revenue, ZERO, &["ss"], true),
    rule(8, Side::Expense, STANDARD, &[], true),
    rule(9, Side::Expense, STANDARD, &["default"], true),
    rule(10, Side::Expense, ZERO, &["ss"], true),
    rule(12, Side::Expense, ZERO, &[], true),
    rule(13, Side::Expense, ZERO, &[], true),
    rule(14, Side::Expense, ZERO, &[], true),
];

/// The table row of a tax rule.
pub fn tax_rule(id: u64) -> Option<&'static TaxRuleRow> {
    TAX_RULES.iter().find(|r| r.id == id)
}

/// Failures of `PUT /Voucher/{id}/bookAmount`, injected after the voucher was saved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PaymentFaults {
    /// The first `failures` booking requests of each voucher fail (0: none, `u32::MAX`: all).
    pub failures: u32,
    /// The status they are answered with: 503 (may pass) or 422 (refused).
    pub status: u16,
    /// Book the amount before answering the failure: the answer is lost, the booking is not.
    pub after_booking: bool,
}

impl PaymentFaults {
    /// The first booking of each voucher answers 503 without booking.
    pub fn unavailable_once() -> Self {
        Self {
            failures: 1,
            status: 503,
            after_booking: false,
        }
    }

    /// The first booking of each voucher is booked, but answered 500 (the answer is lost).
    pub fn answer_lost_once() -> Self {
        Self {
            failures: 1,
            status: 500,
            after_booking: true,
        }
    }

    /// Every booking is refused with 422 until the faults are cleared.
    pub fn refused() -> Self {
        Self {
            failures: u32::MAX,
            status: 422,
            after_booking: false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The stored documents
// ---------------------------------------------------------------------------------------------

/// A voucher position as sevDesk computed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoucherPosition {
    pub account_datev: u64,
    pub accounting_type: Option<u64>,
    pub tax_rate: Decimal,
    pub sum_net: Decimal,
    pub sum_tax: Decimal,
    pub sum_gross: Decimal,
}

/// A payment booked on a voucher with `bookAmount`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoucherPayment {
    pub check_account: u64,
    pub amount: Decimal,
    pub date: String,
    /// The booking `type` (`FULL_PAYMENT`, `N`, …).
    pub kind: String,
}

/// A stored voucher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Voucher {
    pub id: u64,
    pub description: String,
    pub voucher_date: String,
    /// `C` or `D`.
    pub credit_debit: String,
    /// 50 draft, 100 open, 1000 paid.
    pub status: u32,
    pub tax_rule: u64,
    pub currency: String,
    pub cost_centre: Option<u64>,
    pub supplier_name: Option<String>,
    pub positions: Vec<VoucherPosition>,
    pub payments: Vec<VoucherPayment>,
}

impl Voucher {
    pub fn sum_gross(&self) -> Decimal {
        self.positions.iter().map(|p| p.sum_gross).sum()
    }
    pub fn paid(&self) -> Decimal {
        self.payments.iter().map(|p| p.amount).sum()
    }
    /// +1 for a debit (revenue) voucher, -1 for a credit voucher.
    pub fn sign(&self) -> Decimal {
        if self.credit_debit == "C" {
            -Decimal::ONE
        } else {
            Decimal::ONE
        }
    }

    fn to_json(&self) -> Value {
        let (net, tax, gross) = self.positions.iter().fold(
            (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO),
            |(n, t, g), p| (n + p.sum_net, t + p.sum_tax, g + p.sum_gross),
        );
        // sevDesk writes ids and amounts as strings.
        json!({
            "id": self.id.to_string(),
            "objectName": "Voucher",
            "voucherDate": self.voucher_date,
            "description": self.description,
            "status": self.status.to_string(),
            "creditDebit": self.credit_debit,
            "voucherType": "VOU",
            "currency": self.currency,
            "sumNet": net.to_string(),
            "sumTax": tax.to_string(),
            "sumGross": gross.to_string(),
            "paidAmount": self.paid().to_string(),
            "supplierName": self.supplier_name,
            "taxRule": {"id": self.tax_rule.to_string(), "objectName": "TaxRule"},
        })
    }

    fn positions_json(&self) -> Value {
        Value::Array(
            self.positions
                .iter()
                .map(|p| {
                    json!({
                        "objectName": "VoucherPos",
                        "voucher": {"id": self.id.to_string(), "objectName": "Voucher"},
                        "accountDatev": {"id": p.account_datev.to_string(), "objectName": "AccountDatev"},
                        "taxRate": p.tax_rate.to_string(),
                        "net": "0",
                        "sumNet": p.sum_net.to_string(),
                        "sumTax": p.sum_tax.to_string(),
                        "sumGross": p.sum_gross.to_string(),
                    })
                })
                .collect(),
        )
    }
}

/// A request body the simulator received.
#[derive(Clone, Debug, PartialEq)]
pub struct LoggedBody {
    pub method: String,
    pub path: String,
    pub body: Value,
    /// The status answered.
    pub status: u16,
}

#[derive(Default)]
struct Book {
    vouchers: Vec<Voucher>,
    next_id: u64,
    /// `bookAmount` requests per voucher id, for [`PaymentFaults`].
    booking_attempts: HashMap<u64, u32>,
}

/// The sevDesk simulator.
pub struct SevdeskSimulator {
    token: String,
    spec: SpecValidator,
    variant: Variant,
    payment_faults: Mutex<PaymentFaults>,
    book: RwLock<Book>,
    parts: Vec<Value>,
    orders: Vec<Value>,
    contacts: Vec<Value>,
    bodies: Mutex<Vec<LoggedBody>>,
}

/// Builds the simulator with the German catalogue of the generated data as parts.
pub fn build(opts: &SandboxOptions) -> anyhow::Result<Arc<dyn Simulator>> {
    Ok(Arc::new(SevdeskSimulator::from_options(opts)?))
}

impl SevdeskSimulator {
    /// A simulator for these options (token, data, `data_dir/sevdesk-openapi.yaml` or the embedded spec).
    pub fn from_options(opts: &SandboxOptions) -> anyhow::Result<Self> {
        Self::from_options_as(opts, Variant::default())
    }

    /// [`SevdeskSimulator::from_options`], answering `variant`'s reading of the document.
    pub fn from_options_as(opts: &SandboxOptions, variant: Variant) -> anyhow::Result<Self> {
        let token = opts
            .api_key
            .clone()
            .unwrap_or_else(|| DEFAULT_TOKEN.to_string());
        let spec = SpecValidator::for_data_dir_as(opts.data_dir.as_deref(), variant.schema)?;
        let products = opts.dataset(Country::De).products;
        Ok(Self::new(token, spec, &products).with_variant(variant))
    }

    /// The same simulator answering `variant`'s business rules (the schema reading is the
    /// validator's, see [`SpecValidator::embedded_as`]).
    pub fn with_variant(mut self, variant: Variant) -> Self {
        self.variant = variant;
        self
    }

    /// The reading of the document this simulator answers.
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// Fails `bookAmount` requests from now on as `faults` says (counts start again).
    pub fn set_payment_faults(&self, faults: PaymentFaults) {
        *self
            .payment_faults
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = faults;
        self.book
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .booking_attempts
            .clear();
    }

    /// A simulator serving these products as parts, with seeded contacts and orders.
    pub fn new(token: String, spec: SpecValidator, products: &[Product]) -> Self {
        let parts: Vec<Value> = products
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let net = round_money(
                    p.price / (Decimal::ONE + p.tax_rate / Decimal::ONE_HUNDRED),
                    &p.currency,
                );
                json!({
                    "id": (i + 1).to_string(),
                    "objectName": "Part",
                    "name": p.name,
                    "partNumber": p.sku.clone().unwrap_or_else(|| p.id.clone()),
                    "stock": ((i * 37) % 250).to_string(),
                    "stockEnabled": true,
                    "priceNet": net.to_string(),
                    "priceGross": p.price.to_string(),
                    "taxRate": p.tax_rate.to_string(),
                    "status": if p.active { "100" } else { "50" },
                    "update": "2026-01-16T12:51:22+01:00",
                })
            })
            .collect();
        let contacts: Vec<Value> = [
            (
                "Großhandel Nord GmbH",
                SUPPLIER_CATEGORY,
                Some("DE123456789"),
            ),
            ("Obsthof Müller", SUPPLIER_CATEGORY, None),
            ("Erika Mustermann", CUSTOMER_CATEGORY, None),
            ("Getränke Süd KG", SUPPLIER_CATEGORY, Some("DE987654321")),
        ]
        .iter()
        .enumerate()
        .map(|(i, (name, cat, vat))| {
            json!({"id": (i + 1).to_string(), "objectName": "Contact", "name": name,
                "category": {"id": cat.to_string(), "objectName": "Category"}, "vatNumber": vat})
        })
        .collect();
        let orders: Vec<Value> = (1..=5u64)
            .map(|i| {
                let net = Decimal::new(1000 * i as i64 + 99, 2);
                let gross = round_money(net * Decimal::new(119, 2), "EUR");
                let supplier = ["1", "2", "4"][(i % 3) as usize];
                json!({"id": i.to_string(), "objectName": "Order", "orderNumber": format!("AN-{:04}", 1000 + i),
                    "orderDate": format!("2026-01-{:02}T00:00:00+01:00", 4 + i), "status": "200",
                    "contact": {"id": supplier, "objectName": "Contact"},
                    "currency": "EUR", "sumNet": net.to_string(), "sumGross": gross.to_string()})
            })
            .collect();
        Self {
            token,
            spec,
            variant: Variant::default(),
            payment_faults: Mutex::new(PaymentFaults::default()),
            book: RwLock::new(Book {
                vouchers: Vec::new(),
                next_id: 1,
                booking_attempts: HashMap::new(),
            }),
            parts,
            orders,
            contacts,
            bodies: Mutex::new(Vec::new()),
        }
    }

    /// The stored vouchers, oldest first.
    pub fn vouchers(&self) -> Vec<Voucher> {
        self.book
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .vouchers
            .clone()
    }

    /// Every request body received, oldest first (also the refused ones).
    pub fn request_bodies(&self) -> Vec<LoggedBody> {
        self.bodies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The spec validator the simulator checks requests with.
    pub fn spec(&self) -> &SpecValidator {
        &self.spec
    }

    /// The parts served (as sevDesk JSON).
    pub fn parts(&self) -> &[Value] {
        &self.parts
    }

    /// The orders served (as sevDesk JSON).
    pub fn orders(&self) -> &[Value] {
        &self.orders
    }

    /// The contacts served (as sevDesk JSON).
    pub fn contacts(&self) -> &[Value] {
        &self.contacts
    }

    fn handle(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Response {
        let path = uri.path().trim_start_matches("/api/v1").to_string();
        let token = headers.get("authorization").and_then(|v| v.to_str().ok());
        if token != Some(self.token.as_str()) {
            return error(StatusCode::UNAUTHORIZED, "Authentication required");
        }
        let query = parse_query(uri.query().unwrap_or(""));
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        if !body.is_empty() {
            let parsed: Value = match serde_json::from_slice(body) {
                Ok(v) => v,
                Err(e) => return error(StatusCode::BAD_REQUEST, &format!("invalid JSON: {e}")),
            };
            let answer = match self.spec.validate(method.as_str(), &path, &parsed) {
                Err(violations) => error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!("Validation error: {}", violations.join("; ")),
                ),
                Ok(()) => self.write(method, &parts, &parsed),
            };
            self.bodies
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(LoggedBody {
                    method: method.to_string(),
                    path,
                    body: parsed,
                    status: answer.status().as_u16(),
                });
            return answer;
        }
        match (method.as_str(), parts.as_slice()) {
            ("GET", ["Tools", "bookkeepingSystemVersion"]) => {
                Json(json!({"objects": {"version": "2.0"}})).into_response()
            }
            ("GET", ["Voucher"]) => {
                let book = self.book.read().unwrap_or_else(|e| e.into_inner());
                let like = query.get("descriptionLike").map(|s| s.to_lowercase());
                let found: Vec<Value> = book
                    .vouchers
                    .iter()
                    .filter(|v| {
                        like.as_ref()
                            .is_none_or(|l| v.description.to_lowercase().contains(l))
                    })
                    .map(Voucher::to_json)
                    .collect();
                list(found, &query)
            }
            ("GET", ["Voucher", id]) => {
                let book = self.book.read().unwrap_or_else(|e| e.into_inner());
                match book.vouchers.iter().find(|v| v.id.to_string() == *id) {
                    Some(v) => Json(json!({"objects": [v.to_json()]})).into_response(),
                    None => error(StatusCode::BAD_REQUEST, "Voucher was not found"),
                }
            }
            ("GET", ["Part"]) => list(self.parts.clone(), &query),
            ("GET", ["Order"]) => list(self.orders.clone(), &query),
            ("GET", ["Contact"]) => {
                // depth=0 (default): organisations only; all of ours are organisations.
                list(self.contacts.clone(), &query)
            }
            _ => error(StatusCode::NOT_FOUND, &format!("no route {method} {path}")),
        }
    }

    /// Requests with a (spec-valid) body.
    fn write(&self, method: &Method, parts: &[&str], body: &Value) -> Response {
        match (method.as_str(), parts) {
            ("POST", ["Voucher", "Factory", "saveVoucher"]) => match self.save_voucher(body) {
                Ok(v) => (
                    StatusCode::CREATED,
                    Json(json!({"objects": {"voucher": v.to_json(), "voucherPos": v.positions_json()}})),
                )
                    .into_response(),
                Err(msg) => error(StatusCode::UNPROCESSABLE_ENTITY, &msg),
            },
            ("PUT", ["Voucher", id, "bookAmount"]) => match self.faulty_book_amount(id, body) {
                Ok(v) => Json(json!({
                    "id": v.payments.len().to_string(), "objectName": "VoucherLog",
                    "voucher": {"id": v.id, "objectName": "Voucher"},
                    "toStatus": v.status.to_string(), "amountPayed": v.paid().to_string(),
                }))
                .into_response(),
                Err((status, msg)) => error(status, &msg),
            },
            _ => error(StatusCode::NOT_FOUND, "no such resource"),
        }
    }

    /// The business rules of `saveVoucher` beyond the schema.
    fn save_voucher(&self, body: &Value) -> Result<Voucher, String> {
        let v = &body["voucher"];
        let status = decimal_from_json(&v["status"]).unwrap_or_default();
        if status != Decimal::from(50) && status != Decimal::from(100) {
            return Err(format!(
                "voucher.status {status}: only 50 (draft) and 100 (open) can be saved"
            ));
        }
        let tax_rule = id(&v["taxRule"]).ok_or("voucher.taxRule.id is missing")?;
        let row =
            self::tax_rule(tax_rule).ok_or_else(|| format!("taxRule {tax_rule} does not exist"))?;
        if self.variant.tax_rule_tables {
            check_tax_rule_tables(v, row)?;
        }
        if self.variant.counterparty_required && status == Decimal::from(100) {
            let supplier = v["supplier"].get("id").is_some_and(|i| !i.is_null());
            let name = v["supplierName"]
                .as_str()
                .is_some_and(|n| !n.trim().is_empty());
            if !supplier && !name {
                return Err(
                    "voucher: an open voucher needs either the supplier object or a supplierName"
                        .into(),
                );
            }
        }
        let allowed = row.rates;
        let positions = body["voucherPosSave"]
            .as_array()
            .filter(|p| !p.is_empty())
            .ok_or("voucherPosSave: a voucher needs at least one position")?;
        let mut stored = Vec::new();
        let mut net_flag = None;
        for (i, p) in positions.iter().enumerate() {
            let rate = decimal_from_json(&p["taxRate"]).unwrap_or_default();
            // An empty list is "depending on country" (One Stop Shop): any rate.
            if !allowed.is_empty() && !allowed.iter().any(|r| Decimal::from(*r) == rate) {
                return Err(format!(
                    "voucherPosSave[{i}].taxRate {rate} is not allowed with taxRule {tax_rule}"
                ));
            }
            let net = p["net"].as_bool().unwrap_or(false);
            if net_flag.is_some_and(|n| n != net) {
                return Err("all positions must be either net or gross".into());
            }
            net_flag = Some(net);
            let account = id(&p["accountDatev"])
                .ok_or_else(|| format!("voucherPosSave[{i}].accountDatev.id is missing"))?;
            let factor = Decimal::ONE + rate / Decimal::ONE_HUNDRED;
            let (sum_net, sum_gross) = if net {
                let n = decimal_from_json(&p["sumNet"]).unwrap_or_default();
                (n, n + round_money(n * rate / Decimal::ONE_HUNDRED, "EUR"))
            } else {
                let g = decimal_from_json(&p["sumGross"]).unwrap_or_default();
                (round_money(g / factor, "EUR"), g)
            };
            stored.push(VoucherPosition {
                account_datev: account,
                accounting_type: id(&p["accountingType"]),
                tax_rate: rate,
                sum_net,
                sum_tax: sum_gross - sum_net,
                sum_gross,
            });
        }
        let mut book = self.book.write().unwrap_or_else(|e| e.into_inner());
        let voucher = Voucher {
            id: book.next_id,
            description: v["description"].as_str().unwrap_or_default().to_string(),
            voucher_date: v["voucherDate"].as_str().unwrap_or_default().to_string(),
            credit_debit: v["creditDebit"].as_str().unwrap_or("D").to_string(),
            status: if status == Decimal::from(50) { 50 } else { 100 },
            tax_rule,
            currency: v["currency"].as_str().unwrap_or("EUR").to_string(),
            cost_centre: id(&v["costCentre"]),
            supplier_name: v["supplierName"].as_str().map(str::to_string),
            positions: stored,
            payments: Vec::new(),
        };
        book.next_id += 1;
        book.vouchers.push(voucher.clone());
        Ok(voucher)
    }

    /// `bookAmount` under the [`PaymentFaults`]: a failing request answers the fault's status,
    /// before or after booking.
    fn faulty_book_amount(
        &self,
        id_text: &str,
        body: &Value,
    ) -> Result<Voucher, (StatusCode, String)> {
        let faults = *self
            .payment_faults
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let attempt = {
            let mut book = self.book.write().unwrap_or_else(|e| e.into_inner());
            let n = book
                .booking_attempts
                .entry(id_text.parse().unwrap_or_default())
                .or_default();
            *n = n.saturating_add(1);
            *n
        };
        if attempt > faults.failures {
            return self.book_amount(id_text, body);
        }
        let status = StatusCode::from_u16(faults.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let message = format!("injected payment fault (booking attempt {attempt})");
        if faults.after_booking {
            self.book_amount(id_text, body)?;
        }
        Err((status, message))
    }

    /// The business rules of `bookAmount`: open vouchers only, never more than the gross.
    fn book_amount(&self, id_text: &str, body: &Value) -> Result<Voucher, (StatusCode, String)> {
        let amount = decimal_from_json(&body["amount"]).unwrap_or_default();
        let check_account = id(&body["checkAccount"]).unwrap_or_default();
        let mut book = self.book.write().unwrap_or_else(|e| e.into_inner());
        let v = book
            .vouchers
            .iter_mut()
            .find(|v| v.id.to_string() == id_text)
            .ok_or((StatusCode::BAD_REQUEST, "Voucher was not found".to_string()))?;
        if v.status != 100 {
            return Err((
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "voucher {} has status {}: only open vouchers can be booked",
                    v.id, v.status
                ),
            ));
        }
        let gross = v.sum_gross();
        let after = v.paid() + amount;
        if (gross >= Decimal::ZERO && after > gross) || (gross < Decimal::ZERO && after < gross) {
            return Err((
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "booking {amount} would pay {after} of voucher {} over its sum {gross}",
                    v.id
                ),
            ));
        }
        v.payments.push(VoucherPayment {
            check_account,
            amount,
            date: body["date"].as_str().unwrap_or_default().to_string(),
            kind: body["type"].as_str().unwrap_or_default().to_string(),
        });
        if after == gross {
            v.status = 1000;
        }
        Ok(v.clone())
    }
}

/// The strict reading of the tax-rule tables: `creditDebit` names the side of the rule, the rule
/// is usable in vouchers, and `taxType` is one its row replaces (when it replaces any).
fn check_tax_rule_tables(v: &Value, row: &TaxRuleRow) -> Result<(), String> {
    let side = match v["creditDebit"].as_str() {
        Some("D") => Side::Revenue,
        Some("C") => Side::Expense,
        other => {
            return Err(format!(
                "voucher.creditDebit {other:?}: must be C (expense) or D (revenue)"
            ))
        }
    };
    if row.side != side {
        return Err(format!(
            "taxRule {} is a rule for {}, but creditDebit {} books {}",
            row.id,
            side_name(row.side),
            v["creditDebit"].as_str().unwrap_or_default(),
            side_name(side)
        ));
    }
    if !row.in_vouchers {
        return Err(format!("taxRule {} cannot be used in vouchers", row.id));
    }
    // Rules that replace no old property take any taxType (the spec still requires one).
    match v["taxType"].as_str() {
        Some(t) if !row.tax_types.is_empty() && !row.tax_types.contains(&t) => Err(format!(
            "taxType {t:?} does not match taxRule {} (it replaces {:?})",
            row.id, row.tax_types
        )),
        _ => Ok(()),
    }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Revenue => "revenue",
        Side::Expense => "expense",
    }
}

/// An `{"id": …}` reference's id (number or string).
fn id(v: &Value) -> Option<u64> {
    match v.get("id")? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A list answer with `limit` / `offset` (and `total` for `countAll=true`).
fn list(items: Vec<Value>, query: &HashMap<String, String>) -> Response {
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => 100,
        Some(Ok(l)) if (1..=MAX_LIMIT).contains(&l) => l,
        Some(_) => return error(StatusCode::BAD_REQUEST, "limit must be between 1 and 1000"),
    };
    let offset = match query.get("offset").map(|o| o.parse::<usize>()) {
        None => 0,
        Some(Ok(o)) => o,
        Some(Err(_)) => return error(StatusCode::BAD_REQUEST, "offset must be an integer"),
    };
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(offset).take(limit).collect();
    let mut body = json!({ "objects": page });
    if query.get("countAll").map(String::as_str) == Some("true") {
        body["total"] = json!(total.to_string());
    }
    Json(body).into_response()
}

/// sevDesk's error body (spec `validationError`).
fn error(status: StatusCode, message: &str) -> Response {
    let uuid = format!("{:08x}-sim", message.len() as u32 ^ status.as_u16() as u32);
    (
        status,
        Json(json!({"objects": null, "error": {"message": message, "exceptionUUID": uuid}})),
    )
        .into_response()
}

impl Simulator for SevdeskSimulator {
    fn vendor(&self) -> &'static str {
        VENDOR
    }

    fn router(self: Arc<Self>) -> Router {
        Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let sim = self.clone();
                async move { sim.handle(&method, &uri, &headers, &body) }
            },
        )
    }

    fn credentials(&self) -> Vec<(String, String)> {
        vec![("api_token".to_string(), self.token.clone())]
    }

    /// sevDesk holds no POS receipts.
    fn canonical_sales(&self) -> Vec<Sale> {
        Vec::new()
    }

    fn add_sales(&self, _sales: Vec<Sale>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SpecValidator {
        SpecValidator::embedded()
    }

    fn voucher_body() -> Value {
        json!({
            "voucher": {"objectName": "Voucher", "mapAll": true, "voucherDate": "2026-01-05T10:00:00+01:00",
                "status": 100, "taxRule": {"id": 1, "objectName": "TaxRule"}, "taxType": "default",
                "creditDebit": "D", "voucherType": "VOU", "description": "x PB-k"},
            "voucherPosSave": [{"objectName": "VoucherPos", "mapAll": true,
                "accountDatev": {"id": 8400, "objectName": "AccountDatev"},
                "accountingType": {"id": 26, "objectName": "AccountingType"},
                "taxRate": 19, "net": false, "sumGross": 1.19, "sumNet": 1.00}],
            "voucherPos": null,
        })
    }

    #[test]
    fn the_spec_accepts_a_complete_voucher_and_names_violations() {
        let s = spec();
        assert_eq!(
            s.operation("PUT", "/Voucher/12/bookAmount"),
            Some("/Voucher/{voucherId}/bookAmount")
        );
        assert_eq!(
            s.validate("POST", "/Voucher/Factory/saveVoucher", &voucher_body()),
            Ok(())
        );
        let mut bad = voucher_body();
        bad["voucher"]["status"] = json!(7);
        bad["voucher"]["voucherDate"] = json!("not a date");
        bad["voucherPosSave"][0]
            .as_object_mut()
            .unwrap()
            .remove("accountDatev");
        let errs = s
            .validate("POST", "/Voucher/Factory/saveVoucher", &bad)
            .unwrap_err();
        let text = errs.join("\n");
        assert!(text.contains("/voucher/status"), "{text}");
        assert!(text.contains("/voucher/voucherDate"), "{text}");
        assert!(text.contains("accountDatev"), "{text}");
        // The spec lists `voucherPos` as required but never defines it: the lenient reading
        // takes the body with or without it, the literal reading only with it.
        let mut without = voucher_body();
        without.as_object_mut().unwrap().remove("voucherPos");
        assert_eq!(
            s.validate("POST", "/Voucher/Factory/saveVoucher", &without),
            Ok(())
        );
        let literal = SpecValidator::embedded_as(Variant::required_as_listed().schema);
        assert!(literal
            .validate("POST", "/Voucher/Factory/saveVoucher", &without)
            .is_err());
        assert_eq!(
            literal.validate("POST", "/Voucher/Factory/saveVoucher", &voucher_body()),
            Ok(())
        );
        let booking = json!({"amount": 1.19, "date": "2026-01-05T10:00:00+01:00", "type": "N",
            "checkAccount": {"id": 3, "objectName": "CheckAccount"}});
        assert_eq!(s.validate("PUT", "/Voucher/5/bookAmount", &booking), Ok(()));
        assert!(s
            .validate("PUT", "/Voucher/5/bookAmount", &json!({"amount": "x"}))
            .is_err());
    }

    #[test]
    fn nullable_and_read_only_are_converted() {
        let mut s = json!({"type": "object", "required": ["id", "name"], "properties": {
            "id": {"type": "integer", "readOnly": true},
            "name": {"type": "string", "nullable": true, "enum": ["a"]}}});
        to_json_schema(&mut s);
        assert_eq!(s["required"], json!(["name"]));
        assert_eq!(s["properties"]["name"]["type"], json!(["string", "null"]));
        assert_eq!(s["properties"]["name"]["enum"], json!(["a", null]));
    }

    #[test]
    fn vouchers_are_computed_and_booked_like_sevdesk() {
        let sim = SevdeskSimulator::new("t".into(), spec(), &[]);
        let v = sim.save_voucher(&voucher_body()).unwrap();
        assert_eq!(v.positions[0].sum_net, Decimal::new(100, 2));
        assert_eq!(v.positions[0].sum_tax, Decimal::new(19, 2));
        let mut over = json!({"amount": 2, "checkAccount": {"id": 1}});
        assert!(sim.book_amount("1", &over).is_err());
        over["amount"] = json!(1.19);
        let paid = sim.book_amount("1", &over).unwrap();
        assert_eq!(paid.status, 1000);
        assert!(
            sim.book_amount("1", &over).is_err(),
            "a paid voucher is not booked again"
        );
        let mut wrong_rate = voucher_body();
        wrong_rate["voucherPosSave"][0]["taxRate"] = json!(10);
        assert!(sim
            .save_voucher(&wrong_rate)
            .unwrap_err()
            .contains("taxRate 10"));
    }

    /// A body the strict reading accepts: no `voucherPos`, a counterparty, tax rule 1 with D.
    fn strict_body() -> Value {
        let mut b = voucher_body();
        b.as_object_mut().unwrap().remove("voucherPos");
        b["voucher"]["supplierName"] = json!("Kasse S1/R1");
        b
    }

    fn strict_sim() -> SevdeskSimulator {
        SevdeskSimulator::new(
            "t".into(),
            SpecValidator::embedded_as(Variant::strict().schema),
            &[],
        )
        .with_variant(Variant::strict())
    }

    #[test]
    fn the_strict_reading_refuses_undefined_keys_and_null_optional_objects() {
        let strict = SpecValidator::embedded_as(Variant::strict().schema);
        let save = |b: &Value| strict.validate("POST", "/Voucher/Factory/saveVoucher", b);
        assert_eq!(save(&strict_body()), Ok(()));
        let errors = |b: &Value| save(b).unwrap_err().join("\n");
        // `voucherPos: null` beside `voucherPosSave`: a key the schema does not define.
        let text = errors(&voucher_body());
        assert!(text.contains("voucherPos"), "{text}");
        let mut extra = strict_body();
        extra["voucher"]["receiptNumber"] = json!("1");
        assert!(errors(&extra).contains("receiptNumber"));
        let mut extra_pos = strict_body();
        extra_pos["voucherPosSave"][0]["vat"] = json!(19);
        assert!(errors(&extra_pos).contains("vat"));
        // Optional objects: absent, never null (even where the spec says nullable).
        for key in ["supplier", "costCentre", "document", "taxSet"] {
            let mut null = strict_body();
            null["voucher"][key] = Value::Null;
            assert!(save(&null).is_err(), "{key}: null is refused");
        }
        // taxType is required and not nullable, even in Update 2.0.
        let mut tax_type = strict_body();
        tax_type["voucher"]["taxType"] = Value::Null;
        assert!(errors(&tax_type).contains("taxType"));
        let mut booking = json!({"amount": 1.19, "date": "2026-01-05T10:00:00+01:00", "type": "N",
            "checkAccount": {"id": 3, "objectName": "CheckAccount"}});
        assert_eq!(
            strict.validate("PUT", "/Voucher/5/bookAmount", &booking),
            Ok(())
        );
        booking["checkAccountTransaction"] = Value::Null;
        assert!(strict
            .validate("PUT", "/Voucher/5/bookAmount", &booking)
            .is_err());
        // The lenient default takes all of these.
        let lenient = spec();
        assert_eq!(
            lenient.validate("POST", "/Voucher/Factory/saveVoucher", &extra),
            Ok(())
        );
    }

    #[test]
    fn the_strict_reading_needs_a_counterparty_on_open_vouchers() {
        let sim = strict_sim();
        let mut b = strict_body();
        b["voucher"].as_object_mut().unwrap().remove("supplierName");
        let err = sim.save_voucher(&b).unwrap_err();
        assert!(err.contains("supplier object or a supplierName"), "{err}");
        b["voucher"]["supplierName"] = json!(" ");
        assert!(sim.save_voucher(&b).is_err());
        b["voucher"]["supplier"] = json!({"id": 7, "objectName": "Contact"});
        assert!(sim.save_voucher(&b).is_ok(), "a contact will do");
        let mut draft = strict_body();
        draft["voucher"]
            .as_object_mut()
            .unwrap()
            .remove("supplierName");
        draft["voucher"]["status"] = json!(50);
        assert!(sim.save_voucher(&draft).is_ok(), "drafts may skip it");
        let mut lenient = strict_body();
        lenient["voucher"]
            .as_object_mut()
            .unwrap()
            .remove("supplierName");
        assert!(SevdeskSimulator::new("t".into(), spec(), &[])
            .save_voucher(&lenient)
            .is_ok());
    }

    /// Every row of the tables against both sides, every standard rate and the taxType it
    /// replaces: the strict reading accepts exactly what the tables list.
    #[test]
    fn the_strict_reading_follows_the_tax_rule_tables() {
        let sim = strict_sim();
        for row in TAX_RULES {
            for (side, cd) in [(Side::Revenue, "D"), (Side::Expense, "C")] {
                for rate in [0u32, 7, 19] {
                    let mut b = strict_body();
                    b["voucher"]["taxRule"]["id"] = json!(row.id);
                    b["voucher"]["creditDebit"] = json!(cd);
                    b["voucher"]["taxType"] = json!(row.tax_types.first().unwrap_or(&"default"));
                    b["voucherPosSave"][0]["taxRate"] = json!(rate);
                    let rate_ok = row.rates.is_empty() || row.rates.contains(&rate);
                    let expected = row.side == side && row.in_vouchers && rate_ok;
                    let got = sim.save_voucher(&b);
                    assert_eq!(
                        got.is_ok(),
                        expected,
                        "taxRule {} {cd} {rate} %: {got:?}",
                        row.id
                    );
                }
            }
        }
        // A refund booked as "you bought something" under revenue rule 1 is the wrong side.
        let mut c1 = strict_body();
        c1["voucher"]["creditDebit"] = json!("C");
        let err = sim.save_voucher(&c1).unwrap_err();
        assert!(err.contains("taxRule 1 is a rule for revenue"), "{err}");
        // A taxType that rule 1 does not replace.
        let mut eu = strict_body();
        eu["voucher"]["taxType"] = json!("eu");
        assert!(sim.save_voucher(&eu).unwrap_err().contains("taxType"));
        // Negative positions on a revenue voucher (a credit note on the revenue side) pass.
        let mut refund = strict_body();
        refund["voucherPosSave"][0]["sumGross"] = json!(-1.19);
        refund["voucherPosSave"][0]["sumNet"] = json!(-1.00);
        let v = sim.save_voucher(&refund).unwrap();
        assert_eq!(v.sum_gross(), Decimal::new(-119, 2));
        let paid = sim
            .book_amount(
                &v.id.to_string(),
                &json!({"amount": -1.19, "checkAccount": {"id": 1}}),
            )
            .unwrap();
        assert_eq!(paid.status, 1000);
    }

    #[test]
    fn payment_faults_strike_before_or_after_booking() {
        let sim = SevdeskSimulator::new("t".into(), spec(), &[]);
        let v = sim.save_voucher(&voucher_body()).unwrap();
        let id = v.id.to_string();
        let pay = json!({"amount": 1.19, "checkAccount": {"id": 1}});
        sim.set_payment_faults(PaymentFaults::unavailable_once());
        let err = sim.faulty_book_amount(&id, &pay).unwrap_err();
        assert_eq!(err.0, StatusCode::SERVICE_UNAVAILABLE);
        assert!(sim.vouchers()[0].payments.is_empty(), "not booked");
        assert!(
            sim.faulty_book_amount(&id, &pay).is_ok(),
            "the second attempt passes"
        );

        let v = sim.save_voucher(&voucher_body()).unwrap();
        let id = v.id.to_string();
        sim.set_payment_faults(PaymentFaults::answer_lost_once());
        assert!(sim.faulty_book_amount(&id, &pay).is_err());
        assert_eq!(sim.vouchers()[1].paid(), Decimal::new(119, 2), "booked");
        assert!(
            sim.faulty_book_amount(&id, &pay).is_err(),
            "booking it again pays too much"
        );

        let v = sim.save_voucher(&voucher_body()).unwrap();
        let id = v.id.to_string();
        sim.set_payment_faults(PaymentFaults::refused());
        for _ in 0..3 {
            let err = sim.faulty_book_amount(&id, &pay).unwrap_err();
            assert_eq!(err.0, StatusCode::UNPROCESSABLE_ENTITY);
        }
        sim.set_payment_faults(PaymentFaults::default());
        assert!(sim.faulty_book_amount(&id, &pay).is_ok());
    }

    #[test]
    fn queries_are_decoded() {
        let q = parse_query("descriptionLike=PB-ab%20c&limit=10");
        assert_eq!(q["descriptionLike"], "PB-ab c");
        assert_eq!(q["limit"], "10");
    }
}
