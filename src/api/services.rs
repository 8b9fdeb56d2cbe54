//! The service routes: list, define, get, remove, control verbs, stdin input.
//!
//! Each handler is one library call on the [`crate::Steward`] handle. Control verbs and
//! define answer with the service's state once the action is done (a start returns once
//! the process is spawned, a stop once it is gone). A control verb with `wait=false`
//! answers `202 Accepted` as soon as the service's Server acted on it
//! ([`crate::Steward::control_no_wait`]); a stop with `cascade=true` stops the running
//! dependents first ([`crate::Steward::stop_cascade`]) and answers [`CascadeStopped`].

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery, JsonBody, RawBody};
use super::gzip::{accepts_gzip, respond};
use super::view::DefinitionView;
use crate::config;
use crate::control::ControlAction;
use crate::error::ControlError;
use crate::state::ServiceState;

/// Query of `GET /api/v1/services`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Only services with this tag.
    tag: Option<String>,
}

/// The body of `GET /api/v1/services`.
#[derive(Debug, Serialize)]
pub struct ServiceList {
    services: Vec<ServiceState>,
}

/// `GET /api/v1/services[?tag=T]`. The whole list is served from
/// [`read_cache`](super::read_cache) while nothing in it changed, gzipped (once per
/// rendering) for a client that sends `Accept-Encoding: gzip`; a list by tag is built per
/// request and served plain.
pub async fn list(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    const JSON: &str = "application/json";
    match query.tag {
        Some(tag) => {
            let body = list_body(app.steward.list_by_tag(&tag).await?)?;
            Ok(([(header::CONTENT_TYPE, JSON)], body).into_response())
        }
        None => {
            let generation = app.steward.tables().generation();
            let gzip = accepts_gzip(&headers);
            let page = app
                .reads
                .list
                .get(generation, gzip, || async {
                    list_body(app.steward.list().await?)
                })
                .await?;
            Ok(match page.gzip.filter(|_| gzip) {
                Some(gzipped) => respond(JSON, gzipped.whole(), true),
                None => respond(JSON, page.plain, false),
            })
        }
    }
}

/// The list's JSON, written once into a buffer sized for it (about 250 bytes a service).
fn list_body(services: Vec<ServiceState>) -> Result<Bytes, ApiError> {
    let mut buf = Vec::with_capacity(64 + services.len() * 320);
    serde_json::to_writer(&mut buf, &ServiceList { services })
        .map_err(|e| ApiError::Internal(format!("cannot serialize the list: {e}")))?;
    Ok(Bytes::from(buf))
}

/// The most services `POST /api/v1/services` lets the runtime hold
/// (`settings.max_services`), given to the router as an [`axum::Extension`]; without it,
/// [`config::DEFAULT_MAX_SERVICES`].
#[derive(Debug, Clone, Copy)]
pub struct ServiceCap(pub usize);

/// Query of `POST /api/v1/services`.
#[derive(Debug, Deserialize)]
pub struct DefineQuery {
    /// Also write the definition to `<config dir>/services.d/<id>.yml`.
    #[serde(default)]
    persist: bool,
}

