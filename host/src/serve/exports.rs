//! The BEEP! Analytics Export endpoints, answered from the canonical hub:
//! `POST /api/v1/exportSalesData` (summary and transactions of a period, JSON or CSV, streamed)
//! and `POST /api/v1/exportReceiptData` (one receipt with its tax breakdown and TSE block).
//!
//! The figures and money rules are the hub's (`docs/hub.md`): money is a JSON number with two
//! decimals as in the BEEP! sample, with the exact amount as a string beside it (`totalExact`).

use std::io::Write;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use utoipa::{OpenApi, ToSchema};

use super::app::AppState;
use super::auth::Caller;
use super::envelope::{ApiError, ApiJson, Envelope, ErrorEnvelope};
use super::Routes;
use crate::hub::{
    export_receipt_data, export_sales_data, ExportFormat, HubError, Period, StoreScope,
};

/// The body of `exportSalesData`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportSalesRequest {
    /// The store.
    pub store_id: String,
    /// First day (`YYYY-MM-DD`, a whole business day) or instant (ISO 8601), inclusive.
    pub from: String,
    /// Last day or instant, inclusive.
    pub to: String,
    /// `json` (default) or `csv`.
    #[serde(default)]
    pub format: Option<String>,
}

/// The body of `exportReceiptData`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportReceiptRequest {
    /// The canonical sale id (as in `transactions` of `exportSalesData`), or the vendor's
    /// receipt number when it is unique in the store.
    pub receipt_id: String,
    /// Narrows the search to one store (a store key searches its own store anyway).
    #[serde(default)]
    pub store_id: Option<String>,
}

// The types below document the answers in the OpenAPI document only: the hub writes the JSON
// itself (streamed, money from decimal text), so no float ever holds an amount.

/// The period asked for.
#[derive(Serialize, ToSchema)]
struct PeriodDoc {
    from: String,
    to: String,
}

/// A best-selling product of the period.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct TopProductDoc {
    name: String,
    #[schema(value_type = f64)]
    sold: Decimal,
    /// Two decimals.
    #[schema(value_type = f64)]
    revenue: Decimal,
    /// Exact.
    revenue_exact: String,
}

/// The figures of the period.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SummaryDoc {
    /// Signed gross sum of sales, refunds and cancellations, two decimals.
    #[schema(value_type = f64)]
    total_revenue: Decimal,
    total_revenue_exact: String,
    /// Sales, refunds and cancellations (not training or void receipts).
    total_transactions: u64,
    /// Mean number of items per sale.
    #[schema(value_type = f64)]
    avg_basket_size: Decimal,
    /// The store's currency; null when the period has no sale.
    currency: Option<String>,
    top_products: Vec<TopProductDoc>,
}

/// A payment of a transaction.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct PaymentDoc {
    method: String,
    #[schema(value_type = f64)]
    amount: Decimal,
    amount_exact: String,
}

/// One transaction of the period.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct TransactionDoc {
    /// The canonical sale id (what `exportReceiptData` takes).
    id: String,
    receipt_number: String,
    register_id: String,
    business_day: String,
    timestamp: String,
    /// `sale`, `refund` or `cancellation`.
    kind: String,
    cancels: Option<String>,
    currency: String,
    #[schema(value_type = f64)]
    items: Decimal,
    #[schema(value_type = f64)]
    net: Decimal,
    net_exact: String,
    #[schema(value_type = f64)]
    tax: Decimal,
    tax_exact: String,
    #[schema(value_type = f64)]
    total: Decimal,
    total_exact: String,
    payments: Vec<PaymentDoc>,
}

/// The `data` of `exportSalesData` (format `json`).
#[derive(Serialize, ToSchema)]
struct SalesExportDoc {
    period: PeriodDoc,
    summary: SummaryDoc,
    transactions: Vec<TransactionDoc>,
}

/// The TSE (KassenSichV) block of a receipt, as the source system signed it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct TseDoc {
    serial_number: String,
    signature: String,
    transaction_number: u64,
    signature_counter: u64,
}

/// One VAT rate of a receipt.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct TaxBreakdownDoc {
    #[schema(value_type = f64)]
    rate: Decimal,
    #[schema(value_type = f64)]
    net: Decimal,
    net_exact: String,
    #[schema(value_type = f64)]
    tax: Decimal,
    tax_exact: String,
    #[schema(value_type = f64)]
    gross: Decimal,
    gross_exact: String,
}

/// The `data` of `exportReceiptData` (main fields; `lines`, `payments` and `totals` too).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ReceiptDoc {
    receipt_id: String,
    store_id: String,
    receipt_number: String,
    register_id: String,
    business_day: String,
    timestamp: String,
    kind: String,
    currency: String,
    tax_breakdown: Vec<TaxBreakdownDoc>,
    /// Null when the source receipt carries no TSE signature (e.g. an Austrian RKSV receipt).
    tse: Option<TseDoc>,
}

/// The answer of `exportReceiptData`: the envelope, plus `tse` and `taxBreakdown` at the top as
/// in the BEEP! sample.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ReceiptAnswerDoc {
    success: bool,
    tse: Option<TseDoc>,
    tax_breakdown: Vec<TaxBreakdownDoc>,
    data: ReceiptDoc,
}

