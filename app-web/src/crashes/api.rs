//! Crash report routes.
//!
//! - `POST /api/crashes`: the desktop app's upload, `multipart/form-data` with `metadata`
//!   (JSON) and `minidump`; 201 with the report id (200 when the id was already stored), 400
//!   naming what is wrong, 413 over the size limit, 429 over the hourly limit per client.
//! - Admin (bearer token): `GET /api/admin/crashes/groups`, `…/groups/{group_id}` (with its
//!   newest reports), `GET /api/admin/crashes/reports/{id}` (with the symbolicated stack),
//!   `GET /api/admin/crashes/versions` (crash-free session rates), and
//!   `PUT /api/admin/symbols/{debug_file}/{debug_id}` (a Breakpad `.sym` file).
//!
//! The page `crashes.html` in the UI reads the admin routes with a token the operator types.

use std::time::Duration;

use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::json;

use super::{Crashes, store};
use crate::auth::require_admin;
use crate::error::ApiError;
use crate::state::AppState;

const HOUR: Duration = Duration::from_secs(3600);

pub fn router(state: AppState) -> Router<AppState> {
    // The whole upload is held to the crash limit, as nginx holds it; the minidump inside it
    // is then necessarily smaller.
    let (upload_limit, symbols_limit) = match state.crashes() {
        Some(crashes) => (
            crashes.max_minidump_bytes as usize,
            crashes.max_symbols_bytes as usize,
        ),
        None => (crate::body_limits::API_BYTES, crate::body_limits::API_BYTES),
    };
    let admin = Router::new()
        .route("/api/admin/crashes/groups", get(list_groups))
        .route("/api/admin/crashes/groups/{group_id}", get(show_group))
        .route("/api/admin/crashes/reports/{id}", get(show_report))
        .route("/api/admin/crashes/versions", get(version_health))
        .route(
            "/api/admin/symbols/{debug_file}/{debug_id}",
            put(upload_symbols).layer(DefaultBodyLimit::max(symbols_limit)),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_admin,
        ));
    Router::new()
        .route(
            "/api/crashes",
            post(upload)
                .layer(DefaultBodyLimit::max(upload_limit))
                .route_layer(axum::middleware::from_fn_with_state(state, limit_uploads)),
        )
        .merge(admin)
}

fn service(state: &AppState) -> Result<&Crashes, ApiError> {
    state.crashes().map(AsRef::as_ref).ok_or_else(|| {
        ApiError::Disabled(
            "crash reports are off on this server: start app-web with --crash-dir (APP_WEB_CRASH_DIR)"
                .into(),
        )
    })
}

async fn limit_uploads(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let allowed = state
        .crashes()
        .map_or(0, |crashes| crashes.uploads_per_hour);
    let client = crate::rate_limit::client_address(&request, &state.rate_limit().trusted_proxies);
    match crate::rate_limit::refusal(&state, client, "crash-uploads", allowed, HOUR).await {
        Some(refused) => refused,
        None => next.run(request).await,
    }
}

/// The body, or 413 when it is over the route's limit and 400 when it could not be read.
fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(format!(
                "the body is over this route's limit: {}",
                rejection.body_text()
            ))
        } else {
            ApiError::BadRequest {
                field: Some("body"),
                message: rejection.body_text(),
            }
        }
    })
}

async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let crashes = service(&state)?;
    let body = body_bytes(body)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    let upload = super::upload::parse(content_type, body, crashes.max_minidump_bytes).await?;
    let (id, stored) = store::save(state.pool()?, crashes, upload).await?;
    if stored {
        crashes.wake.notify_one();
        tracing::info!(report = %id, "crash report received");
    }
    let status = if stored {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({ "id": id }))).into_response())
}

async fn list_groups(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(store::groups(state.pool()?).await?).into_response())
}

#[derive(serde::Deserialize)]
struct ReportsQuery {
    limit: Option<i64>,
}

async fn show_group(
    State(state): State<AppState>,
    Path(group_id): Path<String>,
    Query(query): Query<ReportsQuery>,
) -> Result<Response, ApiError> {
    let pool = state.pool()?;
    let group = store::group(pool, &group_id).await?;
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    let reports = store::reports(pool, Some(&group_id), limit).await?;
    Ok(Json(json!({ "group": group, "reports": reports })).into_response())
}

async fn show_report(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = uuid::Uuid::parse_str(&id).map_err(|err| ApiError::BadRequest {
        field: Some("id"),
        message: format!("{id:?} is not a report id: {err}"),
    })?;
    Ok(Json(store::report(state.pool()?, id).await?).into_response())
}

#[derive(serde::Deserialize)]
struct VersionsQuery {
    product: Option<String>,
}

async fn version_health(
    State(state): State<AppState>,
    Query(query): Query<VersionsQuery>,
) -> Result<Response, ApiError> {
    let product = query.product.as_deref().unwrap_or("app-desktop");
    Ok(Json(store::versions(state.pool()?, product).await?).into_response())
}

async fn upload_symbols(
    State(state): State<AppState>,
    Path((debug_file, debug_id)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let crashes = service(&state)?;
    let body = body_bytes(body)?;
    let store = crashes.symbols.clone();
    let (file, id) = (debug_file.clone(), debug_id.to_ascii_uppercase());
    let path = tokio::task::spawn_blocking(move || store.save(&file, &id, &body))
        .await
        .map_err(|err| ApiError::Internal(format!("store symbols: {err}")))??;
    crashes.symbolicator.forget();
    let module = format!("{debug_file}/{}", debug_id.to_ascii_uppercase());
    let requeued = store::requeue_missing(state.pool()?, &module).await?;
    if requeued > 0 {
        crashes.wake.notify_one();
    }
    let relative = path
        .strip_prefix(crashes.symbols.dir())
        .unwrap_or(&path)
        .display()
        .to_string();
    tracing::info!(%module, requeued, "symbols stored");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "path": relative, "requeued_reports": requeued })),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn symbols_paths_are_checked_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::crashes::symbols::SymbolStore::new(dir.path().to_owned());
        assert!(
            store
                .save("../x", "5A9832E5287241C1838ED98914E9B7FF1", b"")
                .is_err()
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
