//! Management of pipelines, runs and dead letters:
//! `POST/GET /api/v1/pipelines`, `GET/PUT/DELETE /api/v1/pipelines/{name}`,
//! `POST /api/v1/pipelines/{name}/run`, `GET /api/v1/runs`, `GET /api/v1/runs/{id}` (live
//! counts while running), `GET /api/v1/deadletters`, `POST /api/v1/deadletters/{id}/retry`.
//!
//! Pipelines belong to a store; a store key sees its store's pipelines, their runs and dead
//! letters only: in lists and runs anything else is 404 to it, as if it did not exist; asking
//! for a pipeline by name that is not its store's is 403 with the one store-scoping message,
//! whether the pipeline exists or not. Admin keys create pipelines; a store key may read,
//! replace and delete its store's. Connector configs are sealed and never answered.

use std::path::Path as FsPath;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::app::{AppInner, AppState};
use super::auth::{Caller, NO_ACCESS_TO_STORE};
use super::envelope::{with_status, ApiError, ApiJson, ApiResult, Envelope, ErrorEnvelope};
use super::pipeline_catalog::{CatalogError, HeldPipeline, Origin};
use super::Routes;
use crate::jobs::StartError;
use crate::pipeline::{open_connectors, retry_dead_letter, PipelineDef, RetryOutcome};
use crate::runtime::CancelFlag;
use crate::schedule::ScheduledPipeline;
use crate::state::{DeadLetterFilter, RunTrigger};

fn catalog_error(e: CatalogError) -> ApiError {
    match e {
        CatalogError::Exists(_) => ApiError::conflict(e.to_string()),
        CatalogError::ConfigsMissing(_) => {
            ApiError::new(StatusCode::CONFLICT, "credentials_missing", e.to_string())
        }
        CatalogError::Storage(_) => ApiError::internal(e),
    }
}

/// A new pipeline: the same keys as a pipeline file (`name`, `source`, `sink`, `mapping`,
/// `schedule`, `delivery`), as JSON, for a store. `${env:…}` is not expanded here.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreatePipeline {
    pub store_id: String,
    /// The definition, as in `docs/pipelines.md`.
    #[schema(value_type = Object)]
    pub pipeline: Value,
}

/// A pipeline as the API shows it: never its configs.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineView {
    pub name: String,
    pub store_id: String,
    /// `api` or `sync`.
    pub origin: String,
    pub source_connector: String,
    pub streams: Vec<String>,
    pub sink_connector: String,
    /// `per_sale` or `daily_summary`.
    pub sink_mode: String,
    /// Cron expression (UTC), if it runs on a schedule.
    pub schedule: Option<String>,
    /// Whether a run is going on now.
    pub running: bool,
    /// Whether its connector configs (credentials) are sealed; `false` after they were
    /// deleted (`DELETE /api/v1/stores/{storeId}/credentials/…`): it cannot run until a `PUT`
    /// (or its sync call) seals new ones.
    pub configs_sealed: bool,
    pub created_at: String,
    pub updated_at: String,
}

fn view(a: &AppInner, h: HeldPipeline) -> PipelineView {
    PipelineView {
        running: a.jobs.is_running(&h.blank.name),
        name: h.blank.name,
        store_id: h.store_id,
        origin: match h.origin {
            Origin::Api => "api".into(),
            Origin::Sync => "sync".into(),
        },
        source_connector: h.blank.source.connector,
        streams: h.blank.source.streams,
        sink_connector: h.blank.sink.connector,
        sink_mode: h.blank.sink.mode.as_str().into(),
        schedule: h.blank.schedule,
        configs_sealed: h.configs_sealed,
        created_at: h.created_at,
        updated_at: h.updated_at,
    }
}