/// `POST /api/v1/services[?persist=true]`: the body is one service in the YAML schema,
/// as JSON, plus its `id`. 201 with the new state (after the start, when `autostart`).
pub async fn define(
    State(app): State<AppState>,
    cap: Option<axum::Extension<ServiceCap>>,
    ApiQuery(query): ApiQuery<DefineQuery>,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> Result<Response, ApiError> {
    let id = body_id(&body)?;
    let max = cap.map_or(config::DEFAULT_MAX_SERVICES, |c| c.0.0);
    let mut defined = 0usize;
    app.steward.tables().each_state(|_| defined += 1);
    if defined >= max && !app.steward.tables().is_defined(&id) {
        return Err(ControlError::Unsupported {
            id,
            action: "define".to_string(),
            reason: format!(
                "{defined} services are defined and `settings.max_services` is {max}: remove some, or raise it in services.yml"
            ),
        }
        .into());
    }
    let definition = config::definition_from_json(&id, &body, &app.config_dir)?;
    let to_save = query.persist.then(|| definition.clone());
    tracing::info!(service = %id, "defining a service over HTTP");
    let state = match app.steward.define(definition).await {
        Ok(state) => state,
        // The service is defined; its start failed, and its state says why.
        Err(ControlError::StartFailed { .. } | ControlError::DependencyFailed { .. }) => {
            app.steward.get(&id).await?.state
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(definition) = to_save {
        // Defined first, so an id that is taken never overwrites someone's file.
        let path = config::save_service(&definition, &app.config_dir).map_err(|e| {
            ApiError::from(ControlError::SaveFailed {
                id: id.clone(),
                reason: format!("it is defined but could not be persisted: {e}"),
            })
        })?;
        tracing::info!(service = %id, path = %path.display(), "definition persisted");
    }
    Ok((StatusCode::CREATED, Json(state)).into_response())
}

/// The `id` of a definition body.
fn body_id(body: &serde_json::Value) -> Result<String, ApiError> {
    let invalid = |message: String| {
        ApiError::InvalidDefinition {
        message: format!("invalid definition: {message}"),
        errors: vec![super::error::Problem::new(
            message,
            Some(
                "send {\"id\": \"web\", \"command\": \"…\"} with the keys of a service in services.yml"
                    .to_string(),
            ),
        )],
    }
    };
    let object = body
        .as_object()
        .ok_or_else(|| invalid("the body must be a JSON object".to_string()))?;
    match object.get("id") {
        Some(serde_json::Value::String(id)) if config::is_valid_id(id) => Ok(id.clone()),
        Some(serde_json::Value::String(id)) => Err(invalid(format!(
            "`{id}` is not a valid service id: use lowercase letters, digits, `_` and `-`, starting with a letter or digit"
        ))),
        Some(other) => Err(invalid(format!("`id` must be a string, not {other}"))),
        None => Err(invalid("the body needs an `id`".to_string())),
    }
}

/// The body of `GET /api/v1/services/{id}`: the state's fields plus the definition.
#[derive(Debug, Serialize)]
pub struct ServiceDetail {
    #[serde(flatten)]
    state: ServiceState,
    definition: DefinitionView,
}

/// `GET /api/v1/services/{id}`.
pub async fn get_one(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ServiceDetail>, ApiError> {
    let info = app.steward.get(&id).await?;
    Ok(Json(ServiceDetail {
        state: info.state,
        definition: DefinitionView::of(&info.definition),
    }))
}

/// The body of `DELETE /api/v1/services/{id}`.
#[derive(Debug, Serialize)]
pub struct Removed {
    removed: String,
}

/// `DELETE /api/v1/services/{id}` (409 while the service runs).
pub async fn remove(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Removed>, ApiError> {
    tracing::info!(service = %id, "removing a service over HTTP");
    app.steward.remove(&id).await?;
    Ok(Json(Removed { removed: id }))
}

/// Query of the control routes.
#[derive(Debug, Deserialize)]
pub struct ControlQuery {
    /// Answer once the verb is done (the default), or with `false` as soon as the
    /// service's Server acted on it (`202 Accepted`).
    #[serde(default = "yes")]
    wait: bool,
    /// Stop only: stop the running dependents first, in order, then the service.
    #[serde(default)]
    cascade: bool,
}

fn yes() -> bool {
    true
}

/// The body of `POST /api/v1/services/{id}/stop?cascade=true`: the service's state, plus
/// the states of the dependents that were stopped before it, in the order they stopped.
#[derive(Debug, Serialize, Deserialize)]
pub struct CascadeStopped {
    /// The service's state once stopped.
    #[serde(flatten)]
    pub state: ServiceState,
    /// Each running dependent stopped first, dependents of dependents before them.
    pub also_stopped: Vec<ServiceState>,
}

/// `POST /api/v1/services/{id}/{verb}[?wait=false][&cascade=true]`: the state once the
/// verb is done; with `wait=false`, `202 Accepted` and the state right after the
/// service's Server acted; a stop with `cascade=true` stops the running dependents first.
pub async fn control(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ControlQuery>,
    action: ControlAction,
) -> Result<Response, ApiError> {
    tracing::info!(service = %id, %action, wait = query.wait, cascade = query.cascade, "control requested over HTTP");
    let steward = &app.steward;
    if query.cascade {
        if action != ControlAction::Stop {
            return Err(ApiError::bad_request(format!(
                "`cascade=true` applies to stop only, not to {action}"
            )));
        }
        if !query.wait {
            return Err(ApiError::bad_request(
                "`cascade=true` stops each dependent before the next, so it cannot be combined with `wait=false`",
            ));
        }
        return Ok(Json(stop_cascade(steward, &id).await?).into_response());
    }
    if query.wait {
        Ok(Json(steward.control(&id, action).await?).into_response())
    } else {
        let state = steward.control_no_wait(&id, action).await?;
        Ok((StatusCode::ACCEPTED, Json(state)).into_response())
    }
}

/// Stops the running dependents of `id`, then `id`; the first failure is the answer.
async fn stop_cascade(steward: &crate::Steward, id: &str) -> Result<CascadeStopped, ApiError> {
    let mut also_stopped = Vec::new();
    let mut own = None;
    for (service, result) in steward.stop_cascade(id).await? {
        let state = result?;
        if service == id {
            own = Some(state);
        } else {
            also_stopped.push(state);
        }
    }
    let state = match own {
        Some(state) => state,
        None => steward.get(id).await?.state,
    };
    Ok(CascadeStopped {
        state,
        also_stopped,
    })
}

/// The body of `POST /api/v1/services/{id}/input`.
#[derive(Debug, Serialize)]
pub struct Written {
    written: usize,
}

/// `POST /api/v1/services/{id}/input`: the body's bytes to the process's stdin, as they
/// are (no newline added).
pub async fn input(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    RawBody(bytes): RawBody,
) -> Result<Json<Written>, ApiError> {
    let written = bytes.len();
    app.steward.input(&id, bytes.to_vec()).await?;
    Ok(Json(Written { written }))
}