/// Maps the hub's errors onto HTTP answers.
pub fn hub_error(e: HubError) -> ApiError {
    match e {
        HubError::NotFound(m) => ApiError::not_found(m),
        HubError::Invalid { field, message } => {
            ApiError::bad_request(format!("$.{field}: {message}"))
        }
        e @ HubError::Ambiguous { .. } => ApiError::conflict(e.to_string()),
        e @ (HubError::Storage { .. } | HubError::Output(_)) => ApiError::internal(e),
    }
}

/// Sales data of a store for a period: summary and transactions (JSON), or one CSV row per
/// transaction. Streamed: memory stays flat for any number of receipts.
#[utoipa::path(post, path = "/api/v1/exportSalesData", tag = "export",
    request_body = ExportSalesRequest, security(("bearer" = [])),
    responses(
        (status = 200, description = "The export (JSON; `text/csv` for format csv)", body = Envelope<SalesExportDoc>),
        (status = 400, description = "Missing field, bad date, `from` after `to`, bad format", body = ErrorEnvelope),
        (status = 401, description = "No or bad key", body = ErrorEnvelope),
        (status = 403, description = "Another store's key", body = ErrorEnvelope),
        (status = 404, description = "No such store (admin key)", body = ErrorEnvelope)))]
async fn export_sales(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ExportSalesRequest>,
) -> Result<Response, ApiError> {
    let store = caller.store(&app, &body.store_id).await?.store_id;
    let period = Period::parse(&body.from, &body.to).map_err(hub_error)?;
    let format: ExportFormat = body
        .format
        .as_deref()
        .unwrap_or("json")
        .parse()
        .map_err(hub_error)?;
    let (chunks_tx, chunks_rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let (first_tx, first_rx) = oneshot::channel::<Result<(), HubError>>();
    let app2 = app.clone();
    tokio::task::spawn_blocking(move || {
        let mut out = ChunkWriter {
            tx: chunks_tx,
            first: Some(first_tx),
        };
        let result = export_sales_data(&app2.hub, &store, &period, format, &mut out);
        if let Err(e) = result {
            match out.first.take() {
                // Nothing sent yet: the client gets a proper error answer.
                Some(first) => {
                    let _ = first.send(Err(e));
                }
                // Mid-stream: all that is left is to break the body off.
                None => {
                    tracing::error!(error = %e, "sales export failed mid-stream");
                    let _ = out
                        .tx
                        .blocking_send(Err(std::io::Error::other(e.to_string())));
                }
            }
        }
    });
    // Ok(Ok): the export started; Err: it ended without writing (nothing to wait for).
    if let Ok(Err(e)) = first_rx.await {
        return Err(hub_error(e));
    }
    let stream = tokio_stream_from(chunks_rx);
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, format.content_type())],
        Body::from_stream(stream),
    )
        .into_response())
}

/// The chunks a blocking writer sends, as a body stream.
fn tokio_stream_from(
    rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    })
}

/// A `Write` that sends what it is given, in chunks, to the response body; the first write
/// tells the handler the export started (so errors before it become proper answers).
struct ChunkWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    first: Option<oneshot::Sender<Result<(), HubError>>>,
}

impl Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(first) = self.first.take() {
            let _ = first.send(Ok(()));
        }
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One receipt with its VAT breakdown and TSE signature, by canonical sale id or by the
/// vendor's receipt number when that is unique in the store.
#[utoipa::path(post, path = "/api/v1/exportReceiptData", tag = "export",
    request_body = ExportReceiptRequest, security(("bearer" = [])),
    responses(
        (status = 200, description = "The receipt", body = ReceiptAnswerDoc),
        (status = 400, description = "Missing or empty receiptId", body = ErrorEnvelope),
        (status = 401, description = "No or bad key", body = ErrorEnvelope),
        (status = 403, description = "Another store's key", body = ErrorEnvelope),
        (status = 404, description = "No such receipt in the stores this key sees", body = ErrorEnvelope),
        (status = 409, description = "The receipt number names several sales; ask by id", body = ErrorEnvelope)))]
async fn export_receipt(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ExportReceiptRequest>,
) -> Result<Response, ApiError> {
    let scope = match (&body.store_id, &caller.store) {
        (Some(asked), _) => StoreScope::Stores(vec![caller.store(&app, asked).await?.store_id]),
        (None, Some(own)) => StoreScope::Stores(vec![own.clone()]),
        (None, None) => StoreScope::All,
    };
    let receipt_id = body.receipt_id;
    let data = app
        .blocking(move |a| export_receipt_data(&a.hub, &scope, &receipt_id).map_err(hub_error))
        .await?;
    // The hub writes the JSON from decimal text; wrap it in the envelope as text too. The BEEP!
    // sample answers `tse` and `taxBreakdown` at the top, so they are there too, beside `data`.
    let top = |name: &str| match &data {
        posbridge_plugin_api::json_text::Json::Obj(fields) => fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.to_text())
            .unwrap_or_else(|| "null".into()),
        _ => "null".into(),
    };
    let text = format!(
        "{{\"success\":true,\"tse\":{},\"taxBreakdown\":{},\"data\":{}}}",
        top("tse"),
        top("taxBreakdown"),
        data.to_text()
    );
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        text,
    )
        .into_response())
}

#[derive(OpenApi)]
#[openapi(
    paths(export_sales, export_receipt),
    components(schemas(ExportSalesRequest, ExportReceiptRequest))
)]
struct Doc;

/// The export routes and their OpenAPI paths.
pub fn routes() -> Routes {
    let router = Router::new()
        .route("/api/v1/exportSalesData", post(export_sales))
        .route("/api/v1/exportReceiptData", post(export_receipt));
    (router, Doc::openapi())
}