/// Reads a definition from JSON, naming the JSON path of a problem, then checks it like
/// `posbridge validate` (connectors, streams, config schemas, schedule).
fn definition(a: &AppInner, v: Value) -> Result<PipelineDef, ApiError> {
    let text = serde_json::to_string_pretty(&v).map_err(ApiError::internal)?;
    let mut def: PipelineDef =
        serde_path_to_error::deserialize(v).map_err(|e: serde_path_to_error::Error<_>| {
            let path = e.path().to_string();
            let at = if path == "." {
                "$.pipeline".to_string()
            } else {
                format!("$.pipeline.{path}")
            };
            ApiError::bad_request(format!("invalid pipeline at {at}: {}", e.inner()))
        })?;
    def.file = FsPath::new("$.pipeline").to_path_buf();
    let errors = def.validate(&a.registry, &text);
    if !errors.is_empty() {
        let all: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        return Err(ApiError::bad_request(format!(
            "invalid pipeline: {}",
            all.join("; ")
        )));
    }
    ScheduledPipeline::from_def(&def).map_err(|e| {
        ApiError::bad_request(format!("invalid pipeline at $.pipeline.schedule: {e}"))
    })?;
    Ok(def)
}

/// Create a pipeline for a store (admin key). It runs on its `schedule`, and on
/// `POST /api/v1/pipelines/{name}/run`.
#[utoipa::path(post, path = "/api/v1/pipelines", tag = "pipelines", request_body = CreatePipeline,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = Envelope<PipelineView>),
        (status = 400, description = "Invalid definition (JSON path, connector, stream, config, schedule)", body = ErrorEnvelope),
        (status = 401, description = "No or bad key", body = ErrorEnvelope),
        (status = 403, description = "Not an admin key", body = ErrorEnvelope),
        (status = 404, description = "No such store", body = ErrorEnvelope),
        (status = 409, description = "A pipeline of that name exists", body = ErrorEnvelope)))]
async fn create_pipeline(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreatePipeline>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let store = caller.store(&app, &body.store_id).await?.store_id;
    let created = app
        .blocking(move |a| {
            let def = definition(a, body.pipeline)?;
            a.catalog
                .put(&store, &def, Origin::Api, false)
                .map_err(catalog_error)?;
            let held = a.catalog.get(&def.name).map_err(catalog_error)?;
            held.map(|h| view(a, h))
                .ok_or_else(|| ApiError::internal("the pipeline vanished after saving"))
        })
        .await?;
    if created.schedule.is_some() {
        super::schedules::reload(&app).await;
    }
    Ok(with_status(StatusCode::CREATED, created))
}

/// The pipelines this key sees.
#[utoipa::path(get, path = "/api/v1/pipelines", tag = "pipelines", security(("bearer" = [])),
    responses(
        (status = 200, description = "Pipelines, by name", body = Envelope<Vec<PipelineView>>),
        (status = 401, description = "No or bad key", body = ErrorEnvelope)))]
async fn list_pipelines(
    State(app): State<AppState>,
    caller: Caller,
) -> ApiResult<Vec<PipelineView>> {
    let all = app
        .blocking(move |a| {
            Ok(a.catalog
                .list()
                .map_err(catalog_error)?
                .into_iter()
                .filter(|h| caller.may_see(&h.store_id))
                .map(|h| view(a, h))
                .collect::<Vec<_>>())
        })
        .await?;
    Ok(Envelope::ok(all))
}

/// The pipeline `name`, ready to run, if this key may see it; 404 otherwise (other stores'
/// pipelines do not exist for a store key). The store is checked before the configs are
/// opened, so a missing config tells nothing about another store's pipeline.
fn visible_pipeline(
    a: &AppInner,
    caller: &Caller,
    name: &str,
) -> Result<(String, PipelineDef), ApiError> {
    let not_found = || ApiError::not_found(format!("no pipeline {name:?}"));
    match a.catalog.store_of(name).map_err(catalog_error)? {
        Some(store) if caller.may_see(&store) => {}
        _ => return Err(not_found()),
    }
    a.catalog
        .runnable(name)
        .map_err(catalog_error)?
        .ok_or_else(not_found)
}

/// The held pipeline `name` for the by-name endpoints: an admin key gets 404 for a name not
/// held; a store key gets 403 [`NO_ACCESS_TO_STORE`] for any pipeline not of its store, held
/// or not, so it learns nothing about other stores.
fn pipeline_for(a: &AppInner, caller: &Caller, name: &str) -> Result<HeldPipeline, ApiError> {
    match a.catalog.get(name).map_err(catalog_error)? {
        Some(h) if caller.may_see(&h.store_id) => Ok(h),
        _ if !caller.is_admin() => Err(ApiError::forbidden(NO_ACCESS_TO_STORE)),
        _ => Err(ApiError::not_found(format!("no pipeline {name:?}"))),
    }
}

