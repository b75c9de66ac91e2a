//! The admin API's check: a bearer token, kept and compared as its SHA-256.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::error::ApiError;
use crate::state::AppState;

/// Lets a request through only with `Authorization: Bearer <the admin token>`. The token is
/// kept and compared as its SHA-256, so the comparison's timing reveals nothing usable.
pub async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(expected) = state.admin_token_digest() else {
        return Err(ApiError::Forbidden(
            "the admin API is off: start app-web with --admin-token-file (APP_WEB_ADMIN_TOKEN_FILE)"
                .into(),
        ));
    };
    let given = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized)?;
    use sha2::Digest;
    if sha2::Sha256::digest(given.trim().as_bytes()).as_slice() != expected {
        return Err(ApiError::Unauthorized);
    }
    Ok(next.run(request).await)
}
