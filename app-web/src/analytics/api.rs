//! Analytics routes.
//!
//! - `POST /api/events`: a JSON batch (see [`super::events::Batch`]); 202 with how many events
//!   were stored. A request with `DNT: 1` or `Sec-GPC: 1` is answered the same way and nothing
//!   is stored.
//! - `GET /api/admin/analytics/daily?days=N` (bearer token): per day, app, version and event
//!   name, the events, sessions and unique users: summed days from `analytics_daily`, the
//!   current day counted from raw events.

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::events::{self, Batch};
use crate::auth::require_admin;
use crate::error::{ApiError, read_json};
use crate::state::AppState;

/// Largest batch body accepted.
const MAX_BATCH_BYTES: usize = crate::body_limits::EVENTS_BYTES;

pub fn router(state: AppState) -> Router<AppState> {
    let admin = Router::new()
        .route("/api/admin/analytics/daily", get(daily))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_admin,
        ));
    Router::new()
        .route(
            "/api/events",
            post(ingest)
                .layer(DefaultBodyLimit::max(MAX_BATCH_BYTES))
                .route_layer(axum::middleware::from_fn_with_state(
                    (state, "rate-events"),
                    crate::rate_limit::limit,
                )),
        )
        .merge(admin)
}

/// The browser asked not to be tracked: Do Not Track or Global Privacy Control.
pub fn opted_out(headers: &HeaderMap) -> bool {
    ["dnt", "sec-gpc"].iter().any(|name| {
        headers
            .get(*name)
            .is_some_and(|value| value.as_bytes().trim_ascii() == b"1")
    })
}

async fn ingest(
    State(state): State<AppState>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    body: Result<Json<Batch>, JsonRejection>,
) -> Result<Response, ApiError> {
    if opted_out(&headers) {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "accepted": 0, "reason": "the browser sent Do Not Track or Global Privacy Control; nothing was stored" })),
        )
            .into_response());
    }
    if let Err(rejection) = &body
        && rejection.status() == StatusCode::PAYLOAD_TOO_LARGE
    {
        return Err(ApiError::PayloadTooLarge(format!(
            "a batch may have at most {MAX_BATCH_BYTES} bytes; send fewer events per batch"
        )));
    }
    let batch = read_json(body, "an event batch: app, session_id, events")?;
    batch.check()?;
    let pool = state.pool()?;
    let address = crate::rate_limit::client_address_from(
        &headers,
        extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|ConnectInfo(peer)| *peer),
        &state.rate_limit().trusted_proxies,
    );
    let user_agent = headers
        .get(header::USER_AGENT)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .unwrap_or_default();
    let salt = events::todays_salt(pool).await?;
    let hash = events::user_hash(&salt, address, &user_agent, &batch.app);
    let stored = events::store(pool, &batch, &hash).await?;
    metrics::counter!(EVENTS_STORED, "app" => batch.app.clone()).increment(stored);
    Ok((StatusCode::ACCEPTED, Json(json!({ "accepted": stored }))).into_response())
}

/// Analytics events stored, by app.
pub const EVENTS_STORED: &str = "app_web_analytics_events_total";

#[derive(serde::Deserialize)]
struct DailyQuery {
    days: Option<i32>,
}

#[derive(Debug, serde::Serialize, sqlx::FromRow)]
struct Daily {
    /// The day, UTC, as YYYY-MM-DD.
    day: String,
    app: String,
    app_version: String,
    name: String,
    events: i64,
    sessions: i64,
    users: i64,
}

async fn daily(
    State(state): State<AppState>,
    Query(query): Query<DailyQuery>,
) -> Result<Response, ApiError> {
    let days = query.days.unwrap_or(30).clamp(1, 3650);
    let rows: Vec<Daily> = sqlx::query_as(
        "SELECT day::text, app, app_version, name, events, sessions, users FROM analytics_daily \
         WHERE day > (now() AT TIME ZONE 'UTC')::date - $1 \
         UNION ALL \
         SELECT (received_at AT TIME ZONE 'UTC')::date::text, app, app_version, name, count(*), \
                count(DISTINCT session_id), count(DISTINCT user_hash) \
         FROM analytics_events e \
         WHERE received_at > now() - make_interval(days => $1) \
           AND NOT EXISTS (SELECT 1 FROM analytics_rollups r \
                           WHERE r.day = (e.received_at AT TIME ZONE 'UTC')::date) \
         GROUP BY 1, 2, 3, 4 ORDER BY 1 DESC, 2, 3, 4",
    )
    .bind(days)
    .fetch_all(state.pool()?)
    .await?;
    Ok(Json(rows).into_response())
}