/// One pipeline (never its configs).
#[utoipa::path(get, path = "/api/v1/pipelines/{name}", tag = "pipelines", security(("bearer" = [])),
    params(("name" = String, Path, description = "Pipeline name")),
    responses(
        (status = 200, description = "The pipeline", body = Envelope<PipelineView>),
        (status = 401, description = "No or bad key", body = ErrorEnvelope),
        (status = 403, description = "A store key asking for a pipeline not of its store (held or not)", body = ErrorEnvelope),
        (status = 404, description = "No such pipeline (admin key)", body = ErrorEnvelope)))]
async fn get_pipeline(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<PipelineView> {
    let found = app
        .blocking(move |a| pipeline_for(a, &caller, &name).map(|h| view(a, h)))
        .await?;
    Ok(Envelope::ok(found))
}

/// A new definition for a held pipeline.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplacePipeline {
    /// Its store; default the store it has. Moving it to another store takes an admin key
    /// (a store key naming another store gets 403).
    #[serde(default)]
    pub store_id: Option<String>,
    /// The whole definition, as for `POST /api/v1/pipelines`; `name` may be left out, and
    /// must be the name in the path if given.
    #[schema(value_type = Object)]
    pub pipeline: Value,
}

/// Replace a pipeline's definition (admin, or a store key of its store): checked like a new
/// one, its configs sealed anew, its schedule reloaded. Its cursors, ledger and runs stay (as
/// when a pipeline file is edited); a run going on ends with the definition it started with.
#[utoipa::path(put, path = "/api/v1/pipelines/{name}", tag = "pipelines", request_body = ReplacePipeline,
    security(("bearer" = [])),
    params(("name" = String, Path, description = "Pipeline name")),
    responses(
        (status = 200, description = "Replaced", body = Envelope<PipelineView>),
        (status = 400, description = "Invalid definition (JSON path, connector, stream, config, schedule), or another name", body = ErrorEnvelope),
        (status = 401, description = "No or bad key", body = ErrorEnvelope),
        (status = 403, description = "A store key asking for a pipeline or a store not its own", body = ErrorEnvelope),
        (status = 404, description = "No such pipeline or store (admin key)", body = ErrorEnvelope)))]
async fn replace_pipeline(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<ReplacePipeline>,
) -> ApiResult<PipelineView> {
    let (c, n) = (caller.clone(), name.clone());
    let held = app.blocking(move |a| pipeline_for(a, &c, &n)).await?;
    let store = match body.store_id {
        Some(s) if s != held.store_id => caller.store(&app, &s).await?.store_id,
        _ => held.store_id.clone(),
    };
    let mut pipeline = body.pipeline;
    match pipeline.get("name") {
        None => {
            if let Some(obj) = pipeline.as_object_mut() {
                obj.insert("name".into(), Value::String(name.clone()));
            }
        }
        Some(Value::String(given)) if *given == name => {}
        Some(given) => {
            return Err(ApiError::bad_request(format!(
                "invalid pipeline at $.pipeline.name: {given} is not the name in the path ({name:?}); a pipeline is not renamed: create one under the new name"
            )))
        }
    }
    let replaced = app
        .blocking(move |a| {
            let def = definition(a, pipeline)?;
            a.catalog
                .put(&store, &def, held.origin, true)
                .map_err(catalog_error)?;
            let h = a.catalog.get(&def.name).map_err(catalog_error)?;
            h.map(|h| view(a, h))
                .ok_or_else(|| ApiError::internal("the pipeline vanished after saving"))
        })
        .await?;
    super::schedules::reload(&app).await;
    Ok(Envelope::ok(replaced))
}

/// A deleted pipeline.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineDeleted {
    pub name: String,
    pub store_id: String,
    /// The cron expression it ran on, if any (no longer).
    pub schedule: Option<String>,
}

/// Delete a pipeline (admin, or a store key of its store): its definition, its sealed configs
/// and its schedule go; its run history, dead letters, cursors and ledger stay (a pipeline made
/// again under the name carries on from them). 409 while it runs.
#[utoipa::path(delete, path = "/api/v1/pipelines/{name}", tag = "pipelines", security(("bearer" = [])),
    params(("name" = String, Path, description = "Pipeline name")),
    responses(
        (status = 200, description = "Deleted", body = Envelope<PipelineDeleted>),
        (status = 401, description = "No or bad key", body = ErrorEnvelope),
        (status = 403, description = "A store key asking for a pipeline not of its store (held or not)", body = ErrorEnvelope),
        (status = 404, description = "No such pipeline (admin key)", body = ErrorEnvelope),
        (status = 409, description = "It is running: wait for the run to end", body = ErrorEnvelope)))]
async fn delete_pipeline(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<PipelineDeleted> {
    let deleted = app
        .blocking(move |a| {
            let held = pipeline_for(a, &caller, &name)?;
            if let Some(run) = a.jobs.live_runs().into_iter().find(|r| r.pipeline == name) {
                return Err(ApiError::conflict(format!(
                    "pipeline {name:?} is running (run {}); delete it once the run has ended",
                    run.run_id
                        .map_or("not yet recorded".to_string(), |id| id.to_string())
                )));
            }
            a.catalog.delete(&name).map_err(catalog_error)?;
            tracing::info!(pipeline = %name, store = %held.store_id, key = %caller.key_id, "pipeline deleted");
            Ok(PipelineDeleted {
                name: held.blank.name,
                store_id: held.store_id,
                schedule: held.blank.schedule,
            })
        })
        .await?;
    if deleted.schedule.is_some() {
        super::schedules::reload(&app).await;
    }
    Ok(Envelope::ok(deleted))
}

/// A finished run.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunView {
    pub id: i64,
    pub pipeline: String,
    /// `running`, `succeeded`, `failed`, `cancelled`, `interrupted`.
    pub status: String,
    /// Why it started: `cli`, `api`, `schedule`.
    pub trigger: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub read: u64,
    pub written: u64,
    pub duplicates: u64,
    pub dead_lettered: u64,
    pub retries: u64,
    pub error: Option<String>,
    /// Whether the counts are live (the run is going on in this server).
    pub live: bool,
}

/// Started: the run's id (and its report when it ended within the wait).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunStarted {
    pub run_id: Option<i64>,
    /// `running` or the final status.
    pub status: String,
    pub poll: String,
}

/// Run a pipeline now (a store key of its store, or admin). Answers when it ends within
/// `--job-wait-secs`, else 202 with the run id to poll.
#[utoipa::path(post, path = "/api/v1/pipelines/{name}/run", tag = "pipelines", security(("bearer" = [])),
    params(("name" = String, Path, description = "Pipeline name")),
    responses(
        (status = 200, description = "Ended", body = Envelope<RunStarted>),
        (status = 202, description = "Still running", body = Envelope<RunStarted>),
        (status = 401, description = "No or bad key", body = ErrorEnvelope),
        (status = 404, description = "No such pipeline for this key", body = ErrorEnvelope),
        (status = 409, description = "It is running already, or `credentials_missing`: its configs were deleted", body = ErrorEnvelope)))]
async fn run_pipeline_now(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let (_, def) = app
        .blocking(move |a| visible_pipeline(a, &caller, &name))
        .await?;
    let mut ticket = app
        .jobs
        .start(def, RunTrigger::Api)
        .await
        .map_err(start_error)?;
    let poll = ticket
        .run_id
        .map(|id| format!("/api/v1/runs/{id}"))
        .unwrap_or_else(|| "/api/v1/runs".into());
    match ticket.wait(app.settings.job_wait).await {
        Some(report) => Ok(Json(Envelope::ok(RunStarted {
            run_id: report.run_id,
            status: report.status.as_str().into(),
            poll,
        }))
        .into_response()),
        None => Ok((
            StatusCode::ACCEPTED,
            Json(Envelope::ok(RunStarted {
                run_id: ticket.run_id,
                status: "running".into(),
                poll,
            })),
        )
            .into_response()),
    }
}

/// Maps a refused start onto HTTP.
pub fn start_error(e: StartError) -> ApiError {
    match e {
        StartError::AlreadyRunning { .. } => ApiError::conflict(e.to_string()),
        StartError::ShuttingDown => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            e.to_string(),
        ),
    }
}

/// Filters of the run and dead-letter lists.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// Only this pipeline's.
    pub pipeline: Option<String>,
    /// At most this many (default 50, at most 1000).
    pub limit: Option<usize>,
}

/// Whether the key may see the runs and dead letters of pipeline `name`.
fn may_see_pipeline(a: &AppInner, caller: &Caller, name: &str) -> Result<bool, ApiError> {
    if caller.is_admin() {
        return Ok(true);
    }
    Ok(a.catalog
        .store_of(name)
        .map_err(catalog_error)?
        .is_some_and(|s| caller.may_see(&s)))
}

fn run_view(a: &AppInner, r: crate::state::RunRecord) -> RunView {
    let live = a.jobs.live_run(r.id);
    let c = live.as_ref().map(|l| l.counters.clone());
    RunView {
        id: r.id,
        pipeline: r.pipeline,
        status: r.status,
        trigger: Some(r.trigger),
        started_at: r.started_at,
        finished_at: r.finished_at,
        read: c.as_ref().map_or(r.read, |c| c.read),
        written: c.as_ref().map_or(r.written, |c| c.written),
        duplicates: c.as_ref().map_or(r.duplicates, |c| c.duplicates),
        dead_lettered: c.as_ref().map_or(r.dead_lettered, |c| c.dead_lettered),
        retries: c.as_ref().map_or(r.retries, |c| c.retries),
        error: r.error,
        live: live.is_some(),
    }
}

/// Runs, newest first (a store key: its store's pipelines).
#[utoipa::path(get, path = "/api/v1/runs", tag = "pipelines", security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "Runs, newest first", body = Envelope<Vec<RunView>>),
        (status = 401, description = "No or bad key", body = ErrorEnvelope)))]
async fn list_runs(
    State(app): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Vec<RunView>> {
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    let runs = app
        .blocking(move |a| {
            // A store key's runs are filtered after reading, so read more than the limit.
            let want = if caller.is_admin() { limit } else { limit * 20 };
            let mut out = Vec::new();
            for r in a
                .state
                .runs(q.pipeline.as_deref(), want)
                .map_err(ApiError::internal)?
            {
                if out.len() >= limit {
                    break;
                }
                if may_see_pipeline(a, &caller, &r.pipeline)? {
                    out.push(run_view(a, r));
                }
            }
            Ok(out)
        })
        .await?;
    Ok(Envelope::ok(runs))
}

/// One run, with live counts while it goes on.
#[utoipa::path(get, path = "/api/v1/runs/{id}", tag = "pipelines", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Run id")),
    responses(
        (status = 200, description = "The run", body = Envelope<RunView>),
        (status = 401, description = "No or bad key", body = ErrorEnvelope),
        (status = 404, description = "No such run for this key", body = ErrorEnvelope)))]
async fn get_run(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<RunView> {
    let run = app
        .blocking(move |a| {
            let found = a
                .state
                .run_by_id(id)
                .map_err(ApiError::internal)?
                .filter(|r| may_see_pipeline(a, &caller, &r.pipeline).unwrap_or(false));
            found
                .map(|r| run_view(a, r))
                .ok_or_else(|| ApiError::not_found(format!("no run {id}")))
        })
        .await?;
    Ok(Envelope::ok(run))
}

/// A dead letter: a record a run could not deliver, and why.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterView {
    pub id: i64,
    pub pipeline: String,
    pub run_id: Option<i64>,
    pub stream: String,
    /// Its idempotency key.
    pub record_key: Option<String>,
    #[schema(value_type = Object)]
    pub record: Value,
    pub reason: String,
    /// Where it failed (`validation`, `sink`, …).
    pub stage: String,
    pub created_at: String,
    pub resolved_at: Option<String>,
    pub note: Option<String>,
}

impl From<crate::state::DeadLetter> for DeadLetterView {
    fn from(d: crate::state::DeadLetter) -> Self {
        Self {
            id: d.id,
            pipeline: d.pipeline,
            run_id: d.run_id,
            stream: d.stream,
            record_key: d.record_key,
            record: d.record,
            reason: d.reason,
            stage: d.stage,
            created_at: d.created_at,
            resolved_at: d.resolved_at,
            note: d.note,
        }
    }
}

/// Open dead letters, oldest first (a store key: its store's pipelines).
#[utoipa::path(get, path = "/api/v1/deadletters", tag = "pipelines", security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "Open dead letters, oldest first", body = Envelope<Vec<DeadLetterView>>),
        (status = 401, description = "No or bad key", body = ErrorEnvelope)))]
async fn list_dead_letters(
    State(app): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Vec<DeadLetterView>> {
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    let letters = app
        .blocking(move |a| {
            let all = a
                .state
                .dead_letters(&DeadLetterFilter {
                    pipeline: q.pipeline.clone(),
                    include_resolved: false,
                    limit: if caller.is_admin() { limit } else { limit * 20 },
                })
                .map_err(ApiError::internal)?;
            let mut out = Vec::new();
            for d in all {
                if out.len() >= limit {
                    break;
                }
                if may_see_pipeline(a, &caller, &d.pipeline)? {
                    out.push(DeadLetterView::from(d));
                }
            }
            Ok(out)
        })
        .await?;
    Ok(Envelope::ok(letters))
}

/// Send a dead letter again to its pipeline's sink; resolved when the sink takes it.
#[utoipa::path(post, path = "/api/v1/deadletters/{id}/retry", tag = "pipelines", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Dead letter id")),
    responses(
        (status = 200, description = "What the retry did (`outcome`: delivered, refused_again, …)", body = Envelope<Object>),
        (status = 401, description = "No or bad key", body = ErrorEnvelope),
        (status = 404, description = "No such dead letter for this key, or its pipeline is not held by the server", body = ErrorEnvelope),
        (status = 409, description = "`credentials_missing`: its pipeline's configs were deleted", body = ErrorEnvelope)))]
async fn retry_dead_letter_now(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<RetryOutcome> {
    let outcome = app
        .blocking(move |a| {
            let not_found = || ApiError::not_found(format!("no dead letter {id}"));
            let d = a
                .state
                .dead_letter_by_id(id)
                .map_err(ApiError::internal)?
                .ok_or_else(not_found)?;
            // The store first: a missing config must tell nothing about another store's.
            let held = match a.catalog.store_of(&d.pipeline).map_err(catalog_error)? {
                Some(store) if caller.may_see(&store) => a.catalog.runnable(&d.pipeline).map_err(catalog_error)?,
                Some(_) => return Err(not_found()),
                None => None,
            };
            let (_, def) = match held {
                Some(found) => found,
                None if caller.is_admin() => {
                    return Err(ApiError::not_found(format!(
                        "dead letter {id} is of pipeline {:?}, which this server does not hold; retry it with `posbridge dlq retry`",
                        d.pipeline
                    )))
                }
                None => return Err(not_found()),
            };
            let (_source, sink) =
                open_connectors(&def, &a.registry, a.state.clone(), CancelFlag::new())
                    .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "sink_unavailable", format!("{e:#}")))?;
            retry_dead_letter(&def, &sink, &*a.state, &d).map_err(ApiError::internal)
        })
        .await?;
    Ok(Envelope::ok(outcome))
}

#[derive(OpenApi)]
#[openapi(
    paths(
        create_pipeline,
        list_pipelines,
        get_pipeline,
        replace_pipeline,
        delete_pipeline,
        run_pipeline_now,
        list_runs,
        get_run,
        list_dead_letters,
        retry_dead_letter_now
    ),
    components(schemas(
        CreatePipeline,
        ReplacePipeline,
        PipelineView,
        PipelineDeleted,
        RunView,
        RunStarted,
        DeadLetterView
    ))
)]
struct Doc;

/// The management routes and their OpenAPI paths.
pub fn routes() -> Routes {
    let router = Router::new()
        .route(
            "/api/v1/pipelines",
            get(list_pipelines).post(create_pipeline),
        )
        .route(
            "/api/v1/pipelines/{name}",
            get(get_pipeline)
                .put(replace_pipeline)
                .delete(delete_pipeline),
        )
        .route("/api/v1/pipelines/{name}/run", post(run_pipeline_now))
        .route("/api/v1/runs", get(list_runs))
        .route("/api/v1/runs/{id}", get(get_run))
        .route("/api/v1/deadletters", get(list_dead_letters))
        .route(
            "/api/v1/deadletters/{id}/retry",
            post(retry_dead_letter_now),
        );
    (router, Doc::openapi())
}
